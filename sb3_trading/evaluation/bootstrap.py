r"""Stationary block bootstrap confidence intervals (Politis & Romano, 1994).

Returns are serially dependent (volatility clusters, regimes), so resampling
single bars understates the uncertainty of a Sharpe ratio. The stationary
bootstrap resamples *blocks* of consecutive bars whose lengths are geometric
with mean ``mean_block`` (``p = 1 / mean_block``), wrapping around the end of
the series, so every resample is itself stationary:

* the first index is uniform on ``0 .. n-1``;
* each next index is, with probability ``1 - p``, the previous index ``+ 1``
  (mod ``n``), and with probability ``p`` a new uniform index.

The interval is the percentile interval ``[q_{alpha/2}, q_{1 - alpha/2}]`` of
the statistic over ``n_boot`` resamples. ``mean_block`` defaults to
``n ** (1/3)`` (the rate-optimal order for variance estimation; Politis & White
(2004) give a data-driven constant). Index generation is vectorised: one
``(n_boot, n)`` array, no Python loop over resamples.

Annualisation and the risk-free rate follow :func:`~sb3_trading.evaluation.metrics.compute_metrics`:
``periods_per_year`` is the data's calendar (``BacktestResult.periods_per_year``), and
``risk_free`` is an **annual** rate (fraction) whose per-bar rate ``(1 + risk_free) ** (1 / P) - 1``
the Sharpe ratio's excess returns are measured over.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sb3_trading.common.bootstrap import stationary_bootstrap_indices  # lives in common (data uses it too); re-exported
from sb3_trading.evaluation.metrics import TRADING_DAYS, _check_ppy, _returns, capped_ratio, risk_free_per_period

#: a statistic maps returns ``(..., n)`` to values ``(...)`` along the last axis
Statistic = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class BootstrapCI:
    """A bootstrap confidence interval.

    :ivar estimate: the statistic on the original series.
    :ivar low: lower bound, the ``alpha / 2`` quantile of the resampled statistic.
    :ivar high: upper bound, the ``1 - alpha / 2`` quantile.
    :ivar alpha: ``1 -`` the confidence level (``0.1`` = 90 % interval).
    :ivar n_boot: number of resamples.
    :ivar mean_block: mean block length in bars.
    :ivar std_error: standard deviation of the resampled statistic.
    """

    estimate: float
    low: float
    high: float
    alpha: float
    n_boot: int
    mean_block: float
    std_error: float

    def to_dict(self) -> dict[str, float]:
        """Plain floats for JSON."""
        return {key: float(value) for key, value in asdict(self).items()}

    def __contains__(self, value: float) -> bool:
        return self.low <= value <= self.high


def default_mean_block(n: int) -> float:
    """``max(1, n ** (1/3))`` bars."""
    return max(1.0, float(n) ** (1.0 / 3.0))


def stationary_bootstrap_ci(
    returns: np.ndarray | list[float],
    statistic: Statistic,
    n_boot: int = 1000,
    mean_block: float | None = None,
    alpha: float = 0.1,
    seed: int | np.random.Generator | None = None,
) -> BootstrapCI:
    """Percentile confidence interval of ``statistic(returns)`` by the stationary bootstrap.

    :param returns: ``(n,)`` per-period simple returns, finite, ``n >= 2``.
    :param statistic: vectorised along the last axis: ``statistic(x)`` for ``x`` of shape ``(B, n)``
        returns shape ``(B,)`` (e.g. :func:`sharpe_statistic`).
    :param n_boot: number of resamples.
    :param mean_block: mean block length in bars (default :func:`default_mean_block`).
    :param alpha: ``1 -`` confidence level, in ``(0, 1)``.
    :param seed: seed or ``Generator``; the same seed gives the same interval.
    :return: the :class:`BootstrapCI`.
    """
    r = _returns(returns)
    if r.size < 2:
        raise ValueError(f"the bootstrap needs at least 2 returns, got {r.size}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    block = default_mean_block(r.size) if mean_block is None else float(mean_block)
    estimate = np.asarray(statistic(r[None, :]), dtype=np.float64).reshape(-1)
    if estimate.shape != (1,):
        raise ValueError(f"statistic must reduce the last axis: (1, n) -> (1,), got shape {estimate.shape}")
    samples = np.asarray(statistic(r[stationary_bootstrap_indices(r.size, n_boot, block, seed)]), dtype=np.float64)
    if samples.shape != (n_boot,):
        raise ValueError(f"statistic must reduce the last axis: ({n_boot}, n) -> ({n_boot},), got shape {samples.shape}")
    finite = samples[np.isfinite(samples)]
    if finite.size < 2:
        raise ValueError("the statistic is not finite on the bootstrap resamples")
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return BootstrapCI(float(estimate[0]), float(low), float(high), float(alpha), int(n_boot), block, float(np.std(finite)))


# ----------------------------------------------------------------------------- vectorised statistics
def sharpe_statistic(periods_per_year: float = TRADING_DAYS, risk_free: float = 0.0) -> Statistic:
    """Vectorised annualised Sharpe ``mean(x - rf) / std(x - rf, ddof=1) * sqrt(P)`` along the last axis, with
    :func:`~sb3_trading.evaluation.metrics.sharpe_ratio`'s rule for flat resamples (0 for a zero mean, else
    ``sign(mean) * SHARPE_CAP``), so the statistic of the original series is its reported Sharpe.

    :param periods_per_year: ``P``.
    :param risk_free: **annual** risk-free rate (fraction); ``rf = (1 + risk_free) ** (1 / P) - 1`` per bar.
    """
    scale = math.sqrt(_check_ppy(periods_per_year))
    rf = risk_free_per_period(risk_free, periods_per_year)

    def sharpe(x: np.ndarray) -> np.ndarray:
        excess = x - rf
        std = excess.std(axis=-1, ddof=1) if x.shape[-1] > 1 else np.zeros(x.shape[:-1])
        return capped_ratio(excess.mean(axis=-1), std, np.abs(excess).max(axis=-1), 1.0, scale)

    return sharpe


def total_return_statistic(x: np.ndarray) -> np.ndarray:
    """Vectorised ``prod(1 + r) - 1`` along the last axis."""
    return np.prod(1.0 + x, axis=-1) - 1.0


def annual_return_statistic(periods_per_year: float = TRADING_DAYS) -> Statistic:
    """Vectorised CAGR ``prod(1 + r) ** (P / n) - 1`` along the last axis (``-1`` once equity is ``<= 0``)."""
    ppy = _check_ppy(periods_per_year)

    def cagr(x: np.ndarray) -> np.ndarray:
        growth = np.prod(1.0 + x, axis=-1)
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            out = np.expm1(ppy / x.shape[-1] * np.log(np.where(growth > 0, growth, 1.0)))
        return np.where(growth > 0, out, -1.0)

    return cagr


def sharpe_ci(
    returns: np.ndarray | list[float],
    periods_per_year: float = TRADING_DAYS,
    n_boot: int = 1000,
    mean_block: float | None = None,
    alpha: float = 0.1,
    seed: int | np.random.Generator | None = None,
    *,
    risk_free: float = 0.0,
) -> BootstrapCI:
    """Stationary-bootstrap CI of the annualised Sharpe ratio (see :func:`stationary_bootstrap_ci`).

    :param risk_free: **annual** risk-free rate (fraction) of the excess returns, as :func:`sharpe_statistic`.
    """
    statistic = sharpe_statistic(periods_per_year, risk_free)
    return stationary_bootstrap_ci(returns, statistic, n_boot, mean_block, alpha, seed)


def return_ci(
    returns: np.ndarray | list[float],
    kind: str = "total",
    periods_per_year: float = TRADING_DAYS,
    n_boot: int = 1000,
    mean_block: float | None = None,
    alpha: float = 0.1,
    seed: int | np.random.Generator | None = None,
) -> BootstrapCI:
    """Stationary-bootstrap CI of the total return (``kind="total"``) or the CAGR (``kind="annual"``)."""
    if kind == "total":
        stat = total_return_statistic
    elif kind == "annual":
        stat = annual_return_statistic(periods_per_year)
    else:
        raise ValueError(f"kind must be 'total' or 'annual', got {kind!r}")
    return stationary_bootstrap_ci(returns, stat, n_boot, mean_block, alpha, seed)


def metric_cis(
    returns: np.ndarray | list[float],
    periods_per_year: float = TRADING_DAYS,
    n_boot: int = 1000,
    mean_block: float | None = None,
    alpha: float = 0.1,
    seed: int | None = 0,
    *,
    risk_free: float = 0.0,
) -> dict[str, Any]:
    """CIs of ``sharpe``, ``total_return`` and ``annual_return`` (same resamples' seed for each), as dicts.

    A series shorter than 2 returns gives ``{}``.

    :param risk_free: **annual** risk-free rate (fraction) of the Sharpe ratio's excess returns.
    """
    r = _returns(returns)
    if r.size < 2:
        return {}
    return {
        "sharpe": sharpe_ci(r, periods_per_year, n_boot, mean_block, alpha, seed, risk_free=risk_free).to_dict(),
        "total_return": return_ci(r, "total", periods_per_year, n_boot, mean_block, alpha, seed).to_dict(),
        "annual_return": return_ci(r, "annual", periods_per_year, n_boot, mean_block, alpha, seed).to_dict(),
    }
