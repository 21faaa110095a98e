"""MaskedTrading-v0's rule set: direction-aware regimes, daily loss limit, volatility-scaled cap, exchange-time
sessions, ``mask_reasons`` and the backtest's ``mask_rule_rates``, the invalid-action penalty."""

from __future__ import annotations

import numpy as np
import pytest

from sb3_trading.data import MarketData
from sb3_trading.envs.mask_rules import MASK_RULES, REGIME_BEAR, REGIME_BULL, REGIME_CRISIS
from sb3_trading.envs.masked_trading import MaskedTradingEnv
from sb3_trading.features.regimes import trend_regime, volatility_regime

START = np.datetime64("2024-01-08T00:00")  # a Monday, New York on EST (UTC-5)


def pair_data(index_returns: np.ndarray, start=START, step="h") -> MarketData:
    """Index from ``index_returns``; a 3x bull and a -3x bear ETF rebalanced every bar; hourly naive-UTC stamps."""
    index = 100.0 * np.cumprod(np.r_[1.0, 1.0 + index_returns])
    bull = 100.0 * np.cumprod(np.r_[1.0, 1.0 + 3.0 * index_returns])
    bear = 100.0 * np.cumprod(np.r_[1.0, 1.0 - 3.0 * index_returns])
    stamps = start + np.arange(index.shape[0]).astype(f"timedelta64[{step}]")
    return MarketData(prices=np.column_stack([index, bull, bear]), asset_names=["index", "bull", "bear"], timestamps=stamps)


def make_env(data: MarketData, **kwargs) -> MaskedTradingEnv:
    defaults = {
        "indicators": ["log_return"],
        "window": 1,
        "normalizer": None,
        "random_start": False,
        "episode_length": None,
        "max_drawdown": None,
        "commission_bps": 0.0,
    }
    return MaskedTradingEnv(data=data, **{**defaults, **kwargs})


def reasons_at(env: MaskedTradingEnv, t: int) -> dict[str, str]:
    env.reset(options={"start": t})
    return env.mask_reasons()


def buy_labels(env: MaskedTradingEnv, side: str) -> list[str]:
    return [label for label in env.action_labels if label.startswith(f"buy_{side}_")]


# ----------------------------------------------------------------------------- regimes
def regime_market(seed: int = 0) -> MarketData:
    """Calm for 300 bars, then a volatile rally, then a volatile crash of about 40 %."""
    rng = np.random.default_rng(seed)
    calm = rng.normal(0.0, 0.002, 300)
    rally = 0.004 + rng.normal(0.0, 0.02, 100)
    crash = -0.006 + rng.normal(0.0, 0.02, 100)
    return pair_data(np.concatenate([calm, rally, crash]))


def test_direction_regimes_are_the_causal_regime_features():
    data = regime_market()
    env = make_env(data, regime_rules=True, regime_volatility="vol_regime:30", regime_trend="trend_regime:10")
    index = data.prices[:, [0]]
    high = volatility_regime(index, window=30)[:, 0] == 2
    trend = trend_regime(index, window=10)[:, 0]
    drawdown = 1 - index[:, 0] / np.maximum.accumulate(index[:, 0])
    expected = np.zeros(data.n_steps, dtype=np.int8)
    expected[high & (trend < 0)] = REGIME_BEAR
    expected[high & (trend > 0)] = REGIME_BULL
    expected[high & (drawdown > 0.2)] = REGIME_CRISIS
    np.testing.assert_array_equal(env.regimes, expected)
    assert {REGIME_BEAR, REGIME_BULL, REGIME_CRISIS} <= set(env.regimes.tolist())  # the market visits all three
    # causal: changing every bar after t leaves the regimes up to t alone
    t = 420
    returns = np.diff(data.prices[:, 0]) / data.prices[:-1, 0]
    changed = returns.copy()
    changed[t:] = np.random.default_rng(5).normal(0.01, 0.05, changed[t:].shape)
    other = make_env(pair_data(changed), regime_rules=True, regime_volatility="vol_regime:30", regime_trend="trend_regime:10")
    np.testing.assert_array_equal(env.regimes[: t + 1], other.regimes[: t + 1])


