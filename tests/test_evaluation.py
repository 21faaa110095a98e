"""Backtester, baselines and the metrics the main job reports."""

import json

import gymnasium as gym
import numpy as np
import pytest

import sb3_trading  # noqa: F401
from sb3_trading.data import MarketData, make_gbm_market
from sb3_trading.evaluation import (
    RandomPolicy,
    backtest,
    buy_and_hold,
    cash_baseline,
    compute_metrics,
    concat_results,
    env_baselines,
    equal_weight,
    random_baseline,
    regime_breakdown,
    volatility_regimes,
    yield_rates,
)
from sb3_trading.evaluation.metrics import (
    SHARPE_CAP,
    annual_return,
    calmar_ratio,
    conditional_value_at_risk,
    drawdown_periods,
    infer_periods_per_year,
    max_drawdown,
    max_drawdown_duration,
    rolling_sharpe,
    sharpe_ratio,
    sortino_ratio,
    value_at_risk,
)
from sb3_trading.evaluation.regimes import market_returns, rolling_volatility
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
    # a flat series: cash scores 0, a steady gain the cap (it ranks above every noisy series)
    assert m["sharpe"] == (SHARPE_CAP if returns[0] > 0 else 0.0)


def test_metrics_reject_bad_input():
    with pytest.raises(ValueError, match="at least one"):
        compute_metrics([])
    with pytest.raises(ValueError, match="non-finite"):
        compute_metrics([0.1, np.nan])


def test_periods_per_year_inference():
    # the calendar lives in sb3_trading.data.calendar (tests/test_calendar.py); evaluation re-exports it.
    # Issue 15: 7-day daily bars are 365 a year and hourly 24/7 bars 8,760 (they used to get 252 and 6,048)
    days = np.arange("2020-01-01", "2020-03-01", dtype="datetime64[D]")
    business = days[np.isin((days.astype(np.int64) + 3) % 7, range(5))]
    assert infer_periods_per_year(business) == 252
    assert infer_periods_per_year(days) == 365
    assert infer_periods_per_year(days[::7]) == 52
    hours = np.arange("2020-01-01T00", "2020-01-05T00", dtype="datetime64[h]")
    assert infer_periods_per_year(hours) == 365 * 24
    assert infer_periods_per_year(None) == 252
    from sb3_trading.data import calendar

    assert infer_periods_per_year is calendar.infer_periods_per_year


# ----------------------------------------------------------------------------- metrics by hand
def test_drawdown_durations_by_hand():
    # curve 1, 0.5, 1.0 (recovered exactly), 0.9, 0.81, 0.729, 0.729 (never recovers)
    r = np.array([-0.5, 1.0, -0.1, -0.1, -0.1, 0.0])
    periods = drawdown_periods(r)
    assert [(p["peak"], p["trough"], p["recovery"], p["duration"]) for p in periods] == [(0, 1, 2, 2), (2, 5, -1, 4)]
    assert periods[0]["depth"] == pytest.approx(0.5) and periods[1]["depth"] == pytest.approx(0.271)
    m = compute_metrics(r)
    assert m["max_drawdown"] == pytest.approx(0.5)
    assert m["max_drawdown_duration"] == 2  # the deepest drawdown: peak at 0, back at the peak on bar 2
    assert m["longest_drawdown"] == 4  # the unrecovered one runs from its peak (bar 2) to the end (bar 6)
    assert max_drawdown_duration(r) == 2
    assert compute_metrics([0.01, 0.02])["max_drawdown_duration"] == 0


