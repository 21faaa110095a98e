"""``sb3_trading/YieldAllocation-v0``: allocate capital among ``K`` yield-bearing, pegged assets.

The dynamics are :class:`YieldAllocationKernel`, a batched :class:`~sb3_trading.envs.base.TradingKernel`
(the env is its batch of one, :class:`sb3_trading.vec.BatchedVecEnv` runs it with ``n_envs`` rows); every
step is one compiled call, :func:`yield_step_kernel`, over plain arrays: the action -> weights map
(:func:`softmax_kernel`, :func:`project_capped_simplex_kernel`) and the accounting core's own kernels
(:mod:`sb3_trading.sim.kernels`: the self-financing solve, the trade, the yield accrual, the mark).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
from gymnasium import spaces

from sb3_trading.common.jit import kernel_array, njit
from sb3_trading.common.validation import (
    ArgumentTypeError,
    check_choice,
    check_float_array,
    check_int,
    check_real,
    is_real,
)
from sb3_trading.data import MarketData
from sb3_trading.data.yield_market import PEG, apy_column, make_yield_market, peg_dev_column
from sb3_trading.envs.base import (
    DEFAULT_NORMALIZER,
    FeatureFits,
    KernelTradingEnv,
    NormalizerArg,
    TradingKernel,
    Transition,
)
from sb3_trading.envs.kernel import DRAWDOWN_ACTIONS, DRAWDOWN_LIMIT, ScalableExposure, dead_zone_action
from sb3_trading.sim.frictions import (
    DEFAULT_COMMISSION_BPS,
    FIXED_FEE,
    MAX_BPS,
    MIN_FEE,
    Brackets,
    CostModel,
    Financing,
    Margin,
    MarketRules,
    resolve_market_rules,
)
from sb3_trading.sim.kernels import (
    GAPS_FILL_AT_OPEN,
    accrue_yield_kernel,
    copy_row,
    order_row,
    record_row,
    self_financing_kernel,
    settle_row,
)

#: indicators computed per asset by default (prices barely move: returns and their volatility suffice;
#: the data's own ``apy[...]`` and ``depeg[...]`` columns are appended)
DEFAULT_YIELD_INDICATORS: tuple[str, ...] = ("log_return", "volatility")
#: absolute slack allowed on ``sum(lower) <= 1 <= sum(upper)`` for float bounds such as ``10 * 0.1``
BOUNDS_SLACK = 1e-12
#: a row already within the bounds is returned as is when its sum is 1 within this tolerance: a few ulps of 1, the
#: rounding of a softmax row's sum (at 1e-12, a row summing to 1 + 1e-13 came back 5e-14 off its projection)
FEASIBLE_SUM_TOL = 4e-15
#: the ``info`` entries YieldAllocation adds to the standard keys, in order
YIELD_INFO_KEYS: tuple[str, ...] = ("target_weights", "depeg_penalty", "yield_income")
#: the default ``rebalance_cost_bps`` (the commission of YieldAllocation-v0), bps
DEFAULT_REBALANCE_COST_BPS = 5.0


#: the market rules (:data:`~sb3_trading.sim.frictions.RULE_FEATURES`) YieldAllocation-v0 models beyond
#: proportional costs: a fixed and a minimum fee per order (the self-financing solve prices them exactly),
#: ``financing`` (interest on the cash a sized-down book -- ``exposure_scale < 1`` -- or a bracket exit holds) and
#: brackets (both act after the fill, so the rebalance stays exact); impact, lots, a participation cap or the data's
#: spread would make it approximate, and a long-only book that never holds more than its equity never borrows, so
#: ``margin`` would have nothing to act on
SUPPORTED_RULES: tuple[str, ...] = ("fixed_fee", "min_fee", "financing", "brackets")


def yield_market_rules(
    rebalance_cost_bps: float = DEFAULT_REBALANCE_COST_BPS,
    costs: CostModel | str | Mapping | None = None,
    slippage_bps: float = 0.0,
    financing: Financing | Mapping | None = None,
    margin: Margin | Mapping | None = None,
    brackets: Brackets | Mapping | None = None,
) -> MarketRules:
    """YieldAllocation-v0's friction arguments as :class:`~sb3_trading.sim.frictions.MarketRules`.

    :func:`~sb3_trading.sim.frictions.resolve_market_rules` with ``rebalance_cost_bps`` as the commission shortcut
    (default :data:`DEFAULT_REBALANCE_COST_BPS`, also the commission of a ``costs`` dict without one): a
    ``rebalance_cost_bps`` changed from its default together with a ``CostModel`` or a preset, or with a
    dict that sets ``commission_bps`` too, is refused, as ``commission_bps`` is there.

    :raises ValueError: for such a clash (or one of ``slippage_bps``), or a rate out of range.
    :raises TypeError: for a rate that is not a number.
    """
    rebalance = check_real("rebalance_cost_bps", rebalance_cost_bps, 0.0, MAX_BPS, strict_maximum=True)
    if costs is None:
        return resolve_market_rules(None, rebalance, slippage_bps, financing, margin, brackets)
    given = rebalance != DEFAULT_REBALANCE_COST_BPS  # left at its default: not given (as resolve_market_rules)
    if isinstance(costs, Mapping):
        if given and "commission_bps" in costs:
            raise ValueError(
                f"the commission is given both as rebalance_cost_bps={rebalance_cost_bps!r} and in costs={dict(costs)}; "
                "give it once"
            )
        costs = {"commission_bps": rebalance, **costs}
    elif given:
        raise ValueError(
            f"rebalance_cost_bps={rebalance_cost_bps!r} cannot be combined with costs={costs!r}; set the commission in "
            "the CostModel (e.g. costs={'commission_bps': 5, ...})"
        )
    return resolve_market_rules(costs, DEFAULT_COMMISSION_BPS, slippage_bps, financing, margin, brackets)


# --------------------------------------------------------------------------- compiled kernels
@njit
def softmax_kernel(actions: np.ndarray, temperature: float) -> np.ndarray:
    """Row-wise ``softmax(actions / temperature)``, max-shifted (no overflow).

    :param actions: ``(B, K)`` actions.
    :param temperature: softmax temperature, ``> 0``.
    :return: ``(B, K)`` weights summing to 1 per row (a new array).
    """
    n_rows, k = actions.shape
    out = np.empty((n_rows, k))
    for b in range(n_rows):
        top = actions[b, 0] / temperature
        for i in range(1, k):
            top = max(top, actions[b, i] / temperature)
        total = 0.0
        for i in range(k):
            e = math.exp(actions[b, i] / temperature - top)
            out[b, i] = e
            total += e
        for i in range(k):
            out[b, i] /= total
    return out


@njit
def stable_order(values: np.ndarray, order: np.ndarray) -> None:
    """Write into ``order`` ``(M,)`` int64 the indices that sort ``values`` ``(M,)`` ascending, ties in index order
    (``np.argsort(values, kind="stable")``), by insertion sort: ``M`` is the ``2K`` breakpoints of a handful of
    assets, where it runs as fast as NumPy's merge sort and compiles in a fraction of its time."""
    for j in range(values.shape[0]):
        value = values[j]
        k = j
        while k > 0 and values[order[k - 1]] > value:  # strict: an equal value stays behind (stable)
            order[k] = order[k - 1]
            k -= 1
        order[k] = j


