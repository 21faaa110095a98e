"""Read a column of dates the way its file meant them, or raise naming the row and the fix.

:func:`parse_dates` turns a column (or index) into naive UTC ``datetime64[ns]`` plus the
time zone the values were written in. It understands:

* datetime columns (tz-aware ones are converted to UTC; the zone is kept);
* **year-first** strings: ISO ``2017-01-13``, ``2017-01-13T09:30:00Z``, ``2017.01.13 00:00``
  (MetaTrader), ``2017/01/13`` -- with optional time, fraction and UTC offset;
* **day/month** strings ``a<sep>b<sep>year[ time]`` with ``sep`` one of ``/ . -``
  (``01/13/2017``, ``13.01.2017 00:00:00.000``). Both readings are tried on the **whole**
  column, never on its first rows only:

  1. a reading under which some value is no valid date is out (``13`` cannot be a month);
  2. if exactly one reading is left, it is used;
  3. if both are left and the separator is ``.``, the values are read **day-first**: dotted
     dates are the European convention (``01.02.2017`` is 1 February); month-first dotted
     dates are not a convention anywhere;
  4. else (``/`` or ``-``, every day and month value ``<= 12``) if exactly one reading gives
     non-decreasing dates it is used, otherwise the column is ambiguous and ``ValueError``
     asks for ``dayfirst=`` or ``date_format=``.

  A month-first reading is thus never chosen for a column that a day-first reading fits
  with ``.`` separators, and never silently for an ambiguous column.
* **numbers**: ``%Y%m%d`` integers (``20170113``) and epoch times, whose unit is decided by
  magnitude (:data:`EPOCH_UNITS`: ``~1e9`` seconds, ``~1e12`` milliseconds, ``~1e15``
  microseconds, ``~1e18`` nanoseconds; every value must fall in the same band). Any other
  magnitude (``0, 1, 2``) is no plausible date and raises.
* anything else pandas can read unambiguously (``Jan 13, 2017``), one format for the column.

``dayfirst=`` and ``date_format=`` (a :func:`~datetime.datetime.strptime` format) override
the detection. UTC offsets in strings (``+01:00``, ``Z``, ``GMT+0100``) are honoured: the
values are converted to UTC and the zone is reported as ``"UTC+01:00"`` (several offsets,
e.g. across a daylight-saving change, as ``"UTC+01:00/UTC+02:00"``).
"""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

#: epoch unit by the magnitude of the largest absolute value: ``(lower bound, upper bound, unit)``
EPOCH_UNITS = ((1e8, 1e11, "s"), (1e11, 1e14, "ms"), (1e14, 1e17, "us"), (1e17, 1e20, "ns"))
#: integers read as ``%Y%m%d`` dates
YMD_RANGE = (1800_01_01, 2200_12_31)
DATE_FIX = "pass dayfirst=True/False or date_format='...' (e.g. '%d.%m.%Y %H:%M:%S.%f')"

_YEAR_FIRST = re.compile(r"^(\d{4})([./-])(\d{1,2})\2(\d{1,2})(.*)$")
_DAY_MONTH = re.compile(r"^(\d{1,2})([./-])(\d{1,2})\2(\d{4}|\d{2})(?![\d])(.*)$")
_GMT_OFFSET = re.compile(r"\s*(?:GMT|UTC)\s*([+-])(\d{1,2}):?(\d{2})?$")
_OFFSET = re.compile(r"\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?\s*(Z|[+-]\d{2}(?::?\d{2})?)$")  # after a time of day


@dataclass(frozen=True)
class ParsedDates:
    """Result of :func:`parse_dates`.

    :param values: ``(T,)`` naive UTC ``datetime64[ns]``.
    :param timezone: the zone the source values were written in (``"UTC+01:00"``,
        ``"Europe/Berlin"``), or ``None`` for naive source values.
    :param how: how they were read, for logs (``"ISO"``, ``"day-first"``, ``"epoch ms"``...).
    """

    values: np.ndarray
    timezone: str | None
    how: str


