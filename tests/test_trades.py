"""Trade analytics: FIFO round trips of scripted positions with known wins, losses and costs, and of backtests."""

import json

import gymnasium as gym
import numpy as np
import pytest

import sb3_trading  # noqa: F401
from sb3_trading.data import make_gbm_market
from sb3_trading.evaluation import env_baselines, random_baseline
from sb3_trading.evaluation.trades import (
    MAX_RATIO,
    RoundTrip,
    TradeStats,
    format_trade_stats,
    round_trips,
    trade_analytics,
    trade_stats,
)

# Two assets over 6 steps (7 marks, data rows 0, 2, ..., 12). A: buy 10 @100, buy 10 @110, sell 15 @120
# (closes the first lot and half the second), sell 10 @90 (closes the rest of the second lot, opens a short
# of 5), hold, cover 5 @80. B: buy 4 @50 at step 2, still open at the end (marked at 55).
PRICES = np.array(
    [
        [100.0, 50.0],
        [110.0, 50.0],
        [120.0, 50.0],
        [90.0, 52.0],
        [95.0, 53.0],
        [80.0, 54.0],
        [85.0, 55.0],
    ]
)
POSITIONS = np.array([[10.0, 0.0], [20.0, 0.0], [5.0, 4.0], [-5.0, 4.0], [-5.0, 4.0], [0.0, 4.0]])
# step 2 trades 15 * 120 = 1800 of A and 4 * 50 = 200 of B: its 2.0 splits 1.8 / 0.2; step 4 trades nothing
COSTS = np.array([1.0, 1.1, 2.0, 0.9, 0.5, 0.4])
T = np.arange(7) * 2
NAMES = ("A", "B")


@pytest.fixture()
def scripted():
    return round_trips(POSITIONS, PRICES, COSTS, t=T, asset_names=NAMES)


def _strict(obj):
    return json.loads(json.dumps(obj, allow_nan=False))


def test_fifo_round_trips_of_a_scripted_path(scripted):
    closed, open_trades = scripted
    # (side, quantity, entry price, exit price, entry costs, exit costs, holding steps)
    expected = [
        (1, 10.0, 100.0, 120.0, 1.0, 1.8 * 10 / 15, 2),
        (1, 5.0, 110.0, 120.0, 1.1 * 5 / 10, 1.8 * 5 / 15, 1),
        (1, 5.0, 110.0, 90.0, 1.1 * 5 / 10, 0.9 * 5 / 10, 2),
        (-1, 5.0, 90.0, 80.0, 0.9 * 5 / 10, 0.4, 2),
    ]
    assert [tr.asset for tr in closed] == ["A"] * 4
    for tr, (side, qty, entry, exit_, c_in, c_out, steps) in zip(closed, expected, strict=True):
        assert (tr.side, tr.quantity, tr.entry_price, tr.exit_price) == (side, qty, entry, exit_)
        assert tr.entry_costs == pytest.approx(c_in) and tr.exit_costs == pytest.approx(c_out)
        assert tr.holding_steps == steps and tr.holding_bars == 2 * steps
        assert tr.gross_pnl == pytest.approx(side * qty * (exit_ - entry))
        assert tr.pnl == pytest.approx(tr.gross_pnl - c_in - c_out)
        assert tr.trade_return == pytest.approx(tr.pnl / (qty * entry))
        assert tr.costs_bps == pytest.approx((c_in + c_out) / (qty * (entry + exit_)) * 1e4)
        assert not tr.is_open
    assert closed[3].trade_return == pytest.approx((90 - 80) / 90 - (0.45 + 0.4) / 450)  # short: (entry - exit) / entry
    assert closed[2].pnl == pytest.approx(-101.0) and closed[0].pnl == pytest.approx(200 - 1.0 - 1.2)

    (b,) = open_trades  # the open lot is not a round trip: marked at the last close, entry costs only
    assert (b.asset, b.side, b.quantity, b.entry_t, b.exit_t, b.is_open) == ("B", 1, 4.0, 4, 12, True)
    assert b.entry_costs == pytest.approx(0.2) and b.exit_costs == 0.0 and b.pnl == pytest.approx(4 * 5 - 0.2)


