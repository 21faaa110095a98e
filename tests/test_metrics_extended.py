"""Issue 23, items 1 and 6: the extended metrics of ``compute_metrics`` and its finiteness promise.

Each new figure is checked on a small series against a hand calculation written out below and,
where quantstats or empyrical define it, against a transcription of their formula (neither
library is a dependency: quantstats' ``skew``/``kurtosis`` are pandas' ``Series.skew``/``kurt``,
called here directly; empyrical's ``alpha_beta`` and quantstats' ``information_ratio`` are
transcribed line by line in :func:`_empyrical_alpha_beta` and :func:`_quantstats_information_ratio`).
"""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sb3_trading.evaluation.metrics import (
    METRIC_CAP,
    SHARPE_CAP,
    alpha_beta,
    annual_return,
    compute_metrics,
    conditional_value_at_risk,
    correlation,
    drawdown_periods,
    drawdown_series,
    equity_curve,
    excess_kurtosis,
    information_ratio,
    max_drawdown,
    risk_free_per_period,
    rolling_sharpe,
    sharpe_ratio,
    skewness,
    sortino_ratio,
    time_under_water,
    total_return,
    tracking_error,
    value_at_risk,
)

BENCHMARK_KEYS = {"alpha", "beta", "tracking_error", "information_ratio", "correlation"}
NEW_KEYS = {
    "skewness",
    "excess_kurtosis",
    "var_1",
    "cvar_1",
    "drawdown_count",
    "mean_drawdown_duration",
    "time_under_water",
    "best_period",
    "worst_period",
}

# the small series of the benchmark tests and their hand-computed moments (P = 252, rf = 0)
R = [0.02, -0.01, 0.03, -0.02]
B = [0.01, -0.02, 0.02, 0.0]
# mean(r) = 0.005, mean(b) = 0.0025
# r - mean(r) = [0.015, -0.015, 0.025, -0.025], b - mean(b) = [0.0075, -0.0225, 0.0175, -0.0025]
# cov(r, b) (ddof 0) = (0.0001125 + 0.0003375 + 0.0004375 + 0.0000625) / 4 = 0.0002375
# var(b) (ddof 0)    = (0.00005625 + 0.00050625 + 0.00030625 + 0.00000625) / 4 = 0.00021875
# var(r) (ddof 0)    = (2 * 0.000225 + 2 * 0.000625) / 4 = 0.000425
BETA = 0.0002375 / 0.00021875  # = 38 / 35
ALPHA_BAR = 0.005 - 38 / 35 * 0.0025  # per-bar alpha = 2 / 875
# a = r - b = [0.01, 0.01, 0.01, -0.02]: mean 0.0025, squared deviations 3 * 0.0075**2 + 0.0225**2 = 0.000675,
# std(a, ddof=1) = sqrt(0.000675 / 3) = 0.015
ACTIVE_MEAN, ACTIVE_STD = 0.0025, 0.015


def _empyrical_alpha_beta(returns, factor_returns, risk_free, ann_factor):
    """empyrical 0.5.5 ``alpha_beta_aligned`` (``beta_aligned`` then ``alpha_aligned``), transcribed."""
    returns = np.asarray(returns) - risk_free  # _adjust_returns
    factor_returns = np.asarray(factor_returns) - risk_free
    # beta_aligned
    independent = np.where(np.isnan(returns), np.nan, factor_returns)
    ind_residual = independent - np.nanmean(independent)
    covariances = np.nanmean(ind_residual * returns)
    ind_residual = ind_residual**2
    beta = covariances / np.nanmean(ind_residual)
    # alpha_aligned
    alpha_series = returns - beta * factor_returns
    alpha = (np.nanmean(alpha_series) + 1) ** ann_factor - 1
    return alpha, beta


def _quantstats_information_ratio(returns, benchmark):
    """quantstats ``stats.information_ratio``, transcribed: per bar, not annualised."""
    diff_rets = pd.Series(returns) - pd.Series(benchmark)
    std = diff_rets.std()
    return diff_rets.mean() / std if std != 0 else 0


# ----------------------------------------------------------------------------- skewness and kurtosis
def test_skewness_by_hand_and_as_pandas():
    # [0, 0, 1]: mean 1/3, deviations [-1/3, -1/3, 2/3]; m2 = 2/9, m3 = 2/27, g1 = m3 / m2**1.5 = 1/sqrt(2);
    # G1 = sqrt(3 * 2) / (3 - 2) * g1 = sqrt(3)
    assert skewness([0.0, 0.0, 1.0]) == pytest.approx(math.sqrt(3.0), rel=1e-12)
    assert skewness([0.0, 0.0, -1.0]) == pytest.approx(-math.sqrt(3.0), rel=1e-12)
    rng = np.random.default_rng(0)
    r = rng.standard_t(4, 250) * 0.01
    assert skewness(r) == pytest.approx(pd.Series(r).skew(), rel=1e-10)  # quantstats' skew
    assert compute_metrics(r)["skewness"] == skewness(r)


