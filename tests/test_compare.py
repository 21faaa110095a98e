"""``sb3-trading compare``: several runs' held-out backtests in one table and figure, with paired Sharpe-difference CIs."""

import json

import numpy as np
import pytest

from sb3_trading.cli import main
from sb3_trading.commands.compare import load_run
from sb3_trading.evaluation.bootstrap import sharpe_ci
from sb3_trading.evaluation.compare import align_results, compare_results, find_runs, sharpe_difference_ci

TINY_PARAMS = {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "policy_kwargs": {"net_arch": [16]}}


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """Two tiny ``sb3-trading train`` runs (seeds 0 and 1) on the default synthetic market, in one folder."""
    from sb3_trading.training import TrainConfig, train

    out = tmp_path_factory.mktemp("runs")
    reports = {}
    for seed in (0, 1):
        config = TrainConfig(
            timesteps=64,
            n_envs=1,
            seed=seed,
            output_dir=str(out),
            run_name=f"seed{seed}",
            progress_bar=False,
            device="cpu",
            hyperparams=TINY_PARAMS,
        )
        reports[seed] = train(config)
    return out, reports


def test_a_run_is_rebuilt_as_its_report_recorded(runs_dir):
    out, reports = runs_dir
    loaded = load_run(out / "seed0")
    recorded = reports[0]["agent"]
    assert loaded["agent"].metrics == pytest.approx(recorded["metrics"])
    assert (int(loaded["agent"].t[0]), int(loaded["agent"].t[-1])) == (recorded["start_t"], recorded["end_t"])
    assert loaded["buy_and_hold"].metrics == pytest.approx(reports[0]["baselines"]["buy_and_hold"]["metrics"])


def test_compare_two_runs_through_the_cli(runs_dir, tmp_path, capsys):
    out, reports = runs_dir
    target = tmp_path / "cmp"
    assert main(["compare", str(out / "seed0"), str(out / "seed1"), "--output-dir", str(target), "--n-boot", "200"]) == 0
    printed = capsys.readouterr().out
    assert "seed0" in printed and "seed1" in printed and "seed0 - seed1" in printed
    summary = json.loads((target / "compare.json").read_text())
    assert list(summary["table"]) == ["seed0", "seed1", "buy_and_hold", "equal_weight"]
    assert [row["kind"] for row in summary["table"].values()] == ["run", "run", "baseline", "baseline"]
    # same market and split: the common bars are the whole held-out period, the metrics the reports'
    assert summary["marks"]["n_periods"] == reports[0]["agent"]["metrics"]["n_periods"]
    for seed in (0, 1):
        recorded = reports[seed]["agent"]["metrics"]["sharpe"]
        assert summary["table"][f"seed{seed}"]["metrics"]["sharpe"] == pytest.approx(recorded)
    (diff,) = summary["sharpe_differences"]
    assert (diff["a"], diff["b"]) == ("seed0", "seed1")
    assert diff["estimate"] == pytest.approx(diff["sharpe_a"] - diff["sharpe_b"])
    assert diff["ci"]["low"] <= diff["estimate"] <= diff["ci"]["high"] and diff["ci"]["n_boot"] == 200
    assert (target / "compare.png").stat().st_size > 0 and summary["figure"] == "compare.png"


def test_a_folder_of_runs_is_every_run_in_it(runs_dir, tmp_path, capsys):
    out, _ = runs_dir
    assert [p.name for p in find_runs([out])] == ["seed0", "seed1"]
    assert [p.name for p in find_runs([out / "seed1", out])] == ["seed1", "seed0"]  # order kept, no repeats
    assert main(["compare", str(out), "--output-dir", str(tmp_path), "--n-boot", "0", "--no-plots", "--no-baselines"]) == 0
    summary = json.loads((tmp_path / "compare.json").read_text())
    assert list(summary["table"]) == ["seed0", "seed1"] and summary["sharpe_differences"][0]["ci"] is None
    assert not (tmp_path / "compare.png").exists()


def test_a_run_against_itself_is_zero(runs_dir):
    out, _ = runs_dir
    agent = load_run(out / "seed0")["agent"]
    ci = sharpe_difference_ci(agent.returns, agent.returns, agent.periods_per_year, n_boot=300, seed=1)
    assert (ci.estimate, ci.low, ci.high) == (0.0, 0.0, 0.0)
    table = compare_results({"a": agent, "b": agent}, n_boot=100)
    assert table["sharpe_differences"][0]["ci"]["low"] == table["sharpe_differences"][0]["ci"]["high"] == 0.0


def test_the_paired_ci_is_narrower_than_unpaired_noise_and_covers_a_shift():
    rng = np.random.default_rng(0)
    market = rng.normal(0.0, 0.01, 2000)
    a, b = market + 0.001, market  # the same moves, a earns 10 bp more per bar
    ci = sharpe_difference_ci(a, b, 252, n_boot=500, seed=0)
    assert ci.low > 0  # the shared noise cancels: the edge is resolved
    single = sharpe_ci(a, 252, n_boot=500, seed=0)
    assert ci.high - ci.low < single.high - single.low
    with pytest.raises(ValueError, match="aligned 1-D"):
        sharpe_difference_ci(a, b[:-1], 252)


def test_results_are_aligned_on_their_common_marks(runs_dir):
    import dataclasses

    out, _ = runs_dir
    agent = load_run(out / "seed0", baselines=())["agent"]
    n = agent.n_steps
    later = dataclasses.replace(  # the same backtest from its 10th step on
        agent, t=agent.t[10:], equity=agent.equity[10:], returns=agent.returns[10:], turnover=agent.turnover[10:],
        costs=agent.costs[10:], weights=agent.weights[10:], timestamps=agent.timestamps[10:],
        benchmark_returns=agent.benchmark_returns[10:],
    )  # fmt: skip
    marks, index = align_results({"full": agent, "later": later})
    assert marks.size == n - 10
    np.testing.assert_array_equal(agent.returns[index["full"]], later.returns[index["later"]])


def test_a_missing_folder_is_a_one_line_error(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope"), "--output-dir", str(tmp_path / "cmp")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sb3-trading compare: error:") and "nope" in err and "does not exist" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "cmp").exists()
    (tmp_path / "empty").mkdir()
    assert main(["compare", str(tmp_path / "empty"), "--no-plots"]) == 2
    assert "is not a run folder" in capsys.readouterr().err
