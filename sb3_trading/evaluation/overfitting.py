r"""Overfitting statistics: probabilistic and deflated Sharpe ratios, probability of backtest overfitting.

Three corrections for a Sharpe ratio that was *selected* (the best of many configurations, seeds or
checkpoints) or estimated from a short, non-normal track record:

* :func:`probabilistic_sharpe_ratio` (PSR) — Bailey & López de Prado (2012), "The Sharpe Ratio
  Efficient Frontier", *Journal of Risk* 15(2): the probability that the true Sharpe ratio exceeds a
  benchmark ``SR*``, given the estimate's sampling error under skewed, fat-tailed returns::

      PSR(SR*) = Phi( (SR - SR*) * sqrt(n - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR**2) )

* :func:`deflated_sharpe_ratio` (DSR) — Bailey & López de Prado (2014), "The Deflated Sharpe Ratio:
  Correcting for Selection Bias, Backtest Overfitting and Non-Normality", *Journal of Portfolio
  Management* 40(5): the PSR against the Sharpe ratio the best of ``N`` skill-less trials is expected
  to reach (:func:`expected_max_sharpe`)::

      SR0 = sqrt(V[SR_n]) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e))),  DSR = PSR(SR0)

* :func:`probability_of_backtest_overfitting` (PBO) by combinatorially symmetric cross-validation
  (CSCV) — Bailey, Borwein, López de Prado & Zhu (2017), "The Probability of Backtest Overfitting",
  *Journal of Computational Finance* 20(4): how often the configuration that is best in-sample ranks
  in the bottom half out-of-sample.

Units
-----
Every Sharpe ratio here is **per period** (per bar: ``mean / std`` of the per-bar returns), *not*
annualised: the formulas count ``n`` bars. To use an annualised ratio ``SR_a`` over ``P`` bars a year,
pass ``SR_a / sqrt(P)``; an annualised variance of Sharpe ratios ``V_a`` becomes ``V_a / P``.
Returns are excess returns (subtract the risk-free rate or benchmark first if it matters).

``skew`` is the skewness ``g3`` and ``kurtosis`` the **raw (non-excess) kurtosis** ``g4`` (3 for the
normal distribution). An excess kurtosis (``scipy.stats.kurtosis``' default, pandas' ``.kurt()``)
must be passed plus 3. Every distribution has ``g4 >= 1 + g3**2``; arguments that break this
inequality (a forgotten ``+ 3`` usually does) raise ``ValueError``.

The normal distribution comes from :class:`statistics.NormalDist` (the standard library; SciPy is
not a dependency of this package).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from sb3_trading.common.validation import check_int, check_real

#: the Euler–Mascheroni constant ``gamma`` of the expected maximum (Bailey & López de Prado 2014)
EULER_MASCHERONI = 0.5772156649015329

#: a performance metric of CSCV: returns ``(rows, N)`` -> one value per column ``(N,)``, higher is better
Metric = Callable[[np.ndarray], np.ndarray]

_NORMAL = NormalDist()


@dataclass(frozen=True)
class SharpeMoments:
    """The sample statistics the PSR needs, from one return series.

    :ivar sharpe: per-period Sharpe ratio ``mean(r) / std(r, ddof=1)``.
    :ivar n: number of returns.
    :ivar skew: sample skewness ``m3 / m2 ** 1.5``.
    :ivar kurtosis: sample raw (non-excess) kurtosis ``m4 / m2 ** 2`` (3 for normal returns).
    """

    sharpe: float
    n: int
    skew: float
    kurtosis: float


def sharpe_moments(returns: np.ndarray) -> SharpeMoments:
    """Per-period Sharpe ratio, length, skewness and raw kurtosis of a return series.

    Estimators: ``SR = mean / std`` with the sample standard deviation (``ddof=1``, as
    :func:`~sb3_trading.evaluation.metrics.sharpe_ratio` before annualising); skewness ``m3 / m2**1.5``
    and kurtosis ``m4 / m2**2`` from the biased central moments ``m_k = mean((r - mean(r)) ** k)``
    (``scipy.stats.skew`` and ``scipy.stats.kurtosis(fisher=False)`` with their default ``bias=True``).

    :param returns: ``(n,)`` per-period (excess) returns, finite, ``n >= 2``, not all equal.
    :raises ValueError: on fewer than two returns, non-finite values or a constant series (no Sharpe ratio).
    """
    r = np.asarray(returns, dtype=np.float64)
    if r.ndim != 1:
        raise ValueError(f"returns must be a 1-D series of per-period returns, got shape {r.shape}")
    if r.size < 2:
        raise ValueError(f"returns need at least 2 values for a Sharpe ratio, got {r.size}")
    if not np.isfinite(r).all():
        raise ValueError(f"returns contain non-finite values at positions {np.flatnonzero(~np.isfinite(r))[:5].tolist()}")
    centred = r - r.mean()
    m2 = float(np.mean(centred**2))
    if m2 <= 1e-30 * max(1.0, float(np.mean(r**2))):
        raise ValueError("returns are constant: the Sharpe ratio (and its PSR) is undefined; pass a series that varies")
    return SharpeMoments(
        sharpe=float(r.mean() / np.std(r, ddof=1)),
        n=int(r.size),
        skew=float(np.mean(centred**3) / m2**1.5),
        kurtosis=float(np.mean(centred**4) / m2**2),
    )


def _summary(
    returns: np.ndarray | None, sharpe: float | None, n: int | None, skew: float | None, kurtosis: float | None
) -> SharpeMoments:
    """The PSR's inputs from either the returns or the summary numbers (never both), validated."""
    if returns is not None:
        given = [
            name for name, value in (("sharpe", sharpe), ("n", n), ("skew", skew), ("kurtosis", kurtosis)) if value is not None
        ]
        if given:
            raise ValueError(
                f"pass either returns or the summary numbers (sharpe, n, skew, kurtosis), not both; got returns and {given}"
            )
        return sharpe_moments(returns)
    if sharpe is None or n is None:
        raise ValueError("pass returns, or the per-period sharpe and the number of returns n (skew and kurtosis optional)")
    moments = SharpeMoments(
        sharpe=check_real("sharpe", sharpe),  # type: ignore[arg-type]
        n=check_int("n", n, 2),  # type: ignore[arg-type]
        skew=0.0 if skew is None else check_real("skew", skew),  # type: ignore[arg-type]
        kurtosis=3.0 if kurtosis is None else check_real("kurtosis", kurtosis),  # type: ignore[arg-type]
    )
    if moments.kurtosis < 1.0 + moments.skew**2 - 1e-12:
        raise ValueError(
            f"kurtosis={moments.kurtosis!r} is below 1 + skew**2 = {1.0 + moments.skew**2:g}, impossible for any "
            "distribution; kurtosis is the raw (non-excess) kurtosis, 3 for normal returns: add 3 to an excess kurtosis"
        )
    return moments


