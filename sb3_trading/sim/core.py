"""The accounting core: one source of truth for money.

Pure NumPy and batched: every state array has a leading ``n_envs`` axis, so a
single environment is a batch of one and a vectorised environment runs the
same code. Shapes below use ``B`` for ``n_envs`` and ``N`` for ``n_assets``.

Conventions
-----------
* Prices are per share, in account currency. Positions are share counts
  (fractional unless the caller rounds them); negative counts are shorts.
* ``equity = cash + positions . prices`` always, marked at the given prices.
* A trade of ``q`` shares at mid price ``p`` fills at
  ``p * (1 + slippage * sign(q))`` (buys pay up, sells receive less) and pays a
  commission ``commission * |q| * fill_price``. ``costs`` reports both frictions
  (commission plus slippage, measured against the mid price), so
  ``equity_after = equity_before - costs`` when marked at the mid price.
* Rates are fractions of traded notional: 10 bps is ``0.001``.

The core never imports gymnasium: environments build on it, not the reverse.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from sb3_trading.common.validation import check_real

BPS = 1e-4  # one basis point as a fraction
#: every cost rate in bps lies in ``[0, MAX_BPS)``: a fill never costs 100 % of its notional, and a sell's
#: fill price ``p (1 - slippage)`` stays positive
MAX_BPS = 1e4


@dataclass(frozen=True)
class CostModel:
    """Proportional trading frictions, in basis points of traded notional.

    :param commission_bps: fee charged on the filled notional ``|q| * fill_price``, in ``[0, 10000)``.
    :param slippage_bps: adverse price move of every fill against the trader, in ``[0, 10000)``.
    :raises TypeError: if a rate is not a number (a string, a bool).
    :raises ValueError: if a rate is not finite or outside ``[0, 10000)``.
    """

    commission_bps: float = 10.0
    slippage_bps: float = 0.0

    #: ``commission_bps`` as a fraction of filled notional (set from the field; read on every trade)
    commission: float = field(init=False, repr=False, compare=False)
    #: ``slippage_bps`` as a fraction of the mid price
    slippage: float = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("commission_bps", "slippage_bps"):
            # a rate of 10000 bps or more charges 100 % of the notional (or fills at a price <= 0): refused
            value = check_real(name, getattr(self, name), 0.0, MAX_BPS, strict_maximum=True)
            object.__setattr__(self, name, value)
        # plain attributes, not properties: a property call costs as much as a small NumPy operation
        object.__setattr__(self, "commission", self.commission_bps * BPS)
        object.__setattr__(self, "slippage", self.slippage_bps * BPS)


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
    return cash + np.vecdot(positions, prices)


def fill_trades(traded: np.ndarray, prices: np.ndarray, costs: CostModel) -> Fills:
    """Price a batch of trades: fill prices, notional and frictions. Pure function.

    A trade of ``q`` shares at mid ``p`` fills at ``p (1 + s sign(q))`` and pays
    commission ``c |q| p (1 + s sign(q))``; its friction against the mid price is
    ``|q| p (s + c (1 + s sign(q)))``.

    :param traded: ``(B, N)`` signed share quantities to trade.
    :param prices: ``(B, N)`` mid prices at execution.
    :param costs: the friction model.
    :return: the :class:`Fills`.
    """
    abs_notional = np.abs(traded) * prices
    notional = np.add.reduce(abs_notional, axis=1)
    commission, slippage = costs.commission, costs.slippage
    if slippage == 0.0:  # same formulas with s = 0, without the per-side arrays
        return Fills(traded, prices, notional, commission * notional)
    side = np.sign(traded)
    fill_prices = prices * (1.0 + slippage * side)
    friction = abs_notional * (slippage + commission * (1.0 + slippage * side))
    return Fills(traded, fill_prices, notional, np.add.reduce(friction, axis=1))


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
    are the share counts and column ``N`` is the cash, an asset whose price is always 1. With
    prices extended the same way (:func:`with_cash_column`), one product marks everything:
    ``holdings * prices_ext`` holds the position values and the cash, and its row sums are the
    equity (:meth:`mark_values`). :attr:`positions` and :attr:`cash` are views into it.

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
        return portfolio_value(self.cash, self.positions, prices)

    def trade_to(self, target: np.ndarray, prices: np.ndarray, fills: Fills | None = None) -> Fills:
        """Trade every row to ``target`` share counts at mid ``prices``, paying frictions from cash.

        Trading to the current positions is an exact no-op: no cost, no change.

        :param target: ``(B, N)`` target share counts.
        :param prices: ``(B, N)`` mid prices at execution.
        :param fills: ``fill_trades(target - positions, prices, costs)`` when the caller already priced
            exactly this trade (e.g. to check that it is affordable); computed here otherwise.
        :return: the :class:`Fills` of the trades.
        """
        if fills is None:
            fills = fill_trades(target - self.positions, prices, self.costs)
        # shares cost q . fill + c |q| . fill = q . p + friction (see fill_trades)
        holdings = self.holdings
        holdings[:, -1] -= np.vecdot(fills.traded, prices) + fills.costs
        holdings[:, :-1] = target
        return fills

    def mark(self, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mark to market, update the running peak and return ``(equity, drawdown)``, both ``(B,)``.

        ``drawdown = 1 - equity / peak_equity`` is in ``[0, 1]`` while equity is positive.
        """
        equity = self.equity(prices)
        np.maximum(self.peak_equity, equity, out=self.peak_equity)
        drawdown = 1.0 - equity / self.peak_equity
        return equity, drawdown

    def mark_values(self, prices_ext: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`mark` from prices with the cash column (:func:`with_cash_column`), also returning the values.

        :param prices_ext: ``(B, N + 1)`` prices, last column 1.
        :return: ``(values (B, N + 1), equity (B,), drawdown (B,))``: position values then cash, their row
            sums, and ``1 - equity / peak_equity`` after updating the peak.
        """
        values = self.holdings * prices_ext
        equity = np.add.reduce(values, axis=1)
        np.maximum(self.peak_equity, equity, out=self.peak_equity)
        return values, equity, 1.0 - equity / self.peak_equity

    def weights(self, prices: np.ndarray, equity: np.ndarray) -> np.ndarray:
        """Position values as fractions of equity, ``(B, N)`` (negative for shorts)."""
        return equity_fractions(self.positions * prices, equity)


def with_cash_column(prices: np.ndarray) -> np.ndarray:
    """``(..., N)`` prices -> ``(..., N + 1)`` with a last column of ones: the price of cash (see :class:`Portfolio`)."""
    return np.concatenate([prices, np.ones((*prices.shape[:-1], 1))], axis=-1)


def equity_fractions(values: np.ndarray, equity: np.ndarray) -> np.ndarray:
    """Values as fractions of equity, 0 where equity <= 0.

    :param values: ``(k, M)`` values, e.g. :meth:`~sb3_trading.sim.Portfolio.mark_values`' position values and cash.
    :param equity: ``(k,)`` equity.
    :return: ``(k, M)`` fractions (position weights, then the cash weight for ``mark_values``' layout).
    """
    if min(equity.tolist()) > 0.0:  # a Python min is cheaper than a NumPy reduction for small batches
        return values / equity[:, None]
    positive = (equity > 0.0)[:, None]
    return np.divide(values, equity[:, None], out=np.zeros_like(values), where=positive)
