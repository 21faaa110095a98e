"""The per-bar rules of the discrete envs' action masks (MaskedTrading-v0, SingleAsset-v0): one home.

An action is masked by the first rule, in the order of :data:`MASK_RULES`, that forbids it; ``info["mask_reasons"]``
holds that code per action (0: legal). The rules of a *bar* (the same for every account) are computed once per env
by :class:`BarRules`, causally (a value at bar ``t`` from data ``<= t`` of its path):

* ``session``: outside the trading session only hold is legal. ``session_hours=("09:30", "16:00")`` reads the
  bars' timestamps in ``exchange_tz``; ``session_bars`` counts rows from each path's start instead.
* trading days (for ``daily_loss``): calendar dates in ``exchange_tz`` (timestamps), else blocks of
  ``session_bars`` rows; a path starts a new day.
* ``volatility``: the risk asset's rolling volatility (per-bar std of ``volatility_window`` log returns) above
  ``max_volatility`` (or still undefined) blocks every risk-adding trade.
* ``regime_crisis`` / ``regime_bear`` / ``regime_bull`` (``regime_rules``, seed 002): high volatility (the top
  label of ``regime_volatility``) and a drawdown of the risk asset beyond ``crisis_drawdown`` blocks all new
  risk; high volatility in a down trend (``regime_trend`` < 0) blocks long risk, in an up trend short risk.
* ``position_limit`` caps per side: ``max_position``, scaled by ``min(1, position_vol_target / sigma)`` with
  ``sigma`` the annualised volatility of the side's asset (``max_position`` during its warm-up).

The account rules (``no_equity``, ``drawdown``, ``daily_loss``, ``cash``, ``position_limit``,
``concentration``, ``no_short``) are evaluated per account by the envs' compiled kernels.

"Sides" are the two directions of risk: side 0 long (MaskedTrading: the bull ETF; SingleAsset: a buy that
adds long exposure), side 1 short (the bear ETF; a sell that adds short exposure).
"""

from __future__ import annotations

import warnings
import zoneinfo
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from sb3_trading.common.validation import check_bool, check_int, check_real
from sb3_trading.data import MarketData
from sb3_trading.envs.base import TradingKernel, Transition
from sb3_trading.features import FeatureFits, check_feature_fits, parse_specs, regime_label_table, rolling_volatility
from sb3_trading.sim.frictions import ADVERSE, COMMISSION, Frictions

#: the rules of the mask, by code: ``info["mask_reasons"]`` holds one code per action (0: legal), the first rule
#: (in this order) that masks it; the envs' ``mask_reasons()`` name them
MASK_RULES: tuple[str, ...] = (
    "legal",
    "session",
    "nothing_to_flatten",
    "no_equity",
    "drawdown",
    "daily_loss",
    "volatility",
    "regime_crisis",
    "regime_bear",
    "regime_bull",
    "cash",
    "position_limit",
    "concentration",
    "no_short",
)
#: action 0 of the discrete envs holds, whatever the state (always legal)
HOLD = 0
#: relative slack of the limit checks, so a trade landing exactly on a limit is legal despite rounding
LIMIT_TOL = 1e-9
#: the market rules (:data:`~sb3_trading.sim.frictions.RULE_FEATURES`) the discrete masked envs model beyond
#: proportional commission, slippage and half-spread in bps: fees per order, square-root impact and the data's
#: spread column (their cash rule prices each order with the fill's own ``order_cost``, so it stays exact),
#: financing, margin and brackets; lots and a participation cap would fill other sizes than the action table's
MASKED_MARKET_RULES: tuple[str, ...] = (
    "fixed_fee",
    "min_fee",
    'half_spread_bps="data"',
    "impact_k",
    "financing",
    "margin",
    "brackets",
)
SESSION, NOTHING_TO_FLATTEN, NO_EQUITY, DRAWDOWN, DAILY_LOSS, VOLATILITY = 1, 2, 3, 4, 5, 6
REGIME_CRISIS, REGIME_BEAR, REGIME_BULL, CASH, POSITION_LIMIT, CONCENTRATION, NO_SHORT = 7, 8, 9, 10, 11, 12, 13


