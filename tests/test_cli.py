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


def test_train_on_a_csv_file_with_env_kwargs(tmp_path, capsys):
    data = make_regime_market(n_steps=400, n_assets=2, seed=3)
    csv = tmp_path / "prices.csv"
    data.to_frame()[list(data.asset_names)].to_csv(csv)  # wide layout: a date index and one close column per asset
    args = ["train", "--data", str(csv), "--timesteps", "256", "--n-envs", "1", "--episode-length", "64"]
    args += ["--env-kwargs", "window=4", "commission_bps=5", "--hyperparams", "n_steps=64", "batch_size=64"]
    code = main([*args, "--output-dir", str(tmp_path), "--run-name", "csv", "--no-progress"])  # in-process: the CLI
    # binary itself runs in test_train_end_to_end
    assert code == 0, capsys.readouterr().err
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
            "--eval-confidence", "none",  # no gate: the best periodic checkpoint of 1,024 steps, whatever its confidence
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    run_dir = tmp_path / "shaped"
    report = json.loads((run_dir / "report.json").read_text())
    assert report["reward_wrappers"] == ["differential_sharpe:0.05", "drawdown:0.5"]
    assert report["validation"]["metric"] == "sharpe" and "sharpe" in report["validation"]["best"]
    assert report["validation"]["confidence"] is None and not report["validation"]["gate_active"]
    assert not report["validation"]["selected_initial"]
    # validation picks the model: model.zip is the best on validation, last_model.zip the final weights
    assert report["model"] == "best on validation" and not (run_dir / "best_model.zip").exists()
    assert (run_dir / "model.zip").exists() and (run_dir / "last_model.zip").exists()
    assert report["last_model_agent"]["metrics"]["n_periods"] == report["agent"]["metrics"]["n_periods"] > 0
    header = (run_dir / "progress.csv").read_text().splitlines()[0].split(",")
    assert {"trading/episode_return", "trading/sharpe", "eval/sharpe"} <= set(header)


def test_bad_reward_spec_is_a_clear_error(tmp_path, capsys):
    assert main(["train", "--timesteps", "64", "--output-dir", str(tmp_path), "--reward", "sharpe_ratio"]) == 2
    assert "differential_sharpe" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


@pytest.mark.slow  # ~18 s: three folds of training plus two CLI processes
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


# ----------------------------------------------------------------------------- vendor files, several --data, --risk-free
TINY_TRAIN = ["--timesteps", "64", "--n-envs", "1", "--episode-length", "32", "--no-progress"]
TINY_TRAIN += ["--hyperparams", "n_steps=64", "batch_size=64", "n_epochs=1", "policy_kwargs={'net_arch': [16]}"]


def vendor_csv(path, column=0, n_steps=300, drop=None):
    """A Yahoo-style file of one ticker: Date, Open, High, Low, Close, Adj Close, Volume (business days)."""
    import pandas as pd

    close = make_regime_market(n_steps=n_steps, n_assets=2, seed=3).prices[:, column]
    frame = pd.DataFrame(
        {
            "Date": pd.bdate_range("2015-01-02", periods=n_steps).strftime("%Y-%m-%d"),
            "Open": close,
            "High": close * 1.01,
            "Low": close * 0.99,
            "Close": close,
            "Adj Close": close,
            "Volume": 1_000_000,
        }
    )
    if drop is not None:
        frame = frame.drop(index=drop)
    frame.to_csv(path, index=False)
    return path


def test_train_on_a_one_ticker_vendor_csv_trades_that_one_asset(tmp_path, capsys):
    csv = vendor_csv(tmp_path / "SPY.csv")
    args = ["train", "--data", str(csv), "--risk-free", "0.04", *TINY_TRAIN, "--output-dir", str(tmp_path)]
    code = main([*args, "--run-name", "spy"])
    out = capsys.readouterr()
    assert code == 0, out.err
    report = json.loads((tmp_path / "spy" / "report.json").read_text())
    assert report["data"]["assets"] == ["SPY"]  # one asset named after the file, not one per OHLCV column
    assert report["data"]["source"] == str(csv)
    assert report["agent"]["metrics"]["n_periods"] > 0 and report["agent"]["periods_per_year"] == 252
    assert report["calendar"]["periods_per_year"] == 252 and "exchange days" in report["calendar"]["calendar"]
    assert report["risk_free"]["annual"] == 0.04 and report["agent"]["risk_free"] == 0.04
    assert "SPY" in out.out and "risk-free rate 4.00%/year" in out.out and "252 bars/year" in out.out


