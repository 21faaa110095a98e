"""Z-score normalisation of feature columns, fitted on a training slice only.

Fit the statistics on the training period, then apply the *same* transform to
validation and test data: statistics computed over the whole series would
leak the future into the past::

    normalizer = FeatureNormalizer.fit(features.values[:train_end])
    observations = normalizer.transform(features.values)  # float32, clipped
"""

from __future__ import annotations

from typing import Any

import numpy as np

# A column whose std is at most this fraction of max(|mean|, 1) is treated as constant (std := 1).
STD_EPS = 1e-12


def _check_clip(clip: float) -> float:
    try:
        clip = float(clip)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"clip must be a number, got {type(clip).__name__} {clip!r}") from exc
    if not clip > 0:  # also rejects NaN
        raise ValueError(f"clip must be > 0 (np.inf disables clipping), got {clip}")
    return clip


class FeatureNormalizer:
    """Per-column z-score ``clip((x - mean) / std, -clip, clip)``.

    Build it with :meth:`fit` on training rows, or from saved statistics with :meth:`from_dict`.
    Attributes are plain (read-only) NumPy arrays, so instances pickle.

    :param mean: per-column mean, shape ``(F,)``, finite.
    :param std: per-column scale, shape ``(F,)``, finite and ``> 0``.
    :param clip: bound on the absolute normalised value, ``> 0`` (``np.inf`` for none).
    """

    def __init__(self, mean: np.ndarray, std: np.ndarray, clip: float = 10.0) -> None:
        mean = np.array(mean, dtype=np.float64).reshape(-1)
        std = np.array(std, dtype=np.float64).reshape(-1)
        if mean.shape != std.shape:
            raise ValueError(f"mean and std must have the same length, got {mean.shape[0]} and {std.shape[0]}")
        if mean.size == 0:
            raise ValueError("FeatureNormalizer needs at least one feature column, got 0")
        if not np.isfinite(mean).all():
            col = int(np.flatnonzero(~np.isfinite(mean))[0])
            raise ValueError(f"mean must be finite, column {col} has mean={mean[col]!r}")
        if not (np.isfinite(std).all() and (std > 0).all()):
            col = int(np.flatnonzero(~(np.isfinite(std) & (std > 0)))[0])
            raise ValueError(f"std must be finite and > 0, column {col} has std={std[col]!r}")
        mean.setflags(write=False)
        std.setflags(write=False)
        self.mean = mean
        self.std = std
        self.clip = _check_clip(clip)

    @property
    def n_features(self) -> int:
        """Number of columns ``F`` the normaliser was fitted on."""
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, values: np.ndarray, clip: float = 10.0) -> FeatureNormalizer:
        """Fit the per-column mean and (population, ``ddof=0``) std on ``values``.

        Rows containing a NaN (indicator warm-up) are ignored. A (numerically) constant column gets
        ``std = 1`` so that it maps to ``x - mean`` instead of dividing by zero.

        :param values: training features, shape ``(T_train, F)``; pass only the training slice.
        :param clip: bound on the absolute normalised value, ``> 0``.
        :return: the fitted normaliser.
        :raises ValueError: wrong shape, an infinite value, or no row without NaN.
        """
        clip = _check_clip(clip)
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 2:
            raise ValueError(f"values must have shape (T, F), got shape {array.shape}")
        if np.isinf(array).any():
            row, col = np.argwhere(np.isinf(array))[0]
            raise ValueError(f"values has an infinite value at row {row}, column {col}; clean the features first")
        valid = array[~np.isnan(array).any(axis=1)]
        if valid.shape[0] == 0:
            raise ValueError(
                f"cannot fit on {array.shape[0]} rows: every row contains a NaN (warm-up); fit on rows after the warm-up"
            )
        mean = valid.mean(axis=0)
        std = valid.std(axis=0)
        constant = (std <= STD_EPS * np.maximum(np.abs(mean), 1.0)) | (valid.max(axis=0) == valid.min(axis=0))
        std[constant] = 1.0
        return cls(mean, std, clip)

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Normalise ``values`` with the fitted statistics.

        :param values: array whose last axis has ``n_features`` columns, e.g. ``(T, F)`` or ``(B, window, F)``.
        :return: float32 array of the same shape, in ``[-clip, clip]``; NaN stays NaN.
        :raises ValueError: if the number of columns differs from the fitted one.
        """
        array = np.asarray(values, dtype=np.float64)
        if array.ndim == 0 or array.shape[-1] != self.n_features:
            raise ValueError(
                f"values has {array.shape[-1] if array.ndim else 0} columns (shape {array.shape}) but the normaliser "
                f"was fitted on {self.n_features}; use the same features as for fit"
            )
        out = (array - self.mean) / self.std
        np.clip(out, -self.clip, self.clip, out=out)
        return out.astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable statistics: ``{"mean": [...], "std": [...], "clip": float}``."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "clip": self.clip}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> FeatureNormalizer:
        """Rebuild a normaliser from :meth:`to_dict` output.

        :raises ValueError: if a key is missing or the values are invalid.
        """
        missing = sorted({"mean", "std", "clip"} - set(state))
        if missing:
            raise ValueError(f"FeatureNormalizer state lacks keys {missing}; expected the output of to_dict()")
        return cls(state["mean"], state["std"], state["clip"])

    def __repr__(self) -> str:
        return f"FeatureNormalizer(n_features={self.n_features}, clip={self.clip})"
