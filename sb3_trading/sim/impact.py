"""Shared multi-agent market mechanics: heuristic traders, netted price impact, shaped rewards.

Every rule is one small numba function over plain arrays (:func:`sb3_trading.common.jit.njit`), used by
``sb3_trading/MarketImpact-v0``, its batched kernel and its PettingZoo view alike; :class:`ImpactMarket`
holds the state of ``B`` independent markets and steps them all in one compiled call. ``A`` below is the
number of agents of one market (learners first, then the heuristic traders), ``L`` the learners, ``H``
the heuristic traders, ``N`` the assets and ``T`` the bars; ``B`` markets share the data closes ``D``
and nothing else.

One market step at bar ``t`` (market prices ``P_t``, data closes ``D_t``, accumulated impact ``M_t``)
-----------------------------------------------------------------------------------------------------
1. Every agent ``a`` submits long-only target weights ``w_a`` (``w >= 0``, ``sum w <= 1``; the rest is
   cash) that apply to its equity ``E_a,t`` marked at ``P_t``: target shares ``w_a max(E_a,t, 0) / P_t``
   (:func:`target_shares`; an agent with ``E <= 0`` targets no shares).
2. The orders are netted per asset at the decision price:
   ``net_i = sum_a (target_a,i - held_a,i) P_t,i`` (currency, ``+`` = net buying; :func:`net_notional`).
3. Impact ``I_i = clip(1 + impact_coef * net_i / (liquidity_i + 1), lo, hi)`` and every order fills at
   ``X_t = P_t * I`` (:func:`impact_factors`; ``impact_coef = 0`` switches impact off, ``X_t = P_t``),
   paying the book's constant frictions on top (commission, slippage, half-spread in bps, fees per order:
   :func:`~sb3_trading.sim.kernels.trade_to_kernel`).
4. The impact is carried into the price process: ``log M_{t+1} = (1 - impact_decay) (log M_t + log I)``
   (:func:`decayed_log_premium`) and ``P_{t+1} = D_{t+1} * M_{t+1}``. With ``impact_decay = 0`` the impact
   is permanent (the execution price becomes the new reference price and the data supplies the exogenous
   return ``D_{t+1} / D_t``); with ``impact_decay = 1`` it is purely temporary (fills at ``D_t * I``, marks
   at ``D_{t+1}``); values in between let the premium ``log M`` relax geometrically. ``M = 1`` at the
   start of an episode and before it, so ``P_s = D_s`` for bars ``s <=`` the start.
5. Every book is marked at ``P_{t+1}``; an agent's P&L is ``E_a,t+1 - E_a,t`` (currency).

Causality: step 1 reads ``P_s`` for ``s <= t`` only, and ``P_{t+1}`` depends on data up to ``t + 1``
and orders up to ``t``. A market keeps the prices ``P_s`` of its last ``max(lookback) + 1`` bars in a
ring (all the heuristics read), not the whole path.

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
Seed 004's shaping, in currency: with every agent's step P&L ``pnl_a = V_a,t+1 - V_a,t``, a shaping basis
``x_a`` (``reward_basis="wealth"``: the new values ``V_a,t+1``; ``"step_pnl"``: ``pnl_a``), ``mu = mean_a x_a``
and ``sigma = std_a x_a`` (population std, ``ddof = 0``, over all agents, learners and heuristics):
``R_a = pnl_a + cooperation / (1 + sigma) + competition * (x_a - mu) / sigma``; the competition term is 0
when ``sigma <= SIGMA_FLOOR`` (all agents alike). The reward is ``R_a`` (``reward_units="currency"``) or
``R_a / initial_cash`` (``"fraction"``): the same reward in other units, so the units never change which term
dominates (the statistics are always taken in currency).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from sb3_trading.common.jit import kernel_array, njit
from sb3_trading.common.validation import check_float_array, check_int, check_real, suggest
from sb3_trading.sim.core import CostModel, Portfolio
from sb3_trading.sim.frictions import BORROW, FINANCED, SPREAD_FROM_DATA, Financing, batch_bars, write_financing
from sb3_trading.sim.kernels import copy_row, finance_row, mark_kernel, trade_to_kernel

#: heuristic trader kinds; a kind's code in the kernels is its index here
TRADER_KINDS: tuple[str, ...] = ("momentum", "mean_reversion", "market_maker")
#: the kind codes of :data:`TRADER_KINDS` (compile-time constants in the kernels)
MOMENTUM, MEAN_REVERSION, MARKET_MAKER = 0, 1, 2
#: how raw long-only actions become weights (see :func:`normalize_weights`)
WEIGHT_MODES: tuple[str, ...] = ("sum", "cap")
#: shaping bases of the MarketImpact reward (:func:`shaped_rewards`): the agents' new values, or their step P&L
REWARD_BASES: tuple[str, ...] = ("wealth", "step_pnl")
#: units of the MarketImpact reward: fractions of the initial cash, or currency
REWARD_UNITS: tuple[str, ...] = ("fraction", "currency")
#: below this cross-agent std of ``v`` the competition term is 0 (no division by ~0)
SIGMA_FLOOR = 1e-12
#: floor of the score sum in the ``"sum"`` mode: an all-zero action is all cash
ZERO_ACTION = 1e-12


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


def weight_floor(mode: str) -> float:
    """The floor of the score sum of a weight mode: ``ZERO_ACTION`` for ``"sum"``, ``1.0`` for ``"cap"``."""
    if mode == "sum":
        return ZERO_ACTION
    if mode == "cap":
        return 1.0
    raise ValueError(f"mode must be one of {WEIGHT_MODES}, got {mode!r}")


# ----------------------------------------------------------------------------- scalar rules
@njit(internal=True)
def momentum_score(r: float) -> float:
    """Momentum's raw score of one asset with look-back return ``r``: ``max(r, 0)``."""
    return max(r, 0.0)


