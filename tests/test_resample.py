"""Stationary block bootstrap of market bars (``sb3_trading.data.resample``): moments, valid bars, provenance, seeds."""

import numpy as np
import pytest

from sb3_trading.common.bootstrap import stationary_bootstrap_indices
from sb3_trading.data import MarketData, bootstrap_market, bootstrap_paths, bootstrap_rows, make_gbm_market, make_regime_market
from sb3_trading.evaluation import stationary_bootstrap_indices as evaluation_indices
from sb3_trading.evaluation.bootstrap import stationary_bootstrap_indices as evaluation_module_indices


@pytest.fixture(scope="module")
def gbm() -> MarketData:
    return make_gbm_market(n_steps=600, n_assets=2, sigma=0.3, seed=3).slice(50, 550)


@pytest.fixture(scope="module")
def regime() -> MarketData:
    return make_regime_market(n_steps=1200, n_assets=2, seed=1).slice(100, 1100)


def _log_returns(data: MarketData) -> np.ndarray:
    return np.diff(np.log(data.prices), axis=0)


def _bar_keys(data: MarketData) -> list[tuple[float, ...]]:
    """Per bar ``i >= 1``: (volume, features) -- copied exactly, so they identify the source bar."""
    volume = np.zeros((data.n_steps, 0)) if data.volume is None else data.volume
    return [tuple(row) for row in np.hstack([volume, data.features])[1:]]


def _bar_ratios(data: MarketData) -> np.ndarray:
    """``(T-1, 4N)`` close, open, high, low of bars ``1..T-1`` relative to the previous close."""
    prev = data.prices[:-1]
    return np.hstack([data.prices[1:] / prev, data.open[1:] / prev, data.high[1:] / prev, data.low[1:] / prev])


def test_index_generator_moved_not_changed():
    assert evaluation_indices is stationary_bootstrap_indices is evaluation_module_indices
    idx = stationary_bootstrap_indices(50, 3, 4.0, rng=0)
    assert idx.shape == (3, 50) and idx.min() >= 0 and idx.max() < 50


@pytest.mark.parametrize("market", ["gbm", "regime"])
def test_shape_calendar_and_valid_bars(market, request):
    data = request.getfixturevalue(market)
    for path in bootstrap_paths(data, 4, mean_block=10, seed=0):
        assert isinstance(path, MarketData)
        assert path.prices.shape == data.prices.shape and path.features.shape == data.features.shape
        assert path.asset_names == data.asset_names and path.feature_names == data.feature_names
        np.testing.assert_array_equal(path.timestamps, data.timestamps)
        assert (path.periods_per_year, path.calendar, path.timezone) == (data.periods_per_year, data.calendar, data.timezone)
        for name in ("prices", "open", "high", "low", "volume", "features"):
            np.testing.assert_array_equal(getattr(path, name)[0], getattr(data, name)[0])  # row 0 unchanged
        assert (path.low > 0).all()
        assert (path.low <= np.minimum(path.open, path.prices)).all()
        assert (np.maximum(path.open, path.prices) <= path.high).all()
        MarketData(prices=path.prices, open=path.open, high=path.high, low=path.low, volume=path.volume)


@pytest.mark.parametrize("market", ["gbm", "regime"])
def test_log_return_moments_match_the_slice(market, request):
    data = request.getfixturevalue(market)
    source = _log_returns(data)
    paths = [_log_returns(p) for p in bootstrap_paths(data, 20, mean_block=20, seed=1)]
    means = np.array([r.mean(axis=0) for r in paths])  # (paths, N)
    stds = np.array([r.std(axis=0) for r in paths])
    # tolerance from the sampling error of the 20-path average (the paths' own spread), plus float slack
    mean_tol = 4 * means.std(axis=0, ddof=1) / np.sqrt(len(paths)) + 1e-12
    std_tol = 4 * stds.std(axis=0, ddof=1) / np.sqrt(len(paths)) + 1e-12
    assert (np.abs(means.mean(axis=0) - source.mean(axis=0)) < mean_tol).all()
    assert (np.abs(stds.mean(axis=0) - source.std(axis=0)) < std_tol).all()


@pytest.mark.parametrize("market", ["gbm", "regime"])
def test_every_bar_is_a_source_bar(market, request):
    data = request.getfixturevalue(market)
    lookup = {key: i for i, key in enumerate(_bar_keys(data))}
    assert len(lookup) == data.n_steps - 1  # volumes and features identify a bar
    ratios = _bar_ratios(data)
    for path in bootstrap_paths(data, 3, mean_block=5, seed=2):
        keys = _bar_keys(path)
        assert all(key in lookup for key in keys)
        drawn = np.array([lookup[key] for key in keys])
        np.testing.assert_allclose(_bar_ratios(path), ratios[drawn], rtol=1e-12)