def sharpe_ratio_std(sharpe: float, n: int, skew: float = 0.0, kurtosis: float = 3.0) -> float:
    """Standard error of a per-period Sharpe ratio estimate under non-normal IID returns.

    ``sqrt((1 - g3 SR + (g4 - 1) / 4 SR^2) / (n - 1))`` (Bailey & López de Prado 2012, the PSR's
    denominator; Mertens 2002). For normal returns (``g3 = 0, g4 = 3``) it is Lo's (2002)
    ``sqrt((1 + SR^2 / 2) / (n - 1))``.

    :param sharpe: per-period (not annualised) Sharpe ratio.
    :param n: number of returns it was estimated from, ``>= 2``.
    :param skew: skewness ``g3`` of the returns.
    :param kurtosis: raw (non-excess) kurtosis ``g4`` of the returns, ``>= 1 + skew**2``.
    :return: the standard error, per-period Sharpe units.
    """
    m = _summary(None, sharpe, n, skew, kurtosis)
    return math.sqrt(_psr_variance_factor(m) / (m.n - 1))


def _psr_variance_factor(m: SharpeMoments) -> float:
    factor = 1.0 - m.skew * m.sharpe + (m.kurtosis - 1.0) / 4.0 * m.sharpe**2
    if factor <= 0.0:  # only at g4 = 1 + g3**2 with g3 * SR = 2: a two-point distribution
        raise ValueError(
            f"the Sharpe ratio's variance 1 - skew*SR + (kurtosis-1)/4*SR^2 is {factor:g} <= 0 for sharpe={m.sharpe!r}, "
            f"skew={m.skew!r}, kurtosis={m.kurtosis!r}: the PSR is undefined for these moments"
        )
    return factor


