"""Fitted indicator state (``regime_prob``'s Gaussian HMMs) is fitted on the training slice and carried to
every held-out env -- through the recipe, the run folder (``feature_fits.json``) and walk-forward folds -- so
held-out bars are filtered with the training fit, never with a refit on held-out rows."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_regimes import switching_market

import sb3_trading  # noqa: F401  (registers the envs)
import sb3_trading.features.regimes as regimes
from sb3_trading.data import MarketData
from sb3_trading.envs.multi_asset import MultiAssetEnv
from sb3_trading.evaluation.backtest import make_backtest_env
from sb3_trading.features import check_feature_fits, compute_features, fit_hmm_params, hmm_filter
from sb3_trading.features.regimes import NO_REGIME, hmm_regime_probabilities, regime_labels
from sb3_trading.recipe import probe_env, read_feature_fits

pytest.importorskip("hmmlearn")

SPEC = "regime_prob:2,300"
KEY = "regime_prob:2,300,0"


def switching_prices(n_steps: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two assets of test_regimes' Markov-switching GBM: ``(prices (T, 2), true regime (T, 2))``."""
    return switching_market(n_steps, n_assets=2, seed=seed)


def market(n_steps: int = 1200, seed: int = 5) -> tuple[MarketData, np.ndarray]:
    prices, regime = switching_prices(n_steps, seed=seed)
    return MarketData(prices=prices, asset_names=["A", "B"]), regime


@pytest.fixture
def count_fits(monkeypatch):
    """How many times an HMM is fitted (per call of fit_hmm_params) from now on."""
    calls = []
    real = regimes.fit_hmm_params

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(regimes, "fit_hmm_params", counting)
    return calls


# ----------------------------------------------------------------------------- the function
def test_given_params_filter_from_the_first_return_and_match_the_recursion():
    prices, _ = switching_prices(600, seed=1)
    train, test = prices[:300], prices[300:]
    params = fit_hmm_params(train, n_states=2, fit=300)
    assert len(params) == 2 and set(params[0]) == {"means", "variances", "transmat"}
    json.dumps(params)  # JSON-ready
    probs = hmm_regime_probabilities(test, n_states=2, fit=300, params=params)
    assert all(np.isnan(p[0]).all() and np.isfinite(p[1:]).all() for p in probs)  # only row 0: no return yet
    returns = np.log(test[1:] / test[:-1])
    means = np.array([p["means"] for p in params])
    variances = np.array([p["variances"] for p in params])
    transmat = np.array([p["transmat"] for p in params])
    expected = hmm_filter(returns, means, variances, transmat)  # (T - 1, N, K), uniform start at the first return
    for k in range(2):
        np.testing.assert_allclose(probs[k][1:], expected[:, :, k], rtol=0, atol=1e-12)
    # the same as fitting inside the function on the training rows and filtering on
    whole = hmm_regime_probabilities(prices, n_states=2, fit=300)
    fitted_inside = fit_hmm_params(prices, n_states=2, fit=300)
    np.testing.assert_array_equal(np.array([p["means"] for p in fitted_inside]), means)
    assert np.isfinite(whole[0][299:]).all()


def test_training_fit_separates_the_regimes_of_held_out_bars():
    """Fit on the training half only; the held-out half, filtered with that fit from its own first bar (no
    held-out warm-up), recovers the true regime."""
    prices, regime = switching_prices(2000, seed=11)
    params = fit_hmm_params(prices[:1000], n_states=2, fit=1000)
    labels = regime_labels(hmm_regime_probabilities(prices[1000:], params=params))
    assert labels[0].tolist() == [NO_REGIME, NO_REGIME]
    accuracy = (labels[1:] == regime[1001:]).mean(axis=0)
    assert (accuracy > 0.9).all(), accuracy


@pytest.mark.parametrize("t", [1, 50, 90])
def test_given_params_are_causal(t):
    prices, _ = switching_prices(400, seed=2)
    params = fit_hmm_params(prices[:300], fit=300)
    test = prices[300:].copy()
    reference = hmm_regime_probabilities(test, params=params)
    rng = np.random.default_rng(0)
    test[t + 1 :] *= np.exp(rng.normal(0, 0.05, test[t + 1 :].shape))
    changed = hmm_regime_probabilities(test, params=params)
    for p, q in zip(reference, changed, strict=True):
        np.testing.assert_array_equal(p[: t + 1], q[: t + 1])
        assert not np.array_equal(p[t + 1 :], q[t + 1 :])


@pytest.mark.parametrize(
    "params, match",
    [
        ([{"means": [0, 0], "variances": [1, 2], "transmat": [[1, 0], [0, 1]]}], "one fitted HMM per asset"),
        ([{"means": [0, 0, 0], "variances": [1, 2, 3], "transmat": np.eye(3).tolist()}] * 2, "shape"),
        ([{"means": [0, 0], "variances": [1, -2], "transmat": [[1, 0], [0, 1]]}] * 2, "variances > 0"),
        ([{"means": [0, 0], "variances": [1, 2], "transmat": [[0.5, 0.6], [0, 1]]}] * 2, "summing to 1"),
        ([{"mean": [0, 0]}] * 2, "'means', 'variances' and 'transmat'"),
    ],
)
def test_bad_params_raise(params, match):
    prices, _ = switching_prices(100, seed=0)
    with pytest.raises(ValueError, match=match):
        hmm_regime_probabilities(prices, params=params)


