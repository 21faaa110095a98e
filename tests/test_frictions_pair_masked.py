"""LeveragedPair-v0 and MaskedTrading-v0 on the market rules: fees, spread, refused rules, argument clashes."""

import numpy as np
import pytest
from test_masked_trading import hand_data, hand_env

from sb3_trading.data import MarketData, make_leveraged_pair_market
from sb3_trading.envs.leveraged_pair import LeveragedPairEnv, leveraged_pair_targets
from sb3_trading.envs.masked_trading import MaskedTradingEnv
from sb3_trading.sim import CostModel
from sb3_trading.sim.frictions import ADVERSE, N_BAR_FIELDS

E0 = 1_000_000.0
HOLD, BULL_10, BULL_25, BULL_50, BEAR_10, BEAR_25, BEAR_50, FLATTEN = range(8)


def pair_data(bull=(30.0, 30.0, 33.0, 31.0, 28.0), bear=(70.0, 70.0, 63.0, 66.0, 72.0)) -> MarketData:
    """Index, bull and bear closes; row 0 only warms up the 'return' indicator."""
    return MarketData(prices=np.column_stack([[100.0] * len(bull), bull, bear]), asset_names=["index", "bull", "bear"])


def pair_env(data=None, **kwargs) -> LeveragedPairEnv:
    kwargs = {
        "initial_cash": 10_000.0,
        "indicators": ["return"],
        "normalizer": None,
        "window": 1,
        "max_days": None,
        "random_start": False,
        "stop_loss": None,
        **kwargs,
    }
    return LeveragedPairEnv(data=pair_data() if data is None else data, **kwargs)


def hand_costs(traded, prices, commission_bps=10.0, fixed_fee=0.0, min_fee=0.0, adverse=0.0) -> float:
    """Friction of trading ``traded`` shares at mid ``prices``, by hand: ``|q| p a`` plus, per asset traded,
    ``max(c |q| p (1 + a sign q), min_fee) + fixed_fee``."""
    c = commission_bps * 1e-4
    total = 0.0
    for q, p in zip(traded, prices, strict=True):
        if q != 0.0:
            amount = abs(q) * p
            total += amount * adverse + max(c * amount * (1.0 + adverse * np.sign(q)), min_fee) + fixed_fee
    return total


# ----------------------------------------------------------------------------------------- LeveragedPair
@pytest.mark.parametrize(
    "costs",
    [
        {"commission_bps": 10.0, "fixed_fee": 1.0},
        {"commission_bps": 10.0, "min_fee": 5.0},
        {"commission_bps": 10.0, "fixed_fee": 0.5, "min_fee": 5.0, "half_spread_bps": 2.0, "slippage_bps": 1.0},
    ],
)
def test_leveraged_pair_fees_by_hand(costs):
    env = pair_env(costs=costs)
    assert env.costs == CostModel(**costs) and env.market_rules.costs == env.costs
    assert env.frictions.bars.shape == (env.data.n_steps, N_BAR_FIELDS, 2)
    adverse = (costs.get("half_spread_bps", 0.0) + costs.get("slippage_bps", 0.0)) * 1e-4
    fees = {k: costs.get(k, 0.0) for k in ("commission_bps", "fixed_fee", "min_fee")}
    _, info = env.reset()
    # even split of 10,000 at t=1: 166 bull at 30, 71 bear at 70 (the fees leave cash >= 0: no cut)
    np.testing.assert_array_equal(info["positions"], [166.0, 71.0])
    cost_0 = hand_costs([166.0, 71.0], [30.0, 70.0], adverse=adverse, **fees)
    assert info["costs"] == pytest.approx(cost_0, abs=1e-9)
    cash_0 = 10_000.0 - 166 * 30.0 - 71 * 70.0 - cost_0
    assert info["cash"] == pytest.approx(cash_0, abs=1e-9)

    held = info["positions"].copy()
    _, _, _, _, info = env.step(np.array([0.75], dtype=np.float32))
    equity_1 = cash_0 + 166 * 30.0 + 71 * 70.0
    expected = [np.trunc(0.75 * equity_1 / 30.0), np.trunc(0.25 * equity_1 / 70.0)]
    np.testing.assert_array_equal(info["positions"], expected)
    traded = info["positions"] - held  # buy bull, sell bear: two orders
    assert (traded != 0.0).all()
    cost_1 = hand_costs(traded, [30.0, 70.0], adverse=adverse, **fees)
    assert info["costs"] == pytest.approx(cost_1, abs=1e-9)
    assert info["cash"] == pytest.approx(cash_0 - traded @ [30.0, 70.0] - cost_1, abs=1e-9)


