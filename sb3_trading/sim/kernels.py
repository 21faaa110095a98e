"""The accounting core's compiled kernels: every rule about money, written once, as loops over plain arrays.

:class:`~sb3_trading.sim.Portfolio` and the envs' kernels call these functions; nothing else re-derives
a fill price, a friction, a mark or an affordability cut. They are numba functions
(:func:`sb3_trading.common.jit.njit`): compiled and cached on first use, plain Python under
``NUMBA_DISABLE_JIT=1``, with the same results either way.

Shapes: ``B`` accounts, ``N`` assets. ``holdings`` is the book's ``(B, N + 1)`` array (share counts,
then cash in column ``N``); prices are per share in account currency. The market's rules come as two plain
arrays (:mod:`sb3_trading.sim.frictions`): ``bars`` ``(N_BAR_FIELDS, N)``, one decision bar's per-asset
entries (adverse fraction, impact coefficient, most shares that fill, borrow fee, bracket distances), and
``rules`` ``(N_RULES,)``, the scalars (commission, fees, lot, leverage cap, maintenance margin, rates).

The fill rule (one place, :func:`order_cost`): a trade of ``q`` shares of asset ``i`` at mid ``p`` moves
against the trader by ``a = bars[ADVERSE, i] + bars[IMPACT, i] sqrt(|q|)`` (half-spread, slippage and
square-root impact), fills at ``p (1 + a sign(q))`` and pays commission
``max(c |q| p (1 + a sign(q)), min_fee) + fixed_fee``; its friction against the mid is ``|q| p a`` plus the
commission (``|q| p (a + c (1 + a sign(q)))`` without fees), so cash falls by ``q p + friction`` and equity
marked at the mid falls by the friction.
"""

from __future__ import annotations

import math

import numpy as np

from sb3_trading.common.jit import njit
from sb3_trading.sim.frictions import (
    ADVERSE,
    BORROW,
    BRACKET_ATR,
    BRACKETED,
    CASH_RATE,
    COMMISSION,
    FINANCED,
    FIXED_FEE,
    IMPACT,
    LEVERAGE,
    LIMITED,
    LOAN_RATE,
    LOT,
    MAINTENANCE,
    MAX_ADVERSE,
    MAX_TRADE,
    MIN_FEE,
    STOP,
    TAKE,
)

#: :func:`affordable_row` cuts the buys at most this many times (fees and impact make one cut approximate)
MAX_CUTS = 8
#: :func:`limit_row` bisects the leverage scale this many times (a fraction ``2 ** -40`` of the order)
LEVERAGE_BISECTIONS = 40

#: :func:`settle_row`'s ``gaps`` for the envs whose orders fill at the decision bar's close. A NumPy bool, not
#: ``True``: numba compiles a kernel once more for each Python constant passed to it from another kernel
#: (``Literal[bool](True)`` is not ``bool``), so every caller hands the same type
GAPS_FILL_AT_OPEN = np.bool_(True)

#: :func:`self_financing_values` stops once ``V + F(V) - equity <= NEWTON_RTOL * equity`` (the cash left negative)
NEWTON_RTOL = 1e-13


@njit
def friction_rate(side: float, commission: float, adverse: float) -> float:
    """Friction per unit of mid notional traded on ``side`` (+1 buy, -1 sell, 0 nothing): ``s + c (1 + s side)``.

    ``s`` is the whole adverse move of the fill price (half-spread plus slippage, a fraction) and ``c`` the
    commission rate charged on the filled notional.
    """
    if side == 0.0:
        return 0.0
    return adverse + commission * (1.0 + adverse * side)


@njit(internal=True)
def fill_price(price: float, quantity: float, adverse: float) -> float:
    """Execution price of ``quantity`` shares at mid ``price``, moving ``adverse`` against the trade: ``p (1 + a sign(q))``."""
    if quantity == 0.0:
        return price
    return price * (1.0 + math.copysign(adverse, quantity))  # = adverse * sign(q), without a branch on the side


@njit(internal=True)
def equity_row(holdings: np.ndarray, b: int, prices: np.ndarray) -> float:
    """Equity of row ``b`` of ``holdings`` ``(B, N + 1)`` at ``prices`` ``(N,)``: ``positions . prices + cash``."""
    n_assets = prices.shape[0]
    total = 0.0
    for i in range(n_assets):
        total += holdings[b, i] * prices[i]
    return total + holdings[b, n_assets]


@njit(internal=True)
def raise_peak(peak: np.ndarray, b: int, equity: float) -> float:
    """Raise ``peak[b]`` to ``equity`` if it is higher (in place) and return the drawdown ``1 - equity / peak``."""
    if equity > peak[b]:
        peak[b] = equity
    return 1.0 - equity / peak[b]


