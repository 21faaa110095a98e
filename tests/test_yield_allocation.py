"""sb3_trading/YieldAllocation-v0, its synthetic market and the yield/rebalance accounting primitives."""

import copy
import warnings
from fractions import Fraction

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import given, settings
from hypothesis import strategies as st
from lookahead import assert_no_look_ahead
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.data import MarketData
from sb3_trading.data.yield_market import apy_column, depeg_column, make_yield_market
from sb3_trading.envs import INFO_KEYS, MARKET_KEY, PORTFOLIO_KEY
from sb3_trading.envs.yield_allocation import (
    DEFAULT_YIELD_INDICATORS,
    FEASIBLE_SUM_TOL,
    CappedSimplexProjection,
    YieldAllocationEnv,
    project_capped_simplex,
    stable_order,
    yield_weights,
)
from sb3_trading.features import FeatureNormalizer, compute_features
from sb3_trading.sim import CostModel, Portfolio
from sb3_trading.sim.accrual import accrue_yield, friction_rates, self_financing_value
from sb3_trading.sim.kernels import self_financing_kernel

ENV_ID = "sb3_trading/YieldAllocation-v0"
# SB3 recommends 1-D vectors; the (window, F) market block is our documented layout
SB3_SHAPE_WARNING = "unconventional shape"
E0 = 10_000.0


def hand_data(prices, apy=0.0, extra_features=None, extra_names=()) -> MarketData:
    """Two assets ``A``, ``B`` with constant APYs and optional extra feature columns; row 0 only warms up the
    'return' indicator."""
    prices = np.asarray(prices, dtype=np.float64)
    features = np.broadcast_to(np.asarray(apy, dtype=np.float64), prices.shape)
    if extra_features is not None:
        features = np.hstack([features, extra_features])
    names = ["apy[A]", "apy[B]", *extra_names]
    return MarketData(prices=prices, features=features, asset_names=["A", "B"], feature_names=names)


def hand_env(prices=None, apy=0.0, **kwargs) -> YieldAllocationEnv:
    prices = np.ones((4, 2)) if prices is None else prices
    kwargs = {
        "initial_cash": E0,
        "rebalance_cost_bps": 0.0,
        "indicators": ["return"],
        "normalizer": None,
        "lower_bound": 0.0,
        "upper_bound": 1.0,
        **kwargs,
    }
    data = kwargs.pop("data") if "data" in kwargs else hand_data(prices, apy)
    return YieldAllocationEnv(data=data, **kwargs)