def warn_unreachable_sizes(sizes: Sequence[float], frictions: Frictions, limits: dict[str, float]) -> None:
    """Warn of the ``sizes`` no buy from a flat book can ever reach: above ``min(limits)`` or above the equity left
    after the cheapest bar's costs, ``1 / ((1 + a)(1 + c))`` (``a`` the smallest adverse move, ``c`` the commission).

    :param limits: the env's exposure limits by argument name (fractions of equity), named in the warning.
    """
    adverse = float(frictions.bars[:, ADVERSE].min())
    limit = min(*limits.values(), 1.0 / (1.0 + (adverse + frictions.rules[COMMISSION] * (1.0 + adverse))))
    never = [f for f in sizes if f > limit * (1.0 + LIMIT_TOL)]
    if never:
        named = ", ".join(f"{name}={value}" for name, value in limits.items())
        warnings.warn(
            f"sizes {never} can never be bought from a flat book: a buy may reach at most {limit:.6g} of equity "
            f"({named}, cash after costs)",
            stacklevel=3,
        )


def check_sizes(sizes: Any) -> tuple[float, ...]:
    """The trade sizes of a discrete env's action table: a non-empty sequence of distinct fractions in ``(0, 1]``."""
    try:
        size_list = [] if isinstance(sizes, (str, bytes)) else list(sizes)
    except TypeError:
        size_list = []
    if not size_list:
        raise ValueError(f"sizes must be a non-empty sequence of fractions in (0, 1], got {sizes!r}")
    checked = tuple(check_fraction(f"sizes[{i}]", f, upper=1.0) for i, f in enumerate(size_list))
    if len(set(checked)) != len(checked):
        raise ValueError(f"sizes must be distinct, got {checked}")
    return checked


def check_fraction(name: str, value: object, *, upper: float | None = None, allow_zero: bool = False) -> float:
    return check_real(name, value, 0.0, upper, strict_minimum=not allow_zero)  # type: ignore[return-value]


def _check_time_zone(exchange_tz: Any) -> str:
    """``exchange_tz`` if it names an IANA time zone, else ``ValueError`` naming the argument."""
    try:
        zoneinfo.ZoneInfo(exchange_tz)
    except (TypeError, ValueError, zoneinfo.ZoneInfoNotFoundError):
        raise ValueError(f"exchange_tz={exchange_tz!r} is not a time zone name (e.g. 'America/New_York', 'UTC')") from None
    return str(exchange_tz)


def _local_times(timestamps: np.ndarray, exchange_tz: str) -> pd.DatetimeIndex:
    """The bars' times (naive UTC) in the exchange's time zone."""
    return pd.DatetimeIndex(timestamps).tz_localize("UTC").tz_convert(exchange_tz)


def _session_minutes(hours: Any) -> tuple[int, int]:
    """``("09:30", "16:00")`` -> minutes after midnight ``(570, 960)``, open before close."""
    form = "session_hours must be (open, close) as 'HH:MM' strings in exchange time, e.g. ('09:30', '16:00')"
    if isinstance(hours, str) or not isinstance(hours, Sequence) or len(hours) != 2:
        raise ValueError(f"{form}, got {hours!r}")
    minutes = []
    for text in hours:
        try:
            hour, minute = (int(part) for part in str(text).split(":"))
        except ValueError:
            raise ValueError(f"{form}, got {hours!r}") from None
        if not (0 <= hour <= 24 and 0 <= minute < 60 and hour * 60 + minute <= 24 * 60):
            raise ValueError(f"{form}, got {hours!r}")
        minutes.append(hour * 60 + minute)
    if not minutes[0] < minutes[1]:
        raise ValueError(f"session_hours must open before they close, got {hours!r}")
    return minutes[0], minutes[1]


