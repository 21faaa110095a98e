"""Position-sizing action wrappers (:mod:`sb3_trading.wrappers.sizing`): volatility targeting and fractional Kelly."""

from __future__ import annotations

import json
import pickle

import gymnasium as gym
import numpy as np
import pytest

import sb3_trading  # noqa: F401  (registers the env IDs)
from sb3_trading.backtesting import run_backtest_command
from sb3_trading.cli import main
from sb3_trading.commands.compare import load_run
from sb3_trading.data import MarketData
from sb3_trading.data.synthetic import make_gbm_market, make_leveraged_pair_market
from sb3_trading.envs.kernel import dead_zone_action, into_dead_zone, past_dead_zone
from sb3_trading.recipe import choose_vec_env, make_backtest_env, read_run_spec
from sb3_trading.wrappers.sizing import (
    ESTIMATE_KEY,
    SCALE_KEY,
    SIZING_WRAPPERS,
    FractionalKelly,
    VolatilityTargeting,
    exposure_model,
    parse_sizing_spec,
    wrap_sizing,
)

MULTI = "sb3_trading/MultiAsset-v0"
PAIR = "sb3_trading/LeveragedPair-v0"


def run(env: gym.Env, policy, start: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One episode of ``policy(i) -> action``: the decision bars, scales, estimates and portfolio returns."""
    _, info = env.reset(seed=0, options=None if start is None else {"start": start})
    bars, scales, estimates, returns = [], [], [], []
    done, i = False, 0
    while not done:
        bars.append(info["t"])
        _, _, terminated, truncated, info = env.step(policy(i))
        scales.append(info[SCALE_KEY])
        estimates.append(info[ESTIMATE_KEY])
        returns.append(info["portfolio_return"])
        done, i = terminated or truncated, i + 1
    return np.array(bars), np.array(scales), np.array(estimates), np.array(returns)


def constant(value: float, n: int = 1):
    action = np.full(n, value, dtype=np.float32)
    return lambda i: action


def annual_vol(returns: np.ndarray, periods_per_year: float = 252.0) -> float:
    return float(np.std(returns, ddof=1) * np.sqrt(periods_per_year))


# ----------------------------------------------------------------------------- volatility targeting
def test_volatility_targeting_hits_the_target_on_a_gbm_market():
    """A constant half-long policy on a 40 %-vol GBM: unsized it runs at ~20 %, sized at the 15 % target."""
    data = make_gbm_market(n_steps=3000, n_assets=1, mu=0.0, sigma=0.4, seed=1)
    env = VolatilityTargeting(gym.make(MULTI, data=data, commission_bps=0.0), 0.15, lookback=60)
    _, scales, estimates, returns = run(env, constant(0.5))
    realised = annual_vol(returns[60:])
    assert abs(realised / 0.15 - 1.0) < 0.15, realised  # measured 0.1534
    assert np.all(scales[:20] == 1.0) and np.all(np.isnan(estimates[:20]))  # warm-up: the action as asked
    assert 0.6 < np.mean(scales[60:]) < 0.9  # ~0.15 / 0.20


def test_volatility_targeting_on_the_leveraged_pair_scales_towards_the_hedged_split():
    data = make_leveraged_pair_market(seed=0)
    base = gym.make(PAIR, data=data, max_days=None, stop_loss=None, commission_bps=0.0, random_start=False)
    env = VolatilityTargeting(base, 0.15, lookback=60)
    _, scales, _, returns = run(env, constant(1.0))
    assert abs(annual_vol(returns[60:]) / 0.15 - 1.0) < 0.15  # measured 0.1532
    # all-bull (tilt +1/2) is scaled to 1/2 + s/2: the env holds bull fractions between 1/2 and 1
    assert env.action(np.array([1.0])) == pytest.approx(0.5 + 0.5 * env.scale, abs=1e-6)
    assert env.action(np.array([0.5])) == pytest.approx(0.5)
    assert np.all(scales > 0)


def test_market_impact_cap_mode_scales_the_action_and_stays_unlevered():
    env = VolatilityTargeting(gym.make("sb3_trading/MarketImpact-v0", weight_mode="cap"), 0.15, lookback=10, cap=5.0)
    env.reset(seed=0)
    for _ in range(15):
        _, _, _, _, info = env.step(np.array([0.2, 0.2, 0.1], dtype=np.float32))
    assert info[SCALE_KEY] > 0
    env.scale = 5.0
    assert env.action(np.array([0.2, 0.2, 0.1])).sum() == pytest.approx(1.0, abs=1e-6)  # cut to fully invested
    env.scale = 0.5
    assert env.action(np.array([0.2, 0.2, 0.1])) == pytest.approx([0.1, 0.1, 0.05])


# ----------------------------------------------------------------------------- fractional Kelly
def kelly_run(mu: float, seed: int, sign_random: bool = False) -> np.ndarray:
    """Kelly scales after the warm-up on a high-vol GBM (per-bar vol ~7.6 %: the estimate's noise ~1/(vol sqrt(n)))."""
    data = make_gbm_market(n_steps=3000, n_assets=1, mu=mu, sigma=1.2, seed=seed)
    env = FractionalKelly(
        gym.make(MULTI, data=data, commission_bps=0.0), fraction=0.5, lookback=2500, cap=2.0, min_periods=1000
    )
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], size=3000).astype(np.float32)
    policy = (lambda i: signs[i : i + 1]) if sign_random else constant(1.0)
    return run(env, policy)[1][1000:]


