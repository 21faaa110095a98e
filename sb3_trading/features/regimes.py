r"""Causal market-regime features on ``(T, N)`` panels.

Like :mod:`sb3_trading.features.indicators`, every function takes a float ``(T, N)`` price panel (``T``
bars, ``N`` assets) and row ``t`` of every output uses price rows ``<= t`` only: a regime is known at the
close of bar ``t``. The leading warm-up rows are NaN and every later row is finite; each docstring states
the warm-up as a function of the arguments.

* :func:`hmm_regime_probabilities` -- per asset, a Gaussian hidden Markov model on log returns, fitted on
  a training slice (and optionally refitted on an expanding window), whose **filtered** state
  probabilities ``P(s_t = k | r_1, ..., r_t)`` are computed forward in time. They are never smoothed:
  hmmlearn's ``predict_proba`` runs the forward-backward algorithm, whose value at ``t`` uses the
  returns after ``t``, so this module runs its own forward recursion (:func:`hmm_filter`).
* :func:`volatility_regime` -- tercile (or ``n_bins``-quantile) bucket of the current rolling volatility
  within its own expanding history.
* :func:`trend_regime` -- sign of the window log return.
* :func:`regime_labels` -- the most likely regime (argmax of probabilities) as int labels, ``-1`` where
  undefined; for rules (action masks, sizing) that read a regime.

The forward recursion (filter) of an HMM with transition matrix ``A`` (``A[j, k] = P(s_t = k | s_{t-1} = j)``),
initial distribution ``pi`` and Gaussian emissions ``N(mu_k, sigma_k^2)`` is

.. math::

    \alpha_0(k) \propto \pi_k\, \phi(r_0; \mu_k, \sigma_k^2), \qquad
    \alpha_t(k) \propto \Big(\sum_j \alpha_{t-1}(j) A_{jk}\Big)\, \phi(r_t; \mu_k, \sigma_k^2),

normalised so that ``sum_k alpha_t(k) = 1``; ``alpha_t(k) = P(s_t = k | r_0..r_t)``. It is evaluated in log
space (log-sum-exp), so a return far in the tail of every state cannot underflow to ``0 / 0``.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from sb3_trading.common.jit import njit
from sb3_trading.common.validation import is_int, is_real
from sb3_trading.features.indicators import _as_panel, _check_window, rolling_volatility

logger = logging.getLogger(__name__)

#: label of a bar whose regime is not defined (warm-up, or below ``min_probability``) in :func:`regime_labels`
NO_REGIME = -1
#: install hint for the optional HMM dependency
HMM_INSTALL_HINT = 'pip install "sb3-trading[hmm]"'
#: fewer training returns per state than this triggers a warning (legal, but the fit is noisy)
MIN_RETURNS_PER_STATE = 50


# ------------------------------------------------------------------ the filter (compiled)
@njit(internal=True)
def _logsumexp(values: np.ndarray) -> float:
    """``log(sum(exp(values)))`` of a 1-D array, stable; ``-inf`` when every entry is ``-inf``."""
    peak = values[0]
    for k in range(1, values.shape[0]):
        if values[k] > peak:
            peak = values[k]
    if peak == -np.inf:
        return -np.inf
    total = 0.0
    for k in range(values.shape[0]):
        total += math.exp(values[k] - peak)
    return peak + math.log(total)


@njit
def _forward_filter_kernel(
    returns: np.ndarray,
    first_row: int,
    segment_start: np.ndarray,
    means: np.ndarray,
    variances: np.ndarray,
    log_transmat: np.ndarray,
    log_start: np.ndarray,
) -> np.ndarray:
    """Filtered state probabilities of ``N`` independent HMMs whose parameters change at given rows.

    :param returns: ``(T, N)`` observations; rows ``< first_row`` are not read.
    :param first_row: row of the first observation (its prior is ``log_start``).
    :param segment_start: ``(S,)`` increasing rows, ``segment_start[0] <= first_row``; parameter set ``s``
        applies to rows ``segment_start[s] .. segment_start[s + 1] - 1`` (the prediction step into the
        first row of a segment already uses that segment's transition matrix).
    :param means: ``(S, N, K)`` emission means.
    :param variances: ``(S, N, K)`` emission variances, ``> 0``.
    :param log_transmat: ``(S, N, K, K)`` log transition matrices (``-inf`` for impossible transitions).
    :param log_start: ``(N, K)`` log prior of the state at ``first_row``.
    :return: ``(K, T, N)`` probabilities, NaN for rows ``< first_row``.
    """
    n_rows, n_assets = returns.shape
    n_segments = segment_start.shape[0]
    n_states = means.shape[2]
    out = np.full((n_states, n_rows, n_assets), np.nan)
    log_alpha = np.empty((n_assets, n_states))
    terms = np.empty(n_states)
    log_pred = np.empty(n_states)
    log_two_pi = math.log(2.0 * np.pi)
    segment = 0
    for t in range(first_row, n_rows):
        while segment + 1 < n_segments and segment_start[segment + 1] <= t:
            segment += 1
        for i in range(n_assets):
            # prediction: log P(s_t = k | r_..t-1)
            if t == first_row:
                for k in range(n_states):
                    log_pred[k] = log_start[i, k]
            else:
                for k in range(n_states):
                    for j in range(n_states):
                        terms[j] = log_alpha[i, j] + log_transmat[segment, i, j, k]
                    log_pred[k] = _logsumexp(terms)
            # update with the Gaussian likelihood of r_t, then normalise
            x = returns[t, i]
            for k in range(n_states):
                var = variances[segment, i, k]
                dev = x - means[segment, i, k]
                log_pred[k] += -0.5 * (log_two_pi + math.log(var) + dev * dev / var)
            norm = _logsumexp(log_pred)
            for k in range(n_states):
                log_alpha[i, k] = log_pred[k] - norm
                out[k, t, i] = math.exp(log_alpha[i, k])
    return out


# ------------------------------------------------------------------ validation helpers
def _check_int(name: str, value: Any, minimum: int) -> int:
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def _per_asset(name: str, values: Any, shape: tuple[int, ...], n_assets: int) -> np.ndarray:
    """Broadcast a per-model parameter of shape ``shape`` (or ``(N, *shape)``) to ``(N, *shape)``."""
    array = np.asarray(values, dtype=np.float64)
    if array.shape == shape:
        array = np.broadcast_to(array, (n_assets, *shape))
    elif array.shape != (n_assets, *shape):
        raise ValueError(f"{name} must have shape {shape} or {(n_assets, *shape)}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite, got {array!r}")
    return np.ascontiguousarray(array)


def _check_stochastic(name: str, array: np.ndarray) -> None:
    if (array < 0).any() or not np.allclose(array.sum(axis=-1), 1.0, rtol=0.0, atol=1e-8):
        raise ValueError(f"{name} must be >= 0 with rows summing to 1, got {array!r}")


def _log(array: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(array)


# ------------------------------------------------------------------ HMM
def hmm_filter(
    returns: np.ndarray,
    means: np.ndarray,
    variances: np.ndarray,
    transmat: np.ndarray,
    startprob: np.ndarray | None = None,
) -> np.ndarray:
    """Filtered state probabilities ``P(s_t = k | r_0, ..., r_t)`` of Gaussian HMMs with given parameters.

    The forward recursion of the module docstring, per column (one independent HMM per asset). Row ``t``
    uses rows ``<= t`` only; unlike a smoother (hmmlearn's ``predict_proba``), only the last row equals
    the smoothed posterior. Compiled with numba: ``O(T N K^2)``, about a millisecond for
    ``T = 10,000``, ``N = 10``, ``K = 2``.

    :param returns: observations, shape ``(T, N)`` (e.g. log returns; any units, as the parameters), finite.
    :param means: emission means, shape ``(K,)`` (shared) or ``(N, K)``, same units as ``returns``.
    :param variances: emission variances, shape ``(K,)`` or ``(N, K)``, ``> 0``, units of ``returns`` squared.
    :param transmat: transition matrix, ``transmat[j, k] = P(s_t = k | s_{t-1} = j)``, shape ``(K, K)`` or
        ``(N, K, K)``, rows summing to 1.
    :param startprob: distribution of the state at row 0, shape ``(K,)`` or ``(N, K)``; default uniform.
    :return: float64 ``(T, N, K)`` probabilities (``out[t, i].sum() == 1``), no warm-up.
    """
    returns = _as_panel("returns", returns)
    n_assets = returns.shape[1]
    means_arr = np.asarray(means, dtype=np.float64)
    if means_arr.ndim not in (1, 2) or means_arr.shape[-1] < 2:
        raise ValueError(f"means must have shape (K,) or (N, K) with K >= 2 states, got {means_arr.shape}")
    n_states = means_arr.shape[-1]
    means_arr = _per_asset("means", means_arr, (n_states,), n_assets)
    variances_arr = _per_asset("variances", variances, (n_states,), n_assets)
    if (variances_arr <= 0).any():
        raise ValueError(f"variances must be > 0, got {variances_arr!r}")
    transmat_arr = _per_asset("transmat", transmat, (n_states, n_states), n_assets)
    _check_stochastic("transmat", transmat_arr)
    if startprob is None:
        start_arr = np.full((n_assets, n_states), 1.0 / n_states)
    else:
        start_arr = _per_asset("startprob", startprob, (n_states,), n_assets)
        _check_stochastic("startprob", start_arr)
    out = _forward_filter_kernel(
        returns,
        0,
        np.zeros(1, dtype=np.int64),
        means_arr[None],
        variances_arr[None],
        _log(transmat_arr)[None],
        _log(start_arr),
    )
    return np.moveaxis(out, 0, -1).copy()


def _gaussian_hmm_class() -> Any:
    try:
        from hmmlearn.hmm import GaussianHMM
    except ImportError as exc:
        raise ImportError(f"hmm_regime_probabilities needs the optional hmmlearn package: {HMM_INSTALL_HINT}") from exc
    return GaussianHMM


def _fit_gaussian_hmm(
    hmm_class: Any, returns: np.ndarray, n_states: int, seed: int, n_iter: int, tol: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit a ``n_states`` Gaussian HMM to a 1-D return series; parameters in canonical order (variance ascending).

    The series is divided by its standard deviation for the fit (hmmlearn's variance floor ``min_covar``
    is absolute, ``1e-3``, far above a daily return's variance) and the parameters are mapped back.
    The initial distribution is fixed uniform, not learned (one training sequence would pin it to its
    first bar).

    :return: ``(means (K,), variances (K,), transmat (K, K))`` in the units of ``returns``.
    """
    scale = float(np.std(returns))
    if not scale > 0:
        scale = 1.0
    model = hmm_class(
        n_components=n_states,
        covariance_type="diag",
        n_iter=n_iter,
        tol=tol,
        random_state=seed,
        params="mct",
        init_params="mct",
    )
    model.startprob_ = np.full(n_states, 1.0 / n_states)
    model.fit((returns / scale).reshape(-1, 1))
    means = np.asarray(model.means_, dtype=np.float64).reshape(n_states) * scale
    variances = np.asarray(model.covars_, dtype=np.float64).reshape(n_states, -1)[:, 0] * scale**2
    transmat = np.asarray(model.transmat_, dtype=np.float64).reshape(n_states, n_states)
    if not (
        np.isfinite(means).all() and np.isfinite(variances).all() and (variances > 0).all() and np.isfinite(transmat).all()
    ):
        raise ValueError(
            f"the Gaussian HMM fit on {returns.size} returns gave non-finite parameters (means={means}, "
            f"variances={variances}); use fewer n_states or a longer fit"
        )
    order = np.lexsort((means, variances))  # variance ascending, ties by mean: state 0 is the calmest
    transmat = transmat[np.ix_(order, order)]
    transmat = transmat / transmat.sum(axis=1, keepdims=True)
    return means[order], variances[order], transmat


def _check_fit_args(
    n_states: int, fit: int, n_rows: int, seed: int, n_iter: int, tol: float, fitted_here: bool
) -> tuple[int, int, int, int]:
    n_states = _check_int("n_states", n_states, 2)
    if fitted_here:
        fit = _check_window("fit", fit, n_rows, minimum=2 * n_states + 1, offset=-1)
    else:
        fit = _check_int("fit", fit, 2 * n_states + 1)
    seed = _check_int("seed", seed, 0)
    n_iter = _check_int("n_iter", n_iter, 1)
    if not is_real(tol) or not np.isfinite(tol) or tol <= 0:
        raise ValueError(f"tol must be a finite number > 0, got {tol!r}")
    if fitted_here and fit - 1 < MIN_RETURNS_PER_STATE * n_states:
        warnings.warn(
            f"fit={fit} gives {fit - 1} training returns for {n_states} states (< {MIN_RETURNS_PER_STATE} per state): "
            "the HMM estimates will be noisy",
            stacklevel=3,
        )
    return n_states, fit, seed, n_iter


def _log_returns(prices: np.ndarray) -> np.ndarray:
    returns = np.zeros(prices.shape)
    returns[1:] = np.log(prices[1:] / prices[:-1])
    return returns


def fit_hmm_params(
    prices: np.ndarray,
    n_states: int = 2,
    fit: int = 250,
    seed: int = 0,
    n_iter: int = 100,
    tol: float = 1e-2,
) -> list[dict[str, list[Any]]]:
    """Fit one Gaussian HMM per asset on the log returns of price rows ``0 .. fit - 1`` (step 1 and 2 of
    :func:`hmm_regime_probabilities`), as plain JSON-ready parameters.

    This is the *training-slice fit* a held-out env reuses: pass the result as ``params=`` to
    :func:`hmm_regime_probabilities` on later data (the envs carry it as ``feature_fits``), so the held-out
    probabilities use the training parameters instead of a refit on the held-out rows.

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``, ``T >= fit``.
    :return: ``N`` dicts ``{"means": (K,), "variances": (K,), "transmat": (K, K)}`` (lists of floats, log-return
        units), states in canonical order (variance ascending).
    :raises ImportError: without hmmlearn (``pip install "sb3-trading[hmm]"``).
    """
    prices = _as_panel("prices", prices, positive=True)
    n_states, fit, seed, n_iter = _check_fit_args(n_states, fit, prices.shape[0], seed, n_iter, tol, True)
    hmm_class = _gaussian_hmm_class()
    returns = _log_returns(prices)
    out = []
    for i in range(prices.shape[1]):
        means, variances, transmat = _fit_gaussian_hmm(hmm_class, returns[1:fit, i], n_states, seed, n_iter, tol)
        out.append({"means": means.tolist(), "variances": variances.tolist(), "transmat": transmat.tolist()})
    return out


def _read_params(params: Sequence[Any], n_assets: int, n_states: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(means (N, K), variances (N, K), transmat (N, K, K))`` of :func:`fit_hmm_params`-style parameters."""
    if isinstance(params, Mapping) or len(params) != n_assets:
        raise ValueError(f"params must hold one fitted HMM per asset ({n_assets}), got {params!r:.200}")
    arrays = []
    for key, shape in (("means", (n_states,)), ("variances", (n_states,)), ("transmat", (n_states, n_states))):
        try:
            values = [np.asarray(p[key], dtype=np.float64) for p in params]
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"params must be dicts with 'means', 'variances' and 'transmat' (as fit_hmm_params gives): {exc}"
            ) from exc
        bad = [v.shape for v in values if v.shape != shape]
        if bad:
            raise ValueError(f"params {key!r} must have shape {shape} for n_states={n_states}, got {bad[0]}")
        arrays.append(np.stack(values))
    means, variances, transmat = arrays
    if not (np.isfinite(means).all() and np.isfinite(variances).all() and (variances > 0).all()):
        raise ValueError(f"params need finite means and finite variances > 0, got {means!r} and {variances!r}")
    _check_stochastic("params 'transmat'", transmat)
    return means, variances, transmat


def hmm_regime_probabilities(
    prices: np.ndarray,
    n_states: int = 2,
    fit: int = 250,
    refit: int | None = None,
    seed: int = 0,
    n_iter: int = 100,
    tol: float = 1e-2,
    params: Sequence[Any] | None = None,
) -> tuple[np.ndarray, ...]:
    """Filtered (forward-only) Gaussian-HMM regime probabilities of each asset's log returns.

    Per asset ``i``, with log returns ``r_t = ln(p_t / p_{t-1})`` (``t >= 1``):

    1. **Fit** a ``n_states`` Gaussian HMM (hmmlearn ``GaussianHMM``, EM from a k-means start seeded by
       ``seed``; uniform, not learned, initial distribution) on the returns of price rows ``0 .. fit - 1``,
       i.e. ``r_1 .. r_{fit-1}`` (:func:`fit_hmm_params`) -- or take ``params``, fitted on earlier data
       (the training slice), as they are.
    2. **Order** the states canonically by variance ascending (state 0 is the calmest, ``n_states - 1``
       the most volatile), so a column means the same regime across refits and across assets.
    3. **Filter** forward, :func:`hmm_filter`, from ``r_1``: ``P(s_t = k | r_1 .. r_t)``. Rows before
       ``fit - 1`` (where the parameters were fitted on later rows) are NaN; with ``params`` only row 0
       (no return yet) is.
    4. With ``refit=k``: refit on the expanding window of rows ``0 .. L`` at every
       ``L = fit - 1 + k, fit - 1 + 2k, ... < T - 1``; the filter is *continued* (its state carried
       over, not restarted) with the new parameters from row ``L + 1``, the prediction step into row
       ``L + 1`` included. The value at ``L`` itself keeps the previous parameters.

    So the parameters used at row ``t`` are always fitted on rows ``<= t`` (or on data before this panel)
    and the output at ``t`` is unchanged, bit for bit, when any price after ``t`` changes. Deterministic
    for a given ``seed`` (every fit uses the same ``random_state``). Cost: one EM fit per asset and per
    (re)fit (tens of milliseconds each for a few thousand bars); the filter itself is compiled and negligible.

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param n_states: number of hidden states ``K >= 2``.
    :param fit: number of price rows of the first training slice (``fit - 1`` returns), ``>= 2 K + 1``
        and ``<= T`` (unless ``params`` are given); fewer than ``50`` returns per state warns.
    :param refit: refit every ``refit`` bars on an expanding window (``>= 1``), or ``None`` to keep the
        first fit.
    :param seed: ``random_state`` of every fit.
    :param n_iter: maximum EM iterations per fit, ``>= 1``.
    :param tol: EM convergence threshold on the log-likelihood gain, ``> 0`` (hmmlearn's default ``1e-2``).
    :param params: ``N`` fitted HMMs (:func:`fit_hmm_params` of the training data) used instead of step 1's fit.
    :return: ``n_states`` float64 ``(T, N)`` arrays, probability (in ``[0, 1]``, summing to 1 over the
        states) of state ``0`` (lowest variance) .. ``K - 1`` (highest); warm-up ``fit - 1`` rows (1 with
        ``params``).
    :raises ImportError: without hmmlearn (``pip install "sb3-trading[hmm]"``), unless ``params`` are given and
        there is no refit.
    """
    prices = _as_panel("prices", prices, positive=True)
    n_rows, n_assets = prices.shape
    n_states, fit, seed, n_iter = _check_fit_args(n_states, fit, n_rows, seed, n_iter, tol, params is None)
    if refit is not None:
        refit = _check_int("refit", refit, 1)
    if n_rows < 2:
        raise ValueError(f"prices need at least 2 rows (one return), got {n_rows}")
    returns = _log_returns(prices)
    last_rows = [fit - 1]
    if refit is not None:
        last_rows += list(range(fit - 1 + refit, n_rows - 1, refit))
    n_segments = len(last_rows)
    means = np.empty((n_segments, n_assets, n_states))
    variances = np.empty((n_segments, n_assets, n_states))
    transmat = np.empty((n_segments, n_assets, n_states, n_states))
    first_fit = 0
    if params is not None:
        means[0], variances[0], transmat[0] = _read_params(params, n_assets, n_states)
        first_fit = 1
    if n_segments > first_fit:
        hmm_class = _gaussian_hmm_class()
        for s in range(first_fit, n_segments):
            for i in range(n_assets):
                means[s, i], variances[s, i], transmat[s, i] = _fit_gaussian_hmm(
                    hmm_class, returns[1 : last_rows[s] + 1, i], n_states, seed, n_iter, tol
                )
        logger.debug(
            "fitted %d x %d Gaussian HMMs (%d states), last training rows %s", n_segments, n_assets, n_states, last_rows
        )
    # parameter set s applies from row last_rows[s] + 1; the first one from row 1 (the first return)
    segment_start = np.array([1] + [last + 1 for last in last_rows[1:]], dtype=np.int64)
    out = _forward_filter_kernel(
        returns,
        1,
        segment_start,
        means,
        variances,
        _log(transmat),
        np.full((n_assets, n_states), -np.log(n_states)),
    )
    out[:, : 1 if params is not None else fit - 1] = np.nan
    return tuple(out[k].copy() for k in range(n_states))


# ------------------------------------------------------------------ rule-based regimes
def volatility_regime(prices: np.ndarray, window: int = 60, min_history: int | None = None, n_bins: int = 3) -> np.ndarray:
    """Causal volatility regime: bucket of the current rolling volatility within its own expanding history.

    ``vol_t`` is :func:`~sb3_trading.features.indicators.rolling_volatility` (sample std, ``ddof=1``, of
    the last ``window`` log returns). Its expanding quantiles ``q_{j,t}`` at levels ``j / n_bins``
    (``j = 1 .. n_bins - 1``, linear interpolation, over ``vol_window .. vol_t``, the current value
    included) give the label ``#{j : vol_t > q_{j,t}}``: with the default ``n_bins=3`` (terciles)
    ``0`` = low, ``1`` = mid, ``2`` = high volatility relative to the asset's own past. A value equal
    to a threshold goes to the lower bucket (flat prices are ``0``).

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param window: volatility window in returns, ``>= 2``.
    :param min_history: number of volatility values (current included) the quantiles need, ``>= 1``;
        default ``window``.
    :param n_bins: number of buckets, ``>= 2``.
    :return: float64 ``(T, N)`` labels in ``{0, ..., n_bins - 1}`` (dimensionless); warm-up
        ``window + min_history - 1`` rows (default ``2 window - 1``).
    """
    prices = _as_panel("prices", prices, positive=True)
    n_rows = prices.shape[0]
    window = _check_int("window", window, 2)
    min_history = window if min_history is None else _check_int("min_history", min_history, 1)
    n_bins = _check_int("n_bins", n_bins, 2)
    _check_window("window", window, n_rows, minimum=2, offset=min_history - 1)
    vol = rolling_volatility(prices, window)
    expanding = pd.DataFrame(vol).expanding(min_periods=min_history)
    labels = np.zeros(prices.shape)
    for j in range(1, n_bins):
        threshold = expanding.quantile(j / n_bins, interpolation="linear").to_numpy(dtype=np.float64)
        labels += vol > threshold
    labels[: window + min_history - 1] = np.nan
    return labels


def trend_regime(prices: np.ndarray, window: int = 60, threshold: float = 0.0) -> np.ndarray:
    """Causal trend regime: sign of the ``window``-bar log return, with an optional dead band.

    ``m_t = ln(p_t / p_{t-window})``; the label is ``1`` (up) if ``m_t > threshold``, ``-1`` (down) if
    ``m_t < -threshold``, else ``0`` (flat).

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param window: look-back in bars, ``>= 1`` and ``< T``.
    :param threshold: dead band half-width in log-return units (``0.05`` is about 5 %), ``>= 0``.
    :return: float64 ``(T, N)`` labels in ``{-1, 0, 1}``; warm-up ``window`` rows.
    """
    prices = _as_panel("prices", prices, positive=True)
    window = _check_window("window", window, prices.shape[0], minimum=1, offset=0)
    if not is_real(threshold) or not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    out = np.full(prices.shape, np.nan)
    move = np.log(prices[window:] / prices[:-window])
    out[window:] = (move > threshold).astype(np.float64) - (move < -threshold)
    return out


def regime_labels(probabilities: Sequence[np.ndarray] | np.ndarray, min_probability: float = 0.0) -> np.ndarray:
    """Most likely regime per bar and asset: ``argmax_k probabilities[k]``, ``-1`` where undefined.

    :param probabilities: ``K >= 2`` arrays of shape ``(T, N)`` (as :func:`hmm_regime_probabilities`
        returns) or one ``(K, T, N)`` array; NaN marks warm-up.
    :param min_probability: a bar whose largest probability is below this is labelled ``-1``
        (``0`` labels every defined bar; ties go to the lower state).
    :return: int64 ``(T, N)`` labels in ``{-1, 0, ..., K - 1}``; ``-1`` (:data:`NO_REGIME`) where any
        probability of the bar is NaN or the largest is below ``min_probability``.
    """
    stacked = np.asarray(probabilities, dtype=np.float64)
    if stacked.ndim != 3 or stacked.shape[0] < 2:
        raise ValueError(
            f"probabilities must be K >= 2 arrays of shape (T, N) (or one (K, T, N) array), got shape {stacked.shape}"
        )
    if not is_real(min_probability) or not 0.0 <= min_probability <= 1.0:
        raise ValueError(f"min_probability must be a number in [0, 1], got {min_probability!r}")
    undefined = np.isnan(stacked).any(axis=0)
    filled = np.where(np.isnan(stacked), -np.inf, stacked)
    labels = np.argmax(filled, axis=0).astype(np.int64)
    undefined |= filled.max(axis=0) < min_probability
    labels[undefined] = NO_REGIME
    return labels


__all__ = [
    "HMM_INSTALL_HINT",
    "NO_REGIME",
    "fit_hmm_params",
    "hmm_filter",
    "hmm_regime_probabilities",
    "regime_labels",
    "trend_regime",
    "volatility_regime",
]