def test_each_regime_masks_the_buys_it_names():
    env = make_env(regime_market(), regime_rules=True, regime_volatility="vol_regime:30", regime_trend="trend_regime:10")
    bull, bear = buy_labels(env, "bull"), buy_labels(env, "bear")
    seen = set()
    for t in range(env.first_t, env.last_t - 1):
        code = int(env.regimes[t])
        if code == 0 or code in seen:
            continue
        seen.add(code)
        reasons = reasons_at(env, t)
        name = MASK_RULES[code]
        if code == REGIME_CRISIS:  # only reducing is allowed
            assert all(reasons[label] == name for label in bull + bear)
        elif code == REGIME_BEAR:  # high-volatility bear: no bull buys, bear buys legal
            assert all(reasons[label] == name for label in bull) and not set(bear) & set(reasons)
        else:  # high-volatility bull: no bear buys
            assert all(reasons[label] == name for label in bear) and not set(bull) & set(reasons)
        assert "hold" not in reasons
    assert seen == {REGIME_BEAR, REGIME_BULL, REGIME_CRISIS}


def test_regime_rules_are_off_by_default_and_check_their_specs():
    env = make_env(regime_market())
    assert env.regimes is None and not (env._buy_block != 0).any()
    with pytest.raises(ValueError, match="regime_trend must be a trend_regime spec"):
        make_env(regime_market(), regime_rules=True, regime_trend="vol_regime:20")
    with pytest.raises(ValueError, match="regime_volatility must be a vol_regime or regime_prob spec"):
        make_env(regime_market(), regime_volatility="trend_regime:20")
    with pytest.raises(ValueError, match="regime_volatility='vol_regim:20' is not an indicator spec"):
        make_env(regime_market(), regime_volatility="vol_regim:20")


# ----------------------------------------------------------------------------- daily loss limit
def test_daily_loss_limit_masks_buys_for_the_rest_of_the_day():
    """Hourly bars (days in UTC here); the bull ETF loses 1 % an hour on day 2 from 05:00 to 13:00. Half the book in
    it loses 2.45 % by 10:00 (five losses) and 2.93 % by 11:00: buys are masked as daily_loss from 11:00 until the
    day ends, and open again the next day (its reference is day 2's last close)."""
    returns = np.zeros(24 * 4)
    returns[24 + 5 : 24 + 13] = -0.01 / 3  # index: bull -1 %/h on day 2, 05:00..12:00
    data = pair_data(returns)
    env = make_env(data, daily_loss_limit=0.025, sizes=(0.5,), max_concentration=1.0, exchange_tz="UTC")
    env.reset(options={"start": 20})
    codes = []
    for t in range(20, 24 * 3):
        reasons = env.mask_reasons()
        codes.append((t, reasons.get("buy_bull_0.5")))
        action = 1 if t == 20 else 0  # buy bull with half the book once, then hold
        env.step(action)
    by_bar = dict(codes)
    day2 = 24
    equity_loss_bars = [t for t, code in codes if code == "daily_loss"]
    # equity 0.5 + 0.5 * 0.99^k after k losses: 0.97549 (k = 5, 10:00), 0.97074 (k = 6, 11:00)
    assert equity_loss_bars == list(range(day2 + 11, day2 + 24))
    assert by_bar[day2 + 24] is None  # the next day: buys open again
    with pytest.raises(ValueError, match="daily_loss_limit needs trading days"):
        make_env(MarketData(prices=data.prices, asset_names=data.asset_names), daily_loss_limit=0.02)


# ----------------------------------------------------------------------------- sessions in exchange time
def test_session_hours_follow_the_exchange_clock_through_daylight_saving():
    """09:30-16:00 New York: 14:30 UTC opens in January (EST), 13:30 UTC in July (EDT)."""
    for start, open_utc in ((np.datetime64("2024-01-08T00:00"), 14), (np.datetime64("2024-07-08T00:00"), 13)):
        stamps = start + np.arange(24 * 6 * 3).astype("timedelta64[m]") * 10  # 10-minute bars, 3 days
        n = stamps.shape[0]
        prices = np.full((n, 3), 100.0)
        data = MarketData(prices=prices, asset_names=["index", "bull", "bear"], timestamps=stamps)
        env = make_env(data, session_hours=("09:30", "16:00"))
        ok = env._session_ok
        minutes = (stamps - stamps.astype("datetime64[D]")).astype(int)  # minutes after UTC midnight
        expected = (minutes >= open_utc * 60 + 30) & (minutes < open_utc * 60 + 30 + 390)
        np.testing.assert_array_equal(ok, expected)
        outside = int(np.flatnonzero(~ok & (np.arange(n) >= env.first_t))[0])
        reasons = reasons_at(env, outside)
        assert set(reasons) == set(env.action_labels) - {"hold"} and set(reasons.values()) == {"session"}


