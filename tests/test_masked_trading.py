"""sb3_trading/MaskedTrading-v0: action table, mask rules, no-op invalid actions, MaskablePPO, no look-ahead."""

import logging
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from lookahead import assert_no_look_ahead
from sb3_contrib import MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks, is_masking_supported
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_checker import check_env as sb3_check_env
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.data import MarketData, make_leveraged_pair_market
from sb3_trading.envs import INFO_KEYS, MARKET_KEY, PORTFOLIO_KEY
from sb3_trading.envs.masked_trading import MASKED_INDICATORS, PORTFOLIO_FIELDS, MaskedTradingEnv
from sb3_trading.evaluation.backtest import RandomPolicy, backtest
from sb3_trading.features import FeatureNormalizer, compute_features
from sb3_trading.sim import Portfolio
from sb3_trading.vec import make_vec_env as batched_make_vec_env

ENV_ID = "sb3_trading/MaskedTrading-v0"
SB3_SHAPE_WARNING = "unconventional shape"
E0 = 1_000_000.0
C = 0.001  # the default 10 bps commission
HOLD, BULL_10, BULL_25, BULL_50, BEAR_10, BEAR_25, BEAR_50, FLATTEN = range(8)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny networks train faster (and reproducibly) on one thread; restore the setting afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def hand_data() -> MarketData:
    """Index, bull and bear over six bars (row 0 only warms up the 'return' indicator)."""
    prices = np.array(
        [
            [100.0, 50.0, 40.0],
            [100.0, 50.0, 40.0],
            [101.0, 51.5, 38.8],
            [99.0, 48.5, 41.2],
            [100.0, 50.0, 40.0],
            [102.0, 53.0, 37.6],
        ]
    )
    return MarketData(prices=prices, asset_names=["index", "bull", "bear"])


def hand_env(**kwargs) -> MaskedTradingEnv:
    kwargs = {
        "initial_cash": E0,
        "indicators": ["return"],
        "normalizer": None,
        "window": 1,
        "episode_length": None,
        "random_start": False,
        **kwargs,
    }
    return MaskedTradingEnv(data=kwargs.pop("data", hand_data()), **kwargs)


def set_book(env: MaskedTradingEnv, bull: float, bear: float, cash: float, peak: float | None = None) -> None:
    """Put the book at bar ``env._t`` into a state with the given values (currency) of bull, bear and cash."""
    prices = env._prices[env._t][None, :]
    env._book.reset(cash, positions=np.array([[bull, bear]]) / prices, prices=prices)
    if peak is not None:
        env._book.peak_equity[:] = peak


def mask(*legal: int, n: int = 8) -> np.ndarray:
    out = np.zeros(n, dtype=bool)
    out[list(legal)] = True
    return out


# ------------------------------------------------------------------------------------------- semantics
def test_action_table():
    env = hand_env()
    assert env.action_space == gym.spaces.Discrete(8)
    assert env.action_labels == (
        "hold",
        "buy_bull_0.1",
        "buy_bull_0.25",
        "buy_bull_0.5",
        "buy_bear_0.1",
        "buy_bear_0.25",
        "buy_bear_0.5",
        "flatten",
    )
    env = hand_env(sizes=np.array([0.2, 0.4]))
    assert env.action_space.n == 6 and env.flatten_action == 5
    assert env.action_labels[1:5] == ("buy_bull_0.2", "buy_bull_0.4", "buy_bear_0.2", "buy_bear_0.4")
    assert len(PORTFOLIO_FIELDS) == env.observation_space[PORTFOLIO_KEY].shape[0] == 5


