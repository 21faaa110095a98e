"""sb3_trading/LeveragedPair-v0: whole shares by hand, stop-loss, max_days, checks, no look-ahead, bad input."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from lookahead import assert_no_look_ahead
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.data import MarketData, make_leveraged_pair_market
from sb3_trading.envs import INFO_KEYS, MARKET_KEY, PORTFOLIO_KEY
from sb3_trading.envs.leveraged_pair import LEVERAGED_PAIR_INDICATORS, LeveragedPairEnv, leveraged_pair_targets
from sb3_trading.features import FeatureNormalizer, compute_features
from sb3_trading.sim import CostModel, Portfolio, fill_trades
from sb3_trading.vec import make_vec_env

ENV_ID = "sb3_trading/LeveragedPair-v0"
# SB3 recommends 1-D vectors; the (window, F) market block is our documented layout
SB3_SHAPE_WARNING = "unconventional shape"
# SB3 recommends Box[-1, 1] actions; the design fixes Box[0, 1] = the bull fraction
SB3_BOX_WARNING = "symmetric and normalized Box action space"


def hand_data(bull, bear, index=None) -> MarketData:
    """Index, bull and bear closes; row 0 only warms up the 'return' indicator."""
    index = [100.0] * len(bull) if index is None else index
    return MarketData(prices=np.column_stack([index, bull, bear]), asset_names=["index", "bull", "bear"])


def hand_env(data=None, **kwargs) -> LeveragedPairEnv:
    if data is None:
        data = hand_data(bull=[30.0, 30.0, 33.0, 31.0, 28.0], bear=[70.0, 70.0, 63.0, 66.0, 72.0])
    kwargs = {
        "initial_cash": 10_000.0,
        "commission_bps": 10.0,
        "indicators": ["return"],
        "normalizer": None,
        "window": 1,
        "max_days": None,
        "random_start": False,
        **kwargs,
    }
    return LeveragedPairEnv(data=data, **kwargs)


def test_hand_example_whole_shares_and_leftover_cash():
    env = hand_env()
    obs, info = env.reset(seed=0)
    # t=1, E_0 = 10,000, even split: 5,000 each -> floor(5000/30) = 166 bull, floor(5000/70) = 71 bear
    # notional 166*30 + 71*70 = 4,980 + 4,970 = 9,950; commission 10 bps = 9.95; leftover cash 40.05
    cash_0 = 10_000.0 - 9_950.0 - 9.95
    equity_0 = cash_0 + 166 * 30.0 + 71 * 70.0
    assert info["t"] == 1 and info["bull_fraction"] == 0.5
    np.testing.assert_array_equal(info["positions"], [166.0, 71.0])
    assert info["cash"] == pytest.approx(cash_0, abs=1e-9)
    assert info["equity"] == pytest.approx(equity_0, abs=1e-9)
    assert info["costs"] == pytest.approx(9.95, abs=1e-9)
    assert info["turnover"] == pytest.approx(9_950.0 / 10_000.0, abs=1e-12)
    assert info["portfolio_return"] == pytest.approx(equity_0 / 10_000.0 - 1.0, abs=1e-12)
    assert info["drawdown"] == pytest.approx(1.0 - equity_0 / 10_000.0, abs=1e-12)
    np.testing.assert_array_equal(obs[MARKET_KEY], np.zeros((1, 1), dtype=np.float32))  # index return at t=1
    expected = [166 * 30.0 / equity_0, 71 * 70.0 / equity_0, cash_0 / equity_0, equity_0 / 10_000.0 - 1.0, 0.0]
    np.testing.assert_allclose(obs[PORTFOLIO_KEY], np.array(expected, dtype=np.float32), rtol=1e-6)

    # a = 0.75 at E_1 = 9,990.05: 7,492.5375/30 -> 249 bull, 2,497.5125/70 -> 35 bear
    # buy 83 bull (2,490), sell 36 bear (2,520): notional 5,010, commission 5.01
    obs, reward, terminated, truncated, info = env.step(np.array([0.75], dtype=np.float32))
    cash_1 = cash_0 - 83 * 30.0 + 36 * 70.0 - 5.01
    equity_2 = cash_1 + 249 * 33.0 + 35 * 63.0
    np.testing.assert_array_equal(info["positions"], [249.0, 35.0])
    assert info["cash"] == pytest.approx(cash_1, abs=1e-9) and cash_1 == pytest.approx(65.04, abs=1e-9)
    assert info["equity"] == pytest.approx(equity_2, abs=1e-9)
    assert reward == pytest.approx(equity_2 / equity_0 - 1.0, abs=1e-9)
    assert info["portfolio_return"] == reward
    assert info["log_return"] == pytest.approx(np.log(equity_2 / equity_0), abs=1e-9)
    assert info["costs"] == pytest.approx(5.01, abs=1e-9)
    assert info["turnover"] == pytest.approx(5_010.0 / equity_0, abs=1e-12)
    np.testing.assert_allclose(info["weights"], [249 * 33.0 / equity_2, 35 * 63.0 / equity_2], atol=1e-12)
    assert info["drawdown"] == 0.0 and info["t"] == 2
    assert obs[PORTFOLIO_KEY][4] == pytest.approx(1 / 3)  # 1 decision of the 3 left to the end of the data
    assert not terminated and not truncated

    # a = 0 at E_2: sell all 249 bull at 33, floor(E_2/63) = 166 bear -> buy 131
    obs, reward, terminated, truncated, info = env.step(np.array([0.0]))
    notional = 249 * 33.0 + 131 * 63.0
    cash_2 = cash_1 + 249 * 33.0 - 131 * 63.0 - 0.001 * notional
    equity_3 = cash_2 + 166 * 66.0
    np.testing.assert_array_equal(info["positions"], [0.0, 166.0])
    assert info["cash"] == pytest.approx(cash_2, abs=1e-9)
    assert reward == pytest.approx(equity_3 / equity_2 - 1.0, abs=1e-9)
    assert info["costs"] == pytest.approx(0.001 * notional, abs=1e-9)


def test_net_mode_by_hand_cash_and_dead_zone():
    """``action_mode="net"``: ``"even"`` starts in cash, ``|a| <= dead_zone`` holds nothing, a larger action holds
    ``(|a| - d) / (1 - d)`` of equity in the bull (``a > 0``) or bear ETF (``a < 0``), the rest cash."""
    env = hand_env(action_mode="net", dead_zone=0.2)
    assert env.action_space.low[0] == -1.0 and env.action_space.high[0] == 1.0
    obs, info = env.reset(seed=0)
    assert info["net_target"] == 0.0 and "bull_fraction" not in info
    np.testing.assert_array_equal(info["positions"], [0.0, 0.0])
    assert info["cash"] == info["equity"] == 10_000.0 and info["costs"] == 0.0
    assert obs[PORTFOLIO_KEY][2] == 1.0  # all cash
    # a = 0.15 is inside the dead zone: no trade, the book stays cash over the bar
    _, reward, _, _, info = env.step(np.array([0.15], dtype=np.float32))
    assert reward == 0.0 and info["turnover"] == 0.0 and info["net_target"] == pytest.approx(0.15)
    # a = -0.6 at E = 10,000: (0.6 - 0.2) / 0.8 = 0.5 in bear -> floor(5,000 / 63) = 79 bear; commission 10 bps
    _, reward, _, _, info = env.step(np.array([-0.6]))
    cash = 10_000.0 - 79 * 63.0 * 1.001
    np.testing.assert_array_equal(info["positions"], [0.0, 79.0])
    assert info["cash"] == pytest.approx(cash, abs=1e-9)
    assert info["equity"] == pytest.approx(cash + 79 * 66.0, abs=1e-9)
    # a = 1 stays all in: sell the 79 bear at 66, buy floor(E / 31) bull, cut by the commission if unaffordable
    equity = cash + 79 * 66.0
    _, _, _, _, info = env.step(np.array([1.0]))
    bull = np.floor(equity / 31.0)
    if (bull * 31.0 + 79 * 66.0) * 0.001 > equity - bull * 31.0:
        bull -= 1
    np.testing.assert_array_equal(info["positions"], [bull, 0.0])


def test_net_mode_without_dead_zone_matches_the_split_on_one_side():
    """A net position ``a >= 0`` without dead zone is the split's bull fraction ``a`` minus its bear leg: the same
    bull shares; ``a = 1`` is the same book as the split's ``a = 1``, and ``a = -1`` as its ``a = 0``."""
    for net_action, split_action in ((1.0, 1.0), (-1.0, 0.0)):
        net = hand_env(action_mode="net", initial_split=net_action, stop_loss=None)
        split = hand_env(initial_split=split_action, stop_loss=None)
        _, net_info = net.reset(seed=0)
        _, split_info = split.reset(seed=0)
        np.testing.assert_array_equal(net_info["positions"], split_info["positions"])
        assert net_info["equity"] == split_info["equity"]
        for _ in range(3):
            _, net_reward, _, _, net_info = net.step(np.array([net_action]))
            _, split_reward, _, _, split_info = split.step(np.array([split_action]))
            assert net_reward == split_reward and net_info["cash"] == split_info["cash"]
    equity = np.array([10_000.0])
    targets = leveraged_pair_targets(
        np.array([0.5]), equity, equity, np.zeros((1, 2)), np.array([[30.0, 70.0]]), CostModel(), action_mode="net"
    )
    np.testing.assert_array_equal(targets, [[166.0, 0.0]])  # floor(5,000 / 30) bull, no bear
    targets = leveraged_pair_targets(
        np.array([-0.1]), equity, equity, np.zeros((1, 2)), np.array([[30.0, 70.0]]), CostModel(), "net", 0.2
    )
    np.testing.assert_array_equal(targets, [[0.0, 0.0]])


