"""The accounting core's compiled kernels: every rule about money, written once, as loops over plain arrays.

:class:`~sb3_trading.sim.Portfolio` and the envs' kernels call these functions; nothing else re-derives
a fill price, a friction, a mark or an affordability cut. They are numba functions
(:func:`sb3_trading.common.jit.njit`): compiled and cached on first use, plain Python under
``NUMBA_DISABLE_JIT=1``, with the same results either way.

Shapes: ``B`` accounts, ``N`` assets. ``holdings`` is the book's ``(B, N + 1)`` array (share counts,
then cash in column ``N``); prices are per share in account currency; rates are fractions
(``commission`` and ``slippage`` of :class:`~sb3_trading.sim.CostModel`).

The fill rule (one place): a trade of ``q`` shares at mid ``p`` fills at ``p (1 + s sign(q))`` and pays
commission ``c |q| p (1 + s sign(q))``; its friction against the mid is ``|q| p (s + c (1 + s sign(q)))``,
so cash falls by ``q p + friction`` and equity marked at the mid falls by the friction.
"""

from __future__ import annotations

import numpy as np

from sb3_trading.common.jit import njit

#: :func:`self_financing_values` stops once ``V + F(V) - equity <= NEWTON_RTOL * equity`` (the cash left negative)
NEWTON_RTOL = 1e-13


@njit
def friction_rate(side: float, commission: float, slippage: float) -> float:
    """Friction per unit of mid notional traded on ``side`` (+1 buy, -1 sell, 0 nothing): ``s + c (1 + s side)``."""
    if side == 0.0:
        return 0.0
    return slippage + commission * (1.0 + slippage * side)


@njit
def fill_price(price: float, quantity: float, slippage: float) -> float:
    """Execution price of a trade of ``quantity`` shares at mid ``price``: ``p (1 + s sign(q))``."""
    return price * (1.0 + slippage * np.sign(quantity))


@njit
def equity_row(holdings: np.ndarray, b: int, prices: np.ndarray) -> float:
    """Equity of row ``b`` of ``holdings`` ``(B, N + 1)`` at ``prices`` ``(N,)``: ``positions . prices + cash``."""
    n_assets = prices.shape[0]
    total = 0.0
    for i in range(n_assets):
        total += holdings[b, i] * prices[i]
    return total + holdings[b, n_assets]


@njit
def raise_peak(peak: np.ndarray, b: int, equity: float) -> float:
    """Raise ``peak[b]`` to ``equity`` if it is higher (in place) and return the drawdown ``1 - equity / peak``."""
    if equity > peak[b]:
        peak[b] = equity
    return 1.0 - equity / peak[b]


@njit
def price_row(
    holdings: np.ndarray, b: int, target: np.ndarray, prices: np.ndarray, commission: float, slippage: float
) -> tuple[float, float, float]:
    """What trading row ``b`` of ``holdings`` ``(B, N + 1)`` to ``target`` ``(N,)`` at mid ``prices`` ``(N,)`` would cost.

    :return: ``(spent, notional, costs)``: ``q . p`` (currency, + = net buying), the mid notional ``sum |q| p``
        and the frictions; the trade leaves cash ``cash - (spent + costs)``.
    """
    spent = 0.0
    notional = 0.0
    costs = 0.0
    for i in range(target.shape[0]):
        q = target[i] - holdings[b, i]
        if q != 0.0:
            p = prices[i]
            amount = abs(q) * p
            notional += amount
            costs += amount * friction_rate(np.sign(q), commission, slippage)
            spent += q * p
    return spent, notional, costs


@njit
def trade_row(
    holdings: np.ndarray, b: int, target: np.ndarray, prices: np.ndarray, commission: float, slippage: float
) -> tuple[float, float]:
    """Trade row ``b`` of ``holdings`` ``(B, N + 1)`` to ``target`` ``(N,)`` share counts at mid ``prices`` ``(N,)``, in place.

    The one implementation of a trade: cash pays ``q . p`` plus the frictions (:func:`price_row`); an asset
    whose target equals its position is not traded and costs nothing.

    :return: ``(notional, costs)``: mid notional ``sum |q| p`` and frictions paid, currency.
    """
    n_assets = target.shape[0]
    spent, notional, costs = price_row(holdings, b, target, prices, commission, slippage)
    for i in range(n_assets):
        holdings[b, i] = target[i]
    holdings[b, n_assets] -= spent + costs
    return notional, costs


