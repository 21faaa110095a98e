"""Walk-forward train/test end to end, and the backtest command's round trip on a saved model."""

import argparse
import json

import gymnasium as gym
import numpy as np
import pytest

import sb3_trading  # noqa: F401
from sb3_trading.backtesting import infer_algo, run_backtest_command
from sb3_trading.commands.backtest import add_backtest_arguments, backtest_from_args, format_summary
from sb3_trading.commands.walk_forward import add_walk_forward_arguments, walk_forward_from_args
from sb3_trading.data import load_market_data, make_regime_market
from sb3_trading.features import FeatureNormalizer
from sb3_trading.walk_forward import WalkForwardConfig, walk_forward

ENV_ID = "sb3_trading/MultiAsset-v0"
TINY = ["n_steps=64", "batch_size=64", "n_epochs=1", "policy_kwargs={'net_arch': [16]}"]
TINY_PARAMS = {"n_steps": 64, "batch_size": 64, "n_epochs": 1, "policy_kwargs": {"net_arch": [16]}}


@pytest.fixture(scope="module")
def market_csv(tmp_path_factory):
    data = make_regime_market(n_steps=240, n_assets=2, seed=3)
    path = tmp_path_factory.mktemp("data") / "prices.csv"
    data.to_frame()[list(data.asset_names)].to_csv(path)
    return path


@pytest.fixture(scope="module")
def walk_forward_run(market_csv, tmp_path_factory):
    """``sb3-trading walk-forward`` through its argument parser: 2 folds of 256 steps of a tiny PPO."""
    out = tmp_path_factory.mktemp("wf")
    parser = add_walk_forward_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        ["--data", str(market_csv), "--splits", "2", "--timesteps", "256", "--purge", "2", "--output-dir", str(out)]
        + ["--device", "cpu", "--n-boot", "200", "--hyperparams", *TINY]
    )
    return walk_forward_from_args(args), out


def test_walk_forward_writes_folds_and_the_stitched_report(walk_forward_run):
    summary, out = walk_forward_run
    written = json.loads((out / "walk_forward.json").read_text())
    assert written["config"]["n_splits"] == 2 and written["config"]["purge"] == 2
    folds = written["folds"]
    assert len(folds) == 2
    for fold in folds:
        (train_start, train_end), (test_start, test_end) = fold["train_rows"], fold["test_rows"]
        assert train_start == 0 and train_end + 2 == test_start  # expanding window, purge gap
        # the first decision is the first test row; the last mark is the last test row
        assert fold["agent"]["start_t"] == test_start and fold["agent"]["end_t"] == test_end - 1
        for baseline in fold["baselines"].values():
            assert (baseline["start_t"], baseline["end_t"]) == (test_start, test_end - 1)
        assert (out / f"fold_{fold['fold']}" / "model.zip").stat().st_size > 0
    assert folds[0]["test_rows"][1] == folds[1]["test_rows"][0] and folds[1]["test_rows"][1] == 240
    aggregate = written["aggregate"]
    assert {"mean", "std", "min", "max"} <= set(aggregate["agent"]["folds"]["sharpe"])
    stitched_n = aggregate["agent"]["stitched"]["n_periods"]
    assert stitched_n == sum(f["agent"]["metrics"]["n_periods"] for f in folds)
    assert set(aggregate["agent_beats_baseline_sharpe"]) == {"buy_and_hold", "equal_weight"}
    report = json.loads((out / "report.json").read_text())
    assert list(report["strategies"]) == ["ppo", "buy_and_hold", "equal_weight"]
    assert report["strategies"]["ppo"]["metrics"]["n_periods"] == stitched_n
    assert (out / "report.html").stat().st_size > 0
    assert "ppo" in format_summary(summary)
    # the data's calendar (business days: 252) and the default risk-free rate 0, stated in config and report
    assert written["config"]["periods_per_year"] == 252 and "exchange days" in written["config"]["calendar"]
    assert written["config"]["risk_free"] == 0.0
    assert report["calendar"]["periods_per_year"] == 252 and report["risk_free"]["annual"] == 0.0
    assert "252 bars/year" in format_summary(summary) and "risk-free rate 0.00%/year" in format_summary(summary)


def test_walk_forward_fits_the_normaliser_on_the_training_window_only(walk_forward_run, market_csv):
    summary, out = walk_forward_run
    data = load_market_data(market_csv)
    for fold in summary["folds"]:
        train_start, train_end = fold["train_rows"]
        saved = FeatureNormalizer.from_dict(json.loads((out / f"fold_{fold['fold']}" / "normalizer.json").read_text()))
        expected = gym.make(ENV_ID, data=data.slice(train_start, train_end), normalizer="fit").unwrapped.normalizer
        np.testing.assert_allclose(saved.mean, expected.mean)
        np.testing.assert_allclose(saved.std, expected.std)
        on_all = gym.make(ENV_ID, data=data, normalizer="fit").unwrapped.normalizer
        assert not np.allclose(saved.mean, on_all.mean)  # the test rows did not enter the statistics


