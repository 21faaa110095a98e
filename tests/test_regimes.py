"""Tests for ``sb3_trading.features.regimes``: causality by perturbation, the forward filter against a hand
recursion and hmmlearn's smoother, regime recovery on a Markov-switching market, rule-based regimes, errors."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest

from sb3_trading.common.jit import jit_disabled
from sb3_trading.data import MarketData
from sb3_trading.envs.multi_asset import MultiAssetEnv
from sb3_trading.features import INDICATORS, compute_features, describe
from sb3_trading.features.regimes import (
    NO_REGIME,
    hmm_filter,
    hmm_regime_probabilities,
    regime_labels,
    trend_regime,
    volatility_regime,
)

# ---------------------------------------------------------------------------- helpers


def switching_market(n_steps: int, n_assets: int = 1, seed: int = 0, vols=(0.005, 0.025), stay: float = 0.98):
    """Markov-switching GBM: ``(prices (T, N), true regime (T, N))``, regime 0 calm, 1 volatile, sticky."""
    rng = np.random.default_rng(seed)
    regime = np.zeros((n_steps, n_assets), dtype=np.int64)
    switch = rng.random((n_steps, n_assets)) > stay
    for t in range(1, n_steps):
        regime[t] = np.where(switch[t], 1 - regime[t - 1], regime[t - 1])
    sigma = np.asarray(vols)[regime]
    returns = rng.normal(-0.5 * sigma**2, sigma)
    returns[0] = 0.0
    return 100.0 * np.exp(np.cumsum(returns, axis=0)), regime


def perturb_after(prices: np.ndarray, t: int, seed: int = 1) -> np.ndarray:
    """Prices equal to ``prices`` up to row ``t`` and different (a wild random path) afterwards."""
    rng = np.random.default_rng(seed)
    changed = prices.copy()
    n_after = prices.shape[0] - t - 1
    changed[t + 1 :] = prices[t] * np.exp(np.cumsum(rng.normal(0.01, 0.05, (n_after, prices.shape[1])), axis=0))
    return changed


def forward_reference(x: np.ndarray, pi: np.ndarray, a: np.ndarray, mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Textbook scaled forward recursion in probability space, one series: ``(T, K)``."""
    out = np.empty((x.size, mu.size))
    alpha = None
    for t, value in enumerate(x):
        density = np.exp(-0.5 * (value - mu) ** 2 / var) / np.sqrt(2.0 * np.pi * var)
        prior = pi if alpha is None else alpha @ a
        alpha = prior * density
        alpha = alpha / alpha.sum()
        out[t] = alpha
    return out


# ---------------------------------------------------------------------------- forward filter

PI = np.array([0.5, 0.5])
A = np.array([[0.9, 0.1], [0.2, 0.8]])
MU = np.array([0.0, -0.01])
VAR = np.array([0.01**2, 0.03**2])
SIX_RETURNS = np.array([0.002, -0.004, 0.05, -0.04, 0.001, 0.003])


def test_forward_filter_matches_hand_recursion():
    got = hmm_filter(SIX_RETURNS[:, None], MU, VAR, A, PI)
    assert got.shape == (6, 1, 2)
    np.testing.assert_allclose(got[:, 0], forward_reference(SIX_RETURNS, PI, A, MU, VAR), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    # first step by hand: P(s_0 = 1 | r_0) = pi_1 phi_1 / (pi_0 phi_0 + pi_1 phi_1)
    phi = np.exp(-0.5 * (SIX_RETURNS[0] - MU) ** 2 / VAR) / np.sqrt(2 * np.pi * VAR)
    assert got[0, 0, 1] == pytest.approx(phi[1] / phi.sum(), rel=1e-12)
    # the 5 % and -4 % moves are far likelier in the volatile state
    assert got[2, 0, 1] > 0.99 and got[3, 0, 1] > 0.99


def test_forward_filter_per_asset_parameters_and_default_start():
    x = np.stack([SIX_RETURNS, -SIX_RETURNS], axis=1)
    means = np.stack([MU, MU[::-1]])
    got = hmm_filter(x, means, VAR, np.stack([A, A.T / A.T.sum(1, keepdims=True)]))  # default start: uniform
    np.testing.assert_allclose(got[:, 0], forward_reference(x[:, 0], PI, A, MU, VAR), rtol=1e-12)
    a1 = A.T / A.T.sum(1, keepdims=True)
    np.testing.assert_allclose(got[:, 1], forward_reference(x[:, 1], PI, a1, MU[::-1], VAR), rtol=1e-12)


def test_forward_filter_survives_extreme_returns():
    """Log space: a return hundreds of standard deviations out of every state stays finite, not 0 / 0."""
    x = np.array([[0.0], [5.0], [-7.0], [0.0]])
    got = hmm_filter(x, MU, VAR, A, PI)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got.sum(axis=-1), 1.0)


