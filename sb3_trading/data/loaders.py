"""Build :class:`~sb3_trading.data.market_data.MarketData` from tables and files: what the user meant, or a clear error.

Three table layouts are understood. ``layout="auto"`` picks **long** when the frame has a
``symbol`` column, else **ohlcv** when its header is one instrument's (below), else **wide**.

**ohlcv** -- one instrument, one row per bar (a vendor's one-ticker file)::

    Date        Open   High   Low    Close  Adj Close  Volume
    2020-01-02  100.0  101.5  99.8   101.2  99.1       1.2e6

It becomes **one asset** with open/high/low/volume/spread. Header names are matched ignoring
case, blanks and punctuation (``Adj Close`` = ``adj_close`` = ``Adj. Close``; MetaTrader's
``<DATE>`` = ``date``), with aliases: close = ``close``, ``close/last``, ``last``, ``price``;
volume = ``volume``, ``vol``, else tick volume (``tickvol``, ``tick_volume``), which is also
used when the real volume is zero throughout (MetaTrader FX exports). A header is one
instrument's when it has a close-like column and at least two of open/high/low/volume, or
when every other column is an OHLCV field (``Date,Close``). Separate date and time columns
(MetaTrader's ``<DATE>,<TIME>``) are combined. The asset is named by ``symbol=``, else the
file's stem (``AAPL.csv`` -> ``"AAPL"``), else (a DataFrame) ``"asset"``.
``price_field="adj_close"`` uses the adjusted closes and scales open/high/low by the same
factor ``adj_close / close`` of each row (volumes are left as they are). Columns named in
``feature_columns`` become features ``"<column>[<asset>]"``.

The quoted bid-ask spread (``MarketData.spread``, ask - bid in **price units**, read by
``CostModel(half_spread_bps="data")``) comes from a ``spread`` column (also ``quoted_spread``,
``bid_ask_spread``; finite and ``>= 0``, like volume), else from ``bid`` and ``ask`` columns
(also ``bid_close``/``ask_close``, ``offer``) when both are there: ``spread = ask - bid``, an ask
below its bid being an error naming the row. A spread wider than the close is refused (it is
not in price units). MetaTrader writes its spread in *points* (``<SPREAD>``, or ``spread`` next
to ``tick_volume``): that column is not read (an info log says so); convert it to price units
(points times the symbol's point size) into a ``quoted_spread`` column to use it. A spread
scales with ``price_field="adj_close"`` like open/high/low. Other extra columns (a second date
column, ...) are ignored with a debug log.

**wide** -- one row per bar, one column of close prices per asset::

    date        AAA     BBB     vix
    2020-01-02  101.2   55.1    13.2
    2020-01-03  100.9   55.4    14.0

``feature_columns=["vix"]`` marks columns that are features rather than assets; every
other column is an asset (asset order = column order). Wide tables carry close prices
only. A column whose name is an OHLCV field (``Close``, ``Volume``...), holds dates or
booleans, or is an unnamed saved index is never read as an asset: it raises with the fix.

**long** (tidy) -- one row per (date, symbol)::

    date        symbol  open   high   low    close  volume  sentiment
    2020-01-02  AAA     100.0  101.5  99.8   101.2  1.2e6   0.3
    2020-01-02  BBB     54.9   55.3   54.6   55.1   8.0e5   -0.1

``open``, ``high``, ``low``, ``volume`` and ``spread`` (or ``bid``/``ask``) are optional (same rules as above) and
``price_field`` names the close prices. Data is pivoted to ``(T, N)`` arrays; **the asset
order is the order in which symbols first appear in the table**. Columns named in
``feature_columns`` are per (date, symbol) and become one feature column per asset
named ``"<column>[<symbol>]"``, ordered column-major (``sentiment[AAA], sentiment[BBB],
...``), the naming used by :func:`~sb3_trading.data.synthetic.make_regime_market`. Other
extra columns are ignored.

The dates come from ``date_column`` if given, else from a column named ``date``,
``datetime``, ``timestamp``, ``time``, ``gmt time``, ``local time`` or ``open time`` (any
case), else from a ``DatetimeIndex``; :func:`~sb3_trading.data.dates.parse_dates` reads
them (ISO, US, day-first, epoch numbers, UTC offsets; ``dayfirst=``/``date_format=``
override). Timezone-aware dates are converted to UTC, made naive, and the zone is kept in
``MarketData.timezone``.

**Several files** (:func:`load_market_data` with a list, a folder or a glob): one market,
one asset per file (or the symbols of a long file), joined on the dates. A date that
some file lacks raises naming the file and the dates (``join="inner"`` keeps only the
dates every file has, with a warning giving the count dropped).

Nothing is repaired silently. Every problem raises ``ValueError`` (``TypeError`` for a
non-numeric, boolean or complex column) naming the file, column, symbol and date/row:
missing or unparsable dates, NaN/inf, non-positive prices, negative volume, closes or
opens outside ``[low, high]``, unsorted or duplicate dates (wide/ohlcv), duplicate
(date, symbol) pairs or dates that go backwards within a symbol (long), and assets that
do not share one date grid (long; nothing is forward-filled or dropped -- trim or fill
the data yourself). Rows in messages are 0-based positions in the frame (for a CSV
file: data lines after the header). Valid but suspect data (unadjusted splits, zero
volume or stale runs) warns once per loaded market:
:func:`~sb3_trading.data.quality.check_data_quality`.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sb3_trading.common.validation import is_int
from sb3_trading.data.dates import ParsedDates, parse_dates
from sb3_trading.data.files import (
    FEATHER_SUFFIXES,
    PARQUET_SUFFIXES,
    PathLike,
    file_stem,
    read_table,
    read_text_table,
    resolve_sources,
)
from sb3_trading.data.market_data import OHLCV_FIELDS, MarketData
from sb3_trading.data.quality import check_data_quality

logger = logging.getLogger(__name__)

LAYOUTS = ("auto", "wide", "long", "ohlcv")
JOINS = ("exact", "inner")
#: date column names (normalised: lower case, letters and digits only), in order of preference
DATE_KEYS = ("date", "datetime", "timestamp", "time", "gmttime", "localtime", "utctime", "timeutc", "datetimeutc", "opentime")
#: normalised header names of each OHLCV field, in order of preference
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "open": ("open", "openprice"),
    "high": ("high", "highprice"),
    "low": ("low", "lowprice"),
    "close": ("close", "closeprice", "closelast", "last", "lastprice", "price"),
    "adj_close": ("adjclose", "adjustedclose", "adjcloseprice", "adjustedcloseprice"),
    "volume": ("volume", "vol", "realvolume", "realvol"),
    "tick_volume": ("tickvol", "tickvolume", "ticks"),
    "spread": ("spread", "quotedspread", "bidaskspread"),
    "bid": ("bid", "bidclose", "bidprice", "closebid"),
    "ask": ("ask", "askclose", "askprice", "closeask", "offer"),
}
#: the OHLCV fields that may be 0 (the others are prices, > 0)
NON_NEGATIVE_KEYS = ("spread",)
#: normalised names of columns that one-instrument files carry besides OHLCV (never assets)
OTHER_FIELD_KEYS = (
    "trades",
    "numberoftrades",
    "vwap",
    "quoteassetvolume",
    "takerbuybaseassetvolume",
    "takerbuyquoteassetvolume",
    "closetime",
    "openinterest",
    "dividends",
    "stocksplits",
    "capitalgains",
)
DEFAULT_SYMBOL = "asset"
_ALIAS_FIELD = {alias: field for field, aliases in FIELD_ALIASES.items() for alias in aliases}
_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$")
_UNNAMED = re.compile(r"^Unnamed: \d+")


# ----------------------------------------------------------------------------- helpers
def _fmt_time(value: np.datetime64) -> str:
    """``2020-01-03`` for midnight, else the full ISO time."""
    stamp = pd.Timestamp(value)
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.isoformat()


def _key(name: Any) -> str:
    """A header name normalised for matching: ``"<Adj. Close>"`` -> ``"adjclose"``."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _find_column(df: pd.DataFrame, name: Any) -> Any | None:
    """The column called ``name`` (exact match first, then case-insensitive), or ``None``."""
    if name in df.columns:
        return name
    key = str(name).lower()
    matches = [column for column in df.columns if str(column).lower() == key]
    if len(matches) > 1:
        raise ValueError(f"column {name!r} is ambiguous: the frame has {matches} (names are matched case-insensitively)")
    return matches[0] if matches else None


