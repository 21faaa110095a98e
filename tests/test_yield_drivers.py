"""YieldAllocation's exogenous drivers, staked assets, peg deviations, per-asset de-peg tolerances,
``initial_weights`` and the single-asset baselines."""

import gymnasium as gym
import numpy as np
import pytest
from lookahead import assert_no_look_ahead
from stable_baselines3.common.env_util import make_vec_env as sb3_make_vec_env
from test_yield_allocation import E0, hand_data, hand_env
from test_yield_allocation_batched import assert_info_equal

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.data import MarketData
from sb3_trading.data.yield_market import (
    DRIVER_COLUMNS,
    PEG,
    YieldDrivers,
    apy_column,
    compute_peg_deviation,
    depeg_column,
    make_yield_market,
    peg_dev_column,
    staked_names,
    with_peg_deviation,
)
from sb3_trading.envs import MARKET_KEY, PORTFOLIO_KEY
from sb3_trading.envs.yield_allocation import YieldAllocationEnv
from sb3_trading.evaluation.baselines import (
    SINGLE_ASSET,
    buy_and_hold,
    env_baselines,
    single_asset_baselines,
    single_asset_name,
)
from sb3_trading.sim import CostModel
from sb3_trading.vec import BatchedVecEnv

ENV_ID = "sb3_trading/YieldAllocation-v0"
OHLCV = ("prices", "open", "high", "low", "volume")


def column(data: MarketData, name: str) -> np.ndarray:
    return data.features[:, data.feature_names.index(name)]


# --------------------------------------------------------------------------- drivers
def test_drivers_are_seeded_named_and_leave_the_default_market_alone():
    a = make_yield_market(n_steps=300, n_assets=3, seed=2, drivers=True, staked_assets=1)
    b = make_yield_market(n_steps=300, n_assets=3, seed=2, drivers=True, staked_assets=1)
    for field in (*OHLCV, "features"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.features, make_yield_market(n_steps=300, n_assets=3, seed=3, drivers=True).features[:, :1])
    names = ("asset_0", "asset_1", "asset_2", *staked_names(1))
    assert a.asset_names == names
    assert a.feature_names == (
        *(apy_column(n) for n in names),
        *(depeg_column(n) for n in names),
        *(peg_dev_column(n) for n in names),
        *DRIVER_COLUMNS,
    )
    assert DRIVER_COLUMNS == ("eth_price", "btc_price", "btc_dominance", "policy_rate", "lending_apy", "gas")
    # the new parts draw after the default market: its pegged prices are those of the same seed without them
    plain = make_yield_market(n_steps=300, n_assets=3, seed=2)
    for field in OHLCV:
        np.testing.assert_array_equal(getattr(a, field)[:, :3], getattr(plain, field))
    # without drivers (and no rate pass-through) the features are the default ones, plus only what was asked for
    quiet = make_yield_market(n_steps=300, n_assets=3, seed=2, drivers=YieldDrivers(rate_beta=0.0))
    np.testing.assert_array_equal(quiet.features[:, :6], plain.features)
    assert quiet.feature_names == (*plain.feature_names, *DRIVER_COLUMNS)
    with_dev = make_yield_market(n_steps=300, n_assets=3, seed=2, peg_deviation=True)
    np.testing.assert_array_equal(with_dev.features[:, :6], plain.features)
    for field in OHLCV:
        np.testing.assert_array_equal(getattr(with_dev, field), getattr(plain, field))


def test_driver_ranges_and_the_policy_rate_steps():
    spec = YieldDrivers(meeting_interval=20, policy_rate_step=0.0025)
    data = make_yield_market(n_steps=2000, n_assets=2, seed=4, drivers=spec)
    eth, btc, dominance, policy, lending, gas = (column(data, name) for name in DRIVER_COLUMNS)
    assert eth[0] == spec.eth_start and btc[0] == spec.btc_start and (eth > 0).all() and (btc > 0).all()
    assert ((dominance > 0) & (dominance < 1)).all() and dominance[0] == pytest.approx(spec.dominance_mean)
    assert (gas > 0).all() and 5 < np.median(gas) < 150  # gwei around the 30 median
    assert (policy >= 0).all() and (lending >= 0).all()
    np.testing.assert_allclose(policy / 0.0025, np.round(policy / 0.0025), atol=1e-9)  # 25 bp steps
    changes = np.flatnonzero(np.diff(policy) != 0) + 1
    assert changes.size >= 3 and (changes % 20 == 0).all()  # it moves only at the meetings
    assert abs(np.mean(lending - policy) - spec.lending_spread) < 0.01


