"""``sb3-trading`` smoke tests through a real subprocess, as a user would run it."""

import json
import shutil
import subprocess
import sys

import pytest

from sb3_trading.cli import main, parse_kwargs
from sb3_trading.data import make_regime_market


def cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    exe = shutil.which("sb3-trading")
    command = [exe] if exe else [sys.executable, "-m", "sb3_trading.cli"]
    return subprocess.run([*command, *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_train_end_to_end(tmp_path):
    result = cli("train", "--timesteps", "512", "--n-envs", "2", "--output-dir", str(tmp_path), "--run-name", "smoke")
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "smoke"
    assert (run_dir / "model.zip").stat().st_size > 0
    report = json.loads((run_dir / "report.json").read_text())
    assert report["config"]["timesteps"] == 512
    assert report["agent"]["metrics"]["n_periods"] > 0
    assert "buy_and_hold" in result.stdout and "equal_weight" in result.stdout
    assert not list(run_dir.glob(".*.tmp"))  # atomic writes leave no temp files


def test_train_on_a_csv_file_with_env_kwargs(tmp_path):
    data = make_regime_market(n_steps=400, n_assets=2, seed=3)
    csv = tmp_path / "prices.csv"
    data.to_frame()[list(data.asset_names)].to_csv(csv)  # wide layout: a date index and one close column per asset
    result = cli(
        "train",
        "--data",
        str(csv),
        "--timesteps",
        "256",
        "--n-envs",
        "1",
        "--episode-length",
        "64",
        "--env-kwargs",
        "window=4",
        "commission_bps=5",
        "--hyperparams",
        "n_steps=64",
        "batch_size=64",
        "--output-dir",
        str(tmp_path),
        "--run-name",
        "csv",
        "--no-progress",
    )
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "csv" / "report.json").read_text())
    assert report["data"]["assets"] == ["asset_0", "asset_1"]
    assert report["config"]["env_kwargs"] == {"window": 4, "commission_bps": 5}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--algo", "a2c_bad"], "unknown algorithm"),
        (["--env", "sb3_trading/Nope-v0"], "unknown env ID"),
        (["--data", "missing.csv"], "missing.csv"),
        (["--env-kwargs", "window"], "key=value"),
    ],
)
def test_bad_input_exits_with_a_clear_error(tmp_path, capsys, args, message):
    assert main(["train", "--timesteps", "64", "--output-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # no run folder left behind


def test_parse_kwargs_uses_literals_not_eval():
    assert parse_kwargs(["a=1", "b=0.5", "c='x'", "d=next_open", "e=[1, 2]"], "--x") == {
        "a": 1,
        "b": 0.5,
        "c": "x",
        "d": "next_open",
        "e": [1, 2],
    }
    assert parse_kwargs(["f=__import__('os')"], "--x") == {"f": "__import__('os')"}


def test_train_with_reward_wrappers_and_validation_callback(tmp_path, capsys):
    code = main(
        [
            "train", "--timesteps", "1024", "--n-envs", "2", "--output-dir", str(tmp_path), "--run-name", "shaped",
            "--reward", "differential_sharpe:0.05", "drawdown:0.5", "--eval-freq", "256", "--patience", "1", "--no-progress",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    run_dir = tmp_path / "shaped"
    report = json.loads((run_dir / "report.json").read_text())
    assert report["reward_wrappers"] == ["differential_sharpe:0.05", "drawdown:0.5"]
    assert report["validation"]["metric"] == "sharpe" and "sharpe" in report["validation"]["best"]
    assert (run_dir / "best_model.zip").exists() and report["best_model_agent"]["metrics"]["n_periods"] > 0
    header = (run_dir / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"trading/episode_return", "trading/sharpe", "eval/sharpe"} <= set(header)


def test_bad_reward_spec_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--timesteps", "64", "--output-dir", str(tmp_path), "--reward", "sharpe_ratio"]) == 2
    assert "differential_sharpe" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_walk_forward_then_backtest(tmp_path):
    result = cli(
        "walk-forward", "--splits", "2", "--timesteps", "128", "--hyperparams", "n_steps=64", "batch_size=64",
        "--output-dir", str(tmp_path / "wf"), "--n-boot", "100", "--device", "cpu",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    result = cli(
        "backtest", str(tmp_path / "wf" / "fold_1" / "model.zip"),
        "--normalizer", str(tmp_path / "wf" / "fold_1" / "normalizer.json"),
        "--output-dir", str(tmp_path / "bt"), "--n-boot", "100",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "bt" / "report.html").read_text()
    assert "data:image/png;base64," in html and (tmp_path / "bt" / "report.json").exists()
