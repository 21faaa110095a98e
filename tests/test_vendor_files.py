"""Real vendor files, read right: one-ticker OHLCV files, MetaTrader and FX exports, epoch and tz-aware
dates, folders/globs/lists of files, compressed and columnar formats, junk columns and suspect data."""

from __future__ import annotations

import bz2
import gzip
import re
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sb3_trading.data import (
    MarketData,
    SuspectDataWarning,
    check_data_quality,
    from_dataframe,
    load_csv,
    load_market_data,
    parse_dates,
)

# loading clean files must not warn about suspect data; tests that expect a warning say so
pytestmark = pytest.mark.filterwarnings("error::sb3_trading.data.quality.SuspectDataWarning")


def bars(dates: pd.DatetimeIndex, seed: int = 0, price: float = 100.0) -> dict[str, np.ndarray]:
    """Consistent OHLCV arrays ``(T,)`` (low <= open, close <= high), rounded to 4 decimals."""
    rng = np.random.default_rng(seed)
    n = len(dates)
    close = price * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = close * np.exp(rng.normal(0.0, 0.003, n))
    high = np.maximum(open_, close) * (1 + rng.uniform(0.0005, 0.01, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0.0005, 0.01, n))
    volume = rng.integers(1_000, 5_000, n).astype(float)
    return {
        "open": open_.round(4),
        "high": np.ceil(high * 1e4) / 1e4,
        "low": np.floor(low * 1e4) / 1e4,
        "close": close.round(4),
        "volume": volume,
    }


def vendor_frame(dates: pd.DatetimeIndex, seed: int = 0, adj: bool = True) -> pd.DataFrame:
    """A Yahoo-style one-ticker daily table: ``Date,Open,High,Low,Close[,Adj Close],Volume``."""
    b = bars(dates, seed)
    frame = pd.DataFrame(
        {"Date": dates.strftime("%Y-%m-%d"), "Open": b["open"], "High": b["high"], "Low": b["low"], "Close": b["close"]}
    )
    if adj:
        frame["Adj Close"] = (b["close"] * np.linspace(0.9, 1.0, len(dates))).round(4)
    frame["Volume"] = b["volume"]
    return frame


def assert_bars(data: MarketData, frame: pd.DataFrame, names: dict[str, str]) -> None:
    """The one asset of ``data`` carries the columns of ``frame`` (``names``: field -> column)."""
    assert data.n_assets == 1
    np.testing.assert_allclose(data.prices[:, 0], frame[names["close"]], rtol=1e-12)
    for field in ("open", "high", "low", "volume"):
        if field in names:
            np.testing.assert_allclose(getattr(data, field)[:, 0], frame[names[field]], rtol=1e-12)


DAYS = pd.bdate_range("2021-03-01", periods=30)
YAHOO = {"open": "Open", "high": "High", "low": "Low", "close": "Close", "volume": "Volume"}


# ----------------------------------------------------------------------------- one instrument, one asset
@pytest.mark.parametrize("adj", [True, False], ids=["adj-close", "no-adj-close"])
def test_vendor_one_ticker_file_is_one_asset(tmp_path: Path, adj: bool) -> None:
    frame = vendor_frame(DAYS, adj=adj)
    frame.to_csv(tmp_path / "AAPL.csv", index=False)
    data = load_market_data(tmp_path / "AAPL.csv")
    assert data.asset_names == ("AAPL",)
    assert data.feature_names == ()
    assert_bars(data, frame, YAHOO)
    np.testing.assert_array_equal(data.timestamps, DAYS.to_numpy())
    assert data.periods_per_year == 252 and data.timezone is None
    assert load_csv(tmp_path / "AAPL.csv", symbol="Apple").asset_names == ("Apple",)
    if adj:
        adjusted = load_market_data(tmp_path / "AAPL.csv", price_field="adj_close")
        factor = frame["Adj Close"] / frame["Close"]
        np.testing.assert_allclose(adjusted.prices[:, 0], frame["Adj Close"], rtol=1e-12)
        for field in ("open", "high", "low"):
            np.testing.assert_allclose(getattr(adjusted, field)[:, 0], frame[YAHOO[field]] * factor, rtol=1e-12)
        np.testing.assert_allclose(adjusted.volume[:, 0], frame["Volume"], rtol=1e-12)
    else:
        with pytest.raises(ValueError, match=r"AAPL\.csv.*price_field='adj_close' asks for adjusted closes.*'close'"):
            load_market_data(tmp_path / "AAPL.csv", price_field="adj_close")


