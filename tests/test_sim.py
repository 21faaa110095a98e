"""Property tests of the accounting core's invariants (DESIGN.md, "The accounting core")."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from sb3_trading.sim import CostModel, Portfolio, fill_trades, portfolio_value, round_to_lots

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)
positive = st.floats(min_value=0.01, max_value=1e4, allow_nan=False, allow_infinity=False)
bps = st.floats(min_value=0.0, max_value=500.0, allow_nan=False)


@st.composite
def books(draw):
    n_envs = draw(st.integers(1, 8))
    n_assets = draw(st.integers(1, 6))
    shape = (n_envs, n_assets)
    positions = draw(hnp.arrays(np.float64, shape, elements=finite))
    target = draw(hnp.arrays(np.float64, shape, elements=finite))
    prices = draw(hnp.arrays(np.float64, shape, elements=positive))
    cash = draw(hnp.arrays(np.float64, (n_envs,), elements=st.floats(1.0, 1e7)))
    costs = CostModel(draw(bps), draw(bps))
    return positions, target, prices, cash, costs


def make_book(positions, prices, cash, costs):
    book = Portfolio(*positions.shape, costs=costs)
    book.reset(cash, positions=positions, prices=prices)
    return book


@settings(max_examples=200, deadline=None)
@given(books())
def test_equity_identity_and_costs(case):
    positions, target, prices, cash, costs = case
    book = make_book(positions, prices, cash, costs)
    before = book.equity(prices)
    fills = book.trade_to(target, prices)
    after = book.equity(prices)
    # equity = cash + positions . prices, and the only loss from trading at mid is the cost
    np.testing.assert_allclose(after, book.cash + (book.positions * prices).sum(axis=1), rtol=1e-12, atol=1e-6)
    np.testing.assert_allclose(before - after, fills.costs, rtol=1e-9, atol=1e-6)
    assert (fills.costs >= 0).all()
    np.testing.assert_array_equal(book.positions, target)
    for array in (book.cash, book.positions, fills.costs, fills.notional, fills.fill_prices):
        assert np.isfinite(array).all()


@settings(max_examples=100, deadline=None)
@given(books())
def test_trading_to_current_positions_is_a_no_op(case):
    positions, _, prices, cash, costs = case
    book = make_book(positions, prices, cash, costs)
    cash_before = book.cash.copy()
    fills = book.trade_to(book.positions.copy(), prices)
    np.testing.assert_array_equal(fills.costs, 0.0)
    np.testing.assert_array_equal(fills.notional, 0.0)
    np.testing.assert_array_equal(book.cash, cash_before)
    np.testing.assert_array_equal(book.positions, positions)


@settings(max_examples=100, deadline=None)
@given(books())
def test_zero_trade_costs_nothing(case):
    _, _, prices, _, costs = case
    fills = fill_trades(np.zeros_like(prices), prices, costs)
    np.testing.assert_array_equal(fills.costs, 0.0)
    np.testing.assert_array_equal(fills.fill_prices, prices)


@settings(max_examples=100, deadline=None)
@given(books())
def test_costs_scale_with_rates_and_are_symmetric_in_side(case):
    _, target, prices, _, costs = case
    buy = fill_trades(np.abs(target), prices, costs)
    sell = fill_trades(-np.abs(target), prices, costs)
    notional = (np.abs(target) * prices).sum(axis=1)
    c, s = costs.commission, costs.slippage
    # buy: s + c (1 + s); sell: s + c (1 - s), per unit of mid notional
    np.testing.assert_allclose(buy.costs, notional * (s + c * (1 + s)), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(sell.costs, notional * (s + c * (1 - s)), rtol=1e-9, atol=1e-9)
    assert (buy.fill_prices >= prices).all() and (sell.fill_prices <= prices).all()


def test_hand_example():
    """One buy and one sell with 10 bps commission and 5 bps slippage, by hand."""
    book = Portfolio(1, 2, CostModel(commission_bps=10.0, slippage_bps=5.0))
    book.reset(10_000.0, positions=np.array([[0.0, 20.0]]), prices=np.array([[100.0, 50.0]]))
    assert book.equity(np.array([[100.0, 50.0]]))[0] == pytest.approx(11_000.0)
    fills = book.trade_to(np.array([[30.0, 10.0]]), np.array([[100.0, 50.0]]))
    # buy 30 @ 100.05, commission 0.001 * 30 * 100.05; sell 10 @ 49.975, commission 0.001 * 10 * 49.975
    cash = 10_000.0 - 30 * 100.05 - 0.001 * 30 * 100.05 + 10 * 49.975 - 0.001 * 10 * 49.975
    assert book.cash[0] == pytest.approx(cash, abs=1e-9)
    assert fills.costs[0] == pytest.approx(30 * 0.05 + 0.001 * 30 * 100.05 + 10 * 0.025 + 0.001 * 10 * 49.975, abs=1e-9)
    assert fills.notional[0] == pytest.approx(3000.0 + 500.0)
    equity, drawdown = book.mark(np.array([[110.0, 40.0]]))
    assert equity[0] == pytest.approx(cash + 30 * 110.0 + 10 * 40.0, abs=1e-9)
    assert drawdown[0] == pytest.approx(0.0)
    equity2, drawdown2 = book.mark(np.array([[90.0, 40.0]]))
    assert drawdown2[0] == pytest.approx(1 - equity2[0] / equity[0], abs=1e-12)


def test_batch_rows_are_independent():
    """A batch of portfolios gives the same numbers as each portfolio alone."""
    rng = np.random.default_rng(0)
    prices = rng.uniform(10, 100, size=(5, 3))
    target = rng.normal(0, 50, size=(5, 3))
    batch = Portfolio(5, 3, CostModel(7.0, 3.0))
    batch.reset(np.full(5, 1e5))
    batch_fills = batch.trade_to(target, prices)
    for i in range(5):
        single = Portfolio(1, 3, CostModel(7.0, 3.0))
        single.reset(1e5)
        fills = single.trade_to(target[i : i + 1], prices[i : i + 1])
        np.testing.assert_allclose(single.cash, batch.cash[i : i + 1], rtol=0, atol=1e-9)
        np.testing.assert_allclose(fills.costs, batch_fills.costs[i : i + 1], rtol=0, atol=1e-12)


def test_round_to_lots_never_grows_a_position():
    shares = np.array([[10.7, -10.7, 0.4, -0.4]])
    np.testing.assert_array_equal(round_to_lots(shares, 1.0), [[10.0, -10.0, 0.0, -0.0]])
    np.testing.assert_array_equal(round_to_lots(shares, None), shares)
    assert portfolio_value(np.array([5.0]), shares, np.ones((1, 4)))[0] == pytest.approx(5.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"commission_bps": -1.0},
        {"slippage_bps": float("nan")},
        {"slippage_bps": 1e4},
        {"commission_bps": 1e4},
        {"commission_bps": 2e4},
        {"commission_bps": float("inf")},
    ],
)
def test_cost_model_rejects_bad_rates(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        CostModel(**kwargs)


@pytest.mark.parametrize("kwargs", [{"commission_bps": "10"}, {"slippage_bps": None}, {"commission_bps": True}])
def test_cost_model_rejects_non_numbers_with_a_type_error(kwargs):
    with pytest.raises(TypeError, match=next(iter(kwargs))):
        CostModel(**kwargs)


def test_cost_model_rates_are_plain_floats_below_100_percent():
    costs = CostModel(np.int64(10), np.float32(9_999.0))
    assert type(costs.commission_bps) is float and type(costs.slippage_bps) is float
    assert costs.commission == pytest.approx(1e-3) and costs.slippage < 1.0


def test_reset_rejects_bad_cash():
    book = Portfolio(2, 2)
    with pytest.raises(ValueError, match="initial_cash"):
        book.reset(np.array([1.0, -1.0]))
