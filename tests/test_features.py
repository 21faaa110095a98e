"""Tests for ``sb3_trading.features``: causality, hand-computed values, normaliser, pipeline, windows."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sb3_trading.data import MarketData
from sb3_trading.features import (
    DEFAULT_INDICATORS,
    INDICATORS,
    REGIME_INDICATORS,
    FeatureMatrix,
    FeatureNormalizer,
    average_true_range,
    bollinger_percent_b,
    compute_features,
    gather_windows,
    log_returns,
    macd,
    rolling_volatility,
    rsi,
    simple_returns,
    volume_zscore,
)

# ---------------------------------------------------------------------------- helpers


def make_data(seed: int = 0, n_steps: int = 120, n_assets: int = 2, n_features: int = 1, **drop: bool) -> MarketData:
    """GBM-like OHLCV market; ``drop`` names OHLCV fields to leave out (``volume=True``)."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(2e-4, 0.01, (n_steps, n_assets)), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.003, (n_steps, n_assets)))
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.01, (n_steps, n_assets)))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.01, (n_steps, n_assets)))
    volume = rng.lognormal(10.0, 0.5, (n_steps, n_assets))
    assert (high >= low).all() and (low > 0).all() and (volume > 0).all()
    fields = {"open": open_, "high": high, "low": low, "volume": volume}
    fields = {name: None if drop.get(name) else value for name, value in fields.items()}
    return MarketData(prices=close, features=rng.normal(size=(n_steps, n_features)), **fields)


def perturb_after(data: MarketData, t: int, rng: np.random.Generator, scale: float = 1.0) -> MarketData:
    """Same market with every field strictly after row ``t`` multiplied by random factors (OHLC kept consistent)."""
    rows = slice(t + 1, None)

    def factor(shape: tuple[int, ...]) -> np.ndarray:
        return np.exp(rng.uniform(-scale, scale, shape))

    close = data.prices.copy()
    close[rows] *= factor(close[rows].shape)
    open_ = data.open.copy()
    open_[rows] *= factor(open_[rows].shape)
    high = data.high.copy()
    high[rows] = np.maximum(high[rows] * factor(high[rows].shape), np.maximum(open_[rows], close[rows]))
    low = data.low.copy()
    low[rows] = np.minimum(low[rows] * factor(low[rows].shape), np.minimum(open_[rows], close[rows]))
    volume = data.volume.copy()
    volume[rows] *= factor(volume[rows].shape)
    features = data.features.copy()
    features[rows] += rng.normal(0.0, 10.0, features[rows].shape)
    return MarketData(prices=close, open=open_, high=high, low=low, volume=volume, features=features)


def leading_nan_rows(values: np.ndarray) -> int:
    """Number of leading rows containing a NaN, checking that later rows are finite."""
    bad = np.flatnonzero(np.isnan(values).reshape(len(values), -1).any(axis=1))
    warmup = int(bad[-1]) + 1 if bad.size else 0
    assert np.isnan(values[:warmup]).reshape(warmup, -1).any(axis=1).all(), "NaN rows must be leading"
    assert np.isfinite(values[warmup:]).all()
    return warmup


def wilder(values: list[float], window: int) -> list[float]:
    """Reference Wilder smoothing by explicit recursion, seeded with the first value."""
    out = [values[0]]
    for value in values[1:]:
        out.append(out[-1] + (value - out[-1]) / window)
    return out


def ema(values: list[float], span: int) -> list[float]:
    """Reference span EMA by explicit recursion, seeded with the first value."""
    alpha = 2.0 / (span + 1)
    out = [values[0]]
    for value in values[1:]:
        out.append((1 - alpha) * out[-1] + alpha * value)
    return out


# Indicator functions with small, non-default parameters, called on a MarketData.
FUNCTIONS = {
    "simple_returns": lambda d: simple_returns(d.prices),
    "log_returns": lambda d: log_returns(d.prices),
    "rolling_volatility": lambda d: rolling_volatility(d.prices, window=7),
    "rsi": lambda d: rsi(d.prices, window=5),
    "macd": lambda d: np.stack(macd(d.prices, fast=3, slow=8, signal=4)),
    "bollinger_percent_b": lambda d: bollinger_percent_b(d.prices, window=6, num_std=1.5),
    "average_true_range": lambda d: average_true_range(d.high, d.low, d.prices, window=4),
    "volume_zscore": lambda d: volume_zscore(d.volume, window=5),
}
CUTS = (0, 3, 10, 37, 60, 118)
#: the registry less the regimes, whose long warm-up (tests/test_regimes.py) does not fit these small tables
TECHNICAL = tuple(name for name in INDICATORS if name not in REGIME_INDICATORS)


