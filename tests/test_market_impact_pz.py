"""The PettingZoo ParallelEnv view of sb3_trading/MarketImpact-v0."""

import importlib
import sys
import warnings

import numpy as np
import pytest

pytest.importorskip("pettingzoo")

from pettingzoo.test import parallel_api_test, parallel_seed_test  # noqa: E402

from sb3_trading.data import MarketData  # noqa: E402
from sb3_trading.envs import INFO_KEYS, PORTFOLIO_KEY  # noqa: E402
from sb3_trading.envs.market_impact import MarketImpactEnv  # noqa: E402
from sb3_trading.envs.market_impact_pz import MarketImpactParallelEnv, parallel_env  # noqa: E402
from sb3_trading.sim.impact import HeuristicTrader  # noqa: E402


def hand_kwargs(**kwargs):
    prices = np.array([[99.0, 49.5], [100.0, 50.0], [101.0, 49.0], [100.0, 50.0]])
    return {
        "data": MarketData(prices=prices, asset_names=["A", "B"]),
        "initial_cash": 100_000.0,
        "commission_bps": 0.0,
        "impact_coef": 0.0,
        "traders": (HeuristicTrader("momentum", lookback=1),),
        "indicators": ["return"],
        "normalizer": None,
        "episode_length": None,
        "random_start": False,
        **kwargs,
    }


def test_parallel_api_test_passes():
    env = parallel_env(learners=("agent_0", "agent_1"), episode_length=40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parallel_api_test(env, num_cycles=60)
    assert [str(w.message) for w in caught] == []


def test_parallel_seed_test_passes():
    parallel_seed_test(lambda: parallel_env(learners=2, episode_length=20), num_cycles=30)


def test_hand_example_two_learners():
    env = MarketImpactParallelEnv(learners=("agent_0", "agent_1"), **hand_kwargs())
    observations, infos = env.reset(seed=0)
    assert env.agents == env.possible_agents == ["agent_0", "agent_1"]
    assert set(observations) == set(infos) == set(env.agents)
    _, rewards, terminations, truncations, infos = env.step({"agent_0": np.array([0.6, 0.4]), "agent_1": np.zeros(2)})
    # agent_0: [600, 800] shares -> -200; agent_1: all cash -> 0; momentum [500, 1000] shares -> -500
    assert infos["agent_0"]["pnl"] == pytest.approx(-200.0, abs=1e-9)
    assert infos["agent_1"]["pnl"] == 0.0
    np.testing.assert_allclose(infos["agent_0"]["agent_pnl"], [-200.0, 0.0, -500.0], atol=1e-9)
    pnl = np.array([-200.0, 0.0, -500.0])
    values = 100_000.0 + pnl  # the shaping basis (default reward_basis="wealth"), currency
    sigma = values.std()
    for i, agent in enumerate(env.possible_agents):
        expected = (pnl[i] + 0.05 / (1 + sigma) + 0.1 * (values[i] - values.mean()) / sigma) / 100_000.0
        assert rewards[agent] == pytest.approx(expected, abs=1e-15)
        assert set(INFO_KEYS) <= set(infos[agent])
    assert not any(terminations.values()) and not any(truncations.values())
    _, _, _, truncations, _ = env.step({"agent_0": np.zeros(2), "agent_1": np.zeros(2)})
    assert all(truncations.values()) and env.agents == []
    with pytest.raises(RuntimeError, match="reset"):
        env.step({})


@pytest.mark.parametrize("kwargs", [{}, {"weight_mode": "cap", "dead_zone": 0.4}])
def test_one_learner_matches_the_gymnasium_env(kwargs):
    kwargs = {"episode_length": 25, "impact_coef": 0.5, **kwargs}
    gym_env = MarketImpactEnv(**kwargs)
    pz_env = parallel_env(learners=("solo",), **kwargs)
    obs, _ = gym_env.reset(seed=4)
    observations, _ = pz_env.reset(seed=4)
    np.testing.assert_array_equal(observations["solo"][PORTFOLIO_KEY], obs[PORTFOLIO_KEY])
    rng = np.random.default_rng(0)
    while pz_env.agents:
        action = rng.uniform(0, 1, 3)
        obs, reward, _, truncated, info = gym_env.step(action)
        observations, rewards, _, truncations, infos = pz_env.step({"solo": action})
        assert rewards["solo"] == reward and truncations["solo"] == truncated
        np.testing.assert_array_equal(observations["solo"][PORTFOLIO_KEY], obs[PORTFOLIO_KEY])
        np.testing.assert_array_equal(infos["solo"]["agent_pnl"], info["agent_pnl"])
    assert truncated


def test_a_ruined_agent_terminates_and_the_others_go_on():
    prices = np.array([[100.0], [100.0], [1e-6], [1e-6], [1e-6]])
    kwargs = hand_kwargs(data=MarketData(prices=prices), commission_bps=10.0, traders=())
    env = parallel_env(learners=("all_in", "cash"), **kwargs)
    env.reset()
    # all in at 100 pays 10 bps from cash (cash -100), then the price collapses: equity < 0
    _, _, terminations, truncations, infos = env.step({"all_in": np.ones(1), "cash": np.zeros(1)})
    assert terminations == {"all_in": True, "cash": False} and not any(truncations.values())
    assert infos["all_in"]["equity"] < 0 and infos["cash"]["equity"] == 100_000.0
    assert env.agents == ["cash"]
    _, rewards, terminations, _, infos = env.step({"cash": np.zeros(1)})
    assert set(rewards) == {"cash"} and not terminations["cash"]
    np.testing.assert_array_equal(env.env.market.book.positions[0], [0.0])  # the ruined book was liquidated


def test_spaces_are_per_agent_and_stable():
    env = parallel_env(learners=3)
    assert env.possible_agents == ["agent_0", "agent_1", "agent_2"]
    assert env.action_space("agent_0") is env.action_space("agent_0")
    assert env.action_space("agent_0") is not env.action_space("agent_1")
    observations, _ = env.reset(seed=0)
    for agent, obs in observations.items():
        assert env.observation_space(agent).contains(obs)


@pytest.mark.parametrize(
    "learners, error, match",
    [
        (0, ValueError, ">= 1"),
        ((), ValueError, "one or more"),
        (("a", "a"), ValueError, "distinct"),
        ("agent_0", TypeError, "sequence"),
    ],
)
def test_bad_learners_raise(learners, error, match):
    with pytest.raises(error, match=match):
        parallel_env(learners=learners)


def test_bad_actions_raise():
    env = parallel_env(learners=("a", "b"), **hand_kwargs())
    env.reset()
    with pytest.raises(ValueError, match=r"missing \['b'\]"):
        env.step({"a": np.zeros(2)})
    with pytest.raises(ValueError, match="unexpected"):
        env.step({"a": np.zeros(2), "b": np.zeros(2), "c": np.zeros(2)})
    with pytest.raises(ValueError, match="finite"):
        env.step({"a": np.zeros(2), "b": np.array([np.nan, 1.0])})
    with pytest.raises(TypeError, match="dict"):
        env.step([np.zeros(2), np.zeros(2)])


def test_missing_pettingzoo_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pettingzoo", None)  # makes `import pettingzoo` fail
    monkeypatch.delitem(sys.modules, "sb3_trading.envs.market_impact_pz")
    with pytest.raises(ImportError, match=r"sb3-trading\[multiagent\]"):
        importlib.import_module("sb3_trading.envs.market_impact_pz")
