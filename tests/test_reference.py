"""Reference policies of the synthetic markets and the skill ratio (sb3_trading.evaluation.reference)."""

import dataclasses
import json
import math

import gymnasium as gym
import numpy as np
import pytest

import sb3_trading  # noqa: F401  (registers the envs)
from sb3_trading.data import MarketData
from sb3_trading.data.synthetic import make_gbm_market
from sb3_trading.envs.leveraged_pair import LeveragedPairEnv
from sb3_trading.envs.market_impact import MarketImpactEnv
from sb3_trading.envs.masked_trading import MaskedTradingEnv
from sb3_trading.envs.multi_asset import MultiAssetEnv
from sb3_trading.envs.yield_allocation import YieldAllocationEnv
from sb3_trading.evaluation import (
    SIGNAL_FOLLOWER,
    BacktestResult,
    RandomPolicy,
    SkillRatio,
    backtest,
    format_skill_ratio,
    reference_baselines,
    reference_policies,
    skill_ratio,
    skill_report,
    write_report,
)
from sb3_trading.utils import jsonable

#: (env ID, class, held-out backtest arguments, minimum Sharpe of the signal follower on the default market's tail)
ENVS = [
    ("sb3_trading/MultiAsset-v0", MultiAssetEnv, {}, 1.0),
    ("sb3_trading/LeveragedPair-v0", LeveragedPairEnv, {"max_days": None, "stop_loss": None}, 0.5),
    ("sb3_trading/MaskedTrading-v0", MaskedTradingEnv, {"episode_length": None}, 0.5),
    ("sb3_trading/MarketImpact-v0", MarketImpactEnv, {"episode_length": None}, 0.0),
    ("sb3_trading/YieldAllocation-v0", YieldAllocationEnv, {}, 0.0),
]
IDS = [spec[0].split("/")[1] for spec in ENVS]
#: rows of the default market's held-out tail (the last 20 % plus look-back)
TAIL = 650


def held_out_env(env_id, env_class, kwargs, data=None):
    data = env_class.default_market(0) if data is None else data
    data = data.slice(data.n_steps - TAIL, None) if data.n_steps > TAIL else data
    return gym.make(env_id, data=data, random_start=False, **kwargs)


def result_of(returns, name, t=None, ppy=252.0):
    returns = np.asarray(returns, dtype=np.float64)
    n = returns.size
    return BacktestResult(
        name=name,
        t=np.arange(n + 1) if t is None else np.asarray(t),
        equity=np.concatenate([[1.0], np.cumprod(1.0 + returns)]),
        returns=returns,
        turnover=np.zeros(n),
        costs=np.zeros(n),
        weights=np.zeros((n, 1)),
        periods_per_year=ppy,
    )


@pytest.mark.parametrize("env_id, env_class, kwargs, minimum", ENVS, ids=IDS)
def test_signal_follower_earns_a_positive_held_out_sharpe(env_id, env_class, kwargs, minimum):
    env = held_out_env(env_id, env_class, kwargs)
    references = reference_baselines(env)
    assert SIGNAL_FOLLOWER in references
    for name, result in references.items():
        assert result.name == name
    follower = references[SIGNAL_FOLLOWER]
    assert follower.n_steps > 400
    assert follower.metrics["sharpe"] > minimum
    if env_class is MaskedTradingEnv:
        assert follower.metrics["invalid_action_rate"] == 0.0


def test_leveraged_pair_follower_holds_the_same_book_in_either_action_mode():
    """The follower's all-bear action is ``a = 0`` of a split and ``a = -1`` of a net position: the same backtest."""
    kwargs = {"max_days": None, "stop_loss": None, "initial_split": 1.0}
    split = reference_baselines(held_out_env("sb3_trading/LeveragedPair-v0", LeveragedPairEnv, kwargs))
    net_kwargs = {**kwargs, "action_mode": "net", "dead_zone": 0.2}
    net = reference_baselines(held_out_env("sb3_trading/LeveragedPair-v0", LeveragedPairEnv, net_kwargs))
    np.testing.assert_array_equal(net[SIGNAL_FOLLOWER].returns, split[SIGNAL_FOLLOWER].returns)
    assert net[SIGNAL_FOLLOWER].metrics["sharpe"] > 0.5


def test_masked_trading_reference_takes_legal_actions_and_follows_the_signal():
    env = held_out_env("sb3_trading/MaskedTrading-v0", MaskedTradingEnv, {"episode_length": None})
    base = env.unwrapped
    policy = reference_policies(env)[SIGNAL_FOLLOWER]
    column = list(base.data.feature_names).index("signal[index]")
    obs, info = env.reset()
    done, n_bull, n_bear = False, 0, 0
    while not done:
        mask = base.action_masks()
        action, _ = policy.predict(obs, action_masks=mask)
        assert mask[int(action)], f"illegal action {int(action)} at t={base._t}"
        signal = base.data.features[base._t, column]
        obs, _, terminated, truncated, info = env.step(action)
        assert not info["invalid_action"]
        bull, bear = info["weights"]
        if signal > 0 and bear == 0:
            n_bull += bull > 0
        if signal < 0 and bull == 0:
            n_bear += bear > 0
        done = terminated or truncated
    assert n_bull > 100 and n_bear > 100  # holds each side when the signal says so


