"""Trading calendars (issue 15): bars per year from the timestamps, carried by MarketData, used by every metric;
the annual risk-free rate and its per-bar conversion."""

import math

import numpy as np
import pandas as pd
import pytest

from sb3_trading.data import MarketData
from sb3_trading.data.calendar import (
    TRADING_DAYS,
    check_periods_per_year,
    infer_calendar,
    infer_periods_per_year,
    per_bar_rate,
)
from sb3_trading.evaluation import buy_and_hold, compute_metrics, sharpe_ratio, sortino_ratio
from sb3_trading.evaluation import infer_periods_per_year as evaluation_infer
from sb3_trading.evaluation.metrics import TRADING_DAYS as METRICS_TRADING_DAYS
from sb3_trading.evaluation.metrics import risk_free_per_period
from sb3_trading.sim import CostModel

US_HOLIDAYS = ["2020-01-01", "2020-01-20", "2020-02-17", "2020-04-10", "2020-05-25", "2020-07-03", "2020-09-07"]


def exchange_days(start="2019-01-01", end="2020-12-31") -> pd.DatetimeIndex:
    """Weekdays without (a few) US exchange holidays."""
    days = pd.bdate_range(start, end)
    return days[~days.isin(pd.to_datetime(US_HOLIDAYS))]


def sessions(days, start: str = "14:30", minutes: int = 390, freq: str = "min") -> pd.DatetimeIndex:
    """Intraday bars of a ``minutes``-long session starting at ``start`` UTC on each of ``days``."""
    parts = []
    for day in days:
        open_ = pd.Timestamp(f"{day.date()} {start}")
        parts.append(pd.date_range(open_, open_ + pd.Timedelta(minutes=minutes), freq=freq, inclusive="left"))
    return parts[0].append(parts[1:])


def fx_hours(first_sunday: str = "2020-01-05", weeks: int = 20, open_hour: int = 22, close_hour: int = 21):
    """Hourly FX bars: each week opens Sunday ``open_hour``:00 UTC and closes Friday ``close_hour``:00 UTC."""
    parts = []
    for w in range(weeks):
        sunday = pd.Timestamp(first_sunday) + pd.Timedelta(weeks=w)
        start = sunday + pd.Timedelta(hours=open_hour)
        stop = sunday + pd.Timedelta(days=5, hours=close_hour)
        parts.append(pd.date_range(start, stop, freq="h", inclusive="left"))
    return parts[0].append(parts[1:])


def us_minutes_across_dst() -> pd.DatetimeIndex:
    """NYSE minute bars stored in UTC: 14:30-21:00 before the 2020-03-08 DST switch, 13:30-20:00 after."""
    before = sessions(exchange_days("2020-02-03", "2020-03-06"))
    after = sessions(exchange_days("2020-03-09", "2020-04-10"), start="13:30")
    return before.append(after)


Q1 = exchange_days("2020-01-01", "2020-03-31")

CASES = {
    "exchange days": (exchange_days(), 252),
    "daily, 7 days a week": (pd.date_range("2020-01-01", periods=500, freq="D"), 365),
    "hourly 24/7": (pd.date_range("2020-01-01", periods=3_000, freq="h"), 8_760),
    "hourly FX 24/5, Sunday 22:00 to Friday 21:00 UTC": (fx_hours(), 6_240),
    "hourly FX 24/5 in summer time (21:00 to 20:00 UTC)": (fx_hours("2020-06-07", open_hour=21, close_hour=20), 6_240),
    "minute bars of a 6.5 h session": (sessions(Q1), 390 * 252),
    "5-minute bars of a 6.5 h session": (sessions(Q1, freq="5min"), 78 * 252),
    "hourly bars of a session (9:30..15:30)": (sessions(Q1, minutes=420, freq="h"), 7 * 252),
    "weekly": (pd.date_range("2015-01-02", periods=200, freq="W-FRI"), 52),
    "monthly": (pd.date_range("2010-01-31", periods=100, freq="ME"), 12),
    "quarterly": (pd.date_range("2000-03-31", periods=40, freq="QE"), 4),
    # sessions stored in UTC, holidays, daylight saving time
    "Tokyo daily closes stamped 15:00 UTC the day before (Sunday..Thursday)": (
        exchange_days() - pd.Timedelta(hours=9),
        252,
    ),
    "a 6 h session crossing midnight UTC (22:00..04:00)": (sessions(Q1, start="22:00", minutes=360), 360 * 252),
    "US minute bars in UTC across the DST switch": (us_minutes_across_dst(), 390 * 252),
    "daily 7-day data starting on a Saturday": (pd.date_range("2021-01-02", periods=60, freq="D"), 365),
}


