"""Loaders and ``MarketData``: layouts, files, slicing, and a clear error for every bad input."""

from __future__ import annotations

import re
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sb3_trading.data import (
    MarketData,
    from_dataframe,
    load_csv,
    load_market_data,
    load_parquet,
    make_gbm_market,
    make_regime_market,
)

DATES = pd.bdate_range("2020-01-01", periods=6)  # 01-01, 01-02, 01-03, 01-06, 01-07, 01-08


def wide_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "date": DATES,
            "AAA": [10.0, 10.5, 10.2, 10.8, 11.0, 10.9],
            "BBB": [50.0, 49.0, 49.5, 51.0, 52.0, 51.5],
        }
    )


def long_frame(data: MarketData, features: dict[str, np.ndarray] | None = None) -> pd.DataFrame:
    """Long layout of ``data``, rows date-major (all symbols of a date, then the next date)."""
    n_steps, n_assets = data.prices.shape
    columns = {
        "date": np.repeat(data.timestamps, n_assets),
        "symbol": np.tile(np.array(data.asset_names, dtype=object), n_steps),
        "open": data.open.ravel(),
        "high": data.high.ravel(),
        "low": data.low.ravel(),
        "close": data.prices.ravel(),
        "volume": data.volume.ravel(),
    }
    for name, values in (features or {}).items():
        columns[name] = values.ravel()
    return pd.DataFrame(columns)


def wide_from(data: MarketData) -> pd.DataFrame:
    frame = pd.DataFrame(data.prices, columns=list(data.asset_names))
    frame.insert(0, "date", data.timestamps)
    return frame


def assert_same(actual: MarketData, expected: MarketData, ohlcv: bool = True) -> None:
    assert actual.asset_names == expected.asset_names
    assert actual.feature_names == expected.feature_names
    np.testing.assert_array_equal(actual.timestamps, expected.timestamps)
    np.testing.assert_allclose(actual.prices, expected.prices, rtol=1e-12)
    np.testing.assert_allclose(actual.features, expected.features, rtol=1e-12)
    if ohlcv:
        for name in ("open", "high", "low", "volume"):
            np.testing.assert_allclose(getattr(actual, name), getattr(expected, name), rtol=1e-12)


@pytest.fixture(scope="module")
def source() -> MarketData:
    return make_gbm_market(n_steps=40, n_assets=3, seed=3)


# ----------------------------------------------------------------------------- layouts
def test_long_and_wide_round_trip(source: MarketData) -> None:
    from_long = from_dataframe(long_frame(source))
    assert_same(from_long, source)
    from_wide = from_dataframe(wide_from(source))
    assert_same(from_wide, source, ohlcv=False)
    assert from_wide.open is None
    indexed = wide_from(source).set_index("date")
    assert_same(from_dataframe(indexed), source, ohlcv=False)
    assert_same(from_dataframe(indexed, layout="wide"), from_wide, ohlcv=False)
    assert_same(from_dataframe(long_frame(source), layout="long"), from_long)


def test_to_frame_round_trip_and_long_dates_in_index() -> None:
    data = make_regime_market(n_steps=25, n_assets=2, seed=2)
    assert_same(from_dataframe(data.to_frame(), feature_columns=list(data.feature_names)), data, ohlcv=False)
    indexed = long_frame(data, {"signal": data.features}).set_index("date")
    assert_same(from_dataframe(indexed, feature_columns=["signal"]), data)


def test_long_asset_order_is_first_appearance(source: MarketData) -> None:
    frame = long_frame(source).sort_values("symbol", ascending=False, kind="stable")  # asset_2 rows first
    data = from_dataframe(frame)
    assert data.asset_names == ("asset_2", "asset_1", "asset_0")
    assert_same(data, source.select_assets(["asset_2", "asset_1", "asset_0"]))


def test_columns_match_case_insensitively(source: MarketData) -> None:
    frame = long_frame(source).rename(columns={"date": "Timestamp", "symbol": "Symbol", "close": "CLOSE", "high": "High"})
    assert_same(from_dataframe(frame, symbol_column="symbol"), source)
    wide = wide_from(source).rename(columns={"date": "DateTime"})
    assert_same(from_dataframe(wide), source, ohlcv=False)