def test_calmar_sortino_volatility_by_hand():
    r = np.array([0.10, -0.50, 0.20, 1.0, -0.10])  # curve 1, 1.1, .55, .66, 1.32, 1.188
    m = compute_metrics(r, periods_per_year=5)  # one year of data: CAGR = total return
    assert m["total_return"] == pytest.approx(0.188)
    assert m["annual_return"] == pytest.approx(0.188)
    assert m["max_drawdown"] == pytest.approx(0.5)
    assert m["calmar"] == pytest.approx(0.188 / 0.5)
    assert m["max_drawdown_duration"] == 3 and m["longest_drawdown"] == 3
    assert m["annual_volatility"] == pytest.approx(np.std(r, ddof=1) * np.sqrt(5))
    assert calmar_ratio(r, 5) == pytest.approx(0.376)
    s = np.array([0.02, -0.01, 0.03, -0.02])
    downside = np.sqrt((0.01**2 + 0.02**2) / 4)  # over all four bars, as empyrical
    assert sortino_ratio(s) == pytest.approx(0.005 / downside * np.sqrt(252))
    assert sharpe_ratio(s, 252, risk_free=0.001) == pytest.approx(0.004 / np.std(s, ddof=1) * np.sqrt(252))
    assert annual_return([0.01] * 12, 12) == pytest.approx(1.01**12 - 1)


def test_var_cvar_by_hand():
    r = np.linspace(-0.10, 0.10, 21)[::-1]  # order does not matter
    # 5th percentile of 21 points: position 20 * 0.05 = 1 -> the second lowest
    assert value_at_risk(r) == pytest.approx(-0.09)
    # empyrical: the int(20 * 0.05) + 1 = 2 lowest
    assert conditional_value_at_risk(r) == pytest.approx(-0.095)
    m = compute_metrics(r)
    assert m["var_5"] == pytest.approx(-0.09) and m["cvar_5"] == pytest.approx(-0.095)
    assert value_at_risk([0.01, -0.02, 0.03, 0.0]) == pytest.approx(-0.02 + 0.15 * 0.02)  # interpolated
    rng = np.random.default_rng(0)
    for n in (5, 20, 21, 99, 250):
        x = rng.normal(size=n)
        assert conditional_value_at_risk(x) <= value_at_risk(x)
    with pytest.raises(ValueError, match="tail"):
        value_at_risk(r, tail=1.5)


def test_hit_win_exposure_turnover_by_hand():
    r = np.array([0.01, -0.02, 0.03, 0.0])
    weights = np.array([[0.5, -0.5], [1.0, 0.0], [0.2, 0.3], [0.0, 0.0]])
    m = compute_metrics(r, 252, turnover=[1.0, 0.5, 0.0, 0.5], costs=[1.0, 2.0, 0.0, 0.5], weights=weights)
    assert m["hit_rate"] == pytest.approx(0.5)  # 2 of 4 bars
    assert m["win_rate"] == pytest.approx(2 / 3)  # 2 of 3 non-flat bars (quantstats)
    assert m["exposure"] == pytest.approx((1.0 + 1.0 + 0.5 + 0.0) / 4)
    assert m["net_exposure"] == pytest.approx((0.0 + 1.0 + 0.5 + 0.0) / 4)
    assert m["mean_turnover"] == pytest.approx(0.5) and m["annual_turnover"] == pytest.approx(126.0)
    assert m["total_costs"] == pytest.approx(3.5)


def test_rolling_sharpe():
    r = np.array([0.01, 0.02, 0.0, 0.0, 0.0, -0.01])
    out = rolling_sharpe(r, 3, 252)
    assert np.isnan(out[:2]).all()
    assert out[2] == pytest.approx(np.mean(r[:3]) / np.std(r[:3], ddof=1) * np.sqrt(252))
    assert out[4] == 0.0  # a flat window
    with pytest.raises(ValueError, match="window"):
        rolling_sharpe(r, 1)


@pytest.mark.parametrize("returns", [[0.05], [-0.05], [0.0], [-0.01, -0.01]])
def test_metrics_single_bar_and_constant_series(returns):
    m = compute_metrics(returns, weights=np.zeros((len(returns), 2)))
    assert all(np.isfinite(v) for v in m.values()), m
    assert m["annual_volatility"] == 0.0 and m["sharpe"] == np.sign(returns[0]) * SHARPE_CAP and m["calmar"] >= -np.inf
    assert m["var_5"] == pytest.approx(returns[0]) and m["cvar_5"] == pytest.approx(returns[0])


def test_all_zero_returns_are_all_zero():
    m = compute_metrics(np.zeros(10), turnover=np.zeros(10), costs=np.zeros(10), weights=np.zeros((10, 3)))
    assert {k: v for k, v in m.items() if k != "n_periods"} == dict.fromkeys(set(m) - {"n_periods"}, 0.0)


