"""Yield accrual and self-financing rebalancing: small accounting primitives, batched (plus one-account fast paths).

They complement :mod:`sb3_trading.sim.core` for allocation environments (``YieldAllocation-v0``):

* :func:`accrue_yield` pays each asset's interest *in kind*, as extra shares
  (``positions * (1 + rate)``), the way a rebasing stablecoin, a lending-pool
  receipt token or an accumulating fund share grows. Cash earns nothing.
* :func:`self_financing_value` finds how much can be invested so that a
  rebalance to target weights pays its own frictions out of the equity and
  leaves no negative cash.
* :func:`rebalance_accrue_row` runs one account's whole step (the rebalance, the accrual and
  the mark) in Python floats: the same arithmetic as ``Portfolio.trade_to``, :func:`accrue_yield`
  and ``Portfolio.mark``, for a single environment's hot path (tests hold the two together).

Shapes use ``B`` for the batch and ``N`` for the assets, as in the core. Pure
NumPy, no gymnasium.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sb3_trading.sim.core import CostModel, Portfolio

#: :func:`self_financing_value` stops once ``V + F(V) - equity <= NEWTON_RTOL * equity`` (the cash left negative)
NEWTON_RTOL = 1e-13


class Accrual(NamedTuple):
    """What one batched yield accrual did.

    :ivar positions: ``(B, N)`` share counts after the interest was paid in shares.
    :ivar income: ``(B,)`` value of the interest paid, in account currency at the marking prices.
    """

    positions: np.ndarray
    income: np.ndarray


def accrue_yield(positions: np.ndarray, rates: np.ndarray, prices: np.ndarray) -> Accrual:
    """Pay one period of yield as extra shares: ``positions * (1 + rates)``. Pure function.

    A short position (negative count) pays the yield: it grows more negative.

    :param positions: ``(B, N)`` share counts before the accrual.
    :param rates: ``(B, N)`` (or ``(N,)``) simple yield of the period per asset, e.g. ``APY / periods_per_year``;
        each must be ``> -1``.
    :param prices: ``(B, N)`` (or ``(N,)``) prices at which ``income`` is valued.
    :return: the :class:`Accrual`; ``income = sum_i positions_i * rates_i * prices_i``.
    """
    interest = positions * rates
    return Accrual(positions + interest, np.vecdot(interest, prices))


def friction_rates(costs: CostModel) -> tuple[float, float]:
    """``(buy_rate, sell_rate)``: the frictions per unit of notional bought and sold, ``s + c (1 +- s)``.

    :raises ValueError: if buying costs 100 % of the notional or more (nothing could be invested).
    """
    commission, slippage = costs.commission, costs.slippage
    buy_rate = slippage + commission * (1.0 + slippage)
    if buy_rate >= 1.0:
        raise ValueError(f"frictions of {buy_rate:.2%} of traded notional leave nothing to invest; lower the costs")
    return buy_rate, slippage + commission * (1.0 - slippage)


def self_financing_value(
    equity: np.ndarray, weights: np.ndarray, positions: np.ndarray, prices: np.ndarray, costs: CostModel
) -> np.ndarray:
    """Value ``V`` to invest so that rebalancing to ``V * weights`` pays its frictions out of ``equity``.

    Trading from holdings worth ``v_i = positions_i * prices_i`` to target values ``V w_i`` costs
    (see :func:`sb3_trading.sim.core.fill_trades`, with ``x_i = V w_i - v_i``)
    ``F(V) = sum_i |x_i| (s + c (1 + s sign(x_i)))``. This returns the root of ``V + F(V) = equity``,
    so that after ``Portfolio.trade_to(V * weights / prices, prices)`` the cash is
    ``equity - V sum(w) - F(V) = V (1 - sum(w))``: zero when the weights sum to 1.

    ``V + F(V)`` is convex, piecewise linear and increasing in ``V`` (slope ``>= 1 - s - c (1 + s) > 0``),
    so Newton's method from ``V = equity`` lands on the root in at most ``N + 1`` steps (usually one: the
    root lies on the linear piece left of ``equity`` unless a trade changes side in between); frictions of
    zero give ``V = equity``. A batch of one runs :func:`self_financing_row` (the same iteration).

    :param equity: ``(B,)`` equity before the trade, marked at ``prices``, ``> 0``.
    :param weights: ``(B, N)`` target weights ``>= 0`` (fractions of ``V``).
    :param positions: ``(B, N)`` current share counts.
    :param prices: ``(B, N)`` mid prices at execution.
    :param costs: the friction model (needs ``s + c (1 + s) < 1``).
    :return: ``(B,)`` investable value ``V`` (``<= equity``).
    :raises ValueError: if the frictions reach 100 % of traded notional.
    """
    value = np.array(equity, dtype=np.float64, copy=True)
    if costs.commission == 0.0 and costs.slippage == 0.0:
        return value
    buy_rate, sell_rate = friction_rates(costs)
    held = positions * prices
    if value.shape[0] == 1:
        value[0] = self_financing_row(value.item(), weights[0], held[0], buy_rate, sell_rate)[0]
        return value
    tolerance = NEWTON_RTOL * np.abs(value)
    for _ in range(weights.shape[1] + 3):  # N + 1 linear pieces, then float slack
        gap = value[:, None] * weights - held
        side = np.sign(gap)
        side_rates = side * buy_rate if buy_rate == sell_rate else side * np.where(side > 0, buy_rate, sell_rate)
        excess = value + np.vecdot(side_rates, gap) - equity  # >= 0: Newton approaches from the right
        if max((excess - tolerance).tolist()) <= 0.0:  # a Python max is cheaper than a NumPy reduction for small batches
            break
        value -= excess / (1.0 + np.vecdot(side_rates, weights))  # the slope: d F / d V, a subgradient at a kink
    return value


def self_financing_row(
    equity: float, weights: np.ndarray, held: np.ndarray, buy_rate: float, sell_rate: float
) -> tuple[float, np.ndarray, float]:
    """:func:`self_financing_value` of one portfolio, with Python floats for the scalars (a single env's hot path).

    Also returns the trade at the root, which the last Newton evaluation computed anyway (a plain tuple: this
    runs every step).

    :param equity: equity before the trade, ``> 0``.
    :param weights: ``(N,)`` target weights ``>= 0``.
    :param held: ``(N,)`` current position values ``positions * prices``.
    :param buy_rate: frictions per unit of notional bought, ``< 1`` (see :func:`friction_rates`).
    :param sell_rate: frictions per unit of notional sold.
    :return: ``(V, traded, notional)``: the investable value (the same Newton iteration as the batched function,
        with dot products for the sums), the traded values ``V w - held`` at it ``(N,)`` (currency, ``+`` = buy)
        and their gross ``sum |traded|`` (currency).
    """
    value = equity
    tolerance = NEWTON_RTOL * abs(equity)
    for _ in range(weights.shape[0] + 3):  # N + 1 linear pieces, then float slack
        gap = weights * value - held
        side = np.sign(gap)
        notional = float(side.dot(gap))  # sum |x_i|
        if buy_rate == sell_rate:  # F = rate * sum |x_i| and its slope, without a per-asset rate array
            excess = value + buy_rate * notional - equity
            if excess <= tolerance:
                return value, gap, notional
            value -= excess / (1.0 + buy_rate * float(side.dot(weights)))
        else:
            side_rates = side * np.where(side > 0, buy_rate, sell_rate)
            excess = value + float(side_rates.dot(gap)) - equity
            if excess <= tolerance:
                return value, gap, notional
            value -= excess / (1.0 + float(side_rates.dot(weights)))
    gap = weights * value - held  # not reached (at most N + 1 steps): the trade at the last iterate
    return value, gap, float(np.abs(gap).sum())


class RowStep(NamedTuple):
    """What :func:`rebalance_accrue_row` did to one account (Python floats; ``values`` a new array).

    :ivar cash: cash after the trade.
    :ivar costs: commission paid, currency.
    :ivar income: value of the interest paid in shares, at the marking prices.
    :ivar values: ``(N,)`` position values at the marking prices.
    :ivar equity: equity marked at the marking prices.
    :ivar drawdown: ``1 - equity / peak`` after updating the peak.
    """

    cash: float
    costs: float
    income: float
    values: np.ndarray
    equity: float
    drawdown: float


def rebalance_accrue_row(
    book: Portfolio,
    shares: np.ndarray,
    traded: np.ndarray,
    notional: float,
    growth: np.ndarray,
    yield_value: np.ndarray,
    prices: np.ndarray,
) -> RowStep:
    """Row 0 of ``book``: trade to ``shares``, pay one period of yield in shares, mark at ``prices``.

    The arithmetic of ``Portfolio.trade_to(shares, p_t)`` for a trade without slippage (cash pays
    ``sum(traded) + commission * notional``), :func:`accrue_yield` (``positions = shares * growth``,
    income ``shares . yield_value``) and ``Portfolio.mark(prices)``, with Python floats for the scalars:
    a few NumPy calls instead of a batched pass on a batch of one. Writes ``book``'s cash, positions and peak.

    :param book: the book (its costs' commission is charged; its slippage must be 0).
    :param shares: ``(N,)`` target share counts.
    :param traded: ``(N,)`` traded values ``shares * p_t - positions * p_t`` (currency, ``+`` = buy).
    :param notional: ``sum |traded|`` (currency).
    :param growth: ``(N,)`` ``1 + rate`` of the period.
    :param yield_value: ``(N,)`` ``rate * prices``: the value of one share's interest.
    :param prices: ``(N,)`` marking prices ``p_{t+1}``.
    :return: the :class:`RowStep`.
    """
    if book.costs.slippage != 0.0:
        raise ValueError("rebalance_accrue_row prices trades without slippage; use Portfolio.trade_to")
    costs = book.costs.commission * notional
    holdings = book.holdings  # (1, N + 1): share counts, then cash
    cash = holdings.item(0, -1) - (sum(traded.tolist()) + costs)  # builtin sum: cheaper than a reduction for a few values
    holdings[0, -1] = cash
    positions = holdings[0, :-1]
    np.multiply(shares, growth, out=positions)
    income = float(shares.dot(yield_value))
    values = positions * prices
    equity = cash + float(positions.dot(prices))
    peak = max(book.peak_equity.item(), equity)
    book.peak_equity[0] = peak
    return RowStep(cash, costs, income, values, equity, 1.0 - equity / peak)
