"""Yield accrual and self-financing rebalancing: two small, pure, batched accounting primitives.

They complement :mod:`sb3_trading.sim.core` for allocation environments (``YieldAllocation-v0``):

* :func:`accrue_yield` pays each asset's interest *in kind*, as extra shares
  (``positions * (1 + rate)``), the way a rebasing stablecoin, a lending-pool
  receipt token or an accumulating fund share grows. Cash earns nothing.
* :func:`self_financing_value` finds how much can be invested so that a
  rebalance to target weights pays its own frictions out of the equity and
  leaves no negative cash.

Shapes use ``B`` for the batch and ``N`` for the assets, as in the core. Pure
NumPy, no gymnasium.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sb3_trading.sim.core import CostModel

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
    so Newton's method from ``V = equity`` lands on the root in at most ``N + 1`` steps; frictions of
    zero give ``V = equity``.

    :param equity: ``(B,)`` equity before the trade, marked at ``prices``, ``> 0``.
    :param weights: ``(B, N)`` target weights ``>= 0`` (fractions of ``V``).
    :param positions: ``(B, N)`` current share counts.
    :param prices: ``(B, N)`` mid prices at execution.
    :param costs: the friction model (needs ``s + c (1 + s) < 1``).
    :return: ``(B,)`` investable value ``V`` (``<= equity``).
    :raises ValueError: if the frictions reach 100 % of traded notional.
    """
    commission, slippage = costs.commission, costs.slippage
    value = np.array(equity, dtype=np.float64, copy=True)
    if commission == 0.0 and slippage == 0.0:
        return value
    buy_rate = slippage + commission * (1.0 + slippage)
    sell_rate = slippage + commission * (1.0 - slippage)
    if buy_rate >= 1.0:
        raise ValueError(f"frictions of {buy_rate:.2%} of traded notional leave nothing to invest; lower the costs")
    held = positions * prices
    tolerance = NEWTON_RTOL * np.abs(value)
    for _ in range(weights.shape[1] + 3):  # N + 1 linear pieces, then float slack
        gap = value[:, None] * weights - held
        side = np.sign(gap)
        rates = buy_rate if buy_rate == sell_rate else np.where(side > 0, buy_rate, sell_rate)
        side_rates = side * rates  # d F / d gap, a subgradient at a kink
        excess = value + (side_rates * gap).sum(axis=1) - equity  # >= 0: Newton approaches from the right
        if (excess <= tolerance).all():
            break
        value -= excess / (1.0 + (side_rates * weights).sum(axis=1))
    return value
