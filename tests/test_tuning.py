"""Optuna tuning: valid search spaces, a pruning validation-Sharpe objective, studies that survive a kill, zoo export."""

import argparse
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import gymnasium as gym
import numpy as np
import pytest
import sqlalchemy.exc
import yaml

optuna = pytest.importorskip("optuna", reason='tuning needs Optuna: pip install "sb3-trading[tune]"')

from stable_baselines3.common.env_util import make_vec_env  # noqa: E402

import sb3_trading  # noqa: E402, F401
from sb3_trading.algos import get_algo  # noqa: E402
from sb3_trading.training import DEFAULT_HYPERPARAMS, load_env_data  # noqa: E402
from sb3_trading.tuning.commands import add_tune_arguments, format_tune_summary, tune_from_args  # noqa: E402
from sb3_trading.tuning.objective import TradingObjective  # noqa: E402
from sb3_trading.tuning.spaces import (  # noqa: E402
    LOG_RANGES,
    merge_hyperparams,
    params_to_hyperparams,
    sample_params,
)
from sb3_trading.tuning.study import (  # noqa: E402
    CONFIG_ATTR,
    check_zoo_config,
    export_best_params,
    make_storage,
    merge_policy_kwargs,
    run_study,
    zoo_config_path,
)

ENV = "sb3_trading/MultiAsset-v0"
MASKED_ENV = "sb3_trading/MaskedTrading-v0"
ALGO_ENVS = [("ppo", ENV), ("ppo_mask", MASKED_ENV), ("ppo_lstm", ENV), ("qppo", ENV), ("qppo_mask", MASKED_ENV)]
# tiny search space and budget: every trial trains 512 steps of a [64] network, evaluated every 128 steps
TINY_CHOICES = {"n_steps": [64], "batch_size": [64], "net_arch": ["tiny"], "n_epochs": [1, 2]}
TINY = dict(timesteps=512, eval_freq=128, n_envs=2, device="cpu", choices=TINY_CHOICES)
SUBPROCESS_ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


# ----------------------------------------------------------------------------- search spaces
@pytest.mark.parametrize("algo, env_id", ALGO_ENVS, ids=[algo for algo, _ in ALGO_ENVS])
def test_samplers_give_hyperparameters_the_algorithm_accepts(algo, env_id):
    """Random draws of the full default space construct the algorithm with exactly those settings."""
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0), direction="maximize")
    vec_env = make_vec_env(env_id, n_envs=2, seed=0, env_kwargs={"render_mode": None})
    _, algo_class = get_algo(algo)
    if algo.startswith("qppo"):  # both branches of the conditional CVaR level
        study.enqueue_trial({"risk": "cvar"})
        study.enqueue_trial({"risk": "mean"})
    for _ in range(4):
        trial = study.ask()
        params = sample_params(algo, trial, n_envs=2)
        assert params["batch_size"] <= params["n_steps"] * 2
        assert LOG_RANGES["learning_rate"][0] <= params["learning_rate"] <= LOG_RANGES["learning_rate"][1]
        hyperparams = merge_hyperparams(DEFAULT_HYPERPARAMS[algo], params_to_hyperparams(algo, params))
        policy = hyperparams.pop("policy")
        model = algo_class(policy, vec_env, device="cpu", **hyperparams)
        assert (model.n_steps, model.batch_size) == (params["n_steps"], params["batch_size"])
        assert model.n_epochs == params["n_epochs"]
        assert (model.gamma, model.gae_lambda, model.ent_coef) == (params["gamma"], params["gae_lambda"], params["ent_coef"])
        assert model.policy_kwargs["net_arch"] == {"tiny": [64], "small": [64, 64], "medium": [256, 256]}[params["net_arch"]]
        if algo.startswith("qppo"):
            assert model.policy_kwargs["n_quantiles"] == params["n_quantiles"] and 25 <= params["n_quantiles"] <= 51
            assert (model.risk, model.huber_kappa) == (params["risk"], params["huber_kappa"])
            assert ("alpha" in params) == (params["risk"] == "cvar")
        if algo == "ppo_lstm":
            assert model.policy_kwargs["lstm_hidden_size"] == params["lstm_hidden_size"]
        study.tell(trial, 0.0)
    vec_env.close()
    # learning rate, entropy and the Huber threshold are sampled on a log scale
    distributions = study.trials[0].distributions
    assert distributions["learning_rate"].log and distributions["ent_coef"].log
    if algo.startswith("qppo"):
        assert distributions["huber_kappa"].log


def test_batch_size_is_capped_by_the_rollout():
    trial = optuna.create_study().ask()
    params = sample_params("ppo", trial, n_envs=2, choices={"n_steps": [64], "batch_size": [512]})
    assert trial.params["batch_size"] == 512 and params["batch_size"] == 128 == trial.user_attrs["batch_size"]


