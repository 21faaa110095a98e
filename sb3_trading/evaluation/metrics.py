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

and Sharpe and Sortino are computed on the excess returns ``r - rf``. The
low-level :func:`sharpe_ratio` and :func:`sortino_ratio` keep empyrical's
signature: their ``risk_free`` is that **per-period** ``rf`` already.

===========================  ==========================================================================
key                          definition (unit)
===========================  ==========================================================================
``total_return``             ``E_n - 1`` (fraction)
``annual_return``            CAGR ``E_n ** (P / n) - 1``; ``-1`` once equity is ``<= 0`` (fraction/year)
``annual_volatility``        ``std(r, ddof=1) * sqrt(P)`` (fraction/sqrt(year))
``sharpe``                   ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(P)`` (``rf`` per bar, above)
``sortino``                  ``mean(r - rf) / DD * sqrt(P)`` with the downside deviation
                             ``DD = sqrt(mean(min(r - rf, 0) ** 2))`` over *all* bars (empyrical)
``max_drawdown``             ``max_k (1 - E_k / max_{j<=k} E_j)``, a positive fraction in ``[0, 1]``
``max_drawdown_duration``    bars from the peak before the deepest trough to the first bar that regains
                             that peak (``E_k >= peak``), or to the last bar ``n`` when it never recovers