def test_explicit_date_column_and_price_field(source: MarketData) -> None:
    frame = long_frame(source).rename(columns={"date": "when", "close": "adj_close"})
    data = from_dataframe(frame, date_column="when", price_field="adj_close")
    assert_same(data, source)


def test_long_features_are_per_symbol_and_extra_columns_ignored() -> None:
    data = make_regime_market(n_steps=30, n_assets=3, seed=4)
    other = np.arange(data.features.size, dtype=float).reshape(data.features.shape)
    frame = long_frame(data, {"signal": data.features, "other": other})
    frame["sector"] = "tech"  # non-numeric extra column: ignored
    loaded = from_dataframe(frame, feature_columns=["signal"])
    assert_same(loaded, data)  # same names: signal[asset_0], ...
    both = from_dataframe(frame, feature_columns=["signal", "other"])
    assert both.feature_names == data.feature_names + tuple(f"other[{a}]" for a in data.asset_names)
    np.testing.assert_array_equal(both.features[:, 3:], other)


def test_wide_feature_columns(source: MarketData) -> None:
    frame = wide_from(source)
    frame["vix"] = np.linspace(10, 20, len(frame))
    data = from_dataframe(frame, feature_columns=["vix"])
    assert data.asset_names == source.asset_names
    assert data.feature_names == ("vix",)
    np.testing.assert_array_equal(data.features[:, 0], frame["vix"].to_numpy())
    assert from_dataframe(frame).asset_names == (*source.asset_names, "vix")  # without it, vix is an asset


def test_timezone_aware_dates_become_naive_utc() -> None:
    frame = wide_frame()
    frame["date"] = frame["date"].dt.tz_localize("US/Eastern")
    data = from_dataframe(frame)
    assert data.timestamps[0] == np.datetime64("2020-01-01T05:00", "ns")


# ----------------------------------------------------------------------------- files
@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet", ".pq"])
def test_files_load_identically(tmp_path, source: MarketData, suffix: str) -> None:
    path = tmp_path / f"market{suffix}"
    frame = long_frame(source)
    if suffix.startswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    loaded = load_market_data(path)
    assert_same(loaded, source)
    reader = load_csv if suffix.startswith(".csv") else load_parquet
    assert_same(reader(path), loaded)


def test_wide_files_with_features(tmp_path, source: MarketData) -> None:
    frame = wide_from(source)
    frame["vix"] = np.linspace(10, 20, len(frame))
    frame.to_csv(tmp_path / "wide.csv", index=False)
    frame.set_index("date").to_parquet(tmp_path / "wide.parquet")
    from_csv = load_csv(tmp_path / "wide.csv", feature_columns=["vix"], read_kwargs={"sep": ","})
    from_parquet = load_market_data(tmp_path / "wide.parquet", feature_columns=["vix"])
    assert_same(from_csv, from_dataframe(frame, feature_columns=["vix"]), ohlcv=False)
    assert_same(from_parquet, from_csv, ohlcv=False)


def test_unknown_suffix(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"unknown file type 'prices\.xlsx'"):
        load_market_data(tmp_path / "prices.xlsx")


