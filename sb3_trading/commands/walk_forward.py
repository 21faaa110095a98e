"""``sb3-trading walk-forward``: argparse -> :class:`~sb3_trading.walk_forward.WalkForwardConfig` -> report."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from sb3_trading.commands.backtest import format_summary
from sb3_trading.commands.common import (
    add_data_arguments,
    add_report_arguments,
    add_resample_arguments,
    add_risk_free_argument,
    data_arg,
    parse_kwargs,
)
from sb3_trading.recipe import SYNTHETIC, VEC_KINDS
from sb3_trading.walk_forward import (
    DEFAULT_CPCV_GROUPS,
    DEFAULT_CPCV_TEST_GROUPS,
    DEFAULT_OUTPUT_DIR,
    SCHEMES,
    WalkForwardConfig,
    run_walk_forward,
)

__all__ = [
    "add_walk_forward_arguments",
    "format_walk_forward_summary",
    "walk_forward_config_from_args",
    "walk_forward_from_args",
]


def add_walk_forward_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``sb3-trading walk-forward``'s arguments to ``parser`` (a subparser)."""
    parser.add_argument("--env", default=None, help="registered env ID (default: MultiAsset-v0)")
    parser.add_argument("--algo", default="ppo", help="ppo, ppo_mask, ppo_lstm, qppo, qppo_mask (default: %(default)s)")
    add_data_arguments(parser, default=SYNTHETIC, what="default: %(default)s")
    parser.add_argument(
        "--scheme",
        choices=SCHEMES,
        default="walk-forward",
        help="walk-forward: train on each window, test the block after it; cpcv: combinatorial purged cross-validation "
        "over --groups groups, --test-groups tested per split, reported over its backtest paths (default: %(default)s)",
    )
    parser.add_argument("--splits", type=int, default=3, help="number of walk-forward folds (default: %(default)s)")
    parser.add_argument(
        "--groups", type=int, default=None, help=f"cpcv: groups the bars are cut into (default: {DEFAULT_CPCV_GROUPS})"
    )
    parser.add_argument(
        "--test-groups",
        type=int,
        default=None,
        help=f"cpcv: groups tested per split, fewer than --groups (default: {DEFAULT_CPCV_TEST_GROUPS})",
    )
    parser.add_argument("--timesteps", type=int, default=10_000, help="training steps per fold (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, envs and algorithm")
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT_DIR, help="output folder (default: %(default)s)")
    parser.add_argument("--env-kwargs", nargs="*", metavar="KEY=VALUE", help="env arguments, e.g. window=5")
    parser.add_argument("--hyperparams", nargs="*", metavar="KEY=VALUE", help="algorithm arguments, e.g. n_steps=128")
    parser.add_argument(
        "--purge", type=int, default=0, help="bars before each test block (cpcv: test group) kept out of training"
    )
    parser.add_argument(
        "--embargo",
        type=int,
        default=0,
        help="bars after each test group kept out of training (cpcv; a no-op in walk-forward, where training precedes "
        "its test block)",
    )
    parser.add_argument("--train-size", type=int, default=None, help="bars of the first/rolling training window")
    parser.add_argument("--test-size", type=int, default=None, help="bars per test block")
    parser.add_argument("--rolling", action="store_true", help="rolling training windows instead of expanding ones")
    parser.add_argument("--n-envs", type=int, default=1, help="parallel training envs (default: %(default)s)")
    parser.add_argument("--episode-length", type=int, default=256, help="training episode length")
    parser.add_argument("--device", default="auto", help="torch device (default: %(default)s)")
    parser.add_argument(
        "--vec", choices=VEC_KINDS, default="auto", help="training VecEnv: batched where supported (auto), or dummy"
    )
    add_resample_arguments(parser)
    add_risk_free_argument(parser)
    add_report_arguments(parser)
    return parser


def walk_forward_config_from_args(args: argparse.Namespace) -> WalkForwardConfig:
    """The :class:`~sb3_trading.walk_forward.WalkForwardConfig` of :func:`add_walk_forward_arguments`' namespace."""
    return WalkForwardConfig(
        env_id=args.env,
        algo=args.algo,
        data_path=data_arg(args.data_path),
        n_splits=args.splits,
        timesteps=args.timesteps,
        seed=args.seed,
        output_dir=args.output_dir,
        env_kwargs=parse_kwargs(args.env_kwargs, "--env-kwargs"),
        hyperparams=parse_kwargs(args.hyperparams, "--hyperparams"),
        purge=args.purge,
        embargo=args.embargo,
        train_size=args.train_size,
        test_size=args.test_size,
        expanding=not args.rolling,
        n_envs=args.n_envs,
        episode_length=args.episode_length,
        device=args.device,
        n_boot=args.n_boot,
        plots=not args.no_plots,
        risk_free=args.risk_free,
        join=args.join,
        vec=args.vec,
        resample=args.resample,
        n_paths=args.n_paths,
        scheme=args.scheme,
        n_groups=args.groups,
        n_test_groups=args.test_groups,
    )


def walk_forward_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`~sb3_trading.walk_forward.run_walk_forward` from :func:`add_walk_forward_arguments`' namespace."""
    return run_walk_forward(walk_forward_config_from_args(args))


def format_walk_forward_summary(summary: Mapping[str, Any]) -> str:
    """The text the CLI prints for a walk-forward summary: the report's table
    (:func:`~sb3_trading.commands.backtest.format_summary`) and, for CPCV, the distribution of the paths' Sharpe."""
    text = format_summary(summary)
    config = summary.get("config") or {}
    if config.get("scheme") != "cpcv":
        return text
    sharpe = summary["aggregate"]["path_sharpe"]
    line = (
        f"CPCV: {config['n_groups']} groups, {config['n_test_groups']} tested per split, {config['n_splits']} splits, "
        f"{config['n_backtest_paths']} paths; path Sharpe mean {sharpe['mean']:.2f}, std {sharpe['std']:.2f}, "
        f"min {sharpe['min']:.2f}, max {sharpe['max']:.2f}"
    )
    return f"{text}\n{line}"
