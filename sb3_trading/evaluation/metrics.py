r"""Performance metrics of a per-period simple return series.

Definitions follow empyrical / quantstats (sample standard deviation,
``ddof=1``; ``P`` = periods (bars) per year, ``n`` = number of returns
``r_1 .. r_n``, equity curve ``E_0 = 1, E_k = prod_{j<=k} (1 + r_j)``).

The calendar and the risk-free rate
-----------------------------------
``P`` comes from the data: :attr:`MarketData.periods_per_year
<sb3_trading.data.MarketData>`, inferred from its timestamps by
:func:`sb3_trading.data.calendar.infer_calendar` (252 exchange days, 365 for
daily 7-day data, 8,760 for hourly 24/7 bars, ...); :func:`infer_periods_per_year`
and :data:`TRADING_DAYS` are re-exported from there. The backtester and
everything above it read it off the env's data, so nobody passes it by hand.

``risk_free`` of :func:`compute_metrics` (and of the backtester, reports and the
CLI's ``--risk-free``) is an **annual** effective rate as a fraction (``0.04`` =
4 %/year), default 0. It becomes the rate of one bar of the calendar,
compounding (:func:`~sb3_trading.data.calendar.per_bar_rate`)::

    rf = (1 + risk_free) ** (1 / P) - 1

and Sharpe, Sortino and alpha are computed on the excess returns ``r - rf``. The
low-level :func:`sharpe_ratio`, :func:`sortino_ratio` and :func:`alpha_beta` keep
empyrical's signature: their ``risk_free`` is that **per-period** ``rf`` already.

===========================  ==========================================================================
key                          definition (unit)
===========================  ==========================================================================
``total_return``             ``E_n - 1`` (fraction)
``annual_return``            CAGR ``E_n ** (P / n) - 1``; ``-1`` once equity is ``<= 0`` (fraction/year)
``annual_volatility``        ``std(r, ddof=1) * sqrt(P)`` (fraction/sqrt(year))
``sharpe``                   ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(P)`` (``rf`` per bar, above), in
                             ``[-SHARPE_CAP, SHARPE_CAP]``; zero dispersion: see "Flat series" below
``sortino``                  ``mean(r - rf) / DD * sqrt(P)`` with the downside deviation
                             ``DD = sqrt(mean(min(r - rf, 0) ** 2))`` over *all* bars (empyrical); same cap
                             and zero-dispersion rule with ``DD`` in place of the standard deviation
``skewness``                 bias-adjusted sample skewness ``G1 = sqrt(n (n - 1)) / (n - 2) * m3 / m2 ** 1.5``,
                             ``m_k = mean((r - mean(r)) ** k)`` (pandas' ``Series.skew``, which quantstats'
                             ``skew`` calls); ``0`` for ``n < 3`` or a flat series
``excess_kurtosis``          bias-adjusted excess kurtosis ``G2 = (n - 1) / ((n - 2) (n - 3)) *
                             ((n + 1) (m4 / m2 ** 2 - 3) + 6)`` (pandas' ``Series.kurt``, quantstats'
                             ``kurtosis``); ``0`` (the normal's) for ``n < 4`` or a flat series
``max_drawdown``             ``max_k (1 - E_k / max_{j<=k} E_j)``, a positive fraction (``<= 1`` while ``E > 0``)
``max_drawdown_duration``    bars from the peak before the deepest trough to the first bar that regains
                             that peak (``E_k >= peak``), or to the last bar ``n`` when it never recovers
``longest_drawdown``         the longest such peak-to-recovery (or peak-to-end) span of any drawdown, bars
``drawdown_count``           number of drawdowns (maximal runs of bars below the running peak), recovered
                             or not (the rows of :func:`drawdown_periods`, as quantstats' drawdown details)
``mean_drawdown_duration``   mean ``duration`` (peak to recovery or to ``n``) of those drawdowns, bars; ``0``
                             without one
``time_under_water``         fraction of the ``n`` bars that close below the running peak:
                             ``#{k in 1..n : E_k < max_{j<=k} E_j} / n``, in ``[0, 1]``
``calmar``                   ``annual_return / max_drawdown``
``var_1``, ``var_5``         historical value at risk: the 1st / 5th percentile of ``r`` (``numpy.percentile``,
                             linear interpolation, as empyrical's ``value_at_risk``); a return, usually < 0
``cvar_1``, ``cvar_5``       expected shortfall: the mean of the ``floor((n - 1) * q) + 1`` worst returns,
                             ``q = 0.01, 0.05`` (empyrical's ``conditional_value_at_risk``); ``cvar <= var``
``best_period``              ``max(r)``, the best single bar (quantstats' ``best`` without aggregation)
``worst_period``             ``min(r)``, the worst single bar (quantstats' ``worst``)
``hit_rate``                 fraction of *all* bars with ``r > 0`` (a flat bar is not a hit)
``win_rate``                 quantstats' win rate: bars with ``r > 0`` over bars with ``r != 0``
``mean_turnover``            mean traded notional / equity per bar (when ``turnover`` is given)
``annual_turnover``          ``mean_turnover * P`` (times the equity traded per year)
``total_costs``              sum of the costs paid, account currency (when ``costs`` is given)
``total_financing``          sum of the net financing (interest, borrow fees; + received), account currency
                             (when ``financing`` is given)
``exposure``                 mean gross exposure ``mean_t sum_i |w_t,i|`` (when ``weights`` are given)
``net_exposure``             mean net exposure ``mean_t sum_i w_t,i``
===========================  ==========================================================================

Against a benchmark
-------------------
Given ``benchmark`` (``(n,)`` simple returns ``b`` on the same bars, e.g. buy-and-hold of the same slice),
:func:`compute_metrics` adds these keys (absent without a benchmark); ``x = r - rf``, ``y = b - rf``,
``a = r - b`` (the active return; ``rf`` cancels):

===========================  ==========================================================================
``beta``                     OLS slope ``cov(x, y) / var(y)`` (the ``ddof`` cancels; empyrical's ``beta``,
                             which uses ``ddof=0`` in both); ``0`` when the benchmark is flat
``alpha``                    annualised Jensen alpha ``(1 + mean(x - beta * y)) ** P - 1`` (empyrical's
                             ``alpha``, compounding the per-bar alpha over the data's calendar); ``-1`` when
                             the per-bar alpha is ``<= -1`` (fraction/year)
``tracking_error``           ``std(a, ddof=1) * sqrt(P)`` (fraction/sqrt(year)), the annualised ex-post tracking
                             error (the denominator of quantstats' ``information_ratio``, annualised)
``information_ratio``        ``mean(a) / std(a, ddof=1) * sqrt(P)`` = annualised active return ``mean(a) * P``
                             over ``tracking_error``; **annualised** like ``sharpe`` (with a zero benchmark it
                             *is* the Sharpe ratio at ``rf = 0``). quantstats' ``information_ratio`` is the
                             per-bar ``mean(a) / std(a, ddof=1)``: divide by ``sqrt(P)`` to compare. Same cap and
                             zero-dispersion rule as ``sharpe``
``correlation``              Pearson correlation of ``r`` and ``b``, in ``[-1, 1]``; ``0`` when either is flat
===========================  ==========================================================================

Drawdowns
---------
A drawdown's duration counts bars on the compounded curve, whose index ``k``
runs from ``0`` (the start) to ``n``: a peak at ``k = p`` recovered at ``k = q``
lasts ``q - p`` bars (so a one-bar dip that recovers on the next bar lasts 2);
an unrecovered one lasts ``n - p``. A bar is below its peak when
``E_k < peak * (1 - 1e-12)``, so float rounding of an exact recovery is not a drawdown.
(``time_under_water`` counts the bars strictly below: ``q - p - 1`` of a recovered drawdown.)
The curve is compounded in ``float64``; where it overflows, the ratios ``E_k / max_{j<=k} E_j``
are computed from ``log |1 + r|`` instead, so a huge return does not turn drawdowns into NaN.

Flat series: how Sharpe ranks a steady loser below cash
-------------------------------------------------------
A series is *flat* when its dispersion (the standard deviation for Sharpe and the information
ratio, ``DD`` for Sortino) is at most ``max(ZERO_TOL, FLAT_RTOL * max|x|)``: zero up to float
rounding. The ratio ``mean / dispersion`` of a flat series is the limit of the ratio as the
dispersion shrinks to zero, capped:

* mean excess ``|mean(x)| <= ZERO_TOL`` (cash at ``rf = 0``, all-zero returns): ``0.0``, exactly;
* otherwise ``sign(mean(x)) * SHARPE_CAP``: a constant loss ranks **below** cash, a constant gain
  above every ordinary strategy. (A single bar counts as flat: its sample deviation is undefined.)

Every other ratio is clipped to ``[-SHARPE_CAP, SHARPE_CAP]`` too, so the rule is continuous:
a series whose noise shrinks towards zero slides into the cap from below. Zero-yield cash under
``rf > 0`` has a constant *negative* excess return, so its Sharpe is ``-SHARPE_CAP``: it loses to
the risk-free rate with certainty.

Never NaN, never infinite
-------------------------
For any finite input every value of :func:`compute_metrics` is a finite float, and
``json.dumps(metrics, allow_nan=False)`` works. Means and deviations of huge returns (``> 2 ** 500``)
are taken on the returns scaled by a power of two, then scaled back (a quantile only where its
interpolation overflows); figures that are
unbounded in principle (total and annual return, volatility, Calmar, alpha, tracking error, a
drawdown of a negative equity) saturate at ``±METRIC_CAP``, the largest finite float, where they
would overflow (``annual_return`` with a ``RuntimeWarning``; annualising a few bars of +100,000 % is
meaningless anyway); a saturated figure still sorts above every other. Figures of the returns
themselves (quantiles, best and worst bar) are never altered. Drawdowns of a curve that overflows
are exact to about ``1e-13`` (relative), the precision of ``log |1 + r|`` summed to ~1,000.
Other edge cases: Calmar without a drawdown is ``0.0``; ``win_rate`` with no non-zero
bar is ``0.0``; a single bar's VaR and CVaR are that bar's return. An empty series, a non-finite
value, a benchmark of another length or ``periods_per_year <= 0`` raise ``ValueError``. The
single-figure functions (:func:`annual_return`, :func:`total_return`, ...) do not saturate:
:func:`annual_return` returns ``inf`` with a ``RuntimeWarning`` when the CAGR overflows.
"""

