"""Probabilistic / deflated Sharpe ratios and the probability of backtest overfitting (CSCV)."""

import itertools
import math

import numpy as np
import pytest

from sb3_trading.evaluation import (
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe_moments,
    sharpe_ratio_std,
)
from sb3_trading.evaluation.overfitting import EULER_MASCHERONI

# --- an independent standard normal (math.erf and bisection; the module uses statistics.NormalDist) ---


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def _phi_inv(p: float) -> float:
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if _phi(mid) < p else (lo, mid)
    return 0.5 * (lo + hi)


def _psr_by_hand(sr: float, n: int, g3: float, g4: float, sr_star: float) -> float:
    return _phi((sr - sr_star) * math.sqrt(n - 1) / math.sqrt(1 - g3 * sr + (g4 - 1) / 4 * sr**2))


# --- the deflated Sharpe ratio: Bailey & López de Prado (2014), the numerical example ---

#: the example's inputs: annualised SR 2.5 over 5 years of daily returns (T = 1250, 250 days a year),
#: skewness -3, kurtosis 10, N = 100 trials whose annualised Sharpe ratios have variance 1/2
PAPER = {"sr_annual": 2.5, "days": 250, "n": 1250, "skew": -3.0, "kurtosis": 10.0, "n_trials": 100, "var_annual": 0.5}


def test_deflated_sharpe_paper_example():
    days = PAPER["days"]
    sharpe = PAPER["sr_annual"] / math.sqrt(days)  # per day, 0.1581
    variance = PAPER["var_annual"] / days  # of the per-day Sharpe ratios
    sr0 = expected_max_sharpe(PAPER["n_trials"], variance)
    # the published numbers: SR0 = 0.1132 (per day) and DSR = 0.9004
    assert round(sr0, 4) == 0.1132
    dsr = deflated_sharpe_ratio(
        n_trials=PAPER["n_trials"],
        sharpe_variance=variance,
        sharpe=sharpe,
        n=PAPER["n"],
        skew=PAPER["skew"],
        kurtosis=PAPER["kurtosis"],
    )
    assert round(dsr, 4) == 0.9004
    # and the same numbers from the formulas written out here, independently of the module
    n_trials = PAPER["n_trials"]
    sr0_hand = math.sqrt(variance) * (
        (1 - EULER_MASCHERONI) * _phi_inv(1 - 1 / n_trials) + EULER_MASCHERONI * _phi_inv(1 - 1 / (n_trials * math.e))
    )
    assert sr0 == pytest.approx(sr0_hand, rel=1e-9)
    assert dsr == pytest.approx(_psr_by_hand(sharpe, PAPER["n"], PAPER["skew"], PAPER["kurtosis"], sr0_hand), abs=1e-9)
    # DSR is the PSR at SR0
    assert dsr == pytest.approx(
        probabilistic_sharpe_ratio(sharpe=sharpe, n=PAPER["n"], skew=-3.0, kurtosis=10.0, benchmark_sharpe=sr0), abs=1e-15
    )


def test_one_trial_is_no_deflation():
    assert expected_max_sharpe(1, 0.3) == 0.0
    assert deflated_sharpe_ratio(n_trials=1, sharpe_variance=0.3, sharpe=0.1, n=500) == probabilistic_sharpe_ratio(
        sharpe=0.1, n=500
    )


def test_expected_max_sharpe_shape_and_monte_carlo():
    values = [expected_max_sharpe(n, 1.0) for n in (2, 10, 100, 1000)]
    assert all(a < b for a, b in itertools.pairwise(values))
    assert expected_max_sharpe(100, 4.0) == pytest.approx(2 * expected_max_sharpe(100, 1.0))
    assert expected_max_sharpe(100, 1.0, mean_sharpe=0.5) == pytest.approx(0.5 + expected_max_sharpe(100, 1.0))
    assert expected_max_sharpe(100, 0.0) == 0.0
    # the approximation is close to the simulated mean maximum of N standard normals
    draws = np.random.default_rng(0).standard_normal((20_000, 100)).max(axis=1).mean()
    assert expected_max_sharpe(100, 1.0) == pytest.approx(draws, abs=0.05)


# --- the probabilistic Sharpe ratio ---


