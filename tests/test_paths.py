"""Multi-path markets (resampled training banks): MarketData paths, envs that keep episodes inside one path,
features per path, no look-ahead, and the run recipe's training market."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from lookahead import perturb_future

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.data import MarketData, make_regime_market, stack_paths
from sb3_trading.envs import MARKET_KEY
from sb3_trading.envs.registration import ENV_ENTRY_POINTS
from sb3_trading.recipe import default_market, path_seed, resample_kind, split_train_test, training_market


def bank(env_id: str, lengths: tuple[int, ...] = (150, 120, 180)) -> MarketData:
    """Paths of the env's own synthetic market, of different lengths."""
    return stack_paths([default_market(env_id, seed).slice(0, n) for seed, n in enumerate(lengths, start=1)])


def test_stack_paths_round_trip_and_slicing():
    paths = [make_regime_market(n_steps=n, seed=s) for s, n in ((0, 50), (1, 40), (2, 60))]
    data = stack_paths(paths)
    assert data.n_paths == 3 and data.path_starts == (0, 50, 90) and data.n_steps == 150
    assert data.path_bounds == [(0, 50), (50, 90), (90, 150)]
    for original, back in zip(paths, data.paths(), strict=True):
        np.testing.assert_array_equal(back.prices, original.prices)
        np.testing.assert_array_equal(back.timestamps, original.timestamps)  # each path keeps its own dates
        assert back.n_paths == 1
    assert data.periods_per_year == paths[0].periods_per_year
    # slices keep the boundaries inside them, re-based; a slice begins a path wherever it starts
    assert data.slice(40, 100).path_starts == (0, 10, 50)
    assert data.slice(60, 80).path_starts == (0,)
    assert data.select_assets(["asset_1"]).path_starts == (0, 50, 90)
    assert stack_paths([data, paths[0]]).path_starts == (0, 50, 90, 150)  # a bank contributes its paths


def test_paths_are_validated():
    a = make_regime_market(n_steps=30, seed=0)
    with pytest.raises(ValueError, match="same market"):
        stack_paths([a, make_regime_market(n_steps=30, n_assets=2, seed=1)])
    with pytest.raises(ValueError, match="at least one"):
        stack_paths([])
    with pytest.raises(ValueError, match="path_starts"):
        MarketData(prices=a.prices, path_starts=(0, 40))
    with pytest.raises(ValueError, match="path_starts"):
        MarketData(prices=a.prices, path_starts=(1, 10))
    # timestamps may restart at a path boundary, never inside a path
    twice = np.concatenate([a.timestamps[:15], a.timestamps[:15]])
    assert MarketData(prices=a.prices, timestamps=twice, path_starts=(0, 15)).n_paths == 2
    with pytest.raises(ValueError, match="not sorted|duplicate"):
        MarketData(prices=a.prices, timestamps=twice, path_starts=(0, 20))


@pytest.mark.parametrize("env_id", sorted(ENV_ENTRY_POINTS))
def test_episodes_never_cross_a_path_boundary(env_id):
    data = bank(env_id)
    kwargs = {"window": 5} if "Masked" in env_id else {}
    if "LeveragedPair" not in env_id:  # LeveragedPair has its own horizon, max_days
        kwargs["episode_length"] = 40
    env = gym.make(env_id, data=data, random_start=True, **kwargs)
    base = env.unwrapped
    starts, stops = np.array(data.path_starts), np.array([*data.path_starts[1:], data.n_steps])
    rng = np.random.default_rng(0)
    env.action_space.seed(0)
    paths_seen = set()
    for episode in range(40):
        _, info = env.reset(seed=episode)
        path = int(np.searchsorted(starts, info["t"], side="right")) - 1
        paths_seen.add(path)
        assert info["t"] >= base.start_bounds[0][path]  # past the path's own warm-up
        done = False
        while not done:
            action = env.action_space.sample()
            masks = getattr(base, "action_masks", None)
            if masks is not None:
                action = rng.choice(np.flatnonzero(masks()))
            _, _, terminated, truncated, info = env.step(action)
            assert starts[path] <= info["t"] < stops[path], f"episode {episode} left path {path} at row {info['t']}"
            done = terminated or truncated
    assert paths_seen == {0, 1, 2}  # every path is drawn


@pytest.mark.parametrize("normalizer", ["expanding", "fit"])
def test_features_are_computed_per_path(normalizer):
    env_id = "sb3_trading/MultiAsset-v0"
    data = bank(env_id)
    env = gym.make(env_id, data=data, normalizer=normalizer).unwrapped
    fitted = env.normalizer if normalizer == "fit" else normalizer
    for (start, stop), path in zip(data.path_bounds, data.paths(), strict=True):
        alone = gym.make(env_id, data=path, normalizer=fitted).unwrapped
        np.testing.assert_array_equal(env._features[start:stop], alone._features)  # nothing crosses a boundary


def test_no_look_ahead_across_paths():
    env_id = "sb3_trading/MultiAsset-v0"
    data = bank(env_id)
    t = data.path_starts[1] + 60  # inside the second path
    perturbed = perturb_future(data, t, np.random.default_rng(1))
    windows = [gym.make(env_id, data=d, window=5).unwrapped._features[: t + 1] for d in (data, perturbed)]
    np.testing.assert_array_equal(*windows)
    obs = []
    for d in (data, perturbed):
        env = gym.make(env_id, data=d, window=5)
        env.reset(seed=0)
        obs.append(env.unwrapped._market_window(t))
    np.testing.assert_array_equal(obs[0], obs[1])
    assert MARKET_KEY  # the shared layout key exists


def test_training_market_synthetic_and_bootstrap():
    env_id = "sb3_trading/MultiAsset-v0"
    data = default_market(env_id, 3)
    train, test = split_train_test(data, 0.2)
    synthetic = training_market(env_id, train, "synthetic", n_paths=4, seed=3)
    assert synthetic.n_paths == 4 and synthetic.n_steps == 4 * train.n_steps
    paths = synthetic.paths()
    np.testing.assert_array_equal(paths[0].prices, train.prices)  # the training slice itself comes first
    for k, path in enumerate(paths[1:], start=1):
        expected = default_market(env_id, path_seed(3, k)).slice(0, train.n_steps)  # fresh generator draws,
        np.testing.assert_array_equal(path.prices, expected.prices)  # cut to the training span
        assert not np.allclose(path.prices, train.prices)
    assert path_seed(3, 1) != path_seed(3, 2) != 3
    boot = training_market(env_id, train, "bootstrap", n_paths=3, seed=0)
    assert boot.n_paths == 3
    source = {tuple(row) for row in train.features}
    for path in boot.paths()[1:]:  # bootstrapped bars come from the training slice only
        assert all(tuple(row) in source for row in path.features)
    assert not any(tuple(row) in source for row in test.features[1:])  # (the held-out rows are distinct)
    assert training_market(env_id, train, "none", seed=0) is train
    assert training_market(env_id, train, "synthetic", n_paths=1, seed=0) is train


def test_resample_kind():
    assert resample_kind("auto", None) == "synthetic"
    assert resample_kind("auto", "prices.csv") == "bootstrap"
    assert resample_kind("none", None) == "none"
    with pytest.raises(ValueError, match="bootstrap"):
        resample_kind("synthetic", "prices.csv")
    with pytest.raises(ValueError, match="resample"):
        resample_kind("shuffle", None)