def test_header_spelling_does_not_matter() -> None:
    frame = vendor_frame(DAYS).rename(
        columns={"Date": "DATE", "Open": " open ", "Adj Close": "Adj. Close", "Volume": "vol", "Close": "CLOSE"}
    )
    frame.columns = [c.strip() for c in frame.columns]
    data = from_dataframe(frame)
    assert data.asset_names == ("asset",)  # a DataFrame without symbol=
    assert_bars(data, frame, {"close": "CLOSE", "open": "open", "volume": "vol"})
    snake = vendor_frame(DAYS).rename(columns=lambda c: c.lower().replace(" ", "_"))
    np.testing.assert_allclose(from_dataframe(snake, price_field="adj_close").prices[:, 0], snake["adj_close"])
    assert from_dataframe(frame, symbol="SPY").asset_names == ("SPY",)
    price_only = pd.DataFrame({"Date": DAYS, "Price": frame["CLOSE"]})
    assert from_dataframe(price_only, symbol="X").asset_names == ("X",)  # Date,Price is one instrument too


def test_extra_columns_of_one_ticker_file(tmp_path: Path) -> None:
    frame = vendor_frame(DAYS, adj=False)
    frame["Dividends"] = 0.0
    frame["sentiment"] = np.linspace(-1, 1, len(frame))
    frame.to_csv(tmp_path / "MSFT.csv", index=False)
    data = load_market_data(tmp_path / "MSFT.csv")  # sentiment and Dividends ignored
    assert data.asset_names == ("MSFT",) and data.n_features == 0
    kept = load_market_data(tmp_path / "MSFT.csv", feature_columns=["sentiment"])
    assert kept.feature_names == ("sentiment[MSFT]",)
    np.testing.assert_allclose(kept.features[:, 0], frame["sentiment"])


def test_wide_layout_with_ohlcv_names_raises(tmp_path: Path) -> None:
    vendor_frame(DAYS).to_csv(tmp_path / "AAPL.csv", index=False)
    with pytest.raises(
        ValueError, match=r"AAPL\.csv.*\['Open', 'High', 'Low', 'Close', 'Adj Close', 'Volume'\].*layout='ohlcv'"
    ):
        load_market_data(tmp_path / "AAPL.csv", layout="wide")
    mixed = pd.DataFrame({"date": DAYS, "AAA": 10.0 + np.arange(30), "Close": 20.0 + np.arange(30)})
    with pytest.raises(ValueError, match=r"\['Close'\] of the wide table look like fields of one instrument"):
        from_dataframe(mixed)
    with pytest.raises(ValueError, match=r"symbol='X' names the one instrument of an ohlcv table"):
        from_dataframe(mixed.drop(columns="Close"), symbol="X")


# ----------------------------------------------------------------------------- MetaTrader and FX exports
def metatrader_frame(hours: pd.DatetimeIndex, seed: int = 1) -> pd.DataFrame:
    b = bars(hours, seed, price=1.1)
    return pd.DataFrame(
        {
            "<DATE>": hours.strftime("%Y.%m.%d"),
            "<TIME>": hours.strftime("%H:%M:%S"),
            "<OPEN>": b["open"],
            "<HIGH>": b["high"],
            "<LOW>": b["low"],
            "<CLOSE>": b["close"],
            "<TICKVOL>": b["volume"],
            "<VOL>": 0,
            "<SPREAD>": 12,
        }
    )


def fx_hours(weeks: int = 3) -> pd.DatetimeIndex:
    """Hourly bars Monday 00:00 .. Friday 23:00 (24/5)."""
    hours = pd.date_range("2017-01-02", periods=weeks * 7 * 24, freq="h")
    return hours[hours.day_of_week < 5]


@pytest.mark.parametrize("sep", [",", "\t"], ids=["comma", "tab"])
def test_metatrader_export(tmp_path: Path, sep: str) -> None:
    hours = fx_hours()
    frame = metatrader_frame(hours)
    frame.to_csv(tmp_path / "EURUSD.csv", index=False, sep=sep)
    data = load_market_data(tmp_path / "EURUSD.csv")
    assert data.asset_names == ("EURUSD",)
    np.testing.assert_array_equal(data.timestamps, hours.to_numpy())
    names = {"open": "<OPEN>", "high": "<HIGH>", "low": "<LOW>", "close": "<CLOSE>", "volume": "<TICKVOL>"}
    assert_bars(data, frame, names)  # <VOL> is all zero: the tick volume is used
    assert data.periods_per_year == pytest.approx(6240)


