"""Run management of ``sb3-trading train``: TensorBoard and the HTML report, zoo-style hyperparameters, the
reproducibility manifest, config files, checkpoints, a wall-clock budget and resuming."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch as th
import yaml

from sb3_trading.algos import get_algo
from sb3_trading.cli import main
from sb3_trading.common.hyperparams import LinearSchedule, resolve_zoo_hyperparams
from sb3_trading.training import TrainConfig, train

TINY = ["--timesteps", "256", "--n-envs", "2", "--episode-length", "32", "--no-progress", "--eval-freq", "0"]
TINY += ["--hyperparams", "n_steps=64", "batch_size=64", "n_epochs=1", "policy_kwargs={'net_arch': [16]}"]


def run_cli(tmp_path: Path, name: str, *args: str, capsys=None) -> dict:
    code = main(["train", *TINY, "--output-dir", str(tmp_path), "--run-name", name, *args])
    assert code == 0, capsys.readouterr().err if capsys else code
    return json.loads((tmp_path / name / "report.json").read_text())


# ----------------------------------------------------------------------------- TensorBoard and the HTML report
def test_train_writes_tensorboard_events_and_the_backtest_html_report(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    report = run_cli(tmp_path, "tb", capsys=capsys)
    run = tmp_path / "tb"
    assert list(run.glob("events.out.tfevents.*")) and (run / "progress.csv").is_file()
    assert report["tensorboard"] == str(run)
    html = Path(report["html_report"])
    assert html == run / "backtest" / "report.html" and html.is_file()
    assert "<html" in html.read_text().lower() and (run / "backtest" / "equity.png").is_file()
    backtest_json = json.loads((run / "backtest" / "report.json").read_text())
    assert backtest_json["strategies"]["ppo"]["metrics"]["sharpe"] == pytest.approx(report["agent"]["metrics"]["sharpe"])


# ----------------------------------------------------------------------------- zoo-style hyperparameters
def test_zoo_strings_become_schedules_and_torch_classes():
    resolved = resolve_zoo_hyperparams(
        {"learning_rate": "lin_3e-4", "clip_range": "lin_0.2", "policy_kwargs": "dict(optimizer_class=th.optim.AdamW)"}
    )
    assert resolved["learning_rate"] == LinearSchedule(3e-4) and resolved["learning_rate"](0.5) == pytest.approx(1.5e-4)
    assert resolved["policy_kwargs"] == {"optimizer_class": th.optim.AdamW}


def test_cli_hyperparams_take_zoo_strings(tmp_path, capsys):
    run_cli(
        tmp_path,
        "zoo",
        "--hyperparams",
        "n_steps=64",
        "batch_size=64",
        "n_epochs=1",
        "learning_rate=lin_1e-3",
        "policy_kwargs=dict(net_arch=[16], optimizer_class=th.optim.AdamW)",
        capsys=capsys,
    )
    model = get_algo("ppo")[1].load(tmp_path / "zoo" / "model.zip", device="cpu")
    assert isinstance(model.policy.optimizer, th.optim.AdamW)
    assert model.lr_schedule(1.0) == pytest.approx(1e-3) and model.lr_schedule(0.25) == pytest.approx(2.5e-4)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("policy_kwargs=dict(net_arch=__import__('os').system('echo pwned'))", "never evaluated"),
        ("policy_kwargs=exec('1')", "never evaluated"),
        ("learning_rate=exp_3e-4", r"learning_rate must be a number > 0 or rl-zoo3's linear schedule"),
    ],
)
def test_hyperparams_that_would_need_eval_are_refused(tmp_path, capsys, value, message):
    code = main(["train", *TINY[:-5], "--output-dir", str(tmp_path), "--hyperparams", value])
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not any(tmp_path.iterdir())  # nothing written


# ----------------------------------------------------------------------------- manifest, config files
def test_manifest_and_config_round_trip_give_the_same_held_out_metrics(tmp_path, capsys):
    first = run_cli(tmp_path, "first", "--device", "cpu", capsys=capsys)
    manifest = json.loads((tmp_path / "first" / "manifest.json").read_text())
    assert manifest["seeds"] == {"seed": 0} and manifest["device"] == "cpu" and manifest["torch_threads"] >= 1
    assert manifest["packages"]["stable-baselines3"] and manifest["data"]["files"] is None
    config = yaml.safe_load((tmp_path / "first" / "config.yml").read_text())
    assert config["timesteps"] == 256 and config["hyperparams"]["n_steps"] == 64 and config["run_name"] is None
    # rerun from the written config: a new folder, the same manifest, the same held-out metrics
    assert main(["train", "--config", str(tmp_path / "first" / "config.yml"), "--run-name", "again"]) == 0
    again = json.loads((tmp_path / "again" / "report.json").read_text())
    assert json.loads((tmp_path / "again" / "manifest.json").read_text()) == manifest
    assert again["agent"]["metrics"] == first["agent"]["metrics"]
    # flags given on the command line override the file
    assert main(["train", "--config", str(tmp_path / "first" / "config.yml"), "--run-name", "more", "--seed", "3"]) == 0
    assert json.loads((tmp_path / "more" / "report.json").read_text())["config"]["seed"] == 3


def test_config_files_are_checked(tmp_path, capsys):
    bad = tmp_path / "bad.yml"
    bad.write_text("timestep: 100\n")
    assert main(["train", "--config", str(bad)]) == 2
    assert "unknown train option 'timestep'; did you mean 'timesteps'" in capsys.readouterr().err
    assert main(["train", "--config", str(tmp_path / "missing.yml")]) == 2
    assert "does not exist" in capsys.readouterr().err
    as_json = tmp_path / "run.json"
    as_json.write_text(
        json.dumps({"timesteps": 64, "n_envs": 1, "eval_freq": 0, "progress_bar": False, "env": "sb3_trading/MultiAsset-v0"})
    )
    config = TrainConfig.from_file(as_json)
    assert config.timesteps == 64 and config.env_id == "sb3_trading/MultiAsset-v0"


# ----------------------------------------------------------------------------- checkpoints, budget, resume
def test_max_minutes_stops_saves_and_resume_continues_the_timestep_count(tmp_path, capsys):
    long = ["--timesteps", "100000", "--max-minutes", "0.002", "--checkpoint-freq", "2"]
    report = run_cli(tmp_path, "cut", *long, capsys=capsys)
    assert report["stopped"]["of"] == 100_000 and report["stopped"]["timesteps"] == report["trained_timesteps"] < 100_000
    assert "stopped early" in capsys.readouterr().out
    model = get_algo("ppo")[1].load(tmp_path / "cut" / "model.zip", device="cpu")  # a loadable model
    assert model.num_timesteps == report["trained_timesteps"]
    checkpoints = sorted((tmp_path / "cut" / "checkpoints").glob("model_*_steps.zip"))
    assert checkpoints and not (tmp_path / "cut.checkpoints").exists()
    # resume with a small total: the count carries on from the checkpoint up to the new total
    done = report["trained_timesteps"]
    assert main(["train", "--resume", str(tmp_path / "cut"), "--timesteps", str(done + 128), "--max-minutes", "5"]) == 0
    resumed = json.loads((tmp_path / "cut" / "report.json").read_text())
    assert resumed["resumed_from"].endswith(f"model_{done}_steps.zip")
    kept = {p.name for p in (tmp_path / "cut" / "checkpoints").glob("model_*_steps.zip")}
    assert {p.name for p in checkpoints} <= kept and len(kept) > len(checkpoints)  # the old ones and the new ones
    assert resumed["trained_timesteps"] >= done + 128 and resumed["stopped"] is None
    # nothing left to do
    assert main(["train", "--resume", str(tmp_path / "cut")]) == 2
    assert "already holds" in capsys.readouterr().err


def test_resume_after_a_crash_reads_the_checkpoint_folder(tmp_path):
    """A run that died leaves <run>.checkpoints/ (with its config.yml); --resume <run> continues from it."""
    config = TrainConfig(
        timesteps=256,
        n_envs=2,
        episode_length=32,
        eval_freq=0,
        progress_bar=False,
        output_dir=str(tmp_path),
        run_name="crashed",
        checkpoint_freq=128,
        hyperparams={"n_steps": 64, "batch_size": 64, "n_epochs": 1, "policy_kwargs": {"net_arch": [16]}},
    )
    train(config)
    # simulate the crash: the committed folder is gone, the checkpoints are where they were while training
    run = tmp_path / "crashed"
    (run / "checkpoints").rename(tmp_path / "crashed.checkpoints")
    for item in run.iterdir():
        if item.is_file():
            item.unlink()
        else:
            import shutil

            shutil.rmtree(item)
    run.rmdir()
    assert main(["train", "--resume", str(run), "--timesteps", "384", "--no-progress"]) == 0
    report = json.loads((run / "report.json").read_text())
    assert report["resumed_from"].endswith("model_256_steps.zip") and report["trained_timesteps"] >= 384


# ----------------------------------------------------------------------------- several seeds
def test_seeds_yield_one_run_each_and_an_aggregate_of_their_reports(tmp_path, capsys):
    code = main(["train", *TINY, "--output-dir", str(tmp_path), "--run-name", "multi", "--seeds", "0", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "2 seeds" in out and "bootstrap CI across seeds" in out
    folder = tmp_path / "multi"
    aggregate = json.loads((folder / "aggregate.json").read_text())
    reports = [json.loads((folder / f"seed_{s}" / "report.json").read_text()) for s in (0, 1)]
    assert aggregate["seeds"] == [0, 1] and [r["config"]["seed"] for r in reports] == [0, 1]
    sharpes = [r["agent"]["metrics"]["sharpe"] for r in reports]
    assert [row["sharpe"] for row in aggregate["per_seed"]] == sharpes
    assert [row["total_return"] for row in aggregate["per_seed"]] == [r["agent"]["metrics"]["total_return"] for r in reports]
    assert aggregate["summary"]["sharpe"]["median"] == pytest.approx(sum(sharpes) / 2)
    assert aggregate["mean_sharpe"]["mean"] == pytest.approx(sum(sharpes) / 2)
    assert min(sharpes) <= aggregate["mean_sharpe"]["low"] <= aggregate["mean_sharpe"]["high"] <= max(sharpes)
    skills = [r["skill_ratio"]["estimate"] for r in reports]
    assert [row["skill"] for row in aggregate["per_seed"]] == pytest.approx(skills)


def test_seeds_are_checked(tmp_path, capsys):
    assert main(["train", *TINY, "--output-dir", str(tmp_path), "--seeds", "1", "1"]) == 2
    assert "seeds must be distinct" in capsys.readouterr().err


@pytest.mark.slow
def test_seeds_in_worker_processes_match_the_sequential_runs(tmp_path):
    """--workers 2 runs the seeds in spawned processes; the per-seed metrics equal the sequential ones (CPU)."""
    args = [*TINY, "--device", "cpu", "--seeds", "0", "1"]
    assert main(["train", *args, "--output-dir", str(tmp_path), "--run-name", "serial"]) == 0
    assert main(["train", *args, "--output-dir", str(tmp_path), "--run-name", "parallel", "--workers", "2"]) == 0
    serial = json.loads((tmp_path / "serial" / "aggregate.json").read_text())
    parallel = json.loads((tmp_path / "parallel" / "aggregate.json").read_text())
    assert [r["sharpe"] for r in serial["per_seed"]] == [r["sharpe"] for r in parallel["per_seed"]]


def test_without_tensorboard_a_one_line_notice_and_the_csv(tmp_path, monkeypatch, caplog):
    import importlib.util

    import sb3_trading.training as training

    real = importlib.util.find_spec
    monkeypatch.setattr(
        training.importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a)
    )
    report = train(
        TrainConfig(
            timesteps=128,
            n_envs=2,
            episode_length=32,
            eval_freq=0,
            progress_bar=False,
            output_dir=str(tmp_path),
            run_name="plain",
            hyperparams={"n_steps": 64, "batch_size": 64, "n_epochs": 1, "policy_kwargs": {"net_arch": [16]}},
        )
    )
    run = tmp_path / "plain"
    assert report["tensorboard"] is None and (run / "progress.csv").is_file()
    assert not list(run.glob("events.out.tfevents.*"))
    notices = [r.getMessage() for r in caplog.records if "tensorboard is not installed" in r.getMessage()]
    assert notices and all("\n" not in n for n in notices)


def test_a_tensorboard_log_hyperparameter_is_where_the_events_go(tmp_path, capsys):
    pytest.importorskip("tensorboard")
    board = tmp_path / "board"
    report = run_cli(
        tmp_path,
        "tb_elsewhere",
        "--hyperparams",
        "n_steps=64",
        "batch_size=64",
        "n_epochs=1",
        f"tensorboard_log='{board}'",
        capsys=capsys,
    )
    assert report["tensorboard"] == str(board / "tb_elsewhere")
    assert list((board / "tb_elsewhere").glob("events.out.tfevents.*"))
    assert not list((tmp_path / "tb_elsewhere").glob("events.out.tfevents.*"))
    assert (tmp_path / "tb_elsewhere" / "progress.csv").is_file()
