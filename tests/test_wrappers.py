"""Reward wrappers: hand-computed rewards on fixed return paths, stacking, every registered env, wrap_reward."""

import itertools
import math
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env as gym_check_env

import sb3_trading
from sb3_trading.envs import INFO_KEYS
from sb3_trading.wrappers import (
    COMPONENTS_KEY,
    RAW_REWARD_KEY,
    REWARD_WRAPPERS,
    ActionSmoothnessPenalty,
    CVaRPenalty,
    DifferentialSharpeReward,
    DrawdownPenalty,
    LogReturnReward,
    RewardScale,
    TurnoverPenalty,
    parse_reward_spec,
    wrap_reward,
)

ENV_IDS = sorted(sb3_trading.ENV_ENTRY_POINTS)
RETURNS = [0.01, -0.02, 0.03, -0.04, 0.05, 0.0, 0.012, -0.007, 0.02, -0.015]


class ReturnPathEnv(gym.Env):
    """Emits a prescribed return path through the standard ``info`` keys; the reward is the step's return.

    Equity starts at ``initial_equity`` and compounds ``returns``; ``drawdown = 1 - E / peak``; the
    episode terminates after the last return. Actions are ignored.
    """

    metadata = {"render_modes": []}

    def __init__(self, returns, turnover=None, costs=None, initial_equity=100.0, discrete=False):
        self.returns = [float(r) for r in returns]
        n = len(self.returns)
        self.turnover = [0.0] * n if turnover is None else [float(x) for x in turnover]
        self.costs = [0.0] * n if costs is None else [float(x) for x in costs]
        self.initial_equity = float(initial_equity)
        self.observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(3) if discrete else spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    def _info(self, r, turnover, costs):
        return {
            "equity": self.equity,
            "cash": self.equity,
            "positions": np.zeros(1),
            "weights": np.zeros(1),
            "portfolio_return": r,
            "log_return": math.log1p(r),
            "turnover": turnover,
            "costs": costs,
            "drawdown": 1.0 - self.equity / self.peak,
            "t": self.k,
        }

    def _obs(self):
        return np.array([self.k / len(self.returns)], dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.k, self.equity, self.peak = 0, self.initial_equity, self.initial_equity
        return self._obs(), self._info(0.0, 0.0, 0.0)

    def step(self, action):
        r = self.returns[self.k]
        self.equity *= 1.0 + r
        self.peak = max(self.peak, self.equity)
        info = self._info(r, self.turnover[self.k], self.costs[self.k])
        self.k += 1
        info["t"] = self.k
        return self._obs(), r, self.k >= len(self.returns), False, info


def run(env, actions=None, seed=0):
    """Rewards and infos of one whole episode."""
    env.reset(seed=seed)
    rewards, infos, done, k = [], [], False, 0
    while not done:
        action = env.action_space.sample() if actions is None else actions[k]
        _, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        infos.append(info)
        done, k = terminated or truncated, k + 1
    return np.asarray(rewards), infos


# ------------------------------------------------------------------ each wrapper by hand
def test_log_return_reward():
    rewards, infos = run(LogReturnReward(ReturnPathEnv(RETURNS)))
    np.testing.assert_allclose(rewards, np.log1p(RETURNS), rtol=0, atol=1e-15)
    assert [info[RAW_REWARD_KEY] for info in infos] == RETURNS
    assert [info[COMPONENTS_KEY]["log_return"] for info in infos] == pytest.approx(np.log1p(RETURNS).tolist())


def expected_differential_sharpe(returns, eta, var_epsilon=1e-12):
    """The recursive definition, written out independently of the wrapper."""
    mean_estimate, second_moment, out = 0.0, 0.0, []
    for r in returns:
        variance = second_moment - mean_estimate**2
        if variance > var_epsilon:
            numerator = second_moment * (r - mean_estimate) - 0.5 * mean_estimate * (r**2 - second_moment)
            out.append(numerator / variance**1.5)
        else:
            out.append(0.0)
        mean_estimate = mean_estimate + eta * (r - mean_estimate)
        second_moment = second_moment + eta * (r**2 - second_moment)
    return np.asarray(out)


@pytest.mark.parametrize("eta", [0.01, 0.1, 0.5])
def test_differential_sharpe_matches_recursive_definition(eta):
    env = DifferentialSharpeReward(ReturnPathEnv(RETURNS), eta=eta)
    rewards, infos = run(env)
    np.testing.assert_allclose(rewards, expected_differential_sharpe(RETURNS, eta), rtol=1e-9, atol=1e-9)
    assert rewards[0] == 0.0  # A_0 = B_0 = 0: no variance estimate on the first step
    assert [info[RAW_REWARD_KEY] for info in infos] == RETURNS
    # state resets at episode start: a second episode repeats the first exactly
    again, _ = run(env)
    np.testing.assert_array_equal(again, rewards)


def test_differential_sharpe_is_the_first_order_change_of_the_moving_sharpe():
    """Moody & Saffell: S(A_{t-1} + eta dA, B_{t-1} + eta dB) = S_{t-1} + eta D_t + O(eta^2), S = A / sqrt(B - A^2)."""
    env = DifferentialSharpeReward(ReturnPathEnv(RETURNS), eta=0.2)
    env.reset(seed=0)
    h = 1e-7
    for k, r in enumerate(RETURNS):
        a, b = env.A, env.B
        _, reward, *_ = env.step(env.action_space.sample())
        if k == 0:
            continue

        def sharpe(x, a=a, b=b, r=r):
            mean, second = a + x * (r - a), b + x * (r * r - b)
            return mean / math.sqrt(second - mean**2)

        assert reward == pytest.approx((sharpe(h) - sharpe(-h)) / (2 * h), rel=1e-5)


def test_differential_sharpe_flat_path_is_zero_and_log_option():
    # a constant return c: after the zero start B_1 - A_1^2 = eta (1 - eta) c^2 > 0 and D_2 = 0.5 / sqrt(eta (1 - eta))
    rewards, _ = run(DifferentialSharpeReward(ReturnPathEnv([0.01] * 6), eta=0.1))
    assert rewards[1] == pytest.approx(0.5 / math.sqrt(0.1 * 0.9), rel=1e-9)
    np.testing.assert_allclose(rewards, expected_differential_sharpe([0.01] * 6, 0.1), rtol=1e-9)
    zeros, _ = run(DifferentialSharpeReward(ReturnPathEnv([0.0] * 6), eta=0.1))
    assert (zeros == 0.0).all()  # variance estimate stays 0: the documented defined value
    logs, _ = run(DifferentialSharpeReward(ReturnPathEnv(RETURNS), eta=0.1, returns="log"))
    np.testing.assert_allclose(logs, expected_differential_sharpe(np.log1p(RETURNS), 0.1), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("mode", ["increase", "level"])
def test_drawdown_penalty_is_exactly_zero_on_a_monotone_path(mode):
    path = [0.01, 0.0, 0.02, 0.0, 0.0, 0.03]
    rewards, infos = run(DrawdownPenalty(ReturnPathEnv(path), coef=5.0, mode=mode))
    assert rewards.tolist() == path
    assert all(info[COMPONENTS_KEY]["drawdown_penalty"] == 0.0 for info in infos)


def test_drawdown_penalty_by_hand_on_a_falling_path():
    # equity 100 -> 110 -> 104.5 -> 94.05 -> 95.931 -> 115.1172; peak 110 until the last step
    # drawdown 0, 0.05, 0.145, 0.1279, 0
    path = [0.1, -0.05, -0.1, 0.02, 0.2]
    rewards, infos = run(DrawdownPenalty(ReturnPathEnv(path), coef=2.0, mode="increase"))
    increase = [0.0, 2 * 0.05, 2 * (0.145 - 0.05), 0.0, 0.0]
    np.testing.assert_allclose([i[COMPONENTS_KEY]["drawdown_penalty"] for i in infos], increase, atol=1e-12)
    np.testing.assert_allclose(rewards, np.asarray(path) - increase, atol=1e-12)
    rewards, _ = run(DrawdownPenalty(ReturnPathEnv(path), coef=2.0, mode="level"))
    np.testing.assert_allclose(rewards, np.asarray(path) - 2 * np.array([0.0, 0.05, 0.145, 0.1279, 0.0]), atol=1e-12)


def test_cvar_penalty_by_hand():
    # window 3, alpha 0.5: k = ceil(0.5 n); windows [.01] [.01,-.02] [.01,-.02,.03] [-.02,.03,-.04] [.03,-.04,.05]
    # worst k: [.01] -> CVaR -0.01 -> 0; [-.02] -> .02; [-.02,.01] -> .005; [-.04,-.02] -> .03; [-.04,.03] -> .005
    path = [0.01, -0.02, 0.03, -0.04, 0.05]
    rewards, infos = run(CVaRPenalty(ReturnPathEnv(path), coef=10.0, alpha=0.5, window=3))
    penalties = [0.0, 0.2, 0.05, 0.3, 0.05]
    np.testing.assert_allclose([i[COMPONENTS_KEY]["cvar_penalty"] for i in infos], penalties, atol=1e-12)
    np.testing.assert_allclose(rewards, np.asarray(path) - penalties, atol=1e-12)
    # alpha * n = 0.1 * 30 is 3.0000000000000004 in floating point: still the worst 3, not 4
    env = CVaRPenalty(ReturnPathEnv([-0.01 * (k + 1) for k in range(30)]), coef=1.0, alpha=0.1, window=30)
    run(env)
    assert env.cvar() == pytest.approx((0.30 + 0.29 + 0.28) / 3)


def test_turnover_penalty_by_hand():
    path, turnover = [0.01, 0.02, -0.01], [0.5, 0.0, 1.2]
    rewards, infos = run(TurnoverPenalty(ReturnPathEnv(path, turnover=turnover), coef=0.01))
    np.testing.assert_allclose(rewards, np.asarray(path) - [0.005, 0.0, 0.012], atol=1e-15)
    assert [i[COMPONENTS_KEY]["turnover_penalty"] for i in infos] == pytest.approx([0.005, 0.0, 0.012])


def test_action_smoothness_penalty_by_hand():
    path = [0.0, 0.0, 0.0, 0.0]
    actions = np.array([[0.0, 0.0], [1.0, -1.0], [1.0, -1.0], [0.5, 0.0]], dtype=np.float32)
    rewards, _ = run(ActionSmoothnessPenalty(ReturnPathEnv(path), coef=0.1, ord=1), actions)
    np.testing.assert_allclose(rewards, [0.0, -0.2, 0.0, -0.15], atol=1e-7)
    rewards, _ = run(ActionSmoothnessPenalty(ReturnPathEnv(path), coef=0.1, ord=2), actions)
    np.testing.assert_allclose(rewards, [0.0, -0.1 * math.sqrt(2), 0.0, -0.1 * math.sqrt(1.25)], atol=1e-7)
    # a discrete action is one-hot: each change moves two entries
    rewards, _ = run(ActionSmoothnessPenalty(ReturnPathEnv(path, discrete=True), coef=0.1), [0, 2, 2, 1])
    np.testing.assert_allclose(rewards, [0.0, -0.2, 0.0, -0.2], atol=1e-12)


def test_reward_scale():
    rewards, infos = run(RewardScale(ReturnPathEnv(RETURNS), scale=3.0))
    np.testing.assert_allclose(rewards, 3.0 * np.asarray(RETURNS), atol=1e-15)
    assert [i[RAW_REWARD_KEY] for i in infos] == RETURNS


# ---------------------------------------------------------------------------- stacking
STACKABLE = {
    "differential_sharpe": lambda env: DifferentialSharpeReward(env, eta=0.1),
    "drawdown": lambda env: DrawdownPenalty(env, coef=0.5),
    "cvar": lambda env: CVaRPenalty(env, coef=0.3, alpha=0.2, window=4),
    "turnover": lambda env: TurnoverPenalty(env, coef=0.01),
}


def fold(infos_step, order):
    """The stacked reward recomputed from the recorded components, innermost first."""
    reward = infos_step[RAW_REWARD_KEY]
    for name in order:
        cls = REWARD_WRAPPERS[name]
        term = infos_step[COMPONENTS_KEY][cls.component_key]
        reward = term if cls.replaces_reward else (reward * term if cls is RewardScale else reward - term)
    return reward


@pytest.mark.parametrize("order", list(itertools.permutations([*STACKABLE, "scale"], 4)), ids="-".join)
def test_wrappers_stack_in_any_order(order):
    turnover = [0.1 * k for k in range(len(RETURNS))]
    base = ReturnPathEnv(RETURNS, turnover=turnover)
    env = base
    for name in order:
        env = RewardScale(env, scale=2.0) if name == "scale" else STACKABLE[name](env)
    rewards, infos = run(env)
    alone = {name: run(make(ReturnPathEnv(RETURNS, turnover=turnover)))[1] for name, make in STACKABLE.items()}
    for k, info in enumerate(infos):
        assert set(INFO_KEYS) <= set(info)
        assert info[RAW_REWARD_KEY] == RETURNS[k]
        assert len(info[COMPONENTS_KEY]) == 4
        # each wrapper's term does not depend on where it sits in the stack
        for name, infos_alone in alone.items():
            if name not in order:
                continue
            key = REWARD_WRAPPERS[name].component_key
            assert info[COMPONENTS_KEY][key] == pytest.approx(infos_alone[k][COMPONENTS_KEY][key], abs=1e-15)
        assert rewards[k] == pytest.approx(fold(info, order), abs=1e-12)


def test_same_wrapper_twice_keeps_both_terms_and_inner_info_is_not_mutated():
    base = ReturnPathEnv(RETURNS, turnover=[1.0] * len(RETURNS))
    env = TurnoverPenalty(TurnoverPenalty(base, coef=0.01), coef=0.02)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env.action_space.sample())
    assert info[COMPONENTS_KEY] == pytest.approx({"turnover_penalty": 0.01, "turnover_penalty_2": 0.02})
    assert reward == pytest.approx(RETURNS[0] - 0.03)
    _, _, _, _, inner_info = base.step(base.action_space.sample())
    assert RAW_REWARD_KEY not in inner_info and COMPONENTS_KEY not in inner_info


# ---------------------------------------------------------------- every registered env
def small_env(env_id):
    return gym.make(env_id, **({"window": 30} if env_id.endswith("MaskedTrading-v0") else {}))


@pytest.mark.parametrize("name", sorted(REWARD_WRAPPERS))
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_each_wrapper_on_every_registered_env(env_id, name):
    env = REWARD_WRAPPERS[name](small_env(env_id))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env, skip_render_check=True)
    unexpected = [str(w.message) for w in caught if "different from the unwrapped version" not in str(w.message)]
    assert unexpected == []
    reference = small_env(env_id)
    env.reset(seed=1)
    reference.reset(seed=1)
    env.action_space.seed(1)
    for _ in range(15):
        action = env.action_space.sample()
        _, reward, terminated, truncated, info = env.step(action)
        _, raw, *_ = reference.step(action)
        assert set(INFO_KEYS) <= set(info) and np.isfinite(reward)
        assert info[RAW_REWARD_KEY] == raw
        if terminated or truncated:
            break


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_full_stack_on_every_registered_env(env_id):
    specs = ["differential_sharpe:0.05", "drawdown:0.5", "cvar:coef=1,alpha=0.1", "turnover", "smoothness", "scale:10"]
    env = wrap_reward(small_env(env_id), specs)
    env.reset(seed=0)
    for _ in range(10):
        _, reward, terminated, truncated, info = env.step(env.action_space.sample())
        assert np.isfinite(reward) and set(INFO_KEYS) <= set(info)
        assert len(info[COMPONENTS_KEY]) == len(specs)
        if terminated or truncated:
            env.reset()
    # picklable, and the spec rebuilds the same stack
    clone = pickle.loads(pickle.dumps(env))
    assert type(clone) is RewardScale
    rebuilt = gym.make(env.spec)
    assert [w.name for w in rebuilt.spec.additional_wrappers] == [w.name for w in env.spec.additional_wrappers]