@njit(internal=True)
def mean_reversion_score(r: float) -> float:
    """Mean reversion's raw score of one asset with look-back return ``r``: ``max(-r, 0)``."""
    return max(-r, 0.0)


@njit(internal=True)
def market_maker_score(flow: float, skew: float) -> float:
    """The market maker's raw score of one asset with flow share ``f = net / sum|net|``: ``1 - skew f`` (``>= 0``)."""
    return 1.0 - skew * flow


@njit(internal=True)
def target_share(weight: float, equity: float, price: float) -> float:
    """Target share count of one asset: ``weight * max(equity, 0) / price`` (currency / currency per share)."""
    return weight * (max(equity, 0.0) / price)


@njit(internal=True)
def impact_factor(net: float, slope: float, lo: float, hi: float) -> float:
    """Multiplicative impact of one asset: ``clip(1 + slope * net, lo, hi)``, ``slope = impact_coef / (liquidity + 1)``."""
    return min(max(1.0 + slope * net, lo), hi)


@njit
def decayed_log_premium(log_premium: float, log_impact: float, decay: float) -> float:
    """``log M_{t+1} = (1 - decay) (log M_t + log I_t)``: the impact premium after one bar."""
    return (log_premium + log_impact) * (1.0 - decay)


# ----------------------------------------------------------------------------- array rules
@njit(internal=True)
def normalize_row(scores: np.ndarray, floor: float, out: np.ndarray) -> None:
    """One row of non-negative scores ``(N,)`` -> weights ``a / max(sum(a), floor)``, written into ``out`` ``(N,)``
    (may be ``scores`` itself; summed left to right)."""
    total = 0.0
    for i in range(scores.shape[0]):
        total += scores[i]
    scale = max(total, floor)
    for i in range(scores.shape[0]):
        out[i] = scores[i] / scale


@njit
def normalize_weights_kernel(raw: np.ndarray, floor: float) -> np.ndarray:
    """``(k, N)`` rows of non-negative scores -> weights, :func:`normalize_row` each (a new array)."""
    out = np.empty(raw.shape)
    for b in range(raw.shape[0]):
        normalize_row(raw[b], floor, out[b])
    return out


def normalize_weights(raw: np.ndarray, mode: str = "sum") -> np.ndarray:
    """Long-only raw scores ``(B, N)`` (``>= 0``) -> target weights ``(B, N)``, batched.

    * ``"sum"``: ``w = a / max(sum(a), ZERO_ACTION)``: fully invested; an all-zero row is all cash.
    * ``"cap"``: ``w = a / max(sum(a), 1)``: scores summing to less than 1 leave ``1 - sum(a)`` in cash.

    :param raw: ``(B, N)`` non-negative scores.
    :param mode: one of :data:`WEIGHT_MODES`.
    :return: ``(B, N)`` weights (a new array), ``>= 0``, each row summing to 1 or less.
    """
    return normalize_weights_kernel(np.asarray(raw, dtype=np.float64), weight_floor(mode))


@njit
def lookback_returns(prices: np.ndarray, t: int, lookbacks: np.ndarray) -> np.ndarray:
    """Look-back returns ``P_t / P_{max(t - L, 0)} - 1`` for several look-backs ``L``, reading rows ``<= t``.

    :param prices: ``(T, N)`` market price history (only rows ``<= t`` are read).
    :param t: the current bar.
    :param lookbacks: ``(H,)`` int64 look-backs ``>= 1``.
    :return: ``(H, N)`` returns.
    """
    n_assets = prices.shape[1]
    out = np.empty((lookbacks.shape[0], n_assets))
    for h in range(lookbacks.shape[0]):
        past = max(t - lookbacks[h], 0)
        for i in range(n_assets):
            out[h, i] = prices[t, i] / prices[past, i] - 1.0
    return out


@njit
def momentum_weights(returns: np.ndarray) -> np.ndarray:
    """Momentum weights ``(B, N)`` of look-back returns ``(B, N)``: proportional to the positive returns, all cash if none."""
    scores = np.empty(returns.shape)
    for b in range(returns.shape[0]):
        for i in range(returns.shape[1]):
            scores[b, i] = momentum_score(returns[b, i])
    return normalize_weights_kernel(scores, ZERO_ACTION)


@njit
def mean_reversion_weights(returns: np.ndarray) -> np.ndarray:
    """Mean-reversion weights ``(B, N)`` of look-back returns ``(B, N)``: proportional to ``max(-r, 0)``, all cash if none."""
    scores = np.empty(returns.shape)
    for b in range(returns.shape[0]):
        for i in range(returns.shape[1]):
            scores[b, i] = mean_reversion_score(returns[b, i])
    return normalize_weights_kernel(scores, ZERO_ACTION)


@njit(internal=True)
def flow_shares(net: np.ndarray) -> np.ndarray:
    """``(N,)`` flow shares ``f = net / sum|net|`` of a net order flow ``(N,)`` (currency); zeros without flow."""
    gross = 0.0
    for i in range(net.shape[0]):
        gross += abs(net[i])
    shares = np.zeros(net.shape[0])
    if gross > 0.0:
        for i in range(net.shape[0]):
            shares[i] = net[i] / gross
    return shares


@njit
def market_maker_weights_kernel(last_net_notional: np.ndarray, skews: np.ndarray) -> np.ndarray:
    """``(B, N)`` market-maker weights for ``(B,)`` skews against one net flow ``(N,)`` (see :func:`market_maker_weights`)."""
    flow = flow_shares(last_net_notional)
    scores = np.empty((skews.shape[0], flow.shape[0]))
    for b in range(skews.shape[0]):
        for i in range(flow.shape[0]):
            scores[b, i] = market_maker_score(flow[i], skews[b])
    return normalize_weights_kernel(scores, ZERO_ACTION)