@njit
def adverse_fraction(quantity: float, bars: np.ndarray, i: int) -> float:
    """How far a fill of ``quantity`` shares of asset ``i`` moves against the trader, a fraction of the mid:
    ``bars[ADVERSE, i] + bars[IMPACT, i] sqrt(|q|)``, at most :data:`~sb3_trading.sim.frictions.MAX_ADVERSE`."""
    a = bars[ADVERSE, i]
    k = bars[IMPACT, i]
    if k != 0.0:
        a = min(a + k * np.sqrt(abs(quantity)), MAX_ADVERSE)
    return a


@njit
def order_cost(quantity: float, price: float, bars: np.ndarray, i: int, rules: np.ndarray) -> float:
    """Friction of one order of ``quantity`` shares of asset ``i`` at mid ``price`` (currency, 0 for no trade).

    ``|q| p a`` plus the commission ``max(c |q| p (1 + a sign q), min_fee) + fixed_fee``, with ``a`` the
    :func:`adverse_fraction`; without fees it is computed as ``|q| p (a + c (1 + a sign q))``.
    """
    if quantity == 0.0:
        return 0.0
    a = adverse_fraction(quantity, bars, i)
    signed = math.copysign(a, quantity)  # a * sign(q): branch-free (the side of a random book is unpredictable)
    amount = abs(quantity) * price
    c = rules[COMMISSION]
    fixed, minimum = rules[FIXED_FEE], rules[MIN_FEE]
    if fixed == 0.0 and minimum == 0.0:
        return amount * (a + c * (1.0 + signed))
    return amount * a + max(c * amount * (1.0 + signed), minimum) + fixed


@njit(internal=True)
def price_row(
    holdings: np.ndarray, b: int, target: np.ndarray, prices: np.ndarray, bars: np.ndarray, rules: np.ndarray
) -> tuple[float, float, float]:
    """What trading row ``b`` of ``holdings`` ``(B, N + 1)`` to ``target`` ``(N,)`` at mid ``prices`` ``(N,)`` would cost.

    :param bars: ``(N_BAR_FIELDS, N)`` the bar's frictions; ``rules``: ``(N_RULES,)``.
    :return: ``(spent, notional, costs)``: ``q . p`` (currency, + = net buying), the mid notional ``sum |q| p``
        and the frictions (:func:`order_cost`); the trade leaves cash ``cash - (spent + costs)``.
    """
    spent = 0.0
    notional = 0.0
    costs = 0.0
    for i in range(target.shape[0]):
        q = target[i] - holdings[b, i]
        if q != 0.0:
            p = prices[i]
            notional += abs(q) * p
            costs += order_cost(q, p, bars, i, rules)
            spent += q * p
    return spent, notional, costs


@njit
def trade_row(
    holdings: np.ndarray, b: int, target: np.ndarray, prices: np.ndarray, bars: np.ndarray, rules: np.ndarray
) -> tuple[float, float]:
    """Trade row ``b`` of ``holdings`` ``(B, N + 1)`` to ``target`` ``(N,)`` share counts at mid ``prices`` ``(N,)``, in place.

    The one implementation of a trade: cash pays ``q . p`` plus the frictions (:func:`price_row`); an asset
    whose target equals its position is not traded and costs nothing.

    :param bars: ``(N_BAR_FIELDS, N)`` the bar's frictions; ``rules``: ``(N_RULES,)``.
    :return: ``(notional, costs)``: mid notional ``sum |q| p`` and frictions paid, currency.
    """
    n_assets = target.shape[0]
    spent, notional, costs = price_row(holdings, b, target, prices, bars, rules)
    for i in range(n_assets):
        holdings[b, i] = target[i]
    holdings[b, n_assets] -= spent + costs
    return notional, costs


@njit
def gross_row(holdings: np.ndarray, b: int, prices: np.ndarray) -> float:
    """Gross exposure ``sum_i |h_i| p_i`` of row ``b`` of ``holdings`` at ``prices`` ``(N,)``, currency."""
    total = 0.0
    for i in range(prices.shape[0]):
        total += abs(holdings[b, i]) * prices[i]
    return total


@njit(internal=True)
def _leverage_ok(
    holdings: np.ndarray,
    b: int,
    target: np.ndarray,
    prices: np.ndarray,
    bars: np.ndarray,
    rules: np.ndarray,
    gross_now: float,
) -> bool:
    """Whether the book left by trading row ``b`` to ``target`` keeps gross exposure within the leverage cap of
    its equity (at mid ``prices``, after frictions), or no larger than ``gross_now``. One pass over the assets."""
    n_assets = target.shape[0]
    gross = 0.0
    equity = holdings[b, n_assets]  # cash - (q . p + costs) + target . p = cash + held . p - costs
    for i in range(n_assets):
        p = prices[i]
        gross += abs(target[i]) * p
        equity += holdings[b, i] * p - order_cost(target[i] - holdings[b, i], p, bars, i, rules)
    return _within_leverage(gross, gross_now, equity, rules)


