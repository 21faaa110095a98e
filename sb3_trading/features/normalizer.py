"""Z-score normalisation of feature columns: causal (the default of every env) or fitted on a training slice.

Two kinds, both ``clip((x - mean) / std, -clip, clip)`` with the same std floor:

* :class:`CausalNormalizer` (``normalizer="expanding"``, the envs' default, or ``"rolling"``): row ``t`` is
  scaled with the mean and std of rows ``<= t`` only -- all of them (expanding) or the last ``window``
  (rolling) -- so an observation never depends on later data, whatever data the env is built on. It is
  stateless (its arguments are all it holds) and needs ``min_periods`` rows of history before it gives a
  value: earlier rows are NaN and the envs start after them::

      observations = CausalNormalizer().transform(features.values)  # (T, F) float32, NaN in the warm-up

* :class:`FeatureNormalizer` (``normalizer="fit"``): one mean and std per column fitted on the rows it is
  given. Fit it on the training period, then apply the *same* transform to validation and test data;
  fitted on the whole series it would leak the future's statistics into the past::

      normalizer = FeatureNormalizer.fit(features.values[:train_end])
      observations = normalizer.transform(features.values)  # float32, clipped

:func:`normalizer_from_dict` rebuilds either kind from its ``to_dict()`` output (e.g. a walk-forward
fold's ``normalizer.json``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sb3_trading.common.validation import check_int

# A column whose std is at most this fraction of max(|mean|, 1) is treated as constant (std := 1).
STD_EPS = 1e-12
#: the normaliser every env uses unless told otherwise (causal: statistics of rows <= t)
DEFAULT_NORMALIZER = "expanding"
#: the names ``normalizer=`` accepts; ``"rolling:<window>"`` sets the rolling window
NORMALIZER_NAMES = ("expanding", "rolling", "fit")
#: rows of history (the row itself included) a causal normaliser needs before it gives a value
DEFAULT_MIN_PERIODS = 20
#: rows in the window of ``normalizer="rolling"`` (a year of daily exchange bars)
DEFAULT_ROLLING_WINDOW = 252


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
        if state.get("kind") in ("expanding", "rolling"):
            raise ValueError(
                f"this is the state of a {state['kind']} CausalNormalizer, not of a fitted FeatureNormalizer; "
                "read it with sb3_trading.features.normalizer_from_dict"
            )
        missing = sorted({"mean", "std", "clip"} - set(state))
        if missing:
            raise ValueError(f"FeatureNormalizer state lacks keys {missing}; expected the output of to_dict()")
        return cls(state["mean"], state["std"], state["clip"])

    def __repr__(self) -> str:
        return f"FeatureNormalizer(n_features={self.n_features}, clip={self.clip})"


def _check_periods(name: str, value: Any, minimum: int) -> int:
    return check_int(name, value, minimum)  # type: ignore[return-value]


def _shift_down(cumulative: np.ndarray, lag: int) -> np.ndarray:
    """``cumulative`` delayed by ``lag`` rows along axis 0, zeros before row ``lag`` (running sums ``lag`` rows ago)."""
    out = np.zeros_like(cumulative)
    if lag < cumulative.shape[0]:
        out[lag:] = cumulative[:-lag]
    return out


def _running_extreme(values: np.ndarray, window: int | None, maximum: bool) -> np.ndarray:
    """Per column, the max (or min) of rows ``t - window + 1 .. t`` (all rows ``<= t`` when ``window`` is None).

    :param values: ``(T, F)`` float64 without NaN (rows to ignore hold ``-inf`` for the max, ``+inf`` for the min).
    :return: ``(T, F)`` float64.
    """
    if window is None:
        return (np.maximum if maximum else np.minimum).accumulate(values, axis=0)
    pad = np.full((window - 1, values.shape[1]), -np.inf if maximum else np.inf)
    view = sliding_window_view(np.concatenate([pad, values]), window, axis=0)  # (T, F, window), no copy
    return view.max(axis=-1) if maximum else view.min(axis=-1)


class CausalNormalizer:
    """Per-column z-score with *past* statistics: row ``t`` is ``clip((x_t - m_t) / s_t, -clip, clip)``.

    ``m_t`` and ``s_t`` are the mean and population std (``ddof=0``) of the rows ``<= t`` that have no NaN:
    all of them (``window=None``, an expanding window) or the last ``window`` rows ``t - window + 1 .. t``
    (a rolling window). A column that is constant over those rows (``s_t <= STD_EPS * max(|m_t|, 1)``, or
    max = min) gets ``s_t = 1``, as :meth:`FeatureNormalizer.fit` does. Row ``t`` is NaN while fewer than
    ``min_periods`` rows enter its statistics (the warm-up), and wherever ``x_t`` has a NaN.

    Changing the data after row ``t`` changes nothing at or before ``t``, so an env can use it on any data
    (its default, ``normalizer="expanding"``). It holds no fitted state: the same instance applied to other
    data normalises that data with that data's own past (:meth:`to_dict` gives only the arguments).

    :param window: rows of the rolling window, ``>= 2``; ``None`` (default) for an expanding window.
    :param min_periods: rows (the row itself included) needed before a value is given, ``>= 1`` and at
        most ``window``; each env's first decision bar comes after this warm-up.
    :param clip: bound on the absolute normalised value, ``> 0`` (``np.inf`` for none).
    """

    def __init__(self, window: int | None = None, min_periods: int = DEFAULT_MIN_PERIODS, clip: float = 10.0) -> None:
        self.window = None if window is None else _check_periods("window", window, 2)
        self.min_periods = _check_periods("min_periods", min_periods, 1)
        if self.window is not None and self.min_periods > self.window:
            raise ValueError(f"min_periods={min_periods} must be <= window={window}; lower min_periods or widen the window")
        self.clip = _check_clip(clip)

    @property
    def kind(self) -> str:
        """``"expanding"`` or ``"rolling"``."""
        return "expanding" if self.window is None else "rolling"

    def transform(self, values: np.ndarray) -> np.ndarray:
        """Normalise the rows of ``values``, in time order, each with the statistics of its own past.

        Vectorised over rows and columns: running sums of the values (centred on the first row without NaN,
        which precedes every row that uses it) give the means and variances, running max/min the constant test.

        :param values: ``(T, F)`` features, row ``t`` at bar ``t`` (oldest first); NaN marks rows to skip (warm-up).
        :return: ``(T, F)`` float32 in ``[-clip, clip]``; NaN in the warm-up (fewer than ``min_periods`` rows
            without NaN up to ``t``) and in rows of ``values`` that contain a NaN.
        :raises ValueError: if ``values`` is not 2-D or holds an infinite value.
        """
        array = np.asarray(values, dtype=np.float64)
        if array.ndim != 2:
            raise ValueError(
                f"values must have shape (T, F), rows in time order, got shape {array.shape}; a causal normaliser "
                "normalises whole series (the envs normalise their feature matrix once, then take windows of it)"
            )
        if np.isinf(array).any():
            row, col = np.argwhere(np.isinf(array))[0]
            raise ValueError(f"values has an infinite value at row {row}, column {col}; clean the features first")
        out = np.full(array.shape, np.nan, dtype=np.float32)
        valid = ~np.isnan(array).any(axis=1)  # (T,) rows that enter the statistics
        if not valid.any():
            return out
        reference = array[int(np.argmax(valid))]  # (F,) the first valid row: causal for every row that uses it
        centred = np.where(valid[:, None], array - reference, 0.0)
        sums = np.cumsum(centred, axis=0)
        squares = np.cumsum(centred * centred, axis=0)
        counts = np.cumsum(valid.astype(np.int64))
        if self.window is not None:  # rolling: the running sums minus those ``window`` rows earlier
            sums -= _shift_down(sums, self.window)
            squares -= _shift_down(squares, self.window)
            counts = counts - _shift_down(counts, self.window)
        ready = valid & (counts >= self.min_periods)
        n = np.maximum(counts, 1)[:, None].astype(np.float64)
        mean = sums / n  # centred mean
        std = np.sqrt(np.maximum(squares / n - mean * mean, 0.0))
        high = _running_extreme(np.where(valid[:, None], centred, -np.inf), self.window, maximum=True)
        low = _running_extreme(np.where(valid[:, None], centred, np.inf), self.window, maximum=False)
        flat = high == low
        constant = (std <= STD_EPS * np.maximum(np.abs(mean + reference), 1.0)) | flat
        std[constant] = 1.0
        mean[flat] = high[flat]  # exact, where the running sums of a constant stretch may leave rounding
        z = (centred - mean) / std
        np.clip(z, -self.clip, self.clip, out=z)
        out[ready] = z[ready]
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable arguments (there is no fitted state): ``{"kind", "window", "min_periods", "clip"}``."""
        return {"kind": self.kind, "window": self.window, "min_periods": self.min_periods, "clip": self.clip}

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> CausalNormalizer:
        """Rebuild a normaliser from :meth:`to_dict` output.

        :raises ValueError: if a key is missing, ``kind`` is not a causal one, or a value is invalid.
        """
        missing = sorted({"kind", "window", "min_periods", "clip"} - set(state))
        if missing:
            raise ValueError(f"CausalNormalizer state lacks keys {missing}; expected the output of to_dict()")
        if state["kind"] not in ("expanding", "rolling") or (state["kind"] == "expanding") != (state["window"] is None):
            raise ValueError(
                f"CausalNormalizer state has kind={state['kind']!r} with window={state['window']!r}; expected "
                "'expanding' with window None or 'rolling' with a window"
            )
        return cls(state["window"], state["min_periods"], state["clip"])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CausalNormalizer) and self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash((self.window, self.min_periods, self.clip))

    def __repr__(self) -> str:
        window = "" if self.window is None else f"window={self.window}, "
        return f"CausalNormalizer({window}min_periods={self.min_periods}, clip={self.clip})"


