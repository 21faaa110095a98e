"""YieldAllocation-v0's batched kernel: step for step equal to DummyVecEnv of the single envs, and checked by hand."""

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.data import MarketData, stack_paths
from sb3_trading.data.yield_market import make_yield_market
from sb3_trading.envs import INFO_KEYS, MARKET_KEY, PORTFOLIO_KEY
from sb3_trading.envs.yield_allocation import YIELD_INFO_KEYS, YieldAllocationEnv, YieldAllocationKernel
from sb3_trading.vec import BatchedVecEnv

ENV_ID = "sb3_trading/YieldAllocation-v0"
N_ENVS = 8
#: the entries YieldAllocation adds to the standard info keys, in order
EXTRAS = YIELD_INFO_KEYS
# short episodes and random starts: every run crosses several auto-resets
CASES = {
    "default-costs": {"episode_length": 15, "random_start": True, "rebalance_cost_bps": 20.0},
    # a de-peg-prone market, bounds, a window, and a drawdown limit tight enough to truncate episodes early
    "depegs-drawdown-window": {
        "data": make_yield_market(n_steps=300, seed=4, depeg_prob=0.03),
        "episode_length": 25,
        "random_start": True,
        "window": 4,
        "max_drawdown": 0.004,
        "depeg_penalty": 3.0,
        "lower_bound": [0.0, 0.1, 0.05, 0.0],
        "upper_bound": 0.7,
        "temperature": 0.5,
        "rebalance_cost_bps": 10.0,
        "rebalance_band": 0.05,  # threshold rebalancing: some accounts keep their book on some steps
    },
    # the sizing entry: some accounts in cash (inside the dead zone), some partly invested
    "size-action-financed": {
        "episode_length": 18,
        "random_start": True,
        "size_action": True,
        "dead_zone": 0.3,
        "financing": {"cash_rate": 0.03},
        "rebalance_cost_bps": 10.0,
    },
    # resampled markets: episodes drawn over every path and never crossing a boundary
    "paths": {
        "data": stack_paths([make_yield_market(n_steps=n, n_assets=3, seed=s) for n, s in ((90, 1), (120, 2), (70, 3))]),
        "episode_length": 20,
        "random_start": True,
        "window": 2,
    },
}


def assert_info_equal(expected: dict, actual: dict, where: str) -> None:
    """Every key of ``expected`` (and no other) in ``actual``, with the same value (``log_return``: to the last bits,
    NumPy's log of a batch may differ from ``math.log`` there)."""
    assert set(actual) == set(expected), f"{where}: keys {set(actual) ^ set(expected)}"
    for key, value in expected.items():
        if key == "terminal_observation":
            for part in (MARKET_KEY, PORTFOLIO_KEY):
                np.testing.assert_array_equal(actual[key][part], value[part], err_msg=f"{where} {key}")
        elif key == "episode":
            assert actual[key]["l"] == value["l"], where
            assert actual[key]["r"] == pytest.approx(value["r"], abs=1e-6), where
        elif key == "log_return":
            assert actual[key] == pytest.approx(value, rel=1e-15, abs=1e-15), where
        elif key in ("positions", "weights", "target_weights"):
            np.testing.assert_array_equal(actual[key], value, err_msg=f"{where} {key}")
        else:
            assert actual[key] == value, f"{where} {key}: {actual[key]!r} != {value!r}"


@pytest.mark.filterwarnings("ignore:.*render_mode='rgb_array'")  # SB3's make_vec_env asks for it; no render here
@pytest.mark.parametrize("case", CASES)
def test_batched_equals_dummy_vec_env_step_for_step(case):
    kwargs = CASES[case]
    seed = 5
    ref = sb3_make_vec_env(ENV_ID, N_ENVS, seed=seed, env_kwargs=kwargs)
    vec = BatchedVecEnv(gym.make(ENV_ID, **kwargs).unwrapped, N_ENVS)
    vec.seed(seed)
    expected, actual = ref.reset(), vec.reset()
    for key in (MARKET_KEY, PORTFOLIO_KEY):
        np.testing.assert_array_equal(actual[key], expected[key])
    for i in range(N_ENVS):
        assert_info_equal(ref.reset_infos[i], vec.reset_infos[i], f"reset {i}")
        assert set(EXTRAS) | set(INFO_KEYS) <= set(vec.reset_infos[i])
    space = vec.action_space
    rng = np.random.default_rng(0)
    n_dones = n_early = 0
    for step in range(150):
        actions = (rng.uniform(space.low - 0.3, space.high + 0.3, size=(N_ENVS, *space.shape)) * 2).astype(np.float32)
        ref_obs, ref_rewards, ref_dones, ref_infos = ref.step(actions)
        obs, rewards, dones, infos = vec.step(actions)
        for key in (MARKET_KEY, PORTFOLIO_KEY):
            np.testing.assert_array_equal(obs[key], ref_obs[key], err_msg=f"{key} at {step}")
            assert obs[key].dtype == ref_obs[key].dtype == np.float32
        np.testing.assert_array_equal(rewards, ref_rewards, err_msg=f"rewards at {step}")
        np.testing.assert_array_equal(dones, ref_dones, err_msg=f"dones at {step}")
        assert rewards.dtype == ref_rewards.dtype and dones.dtype == ref_dones.dtype
        for i in range(N_ENVS):
            assert_info_equal(ref_infos[i], infos[i], f"step {step} env {i}")
            if dones[i]:
                episode_length = infos[i]["episode"]["l"]
                n_early += episode_length < kwargs["episode_length"]
        n_dones += int(dones.sum())
    for i in range(N_ENVS):  # the reset infos of the last auto-resets, built lazily
        assert_info_equal(ref.reset_infos[i], vec.reset_infos[i], f"last reset {i}")
    assert n_dones >= 2 * N_ENVS  # several auto-resets per env
    if "max_drawdown" in kwargs:
        assert n_early > 0  # the drawdown limit truncated some episodes before their length


