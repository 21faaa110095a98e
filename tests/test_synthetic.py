"""Synthetic markets: determinism, shapes, OHLC sanity and the statistics each model promises."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from sb3_trading.data import (
    MarketData,
    make_gbm_market,
    make_ou_market,
    make_regime_market,
    regime_expected_returns,
    regime_signal_accuracy,
)

GENERATORS: dict[str, Callable[..., MarketData]] = {
    "gbm": make_gbm_market,
    "ou": make_ou_market,
    "regime": make_regime_market,
}
FIELDS = ("prices", "open", "high", "low", "volume", "features", "timestamps")


@pytest.mark.parametrize("name", GENERATORS)
def test_same_seed_same_data_different_seed_different(name: str) -> None:
    make = GENERATORS[name]
    first, again, other = make(n_steps=200, seed=7), make(n_steps=200, seed=7), make(n_steps=200, seed=8)
    for field in FIELDS:
        np.testing.assert_array_equal(getattr(first, field), getattr(again, field))
    assert not np.allclose(first.prices, other.prices)
    assert not np.allclose(first.volume, other.volume)


@pytest.mark.parametrize("name", GENERATORS)
def test_does_not_touch_global_rng(name: str) -> None:
    before = np.random.get_state()  # noqa: NPY002 -- the legacy global RNG is exactly what is checked
    GENERATORS[name](n_steps=50, seed=1)
    after = np.random.get_state()  # noqa: NPY002
    assert before[0] == after[0] and np.array_equal(before[1], after[1]) and before[2:] == after[2:]


@pytest.mark.parametrize("name", GENERATORS)
def test_shapes_and_timestamps(name: str) -> None:
    data = GENERATORS[name](n_steps=30, n_assets=4)
    assert data.prices.shape == data.open.shape == data.high.shape == data.low.shape == data.volume.shape == (30, 4)
    assert data.asset_names == ("asset_0", "asset_1", "asset_2", "asset_3")
    assert data.timestamps.dtype == np.dtype("datetime64[ns]")
    np.testing.assert_array_equal(data.timestamps, pd.bdate_range("2010-01-01", periods=30).as_unit("ns").to_numpy())
    assert data.timestamps[0] == np.datetime64("2010-01-01")
    assert (pd.DatetimeIndex(data.timestamps).day_of_week < 5).all()
    assert data.n_features == (4 if name == "regime" else 0)


@pytest.mark.parametrize("name", GENERATORS)
def test_ohlc_consistent(name: str) -> None:
    data = GENERATORS[name](n_steps=2000, n_assets=3, seed=2)
    assert (data.high >= np.maximum(data.open, data.prices)).all()
    assert (data.low <= np.minimum(data.open, data.prices)).all()
    for field in ("prices", "open", "high", "low", "volume"):
        assert (getattr(data, field) > 0).all()
    assert (data.high > data.low).mean() > 0.99
    np.testing.assert_allclose(data.prices[0], 100.0)
    log_volume = np.log(data.volume)
    assert abs(np.median(log_volume) - math.log(1e6)) < 0.05
    assert abs(log_volume.std() - 0.5) < 0.02


def test_gbm_log_return_moments() -> None:
    mu, sigma, ppy = 0.08, 0.25, 252
    data = make_gbm_market(n_steps=40 * ppy + 1, n_assets=5, mu=mu, sigma=sigma, periods_per_year=ppy, seed=11)
    returns = np.diff(np.log(data.prices), axis=0)
    bar_std = sigma / math.sqrt(ppy)
    standard_error = bar_std / math.sqrt(returns.size)
    assert abs(returns.mean() - (mu - sigma**2 / 2) / ppy) < 4 * standard_error
    assert returns.std() == pytest.approx(bar_std, rel=0.02)
    assert abs(np.corrcoef(returns.T)[np.triu_indices(5, 1)]).max() < 0.05


@pytest.mark.parametrize("correlation", [0.6, -0.2, 1.0])
def test_gbm_correlation(correlation: float) -> None:
    data = make_gbm_market(n_steps=5000, n_assets=5, correlation=correlation, seed=5)
    corr = np.corrcoef(np.diff(np.log(data.prices), axis=0).T)[np.triu_indices(5, 1)]
    np.testing.assert_allclose(corr, correlation, atol=0.05)


def test_ou_mean_reverts() -> None:
    theta, sigma, ppy = 5.0, 0.2, 252
    data = make_ou_market(n_steps=20000, n_assets=4, theta=theta, sigma=sigma, mean_price=50.0, start_price=80.0, seed=3)
    deviation = np.log(data.prices / 50.0)
    level, change = deviation[:-1].ravel(), np.diff(deviation, axis=0).ravel()
    assert np.corrcoef(level, change)[0, 1] < -0.05  # above the mean -> tends to fall
    phi = (level @ (level + change)) / (level @ level)  # pooled AR(1) fit
    assert -math.log(phi) * ppy == pytest.approx(theta, rel=0.3)
    assert deviation[100:].std() == pytest.approx(sigma / math.sqrt(2 * theta), rel=0.1)
    assert abs(deviation[100:].mean()) < 0.02
    assert np.exp(deviation[0]) == pytest.approx(80.0 / 50.0)


def test_gbm_does_not_mean_revert() -> None:
    data = make_gbm_market(n_steps=20000, n_assets=4, seed=3)
    returns = np.diff(np.log(data.prices), axis=0)
    lag1 = np.mean([np.corrcoef(returns[:-1, j], returns[1:, j])[0, 1] for j in range(4)])
    assert abs(lag1) < 0.03


def _mean_and_error(per_bar: np.ndarray) -> tuple[float, float]:
    return float(per_bar.mean()), float(per_bar.std() / math.sqrt(per_bar.size))


def test_regime_market_oracle_numbers() -> None:
    drift, sigma, noise = 0.002, 0.01, 1.0
    data, regimes = make_regime_market(
        n_steps=20001, n_assets=5, drift=drift, sigma=sigma, signal_noise=noise, seed=9, return_regimes=True
    )
    returns = np.diff(np.log(data.prices), axis=0)  # row t: bar t -> t+1
    expected = regime_expected_returns(drift, noise)
    assert expected["signal"] == pytest.approx(drift * 0.6827, rel=1e-3)

    signal_mean, signal_se = _mean_and_error(np.sign(data.features[:-1]) * returns)
    assert abs(signal_mean - expected["signal"]) < 4 * signal_se
    oracle_mean, oracle_se = _mean_and_error(regimes[:-1] * returns)
    assert abs(oracle_mean - drift) < 4 * oracle_se
    random_positions = np.random.default_rng(0).choice([-1.0, 1.0], size=returns.shape)
    random_mean, random_se = _mean_and_error(random_positions * returns)
    assert abs(random_mean) < 4 * random_se
    assert oracle_mean > signal_mean > random_mean

    momentum = np.sign(pd.DataFrame(returns).rolling(10).sum().to_numpy()[:-1])  # known at t, held t -> t+1
    momentum_mean, momentum_se = _mean_and_error(np.nan_to_num(momentum) * returns[1:])
    assert momentum_mean > 5 * momentum_se  # regimes persist, so momentum carries an edge
    assert np.mean(np.sign(data.features) == regimes) == pytest.approx(regime_signal_accuracy(noise), abs=0.01)


def test_regime_signal_is_causal_and_says_nothing_about_noise() -> None:
    drift, sigma = 0.002, 0.01
    data, regimes = make_regime_market(n_steps=20001, n_assets=3, drift=drift, sigma=sigma, seed=4, return_regimes=True)
    noise = np.diff(np.log(data.prices), axis=0) - drift * regimes[:-1]  # sigma * eps_{t+1}
    assert abs(np.corrcoef(data.features[:-1].ravel(), noise.ravel())[0, 1]) < 0.02
    assert noise.std() == pytest.approx(sigma, rel=0.02)
    assert data.feature_names == ("signal[asset_0]", "signal[asset_1]", "signal[asset_2]")


def test_regimes_are_a_persistent_markov_chain() -> None:
    data, regimes = make_regime_market(n_steps=20000, n_assets=4, switch_prob=0.05, seed=1, return_regimes=True)
    assert isinstance(data, MarketData)
    assert regimes.dtype == np.int8 and regimes.shape == (20000, 4)
    assert set(np.unique(regimes)) == {-1, 1}
    assert np.mean(regimes[1:] != regimes[:-1]) == pytest.approx(0.05, abs=0.005)
    assert isinstance(make_regime_market(n_steps=10), MarketData)
    _, constant = make_regime_market(n_steps=100, switch_prob=0.0, return_regimes=True)
    assert (constant == constant[0]).all()
    perfect, truth = make_regime_market(n_steps=100, signal_noise=0.0, return_regimes=True)
    np.testing.assert_array_equal(perfect.features, truth)


def test_signal_accuracy() -> None:
    assert regime_signal_accuracy(1.0) == pytest.approx(0.841345, abs=1e-6)
    assert regime_signal_accuracy(0.0) == 1.0
    assert regime_signal_accuracy(1e6) == pytest.approx(0.5, abs=1e-6)


@pytest.mark.parametrize(
    "make, kwargs, name",
    [
        (make_gbm_market, {"n_steps": 1}, "n_steps"),
        (make_gbm_market, {"n_assets": 0}, "n_assets"),
        (make_gbm_market, {"n_steps": 2.5}, "n_steps"),
        (make_gbm_market, {"sigma": -0.1}, "sigma"),
        (make_gbm_market, {"mu": float("nan")}, "mu"),
        (make_gbm_market, {"correlation": 1.5}, "correlation"),
        (make_gbm_market, {"correlation": -0.3, "n_assets": 5}, "correlation"),
        (make_gbm_market, {"start_price": 0.0}, "start_price"),
        (make_gbm_market, {"periods_per_year": 0}, "periods_per_year"),
        (make_gbm_market, {"n_steps": 100_000}, "n_steps"),
        (make_ou_market, {"theta": 0.0}, "theta"),
        (make_ou_market, {"mean_price": -1.0}, "mean_price"),
        (make_ou_market, {"start_price": -1.0}, "start_price"),
        (make_regime_market, {"switch_prob": 1.5}, "switch_prob"),
        (make_regime_market, {"signal_noise": -1.0}, "signal_noise"),
        (make_regime_market, {"drift": -0.001}, "drift"),
        (make_regime_market, {"sigma": -0.01}, "sigma"),
    ],
)
def test_bad_arguments(make: Callable[..., MarketData], kwargs: dict, name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name}"):
        make(**kwargs)


# ----------------------------------------------------------------------------- leveraged ETF pair
def test_leveraged_pair_daily_returns_and_decay():
    from sb3_trading.data import derive_leveraged_pair, make_leveraged_pair_market

    data = make_leveraged_pair_market(n_steps=600, seed=4)
    assert data.asset_names == ("index", "bull", "bear")
    assert data.feature_names == ("signal[index]",)
    r = data.prices[1:] / data.prices[:-1] - 1.0
    fee = 0.0095 / 252
    np.testing.assert_allclose(r[:, 1], 3 * r[:, 0] - fee, rtol=0, atol=1e-12)
    np.testing.assert_allclose(r[:, 2], -3 * r[:, 0] - fee, rtol=0, atol=1e-12)
    assert (data.high >= np.maximum(data.open, data.prices) - 1e-9).all()
    assert (data.low <= np.minimum(data.open, data.prices) + 1e-9).all()

    # volatility decay: an index that goes up 10 % then back to where it started loses money in both ETFs
    flat = MarketData(prices=np.array([100.0, 110.0, 100.0]), asset_names=["spx"])
    pair = derive_leveraged_pair(flat, expense_ratio=0.0)
    assert pair.prices[-1, 0] == 100.0
    assert pair.prices[-1, 1] == pytest.approx(100 * 1.3 * (1 - 3 * (1 / 11)))
    assert pair.prices[-1, 1] < 100.0 and pair.prices[-1, 2] < 100.0


def test_leveraged_pair_rejects_bad_arguments():
    from sb3_trading.data import derive_leveraged_pair

    index = MarketData(prices=np.array([100.0, 101.0, 99.0]), asset_names=["spx"])
    with pytest.raises(ValueError, match="leverage"):
        derive_leveraged_pair(index, leverage=0.0)
    with pytest.raises(ValueError, match="'ndx'"):
        derive_leveraged_pair(index, asset="ndx")
    with pytest.raises(ValueError, match="names"):
        derive_leveraged_pair(index, names=("a", "a"))