# ------------------------------------------------------------------------ look-ahead


@pytest.mark.parametrize("name", sorted(TECHNICAL))
def test_registry_indicator_has_no_lookahead(name: str) -> None:
    data = make_data(seed=1)
    rng = np.random.default_rng(2)
    reference = compute_features(data, (name,), include_data_features=False).values
    for t in CUTS:
        perturbed = compute_features(perturb_after(data, t, rng), (name,), include_data_features=False).values
        np.testing.assert_array_equal(perturbed[: t + 1], reference[: t + 1], err_msg=f"{name} looks ahead of t={t}")
        assert not np.array_equal(perturbed[t + 1 :], reference[t + 1 :], equal_nan=True), "perturbation had no effect"


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_indicator_function_has_no_lookahead(name: str) -> None:
    data = make_data(seed=3, n_steps=80)
    rng = np.random.default_rng(4)
    reference = FUNCTIONS[name](data)
    for t in (0, 2, 5, 9, 30, 78):
        perturbed = FUNCTIONS[name](perturb_after(data, t, rng))
        np.testing.assert_array_equal(perturbed[..., : t + 1, :], reference[..., : t + 1, :])


def test_compute_features_has_no_lookahead() -> None:
    data = make_data(seed=5)
    rng = np.random.default_rng(6)
    reference = compute_features(data, TECHNICAL)
    for t in CUTS:
        perturbed = compute_features(perturb_after(data, t, rng), TECHNICAL)
        assert perturbed.warmup == reference.warmup
        np.testing.assert_array_equal(perturbed.values[: t + 1], reference.values[: t + 1])


@settings(max_examples=25, deadline=None)
@given(
    n_steps=st.integers(min_value=35, max_value=110),
    cut=st.floats(min_value=0.0, max_value=1.0),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    scale=st.floats(min_value=1e-6, max_value=3.0),
)
def test_compute_features_no_lookahead_property(n_steps: int, cut: float, seed: int, scale: float) -> None:
    data = make_data(seed=seed, n_steps=n_steps, n_assets=3)
    t = min(int(cut * n_steps), n_steps - 2)
    perturbed = perturb_after(data, t, np.random.default_rng(seed + 1), scale=scale)
    reference = compute_features(data, TECHNICAL).values
    np.testing.assert_array_equal(compute_features(perturbed, TECHNICAL).values[: t + 1], reference[: t + 1])


# -------------------------------------------------------------- hand-computed values


def test_returns_by_hand() -> None:
    prices = np.array([[100.0, 10.0], [110.0, 10.0], [99.0, 12.0], [99.0, 6.0]])
    nan = np.nan
    np.testing.assert_allclose(simple_returns(prices), [[nan, nan], [0.1, 0.0], [-0.1, 0.2], [0.0, -0.5]], rtol=1e-12)
    expected = [[nan, nan], [np.log(1.1), 0.0], [np.log(0.9), np.log(1.2)], [0.0, np.log(0.5)]]
    np.testing.assert_allclose(log_returns(prices), expected, rtol=1e-12)


def test_rolling_volatility_by_hand() -> None:
    prices = np.array([100.0, 101.0, 99.5, 102.0, 103.5, 101.0, 100.0, 104.0, 104.0, 103.0])[:, None]
    window = 4
    vol = rolling_volatility(prices, window=window)
    returns = np.log(prices[1:, 0] / prices[:-1, 0])  # returns[i] is the return at row i + 1
    assert np.isnan(vol[:window]).all()
    for t in range(window, len(prices)):
        assert vol[t, 0] == pytest.approx(np.std(returns[t - window : t], ddof=1), rel=1e-12)


