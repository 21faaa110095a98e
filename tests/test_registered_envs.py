"""Every registered sb3_trading env honours the common contract (DESIGN.md, "The environments")."""

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sb3_trading
from sb3_trading.envs import INFO_KEYS, MARKET_KEY, PORTFOLIO_KEY

ENV_IDS = sorted(sb3_trading.ENV_ENTRY_POINTS)
# SB3's advice that our documented design choices trip: the 2-D market block, Box[0, 1] actions
EXPECTED_SB3_NOTES = ("unconventional shape", "symmetric and normalized Box action space")


def small_env(env_id: str) -> gym.Env:
    kwargs = {"window": 30} if env_id.endswith("MaskedTrading-v0") else {}
    return gym.make(env_id, **kwargs)


def rollout(env: gym.Env, seed: int, steps: int = 30):
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    trace = [(obs, info)]
    for _ in range(steps):
        obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
        trace.append((obs, info, reward))
        if terminated or truncated:
            obs, info = env.reset()
    return trace


def test_the_five_design_envs_are_registered_on_import():
    import subprocess
    import sys

    # a fresh interpreter: gymnasium's "module:ID" form imports sb3_trading, which registers every ID
    code = f"import gymnasium as gym; [gym.make('sb3_trading:' + i) for i in {ENV_IDS!r}]"
    subprocess.run([sys.executable, "-c", code], check=True)
    names = {env_id.split("/")[1] for env_id in ENV_IDS}
    assert names == {"MultiAsset-v0", "LeveragedPair-v0", "MaskedTrading-v0", "YieldAllocation-v0", "MarketImpact-v0"}
    assert all(env_id in gym.registry for env_id in ENV_IDS)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_checkers_pass(env_id):
    env = small_env(env_id)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)
    unexpected = [str(w.message) for w in caught if not any(note in str(w.message) for note in EXPECTED_SB3_NOTES)]
    assert unexpected == []


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_namespaced_make_and_layout(env_id):
    env = gym.make("sb3_trading:" + env_id, **({"window": 30} if "Masked" in env_id else {}))
    obs, info = env.reset(seed=0)
    assert set(obs) == {MARKET_KEY, PORTFOLIO_KEY}
    assert obs[MARKET_KEY].ndim == 2 and obs[PORTFOLIO_KEY].ndim == 1
    assert env.observation_space.contains(obs)
    assert set(INFO_KEYS) <= set(info)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_episode(env_id):
    a, b = rollout(small_env(env_id), seed=3), rollout(small_env(env_id), seed=3)
    for step_a, step_b in zip(a, b, strict=True):
        for key in (MARKET_KEY, PORTFOLIO_KEY):
            np.testing.assert_array_equal(step_a[0][key], step_b[0][key])
        assert step_a[1]["equity"] == step_b[1]["equity"]
        assert set(INFO_KEYS) <= set(step_a[1])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pickle_round_trip(env_id):
    env = small_env(env_id).unwrapped
    env.reset(seed=1)
    clone = pickle.loads(pickle.dumps(env))
    action = env.action_space.sample()
    assert env.step(action)[1] == clone.step(action)[1]