@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        (MULTI, {"dead_zone": 0.3}),
        (MULTI, {}),
        (PAIR, {"action_mode": "net", "dead_zone": 0.2}),
        (PAIR, {"action_mode": "net"}),
        ("sb3_trading/MarketImpact-v0", {"weight_mode": "cap", "dead_zone": 0.2}),
        ("sb3_trading/YieldAllocation-v0", {"size_action": True, "dead_zone": 0.2}),
    ],
)
def test_scaled_actions_hold_the_scaled_exposure_past_a_dead_zone(env_id, kwargs):
    """The exposure of the scaled action is ``s`` times the action's, also where a dead zone bends the action's map
    (a scaled action is put back past the dead zone, not multiplied inside it)."""
    env = gym.make(env_id, **kwargs)
    model = exposure_model(env)
    rng = np.random.default_rng(0)
    for _ in range(20):
        action = model.clip(rng.uniform(model.low, model.high))
        exposure = model.exposure(action)
        for scale in (0.0, 0.3, 0.8):
            scaled = model.clip(model.scaled(action, scale))
            if env_id.endswith("YieldAllocation-v0"):  # the action is sent as is; the env's exposure_scale sizes it
                np.testing.assert_array_equal(scaled, action.astype(np.float32))
                assert env.unwrapped.exposure_scale == scale
            else:
                np.testing.assert_allclose(model.exposure(scaled), scale * exposure, atol=2e-7)


@pytest.mark.parametrize("dead_zone", [0.0, 0.02, 0.2, 0.9])
def test_vectorised_dead_zone_is_the_kernels_rule_and_inverts(dead_zone):
    """``past_dead_zone`` is the envs' compiled ``dead_zone_action`` elementwise; ``into_dead_zone`` inverts it."""
    actions = np.concatenate([np.linspace(-1.0, 1.0, 401), [dead_zone, -dead_zone, 0.0]])
    expected = np.array([dead_zone_action(float(a), dead_zone) for a in actions])
    np.testing.assert_array_equal(past_dead_zone(actions, dead_zone), expected)
    positions = np.linspace(-1.0, 1.0, 201)
    np.testing.assert_allclose(past_dead_zone(into_dead_zone(positions, dead_zone), dead_zone), positions, atol=1e-12)


def test_kelly_shrinks_to_zero_without_an_edge_and_is_positive_with_one():
    no_edge = np.concatenate([kelly_run(0.0, seed) for seed in (1, 2)])  # driftless: E[return] = 0
    assert no_edge.mean() < 0.05 and (no_edge == 0).mean() > 0.8  # measured 0.002, 91 % zero
    random_sign = kelly_run(2.4, 3, sign_random=True)  # a drifting market, a policy without an edge
    assert random_sign.mean() < 0.05
    edge = kelly_run(2.4, 1)  # Kelly leverage mu / sigma^2 = 1.67, half of it ~0.83
    assert edge.min() > 0.0 and edge.mean() > 0.4  # measured 0.68