def test_leveraged_pair_fees_per_asset_traded():
    """The fixed fee is paid per ETF traded: nothing for a step that trades nothing, one fee for one order."""
    data = pair_data(bull=(50.0,) * 5, bear=(50.0, 50.0, 40.0, 40.0, 40.0))
    env = pair_env(data=data, costs={"commission_bps": 10.0, "fixed_fee": 1.0})
    _, info = env.reset()
    # 100 + 100 shares leave -12 cash after the fees: the cut ceil(12 * 100 / (200 * 50.05)) = 1 share each
    np.testing.assert_array_equal(info["positions"], [99.0, 99.0])
    assert info["costs"] == pytest.approx(0.001 * 9_900.0 + 2.0, abs=1e-9)
    cash = 10_000.0 - 9_900.0 - 11.9
    assert info["cash"] == pytest.approx(cash, abs=1e-9)
    _, _, _, _, info = env.step(np.array([0.5]))  # same whole shares: no order, no fee
    np.testing.assert_array_equal(info["positions"], [99.0, 99.0])
    assert info["costs"] == 0.0 and info["cash"] == pytest.approx(cash, abs=1e-9)
    equity = info["equity"]  # at t=2: bull 50, bear 40
    _, _, _, _, info = env.step(np.array([4_950.5 / equity]))  # bull stays 99, bear 99 -> 101
    np.testing.assert_array_equal(info["positions"], [99.0, 101.0])
    assert info["costs"] == pytest.approx(hand_costs([0.0, 2.0], [50.0, 40.0], 10.0, 1.0), abs=1e-12)
    assert info["costs"] == pytest.approx(2 * 40.0 * 0.001 + 1.0, abs=1e-12)
    assert info["cash"] == pytest.approx(cash - 80.0 - 1.08, abs=1e-9)


def test_leveraged_pair_fixed_fee_cuts_buys_cash_stays_non_negative():
    """Whole shares that use all the cash leave nothing for the fees: the buys are cut in whole shares."""
    data = pair_data(bull=(50.0,) * 5, bear=(50.0,) * 5)
    env = pair_env(data=data, costs={"commission_bps": 0.0, "fixed_fee": 10.0})
    _, info = env.reset()
    # 100 + 100 shares would cost 20 in fees with no cash left: one share each is cut (frees 100 >= 20)
    np.testing.assert_array_equal(info["positions"], [99.0, 99.0])
    assert info["costs"] == pytest.approx(20.0, abs=1e-12)
    assert info["cash"] == pytest.approx(80.0, abs=1e-9)
    for fraction in (1.0, 0.0, 0.5):
        _, _, _, _, info = env.step(np.array([fraction]))
        assert info["cash"] >= 0.0


def test_leveraged_pair_targets_with_fees():
    rng = np.random.default_rng(1)
    batch = 64
    prices = rng.uniform(10.0, 100.0, (batch, 2))
    cash = rng.uniform(0.0, 50.0, batch)
    positions = np.floor(rng.uniform(0.0, 100.0, (batch, 2)))
    equity = cash + (positions * prices).sum(axis=1)
    fractions = rng.uniform(0.0, 1.0, batch)
    costs = CostModel(commission_bps=10.0, fixed_fee=2.0, min_fee=1.0, half_spread_bps=3.0)
    target = leveraged_pair_targets(fractions, equity, cash, positions, prices, costs)
    assert (target == np.round(target)).all() and (target >= 0.0).all()
    for b in range(batch):
        traded = target[b] - positions[b]
        left = cash[b] - traded @ prices[b] - hand_costs(traded, prices[b], 10.0, 2.0, 1.0, 3e-4)
        assert left >= -1e-9
    with pytest.raises(ValueError, match="needs the market data"):
        leveraged_pair_targets(fractions, equity, cash, positions, prices, CostModel(impact_k=1.0))


