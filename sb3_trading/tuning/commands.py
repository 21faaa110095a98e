"""The library form of ``sb3-trading tune``: :class:`TuneConfig` and :func:`run_tune`.

The argparse glue lives in :mod:`sb3_trading.commands.tune` (the commands layer); ``add_tune_arguments``,
``tune_from_args`` and ``format_tune_summary`` stay importable from here for compatibility, resolved on
first use. Importing this module does not import Optuna; :func:`run_tune` does, and says how to install
it when it is missing.

::

    sb3-trading tune --env sb3_trading/MultiAsset-v0 --algo ppo --n-trials 50          # SQLite: runs/tune/ppo_MultiAsset-v0.db
    sb3-trading tune --algo ppo --n-trials 200 --storage postgresql://user:pw@db-host:5432/optuna   # on every machine
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sb3_trading.common.io import atomic_write_json, jsonable
from sb3_trading.recipe import (
    DEFAULT_ENV_ID,
    DEFAULT_N_PATHS,
    JOIN_CHOICES,
    check_device,
    check_positive_int,
    check_trading_env,
    data_source,
    resample_kind,
)

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = "runs/tune"


@dataclass
class TuneConfig:
    """Everything ``sb3-trading tune`` needs; see :func:`sb3_trading.tuning.study.run_study` for each field.

    :param env_id: registered ``sb3_trading`` env ID.
    :param algo: ``ppo``, ``ppo_mask``, ``ppo_lstm``, ``qppo`` or ``qppo_mask``.
    :param n_trials: total finished trials of the study (over all runs and workers).
    :param output_dir: folder of the SQLite study and ``best_<algo>.yml``.
    :param choices: categorical choices replacing the search space's (``{"n_steps": [128, 256]}``).
    :param resample: how each trial's training market is resampled every episode, as ``sb3-trading train``
        (:data:`~sb3_trading.recipe.RESAMPLE_CHOICES`; ``auto``: fresh synthetic paths on the synthetic market,
        bootstrap paths of the training fold on files).
    :param n_paths: paths of the resampled training market.
    """

    env_id: str = DEFAULT_ENV_ID
    algo: str = "ppo"
    n_trials: int = 10
    output_dir: str = DEFAULT_OUTPUT_DIR
    timeout: float | None = None
    storage: str | None = None
    study_name: str | None = None
    timesteps: int = 20_000
    eval_freq: int = 5_000
    seed: int = 0
    n_envs: int = 4
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    data_path: str | list[str] | None = None
    join: str = "exact"
    risk_free: float = 0.0
    device: str = "auto"
    worker_id: str | None = None
    choices: dict[str, list[Any]] | None = None
    heartbeat_interval: int = 60
    grace_period: int | None = None
    resample: str = "auto"
    n_paths: int = DEFAULT_N_PATHS

    def validate(self) -> TuneConfig:
        """Check the fields that need no Optuna once, before any work; return a normalised copy."""
        from sb3_trading.algos import get_algo

        env_id = check_trading_env(self.env_id)
        algo_name, _ = get_algo(self.algo)
        check_positive_int(self.n_trials, "n_trials")
        check_positive_int(self.timesteps, "timesteps")
        check_positive_int(self.n_envs, "n_envs")
        check_device(self.device)
        if self.join not in JOIN_CHOICES:
            raise ValueError(f"join must be one of {JOIN_CHOICES}, got {self.join!r}")
        data_source(self.data_path)
        resample = resample_kind(self.resample, self.data_path)
        check_positive_int(self.n_paths, "n_paths")
        out = Path(self.output_dir)
        if out.exists() and not out.is_dir():
            raise ValueError(f"output dir {str(out)!r} is a file, not a folder")
        return TuneConfig(**{**asdict(self), "env_id": env_id, "algo": algo_name, "resample": resample})


def run_tune(config: TuneConfig) -> dict[str, Any]:
    """:func:`run_tune_command` of a validated :class:`TuneConfig`."""
    config = config.validate()
    kwargs = asdict(config)
    env_id, algo, n_trials, output_dir = (kwargs.pop(key) for key in ("env_id", "algo", "n_trials", "output_dir"))
    return run_tune_command(env_id, algo, n_trials, output_dir, **kwargs)


def run_tune_command(
    env_id: str,
    algo: str,
    n_trials: int,
    output_dir: str | Path = DEFAULT_OUTPUT_DIR,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run (or resume) the study, then write ``<output_dir>/best_<algo>.yml`` when a trial has completed.

    The summary is also written, as strict JSON, to ``<output_dir>/summary_<algo>.json`` (atomically, after every run).
    Its ``best["deflated_sharpe"]`` is the best trial's deflated Sharpe ratio given the study's completed trials
    (:func:`~sb3_trading.tuning.study.best_trial_deflated_sharpe`: per-period and annualised Sharpe ratios, PSR, DSR).

    :param kwargs: further :func:`sb3_trading.tuning.study.run_study` arguments.
    :return: :func:`~sb3_trading.tuning.study.study_summary` plus ``storage`` (password hidden), ``algo``,
        ``env_id``, ``n_trials_target``, ``best_config`` (the yml path, or ``None``) and ``summary_path`` (the JSON).
    """
    from sb3_trading.tuning import require_optuna

    require_optuna()
    from sb3_trading.algos import get_algo
    from sb3_trading.envs.registration import check_env_id
    from sb3_trading.tuning.study import default_storage_url, export_best_params, redact_url, run_study, study_summary

    env_id = check_env_id(env_id)
    algo_name, _ = get_algo(algo)
    study = run_study(env_id, algo_name, n_trials, output_dir=output_dir, **kwargs)
    summary = study_summary(study)
    storage = kwargs.get("storage") or default_storage_url(output_dir, study.study_name)
    summary.update(
        {"storage": redact_url(storage), "algo": algo_name, "env_id": env_id, "n_trials_target": n_trials, "best_config": None}
    )
    if summary["best"] is not None:
        path = export_best_params(study, algo_name, env_id, Path(output_dir) / f"best_{algo_name}.yml")
        summary["best_config"] = str(path)
    else:
        logger.warning("no trial of study %r has completed: no best_%s.yml written", study.study_name, algo_name)
    summary["summary_path"] = str(Path(output_dir) / f"summary_{algo_name}.json")
    atomic_write_json(summary["summary_path"], jsonable(summary))
    return summary


#: argparse glue moved to the commands layer, kept importable from here
_MOVED = ("add_tune_arguments", "format_tune_summary", "tune_from_args")


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module("sb3_trading.commands.tune"), name)
    raise AttributeError(f"module 'sb3_trading.tuning.commands' has no attribute {name!r}")


__all__ = ["DEFAULT_OUTPUT_DIR", "TuneConfig", "run_tune", "run_tune_command"]