def test_annual_return_overflow_warns_and_ruin_is_minus_one():
    with pytest.warns(RuntimeWarning, match="overflows"):
        assert annual_return([1000.0]) == np.inf  # 1001 ** 252 > 1e308
    assert annual_return([-1.0, 0.5]) == -1.0
    assert compute_metrics([-1.0, 0.5])["annual_return"] == -1.0
    with pytest.raises(ValueError, match="periods_per_year"):
        compute_metrics([0.1], periods_per_year=0)


# ----------------------------------------------------------------------------- backtester
def test_backtest_records_positions_trades_and_cash():
    data = make_gbm_market(n_steps=120, n_assets=3, seed=4)
    env = gym.make("sb3_trading/MultiAsset-v0", data=data)
    result = random_baseline(env, seed=3)
    n = result.n_steps
    assert result.positions.shape == result.trades.shape == (n, 3) and result.cash.shape == (n + 1,)
    np.testing.assert_allclose(np.cumsum(result.trades, axis=0), result.positions, atol=1e-9)
    marks = data.prices[result.t[1:]]
    np.testing.assert_allclose(result.cash[1:] + np.sum(result.positions * marks, axis=1), result.equity[1:], rtol=1e-10)
    np.testing.assert_allclose(result.drawdown, 1 - result.equity / np.maximum.accumulate(result.equity), atol=1e-12)
    assert result.asset_names == data.asset_names and result.market is data
    frame = result.to_frame()
    assert len(frame) == n and "weight[asset_0]" in frame.columns
    again = random_baseline(gym.make("sb3_trading/MultiAsset-v0", data=data), seed=3)
    np.testing.assert_array_equal(again.equity, result.equity)
    other = random_baseline(gym.make("sb3_trading/MultiAsset-v0", data=data), seed=4)
    assert not np.array_equal(other.equity, result.equity)
    assert result.to_dict()["periods_per_year"] == 252


def test_backtest_from_env_id_and_data_matches_a_built_env():
    data = make_gbm_market(n_steps=200, n_assets=2, seed=5)
    train, test = data.split(0.6)
    normalizer = gym.make("sb3_trading/MultiAsset-v0", data=train).unwrapped.normalizer
    policy = ConstantPolicy([0.5, -0.25])
    by_id = backtest(policy, "sb3_trading/MultiAsset-v0", data=test, normalizer=normalizer, env_kwargs={"commission_bps": 3})
    env = gym.make("sb3_trading/MultiAsset-v0", data=test, normalizer=normalizer, commission_bps=3)
    np.testing.assert_allclose(by_id.equity, backtest(policy, env).equity, rtol=1e-12)
    assert by_id.t[-1] == test.n_steps - 1  # the whole slice
    sliced = backtest(
        policy,
        "sb3_trading/MultiAsset-v0",
        data=data,
        normalizer=normalizer,
        env_kwargs={"commission_bps": 3},
        start=120,
        stop=200,
    )
    np.testing.assert_allclose(sliced.equity, by_id.equity, rtol=1e-12)
    with pytest.raises(ValueError, match="normalizer"):
        backtest(policy, "sb3_trading/MultiAsset-v0", data=test)
    with pytest.raises(ValueError, match="data="):
        backtest(policy, "sb3_trading/MultiAsset-v0", normalizer=None)


def test_yield_accrual_in_baselines_by_hand():
    n, apy = 30, 0.0252
    prices = np.ones((n, 2))
    features = np.full((n, 2), apy)
    data = MarketData(prices=prices, features=features, asset_names=["a", "b"], feature_names=["apy[a]", "apy[b]"])
    rates = yield_rates(data, periods_per_year=252)
    np.testing.assert_allclose(rates, 1e-4)
    for fn in (buy_and_hold, equal_weight):
        result = fn(data, initial_cash=1_000.0, costs=CostModel(0.0, 0.0), rates=rates)
        np.testing.assert_allclose(result.equity, 1_000.0 * 1.0001 ** np.arange(n), rtol=1e-12)
        assert fn(data, initial_cash=1_000.0, costs=CostModel(0.0, 0.0)).metrics["total_return"] == 0.0
    with pytest.raises(ValueError, match="APY"):
        yield_rates(make_gbm_market(n_steps=10, n_assets=2, seed=0))
    with pytest.raises(ValueError, match="shape"):
        buy_and_hold(data, rates=rates[:, :1])


