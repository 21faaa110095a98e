"""Performance metrics of a per-period simple return series.

Definitions follow empyrical / quantstats (sample standard deviation,
``ddof=1``; zero risk-free rate):

* ``total_return = prod(1 + r) - 1``
* ``annual_return = (1 + total_return) ** (periods_per_year / n) - 1`` (CAGR)
* ``annual_volatility = std(r, ddof=1) * sqrt(periods_per_year)``
* ``sharpe = mean(r) / std(r, ddof=1) * sqrt(periods_per_year)``
* ``sortino = mean(r) / downside_deviation * sqrt(periods_per_year)`` with
  ``downside_deviation = sqrt(mean(min(r, 0) ** 2))``
* ``max_drawdown = max_t (1 - E_t / max_{s<=t} E_s)`` over the compounded curve
  starting at 1 (a positive fraction)
* ``calmar = annual_return / max_drawdown``
* ``cvar_5`` = mean of the worst 5 % of returns (expected shortfall, a return, usually < 0)

Edge cases return defined values, never NaN: a ratio whose denominator is zero
is ``0.0`` (flat series, all-zero returns, a single bar); an empty series
raises ``ValueError``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

TRADING_DAYS = 252


def infer_periods_per_year(timestamps: Sequence[Any] | np.ndarray | None, default: int = TRADING_DAYS) -> float:
    """Bars per year from the median spacing of ``timestamps``.

    Daily bars (spacing ~1 calendar day, weekends skipped) give 252, weekly 52,
    monthly 12; intraday bars give 252 times the median number of bars per day.

    :param timestamps: ``(T,)`` datetimes, or ``None`` to get ``default``.
    :param default: returned when there are too few timestamps to tell.
    """
    if timestamps is None or len(timestamps) < 3:
        return float(default)
    ts = np.asarray(timestamps, dtype="datetime64[ns]")
    spacing_days = float(np.median(np.diff(ts)) / np.timedelta64(1, "D"))
    if spacing_days >= 20:
        return 12.0
    if spacing_days >= 5:
        return 52.0
    if spacing_days >= 0.9:
        return float(TRADING_DAYS)
    days = ts.astype("datetime64[D]")
    _, counts = np.unique(days, return_counts=True)
    return float(TRADING_DAYS * np.median(counts))


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator > 1e-15 and np.isfinite(denominator) else 0.0


def max_drawdown(returns: np.ndarray) -> float:
    """Largest peak-to-trough loss of the compounded curve, a fraction in ``[0, 1]``."""
    curve = np.concatenate([[1.0], np.cumprod(1.0 + np.asarray(returns, dtype=np.float64))])
    peaks = np.maximum.accumulate(curve)
    return float(np.max(1.0 - curve / peaks))


def compute_metrics(
    returns: Sequence[float] | np.ndarray,
    periods_per_year: float = TRADING_DAYS,
    turnover: Sequence[float] | np.ndarray | None = None,
    costs: Sequence[float] | np.ndarray | None = None,
) -> dict[str, float]:
    """Summary metrics of a simple-return series.

    :param returns: ``(n,)`` per-period simple returns (``0.01`` = 1 %).
    :param periods_per_year: bars per year used to annualise.
    :param turnover: optional ``(n,)`` per-period turnover (traded notional / equity).
    :param costs: optional ``(n,)`` per-period costs in currency (summed into ``total_costs``).
    :return: a dict of floats (keys listed in the module docstring, plus ``n_periods``,
        ``mean_turnover``, ``total_costs``, ``hit_rate``).
    """
    r = np.asarray(returns, dtype=np.float64).reshape(-1)
    if r.size == 0:
        raise ValueError("compute_metrics needs at least one return")
    if not np.isfinite(r).all():
        raise ValueError(f"returns contain non-finite values at positions {np.flatnonzero(~np.isfinite(r))[:5].tolist()}")
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be > 0, got {periods_per_year}")
    n = r.size
    growth = float(np.prod(1.0 + r))
    total_return = growth - 1.0
    annual_return = growth ** (periods_per_year / n) - 1.0 if growth > 0 else -1.0
    std = float(np.std(r, ddof=1)) if n > 1 else 0.0
    mean = float(np.mean(r))
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2)))
    mdd = max_drawdown(r)
    tail = np.sort(r)[: max(1, int(np.ceil(0.05 * n)))]
    metrics = {
        "n_periods": float(n),
        "total_return": total_return,
        "annual_return": float(annual_return),
        "annual_volatility": std * float(np.sqrt(periods_per_year)),
        "sharpe": _ratio(mean, std) * float(np.sqrt(periods_per_year)),
        "sortino": _ratio(mean, downside) * float(np.sqrt(periods_per_year)),
        "max_drawdown": mdd,
        "calmar": _ratio(float(annual_return), mdd),
        "cvar_5": float(np.mean(tail)),
        "hit_rate": float(np.mean(r > 0)),
    }
    if turnover is not None:
        metrics["mean_turnover"] = float(np.mean(np.asarray(turnover, dtype=np.float64)))
    if costs is not None:
        metrics["total_costs"] = float(np.sum(np.asarray(costs, dtype=np.float64)))
    return metrics
