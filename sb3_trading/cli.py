"""Command line: ``sb3-trading train | backtest | walk-forward | tune``.

``sb3-trading train`` with no arguments trains PPO on the seeded synthetic
regime market's training slice and writes ``runs/<run>/model.zip`` and
``runs/<run>/report.json`` (held-out backtest against buy-and-hold and
equal-weight).
"""

from __future__ import annotations

import argparse
import ast
import logging
import sys
from collections.abc import Sequence
from typing import Any

from sb3_trading.version import __version__

logger = logging.getLogger("sb3_trading")


def parse_kwargs(items: Sequence[str] | None, flag: str) -> dict[str, Any]:
    """``["window=5", "execution='next_open'"]`` -> ``{"window": 5, "execution": "next_open"}``.

    Values are Python literals (``ast.literal_eval``, never ``eval``); a bare word is kept as a string.
    """
    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"{flag} expects key=value pairs, got {item!r}")
        try:
            result[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            result[key] = raw
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sb3-trading", description="Stable-Baselines3 trading: train and evaluate.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", required=True)

    from sb3_trading.training import DEFAULT_ENV_ID, TrainConfig

    defaults = TrainConfig()
    train = sub.add_parser(
        "train",
        help="train an agent and backtest it on held-out data",
        description="Train an SB3 algorithm on the training slice, save model.zip, backtest the held-out slice "
        "against buy-and-hold and equal-weight, write report.json.",
    )
    train.add_argument("--env", default=DEFAULT_ENV_ID, help="registered env ID (default: %(default)s)")
    train.add_argument("--algo", default=defaults.algo, help="ppo, ppo_mask, ppo_lstm, qppo, qppo_mask")
    train.add_argument("--timesteps", type=int, default=defaults.timesteps, help="training steps (default: %(default)s)")
    train.add_argument("--seed", type=int, default=defaults.seed, help="seed of data, envs and algorithm")
    train.add_argument("--device", default=defaults.device, help="torch device: auto, cpu, cuda... (default: %(default)s)")
    from sb3_trading.evaluation.commands import add_data_arguments, add_risk_free_argument

    add_data_arguments(train)
    add_risk_free_argument(train)
    train.add_argument("--output-dir", default=defaults.output_dir, help="parent folder of runs (default: %(default)s)")
    train.add_argument("--run-name", default=None, help="run folder name (default: <algo>_<env>_seed<seed>_<time>)")
    train.add_argument("--test-fraction", type=float, default=defaults.test_fraction, help="held-out tail")
    train.add_argument("--n-envs", type=int, default=defaults.n_envs, help="parallel envs (default: %(default)s)")
    train.add_argument("--episode-length", type=int, default=defaults.episode_length, help="training episode length")
    train.add_argument("--env-kwargs", nargs="*", metavar="KEY=VALUE", help="env arguments, e.g. window=5")
    train.add_argument("--hyperparams", nargs="*", metavar="KEY=VALUE", help="algorithm arguments, e.g. n_steps=128")
    train.add_argument(
        "--reward",
        nargs="+",
        metavar="NAME[:ARG]",
        default=[],
        help="reward wrappers, innermost first, e.g. differential_sharpe:0.05 drawdown:0.5 scale:10 "
        "(log_return, differential_sharpe, drawdown, cvar, turnover, smoothness, scale)",
    )
    train.add_argument(
        "--eval-freq",
        type=int,
        default=0,
        metavar="N",
        help="every N timesteps backtest on a validation tail of the training slice and keep best_model.zip (0: off)",
    )
    train.add_argument("--eval-metric", default="sharpe", help="validation metric picking the best model")
    train.add_argument("--patience", type=int, default=None, help="stop after N evaluations without a new best")
    train.add_argument(
        "--vec",
        choices=("auto", "batched", "dummy"),
        default="auto",
        help="vectorised env: batched NumPy env where supported (auto: unless --reward), or SB3's DummyVecEnv",
    )
    train.add_argument("--no-progress", action="store_true", help="hide the progress bar")

    from sb3_trading.evaluation.commands import add_backtest_arguments, add_walk_forward_arguments

    add_backtest_arguments(
        sub.add_parser(
            "backtest",
            help="backtest a saved model on held-out data and write a report",
            description="Backtest MODEL.zip deterministically on held-out data against cash, buy-and-hold, equal-weight "
            "and random baselines; write report.json, PNG plots and a self-contained report.html.",
        )
    )
    add_walk_forward_arguments(
        sub.add_parser(
            "walk-forward",
            help="walk-forward train/test over the data and report the stitched out-of-sample path",
            description="Train on each expanding (or --rolling) training window and backtest the test block after it, "
            "with the feature normaliser fitted on the training window only; write per-fold results "
            "(walk_forward.json, fold_<k>/model.zip) and the report of the stitched out-of-sample paths.",
        )
    )
    from sb3_trading.tuning.commands import add_tune_arguments

    add_tune_arguments(
        sub.add_parser(
            "tune",
            help="tune hyperparameters with Optuna (resumable; SQLite or a shared PostgreSQL study)",
            description="Run or resume an Optuna study: each trial trains on the training fold and is scored by its "
            "validation Sharpe (the test tail stays untouched); writes <output-dir>/best_<algo>.yml for rl-zoo3.",
        )
    )
    return parser


def _run_train(args: argparse.Namespace) -> int:
    from sb3_trading.evaluation.commands import data_arg
    from sb3_trading.training import TrainConfig, train

    config = TrainConfig(
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
        eval_freq=args.eval_freq,
        eval_metric=args.eval_metric,
        patience=args.patience,
        vec=args.vec,
        join=args.join,
        risk_free=args.risk_free,
    )
    report = train(config)
    agent, baselines = report["agent"]["metrics"], report["baselines"]
    rows = [(report["algo"], agent)] + [(name, result["metrics"]) for name, result in baselines.items()]
    print(
        f"\nHeld-out backtest ({report['agent'].get('start', report['agent']['start_t'])} .. "
        f"{report['agent'].get('end', report['agent']['end_t'])}):"
    )
    print(f"{'strategy':<14}{'return':>10}{'sharpe':>10}{'max_dd':>10}{'turnover':>10}")
    for name, m in rows:
        print(f"{name:<14}{m['total_return']:>10.2%}{m['sharpe']:>10.2f}{m['max_drawdown']:>10.2%}{m['mean_turnover']:>10.3f}")
    from sb3_trading.evaluation.report import describe_calendar

    print(f"assets: {', '.join(report['data']['assets'])}; {describe_calendar(report)}")
    print(f"\nmodel:  {report['model_path']}\nreport: {report['run_dir']}/report.json")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sb3-trading`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)], format="%(message)s")
    try:
        if args.command == "train":
            return _run_train(args)
        if args.command in ("backtest", "walk-forward"):
            from sb3_trading.evaluation.commands import backtest_from_args, format_summary, walk_forward_from_args

            run = backtest_from_args if args.command == "backtest" else walk_forward_from_args
            print(format_summary(run(args)))
            return 0
        if args.command == "tune":
            from sb3_trading.tuning.commands import format_tune_summary, tune_from_args

            print(format_tune_summary(tune_from_args(args)))
            return 0
    except (ValueError, TypeError, OSError, ImportError) as exc:  # user errors: one line, exit 2
        logger.debug("traceback", exc_info=True)
        print(f"sb3-trading {args.command}: error: {exc}", file=sys.stderr)
        return 2
    parser.error(f"unknown command {args.command!r}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