def _find_key(df: pd.DataFrame, key: str, exclude: Sequence[Any] = ()) -> Any | None:
    """The column whose normalised name is ``key`` (see :func:`_key`), or ``None``."""
    matches = [column for column in df.columns if _key(column) == key and column not in exclude]
    if len(matches) > 1:
        raise ValueError(f"columns {matches} are ambiguous: they differ only in case or punctuation; rename one")
    return matches[0] if matches else None


def _ohlcv_fields(df: pd.DataFrame, exclude: Sequence[Any]) -> dict[str, Any]:
    """``field -> column`` for the OHLCV fields the header names (best alias first)."""
    found: dict[str, Any] = {}
    for field, aliases in FIELD_ALIASES.items():
        for alias in aliases:
            column = _find_key(df, alias, exclude)
            if column is not None:
                found[field] = column
                break
    return found


def _looks_ohlcv(df: pd.DataFrame, exclude: Sequence[Any]) -> bool:
    """Whether the header is one instrument's (see the module docstring)."""
    found = _ohlcv_fields(df, exclude)
    if "close" not in found and "adj_close" not in found:
        return False
    others = sum(name in found for name in ("open", "high", "low")) + ("volume" in found or "tick_volume" in found)
    rest = [c for c in df.columns if c not in exclude and c not in found.values() and not _is_field_name(c)]
    return others >= 2 or not rest


