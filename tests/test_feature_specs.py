"""Tests for parameterised indicator specs (issue 21): values against pandas or by hand, causality by
perturbation for every spec (multi-timeframe included), parsing errors, ``describe()``, and an env built from specs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sb3_trading.data import MarketData
from sb3_trading.envs.multi_asset import MultiAssetEnv
from sb3_trading.features import (
    INDICATORS,
    REGIME_INDICATORS,
    Indicator,
    Parameter,
    compute_features,
    describe,
    ema_ratio,
    macd,
    momentum,
    obv_flow,
    parse_specs,
    price_zscore,
    range_pct,
    rolling_autocorr,
    rolling_kurtosis,
    rolling_skew,
    rsi,
    sma_ratio,
    stochastic_k,
    volume_ratio,
    vwap_ratio,
    williams_r,
)
from tests.lookahead import perturb_future

# ---------------------------------------------------------------------------- helpers


def make_data(seed: int = 0, n_steps: int = 150, n_assets: int = 2, timestamps: bool = True, **drop: bool) -> MarketData:
    """GBM-like OHLCV market on hourly bars (several per day, so daily/weekly groups have many bars)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(2e-4, 0.01, (n_steps, n_assets)), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.003, (n_steps, n_assets)))
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.01, (n_steps, n_assets)))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.01, (n_steps, n_assets)))
    volume = rng.lognormal(10.0, 0.5, (n_steps, n_assets))
    fields = {"open": open_, "high": high, "low": low, "volume": volume}
    fields = {name: None if drop.get(name) else value for name, value in fields.items()}
    stamps = np.datetime64("2024-01-01T00") + np.arange(n_steps) * np.timedelta64(3, "h") if timestamps else None
    return MarketData(prices=close, timestamps=stamps, asset_names=["A", "B", "C", "D"][:n_assets], **fields)