@njit(internal=True)
def _within_leverage(gross: float, gross_now: float, equity: float, rules: np.ndarray) -> bool:
    """The leverage cap's test of a book left with ``gross`` exposure and ``equity``: at most ``rules[LEVERAGE]`` times
    the equity, or no more exposure than ``gross_now`` (a trade that does not add exposure always passes)."""
    return gross <= gross_now or gross <= rules[LEVERAGE] * equity


@njit
def limit_row(
    holdings: np.ndarray, b: int, target: np.ndarray, prices: np.ndarray, bars: np.ndarray, rules: np.ndarray
) -> float:
    """Apply the order limits to ``target`` ``(N,)`` (in place) before row ``b`` trades to it at mid ``prices``.

    In order: the lot size (targets rounded toward zero to whole lots), the participation cap (each asset's
    trade at most ``bars[MAX_TRADE, i]`` shares, in whole lots) and the leverage cap (every asset's trade
    scaled by the same largest factor ``alpha`` in ``[0, 1]``, found by bisection, for which the book after
    the fill has gross exposure at most ``rules[LEVERAGE]`` times its equity, or no more than now).

    :return: the mid notional ``sum |q| p`` of the order that the participation and leverage caps left unfilled.
    """
    unfilled, gross_now = _size_limits(holdings, b, target, prices, bars, rules)
    if rules[LEVERAGE] < np.inf and not _leverage_ok(holdings, b, target, prices, bars, rules, gross_now):
        unfilled += _leverage_cut(holdings, b, target, prices, bars, rules, gross_now)
    return unfilled


@njit(internal=True)
def _size_limits(
    holdings: np.ndarray, b: int, target: np.ndarray, prices: np.ndarray, bars: np.ndarray, rules: np.ndarray
) -> tuple[float, float]:
    """The lot size and the participation cap of :func:`limit_row` (``target`` in place).

    :return: ``(unfilled, gross_now)``: the mid notional the participation cap left unfilled, and row ``b``'s gross
        exposure before the trade (``sum |h| p``).
    """
    unfilled = 0.0
    gross_now = 0.0
    for i in range(target.shape[0]):
        gross_now += abs(holdings[b, i]) * prices[i]
        unfilled += _size_limit(holdings[b, i], target, i, prices[i], bars, rules[LOT])
    return unfilled, gross_now


@njit(internal=True)
def _size_limit(held: float, target: np.ndarray, i: int, price: float, bars: np.ndarray, lot: float) -> float:
    """Asset ``i``'s lot size and participation cap (``target[i]`` in place, from ``held`` shares at ``price``).

    :return: the mid notional the participation cap left unfilled (0 when it does not bind).
    """
    if lot > 0.0:
        target[i] = np.trunc(target[i] / lot) * lot
    q = target[i] - held
    most = bars[MAX_TRADE, i]
    if abs(q) <= most:
        return 0.0
    if lot > 0.0:
        most = np.floor(most / lot) * lot
    target[i] = held + np.sign(q) * most
    return (abs(q) - most) * price


@njit
def _leverage_cut(
    holdings: np.ndarray,
    b: int,
    target: np.ndarray,
    prices: np.ndarray,
    bars: np.ndarray,
    rules: np.ndarray,
    gross_now: float,
) -> float:
    """Scale the trade of row ``b`` to ``target`` (in place) by the largest factor in ``[0, 1]`` that passes the leverage
    cap (:func:`limit_row`), for a ``target`` that fails it. :return: the mid notional this left unfilled."""
    n_assets = target.shape[0]
    lot = rules[LOT]
    full = target.copy()
    trial = np.empty(n_assets)
    low, high = 0.0, 1.0  # low: a scale known to pass (no trade), high: one known to fail
    for _ in range(LEVERAGE_BISECTIONS):
        middle = 0.5 * (low + high)
        _scaled(holdings, b, full, middle, lot, trial)
        if _leverage_ok(holdings, b, trial, prices, bars, rules, gross_now):
            low = middle
        else:
            high = middle
    _scaled(holdings, b, full, low, lot, target)
    unfilled = 0.0
    for i in range(n_assets):
        unfilled += abs(full[i] - target[i]) * prices[i]
    return unfilled


