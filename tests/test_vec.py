"""sb3_trading.vec: the batched VecEnv equals DummyVecEnv step for step, speaks SB3's VecEnv API, and trains.

No look-ahead: the batched env runs the same kernel as the single envs (their no-look-ahead tests cover
it), and ``test_batched_observations_ignore_the_future`` checks the batched observations directly.
"""

import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from lookahead import perturb_future
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.data import make_leveraged_pair_market, make_regime_market, stack_paths
from sb3_trading.envs import INFO_KEYS, MARKET_KEY, PORTFOLIO_KEY
from sb3_trading.features import FeatureNormalizer, compute_features
from sb3_trading.vec import SUPPORTED_ENV_IDS, BatchedVecEnv, BatchedVecEnvFromFns, make_vec_env
from sb3_trading.zoo_configs import config_path

MULTI, PAIR, MASKED = SUPPORTED_ENV_IDS[:3]  # YieldAllocation and MarketImpact: tests/test_*_batched.py
# short episodes and random starts, so every run crosses several auto-resets
CASES = {
    "multi": (MULTI, {"episode_length": 25, "random_start": True, "slippage_bps": 5.0}),
    # threshold rebalancing: some accounts keep their book on some steps
    "multi-band": (MULTI, {"episode_length": 25, "random_start": True, "rebalance_band": 0.8}),
    # a dead zone: actions near 0 hold nothing, the others a shrunk position
    "multi-dead-zone": (MULTI, {"episode_length": 25, "random_start": True, "dead_zone": 0.4, "rebalance_band": 0.1}),
    "multi-next-open-window": (
        MULTI,
        {
            "episode_length": 30,
            "random_start": True,
            "execution": "next_open",
            "window": 4,
            "data": make_regime_market(seed=3),
        },
    ),
    "pair-even": (PAIR, {"max_days": 20}),
    "pair-random-split-cumulative": (PAIR, {"initial_split": "random", "reward": "cumulative_pnl", "stop_loss": -0.03}),
    "pair-net-random-dead-zone": (PAIR, {"action_mode": "net", "dead_zone": 0.3, "initial_split": "random", "max_days": 20}),
    "masked": (MASKED, {"window": 20, "episode_length": 30, "max_drawdown": 0.03}),
    # resampled training markets: several paths, episodes drawn over all of them and never crossing a boundary
    "multi-paths": (
        MULTI,
        {
            "episode_length": 25,
            "random_start": True,
            "window": 3,
            "data": stack_paths([make_regime_market(n_steps=n, seed=s) for n, s in ((120, 1), (90, 2), (150, 3))]),
        },
    ),
    "pair-paths": (
        PAIR,
        {"max_days": 20, "data": stack_paths([make_leveraged_pair_market(n_steps=100, seed=s) for s in (1, 2, 3)])},
    ),
    "masked-paths": (
        MASKED,
        {
            "window": 5,
            "episode_length": 30,
            "max_volatility": 0.05,
            "data": stack_paths([make_leveraged_pair_market(n_steps=110, seed=s) for s in (4, 5)]),
        },
    ),
}
N_ENVS = 3


def reference(env_id: str, kwargs: dict, n_envs: int, seed: int) -> DummyVecEnv:
    """What SB3's make_vec_env builds (Monitor-wrapped envs in a DummyVecEnv), seeded the same way."""
    venv = DummyVecEnv([lambda: Monitor(gym.make(env_id, **kwargs))] * n_envs)
    venv.seed(seed)
    return venv


def random_actions(space: gym.Space, n_envs: int, rng: np.random.Generator) -> np.ndarray:
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(0, space.n, size=n_envs)  # masked choices included: they are counted no-ops
    return rng.uniform(space.low - 0.2, space.high + 0.2, size=(n_envs, *space.shape)).astype(np.float32)  # some clipped