def test_backtest_command_with_a_saved_normaliser(walk_forward_run, market_csv, tmp_path):
    _, out = walk_forward_run
    parser = add_backtest_arguments(argparse.ArgumentParser())
    args = parser.parse_args(
        [str(out / "fold_1" / "model.zip"), "--data", str(market_csv), "--normalizer", str(out / "fold_1" / "normalizer.json")]
        + ["--output-dir", str(tmp_path), "--n-boot", "50", "--no-plots", "--risk-free", "0.04"]
    )
    report = backtest_from_args(args)
    assert list(report["strategies"]) == ["ppo", "cash", "buy_and_hold", "equal_weight", "random"]
    assert report["strategies"]["ppo"]["end_t"] == 239 and report["config"]["normalizer"].startswith("file")
    # --risk-free is annual; every strategy's Sharpe is on excess returns over its per-bar rate
    assert report["risk_free"]["annual"] == 0.04 and report["config"]["risk_free"] == 0.04
    assert report["risk_free"]["per_period"] == pytest.approx(1.04 ** (1 / 252) - 1)
    assert all(entry["risk_free"] == 0.04 for entry in report["strategies"].values())
    assert "risk-free rate 4.00%/year" in format_summary(report)
    with pytest.raises(SystemExit):  # one normaliser source at a time
        parser.parse_args(["m.zip", "--normalizer", "a.json", "--train-data", "b.csv"])