def frame(values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(values)


def log_return_frame(prices: np.ndarray) -> pd.DataFrame:
    return np.log(frame(prices)).diff()


# Every spec exercised: new indicators with non-default parameters, the old ones with theirs, timeframes.
SPECS = (
    "rsi:7",
    "momentum:5,20,60",
    "sma_ratio:5,20",
    "ema_ratio:12,26",
    "zscore:20",
    "stochastic:14",
    "williams_r:14",
    "obv",
    "obv:10",
    "vwap_ratio:20",
    "range:14",
    "skew:60",
    "kurtosis:60",
    "autocorr:20",
    "volume_ratio:20",
    "volatility:10",
    "macd:5,13,4",
    "bollinger:10,1.5",
    "atr:7",
    "volume_zscore:10",
    "tf5:rsi:6",
    "tf3:macd:3,6,2",
    "tf4:momentum:1,3",
    "daily:rsi:5",
    "daily:atr:3",
    "weekly:return",
    "daily:vwap_ratio:3",
)


# ------------------------------------------------------------------ values vs pandas / by hand


def test_momentum_matches_pandas() -> None:
    prices = make_data(seed=1).prices
    for k in (1, 5, 20):
        np.testing.assert_allclose(momentum(prices, k), frame(prices).pct_change(k).to_numpy(), rtol=1e-12, equal_nan=True)


def test_moving_average_ratios_match_pandas() -> None:
    prices = make_data(seed=2).prices
    sma = frame(prices).rolling(5).mean() / frame(prices).rolling(20).mean() - 1
    got = sma_ratio(prices, 5, 20)
    np.testing.assert_allclose(got[19:], sma.to_numpy()[19:], rtol=1e-10)
    assert np.isnan(got[:19]).all()
    ema = frame(prices).ewm(span=12, adjust=False).mean() / frame(prices).ewm(span=26, adjust=False).mean() - 1
    got = ema_ratio(prices, 12, 26)
    np.testing.assert_allclose(got[25:], ema.to_numpy()[25:], rtol=1e-10)
    assert np.isnan(got[:25]).all()


def test_zscore_matches_pandas() -> None:
    prices = make_data(seed=3).prices
    rolling = frame(prices).rolling(20)
    expected = ((frame(prices) - rolling.mean()) / rolling.std(ddof=1)).to_numpy()
    np.testing.assert_allclose(price_zscore(prices, 20), expected, rtol=1e-9, equal_nan=True)


def test_stochastic_and_williams_match_pandas() -> None:
    data = make_data(seed=4)
    hh = frame(data.high).rolling(14).max().to_numpy()
    ll = frame(data.low).rolling(14).min().to_numpy()
    k = (data.prices - ll) / (hh - ll)
    np.testing.assert_allclose(stochastic_k(data.high, data.low, data.prices, 14), 2 * k - 1, rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(williams_r(data.high, data.low, data.prices, 14), k - 1, atol=1e-12, equal_nan=True)
    close = data.prices[:, :1]
    assert np.nanmax(np.abs(stochastic_k(close, close, close, 5))) <= 1.0


def test_obv_flow_by_hand() -> None:
    close = np.array([10.0, 11.0, 10.5, 10.5, 12.0])[:, None]
    volume = np.array([5.0, 100.0, 50.0, 30.0, 20.0])[:, None]
    got = obv_flow(close, volume, window=3)[:, 0]
    assert np.isnan(got[:3]).all()
    assert got[3] == pytest.approx((100 - 50 + 0) / 180)
    assert got[4] == pytest.approx((-50 + 0 + 20) / 100)
    obv = (np.sign(frame(close).diff()).fillna(0) * frame(volume)).cumsum()
    assert got[4] == pytest.approx((obv.iloc[4, 0] - obv.iloc[1, 0]) / volume[2:5].sum())
    assert (obv_flow(close, np.zeros_like(volume), 3)[3:] == 0).all()


def test_vwap_ratio_matches_pandas() -> None:
    data = make_data(seed=5)
    typical = (data.high + data.low + data.prices) / 3
    vwap = (frame(typical * data.volume).rolling(20).sum() / frame(data.volume).rolling(20).sum()).to_numpy()
    np.testing.assert_allclose(
        vwap_ratio(typical, data.prices, data.volume, 20), data.prices / vwap - 1, rtol=1e-9, equal_nan=True
    )
    # without high/low the pipeline averages the close
    close_only = MarketData(prices=data.prices, volume=data.volume)
    got = compute_features(close_only, ("vwap_ratio:20",), include_data_features=False).values
    vwap = (frame(data.prices * data.volume).rolling(20).sum() / frame(data.volume).rolling(20).sum()).to_numpy()
    np.testing.assert_allclose(got, data.prices / vwap - 1, rtol=1e-9, equal_nan=True)


def test_range_matches_pandas() -> None:
    data = make_data(seed=6)
    expected = frame((data.high - data.low) / data.prices).rolling(14).mean().to_numpy()
    np.testing.assert_allclose(range_pct(data.high, data.low, data.prices, 14), expected, rtol=1e-10, equal_nan=True)


def test_skew_kurtosis_match_pandas_rolling() -> None:
    prices = make_data(seed=7, n_steps=200).prices
    returns = log_return_frame(prices)
    skew, kurt = rolling_skew(prices, 60), rolling_kurtosis(prices, 60)
    assert np.isnan(skew[:60]).all() and np.isfinite(skew[60:]).all()
    np.testing.assert_allclose(skew[60:], returns.rolling(60).skew().to_numpy()[60:], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(kurt[60:], returns.rolling(60).kurt().to_numpy()[60:], rtol=1e-7, atol=1e-9)
    flat = np.full((80, 1), 5.0)
    assert (rolling_skew(flat, 10)[10:] == 0).all() and (rolling_kurtosis(flat, 10)[10:] == 0).all()


def test_autocorr_matches_pandas() -> None:
    prices = make_data(seed=8).prices
    returns = log_return_frame(prices)
    expected = np.column_stack([returns[c].rolling(20).corr(returns[c].shift(1)).to_numpy() for c in returns])
    got = rolling_autocorr(prices, 20)
    assert np.isnan(got[:21]).all() and np.isfinite(got[21:]).all()
    np.testing.assert_allclose(got[21:], expected[21:], rtol=1e-8, atol=1e-10)


def test_volume_ratio_matches_pandas() -> None:
    volume = make_data(seed=9).volume
    expected = (frame(volume) / frame(volume).rolling(20).mean()).to_numpy()
    np.testing.assert_allclose(volume_ratio(volume, 20), expected, rtol=1e-10, equal_nan=True)
    assert (volume_ratio(np.zeros((30, 1)), 5)[4:] == 1).all()


def test_parameterised_old_indicators_equal_their_functions() -> None:
    data = make_data(seed=10)
    features = compute_features(data, ("rsi:7", "macd:5,13,4", "bollinger:10,1.5"), include_data_features=False)
    assert features.names[:2] == ("rsi_7[A]", "rsi_7[B]")
    assert features.names[2:8] == tuple(f"{c}_5_13_4[{a}]" for c in ("macd", "macd_signal", "macd_hist") for a in "AB")
    assert features.names[-2:] == ("bollinger_pct_b_10_1.5[A]", "bollinger_pct_b_10_1.5[B]")
    np.testing.assert_array_equal(features.values[:, :2], rsi(data.prices, 7))
    np.testing.assert_array_equal(features.values[:, 6:8], macd(data.prices, 5, 13, 4)[2])


def test_bare_names_keep_old_columns_and_values() -> None:
    data = make_data(seed=11)
    bare = compute_features(data, ("rsi", "macd"), include_data_features=False)
    explicit = compute_features(data, ("rsi:14", "macd:12,26,9"), include_data_features=False)
    assert bare.names[:2] == ("rsi[A]", "rsi[B]") and explicit.names[:2] == ("rsi_14[A]", "rsi_14[B]")
    np.testing.assert_array_equal(bare.values, explicit.values)
    partial = compute_features(data, ("macd:8",), include_data_features=False)  # trailing defaults
    np.testing.assert_array_equal(partial.values[:, -2:], macd(data.prices, 8, 26, 9)[2])
    assert partial.names[0] == "macd_8_26_9[A]"


def test_momentum_has_one_column_per_lookback() -> None:
    data = make_data(seed=12)
    features = compute_features(data, ("momentum:5,20,60",), include_data_features=False)
    assert features.names == tuple(f"momentum_{k}[{a}]" for k in (5, 20, 60) for a in "AB")
    assert features.warmup == 60
    np.testing.assert_array_equal(features.values[:, 2:4], momentum(data.prices, 20))


# ------------------------------------------------------------------------ higher timeframes


def test_bar_timeframe_by_hand() -> None:
    data = make_data(seed=13, timestamps=False)
    got = compute_features(data, ("tf5:return",), include_data_features=False)
    assert got.names == ("tf5_return[A]", "tf5_return[B]")
    ends = np.arange(4, data.n_steps, 5)
    weekly_close = data.prices[ends]
    high_returns = weekly_close[1:] / weekly_close[:-1] - 1  # known at ends[1:]
    for t in range(data.n_steps):
        done = np.flatnonzero(ends <= t)
        if done.size < 2:
            assert np.isnan(got.values[t]).all()
        else:
            np.testing.assert_array_equal(got.values[t], high_returns[done[-1] - 1])


def test_weekly_timeframe_uses_completed_weeks() -> None:
    n = 24 * 40  # hourly bars over 40 days
    rng = np.random.default_rng(14)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 1)), axis=0))
    stamps = np.datetime64("2024-01-01T00") + np.arange(n) * np.timedelta64(1, "h")  # 2024-01-01 was a Monday
    data = MarketData(prices=prices, timestamps=stamps)
    got = compute_features(data, ("weekly:return",), include_data_features=False).values[:, 0]
    week = (stamps.astype("datetime64[D]").astype(np.int64) + 3) // 7
    closes = pd.Series(prices[:, 0]).groupby(week).last()
    returns = closes.pct_change().to_numpy()
    last_bar = pd.Series(np.arange(n)).groupby(week).max().to_numpy()
    # a week is known complete at the first bar of the next one; the data's last week never is
    for j in range(1, len(closes) - 1):
        stop = last_bar[j + 1] + 1 if j + 1 < len(closes) - 1 else n
        np.testing.assert_array_equal(got[last_bar[j] + 1 : stop], returns[j])
    assert np.isnan(got[: last_bar[1] + 1]).all()