def probabilistic_sharpe_ratio(
    returns: np.ndarray | None = None,
    *,
    sharpe: float | None = None,
    n: int | None = None,
    skew: float | None = None,
    kurtosis: float | None = None,
    benchmark_sharpe: float = 0.0,
) -> float:
    r"""Probability that the true Sharpe ratio exceeds ``benchmark_sharpe`` (PSR).

    Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier", *Journal of Risk* 15(2)::

        PSR(SR*) = Phi( (SR - SR*) * sqrt(n - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR**2) )

    with ``SR`` the estimated **per-period** Sharpe ratio, ``g3`` the skewness and ``g4`` the **raw**
    (non-excess) kurtosis of the returns, ``Phi`` the standard normal CDF.

    Pass either the returns (``SR``, ``n``, ``g3``, ``g4`` are then estimated as :func:`sharpe_moments`
    states) or the summary numbers ``sharpe`` and ``n`` (``skew`` defaults to 0 and ``kurtosis`` to 3,
    normal returns).

    :param returns: ``(n,)`` per-period excess returns.
    :param sharpe: per-period (not annualised: divide an annual ratio by ``sqrt(periods_per_year)``) Sharpe ratio.
    :param n: number of returns behind ``sharpe``, ``>= 2``.
    :param skew: skewness ``g3`` of the returns (default 0).
    :param kurtosis: raw (non-excess, normal = 3) kurtosis ``g4`` of the returns (default 3).
    :param benchmark_sharpe: the per-period benchmark ``SR*`` (default 0: "is there any skill?").
    :return: the probability, in ``[0, 1]``.
    :raises ValueError: on both or neither input forms, ``n < 2``, or moments no distribution has.
    """
    m = _summary(returns, sharpe, n, skew, kurtosis)
    benchmark = check_real("benchmark_sharpe", benchmark_sharpe)
    z = (m.sharpe - benchmark) * math.sqrt(m.n - 1) / math.sqrt(_psr_variance_factor(m))  # type: ignore[operator]
    return float(_NORMAL.cdf(z))


def expected_max_sharpe(n_trials: int, sharpe_variance: float, mean_sharpe: float = 0.0) -> float:
    r"""Expected maximum of ``n_trials`` independent Sharpe ratio estimates (the DSR's benchmark ``SR0``).

    Bailey & López de Prado (2014), "The Deflated Sharpe Ratio" (from the false strategy
    theorem of Bailey, Borwein, López de Prado & Zhu 2014)::

        SR0 = E[SR_n] + sqrt(V[SR_n]) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e)))

    ``gamma`` the Euler–Mascheroni constant, ``e`` Euler's number. ``E[SR_n] = 0`` (the default) is the
    paper's null of no skill. One trial selects nothing: ``SR0 = mean_sharpe``.

    :param n_trials: number ``N`` of independent trials (configurations) the best was chosen from, ``>= 1``.
    :param sharpe_variance: variance ``V[SR_n]`` of the trials' **per-period** Sharpe ratios, ``>= 0``
        (an annualised variance divided by ``periods_per_year``).
    :param mean_sharpe: ``E[SR_n]``, the trials' mean per-period Sharpe ratio under the null (default 0).
    :return: ``SR0``, a per-period Sharpe ratio.
    """
    n_trials = check_int("n_trials", n_trials, 1)  # type: ignore[assignment]
    sharpe_variance = check_real("sharpe_variance", sharpe_variance, 0.0)  # type: ignore[assignment]
    mean_sharpe = check_real("mean_sharpe", mean_sharpe)  # type: ignore[assignment]
    if n_trials == 1:
        return float(mean_sharpe)
    max_z = (1.0 - EULER_MASCHERONI) * _NORMAL.inv_cdf(1.0 - 1.0 / n_trials) + EULER_MASCHERONI * _NORMAL.inv_cdf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return float(mean_sharpe + math.sqrt(sharpe_variance) * max_z)


def deflated_sharpe_ratio(
    returns: np.ndarray | None = None,
    *,
    n_trials: int,
    sharpe_variance: float,
    sharpe: float | None = None,
    n: int | None = None,
    skew: float | None = None,
    kurtosis: float | None = None,
) -> float:
    r"""Probability that the selected strategy's true Sharpe ratio beats the best of ``n_trials`` lucky ones (DSR).

    Bailey & López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection Bias,
    Backtest Overfitting and Non-Normality", *Journal of Portfolio Management* 40(5)::

        DSR = PSR(SR0),   SR0 = expected_max_sharpe(n_trials, sharpe_variance)

    :func:`probabilistic_sharpe_ratio` evaluated at the expected maximum per-period Sharpe ratio of
    ``n_trials`` skill-less trials. The paper's example: annualised ``SR = 2.5`` over ``n = 1250`` daily
    returns (``sharpe = 2.5 / sqrt(250)``), skew ``-3``, kurtosis ``10``, ``N = 100`` trials whose
    annualised Sharpe ratios have variance ``1/2`` (``sharpe_variance = 0.5 / 250``): ``SR0 = 0.1132``
    per day and ``DSR = 0.9004``.

    :param returns: ``(n,)`` per-period excess returns of the selected strategy (or give ``sharpe`` and ``n``).
    :param n_trials: number of independent trials the strategy was selected from, ``>= 1`` (1: no deflation,
        the PSR against 0).
    :param sharpe_variance: variance of the trials' **per-period** Sharpe ratios, ``>= 0`` (e.g.
        ``np.var(trial_sharpes, ddof=1)``).
    :param sharpe: the selected strategy's per-period (not annualised) Sharpe ratio.
    :param n: number of returns behind ``sharpe``, ``>= 2``.
    :param skew: skewness of the selected strategy's returns (default 0).
    :param kurtosis: its raw (non-excess, normal = 3) kurtosis (default 3).
    :return: the probability, in ``[0, 1]``.
    """
    sr0 = expected_max_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(returns, sharpe=sharpe, n=n, skew=skew, kurtosis=kurtosis, benchmark_sharpe=sr0)


