"""Batched look-back windows with one fancy-index, for vectorised environments."""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from sb3_trading.common.validation import is_int


@lru_cache(maxsize=64)
def window_offsets(window: int) -> np.ndarray:
    """Read-only offsets ``[-window + 1, ..., 0]`` (int64), cached per ``window``."""
    offsets = np.arange(1 - window, 1, dtype=np.int64)
    offsets.setflags(write=False)
    return offsets


def gather_windows(values: np.ndarray, t: np.ndarray, window: int) -> np.ndarray:
    """Stack the look-back windows ending at each ``t[b]``, rows ``t[b] - window + 1 .. t[b]`` inclusive.

    One fancy-index ``values[t[:, None] + offsets]``; the result is a new array (a copy), oldest row first.

    :param values: array of shape ``(T, F)`` (any dtype).
    :param t: integer array of shape ``(B,)``, the last row of each window; ``window - 1 <= t[b] < T``.
    :param window: window length, ``>= 1``.
    :return: array of shape ``(B, window, F)`` with ``values``' dtype.
    :raises ValueError: if a window would start before row 0 or end after the last row.
    """
    values = np.asarray(values)
    if values.ndim != 2:
        raise ValueError(f"values must have shape (T, F), got shape {values.shape}")
    t = np.asarray(t)
    if t.ndim != 1:
        raise ValueError(f"t must have shape (B,), got shape {t.shape}")
    if not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"t must be an integer array, got dtype {t.dtype}")
    if not is_int(window) or window < 1:
        raise ValueError(f"window must be an int >= 1, got {window!r}")
    if t.size:
        lo, hi = int(t.min()), int(t.max())
        if lo - window + 1 < 0:
            raise ValueError(f"t={lo} is too early for window={window}: the window would start at row {lo - window + 1} < 0")
        if hi >= values.shape[0]:
            raise ValueError(f"t={hi} is out of range for values with T={values.shape[0]} rows")
    return values[t[:, None] + window_offsets(int(window))]