def test_trade_stats_of_the_scripted_path(scripted):
    fills = np.abs(np.diff(POSITIONS, axis=0, prepend=0)) * PRICES[:-1]
    stats = trade_stats(*scripted, traded_notional=float(fills.sum()), total_costs=COSTS.sum())
    wins = [200 - 1.0 - 1.2, 50 - 0.55 - 0.6, 50 - 0.45 - 0.4]
    loss = -100 - 0.55 - 0.45
    assert (stats.n_trades, stats.n_wins, stats.n_losses, stats.n_long, stats.n_short) == (4, 3, 1, 3, 1)
    assert stats.win_rate == 0.75
    assert stats.avg_win == pytest.approx(np.mean(wins)) and stats.avg_loss == pytest.approx(loss)
    assert stats.payoff_ratio == pytest.approx(np.mean(wins) / -loss)
    assert stats.profit_factor == pytest.approx(sum(wins) / -loss) and not stats.no_losses
    assert stats.expectancy == pytest.approx((sum(wins) + loss) / 4)
    returns = [wins[0] / 1000, wins[1] / 550, loss / 550, wins[2] / 450]
    assert stats.expectancy_return == pytest.approx(np.mean(returns))
    assert stats.avg_loss_return == pytest.approx(loss / 550)
    assert stats.mean_holding_steps == 1.75 and stats.mean_holding_bars == 3.5 and stats.max_holding_bars == 4
    # every cost: 5.9 over 1000 + 1100 + (1800 + 200) + 900 + 400 = 5400 of fills; step 4's 0.5 is in no trade
    assert stats.traded_notional == pytest.approx(5400.0) and stats.total_costs == pytest.approx(5.9)
    assert stats.unallocated_costs == pytest.approx(0.5) and stats.costs_bps == pytest.approx(5.9 / 5400 * 1e4)
    assert stats.mean_trade_costs == pytest.approx((5.9 - 0.5 - 0.2) / 4)
    assert (stats.n_open, stats.open_pnl) == (1, pytest.approx(19.8))
    assert set(stats.by_asset) == {"A", "B"}
    assert stats.by_asset["A"].n_trades == 4 and stats.by_asset["B"].n_trades == 0 and stats.by_asset["B"].n_open == 1

    d = _strict(stats.to_dict())
    assert d["n_trades"] == 4 and d["by_asset"]["A"]["win_rate"] == 0.75 and "trips" not in d
    assert format_trade_stats(stats).startswith("4 trades, win 75.0%") and "(1 open)" in format_trade_stats(d)


def test_ratios_stay_finite_without_losses_or_trades():
    # only winners: ratios are MAX_RATIO and flagged, never inf
    closed, open_trades = round_trips(
        np.array([[1.0], [0.0], [2.0], [0.0]]), np.array([[10.0], [11.0], [10.0], [12.0], [9.0]])
    )
    stats = trade_stats(closed, open_trades)
    assert stats.n_trades == 2 and stats.n_losses == 0 and stats.no_losses
    assert stats.profit_factor == MAX_RATIO and stats.payoff_ratio == MAX_RATIO and stats.avg_loss == 0.0
    assert "PF no losses" in format_trade_stats(stats)
    _strict(stats.to_dict())
    # nothing traded: zeros
    empty = trade_stats(*round_trips(np.zeros((3, 2)), np.ones((4, 2))))
    assert empty.to_dict() == {**TradeStats().to_dict()} and empty.n_trades == 0 and empty.costs_bps == 0.0
    assert format_trade_stats(empty).startswith("no closed trades")
    # a flat trade (exit at the entry price, no costs) is neither a win nor a loss
    flat = trade_stats(*round_trips(np.array([[1.0], [0.0]]), np.array([[5.0], [5.0], [5.0]])))
    assert (flat.n_trades, flat.n_wins, flat.n_losses, flat.win_rate, flat.profit_factor) == (1, 0, 0, 0.0, 0.0)


def test_start_holdings_partial_closes_and_float_noise():
    # start long 3 (opens a lot at mark 0, no costs); float noise on the position is no trade
    positions = np.array([[3.0], [1.0], [1.0 + 1e-13], [-2.0]])
    prices = np.array([[10.0], [12.0], [12.0], [8.0], [8.0]])
    closed, open_trades = round_trips(positions, prices, np.array([0.0, 0.2, 0.0, 0.3]), start_positions=np.array([3.0]))
    assert [(tr.quantity, tr.entry_mark, tr.exit_mark, tr.exit_price) for tr in closed] == [
        (2.0, 0, 1, 12.0),
        (1.0, 0, 3, 8.0),
    ]
    assert closed[0].entry_costs == 0.0 and closed[0].exit_costs == pytest.approx(0.2)
    # the flip at step 3 (sell 3 @8) splits its 0.3 by shares: 0.1 to the close, 0.2 to the new short lot
    assert closed[1].exit_costs == pytest.approx(0.1)
    (short,) = open_trades
    assert (short.side, short.quantity, short.entry_costs) == (-1, pytest.approx(2.0), pytest.approx(0.2))
    assert isinstance(short, RoundTrip) and short.to_dict()["side"] == "short"