def parse_dates(
    values: pd.Series | pd.Index | Any,
    label: str = "date",
    *,
    dayfirst: bool | None = None,
    date_format: str | None = None,
) -> ParsedDates:
    """Parse a date column to naive UTC ``datetime64[ns]`` (see the module docstring for the rules).

    :param values: ``(T,)`` strings, numbers or datetimes.
    :param label: column name used in error messages.
    :param dayfirst: force day-first (``True``) or month-first (``False``) reading of
        ``a/b/year`` dates; ``None`` detects it.
    :param date_format: a ``strptime`` format for every value; overrides all detection.
    :return: the parsed values, the source time zone and how they were read.
    :raises ValueError: a missing or unparsable value (naming the row), an ambiguous
        day/month order, or numbers that are no plausible epoch.
    """
    series = pd.Series(values).reset_index(drop=True)
    missing = np.flatnonzero(series.isna().to_numpy())
    if missing.size:
        raise ValueError(f"date column {label!r} has a missing date at row {int(missing[0])}")
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return ParsedDates(_to_naive_ns(series, label), str(dtype.tz), "tz-aware datetimes")
    if pd.api.types.is_datetime64_dtype(dtype):
        return ParsedDates(_to_naive_ns(series, label), None, "datetimes")
    if pd.api.types.is_bool_dtype(dtype):
        raise ValueError(f"date column {label!r} holds booleans (dtype {dtype}), not dates")
    if date_format is not None:
        text = series.astype(str).str.strip()
        parsed = _checked(lambda errors: pd.to_datetime(text, format=date_format, utc=True, errors=errors), text, label)
        zone = _offset_zone(text)
        return ParsedDates(_to_naive_ns(parsed, label), zone, f"format {date_format!r}")
    if pd.api.types.is_numeric_dtype(dtype):
        return _parse_numbers(series, label)
    text = series.astype(str).str.strip()
    as_numbers = pd.to_numeric(text, errors="coerce")
    if as_numbers.notna().all() and text.str.fullmatch(r"[+-]?\d+(\.\d*)?").all():
        return _parse_numbers(as_numbers, label)
    return _parse_strings(text, label, dayfirst)


# ----------------------------------------------------------------------------- numbers
def _parse_numbers(series: pd.Series, label: str) -> ParsedDates:
    numbers = series.to_numpy(dtype=np.float64)
    if not np.isfinite(numbers).all():
        row = int(np.flatnonzero(~np.isfinite(numbers))[0])
        raise ValueError(f"date column {label!r} has a non-finite value {numbers[row]!r} at row {row}")
    integral = bool(np.all(numbers == np.round(numbers)))
    if integral and numbers.min() >= YMD_RANGE[0] and numbers.max() <= YMD_RANGE[1]:
        text = pd.Series(numbers.astype(np.int64).astype(str))
        parsed = pd.to_datetime(text, format="%Y%m%d", utc=True, errors="coerce")
        if parsed.notna().all():
            return ParsedDates(_to_naive_ns(parsed, label), None, "%Y%m%d integers")
    magnitude = np.abs(numbers)
    for low, high, unit in EPOCH_UNITS:
        if low <= magnitude.max() < high:
            outside = np.flatnonzero((magnitude < low) | (magnitude >= high))
            if outside.size:
                row = int(outside[0])
                raise ValueError(
                    f"date column {label!r} holds epoch times in {unit} (values ~{magnitude.max():.3g}) but row {row} "
                    f"has {numbers[row]!r}, which is not in that unit; fix that value or convert the column yourself"
                )
            parsed = pd.to_datetime(pd.Series(numbers), unit=unit, utc=True)
            return ParsedDates(_to_naive_ns(parsed, label), None, f"epoch {unit}")
    raise ValueError(
        f"date column {label!r} holds numbers (dtype {series.dtype}, e.g. {series.iloc[0]!r}) that are no plausible date: "
        "neither %Y%m%d integers nor epoch seconds (~1e9), milliseconds (~1e12), microseconds (~1e15) or "
        f"nanoseconds (~1e18); convert it first, e.g. pd.to_datetime(df[{label!r}], unit='s'), or pass date_format="
    )


