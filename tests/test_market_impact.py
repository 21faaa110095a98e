"""sb3_trading/MarketImpact-v0 and the shared market mechanics in sb3_trading.sim.impact."""

import copy
import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from lookahead import assert_no_look_ahead
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.data import MarketData, make_regime_market
from sb3_trading.envs import INFO_KEYS, MARKET_KEY, PORTFOLIO_KEY
from sb3_trading.envs.market_impact import MarketImpactEnv
from sb3_trading.features import FeatureNormalizer, compute_features
from sb3_trading.sim import CostModel, Portfolio
from sb3_trading.sim.impact import (
    HeuristicTrader,
    HeuristicTraders,
    ImpactMarket,
    decayed_log_premium,
    impact_factors,
    lookback_returns,
    market_maker_weights,
    mean_reversion_weights,
    momentum_weights,
    net_notional,
    normalize_weights,
    shaped_rewards,
    shaped_rewards_batch,
    target_shares,
)

ENV_ID = "sb3_trading/MarketImpact-v0"
# SB3 recommends 1-D vectors; the (window, F) market block is our documented layout
SB3_SHAPE_WARNING = "unconventional shape"
# SB3 recommends Box[-1, 1] actions; the design fixes Box[0, 1]^N (renormalised to weights)
SB3_BOX_WARNING = "symmetric and normalized Box action space"
EXTRA_INFO_KEYS = ("pnl", "agent_pnl", "agent_equity", "impact", "exec_prices")
MOMENTUM_1 = HeuristicTrader("momentum", lookback=1)


def hand_data() -> MarketData:
    """Two assets; row 0 warms up the 'return' indicator, both rise 1.0101 % into row 1, then [101, 49], [100, 50]."""
    prices = np.array([[99.0, 49.5], [100.0, 50.0], [101.0, 49.0], [100.0, 50.0]])
    return MarketData(prices=prices, asset_names=["A", "B"])


def hand_env(**kwargs) -> MarketImpactEnv:
    kwargs = {
        "initial_cash": 100_000.0,
        "commission_bps": 0.0,
        "impact_coef": 0.0,
        "traders": (MOMENTUM_1,),
        "indicators": ["return"],
        "normalizer": None,
        "episode_length": None,
        "random_start": False,
        **kwargs,
    }
    return MarketImpactEnv(data=kwargs.pop("data", hand_data()), **kwargs)


# --------------------------------------------------------------------------- hand examples
def test_hand_example_without_impact():
    env = hand_env()
    obs, info = env.reset(seed=0)
    assert info["t"] == 1 and info["equity"] == 100_000.0
    np.testing.assert_array_equal(obs[PORTFOLIO_KEY], np.array([0, 0, 1, 0, 0, 0, 0], dtype=np.float32))

    # learner [0.6, 0.4] of 100,000 at [100, 50] -> [600, 800] shares; P&L 600 * 1 + 800 * (-1) = -200
    # momentum: both rose equally -> [0.5, 0.5] -> [500, 1000] shares; P&L 500 * 1 + 1000 * (-1) = -500
    obs, reward, terminated, truncated, info = env.step(np.array([0.6, 0.4]))  # float64: exact 0.6
    np.testing.assert_allclose(info["positions"], [600.0, 800.0], rtol=0, atol=1e-9)
    assert info["pnl"] == pytest.approx(-200.0, abs=1e-9)
    np.testing.assert_allclose(info["agent_pnl"], [-200.0, -500.0], rtol=0, atol=1e-9)
    np.testing.assert_allclose(env.market.book.positions[1], [500.0, 1000.0], rtol=0, atol=1e-9)
    assert info["cash"] == pytest.approx(0.0, abs=1e-9)
    assert info["equity"] == pytest.approx(99_800.0, abs=1e-9)
    assert info["portfolio_return"] == pytest.approx(-0.002, abs=1e-12)
    assert info["turnover"] == pytest.approx(1.0, abs=1e-12) and info["costs"] == 0.0
    np.testing.assert_array_equal(info["impact"], [1.0, 1.0])
    np.testing.assert_array_equal(info["exec_prices"], [100.0, 50.0])
    np.testing.assert_allclose(info["weights"], [60_600 / 99_800, 39_200 / 99_800], atol=1e-12)
    # reward (wealth basis, fractions): V = [99,800, 99,500], mean 99,650, sigma 150 -> z-score +1 for the learner
    expected = (-200.0 + 0.05 / (1 + 150.0) + 0.1 * 1.0) / 100_000.0
    assert reward == pytest.approx(expected, abs=1e-15)
    assert info["t"] == 2 and not terminated and not truncated


