"""``sb3_trading/LeveragedPair-v0``: split capital between a leveraged ETF and its inverse, in whole shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from gymnasium import spaces

from sb3_trading.common.validation import check_choice, check_int, check_real, is_real
from sb3_trading.data import MarketData
from sb3_trading.data.synthetic import make_leveraged_pair_market
from sb3_trading.envs.base import (
    DEFAULT_NORMALIZER,
    ONE_INT,
    KernelTradingEnv,
    NormalizerArg,
    TradingKernel,
    Transition,
    clip_portfolio,
)
from sb3_trading.sim import CostModel, Fills, Portfolio, equity_fractions, fill_trades, with_cash_column

#: indicators computed on the index by default: 1 + 1 + 1 + 3 = 6 columns for one asset
LEVERAGED_PAIR_INDICATORS: tuple[str, ...] = ("log_return", "volatility", "rsi", "macd")
#: accepted ``reward`` values
REWARDS: tuple[str, ...] = ("step_return", "cumulative_pnl")
#: accepted ``initial_split`` strings (a number in ``[0, 1]`` is accepted as well)
INITIAL_SPLITS: tuple[str, ...] = ("even", "random")
#: size of the ``portfolio`` observation vector
PORTFOLIO_SIZE = 5


def leveraged_pair_targets(
    fractions: np.ndarray,
    equity: np.ndarray,
    cash: np.ndarray,
    positions: np.ndarray,
    prices: np.ndarray,
    costs: CostModel,
) -> np.ndarray:
    """LeveragedPair action -> affordable whole-share targets ``(bull, bear)``, batched. Pure function.

    1. Target values ``V = E_t * (f, 1 - f)``; target shares ``floor(V / S_t)`` (whole shares,
       rounded toward zero by :func:`~sb3_trading.sim.round_to_lots`); the rounding remainder stays cash.
    2. Affordability: the trade from ``positions`` to those targets is priced with
       :func:`~sb3_trading.sim.fill_trades`. If it would leave negative cash
       ``C' = C - q . S - costs < 0`` (commission and slippage on top of whole shares that use almost
       all the equity), the *buys* are cut by whole shares in proportion to the shares bought:
       ``k_i = ceil(D * b_i / sum_j b_j u_j)`` with shortfall ``D = -C'``, shares bought ``b_i`` and
       cash per bought share ``u_i = S_i (1 + slippage) (1 + commission)``. The cut frees
       ``sum_i k_i u_i >= D``, so cash stays ``>= 0``, and ``k_i <= b_i`` (a buy never turns into a sell).
       Sells are never changed.

    :param fractions: ``(B,)`` fraction of equity in the bull ETF, in ``[0, 1]``.
    :param equity: ``(B,)`` equity ``E_t`` marked at ``prices``.
    :param cash: ``(B,)`` cash before the trade, ``>= 0``.
    :param positions: ``(B, 2)`` current whole-share holdings ``(bull, bear)``, ``>= 0``.
    :param prices: ``(B, 2)`` prices ``S_t`` ``(bull, bear)`` at which the trade fills.
    :param costs: the friction model of the book that will execute the trade.
    :return: ``(B, 2)`` whole-share targets, ``>= 0``.
    """
    return affordable_pair_targets(fractions, equity, cash, positions, prices, costs)[0]


def affordable_pair_targets(
    fractions: np.ndarray,
    equity: np.ndarray,
    cash: np.ndarray,
    positions: np.ndarray,
    prices: np.ndarray,
    costs: CostModel,
) -> tuple[np.ndarray, Fills | None]:
    """:func:`leveraged_pair_targets` and, when no buy had to be cut, the :class:`~sb3_trading.sim.Fills` of
    trading to them (``fill_trades(target - positions, prices, costs)``, for ``Portfolio.trade_to``); ``None``
    after a cut (the trade changed, price it again)."""
    bull = equity * fractions
    values = np.concatenate((bull[:, None], (equity - bull)[:, None]), axis=1)  # (B, 2): E f, E - E f
    target = np.trunc(values / prices)  # round_to_lots(values / prices, 1.0): whole shares, toward zero
    traded = target - positions
    fills = fill_trades(traded, prices, costs)
    cash_after = cash - (np.vecdot(traded, prices) + fills.costs)
    if min(cash_after.tolist()) >= 0.0:  # every account can pay (a Python min is cheaper than .all() here)
        return target, fills
    bought = np.maximum(traded, 0.0)
    outlay = np.vecdot(bought, prices * ((1.0 + costs.slippage) * (1.0 + costs.commission)))
    shortfall = np.maximum(-cash_after, 0.0)
    if min(outlay.tolist()) > 0.0:
        share = shortfall / outlay
    else:  # an account that buys nothing has no shortfall to cut
        share = np.divide(shortfall, outlay, out=np.zeros_like(shortfall), where=outlay > 0)
    return target - np.ceil(share[:, None] * bought), None


class LeveragedPairEnv(KernelTradingEnv):
    """Split capital between a leveraged ETF (bull) and its inverse ETF (bear), in whole shares.

    ## Description
    The market holds an index and two ETFs derived from it (see
    :func:`sb3_trading.data.derive_leveraged_pair`): a daily-rebalanced ``+L`` ETF
    (``bull``) and its ``-L`` inverse (``bear``). The agent sees the index only and
    decides, at the close of each bar ``t``, which fraction of its equity ``E_t`` to hold
    in the bull ETF; the rest goes to the bear ETF. Targets are whole shares
    ``floor(a E_t / S^bull_t)`` and ``floor((1 - a) E_t / S^bear_t)``; the remainder stays
    cash (no interest). The trade fills at the close of ``t`` through the accounting core,
    paying ``commission_bps`` and ``slippage_bps`` of traded notional. If commission and
    slippage would make cash negative, the buys are reduced by whole shares (see
    :func:`leveraged_pair_targets`), so cash never goes below zero and there is no leverage
    beyond the ETFs' own.

    ## Action Space
    ``Box(0, 1, (1,), float32)``: the fraction ``a`` of equity in the bull ETF, ``1 - a`` in
    the bear ETF. Actions outside ``[0, 1]`` are clipped; a wrong shape or a non-finite value
    raises ``ValueError``.

    ## Observation Space
    ``Dict`` in the shared layout (see :mod:`sb3_trading.envs.base`):

    =============  ===============  ==============================================================
    key            shape            content
    =============  ===============  ==============================================================
    ``market``     ``(window, F)``  rows ``t-window+1..t`` of the index's causal indicators
                                    (default :data:`LEVERAGED_PAIR_INDICATORS`: log return,
                                    volatility, RSI, MACD line/signal/histogram = 6 columns) followed
                                    by the data's own ``features`` (``signal[index]`` on the synthetic
                                    market), so ``F = 6 + data.n_features``; z-scored by the normaliser
    ``portfolio``  ``(5,)``         ``[w_bull, w_bear, w_cash, E_t / E_0 - 1, d / D]``: position values
                                    and cash as fractions of equity, the episode's P&L against the
                                    starting capital ``E_0 = initial_cash``, and the decisions made
                                    ``d`` over the horizon ``D`` (``max_days``, or the bars left to the
                                    end of the data from the episode start when ``max_days`` is None);
                                    clipped to +-10
    =============  ===============  ==============================================================

    Only the index drives the ``market`` block (``feature_assets=[index_asset]``); the ETF
    prices enter the observation through the portfolio weights.

    ## Rewards
    ``reward="step_return"`` (default): the portfolio return from ``t`` to ``t + 1`` net of
    costs, ``E_{t+1} / E_t - 1``. ``reward="cumulative_pnl"``: the cumulative P&L reward of
    the source notebook, ``E_{t+1} / E_0 - 1`` with ``E_0 = initial_cash`` (it rewards the
    level reached at every step, not the change). ``info["portfolio_return"]`` is always the
    step return.

    ## Starting State
    At bar ``t_0`` (uniformly drawn with ``random_start=True``, else the first bar past the
    indicators' warm-up) the account holds ``initial_cash`` and buys the initial split
    ``a_0`` (``"even"``: 0.5; ``"random"``: ``U(0, 1)`` from ``self.np_random``; or a given
    number) with the same whole-share and affordability rule, at the close of ``t_0``,
    paying commission and slippage. The reset ``info`` reports that purchase: ``costs``,
    ``turnover`` (notional / ``initial_cash``) and ``portfolio_return = E_{t_0} / E_0 - 1``
    (minus the costs). The first ``step`` decides at the same close ``t_0`` and trades from
    these holdings.

    ## Episode End
    Terminated on the step where equity reaches the stop-loss,
    ``E_{t+1} <= (1 + stop_loss) E_0`` (default ``stop_loss=-0.05``: 5 % below the starting
    capital). Truncated after ``max_days`` decisions or at the last bar of the data.
    A step after the episode ended raises ``gymnasium.error.ResetNeeded`` until ``reset()``.

    ## Arguments
    All are fixed at construction (the attributes of the same names are for reading).

    :param data: ``MarketData`` with the index and both ETFs; ``None`` builds
        ``make_leveraged_pair_market(seed=synthetic_seed)``.
    :param initial_cash: starting capital ``E_0``, account currency, in ``(0, 1e15]``
        (:data:`~sb3_trading.envs.trading_env.MAX_INITIAL_CASH`: whole share counts stay exact).
    :param commission_bps: commission in bps of filled notional, in ``[0, 10000)``.
    :param slippage_bps: adverse fill price move in bps, in ``[0, 10000)``.
    :param window: bars in the ``market`` observation.
    :param max_days: decisions per episode (``None``: to the end of the data).
    :param stop_loss: episode P&L in ``(-1, 0)`` at or below which the episode terminates
        (``None`` disables the stop-loss).
    :param reward: ``"step_return"`` or ``"cumulative_pnl"``.
    :param initial_split: bull fraction bought at reset: ``"even"`` (0.5), ``"random"`` or a number in ``[0, 1]``.
    :param random_start: draw the start bar uniformly from ``self.np_random``.
    :param index_asset: name of the index column in ``data``.
    :param bull_asset: name of the leveraged ETF column.
    :param bear_asset: name of the inverse ETF column.
    :param indicators: indicator names computed on the index (default :data:`LEVERAGED_PAIR_INDICATORS`).
    :param normalizer: ``"expanding"`` (default: causal z-score of each row with the statistics of the rows
        up to it), ``"rolling"``/``"rolling:<window>"``, ``"fit"`` (fitted on this env's whole data: make it on
        the training slice), a normaliser instance (e.g. the training env's ``normalizer``), or ``None``; see
        :class:`~sb3_trading.envs.base.TradingEnv`.
    :param synthetic_seed: seed of the synthetic market used when ``data`` is ``None``.
    :param render_mode: ``None`` or ``"ansi"``.
    """

    def __init__(
        self,
        data: MarketData | None = None,
        initial_cash: float = 100_000.0,
        commission_bps: float = 10.0,
        slippage_bps: float = 0.0,
        window: int = 10,
        max_days: int | None = 30,
        stop_loss: float | None = -0.05,
        reward: str = "step_return",
        initial_split: str | float = "even",
        random_start: bool = True,
        index_asset: str = "index",
        bull_asset: str = "bull",
        bear_asset: str = "bear",
        indicators: Sequence[str] | None = None,
        normalizer: NormalizerArg = DEFAULT_NORMALIZER,
        synthetic_seed: int = 0,
        render_mode: str | None = None,
    ) -> None:
        if data is None:
            data = self.default_market(check_int("synthetic_seed", synthetic_seed, 0))
        names = {"index_asset": index_asset, "bull_asset": bull_asset, "bear_asset": bear_asset}
        if len(set(names.values())) != 3:
            raise ValueError(f"index_asset, bull_asset and bear_asset must be three different assets, got {names}")
        if isinstance(data, MarketData):
            for arg, name in names.items():
                if name not in data.asset_names:
                    raise ValueError(f"{arg}={name!r} is not an asset of the data; its assets are {list(data.asset_names)}")
        max_days = check_int("max_days", max_days, 1, allow_none=True)
        stop_loss = check_real("stop_loss", stop_loss, -1.0, 0.0, strict_minimum=True, strict_maximum=True, allow_none=True)
        check_choice("reward", reward, REWARDS)
        if isinstance(initial_split, str):
            if initial_split not in INITIAL_SPLITS:
                raise ValueError(f"initial_split must be one of {INITIAL_SPLITS} or a number in [0, 1], got {initial_split!r}")
        elif not is_real(initial_split) or not 0.0 <= initial_split <= 1.0:  # type: ignore[operator]
            raise ValueError(f"initial_split must be one of {INITIAL_SPLITS} or a number in [0, 1], got {initial_split!r}")
        indicators = LEVERAGED_PAIR_INDICATORS if indicators is None else indicators
        super().__init__(
            data=data,
            initial_cash=initial_cash,
            window=window,
            episode_length=None,
            random_start=random_start,
            indicators=indicators,
            normalizer=normalizer,
            render_mode=render_mode,
            feature_assets=[index_asset],
        )
        self.episode_length = self._check_episode_length("max_days", max_days)
        self.max_days = self.episode_length
        self.stop_loss = stop_loss
        self.reward_mode = reward
        self.initial_split = initial_split if isinstance(initial_split, str) else float(initial_split)
        self.index_asset, self.bull_asset, self.bear_asset = index_asset, bull_asset, bear_asset
        self.costs = CostModel(commission_bps, slippage_bps)
        self.n_assets = 2  # the traded pair; info positions/weights are (bull, bear)
        self.traded_assets = (bull_asset, bear_asset)
        columns = [data.asset_names.index(bull_asset), data.asset_names.index(bear_asset)]
        self._prices = np.ascontiguousarray(data.prices[:, columns])  # (T, 2) closes of (bull, bear)
        # equity at or below this level terminates the episode
        self._stop_level = -np.inf if self.stop_loss is None else (1.0 + self.stop_loss) * self.initial_cash

        self.action_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.observation_space = self._observation_space(PORTFOLIO_SIZE)
        self._kernel = self.make_kernel(1)

    @classmethod
    def default_market(cls, seed: int = 0) -> MarketData:
        """``make_leveraged_pair_market(seed=seed)``: the market built when ``data`` is ``None``."""
        return make_leveraged_pair_market(seed=seed)

    def make_kernel(self, n_envs: int) -> LeveragedPairKernel:
        """The batched dynamics of this env for ``n_envs`` accounts (the env itself runs ``n_envs=1``)."""
        return LeveragedPairKernel(self, n_envs)


class _Opening(NamedTuple):
    """Fresh accounts right after buying their initial split: ``(k,)`` arrays, ``holdings`` ``(k, 3)`` (bull and
    bear shares, then cash: :attr:`~sb3_trading.sim.Portfolio.holdings`' layout) and ``weights`` ``(k, 2)``."""

    holdings: np.ndarray
    peak_equity: np.ndarray
    initial_equity: np.ndarray
    equity: np.ndarray
    drawdown: np.ndarray
    notional: np.ndarray
    costs: np.ndarray
    weights: np.ndarray
    portfolio: np.ndarray

    def to_table(self) -> np.ndarray:
        """The openings as one ``(k, 16)`` float64 table, so a reset takes its rows in one call (:meth:`from_table`)."""
        columns = [column.reshape(column.shape[0], -1).astype(np.float64) for column in self]
        return np.ascontiguousarray(np.concatenate(columns, axis=1))

    @classmethod
    def from_table(cls, table: np.ndarray) -> _Opening:
        """Views of the columns of a :meth:`to_table` table (the float32 ``portfolio`` round-trips exactly)."""
        return cls(
            table[:, 0:3],
            table[:, 3],
            table[:, 4],
            table[:, 5],
            table[:, 6],
            table[:, 7],
            table[:, 8],
            table[:, 9:11],
            table[:, 11:16].astype(np.float32),
        )


class LeveragedPairKernel(TradingKernel):
    """Batched LeveragedPair-v0 dynamics: ``B`` accounts splitting equity between the bull and bear ETF
    (see :class:`LeveragedPairEnv`). ``step`` takes ``(B, 1)`` bull fractions already clipped to ``[0, 1]``.

    Extra state: :attr:`horizon` ``(B,)``, the decisions an episode may last (the observation's clock).
    """

    def __init__(self, env: LeveragedPairEnv, n_envs: int) -> None:
        super().__init__(env, n_envs, env._prices, env.costs, env.initial_cash)
        self.costs = env.costs
        self.initial_split = env.initial_split
        self.reward_mode = env.reward_mode
        self._stop_level = env._stop_level
        self._horizons(self.start_t)
        # with a fixed initial split, an opening depends on the start bar only: compute them all once
        self._openings: np.ndarray | None = None  # (bars, 16), see _Opening.to_table
        if self.initial_split != "random":
            starts = np.arange(self.first_t, self.last_t)  # every bar that has a next bar
            self._openings = self._open(starts, np.full(starts.shape[0], float(self._fixed_split()))).to_table()

    def _fixed_split(self) -> float:
        return 0.5 if self.initial_split == "even" else float(self.initial_split)

    def _horizons(self, start: np.ndarray) -> None:
        self.horizon = (
            np.full_like(start, self.episode_length)
            if self.episode_length is not None
            else self.path_last_t.take(start) - start
        )

    def set_clock(self, rows: np.ndarray, t: np.ndarray | int | None = None, start: np.ndarray | int | None = None) -> None:
        super().set_clock(rows, t, start)
        if start is not None:
            self._horizons(self.start_t)

    def draw(self, rngs: Sequence[np.random.Generator]) -> dict[str, np.ndarray]:
        """Per reset: the start bar, then the initial bull fraction (``U(0, 1)`` with ``initial_split="random"``)."""
        starts = self.draw_starts(rngs)  # each generator draws its start before its split
        if self.initial_split == "random":
            splits = np.array([rng.uniform(0.0, 1.0) for rng in rngs])
        else:
            splits = np.full(len(rngs), self._fixed_split())
        return {"start": starts, "split": splits}

    def _portfolio(self, fractions: np.ndarray, equity: np.ndarray, clock: np.ndarray) -> np.ndarray:
        """``(k, 5)``: ``[w_bull, w_bear, w_cash, E / E_0 - 1, clock]`` from ``fractions`` ``(k, 3)`` (weights, cash
        weight), ``clock`` = decisions made / horizon."""
        growth = equity / self.initial_cash - 1.0
        return clip_portfolio(np.concatenate((fractions, growth[:, None], clock[:, None]), axis=1))

    def _open(self, start: np.ndarray, split: np.ndarray) -> _Opening:
        """Fresh accounts buy the bull fractions ``split`` ``(k,)`` at the close of the bars ``start`` ``(k,)``,
        in whole shares, paying costs (the same rule as every step, from all cash)."""
        k = start.shape[0]
        fresh = Portfolio(k, 2, self.costs)
        fresh.reset(self.initial_cash)
        prices = self._prices.take(start, axis=0)
        target = leveraged_pair_targets(split, np.full(k, self.initial_cash), fresh.cash, fresh.positions, prices, self.costs)
        fills = fresh.trade_to(target, prices)
        values, equity, drawdown = fresh.mark_values(with_cash_column(prices))
        fractions = equity_fractions(values, equity)
        portfolio = self._portfolio(fractions, equity, np.zeros(k))  # no decision made yet
        columns = (fresh.holdings, fresh.peak_equity, fresh.initial_equity, equity, drawdown)
        return _Opening(*columns, fills.notional, fills.costs, fractions[:, :2], portfolio)

    def reset(self, rows: np.ndarray, draws: dict[str, np.ndarray]) -> Transition:
        """Fresh accounts buy the drawn split at the close of the start bar (see :meth:`_open`)."""
        start, split = draws["start"], draws["split"]
        self.set_clock(rows, t=start, start=start)
        if self._openings is None:
            opening = self._open(start, split)
        else:  # a fresh copy of the precomputed openings of these start bars (one take of contiguous rows)
            opening = _Opening.from_table(self._openings.take(start - self.first_t, axis=0))
        book = self.book
        holdings = opening.holdings
        book.holdings[rows] = holdings
        book.peak_equity[rows] = opening.peak_equity
        book.initial_equity[rows] = opening.initial_equity
        self._set_equity(rows, opening.equity)
        return Transition(
            equity=opening.equity,
            equity_t=np.full(start.shape[0], self.initial_cash),
            cash=holdings[:, 2],
            positions=holdings[:, :2],
            weights=opening.weights,
            notional=opening.notional,
            costs=opening.costs,
            drawdown=opening.drawdown,
            t=start.copy(),
            portfolio=opening.portfolio,
            extras={"bull_fraction": split},
        )

    def step(self, actions: np.ndarray) -> Transition:
        fraction = actions[:, 0]
        t, book = self.t, self.book
        prices_t = self._prices.take(t, axis=0)  # (B, 2)
        target, fills = affordable_pair_targets(fraction, self.equity, book.cash, book.positions, prices_t, self.costs)
        fills = book.trade_to(target, prices_t, fills)

        return self.finish_step(t + ONE_INT, fills.notional, fills.costs, {"bull_fraction": fraction})

    def portfolio_block(self, fractions: np.ndarray, equity: np.ndarray, drawdown: np.ndarray, t: np.ndarray) -> np.ndarray:
        return self._portfolio(fractions, equity, (t - self.start_t) / self.horizon)

    def outcome(self, equity: Any, equity_t: Any, notional: Any, t: Any, end_t: Any) -> tuple[Any, Any, Any, Any, Any]:
        """The step return (or ``E / E_0 - 1`` with ``reward="cumulative_pnl"``); terminated at the stop-loss level."""
        portfolio_return = equity / equity_t - 1.0
        reward = portfolio_return if self.reward_mode == "step_return" else equity / self.initial_cash - 1.0
        terminated = equity <= self._stop_level
        return reward, portfolio_return, terminated, (t >= end_t) > terminated, notional / equity_t