def _is_field_name(column: Any) -> bool:
    key = _key(column)
    return key in _ALIAS_FIELD or key in OTHER_FIELD_KEYS


def _is_time_of_day(series: pd.Series) -> bool:
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_datetime64_any_dtype(series.dtype):
        return False
    text = series.dropna().astype(str).str.strip()
    return len(text) > 0 and bool(text.str.fullmatch(_TIME_OF_DAY).all())


def _looks_like_dates(series: pd.Series) -> bool:
    """A column of datetimes, or of strings that all read as dates (a second date column)."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        return True
    if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(series.dtype):
        return False
    sample = series.dropna().head(20)
    if sample.empty or pd.to_numeric(sample, errors="coerce").notna().all():
        return False
    try:
        parse_dates(sample, "probe", dayfirst=True)
    except (TypeError, ValueError):
        return False
    return True


def _drop_unnamed(df: pd.DataFrame) -> pd.DataFrame:
    """Drop CSV columns without a header name that are empty or a saved ``0, 1, 2, ...`` index; raise for others."""
    drop = []
    for column in df.columns:
        if not (isinstance(column, str) and _UNNAMED.match(column)):
            continue
        series = df[column]
        if series.isna().all():
            logger.debug("dropping column %r: no header name and no values (a trailing separator)", column)
            drop.append(column)
            continue
        if pd.api.types.is_integer_dtype(series.dtype) and np.array_equal(series.to_numpy(), np.arange(len(series))):
            logger.debug("dropping column %r: a saved pandas index (0, 1, 2, ...) without a header name", column)
            drop.append(column)
            continue
        raise ValueError(
            f"column {column!r} has no name in the header (values {series.head(3).tolist()}...); it is neither empty nor "
            "a saved index 0, 1, 2, ...: give it a name in the header, or drop it (e.g. index_col=0 in read_kwargs)"
        )
    return df.drop(columns=drop) if drop else df


def _parse_with_label(values: Any, label: str, dayfirst: bool | None, date_format: str | None) -> ParsedDates:
    parsed = parse_dates(values, label, dayfirst=dayfirst, date_format=date_format)
    logger.debug("date column %r read as %s (time zone %s)", label, parsed.how, parsed.timezone)
    return parsed


def _resolve_dates(
    df: pd.DataFrame, date_column: Any | None, dayfirst: bool | None, date_format: str | None
) -> tuple[ParsedDates, str, list[Any]]:
    """Find and parse the dates.

    :return: the parsed dates ``(T,)``, a label for messages, and the columns that held them
        (empty when they came from the index; two for separate date and time columns).
    """
    index_name = df.index.name
    column = None
    if date_column is not None:
        column = _find_column(df, date_column)
        if column is None:
            if index_name is not None and str(index_name).lower() == str(date_column).lower():
                return _parse_with_label(df.index, str(index_name), dayfirst, date_format), str(index_name), []
            raise ValueError(f"date_column {date_column!r} not found; the frame has columns {list(df.columns)}")
    else:
        for key in DATE_KEYS:
            column = _find_key(df, key)
            if column is not None:
                break
    if column is None:
        if isinstance(df.index, pd.DatetimeIndex) or (index_name is not None and _key(index_name) in DATE_KEYS):
            label = "index" if index_name is None else str(index_name)
            return _parse_with_label(df.index, label, dayfirst, date_format), label, []
        raise ValueError(
            f"no date column found: expected a column named one of {DATE_KEYS} (any case) or a DatetimeIndex; "
            f"pass date_column=... to name it. The frame has columns {list(df.columns)}"
        )
    time_column = _find_key(df, "time", exclude=[column]) if _key(column) == "date" else None
    if time_column is not None and _is_time_of_day(df[time_column]):
        day = df[column]
        day = day.dt.strftime("%Y-%m-%d") if pd.api.types.is_datetime64_any_dtype(day.dtype) else day.astype(str).str.strip()
        combined = day + " " + df[time_column].astype(str).str.strip()
        combined[df[column].isna() | df[time_column].isna()] = None
        label = f"{column}+{time_column}"
        return _parse_with_label(combined, label, dayfirst, date_format), label, [column, time_column]
    return _parse_with_label(df[column], str(column), dayfirst, date_format), str(column), [column]


def _check_dates_sorted(dates: np.ndarray, date_label: str) -> None:
    """Raise naming the rows of the first unsorted or repeated date of ``dates`` ``(T,)``."""
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


def _numeric_column(df: pd.DataFrame, column: Any, where: Callable[[int], str]) -> np.ndarray:
    """Column as float64 ``(rows,)``; ``TypeError`` naming the first non-numeric value."""
    series = df[column]
    dtype = series.dtype
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if pd.api.types.is_bool_dtype(dtype) or inferred == "boolean":
        raise TypeError(
            f"column {str(column)!r} holds booleans (dtype {dtype}), not prices or volumes; drop it, or convert it to "
            "numbers and name it in feature_columns"
        )
    if pd.api.types.is_complex_dtype(dtype) or inferred == "complex":
        raise TypeError(f"column {str(column)!r} holds complex numbers (dtype {dtype}); prices and features must be real")
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


def _price_columns(
    df: pd.DataFrame, exclude: Sequence[Any], price_field: str, layout: str
) -> tuple[dict[str, Any], Any | None, tuple[Any | None, Any | None]]:
    """Columns of close/open/high/low and of the spread (a spread column, else bid and ask when both are named), the
    adj-close column to scale by, and (real, tick) volume columns."""
    found = _ohlcv_fields(df, exclude)
    wanted = _ALIAS_FIELD.get(_key(price_field))
    adjust = None
    exact = _find_column(df, price_field)
    if exact in exclude:
        exact = None
    if wanted == "adj_close":
        column = exact if exact is not None else found.get("adj_close")
        if column is None:
            raise ValueError(
                f"price_field={price_field!r} asks for adjusted closes but no column is named like 'Adj Close'; the frame "
                f"has columns {list(df.columns)}: use price_field='close'"
            )
        if "close" in found:
            columns, adjust = {"close": found["close"]}, column
        else:
            logger.debug("price_field=%r without a close column: open/high/low are used as they are", price_field)
            columns = {"close": column}
    else:
        column = exact if exact is not None else (found.get("close") if wanted == "close" else None)
        if column is None:
            hint = " (it has adjusted closes: price_field='adj_close')" if "adj_close" in found else ""
            raise ValueError(
                f"{layout} layout needs a price column {price_field!r} (price_field); the frame has columns "
                f"{list(df.columns)}{hint}"
            )
        columns = {"close": column}
    for name in ("open", "high", "low"):
        if name in found and found[name] != column:
            columns[name] = found[name]
    spread = found.get("spread")
    if spread is not None and _is_metatrader_spread(spread, found):
        logger.info(
            "not reading column %r as the spread: MetaTrader writes it in points, not price units; convert it "
            "(points x the symbol's point size) into a 'quoted_spread' column to use it",
            spread,
        )
        spread = None
    if spread is not None and spread != column:
        columns["spread"] = spread
    elif "bid" in found and "ask" in found and column not in (found["bid"], found["ask"]):
        columns["bid"], columns["ask"] = found["bid"], found["ask"]  # the quoted spread, ask - bid
    return columns, adjust, (found.get("volume"), found.get("tick_volume"))


def _is_metatrader_spread(column: Any, found: dict[str, Any]) -> bool:
    """Whether a column named ``spread`` is MetaTrader's, in points: ``<SPREAD>``, or next to a tick volume."""
    if _key(column) != "spread":
        return False
    return str(column).strip().startswith("<") or "tick_volume" in found