def test_seed_004_worked_example_under_wealth_and_currency():
    """Seed 004: prices 100, 50 -> 101, 49, no costs or impact, four agents with 100,000 cash each, weights learner
    [0.6, 0.4], momentum [0.5, 0.5], mean reversion [0.3, 0.7], market maker [0.05, 0.95]. Base P&L -200, -500,
    -1,100, -1,850; mean and population std over the new values; the learner's reward is about -199.887."""
    from sb3_trading.envs.market_impact_pz import MarketImpactParallelEnv

    weights = {"learner": [0.6, 0.4], "momentum": [0.5, 0.5], "mean_reversion": [0.3, 0.7], "market_maker": [0.05, 0.95]}

    def step(**kwargs):
        env = MarketImpactParallelEnv(
            learners=list(weights),
            data=hand_data(),
            initial_cash=100_000.0,
            commission_bps=0.0,
            impact_coef=0.0,
            traders=(),
            indicators=["return"],
            normalizer=None,
            random_start=False,
            episode_length=None,
            **kwargs,
        )
        env.reset(seed=0)
        _, rewards, _, _, infos = env.step({name: np.array(w) for name, w in weights.items()})
        return rewards, infos

    rewards, infos = step(reward_basis="wealth", reward_units="currency")
    pnl = np.array([infos[name]["pnl"] for name in weights])
    np.testing.assert_allclose(pnl, [-200.0, -500.0, -1_100.0, -1_850.0], atol=1e-9)
    values = 100_000.0 + pnl
    mu, sigma = values.mean(), values.std()
    assert mu == pytest.approx(99_087.5) and sigma == pytest.approx(631.0, abs=0.5)
    for name, p, v in zip(weights, pnl, values, strict=True):
        assert rewards[name] == pytest.approx(p + 0.05 / (1 + sigma) - 0.1 * (mu - v) / sigma, abs=1e-9)
    assert rewards["learner"] == pytest.approx(-199.887, abs=5e-4)
    # fractions of the initial cash: the same reward / 100,000 (the units never change which term dominates)
    fractions, _ = step(reward_basis="wealth", reward_units="fraction")
    for name in weights:
        assert fractions[name] == pytest.approx(rewards[name] / 100_000.0, rel=1e-12)
    # all agents start equal, so on the first step the step-P&L basis has the same mean offset and sigma
    by_pnl, _ = step(reward_basis="step_pnl", reward_units="currency")
    for name in weights:
        assert by_pnl[name] == pytest.approx(rewards[name], rel=1e-12)


def test_hand_example_reward_weights_configurable():
    env = hand_env(cooperation=0.0, competition=0.0)
    env.reset()
    _, reward, *_ = env.step(np.array([0.6, 0.4]))
    assert reward == pytest.approx(-0.002, abs=1e-15)  # own P&L / initial cash only


@pytest.mark.parametrize("decay", [0.0, 1.0])
def test_hand_example_with_impact(decay):
    k, liquidity = 0.1, 1_000_000.0
    env = hand_env(impact_coef=k, liquidity=liquidity, impact_decay=decay)
    env.reset()
    obs, _, _, _, info = env.step(np.array([0.6, 0.4]))
    # everyone buys from cash: net notional A = 60,000 + 50,000, B = 40,000 + 50,000
    impact = 1 + k * np.array([110_000.0, 90_000.0]) / (liquidity + 1)
    np.testing.assert_allclose(info["impact"], impact, rtol=1e-14)
    assert (info["exec_prices"] > [100.0, 50.0]).all()  # buying pressure raises the execution price
    np.testing.assert_allclose(info["exec_prices"], [100.0 * impact[0], 50.0 * impact[1]], rtol=1e-14)
    if decay == 0.0:  # permanent: the next price is the data's next close times the impact
        marks = np.array([101.0, 49.0]) * impact
        np.testing.assert_allclose(obs[PORTFOLIO_KEY][3:5], np.log(impact).astype(np.float32), rtol=1e-6)
    else:  # temporary: marked at the data's next close
        marks = np.array([101.0, 49.0])
        np.testing.assert_array_equal(obs[PORTFOLIO_KEY][3:5], [0.0, 0.0])
    np.testing.assert_allclose(obs[PORTFOLIO_KEY][5:7], np.log(impact).astype(np.float32), rtol=1e-6)
    learner = np.array([600.0, 800.0]) @ (marks - info["exec_prices"])
    momentum = np.array([500.0, 1000.0]) @ (marks - info["exec_prices"])
    np.testing.assert_allclose(info["agent_pnl"], [learner, momentum], rtol=0, atol=1e-8)
    # orders are sized at the decision price and filled at the impacted price: cash dips below zero
    assert info["cash"] == pytest.approx(100_000.0 - np.array([600.0, 800.0]) @ info["exec_prices"], abs=1e-8)
    assert info["cash"] < 0


