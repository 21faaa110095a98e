"""Causal by default: every registered env, built with default arguments on a whole market, gives
observations at ``t`` that depend only on data ``<= t`` (DESIGN.md, "Features: causal by default")."""

from __future__ import annotations

import dataclasses
import json

import gymnasium as gym
import numpy as np
import pytest
from lookahead import perturb_future, rollout_observations

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.data import MarketData, make_gbm_market, make_leveraged_pair_market, make_regime_market
from sb3_trading.data.yield_market import make_yield_market
from sb3_trading.envs import ENV_ENTRY_POINTS, MARKET_KEY
from sb3_trading.features import (
    DEFAULT_MIN_PERIODS,
    DEFAULT_ROLLING_WINDOW,
    CausalNormalizer,
    FeatureNormalizer,
    compute_features,
    normalizer_from_dict,
)
from sb3_trading.vec import SUPPORTED_ENV_IDS, make_vec_env

ENV_IDS = sorted(ENV_ENTRY_POINTS)
N_ACTIONS = 200  # decisions per rollout: the cuts lie inside them


def user_market(env_id: str) -> MarketData:
    """A market of the env's kind that the user builds (another seed, another length, no default)."""
    name = env_id.split("/")[-1]
    if name in ("LeveragedPair-v0", "MaskedTrading-v0"):
        return make_leveraged_pair_market(n_steps=700, seed=11)
    if name == "YieldAllocation-v0":
        return make_yield_market(n_steps=700, seed=11)
    if name == "MarketImpact-v0":
        return make_gbm_market(n_steps=700, n_assets=3, seed=11)
    if name == "SingleAsset-v0":
        return make_regime_market(n_steps=700, n_assets=1, seed=11)
    return make_regime_market(n_steps=700, seed=11)


def perturbed(data: MarketData, t: int, rng: np.random.Generator) -> MarketData:
    """:func:`perturb_future` keeping the data's calendar (bars per year)."""
    return dataclasses.replace(perturb_future(data, t, rng), periods_per_year=data.periods_per_year)


def actions_for(env: gym.Env) -> list:
    env.action_space.seed(0)
    return [env.action_space.sample() for _ in range(N_ACTIONS)]


