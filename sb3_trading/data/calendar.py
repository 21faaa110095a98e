"""Trading calendars: how many bars make a year, inferred from the timestamps, and per-bar rates.

Every annualised figure (Sharpe, volatility, CAGR, cost and interest accrual)
needs ``P`` = bars per year. :func:`infer_calendar` reads it off the bar times:

==============================================  ==============  ===================
bars                                            rule            ``P``
==============================================  ==============  ===================
exchange days (5 a week, holidays closed)       252 days        252
daily, 7 days a week (crypto)                   365 days        365
daily, 6 days a week                            52 weeks        312
weekly / monthly / quarterly / yearly           fixed           52 / 12 / 4 / 1
intraday, 24/7 (crypto)                         365 days        ``365 * bars/day``
intraday, ~24 h on weekdays (FX, 24/5)          260 days        ``260 * bars/day``
intraday, an exchange session (e.g. 6.5 h)      252 days        ``252 * bars/day``
intraday, 6 days a week                         312 days        ``312 * bars/day``
no timestamps, or fewer than 3                  assumed         252
==============================================  ==============  ===================

How the rows of the table are told apart (timestamps are naive UTC):

* the **spacing** is the median gap between bars; from 5 days up the bars are
  weekly, monthly, quarterly or yearly;
* **days a week**: the median number of bars (daily bars) or of bars per day
  (intraday bars) in the weeks that lie wholly inside the sample (Monday 00:00
  to Sunday 24:00 UTC). Counting a whole week does not depend on which UTC weekday a
  session's bars fall on: daily closes of Tokyo stamped 15:00 UTC the day
  before (Sunday to Thursday), a Sydney session that starts on Sunday evening
  UTC, an FX week from Sunday 22:00 to Friday 21:00 UTC all have 5 days a week;
  holiday weeks do not move the median, nor does daylight saving time (a session
  that moves by an hour in UTC keeps its length). A sample without a whole week
  inside it falls back to the share of bars on Saturdays and Sundays
  (7 days a week from :data:`WEEKEND_SHARE`). From 6.5 days a week a market
  trades 7 days, from 5.5 six, else five;
* **bars/day** is the median number of bars per UTC calendar day that has any
  (a session crossing midnight UTC splits into two days, yet most days hold
  one whole session's worth); a day "covers ~24 h" when that many bars at the
  median spacing span at least :data:`FULL_DAY_HOURS` hours.

:func:`per_bar_rate` turns an annual rate (a risk-free rate, a financing rate)
into the rate of one bar of that calendar, compounding: ``(1 + rate) ** (1 / P) - 1``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from sb3_trading.common.validation import ArgumentTypeError, is_real

#: bars per year assumed without timestamps (exchange days)
TRADING_DAYS = 252
#: trading days a year of a 24/5 market (52 weeks x 5 days)
WEEKDAYS_PER_YEAR = 260
#: calendar days a year of a 24/7 market
CALENDAR_DAYS = 365
#: weeks a year (weekly bars; days of a 6-day market = 6 x 52)
WEEKS_PER_YEAR = 52
#: share of bars on Saturdays/Sundays from which a market counts as trading 7 days a week
#: (only for samples without a whole week inside them)
WEEKEND_SHARE = 0.15
#: hours of bars per day from which an intraday market counts as trading around the clock
FULL_DAY_HOURS = 20.0

_NS_PER_DAY = 86_400e9


def _days_per_week(days: np.ndarray, per_day: float) -> tuple[float, int] | None:
    """Median bars per whole week inside the sample over ``per_day``, and the number of such weeks.

    :param days: ``(T,)`` int64 days since 1970-01-01 of each bar, increasing.
    :param per_day: bars per trading day (1 for daily bars).
    :return: ``(days_per_week, n_weeks)``, or ``None`` when no whole week lies inside the sample.
    """
    weeks = (days + 3) // 7  # Monday-based week number (1970-01-01 was a Thursday)
    numbers, counts = np.unique(weeks, return_counts=True)
    inside = (numbers > weeks[0]) & (numbers < weeks[-1])
    if not inside.any():
        return None
    return float(np.median(counts[inside])) / per_day, int(inside.sum())


def infer_calendar(timestamps: Sequence[Any] | np.ndarray | None) -> tuple[float, str]:
    """Bars per year and a one-line description of the calendar they imply (see the module doc).

    :param timestamps: ``(T,)`` increasing bar times, naive UTC (anything ``datetime64[ns]`` accepts), or ``None``.
    :return: ``(periods_per_year, description)``, e.g. ``(8760.0, "intraday bars, 24/7: 24 bars/day x 365 days;
        7 days a week, median of 17 whole weeks")``.
    """
    if timestamps is None or len(timestamps) < 3:
        return float(TRADING_DAYS), f"no timestamps: {TRADING_DAYS} bars a year assumed (pass periods_per_year= to set it)"
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    spacing = float(np.median(np.diff(ts).astype(np.float64))) / _NS_PER_DAY  # days
    if spacing >= 300:
        return 1.0, "yearly bars"
    if spacing >= 80:
        return 4.0, "quarterly bars"
    if spacing >= 25:
        return 12.0, "monthly bars"
    if spacing >= 5:
        return float(WEEKS_PER_YEAR), "weekly bars"
    days = ts.astype("datetime64[D]").astype(np.int64)
    if spacing >= 0.9:
        per_day = 1.0
    else:
        _, counts = np.unique(days, return_counts=True)
        per_day = float(np.median(counts))
    measured = _days_per_week(days, per_day)
    if measured is None:  # no whole week inside the sample: read the weekdays
        weekend = float(np.mean((days + 3) % 7 >= 5))
        week = 7.0 if weekend >= WEEKEND_SHARE else 5.0
        how = f"no whole week in the sample, {weekend:.0%} of bars on weekends"
    else:
        week, n_weeks = measured
        how = f"{week:.3g} days a week, median of {n_weeks} whole weeks"
    if spacing >= 0.9:
        if week >= 6.5:
            return float(CALENDAR_DAYS), f"daily bars, 7 days a week: {CALENDAR_DAYS} a year; {how}"
        if week >= 5.5:
            return float(6 * WEEKS_PER_YEAR), f"daily bars, 6 days a week: {6 * WEEKS_PER_YEAR} a year; {how}"
        return float(TRADING_DAYS), f"daily bars on exchange days: {TRADING_DAYS} a year; {how}"
    hours = per_day * spacing * 24.0
    if week >= 6.5:
        n_days, kind = CALENDAR_DAYS, "24/7"
    elif week >= 5.5:
        n_days, kind = 6 * WEEKS_PER_YEAR, f"6 days a week, {hours:.3g} h a day"
    elif hours >= FULL_DAY_HOURS:
        n_days, kind = WEEKDAYS_PER_YEAR, "24/5"
    else:
        n_days, kind = TRADING_DAYS, f"a {hours:.3g} h session on exchange days"
    return n_days * per_day, f"intraday bars, {kind}: {per_day:g} bars/day x {n_days} days; {how}"


def infer_periods_per_year(timestamps: Sequence[Any] | np.ndarray | None) -> float:
    """Bars per year of ``timestamps`` (the first element of :func:`infer_calendar`; 252 without timestamps)."""
    return infer_calendar(timestamps)[0]


def check_periods_per_year(periods_per_year: Any, name: str = "periods_per_year") -> float:
    """``periods_per_year`` as a float, or ``TypeError``/``ValueError`` naming ``name`` unless a finite number ``> 0``."""
    if not is_real(periods_per_year):
        raise ArgumentTypeError(
            f"{name} must be a number of bars per year (e.g. 252), got {type(periods_per_year).__name__} {periods_per_year!r}"
        )
    if not (math.isfinite(periods_per_year) and periods_per_year > 0):
        raise ValueError(f"{name} must be a finite number of bars per year > 0 (e.g. 252), got {periods_per_year!r}")
    return float(periods_per_year)


def check_annual_rate(rate: Any, name: str = "risk_free") -> float:
    """``rate`` as a float, or ``TypeError``/``ValueError`` naming ``name`` unless a finite annual fraction ``> -1``."""
    if not is_real(rate):
        raise TypeError(f"{name} must be an annual rate as a fraction (0.04 = 4 %/year), got {type(rate).__name__}")
    if not (math.isfinite(rate) and rate > -1.0):
        raise ValueError(f"{name} must be a finite annual rate > -1 as a fraction (0.04 = 4 %/year), got {rate!r}")
    if rate > 1.0:
        warnings.warn(
            f"{name}={rate!r} is an annual rate of {rate:.0%}; rates are fractions (0.04 = 4 %/year), not percent",
            UserWarning,
            stacklevel=3,
        )
    return float(rate)


def per_bar_rate(annual_rate: float, periods_per_year: float) -> float:
    """The rate of one bar that compounds to ``annual_rate`` over a year of ``periods_per_year`` bars.

    ``rate_bar = (1 + annual_rate) ** (1 / periods_per_year) - 1``; e.g. 4 %/year is 0.0155 % per
    exchange day (``P = 252``) and 0.000448 % per hour of a 24/7 market (``P = 8760``).

    :param annual_rate: effective annual rate as a fraction (``0.04`` = 4 %), ``> -1``.
    :param periods_per_year: bars per year ``P`` (``> 0``).
    :return: the per-bar rate, a fraction.
    """
    rate = check_annual_rate(annual_rate, "annual_rate")
    return math.expm1(math.log1p(rate) / check_periods_per_year(periods_per_year))