def test_round_trips_reject_bad_shapes():
    with pytest.raises(ValueError, match=r"prices must be \(n \+ 1, N\)"):
        round_trips(np.zeros((3, 2)), np.ones((3, 2)))
    with pytest.raises(ValueError, match="costs must be"):
        round_trips(np.zeros((3, 2)), np.ones((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="fill price"):
        round_trips(np.ones((2, 1)), np.array([[np.nan], [1.0], [1.0]]))


@pytest.fixture(scope="module")
def backtests():
    env = gym.make("sb3_trading/MultiAsset-v0", data=make_gbm_market(n_steps=120, n_assets=3, seed=3))
    agent = random_baseline(env, seed=2, name="agent")
    return {"agent": agent, **env_baselines(env, int(agent.t[0]), int(agent.t[-1]))}


def test_trade_analytics_of_a_backtest_accounts_for_its_pnl(backtests):
    for name, result in backtests.items():
        stats = trade_analytics(result)
        # fills at the closes and the costs allocated to them add up to the equity change (no cash yield here)
        change = result.equity[-1] - result.equity[0]
        assert stats.total_pnl + stats.open_pnl - stats.unallocated_costs == pytest.approx(change, rel=1e-9, abs=1e-6), name
        assert stats.total_costs == pytest.approx(result.costs.sum())
        _strict(stats.to_dict())
        for tr in stats.trips:
            assert tr.exit_price == result.market.prices[tr.exit_t, result.market.asset_names.index(tr.asset)]
    assert trade_analytics(backtests["agent"]).n_trades > 10 and trade_analytics(backtests["cash"]).n_trades == 0
    assert trade_analytics(backtests["buy_and_hold"]).n_open == 3


def test_trade_analytics_needs_positions_and_market(backtests):
    from dataclasses import replace

    with pytest.raises(ValueError, match="positions and its market"):
        trade_analytics(replace(backtests["agent"], market=None))


def test_trade_analytics_of_a_leveraged_pair_maps_its_traded_assets():
    # LeveragedPair trades (bull, bear) of a (index, bull, bear) market and invests at reset: start holdings
    env = gym.make("sb3_trading/LeveragedPair-v0", max_days=40, random_start=False)
    result = random_baseline(env, seed=0)
    assert result.asset_names == ("bull", "bear") and np.any(result.positions[0] != result.trades[0])
    stats = trade_analytics(result)
    assert {tr.asset for tr in stats.trips + stats.open_trades} <= {"bull", "bear"}
    change = result.equity[-1] - result.equity[0]
    assert stats.total_pnl + stats.open_pnl - stats.unallocated_costs == pytest.approx(change, rel=1e-9, abs=1e-6)


def test_a_fresh_book_closes_the_old_lots():
    # positions[1] != positions[0] + trades[1]: the second episode starts flat at mark 1 and buys 2
    positions, trades = np.array([[3.0], [2.0], [2.0]]), np.array([[3.0], [2.0], [0.0]])
    prices = np.array([[10.0], [12.0], [11.0], [13.0]])
    closed, open_trades = round_trips(positions, prices, np.array([0.3, 0.2, 0.0]), trades=trades)
    (old,) = closed
    assert (old.quantity, old.exit_mark, old.exit_price, old.entry_costs, old.exit_costs) == (3.0, 1, 12.0, 0.3, 0.0)
    (new,) = open_trades
    assert (new.quantity, new.entry_mark, new.entry_price, new.entry_costs) == (2.0, 1, 12.0, pytest.approx(0.2))


def test_trade_analytics_of_stitched_episodes():
    from sb3_trading.evaluation import concat_results, equal_weight

    data = make_gbm_market(n_steps=100, n_assets=2, seed=6)
    stitched = concat_results([equal_weight(data, 0, 50), equal_weight(data, 50, 99)])
    stats = trade_analytics(stitched)
    change = stitched.equity[-1] - stitched.equity[0]
    assert stats.total_pnl + stats.open_pnl - stats.unallocated_costs == pytest.approx(change, rel=1e-9)
    assert stats.costs_bps == pytest.approx(10.0, rel=1e-6)  # each piece's rebuy is a fill: the env's 10 bps