def market_maker_weights(last_net_notional: np.ndarray, skew: np.ndarray | float) -> np.ndarray:
    """Market-maker weights ``(B, N)``: equal weight, leaning against the last net order flow.

    ``f = net / sum|net|`` (0 without flow), ``w = (1 - skew f) / N`` renormalised to sum to 1.

    :param last_net_notional: ``(N,)`` the previous step's net traded notional per asset (currency).
    :param skew: ``(B,)`` or scalar, in ``[0, 1]``.
    :return: ``(B, N)`` weights.
    """
    skews = np.atleast_1d(np.asarray(skew, dtype=np.float64))
    return market_maker_weights_kernel(np.asarray(last_net_notional, dtype=np.float64), skews)


@njit
def heuristic_weights_kernel(
    current: np.ndarray, past: np.ndarray, last_net: np.ndarray, kinds: np.ndarray, skews: np.ndarray, out: np.ndarray
) -> None:
    """Every heuristic trader's target weights, written into ``out`` ``(H, N)``.

    Momentum and mean reversion score the look-back returns ``current / past[h] - 1``
    (:func:`momentum_score`, :func:`mean_reversion_score`), a market maker the flow shares of ``last_net``
    (:func:`market_maker_score`); each row is then normalised with the ``"sum"`` floor.

    :param current: ``(N,)`` market prices ``P_t``.
    :param past: ``(H,)`` rows ``P_{max(t - lookback_h, 0)}`` ``(H, N)`` (a market maker's row is not read).
    :param last_net: ``(N,)`` the previous step's net traded notional (currency).
    :param kinds: ``(H,)`` int64 kind codes (:data:`MOMENTUM`, :data:`MEAN_REVERSION`, :data:`MARKET_MAKER`).
    :param skews: ``(H,)`` market makers' skews (not read for the other kinds).
    :param out: ``(H, N)`` written.
    """
    n_assets = current.shape[0]
    flow = flow_shares(last_net)
    for h in range(kinds.shape[0]):
        kind = kinds[h]
        for i in range(n_assets):
            if kind == MARKET_MAKER:
                out[h, i] = market_maker_score(flow[i], skews[h])
            elif kind == MOMENTUM:
                out[h, i] = momentum_score(current[i] / past[h, i] - 1.0)
            else:
                out[h, i] = mean_reversion_score(current[i] / past[h, i] - 1.0)
        normalize_row(out[h], ZERO_ACTION, out[h])


@njit
def target_shares_kernel(weights: np.ndarray, equity: np.ndarray, prices: np.ndarray, out: np.ndarray) -> None:
    """:func:`target_share` of weights ``(A, N)``, equity ``(A,)`` and prices ``(N,)``, written into ``out`` ``(A, N)``."""
    n_agents, n_assets = weights.shape
    for a in range(n_agents):
        for i in range(n_assets):
            out[a, i] = target_share(weights[a, i], equity[a], prices[i])


