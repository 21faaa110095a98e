"""Build :class:`~sb3_trading.data.market_data.MarketData` from tables: DataFrames, CSV and Parquet files.

Two table layouts are understood (``layout="auto"`` picks **long** when the frame has
a ``symbol`` column, else **wide**):

**wide** -- one row per bar, one column of close prices per asset::

    date        AAA     BBB     vix
    2020-01-02  101.2   55.1    13.2
    2020-01-03  100.9   55.4    14.0

The dates come from ``date_column`` if given, else from a column named ``date``,
``datetime``, ``timestamp`` or ``time`` (any case), else from a ``DatetimeIndex``.
``feature_columns=["vix"]`` marks columns that are features rather than assets; every
other column is an asset (asset order = column order). Wide tables carry close prices
only (no open/high/low/volume).

**long** (tidy) -- one row per (date, symbol)::

    date        symbol  open   high   low    close  volume  sentiment
    2020-01-02  AAA     100.0  101.5  99.8   101.2  1.2e6   0.3
    2020-01-02  BBB     54.9   55.3   54.6   55.1   8.0e5   -0.1

Column names are matched case-insensitively; ``open``, ``high``, ``low`` and ``volume``
are optional and ``price_field`` names the column used as close prices. Data is
pivoted to ``(T, N)`` arrays; **the asset order is the order in which symbols first
appear in the table**. Columns named in ``feature_columns`` are per (date, symbol)
and become one feature column per asset named ``"<column>[<symbol>]"``, ordered
column-major (``sentiment[AAA], sentiment[BBB], ...``), the naming used by
:func:`~sb3_trading.data.synthetic.make_regime_market`. Other extra columns are ignored.

Nothing is repaired silently. Every problem raises ``ValueError`` (``TypeError`` for a
non-numeric column) naming the column, the symbol and the date/row: missing or
unparsable dates, NaN/inf, non-positive prices, negative volume, unsorted or
duplicate dates (wide), duplicate (date, symbol) pairs or dates that go backwards
within a symbol (long), and assets that do not share one date grid (long; nothing is
forward-filled or dropped -- trim or fill the data yourself). Rows in messages are
0-based positions in the frame (for a CSV file: data lines after the header).
Timezone-aware dates are converted to UTC and made naive.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sb3_trading.data.market_data import MarketData

logger = logging.getLogger(__name__)

LAYOUTS = ("auto", "wide", "long")
DATE_COLUMN_CANDIDATES = ("date", "datetime", "timestamp", "time")
LONG_OHLCV_FIELDS = ("open", "high", "low", "volume")
CSV_SUFFIXES = (".csv", ".csv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")
PARQUET_INSTALL_HINT = 'pip install "sb3-trading[parquet]"'

PathLike = str | os.PathLike[str]


# ----------------------------------------------------------------------------- helpers
def _fmt_time(value: np.datetime64) -> str:
    """``2020-01-03`` for midnight, else the full ISO time."""
    stamp = pd.Timestamp(value)
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.isoformat()


def _find_column(df: pd.DataFrame, name: Any) -> Any | None:
    """The column called ``name`` (exact match first, then case-insensitive), or ``None``."""
    if name in df.columns:
        return name
    key = str(name).lower()
    matches = [column for column in df.columns if str(column).lower() == key]
    if len(matches) > 1:
        raise ValueError(f"column {name!r} is ambiguous: the frame has {matches} (names are matched case-insensitively)")
    return matches[0] if matches else None


def _parse_dates(values: pd.Series | pd.Index, label: str) -> np.ndarray:
    """Parse dates to naive UTC ``datetime64[ns]``, shape ``(T,)``; raise naming the bad row."""
    series = pd.Series(values).reset_index(drop=True)
    if pd.api.types.is_numeric_dtype(series.dtype):
        raise ValueError(
            f"date column {label!r} holds numbers (dtype {series.dtype}), which would be read as nanoseconds since "
            f"1970; convert it first, e.g. pd.to_datetime(df[{label!r}], format='%Y%m%d') or unit='s'"
        )
    try:
        parsed = pd.to_datetime(series, utc=True)
    except (TypeError, ValueError, OverflowError) as exc:
        try:
            with warnings.catch_warnings():  # only locating the bad value: the format warning was shown already
                warnings.simplefilter("ignore", UserWarning)
                coerced = pd.to_datetime(series, utc=True, errors="coerce")
            bad = np.flatnonzero(coerced.isna().to_numpy() & series.notna().to_numpy())
        except (TypeError, ValueError, OverflowError):
            bad = np.zeros(0, dtype=np.int64)
        if bad.size:
            row = int(bad[0])
            raise ValueError(
                f"date column {label!r} has a value that is not a date: {series.iloc[row]!r} at row {row}"
            ) from exc
        raise ValueError(f"date column {label!r} could not be parsed as dates: {exc}") from exc
    missing = np.flatnonzero(parsed.isna().to_numpy())
    if missing.size:
        raise ValueError(f"date column {label!r} has a missing date at row {int(missing[0])}")
    try:
        # as_unit("ns") raises where a plain cast from pandas' default "us" would wrap around silently
        return parsed.dt.tz_convert(None).dt.as_unit("ns").to_numpy()
    except pd.errors.OutOfBoundsDatetime as exc:
        raise ValueError(f"date column {label!r} has dates outside 1677-09-22..2262-04-11: {exc}") from exc


def _resolve_dates(df: pd.DataFrame, date_column: Any | None) -> tuple[np.ndarray, str, Any | None]:
    """Find and parse the dates.

    :return: dates ``(T,)`` as ``datetime64[ns]``, a label for messages, and the column
        that held them (``None`` when they came from the index).
    """
    index_name = df.index.name
    if date_column is not None:
        column = _find_column(df, date_column)
        if column is not None:
            return _parse_dates(df[column], str(column)), str(column), column
        if index_name is not None and str(index_name).lower() == str(date_column).lower():
            return _parse_dates(df.index, str(index_name)), str(index_name), None
        raise ValueError(f"date_column {date_column!r} not found; the frame has columns {list(df.columns)}")
    for candidate in DATE_COLUMN_CANDIDATES:
        column = _find_column(df, candidate)
        if column is not None:
            return _parse_dates(df[column], str(column)), str(column), column
    if isinstance(df.index, pd.DatetimeIndex) or (
        index_name is not None and str(index_name).lower() in DATE_COLUMN_CANDIDATES
    ):
        label = "index" if index_name is None else str(index_name)
        return _parse_dates(df.index, label), label, None
    raise ValueError(
        f"no date column found: expected a column named one of {DATE_COLUMN_CANDIDATES} (any case) or a "
        f"DatetimeIndex; pass date_column=... to name it. The frame has columns {list(df.columns)}"
    )


def _numeric_column(df: pd.DataFrame, column: Any, where: Callable[[int], str]) -> np.ndarray:
    """Column as float64 ``(rows,)``; ``TypeError`` naming the first non-numeric value."""
    series = df[column]
    dtype = series.dtype
    if not pd.api.types.is_numeric_dtype(dtype):
        if not (pd.api.types.is_object_dtype(dtype) or pd.api.types.is_string_dtype(dtype)):
            raise TypeError(f"column {str(column)!r} is not numeric (dtype {dtype}); convert it to numbers before loading")
        converted = pd.to_numeric(series, errors="coerce")
        bad = np.flatnonzero(converted.isna().to_numpy() & series.notna().to_numpy())
        if bad.size:
            row = int(bad[0])
            raise TypeError(
                f"column {str(column)!r} is not numeric (dtype {dtype}): value {series.iloc[row]!r} {where(row)}; "
                "convert it to numbers (or drop the column) before loading"
            )
        series = converted
    return series.to_numpy(dtype=np.float64, na_value=np.nan)


def _numeric_block(df: pd.DataFrame, columns: Sequence[Any], where: Callable[[int], str]) -> np.ndarray:
    """Columns as one float64 array of shape ``(rows, len(columns))``."""
    if not columns:
        return np.zeros((len(df), 0), dtype=np.float64)
    return np.column_stack([_numeric_column(df, column, where) for column in columns])


def _check_finite(values: np.ndarray, labels: Sequence[str], where: Callable[[int], str]) -> None:
    """Raise naming the column and row of the first NaN/inf in ``values`` ``(rows, k)``."""
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        kind = "NaN" if np.isnan(values[row, col]) else "inf"
        raise ValueError(
            f"column {labels[col]!r} has {kind} {where(row)} ({int(bad[:, col].sum())} non-finite values in that "
            "column); clean or drop them before loading"
        )


def _check_positive(values: np.ndarray, labels: Sequence[str], where: Callable[[int], str], strict: bool = True) -> None:
    """Raise naming the column and row of the first value ``<= 0`` (``< 0`` if not ``strict``)."""
    bad = values <= 0 if strict else values < 0
    if bad.any():
        row, col = (int(i) for i in np.argwhere(bad)[0])
        bound = "> 0" if strict else ">= 0"
        raise ValueError(f"column {labels[col]!r} has value {float(values[row, col])!r} {where(row)}; it must be {bound}")


def _feature_list(feature_columns: Sequence[Any] | str | None) -> list[Any]:
    if feature_columns is None:
        return []
    if isinstance(feature_columns, str):
        return [feature_columns]
    return list(feature_columns)


def _resolve_features(df: pd.DataFrame, feature_columns: list[Any], reserved: dict[Any, str]) -> list[Any]:
    """Map requested feature names to frame columns; ``reserved`` maps columns that may not be features."""
    resolved = [_find_column(df, name) for name in feature_columns]
    missing = [name for name, column in zip(feature_columns, resolved, strict=True) if column is None]
    if missing:
        raise ValueError(f"feature_columns {missing} not found in the frame; it has columns {list(df.columns)}")
    for name, column in zip(feature_columns, resolved, strict=True):
        if column in reserved:
            raise ValueError(f"feature_columns entry {name!r} is the {reserved[column]} and cannot be a feature")
    if len(set(resolved)) != len(resolved):
        raise ValueError(f"feature_columns has duplicates: {feature_columns}")
    return resolved


# ----------------------------------------------------------------------------- wide
def _from_wide(
    df: pd.DataFrame, dates: np.ndarray, date_label: str, date_col: Any | None, feature_columns: list[Any]
) -> MarketData:
    reserved = {} if date_col is None else {date_col: "date column"}
    feature_cols = _resolve_features(df, feature_columns, reserved)
    excluded = set(feature_cols) | set(reserved)
    asset_cols = [column for column in df.columns if column not in excluded]
    if not asset_cols:
        raise ValueError(
            f"no asset columns: every column of {list(df.columns)} is the date column or a feature column; "
            "a wide frame needs one close-price column per asset"
        )

    def where(row: int) -> str:
        return f"at {_fmt_time(dates[row])} (row {row})"

    steps = np.diff(dates)
    backwards = np.flatnonzero(steps < np.timedelta64(0, "ns"))
    if backwards.size:
        row = int(backwards[0]) + 1
        raise ValueError(
            f"dates in {date_label!r} are not sorted: {_fmt_time(dates[row])} (row {row}) comes after "
            f"{_fmt_time(dates[row - 1])} (row {row - 1}); sort the rows by date first"
        )
    repeated = np.flatnonzero(steps == np.timedelta64(0, "ns"))
    if repeated.size:
        row = int(repeated[0]) + 1
        raise ValueError(
            f"duplicate date {_fmt_time(dates[row])} in {date_label!r} at rows {row - 1} and {row}; "
            "each bar must have a unique date"
        )

    asset_names = [str(column) for column in asset_cols]
    prices = _numeric_block(df, asset_cols, where)
    _check_finite(prices, asset_names, where)
    _check_positive(prices, asset_names, where)
    feature_names = [str(column) for column in feature_cols]
    features = _numeric_block(df, feature_cols, where)
    _check_finite(features, feature_names, where)
    return MarketData(prices=prices, features=features, timestamps=dates, asset_names=asset_names, feature_names=feature_names)


# ----------------------------------------------------------------------------- long
def _check_long_grid(present: np.ndarray, grid_dates: np.ndarray, asset_names: Sequence[str]) -> None:
    """Every asset must have a row on every date; ``present`` is the ``(T, N)`` bool coverage mask."""
    if present.all():
        return
    n_dates = present.shape[0]
    first = present.argmax(axis=0)
    last = n_dates - 1 - present[::-1].argmax(axis=0)
    lo, hi = int(first.max()), int(last.min())
    common = f"{_fmt_time(grid_dates[lo])}..{_fmt_time(grid_dates[hi])}" if lo <= hi else "empty (the assets share no dates)"
    short = np.flatnonzero((first > 0) | (last < n_dates - 1))
    if short.size:
        j = int(short[0])
        raise ValueError(
            f"asset {asset_names[j]!r} has dates {_fmt_time(grid_dates[first[j]])}..{_fmt_time(grid_dates[last[j]])} "
            f"but the assets together span {_fmt_time(grid_dates[0])}..{_fmt_time(grid_dates[-1])}; the range common "
            f"to all assets is {common}. All assets must share one date grid: trim the data to the common range or "
            "fill the gaps yourself (nothing is forward-filled or dropped)"
        )
    j = int(np.flatnonzero(~present.all(axis=0))[0])
    gaps = np.flatnonzero(~present[:, j])
    raise ValueError(
        f"asset {asset_names[j]!r} has no row for {_fmt_time(grid_dates[gaps[0]])} ({gaps.size} of {n_dates} dates "
        "missing) although other assets have one; all assets must share one date grid: fill or drop those dates "
        "yourself (nothing is forward-filled or dropped)"
    )


def _from_long(
    df: pd.DataFrame,
    dates: np.ndarray,
    date_label: str,
    date_col: Any | None,
    symbol_col: Any,
    price_field: str,
    feature_columns: list[Any],
) -> MarketData:
    price_col = _find_column(df, price_field)
    if price_col is None:
        raise ValueError(
            f"long layout needs a price column {price_field!r} (price_field); the frame has columns {list(df.columns)}"
        )
    fields: dict[str, Any] = {"close": price_col}
    for name in LONG_OHLCV_FIELDS:
        column = _find_column(df, name)
        if column is not None:
            fields[name] = column
    reserved = {symbol_col: "symbol column"}
    if date_col is not None:
        reserved[date_col] = "date column"
    feature_cols = _resolve_features(df, feature_columns, reserved)
    ignored = [c for c in df.columns if c not in set(fields.values()) | set(feature_cols) | set(reserved)]
    if ignored:
        logger.debug("long layout: ignoring columns %s (name them in feature_columns to keep them)", ignored)

    symbols = df[symbol_col]
    no_symbol = np.flatnonzero(symbols.isna().to_numpy())
    if no_symbol.size:
        row = int(no_symbol[0])
        raise ValueError(f"symbol column {str(symbol_col)!r} is missing a value at {_fmt_time(dates[row])} (row {row})")
    codes, uniques = pd.factorize(symbols, sort=False)  # order of first appearance
    asset_names = [str(symbol) for symbol in uniques]
    if len(set(asset_names)) != len(asset_names):
        raise ValueError(f"symbols {list(uniques)} are not unique once converted to strings")

    def where(row: int) -> str:
        return f"for symbol {asset_names[codes[row]]!r} at {_fmt_time(dates[row])} (row {row})"

    grid_dates, date_codes = np.unique(dates, return_inverse=True)
    n_dates, n_assets = len(grid_dates), len(asset_names)
    keys = date_codes.astype(np.int64) * n_assets + codes
    duplicated = pd.Series(keys).duplicated(keep=False).to_numpy()
    if duplicated.any():
        row = int(np.flatnonzero(duplicated)[0])
        rows = np.flatnonzero(keys == keys[row]).tolist()
        raise ValueError(
            f"duplicate (date, symbol) pair ({_fmt_time(dates[row])}, {asset_names[codes[row]]!r}) at rows {rows}; "
            "each symbol may have only one row per date"
        )
    order = np.argsort(codes, kind="stable")  # rows grouped by symbol, file order kept within a symbol
    same_symbol = codes[order][1:] == codes[order][:-1]
    backwards = np.flatnonzero(same_symbol & (dates[order][1:] < dates[order][:-1]))
    if backwards.size:
        prev, row = int(order[backwards[0]]), int(order[backwards[0] + 1])
        raise ValueError(
            f"dates of symbol {asset_names[codes[row]]!r} are not increasing: {_fmt_time(dates[row])} (row {row}) "
            f"comes after {_fmt_time(dates[prev])} (row {prev}); sort the rows by date within each symbol first"
        )

    field_names = list(fields)
    feature_labels = [str(column) for column in feature_cols]
    block = _numeric_block(df, [*fields.values(), *feature_cols], where)
    _check_finite(block, [str(column) for column in fields.values()] + feature_labels, where)
    for k, name in enumerate(field_names):
        _check_positive(block[:, k : k + 1], [str(fields[name])], where, strict=name != "volume")
    n_fields = len(field_names)

    present = np.zeros((n_dates, n_assets), dtype=bool)
    present[date_codes, codes] = True
    _check_long_grid(present, grid_dates, asset_names)
    grid = np.empty((n_dates, n_assets, block.shape[1]), dtype=np.float64)
    grid[date_codes, codes] = block
    arrays = {name: grid[:, :, k] for k, name in enumerate(field_names)}
    # (T, N, F) -> (T, F, N) -> (T, F * N): all assets of the first feature, then the next feature
    features = grid[:, :, n_fields:].transpose(0, 2, 1).reshape(n_dates, -1)
    feature_names = [f"{label}[{asset}]" for label in feature_labels for asset in asset_names]
    return MarketData(
        prices=arrays.pop("close"),
        features=features,
        timestamps=grid_dates,
        asset_names=asset_names,
        feature_names=feature_names,
        **arrays,
    )


# ----------------------------------------------------------------------------- public API
def from_dataframe(
    df: pd.DataFrame,
    layout: str = "auto",
    date_column: str | None = None,
    symbol_column: str = "symbol",
    price_field: str = "close",
    feature_columns: Sequence[str] | None = None,
    min_rows: int | None = None,
) -> MarketData:
    """Build a validated :class:`MarketData` from a wide or long DataFrame (see the module docstring).

    :param df: the table; it is not modified.
    :param layout: ``"wide"``, ``"long"`` or ``"auto"`` (long if ``symbol_column`` exists, else wide).
    :param date_column: column holding the dates; default: a column named ``date``, ``datetime``,
        ``timestamp`` or ``time`` (any case), else the ``DatetimeIndex``.
    :param symbol_column: long layout: column naming the asset of each row.
    :param price_field: long layout: column used as close prices (``MarketData.prices``).
    :param feature_columns: wide: columns that are features, not assets (kept as named);
        long: per-(date, symbol) columns that become features ``"<column>[<symbol>]"``.
    :param min_rows: if given, raise ``ValueError`` when the data has fewer rows ``T``.
    :return: ``MarketData`` with prices ``(T, N)``, features ``(T, F)``, timestamps ``(T,)``
        (``datetime64[ns]``), plus open/high/low/volume ``(T, N)`` when a long table has them.
    :raises ValueError: bad layout, missing columns, missing/unsorted/duplicate dates, NaN/inf,
        non-positive prices, assets on different date grids, too few rows.
    :raises TypeError: a price/feature column that is not numeric.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"from_dataframe() needs a pandas DataFrame, got {type(df).__name__}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if min_rows is not None and (isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1):
        raise ValueError(f"min_rows must be a positive int or None, got {min_rows!r}")
    if len(df) == 0 or len(df.columns) == 0:
        raise ValueError(f"the frame is empty (shape {df.shape})")
    if df.columns.has_duplicates:
        raise ValueError(f"the frame has duplicate column names: {df.columns[df.columns.duplicated()].tolist()}")
    features = _feature_list(feature_columns)
    symbol_col = _find_column(df, symbol_column)
    if layout == "auto":
        layout = "wide" if symbol_col is None else "long"
    if layout == "long" and symbol_col is None:
        raise ValueError(
            f"long layout needs a symbol column {symbol_column!r} (symbol_column); the frame has columns {list(df.columns)}"
        )
    dates, date_label, date_col = _resolve_dates(df, date_column)
    if layout == "wide":
        data = _from_wide(df, dates, date_label, date_col, features)
    else:
        data = _from_long(df, dates, date_label, date_col, symbol_col, price_field, features)
    if min_rows is not None and data.n_steps < min_rows:
        raise ValueError(
            f"the data has {data.n_steps} rows but min_rows={min_rows}; an environment with look-back window w "
            "needs at least w + 2 rows (see MarketData.require_rows)"
        )
    logger.debug("loaded %r from a %s frame", data, layout)
    return data


