"""Every registered sb3_trading env honours the common contract (DESIGN.md, "The environments")."""

import inspect
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
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


def test_the_design_envs_are_registered_on_import():
    import subprocess
    import sys

    # a fresh interpreter: gymnasium's "module:ID" form imports sb3_trading, which registers every ID
    code = f"import gymnasium as gym; [gym.make('sb3_trading:' + i) for i in {ENV_IDS!r}]"
    subprocess.run([sys.executable, "-c", code], check=True)
    names = {env_id.split("/")[1] for env_id in ENV_IDS}
    assert names == {
        "MultiAsset-v0",
        "LeveragedPair-v0",
        "MaskedTrading-v0",
        "SingleAsset-v0",
        "YieldAllocation-v0",
        "MarketImpact-v0",
    }
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


# ------------------------------------------------------------------------------------------------------ helpers
def short_name(env_id: str) -> str:
    return env_id.split("/")[1].removesuffix("-v0")


def contract_env(env_id: str, **kwargs) -> gym.Env:
    """The unwrapped env of ``env_id`` with short episodes (MaskedTrading with a short window)."""
    defaults = {
        "LeveragedPair": {"max_days": 10},
        "MaskedTrading": {"window": 30, "episode_length": 10},
    }.get(short_name(env_id), {"episode_length": 10})
    return gym.make(env_id, **{**defaults, **kwargs}).unwrapped


#: the arguments of each env that are cost rates in bps (YieldAllocation has one rebalance cost)
COST_ARGS = {env_id: ("commission_bps", "slippage_bps") for env_id in ENV_IDS} | {
    env_id: ("rebalance_cost_bps",) for env_id in ENV_IDS if "YieldAllocation" in env_id
}
#: the argument of each env that bounds its episode (LeveragedPair counts days)
LENGTH_ARG = {env_id: "max_days" if "LeveragedPair" in env_id else "episode_length" for env_id in ENV_IDS}
#: the envs with a discrete (masked) action space
DISCRETE_IDS = [env_id for env_id in ENV_IDS if short_name(env_id) in ("MaskedTrading", "SingleAsset")]
BOX_IDS = [env_id for env_id in ENV_IDS if env_id not in DISCRETE_IDS]


def inside_action(env: gym.Env) -> np.ndarray:
    """A fixed action inside a Box space (a quarter of the way from low to high)."""
    space = env.action_space
    return (space.low + 0.25 * (space.high - space.low)).astype(np.float64)


def assert_same_step(a: tuple, b: tuple) -> None:
    """Two step results are equal: observation, reward, flags and every info value."""
    for key in (MARKET_KEY, PORTFOLIO_KEY):
        np.testing.assert_array_equal(a[0][key], b[0][key])
    assert a[1:4] == b[1:4]
    assert a[4].keys() == b[4].keys()
    for key, value in a[4].items():
        np.testing.assert_array_equal(value, b[4][key], err_msg=key)


def run_to_the_end(env: gym.Env, action) -> dict:
    """Step with ``action`` until the episode ends; the last info."""
    for _ in range(10_000):
        _, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            return info
    raise AssertionError("the episode never ended")


# -------------------------------------------------------------------- per-env contracts, moved here from each env's tests
@pytest.mark.parametrize("env_id", BOX_IDS)
def test_box_actions_are_clipped(env_id):
    """An action outside the Box is the clipped action: the same step (moved from each Box env's tests)."""
    env_a, env_b = contract_env(env_id), contract_env(env_id)
    env_a.reset(seed=0)
    env_b.reset(seed=0)
    space = env_a.action_space
    n = space.shape[0]
    above = np.where(np.arange(n) % 2 == 0, 3.0, -7.0)  # MultiAsset's [3, -7] -> [1, -1], MarketImpact's -> [1, 0]
    below = np.full(n, -2.0)  # LeveragedPair's [-2] -> [0]
    for action in (above, below, above * 1e300):
        assert_same_step(env_a.step(action), env_b.step(np.clip(action, space.low, space.high)))


BOX_BAD_ACTIONS = [
    ("too long", lambda n: np.zeros(n + 1), ValueError, "shape"),
    ("batched", lambda n: np.zeros((1, n)), ValueError, "shape"),
    ("nan", lambda n: np.array([np.nan] + [0.0] * (n - 1)), ValueError, "finite"),
    ("inf", lambda n: np.array([0.0] * (n - 1) + [np.inf]), ValueError, "finite"),
    ("-inf", lambda n: np.full(n, -np.inf), ValueError, "finite"),
    ("strings", lambda n: np.array(["a"] * n), ValueError, "finite"),
]