# ----------------------------------------------------------------------- wrap_reward
def test_wrap_reward_specs():
    env = wrap_reward(ReturnPathEnv(RETURNS), ["differential_sharpe", "drawdown:0.5", ("cvar", {"alpha": 0.1}), "scale:10"])
    assert isinstance(env, RewardScale) and env.scale == 10.0
    assert isinstance(env.env, CVaRPenalty) and env.env.alpha == 0.1
    assert isinstance(env.env.env, DrawdownPenalty) and env.env.env.coef == 0.5
    assert isinstance(env.env.env.env, DifferentialSharpeReward) and env.env.env.env.eta == 0.01
    cls, kwargs = parse_reward_spec("cvar:coef=0.5,alpha=0.1,window=30")
    assert cls is CVaRPenalty and kwargs == {"coef": 0.5, "alpha": 0.1, "window": 30}
    assert parse_reward_spec("drawdown:mode=level")[1] == {"mode": "level"}
    assert parse_reward_spec("differential_sharpe:0.05")[1] == {"eta": 0.05}
    assert wrap_reward(env, None) is env and wrap_reward(env, []) is env
    assert isinstance(wrap_reward(ReturnPathEnv(RETURNS), "log_return"), LogReturnReward)
    assert isinstance(wrap_reward(ReturnPathEnv(RETURNS), ("scale", {"scale": 2.0})), RewardScale)
    assert isinstance(wrap_reward(ReturnPathEnv(RETURNS), ("log_return", "scale")), RewardScale)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("drawdwn", "did you mean 'drawdown'"),
        ("sharpe", "did you mean 'differential_sharpe'"),
        ("log_return:3", "takes no argument"),
        ("cvar:coef=1,alpha", "expected NAME:key=value"),
        ("drawdown:-1", "coef must be >= 0"),
        ("drawdown:mode=peak", "mode must be one of"),
        ("differential_sharpe:0", "eta must be > 0"),
        ("differential_sharpe:1.5", "eta must be in (0, 1]"),
        ("cvar:window=0", "window must be an integer >= 1"),
        ("cvar:alpha=0", "alpha must be > 0"),
        ("scale:0", "scale must be > 0"),
        ("smoothness:ord=3", "ord must be 1 or 2"),
        ("turnover:nan", "coef must be finite"),
        ("cvar:aplha=0.1", "no argument 'aplha'; did you mean 'alpha'"),
    ],
)
def test_bad_specs_raise_value_error(spec, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        wrap_reward(ReturnPathEnv(RETURNS), [spec])


def test_non_numeric_argument_raises_type_error():
    with pytest.raises(TypeError, match="coef must be a number"):
        wrap_reward(ReturnPathEnv(RETURNS), ["drawdown:lots"])


def test_replacing_wrapper_outside_a_penalty_warns():
    with pytest.warns(UserWarning, match="DifferentialSharpeReward replaces the reward"):
        wrap_reward(ReturnPathEnv(RETURNS), ["drawdown", "differential_sharpe"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        wrap_reward(ReturnPathEnv(RETURNS), ["differential_sharpe", "drawdown"])


def test_env_without_standard_info_keys_gets_a_clear_error():
    env = DrawdownPenalty(gym.make("CartPole-v1"))
    env.reset(seed=0)
    with pytest.raises(KeyError, match="DrawdownPenalty needs info\\['drawdown'\\]"):
        env.step(0)