def test_walk_forward_validates(market_csv):
    data = load_market_data(market_csv)
    with pytest.raises(ValueError, match="unknown algorithm"):
        walk_forward("ppo2", ENV_ID, data)
    with pytest.raises(ValueError, match="action_masks"):
        walk_forward("ppo_mask", ENV_ID, data, n_splits=2, timesteps=64)
    with pytest.raises(ValueError, match="too few"):
        walk_forward("ppo", ENV_ID, data, n_splits=500)


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny ``sb3-trading train`` run on the default synthetic market."""
    from sb3_trading.training import TrainConfig, train

    out = tmp_path_factory.mktemp("runs")
    config = TrainConfig(
        timesteps=64, n_envs=1, output_dir=str(out), run_name="tiny", progress_bar=False, device="cpu", hyperparams=TINY_PARAMS
    )
    return train(config)


def test_backtest_command_reproduces_the_training_runs_held_out_backtest(trained_run):
    report = run_backtest_command(trained_run["model_path"], n_boot=100)
    agent = report["strategies"]["ppo"]
    assert agent["metrics"] == pytest.approx(trained_run["agent"]["metrics"])  # same slice, normaliser, actions
    assert (agent["start_t"], agent["end_t"]) == (trained_run["agent"]["start_t"], trained_run["agent"]["end_t"])
    for name in ("buy_and_hold", "equal_weight"):
        assert report["strategies"][name]["metrics"] == pytest.approx(trained_run["baselines"][name]["metrics"])
    out = report["files"]["html"].rsplit("/", 1)[0]
    assert out.endswith("tiny/backtest")  # default: beside the model
    assert report["config"]["algo"] == "ppo" and "leading 80%" in report["config"]["normalizer"]
    assert {"sharpe", "total_return", "annual_return"} == set(agent["ci"])
    # the env's reference policies on the same bars and the agent's skill ratio against the signal follower
    follower = report["references"]["signal_follower"]
    assert (follower["start_t"], follower["end_t"]) == (agent["start_t"], agent["end_t"])
    skill = report["skill_ratio"]
    assert skill["reference"] == "signal_follower" and skill["n_boot"] == 100
    assert skill["estimate"] == pytest.approx(agent["metrics"]["sharpe"] / follower["metrics"]["sharpe"])
    assert "skill ratio" in format_summary(report)


def test_backtest_command_errors(trained_run, tmp_path):
    with pytest.raises(ValueError, match="does not fit"):
        run_backtest_command(trained_run["model_path"], env_kwargs={"window": 3}, n_boot=0, plots=False)
    with pytest.raises(FileNotFoundError):
        run_backtest_command(tmp_path / "missing.zip")
    not_a_model = tmp_path / "x.zip"
    not_a_model.write_text("hello")
    with pytest.raises(ValueError, match="not a Stable-Baselines3 model"):
        infer_algo(not_a_model)


@pytest.mark.parametrize("algo", ["ppo_mask", "qppo", "qppo_mask", "ppo_lstm"])
def test_infer_algo_from_the_zip(algo, tmp_path):
    from sb3_trading.algos import get_algo

    env_id = "sb3_trading/MaskedTrading-v0" if algo.endswith("_mask") else ENV_ID
    env = gym.make(env_id, **({"window": 8} if algo.endswith("_mask") else {}))
    policy = "MultiInputLstmPolicy" if algo == "ppo_lstm" else "MultiInputPolicy"
    _, algo_class = get_algo(algo)
    algo_class(policy, env, n_steps=16, batch_size=16, device="cpu").save(tmp_path / "m.zip")
    assert infer_algo(tmp_path / "m.zip") == algo


def test_the_former_import_names_still_resolve():
    """The training part of walk-forward and the argparse glue moved up a floor; the old names still work."""
    import sb3_trading.commands.backtest
    import sb3_trading.walk_forward
    from sb3_trading.evaluation import walk_forward as old_walk_forward
    from sb3_trading.evaluation.commands import add_backtest_arguments as old_add_backtest_arguments
    from sb3_trading.tuning.commands import add_tune_arguments

    assert old_walk_forward is sb3_trading.walk_forward.walk_forward
    assert old_add_backtest_arguments is sb3_trading.commands.backtest.add_backtest_arguments
    assert callable(add_tune_arguments)


def test_walk_forward_config_is_validated_once_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="timesteps must be an integer >= 1"):
        WalkForwardConfig(timesteps=0, output_dir=str(tmp_path / "wf")).validate()
    with pytest.raises(ValueError, match="unknown torch device"):
        WalkForwardConfig(device="tpu", output_dir=str(tmp_path / "wf")).validate()
    with pytest.raises(ValueError, match="n_steps must be an integer"):
        WalkForwardConfig(hyperparams={"n_steps": 0}, output_dir=str(tmp_path / "wf")).validate()
    assert not (tmp_path / "wf").exists()
    assert WalkForwardConfig(env_id=None).validate().env_id == "sb3_trading/MultiAsset-v0"


def test_walk_forward_records_the_effective_env_and_the_batched_vec_env(walk_forward_run):
    summary, _ = walk_forward_run
    config = summary["config"]
    assert config["vec_env"] == "batched"  # as sb3-trading train: batched where supported
    assert config["env_config"]["initial_cash"] > 0 and config["env_config"]["costs"]["commission_bps"] >= 0
    assert config["env_config"]["data_periods_per_year"] == 252


# ----------------------------------------------------------------------------- CPCV (walk-forward --scheme cpcv)
CPCV_PURGE, CPCV_EMBARGO = 2, 3


@pytest.fixture(scope="module")
def cpcv_run(market_csv, tmp_path_factory):
    """``sb3-trading walk-forward --scheme cpcv --groups 4 --test-groups 2`` through the CLI: 6 tiny PPO splits."""
    from sb3_trading.cli import main

    out = tmp_path_factory.mktemp("cpcv")
    argv = ["walk-forward", "--data", str(market_csv), "--scheme", "cpcv", "--groups", "4", "--test-groups", "2"]
    argv += ["--timesteps", "64", "--purge", str(CPCV_PURGE), "--embargo", str(CPCV_EMBARGO), "--output-dir", str(out)]
    argv += ["--device", "cpu", "--n-boot", "50", "--no-plots", "--hyperparams", *TINY]
    assert main(argv) == 0
    return json.loads((out / "walk_forward.json").read_text()), out


def test_cpcv_writes_every_split_and_path(cpcv_run, capsys):
    summary, out = cpcv_run
    config = summary["config"]
    assert config["scheme"] == "cpcv" and (config["n_groups"], config["n_test_groups"]) == (4, 2)
    assert config["n_splits"] == len(summary["splits"]) == 6  # C(4, 2)
    assert config["n_backtest_paths"] == len(summary["paths"]) == 3  # C(4, 2) * 2 / 4
    assert [s["test_groups"] for s in summary["splits"]] == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    for s in summary["splits"]:
        assert (out / f"split_{s['split']}" / "model.zip").stat().st_size > 0
        assert (out / f"split_{s['split']}" / "normalizer.json").exists()
    report = json.loads((out / "report.json").read_text())
    assert list(report["strategies"]) == ["ppo[path 0]", "ppo[path 1]", "ppo[path 2]", "buy_and_hold", "equal_weight"]
    sharpes = [p["agent"]["metrics"]["sharpe"] for p in summary["paths"]]
    dist = summary["aggregate"]["path_sharpe"]
    assert dist["values"] == pytest.approx(sharpes)
    assert dist["mean"] == pytest.approx(np.mean(sharpes)) and dist["std"] == pytest.approx(np.std(sharpes))
    assert (dist["min"], dist["max"]) == (pytest.approx(min(sharpes)), pytest.approx(max(sharpes)))
    assert summary["aggregate"]["agent"]["paths"]["sharpe"]["mean"] == pytest.approx(dist["mean"])
    assert report["config"]["aggregate"]["path_sharpe"]["mean"] == pytest.approx(dist["mean"])


def test_cpcv_paths_cover_every_bar_once_out_of_sample(cpcv_run):
    summary, _ = cpcv_run
    groups = [tuple(g) for g in summary["groups"]]
    assert groups[0][0] == 0 and groups[-1][1] == 240
    assert all(a[1] == b[0] for a, b in zip(groups[:-1], groups[1:], strict=True))
    lookback = summary["config"]["lookback"]
    splits = summary["splits"]
    seen = {(s["split"], g) for s in splits for g in s["test_groups"]}
    used = set()
    for path in summary["paths"]:
        assert len(path["splits"]) == 4
        marks = []
        for g, split in enumerate(path["splits"]):
            assert g in splits[split]["test_groups"]  # the split that tested this group supplies it
            used.add((split, g))
            start, stop = groups[g]
            piece = splits[split]["agent"][str(g)]
            # each group's backtest decides first at its first bar (after the look-back on group 0), marks its last
            assert (piece["start_t"], piece["end_t"]) == (max(start, lookback), stop - 1)
            marks.append(piece["metrics"]["n_periods"])
        assert path["agent"]["start_t"] == lookback and path["agent"]["end_t"] == 239
        assert path["agent"]["metrics"]["n_periods"] == sum(marks)  # every group once, none twice
    assert used == seen  # every (split, test group) backtest belongs to exactly one path
    assert len(used) == 6 * 2


def test_cpcv_trains_outside_the_purged_and_embargoed_zones(cpcv_run):
    summary, _ = cpcv_run
    for s in summary["splits"]:
        train = np.concatenate([np.arange(a, b) for a, b in s["train_blocks"]])
        for start, stop in s["test_rows"].values():
            assert not ((train >= start - CPCV_PURGE) & (train < stop + CPCV_EMBARGO)).any()
        blocks = s["train_blocks"]
        # separate blocks: never joined across a gap
        assert all(b[0] > a[1] for a, b in zip(blocks[:-1], blocks[1:], strict=True))


def test_cpcv_prints_the_path_sharpe_distribution(market_csv, tmp_path, capsys):
    from sb3_trading.cli import main

    argv = ["walk-forward", "--data", str(market_csv), "--scheme", "cpcv", "--groups", "3", "--test-groups", "1"]
    argv += ["--timesteps", "64", "--output-dir", str(tmp_path), "--device", "cpu", "--n-boot", "0", "--no-plots"]
    assert main([*argv, "--resample", "none", "--hyperparams", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "CPCV: 3 groups, 1 tested per split, 3 splits, 1 paths; path Sharpe mean" in printed


@pytest.mark.parametrize(
    "args, message",
    [
        (["--scheme", "cpcv", "--groups", "4", "--test-groups", "4"], "n_test_groups=4 (--test-groups) must be less than"),
        (["--scheme", "cpcv", "--groups", "1"], "n_groups (--groups) must be an integer >= 2"),
        (["--scheme", "cpcv", "--groups", "20"], "n_groups=20 (--groups) cuts the 240 bars into groups of 12 bars"),
        (["--scheme", "cpcv", "--test-size", "20"], "test_size (--test-size) shape walk-forward folds"),
        (["--scheme", "cpcv", "--rolling"], "--rolling"),
        (["--groups", "4"], "are CPCV settings; use them with scheme='cpcv'"),
    ],
)
def test_cpcv_bad_settings_are_one_line_errors(market_csv, tmp_path, capsys, args, message):
    from sb3_trading.cli import main

    argv = ["walk-forward", "--data", str(market_csv), "--timesteps", "64", "--output-dir", str(tmp_path / "out"), *args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_contiguous_blocks_and_the_per_block_bootstrap(market_csv):
    from sb3_trading.data import stack_paths
    from sb3_trading.walk_forward import contiguous_blocks, cpcv_training_market

    assert contiguous_blocks(np.array([0, 1, 2, 7, 8, 12])) == [(0, 3), (7, 9), (12, 13)]
    assert contiguous_blocks(np.array([], dtype=np.int64)) == []
    data = load_market_data(market_csv)
    blocks = stack_paths([data.slice(0, 60), data.slice(100, 180)])
    market = cpcv_training_market(ENV_ID, blocks, "bootstrap", n_paths=3, seed=0)
    assert market.n_paths == 6 and [b - a for a, b in market.path_bounds] == [60, 60, 60, 80, 80, 80]
    # each bank starts with its block; every bootstrapped bar comes from that block's own prices
    np.testing.assert_array_equal(market.prices[:60], data.prices[:60])
    np.testing.assert_array_equal(market.prices[180:260], data.prices[100:180])
