"""The compiled kernels are one implementation: the same results compiled and under ``NUMBA_DISABLE_JIT=1``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jit_runner
import numpy as np
import pytest

from sb3_trading.common.jit import jit_disabled

HERE = Path(__file__).parent


def test_kernels_give_identical_results_with_and_without_the_jit(tmp_path):
    assert not jit_disabled(), "this test compares the compiled kernels with the plain-Python run"
    path = tmp_path / "uncompiled.npz"
    env = {
        **os.environ,
        "NUMBA_DISABLE_JIT": "1",
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    result = subprocess.run(
        [sys.executable, str(HERE / "jit_runner.py"), str(path)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    compiled = jit_runner.record()
    with np.load(path) as uncompiled:
        assert sorted(uncompiled.files) == sorted(compiled)
        for key in compiled:
            np.testing.assert_array_equal(compiled[key], uncompiled[key], err_msg=key)
    # the record covers the core and every batched env, and the episodes ended and restarted
    assert any(key.startswith("core/") for key in compiled)
    for env_id in jit_runner.SUPPORTED_ENV_IDS:
        assert any(compiled[f"{env_id}/dones/{step}"].any() for step in range(jit_runner.N_STEPS)), env_id


CALLEE = "from sb3_trading.common.jit import njit\n\n\n@njit\ndef rate(x):\n    return x * {factor}\n"
CALLER = (
    "from sb3_trading.common.jit import njit\n\nfrom pkg.callee import rate\n\n\n"
    "@njit\ndef book(x):\n    return rate(x) + 1.0\n\n\n"
    "print(book(2.0), sum(book.stats.cache_hits.values()))\n"
)


def _run_caller(root: Path) -> tuple[float, int]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])}
    env.pop("NUMBA_CACHE_DIR", None)  # the cache beside the sources, as in an installed package
    result = subprocess.run([sys.executable, "-c", "import pkg.caller"], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    value, hits = result.stdout.split()
    return float(value), int(hits)


def test_a_cached_kernel_is_recompiled_when_a_kernel_it_calls_changes(tmp_path):
    # numba alone keys a cache on the kernel's own file: the caller would keep the old callee's machine code
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "callee.py").write_text(CALLEE.format(factor=3.0))
    (package / "caller.py").write_text(CALLER)
    assert _run_caller(tmp_path) == (7.0, 0)  # compiled
    assert _run_caller(tmp_path) == (7.0, 1)  # loaded from the cache
    (package / "callee.py").write_text(CALLEE.format(factor=5.0))  # only the callee's file changes
    assert _run_caller(tmp_path) == (11.0, 0)  # recompiled with the new callee, not the stale cache
    assert (package / "__pycache__").is_dir()


#: every env once, single and batched, in a fresh process with an empty cache; then the signatures each of the
#: accounting core's shared kernels was compiled for
EVERY_ENV = """
import json
from sb3_trading.sim import kernels
from sb3_trading.vec import compile_kernels
compile_kernels()
names = ["order_row", "settle_row", "record_row", "bracket_row", "margin_call_row", "order_cost", "adverse_fraction",
         "limit_row", "_leverage_cut", "enter_brackets_row"]
print(json.dumps({name: [str(s) for s in getattr(kernels, name).signatures] for name in names}))
"""


@pytest.mark.slow
def test_the_envs_share_one_compiled_form_of_each_core_kernel(tmp_path):
    # numba compiles a kernel once per argument type; writability, layout and Python constants are part of the type,
    # so an env handing a writable price array, a broadcast view or a literal ``True`` compiles the core again
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", EVERY_ENV], env=env, capture_output=True, text=True, check=True)
    signatures = json.loads(result.stdout.splitlines()[-1])
    assert all(signatures.values()), signatures  # each was compiled here (an empty cache)
    assert {name: len(s) for name, s in signatures.items() if len(s) > 1} == {}, signatures


@pytest.mark.skipif(jit_disabled(), reason="uncompiled, an internal kernel is the plain Python function")
def test_an_internal_kernel_refuses_a_python_call_instead_of_crashing():
    # compiled without numba's CPython wrapper: a Python call would jump into nothing; it raises a TypeError first
    from sb3_trading.sim.frictions import LEVERAGE, N_BAR_FIELDS, N_RULES
    from sb3_trading.sim.kernels import fill_price, order_row

    with pytest.raises(TypeError, match=r"sb3_trading\.sim\.kernels\.fill_price is an internal kernel"):
        fill_price(100.0, 1.0, 0.001)
    holdings, levels = np.array([[0.0, 1000.0]]), np.full((1, 3, 1), np.nan)
    bars, rules = np.zeros((N_BAR_FIELDS, 1)), np.zeros(N_RULES)
    rules[LEVERAGE] = np.inf
    order_row(holdings, levels, 0, np.array([2.0]), np.array([100.0]), bars, rules)  # a public kernel calls it
    np.testing.assert_array_equal(holdings, [[2.0, 800.0]])
