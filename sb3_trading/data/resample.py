r"""Stationary block bootstrap of real markets: fresh training paths built from the bars of one history.

An agent trained on one historical path can memorise it. :func:`bootstrap_paths` turns one
:class:`~sb3_trading.data.market_data.MarketData` into any number of resampled paths of the same
length, assets, feature names, timestamps and calendar, using the stationary bootstrap of Politis &
Romano (1994) on *bars*:

1. Each bar ``i >= 1`` is described relative to the previous close: the ratios
   ``close_i / close_{i-1}``, ``open_i / close_{i-1}``, ``high_i / close_{i-1}`` and
   ``low_i / close_{i-1}`` (those fields the data has), and the spread to its own close
   ``spread_i / close_i``, plus its ``volume_i`` and its ``features`` row ``i``. Bar 0 has no
   previous close and is never drawn.
2. A sequence of ``T - 1`` source bars is drawn from ``1 .. T-1`` in blocks of consecutive bars
   whose lengths are geometric with mean ``mean_block`` (wrapping from bar ``T-1`` back to bar 1),
   by :func:`~sb3_trading.common.bootstrap.stationary_bootstrap_indices`. All assets share the drawn
   bar, so the cross-section (correlations, common shocks) is kept.
3. The path is rebuilt: row 0 is the data's row 0 unchanged; then
   ``close_k = close_{k-1} * (close ratio of the drawn bar)``, and open, high and low are the new
   previous close times the drawn bar's ratios; volume and the features row are copied, and the
   spread keeps its ratio to the close.

What this keeps, by construction:

* **valid bars**: a source bar with ``low <= open, close <= high`` (all ``> 0``) keeps that order
  after multiplying every ratio by the same positive previous close (floating-point rounding is
  monotone, so the order holds exactly);
* **nothing from outside the slice**: every bar comes from inside the ``MarketData`` given, so
  resampling ``data.slice(a, b)`` (a training split) never draws a bar of ``[b, T)``, nor the bar
  ``a`` itself, whose return would be measured from the close of bar ``a - 1``;
* **the return distribution** of the slice (each bar's close-to-close return is one of its bars'),
  and, within a block, its serial dependence (volatility clusters, regimes) up to about
  ``mean_block`` bars;
* **feature alignment**: a bar's features travel with that bar. The relation between a feature at
  bar ``j`` and the *next* bar's return (what a policy can learn from it) survives where bar ``j + 1``
  of the source follows bar ``j`` in the path, i.e. within a block: about a fraction
  ``1 - 1 / mean_block`` of transitions (a little less: the wrap from bar ``T-1`` to bar 1 breaks it
  too, and the transition from row 0 to the first drawn bar). At a block boundary the feature is
  followed by an unrelated bar's return. With ``mean_block = 1`` (the i.i.d. bootstrap) a leading
  signal is worth nothing; with the default 20 it keeps about 95 % of its edge.

Features are copied, not recomputed: a feature that is a function of past prices (a moving average, a
momentum) matches the resampled prices only within blocks. Compute such features from the resampled
paths (the features layer, after resampling) when that matters. Timestamps are the data's, unchanged,
so a bar that followed a weekend in the source may land on a weekday in a path.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from sb3_trading.common.bootstrap import stationary_bootstrap_indices
from sb3_trading.common.validation import check_int, check_real
from sb3_trading.data.market_data import MarketData

#: fewest rows a market needs to be resampled (row 0 plus at least two distinct source bars)
MIN_ROWS = 3
#: the price fields rebuilt from ratios to the previous close (``prices`` is the close)
RATIO_FIELDS = ("open", "high", "low")


def _check_data(data: object) -> MarketData:
    if not isinstance(data, MarketData):
        raise TypeError(f"data must be a MarketData, got {type(data).__name__}")
    if data.n_steps < MIN_ROWS:
        raise ValueError(f"data must have at least {MIN_ROWS} rows to be bootstrapped, got {data.n_steps}")
    starts = tuple(getattr(data, "path_starts", None) or (0,))
    if len(starts) > 1:
        raise ValueError(
            f"data holds {len(starts)} stacked paths (path_starts={list(starts)}); bootstrap one path at a time, "
            "since a bar at a path boundary has no previous close of its own"
        )
    return data


def _path_seeds(seed: int | None, n_paths: int) -> list[np.random.SeedSequence]:
    """One ``SeedSequence`` per path ``k``, derived from ``(seed, k)``: path ``k`` does not depend on ``n_paths``."""
    entropy = np.random.SeedSequence(seed).entropy  # fresh OS entropy, shared by all paths, when seed is None
    return [np.random.SeedSequence(entropy, spawn_key=(k,)) for k in range(n_paths)]


def bootstrap_rows(n_steps: int, n_paths: int, mean_block: float = 20.0, seed: int | None = 0) -> np.ndarray:
    """``(n_paths, n_steps)`` source rows of stationary-bootstrap paths of a ``n_steps``-row market.

    Column 0 is always row 0 (kept unchanged); columns ``1 .. n_steps-1`` are source bars in
    ``1 .. n_steps-1``, drawn in blocks of geometric length with mean ``mean_block`` that wrap from
    bar ``n_steps-1`` back to bar 1. Path ``k`` uses its own generator seeded by
    ``SeedSequence(seed, spawn_key=(k,))``, so the same ``seed`` gives the same rows and path ``k``
    is the same whatever ``n_paths``. :func:`bootstrap_paths` builds its paths from these rows.

    :param n_steps: number of rows ``T`` of the market, ``>= 3``.
    :param n_paths: number of paths, ``>= 1``.
    :param mean_block: mean block length in bars, ``>= 1`` (``1`` is the i.i.d. bootstrap of bars).
    :param seed: a non-negative integer, or ``None`` for fresh entropy.
    :return: integer array of shape ``(n_paths, n_steps)``.
    """
    n_steps = int(check_int("n_steps", n_steps, MIN_ROWS))  # type: ignore[arg-type]
    n_paths = int(check_int("n_paths", n_paths, 1))  # type: ignore[arg-type]
    mean_block = float(check_real("mean_block", mean_block, 1.0))  # type: ignore[arg-type]
    seed = check_int("seed", seed, 0, allow_none=True)
    rows = np.zeros((n_paths, n_steps), dtype=np.int64)
    for k, seed_k in enumerate(_path_seeds(seed, n_paths)):
        rows[k, 1:] = 1 + stationary_bootstrap_indices(n_steps - 1, 1, mean_block, np.random.default_rng(seed_k))[0]
    return rows


def bootstrap_paths(data: MarketData, n_paths: int, mean_block: float = 20.0, seed: int | None = 0) -> list[MarketData]:
    """``n_paths`` stationary-bootstrap resamples of ``data``'s bars (see the module docstring).

    Each path has ``data``'s shape ``(T, N)`` / ``(T, F)``, its asset and feature names, timestamps,
    ``periods_per_year``, ``calendar`` and ``timezone``, and the same optional OHLCV fields. Row 0 is
    ``data``'s row 0; each later bar is a bar of ``data`` (its close, open, high and low as ratios to
    the previous close, its volume and features copied, its spread at the same ratio to the new close),
    so OHLC stays valid and every bar comes from inside ``data``. The relation of a feature to the next
    bar's return survives within blocks, about a fraction ``1 - 1 / mean_block`` of transitions.

    :param data: the market to resample (e.g. a training slice), at least 3 rows, one path.
    :param n_paths: number of paths to draw, ``>= 1``.
    :param mean_block: mean block length in bars, ``>= 1``; larger keeps more serial dependence,
        ``1`` draws bars independently.
    :param seed: a non-negative integer, or ``None`` for fresh entropy. Path ``k`` depends only on
        ``(seed, k)``: the same seed gives the same paths, and the first paths do not change with ``n_paths``.
    :return: a list of ``n_paths`` :class:`MarketData`.
    """
    data = _check_data(data)
    rows = bootstrap_rows(data.n_steps, n_paths, mean_block, seed)  # (n_paths, T)
    prev_close = data.prices[:-1]  # (T-1, N): the close each bar i >= 1 is measured from
    close_ratio = np.concatenate([data.prices[:1], data.prices[1:] / prev_close])  # row 0: the start price itself
    ratios = {name: getattr(data, name)[1:] / prev_close for name in RATIO_FIELDS if getattr(data, name) is not None}
    spread_ratio = None if data.spread is None else data.spread / data.prices  # (T, N): to the bar's own close

    paths = []
    for source in rows:
        # sequential products close_k = close_{k-1} * ratio_k, starting from close_0 (source[0] = 0)
        close = np.cumprod(close_ratio[source], axis=0)  # (T, N)
        fields: dict[str, np.ndarray] = {}
        for name, ratio in ratios.items():
            values = np.empty_like(close)
            values[0] = getattr(data, name)[0]
            values[1:] = close[:-1] * ratio[source[1:] - 1]
            fields[name] = values
        if data.volume is not None:
            fields["volume"] = data.volume[source]
        if spread_ratio is not None:  # the drawn bar's spread relative to its close, at the new close
            fields["spread"] = close * spread_ratio[source]
        paths.append(replace(data, prices=close, features=data.features[source], **fields))
    return paths


def bootstrap_market(data: MarketData, mean_block: float = 20.0, seed: int | None = 0) -> MarketData:
    """One stationary-bootstrap path of ``data``: ``bootstrap_paths(data, 1, mean_block, seed)[0]``.

    :param data: the market to resample, at least 3 rows.
    :param mean_block: mean block length in bars, ``>= 1``.
    :param seed: a non-negative integer, or ``None`` for fresh entropy.
    :return: a :class:`MarketData` shaped like ``data``.
    """
    return bootstrap_paths(data, 1, mean_block, seed)[0]