@pytest.mark.parametrize("name, make_action, error, match", BOX_BAD_ACTIONS, ids=[case[0] for case in BOX_BAD_ACTIONS])
@pytest.mark.parametrize("env_id", BOX_IDS)
def test_bad_box_action_raises(env_id, name, make_action, error, match):
    env = contract_env(env_id)
    env.reset(seed=0)
    n = env.action_space.shape[0]
    with pytest.raises(error, match=match):
        env.step(make_action(n))
    if match == "shape":
        with pytest.raises(error, match=rf"shape \({n},\)"):
            env.step(make_action(n))


DISCRETE_BAD_ACTIONS = [
    (8, ValueError, r"in \[0, 8\)"),
    (-1, ValueError, r"in \[0, 8\)"),
    (np.int64(9), ValueError, r"in \[0, 8\)"),
    (2.0, TypeError, "integer"),
    (np.array([np.nan]), TypeError, "integer"),
    (np.array([1, 2]), ValueError, "one integer"),
    ("1", TypeError, "integer"),
    (None, TypeError, "integer"),
    (True, TypeError, "integer"),
    (1e308, TypeError, "integer"),
]


@pytest.mark.parametrize("action, error, match", DISCRETE_BAD_ACTIONS, ids=[repr(case[0]) for case in DISCRETE_BAD_ACTIONS])
@pytest.mark.parametrize("env_id", DISCRETE_IDS)
def test_bad_discrete_action_raises(env_id, action, error, match):
    """Moved from test_masked_trading.py: 8 = 2 * len(sizes) + 2 actions with the default sizes."""
    env = contract_env(env_id)
    env.reset(seed=0)
    assert env.action_space.n == 8
    with pytest.raises(error, match=match):
        env.step(action)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_pickle_round_trip_mid_episode(env_id):
    """A pickled env continues exactly as the original, masks included (moved from each env's tests)."""
    kwargs = {"initial_split": "random"} if "LeveragedPair" in env_id else {}
    env = contract_env(env_id, **kwargs)
    env.reset(seed=1)
    env.action_space.seed(1)
    discrete = isinstance(env.action_space, gym.spaces.Discrete)
    # MaskedTrading: buy bull 25 %, then buy bear 50 % (a switch), hold and flatten
    first, *then = (2, 6, 0, 7) if discrete else (env.action_space.sample() for _ in range(4))
    env.step(first)
    clone = pickle.loads(pickle.dumps(env))
    if hasattr(env, "action_masks"):
        np.testing.assert_array_equal(env.action_masks(), clone.action_masks())
    for action in then:
        assert_same_step(env.step(action), clone.step(action))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_render_ansi(env_id):
    """``render_mode="ansi"``: one line with the bar of the last info (moved from each env's tests)."""
    env = contract_env(env_id, render_mode="ansi")
    _, info = env.reset(seed=0)
    assert env.render().startswith(f"t={info['t']} ")
    _, _, _, _, info = env.step(env.action_space.sample())
    line = env.render()
    assert line.startswith(f"t={info['t']} ") and f"equity={info['equity']:.2f}" in line
    assert contract_env(env_id).render() is None


# -------------------------------------------------------------------- hardening: arguments and episode ends (issue 16)
@pytest.mark.filterwarnings("ignore:sizes .* can never be bought")  # MaskedTrading: 50 % buys at 100 % slippage
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_cost_rates_of_100_percent_or_more_are_refused(env_id):
    for name in COST_ARGS[env_id]:
        for value in (1e4, 2e4, -1.0, float("nan"), float("inf")):
            with pytest.raises(ValueError, match=name):
                contract_env(env_id, **{name: value})
        assert contract_env(env_id, **{name: 9_999.0}).costs is not None  # just below 100 % is accepted


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_a_cost_that_is_not_a_number_is_a_type_error_naming_it(env_id):
    for name in COST_ARGS[env_id]:
        for value in ("10", None, True, [10.0]):
            with pytest.raises(TypeError, match=name):
                contract_env(env_id, **{name: value})


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_integer_arguments_must_be_integers(env_id):
    length = LENGTH_ARG[env_id]
    for name, value in ((length, 1.5), (length, 2.0), (length, "5"), (length, True), ("window", 2.0), ("window", True)):
        with pytest.raises(TypeError, match=name):
            contract_env(env_id, **{name: value})
        with pytest.raises(ValueError, match=name):  # the same error is a ValueError too (what these raised before)
            contract_env(env_id, **{name: value})
    env = contract_env(env_id, **{length: np.int64(7)}, window=np.int32(30))  # NumPy integers are integers
    assert type(env.episode_length) is int and env.episode_length == 7 and type(env.window) is int


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_initial_cash_is_bounded(env_id):
    for value in (0.0, -1.0, float("nan"), float("inf"), 1e300, 1.01e15):
        with pytest.raises(ValueError, match="initial_cash"):
            contract_env(env_id, initial_cash=value)
    with pytest.raises(TypeError, match="initial_cash"):
        contract_env(env_id, initial_cash="1e6")
    assert contract_env(env_id, initial_cash=1e15).initial_cash == 1e15


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_cash_of_a_long_only_book_never_goes_negative_at_the_largest_initial_cash(env_id):
    if "MultiAsset" in env_id or "MarketImpact" in env_id:
        pytest.skip("shorts (MultiAsset) and impact fills (MarketImpact) may borrow cash by design")
    env = contract_env(env_id, initial_cash=1e15)
    _, info = env.reset(seed=0)
    env.action_space.seed(0)
    cash = [info["cash"]]
    for _ in range(40):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        cash.append(info["cash"])
        if terminated or truncated:
            env.reset()
    # MaskedTrading's limit checks allow a relative slack of 1e-9 of equity, YieldAllocation leaves a rounding residual
    assert min(cash) >= -1e-9 * 1e15
    if "LeveragedPair" in env_id:
        assert min(cash) >= 0.0  # the README's promise: whole shares, buys cut so cash never goes below zero


