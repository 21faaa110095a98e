"""Market rules of YieldAllocation-v0 and MarketImpact-v0 (and the sims and baselines behind them): the
proportional and constant frictions they take, priced by hand, and the rules they refuse by name."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sb3_trading.data import MarketData, make_regime_market, make_yield_market
from sb3_trading.envs.market_impact import MarketImpactEnv
from sb3_trading.envs.yield_allocation import YieldAllocationEnv
from sb3_trading.evaluation.baselines import buy_and_hold, equal_weight
from sb3_trading.sim import CostModel
from sb3_trading.sim.accrual import friction_rates, self_financing_value
from sb3_trading.sim.frictions import ADVERSE, COMMISSION, IMPACT, N_BAR_FIELDS, MarketRules, build_frictions
from sb3_trading.sim.impact import HeuristicTrader, ImpactMarket
from sb3_trading.sim.kernels import order_cost, self_financing_kernel
from sb3_trading.vec import make_vec_env

E0 = 10_000.0


# --------------------------------------------------------------------------- YieldAllocation-v0
def yield_env(prices=None, **kwargs) -> YieldAllocationEnv:
    """Two assets, no yield, prices flat at ``prices`` (row 0 warms up the 'return' indicator)."""
    prices = np.ones((4, 2)) if prices is None else np.asarray(prices, dtype=np.float64)
    data = MarketData(
        prices=prices, features=np.zeros(prices.shape), asset_names=["A", "B"], feature_names=["apy[A]", "apy[B]"]
    )
    kwargs = {
        "initial_cash": E0,
        "indicators": ["return"],
        "normalizer": None,
        "lower_bound": 0.0,
        "upper_bound": 1.0,
        "depeg_penalty": 0.0,
        **kwargs,
    }
    return YieldAllocationEnv(data=data, **kwargs)


def test_yield_commission_and_half_spread_match_a_hand_rebalance():
    env = yield_env(prices=[[1.0, 2.0]] * 4, peg=[1.0, 2.0], costs={"commission_bps": 5, "half_spread_bps": 2})
    assert env.costs == CostModel(commission_bps=5.0, half_spread_bps=2.0)
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.zeros(2))  # softmax of equal scores: w = [0.5, 0.5]
    # from all cash every trade is a buy: each unit of mid notional bought costs a + c (1 + a)
    a, c = 2e-4, 5e-4
    rate = a + c * (1.0 + a)
    value = E0 / (1.0 + rate)  # V + rate * V = E0: the rebalance pays its own costs
    np.testing.assert_allclose(info["positions"], [0.5 * value / 1.0, 0.5 * value / 2.0], rtol=1e-13)
    assert info["costs"] == pytest.approx(E0 - value, rel=1e-12)
    assert info["costs"] == pytest.approx(rate * value, rel=1e-12)
    assert info["cash"] == pytest.approx(0.0, abs=1e-9)
    assert info["equity"] == pytest.approx(value, rel=1e-13)  # flat prices, no yield: marked at the mid
    assert reward == pytest.approx(value / E0 - 1.0, rel=1e-12)


def test_yield_default_costs_and_the_commission_shortcut():
    assert yield_env().costs == CostModel(commission_bps=5.0)
    assert yield_env(rebalance_cost_bps=7.0).costs == CostModel(commission_bps=7.0)
    # a dict without a commission takes the env's default; the shortcut fills a dict without one
    assert yield_env(costs={"half_spread_bps": 2}).costs == CostModel(commission_bps=5.0, half_spread_bps=2.0)
    assert yield_env(rebalance_cost_bps=7.0, costs={"slippage_bps": 1}).costs == CostModel(7.0, 1.0)
    assert yield_env(slippage_bps=3.0).costs == CostModel(5.0, 3.0)
    with pytest.raises(ValueError, match="rebalance_cost_bps"):
        yield_env(rebalance_cost_bps=7.0, costs=CostModel(commission_bps=3.0))
    with pytest.raises(ValueError, match="rebalance_cost_bps"):
        yield_env(rebalance_cost_bps=7.0, costs={"commission_bps": 3.0})


def test_yield_fixed_fee_per_order_is_paid_out_of_the_rebalance():
    env = yield_env(rebalance_cost_bps=0.0, costs={"fixed_fee": 2.0})
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(2))  # w = [0.5, 0.5], two orders from all cash
    value = E0 - 2 * 2.0  # V + F(V) = E0 with F = two fixed fees
    np.testing.assert_allclose(info["positions"], [0.5 * value, 0.5 * value], rtol=1e-13)
    assert info["costs"] == pytest.approx(4.0, rel=1e-12)
    assert info["cash"] == pytest.approx(0.0, abs=1e-9)
    # the same weights again at the same prices: nothing trades, nothing is paid
    _, _, _, _, info = env.step(np.zeros(2))
    assert info["costs"] == 0.0 and info["equity"] == pytest.approx(value, rel=1e-13)


@pytest.mark.parametrize(("min_fee", "binds"), [(8.0, True), (1.0, False)])
def test_yield_minimum_fee_replaces_a_smaller_commission(min_fee, binds):
    env = yield_env(rebalance_cost_bps=10.0, costs={"min_fee": min_fee})
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.zeros(2))
    c = 1e-3
    # each asset buys 0.5 V: a commission of 0.5 c V ~ 5, so a minimum of 8 is paid instead, one of 1 is not
    value = E0 - 2 * min_fee if binds else E0 / (1.0 + c)
    assert (0.5 * c * value < min_fee) == binds
    np.testing.assert_allclose(info["positions"], [0.5 * value, 0.5 * value], rtol=1e-12)
    assert info["costs"] == pytest.approx(E0 - value, rel=1e-9)
    assert info["cash"] == pytest.approx(0.0, abs=1e-8)


@settings(max_examples=100, deadline=None)
@given(
    equity=st.floats(100.0, 1e6),
    weights=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
    held=st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
    commission=st.sampled_from([0.0, 5e-4, 2e-3]),
    adverse=st.sampled_from([0.0, 3e-4]),
    fixed=st.sampled_from([0.0, 1.0, 25.0]),
    minimum=st.sampled_from([0.0, 2.0, 40.0]),
)
def test_self_financing_with_fees_is_the_largest_value_its_frictions_allow(
    equity, weights, held, commission, adverse, fixed, minimum
):
    """V + F(V) = equity (F priced as the core's order_cost charges it), and any larger V costs more than the equity."""
    w = np.array([weights]) / max(sum(weights), 1.0)
    held_values = np.array([held]) * equity / max(sum(held), 1.0)  # a book worth at most the equity
    value = self_financing_kernel(np.array([equity]), w, held_values, commission, adverse, fixed, minimum)[0][0]
    rules = CostModel(fixed_fee=fixed, min_fee=minimum).rules()
    rules[COMMISSION] = commission
    bars = np.zeros((N_BAR_FIELDS, 3))
    bars[ADVERSE] = adverse

    def total(v: float) -> float:  # V + F(V), each order priced at a mid of 1
        return v + sum(order_cost(v * w[0, i] - held_values[0, i], 1.0, bars, i, rules) for i in range(3))

    assert value >= 0.0
    if value > 0.0:
        assert total(value) == pytest.approx(equity, rel=1e-9)
    # V = 0: selling out costs more than the equity, or the first share bought would (its fees)
    larger = value * (1 + 1e-7) + 1e-6
    assert total(larger) > equity


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"costs": {"impact_k": 1}}, "impact_k"),
        ({"costs": {"lot_size": 1}}, "lot_size"),
        ({"costs": {"participation": 0.1}}, "participation"),
        ({"margin": {"max_leverage": 2.0}}, "margin"),
    ],
)
def test_yield_refuses_rules_beyond_proportional_costs_by_name(kwargs, name):
    with pytest.raises(ValueError, match=name) as error:
        yield_env(**kwargs)
    assert "MultiAsset-v0" in str(error.value)