def test_forward_filter_is_not_the_smoother():
    """Only the last row of hmmlearn's forward-backward posterior equals the filter; the others use the future."""
    hmm = pytest.importorskip("hmmlearn.hmm")
    model = hmm.GaussianHMM(n_components=2, covariance_type="diag")
    model.startprob_, model.transmat_ = PI, A
    model.means_, model.covars_ = MU[:, None], VAR[:, None]
    smoothed = model.predict_proba(SIX_RETURNS[:, None])
    filtered = hmm_filter(SIX_RETURNS[:, None], MU, VAR, A, PI)[:, 0]
    np.testing.assert_allclose(filtered[-1], smoothed[-1], rtol=1e-9)
    assert np.abs(filtered[:-1] - smoothed[:-1]).max(axis=1).min() > 1e-4  # every earlier row differs
    # the smoother knows the 5 % jump at row 2 before it happens; the filter does not
    assert smoothed[1, 1] > filtered[1, 1] + 0.05


@pytest.mark.skipif(jit_disabled(), reason="times the compiled filter")
def test_forward_filter_is_fast():
    rng = np.random.default_rng(0)
    x = rng.normal(0.0, 0.01, (10_000, 10))
    hmm_filter(x[:5], MU, VAR, A)  # compile (or load the cache)
    start = time.perf_counter()
    got = hmm_filter(x, MU, VAR, A)
    assert time.perf_counter() - start < 0.5
    assert got.shape == (10_000, 10, 2) and np.isfinite(got).all()


def test_forward_filter_rejects_bad_parameters():
    x = SIX_RETURNS[:, None]
    with pytest.raises(ValueError, match="variances must be > 0"):
        hmm_filter(x, MU, [0.0, 1.0], A)
    with pytest.raises(ValueError, match="transmat must be >= 0 with rows summing to 1"):
        hmm_filter(x, MU, VAR, [[0.5, 0.4], [0.2, 0.8]])
    with pytest.raises(ValueError, match="K >= 2"):
        hmm_filter(x, [0.0], [1.0], [[1.0]])
    with pytest.raises(ValueError, match="transmat must have shape"):
        hmm_filter(x, MU, VAR, np.eye(3))


# ---------------------------------------------------------------------------- HMM regime probabilities


@pytest.fixture(scope="module")
def market():
    pytest.importorskip("hmmlearn")
    return switching_market(500, n_assets=2, seed=3)


def test_hmm_probabilities_shape_warmup_and_determinism(market):
    prices, _ = market
    probs = hmm_regime_probabilities(prices, n_states=2, fit=200)
    assert len(probs) == 2 and all(p.shape == prices.shape and p.dtype == np.float64 for p in probs)
    for p in probs:
        assert np.isnan(p[:199]).all() and np.isfinite(p[199:]).all()
        assert ((p[199:] >= 0) & (p[199:] <= 1)).all()
    np.testing.assert_allclose(probs[0][199:] + probs[1][199:], 1.0, atol=1e-12)
    again = hmm_regime_probabilities(prices, n_states=2, fit=200)
    for p, q in zip(probs, again, strict=True):
        np.testing.assert_array_equal(p, q)


def test_hmm_columns_are_independent_models(market):
    """Column i depends on asset i only: the panel result equals the per-asset results."""
    prices, _ = market
    panel = hmm_regime_probabilities(prices, fit=200)
    alone = hmm_regime_probabilities(prices[:, 1:], fit=200)
    np.testing.assert_array_equal(panel[1][:, 1:], alone[1])