def test_missing_pyarrow_gives_install_hint(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # makes `import pyarrow` raise ImportError
    with pytest.raises(ImportError, match=re.escape('pip install "sb3-trading[parquet]"')):
        load_parquet(tmp_path / "market.parquet")


# ----------------------------------------------------------------------------- MarketData helpers
def test_slicing_helpers(source: MarketData) -> None:
    part = source.slice(5, 15)
    assert part.n_steps == 10
    np.testing.assert_array_equal(part.prices, source.prices[5:15])
    np.testing.assert_array_equal(part.volume, source.volume[5:15])
    np.testing.assert_array_equal(part.timestamps, source.timestamps[5:15])
    assert source.slice(-3).n_steps == 3
    with pytest.raises(ValueError, match="empty"):
        source.slice(10, 10)

    start, end = source.timestamps[3], source.timestamps[7]
    window = source.between(start, end)
    np.testing.assert_array_equal(window.timestamps, source.timestamps[3:8])  # inclusive at both ends
    assert source.between(end=str(np.datetime_as_string(end, unit="D"))).n_steps == 8
    with pytest.raises(ValueError, match="no rows between"):
        source.between("2030-01-01")

    train, valid, test = source.split(0.5, 0.25)
    assert (train.n_steps, valid.n_steps, test.n_steps) == (20, 10, 10)
    np.testing.assert_array_equal(np.vstack([train.prices, valid.prices, test.prices]), source.prices)
    assert train.timestamps[-1] < valid.timestamps[0] < test.timestamps[0]
    with pytest.raises(ValueError, match="split fractions"):
        source.split(0.7, 0.4)

    picked = source.select_assets(["asset_2", "asset_0"])
    assert picked.asset_names == ("asset_2", "asset_0")
    np.testing.assert_array_equal(picked.prices, source.prices[:, [2, 0]])
    np.testing.assert_array_equal(picked.high, source.high[:, [2, 0]])
    with pytest.raises(ValueError, match="unknown assets"):
        source.select_assets(["nope"])


def test_slicing_keeps_features() -> None:
    data = make_regime_market(n_steps=50, n_assets=2, seed=1)
    part = data.between(data.timestamps[10], data.timestamps[19])
    np.testing.assert_array_equal(part.features, data.features[10:20])
    assert part.feature_names == data.feature_names


def test_require_rows_and_min_rows() -> None:
    data = from_dataframe(wide_frame())
    data.require_rows(4)  # 4 + 2 = 6 rows: just enough
    with pytest.raises(ValueError, match=r"window=5 needs at least 7 rows of data, but the data has 6"):
        data.require_rows(5)
    assert from_dataframe(wide_frame(), min_rows=6).n_steps == 6
    with pytest.raises(ValueError, match=r"the data has 6 rows but min_rows=7.*w \+ 2"):
        from_dataframe(wide_frame(), min_rows=7)
    with pytest.raises(ValueError, match="min_rows"):
        from_dataframe(wide_frame(), min_rows=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"features": np.zeros((5, 1))}, r"misaligned columns: features have 5 rows but prices have 6"),
        ({"timestamps": DATES[:5]}, r"misaligned columns: timestamps have 5 rows but prices have 6"),
        ({"open": np.ones((6, 3))}, r"misaligned columns: open has shape \(6, 3\) but prices have shape \(6, 2\)"),
        ({"asset_names": ["AAA"]}, r"misaligned columns: asset_names has 1 names but the data has 2 columns"),
    ],
)
def test_market_data_rejects_misaligned_arrays(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MarketData(prices=np.ones((6, 2)), **kwargs)


# ----------------------------------------------------------------------------- bad wide input
def _set(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    frame = frame.copy()
    if isinstance(value, str):
        frame[column] = frame[column].astype(object)
    frame.loc[row, column] = value
    return frame


@pytest.mark.parametrize(
    "frame, match",
    [
        (_set(wide_frame(), 2, "BBB", np.nan), r"column 'BBB' has NaN at 2020-01-03 \(row 2\)"),
        (_set(wide_frame(), 3, "AAA", np.inf), r"column 'AAA' has inf at 2020-01-06 \(row 3\)"),
        (_set(wide_frame(), 1, "BBB", 0.0), r"column 'BBB' has value 0\.0 at 2020-01-02 \(row 1\); it must be > 0"),
        (_set(wide_frame(), 4, "AAA", -1.0), r"column 'AAA' has value -1\.0 at 2020-01-07 \(row 4\)"),
        (
            wide_frame().iloc[[0, 1, 3, 2, 4, 5]],
            r"dates in 'date' are not sorted: 2020-01-03 \(row 3\) comes after 2020-01-06 \(row 2\)",
        ),
        (wide_frame().iloc[[0, 1, 2, 2, 3, 4]], r"duplicate date 2020-01-03 in 'date' at rows 2 and 3"),
        (wide_frame().drop(columns="date"), r"no date column found.*date_column"),
        (
            _set(wide_frame().astype({"date": str}), 3, "date", "not a date"),
            r"date column 'date' has a value that is not a date: 'not a date' at row 3",
        ),
        (wide_frame().assign(date=range(6)), r"date column 'date' holds numbers"),
        (_set(wide_frame(), 5, "date", None), r"date column 'date' has a missing date at row 5"),
        (wide_frame()[["date"]], r"no asset columns"),
    ],
    ids=[
        "nan",
        "inf",
        "zero",
        "negative",
        "unsorted",
        "duplicate",
        "no-date",
        "bad-date",
        "int-date",
        "missing-date",
        "no-assets",
    ],
)
def test_bad_wide_input(frame: pd.DataFrame, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        from_dataframe(frame)


def test_wide_non_numeric_column() -> None:
    frame = _set(wide_frame(), 3, "BBB", "n/a")
    with pytest.raises(TypeError, match=r"column 'BBB' is not numeric.*'n/a' at 2020-01-06 \(row 3\)"):
        from_dataframe(frame)
    numeric_strings = wide_frame().astype({"AAA": str})  # "10.5" etc. convert cleanly
    np.testing.assert_allclose(from_dataframe(numeric_strings).prices, from_dataframe(wide_frame()).prices)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match=r"feature_columns \['vix'\] not found"):
        from_dataframe(wide_frame(), feature_columns=["vix"])
    with pytest.raises(ValueError, match=r"date_column 'when' not found"):
        from_dataframe(wide_frame(), date_column="when")
    with pytest.raises(ValueError, match="layout must be one of"):
        from_dataframe(wide_frame(), layout="tall")
    with pytest.raises(ValueError, match=r"long layout needs a symbol column 'symbol'"):
        from_dataframe(wide_frame(), layout="long")
    with pytest.raises(ValueError, match=r"'date' is the date column and cannot be a feature"):
        from_dataframe(wide_frame(), feature_columns=["date"])
    with pytest.raises(TypeError, match="needs a pandas DataFrame"):
        from_dataframe(np.ones((3, 2)))


# ----------------------------------------------------------------------------- bad long input
@pytest.fixture()
def small_long() -> pd.DataFrame:
    """Long frame for AAA/BBB over DATES, date-major, rows 2k -> AAA and 2k+1 -> BBB."""
    prices = wide_frame()[["AAA", "BBB"]].to_numpy()
    data = MarketData(
        prices=prices,
        timestamps=DATES,
        asset_names=["AAA", "BBB"],
        open=prices,
        high=prices * 1.01,
        low=prices * 0.99,
        volume=np.full((6, 2), 1000.0),
    )
    return long_frame(data)


def test_small_long_frame_loads(small_long: pd.DataFrame) -> None:
    data = from_dataframe(small_long)
    np.testing.assert_array_equal(data.prices, wide_frame()[["AAA", "BBB"]].to_numpy())


@pytest.mark.parametrize(
    "row, column, value, match",
    [
        (5, "close", np.nan, r"column 'close' has NaN for symbol 'BBB' at 2020-01-03 \(row 5\)"),
        (2, "high", np.inf, r"column 'high' has inf for symbol 'AAA' at 2020-01-02 \(row 2\)"),
        (7, "close", 0.0, r"column 'close' has value 0\.0 for symbol 'BBB' at 2020-01-06 \(row 7\); it must be > 0"),
        (8, "open", -2.0, r"column 'open' has value -2\.0 for symbol 'AAA' at 2020-01-07 \(row 8\)"),
        (9, "volume", -1.0, r"column 'volume' has value -1\.0 for symbol 'BBB' at 2020-01-07 \(row 9\); it must be >= 0"),
    ],
)
def test_bad_long_values(small_long: pd.DataFrame, row: int, column: str, value: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        from_dataframe(_set(small_long, row, column, value))


def test_long_zero_volume_is_fine(small_long: pd.DataFrame) -> None:
    assert from_dataframe(_set(small_long, 9, "volume", 0.0)).volume[4, 1] == 0.0


def test_long_non_numeric(small_long: pd.DataFrame) -> None:
    with pytest.raises(TypeError, match=r"column 'close' is not numeric.*'abc' for symbol 'AAA' at 2020-01-03 \(row 4\)"):
        from_dataframe(_set(small_long, 4, "close", "abc"))


def test_long_duplicate_pair(small_long: pd.DataFrame) -> None:
    frame = pd.concat([small_long, small_long.iloc[[5]]], ignore_index=True)
    with pytest.raises(ValueError, match=r"duplicate \(date, symbol\) pair \(2020-01-03, 'BBB'\) at rows \[5, 12\]"):
        from_dataframe(frame)


def test_long_unsorted_within_symbol(small_long: pd.DataFrame) -> None:
    frame = small_long.iloc[[0, 1, 2, 3, 6, 5, 4, 7, 8, 9, 10, 11]]  # AAA: 01-06 listed before 01-03
    with pytest.raises(
        ValueError, match=r"dates of symbol 'AAA' are not increasing: 2020-01-03 \(row 6\) comes after 2020-01-06 \(row 4\)"
    ):
        from_dataframe(frame)
    by_symbol = small_long.sort_values(["symbol", "date"])  # symbol-major order is fine
    np.testing.assert_array_equal(from_dataframe(by_symbol).prices, from_dataframe(small_long).prices)


def test_long_different_date_ranges(small_long: pd.DataFrame) -> None:
    frame = small_long.drop(index=[1, 3])  # BBB starts on 01-03
    with pytest.raises(
        ValueError,
        match=r"asset 'BBB' has dates 2020-01-03\.\.2020-01-08 but the assets together span 2020-01-01\.\.2020-01-08; "
        r"the range common to all assets is 2020-01-03\.\.2020-01-08",
    ):
        from_dataframe(frame)
    late_end = small_long.drop(index=[10])  # AAA ends on 01-07
    with pytest.raises(ValueError, match=r"asset 'AAA' has dates 2020-01-01\.\.2020-01-07"):
        from_dataframe(late_end)


def test_long_gap_inside_range(small_long: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"asset 'BBB' has no row for 2020-01-06 \(1 of 6 dates missing\)"):
        from_dataframe(small_long.drop(index=[7]))


def test_long_missing_columns(small_long: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=r"long layout needs a price column 'close'"):
        from_dataframe(small_long.drop(columns="close"))
    with pytest.raises(ValueError, match=r"feature_columns \['sentiment'\] not found"):
        from_dataframe(small_long, feature_columns=["sentiment"])
    with pytest.raises(ValueError, match=r"symbol column 'symbol' is missing a value at 2020-01-02 \(row 3\)"):
        from_dataframe(_set(small_long, 3, "symbol", None))


# ----------------------------------------------------------------------------- property
@settings(max_examples=25, deadline=None)
@given(
    arrays(np.float64, st.tuples(st.integers(1, 8), st.integers(1, 4)), elements=st.floats(0.01, 1e6)),
    st.permutations(range(4)),
)
def test_wide_long_agree_for_random_prices(prices: np.ndarray, order: list[int]) -> None:
    n_steps, n_assets = prices.shape
    names = [f"S{i}" for i in order[:n_assets]]
    data = MarketData(prices=prices, timestamps=pd.bdate_range("2021-01-01", periods=n_steps), asset_names=names)
    long = pd.DataFrame(
        {
            "date": np.repeat(data.timestamps, n_assets),
            "symbol": np.tile(np.array(names, dtype=object), n_steps),
            "close": prices.ravel(),
        }
    )
    from_long = from_dataframe(long, check_quality=False)  # random prices jump: no SuspectDataWarning wanted
    from_wide = from_dataframe(wide_from(data), check_quality=False)
    assert from_long.asset_names == from_wide.asset_names == tuple(names)
    np.testing.assert_array_equal(from_long.prices, from_wide.prices)
    np.testing.assert_array_equal(from_long.timestamps, from_wide.timestamps)
