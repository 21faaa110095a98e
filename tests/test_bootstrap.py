"""Stationary block bootstrap (Politis & Romano 1994): indices, determinism and coverage."""

import time

import numpy as np
import pytest

from sb3_trading.evaluation import return_ci, sharpe_ci, stationary_bootstrap_ci, stationary_bootstrap_indices
from sb3_trading.evaluation.bootstrap import (
    BootstrapCI,
    annual_return_statistic,
    default_mean_block,
    metric_cis,
    sharpe_statistic,
    total_return_statistic,
)


def test_indices_shape_range_and_blocks():
    n, mean_block = 200, 8.0
    idx = stationary_bootstrap_indices(n, 500, mean_block, rng=0)
    assert idx.shape == (500, n) and idx.min() >= 0 and idx.max() < n
    continues = np.diff(idx, axis=1) % n == 1  # the next bar of the same block (wrapping around)
    # a new block starts with probability 1/mean_block (a fresh draw that lands on the next bar also "continues")
    assert 1 - continues.mean() == pytest.approx((1 / mean_block) * (1 - 1 / n), abs=0.01)
    np.testing.assert_array_equal(idx, stationary_bootstrap_indices(n, 500, mean_block, rng=0))
    # every position is uniform over the series (stationarity)
    counts = np.bincount(idx[:, 100], minlength=n)
    assert counts.max() < 20
    iid = stationary_bootstrap_indices(n, 300, 1.0, rng=1)
    assert (np.diff(iid, axis=1) % n == 1).mean() == pytest.approx(1 / n, abs=0.005)
    with pytest.raises(ValueError, match="mean_block"):
        stationary_bootstrap_indices(n, 10, 0.5)


def test_ci_is_seeded_and_brackets_the_estimate():
    r = np.random.default_rng(0).normal(0.001, 0.01, 300)
    a = sharpe_ci(r, 252, n_boot=500, seed=3)
    assert a == sharpe_ci(r, 252, n_boot=500, seed=3)
    assert a != sharpe_ci(r, 252, n_boot=500, seed=4)
    assert isinstance(a, BootstrapCI) and a.low < a.estimate < a.high and a.estimate in a
    assert a.estimate == pytest.approx(np.mean(r) / np.std(r, ddof=1) * np.sqrt(252))
    assert a.mean_block == pytest.approx(300 ** (1 / 3)) and a.alpha == 0.1 and a.n_boot == 500
    wider = sharpe_ci(r, 252, n_boot=500, seed=3, alpha=0.01)
    assert wider.low < a.low and wider.high > a.high
    total = return_ci(r, "total", n_boot=500, seed=3)
    assert total.estimate == pytest.approx(np.prod(1 + r) - 1)
    annual = return_ci(r, "annual", periods_per_year=300, n_boot=500, seed=3)  # one year of bars: CAGR = total
    assert (annual.low, annual.high) == pytest.approx((total.low, total.high))
    assert set(metric_cis(r, n_boot=100)) == {"sharpe", "total_return", "annual_return"}
    assert metric_cis([0.01]) == {}


def test_statistics_are_vectorised():
    x = np.random.default_rng(1).normal(0, 0.01, (4, 50))
    np.testing.assert_allclose(sharpe_statistic(252)(x), x.mean(1) / x.std(1, ddof=1) * np.sqrt(252))
    np.testing.assert_allclose(total_return_statistic(x), np.prod(1 + x, axis=1) - 1)
    np.testing.assert_allclose(annual_return_statistic(50)(x), np.prod(1 + x, axis=1) - 1)
    assert annual_return_statistic(252)(np.array([[-1.0, 0.1]]))[0] == -1.0
    assert sharpe_statistic()(np.zeros((2, 5))).tolist() == [0.0, 0.0]


def test_bad_input():
    r = np.random.default_rng(2).normal(size=50)
    with pytest.raises(ValueError, match="reduce the last axis"):
        stationary_bootstrap_ci(r, lambda x: x, n_boot=10)
    with pytest.raises(ValueError, match="alpha"):
        sharpe_ci(r, alpha=1.0)
    with pytest.raises(ValueError, match="at least 2"):
        sharpe_ci([0.1])
    with pytest.raises(ValueError, match="n_boot"):
        sharpe_ci(r, n_boot=1)
    with pytest.raises(ValueError, match="kind"):
        return_ci(r, kind="monthly")
    assert default_mean_block(1) == 1.0 and default_mean_block(1000) == pytest.approx(10.0)


def test_sharpe_ci_covers_the_true_sharpe_at_its_nominal_rate():
    """200 seeded iid series of 250 bars: the 90 % CI must contain the true Sharpe in >= 85 % of them."""
    mu, sigma, n, trials = 0.0005, 0.01, 250, 200
    true_sharpe = mu / sigma * np.sqrt(252)
    start = time.perf_counter()
    hits = 0
    for trial in range(trials):
        r = np.random.default_rng(10_000 + trial).normal(mu, sigma, n)
        hits += true_sharpe in sharpe_ci(r, 252, n_boot=300, alpha=0.1, seed=trial)
    coverage = hits / trials
    assert 0.85 <= coverage <= 0.97, coverage
    assert time.perf_counter() - start < 30


def test_sharpe_ci_is_of_the_excess_return_sharpe():
    """``risk_free`` is annual here as in compute_metrics: the CI's estimate is compute_metrics' Sharpe."""
    from sb3_trading.evaluation import compute_metrics

    r = np.random.default_rng(5).normal(0.0004, 0.01, 400)
    cis = metric_cis(r, 252, n_boot=200, seed=1, risk_free=0.04)
    assert cis["sharpe"]["estimate"] == pytest.approx(compute_metrics(r, 252, risk_free=0.04)["sharpe"], rel=1e-12)
    assert cis["sharpe"]["estimate"] < metric_cis(r, 252, n_boot=200, seed=1)["sharpe"]["estimate"]
    ci = sharpe_ci(r, 252, n_boot=200, seed=1, risk_free=0.04)
    assert ci.low <= ci.estimate <= ci.high
    excess = r - (1.04 ** (1 / 252) - 1)
    assert sharpe_statistic(252, 0.04)(r) == pytest.approx(excess.mean() / excess.std(ddof=1) * np.sqrt(252), rel=1e-12)