# ----------------------------------------------------------------------------- features and envs
def test_compute_features_reuses_the_given_fit_per_asset(count_fits):
    data, _ = market()
    train, test = data.slice(0, 600), data.slice(600, None)
    trained = compute_features(train, (SPEC,), include_data_features=False)
    assert set(trained.fits) == {KEY} and set(trained.fits[KEY]) == {"A", "B"} and len(count_fits) == 1
    held_out = compute_features(test, (SPEC,), include_data_features=False, fits=trained.fits)
    assert len(count_fits) == 1  # nothing refitted on the held-out rows
    assert held_out.warmup == 1 and held_out.fits == trained.fits
    params = [trained.fits[KEY][a] for a in ("A", "B")]
    np.testing.assert_array_equal(
        held_out.values, np.concatenate(hmm_regime_probabilities(test.prices, params=params), axis=1)
    )
    refitted = compute_features(test, (SPEC,), include_data_features=False)
    assert refitted.warmup == 299 and not np.array_equal(refitted.values[299:], held_out.values[299:])
    # an asset the fits lack is fitted here (its pre-fit rows NaN); the given one is reused
    partial = compute_features(test, (SPEC,), include_data_features=False, fits={KEY: {"A": trained.fits[KEY]["A"]}})
    assert len(count_fits) == 3 and count_fits[-1] == (600, 1)
    np.testing.assert_array_equal(partial.values[:, 0], held_out.values[:, 0])
    assert np.isnan(partial.values[:298, 1]).all() and partial.fits[KEY]["A"] == trained.fits[KEY]["A"]


def test_a_held_out_env_uses_the_training_fit_and_stays_causal(count_fits):
    data, _ = market()
    train, test = data.slice(0, 700), data.slice(700, None)
    kwargs = {"indicators": (SPEC,), "normalizer": None}
    train_env = MultiAssetEnv(data=train, **kwargs)
    assert len(count_fits) == 1 and set(train_env.feature_fits[KEY]) == {"A", "B"}
    test_env = MultiAssetEnv(data=test, feature_fits=train_env.feature_fits, **kwargs)
    assert len(count_fits) == 1 and test_env.feature_fits == train_env.feature_fits
    assert test_env.first_t == 1  # no HMM warm-up on held-out rows
    params = [train_env.feature_fits[KEY][a] for a in ("A", "B")]
    expected = np.concatenate(hmm_regime_probabilities(test.prices, params=params), axis=1)
    np.testing.assert_allclose(test_env._features[1:], expected[1:].astype(np.float32))
    # causal: perturb every bar after t, the features at <= t are unchanged
    t = 150
    prices = test.prices.copy()
    prices[t + 1 :] *= np.exp(np.random.default_rng(3).normal(0, 0.05, prices[t + 1 :].shape))
    changed = MultiAssetEnv(
        data=MarketData(prices=prices, asset_names=["A", "B"]), feature_fits=train_env.feature_fits, **kwargs
    )
    np.testing.assert_array_equal(changed._features[: t + 1], test_env._features[: t + 1])
    assert not np.array_equal(changed._features[t + 1 :], test_env._features[t + 1 :])


def test_probe_and_backtest_env_carry_the_fit(count_fits):
    data, _ = market()
    train, test = data.slice(0, 700), data.slice(400, None)
    env_kwargs = {"indicators": (SPEC, "log_return")}
    probe = probe_env("sb3_trading/MultiAsset-v0", train, env_kwargs)
    assert set(probe.feature_fits) == {KEY} and len(count_fits) == 1
    env = make_backtest_env("sb3_trading/MultiAsset-v0", test, probe.normalizer, env_kwargs, feature_fits=probe.feature_fits)
    assert env.unwrapped.feature_fits == probe.feature_fits and len(count_fits) == 1


def test_multi_path_training_fits_once_on_the_first_path(count_fits):
    from sb3_trading.data import stack_paths

    data, _ = market()
    paths = stack_paths([data.slice(0, 600), data.slice(600, 1200)])
    env = MultiAssetEnv(data=paths, indicators=(SPEC,), normalizer=None)
    assert len(count_fits) == 1
    first = compute_features(data.slice(0, 600), (SPEC,), include_data_features=False)
    second = compute_features(data.slice(600, 1200), (SPEC,), include_data_features=False, fits=first.fits)
    np.testing.assert_allclose(env._features[600 + 1 :], second.values[1:].astype(np.float32))


