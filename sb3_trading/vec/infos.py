"""Lean infos of a batched step: ``(n_envs,)`` arrays, and per-env ``info`` dicts built only when read.

A batched step of 1,024 accounts would spend more time building 1,024 ``info`` dicts than computing
the accounting. :class:`StepInfos` is what :class:`~sb3_trading.vec.BatchedVecEnv` returns as
``infos`` instead: a sequence of ``n_envs`` dicts, as SB3 expects (``infos[i]``, ``len``, iteration,
slices), whose standard keys are also in :attr:`StepInfos.arrays` as ``(n_envs,)`` arrays (``(n_envs, N)``
for ``positions``/``weights``), so a callback reads a step without touching a dict.

``infos[i]`` is a :class:`LazyInfo`: a real ``dict`` holding the keys SB3 reads on every step
(``TimeLimit.truncated``, and ``terminal_observation``/``episode`` when the episode ended), which fills in
the standard keys (with the single env's builder, :func:`~sb3_trading.envs.info.standard_info`, so
every value equals the single env's) the first time anything else is read: a missing key, ``get``,
``in``, iteration, ``keys``/``items``/``values``, ``len``, ``copy``, ``==``, ``repr``, pickling. A key
set before that (e.g. ``VecNormalize`` rewriting ``terminal_observation``) keeps its new value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, overload

import numpy as np


class LazyInfo(dict):
    """One account's ``info`` of a batched step: a ``dict`` whose standard keys are filled in on first read.

    :param eager: the entries held from the start (SB3's per-step keys).
    :param source: the step's :class:`StepInfos`, which builds the rest.
    :param row: this account's index in the batch.
    """

    __slots__ = ("_row", "_source")

    def __init__(self, eager: dict[str, Any], source: StepInfos, row: int) -> None:
        super().__init__(eager)
        self._source: StepInfos | None = source
        self._row = row

    def _fill(self) -> None:
        """Add the standard keys (before the eager ones, as the single env orders them); at most once."""
        source = self._source
        if source is None:
            return
        self._source = None
        full = source.build_row(self._row)
        full.update(dict.items(self))  # keys written since (and the eager ones) win
        dict.clear(self)
        dict.update(self, full)

    def _lazy(self, key: Any) -> bool:
        """Whether ``key`` is one of the not-yet-filled standard keys."""
        return self._source is not None and key in self._source.lazy_keys and not dict.__contains__(self, key)

    def __missing__(self, key: Any) -> Any:
        if self._lazy(key):
            self._fill()
            return dict.__getitem__(self, key)
        raise KeyError(key)

    def get(self, key: Any, default: Any = None) -> Any:
        if self._lazy(key):
            self._fill()
        return dict.get(self, key, default)

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or self._lazy(key)

    def __iter__(self) -> Iterator[Any]:
        self._fill()
        return dict.__iter__(self)

    def __len__(self) -> int:
        self._fill()
        return dict.__len__(self)

    def __eq__(self, other: object) -> bool:
        self._fill()
        if isinstance(other, LazyInfo):
            other._fill()
        return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        self._fill()
        return dict.__repr__(self)

    def __delitem__(self, key: Any) -> None:
        self._fill()
        dict.__delitem__(self, key)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return dict, (self.copy(),)

    def __or__(self, other: Any) -> dict[str, Any]:
        return self.copy() | other

    def __ror__(self, other: Any) -> dict[str, Any]:
        return dict(other) | self.copy()

    def copy(self) -> dict[str, Any]:
        """A plain ``dict`` with every key."""
        self._fill()
        return dict(dict.items(self))

    def keys(self) -> Any:
        self._fill()
        return dict.keys(self)

    def values(self) -> Any:
        self._fill()
        return dict.values(self)

    def items(self) -> Any:
        self._fill()
        return dict.items(self)

    def pop(self, key: Any, *default: Any) -> Any:
        self._fill()
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[Any, Any]:
        self._fill()
        return dict.popitem(self)

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if self._lazy(key):
            self._fill()
        return dict.setdefault(self, key, default)


class StepInfos(Sequence[dict[str, Any]]):
    """The ``infos`` of one batched step: ``n_envs`` :class:`LazyInfo` dicts, created on first access, and
    the step's values as arrays.

    :param n_envs: number of accounts.
    :param arrays: the standard keys (then ``timestamp``, the env's extras) -> ``(n_envs, ...)`` arrays.
    :param build_row: ``row -> dict``: the standard ``info`` of that account (the single env's builder).
    :param eager: per-step entries every dict holds from the start, name -> ``(n_envs,)`` array
        (e.g. ``TimeLimit.truncated``); they are added to :attr:`arrays` too.
    """

    def __init__(
        self,
        n_envs: int,
        arrays: dict[str, np.ndarray],
        build_row: Callable[[int], dict[str, Any]],
        eager: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.n_envs = n_envs
        #: name -> the step's values of every account (``(n_envs,)``; ``(n_envs, N)`` for positions and weights)
        self.arrays = arrays
        #: the keys a :class:`LazyInfo` fills in when read
        self.lazy_keys = frozenset(arrays)
        self._build_row = build_row
        self._eager = eager or {}
        if eager:
            self.arrays = {**arrays, **eager}
        self._rows: list[LazyInfo | None] = [None] * n_envs

    def build_row(self, row: int) -> dict[str, Any]:
        """The standard ``info`` of account ``row`` (a fresh plain dict)."""
        return self._build_row(row)

    def _info(self, row: int) -> LazyInfo:
        info = self._rows[row]
        if info is None:
            eager = {name: values[row].item() for name, values in self._eager.items()}
            info = self._rows[row] = LazyInfo(eager, self, row)
        return info

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._info(row) for row in range(*index.indices(self.n_envs))]
        row = int(index)
        if row < 0:
            row += self.n_envs
        if not 0 <= row < self.n_envs:
            raise IndexError(f"info index {index} out of range for {self.n_envs} envs")
        return self._info(row)

    def __len__(self) -> int:
        return self.n_envs

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return (self._info(row) for row in range(self.n_envs))

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as the plain list of its dicts (the builder is a closure over the step)."""
        return list, ([info.copy() for info in self],)

    def __repr__(self) -> str:
        return f"StepInfos(n_envs={self.n_envs}, keys={list(self.arrays)})"


__all__ = ["LazyInfo", "StepInfos"]