# ----------------------------------------------------------------------------------------- MaskedTrading
def test_masked_trading_half_spread_by_hand():
    env = hand_env(costs={"half_spread_bps": 5.0})
    a, c = 5e-4, 1e-3
    np.testing.assert_array_equal(env.frictions.bars[:, ADVERSE], a)
    env.reset()
    # t=1: buy bull for 0.5 E0 at 50: 10,000 shares filled at 50 (1 + a), commission on the filled notional
    _, _, _, _, info = env.step(BULL_50)
    cost_1 = 500_000.0 * (a + c * (1.0 + a))
    np.testing.assert_allclose(info["positions"], [10_000.0, 0.0], rtol=1e-12)
    assert info["costs"] == pytest.approx(cost_1, abs=1e-6)
    assert info["cash"] == pytest.approx(E0 - 500_000.0 - cost_1, abs=1e-6)
    equity_2 = info["equity"]
    # t=2: buy bear 0.25 switches sides: sell the bull at 51.5 (1 - a), buy 0.25 E_2 of bear at 38.8 (1 + a)
    _, _, _, _, info = env.step(BEAR_25)
    sold, bought = 10_000 * 51.5, 0.25 * equity_2
    cost_2 = sold * (a + c * (1.0 - a)) + bought * (a + c * (1.0 + a))
    np.testing.assert_allclose(info["positions"], [0.0, bought / 38.8], rtol=1e-12)
    assert info["costs"] == pytest.approx(cost_2, abs=1e-6)
    assert info["cash"] == pytest.approx(E0 - 500_000.0 - cost_1 + sold - bought - cost_2, abs=1e-6)


def test_masked_trading_spread_equals_slippage_of_the_same_size():
    """The mask's cash rule and the fills read the bar's adverse fraction: a 20 bps half-spread trades exactly as
    20 bps of slippage, and the mask stays exact (a size whose cost exceeds the cash is masked)."""
    kwargs = {"sizes": (0.5, 0.998), "max_concentration": 1.0}
    with pytest.warns(UserWarning, match=r"sizes \[0.998\] can never be bought"):
        spread = hand_env(costs={"half_spread_bps": 20.0}, **kwargs)
    with pytest.warns(UserWarning, match=r"sizes \[0.998\] can never be bought"):
        slip = hand_env(slippage_bps=20.0, **kwargs)
    spread.reset()
    slip.reset()
    np.testing.assert_array_equal(spread.action_masks(), slip.action_masks())
    assert not spread.action_masks()[2]  # 0.998 * 1.002 * 1.001 > 1
    for action in (1, 3, 5, 2):
        masks = spread.action_masks()
        np.testing.assert_array_equal(masks, slip.action_masks())
        info_a = spread.step(action)[4]
        info_b = slip.step(action)[4]
        for key in ("equity", "cash", "positions", "costs", "invalid_action"):
            np.testing.assert_array_equal(info_a[key], info_b[key])
        assert info_a["cash"] >= 0.0


def test_masked_trading_spread_from_data_needs_the_column():
    with pytest.raises(ValueError, match="spread column"):
        hand_env(costs={"half_spread_bps": "data"})