def test_converter_rejects_parameters_the_algorithm_lacks():
    assert params_to_hyperparams("qppo", {"net_arch": "small", "n_quantiles": 30, "risk": "mean"}) == {
        "risk": "mean",
        "policy_kwargs": {"net_arch": [64, 64], "n_quantiles": 30},
    }
    with pytest.raises(ValueError, match="n_quantiles"):
        params_to_hyperparams("ppo", {"n_quantiles": 30})
    with pytest.raises(ValueError, match="net_arch"):
        params_to_hyperparams("ppo", {"net_arch": "huge"})
    with pytest.raises(ValueError, match="unknown categorical"):
        sample_params("ppo", optuna.create_study().ask(), choices={"n_step": [64]})


# ----------------------------------------------------------------------------- objective and pruning
@pytest.fixture(scope="module")
def objective():
    data = load_env_data(ENV, None, seed=0)
    return TradingObjective(ENV, "ppo", data, timesteps=512, eval_freq=128, n_envs=2, device="cpu", choices=TINY_CHOICES)


def test_objective_folds_are_chronological_and_the_normaliser_sees_training_rows_only(objective):
    data = load_env_data(ENV, None, seed=0)
    assert objective.train_data.n_steps + objective.validation_rows + objective.test_data.n_steps == data.n_steps
    assert objective.test_data.n_steps == round(0.2 * data.n_steps)
    np.testing.assert_array_equal(objective.test_data.prices, data.prices[-objective.test_data.n_steps :])
    train_only = gym.make(ENV, data=objective.train_data, normalizer="fit").unwrapped.normalizer
    assert objective.normalizer.to_dict() == train_only.to_dict()
    env = objective.make_validation_env()
    try:
        assert env.unwrapped.normalizer is objective.normalizer
        # the validation env decides from the first validation bar on; earlier rows are look-back context only
        assert objective.validation_data.n_steps - env.unwrapped.first_t == objective.validation_rows
        assert env.unwrapped.episode_length is None
    finally:
        env.close()


def test_objective_returns_the_last_validation_sharpe(objective):
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert sorted(trial.intermediate_values) == [128, 256, 384, 512]
    # the value is the final model's score, evaluated after the last update (the evaluation at 512 ran before it)
    assert trial.value == trial.user_attrs["last_score"] == trial.user_attrs["validation_metrics"]["sharpe"]
    assert trial.user_attrs["trained_timesteps"] == 512 and trial.user_attrs["worker_id"]


def _capture_final_models(monkeypatch):
    """Record the model each trial's ``final_evaluation`` scores."""
    from sb3_trading.tuning.objective import TrialEvalCallback

    models, real = [], TrialEvalCallback.final_evaluation

    def final_evaluation(self):
        models.append(self.model)
        return real(self)

    monkeypatch.setattr(TrialEvalCallback, "final_evaluation", final_evaluation)
    return models


def test_a_one_rollout_budget_scores_the_trained_policy_not_the_initial_one(monkeypatch):
    """Budget = one rollout: the periodic evaluation at the last timestep runs before PPO's only update, so it scores
    the initial weights (the same for every trial); the trial's value must be the *trained* policy's validation score:
    a fresh backtest of the final model, and different for two learning rates."""
    from sb3_trading.evaluation import backtest

    data = load_env_data(ENV, None, seed=0)
    one_rollout = TradingObjective(
        ENV, "ppo", data, timesteps=128, eval_freq=128, n_envs=2, device="cpu", choices={**TINY_CHOICES, "n_epochs": [5]}
    )
    models = _capture_final_models(monkeypatch)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    fixed = {"gamma": 0.9, "gae_lambda": 0.95, "ent_coef": 1e-8, "clip_range": 0.2}
    for learning_rate in (1e-5, 3e-3):
        study.enqueue_trial({**fixed, "learning_rate": learning_rate})
    study.optimize(one_rollout, n_trials=2)
    slow, fast = study.trials
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert [t.user_attrs["trained_timesteps"] for t in study.trials] == [128, 128]
    # the periodic evaluation at 128 saw the same (initial) weights in both trials
    assert slow.intermediate_values == fast.intermediate_values and list(fast.intermediate_values) == [128]
    assert slow.value != fast.value
    assert fast.value != fast.intermediate_values[128]
    for trial, model in zip(study.trials, models, strict=True):
        env = one_rollout.make_validation_env()
        try:
            fresh = backtest(model, env, deterministic=True).metrics["sharpe"]
        finally:
            env.close()
        assert trial.value == fresh, trial.number


def test_pruned_trials_stop_training_early(objective):
    """A real pruner that always prunes: training stops at the first evaluation and the trial is PRUNED."""
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.ThresholdPruner(lower=1e9))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert list(trial.intermediate_values) == [128]
    assert trial.user_attrs["trained_timesteps"] < 512


