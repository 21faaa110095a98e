"""``sb3_trading/SingleAsset-v0``: discrete hold / buy / sell of one instrument, with action masks."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from sb3_trading.common.jit import kernel_array, njit
from sb3_trading.common.validation import check_bool, check_int, check_real
from sb3_trading.data import MarketData, make_regime_market
from sb3_trading.envs.base import (
    DEFAULT_NORMALIZER,
    FeatureFits,
    KernelTradingEnv,
    NormalizerArg,
    clip_bound,
)
from sb3_trading.envs.kernel import MARGIN_CALL
from sb3_trading.envs.mask_rules import (
    CASH,
    DAILY_LOSS,
    DRAWDOWN,
    HOLD,
    LIMIT_TOL,
    MASKED_MARKET_RULES,
    NO_EQUITY,
    NO_SHORT,
    NOTHING_TO_FLATTEN,
    POSITION_LIMIT,
    SESSION,
    BarRules,
    MaskedActions,
    MaskedKernel,
    check_fraction,
    check_sizes,
    warn_unreachable_sizes,
)
from sb3_trading.sim.frictions import BRACKETED, Brackets, CostModel, Financing, Margin, resolve_market_rules
from sb3_trading.sim.kernels import GAPS_FILL_AT_OPEN, enter_brackets_row, order_cost, record_row, settle_row, trade_row

#: names of the ``portfolio`` observation entries, in order
PORTFOLIO_FIELDS: tuple[str, ...] = ("weight", "cash_weight", "drawdown", "growth")
_PORTFOLIO_SIZE = len(PORTFOLIO_FIELDS)
#: the traded asset's column, as a NumPy int: a Python constant passed from one kernel to another compiles the
#: callee once more (for ``Literal[int](0)``)
ASSET = np.int64(0)
#: the market rules this env models (shared by the discrete masked envs, see mask_rules)
SUPPORTED_RULES: tuple[str, ...] = MASKED_MARKET_RULES


@njit(internal=True)
def single_codes_row(
    holdings: np.ndarray,
    b: int,
    price: float,
    peak: float,
    day_open: float,
    session_ok: bool,
    block: np.ndarray,
    sizes: np.ndarray,
    long_short: bool,
    caps: np.ndarray,
    drawdown_floor: float,
    loss_floor: float,
    bar: np.ndarray,
    rules: np.ndarray,
    codes: np.ndarray,
) -> float:
    """The :data:`~sb3_trading.envs.mask_rules.MASK_RULES` code of each action of account ``b`` at the close
    ``price`` of its bar, written into ``codes`` ``(2k + 2,)`` int8 (0: legal); returns the equity ``E``.

    Actions: ``0`` hold, ``1 .. k`` buy ``sizes[i - 1] E`` of notional, ``k + 1 .. 2k`` sell ``sizes[i - k - 1] E``,
    ``2k + 1`` flatten. With position value ``V = q p``, cash ``C`` and ``E = V + C``, a trade moves the position
    value to ``V' = V +- f E``; it *adds risk* on the long side when ``V' > 0`` after a buy and on the short side
    when ``V' < 0`` after a sell (a buy that only covers a short, or a sell that only reduces a long, adds none).
    In the order of ``MASK_RULES``:

    * outside the session only hold is legal (``session``); flatten needs ``V != 0`` (``nothing_to_flatten``);
    * a risk-adding trade needs ``E > 0`` (``no_equity``), ``E >= drawdown_floor * peak`` (``drawdown``),
      ``E >= loss_floor * day_open`` (``daily_loss``) and its side open at the bar (``block``: ``volatility``,
      ``regime_*``);
    * a buy needs cash ``C - f E - cost(f E / p) >= -tol`` (``cash``; ``cost`` the order's frictions,
      :func:`~sb3_trading.sim.kernels.order_cost`: exactly what the fill pays, fees and impact included); a
      risk-adding trade needs ``|V'| <= caps[side] E + tol`` (``position_limit``); long only (``long_short`` False), a
      sell below ``V' = 0`` is refused (``no_short``).

    :param holdings: ``(B, 2)`` the books (shares, then cash).
    :param block: ``(2,)`` int8 the bar's rule blocking new ``(long, short)`` risk (0: open).
    :param caps: ``(2,)`` the bar's gross exposure caps of ``(long, short)`` risk, fractions of equity.
    :param bar: ``(N_BAR_FIELDS, 1)`` the bar's frictions; ``rules`` ``(N_RULES,)``.
    """
    n_sizes = sizes.shape[0]
    flatten = 2 * n_sizes + 1
    value, cash = holdings[b, 0] * price, holdings[b, 1]
    e = value + cash
    codes[:] = 0
    if not session_ok:
        codes[1:] = SESSION
        return e
    if value == 0.0:
        codes[flatten] = NOTHING_TO_FLATTEN
    account = 0
    if not e > 0.0:
        account = NO_EQUITY
    elif e < drawdown_floor * peak:
        account = DRAWDOWN
    elif e < loss_floor * day_open:
        account = DAILY_LOSS
    slack = LIMIT_TOL * abs(e)
    for j in range(n_sizes):
        f = sizes[j] * e
        after = value + f  # buy
        code = 0
        if after > slack:  # opens or adds long risk
            code = account if account != 0 else block[0]
        if code == 0 and cash - f - order_cost(f / price, price, bar, ASSET, rules) < -slack:
            code = CASH
        if code == 0 and after > caps[0] * e + slack:
            code = POSITION_LIMIT
        codes[1 + j] = code
        after = value - f  # sell
        code = 0
        if after < -slack:  # opens or adds short risk
            code = account if account != 0 else block[1]
            if code == 0 and -after > caps[1] * e + slack:
                code = POSITION_LIMIT
            if code == 0 and not long_short:
                code = NO_SHORT
        codes[1 + n_sizes + j] = code
    return e


@njit
def single_codes_kernel(
    holdings: np.ndarray,
    closes: np.ndarray,
    peak: np.ndarray,
    day_open: np.ndarray,
    t: np.ndarray,
    session_ok: np.ndarray,
    block: np.ndarray,
    sizes: np.ndarray,
    long_short: bool,
    caps: np.ndarray,
    drawdown_floor: float,
    loss_floor: float,
    day: np.ndarray,
    bars: np.ndarray,
    rules: np.ndarray,
) -> np.ndarray:
    """:func:`single_codes_row` of every account at its bar ``t`` ``(B,)``: ``(B, 2k + 2)`` int8 codes.

    :param closes: ``(T, 1)`` closes; ``session_ok`` ``(T,)``, ``block`` ``(T, 2)`` int8, ``caps`` ``(T, 2)``,
        ``day`` ``(T,)`` int64 (read by :func:`single_step`) and ``bars`` ``(T, N_BAR_FIELDS, 1)`` per bar.
    """
    codes = np.empty((holdings.shape[0], 2 * sizes.shape[0] + 2), dtype=np.int8)
    for b in range(holdings.shape[0]):
        row = t[b]
        single_codes_row(
            holdings,
            b,
            closes[row, 0],
            peak[b],
            day_open[b],
            session_ok[row],
            block[row],
            sizes,
            long_short,
            caps[row],
            drawdown_floor,
            loss_floor,
            bars[row],
            rules,
            codes[b],
        )
    return codes


@njit
def single_step(
    holdings: np.ndarray,
    peak: np.ndarray,
    day_open: np.ndarray,
    initial_equity: np.ndarray,
    t: np.ndarray,
    actions: np.ndarray,
    closes: np.ndarray,
    session_ok: np.ndarray,
    block: np.ndarray,
    sizes: np.ndarray,
    long_short: bool,
    caps: np.ndarray,
    drawdown_floor: float,
    loss_floor: float,
    day: np.ndarray,
    bars: np.ndarray,
    rules: np.ndarray,
    n_invalid: np.ndarray,
    levels: np.ndarray,
    ohlc: np.ndarray,
    out: tuple[np.ndarray, ...],
    more: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    invalid: np.ndarray,
    n_invalid_out: np.ndarray,
    reasons: np.ndarray,
) -> None:
    """One SingleAsset step of every account, in place: a masked action is not executed (it holds).

    The mask is :func:`single_codes_row` at the close of ``t`` (its codes go to ``reasons``); a buy adds
    ``f E / p`` shares, a sell removes them, flatten targets 0; the fill :func:`~sb3_trading.sim.kernels.trade_row`
    at the close; when ``t + 1`` starts a new trading day the equity after the fill becomes ``day_open``; the
    market rules until the next close (:func:`~sb3_trading.sim.kernels.settle_row`); the mark at the close of
    ``t + 1`` and the clipped ``portfolio`` block ``[w, C / E, drawdown, E / E_0 - 1]``.

    The arguments are :func:`single_codes_kernel`'s and :func:`~sb3_trading.envs.masked_trading.masked_step`'s.
    """
    t_next, equity, cash, positions, weights, notional, costs, drawdown, portfolio = out
    financing, unfilled, exits, ended = more
    n_sizes = sizes.shape[0]
    target = np.empty(1)
    before = np.empty(1)
    bracketed = rules[BRACKETED] > 0.0
    for b in range(t.shape[0]):
        row = t[b]
        prices = closes[row]
        bar = bars[row]
        codes = reasons[b]
        e = single_codes_row(
            holdings,
            b,
            prices[0],
            peak[b],
            day_open[b],
            session_ok[row],
            block[row],
            sizes,
            long_short,
            caps[row],
            drawdown_floor,
            loss_floor,
            bar,
            rules,
            codes,
        )
        action = actions[b]
        invalid[b] = codes[action] != 0
        n_invalid_out[b] = n_invalid[b] + invalid[b]
        before[0] = holdings[b, 0]
        target[0] = before[0]
        if not invalid[b] and action != HOLD:
            if action == 2 * n_sizes + 1:
                target[0] = 0.0
            elif action <= n_sizes:
                target[0] = before[0] + sizes[action - 1] * e / prices[0]
            else:
                target[0] = before[0] - sizes[action - n_sizes - 1] * e / prices[0]
        notional[b], costs[b] = trade_row(holdings, b, target, prices, bar, rules)
        if day[row + 1] != day[row]:
            day_open[b] = holdings[b, 0] * prices[0] + holdings[b, 1]
        if bracketed:
            enter_brackets_row(levels, b, before, holdings, prices, bar, rules)
        financed, closed, exit_notional, exit_costs, called = settle_row(
            holdings, levels, b, prices, row, closes, bars, rules, ohlc, GAPS_FILL_AT_OPEN
        )
        financing[b], unfilled[b], exits[b], ended[b] = financed, 0.0, closed, MARGIN_CALL if called else 0
        notional[b] += exit_notional
        costs[b] += exit_costs
        t_next[b] = row + 1
        e = record_row(holdings, peak, b, closes[row + 1], equity, cash, positions, weights, drawdown)
        portfolio[b, 0] = clip_bound(weights[b, 0])
        portfolio[b, 1] = clip_bound(cash[b] / e if e > 0.0 else 0.0)
        portfolio[b, 2] = clip_bound(drawdown[b])
        portfolio[b, 3] = clip_bound(e / initial_equity[b] - 1.0)


class SingleAssetEnv(MaskedActions, KernelTradingEnv):
    """Discrete trading of one instrument (seed 002's ``MaskableTradingEnv`` on QQQ) with legal-action masks.

    ## Description
    The agent watches the instrument (causal indicators over a look-back window, plus the data's own
    features) and trades it in a few discrete sizes, long only (default) or long and short. All orders fill
    at the close of bar ``t`` (fractional shares) through the accounting core, paying the frictions of
    ``costs`` (default: 10 bps commission). :meth:`action_masks` says which actions are legal at the current
    bar; sb3-contrib's ``MaskablePPO`` finds it through any wrapper or ``VecEnv``.

    * **buy, size f** adds ``f E_t`` of notional (at the mid price): ``f E_t / p_t`` more shares (covering a
      short first when there is one);
    * **sell, size f** removes ``f E_t / p_t`` shares (long only: at most down to flat);
    * **flatten** closes the position; **hold** trades nothing.

    **Legal actions**: the rule set of MaskedTrading-v0 (:mod:`sb3_trading.envs.mask_rules`), applied to the
    risk a trade *adds* (a buy that leaves a long position, a sell that leaves a short one): ``session``
    (``session_hours`` in ``exchange_tz``, or ``session_bars``), ``drawdown`` (``max_drawdown``),
    ``daily_loss`` (``daily_loss_limit``), ``volatility`` (``max_volatility``), the direction-aware regimes of
    the instrument (``regime_rules``: in a crisis only reduce, a high-volatility bear market forbids new long
    risk and a high-volatility bull market new short risk), ``cash`` (a buy must be paid for, costs included),
    ``position_limit`` (``|V'| / E <= max_position``, scaled by ``position_vol_target``) and ``no_short`` (long
    only). Trades that only reduce risk (a sell of a long, a buy covering a short, flatten) stay legal under
    every rule but the session. ``info["mask_reasons"]`` holds the rule code of each action for the step's
    decision (:data:`~sb3_trading.envs.mask_rules.MASK_RULES`); :meth:`mask_reasons` names them.

    A masked action chosen anyway (plain ``PPO``) is **not executed** (a hold): ``info["invalid_action"]``
    is ``True`` and ``invalid_action_penalty`` is taken off the reward.

    ## Action Space
    ``Discrete(2 * len(sizes) + 2)``: ``0`` hold, ``1 .. k`` buy ``sizes[i - 1]``, ``k + 1 .. 2k`` sell
    ``sizes[i - k - 1]``, ``2k + 1`` flatten; ``action_labels`` names them (``"hold"``, ``"buy_0.25"``, ...,
    ``"sell_0.25"``, ..., ``"flatten"``). An integer (Python or NumPy, or a one-element integer array).

    ## Observation Space
    ``Dict``: ``market`` ``(window, F)`` normalised causal features of ``feature_assets`` (default: the
    instrument) and the data's features (``signal[asset]`` for the synthetic market); ``portfolio`` ``(4,)``
    ``[V / E, C / E, drawdown, E / E_0 - 1]`` at the close of ``t``, clipped to +-10.

    ## Rewards
    ``E_{t+1} / E_t - 1`` net of costs, minus ``invalid_action_penalty`` on a masked step.

    ## Starting State
    All cash, at a uniformly drawn bar (``random_start=True``, default) or the first bar past the warm-up.

    ## Episode End
    Terminated on ruin (equity ``<= 0``) or a margin call (with ``margin``); truncated after ``episode_length``
    decisions (default 256) or at the last bar of the data.

    ## Arguments
    :param data: the market; ``None`` builds ``make_regime_market(n_assets=1, seed=synthetic_seed)`` (a
        learnable one-ticker market with a causal ``signal[asset_0]`` feature).
    :param asset: the traded asset of ``data`` (``None``: its only asset; data with several needs a name).
    :param sizes: trade sizes as fractions of equity, each in ``(0, 1]``, distinct (a buy of 1 is never legal from
        cash once costs are charged: the default's largest is 0.95).
    :param long_short: allow short positions (sells below flat).
    :param max_position: maximum ``|V| / E`` a risk-adding trade may reach, ``> 0``.
    :param max_drawdown: drawdown from the episode's peak past which new risk is masked, in ``[0, 1]``;
        ``None`` (default) disables it.
    :param session_bars, session_open, session_close, session_hours, exchange_tz, daily_loss_limit,
        max_volatility, volatility_window, regime_rules, regime_volatility, regime_trend, crisis_drawdown,
        position_vol_target: the mask rules, as in :class:`~sb3_trading.envs.masked_trading.MaskedTradingEnv`
        (the instrument is the risk asset of the volatility and regime rules).
    :param invalid_action_penalty: taken off the reward of a masked step, ``>= 0``.
    :param initial_cash: starting cash, account currency.
    :param commission_bps: commission in bps of filled notional (a shortcut for ``costs``).
    :param slippage_bps: adverse fill price move in bps (the same shortcut).
    :param window: bars in the ``market`` observation.
    :param episode_length: decisions per episode (``None``: to the end of the data).
    :param random_start: draw the start bar uniformly from ``self.np_random``.
    :param indicators: indicator specs (default :data:`sb3_trading.features.DEFAULT_INDICATORS`).
    :param feature_assets: assets the indicators are computed on (default: the traded one).
    :param normalizer: as in every env (default: the causal expanding z-score).
    :param feature_fits: fitted indicator state from the training data (``regime_prob``'s HMM), e.g. the training
        env's ``feature_fits``; ``None`` fits it on this env's data (see :class:`~sb3_trading.envs.TradingEnv`).
    :param synthetic_seed: seed of the synthetic market used when ``data`` is ``None``.
    :param render_mode: ``None`` or ``"ansi"``.
    :param costs: a :class:`~sb3_trading.sim.CostModel`, a dict of its fields or a venue preset name; every friction
        but lots and a participation cap (:data:`SUPPORTED_RULES`).
    :param financing: a :class:`~sb3_trading.sim.Financing` or a dict of its fields (interest on cash, short
        borrow fees).
    :param margin: a :class:`~sb3_trading.sim.Margin` or a dict of its fields (a margin call liquidates and ends the
        episode).
    :param brackets: a :class:`~sb3_trading.sim.Brackets` or a dict of its fields; needs open, high and low.
    """

    def __init__(
        self,
        data: MarketData | None = None,
        asset: str | None = None,
        sizes: Sequence[float] = (0.25, 0.5, 0.95),
        long_short: bool = False,
        max_position: float = 1.0,
        max_drawdown: float | None = None,
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
        invalid_action_penalty: float = 0.0,
        initial_cash: float = 100_000.0,
        commission_bps: float = 10.0,
        slippage_bps: float = 0.0,
        window: int = 1,
        episode_length: int | None = 256,
        random_start: bool = True,
        indicators: Sequence[str] | None = None,
        feature_assets: Sequence[str] | None = None,
        normalizer: NormalizerArg = DEFAULT_NORMALIZER,
        feature_fits: FeatureFits | None = None,
        synthetic_seed: int = 0,
        render_mode: str | None = None,
        costs: CostModel | str | dict | None = None,
        financing: Financing | dict | None = None,
        margin: Margin | dict | None = None,
        brackets: Brackets | dict | None = None,
    ) -> None:
        rules = resolve_market_rules(costs, commission_bps, slippage_bps, financing, margin, brackets)
        if data is None:
            data = self.default_market(check_int("synthetic_seed", synthetic_seed, 0))
        if not isinstance(data, MarketData):
            raise TypeError(f"data must be a sb3_trading.data.MarketData, got {type(data).__name__}")
        if asset is None:
            if data.n_assets != 1:
                raise ValueError(
                    f"the data holds {data.n_assets} assets {list(data.asset_names)}: name the traded one with asset=..."
                )
            asset = data.asset_names[0]
        elif asset not in data.asset_names:
            raise ValueError(f"asset={asset!r} is not in the data's assets {list(data.asset_names)}")
        super().__init__(
            data=data,
            initial_cash=initial_cash,
            window=window,
            episode_length=episode_length,
            random_start=random_start,
            indicators=indicators,
            normalizer=normalizer,
            feature_fits=feature_fits,
            render_mode=render_mode,
            feature_assets=[asset] if feature_assets is None else feature_assets,
        )
        self.asset = asset
        self.n_assets = 1
        self.traded_assets = (asset,)
        column = data.asset_names.index(asset)
        self.market_rules = rules
        self.costs = rules.costs
        #: the compiled rules of the instrument (``bars`` ``(T, F, 1)``) the kernels read
        self.frictions = self._market_rules(rules, SUPPORTED_RULES, traded=[column])

        # ---------------------------------------------------------- action table
        self.sizes = check_sizes(sizes)
        self.long_short = check_bool("long_short", long_short)
        k = len(self.sizes)
        self.n_actions = 2 * k + 2
        self.flatten_action = 2 * k + 1
        self.action_labels = (
            "hold",
            *(f"buy_{f:g}" for f in self.sizes),
            *(f"sell_{f:g}" for f in self.sizes),
            "flatten",
        )
        # ---------------------------------------------------------- mask rules
        self.max_position = check_fraction("max_position", max_position)
        self.max_drawdown = (
            None if max_drawdown is None else check_fraction("max_drawdown", max_drawdown, upper=1.0, allow_zero=True)
        )
        warn_unreachable_sizes(self.sizes, self.frictions, {"max_position": self.max_position})
        BarRules(
            data,
            risk_asset=asset,
            cap_assets=(asset, asset),
            max_position=self.max_position,
            session_bars=session_bars,
            session_open=session_open,
            session_close=session_close,
            session_hours=session_hours,
            exchange_tz=exchange_tz,
            daily_loss_limit=daily_loss_limit,
            max_volatility=max_volatility,
            volatility_window=volatility_window,
            regime_rules=regime_rules,
            regime_volatility=regime_volatility,
            regime_trend=regime_trend,
            crisis_drawdown=crisis_drawdown,
            position_vol_target=position_vol_target,
            fits=self.feature_fits,
        ).attach(self)
        self.invalid_action_penalty = check_real("invalid_action_penalty", invalid_action_penalty, 0.0)

        # ---------------------------------------------------------- book and spaces
        self._prices = kernel_array(data.prices[:, [column]])  # (T, 1)
        self.action_space = spaces.Discrete(self.n_actions)
        self.observation_space = self._observation_space(_PORTFOLIO_SIZE)
        self._kernel = self.make_kernel(1)  # a valid flat book, so action_masks() works before reset()

    @classmethod
    def default_market(cls, seed: int = 0) -> MarketData:
        """``make_regime_market(n_assets=1, seed=seed)``: the market built when ``data`` is ``None``."""
        return make_regime_market(n_assets=1, seed=seed)

    def make_kernel(self, n_envs: int) -> SingleAssetKernel:
        """The batched dynamics of this env for ``n_envs`` accounts (the env itself runs ``n_envs=1``)."""
        return SingleAssetKernel(self, n_envs)


class SingleAssetKernel(MaskedKernel):
    """Batched SingleAsset-v0 dynamics: ``B`` accounts trading one instrument with discrete, masked actions
    (:class:`SingleAssetEnv`); compiled in :func:`single_codes_kernel` and :func:`single_step`."""

    codes_kernel = staticmethod(single_codes_kernel)
    step_kernel = staticmethod(single_step)
    portfolio_size = _PORTFOLIO_SIZE
    cash_field = 1

    def __init__(self, env: SingleAssetEnv, n_envs: int) -> None:
        super().__init__(env, n_envs)
        self.long_short = env.long_short

    def rule_arguments(self) -> tuple[Any, ...]:
        return (
            self._session_ok,
            self._buy_block,
            self.sizes,
            self.long_short,
            self._caps,
            self._drawdown_floor,
            self._loss_floor,
            self._day,
            self._friction_bars,
            self._friction_rules,
        )