def _price_arrays(
    df: pd.DataFrame,
    columns: dict[str, Any],
    adjust: Any | None,
    volumes: tuple[Any | None, Any | None],
    where: Callable[[int], str],
) -> tuple[dict[str, np.ndarray], list[Any]]:
    """Validated ``(rows,)`` arrays of close/open/high/low/volume/spread (a spread column or ``ask - bid``) and the
    columns they came from."""
    arrays: dict[str, np.ndarray] = {}
    for name, column in columns.items():
        values = _numeric_column(df, column, where)[:, None]
        _check_finite(values, [str(column)], where)
        _check_positive(values, [str(column)], where, strict=name not in NON_NEGATIVE_KEYS)
        arrays[name] = values[:, 0]
    used = list(columns.values())
    if "bid" in arrays:
        bid, ask = arrays.pop("bid"), arrays.pop("ask")
        crossed = np.flatnonzero(ask < bid)
        if crossed.size:
            row = int(crossed[0])
            raise ValueError(
                f"ask column {str(columns['ask'])!r} is below bid column {str(columns['bid'])!r} {where(row)} "
                f"(ask={float(ask[row])}, bid={float(bid[row])}): fix the quotes or drop the row"
            )
        arrays["spread"] = ask - bid
    elif "spread" in arrays:
        wide = np.flatnonzero(arrays["spread"] > arrays["close"])
        if wide.size:
            row = int(wide[0])
            raise ValueError(
                f"column {str(columns['spread'])!r} has spread {float(arrays['spread'][row])} {where(row)}, wider than "
                f"the close {float(arrays['close'][row])}: the spread must be ask - bid in price units (a spread in "
                "points or basis points must be converted)"
            )
    real, tick = volumes
    volume_column = real
    if tick is not None and (real is None or not np.any(_numeric_column(df, real, where) != 0)):
        if real is not None:
            logger.debug("volume column %r is zero throughout: using tick volume %r", real, tick)
        volume_column = tick
    if volume_column is not None:
        values = _numeric_column(df, volume_column, where)[:, None]
        _check_finite(values, [str(volume_column)], where)
        _check_positive(values, [str(volume_column)], where, strict=False)
        arrays["volume"] = values[:, 0]
        used.append(volume_column)
    if adjust is not None:
        adj = _numeric_column(df, adjust, where)[:, None]
        _check_finite(adj, [str(adjust)], where)
        _check_positive(adj, [str(adjust)], where)
        factor = adj[:, 0] / arrays["close"]
        arrays["close"] = adj[:, 0]
        for name in ("open", "high", "low", "spread"):
            if name in arrays:
                arrays[name] = arrays[name] * factor
        used.append(adjust)
    return arrays, used