def test_excess_kurtosis_by_hand_and_as_pandas():
    # [0, 0, 0, 1]: mean 1/4; m2 = (3/16 + 9/16) / 4 = 3/16, m4 = (3/256 + 81/256) / 4 = 21/256;
    # g2 = m4 / m2**2 - 3 = 7/3 - 3 = -2/3; G2 = 3 / (2 * 1) * (5 * (-2/3) + 6) = 4
    assert excess_kurtosis([0.0, 0.0, 0.0, 1.0]) == pytest.approx(4.0, rel=1e-12)
    assert pd.Series([0.0, 0.0, 0.0, 1.0]).kurt() == pytest.approx(4.0, rel=1e-12)
    rng = np.random.default_rng(1)
    r = rng.standard_t(5, 300) * 0.01
    assert excess_kurtosis(r) == pytest.approx(pd.Series(r).kurt(), rel=1e-10)  # quantstats' kurtosis
    assert compute_metrics(r)["excess_kurtosis"] == excess_kurtosis(r)


@pytest.mark.parametrize("returns", [[0.01], [0.01, -0.02], [0.01, 0.01, 0.01, 0.01, 0.01], [0.1] * 7, [-0.3] * 9])
def test_moments_of_short_or_flat_series_are_zero(returns):
    # pandas gives NaN for too few bars; a constant series has no shape: 0.0, not rounding noise
    assert skewness(returns) == 0.0
    assert excess_kurtosis(returns) == 0.0


# ----------------------------------------------------------------------------- tails, drawdowns, best/worst
def test_var_and_cvar_at_1_and_5_percent_by_hand():
    # r = -0.050, -0.049, ..., 0.050 (101 bars), shuffled. numpy.percentile at q: index q * 100 of the sorted bars.
    r = np.random.default_rng(2).permutation((np.arange(101) - 50) / 1000)
    m = compute_metrics(r)
    assert m["var_1"] == pytest.approx(-0.049, abs=1e-15)  # sorted[1]
    assert m["var_5"] == pytest.approx(-0.045, abs=1e-15)  # sorted[5]
    # empyrical's CVaR: mean of the int((n - 1) * q) + 1 lowest: 2 bars at 1 %, 6 bars at 5 %
    assert m["cvar_1"] == pytest.approx((-0.050 - 0.049) / 2, abs=1e-15)
    assert m["cvar_5"] == pytest.approx(np.mean([-0.050, -0.049, -0.048, -0.047, -0.046, -0.045]), abs=1e-15)
    assert m["cvar_1"] <= m["var_1"] <= m["var_5"] and m["cvar_1"] <= m["cvar_5"] <= m["var_5"]
    assert value_at_risk(r, 0.01) == m["var_1"] and conditional_value_at_risk(r, 0.01) == m["cvar_1"]


def test_drawdown_count_mean_duration_and_time_under_water_by_hand():
    # E = 1, 0.5, 1.0, 0.5, 0.75, 0.825: a drawdown from the peak at k=0 recovered at k=2 (2 bars), then one
    # from the peak at k=2 never recovered (n - 2 = 3 bars). Bars closing below the peak: k = 1, 3, 4, 5.
    r = [-0.5, 1.0, -0.5, 0.5, 0.1]
    m = compute_metrics(r)
    assert m["drawdown_count"] == 2.0
    assert m["mean_drawdown_duration"] == pytest.approx((2 + 3) / 2)
    assert m["time_under_water"] == pytest.approx(4 / 5)
    assert time_under_water(r) == m["time_under_water"]
    flat = compute_metrics([0.01, 0.02, 0.0])
    assert flat["drawdown_count"] == flat["mean_drawdown_duration"] == flat["time_under_water"] == 0.0


def test_best_and_worst_period():
    m = compute_metrics([0.02, -0.07, 0.05, 0.0])
    assert m["best_period"] == 0.05 and m["worst_period"] == -0.07