@pytest.mark.parametrize("correlation", [0.8, -0.3])
def test_eth_btc_log_returns_have_the_configured_correlation_and_vols(correlation):
    spec = YieldDrivers(eth_btc_correlation=correlation, eth_vol=0.7, btc_vol=0.5)
    data = make_yield_market(n_steps=20_000, n_assets=1, seed=1, drivers=spec)
    r_eth, r_btc = np.diff(np.log(column(data, "eth_price"))), np.diff(np.log(column(data, "btc_price")))
    assert np.corrcoef(r_eth, r_btc)[0, 1] == pytest.approx(correlation, abs=0.03)
    assert r_eth.std() * np.sqrt(252) == pytest.approx(0.7, rel=0.03)
    assert r_btc.std() * np.sqrt(252) == pytest.approx(0.5, rel=0.03)


def test_pegged_apys_follow_the_lending_rate():
    base = make_yield_market(n_steps=1500, n_assets=2, seed=6, apy_mean=0.08)
    spec = YieldDrivers(rate_beta=0.5)
    driven = make_yield_market(n_steps=1500, n_assets=2, seed=6, apy_mean=0.08, drivers=spec)
    lending = column(driven, "lending_apy")
    for asset in base.asset_names:
        before, after = column(base, apy_column(asset)), column(driven, apy_column(asset))
        inside = (before > 0) & (after > 0)  # away from the floor at 0: apy = own OU + 0.5 * (lending - level)
        assert inside.mean() > 0.9
        np.testing.assert_allclose(after[inside] - before[inside], 0.5 * (lending[inside] - spec.lending_level), atol=1e-12)