from __future__ import annotations

import math
import sys
import warnings
from collections.abc import Sequence

import numpy as np

# the calendar has one home, the data layer; TRADING_DAYS and infer_periods_per_year are re-exported here
from sb3_trading.data.calendar import TRADING_DAYS as TRADING_DAYS
from sb3_trading.data.calendar import check_annual_rate, check_periods_per_year, per_bar_rate
from sb3_trading.data.calendar import infer_periods_per_year as infer_periods_per_year

#: tail probability of ``var_5`` / ``cvar_5`` (the default of :func:`value_at_risk`)
TAIL = 0.05
#: the tails reported by :func:`compute_metrics`: ``var_1``/``cvar_1`` and ``var_5``/``cvar_5``
TAILS = (0.01, 0.05)
#: relative slack below the running peak that still counts as "at the peak" (float rounding)
PEAK_RTOL = 1e-12
#: a per-bar mean or dispersion at most this large (absolute) is zero: float noise on equity ratios
ZERO_TOL = 1e-15
#: a dispersion at most this fraction of the largest ``|x|`` is zero too (rounding of a constant series)
FLAT_RTOL = 1e-13
#: bound of the annualised Sharpe, Sortino and information ratios; a flat series with a nonzero mean
#: gets ``sign(mean) * SHARPE_CAP`` (no real strategy comes near: an annual Sharpe of 10 is extraordinary)
SHARPE_CAP = 1e6
#: a figure of :func:`compute_metrics` that would overflow ``float64`` (returns, volatility, Calmar, alpha, ...)
#: saturates at ``±METRIC_CAP``, the largest finite float: finite, and still ordered above every other value
METRIC_CAP = sys.float_info.max
#: below this ``max|x|`` no rescaling is needed: squares and sums of ``n`` such values cannot overflow
_SCALE_ABOVE = 2.0**500