@pytest.mark.parametrize("timestamps, expected", CASES.values(), ids=CASES.keys())
def test_infer_calendar(timestamps, expected):
    periods_per_year, description = infer_calendar(timestamps.values)
    assert periods_per_year == pytest.approx(expected)
    assert isinstance(description, str) and description
    assert infer_periods_per_year(timestamps) == periods_per_year


def test_calendar_descriptions_say_what_was_inferred():
    assert "24/7" in infer_calendar(CASES["hourly 24/7"][0])[1]
    assert "24/5" in infer_calendar(CASES["hourly FX 24/5, Sunday 22:00 to Friday 21:00 UTC"][0])[1]
    assert "6.5 h session" in infer_calendar(CASES["minute bars of a 6.5 h session"][0])[1]
    assert "exchange days" in infer_calendar(CASES["exchange days"][0])[1]


@pytest.mark.parametrize("timestamps", [None, [], np.array(["2020-01-01", "2020-01-02"], dtype="datetime64[ns]")])
def test_without_timestamps_252_is_assumed_and_said(timestamps):
    periods_per_year, description = infer_calendar(timestamps)
    assert periods_per_year == TRADING_DAYS == 252
    assert "assumed" in description and "periods_per_year=" in description
    data = MarketData(prices=np.linspace(100.0, 110.0, 20))
    assert data.periods_per_year == 252 and "assumed" in data.calendar


def test_short_samples_read_the_weekdays():
    """Without a whole week inside the sample the share of weekend bars decides 7 vs 5 days a week."""
    weekend_hours = pd.date_range("2020-01-03", "2020-01-06", freq="h", inclusive="left")  # Friday..Sunday
    weekday_hours = pd.date_range("2020-01-06", "2020-01-09", freq="h", inclusive="left")  # Monday..Wednesday
    assert infer_periods_per_year(weekend_hours) == 8_760
    assert infer_periods_per_year(weekday_hours) == 6_240
    assert "no whole week" in infer_calendar(weekday_hours)[1]


def test_evaluation_reexports_the_data_calendar():
    assert evaluation_infer is infer_periods_per_year
    assert METRICS_TRADING_DAYS == TRADING_DAYS


# ----------------------------------------------------------------------------- MarketData carries it
def hourly_market(n: int = 500, seed: int = 0, n_assets: int = 2) -> MarketData:
    rng = np.random.default_rng(seed)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, (n, n_assets)), axis=0))
    return MarketData(prices=prices, timestamps=pd.date_range("2021-03-01", periods=n, freq="h").values)


def test_market_data_infers_and_keeps_its_calendar_through_every_slice():
    data = hourly_market()
    assert data.periods_per_year == 8_760 and "24/7" in data.calendar
    train, test = data.split(0.8)
    pieces = {
        "slice": data.slice(10, 40),
        "split train": train,
        "split test": test,
        "select_assets": data.select_assets([data.asset_names[1]]),
        "between": data.between("2021-03-05", "2021-03-06"),
        "three rows": data.slice(0, 3),  # too short to infer anything: keeps the whole data's calendar
    }
    for name, piece in pieces.items():
        assert piece.periods_per_year == 8_760, name
        assert piece.calendar == data.calendar, name


def test_periods_per_year_can_be_given_and_survives_slicing():
    data = MarketData(prices=np.linspace(100.0, 120.0, 50), periods_per_year=8_760)
    assert data.periods_per_year == 8_760.0 and data.calendar == "given: 8760 bars a year"
    for piece in (data.slice(5, 20), *data.split(0.5), data.select_assets(data.asset_names)):
        assert piece.periods_per_year == 8_760.0
    hourly = hourly_market(n=100)  # the given value wins over the timestamps
    assert MarketData(prices=hourly.prices, timestamps=hourly.timestamps, periods_per_year=365).periods_per_year == 365


@pytest.mark.parametrize(
    "value, error", [(0, ValueError), (-252, ValueError), (np.nan, ValueError), (np.inf, ValueError), ("252", TypeError)]
)
def test_bad_periods_per_year_raise(value, error):
    with pytest.raises(error, match="periods_per_year"):
        MarketData(prices=np.linspace(100.0, 120.0, 10), periods_per_year=value)
    with pytest.raises(error, match="periods_per_year"):
        check_periods_per_year(value)
    with pytest.raises(ValueError, match="periods_per_year"):
        compute_metrics([0.01, -0.01, 0.02], periods_per_year=value)


def test_bool_is_not_a_number_of_bars():
    with pytest.raises(TypeError, match="periods_per_year"):
        MarketData(prices=np.linspace(100.0, 120.0, 10), periods_per_year=True)