def test_cumulative_pnl_reward_by_hand():
    env = hand_env(reward="cumulative_pnl")
    env.reset()
    cash_0 = 10_000.0 - 9_950.0 - 9.95
    cash_1 = cash_0 - 83 * 30.0 + 36 * 70.0 - 5.01
    equity_0 = cash_0 + 166 * 30.0 + 71 * 70.0
    equity_2 = cash_1 + 249 * 33.0 + 35 * 63.0
    _, reward, _, _, info = env.step(np.array([0.75]))
    assert reward == pytest.approx(equity_2 / 10_000.0 - 1.0, abs=1e-9)  # E_{t+1} / E_0 - 1
    assert info["portfolio_return"] == pytest.approx(equity_2 / equity_0 - 1.0, abs=1e-9)  # info keeps the step return
    notional = 249 * 33.0 + 131 * 63.0
    equity_3 = cash_1 + 249 * 33.0 - 131 * 63.0 - 0.001 * notional + 166 * 66.0
    _, reward, _, _, _ = env.step(np.array([0.0]))
    assert reward == pytest.approx(equity_3 / 10_000.0 - 1.0, abs=1e-9)


def test_commission_cuts_buys_by_whole_shares():
    """Whole shares that use all the cash leave nothing for commission: the buys are cut, cash stays >= 0."""
    data = hand_data(bull=[50.0, 50.0, 50.0, 50.0], bear=[50.0, 50.0, 50.0, 50.0])
    env = hand_env(data=data, commission_bps=100.0)
    _, info = env.reset()
    # floor(5000/50) = 100 each would cost 10,000 + 100 commission: shortfall 100, each bought share frees 50.5
    # cut k_i = ceil(100 * 100 / (200 * 50.5)) = 1 share each -> 99, 99; commission 99; cash 1
    np.testing.assert_array_equal(info["positions"], [99.0, 99.0])
    assert info["cash"] == pytest.approx(1.0, abs=1e-9)
    assert info["costs"] == pytest.approx(99.0, abs=1e-9)
    # a = 1 at E = 9,901: floor(9901/50) = 198 bull (buy 99, sell 99 bear): cash 1 + 4,950 - 4,950 - 99 = -98
    # shortfall 98 over one buy of 99 shares at 50.5: cut ceil(98 * 99 / (99 * 50.5)) = 2 -> 196 bull
    _, _, _, _, info = env.step(np.array([1.0]))
    np.testing.assert_array_equal(info["positions"], [196.0, 0.0])
    assert info["cash"] == pytest.approx(1.0 - 97 * 50.0 + 99 * 50.0 - 0.01 * 196 * 50.0, abs=1e-9)
    assert info["cash"] == pytest.approx(3.0, abs=1e-9)
    assert info["equity"] == pytest.approx(3.0 + 196 * 50.0, abs=1e-9)