# --------------------------------------------------------------------------- action -> weights
def _bisection_projection(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Reference: the same projection, with tau found by 200 bisection steps."""
    lo, hi = (x - upper).min() - 1.0, (x - lower).max() + 1.0
    for _ in range(200):
        tau = 0.5 * (lo + hi)
        if np.clip(x - tau, lower, upper).sum() > 1.0:
            lo = tau
        else:
            hi = tau
    return np.clip(x - 0.5 * (lo + hi), lower, upper)


@st.composite
def bounded_actions(draw):
    k = draw(st.integers(1, 8))
    lower = np.array(draw(st.lists(st.floats(0.0, 1.0 / k), min_size=k, max_size=k)))
    spare = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k)))
    upper = np.minimum(lower + spare, 1.0)
    if upper.sum() < 1.0:  # make sum(upper) >= 1 by raising the caps
        upper = np.maximum(upper, 1.0 / k)
    actions = np.array(draw(st.lists(st.floats(-1.0, 1.0), min_size=k, max_size=k)))
    temperature = draw(st.floats(0.05, 5.0))
    return actions, lower, upper, temperature


@settings(max_examples=100, deadline=None)
@given(bounded_actions())
def test_weights_sum_to_one_within_bounds(case):
    actions, lower, upper, temperature = case
    weights = yield_weights(actions[None, :], lower, upper, temperature)[0]
    assert weights.sum() == pytest.approx(1.0, abs=1e-12)
    assert (weights >= lower).all() and (weights <= upper).all()
    # it is the Euclidean projection of the softmax onto the capped simplex
    z = np.exp(actions / temperature - (actions / temperature).max())
    np.testing.assert_allclose(weights, _bisection_projection(z / z.sum(), lower, upper), atol=1e-9)


def test_projection_is_batched_and_the_identity_on_feasible_points():
    lower, upper = np.full(3, 0.1), np.full(3, 0.5)
    x = np.array([[0.2, 0.3, 0.5], [0.9, 0.05, 0.05], [1.0, 1.0, 1.0], [-3.0, 0.0, 4.0]])
    w = project_capped_simplex(x, lower, upper)
    np.testing.assert_array_equal(w[0], x[0])
    np.testing.assert_allclose(w[1], [0.5, 0.25, 0.25], atol=1e-15)
    np.testing.assert_allclose(w[2], [1 / 3] * 3, atol=1e-15)
    np.testing.assert_allclose(w[3], [0.1, 0.4, 0.5], atol=1e-15)
    # unconstrained bounds: the softmax itself
    a = np.array([[0.3, -0.2, 0.9]])
    np.testing.assert_allclose(yield_weights(a, np.zeros(3), np.ones(3)), np.exp(a) / np.exp(a).sum(), atol=1e-15)
    # tight bounds: sum(lower) = 1 or sum(upper) = 1 pin the weights
    np.testing.assert_allclose(project_capped_simplex(x, np.full(3, 1 / 3), np.ones(3)), np.full((4, 3), 1 / 3), atol=1e-15)
    np.testing.assert_allclose(project_capped_simplex(x, np.zeros(3), np.full(3, 1 / 3)), np.full((4, 3), 1 / 3), atol=1e-15)


def _exact_projection(x: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """Reference: the projection in exact rational arithmetic, g evaluated at every breakpoint (a loop: tests only)."""
    xs, lo, hi = ([Fraction(float(v)) for v in a] for a in (x, lower, upper))

    def g(tau):
        return sum(min(max(xi - tau, li), ui) for xi, li, ui in zip(xs, lo, hi, strict=True))

    breaks = sorted({xi - bi for xi, b in zip(xs, zip(lo, hi, strict=True), strict=True) for bi in b})
    if g(breaks[0]) <= 1:
        tau = breaks[0]  # sum(upper) <= 1: every weight at its upper bound
    elif g(breaks[-1]) >= 1:
        tau = breaks[-1]  # sum(lower) >= 1: every weight at its lower bound
    else:
        b0, b1 = next((b0, b1) for b0, b1 in zip(breaks[:-1], breaks[1:], strict=True) if g(b0) >= 1 >= g(b1))
        tau = b0 if g(b0) == g(b1) else b0 + (g(b0) - 1) * (b1 - b0) / (g(b0) - g(b1))
    return np.array([float(min(max(xi - tau, li), ui)) for xi, li, ui in zip(xs, lo, hi, strict=True)])


@st.composite
def projection_cases(draw):
    """Points and bounds with the edge cases: ties, points on the bounds, zero bounds, lower = upper, tight sums."""
    k = draw(st.integers(1, 8))
    grid = st.sampled_from([0.0, 0.05, 0.1, 0.125, 0.25, 0.5, 1.0])  # few values: ties and points on the bounds
    lower = np.array(draw(st.lists(st.one_of(grid, st.floats(0.0, 1.0 / k)), min_size=k, max_size=k)))
    lower = np.minimum(lower, 1.0 / k)
    upper = np.maximum(lower, np.array(draw(st.lists(st.one_of(grid, st.floats(0.0, 1.0)), min_size=k, max_size=k))))
    if upper.sum() < 1.0:
        upper = np.maximum(upper, 1.0 / k)
    tight = draw(st.sampled_from(["none", "lower", "upper"]))
    if tight == "lower":  # sum(lower) = 1: the only feasible point is lower
        lower = upper = np.full(k, 1.0 / k)
    elif tight == "upper":
        upper = np.full(k, 1.0 / k)
        lower = np.minimum(lower, upper)
    scale = draw(st.sampled_from([0.01, 1.0, 5.0]))
    values = st.one_of(grid, st.floats(-scale, scale))
    x = np.array(draw(st.lists(st.lists(values, min_size=k, max_size=k), min_size=1, max_size=4)))
    return x, lower, upper


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from([-1.0, -0.25, 0.0, 0.5, 2.0]) | st.floats(-3.0, 3.0), min_size=1, max_size=40))
def test_stable_order_is_numpys_stable_argsort(values):
    """The projection's insertion sort orders like ``np.argsort(kind="stable")``, ties in index order."""
    values = np.array(values)
    order = np.empty(values.shape[0], dtype=np.int64)
    stable_order(values, order)
    np.testing.assert_array_equal(order, np.argsort(values, kind="stable"))


@settings(max_examples=100, deadline=None)
@given(projection_cases())
def test_projection_is_exact(case):
    """The sorted-breakpoint projection equals the exact rational one, row by row and batched alike."""
    x, lower, upper = case
    projection = CappedSimplexProjection(lower, upper)
    batch = projection(x)
    tolerance = 4e-15 * max(1.0, np.abs(x).max())
    for row, w in zip(x, batch, strict=True):
        np.testing.assert_allclose(w, _exact_projection(row, lower, upper), rtol=0, atol=tolerance)
        assert (w >= lower).all() and (w <= upper).all()
        # one row alone (the single env's batch of one) is the same arithmetic as the batch
        np.testing.assert_array_equal(projection(row[None])[0], w)
        np.testing.assert_array_equal(project_capped_simplex(row[None], lower, upper)[0], w)
    feasible = x[((x >= lower) & (x <= upper)).all(axis=1) & (np.abs(x.sum(axis=1) - 1.0) <= FEASIBLE_SUM_TOL)]
    np.testing.assert_array_equal(projection(feasible) if len(feasible) else feasible, feasible)  # rows as they are


def test_env_weights_respect_bounds_over_random_actions():
    env = YieldAllocationEnv(data=make_yield_market(n_steps=200, seed=2), lower_bound=[0.1, 0.0, 0.2, 0.05], upper_bound=0.5)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    for _ in range(100):
        *_, truncated, info = env.step(rng.uniform(-1, 1, 4) * 3)
        w = info["target_weights"]
        assert w.sum() == pytest.approx(1.0, abs=1e-12)
        assert (w >= env.lower_bound).all() and (w <= env.upper_bound).all()
        assert info["cash"] == pytest.approx(0.0, abs=1e-6 * info["equity"])  # the rebalance is self-financing
        if truncated:
            env.reset()


# --------------------------------------------------------------------------- hand examples
@pytest.mark.parametrize("periods_per_year", [252, 365])
def test_pure_yield_compounds(periods_per_year):
    """Constant prices, constant APYs, zero costs: E_n = E_0 (1 + w . apy / ppy)^n."""
    n = 10
    env = hand_env(prices=np.ones((n + 2, 2)), apy=[0.04, 0.06], periods_per_year=periods_per_year)
    _, info = env.reset()
    assert info["t"] == 1 and info["equity"] == E0
    rate = 0.05 / periods_per_year  # w = [0.5, 0.5] for a = [0, 0]
    for k in range(1, n + 1):
        _, reward, terminated, truncated, info = env.step(np.zeros(2))
        assert info["equity"] == pytest.approx(E0 * (1 + rate) ** k, abs=1e-9)
        assert reward == pytest.approx(rate, abs=1e-12) and info["portfolio_return"] == reward
        assert info["yield_income"] == pytest.approx(E0 * (1 + rate) ** (k - 1) * rate, abs=1e-9)
        assert info["costs"] == 0.0 and info["depeg_penalty"] == 0.0
        assert not terminated and truncated == (k == n)
    # interest was paid in shares
    np.testing.assert_allclose(
        info["positions"],
        [
            E0 * (1 + rate) ** (n - 1) * 0.5 * (1 + 0.04 / periods_per_year),
            E0 * (1 + rate) ** (n - 1) * 0.5 * (1 + 0.06 / periods_per_year),
        ],
    )


def test_rebalance_with_costs():
    c = 5e-4  # 5 bps
    prices = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.1, 0.9]])
    env = hand_env(prices=prices, rebalance_cost_bps=5.0, lower_bound=0.4, upper_bound=0.6, depeg_penalty=0.0)
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs[PORTFOLIO_KEY], np.array([0.0, 0.0, 1.0, 0.0], dtype=np.float32))

    # all cash -> [0.5, 0.5]: V + c V = E0, so V1 = E0 / (1 + c), all of it invested, no cash left
    obs, reward, _, _, info = env.step(np.zeros(2))
    v1 = E0 / (1 + c)
    assert info["equity"] == pytest.approx(v1, abs=1e-9)
    assert info["costs"] == pytest.approx(c * v1, abs=1e-9)
    assert info["turnover"] == pytest.approx(v1 / E0, abs=1e-12)
    assert info["cash"] == pytest.approx(0.0, abs=1e-9)
    np.testing.assert_allclose(info["positions"], [v1 / 2, v1 / 2], atol=1e-9)
    assert reward == pytest.approx(1 / (1 + c) - 1, abs=1e-12)
    np.testing.assert_allclose(obs[PORTFOLIO_KEY], [0.5, 0.5, 0.0, c / (1 + c)], atol=1e-7)  # costs are a drawdown

    # a = [1, -1]: softmax [0.88, 0.12] projected onto [0.4, 0.6] -> [0.6, 0.4]
    # buy 0.6 V2 - V1/2 of A, sell V1/2 - 0.4 V2 of B: notional 0.2 V2, so V2 (1 + 0.2 c) = V1
    _, reward, _, truncated, info = env.step(np.array([1.0, -1.0]))
    np.testing.assert_allclose(info["target_weights"], [0.6, 0.4], atol=1e-15)
    v2 = v1 / (1 + 0.2 * c)
    equity_3 = v2 * (0.6 * 1.1 + 0.4 * 0.9)
    assert info["costs"] == pytest.approx(0.2 * c * v2, abs=1e-9)
    assert info["turnover"] == pytest.approx(0.2 * v2 / v1, abs=1e-12)
    assert info["equity"] == pytest.approx(equity_3, abs=1e-9)
    assert reward == pytest.approx(equity_3 / v1 - 1, abs=1e-12)
    np.testing.assert_allclose(info["weights"], [0.6 * 1.1 * v2 / equity_3, 0.4 * 0.9 * v2 / equity_3], atol=1e-12)
    assert truncated  # the last bar