def hand_env(**kwargs) -> YieldAllocationEnv:
    """Two assets at 1 until the last bar, where A rises 10 % and B de-pegs to 0.9; APYs 2.52 % and 5.04 % (252 bars)."""
    prices = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.1, 0.9]])
    apy = np.broadcast_to([0.0252, 0.0504], prices.shape)
    data = MarketData(prices=prices, features=apy, asset_names=["A", "B"], feature_names=["apy[A]", "apy[B]"])
    arguments = {
        "initial_cash": 10_000.0,
        "rebalance_cost_bps": 5.0,
        "indicators": ["return"],
        "normalizer": None,
        "lower_bound": 0.4,
        "upper_bound": 0.6,
        "periods_per_year": 252,
        "depeg_penalty": 2.0,
        **kwargs,
    }
    return YieldAllocationEnv(data=data, **arguments)


def test_one_batched_step_with_costs_by_hand():
    """Three accounts, three actions, one step of the kernel: the self-financing solve, the yield, the mark, the
    observation, the outcome (a drawdown limit between the accounts' drawdowns truncates one) and the infos."""
    c, r, e0 = 5e-4, np.array([1e-4, 2e-4]), 10_000.0
    env = hand_env(max_drawdown=3.55e-4, drawdown_action="truncate")
    kernel = env.make_kernel(3)
    assert isinstance(kernel, YieldAllocationKernel) and kernel.n_envs == 3
    rows = np.arange(3)
    start = kernel.reset(rows, {"start": np.array([1, 1, 1])})
    np.testing.assert_array_equal(start.portfolio, np.tile(np.array([0.0, 0.0, 1.0, 0.0], dtype=np.float32), (3, 1)))
    np.testing.assert_array_equal(kernel.end_t, [3, 3, 3])

    # softmax of [0, 0], [1, -1], [-1, 1] projected onto [0.4, 0.6]
    weights = np.array([[0.5, 0.5], [0.6, 0.4], [0.4, 0.6]])
    tr = kernel.step(np.array([[0.0, 0.0], [1.0, -1.0], [-1.0, 1.0]]))
    np.testing.assert_allclose(np.stack(tr.extras["target_weights"]), weights, rtol=0, atol=1e-15)
    # from all cash every trade is a buy: V + c V = E0, all invested, no cash left
    v = e0 / (1 + c)
    np.testing.assert_allclose(tr.notional, v, rtol=1e-14)
    np.testing.assert_allclose(tr.costs, c * v, rtol=1e-14)
    np.testing.assert_allclose(tr.cash, 0.0, atol=1e-9)
    # one bar of yield paid in shares, marked at p_2 = 1
    shares = v * weights * (1 + r)
    np.testing.assert_allclose(tr.positions, shares, rtol=1e-14)
    equity = shares.sum(axis=1)
    np.testing.assert_allclose(tr.equity, equity, rtol=1e-14)
    np.testing.assert_allclose(tr.extras["yield_income"], v * weights @ r, rtol=1e-12)
    np.testing.assert_array_equal(tr.extras["depeg_penalty"], 0.0)  # nothing de-pegged at t = 2
    drawdown = 1 - equity / e0  # costs exceed one bar of yield: ~3.5e-4 below the initial peak
    np.testing.assert_allclose(tr.drawdown, drawdown, rtol=1e-9)
    np.testing.assert_array_equal(tr.t, [2, 2, 2])
    expected_portfolio = np.column_stack([shares / equity[:, None], np.zeros(3), drawdown]).astype(np.float32)
    np.testing.assert_allclose(tr.portfolio, expected_portfolio, rtol=1e-6, atol=1e-12)
    assert tr.portfolio.dtype == np.float32

    reward, portfolio_return, terminated, truncated, turnover = kernel.outcome(
        tr.equity, tr.equity_t, tr.notional, tr.t, kernel.end_t
    )
    np.testing.assert_allclose(portfolio_return, equity / e0 - 1, rtol=1e-10)
    np.testing.assert_array_equal(reward, portfolio_return)
    np.testing.assert_allclose(turnover, v / e0, rtol=1e-14)
    # drawdowns 1 - (1 + w . r) / (1 + c): 3.50e-4, 3.60e-4, 3.40e-4; only account 1 passes 3.55e-4
    assert drawdown[1] > 3.55e-4 > drawdown[0] > drawdown[2]
    np.testing.assert_array_equal(terminated, False)
    np.testing.assert_array_equal(truncated, [False, True, False])
    np.testing.assert_array_equal(kernel.end_t, [3, 2, 3])
    assert tr.ended is None  # truncated: no end code

    infos = [kernel.info(tr, i, portfolio_return, turnover) for i in range(3)]
    assert list(infos[0]) == [*INFO_KEYS, *EXTRAS]  # no timestamps in this data
    for i, info in enumerate(infos):
        np.testing.assert_array_equal(info["target_weights"], tr.extras["target_weights"][i])
        assert info["equity"] == tr.equity[i] and info["costs"] == tr.costs[i] and info["t"] == 2
        assert isinstance(info["depeg_penalty"], float) and isinstance(info["yield_income"], float)

    # all three rebalance to [0.6, 0.4] from their own holdings h at p_2 = 1, each buying A and selling B (account 1
    # holds its target up to the yield, which grew B more), so they pay c on 0.2 V2 + (h_B - h_A):
    # V2 (1 + 0.2 c) = E_2 + c (h_A - h_B)
    held = shares
    tr2 = kernel.step(np.tile([1.0, -1.0], (3, 1)))
    v2 = (equity + c * (held[:, 0] - held[:, 1])) / (1 + 0.2 * c)
    np.testing.assert_allclose(tr2.notional, 0.6 * v2 - held[:, 0] + held[:, 1] - 0.4 * v2, rtol=1e-9)
    np.testing.assert_allclose(tr2.costs, c * tr2.notional, rtol=1e-12)
    np.testing.assert_allclose(tr2.cash, 0.0, atol=1e-9)
    assert tr2.notional[1] < 1e-3 * tr2.notional[0]  # only the yield's drift
    # marked at p_3 = [1.1, 0.9]; B is 10 % below its peg: penalty 2 * 0.4 * 0.1
    equity_3 = v2 * (0.6 * (1 + r[0]) * 1.1 + 0.4 * (1 + r[1]) * 0.9)
    np.testing.assert_allclose(tr2.equity, equity_3, rtol=1e-12)
    np.testing.assert_allclose(tr2.extras["depeg_penalty"], 2.0 * 0.4 * 0.1, rtol=1e-12)
    reward, portfolio_return, *_ = kernel.outcome(tr2.equity, tr2.equity_t, tr2.notional, tr2.t, kernel.end_t, tr2.reward)
    np.testing.assert_allclose(portfolio_return, equity_3 / equity - 1, rtol=1e-10)
    np.testing.assert_allclose(reward, portfolio_return - 0.08, rtol=0, atol=1e-15)

    # a reset restores the episode end, and its transition carries no penalty (lazily built reset infos included)
    fresh = kernel.reset(np.array([1]), {"start": np.array([1])})
    np.testing.assert_array_equal(kernel.end_t, [3, 3, 3])
    assert fresh.reward is None  # the reward of a reset is its (zero) return
    reward, portfolio_return, *_ = kernel.outcome(fresh.equity, fresh.equity_t, fresh.notional, fresh.t, kernel.end_t[[1]])
    np.testing.assert_array_equal(reward, [0.0])


def test_single_env_is_the_batch_of_one():
    """The Gymnasium env and row 0 of a batch of three with the same actions give the same numbers, bit for bit."""
    env = hand_env(max_drawdown=None)
    kernel = env.make_kernel(3)
    kernel.reset(np.arange(3), {"start": np.array([1, 1, 1])})
    env.reset(seed=0)
    actions = np.array([[0.3, -0.7], [1.0, 1.0], [-1.0, 0.2]])
    for _ in range(2):
        obs, reward, _, _, info = env.step(actions[0].astype(np.float32))
        tr = kernel.step(actions.astype(np.float32).astype(np.float64))
        out = kernel.outcome(tr.equity, tr.equity_t, tr.notional, tr.t, kernel.end_t, tr.reward)
        np.testing.assert_array_equal(obs[PORTFOLIO_KEY], tr.portfolio[0])
        assert reward == out[0][0]
        assert info["equity"] == tr.equity[0] and info["yield_income"] == tr.extras["yield_income"][0]
        np.testing.assert_array_equal(info["target_weights"], tr.extras["target_weights"][0])