# ----------------------------------------------------------------------------- validation before creation
@pytest.mark.parametrize(
    "algo, choices, error, match",
    [
        ("ppo", {"n_step": [64]}, ValueError, "did you mean 'n_steps'"),
        ("ppo", {"lstm_hidden_size": [32]}, ValueError, r"lstm_hidden_size is a parameter of \['ppo_lstm'\]"),
        ("ppo", {"risk": ["cvar"]}, ValueError, "risk is a parameter of"),
        ("ppo", {"learning_rate": [1e-3]}, ValueError, "sampled from a range"),
        ("ppo", {"n_steps": []}, ValueError, "empty"),
        ("ppo", {"n_steps": "64"}, TypeError, "must be a list"),
        ("ppo", {"n_steps": [0]}, ValueError, r"choices\['n_steps'\] value must be an integer >= 1"),
        ("ppo", {"n_steps": [64.5]}, TypeError, "integer"),
        ("ppo", {"batch_size": [1]}, ValueError, ">= 2"),
        ("ppo", {"gamma": [1.5]}, ValueError, r"choices\['gamma'\]"),
        ("ppo", {"gae_lambda": ["high"]}, TypeError, "gae_lambda"),
        ("ppo", {"clip_range": [0.0]}, ValueError, "> 0"),
        ("ppo", {"n_epochs": [True]}, TypeError, "n_epochs"),
        ("ppo", {"net_arch": ["smal"]}, ValueError, "did you mean 'small'"),
        ("qppo", {"risk": ["cvarr"]}, ValueError, "did you mean 'cvar'"),
        ("ppo_lstm", {"lstm_hidden_size": [0]}, ValueError, "lstm_hidden_size"),
    ],
)
def test_choices_are_checked_against_the_algorithms_search_space(algo, choices, error, match):
    from sb3_trading.tuning.spaces import check_choices

    with pytest.raises(error, match=match):
        check_choices(choices, algo, n_envs=2)


def test_valid_choices_come_back_as_plain_lists():
    from sb3_trading.tuning.spaces import check_choices

    checked = check_choices({"n_steps": (np.int64(64), 128), "gamma": [1], "risk": ["cvar"]}, "qppo", n_envs=2)
    assert checked == {"gamma": [1.0], "n_steps": [64, 128], "risk": ["cvar"]}
    assert type(checked["n_steps"][0]) is int and type(checked["gamma"][0]) is float
    assert check_choices(None, "ppo") == {}


def test_invalid_choices_leave_no_study_behind_and_the_corrected_rerun_runs(tmp_path):
    """The typo is refused before the storage exists (not after "Trial 0 failed"), so fixing it is all it takes."""
    tiny = dict(TINY, timesteps=128, eval_freq=128)
    with pytest.raises(ValueError, match="did you mean 'n_steps'"):
        run_study(ENV, "ppo", n_trials=1, output_dir=tmp_path / "out", **{**tiny, "choices": {"n_step": [64]}})
    with pytest.raises(ValueError, match="net_arch"):
        run_study(ENV, "ppo", n_trials=1, output_dir=tmp_path / "out", **{**tiny, "choices": {"net_arch": ["huge"]}})
    assert not (tmp_path / "out").exists()
    study = run_study(ENV, "ppo", n_trials=1, output_dir=tmp_path / "out", heartbeat_interval=1, grace_period=5, **tiny)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE]
    assert study.user_attrs[CONFIG_ATTR]["choices"] == {k: list(v) for k, v in sorted(TINY_CHOICES.items())}