def _perturbed(data: MarketData, after: int, seed: int = 1) -> MarketData:
    """``data`` with every row after ``after`` changed: prices (OHLC scaled together) and features."""
    rng = np.random.default_rng(seed)
    rows = slice(after + 1, None)
    factor = np.ones_like(data.prices)
    factor[rows] = rng.uniform(0.9, 1.1, size=factor[rows].shape)
    names = [name for name in ("prices", "open", "high", "low") if getattr(data, name) is not None]
    fields = {name: getattr(data, name) * factor for name in names}
    features = data.features.copy()
    if all(name.startswith("depeg[") or name.startswith("apy[") for name in data.feature_names):
        flags = [j for j, name in enumerate(data.feature_names) if name.startswith("depeg[")]
        features[rows] = rng.uniform(0.0, 0.1, size=features[rows].shape)
        features[rows, flags] = rng.integers(0, 2, size=features[rows][:, flags].shape)
    else:
        features[rows] = rng.normal(0.0, 3.0, size=features[rows].shape)
    return dataclasses.replace(data, features=features, **fields)


def _actions(env) -> list[tuple[int, np.ndarray]]:
    base = env.unwrapped
    policy = reference_policies(env)[SIGNAL_FOLLOWER]
    obs, _ = env.reset()
    out, done, start = [], False, True
    while not done:
        masks = base.action_masks() if hasattr(base, "action_masks") else None
        action, _ = policy.predict(obs, episode_start=np.array([start]), action_masks=masks)
        start = False
        out.append((int(base._t), np.asarray(action).copy()))
        obs, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    return out


@pytest.mark.parametrize("env_id, env_class, kwargs, minimum", ENVS, ids=IDS)
def test_reference_policies_do_not_look_ahead(env_id, env_class, kwargs, minimum):
    data = env_class.default_market(0).slice(0, 400)
    cut = 300
    original = _actions(held_out_env(env_id, env_class, kwargs, data))
    changed = _actions(held_out_env(env_id, env_class, kwargs, _perturbed(data, cut)))
    before = [(t, a) for t, a in original if t <= cut]
    assert len(before) > 100
    for (t, a), (t2, b) in zip(before, changed, strict=False):
        assert t == t2
        np.testing.assert_array_equal(a, b, err_msg=f"action at t={t} changed with rows > {cut}")
    # and the perturbation does change later actions (the test can see a look-ahead)
    assert any(not np.array_equal(a, b) for (_, a), (_, b) in zip(original, changed, strict=False))


def test_no_reference_without_signal_columns():
    gbm = make_gbm_market(n_steps=300, n_assets=3, seed=0)
    assert reference_policies(gym.make("sb3_trading/MultiAsset-v0", data=gbm)) == {}
    assert reference_policies(gym.make("sb3_trading/MarketImpact-v0", data=gbm, episode_length=None)) == {}
    env = gym.make("sb3_trading/MultiAsset-v0", data=gbm, random_start=False)
    agent = backtest(RandomPolicy(env.action_space, seed=0), env)
    assert reference_baselines(env) == {}
    assert skill_report(env, agent, n_boot=50) == ({}, None)


def test_skill_ratio_is_the_ratio_of_sharpes():
    rng = np.random.default_rng(0)
    reference = rng.normal(0.001, 0.01, size=500)
    agent = 0.5 * reference + rng.normal(0.0003, 0.004, size=500)

    def sharpe(x):
        return x.mean() / x.std(ddof=1) * math.sqrt(252)

    ratio = skill_ratio(result_of(agent, "agent"), result_of(reference, "ref"), n_boot=500, seed=0)
    assert isinstance(ratio, SkillRatio)
    assert ratio.agent_sharpe == pytest.approx(sharpe(agent))
    assert ratio.reference_sharpe == pytest.approx(sharpe(reference))
    assert ratio.estimate == pytest.approx(sharpe(agent) / sharpe(reference))
    assert ratio.low < ratio.estimate < ratio.high
    assert ratio.reason is None and ratio.n_valid > 400 and ratio.n_boot == 500
    assert ratio.mean_block == pytest.approx(500 ** (1 / 3))
    again = skill_ratio(result_of(agent, "agent"), result_of(reference, "ref"), n_boot=500, seed=0)
    assert again == ratio  # seeded
    # a risk-free rate lowers both Sharpe ratios
    rf = skill_ratio(result_of(agent, "agent"), result_of(reference, "ref"), n_boot=0, risk_free=0.05)
    assert rf.reference_sharpe < ratio.reference_sharpe and math.isnan(rf.low)
    # the ratio of a series to itself is 1 on every resample: the paired bootstrap keeps it exactly
    same = skill_ratio(result_of(reference, "a"), result_of(reference, "b"), n_boot=200)
    assert same.estimate == pytest.approx(1.0) and same.low == pytest.approx(1.0) and same.high == pytest.approx(1.0)
    assert json.dumps(ratio.to_dict())


