"""``sb3-trading tune``: argparse -> :class:`~sb3_trading.tuning.commands.TuneConfig` -> the study.

Importing this module does not import Optuna (``sb3-trading --help`` works without it);
:func:`~sb3_trading.tuning.commands.run_tune` does, and says how to install it when it is missing.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from sb3_trading.commands.common import (
    add_data_arguments,
    add_resample_arguments,
    add_risk_free_argument,
    data_arg,
    parse_kwargs,
)
from sb3_trading.recipe import DEFAULT_ENV_ID
from sb3_trading.tuning.commands import DEFAULT_OUTPUT_DIR, TuneConfig, run_tune

__all__ = ["add_tune_arguments", "format_deflated_sharpe", "format_tune_summary", "tune_config_from_args", "tune_from_args"]


def add_tune_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``sb3-trading tune``'s arguments to ``parser`` (a subparser)."""
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
    add_resample_arguments(parser)
    return parser


def tune_config_from_args(args: argparse.Namespace) -> TuneConfig:
    """The :class:`~sb3_trading.tuning.commands.TuneConfig` of :func:`add_tune_arguments`' namespace."""
    choices = parse_kwargs(args.choices, "--choices")
    for key, value in choices.items():
        if not isinstance(value, (list, tuple)):
            choices[key] = [value]
    return TuneConfig(
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
        resample=args.resample,
        n_paths=args.n_paths,
    )


def tune_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`~sb3_trading.tuning.commands.run_tune` from :func:`add_tune_arguments`' namespace."""
    return run_tune(tune_config_from_args(args))


def format_deflated_sharpe(stats: Mapping[str, Any]) -> str:
    """One line of :func:`~sb3_trading.tuning.study.best_trial_deflated_sharpe`: the best trial's annualised validation
    Sharpe ratio, its deflated Sharpe ratio given the number of completed trials, and its PSR against 0."""
    head = (
        "validation Sharpe n/a"
        if stats.get("sharpe_annualised") is None
        else f"validation Sharpe {stats['sharpe_annualised']:.2f} (annualised, {stats['n_periods']} bars)"
    )
    n_trials = stats["n_trials"]
    if stats.get("dsr") is None:
        psr = "" if stats.get("psr") is None else f", PSR {stats['psr']:.2f} = P(true Sharpe > 0)"
        return f"{head}{psr}; deflated Sharpe n/a: {stats.get('reason') or 'undefined'}"
    if n_trials == 1:
        return f"{head}, deflated Sharpe {stats['dsr']:.2f} = PSR = P(true Sharpe > 0) (1 completed trial: no selection)"
    return (
        f"{head}, deflated Sharpe {stats['dsr']:.2f} = P(true Sharpe > {stats['expected_max_sharpe_annualised']:.2f}, "
        f"the expected best of {n_trials} skill-less trials), PSR {stats['psr']:.2f} = P(true Sharpe > 0)"
    )


def format_tune_summary(summary: Mapping[str, Any]) -> str:
    """The text the CLI prints: trial counts by state, the best trial (with its deflated Sharpe ratio) and the files."""
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
        if best.get("deflated_sharpe"):
            lines.append(f"  {format_deflated_sharpe(best['deflated_sharpe'])}")
        width = max(map(len, best["params"]), default=0) + 2
        lines.extend(f"  {key:<{width}}{value}" for key, value in best["params"].items())
    if summary.get("best_config"):
        lines.append(f"best parameters (rl-zoo3 yml): {summary['best_config']}")
    if summary.get("summary_path"):
        lines.append(f"summary (JSON): {summary['summary_path']}")
    return "\n".join(lines)