# ----------------------------------------------------------------------------- by hand, causality
def tiny_market(returns: list[float], t0: int = 60, n_after: int = 5) -> MarketData:
    """One asset: a gentle zig-zag to bar ``t0`` (the indicators' warm-up), then the given bar returns."""
    before = 100.0 * (1.0 + 0.01 * np.sin(np.arange(t0 + 1)))
    after = before[-1] * np.cumprod(1.0 + np.array(returns + [0.01] * n_after))
    return MarketData(prices=np.concatenate([before, after]), periods_per_year=1)


def test_hand_checked_scales():
    data = tiny_market([0.1, -0.05, 0.1, 0.0])
    kelly = FractionalKelly(gym.make(MULTI, data=data, commission_bps=0.0), 0.5, lookback=3, cap=10.0, min_periods=2)
    bars, scales, estimates, _ = run(kelly, constant(1.0), start=60)
    assert bars[0] == 60
    # windows [.1, -.05]: mean .025, var .01125; [.1, -.05, .1]: .05, .0075; [-.05, .1, 0]: 1/60, .035/6
    assert scales[:5] == pytest.approx([0.0, 0.0, 0.5 * 0.025 / 0.01125, 0.5 * 0.05 / 0.0075, 0.5 * (1 / 60) / (0.035 / 6)])
    assert estimates[2] == pytest.approx(0.025 / 0.01125)
    vol = VolatilityTargeting(
        gym.make(MULTI, data=tiny_market([0.1, -0.1, 0.0, 0.1]), commission_bps=0.0), 0.05, lookback=3, min_periods=2
    )
    _, scales, estimates, _ = run(vol, constant(1.0), start=60)
    # periods_per_year=1: sigma = std(ddof=1) of [.1, -.1] = .1 sqrt(2), then of [.1, -.1, 0] and [-.1, 0, .1] = .1
    assert scales[:5] == pytest.approx([1.0, 1.0, 0.05 / (0.1 * np.sqrt(2)), 0.5, 0.5])
    assert estimates[3] == pytest.approx(0.1)


def test_the_scale_at_t_depends_only_on_returns_up_to_t():
    data = make_gbm_market(n_steps=400, n_assets=1, mu=0.1, sigma=0.3, seed=4)
    cut = 250
    prices = data.prices.copy()
    prices[cut + 1 :] *= np.exp(np.random.default_rng(0).normal(0.0, 0.05, size=(len(prices) - cut - 1, 1))).cumprod(axis=0)
    future = MarketData(prices=prices, timestamps=data.timestamps, periods_per_year=data.periods_per_year)
    flips = np.where(np.arange(400) % 7 < 3, 1.0, -0.5).astype(np.float32)

    def scales(market: MarketData, cls: type) -> tuple[np.ndarray, np.ndarray]:
        env = cls(gym.make(MULTI, data=market, commission_bps=10.0), lookback=30)
        bars, s, _, _ = run(env, lambda i: flips[i : i + 1])
        return bars, s

    for cls in (VolatilityTargeting, FractionalKelly):
        bars, base = scales(data, cls)
        bars2, perturbed = scales(future, cls)
        assert np.array_equal(bars, bars2)
        known = bars <= cut
        assert np.array_equal(base[known], perturbed[known])  # decisions at t <= cut: identical
        assert not np.allclose(base[~known], perturbed[~known])  # later ones see the new prices


# ----------------------------------------------------------------------------- info, reset, pickling, spec
def test_info_reset_stacking_and_pickling():
    data = make_gbm_market(n_steps=200, n_assets=2, seed=0)
    env = wrap_sizing(gym.make(MULTI, data=data), ["vol_target:0.1,lookback=10", "kelly:lookback=20,warmup_scale=1"])
    assert isinstance(env, FractionalKelly) and isinstance(env.env, VolatilityTargeting)
    action = np.array([0.3, -0.2], dtype=np.float32)
    env.reset(seed=0)
    for _ in range(12):
        _, _, _, _, info = env.step(action)
    assert {SCALE_KEY, SCALE_KEY + "_2", ESTIMATE_KEY, ESTIMATE_KEY + "_2"} <= set(info)
    assert len(env.returns) == 12 and len(env.env.returns) == 10  # the window holds lookback returns
    env.reset(seed=0)
    assert len(env.returns) == 0 and len(env.env.returns) == 0
    clone = pickle.loads(pickle.dumps(env))
    rebuilt = gym.make(env.spec)  # RecordConstructorArgs: the spec carries both wrappers
    assert isinstance(rebuilt, FractionalKelly) and isinstance(rebuilt.env, VolatilityTargeting)
    assert rebuilt.env.target_annual_vol == 0.1 and rebuilt.lookback == 20
    for other in (clone, rebuilt):
        other.reset(seed=0)
    env.reset(seed=0)
    for _ in range(15):
        outs = [e.step(action) for e in (env, clone, rebuilt)]
        assert outs[0][4][SCALE_KEY] == outs[1][4][SCALE_KEY] == outs[2][4][SCALE_KEY]
        assert outs[0][1] == outs[1][1] == outs[2][1]