def _ignore_extras(df: pd.DataFrame, used: Sequence[Any], layout: str) -> None:
    extras = [c for c in df.columns if c not in used]
    dated = [c for c in extras if _looks_like_dates(df[c])]
    if dated:
        logger.info("%s layout: ignoring the second date column(s) %s", layout, dated)
    if extras:
        logger.debug("%s layout: ignoring columns %s (name them in feature_columns to keep them)", layout, extras)


# ----------------------------------------------------------------------------- wide
def _from_wide(
    df: pd.DataFrame, parsed: ParsedDates, date_label: str, date_cols: list[Any], feature_columns: list[Any]
) -> MarketData:
    dates = parsed.values
    reserved = {column: "date column" for column in date_cols}
    feature_cols = _resolve_features(df, feature_columns, reserved)
    excluded = set(feature_cols) | set(reserved)
    asset_cols = [column for column in df.columns if column not in excluded]
    if not asset_cols:
        raise ValueError(
            f"no asset columns: every column of {list(df.columns)} is the date column or a feature column; "
            "a wide frame needs one close-price column per asset"
        )
    fields = [column for column in asset_cols if _is_field_name(column)]
    if fields:
        raise ValueError(
            f"column(s) {fields} of the wide table look like fields of one instrument (open/high/low/close/volume...), "
            "not assets: read a one-instrument table with layout='ohlcv' (and symbol='NAME' to name it), or rename "
            "the columns if they really are assets"
        )
    for column in asset_cols:
        if _looks_like_dates(df[column]):
            raise ValueError(
                f"column {str(column)!r} holds dates (e.g. {df[column].iloc[0]!r}) but {date_label!r} is the date column: "
                f"a second date column cannot be an asset; drop it, or pass date_column={str(column)!r} to use it instead"
            )

    def where(row: int) -> str:
        return f"at {_fmt_time(dates[row])} (row {row})"

    _check_dates_sorted(dates, date_label)
    asset_names = [str(column) for column in asset_cols]
    prices = _numeric_block(df, asset_cols, where)
    _check_finite(prices, asset_names, where)
    _check_positive(prices, asset_names, where)
    feature_names = [str(column) for column in feature_cols]
    features = _numeric_block(df, feature_cols, where)
    _check_finite(features, feature_names, where)
    return MarketData(
        prices=prices,
        features=features,
        timestamps=dates,
        asset_names=asset_names,
        feature_names=feature_names,
        timezone=parsed.timezone,
    )


# ----------------------------------------------------------------------------- ohlcv
def _from_ohlcv(
    df: pd.DataFrame,
    parsed: ParsedDates,
    date_label: str,
    date_cols: list[Any],
    symbol: str,
    price_field: str,
    feature_columns: list[Any],
) -> MarketData:
    dates = parsed.values
    columns, adjust, volumes = _price_columns(df, date_cols, price_field, "ohlcv")
    reserved = {column: "date column" for column in date_cols}
    # the price columns; volume and spread (or bid/ask) may also be features
    reserved.update({column: f"{name} column" for name, column in columns.items() if name in ("close", "open", "high", "low")})
    feature_cols = _resolve_features(df, feature_columns, reserved)

    def where(row: int) -> str:
        return f"at {_fmt_time(dates[row])} (row {row})"

    _check_dates_sorted(dates, date_label)
    arrays, used = _price_arrays(df, columns, adjust, volumes, where)
    _ignore_extras(df, [*date_cols, *used, *feature_cols], "ohlcv")
    labels = [str(column) for column in feature_cols]
    features = _numeric_block(df, feature_cols, where)
    _check_finite(features, labels, where)
    return MarketData(
        prices=arrays.pop("close")[:, None],
        features=features,
        timestamps=dates,
        asset_names=[symbol],
        feature_names=[f"{label}[{symbol}]" for label in labels],
        timezone=parsed.timezone,
        **{name: values[:, None] for name, values in arrays.items()},
    )


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
    parsed: ParsedDates,
    date_label: str,
    date_cols: list[Any],
    symbol_col: Any,
    price_field: str,
    feature_columns: list[Any],
) -> MarketData:
    dates = parsed.values
    reserved = {symbol_col: "symbol column"}
    reserved.update({column: "date column" for column in date_cols})
    columns, adjust, volumes = _price_columns(df, list(reserved), price_field, "long")
    feature_cols = _resolve_features(df, feature_columns, reserved)

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

    arrays, used = _price_arrays(df, columns, adjust, volumes, where)
    _ignore_extras(df, [*reserved, *used, *feature_cols], "long")
    feature_labels = [str(column) for column in feature_cols]
    features_block = _numeric_block(df, feature_cols, where)
    _check_finite(features_block, feature_labels, where)
    field_names = list(arrays)
    block = np.column_stack([*arrays.values(), features_block])
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
        timezone=parsed.timezone,
        **arrays,
    )