def test_mask_rules_and_regime_sizing_reuse_the_training_fit(count_fits):
    """MaskedTrading's regime rules read an HMM of the index; RegimeSizing one of the traded assets: both fits
    land in env.feature_fits on the training slice and the held-out envs reuse them."""
    from sb3_trading.data import make_leveraged_pair_market

    pair = make_leveraged_pair_market(n_steps=900, seed=0)
    train, test = pair.slice(0, 600), pair.slice(300, None)
    kwargs = {"regime_rules": True, "regime_volatility": SPEC}
    probe = probe_env("sb3_trading/MaskedTrading-v0", train, kwargs)
    index_assets = set(probe.feature_fits[KEY])
    assert len(index_assets) == 1 and len(count_fits) == 1
    env = make_backtest_env("sb3_trading/MaskedTrading-v0", test, probe.normalizer, kwargs, feature_fits=probe.feature_fits)
    assert len(count_fits) == 1 and env.unwrapped.feature_fits == probe.feature_fits
    assert env.unwrapped.regimes is not None

    data, _ = market()
    sizing = [("regime", {"regime": SPEC, "scales": {0: 1.0, 1: 0.25}})]
    probe = probe_env("sb3_trading/MultiAsset-v0", data.slice(0, 700), {}, sizing)
    assert set(probe.feature_fits[KEY]) == {"A", "B"}
    before = len(count_fits)
    held_out = data.slice(400, None)
    env = make_backtest_env("sb3_trading/MultiAsset-v0", held_out, probe.normalizer, {}, sizing, probe.feature_fits)
    assert len(count_fits) == before and env.unwrapped.feature_fits == probe.feature_fits


def test_bad_feature_fits_are_clear_errors(tmp_path):
    data, _ = market(400)
    with pytest.raises(TypeError, match="feature_fits must map a spec"):
        MultiAssetEnv(data=data, indicators=(SPEC,), feature_fits=[1, 2])
    state = {"means": [0.0], "variances": [1.0], "transmat": [[1.0]]}
    bad = {KEY: {"A": state, "B": state}}
    with pytest.raises(ValueError, match="regime_prob:2,300.*shape"):
        MultiAssetEnv(data=data, indicators=(SPEC,), feature_fits=bad)
    path = tmp_path / "feature_fits.json"
    assert read_feature_fits(path) is None
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="feature_fits JSON"):
        read_feature_fits(path)
    assert check_feature_fits(None) == {}


# ----------------------------------------------------------------------------- run folder and folds
TINY = {"n_steps": 64, "batch_size": 64, "n_epochs": 1}


def test_the_run_folder_carries_the_fit_to_its_backtest(tmp_path, monkeypatch):
    """``sb3-trading train`` writes the training fit (feature_fits.json); ``sb3-trading backtest`` of the run
    reuses it -- fitting nothing -- and reproduces the run's held-out backtest."""
    from sb3_trading.backtesting import BacktestConfig, run_backtest
    from sb3_trading.training import TrainConfig, train

    env_kwargs = {"indicators": [SPEC, "log_return"]}
    report = train(
        TrainConfig(
            timesteps=64,
            output_dir=str(tmp_path),
            run_name="hmm",
            progress_bar=False,
            device="cpu",
            hyperparams=TINY,
            env_kwargs=env_kwargs,
            eval_freq=0,
        )
    )
    run = tmp_path / "hmm"
    fits = json.loads((run / "feature_fits.json").read_text())
    assert set(fits) == {KEY} and len(fits[KEY]) >= 1
    assert json.loads((run / "run.json").read_text())["feature_fits"] == "feature_fits.json"

    def no_fit(*args, **kwargs):
        raise AssertionError("the backtest refitted an HMM instead of reusing the run's fit")

    monkeypatch.setattr(regimes, "fit_hmm_params", no_fit)
    again = run_backtest(BacktestConfig(model_path=str(run / "model.zip"), output_dir=str(tmp_path / "bt"), n_boot=0))
    assert "feature_fits.json" in again["config"]["feature_fits"]
    agent = again["strategies"]["ppo"]
    assert agent["metrics"] == pytest.approx(report["agent"]["metrics"])  # same slice, normaliser, fit, actions
    assert (agent["start_t"], agent["end_t"]) == (report["agent"]["start_t"], report["agent"]["end_t"])


def test_walk_forward_folds_save_their_fit(tmp_path):
    from sb3_trading.data import make_regime_market
    from sb3_trading.walk_forward import walk_forward

    data = make_regime_market(seed=0)
    walk_forward(
        "ppo",
        "sb3_trading/MultiAsset-v0",
        data,
        n_splits=2,
        timesteps=64,
        env_kwargs={"indicators": [SPEC]},
        hyperparams=TINY,
        device="cpu",
        output_dir=tmp_path,
        resample="none",
    )
    for k in range(2):
        fits = read_feature_fits(tmp_path / f"fold_{k}" / "feature_fits.json")
        assert fits is not None and set(fits[KEY]) == set(data.asset_names)
    # each fold fits on the first 300 rows of its own training window; expanding windows all start at row 0
    first = read_feature_fits(tmp_path / "fold_0" / "feature_fits.json")
    second = read_feature_fits(tmp_path / "fold_1" / "feature_fits.json")
    assert first == second  # both windows start at row 0 and the fit uses its first 300 rows only