@pytest.mark.parametrize("spec", ["weekly:return", "daily:rsi:5", "tf5:macd", "monthly:return"])
def test_timeframe_features_on_truncated_data_equal_the_full_rows(spec: str) -> None:
    n = 24 * 75  # hourly bars over 75 days: several months, weeks and days
    rng = np.random.default_rng(21)
    prices = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 2)), axis=0))
    stamps = np.datetime64("2024-01-01T00") + np.arange(n) * np.timedelta64(1, "h")
    data = MarketData(prices=prices, timestamps=stamps)
    full = compute_features(data, (spec,), include_data_features=False).values
    # a day's last bar and the next (Feb 2-3), Feb's last bar and the next, later (monthly: two months known)
    cuts = (
        (24 * 60 - 1, 24 * 60, 24 * 62 + 5, n - 2)
        if spec.startswith("monthly")
        else (24 * 33 - 1, 24 * 33, 24 * 60 - 1, 24 * 60, n - 2)
    )
    for t in cuts:
        try:
            cut = compute_features(data.slice(0, t + 1), (spec,), include_data_features=False).values
        except ValueError as error:  # too little data up to t for one value: none is shown on the whole data
            assert "warm-up" in str(error) and np.isnan(full[: t + 1]).all(), (spec, t)
            continue
        np.testing.assert_array_equal(cut, full[: t + 1], err_msg=f"{spec} at t={t}")


