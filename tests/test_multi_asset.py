"""sb3_trading/MultiAsset-v0: exact semantics, checks, no look-ahead, bad input."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from lookahead import assert_no_look_ahead
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.data import MarketData, make_regime_market
from sb3_trading.envs import INFO_KEYS, MARKET_KEY, PORTFOLIO_KEY, MultiAssetEnv, check_env_id
from sb3_trading.features import FeatureNormalizer, compute_features

ENV_ID = "sb3_trading/MultiAsset-v0"
# SB3 recommends 1-D vectors; the (window, F) market block is our documented layout
SB3_SHAPE_WARNING = "unconventional shape"


def hand_data(**extra) -> MarketData:
    """Two assets, four bars; row 0 only warms up the 'return' indicator."""
    prices = np.array([[100.0, 50.0], [100.0, 50.0], [110.0, 45.0], [121.0, 40.0]])
    return MarketData(prices=prices, asset_names=["A", "B"], **extra)


def hand_env(**kwargs) -> MultiAssetEnv:
    kwargs = {"initial_cash": 10_000.0, "commission_bps": 10.0, "indicators": ["return"], "normalizer": None, **kwargs}
    return MultiAssetEnv(data=kwargs.pop("data", hand_data()), **kwargs)


def test_hand_example_close_execution():
    env = hand_env()
    obs, info = env.reset(seed=0)
    assert info["t"] == 1 and info["equity"] == 10_000.0
    np.testing.assert_array_equal(obs[PORTFOLIO_KEY], np.array([0.0, 0.0, 1.0], dtype=np.float32))

    # E_1 = 10,000, N = 2 -> base scale 5,000; a = [0.5, -1] -> V = [2,500, -5,000]
    # shares [25, -100] bought at [100, 50]; traded notional 7,500; cost 10 bps = 7.5
    obs, reward, terminated, truncated, info = env.step(np.array([0.5, -1.0], dtype=np.float32))
    cash_1 = 10_000.0 - (25 * 100.0 - 100 * 50.0) - 7.5
    equity_2 = cash_1 + 25 * 110.0 - 100 * 45.0
    assert info["cash"] == pytest.approx(cash_1, abs=1e-9)
    np.testing.assert_allclose(info["positions"], [25.0, -100.0], rtol=0, atol=1e-9)
    assert info["equity"] == pytest.approx(equity_2, abs=1e-9)
    assert reward == pytest.approx(equity_2 / 10_000.0 - 1.0, abs=1e-9)
    assert info["portfolio_return"] == reward
    assert info["log_return"] == pytest.approx(np.log(equity_2 / 10_000.0), abs=1e-9)
    assert info["costs"] == pytest.approx(7.5, abs=1e-9)
    assert info["turnover"] == pytest.approx(7_500.0 / 10_000.0, abs=1e-12)
    np.testing.assert_allclose(info["weights"], [25 * 110.0 / equity_2, -100 * 45.0 / equity_2], atol=1e-9)
    np.testing.assert_allclose(
        obs[PORTFOLIO_KEY], np.array([25 * 110.0 / equity_2, -100 * 45.0 / equity_2, cash_1 / equity_2], dtype=np.float32)
    )
    assert info["drawdown"] == 0.0 and info["t"] == 2
    assert not terminated and not truncated

    # a = [1, 0] at E_2: target 48.8295... shares of A at 110, close the short of B at 45
    obs, reward, terminated, truncated, info = env.step(np.array([1.0, 0.0]))
    shares_a = (equity_2 / 2) / 110.0
    traded_notional = (shares_a - 25.0) * 110.0 + 100 * 45.0
    cash_2 = cash_1 - ((shares_a - 25.0) * 110.0 + 100 * 45.0) - 0.001 * traded_notional
    equity_3 = cash_2 + shares_a * 121.0
    assert info["equity"] == pytest.approx(equity_3, abs=1e-9)
    assert reward == pytest.approx(equity_3 / equity_2 - 1.0, abs=1e-9)
    assert info["costs"] == pytest.approx(0.001 * traded_notional, abs=1e-9)
    assert info["turnover"] == pytest.approx(traded_notional / equity_2, abs=1e-12)
    assert truncated and not terminated  # the last bar of the data


def test_rebalance_band_keeps_the_book_until_a_target_leaves_it():
    """Threshold rebalancing: targets within the band of the weights held trade nothing (the book drifts with
    prices); a target past it trades all the way, as without a band."""
    env = hand_env(rebalance_band=0.2)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([0.5, -1.0]))  # from cash: gaps 0.5 and 1 (action units), past the band
    np.testing.assert_allclose(info["positions"], [25.0, -100.0], atol=1e-9)
    cash_1, equity_2 = 12_492.5, 10_742.5
    assert info["equity"] == pytest.approx(equity_2, abs=1e-9)
    # exposures held N q S / E = 2 [2,750, -4,500] / 10,742.5 = [0.512, -0.838]; actions [0.6, -0.9]: gaps 0.088, 0.062
    _, reward, _, truncated, info = env.step(np.array([0.6, -0.9]))
    assert info["costs"] == 0.0 and info["turnover"] == 0.0
    np.testing.assert_allclose(info["positions"], [25.0, -100.0], atol=1e-9)
    assert info["cash"] == pytest.approx(cash_1, abs=1e-9)
    assert info["equity"] == pytest.approx(cash_1 + 25 * 121.0 - 100 * 40.0, abs=1e-9)
    assert reward == pytest.approx(info["equity"] / equity_2 - 1.0, abs=1e-12) and truncated

    # one gap past the band (A: 1 - 0.512): both assets trade to their targets, as with no band
    banded, plain = hand_env(rebalance_band=0.2), hand_env()
    for env in (banded, plain):
        env.reset(seed=0)
        env.step(np.array([0.5, -1.0]))
    infos = [env.step(np.array([1.0, -0.9]))[4] for env in (banded, plain)]
    for key in ("positions", "cash", "costs", "equity"):
        np.testing.assert_array_equal(infos[0][key], infos[1][key])
    assert infos[0]["costs"] > 0.0


def test_dead_zone_holds_nothing_near_zero_and_shrinks_the_rest():
    """``dead_zone=d``: ``|a| <= d`` targets no shares; a larger action ``sign(a) (|a| - d) / (1 - d)`` of ``E_t / N``."""
    env = hand_env(dead_zone=0.2)
    env.reset(seed=0)
    # E_1 = 10,000, N = 2 -> 5,000 per asset; a = [0.6, -0.2]: A (0.6 - 0.2) / 0.8 = 0.5 -> 2,500 = 25 shares, B none
    _, reward, _, _, info = env.step(np.array([0.6, -0.2]))
    np.testing.assert_allclose(info["positions"], [25.0, 0.0], atol=1e-9)
    assert info["costs"] == pytest.approx(0.001 * 2_500.0, abs=1e-9)
    equity_2 = 10_000.0 - 2_500.0 - 2.5 + 25 * 110.0
    assert info["equity"] == pytest.approx(equity_2, abs=1e-9)
    assert reward == pytest.approx(equity_2 / 10_000.0 - 1.0, abs=1e-12)
    # inside the zone on both assets: the whole book is closed; +-1 stay the full size
    _, _, _, _, info = env.step(np.array([0.15, -0.05]))
    np.testing.assert_allclose(info["positions"], [0.0, 0.0], atol=1e-9)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1.0, -1.0]))
    np.testing.assert_allclose(info["positions"], [50.0, -100.0], atol=1e-9)


def test_hand_example_next_open_with_slippage():
    opens = np.array([[100.0, 50.0], [100.0, 50.0], [105.0, 48.0], [120.0, 41.0]])
    env = hand_env(data=hand_data(open=opens), execution="next_open", slippage_bps=5.0)
    env.reset()
    _, reward, _, _, info = env.step(np.array([0.5, -1.0]))
    # targets from the close of t=1 ([25, -100] shares), filled at the open of t=2 with 5 bps slippage
    fill_a, fill_b = 105.0 * 1.0005, 48.0 * 0.9995
    cash = 10_000.0 - 25 * fill_a - 0.001 * 25 * fill_a + 100 * fill_b - 0.001 * 100 * fill_b
    equity = cash + 25 * 110.0 - 100 * 45.0
    assert info["equity"] == pytest.approx(equity, abs=1e-9)
    assert reward == pytest.approx(equity / 10_000.0 - 1.0, abs=1e-9)
    slippage = 25 * 105.0 * 0.0005 + 100 * 48.0 * 0.0005
    assert info["costs"] == pytest.approx(slippage + 0.001 * 25 * fill_a + 0.001 * 100 * fill_b, abs=1e-9)


def test_ruin_terminates():
    prices = np.array([[100.0], [100.0], [1_000.0], [1_000.0]])
    env = hand_env(data=MarketData(prices=prices), commission_bps=0.0)
    env.reset()
    _, reward, terminated, truncated, info = env.step(np.array([-1.0]))
    assert terminated and not truncated
    assert info["equity"] == pytest.approx(10_000.0 - 100 * 900.0)
    assert reward == pytest.approx(-9.0)
    assert np.isfinite(info["log_return"])


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"window": 4}, ValueError, "window=4"),
        ({"window": 0}, ValueError, "window"),
        ({"execution": "open"}, ValueError, "execution"),
        ({"execution": "next_open"}, ValueError, "data.open"),
        ({"episode_length": 5}, ValueError, "episode_length"),
        ({"initial_cash": -1.0}, ValueError, "initial_cash"),
        ({"normalizer": "zscore"}, ValueError, "normalizer"),
        ({"indicators": ["rsii"]}, ValueError, "rsi"),
        ({"render_mode": "human"}, TypeError, "render_mode"),
        ({"data": np.ones((10, 2))}, TypeError, "MarketData"),
        ({"rebalance_band": 2.0}, ValueError, "rebalance_band"),
        ({"rebalance_band": -0.1}, ValueError, "rebalance_band"),
        ({"dead_zone": 1.0}, ValueError, "dead_zone"),
        ({"dead_zone": -0.1}, ValueError, "dead_zone"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        hand_env(**kwargs)


def test_window_longer_than_data_after_warmup():
    data = make_regime_market(n_steps=60, n_assets=2, seed=0)
    with pytest.raises(ValueError, match="warm-up"):
        MultiAssetEnv(data=data, window=30)  # the default indicators warm up for 33 bars


def test_unknown_env_id_suggests():
    with pytest.raises(ValueError, match="MultiAsset-v0"):
        check_env_id("sb3_trading/MultiAset-v0")
    assert check_env_id(ENV_ID) == ENV_ID


@pytest.mark.parametrize("window", [1, 8])
def test_env_checkers(window):
    env = gym.make(ENV_ID, window=window, episode_length=50, random_start=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)
    unexpected = [str(w.message) for w in caught if SB3_SHAPE_WARNING not in str(w.message)]
    assert unexpected == []
    assert env.observation_space[MARKET_KEY].shape == (window, env.unwrapped.feature_names.__len__())


def test_make_variants_and_default_synthetic_data():
    env = gym.make("sb3_trading:" + ENV_ID)
    obs, info = env.reset(seed=3)
    assert set(obs) == {MARKET_KEY, PORTFOLIO_KEY}
    assert env.unwrapped.data.n_assets == 5
    assert env.observation_space.contains(obs)
    flat = gym.wrappers.FlattenObservation(env)
    flat_obs, _ = flat.reset(seed=3)
    np.testing.assert_array_equal(flat_obs, np.concatenate([obs[MARKET_KEY].ravel(), obs[PORTFOLIO_KEY]]))


def test_info_keys_every_step_and_reset():
    env = gym.make(ENV_ID, episode_length=5)
    _, info = env.reset(seed=0)
    for _ in range(5):
        assert set(INFO_KEYS) | {"timestamp"} <= set(info)
        assert info["positions"].shape == info["weights"].shape == (5,)
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
    assert truncated and not terminated


def test_seeded_resets_reproduce_and_episode_length():
    def rollout(seed):
        env = gym.make(ENV_ID, episode_length=20, random_start=True)
        obs, info = env.reset(seed=seed)
        env.action_space.seed(seed)
        rewards, starts = [], [info["t"]]
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            rewards.append(reward)
            done = terminated or truncated
        return starts, rewards, info["t"]

    starts, rewards, end = rollout(7)
    assert rollout(7) == (starts, rewards, end)
    assert len(rewards) == 20 and end == starts[0] + 20
    assert rollout(8)[0] != starts


def test_end_of_data_truncates():
    env = gym.make(ENV_ID, data=make_regime_market(n_steps=60, n_assets=2, seed=1))
    _, info = env.reset()
    steps = 0
    truncated = False
    while not truncated:
        _, _, terminated, truncated, info = env.step(np.zeros(2))
        assert not terminated
        steps += 1
    assert info["t"] == 59 and steps == 59 - env.unwrapped.first_t


@pytest.mark.parametrize("execution", ["close", "next_open"])
@pytest.mark.parametrize("window", [1, 6])
def test_no_look_ahead(execution, window):
    """Perturbing every price after t leaves every observation up to t unchanged."""
    data = make_regime_market(n_steps=160, n_assets=3, seed=5)
    # normaliser fitted on a training prefix, as an evaluation env would receive it
    normalizer = FeatureNormalizer.fit(compute_features(data.slice(0, 100)).values[40:])
    actions = np.random.default_rng(0).uniform(-1, 1, size=(200, 3))
    assert_no_look_ahead(
        lambda market: MultiAssetEnv(data=market, window=window, execution=execution, normalizer=normalizer),
        data,
        actions,
        cut_points=(40, 77, 120, 150),
    )