def _check_regime_spec(name: str, spec: Any, kinds: tuple[str, ...]) -> str:
    """``spec`` if it parses as an indicator spec of one of ``kinds`` (any timeframe), else ``ValueError`` naming ``name``."""
    try:
        parsed = parse_specs((spec,))[0]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}={spec!r} is not an indicator spec: {exc}") from None
    if parsed.name not in kinds:
        raise ValueError(f"{name} must be a {' or '.join(kinds)} spec (e.g. '{kinds[0]}:20'), got {spec!r}")
    return str(spec)


def _direction_regimes(
    index: MarketData, volatility: str, trend: str, crisis_drawdown: float, fits: FeatureFits
) -> tuple[np.ndarray, FeatureFits]:
    """Seed 002's direction-aware regimes of the index, causal: ``(T,)`` int8 codes.

    High volatility is the top label of the ``volatility`` spec (``vol_regime``: the top tercile of the rolling
    volatility in its own history; ``regime_prob:K``: the most volatile HMM state); with it the index is in a
    **crisis** (:data:`REGIME_CRISIS`) when it is more than ``crisis_drawdown`` below its running peak (per path),
    else a high-volatility **bear** (:data:`REGIME_BEAR`) or **bull** (:data:`REGIME_BULL`) by the sign of the
    ``trend`` spec (``trend_regime``); 0 otherwise, and wherever a label is still undefined (warm-up). An HMM
    ``volatility`` spec uses the fit of ``fits`` (the training env's) when it has one.

    :return: ``(codes, fits)``: the codes and ``fits`` plus what was fitted here.
    """
    vol, vol_labels, fits = regime_label_table(index, volatility, fits)
    direction, _, fits = regime_label_table(index, trend, fits)
    peak = np.concatenate([np.maximum.accumulate(index.prices[a:b, 0]) for a, b in index.path_bounds])
    drawdown = 1.0 - index.prices[:, 0] / peak
    high = vol[:, 0] == vol_labels[-1]
    codes = np.zeros(index.n_steps, dtype=np.int8)
    codes[high & (direction[:, 0] < 0)] = REGIME_BEAR
    codes[high & (direction[:, 0] > 0)] = REGIME_BULL
    codes[high & (drawdown > crisis_drawdown)] = REGIME_CRISIS
    return codes, fits