# ----------------------------------------------------------------------------- public API
def _build(
    df: pd.DataFrame,
    *,
    layout: str = "auto",
    date_column: str | None = None,
    symbol_column: str = "symbol",
    price_field: str = "close",
    feature_columns: Sequence[str] | None = None,
    min_rows: int | None = None,
    symbol: str | None = None,
    default_symbol: str = DEFAULT_SYMBOL,
    dayfirst: bool | None = None,
    date_format: str | None = None,
) -> MarketData:
    """:func:`from_dataframe` without the quality check (the loaders check the final market once)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"from_dataframe() needs a pandas DataFrame, got {type(df).__name__}")
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if min_rows is not None and (not is_int(min_rows) or min_rows < 1):
        raise ValueError(f"min_rows must be a positive int or None, got {min_rows!r}")
    if dayfirst is not None and not isinstance(dayfirst, bool):
        raise TypeError(f"dayfirst must be True, False or None, got {dayfirst!r}")
    if symbol is not None and (not isinstance(symbol, str) or not symbol.strip()):
        raise ValueError(f"symbol must be a non-empty string naming the instrument, got {symbol!r}")
    if len(df) == 0 or len(df.columns) == 0:
        raise ValueError(f"the frame is empty (shape {df.shape})")
    if df.columns.has_duplicates:
        raise ValueError(f"the frame has duplicate column names: {df.columns[df.columns.duplicated()].tolist()}")
    df = _drop_unnamed(df)
    features = _feature_list(feature_columns)
    symbol_col = _find_column(df, symbol_column)
    parsed, date_label, date_cols = _resolve_dates(df, date_column, dayfirst, date_format)
    if layout == "auto":
        if symbol_col is not None:
            layout = "long"
        else:
            exclude = [*date_cols, *(c for c in (_find_column(df, f) for f in features) if c is not None)]
            layout = "ohlcv" if _looks_ohlcv(df, exclude) else "wide"
    if layout == "long" and symbol_col is None:
        raise ValueError(
            f"long layout needs a symbol column {symbol_column!r} (symbol_column); the frame has columns {list(df.columns)}"
        )
    if symbol is not None and layout != "ohlcv":
        raise ValueError(
            f"symbol={symbol!r} names the one instrument of an ohlcv table, but this table is read as {layout} (its "
            "assets are named by its columns or its symbol column); drop symbol= or pass layout='ohlcv'"
        )
    if layout == "wide":
        data = _from_wide(df, parsed, date_label, date_cols, features)
    elif layout == "ohlcv":
        data = _from_ohlcv(df, parsed, date_label, date_cols, symbol or default_symbol, price_field, features)
    else:
        data = _from_long(df, parsed, date_label, date_cols, symbol_col, price_field, features)
    if min_rows is not None and data.n_steps < min_rows:
        raise ValueError(
            f"the data has {data.n_steps} rows but min_rows={min_rows}; an environment with look-back window w "
            "needs at least w + 2 rows (see MarketData.require_rows)"
        )
    logger.debug("loaded %r from a %s frame", data, layout)
    return data


def from_dataframe(
    df: pd.DataFrame,
    layout: str = "auto",
    date_column: str | None = None,
    symbol_column: str = "symbol",
    price_field: str = "close",
    feature_columns: Sequence[str] | None = None,
    min_rows: int | None = None,
    *,
    symbol: str | None = None,
    dayfirst: bool | None = None,
    date_format: str | None = None,
    check_quality: bool = True,
) -> MarketData:
    """Build a validated :class:`MarketData` from a wide, long or one-instrument (ohlcv) DataFrame.

    See the module docstring for the layouts and the rules.

    :param df: the table; it is not modified.
    :param layout: ``"wide"``, ``"long"``, ``"ohlcv"`` or ``"auto"`` (long if ``symbol_column``
        exists, else ohlcv if the header is one instrument's, else wide).
    :param date_column: column holding the dates; default: a column named ``date``, ``datetime``,
        ``timestamp``, ``time``... (any case), else the ``DatetimeIndex``.
    :param symbol_column: long layout: column naming the asset of each row.
    :param price_field: long/ohlcv: column used as close prices (``MarketData.prices``);
        ``"adj_close"`` uses adjusted closes and scales open/high/low by ``adj_close / close``.
    :param feature_columns: wide: columns that are features, not assets (kept as named);
        long/ohlcv: per-(date, symbol) columns that become features ``"<column>[<symbol>]"``.
    :param min_rows: if given, raise ``ValueError`` when the data has fewer rows ``T``.
    :param symbol: ohlcv layout: the asset's name (default ``"asset"``; files: their stem).
    :param dayfirst: read ``a/b/year`` dates day-first (``True``) or month-first (``False``)
        instead of detecting the order (:func:`~sb3_trading.data.dates.parse_dates`).
    :param date_format: a ``strptime`` format for the dates, overriding all detection.
    :param check_quality: warn about suspect data
        (:func:`~sb3_trading.data.quality.check_data_quality`).
    :return: ``MarketData`` with prices ``(T, N)``, features ``(T, F)``, timestamps ``(T,)``
        (``datetime64[ns]``, naive UTC), plus open/high/low/volume/spread ``(T, N)`` when the table has them.
    :raises ValueError: bad layout, missing columns, missing/unsorted/duplicate/ambiguous dates,
        NaN/inf, non-positive prices, closes outside ``[low, high]``, assets on different date
        grids, OHLCV-named or date columns in a wide table, too few rows.
    :raises TypeError: a price/feature column that is not numeric, or is boolean or complex.
    """
    data = _build(
        df,
        layout=layout,
        date_column=date_column,
        symbol_column=symbol_column,
        price_field=price_field,
        feature_columns=feature_columns,
        min_rows=min_rows,
        symbol=symbol,
        dayfirst=dayfirst,
        date_format=date_format,
    )
    if check_quality:
        check_data_quality(data, stacklevel=3)  # the warning points at the caller
    return data


def _with_file(exc: Exception, path: Path) -> Exception:
    """``exc`` with the file named first in its message (same type where it can be built from a message)."""
    message = f"{path}: {exc}"
    try:
        renamed = type(exc)(message)
    except Exception:  # exception types that need more than a message (UnicodeDecodeError)
        renamed = (TypeError if isinstance(exc, TypeError) else ValueError)(message)
    return renamed


@contextmanager
def _naming_file(path: Path) -> Iterator[None]:
    try:
        yield
    except (ValueError, TypeError) as exc:
        if str(path) in str(exc):
            raise
        raise _with_file(exc, path) from exc


def _load_file(path: PathLike, read_kwargs: dict[str, Any] | None, kwargs: dict[str, Any]) -> MarketData:
    path = Path(path)
    with _naming_file(path):
        frame = read_table(path, read_kwargs)
        return _build(frame, default_symbol=file_stem(path), **kwargs)


def load_csv(
    path: PathLike, *, read_kwargs: dict[str, Any] | None = None, check_quality: bool = True, **kwargs: Any
) -> MarketData:
    """Load a text table (``.csv``, ``.txt``, ``.tsv``, compressed ``.gz``/``.bz2``/``.zip``/``.xz``).

    The separator is sniffed from the header line (tab, ``;``, ``|`` or ``,``) unless
    ``read_kwargs`` sets ``sep``; dates are parsed by :func:`from_dataframe`.

    :param path: file path; its stem names a one-instrument file's asset (``AAPL.csv`` -> ``"AAPL"``).
    :param read_kwargs: extra keyword arguments for :func:`pandas.read_csv` (``sep``, ``usecols``, ...).
    :param check_quality: warn about suspect data.
    :param kwargs: passed to :func:`from_dataframe` (``layout``, ``date_column``, ``symbol``, ``dayfirst``...).
    :return: the validated market data.
    :raises ValueError: as :func:`from_dataframe`, the message starting with the file.
    """
    path = Path(path)
    with _naming_file(path):
        frame = read_text_table(path, read_kwargs)
        data = _build(frame, default_symbol=file_stem(path), **kwargs)
    if check_quality:
        check_data_quality(data, stacklevel=3)  # the warning points at the caller
    return data


def load_parquet(
    path: PathLike, *, read_kwargs: dict[str, Any] | None = None, check_quality: bool = True, **kwargs: Any
) -> MarketData:
    """Load a Parquet (``.parquet``, ``.pq``) or Feather (``.feather``, ``.ft``) file (needs ``pyarrow``).

    :param path: file path; its stem names a one-instrument file's asset.
    :param read_kwargs: extra keyword arguments for :func:`pandas.read_parquet` / :func:`pandas.read_feather`.
    :param check_quality: warn about suspect data.
    :param kwargs: passed to :func:`from_dataframe`.
    :return: the validated market data.
    :raises ImportError: if ``pyarrow`` is not installed, with the install hint.
    """
    path = Path(path)
    if not path.name.lower().endswith(PARQUET_SUFFIXES + FEATHER_SUFFIXES):
        raise ValueError(f"{path}: load_parquet() reads {PARQUET_SUFFIXES + FEATHER_SUFFIXES} files; use load_market_data()")
    with _naming_file(path):
        frame = read_table(path, read_kwargs)
        data = _build(frame, default_symbol=file_stem(path), **kwargs)
    if check_quality:
        check_data_quality(data, stacklevel=3)  # the warning points at the caller
    return data


#: Feather files load like Parquet ones
load_feather = load_parquet


def _join_markets(markets: list[MarketData], paths: list[Path], join: str) -> MarketData:
    """One market from per-file markets: assets side by side on the common dates (see :func:`load_market_data`)."""
    owner: dict[str, Path] = {}
    for data, path in zip(markets, paths, strict=True):
        for name in (*data.asset_names, *data.feature_names):
            if name in owner:
                raise ValueError(
                    f"asset or feature {name!r} comes from both {str(owner[name])!r} and {str(path)!r}; names must be unique "
                    "across files: rename a file (its stem names its asset), its symbols or its columns"
                )
            owner[name] = path
    stamps = [data.timestamps for data in markets]
    union = np.unique(np.concatenate(stamps))
    if join == "exact":
        for data, path in zip(markets, paths, strict=True):
            missing = np.setdiff1d(union, data.timestamps, assume_unique=True)
            if missing.size:
                shown = ", ".join(_fmt_time(d) for d in missing[:3]) + (", ..." if missing.size > 3 else "")
                raise ValueError(
                    f"{path}: has no row for {shown} ({missing.size} of {union.size} dates missing) that other files "
                    "have; every file must cover the same dates: fill them in the file, or pass join='inner' to keep "
                    "only the dates that every file has"
                )
        common = union
    else:
        common = stamps[0]
        for other in stamps[1:]:
            common = np.intersect1d(common, other, assume_unique=True)
        if common.size == 0:
            raise ValueError(f"join='inner': the files {[str(p) for p in paths]} share no date")
        dropped = union.size - common.size
        if dropped:
            per_file = {file_stem(p): int(d.timestamps.size - common.size) for d, p in zip(markets, paths, strict=True)}
            warnings.warn(
                f"join='inner' dropped {dropped} of {union.size} dates that are not in every file (rows dropped per "
                f"file: {per_file}); {common.size} dates remain",
                UserWarning,
                stacklevel=3,
            )
    rows = [np.searchsorted(data.timestamps, common) for data in markets]
    fields: dict[str, np.ndarray] = {}
    dropped_fields: dict[str, list[str]] = {}
    for name in OHLCV_FIELDS:
        present = [getattr(data, name) is not None for data in markets]
        if all(present):
            fields[name] = np.hstack([getattr(data, name)[r] for data, r in zip(markets, rows, strict=True)])
        elif any(present):
            dropped_fields[name] = [file_stem(p) for p, has in zip(paths, present, strict=True) if not has]
    if dropped_fields:
        warnings.warn(
            f"{'/'.join(dropped_fields)} dropped for all assets: some files have none ({dropped_fields}); load those files "
            "separately to keep them",
            UserWarning,
            stacklevel=3,
        )
    zones = list(dict.fromkeys(data.timezone for data in markets if data.timezone is not None))
    return MarketData(
        prices=np.hstack([data.prices[r] for data, r in zip(markets, rows, strict=True)]),
        features=np.hstack([data.features[r] for data, r in zip(markets, rows, strict=True)]),
        timestamps=common,
        asset_names=[name for data in markets for name in data.asset_names],
        feature_names=[name for data in markets for name in data.feature_names],
        timezone="/".join(zones) if zones else None,
        **fields,
    )


def load_market_data(
    source: PathLike | Sequence[PathLike],
    *,
    join: str = "exact",
    read_kwargs: dict[str, Any] | None = None,
    check_quality: bool = True,
    **kwargs: Any,
) -> MarketData:
    """Load one market from one file or several: a path, a list/tuple of paths, a folder, or a glob.

    A folder means every supported file in it (see :mod:`sb3_trading.data.files`), sorted by
    name; a glob (``"data/*.csv"``) likewise. With several files each is one instrument (its
    asset named by the file stem) or a long/wide table of several, and they are joined on
    their dates: assets in file order, features side by side.

    :param source: the file(s); a list of one path loads like that path.
    :param join: ``"exact"``: every file must have every date (else ``ValueError`` naming the
        file and its first missing dates); ``"inner"``: keep only the dates that every file has,
        warning with the count dropped.
    :param read_kwargs: extra keyword arguments for the pandas reader of each file.
    :param check_quality: warn about suspect data in the joined market (once).
    :param kwargs: passed to :func:`from_dataframe` for each file (``layout``, ``price_field``,
        ``dayfirst``, ``date_format``...; ``symbol`` only with a single file).
    :return: the validated market data.
    :raises ValueError: unknown suffix, no matching files, a bad file (the message names it),
        missing dates (``join="exact"``), or an asset name in two files.
    """
    if join not in JOINS:
        raise ValueError(f"join must be one of {JOINS}, got {join!r}")
    paths = resolve_sources(source)
    if len(paths) > 1 and kwargs.get("symbol") is not None:
        raise ValueError(
            f"symbol={kwargs['symbol']!r} names the instrument of one file, but {len(paths)} files are loaded "
            "(each is named by its stem); drop symbol= or rename the files"
        )
    markets = [_load_file(path, read_kwargs, kwargs) for path in paths]
    data = markets[0] if len(markets) == 1 else _join_markets(markets, paths, join)
    if len(markets) > 1:
        logger.info("joined %d files into %r", len(markets), data)
    if check_quality:
        check_data_quality(data, stacklevel=3)  # the warning points at the caller
    return data
