"""Every script in examples/ runs with ``--quick`` in a fresh process (each well under a minute on 2 cores)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCRIPTS = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))


def test_there_is_an_example_per_env_and_one_for_tuning():
    import sb3_trading

    names = {env_id.split("/")[1].removesuffix("-v0") for env_id in sb3_trading.ENV_ENTRY_POINTS}
    expected = {"".join("_" + c.lower() if c.isupper() else c for c in name).lstrip("_") + ".py" for name in names}
    assert expected | {"tune.py"} == set(SCRIPTS)


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_example_runs_quick(script, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), "--quick", "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=EXAMPLES,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip()