@pytest.mark.parametrize("refit", [None, 100])
@pytest.mark.parametrize("t", [199, 250, 299, 300, 420])
def test_hmm_probabilities_are_causal(market, refit, t):
    """The value at t is unchanged, bit for bit, when every price after t changes (t = 299 is a refit row)."""
    prices, _ = market
    base = hmm_regime_probabilities(prices, fit=200, refit=refit)
    moved = hmm_regime_probabilities(perturb_after(prices, t), fit=200, refit=refit)
    for p, q in zip(base, moved, strict=True):
        np.testing.assert_array_equal(p[: t + 1], q[: t + 1])
    assert any(not np.array_equal(p[t + 1 :], q[t + 1 :]) for p, q in zip(base, moved, strict=True))


def test_refit_continues_the_filter(market):
    """Before the first refit's parameters take over (row fit - 1 + refit + 1) nothing changes; afterwards it does."""
    prices, _ = market
    once = hmm_regime_probabilities(prices, fit=200)
    refitted = hmm_regime_probabilities(prices, fit=200, refit=100)
    np.testing.assert_array_equal(once[0][:300], refitted[0][:300])
    assert not np.array_equal(once[0][300:], refitted[0][300:])
    # refits every bar on a short span: still causal rows, finite, summing to one
    every = hmm_regime_probabilities(prices[:215], fit=200, refit=1)
    assert np.isfinite(every[0][199:]).all()
    np.testing.assert_array_equal(every[0][:200], once[0][:200])


def test_hmm_recovers_two_regimes_out_of_sample():
    """Fit on the first half; the filtered argmax on the held-out half matches the true regime (state 0 = calm)."""
    pytest.importorskip("hmmlearn")
    prices, regime = switching_market(2000, n_assets=2, seed=11)
    probs = hmm_regime_probabilities(prices, n_states=2, fit=1000)
    labels = regime_labels(probs)
    assert (labels[:999] == NO_REGIME).all()
    accuracy = (labels[1000:] == regime[1000:]).mean(axis=0)
    assert (accuracy > 0.9).all(), accuracy
    # refitting every 250 bars keeps the canonical order: no label swap
    refit_accuracy = (regime_labels(hmm_regime_probabilities(prices, fit=1000, refit=250))[1000:] == regime[1000:]).mean()
    assert refit_accuracy > 0.9


def test_three_states_are_ordered_by_variance():
    pytest.importorskip("hmmlearn")
    rng = np.random.default_rng(5)
    sigma = np.repeat([0.003, 0.03, 0.01, 0.003, 0.03, 0.01], 200)
    prices = 100.0 * np.exp(np.cumsum(rng.normal(0.0, sigma)))[:, None]
    labels = regime_labels(hmm_regime_probabilities(prices, n_states=3, fit=600))[600:, 0]
    for level, state in ((0.003, 0), (0.01, 1), (0.03, 2)):
        held_out = sigma[600:] == level
        assert np.mean(labels[held_out] == state) > 0.7, (level, np.bincount(labels[held_out], minlength=3))


def test_hmm_argument_errors(market):
    prices, _ = market
    with pytest.raises(ValueError, match="n_states must be >= 2"):
        hmm_regime_probabilities(prices, n_states=1)
    with pytest.raises(TypeError, match="n_states must be an int"):
        hmm_regime_probabilities(prices, n_states=2.0)
    with pytest.raises(ValueError, match="fit=501 leaves no valid row"):
        hmm_regime_probabilities(prices, fit=501)
    with pytest.raises(ValueError, match="fit must be >= 5"):
        hmm_regime_probabilities(prices, fit=4)
    with pytest.raises(ValueError, match="refit must be >= 1"):
        hmm_regime_probabilities(prices, fit=200, refit=0)
    with pytest.raises(ValueError, match="tol must be"):
        hmm_regime_probabilities(prices, fit=200, tol=0.0)
    with pytest.raises(ValueError, match="shape"):
        hmm_regime_probabilities(prices[:, 0])
    with pytest.raises(ValueError, match="must be > 0"):
        hmm_regime_probabilities(-prices)
    with pytest.warns(UserWarning, match="training returns for 2 states"):
        hmm_regime_probabilities(prices, fit=60)


