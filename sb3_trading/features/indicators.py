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
def _window_sum_range(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum, max and min of every full ``window``-row window of ``values``: ``(T - window + 1, N)`` each, row ``j``
    over rows ``j .. j + window - 1`` (summed in a fixed order, so each depends on its own window only)."""
    n_valid = values.shape[0] - window + 1
    total = values[:n_valid].copy()
    highest = total.copy()
    lowest = total.copy()
    for k in range(1, window):
        shifted = values[k : k + n_valid]
        total += shifted
        np.maximum(highest, shifted, out=highest)
        np.minimum(lowest, shifted, out=lowest)
    return total, highest, lowest


def _rolling_mean_std(values: np.ndarray, window: int, ddof: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact (two-pass) rolling mean and standard deviation over the last ``window`` rows.

    Sums run over the ``window`` shifted views in a fixed order, so row ``t`` depends on rows
    ``t - window + 1 .. t`` only and costs ``O(T N window)`` time, ``O(T N)`` memory.

    :param values: finite ``(T, N)`` array with ``T >= window``.
    :return: ``(mean, std)``, each ``(T, N)`` with rows ``< window - 1`` NaN; ``std`` is exactly ``0``
        where every value in the window is equal.
    """
    n_valid = values.shape[0] - window + 1
    total, highest, lowest = _window_sum_range(values, window)
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


# ------------------------------------------------------- parameterised indicators (issue 21)
def _rolling_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Rolling sum over the last ``window`` rows, added left to right over shifted views (rows ``< window - 1`` NaN).

    Row ``t`` depends on rows ``t - window + 1 .. t`` only (no running cumsum, so no drift and no dependence on
    older rows); ``O(T N window)`` time. NaN inputs propagate.
    """
    out = np.full(values.shape, np.nan)
    n_valid = values.shape[0] - window + 1
    if n_valid <= 0:
        return out
    total = values[:n_valid].copy()
    for k in range(1, window):
        total += values[k : k + n_valid]
    out[window - 1 :] = total
    return out


def _rolling_channel(high: np.ndarray, low: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``window``-bar price channel: highest high ``HH``, lowest low ``LL`` and width ``HH - LL``, each
    ``(T, N)`` over the last ``window`` rows (rows ``< window - 1`` NaN)."""
    highest = np.full(high.shape, np.nan)
    lowest = np.full(low.shape, np.nan)
    n_valid = high.shape[0] - window + 1
    top = high[:n_valid].copy()
    bottom = low[:n_valid].copy()
    for k in range(1, window):
        np.maximum(top, high[k : k + n_valid], out=top)
        np.minimum(bottom, low[k : k + n_valid], out=bottom)
    highest[window - 1 :] = top
    lowest[window - 1 :] = bottom
    return highest, lowest, highest - lowest


def _rolling_central_moments(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Exact (two-pass) rolling mean and central moments ``m_k = mean((x - mean)^k)``, ``k = 2, 3, 4``.

    :param values: finite ``(T, N)`` array with ``T >= window``.
    :return: ``(mean, m2, m3, m4)`` over the ``window`` rows ending at each row, each ``(T, N)`` with rows
        ``< window - 1`` NaN; a window of equal values has ``m2 = m3 = m4 = 0`` exactly.
    """
    n_valid = values.shape[0] - window + 1
    total, highest, lowest = _window_sum_range(values, window)
    mean = total / window
    flat = highest == lowest
    m2, m3, m4 = np.zeros_like(mean), np.zeros_like(mean), np.zeros_like(mean)
    for k in range(window):
        deviation = values[k : k + n_valid] - mean
        deviation[flat] = 0.0
        square = deviation * deviation
        m2 += square
        m3 += square * deviation
        m4 += square * square
    outputs = []
    for moment in (mean, m2 / window, m3 / window, m4 / window):
        full = np.full(values.shape, np.nan)
        full[window - 1 :] = moment
        outputs.append(full)
    return outputs[0], outputs[1], outputs[2], outputs[3]


def _returns_of(prices: np.ndarray) -> np.ndarray:
    """Log returns ``(T - 1, N)`` of a validated price panel (row ``i`` is the return at bar ``i + 1``)."""
    return np.log(prices[1:] / prices[:-1])


def _check_volume(volume: np.ndarray) -> np.ndarray:
    volume = _as_panel("volume", volume)
    if (volume < 0).any():
        row, col = np.argwhere(volume < 0)[0]
        raise ValueError(f"volume must be >= 0, got {volume[row, col]!r} at row {row}, column {col}")
    return volume


def _check_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    high = _as_panel("high", high, positive=True)
    low = _as_panel("low", low, positive=True)
    close = _as_panel("close", close, positive=True)
    if not high.shape == low.shape == close.shape:
        raise ValueError(f"high, low and close must have the same shape, got {high.shape}, {low.shape}, {close.shape}")
    if (high < low).any():
        row, col = np.argwhere(high < low)[0]
        raise ValueError(f"high < low at row {row}, column {col} (high={high[row, col]!r}, low={low[row, col]!r})")
    return high, low, close


def momentum(prices: np.ndarray, lookback: int = 20) -> np.ndarray:
    """Momentum as a simple return over ``lookback`` bars: ``m_t = p_t / p_{t-lookback} - 1``.

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param lookback: bars back, ``>= 1`` and ``< T``.
    :return: float64 ``(T, N)``, a fraction (``0.05`` is +5 % over the lookback); warm-up ``lookback`` rows.
    """
    prices = _as_panel("prices", prices, positive=True)
    lookback = _check_window("lookback", lookback, prices.shape[0], minimum=1, offset=0)
    out = np.full(prices.shape, np.nan)
    out[lookback:] = prices[lookback:] / prices[:-lookback] - 1.0
    return out


def sma_ratio(prices: np.ndarray, fast: int = 5, slow: int = 20) -> np.ndarray:
    """Ratio of two simple moving averages: ``SMA_fast(p)_t / SMA_slow(p)_t - 1`` (windows include bar ``t``).

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param fast: fast window, ``>= 1`` and ``< slow``.
    :param slow: slow window, ``<= T``.
    :return: float64 ``(T, N)``, a fraction (``> 0``: the fast average is above the slow one); warm-up
        ``slow - 1`` rows.
    """
    prices = _as_panel("prices", prices, positive=True)
    n_rows = prices.shape[0]
    fast = _check_window("fast", fast, n_rows, minimum=1, offset=-1)
    slow = _check_window("slow", slow, n_rows, minimum=2, offset=-1)
    if fast >= slow:
        raise ValueError(f"fast must be < slow, got fast={fast}, slow={slow}")
    return (_rolling_sum(prices, fast) / fast) / (_rolling_sum(prices, slow) / slow) - 1.0


def ema_ratio(prices: np.ndarray, fast: int = 12, slow: int = 26) -> np.ndarray:
    """Ratio of two span EMAs (``alpha = 2 / (span + 1)``, seeded with ``p_0``): ``EMA_fast_t / EMA_slow_t - 1``.

    As for :func:`macd`, the value is NaN until the slow EMA has seen ``slow`` prices.

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param fast: span of the fast EMA, ``>= 1`` and ``< slow``.
    :param slow: span of the slow EMA, ``<= T``.
    :return: float64 ``(T, N)``, a fraction; warm-up ``slow - 1`` rows.
    """
    prices = _as_panel("prices", prices, positive=True)
    n_rows = prices.shape[0]
    fast = _check_window("fast", fast, n_rows, minimum=1, offset=-1)
    slow = _check_window("slow", slow, n_rows, minimum=2, offset=-1)
    if fast >= slow:
        raise ValueError(f"fast must be < slow, got fast={fast}, slow={slow}")
    out = _ema(prices, 2.0 / (fast + 1)) / _ema(prices, 2.0 / (slow + 1)) - 1.0
    out[: slow - 1] = np.nan
    return out


def price_zscore(prices: np.ndarray, window: int = 20) -> np.ndarray:
    """Rolling z-score of the price: ``(p_t - mean(p_{t-window+1..t})) / std(p_{t-window+1..t}; ddof=1)``.

    A flat window gives ``0``.

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param window: window length, ``>= 2`` and ``<= T``.
    :return: float64 ``(T, N)`` in standard deviations (bounded by ``(window - 1) / sqrt(window)``); warm-up
        ``window - 1`` rows.
    """
    prices = _as_panel("prices", prices, positive=True)
    window = _check_window("window", window, prices.shape[0], minimum=2, offset=-1)
    mean, std = _rolling_mean_std(prices, window, ddof=1)
    out = np.zeros(prices.shape)
    np.divide(prices - mean, std, out=out, where=std > 0)
    out[: window - 1] = np.nan
    return out


def stochastic_k(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int = 14) -> np.ndarray:
    """Stochastic oscillator %K rescaled to ``[-1, 1]``: ``2 (c_t - LL_t) / (HH_t - LL_t) - 1``.

    ``HH_t`` / ``LL_t`` are the highest high / lowest low of the last ``window`` bars (bar ``t`` included).
    The classic %K in ``[0, 100]`` is ``50 (x + 1)``. A flat window (``HH = LL``) gives ``0``. Pass the close
    as ``high`` and ``low`` when the data has no high/low.

    :param high: high prices, shape ``(T, N)``, ``>= low``.
    :param low: low prices, shape ``(T, N)``, ``> 0``.
    :param close: close prices, shape ``(T, N)``, ``> 0``.
    :param window: window length, ``>= 1`` and ``<= T``.
    :return: float64 ``(T, N)`` in ``[-1, 1]``; warm-up ``window - 1`` rows.
    """
    high, low, close = _check_range(high, low, close)
    window = _check_window("window", window, close.shape[0], minimum=1, offset=-1)
    highest, lowest, width = _rolling_channel(high, low, window)
    out = np.zeros(close.shape)
    np.divide(2.0 * (close - lowest), width, out=out, where=width > 0)
    out -= np.where(width > 0, 1.0, 0.0)
    out[: window - 1] = np.nan
    return out


def williams_r(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int = 14) -> np.ndarray:
    """Williams %R as a fraction in ``[-1, 0]``: ``-(HH_t - c_t) / (HH_t - LL_t)`` (the classic value / 100).

    ``0`` is a close at the window's highest high, ``-1`` at its lowest low; a flat window gives ``-0.5``.

    :param high: high prices, shape ``(T, N)``, ``>= low`` (the close when the data has none).
    :param low: low prices, shape ``(T, N)``, ``> 0``.
    :param close: close prices, shape ``(T, N)``, ``> 0``.
    :param window: window length, ``>= 1`` and ``<= T``.
    :return: float64 ``(T, N)`` in ``[-1, 0]``; warm-up ``window - 1`` rows.
    """
    high, low, close = _check_range(high, low, close)
    window = _check_window("window", window, close.shape[0], minimum=1, offset=-1)
    highest, lowest, width = _rolling_channel(high, low, window)
    out = np.full(close.shape, -0.5)
    np.divide(close - highest, width, out=out, where=width > 0)
    out[: window - 1] = np.nan
    return out


def obv_flow(close: np.ndarray, volume: np.ndarray, window: int = 20) -> np.ndarray:
    """On-balance volume made scale-free: the OBV change over ``window`` bars divided by the volume traded.

    ``OBV_t = sum_{s <= t} sign(c_s - c_{s-1}) v_s``; this returns
    ``(OBV_t - OBV_{t-window}) / sum(v_{t-window+1..t}) = sum sign(dc_s) v_s / sum v_s`` over the last
    ``window`` bars: ``1`` when all volume came on up bars, ``-1`` on down bars. A window without volume gives ``0``.

    :param close: close prices, shape ``(T, N)``, ``> 0``.
    :param volume: volumes, shape ``(T, N)``, ``>= 0``.
    :param window: number of price changes, ``>= 1`` and ``< T``.
    :return: float64 ``(T, N)`` in ``[-1, 1]`` (dimensionless); warm-up ``window`` rows.
    """
    close = _as_panel("close", close, positive=True)
    volume = _check_volume(volume)
    if close.shape != volume.shape:
        raise ValueError(f"close and volume must have the same shape, got {close.shape}, {volume.shape}")
    window = _check_window("window", window, close.shape[0], minimum=1, offset=0)
    signed = np.full(close.shape, np.nan)
    signed[1:] = np.sign(close[1:] - close[:-1]) * volume[1:]
    traded = np.full(close.shape, np.nan)
    traded[1:] = volume[1:]
    flow, total = _rolling_sum(signed, window), _rolling_sum(traded, window)
    out = np.zeros(close.shape)
    np.divide(flow, total, out=out, where=total > 0)
    out[:window] = np.nan
    return out


def vwap_ratio(price: np.ndarray, close: np.ndarray, volume: np.ndarray, window: int = 20) -> np.ndarray:
    """Close relative to its rolling volume-weighted average price: ``c_t / VWAP_t - 1``.

    ``VWAP_t = sum(x_s v_s) / sum(v_s)`` over the last ``window`` bars, with ``x`` the typical price
    ``(h + l + c) / 3`` when the data has high and low, else the close (the caller passes ``price``). A window
    without volume falls back to the plain mean of ``x``.

    :param price: the averaged price ``x``, shape ``(T, N)``, ``> 0``.
    :param close: close prices, shape ``(T, N)``, ``> 0``.
    :param volume: volumes, shape ``(T, N)``, ``>= 0``.
    :param window: window length, ``>= 1`` and ``<= T``.
    :return: float64 ``(T, N)``, a fraction; warm-up ``window - 1`` rows.
    """
    price = _as_panel("price", price, positive=True)
    close = _as_panel("close", close, positive=True)
    volume = _check_volume(volume)
    window = _check_window("window", window, close.shape[0], minimum=1, offset=-1)
    weighted, total = _rolling_sum(price * volume, window), _rolling_sum(volume, window)
    vwap = _rolling_sum(price, window) / window
    np.divide(weighted, total, out=vwap, where=total > 0)
    return close / vwap - 1.0


def range_pct(high: np.ndarray, low: np.ndarray, close: np.ndarray, window: int = 14) -> np.ndarray:
    """Mean bar range as a fraction of the close: ``mean((h_s - l_s) / c_s)`` over the last ``window`` bars.

    :param high: high prices, shape ``(T, N)``, ``>= low``.
    :param low: low prices, shape ``(T, N)``, ``> 0``.
    :param close: close prices, shape ``(T, N)``, ``> 0``.
    :param window: window length, ``>= 1`` and ``<= T``.
    :return: float64 ``(T, N)``, ``>= 0`` (``0.02`` is 2 % of the close per bar); warm-up ``window - 1`` rows.
    """
    high, low, close = _check_range(high, low, close)
    window = _check_window("window", window, close.shape[0], minimum=1, offset=-1)
    return _rolling_sum((high - low) / close, window) / window


def rolling_skew(prices: np.ndarray, window: int = 60) -> np.ndarray:
    """Rolling skewness of log returns, bias-corrected as pandas' ``rolling(window).skew()``.

    With central moments ``m_k`` of the last ``window`` returns:
    ``G1 = sqrt(n (n - 1)) / (n - 2) * m3 / m2^1.5`` (``n = window``, the adjusted Fisher-Pearson coefficient).
    A window of equal returns gives ``0`` (pandas gives NaN there).

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param window: number of returns, ``>= 3`` and ``< T``.
    :return: float64 ``(T, N)``, dimensionless; warm-up ``window`` rows.
    """
    prices = _as_panel("prices", prices, positive=True)
    window = _check_window("window", window, prices.shape[0], minimum=3, offset=0)
    _, m2, m3, _ = _rolling_central_moments(_returns_of(prices), window)
    out = np.full(prices.shape, np.nan)
    value = np.zeros(m2.shape)
    np.divide(m3, m2**1.5, out=value, where=m2 > 0)
    value *= np.sqrt(window * (window - 1.0)) / (window - 2.0)
    value[: window - 1] = np.nan
    out[1:] = value
    return out


def rolling_kurtosis(prices: np.ndarray, window: int = 60) -> np.ndarray:
    """Rolling excess kurtosis of log returns, bias-corrected as pandas' ``rolling(window).kurt()``.

    ``G2 = ((n + 1) g2 + 6) (n - 1) / ((n - 2) (n - 3))`` with ``g2 = m4 / m2^2 - 3`` (``n = window``); ``0`` for
    a normal distribution. A window of equal returns gives ``0`` (pandas gives NaN there).

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param window: number of returns, ``>= 4`` and ``< T``.
    :return: float64 ``(T, N)``, dimensionless; warm-up ``window`` rows.
    """
    prices = _as_panel("prices", prices, positive=True)
    window = _check_window("window", window, prices.shape[0], minimum=4, offset=0)
    _, m2, _, m4 = _rolling_central_moments(_returns_of(prices), window)
    n = float(window)
    ratio = np.zeros(m2.shape)
    np.divide(m4, m2 * m2, out=ratio, where=m2 > 0)
    value = ((n + 1.0) * (ratio - 3.0) + 6.0) * (n - 1.0) / ((n - 2.0) * (n - 3.0))
    value[~(m2 > 0)] = 0.0
    value[: window - 1] = np.nan
    out = np.full(prices.shape, np.nan)
    out[1:] = value
    return out


def rolling_autocorr(prices: np.ndarray, window: int = 20) -> np.ndarray:
    """Lag-1 autocorrelation of log returns: Pearson correlation of the ``window`` pairs ``(r_s, r_{s-1})``.

    ``s = t - window + 1 .. t``, as pandas' ``r.rolling(window).corr(r.shift(1))``. A pair series with a
    constant side (flat returns) gives ``0``.

    :param prices: close prices, shape ``(T, N)``, finite and ``> 0``.
    :param window: number of pairs, ``>= 3`` and ``< T - 1``.
    :return: float64 ``(T, N)`` in ``[-1, 1]``; warm-up ``window + 1`` rows (the first pair is at row 2).
    """
    prices = _as_panel("prices", prices, positive=True)
    window = _check_window("window", window, prices.shape[0], minimum=3, offset=1)
    returns = _returns_of(prices)
    current, previous = returns[1:], returns[:-1]  # row i: the pair at bar i + 2
    mean_x, std_x = _rolling_mean_std(current, window, ddof=0)
    mean_y, std_y = _rolling_mean_std(previous, window, ddof=0)
    n_valid = current.shape[0] - window + 1
    cross = np.zeros((n_valid, current.shape[1]))
    for k in range(window):
        cross += (current[k : k + n_valid] - mean_x[window - 1 :]) * (previous[k : k + n_valid] - mean_y[window - 1 :])
    scale = std_x[window - 1 :] * std_y[window - 1 :] * window
    value = np.zeros(cross.shape)
    np.divide(cross, scale, out=value, where=scale > 0)
    np.clip(value, -1.0, 1.0, out=value)
    out = np.full(prices.shape, np.nan)
    out[window + 1 :] = value
    return out


def volume_ratio(volume: np.ndarray, window: int = 20) -> np.ndarray:
    """Volume relative to its rolling mean: ``v_t / mean(v_{t-window+1..t})`` (bar ``t`` included).

    A window without volume gives ``1``.

    :param volume: volumes, shape ``(T, N)``, ``>= 0``.
    :param window: window length, ``>= 2`` and ``<= T``.
    :return: float64 ``(T, N)`` in ``[0, window]`` (dimensionless); warm-up ``window - 1`` rows.
    """
    volume = _check_volume(volume)
    window = _check_window("window", window, volume.shape[0], minimum=2, offset=-1)
    mean = _rolling_sum(volume, window) / window
    out = np.ones(volume.shape)
    np.divide(volume, mean, out=out, where=mean > 0)
    out[: window - 1] = np.nan
    return out