def test_hourly_fx_day_first(tmp_path: Path) -> None:
    hours = fx_hours()
    b = bars(hours, 2, price=1.06)
    frame = pd.DataFrame(
        {
            "Gmt time": hours.strftime("%d.%m.%Y %H:%M:%S.000"),  # 13.01.2017 00:00:00.000
            "Open": b["open"],
            "High": b["high"],
            "Low": b["low"],
            "Close": b["close"],
            "Volume": b["volume"],
        }
    )
    assert "13.01.2017 00:00:00.000" in set(frame["Gmt time"])
    frame.to_csv(tmp_path / "EURUSD_Candlestick_1_Hour.csv", index=False)
    data = load_market_data(tmp_path / "EURUSD_Candlestick_1_Hour.csv")
    assert data.asset_names == ("EURUSD_Candlestick_1_Hour",)
    np.testing.assert_array_equal(data.timestamps, hours.to_numpy())
    assert_bars(data, frame, {f: f.title() for f in ("open", "high", "low", "close", "volume")})
    assert data.periods_per_year == pytest.approx(6240)


@pytest.mark.parametrize("unit, freq, periods", [("ms", "min", None), ("s", "h", 8760)])
def test_epoch_crypto_bars(tmp_path: Path, unit: str, freq: str, periods: float | None) -> None:
    stamps = pd.date_range("2021-06-05", periods=24 * 10, freq=freq)  # starts on a Saturday: 24/7
    b = bars(stamps, 3, price=35_000.0)
    scale = 1_000 if unit == "ms" else 1
    epoch = (stamps - pd.Timestamp("1970-01-01")) // pd.Timedelta("1s") * scale
    frame = pd.DataFrame({"timestamp": epoch, **b})
    frame.to_csv(tmp_path / "BTCUSDT.csv", index=False)
    data = load_market_data(tmp_path / "BTCUSDT.csv")
    assert data.asset_names == ("BTCUSDT",)
    np.testing.assert_array_equal(data.timestamps, stamps.to_numpy())
    assert_bars(data, frame, {f: f for f in b})
    if periods is not None:  # ten days of hourly 24/7 bars
        assert data.periods_per_year == pytest.approx(periods)


def test_tz_aware_timestamps_become_utc_and_keep_their_zone(tmp_path: Path) -> None:
    local = pd.date_range("2021-03-01 09:30", periods=20, freq="B", tz="America/New_York")
    frame = vendor_frame(pd.DatetimeIndex(local.tz_localize(None)), adj=False)
    frame["Date"] = local.strftime("%Y-%m-%dT%H:%M:%S%z").str.replace(r"(\d\d)$", r":\1", regex=True)  # -05:00
    frame.to_csv(tmp_path / "IBM.csv", index=False)
    data = load_market_data(tmp_path / "IBM.csv")
    np.testing.assert_array_equal(data.timestamps, local.tz_convert("UTC").tz_localize(None).to_numpy())
    assert data.timezone == "UTC-05:00/UTC-04:00"  # the DST change on 2021-03-14
    in_frame = frame.assign(Date=local)  # a tz-aware datetime column
    assert from_dataframe(in_frame).timezone == "America/New_York"
    np.testing.assert_array_equal(from_dataframe(in_frame).timestamps, data.timestamps)


# ----------------------------------------------------------------------------- several files
def write_tickers(folder: Path, dates: pd.DatetimeIndex, drop: dict[str, list[int]] | None = None) -> dict[str, pd.DataFrame]:
    folder.mkdir(exist_ok=True)
    frames = {}
    for seed, name in enumerate(["AAA", "BBB", "CCC"]):
        frame = vendor_frame(dates, seed=seed, adj=False)
        frame = frame.drop(index=(drop or {}).get(name, [])).reset_index(drop=True)
        frame.to_csv(folder / f"{name}.csv", index=False)
        frames[name] = frame
    (folder / "README.md").write_text("not data")
    return frames


