"""The logic of ``sb3-trading tune``, as library functions.

``cli.py`` adds the subparser (:func:`add_tune_arguments`) and prints :func:`format_tune_summary` of
:func:`tune_from_args`'s result. Importing this module does not import Optuna (``sb3-trading --help``
works without it); running the command does, and says how to install it when it is missing.

::

    sb3-trading tune --env sb3_trading/MultiAsset-v0 --algo ppo --n-trials 50          # SQLite: runs/tune/ppo_MultiAsset-v0.db
    sb3-trading tune --algo ppo --n-trials 200 --storage postgresql://user:pw@db-host:5432/optuna   # on every machine
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = "runs/tune"


def add_tune_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``sb3-trading tune``'s arguments to ``parser`` (a subparser)."""
    from sb3_trading.evaluation.commands import add_data_arguments, add_risk_free_argument
    from sb3_trading.training import DEFAULT_ENV_ID

    parser.add_argument("--env", default=DEFAULT_ENV_ID, help="registered env ID (default: %(default)s)")
    parser.add_argument("--algo", default="ppo", help="ppo, ppo_mask, ppo_lstm, qppo, qppo_mask (default: %(default)s)")
    parser.add_argument(
        "--n-trials",
        type=int,
        required=True,
        help="total finished (complete or pruned) trials of the study, over all runs and workers; a rerun continues",
    )
    parser.add_argument("--timeout", type=float, default=None, help="stop this worker after S seconds (after its trial)")
    parser.add_argument(
        "--storage",
        default=None,
        help="SQLAlchemy URL of the study storage, e.g. postgresql://user:pw@host:5432/db to share one study between "
        "machines (default: sqlite:///<output-dir>/<study-name>.db)",
    )
    parser.add_argument("--study-name", default=None, help="study name (default: <algo>_<Env>)")
    parser.add_argument("--timesteps", type=int, default=20_000, help="training timesteps per trial (default: %(default)s)")
    parser.add_argument(
        "--eval-freq", type=int, default=5_000, help="validation backtest and pruning check every N timesteps (default: 5000)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, of every trial's training and of the sampler")
    parser.add_argument("--n-envs", type=int, default=4, help="parallel training envs per trial (default: %(default)s)")
    add_data_arguments(parser)
    add_risk_free_argument(parser)
    parser.add_argument(
        "--output-dir", default=DEFAULT_OUTPUT_DIR, help="folder of the SQLite study and best_<algo>.yml (default: runs/tune)"
    )
    parser.add_argument("--env-kwargs", nargs="*", metavar="KEY=VALUE", help="env arguments, e.g. window=5")
    parser.add_argument(
        "--choices",
        nargs="*",
        metavar="KEY=LIST",
        help="replace categorical choices of the search space, e.g. n_steps=[128,256] net_arch=['small']",
    )
    parser.add_argument("--device", default="auto", help="torch device (default: %(default)s)")
    parser.add_argument("--worker-id", default=None, help="name of this worker in the trials (default: <host>-<pid>)")
    parser.add_argument(
        "--heartbeat-interval", type=int, default=60, help="seconds between heartbeats of a running trial (default: 60)"
    )
    parser.add_argument(
        "--grace-period",
        type=int,
        default=None,
        help="seconds without heartbeat after which a running trial (of a killed worker) is failed and re-queued "
        "(default: twice the interval)",
    )
    return parser


def run_tune_command(
    env_id: str,
    algo: str,
    n_trials: int,
    output_dir: str | Path = DEFAULT_OUTPUT_DIR,
    **kwargs: Any,
) -> dict[str, Any]:
    """Run (or resume) the study, then write ``<output_dir>/best_<algo>.yml`` when a trial has completed.

    :param kwargs: further :func:`sb3_trading.tuning.study.run_study` arguments.
    :return: :func:`~sb3_trading.tuning.study.study_summary` plus ``storage`` (password hidden), ``algo``,
        ``env_id``, ``n_trials_target`` and ``best_config`` (the yml path, or ``None``).
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
    return summary


def tune_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`run_tune_command` from :func:`add_tune_arguments`' namespace."""
    from sb3_trading.cli import parse_kwargs
    from sb3_trading.evaluation.commands import data_arg

    choices = parse_kwargs(args.choices, "--choices")
    for key, value in choices.items():
        if not isinstance(value, (list, tuple)):
            choices[key] = [value]
    return run_tune_command(
        env_id=args.env,
        algo=args.algo,
        n_trials=args.n_trials,
        output_dir=args.output_dir,
        timeout=args.timeout,
        storage=args.storage,
        study_name=args.study_name,
        timesteps=args.timesteps,
        eval_freq=args.eval_freq,
        seed=args.seed,
        n_envs=args.n_envs,
        env_kwargs=parse_kwargs(args.env_kwargs, "--env-kwargs"),
        data_path=data_arg(args.data_path),
        join=args.join,
        risk_free=args.risk_free,
        device=args.device,
        worker_id=args.worker_id,
        choices=choices or None,
        heartbeat_interval=args.heartbeat_interval,
        grace_period=args.grace_period,
    )


def format_tune_summary(summary: Mapping[str, Any]) -> str:
    """The text the CLI prints: trial counts by state, the best trial and the exported yml."""
    states = ", ".join(f"{n} {name.lower()}" for name, n in summary["states"].items()) or "no trials"
    lines = [
        f"Study {summary['study_name']!r} ({summary['algo']} on {summary['env_id']}) in {summary['storage']}",
        f"trials: {summary['n_trials']} ({states}); target {summary['n_trials_target']} finished",
        f"workers: {', '.join(summary['workers']) or '-'}",
    ]
    best = summary.get("best")
    if best is None:
        lines.append("no completed trial yet")
    else:
        lines.append(f"best trial #{best['number']}: validation score {best['value']:.4f} (worker {best['worker_id']})")
        width = max(map(len, best["params"]), default=0) + 2
        lines.extend(f"  {key:<{width}}{value}" for key, value in best["params"].items())
    if summary.get("best_config"):
        lines.append(f"best parameters (rl-zoo3 yml): {summary['best_config']}")
    return "\n".join(lines)


__all__ = ["add_tune_arguments", "format_tune_summary", "run_tune_command", "tune_from_args"]