def test_cli_reports_bad_choices_in_one_line_before_any_trial(tmp_path, capsys):
    from sb3_trading.cli import main

    out = tmp_path / "out"
    args = ["tune", "--n-trials", "1", "--timesteps", "128", "--eval-freq", "128", "--n-envs", "2", "--device", "cpu"]
    assert main([*args, "--output-dir", str(out), "--choices", "n_step=[64]", "net_arch=['tiny']"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did you mean 'n_steps'" in err and "Trial 0" not in err, err
    assert not out.exists()


def test_a_rollout_longer_than_the_trial_budget_is_warned_with_the_numbers():
    from sb3_trading.tuning.spaces import check_rollout_budget

    data = load_env_data(ENV, None, seed=0)
    choices = {**TINY_CHOICES, "n_steps": [64, 128]}
    with pytest.warns(UserWarning, match=r"timesteps=128 for n_steps in \[128\] \(n_envs=2: rollouts of \[256\] timesteps\)"):
        TradingObjective(ENV, "ppo", data, timesteps=128, eval_freq=128, n_envs=2, device="cpu", choices=choices)
    with pytest.warns(UserWarning, match=r"n_steps in \[1024, 2048\]"):  # the default choices
        check_rollout_budget("ppo", None, n_envs=4, timesteps=2048)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_rollout_budget("ppo", {"n_steps": [64]}, n_envs=2, timesteps=128)  # exactly one rollout: fine


def _sqlite_tables(path):
    import sqlite3

    connection = sqlite3.connect(path)
    try:
        return {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        connection.close()


@pytest.mark.parametrize(
    "kind, match, fix",
    [
        ("random-bytes", "is not a usable SQLite database", "point --storage at another file"),
        ("other-database", "SQLite database of something else", "point --storage at another file"),
        ("missing-folder", "does not exist", "create it"),
        ("folder", "names a folder", "use sqlite:///"),
        ("memory", "in-memory SQLite", "Use a file URL, sqlite:///path/to/study.db"),
        ("memory-explicit", "in-memory SQLite", "Use a file URL, sqlite:///path/to/study.db"),
        ("unknown-dialect", "SQLAlchemy knows no database 'foo'", "postgresql://user:password@host:port/db"),
        ("not-a-url", "not a SQLAlchemy URL", "sqlite:///path/to/study.db"),
        ("no-server", "cannot use the study storage 'postgresql", "that the database server runs and is reachable"),
    ],
)
def test_unusable_storages_are_one_line_errors_that_name_the_storage_and_the_fix(tmp_path, capsys, kind, match, fix):
    """Through the CLI: exit 2 and one line on stderr (no SQLAlchemy traceback), and the file is left as it was."""
    import sqlite3

    from sb3_trading.cli import main

    path = tmp_path / "study.db"
    if kind == "random-bytes":
        path.write_bytes(np.random.default_rng(0).bytes(4096))
    elif kind == "other-database":
        connection = sqlite3.connect(path)
        connection.execute("CREATE TABLE prices (t INTEGER, close REAL)")
        connection.commit()
        connection.close()
    url = {
        "missing-folder": f"sqlite:///{tmp_path / 'nowhere' / 'study.db'}",
        "folder": f"sqlite:///{tmp_path}",
        "memory": "sqlite://",
        "memory-explicit": "sqlite:///:memory:",
        "unknown-dialect": "foo://bar",
        "not-a-url": "study.db",
        "no-server": "postgresql://nobody@127.0.0.1:1/x",
    }.get(kind, f"sqlite:///{path}")
    before = path.read_bytes() if path.exists() else None
    args = ["tune", "--n-trials", "1", "--timesteps", "128", "--eval-freq", "128", "--n-envs", "2", "--device", "cpu"]
    args += ["--choices", "n_steps=[64]", "batch_size=[64]", "net_arch=['tiny']"]
    assert main([*args, "--output-dir", str(tmp_path / "out"), "--storage", url]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and match in err and fix in err, err
    assert "Traceback" not in err and "sqlalche.me" not in err
    if before is not None:
        assert path.read_bytes() == before  # nothing written into a file that is not a study
    if kind == "other-database":
        assert _sqlite_tables(path) == {"prices"}


def test_a_study_file_damaged_after_it_opened_is_a_clear_error(tmp_path, monkeypatch):
    """A file whose header is intact but whose pages are not ("database disk image is malformed") fails when
    Optuna reads it: still a ValueError naming the storage, not a SQLAlchemy traceback."""
    from sb3_trading.tuning import study as study_module

    def malformed(*args, **kwargs):
        raise sqlalchemy.exc.DatabaseError("SELECT", {}, Exception("database disk image is malformed"))

    monkeypatch.setattr(study_module.optuna, "create_study", malformed)
    url = f"sqlite:///{tmp_path / 'study.db'}"
    with pytest.raises(ValueError, match=r"cannot use the study storage .*study\.db.*malformed\. .*another database"):
        run_study(ENV, "ppo", n_trials=1, storage=url, heartbeat_interval=1, grace_period=5, **dict(TINY, timesteps=128))


# ----------------------------------------------------------------------------- studies, resuming, export
def test_heartbeat_settings_are_checked():
    with pytest.raises(ValueError, match="grace_period"):
        make_storage("sqlite:///:memory:", heartbeat_interval=10, grace_period=5)


@pytest.mark.parametrize(
    "error, message",
    [
        ("OperationalError", "table studies already exists"),  # SQLite
        ("ProgrammingError", 'relation "studies" already exists'),  # PostgreSQL's DuplicateTable
    ],
)
def test_storage_retries_when_another_worker_is_creating_the_schema(tmp_path, monkeypatch, error, message):
    """Two workers starting on an empty database race to create Optuna's tables; the loser's CREATE TABLE fails
    with "already exists" (SQLite: OperationalError, PostgreSQL: ProgrammingError): the storage connects again."""
    real = optuna.storages.RDBStorage
    calls = []

    def racing(url, **kwargs):
        calls.append(url)
        if len(calls) == 1:
            raise getattr(sqlalchemy.exc, error)("CREATE TABLE studies", {}, Exception(message))
        return real(url, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", racing)
    url = f"sqlite:///{tmp_path / 'race.db'}"
    storage = make_storage(url, heartbeat_interval=1, grace_period=5)
    assert len(calls) == 2 and isinstance(storage, real)

    def unreachable(url, **kwargs):
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("unable to open database file"))

    monkeypatch.setattr(optuna.storages, "RDBStorage", unreachable)
    with pytest.raises(ValueError, match="unable to open database file"):  # other operational errors still fail at once
        make_storage(url, heartbeat_interval=1, grace_period=5)


@pytest.fixture(scope="module")
def qppo_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune")
    study = run_study(ENV, "qppo", n_trials=2, output_dir=out, seed=0, heartbeat_interval=1, grace_period=5, **TINY)
    return study, out


def test_default_storage_is_a_sqlite_file_named_after_the_study(qppo_study):
    study, out = qppo_study
    assert study.study_name == "qppo_MultiAsset-v0"
    assert (out / "qppo_MultiAsset-v0.db").is_file()
    loaded = optuna.load_study(study_name=study.study_name, storage=f"sqlite:///{out / 'qppo_MultiAsset-v0.db'}")
    assert len(loaded.trials) == 2 and loaded.user_attrs[CONFIG_ATTR]["algo"] == "qppo"
    assert loaded.user_attrs[CONFIG_ATTR]["final_score"] == "final model, after the last update"


def test_a_finished_study_runs_nothing_more_and_refuses_other_settings(qppo_study):
    study, out = qppo_study
    again = run_study(ENV, "qppo", n_trials=2, output_dir=out, seed=0, heartbeat_interval=1, grace_period=5, **TINY)
    assert [t.datetime_complete for t in again.trials] == [t.datetime_complete for t in study.trials]
    with pytest.raises(ValueError, match="timesteps"):
        run_study(ENV, "qppo", n_trials=3, output_dir=out, seed=0, **{**TINY, "timesteps": 256})
    # the calendar and the risk-free rate are part of what makes trial values comparable
    config = study.user_attrs[CONFIG_ATTR]
    assert config["risk_free"] == 0.0 and config["periods_per_year"] == 252.0
    with pytest.raises(ValueError, match="risk_free"):
        run_study(ENV, "qppo", n_trials=3, output_dir=out, seed=0, risk_free=0.04, **TINY)


def test_studies_created_before_the_risk_free_rate_was_recorded_still_resume():
    from sb3_trading.tuning.study import _check_study_config

    study = optuna.create_study()
    study.set_user_attr(CONFIG_ATTR, {"algo": "ppo"})  # an old study: no risk_free, no periods_per_year
    _check_study_config(study, {"algo": "ppo", "risk_free": 0.0, "periods_per_year": 252.0})
    with pytest.raises(ValueError, match="periods_per_year: study has 252.0, this run 8760.0"):
        _check_study_config(study, {"algo": "ppo", "risk_free": 0.0, "periods_per_year": 8760.0})
    with pytest.raises(ValueError, match="risk_free"):
        _check_study_config(study, {"algo": "ppo", "risk_free": 0.04, "periods_per_year": 252.0})


def test_studies_scored_before_the_final_evaluation_fix_are_not_resumed():
    """Old studies scored a trial by its last periodic evaluation when it fell on the last timestep (before the last
    update); new trials score the final model: resuming would mix the two, so it is refused."""
    from sb3_trading.tuning.study import FINAL_SCORE, _check_study_config

    old = optuna.create_study()
    old.set_user_attr(CONFIG_ATTR, {"algo": "ppo", "risk_free": 0.0, "periods_per_year": 252.0})
    with pytest.raises(ValueError, match="final_score: study has 'last periodic evaluation"):
        _check_study_config(old, {"algo": "ppo", "risk_free": 0.0, "periods_per_year": 252.0, "final_score": FINAL_SCORE})


def test_tune_arguments_take_several_data_values_and_the_risk_free_rate():
    parser = add_tune_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--n-trials", "1", "--data", "a.csv", "b.csv", "--join", "inner", "--risk-free", "0.04"])
    assert (args.data_path, args.join, args.risk_free) == (["a.csv", "b.csv"], "inner", 0.04)
    args = parser.parse_args(["--n-trials", "1"])
    assert (args.data_path, args.join, args.risk_free) == (None, "exact", 0.0)


def test_policy_kwargs_merge_keeps_untuned_expressions():
    merged = merge_policy_kwargs("dict(net_arch=[64, 64], activation_fn=nn.ReLU, n_quantiles=32)", {"n_quantiles": 40})
    assert merged == "dict(net_arch=[64, 64], activation_fn=nn.ReLU, n_quantiles=40)"
    with pytest.raises(ValueError, match="dict"):
        merge_policy_kwargs("[64, 64]", {})


@pytest.mark.slow
def test_best_params_export_round_trips_and_trains_in_rl_zoo3(qppo_study, tmp_path):
    study, _ = qppo_study
    path = export_best_params(study, "qppo", ENV, tmp_path / "best_qppo.yml")
    configs = yaml.safe_load(path.read_text())
    assert list(configs) == [ENV]
    entry = configs[ENV]
    base = yaml.safe_load(zoo_config_path("qppo").read_text())[ENV]
    assert entry["n_timesteps"] == base["n_timesteps"] and entry["env_kwargs"] == base["env_kwargs"]
    best = study.best_trial
    for key in ("n_steps", "batch_size", "gamma", "gae_lambda", "learning_rate", "ent_coef", "clip_range", "n_epochs"):
        assert entry[key] == best.params[key], key
    assert (entry["risk"], entry["huber_kappa"]) == (best.params["risk"], best.params["huber_kappa"])
    # tuned keys replaced, the base's untuned ones (its AdamW weight decay) kept as written
    assert entry["policy_kwargs"] == (
        f"dict(net_arch=[64], n_quantiles={best.params['n_quantiles']}, optimizer_class=th.optim.AdamW, "
        "optimizer_kwargs=dict(weight_decay=1.0))"
    )
    assert entry["n_envs"] == 2  # the rollout size the parameters were tuned for
    check_zoo_config(path, "qppo", ENV)

    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump({ENV: {**entry, "learning_rat": 0.1}}))
    with pytest.raises(ValueError, match="learning_rat"):
        check_zoo_config(bad, "qppo", ENV)

    logs = tmp_path / "logs"
    command = [sys.executable, "-m", "sb3_trading.zoo", "train", "--algo", "qppo", "--env", ENV, "--conf-file", str(path)]
    command += ["-f", str(logs), "-n", "256", "-params", "n_envs:2", "n_steps:64", "batch_size:64", "--seed", "0"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=SUBPROCESS_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(list(logs.glob(f"qppo/*/{ENV.replace('/', '-')}.zip"))) == 1


# ----------------------------------------------------------------------------- selection bias: the deflated Sharpe
def _moments_trial(value, sharpe, n=250, skew=0.0, kurtosis=3.0, ppy=252.0, state=None):
    """A finished trial carrying the return statistics the objective records."""
    from sb3_trading.tuning.objective import SHARPE_MOMENTS_ATTR

    moments = {"sharpe": sharpe, "n": n, "skew": skew, "kurtosis": kurtosis, "periods_per_year": ppy}
    moments = None if sharpe is None else moments
    state = state or optuna.trial.TrialState.COMPLETE
    return optuna.trial.create_trial(
        state=state,
        value=value if state == optuna.trial.TrialState.COMPLETE else None,
        params={},
        distributions={},
        user_attrs={SHARPE_MOMENTS_ATTR: moments, "validation_metrics": {"sharpe": value}},
    )


def test_the_best_trials_deflated_sharpe_is_the_formula_on_the_stored_trial_values():
    from sb3_trading.evaluation.overfitting import deflated_sharpe_ratio, expected_max_sharpe, probabilistic_sharpe_ratio
    from sb3_trading.tuning.study import best_trial_deflated_sharpe

    study = optuna.create_study(direction="maximize")
    sharpes = [0.02, 0.09, -0.03, 0.05, 0.11, 0.0]  # per period; trial 4 is the best
    for k, sr in enumerate(sharpes):
        study.add_trial(_moments_trial(sr * np.sqrt(252.0), sr, n=300 + k, skew=-0.5 + 0.1 * k, kurtosis=5.0 + k))
    study.add_trial(_moments_trial(None, 0.5, state=optuna.trial.TrialState.PRUNED))  # not counted
    stats = best_trial_deflated_sharpe(study)
    best = study.best_trial
    m = best.user_attrs["validation_sharpe_moments"]
    variance = np.var(sharpes, ddof=1)
    by_hand = deflated_sharpe_ratio(
        n_trials=6, sharpe_variance=variance, sharpe=m["sharpe"], n=m["n"], skew=m["skew"], kurtosis=m["kurtosis"]
    )
    psr = probabilistic_sharpe_ratio(sharpe=m["sharpe"], n=m["n"], skew=m["skew"], kurtosis=m["kurtosis"])
    assert best.number == 4 and stats["n_trials"] == 6 and stats["n_trials_with_sharpe"] == 6
    assert stats["dsr"] == by_hand and stats["psr"] == psr and stats["sharpe_variance"] == pytest.approx(variance)
    assert stats["expected_max_sharpe"] == expected_max_sharpe(6, variance) > 0
    assert stats["sharpe_annualised"] == pytest.approx(0.11 * np.sqrt(252.0))
    assert stats["expected_max_sharpe_annualised"] == pytest.approx(stats["expected_max_sharpe"] * np.sqrt(252.0))
    assert 0.0 < stats["dsr"] < stats["psr"] <= 1.0 and stats["reason"] is None
    # more (equally spread) trials deflate more
    for k, sr in enumerate(sharpes[:-1]):
        study.add_trial(_moments_trial(sr * np.sqrt(252.0) - 0.01, sr - 0.001, n=300 + k))
    assert best_trial_deflated_sharpe(study)["dsr"] < stats["dsr"]


def test_deflated_sharpe_conventions_one_trial_equal_sharpes_and_undefined_statistics():
    import json

    from sb3_trading.commands.tune import format_deflated_sharpe
    from sb3_trading.tuning.study import best_trial_deflated_sharpe

    one = optuna.create_study(direction="maximize")
    one.add_trial(_moments_trial(1.0, 0.063, skew=-1.0, kurtosis=8.0))
    stats = best_trial_deflated_sharpe(one)
    assert stats["n_trials"] == 1 and stats["sharpe_variance"] is None and stats["expected_max_sharpe"] == 0.0
    assert stats["dsr"] == stats["psr"]  # one trial selects nothing: the PSR against 0
    assert "1 completed trial: no selection" in format_deflated_sharpe(stats)

    equal = optuna.create_study(direction="maximize")
    for _ in range(3):
        equal.add_trial(_moments_trial(1.0, 0.063))
    stats = best_trial_deflated_sharpe(equal)
    assert stats["sharpe_variance"] == 0.0 and stats["expected_max_sharpe"] == 0.0 and stats["dsr"] == stats["psr"]

    # a flat (never trading) trial has no Sharpe ratio: counted in N, not in the variance; alone beside the best,
    # the variance is undefined and so is the DSR
    flat = optuna.create_study(direction="maximize")
    flat.add_trial(_moments_trial(1.0, 0.063))
    flat.add_trial(_moments_trial(0.0, None))
    stats = best_trial_deflated_sharpe(flat)
    assert (stats["n_trials"], stats["n_trials_with_sharpe"]) == (2, 1)
    assert stats["dsr"] is None and stats["psr"] is not None and "variance" in stats["reason"]
    assert "deflated Sharpe n/a" in format_deflated_sharpe(stats)
    flat.add_trial(_moments_trial(0.5, 0.03))
    assert best_trial_deflated_sharpe(flat)["dsr"] is not None

    best_flat = optuna.create_study(direction="maximize")
    best_flat.add_trial(_moments_trial(0.0, None))
    best_flat.add_trial(_moments_trial(-1.0, -0.06))
    stats = best_trial_deflated_sharpe(best_flat)
    assert stats["psr"] is None and stats["dsr"] is None and "no validation Sharpe ratio" in stats["reason"]
    for case in (one, equal, flat, best_flat):
        json.dumps(best_trial_deflated_sharpe(case), allow_nan=False)  # strict JSON


def test_objective_records_the_final_models_validation_return_moments(objective):
    """The stored per-period Sharpe, n, skew and raw kurtosis are sharpe_moments of the final model's validation
    excess returns: the per-period Sharpe times sqrt(P) is the trial's (annualised) validation Sharpe."""
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    m, metrics = trial.user_attrs["validation_sharpe_moments"], trial.user_attrs["validation_metrics"]
    assert set(m) == {"sharpe", "n", "skew", "kurtosis", "periods_per_year"}
    # one return per decision but the last validation bar's (it is only marked)
    assert m["n"] == metrics["n_periods"] == objective.validation_rows - 1 and m["periods_per_year"] == 252.0
    assert m["sharpe"] * np.sqrt(252.0) == pytest.approx(trial.value, rel=1e-9)
    # the biased moments of sharpe_moments vs the bias-adjusted ones of the metrics, on the same returns
    n = m["n"]
    assert np.sqrt(n * (n - 1)) / (n - 2) * m["skew"] == pytest.approx(metrics["skewness"])
    g2 = m["kurtosis"] - 3.0
    assert (n - 1) / ((n - 2) * (n - 3)) * ((n + 1) * g2 + 6.0) == pytest.approx(metrics["excess_kurtosis"])


def test_tune_prints_and_writes_the_deflated_sharpe_of_the_best_trial(tmp_path, capsys):
    import json

    from sb3_trading.cli import main
    from sb3_trading.evaluation.overfitting import deflated_sharpe_ratio

    out = tmp_path / "out"
    args = ["tune", "--n-trials", "2", "--timesteps", "128", "--eval-freq", "128", "--n-envs", "2", "--device", "cpu"]
    args += ["--choices", "n_steps=[64]", "batch_size=[64]", "net_arch=['tiny']", "n_epochs=[1]", "--output-dir", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    summary = json.loads((out / "summary_ppo.json").read_text())  # strict JSON: json.loads would take NaN, check it
    json.dumps(summary, allow_nan=False)
    stats = summary["best"]["deflated_sharpe"]
    study = optuna.load_study(study_name="ppo_MultiAsset-v0", storage=f"sqlite:///{out / 'ppo_MultiAsset-v0.db'}")
    sharpes = [t.user_attrs["validation_sharpe_moments"]["sharpe"] for t in study.trials]
    m = study.best_trial.user_attrs["validation_sharpe_moments"]
    variance = np.var(sharpes, ddof=1)
    by_hand = deflated_sharpe_ratio(
        n_trials=2, sharpe_variance=variance, sharpe=m["sharpe"], n=m["n"], skew=m["skew"], kurtosis=m["kurtosis"]
    )
    assert stats["n_trials"] == 2 and stats["dsr"] == pytest.approx(by_hand, rel=1e-12)
    assert stats["dsr"] <= stats["psr"]
    assert summary["best"]["validation_sharpe"] == pytest.approx(stats["sharpe_annualised"], rel=1e-9)
    line = (
        f"validation Sharpe {stats['sharpe_annualised']:.2f} (annualised, {stats['n_periods']} bars), deflated Sharpe "
        f"{stats['dsr']:.2f} = P(true Sharpe > {stats['expected_max_sharpe_annualised']:.2f}, the expected best of 2 "
        f"skill-less trials), PSR {stats['psr']:.2f} = P(true Sharpe > 0)"
    )
    assert line in text, text
    assert f"summary (JSON): {out / 'summary_ppo.json'}" in text


# ----------------------------------------------------------------------------- a killed worker
WORKER = textwrap.dedent(
    """
    import argparse, sys
    from sb3_trading.tuning.commands import add_tune_arguments, tune_from_args
    tune_from_args(add_tune_arguments(argparse.ArgumentParser()).parse_args(sys.argv[1:]))
    """
)
HEARTBEAT, GRACE = 1, 2


def tune_args(out, *extra):
    return [
        "--env", ENV, "--algo", "ppo", "--n-trials", "3", "--output-dir", str(out), "--timesteps", "1024",
        "--eval-freq", "128", "--n-envs", "2", "--device", "cpu", "--heartbeat-interval", str(HEARTBEAT),
        "--grace-period", str(GRACE), "--choices", "n_steps=[64]", "batch_size=[64]", "net_arch=['tiny']", "n_epochs=[1]",
        *extra,
    ]  # fmt: skip


def snapshot(trial):
    return trial.number, trial.state, trial.value, trial.params, trial.datetime_complete


@pytest.mark.slow  # ~20 s: kills a worker process mid-trial and waits out the heartbeat
def test_sqlite_study_survives_a_killed_worker(tmp_path):
    """SIGKILL a worker mid-trial; the rerun keeps the finished trials, fails and retries the killed one, ends at 3."""
    db = tmp_path / "ppo_MultiAsset-v0.db"
    storage = f"sqlite:///{db}"
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, *tune_args(tmp_path, "--worker-id", "killed")],
        env=SUBPROCESS_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    killed, deadline = False, time.monotonic() + 240
    try:
        while not killed:
            assert worker.poll() is None, f"the worker ended before it could be killed: {worker.stderr.read()[-3000:]}"
            assert time.monotonic() < deadline, "no trial completed in time"
            try:
                trials = optuna.load_study(study_name="ppo_MultiAsset-v0", storage=storage).trials if db.exists() else []
            except (KeyError, sqlalchemy.exc.SQLAlchemyError):
                trials = []  # the worker has not created the study yet, or holds the write lock
            complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
            # kill mid-training: a trial that has already reported (so its heartbeat is recorded) and is still running
            running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING and t.intermediate_values]
            if complete and running:
                worker.send_signal(signal.SIGKILL)
                killed = True
            else:
                time.sleep(0.05)
    finally:
        worker.kill()
        worker.wait()
    assert worker.returncode == -signal.SIGKILL
    before = {t.number: snapshot(t) for t in optuna.load_study(study_name="ppo_MultiAsset-v0", storage=storage).trials}
    # the trial the kill interrupted (the one polled above, or the next if that one finished in the meantime)
    stale = [number for number, old in before.items() if old[1] == optuna.trial.TrialState.RUNNING]
    assert len(stale) == 1, before
    killed_trial = optuna.load_study(study_name="ppo_MultiAsset-v0", storage=storage).trials[stale[0]]

    # wait out the grace period (+1 s for SQLite's whole-second clock): the rerun's first trial start fails it
    time.sleep(GRACE + 2)
    parser = add_tune_arguments(argparse.ArgumentParser())
    summary = tune_from_args(parser.parse_args(tune_args(tmp_path, "--worker-id", "rerun")))

    study = optuna.load_study(study_name="ppo_MultiAsset-v0", storage=storage)
    trials = study.trials
    for number, old in before.items():  # finished trials untouched
        if old[1] == optuna.trial.TrialState.COMPLETE:
            assert snapshot(trials[number]) == old
    assert trials[killed_trial.number].state == optuna.trial.TrialState.FAIL
    retries = [t for t in trials if t.system_attrs.get("failed_trial") == killed_trial.number]
    assert len(retries) == 1 and retries[0].params == killed_trial.params
    assert retries[0].state == optuna.trial.TrialState.COMPLETE and retries[0].user_attrs["worker_id"] == "rerun"
    finished = [t for t in trials if t.state in (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)]
    assert len(finished) == 3
    assert [t.number for t in trials] == list(range(len(trials)))

    assert summary["best_config"] and (tmp_path / "best_ppo.yml").is_file()
    text = format_tune_summary(summary)
    assert "3 complete, 1 fail" in text and f"best trial #{study.best_trial.number}" in text
