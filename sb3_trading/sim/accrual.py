"""Yield accrual and self-financing rebalancing: the allocation environments' accounting fronts, batched.

They complement :mod:`sb3_trading.sim.core` for allocation environments (``YieldAllocation-v0``), and like
it they are typed, validated fronts of the compiled rules of :mod:`sb3_trading.sim.kernels`:

* :func:`accrue_yield` pays each asset's interest *in kind*, as extra shares
  (``positions * (1 + rate)``), the way a rebasing stablecoin, a lending-pool
  receipt token or an accumulating fund share grows. Cash earns nothing
  (:func:`~sb3_trading.sim.kernels.accrue_yield_kernel`).
* :func:`self_financing_value` finds how much can be invested so that a
  rebalance to target weights pays its own frictions out of the equity and
  leaves no negative cash (:func:`~sb3_trading.sim.kernels.self_financing_kernel`, the one Newton solve).

Shapes use ``B`` for the batch and ``N`` for the assets, as in the core. No gymnasium.
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np

from sb3_trading.sim.frictions import SPREAD_FROM_DATA, CostModel
from sb3_trading.sim.kernels import accrue_yield_kernel, friction_rate, self_financing_kernel


class Accrual(NamedTuple):
    """What one batched yield accrual did.

    :ivar positions: ``(B, N)`` share counts after the interest was paid in shares.
    :ivar income: ``(B,)`` value of the interest paid, in account currency at the marking prices.
    """

    positions: np.ndarray
    income: np.ndarray


def _rows(values: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``values`` as float64 ``(B, N)`` (an ``(N,)`` row broadcast over the batch)."""
    array = np.asarray(values, dtype=np.float64)
    if array.shape != shape:
        array = np.broadcast_to(array, shape)
    return array


def accrue_yield(positions: np.ndarray, rates: np.ndarray, prices: np.ndarray) -> Accrual:
    """Pay one period of yield as extra shares: ``positions * (1 + rates)``. Pure function.

    A short position (negative count) pays the yield: it grows more negative.

    :param positions: ``(B, N)`` share counts before the accrual.
    :param rates: ``(B, N)`` (or ``(N,)``) simple yield of the period per asset, e.g. ``APY / periods_per_year``;
        each must be ``> -1``.
    :param prices: ``(B, N)`` (or ``(N,)``) prices at which ``income`` is valued.
    :return: the :class:`Accrual`; ``income = sum_i positions_i * rates_i * prices_i``.
    """
    positions = np.atleast_2d(np.asarray(positions, dtype=np.float64))
    shape = positions.shape
    grown, income = accrue_yield_kernel(positions, _rows(rates, shape), _rows(prices, shape))
    return Accrual(grown, income)


def _check_linear(costs: CostModel, fees: bool = False) -> None:
    """Refuse a :class:`CostModel` whose frictions are not a fixed fraction of the traded notional (``fees``: plus a
    fixed and a minimum fee per order, which the self-financing solve prices exactly too)."""
    used = [
        name
        for name, on in (
            ("fixed_fee", costs.fixed_fee > 0.0 and not fees),
            ("min_fee", costs.min_fee > 0.0 and not fees),
            ("impact_k", costs.impact_k > 0.0),
            ('half_spread_bps="data"', costs.half_spread_bps == SPREAD_FROM_DATA),
        )
        if on
    ]
    if used:
        what = "proportional costs" + (" and fees per order" if fees else "")
        raise ValueError(
            f"the self-financing rebalance prices {what} only (commission, slippage, half-spread in bps"
            f"{', fixed_fee, min_fee' if fees else ''}), but costs={costs} has {', '.join(used)}"
        )


def friction_rates(costs: CostModel) -> tuple[float, float]:
    """``(buy_rate, sell_rate)``: the frictions per unit of notional bought and sold, ``a + c (1 +- a)``, with ``a``
    the adverse move of a fill (:attr:`~sb3_trading.sim.frictions.CostModel.adverse`: slippage plus half-spread) and
    ``c`` the commission (:func:`~sb3_trading.sim.kernels.friction_rate` of each side).

    :raises ValueError: if ``costs`` is not linear (:attr:`~sb3_trading.sim.frictions.CostModel.is_linear`: fees per
        order, impact or the data's spread), or if buying costs 100 % of the notional or more (nothing could be
        invested).
    """
    _check_linear(costs)
    commission, adverse = costs.commission, costs.adverse
    buy_rate = friction_rate(1.0, commission, adverse)
    if buy_rate >= 1.0:
        raise ValueError(f"frictions of {buy_rate:.2%} of traded notional leave nothing to invest; lower the costs")
    return buy_rate, friction_rate(-1.0, commission, adverse)


def self_financing_value(
    equity: np.ndarray, weights: np.ndarray, positions: np.ndarray, prices: np.ndarray, costs: CostModel
) -> np.ndarray:
    """Value ``V`` to invest so that rebalancing to ``V * weights`` pays its frictions out of ``equity``.

    Trading from holdings worth ``v_i = positions_i * prices_i`` to target values ``V w_i`` costs
    (see :func:`sb3_trading.sim.core.fill_trades`, with ``x_i = V w_i - v_i``)
    ``F(V) = sum_i |x_i| (a + c (1 + a sign(x_i)))``, ``a`` the adverse move of a fill (slippage plus
    half-spread, :attr:`~sb3_trading.sim.frictions.CostModel.adverse`) and ``c`` the commission; with fees per order
    each traded asset pays ``|x_i| a + max(c |x_i| (1 + a sign x_i), min_fee) + fixed_fee`` instead. This returns the
    root of ``V + F(V) = equity``, so that after ``Portfolio.trade_to(V * weights / prices, prices)`` the cash is
    ``equity - V sum(w) - F(V) = V (1 - sum(w))``: zero when the weights sum to 1.

    ``V + F(V)`` is convex, piecewise linear and increasing in ``V`` (slope ``>= 1 - a - c (1 + a) > 0``),
    so Newton's method from ``V = equity`` lands on the root in at most ``N + 1`` steps (usually one: the
    root lies on the linear piece left of ``equity`` unless a trade changes side in between); frictions of
    zero give ``V = equity``. Fees keep it convex and increasing, piecewise linear but for the single points where an
    asset's trade is zero (and pays nothing): at most ``4 N + 1`` Newton steps. The solve is
    :func:`~sb3_trading.sim.kernels.self_financing_kernel`, the one the environments run.

    :param equity: ``(B,)`` equity before the trade, marked at ``prices``, ``> 0``.
    :param weights: ``(B, N)`` target weights ``>= 0`` (fractions of ``V``).
    :param positions: ``(B, N)`` current share counts.
    :param prices: ``(B, N)`` (or ``(N,)``) mid prices at execution.
    :param costs: the friction model: proportional costs with ``a + c (1 + a) < 1``, and fees per order.
    :return: ``(B,)`` investable value ``V`` (``<= equity``).
    :raises ValueError: if ``costs`` has impact or the data's spread (the solve would not be exact), or if the
        frictions reach 100 % of traded notional.
    """
    _check_linear(costs, fees=True)
    friction_rates(dataclasses.replace(costs, fixed_fee=0.0, min_fee=0.0))  # refuses costs that leave nothing to invest
    weights = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    shape = weights.shape
    held = _rows(positions, shape) * _rows(prices, shape)
    equity = np.asarray(equity, dtype=np.float64).reshape(shape[0])
    value, _, _ = self_financing_kernel(equity, weights, held, costs.commission, costs.adverse, costs.fixed_fee, costs.min_fee)
    return value


__all__ = ["Accrual", "accrue_yield", "friction_rates", "self_financing_value"]