@pytest.mark.parametrize("form", ["files", "folder", "glob"])
def test_data_takes_several_files_a_folder_or_a_glob(tmp_path, capsys, form):
    folder = tmp_path / "prices"
    folder.mkdir()
    files = [vendor_csv(folder / "SPY.csv", 0), vendor_csv(folder / "QQQ.csv", 1)]
    values = {"files": [str(p) for p in files], "folder": [str(folder)], "glob": [str(folder / "*.csv")]}[form]
    out = tmp_path / "runs"
    assert main(["train", "--data", *values, *TINY_TRAIN, "--output-dir", str(out), "--run-name", form]) == 0, (
        capsys.readouterr().err
    )
    report = json.loads((out / form / "report.json").read_text())
    # files join in the order given; a folder or a glob in name order
    assert report["data"]["assets"] == (["SPY", "QQQ"] if form == "files" else ["QQQ", "SPY"])
    assert report["config"]["data_path"] == (values if len(values) > 1 else values[0])


def test_bad_data_sources_are_one_line_errors(tmp_path, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    (tmp_path / "dir.csv").mkdir()
    full = vendor_csv(tmp_path / "SPY.csv")
    gappy = vendor_csv(tmp_path / "QQQ.csv", 1, drop=[10])
    out = tmp_path / "runs"
    cases = [
        (["--data", str(empty)], "empty"),
        (["--data", str(tmp_path / "dir.csv")], "dir.csv"),
        (["--data", str(tmp_path / "nothing" / "*.csv")], "nothing"),
        (["--data", str(full), str(gappy)], "QQQ.csv"),  # a date missing in one file names the file (--join exact)
        (["--data", "synthetic", str(full)], "synthetic"),
        (["--data", str(full), "--risk-free", "-1.5"], "risk_free"),
    ]
    for args, message in cases:
        assert main(["train", *TINY_TRAIN, "--output-dir", str(out), *args]) == 2, args
        err = capsys.readouterr().err
        assert "Traceback" not in err, args
        last = err.strip().splitlines()[-1]
        assert last.startswith("sb3-trading train: error:") and message in last, (args, err)
    assert not out.exists() or not any(out.iterdir())  # no run folder left behind
    with pytest.raises(SystemExit):
        main(["train", "--data", str(full), "--join", "outer"])
    assert "invalid choice" in capsys.readouterr().err


def test_join_inner_keeps_the_common_dates(tmp_path, capsys):
    full = vendor_csv(tmp_path / "SPY.csv")
    gappy = vendor_csv(tmp_path / "QQQ.csv", 1, drop=[10])
    code = main(["train", "--data", str(full), str(gappy), "--join", "inner", *TINY_TRAIN, "--output-dir", str(tmp_path)]
                + ["--run-name", "inner"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "inner" / "report.json").read_text())
    assert report["data"]["assets"] == ["SPY", "QQQ"] and report["data"]["n_steps"] == 299
    assert report["config"]["join"] == "inner"


# ----------------------------------------------------------------------------- user errors, run folders, reuse
@pytest.fixture
def error_inputs(tmp_path):
    no_data = tmp_path / "no_data"
    no_data.mkdir()
    (no_data / "notes.txt").write_text("not a market\n")
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    return {"no_data": str(no_data), "a_file": str(a_file)}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--hyperparams", "n_steps=0"], "n_steps must be an integer >= 1"),
        (["--hyperparams", "learning_rate=fast"], "learning_rate must be a number > 0"),
        (["--device", "tpu"], "unknown torch device 'tpu'"),
        (["--data", "no_data"], "no_data"),
        (["--output-dir", "a_file"], "is a file, not a folder"),
        (["--env", "CartPole-v1"], "not an sb3_trading trading env"),
        (["--hyperparams", "policy_kwargs={'net_arch': 'big'}"], "net_arch must be a list of positive layer sizes"),
        (["--hyperparams", "policy_kwargs={'net_arch': [64, -1]}"], "net_arch must be a list of positive layer sizes"),
    ],
)
def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys, error_inputs, args, message):
    args = [error_inputs.get(a, a) for a in args]
    out = tmp_path / "runs"
    output = [] if args[0] == "--output-dir" else ["--output-dir", str(out)]
    assert main(["train", "--timesteps", "64", "--n-envs", "1", "--no-progress", *output, *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert not out.exists()  # nothing written


def test_walk_forward_and_tune_validate_their_config_before_any_work(tmp_path, capsys):
    assert main(["walk-forward", "--env", "CartPole-v1", "--output-dir", str(tmp_path / "wf")]) == 2
    assert "not an sb3_trading trading env" in capsys.readouterr().err
    assert main(["tune", "--env", "CartPole-v1", "--n-trials", "1", "--output-dir", str(tmp_path / "tune")]) == 2
    assert "not an sb3_trading trading env" in capsys.readouterr().err
    assert main(["tune", "--device", "tpu", "--n-trials", "1", "--output-dir", str(tmp_path / "tune")]) == 2
    err = capsys.readouterr().err
    assert "unknown torch device" in err and len(err.strip().splitlines()) == 1
    assert main(["walk-forward", "--hyperparams", "n_steps=0", "--output-dir", str(tmp_path / "wf")]) == 2
    assert "n_steps must be an integer >= 1" in capsys.readouterr().err
    assert not (tmp_path / "wf").exists() and not (tmp_path / "tune").exists()


def test_an_existing_run_folder_is_refused_unless_overwrite(tmp_path, capsys):
    import os
    import stat

    run = ["train", *TINY_TRAIN, "--output-dir", str(tmp_path), "--run-name", "run"]
    assert main(run) == 0
    first = json.loads((tmp_path / "run" / "report.json").read_text())
    capsys.readouterr()
    assert main(run) == 2
    err = capsys.readouterr().err
    assert "exists" in err and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert json.loads((tmp_path / "run" / "report.json").read_text()) == first  # untouched
    assert main([*run, "--seed", "1", "--overwrite"]) == 0
    second = json.loads((tmp_path / "run" / "report.json").read_text())
    assert second["config"]["seed"] == 1 and second["config"]["overwrite"] is True
    # one commit: no staging folder is left beside the run, and the files share one mode (0666 & ~umask)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    umask = os.umask(0)
    os.umask(umask)
    for name in ("model.zip", "report.json", "normalizer.json", "run.json"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o666 & ~umask, name


def test_a_failed_run_leaves_no_folder(tmp_path, capsys, monkeypatch):
    import sb3_trading.training

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(sb3_trading.training, "save_model_atomic", boom)
    assert main(["train", *TINY_TRAIN, "--output-dir", str(tmp_path), "--run-name", "run"]) == 2
    assert "disk full" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # neither the run folder nor its staging folder


@pytest.mark.slow  # ~18 s: two CLI processes on YieldAllocation
def test_backtest_of_a_run_folder_needs_no_flags_on_yield_allocation(tmp_path):
    """Issue 16: ``backtest runs/<run>/model.zip`` of a YieldAllocation-v0 run failed with an observation-space
    mismatch unless --env and --env-kwargs were typed again; now they (and data, normaliser) come from the folder."""
    result = cli(
        "train", "--env", "sb3_trading/YieldAllocation-v0", "--env-kwargs", "window=6", *TINY_TRAIN,
        "--output-dir", str(tmp_path), "--run-name", "yield",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "yield"
    assert json.loads((run_dir / "run.json").read_text())["env_kwargs"] == {"window": 6}
    assert (run_dir / "normalizer.json").exists()
    result = cli("backtest", str(run_dir / "model.zip"), "--n-boot", "0", "--no-plots")
    assert result.returncode == 0, result.stderr
    trained = json.loads((run_dir / "report.json").read_text())
    backtested = json.loads((run_dir / "backtest" / "report.json").read_text())
    assert backtested["strategies"]["ppo"]["metrics"] == trained["agent"]["metrics"]
    for name, baseline in trained["baselines"].items():
        assert backtested["strategies"][name]["metrics"] == baseline["metrics"]
    assert trained["env_config"]["window"] == 6 and backtested["config"]["env_config"]["window"] == 6
    # a flag still overrides the run folder's value
    result = cli("backtest", str(run_dir / "model.zip"), "--env-kwargs", "window=3", "--n-boot", "0", "--no-plots")
    assert result.returncode == 2 and "does not fit" in result.stderr and "Traceback" not in result.stderr


def test_a_run_on_a_relative_data_path_is_reusable_from_another_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "work").mkdir()
    vendor_csv(tmp_path / "work" / "SPY.csv")
    monkeypatch.chdir(tmp_path / "work")
    assert main(["train", "--data", "SPY.csv", *TINY_TRAIN, "--output-dir", "runs", "--run-name", "spy"]) == 0
    monkeypatch.chdir(tmp_path)
    model = tmp_path / "work" / "runs" / "spy" / "model.zip"
    assert main(["backtest", str(model), "--n-boot", "0", "--no-plots"]) == 0, capsys.readouterr().err
    trained = json.loads((model.parent / "report.json").read_text())
    backtested = json.loads((model.parent / "backtest" / "report.json").read_text())
    assert backtested["strategies"]["ppo"]["metrics"] == trained["agent"]["metrics"]
    assert backtested["config"]["data"]["assets"] == ["SPY"]
    # the number of configurations tried is known: the report deflates the agent's Sharpe ratio by it
    out = tmp_path / "bt_trials"
    capsys.readouterr()
    args = ["backtest", str(model), "--n-boot", "0", "--no-plots", "--n-trials", "20", "--output-dir", str(out)]
    assert main(args) == 0, capsys.readouterr().err
    deflated = json.loads((out / "report.json").read_text())
    assert deflated["overfitting"]["n_trials"] == 20 and deflated["overfitting"]["applies_to"] == "ppo"
    assert deflated["strategies"]["ppo"]["metrics"] == trained["agent"]["metrics"]
    assert "DSR of ppo over 20 trials" in capsys.readouterr().out
    # a trial count that is not a count is refused before anything runs or is written
    zero_out = tmp_path / "bt_zero"
    zero = ["backtest", str(model), "--n-boot", "0", "--no-plots", "--n-trials", "0", "--output-dir", str(zero_out)]
    assert main(zero) == 2
    assert "n_trials (--n-trials)" in capsys.readouterr().err and not zero_out.exists()


def test_train_validation_gate_keeps_the_untrained_policy_of_a_tiny_run(tmp_path, capsys):
    """The default gate: 512 steps find nothing significant on validation, so model.zip is the untrained policy."""
    code = main(["train", "--timesteps", "512", "--n-envs", "2", "--output-dir", str(tmp_path), "--run-name", "g",
                 "--eval-freq", "256", "--no-progress", "--env-kwargs", "dead_zone=0.3"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "model.zip is the policy training started from" in out and "--eval-confidence none" in out
    report = json.loads((tmp_path / "g" / "report.json").read_text())
    validation = report["validation"]
    assert validation["confidence"] == 0.9 and validation["gate_active"] and validation["selected_initial"]
    assert validation["best_timestep"] == 0 and validation["best"]["psr"] == 0.0 and report["model"].startswith("initial")
    # the untrained policy's actions are inside the dead zone: it holds nothing on the held-out bars either
    assert report["agent"]["metrics"]["exposure"] == 0.0 and report["agent"]["metrics"]["total_return"] == 0.0
    assert (tmp_path / "g" / "last_model.zip").exists()  # the final weights are kept beside it


@pytest.mark.parametrize("value", ["1.5", "0", "x"])
def test_train_bad_eval_confidence_is_a_one_line_error(tmp_path, capsys, value):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--timesteps", "64", "--output-dir", str(tmp_path), "--eval-confidence", value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--eval-confidence" in err and "Traceback" not in err