# --------------------------------------------------------------------------- staked assets
def test_staked_log_returns_regress_on_eth_with_slope_beta():
    betas = [0.7, 1.5]
    data = make_yield_market(n_steps=20_000, n_assets=1, seed=3, drivers=True, staked_assets=2, staked_beta=betas)
    eth = column(data, "eth_price")
    r_eth = np.diff(np.log(eth))
    for j, beta in enumerate(betas):
        price = data.prices[:, 1 + j]
        slope = np.polyfit(r_eth, np.diff(np.log(price)), 1)[0]
        assert slope == pytest.approx(beta, abs=0.02)
        # the staked asset's peg is its beta-implied fair value: the peg deviation and the flag measure from it
        fair = np.exp(beta * np.log(eth / eth[0]))
        np.testing.assert_allclose(column(data, peg_dev_column(f"staked_{j}")), price / fair - 1, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(column(data, depeg_column(f"staked_{j}")), (price < fair * (1 - 0.005)).astype(float))
        assert np.abs(column(data, peg_dev_column(f"staked_{j}"))).max() < 0.02  # no de-peg shocks by default
        assert price[0] == 1.0 and price.max() / price.min() > 2  # volatile, not pegged to 1
    staking = column(data, apy_column("staked_0"))
    assert abs(staking.mean() - 0.035) < 0.01 and (staking >= 0).all()


def test_staked_assets_validation():
    with pytest.raises(ValueError, match="staked_assets=1 needs .* drivers=True"):
        make_yield_market(staked_assets=1)
    with pytest.raises(ValueError, match="staked_beta"):
        make_yield_market(drivers=True, staked_assets=2, staked_beta=[1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="dominance_mean"):
        YieldDrivers(dominance_mean=1.0)
    with pytest.raises(ValueError, match="meeting_interval"):
        YieldDrivers(meeting_interval=0)
    with pytest.raises(TypeError, match="drivers"):
        make_yield_market(drivers="yes")


# --------------------------------------------------------------------------- peg deviation
def test_peg_deviation_is_price_over_peg_minus_one_exactly():
    prices = np.array([[1.0, 2.0], [0.99, 1.9], [1.01, 2.2]])
    data = with_peg_deviation(hand_data(prices), peg=[1.0, 2.0])
    assert data.feature_names[-2:] == ("peg_dev[A]", "peg_dev[B]")
    expected = np.array([[0.0, 0.0], [0.99 - 1.0, 1.9 / 2.0 - 1.0], [1.01 - 1.0, 2.2 / 2.0 - 1.0]])
    np.testing.assert_array_equal(data.features[:, -2:], expected)
    np.testing.assert_array_equal(compute_peg_deviation(prices, np.array([1.0, 2.0])), expected)
    with pytest.raises(ValueError, match="already has"):
        with_peg_deviation(data)
    with pytest.raises(ValueError, match="shape"):
        with_peg_deviation(hand_data(prices), peg=[1.0, 2.0, 3.0])
    # the synthetic market's pegged assets: PEG = 1, so exactly price - 1
    market = make_yield_market(n_steps=200, n_assets=3, seed=0, peg_deviation=True, depeg_prob=0.05)
    for i, asset in enumerate(market.asset_names):
        np.testing.assert_array_equal(column(market, peg_dev_column(asset)), market.prices[:, i] / PEG - 1.0)


def test_env_observes_the_peg_deviation():
    prices = np.array([[1.0, 1.0], [1.0, 0.98], [0.995, 1.0], [1.0, 1.0]])
    data = with_peg_deviation(hand_data(prices, apy=0.03))
    env = hand_env(data=data)
    assert "peg_dev[A]" in env.feature_names and "peg_dev[B]" in env.feature_names
    obs, info = env.reset()
    columns = [env.feature_names.index(c) for c in ("peg_dev[A]", "peg_dev[B]")]
    np.testing.assert_allclose(obs[MARKET_KEY][-1, columns], prices[info["t"]] - 1.0, rtol=1e-6)
    obs, *_, info = env.step(np.zeros(2))
    np.testing.assert_allclose(obs[MARKET_KEY][-1, columns], prices[info["t"]] - 1.0, rtol=1e-6)


# --------------------------------------------------------------------------- per-asset tolerance
def test_per_asset_depeg_tolerance():
    """A at 0.99 is de-pegged under 0.005; B at 0.99 is not under 0.02: penalty 2 * 0.5 * 0.01 from A alone."""
    prices = np.array([[1.0, 1.0], [1.0, 1.0], [0.99, 0.99]])
    env = hand_env(prices=prices, lower_bound=0.5, upper_bound=0.5, depeg_penalty=2.0, depeg_tolerance=[0.005, 0.02])
    np.testing.assert_array_equal(env.depeg_tolerance, [0.005, 0.02])
    env.reset()
    _, reward, _, _, info = env.step(np.zeros(2))
    assert info["depeg_penalty"] == pytest.approx(2.0 * 0.5 * 0.01, abs=1e-12)
    assert reward == pytest.approx(info["portfolio_return"] - 0.01, abs=1e-12)
    # one number still applies to every asset: both de-peg under 0.005
    both = hand_env(prices=prices, lower_bound=0.5, upper_bound=0.5, depeg_penalty=2.0, depeg_tolerance=0.005)
    both.reset()
    *_, info = both.step(np.zeros(2))
    assert info["depeg_penalty"] == pytest.approx(2.0 * (0.5 * 0.01 + 0.5 * 0.01), abs=1e-12)


def test_peg_none_reads_the_datas_moving_peg():
    """B is staked-like: priced far from 1, pegged to a fair value the data's peg_dev column encodes."""
    prices = np.array([[1.0, 1.6], [1.0, 1.6], [1.0, 1.8]])
    fair_b = np.array([1.6, 1.6, 2.0])
    peg = np.column_stack([np.ones(3), fair_b])
    data = with_peg_deviation(hand_data(prices), peg=peg)  # B at t = 2: 1.8 / 2 - 1 = -10 %
    with pytest.warns(UserWarning, match="far from peg"):
        hand_env(data=data, peg=1.0)  # a constant peg overrides the columns
    env = hand_env(data=data, lower_bound=0.5, upper_bound=0.5, depeg_penalty=1.0, depeg_tolerance=[0.005, 0.2])
    assert env.peg is None
    env.reset()
    *_, info = env.step(np.zeros(2))
    assert info["depeg_penalty"] == 0.0  # -10 % is inside B's 20 % tolerance
    tight = hand_env(data=data, lower_bound=0.5, upper_bound=0.5, depeg_penalty=1.0, depeg_tolerance=0.05)
    tight.reset()
    *_, info = tight.step(np.zeros(2))
    assert info["depeg_penalty"] == pytest.approx(0.5 * (1 - 1.8 / 2.0), abs=1e-12)
    partial = hand_data(prices, extra_features=np.zeros((3, 1)), extra_names=["peg_dev[A]"])
    with pytest.raises(ValueError, match=r"lacks \['peg_dev\[B\]'\]"):
        hand_env(data=partial)


@pytest.mark.parametrize(
    ("tolerance", "match"),
    [
        ([0.01, 0.02, 0.03], r"depeg_tolerance must be a number or have one value per asset, shape \(2,\)"),
        ([0.01, 1.0], r"depeg_tolerance must be relative distances in \[0, 1\)"),
        (-0.1, "depeg_tolerance"),
        (1.0, "depeg_tolerance"),
    ],
)
def test_bad_depeg_tolerance(tolerance, match):
    with pytest.raises(ValueError, match=match):
        hand_env(depeg_tolerance=tolerance)


# --------------------------------------------------------------------------- initial weights
def test_initial_weights_bought_at_reset_by_hand():
    """5 bps commission and 2 bps slippage: a buy costs r = a + c (1 + a) per unit; V = E0 / (1 + r sum(w))."""
    prices = np.array([[1.0, 2.0], [1.0, 2.0], [1.0, 2.0], [1.0, 2.0]])
    w = np.array([0.3, 0.5])
    env = hand_env(prices=prices, peg=[1.0, 2.0], rebalance_cost_bps=5.0, slippage_bps=2.0, initial_weights=w)
    c, a = 5e-4, 2e-4
    r = a + c * (1 + a)
    obs, info = env.reset()
    assert info["t"] == 1
    v = E0 / (1 + r * w.sum())
    np.testing.assert_allclose(info["positions"], w * v / prices[1], rtol=1e-14)
    assert info["cash"] == pytest.approx(v * (1 - w.sum()), rel=1e-12)
    assert info["costs"] == pytest.approx(r * w.sum() * v, rel=1e-12)
    assert info["equity"] == pytest.approx(v, rel=1e-14)  # E0 - costs
    np.testing.assert_allclose(info["weights"], w, rtol=1e-12)  # the book holds the weights
    assert info["turnover"] == pytest.approx(w.sum() * v / E0, rel=1e-14)
    assert info["portfolio_return"] == pytest.approx(-info["costs"] / E0, rel=1e-10)
    np.testing.assert_array_equal(info["target_weights"], w)
    np.testing.assert_allclose(obs[PORTFOLIO_KEY], [*w, 0.2, 1 - v / E0], rtol=1e-6)
    # the first step trades from these holdings at the same close: to [0.5, 0.5] it buys 0.2 V of A only
    # V' + c (0.5 V' - 0.3 V) + c (0.5 V - 0.5 V') = V  (B's small sale and A's buy; slippage off here)
    plain = hand_env(prices=prices, peg=[1.0, 2.0], rebalance_cost_bps=5.0, initial_weights=w)
    _, info0 = plain.reset()
    e = info0["equity"]
    *_, info = plain.step(np.zeros(2))
    assert info["costs"] == pytest.approx(c * 0.2 * e, rel=1e-9)
    assert info["equity"] == pytest.approx(e * (1 - 0.2 * c), rel=1e-12)


def test_initial_weights_default_and_all_cash_book():
    env = hand_env()
    _, info = env.reset()
    assert env.initial_weights is None and info["cash"] == E0 and info["costs"] == 0.0
    zero = hand_env(initial_weights=[0.0, 0.0], rebalance_cost_bps=5.0)
    obs, info = zero.reset()
    assert info["cash"] == E0 and info["costs"] == 0.0 and info["equity"] == E0
    np.testing.assert_array_equal(obs[PORTFOLIO_KEY], [0.0, 0.0, 1.0, 0.0])


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([0.5, 0.5, 0.0], r"initial_weights must be None or one weight per asset, shape \(2,\)"),
        ([-0.1, 0.5], r"initial_weights must be finite weights >= 0"),
        ([np.nan, 0.5], r"initial_weights must be finite weights >= 0"),
        ([0.6, 0.5], r"initial_weights must sum to at most 1"),
        ([0.7, 0.2], r"initial_weights exceed upper_bound for assets \[0\]"),
    ],
)
def test_bad_initial_weights(weights, match):
    with pytest.raises(ValueError, match=match):
        hand_env(initial_weights=weights, upper_bound=0.6)


