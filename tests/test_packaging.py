"""The zoo configs are package data: a wheel ships them and an install outside the source tree finds them."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from sb3_trading.zoo_configs import CONFIG_DIR

ROOT = Path(__file__).resolve().parents[1]
ALGOS = ("ppo", "ppo_lstm", "ppo_mask", "qppo", "qppo_mask")


def test_every_algorithm_has_a_shipped_config_and_unknown_ones_are_named():
    from sb3_trading.tuning.study import zoo_config_path
    from sb3_trading.zoo_configs import config_path

    for algo in ALGOS:
        assert config_path(algo).parent == CONFIG_DIR and zoo_config_path(algo) == config_path(algo)
    with pytest.raises(ValueError, match="no zoo config for algorithm 'a2c'.*shipped"):
        config_path("a2c")


@pytest.mark.slow
def test_a_wheel_ships_the_zoo_configs_and_an_install_elsewhere_finds_them(tmp_path):
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("sb3_trading-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"sb3_trading/zoo_configs/{algo}.yml" for algo in ALGOS} <= names

    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    probe = (
        "import sb3_trading, sb3_trading.zoo_configs as z; from sb3_trading.tuning.study import zoo_config_path; "
        "print(sb3_trading.__file__); print(zoo_config_path('qppo')); print(z.config_path('ppo').read_text()[:0] + 'ok')"
    )
    # run from an empty folder with only the install on the path, so the source tree cannot be found
    found = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
    )
    assert found.returncode == 0, found.stderr[-3000:]
    package_file, qppo_config, ok = found.stdout.split()
    assert Path(package_file).is_relative_to(site) and Path(qppo_config).is_relative_to(site)
    assert Path(qppo_config).read_text() == (CONFIG_DIR / "qppo.yml").read_text() and ok == "ok"