def test_zoo_env_wrapper_entry_builds_it(tmp_path):
    rl_zoo3_utils = pytest.importorskip("rl_zoo3.utils")
    from sb3_trading.zoo import load_zoo_hyperparams

    config = tmp_path / "ppo.yml"
    config.write_text(
        "sb3_trading/MultiAsset-v0:\n"
        "  policy: MultiInputPolicy\n"
        "  n_timesteps: 1000\n"
        "  env_wrapper:\n"
        "    - sb3_trading.wrappers.sizing.VolatilityTargeting:\n"
        "        target_annual_vol: 0.12\n"
        "        lookback: 20\n"
    )
    _, run_settings = load_zoo_hyperparams("ppo", MULTI, config)
    wrapper = rl_zoo3_utils.get_wrapper_class(run_settings)
    env = wrapper(gym.make(MULTI))
    assert isinstance(env, VolatilityTargeting) and env.target_annual_vol == 0.12 and env.lookback == 20
    env.reset(seed=0)
    assert SCALE_KEY in env.step(env.action_space.sample())[4]


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("env_id", "message"),
    [
        ("sb3_trading/MaskedTrading-v0", r"MaskedTrading-v0 has a discrete action space"),
        ("sb3_trading/SingleAsset-v0", r"SingleAsset-v0 has a discrete action space"),
    ],
)
def test_envs_without_an_exposure_action_are_refused(env_id, message):
    for cls in SIZING_WRAPPERS.values():
        with pytest.raises(TypeError, match=message):
            cls(gym.make(env_id))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_annual_vol": 0.0}, "target_annual_vol"),
        ({"target_annual_vol": "high"}, "target_annual_vol"),
        ({"lookback": 1}, "lookback"),
        ({"cap": -1.0}, "cap"),
        ({"lookback": 10, "min_periods": 20}, "min_periods must be <= lookback"),
        ({"periods_per_year": 0}, "periods_per_year"),
        ({"warmup_scale": -0.5}, "warmup_scale"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        VolatilityTargeting(gym.make(MULTI), **kwargs)


def test_bad_kelly_fraction():
    with pytest.raises(ValueError, match="fraction"):
        FractionalKelly(gym.make(MULTI), fraction=0.0)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("vol_targt:0.15", r"unknown sizing wrapper 'vol_targt'; did you mean 'vol_target'"),
        ("kelly:0.5,lookbak=20", r"no argument 'lookbak'; did you mean 'lookback'"),
        ("kelly:0.5,0.7", r"must be key=value"),
        ("kelly:0.5,fraction=0.7", r"'fraction' twice"),
        ("kelly:lookback=1,lookback=2", r"'lookback' twice"),
        (("kelly", "x"), r"tuple must be \(name, kwargs dict\)"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_sizing_spec(spec)


def test_spec_forms():
    assert parse_sizing_spec("vol_target") == (VolatilityTargeting, {})
    assert parse_sizing_spec("vol_target:0.15,lookback=60") == (
        VolatilityTargeting,
        {"target_annual_vol": 0.15, "lookback": 60},
    )
    assert parse_sizing_spec("kelly:cap=1.5") == (FractionalKelly, {"cap": 1.5})
    assert parse_sizing_spec("regime:'weekly:vol_regime:4',scales=(1,1,0.25)") == (
        SIZING_WRAPPERS["regime"],
        {"regime": "weekly:vol_regime:4", "scales": (1, 1, 0.25)},
    )
    assert parse_sizing_spec(("kelly", {"fraction": 0.25})) == (FractionalKelly, {"fraction": 0.25})
    from_json = json.loads(json.dumps([("kelly", {"fraction": 0.25}), "vol_target"]))
    env = wrap_sizing(gym.make(MULTI), from_json)
    assert isinstance(env, VolatilityTargeting) and env.env.fraction == 0.25
    assert isinstance(wrap_sizing(gym.make(MULTI), ["kelly", {"cap": 1.5}]), FractionalKelly)
    assert choose_vec_env(MULTI, "auto", (), ["kelly"]) == "dummy"
    with pytest.raises(ValueError, match="sizing wrappers wrap single Gymnasium envs"):
        choose_vec_env(MULTI, "batched", (), ["kelly"])


# ----------------------------------------------------------------------------- CLI
TINY_TRAIN = ["--timesteps", "64", "--n-envs", "1", "--episode-length", "32", "--no-progress", "--eval-freq", "0"]
TINY_TRAIN += ["--hyperparams", "n_steps=64", "batch_size=64", "n_epochs=1", "policy_kwargs={'net_arch': [16]}"]


def test_cli_train_with_sizing_records_it_and_the_run_rebuilds_it(tmp_path, capsys):
    spec = "vol_target:0.15,lookback=20"
    code = main(["train", *TINY_TRAIN, "--sizing", spec, "--output-dir", str(tmp_path), "--run-name", "sized"])
    assert code == 0, capsys.readouterr().err
    run_dir = tmp_path / "sized"
    report = json.loads((run_dir / "report.json").read_text())
    assert report["sizing_wrappers"] == [spec] and report["vec_env"] == "dummy"
    run_spec = read_run_spec(run_dir / "model.zip")
    assert run_spec["sizing"] == [spec]
    # what evaluation rebuilds from run.json: the backtest env in the same wrapper
    data = make_gbm_market(n_steps=300, n_assets=2, seed=0)
    env = make_backtest_env(run_spec["env_id"], data, None, run_spec["env_kwargs"], run_spec["sizing"])
    assert isinstance(env, VolatilityTargeting) and env.target_annual_vol == 0.15 and env.lookback == 20
    # sb3-trading backtest and compare trade through it: the held-out metrics of the run, reproduced
    rebuilt = run_backtest_command(run_dir / "model.zip", n_boot=0, plots=False)
    assert rebuilt["strategies"]["ppo"]["metrics"] == pytest.approx(report["agent"]["metrics"])
    compared = load_run(run_dir, "cpu", ())["agent"]
    assert compared.metrics == pytest.approx(report["agent"]["metrics"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--sizing", "vol_targt:0.15"], "did you mean 'vol_target'"),
        (["--sizing", "kelly", "--vec", "batched"], "sizing wrappers wrap single Gymnasium envs"),
        (["--sizing", "vol_target:-0.1"], "target_annual_vol"),
        (["--sizing", "kelly", "--env", "sb3_trading/MaskedTrading-v0", "--algo", "ppo_mask"], "discrete action space"),
    ],
)
def test_cli_bad_sizing_is_a_one_line_error(tmp_path, capsys, args, message):
    assert main(["train", *TINY_TRAIN, "--output-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err


# ----------------------------------------------------------------------------- regime sizing
def regime_step_market(n_steps: int = 400, n_assets: int = 2, seed: int = 3) -> MarketData:
    """Calm first half, a volatility burst in the second (a different timing per asset)."""
    rng = np.random.default_rng(seed)
    sigma = np.full((n_steps, n_assets), 0.005)
    for i in range(n_assets):
        sigma[200 + 40 * i :, i] = 0.04
    prices = 100.0 * np.exp(np.cumsum(sigma * rng.standard_normal((n_steps, n_assets)), axis=0))
    return MarketData(prices=prices, asset_names=[f"a{i}" for i in range(n_assets)])


def test_regime_sizing_scales_each_asset_by_its_own_causal_regime():
    """MultiAsset: the scale of asset i at the decision bar is scales[vol_regime label of asset i at that bar]."""
    from sb3_trading.features.regimes import volatility_regime
    from sb3_trading.wrappers.sizing import RegimeSizing

    data = regime_step_market()
    scales = (1.0, 0.6, 0.2)
    env = RegimeSizing(gym.make(MULTI, data=data), regime="vol_regime:40", scales=scales, warmup_scale=0.0)
    labels = volatility_regime(data.prices, window=40)
    plain = gym.make(MULTI, data=data)
    _, info = env.reset(seed=0, options={"start": 60})
    plain.reset(seed=0, options={"start": 60})
    action = np.array([0.8, -0.5], dtype=np.float32)
    seen = set()
    for _ in range(300):
        t = info["t"]
        expected = np.array([0.0 if np.isnan(x) else scales[int(x)] for x in labels[t]])
        _, _, terminated, truncated, info = env.step(action)
        _, _, _, _, plain_info = plain.step(np.clip(expected * action, -1, 1).astype(np.float32))
        np.testing.assert_allclose(info[SCALE_KEY], expected)
        np.testing.assert_array_equal(info[ESTIMATE_KEY], labels[t])
        assert info["portfolio_return"] == pytest.approx(plain_info["portfolio_return"], abs=1e-12)
        seen.update(expected.tolist())
        if terminated or truncated:
            break
    assert {0.0, 1.0, 0.2} <= seen  # warm-up, calm and the burst all met


def test_regime_sizing_is_causal():
    """Changing every bar after t changes no label (hence no scale) at bars <= t."""
    from sb3_trading.features import regime_label_table

    data = regime_step_market()
    for regime in ("vol_regime:20", "trend_regime:10", "weekly:vol_regime:3"):
        if regime.startswith("weekly"):
            stamps = np.datetime64("2020-01-06") + np.arange(data.n_steps).astype("timedelta64[D]")
            data = MarketData(prices=data.prices, asset_names=data.asset_names, timestamps=stamps)
        base, _, _ = regime_label_table(data, regime)
        t = 300
        prices = data.prices.copy()
        prices[t + 1 :] *= np.exp(np.random.default_rng(9).normal(0, 0.05, prices[t + 1 :].shape))
        changed = MarketData(prices=prices, asset_names=data.asset_names, timestamps=data.timestamps)
        other, _, _ = regime_label_table(changed, regime)
        np.testing.assert_array_equal(base[: t + 1], other[: t + 1])
        assert not np.array_equal(base[t + 1 :], other[t + 1 :], equal_nan=True)


def test_regime_sizing_on_the_pair_reads_the_index_and_pickles():
    from sb3_trading.features.regimes import trend_regime
    from sb3_trading.wrappers.sizing import RegimeSizing

    data = make_leveraged_pair_market(n_steps=300, seed=2)
    env = wrap_sizing(gym.make(PAIR, data=data), "regime:'trend_regime:10',scales=(0.0,0.5,1.0)")
    assert isinstance(env, RegimeSizing) and not env.per_asset
    index = data.asset_names.index("index")
    labels = trend_regime(data.prices, window=10)[:, index]
    _, info = env.reset(seed=0)
    clone = pickle.loads(pickle.dumps(env))
    clone.reset(seed=0)
    seen, done = set(), False
    while not done:
        t = info["t"]
        _, _, terminated, truncated, info = env.step(np.array([0.9], dtype=np.float32))
        assert info[SCALE_KEY] == {-1.0: 0.0, 0.0: 0.5, 1.0: 1.0}.get(labels[t], 1.0)
        assert clone.step(np.array([0.9], dtype=np.float32))[4][SCALE_KEY] == info[SCALE_KEY]
        seen.add(info[SCALE_KEY])
        done = terminated or truncated
    assert {0.0, 1.0} <= seen


def test_regime_sizing_from_an_hmm_uses_the_filtered_state():
    pytest.importorskip("hmmlearn")
    from sb3_trading.features.regimes import hmm_regime_probabilities, regime_labels
    from sb3_trading.wrappers.sizing import RegimeSizing

    data = regime_step_market(n_assets=1)
    env = RegimeSizing(gym.make(MULTI, data=data), regime="regime_prob:2,150", scales={0: 1.0, 1: 0.25})
    labels = regime_labels(hmm_regime_probabilities(data.prices, n_states=2, fit=150))[:, 0]
    _, info = env.reset(seed=0, options={"start": 160})
    for _ in range(100):
        t = info["t"]
        _, _, _, _, info = env.step(np.array([1.0], dtype=np.float32))
        assert info[SCALE_KEY][0] == (1.0 if labels[t] == 0 else 0.25)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"regime": "rsi:14"}, ValueError, r"'rsi:14' is not a regime indicator"),
        ({"regime": "trend_regime:10"}, ValueError, r"pass scales=\(s_down, s_flat, s_up\)"),
        ({"scales": (1.0, 0.5)}, ValueError, r"one scale per label .* \[0, 1, 2\]"),
        ({"scales": {0: 1.0, 1: 0.5}}, ValueError, r"must name every label"),
        ({"scales": (1.0, -0.5, 0.0)}, ValueError, r"scales\[1\]"),
        ({"asset": "zz"}, ValueError, r"asset 'zz' is not an asset .* \['a0', 'a1'\]"),
        ({"regime": "vol_regime:500"}, ValueError, r"vol_regime:500"),
    ],
)
def test_regime_sizing_bad_arguments(kwargs, error, message):
    from sb3_trading.wrappers.sizing import RegimeSizing

    with pytest.raises(error, match=message):
        RegimeSizing(gym.make(MULTI, data=regime_step_market()), **kwargs)