def test_folder_glob_and_list_of_files(tmp_path: Path) -> None:
    frames = write_tickers(tmp_path / "daily", DAYS)
    data = load_market_data(tmp_path / "daily")
    assert data.asset_names == ("AAA", "BBB", "CCC")
    for name in data.asset_names:
        assert_bars(data.select_assets([name]), frames[name], YAHOO)
    np.testing.assert_array_equal(data.timestamps, DAYS.to_numpy())
    from_glob = load_market_data(str(tmp_path / "daily" / "*.csv"))
    np.testing.assert_array_equal(from_glob.prices, data.prices)
    listed = load_market_data([str(tmp_path / "daily" / "CCC.csv"), tmp_path / "daily" / "AAA.csv"])
    assert listed.asset_names == ("CCC", "AAA")  # a list keeps its order
    single = load_market_data([str(tmp_path / "daily" / "BBB.csv")])  # a list of one is that file
    np.testing.assert_array_equal(single.prices, load_market_data(tmp_path / "daily" / "BBB.csv").prices)
    assert single.asset_names == ("BBB",)
    with pytest.raises(ValueError, match=r"no files match the pattern"):
        load_market_data(str(tmp_path / "daily" / "*.parquet"))
    with pytest.raises(ValueError, match=r"'AAA' comes from both .*AAA\.csv.*AAA\.csv\.gz"):
        frames["AAA"].to_csv(tmp_path / "daily" / "AAA.csv.gz", index=False)
        load_market_data(tmp_path / "daily")
    with pytest.raises(ValueError, match=r"symbol='X' names the instrument of one file, but 2 files"):
        load_market_data([tmp_path / "daily" / "AAA.csv", tmp_path / "daily" / "BBB.csv"], symbol="X")


def test_missing_dates_across_files(tmp_path: Path) -> None:
    write_tickers(tmp_path / "gappy", DAYS, drop={"BBB": [3, 7, 8, 9]})
    with pytest.raises(
        ValueError,
        match=r"BBB\.csv: has no row for 2021-03-04, 2021-03-10, 2021-03-11, \.\.\. \(4 of 30 dates missing\).*join='inner'",
    ):
        load_market_data(tmp_path / "gappy")
    with pytest.warns(UserWarning, match=r"join='inner' dropped 4 of 30 dates.*'AAA': 4, 'BBB': 0, 'CCC': 4"):
        data = load_market_data(tmp_path / "gappy", join="inner")
    assert data.n_steps == 26 and data.n_assets == 3
    assert np.datetime64("2021-03-04") not in data.timestamps
    with pytest.raises(ValueError, match="join must be one of"):
        load_market_data(tmp_path / "gappy", join="outer")


def test_long_and_wide_files(tmp_path: Path) -> None:
    frames = {name: vendor_frame(DAYS, seed=s, adj=False) for s, name in enumerate(["AAA", "BBB"])}
    long = pd.concat([f.assign(Ticker=name) for name, f in frames.items()], ignore_index=True)
    long.to_csv(tmp_path / "long.csv", index=False)
    data = load_market_data(tmp_path / "long.csv", symbol_column="ticker")
    assert data.asset_names == ("AAA", "BBB")
    assert_bars(data.select_assets(["BBB"]), frames["BBB"], YAHOO)
    wide = pd.DataFrame({"date": DAYS, "CCC": frames["AAA"]["Close"] * 2, "DDD": frames["BBB"]["Close"] * 3})
    wide.to_csv(tmp_path / "wide.csv", index=False)
    assert load_market_data(tmp_path / "wide.csv").asset_names == ("CCC", "DDD")
    with pytest.warns(UserWarning, match=r"open/high/low/volume dropped for all assets.*'wide'"):
        both = load_market_data([tmp_path / "long.csv", tmp_path / "wide.csv"], symbol_column="ticker")
    assert both.asset_names == ("AAA", "BBB", "CCC", "DDD")
    assert both.open is None  # the wide file has no opens
    np.testing.assert_allclose(both.prices[:, 2], wide["CCC"])