def test_size_action_invests_a_fraction_past_its_dead_zone():
    """``size_action=True``: the last entry ``s`` invests ``x = max((|s| - d) / (1 - d), 0)`` (sign kept) of the
    book, the rest cash earning the cash rate; ``s <= d`` (the untrained policy's near-zero action) stays all cash."""
    c = 5e-4
    prices = np.array([[1.0, 1.0]] * 5 + [[1.1, 0.9]])
    env = hand_env(prices=prices, apy=[0.0252, 0.0504], rebalance_cost_bps=5.0, size_action=True, dead_zone=0.2,
                   financing={"cash_rate": 0.0252}, depeg_penalty=0.0)  # fmt: skip
    assert env.action_space.shape == (3,)
    env.reset()
    # s = 0.1 is inside the dead zone: nothing invested, the cash earns 0.0252 / 252 = 1e-4
    _, reward, _, _, info = env.step(np.array([1.0, -1.0, 0.1]))
    np.testing.assert_array_equal(info["target_weights"], [0.0, 0.0])
    assert info["costs"] == 0.0 and info["positions"].tolist() == [0.0, 0.0]
    assert reward == pytest.approx(1e-4, abs=1e-15) and info["financing"] == pytest.approx(E0 * 1e-4)
    # s = -0.5: negative past the dead zone is still nothing (no shorting the book)
    _, _, _, _, info = env.step(np.array([0.0, 0.0, -0.5]))
    np.testing.assert_array_equal(info["target_weights"], [0.0, 0.0])
    # s = 0.6: x = 0.4 / 0.8 = 0.5 of V in [0.5, 0.5]: V + c * 0.5 V = E, half of V in cash
    e = info["equity"]
    _, reward, _, _, info = env.step(np.array([0.0, 0.0, 0.6]))
    np.testing.assert_allclose(info["target_weights"], [0.25, 0.25], atol=1e-7)
    v = e / (1 + 0.5 * c)
    assert info["costs"] == pytest.approx(0.5 * c * v, rel=1e-6)
    yields = 0.25 * v * (0.0252 + 0.0504) / 252
    cash = e - 0.5 * v * (1 + c)
    assert info["equity"] == pytest.approx(0.5 * v + yields + cash * (1 + 1e-4), rel=1e-6)
    # s = 1 is fully invested, as without the sizing entry
    _, _, _, _, info = env.step(np.array([0.0, 0.0, 1.0]))
    np.testing.assert_allclose(info["target_weights"], [0.5, 0.5], atol=1e-12)


