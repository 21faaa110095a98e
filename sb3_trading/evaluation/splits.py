"""Purged cross-validation splits over time indices (López de Prado, *Advances in Financial ML*, ch. 7 and 12).

The splitters work on positions ``0 .. n-1`` of a time series (bars) and yield
``(train_idx, test_idx)`` pairs of sorted ``int64`` NumPy arrays. In
:func:`purged_kfold` and the walk-forward splits each test set is one contiguous
block ``[test_start, test_end)``; in :func:`combinatorial_purged_splits` (CPCV) it
is the union of ``n_test_groups`` such blocks, and the rules below apply around
*each* of them.

* **Purging** — a training sample at ``i`` whose label looks ``h`` bars ahead
  (it uses prices up to ``i + h``) overlaps a test block starting at
  ``test_start`` when ``i + h >= test_start``. ``purge = h`` removes the
  training indices ``[test_start - purge, test_start)``.
* **Embargo** — serial correlation lets information from the test block leak
  into training samples right after it; ``embargo`` removes the training
  indices ``[test_end, test_end + embargo)``.

So with every splitter, no training index ``i`` satisfies
``test_start - purge <= i < test_end + embargo`` for any test block.

A reinforcement-learning agent in ``sb3_trading`` that decides at ``t`` is
rewarded with the mark from ``t`` to ``t + 1``, and a training slice of rows
``[a, b)`` only marks rows ``< b``: contiguous walk-forward slices need no purge
for the reward itself. Use ``purge`` for longer label horizons (multi-bar
rewards, n-step targets) and as a safety margin.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator

import numpy as np

from sb3_trading.common.validation import check_int

Split = tuple[np.ndarray, np.ndarray]


def _check_int(name: str, value: object, minimum: int) -> int:
    return check_int(name, value, minimum)  # type: ignore[return-value]


def purged_kfold(n: int, n_splits: int = 5, purge: int = 0, embargo: int = 0) -> Iterator[Split]:
    """Purged k-fold: ``n_splits`` contiguous test blocks, training on everything else minus purge/embargo.

    Test blocks are ``numpy.array_split(arange(n), n_splits)`` (sizes differ by at most one). Training
    indices lie before *and after* the test block (as in AFML's ``PurgedKFold``).

    :param n: number of bars.
    :param n_splits: number of folds, ``2 <= n_splits <= n``.
    :param purge: bars before each test block removed from training (the label horizon), ``>= 0``.
    :param embargo: bars after each test block removed from training, ``>= 0``.
    :return: an iterator of ``(train_idx, test_idx)``; a fold whose training set is empty raises ``ValueError``.
    """
    n = _check_int("n", n, 2)
    n_splits = _check_int("n_splits", n_splits, 2)
    purge = _check_int("purge", purge, 0)
    embargo = _check_int("embargo", embargo, 0)
    if n_splits > n:
        raise ValueError(f"n_splits={n_splits} is more than the n={n} bars")
    indices = np.arange(n, dtype=np.int64)
    bounds = np.cumsum([0, *(len(block) for block in np.array_split(indices, n_splits))])
    for test_start, test_end in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        keep = (indices < test_start - purge) | (indices >= test_end + embargo)
        train = indices[keep]
        if train.size == 0:
            raise ValueError(
                f"fold with test rows [{test_start}, {test_end}) has no training rows left after purge={purge} and "
                f"embargo={embargo} (n={n}); use more data, more folds or a smaller purge/embargo"
            )
        yield train, indices[test_start:test_end]


def walk_forward_bounds(
    n: int,
    n_splits: int | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    purge: int = 0,
    embargo: int = 0,
    expanding: bool = True,
) -> list[tuple[int, int, int, int]]:
    """Row bounds ``(train_start, train_end, test_start, test_end)`` (half-open) of each walk-forward fold.

    The test blocks are the last ``n_splits * test_size`` bars, consecutive and non-overlapping.
    Fold ``k`` trains on ``[train_start, test_start - purge)``: from bar 0 when ``expanding``,
    else the ``train_size`` bars before ``test_start - purge`` (a rolling window). Training always
    ends before its test block starts, so ``embargo`` (which removes bars *after* a test block from
    training) never removes anything here; it is validated and accepted for symmetry with
    :func:`purged_kfold`.

    Sizes: give ``n_splits`` (then ``test_size`` defaults to the largest size leaving the first
    training window at least as long as one test block, or ``train_size`` bars when that is given),
    or ``train_size`` and ``test_size`` (then ``n_splits`` is as many folds as fit).

    :param n: number of bars.
    :param n_splits: number of folds, ``>= 1``.
    :param train_size: bars of the first (expanding) or every (rolling) training window.
    :param test_size: bars per test block.
    :param purge: bars between a training window's end and its test block, ``>= 0``.
    :param embargo: validated, no effect (see above).
    :param expanding: grow the training window from bar 0 (``True``) or roll it (``False``).
    :raises ValueError: on inconsistent sizes or a fold that cannot fit.
    """
    n = _check_int("n", n, 2)
    purge = _check_int("purge", purge, 0)
    _check_int("embargo", embargo, 0)
    if train_size is not None:
        train_size = _check_int("train_size", train_size, 1)
    if n_splits is not None:
        n_splits = _check_int("n_splits", n_splits, 1)
    if test_size is None:
        if n_splits is None:
            raise ValueError("walk-forward needs n_splits, or train_size and test_size")
        if train_size is None:
            test_size = (n - purge) // (n_splits + 1)
        else:
            test_size = (n - purge - train_size) // n_splits
        if test_size < 1:
            raise ValueError(
                f"n={n} bars are too few for n_splits={n_splits} walk-forward folds with purge={purge}"
                + ("" if train_size is None else f" and train_size={train_size}")
            )
    else:
        test_size = _check_int("test_size", test_size, 1)
    if n_splits is None:
        if train_size is None:
            raise ValueError("walk-forward needs n_splits, or train_size and test_size")
        n_splits = (n - purge - train_size) // test_size
        if n_splits < 1:
            raise ValueError(
                f"n={n} bars hold no fold of train_size={train_size} + purge={purge} + test_size={test_size} bars"
            )
    first_test = n - n_splits * test_size
    if train_size is None:
        train_size = first_test - purge
    if first_test - purge < train_size or train_size < 1:
        raise ValueError(
            f"walk-forward with n={n}, n_splits={n_splits}, test_size={test_size}, purge={purge} leaves "
            f"{first_test - purge} bars for the first training window, need train_size={train_size} >= 1"
        )
    bounds = []
    for k in range(n_splits):
        test_start = first_test + k * test_size
        train_end = test_start - purge
        train_start = 0 if expanding else train_end - train_size
        bounds.append((train_start, train_end, test_start, test_start + test_size))
    return bounds


def walk_forward_splits(
    n: int,
    n_splits: int | None = None,
    train_size: int | None = None,
    test_size: int | None = None,
    purge: int = 0,
    embargo: int = 0,
    expanding: bool = True,
) -> Iterator[Split]:
    """Walk-forward (anchored or rolling) splits: each fold trains on bars strictly before its test block.

    Arguments and layout as :func:`walk_forward_bounds`; yields ``(train_idx, test_idx)`` arrays.
    """
    for train_start, train_end, test_start, test_end in walk_forward_bounds(
        n, n_splits, train_size, test_size, purge, embargo, expanding
    ):
        yield np.arange(train_start, train_end, dtype=np.int64), np.arange(test_start, test_end, dtype=np.int64)


def _check_cpcv(n_groups: int, n_test_groups: int) -> tuple[int, int]:
    n_groups = _check_int("n_groups", n_groups, 2)
    n_test_groups = _check_int("n_test_groups", n_test_groups, 1)
    if n_test_groups >= n_groups:
        raise ValueError(
            f"n_test_groups={n_test_groups} must be less than n_groups={n_groups} (some groups must be left to train on)"
        )
    return n_groups, n_test_groups


def cpcv_test_groups(n_groups: int = 6, n_test_groups: int = 2) -> list[tuple[int, ...]]:
    """The test groups of each CPCV split, in the order :func:`combinatorial_purged_splits` yields them.

    All ``binomial(n_groups, n_test_groups)`` subsets of ``0 .. n_groups-1``, in lexicographic
    (``itertools.combinations``) order; each group is in ``binomial(n_groups - 1, n_test_groups - 1)`` of them.

    :param n_groups: number of groups ``N``, ``>= 2``.
    :param n_test_groups: groups per test set ``k``, ``1 <= k < N``.
    :return: one sorted tuple of ``k`` group indices per split.
    """
    n_groups, n_test_groups = _check_cpcv(n_groups, n_test_groups)
    return list(itertools.combinations(range(n_groups), n_test_groups))


def combinatorial_purged_splits(
    n: int, n_groups: int = 6, n_test_groups: int = 2, purge: int = 0, embargo: int = 0
) -> Iterator[Split]:
    """Combinatorial purged cross-validation (CPCV; López de Prado, *Advances in Financial ML*, 2018, ch. 12).

    The bars are cut into ``n_groups`` contiguous groups, ``numpy.array_split(arange(n), n_groups)`` (as
    :func:`purged_kfold`'s folds). Each of the ``binomial(n_groups, n_test_groups)`` subsets of
    ``n_test_groups`` groups (order: :func:`cpcv_test_groups`) is one split's test set; training is every
    other bar except, around **each** test group ``[start, end)``, the ``purge`` bars before it
    ``[start - purge, start)`` and the ``embargo`` bars after it ``[end, end + embargo)`` — the definitions
    of the module docstring, so ``combinatorial_purged_splits(n, k, 1, purge, embargo)`` is
    ``purged_kfold(n, k, purge, embargo)``. Each group is tested ``binomial(n_groups - 1, n_test_groups - 1)``
    times; :func:`cpcv_paths` stitches the test groups into that many full backtest paths.

    :param n: number of bars.
    :param n_groups: number of groups ``N``, ``2 <= N <= n`` (AFML's example: 6).
    :param n_test_groups: groups per test set ``k``, ``1 <= k < N`` (AFML's example: 2).
    :param purge: bars before each test group removed from training (the label horizon), ``>= 0``.
    :param embargo: bars after each test group removed from training, ``>= 0``.
    :return: an iterator of ``(train_idx, test_idx)``; a split whose training set is empty raises ``ValueError``.
    """
    n = _check_int("n", n, 2)
    combos = cpcv_test_groups(n_groups, n_test_groups)
    purge = _check_int("purge", purge, 0)
    embargo = _check_int("embargo", embargo, 0)
    if n_groups > n:
        raise ValueError(f"n_groups={n_groups} is more than the n={n} bars")
    indices = np.arange(n, dtype=np.int64)
    bounds = np.cumsum([0, *(len(block) for block in np.array_split(indices, n_groups))]).tolist()
    for chosen in combos:
        test = np.zeros(n, dtype=bool)
        forbidden = np.zeros(n, dtype=bool)
        for g in chosen:
            start, end = bounds[g], bounds[g + 1]
            test[start:end] = True
            forbidden[max(0, start - purge) : end + embargo] = True
        train = indices[~forbidden]
        if train.size == 0:
            raise ValueError(
                f"split testing groups {list(chosen)} has no training rows left after purge={purge} and "
                f"embargo={embargo} (n={n}); use more data, fewer test groups or a smaller purge/embargo"
            )
        yield train, indices[test]


def cpcv_paths(n_groups: int = 6, n_test_groups: int = 2) -> np.ndarray:
    """Assign each (split, test group) of CPCV to one of the backtest paths (AFML, ch. 12).

    There are ``phi = k / N * binomial(N, k) = binomial(N - 1, k - 1)`` paths. Group ``g`` is tested by
    ``phi`` splits; in the order of :func:`cpcv_test_groups`, the ``p``-th of them supplies path ``p``'s
    out-of-sample predictions on group ``g``. So every path covers all ``N`` groups exactly once, every
    (split, test group) pair belongs to exactly one path, and path ``p`` is a complete out-of-sample
    backtest over all bars, each group predicted by a model that never trained on it.

    :param n_groups: number of groups ``N``, ``>= 2``.
    :param n_test_groups: groups per test set ``k``, ``1 <= k < N``.
    :return: ``(phi, N)`` ``int64`` array: ``paths[p, g]`` is the index of the split (in the order of
        :func:`combinatorial_purged_splits`) whose test predictions path ``p`` uses on group ``g``.
    """
    combos = cpcv_test_groups(n_groups, n_test_groups)
    n_paths = math.comb(n_groups - 1, n_test_groups - 1)
    paths = np.empty((n_paths, n_groups), dtype=np.int64)
    seen = [0] * n_groups
    for split, chosen in enumerate(combos):
        for g in chosen:
            paths[seen[g], g] = split
            seen[g] += 1
    return paths