def test_env_baselines_use_the_env_costs_assets_and_yield():
    env = gym.make("sb3_trading/YieldAllocation-v0", episode_length=60)
    base = env.unwrapped
    agent = backtest(ConstantPolicy(np.zeros(base.n_assets)), env)
    start, stop = int(agent.t[0]), int(agent.t[-1])
    results = env_baselines(env, start, stop, ("cash", "equal_weight"), random_seed=1)
    assert list(results) == ["cash", "equal_weight", "random"]
    expected = equal_weight(base.data, start, stop, base.initial_cash, base.costs, rates=yield_rates(base.data, 252))
    np.testing.assert_allclose(results["equal_weight"].equity, expected.equity, rtol=1e-12)
    no_yield = equal_weight(base.data, start, stop, base.initial_cash, base.costs)
    assert results["equal_weight"].metrics["total_return"] > no_yield.metrics["total_return"]
    assert results["cash"].metrics["total_return"] == 0.0
    # the agent (equal softmax weights, inside the bounds) and the equal-weight baseline earn the same yield
    assert agent.metrics["total_return"] == pytest.approx(results["equal_weight"].metrics["total_return"], abs=2e-4)
    with pytest.raises(ValueError, match="unknown baselines"):
        env_baselines(env, start, stop, ("momentum",))


def test_concat_results_compounds_the_pieces():
    data = make_gbm_market(n_steps=100, n_assets=2, seed=6)
    a, b = equal_weight(data, 0, 40), equal_weight(data, 50, 99)
    stitched = concat_results([a, b], name="oos")
    np.testing.assert_array_equal(stitched.returns, np.concatenate([a.returns, b.returns]))
    assert stitched.equity[-1] == pytest.approx(
        a.equity[0] * (1 + a.metrics["total_return"]) * (1 + b.metrics["total_return"])
    )
    np.testing.assert_array_equal(stitched.benchmark_returns, np.concatenate([a.benchmark_returns, b.benchmark_returns]))
    expected = compute_metrics(
        stitched.returns,
        turnover=stitched.turnover,
        costs=stitched.costs,
        weights=stitched.weights,
        benchmark=stitched.benchmark_returns,
    )
    assert stitched.metrics == pytest.approx(expected)
    # the default benchmark is the buy-and-hold of the traded assets over the same marks
    marks = data.prices[a.t]
    value = (marks / marks[0]).mean(axis=1)
    np.testing.assert_allclose(a.benchmark_returns, value[1:] / value[:-1] - 1.0, rtol=1e-12)
    assert {"alpha", "beta", "tracking_error", "information_ratio", "correlation"} <= set(a.metrics)
    assert stitched.t[0] == 0 and stitched.t[-1] == 99 and stitched.name == "oos" and len(stitched.t) == 40 + 49 + 1