@pytest.mark.parametrize("env_id", ["sb3_trading/MarketImpact-v0", "sb3_trading/YieldAllocation-v0"])
def test_regime_sizing_of_a_whole_book_names_its_asset(env_id):
    """One scale for the book: the regime of a named asset's data prices (MarketImpact: the exogenous path)."""
    from sb3_trading.features.regimes import volatility_regime
    from sb3_trading.wrappers.sizing import RegimeSizing

    with pytest.raises(ValueError, match="name the asset whose regime"):
        RegimeSizing(gym.make(env_id))
    base = gym.make(env_id, random_start=False)
    asset = base.unwrapped.data.asset_names[0]
    env = RegimeSizing(base, regime="vol_regime:20", scales=(1.0, 0.5, 0.0), asset=asset, warmup_scale=1.0)
    labels = volatility_regime(base.unwrapped.data.prices[:, [0]], window=20)[:, 0]
    _, info = env.reset(seed=0)
    seen = set()
    for _ in range(120):
        t = info["t"]
        _, _, terminated, truncated, info = env.step(np.full(env.action_space.shape, 0.5, dtype=np.float32))
        expected = 1.0 if np.isnan(labels[t]) else (1.0, 0.5, 0.0)[int(labels[t])]
        assert info[SCALE_KEY] == expected and env.unwrapped.exposure_scale == expected
        seen.add(expected)
        if terminated or truncated:
            break
    assert len(seen) >= 2