def test_yield_cash_of_a_sized_down_book_earns_interest_compounding():
    """financing: with half the book in cash (exposure_scale 0.5, as a sizing wrapper sets it), flat prices and no
    costs, every bar the cash earns cash_rate / periods_per_year, so equity compounds at half that rate."""
    n_bars = 6
    env = yield_env(prices=np.ones((n_bars + 2, 2)), rebalance_cost_bps=0.0, financing={"cash_rate": 0.0504})
    env.exposure_scale = 0.5
    env.reset(seed=0)
    rate = 0.0504 / 252  # the data's calendar: 252 bars a year
    equity = E0
    for _ in range(n_bars):
        _, reward, _, _, info = env.step(np.zeros(2))
        assert info["financing"] == pytest.approx(0.5 * equity * rate, rel=1e-12)  # the cash is half the equity
        equity *= 1 + 0.5 * rate
        assert info["equity"] == pytest.approx(equity, rel=1e-12)
        assert reward == pytest.approx(0.5 * rate, rel=1e-9)
    assert equity == pytest.approx(E0 * (1 + 0.5 * rate) ** n_bars, rel=1e-12)
    # fully invested (the default scale): no cash, no interest
    full = yield_env(rebalance_cost_bps=0.0, financing={"cash_rate": 0.0504})
    full.reset(seed=0)
    assert full.step(np.zeros(2))[4]["financing"] == pytest.approx(0.0, abs=1e-9)


