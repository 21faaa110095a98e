"""Command line: ``sb3-trading train | backtest | walk-forward | tune | compare`` — the top floor.

argparse -> the command's config dataclass -> library call -> print. The subcommands' arguments live in
the commands layer (:mod:`sb3_trading.commands`); nothing imports this module. A user error (``ValueError``,
``TypeError``, ``OSError``, ``ImportError``) is one line on stderr and exit code 2; a traceback means a bug.

``sb3-trading train`` with no arguments trains PPO on the seeded synthetic regime market's training slice
and writes ``runs/<run>/model.zip`` and ``runs/<run>/report.json`` (held-out backtest against buy-and-hold
and equal-weight).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from sb3_trading.commands.backtest import add_backtest_arguments, backtest_from_args, format_summary
from sb3_trading.commands.common import parse_kwargs
from sb3_trading.commands.compare import add_compare_arguments, compare_from_args, format_compare_summary
from sb3_trading.commands.train import add_train_arguments, format_train_summary, train_from_args
from sb3_trading.commands.tune import add_tune_arguments, format_tune_summary, tune_from_args
from sb3_trading.commands.walk_forward import (
    add_walk_forward_arguments,
    format_walk_forward_summary,
    walk_forward_from_args,
)
from sb3_trading.version import __version__

logger = logging.getLogger("sb3_trading")

__all__ = ["build_parser", "main", "parse_kwargs"]

#: exceptions that are user errors: one line on stderr, exit code 2
USER_ERRORS = (ValueError, TypeError, OSError, ImportError)


def build_parser() -> argparse.ArgumentParser:
    """The ``sb3-trading`` parser with its five subcommands."""
    parser = argparse.ArgumentParser(prog="sb3-trading", description="Stable-Baselines3 trading: train and evaluate.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-v info, -vv debug)")
    sub = parser.add_subparsers(dest="command", required=True)
    add_train_arguments(
        sub.add_parser(
            "train",
            help="train an agent and backtest it on held-out data",
            description="Train an SB3 algorithm on the training slice, save model.zip, backtest the held-out slice "
            "against buy-and-hold and equal-weight, write report.json (one run folder, written whole).",
        )
    )
    add_backtest_arguments(
        sub.add_parser(
            "backtest",
            help="backtest a saved model on held-out data and write a report",
            description="Backtest MODEL.zip deterministically on held-out data against cash, buy-and-hold, equal-weight "
            "and random baselines; write report.json, PNG plots and a self-contained report.html. A model in its "
            "run folder needs no other flag: env, env arguments, data and normaliser are read from run.json.",
        )
    )
    add_walk_forward_arguments(
        sub.add_parser(
            "walk-forward",
            help="walk-forward train/test over the data and report the stitched out-of-sample path",
            description="Train on each expanding (or --rolling) training window and backtest the test block after it, "
            "with the feature normaliser fitted on the training window only; write per-fold results "
            "(walk_forward.json, fold_<k>/model.zip) and the report of the stitched out-of-sample paths. "
            "--scheme cpcv: combinatorial purged cross-validation over --groups groups, --test-groups tested per "
            "split (split_<s>/model.zip), reported over its backtest paths with the distribution of their Sharpe ratios.",
        )
    )
    add_tune_arguments(
        sub.add_parser(
            "tune",
            help="tune hyperparameters with Optuna (resumable; SQLite or a shared PostgreSQL study)",
            description="Run or resume an Optuna study: each trial trains on the training fold and is scored by its "
            "validation Sharpe (the test tail stays untouched); writes <output-dir>/best_<algo>.yml for rl-zoo3.",
        )
    )
    add_compare_arguments(
        sub.add_parser(
            "compare",
            help="compare several runs' held-out backtests: one table, one figure, Sharpe-difference CIs",
            description="Rebuild the held-out backtest of each RUN_DIR (a folder of sb3-trading train, or a folder of "
            "them), align them on their common bars, and print one metrics table and the paired stationary-bootstrap "
            "CI of every pair's Sharpe difference; write compare.json and compare.png (equity and drawdown).",
        )
    )
    return parser


def _run(args: argparse.Namespace, argv: Sequence[str]) -> str:
    if args.command == "train":
        # the flags given after "train", which override a --config file
        return format_train_summary(train_from_args(args, argv[list(argv).index("train") + 1 :]))
    if args.command == "backtest":
        return format_summary(backtest_from_args(args))
    if args.command == "walk-forward":
        return format_walk_forward_summary(walk_forward_from_args(args))
    if args.command == "tune":
        return format_tune_summary(tune_from_args(args))
    if args.command == "compare":
        return format_compare_summary(compare_from_args(args))
    raise ValueError(f"unknown command {args.command!r}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sb3-trading`` console script."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)], format="%(message)s")
    try:
        text = _run(args, argv)
    except USER_ERRORS as exc:  # user errors: one line, exit 2
        logger.debug("traceback", exc_info=True)
        message = " ".join(str(exc).split()) or type(exc).__name__
        print(f"sb3-trading {args.command}: error: {message}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