def assert_info_equal(expected: dict, actual: dict, where: str) -> None:
    assert set(expected) <= set(actual), f"{where}: missing {set(expected) - set(actual)}"
    for key, value in expected.items():
        if key == "terminal_observation":
            for part in (MARKET_KEY, PORTFOLIO_KEY):
                np.testing.assert_allclose(actual[key][part], value[part], rtol=0, atol=1e-6, err_msg=f"{where} {key}")
        elif key == "episode":
            assert actual[key]["l"] == value["l"], where
            assert actual[key]["r"] == pytest.approx(value["r"], abs=1e-6), where
        elif key in ("timestamp", "terminated_by"):
            assert actual[key] == value, where
        else:
            np.testing.assert_allclose(actual[key], value, rtol=0, atol=1e-6, err_msg=f"{where} {key}")


@pytest.mark.parametrize("case", CASES)
def test_step_for_step_equal_to_dummy_vec_env(case):
    env_id, kwargs = CASES[case]
    ref = reference(env_id, kwargs, N_ENVS, seed=11)
    vec = make_vec_env(env_id, N_ENVS, seed=11, env_kwargs=kwargs)
    expected, actual = ref.reset(), vec.reset()
    for key in (MARKET_KEY, PORTFOLIO_KEY):
        np.testing.assert_allclose(actual[key], expected[key], rtol=0, atol=1e-6)
    for i in range(N_ENVS):
        assert_info_equal(ref.reset_infos[i], vec.reset_infos[i], f"reset {i}")
    rng = np.random.default_rng(0)
    n_dones = n_terminated = 0
    for step in range(120):
        if env_id == MASKED:
            np.testing.assert_array_equal(get_action_masks(vec), get_action_masks(ref), err_msg=f"masks at {step}")
        actions = random_actions(vec.action_space, N_ENVS, rng)
        ref_obs, ref_rewards, ref_dones, ref_infos = ref.step(actions)
        obs, rewards, dones, infos = vec.step(actions)
        for key in (MARKET_KEY, PORTFOLIO_KEY):
            np.testing.assert_allclose(obs[key], ref_obs[key], rtol=0, atol=1e-6, err_msg=f"{key} at {step}")
            assert obs[key].dtype == ref_obs[key].dtype
        np.testing.assert_allclose(rewards, ref_rewards, rtol=0, atol=1e-6, err_msg=f"rewards at {step}")
        assert rewards.dtype == ref_rewards.dtype and dones.dtype == ref_dones.dtype
        np.testing.assert_array_equal(dones, ref_dones, err_msg=f"dones at {step}")
        for i in range(N_ENVS):
            assert_info_equal(ref_infos[i], infos[i], f"step {step} env {i}")
            assert set(infos[i]) == set(ref_infos[i])  # nothing missing, nothing extra
        n_dones += int(dones.sum())
        n_terminated += sum(done and not info["TimeLimit.truncated"] for done, info in zip(dones, infos, strict=True))
    for i in range(N_ENVS):
        assert_info_equal(ref.reset_infos[i], vec.reset_infos[i], f"last reset {i}")
    assert n_dones >= 2 * N_ENVS  # several auto-resets per env
    if case.startswith("pair-random"):
        assert n_terminated > 0  # the stop-loss ends some episodes for real


def test_seed_reproducibility_and_seed_method():
    def run(seed: int) -> list[np.ndarray]:
        vec = make_vec_env(PAIR, 4, seed=seed, env_kwargs={"initial_split": "random"})
        trace = [vec.reset()[PORTFOLIO_KEY]]
        for _ in range(40):
            trace.append(vec.step(np.full((4, 1), 0.7, dtype=np.float32))[0][PORTFOLIO_KEY])
        return trace

    same, other = run(5), run(6)
    for a, b in zip(run(5), same, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(same, other, strict=True))
    vec = make_vec_env(PAIR, 3, seed=0)
    assert list(vec.seed(100)) == [100, 101, 102]  # SB3's convention: seed + i, used at the next reset
    first = vec.reset()
    vec.seed(100)
    np.testing.assert_array_equal(vec.reset()[MARKET_KEY], first[MARKET_KEY])