def test_rebalance_band_keeps_the_book_until_a_target_leaves_it():
    """Threshold rebalancing: a target within the band of the weights held trades nothing (the book drifts with
    prices); one past it rebalances all the way to the target, paying the usual self-financing cost."""
    c = 5e-4
    prices = np.array([[1.0, 1.0], [1.0, 1.0], [1.2, 1.0], [1.2, 1.0], [1.2, 1.0]])
    env = hand_env(prices=prices, rebalance_cost_bps=5.0, lower_bound=0.3, upper_bound=0.7, rebalance_band=0.12)
    env.reset()
    _, _, _, _, info = env.step(np.zeros(2))  # all cash -> [0.5, 0.5]: the gap 0.5 is past the band
    v1 = E0 / (1 + c)
    assert info["costs"] == pytest.approx(c * v1, abs=1e-9)
    shares = np.array([v1 / 2, v1 / 2])  # bought at 1; A then rose 20 %: weights [0.545, 0.455]
    np.testing.assert_allclose(info["weights"], [0.6 / 1.1, 0.5 / 1.1], atol=1e-12)

    # softmax([0.1, -0.1]) = [0.550, 0.450]: within 0.12 of every weight held -> no trade, the same shares
    _, _, _, _, info = env.step(np.array([0.1, -0.1]))
    assert info["costs"] == 0.0 and info["turnover"] == 0.0
    asked = np.exp([0.1, -0.1]) / np.exp([0.1, -0.1]).sum()
    np.testing.assert_allclose(info["target_weights"], asked, atol=1e-15)  # what was asked, not what was held
    np.testing.assert_allclose(info["positions"], shares, rtol=1e-12)  # share counts
    equity = info["equity"]
    assert equity == pytest.approx(v1 * 1.1, rel=1e-12)

    # softmax([1, -1]) projected onto [0.3, 0.7] = [0.7, 0.3]: A's gap 0.7 - 0.545 = 0.155 is past the band
    _, _, _, _, info = env.step(np.array([1.0, -1.0]))
    held_a, held_b = shares[0] * 1.2, shares[1]
    # buy A, sell B: V + c ((0.7 V - v_A) + (v_B - 0.3 V)) = E  =>  V = (E - c (v_B - v_A)) / (1 + 0.4 c)
    invested = (equity - c * (held_b - held_a)) / (1 + 0.4 * c)
    assert info["costs"] == pytest.approx(c * (0.4 * invested - held_a + held_b), rel=1e-9)
    assert info["equity"] == pytest.approx(invested, rel=1e-12)  # flat prices over the step
    np.testing.assert_allclose(info["weights"], [0.7, 0.3], atol=1e-12)