def test_hmm_without_hmmlearn_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "hmmlearn", None)
    monkeypatch.setitem(sys.modules, "hmmlearn.hmm", None)
    prices, _ = switching_market(300)
    with pytest.raises(ImportError, match=r'pip install "sb3-trading\[hmm\]"'):
        hmm_regime_probabilities(prices, fit=200)


# ---------------------------------------------------------------------------- rule-based regimes

#: 12 closes of one asset, and a second asset that only rises
TABLE = np.array(
    [
        [100.0, 10.0],
        [101.0, 10.1],
        [99.0, 10.2],
        [99.5, 10.3],
        [104.0, 10.4],
        [103.0, 10.5],
        [103.2, 10.6],
        [97.0, 10.7],
        [97.5, 10.8],
        [97.6, 10.9],
        [97.4, 11.0],
        [108.0, 11.1],
    ]
)


def volatility_regime_reference(prices: np.ndarray, window: int, min_history: int, n_bins: int) -> np.ndarray:
    out = np.full(prices.shape, np.nan)
    returns = np.log(prices[1:] / prices[:-1])
    vol = np.full(prices.shape, np.nan)
    for t in range(window, prices.shape[0]):
        vol[t] = np.std(returns[t - window : t], axis=0, ddof=1)
    for t in range(window + min_history - 1, prices.shape[0]):
        history = vol[window : t + 1]
        cuts = np.quantile(history, np.arange(1, n_bins) / n_bins, axis=0)
        out[t] = (vol[t] > cuts).sum(axis=0)
    return out


def test_volatility_regime_hand_values():
    got = volatility_regime(TABLE, window=2, min_history=3)
    # asset 0's 2-return vols from row 2: .0212 .0177 .0277 .0381 .0082 .0452 .0474 .0029 .0022 .0745; the first
    # label is at row window + min_history - 1 = 4 (.0277 is above the 2/3 quantile .0234 of the first three)
    expected = np.array([np.nan] * 4 + [2, 2, 0, 2, 2, 0, 0, 2])
    np.testing.assert_array_equal(got[:, 0], expected)
    np.testing.assert_array_equal(got, volatility_regime_reference(TABLE, 2, 3, 3))
    np.testing.assert_array_equal(volatility_regime(TABLE, 3, 2, 4), volatility_regime_reference(TABLE, 3, 2, 4))
    default = volatility_regime(TABLE, window=3)  # min_history defaults to window: warm-up 2 * 3 - 1 rows
    assert np.isnan(default[:5]).all() and np.isfinite(default[5:]).all()


def test_volatility_regime_is_causal_and_balanced():
    prices, _ = switching_market(1500, n_assets=3, seed=2)
    labels = volatility_regime(prices, window=20)
    assert np.isnan(labels[:39]).all() and np.isfinite(labels[39:]).all()
    assert set(np.unique(labels[39:])) == {0.0, 1.0, 2.0}
    for t in (39, 400, 1000):
        moved = volatility_regime(perturb_after(prices, t), window=20)
        np.testing.assert_array_equal(labels[: t + 1], moved[: t + 1])
    flat = volatility_regime(np.full((50, 1), 7.0), window=5)
    assert (flat[9:] == 0).all()


def test_trend_regime():
    got = trend_regime(TABLE, window=3)
    move = np.log(TABLE[3:, 0] / TABLE[:-3, 0])
    np.testing.assert_array_equal(got[3:, 0], np.sign(move))
    assert np.isnan(got[:3]).all() and (got[3:, 1] == 1).all()
    banded = trend_regime(TABLE, window=3, threshold=0.03)
    np.testing.assert_array_equal(banded[3:, 0], np.where(move > 0.03, 1.0, np.where(move < -0.03, -1.0, 0.0)))
    prices, _ = switching_market(300, n_assets=2)
    moved = trend_regime(perturb_after(prices, 100), window=20)
    np.testing.assert_array_equal(trend_regime(prices, window=20)[:101], moved[:101])