``longest_drawdown``         the longest such peak-to-recovery (or peak-to-end) span of any drawdown, bars
``calmar``                   ``annual_return / max_drawdown``
``var_5``                    historical value at risk: the 5th percentile of ``r`` (``numpy.percentile``,
                             linear interpolation, as empyrical's ``value_at_risk``); a return, usually < 0
``cvar_5``                   expected shortfall: the mean of the ``floor((n - 1) * 0.05) + 1`` worst
                             returns (empyrical's ``conditional_value_at_risk``); ``cvar_5 <= var_5``
``hit_rate``                 fraction of *all* bars with ``r > 0`` (a flat bar is not a hit)
``win_rate``                 quantstats' win rate: bars with ``r > 0`` over bars with ``r != 0``
``mean_turnover``            mean traded notional / equity per bar (when ``turnover`` is given)
``annual_turnover``          ``mean_turnover * P`` (times the equity traded per year)
``total_costs``              sum of the costs paid, account currency (when ``costs`` is given)
``exposure``                 mean gross exposure ``mean_t sum_i |w_t,i|`` (when ``weights`` are given)
``net_exposure``             mean net exposure ``mean_t sum_i w_t,i``
===========================  ==========================================================================

A drawdown's duration counts bars on the compounded curve, whose index ``k``
runs from ``0`` (the start) to ``n``: a peak at ``k = p`` recovered at ``k = q``
lasts ``q - p`` bars (so a one-bar dip that recovers on the next bar lasts 2);
an unrecovered one lasts ``n - p``. A bar is below its peak when
``E_k < peak * (1 - 1e-12)``, so float rounding of an exact recovery is not a drawdown.

Edge cases return defined values, never NaN: a ratio whose denominator is zero
is ``0.0`` — Sharpe of a constant series (all-zero returns, a single bar, whose
volatility is ``0.0``), Sortino without a bar below the target, Calmar without a
drawdown; ``win_rate`` with no non-zero bar is ``0.0``; a single bar's VaR and CVaR
are that bar's return. An empty series, a non-finite value
or ``periods_per_year <= 0`` raise ``ValueError``. A CAGR that overflows
``float64`` (e.g. +100,000 % in one daily bar) is ``inf`` with a ``RuntimeWarning``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

# the calendar has one home, the data layer; TRADING_DAYS and infer_periods_per_year are re-exported here
from sb3_trading.data.calendar import TRADING_DAYS as TRADING_DAYS
from sb3_trading.data.calendar import check_annual_rate, check_periods_per_year, per_bar_rate
from sb3_trading.data.calendar import infer_periods_per_year as infer_periods_per_year

#: tail probability of ``var_5`` / ``cvar_5``
TAIL = 0.05
#: relative slack below the running peak that still counts as "at the peak" (float rounding)
PEAK_RTOL = 1e-12

ArrayLike = Sequence[float] | np.ndarray


# ----------------------------------------------------------------------------- helpers
def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 1e-15 and np.isfinite(denominator) else 0.0


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
    """Compounded curve ``(n + 1,)``: ``start`` then ``start * prod_{j<=k} (1 + r_j)``."""
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    return np.concatenate([[start], start * np.cumprod(1.0 + r)])


def drawdown_series(returns: ArrayLike) -> np.ndarray:
    """``(n + 1,)`` drawdown ``1 - E_k / max_{j<=k} E_j`` of the compounded curve (``0`` at a peak)."""
    curve = equity_curve(returns)
    return 1.0 - curve / np.maximum.accumulate(curve)


# ----------------------------------------------------------------------------- single metrics
def total_return(returns: ArrayLike) -> float:
    """``prod(1 + r) - 1`` (fraction)."""
    return float(np.prod(1.0 + _returns(returns))) - 1.0


def annual_return(returns: ArrayLike, periods_per_year: float = TRADING_DAYS) -> float:
    """CAGR ``(prod(1 + r)) ** (P / n) - 1``; ``-1.0`` once the compounded equity is ``<= 0``.

    Computed as ``expm1(P / n * log(growth))``; an overflow gives ``inf`` with a ``RuntimeWarning``.
    """
    r = _returns(returns)
    ppy = _check_ppy(periods_per_year)
    growth = float(np.prod(1.0 + r))
    if growth <= 0:
        return -1.0
    exponent = ppy / r.size * math.log(growth)
    if exponent > 709.0:  # exp overflows float64
        warnings.warn(
            f"annual_return overflows: growth {growth:.6g} over {r.size} bars annualised with {ppy:g} bars/year; "
            "returning inf (annualising very short samples is meaningless)",
            RuntimeWarning,
            stacklevel=2,
        )
        return math.inf
    return math.expm1(exponent)


def annual_volatility(returns: ArrayLike, periods_per_year: float = TRADING_DAYS) -> float:
    """``std(r, ddof=1) * sqrt(P)``; ``0.0`` for a single bar."""
    r = _returns(returns)
    return (float(np.std(r, ddof=1)) if r.size > 1 else 0.0) * math.sqrt(_check_ppy(periods_per_year))


def sharpe_ratio(returns: ArrayLike, periods_per_year: float = TRADING_DAYS, risk_free: float = 0.0) -> float:
    """Annualised Sharpe ratio ``mean(r - rf) / std(r - rf, ddof=1) * sqrt(P)``.

    :param returns: ``(n,)`` per-period simple returns.
    :param periods_per_year: ``P``.
    :param risk_free: risk-free return **per period** (as empyrical), default 0. For an annual rate use
        ``risk_free_per_period(annual, P)`` or :func:`compute_metrics` (which takes the annual rate).
    :return: the ratio; ``0.0`` when the standard deviation is zero (flat series, one bar).
    """
    excess = _returns(returns) - risk_free
    std = float(np.std(excess, ddof=1)) if excess.size > 1 else 0.0
    return _ratio(float(np.mean(excess)), std) * math.sqrt(_check_ppy(periods_per_year))


def downside_deviation(returns: ArrayLike, target: float = 0.0) -> float:
    """Per-period downside deviation ``sqrt(mean(min(r - target, 0) ** 2))`` over all bars (empyrical)."""
    r = _returns(returns)
    return float(np.sqrt(np.mean(np.minimum(r - target, 0.0) ** 2)))


def sortino_ratio(returns: ArrayLike, periods_per_year: float = TRADING_DAYS, risk_free: float = 0.0) -> float:
    """Annualised Sortino ratio ``mean(r - rf) / downside_deviation(r, rf) * sqrt(P)``; ``0.0`` without downside.

    :param returns: ``(n,)`` per-period simple returns.
    :param periods_per_year: ``P``.
    :param risk_free: risk-free return **per period** ``rf`` (as empyrical; the target of the downside), default 0.
    """
    r = _returns(returns)
    return _ratio(float(np.mean(r - risk_free)), downside_deviation(r, risk_free)) * math.sqrt(_check_ppy(periods_per_year))


def max_drawdown(returns: ArrayLike) -> float:
    """Largest peak-to-trough loss of the compounded curve, a fraction in ``[0, 1]`` (``0`` for no loss)."""
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
    curve = equity_curve(_returns(returns))
    peaks = np.maximum.accumulate(curve)
    under = curve < peaks * (1.0 - PEAK_RTOL)
    n = curve.size - 1
    # runs of consecutive underwater indices [a, b]
    edges = np.diff(np.concatenate([[0], under.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    periods = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        peak = a - 1  # index 0 is never underwater, so a >= 1
        trough = a + int(np.argmin(curve[a : b + 1]))
        recovered = b < n
        periods.append(
            {
                "peak": float(peak),
                "trough": float(trough),
                "recovery": float(b + 1) if recovered else -1.0,
                "depth": float(1.0 - curve[trough] / curve[peak]),
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


def calmar_ratio(returns: ArrayLike, periods_per_year: float = TRADING_DAYS) -> float:
    """``annual_return / max_drawdown``; ``0.0`` when there is no drawdown."""
    return _ratio(annual_return(returns, periods_per_year), max_drawdown(returns))


def value_at_risk(returns: ArrayLike, tail: float = TAIL) -> float:
    """Historical VaR: the ``tail`` quantile of the returns (linear interpolation); a return, usually ``< 0``."""
    if not 0.0 < tail < 1.0:
        raise ValueError(f"tail must be in (0, 1), got {tail!r}")
    return float(np.percentile(_returns(returns), 100.0 * tail))


def conditional_value_at_risk(returns: ArrayLike, tail: float = TAIL) -> float:
    """Historical CVaR (expected shortfall): mean of the ``floor((n - 1) * tail) + 1`` lowest returns.

    As empyrical's ``conditional_value_at_risk``; always ``<= value_at_risk(returns, tail)``.
    """
    if not 0.0 < tail < 1.0:
        raise ValueError(f"tail must be in (0, 1), got {tail!r}")
    r = _returns(returns)
    k = int((r.size - 1) * tail)
    return float(np.mean(np.partition(r, k)[: k + 1]))


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
    return float(np.mean(np.abs(w).sum(axis=1))), float(np.mean(w.sum(axis=1)))


def rolling_sharpe(
    returns: ArrayLike, window: int, periods_per_year: float = TRADING_DAYS, risk_free: float = 0.0
) -> np.ndarray:
    """Trailing Sharpe ratio over ``window`` bars, ``(n,)``: entry ``k`` uses ``r[k-window+1 .. k]``.

    The first ``window - 1`` entries are NaN (not enough bars); a flat window gives ``0.0``.

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
    view = np.lib.stride_tricks.sliding_window_view(r, window)
    mean, std = view.mean(axis=1), view.std(axis=1, ddof=1)
    ok = std > 1e-15
    out[window - 1 :] = np.where(ok, mean / np.where(ok, std, 1.0), 0.0) * math.sqrt(_check_ppy(periods_per_year))
    return out


# ----------------------------------------------------------------------------- all at once
def compute_metrics(
    returns: ArrayLike,
    periods_per_year: float = TRADING_DAYS,
    turnover: ArrayLike | None = None,
    costs: ArrayLike | None = None,
    weights: np.ndarray | None = None,
    *,
    risk_free: float = 0.0,
) -> dict[str, float]:
    """Summary metrics of a simple-return series (keys and definitions in the module docstring).

    :param returns: ``(n,)`` per-period simple returns (``0.01`` = 1 %).
    :param periods_per_year: bars per year used to annualise (the data's ``MarketData.periods_per_year``;
        see :func:`~sb3_trading.data.calendar.infer_calendar`).
    :param turnover: optional ``(n,)`` per-period turnover (traded notional / equity).
    :param costs: optional ``(n,)`` per-period costs in currency (summed into ``total_costs``).
    :param weights: optional ``(n, N)`` position weights held over each period (``exposure``, ``net_exposure``).
    :param risk_free: **annual** risk-free rate as a fraction (``0.04`` = 4 %/year); Sharpe and Sortino use the
        excess returns over its per-bar rate ``(1 + risk_free) ** (1 / P) - 1``. Other metrics ignore it.
    :return: a dict of finite floats (``annual_return``/``calmar`` may be ``inf`` on overflow, with a warning).
    :raises ValueError: empty or non-finite returns, ``periods_per_year <= 0``, ``risk_free <= -1``.
    """
    r = _returns(returns)
    ppy = _check_ppy(periods_per_year)
    rf = risk_free_per_period(risk_free, ppy)
    periods = drawdown_periods(r)
    mdd = max_drawdown(r)
    cagr = annual_return(r, ppy)
    metrics = {
        "n_periods": float(r.size),
        "total_return": float(np.prod(1.0 + r)) - 1.0,
        "annual_return": cagr,
        "annual_volatility": annual_volatility(r, ppy),
        "sharpe": sharpe_ratio(r, ppy, rf),
        "sortino": sortino_ratio(r, ppy, rf),
        "max_drawdown": mdd,
        "max_drawdown_duration": float(max(periods, key=lambda p: p["depth"])["duration"]) if periods else 0.0,
        "longest_drawdown": float(max((p["duration"] for p in periods), default=0.0)),
        "calmar": _ratio(cagr, mdd),
        "var_5": value_at_risk(r),
        "cvar_5": conditional_value_at_risk(r),
        "hit_rate": hit_rate(r),
        "win_rate": win_rate(r),
    }
    if turnover is not None:
        mean_turnover = float(np.mean(np.asarray(turnover, dtype=np.float64)))
        metrics["mean_turnover"] = mean_turnover
        metrics["annual_turnover"] = mean_turnover * ppy
    if costs is not None:
        metrics["total_costs"] = float(np.sum(np.asarray(costs, dtype=np.float64)))
    if weights is not None and np.asarray(weights).size:
        metrics["exposure"], metrics["net_exposure"] = exposure(weights)
    return metrics