def yield_ohlc_env(low_a: float, open_a: float = 1.0, **kwargs) -> YieldAllocationEnv:
    """Two assets with closes flat at ``(1, 2)`` over five bars; asset A's bar 2 opens at ``open_a`` and trades down
    to ``low_a``."""
    closes = np.array([[1.0, 2.0]] * 5)
    open_, high, low = closes.copy(), closes.copy(), closes.copy()
    open_[2, 0], low[2, 0] = open_a, min(low_a, open_a)
    data = MarketData(
        prices=closes,
        open=open_,
        high=high,
        low=low,
        features=np.zeros(closes.shape),
        asset_names=["A", "B"],
        feature_names=["apy[A]", "apy[B]"],
    )
    kwargs = {"initial_cash": E0, "indicators": ["return"], "normalizer": None, "depeg_penalty": 0.0, **kwargs}
    return YieldAllocationEnv(data=data, lower_bound=0.0, upper_bound=1.0, peg=[1.0, 2.0], **kwargs)


@pytest.mark.parametrize(("open_a", "fill"), [(1.0, 0.98), (0.95, 0.95)])
def test_yield_stop_loss_sells_to_cash_at_the_level_or_the_gap_open(open_a, fill):
    env = yield_ohlc_env(low_a=0.97, open_a=open_a, brackets={"stop_loss": 0.02})
    env.reset(seed=0)
    _, reward, _, _, info = env.step(np.zeros(2))  # w = [0.5, 0.5] at the close of bar 1, then bar 2
    c = 5e-4  # the default commission; no spread or slippage, so the entry is the mid and the stop is 0.98
    value = E0 / (1.0 + c)
    shares_a = 0.5 * value
    proceeds = shares_a * fill * (1.0 - c)
    assert info["bracket_exits"] == 1
    np.testing.assert_allclose(info["positions"], [0.0, 0.5 * value / 2.0], rtol=1e-13)
    assert info["cash"] == pytest.approx(proceeds, rel=1e-12)
    assert info["costs"] == pytest.approx(c * value + c * shares_a * fill, rel=1e-12)
    assert info["equity"] == pytest.approx(proceeds + 0.5 * value, rel=1e-12)
    assert reward == pytest.approx(info["equity"] / E0 - 1.0, rel=1e-12)