def test_impact_is_clipped_and_selling_lowers_the_price():
    env = hand_env(impact_coef=100.0, liquidity=0.0, impact_decay=0.0)  # permanent impact
    env.reset()
    _, _, _, _, info = env.step(np.array([0.6, 0.4]))
    np.testing.assert_array_equal(info["impact"], [1.05, 1.05])
    # all cash next: the learner sells [600, 800] shares; momentum (tilted to A now) buys only 134 A
    # and sells 374 B: net selling of both, so both execution prices fall, to the lower bound
    previous = env.market.current_prices[0].copy()
    np.testing.assert_allclose(previous, [101.0 * 1.05, 49.0 * 1.05])
    _, _, _, truncated, info = env.step(np.zeros(2))
    np.testing.assert_array_equal(info["impact"], [0.95, 0.95])
    assert (info["exec_prices"] < previous).all()
    assert info["positions"].tolist() == [0.0, 0.0] and truncated


def test_ruin_terminates():
    prices = np.array([[100.0], [100.0], [1e-6], [1e-6]])
    env = hand_env(data=MarketData(prices=prices), commission_bps=10.0, traders=())
    env.reset()
    _, reward, terminated, truncated, info = env.step(np.ones(1))
    assert terminated and not truncated
    assert info["cash"] == pytest.approx(-100.0) and info["equity"] < 0
    assert np.isfinite(reward) and np.isfinite(info["log_return"])


def test_impact_off_fills_at_the_market_price():
    env = MarketImpactEnv(impact_coef=0.0, episode_length=20)
    env.reset(seed=3)
    for _ in range(20):
        t = env._t
        price = env.market.current_prices[0].copy()
        _, _, _, _, info = env.step(env.action_space.sample())
        np.testing.assert_array_equal(info["exec_prices"], price)
        np.testing.assert_array_equal(env.market.current_prices[0], env.data.prices[t + 1])


@pytest.mark.parametrize(
    "mode, action, weights",
    [("sum", [0.0, 0.0], [0.0, 0.0]), ("sum", [0.2, 0.2], [0.5, 0.5]), ("cap", [0.2, 0.3], [0.2, 0.3])],
)
def test_weight_modes(mode, action, weights):
    env = hand_env(weight_mode=mode)
    _check_weights(env, action, weights)


@pytest.mark.parametrize(
    "mode, action, weights",
    [
        # |a| <= 0.2 holds nothing; past it (a - 0.2) / 0.8: 0.6 -> 0.5, 1 stays 1
        ("cap", [0.15, 0.6], [0.0, 0.5]),
        ("cap", [0.2, 0.1], [0.0, 0.0]),  # the untrained policy's near-zero scores: flat
        ("cap", [1.0, 0.6], [1.0 / 1.5, 0.5 / 1.5]),  # 1 + 0.5 > 1: renormalised
        ("sum", [0.1, 0.6], [0.0, 1.0]),  # fully invested in what passes the dead zone
        ("sum", [0.19, 0.05], [0.0, 0.0]),  # nothing passes: all cash
    ],
)
def test_dead_zone_weights(mode, action, weights):
    env = hand_env(weight_mode=mode, dead_zone=0.2)
    _check_weights(env, action, weights, atol=1e-7)  # the scores pass through float32


def _check_weights(env, action, weights, atol=1e-15):
    """``action_to_weights`` gives ``weights``, and a step from all cash buys exactly those weights of equity."""
    env.reset()
    np.testing.assert_allclose(env.action_to_weights(action), weights, atol=atol)
    _, _, _, _, info = env.step(np.array(action))
    np.testing.assert_allclose(info["positions"], np.array(weights) * 100_000.0 / [100.0, 50.0], atol=atol * 1e4)


