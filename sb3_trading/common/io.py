"""File helpers shared by every module: strict-JSON conversion and atomic writes.

A crash never leaves a half-written file: :func:`atomic_write` writes into a temporary file in the
destination's folder and renames it over the destination (atomic on POSIX and Windows);
:func:`jsonable` turns NumPy values, NaN and paths into what strict JSON accepts.

One implementation: these are :mod:`sb3_trading.utils`' functions (which import nothing from the rest of
the package), under the shared helpers' roof next to :mod:`sb3_trading.common.validation`.
"""

from __future__ import annotations

from sb3_trading.utils import atomic_write, atomic_write_json, jsonable, save_model_atomic

__all__ = ["atomic_write", "atomic_write_json", "jsonable", "save_model_atomic"]