def test_daily_timeframe_respects_timezone() -> None:
    n = 96
    stamps = np.datetime64("2024-03-04T00") + np.arange(n) * np.timedelta64(1, "h")
    prices = np.linspace(100, 120, n)[:, None]
    utc = MarketData(prices=prices, timestamps=stamps)
    ny = MarketData(prices=prices, timestamps=stamps, timezone="America/New_York")
    first_utc = compute_features(utc, ("daily:return",), include_data_features=False).warmup
    first_ny = compute_features(ny, ("daily:return",), include_data_features=False).warmup
    assert first_utc == 48  # UTC day 2 closes at row 47, known complete at the first bar of day 3
    assert first_ny == 29  # New York is UTC-5 in early March: local days end at rows 4 (partial), 28, 52, ...


def test_timeframe_errors() -> None:
    data = make_data(seed=15, timestamps=False)
    with pytest.raises(ValueError, match="needs MarketData.timestamps"):
        compute_features(data, ("weekly:rsi",))
    with pytest.raises(ValueError, match="unknown timeframe 'hourly'"):
        compute_features(data, ("hourly:rsi:14",))
    with pytest.raises(ValueError, match="k >= 2"):
        compute_features(data, ("tf1:rsi",))
    with pytest.raises(ValueError, match=r"'tf20:rsi:14' cannot be computed .* complete tf20 bars"):
        compute_features(data, ("tf20:rsi:14",))


# ------------------------------------------------------------------------------ causality


@pytest.mark.parametrize("spec", SPECS)
def test_every_spec_is_causal(spec: str) -> None:
    data = make_data(seed=16)
    rng = np.random.default_rng(17)
    reference = compute_features(data, (spec,), include_data_features=False).values
    assert np.isfinite(reference[-1]).all()
    for t in (0, 7, 40, 71, 100, 133, data.n_steps - 2):
        perturbed = compute_features(perturb_future(data, t, rng), (spec,), include_data_features=False).values
        np.testing.assert_array_equal(perturbed[: t + 1], reference[: t + 1], err_msg=f"{spec} looks ahead of t={t}")


def test_all_specs_together_are_causal_and_changed_by_the_future() -> None:
    data = make_data(seed=18)
    reference = compute_features(data, SPECS, include_data_features=False)
    assert len(set(reference.names)) == len(reference.names)
    rng = np.random.default_rng(19)
    for t in (30, 90):
        perturbed = compute_features(perturb_future(data, t, rng), SPECS, include_data_features=False).values
        np.testing.assert_array_equal(perturbed[: t + 1], reference.values[: t + 1])
        assert not np.array_equal(perturbed[t + 1 :], reference.values[t + 1 :], equal_nan=True)


def test_warmups_are_exact_at_other_parameters() -> None:
    data = make_data(seed=20)
    for spec in parse_specs(SPECS):
        if spec.timeframe is None:  # timeframe specs warm up in higher bars
            expected = INDICATORS[spec.name].warmup_of(*spec.params)
            assert compute_features(data, (spec.text,), include_data_features=False).warmup == expected, spec.text


# ---------------------------------------------------------------------------- parsing errors


