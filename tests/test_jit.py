"""The compiled kernels are one implementation: the same results compiled and under ``NUMBA_DISABLE_JIT=1``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import jit_runner
import numpy as np

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