ArrayLike = Sequence[float] | np.ndarray


# ----------------------------------------------------------------------------- helpers
def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 1e-15 and np.isfinite(denominator) else 0.0


def _saturate(value: float) -> float:
    """``value`` clipped to ``[-METRIC_CAP, METRIC_CAP]``: ``±inf`` from an overflow becomes ``±METRIC_CAP``."""
    return float(min(max(value, -METRIC_CAP), METRIC_CAP))


def _returns(returns: ArrayLike, name: str = "returns") -> np.ndarray:
    """Validated ``(n,)`` float64 copy: non-empty and finite."""
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if r.size == 0:
        raise ValueError(f"{name} needs at least one return, got an empty series")
    if not np.isfinite(r).all():
        raise ValueError(f"{name} contain non-finite values at positions {np.flatnonzero(~np.isfinite(r))[:5].tolist()}")
    return r


def _check_ppy(periods_per_year: float) -> float:
    return check_periods_per_year(periods_per_year)


def _scaled(x: np.ndarray) -> tuple[np.ndarray, float]:
    """``(x / s, s)`` with ``s`` a power of two such that ``max|x / s| < 2`` when ``x`` holds huge values, else ``(x, 1)``.

    Dividing by a power of two is exact (except for values that fall below the normal range, ``< 2 ** -1022``
    after scaling, too small to move a mean or deviation of values ``> 2 ** 500``), so means and deviations of
    ``x / s`` times ``s`` are the unscaled figures, without the overflow of ``sum(x)`` or ``x ** 2``.
    """
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= _SCALE_ABOVE:
        return x, 1.0
    scale = math.ldexp(1.0, math.frexp(peak)[1] - 1)  # 2 ** floor(log2(peak)) <= peak < 2 * scale
    return x / scale, scale


def _flat(dispersion: np.ndarray | float, peak: np.ndarray | float, scale: float) -> np.ndarray:
    """Whether a (scaled) dispersion is zero up to rounding: ``<= max(ZERO_TOL, FLAT_RTOL * max|x|)`` unscaled."""
    return np.asarray(dispersion) <= np.maximum(ZERO_TOL / scale, FLAT_RTOL * np.asarray(peak))


def capped_ratio(
    mean: np.ndarray | float, dispersion: np.ndarray | float, peak: np.ndarray | float, scale: float, factor: float
) -> np.ndarray:
    """``clip(mean / dispersion * factor, ±SHARPE_CAP)`` under the flat-series rule of the module docstring.

    ``mean``, ``dispersion`` and ``peak`` (``max|x|``) are of ``x / scale``; the ratio is scale-free.
    Flat: ``0.0`` if ``|mean| <= ZERO_TOL`` (unscaled), else ``sign(mean) * SHARPE_CAP``.
    """
    mean, dispersion = np.asarray(mean, dtype=np.float64), np.asarray(dispersion, dtype=np.float64)
    flat = _flat(dispersion, peak, scale)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        raw = np.clip(mean / np.where(flat, 1.0, dispersion) * factor, -SHARPE_CAP, SHARPE_CAP)
    at_flat = np.where(np.abs(mean) <= ZERO_TOL / scale, 0.0, np.sign(mean) * SHARPE_CAP)
    return np.where(flat, at_flat, raw)


def _mean(x: np.ndarray) -> float:
    """``mean(x)`` without the overflow of ``sum(x)`` (saturated only if the mean itself is beyond ``float64``)."""
    xs, scale = _scaled(x)
    with np.errstate(over="ignore"):
        return float(np.mean(xs) * scale)


def _std(x: np.ndarray) -> float:
    """``std(x, ddof=1)`` (``0`` for one value) without the overflow of ``x ** 2``; may be ``inf`` if beyond ``float64``."""
    if x.size < 2:
        return 0.0
    xs, scale = _scaled(x)
    with np.errstate(over="ignore"):
        return float(np.std(xs, ddof=1) * scale)


def risk_free_per_period(risk_free: float, periods_per_year: float) -> float:
    """The per-bar risk-free return of an **annual** ``risk_free`` on a calendar of ``periods_per_year`` bars.

    ``(1 + risk_free) ** (1 / P) - 1`` (:func:`~sb3_trading.data.calendar.per_bar_rate`); ``0.0`` for ``0``.

    :param risk_free: annual effective rate, a fraction (``0.04`` = 4 %/year).
    :param periods_per_year: ``P``.
    :raises ValueError: a rate ``<= -1`` or not finite, ``P <= 0``.
    """
    rate = check_annual_rate(risk_free, "risk_free")
    return per_bar_rate(rate, _check_ppy(periods_per_year)) if rate else 0.0


