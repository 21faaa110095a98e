"""sb3_trading/SingleAsset-v0: one instrument, discrete hold / buy / sell / flatten with MaskedTrading's rule set.

The env contract (checkers, seeding, pickling, look-ahead, bad actions) runs over every registered ID in
tests/test_registered_envs.py and tests/test_causal_default.py; here: the accounting by hand, each rule on a
hand-built state, MaskablePPO never choosing a masked action, and (slow) learning a learnable one-ticker market.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.data import MarketData, make_regime_market
from sb3_trading.envs.mask_rules import MASK_RULES
from sb3_trading.envs.single_asset import SingleAssetEnv
from sb3_trading.evaluation import backtest
from sb3_trading.evaluation.reference import SingleAssetSignalFollower, reference_policies, skill_ratio

ENV_ID = "sb3_trading/SingleAsset-v0"


def flat_data(prices: np.ndarray, stamps: np.ndarray | None = None) -> MarketData:
    return MarketData(prices=np.asarray(prices, dtype=np.float64)[:, None], asset_names=["QQQ"], timestamps=stamps)


def make_env(data: MarketData, **kwargs) -> SingleAssetEnv:
    defaults = {
        "indicators": ["log_return"],
        "normalizer": None,
        "random_start": False,
        "episode_length": None,
        "commission_bps": 10.0,
    }
    return SingleAssetEnv(data=data, **{**defaults, **kwargs})


def label(env: SingleAssetEnv, name: str) -> int:
    return env.action_labels.index(name)


# ----------------------------------------------------------------------------- accounting by hand
def test_buy_sell_flatten_by_hand():
    """100,000 cash at 100 (bar 1): buy 0.5 -> 500 shares, 50 commission; the price goes to 110: equity
    100,000 - 50 + 500 * 10 = 104,950; sell 0.25 of that equity at 110 -> 238.52 shares, commission on it."""
    env = make_env(flat_data([99.0, 100.0, 110.0, 110.0, 121.0, 121.0]), sizes=(0.25, 0.5))
    _, info = env.reset()
    assert info["t"] == 1 and env.action_labels == ("hold", "buy_0.25", "buy_0.5", "sell_0.25", "sell_0.5", "flatten")
    _, reward, _, _, info = env.step(label(env, "buy_0.5"))
    np.testing.assert_allclose(info["positions"], [500.0])
    assert info["costs"] == pytest.approx(50.0) and info["equity"] == pytest.approx(104_950.0)
    assert reward == pytest.approx(104_950.0 / 100_000.0 - 1.0)
    _, _, _, _, info = env.step(label(env, "sell_0.25"))
    sold = 0.25 * 104_950.0 / 110.0
    np.testing.assert_allclose(info["positions"], [500.0 - sold])
    assert info["costs"] == pytest.approx(sold * 110.0 * 1e-3)
    _, _, _, _, info = env.step(label(env, "flatten"))
    assert info["positions"].tolist() == [0.0] and info["weights"].tolist() == [0.0]


def test_fees_per_order_are_paid_and_priced_by_the_cash_rule():
    """A 5 fixed fee and a 60 minimum commission: the buy pays max(10 bps, 60) + 5; a size that fits the cash only
    without the fee is masked ('cash')."""
    env = make_env(
        flat_data([99.0, 100.0, 110.0, 110.0]),
        sizes=(0.25, 0.5),
        costs={"commission_bps": 10, "fixed_fee": 5.0, "min_fee": 60.0},
    )
    env.reset()
    _, _, _, _, info = env.step(label(env, "buy_0.5"))  # 50,000 at 100: max(50, 60) + 5
    assert info["costs"] == pytest.approx(65.0) and info["cash"] == pytest.approx(100_000.0 - 50_000.0 - 65.0)
    # 0.999 E = 99,900 + 99.9 of commission fits 100,000; with the 5 fee it does not
    sizes = {"sizes": (0.5, 0.999), "max_position": 1.0}
    plain, fee = (
        make_env(flat_data([99.0, 100.0, 110.0]), **sizes),
        make_env(flat_data([99.0, 100.0, 110.0]), costs={"commission_bps": 10, "fixed_fee": 5.0}, **sizes),
    )
    plain.reset()
    fee.reset()
    assert plain.action_masks()[label(plain, "buy_0.999")] and not fee.action_masks()[label(fee, "buy_0.999")]
    assert fee.mask_reasons()["buy_0.999"] == "cash"


# ----------------------------------------------------------------------------- each rule, on a hand-built state
def test_long_only_cash_position_and_flatten_rules():
    env = make_env(flat_data(np.full(20, 100.0)), sizes=(0.5, 0.95))
    env.reset()
    assert env.mask_reasons() == {
        "sell_0.5": "no_short",
        "sell_0.95": "no_short",
        "flatten": "nothing_to_flatten",
    }
    env.step(label(env, "buy_0.95"))
    # 0.95 long: a further buy needs cash it lacks; a sale of 0.5 or 0.95 of equity only reduces the long
    assert env.mask_reasons() == {"buy_0.5": "cash", "buy_0.95": "cash"}
    assert env.action_masks().tolist() == [True, False, False, True, True, True]


def test_long_short_opens_shorts_up_to_the_cap():
    with pytest.warns(UserWarning, match=r"sizes \[0.95\] can never be bought from a flat book"):
        env = make_env(flat_data(np.full(20, 100.0)), sizes=(0.5, 0.95), long_short=True, max_position=0.8)
    env.reset()
    reasons = env.mask_reasons()
    assert reasons == {"buy_0.95": "position_limit", "sell_0.95": "position_limit", "flatten": "nothing_to_flatten"}
    _, _, _, _, info = env.step(label(env, "sell_0.5"))
    assert info["positions"][0] == pytest.approx(-500.0) and info["cash"] == pytest.approx(150_000.0 - 50.0)
    # short 0.5: another 0.5 sell would reach -1.0 > cap; a 0.95 buy covers and flips to +0.45 (legal)
    assert env.mask_reasons() == {"sell_0.5": "position_limit", "sell_0.95": "position_limit"}


def test_risk_rules_mask_only_what_adds_risk():
    """Past max_drawdown a long book may still sell (down to flat) and flatten but not buy or go short."""
    prices = np.r_[100.0, 100.0, 80.0, np.full(10, 80.0)]
    env = make_env(flat_data(prices), sizes=(0.25, 0.5), long_short=True, max_drawdown=0.05)
    env.reset()
    env.step(label(env, "buy_0.5"))  # 0.5 long into a 20 % fall: equity -10 %, the long 0.44 of it
    # selling 0.25 of equity reduces the long (legal); selling 0.5 would leave a short: new risk, masked
    assert env.mask_reasons() == {"buy_0.25": "drawdown", "buy_0.5": "drawdown", "sell_0.5": "drawdown"}
    env.step(label(env, "flatten"))
    assert env.mask_reasons() == {
        "buy_0.25": "drawdown",
        "buy_0.5": "drawdown",
        "sell_0.25": "drawdown",
        "sell_0.5": "drawdown",
        "flatten": "nothing_to_flatten",
    }


def regime_market() -> MarketData:
    rng = np.random.default_rng(0)
    returns = np.concatenate([rng.normal(0, 0.002, 300), 0.004 + rng.normal(0, 0.02, 100), -0.006 + rng.normal(0, 0.02, 100)])
    return flat_data(100.0 * np.cumprod(np.r_[1.0, 1.0 + returns]))


def test_regime_rules_block_the_risky_direction():
    env = make_env(
        regime_market(), regime_rules=True, regime_volatility="vol_regime:30", regime_trend="trend_regime:10", long_short=True
    )
    codes = {MASK_RULES[c]: int(np.flatnonzero(env.regimes == c)[0]) for c in (7, 8, 9)}
    buys = [a for a in env.action_labels if a.startswith("buy")]
    sells = [a for a in env.action_labels if a.startswith("sell")]
    for rule, t in codes.items():
        env.reset(options={"start": t})
        reasons = env.mask_reasons()  # a flat book: every buy adds long risk, every sell short risk
        if rule == "regime_crisis":
            assert all(reasons[a] == rule for a in buys + sells)
        elif rule == "regime_bear":  # high-volatility bear: no new long risk
            assert all(reasons[a] == rule for a in buys) and not set(sells) & set(reasons)
        else:  # high-volatility bull: no new short risk
            assert all(reasons[a] == rule for a in sells) and not set(buys) & set(reasons)


def test_session_hours_and_daily_loss_apply():
    stamps = np.datetime64("2024-01-08T14:00") + np.arange(40).astype("timedelta64[h]")
    env = make_env(flat_data(np.full(40, 100.0), stamps), session_hours=("09:30", "16:00"), daily_loss_limit=0.02)
    ok = env._session_ok
    hours_ny = (stamps.astype("datetime64[h]").astype(int) % 24 - 5) % 24  # EST
    np.testing.assert_array_equal(ok, (hours_ny >= 10) & (hours_ny < 16))  # hourly bars at :00 from 10:00 to 15:00
    closed = int(np.flatnonzero(~ok[env.first_t :])[0]) + env.first_t
    env.reset(options={"start": closed})
    assert set(env.mask_reasons().values()) == {"session"}


# ----------------------------------------------------------------------------- agents
def test_maskable_ppo_never_takes_a_masked_action():
    from sb3_contrib import MaskablePPO

    env = make_env(
        regime_market(),
        random_start=True,
        episode_length=64,
        max_drawdown=0.05,
        long_short=True,
        regime_rules=True,
        regime_volatility="vol_regime:30",
        regime_trend="trend_regime:10",
    )
    model = MaskablePPO(
        "MultiInputPolicy", env, n_steps=128, batch_size=64, n_epochs=1, seed=0, policy_kwargs={"net_arch": [16]}
    )
    model.learn(256)
    result = backtest(
        model,
        make_env(
            regime_market(),
            long_short=True,
            max_drawdown=0.05,
            regime_rules=True,
            regime_volatility="vol_regime:30",
            regime_trend="trend_regime:10",
        ),
    )
    assert result.metrics["invalid_action_rate"] == 0.0
    assert result.mask_rule_rates["no_short"] == 0.0 and result.mask_rule_rates["regime_crisis"] > 0


def test_signal_follower_holds_the_signal_side():
    data = make_regime_market(n_steps=300, n_assets=1, seed=3)
    env = gym.make(ENV_ID, data=data, random_start=False, episode_length=None)
    follower = reference_policies(env)["signal_follower"]
    assert isinstance(follower, SingleAssetSignalFollower)
    result = backtest(follower, env)
    signal = data.features[:, data.feature_names.index("signal[asset_0]")]
    held = result.weights[:, 0] > 0.5
    decided = result.t[:-1]
    # long after a positive signal, flat after a negative one (long only)
    assert (held == (signal[decided] > 0)).mean() > 0.95
    assert result.metrics["invalid_action_rate"] == 0.0


@pytest.mark.slow
def test_maskable_ppo_learns_a_learnable_one_ticker_market():
    """The zoo budget (150k steps, 8 accounts) on seed 2's regime market: held-out skill ratio >= 0.5."""
    from sb3_contrib import MaskablePPO

    from sb3_trading.vec import make_vec_env

    data = make_regime_market(n_assets=1, seed=2)
    cut = int(0.8 * data.n_steps)
    train, test = data.slice(0, cut), data.slice(cut, data.n_steps)
    venv = make_vec_env(ENV_ID, n_envs=8, env_kwargs={"data": train}, seed=2)
    model = MaskablePPO(
        "MultiInputPolicy", venv, n_steps=256, batch_size=256, gamma=0.5, policy_kwargs={"net_arch": [64, 64]}, seed=2
    )
    model.learn(150_000)
    env = gym.make(ENV_ID, data=test, random_start=False, episode_length=None)
    agent = backtest(model, env)
    reference = backtest(reference_policies(env)["signal_follower"], env)
    ratio = skill_ratio(agent, reference)
    assert reference.metrics["sharpe"] > 1.0
    assert ratio.estimate >= 0.5, ratio
