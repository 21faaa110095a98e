"""``sb3-trading train``: argparse -> :class:`~sb3_trading.training.TrainConfig` -> :func:`~sb3_trading.training.train`."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace
from typing import Any

from sb3_trading.callbacks import check_confidence
from sb3_trading.commands.common import (
    add_data_arguments,
    add_resample_arguments,
    add_risk_free_argument,
    data_arg,
    parse_kwargs,
)
from sb3_trading.evaluation.reference import format_skill_ratio
from sb3_trading.evaluation.report import describe_calendar
from sb3_trading.multi_seed import train_seeds
from sb3_trading.recipe import DEFAULT_ENV_ID, VEC_KINDS
from sb3_trading.training import DEFAULT_EVAL_CONFIDENCE, TrainConfig, resume_config, train

__all__ = [
    "add_train_arguments",
    "explicit_options",
    "format_seeds_summary",
    "format_train_summary",
    "train_config_from_args",
    "train_from_args",
]


def confidence_arg(text: str) -> float | None:
    """``--eval-confidence``: a probability in ``(0, 1)``, or ``none`` (the validation gate off)."""
    if text.strip().lower() == "none":
        return None
    try:
        return check_confidence(float(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{error} (got {text!r}; 'none' switches it off)") from None


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``sb3-trading train``'s arguments to ``parser`` (a subparser)."""
    defaults = TrainConfig()
    parser.add_argument("--env", default=DEFAULT_ENV_ID, help="registered env ID (default: %(default)s)")
    parser.add_argument("--algo", default=defaults.algo, help="ppo, ppo_mask, ppo_lstm, qppo, qppo_mask")
    parser.add_argument("--timesteps", type=int, default=defaults.timesteps, help="training steps (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed of data, envs and algorithm")
    parser.add_argument("--device", default=defaults.device, help="torch device: auto, cpu, cuda... (default: %(default)s)")
    add_data_arguments(parser)
    add_risk_free_argument(parser)
    parser.add_argument("--output-dir", default=defaults.output_dir, help="parent folder of runs (default: %(default)s)")
    parser.add_argument("--run-name", default=None, help="run folder name (default: <algo>_<env>_seed<seed>_<time>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run folder of the same name")
    parser.add_argument("--test-fraction", type=float, default=defaults.test_fraction, help="held-out tail")
    parser.add_argument("--n-envs", type=int, default=defaults.n_envs, help="parallel envs (default: %(default)s)")
    parser.add_argument("--episode-length", type=int, default=defaults.episode_length, help="training episode length")
    parser.add_argument("--env-kwargs", nargs="*", metavar="KEY=VALUE", help="env arguments, e.g. window=5")
    parser.add_argument("--hyperparams", nargs="*", metavar="KEY=VALUE", help="algorithm arguments, e.g. n_steps=128")
    parser.add_argument(
        "--reward",
        nargs="+",
        metavar="NAME[:ARG,KEY=VALUE]",
        default=[],
        help="reward wrappers, innermost first, e.g. differential_sharpe:0.05 drawdown:0.5,above=0.08 clip:1.0 "
        "(log_return, excess_return, differential_sharpe, rolling_sharpe, drawdown, cvar, volatility, turnover, "
        "smoothness, scale, clip)",
    )
    parser.add_argument(
        "--sizing",
        nargs="+",
        metavar="NAME[:ARG,KEY=VALUE]",
        default=[],
        help="position-sizing action wrappers, innermost first, e.g. vol_target:0.15,lookback=60, "
        "kelly:0.5,lookback=250,cap=1 or \"regime:'vol_regime:60',scales=(1,1,0.5)\" (vol_target, kelly, regime); "
        "the validation and held-out backtests run through them",
    )
    parser.add_argument(
        "--eval-freq",
        type=int,
        default=None,
        metavar="N",
        help="every N timesteps backtest on a validation tail of the training slice; model.zip is the best on "
        "validation, last_model.zip the final weights (default: 10 evaluations per run; 0: off, model.zip is the last)",
    )
    add_resample_arguments(parser)
    parser.add_argument("--eval-metric", default="sharpe", help="validation metric picking the best model")
    parser.add_argument("--patience", type=int, default=None, help="stop after N evaluations without a new best")
    parser.add_argument(
        "--eval-confidence",
        type=confidence_arg,
        default=DEFAULT_EVAL_CONFIDENCE,
        metavar="P",
        help="validation gate: keep the untrained policy unless a checkpoint's validation Sharpe is above 0 with "
        f"probability P (probabilistic Sharpe ratio; default {DEFAULT_EVAL_CONFIDENCE}; 'none': off)",
    )
    parser.add_argument(
        "--vec",
        choices=VEC_KINDS,
        default="auto",
        help="vectorised env: batched NumPy env where supported (auto: unless --reward or --sizing), or SB3's DummyVecEnv",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="YAML/JSON file of train options (TrainConfig names: timesteps, env_id, env_kwargs...); flags given on the "
        "command line override it; every run writes its effective config.yml",
    )
    parser.add_argument(
        "--checkpoint-freq", type=int, default=defaults.checkpoint_freq, metavar="N", help="checkpoint every N timesteps"
    )
    parser.add_argument("--max-minutes", type=float, default=None, metavar="M", help="stop training after M minutes")
    parser.add_argument(
        "--resume", default=None, metavar="RUN_DIR", help="continue a run from its last checkpoint (its config.yml)"
    )
    parser.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        metavar="S",
        help="one run per seed (instead of --seed) into <run-name>/seed_<S>/, then aggregate.json: per-seed held-out "
        "metrics, median and IQR, a bootstrap CI of the mean Sharpe across seeds",
    )
    parser.add_argument("--workers", type=int, default=1, metavar="N", help="with --seeds: runs in N processes at once")
    return parser