def test_targets_are_whole_affordable_and_never_flip_buys():
    rng = np.random.default_rng(0)
    batch = 2_000
    prices = rng.uniform(1.0, 500.0, size=(batch, 2))
    positions = np.floor(rng.uniform(0.0, 300.0, size=(batch, 2)))
    cash = rng.uniform(0.0, 2_000.0, size=batch) * rng.integers(0, 2, size=batch)
    equity = cash + (positions * prices).sum(axis=1)
    fractions = rng.uniform(0.0, 1.0, size=batch)
    fractions[:100] = 1.0
    fractions[100:200] = 0.0
    for costs in (CostModel(10.0, 0.0), CostModel(250.0, 30.0)):
        target = leveraged_pair_targets(fractions, equity, cash, positions, prices, costs)
        assert np.array_equal(target, np.round(target)) and (target >= 0).all()
        traded = target - positions
        fills = fill_trades(traded, prices, costs)
        cash_after = cash - np.vecdot(traded, prices) - fills.costs
        assert (cash_after >= -1e-9 * equity).all()
        uncut = np.floor(equity[:, None] * np.column_stack([fractions, 1 - fractions]) / prices)
        assert (target <= uncut).all()
        assert (target >= np.minimum(uncut, positions)).all()  # a cut buy never becomes a sell
        assert (target[uncut < positions] == uncut[uncut < positions]).all()  # sells are never changed