# ----------------------------------------------------------------------------- regimes
def _vol_market(n=600, seed=0):
    """Volatility 0.5 %, then 1 %, then 2 % per bar, in thirds."""
    rng = np.random.default_rng(seed)
    sigma = np.repeat([0.005, 0.01, 0.02], n // 3)
    prices = 100 * np.exp(np.cumsum(sigma * rng.standard_normal(n)))
    return MarketData(prices=np.stack([prices, prices], axis=1))


def test_volatility_regimes_follow_the_market():
    data = _vol_market()
    result = equal_weight(data, 30, 599)
    labels, thresholds = volatility_regimes(result, window=20)
    assert thresholds[0] < thresholds[1]
    assert np.bincount(labels, minlength=3).tolist() == pytest.approx([190, 190, 189], abs=2)
    # the regimes are mostly where the volatility was set
    rows = result.t[:-1]
    assert np.mean(labels[rows < 200] == 0) > 0.8 and np.mean(labels[rows >= 420] == 2) > 0.8
    table = regime_breakdown(result, window=20)
    regimes = table["regimes"]
    assert sum(regimes[r]["n_periods"] for r in ("low", "mid", "high")) == result.n_steps
    assert regimes["low"]["annual_volatility"] < regimes["mid"]["annual_volatility"] < regimes["high"]["annual_volatility"]
    fixed = regime_breakdown(result, window=20, thresholds=(0.0, 1.0))  # everything "mid"
    assert fixed["regimes"]["mid"]["n_periods"] == result.n_steps
    assert fixed["regimes"]["low"] == {"n_periods": 0.0, "share": 0.0}
    with pytest.raises(ValueError, match="method"):
        volatility_regimes(result, method="garch")


def test_rolling_volatility_is_causal():
    data = _vol_market(n=300, seed=1)
    returns = market_returns(data)
    vol = rolling_volatility(returns, 10)
    assert np.isnan(vol[:2]).all() and np.isfinite(vol[2:]).all()
    assert vol[50] == pytest.approx(np.std(returns[41:51], ddof=1))
    changed = returns.copy()
    changed[150:] *= 5.0
    np.testing.assert_array_equal(rolling_volatility(changed, 10)[:150], vol[:150])


def test_hmm_regimes_need_hmmlearn(monkeypatch):
    import sys

    result = equal_weight(_vol_market(n=150), 20, 149)
    monkeypatch.setitem(sys.modules, "hmmlearn", None)
    monkeypatch.setitem(sys.modules, "hmmlearn.hmm", None)
    with pytest.raises(ImportError, match=r'pip install "sb3-trading\[hmm\]"'):
        volatility_regimes(result, method="hmm")


def test_hmm_regimes():
    pytest.importorskip("hmmlearn")
    result = equal_weight(_vol_market(n=600, seed=2), 30, 599)
    table = regime_breakdown(result, method="hmm")
    regimes = table["regimes"]
    assert table["thresholds"] is None
    assert sum(regimes[r]["n_periods"] for r in ("low", "mid", "high")) == result.n_steps
    vols = [regimes[r]["annual_volatility"] for r in ("low", "high") if regimes[r]["n_periods"] > 1]
    assert vols == sorted(vols)


def test_invalid_action_rate_on_masked_envs():
    """Masks honoured -> 0; a policy that ignores them picks masked no-ops and the rate says how often."""

    class IgnoresMasks:
        def __init__(self, space):
            self.inner = RandomPolicy(space, seed=0)

        def predict(self, observation, state=None, episode_start=None, deterministic=True):
            return self.inner.predict(observation)

    env = gym.make("sb3_trading/MaskedTrading-v0", window=20, episode_length=120, random_start=False, max_drawdown=0.01)
    honoured = backtest(RandomPolicy(env.action_space, seed=0), env, deterministic=False)
    ignored = backtest(IgnoresMasks(env.action_space), env, deterministic=False)
    assert honoured.metrics["invalid_action_rate"] == 0.0
    assert 0.0 < ignored.metrics["invalid_action_rate"] < 1.0
    assert "invalid_action_rate" not in backtest(ConstantPolicy(np.zeros(5)), gym.make("sb3_trading/MultiAsset-v0")).metrics


# ----------------------------------------------------------------------------- calendar and risk-free rate (issue 15)
def _hourly_market(n=300, n_assets=2, seed=0):
    rng = np.random.default_rng(seed)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0002, 0.004, (n, n_assets)), axis=0))
    return MarketData(prices=prices, timestamps=np.arange(n).astype("timedelta64[h]") + np.datetime64("2021-01-04T00"))