#: CLI destinations whose TrainConfig field has another name
_FIELD_OF_DEST = {"env": "env_id", "no_progress": "progress_bar"}


def explicit_options(argv: Sequence[str]) -> set[str]:
    """The TrainConfig fields the ``train`` arguments ``argv`` set explicitly (the flags given, whatever their value)."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=True)
    add_train_arguments(parser)
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    given, _ = parser.parse_known_args(list(argv))
    return {_FIELD_OF_DEST.get(dest, dest) for dest in vars(given)} - {"config", "resume", "seeds", "workers"}


def train_config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The :class:`~sb3_trading.training.TrainConfig` of :func:`add_train_arguments`' namespace."""
    return TrainConfig(
        env_id=args.env,
        algo=args.algo,
        timesteps=args.timesteps,
        seed=args.seed,
        device=args.device,
        data_path=data_arg(args.data_path),
        output_dir=args.output_dir,
        run_name=args.run_name,
        test_fraction=args.test_fraction,
        n_envs=args.n_envs,
        episode_length=args.episode_length,
        env_kwargs=parse_kwargs(args.env_kwargs, "--env-kwargs"),
        hyperparams=parse_kwargs(args.hyperparams, "--hyperparams"),
        progress_bar=not args.no_progress,
        reward=list(args.reward),
        sizing=list(args.sizing),
        eval_freq=args.eval_freq,
        eval_metric=args.eval_metric,
        patience=args.patience,
        eval_confidence=args.eval_confidence,
        vec=args.vec,
        join=args.join,
        risk_free=args.risk_free,
        overwrite=args.overwrite,
        resample=args.resample,
        n_paths=args.n_paths,
        checkpoint_freq=args.checkpoint_freq,
        max_minutes=args.max_minutes,
        resume=args.resume,
    )