def test_initial_weights_in_the_batched_kernel():
    """BatchedVecEnv resets every account with the same purchase as the gym env (its batch of one)."""
    prices = np.array([[1.0, 2.0], [1.0, 2.0], [1.02, 1.9], [1.0, 2.0]])
    kwargs = {"prices": prices, "peg": [1.0, 2.0], "rebalance_cost_bps": 5.0, "initial_weights": [0.4, 0.6], "apy": 0.0252}
    env = hand_env(**kwargs)
    obs_1, info_1 = env.reset(seed=0)
    vec = BatchedVecEnv(hand_env(**kwargs), 3)
    obs = vec.reset()
    for i in range(3):
        np.testing.assert_array_equal(obs[PORTFOLIO_KEY][i], obs_1[PORTFOLIO_KEY])
        np.testing.assert_array_equal(obs[MARKET_KEY][i], obs_1[MARKET_KEY])
        assert_info_equal(info_1, vec.reset_infos[i], f"reset {i}")
    np.testing.assert_allclose(vec.reset_infos[0]["weights"], [0.4, 0.6], rtol=1e-12)
    actions = np.array([[0.5, -0.5], [0.0, 0.0], [-1.0, 1.0]], dtype=np.float32)
    _, rewards, _, infos = vec.step(actions)
    *_, info = env.step(actions[0])
    assert infos[0]["equity"] == info["equity"] and infos[0]["costs"] == info["costs"]