#: what the envs' ``normalizer=`` argument accepts
NormalizerArg = FeatureNormalizer | CausalNormalizer | str | None


def make_normalizer(spec: NormalizerArg, values: np.ndarray, warmup: int = 0) -> FeatureNormalizer | CausalNormalizer | None:
    """Resolve an env's ``normalizer=`` argument into the normaliser it applies to its feature matrix.

    :param spec: ``"expanding"`` (:class:`CausalNormalizer`, the default), ``"rolling"`` (its rolling window of
        :data:`DEFAULT_ROLLING_WINDOW` rows) or ``"rolling:<window>"``, ``"fit"`` (a :class:`FeatureNormalizer`
        fitted on ``values[warmup:]``: the env's *own* data, so its statistics leak into its past: build the
        env on the training slice and pass its normaliser to later data), a normaliser instance (used as is)
        or ``None`` (raw features).
    :param values: ``(T, F)`` the env's feature matrix, used by ``"fit"`` only.
    :param warmup: leading rows of ``values`` with NaN (skipped by ``"fit"``).
    :return: the normaliser, or ``None``.
    :raises ValueError: an unknown name or a bad rolling window; ``TypeError``: another type.
    """
    if isinstance(spec, str):
        name, _, argument = spec.partition(":")
        if name == "fit" and not argument:
            return FeatureNormalizer.fit(np.asarray(values)[warmup:])
        if name == "expanding" and not argument:
            return CausalNormalizer()
        if name == "rolling":
            if not argument:
                return CausalNormalizer(window=DEFAULT_ROLLING_WINDOW)
            try:
                window = int(argument)
            except ValueError:
                window = None
            if window is None or window < 2:
                raise ValueError(f"normalizer {spec!r} needs an integer window >= 2 after 'rolling:', e.g. 'rolling:60'")
            return CausalNormalizer(window=window, min_periods=min(DEFAULT_MIN_PERIODS, window))
        raise ValueError(
            f"normalizer must be one of {list(NORMALIZER_NAMES)} (or 'rolling:<window>'), a FeatureNormalizer, a "
            f"CausalNormalizer or None, got {spec!r}"
        )
    if spec is None or isinstance(spec, (FeatureNormalizer, CausalNormalizer)):
        return spec
    raise TypeError(
        f"normalizer must be one of {list(NORMALIZER_NAMES)}, a FeatureNormalizer, a CausalNormalizer or None, "
        f"got {type(spec).__name__}"
    )


def normalizer_from_dict(state: dict[str, Any] | None) -> FeatureNormalizer | CausalNormalizer | None:
    """Rebuild a normaliser of either kind from its ``to_dict()`` output (``None`` stays ``None``: raw features).

    A state with ``kind`` ``"expanding"``/``"rolling"`` is a :class:`CausalNormalizer`; one without ``kind`` (or
    ``kind="fit"``) a :class:`FeatureNormalizer`.
    """
    if state is None:
        return None
    if not isinstance(state, dict):
        raise TypeError(f"normalizer state must be a dict from to_dict() or None, got {type(state).__name__}")
    if state.get("kind", "fit") in ("expanding", "rolling"):
        return CausalNormalizer.from_dict(state)
    return FeatureNormalizer.from_dict({key: value for key, value in state.items() if key != "kind"})
