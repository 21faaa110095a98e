"""Market rules of the accounting core (issue 20): every friction against a hand calculation, the invariants with
every friction on (hypothesis), the defaults unchanged, no look-ahead, and the single env equal to the batched one."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sb3_trading.data import MarketData
from sb3_trading.data.synthetic import make_regime_market
from sb3_trading.envs.multi_asset import MultiAssetEnv
from sb3_trading.sim import VENUES, Brackets, CostModel, Financing, Margin, resolve_market_rules, venue
from sb3_trading.sim.frictions import (
    ADVERSE,
    BORROW,
    BRACKETED,
    CASH_RATE,
    IMPACT,
    LEVERAGE,
    LIMITED,
    LOAN_RATE,
    LOT,
    MAINTENANCE,
    MAX_TRADE,
    N_BAR_FIELDS,
    STOP,
    TAKE,
    build_frictions,
)
from sb3_trading.sim.kernels import (
    bracket_row,
    enter_brackets_row,
    finance_row,
    gross_row,
    limit_row,
    margin_call_row,
    order_cost,
    order_row,
    trade_row,
)
from sb3_trading.vec import BatchedVecEnv
from tests.lookahead import perturb_future

BPS = 1e-4


def bars_of(n: int = 1, adverse: float = 0.0, impact: float = 0.0, most: float = math.inf, borrow: float = 0.0):
    bars = np.zeros((N_BAR_FIELDS, n))
    bars[ADVERSE], bars[IMPACT], bars[MAX_TRADE], bars[BORROW] = adverse, impact, most, borrow
    return bars


def book(*row: float) -> np.ndarray:
    return np.array([row], dtype=np.float64)


# ---------------------------------------------------------------------------------------------- hand calculations
def test_fixed_and_minimum_fee_against_hand_calculation():
    rules = CostModel(commission_bps=10, fixed_fee=1.0, min_fee=5.0).rules()
    # 10 shares at 100: commission 0.001 * 1000 = 1 is below the 5 minimum -> 5, plus the 1 fixed fee
    assert order_cost(10.0, 100.0, bars_of(), 0, rules) == pytest.approx(6.0)
    # 100 shares: commission 10 is above the minimum -> 10 + 1
    assert order_cost(-100.0, 100.0, bars_of(), 0, rules) == pytest.approx(11.0)
    assert order_cost(0.0, 100.0, bars_of(), 0, rules) == 0.0  # no order, no fee
    holdings = book(0.0, 0.0, 10_000.0)
    notional, costs = trade_row(holdings, 0, np.array([10.0, 0.0]), np.array([100.0, 50.0]), bars_of(2), rules)
    assert (notional, costs) == (pytest.approx(1000.0), pytest.approx(6.0))  # one order only: the untraded asset is free
    assert holdings[0, 2] == pytest.approx(10_000.0 - 1000.0 - 6.0)


def test_half_spread_in_bps_and_from_the_data():
    model = CostModel(commission_bps=10, half_spread_bps=5)
    rules = model.rules()
    holdings = book(0.0, 100_000.0)
    notional, costs = trade_row(holdings, 0, np.array([10.0]), np.array([100.0]), model.constant_bars(1), rules)
    fill = 100.0 * (1 + 5 * BPS)
    assert costs == pytest.approx(10 * (fill - 100.0) + 0.001 * 10 * fill)
    # the spread column: half the quoted spread over the fill bar's mid
    prices = np.array([[100.0], [200.0]])
    spread = np.array([[0.10], [0.50]])
    rules_model = resolve_market_rules(costs={"half_spread_bps": "data", "slippage_bps": 1.0})
    frictions = build_frictions(rules_model, prices, ["a"], 252.0, [(0, 2)], spread=spread)
    np.testing.assert_allclose(frictions.bars[:, ADVERSE, 0], [0.05 / 100 + BPS, 0.25 / 200 + BPS])


def test_square_root_impact_uses_causal_volatility_and_volume():
    rng = np.random.default_rng(0)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (60, 1)), axis=0))
    volume = rng.uniform(1e5, 2e5, (60, 1))
    model = resolve_market_rules(costs={"impact_k": 0.5, "impact_window": 20})
    frictions = build_frictions(model, closes, ["a"], 252.0, [(0, 60)], volume=volume)
    t = 45
    returns = np.diff(np.log(closes[: t + 1, 0]))[-20:]
    sigma, adv = returns.std(ddof=1), volume[t - 19 : t + 1, 0].mean()
    assert frictions.bars[t, IMPACT, 0] == pytest.approx(0.5 * sigma / math.sqrt(adv))
    q, price = 5_000.0, closes[t, 0]
    a = 0.5 * sigma * math.sqrt(q / adv)  # k sigma sqrt(|q| / ADV)
    rules = model.costs.rules()
    assert order_cost(q, price, frictions.bars[t], 0, rules) == pytest.approx(q * price * (a + 0.001 * (1 + a)))
    # causal: changing every bar after t changes nothing at t
    later = closes.copy()
    later[t + 1 :] *= 1.7
    volume_later = volume.copy()
    volume_later[t + 1 :] *= 5
    again = build_frictions(model, later, ["a"], 252.0, [(0, 60)], volume=volume_later)
    np.testing.assert_array_equal(again.bars[: t + 1], frictions.bars[: t + 1])


def test_participation_cap_and_lot_rounding():
    model = CostModel(commission_bps=0, participation=0.1, lot_size=10.0)
    volume = np.array([[1234.0, 1e9]])
    frictions = build_frictions(
        resolve_market_rules(costs=model), np.array([[10.0, 20.0]]), ["a", "b"], 252, [(0, 1)], volume=volume
    )
    bars = frictions.bars[0]
    assert bars[MAX_TRADE, 0] == pytest.approx(123.4)
    holdings = book(0.0, 0.0, 1e6)
    target = np.array([500.0, -57.0])
    unfilled = limit_row(holdings, 0, target, np.array([10.0, 20.0]), bars, frictions.rules)
    # asset a: capped at 123.4 shares, floored to whole lots of 10 -> 120; asset b: -57 rounds toward zero to -50
    np.testing.assert_array_equal(target, [120.0, -50.0])
    # unfilled: the 500-share order less the 120 filled (the lot rounding of b is not a cap)
    assert unfilled == pytest.approx((500.0 - 120.0) * 10.0)


def test_leverage_cap_scales_orders_down():
    rules = CostModel(commission_bps=10).rules()
    rules[LEVERAGE] = 2.0
    holdings = book(0.0, 0.0, 1000.0)
    prices = np.array([10.0, 20.0])
    target = np.array([300.0, -100.0])  # gross 5000 on equity ~1000
    limit_row(holdings, 0, target, prices, bars_of(2), rules)
    assert target[0] / 300.0 == pytest.approx(target[1] / -100.0)  # the same scale on every asset
    trade_row(holdings, 0, target, prices, bars_of(2), rules)
    equity = holdings[0, 2] + holdings[0, :2] @ prices
    assert gross_row(holdings, 0, prices) / equity == pytest.approx(2.0, rel=1e-9)


def test_cash_interest_compounds_over_n_bars():
    financing = Financing(cash_rate=0.05, loan_rate=0.08)
    model = resolve_market_rules(financing=financing)
    frictions = build_frictions(model, np.full((1, 1), 100.0), ["a"], 252.0, [(0, 1)])
    holdings, bars = book(0.0, 10_000.0), frictions.bars[0]
    for _ in range(252):
        finance_row(holdings, 0, np.array([100.0]), bars, frictions.rules)
    assert holdings[0, 1] == pytest.approx(10_000.0 * (1 + 0.05 / 252) ** 252, rel=1e-12)
    debt = book(0.0, -10_000.0)  # a margin loan pays the loan rate, also compounding
    for _ in range(10):
        finance_row(debt, 0, np.array([100.0]), bars, frictions.rules)
    assert debt[0, 1] == pytest.approx(-10_000.0 * (1 + 0.08 / 252) ** 10, rel=1e-12)
    assert frictions.rules[CASH_RATE] == 0.05 / 252 and frictions.rules[LOAN_RATE] == 0.08 / 252


def test_borrow_fee_on_a_short_held_n_bars_accumulates():
    # gym-trading-env assigns the borrow interest instead of adding it; here it accrues into the cash every bar
    model = resolve_market_rules(financing={"borrow_bps": {"b": 300.0}})
    frictions = build_frictions(model, np.full((1, 2), 50.0), ["a", "b"], 252.0, [(0, 1)])
    holdings = book(0.0, -100.0, 20_000.0)
    fee = 100 * 50.0 * 0.03 / 252
    for _ in range(30):
        net = finance_row(holdings, 0, np.array([50.0, 50.0]), frictions.bars[0], frictions.rules)
        assert net == pytest.approx(-fee)
    assert holdings[0, 2] == pytest.approx(20_000.0 - 30 * fee)
    assert frictions.bars[0, BORROW, 0] == 0.0  # an unnamed asset pays nothing


def test_margin_call_liquidates_at_the_price_with_costs():
    rules = CostModel(commission_bps=10, slippage_bps=5).rules()
    rules[MAINTENANCE] = 0.25
    bars = CostModel(commission_bps=10, slippage_bps=5).constant_bars(1)
    healthy = book(100.0, -7000.0)  # equity 3000 on gross 10000: 30 % >= 25 %
    assert margin_call_row(healthy, 0, np.array([[100.0]]), bars[None], 0, rules) == (False, 0.0, 0.0)
    holdings = book(100.0, -8000.0)  # equity 2000 on gross 10000: 20 % < 25 %
    called, notional, costs = margin_call_row(holdings, 0, np.array([[100.0]]), bars[None], 0, rules)
    fill = 100.0 * (1 - 5 * BPS)
    assert called and notional == pytest.approx(10_000.0)
    assert costs == pytest.approx(100 * (100.0 - fill) + 0.001 * 100 * fill)
    assert holdings[0, 0] == 0.0 and holdings[0, 1] == pytest.approx(-8000.0 + 100 * fill - 0.001 * 100 * fill)


def _levels(h_before: float, h_after: float, fill: float, stop: float, take: float) -> np.ndarray:
    levels = np.full((1, 3, 1), np.nan)
    bars = bars_of()
    bars[STOP], bars[TAKE] = stop, take
    enter_brackets_row(levels, 0, np.array([h_before]), book(h_after, 0.0), np.array([fill]), bars, np.zeros(12))
    return levels


def test_stop_hit_intrabar_fills_at_the_level():
    levels = _levels(0.0, 10.0, 100.0, 0.05, 0.10)
    np.testing.assert_allclose(levels[0, :, 0], [100.0, 95.0, 110.0])
    rules = CostModel(commission_bps=10).rules()
    holdings = book(10.0, 0.0)
    exits, notional, costs = bracket_row(holdings, levels, 0, np.array([[[99.0], [101.0], [94.0]]]), 0, True, bars_of(), rules)
    assert (exits, notional, costs) == (1, pytest.approx(950.0), pytest.approx(0.95))
    assert holdings[0, 0] == 0.0 and holdings[0, 1] == pytest.approx(950.0 - 0.95)
    assert np.isnan(levels).all()


def test_gap_through_a_stop_fills_at_the_open():
    levels = _levels(0.0, -10.0, 100.0, 0.05, 0.10)  # a short: stop above at 105, take below at 90
    np.testing.assert_allclose(levels[0, 1:, 0], [105.0, 90.0])
    holdings = book(-10.0, 2000.0)
    rules = CostModel(commission_bps=0).rules()
    exits, notional, _ = bracket_row(holdings, levels, 0, np.array([[[108.0], [109.0], [104.0]]]), 0, True, bars_of(), rules)
    assert exits == 1 and notional == pytest.approx(1080.0)  # bought back at the open, worse than the stop
    assert holdings[0, 1] == pytest.approx(2000.0 - 1080.0)
    # with next-open execution the fill was that open: no gap fill, the level
    levels = _levels(0.0, -10.0, 100.0, 0.05, 0.10)
    holdings = book(-10.0, 2000.0)
    bracket_row(holdings, levels, 0, np.array([[[108.0], [109.0], [104.0]]]), 0, False, bars_of(), rules)
    assert holdings[0, 1] == pytest.approx(2000.0 - 1050.0)


def test_a_bar_touching_both_levels_takes_the_stop():
    levels = _levels(0.0, 10.0, 100.0, 0.05, 0.10)
    holdings = book(10.0, 0.0)
    rules = CostModel(commission_bps=0).rules()
    bracket_row(holdings, levels, 0, np.array([[[100.0], [111.0], [94.0]]]), 0, True, bars_of(), rules)
    assert holdings[0, 1] == pytest.approx(950.0)  # the stop, not the take-profit at 110


def test_entry_price_averages_adds_and_keeps_levels_on_reductions():
    levels = _levels(0.0, 10.0, 100.0, 0.05, 0.0)
    bars = bars_of()
    bars[STOP] = 0.05
    enter_brackets_row(levels, 0, np.array([10.0]), book(30.0, 0.0), np.array([130.0]), bars, np.zeros(12))
    assert levels[0, 0, 0] == pytest.approx((10 * 100 + 20 * 130) / 30)  # added to: the average entry
    assert np.isnan(levels[0, 2, 0])  # no take-profit asked
    before = levels.copy()
    enter_brackets_row(levels, 0, np.array([30.0]), book(5.0, 0.0), np.array([90.0]), bars, np.zeros(12))
    np.testing.assert_array_equal(levels, before)  # a partial close keeps the levels


# ------------------------------------------------------------------------------------------------- properties
@settings(max_examples=80, deadline=None)
@given(
    held=st.lists(st.floats(-500, 500), min_size=4, max_size=4),
    wanted=st.lists(st.floats(-500, 500), min_size=4, max_size=4),
    prices=st.lists(st.floats(1.0, 500.0), min_size=4, max_size=4),
    cash=st.floats(-1e4, 1e5),
    cap=st.sampled_from([math.inf, 0.8, 2.0, 5.0]),
    lot=st.sampled_from([0.0, 1.0, 10.0]),
    most=st.sampled_from([math.inf, 5.0, 200.0]),
    fees=st.booleans(),
)
def test_order_row_is_limits_then_trade_then_bracket_entries_bit_for_bit(held, wanted, prices, cash, cap, lot, most, fees):
    """The fused order (one pricing pass) gives exactly what the three steps it replaces give, one after another."""
    model = CostModel(commission_bps=7, slippage_bps=3, fixed_fee=0.5 if fees else 0.0, min_fee=1.0 if fees else 0.0)
    p = np.array(prices)
    bars = bars_of(4, adverse=model.adverse, impact=3e-4, most=most)
    bars[STOP], bars[TAKE] = 0.03, 0.06
    rules = model.rules()
    rules[LEVERAGE], rules[LOT] = cap, lot
    rules[LIMITED] = float(cap < math.inf or lot > 0.0 or most < math.inf)
    rules[BRACKETED] = 1.0
    start = np.array([[*held, cash]])
    levels = np.full((1, 3, 4), np.nan)
    levels[0, :, :2] = [[100.0, 101.0], [97.0, 98.0], [106.0, 107.0]]  # two positions with levels already
    fused_book, fused_levels, fused_target = start.copy(), levels.copy(), np.array(wanted)
    fused = order_row(fused_book, fused_levels, 0, fused_target, p, bars, rules)
    steps_book, steps_levels, steps_target = start.copy(), levels.copy(), np.array(wanted)
    unfilled = limit_row(steps_book, 0, steps_target, p, bars, rules) if rules[LIMITED] else 0.0
    before = steps_book[0, :4].copy()
    notional, costs = trade_row(steps_book, 0, steps_target, p, bars, rules)
    enter_brackets_row(steps_levels, 0, before, steps_book, p, bars, rules)
    assert fused == (unfilled, notional, costs)
    np.testing.assert_array_equal(fused_book, steps_book)
    np.testing.assert_array_equal(fused_target, steps_target)
    np.testing.assert_array_equal(fused_levels, steps_levels)


@settings(max_examples=60, deadline=None)
@given(
    held=st.lists(st.floats(-500, 500), min_size=3, max_size=3),
    wanted=st.lists(st.floats(-500, 500), min_size=3, max_size=3),
    prices=st.lists(st.floats(1.0, 500.0), min_size=3, max_size=3),
    cash=st.floats(1e3, 1e6),
    volume=st.floats(1.0, 1e4),
    cap=st.floats(0.5, 5.0),
)
def test_invariants_with_every_friction_on(held, wanted, prices, cash, volume, cap):
    model = CostModel(
        commission_bps=7,
        slippage_bps=3,
        fixed_fee=0.5,
        min_fee=1.0,
        half_spread_bps=2,
        impact_k=0.8,
        participation=0.3,
        lot_size=1.0,
    )
    p = np.array(prices)
    bars = bars_of(3, adverse=model.adverse, impact=0.8 * 0.02 / math.sqrt(volume), most=0.3 * volume, borrow=1e-4)
    rules = model.rules()
    rules[LEVERAGE], rules[MAINTENANCE] = cap, 0.3
    holdings = np.array([[*np.trunc(held), cash]])
    equity_before = holdings[0, 3] + holdings[0, :3] @ p
    gross_before = gross_row(holdings, 0, p)
    target = np.array(wanted)
    limit_row(holdings, 0, target, p, bars, rules)
    notional, costs = trade_row(holdings, 0, target, p, bars, rules)
    equity = holdings[0, 3] + holdings[0, :3] @ p
    assert costs >= 0.0 and np.isfinite(holdings).all()
    assert equity == pytest.approx(equity_before - costs, rel=1e-9, abs=1e-6)  # equity = cash + positions . prices
    gross = gross_row(holdings, 0, p)
    assert gross <= max(cap * equity, gross_before) * (1 + 1e-9) + 1e-9  # leverage never exceeds the cap
    # trading to the current book is a no-op, and a zero trade costs nothing
    again = holdings.copy()
    assert trade_row(again, 0, holdings[0, :3].copy(), p, bars, rules) == (0.0, 0.0)
    np.testing.assert_array_equal(again, holdings)
    finance_row(holdings, 0, p, bars, rules)
    called, _, call_costs = margin_call_row(holdings, 0, p[None], bars[None], 0, rules)
    assert call_costs >= 0.0 and np.isfinite(holdings).all()
    if called:
        assert (holdings[0, :3] == 0.0).all()  # a liquidated book is flat


# ----------------------------------------------------------------------------------------------- environments
ALL_ON = {
    "costs": {
        "commission_bps": 5,
        "slippage_bps": 2,
        "fixed_fee": 0.5,
        "min_fee": 1.0,
        "half_spread_bps": 1.0,
        "impact_k": 0.5,
        "participation": 0.2,
        "lot_size": 1.0,
    },
    "financing": {"cash_rate": 0.04, "loan_rate": 0.07, "borrow_bps": 50.0},
    "margin": {"max_leverage": 2.0, "maintenance_margin": 0.2},
    "brackets": {"stop_loss": 0.02, "take_profit": 0.04},
}


@pytest.fixture(scope="module")
def market() -> MarketData:
    return make_regime_market(n_steps=300, n_assets=3, seed=3)


def test_every_friction_on_keeps_the_books_consistent(market):
    env = MultiAssetEnv(market, initial_cash=100_000.0, **ALL_ON)
    obs, info = env.reset(seed=0)
    assert set(info) >= {"financing", "unfilled", "bracket_exits"}
    rng = np.random.default_rng(0)
    exits = 0
    for _ in range(150):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-1, 1, 3).astype(np.float32))
        close = market.prices[info["t"]]
        assert info["equity"] == pytest.approx(info["cash"] + info["positions"] @ close, rel=1e-12)
        assert info["costs"] >= 0.0 and np.isfinite(reward)
        assert np.all(np.trunc(info["positions"]) == info["positions"])  # whole shares
        exits += info["bracket_exits"]
        if terminated or truncated:
            break
    assert exits > 0  # a 2 % stop on daily bars is hit


def test_defaults_are_unchanged_bit_for_bit(market):
    default, explicit = MultiAssetEnv(market), MultiAssetEnv(market, costs=CostModel(commission_bps=10.0))
    default.reset(seed=0), explicit.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(40):
        action = rng.uniform(-1, 1, 3).astype(np.float32)
        a, b = default.step(action)[4], explicit.step(action)[4]
        assert a.keys() == b.keys() and "financing" not in a
        assert a["equity"] == b["equity"] and a["costs"] == b["costs"]


def test_financing_reported_and_compounded_in_the_env(market):
    env = MultiAssetEnv(market, commission_bps=0.0, financing={"cash_rate": 0.05})
    env.reset(seed=0)
    for k in range(1, 21):
        _, _, _, _, info = env.step(np.zeros(3, dtype=np.float32))
        assert info["financing"] == pytest.approx(1_000_000.0 * (1 + 0.05 / 252) ** (k - 1) * 0.05 / 252)
    assert info["equity"] == pytest.approx(1_000_000.0 * (1 + 0.05 / 252) ** 20, rel=1e-12)


def test_margin_call_in_the_env_terminates_and_liquidates():
    n = 120
    rng = np.random.default_rng(0)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (n, 1)), axis=0))
    closes[100:] *= 1.8  # a squeeze against a short
    data = MarketData(prices=closes, periods_per_year=252.0)
    env = MultiAssetEnv(data, commission_bps=10.0, margin={"maintenance_margin": 0.25})
    env.reset(options={"start": 99})
    _, _, terminated, truncated, info = env.step(np.array([-1.0], dtype=np.float32))
    assert terminated and not truncated and info["terminated_by"] == "margin_call"
    assert info["positions"][0] == 0.0  # flat
    short = 1_000_000.0 / closes[99, 0]
    cash = 1_000_000.0 + short * closes[99, 0] * (1 - 0.001)  # the short sale, less commission
    cash -= short * closes[100, 0] * (1 + 0.001)  # bought back at the close of the squeeze, plus commission
    assert info["cash"] == pytest.approx(cash, rel=1e-12)
    assert info["costs"] == pytest.approx(0.001 * short * (closes[99, 0] + closes[100, 0]), rel=1e-9)


def test_ruin_is_named_too():
    rng = np.random.default_rng(0)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (120, 1)), axis=0))
    closes[100:] *= 3.0
    env = MultiAssetEnv(MarketData(prices=closes, periods_per_year=252.0))
    env.reset(options={"start": 99})
    _, _, terminated, _, info = env.step(np.array([-1.0], dtype=np.float32))
    assert terminated and info["terminated_by"] == "ruin"


def test_batched_equals_single_with_every_friction_on(market):
    single = MultiAssetEnv(market, random_start=True, episode_length=40, **ALL_ON)
    batched = BatchedVecEnv(MultiAssetEnv(market, random_start=True, episode_length=40, **ALL_ON), 2)
    batched.seed(5)
    batched.reset()
    single.reset(seed=5)
    rng = np.random.default_rng(2)
    for _ in range(60):
        actions = rng.uniform(-1, 1, (2, 3)).astype(np.float32)
        _, reward, done, infos = batched.step(actions)
        _, r, terminated, truncated, info = single.step(actions[0])
        assert reward[0] == np.float32(r)
        for key in ("equity", "costs", "financing", "unfilled", "bracket_exits"):
            assert infos[0][key] == info[key]
        if terminated or truncated:
            single.reset()


def test_no_look_ahead_with_every_friction_on(market):
    t = 150
    rng = np.random.default_rng(7)
    actions = rng.uniform(-1, 1, (60, 3)).astype(np.float32)

    def run(data: MarketData) -> list[tuple]:
        env = MultiAssetEnv(data, **ALL_ON)
        obs, info = env.reset(options={"start": t - 40})
        seen = []
        for action in actions:
            obs, _, terminated, truncated, info = env.step(action)
            if info["t"] > t + 1 or terminated or truncated:
                break
            seen.append(
                (obs["market"].copy(), obs["portfolio"].copy(), info["costs"], info["financing"], info["bracket_exits"])
            )
        return seen

    # the step to t + 1 may see bar t + 1 (its fills, highs and lows): perturb everything after it
    before, after = run(market), run(perturb_future(market, t + 1, rng))
    assert len(before) == len(after) > 10
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_array_equal(a[1], b[1])
        assert a[2:] == b[2:]


# ---------------------------------------------------------------------------------------------- arguments, presets
@pytest.mark.parametrize("name", sorted(VENUES))
def test_each_venue_preset_runs(name, market):
    preset = venue(name)
    assert preset.sources and preset.costs.commission_bps > 0
    env = MultiAssetEnv(market, costs=name)
    assert env.costs == preset.costs and env.market_rules.margin == preset.margin
    env.reset(seed=0)
    _, _, _, _, info = env.step(np.full(3, 0.5, dtype=np.float32))
    assert info["costs"] > 0 and "financing" in info


def test_argument_errors_name_the_argument(market):
    with pytest.raises(ValueError, match="unknown costs preset 'us_equity'.*us_equities"):
        MultiAssetEnv(market, costs="us_equity")
    with pytest.raises(ValueError, match="commission_bps"):
        MultiAssetEnv(market, commission_bps=5, costs=CostModel())
    with pytest.raises(ValueError, match="unknown fields.*comission_bps"):
        MultiAssetEnv(market, costs={"comission_bps": 5})
    with pytest.raises(ValueError, match="participation"):
        MultiAssetEnv(market, costs={"participation": 1.5})
    with pytest.raises(ValueError, match="maintenance_margin"):
        Margin(initial_margin=0.2, maintenance_margin=0.3)
    with pytest.raises(ValueError, match="stop_loss, a take_profit"):
        Brackets()
    no_volume = MarketData(prices=market.prices, periods_per_year=252.0)
    with pytest.raises(ValueError, match="impact_k need the data's volume"):
        MultiAssetEnv(no_volume, costs={"impact_k": 1.0})
    with pytest.raises(ValueError, match="open, high and low"):
        MultiAssetEnv(no_volume, brackets={"stop_loss": 0.05})
    with pytest.raises(ValueError, match="borrow_bps names assets"):
        MultiAssetEnv(market, financing={"borrow_bps": {"nope": 10}})


def test_backtest_reports_the_financing(market):
    from sb3_trading.evaluation import backtest

    class Short:
        def predict(self, obs, state=None, episode_start=None, deterministic=True):
            return np.array([-0.5, 0.0, 0.5], dtype=np.float32), state

    env = MultiAssetEnv(market.slice(0, 200), financing={"cash_rate": 0.03, "borrow_bps": 100.0})
    result = backtest(Short(), env)
    assert result.financing is not None and result.financing.shape == result.returns.shape
    assert result.metrics["total_financing"] == pytest.approx(result.financing.sum())
    assert "financing" in result.to_frame()
    assert "total_financing" not in backtest(Short(), MultiAssetEnv(market.slice(0, 200))).metrics


def test_rolling_statistics_restart_on_each_path():
    rng = np.random.default_rng(4)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, (80, 2)), axis=0))
    volume, high, low = rng.uniform(1e4, 2e4, (80, 2)), closes * 1.01, closes * 0.99
    model = resolve_market_rules(costs={"impact_k": 1.0}, brackets={"stop_loss": 2.0, "unit": "atr"})
    both = build_frictions(
        model, closes, ["a", "b"], 252.0, [(0, 30), (30, 80)], volume=volume, open_=closes, high=high, low=low
    )
    second = build_frictions(
        model, closes[30:], ["a", "b"], 252.0, [(0, 50)], volume=volume[30:], open_=closes[30:], high=high[30:], low=low[30:]
    )
    np.testing.assert_allclose(both.bars[30:], second.bars)


def test_baselines_earn_the_envs_financing(market):
    from sb3_trading.evaluation import env_baselines

    env = MultiAssetEnv(market.slice(0, 120), financing={"cash_rate": 0.05, "loan_rate": 0.1})
    results = env_baselines(env, start=60, stop=100, names=("cash", "buy_and_hold"))
    cash = results["cash"]
    assert cash.equity[-1] == pytest.approx(1_000_000.0 * (1 + 0.05 / 252) ** 40, rel=1e-12)
    assert cash.metrics["total_financing"] == pytest.approx(cash.equity[-1] - 1_000_000.0)
    # buy-and-hold invests everything and owes the commission: a small margin loan, paying the loan rate
    paid = -results["buy_and_hold"].financing
    assert (paid > 0.0).all() and paid.sum() < 0.001 * 1_000_000.0 * 0.1 * 40 / 252 * 1.01