# --------------------------------------------------------------------------- sim.impact pure functions
def test_shaped_rewards_by_hand():
    rewards, sigma = shaped_rewards(np.array([300.0, -100.0, 100.0]), 1_000.0, cooperation=0.05, competition=0.1)
    # basis = pnl (currency): mean 100, sigma = sqrt((200^2 + 200^2 + 0) / 3); reward in units of 1,000
    expected_sigma = math.sqrt(80_000.0 / 3)
    assert sigma == pytest.approx(expected_sigma, rel=1e-15)
    coop = 0.05 / (1 + expected_sigma)
    np.testing.assert_allclose(
        rewards,
        [(300 + coop + 0.1 * math.sqrt(1.5)) / 1e3, (-100 + coop - 0.1 * math.sqrt(1.5)) / 1e3, (100 + coop) / 1e3],
        rtol=1e-12,
    )
    # the wealth basis: the same P&L from unequal starting values ranks the agents by their new values
    rewards, sigma = shaped_rewards(np.array([10.0, 10.0]), 1.0, 0.05, 0.1, wealth=np.array([1_010.0, 2_010.0]))
    assert sigma == 500.0
    np.testing.assert_allclose(rewards, [10 + 0.05 / 501 - 0.1, 10 + 0.05 / 501 + 0.1], rtol=1e-15)
    # all equal: sigma = 0, no competition term (no division by zero), full cooperation bonus
    rewards, sigma = shaped_rewards(np.array([50.0, 50.0]), 1_000.0, 0.05, 0.1)
    assert sigma == 0.0
    np.testing.assert_allclose(rewards, [(50 + 0.05) / 1e3, (50 + 0.05) / 1e3], rtol=1e-15)
    rewards, _ = shaped_rewards(np.array([-20.0]), 1_000.0, 0.05, 0.1)  # a lone learner
    np.testing.assert_allclose(rewards, [(-20 + 0.05) / 1e3])
    with pytest.raises(ValueError, match="wealth must have the shape of pnl"):
        shaped_rewards(np.zeros(2), 1.0, wealth=np.zeros(3))


@pytest.mark.parametrize("n_agents", [1, 2, 4, 7, 8, 12])
def test_shaped_rewards_are_the_formula_summed_in_order(n_agents):
    """The kernel sums left to right (the same floats compiled and under NUMBA_DISABLE_JIT): exactly the formula in
    Python floats, for any number of agents and either basis."""
    rng = np.random.default_rng(n_agents)
    for pnl in (rng.normal(0, 300, n_agents), np.zeros(n_agents), np.full(n_agents, -0.0), rng.normal(0, 1e-9, n_agents)):
        wealth = 1e5 + pnl + rng.normal(0, 500, n_agents)
        for basis in (None, wealth):
            rewards, sigma = shaped_rewards(pnl, 1e5, 0.05, 0.1, wealth=basis)
            xs = (pnl if basis is None else basis).tolist()
            total = 0.0
            for x in xs:
                total += x
            mean = total / n_agents
            squares = 0.0
            for x in xs:
                squares += (x - mean) * (x - mean)
            expected_sigma = math.sqrt(squares / n_agents)
            bonus = 0.05 / (1.0 + expected_sigma)
            weight = 0.1 / expected_sigma if expected_sigma > 1e-12 else 0.0
            expected = [
                ((p + bonus + weight * (x - mean)) if weight else (p + bonus)) / 1e5
                for p, x in zip(pnl.tolist(), xs, strict=True)
            ]
            assert sigma == expected_sigma
            assert rewards.tolist() == expected
            assert rewards.shape == (n_agents,) and rewards.dtype == np.float64
    batch = shaped_rewards_batch(np.stack([pnl, -pnl]), np.stack([pnl, -pnl]), 1e5, 0.05, 0.1)  # one market per row
    np.testing.assert_array_equal(batch[0], shaped_rewards(pnl, 1e5, 0.05, 0.1)[0])
    np.testing.assert_array_equal(batch[1], shaped_rewards(-pnl, 1e5, 0.05, 0.1)[0])