@pytest.mark.parametrize("suffix", [".csv.gz", ".csv.zip", ".csv.bz2", ".zip", ".gz", ".bz2", ".parquet", ".feather", ".ft"])
def test_compressed_and_columnar_files(tmp_path: Path, suffix: str) -> None:
    frame = vendor_frame(DAYS)
    path = tmp_path / f"NVDA{suffix}"
    if suffix in (".parquet",):
        frame.to_parquet(path, index=False)
    elif suffix in (".feather", ".ft"):
        frame.to_feather(path)
    else:
        text = frame.to_csv(index=False).encode()
        if suffix.endswith(".zip"):
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("export.csv", text)
        elif suffix.endswith(".gz"):
            path.write_bytes(gzip.compress(text))
        else:
            path.write_bytes(bz2.compress(text))
    data = load_market_data(path)
    assert data.asset_names == ("NVDA",)
    assert_bars(data, frame, YAHOO)
    np.testing.assert_array_equal(data.timestamps, DAYS.to_numpy())


def test_text_variants(tmp_path: Path) -> None:
    frame = vendor_frame(DAYS, adj=False)
    frame.to_csv(tmp_path / "TAB.tsv", index=False, sep="\t")
    frame.to_csv(tmp_path / "TXT.txt", index=False, sep="\t")
    frame.to_csv(tmp_path / "EU.csv", index=False, sep=";", decimal=",")  # European: ";" and decimal commas
    for name in ("TAB.tsv", "TXT.txt", "EU.csv"):
        data = load_market_data(tmp_path / name)
        assert data.asset_names == (name.split(".")[0],)
        assert_bars(data, frame, YAHOO)


def test_errors_inside_a_folder_name_the_file(tmp_path: Path) -> None:
    write_tickers(tmp_path / "daily", DAYS)
    broken = vendor_frame(DAYS, seed=9, adj=False)
    broken["Close"] = broken["Close"].astype(object)
    broken.loc[5, "Close"] = "1O2.5"  # a letter O
    broken.to_csv(tmp_path / "daily" / "DDD.csv", index=False)
    with pytest.raises(TypeError, match=r"DDD\.csv: column 'Close' is not numeric.*'1O2.5' at 2021-03-08 \(row 5\)"):
        load_market_data(tmp_path / "daily")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match=r"folder .*empty' holds no market files"):
        load_market_data(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match=r"nope\.csv' does not exist"):
        load_market_data(tmp_path / "nope.csv")


def test_zip_with_two_files_raises(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "two.zip", "w") as archive:
        archive.writestr("a.csv", "date,AAA\n2020-01-02,1\n")
        archive.writestr("b.csv", "date,BBB\n2020-01-02,1\n")
    with pytest.raises(ValueError, match=r"two\.zip: zip archive holds 2 files"):
        load_market_data(tmp_path / "two.zip")


# ----------------------------------------------------------------------------- dates
def _dated(tmp_path: Path, dates: list[str], name: str = "dates.csv") -> Path:
    n = len(dates)
    frame = pd.DataFrame({"date": dates, "AAA": 10.0 + np.arange(n) % 3, "BBB": 20.0 + np.arange(n) % 4})
    frame.to_csv(tmp_path / name, index=False)
    return tmp_path / name


def test_ambiguous_slash_dates_raise_until_told(tmp_path: Path) -> None:
    path = _dated(tmp_path, [f"{d:02d}/{d + 1:02d}/2017" for d in range(1, 11)])  # 01/02/2017, 02/03/2017, ...
    with pytest.raises(ValueError, match=r"dates\.csv.*ambiguous.*dayfirst=.*date_format="):
        load_market_data(path)
    day_first = load_market_data(path, dayfirst=True)
    assert pd.Timestamp(day_first.timestamps[0]) == pd.Timestamp("2017-02-01")
    assert pd.Timestamp(day_first.timestamps[1]) == pd.Timestamp("2017-03-02")
    month_first = load_market_data(path, date_format="%m/%d/%Y")
    assert pd.Timestamp(month_first.timestamps[0]) == pd.Timestamp("2017-01-02")


def test_us_dates_are_read_month_first_when_only_that_fits(tmp_path: Path) -> None:
    data = load_market_data(_dated(tmp_path, ["12/29/2016", "12/30/2016", "01/03/2017", "01/04/2017"]))
    assert [str(pd.Timestamp(t).date()) for t in data.timestamps] == ["2016-12-29", "2016-12-30", "2017-01-03", "2017-01-04"]


def test_dotted_dates_are_never_read_month_first(tmp_path: Path) -> None:
    data = load_market_data(_dated(tmp_path, [f"{d:02d}.02.2017" for d in range(1, 13)]))  # 01.02.2017 .. 12.02.2017
    np.testing.assert_array_equal(data.timestamps, pd.date_range("2017-02-01", "2017-02-12").to_numpy())
    assert data.periods_per_year != 12