@pytest.mark.parametrize("price_b, penalty", [(0.95, 2.0 * 0.4 * 0.05), (0.997, 0.0)])
def test_depeg_penalty(price_b, penalty):
    prices = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, price_b]])
    env = hand_env(prices=prices, lower_bound=0.4, upper_bound=0.6, depeg_penalty=2.0, depeg_tolerance=0.005)
    env.reset()
    _, reward, _, _, info = env.step(np.array([1.0, -1.0]))  # w = [0.6, 0.4]
    raw = 0.6 + 0.4 * price_b - 1.0
    assert info["portfolio_return"] == pytest.approx(raw, abs=1e-12)
    assert info["depeg_penalty"] == pytest.approx(penalty, abs=1e-12)
    assert reward == pytest.approx(raw - penalty, abs=1e-12)


def test_depeg_uses_the_peg_argument():
    prices = np.array([[100.0, 100.0], [100.0, 100.0], [100.0, 90.0]])
    with pytest.warns(UserWarning, match="far from peg"):
        hand_env(prices=prices)
    env = hand_env(prices=prices, lower_bound=0.5, upper_bound=0.5, peg=[100.0, 100.0])
    env.reset()
    *_, info = env.step(np.zeros(2))
    assert info["depeg_penalty"] == pytest.approx(0.5 * 0.1, abs=1e-12)


@pytest.mark.parametrize(("max_drawdown", "action"), [(0.15, "terminate"), (0.15, "truncate"), (None, "terminate")])
def test_drawdown_limit_ends_the_episode(max_drawdown, action):
    prices = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 0.8], [1.0, 0.6], [1.0, 0.6], [1.0, 0.6]])
    env = hand_env(prices=prices, lower_bound=0.5, upper_bound=0.5, max_drawdown=max_drawdown, drawdown_action=action)
    env.reset()
    *_, terminated, truncated, info = env.step(np.zeros(2))
    assert info["drawdown"] == pytest.approx(0.1) and not truncated and not terminated
    *_, terminated, truncated, info = env.step(np.zeros(2))  # 0.9 * (0.5 + 0.5 * 0.75) = 0.7875
    assert info["drawdown"] == pytest.approx(1 - 0.7875)
    limited = max_drawdown is not None
    assert terminated == (limited and action == "terminate")
    assert truncated == (limited and action == "truncate")
    assert info.get("terminated_by") == ("drawdown_limit" if terminated else None)


# --------------------------------------------------------------------------- accounting primitives
def test_accrue_yield_is_pure_and_shorts_pay():
    positions = np.array([[10.0, -4.0]])
    before = positions.copy()
    out = accrue_yield(positions, np.array([0.01, 0.02]), np.array([2.0, 3.0]))
    np.testing.assert_array_equal(positions, before)
    np.testing.assert_allclose(out.positions, [[10.1, -4.08]])
    assert out.income[0] == pytest.approx(0.1 * 2.0 - 0.08 * 3.0)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda k: st.tuples(
            st.lists(st.floats(0.0, 1e4), min_size=k, max_size=k),
            st.lists(st.floats(0.01, 1.0), min_size=k, max_size=k),
            st.lists(st.floats(0.1, 100.0), min_size=k, max_size=k),
        )
    ),
    st.floats(0.0, 500.0),
    st.floats(0.0, 500.0),
    st.floats(1.0, 1e4),
)
def test_self_financing_rebalance_leaves_no_cash(case, commission_bps, slippage_bps, cash):
    positions, raw_weights, prices = (np.array([v]) for v in case)
    weights = raw_weights / raw_weights.sum()
    costs = CostModel(commission_bps, slippage_bps)
    book = Portfolio(1, positions.shape[1], costs)
    book.reset(cash, positions=positions, prices=prices)
    equity = book.equity(prices)
    value = self_financing_value(equity, weights, book.positions, prices, costs)
    assert 0 < value[0] <= equity[0] * (1 + 1e-12)
    fills = book.trade_to(value[:, None] * weights / prices, prices)
    assert book.cash[0] == pytest.approx(0.0, abs=1e-9 * equity[0])
    assert book.equity(prices)[0] + fills.costs[0] == pytest.approx(equity[0], rel=1e-12)