def test_heuristic_weights():
    np.testing.assert_array_equal(
        momentum_weights(np.array([[0.01, 0.01], [0.03, -0.01], [-0.1, -0.2]])), [[0.5, 0.5], [1.0, 0.0], [0.0, 0.0]]
    )
    np.testing.assert_allclose(
        mean_reversion_weights(np.array([[0.01, -0.01, -0.03], [0.1, 0.2, 0.0]])), [[0.0, 0.25, 0.75], [0.0, 0.0, 0.0]]
    )
    # market maker: equal weight without flow; leans out of what the crowd bought
    np.testing.assert_allclose(market_maker_weights(np.zeros(2), 0.5), [[0.5, 0.5]])
    w = market_maker_weights(np.array([300.0, -100.0]), np.array([0.5, 1.0]))
    # f = [0.75, -0.25]: scores (1 - s f) = [0.625, 1.125] and [0.25, 1.25]
    np.testing.assert_allclose(w, [[0.625 / 1.75, 1.125 / 1.75], [0.25 / 1.5, 1.25 / 1.5]])
    np.testing.assert_allclose(normalize_weights(np.array([[0.0, 0.0], [0.1, 0.3]]), "sum"), [[0, 0], [0.25, 0.75]])
    np.testing.assert_allclose(normalize_weights(np.array([[0.1, 0.3], [1.0, 3.0]]), "cap"), [[0.1, 0.3], [0.25, 0.75]])


def test_lookback_returns_read_the_past_only():
    prices = np.array([[100.0], [110.0], [121.0], [1e9]])
    np.testing.assert_allclose(lookback_returns(prices, 2, np.array([1, 2, 5])), [[0.1], [0.21], [0.21]])
    bank = HeuristicTraders([HeuristicTrader("momentum", 1), "mean_reversion", "market_maker"])
    assert bank.names == ("momentum_0", "mean_reversion_1", "market_maker_2")
    before = bank.weights(prices, 2, np.array([5.0]))
    prices[3] = 1.0  # the future
    np.testing.assert_array_equal(bank.weights(prices, 2, np.array([5.0])), before)


@pytest.mark.parametrize(
    "traders",
    [
        ("momentum", "mean_reversion", "market_maker"),  # consecutive rows: slices
        ("market_maker", "momentum", HeuristicTrader("market_maker", skew=1.0), HeuristicTrader("mean_reversion", 7)),
        (HeuristicTrader("momentum", 3), HeuristicTrader("momentum", 40), "mean_reversion"),  # different look-backs
        ("market_maker",),
        (HeuristicTrader("mean_reversion", 1),),
    ],
)
def test_heuristic_weights_are_the_single_kind_rules(traders):
    """The traders' batched kernel equals each trader's own rule (the public one-kind functions), exactly."""
    rng = np.random.default_rng(4)
    prices = np.exp(np.cumsum(rng.normal(0, 0.02, (60, 5)), axis=0)) * 100
    bank = HeuristicTraders(traders)
    for t in (0, 2, 25, 59):  # t < look-back: the first bar
        for net in (rng.normal(0, 1e4, 5), np.zeros(5), np.array([1e4, 0.0, 0.0, 0.0, 0.0])):
            expected = []
            for trader in bank.traders:
                if trader.kind == "market_maker":
                    expected.append(market_maker_weights(net, trader.skew)[0])
                else:
                    r = lookback_returns(prices, t, np.array([trader.lookback]))
                    rule = momentum_weights if trader.kind == "momentum" else mean_reversion_weights
                    expected.append(rule(r)[0])
            np.testing.assert_array_equal(bank.weights(prices, t, net), np.array(expected))