def test_skill_ratio_needs_the_same_bars():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.001, 0.01, 100), rng.normal(0.001, 0.01, 100)
    with pytest.raises(ValueError, match="different bars"):
        skill_ratio(result_of(a, "agent"), result_of(b, "ref", t=np.arange(1, 102)))
    with pytest.raises(ValueError, match="different bars"):
        skill_ratio(result_of(a, "agent"), result_of(b[:50], "ref"))
    with pytest.raises(ValueError, match="periods_per_year"):
        skill_ratio(result_of(a, "agent"), result_of(b, "ref", ppy=365.0))


def test_skill_ratio_is_undefined_against_a_losing_reference():
    rng = np.random.default_rng(2)
    agent = rng.normal(0.001, 0.01, 300)
    losing = rng.normal(-0.002, 0.01, 300)
    ratio = skill_ratio(result_of(agent, "agent"), result_of(losing, "ref"), n_boot=100)
    assert math.isnan(ratio.estimate) and math.isnan(ratio.low) and math.isnan(ratio.high)
    assert not ratio.defined and "<= 0" in ratio.reason
    assert ratio.reference_sharpe < 0 < ratio.agent_sharpe
    d = ratio.to_dict()
    assert d["estimate"] is None and d["reason"] == ratio.reason
    assert format_skill_ratio(d).startswith("skill ratio undefined")
    flat = skill_ratio(result_of(agent, "agent"), result_of(np.zeros(300), "cash"), n_boot=10)
    assert math.isnan(flat.estimate)


def test_skill_report_and_the_report_files(tmp_path):
    env = held_out_env("sb3_trading/MultiAsset-v0", MultiAssetEnv, {})
    agent = backtest(RandomPolicy(env.action_space, seed=0), env, name="random_agent")
    references, skill = skill_report(env, agent, n_boot=200, seed=0)
    assert set(references) == {SIGNAL_FOLLOWER} and skill["reference"] == SIGNAL_FOLLOWER
    assert np.array_equal(references[SIGNAL_FOLLOWER].t, agent.t)
    assert skill["estimate"] == pytest.approx(agent.metrics["sharpe"] / references[SIGNAL_FOLLOWER].metrics["sharpe"])
    assert skill["low"] <= skill["estimate"] <= skill["high"]
    line = format_skill_ratio(skill)
    assert line.startswith(f"skill ratio {skill['estimate']:.2f} [")
    assert line.endswith("= agent Sharpe / signal follower Sharpe, 90% block-bootstrap CI")
    report = write_report(
        {"random_agent": agent}, tmp_path, n_boot=0, plots=False, regimes=False, references=references, skill_ratio=skill
    )
    assert report["references"][SIGNAL_FOLLOWER]["metrics"]["sharpe"] == pytest.approx(
        references[SIGNAL_FOLLOWER].metrics["sharpe"]
    )
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["skill_ratio"] == jsonable(skill)
    html = (tmp_path / "report.html").read_text()
    assert "Reference policies" in html and "skill ratio" in html

    from sb3_trading.commands.backtest import format_summary

    text = format_summary(report)
    assert f"ref: {SIGNAL_FOLLOWER}" in text and line in text


def test_skill_report_when_the_paths_cover_different_bars():
    # LeveragedPair's stop-loss ends the agent's and the reference's episodes at different bars
    env = held_out_env("sb3_trading/LeveragedPair-v0", LeveragedPairEnv, {"max_days": None, "stop_loss": -0.05})
    agent = backtest(RandomPolicy(env.action_space, seed=3), env)
    references, skill = skill_report(env, agent, n_boot=50)
    if np.array_equal(references[SIGNAL_FOLLOWER].t, agent.t):
        pytest.skip("both paths happened to cover the same bars")
    assert skill["estimate"] is None and "different bars" in skill["reason"]
    assert json.dumps(jsonable(skill))


def test_train_summary_shows_the_references_and_the_skill_ratio():
    from sb3_trading.commands.train import format_train_summary

    metrics = {"total_return": 0.1, "sharpe": 1.0, "max_drawdown": 0.05, "mean_turnover": 0.2}
    skill = {"reference": SIGNAL_FOLLOWER, "estimate": 0.5, "low": 0.2, "high": 0.9, "alpha": 0.1}
    report = {
        "algo": "ppo",
        "agent": {"metrics": metrics, "start_t": 0, "end_t": 10},
        "baselines": {"cash": {"metrics": metrics}},
        "references": {SIGNAL_FOLLOWER: {"metrics": {**metrics, "sharpe": 2.0}}},
        "skill_ratio": skill,
        "data": {"assets": ["a"]},
        "calendar": {"periods_per_year": 252.0},
        "risk_free": {"annual": 0.0},
        "model_path": "m.zip",
        "run_dir": "run",
    }
    text = format_train_summary(report)
    assert f"ref: {SIGNAL_FOLLOWER}" in text
    assert "skill ratio 0.50 [0.20, 0.90] = agent Sharpe / signal follower Sharpe, 90% block-bootstrap CI" in text
    plain = format_train_summary({k: v for k, v in report.items() if k not in ("references", "skill_ratio")})
    assert "skill ratio" not in plain and "ref:" not in plain