def test_self_financing_value_edge_cases():
    weights, positions, prices = np.array([[0.5, 0.5]]), np.array([[5.0, 5.0]]), np.array([[1.0, 1.0]])
    assert self_financing_value(np.array([10.0]), weights, positions, prices, CostModel(0.0, 0.0))[0] == 10.0
    # already at the target: nothing to pay
    assert self_financing_value(np.array([10.0]), weights, positions, prices, CostModel(10.0, 5.0))[0] == 10.0
    # a commission of 100 % is refused by CostModel itself; rates below it whose frictions still reach 100 %
    # of a buy (s + c (1 + s) = 0.5 + 0.5 * 1.5 >= 1) leave nothing to invest
    with pytest.raises(ValueError, match="commission_bps"):
        CostModel(1e4, 0.0)
    with pytest.raises(ValueError, match="frictions"):
        self_financing_value(np.array([10.0]), weights, np.zeros((1, 2)), prices, CostModel(5_000.0, 5_000.0))


def _frictions(value: float, weights: np.ndarray, held: np.ndarray, costs: CostModel) -> float:
    """Reference ``F(V)``: the frictions of trading from values ``held`` to ``value * weights`` (see fill_trades)."""
    traded = value * weights - held
    return float(np.sum(np.abs(traded) * (costs.slippage + costs.commission * (1.0 + costs.slippage * np.sign(traded)))))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(1, 6).flatmap(
        lambda n: st.lists(
            st.tuples(
                st.lists(st.one_of(st.just(0.0), st.floats(-50.0, 1e4)), min_size=n, max_size=n),  # shares (shorts too)
                st.lists(st.one_of(st.just(0.0), st.floats(0.01, 1.0)), min_size=n, max_size=n),  # raw weights, zeros
                st.lists(st.floats(0.1, 100.0), min_size=n, max_size=n),  # prices
            ),
            min_size=1,
            max_size=4,
        )
    ),
    st.sampled_from([0.0, 1.0, 5.0, 50.0, 500.0]),
    st.sampled_from([0.0, 2.0, 30.0]),
    st.booleans(),
)
def test_self_financing_value_is_the_root(rows, commission_bps, slippage_bps, at_target):
    """V + F(V) = equity (F by brute force), for buy and sell rates that differ; batched and row by row alike."""
    positions, raw_weights, prices = (np.array([row[i] for row in rows]) for i in range(3))
    totals = raw_weights.sum(axis=1, keepdims=True)
    weights = np.divide(raw_weights, totals, out=np.full_like(raw_weights, 1.0 / raw_weights.shape[1]), where=totals > 0)
    costs = CostModel(commission_bps, slippage_bps)
    equity = 1e4 + np.abs(positions * prices).sum(axis=1)  # cash 1e4 on top: positive equity
    if at_target:  # holdings already worth equity * weights: kinks exactly at V = equity
        positions = equity[:, None] * weights / prices
    value = self_financing_value(equity, weights, positions, prices, costs)
    buy_rate, sell_rate = friction_rates(costs)
    assert (buy_rate, sell_rate) == pytest.approx(
        (costs.slippage + costs.commission * (1 + costs.slippage), costs.slippage + costs.commission * (1 - costs.slippage)),
        rel=1e-15,
    )
    held = positions * prices
    root, traded, notional = self_financing_kernel(equity, weights, held, costs.commission, costs.slippage, 0.0, 0.0)
    np.testing.assert_array_equal(root, value)  # the one solve, behind the public front
    for i in range(len(rows)):
        v = value[i]
        assert 0.0 < v <= equity[i] * (1 + 1e-12)
        residual = v + _frictions(v, weights[i], held[i], costs) - equity[i]
        assert abs(residual) <= 1e-12 * equity[i]
        # one row alone: the same root (rows are independent), and the trade at it
        assert (
            self_financing_value(equity[i : i + 1], weights[i : i + 1], positions[i : i + 1], prices[i : i + 1], costs)[0] == v
        )
        np.testing.assert_allclose(traded[i], v * weights[i] - held[i], rtol=0, atol=1e-9 * equity[i])
        assert notional[i] == pytest.approx(np.abs(traded[i]).sum(), rel=1e-12, abs=1e-9)


