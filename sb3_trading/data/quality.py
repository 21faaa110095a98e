"""Warnings for data that loads but is probably wrong: unadjusted splits, bad prints, dead volume, stale prices.

:func:`check_data_quality` runs once on every market the loaders build (not on
synthetic markets or slices). Each finding is one :class:`SuspectDataWarning` per
asset and kind, naming the asset, the first row and date and how often it occurs.
The rules, on close prices ``c`` and the per-bar ratio ``r_t = c_t / c_{t-1}``:

**jump** (an unadjusted split or a bad print): ``|r_t - 1| > max_move`` (default 40 %)
and either

* the move *reverts*: some bar ``s`` in ``t+1 .. t+revert_bars`` (default 5) has
  ``|log(c_s / c_{t-1})| <= |log r_t| / 2`` (the price came back at least half way,
  in log terms) -- a bad print or a split that was adjusted only partly; or
* the move is *split-sized*: ``max(r_t, 1 / r_t)`` lies within ``split_tolerance``
  (default 5 %) of a common split ratio in :data:`SPLIT_RATIOS` (2, 3, 4, 5, 10, 3:2, ...)
  -- an unadjusted (reverse) split, which does not revert.

A real crash of 30 % that stays down is no jump (under 40 %), and a 60 % crash that
stays down is not split-sized (ratio 2.5), so neither warns. A 50 % crash that stays
down looks like a 2:1 split and does warn: check it against the corporate actions.

**zero volume**: at least ``zero_volume_bars`` (default 5) consecutive bars with volume 0.

**stale price**: at least ``stale_bars`` (default 5) consecutive bars with the same close.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np

from sb3_trading.data.market_data import MarketData

logger = logging.getLogger(__name__)

#: split (and reverse split) ratios that an unadjusted price jump is compared with
SPLIT_RATIOS = (1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 15.0, 20.0, 25.0, 30.0, 50.0, 100.0)


class SuspectDataWarning(UserWarning):
    """Data that is valid but probably wrong (an unadjusted split, zero-volume or stale runs)."""


def _when(data: MarketData, row: int) -> str:
    if data.timestamps is None:
        return f"row {row}"
    stamp = np.datetime_as_string(data.timestamps[row], unit="s").replace("T00:00:00", "")
    return f"row {row} ({stamp})"


def _runs(flags: np.ndarray, min_length: int) -> list[tuple[int, int]]:
    """``(start, length)`` of every run of ``True`` in ``flags`` ``(T,)`` at least ``min_length`` long."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.diff(padded)
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(a), int(b - a)) for a, b in zip(starts, stops, strict=True) if b - a >= min_length]


def _jumps(close: np.ndarray, max_move: float, revert_bars: int, split_tolerance: float) -> list[tuple[int, float, str]]:
    """``(row, move, why)`` for each suspect jump of one close series ``(T,)`` (see the module rules)."""
    ratio = close[1:] / close[:-1]
    found = []
    for i in np.flatnonzero(np.abs(ratio - 1.0) > max_move):
        row, r = int(i) + 1, float(ratio[i])
        later = close[row + 1 : row + 1 + revert_bars] / close[row - 1]
        if later.size and np.any(np.abs(np.log(later)) <= abs(np.log(r)) / 2):
            found.append((row, r - 1.0, f"reverts within {revert_bars} bars (a bad print?)"))
            continue
        size = max(r, 1.0 / r)
        near = [s for s in SPLIT_RATIOS if abs(size / s - 1.0) <= split_tolerance]
        if near:
            kind = "split" if r < 1 else "reverse split"
            found.append((row, r - 1.0, f"a ratio of {size:.3g}, close to a {near[0]:g}:1 {kind} (unadjusted?)"))
    return found


def check_data_quality(
    data: MarketData,
    *,
    max_move: float = 0.4,
    revert_bars: int = 5,
    split_tolerance: float = 0.05,
    zero_volume_bars: int = 5,
    stale_bars: int = 5,
    warn: bool = True,
    stacklevel: int = 2,
) -> list[str]:
    """Find suspect data (rules in the module docstring) and warn once per asset and kind.

    :param data: the market to check.
    :param max_move: one-bar move (fraction, ``0.4`` = 40 %) beyond which a jump is examined.
    :param revert_bars: bars after a jump within which a return counts as reverting.
    :param split_tolerance: relative distance of the jump ratio to a split ratio.
    :param zero_volume_bars: shortest run of zero-volume bars that warns.
    :param stale_bars: shortest run of bars with an unchanged close that warns.
    :param warn: emit :class:`SuspectDataWarning` (else only return the messages).
    :param stacklevel: passed to :func:`warnings.warn` (2: the caller of this function).
    :return: the messages, one per finding (asset and kind), in asset order.
    """
    if not max_move > 0 or revert_bars < 1 or zero_volume_bars < 2 or stale_bars < 2:
        raise ValueError(
            f"check_data_quality needs max_move > 0, revert_bars >= 1, zero_volume_bars >= 2 and stale_bars >= 2, got "
            f"{max_move}, {revert_bars}, {zero_volume_bars}, {stale_bars}"
        )
    messages = []
    for j, asset in enumerate(data.asset_names):
        close = data.prices[:, j]
        jumps = _jumps(close, max_move, revert_bars, split_tolerance)
        if jumps:
            row, move, why = jumps[0]
            more = f" ({len(jumps)} such jumps, rows {[r for r, _, _ in jumps[:5]]})" if len(jumps) > 1 else ""
            messages.append(
                f"asset {asset!r}: close moves {move:+.0%} in one bar at {_when(data, row)} "
                f"({close[row - 1]:g} -> {close[row]:g}), {why}{more}; adjust the prices for splits or fix the bad rows"
            )
        stale = _runs(np.concatenate([[False], close[1:] == close[:-1]]), stale_bars - 1)
        if stale:
            start, length = stale[0]
            messages.append(
                f"asset {asset!r}: close stays at {close[start]:g} for {length + 1} bars from {_when(data, start - 1)} "
                f"({len(stale)} runs of >= {stale_bars} unchanged closes); stale or forward-filled prices?"
            )
        if data.volume is not None:
            zero = _runs(data.volume[:, j] == 0, zero_volume_bars)
            if zero:
                start, length = zero[0]
                messages.append(
                    f"asset {asset!r}: volume is 0 for {length} bars from {_when(data, start)} ({len(zero)} runs of "
                    f">= {zero_volume_bars} zero-volume bars); no trading, or a missing volume feed?"
                )
    for message in messages:
        logger.info("suspect data: %s", message)
        if warn:
            warnings.warn(message, SuspectDataWarning, stacklevel=stacklevel)
    return messages