@pytest.mark.filterwarnings("ignore:.*render_mode='rgb_array'")  # SB3's make_vec_env asks for it; no render here
def test_batched_equals_dummy_vec_env_with_drivers_staked_and_initial_weights():
    kwargs = {
        "data": make_yield_market(n_steps=200, n_assets=2, seed=8, drivers=True, staked_assets=1, depeg_prob=0.03),
        "episode_length": 12,
        "random_start": True,
        "window": 3,
        "rebalance_cost_bps": 10.0,
        "initial_weights": [0.3, 0.3, 0.2],
        "depeg_tolerance": [0.005, 0.005, 0.02],
        "depeg_penalty": 2.0,
    }
    ref = sb3_make_vec_env(ENV_ID, 4, seed=3, env_kwargs=kwargs)
    vec = BatchedVecEnv(gym.make(ENV_ID, **kwargs).unwrapped, 4)
    vec.seed(3)
    expected, actual = ref.reset(), vec.reset()
    for key in (MARKET_KEY, PORTFOLIO_KEY):
        np.testing.assert_array_equal(actual[key], expected[key])
    rng = np.random.default_rng(1)
    n_dones = 0
    for step in range(40):
        actions = rng.uniform(-1, 1, size=(4, 3)).astype(np.float32)
        ref_obs, ref_rewards, ref_dones, ref_infos = ref.step(actions)
        obs, rewards, dones, infos = vec.step(actions)
        for key in (MARKET_KEY, PORTFOLIO_KEY):
            np.testing.assert_array_equal(obs[key], ref_obs[key], err_msg=f"{key} at {step}")
        np.testing.assert_array_equal(rewards, ref_rewards)
        for i in range(4):
            assert_info_equal(ref_infos[i], infos[i], f"step {step} env {i}")
        n_dones += int(dones.sum())
    for i in range(4):  # auto-resets bought the initial weights again
        assert_info_equal(ref.reset_infos[i], vec.reset_infos[i], f"last reset {i}")
        assert vec.reset_infos[i]["costs"] > 0
    assert n_dones >= 4