@njit
def project_capped_simplex_kernel(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Exact Euclidean projection of each row of ``x`` onto ``{w : lower <= w <= upper, sum(w) = 1}``.

    The projection is ``w_i = clip(x_i - tau, lower_i, upper_i)`` with the scalar ``tau`` that makes the row sum 1.
    ``g(tau) = sum_i clip(x_i - tau, lower_i, upper_i)`` is piecewise linear and non-increasing with ``2K``
    breakpoints: coming down from ``tau = +inf`` (every asset at its lower bound, ``g = sum(lower)``), asset ``i``
    leaves its lower bound at ``x_i - lower_i`` and reaches its upper bound at ``x_i - upper_i``. With the
    breakpoints sorted in decreasing order ``c_0 >= c_1 >= ...`` (a stable sort of ``lower - x`` then ``upper - x``:
    at a tie, leaving ``lower`` comes first, so the count below never goes negative), the number of assets
    strictly between their bounds on ``(c_{j+1}, c_j)`` is a running sum ``n_j`` of ``+1`` / ``-1``, and
    ``g(c_{j+1}) - sum(lower)`` is the running sum ``G_j`` of ``n_m (c_m - c_{m+1}) >= 0``, ``m <= j``:
    non-decreasing also in floating point, and well conditioned (its terms add up to at most ``1 - sum(lower)``
    before the crossing). ``tau`` lies on the first piece with ``G_j >= 1 - sum(lower)`` (else the last one) and
    is ``c_j - (1 - sum(lower) - G_{j-1}) / n_j`` there (``G_{-1} = 0``; ``n_j >= 1`` on it). No iteration.

    A row that already lies within the bounds and sums to 1 (within :data:`FEASIBLE_SUM_TOL`) is returned
    unchanged. Unlike clip-and-renormalise, the result always lies within the bounds (exactly: it is a clip)
    and sums to 1 (up to float rounding).

    :param x: ``(B, K)`` points, e.g. softmax weights.
    :param lower: ``(K,)`` lower bounds with ``sum(lower) <= 1``.
    :param upper: ``(K,)`` upper bounds with ``lower <= upper`` and ``sum(upper) >= 1``.
    :return: ``(B, K)`` projected weights (a new array).
    """
    n_rows, k = x.shape
    n_breaks = 2 * k
    slack = 1.0  # 1 - sum(lower): what g must rise by above sum(lower)
    for i in range(k):
        slack -= lower[i]
    out = np.empty((n_rows, k))
    neg_breaks = np.empty(n_breaks)  # minus the breakpoints: lower - x, then upper - x
    order = np.empty(n_breaks, dtype=np.int64)
    for b in range(n_rows):
        inside = True
        total = 0.0
        for i in range(k):
            xi = x[b, i]
            inside = inside and lower[i] <= xi <= upper[i]
            total += xi
            neg_breaks[i] = lower[i] - xi
            neg_breaks[k + i] = upper[i] - xi
        if inside and abs(total - 1.0) <= FEASIBLE_SUM_TOL:
            for i in range(k):
                out[b, i] = x[b, i]  # already feasible: the projection is the identity
            continue
        stable_order(neg_breaks, order)  # stable: a lower bound's breakpoint first at a tie
        free = 0  # n_j: assets strictly between their bounds below breakpoint j
        below = 0.0  # G_{j-1}
        tau = 0.0
        for j in range(n_breaks - 1):
            free += 1 if order[j] < k else -1
            here = neg_breaks[order[j]]
            rise = below + free * (neg_breaks[order[j + 1]] - here)
            # the first piece whose lower end has g >= 1; g(c_{2K-1}) = sum(upper) >= 1 (up to rounding: the last piece)
            if rise >= slack or j == n_breaks - 2:
                tau = (below - slack) / free - here
                break
            below = rise
        for i in range(k):
            out[b, i] = min(max(x[b, i] - tau, lower[i]), upper[i])
    return out


@njit
def yield_step_kernel(
    holdings: np.ndarray,
    peak: np.ndarray,
    equity_t: np.ndarray,
    t: np.ndarray,
    actions: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    temperature: float,
    exposure: float,
    size_action: bool,
    dead_zone: float,
    band: float,
    prices: np.ndarray,
    rates: np.ndarray,
    depth: np.ndarray,
    commission: float,
    adverse: float,
    bars: np.ndarray,
    rules: np.ndarray,
    levels: np.ndarray,
    ohlc: np.ndarray,
    depeg_penalty: float,
    max_drawdown: float,
    out: tuple[np.ndarray, ...],
    more: tuple[np.ndarray, ...],
    target: np.ndarray,
    income: np.ndarray,
    penalty: np.ndarray,
    end_t: np.ndarray,
    reward: np.ndarray,
) -> None:
    """One YieldAllocation step of every account, in place: weights, self-financing rebalance at ``p_t``, one
    period of yield, the mark at ``p_{t+1}``, the ``portfolio`` block and the de-peg penalty.

    Per account ``b`` at bar ``t_b``: target weights ``w = x project(softmax(a / temperature))``
    (:func:`softmax_kernel`, :func:`project_capped_simplex_kernel`; ``x`` the invested fraction: ``exposure``, times
    ``max(s', 0)`` of the sizing entry ``s`` past ``dead_zone`` with ``size_action``); the investable value ``V`` of
    :func:`~sb3_trading.sim.kernels.self_financing_kernel` (equity ``E_t``, holdings worth ``positions * p_t``);
    the trade to ``V w / p_t`` shares (:func:`~sb3_trading.sim.kernels.trade_row`, paying its frictions from
    cash, which is left at a rounding residual); the market rules until the next close
    (:func:`~sb3_trading.sim.kernels.settle_row`: the bracket orders over bar ``t + 1``, an exit selling to cash
    at its level); the yield paid in shares on what is still held
    (:func:`~sb3_trading.sim.kernels.accrue_yield_kernel`, income valued at ``p_{t+1}``); the mark at ``p_{t+1}``
    (:func:`~sb3_trading.sim.kernels.record_row`, raising the peak); the penalty ``depeg_penalty * w . depth_{t+1}``.

    :param holdings: ``(B, K + 1)`` share counts, then cash (the books; written).
    :param peak: ``(B,)`` peak equity (written).
    :param equity_t: ``(B,)`` equity ``E_t`` marked at ``p_t``, ``> 0``.
    :param t: ``(B,)`` int64 decision bars (each has a next bar).
    :param actions: ``(B, K)`` float64 actions, clipped to ``[-1, 1]`` (``(B, K + 1)`` with ``size_action``: the
        last column is the sizing entry).
    :param lower: ``(K,)`` lower weight bounds; ``upper`` ``(K,)`` the upper ones.
    :param temperature: softmax temperature, ``> 0``.
    :param exposure: fraction of the book the weights are applied to, in ``[0, 1]`` (the rest stays cash; the sizing
        wrappers' :attr:`YieldAllocationEnv.exposure_scale`, 1 otherwise).
    :param size_action: whether the actions' last column sizes each book: its invested fraction
        ``max(dead_zone_action(s, dead_zone), 0)`` (:func:`~sb3_trading.envs.kernel.dead_zone_action`) multiplies
        ``exposure``; ``dead_zone`` in ``[0, 1)``.
    :param band: the rebalance band, ``>= 0``: an account whose every target weight is within ``band`` of its current
        weight (holding value / ``E_t``) does not trade this bar (its book drifts); ``0``: always rebalance.
    :param prices: ``(T, K)`` closes.
    :param rates: ``(T, K)`` yield of each bar ``t -> t + 1``, ``> -1``.
    :param depth: ``(T, K)`` de-peg depth of each bar (0 where pegged).
    :param commission: commission rate (fraction of filled notional); ``adverse``: the adverse move of every fill,
        slippage plus half-spread (fraction of the mid): the self-financing solve's proportional rates (its fees
        per order come from ``rules``), exact for the costs this env takes.
    :param bars: ``(T, N_BAR_FIELDS, K)`` the per-bar frictions (constant proportional costs here, plus the
        bracket fields); ``rules`` ``(N_RULES,)`` (:mod:`sb3_trading.sim.frictions`; the same
        commission and adverse move, and the fees per order), read by the solve, the trade and
        :func:`~sb3_trading.sim.kernels.settle_row`.
    :param levels: ``(B, 3, K)`` bracket levels (written); ``ohlc``: ``(T, 3, K)`` open, high and low for them.
    :param depeg_penalty: weight of the de-peg penalty, ``>= 0``.
    :param max_drawdown: drawdown past which an episode is truncated (``inf``: never).
    :param out: the transition's arrays, written: ``t, equity, cash, positions, weights, notional, costs, drawdown,
        portfolio`` (see :meth:`~sb3_trading.envs.kernel.TradingKernel.blank`); ``portfolio`` ``(B, K + 2)``
        float32 holds the weights, the cash weight and the drawdown (no clip: all lie in ``[0, 1]`` up to rounding).
    :param more: ``(financing, unfilled, bracket_exits, ended)`` ``(B,)`` each, written
        (:meth:`~sb3_trading.envs.kernel.TradingKernel.rule_outputs`).
    :param target: ``(B, K)`` out: the target weights ``w`` asked for (before the rebalance band).
    :param income: ``(B,)`` out: the yield paid, currency at ``p_{t+1}``.
    :param penalty: ``(B,)`` out: the de-peg penalty.
    :param reward: ``(B,)`` out: the reward, the step return ``E_{t+1} / E_t - 1`` minus the penalty.
    :param end_t: ``(B,)`` int64 truncation bars of the episodes; set to ``t + 1`` where the drawdown exceeds
        ``max_drawdown`` (written).
    """
    t_next, equity, cash, positions, weights, notional, costs, drawdown, portfolio = out
    financing, unfilled, exits, ended = more
    n_rows, k = actions.shape[0], prices.shape[1]
    scores = actions
    if size_action:  # the weights' scores, without the sizing entry of each row
        scores = np.empty((n_rows, k))
        for b in range(n_rows):
            copy_row(actions[b], scores[b])
    w = project_capped_simplex_kernel(softmax_kernel(scores, temperature), lower, upper)
    for b in range(n_rows):
        invested = exposure * max(dead_zone_action(actions[b, k], dead_zone), 0.0) if size_action else exposure
        if invested != 1.0:
            for i in range(k):
                w[b, i] *= invested
    held = np.empty((n_rows, k))
    for b in range(n_rows):
        row = t[b]
        for i in range(k):
            held[b, i] = holdings[b, i] * prices[row, i]
            target[b, i] = w[b, i]
    hold = np.zeros(n_rows, dtype=np.bool_)
    if band > 0.0:
        for b in range(n_rows):
            gap = 0.0
            for i in range(k):
                gap = max(gap, abs(w[b, i] - held[b, i] / equity_t[b]))
            if gap < band:  # within the band: keep the book, whose weights are then the ones held over the step
                hold[b] = True
                for i in range(k):
                    w[b, i] = held[b, i] / equity_t[b]
    invest, _, _ = self_financing_kernel(equity_t, w, held, commission, adverse, rules[FIXED_FEE], rules[MIN_FEE])
    shares = np.empty(k)
    rates_t = np.empty((n_rows, k))
    prices_next = np.empty((n_rows, k))
    for b in range(n_rows):
        row = t[b]
        t_next[b] = row + 1
        for i in range(k):
            shares[i] = holdings[b, i] if hold[b] else w[b, i] * invest[b] / prices[row, i]
            rates_t[b, i] = rates[row, i]
            prices_next[b, i] = prices[row + 1, i]
        _, notional[b], costs[b] = order_row(holdings, levels, b, shares, prices[row], bars[row], rules)
        financed, closed, exit_notional, exit_costs, _ = settle_row(
            holdings, levels, b, prices[row], row, prices, bars, rules, ohlc, GAPS_FILL_AT_OPEN
        )
        financing[b], unfilled[b], exits[b], ended[b] = financed, 0.0, closed, 0  # no margin: nothing ends here
        notional[b] += exit_notional
        costs[b] += exit_costs
    grown, paid = accrue_yield_kernel(holdings[:, :k], rates_t, prices_next)
    for b in range(n_rows):
        row = t[b] + 1
        for i in range(k):
            holdings[b, i] = grown[b, i]
        income[b] = paid[b]
        e = record_row(holdings, peak, b, prices[row], equity, cash, positions, weights, drawdown)
        for i in range(k):
            portfolio[b, i] = weights[b, i]
        portfolio[b, k] = cash[b] / e if e > 0.0 else 0.0
        portfolio[b, k + 1] = drawdown[b]
        exposure = 0.0
        for i in range(k):
            exposure += w[b, i] * depth[row, i]
        penalty[b] = depeg_penalty * exposure
        reward[b] = e / equity_t[b] - 1.0 - penalty[b]
        if drawdown[b] > max_drawdown:
            end_t[b] = row


@njit
def yield_open_kernel(
    holdings: np.ndarray,
    peak: np.ndarray,
    initial_weights: np.ndarray,
    start: np.ndarray,
    initial_cash: float,
    prices: np.ndarray,
    commission: float,
    adverse: float,
    bars: np.ndarray,
    rules: np.ndarray,
    levels: np.ndarray,
    out: tuple[np.ndarray, ...],
) -> None:
    """Fresh all-cash accounts buy ``initial_weights`` at the close of their start bar, paying the frictions, and are
    marked there; no decision is made yet.

    The purchase is the step's self-financing trade from all cash (:func:`~sb3_trading.sim.kernels.self_financing_kernel`
    with ``held = 0``): with the proportional rate ``r`` of a buy (commission plus adverse move) and no fees per order
    it invests ``V = E_0 / (1 + r sum(w))``, buys ``V w_i / p_i`` shares (:func:`~sb3_trading.sim.kernels.order_row`)
    and keeps ``V (1 - sum(w))`` in cash, so that after its costs ``r V sum(w)`` the book holds exactly the weights
    ``w`` of its equity ``V`` (and the cash weight ``1 - sum(w)``); fees per order lower ``V`` by what they cost.
    Bracket levels are set for the new positions.

    :param holdings: ``(k, K + 1)`` written: the new books; ``peak`` ``(k,)`` written: their peaks ``max(E_0, E)``.
    :param initial_weights: ``(K,)`` weights ``>= 0`` with ``sum <= 1``.
    :param start: ``(k,)`` int64 start bars; ``initial_cash`` the starting capital ``E_0`` of every account.
    :param prices: ``(T, K)`` closes; ``commission``, ``adverse``: the proportional rates, as :func:`yield_step_kernel`.
    :param bars: ``(T, N_BAR_FIELDS, K)`` per-bar frictions (row ``start`` prices the purchase); ``rules`` ``(N_RULES,)``.
    :param levels: ``(k, 3, K)`` written: the bracket levels of the purchase (NaN without brackets).
    :param out: the reset transition's arrays (:attr:`~sb3_trading.envs.kernel.Transition.outputs`), written;
        ``portfolio`` ``(k, K + 2)`` as in :func:`yield_step_kernel`.
    """
    t_out, equity, cash, positions, weights, notional, costs, drawdown, portfolio = out
    n_rows, k = holdings.shape[0], initial_weights.shape[0]
    w = np.empty((n_rows, k))
    for b in range(n_rows):
        for i in range(k):
            w[b, i] = initial_weights[i]
    equity_0 = np.full(n_rows, initial_cash)
    invest, _, _ = self_financing_kernel(
        equity_0, w, np.zeros((n_rows, k)), commission, adverse, rules[FIXED_FEE], rules[MIN_FEE]
    )
    shares = np.empty(k)
    for b in range(n_rows):
        row = start[b]
        for i in range(k):
            holdings[b, i] = 0.0
            shares[i] = initial_weights[i] * invest[b] / prices[row, i]
        holdings[b, k] = initial_cash
        peak[b] = initial_cash
        levels[b, :, :] = np.nan
        _, notional[b], costs[b] = order_row(holdings, levels, b, shares, prices[row], bars[row], rules)
        t_out[b] = row
        e = record_row(holdings, peak, b, prices[row], equity, cash, positions, weights, drawdown)
        for i in range(k):
            portfolio[b, i] = weights[b, i]
        portfolio[b, k] = cash[b] / e if e > 0.0 else 0.0
        portfolio[b, k + 1] = drawdown[b]


# --------------------------------------------------------------------------- action -> weights (NumPy fronts)
class CappedSimplexProjection:
    """Exact Euclidean projection onto ``{w : lower <= w <= upper, sum(w) = 1}``, batched, for fixed bounds.

    The arithmetic is :func:`project_capped_simplex_kernel` (sorted breakpoints, no iteration): a row that already
    lies within the bounds and sums to 1 (within :data:`FEASIBLE_SUM_TOL`) is returned unchanged; otherwise the
    result lies within the bounds (exactly: it is a clip) and sums to 1 (up to float rounding).

    :param lower: ``(K,)`` lower bounds with ``sum(lower) <= 1``.
    :param upper: ``(K,)`` upper bounds with ``lower <= upper`` and ``sum(upper) >= 1``.
    """

    def __init__(self, lower: np.ndarray, upper: np.ndarray) -> None:
        self.lower = np.ascontiguousarray(lower, dtype=np.float64)
        self.upper = np.ascontiguousarray(upper, dtype=np.float64)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Project each row of ``x``.

        :param x: ``(B, K)`` points, e.g. softmax weights.
        :return: ``(B, K)`` projected weights (a new array).
        """
        return project_capped_simplex_kernel(np.asarray(x, dtype=np.float64), self.lower, self.upper)


def project_capped_simplex(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Euclidean projection of each row of ``x`` onto ``{w : lower <= w <= upper, sum(w) = 1}``, batched.

    The projection is ``w_i = clip(x_i - tau, lower_i, upper_i)`` with the scalar ``tau`` that makes
    the row sum 1, found exactly from the ``2K`` sorted breakpoints ``x_i - lower_i`` and ``x_i - upper_i``
    of the piecewise-linear ``g(tau) = sum_i clip(x_i - tau, lower_i, upper_i)`` (see
    :func:`project_capped_simplex_kernel`; no iteration). Unlike clip-and-renormalise, the
    result always lies within the bounds (exactly: it is a clip) and sums to 1 (up to float rounding).

    :param x: ``(B, K)`` points, e.g. softmax weights.
    :param lower: ``(K,)`` lower bounds with ``sum(lower) <= 1``.
    :param upper: ``(K,)`` upper bounds with ``lower <= upper`` and ``sum(upper) >= 1``.
    :return: ``(B, K)`` projected weights.
    """
    return CappedSimplexProjection(lower, upper)(x)


def softmax(actions: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise ``softmax(actions / temperature)``, ``(B, K) -> (B, K)`` (max-shifted: no overflow; :func:`softmax_kernel`)."""
    return softmax_kernel(np.asarray(actions, dtype=np.float64), float(temperature))


def yield_weights(actions: np.ndarray, lower: np.ndarray, upper: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """YieldAllocation action -> target weights, batched: softmax, then projection onto the bounds.

    ``s = softmax(a / temperature)``, then ``w = project_capped_simplex(s, lower, upper)``: the env's own map
    (the same kernels as :func:`yield_step_kernel`).

    :param actions: ``(B, K)`` actions in ``[-1, 1]``.
    :param lower: ``(K,)`` per-asset lower bounds, ``sum(lower) <= 1``.
    :param upper: ``(K,)`` per-asset upper bounds, ``sum(upper) >= 1``.
    :param temperature: softmax temperature, ``> 0`` (lower is sharper).
    :return: ``(B, K)`` weights with ``lower <= w <= upper`` and ``sum(w) = 1``.
    """
    return project_capped_simplex(softmax(actions, temperature), lower, upper)


def _depeg_tolerance(value: float | Sequence[float], n_assets: int) -> np.ndarray:
    """``depeg_tolerance`` validated as a ``(n_assets,)`` float64 array of values in ``[0, 1)``."""
    array = check_float_array("depeg_tolerance", value)
    if array.ndim == 0:
        array = np.full(n_assets, float(check_real("depeg_tolerance", float(array), 0.0, 1.0, strict_maximum=True)))
    if array.shape != (n_assets,):
        raise ValueError(
            f"depeg_tolerance must be a number or have one value per asset, shape ({n_assets},), got shape {array.shape}"
        )
    if not (np.isfinite(array).all() and (array >= 0).all() and (array < 1).all()):
        raise ValueError(f"depeg_tolerance must be relative distances in [0, 1), got {array.tolist()}")
    return np.ascontiguousarray(array)


def _initial_weights(value: Sequence[float] | np.ndarray | None, upper: np.ndarray) -> np.ndarray | None:
    """``initial_weights`` validated against the caps ``upper`` ``(K,)``: ``None`` or a ``(K,)`` float64 array."""
    if value is None:
        return None
    n_assets = upper.shape[0]
    array = check_float_array("initial_weights", value)
    if array.shape != (n_assets,):
        raise ValueError(f"initial_weights must be None or one weight per asset, shape ({n_assets},), got shape {array.shape}")
    if not (np.isfinite(array).all() and (array >= 0).all()):
        raise ValueError(f"initial_weights must be finite weights >= 0 (long only), got {array.tolist()}")
    if array.sum() > 1.0 + BOUNDS_SLACK:
        raise ValueError(f"initial_weights must sum to at most 1 (the rest is cash), got sum {array.sum():.6g}")
    over = np.flatnonzero(array > upper + BOUNDS_SLACK)
    if over.size:
        raise ValueError(
            f"initial_weights exceed upper_bound for assets {over.tolist()}: {array[over].tolist()} > "
            f"{upper[over].tolist()}; lower them or raise upper_bound"
        )
    return np.ascontiguousarray(array)


def _bounds(name: str, value: float | Sequence[float], n_assets: int) -> np.ndarray:
    array = check_float_array(name, value)
    if array.ndim == 0:
        array = np.full(n_assets, float(array))
    if array.shape != (n_assets,):
        raise ValueError(f"{name} must be a number or have one value per asset, shape ({n_assets},), got {array.shape}")
    if not (np.isfinite(array).all() and (array >= 0).all() and (array <= 1).all()):
        raise ValueError(f"{name} must be weights in [0, 1], got {array.tolist()}")
    return np.ascontiguousarray(array, dtype=np.float64)


class YieldAllocationEnv(ScalableExposure, KernelTradingEnv):
    """Long-only allocation among ``K`` yield-bearing, pegged assets (stablecoin pools, T-bill funds).

    ## Description
    At each bar ``t`` the agent chooses target weights. With equity ``E_t`` the book is
    rebalanced at the prices ``p_t`` through the accounting core so that the trade pays its own
    cost: the invested value ``V_t`` solves ``V_t + c * sum_i |V_t w_i - v_i| = E_t``
    (``v_i`` the current holding's value, ``c = rebalance_cost_bps * 1e-4`` by default; with slippage or a
    half-spread ``a`` the rate of a trade is ``a + c (1 +- a)`` per unit bought or sold; see
    :func:`sb3_trading.sim.accrual.self_financing_value`), target shares ``V_t w_i / p_i,t``,
    leaving no cash. Over ``t -> t+1`` each asset then pays its yield *in shares*
    (``shares_i *= 1 + APY_i,t / periods_per_year``, :func:`sb3_trading.sim.accrual.accrue_yield`;
    ``APY_t`` is the rate quoted at ``t``, column ``apy[<asset>]`` of ``data.features``) and the
    book is marked at ``p_{t+1}``. So with ``r_i = p_i,t+1 / p_i,t``::

        E_{t+1} = V_t * sum_i w_i (1 + APY_i,t / periods_per_year) r_i

    An asset is *de-pegged* at bar ``s`` when its peg deviation ``dev_i,s = p_i,s / peg_i - 1`` is below
    ``-depeg_tolerance_i`` (a tolerance per asset, or one for all); its de-peg depth is then
    ``-dev_i,s = 1 - p_i,s / peg_i`` (0 otherwise). The peg is the ``peg`` argument (a constant price per asset);
    with ``peg=None`` (default) it is the data's own: its ``peg_dev[<asset>]`` columns when it has them (e.g. a
    staked asset of :func:`~sb3_trading.data.yield_market.make_yield_market`, pegged to its beta-implied fair
    value, which moves with ETH), else :data:`~sb3_trading.data.yield_market.PEG` (1.0) for every asset.

    The dynamics are :class:`YieldAllocationKernel` (one compiled call per step, :func:`yield_step_kernel`);
    this env is its batch of one and :class:`sb3_trading.vec.BatchedVecEnv` runs it for many accounts.

    ## Market rules
    Proportional costs -- a commission (``rebalance_cost_bps``, or ``costs``), slippage and a half-spread in bps
    (``costs``) -- and fees per order (``costs``: ``fixed_fee`` per asset traded, ``min_fee`` in place of a smaller
    commission), which the self-financing solve prices exactly: ``V`` plus the frictions of rebalancing to ``V w`` is
    the equity (with fees this is still convex and increasing in ``V``, and Newton's method still lands on it), so
    the rebalance pays its own costs and leaves no negative cash. ``brackets`` close a position at its stop-loss
    or take-profit over the bar after the decision (a stop below a stablecoin's entry is a de-peg exit),
    selling to cash at the level (at the open when the bar opens through it); a closed position earns no yield
    for that bar and the account stays in cash until the next decision; ``info`` adds ``bracket_exits``.
    ``financing`` accrues interest on positive cash every bar (``cash_rate / periods_per_year``, compounding;
    ``info["financing"]``): the cash of a book sized down by a sizing wrapper (``exposure_scale < 1``) or of a
    bracket exit; its loan rate and borrow fee never apply (no negative cash, no shorts). The data's spread,
    impact, a participation cap and lots (the solve would no longer be exact) and ``margin`` (a long-only book never
    larger than its equity never borrows) are refused by name (``ValueError``; MultiAsset-v0 models every rule).
    ``rebalance_band`` is threshold rebalancing (a common mandate rule): no trade while every target weight is within
    the band of the weight held, so a policy whose targets jitter around its book pays no cost for the jitter; a
    move past the band rebalances all the way to the target.

    ## Action Space
    ``Box(-1, 1, (K,), float32)``, mapped to weights by ``softmax(a / temperature)`` and the
    Euclidean projection onto ``{w : lower_bound <= w <= upper_bound, sum(w) = 1}``
    (:func:`yield_weights`): the weights always sum to 1 and lie within the bounds (seed 003: always fully
    invested). With ``size_action=True`` the space is ``Box(-1, 1, (K + 1,))`` and its last entry ``s`` sizes the
    book: the invested fraction is ``x = max(s', 0)``, ``s'`` the entry past the ``dead_zone`` ``d``
    (``0`` for ``|s| <= d``, else ``sign(s) (|s| - d) / (1 - d)``), so the book holds ``x w`` and ``1 - x`` in
    cash (earning ``financing``'s cash rate, if any); ``s = 1`` is fully invested, ``s <= d`` all cash -- the
    near-zero actions of an untrained policy hold nothing, the flat start the main job's validation gate needs
    (README "Why raw advantages looked flat, and the validation gate"). Actions outside ``[-1, 1]`` are clipped;
    a wrong shape or a non-finite value raises ``ValueError``.

    ## Observation Space
    ``Dict`` in the shared layout (see :mod:`sb3_trading.envs.base`):

    =============  ===============  ================================================================
    key            shape            content
    =============  ===============  ================================================================
    ``market``     ``(window, F)``  normalised causal features, rows ``t-window+1..t``: the
                                    ``indicators`` per asset, then the data's ``features``
                                    (``apy[...]``, ``depeg[...]`` flags for the synthetic market;
                                    its ``peg_dev[...]`` deviations and exogenous drivers when on)
    ``portfolio``  ``(K + 2,)``     position value / equity per asset, cash / equity, drawdown
                                    (all in ``[0, 1]`` up to rounding: no clip is needed)
    =============  ===============  ================================================================

    ## Rewards
    The portfolio return net of costs minus the de-peg penalty::

        reward = (E_{t+1} / E_t - 1) - depeg_penalty * sum_i w_i,t * depth_i,t+1

    where ``w_t`` are the weights held over the step (the target weights; the weights already held when the
    ``rebalance_band`` keeps the book) and ``depth_{t+1}`` the de-peg depths at ``t + 1``.
    ``info["portfolio_return"]`` is the raw return, ``info["depeg_penalty"]`` the
    subtracted term; ``info["target_weights"]`` holds the target asked for and ``info["yield_income"]`` the
    value of the interest paid (currency, at ``p_{t+1}``).

    ## Starting State
    At the first bar ``t_0`` whose window is past the indicators' warm-up, or at a uniformly drawn bar with
    ``random_start=True``. With ``initial_weights=None`` (default): all cash (``initial_cash``), no positions.
    With ``initial_weights=w`` the account buys ``w`` at the close of ``t_0`` with the step's self-financing
    trade (:func:`yield_open_kernel`), paying the frictions of ``costs``: it invests ``V = E_0 / (1 + r sum(w))``
    (``r``: the proportional rate of a buy, commission plus slippage and half-spread) as ``V w_i / p_i`` shares
    and keeps ``V (1 - sum(w))`` cash, so it holds the weights ``w`` of its equity ``V = E_0 - costs``. The reset
    ``info`` reports that purchase: ``costs``, ``turnover`` (notional / ``initial_cash``), ``portfolio_return =
    E_{t_0} / E_0 - 1`` (minus the costs) and ``target_weights = w``. The first ``step`` decides at the same close
    and trades from these holdings.

    ## Episode End
    When the drawdown ``1 - E_{t+1} / max E`` exceeds ``max_drawdown``: terminated
    (``drawdown_action="terminate"``, default; ``info["terminated_by"] = "drawdown_limit"``) or truncated
    (``"truncate"``: SB3 then bootstraps the value of the last observation, as at a time limit).
    Truncated after ``episode_length`` decisions or at the last bar of the data. Terminated on ruin
    (equity ``<= 0``, impossible with positive prices and long-only weights).
    A step after the episode ended raises ``gymnasium.error.ResetNeeded`` until ``reset()``.

    ## Arguments
    :param data: the market, with feature columns ``apy[<asset>]`` (annualised fractions) for every
        asset; ``None`` builds ``make_yield_market(seed=synthetic_seed, periods_per_year=periods_per_year)``.
    :param initial_cash: starting cash, account currency, in ``(0, 1e15]`` (:data:`~sb3_trading.envs.base.MAX_INITIAL_CASH`).
    :param rebalance_cost_bps: cost in bps of traded notional (the ``CostModel`` commission), in ``[0, 10000)``; a
        shortcut for ``costs={"commission_bps": ...}`` (changed from 5 together with a ``CostModel`` or preset,
        or with a ``costs`` dict that sets ``commission_bps``: ``ValueError``).
    :param window: bars in the ``market`` observation.
    :param episode_length: decisions per episode (``None``: to the end of the data).
    :param random_start: draw the start bar uniformly from ``self.np_random``.
    :param lower_bound: per-asset minimum weight, a number or ``(K,)``; needs ``sum(lower) <= 1``
        (``K * lower_bound <= 1``).
    :param upper_bound: per-asset maximum weight, a number or ``(K,)``; needs ``sum(upper) >= 1``
        (``K * upper_bound >= 1``).
    :param temperature: softmax temperature, ``> 0``.
    :param size_action: add a last action entry that sizes the invested fraction of the book (see Action Space);
        ``False`` (default): always fully invested.
    :param dead_zone: the sizing entry's dead zone, in ``[0, 1)`` (needs ``size_action``); ``0`` (default): none.
    :param rebalance_band: threshold rebalancing, in ``[0, 1)``: when every target weight is within ``rebalance_band``
        of the weight the account holds (``|w_i - v_i / E_t| < band`` for all ``i``) it does not trade that bar, and
        its book drifts with prices and yield (see Market rules); ``0`` (default): rebalance every bar.
    :param periods_per_year: bars per year over which an APY is spread, ``> 0``; ``None`` (default) takes
        the data's calendar, ``data.periods_per_year`` (252 for business-day bars such as the synthetic
        market's, 365 for daily 7-day data, ...); a number overrides it (and, without ``data``, is passed
        to ``make_yield_market``).
    :param depeg_penalty: weight of the de-peg penalty, ``>= 0``.
    :param peg: the peg price, a number or ``(K,)`` (the synthetic market pegs at 1.0); a warning is
        issued when the data's first prices are more than 50 % away from it. ``None`` (default): the data's
        ``peg_dev[<asset>]`` columns (price / peg - 1, all assets or none; ``ValueError`` for some only) when it
        has them, else 1.0.
    :param depeg_tolerance: relative distance below the peg that counts as de-pegged, in ``[0, 1)``: a number
        (every asset) or ``(K,)`` (one per asset, e.g. tight for a fiat stablecoin, loose for a volatile staked asset).
    :param max_drawdown: drawdown in ``(0, 1]`` past which the episode ends; ``None`` disables it.
    :param drawdown_action: ``"terminate"`` or ``"truncate"``: what passing ``max_drawdown`` does (Episode End).
    :param initial_weights: ``None`` (default: all cash at reset) or ``(K,)`` weights bought at reset (Starting
        State): each in ``[0, upper_bound_i]``, summing to at most 1 (the rest stays cash). Lower bounds are not
        required: they constrain the agent's decisions, and the starting book may hold cash, like the all-cash
        default; the caps are, so the start never holds more of an asset than the agent may choose.
    :param indicators: indicator names (default :data:`DEFAULT_YIELD_INDICATORS`).
    :param normalizer: ``"expanding"`` (default: causal z-score of each row with the statistics of the rows
        up to it), ``"rolling"``/``"rolling:<window>"``, ``"fit"`` (fitted on this env's whole data: make it on
        the training slice), a normaliser instance (e.g. the training env's ``normalizer``), or ``None``; see
        :class:`~sb3_trading.envs.base.TradingEnv`.
    :param feature_fits: fitted indicator state from the training data (``regime_prob``'s HMM), e.g. the training
        env's ``feature_fits``; ``None`` fits it on this env's data (see :class:`~sb3_trading.envs.TradingEnv`).
    :param synthetic_seed: seed of the synthetic market used when ``data`` is ``None``.
    :param render_mode: ``None`` or ``"ansi"``.
    :param costs: a :class:`~sb3_trading.sim.CostModel`, a dict of its fields (its commission defaults to
        ``rebalance_cost_bps``), or a venue preset name (:data:`~sb3_trading.sim.VENUES`); proportional costs and
        fees per order (see Market rules).
    :param slippage_bps: adverse fill price move in bps, in ``[0, 10000)``; a shortcut for
        ``costs={"slippage_bps": ...}``.
    :param financing: a :class:`~sb3_trading.sim.Financing` or a dict of its fields (``None``: none): interest on
        positive cash (see Market rules).
    :param margin: must be ``None``: not modelled (the book never borrows).
    :param brackets: a :class:`~sb3_trading.sim.Brackets` or a dict of its fields (``None``: none); needs the
        data's open, high and low.
    """

    def __init__(
        self,
        data: MarketData | None = None,
        initial_cash: float = 1_000_000.0,
        rebalance_cost_bps: float = DEFAULT_REBALANCE_COST_BPS,
        window: int = 1,
        episode_length: int | None = None,
        random_start: bool = False,
        lower_bound: float | Sequence[float] = 0.05,
        upper_bound: float | Sequence[float] = 0.60,
        temperature: float = 1.0,
        size_action: bool = False,
        dead_zone: float = 0.0,
        rebalance_band: float = 0.0,
        periods_per_year: float | None = None,
        depeg_penalty: float = 1.0,
        peg: float | Sequence[float] | None = None,
        depeg_tolerance: float | Sequence[float] = 0.005,
        max_drawdown: float | None = 0.15,
        drawdown_action: str = "terminate",
        initial_weights: Sequence[float] | np.ndarray | None = None,
        indicators: Sequence[str] | None = None,
        normalizer: NormalizerArg = DEFAULT_NORMALIZER,
        feature_fits: FeatureFits | None = None,
        synthetic_seed: int = 0,
        render_mode: str | None = None,
        costs: CostModel | str | dict | None = None,
        slippage_bps: float = 0.0,
        financing: Financing | dict | None = None,
        margin: Margin | dict | None = None,
        brackets: Brackets | dict | None = None,
    ) -> None:
        rules = yield_market_rules(rebalance_cost_bps, costs, slippage_bps, financing, margin, brackets)
        if periods_per_year is not None and not (is_real(periods_per_year) and 0 < periods_per_year < math.inf):
            raise (ValueError if is_real(periods_per_year) else ArgumentTypeError)(
                f"periods_per_year must be a finite number > 0 (bars per year), or None for data.periods_per_year, "
                f"got {periods_per_year!r}"
            )
        if data is None:
            data = self.default_market(check_int("synthetic_seed", synthetic_seed, 0), periods_per_year)
        if not isinstance(data, MarketData):
            raise TypeError(f"data must be a sb3_trading.data.MarketData, got {type(data).__name__}")
        periods_per_year = float(data.periods_per_year if periods_per_year is None else periods_per_year)
        indicators = DEFAULT_YIELD_INDICATORS if indicators is None else indicators
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
        )
        n_assets = data.n_assets
        lower = _bounds("lower_bound", lower_bound, n_assets)
        upper = _bounds("upper_bound", upper_bound, n_assets)
        if (lower > upper).any():
            raise ValueError(f"lower_bound must be <= upper_bound per asset, got {lower.tolist()} > {upper.tolist()}")
        if lower.sum() > 1.0 + BOUNDS_SLACK or upper.sum() < 1.0 - BOUNDS_SLACK:
            raise ValueError(
                f"weight bounds admit no allocation of {n_assets} assets: need sum(lower_bound) <= 1 <= sum(upper_bound) "
                f"(K * lower <= 1 <= K * upper), got sum(lower_bound)={lower.sum():.6g}, sum(upper_bound)={upper.sum():.6g}"
            )
        temperature = check_real("temperature", temperature, 0.0, strict_minimum=True)
        rebalance_band = check_real("rebalance_band", rebalance_band, 0.0, 1.0, strict_maximum=True)
        if not isinstance(size_action, (bool, np.bool_)):
            raise TypeError(f"size_action must be True or False, got {size_action!r}")
        dead_zone = check_real("dead_zone", dead_zone, 0.0, 1.0, strict_maximum=True)
        if dead_zone > 0.0 and not size_action:
            raise ValueError(
                f"dead_zone={dead_zone} needs size_action=True (the softmax weights are always fully invested, so "
                "only the sizing action has a flat value for a dead zone to keep); pass size_action=True or dead_zone=0"
            )
        depeg_penalty = check_real("depeg_penalty", depeg_penalty, 0.0)
        tolerance = _depeg_tolerance(depeg_tolerance, n_assets)
        max_drawdown = check_real("max_drawdown", max_drawdown, 0.0, 1.0, strict_minimum=True, allow_none=True)
        weights_0 = _initial_weights(initial_weights, upper)
        deviation_columns = [peg_dev_column(a) for a in data.asset_names]
        present = [c for c in deviation_columns if c in data.feature_names]
        peg_arr: np.ndarray | None = None
        if peg is not None or not present:
            peg_arr = check_float_array("peg", PEG if peg is None else peg)
            peg_arr = np.full(n_assets, float(peg_arr)) if peg_arr.ndim == 0 else peg_arr
            if peg_arr.shape != (n_assets,) or not (np.isfinite(peg_arr).all() and (peg_arr > 0).all()):
                raise ValueError(f"peg must be a price > 0 or one per asset, shape ({n_assets},), got {peg!r}")
            start_gap = np.abs(data.prices[0] / peg_arr - 1.0)
            if (start_gap > 0.5).any():
                warnings.warn(
                    f"the first prices {data.prices[0].tolist()} are far from peg={peg_arr.tolist()}: de-peg penalties "
                    "will be wrong; pass peg=<the assets' peg prices>",
                    stacklevel=2,
                )
            depth = 1.0 - data.prices / peg_arr
            depegged = data.prices < peg_arr * (1.0 - tolerance)
        elif len(present) < n_assets:
            missing = [c for c in deviation_columns if c not in present]
            raise ValueError(
                f"data has peg deviation columns for some assets but lacks {missing}: with peg=None every asset needs "
                "one (price / peg - 1, see sb3_trading.data.yield_market.with_peg_deviation), or pass peg=<prices>"
            )
        else:
            deviation = data.features[:, [data.feature_names.index(c) for c in deviation_columns]]
            if not np.isfinite(deviation).all() or (deviation <= -1.0).any():
                raise ValueError("the data's peg_dev[...] columns must be finite and > -1 (price / peg - 1 of a price > 0)")
            depth, depegged = -deviation, deviation < -tolerance
        missing = [apy_column(a) for a in data.asset_names if apy_column(a) not in data.feature_names]
        if missing:
            raise ValueError(
                f"data lacks the APY feature columns {missing}: YieldAllocation needs one column 'apy[<asset>]' per asset "
                "(annualised yield as a fraction, e.g. 0.04), see sb3_trading.data.yield_market.make_yield_market"
            )
        columns = [data.feature_names.index(apy_column(a)) for a in data.asset_names]
        apy = data.features[:, columns]
        if (apy / periods_per_year <= -1.0).any():
            raise ValueError(f"APY / periods_per_year must be > -1 (a period cannot lose all), got min APY {apy.min()!r}")

        self.n_assets = n_assets
        self.lower_bound = lower
        self.upper_bound = upper
        self.temperature = float(temperature)
        #: whether the action's last entry sizes the invested fraction of the book, past ``dead_zone``
        self.size_action, self.dead_zone = bool(size_action), float(dead_zone)
        #: threshold rebalancing: no trade while every target weight is within this of the weight held
        self.rebalance_band = float(rebalance_band)
        #: bars per year of the APY accrual (``data.periods_per_year`` unless overridden)
        self.periods_per_year = periods_per_year
        self.depeg_penalty = float(depeg_penalty)
        #: ``(K,)`` the constant peg prices, or ``None`` when the pegs are the data's ``peg_dev[...]`` columns
        self.peg = peg_arr
        #: ``(K,)`` de-peg tolerance of each asset
        self.depeg_tolerance = tolerance
        #: ``(K,)`` weights bought at reset, or ``None`` (all cash)
        self.initial_weights = weights_0
        self.max_drawdown = None if max_drawdown is None else float(max_drawdown)
        self.drawdown_action = check_choice("drawdown_action", drawdown_action, DRAWDOWN_ACTIONS)
        self._prices = kernel_array(data.prices)  # (T, K)
        self._rates = kernel_array(apy / periods_per_year)  # (T, K) yield of t -> t+1
        # (T, K) de-peg depth of each bar: only read at t + 1 for the reward, never in the observation
        self._depeg_depth = kernel_array(np.where(depegged, depth, 0.0))
        self.market_rules = rules
        self.costs = rules.costs
        #: the compiled rules (proportional costs, fees per order, financing, brackets); refuses the others by name
        self.frictions = self._market_rules(rules, SUPPORTED_RULES)

        self.action_space = spaces.Box(-1.0, 1.0, shape=(n_assets + int(self.size_action),), dtype=np.float32)
        self.observation_space = self._observation_space(n_assets + 2)
        self._kernel = self.make_kernel(1)

    @classmethod
    def default_market(cls, seed: int = 0, periods_per_year: float | None = None) -> MarketData:
        """``make_yield_market(seed=seed)`` (with ``periods_per_year`` bars per year when given): the market built
        when ``data`` is ``None``.

        :param seed: seed of the synthetic market.
        :param periods_per_year: the env's ``periods_per_year`` argument; the synthetic market needs a whole number.
        """
        if periods_per_year is None:
            return make_yield_market(seed=seed)
        if not (is_real(periods_per_year) and float(periods_per_year).is_integer() and periods_per_year > 0):
            raise ValueError(
                f"periods_per_year={periods_per_year!r} must be a whole number to build the synthetic market "
                "(make_yield_market); pass data=... for another calendar"
            )
        return make_yield_market(seed=seed, periods_per_year=int(periods_per_year))

    def yield_rates(self) -> np.ndarray:
        """``(T, K)`` yield per bar of each asset, ``apy[<asset>] / periods_per_year``: what the env accrues (a copy)."""
        return self._rates.copy()

    def make_kernel(self, n_envs: int) -> YieldAllocationKernel:
        """The batched dynamics of this env for ``n_envs`` accounts (the env itself runs ``n_envs=1``)."""
        return YieldAllocationKernel(self, n_envs)


class YieldAllocationKernel(TradingKernel):
    """Batched YieldAllocation-v0 dynamics: ``B`` accounts allocating among the env's ``K`` assets
    (see :class:`YieldAllocationEnv`). ``step`` takes ``(B, K)`` actions (``(B, K + 1)`` with ``size_action``)
    already clipped to ``[-1, 1]`` and runs :func:`yield_step_kernel`.

    The reward of a step (:attr:`~sb3_trading.envs.kernel.Transition.reward`) is the step return minus the
    de-peg penalty. An account whose drawdown exceeds ``max_drawdown`` ends its episode on that step: with
    ``drawdown_action="truncate"`` it gets the new bar as its truncation bar :attr:`end_t` (a reset restores the
    episode's own end), with ``"terminate"`` its :attr:`~sb3_trading.envs.kernel.Transition.ended` code is
    :data:`~sb3_trading.envs.kernel.DRAWDOWN_LIMIT`.
    """

    def __init__(self, env: YieldAllocationEnv, n_envs: int) -> None:
        super().__init__(env, n_envs, env._prices, env.costs, env.initial_cash)
        self.costs = env.costs
        self.use_market_rules(env.frictions)
        self.lower_bound, self.upper_bound, self.temperature = env.lower_bound, env.upper_bound, env.temperature
        self.rebalance_band = env.rebalance_band
        self._size_action, self._dead_zone = env.size_action, env.dead_zone
        #: fraction of the book the target weights apply to (set by the sizing wrappers; 1: the action as asked)
        self.exposure_scale = 1.0
        self._rates, self._depth = env._rates, env._depeg_depth  # (T, K), shared
        self.depeg_penalty = env.depeg_penalty
        self._max_drawdown = math.inf if env.max_drawdown is None else env.max_drawdown
        self._terminate_on_drawdown = env.drawdown_action == "terminate"
        self.initial_weights = env.initial_weights  # (K,) or None

    def reset(self, rows: np.ndarray, draws: dict[str, np.ndarray]) -> Transition:
        """Fresh accounts in ``rows`` at the drawn start bars: all cash (``portfolio = [0, ..., 0, 1, 0]``), or
        holding ``initial_weights`` bought at the close of the start bar, paying costs (:func:`yield_open_kernel`)."""
        start = draws["start"]
        self.set_clock(rows, t=start, start=start)
        k, n = start.shape[0], self.n_assets
        zeros = np.zeros(k)
        if self.initial_weights is None:
            self.book.reset(self.initial_cash, index=rows)
            self._set_equity(rows, self.initial_cash)
            portfolio = np.zeros((k, n + 2), dtype=np.float32)
            portfolio[:, n] = 1.0  # all cash, no drawdown
            extras = {"target_weights": np.zeros((k, n)), "depeg_penalty": zeros, "yield_income": zeros}
            return self.reset_rules(rows, self._flat(start, portfolio)._replace(extras=extras))
        extras = {"target_weights": np.tile(self.initial_weights, (k, 1)), "depeg_penalty": zeros, "yield_income": zeros}
        tr = self.blank(n + 2, extras, n_rows=k)._replace(equity_t=np.full(k, self.initial_cash))
        holdings, peak, levels = np.empty((k, n + 1)), np.empty(k), np.empty((k, 3, n))
        yield_open_kernel(
            holdings,
            peak,
            self.initial_weights,
            start,
            self.initial_cash,
            self._prices,
            self.costs.commission,
            self.costs.adverse,
            self._friction_bars,
            self._friction_rules,
            levels,
            tr.outputs,
        )
        return self.commit_opening(rows, holdings, peak, levels, tr)

    def step(self, actions: np.ndarray) -> Transition:
        n_rows, n = actions.shape[0], self.n_assets
        book, costs = self.book, self.costs
        target, income, penalty, end_t = np.empty((n_rows, n)), np.empty(n_rows), np.empty(n_rows), self.end_t.copy()
        # target_weights (B, K): the info builder hands each account its row, as for positions
        more, rule_extras, ended = self.rule_outputs()
        extras = {"target_weights": target, "depeg_penalty": penalty, "yield_income": income, **rule_extras}
        tr = self.blank(n + 2, extras, reward=True, ended=ended)
        yield_step_kernel(
            book.holdings,
            book.peak_equity,
            self.equity,
            self.t,
            actions,
            self.lower_bound,
            self.upper_bound,
            self.temperature,
            self.exposure_scale,
            self._size_action,
            self._dead_zone,
            self.rebalance_band,
            self._prices,
            self._rates,
            self._depth,
            costs.commission,
            costs.adverse,
            self._friction_bars,
            self._friction_rules,
            self.levels,
            self._ohlc,
            self.depeg_penalty,
            self._max_drawdown,
            tr.outputs,
            more,
            target,
            income,
            penalty,
            end_t,
            tr.reward,
        )
        if self._terminate_on_drawdown:
            hit = tr.drawdown > self._max_drawdown  # the kernel's own test: it moved end_t of these rows
            end_t[hit] = self.end_t[hit]
            ended = np.zeros(n_rows, dtype=np.int8) if tr.ended is None else tr.ended.copy()
            ended[hit & (ended == 0)] = DRAWDOWN_LIMIT
            tr = tr._replace(ended=ended)
        self.end_t = end_t
        return self.advance(tr)
