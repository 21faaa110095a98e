"""``sb3-trading backtest``: argparse -> :class:`~sb3_trading.backtesting.BacktestConfig` -> report.

With only ``MODEL.zip`` the env, its arguments, the data source, the split and the normaliser are read
from the model's run folder (``run.json``, ``normalizer.json``); every flag given overrides them.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from sb3_trading.backtesting import BacktestConfig, run_backtest
from sb3_trading.commands.common import (
    add_data_arguments,
    add_report_arguments,
    add_risk_free_argument,
    data_arg,
    parse_kwargs,
)
from sb3_trading.evaluation.reference import format_skill_ratio
from sb3_trading.evaluation.report import describe_calendar
from sb3_trading.evaluation.trades import format_trade_stats
from sb3_trading.recipe import DEFAULT_TEST_FRACTION

__all__ = ["add_backtest_arguments", "backtest_config_from_args", "backtest_from_args", "format_summary"]


def add_backtest_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``sb3-trading backtest``'s arguments to ``parser`` (a subparser)."""
    parser.add_argument("model_path", metavar="MODEL.zip", help="a saved SB3 model")
    add_data_arguments(parser, what="default: the run folder's, else synthetic", join_default=None)
    parser.add_argument(
        "--env",
        default=None,
        help="registered env ID the model was trained on (default: the run folder's, else MultiAsset-v0)",
    )
    parser.add_argument("--algo", default=None, help="ppo, ppo_mask, ppo_lstm, qppo, qppo_mask (default: read from the zip)")
    parser.add_argument("--output-dir", default=None, help="report folder (default: <model folder>/backtest)")
    parser.add_argument(
        "--env-kwargs",
        nargs="*",
        metavar="KEY=VALUE",
        help="env arguments used in training, e.g. window=5 (default: the run folder's)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--test-fraction",
        type=float,
        default=None,
        help="backtest this trailing fraction; the normaliser is the run's (or fitted on the rest) "
        f"(default: the run folder's, else {DEFAULT_TEST_FRACTION}, as train)",
    )
    source.add_argument(
        "--train-data",
        nargs="+",
        metavar="PATH",
        default=None,
        help="fit the normaliser on this market (file(s), folder, glob) and backtest all of --data",
    )
    source.add_argument(
        "--normalizer", default=None, help="normalizer.json (a normaliser's to_dict()); backtest all of --data"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed of the synthetic market and the random baseline (default: the run's, else 0)",
    )
    parser.add_argument("--device", default="cpu", help="torch device for the model (default: %(default)s)")
    parser.add_argument(
        "--n-trials",
        type=int,
        default=None,
        help="configurations tried before choosing this model (e.g. the tuning study's completed trials): "
        "the report adds the agent's deflated Sharpe ratio",
    )
    add_risk_free_argument(parser)
    add_report_arguments(parser)
    return parser


def backtest_config_from_args(args: argparse.Namespace) -> BacktestConfig:
    """The :class:`~sb3_trading.backtesting.BacktestConfig` of :func:`add_backtest_arguments`' namespace."""
    return BacktestConfig(
        args.model_path,
        data_path=data_arg(args.data_path),
        env_id=args.env,
        algo=args.algo,
        output_dir=args.output_dir,
        env_kwargs=None if args.env_kwargs is None else parse_kwargs(args.env_kwargs, "--env-kwargs"),
        test_fraction=args.test_fraction,
        train_data_path=data_arg(args.train_data),
        normalizer_path=args.normalizer,
        seed=args.seed,
        device=args.device,
        n_boot=args.n_boot,
        plots=not args.no_plots,
        risk_free=args.risk_free,
        join=args.join,
        n_trials=args.n_trials,
    )


def backtest_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`~sb3_trading.backtesting.run_backtest` from :func:`add_backtest_arguments`' namespace."""
    return run_backtest(backtest_config_from_args(args))


def format_summary(report: Mapping[str, Any]) -> str:
    """The text table the CLI prints: one row per strategy of a ``write_report`` report (or a
    walk-forward summary's ``report``), with the Sharpe CI; one line of FIFO trade statistics per strategy
    that has them; the PSR (and the DSR where the trial count is known); and the report's paths."""
    report = report.get("report", report)
    level = 1.0 - (report.get("bootstrap") or {}).get("alpha", 0.1)
    names = [*report["strategies"], *(f"ref: {name}" for name in report.get("references") or {})]
    width = max(16, *(len(name) + 2 for name in names))
    lines = [
        report["title"],
        describe_calendar(report),
        f"{'strategy':<{width}}{'return':>10}{'sharpe':>9}{f'{level:.0%} CI':>18}{'max_dd':>9}{'dd_bars':>9}{'turnover':>10}",
    ]
    for name, s in report["strategies"].items():
        m = s["metrics"]
        ci = (s.get("ci") or {}).get("sharpe")
        ci_text = f"[{ci['low']:.2f}, {ci['high']:.2f}]" if ci else "-"
        lines.append(
            f"{name:<{width}}{m['total_return']:>10.2%}{m['sharpe']:>9.2f}{ci_text:>18}{m['max_drawdown']:>9.2%}"
            f"{m['max_drawdown_duration']:>9.0f}{m.get('mean_turnover', 0.0):>10.3f}"
        )
    for name, s in (report.get("references") or {}).items():
        m = s["metrics"]
        lines.append(
            f"{'ref: ' + name:<{width}}{m['total_return']:>10.2%}{m['sharpe']:>9.2f}{'':>18}{m['max_drawdown']:>9.2%}"
            f"{m['max_drawdown_duration']:>9.0f}{m.get('mean_turnover', 0.0):>10.3f}"
        )
    if report.get("skill_ratio"):
        lines.append(format_skill_ratio(report["skill_ratio"]))
    traded = {name: s["trades"] for name, s in report["strategies"].items() if s.get("trades")}
    if traded:
        lines.append("trades (FIFO round trips, fills at the close; costs in bps of traded notional):")
        lines += [f"  {name:<{width - 2}}{format_trade_stats(stats)}" for name, stats in traded.items()]
    psr = {name: (s.get("significance") or {}).get("psr") for name, s in report["strategies"].items()}
    if any(value is not None for value in psr.values()):
        text = ", ".join(f"{name} {'-' if value is None else f'{value:.1%}'}" for name, value in psr.items())
        lines.append(f"PSR (P[Sharpe > 0]): {text}")
    overfit = report.get("overfitting")
    if overfit:
        dsr = overfit.get("dsr")
        lines.append(
            f"DSR of {overfit['applies_to']} over {overfit['n_trials']} trials: {'-' if dsr is None else f'{dsr:.1%}'}"
        )
    files = report.get("files", {})
    if files:
        lines.append(f"report: {files.get('html')}  ({files.get('json')})")
    return "\n".join(lines)
