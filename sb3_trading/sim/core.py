"""The accounting core: one source of truth for money.

Batched: every state array has a leading ``n_envs`` axis, so a single environment is a batch of one
and a vectorised environment runs the same code. The rules themselves are the compiled loops of
:mod:`sb3_trading.sim.kernels`; this module is their typed, validated front. Shapes below use ``B``
for ``n_envs`` and ``N`` for ``n_assets``.

Conventions
-----------
* Prices are per share, in account currency. Positions are share counts
  (fractional unless the caller rounds them); negative counts are shorts.
* ``equity = cash + positions . prices`` always, marked at the given prices.
* A trade of ``q`` shares at mid price ``p`` fills at
  ``p * (1 + a * sign(q))`` (buys pay up, sells receive less; ``a`` is the half-spread plus slippage plus
  impact) and pays a commission ``commission * |q| * fill_price`` (with the :class:`CostModel`'s fee per
  order and minimum). ``costs`` reports every friction measured against the mid price, so
  ``equity_after = equity_before - costs`` when marked at the mid price.
* Rates are fractions of traded notional: 10 bps is ``0.001``.

The core never imports gymnasium: environments build on it, not the reverse.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sb3_trading.common.jit import kernel_array
from sb3_trading.sim.frictions import BPS, MAX_BPS, N_BAR_FIELDS, CostModel, batch_bars
from sb3_trading.sim.kernels import (
    affordable_kernel,
    equity_kernel,
    fill_trades_kernel,
    fractions_kernel,
    mark_kernel,
    trade_to_kernel,
)


class Fills(NamedTuple):
    """What one batched trade did.

    :ivar traded: shares traded, ``(B, N)`` (signed: + buy, - sell).
    :ivar fill_prices: execution prices after slippage, ``(B, N)``.
    :ivar notional: traded notional at mid prices, ``sum |q| * p``, ``(B,)``.
    :ivar costs: commission plus slippage paid, ``(B,)``, always ``>= 0``.
    """

    traded: np.ndarray
    fill_prices: np.ndarray
    notional: np.ndarray
    costs: np.ndarray


def portfolio_value(cash: np.ndarray, positions: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """Mark-to-market equity ``cash + positions . prices``.

    :param cash: ``(B,)`` cash balances.
    :param positions: ``(B, N)`` share counts.
    :param prices: ``(B, N)`` prices (or ``(N,)``, broadcast over the batch).
    :return: ``(B,)`` equity.
    """
    positions = np.asarray(positions, dtype=np.float64)
    holdings = np.concatenate([positions, np.asarray(cash, dtype=np.float64).reshape(-1, 1)], axis=1)
    return equity_kernel(holdings, np.broadcast_to(np.asarray(prices, dtype=np.float64), positions.shape))


def fill_trades(traded: np.ndarray, prices: np.ndarray, costs: CostModel) -> Fills:
    """Price a batch of trades: fill prices, notional and frictions. Pure function.

    A trade of ``q`` shares at mid ``p`` fills at ``p (1 + a sign(q))`` and pays
    commission ``c |q| p (1 + a sign(q))``; its friction against the mid price is
    ``|q| p (a + c (1 + a sign(q)))`` (:func:`~sb3_trading.sim.kernels.order_cost`, which adds the fees per
    order). Frictions that need the data (impact, a spread column, a participation cap) are priced by the envs.

    :param traded: ``(B, N)`` signed share quantities to trade.
    :param prices: ``(B, N)`` mid prices at execution (or ``(N,)``, broadcast over the batch).
    :param costs: the friction model.
    :return: the :class:`Fills`.
    """
    traded = np.atleast_2d(np.asarray(traded, dtype=np.float64))
    prices = np.broadcast_to(np.asarray(prices, dtype=np.float64), traded.shape)
    bars = batch_bars(costs.constant_bars(traded.shape[1]), traded.shape[0])
    fill_prices, notional, frictions = fill_trades_kernel(traded, prices, bars, kernel_array(costs.rules()))
    return Fills(traded, fill_prices, notional, frictions)


def round_to_lots(shares: np.ndarray, lot_size: float | None) -> np.ndarray:
    """Round share counts toward zero to whole multiples of ``lot_size`` (``None``: unchanged).

    Rounding toward zero never increases a position's size, so a target that
    was affordable stays affordable.
    """
    if lot_size is None:
        return shares
    return np.trunc(shares / lot_size) * lot_size


class Portfolio:
    """Batched book of ``B`` portfolios over ``N`` assets: cash, positions, peak equity.

    All state is NumPy arrays owned by this object; methods update rows in
    place. A single environment uses ``n_envs=1``.

    Positions and cash live in one ``(B, N + 1)`` array, :attr:`holdings`: columns ``0 .. N - 1``
    are the share counts and column ``N`` is the cash. :attr:`positions` and :attr:`cash` are views
    into it; the compiled kernels of :mod:`sb3_trading.sim.kernels` read and write it directly.

    :param n_envs: batch size ``B``.
    :param n_assets: number of assets ``N``.
    :param costs: friction model applied to every trade.
    """

    def __init__(self, n_envs: int, n_assets: int, costs: CostModel | None = None) -> None:
        if n_envs < 1 or n_assets < 1:
            raise ValueError(f"n_envs and n_assets must be >= 1, got {n_envs} and {n_assets}")
        self.costs = costs if costs is not None else CostModel()
        #: ``(B, N + 1)``: share counts, then cash
        self.holdings = np.zeros((n_envs, n_assets + 1))
        self.peak_equity = np.zeros(n_envs)
        self.initial_equity = np.zeros(n_envs)
        self._constants: tuple[CostModel, np.ndarray, np.ndarray] | None = None  # see _constant_rules

    @property
    def positions(self) -> np.ndarray:
        """``(B, N)`` share counts (a view into :attr:`holdings`; assigning writes into it)."""
        return self.holdings[:, :-1]

    @positions.setter
    def positions(self, value: np.ndarray) -> None:
        self.holdings[:, :-1] = value

    @property
    def cash(self) -> np.ndarray:
        """``(B,)`` cash (a view into :attr:`holdings`; assigning writes into it)."""
        return self.holdings[:, -1]

    @cash.setter
    def cash(self, value: np.ndarray) -> None:
        self.holdings[:, -1] = value

    @property
    def bars(self) -> np.ndarray:
        """``(B, N_BAR_FIELDS, N)`` read-only: the per-asset frictions of :attr:`costs` for every row (built once per
        :attr:`costs`).

        :raises ValueError: when :attr:`costs` needs the data (impact, a spread column, a participation cap): the
            envs price those fills bar by bar (:mod:`sb3_trading.sim.frictions`).
        """
        if not self.costs.is_constant:
            raise ValueError(
                f"{self.costs} needs the market data (impact, a spread column or a participation cap): trade through "
                "an env, which prices each bar's fills, or use a CostModel without them"
            )
        return self._constant_rules()[1]

    def _constant_rules(self) -> tuple[CostModel, np.ndarray, np.ndarray]:
        """``(costs, bars, rules)``: :attr:`costs`, its :attr:`bars` and its read-only ``(N_RULES,)`` rules, built once
        per :attr:`costs` (the kernels take the same read-only arrays as an env's, so they compile once for both)."""
        cached = self._constants
        if cached is None or cached[0] is not self.costs or cached[1].shape[0] != self.n_envs:
            costs = self.costs
            cached = costs, batch_bars(costs.constant_bars(self.n_assets), self.n_envs), kernel_array(costs.rules())
            self._constants = cached
        return cached

    @property
    def n_envs(self) -> int:
        return self.holdings.shape[0]

    @property
    def n_assets(self) -> int:
        return self.holdings.shape[1] - 1

    def reset(
        self,
        initial_cash: float | np.ndarray,
        index: np.ndarray | slice | None = None,
        positions: np.ndarray | None = None,
        prices: np.ndarray | None = None,
    ) -> None:
        """Start rows ``index`` (default: all) afresh with ``initial_cash`` and optional initial positions.

        :param initial_cash: cash per reset row, scalar or ``(len(index),)``.
        :param index: rows to reset (boolean mask, integer array or slice).
        :param positions: optional initial share counts ``(len(index), N)``, acquired at no cost.
        :param prices: prices ``(len(index), N)`` to mark initial positions (required with ``positions``).
        """
        rows = slice(None) if index is None else index
        cash = np.asarray(initial_cash, dtype=np.float64)
        if not np.all(np.isfinite(cash)) or np.any(cash <= 0):
            raise ValueError(f"initial_cash must be finite and > 0, got {initial_cash!r}")
        self.cash[rows] = cash
        if positions is None:
            self.positions[rows] = 0.0
            equity = self.cash[rows]
        else:
            if prices is None:
                raise ValueError("reset(positions=...) needs the prices to mark them at")
            self.positions[rows] = positions
            equity = portfolio_value(self.cash[rows], self.positions[rows], prices)
        self.peak_equity[rows] = equity
        self.initial_equity[rows] = equity

    def equity(self, prices: np.ndarray) -> np.ndarray:
        """Mark-to-market equity ``(B,)`` at ``prices`` ``(B, N)``."""
        return equity_kernel(self.holdings, self._batch(prices))

    def affordable(
        self, target: np.ndarray, prices: np.ndarray, lot_size: float | None = None, bars: np.ndarray | None = None
    ) -> np.ndarray:
        """``target`` ``(B, N)`` with its buys cut so that :meth:`trade_to` it at ``prices`` leaves no cash below 0.

        Rows that can pay are unchanged; the others cut every buy in proportion to the shares bought, in whole
        multiples of ``lot_size`` when given; sells are never changed (:func:`~sb3_trading.sim.kernels.affordable_kernel`).
        ``bars``: as in :meth:`trade_to`.
        """
        lot = 0.0 if lot_size is None else float(lot_size)
        return affordable_kernel(
            self.holdings, self._batch(target, "target"), self._batch(prices), self._bars(bars), self._rules(), lot
        )

    def trade_to(self, target: np.ndarray, prices: np.ndarray, bars: np.ndarray | None = None) -> Fills:
        """Trade every row to ``target`` share counts at mid ``prices``, paying frictions from cash.

        Trading to the current positions is an exact no-op: no cost, no change. The trade is made as asked;
        :meth:`affordable` first when cash must stay non-negative.

        :param target: ``(B, N)`` target share counts.
        :param prices: ``(B, N)`` mid prices at execution.
        :param bars: the bar's frictions, ``(N_BAR_FIELDS, N)`` for every row or ``(B, N_BAR_FIELDS, N)``: a row of an
            env's :attr:`~sb3_trading.sim.frictions.Frictions.bars` (spread, impact of that bar); default :attr:`bars`
            (the frictions of :attr:`costs` that need no data). Order limits (lots, participation) are not applied.
        :return: the :class:`Fills` of the trades.
        """
        traded, fill_prices, notional, frictions = trade_to_kernel(
            self.holdings, self._batch(target, "target"), self._batch(prices), self._bars(bars), self._rules()
        )
        return Fills(traded, fill_prices, notional, frictions)

    def mark(self, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mark to market, update the running peak and return ``(equity, drawdown)``, both ``(B,)``.

        ``drawdown = 1 - equity / peak_equity`` is in ``[0, 1]`` while equity is positive.
        """
        _, equity, drawdown = mark_kernel(self.holdings, self._batch(prices), self.peak_equity)
        return equity, drawdown

    def mark_values(self, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`mark`, also returning the values.

        :param prices: ``(B, N)`` marking prices.
        :return: ``(values (B, N + 1), equity (B,), drawdown (B,))``: position values then cash, their row
            sums, and ``1 - equity / peak_equity`` after updating the peak.
        """
        return mark_kernel(self.holdings, self._batch(prices), self.peak_equity)

    def weights(self, prices: np.ndarray, equity: np.ndarray) -> np.ndarray:
        """Position values as fractions of equity, ``(B, N)`` (negative for shorts)."""
        return equity_fractions(self.positions * prices, equity)

    def _rules(self) -> np.ndarray:
        """The read-only ``(N_RULES,)`` rules of :attr:`costs` (:meth:`_constant_rules`)."""
        return self._constant_rules()[2]

    def _bars(self, bars: np.ndarray | None) -> np.ndarray:
        """``bars`` (one bar's ``(N_BAR_FIELDS, N)`` frictions, or ``(B, N_BAR_FIELDS, N)``) as ``(B, N_BAR_FIELDS, N)``
        float64; ``None``: :attr:`bars`."""
        if bars is None:
            return self.bars
        array = np.asarray(bars, dtype=np.float64)
        shape = (self.n_envs, N_BAR_FIELDS, self.n_assets)
        if array.shape == shape[1:]:
            return batch_bars(array, self.n_envs)
        if array.shape != shape:
            raise ValueError(f"bars must have shape {shape[1:]} or {shape}, got {array.shape}")
        return array

    def _batch(self, values: np.ndarray, name: str = "prices") -> np.ndarray:
        """``values`` as a float64 ``(B, N)`` array (an ``(N,)`` row is broadcast over the batch).

        :raises ValueError: for any other shape (the kernels index rows and columns without bounds checks).
        """
        array = np.asarray(values, dtype=np.float64)
        shape = self.holdings.shape[0], self.holdings.shape[1] - 1
        if array.ndim == 1 and array.shape[0] == shape[1]:
            array = np.broadcast_to(array, shape)
        if array.shape != shape:
            raise ValueError(f"{name} must have shape {shape} (n_envs, n_assets), got {array.shape}")
        return array


def equity_fractions(values: np.ndarray, equity: np.ndarray) -> np.ndarray:
    """Values as fractions of equity, 0 where equity <= 0.

    :param values: ``(k, M)`` values, e.g. :meth:`~sb3_trading.sim.Portfolio.mark_values`' position values and cash.
    :param equity: ``(k,)`` equity.
    :return: ``(k, M)`` fractions (position weights, then the cash weight for ``mark_values``' layout).
    """
    return fractions_kernel(np.asarray(values, dtype=np.float64), np.asarray(equity, dtype=np.float64))


__all__ = [
    "BPS",  # re-exported: the cost models live in sb3_trading.sim.frictions
    "MAX_BPS",
    "CostModel",
    "Fills",
    "Portfolio",
    "equity_fractions",
    "fill_trades",
    "portfolio_value",
    "round_to_lots",
]