def equity_curve(returns: ArrayLike, start: float = 1.0) -> np.ndarray:
    """Compounded curve ``(n + 1,)``: ``start`` then ``start * prod_{j<=k} (1 + r_j)`` (``inf`` where it overflows)."""
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    with np.errstate(over="ignore"):
        return np.concatenate([[start], start * np.cumprod(1.0 + r)])


def _peak_ratio(returns: ArrayLike) -> np.ndarray:
    """``(n + 1,)`` ratio ``E_k / max_{j<=k} E_j`` of the compounded curve (``1`` at a peak, ``< 0`` for negative equity).

    From the curve itself while it is finite (so ordinary series are unchanged to the bit); where it overflows, from
    ``E_k = s_k * exp(L_k)``, ``s_k = prod sign(1 + r_j)``, ``L_k = sum log|1 + r_j|``, against the peak
    ``exp(max_{j<=k, s_j > 0} L_j)``. May hold ``-inf`` only for a negative equity beyond ``float64`` times its peak.
    """
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    curve = equity_curve(r)
    if np.isfinite(curve).all() or not np.isfinite(r).all():
        return curve / np.maximum.accumulate(curve)
    factor = 1.0 + r
    sign = np.concatenate([[1.0], np.cumprod(np.sign(factor))])
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        log_abs = np.concatenate([[0.0], np.cumsum(np.log(np.abs(factor)))])
        log_peak = np.maximum.accumulate(np.where(sign > 0, log_abs, -np.inf))
        ratio = np.where(sign == 0, 0.0, sign * np.exp(log_abs - log_peak))
    return ratio


def drawdown_series(returns: ArrayLike) -> np.ndarray:
    """``(n + 1,)`` drawdown ``1 - E_k / max_{j<=k} E_j`` of the compounded curve (``0`` at a peak)."""
    return 1.0 - _peak_ratio(returns)


# ----------------------------------------------------------------------------- single metrics
def total_return(returns: ArrayLike) -> float:
    """``prod(1 + r) - 1`` (fraction); ``±inf`` if the product overflows (:func:`compute_metrics` saturates it), and
    ``-1`` once a return of ``-1`` wipes the equity out, however large the equity had grown before."""
    factors = 1.0 + _returns(returns)
    with np.errstate(over="ignore", invalid="ignore"):
        growth = float(np.prod(factors))
    if math.isnan(growth) and (factors == 0.0).any():  # inf * 0: a wipe-out after an overflow
        return -1.0
    return growth - 1.0


def annual_return(returns: ArrayLike, periods_per_year: float = TRADING_DAYS) -> float:
    """CAGR ``(prod(1 + r)) ** (P / n) - 1``; ``-1.0`` once the compounded equity is ``<= 0``.

    Computed as ``expm1(P / n * log(growth))``, with ``log(growth) = sum(log1p(r))`` where the product over-
    or underflows; a CAGR beyond ``float64`` gives ``inf`` with a ``RuntimeWarning``.
    """
    r = _returns(returns)
    ppy = _check_ppy(periods_per_year)
    with np.errstate(over="ignore", under="ignore"):
        growth = float(np.prod(1.0 + r))
    if np.isfinite(growth) and growth > 0:
        log_growth = math.log(growth)
    elif (r > -1.0).all():  # positive but beyond float64: add the logs instead
        log_growth = float(np.sum(np.log1p(r)))
    else:
        return -1.0
    exponent = ppy / r.size * log_growth
    if exponent > 709.0:  # exp overflows float64
        warnings.warn(
            f"annual_return overflows: log-growth {log_growth:.6g} over {r.size} bars annualised with {ppy:g} bars/year; "
            "returning inf (annualising very short samples is meaningless)",
            RuntimeWarning,
            stacklevel=2,
        )
        return math.inf
    return math.expm1(exponent)


def annual_volatility(returns: ArrayLike, periods_per_year: float = TRADING_DAYS) -> float:
    """``std(r, ddof=1) * sqrt(P)``; ``0.0`` for a single bar."""
    r = _returns(returns)
    with np.errstate(over="ignore"):
        return _std(r) * math.sqrt(_check_ppy(periods_per_year))


def sharpe_ratio(returns: ArrayLike, periods_per_year: float = TRADING_DAYS, risk_free: float = 0.0) -> float:
    """Annualised Sharpe ratio ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(P)``, clipped to ``±SHARPE_CAP``.

    :param returns: ``(n,)`` per-period simple returns.
    :param periods_per_year: ``P``.
    :param risk_free: risk-free return **per period** (as empyrical), default 0. For an annual rate use
        ``risk_free_per_period(annual, P)`` or :func:`compute_metrics` (which takes the annual rate).
    :return: the ratio. A flat series (zero standard deviation up to rounding, or a single bar) gives ``0.0``
        when its mean excess return is zero (``<= ZERO_TOL``) and ``sign(mean) * SHARPE_CAP`` otherwise, so a
        steady loss ranks below cash (module docstring, "Flat series").
    """
    xs, scale = _scaled(_returns(returns) - risk_free)
    return _scaled_sharpe(xs, scale, math.sqrt(_check_ppy(periods_per_year)))


def _scaled_sharpe(xs: np.ndarray, scale: float, factor: float) -> float:
    """:func:`sharpe_ratio` of ``x = xs * scale`` (``xs`` from :func:`_scaled`), annualised by ``factor = sqrt(P)``."""
    std = float(np.std(xs, ddof=1)) if xs.size > 1 else 0.0
    return float(capped_ratio(float(np.mean(xs)), std, float(np.max(np.abs(xs))), scale, factor))