def test_psr_by_hand_and_limits():
    assert probabilistic_sharpe_ratio(sharpe=0.1, n=252, skew=-1.0, kurtosis=6.0) == pytest.approx(
        _psr_by_hand(0.1, 252, -1.0, 6.0, 0.0), abs=1e-12
    )
    # normal returns: the denominator is Lo's (2002) 1 + SR^2 / 2
    assert probabilistic_sharpe_ratio(sharpe=0.08, n=1000) == pytest.approx(
        _phi(0.08 * math.sqrt(999) / math.sqrt(1 + 0.08**2 / 2)), abs=1e-12
    )
    assert sharpe_ratio_std(0.08, 1000) == pytest.approx(math.sqrt((1 + 0.08**2 / 2) / 999))
    # the observed ratio equal to the benchmark: a coin flip, whatever the moments
    assert probabilistic_sharpe_ratio(sharpe=0.05, n=100, skew=-2, kurtosis=9, benchmark_sharpe=0.05) == 0.5
    # more data, more confidence; negative skew and fat tails, less
    assert probabilistic_sharpe_ratio(sharpe=0.05, n=2000) > probabilistic_sharpe_ratio(sharpe=0.05, n=200)
    assert probabilistic_sharpe_ratio(sharpe=0.05, n=500, skew=-2.0, kurtosis=12.0) < probabilistic_sharpe_ratio(
        sharpe=0.05, n=500
    )
    # a benchmark above the estimate: below one half
    assert probabilistic_sharpe_ratio(sharpe=0.05, n=500, benchmark_sharpe=0.1) < 0.5


def test_psr_from_returns_uses_the_stated_estimators():
    r = np.random.default_rng(1).standard_t(5, size=800) * 0.01 + 0.001
    m = sharpe_moments(r)
    c = r - r.mean()
    assert m.n == 800
    assert m.sharpe == pytest.approx(r.mean() / r.std(ddof=1))
    assert m.skew == pytest.approx(np.mean(c**3) / np.mean(c**2) ** 1.5)
    assert m.kurtosis == pytest.approx(np.mean(c**4) / np.mean(c**2) ** 2)
    assert probabilistic_sharpe_ratio(r, benchmark_sharpe=0.02) == pytest.approx(
        _psr_by_hand(m.sharpe, m.n, m.skew, m.kurtosis, 0.02), abs=1e-12
    )
    assert deflated_sharpe_ratio(r, n_trials=20, sharpe_variance=1e-3) == pytest.approx(
        deflated_sharpe_ratio(n_trials=20, sharpe_variance=1e-3, sharpe=m.sharpe, n=m.n, skew=m.skew, kurtosis=m.kurtosis)
    )
    stats = pytest.importorskip("scipy.stats")  # optional cross-check; SciPy is no dependency
    assert m.skew == pytest.approx(stats.skew(r))
    assert m.kurtosis == pytest.approx(stats.kurtosis(r, fisher=False))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "pass returns"),
        ({"sharpe": 0.1}, "pass returns"),
        ({"returns": np.ones(3) * [1, 2, 3], "sharpe": 0.1}, "not both"),
        ({"returns": np.ones(3) * [1, 2, 3], "kurtosis": 3.0}, "not both"),
        ({"returns": np.array([0.1])}, "at least 2"),
        ({"returns": np.array([0.1, 0.1, 0.1])}, "constant"),
        ({"returns": np.array([0.1, np.nan])}, "non-finite"),
        ({"returns": np.zeros((3, 2))}, "1-D"),
        ({"sharpe": 0.1, "n": 1}, "n must"),
        ({"sharpe": 0.1, "n": 10.0}, "n must"),
        ({"sharpe": float("nan"), "n": 10}, "sharpe must"),
        ({"sharpe": 0.1, "n": 10, "kurtosis": 0.0}, "add 3 to an excess kurtosis"),
        ({"sharpe": 0.1, "n": 10, "skew": 2.0, "kurtosis": 4.0}, "below 1 \\+ skew"),
        ({"sharpe": 0.1, "n": 10, "benchmark_sharpe": "0"}, "benchmark_sharpe must"),
    ],
)
def test_psr_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        probabilistic_sharpe_ratio(**kwargs)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_trials": 0, "sharpe_variance": 0.1}, "n_trials must"),
        ({"n_trials": 2.5, "sharpe_variance": 0.1}, "n_trials must"),
        ({"n_trials": True, "sharpe_variance": 0.1}, "n_trials must"),
        ({"n_trials": 10, "sharpe_variance": -0.1}, "sharpe_variance must"),
        ({"n_trials": 10, "sharpe_variance": float("inf")}, "sharpe_variance must"),
    ],
)
def test_dsr_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        deflated_sharpe_ratio(sharpe=0.1, n=100, **kwargs)
    with pytest.raises(ValueError, match=match):
        expected_max_sharpe(**kwargs)


# --- the probability of backtest overfitting (CSCV) ---


def _sharpe_columns(x: np.ndarray) -> np.ndarray:
    std = x.std(axis=0, ddof=1)
    return np.where(std > 1e-15, x.mean(axis=0) / np.where(std > 0, std, 1.0), 0.0)