def test_vec_env_api_basics():
    vec = make_vec_env(MULTI, 5, seed=0, env_kwargs={"window": 3})
    assert isinstance(vec, VecEnv) and vec.num_envs == 5
    single = gym.make(MULTI, window=3)
    assert vec.observation_space == single.observation_space and vec.action_space == single.action_space
    obs = vec.reset()
    window, n_features = single.observation_space[MARKET_KEY].shape
    assert obs[MARKET_KEY].shape == (5, window, n_features) and obs[MARKET_KEY].dtype == np.float32
    assert obs[PORTFOLIO_KEY].shape == (5, single.observation_space[PORTFOLIO_KEY].shape[0])
    obs, rewards, dones, infos = vec.step(np.zeros((5, single.action_space.shape[0]), dtype=np.float32))
    assert rewards.shape == (5,) and rewards.dtype == np.float32 and dones.shape == (5,) and dones.dtype == bool
    assert len(infos) == 5 and all(set(INFO_KEYS) | {"timestamp", "TimeLimit.truncated"} <= set(info) for info in infos)
    for i in range(5):
        assert vec.observation_space.contains({key: value[i] for key, value in obs.items()})
    # attributes are the shared configuration; methods are per account
    assert vec.get_attr("window") == [3] * 5 and vec.get_attr("initial_cash", indices=[1, 2]) == [1_000_000.0] * 2
    assert vec.has_attr("feature_names") and not vec.has_attr("action_masks") and not is_masking_supported(vec)
    vec.set_attr("note", "x")
    assert vec.get_attr("note") == ["x"] * 5
    with pytest.raises(ValueError, match="share one configuration"):
        vec.set_attr("note", "y", indices=[0])
    with pytest.raises(AttributeError, match="action_masks"):
        vec.env_method("action_masks")
    with pytest.raises(AttributeError, match="supports"):
        vec.env_method("step", 0)
    assert vec.env_is_wrapped(Monitor) == [True] * 5 and vec.env_is_wrapped(gym.wrappers.TimeLimit) == [False] * 5
    assert make_vec_env(MULTI, 2, monitor=False).env_is_wrapped(Monitor) == [False, False]
    vec.close()


def test_masks_reach_maskable_ppo_per_account():
    vec = make_vec_env(MASKED, 4, seed=1, env_kwargs={"window": 10, "episode_length": 20})
    vec.reset()
    assert is_masking_supported(vec)
    masks = get_action_masks(vec)
    assert masks.shape == (4, vec.action_space.n) and masks.dtype == bool and masks[:, 0].all()
    for _ in range(5):
        vec.step(np.full(4, 3))  # buy bull 0.5 where legal, then the concentration limit bites
    vec.step(np.array([0, 7, 0, 7]))  # flatten accounts 1 and 3
    masks = np.stack(vec.env_method("action_masks"))
    np.testing.assert_array_equal(vec.env_method("action_masks", indices=[1, 3]), masks[[1, 3]])
    assert not masks[[1, 3], 7].any() and masks[[0, 2], 7].all()  # flatten is legal only where something is held


def test_unsupported_ids_and_bad_input():
    assert set(SUPPORTED_ENV_IDS) == set(sb3_trading.ENV_ENTRY_POINTS)  # every registered env has a batched kernel
    with pytest.raises(ValueError, match="CartPole-v1.*Supported.*MultiAsset-v0"):
        make_vec_env("CartPole-v1", 2)
    with pytest.raises(ValueError, match="did you mean 'sb3_trading/MultiAsset-v0'"):
        make_vec_env("sb3_trading/MultiAset-v0", 2)
    assert make_vec_env("sb3_trading:" + MULTI, 2).num_envs == 2  # gymnasium's "module:ID" form
    with pytest.raises(TypeError, match="KernelTradingEnv"):
        BatchedVecEnv(gym.make("CartPole-v1").unwrapped, 2)
    with pytest.raises(ValueError, match="n_envs"):
        make_vec_env(MULTI, 0)
    vec = make_vec_env(MULTI, 2)
    with pytest.raises(ResetNeeded):
        vec.step(np.zeros((2, vec.action_space.shape[0])))
    vec.reset()
    with pytest.raises(ValueError, match="shape"):
        vec.step(np.zeros((3, vec.action_space.shape[0])))
    with pytest.raises(ValueError, match="finite"):
        vec.step(np.full((2, vec.action_space.shape[0]), np.nan))
    # finite values whose sum overflows (1e308 + 1e308) are clipped like the single env's, not called non-finite
    twin = make_vec_env(MULTI, 2, seed=3)
    vec.seed(3)
    vec.reset(), twin.reset()
    huge = np.full((2, vec.action_space.shape[0]), 1e308)
    huge[1] = -1e308
    obs, rewards, _, infos = vec.step(huge)
    twin_obs, twin_rewards, _, twin_infos = twin.step(np.clip(huge, -1.0, 1.0))
    np.testing.assert_array_equal(rewards, twin_rewards)
    np.testing.assert_array_equal(obs[PORTFOLIO_KEY], twin_obs[PORTFOLIO_KEY])
    assert [info["equity"] for info in infos] == [info["equity"] for info in twin_infos]
    masked = make_vec_env(MASKED, 2, env_kwargs={"window": 10})
    masked.reset()
    with pytest.raises(ValueError, match=r"in \[0, 8\)"):
        masked.step(np.array([0, 8]))
    with pytest.raises(TypeError, match="integers"):
        masked.step(np.array([0.0, 1.0]))
    masked.step(np.array([[1], [2]]))  # (n_envs, 1) is accepted, as SB3 may send it