@njit
def record_row(
    holdings: np.ndarray,
    peak: np.ndarray,
    b: int,
    prices: np.ndarray,
    equity: np.ndarray,
    cash: np.ndarray,
    positions: np.ndarray,
    weights: np.ndarray,
    drawdown: np.ndarray,
) -> float:
    """Mark row ``b`` of the book at ``prices`` ``(N,)``, raise its peak, and write what a transition reports.

    Writes ``equity[b]``, ``cash[b]``, ``positions[b]``, ``weights[b]`` (position values / equity, 0 when
    equity ``<= 0``) and ``drawdown[b] = 1 - equity / peak``; updates ``peak[b]`` in place.

    :return: the equity.
    """
    n_assets = prices.shape[0]
    total = equity_row(holdings, b, prices)
    equity[b] = total
    cash[b] = holdings[b, n_assets]
    drawdown[b] = raise_peak(peak, b, total)
    for i in range(n_assets):
        positions[b, i] = holdings[b, i]
        weights[b, i] = holdings[b, i] * prices[i] / total if total > 0.0 else 0.0
    return total


@njit
def clip_action(action: np.ndarray, low: np.ndarray, high: np.ndarray, out: np.ndarray) -> bool:
    """Clip the flat float64 ``action`` into ``out`` between ``low`` and ``high`` (all ``(M,)``).

    :return: False (``out`` partly written) if a value is not finite, else True.
    """
    for j in range(action.shape[0]):
        a = action[j]
        if not np.isfinite(a):
            return False
        out[j] = min(max(a, low[j]), high[j])
    return True