def test_stop_loss_terminates_on_the_step_it_is_crossed():
    # all-in bull from t=1 (100 shares at 100, no commission): equity 9,800, 9,700, 9,400 (-6 %), ...
    data = hand_data(bull=[100.0, 100.0, 98.0, 97.0, 94.0, 90.0, 91.0], bear=[100.0] * 7)
    env = hand_env(data=data, commission_bps=0.0)
    env.reset()
    flags = []
    for _ in range(3):
        _, _, terminated, truncated, info = env.step(np.array([1.0]))
        flags.append((terminated, truncated))
    assert flags == [(False, False), (False, False), (True, False)]
    assert info["t"] == 4 and info["equity"] == pytest.approx(9_400.0)

    # exactly at the stop level (equity = 0.95 E_0) also terminates
    data = hand_data(bull=[100.0, 100.0, 98.0, 95.0, 99.0], bear=[100.0] * 5)
    env = hand_env(data=data, commission_bps=0.0)
    env.reset()
    assert env.step(np.array([1.0]))[2] is False
    _, _, terminated, truncated, info = env.step(np.array([1.0]))
    assert terminated and not truncated and info["equity"] == 9_500.0

    # a looser stop (-7 %) waits for 9,000; no stop runs to the end of the data
    data = hand_data(bull=[100.0, 100.0, 98.0, 97.0, 94.0, 90.0, 91.0], bear=[100.0] * 7)
    for stop_loss, expected in ((-0.07, [False, False, False, True]), (None, [False] * 5)):
        env = hand_env(data=data, commission_bps=0.0, stop_loss=stop_loss)
        env.reset()
        seen, done = [], False
        while not done:
            _, _, terminated, truncated, _ = env.step(np.array([1.0]))
            seen.append(terminated)
            done = terminated or truncated
        assert seen == expected


def test_max_days_truncates():
    env = gym.make(ENV_ID, max_days=5, stop_loss=None)
    _, info = env.reset(seed=1)
    start = info["t"]
    for day in range(1, 6):
        obs, _, terminated, truncated, info = env.step(np.array([0.5]))
        assert not terminated and truncated == (day == 5)
        assert obs[PORTFOLIO_KEY][4] == pytest.approx(day / 5)
    assert info["t"] == start + 5

    env = gym.make(ENV_ID, stop_loss=None)  # default max_days = 30
    env.reset(seed=2)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, _ = env.step(np.array([0.5]))
        assert not terminated
        steps += 1
    assert steps == 30


def test_end_of_data_truncates():
    data = make_leveraged_pair_market(n_steps=80, seed=1)
    env = LeveragedPairEnv(data=data, max_days=None, stop_loss=None, random_start=False)
    _, info = env.reset()
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, info = env.step(np.array([0.5]))
        assert not terminated
        steps += 1
    assert info["t"] == 79 and steps == 79 - env.first_t


def test_random_initial_split_reproducible_by_seed():
    env = gym.make(ENV_ID, initial_split="random")

    def split(seed):
        _, info = env.reset(seed=seed)
        return info["bull_fraction"], info["positions"].tolist(), info["t"]

    first = split(3)
    assert split(3) == first
    assert split(4)[0] != first[0]
    fractions = {split(seed)[0] for seed in range(20)}
    assert len(fractions) == 20 and all(0.0 <= f <= 1.0 for f in fractions)
    _, info = env.reset(seed=5)
    prices = env.unwrapped._prices[info["t"]]
    # whole shares bought from E_0 = initial_cash, less a few shares cut to pay the commission
    target = env.unwrapped.initial_cash * np.array([info["bull_fraction"], 1 - info["bull_fraction"]])
    held = info["positions"] * prices
    assert (held <= target).all() and (target - held).sum() < 2 * prices.sum() + 2 * info["costs"]
    assert 0.0 <= info["cash"] < 2 * prices.sum() + 2 * info["costs"]

    even = gym.make(ENV_ID)
    assert {even.reset(seed=s)[1]["bull_fraction"] for s in range(5)} == {0.5}
    assert hand_env(initial_split=1.0).reset()[1]["positions"].tolist() == [333.0, 0.0]


