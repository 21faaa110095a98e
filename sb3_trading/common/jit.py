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

**Compile time.** numba compiles each kernel once per argument type, then links it into every kernel that calls it.
Market arrays enter the kernels in one form (:func:`kernel_array`), kernels hand each other NumPy scalars rather
than Python constants (``Literal[int](0)`` is a type of its own), a helper called only by other kernels is
``@njit(internal=True)`` (no CPython wrapper), and no kernel uses slice assignment or ``np.argsort`` (numba's
versions compile seconds of error-message and sorting code): together they took the first ``make`` of every env
with an empty cache from about 27 s to 19 s on the development machine (alternated runs, 2026-12-07).

**Cache freshness.** numba keys a cached kernel on the source of its own file only, but a kernel's machine code
contains the kernels it calls from other modules (an env's step calls :mod:`sb3_trading.sim.kernels`). Edit
``sim/kernels.py`` alone -- or upgrade the package to a release whose ``envs/multi_asset.py`` is unchanged, since
the cache files beside the sources survive ``pip install -U`` -- and numba would load the env's step compiled
with the old accounting, silently. :func:`njit` therefore keys every cache entry on the sources of all the
package's modules that compile kernels (:func:`package_fingerprint`) as well: any change to any of them
recompiles them all on first use.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, overload

import numba
import numpy as np
from numba.core import caching
from numba.core.registry import CPUDispatcher

F = TypeVar("F", bound=Callable[..., Any])


@overload
def njit(function: F, *, internal: bool = False) -> F: ...


@overload
def njit(function: None = None, *, internal: bool = False) -> Callable[[F], F]: ...


def njit(function: F | None = None, *, internal: bool = False) -> F | Callable[[F], F]:
    """Compile ``function`` with ``numba.njit(nogil=True, no_cfunc_wrapper=True)`` and an on-disk cache keyed on the
    package's kernel sources (see the module docstring); plain Python under ``NUMBA_DISABLE_JIT=1``. Use as
    ``@njit`` or ``@njit(internal=True)``.

    ``no_cfunc_wrapper``: numba otherwise also compiles a C-callable wrapper of every kernel, for passing it as a
    first-class function value, which no kernel does; skipping it takes a tenth off the first ``make`` of every
    env with an empty cache.

    :param internal: the kernel is called only by other kernels, never from Python (a helper of one rule inside a
        step): numba then builds no CPython wrapper for it (argument unboxing, result boxing), another tenth off
        the first ``make``. Calling it from Python raises ``TypeError`` (numba alone would crash the interpreter).
    """
    if function is None:
        return functools.partial(njit, internal=internal)  # type: ignore[return-value]
    if jit_disabled():
        return numba.njit(function)  # type: ignore[no-any-return]  # the function itself
    options = {"nopython": True, "nogil": True, "no_cfunc_wrapper": True, "boundscheck": None}
    if internal:
        dispatcher: Any = _InternalKernel(function, targetoptions={**options, "no_cpython_wrapper": True})
    else:
        dispatcher = numba.njit(**{k: v for k, v in options.items() if k != "nopython"})(function)
    # what numba.njit(cache=True) does (Dispatcher.enable_caching), with the package-keyed cache
    dispatcher._cache = _PackageFunctionCache(function)
    return dispatcher  # type: ignore[no-any-return]


class _InternalKernel(CPUDispatcher):
    """The dispatcher of an ``@njit(internal=True)`` kernel: compiled for its callers in other kernels only."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        name = f"{self.py_func.__module__}.{self.py_func.__qualname__}"
        raise TypeError(
            f"{name} is an internal kernel, called only by other compiled kernels (it has no Python entry point); "
            "call the public function that uses it, or run with NUMBA_DISABLE_JIT=1 to step through it as Python"
        )


def package_root(source_file: str | Path) -> Path:
    """The top-level package directory of ``source_file`` (the highest parent that has an ``__init__.py``)."""
    directory = Path(source_file).resolve().parent
    while (directory.parent / "__init__.py").exists():
        directory = directory.parent
    return directory


@functools.cache
def package_fingerprint(root: Path) -> str:
    """SHA-256 of the path and bytes of every module under ``root`` that compiles kernels (mentions ``njit``).

    Read once per process; a change to any of these files changes it, and with it every cache key.
    """
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        source = path.read_bytes()
        if b"njit" in source:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(source)
    return digest.hexdigest()


class _PackageStamp:
    """Cache locator mixin: the source stamp of the function's own file and the :func:`package_fingerprint`."""

    _py_file: str

    def get_source_stamp(self) -> Any:
        return super().get_source_stamp(), package_fingerprint(package_root(self._py_file))  # type: ignore[misc]


def _package_locator(base: type) -> type:
    return type(f"Package{base.__name__}", (_PackageStamp, base), {})


class _PackageCacheImpl(caching.CompileResultCacheImpl):
    # numba's own locators (user-provided NUMBA_CACHE_DIR, beside the sources, user-wide, zip), package-stamped
    _locator_classes = [
        _package_locator(base)
        for base in (
            caching.UserProvidedCacheLocator,
            caching.InTreeCacheLocator,
            caching.UserWideCacheLocator,
            caching.ZipCacheLocator,
        )
    ]


class _PackageFunctionCache(caching.FunctionCache):
    _impl_class = _PackageCacheImpl


def kernel_array(values: Any) -> np.ndarray:
    """``values`` in the one form market arrays take into the kernels: float64, C-contiguous, read-only (a
    read-only view when ``values`` already is float64 and C-contiguous; the caller's array stays writable).

    numba compiles a kernel once per distinct argument type, and writability and memory layout are part of the
    type: an env handing a writable price array where another hands a read-only one would compile every kernel
    they share twice (seconds each on the first ``make``). Every array of market data an env keeps for its
    kernels goes through here.
    """
    array = np.ascontiguousarray(values, dtype=np.float64)
    if array.flags.writeable:
        array = array.view()
        array.setflags(write=False)
    return array


def jit_disabled() -> bool:
    """Whether kernels run as plain Python (``NUMBA_DISABLE_JIT=1``)."""
    return bool(numba.config.DISABLE_JIT)


__all__ = ["jit_disabled", "kernel_array", "njit", "package_fingerprint", "package_root"]