class BarRules:
    """The per-bar mask rules of one env's data (module docstring), checked and computed once.

    :param data: the env's market.
    :param risk_asset: the asset whose volatility and regimes drive the ``volatility`` and ``regime_*`` rules
        (MaskedTrading: the index; SingleAsset: the traded asset).
    :param cap_assets: the asset of each side ``(long, short)`` whose volatility scales its position cap.
    :param max_position: the gross exposure cap, fraction of equity.
    :ivar session_ok: ``(T,)`` bool, inside the session.
    :ivar day: ``(T,)`` int64 trading-day number.
    :ivar buy_block: ``(T, 2)`` int8 the rule code blocking new risk of each side (0: open).
    :ivar caps: ``(T, 2)`` float64 the position cap of each side, fraction of equity.
    :ivar index_volatility: ``(T,)`` the risk asset's volatility of the ``volatility`` rule (``None`` without it).
    :ivar regimes: ``(T,)`` int8 regime codes with ``regime_rules`` (0 or REGIME_CRISIS/BEAR/BULL), else ``None``.
    :ivar feature_fits: the env's ``feature_fits`` (``fits``) plus the HMM fitted for ``regime_volatility``, if any.

    The other arguments are the envs' (see :class:`~sb3_trading.envs.masked_trading.MaskedTradingEnv`) and are kept
    as attributes of the same names (checked); :meth:`attach` copies them onto the env.
    """

    #: the attributes :meth:`attach` copies onto the env (the arrays with a leading underscore)
    SETTINGS: tuple[str, ...] = (
        "session_bars",
        "session_open",
        "session_close",
        "session_hours",
        "exchange_tz",
        "daily_loss_limit",
        "volatility_window",
        "max_volatility",
        "index_volatility",
        "regime_rules",
        "regime_volatility",
        "regime_trend",
        "crisis_drawdown",
        "regimes",
        "position_vol_target",
        "feature_fits",
    )
    ARRAYS: tuple[str, ...] = ("session_ok", "day", "buy_block", "caps")

    def __init__(
        self,
        data: MarketData,
        *,
        risk_asset: str,
        cap_assets: tuple[str, str],
        max_position: float,
        session_bars: int | None = None,
        session_open: int = 0,
        session_close: int | None = None,
        session_hours: tuple[str, str] | None = None,
        exchange_tz: str = "America/New_York",
        daily_loss_limit: float | None = None,
        max_volatility: float | None = None,
        volatility_window: int = 20,
        regime_rules: bool = False,
        regime_volatility: str = "vol_regime:60",
        regime_trend: str = "trend_regime:20",
        crisis_drawdown: float = 0.2,
        position_vol_target: float | None = None,
        fits: FeatureFits | None = None,
    ) -> None:
        self.feature_fits = check_feature_fits(fits)
        # row numbers counted from the start of each path (the session clock restarts with every path)
        t_rows = np.arange(data.n_steps) - np.repeat(data.path_starts, np.diff([*data.path_starts, data.n_steps]))
        self.session_bars = None if session_bars is None else check_int("session_bars", session_bars, 1)
        self.exchange_tz = _check_time_zone(exchange_tz)
        local = None if data.timestamps is None else _local_times(data.timestamps, exchange_tz)
        self.session_hours = None if session_hours is None else _session_minutes(session_hours)
        if self.session_hours is not None:
            if self.session_bars is not None:
                raise ValueError("pass session_bars (a row clock) or session_hours (exchange time), not both")
            if local is None:
                raise ValueError(
                    "session_hours needs MarketData.timestamps (the bars' times, naive UTC); without them use "
                    "session_bars=... (bars per session, counted from each path's first row)"
                )
        if self.session_bars is None:
            if session_open != 0 or session_close is not None:
                raise ValueError(
                    f"session_open={session_open!r} / session_close={session_close!r} need session_bars (bars per session)"
                )
            self.session_open, self.session_close = 0, None
            if self.session_hours is None:
                self.session_ok = np.ones(data.n_steps, dtype=bool)
            else:
                minutes = np.asarray(local.hour * 60 + local.minute, dtype=np.int64)  # type: ignore[union-attr]
                self.session_ok = (minutes >= self.session_hours[0]) & (minutes < self.session_hours[1])
                if not self.session_ok.any():
                    first = pd.Timestamp(local[0]).strftime("%H:%M %Z")  # type: ignore[index]
                    raise ValueError(
                        f"no bar of the data falls inside session_hours={session_hours!r} in {exchange_tz} (the first "
                        f"bar is at {first}): every action but hold would be masked. Daily bars carry no time of day; "
                        "the session rule is for intraday bars (check exchange_tz and that timestamps are UTC)"
                    )
        else:
            self.session_open = check_int("session_open", session_open, 0)
            if self.session_open >= self.session_bars:
                raise ValueError(f"session_open must be < session_bars={self.session_bars}, got {session_open!r}")
            close = self.session_bars if session_close is None else check_int("session_close", session_close, 1)
            if not self.session_open < close <= self.session_bars:
                raise ValueError(
                    f"session_close must be in ({self.session_open}, {self.session_bars}] "
                    f"(after session_open, at most session_bars), got {session_close!r}"
                )
            self.session_close = close
            phase = t_rows % self.session_bars
            self.session_ok = (phase >= self.session_open) & (phase < close)

        # trading days: the exchange-time calendar date, else sessions of session_bars rows; a path starts a day
        self.daily_loss_limit = (
            None if daily_loss_limit is None else check_fraction("daily_loss_limit", daily_loss_limit, upper=1.0)
        )
        new_day = np.zeros(data.n_steps, dtype=bool)
        new_day[list(data.path_starts)] = True
        if local is not None:
            dates = np.asarray(local.normalize().asi8)
            new_day[1:] |= dates[1:] != dates[:-1]
        elif self.session_bars is not None:
            new_day |= t_rows % self.session_bars == 0
        elif self.daily_loss_limit is not None:
            raise ValueError(
                "daily_loss_limit needs trading days: MarketData.timestamps (days in exchange_tz) or session_bars=..."
            )
        self.day = np.cumsum(new_day).astype(np.int64)  # (T,) trading-day number of each bar

        self.volatility_window = check_int("volatility_window", volatility_window, 2)
        self.max_volatility = None if max_volatility is None else check_fraction("max_volatility", max_volatility)
        index_prices = data.prices[:, [data.asset_names.index(risk_asset)]]
        shortest = min(stop - start for start, stop in data.path_bounds)

        def per_path_volatility(prices: np.ndarray) -> np.ndarray:
            if self.volatility_window >= shortest:
                raise ValueError(f"volatility_window={volatility_window} must be < the {shortest} rows of data (per path)")
            return np.concatenate([rolling_volatility(prices[a:b], self.volatility_window) for a, b in data.path_bounds])

        # (T, 2) int8: the bar-level rule blocking risk of each side; the first one that applies is reported
        buy_block = np.zeros((data.n_steps, 2), dtype=np.int8)
        if self.max_volatility is None:
            self.index_volatility = None
        else:
            self.index_volatility = per_path_volatility(index_prices)[:, 0]  # (T,), causal, per path
            calm = self.index_volatility <= self.max_volatility  # NaN (warm-up) -> False: buys masked
            buy_block[~calm] = VOLATILITY

        self.regime_rules = check_bool("regime_rules", regime_rules)
        self.regime_volatility = _check_regime_spec("regime_volatility", regime_volatility, ("vol_regime", "regime_prob"))
        self.regime_trend = _check_regime_spec("regime_trend", regime_trend, ("trend_regime",))
        self.crisis_drawdown = check_fraction("crisis_drawdown", crisis_drawdown, upper=1.0)
        #: ``(T,)`` int8 regime of each bar with ``regime_rules`` (0 none, or REGIME_CRISIS/BEAR/BULL); else None
        self.regimes: np.ndarray | None = None
        if self.regime_rules:
            risk = data.select_assets([risk_asset])
            self.regimes, self.feature_fits = _direction_regimes(
                risk, self.regime_volatility, self.regime_trend, self.crisis_drawdown, self.feature_fits
            )
            crisis = self.regimes == REGIME_CRISIS
            free = buy_block == 0
            buy_block[free[:, 0] & crisis, 0] = REGIME_CRISIS
            buy_block[free[:, 1] & crisis, 1] = REGIME_CRISIS
            buy_block[free[:, 0] & (self.regimes == REGIME_BEAR), 0] = REGIME_BEAR  # high-vol bear: no long risk
            buy_block[free[:, 1] & (self.regimes == REGIME_BULL), 1] = REGIME_BULL  # high-vol bull: no short risk
        self.buy_block = buy_block

        # (T, 2) gross exposure cap of a risk-adding trade per side: max_position, scaled down by its asset's volatility
        self.position_vol_target = (
            None if position_vol_target is None else check_fraction("position_vol_target", position_vol_target)
        )
        caps = np.full((data.n_steps, 2), max_position)
        if self.position_vol_target is not None:
            sides = data.prices[:, [data.asset_names.index(a) for a in cap_assets]]
            side_vol = per_path_volatility(sides) * np.sqrt(data.periods_per_year)  # annualised
            scale = np.minimum(1.0, self.position_vol_target / np.where(side_vol > 0, side_vol, np.inf))
            caps = np.where(np.isnan(side_vol), max_position, max_position * scale)
        self.caps = np.ascontiguousarray(caps)

    def attach(self, env: Any) -> None:
        """Set the checked settings (:data:`SETTINGS`) and the arrays (``_session_ok``, ``_day``, ``_buy_block``,
        ``_caps``) on ``env``."""
        for name in self.SETTINGS:
            setattr(env, name, getattr(self, name))
        for name in self.ARRAYS:
            setattr(env, f"_{name}", getattr(self, name))