def test_hand_example_buy_switch_flatten():
    env = hand_env()
    obs, info = env.reset()
    assert info["t"] == 1 and info["equity"] == E0 and not info["invalid_action"] and info["n_invalid_actions"] == 0
    np.testing.assert_array_equal(obs[PORTFOLIO_KEY], np.array([0, 0, 1, 0, 0], dtype=np.float32))
    np.testing.assert_array_equal(info["positions"], [0.0, 0.0])

    # t=1: buy bull for 0.5 * E_1 = 500,000 at 50 -> 10,000 shares, commission 500
    obs, reward, terminated, truncated, info = env.step(BULL_50)
    cash_1 = E0 - 500_000.0 - 500.0
    equity_2 = cash_1 + 10_000 * 51.5
    np.testing.assert_allclose(info["positions"], [10_000.0, 0.0], rtol=1e-12)
    assert info["cash"] == pytest.approx(cash_1, abs=1e-6)
    assert info["equity"] == pytest.approx(equity_2, abs=1e-6)
    assert reward == pytest.approx(equity_2 / E0 - 1.0, abs=1e-12) and info["portfolio_return"] == reward
    assert info["costs"] == pytest.approx(500.0, abs=1e-9)
    assert info["turnover"] == pytest.approx(0.5, abs=1e-12)
    np.testing.assert_allclose(info["weights"], [515_000.0 / equity_2, 0.0], rtol=1e-12)
    expected = [515_000.0 / equity_2, 0.0, cash_1 / equity_2, 0.0, equity_2 / E0 - 1.0]
    np.testing.assert_allclose(obs[PORTFOLIO_KEY], np.array(expected, dtype=np.float32), rtol=1e-6)
    assert not terminated and not truncated and not info["invalid_action"]

    # t=2: buy bear 0.25 switches sides: sell all bull at 51.5, buy 0.25 * E_2 of bear at 38.8
    obs, reward, _, _, info = env.step(BEAR_25)
    bear_shares = 0.25 * equity_2 / 38.8
    traded = 10_000 * 51.5 + 0.25 * equity_2
    cash_2 = cash_1 + 10_000 * 51.5 - 0.25 * equity_2 - C * traded
    equity_3 = cash_2 + bear_shares * 41.2
    np.testing.assert_allclose(info["positions"], [0.0, bear_shares], rtol=1e-12)
    assert info["costs"] == pytest.approx(C * traded, abs=1e-6)
    assert info["turnover"] == pytest.approx(traded / equity_2, abs=1e-12)
    assert info["equity"] == pytest.approx(equity_3, abs=1e-6)
    assert reward == pytest.approx(equity_3 / equity_2 - 1.0, abs=1e-12)
    assert info["drawdown"] == pytest.approx(1.0 - equity_3 / max(E0, equity_2, equity_3), abs=1e-12)

    # t=3: flatten sells the bear at 41.2
    obs, reward, _, _, info = env.step(FLATTEN)
    cash_3 = cash_2 + bear_shares * 41.2 * (1 - C)
    np.testing.assert_array_equal(info["positions"], [0.0, 0.0])
    assert info["equity"] == pytest.approx(cash_3, abs=1e-6) and info["cash"] == info["equity"]
    assert reward == pytest.approx(cash_3 / equity_3 - 1.0, abs=1e-12)
    np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 2, 3, 4, 5, 6))  # flat: flatten masked


def test_switch_sides_false_holds_both():
    env = hand_env(switch_sides=False)
    env.reset()
    env.step(BULL_25)
    _, _, _, _, info = env.step(BEAR_10)
    assert info["positions"][0] == pytest.approx(0.25 * E0 / 50.0) and info["positions"][1] > 0


def test_slippage_in_fills_and_cash_rule():
    with pytest.warns(UserWarning, match=r"sizes \[0.998\] can never be bought"):
        env = hand_env(slippage_bps=20.0, sizes=(0.5, 0.998), max_concentration=1.0)
    env.reset()
    # buying f of E costs f E (1 + s)(1 + c): 0.998 * 1.002 * 1.001 > 1 -> masked, 0.5 legal
    np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 3, n=6))
    _, _, _, _, info = env.step(1)
    assert info["cash"] == pytest.approx(E0 - 0.5 * E0 * 1.002 * 1.001, abs=1e-6)
    assert info["costs"] == pytest.approx(0.5 * E0 * (0.002 + 0.001 * 1.002), abs=1e-6)


# ------------------------------------------------------------------------------------------- mask rules
def test_mask_flat_and_holding():
    env = hand_env()
    env.reset()
    np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 2, 3, 4, 5, 6))
    set_book(env, 100_000.0, 0.0, 900_000.0)
    np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 2, 3, 4, 5, 6, 7))
    assert env.action_masks().dtype == bool and env.action_masks().shape == (8,)


