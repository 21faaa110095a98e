r"""Volatility-regime breakdown of a backtest.

Each decision bar ``t`` of a backtest is labelled ``low``, ``mid`` or ``high``
volatility from the *market* — the equally weighted average simple return of
all assets of the data, ``m_s = mean_i (p_{i,s} / p_{i,s-1} - 1)`` — by its
causal rolling volatility

.. math:: \sigma_t = \operatorname{std}(m_{t-w+1}, \dots, m_t), \quad \text{ddof}=1,

which uses prices up to ``t`` only (known when the decision at ``t`` is made).
The tercile thresholds ``q_{1/3}, q_{2/3}`` of ``sigma`` over the evaluated bars
split them into three groups of (nearly) equal size (pass ``thresholds`` fitted on
training data for out-of-sample labels). Bars with fewer than two past returns have
no volatility and are left out (label ``-1``). Metrics per regime are
:func:`~sb3_trading.evaluation.metrics.compute_metrics` of the returns of that
regime's steps, concatenated in time order (so drawdowns span gaps between them).

``method="hmm"`` instead labels the bars by a 3-state Gaussian HMM on the market
returns (states sorted by their variance), from the optional ``hmmlearn``
(``pip install "sb3-trading[hmm]"``). The HMM is fitted on the market up to the
backtest's last bar, so its labels are descriptive, not causal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from sb3_trading.data import MarketData
from sb3_trading.evaluation.backtest import BacktestResult
from sb3_trading.evaluation.metrics import compute_metrics

REGIMES = ("low", "mid", "high")
REGIME_METHODS = ("rolling", "hmm")


def market_returns(data: MarketData, assets: Sequence[str] | None = None) -> np.ndarray:
    """``(T,)`` equally weighted simple return of ``assets`` (default all) from row ``s - 1`` to ``s`` (``0`` at row 0)."""
    prices = data.prices if assets is None else data.select_assets(list(assets)).prices
    out = np.zeros(data.n_steps)
    out[1:] = np.mean(prices[1:] / prices[:-1] - 1.0, axis=1)
    return out


def rolling_volatility(returns: np.ndarray, window: int = 20) -> np.ndarray:
    """Causal rolling standard deviation (``ddof=1``), ``(T,)``: entry ``t`` uses ``returns[max(1, t-w+1) .. t]``.

    ``returns[0]`` (no previous bar) is never used; entries with fewer than 2 returns are NaN.
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 2:
        raise ValueError(f"window must be an integer >= 2, got {window!r}")
    import pandas as pd

    r = pd.Series(np.asarray(returns, dtype=np.float64))
    r.iloc[0] = np.nan
    return r.rolling(window, min_periods=2).std(ddof=1).to_numpy()


def _hmm_states(returns: np.ndarray, seed: int) -> np.ndarray:
    try:
        from hmmlearn.hmm import GaussianHMM
    except ImportError as exc:
        raise ImportError('method="hmm" needs the optional hmmlearn package: pip install "sb3-trading[hmm]"') from exc
    x = np.asarray(returns, dtype=np.float64).reshape(-1, 1)
    scale = float(np.std(x)) or 1.0
    model = GaussianHMM(n_components=3, covariance_type="diag", n_iter=100, random_state=seed)
    model.fit(x / scale)
    states = model.predict(x / scale)
    order = np.argsort(np.asarray(model.covars_).reshape(3, -1)[:, 0])  # state ids by variance, low first
    rank = np.empty(3, dtype=np.int64)
    rank[order] = np.arange(3)
    return rank[states]


def volatility_regimes(
    result: BacktestResult,
    window: int = 20,
    thresholds: tuple[float, float] | None = None,
    data: MarketData | None = None,
    assets: Sequence[str] | None = None,
    method: str = "rolling",
    seed: int = 0,
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Label each step of ``result`` 0 (low), 1 (mid), 2 (high) volatility, or -1 (no history).

    :param result: a backtest; step ``k`` is labelled by the volatility at its decision row ``t[k]``.
    :param window: rolling window in bars, ``>= 2``.
    :param thresholds: ``(low/mid, mid/high)`` volatility cut-offs (per-bar std of the market return);
        default: the terciles over the labelled steps.
    :param data: the market ``result.t`` indexes (default ``result.market``).
    :param assets: assets averaged into the market (default all).
    :param method: ``"rolling"`` (causal terciles) or ``"hmm"`` (hmmlearn 3-state Gaussian HMM).
    :param seed: seed of the HMM fit.
    :return: ``(labels (n,), thresholds)``; ``thresholds`` is ``None`` for the HMM.
    """
    if method not in REGIME_METHODS:
        raise ValueError(f"method must be one of {REGIME_METHODS}, got {method!r}")
    data = result.market if data is None else data
    if data is None:
        raise ValueError("volatility_regimes needs the market data: the result has none, pass data=")
    rows = np.asarray(result.t[:-1], dtype=np.int64)
    if rows.size and (rows.min() < 0 or rows.max() >= data.n_steps):
        raise ValueError(f"result.t spans rows {rows.min()}..{rows.max()} outside the data's {data.n_steps} rows")
    market = market_returns(data, assets)
    if method == "hmm":
        last = int(result.t[-1]) + 1
        states = _hmm_states(market[1:last], seed)
        labels = np.concatenate([[-1], states])[rows]
        return labels.astype(np.int64), None
    vol = rolling_volatility(market, window)[rows]
    valid = np.isfinite(vol)
    labels = np.full(rows.size, -1, dtype=np.int64)
    if not valid.any():
        return labels, thresholds
    if thresholds is None:
        low, high = np.quantile(vol[valid], [1.0 / 3.0, 2.0 / 3.0])
        thresholds = (float(low), float(high))
    elif not (len(thresholds) == 2 and all(math.isfinite(x) for x in thresholds) and thresholds[0] <= thresholds[1]):
        raise ValueError(f"thresholds must be two finite numbers (low, high) with low <= high, got {thresholds!r}")
    labels[valid] = np.where(vol[valid] <= thresholds[0], 0, np.where(vol[valid] <= thresholds[1], 1, 2))
    return labels, (float(thresholds[0]), float(thresholds[1]))


def regime_breakdown(
    result: BacktestResult,
    window: int = 20,
    thresholds: tuple[float, float] | None = None,
    data: MarketData | None = None,
    assets: Sequence[str] | None = None,
    method: str = "rolling",
    seed: int = 0,
) -> dict[str, Any]:
    """Metrics of ``result`` per volatility regime (arguments as :func:`volatility_regimes`).

    :return: ``{"method", "window", "thresholds", "regimes": {"low": {...}, "mid": {...}, "high": {...}}}``;
        each regime has ``n_periods``, ``share`` (of labelled steps) and, when it has at least one step,
        the :func:`compute_metrics` keys.
    """
    labels, cuts = volatility_regimes(result, window, thresholds, data, assets, method, seed)
    labelled = int(np.count_nonzero(labels >= 0))
    table: dict[str, dict[str, float]] = {}
    for code, name in enumerate(REGIMES):
        mask = labels == code
        count = int(mask.sum())
        entry: dict[str, float] = {"n_periods": float(count), "share": count / labelled if labelled else 0.0}
        if count:
            turnover = result.turnover[mask]
            entry.update(
                compute_metrics(
                    result.returns[mask], result.periods_per_year, turnover, result.costs[mask], risk_free=result.risk_free
                )
            )
        table[name] = entry
    return {
        "method": method,
        "window": window if method == "rolling" else None,
        "thresholds": None if cuts is None else list(cuts),
        "unlabelled": float(labels.size - labelled),
        "regimes": table,
    }
