"""``MarketData``: validated, aligned float arrays for one market.

Every environment, feature function and baseline in ``sb3_trading`` reads its
data from a :class:`MarketData`. It holds NumPy arrays only (no pandas), so that
environments can index them in ``step`` at NumPy speed.

Shapes (``T`` bars, ``N`` assets, ``F`` extra feature columns):

===============  ==========  ===============================================
field            shape       meaning
===============  ==========  ===============================================
``prices``       ``(T, N)``  close prices, strictly positive, finite
``features``     ``(T, F)``  user-supplied extra features (may have ``F=0``)
``open``         ``(T, N)``  optional open prices (needed by ``next_open``)
``high``         ``(T, N)``  optional high prices
``low``          ``(T, N)``  optional low prices
``volume``       ``(T, N)``  optional volumes, finite and ``>= 0``
``spread``       ``(T, N)``  optional quoted bid-ask spreads (ask - bid) in price units, finite and ``>= 0``
                             (read by ``CostModel(half_spread_bps="data")``)
``timestamps``   ``(T,)``    optional ``datetime64[ns]`` (naive UTC), strictly increasing
                             (within each path, see below)
===============  ==========  ===============================================

**Paths.** A ``MarketData`` may hold several independent paths of the same market laid end to end
(a bank of resampled training markets, :func:`stack_paths`): ``path_starts`` lists the first row of
each path (``(0,)`` for one path). Nothing crosses a path boundary: the envs compute indicators and
causal normalisation per path and never start, run or end an episode across one, and timestamps need
only increase within a path (each path may carry the same dates).

Besides the arrays it carries its calendar: ``periods_per_year`` (bars per year,
inferred from the timestamps by :func:`~sb3_trading.data.calendar.infer_calendar`
unless given), ``calendar`` (how that number came about) and ``timezone`` (the
zone the source timestamps were in, if they had one). All three travel through
every slice, split and asset selection, so no caller passes them by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sb3_trading.data.calendar import check_periods_per_year, infer_calendar

OHLCV_FIELDS = ("open", "high", "low", "volume", "spread")
#: the optional fields that may be 0 (the others are prices, > 0)
NON_NEGATIVE_FIELDS = ("volume", "spread")
#: relative tolerance when checking that open and close lie within [low, high]
BAR_TOLERANCE = 1e-9


def _row_label(timestamps: np.ndarray | None, row: int) -> str:
    """Human-readable name of a row for error messages."""
    if timestamps is None:
        return f"row {row}"
    return f"row {row} ({np.datetime_as_string(timestamps[row], unit='s')})"


def _as_datetime64(values: Any) -> np.ndarray:
    """``(T,)`` ``datetime64[ns]`` via pandas, which raises on out-of-range dates instead of wrapping around."""
    import pandas as pd

    try:
        index = pd.DatetimeIndex(np.asarray(values).reshape(-1) if not isinstance(values, pd.Index) else values)
        if index.tz is not None:
            index = index.tz_convert("UTC").tz_localize(None)
        return index.as_unit("ns").to_numpy(copy=True)
    except (TypeError, ValueError, OverflowError, pd.errors.OutOfBoundsDatetime) as exc:
        raise TypeError(f"MarketData.timestamps could not be read as datetimes: {exc}") from exc


def _as_2d_float(name: str, values: Any) -> np.ndarray:
    try:
        array = np.array(values, dtype=np.float64)  # copy: MarketData owns its arrays
    except (TypeError, ValueError) as exc:
        raise TypeError(f"MarketData.{name} must be numeric, got {type(values).__name__}: {exc}") from exc
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise ValueError(f"MarketData.{name} must have shape (T, n), got shape {array.shape}")
    return array


def _check_path_starts(path_starts: Sequence[int] | None, n_rows: int) -> tuple[int, ...]:
    """``path_starts`` as a tuple of ints ``0 = s_0 < s_1 < ... < n_rows``, or ``ValueError`` saying what is wrong."""
    if path_starts is None:
        return (0,)
    try:
        starts = tuple(int(s) for s in path_starts)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"MarketData.path_starts must be a sequence of row numbers, got {path_starts!r}") from exc
    increasing = all(b > a for a, b in zip(starts[:-1], starts[1:], strict=True))
    if not starts or starts[0] != 0 or not increasing or starts[-1] >= n_rows:
        raise ValueError(
            f"MarketData.path_starts must increase from 0 and stay below the {n_rows} rows "
            f"(the first row of each path), got {list(starts)}"
        )
    return starts


def stack_paths(paths: Sequence[MarketData]) -> MarketData:
    """Several paths of one market (same assets, features and fields) laid end to end as one ``MarketData``.

    The result's ``path_starts`` mark where each path begins; its calendar is the first path's (given
    explicitly, so the repeated dates of the paths do not confuse the inference).

    :param paths: one-path ``MarketData`` (a multi-path one contributes its paths), at least one.
    :raises ValueError: no paths, or paths whose assets, features or OHLCV fields differ.
    """
    paths = [p for data in paths for p in (data.paths() if data.n_paths > 1 else [data])]
    if not paths:
        raise ValueError("stack_paths needs at least one MarketData path")
    first = paths[0]
    for k, data in enumerate(paths[1:], start=1):
        if data.asset_names != first.asset_names or data.feature_names != first.feature_names:
            raise ValueError(
                f"path {k} has assets {list(data.asset_names)} and features {list(data.feature_names)}, path 0 has "
                f"{list(first.asset_names)} and {list(first.feature_names)}: paths must describe the same market"
            )
        present = [(getattr(data, f) is None) for f in (*OHLCV_FIELDS, "timestamps")]
        if present != [(getattr(first, f) is None) for f in (*OHLCV_FIELDS, "timestamps")]:
            raise ValueError(f"path {k} does not have the same {'/'.join(OHLCV_FIELDS)}/timestamps fields as path 0")
    if len(paths) == 1:
        return first
    lengths = np.cumsum([0, *(p.n_steps for p in paths)])
    fields: dict[str, Any] = {
        f: None if getattr(first, f) is None else np.concatenate([getattr(p, f) for p in paths])
        for f in (*OHLCV_FIELDS, "timestamps")
    }
    return MarketData(
        prices=np.concatenate([p.prices for p in paths]),
        features=np.concatenate([p.features for p in paths]),
        asset_names=first.asset_names,
        feature_names=first.feature_names,
        periods_per_year=first.periods_per_year,
        calendar=first.calendar,
        timezone=first.timezone,
        path_starts=tuple(int(n) for n in lengths[:-1]),
        **fields,
    )


def _check_finite(name: str, array: np.ndarray, columns: Sequence[str], timestamps: np.ndarray | None) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        kind = "NaN" if np.isnan(array[row, col]) else "inf"
        raise ValueError(
            f"{name} column {columns[col]!r} has {kind} at {_row_label(timestamps, row)} "
            f"({int(bad[:, col].sum())} non-finite values in that column); clean or drop them before loading"
        )


def _check_inside_bar(
    name: str,
    values: np.ndarray,
    low: np.ndarray | None,
    high: np.ndarray | None,
    columns: Sequence[str],
    timestamps: np.ndarray | None,
) -> None:
    """Raise naming the asset and row where ``values`` ``(T, N)`` lies outside ``[low, high]``.

    A relative tolerance of :data:`BAR_TOLERANCE` absorbs rounding (e.g. of adjusted prices).
    """
    for bound, side in ((low, "low"), (high, "high")):
        if bound is None:
            continue
        slack = BAR_TOLERANCE * np.abs(bound)
        bad = values < bound - slack if side == "low" else values > bound + slack
        if bad.any():
            row, col = np.argwhere(bad)[0]
            relation = "below the low" if side == "low" else "above the high"
            raise ValueError(
                f"{name} of asset {columns[col]!r} is {relation} at {_row_label(timestamps, row)} "
                f"({name}={float(values[row, col])}, {side}={float(bound[row, col])}; {int(bad[:, col].sum())} such rows); "
                "a bar's open and close must lie within [low, high]: fix or drop those rows"
            )


@dataclass(frozen=True, eq=False)
class MarketData:
    """Aligned, validated market arrays for ``N`` assets over ``T`` bars.

    Construction validates everything and raises ``ValueError`` naming the
    offending column and row: non-finite values, non-positive prices, negative volumes or spreads,
    misaligned shapes, unsorted or duplicate timestamps, ``high < low``, and
    closes or opens outside ``[low, high]`` (relative tolerance ``1e-9``).

    :param prices: close prices, shape ``(T, N)`` (a 1-D array is one asset).
    :param features: extra per-bar features, shape ``(T, F)``; ``None`` means ``F = 0``.
    :param timestamps: bar times, shape ``(T,)``, anything ``numpy.datetime64`` accepts.
    :param asset_names: ``N`` unique names; default ``asset_0 ...``.
    :param feature_names: ``F`` unique names; default ``feature_0 ...``.
    :param open: optional open prices ``(T, N)``.
    :param high: optional high prices ``(T, N)``.
    :param low: optional low prices ``(T, N)``.
    :param volume: optional volumes ``(T, N)``.
    :param spread: optional quoted bid-ask spreads ``(T, N)``: ask - bid in price units, ``>= 0`` (a friction's
        half-spread is half of it).
    :param periods_per_year: bars per year (``> 0``) used to annualise metrics and accrue interest;
        ``None`` infers it from ``timestamps`` (252 without them, stated in ``calendar``).
    :param calendar: a description of the calendar; ``None`` fills it in.
    :param timezone: the time zone of the source timestamps (e.g. ``"America/New_York"``); the
        ``timestamps`` themselves are always naive UTC.
    :param path_starts: first row of each independent path (increasing, starting at 0); ``None`` is one path.
    """

    prices: np.ndarray
    features: np.ndarray | None = None
    timestamps: np.ndarray | None = None
    asset_names: Sequence[str] | None = None
    feature_names: Sequence[str] | None = None
    open: np.ndarray | None = None
    high: np.ndarray | None = None
    low: np.ndarray | None = None
    volume: np.ndarray | None = None
    spread: np.ndarray | None = None
    periods_per_year: float | None = None
    calendar: str | None = None
    timezone: str | None = None
    path_starts: Sequence[int] | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        prices = _as_2d_float("prices", self.prices)
        n_rows, n_assets = prices.shape
        if n_rows == 0 or n_assets == 0:
            raise ValueError(f"MarketData.prices is empty (shape {prices.shape}); need at least one row and one asset")
        path_starts = _check_path_starts(self.path_starts, n_rows)
        set_(self, "path_starts", path_starts)

        timestamps = None
        if self.timestamps is not None:
            timestamps = _as_datetime64(self.timestamps)
            if len(timestamps) != n_rows:
                raise ValueError(f"misaligned columns: timestamps have {len(timestamps)} rows but prices have {n_rows}")
            if np.isnat(timestamps).any():
                row = int(np.flatnonzero(np.isnat(timestamps))[0])
                raise ValueError(f"timestamps has a missing value (NaT) at row {row}")
            steps = np.diff(timestamps)
            steps[[start - 1 for start in path_starts[1:]]] = np.timedelta64(1, "ns")  # a new path may restart the clock
            if (steps < np.timedelta64(0, "ns")).any():
                row = int(np.flatnonzero(steps < np.timedelta64(0, "ns"))[0]) + 1
                raise ValueError(
                    f"timestamps are not sorted: {_row_label(timestamps, row)} comes before "
                    f"{_row_label(timestamps, row - 1)}; sort the data by time first"
                )
            if (steps == np.timedelta64(0, "ns")).any():
                row = int(np.flatnonzero(steps == np.timedelta64(0, "ns"))[0]) + 1
                raise ValueError(
                    f"duplicate timestamp at {_row_label(timestamps, row)} (same as row {row - 1}); "
                    "each bar must have a unique time"
                )

        asset_names = self._names("asset_names", self.asset_names, n_assets, "asset")
        _check_finite("prices", prices, asset_names, timestamps)
        if (prices <= 0).any():
            row, col = np.argwhere(prices <= 0)[0]
            raise ValueError(
                f"prices column {asset_names[col]!r} has a non-positive price {float(prices[row, col])} at "
                f"{_row_label(timestamps, row)}; prices must be > 0"
            )

        if self.features is None:
            features = np.zeros((n_rows, 0), dtype=np.float64)
        else:
            features = _as_2d_float("features", self.features)
        if features.shape[0] != n_rows:
            raise ValueError(f"misaligned columns: features have {features.shape[0]} rows but prices have {n_rows}")
        feature_names = self._names("feature_names", self.feature_names, features.shape[1], "feature")
        _check_finite("features", features, feature_names, timestamps)
        clash = sorted(set(feature_names) & set(asset_names))
        if clash:
            raise ValueError(f"feature_names and asset_names must not overlap, both contain {clash}")

        for name in OHLCV_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            array = _as_2d_float(name, value)
            if array.shape != prices.shape:
                raise ValueError(f"misaligned columns: {name} has shape {array.shape} but prices have shape {prices.shape}")
            _check_finite(name, array, asset_names, timestamps)
            bad = array < 0 if name in NON_NEGATIVE_FIELDS else array <= 0
            if bad.any():
                row, col = np.argwhere(bad)[0]
                bound = ">= 0" if name in NON_NEGATIVE_FIELDS else "> 0"
                raise ValueError(
                    f"{name} column {asset_names[col]!r} has value {float(array[row, col])} at "
                    f"{_row_label(timestamps, row)}; it must be {bound}"
                )
            set_(self, name, array)
        if self.high is not None and self.low is not None and (self.high < self.low).any():
            row, col = np.argwhere(self.high < self.low)[0]
            raise ValueError(
                f"high < low for asset {asset_names[col]!r} at {_row_label(timestamps, row)} "
                f"(high={float(self.high[row, col])}, low={float(self.low[row, col])})"
            )
        for name, array in (("close", prices), ("open", self.open)):
            if array is not None:
                _check_inside_bar(name, array, self.low, self.high, asset_names, timestamps)

        for array in (prices, features):
            array.setflags(write=False)
        for name in OHLCV_FIELDS:
            if getattr(self, name) is not None:
                getattr(self, name).setflags(write=False)
        if timestamps is not None:
            timestamps.setflags(write=False)
        if self.periods_per_year is None:
            first_path = None if timestamps is None else timestamps[: self.path_bounds[0][1]]
            periods_per_year, calendar = infer_calendar(first_path)
        else:
            periods_per_year = check_periods_per_year(self.periods_per_year, "MarketData.periods_per_year")
            calendar = f"given: {periods_per_year:g} bars a year"
        set_(self, "periods_per_year", periods_per_year)
        set_(self, "calendar", calendar if self.calendar is None else str(self.calendar))
        set_(self, "timezone", None if self.timezone is None else str(self.timezone))
        set_(self, "prices", prices)
        set_(self, "features", features)
        set_(self, "timestamps", timestamps)
        set_(self, "asset_names", asset_names)
        set_(self, "feature_names", feature_names)

    @staticmethod
    def _names(arg: str, names: Sequence[str] | None, count: int, prefix: str) -> tuple[str, ...]:
        if names is None:
            return tuple(f"{prefix}_{i}" for i in range(count))
        names = tuple(str(name) for name in names)
        if len(names) != count:
            raise ValueError(f"misaligned columns: {arg} has {len(names)} names but the data has {count} columns")
        if len(set(names)) != len(names):
            dupes = sorted({name for name in names if names.count(name) > 1})
            raise ValueError(f"{arg} must be unique, duplicated: {dupes}")
        return names

    # ------------------------------------------------------------------ shape
    @property
    def n_steps(self) -> int:
        """Number of bars ``T``."""
        return int(self.prices.shape[0])

    @property
    def n_assets(self) -> int:
        """Number of assets ``N``."""
        return int(self.prices.shape[1])

    @property
    def n_features(self) -> int:
        """Number of extra feature columns ``F``."""
        return int(self.features.shape[1])

    @property
    def n_paths(self) -> int:
        """Number of independent paths laid end to end (1 for an ordinary market)."""
        return len(self.path_starts)

    @property
    def path_bounds(self) -> list[tuple[int, int]]:
        """``[(start, stop), ...]`` half-open row range of each path."""
        ends = [*self.path_starts[1:], self.n_steps]
        return list(zip(self.path_starts, ends, strict=True))

    def paths(self) -> list[MarketData]:
        """Each path as its own one-path ``MarketData``."""
        return [self.slice(start, stop) for start, stop in self.path_bounds]

    def __len__(self) -> int:
        return self.n_steps

    def __repr__(self) -> str:
        span = ""
        if self.timestamps is not None:
            first, last = (np.datetime_as_string(self.timestamps[i], unit="D") for i in (0, -1))
            span = f", {first}..{last}"
        return (
            f"MarketData(T={self.n_steps}, assets={list(self.asset_names)}, features={self.n_features}{span}, "
            f"periods_per_year={self.periods_per_year:g})"
        )

    def require_rows(self, window: int, extra: int = 2) -> None:
        """Raise ``ValueError`` unless the data has at least ``window + extra`` rows.

        :param window: look-back length an environment needs for one observation.
        :param extra: further rows needed (one decision plus the bar it is marked at).
        """
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        if self.n_steps < window + extra:
            raise ValueError(
                f"window={window} needs at least {window + extra} rows of data, but the data has {self.n_steps}; "
                "use a shorter window or more data"
            )

    # ---------------------------------------------------------------- slicing
    def slice(self, start: int | None = None, stop: int | None = None) -> MarketData:
        """Rows ``start:stop`` by position (half-open, negative indices allowed)."""
        rows = range(self.n_steps)[slice(start, stop)]
        if len(rows) == 0:
            raise ValueError(f"slice({start}, {stop}) of {self.n_steps} rows is empty")
        return self._take(slice(rows.start, rows.stop))

    def between(self, start: Any = None, end: Any = None) -> MarketData:
        """Rows with ``start <= timestamp <= end`` (inclusive dates, like ``DataFrame.loc``).

        :param start: anything ``numpy.datetime64`` accepts (``"2020-01-01"``, ``pd.Timestamp``...), or ``None``.
        :param end: likewise; ``None`` means up to the last row.
        """
        if self.timestamps is None:
            raise ValueError("between() needs timestamps; this MarketData has none (use slice() with row positions)")
        lo = 0 if start is None else int(np.searchsorted(self.timestamps, np.datetime64(start, "ns"), side="left"))
        hi = self.n_steps if end is None else int(np.searchsorted(self.timestamps, np.datetime64(end, "ns"), side="right"))
        if hi <= lo:
            raise ValueError(f"no rows between {start!r} and {end!r} (data spans {self!r})")
        return self._take(slice(lo, hi))

    def split(self, *fractions: float) -> tuple[MarketData, ...]:
        """Chronological split into consecutive pieces, e.g. ``split(0.7, 0.15)`` -> train, validation, test.

        :param fractions: fractions of the rows for the leading pieces; the last piece takes the rest.
        :return: ``len(fractions) + 1`` slices, in time order.
        """
        if not fractions or any(not 0 < f < 1 for f in fractions) or sum(fractions) >= 1:
            raise ValueError(f"split fractions must be in (0, 1) and sum to < 1, got {fractions}")
        bounds = [0, *np.cumsum([round(f * self.n_steps) for f in fractions]).tolist(), self.n_steps]
        sizes = np.diff(bounds)
        if (sizes < 1).any():
            raise ValueError(f"split{fractions} of {self.n_steps} rows leaves an empty piece (sizes {sizes.tolist()})")
        return tuple(self.slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True))

    def select_assets(self, names: Sequence[str]) -> MarketData:
        """The same bars restricted to the named assets (in the given order)."""
        unknown = [name for name in names if name not in self.asset_names]
        if unknown:
            raise ValueError(f"unknown assets {unknown}; available: {list(self.asset_names)}")
        cols = [self.asset_names.index(name) for name in names]
        kwargs = {f: None if getattr(self, f) is None else getattr(self, f)[:, cols] for f in OHLCV_FIELDS}
        return replace(self, prices=self.prices[:, cols], asset_names=tuple(names), **kwargs)

    def _take(self, rows: slice) -> MarketData:
        kwargs: dict[str, Any] = {f: None if getattr(self, f) is None else getattr(self, f)[rows] for f in OHLCV_FIELDS}
        lo, hi = rows.start, rows.stop
        # the paths that overlap the rows, re-based: a slice starts a path wherever it begins
        starts = [0, *(start - lo for start in self.path_starts if lo < start < hi)]
        return replace(
            self,
            prices=self.prices[rows],
            features=self.features[rows],
            timestamps=None if self.timestamps is None else self.timestamps[rows],
            path_starts=tuple(starts),
            **kwargs,
        )

    def to_frame(self):  # -> pandas.DataFrame, imported lazily to keep pandas out of env hot paths
        """Wide ``pandas.DataFrame`` of close prices and features, indexed by timestamp (or row)."""
        import pandas as pd

        index = pd.DatetimeIndex(self.timestamps, name="date") if self.timestamps is not None else None
        columns = {name: self.prices[:, j] for j, name in enumerate(self.asset_names)}
        columns.update({name: self.features[:, j] for j, name in enumerate(self.feature_names)})
        return pd.DataFrame(columns, index=index)