def test_market_step_by_hand_with_decay_and_costs():
    """One learner and a momentum trader, commission 10 bps, slippage 5 bps, impact decaying by half each bar."""
    k, liquidity, c, s = 0.1, 1_000_000.0, 0.001, 0.0005
    market = ImpactMarket(
        hand_data().prices, traders=(MOMENTUM_1,), costs=CostModel(10.0, 5.0), impact_coef=k, impact_decay=0.5
    )
    market.reset(1)
    np.testing.assert_array_equal(market.current_prices, [[100.0, 50.0]])  # P_start = D_start
    # momentum: P_1 / P_0 = [100 / 99, 50 / 49.5], equal rises -> [0.5, 0.5]
    np.testing.assert_array_equal(market.heuristic_weights(), [[[0.5, 0.5]]])
    step = market.step(np.array([[[0.6, 0.4]]]))
    # targets [600, 800] and [500, 1000] shares, all bought from cash: net [110,000, 90,000]
    np.testing.assert_array_equal(market.book.positions, [[600.0, 800.0], [500.0, 1000.0]])
    np.testing.assert_array_equal(step.net_notional, [[110_000.0, 90_000.0]])
    impact = 1.0 + k * np.array([110_000.0, 90_000.0]) / (liquidity + 1.0)
    np.testing.assert_allclose(step.impact, [impact], rtol=1e-15)
    exec_prices = np.array([100.0, 50.0]) * impact
    np.testing.assert_allclose(step.exec_prices, [exec_prices], rtol=1e-15)
    # log M_2 = 0.5 (0 + log I): the next price is D_2 sqrt(I)
    prices_next = np.array([101.0, 49.0]) * np.sqrt(impact)
    np.testing.assert_allclose(step.prices, [prices_next], rtol=1e-14)
    np.testing.assert_allclose(market.log_premium, [0.5 * np.log(impact)], rtol=1e-14)
    np.testing.assert_allclose(market.impact_state, [np.concatenate([0.5 * np.log(impact), np.log(impact)])], rtol=1e-14)
    for row, shares in enumerate(([600.0, 800.0], [500.0, 1000.0])):
        shares = np.array(shares)
        notional = shares @ exec_prices
        costs = notional * (s + c * (1 + s))  # buys fill at X (1 + s) and pay c of that
        assert step.notional[0, row] == pytest.approx(notional, rel=1e-15)
        assert step.costs[0, row] == pytest.approx(costs, rel=1e-12)
        cash = 100_000.0 - notional - costs
        assert market.book.cash[row] == pytest.approx(cash, rel=1e-12)
        assert step.equity[0, row] == pytest.approx(cash + shares @ prices_next, rel=1e-12)
        assert step.pnl[0, row] == pytest.approx(cash + shares @ prices_next - 100_000.0, rel=1e-9)
    # bar 2: momentum reads P_2 / P_1 = [1.01 sqrt(I_A), 0.98 sqrt(I_B)]: A rose, B fell -> all in A
    assert 1.01 * np.sqrt(impact[0]) > 1 > 0.98 * np.sqrt(impact[1])
    np.testing.assert_array_equal(market.heuristic_weights(), [[[1.0, 0.0]]])
    second = market.step(np.array([[[0.6, 0.4]]]))
    # log M_3 = 0.5 (log M_2 + log I_2): P_3 = D_3 exp(0.5 (0.5 log I_1 + log I_2))
    premium = 0.5 * (0.5 * np.log(impact) + np.log(second.impact[0]))
    np.testing.assert_allclose(second.prices, [np.array([100.0, 50.0]) * np.exp(premium)], rtol=1e-14)
    np.testing.assert_allclose(second.exec_prices, [prices_next * second.impact[0]], rtol=1e-15)
    with pytest.raises(ValueError, match="last one"):
        market.step(np.array([[[0.6, 0.4]]]))


@pytest.mark.parametrize("costs, decay", [(CostModel(10.0, 0.0), 0.0), (CostModel(10.0, 5.0), 0.5), (CostModel(0.0), 1.0)])
def test_market_step_composes_the_rules(costs, decay):
    """ImpactMarket.step (one compiled kernel over B markets) is target_shares, net_notional, impact_factors, the
    decayed premium, Portfolio.trade_to and Portfolio.mark of each market in turn; the markets are independent."""
    data = make_regime_market(n_steps=120, n_assets=4, seed=6)
    traders = ("momentum", HeuristicTrader("mean_reversion", 3), "market_maker")
    market = ImpactMarket(
        data.prices, n_learners=2, traders=traders, costs=costs, impact_coef=2.0, impact_decay=decay, n_markets=3
    )
    market.reset(np.array([40, 25, 60]))
    bank = HeuristicTraders(traders)
    rng = np.random.default_rng(2)
    # every market's price path P (rows <= its start are the data's), to check the heuristics' price ring against
    paths = [data.prices.copy() for _ in range(3)]
    for _ in range(50):
        t, book = market.t.copy(), copy.deepcopy(market.book)
        log_premium, equity_before = market.log_premium.copy(), market.equity.copy()
        last_net = market.last_net_notional.copy()
        learners = np.stack([normalize_weights(rng.uniform(0, 1, (2, 4)) * rng.integers(0, 2, (2, 4))) for _ in range(3)])
        heuristics = market.heuristic_weights()
        step = market.step(learners)
        for b in range(3):
            np.testing.assert_array_equal(heuristics[b], bank.weights(paths[b], int(t[b]), last_net[b]))
            rows = slice(5 * b, 5 * b + 5)
            prices_t = paths[b][t[b]]
            target = target_shares(np.concatenate([learners[b], heuristics[b]]), equity_before[b], prices_t)
            net = net_notional(target, book.positions[rows], prices_t)
            impact = impact_factors(net, market.impact_coef, market.liquidity, market.impact_bounds)
            twin = Portfolio(5, 4, costs)
            twin.holdings[:], twin.peak_equity[:] = book.holdings[rows], book.peak_equity[rows]
            fills = twin.trade_to(target, prices_t * impact)
            premium = np.array([decayed_log_premium(m, i, decay) for m, i in zip(log_premium[b], np.log(impact), strict=True)])
            prices_next = data.prices[t[b] + 1] * np.exp(premium)
            equity, drawdown = twin.mark(prices_next)
            np.testing.assert_array_equal(step.net_notional[b], net)
            np.testing.assert_array_equal(step.impact[b], impact)
            np.testing.assert_array_equal(step.exec_prices[b], prices_t * impact)
            np.testing.assert_allclose(step.prices[b], prices_next, rtol=1e-15)
            # log and exp of the compiled kernel and of numpy may differ in the last ulp
            np.testing.assert_allclose(market.log_premium[b], premium, rtol=1e-14, atol=1e-16)
            np.testing.assert_array_equal(step.notional[b], fills.notional)
            np.testing.assert_array_equal(step.costs[b], fills.costs)
            np.testing.assert_array_equal(market.book.positions[rows], twin.positions)
            np.testing.assert_allclose(market.book.cash[rows], twin.cash, rtol=1e-15)
            np.testing.assert_allclose(step.equity[b], equity, rtol=1e-14)
            np.testing.assert_allclose(step.drawdown[b], drawdown, rtol=1e-12, atol=1e-15)
            np.testing.assert_array_equal(step.pnl[b], step.equity[b] - equity_before[b])
            paths[b][t[b] + 1] = step.prices[b]
        np.testing.assert_array_equal(market.t, t + 1)


