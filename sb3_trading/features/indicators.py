"""Causal technical indicators on ``(T, N)`` panels.

Every function takes float arrays shaped ``(T, N)`` (``T`` bars, ``N`` assets)
and returns a float64 ``(T, N)`` array (or a tuple of them). Row ``t`` of the
output uses input rows ``<= t`` only, so an indicator value is known at the
close of bar ``t``. The first ``warmup`` rows, where the indicator is not
defined yet, are NaN; every later row is finite. Each docstring states the
formula, the warm-up (number of leading NaN rows) and the units.

Outputs are scale-free (returns, ratios, bounded oscillators) so that they can
feed a neural network after a z-score (:class:`~sb3_trading.features.FeatureNormalizer`).

Conventions:

* Rolling windows include the current bar: a ``window``-bar statistic at row
  ``t`` uses rows ``t - window + 1 .. t``. Rolling means and standard deviations
  are computed exactly (two-pass, per window) and a window whose values are all
  equal has a standard deviation of exactly ``0``.
* Exponential averages are recursive (``adjust=False`` in pandas terms), seeded
  with the first available value: ``e_{t0} = x_{t0}``, ``e_t = (1 - a) e_{t-1} + a x_t``.
  Wilder smoothing is the case ``a = 1 / window``; a ``span`` EMA has ``a = 2 / (span + 1)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sb3_trading.common.validation import is_int


# ----------------------------------------------------------------- validation
def _as_panel(name: str, values: np.ndarray, positive: bool = False) -> np.ndarray:
    """Check that ``values`` is a finite ``(T, N)`` float panel and return it as float64."""
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be a numeric (T, N) array, got {type(values).__name__}: {exc}") from exc
    if array.ndim != 2:
        raise ValueError(f"{name} must have shape (T, N), got shape {array.shape}; use {name}[:, None] for one asset")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    if not np.isfinite(array).all():
        row, col = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(f"{name} has a non-finite value {array[row, col]!r} at row {row}, column {col}")
    if positive and (array <= 0).any():
        row, col = np.argwhere(array <= 0)[0]
        raise ValueError(f"{name} must be > 0, got {array[row, col]!r} at row {row}, column {col}")
    return array


def _check_window(name: str, value: int, n_rows: int, minimum: int, offset: int) -> int:
    """Check an integer length argument; ``value + offset`` is the number of leading NaN rows it implies."""
    if not is_int(value):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    warmup = value + offset
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if warmup >= n_rows:
        raise ValueError(
            f"{name}={value} leaves no valid row: it needs more than {warmup} rows of warm-up but the data has "
            f"T={n_rows} rows; use a shorter {name} or more data"
        )
    return value


# -------------------------------------------------------------------- helpers
def _rolling_mean_std(values: np.ndarray, window: int, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact (two-pass) rolling mean and standard deviation over the last ``window`` rows.

    Sums run over the ``window`` shifted views in a fixed order, so row ``t`` depends on rows
    ``t - window + 1 .. t`` only and costs ``O(T N window)`` time, ``O(T N)`` memory.

    :param values: finite ``(T, N)`` array with ``T >= window``.
    :return: ``(mean, std)``, each ``(T, N)`` with rows ``< window - 1`` NaN; ``std`` is exactly ``0``
        where every value in the window is equal.
    """
    n_valid = values.shape[0] - window + 1
    total = values[:n_valid].copy()
    highest = total.copy()
    lowest = total.copy()
    for k in range(1, window):
        shifted = values[k : k + n_valid]
        total += shifted
        np.maximum(highest, shifted, out=highest)
        np.minimum(lowest, shifted, out=lowest)
    window_mean = total / window
    squares = np.zeros_like(window_mean)
    deviation = np.empty_like(window_mean)
    for k in range(window):
        np.subtract(values[k : k + n_valid], window_mean, out=deviation)
        deviation *= deviation
        squares += deviation
    window_std = np.sqrt(squares / (window - ddof))
    window_std[highest == lowest] = 0.0
    mean = np.full(values.shape, np.nan)
    std = np.full(values.shape, np.nan)
    mean[window - 1 :] = window_mean
    std[window - 1 :] = window_std
    return mean, std


def _ema(values: np.ndarray, alpha: float) -> np.ndarray:
    """Recursive EMA ``e_t = (1 - alpha) e_{t-1} + alpha x_t`` per column, seeded at the first non-NaN row.

    Leading NaN rows stay NaN. Implemented with pandas ``ewm(adjust=False)``, which is causal.
    """
    return pd.DataFrame(values).ewm(alpha=alpha, adjust=False).mean().to_numpy(dtype=np.float64, copy=True)


def _lagged_ratio(prices: np.ndarray) -> np.ndarray:
    """``p_t / p_{t-1}`` with row 0 NaN."""
    ratio = np.full(prices.shape, np.nan)
    ratio[1:] = prices[1:] / prices[:-1]
    return ratio


