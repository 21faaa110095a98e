"""Backtester, baselines and the metrics the main job reports."""

import gymnasium as gym
import numpy as np
import pytest

import sb3_trading  # noqa: F401
from sb3_trading.data import MarketData, make_gbm_market
from sb3_trading.evaluation import RandomPolicy, backtest, buy_and_hold, cash_baseline, compute_metrics, equal_weight
from sb3_trading.evaluation.metrics import infer_periods_per_year, max_drawdown
from sb3_trading.sim import CostModel


class ConstantPolicy:
    def __init__(self, action):
        self.action = np.asarray(action, dtype=np.float32)

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        return self.action, None


def test_equal_weight_baseline_matches_the_env_with_all_ones():
    """Two code paths, one accounting core: the baseline and MultiAsset-v0 with a = 1 agree exactly."""
    data = make_gbm_market(n_steps=300, n_assets=4, seed=2)
    env = gym.make("sb3_trading/MultiAsset-v0", data=data, commission_bps=7.0, slippage_bps=3.0)
    agent = backtest(ConstantPolicy(np.ones(4)), env)
    baseline = equal_weight(data, int(agent.t[0]), int(agent.t[-1]), costs=CostModel(7.0, 3.0))
    np.testing.assert_allclose(agent.equity, baseline.equity, rtol=1e-12)
    np.testing.assert_allclose(agent.costs, baseline.costs, rtol=1e-12, atol=1e-12)
    assert agent.metrics == pytest.approx(baseline.metrics)


def test_buy_and_hold_by_hand():
    prices = np.array([[100.0, 50.0], [110.0, 50.0], [121.0, 25.0]])
    result = buy_and_hold(MarketData(prices=prices), initial_cash=1_000.0, costs=CostModel(0.0, 0.0))
    # 5 shares of A, 10 of B
    np.testing.assert_allclose(result.equity, [1_000.0, 5 * 110 + 10 * 50, 5 * 121 + 10 * 25], rtol=1e-12)
    np.testing.assert_allclose(result.turnover, [1.0, 0.0])
    with_costs = buy_and_hold(MarketData(prices=prices), initial_cash=1_000.0, costs=CostModel(10.0, 0.0))
    assert with_costs.costs[0] == pytest.approx(1.0) and with_costs.costs[1] == 0.0


def test_cash_baseline_is_flat():
    result = cash_baseline(make_gbm_market(n_steps=50, n_assets=2, seed=0), start=5)
    np.testing.assert_array_equal(result.returns, 0.0)
    assert result.metrics["sharpe"] == 0.0 and result.metrics["max_drawdown"] == 0.0


def test_random_policy_is_seeded():
    env = gym.make("sb3_trading/MultiAsset-v0", episode_length=30)
    a = backtest(RandomPolicy(env.action_space, seed=1), env, seed=0)
    b = backtest(RandomPolicy(env.action_space, seed=1), env, seed=0)
    np.testing.assert_array_equal(a.equity, b.equity)


@pytest.mark.filterwarnings("ignore:.*render_mode.*")
def test_backtest_rejects_vector_envs():
    from stable_baselines3.common.env_util import make_vec_env

    vec_env = make_vec_env("sb3_trading/MultiAsset-v0", n_envs=1)  # SB3's default path works
    with pytest.raises(TypeError, match="single env"):
        backtest(ConstantPolicy([0.0] * 5), vec_env)


def test_metrics_by_hand():
    r = np.array([0.01, -0.02, 0.03, 0.0])
    m = compute_metrics(r, periods_per_year=252)
    assert m["total_return"] == pytest.approx(1.01 * 0.98 * 1.03 - 1)
    assert m["sharpe"] == pytest.approx(np.mean(r) / np.std(r, ddof=1) * np.sqrt(252))
    assert m["sortino"] == pytest.approx(np.mean(r) / np.sqrt(np.mean(np.minimum(r, 0) ** 2)) * np.sqrt(252))
    assert m["max_drawdown"] == pytest.approx(0.02)
    assert m["cvar_5"] == pytest.approx(-0.02)
    assert m["hit_rate"] == pytest.approx(0.5)
    assert max_drawdown([0.1, -0.5, 0.2]) == pytest.approx(0.5)


@pytest.mark.parametrize("returns", [[0.0], [0.0, 0.0, 0.0], [0.01, 0.01, 0.01]])
def test_metrics_edge_cases_are_defined(returns):
    m = compute_metrics(returns)
    assert all(np.isfinite(v) for v in m.values())
    assert m["sharpe"] == 0.0


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        compute_metrics([])
    with pytest.raises(ValueError, match="non-finite"):
        compute_metrics([0.1, np.nan])


def test_periods_per_year_inference():
    days = np.arange("2020-01-01", "2020-03-01", dtype="datetime64[D]")
    assert infer_periods_per_year(days) == 252
    assert infer_periods_per_year(days[::7]) == 52
    hours = np.arange("2020-01-01T00", "2020-01-05T00", dtype="datetime64[h]")
    assert infer_periods_per_year(hours) == 252 * 24
    assert infer_periods_per_year(None) == 252