def test_new_keys_are_added_and_old_ones_kept():
    m = compute_metrics([0.01, -0.02, 0.03], 252, turnover=[1.0, 0.0, 0.5], costs=[1.0, 0.0, 0.0], weights=np.ones((3, 2)))
    old = {"n_periods", "total_return", "annual_return", "annual_volatility", "sharpe", "sortino", "max_drawdown"}
    old |= {"max_drawdown_duration", "longest_drawdown", "calmar", "var_5", "cvar_5", "hit_rate", "win_rate"}
    old |= {"mean_turnover", "annual_turnover", "total_costs", "exposure", "net_exposure"}
    assert set(m) == old | NEW_KEYS  # no benchmark: no benchmark keys
    assert (
        set(compute_metrics([0.01, -0.02, 0.03], benchmark=[0.0, 0.01, 0.0]))
        == old
        - {
            "mean_turnover",
            "annual_turnover",
            "total_costs",
            "exposure",
            "net_exposure",
        }
        | NEW_KEYS
        | BENCHMARK_KEYS
    )


# ----------------------------------------------------------------------------- against a benchmark
def test_alpha_and_beta_by_hand_and_as_empyrical():
    alpha, beta = alpha_beta(R, B, 252)
    assert beta == pytest.approx(38 / 35, rel=1e-12)
    assert alpha == pytest.approx((1 + 2 / 875) ** 252 - 1, rel=1e-10)
    emp_alpha, emp_beta = _empyrical_alpha_beta(R, B, 0.0, 252)
    assert (alpha, beta) == (pytest.approx(emp_alpha, rel=1e-12), pytest.approx(emp_beta, rel=1e-12))
    # the annual rate enters per bar, (1 + 4 %) ** (1 / 252) - 1, and moves alpha, not beta
    rf = 1.04 ** (1 / 252) - 1
    m = compute_metrics(R, 252, risk_free=0.04, benchmark=B)
    alpha_bar_rf = (0.005 - rf) - BETA * (0.0025 - rf)
    assert m["beta"] == pytest.approx(BETA, rel=1e-12)
    assert m["alpha"] == pytest.approx((1 + alpha_bar_rf) ** 252 - 1, rel=1e-10)
    assert m["alpha"] == pytest.approx(_empyrical_alpha_beta(R, B, rf, 252)[0], rel=1e-10)
    # alpha follows the data's calendar: hourly bars compound the same per-bar alpha 8,760 times
    assert alpha_beta(R, B, 8760)[0] == pytest.approx((1 + ALPHA_BAR) ** 8760 - 1, rel=1e-9)


def test_tracking_error_information_ratio_and_correlation_by_hand():
    m = compute_metrics(R, 252, benchmark=B)
    assert m["tracking_error"] == pytest.approx(ACTIVE_STD * math.sqrt(252), rel=1e-12)
    # annualised: mean(a) / std(a, ddof=1) * sqrt(P) = (0.0025 / 0.015) * sqrt(252) = sqrt(252) / 6
    assert m["information_ratio"] == pytest.approx(math.sqrt(252) / 6, rel=1e-12)
    # quantstats' number is the per-bar ratio, 1/6: ours divided by sqrt(P)
    assert m["information_ratio"] / math.sqrt(252) == pytest.approx(_quantstats_information_ratio(R, B), rel=1e-12)
    assert _quantstats_information_ratio(R, B) == pytest.approx(ACTIVE_MEAN / ACTIVE_STD, rel=1e-12)
    assert m["correlation"] == pytest.approx(0.0002375 / math.sqrt(0.000425 * 0.00021875), rel=1e-12)
    assert m["correlation"] == pytest.approx(np.corrcoef(R, B)[0, 1], rel=1e-12)
    assert tracking_error(R, B, 252) == m["tracking_error"] and information_ratio(R, B, 252) == m["information_ratio"]


def test_benchmark_edge_cases():
    r = [0.01, -0.02, 0.03]
    same = compute_metrics(r, benchmark=r)  # the strategy is its benchmark
    assert same["beta"] == pytest.approx(1.0) and same["alpha"] == pytest.approx(0.0, abs=1e-12)
    assert same["tracking_error"] == 0.0 and same["information_ratio"] == 0.0 and same["correlation"] == pytest.approx(1.0)
    cash = compute_metrics(r, benchmark=[0.0, 0.0, 0.0])  # a flat benchmark explains nothing
    assert cash["beta"] == 0.0 and cash["correlation"] == 0.0
    assert cash["alpha"] == pytest.approx((1 + np.mean(r)) ** 252 - 1, rel=1e-12)
    # a zero benchmark makes the information ratio the Sharpe ratio at rf = 0
    assert cash["information_ratio"] == pytest.approx(cash["sharpe"], rel=1e-12)
    # a steady out-performance is a flat active return with a positive mean
    assert compute_metrics([0.02, 0.0, 0.03], benchmark=[0.01, -0.01, 0.02])["information_ratio"] == SHARPE_CAP
    assert correlation(r, [-x for x in r]) == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="one return per bar"):
        compute_metrics(r, benchmark=[0.0, 0.0])
    with pytest.raises(ValueError, match="benchmark contain non-finite"):
        compute_metrics(r, benchmark=[0.0, np.nan, 0.0])