@njit
def fill_trades_kernel(
    traded: np.ndarray, prices: np.ndarray, commission: float, slippage: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Price a batch of trades (:func:`fill_price`, and :func:`price_row` of a trade from an empty book).

    :param traded: ``(B, N)`` signed share quantities (+ buy, - sell).
    :param prices: ``(B, N)`` mid prices.
    :return: ``(fill_prices (B, N), notional (B,), costs (B,))``: execution prices, mid notional
        ``sum |q| p`` and frictions ``sum |q| p (s + c (1 + s sign q))``.
    """
    n_rows, n_assets = traded.shape
    empty = np.zeros((1, n_assets + 1))  # no shares held: trading to ``traded`` trades exactly ``traded``
    fill_prices = np.empty((n_rows, n_assets))
    notional = np.empty(n_rows)
    costs = np.empty(n_rows)
    for b in range(n_rows):
        for i in range(n_assets):
            fill_prices[b, i] = fill_price(prices[b, i], traded[b, i], slippage)
        _, notional[b], costs[b] = price_row(empty, 0, traded[b], prices[b], commission, slippage)
    return fill_prices, notional, costs


@njit
def trade_to_kernel(
    holdings: np.ndarray, target: np.ndarray, prices: np.ndarray, commission: float, slippage: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`trade_row` on every row: trade ``holdings`` ``(B, N + 1)`` to ``target`` ``(B, N)`` at ``prices`` ``(B, N)``.

    :return: ``(traded (B, N), fill_prices (B, N), notional (B,), costs (B,))``, as :func:`fill_trades_kernel`.
    """
    n_rows, n_assets = target.shape
    traded = np.empty((n_rows, n_assets))
    fill_prices = np.empty((n_rows, n_assets))
    notional = np.empty(n_rows)
    costs = np.empty(n_rows)
    for b in range(n_rows):
        for i in range(n_assets):
            q = target[b, i] - holdings[b, i]
            traded[b, i] = q
            fill_prices[b, i] = fill_price(prices[b, i], q, slippage)
        notional[b], costs[b] = trade_row(holdings, b, target[b], prices[b], commission, slippage)
    return traded, fill_prices, notional, costs


@njit
def affordable_row(
    holdings: np.ndarray,
    b: int,
    target: np.ndarray,
    prices: np.ndarray,
    commission: float,
    slippage: float,
    lot: float,
) -> None:
    """Cut the buys of ``target`` ``(N,)`` (in place) so that trading row ``b`` of ``holdings`` to it leaves cash ``>= 0``.

    The one affordability rule. A row that can pay is unchanged. Otherwise, with shortfall ``D`` (the cash the
    trade would leave below zero), shares bought ``b_i`` and cash per bought share ``u_i = p_i (1 + s)(1 + c)``,
    each buy is cut by ``k_i = D b_i / sum_j b_j u_j`` shares (in proportion to the shares bought), rounded *up*
    to whole lots when ``lot > 0``. The cut frees ``sum_i k_i u_i >= D``, and ``k_i <= b_i``: a buy never turns
    into a sell. Sells are never changed (they raise cash). Without lots the cut is scaled up by one part in
    ``1e12`` so that rounding never leaves a negative cent. A row that cannot pay even with every buy cut (cash
    already negative) keeps only its sells.

    :param holdings: ``(B, N + 1)`` the book (read only).
    :param prices: ``(N,)`` mid prices at execution.
    :param lot: lot size in shares (``0.0``: fractional shares).
    """
    n_assets = target.shape[0]
    spent, _, costs = price_row(holdings, b, target, prices, commission, slippage)
    cash = holdings[b, n_assets] - (spent + costs)  # exactly what trade_row would leave
    unit = 1.0 + friction_rate(1.0, commission, slippage)  # (1 + s)(1 + c): cash per share bought, per unit of mid
    outlay = 0.0
    for i in range(n_assets):
        q = target[i] - holdings[b, i]
        if q > 0.0:
            outlay += q * prices[i] * unit
    if cash >= 0.0 or outlay <= 0.0:  # affordable, or nothing bought to cut
        return
    share = -cash / outlay
    if lot <= 0.0:
        share *= 1.0 + 1e-12
    for i in range(n_assets):
        bought = target[i] - holdings[b, i]
        if bought > 0.0:
            cut = share * bought
            if lot > 0.0:
                cut = np.ceil(cut / lot) * lot
            target[i] -= min(cut, bought)


@njit
def affordable_kernel(
    holdings: np.ndarray, target: np.ndarray, prices: np.ndarray, commission: float, slippage: float, lot: float
) -> np.ndarray:
    """:func:`affordable_row` of every row: ``target`` ``(B, N)`` with its buys cut so that no row's cash goes below 0.

    :param holdings: ``(B, N + 1)`` the book (read only).
    :param prices: ``(B, N)`` mid prices at execution.
    :param lot: lot size in shares (``0.0``: fractional shares).
    :return: ``(B, N)`` affordable targets (a new array).
    """
    out = target.copy()
    for b in range(out.shape[0]):
        affordable_row(holdings, b, out[b], prices[b], commission, slippage, lot)
    return out


@njit
def mark_kernel(holdings: np.ndarray, prices: np.ndarray, peak: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mark every row to market and raise its peak equity, in place.

    :param holdings: ``(B, N + 1)`` the book.
    :param prices: ``(B, N)`` marking prices.
    :param peak: ``(B,)`` running peak equity (written: ``max(peak, equity)``).
    :return: ``(values (B, N + 1), equity (B,), drawdown (B,))``: position values then the cash, their row
        sums, and ``1 - equity / peak``.
    """
    n_rows, n_assets = prices.shape
    values = np.empty((n_rows, n_assets + 1))
    equity = np.empty(n_rows)
    drawdown = np.empty(n_rows)
    for b in range(n_rows):
        for i in range(n_assets):
            values[b, i] = holdings[b, i] * prices[b, i]
        values[b, n_assets] = holdings[b, n_assets]
        equity[b] = equity_row(holdings, b, prices[b])
        drawdown[b] = raise_peak(peak, b, equity[b])
    return values, equity, drawdown


@njit
def equity_kernel(holdings: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """``(B,)`` equity ``cash + positions . prices`` of ``holdings`` ``(B, N + 1)`` at ``prices`` ``(B, N)``."""
    equity = np.empty(prices.shape[0])
    for b in range(prices.shape[0]):
        equity[b] = equity_row(holdings, b, prices[b])
    return equity


@njit
def fractions_kernel(values: np.ndarray, equity: np.ndarray) -> np.ndarray:
    """``values`` ``(k, M)`` as fractions of ``equity`` ``(k,)``; rows with equity ``<= 0`` are 0."""
    n_rows, n_cols = values.shape
    out = np.zeros((n_rows, n_cols))
    for b in range(n_rows):
        e = equity[b]
        if e > 0.0:
            for j in range(n_cols):
                out[b, j] = values[b, j] / e
    return out


@njit
def self_financing_kernel(
    equity: np.ndarray, weights: np.ndarray, held: np.ndarray, commission: float, slippage: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value ``V`` per row to invest so that rebalancing to ``V * weights`` pays its frictions out of ``equity``.

    Trading from holdings worth ``held_i`` to ``V w_i`` costs ``F(V) = sum_i |x_i| (s + c (1 + s sign x_i))``
    with ``x_i = V w_i - held_i``; this is the root of ``V + F(V) = equity``. ``V + F(V)`` is convex,
    piecewise linear and increasing (slope ``>= 1 - s - c (1 + s) > 0``), so Newton's method from
    ``V = equity`` lands on it in at most ``N + 1`` steps (usually one).

    :param equity: ``(B,)`` equity before the trade, ``> 0``.
    :param weights: ``(B, N)`` target weights ``>= 0``.
    :param held: ``(B, N)`` current position values ``positions * prices``.
    :return: ``(V (B,), traded (B, N), notional (B,))``: the investable value, the traded values
        ``V w - held`` at it (currency, + = buy) and their gross ``sum |traded|``.
    """
    n_rows, n_assets = weights.shape
    value = equity.copy()
    traded = np.empty((n_rows, n_assets))
    notional = np.zeros(n_rows)
    for b in range(n_rows):
        v = equity[b]
        tolerance = NEWTON_RTOL * abs(equity[b])
        for _ in range(n_assets + 3):  # N + 1 linear pieces, then float slack
            friction = 0.0
            slope = 1.0
            for i in range(n_assets):
                gap = v * weights[b, i] - held[b, i]
                side = np.sign(gap)
                rate = friction_rate(side, commission, slippage)
                friction += rate * abs(gap)
                slope += rate * side * weights[b, i]
            excess = v + friction - equity[b]
            if excess <= tolerance:
                break
            v -= excess / slope
        value[b] = v
        gross = 0.0
        for i in range(n_assets):
            gap = v * weights[b, i] - held[b, i]
            traded[b, i] = gap
            gross += abs(gap)
        notional[b] = gross
    return value, traded, notional


@njit
def accrue_yield_kernel(positions: np.ndarray, rates: np.ndarray, prices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pay one period of yield in shares: ``(positions * (1 + rates) (B, N), income (B,))``, income valued at ``prices``.

    :param positions: ``(B, N)`` share counts.
    :param rates: ``(B, N)`` simple yields of the period (``> -1``).
    :param prices: ``(B, N)`` prices valuing the income.
    """
    n_rows, n_assets = positions.shape
    grown = np.empty((n_rows, n_assets))
    income = np.zeros(n_rows)
    for b in range(n_rows):
        for i in range(n_assets):
            interest = positions[b, i] * rates[b, i]
            grown[b, i] = positions[b, i] + interest
            income[b] += interest * prices[b, i]
    return grown, income


__all__ = [
    "NEWTON_RTOL",
    "clip_action",
    "equity_row",
    "fill_price",
    "price_row",
    "raise_peak",
    "record_row",
    "trade_row",
    "accrue_yield_kernel",
    "affordable_kernel",
    "affordable_row",
    "equity_kernel",
    "fill_trades_kernel",
    "fractions_kernel",
    "friction_rate",
    "mark_kernel",
    "self_financing_kernel",
    "trade_to_kernel",
]