def test_rsi_by_hand() -> None:
    prices = [44.0, 44.5, 44.0, 45.0, 46.0, 45.5, 47.0, 47.0, 46.0, 46.5]
    window = 3
    changes = [b - a for a, b in zip(prices[:-1], prices[1:], strict=True)]
    avg_gain = wilder([max(c, 0.0) for c in changes], window)
    avg_loss = wilder([max(-c, 0.0) for c in changes], window)
    got = rsi(np.array(prices)[:, None], window=window)[:, 0]
    assert np.isnan(got[:window]).all()
    for t in range(window, len(prices)):
        classic = 100.0 - 100.0 / (1.0 + avg_gain[t - 1] / avg_loss[t - 1])
        assert got[t] == pytest.approx((classic - 50.0) / 50.0, rel=1e-12)


def test_macd_by_hand() -> None:
    prices = [10.0, 10.5, 10.2, 10.8, 11.0, 10.7, 11.3, 11.6, 11.1, 11.9, 12.2, 12.0]
    fast, slow, signal = 2, 4, 3
    line = [f - s for f, s in zip(ema(prices, fast), ema(prices, slow), strict=True)]
    signal_line = ema(line[slow - 1 :], signal)  # the signal EMA starts at the first valid line value
    got_line, got_signal, got_hist = (x[:, 0] for x in macd(np.array(prices)[:, None], fast=fast, slow=slow, signal=signal))
    assert np.isnan(got_line[: slow - 1]).all() and np.isfinite(got_line[slow - 1 :]).all()
    assert np.isnan(got_signal[: slow + signal - 2]).all() and np.isnan(got_hist[: slow + signal - 2]).all()
    for t in range(slow - 1, len(prices)):
        assert got_line[t] == pytest.approx(line[t] / prices[t], rel=1e-9)
    for t in range(slow + signal - 2, len(prices)):
        sig = signal_line[t - (slow - 1)]
        assert got_signal[t] == pytest.approx(sig / prices[t], rel=1e-9)
        assert got_hist[t] == pytest.approx((line[t] - sig) / prices[t], rel=1e-9)


def test_bollinger_percent_b_by_hand() -> None:
    prices = np.array([20.0, 21.0, 22.5, 21.5, 23.0, 22.0, 24.0])[:, None]
    window, num_std = 5, 2.0
    got = bollinger_percent_b(prices, window=window, num_std=num_std)
    assert np.isnan(got[: window - 1]).all()
    for t in (4, 6):
        chunk = prices[t - window + 1 : t + 1, 0]
        lower = chunk.mean() - num_std * np.std(chunk)
        upper = chunk.mean() + num_std * np.std(chunk)
        assert got[t, 0] == pytest.approx((prices[t, 0] - lower) / (upper - lower), rel=1e-12)


def test_average_true_range_by_hand() -> None:
    high = np.array([10.5, 11.0, 10.8, 11.5, 12.0, 11.2])
    low = np.array([9.5, 10.1, 9.9, 10.6, 11.0, 10.0])
    close = np.array([10.0, 10.9, 10.2, 11.4, 11.1, 10.5])
    window = 3
    true_range = [max(high[t] - low[t], abs(high[t] - close[t - 1]), abs(low[t] - close[t - 1])) for t in range(1, len(close))]
    atr = wilder(true_range, window)
    got = average_true_range(high[:, None], low[:, None], close[:, None], window=window)[:, 0]
    assert np.isnan(got[:window]).all()
    for t in range(window, len(close)):
        assert got[t] == pytest.approx(atr[t - 1] / close[t], rel=1e-12)