# ------------------------------------------------------------------------------ financing, brackets, refusals
def ohlc_pair_data(bull, bear, bull_low=None) -> MarketData:
    """:func:`pair_data` with open = close, high/low 1 % around it (``bull_low`` overrides the bull's lows)."""
    closes = np.column_stack([[100.0] * len(bull), bull, bear])
    low = closes * 0.99
    if bull_low is not None:
        low[:, 1] = bull_low
    return MarketData(
        prices=closes, open=closes, high=closes * 1.01, low=low, asset_names=["index", "bull", "bear"], periods_per_year=252.0
    )


def test_leveraged_pair_cash_interest_by_hand():
    env = pair_env(commission_bps=0.0, financing={"cash_rate": 0.05}, initial_split=1.0)
    _, info = env.reset()
    cash = info["cash"]  # the whole-share remainder of the purchase
    assert info["financing"] == 0.0
    for _ in range(3):
        _, _, _, _, info = env.step(np.array([1.0], dtype=np.float32))
        assert info["financing"] == pytest.approx(cash * 0.05 / 252)
        cash *= 1 + 0.05 / 252
        assert info["cash"] == pytest.approx(cash)


def test_leveraged_pair_stop_loss_order_closes_the_etf():
    # the bull's low on row 2 falls through a 5 % stop below the 30.0 entry: closed at 28.5
    data = ohlc_pair_data(
        (30.0, 30.0, 29.5, 31.0, 28.0), (70.0, 70.0, 71.0, 66.0, 72.0), bull_low=[29.7, 29.7, 28.0, 30.7, 27.7]
    )
    env = pair_env(data=data, commission_bps=0.0, brackets={"stop_loss": 0.05}, initial_split=1.0)
    _, info = env.reset()
    shares = info["positions"][0]
    _, _, _, _, info = env.step(np.array([1.0], dtype=np.float32))
    assert info["bracket_exits"] == 1 and info["positions"][0] == 0.0
    assert info["cash"] == pytest.approx(10_000.0 - shares * 30.0 + shares * 28.5)


def test_leveraged_pair_takes_every_rule_and_the_presets():
    env = LeveragedPairEnv(costs="us_equities", brackets={"stop_loss": 2.0, "unit": "atr"})
    env.reset(seed=0)
    for _ in range(20):
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
        assert info["cash"] >= 0.0 and info["costs"] > 0.0 and {"financing", "unfilled", "bracket_exits"} <= set(info)
        if terminated or truncated:
            break
    with pytest.raises(ValueError, match="lot_size=0.5 must be a whole number"):
        pair_env(costs={"lot_size": 0.5})


def test_masked_trading_cash_interest_and_brackets():
    closes = hand_data().prices
    data = MarketData(
        prices=closes,
        open=closes,
        high=closes * 1.01,
        low=closes * 0.99,
        asset_names=["index", "bull", "bear"],
        periods_per_year=252.0,
    )
    env = hand_env(data=data, commission_bps=0.0, financing={"cash_rate": 0.05}, brackets={"take_profit": 0.02})
    env.reset()
    _, _, _, _, info = env.step(BULL_50)  # half in the bull at 50.0: its take-profit at 51.0
    assert info["financing"] == pytest.approx(E0 / 2 * 0.05 / 252)
    # the next bar opens at 51.5, beyond the take-profit: filled at that open
    assert info["bracket_exits"] == 1 and info["positions"][0] == 0.0
    assert info["cash"] == pytest.approx(E0 / 2 * (1 + 0.05 / 252) + E0 / 2 / 50.0 * 51.5)
    with pytest.raises(ValueError, match="open, high and low"):
        hand_env(brackets={"stop_loss": 0.05})