def test_a_slice_never_yields_a_bar_from_outside():
    n, a, b = 300, 100, 200
    base = make_regime_market(n_steps=n, n_assets=2, seed=5)
    outside = np.r_[0:a, b:n]
    prices = base.prices.copy()
    prices[a:] *= 10.0  # bar a jumps x10 from bar a - 1 (outside the slice): that return must never be drawn
    prices[b:] *= 10.0
    volume, features = base.volume.copy(), base.features.copy()
    volume[outside] = 1e9
    features[outside] = -999.0
    volume[a] = 7777.0  # bar a, row 0 of the slice, is kept as row 0 but never drawn
    scale = prices / base.prices
    data = MarketData(
        prices=prices,
        features=features,
        timestamps=base.timestamps,
        asset_names=base.asset_names,
        feature_names=base.feature_names,
        open=base.open * scale,
        high=base.high * scale,
        low=base.low * scale,
        volume=volume,
    ).slice(a, b)
    for path in bootstrap_paths(data, 10, mean_block=3, seed=0):
        assert (path.volume < 1e9).all() and (path.features != -999.0).all()
        assert (path.volume[1:] != 7777.0).all() and (path.volume[0] == 7777.0).all()
        assert (np.abs(_log_returns(path)) < np.log(5.0)).all()


def test_seeds_and_path_independence(gbm):
    first = bootstrap_paths(gbm, 3, seed=7)
    again = bootstrap_paths(gbm, 3, seed=7)
    for x, y in zip(first, again, strict=True):
        np.testing.assert_array_equal(x.prices, y.prices)
        np.testing.assert_array_equal(x.volume, y.volume)
    other = bootstrap_paths(gbm, 3, seed=8)
    assert not any(np.array_equal(x.prices, y.prices) for x, y in zip(first, other, strict=True))
    assert not np.array_equal(first[0].prices, first[1].prices)  # paths differ from each other
    more = bootstrap_paths(gbm, 5, seed=7)  # path k depends on (seed, k) only
    for x, y in zip(first, more[:3], strict=True):
        np.testing.assert_array_equal(x.prices, y.prices)
    np.testing.assert_array_equal(bootstrap_market(gbm, seed=7).prices, first[0].prices)
    np.testing.assert_array_equal(bootstrap_rows(gbm.n_steps, 3, seed=7)[2], bootstrap_rows(gbm.n_steps, 5, seed=7)[2])
    assert bootstrap_market(gbm, seed=None).n_steps == gbm.n_steps


def test_block_length_controls_runs(gbm):
    n = gbm.n_steps - 1  # source bars 1..T-1

    def continuation(mean_block):
        rows = bootstrap_rows(gbm.n_steps, 20, mean_block, seed=0)
        assert rows.min() >= 0 and (rows[:, 0] == 0).all() and rows[:, 1:].min() >= 1 and rows.max() <= n
        return ((np.diff(rows[:, 1:], axis=1) % n) == 1).mean()  # the next source bar (wrapping 1..T-1)

    assert continuation(1e9) == 1.0  # one block: a rotation of the history
    assert continuation(20.0) == pytest.approx(1 - 1 / 20, abs=0.02)
    assert continuation(1.0) < 0.02
    # the path's close ratios with one huge block are the source's, in order, from a random start
    path = bootstrap_market(gbm, mean_block=1e9, seed=4)
    ratio, source = path.prices[1:] / path.prices[:-1], gbm.prices[1:] / gbm.prices[:-1]
    start = int(np.argmin(np.abs(source[:, 0] - ratio[0, 0])))
    np.testing.assert_allclose(ratio, np.roll(source, -start, axis=0), rtol=1e-12)


def test_signal_edge_survives_within_blocks(regime):
    """The feature at bar j and the return of bar j+1 stay together within a block."""

    def edge(data):
        return float((np.sign(data.features[:-1]) * _log_returns(data)).mean())

    source = edge(regime)
    assert source > 0
    kept = np.mean([edge(p) for p in bootstrap_paths(regime, 10, mean_block=20, seed=0)])
    iid = np.mean([edge(p) for p in bootstrap_paths(regime, 10, mean_block=1, seed=0)])
    assert kept > 0.7 * source
    assert abs(iid) < 0.3 * source


def test_bad_arguments(gbm):
    with pytest.raises(TypeError, match="data"):
        bootstrap_paths(gbm.prices, 2)
    with pytest.raises(ValueError, match="at least 3 rows"):
        bootstrap_paths(gbm.slice(0, 2), 2)
    with pytest.raises(ValueError, match="n_paths"):
        bootstrap_paths(gbm, 0)
    with pytest.raises(TypeError, match="n_paths"):
        bootstrap_paths(gbm, 2.0)
    with pytest.raises(ValueError, match="mean_block"):
        bootstrap_paths(gbm, 2, mean_block=0.5)
    with pytest.raises(ValueError, match="mean_block"):
        bootstrap_paths(gbm, 2, mean_block=float("nan"))
    with pytest.raises(TypeError, match="mean_block"):
        bootstrap_paths(gbm, 2, mean_block="20")
    with pytest.raises(ValueError, match="seed"):
        bootstrap_paths(gbm, 2, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        bootstrap_market(gbm, seed=1.5)