def test_volume_zscore_by_hand() -> None:
    volume = np.array([100.0, 120.0, 80.0, 150.0, 90.0, 300.0])[:, None]
    window = 4
    got = volume_zscore(volume, window=window)
    assert np.isnan(got[: window - 1]).all()
    for t in range(window - 1, len(volume)):
        chunk = volume[t - window + 1 : t + 1, 0]
        assert got[t, 0] == pytest.approx((volume[t, 0] - chunk.mean()) / chunk.std(ddof=1), rel=1e-12)


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("level", [0.1, 1.0, 123.456])
def test_flat_market_gives_defined_values(level: float) -> None:
    flat = np.full((60, 2), level)
    assert (simple_returns(flat)[1:] == 0).all() and (log_returns(flat)[1:] == 0).all()
    assert (rolling_volatility(flat, window=5)[5:] == 0).all()
    assert (rsi(flat, window=5)[5:] == 0).all()
    for part in macd(flat, fast=3, slow=6, signal=4):
        np.testing.assert_allclose(part[8:], 0.0, atol=1e-12)
    assert (bollinger_percent_b(flat, window=5)[4:] == 0.5).all()
    assert (average_true_range(flat, flat, flat, window=5)[5:] == 0).all()
    assert (volume_zscore(flat, window=5)[4:] == 0).all()
    assert (volume_zscore(np.zeros((60, 2)), window=5)[4:] == 0).all()
    data = MarketData(prices=flat, high=flat, low=flat, volume=flat)
    features = compute_features(data, TECHNICAL)
    assert features.warmup == max(INDICATORS[name].warmup for name in TECHNICAL)


@pytest.mark.filterwarnings("error")
def test_rsi_monotone_prices() -> None:
    rising = np.linspace(10.0, 20.0, 30)[:, None]
    assert (rsi(rising, window=4)[4:] == 1.0).all()
    assert (rsi(rising[::-1].copy(), window=4)[4:] == -1.0).all()


def test_registry_warmups_match_outputs() -> None:
    data = make_data(seed=7)
    for name, spec in ((name, INDICATORS[name]) for name in TECHNICAL):
        outputs = spec.compute(data)
        assert len(outputs) == len(spec.columns)
        for output in outputs:
            assert output.shape == data.prices.shape and output.dtype == np.float64
            assert leading_nan_rows(output) <= spec.warmup
        assert max(leading_nan_rows(output) for output in outputs) == spec.warmup, name


def test_bounded_indicators_stay_in_range() -> None:
    data = make_data(seed=8, n_steps=400)
    assert np.nanmax(np.abs(rsi(data.prices))) <= 1.0
    window, num_std = 20, 2.0
    pct_b = bollinger_percent_b(data.prices, window=window, num_std=num_std)
    assert np.nanmax(np.abs(pct_b - 0.5)) <= np.sqrt(window - 1) / (2 * num_std) + 1e-12
    assert np.nanmin(average_true_range(data.high, data.low, data.prices)) >= 0.0


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda p: rsi(p, window=0), "window must be >= 1"),
        (lambda p: rsi(p, window=50), "window=50 leaves no valid row"),
        (lambda p: rsi(p, window=2.5), "window must be an int"),
        (lambda p: rolling_volatility(p, window=1), "window must be >= 2"),
        (lambda p: rolling_volatility(p, window=50), "window"),
        (lambda p: bollinger_percent_b(p, window=51), "window"),
        (lambda p: bollinger_percent_b(p, num_std=0.0), "num_std"),
        (lambda p: macd(p, fast=26, slow=12), "fast must be < slow"),
        (lambda p: macd(p, fast=3, slow=45, signal=9), "signal=9 leaves no valid row"),
        (lambda p: macd(p, fast=3, slow=60), "slow"),
        (lambda p: volume_zscore(-p), "volume must be >= 0"),
        (lambda p: simple_returns(p[:, 0]), r"shape \(T, N\)"),
        (lambda p: log_returns(-p), "prices must be > 0"),
        (lambda p: average_true_range(p * 0.9, p, p), "high < low"),
        (lambda p: average_true_range(p, p[:-1], p), "same shape"),
    ],
)
def test_indicator_argument_validation(call, match: str) -> None:
    prices = make_data(seed=9, n_steps=50).prices
    with pytest.raises((ValueError, TypeError), match=match):
        call(prices)


# ----------------------------------------------------------------- compute_features


def test_compute_features_layout() -> None:
    data = make_data(seed=10, n_assets=3, n_features=2)
    features = compute_features(data)
    assert isinstance(features, FeatureMatrix)
    n_indicator_columns = sum(len(INDICATORS[name].columns) for name in DEFAULT_INDICATORS)
    assert features.values.shape == (data.n_steps, n_indicator_columns * 3 + 2)
    assert len(features.names) == features.n_features == features.values.shape[1]
    assert len(set(features.names)) == len(features.names)
    assert features.values.dtype == np.float64 and len(features) == data.n_steps
    assert features.names[:3] == ("log_return[asset_0]", "log_return[asset_1]", "log_return[asset_2]")
    assert features.names[-2:] == data.feature_names
    np.testing.assert_array_equal(features.values[:, -2:], data.features)
    hist = features.names.index("macd_hist[asset_1]")
    np.testing.assert_array_equal(features.values[:, hist], macd(data.prices)[2][:, 1])
    np.testing.assert_array_equal(features.values[:, features.names.index("rsi[asset_2]")], rsi(data.prices)[:, 2])
    without = compute_features(data, include_data_features=False)
    np.testing.assert_array_equal(without.values, features.values[:, :-2])