@pytest.mark.parametrize(
    "spec, match",
    [
        ("rsii:7", r"unknown indicator 'rsii' \(did you mean 'rsi'\?\) in spec 'rsii:7'.*known indicators"),
        ("momentun:5", "did you mean 'momentum'"),
        ("rsi:7,8", r"gives 2 parameters but 'rsi' takes at most 1; write rsi:window \(defaults window=14\)"),
        ("rsi:7.5", r"'rsi:7.5': window must be an integer >= 1, got '7.5'; write rsi:window"),
        ("rsi:x", "window must be an integer"),
        ("rsi:0", "window must be an integer >= 1"),
        ("volatility:1", "window must be an integer >= 2"),
        ("bollinger:20,0", r"num_std must be a number > 0"),
        ("macd:26,12", r"fast must be < slow, got fast=26, slow=12; write macd:fast,slow,signal \(defaults fast=12"),
        ("sma_ratio:20,5", "fast must be < slow"),
        ("rsi:", "empty parameter"),
        ("momentum:5,,20", "empty parameter"),
        ("momentum:5,5", "repeats a value"),
        ("return:3", "takes no parameters"),
        ("rsi:7:8", "unknown timeframe 'rsi'|too many"),
        ("tf5:rsi:7:8", "too many ':'"),
    ],
)
def test_parse_errors(spec: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        compute_features(make_data(seed=21), (spec,))


def test_data_dependent_errors() -> None:
    data = make_data(seed=22, n_steps=50)
    with pytest.raises(ValueError, match=r"'skew:60' cannot be computed .*more than 60 rows.*has 50; use shorter windows"):
        compute_features(data, ("skew:60",))
    with pytest.raises(ValueError, match="'obv:5' needs MarketData.volume"):
        compute_features(make_data(seed=22, volume=True), ("obv:5",))
    with pytest.raises(ValueError, match="needs MarketData.high, MarketData.low"):
        compute_features(make_data(seed=22, high=True, low=True), ("range:5",))


def test_duplicates_are_refused() -> None:
    data = make_data(seed=23)
    for specs in (("rsi", "rsi:14"), ("rsi:7", "rsi:7"), ("macd", "macd:12"), ("weekly:rsi", "weekly:rsi:14")):
        with pytest.raises(ValueError, match="duplicated"):
            compute_features(data, specs)
    with pytest.raises(ValueError, match=r"columns are duplicated: \['momentum_20'\]"):
        compute_features(data, ("momentum:5,20", "momentum:20,60"))
    assert compute_features(data, ("rsi", "rsi:7", "daily:rsi", "tf5:rsi")).n_features == 8
    with pytest.raises(TypeError, match="must be a string"):
        compute_features(data, (7,))


# -------------------------------------------------------------------------------- describe


def test_describe_covers_every_indicator() -> None:
    table = describe()
    assert isinstance(table, pd.DataFrame)
    assert list(table["name"]) == sorted(INDICATORS)
    assert {"name", "params", "columns", "requires", "warmup", "description"} <= set(table.columns)
    row = table.set_index("name").loc["macd"]
    assert row["params"] == "fast=12, slow=26, signal=9" and row["warmup"] == 33 and row["warmup_rule"] == "slow + signal - 2"
    assert table.set_index("name").loc["vwap_ratio", "requires"] == "close, volume, [high], [low]"
    text = describe(as_text=True)
    assert isinstance(text, str) and "tf<k>" in text
    assert all(name in text for name in INDICATORS)
    # every example spec in the table computes, with its documented warm-up
    data = make_data(seed=24, n_steps=120)
    for name, example, warmup in zip(table["name"], table["example"], table["warmup"], strict=True):
        if name in REGIME_INDICATORS:  # long warm-ups, tested in tests/test_regimes.py
            continue
        assert compute_features(data, (example,), include_data_features=False).warmup == warmup, name


def test_registry_accepts_a_new_parameterised_indicator(monkeypatch: pytest.MonkeyPatch) -> None:
    def probability(d: MarketData, n_states: int, window: int) -> tuple[np.ndarray]:
        out = momentum(d.prices, window) * 0 + 1.0 / n_states
        return (out,)

    entry = Indicator(
        columns=("regime_prob",),
        requires=(),
        function=probability,
        params=(Parameter("n_states", 2, 2), Parameter("window", 25, 2)),
        warmup_of=lambda n_states, window: window,
        description="test entry",
    )
    monkeypatch.setitem(INDICATORS, "regime_prob", entry)
    data = make_data(seed=25)
    features = compute_features(data, ("regime_prob", "regime_prob:3,10", "tf2:regime_prob"), include_data_features=False)
    assert features.names[:4] == ("regime_prob[A]", "regime_prob[B]", "regime_prob_3_10[A]", "regime_prob_3_10[B]")
    assert features.values[-1, 2] == pytest.approx(1 / 3)
    assert "regime_prob" in set(describe()["name"])


# ------------------------------------------------------------------------------------ envs


def test_env_built_from_specs() -> None:
    data = make_data(seed=26, n_steps=200)
    env = MultiAssetEnv(data=data, indicators=["rsi:7", "momentum:5,20"], window=4, normalizer=None)
    assert env.feature_names == ("rsi_7[A]", "rsi_7[B]", "momentum_5[A]", "momentum_5[B]", "momentum_20[A]", "momentum_20[B]")
    obs, info = env.reset(seed=0)
    assert info["t"] >= 20
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert np.isfinite(reward)
    with pytest.raises(ValueError, match="window must be an integer"):
        MultiAssetEnv(data=data, indicators=["rsi:seven"])