def test_later_unambiguous_row_decides(tmp_path: Path) -> None:
    for sep in (".", "/"):
        dates = [f"{d:02d}{sep}02{sep}2017" for d in range(6, 16)]  # 06.02.2017 ... 13.02.2017 ...
        data = load_market_data(_dated(tmp_path, dates))
        np.testing.assert_array_equal(data.timestamps, pd.date_range("2017-02-06", "2017-02-15").to_numpy())


def test_bad_dates_name_the_row(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"bad\.csv.*not a date: '2017-01-32' at row 2"):
        load_market_data(_dated(tmp_path, ["2017-01-30", "2017-01-31", "2017-01-32"], "bad.csv"))
    with pytest.raises(ValueError, match=r"mixes day-first and month-first dates"):
        load_market_data(_dated(tmp_path, ["13/01/2017", "01/14/2017"], "mixed.csv"))
    with pytest.raises(ValueError, match=r"holds numbers .* no plausible date"):
        from_dataframe(pd.DataFrame({"date": [1, 2, 3], "AAA": [1.0, 2.0, 3.0]}))


@pytest.mark.parametrize(
    "values, expected",
    [
        ([20170113, 20170116], ["2017-01-13", "2017-01-16"]),
        ([1484265600, 1484524800], ["2017-01-13", "2017-01-16"]),
        ([1484265600000, 1484524800000], ["2017-01-13", "2017-01-16"]),
        ([1484265600000000, 1484524800000000], ["2017-01-13", "2017-01-16"]),
        ([1484265600000000000, 1484524800000000000], ["2017-01-13", "2017-01-16"]),
        (["2017.01.13", "2017.01.16"], ["2017-01-13", "2017-01-16"]),
        (["Jan 13, 2017", "Jan 16, 2017"], ["2017-01-13", "2017-01-16"]),
        (["13.01.2017 00:00:00.000 GMT+0100", "16.01.2017 00:00:00.000 GMT+0100"], ["2017-01-12 23:00", "2017-01-15 23:00"]),
    ],
)
def test_parse_dates_formats(values: list, expected: list[str]) -> None:
    parsed = parse_dates(pd.Series(values))
    np.testing.assert_array_equal(parsed.values, pd.DatetimeIndex(expected).to_numpy())
    assert parsed.timezone == ("UTC+01:00" if "GMT" in str(values[0]) else None)


def test_dash_dates_are_not_time_zones() -> None:
    parsed = parse_dates(pd.Series(["01-13-2017", "01-16-2017"]))  # "-2017" is no UTC offset
    assert parsed.timezone is None and parsed.how == "month-first"
    assert parse_dates(pd.Series(["2017-01-13T09:30:00+01"])).timezone == "UTC+01:00"


# ----------------------------------------------------------------------------- junk never becomes an asset
def test_saved_index_column(tmp_path: Path) -> None:
    frame = pd.DataFrame({"date": DAYS[:5], "AAA": [1.0, 1.1, 1.2, 1.1, 1.3]})
    frame.to_csv(tmp_path / "indexed.csv")  # header ",date,AAA"
    assert (tmp_path / "indexed.csv").read_text().startswith(",date,AAA")
    assert load_market_data(tmp_path / "indexed.csv").asset_names == ("AAA",)
    frame.set_index(pd.Index([5, 6, 7, 8, 9])).to_csv(tmp_path / "shifted.csv")
    with pytest.raises(ValueError, match=r"shifted\.csv: column 'Unnamed: 0' has no name in the header"):
        load_market_data(tmp_path / "shifted.csv")


def test_duplicate_headers(tmp_path: Path) -> None:
    (tmp_path / "dupes.csv").write_text("date,AAA,BBB,AAA\n2020-01-02,1,2,3\n2020-01-03,1,2,3\n")
    with pytest.raises(ValueError, match=r"dupes\.csv: the header names column 'AAA' twice \(columns 1 and 3\)"):
        load_market_data(tmp_path / "dupes.csv")