def test_yield_brackets_untouched_leave_the_hand_rebalance_and_need_ohlc():
    plain, bracketed = yield_ohlc_env(low_a=1.0), yield_ohlc_env(low_a=0.99, brackets={"stop_loss": 0.02})
    for env in (plain, bracketed):
        env.reset(seed=0)
    _, r_plain, _, _, i_plain = plain.step(np.zeros(2))
    _, r_bracketed, _, _, i_bracketed = bracketed.step(np.zeros(2))
    assert i_bracketed["bracket_exits"] == 0 and "bracket_exits" not in i_plain
    assert r_plain == r_bracketed and i_plain["equity"] == i_bracketed["equity"]  # bit for bit
    with pytest.raises(ValueError, match="open, high and low"):
        yield_env(brackets={"stop_loss": 0.02})


def make_yield_ohlc(seed: int) -> MarketData:
    """The synthetic yield market (300 bars) with bars that open at the previous close and range 0.3 % past it."""
    data = make_yield_market(n_steps=300, seed=seed)
    closes = data.prices
    open_ = np.vstack([closes[:1], closes[:-1]])
    wiggle = 1.0 + 0.003 * np.random.default_rng(seed).uniform(size=closes.shape)
    return MarketData(
        prices=closes,
        open=open_,
        high=np.maximum(open_, closes) * wiggle,
        low=np.minimum(open_, closes) / wiggle,
        features=data.features,
        asset_names=data.asset_names,
        feature_names=data.feature_names,
    )


def test_yield_brackets_and_fees_batched_equals_single():
    costs = {"half_spread_bps": 3, "fixed_fee": 0.5, "min_fee": 2.0}
    kwargs = {"brackets": {"stop_loss": 0.002, "take_profit": 0.002}, "costs": costs}
    data = make_yield_ohlc(seed=3)
    actions = np.random.default_rng(0).uniform(-1, 1, size=(40, 3, data.n_assets)).astype(np.float32)
    singles = [YieldAllocationEnv(data=data, episode_length=50, **kwargs) for _ in range(3)]
    for k, env in enumerate(singles):
        env.reset(seed=10 + k)
    venv = make_vec_env(
        "sb3_trading/YieldAllocation-v0", 3, seed=10, env_kwargs={"data": data, "episode_length": 50, **kwargs}
    )
    venv.reset()
    exits = 0
    for step in range(40):
        _, rewards, dones, infos = venv.step(actions[step])
        for k, env in enumerate(singles):
            _, reward, terminated, truncated, info = env.step(actions[step, k])
            assert rewards[k] == pytest.approx(reward, rel=1e-12, abs=1e-15)
            if terminated or truncated:
                env.reset()
            else:
                assert infos[k]["equity"] == pytest.approx(info["equity"], rel=1e-12)
                exits += info["bracket_exits"]
    assert exits > 0  # the brackets did trigger


def test_self_financing_value_uses_the_adverse_move_prices_fees_and_refuses_impact():
    costs = CostModel(commission_bps=5.0, slippage_bps=1.0, half_spread_bps=2.0)
    a, c = 3e-4, 5e-4
    assert friction_rates(costs) == pytest.approx((a + c * (1 + a), a + c * (1 - a)), rel=1e-15)
    value = self_financing_value(np.array([E0]), np.array([[0.5, 0.5]]), np.zeros((1, 2)), np.ones(2), costs)
    assert value[0] == pytest.approx(E0 / (1.0 + a + c * (1 + a)), rel=1e-14)
    fees = CostModel(commission_bps=0.0, fixed_fee=1.0)  # fees per order are priced exactly: V = E0 - 2 fees
    value = self_financing_value(np.array([E0]), np.array([[0.5, 0.5]]), np.zeros((1, 2)), np.ones(2), fees)
    assert value[0] == pytest.approx(E0 - 2.0, rel=1e-14)
    with pytest.raises(ValueError, match="impact_k"):
        self_financing_value(np.array([E0]), np.array([[0.5, 0.5]]), np.zeros((1, 2)), np.ones(2), CostModel(impact_k=0.5))
    for bad in (CostModel(fixed_fee=1.0), CostModel(impact_k=0.5)):
        with pytest.raises(ValueError, match="proportional"):
            friction_rates(bad)


