"""Shared multi-agent market mechanics: heuristic traders, netted price impact, shaped rewards.

Pure NumPy, batched over agents (the ``n_envs`` axis of one :class:`~sb3_trading.sim.Portfolio` is
the agents: learners first, then the heuristic traders). ``A`` below is the number of agents, ``H``
the number of heuristic traders, ``N`` the number of assets and ``T`` the number of bars. Both
``sb3_trading/MarketImpact-v0`` and its PettingZoo view run the market through :class:`ImpactMarket`,
so the money arithmetic lives here and in :mod:`sb3_trading.sim.core` only.

One market step at bar ``t`` (market prices ``P_t``, data closes ``D_t``, accumulated impact ``M_t``)
-----------------------------------------------------------------------------------------------------
1. Every agent ``a`` submits long-only target weights ``w_a`` (``w >= 0``, ``sum w <= 1``; the rest is
   cash) that apply to its equity ``E_a,t`` marked at ``P_t``: target shares ``w_a E_a,t / P_t``
   (:func:`target_shares`; an agent with ``E <= 0`` targets no shares).
2. The orders are netted per asset at the decision price:
   ``net_i = sum_a (target_a,i - held_a,i) P_t,i`` (currency, ``+`` = net buying).
3. Impact ``I_i = clip(1 + impact_coef * net_i / (liquidity_i + 1), lo, hi)`` and every order fills at
   ``X_t = P_t * I`` (:func:`impact_factors`; ``impact_coef = 0`` switches impact off, ``X_t = P_t``),
   paying the book's commission and slippage on top.
4. The impact is carried into the price process: ``M_{t+1} = (M_t * I)^(1 - impact_decay)``, and
   ``P_{t+1} = D_{t+1} * M_{t+1}``. With ``impact_decay = 0`` the impact is permanent (the execution
   price becomes the new reference price and the data supplies the exogenous return
   ``D_{t+1} / D_t``); with ``impact_decay = 1`` it is purely temporary (fills at ``D_t * I``, marks at
   ``D_{t+1}``); values in between let the premium ``log M`` relax geometrically. ``M = 1`` at the
   start of an episode and before it, so ``P_s = D_s`` for bars ``s <=`` the start.
5. Every book is marked at ``P_{t+1}``; an agent's P&L is ``E_a,t+1 - E_a,t`` (currency).

Causality: step 1 reads ``P_s`` for ``s <= t`` only, and ``P_{t+1}`` depends on data up to ``t + 1``
and orders up to ``t``.

Heuristic traders (each a pure function of past market prices and public flow -> target weights)
-----------------------------------------------------------------------------------------------
With the look-back return ``r_i = P_t,i / P_{max(t - lookback, 0),i} - 1``:

* ``"momentum"``: ``w_i = max(r_i, 0) / sum_j max(r_j, 0)`` -- proportional to the positive recent
  returns (``[0.5, 0.5]`` when both assets rose equally); all cash when nothing rose.
* ``"mean_reversion"``: the opposite, ``w_i = max(-r_i, 0) / sum_j max(-r_j, 0)`` -- buys what fell;
  all cash when nothing fell.
* ``"market_maker"``: provides liquidity against the last step's public net order flow and otherwise
  stays at equal weight: with ``f_i = net_{t-1,i} / sum_j |net_{t-1,j}|`` (0 when there was no flow),
  ``w_i = (1 - skew * f_i) / N`` renormalised to sum to 1 -- it leans out of what the crowd bought
  (sells into buying pressure) and into what it sold. ``skew`` in ``[0, 1]`` keeps ``w >= 0``.

Rewards (:func:`shaped_rewards`)
--------------------------------
With ``v_a = (E_a,t+1 - E_a,t) / initial_cash`` (every agent's step P&L as a fraction of the common
starting cash), ``m = mean_a v_a`` and ``sigma = std_a v_a`` (population std, ``ddof = 0``, over all
agents, learners and heuristics):
``reward_a = v_a + cooperation / (1 + sigma) + competition * (v_a - m) / sigma``; the competition term
is 0 when ``sigma <= SIGMA_FLOOR`` (all agents earned the same).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sb3_trading.common.validation import check_float_array, check_int, check_real, suggest
from sb3_trading.sim.core import CostModel, Fills, Portfolio, fill_trades

#: heuristic trader kinds
TRADER_KINDS: tuple[str, ...] = ("momentum", "mean_reversion", "market_maker")
#: how raw long-only actions become weights (see :func:`normalize_weights`)
WEIGHT_MODES: tuple[str, ...] = ("sum", "cap")
#: below this cross-agent std of ``v`` the competition term is 0 (no division by ~0)
SIGMA_FLOOR = 1e-12
#: floor of the score sum in the ``"sum"`` mode: an all-zero action is all cash
ZERO_ACTION = 1e-12
#: below this many values NumPy's sums add them one by one from 0, as Python's ``sum`` does (identical floats)
_SEQUENTIAL_SUM = 8
# 0-d operands: NumPy combines two arrays faster than an array and a Python float (the step's hot path)
_ZERO = np.zeros(())
_ONE = np.ones(())
_FLOORS = {"sum": np.full((), ZERO_ACTION), "cap": np.ones(())}


# ----------------------------------------------------------------------------- validation
def _check_real(name: str, value: object, low: float | None = None, high: float | None = None) -> float:
    return check_real(name, value, low, high)  # type: ignore[return-value]


@dataclass(frozen=True)
class HeuristicTrader:
    """One heuristic trader of the market (see the module docstring for the rules).

    :param kind: one of :data:`TRADER_KINDS`.
    :param lookback: bars of the look-back return ``r`` (momentum and mean reversion), ``>= 1``.
    :param skew: how strongly the market maker leans against the last net flow, in ``[0, 1]``.
    """

    kind: str
    lookback: int = 20
    skew: float = 0.5

    def __post_init__(self) -> None:
        if self.kind not in TRADER_KINDS:
            raise ValueError(
                f"unknown trader kind {self.kind!r}{suggest(self.kind, TRADER_KINDS)} Known kinds: {TRADER_KINDS}"
            )
        check_int("lookback", self.lookback, 1)
        _check_real("skew", self.skew, 0.0, 1.0)


def as_trader(spec: str | HeuristicTrader) -> HeuristicTrader:
    """A :class:`HeuristicTrader` from a kind name (default parameters) or a trader itself."""
    if isinstance(spec, HeuristicTrader):
        return spec
    if isinstance(spec, str):
        return HeuristicTrader(spec)
    raise TypeError(f"a trader must be a kind name {TRADER_KINDS} or a HeuristicTrader, got {type(spec).__name__}")


# ----------------------------------------------------------------------------- pure functions
def normalize_weights(raw: np.ndarray, mode: str = "sum", out: np.ndarray | None = None) -> np.ndarray:
    """Long-only raw scores ``(B, N)`` (``>= 0``) -> target weights ``(B, N)``, batched.

    * ``"sum"``: ``w = a / max(sum(a), ZERO_ACTION)``: fully invested; an all-zero row is all cash.
    * ``"cap"``: ``w = a / max(sum(a), 1)``: scores summing to less than 1 leave ``1 - sum(a)`` in cash.

    :param raw: ``(B, N)`` non-negative scores.
    :param mode: one of :data:`WEIGHT_MODES`.
    :param out: optional ``(B, N)`` array to write the weights into (may be ``raw`` itself).
    :return: ``(B, N)`` weights, ``>= 0``, each row summing to 1 or less.
    """
    floor = _FLOORS.get(mode)
    if floor is None:
        raise ValueError(f"mode must be one of {WEIGHT_MODES}, got {mode!r}")
    totals = np.add.reduce(raw, axis=1, keepdims=True)
    return np.divide(raw, np.maximum(totals, floor, out=totals), out=out)


def lookback_returns(prices: np.ndarray, t: int, lookbacks: np.ndarray, max_lookback: int | None = None) -> np.ndarray:
    """Look-back returns ``P_t / P_{max(t - L, 0)} - 1`` for several look-backs ``L``, reading rows ``<= t``.

    :param prices: ``(T, N)`` market price history (only rows ``<= t`` are read).
    :param t: the current bar.
    :param lookbacks: ``(H,)`` integer look-backs ``>= 1``.
    :param max_lookback: ``lookbacks.max()`` if the caller knows it (saves a reduction).
    :return: ``(H, N)`` returns.
    """
    past = t - lookbacks
    if t < (int(lookbacks.max()) if max_lookback is None else max_lookback):
        past = np.maximum(past, 0)
    return prices[t] / prices[past] - 1.0


def momentum_weights(returns: np.ndarray) -> np.ndarray:
    """Momentum weights ``(B, N)``: proportional to the positive look-back returns, all cash if none."""
    return normalize_weights(np.maximum(returns, 0.0))


def mean_reversion_weights(returns: np.ndarray) -> np.ndarray:
    """Mean-reversion weights ``(B, N)``: proportional to the losses ``max(-r, 0)``, all cash if none."""
    return normalize_weights(np.maximum(-returns, 0.0))


def market_maker_weights(last_net_notional: np.ndarray, skew: np.ndarray | float) -> np.ndarray:
    """Market-maker weights ``(B, N)``: equal weight, leaning against the last net order flow.

    ``f = net / sum|net|`` (0 without flow), ``w = (1 - skew f) / N`` renormalised to sum to 1.

    :param last_net_notional: ``(N,)`` the previous step's net traded notional per asset (currency).
    :param skew: ``(B,)`` or scalar, in ``[0, 1]``.
    :return: ``(B, N)`` weights.
    """
    return normalize_weights(_market_maker_scores(last_net_notional, np.reshape(skew, (-1, 1))))


def _market_maker_scores(last_net_notional: np.ndarray, skew: np.ndarray) -> np.ndarray:
    """``1 - skew * f`` with ``f = net / sum|net|`` (0 without flow); ``skew`` ``(B, 1)`` -> ``(B, N)``."""
    gross = np.add.reduce(np.abs(last_net_notional))
    if gross > 0.0:
        return 1.0 - skew * (last_net_notional / gross)
    return np.ones((skew.shape[0], last_net_notional.shape[0]))


def target_shares(weights: np.ndarray, equity: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """Target weights -> target share counts ``w * max(E, 0) / P``, batched over agents.

    :param weights: ``(A, N)`` target weights of equity.
    :param equity: ``(A,)`` equity marked at ``prices``; an agent with ``E <= 0`` targets no shares.
    :param prices: ``(N,)`` market prices at decision time.
    :return: ``(A, N)`` target shares.
    """
    return weights * (np.maximum(equity, 0.0)[:, None] / prices)


def net_notional(target: np.ndarray, positions: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """Net traded notional per asset over all agents, ``sum_a (target - positions) * P`` ``(N,)`` (``+`` = buying)."""
    return np.add.reduce(target - positions, axis=0) * prices


def impact_factors(
    net: np.ndarray, impact_coef: float, liquidity: np.ndarray | float, bounds: tuple[float, float]
) -> np.ndarray:
    """Multiplicative price impact ``clip(1 + impact_coef * net / (liquidity + 1), lo, hi)`` ``(N,)``.

    :param net: ``(N,)`` net traded notional (currency).
    :param impact_coef: ``k >= 0``; 0 gives no impact (all ones).
    :param liquidity: ``(N,)`` or scalar, currency, ``>= 0``.
    :param bounds: ``(lo, hi)`` with ``0 < lo <= 1 <= hi``.
    """
    factors = 1.0 + (impact_coef / (liquidity + 1.0)) * net
    return np.minimum(np.maximum(factors, bounds[0], out=factors), bounds[1], out=factors)


def shaped_rewards(
    pnl: np.ndarray, scale: float, cooperation: float = 0.05, competition: float = 0.1
) -> tuple[np.ndarray, float]:
    """Own P&L plus cooperation and competition terms, for every agent at once. Pure function.

    ``v = pnl / scale``; ``reward = v + cooperation / (1 + sigma) + competition * (v - mean(v)) / sigma``
    with ``sigma = std(v)`` (``ddof = 0``); the competition term is 0 when ``sigma <= SIGMA_FLOOR``.

    :param pnl: ``(A,)`` every agent's step P&L (currency).
    :param scale: currency per reward unit (the common initial cash), ``> 0``.
    :param cooperation: weight ``c`` of the bonus ``c / (1 + sigma)``.
    :param competition: weight ``k`` of the relative-performance term.
    :return: ``(rewards (A,), sigma)``.
    """
    n = pnl.shape[0]
    if n < _SEQUENTIAL_SUM:  # a handful of agents: the same arithmetic in Python floats, without array calls
        values = [p / scale for p in pnl.tolist()]
        mean = sum(values) / n
        deviation = [v - mean for v in values]
        sigma = math.sqrt(sum([d * d for d in deviation]) / n)
        bonus = cooperation / (1.0 + sigma)
        if sigma > SIGMA_FLOOR and competition != 0.0:
            weight = competition / sigma
            return np.array([v + bonus + weight * d for v, d in zip(values, deviation, strict=True)]), sigma
        return np.array([v + bonus for v in values]), sigma
    values = pnl / scale
    deviation = values - np.add.reduce(values) / n
    sigma = math.sqrt(np.add.reduce(deviation * deviation) / n)
    rewards = values + cooperation / (1.0 + sigma)
    if sigma > SIGMA_FLOOR and competition != 0.0:
        rewards += (competition / sigma) * deviation
    return rewards, sigma


# ----------------------------------------------------------------------------- traders, batched
def _block(rows: np.ndarray) -> slice | np.ndarray:
    """``rows`` as a slice when they are consecutive (a view, cheaper to index and to write into), else as is."""
    if rows.size and (rows == np.arange(rows[0], rows[0] + rows.size)).all():
        return slice(int(rows[0]), int(rows[0]) + rows.size)
    return rows


class HeuristicTraders:
    """A batch of heuristic traders evaluated together (no Python loop over traders or assets).

    Every trader's raw score is one affine function of one signal row, clipped at 0:
    ``max(a_h x_h + b_h, 0)`` with ``x_h = P_t / P_{t - lookback}`` for momentum (``a = 1, b = -1``: ``max(r, 0)``)
    and mean reversion (``a = -1, b = 1``: ``max(-r, 0)``), and ``x_h = f`` for a market maker
    (``a = -skew, b = 1``: ``1 - skew f >= 0``); so the ``(H, N)`` scores take three array operations, then
    :func:`normalize_weights`.

    :param traders: kind names or :class:`HeuristicTrader` specs.
    """

    def __init__(self, traders: Sequence[str | HeuristicTrader]) -> None:
        if isinstance(traders, (str, HeuristicTrader)):
            raise TypeError(f"traders must be a sequence of trader kinds, got the single {traders!r}; wrap it in a tuple")
        self.traders: tuple[HeuristicTrader, ...] = tuple(as_trader(spec) for spec in traders)
        kinds = np.array([trader.kind for trader in self.traders], dtype=object)
        self._signal_rows = np.flatnonzero(kinds != "market_maker")
        self._maker_rows = np.flatnonzero(kinds == "market_maker")
        # a slice where the rows are consecutive (the default order: momentum, mean reversion, market maker)
        self._signal_block = _block(self._signal_rows)
        self._maker_block = _block(self._maker_rows)
        self._lookbacks = np.array([self.traders[i].lookback for i in self._signal_rows], dtype=np.int64)
        self._max_lookback = int(self._lookbacks.max()) if self._lookbacks.size else 0
        #: the look-back every signal trader shares (a plain row index then), else None
        self._common_lookback = self._max_lookback if np.unique(self._lookbacks).size == 1 else None
        # (H, 1) coefficients of the scores max(a x + b, 0) (see the class docstring)
        signs = {"momentum": 1.0, "mean_reversion": -1.0}
        self._slopes = np.array([[-t.skew if t.kind == "market_maker" else signs[t.kind]] for t in self.traders])
        self._shifts = np.array([[1.0 if t.kind == "market_maker" else -signs[t.kind]] for t in self.traders])
        self._operands: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.traders)

    @property
    def names(self) -> tuple[str, ...]:
        """``"<kind>_<i>"`` per trader, ``i`` its position in ``traders``."""
        return tuple(f"{trader.kind}_{i}" for i, trader in enumerate(self.traders))

    def _constants(self, n_assets: int) -> tuple[np.ndarray, np.ndarray]:
        """``(H, N)`` slopes and shifts for ``N`` assets: same-shape operands, cheaper than broadcasting ``(H, 1)`` ones."""
        shape = (len(self.traders), n_assets)
        return np.broadcast_to(self._slopes, shape).copy(), np.broadcast_to(self._shifts, shape).copy()

    def weights(self, prices: np.ndarray, t: int, last_net_notional: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Every trader's target weights at bar ``t``. Reads price rows ``<= t`` only.

        The values of :func:`momentum_weights` / :func:`mean_reversion_weights` of :func:`lookback_returns` and of
        :func:`market_maker_weights`, per trader.

        :param prices: ``(T, N)`` market price history.
        :param t: the current bar.
        :param last_net_notional: ``(N,)`` the previous step's net traded notional.
        :param out: optional ``(H, N)`` array to write the weights into.
        :return: ``(H, N)`` weights (``out`` when given).
        """
        operands = self._operands
        if operands is None or operands[0].shape[1] != prices.shape[1]:
            operands = self._operands = self._constants(prices.shape[1])
        slopes, shifts = operands
        x = np.empty(slopes.shape)  # the scores (normalised into out: NumPy broadcasts slowly into an input)
        if self._signal_rows.size:  # x = P_t / P_{max(t - lookback, 0)}
            if self._common_lookback is not None:
                x[self._signal_block] = prices[t] / prices[max(t - self._common_lookback, 0)]
            else:
                past = t - self._lookbacks
                x[self._signal_block] = prices[t] / prices[np.maximum(past, 0) if t < self._max_lookback else past]
        if self._maker_rows.size:  # x = f = net / sum |net|, 0 without flow
            gross = float(np.add.reduce(np.abs(last_net_notional)))
            x[self._maker_block] = last_net_notional / gross if gross > 0.0 else 0.0
        x *= slopes
        x += shifts
        np.maximum(x, _ZERO, out=x)
        return normalize_weights(x, out=out)


