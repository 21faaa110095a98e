r"""Trade analytics of a backtest: FIFO round trips per asset and their statistics.

:func:`round_trips` matches a path of share positions into round trips, one asset at a time, first in
first out; :func:`trade_stats` summarises them; :func:`trade_analytics` does both for a
:class:`~sb3_trading.evaluation.backtest.BacktestResult`.

Conventions
-----------
* **Flows.** The shares traded at step ``k`` are ``q_k = positions[k] - positions[k - 1]`` with
  ``positions[-1]`` the start holdings (``positions[0] - trades[0]`` of a result; nonzero for envs that
  invest at reset, e.g. LeveragedPair). Start holdings open lots at the first mark, with no costs (the
  reset's frictions are not in ``costs``). A stitched path (:func:`~sb3_trading.evaluation.backtest.concat_results`
  of consecutive episodes or walk-forward folds) starts a fresh book at each piece: where
  ``positions[k] != positions[k - 1] + trades[k]`` the open lots close at mark ``k`` (without exit costs) and the
  new book's start holdings open lots there. Across a gap in ``t`` between pieces this is an approximation.
* **Fill prices.** Fills are not stored, so step ``k`` fills at the close of its mark ``t[k]`` (the mid; the
  envs' default ``execution="close"``). Slippage and commission are in ``costs`` instead: each step's costs
  are allocated to its asset trades in proportion to their traded mid notional ``|q_kj| * P_{t[k], j}``,
  and within one asset's trade pro rata to shares (a flip from long to short splits it between the lots it
  closes and the lot it opens). Costs of a step that trades nothing stay ``unallocated_costs`` (counted in
  ``total_costs``, not in any trade).
* **FIFO.** A buy first covers open short lots, oldest first, and opens a long lot with the rest; a sell
  closes open long lots, oldest first, and opens a short lot with the rest. A partial close splits the lot.
  A **round trip** is the quantity matched between one opening fill and one closing fill (a lot closed in
  two pieces is two round trips); it carries its share of the entry costs and of the exit costs.
* **Open trades.** Lots still open after the last step are *not* round trips: they are reported apart
  (``open_trades``, ``n_open``, ``open_pnl``), marked at the last mark's close with no exit costs (only their
  entry costs are deducted).
* **Per-trade numbers.** ``gross_pnl = side * quantity * (exit_price - entry_price)`` (``side`` +1 long,
  -1 short), ``pnl = gross_pnl - costs`` (entry plus exit costs), ``return = pnl / entry_notional`` with
  ``entry_notional = quantity * entry_price``: long ``(exit - entry) / entry``, short ``(entry - exit) / entry``,
  both net of costs. Holding period: ``holding_steps`` (decisions between the fills) and ``holding_bars``
  (data rows between the fills' marks, ``t[exit] - t[entry]``).
* **Statistics** (:class:`TradeStats`, over the closed round trips): a win has ``pnl > 0``, a loss
  ``pnl < 0`` (a zero-PnL trade is neither); ``win_rate = n_wins / n_trades``; ``avg_win`` / ``avg_loss``
  the mean PnL of the wins / losses (``avg_loss <= 0``); ``payoff_ratio = avg_win / |avg_loss|``;
  ``profit_factor = gross_profit / |gross_loss|``; ``expectancy`` the mean PnL per trade and
  ``expectancy_return`` the mean return; ``costs_bps = total_costs / traded_notional * 1e4`` over every
  fill of the path; ``mean_trade_costs_bps`` the mean over round trips of ``costs / (entry + exit notional)``.
* **Finite values only** (reports are strict JSON): no trades gives zeros; a ratio without losses is
  :data:`MAX_RATIO` when there are wins (``no_losses`` is then ``True``) and ``0`` when there are none;
  every ratio is capped at :data:`MAX_RATIO`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sb3_trading.evaluation.backtest import BacktestResult

#: cap of ``payoff_ratio`` and ``profit_factor``, and their value when there are wins but no losses
MAX_RATIO = 999.0
#: share quantities below ``QUANTITY_TOL * max(1, max |position|)`` of an asset are treated as zero (float noise)
QUANTITY_TOL = 1e-9
#: relative mismatch of ``positions[k - 1] + trades[k]`` and ``positions[k]`` that marks a fresh book
RESTART_TOL = 1e-7
BPS = 1e4


@dataclass(frozen=True)
class RoundTrip:
    """One FIFO-matched quantity of one asset, from its opening fill to its closing fill.

    :ivar asset: the asset's name.
    :ivar side: ``+1`` long, ``-1`` short.
    :ivar quantity: shares, ``> 0``.
    :ivar entry_mark: index into the marks ``t`` of the opening fill (step ``k`` fills at mark ``k``).
    :ivar exit_mark: index of the closing fill (the last mark ``n`` for an open trade).
    :ivar entry_t: data row of the opening fill.
    :ivar exit_t: data row of the closing fill (or of the last mark).
    :ivar entry_price: opening fill price (the close of ``entry_t``).
    :ivar exit_price: closing fill price (the close of ``exit_t``).
    :ivar entry_costs: the entry fill's costs allocated to this quantity, currency.
    :ivar exit_costs: the exit fill's costs allocated to it (0 for an open trade), currency.
    :ivar is_open: still open at the end, marked at the last close (not a round trip).
    :ivar entry_time: timestamp of ``entry_t`` when the data has them.
    :ivar exit_time: timestamp of ``exit_t`` when the data has them.
    """

    asset: str
    side: int
    quantity: float
    entry_mark: int
    exit_mark: int
    entry_t: int
    exit_t: int
    entry_price: float
    exit_price: float
    entry_costs: float = 0.0
    exit_costs: float = 0.0
    is_open: bool = False
    entry_time: str | None = None
    exit_time: str | None = None

    @property
    def entry_notional(self) -> float:
        """``quantity * entry_price``, currency."""
        return self.quantity * self.entry_price

    @property
    def exit_notional(self) -> float:
        """``quantity * exit_price``, currency."""
        return self.quantity * self.exit_price

    @property
    def costs(self) -> float:
        """Entry plus exit costs, currency."""
        return self.entry_costs + self.exit_costs

    @property
    def gross_pnl(self) -> float:
        """``side * quantity * (exit_price - entry_price)``, before costs."""
        return self.side * self.quantity * (self.exit_price - self.entry_price)

    @property
    def pnl(self) -> float:
        """``gross_pnl - costs``, currency."""
        return self.gross_pnl - self.costs

    @property
    def trade_return(self) -> float:
        """``pnl / entry_notional``: net of costs (0 for a zero entry price)."""
        notional = self.entry_notional
        return self.pnl / notional if notional > 0 else 0.0

    @property
    def costs_bps(self) -> float:
        """``costs / (entry_notional + exit_notional) * 1e4``, basis points of the trade's traded notional."""
        traded = self.entry_notional + (0.0 if self.is_open else self.exit_notional)
        return self.costs / traded * BPS if traded > 0 else 0.0

    @property
    def holding_steps(self) -> int:
        """Decisions between the fills, ``exit_mark - entry_mark``."""
        return self.exit_mark - self.entry_mark

    @property
    def holding_bars(self) -> int:
        """Data rows between the fills, ``exit_t - entry_t``."""
        return self.exit_t - self.entry_t

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus ``pnl``, ``return``, ``costs``, ``costs_bps`` and the holding periods."""
        out: dict[str, Any] = {
            "asset": self.asset,
            "side": "long" if self.side > 0 else "short",
            "quantity": self.quantity,
            "entry_t": self.entry_t,
            "exit_t": self.exit_t,
            "entry_price": self.entry_price,
            "exit_price": self.exit_price,
            "gross_pnl": self.gross_pnl,
            "costs": self.costs,
            "pnl": self.pnl,
            "return": self.trade_return,
            "costs_bps": self.costs_bps,
            "holding_steps": self.holding_steps,
            "holding_bars": self.holding_bars,
            "open": self.is_open,
        }
        if self.entry_time is not None:
            out["entry_time"], out["exit_time"] = self.entry_time, self.exit_time
        return out


@dataclass
class _Lot:
    side: int
    quantity: float
    mark: int
    price: float
    costs: float  # entry costs of the remaining quantity


def _names(asset_names: Sequence[str] | None, n_assets: int) -> tuple[str, ...]:
    names = tuple(asset_names) if asset_names is not None else tuple(f"asset_{j}" for j in range(n_assets))
    if len(names) != n_assets:
        raise ValueError(f"asset_names has {len(names)} names for {n_assets} position columns")
    return names


def round_trips(
    positions: np.ndarray,
    prices: np.ndarray,
    costs: np.ndarray | None = None,
    *,
    start_positions: np.ndarray | None = None,
    trades: np.ndarray | None = None,
    t: np.ndarray | None = None,
    asset_names: Sequence[str] | None = None,
    timestamps: np.ndarray | None = None,
) -> tuple[list[RoundTrip], list[RoundTrip]]:
    """FIFO round trips of a path of share positions (the module doc states the conventions).

    :param positions: ``(n, N)`` shares held after each step's trade.
    :param prices: ``(n + 1, N)`` fill prices at the marks: row ``k < n`` fills step ``k``'s trade, row ``n``
        marks the trades still open at the end.
    :param costs: ``(n,)`` frictions paid per step, currency (default none), allocated by traded notional.
    :param start_positions: ``(N,)`` holdings before step 0 (default flat); they open lots at mark 0.
    :param trades: ``(n, N)`` shares traded per step (default ``diff(positions)`` from ``start_positions``); where
        ``positions[k] != positions[k - 1] + trades[k]`` a fresh book starts (a stitched path's next episode): the
        open lots close at mark ``k`` without exit costs and ``positions[k] - trades[k]`` open new lots there.
    :param t: ``(n + 1,)`` data rows of the marks (default ``0..n``), for ``holding_bars``.
    :param asset_names: the ``N`` names (default ``asset_0``...).
    :param timestamps: ``(n + 1,)`` times of the marks (optional; stored as ISO strings).
    :return: ``(closed, open_trades)``: the round trips in order of their closing fill (then asset), and the
        lots still open, marked at ``prices[n]``.
    :raises ValueError: on inconsistent shapes or non-finite/negative prices at a fill.
    """
    closed, open_trades, _ = _match(
        positions,
        prices,
        costs,
        start_positions=start_positions,
        trades=trades,
        t=t,
        asset_names=asset_names,
        timestamps=timestamps,
    )
    return closed, open_trades


def _match(
    positions: np.ndarray,
    prices: np.ndarray,
    costs: np.ndarray | None = None,
    *,
    start_positions: np.ndarray | None = None,
    trades: np.ndarray | None = None,
    t: np.ndarray | None = None,
    asset_names: Sequence[str] | None = None,
    timestamps: np.ndarray | None = None,
) -> tuple[list[RoundTrip], list[RoundTrip], float]:
    """:func:`round_trips` plus the traded mid notional of every fill."""
    pos = np.asarray(positions, dtype=np.float64)
    if pos.ndim != 2:
        raise ValueError(f"positions must be (n, N), got shape {pos.shape}")
    n, n_assets = pos.shape
    px = np.asarray(prices, dtype=np.float64)
    if px.shape != (n + 1, n_assets):
        raise ValueError(f"prices must be (n + 1, N) = {(n + 1, n_assets)} (a fill price per mark), got {px.shape}")
    step_costs = np.zeros(n) if costs is None else np.asarray(costs, dtype=np.float64)
    if step_costs.shape != (n,):
        raise ValueError(f"costs must be (n,) = ({n},), got {step_costs.shape}")
    start = np.zeros(n_assets) if start_positions is None else np.asarray(start_positions, dtype=np.float64)
    if start.shape != (n_assets,):
        raise ValueError(f"start_positions must be (N,) = ({n_assets},), got {start.shape}")
    rows = np.arange(n + 1) if t is None else np.asarray(t)
    if rows.shape != (n + 1,):
        raise ValueError(f"t must be (n + 1,) = ({n + 1},), got {rows.shape}")
    names = _names(asset_names, n_assets)
    times = None
    if timestamps is not None:
        stamps = np.asarray(timestamps)
        is_time = np.issubdtype(stamps.dtype, np.datetime64)
        times = [str(x) for x in (np.datetime_as_string(stamps, unit="auto") if is_time else stamps)]

    held = np.vstack([start[None, :], pos])
    tol = QUANTITY_TOL * np.maximum(1.0, np.abs(held).max(axis=0))
    if trades is None:
        flows = np.diff(held, axis=0)  # (n, N)
        restarts = np.zeros(n, dtype=bool)
    else:
        flows = np.array(trades, dtype=np.float64)
        if flows.shape != (n, n_assets):
            raise ValueError(f"trades must be (n, N) = {(n, n_assets)}, got {flows.shape}")
        # a fresh book (a stitched path's next episode): positions[k] != positions[k - 1] + trades[k]
        restarts = (np.abs(held[:-1] + flows - pos) > RESTART_TOL * np.maximum(1.0, np.abs(held).max(axis=0))).any(axis=1)
    flows[np.abs(flows) <= tol] = 0.0
    traded = np.abs(flows) * np.where(flows != 0.0, px[:-1], 0.0)
    if not np.isfinite(traded).all() or (traded < 0).any():
        k, j = np.argwhere(~np.isfinite(traded) | (traded < 0))[0]
        raise ValueError(f"fill price {px[k, j]!r} of {names[j]!r} at mark {k} must be finite and >= 0 where it trades")
    notional = traded.sum(axis=1)
    share = np.divide(traded, notional[:, None], out=np.zeros_like(traded), where=notional[:, None] > 0)
    asset_costs = share * step_costs[:, None]

    def stamp(mark: int) -> str | None:
        return None if times is None else times[mark]

    closed: list[RoundTrip] = []
    open_trades: list[RoundTrip] = []
    books: list[deque[_Lot]] = []
    for j in range(n_assets):
        book: deque[_Lot] = deque()
        if abs(start[j]) > tol[j]:
            book.append(_Lot(int(np.sign(start[j])), abs(float(start[j])), 0, float(px[0, j]), 0.0))
        books.append(book)

    def trip(
        j: int, lot: _Lot, quantity: float, exit_mark: int, entry_costs: float, exit_costs: float = 0.0, is_open: bool = False
    ) -> RoundTrip:
        """``quantity`` shares of ``lot`` (asset ``j``) closed (or, ``is_open``, marked) at mark ``exit_mark``."""
        return RoundTrip(
            asset=names[j],
            side=lot.side,
            quantity=quantity,
            entry_mark=lot.mark,
            exit_mark=exit_mark,
            entry_t=int(rows[lot.mark]),
            exit_t=int(rows[exit_mark]),
            entry_price=lot.price,
            exit_price=float(px[exit_mark, j]),
            entry_costs=entry_costs,
            exit_costs=exit_costs,
            is_open=is_open,
            entry_time=stamp(lot.mark),
            exit_time=stamp(exit_mark),
        )

    for k in range(n):
        if restarts[k]:  # the old book ends at this mark (no exit costs); the new one starts from its holdings
            for j, book in enumerate(books):
                for lot in book:
                    closed.append(trip(j, lot, lot.quantity, k, lot.costs))
                book.clear()
                fresh = float(pos[k, j] - flows[k, j])
                if abs(fresh) > tol[j]:
                    book.append(_Lot(int(np.sign(fresh)), abs(fresh), k, float(px[k, j]), 0.0))
        for j in range(n_assets):
            q = float(flows[k, j])
            if q == 0.0:
                continue
            book, price, remaining = books[j], float(px[k, j]), abs(q)
            cost_per_share = float(asset_costs[k, j]) / remaining
            side = 1 if q > 0 else -1
            while remaining > tol[j] and book and book[0].side != side:  # close the oldest opposite lots
                lot = book[0]
                x = min(lot.quantity, remaining)
                entry_costs = lot.costs * x / lot.quantity
                closed.append(trip(j, lot, x, k, entry_costs, cost_per_share * x))
                lot.quantity -= x
                lot.costs -= entry_costs
                remaining -= x
                if lot.quantity <= tol[j]:
                    book.popleft()
            if remaining > tol[j]:
                book.append(_Lot(side, remaining, k, price, cost_per_share * remaining))

    for j, book in enumerate(books):
        for lot in book:
            open_trades.append(trip(j, lot, lot.quantity, n, lot.costs, is_open=True))
    return closed, open_trades, float(notional.sum())


def _ratio(numerator: float, denominator: float) -> tuple[float, bool]:
    """``(min(numerator / denominator, MAX_RATIO), no_losses)``, finite: ``MAX_RATIO`` without a denominator
    but with a numerator, ``0`` with neither."""
    if denominator > 0:
        return min(numerator / denominator, MAX_RATIO), False
    return (MAX_RATIO, True) if numerator > 0 else (0.0, False)


@dataclass
class TradeStats:
    """Statistics of a path's FIFO round trips (definitions in the module doc; currency unless stated).

    :ivar n_trades: closed round trips.
    :ivar n_wins: round trips with ``pnl > 0``.
    :ivar n_losses: round trips with ``pnl < 0``.
    :ivar win_rate: ``n_wins / n_trades`` (0 without trades).
    :ivar avg_win: mean PnL of the wins (0 without wins).
    :ivar avg_loss: mean PnL of the losses, ``<= 0`` (0 without losses).
    :ivar avg_win_return: mean net return of the wins.
    :ivar avg_loss_return: mean net return of the losses, ``<= 0``.
    :ivar payoff_ratio: ``avg_win / |avg_loss|`` (finite: see :data:`MAX_RATIO`).
    :ivar profit_factor: ``gross_profit / |gross_loss|`` (finite: see :data:`MAX_RATIO`).
    :ivar no_losses: there are wins but no losses (the ratios are then :data:`MAX_RATIO`).
    :ivar gross_profit: sum of the wins' PnL.
    :ivar gross_loss: sum of the losses' PnL, ``<= 0``.
    :ivar total_pnl: sum of the round trips' PnL (net of their costs).
    :ivar expectancy: mean PnL per round trip.
    :ivar expectancy_return: mean net return per round trip.
    :ivar mean_holding_steps: mean decisions held.
    :ivar mean_holding_bars: mean data rows held.
    :ivar max_holding_bars: longest hold, data rows.
    :ivar n_long: long round trips.
    :ivar n_short: short round trips.
    :ivar traded_notional: mid notional of every fill of the path, ``sum |q| * P``.
    :ivar total_costs: every cost of the path (allocated or not).
    :ivar unallocated_costs: costs of steps that traded nothing (in no trade).
    :ivar costs_bps: ``total_costs / traded_notional * 1e4``.
    :ivar mean_trade_costs: mean costs per round trip.
    :ivar mean_trade_costs_bps: mean over round trips of their costs in bps of their entry plus exit notional.
    :ivar n_open: lots still open at the end (not round trips).
    :ivar open_pnl: their PnL marked at the last close, net of their entry costs.
    :ivar by_asset: per asset, the same statistics of its own round trips (without ``by_asset``).
    :ivar trips: the closed round trips (not in :meth:`to_dict`).
    :ivar open_trades: the open lots marked at the last close (not in :meth:`to_dict`).
    """

    n_trades: int = 0
    n_wins: int = 0
    n_losses: int = 0
    win_rate: float = 0.0
    avg_win: float = 0.0
    avg_loss: float = 0.0
    avg_win_return: float = 0.0
    avg_loss_return: float = 0.0
    payoff_ratio: float = 0.0
    profit_factor: float = 0.0
    no_losses: bool = False
    gross_profit: float = 0.0
    gross_loss: float = 0.0
    total_pnl: float = 0.0
    expectancy: float = 0.0
    expectancy_return: float = 0.0
    mean_holding_steps: float = 0.0
    mean_holding_bars: float = 0.0
    max_holding_bars: int = 0
    n_long: int = 0
    n_short: int = 0
    traded_notional: float = 0.0
    total_costs: float = 0.0
    unallocated_costs: float = 0.0
    costs_bps: float = 0.0
    mean_trade_costs: float = 0.0
    mean_trade_costs_bps: float = 0.0
    n_open: int = 0
    open_pnl: float = 0.0
    by_asset: dict[str, TradeStats] = field(default_factory=dict)
    trips: list[RoundTrip] = field(default_factory=list, repr=False)
    open_trades: list[RoundTrip] = field(default_factory=list, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready statistics (finite numbers), ``by_asset`` nested; without the trade lists."""
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            if name in ("by_asset", "trips", "open_trades"):
                continue
            value = getattr(self, name)
            out[name] = value if isinstance(value, (bool, int)) else float(value)
        if self.by_asset:
            out["by_asset"] = {asset: stats.to_dict() for asset, stats in self.by_asset.items()}
        return out


def trade_stats(
    trips: Sequence[RoundTrip],
    open_trades: Sequence[RoundTrip] = (),
    *,
    traded_notional: float | None = None,
    total_costs: float | None = None,
    by_asset: bool = True,
) -> TradeStats:
    """The :class:`TradeStats` of closed round trips (and the open lots).

    :param trips: closed round trips (:func:`round_trips`' first list).
    :param open_trades: open lots (its second list).
    :param traded_notional: mid notional of every fill of the path (default: the trips' entry plus exit notional
        and the open lots' entry notional).
    :param total_costs: every cost of the path (default: the trips' and open lots' allocated costs).
    :param by_asset: add the per-asset statistics.
    """
    trips, open_trades = list(trips), list(open_trades)
    allocated = sum(tr.costs for tr in trips) + sum(tr.costs for tr in open_trades)
    if traded_notional is None:
        traded_notional = sum(tr.entry_notional + tr.exit_notional for tr in trips) + sum(
            tr.entry_notional for tr in open_trades
        )
    if total_costs is None:
        total_costs = allocated
    pnl = np.array([tr.pnl for tr in trips], dtype=np.float64)
    ret = np.array([tr.trade_return for tr in trips], dtype=np.float64)
    wins, losses = pnl > 0, pnl < 0
    n = len(trips)

    def mean(x: np.ndarray) -> float:
        return float(x.mean()) if x.size else 0.0

    avg_win, avg_loss = mean(pnl[wins]), mean(pnl[losses])
    gross_profit, gross_loss = float(pnl[wins].sum()), float(pnl[losses].sum())
    payoff, no_losses = _ratio(avg_win, -avg_loss)
    profit_factor, _ = _ratio(gross_profit, -gross_loss)
    stats = TradeStats(
        n_trades=n,
        n_wins=int(wins.sum()),
        n_losses=int(losses.sum()),
        win_rate=float(wins.sum()) / n if n else 0.0,
        avg_win=avg_win,
        avg_loss=avg_loss,
        avg_win_return=mean(ret[wins]),
        avg_loss_return=mean(ret[losses]),
        payoff_ratio=payoff,
        profit_factor=profit_factor,
        no_losses=no_losses,
        gross_profit=gross_profit,
        gross_loss=gross_loss,
        total_pnl=float(pnl.sum()),
        expectancy=mean(pnl),
        expectancy_return=mean(ret),
        mean_holding_steps=mean(np.array([tr.holding_steps for tr in trips], dtype=np.float64)),
        mean_holding_bars=mean(np.array([tr.holding_bars for tr in trips], dtype=np.float64)),
        max_holding_bars=max((tr.holding_bars for tr in trips), default=0),
        n_long=sum(tr.side > 0 for tr in trips),
        n_short=sum(tr.side < 0 for tr in trips),
        traded_notional=float(traded_notional),
        total_costs=float(total_costs),
        unallocated_costs=max(float(total_costs) - allocated, 0.0),
        costs_bps=float(total_costs) / traded_notional * BPS if traded_notional > 0 else 0.0,
        mean_trade_costs=mean(np.array([tr.costs for tr in trips], dtype=np.float64)),
        mean_trade_costs_bps=mean(np.array([tr.costs_bps for tr in trips], dtype=np.float64)),
        n_open=len(open_trades),
        open_pnl=float(sum(tr.pnl for tr in open_trades)),
        trips=trips,
        open_trades=open_trades,
    )
    if by_asset:
        assets = list(dict.fromkeys([tr.asset for tr in trips] + [tr.asset for tr in open_trades]))
        stats.by_asset = {
            asset: trade_stats(
                [tr for tr in trips if tr.asset == asset], [tr for tr in open_trades if tr.asset == asset], by_asset=False
            )
            for asset in assets
        }
    return stats


def _traded_columns(result: BacktestResult) -> list[int]:
    market = result.market
    assert market is not None
    n_assets = result.positions.shape[1]  # type: ignore[union-attr]
    names = list(result.asset_names) if result.asset_names is not None else list(market.asset_names)[:n_assets]
    if len(names) != n_assets or not set(names) <= set(market.asset_names):
        raise ValueError(
            f"cannot map the result's {n_assets} position columns {names} to the market's assets {list(market.asset_names)}"
        )
    return [list(market.asset_names).index(name) for name in names]


def result_round_trips(result: BacktestResult) -> tuple[list[RoundTrip], list[RoundTrip], float]:
    """:func:`round_trips` of a backtest, filled at the closes of its marks.

    :return: ``(closed, open_trades, traded_notional)``.
    :raises ValueError: when the result has no ``positions`` or no ``market`` (the closes).
    """
    if result.positions is None or result.market is None:
        raise ValueError(f"trade analytics of {result.name!r} need its positions and its market (a backtest's result)")
    positions = np.asarray(result.positions, dtype=np.float64)
    columns = _traded_columns(result)
    prices = np.asarray(result.market.prices, dtype=np.float64)[np.asarray(result.t)][:, columns]
    start = None if result.trades is None else positions[0] - np.asarray(result.trades, dtype=np.float64)[0]
    return _match(
        positions,
        prices,
        result.costs,
        start_positions=start,
        trades=result.trades,
        t=result.t,
        asset_names=result.asset_names or tuple(result.market.asset_names[c] for c in columns),
        timestamps=result.timestamps,
    )


def trade_analytics(result: BacktestResult) -> TradeStats:
    """FIFO round trips of a backtest and their :class:`TradeStats` (``.trips`` and ``.open_trades`` hold the lists).

    Fills at the close of each step's mark; the path's ``costs`` allocated by traded notional (module doc).

    :param result: a backtest with ``positions`` and ``market``.
    """
    closed, open_trades, traded_notional = result_round_trips(result)
    return trade_stats(closed, open_trades, traded_notional=traded_notional, total_costs=float(np.sum(result.costs)))


def format_trade_stats(stats: TradeStats | dict[str, Any]) -> str:
    """One line of a :class:`TradeStats` (or its ``to_dict()``), e.g.
    ``12 trades, win 58.3%, payoff 1.20, PF 1.67, exp +0.41%/trade, hold 5.2 bars, costs 10.0 bps (3 open)``."""
    s = stats.to_dict() if isinstance(stats, TradeStats) else stats
    if not s.get("n_trades"):
        text = "no closed trades"
    else:
        pf = "no losses" if s.get("no_losses") else f"{s['profit_factor']:.2f}"
        text = (
            f"{s['n_trades']} trades, win {s['win_rate']:.1%}, payoff {s['payoff_ratio']:.2f}, PF {pf}, "
            f"exp {s['expectancy_return']:+.2%}/trade, hold {s['mean_holding_bars']:.1f} bars"
        )
    text += f", costs {s.get('costs_bps', 0.0):.1f} bps"
    if s.get("n_open"):
        text += f" ({s['n_open']} open)"
    return text


__all__ = [
    "MAX_RATIO",
    "RoundTrip",
    "TradeStats",
    "format_trade_stats",
    "result_round_trips",
    "round_trips",
    "trade_analytics",
    "trade_stats",
]