# --------------------------------------------------------------------------- MarketImpact-v0
def impact_data() -> MarketData:
    """Two assets; row 0 warms up the 'return' indicator, both rise 1.0101 % into row 1, then [101, 49], [100, 50]."""
    prices = np.array([[99.0, 49.5], [100.0, 50.0], [101.0, 49.0], [100.0, 50.0]])
    return MarketData(prices=prices, asset_names=["A", "B"])


def impact_kwargs(**kwargs) -> dict:
    """The arguments of :func:`impact_env` (also for vectorised envs of it)."""
    return {
        "data": impact_data(),
        "initial_cash": 100_000.0,
        "impact_coef": 0.0,
        # momentum buys both assets (both rose); mean reversion stays in cash (nothing fell)
        "traders": (HeuristicTrader("momentum", lookback=1), HeuristicTrader("mean_reversion", lookback=1)),
        "indicators": ["return"],
        "normalizer": None,
        "episode_length": None,
        "random_start": False,
        **kwargs,
    }


def impact_env(**kwargs) -> MarketImpactEnv:
    return MarketImpactEnv(**impact_kwargs(**kwargs))


def test_impact_fixed_fee_is_charged_per_asset_traded_per_agent():
    env = impact_env(costs={"commission_bps": 10, "fixed_fee": 2})
    assert env.costs == CostModel(commission_bps=10.0, fixed_fee=2.0)
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1.0, 0.0]))  # the learner buys A only: one order
    # learner: 1000 A at 100 -> 100,000 notional, 10 bps = 100, one fee of 2; P&L 1000 * (101 - 100) - 102
    # momentum [0.5, 0.5]: 500 A, 1000 B -> 100,000 notional, 100 + two fees; P&L 500 - 1000 - 104
    # mean reversion: no trade, no fee
    assert info["costs"] == pytest.approx(102.0, rel=1e-12)
    assert info["cash"] == pytest.approx(-102.0, rel=1e-12)
    np.testing.assert_allclose(info["positions"], [1000.0, 0.0], rtol=1e-15)
    np.testing.assert_allclose(info["agent_pnl"], [898.0, -604.0, 0.0], rtol=1e-12, atol=1e-9)
    assert info["pnl"] == pytest.approx(898.0, rel=1e-12)


def test_impact_min_fee_and_defaults():
    assert impact_env().costs == CostModel(10.0, 0.0)
    env = impact_env(costs={"commission_bps": 10, "min_fee": 150})
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.array([1.0, 0.0]))
    # the learner's one order: max(100, 150); momentum's two orders of 50,000 each: max(50, 150) twice
    assert info["costs"] == pytest.approx(150.0, rel=1e-12)
    np.testing.assert_allclose(info["agent_pnl"], [1000.0 - 150.0, -500.0 - 300.0, 0.0], rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"costs": {"impact_k": 1}}, "impact_k"),
        ({"costs": {"half_spread_bps": "data"}}, 'half_spread_bps="data"'),
        ({"costs": {"participation": 0.1}}, "participation"),
        ({"costs": {"lot_size": 1}}, "lot_size"),
        ({"margin": {"max_leverage": 2.0}}, "margin"),
        ({"brackets": {"stop_loss": 0.1}}, "brackets"),
        ({"costs": "us_equities"}, "impact_k"),
    ],
)
def test_impact_refuses_rules_it_does_not_model_by_name(kwargs, name):
    with pytest.raises(ValueError, match="MarketImpact-v0 has its own impact model") as error:
        impact_env(**kwargs)
    assert name in str(error.value) and "not modelled" in str(error.value)