class MaskedActions:
    """Mixin of the discrete masked envs (before :class:`~sb3_trading.envs.base.KernelTradingEnv` in the bases):
    ``action_masks()`` for sb3-contrib's ``MaskablePPO``, ``mask_reasons()``, and the integer action check.

    The env sets ``n_actions``, ``action_labels`` and ``_kernel`` (a :class:`MaskedKernel`).
    """

    #: names of the codes of ``info["mask_reasons"]`` (read by the backtest's ``mask_rule_rates``)
    mask_rule_names: tuple[str, ...] = MASK_RULES
    n_actions: int
    action_labels: tuple[str, ...]
    _kernel: MaskedKernel

    def action_masks(self) -> np.ndarray:
        """Which actions are legal at the current bar.

        :return: ``(n_actions,)`` bool array; ``True`` = legal. Hold (index 0) is always legal.
        """
        return self._kernel.action_masks()[0]

    def mask_reasons(self) -> dict[str, str]:
        """Why each masked action is masked at the current bar: ``{action label: rule name}`` (:data:`MASK_RULES`;
        the first rule in that order that masks it). Legal actions are absent."""
        codes = self._kernel.mask_codes()[0]
        return {label: MASK_RULES[code] for label, code in zip(self.action_labels, codes.tolist(), strict=True) if code}

    def _check_action(self, action: Any) -> int:
        if isinstance(action, (int, np.integer)) and not isinstance(action, bool):
            a = int(action)
        else:
            array = np.asarray(action)
            if array.dtype.kind not in "iu":
                raise TypeError(f"action must be an integer in [0, {self.n_actions}), got {action!r}")
            if array.size != 1:
                raise ValueError(f"action must be one integer (shape () or (1,)), got shape {array.shape}")
            a = int(array.reshape(()))
        if not 0 <= a < self.n_actions:
            raise ValueError(f"action must be in [0, {self.n_actions}) ({', '.join(self.action_labels)}), got {a}")
        return a

    def _batch_action(self, action: Any) -> np.ndarray:
        return np.array([self._check_action(action)], dtype=np.int64)


