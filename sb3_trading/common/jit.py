"""The one way this package compiles a kernel: :func:`njit`, numba's ``njit`` with an on-disk cache.

Every hot loop of the accounting core and of the envs' dynamics is a plain Python function over NumPy
arrays and scalars, decorated with :func:`njit`. numba compiles it on first call and caches the machine
code beside the module (``cache=True``), so later processes load it in milliseconds. With the environment
variable ``NUMBA_DISABLE_JIT=1`` the same functions run as ordinary Python (for a debugger, a profiler or
coverage) and give the same results: there is no second implementation to keep in step.

Kernels follow three rules so that they run identically compiled and uncompiled:

* arguments are float64/int64/bool arrays and Python scalars (no objects, no ``None``);
* loops are explicit, in a fixed order (a sum is accumulated left to right in both modes);
* outputs are returned (fresh arrays or tuples of scalars) or written into arrays passed in;
* scalar transcendental functions come from :mod:`math` (``math.exp``, ``math.log``): compiled and plain they
  both call the C library, while NumPy's scalar ``np.exp`` may use its own SIMD code and differ in the last bit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba

F = TypeVar("F", bound=Callable[..., Any])


def njit(function: F) -> F:
    """Compile ``function`` with ``numba.njit(cache=True, nogil=True)`` (plain Python under ``NUMBA_DISABLE_JIT=1``)."""
    return numba.njit(cache=True, nogil=True)(function)  # type: ignore[no-any-return]


def jit_disabled() -> bool:
    """Whether kernels run as plain Python (``NUMBA_DISABLE_JIT=1``)."""
    return bool(numba.config.DISABLE_JIT)


__all__ = ["jit_disabled", "njit"]
