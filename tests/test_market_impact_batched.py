"""MarketImpact-v0 batched: B independent markets in one kernel, step for step equal to SB3's DummyVecEnv."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.data import make_regime_market
from sb3_trading.envs import INFO_KEYS, MARKET_KEY, PORTFOLIO_KEY
from sb3_trading.envs.market_impact import VECTOR_INFO_KEYS, MarketImpactEnv
from sb3_trading.sim.impact import HeuristicTrader
from sb3_trading.vec import BatchedVecEnv

ENV_ID = "sb3_trading/MarketImpact-v0"
N_ENVS = 8
CASES = {
    "default-30": {"episode_length": 30},
    "decay-cap-window": {
        "episode_length": 17,
        "window": 3,
        "impact_decay": 0.5,
        "impact_coef": 1.0,
        "weight_mode": "cap",
        "dead_zone": 0.3,
        "slippage_bps": 5.0,
        "traders": (HeuristicTrader("momentum", 3), "market_maker", HeuristicTrader("mean_reversion", 40)),
    },
    "no-traders-to-the-end": {
        "data": make_regime_market(n_steps=160, n_assets=2, seed=9),
        "traders": (),
        "episode_length": None,
        "cooperation": 0.0,
    },
}
STEPS = 120


def batched(kwargs: dict, n_envs: int, seed: int) -> BatchedVecEnv:
    """``BatchedVecEnv`` of the ``gym.make`` env, seeded like SB3's ``make_vec_env`` (env ``i`` gets ``seed + i``)."""
    vec = BatchedVecEnv(gym.make(ENV_ID, **kwargs).unwrapped, n_envs)
    vec.seed(seed)
    return vec


def assert_info_equal(expected: dict, actual: dict, where: str) -> None:
    assert set(actual) == set(expected), f"{where}: {set(actual) ^ set(expected)}"
    for key, value in expected.items():
        if key == "terminal_observation":
            for part in (MARKET_KEY, PORTFOLIO_KEY):
                np.testing.assert_array_equal(actual[key][part], value[part], err_msg=f"{where} {key}")
        elif key == "episode":
            assert actual[key]["l"] == value["l"] and actual[key]["r"] == pytest.approx(value["r"], abs=1e-6), where
        elif key == "timestamp":
            assert actual[key] == value, where
        else:
            np.testing.assert_array_equal(actual[key], value, err_msg=f"{where} {key}")


@pytest.mark.parametrize("case", CASES)
def test_step_for_step_equal_to_sb3_make_vec_env(case):
    kwargs = CASES[case]
    ref = sb3_make_vec_env(ENV_ID, N_ENVS, seed=5, env_kwargs=kwargs)
    vec = batched(kwargs, N_ENVS, seed=5)
    expected, actual = ref.reset(), vec.reset()
    for key in (MARKET_KEY, PORTFOLIO_KEY):
        np.testing.assert_array_equal(actual[key], expected[key])
    for i in range(N_ENVS):
        assert_info_equal(ref.reset_infos[i], vec.reset_infos[i], f"reset {i}")
    rng = np.random.default_rng(1)
    space = vec.action_space
    n_dones = 0
    for step in range(STEPS):
        actions = rng.uniform(space.low - 0.2, space.high + 0.2, size=(N_ENVS, *space.shape)).astype(np.float32)
        actions[rng.uniform(size=N_ENVS) < 0.1] = 0.0  # all cash now and then
        ref_obs, ref_rewards, ref_dones, ref_infos = ref.step(actions)
        obs, rewards, dones, infos = vec.step(actions)
        for key in (MARKET_KEY, PORTFOLIO_KEY):
            np.testing.assert_array_equal(obs[key], ref_obs[key], err_msg=f"{key} at {step}")
            assert obs[key].dtype == ref_obs[key].dtype
        np.testing.assert_array_equal(rewards, ref_rewards, err_msg=f"rewards at {step}")
        assert rewards.dtype == ref_rewards.dtype
        np.testing.assert_array_equal(dones, ref_dones, err_msg=f"dones at {step}")
        for i in range(N_ENVS):
            assert_info_equal(ref_infos[i], infos[i], f"step {step} env {i}")
        n_dones += int(dones.sum())
    for i in range(N_ENVS):
        assert_info_equal(ref.reset_infos[i], vec.reset_infos[i], f"last reset {i}")
    assert n_dones >= N_ENVS  # every market ended an episode at least once (auto-resets compared too)


def test_markets_are_independent_and_keep_their_info():
    """Each account is its own market: changing market 0's learner changes nothing in the others."""

    def run(first_action: float) -> list[list[dict]]:
        vec = batched({"episode_length": 40}, 3, seed=0)
        vec.reset()
        market = vec.kernel.impact_market
        assert market.n_markets == 3 and market.book.n_envs == 3 * 4
        actions = np.full((3, 3), 0.5, dtype=np.float32)
        actions[0] = first_action
        return [[dict(info) for info in vec.step(actions)[3]] for _ in range(5)]

    calm, pushed = run(0.0), run(1.0)
    for step_calm, step_pushed in zip(calm, pushed, strict=True):
        for i, info in enumerate(step_pushed):
            assert set(INFO_KEYS) | set(VECTOR_INFO_KEYS) | {"pnl", "timestamp"} <= set(info)
            assert info["agent_pnl"].shape == info["agent_equity"].shape == (4,)
            assert info["impact"].shape == info["exec_prices"].shape == (3,)
            assert info["pnl"] == info["agent_pnl"][0]
            if i > 0:
                assert_info_equal(step_calm[i], info, f"market {i}")
        # market 0: a fully invested learner instead of an all-cash one moves its prices
        assert not np.array_equal(step_calm[0]["exec_prices"], step_pushed[0]["exec_prices"])
        assert (step_calm[0]["weights"] == 0).all() and (step_pushed[0]["weights"] > 0).all()


def test_a_market_reset_leaves_the_others_alone():
    env = MarketImpactEnv(episode_length=10)
    kernel = env.make_kernel(2)
    kernel.reset(np.arange(2), {"start": np.array([60, 80])})
    for _ in range(3):
        kernel.step(np.full((2, 3), 0.5))
    premium, prices = kernel.impact_market.log_premium[1].copy(), kernel.impact_market.current_prices[1].copy()
    tr = kernel.reset(np.array([0]), {"start": np.array([100])})
    assert tr.t.tolist() == [100] and kernel.t.tolist() == [100, 83]
    np.testing.assert_array_equal(kernel.impact_market.log_premium, [np.zeros(3), premium])
    np.testing.assert_array_equal(kernel.impact_market.current_prices, [env.data.prices[100], prices])
    np.testing.assert_array_equal(kernel.book.positions[:4], 0.0)  # every agent of market 0 back in cash
    assert (kernel.book.positions[4:].sum(axis=1) > 0).any()


def test_step_needs_one_learner_per_market():
    env = MarketImpactEnv(episode_length=10)
    kernel = env.make_kernel(1, n_learners=2)
    kernel.reset(np.arange(1), {"start": np.array([60])})
    with pytest.raises(ValueError, match="one learner per market"):
        kernel.step(np.full((1, 3), 0.5))