# ----------------------------------------------------------------------------- the market
class MarketStep(NamedTuple):
    """What one :meth:`ImpactMarket.step` did (``A`` agents, learners first).

    :ivar fills: the book's :class:`~sb3_trading.sim.Fills` at the execution prices.
    :ivar equity_before: ``(A,)`` equity at ``P_t`` before the trade.
    :ivar equity: ``(A,)`` equity marked at ``P_{t+1}``.
    :ivar drawdown: ``(A,)`` ``1 - equity / peak``.
    :ivar pnl: ``(A,)`` ``equity - equity_before`` (currency).
    :ivar net_notional: ``(N,)`` netted order flow at ``P_t``.
    :ivar impact: ``(N,)`` impact factors ``I``.
    :ivar exec_prices: ``(N,)`` ``X_t = P_t * I`` (before slippage).
    :ivar prices: ``(N,)`` the new market prices ``P_{t+1}``.
    """

    fills: Fills
    equity_before: np.ndarray
    equity: np.ndarray
    drawdown: np.ndarray
    pnl: np.ndarray
    net_notional: np.ndarray
    impact: np.ndarray
    exec_prices: np.ndarray
    prices: np.ndarray


class ImpactMarket:
    """``n_learners`` externally driven agents and a batch of heuristic traders sharing one market.

    Book rows ``0 .. n_learners - 1`` are the learners, then the heuristic traders in order.
    See the module docstring for the exact step.

    :param prices: ``(T, N)`` data closes ``D`` (positive).
    :param n_learners: number of learner rows, ``>= 1``.
    :param traders: the heuristic traders (kind names or :class:`HeuristicTrader`).
    :param initial_cash: every agent's starting cash, currency, ``> 0``.
    :param costs: frictions paid on every fill, on top of the impact.
    :param impact_coef: impact coefficient ``k >= 0`` (0: no impact).
    :param liquidity: per-asset liquidity (currency), scalar or ``(N,)``, ``>= 0``.
    :param impact_bounds: ``(lo, hi)`` bounds of the impact factor, ``0 < lo <= 1 <= hi``.
    :param impact_decay: fraction of the log impact premium that decays each bar, in ``[0, 1]``.
    """

    def __init__(
        self,
        prices: np.ndarray,
        n_learners: int = 1,
        traders: Sequence[str | HeuristicTrader] = TRADER_KINDS,
        initial_cash: float = 100_000.0,
        costs: CostModel | None = None,
        impact_coef: float = 0.1,
        liquidity: float | Sequence[float] | np.ndarray = 1_000_000.0,
        impact_bounds: tuple[float, float] = (0.95, 1.05),
        impact_decay: float = 0.0,
    ) -> None:
        prices = np.asarray(prices, dtype=np.float64)
        if prices.ndim != 2 or not np.all(np.isfinite(prices)) or np.any(prices <= 0):
            raise ValueError("prices must be a finite, positive (T, N) array")
        check_int("n_learners", n_learners, 1)
        self.heuristics = HeuristicTraders(traders)
        self.n_learners = int(n_learners)
        n_assets = prices.shape[1]
        self.initial_cash = _check_real("initial_cash", initial_cash, 0.0)
        if self.initial_cash <= 0:
            raise ValueError(f"initial_cash must be finite and > 0, got {initial_cash!r}")
        self.impact_coef = _check_real("impact_coef", impact_coef, 0.0)
        liquidity_array = check_float_array("liquidity", liquidity)
        if liquidity_array.shape not in ((), (n_assets,)):
            raise ValueError(
                f"liquidity must be a number or have shape ({n_assets},) (one per asset), got {liquidity_array.shape}"
            )
        if not np.all(np.isfinite(liquidity_array)) or np.any(liquidity_array < 0):
            raise ValueError(f"liquidity must be finite and >= 0, got {liquidity!r}")
        self.liquidity = np.broadcast_to(liquidity_array, (n_assets,)).copy()
        if not isinstance(impact_bounds, (tuple, list)) or len(impact_bounds) != 2:
            raise ValueError(f"impact_bounds must be a pair (lo, hi), got {impact_bounds!r}")
        lo = _check_real("impact_bounds[0]", impact_bounds[0], 0.0, 1.0)
        hi = _check_real("impact_bounds[1]", impact_bounds[1], 1.0)
        if lo <= 0.0:
            raise ValueError(f"impact_bounds must satisfy 0 < lo <= 1 <= hi, got {impact_bounds!r}")
        self.impact_bounds = (lo, hi)
        self.impact_decay = _check_real("impact_decay", impact_decay, 0.0, 1.0)

        self._data_prices = prices
        self.n_agents = self.n_learners + len(self.heuristics)
        self.book = Portfolio(self.n_agents, n_assets, costs)
        self.prices = prices.copy()  # (T, N) market prices P; rows > t still hold D until written
        self.log_premium = np.zeros(n_assets)  # log M_t
        self.last_net_notional = np.zeros(n_assets)
        self.last_impact = np.ones(n_assets)
        #: ``(2 N,)`` ``[log M_t, log I_{t-1}]``: the impact premium and the last step's log impact
        self.impact_state = np.zeros(2 * n_assets)
        self.equity = np.full(self.n_agents, self.initial_cash)
        self.t = 0
        self._weights = np.zeros((self.n_agents, n_assets))  # scratch: every agent's target weights of a step
        self._impact_slope = self.impact_coef / (self.liquidity + 1.0)  # (N,) refreshed by reset
        self._impact_clip = (np.array(lo), np.array(hi))  # 0-d bounds, refreshed by reset

    @property
    def n_assets(self) -> int:
        return self.book.n_assets

    @property
    def costs(self) -> CostModel:
        return self.book.costs

    def reset(self, t: int) -> None:
        """Start an episode at bar ``t``: all agents in cash, no impact history (``P_s = D_s``, ``s <= t``)."""
        self.t = int(t)
        self.book.reset(self.initial_cash)
        self.prices[...] = self._data_prices
        # fresh arrays: earlier MarketStep results may still refer to the old ones
        self.log_premium = np.zeros(self.n_assets)
        self.last_net_notional = np.zeros(self.n_assets)
        self.last_impact = np.ones(self.n_assets)
        self.impact_state = np.zeros(2 * self.n_assets)
        self.equity = np.full(self.n_agents, self.initial_cash)
        # impact_factors' k / (L + 1) and bounds, once per episode (changed parameters apply from the next one)
        self._impact_slope = self.impact_coef / (self.liquidity + 1.0)
        self._impact_clip = (np.array(self.impact_bounds[0]), np.array(self.impact_bounds[1]))

    def heuristic_weights(self) -> np.ndarray:
        """``(H, N)`` the heuristic traders' target weights at the current bar."""
        return self.heuristics.weights(self.prices, self.t, self.last_net_notional)

    def step(self, learner_weights: np.ndarray) -> MarketStep:
        """Trade everyone to their targets at the impacted prices, move to ``t + 1`` and mark.

        The arithmetic of :func:`target_shares`, :func:`net_notional` and :func:`impact_factors`, inlined to
        share intermediate arrays (the trade ``target - positions`` is netted, then priced once and handed to
        ``Portfolio.trade_to``) and to save calls on these small arrays; the money moves through the book.

        :param learner_weights: ``(n_learners, N)`` long-only weights (``>= 0``, rows summing to ``<= 1``).
        :return: the :class:`MarketStep`; its arrays are new every step and never written to afterwards.
        """
        t = self.t
        prices = self.prices
        if t + 1 >= prices.shape[0]:
            raise ValueError(f"bar {t} is the last one of the data: there is no next bar to step to")
        prices_t = prices[t]
        weights = self._weights
        weights[: self.n_learners] = learner_weights
        if self.n_agents > self.n_learners:
            self.heuristics.weights(prices, t, self.last_net_notional, out=weights[self.n_learners :])
        equity_before = self.equity
        book = self.book
        positions = book.positions
        # target shares w * max(E, 0) / P_t; the order flow target - positions, netted per asset at P_t
        solvent = equity_before if min(equity_before.tolist()) > 0.0 else np.maximum(equity_before, 0.0)
        target = weights * (solvent[:, None] / prices_t)
        traded = target - positions
        net = np.add.reduce(traded, axis=0) * prices_t
        impact = self._impact_slope * net
        impact += _ONE
        lo, hi = self._impact_clip
        np.minimum(np.maximum(impact, lo, out=impact), hi, out=impact)
        exec_prices = prices_t * impact

        # [log M_{t+1}, log I]: log M_{t+1} = (1 - decay) (log M_t + log I), written into a new state array
        n = impact.shape[0]
        state = np.empty(2 * n)
        log_impact = np.log(impact, out=state[n:])
        log_premium = np.add(self.log_premium, log_impact, out=state[:n])
        if self.impact_decay:
            log_premium *= 1.0 - self.impact_decay
        self.impact_state, self.log_premium = state, log_premium
        self.t = t + 1
        prices_next = np.multiply(self._data_prices[t + 1], np.exp(log_premium), out=prices[t + 1])

        fills = book.trade_to(target, exec_prices, fill_trades(traded, exec_prices, book.costs))
        equity, drawdown = book.mark(prices_next)
        self.equity = equity
        self.last_net_notional = net
        self.last_impact = impact
        return MarketStep(
            fills, equity_before, equity, drawdown, equity - equity_before, net, impact, exec_prices, prices[t + 1]
        )