def _pbo_by_hand(r: np.ndarray, s: int):
    """CSCV written out combination by combination (Bailey et al. 2017)."""
    rows = r.shape[0] // s
    groups = [r[g * rows : (g + 1) * rows] for g in range(s)]
    n = r.shape[1]
    logits, best = [], []
    for chosen in itertools.combinations(range(s), s // 2):
        train = np.concatenate([groups[g] for g in chosen])
        test = np.concatenate([groups[g] for g in range(s) if g not in chosen])
        star = int(np.argmax(_sharpe_columns(train)))
        oos = _sharpe_columns(test)
        rank = 1 + np.sum(oos < oos[star])  # no ties in continuous data
        w = rank / (n + 1)
        logits.append(math.log(w / (1 - w)))
        best.append(star)
    logits = np.array(logits)
    return float(np.mean(logits <= 0)), logits, np.array(best)


def test_pbo_matches_cscv_written_out():
    r = np.random.default_rng(3).normal(0.0, 0.01, size=(123, 7))  # 123 = 6 * 20 + 3 dropped rows
    res = probability_of_backtest_overfitting(r, n_groups=6)
    pbo, logits, best = _pbo_by_hand(r, 6)
    assert res.n_combinations == math.comb(6, 3) == 20
    assert res.rows_used == 120
    np.testing.assert_allclose(res.logits, logits, rtol=1e-12)
    np.testing.assert_array_equal(res.best_in_sample, best)
    assert res.pbo == pbo
    # the vectorised default equals the same metric passed as a callable, and dropped rows do not matter
    custom = probability_of_backtest_overfitting(r, n_groups=6, metric=_sharpe_columns)
    np.testing.assert_allclose(custom.logits, res.logits, rtol=1e-12)
    np.testing.assert_allclose(custom.is_performance, res.is_performance, rtol=1e-9)
    np.testing.assert_allclose(custom.oos_performance, res.oos_performance, rtol=1e-9)
    np.testing.assert_allclose(probability_of_backtest_overfitting(r[:120], n_groups=6).logits, res.logits)
    slope, intercept = res.degradation()
    np.testing.assert_allclose([slope, intercept], np.polyfit(res.is_performance, res.oos_performance, 1))
    assert res.probability_of_loss == np.mean(res.oos_performance < 0)


def test_pbo_dominant_strategy_is_not_overfit():
    rng = np.random.default_rng(0)
    r = rng.normal(0.0, 0.01, size=(2000, 10))
    r[:, 0] += 0.002
    res = probability_of_backtest_overfitting(r)
    assert res.n_combinations == math.comb(16, 8)
    assert res.pbo < 0.1
    assert np.mean(res.best_in_sample == 0) > 0.9


def test_pbo_of_pure_noise_is_about_one_half():
    # seeds 0..4 give 0.31, 0.35, 0.55, 0.67, 0.40 (mean 0.46); over 30 seeds every 5-seed mean lies in [0.41, 0.64]
    pbos = [
        probability_of_backtest_overfitting(np.random.default_rng(seed).normal(0.0, 0.01, size=(1000, 20))).pbo
        for seed in range(5)
    ]
    assert 0.3 <= float(np.mean(pbos)) <= 0.8
    assert min(pbos) > 0.1


def test_pbo_tie_convention():
    # identical strategies: every out-of-sample rank ties at the median, lambda = 0, counted as overfit
    r = np.tile(np.random.default_rng(0).normal(size=(40, 1)), (1, 3))
    res = probability_of_backtest_overfitting(r, n_groups=4)
    np.testing.assert_array_equal(res.relative_ranks, 0.5)
    np.testing.assert_array_equal(res.logits, 0.0)
    assert res.pbo == 1.0
    np.testing.assert_array_equal(res.best_in_sample, 0)  # in-sample ties: the lowest column


@pytest.mark.parametrize(
    "matrix, kwargs, match",
    [
        (np.zeros(10), {}, "2-D"),
        (np.zeros((40, 1)), {}, "at least 2 strategies"),
        (np.full((40, 2), np.nan), {}, "non-finite"),
        (np.zeros((40, 2)), {"n_groups": 5}, "even"),
        (np.zeros((40, 2)), {"n_groups": 0}, "n_groups must"),
        (np.zeros((40, 2)), {"n_groups": 4.0}, "n_groups must"),
        (np.zeros((10, 2)), {"n_groups": 12}, "more than the T=10 rows"),
        (np.zeros((3, 2)), {"n_groups": 2}, "needs 2"),
        (np.ones((40, 2)), {"n_groups": 2, "metric": lambda x: x.mean()}, "2 finite values"),
    ],
)
def test_pbo_validates(matrix, kwargs, match):
    with pytest.raises(ValueError, match=match):
        probability_of_backtest_overfitting(matrix, **kwargs)