# ----------------------------------------------------------------------------- envs that always allocate the whole book
@pytest.mark.parametrize(
    ("env_id", "kwargs"),
    [
        ("sb3_trading/YieldAllocation-v0", {"max_drawdown": None}),
        ("sb3_trading/MarketImpact-v0", {"weight_mode": "sum"}),
    ],
)
def test_book_fraction_envs_hold_the_scaled_fraction_of_the_book(env_id, kwargs):
    """YieldAllocation's softmax and MarketImpact's sum mode are always fully invested: the scale (at most 1) goes
    to the env's exposure_scale, and the book's risky weights sum to it (the rest cash)."""
    env = VolatilityTargeting(gym.make(env_id, random_start=False, **kwargs), target_annual_vol=0.001, lookback=5)
    env.reset(seed=0)
    action = np.full(env.action_space.shape, 0.5, dtype=np.float32)
    scales, invested = [], []
    for _ in range(30):
        _, _, terminated, truncated, info = env.step(action)
        scales.append(info[SCALE_KEY])
        invested.append(float(np.sum(info["weights"])))
        if terminated or truncated:
            break
    assert scales[0] == 1.0 and invested[0] > 0.95  # warm-up: the action as asked, fully invested
    late = np.array(scales[10:])
    assert (late < 1.0).all() and (late >= 0.0).all()  # a tiny volatility target sizes the book down
    # the risky weights (marked at the next close) follow the fraction of the book the scale put at risk
    np.testing.assert_allclose(invested[10:], late, atol=0.05)
    assert np.mean(invested[10:]) < 0.5 and env.unwrapped.exposure_scale == pytest.approx(late[-1])
    plain = gym.make(env_id, random_start=False, **kwargs)
    plain.reset(seed=0)
    assert plain.unwrapped.exposure_scale == 1.0
    with pytest.raises(ValueError, match="exposure_scale"):
        plain.unwrapped.exposure_scale = 1.5