def test_env_step_is_the_accounting_core():
    """The env's one-row accounting equals Portfolio.trade_to, accrue_yield and Portfolio.mark / weights."""
    data = make_yield_market(n_assets=4, n_steps=300, seed=3)
    env = YieldAllocationEnv(data=data, rebalance_cost_bps=25.0, lower_bound=[0.0, 0.1, 0.05, 0.0], upper_bound=0.7)
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    for _ in range(150):
        action = rng.uniform(-1, 1, 4) * rng.choice([0.0, 0.1, 1.0, 3.0])
        t, equity_t, book = env._t, env._kernel.equity.item(0), copy.deepcopy(env._book)
        _, reward, _, truncated, info = env.step(action)
        prices_t, prices_next = data.prices[t : t + 1], data.prices[t + 1 : t + 2]
        target = yield_weights(np.clip(action, -1, 1)[None], env.lower_bound, env.upper_bound, env.temperature)
        value = self_financing_value(np.array([equity_t]), target, book.positions, prices_t, env.costs)
        fills = book.trade_to(value[:, None] * target / prices_t, prices_t)
        accrual = accrue_yield(book.positions, env._rates[t], prices_next)
        book.positions[...] = accrual.positions
        equity, drawdown = book.mark(prices_next)
        np.testing.assert_allclose(info["target_weights"], target[0], rtol=0, atol=1e-15)
        np.testing.assert_allclose(info["positions"], book.positions[0], rtol=1e-13)
        np.testing.assert_allclose(env._book.positions, book.positions, rtol=1e-13)
        np.testing.assert_allclose(info["weights"], book.weights(prices_next, equity)[0], rtol=1e-13)
        assert info["equity"] == pytest.approx(equity[0], rel=1e-13) == env._book.equity(prices_next)[0]
        assert info["cash"] == pytest.approx(book.cash[0], abs=1e-12 * equity[0])
        assert info["costs"] == pytest.approx(fills.costs[0], rel=1e-12, abs=1e-12)
        assert info["turnover"] == pytest.approx(fills.notional[0] / equity_t, rel=1e-12, abs=1e-15)
        assert info["yield_income"] == pytest.approx(accrual.income[0], rel=1e-12, abs=1e-12)
        assert info["drawdown"] == pytest.approx(drawdown[0], abs=1e-13)
        assert env._book.peak_equity[0] == pytest.approx(book.peak_equity[0], rel=1e-13)
        assert reward == pytest.approx(info["portfolio_return"] - info["depeg_penalty"], abs=1e-15)
        if truncated:
            env.reset()