def test_boolean_complex_and_second_date_columns(tmp_path: Path) -> None:
    frame = pd.DataFrame({"date": DAYS[:4], "AAA": [1.0, 2.0, 3.0, 4.0]})
    frame.assign(halted=[True, False, False, True]).to_csv(tmp_path / "bools.csv", index=False)
    with pytest.raises(TypeError, match=r"bools\.csv: column 'halted' holds booleans"):
        load_market_data(tmp_path / "bools.csv")
    with pytest.raises(TypeError, match=r"column 'z' holds complex numbers"):
        from_dataframe(frame.assign(z=np.array([1 + 1j, 2, 3, 4])))
    frame.assign(settled=DAYS[1:5].strftime("%Y-%m-%d")).to_csv(tmp_path / "two_dates.csv", index=False)
    with pytest.raises(ValueError, match=r"two_dates\.csv: column 'settled' holds dates.*second date column"):
        load_market_data(tmp_path / "two_dates.csv")


def test_close_outside_the_bar_raises(tmp_path: Path) -> None:
    frame = vendor_frame(DAYS, adj=False)
    frame.loc[7, "Close"] = frame.loc[7, "High"] * 1.01
    frame.to_csv(tmp_path / "BAD.csv", index=False)
    with pytest.raises(ValueError, match=r"BAD\.csv: close of asset 'BAD' is above the high at row 7 \(2021-03-10"):
        load_market_data(tmp_path / "BAD.csv")
    frame = vendor_frame(DAYS, adj=False)
    frame.loc[4, "Open"] = frame.loc[4, "Low"] * 0.99
    with pytest.raises(ValueError, match=r"open of asset 'asset' is below the low at row 4"):
        from_dataframe(frame)
    with pytest.raises(ValueError, match=r"close of asset 'asset_0' is above the high at row 1"):
        MarketData(prices=[1.0, 2.0], high=[1.0, 1.5], low=[0.5, 0.5])


# ----------------------------------------------------------------------------- suspect data warns
def _closes(close: np.ndarray, volume: np.ndarray | None = None) -> MarketData:
    dates = pd.bdate_range("2022-01-03", periods=len(close))
    return MarketData(prices=close, timestamps=dates, asset_names=["XYZ"], volume=volume)


def test_split_warning_fires_on_unadjusted_split_not_on_a_crash() -> None:
    rng = np.random.default_rng(5)
    walk = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 60)))
    split = walk.copy()
    split[30:] /= 4  # an unadjusted 4:1 split
    with pytest.warns(
        SuspectDataWarning, match=r"asset 'XYZ': close moves -7\d% in one bar at row 30 \(2022-02-14\).*4:1 split"
    ):
        messages = check_data_quality(_closes(split))
    assert len(messages) == 1
    crash = walk.copy()
    crash[30:] *= 0.7  # a real 30 % crash that stays down
    assert check_data_quality(_closes(crash)) == []
    bad_print = walk.copy()
    bad_print[40] *= 1.9  # one bad print that reverts
    with pytest.warns(SuspectDataWarning, match=r"row 40 .*reverts within 5 bars"):
        check_data_quality(_closes(bad_print))


def test_split_warning_from_a_loader(tmp_path: Path) -> None:
    frame = vendor_frame(DAYS, adj=False)
    for column in ("Open", "High", "Low", "Close"):
        frame.loc[15:, column] /= 2
    frame.to_csv(tmp_path / "SPLIT.csv", index=False)
    with pytest.warns(SuspectDataWarning, match=r"asset 'SPLIT'.*row 15 \(2021-03-22\).*2:1 split"):
        load_market_data(tmp_path / "SPLIT.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_market_data(tmp_path / "SPLIT.csv", check_quality=False)


def test_zero_volume_and_stale_price_runs_warn() -> None:
    close = 100 + np.sin(np.arange(40))
    volume = np.full(40, 1000.0)
    volume[10:16] = 0  # 6 bars
    volume[30:33] = 0  # 3 bars: too short
    close[20:26] = close[20]  # 6 equal closes
    with pytest.warns(SuspectDataWarning) as record:
        messages = check_data_quality(_closes(close, volume))
    assert len(messages) == 2 and len(record) == 2
    assert re.search(r"asset 'XYZ': close stays at .* for 6 bars from row 20 \(2022-01-31\)", messages[0])
    assert re.search(r"asset 'XYZ': volume is 0 for 6 bars from row 10 \(2022-01-17\)", messages[1])
    assert check_data_quality(_closes(close, volume), stale_bars=7, zero_volume_bars=7, warn=False) == []