@dataclass(frozen=True)
class PBOResult:
    """Result of :func:`probability_of_backtest_overfitting`: one entry per CSCV combination.

    :ivar pbo: probability of backtest overfitting, the fraction of combinations whose logit is ``<= 0``.
    :ivar logits: ``(C,)`` logits ``lambda_c = ln(w_c / (1 - w_c))`` of the in-sample best's relative
        out-of-sample rank ``w_c``.
    :ivar relative_ranks: ``(C,)`` ``w_c = rank / (N + 1)`` in ``(0, 1)`` (rank 1 = worst out of sample).
    :ivar best_in_sample: ``(C,)`` column index of the strategy selected in sample.
    :ivar is_performance: ``(C,)`` its in-sample metric.
    :ivar oos_performance: ``(C,)`` its out-of-sample metric.
    :ivar n_groups: number of row groups ``S``.
    :ivar rows_used: rows of the return matrix used, ``S * (T // S)`` (the remainder at the end is dropped).
    """

    pbo: float
    logits: np.ndarray
    relative_ranks: np.ndarray
    best_in_sample: np.ndarray
    is_performance: np.ndarray
    oos_performance: np.ndarray
    n_groups: int
    rows_used: int

    @property
    def n_combinations(self) -> int:
        """``C = binomial(S, S / 2)``, the number of in-sample/out-of-sample splits."""
        return int(self.logits.size)

    @property
    def probability_of_loss(self) -> float:
        """Fraction of combinations where the selected strategy's out-of-sample metric is negative."""
        return float(np.mean(self.oos_performance < 0.0))

    def degradation(self) -> tuple[float, float]:
        """Least-squares line ``oos = slope * is + intercept`` through the selected strategies' metrics.

        A slope well below 1 (often negative) is the performance degradation of Bailey et al. (2017).

        :return: ``(slope, intercept)``; the slope is ``nan`` when the in-sample metric never varies.
        """
        x, y = self.is_performance, self.oos_performance
        dx = x - x.mean()
        ss = float(np.dot(dx, dx))
        if ss <= 0.0:
            return float("nan"), float(y.mean())
        slope = float(np.dot(dx, y - y.mean()) / ss)
        return slope, float(y.mean() - slope * x.mean())


def _sharpe_by_combination(centred: np.ndarray, shift: np.ndarray, groups: int, rows: int, masks: np.ndarray) -> np.ndarray:
    """Per-period Sharpe ``(C, N)`` of each strategy over the rows of each combination's groups.

    ``centred`` is ``(S * rows, N)`` returns minus the per-column ``shift``; sums per group combine into
    sums per combination with one matrix product, so no combination is looped over.
    """
    n_strategies = centred.shape[1]
    by_group = centred.reshape(groups, rows, n_strategies)
    s1 = masks @ by_group.sum(axis=1)  # (C, N)
    s2 = masks @ (by_group**2).sum(axis=1)
    m = masks.sum(axis=1, keepdims=True) * rows
    mean = s1 / m
    var = np.maximum(s2 - s1 * mean, 0.0) / (m - 1)
    std = np.sqrt(var)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(std > 1e-15, (mean + shift) / std, 0.0)