def train_from_args(args: argparse.Namespace, argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run :func:`~sb3_trading.training.train` from :func:`add_train_arguments`' namespace; return the report.

    With ``--config FILE`` (or ``--resume RUN_DIR``, whose ``config.yml`` it reads) the file is the base and the
    flags of ``argv`` (the ``train`` arguments as given) override it; without ``argv`` every flag at a non-default
    value does.
    """
    config = train_config_from_args(args)
    if args.seeds is not None and args.resume is not None:
        raise ValueError("--seeds starts new runs; --resume continues one: pass one of them")
    if args.config is None and args.resume is None:
        return train(config) if args.seeds is None else train_seeds(config, args.seeds, args.workers)
    if args.config is not None and args.resume is not None:
        raise ValueError("pass --config FILE or --resume RUN_DIR, not both (a resumed run reads its own config.yml)")
    base = TrainConfig.from_file(args.config) if args.config is not None else resume_config(args.resume)
    if argv is not None:
        given = explicit_options(argv)
    else:
        defaults = TrainConfig()
        given = {f.name for f in fields(TrainConfig) if getattr(config, f.name) != getattr(defaults, f.name)}
    given -= {"resume"}
    merged = replace(base, **{name: getattr(config, name) for name in given})
    return train(merged) if args.seeds is None else train_seeds(merged, args.seeds, args.workers)


def format_seeds_summary(result: Mapping[str, Any]) -> str:
    """The text the CLI prints after ``--seeds``: one line per seed, the medians, IQRs and the mean Sharpe's CI."""

    def number(value: Any, spec: str) -> str:
        return "n/a" if value is None else format(value, spec)

    lines = ["", f"{result['algo']} on {result['env_id']}, {len(result['seeds'])} seeds (held-out):"]
    lines.append(f"{'seed':<8}{'return':>10}{'sharpe':>10}{'max_dd':>10}{'skill':>10}")
    for row in result["per_seed"]:
        lines.append(
            f"{row['seed']:<8}{number(row['total_return'], '.2%'):>10}{number(row['sharpe'], '.2f'):>10}"
            f"{number(row['max_drawdown'], '.2%'):>10}{number(row['skill'], '.2f'):>10}"
        )
    for name in ("sharpe", "skill"):
        s = result["summary"][name]
        if s["median"] is not None:
            lines.append(f"median {name} {s['median']:.2f} (IQR {s['iqr'][0]:.2f} .. {s['iqr'][1]:.2f}, {s['n']} seeds)")
    m = result["mean_sharpe"]
    if m["mean"] is not None:
        level = round(100 * (1 - m["alpha"]))
        lines.append(f"mean sharpe {m['mean']:.2f}, {level} % bootstrap CI across seeds [{m['low']:.2f}, {m['high']:.2f}]")
    lines.append(f"\nruns and aggregate.json: {result['run_dir']}")
    return "\n".join(lines)


def format_train_summary(report: Mapping[str, Any]) -> str:
    """The text the CLI prints after training: the held-out table (with the reference policies and the skill ratio
    when the report has them), assets, calendar and the run's files; after ``--seeds``, :func:`format_seeds_summary`."""
    if "per_seed" in report:
        return format_seeds_summary(report)
    agent, baselines = report["agent"]["metrics"], report["baselines"]
    rows = [(report["algo"], agent)] + [(name, result["metrics"]) for name, result in baselines.items()]
    rows += [(f"ref: {name}", result["metrics"]) for name, result in (report.get("references") or {}).items()]
    width = max(14, *(len(name) + 2 for name, _ in rows))
    lines = [
        "",
        f"Held-out backtest ({report['agent'].get('start', report['agent']['start_t'])} .. "
        f"{report['agent'].get('end', report['agent']['end_t'])}):",
        f"{'strategy':<{width}}{'return':>10}{'sharpe':>10}{'max_dd':>10}{'turnover':>10}",
    ]
    for name, m in rows:
        lines.append(
            f"{name:<{width}}{m['total_return']:>10.2%}{m['sharpe']:>10.2f}{m['max_drawdown']:>10.2%}{m['mean_turnover']:>10.3f}"
        )
    if report.get("skill_ratio"):
        lines.append(format_skill_ratio(report["skill_ratio"]))
    if report.get("stopped"):
        stopped = report["stopped"]
        lines.append(f"training stopped early ({stopped['reason']}) at {stopped['timesteps']} of {stopped['of']} timesteps")
    validation = report.get("validation") or {}
    if validation.get("selected_initial"):
        lines.append(
            f"model.zip is the policy training started from (the untrained one unless resumed): no checkpoint's "
            f"validation Sharpe was above 0 with probability >= {validation['confidence']} (the validation gate; "
            "last_model.zip holds the final weights, --eval-confidence none keeps the best checkpoint instead)"
        )
    lines.append(f"assets: {', '.join(report['data']['assets'])}; {describe_calendar(report)}")
    lines.append(f"\nmodel:  {report['model_path']}\nreport: {report['run_dir']}/report.json")
    return "\n".join(lines)