@njit
def order_row(
    holdings: np.ndarray,
    levels: np.ndarray,
    b: int,
    target: np.ndarray,
    prices: np.ndarray,
    bars: np.ndarray,
    rules: np.ndarray,
) -> tuple[float, float, float]:
    """An order of row ``b`` of ``holdings`` ``(B, N + 1)`` to ``target`` ``(N,)`` share counts at mid ``prices``
    ``(N,)``, in place: the order limits (:func:`limit_row`, when ``rules[LIMITED]``), the trade
    (:func:`trade_row`) and the bracket levels of the new positions (:func:`enter_brackets_row`, when
    ``rules[BRACKETED]``; ``levels`` ``(B, 3, N)``).

    The same result as those three in turn, in fewer passes over the assets: the order is priced once, and that
    pricing also answers the leverage cap unless the cap binds (then the bisection of :func:`limit_row` runs).

    :param bars: ``(N_BAR_FIELDS, N)`` the fill bar's frictions; ``rules``: ``(N_RULES,)``.
    :return: ``(unfilled, notional, costs)``: the mid notional the caps left unfilled, and the traded mid
        notional and frictions paid, currency.
    """
    n_assets = target.shape[0]
    limited, lot = rules[LIMITED] > 0.0, rules[LOT]
    unfilled, gross_now = 0.0, 0.0
    # one pass: the size limits (as limit_row), the trade's price (as price_row), the book it leaves (as _leverage_ok)
    capped = rules[LEVERAGE] < np.inf
    spent, notional, costs = 0.0, 0.0, 0.0
    gross, equity = 0.0, holdings[b, n_assets]
    for i in range(n_assets):
        held, p = holdings[b, i], prices[i]
        if limited:
            gross_now += abs(held) * p
            unfilled += _size_limit(held, target, i, p, bars, lot)
        q = target[i] - held
        if q != 0.0:
            cost = order_cost(q, p, bars, i, rules)
            notional += abs(q) * p
            costs += cost
            spent += q * p
        else:
            cost = 0.0
        if capped:
            gross += abs(target[i]) * p
            equity += held * p - cost
    if capped and not _within_leverage(gross, gross_now, equity, rules):
        unfilled += _leverage_cut(holdings, b, target, prices, bars, rules, gross_now)
        spent, notional, costs = price_row(holdings, b, target, prices, bars, rules)
    bracketed = rules[BRACKETED] > 0.0
    atr = rules[BRACKET_ATR] > 0.0
    for i in range(n_assets):
        old, new = holdings[b, i], target[i]
        holdings[b, i] = new
        if bracketed and _bracket_entry(levels, b, i, old, new):
            q = new - old
            _enter_levels(levels, b, i, old, new, fill_price(prices[i], q, adverse_fraction(q, bars, i)), bars, atr)
    holdings[b, n_assets] -= spent + costs
    return unfilled, notional, costs


@njit
def _scaled(holdings: np.ndarray, b: int, full: np.ndarray, scale: float, lot: float, out: np.ndarray) -> None:
    """``out = holdings + scale * (full - holdings)`` per asset of row ``b``, each trade rounded toward zero to lots."""
    for i in range(full.shape[0]):
        q = scale * (full[i] - holdings[b, i])
        if lot > 0.0:
            q = np.trunc(q / lot) * lot
        out[i] = holdings[b, i] + q


@njit
def finance_row(holdings: np.ndarray, b: int, prices: np.ndarray, bars: np.ndarray, rules: np.ndarray) -> float:
    """Accrue one bar of financing into the cash of row ``b`` (in place) and return the net amount (+ received).

    Positive cash earns ``cash * rules[CASH_RATE]``, negative cash pays ``|cash| * rules[LOAN_RATE]``, and each
    short pays ``|h_i| p_i bars[BORROW, i]`` valued at ``prices`` ``(N,)``; all are per-bar rates, so the cash
    compounds bar by bar.
    """
    n_assets = prices.shape[0]
    cash = holdings[b, n_assets]
    net = cash * rules[CASH_RATE] if cash > 0.0 else cash * rules[LOAN_RATE]
    for i in range(n_assets):
        net += min(holdings[b, i], 0.0) * prices[i] * bars[BORROW, i]  # branch-free: a long adds 0
    holdings[b, n_assets] = cash + net
    return net


@njit
def margin_call_row(
    holdings: np.ndarray, b: int, prices: np.ndarray, bars: np.ndarray, r: int, rules: np.ndarray
) -> tuple[bool, float, float]:
    """Liquidate row ``b`` at the mid prices of bar ``r`` of ``prices`` ``(T, N)``, paying the frictions of bar ``r``
    of ``bars`` ``(T, N_BAR_FIELDS, N)``, when its equity there is below the maintenance margin
    ``rules[MAINTENANCE]`` times its gross exposure. (Whole arrays and a bar index rather than a bar's rows: a
    compiled call given array views pays two atomic reference counts per view.)

    :return: ``(called, notional, costs)``: whether the book was liquidated (it is then flat, all cash), and the
        liquidation's mid notional and frictions (0 when not called).
    """
    maintenance = rules[MAINTENANCE]
    if maintenance <= 0.0:
        return False, 0.0, 0.0
    n_assets = prices.shape[1]
    gross = 0.0
    equity = holdings[b, n_assets]
    for i in range(n_assets):
        value = holdings[b, i] * prices[r, i]
        gross += abs(value)
        equity += value
    if gross <= 0.0 or equity >= maintenance * gross:
        return False, 0.0, 0.0
    flat = np.zeros(n_assets)
    notional, costs = trade_row(holdings, b, flat, prices[r], bars[r], rules)
    return True, notional, costs