def test_session_arguments_are_checked():
    data = pair_data(np.zeros(100))
    with pytest.raises(ValueError, match="session_hours must be"):
        make_env(data, session_hours=("9h30", "16:00"))
    with pytest.raises(ValueError, match="open before they close"):
        make_env(data, session_hours=("16:00", "09:30"))
    with pytest.raises(ValueError, match="not both"):
        make_env(data, session_hours=("09:30", "16:00"), session_bars=7)
    with pytest.raises(ValueError, match="exchange_tz='Mars/Olympus' is not a time zone"):
        make_env(data, session_hours=("09:30", "16:00"), exchange_tz="Mars/Olympus")
    daily = pair_data(np.zeros(100), step="D")  # midnight UTC: 19:00 the evening before in New York
    with pytest.raises(ValueError, match=r"no bar of the data falls inside session_hours.*Daily bars"):
        make_env(daily, session_hours=("09:30", "16:00"))
    with pytest.raises(ValueError, match="session_hours needs MarketData.timestamps"):
        make_env(MarketData(prices=data.prices, asset_names=data.asset_names), session_hours=("09:30", "16:00"))


# ----------------------------------------------------------------------------- volatility-scaled cap
def test_volatility_scaled_position_cap():
    """cap = max_position * min(1, target / sigma): a 0.5 buy is masked as position_limit exactly where the
    bull ETF's annualised volatility passes 2 x target."""
    rng = np.random.default_rng(1)
    returns = np.concatenate([rng.normal(0, 0.001, 150), rng.normal(0, 0.01, 150)])
    data = pair_data(returns)
    env = make_env(data, position_vol_target=0.5, sizes=(0.5,), max_concentration=1.0, volatility_window=20)
    from sb3_trading.features import rolling_volatility

    sigma = rolling_volatility(data.prices[:, [1]], 20)[:, 0] * np.sqrt(data.periods_per_year)
    cap = np.where(np.isnan(sigma), 1.0, np.minimum(1.0, 0.5 / sigma))
    np.testing.assert_allclose(env._caps[:, 0], cap)
    checked = 0
    for t in range(env.first_t, env.last_t - 1, 7):
        masked = reasons_at(env, t).get("buy_bull_0.5")
        assert masked == ("position_limit" if cap[t] < 0.5 * (1 - 1e-9) else None)
        checked += masked is not None
    assert checked > 3


# ----------------------------------------------------------------------------- reasons, rates, penalty
def test_info_mask_reasons_is_the_mask_of_the_decision_and_the_penalty_applies():
    data = pair_data(np.zeros(120))
    with pytest.warns(UserWarning, match=r"sizes \[1.0\] can never be bought"):
        env = make_env(data, sizes=(0.5, 1.0), max_concentration=0.75, invalid_action_penalty=0.01)
    env.reset()
    before = env.mask_reasons()
    assert before == {"buy_bull_1": "concentration", "buy_bear_1": "concentration", "flatten": "nothing_to_flatten"}
    _, reward, _, _, info = env.step(env.action_labels.index("buy_bull_1"))  # masked: a no-op, penalised
    assert info["invalid_action"] and reward == pytest.approx(-0.01, abs=1e-15)
    codes = {label: MASK_RULES[c] for label, c in zip(env.action_labels, info["mask_reasons"].tolist(), strict=True) if c}
    assert codes == before
    _, reward, _, _, info = env.step(env.action_labels.index("buy_bull_0.5"))
    assert not info["invalid_action"] and reward == pytest.approx(0.0, abs=1e-15)


def test_maskable_ppo_never_takes_a_masked_action_and_the_backtest_reports_rule_rates():
    from sb3_contrib import MaskablePPO

    from sb3_trading.evaluation import backtest

    data = regime_market()
    kwargs = {
        "regime_rules": True,
        "regime_volatility": "vol_regime:30",
        "regime_trend": "trend_regime:10",
        "daily_loss_limit": 0.02,
        "session_hours": ("09:30", "16:00"),
        "max_drawdown": 0.1,
    }
    env = make_env(data, **kwargs, random_start=True, episode_length=64)
    model = MaskablePPO(
        "MultiInputPolicy", env, n_steps=128, batch_size=64, n_epochs=1, seed=0, policy_kwargs={"net_arch": [16]}
    )
    model.learn(256)
    test_env = make_env(data, **kwargs)
    result = backtest(model, test_env)
    assert result.metrics["invalid_action_rate"] == 0.0
    rates = result.mask_rule_rates
    assert set(rates) == set(MASK_RULES[1:])
    assert all(0.0 <= v <= 1.0 for v in rates.values())
    assert rates["session"] > 0.5  # 6.5 of 24 hours are open
    assert rates["regime_crisis"] > 0 and rates["regime_bull"] > 0
    assert result.to_dict()["mask_rule_rates"] == rates
