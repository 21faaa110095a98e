"""Risk limits end episodes as asked: ``drawdown_action="terminate" | "truncate"`` reaches SB3 correctly.

YieldAllocation-v0's ``max_drawdown`` and LeveragedPair-v0's ``stop_loss`` share the argument: ``"terminate"``
gives ``terminated`` (``infos["TimeLimit.truncated"]`` False, nothing bootstrapped), ``"truncate"`` gives
``truncated`` (``infos["TimeLimit.truncated"]`` True, SB3 bootstraps ``terminal_observation``), through a
Gymnasium step, SB3's ``DummyVecEnv`` and the batched VecEnv alike.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.data import MarketData
from sb3_trading.vec import BatchedVecEnv


def falling_pair() -> MarketData:
    """Index, bull and bear ETFs all losing 1 % a bar: every allocation loses, the stop-loss fires on step one."""
    prices = 100.0 * 0.99 ** np.arange(300)[:, None] * np.ones(3)
    return MarketData(prices=prices, asset_names=["index", "bull", "bear"])


# a limit the first step passes: every episode ends on its first step (the yield book pays its first rebalance)
LIMITS = {
    "sb3_trading/YieldAllocation-v0": {"max_drawdown": 1e-6, "rebalance_cost_bps": 10.0},
    "sb3_trading/LeveragedPair-v0": {"stop_loss": -0.001, "data": falling_pair()},
}
REASONS = {"sb3_trading/YieldAllocation-v0": "drawdown_limit", "sb3_trading/LeveragedPair-v0": "stop_loss"}


@pytest.mark.parametrize("env_id", list(LIMITS))
@pytest.mark.parametrize("action", ["terminate", "truncate"])
def test_the_risk_limit_terminates_or_truncates(env_id, action):
    kwargs = {**LIMITS[env_id], "drawdown_action": action}
    env = gym.make(env_id, **kwargs)
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step(env.action_space.sample())
    assert (terminated, truncated) == ((True, False) if action == "terminate" else (False, True))
    if action == "terminate":
        assert info["terminated_by"] == REASONS[env_id]

    for venv in (
        DummyVecEnv([lambda: gym.make(env_id, **kwargs)] * 2),
        BatchedVecEnv(gym.make(env_id, **kwargs).unwrapped, 2),
    ):
        venv.seed(0)
        venv.reset()
        _, _, dones, infos = venv.step(np.stack([venv.action_space.sample() for _ in range(2)]))
        assert dones.all()
        for info in infos:
            assert bool(info["TimeLimit.truncated"]) == (action == "truncate")
            assert "terminal_observation" in info


@pytest.mark.parametrize("env_id", list(LIMITS))
def test_without_the_limit_the_episode_runs_on(env_id):
    """The default limits do not fire on the first step; a bad choice names the argument."""
    env = gym.make(env_id)
    env.reset(seed=0)
    _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    assert not terminated and not truncated
    with pytest.raises(ValueError, match="drawdown_action"):
        gym.make(env_id, drawdown_action="stop")


def test_a_truncated_yield_episode_keeps_its_own_end_after_reset():
    """With ``"truncate"`` the limit moves the truncation bar; the next episode runs to its own length again."""
    env = gym.make("sb3_trading/YieldAllocation-v0", max_drawdown=0.5, drawdown_action="truncate", episode_length=5)
    env.reset(seed=0)
    steps = 0
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        done, steps = terminated or truncated, steps + 1
    assert steps == 5 and truncated and not terminated