def test_initial_weights_set_bracket_levels():
    data = make_yield_market(n_steps=60, n_assets=2, seed=1)
    env = YieldAllocationEnv(data=data, initial_weights=[0.5, 0.5], brackets={"stop_loss": 0.05}, rebalance_cost_bps=0.0)
    _, info = env.reset()
    entry = data.prices[info["t"]]
    levels = env._kernel.levels[0]
    np.testing.assert_allclose(levels[0], entry, rtol=1e-15)
    np.testing.assert_allclose(levels[1], 0.95 * entry, rtol=1e-14)


def test_no_look_ahead_on_driver_data():
    data = make_yield_market(n_steps=120, n_assets=2, seed=5, drivers=True, staked_assets=1, depeg_prob=0.02)

    def make_env(d: MarketData) -> YieldAllocationEnv:
        return YieldAllocationEnv(data=d, window=3, initial_weights=[0.2, 0.3, 0.4], depeg_tolerance=[0.005, 0.005, 0.02])

    actions = np.random.default_rng(0).uniform(-1, 1, size=(100, 3)).astype(np.float32)
    assert_no_look_ahead(make_env, data, actions, cut_points=[30, 60, 90])


# --------------------------------------------------------------------------- single-asset baselines
def test_single_asset_baselines_by_hand():
    """hold_<asset>: all E0 in that asset at the close of row 0 (cash pays the 5 bps commission on top), its yield
    paid in shares every bar, marked at the next close."""
    prices = np.array([[1.0, 2.0], [1.1, 1.8], [1.21, 1.9]])
    apy = np.array([0.0252, 0.0504])  # 1e-4, 2e-4 per bar on 252 bars a year
    env = hand_env(prices=prices, apy=apy, peg=[1.0, 2.0], rebalance_cost_bps=5.0, periods_per_year=252)
    results = env_baselines(env, 0, 2, names=("cash", SINGLE_ASSET))
    assert list(results) == ["cash", "hold_A", "hold_B"] == ["cash", *(single_asset_name(a) for a in "AB")]
    c, rate = 5e-4, apy / 252
    for i, asset in enumerate("AB"):
        result = results[f"hold_{asset}"]
        assert result.name == f"hold_{asset}"
        shares = E0 / prices[0, i]
        cash = -c * E0
        held_1 = shares * (1 + rate[i])
        held_2 = held_1 * (1 + rate[i])
        expected = [E0, held_1 * prices[1, i] + cash, held_2 * prices[2, i] + cash]
        np.testing.assert_allclose(result.equity, expected, rtol=1e-12)
        np.testing.assert_allclose(result.costs, [c * E0, 0.0], rtol=1e-12, atol=1e-12)
        assert result.weights.shape == (2, 1) and result.asset_names == (asset,)
        # it is buy_and_hold on that asset alone, with its rate column
        one = buy_and_hold(env.data.select_assets([asset]), 0, 2, E0, env.costs, rates=env.yield_rates()[:, i : i + 1])
        np.testing.assert_array_equal(result.equity, one.equity)
    direct = single_asset_baselines(env.data, 0, 2, E0, CostModel(commission_bps=5.0), rates=env.yield_rates())
    np.testing.assert_array_equal(direct["hold_B"].equity, results["hold_B"].equity)
    with pytest.raises(ValueError, match="single_asset"):
        env_baselines(env, 0, 2, names=("hold",))


def test_held_out_baselines_add_single_asset_holds_on_yield_envs_only():
    """The train/backtest jobs' baselines (recipe.held_out_baselines) hold each yield asset alone; not elsewhere."""
    import gymnasium as gym

    from sb3_trading.evaluation import RandomPolicy, backtest
    from sb3_trading.recipe import held_out_baselines

    env = gym.make("sb3_trading/YieldAllocation-v0", random_start=False, episode_length=50)
    agent = backtest(RandomPolicy(env.action_space, seed=0), env)
    names = set(held_out_baselines(env, agent))
    assert {"buy_and_hold", "equal_weight"} | {f"hold_{a}" for a in env.unwrapped.data.asset_names} == names
    multi = gym.make("sb3_trading/MultiAsset-v0", random_start=False, episode_length=50)
    agent = backtest(RandomPolicy(multi.action_space, seed=0), multi)
    assert set(held_out_baselines(multi, agent)) == {"buy_and_hold", "equal_weight"}
