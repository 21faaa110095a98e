"""benchmarks/learnability.py: --update replaces whole rows, --extend/--merge join runs of one row by seed."""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "learnability.py"


@pytest.fixture(scope="module")
def learnability():
    spec = importlib.util.spec_from_file_location("learnability_benchmark", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def learnable(seed: int, skill: float, **stamp) -> dict:
    return {
        "seed": seed,
        "skill": skill,
        "skill_low": skill - 0.5,
        "skill_high": skill + 0.5,
        "skill_reason": None,
        "agent_sharpe": 2 * skill,
        "agent_return": 0.1 * skill,
        "buy_and_hold_return": 0.0,
        "bars": 100,
        **stamp,
    }


def null(seed: int, sharpe: float, **stamp) -> dict:
    return {
        "seed": seed,
        "sharpe": sharpe,
        "low": sharpe - 1.0,
        "high": sharpe + 1.0,
        "excludes_zero": 0,
        "agent_return": 0.0,
        "buy_and_hold_return": 0.0,
        "bars": 100,
        **stamp,
    }


def row(learnable_runs, null_runs, *, commit=None, timesteps=1_000, seconds=(10.0, 40.0)) -> dict:
    out = {
        "env_id": "sb3_trading/MarketImpact-v0",
        "algo": "ppo",
        "timesteps": timesteps,
        "n_envs": 8,
        "learnable": learnable_runs,
        "null": {"driftless": null_runs, "permuted": list(null_runs)},
        "learnable_seconds": seconds[0],
        "seconds": seconds[1],
        "date": "2026-12-01T00:00:00+00:00",
    }
    return out if commit is None else {**out, "commit": commit}


def other_row() -> dict:
    return {**row([learnable(0, 1.0)], [null(0, 0.0)], commit="keep"), "env_id": "sb3_trading/MultiAsset-v0"}


def test_extend_joins_runs_by_seed_and_keeps_each_runs_stamp(learnability, capsys):
    # an old row from before runs carried their own stamps: 2 learnable seeds (10 s), 2 x 2 null seeds (30 s)
    old = row([learnable(0, 0.5), learnable(1, 0.7)], [null(0, -1.0), null(1, 0.2)], commit="aaaaaaa")
    stamp = {"seconds": 3.0, "date": "2026-12-07T06:00:00+00:00", "commit": "bbbbbbb"}
    new = row([learnable(1, 0.7, **stamp), learnable(2, 0.1, **stamp)], [null(1, 0.3, **stamp)], commit="bbbbbbb")
    merged = learnability.merge_rows({"rows": [old, other_row()]}, {"rows": [new], "date": "now"}, extend=True)
    assert [(r["env_id"], r["algo"]) for r in merged["rows"]] == [
        ("sb3_trading/MultiAsset-v0", "ppo"),  # ROWS order, the row not rerun kept as it was
        ("sb3_trading/MarketImpact-v0", "ppo"),
    ]
    assert merged["rows"][0] == other_row()
    joined = merged["rows"][1]
    assert [r["seed"] for r in joined["learnable"]] == [0, 1, 2]
    assert [r["commit"] for r in joined["learnable"]] == ["aaaaaaa", "bbbbbbb", "bbbbbbb"]  # seed 1: the rerun
    assert [(r["seed"], r["sharpe"]) for r in joined["null"]["driftless"]] == [(0, -1.0), (1, 0.3)]
    assert joined["commit"] == "aaaaaaa, bbbbbbb"
    assert joined["date"] == "2026-12-07T06:00:00+00:00"
    # old runs count their row's mean time (10 s / 2 learnable, 30 s / 4 null runs), new ones their own
    assert math.isclose(joined["learnable_seconds"], 5.0 + 3.0 + 3.0)
    assert math.isclose(joined["seconds"], joined["learnable_seconds"] + 7.5 + 3.0 + 7.5 + 3.0)
    printed = capsys.readouterr().out
    assert "learnable seed 1: reproduced (aaaaaaa -> bbbbbbb" in printed
    assert "driftless seed 1: DIFFERS" in printed  # Sharpe 0.2 then, 0.3 now
    text = learnability.markdown({**merged, "machine": MACHINE, **HEADER})
    assert "| MarketImpact-v0 | PPO | 0 | 0.50 [" in text and "2026-12-01 aaaaaaa |" in text
    assert "2026-12-07 bbbbbbb |" in text


def test_update_without_extend_replaces_the_whole_row(learnability):
    old = row([learnable(0, 0.5), learnable(1, 0.7)], [null(0, -1.0)], commit="aaaaaaa")
    new = row([learnable(2, 0.1)], [null(2, 0.0)], commit="bbbbbbb")
    merged = learnability.merge_rows({"rows": [old]}, {"rows": [new]})
    assert merged["rows"] == [new]


def test_extend_refuses_runs_of_another_budget(learnability):
    old = row([learnable(0, 0.5)], [null(0, -1.0)], timesteps=1_000)
    new = row([learnable(1, 0.5)], [null(1, -1.0)], timesteps=2_000)
    with pytest.raises(SystemExit, match="rerun the whole row without --extend"):
        learnability.merge_rows({"rows": [old]}, {"rows": [new]}, extend=True)


MACHINE = {"platform": "test", "python": "3", "cpu_count": 2, "torch_threads": 1, "cuda": None, "sb3_trading": "0"}
HEADER = {"quick": False, "timesteps_override": None, "seeds": [1, 2], "null_seeds": [1], "n_paths": 2, "eval_freq": None}


def test_a_row_saved_without_a_date_is_dated_by_its_file(learnability):
    old = row([learnable(0, 0.5)], [null(0, -1.0)])
    del old["date"]  # older files dated their rows only in the file's header
    stamp = {"seconds": 3.0, "date": "2026-12-07T06:00:00+00:00", "commit": "bbbbbbb"}
    new = row([learnable(1, 0.7, **stamp)], [null(1, 0.3, **stamp)], commit="bbbbbbb")
    previous = {"date": "2026-12-06T23:00:00+00:00", "rows": [old, other_row()]}
    merged = learnability.merge_rows(previous, {"rows": [new], "date": "2026-12-07T07:00:00+00:00"}, extend=True)
    kept, joined = merged["rows"]
    assert kept["date"] == other_row()["date"]  # a row with its own date keeps it
    assert [r["date"] for r in joined["learnable"]] == ["2026-12-06T23:00:00+00:00", "2026-12-07T06:00:00+00:00"]
    assert [r["commit"] for r in joined["null"]["permuted"]] == ["unknown", "bbbbbbb"]