# ----------------------------------------------------------------------------- strings
def _parse_strings(text: pd.Series, label: str, dayfirst: bool | None) -> ParsedDates:
    text = text.str.replace(_GMT_OFFSET, _gmt_to_offset, regex=True)
    zone = _offset_zone(text)
    year_first = text.str.extract(_YEAR_FIRST)
    if year_first[0].notna().all():
        iso = year_first[0] + "-" + year_first[2].str.zfill(2) + "-" + year_first[3].str.zfill(2) + year_first[4]
        return ParsedDates(_to_naive_ns(_parse_iso(iso, text, label), label), zone, "year-first")
    day_month = text.str.extract(_DAY_MONTH)
    matched = day_month[0].notna()
    if matched.all():
        return _parse_day_month(day_month, text, label, dayfirst, zone)
    if matched.any() or year_first[0].notna().any():
        row = int(np.flatnonzero(~(matched | year_first[0].notna()).to_numpy())[0])
        example = text.iloc[int(np.flatnonzero((matched | year_first[0].notna()).to_numpy())[0])]
        raise ValueError(
            f"date column {label!r} has a value that is not a date: {text.iloc[row]!r} at row {row} (other values "
            f"look like {example!r}); fix it or pass date_format="
        )
    # month names and other spelled-out forms: one format, inferred by pandas from the first value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "could not infer format": the errors below say more
        parsed = _checked(lambda errors: pd.to_datetime(text, utc=True, errors=errors, dayfirst=bool(dayfirst)), text, label)
    return ParsedDates(_to_naive_ns(parsed, label), zone, "pandas-inferred")


def _parse_day_month(parts: pd.DataFrame, text: pd.Series, label: str, dayfirst: bool | None, zone: str | None) -> ParsedDates:
    first, sep, second, year, rest = (parts[k] for k in range(5))
    year = year.where(year.str.len() == 4, ("20" + year).where(year.astype(int) < 69, "19" + year))  # strptime's %y rule

    def reading(day: pd.Series, month: pd.Series) -> pd.Series:
        iso = year + "-" + month.str.zfill(2) + "-" + day.str.zfill(2) + rest
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return pd.to_datetime(iso, format="ISO8601", utc=True, errors="coerce")

    if dayfirst is not None:
        chosen = (first, second) if dayfirst else (second, first)
        iso = year + "-" + chosen[1].str.zfill(2) + "-" + chosen[0].str.zfill(2) + rest
        return ParsedDates(_to_naive_ns(_parse_iso(iso, text, label), label), zone, "day-first" if dayfirst else "month-first")
    day_first, month_first = reading(first, second), reading(second, first)
    ok_day, ok_month = bool(day_first.notna().all()), bool(month_first.notna().all())
    if ok_day and not ok_month:
        return ParsedDates(_to_naive_ns(day_first, label), zone, "day-first")
    if ok_month and not ok_day:
        return ParsedDates(_to_naive_ns(month_first, label), zone, "month-first")
    if not (ok_day or ok_month):
        bad = np.flatnonzero((day_first.isna() & month_first.isna()).to_numpy())
        if bad.size:
            row = int(bad[0])
            raise ValueError(f"date column {label!r} has a value that is not a date: {text.iloc[row]!r} at row {row}")
        row_d = int(np.flatnonzero(day_first.isna().to_numpy())[0])
        row_m = int(np.flatnonzero(month_first.isna().to_numpy())[0])
        raise ValueError(
            f"date column {label!r} mixes day-first and month-first dates: {text.iloc[row_d]!r} (row {row_d}) is only "
            f"valid month-first and {text.iloc[row_m]!r} (row {row_m}) only day-first; fix the file or {DATE_FIX}"
        )
    separator = sep.iloc[0]
    if separator == "." and sep.eq(".").all():
        logger.debug("date column %r: dotted dates read day-first (European convention)", label)
        return ParsedDates(_to_naive_ns(day_first, label), zone, "day-first (dotted)")
    up_day = bool(day_first.is_monotonic_increasing)
    up_month = bool(month_first.is_monotonic_increasing)
    if up_day != up_month:
        chosen_parse, how = (day_first, "day-first") if up_day else (month_first, "month-first")
        logger.debug("date column %r: only the %s reading gives increasing dates", label, how)
        return ParsedDates(_to_naive_ns(chosen_parse, label), zone, how)
    raise ValueError(
        f"date column {label!r} is ambiguous: every value (e.g. {text.iloc[0]!r}) reads as a valid date both day-first "
        f"({_fmt(day_first.iloc[0])}) and month-first ({_fmt(month_first.iloc[0])}); {DATE_FIX}"
    )


