"""Trading calendars: how many bars make a year, inferred from the timestamps.

Every annualised figure (Sharpe, volatility, CAGR, cost and interest accrual)
needs ``P`` = bars per year. :func:`infer_calendar` reads it off the bar times:

==============================================  ==============  ===================
bars                                            rule            ``P``
==============================================  ==============  ===================
exchange days (weekends closed)                 252 days        252
daily, 7 days a week (crypto)                   365 days        365
weekly / monthly / quarterly / yearly           fixed           52 / 12 / 4 / 1
intraday, 24/7 (crypto)                         365 days        ``365 * bars/day``
intraday, ~24 h on weekdays (FX, 24/5)          260 days        ``260 * bars/day``
intraday, an exchange session (e.g. 6.5 h)      252 days        ``252 * bars/day``
no timestamps, or fewer than 3                  assumed         252
==============================================  ==============  ===================

A market "trades on weekends" when at least :data:`WEEKEND_SHARE` of its bars
fall on a Saturday or Sunday (24/7 data has 2/7 = 29 %; an FX week that opens
on Sunday evening has about 2 %). ``bars/day`` is the median number of bars per
calendar day that has any; a day "covers ~24 h" when that many bars at the
median spacing span at least :data:`FULL_DAY_HOURS` hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

#: bars per year assumed without timestamps (exchange days)
TRADING_DAYS = 252
#: trading days a year of a 24/5 market (52 weeks x 5 days)
WEEKDAYS_PER_YEAR = 260
#: calendar days a year of a 24/7 market
CALENDAR_DAYS = 365
#: share of bars on Saturdays/Sundays from which a market counts as trading 7 days a week
WEEKEND_SHARE = 0.15
#: hours of bars per day from which an intraday market counts as trading around the clock
FULL_DAY_HOURS = 20.0


def infer_calendar(timestamps: Sequence[Any] | np.ndarray | None) -> tuple[float, str]:
    """Bars per year and a one-line description of the calendar they imply (see the module table).

    :param timestamps: ``(T,)`` increasing bar times (anything ``datetime64[ns]`` accepts), or ``None``.
    :return: ``(periods_per_year, description)``, e.g. ``(8760.0, "hourly bars, 24/7: 24 bars/day x 365 days")``.
    """
    if timestamps is None or len(timestamps) < 3:
        return float(TRADING_DAYS), f"no timestamps: {TRADING_DAYS} bars a year assumed (pass periods_per_year= to set it)"
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    spacing = np.median(np.diff(ts).astype(np.float64)) / 86_400e9  # days
    weekday = (ts.astype("datetime64[D]").astype(np.int64) + 3) % 7  # Monday = 0 (1970-01-01 was a Thursday)
    weekend = float(np.mean(weekday >= 5))
    seven_days = weekend >= WEEKEND_SHARE
    if spacing >= 300:
        return 1.0, "yearly bars"
    if spacing >= 80:
        return 4.0, "quarterly bars"
    if spacing >= 25:
        return 12.0, "monthly bars"
    if spacing >= 5:
        return 52.0, "weekly bars"
    if spacing >= 0.9:
        if seven_days:
            return float(CALENDAR_DAYS), f"daily bars, 7 days a week ({weekend:.0%} on weekends): {CALENDAR_DAYS} a year"
        return float(TRADING_DAYS), f"daily bars on exchange days: {TRADING_DAYS} a year"
    _, counts = np.unique(ts.astype("datetime64[D]"), return_counts=True)
    per_day = float(np.median(counts))
    hours = per_day * spacing * 24.0
    if seven_days:
        days, kind = CALENDAR_DAYS, "24/7"
    elif hours >= FULL_DAY_HOURS:
        days, kind = WEEKDAYS_PER_YEAR, "24/5"
    else:
        days, kind = TRADING_DAYS, f"a {hours:.3g} h session on exchange days"
    return days * per_day, f"intraday bars, {kind}: {per_day:g} bars/day x {days} days"


def infer_periods_per_year(timestamps: Sequence[Any] | np.ndarray | None) -> float:
    """Bars per year of ``timestamps`` (the first element of :func:`infer_calendar`)."""
    return infer_calendar(timestamps)[0]