@pytest.mark.parametrize("indicators", [DEFAULT_INDICATORS, TECHNICAL, ("return",), ("macd", "rsi")])
def test_compute_features_warmup(indicators: tuple[str, ...]) -> None:
    features = compute_features(make_data(seed=11), indicators)
    warmup = features.warmup
    assert warmup == max(INDICATORS[name].warmup for name in indicators)
    assert np.isfinite(features.values[warmup:]).all()
    assert np.isnan(features.values[warmup - 1]).any()


def test_compute_features_without_indicators() -> None:
    data = make_data(seed=12, n_features=2)
    features = compute_features(data, ())
    assert features.warmup == 0 and features.names == data.feature_names
    with pytest.raises(ValueError, match="no feature columns"):
        compute_features(data, (), include_data_features=False)


def test_compute_features_errors() -> None:
    data = make_data(seed=13)
    with pytest.raises(ValueError, match=r"unknown indicator 'rsii' \(did you mean 'rsi'\?\)") as info:
        compute_features(data, ("rsii",))
    assert "volume_zscore" in str(info.value)  # lists the known names
    with pytest.raises(ValueError, match="did you mean 'bollinger'"):
        compute_features(data, ("log_return", "bolinger"))
    with pytest.raises(ValueError, match="duplicated"):
        compute_features(data, ("rsi", "rsi"))
    with pytest.raises(TypeError, match="sequence of names"):
        compute_features(data, "rsi")
    with pytest.raises(ValueError, match="needs MarketData.volume"):
        compute_features(make_data(seed=13, volume=True), ("volume_zscore",))
    with pytest.raises(ValueError, match="needs MarketData.high, MarketData.low"):
        compute_features(make_data(seed=13, high=True, low=True), ("rsi", "atr"))
    with pytest.raises(ValueError, match="indicator 'macd' cannot be computed"):
        compute_features(make_data(seed=13, n_steps=30), ("macd",))


def test_default_indicators_need_close_only() -> None:
    data = MarketData(prices=make_data(seed=14).prices)
    features = compute_features(data)
    assert features.n_features == 7 * data.n_assets
    assert all(not INDICATORS[name].requires for name in DEFAULT_INDICATORS)


# ------------------------------------------------------------------ FeatureNormalizer