def downside_deviation(returns: ArrayLike, target: float = 0.0) -> float:
    """Per-period downside deviation ``sqrt(mean(min(r - target, 0) ** 2))`` over all bars (empyrical)."""
    xs, scale = _scaled(_returns(returns) - target)
    with np.errstate(over="ignore"):
        return float(np.sqrt(np.mean(np.minimum(xs, 0.0) ** 2)) * scale)


def sortino_ratio(returns: ArrayLike, periods_per_year: float = TRADING_DAYS, risk_free: float = 0.0) -> float:
    """Annualised Sortino ratio ``mean(r - rf) / downside_deviation(r, rf) * sqrt(P)``, clipped to ``±SHARPE_CAP``.

    Without a bar below the target (``DD`` zero up to rounding) the flat-series rule of :func:`sharpe_ratio`
    applies: ``0.0`` for a zero mean excess return, ``+SHARPE_CAP`` for a positive one (a series that never
    loses ranks above every series that does).

    :param returns: ``(n,)`` per-period simple returns.
    :param periods_per_year: ``P``.
    :param risk_free: risk-free return **per period** ``rf`` (as empyrical; the target of the downside), default 0.
    """
    xs, scale = _scaled(_returns(returns) - risk_free)
    downside = float(np.sqrt(np.mean(np.minimum(xs, 0.0) ** 2)))
    ann = math.sqrt(_check_ppy(periods_per_year))
    return float(capped_ratio(float(np.mean(xs)), downside, float(np.max(np.abs(xs))), scale, ann))


def _deviations(r: np.ndarray) -> np.ndarray | None:
    """``(r - mean(r)) / c`` with ``c`` a power of two and ``1 <= max|.| < 2``, or ``None`` for a flat series.

    The standardised moments ``m3 / m2 ** 1.5`` and ``m4 / m2 ** 2`` do not depend on ``c``; normalising keeps
    ``d ** 4`` clear of overflow (``r ~ 1e100``) and underflow (``r ~ 1e-100``). Flat: population standard deviation
    ``<= max(ZERO_TOL, FLAT_RTOL * max|r|)``.
    """
    xs, scale = _scaled(r)
    d = xs - np.mean(xs)
    peak = float(np.max(np.abs(d)))
    if peak == 0.0:
        return None
    c = math.ldexp(1.0, math.frexp(peak)[1] - 1)
    d = d / c
    if _flat(math.sqrt(float(np.mean(d**2))) * c, float(np.max(np.abs(xs))), scale):
        return None
    return d


def skewness(returns: ArrayLike) -> float:
    """Bias-adjusted sample skewness ``G1 = sqrt(n (n - 1)) / (n - 2) * m3 / m2 ** 1.5`` (unitless).

    ``m_k = mean((r - mean(r)) ** k)``: the adjusted Fisher-Pearson coefficient of pandas' ``Series.skew``
    (which quantstats' ``skew`` returns; ``scipy.stats.skew(r, bias=False)``). ``0.0`` for ``n < 3`` or a flat
    series (standard deviation zero up to ``FLAT_RTOL`` of ``max|r|``), where pandas gives NaN or 0.
    """
    r = _returns(returns)
    n = r.size
    d = _deviations(r) if n >= 3 else None
    if d is None:
        return 0.0
    g1 = float(np.mean(d**3)) / float(np.mean(d**2)) ** 1.5
    return math.sqrt(n * (n - 1)) / (n - 2) * g1


def excess_kurtosis(returns: ArrayLike) -> float:
    """Bias-adjusted sample excess kurtosis ``G2 = (n - 1) / ((n - 2) (n - 3)) * ((n + 1) g2 + 6)`` (unitless).

    ``g2 = m4 / m2 ** 2 - 3``, ``m_k = mean((r - mean(r)) ** k)``: pandas' ``Series.kurt`` (quantstats'
    ``kurtosis``; ``scipy.stats.kurtosis(r, bias=False)``), ``0`` for normal returns. ``0.0`` for ``n < 4`` or a
    flat series. (:mod:`~sb3_trading.evaluation.overfitting` uses the biased *raw* kurtosis ``m4 / m2 ** 2``.)
    """
    r = _returns(returns)
    n = r.size
    d = _deviations(r) if n >= 4 else None
    if d is None:
        return 0.0
    g2 = float(np.mean(d**4)) / float(np.mean(d**2)) ** 2 - 3.0
    return (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * g2 + 6.0)


def max_drawdown(returns: ArrayLike) -> float:
    """Largest peak-to-trough loss of the compounded curve, a fraction in ``[0, 1]`` (``0`` for no loss).

    Above ``1`` only when the equity turns negative (a loss beyond the whole capital).
    """
    return float(np.max(drawdown_series(returns)))