def test_from_env_fns_is_a_drop_in_vec_env_cls(tmp_path):
    kwargs = {"episode_length": 20, "random_start": True, "render_mode": None}  # None: SB3 would try "rgb_array"
    vec = sb3_make_vec_env(MULTI, 3, seed=4, env_kwargs=kwargs, vec_env_cls=BatchedVecEnvFromFns, monitor_dir=str(tmp_path))
    assert isinstance(vec, BatchedVecEnvFromFns)
    ref = make_vec_env(MULTI, 3, seed=4, env_kwargs=kwargs)
    np.testing.assert_array_equal(vec.reset()[PORTFOLIO_KEY], ref.reset()[PORTFOLIO_KEY])
    actions = np.full((3, vec.action_space.shape[0]), 0.3, dtype=np.float32)
    for _ in range(45):
        obs, rewards, _, _ = vec.step(actions)
        ref_obs, ref_rewards, _, _ = ref.step(actions)
        np.testing.assert_array_equal(rewards, ref_rewards)
    vec.close()
    rows = (tmp_path / "0.monitor.csv").read_text().splitlines()
    assert len(rows) == 2 + 3 * 2  # header lines, then every account's two finished episodes
    with pytest.raises(ValueError, match="FlattenObservation"):
        sb3_make_vec_env(
            MULTI,
            2,
            env_kwargs={"render_mode": None},
            vec_env_cls=BatchedVecEnvFromFns,
            wrapper_class=gym.wrappers.FlattenObservation,
        )