def features_with_warmup(seed: int = 15, n_steps: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    values = rng.normal([1.0, -5.0, 1e4], [0.5, 2.0, 1e3], size=(n_steps, 3))
    values[:10, 1] = np.nan  # warm-up of one column
    values[:4] = np.nan
    return values


def test_normalizer_fits_training_rows_only() -> None:
    values = features_with_warmup()
    train_end = 120
    normalizer = FeatureNormalizer.fit(values[:train_end])
    valid = values[10:train_end]
    np.testing.assert_allclose(normalizer.mean, valid.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(normalizer.std, valid.std(axis=0), rtol=1e-12)
    assert normalizer.n_features == 3 and normalizer.clip == 10.0

    changed = values.copy()
    changed[train_end:] = np.random.default_rng(0).normal(100.0, 50.0, changed[train_end:].shape)
    other = FeatureNormalizer.fit(changed[:train_end])
    np.testing.assert_array_equal(other.mean, normalizer.mean)
    np.testing.assert_array_equal(other.std, normalizer.std)


def test_normalizer_transform() -> None:
    values = features_with_warmup()
    normalizer = FeatureNormalizer.fit(values[:100], clip=3.0)
    out = normalizer.transform(values)
    assert out.dtype == np.float32 and out.shape == values.shape
    np.testing.assert_array_equal(np.isnan(out), np.isnan(values))
    assert np.nanmax(np.abs(out)) <= 3.0
    expected = np.clip((values - normalizer.mean) / normalizer.std, -3.0, 3.0).astype(np.float32)
    np.testing.assert_array_equal(out, expected)
    extreme = normalizer.transform(np.array([[1e9, -1e9, 1e4]]))
    np.testing.assert_array_equal(extreme[0, :2], [3.0, -3.0])
    windows = gather_windows(values, np.array([50, 60]), 5)
    np.testing.assert_array_equal(normalizer.transform(windows), gather_windows(out, np.array([50, 60]), 5))


def test_normalizer_constant_column() -> None:
    values = np.column_stack([np.full(50, 0.1), np.linspace(0.0, 1.0, 50)])
    normalizer = FeatureNormalizer.fit(values)
    assert normalizer.std[0] == 1.0
    np.testing.assert_allclose(normalizer.transform(values)[:, 0], 0.0, atol=1e-6)


def test_normalizer_round_trips() -> None:
    values = features_with_warmup()
    normalizer = FeatureNormalizer.fit(values[:100], clip=5.0)
    restored = FeatureNormalizer.from_dict(json.loads(json.dumps(normalizer.to_dict())))
    np.testing.assert_array_equal(restored.mean, normalizer.mean)
    np.testing.assert_array_equal(restored.std, normalizer.std)
    assert restored.clip == 5.0
    np.testing.assert_array_equal(restored.transform(values), normalizer.transform(values))
    unpickled = pickle.loads(pickle.dumps(normalizer))
    np.testing.assert_array_equal(unpickled.transform(values), normalizer.transform(values))


def test_normalizer_validation() -> None:
    values = features_with_warmup()
    normalizer = FeatureNormalizer.fit(values[:100])
    with pytest.raises(ValueError, match="fitted on 3"):
        normalizer.transform(values[:, :2])
    with pytest.raises(ValueError, match="every row contains a NaN"):
        FeatureNormalizer.fit(values[:8])
    with pytest.raises(ValueError, match=r"shape \(T, F\)"):
        FeatureNormalizer.fit(values[:, 0])
    with pytest.raises(ValueError, match="infinite"):
        FeatureNormalizer.fit(np.where(values > 1e4, np.inf, values))
    with pytest.raises(ValueError, match="clip must be > 0"):
        FeatureNormalizer.fit(values, clip=0.0)
    with pytest.raises(ValueError, match="clip must be > 0"):
        FeatureNormalizer.fit(values, clip=float("nan"))
    with pytest.raises(ValueError, match="lacks keys"):
        FeatureNormalizer.from_dict({"mean": [0.0]})
    with pytest.raises(ValueError, match="std must be finite and > 0"):
        FeatureNormalizer.from_dict({"mean": [0.0], "std": [0.0], "clip": 1.0})
    with pytest.raises(ValueError, match="same length"):
        FeatureNormalizer([0.0, 1.0], [1.0])


# ------------------------------------------------------------------- gather_windows


def test_gather_windows_matches_loop() -> None:
    rng = np.random.default_rng(16)
    values = rng.normal(size=(50, 4))
    window = 7
    t = rng.integers(window - 1, 50, size=32)
    got = gather_windows(values, t, window)
    expected = np.stack([values[i - window + 1 : i + 1] for i in t])
    assert got.shape == (32, window, 4)
    np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(gather_windows(values, np.array([49]), 1), values[None, 49:50])
    assert gather_windows(values, np.array([], dtype=np.int64), window).shape == (0, window, 4)
    assert gather_windows(values.astype(np.float32), t, window).dtype == np.float32


def test_gather_windows_errors() -> None:
    values = np.zeros((20, 3))
    with pytest.raises(ValueError, match="would start at row -1"):
        gather_windows(values, np.array([10, 4]), 6)
    with pytest.raises(ValueError, match="out of range"):
        gather_windows(values, np.array([5, 20]), 3)
    with pytest.raises(ValueError, match="window must be an int >= 1"):
        gather_windows(values, np.array([5]), 0)
    with pytest.raises(TypeError, match="integer"):
        gather_windows(values, np.array([5.0]), 2)
    with pytest.raises(ValueError, match=r"shape \(B,\)"):
        gather_windows(values, np.array([[5]]), 2)