# ----------------------------------------------------------------------------- flat series rank around cash
def test_a_constant_loser_ranks_below_cash_and_a_constant_gainer_above():
    cash = compute_metrics(np.zeros(20))
    loser = compute_metrics(np.full(20, -0.001))
    gainer = compute_metrics(np.full(20, 0.001))
    noisy_loser = compute_metrics(-0.001 + 0.01 * np.random.default_rng(3).standard_normal(20))
    assert cash["sharpe"] == 0.0 and cash["sortino"] == 0.0  # exactly: cash is the zero of the ranking
    assert loser["sharpe"] == -SHARPE_CAP < 0.0 < gainer["sharpe"] == SHARPE_CAP
    assert loser["sortino"] < 0.0 and gainer["sortino"] == SHARPE_CAP  # a series that never loses tops Sortino
    assert -SHARPE_CAP < noisy_loser["sharpe"] < 0.0
    # selecting the best of these on Sharpe orders them gainer > cash > loser
    ranked = sorted({"cash": cash, "loser": loser, "gainer": gainer}.items(), key=lambda kv: kv[1]["sharpe"])
    assert [name for name, _ in ranked] == ["loser", "cash", "gainer"]
    assert sharpe_ratio([-0.05]) == -SHARPE_CAP and sharpe_ratio([0.05]) == SHARPE_CAP  # one bar is flat


def test_flat_rule_is_on_excess_returns():
    rf = risk_free_per_period(0.04, 252)
    # cash that earns the risk-free rate has a zero excess return (up to rounding): exactly 0
    earning = np.full(30, 1.04 ** (1 / 252)) ** np.arange(1, 31)
    accrued = np.diff(np.concatenate([[1.0], earning])) / np.concatenate([[1.0], earning[:-1]])
    assert compute_metrics(accrued, 252, risk_free=0.04)["sharpe"] == 0.0
    assert np.allclose(accrued, rf)
    # zero-yield cash under rf > 0 loses to the risk-free rate with certainty
    assert compute_metrics(np.zeros(30), 252, risk_free=0.04)["sharpe"] == -SHARPE_CAP


def test_ratios_slide_continuously_into_the_cap():
    base = np.array([0.001, -0.001] * 5)
    # Sharpe = 0.01 / (scale * 0.001 * sqrt(10 / 9)) * sqrt(252): 151, 1,512, 15,119, 151,186, then the cap
    sharpes = [sharpe_ratio(0.01 + scale * base) for scale in (1.0, 1e-1, 1e-2, 1e-3, 1e-6, 1e-9)]
    assert sharpes[0] == pytest.approx(0.01 / (0.001 * math.sqrt(10 / 9)) * math.sqrt(252), rel=1e-9)
    assert all(a < b for a, b in zip(sharpes[:4], sharpes[1:5], strict=True))
    assert sharpes[-2] == sharpes[-1] == SHARPE_CAP


def test_rolling_sharpe_follows_the_flat_rule():
    out = rolling_sharpe(np.array([0.0, 0.0, 0.0, -0.01, -0.01, -0.01, 0.02]), 3, 252)
    assert out[2] == 0.0 and out[5] == -SHARPE_CAP and -SHARPE_CAP < out[6] < SHARPE_CAP


# ----------------------------------------------------------------------------- never NaN, never inf
def _check_finite_and_json(m: dict[str, float]) -> None:
    assert all(isinstance(v, float) and math.isfinite(v) for v in m.values()), {k: v for k, v in m.items()}
    assert json.loads(json.dumps(m, allow_nan=False)) == m


def test_the_issue_examples_are_finite():
    with pytest.warns(RuntimeWarning, match="METRIC_CAP"):
        huge = compute_metrics([1e10] * 5)  # CAGR ~ 1e10 ** 252 - 1: beyond float64
    assert huge["annual_return"] == METRIC_CAP and huge["sharpe"] == SHARPE_CAP
    _check_finite_and_json(huge)
    with pytest.warns(RuntimeWarning, match="METRIC_CAP"):
        biggest = compute_metrics([1e308] * 2)  # the equity curve itself overflows: 1, 1e308, inf
    assert biggest["max_drawdown"] == 0.0 and biggest["drawdown_count"] == 0.0
    assert biggest["total_return"] == METRIC_CAP and biggest["var_5"] == 1e308
    _check_finite_and_json(biggest)
    _check_finite_and_json(compute_metrics([-0.9999999] * 5, benchmark=[0.01] * 5))