def target_shares(weights: np.ndarray, equity: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """Target weights -> target share counts ``w * max(E, 0) / P``, batched over agents.

    :param weights: ``(A, N)`` target weights of equity.
    :param equity: ``(A,)`` equity marked at ``prices`` (currency); an agent with ``E <= 0`` targets no shares.
    :param prices: ``(N,)`` market prices at decision time (currency per share).
    :return: ``(A, N)`` target shares.
    """
    weights = np.asarray(weights, dtype=np.float64)
    out = np.empty(weights.shape)
    target_shares_kernel(weights, np.asarray(equity, dtype=np.float64), np.asarray(prices, dtype=np.float64), out)
    return out


@njit
def net_notional_kernel(target: np.ndarray, positions: np.ndarray, prices: np.ndarray, out: np.ndarray) -> None:
    """Net traded notional ``sum_a (target - positions) * P`` (agents summed in order, then priced) into ``out`` ``(N,)``."""
    n_agents, n_assets = target.shape
    for i in range(n_assets):
        shares = 0.0
        for a in range(n_agents):
            shares += target[a, i] - positions[a, i]
        out[i] = shares * prices[i]


def net_notional(target: np.ndarray, positions: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """Net traded notional per asset over all agents, ``sum_a (target - positions) * P`` ``(N,)`` (``+`` = buying).

    :param target: ``(A, N)`` target shares.
    :param positions: ``(A, N)`` held shares.
    :param prices: ``(N,)`` decision prices (currency per share).
    """
    target = np.asarray(target, dtype=np.float64)
    out = np.empty(target.shape[1])
    net_notional_kernel(target, np.asarray(positions, dtype=np.float64), np.asarray(prices, dtype=np.float64), out)
    return out


@njit
def impact_factors_kernel(net: np.ndarray, slope: np.ndarray, lo: float, hi: float, out: np.ndarray) -> None:
    """:func:`impact_factor` of net flows ``(N,)`` with slopes ``impact_coef / (liquidity + 1)`` ``(N,)``, into ``out``."""
    for i in range(net.shape[0]):
        out[i] = impact_factor(net[i], slope[i], lo, hi)


def impact_slopes(impact_coef: float, liquidity: np.ndarray | float, n_assets: int) -> np.ndarray:
    """``(N,)`` impact per unit of net notional, ``impact_coef / (liquidity + 1)`` (1 / currency)."""
    return np.broadcast_to(impact_coef / (np.asarray(liquidity, dtype=np.float64) + 1.0), (n_assets,)).copy()


def impact_factors(
    net: np.ndarray, impact_coef: float, liquidity: np.ndarray | float, bounds: tuple[float, float]
) -> np.ndarray:
    """Multiplicative price impact ``clip(1 + impact_coef * net / (liquidity + 1), lo, hi)`` ``(N,)``.

    :param net: ``(N,)`` net traded notional (currency).
    :param impact_coef: ``k >= 0``; 0 gives no impact (all ones).
    :param liquidity: ``(N,)`` or scalar, currency, ``>= 0``.
    :param bounds: ``(lo, hi)`` with ``0 < lo <= 1 <= hi``.
    """
    net = np.asarray(net, dtype=np.float64)
    slope = impact_slopes(impact_coef, liquidity, net.shape[0])
    out = np.empty(net.shape[0])
    impact_factors_kernel(net, slope, float(bounds[0]), float(bounds[1]), out)
    return out


@njit
def shaped_rewards_kernel(
    pnl: np.ndarray, basis: np.ndarray, scale: float, cooperation: float, competition: float, out: np.ndarray
) -> float:
    """One market's shaped rewards written into ``out`` ``(A,)``; returns ``sigma`` (currency).

    See :func:`shaped_rewards`: ``pnl`` ``(A,)`` step P&L and ``basis`` ``(A,)`` the shaping quantity, both in
    currency; sums run left to right.
    """
    n = pnl.shape[0]
    total = 0.0
    for a in range(n):
        total += basis[a]
    mean = total / n
    squares = 0.0
    for a in range(n):
        d = basis[a] - mean
        squares += d * d
    sigma = math.sqrt(squares / n)
    bonus = cooperation / (1.0 + sigma)
    compete = sigma > SIGMA_FLOOR and competition != 0.0
    weight = competition / sigma if compete else 0.0
    for a in range(n):
        shaped = pnl[a] + bonus + weight * (basis[a] - mean) if compete else pnl[a] + bonus
        out[a] = shaped / scale
    return sigma


@njit
def shaped_rewards_batch(
    pnl: np.ndarray, basis: np.ndarray, scale: float, cooperation: float, competition: float
) -> np.ndarray:
    """:func:`shaped_rewards_kernel` of each of ``B`` markets: ``pnl``, ``basis`` ``(B, A)`` -> rewards ``(B, A)``."""
    rewards = np.empty(pnl.shape)
    for b in range(pnl.shape[0]):
        shaped_rewards_kernel(pnl[b], basis[b], scale, cooperation, competition, rewards[b])
    return rewards


def shaped_rewards(
    pnl: np.ndarray,
    scale: float = 1.0,
    cooperation: float = 0.05,
    competition: float = 0.1,
    wealth: np.ndarray | None = None,
) -> tuple[np.ndarray, float]:
    """Own P&L plus cooperation and competition terms, for every agent of one market at once. Pure function.

    With ``x`` the shaping basis (``wealth``, the agents' new values ``V_t+1``, or else the step P&L ``pnl``),
    ``mu = mean(x)`` and ``sigma = std(x)`` (``ddof = 0``, currency):
    ``reward = (pnl + cooperation / (1 + sigma) + competition * (x - mu) / sigma) / scale``; the competition term
    is 0 when ``sigma <= SIGMA_FLOOR``. Seed 004's reward is ``wealth=V_t+1, scale=1``.

    :param pnl: ``(A,)`` every agent's step P&L ``V_t+1 - V_t`` (currency).
    :param scale: currency per reward unit: 1 (currency) or the common initial cash (fractions of it), ``> 0``.
    :param cooperation: weight ``c`` of the bonus ``c / (1 + sigma)`` (currency).
    :param competition: weight ``k`` of the relative-performance term (currency per standard deviation).
    :param wealth: ``(A,)`` the agents' values after the step (currency); ``None``: the basis is ``pnl``.
    :return: ``(rewards (A,), sigma)``.
    """
    pnl = np.asarray(pnl, dtype=np.float64)
    basis = pnl if wealth is None else np.asarray(wealth, dtype=np.float64)
    if basis.shape != pnl.shape:
        raise ValueError(f"wealth must have the shape of pnl {pnl.shape}, got {basis.shape}")
    rewards = np.empty(pnl.shape[0])
    sigma = shaped_rewards_kernel(pnl, basis, float(scale), float(cooperation), float(competition), rewards)
    return rewards, float(sigma)


# ----------------------------------------------------------------------------- traders, batched
class HeuristicTraders:
    """A batch of heuristic traders evaluated together by :func:`heuristic_weights_kernel`.

    :param traders: kind names or :class:`HeuristicTrader` specs.
    """

    def __init__(self, traders: Sequence[str | HeuristicTrader]) -> None:
        if isinstance(traders, (str, HeuristicTrader)):
            raise TypeError(f"traders must be a sequence of trader kinds, got the single {traders!r}; wrap it in a tuple")
        self.traders: tuple[HeuristicTrader, ...] = tuple(as_trader(spec) for spec in traders)
        #: ``(H,)`` int64 kind codes (indices into :data:`TRADER_KINDS`)
        self.kinds = np.array([TRADER_KINDS.index(t.kind) for t in self.traders], dtype=np.int64)
        #: ``(H,)`` int64 look-backs; 0 for market makers (they read no past price)
        self.lookbacks = np.array([0 if t.kind == "market_maker" else t.lookback for t in self.traders], dtype=np.int64)
        #: ``(H,)`` skews (read for market makers only)
        self.skews = np.array([t.skew for t in self.traders], dtype=np.float64)
        #: the longest look-back (0 without signal traders): a market keeps ``max_lookback + 1`` bars of prices
        self.max_lookback = int(self.lookbacks.max()) if self.lookbacks.size else 0

    def __len__(self) -> int:
        return len(self.traders)

    @property
    def names(self) -> tuple[str, ...]:
        """``"<kind>_<i>"`` per trader, ``i`` its position in ``traders``."""
        return tuple(f"{trader.kind}_{i}" for i, trader in enumerate(self.traders))

    def weights(self, prices: np.ndarray, t: int, last_net_notional: np.ndarray) -> np.ndarray:
        """Every trader's target weights at bar ``t``. Reads price rows ``<= t`` only.

        :param prices: ``(T, N)`` market price history.
        :param t: the current bar.
        :param last_net_notional: ``(N,)`` the previous step's net traded notional (currency).
        :return: ``(H, N)`` weights.
        """
        prices = np.asarray(prices, dtype=np.float64)
        out = np.empty((len(self.traders), prices.shape[1]))
        past = prices[np.maximum(t - self.lookbacks, 0)]
        heuristic_weights_kernel(prices[t], past, np.asarray(last_net_notional, dtype=np.float64), self.kinds, self.skews, out)
        return out


# ----------------------------------------------------------------------------- the market step
@njit
def market_price_row(data_prices: np.ndarray, history: np.ndarray, market: int, start: int, u: int) -> np.ndarray:
    """``(N,)`` market prices ``P_u`` of ``market``: the data closes ``D_u`` for ``u <= start``, else its price ring."""
    if u <= start:
        return data_prices[u]
    return history[market, u % history.shape[1]]


#: the blocks of :func:`impact_step_kernel`'s packed result, in column order: ``A`` columns each, then ``N`` each
STEP_AGENT_BLOCKS: tuple[str, ...] = ("equity", "drawdown", "notional", "costs", "pnl", "financing")
STEP_ASSET_BLOCKS: tuple[str, ...] = ("net_notional", "impact", "log_impact", "exec_prices", "prices", "log_premium")


@njit
def impact_step_kernel(
    holdings: np.ndarray,
    peak: np.ndarray,
    equity: np.ndarray,
    learner_weights: np.ndarray,
    data_prices: np.ndarray,
    t: np.ndarray,
    start: np.ndarray,
    history: np.ndarray,
    log_premium: np.ndarray,
    last_net: np.ndarray,
    kinds: np.ndarray,
    lookbacks: np.ndarray,
    skews: np.ndarray,
    slope: np.ndarray,
    lo: float,
    hi: float,
    decay: float,
    bars: np.ndarray,
    rules: np.ndarray,
) -> np.ndarray:
    """One step of ``B`` markets of ``A`` agents (the module docstring's steps 1-5), books written in place.

    :param holdings: ``(B A, N + 1)`` every agent's book, market-major (row ``b A + a``), written.
    :param peak: ``(B A,)`` running peak equity, written.
    :param equity: ``(B, A)`` equity at ``P_t`` (currency).
    :param learner_weights: ``(B, L, N)`` the learners' long-only weights.
    :param data_prices: ``(T, N)`` data closes ``D``.
    :param t: ``(B,)`` int64 current bars (each with a next bar).
    :param start: ``(B,)`` int64 episode starts (``P_s = D_s`` for ``s <= start``).
    :param history: ``(B, R, N)`` price rings, ``R = max lookback + 1`` (``P_u`` in row ``u % R``), written.
    :param log_premium: ``(B, N)`` ``log M_t``.
    :param last_net: ``(B, N)`` the previous step's net notional.
    :param kinds: ``(H,)``, ``lookbacks`` ``(H,)``, ``skews`` ``(H,)``: the heuristic traders.
    :param slope: ``(N,)`` ``impact_coef / (liquidity + 1)``; ``lo``, ``hi`` the impact bounds.
    :param decay: ``impact_decay``.
    :param bars: ``(B A, N_BAR_FIELDS, N)`` the frictions of every book row (the book's constant
        :meth:`~sb3_trading.sim.frictions.CostModel.constant_bars`, with the per-bar borrow fee when financed);
        ``rules`` ``(N_RULES,)`` its :meth:`~sb3_trading.sim.frictions.CostModel.rules` (:mod:`sb3_trading.sim.frictions`),
        with the per-bar cash and loan rates when financed (``rules[FINANCED] > 0``: after the fills, one bar of
        :func:`~sb3_trading.sim.kernels.finance_row` on every book, shorts valued at the execution prices).
    :return: ``(B, 6 A + 6 N)`` new array, the blocks of :data:`STEP_AGENT_BLOCKS` (equity at ``P_{t+1}``,
        drawdown, traded notional, costs, P&L, net financing; ``A`` columns each) then of :data:`STEP_ASSET_BLOCKS`
        (net notional, impact ``I``, ``log I``, execution prices ``X_t``, ``P_{t+1}``, ``log M_{t+1}``; ``N`` columns each).
        One array: every array a compiled function returns costs a boxing.
    """
    n_markets, n_learners, n_assets = learner_weights.shape
    n_agents = equity.shape[1]
    n_heuristics = kinds.shape[0]
    depth = history.shape[1]
    n_blocks = 6  # len(STEP_AGENT_BLOCKS)
    out = np.empty((n_markets, n_blocks * n_agents + 6 * n_assets))
    assets = n_blocks * n_agents  # first column of the asset blocks
    targets = np.empty((n_markets * n_agents, n_assets))
    exec_rows = np.empty((n_markets * n_agents, n_assets))
    mark_rows = np.empty((n_markets * n_agents, n_assets))
    weights = np.empty((n_agents, n_assets))
    past = np.empty((n_heuristics, n_assets))
    current = np.empty(n_assets)
    for b in range(n_markets):
        tb, sb = t[b], start[b]
        copy_row(market_price_row(data_prices, history, b, sb, tb), current)  # a copy: its ring row is overwritten below
        for a in range(n_learners):
            copy_row(learner_weights[b, a], weights[a])
        if n_heuristics > 0:
            for h in range(n_heuristics):
                copy_row(market_price_row(data_prices, history, b, sb, max(tb - lookbacks[h], 0)), past[h])
            heuristic_weights_kernel(current, past, last_net[b], kinds, skews, weights[n_learners:])
        first = b * n_agents
        target = targets[first : first + n_agents]
        target_shares_kernel(weights, equity[b], current, target)
        net = out[b, assets : assets + n_assets]
        net_notional_kernel(target, holdings[first : first + n_agents, :n_assets], current, net)
        impact = out[b, assets + n_assets : assets + 2 * n_assets]
        impact_factors_kernel(net, slope, lo, hi, impact)
        ring = (tb + 1) % depth
        for i in range(n_assets):
            log_impact = math.log(impact[i])
            premium = decayed_log_premium(log_premium[b, i], log_impact, decay)
            price = data_prices[tb + 1, i] * math.exp(premium)
            history[b, ring, i] = price
            out[b, assets + 2 * n_assets + i] = log_impact
            out[b, assets + 3 * n_assets + i] = current[i] * impact[i]
            out[b, assets + 4 * n_assets + i] = price
            out[b, assets + 5 * n_assets + i] = premium
        for a in range(n_agents):
            for i in range(n_assets):
                exec_rows[first + a, i] = out[b, assets + 3 * n_assets + i]
                mark_rows[first + a, i] = out[b, assets + 4 * n_assets + i]
    _, _, notional, costs = trade_to_kernel(holdings, targets, exec_rows, bars, rules)
    financing = np.zeros(n_markets * n_agents)
    if rules[FINANCED] > 0.0:
        for row in range(n_markets * n_agents):
            financing[row] = finance_row(holdings, row, exec_rows[row], bars[row], rules)
    _, equity_next, drawdown = mark_kernel(holdings, mark_rows, peak)
    for b in range(n_markets):
        for a in range(n_agents):
            row = b * n_agents + a
            out[b, a] = equity_next[row]
            out[b, n_agents + a] = drawdown[row]
            out[b, 2 * n_agents + a] = notional[row]
            out[b, 3 * n_agents + a] = costs[row]
            out[b, 4 * n_agents + a] = equity_next[row] - equity[b, a]
            out[b, 5 * n_agents + a] = financing[row]
    return out


# ----------------------------------------------------------------------------- the markets
def unmodelled_costs(costs: CostModel) -> tuple[str, ...]:
    """The fields of ``costs`` the market-impact market does not model: everything that needs the data
    (``impact_k``, ``half_spread_bps="data"``, ``participation``: the market has its own impact model; see
    :attr:`~sb3_trading.sim.frictions.CostModel.is_constant`) and ``lot_size`` (orders are fractional)."""
    used = (
        ('half_spread_bps="data"', costs.half_spread_bps == SPREAD_FROM_DATA),
        ("impact_k", costs.impact_k > 0.0),
        ("participation", costs.participation is not None),
        ("lot_size", costs.lot_size is not None),
    )
    return tuple(name for name, on in used if on)


class MarketStep(NamedTuple):
    """What one :meth:`ImpactMarket.step` did (``B`` markets of ``A`` agents, learners first). All arrays are new
    every step and never written to afterwards.

    :ivar equity_before: ``(B, A)`` equity at ``P_t`` before the trade.
    :ivar equity: ``(B, A)`` equity marked at ``P_{t+1}``.
    :ivar drawdown: ``(B, A)`` ``1 - equity / peak``.
    :ivar notional: ``(B, A)`` traded notional at the execution prices ``X_t`` (currency).
    :ivar costs: ``(B, A)`` frictions paid on top of the impact: commission, slippage, half-spread, fees (currency).
    :ivar pnl: ``(B, A)`` ``equity - equity_before`` (currency), financing included.
    :ivar financing: ``(B, A)`` net financing of the bar (currency, + received; 0 without ``financing``).
    :ivar net_notional: ``(B, N)`` netted order flow at ``P_t``.
    :ivar impact: ``(B, N)`` impact factors ``I``.
    :ivar log_impact: ``(B, N)`` ``log I``.
    :ivar exec_prices: ``(B, N)`` ``X_t = P_t * I`` (before slippage).
    :ivar prices: ``(B, N)`` the new market prices ``P_{t+1}``.
    :ivar log_premium: ``(B, N)`` the new impact premium ``log M_{t+1}``.
    """

    equity_before: np.ndarray
    equity: np.ndarray
    drawdown: np.ndarray
    notional: np.ndarray
    costs: np.ndarray
    pnl: np.ndarray
    financing: np.ndarray
    net_notional: np.ndarray
    impact: np.ndarray
    log_impact: np.ndarray
    exec_prices: np.ndarray
    prices: np.ndarray
    log_premium: np.ndarray


class ImpactMarket:
    """``B`` independent markets, each of ``n_learners`` externally driven agents and the same heuristic traders.

    Every market has its own books, clock, impact state and prices; they share the data closes ``D`` and the
    configuration. Book rows are market-major: row ``b A + a`` is agent ``a`` of market ``b``, agents
    ``0 .. n_learners - 1`` the learners, then the heuristic traders in order. See the module docstring for
    the exact step. State arrays handed out (:attr:`t`, :attr:`equity`, :attr:`log_premium`, ...) are replaced,
    never written, by later steps and resets.

    :param prices: ``(T, N)`` data closes ``D`` (positive).
    :param n_learners: number of learner rows per market, ``>= 1``.
    :param traders: the heuristic traders (kind names or :class:`HeuristicTrader`).
    :param initial_cash: every agent's starting cash, currency, ``> 0``.
    :param costs: frictions paid on every fill, on top of the impact (default ``CostModel()``): commission,
        slippage, a half-spread in bps, a fixed fee and a minimum commission per order (each asset an agent
        trades in a step is one order). It must be constant
        (:attr:`~sb3_trading.sim.frictions.CostModel.is_constant`) and fractional: the market has its own impact.
    :raises ValueError: for a ``costs`` with ``impact_k``, ``half_spread_bps="data"``, ``participation`` or
        ``lot_size`` (:func:`unmodelled_costs`), naming them.
    :param impact_coef: impact coefficient ``k >= 0`` (0: no impact).
    :param liquidity: per-asset liquidity (currency), scalar or ``(N,)``, ``>= 0``.
    :param impact_bounds: ``(lo, hi)`` bounds of the impact factor, ``0 < lo <= 1 <= hi``.
    :param impact_decay: fraction of the log impact premium that decays each bar, in ``[0, 1]``.
    :param n_markets: number of independent markets ``B``, ``>= 1``.
    :param financing: interest on every agent's cash and fees on its shorts, accrued every bar after the fills
        (:class:`~sb3_trading.sim.frictions.Financing`; ``None``: none): positive cash earns ``cash_rate``, negative
        cash (costs a fully invested book paid on credit) pays ``loan_rate``, shorts ``borrow_bps``.
    :param periods_per_year: bars per year of the data's calendar: the per-bar rates are the annual ones over it.
    :param asset_names: the assets' names (for a per-asset ``borrow_bps`` mapping); default ``asset_<i>``.
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
        n_markets: int = 1,
        financing: Financing | None = None,
        periods_per_year: float = 252.0,
        asset_names: Sequence[str] | None = None,
    ) -> None:
        prices = np.ascontiguousarray(prices, dtype=np.float64)
        if prices.ndim != 2 or not np.all(np.isfinite(prices)) or np.any(prices <= 0):
            raise ValueError("prices must be a finite, positive (T, N) array")
        check_int("n_learners", n_learners, 1)
        self.n_markets = check_int("n_markets", n_markets, 1)
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
        costs = CostModel() if costs is None else costs
        if not isinstance(costs, CostModel):
            raise TypeError(f"costs must be a CostModel or None, got {type(costs).__name__}")
        refused = unmodelled_costs(costs)
        if refused:
            raise ValueError(
                f"the market-impact market has its own impact model; {', '.join(refused)} of costs={costs} "
                "not modelled (it takes commission, slippage, half_spread_bps in bps, fixed_fee and min_fee)"
            )
        self.book = Portfolio(self.n_markets * self.n_agents, n_assets, costs)
        self.book.reset(self.initial_cash)
        #: ``(B A, N_BAR_FIELDS, N)`` read-only: every book row's (constant) frictions; ``(N_RULES,)`` the rules
        bars, rules = costs.constant_bars(n_assets), costs.rules()
        if financing is not None:
            if not isinstance(financing, Financing):
                raise TypeError(f"financing must be a Financing or None, got {type(financing).__name__}")
            ppy = check_real("periods_per_year", periods_per_year, 0.0, strict_minimum=True)
            names = [f"asset_{i}" for i in range(n_assets)] if asset_names is None else list(asset_names)
            write_financing(rules, bars[BORROW], financing, names, ppy)
        #: the financing rules (``None``: none)
        self.financing = financing
        self._bars = batch_bars(bars, self.n_markets * self.n_agents)
        self._rules = kernel_array(rules)
        # the last max_lookback + 1 market prices of each market (P_u in row u % R; rows of bars <= start unused)
        self._history = np.zeros((self.n_markets, self.heuristics.max_lookback + 1, n_assets))
        self._impact_slope = impact_slopes(self.impact_coef, self.liquidity, n_assets)
        a = self.n_agents
        #: the columns of each block of :func:`impact_step_kernel`'s packed result, in :class:`MarketStep` order
        self._step_blocks = tuple(slice(k * a, (k + 1) * a) for k in range(len(STEP_AGENT_BLOCKS))) + tuple(
            slice(len(STEP_AGENT_BLOCKS) * a + k * n_assets, len(STEP_AGENT_BLOCKS) * a + (k + 1) * n_assets)
            for k in range(len(STEP_ASSET_BLOCKS))
        )
        b = self.n_markets
        self.t = np.zeros(b, dtype=np.int64)
        self.start = np.zeros(b, dtype=np.int64)
        self.equity = np.full((b, self.n_agents), self.initial_cash)
        self.log_premium = np.zeros((b, n_assets))  # log M_t
        self.last_log_impact = np.zeros((b, n_assets))  # log I_{t-1}
        self.last_impact = np.ones((b, n_assets))
        self.last_net_notional = np.zeros((b, n_assets))

    @property
    def n_assets(self) -> int:
        return self.book.n_assets

    @property
    def costs(self) -> CostModel:
        return self.book.costs

    @property
    def impact_state(self) -> np.ndarray:
        """``(B, 2 N)`` ``[log M_t, log I_{t-1}]``: each market's impact premium and last step's log impact."""
        return np.concatenate([self.log_premium, self.last_log_impact], axis=1)

    def agent_rows(self, markets: np.ndarray) -> np.ndarray:
        """``(k A,)`` book rows of the agents of ``markets`` ``(k,)``, market by market."""
        return (np.asarray(markets, dtype=np.int64)[:, None] * self.n_agents + np.arange(self.n_agents)).ravel()

    def reset(self, t: int | np.ndarray, markets: np.ndarray | None = None) -> None:
        """Start episodes at bars ``t`` in ``markets`` (default: all): every agent in cash, no impact history
        (``P_s = D_s`` for ``s <= t``).

        :param t: the start bar, one for all or ``(k,)`` per market.
        :param markets: ``(k,)`` int market indices.
        """
        rows = np.arange(self.n_markets) if markets is None else np.asarray(markets, dtype=np.int64)
        self.book.reset(self.initial_cash, index=self.agent_rows(rows))
        # copy on write: earlier MarketStep results may refer to the old arrays
        self.t, self.start = self.t.copy(), self.start.copy()
        self.t[rows] = t
        self.start[rows] = t
        for name, value in (
            ("equity", self.initial_cash),
            ("log_premium", 0.0),
            ("last_log_impact", 0.0),
            ("last_impact", 1.0),
            ("last_net_notional", 0.0),
        ):
            array = getattr(self, name).copy()
            array[rows] = value
            setattr(self, name, array)
        # changed impact parameters apply from the next episode
        self._impact_slope = impact_slopes(self.impact_coef, self.liquidity, self.n_assets)

    def prices_at(self, u: int | np.ndarray) -> np.ndarray:
        """``(B, N)`` each market's price ``P_u`` at bar ``u`` (one for all or ``(B,)``), ``max(lookback)`` bars back
        at most (``u`` in ``[t - max_lookback, t]``)."""
        u = np.broadcast_to(np.asarray(u, dtype=np.int64), (self.n_markets,))
        rows = [
            market_price_row(self._data_prices, self._history, b, int(self.start[b]), int(u[b])) for b in range(self.n_markets)
        ]
        return np.array(rows)

    @property
    def current_prices(self) -> np.ndarray:
        """``(B, N)`` each market's price ``P_t`` at its current bar."""
        return self.prices_at(self.t)

    def heuristic_weights(self) -> np.ndarray:
        """``(B, H, N)`` the heuristic traders' target weights at each market's current bar."""
        heuristics = self.heuristics
        out = np.empty((self.n_markets, len(heuristics), self.n_assets))
        for b in range(self.n_markets):
            t, start = int(self.t[b]), int(self.start[b])
            current = market_price_row(self._data_prices, self._history, b, start, t)
            past = np.empty((len(heuristics), self.n_assets))
            for h, lookback in enumerate(heuristics.lookbacks.tolist()):
                past[h] = market_price_row(self._data_prices, self._history, b, start, max(t - lookback, 0))
            heuristic_weights_kernel(current, past, self.last_net_notional[b], heuristics.kinds, heuristics.skews, out[b])
        return out

    def step(self, learner_weights: np.ndarray) -> MarketStep:
        """Trade everyone to their targets at the impacted prices, move every market to ``t + 1`` and mark.

        :param learner_weights: ``(B, n_learners, N)`` long-only weights (``>= 0``, rows summing to ``<= 1``).
        :return: the :class:`MarketStep`.
        :raises ValueError: if a market is at the last bar of the data, or for weights of another shape.
        """
        weights = np.asarray(learner_weights, dtype=np.float64)
        shape = (self.n_markets, self.n_learners, self.n_assets)
        if weights.shape != shape:
            raise ValueError(f"learner_weights must have shape {shape} (markets, learners, assets), got {weights.shape}")
        t = self.t
        last = self._data_prices.shape[0] - 1
        if int(t.max()) >= last:
            raise ValueError(f"bar {int(t.max())} is the last one of the data: there is no next bar to step to")
        book, heuristics = self.book, self.heuristics
        lo, hi = self.impact_bounds
        equity_before = self.equity
        packed = impact_step_kernel(
            book.holdings,
            book.peak_equity,
            equity_before,
            weights,
            self._data_prices,
            t,
            self.start,
            self._history,
            self.log_premium,
            self.last_net_notional,
            heuristics.kinds,
            heuristics.lookbacks,
            heuristics.skews,
            self._impact_slope,
            lo,
            hi,
            self.impact_decay,
            self._bars,
            self._rules,
        )
        # contiguous blocks (a batch of one is contiguous anyway): the kernels downstream compile one layout only
        step = MarketStep(equity_before, *[np.ascontiguousarray(packed[:, columns]) for columns in self._step_blocks])
        self.t = t + 1
        self.equity = step.equity
        self.log_premium = step.log_premium
        self.last_log_impact = step.log_impact
        self.last_impact = step.impact
        self.last_net_notional = step.net_notional
        return step


__all__ = [
    "MARKET_MAKER",
    "MEAN_REVERSION",
    "MOMENTUM",
    "SIGMA_FLOOR",
    "STEP_AGENT_BLOCKS",
    "STEP_ASSET_BLOCKS",
    "TRADER_KINDS",
    "REWARD_BASES",
    "REWARD_UNITS",
    "WEIGHT_MODES",
    "ZERO_ACTION",
    "HeuristicTrader",
    "HeuristicTraders",
    "ImpactMarket",
    "MarketStep",
    "as_trader",
    "decayed_log_premium",
    "flow_shares",
    "heuristic_weights_kernel",
    "impact_factor",
    "impact_factors",
    "impact_factors_kernel",
    "impact_slopes",
    "impact_step_kernel",
    "lookback_returns",
    "market_maker_score",
    "market_maker_weights",
    "market_price_row",
    "mean_reversion_score",
    "mean_reversion_weights",
    "momentum_score",
    "momentum_weights",
    "net_notional",
    "normalize_row",
    "normalize_weights",
    "normalize_weights_kernel",
    "shaped_rewards",
    "shaped_rewards_batch",
    "shaped_rewards_kernel",
    "target_share",
    "target_shares",
    "unmodelled_costs",
    "weight_floor",
]
