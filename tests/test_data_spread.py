"""``MarketData.spread``: the quoted spread behind ``CostModel(half_spread_bps="data")``, validated, carried and loaded."""

import numpy as np
import pytest

from sb3_trading.data import MarketData, load_csv, load_market_data
from sb3_trading.data.market_data import stack_paths
from sb3_trading.data.resample import bootstrap_paths
from sb3_trading.envs.multi_asset import MultiAssetEnv


def market(spread=None, n=6) -> MarketData:
    prices = np.column_stack([np.linspace(100, 105, n), np.linspace(50, 49, n)])
    return MarketData(prices=prices, spread=prices * 0.001 if spread is None else spread, asset_names=["a", "b"])


def test_spread_is_a_float_field_after_volume():
    data = market(np.array([[0.1, 0.0]] * 6, dtype=np.float32))
    assert data.spread.dtype == np.float64 and data.spread.shape == (6, 2) and not data.spread.flags.writeable
    assert market().spread is not None and MarketData(prices=np.ones((3, 1))).spread is None
    names = list(MarketData.__dataclass_fields__)
    assert names.index("spread") == names.index("volume") + 1


def test_spread_is_validated_naming_asset_and_row():
    spread = np.full((6, 2), 0.05)
    spread[3, 1] = -0.01
    with pytest.raises(ValueError, match=r"spread column 'b' has value -0.01 at row 3.*>= 0"):
        market(spread)
    spread[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"spread column 'b' has NaN at row 3"):
        market(spread)
    with pytest.raises(ValueError, match="misaligned"):
        market(np.zeros((5, 2)))


def test_spread_is_carried_by_slices_assets_paths_and_resamples():
    data = market()
    np.testing.assert_array_equal(data.slice(2, 5).spread, data.spread[2:5])
    np.testing.assert_array_equal(data.select_assets(["b"]).spread, data.spread[:, [1]])
    stacked = stack_paths([data, data])
    assert stacked.spread.shape == (12, 2) and stacked.paths()[1].spread is not None
    path = bootstrap_paths(data, 1, seed=0)[0]
    np.testing.assert_allclose(path.spread / path.prices, 0.001)  # the ratio to the close survives


def test_bid_ask_columns_give_the_spread(tmp_path):
    path = tmp_path / "EURUSD.csv"
    path.write_text(
        "date,open,high,low,close,bid,ask\n2024-01-02,1.1,1.2,1.0,1.1,1.0999,1.1001\n"
        "2024-01-03,1.1,1.2,1.0,1.15,1.1498,1.1503\n2024-01-04,1.1,1.2,1.0,1.12,1.1199,1.1201\n"
    )
    data = load_csv(path)
    assert data.n_assets == 1  # bid and ask are fields of the one instrument, not assets
    np.testing.assert_allclose(data.spread[:, 0], [0.0002, 0.0005, 0.0002], atol=1e-12)
    crossed = tmp_path / "X.csv"
    crossed.write_text("date,close,bid,ask\n2024-01-02,1.1,1.0999,1.1001\n2024-01-03,1.1,1.1002,1.1001\n")
    with pytest.raises(ValueError, match=r"ask column 'ask' is below bid column 'bid' .*row 1"):
        load_csv(crossed)
    quoted = tmp_path / "Q.csv"  # a spread column wins over bid/ask
    quoted.write_text("date,close,bid,ask,Spread\n2024-01-02,1.1,1.0999,1.1001,0.0003\n")
    np.testing.assert_allclose(load_csv(quoted).spread, [[0.0003]])


def test_spread_column_loads_like_volume(tmp_path):
    path = tmp_path / "AAPL.csv"
    path.write_text("Date,Open,High,Low,Close,Volume,Spread\n2024-01-02,10,11,9,10,100,0.02\n2024-01-03,10,11,9,10.5,0,0\n")
    data = load_csv(path)
    assert data.asset_names == ("AAPL",) and data.n_features == 0
    np.testing.assert_allclose(data.spread, [[0.02], [0.0]])
    assert load_csv(path, feature_columns=["spread"]).feature_names == ("Spread[AAPL]",)  # like volume, also a feature
    path.write_text("date,close,volume\n2024-01-02,10,100\n2024-01-03,10.5,90\n")
    assert load_csv(path).spread is None
    path.write_text("date,close,spread\n2024-01-02,10,0.02\n2024-01-03,10.5,-0.01\n")
    with pytest.raises(ValueError, match=r"AAPL\.csv.*'spread' has value -0\.01 at 2024-01-03 \(row 1\).*>= 0"):
        load_csv(path)
    path.write_text("date,close,spread\n2024-01-02,1.1,12\n2024-01-03,1.2,11\n")
    with pytest.raises(ValueError, match=r"'spread' has spread 12\.0 at 2024-01-02 \(row 0\), wider than the close"):
        load_csv(path)


def test_long_and_joined_files_carry_the_spread(tmp_path):
    long = tmp_path / "long.csv"
    long.write_text(
        "date,symbol,close,bid,ask\n2024-01-02,A,10,9.9,10.1\n2024-01-02,B,20,19.9,20.0\n"
        "2024-01-03,A,11,10.95,11.05\n2024-01-03,B,21,20.8,21.2\n"
    )
    np.testing.assert_allclose(load_csv(long).spread, [[0.2, 0.1], [0.1, 0.4]], atol=1e-12)
    long.write_text(
        "date,symbol,close,spread\n2024-01-02,A,10,0.2\n2024-01-02,B,20,0.1\n2024-01-03,A,11,0.1\n2024-01-03,B,21,0.4\n"
    )
    np.testing.assert_allclose(load_csv(long).spread, [[0.2, 0.1], [0.1, 0.4]])
    for name, spread in (("X", 0.1), ("Y", 0.3)):
        (tmp_path / f"{name}.csv").write_text(f"date,close,spread\n2024-01-02,10,{spread}\n2024-01-03,11,{spread}\n")
    joined = load_market_data([tmp_path / "X.csv", tmp_path / "Y.csv"])
    np.testing.assert_allclose(joined.spread, [[0.1, 0.3], [0.1, 0.3]])


def test_metatrader_spread_in_points_is_not_read(tmp_path):
    path = tmp_path / "EURUSD.csv"
    path.write_text(
        "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n"
        "2024.01.02\t00:00:00\t1.1\t1.2\t1.0\t1.1\t10\t0\t12\n2024.01.02\t01:00:00\t1.1\t1.2\t1.0\t1.15\t12\t0\t11\n"
    )
    assert load_csv(path).spread is None
    path.write_text("time,open,high,low,close,tick_volume,spread,real_volume\n2024-01-02,1.1,1.2,1.0,1.1,10,12,0\n")
    assert load_csv(path).spread is None  # MetaTrader 5's copy_rates frame


def test_half_spread_from_the_data_prices_each_fill():
    n = 80
    rng = np.random.default_rng(0)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 1)), axis=0))
    spread = np.full((n, 1), 0.2)
    data = MarketData(prices=prices, spread=spread, periods_per_year=252.0)
    spread_env = MultiAssetEnv(data, costs={"commission_bps": 0.0, "half_spread_bps": "data"})
    spread_env.reset()
    t = spread_env._t
    info = spread_env.step(np.array([1.0], dtype=np.float32))[4]
    shares = info["positions"][0]
    assert info["costs"] == pytest.approx(shares * 0.1)  # half of the 0.2 spread per share bought
    assert shares == pytest.approx(1_000_000.0 / prices[t, 0])
    with pytest.raises(ValueError, match="spread column"):
        MultiAssetEnv(MarketData(prices=prices), costs={"half_spread_bps": "data"})