# ----------------------------------------------------------------- indicators
def simple_returns(prices: np.ndarray) -> np.ndarray:
    """Simple returns ``r_t = p_t / p_{t-1} - 1``.

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :return: float64 ``(T, N)``, a fraction per bar (``0.01`` is +1 %); warm-up 1 row (row 0 is NaN).
    """
    prices = _as_panel("prices", prices, positive=True)
    return _lagged_ratio(prices) - 1.0


def log_returns(prices: np.ndarray) -> np.ndarray:
    """Log returns ``r_t = ln(p_t / p_{t-1})``.

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :return: float64 ``(T, N)``, natural-log return per bar; warm-up 1 row (row 0 is NaN).
    """
    prices = _as_panel("prices", prices, positive=True)
    return np.log(_lagged_ratio(prices))


def rolling_volatility(prices: np.ndarray, window: int = 20) -> np.ndarray:
    """Rolling volatility: sample standard deviation (``ddof=1``) of the last ``window`` log returns.

    ``vol_t = std(r_{t-window+1}, ..., r_t; ddof=1)`` with ``r_t = ln(p_t / p_{t-1})``.

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param window: number of returns in the window, ``>= 2`` and ``< T``.
    :return: float64 ``(T, N)``, per-bar log-return volatility (not annualised; multiply by
        ``sqrt(bars per year)`` to annualise); warm-up ``window`` rows (the first return is at row 1).
        A flat window gives exactly ``0``.
    """
    prices = _as_panel("prices", prices, positive=True)
    window = _check_window("window", window, prices.shape[0], minimum=2, offset=0)
    out = np.full(prices.shape, np.nan)
    _, out[1:] = _rolling_mean_std(np.log(prices[1:] / prices[:-1]), window, ddof=1)
    return out


def rsi(prices: np.ndarray, window: int = 14) -> np.ndarray:
    """Wilder's Relative Strength Index, rescaled to ``[-1, 1]``.

    With ``d_t = p_t - p_{t-1}``, gains ``g_t = max(d_t, 0)`` and losses ``l_t = max(-d_t, 0)`` are
    Wilder-smoothed (recursive EMA with ``alpha = 1 / window``, seeded with ``g_1``, ``l_1``) into
    ``G_t``, ``L_t``. The classic ``RSI = 100 - 100 / (1 + G / L)`` lies in ``[0, 100]``; this function
    returns ``(RSI - 50) / 50 = (G_t - L_t) / (G_t + L_t)``, which is centred and NN-friendly.
    Defined edge cases: only gains -> ``1``, only losses -> ``-1``, flat prices (``G = L = 0``) -> ``0``.

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param window: Wilder period, ``>= 1`` and ``< T``.
    :return: float64 ``(T, N)`` in ``[-1, 1]`` (dimensionless); warm-up ``window`` rows, i.e. the first
        value is at row ``window``, after ``window`` price changes.
    """
    prices = _as_panel("prices", prices, positive=True)
    window = _check_window("window", window, prices.shape[0], minimum=1, offset=0)
    change = np.full(prices.shape, np.nan)
    change[1:] = prices[1:] - prices[:-1]
    gains = _ema(np.maximum(change, 0.0), 1.0 / window)  # np.maximum keeps row 0 NaN
    losses = _ema(np.maximum(-change, 0.0), 1.0 / window)
    total = gains + losses
    out = np.zeros(prices.shape)
    np.divide(gains - losses, total, out=out, where=total > 0)
    out[:window] = np.nan
    return out