# ----------------------------------------------------------------------------- metrics use it
def test_hourly_24_7_sharpe_is_annualised_with_sqrt_8760():
    data = hourly_market(n=400, n_assets=1, seed=3)
    prices = data.prices[:, 0]
    r = prices[1:] / prices[:-1] - 1.0
    by_hand = r.mean() / r.std(ddof=1) * math.sqrt(8_760)
    assert compute_metrics(r, periods_per_year=data.periods_per_year)["sharpe"] == pytest.approx(by_hand, rel=1e-12)

    result = buy_and_hold(data, costs=CostModel(0.0, 0.0))  # no periods_per_year: the data's calendar
    np.testing.assert_allclose(result.returns, r, rtol=1e-9, atol=1e-12)
    assert result.periods_per_year == 8_760
    assert result.metrics["sharpe"] == pytest.approx(by_hand, rel=1e-6)
    assert result.metrics["annual_volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(8_760), rel=1e-6)
    summary = result.to_dict()
    assert summary["periods_per_year"] == 8_760 and "24/7" in summary["calendar"]
    assert summary["risk_free"] == 0.0


def test_an_explicit_periods_per_year_overrides_the_data():
    data = hourly_market(n=200, n_assets=1)
    result = buy_and_hold(data, costs=CostModel(0.0, 0.0), periods_per_year=6_048)
    assert result.periods_per_year == 6_048 and result.calendar.startswith("given")
    r = result.returns
    assert result.metrics["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(6_048), rel=1e-9)


# ----------------------------------------------------------------------------- the risk-free rate
def test_per_bar_rate_compounds_to_the_annual_rate():
    for annual, periods in ((0.04, 252), (0.04, 8_760), (0.10, 12), (-0.005, 365)):
        rate = per_bar_rate(annual, periods)
        assert rate == pytest.approx((1 + annual) ** (1 / periods) - 1, rel=1e-12)
        assert (1 + rate) ** periods == pytest.approx(1 + annual, rel=1e-12)
    assert per_bar_rate(0.0, 252) == 0.0
    assert risk_free_per_period(0.04, 252) == pytest.approx(1.04 ** (1 / 252) - 1, rel=1e-12)


@pytest.mark.parametrize(
    "rate, error", [(-1.0, ValueError), (math.nan, ValueError), (math.inf, ValueError), ("4%", TypeError)]
)
def test_bad_risk_free_rates_raise(rate, error):
    with pytest.raises(error, match="risk_free"):
        compute_metrics([0.01, 0.02, -0.01], periods_per_year=252, risk_free=rate)
    with pytest.raises(error, match="annual_rate"):
        per_bar_rate(rate, 252)


def test_a_percent_risk_free_rate_warns():
    with pytest.warns(UserWarning, match="fraction"):
        compute_metrics([0.01, 0.02, -0.01], periods_per_year=252, risk_free=4.0)


def test_excess_return_sharpe_and_sortino_match_a_hand_calculation():
    rng = np.random.default_rng(7)
    r = rng.normal(0.0005, 0.01, 750)
    rf = 1.04 ** (1 / 252) - 1  # 4 %/year, per exchange day
    excess = r - rf
    sharpe = excess.mean() / excess.std(ddof=1) * math.sqrt(252)
    sortino = excess.mean() / math.sqrt(np.mean(np.minimum(excess, 0.0) ** 2)) * math.sqrt(252)
    m = compute_metrics(r, periods_per_year=252, risk_free=0.04)
    assert m["sharpe"] == pytest.approx(sharpe, rel=1e-12)
    assert m["sortino"] == pytest.approx(sortino, rel=1e-12)
    # the low-level functions take the per-period rate (empyrical's convention)
    assert sharpe_ratio(r, 252, risk_free=rf) == pytest.approx(sharpe, rel=1e-12)
    assert sortino_ratio(r, 252, risk_free=rf) == pytest.approx(sortino, rel=1e-12)
    # the rate changes nothing but Sharpe and Sortino
    zero = compute_metrics(r, periods_per_year=252)
    assert m["sharpe"] < zero["sharpe"]
    assert {k: v for k, v in m.items() if k not in ("sharpe", "sortino")} == {
        k: v for k, v in zero.items() if k not in ("sharpe", "sortino")
    }


def test_hourly_risk_free_uses_the_hourly_calendar():
    data = hourly_market(n=300, n_assets=1, seed=5)
    result = buy_and_hold(data, costs=CostModel(0.0, 0.0), risk_free=0.04)
    rf = 1.04 ** (1 / 8_760) - 1
    excess = result.returns - rf
    assert result.metrics["sharpe"] == pytest.approx(excess.mean() / excess.std(ddof=1) * math.sqrt(8_760), rel=1e-9)
    summary = result.to_dict()
    assert summary["risk_free"] == 0.04 and summary["risk_free_per_period"] == pytest.approx(rf, rel=1e-12)