@pytest.mark.parametrize("window", [1, 10])
def test_env_checkers(window):
    env = gym.make(ENV_ID, window=window, max_days=20, initial_split="random")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)
    unexpected = [str(w.message) for w in caught if SB3_SHAPE_WARNING not in str(w.message)]
    unexpected = [message for message in unexpected if SB3_BOX_WARNING not in message]
    assert unexpected == []
    n_features = len(env.unwrapped.feature_names)
    assert n_features == 6 + env.unwrapped.data.n_features == 7
    assert env.observation_space[MARKET_KEY].shape == (window, n_features)
    assert env.observation_space[PORTFOLIO_KEY].shape == (5,)


def test_make_with_no_arguments_uses_index_features():
    env = gym.make("sb3_trading:" + ENV_ID)
    obs, info = env.reset(seed=3)
    unwrapped = env.unwrapped
    assert unwrapped.data.asset_names == ("index", "bull", "bear")
    assert unwrapped.window == 10 and unwrapped.max_days == 30 and unwrapped.random_start
    assert unwrapped.feature_names == (
        "log_return[index]",
        "volatility[index]",
        "rsi[index]",
        "macd[index]",
        "macd_signal[index]",
        "macd_hist[index]",
        "signal[index]",
    )
    assert env.observation_space.contains(obs)
    assert info["positions"].shape == info["weights"].shape == (2,)


def test_info_keys_every_step_and_reset():
    env = gym.make(ENV_ID, max_days=5, stop_loss=None)
    _, info = env.reset(seed=0)
    for _ in range(5):
        assert set(INFO_KEYS) | {"timestamp", "bull_fraction"} <= set(info)
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
    assert set(INFO_KEYS) <= set(info)
    assert truncated and not terminated