def test_masked_trading_fees_per_order_by_hand_and_the_mask_stays_exact():
    """A fixed fee and a minimum commission per order: the fill pays them, and the cash rule prices them, so a size
    that fits the cash without the fee is masked with it."""
    env = hand_env(costs={"fixed_fee": 5.0, "min_fee": 200.0})
    env.reset()
    _, _, _, _, info = env.step(BULL_10)  # 100,000 of the bull at 50: max(10 bps = 100, 200) + 5
    assert info["costs"] == pytest.approx(205.0, rel=1e-12)
    assert info["cash"] == pytest.approx(E0 - 100_000.0 - 205.0, rel=1e-12)
    # 0.999 E costs 999,000 + 999 of commission: affordable; with a fee of 5 it is 4 over the cash
    kwargs = {"sizes": (0.5, 0.999), "max_concentration": 1.0}
    plain, fee = hand_env(**kwargs), hand_env(costs={"fixed_fee": 5.0}, **kwargs)
    plain.reset()
    fee.reset()
    assert plain.action_masks()[2] and not fee.action_masks()[2]
    assert fee.mask_reasons()[fee.action_labels[2]] == "cash"
    assert fee.step(2)[4]["invalid_action"]  # chosen anyway: not executed


def test_masked_trading_fees_and_impact_never_leave_negative_cash():
    """Random legal actions on a market with volume, square-root impact, a fixed fee and a minimum commission: the
    mask prices every order as the fill does, so the cash never goes below zero; the venue preset 'fx' is taken."""
    data = make_leveraged_pair_market(n_steps=600, seed=0)
    costs = {"impact_k": 1.0, "fixed_fee": 3.0, "min_fee": 10.0}
    env = MaskedTradingEnv(data=data, costs=costs, max_concentration=1.0, sizes=(0.25, 0.5, 0.99))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    traded = 0
    for _ in range(300):
        action = int(rng.choice(np.flatnonzero(env.action_masks())))
        _, _, terminated, truncated, info = env.step(action)
        assert info["cash"] >= -1e-9 * info["equity"] and not info["invalid_action"]
        traded += info["costs"] > 0.0
        if terminated or truncated:
            env.reset()
    assert traded > 20
    assert MaskedTradingEnv(data=data, costs="fx").costs.min_fee == 2.0


@pytest.mark.parametrize(
    "kwargs, feature",
    [
        ({"costs": {"participation": 0.1}}, "participation"),
        ({"costs": {"lot_size": 1.0}}, "lot_size"),
    ],
)
def test_masked_trading_refuses_rules_by_name(kwargs, feature):
    with pytest.raises(ValueError, match=f"MaskedTradingEnv does not model {feature}"):
        hand_env(**kwargs)


def test_masked_trading_refuses_a_leverage_cap_it_would_not_apply():
    with pytest.raises(ValueError, match="leverage cap below 1"):
        hand_env(margin={"max_leverage": 0.5})
    assert hand_env(margin={"max_leverage": 1.5, "maintenance_margin": 0.25}).market_rules.margin.max_leverage == 1.5


def test_all_zero_financing_is_no_rule():
    assert hand_env(financing={"cash_rate": 0.0}).market_rules.financing is None
    assert pair_env(financing={"cash_rate": 0.0}).market_rules.financing is None


def test_masked_trading_refuses_a_venue_preset_naming_what_it_carries():
    """us_equities carries lots and a participation cap, which would fill other sizes than the action table's."""
    with pytest.raises(ValueError, match=r"does not model participation, lot_size"):
        hand_env(costs="us_equities")


@pytest.mark.parametrize("make", [pair_env, hand_env])
def test_shortcut_clashes_with_a_cost_model(make):
    with pytest.raises(ValueError, match="commission_bps"):
        make(commission_bps=5.0, costs=CostModel(commission_bps=10.0))
    with pytest.raises(ValueError, match="given both"):
        make(commission_bps=5.0, costs={"commission_bps": 10.0})
    env = make(commission_bps=5.0, costs={"half_spread_bps": 1.0})  # a dict without it takes the shortcut
    assert env.costs == CostModel(commission_bps=5.0, half_spread_bps=1.0)


@pytest.mark.parametrize("make", [pair_env, hand_env])
def test_defaults_are_the_old_cost_model(make):
    env = make()
    assert env.costs == CostModel(10.0, 0.0) and env.market_rules.features == ()
    assert make(commission_bps=3.0, slippage_bps=2.0).costs == CostModel(3.0, 2.0)
