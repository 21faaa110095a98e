"""Purged k-fold, walk-forward and CPCV splits: no training index inside a test block's purge/embargo zone."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sb3_trading.evaluation.splits import (
    combinatorial_purged_splits,
    cpcv_paths,
    cpcv_test_groups,
    purged_kfold,
    walk_forward_bounds,
    walk_forward_splits,
)


def _forbidden(train: np.ndarray, test: np.ndarray, purge: int, embargo: int) -> np.ndarray:
    """Training indices within [test_start - purge, test_end + embargo)."""
    return train[(train >= test[0] - purge) & (train < test[-1] + 1 + embargo)]


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(2, 400),
    n_splits=st.integers(2, 12),
    purge=st.integers(0, 30),
    embargo=st.integers(0, 30),
)
def test_purged_kfold_properties(n, n_splits, purge, embargo):
    if n_splits > n:
        with pytest.raises(ValueError, match="n_splits"):
            list(purged_kfold(n, n_splits, purge, embargo))
        return
    try:
        folds = list(purged_kfold(n, n_splits, purge, embargo))
    except ValueError as exc:
        assert "no training rows" in str(exc)
        # it only refuses when some test block's forbidden zone really covers everything else
        blocks = np.array_split(np.arange(n), n_splits)
        assert any(b[0] - purge <= 0 and b[-1] + 1 + embargo >= n for b in blocks)
        return
    assert len(folds) == n_splits
    tests = np.concatenate([test for _, test in folds])
    np.testing.assert_array_equal(tests, np.arange(n))  # the test blocks partition the series, in order
    for train, test in folds:
        assert train.dtype == test.dtype == np.int64
        assert np.all(np.diff(test) == 1)  # contiguous
        assert np.all(np.diff(train) > 0)  # sorted, unique
        assert train.size > 0 and _forbidden(train, test, purge, embargo).size == 0
        # and nothing else was dropped: train = everything outside [start - purge, end + embargo)
        expected = np.setdiff1d(np.arange(n), np.arange(max(0, test[0] - purge), min(n, test[-1] + 1 + embargo)))
        np.testing.assert_array_equal(train, expected)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(2, 600),
    n_splits=st.integers(1, 10),
    purge=st.integers(0, 20),
    embargo=st.integers(0, 20),
    expanding=st.booleans(),
    train_size=st.one_of(st.none(), st.integers(1, 200)),
)
def test_walk_forward_train_always_precedes_test(n, n_splits, purge, embargo, expanding, train_size):
    try:
        folds = list(
            walk_forward_splits(n, n_splits, train_size=train_size, purge=purge, embargo=embargo, expanding=expanding)
        )
    except ValueError as exc:
        assert "too few" in str(exc) or "leaves" in str(exc)
        return
    assert len(folds) == n_splits
    sizes = {test.size for _, test in folds}
    assert len(sizes) == 1  # equal test blocks
    assert folds[-1][1][-1] == n - 1  # the last block ends at the last bar
    for k, (train, test) in enumerate(folds):
        assert train.size > 0 and np.all(np.diff(train) == 1) and np.all(np.diff(test) == 1)
        assert train[-1] < test[0] - purge  # train strictly before test, with the purge gap
        assert train[-1] == test[0] - purge - 1  # and right up to it
        assert _forbidden(train, test, purge, embargo).size == 0
        if k:
            assert test[0] == folds[k - 1][1][-1] + 1  # consecutive, non-overlapping test blocks
        if expanding:
            assert train[0] == 0
        elif train_size is not None:
            assert train.size == train_size
    if not expanding:
        assert len({train.size for train, _ in folds}) == 1


def test_walk_forward_by_hand():
    assert walk_forward_bounds(100, n_splits=4) == [(0, 20, 20, 40), (0, 40, 40, 60), (0, 60, 60, 80), (0, 80, 80, 100)]
    # test blocks of (100 - 5) // 4 = 23 bars at the end; rolling windows as long as the first one (31 - 5)
    assert walk_forward_bounds(100, n_splits=3, purge=5, expanding=False) == [
        (0, 26, 31, 54),
        (23, 49, 54, 77),
        (46, 72, 77, 100),
    ]
    # train_size and test_size: as many folds as fit
    assert walk_forward_bounds(50, train_size=20, test_size=10) == [(0, 20, 20, 30), (0, 30, 30, 40), (0, 40, 40, 50)]
    assert walk_forward_bounds(50, train_size=20, test_size=10, expanding=False) == [
        (0, 20, 20, 30),
        (10, 30, 30, 40),
        (20, 40, 40, 50),
    ]


def test_purged_kfold_by_hand():
    folds = list(purged_kfold(10, 3, purge=1, embargo=2))
    assert [test.tolist() for _, test in folds] == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert [train.tolist() for train, _ in folds] == [[6, 7, 8, 9], [0, 1, 2, 9], [0, 1, 2, 3, 4, 5]]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 1}, "n must"),
        ({"n": 10, "n_splits": 1}, "n_splits must"),
        ({"n": 10, "purge": -1}, "purge must"),
        ({"n": 10, "embargo": 1.5}, "embargo must"),
        ({"n": 10, "n_splits": 11}, "more than"),
    ],
)
def test_purged_kfold_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        list(purged_kfold(**kwargs))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 10}, "needs n_splits"),
        ({"n": 10, "n_splits": 0}, "n_splits must"),
        ({"n": 10, "n_splits": 20}, "too few"),
        ({"n": 10, "n_splits": 2, "test_size": 0}, "test_size must"),
        ({"n": 10, "train_size": 8, "test_size": 5}, "no fold"),
        ({"n": 10, "n_splits": 2, "test_size": 5}, "leaves"),
        ({"n": 10, "n_splits": 2, "purge": True}, "purge must"),
    ],
)
def test_walk_forward_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        walk_forward_bounds(**kwargs)


# --- combinatorial purged cross-validation (AFML ch. 12) ---


@settings(max_examples=150, deadline=None)
@given(
    n=st.integers(2, 300),
    n_groups=st.integers(2, 8),
    n_test_groups=st.integers(1, 7),
    purge=st.integers(0, 20),
    embargo=st.integers(0, 20),
)
def test_cpcv_properties(n, n_groups, n_test_groups, purge, embargo):
    if n_test_groups >= n_groups:
        with pytest.raises(ValueError, match="n_test_groups"):
            list(combinatorial_purged_splits(n, n_groups, n_test_groups, purge, embargo))
        return
    if n_groups > n:
        with pytest.raises(ValueError, match="n_groups"):
            list(combinatorial_purged_splits(n, n_groups, n_test_groups, purge, embargo))
        return
    blocks = np.array_split(np.arange(n), n_groups)
    try:
        splits = list(combinatorial_purged_splits(n, n_groups, n_test_groups, purge, embargo))
    except ValueError as exc:
        assert "no training rows" in str(exc)
        return
    combos = cpcv_test_groups(n_groups, n_test_groups)
    assert len(splits) == len(combos) == math.comb(n_groups, n_test_groups)
    times_tested = np.zeros(n_groups, dtype=int)
    for (train, test), chosen in zip(splits, combos, strict=True):
        assert train.dtype == test.dtype == np.int64
        assert np.all(np.diff(train) > 0) and np.all(np.diff(test) > 0)  # sorted, unique
        np.testing.assert_array_equal(test, np.concatenate([blocks[g] for g in chosen]))
        assert np.intersect1d(train, test).size == 0
        # no training index in the purge/embargo zone of *any* test group, adjacent or not
        zone = np.zeros(n, dtype=bool)
        for g in chosen:
            assert _forbidden(train, blocks[g], purge, embargo).size == 0
            zone[max(0, blocks[g][0] - purge) : blocks[g][-1] + 1 + embargo] = True
        # train, test and the purged/embargoed rows partition all rows: nothing else was dropped
        np.testing.assert_array_equal(train, np.flatnonzero(~zone))
        purged = np.setdiff1d(np.flatnonzero(zone), test)
        assert train.size + test.size + purged.size == n
        times_tested[list(chosen)] += 1
    np.testing.assert_array_equal(times_tested, math.comb(n_groups - 1, n_test_groups - 1))


def test_cpcv_with_one_test_group_is_purged_kfold():
    for (train_a, test_a), (train_b, test_b) in zip(
        combinatorial_purged_splits(50, 5, 1, purge=3, embargo=2), purged_kfold(50, 5, purge=3, embargo=2), strict=True
    ):
        np.testing.assert_array_equal(train_a, train_b)
        np.testing.assert_array_equal(test_a, test_b)


def test_cpcv_by_hand():
    # 12 bars, 6 groups of 2; groups 0 and 2 tested: purge 1 before, embargo 1 after each
    splits = list(combinatorial_purged_splits(12, 6, 2, purge=1, embargo=1))
    assert len(splits) == 15
    train, test = splits[1]  # (0, 2)
    assert test.tolist() == [0, 1, 4, 5]
    assert train.tolist() == [7, 8, 9, 10, 11]  # 2 embargoed after group 0; 3 purged before and 6 embargoed after group 2
    train, test = splits[-1]  # (4, 5)
    assert test.tolist() == [8, 9, 10, 11] and train.tolist() == [0, 1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize("n_groups, n_test_groups", [(6, 2), (5, 1), (5, 4), (8, 3), (2, 1)])
def test_cpcv_paths(n_groups, n_test_groups):
    paths = cpcv_paths(n_groups, n_test_groups)
    combos = cpcv_test_groups(n_groups, n_test_groups)
    n_paths = math.comb(n_groups - 1, n_test_groups - 1)
    assert n_paths * n_groups == n_test_groups * math.comb(n_groups, n_test_groups)  # phi = k / N * C(N, k)
    assert paths.shape == (n_paths, n_groups) and paths.dtype == np.int64
    pairs = {(int(paths[p, g]), g) for p in range(n_paths) for g in range(n_groups)}
    # every (split, test group) pair is used by exactly one path, and path p's group g comes from a split testing g
    assert pairs == {(split, g) for split, chosen in enumerate(combos) for g in chosen}
    assert len(pairs) == paths.size


def test_cpcv_paths_afml_figure():
    # AFML fig. 12.1 (N = 6, k = 2): 15 splits, 5 paths; path 1 is S1, S1, S2, S3, S4, S5 (0-based here)
    paths = cpcv_paths()
    assert paths.shape == (5, 6)
    assert paths[0].tolist() == [0, 0, 1, 2, 3, 4]
    assert paths[-1].tolist() == [4, 8, 11, 13, 14, 14]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 1}, "n must"),
        ({"n": 10, "n_groups": 1}, "n_groups must"),
        ({"n": 10, "n_test_groups": 0}, "n_test_groups must"),
        ({"n": 10, "n_groups": 4, "n_test_groups": 4}, "less than n_groups"),
        ({"n": 10, "n_groups": 11, "n_test_groups": 2}, "more than"),
        ({"n": 10, "purge": -1}, "purge must"),
        ({"n": 10, "embargo": 1.5}, "embargo must"),
        ({"n": 6, "n_groups": 3, "n_test_groups": 2, "purge": 2, "embargo": 2}, "no training rows"),
    ],
)
def test_cpcv_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        list(combinatorial_purged_splits(**kwargs))
    if "n_groups" in match or "n_test_groups" in match:
        with pytest.raises(ValueError, match=match):
            cpcv_paths(kwargs.get("n_groups", 6), kwargs.get("n_test_groups", 2))