def check_causal(env_id: str, data: MarketData, **kwargs) -> None:
    """Perturb every price, OHLCV and feature after three cuts inside one episode; observations (market,
    portfolio, masks) up to each cut must be bit-identical, and some later market observation must change."""
    env = gym.make(env_id, data=data, **kwargs)
    actions = actions_for(env)
    base = rollout_observations(env, actions)
    steps = sorted(base)
    assert len(steps) > 5, f"episode too short to test: {steps}"
    rng = np.random.default_rng(0)
    for t in (steps[0], steps[len(steps) // 3], steps[len(steps) // 2]):
        changed = rollout_observations(gym.make(env_id, data=perturbed(data, t, rng), **kwargs), actions)
        for s, obs in base.items():
            if s <= t:
                for key, value in obs.items():
                    np.testing.assert_array_equal(changed[s][key], value, err_msg=f"{env_id}: {key} at {s} (cut {t})")
        later = [s for s in base if s > t and s in changed]
        assert any(not np.array_equal(changed[s][MARKET_KEY], base[s][MARKET_KEY]) for s in later), f"cut {t}"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_default_env_on_its_default_market_is_causal(env_id):
    """``gym.make(env_id)`` alone, then the same defaults on that whole market with its future perturbed."""
    env = gym.make(env_id)
    assert isinstance(env.unwrapped.normalizer, CausalNormalizer)
    check_causal(env_id, env.unwrapped.data)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_default_env_on_a_user_market_is_causal(env_id):
    check_causal(env_id, user_market(env_id))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_rolling_normalizer_is_causal(env_id):
    check_causal(env_id, user_market(env_id), normalizer="rolling:60")


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_fit_on_the_whole_market_looks_ahead(env_id):
    """The explicit ``normalizer="fit"`` on a whole market leaks its statistics: a future price moves the very
    first observation (so the perturbation above is strong enough to see a leak)."""
    data = user_market(env_id)
    first = rollout_observations(gym.make(env_id, data=data, normalizer="fit"), [])
    (t,) = first
    moved = rollout_observations(gym.make(env_id, data=perturbed(data, t, np.random.default_rng(0)), normalizer="fit"), [])
    assert not np.array_equal(moved[t][MARKET_KEY], first[t][MARKET_KEY])


@pytest.mark.parametrize("env_id", sorted(SUPPORTED_ENV_IDS))
def test_batched_vec_env_default_is_causal(env_id):
    """The batched VecEnv applies the same default normaliser: its observations up to a cut ignore the future."""
    data = user_market(env_id)
    first_t = gym.make(env_id, data=data).unwrapped.first_t
    cut, n_steps = first_t + 10, 20

    def trace(market: MarketData) -> list[dict[str, np.ndarray]]:
        vec = make_vec_env(env_id, 3, seed=0, env_kwargs={"data": market, "random_start": False})
        vec.action_space.seed(0)
        actions = np.stack([vec.action_space.sample() for _ in range(3)])
        seen = [vec.reset()]
        for _ in range(n_steps):
            seen.append(vec.step(actions)[0])
        return seen

    base, changed = trace(data), trace(perturbed(data, cut, np.random.default_rng(1)))
    for k in range(cut - first_t + 1):  # observations at bars first_t + k <= cut
        for key in base[k]:
            np.testing.assert_array_equal(changed[k][key], base[k][key], err_msg=f"{key} at {first_t + k}")
    assert any(not np.array_equal(changed[k][MARKET_KEY], base[k][MARKET_KEY]) for k in range(cut - first_t + 1, n_steps + 1))


def test_default_env_starts_after_the_normaliser_warm_up():
    env = gym.make("sb3_trading/MultiAsset-v0").unwrapped
    matrix = compute_features(env.data)
    assert env.feature_warmup == matrix.warmup + DEFAULT_MIN_PERIODS - 1
    assert env.first_t == env.feature_warmup + env.window - 1
    assert np.isfinite(env._features[env.first_t - env.window + 1 :]).all()
    fitted = gym.make("sb3_trading/MultiAsset-v0", normalizer="fit").unwrapped
    assert fitted.first_t == matrix.warmup + fitted.window - 1  # "fit" keeps today's first bar
    raw = gym.make("sb3_trading/MultiAsset-v0", normalizer=None).unwrapped
    assert raw.first_t == fitted.first_t


# ----------------------------------------------------------------------------------- the causal normaliser
def brute_force(values: np.ndarray, window: int | None, min_periods: int, clip: float) -> np.ndarray:
    """Row by row, the statistics of the rows <= t without NaN (the last ``window`` of them, if given)."""
    out = np.full(values.shape, np.nan)
    for t in range(values.shape[0]):
        rows = values[(0 if window is None else max(0, t - window + 1)) : t + 1]
        rows = rows[~np.isnan(rows).any(axis=1)]
        if rows.shape[0] < min_periods or np.isnan(values[t]).any():
            continue
        mean, std = rows.mean(axis=0), rows.std(axis=0)
        std[(std <= 1e-12 * np.maximum(np.abs(mean), 1.0)) | (rows.max(axis=0) == rows.min(axis=0))] = 1.0
        out[t] = np.clip((values[t] - mean) / std, -clip, clip)
    return out


@pytest.mark.parametrize("window", [None, 30])
def test_causal_normalizer_matches_the_row_by_row_definition(window):
    rng = np.random.default_rng(0)
    values = rng.normal(3.0, 2.0, size=(300, 4))
    values[:7] = np.nan  # indicator warm-up
    values[:, 1] = 5.0  # constant column: std 1
    values[:7, 1] = np.nan
    values[150:200, 2] = -1.0  # constant stretch (a rolling window inside it is constant)
    values[:, 3] *= 1e3  # large scale
    normalizer = CausalNormalizer(window=window, min_periods=10, clip=4.0)
    out = normalizer.transform(values)
    assert out.dtype == np.float32 and out.shape == values.shape
    expected = brute_force(values, window, 10, 4.0)
    np.testing.assert_array_equal(np.isnan(out), np.isnan(expected))
    np.testing.assert_allclose(out, expected.astype(np.float32), rtol=1e-5, atol=1e-5)
    assert np.isnan(out[:16]).all() and np.isfinite(out[16:]).all()  # 7 NaN rows + 9 rows of warm-up
    assert (out[16:, 1] == 0.0).all()
    if window is not None:
        assert (out[180:200, 2] == 0.0).all()  # the last 30 rows are all -1 there


def test_causal_normalizer_is_causal_and_stateless():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(200, 3))
    for normalizer in (CausalNormalizer(), CausalNormalizer(window=25, min_periods=5)):
        out = normalizer.transform(values)
        for t in (0, 30, 99, 150):
            future = values.copy()
            future[t + 1 :] = rng.normal(5.0, 10.0, size=future[t + 1 :].shape)
            np.testing.assert_array_equal(normalizer.transform(future)[: t + 1], out[: t + 1])
        # stateless: a prefix normalises to the prefix of the whole, and applying it twice changes nothing
        np.testing.assert_array_equal(normalizer.transform(values[:120]), out[:120])
        np.testing.assert_array_equal(normalizer.transform(values), out)


def test_causal_normalizer_round_trips_and_validates():
    for normalizer in (CausalNormalizer(), CausalNormalizer(window=DEFAULT_ROLLING_WINDOW, min_periods=3, clip=5.0)):
        state = json.loads(json.dumps(normalizer.to_dict()))
        assert CausalNormalizer.from_dict(state) == normalizer
        assert normalizer_from_dict(state) == normalizer
    fitted = FeatureNormalizer.fit(np.random.default_rng(0).normal(size=(50, 2)))
    restored = normalizer_from_dict(json.loads(json.dumps(fitted.to_dict())))
    assert isinstance(restored, FeatureNormalizer)
    np.testing.assert_array_equal(restored.mean, fitted.mean)
    assert normalizer_from_dict(None) is None
    with pytest.raises(ValueError, match="normalizer_from_dict"):
        FeatureNormalizer.from_dict(CausalNormalizer().to_dict())
    with pytest.raises(ValueError, match="min_periods"):
        CausalNormalizer(window=10, min_periods=20)
    with pytest.raises(ValueError, match="window"):
        CausalNormalizer(window=1)
    with pytest.raises(ValueError, match="min_periods"):
        CausalNormalizer(min_periods=0)
    with pytest.raises(ValueError, match="shape"):
        CausalNormalizer().transform(np.zeros((3, 4, 2)))
    with pytest.raises(ValueError, match="infinite"):
        CausalNormalizer().transform(np.array([[1.0], [np.inf]]))
    assert np.isnan(CausalNormalizer().transform(np.full((5, 2), np.nan))).all()


@pytest.mark.parametrize(
    ("normalizer", "expected"),
    [
        ("expanding", CausalNormalizer()),
        ("rolling", CausalNormalizer(window=DEFAULT_ROLLING_WINDOW)),
        ("rolling:60", CausalNormalizer(window=60)),
        ("rolling:10", CausalNormalizer(window=10, min_periods=10)),
        (CausalNormalizer(min_periods=5), CausalNormalizer(min_periods=5)),
    ],
)
def test_env_normalizer_names(normalizer, expected):
    env = gym.make("sb3_trading/MultiAsset-v0", data=make_regime_market(n_steps=400, seed=0), normalizer=normalizer)
    assert env.unwrapped.normalizer == expected


@pytest.mark.parametrize(
    ("normalizer", "error"), [("zscore", ValueError), ("rolling:1", ValueError), ("rolling:x", ValueError), (3, TypeError)]
)
def test_env_rejects_bad_normalizer(normalizer, error):
    with pytest.raises(error, match="normalizer"):
        gym.make("sb3_trading/MultiAsset-v0", data=make_regime_market(n_steps=400, seed=0), normalizer=normalizer)


def test_causal_normalizer_passed_on_normalises_the_other_data_with_its_own_past():
    """The training env's causal normaliser handed to a test env (as the training job does) is causal there."""
    data = make_regime_market(n_steps=800, seed=2)
    train, test = data.split(0.75)
    normalizer = gym.make("sb3_trading/MultiAsset-v0", data=train).unwrapped.normalizer
    env = gym.make("sb3_trading/MultiAsset-v0", data=test, normalizer=normalizer).unwrapped
    fresh = gym.make("sb3_trading/MultiAsset-v0", data=test).unwrapped
    np.testing.assert_array_equal(env._features, fresh._features)


def test_yield_allocation_takes_the_data_calendar():
    daily = make_yield_market(n_steps=400, seed=0)
    calendar = dataclasses.replace(daily, periods_per_year=365.0)
    env = gym.make("sb3_trading/YieldAllocation-v0", data=calendar).unwrapped
    assert env.periods_per_year == 365.0
    apy = calendar.features[:, : calendar.n_assets]
    np.testing.assert_allclose(env._rates, apy / 365.0)
    assert gym.make("sb3_trading/YieldAllocation-v0", data=daily).unwrapped.periods_per_year == daily.periods_per_year == 252
    override = gym.make("sb3_trading/YieldAllocation-v0", data=calendar, periods_per_year=252).unwrapped
    assert override.periods_per_year == 252
    assert gym.make("sb3_trading/YieldAllocation-v0").unwrapped.periods_per_year == 252
    assert gym.make("sb3_trading/YieldAllocation-v0", periods_per_year=365).unwrapped.periods_per_year == 365
    with pytest.raises(ValueError, match="periods_per_year"):
        gym.make("sb3_trading/YieldAllocation-v0", periods_per_year=-1)
    with pytest.raises(ValueError, match="periods_per_year"):
        gym.make("sb3_trading/YieldAllocation-v0", periods_per_year=252.5)