def test_impact_factors_formula():
    net = np.array([1e5, -1e5, 0.0, 1e9])
    np.testing.assert_allclose(
        impact_factors(net, 0.1, np.array([1e6, 1e6, 1e6, 1e6]), (0.95, 1.05)),
        [1 + 0.1 * 1e5 / (1e6 + 1), 1 - 0.1 * 1e5 / (1e6 + 1), 1.0, 1.05],
    )
    np.testing.assert_array_equal(impact_factors(net, 0.0, 1e6, (0.95, 1.05)), 1.0)


def test_market_maker_trades_against_the_flow():
    prices = np.full((10, 2), 100.0)
    market = ImpactMarket(prices, n_learners=1, traders=("market_maker",), costs=CostModel(0.0), impact_coef=0.0)
    market.reset(1)
    market.step(np.array([[[1.0, 0.0]]]))  # the learner buys A
    weights = market.heuristic_weights()[0, 0]
    assert weights[0] < 0.5 < weights[1]


def test_market_equity_identity_and_one_book():
    data = make_regime_market(n_steps=80, n_assets=3, seed=2)
    market = ImpactMarket(data.prices, n_learners=2, costs=CostModel(10.0, 5.0), n_markets=2)
    market.reset(30)
    rng = np.random.default_rng(0)
    for _ in range(20):
        step = market.step(normalize_weights(rng.uniform(0, 1, (4, 3))).reshape(2, 2, 3))
        book = market.book
        assert book.n_envs == 2 * (2 + 3)  # every agent of every market a row of one batched Portfolio
        marks = np.repeat(step.prices, 5, axis=0)
        equity = book.cash + (book.positions * marks).sum(axis=1)
        np.testing.assert_allclose(step.equity.ravel(), equity, rtol=1e-12)
        np.testing.assert_allclose(step.pnl, step.equity - step.equity_before, rtol=0, atol=1e-9)
        assert (step.costs >= 0).all() and np.isfinite(step.equity).all()
        assert ((step.impact >= 0.95) & (step.impact <= 1.05)).all()


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"traders": ("momentun",)}, ValueError, "did you mean 'momentum'"),
        ({"traders": "momentum"}, TypeError, "sequence"),
        ({"traders": (3,)}, TypeError, "trader"),
        ({"impact_coef": -0.1}, ValueError, "impact_coef"),
        ({"impact_coef": float("nan")}, ValueError, "impact_coef"),
        ({"liquidity": [1.0, 2.0, 3.0]}, ValueError, "liquidity"),
        ({"liquidity": -1.0}, ValueError, "liquidity"),
        ({"impact_bounds": (1.05, 0.95)}, ValueError, "impact_bounds"),
        ({"impact_bounds": (0.0, 1.05)}, ValueError, "impact_bounds"),
        ({"impact_bounds": 1.05}, ValueError, "impact_bounds"),
        ({"impact_decay": 1.5}, ValueError, "impact_decay"),
        ({"cooperation": -1.0}, ValueError, "cooperation"),
        ({"competition": float("inf")}, ValueError, "competition"),
        ({"weight_mode": "softmax"}, ValueError, "weight_mode"),
        ({"dead_zone": 1.0}, ValueError, "dead_zone"),
        ({"dead_zone": -0.1}, ValueError, "dead_zone"),
        ({"initial_cash": 0.0}, ValueError, "initial_cash"),
        ({"commission_bps": -1.0}, ValueError, "commission_bps"),
        ({"window": 4}, ValueError, "window=4"),
        ({"episode_length": 5}, ValueError, "episode_length"),
        ({"data": np.ones((10, 2))}, TypeError, "MarketData"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        hand_env(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match", [({"kind": "momentum", "lookback": 0}, "lookback"), ({"kind": "market_maker", "skew": 2.0}, "skew")]
)
def test_bad_trader_spec_raises(kwargs, match):
    with pytest.raises(ValueError, match=match):
        HeuristicTrader(**kwargs)


# --------------------------------------------------------------------------- the common env checks
@pytest.mark.parametrize("window", [1, 8])
def test_env_checkers(window):
    env = gym.make(ENV_ID, window=window, episode_length=50)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)
        sb3_check_env(env.unwrapped)
    unexpected = [str(w.message) for w in caught if SB3_SHAPE_WARNING not in str(w.message)]
    unexpected = [message for message in unexpected if SB3_BOX_WARNING not in message]
    assert unexpected == []
    assert env.observation_space[MARKET_KEY].shape == (window, len(env.unwrapped.feature_names))


