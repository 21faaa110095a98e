"""Lean infos of the batched VecEnv: the step as arrays, per-env dicts built when read, and every key right."""

from __future__ import annotations

import copy
import json
import pickle

import numpy as np
import pytest
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

from sb3_trading.envs.info import INFO_KEYS
from sb3_trading.vec import make_vec_env
from sb3_trading.vec.infos import LazyInfo, StepInfos

MULTI = "sb3_trading/MultiAsset-v0"


def stepped(n_envs: int = 4, steps: int = 1, **kwargs):
    vec = make_vec_env(MULTI, n_envs, seed=3, env_kwargs={"episode_length": 5, "window": 3, **kwargs})
    vec.reset()
    rng = np.random.default_rng(0)
    for _ in range(steps):
        obs, rewards, dones, infos = vec.step(rng.uniform(-1, 1, (n_envs, *vec.action_space.shape)))
    return vec, infos, dones


def test_arrays_hold_every_key_of_the_step_and_agree_with_the_dicts():
    vec, infos, _ = stepped()
    assert isinstance(infos, StepInfos) and len(infos) == 4
    assert [*INFO_KEYS, "TimeLimit.truncated"] == [key for key in infos.arrays if key != "timestamp"]
    assert vec.step_arrays is infos.arrays
    for i in range(4):
        info = infos[i]
        for key, column in infos.arrays.items():
            if key == "log_return":  # the arrays' log is NumPy's, the dicts' math.log: equal to the last bit or so
                assert info[key] == pytest.approx(column[i], rel=1e-14, abs=1e-300)
            else:
                np.testing.assert_array_equal(np.asarray(info[key]), column[i], err_msg=key)
    assert infos.arrays["positions"].shape == (4, vec.env.n_assets)


def test_a_lazy_info_fills_in_on_any_read_and_keeps_what_was_written():
    _, infos, _ = stepped()
    info = infos[1]
    assert isinstance(info, LazyInfo) and dict.__len__(info) == 1  # only TimeLimit.truncated until read
    assert info.get("episode") is None and "episode" not in info and dict.__len__(info) == 1  # SB3's per-step reads
    assert "equity" in info and dict.__len__(info) == 1  # a standard key is "in" without building the dict
    info["terminal_observation"] = "written first"
    assert info["equity"] == infos.arrays["equity"][1]  # a standard key: built now
    assert dict.__len__(info) == len(infos.arrays) + 1 and info["terminal_observation"] == "written first"
    fresh = infos[2]
    assert fresh.copy() == dict(fresh) == {**fresh} == fresh and type(fresh.copy()) is dict
    assert list(infos[3]) == list(infos[3].keys()) and len(infos[3]) == len(infos.arrays)
    for clone in (pickle.loads(pickle.dumps(infos[0])), copy.deepcopy(infos[0])):
        assert type(clone) is dict and list(clone) == list(infos[0])
        for key, value in infos[0].items():
            np.testing.assert_array_equal(clone[key], value, err_msg=key)
    assert json.loads(json.dumps({k: v for k, v in infos[0].items() if k in ("equity", "t")}))["t"] == infos[0]["t"]
    with pytest.raises(KeyError):
        infos[0]["not a key"]
    assert infos[-1] is infos[3] and infos[1:3] == [infos[1], infos[2]]
    with pytest.raises(IndexError):
        infos[4]
    clones = pickle.loads(pickle.dumps(infos))
    assert type(clones) is list and [list(c) for c in clones] == [list(i) for i in infos]
    assert [c["equity"] for c in clones] == infos.arrays["equity"].tolist()


def test_episode_ends_reach_sb3_wrappers_through_the_lazy_infos():
    vec = VecNormalize(VecMonitor(make_vec_env(MULTI, 3, seed=0, env_kwargs={"episode_length": 4}, monitor=False)))
    vec.reset()
    seen = 0
    for _ in range(9):
        _, _, dones, infos = vec.step(np.zeros((3, *vec.action_space.shape)))
        for i in np.flatnonzero(dones):
            info = infos[i]
            assert info["episode"]["l"] == 4 and info["TimeLimit.truncated"] is True
            assert set(info["terminal_observation"]) == {"market", "portfolio"}
            assert info["equity"] > 0 and isinstance(info["t"], int)  # standard keys still readable behind the wrappers
            seen += 1
    assert seen == 6


def test_trading_metrics_callback_reads_the_arrays_and_matches_the_dict_path():
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure

    from sb3_trading.callbacks import TradingMetricsCallback

    vec = make_vec_env(MULTI, 2, seed=0, env_kwargs={"episode_length": 8, "window": 2})
    callback = TradingMetricsCallback(periods_per_year=252)
    model = PPO("MultiInputPolicy", vec, n_steps=16, batch_size=32, n_epochs=1, policy_kwargs={"net_arch": [8]}, seed=0)
    model.learn(32, callback=callback)
    assert callback.n_episodes == 4  # 2 envs x 16 steps / 8 steps, read from infos.arrays
    # the same episodes read from plain dicts: equal metrics
    vec = make_vec_env(MULTI, 2, seed=0, env_kwargs={"episode_length": 8, "window": 2})
    vec.reset()
    rng = np.random.default_rng(1)
    model = PPO("MultiInputPolicy", vec, n_steps=16, policy_kwargs={"net_arch": [8]}, seed=0)
    model.set_logger(configure(None, []))
    from_arrays, from_dicts = TradingMetricsCallback(periods_per_year=252), TradingMetricsCallback(periods_per_year=252)
    for cb in (from_arrays, from_dicts):
        cb.init_callback(model)
    for _ in range(16):
        _, _, dones, infos = vec.step(rng.uniform(-1, 1, (2, *vec.action_space.shape)))
        from_arrays.locals = {"infos": infos, "dones": dones}
        from_dicts.locals = {"infos": [info.copy() for info in infos], "dones": dones}
        from_arrays._on_step()
        from_dicts._on_step()
    assert len(from_arrays.episodes) == len(from_dicts.episodes) == 4
    for a, b in zip(from_arrays.episodes, from_dicts.episodes, strict=True):
        assert a == pytest.approx(b, rel=1e-12)
