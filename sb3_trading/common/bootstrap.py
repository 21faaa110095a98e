"""The stationary bootstrap's index generator (Politis & Romano, 1994), shared by every layer.

The stationary bootstrap resamples *blocks* of consecutive positions of a length-``n`` series whose
lengths are geometric with mean ``mean_block`` (``p = 1 / mean_block``), wrapping around the end, so
every resample is itself stationary:

* the first index is uniform on ``0 .. n-1``;
* each next index is, with probability ``1 - p``, the previous index ``+ 1`` (mod ``n``), and with
  probability ``p`` a new uniform index.

:func:`stationary_bootstrap_indices` lives here, below both users, because the data layer resamples
markets with it (:mod:`sb3_trading.data.resample`) and the evaluation layer resamples returns with it
(:mod:`sb3_trading.evaluation.bootstrap`, which re-exports it), and data must not import evaluation.
Like the rest of :mod:`sb3_trading.common`, this module imports nothing from the package (only NumPy).
"""

from __future__ import annotations

import math

import numpy as np


def stationary_bootstrap_indices(
    n: int, n_boot: int, mean_block: float, rng: np.random.Generator | int | None = None
) -> np.ndarray:
    """``(n_boot, n)`` indices of stationary-bootstrap resamples of a length-``n`` series.

    Position ``j`` of a row starts a new block with probability ``p = 1 / mean_block`` (always at
    ``j = 0``); within a block the index advances by one, modulo ``n``. Vectorised: the start of the
    current block is a running maximum over the block-start positions.

    :param n: series length, ``>= 1``.
    :param n_boot: number of resamples, ``>= 1``.
    :param mean_block: mean block length in bars, ``>= 1`` (``1`` is the iid bootstrap).
    :param rng: a NumPy ``Generator`` or a seed.
    """
    if n < 1 or n_boot < 1:
        raise ValueError(f"n and n_boot must be >= 1, got n={n}, n_boot={n_boot}")
    if not (math.isfinite(mean_block) and mean_block >= 1.0):
        raise ValueError(f"mean_block must be a finite number >= 1 (bars), got {mean_block!r}")
    rng = np.random.default_rng(rng)
    positions = np.arange(n)
    new_block = rng.random((n_boot, n)) < 1.0 / mean_block
    new_block[:, 0] = True
    block_start = np.maximum.accumulate(np.where(new_block, positions, 0), axis=1)  # (n_boot, n)
    origins = rng.integers(0, n, size=(n_boot, n))
    first = np.take_along_axis(origins, block_start, axis=1)  # the random origin drawn where the block began
    return (first + positions - block_start) % n