def test_impact_financing_accrues_on_every_agents_cash_after_the_fills():
    """One bar of financing after the fills, every agent: the learner and momentum paid their commission on credit
    (cash -100, loan rate), mean reversion holds 100,000 of cash (cash rate); 252 bars a year."""
    env = impact_env(costs={"commission_bps": 10}, financing={"cash_rate": 0.0252, "loan_rate": 0.0504})
    _, info = env.reset(seed=0)
    assert info["financing"] == 0.0
    _, _, _, _, info = env.step(np.array([1.0, 0.0]))  # 1000 A at 100: 100 of commission, cash -100
    loan = -100.0 * 0.0504 / 252
    assert info["financing"] == pytest.approx(loan, rel=1e-12)
    assert info["cash"] == pytest.approx(-100.0 + loan, rel=1e-12)
    assert info["equity"] == pytest.approx(1000.0 * 101.0 - 100.0 + loan, rel=1e-12)
    # momentum: 500 A and 1000 B, the same commission on credit; mean reversion: interest on its cash
    np.testing.assert_allclose(
        info["agent_pnl"], [1000.0 - 100.0 + loan, -500.0 - 100.0 + loan, 100_000.0 * 0.0252 / 252], rtol=1e-12
    )
    # batched: the same numbers per market
    venv = make_vec_env(
        "sb3_trading/MarketImpact-v0",
        2,
        seed=0,
        env_kwargs=impact_kwargs(costs={"commission_bps": 10}, financing={"cash_rate": 0.0252, "loan_rate": 0.0504}),
    )
    venv.reset()
    _, _, _, infos = venv.step(np.array([[1.0, 0.0], [1.0, 0.0]], dtype=np.float32))
    assert [i["financing"] for i in infos] == pytest.approx([loan, loan], rel=1e-12)
    pz = pytest.importorskip("sb3_trading.envs.market_impact_pz")
    par = pz.parallel_env(
        learners=2,
        data=impact_data(),
        indicators=["return"],
        normalizer=None,
        episode_length=None,
        financing={"cash_rate": 0.0252},
    )
    par.reset(seed=0)
    _, _, _, _, pz_infos = par.step({"agent_0": np.zeros(2), "agent_1": np.zeros(2)})  # both stay in cash
    assert pz_infos["agent_0"]["financing"] == pytest.approx(par.env.initial_cash * 0.0252 / 252, rel=1e-12)


def test_impact_market_refuses_data_dependent_costs():
    prices = impact_data().prices
    for costs, name in ((CostModel(impact_k=1.0), "impact_k"), (CostModel(lot_size=1.0), "lot_size")):
        with pytest.raises(ValueError, match=name):
            ImpactMarket(prices, costs=costs)


def test_impact_pettingzoo_view_takes_the_same_rules():
    pz = pytest.importorskip("sb3_trading.envs.market_impact_pz")
    kwargs = {"data": impact_data(), "indicators": ["return"], "normalizer": None, "episode_length": None}
    env = pz.parallel_env(learners=2, costs={"fixed_fee": 2}, **kwargs)
    assert env.env.costs == CostModel(fixed_fee=2.0)
    with pytest.raises(ValueError, match="impact_k"):
        pz.parallel_env(learners=2, costs={"impact_k": 1}, **kwargs)


# --------------------------------------------------------------------------- baselines
def test_baselines_pay_data_dependent_costs_in_full():
    data = make_regime_market(n_assets=2, seed=0).slice(0, 120)
    costs = CostModel(commission_bps=10.0, impact_k=0.5)
    start = 30
    result = buy_and_hold(data, start, start + 5, 1_000_000.0, costs)
    flat = buy_and_hold(data, start, start + 5, 1_000_000.0, CostModel(10.0))
    # the first trade buys E / N of each asset at the close of ``start``; impact a = k' sqrt(q) on top of 10 bps
    frictions = build_frictions(MarketRules(costs), data.prices, data.asset_names, 252.0, data.path_bounds, volume=data.volume)
    coefficient = frictions.bars[start, IMPACT]
    shares = 500_000.0 / data.prices[start]
    adverse = coefficient * np.sqrt(shares)
    expected = np.sum(shares * data.prices[start] * (adverse + 1e-3 * (1.0 + adverse)))
    assert result.costs[0] == pytest.approx(expected, rel=1e-12)
    assert result.costs[0] > flat.costs[0]
    assert result.costs[1:].sum() == 0.0  # buy and hold: no more trades
    no_volume = MarketData(prices=data.prices, asset_names=data.asset_names)
    with pytest.raises(ValueError, match="volume"):
        equal_weight(no_volume, start, start + 5, 1_000_000.0, costs)