def test_drawdowns_survive_an_overflowing_curve():
    # after two bars of 1e200 the curve is beyond float64; the drawdown afterwards is the same as after two +100 % bars
    big, small = [1e200, 1e200, -0.5, 0.5], [1.0, 1.0, -0.5, 0.5]
    assert not np.isfinite(equity_curve(big)).all()
    np.testing.assert_allclose(drawdown_series(big), drawdown_series(small), rtol=1e-12, atol=1e-15)
    assert max_drawdown(big) == pytest.approx(0.5)
    # from log |1 + r|: the depth keeps ~13 digits of ~921-sized logs
    for got, want in zip(drawdown_periods(big), drawdown_periods(small), strict=True):
        assert got == {key: pytest.approx(value, rel=1e-12) for key, value in want.items()}
    # an overflowing product with a finite CAGR: growth 1e400 over 1,000 one-per-year bars, 10 ** 0.4 - 1
    assert annual_return([1e200, 1e200] + [0.0] * 998, periods_per_year=1) == pytest.approx(10**0.4 - 1, rel=1e-10)


def test_ordinary_drawdowns_are_unchanged_to_the_bit():
    r = 0.01 * np.random.default_rng(4).standard_normal(500)
    curve = np.concatenate([[1.0], np.cumprod(1.0 + r)])
    np.testing.assert_array_equal(drawdown_series(r), 1.0 - curve / np.maximum.accumulate(curve))


RETURN = st.one_of(
    st.floats(min_value=-1.0, max_value=1.0, exclude_min=True, allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1.0, max_value=1.7976931348623157e308, exclude_min=True, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.9999999, 1e-300, 1e10, 1e308, 1.7976931348623157e308]),
)
PPY = st.sampled_from([1.0, 12.0, 252.0, 365.0, 8760.0, 525_600.0])


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(st.tuples(RETURN, RETURN), min_size=1, max_size=25),
    ppy=PPY,
    risk_free=st.sampled_from([0.0, 0.04, 0.5]),
)
def test_every_metric_is_finite_for_returns_above_minus_one(data, ppy, risk_free):
    r, b = (np.array(column) for column in zip(*data, strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the saturated CAGR says so
        m = compute_metrics(r, ppy, turnover=np.abs(r), costs=r, weights=r[:, None], risk_free=risk_free, benchmark=b)
    _check_finite_and_json(m)
    assert -SHARPE_CAP <= m["sharpe"] <= SHARPE_CAP and -SHARPE_CAP <= m["information_ratio"] <= SHARPE_CAP
    assert 0.0 <= m["max_drawdown"] <= 1.0 and 0.0 <= m["time_under_water"] <= 1.0 and -1.0 <= m["correlation"] <= 1.0
    assert m["worst_period"] <= m["cvar_1"] <= m["var_1"] <= m["best_period"]
    assert m["cvar_5"] <= m["var_5"] <= m["best_period"]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.lists(
        st.tuples(*[st.floats(allow_nan=False, allow_infinity=False)] * 2),
        min_size=1,
        max_size=12,
    ),
    ppy=PPY,
)
def test_every_metric_is_finite_for_any_finite_returns(data, ppy):
    # returns below -1 (a levered loss beyond the capital, negative equity) and -1.8e308 included
    r, b = (np.array(column) for column in zip(*data, strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _check_finite_and_json(compute_metrics(r, ppy, benchmark=b))


def test_sortino_and_sharpe_of_huge_values_match_their_scaled_copies():
    # ratios are scale-free: the returns times 2**1000 (exact) give the same Sharpe and Sortino as the originals
    r = np.array([0.02, -0.01, 0.03, -0.02])
    scaled = r * 2.0**1000
    assert sharpe_ratio(scaled) == pytest.approx(sharpe_ratio(r), rel=1e-12)
    assert sortino_ratio(scaled) == pytest.approx(sortino_ratio(r), rel=1e-12)
    assert skewness(scaled) == pytest.approx(skewness(r), rel=1e-12)
    assert value_at_risk(scaled) == pytest.approx(value_at_risk(r) * 2.0**1000, rel=1e-12)


def test_total_return_of_a_wipe_out_after_an_overflow_is_minus_one():
    # the product overflows to inf before the -1 return: inf * 0 must read as the wipe-out it is, not NaN
    assert total_return([3.8e16, 4.7e291, -1.0]) == -1.0
    assert total_return([0.5, -1.0]) == -1.0
    assert total_return([1e300, 1e300]) == math.inf
