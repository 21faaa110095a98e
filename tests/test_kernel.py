"""The shared kernel plumbing: the book's holdings layout, affordability, info building, action checks."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest

import sb3_trading  # noqa: F401  (registers the env IDs)
from sb3_trading.sim import CostModel, Portfolio


def make_book() -> Portfolio:
    book = Portfolio(3, 2, CostModel(10.0, 5.0))
    book.reset(np.array([1_000.0, 2_000.0, 500.0]))
    book.trade_to(np.array([[3.0, -2.0], [0.0, 10.0], [1.5, 0.0]]), np.array([[100.0, 50.0]] * 3))
    return book


def test_positions_and_cash_are_views_of_the_holdings():
    book = make_book()
    assert np.shares_memory(book.positions, book.holdings) and np.shares_memory(book.cash, book.holdings)
    np.testing.assert_array_equal(book.holdings[:, :2], book.positions)
    np.testing.assert_array_equal(book.holdings[:, 2], book.cash)
    book.cash[1] = 7.0
    book.positions[0] = [1.0, 2.0]
    np.testing.assert_array_equal(book.holdings[:2], [[1.0, 2.0, book.cash[0]], [0.0, 10.0, 7.0]])


def test_mark_values_matches_mark_and_lays_out_values_then_cash():
    prices = np.array([[110.0, 45.0], [90.0, 55.0], [100.0, 60.0]])
    book, twin = make_book(), make_book()
    values, equity, drawdown = book.mark_values(prices)
    expected_equity, expected_drawdown = twin.mark(prices)
    np.testing.assert_allclose(values[:, :2], twin.positions * prices, rtol=1e-15)
    np.testing.assert_array_equal(values[:, 2], twin.cash)
    np.testing.assert_allclose(equity, expected_equity, rtol=1e-14)
    np.testing.assert_allclose(drawdown, expected_drawdown, atol=1e-14)
    np.testing.assert_allclose(book.peak_equity, twin.peak_equity, rtol=1e-14)


def test_prices_of_the_wrong_shape_are_refused():
    book = make_book()
    with pytest.raises(ValueError, match=r"prices must have shape \(3, 2\)"):
        book.mark(np.ones((3, 3)))
    with pytest.raises(ValueError, match=r"target must have shape \(3, 2\)"):
        book.trade_to(np.ones((2, 2)), np.ones((3, 2)))


def test_affordable_cuts_only_the_buys_of_rows_that_cannot_pay():
    book = Portfolio(3, 2, CostModel(10.0, 5.0))
    book.reset(np.array([1_000.0, 1_000.0, 1_000.0]), positions=np.array([[0.0, 4.0]] * 3), prices=np.ones((3, 2)) * 50.0)
    prices = np.array([[100.0, 50.0]] * 3)
    # row 0 can pay; row 1 buys 13 shares worth 1,300 > its 1,000 cash plus the 200 of selling 4; row 2 buys both
    target = np.array([[5.0, 4.0], [13.0, 0.0], [8.0, 8.0]])
    for lot in (None, 1.0):
        twin = Portfolio(3, 2, book.costs)
        twin.holdings[:] = book.holdings
        affordable = twin.affordable(target, prices, lot)
        np.testing.assert_array_equal(affordable[0], target[0])  # affordable: unchanged
        assert affordable[1, 1] == 0.0  # the sell is kept
        assert 0.0 <= affordable[1, 0] < 13.0 and affordable[2, 0] < 8.0 and 4.0 <= affordable[2, 1] < 8.0
        # the cut is in proportion to the shares bought (row 2 buys 8 and 4: cuts them 2 to 1; whole lots rounded up)
        if lot is None:
            assert (8.0 - affordable[2, 0]) == pytest.approx(2.0 * (8.0 - affordable[2, 1]), rel=1e-9)
        else:
            np.testing.assert_array_equal(affordable, np.round(affordable))
        twin.trade_to(affordable, prices)
        assert (twin.cash >= 0.0).all()
        if lot is None:  # fractional: the cut is (almost) exact, nothing is left on the table
            np.testing.assert_allclose(twin.cash[1:], 0.0, atol=1e-6)


@pytest.mark.parametrize("env_id", ["sb3_trading/MultiAsset-v0", "sb3_trading/LeveragedPair-v0"])
def test_box_actions_are_checked_and_clipped_to_float64(env_id):
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    space = env.action_space
    inside = (space.low + space.high) / 2
    out = env._box_action(inside)
    assert out.dtype == np.float64 and out is not inside
    np.testing.assert_array_equal(out, inside.astype(np.float64))
    outside = np.full(space.shape, 5.0, dtype=np.float32)
    outside.flat[0] = -5.0
    clipped = env._box_action(outside)
    np.testing.assert_array_equal(clipped, np.clip(outside.astype(np.float64), space.low, space.high))
    for bad in (np.nan, np.inf, -np.inf):
        action = inside.copy()
        action.flat[-1] = bad
        with pytest.raises(ValueError, match="finite"):
            env._box_action(action)
    with pytest.raises(ValueError, match="finite"):
        env._box_action(np.array(["a"] * space.shape[0]))
    # float32 values whose float32 sum would overflow are finite: clipped, not rejected
    big = np.full(space.shape, np.finfo(np.float32).max, dtype=np.float32)
    np.testing.assert_array_equal(env._box_action(big), np.broadcast_to(space.high, space.shape))
    with pytest.raises(ValueError, match="shape"):
        env._box_action(np.zeros(space.shape[0] + 1))


def test_box_actions_with_per_asset_bounds_are_clipped_per_asset():
    env = gym.make("sb3_trading/MultiAsset-v0").unwrapped
    n = env.action_space.shape[0]
    high = np.linspace(0.5, 1.0, n, dtype=np.float32)
    env.action_space = gym.spaces.Box(-high, high, dtype=np.float32)
    action = np.full(n, 0.75, dtype=np.float32)
    np.testing.assert_array_equal(env._box_action(action), np.minimum(0.75, high.astype(np.float64)))


def test_standard_infos_is_one_builder_for_one_account_and_many():
    from sb3_trading.envs.info import INFO_KEYS, standard_infos

    timestamps = np.arange(5).astype("datetime64[D]")
    positions = np.array([[1.0, 2.0], [3.0, 4.0]])
    columns = dict(
        equity=np.array([10.0, 20.0]),
        cash=np.array([1.0, 2.0]),
        positions=positions,
        weights=positions / 10.0,
        portfolio_return=np.array([0.01, -1.0]),  # the second account is ruined: log(1e-12)
        turnover=np.array([0.5, 0.0]),
        costs=np.array([0.1, 0.0]),
        drawdown=np.array([0.0, 1.0]),
        t=np.array([3, 4]),
    )
    extras = {"flag": np.array([True, False])}
    batch = standard_infos(**columns, timestamps=timestamps, extras=extras)
    assert [list(info) for info in batch] == [[*INFO_KEYS, "timestamp", "flag"]] * 2
    for i, info in enumerate(batch):
        single = standard_infos(
            **{k: v[i : i + 1] for k, v in columns.items()}, timestamps=timestamps, extras={"flag": extras["flag"][i : i + 1]}
        )[0]
        assert list(single) == list(info)
        for key, value in info.items():
            if key in ("timestamp", "flag"):
                assert single[key] == value, key
            else:
                np.testing.assert_allclose(single[key], value, rtol=1e-15, err_msg=key)
            assert type(single[key]) is type(value), key
    assert batch[1]["log_return"] == pytest.approx(math.log(1e-12)) and batch[0]["timestamp"] == timestamps[3]
    assert type(batch[0]["equity"]) is float and type(batch[0]["t"]) is int and batch[0]["flag"] is True