def test_vec_monitor_and_evaluate_policy():
    vec = VecMonitor(make_vec_env(PAIR, 2, seed=0, monitor=False))
    model = PPO("MultiInputPolicy", vec, n_steps=16, batch_size=32, n_epochs=1, policy_kwargs={"net_arch": [16]}, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the built-in episode infos count as a Monitor: no warning
        mean, _ = evaluate_policy(model, make_vec_env(PAIR, 2, seed=1), n_eval_episodes=4)
    assert np.isfinite(mean)


@pytest.mark.parametrize("algo", ["ppo", "maskable_ppo"])
def test_training_on_the_batched_env(algo):
    if algo == "ppo":
        vec = make_vec_env(MULTI, 8, seed=0, env_kwargs={"episode_length": 16, "random_start": True})
        model = PPO("MultiInputPolicy", vec, n_steps=32, batch_size=64, n_epochs=2, policy_kwargs={"net_arch": [16]}, seed=0)
    else:
        vec = make_vec_env(MASKED, 8, seed=0, env_kwargs={"window": 10, "episode_length": 16})
        model = MaskablePPO(
            "MultiInputPolicy", vec, n_steps=32, batch_size=64, n_epochs=2, policy_kwargs={"net_arch": [16]}, seed=0
        )
    model.learn(512)
    assert model.num_timesteps == 512
    assert len(model.ep_info_buffer) >= 8  # Monitor-style episode infos reach SB3's ep_rew_mean logging
    if algo == "maskable_ppo":
        obs = vec.reset()
        for _ in range(20):
            masks = get_action_masks(vec)
            actions, _ = model.predict(obs, action_masks=masks)
            assert masks[np.arange(8), actions].all()
            obs, _, _, infos = vec.step(actions)
            assert not any(info["invalid_action"] for info in infos)


def test_batched_observations_ignore_the_future():
    data = make_regime_market(n_steps=300, seed=2)
    # the normaliser is fitted on a training prefix (one fitted on the whole series would see the future)
    normalizer = FeatureNormalizer.fit(compute_features(data.slice(0, 100)).values[40:])
    kwargs = {"window": 5, "episode_length": 60, "random_start": True, "normalizer": normalizer}
    cut = 150

    def trace(market_data):
        vec = make_vec_env(MULTI, 4, seed=3, env_kwargs={**kwargs, "data": market_data})
        seen = {}
        obs = vec.reset()
        infos = vec.reset_infos
        actions = np.full((4, market_data.n_assets), 0.5, dtype=np.float32)
        for _ in range(120):
            for i, info in enumerate(infos):
                if not info.get("TimeLimit.truncated", False) and "terminal_observation" not in info:
                    seen.setdefault((i, info["t"]), []).append({key: value[i] for key, value in obs.items()})
            obs, _, _, infos = vec.step(actions)
        return seen

    base, changed = trace(data), trace(perturb_future(data, cut, np.random.default_rng(0)))
    early = [key for key in base if key[1] <= cut]
    assert early and all(key in changed for key in early)
    for key in early:
        for a, b in zip(base[key], changed[key], strict=True):
            np.testing.assert_array_equal(a[MARKET_KEY], b[MARKET_KEY])
            np.testing.assert_array_equal(a[PORTFOLIO_KEY], b[PORTFOLIO_KEY])
    assert any(not np.array_equal(base[key][0][MARKET_KEY], changed[key][0][MARKET_KEY]) for key in base if key[1] > cut)


def test_render_and_pickle():
    vec = make_vec_env(MASKED, 2, seed=0, env_kwargs={"window": 10, "render_mode": "ansi"})
    vec.reset()
    vec.step(np.array([1, 0]))
    lines = vec.env_method("render")
    assert len(lines) == 2 and all(line.startswith("t=") for line in lines)
    clone = pickle.loads(pickle.dumps(vec))
    assert len(pickle.dumps(vec)) < 5 * vec.env._features.nbytes + 1_000_000  # the window view is not pickled
    actions = np.array([2, 7])
    obs, rewards, _, _ = vec.step(actions)
    clone_obs, clone_rewards, _, _ = clone.step(actions)
    np.testing.assert_array_equal(rewards, clone_rewards)
    np.testing.assert_array_equal(obs[MARKET_KEY], clone_obs[MARKET_KEY])


def test_rl_zoo_trains_on_batched_envs(tmp_path, monkeypatch):
    import sys

    from rl_zoo3.exp_manager import ExperimentManager
    from rl_zoo3.train import train

    from sb3_trading.vec import use_in_rl_zoo

    monkeypatch.setattr(ExperimentManager, "default_vec_env_cls", None)  # restored after the test
    use_in_rl_zoo()
    assert ExperimentManager.default_vec_env_cls is BatchedVecEnvFromFns
    created = []
    create_envs = ExperimentManager.create_envs

    def spy(self, *args, **kwargs):
        env = create_envs(self, *args, **kwargs)
        created.append(env.unwrapped)
        return env

    monkeypatch.setattr(ExperimentManager, "create_envs", spy)
    conf = config_path("ppo")
    argv = ["train", "--algo", "ppo", "--env", MULTI, "--gym-packages", "sb3_trading", "--conf-file", str(conf)]
    argv += ["-n", "256", "--eval-freq", "32", "--eval-episodes", "1", "-f", str(tmp_path), "--seed", "0"]
    argv += ["--eval-env-kwargs", "episode_length:20", "random_start:True"]
    argv += ["-params", "n_envs:4", "n_steps:32", "batch_size:64", "n_epochs:1"]
    monkeypatch.setattr(sys, "argv", argv)
    train()
    assert len(created) == 2 and all(isinstance(env, BatchedVecEnvFromFns) for env in created)  # train and eval envs
    assert sorted(env.num_envs for env in created) == [1, 4]