def macd(prices: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moving Average Convergence Divergence, divided by the price to be scale-free.

    ``line_t = EMA_fast(p)_t - EMA_slow(p)_t`` (span EMAs, ``alpha = 2 / (span + 1)``, seeded with
    ``p_0``), ``sig_t = EMA_signal(line)_t`` (seeded with the first valid line value) and
    ``hist_t = line_t - sig_t``. All three are returned divided by ``p_t``, i.e. as a fraction of the
    current price.

    Warm-up: an EMA started at ``p_0`` is not meaningful before it has seen ``slow`` prices, so the line
    is NaN for rows ``< slow - 1`` (``slow - 1`` rows); the signal EMA starts at row ``slow - 1`` and needs
    ``signal`` line values, so signal and histogram are NaN for rows ``< slow + signal - 2``.

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param fast: span of the fast EMA, ``>= 1`` and ``< slow``.
    :param slow: span of the slow EMA.
    :param signal: span of the signal EMA, ``>= 1``.
    :return: ``(macd_line, signal_line, histogram)``, each float64 ``(T, N)``, fraction of the price.
    """
    prices = _as_panel("prices", prices, positive=True)
    n_rows = prices.shape[0]
    fast = _check_window("fast", fast, n_rows, minimum=1, offset=-1)
    slow = _check_window("slow", slow, n_rows, minimum=2, offset=-1)
    if fast >= slow:
        raise ValueError(f"fast must be < slow, got fast={fast}, slow={slow}")
    signal = _check_window("signal", signal, n_rows, minimum=1, offset=slow - 2)
    line = _ema(prices, 2.0 / (fast + 1)) - _ema(prices, 2.0 / (slow + 1))
    line[: slow - 1] = np.nan
    signal_line = _ema(line, 2.0 / (signal + 1))
    signal_line[: slow + signal - 2] = np.nan
    histogram = line - signal_line
    return line / prices, signal_line / prices, histogram / prices


def bollinger_percent_b(prices: np.ndarray, window: int = 20, num_std: float = 2.0) -> np.ndarray:
    """Bollinger %b: position of the price within its Bollinger bands.

    ``mid_t = mean(p_{t-window+1..t})``, ``sd_t = std(p_{t-window+1..t}; ddof=0)`` (population std, as
    Bollinger defines it), ``upper/lower = mid ± num_std * sd`` and
    ``%b_t = (p_t - lower_t) / (upper_t - lower_t)``. ``0`` is the lower band, ``1`` the upper band,
    ``0.5`` the moving average; a flat window (``sd = 0``) gives ``0.5``.

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param window: band window, ``>= 2`` and ``<= T``.
    :param num_std: band half-width in standard deviations, ``> 0``.
    :return: float64 ``(T, N)``, dimensionless (bounded by ``0.5 ± sqrt(window - 1) / (2 num_std)``);
        warm-up ``window - 1`` rows.
    """
    prices = _as_panel("prices", prices, positive=True)
    window = _check_window("window", window, prices.shape[0], minimum=2, offset=-1)
    if not np.isfinite(num_std) or num_std <= 0:
        raise ValueError(f"num_std must be a finite number > 0, got {num_std!r}")
    mean, std = _rolling_mean_std(prices, window, ddof=0)
    width = 2.0 * num_std * std
    out = np.full(prices.shape, 0.5)
    np.divide(prices - (mean - num_std * std), width, out=out, where=width > 0)
    out[: window - 1] = np.nan
    return out


def average_true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int = 14) -> np.ndarray:
    """Wilder's Average True Range as a fraction of the close (ATR %).

    True range (from row 1, it needs the previous close):
    ``TR_t = max(h_t - l_t, |h_t - c_{t-1}|, |l_t - c_{t-1}|)``; ``ATR_t`` is its Wilder smoothing
    (recursive EMA with ``alpha = 1 / window``, seeded with ``TR_1``); the result is ``ATR_t / c_t``.

    :param high: high prices, shape ``(T, N)``, finite, ``> 0``, ``>= low``.
    :param low: low prices, shape ``(T, N)``, finite and ``> 0``.
    :param close: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param window: Wilder period, ``>= 1`` and ``< T``.
    :return: float64 ``(T, N)``, fraction of the close per bar (``0.02`` is 2 %), ``>= 0``;
        warm-up ``window`` rows (same as :func:`rsi`).
    """
    high = _as_panel("high", high, positive=True)
    low = _as_panel("low", low, positive=True)
    close = _as_panel("close", close, positive=True)
    if not high.shape == low.shape == close.shape:
        raise ValueError(f"high, low and close must have the same shape, got {high.shape}, {low.shape}, {close.shape}")
    if (high < low).any():
        row, col = np.argwhere(high < low)[0]
        raise ValueError(f"high < low at row {row}, column {col} (high={high[row, col]!r}, low={low[row, col]!r})")
    window = _check_window("window", window, close.shape[0], minimum=1, offset=0)
    true_range = np.full(close.shape, np.nan)
    previous = close[:-1]
    true_range[1:] = np.maximum(high[1:] - low[1:], np.maximum(np.abs(high[1:] - previous), np.abs(low[1:] - previous)))
    out = _ema(true_range, 1.0 / window) / close
    out[:window] = np.nan
    return out


def volume_zscore(volume: np.ndarray, window: int = 20) -> np.ndarray:
    """Rolling z-score of volume: ``z_t = (v_t - mean(v_{t-window+1..t})) / std(v_{t-window+1..t}; ddof=1)``.

    The window includes the current bar. A window of equal volumes (zero std) gives ``0``.

    :param volume: volumes, shape ``(T, N)``, finite and ``>= 0``.
    :param window: window length, ``>= 2`` and ``<= T``.
    :return: float64 ``(T, N)``, in standard deviations (bounded by ``(window - 1) / sqrt(window)``);
        warm-up ``window - 1`` rows.
    """
    volume = _as_panel("volume", volume)
    if (volume < 0).any():
        row, col = np.argwhere(volume < 0)[0]
        raise ValueError(f"volume must be >= 0, got {volume[row, col]!r} at row {row}, column {col}")
    window = _check_window("window", window, volume.shape[0], minimum=2, offset=-1)
    mean, std = _rolling_mean_std(volume, window, ddof=1)
    out = np.zeros(volume.shape)
    np.divide(volume - mean, std, out=out, where=std > 0)
    out[: window - 1] = np.nan
    return out