class MaskedKernel(TradingKernel):
    """Base of the batched dynamics of the discrete masked envs: ``B`` accounts, ``(B,)`` int64 actions in range.

    Subclasses set :attr:`codes_kernel` and :attr:`step_kernel` (compiled; the same leading arguments
    ``(holdings, closes, peak, day_open, t)`` and ``(holdings, peak, day_open, initial_equity, t, actions, closes)``,
    then :meth:`rule_arguments`, then the step's outputs), :attr:`portfolio_size` and :attr:`cash_field` (the
    ``portfolio`` entry holding the cash weight), and implement :meth:`rule_arguments`.

    Extra state: :attr:`n_invalid` ``(B,)``, the masked actions chosen since each account's reset, and
    :attr:`day_open` ``(B,)``, each account's equity at the last close of the previous trading day.
    """

    codes_kernel: Any
    step_kernel: Any
    portfolio_size: int
    cash_field: int

    def __init__(self, env: Any, n_envs: int) -> None:
        super().__init__(env, n_envs, env._prices, env.costs, env.initial_cash)
        self.n_invalid = np.zeros(self.n_envs, dtype=np.int64)
        self.day_open = np.full(self.n_envs, float(env.initial_cash))
        self.sizes = np.array(env.sizes, dtype=np.float64)
        self.n_actions = int(env.n_actions)
        # E >= (1 - max_drawdown) peak; without the rule the floor 0 lets every account with E > 0 pass
        self._drawdown_floor = 0.0 if env.max_drawdown is None else 1.0 - env.max_drawdown
        self._loss_floor = 0.0 if env.daily_loss_limit is None else 1.0 - env.daily_loss_limit
        self._session_ok, self._buy_block, self._caps, self._day = env._session_ok, env._buy_block, env._caps, env._day
        self._penalty = float(env.invalid_action_penalty)
        self.use_market_rules(env.frictions)

    def rule_arguments(self) -> tuple[Any, ...]:
        """The kernels' rule arguments, after their leading ones (class docstring), in order."""
        raise NotImplementedError

    # ------------------------------------------------------------------ masks
    def mask_codes(self) -> np.ndarray:
        """``(B, n_actions)`` int8: the :data:`MASK_RULES` code masking each action at each account's bar (0: legal)."""
        book = self.book
        return self.codes_kernel(book.holdings, self._prices, book.peak_equity, self.day_open, self.t, *self.rule_arguments())

    def action_masks(self) -> np.ndarray:
        """``(B, n_actions)`` bool: which actions are legal at each account's current bar."""
        return self.mask_codes() == 0

    # ------------------------------------------------------------ dynamics
    def reset(self, rows: np.ndarray, draws: dict[str, np.ndarray]) -> Transition:
        start = draws["start"]
        self.set_clock(rows, t=start, start=start)
        self.book.reset(self.initial_cash, index=rows)
        self._set_equity(rows, self.initial_cash)
        self.n_invalid = self.n_invalid.copy()
        self.n_invalid[rows] = 0
        self.day_open = self.day_open.copy()
        self.day_open[rows] = self.initial_cash
        k = start.shape[0]
        portfolio = np.zeros((k, self.portfolio_size), dtype=np.float32)
        portfolio[:, self.cash_field] = 1.0  # all cash
        extras = {
            "invalid_action": np.zeros(k, dtype=bool),
            "n_invalid_actions": np.zeros(k, dtype=np.int64),
            "mask_reasons": np.zeros((k, self.n_actions), dtype=np.int8),
        }
        return self.reset_rules(rows, self._flat(start, portfolio)._replace(extras=extras))

    def step(self, actions: np.ndarray) -> Transition:
        """A masked action is not executed: it is a hold, flagged in ``invalid_action`` and counted (and, with
        ``invalid_action_penalty``, the penalty is taken off the step's return)."""
        book = self.book
        invalid, n_invalid = np.empty(self.n_envs, dtype=bool), np.empty(self.n_envs, dtype=np.int64)
        reasons = np.empty((self.n_envs, self.n_actions), dtype=np.int8)
        more, extras, ended = self.rule_outputs()
        extras = {"invalid_action": invalid, "n_invalid_actions": n_invalid, "mask_reasons": reasons, **extras}
        tr = self.blank(self.portfolio_size, extras, reward=self._penalty > 0.0, ended=ended)
        day_open = self.day_open.copy()
        self.step_kernel(
            book.holdings,
            book.peak_equity,
            day_open,
            book.initial_equity,
            self.t,
            actions,
            self._prices,
            *self.rule_arguments(),
            self.n_invalid,
            self.levels,
            self._ohlc,
            tr.outputs,
            more,
            invalid,
            n_invalid,
            reasons,
        )
        self.n_invalid, self.day_open = n_invalid, day_open
        if tr.reward is not None:
            tr.reward[:] = tr.equity / tr.equity_t - 1.0 - self._penalty * invalid
        return self.advance(tr)