def test_mask_cash_rule():
    limits = {"max_position": 2.0, "max_concentration": 2.0}
    env = hand_env(switch_sides=False, **limits)
    env.reset()
    # 30 % cash: 0.25 E costs 0.25025 E (legal), 0.5 E is not affordable on either side
    set_book(env, 700_000.0, 0.0, 300_000.0)
    np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 2, 4, 5, 7))
    set_book(env, 400_000.0, 500_000.0, 100_000.0)  # 10 %: 0.1 E costs 0.1001 E
    np.testing.assert_array_equal(env.action_masks(), mask(0, 7))
    # with switching, selling the other side pays for the buy: bear buys use the bull proceeds
    env = hand_env(switch_sides=True, **limits)
    env.reset()
    set_book(env, 700_000.0, 0.0, 300_000.0)
    np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 2, 4, 5, 6, 7))


def test_mask_cash_rule_exact_boundary():
    env = hand_env(sizes=(1.0,), commission_bps=0.0, max_concentration=1.0)
    env.reset()
    np.testing.assert_array_equal(env.action_masks()[:3], [True, True, True])  # all-in is exactly affordable
    _, _, _, _, info = env.step(1)
    assert info["cash"] == pytest.approx(0.0, abs=1e-6) and not info["invalid_action"]
    with pytest.warns(UserWarning, match="can never be bought"):
        env = hand_env(sizes=(1.0,), max_concentration=1.0)  # with 10 bps commission all-in never fits in cash
    env.reset()
    np.testing.assert_array_equal(env.action_masks(), mask(0, n=4))


def test_mask_position_limit():
    env = hand_env(switch_sides=False, max_position=0.6, max_concentration=1.0)
    env.reset()
    set_book(env, 300_000.0, 200_000.0, 500_000.0)  # gross 0.5: only +0.1 fits under 0.6
    np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 4, 7))
    env = hand_env(switch_sides=True, max_position=0.6, max_concentration=1.0)
    env.reset()
    set_book(env, 300_000.0, 200_000.0, 500_000.0)
    # a bull buy sells the bear: 0.3 + f <= 0.6 for f in (0.1, 0.25); a bear buy sells the bull: 0.2 + f
    np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 2, 4, 5, 7))


def test_mask_concentration_limit():
    with pytest.warns(UserWarning, match=r"sizes \[0.5\] can never be bought"):
        env = hand_env(switch_sides=False, max_position=1.0, max_concentration=0.4)
    env.reset()
    set_book(env, 300_000.0, 100_000.0, 600_000.0)
    # bull: 0.3 + 0.1 = 0.4 lands on the limit (legal); bear: 0.1 + 0.25 legal, 0.1 + 0.5 not
    np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 4, 5, 7))
    env = hand_env()  # defaults: max_concentration 0.75 with switching
    env.reset()
    set_book(env, 500_000.0, 0.0, 500_000.0)
    np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 2, 4, 5, 6, 7))


def test_mask_drawdown_limit():
    env = hand_env(max_drawdown=0.2)
    env.reset()
    set_book(env, 0.0, 0.0, E0, peak=E0 / 0.79)  # drawdown 0.21 > 0.2: no new risk, flat -> hold only
    np.testing.assert_array_equal(env.action_masks(), mask(0))
    set_book(env, 400_000.0, 0.0, 600_000.0, peak=E0 / 0.79)  # flatten stays legal
    np.testing.assert_array_equal(env.action_masks(), mask(0, 7))
    set_book(env, 400_000.0, 0.0, 600_000.0, peak=E0 / 0.81)  # drawdown 0.19: back to normal
    np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 2, 4, 5, 6, 7))
    env = hand_env(max_drawdown=None)
    env.reset()
    set_book(env, 0.0, 0.0, E0, peak=10 * E0)
    np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 2, 3, 4, 5, 6))


def test_mask_drawdown_limit_reached_by_trading():
    prices = np.array([[100.0, 50.0, 40.0], [100.0, 50.0, 40.0], [90.0, 35.0, 52.0], [90.0, 35.0, 52.0]])
    env = hand_env(data=MarketData(prices=prices, asset_names=["index", "bull", "bear"]), max_drawdown=0.1)
    env.reset()
    _, _, _, _, info = env.step(BULL_50)  # bull -30 % on half the book: drawdown ~15 %
    assert info["drawdown"] > 0.1
    np.testing.assert_array_equal(env.action_masks(), mask(0, 7))