@njit(internal=True)
def _bracket_entry(levels: np.ndarray, b: int, i: int, old: float, new: float) -> bool:
    """Whether asset ``i`` of row ``b`` needs fresh bracket levels after going from ``old`` to ``new`` shares: a
    position that is new, reversed or added to does; a closed one loses its levels here (and does not); a reduced
    or unchanged one keeps them."""
    if new == 0.0:
        levels[b, 0, i] = levels[b, 1, i] = levels[b, 2, i] = np.nan
        return False
    return _fresh_side(old, new) | (abs(new) > abs(old))


@njit(internal=True)
def _fresh_side(old: float, new: float) -> bool:
    """``sign(old) != sign(new)`` for ``new != 0`` (a position opened or reversed), without branches."""
    return ((old > 0.0) != (new > 0.0)) | (old == 0.0)


@njit(internal=True)
def _enter_levels(
    levels: np.ndarray, b: int, i: int, old: float, new: float, fill: float, bars: np.ndarray, atr: bool
) -> None:
    """Set the entry (average price of the position's shares), stop and take-profit of asset ``i`` of row ``b``
    after it went from ``old`` to ``new`` shares with the added ones executed at ``fill``."""
    side = math.copysign(1.0, new)
    added = (abs(old) * levels[b, 0, i] + abs(new - old) * fill) / abs(new)  # NaN for a fresh position: not used
    entry = fill if _fresh_side(old, new) else added
    levels[b, 0, i] = entry
    stop, take = bars[STOP, i], bars[TAKE, i]
    if not atr:
        stop, take = stop * entry, take * entry
    levels[b, 1, i] = entry - side * stop if stop > 0.0 else np.nan
    levels[b, 2, i] = entry + side * take if take > 0.0 else np.nan


@njit
def bracket_row(
    holdings: np.ndarray,
    levels: np.ndarray,
    b: int,
    ohlc: np.ndarray,
    r: int,
    gaps: bool,
    bars: np.ndarray,
    rules: np.ndarray,
) -> tuple[int, float, float]:
    """Check row ``b``'s bracket levels against bar ``r`` of ``ohlc`` ``(T, 3, N)`` (open, high, low) and close the touched
    positions, in place, at the level (or at the open when ``gaps`` and the bar opened beyond it), paying the
    frictions of ``bars`` ``(N_BAR_FIELDS, N)``. When a bar touches both levels the stop is taken (conservative).

    :return: ``(exits, notional, costs)``: positions closed, and their mid notional and frictions.
    """
    exits = 0
    notional = 0.0
    costs = 0.0
    n_assets = ohlc.shape[2]
    for i in range(n_assets):
        h = holdings[b, i]
        if h == 0.0:
            continue
        stop, take, up, down = levels[b, 1, i], levels[b, 2, i], ohlc[r, 1, i], ohlc[r, 2, i]
        long = h > 0.0  # the comparisons are False for NaN levels; selected, not branched on (the side is random)
        stopped = (down <= stop) if long else (up >= stop)
        taken = (up >= take) if long else (down <= take)
        if not (stopped | taken):
            continue
        level = stop if stopped else take
        if gaps:
            first = ohlc[r, 0, i]
            beyond = (first <= level) if long == stopped else (first >= level)
            if beyond:
                level = first
        q = -h
        friction = order_cost(q, level, bars, i, rules)
        notional += abs(q) * level
        costs += friction
        holdings[b, n_assets] -= q * level + friction
        holdings[b, i] = 0.0
        levels[b, 0, i] = levels[b, 1, i] = levels[b, 2, i] = np.nan
        exits += 1
    return exits, notional, costs


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