def test_env_backtests_and_baselines_use_the_env_data_calendar():
    data = _hourly_market()
    assert data.periods_per_year == 8760
    env = gym.make("sb3_trading/MultiAsset-v0", data=data, window=2)
    agent = backtest(ConstantPolicy(np.ones(2)), env, risk_free=0.04)
    start, stop = int(agent.t[0]), int(agent.t[-1])
    results = {"agent": agent, **env_baselines(env, start, stop, ("cash", "equal_weight"), random_seed=0, risk_free=0.04)}
    for name, result in results.items():
        assert result.periods_per_year == 8760 and result.calendar == data.calendar, name
        assert result.risk_free == 0.04, name
        excess = result.returns - (1.04 ** (1 / 8760) - 1)
        sd = excess.std(ddof=1)
        expected = excess.mean() / sd * np.sqrt(8760) if sd > 1e-15 else np.sign(excess.mean()) * SHARPE_CAP
        assert result.metrics["sharpe"] == pytest.approx(expected, rel=1e-9, abs=1e-12), name
    # cash earns nothing: a certain loss against 4 % a year ranks below every strategy with the same calendar
    assert results["cash"].metrics["sharpe"] == -SHARPE_CAP
    with pytest.raises(ValueError, match="risk_free"):
        backtest(ConstantPolicy(np.ones(2)), env, risk_free=-1.5)


def test_report_states_the_calendar_and_the_risk_free_rate(tmp_path):
    from sb3_trading.commands.backtest import format_summary
    from sb3_trading.evaluation import write_report

    data = _hourly_market(n=200, seed=4)
    results = {
        "buy_and_hold": buy_and_hold(data, 0, 199, risk_free=0.04),
        "equal_weight": equal_weight(data, 0, 199, risk_free=0.04),
    }
    report = write_report(results, tmp_path, n_boot=50, plots=False, regimes=False)
    written = json.loads((tmp_path / "report.json").read_text())
    for r in (report, written):
        assert r["calendar"]["periods_per_year"] == 8760 and "24/7" in r["calendar"]["calendar"]
        assert r["risk_free"]["annual"] == 0.04
        assert r["risk_free"]["per_period"] == pytest.approx(1.04 ** (1 / 8760) - 1, rel=1e-12)
        assert "(1 + risk_free) ** (1 / periods_per_year) - 1" in r["risk_free"]["formula"]
        for entry in r["strategies"].values():
            assert entry["periods_per_year"] == 8760 and entry["risk_free"] == 0.04
            # the bootstrap CI is of the same (excess-return) Sharpe as the metrics
            assert entry["ci"]["sharpe"]["estimate"] == pytest.approx(entry["metrics"]["sharpe"], rel=1e-9)
    html = (tmp_path / "report.html").read_text()
    assert "8760 bars/year" in html and "risk-free rate 4.00%/year" in html
    summary = format_summary(report)
    assert "8760 bars/year" in summary and "risk-free rate 4.00%/year" in summary
    # the default rate is stated too
    plain = write_report({"bh": buy_and_hold(data, 0, 199)}, tmp_path / "plain", n_boot=0, plots=False)
    assert plain["risk_free"]["annual"] == 0.0 and "risk-free rate 0.00%/year" in format_summary(plain)


def test_concat_results_refuses_mixed_calendars_and_rates():
    data = make_gbm_market(n_steps=100, n_assets=2, seed=6)
    a = equal_weight(data, 0, 40)
    with pytest.raises(ValueError, match="periods_per_year"):
        concat_results([a, equal_weight(data, 50, 99, periods_per_year=365)])
    with pytest.raises(ValueError, match="risk_free"):
        concat_results([a, equal_weight(data, 50, 99, risk_free=0.02)])
    stitched = concat_results([equal_weight(data, 0, 40, risk_free=0.02), equal_weight(data, 50, 99, risk_free=0.02)])
    assert stitched.risk_free == 0.02 and stitched.metrics["sharpe"] == pytest.approx(
        compute_metrics(stitched.returns, 252, risk_free=0.02)["sharpe"]
    )


def test_regime_metrics_use_the_result_risk_free_rate():
    result = equal_weight(_vol_market(n=300, seed=1), 20, 299, risk_free=0.05)
    table = regime_breakdown(result, window=10)["regimes"]
    labels, _ = volatility_regimes(result, window=10)
    mask = labels == 2
    expected = compute_metrics(result.returns[mask], 252, risk_free=0.05)["sharpe"]
    assert table["high"]["sharpe"] == pytest.approx(expected, rel=1e-12)