def load_csv(path: PathLike, *, read_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> MarketData:
    """Load a CSV file (``.csv`` or compressed, e.g. ``.csv.gz``) with :func:`pandas.read_csv`.

    Dates are parsed by :func:`from_dataframe` (they need not be parsed on reading).

    :param path: file path.
    :param read_kwargs: extra keyword arguments for :func:`pandas.read_csv` (``sep``, ``usecols``, ...).
    :param kwargs: passed to :func:`from_dataframe` (``layout``, ``date_column``, ``feature_columns``, ...).
    :return: the validated market data.
    """
    frame = pd.read_csv(path, **(read_kwargs or {}))
    return from_dataframe(frame, **kwargs)


def load_parquet(path: PathLike, *, read_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> MarketData:
    """Load a Parquet file with :func:`pandas.read_parquet` (needs ``pyarrow``).

    :param path: file path.
    :param read_kwargs: extra keyword arguments for :func:`pandas.read_parquet` (``columns``, ``filters``, ...).
    :param kwargs: passed to :func:`from_dataframe`.
    :return: the validated market data.
    :raises ImportError: if ``pyarrow`` is not installed, with the install hint.
    """
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"reading Parquet files needs pyarrow: {PARQUET_INSTALL_HINT}") from exc
    frame = pd.read_parquet(path, engine="pyarrow", **(read_kwargs or {}))
    return from_dataframe(frame, **kwargs)


def load_market_data(path: PathLike, **kwargs: Any) -> MarketData:
    """Load a CSV or Parquet file, chosen by suffix: ``.csv``, ``.csv.gz`` -> :func:`load_csv`;
    ``.parquet``, ``.pq`` -> :func:`load_parquet`.

    :param path: file path.
    :param kwargs: passed to the loader (``read_kwargs`` and :func:`from_dataframe` arguments).
    :return: the validated market data.
    :raises ValueError: unknown suffix.
    """
    name = Path(path).name.lower()
    if name.endswith(CSV_SUFFIXES):
        return load_csv(path, **kwargs)
    if name.endswith(PARQUET_SUFFIXES):
        return load_parquet(path, **kwargs)
    raise ValueError(f"unknown file type {Path(path).name!r}: expected a suffix in {CSV_SUFFIXES + PARQUET_SUFFIXES}")