# --------------------------------------------------------------------------- generator
def test_generator_reproducible_and_sane():
    a, b = make_yield_market(seed=3), make_yield_market(seed=3)
    for field in ("prices", "features", "open", "high", "low", "volume"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert not np.array_equal(a.prices, make_yield_market(seed=4).prices)
    assert a.n_steps == 2520 and a.n_assets == 4
    names = a.asset_names
    assert a.feature_names == tuple(apy_column(n) for n in names) + tuple(depeg_column(n) for n in names)
    assert (np.diff(a.timestamps) > np.timedelta64(0)).all() and str(a.timestamps[0])[:10] == "2010-01-01"

    apy, flags = a.features[:, :4], a.features[:, 4:]
    assert (apy >= 0).all() and abs(apy.mean() - 0.04) < 0.01
    # the flag is the causal function of the same bar's price
    np.testing.assert_array_equal(flags, (a.prices < 1.0 - 0.005).astype(float))
    starts = (flags[1:] == 1) & (flags[:-1] == 0)
    ends = (flags[1:] == 0) & (flags[:-1] == 1)
    assert (flags[0] == 0).all() and starts.sum() >= 4
    np.testing.assert_array_equal(starts.sum(axis=0) - ends.sum(axis=0), flags[-1])  # every de-peg recovers (or is open)
    assert a.prices.min() < 0.97 and a.prices.max() < 1.01
    # away from de-pegs the price hugs the peg
    assert np.abs(a.prices[flags == 0] - 1.0).max() < 0.01
    # a shock drops the price by at least the smallest depth, then it climbs back monotonically toward the peg
    calm = make_yield_market(n_steps=400, n_assets=1, seed=1, price_vol=0.0, depeg_prob=0.01)
    p = calm.prices[:, 0]
    drops = np.flatnonzero(np.diff(p) < 0)
    assert drops.size >= 1 and (p[drops + 1] / p[drops] <= 0.98 + 1e-12).all()
    rises = np.diff(p)[np.diff(p) != 0]
    assert (rises > 0).sum() > 10 * drops.size


def test_generator_arguments():
    data = make_yield_market(n_steps=50, n_assets=2, seed=0, apy_mean=[0.0, 0.1], apy_vol=0.0, depeg_prob=[0.0, 0.0])
    np.testing.assert_allclose(data.features[:, :2], np.tile([0.0, 0.1], (50, 1)))
    assert (data.features[:, 2:] == 0).all()
    with pytest.raises(ValueError, match="apy_mean"):
        make_yield_market(n_assets=3, apy_mean=[0.1, 0.2])
    with pytest.raises(ValueError, match="depeg_depth"):
        make_yield_market(depeg_depth=(0.1, 1.0))
    with pytest.raises(ValueError, match="depeg_prob"):
        make_yield_market(depeg_prob=1.5)
    with pytest.raises(ValueError, match="apy_correlation"):
        make_yield_market(n_assets=4, apy_correlation=-0.9)
    with pytest.raises(ValueError, match="n_steps"):
        make_yield_market(n_steps=1)


# --------------------------------------------------------------------------- common env contract
@pytest.mark.parametrize("window", [1, 8])
def test_env_checkers(window):
    env = gym.make(ENV_ID, window=window, episode_length=50, random_start=True)
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
    assert env.observation_space.contains(obs)
    assert env.unwrapped.data.n_assets == 4
    assert obs[PORTFOLIO_KEY].shape == (6,)
    assert len(env.unwrapped.feature_names) == 4 * len(DEFAULT_YIELD_INDICATORS) + 8
    assert env.unwrapped.costs == CostModel(5.0, 0.0) and env.unwrapped.initial_cash == 1_000_000.0
    assert gym.make("sb3_trading:" + ENV_ID).unwrapped.n_assets == 4


def test_info_keys_every_step_and_reset():
    env = gym.make(ENV_ID, episode_length=5)
    _, info = env.reset(seed=0)
    for _ in range(5):
        assert set(INFO_KEYS) | {"timestamp", "depeg_penalty", "target_weights", "yield_income"} <= set(info)
        assert info["positions"].shape == info["weights"].shape == info["target_weights"].shape == (4,)
        _, _, terminated, truncated, info = env.step(env.action_space.sample())
    assert truncated and not terminated


def test_seeded_resets_reproduce():
    def rollout(seed):
        env = gym.make(ENV_ID, episode_length=20, random_start=True)
        obs, info = env.reset(seed=seed)
        env.action_space.seed(seed)
        rewards, observations, starts = [], [obs], [info["t"]]
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            rewards.append(reward)
            observations.append(obs)
            done = terminated or truncated
        return starts, rewards, observations

    starts, rewards, observations = rollout(7)
    again = rollout(7)
    assert again[0] == starts and again[1] == rewards
    for a, b in zip(again[2], observations, strict=True):
        np.testing.assert_array_equal(a[MARKET_KEY], b[MARKET_KEY])
        np.testing.assert_array_equal(a[PORTFOLIO_KEY], b[PORTFOLIO_KEY])
    assert len(rewards) == 20
    other = rollout(8)
    assert other[0] != starts and other[1] != rewards


@pytest.mark.parametrize("window", [1, 6])
def test_no_look_ahead(window):
    """Perturbing every data value after t leaves every observation up to t unchanged."""
    data = make_yield_market(n_steps=160, n_assets=3, seed=5, depeg_prob=0.02)
    normalizer = FeatureNormalizer.fit(compute_features(data.slice(0, 100), DEFAULT_YIELD_INDICATORS).values[20:])
    actions = np.random.default_rng(0).uniform(-1, 1, size=(200, 3))
    assert_no_look_ahead(
        lambda market: YieldAllocationEnv(data=market, window=window, normalizer=normalizer, max_drawdown=None),
        data,
        actions,
        cut_points=(30, 77, 120, 150),
    )


def test_ppo_smoke():
    from stable_baselines3 import PPO

    env = gym.make(ENV_ID, episode_length=100, random_start=True)
    model = PPO("MultiInputPolicy", env, n_steps=64, batch_size=64, n_epochs=1, policy_kwargs={"net_arch": [16]}, seed=0)
    model.learn(256)
    action, _ = model.predict(env.reset(seed=0)[0], deterministic=True)
    assert action.shape == (4,)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"lower_bound": 0.6}, ValueError, "sum\\(lower_bound\\)"),
        ({"upper_bound": 0.4}, ValueError, "sum\\(upper_bound\\)"),
        ({"lower_bound": [0.5, 0.2], "upper_bound": [0.4, 0.9]}, ValueError, "lower_bound must be <="),
        ({"lower_bound": [0.1, 0.1, 0.1]}, ValueError, "lower_bound"),
        ({"upper_bound": 1.5}, ValueError, "upper_bound"),
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"dead_zone": 0.2}, ValueError, "dead_zone=0.2 needs size_action=True"),
        ({"dead_zone": 1.0, "size_action": True}, ValueError, "dead_zone"),
        ({"size_action": "yes"}, TypeError, "size_action"),
        ({"max_drawdown": 0.0}, ValueError, "max_drawdown"),
        ({"depeg_penalty": -1.0}, ValueError, "depeg_penalty"),
        ({"depeg_tolerance": 1.0}, ValueError, "depeg_tolerance"),
        ({"peg": 0.0}, ValueError, "peg"),
        ({"periods_per_year": 0}, ValueError, "periods_per_year"),
        ({"rebalance_cost_bps": -1.0}, ValueError, "rebalance_cost_bps"),
        ({"initial_cash": -1.0}, ValueError, "initial_cash"),
        ({"window": 0}, ValueError, "window"),
        ({"episode_length": 5}, ValueError, "episode_length"),
        ({"data": MarketData(prices=np.ones((5, 2)), asset_names=["A", "B"])}, ValueError, r"apy\[A\]"),
        ({"data": np.ones((10, 2))}, TypeError, "MarketData"),
    ],
)
def test_bad_arguments_raise(kwargs, error, match):
    with pytest.raises(error, match=match):
        hand_env(**kwargs)