def test_make_default_and_episode_of_252_steps():
    env = gym.make(ENV_ID)
    obs, info = env.reset(seed=3)
    unwrapped = env.unwrapped
    assert unwrapped.data.n_assets == 3 and env.action_space.shape == (3,)
    assert env.observation_space[PORTFOLIO_KEY].shape == (10,)
    assert unwrapped.agent_names == ("learner_0", "momentum_0", "mean_reversion_1", "market_maker_2")
    assert env.observation_space.contains(obs)
    start, steps, done = info["t"], 0, False
    while not done:
        obs, _, terminated, truncated, info = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)
        steps += 1
        done = terminated or truncated
    assert truncated and steps == 252 and info["t"] == start + 252


def test_info_keys_every_step_and_reset():
    env = gym.make(ENV_ID, episode_length=5)
    _, info = env.reset(seed=0)
    for _ in range(5):
        assert set(INFO_KEYS) | {"timestamp"} | set(EXTRA_INFO_KEYS) <= set(info)
        assert info["positions"].shape == info["weights"].shape == info["impact"].shape == (3,)
        assert info["agent_pnl"].shape == info["agent_equity"].shape == (4,)
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
    assert truncated and not terminated


def test_seeded_resets_reproduce():
    def rollout(seed):
        env = gym.make(ENV_ID, episode_length=30)
        obs, info = env.reset(seed=seed)
        env.action_space.seed(seed)
        rewards, observations = [], [obs[PORTFOLIO_KEY]]
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            rewards.append(reward)
            observations.append(obs[PORTFOLIO_KEY])
            done = terminated or truncated
        return info["t"], rewards, np.array(observations)

    end, rewards, observations = rollout(7)
    again = rollout(7)
    assert again[0] == end and again[1] == rewards
    np.testing.assert_array_equal(again[2], observations)
    assert rollout(8)[0] != end  # a different random start


@pytest.mark.parametrize("window", [1, 6])
def test_no_look_ahead(window):
    """Perturbing every data value after t leaves every observation up to t unchanged (impact and heuristics on)."""
    data = make_regime_market(n_steps=160, n_assets=3, seed=5)
    normalizer = FeatureNormalizer.fit(compute_features(data.slice(0, 100)).values[40:])
    actions = np.random.default_rng(0).uniform(0, 1, size=(200, 3))
    assert_no_look_ahead(
        lambda market: MarketImpactEnv(
            data=market, window=window, normalizer=normalizer, episode_length=None, random_start=False, impact_coef=1.0
        ),
        data,
        actions,
        cut_points=(40, 77, 120, 150),
    )


def test_ppo_smoke():
    env = gym.make(ENV_ID, episode_length=100)
    model = PPO("MultiInputPolicy", env, n_steps=64, batch_size=64, n_epochs=1, policy_kwargs={"net_arch": [16]}, seed=0)
    model.learn(total_timesteps=256)
    obs, _ = env.reset(seed=0)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(action)