def drawdown_periods(returns: ArrayLike) -> list[dict[str, float]]:
    """Every drawdown of the compounded curve, in time order.

    Curve indices ``k`` run over ``0..n`` (``k = 0`` is the start, before the first return).

    :param returns: ``(n,)`` per-period simple returns.
    :return: one dict per drawdown: ``peak`` (index of the peak), ``trough`` (index of the lowest
        point), ``recovery`` (first index with ``E_k >= peak``, or ``-1`` if never recovered),
        ``depth`` (``1 - trough / peak``, a positive fraction) and ``duration`` (bars from the
        peak to the recovery, or to ``n`` when unrecovered).
    """
    ratio = _peak_ratio(_returns(returns))
    under = ratio < 1.0 - PEAK_RTOL
    n = ratio.size - 1
    # runs of consecutive underwater indices [a, b]
    edges = np.diff(np.concatenate([[0], under.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    periods = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        peak = a - 1  # index 0 is never underwater, so a >= 1
        trough = a + int(np.argmin(ratio[a : b + 1]))
        recovered = b < n
        periods.append(
            {
                "peak": float(peak),
                "trough": float(trough),
                "recovery": float(b + 1) if recovered else -1.0,
                "depth": float(1.0 - ratio[trough]),
                "duration": float((b + 1 if recovered else n) - peak),
            }
        )
    return periods


def max_drawdown_duration(returns: ArrayLike) -> int:
    """Duration in bars of the deepest drawdown (peak to recovery, or peak to the last bar); ``0`` without one."""
    periods = drawdown_periods(returns)
    if not periods:
        return 0
    return int(max(periods, key=lambda p: p["depth"])["duration"])


def longest_drawdown(returns: ArrayLike) -> int:
    """Longest peak-to-recovery (or peak-to-end) span of any drawdown, in bars; ``0`` without one."""
    return int(max((p["duration"] for p in drawdown_periods(returns)), default=0))


def time_under_water(returns: ArrayLike) -> float:
    """Fraction of the ``n`` bars that close below the running peak, ``#{k >= 1 : E_k < max_{j<=k} E_j} / n``.

    "Below" as in :func:`drawdown_periods` (``E_k < peak * (1 - PEAK_RTOL)``); in ``[0, 1]``.
    """
    ratio = _peak_ratio(_returns(returns))
    return float(np.count_nonzero(ratio[1:] < 1.0 - PEAK_RTOL) / (ratio.size - 1))


def calmar_ratio(returns: ArrayLike, periods_per_year: float = TRADING_DAYS) -> float:
    """``annual_return / max_drawdown``; ``0.0`` when there is no drawdown."""
    return _ratio(annual_return(returns, periods_per_year), max_drawdown(returns))


def value_at_risk(returns: ArrayLike, tail: float = TAIL) -> float:
    """Historical VaR: the ``tail`` quantile of the returns (linear interpolation); a return, usually ``< 0``.

    ``numpy.percentile(r, 100 * tail)``, as empyrical's ``value_at_risk(returns, cutoff=tail)``.
    """
    if not 0.0 < tail < 1.0:
        raise ValueError(f"tail must be in (0, 1), got {tail!r}")
    r = _returns(returns)
    with np.errstate(over="ignore", invalid="ignore"):
        var = float(np.percentile(r, 100.0 * tail))
    if not math.isfinite(var):  # the interpolation's r_(j+1) - r_(j) overflowed: interpolate scaled copies
        xs, scale = _scaled(r)
        var = float(np.percentile(xs, 100.0 * tail)) * scale
    return var


def conditional_value_at_risk(returns: ArrayLike, tail: float = TAIL) -> float:
    """Historical CVaR (expected shortfall): mean of the ``floor((n - 1) * tail) + 1`` lowest returns.

    As empyrical's ``conditional_value_at_risk``; always ``<= value_at_risk(returns, tail)``.
    """
    if not 0.0 < tail < 1.0:
        raise ValueError(f"tail must be in (0, 1), got {tail!r}")
    r = _returns(returns)
    k = int((r.size - 1) * tail)
    lowest = np.partition(r, k)[: k + 1]  # lowest[k] is the (k + 1)-th smallest return
    # the mean of k + 1 equal values can round one ulp above them: keep it within [min(r), lowest[k]]
    return min(max(_mean(lowest), float(np.min(lowest))), float(lowest[k]))


def hit_rate(returns: ArrayLike) -> float:
    """Fraction of all bars with a positive return."""
    return float(np.mean(_returns(returns) > 0))


def win_rate(returns: ArrayLike) -> float:
    """Positive bars over non-zero bars (quantstats' ``win_rate``); ``0.0`` if every bar is flat."""
    r = _returns(returns)
    active = int(np.count_nonzero(r))
    return float(np.count_nonzero(r > 0) / active) if active else 0.0


def exposure(weights: np.ndarray | Sequence[Sequence[float]]) -> tuple[float, float]:
    """Mean gross and net exposure of ``(n, N)`` position weights: ``mean_t sum_i |w|``, ``mean_t sum_i w``."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[:, None]
    if w.ndim != 2 or w.shape[0] == 0:
        raise ValueError(f"weights must have shape (n, N) with n >= 1, got {w.shape}")
    ws, scale = _scaled(w)
    with np.errstate(over="ignore"):
        return float(np.mean(np.abs(ws).sum(axis=1)) * scale), float(np.mean(ws.sum(axis=1)) * scale)


def rolling_sharpe(
    returns: ArrayLike, window: int, periods_per_year: float = TRADING_DAYS, risk_free: float = 0.0
) -> np.ndarray:
    """Trailing Sharpe ratio over ``window`` bars, ``(n,)``: entry ``k`` uses ``r[k-window+1 .. k]``.

    The first ``window - 1`` entries are NaN (not enough bars); a flat window follows the rule of
    :func:`sharpe_ratio` (``0.0`` for a zero mean excess return, else ``sign(mean) * SHARPE_CAP``).

    :param returns: ``(n,)`` per-period simple returns.
    :param window: bars per window (``>= 2``).
    :param periods_per_year: ``P``.
    :param risk_free: **annual** risk-free rate (fraction), taken off each bar as ``(1 + rf) ** (1 / P) - 1``.
    """
    r = _returns(returns) - risk_free_per_period(risk_free, periods_per_year)
    if not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"window must be an integer >= 2, got {window!r}")
    out = np.full(r.size, np.nan)
    if r.size < window:
        return out
    xs, scale = _scaled(r)
    view = np.lib.stride_tricks.sliding_window_view(xs, window)
    mean, std, peak = view.mean(axis=1), view.std(axis=1, ddof=1), np.abs(view).max(axis=1)
    out[window - 1 :] = capped_ratio(mean, std, peak, scale, math.sqrt(_check_ppy(periods_per_year)))
    return out


# ----------------------------------------------------------------------------- against a benchmark
def _benchmark(benchmark: ArrayLike, n: int) -> np.ndarray:
    b = _returns(benchmark, "benchmark")
    if b.size != n:
        raise ValueError(f"benchmark must have one return per bar of returns ({n}), got {b.size}")
    return b


def _active(returns: ArrayLike, benchmark: ArrayLike) -> tuple[np.ndarray, float]:
    """The active return ``a = r - b`` as ``(a / s, s)``, ``s`` a power of two, without the overflow of ``r - b``."""
    r = _returns(returns)
    b = _benchmark(benchmark, r.size)
    _, scale = _scaled(np.concatenate([r, b]))
    return r / scale - b / scale, scale


def alpha_beta(
    returns: ArrayLike, benchmark: ArrayLike, periods_per_year: float = TRADING_DAYS, risk_free: float = 0.0
) -> tuple[float, float]:
    """Annualised Jensen alpha and beta of ``returns`` against ``benchmark`` (empyrical's ``alpha_beta``).

    With ``x = r - rf`` and ``y = b - rf``::

        beta  = cov(x, y) / var(y)                          (OLS slope; ddof=0 in both, as empyrical)
        alpha = (1 + mean(x - beta * y)) ** P - 1           (per-bar alpha compounded over P bars)

    A flat benchmark (deviation zero up to rounding) explains nothing: ``beta = 0`` and the alpha is the mean
    excess return compounded (empyrical would divide by zero). A per-bar alpha ``<= -1`` gives ``alpha = -1``.

    :param returns: ``(n,)`` per-period simple returns ``r``.
    :param benchmark: ``(n,)`` per-period simple returns ``b`` of the benchmark on the same bars.
    :param periods_per_year: ``P``, the data's calendar.
    :param risk_free: risk-free return **per period** (as empyrical), default 0.
    :return: ``(alpha, beta)``: alpha a fraction per year (``inf`` if beyond ``float64``), beta unitless.
    """
    r = _returns(returns)
    b = _benchmark(benchmark, r.size)
    ppy = _check_ppy(periods_per_year)
    xs, sx = _scaled(r - risk_free)
    ys, sy = _scaled(b - risk_free)
    dy = ys - np.mean(ys)
    var_y = float(np.mean(dy**2))
    with np.errstate(over="ignore", invalid="ignore"):
        if _flat(math.sqrt(var_y), float(np.max(np.abs(ys))), sy):
            beta_s, beta = 0.0, 0.0
        else:
            beta_s = float(np.mean(dy * (xs - np.mean(xs)))) / var_y  # beta of x / sx on y / sy
            beta = beta_s * (sx / sy)
        # mean(x - beta * y) = sx * (mean(xs) - beta_s * mean(ys)), without forming beta * y
        alpha_bar = sx * (float(np.mean(xs)) - beta_s * float(np.mean(ys)))
    if not alpha_bar > -1.0:
        return -1.0, float(beta)
    exponent = ppy * math.log1p(alpha_bar) if math.isfinite(alpha_bar) else math.inf
    alpha = math.expm1(exponent) if exponent <= 709.0 else math.inf
    return float(alpha), float(beta)


def tracking_error(returns: ArrayLike, benchmark: ArrayLike, periods_per_year: float = TRADING_DAYS) -> float:
    """Annualised tracking error ``std(r - b, ddof=1) * sqrt(P)`` (fraction/sqrt(year)); ``0.0`` for one bar.

    :param returns: ``(n,)`` per-period simple returns ``r``.
    :param benchmark: ``(n,)`` per-period simple returns ``b`` on the same bars.
    :param periods_per_year: ``P``.
    """
    active, scale = _active(returns, benchmark)
    if active.size < 2:
        return 0.0
    with np.errstate(over="ignore"):
        return float(np.std(active, ddof=1)) * scale * math.sqrt(_check_ppy(periods_per_year))


def information_ratio(returns: ArrayLike, benchmark: ArrayLike, periods_per_year: float = TRADING_DAYS) -> float:
    """Annualised information ratio ``mean(r - b) / std(r - b, ddof=1) * sqrt(P)``, clipped to ``±SHARPE_CAP``.

    Annualised like :func:`sharpe_ratio` (it is the Sharpe ratio of the active return; ``mean(a) * P`` over
    :func:`tracking_error`), with the same flat-series rule. quantstats' ``information_ratio`` is the per-bar
    ``mean(a) / std(a, ddof=1)``: this value divided by ``sqrt(P)``.

    :param returns: ``(n,)`` per-period simple returns ``r``.
    :param benchmark: ``(n,)`` per-period simple returns ``b`` on the same bars.
    :param periods_per_year: ``P``.
    """
    active, scale = _active(returns, benchmark)
    return _scaled_sharpe(active, scale, math.sqrt(_check_ppy(periods_per_year)))


def correlation(returns: ArrayLike, benchmark: ArrayLike) -> float:
    """Pearson correlation ``cov(r, b) / (std(r) std(b))`` in ``[-1, 1]``; ``0.0`` when either series is flat."""
    xs, sx = _scaled(_returns(returns))
    ys, sy = _scaled(_benchmark(benchmark, xs.size))
    dx, dy = xs - np.mean(xs), ys - np.mean(ys)
    vx, vy = float(np.mean(dx**2)), float(np.mean(dy**2))
    if _flat(math.sqrt(vx), float(np.max(np.abs(xs))), sx) or _flat(math.sqrt(vy), float(np.max(np.abs(ys))), sy):
        return 0.0
    return float(np.clip(np.mean(dx * dy) / math.sqrt(vx * vy), -1.0, 1.0))


# ----------------------------------------------------------------------------- all at once
def compute_metrics(
    returns: ArrayLike,
    periods_per_year: float = TRADING_DAYS,
    turnover: ArrayLike | None = None,
    costs: ArrayLike | None = None,
    weights: np.ndarray | None = None,
    *,
    risk_free: float = 0.0,
    benchmark: ArrayLike | None = None,
    financing: ArrayLike | None = None,
) -> dict[str, float]:
    """Summary metrics of a simple-return series (keys and definitions in the module docstring).

    :param returns: ``(n,)`` per-period simple returns (``0.01`` = 1 %).
    :param periods_per_year: bars per year used to annualise (the data's ``MarketData.periods_per_year``;
        see :func:`~sb3_trading.data.calendar.infer_calendar`).
    :param turnover: optional ``(n,)`` per-period turnover (traded notional / equity).
    :param costs: optional ``(n,)`` per-period costs in currency (summed into ``total_costs``).
    :param weights: optional ``(n, N)`` position weights held over each period (``exposure``, ``net_exposure``).
    :param risk_free: **annual** risk-free rate as a fraction (``0.04`` = 4 %/year); Sharpe, Sortino and alpha use
        the excess returns over its per-bar rate ``(1 + risk_free) ** (1 / P) - 1``. Other metrics ignore it.
    :param benchmark: optional ``(n,)`` per-period simple returns of a benchmark on the same bars (the
        buy-and-hold of the same slice, typically); adds ``alpha``, ``beta``, ``tracking_error``,
        ``information_ratio`` and ``correlation``. Without it those keys are absent.
    :param financing: optional ``(n,)`` per-period net financing in currency (``info["financing"]``, summed into
        ``total_financing``).
    :return: a dict of floats, each finite for finite inputs (unbounded figures saturate at ``±METRIC_CAP``,
        ratios at ``±SHARPE_CAP``), so ``json.dumps(metrics, allow_nan=False)`` works.
    :raises ValueError: empty or non-finite returns or benchmark, a benchmark of another length,
        ``periods_per_year <= 0``, ``risk_free <= -1``.
    """
    r = _returns(returns)
    ppy = _check_ppy(periods_per_year)
    rf = risk_free_per_period(risk_free, ppy)
    b = None if benchmark is None else _benchmark(benchmark, r.size)
    periods = drawdown_periods(r)
    mdd = max_drawdown(r)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        cagr = annual_return(r, ppy)
    if caught:
        warnings.warn(
            f"{caught[0].message}; compute_metrics reports annual_return = METRIC_CAP = {METRIC_CAP:g}",
            RuntimeWarning,
            stacklevel=2,
        )
    cagr = _saturate(cagr)
    metrics = {
        "n_periods": float(r.size),
        "total_return": total_return(r),
        "annual_return": cagr,
        "annual_volatility": annual_volatility(r, ppy),
        "sharpe": sharpe_ratio(r, ppy, rf),
        "sortino": sortino_ratio(r, ppy, rf),
        "skewness": skewness(r),
        "excess_kurtosis": excess_kurtosis(r),
        "max_drawdown": mdd,
        "max_drawdown_duration": float(max(periods, key=lambda p: p["depth"])["duration"]) if periods else 0.0,
        "longest_drawdown": float(max((p["duration"] for p in periods), default=0.0)),
        "drawdown_count": float(len(periods)),
        "mean_drawdown_duration": float(np.mean([p["duration"] for p in periods])) if periods else 0.0,
        "time_under_water": time_under_water(r),
        "calmar": _ratio(cagr, _saturate(mdd)),
    }
    for tail in TAILS:
        metrics[f"var_{round(100 * tail)}"] = value_at_risk(r, tail)
        metrics[f"cvar_{round(100 * tail)}"] = conditional_value_at_risk(r, tail)
    metrics["best_period"] = float(np.max(r))
    metrics["worst_period"] = float(np.min(r))
    metrics["hit_rate"] = hit_rate(r)
    metrics["win_rate"] = win_rate(r)
    if b is not None:
        metrics["alpha"], metrics["beta"] = alpha_beta(r, b, ppy, rf)
        metrics["tracking_error"] = tracking_error(r, b, ppy)
        metrics["information_ratio"] = information_ratio(r, b, ppy)
        metrics["correlation"] = correlation(r, b)
    if turnover is not None:
        mean_turnover = _mean(np.asarray(turnover, dtype=np.float64).reshape(-1))
        metrics["mean_turnover"] = mean_turnover
        metrics["annual_turnover"] = _saturate(mean_turnover) * ppy
    if costs is not None:
        with np.errstate(over="ignore"):
            metrics["total_costs"] = float(np.sum(np.asarray(costs, dtype=np.float64)))
    if financing is not None:
        with np.errstate(over="ignore"):
            metrics["total_financing"] = float(np.sum(np.asarray(financing, dtype=np.float64)))
    if weights is not None and np.asarray(weights).size:
        metrics["exposure"], metrics["net_exposure"] = exposure(weights)
    return {key: _saturate(value) for key, value in metrics.items()}