def test_mask_session_rule():
    data = make_leveraged_pair_market(n_steps=120, seed=3)
    env = MaskedTradingEnv(data=data, window=5, episode_length=None, session_bars=5, session_open=1, session_close=4)
    env.reset(seed=0)
    for t in range(env.first_t, env.first_t + 10):
        env._t = t
        set_book(env, 0.0, 0.0, E0)
        in_session = 1 <= t % 5 < 4
        np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 2, 3, 4, 5, 6) if in_session else mask(0))
        set_book(env, 200_000.0, 0.0, 800_000.0)
        np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 2, 3, 4, 5, 6, 7) if in_session else mask(0))


def test_mask_volatility_rule():
    data = make_leveraged_pair_market(n_steps=300, seed=4)
    log_ret = np.diff(np.log(data.prices[:, 0]))
    vol = np.full(data.n_steps, np.nan)
    for t in range(20, data.n_steps):
        vol[t] = np.std(log_ret[t - 20 : t], ddof=1)
    threshold = float(np.nanmedian(vol))
    env = MaskedTradingEnv(data=data, window=5, max_volatility=threshold, episode_length=None, random_start=False)
    env.reset()
    np.testing.assert_allclose(env.index_volatility[20:], vol[20:], rtol=1e-10)
    seen = set()
    for t in range(env.first_t, data.n_steps - 1):
        env._t = t
        set_book(env, 200_000.0, 0.0, 800_000.0)
        calm = vol[t] <= threshold
        seen.add(bool(calm))
        np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 2, 3, 4, 5, 6, 7) if calm else mask(0, 7))
    assert seen == {True, False}
    # before the volatility is defined (warm-up) buys are masked
    env = hand_env(data=data, max_volatility=1.0)
    env.reset()
    assert env._t == 1 and np.array_equal(env.action_masks(), mask(0))


def test_mask_rules_combine_and_hold_always_legal():
    data = make_leveraged_pair_market(n_steps=400, seed=6)
    env = MaskedTradingEnv(
        data=data,
        window=5,
        episode_length=None,
        random_start=False,
        max_drawdown=0.05,
        max_volatility=0.011,
        session_bars=7,
        session_open=1,
        max_concentration=0.6,
    )
    rng = np.random.default_rng(0)
    env.reset()
    n_legal = []
    done = False
    while not done:
        legal = env.action_masks()
        assert legal[0]
        n_legal.append(int(legal.sum()))
        _, _, terminated, truncated, info = env.step(int(rng.choice(np.flatnonzero(legal))))
        assert not info["invalid_action"]
        done = terminated or truncated
    assert min(n_legal) == 1 and max(n_legal) >= 7