def _parse_iso(iso: pd.Series, text: pd.Series, label: str) -> pd.Series:
    """Parse year-first strings; ISO 8601 first, then one pandas-inferred format (``12:00 PM``...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        parsed = pd.to_datetime(iso, format="ISO8601", utc=True, errors="coerce")
        if parsed.isna().any():
            parsed = pd.to_datetime(iso, utc=True, errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        row = int(bad[0])
        raise ValueError(f"date column {label!r} has a value that is not a date: {text.iloc[row]!r} at row {row}")
    return parsed


# ----------------------------------------------------------------------------- helpers
def _checked(parse: Any, text: pd.Series, label: str) -> pd.Series:
    """Run ``parse(errors)``; on failure name the first row that does not parse."""
    try:
        return parse("raise")
    except (TypeError, ValueError, OverflowError) as exc:
        try:
            coerced = parse("coerce")
            bad = np.flatnonzero(coerced.isna().to_numpy())
        except (TypeError, ValueError, OverflowError):
            bad = np.zeros(0, dtype=np.int64)
        if bad.size:
            row = int(bad[0])
            raise ValueError(f"date column {label!r} has a value that is not a date: {text.iloc[row]!r} at row {row}") from exc
        raise ValueError(f"date column {label!r} could not be parsed as dates: {exc}") from exc


def _gmt_to_offset(match: re.Match[str]) -> str:
    sign, hours, minutes = match.group(1), match.group(2), match.group(3) or "00"
    return f"{sign}{int(hours):02d}:{minutes}"


def _offset_zone(text: pd.Series) -> str | None:
    """``"UTC+01:00"`` (or several joined by ``/``) from trailing UTC offsets, ``None`` if there are none."""
    offsets = text.str.extract(_OFFSET)[0]
    if offsets.isna().all():
        return None
    names = []
    for offset in pd.unique(offsets.dropna()):
        if offset == "Z":
            names.append("UTC")
        else:
            digits = offset.replace(":", "").ljust(5, "0")  # "+01" -> "+0100"
            names.append("UTC" if digits[1:] == "0000" else f"UTC{digits[0]}{digits[1:3]}:{digits[3:5]}")
    return "/".join(dict.fromkeys(names))


def _fmt(value: pd.Timestamp) -> str:
    return value.strftime("%Y-%m-%d") if value == value.normalize() else value.isoformat()


def _to_naive_ns(parsed: pd.Series, label: str) -> np.ndarray:
    """tz-aware or naive datetimes -> ``(T,)`` naive UTC ``datetime64[ns]``."""
    parsed = pd.Series(parsed)
    try:
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):
            parsed = parsed.dt.tz_convert(None)
        # as_unit("ns") raises where a plain cast from pandas' default "us" would wrap around silently
        return parsed.dt.as_unit("ns").to_numpy()
    except pd.errors.OutOfBoundsDatetime as exc:
        raise ValueError(f"date column {label!r} has dates outside 1677-09-22..2262-04-11: {exc}") from exc