def probability_of_backtest_overfitting(
    returns_matrix: np.ndarray, n_groups: int = 16, metric: Metric | None = None
) -> PBOResult:
    r"""Probability of backtest overfitting by combinatorially symmetric cross-validation (CSCV).

    Bailey, Borwein, López de Prado & Zhu (2017), "The Probability of Backtest Overfitting",
    *Journal of Computational Finance* 20(4):

    1. the ``T`` rows are cut into ``S = n_groups`` contiguous groups of ``T // S`` rows (the last
       ``T mod S`` rows are dropped);
    2. for each of the ``C = binomial(S, S/2)`` ways to pick ``S/2`` groups as the in-sample set ``J``
       (its complement ``J'`` is out of sample), the strategy ``n*`` with the best in-sample metric is
       selected (the lowest column index on ties);
    3. its out-of-sample rank ``r`` among the ``N`` strategies (1 = worst; tied values share their average
       rank) gives the relative rank ``w = r / (N + 1)`` and the logit ``lambda = ln(w / (1 - w))``;
    4. ``PBO = #{lambda <= 0} / C``, the paper's ``integral_{-inf}^{0} f(lambda) d lambda``: the in-sample
       best lands in the bottom half out of sample. Tie convention: ``lambda = 0`` (the exact median rank,
       possible for an odd ``N``) counts as overfit.

    A family with one truly better strategy gives PBO near 0; a family of equally (un)skilled
    strategies gives about 0.5, and worse when selection picks noise that mean-reverts.

    :param returns_matrix: ``(T, N)`` per-period returns: row = bar, column = one of ``N >= 2`` strategies
        (configurations, seeds) over the same bars. Finite.
    :param n_groups: ``S``, even, ``>= 2``, at most ``T`` (the paper uses 16: 12,870 combinations).
    :param metric: performance of each column over a subset of rows, ``(rows, N) -> (N,)``, higher is
        better; default the per-period Sharpe ratio ``mean / std(ddof=1)`` (0 for a flat column),
        computed for all combinations at once.
    :return: a :class:`PBOResult`.
    :raises ValueError: on a matrix that is not 2-D and finite with ``N >= 2``, or a bad ``n_groups``.
    """
    r = np.asarray(returns_matrix, dtype=np.float64)
    if r.ndim != 2:
        raise ValueError(f"returns_matrix must be 2-D (T bars, N strategies), got shape {r.shape}")
    t, n_strategies = r.shape
    if n_strategies < 2:
        raise ValueError(f"returns_matrix needs at least 2 strategies (columns) to rank, got N={n_strategies}")
    if not np.isfinite(r).all():
        bad = np.argwhere(~np.isfinite(r))[:5].tolist()
        raise ValueError(f"returns_matrix contains non-finite values at (row, column) {bad}")
    groups = check_int("n_groups", n_groups, 2)
    assert groups is not None
    if groups % 2:
        raise ValueError(f"n_groups must be even (CSCV splits the groups in halves), got {groups}; use {groups + 1}")
    if groups > t:
        raise ValueError(f"n_groups={groups} is more than the T={t} rows; use n_groups <= T or more data")
    rows = t // groups
    half = groups // 2
    if metric is None and rows * half < 2:
        raise ValueError(f"T={t} rows in n_groups={groups} groups leave {rows * half} row per half, a Sharpe ratio needs 2")
    used = r[: rows * groups]
    combos = list(itertools.combinations(range(groups), half))
    masks = np.zeros((len(combos), groups))
    for c, chosen in enumerate(combos):
        masks[c, list(chosen)] = 1.0
    if metric is None:
        shift = used.mean(axis=0)
        centred = used - shift
        perf_is = _sharpe_by_combination(centred, shift, groups, rows, masks)
        perf_oos = _sharpe_by_combination(centred, shift, groups, rows, 1.0 - masks)
    else:
        perf_is = np.empty((len(combos), n_strategies))
        perf_oos = np.empty_like(perf_is)
        by_group = used.reshape(groups, rows, n_strategies)
        for c in range(len(combos)):
            inside = masks[c].astype(bool)
            perf_is[c] = _check_metric(metric(by_group[inside].reshape(-1, n_strategies)), n_strategies)
            perf_oos[c] = _check_metric(metric(by_group[~inside].reshape(-1, n_strategies)), n_strategies)
    best = np.argmax(perf_is, axis=1)
    rows_c = np.arange(len(combos))
    oos_best = perf_oos[rows_c, best]
    below = (perf_oos < oos_best[:, None]).sum(axis=1)
    equal = (perf_oos == oos_best[:, None]).sum(axis=1)  # includes the selected strategy itself
    rank = below + (equal + 1) / 2.0
    w = rank / (n_strategies + 1)
    logits = np.log(w / (1.0 - w))
    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        relative_ranks=w,
        best_in_sample=best.astype(np.int64),
        is_performance=perf_is[rows_c, best],
        oos_performance=oos_best,
        n_groups=groups,
        rows_used=rows * groups,
    )


def _check_metric(values: object, n_strategies: int) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).reshape(-1)
    if out.size != n_strategies or not np.isfinite(out).all():
        raise ValueError(
            f"metric must return {n_strategies} finite values (one per strategy column), got {np.asarray(values)!r}"
        )
    return out