def test_seeded_resets_reproduce():
    def rollout(seed):
        env = gym.make(ENV_ID, initial_split="random")
        obs, info = env.reset(seed=seed)
        env.action_space.seed(seed)
        rewards, observations, done = [], [obs], False
        while not done:
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            rewards.append(reward)
            observations.append(obs)
            done = terminated or truncated
        return rewards, observations

    rewards, observations = rollout(7)
    again_rewards, again_observations = rollout(7)
    assert again_rewards == rewards
    for a, b in zip(observations, again_observations, strict=True):
        np.testing.assert_array_equal(a[MARKET_KEY], b[MARKET_KEY])
        np.testing.assert_array_equal(a[PORTFOLIO_KEY], b[PORTFOLIO_KEY])
    assert rollout(8)[0] != rewards


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"bull_asset": "tqqq"}, ValueError, "bull_asset='tqqq'"),
        ({"index_asset": "spx"}, ValueError, "index_asset"),
        ({"bear_asset": "bull"}, ValueError, "three different"),
        ({"max_days": 0}, ValueError, "max_days"),
        ({"max_days": 4}, ValueError, "max_days"),
        ({"max_days": True}, ValueError, "max_days"),
        ({"stop_loss": 0.05}, ValueError, "stop_loss"),
        ({"stop_loss": -1.0}, ValueError, "stop_loss"),
        ({"reward": "pnl"}, ValueError, "reward"),
        ({"initial_split": "half"}, ValueError, "initial_split"),
        ({"initial_split": 1.5}, ValueError, "initial_split"),
        ({"initial_split": -0.5}, ValueError, r"initial_split.*\[0, 1\]"),
        ({"initial_split": -1.5, "action_mode": "net"}, ValueError, r"initial_split.*\[-1, 1\]"),
        ({"action_mode": "short"}, ValueError, "action_mode"),
        ({"dead_zone": 0.2}, ValueError, "dead_zone=0.2 needs action_mode='net'"),
        ({"dead_zone": 1.0, "action_mode": "net"}, ValueError, "dead_zone"),
        ({"initial_cash": -1.0}, ValueError, "initial_cash"),
        ({"commission_bps": -1.0}, ValueError, "commission_bps"),
        ({"window": 5}, ValueError, "window=5"),
        ({"window": 0}, ValueError, "window"),
        ({"normalizer": "zscore"}, ValueError, "normalizer"),
        ({"indicators": ["rsii"]}, ValueError, "rsi"),
        ({"render_mode": "human"}, (TypeError, ValueError), "render_mode"),  # base raises TypeError (SB3 make_vec_env)
        ({"data": np.ones((10, 3))}, TypeError, "MarketData"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        hand_env(**kwargs)


def test_ppo_smoke():
    from stable_baselines3 import PPO

    env = gym.make(ENV_ID, max_days=20)
    model = PPO("MultiInputPolicy", env, n_steps=64, batch_size=64, n_epochs=1, policy_kwargs={"net_arch": [16]}, seed=0)
    model.learn(256)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert action.shape == (1,) and 0.0 <= float(action[0]) <= 1.0


@pytest.mark.parametrize("window", [1, 10])
def test_no_look_ahead(window):
    """Perturbing every data value after t leaves every observation up to t unchanged."""
    data = make_leveraged_pair_market(n_steps=160, seed=5)
    # normaliser fitted on a training prefix of the index features, as an evaluation env would receive it
    train = compute_features(data.slice(0, 100).select_assets(["index"]), LEVERAGED_PAIR_INDICATORS)
    normalizer = FeatureNormalizer.fit(train.values[train.warmup :])
    actions = np.random.default_rng(0).uniform(0, 1, size=(200, 1))
    assert_no_look_ahead(
        lambda market: LeveragedPairEnv(
            data=market, window=window, normalizer=normalizer, max_days=None, stop_loss=None, random_start=False
        ),
        data,
        actions,
        cut_points=(45, 77, 120, 150),
    )


def test_targets_use_the_cores_affordability_rule():
    """leveraged_pair_targets is the core's Portfolio.affordable(lot_size=1) applied to the whole-share targets."""
    rng = np.random.default_rng(1)
    batch = 500
    prices = rng.uniform(1.0, 300.0, size=(batch, 2))
    costs = CostModel(300.0, 50.0)  # large frictions: most buys need a cut
    book = Portfolio(batch, 2, costs)
    book.reset(rng.uniform(1.0, 500.0, size=batch), positions=np.floor(rng.uniform(0, 100, (batch, 2))), prices=prices)
    equity = book.equity(prices)
    fractions = rng.uniform(0.0, 1.0, size=batch)
    whole = np.trunc(equity[:, None] * np.column_stack([fractions, 1 - fractions]) / prices)
    expected = book.affordable(whole, prices, lot_size=1.0)
    assert (expected != whole).any()  # some rows were cut
    target = leveraged_pair_targets(fractions, equity, book.cash, book.positions, prices, costs)
    np.testing.assert_array_equal(target, expected)


def test_batched_env_equals_single_envs_step_for_step():
    """BatchedVecEnv (8 accounts, one compiled kernel) equals a DummyVecEnv of single envs under random actions."""
    kwargs = {"max_days": 15, "initial_split": "random", "commission_bps": 150.0, "slippage_bps": 40.0, "stop_loss": -0.04}
    n_envs = 8
    ref = DummyVecEnv([lambda: Monitor(gym.make(ENV_ID, **kwargs))] * n_envs)
    ref.seed(5)
    vec = make_vec_env(ENV_ID, n_envs, seed=5, env_kwargs=kwargs)
    expected, actual = ref.reset(), vec.reset()
    for key in (MARKET_KEY, PORTFOLIO_KEY):
        np.testing.assert_array_equal(actual[key], expected[key])
    rng = np.random.default_rng(0)
    n_dones = 0
    for step in range(50):
        actions = rng.uniform(-0.2, 1.2, size=(n_envs, 1)).astype(np.float32)  # some clipped
        ref_obs, ref_rewards, ref_dones, ref_infos = ref.step(actions)
        obs, rewards, dones, infos = vec.step(actions)
        for key in (MARKET_KEY, PORTFOLIO_KEY):
            np.testing.assert_array_equal(obs[key], ref_obs[key], err_msg=f"{key} at {step}")
        np.testing.assert_array_equal(rewards, ref_rewards, err_msg=f"rewards at {step}")
        np.testing.assert_array_equal(dones, ref_dones, err_msg=f"dones at {step}")
        for i in range(n_envs):
            for key in ("equity", "cash", "positions", "costs", "turnover", "bull_fraction", "t"):
                np.testing.assert_array_equal(infos[i][key], ref_infos[i][key], err_msg=f"{key} at {step} env {i}")
            assert infos[i]["cash"] >= 0.0  # the affordability cut keeps cash non-negative despite 190 bps of frictions
        n_dones += int(dones.sum())
    assert n_dones >= n_envs  # episodes ended and restarted