@settings(max_examples=60, deadline=None)
@given(
    bull=st.floats(0.0, 1.2),
    bear=st.floats(0.0, 1.2),
    cash=st.floats(0.001, 1.0),
    switch_sides=st.booleans(),
    max_position=st.floats(0.2, 1.5),
    max_concentration=st.floats(0.2, 1.5),
    commission_bps=st.sampled_from([0.0, 10.0, 50.0]),
    slippage_bps=st.sampled_from([0.0, 5.0]),
)
def test_mask_matches_executing_the_trade(
    bull, bear, cash, switch_sides, max_position, max_concentration, commission_bps, slippage_bps
):
    """A buy is legal exactly when executing it in the accounting core keeps cash >= 0 and both limits."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sizes beyond the limits are expected here
        env = hand_env(
            switch_sides=switch_sides,
            max_position=max_position,
            max_concentration=max_concentration,
            commission_bps=commission_bps,
            slippage_bps=slippage_bps,
            max_drawdown=None,
        )
    env.reset()
    set_book(env, bull * E0, bear * E0, cash * E0)
    legal = env.action_masks()
    assert legal[HOLD] and legal[FLATTEN] == (bull > 0 or bear > 0)
    prices = env._prices[env._t][None, :]
    equity = float(env._book.equity(prices)[0])
    for a in range(1, FLATTEN):
        book = Portfolio(1, 2, env.costs)
        book.reset(env._book.cash.copy(), positions=env._book.positions.copy(), prices=prices)
        side = 0 if a <= 3 else 1
        target = book.positions.copy()
        if switch_sides:
            target[0, 1 - side] = 0.0
        target[0, side] += env.sizes[(a - 1) % 3] * equity / prices[0, side]
        book.trade_to(target, prices)
        values = book.positions[0] * prices[0]
        slack = 1e-9 * equity
        expected = (
            book.cash[0] >= -slack
            and values.sum() <= max_position * equity + slack
            and values[side] <= max_concentration * equity + slack
        )
        assert legal[a] == expected, (a, book.cash[0], values / equity)


# ------------------------------------------------------------------------------------------- invalid actions
def test_masked_action_is_a_counted_no_op():
    env, twin = hand_env(), hand_env()
    env.reset()
    twin.reset()
    obs, reward, _, _, info = env.step(FLATTEN)  # masked when flat
    obs_t, reward_t, _, _, info_t = twin.step(HOLD)
    assert info["invalid_action"] and info["n_invalid_actions"] == 1 and not info_t["invalid_action"]
    assert reward == reward_t == 0.0 and info["costs"] == 0.0 and info["turnover"] == 0.0
    np.testing.assert_array_equal(obs[PORTFOLIO_KEY], obs_t[PORTFOLIO_KEY])

    for e in (env, twin):
        e.step(BULL_50)  # t=2: bull weight 515,000 / 1,014,500 = 0.508
        e.step(BULL_10)  # t=3: bull weight about 0.593 after the drop to 48.5
    # +0.25 would break max_concentration=0.75 (+0.1 would not)
    np.testing.assert_array_equal(env.action_masks(), mask(0, 1, 4, 5, 6, 7))
    before = (env._book.cash.copy(), env._book.positions.copy())
    obs, reward, _, _, info = env.step(BULL_25)
    obs_t, reward_t, _, _, info_t = twin.step(HOLD)
    assert info["invalid_action"] and info["n_invalid_actions"] == 2
    np.testing.assert_array_equal(env._book.cash, before[0])
    np.testing.assert_array_equal(env._book.positions, before[1])
    assert reward == reward_t and info["equity"] == info_t["equity"] and info["costs"] == 0.0
    assert info["equity"] == pytest.approx(before[0][0] + before[1][0] @ env._prices[info["t"]], abs=1e-9)
    np.testing.assert_array_equal(obs[PORTFOLIO_KEY], obs_t[PORTFOLIO_KEY])
    env.reset()
    assert env.step(HOLD)[4]["n_invalid_actions"] == 0  # the counter restarts each episode


def test_plain_ppo_masked_choices_are_counted_no_ops():
    kwargs = {"window": 10, "episode_length": 64, "max_concentration": 0.6, "max_drawdown": 0.02}
    model = PPO("MultiInputPolicy", gym.make(ENV_ID, **kwargs), n_steps=64, batch_size=64, n_epochs=1, seed=0)
    model.learn(128)
    env = gym.make(ENV_ID, **kwargs)
    obs, info = env.reset(seed=1)
    base = env.unwrapped
    n_invalid = total_invalid = 0
    for _ in range(300):
        legal = base.action_masks()
        cash, positions, t = float(base._book.cash[0]), base._book.positions[0].copy(), base._t
        action, _ = model.predict(obs, deterministic=False)
        obs, _, terminated, truncated, info = env.step(action)
        if legal[int(action)]:
            assert not info["invalid_action"]
        else:
            n_invalid += 1
            total_invalid += 1
            assert info["invalid_action"] and info["costs"] == 0.0 and info["turnover"] == 0.0
            assert info["cash"] == cash
            np.testing.assert_array_equal(info["positions"], positions)
            assert info["equity"] == pytest.approx(cash + positions @ base._prices[t + 1], rel=1e-12)
        assert info["n_invalid_actions"] == n_invalid
        if terminated or truncated:
            obs, info = env.reset()
            n_invalid = 0
    assert total_invalid > 0  # plain PPO does pick masked actions, and each one was a counted no-op


# ------------------------------------------------------------------------------------------- MaskablePPO
class MaskChecker(BaseCallback):
    """Checks every action MaskablePPO sends to the env against the mask it was sampled under."""

    def __init__(self) -> None:
        super().__init__()
        self.n_checked = self.n_illegal = self.n_invalid_infos = 0
        self.n_legal_counts: list[int] = []

    def _on_step(self) -> bool:
        masks, actions = self.locals["action_masks"], self.locals["actions"]
        legal = masks[np.arange(len(actions)), actions]
        self.n_checked += len(actions)
        self.n_illegal += int((~legal).sum())
        self.n_invalid_infos += sum(bool(info["invalid_action"]) for info in self.locals["infos"])
        self.n_legal_counts.extend(masks.sum(axis=1).tolist())
        return True


LEARN = {"window": 30}
LEARN_STEPS = 20_480
# the regime index with less noise (per-bar Sharpe of the regime drift 0.002 / 0.003 instead of 0.2): with the
# default sigma=0.01, 10-20k steps are too few to learn the signal, and the test would only show "trades less"
LEARN_MARKET = {"n_steps": 2520, "sigma": 0.003}


@pytest.fixture(scope="module")
def trained():
    """MaskablePPO trained on the first 80 % of a predictable synthetic market (make_vec_env + Monitor)."""
    data = make_leveraged_pair_market(seed=11, **LEARN_MARKET)
    train, test = data.split(0.8)
    with warnings.catch_warnings():  # make_vec_env first asks for render_mode="rgb_array", then retries without
        warnings.filterwarnings("ignore", message=".*render_mode='rgb_array'")
        vec = make_vec_env(ENV_ID, n_envs=4, seed=0, env_kwargs={"data": train, **LEARN})
    assert isinstance(vec.envs[0], Monitor)
    assert is_masking_supported(vec) and get_action_masks(vec).shape == (4, 8)
    model = MaskablePPO(
        "MultiInputPolicy",
        vec,
        n_steps=64,
        batch_size=64,
        learning_rate=1e-3,
        gamma=0.5,
        policy_kwargs={"net_arch": [64, 64]},
        seed=0,
    )
    checker = MaskChecker()
    model.learn(LEARN_STEPS, callback=checker)
    normalizer = vec.envs[0].unwrapped.normalizer
    return model, checker, test, normalizer


@pytest.mark.slow  # the shared MaskablePPO fixture trains ~30 s
def test_maskable_ppo_never_executes_masked_actions(trained):
    _, checker, _, _ = trained
    assert checker.n_checked >= LEARN_STEPS
    assert checker.n_illegal == 0 and checker.n_invalid_infos == 0
    assert min(checker.n_legal_counts) < 8  # masks did restrict the choice


@pytest.mark.slow  # the shared MaskablePPO fixture trains ~30 s
def test_maskable_ppo_beats_random_legal_actions_on_held_out_data(trained):
    model, _, test, normalizer = trained

    def test_env():
        return MaskedTradingEnv(data=test, episode_length=None, random_start=False, normalizer=normalizer, **LEARN)

    agent = backtest(model, test_env(), deterministic=True)
    randoms = [backtest(RandomPolicy(test_env().action_space, seed=s), test_env(), deterministic=False) for s in range(5)]
    final = np.array([r.equity[-1] for r in randoms])
    logging.getLogger(__name__).info("MaskablePPO %.4f vs random legal %s", agent.equity[-1] / E0, np.round(final / E0, 4))
    assert agent.equity[-1] > max(final), (agent.equity[-1], final)


def test_maskable_ppo_smoke_and_save_load(tmp_path):
    env = gym.make(ENV_ID, window=8, episode_length=64)
    model = MaskablePPO("MultiInputPolicy", env, n_steps=64, batch_size=64, n_epochs=1, policy_kwargs={"net_arch": [16]})
    model.learn(256)
    model.save(tmp_path / "model.zip")
    loaded = MaskablePPO.load(tmp_path / "model.zip")
    obs, _ = env.reset(seed=0)
    legal = env.unwrapped.action_masks()
    for _ in range(20):
        action, _ = loaded.predict(obs, action_masks=legal, deterministic=False)
        assert legal[int(action)]
        obs, _, _, _, info = env.step(action)
        legal = env.get_wrapper_attr("action_masks")()
        assert not info["invalid_action"]


# ------------------------------------------------------------------------------------------- common checks
@pytest.mark.parametrize("window", [1, 30])
def test_env_checkers(window):
    env = gym.make(ENV_ID, window=window, episode_length=50)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)
    unexpected = [str(w.message) for w in caught if SB3_SHAPE_WARNING not in str(w.message)]
    assert unexpected == []
    assert env.observation_space[MARKET_KEY].shape == (window, len(env.unwrapped.feature_names))


def test_make_with_no_arguments():
    env = gym.make(ENV_ID)
    obs, info = env.reset(seed=3)
    base = env.unwrapped
    assert isinstance(base, MaskedTradingEnv)
    assert base.data.asset_names == ("index", "bull", "bear") and base.data.n_steps == 2520
    assert obs[MARKET_KEY].shape == (120, 9) and obs[PORTFOLIO_KEY].shape == (5,)
    assert base.feature_names[-1] == "signal[index]"
    assert [name.split("[")[1] for name in base.feature_names[:-1]] == ["index]"] * 8
    assert env.observation_space.contains(obs)
    assert base.episode_length == 256 and base.random_start
    assert env.get_wrapper_attr("action_masks")().shape == (8,)
    env2 = gym.make("sb3_trading:" + ENV_ID)
    np.testing.assert_array_equal(env2.reset(seed=3)[0][MARKET_KEY], obs[MARKET_KEY])


def test_info_keys_every_step_and_reset():
    env = gym.make(ENV_ID, window=30, episode_length=5)
    env.action_space.seed(0)
    _, info = env.reset(seed=0)
    for _ in range(5):
        assert set(INFO_KEYS) | {"timestamp", "invalid_action", "n_invalid_actions"} <= set(info)
        assert info["positions"].shape == info["weights"].shape == (2,)
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
    assert truncated and not terminated


def test_seeded_resets_reproduce():
    def rollout(seed):
        env = gym.make(ENV_ID, window=30, episode_length=40)
        obs, info = env.reset(seed=seed)
        env.action_space.seed(seed)
        rewards, observations = [], [obs]
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            rewards.append(reward)
            observations.append(obs)
            done = terminated or truncated
        return info["t"], rewards, observations

    end, rewards, observations = rollout(7)
    end2, rewards2, observations2 = rollout(7)
    assert end == end2 and rewards == rewards2
    for a, b in zip(observations, observations2, strict=True):
        np.testing.assert_array_equal(a[MARKET_KEY], b[MARKET_KEY])
        np.testing.assert_array_equal(a[PORTFOLIO_KEY], b[PORTFOLIO_KEY])
    assert rollout(8)[0] != end


def test_end_of_data_truncates_and_full_episode():
    data = make_leveraged_pair_market(n_steps=80, seed=1)
    env = MaskedTradingEnv(data=data, window=5, episode_length=None, random_start=False)
    _, info = env.reset(seed=0)
    assert info["t"] == env.first_t
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, info = env.step(HOLD)
        assert not terminated
        steps += 1
    assert info["t"] == 79 and steps == 79 - env.first_t


@pytest.mark.parametrize("window", [1, 6])
def test_no_look_ahead(window):
    """Perturbing every data value after t leaves every observation and mask up to t unchanged."""
    data = make_leveraged_pair_market(n_steps=200, seed=5)
    normalizer = FeatureNormalizer.fit(
        compute_features(data.slice(0, 120).select_assets(["index"]), MASKED_INDICATORS).values[40:]
    )
    actions = np.random.default_rng(0).integers(0, 8, size=250)
    rules = {"max_volatility": 0.012, "max_drawdown": 0.05, "session_bars": 4, "session_open": 1}

    assert_no_look_ahead(
        lambda market: MaskedTradingEnv(
            data=market, window=window, normalizer=normalizer, episode_length=None, random_start=False, **rules
        ),
        data,
        actions,
        cut_points=(50, 97, 150, 190),
    )


# ------------------------------------------------------------------------------------------- bad input
def test_integer_action_forms_accepted():
    for action in (3, np.int64(3), np.array(3), np.array([3]), np.array([3], dtype=np.int32)):
        env = hand_env()
        env.reset()
        assert not env.step(action)[4]["invalid_action"]


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"bull_asset": "TQQQ"}, ValueError, "bull_asset='TQQQ'"),
        ({"index_asset": "bull"}, ValueError, "three different"),
        ({"sizes": ()}, ValueError, "sizes"),
        ({"sizes": 0.5}, ValueError, "sizes"),
        ({"sizes": (0.1, 1.5)}, ValueError, r"sizes\[1\]"),
        ({"sizes": (0.1, 0.1)}, ValueError, "distinct"),
        ({"sizes": (0.1, float("nan"))}, ValueError, r"sizes\[1\]"),
        ({"max_position": 0.0}, ValueError, "max_position"),
        ({"max_concentration": -1.0}, ValueError, "max_concentration"),
        ({"max_drawdown": 1.5}, ValueError, "max_drawdown"),
        ({"session_bars": 0}, ValueError, "session_bars"),
        ({"session_bars": 5, "session_open": 5}, ValueError, "session_open"),
        ({"session_bars": 5, "session_open": 2, "session_close": 2}, ValueError, "session_close"),
        ({"session_bars": 5, "session_close": 6}, ValueError, "session_close"),
        ({"session_open": 2}, ValueError, "need session_bars"),
        ({"max_volatility": 0.0}, ValueError, "max_volatility"),
        ({"volatility_window": 1}, ValueError, "volatility_window"),
        ({"initial_cash": 0.0}, ValueError, "initial_cash"),
        ({"commission_bps": -1.0}, ValueError, "commission_bps"),
        ({"window": 0}, ValueError, "window"),
        ({"episode_length": 10}, ValueError, "episode_length"),
        ({"indicators": None}, ValueError, "MarketData.high"),
        ({"data": np.ones((10, 3))}, TypeError, "MarketData"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        hand_env(**kwargs)


@pytest.mark.parametrize("switch_sides", [True, False])
def test_batched_env_equals_single_envs_step_for_step(switch_sides):
    """BatchedVecEnv (8 accounts, one compiled kernel) equals a DummyVecEnv of single envs: masks, observations,
    rewards and infos, under random actions (masked choices included: counted no-ops)."""
    kwargs = {
        "window": 10,
        "episode_length": 20,
        "switch_sides": switch_sides,
        "slippage_bps": 5.0,
        "max_concentration": 0.6,
        "max_drawdown": 0.02,
        "session_bars": 6,
        "session_open": 1,
    }
    n_envs = 8
    ref = DummyVecEnv([lambda: Monitor(gym.make(ENV_ID, **kwargs))] * n_envs)
    ref.seed(3)
    vec = batched_make_vec_env(ENV_ID, n_envs, seed=3, env_kwargs=kwargs)
    expected, actual = ref.reset(), vec.reset()
    for key in (MARKET_KEY, PORTFOLIO_KEY):
        np.testing.assert_array_equal(actual[key], expected[key])
    rng = np.random.default_rng(0)
    n_dones = n_invalid = n_legal_buys = 0
    for step in range(50):
        masks = get_action_masks(vec)
        np.testing.assert_array_equal(masks, get_action_masks(ref), err_msg=f"masks at {step}")
        n_legal_buys += int(masks[:, 1:FLATTEN].sum())
        actions = rng.integers(0, 8, size=n_envs)
        ref_obs, ref_rewards, ref_dones, ref_infos = ref.step(actions)
        obs, rewards, dones, infos = vec.step(actions)
        for key in (MARKET_KEY, PORTFOLIO_KEY):
            np.testing.assert_array_equal(obs[key], ref_obs[key], err_msg=f"{key} at {step}")
        np.testing.assert_array_equal(rewards, ref_rewards, err_msg=f"rewards at {step}")
        np.testing.assert_array_equal(dones, ref_dones, err_msg=f"dones at {step}")
        for i in range(n_envs):
            for key in ("equity", "cash", "positions", "costs", "turnover", "invalid_action", "n_invalid_actions", "t"):
                np.testing.assert_array_equal(infos[i][key], ref_infos[i][key], err_msg=f"{key} at {step} env {i}")
            assert infos[i]["invalid_action"] == (not masks[i, actions[i]])
            n_invalid += int(infos[i]["invalid_action"])
        n_dones += int(dones.sum())
    assert n_dones >= n_envs and n_invalid > 0 and n_legal_buys > 0