@njit(internal=True)
def copy_row(source: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = source[:len(out)]`` for 1-d arrays (``source`` at least as long), as a loop: numba's slice
    assignment checks that the shapes broadcast and formats its error message, which compiles seconds of string
    code into every kernel that uses it."""
    for i in range(out.shape[0]):
        out[i] = source[i]


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
def enter_brackets_row(
    levels: np.ndarray, b: int, before: np.ndarray, holdings: np.ndarray, fill: np.ndarray, bars: np.ndarray, rules: np.ndarray
) -> None:
    """Update the bracket levels ``levels`` ``(B, 3, N)`` (entry, stop, take; NaN: none) of row ``b`` after it traded
    from ``before`` ``(N,)`` to its ``holdings`` at mid ``fill`` ``(N,)`` with the frictions ``bars``
    ``(N_BAR_FIELDS, N)`` of the decision bar (also its ``STOP``/``TAKE`` distances).

    A position that is new, reversed or added to gets the average entry price of its shares (at their execution
    prices, :func:`fill_price`, computed only for these) and fresh levels; a reduced one keeps its levels; a closed
    one has none. :func:`order_row` does the same inside its write pass."""
    atr = rules[BRACKET_ATR] > 0.0
    for i in range(fill.shape[0]):
        old, new = before[i], holdings[b, i]
        if _bracket_entry(levels, b, i, old, new):
            q = new - old
            _enter_levels(levels, b, i, old, new, fill_price(fill[i], q, adverse_fraction(q, bars, i)), bars, atr)


@njit
def settle_row(
    holdings: np.ndarray,
    levels: np.ndarray,
    b: int,
    fill: np.ndarray,
    row: int,
    closes: np.ndarray,
    bars: np.ndarray,
    rules: np.ndarray,
    ohlc: np.ndarray,
    gaps: bool,
) -> tuple[float, float, float, float, bool]:
    """Everything that follows row ``b``'s fill of decision bar ``row`` until its mark at the close of ``row + 1``:
    one bar of financing, the bracket orders over bar ``row + 1``, and the margin call at its close. The one
    sequence every env with these rules runs after its order (in place); the order set the bracket levels of its
    new positions (:func:`order_row`, or :func:`enter_brackets_row` after :func:`trade_row`).

    :param holdings: ``(B, N + 1)`` the books, right after the fill (written).
    :param levels: ``(B, 3, N)`` bracket entry, stop and take-profit prices (written; NaN: none).
    :param fill: ``(N,)`` the mid prices the order filled at.
    :param closes: ``(T, N)`` closes (the margin call is checked at ``closes[row + 1]``).
    :param bars: ``(T, N_BAR_FIELDS, N)`` per-bar frictions; ``rules`` ``(N_RULES,)``.
    :param ohlc: ``(T, 3, N)`` open, high and low of each bar (read only with brackets).
    :param gaps: whether a bar that opens beyond a level fills at the open (``False`` when the order filled at that open).
    :return: ``(financing, exits, notional, costs, called)``: net financing (currency, + received), positions the
        brackets closed, the mid notional and frictions of those exits and of a liquidation, and whether the margin
        call liquidated the book.
    """
    financing = finance_row(holdings, b, fill, bars[row], rules) if rules[FINANCED] > 0.0 else 0.0
    exits, notional, costs = 0, 0.0, 0.0
    if rules[BRACKETED] > 0.0:
        exits, notional, costs = bracket_row(holdings, levels, b, ohlc, row + 1, gaps, bars[row], rules)
    called = False
    if rules[MAINTENANCE] > 0.0:
        called, call_notional, call_costs = margin_call_row(holdings, b, closes, bars, row + 1, rules)
        if called:
            notional += call_notional
            costs += call_costs
            levels[b, :, :] = np.nan
    return financing, float(exits), notional, costs, called


@njit
def fill_trades_kernel(
    traded: np.ndarray, prices: np.ndarray, bars: np.ndarray, rules: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Price a batch of trades (:func:`fill_price`, and :func:`price_row` of a trade from an empty book).

    :param traded: ``(B, N)`` signed share quantities (+ buy, - sell).
    :param prices: ``(B, N)`` mid prices.
    :param bars: ``(B, N_BAR_FIELDS, N)`` each row's frictions; ``rules``: ``(N_RULES,)``.
    :return: ``(fill_prices (B, N), notional (B,), costs (B,))``: execution prices, mid notional
        ``sum |q| p`` and frictions (:func:`order_cost`).
    """
    n_rows, n_assets = traded.shape
    empty = np.zeros((1, n_assets + 1))  # no shares held: trading to ``traded`` trades exactly ``traded``
    fill_prices = np.empty((n_rows, n_assets))
    notional = np.empty(n_rows)
    costs = np.empty(n_rows)
    for b in range(n_rows):
        fill_row(traded[b], prices[b], bars[b], fill_prices[b])
        _, notional[b], costs[b] = price_row(empty, 0, traded[b], prices[b], bars[b], rules)
    return fill_prices, notional, costs


@njit(internal=True)
def fill_row(traded: np.ndarray, prices: np.ndarray, bars: np.ndarray, out: np.ndarray) -> None:
    """Execution prices ``(N,)`` of the trades ``traded`` ``(N,)`` at mid ``prices``, into ``out``: ``p (1 + a sign q)``."""
    for i in range(traded.shape[0]):
        q = traded[i]
        out[i] = fill_price(prices[i], q, adverse_fraction(q, bars, i))


@njit
def trade_to_kernel(
    holdings: np.ndarray, target: np.ndarray, prices: np.ndarray, bars: np.ndarray, rules: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`trade_row` on every row: trade ``holdings`` ``(B, N + 1)`` to ``target`` ``(B, N)`` at ``prices`` ``(B, N)``.

    :param bars: ``(B, N_BAR_FIELDS, N)`` each row's frictions; ``rules``: ``(N_RULES,)``.
    :return: ``(traded (B, N), fill_prices (B, N), notional (B,), costs (B,))``, as :func:`fill_trades_kernel`.
    """
    n_rows, n_assets = target.shape
    traded = np.empty((n_rows, n_assets))
    fill_prices = np.empty((n_rows, n_assets))
    notional = np.empty(n_rows)
    costs = np.empty(n_rows)
    for b in range(n_rows):
        for i in range(n_assets):
            traded[b, i] = target[b, i] - holdings[b, i]
        fill_row(traded[b], prices[b], bars[b], fill_prices[b])
        notional[b], costs[b] = trade_row(holdings, b, target[b], prices[b], bars[b], rules)
    return traded, fill_prices, notional, costs


@njit(internal=True)
def affordable_row(
    holdings: np.ndarray,
    b: int,
    target: np.ndarray,
    prices: np.ndarray,
    bars: np.ndarray,
    rules: np.ndarray,
    lot: float,
) -> None:
    """Cut the buys of ``target`` ``(N,)`` (in place) so that trading row ``b`` of ``holdings`` to it leaves cash ``>= 0``.

    The one affordability rule. A row that can pay is unchanged. Otherwise, with shortfall ``D`` (the cash the
    trade would leave below zero), shares bought ``b_i`` and cash per bought share ``u_i = p_i (1 + a_i)(1 + c)``
    (``a_i`` the buy's :func:`adverse_fraction`), each buy is cut by ``k_i = D b_i / sum_j b_j u_j`` shares (in
    proportion to the shares bought), rounded *up* to whole lots when ``lot > 0``, and ``k_i <= b_i``: a buy
    never turns into a sell. Sells are never changed (they raise cash). With proportional frictions one cut frees
    at least ``D`` (without lots it is scaled up by one part in ``1e12`` so that rounding never leaves a negative
    cent); with fees per order or impact the cut is repeated on the new shortfall, up to :data:`MAX_CUTS` times,
    and a row still short then keeps only its sells. A row that cannot pay even with every buy cut (cash
    already negative) keeps only its sells.

    :param holdings: ``(B, N + 1)`` the book (read only).
    :param prices: ``(N,)`` mid prices at execution.
    :param bars: ``(N_BAR_FIELDS, N)`` the bar's frictions; ``rules``: ``(N_RULES,)``.
    :param lot: lot size in shares (``0.0``: fractional shares).
    """
    n_assets = target.shape[0]
    c = rules[COMMISSION]
    proportional = rules[FIXED_FEE] == 0.0 and rules[MIN_FEE] == 0.0
    for _ in range(MAX_CUTS):
        spent, _, costs = price_row(holdings, b, target, prices, bars, rules)
        cash = holdings[b, n_assets] - (spent + costs)  # exactly what trade_row would leave
        outlay = 0.0
        linear = proportional
        for i in range(n_assets):
            q = target[i] - holdings[b, i]
            if q > 0.0:
                a = adverse_fraction(q, bars, i)
                linear = linear and bars[IMPACT, i] == 0.0
                outlay += q * prices[i] * (1.0 + (a + c * (1.0 + a)))  # cash per share bought, per unit of mid
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
        if linear:
            return
    spent, _, costs = price_row(holdings, b, target, prices, bars, rules)
    if holdings[b, n_assets] - (spent + costs) < 0.0:
        for i in range(n_assets):
            target[i] = min(target[i], holdings[b, i])


@njit
def affordable_kernel(
    holdings: np.ndarray, target: np.ndarray, prices: np.ndarray, bars: np.ndarray, rules: np.ndarray, lot: float
) -> np.ndarray:
    """:func:`affordable_row` of every row: ``target`` ``(B, N)`` with its buys cut so that no row's cash goes below 0.

    :param holdings: ``(B, N + 1)`` the book (read only).
    :param prices: ``(B, N)`` mid prices at execution.
    :param bars: ``(B, N_BAR_FIELDS, N)`` each row's frictions; ``rules``: ``(N_RULES,)``.
    :param lot: lot size in shares (``0.0``: fractional shares).
    :return: ``(B, N)`` affordable targets (a new array).
    """
    out = target.copy()
    for b in range(out.shape[0]):
        affordable_row(holdings, b, out[b], prices[b], bars[b], rules, lot)
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
    equity: np.ndarray,
    weights: np.ndarray,
    held: np.ndarray,
    commission: float,
    adverse: float,
    fixed_fee: float,
    min_fee: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value ``V`` per row to invest so that rebalancing to ``V * weights`` pays its frictions out of ``equity``.

    Trading from holdings worth ``held_i`` to ``V w_i`` costs ``F(V) = sum_i cost(x_i)`` with ``x_i = V w_i - held_i``
    and, as :func:`order_cost` charges it, ``cost(x) = |x| s + max(c |x| (1 + s sign x), m) + f`` for ``x != 0``
    (``s`` the adverse move, ``c`` the commission, ``m`` the minimum fee, ``f`` the fixed fee per order) and 0 for
    no trade; this is the root of ``V + F(V) = equity``. ``V + F(V)`` is convex and increasing (slope
    ``>= 1 - s - c (1 + s) > 0``) and piecewise linear -- apart from the single points where an asset's trade is
    zero and its fees vanish -- so Newton's method from ``V = equity`` approaches the root from above, one linear
    piece at a time: at most ``N + 1`` steps without fees (usually one), ``4 N + 1`` with them. When even the
    smallest ``V > 0`` costs more than the equity -- the fees of selling out, or of the first share bought, are too
    large -- ``V = 0``: the book is sold, and the cash keeps what is left (negative when selling cost more than the
    equity).

    :param equity: ``(B,)`` equity before the trade, ``> 0``.
    :param weights: ``(B, N)`` target weights ``>= 0``.
    :param held: ``(B, N)`` current position values ``positions * prices``.
    :param fixed_fee: ``f``, currency per asset traded; ``min_fee``: ``m``, currency (both 0: proportional costs).
    :return: ``(V (B,), traded (B, N), notional (B,))``: the investable value, the traded values
        ``V w - held`` at it (currency, + = buy) and their gross ``sum |traded|``.
    """
    n_rows, n_assets = weights.shape
    value = equity.copy()
    traded = np.empty((n_rows, n_assets))
    notional = np.zeros(n_rows)
    fees = fixed_fee != 0.0 or min_fee != 0.0
    for b in range(n_rows):
        v = equity[b]
        tolerance = NEWTON_RTOL * abs(equity[b])
        for _ in range(4 * n_assets + 3 if fees else n_assets + 3):  # the linear pieces, then float slack
            friction = 0.0
            slope = 1.0
            for i in range(n_assets):
                gap = v * weights[b, i] - held[b, i]
                if fees:
                    cost, rate = _order_cost_slope(gap, commission, adverse, fixed_fee, min_fee)
                    friction += cost
                    slope += rate * weights[b, i]
                else:
                    side = np.sign(gap)
                    rate = friction_rate(side, commission, adverse)
                    friction += rate * abs(gap)
                    slope += rate * side * weights[b, i]
            excess = v + friction - equity[b]
            if excess <= tolerance:
                break
            v -= excess / slope
            if v <= 0.0:  # the fees of selling out exceed the equity: no root at V >= 0
                v = 0.0
                break
        value[b] = v
        gross = 0.0
        for i in range(n_assets):
            gap = v * weights[b, i] - held[b, i]
            traded[b, i] = gap
            gross += abs(gap)
        notional[b] = gross
    return value, traded, notional


@njit(internal=True)
def _order_cost_slope(gap: float, commission: float, adverse: float, fixed_fee: float, min_fee: float) -> tuple[float, float]:
    """The frictions of trading ``gap`` currency of one asset at its mid (:func:`order_cost`, with fees) and their
    derivative in ``gap`` (``(0, 0)`` for no trade)."""
    if gap == 0.0:
        return 0.0, 0.0
    amount = abs(gap)
    signed = math.copysign(adverse, gap)
    linear = commission * amount * (1.0 + signed)
    if linear >= min_fee:
        return amount * adverse + linear + fixed_fee, signed + commission * (1.0 + signed) * math.copysign(1.0, gap)
    return amount * adverse + min_fee + fixed_fee, signed


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
    "GAPS_FILL_AT_OPEN",
    "LEVERAGE_BISECTIONS",
    "MAX_CUTS",
    "NEWTON_RTOL",
    "adverse_fraction",
    "bracket_row",
    "fill_row",
    "finance_row",
    "gross_row",
    "limit_row",
    "order_row",
    "margin_call_row",
    "order_cost",
    "enter_brackets_row",
    "settle_row",
    "clip_action",
    "copy_row",
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