@pytest.mark.parametrize("random_start", [True, False], ids=["episode-end", "end-of-data"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_stepping_after_the_episode_ended_needs_a_reset(env_id, random_start):
    """Every env answers a step after ``terminated``/``truncated`` the same way, as Gymnasium's wrappers would."""
    length = {LENGTH_ARG[env_id]: 5 if random_start else None, "random_start": random_start}
    if not random_start:  # nothing but the data may end the episode
        length |= {"YieldAllocation": {"max_drawdown": None}, "LeveragedPair": {"stop_loss": None}}.get(short_name(env_id), {})
    env = contract_env(env_id, **length)
    env.reset(seed=0)
    action = env.action_space.sample() if env_id in DISCRETE_IDS else inside_action(env)
    info = run_to_the_end(env, action)
    if not random_start:
        assert info["t"] == env.last_t  # the last bar of the data
    for _ in range(2):
        with pytest.raises(ResetNeeded, match=r"call reset\(\) before step\(\) after the episode ended"):
            env.step(action)
    env.reset(seed=1)
    env.step(action)  # a reset makes stepping legal again


@pytest.mark.parametrize("env_id", BOX_IDS)
def test_huge_finite_actions_are_clipped_not_called_non_finite(env_id):
    """1e308 + 1e308 overflows a sum, but every value is finite: the action is clipped (issue 16)."""
    env_a, env_b = contract_env(env_id), contract_env(env_id)
    env_a.reset(seed=0)
    env_b.reset(seed=0)
    space = env_a.action_space
    for fill in (1e308, -1e308, np.finfo(np.float64).max):
        action = np.full(space.shape, fill)
        assert_same_step(env_a.step(action), env_b.step(np.clip(action, space.low, space.high)))


# -------------------------------------------------------------------- env hooks the run recipe and the baselines read
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_default_market_is_the_market_the_env_builds(env_id):
    env = gym.make(env_id, synthetic_seed=4).unwrapped
    market = type(env).default_market(4)
    np.testing.assert_array_equal(market.prices, env.data.prices)
    assert market.asset_names == env.data.asset_names and market.feature_names == env.data.feature_names


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_yield_rates_hook(env_id):
    env = gym.make(env_id).unwrapped
    rates = env.yield_rates()
    if "YieldAllocation" not in env_id:
        assert rates is None
        return
    assert rates.shape == (env.data.n_steps, len(env.traded_assets))
    columns = [env.data.feature_names.index(f"apy[{asset}]") for asset in env.traded_assets]
    np.testing.assert_allclose(rates, env.data.features[:, columns] / env.periods_per_year, rtol=1e-15)
    rates[:] = 0.0  # a copy: the env's accrual is untouched
    assert env.yield_rates().any()


@pytest.mark.filterwarnings("ignore:.*render_mode='x'")  # gymnasium.make's own warning before the env refuses it
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_argument_given_a_string_is_refused_naming_it(env_id):
    """No NumPy or SeedSequence error leaks out of a constructor: each argument is checked and named."""
    env_class = type(gym.make(env_id).unwrapped)
    names = [name for name in inspect.signature(env_class.__init__).parameters if name != "self"]
    for name in names:
        with pytest.raises((TypeError, ValueError), match=name):
            contract_env(env_id, **{name: "x"})