def test_rule_regime_argument_errors():
    with pytest.raises(ValueError, match="window must be >= 2"):
        volatility_regime(TABLE, window=1)
    with pytest.raises(ValueError, match="leaves no valid row"):
        volatility_regime(TABLE, window=7)  # 2 * 7 - 1 = 13 warm-up rows, T = 12
    with pytest.raises(ValueError, match="n_bins must be >= 2"):
        volatility_regime(TABLE, window=2, n_bins=1)
    with pytest.raises(ValueError, match="min_history must be >= 1"):
        volatility_regime(TABLE, window=2, min_history=0)
    with pytest.raises(ValueError, match="threshold must be"):
        trend_regime(TABLE, window=2, threshold=-0.1)
    with pytest.raises(ValueError, match="window=12 leaves no valid row"):
        trend_regime(TABLE, window=12)


# ---------------------------------------------------------------------------- labels


def test_regime_labels():
    p1 = np.array([[np.nan, 0.2], [0.7, 0.5], [0.45, 0.9]])
    probs = (1.0 - p1, p1)
    np.testing.assert_array_equal(regime_labels(probs), [[NO_REGIME, 0], [1, 0], [0, 1]])  # a 0.5 tie -> state 0
    np.testing.assert_array_equal(
        regime_labels(np.stack(probs), min_probability=0.6), [[NO_REGIME, 0], [1, NO_REGIME], [NO_REGIME, 1]]
    )
    assert regime_labels(probs).dtype == np.int64
    with pytest.raises(ValueError, match="K >= 2 arrays"):
        regime_labels((p1,))
    with pytest.raises(ValueError, match="min_probability"):
        regime_labels(probs, min_probability=1.5)


# ----------------------------------------------------------------------- as indicator specs


def regime_data(n_steps: int = 400, seed: int = 0) -> MarketData:
    prices, _ = switching_market(n_steps, n_assets=2, seed=seed)
    return MarketData(prices=prices, asset_names=["A", "B"])


@pytest.mark.parametrize("spec", ["regime_prob:2,150,60", "vol_regime:20", "trend_regime:10", "tf5:vol_regime:5"])
def test_regime_specs_flow_into_features_causally(spec):
    if spec.startswith("regime_prob"):
        pytest.importorskip("hmmlearn")
    data = regime_data()
    reference = compute_features(data, (spec,), include_data_features=False)
    for t in (reference.warmup, 240, 330):
        changed = MarketData(prices=perturb_after(data.prices, t), asset_names=["A", "B"])
        perturbed = compute_features(changed, (spec,), include_data_features=False)
        np.testing.assert_array_equal(perturbed.values[: t + 1], reference.values[: t + 1], err_msg=f"{spec} at t={t}")
        assert not np.array_equal(perturbed.values[t + 1 :], reference.values[t + 1 :], equal_nan=True)


def test_regime_prob_spec_columns_warmup_and_matches_the_function():
    pytest.importorskip("hmmlearn")
    data = regime_data()
    matrix = compute_features(data, ("regime_prob:3,150",), include_data_features=False)
    assert matrix.names == tuple(f"regime_prob_{k}_3_150_0[{a}]" for k in range(3) for a in ("A", "B"))
    assert matrix.warmup == 149 == INDICATORS["regime_prob"].warmup_of(3, 150, 0)
    direct = hmm_regime_probabilities(data.prices, n_states=3, fit=150)
    np.testing.assert_array_equal(matrix.values, np.concatenate(direct, axis=1))
    table = describe().set_index("name")
    assert table.loc["regime_prob", "warmup"] == 249 and table.loc["vol_regime", "warmup"] == 119


def test_an_env_observes_regime_specs():
    pytest.importorskip("hmmlearn")
    env = MultiAssetEnv(data=regime_data(), indicators=["regime_prob:2,150", "vol_regime:20"], normalizer=None)
    obs, _ = env.reset(seed=0)
    assert env.first_t >= 149 and np.isfinite(obs["market"]).all()
    assert "regime_prob_1_2_150_0[B]" in env.feature_names
