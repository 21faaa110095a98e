"""``sb3-trading compare``: argparse -> :func:`compare_runs` -> console table.

A run folder of ``sb3-trading train`` saves no per-step series of its held-out backtest (``report.json`` holds its
span and metrics only), so :func:`load_run` rebuilds it from the folder as ``sb3-trading backtest
<run>/model.zip`` does: the run's env and env arguments, data source and split (``run.json``), its train-slice
normaliser (``normalizer.json``), the risk-free rate of its report and deterministic actions; it warns when the
rebuilt Sharpe differs from the one ``report.json`` recorded. The measuring (alignment, table, paired
Sharpe-difference CIs, figure) is :mod:`sb3_trading.evaluation.compare`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sb3_trading.backtesting import check_spaces, load_model
from sb3_trading.commands.common import add_report_arguments
from sb3_trading.evaluation.backtest import BacktestResult, backtest
from sb3_trading.evaluation.compare import (
    COMPARE_BASELINES,
    DEFAULT_OUTPUT_DIR,
    RUN_FILES,
    find_runs,
    is_run_dir,
    require_matplotlib,
    run_labels,
    write_comparison,
)
from sb3_trading.features import normalizer_from_dict
from sb3_trading.recipe import (
    CONSECUTIVE,
    DEFAULT_ENV_ID,
    DEFAULT_TEST_FRACTION,
    FEATURE_FITS_JSON,
    NORMALIZER_JSON,
    REPORT_JSON,
    check_device,
    check_fraction,
    check_positive_int,
    data_source,
    held_out_baselines,
    load_env_data,
    make_backtest_env,
    probe_env,
    read_feature_fits,
    read_run_spec,
    split_train_test,
)

__all__ = ["add_compare_arguments", "compare_from_args", "compare_runs", "format_compare_summary", "load_run"]

logger = logging.getLogger(__name__)

#: metrics of the console table: (key, header, format)
TABLE_METRICS = (
    ("total_return", "return", "{:.2%}"),
    ("sharpe", "sharpe", "{:.2f}"),
    ("sortino", "sortino", "{:.2f}"),
    ("max_drawdown", "max_dd", "{:.2%}"),
    ("annual_volatility", "vol", "{:.2%}"),
    ("mean_turnover", "turnover", "{:.3f}"),
)


def load_run(
    run_dir: str | os.PathLike[str], device: str = "cpu", baselines: Sequence[str] = COMPARE_BASELINES
) -> dict[str, BacktestResult]:
    """Rebuild a training run's held-out backtest (the run's data, split, normaliser and risk-free rate; see the
    module docstring): ``{"agent": result, <baseline>: result, ...}``.

    :param run_dir: a folder written by ``sb3-trading train`` (:func:`is_run_dir`).
    :param device: torch device the model is loaded on.
    :param baselines: baselines on the same bars, from the env's initial cash.
    :raises ValueError: not a run folder, or a model that does not fit the run's env.
    """
    run = Path(run_dir)
    if not is_run_dir(run):
        raise ValueError(f"{str(run)!r} is not a run folder (it needs {' and '.join(RUN_FILES)})")
    spec = read_run_spec(run / "model.zip") or {}
    report = _read_json(run / REPORT_JSON) if (run / REPORT_JSON).is_file() else {}
    risk_free = float((report.get("risk_free") or {}).get("annual", (report.get("config") or {}).get("risk_free", 0.0)))
    env_id = spec.get("env_id") or DEFAULT_ENV_ID
    env_kwargs = dict(spec.get("env_kwargs") or {})
    env_kwargs.pop("normalizer", None)
    seed = int(spec.get("seed", 0))
    algo_name, model = load_model(run / "model.zip", spec.get("algo"), device)
    data = load_env_data(env_id, data_source(spec.get("data_path")), seed, env_kwargs, join=spec.get("join", "exact"))
    train_data, test_data = split_train_test(data, float(spec.get("test_fraction", DEFAULT_TEST_FRACTION)))
    normalizer = normalizer_from_dict(_read_json(run / spec.get("normalizer", NORMALIZER_JSON)))
    fits = read_feature_fits(run / spec.get("feature_fits", FEATURE_FITS_JSON))
    if fits is None:  # a run saved before feature_fits.json: the same deterministic fit on the training split
        fits = probe_env(env_id, train_data, env_kwargs, spec.get("sizing") or ()).feature_fits
    env = make_backtest_env(env_id, test_data, normalizer, env_kwargs, spec.get("sizing"), fits)
    try:
        check_spaces(model, env, env_id)
        agent = backtest(model, env, deterministic=True, name=algo_name, risk_free=risk_free, consecutive=CONSECUTIVE)
        found = held_out_baselines(env, agent, tuple(baselines), risk_free=risk_free) if baselines else {}
    finally:
        env.close()
    recorded = (report.get("agent") or {}).get("metrics") or {}
    if recorded and not np.isclose(recorded.get("sharpe", np.nan), agent.metrics["sharpe"], rtol=1e-6, atol=1e-9):
        logger.warning(
            "%s: the rebuilt held-out backtest has Sharpe %.6f, report.json recorded %.6f (other data or code?)",
            run,
            agent.metrics["sharpe"],
            recorded["sharpe"],
        )
    return {"agent": agent, **found}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not valid JSON ({exc})") from exc


def compare_runs(
    paths: Sequence[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR,
    *,
    n_boot: int = 1000,
    mean_block: float | None = None,
    alpha: float = 0.1,
    seed: int = 0,
    plots: bool = True,
    device: str = "cpu",
    baselines: Sequence[str] = COMPARE_BASELINES,
) -> dict[str, Any]:
    """``sb3-trading compare``: rebuild each run's held-out backtest (:func:`load_run`), compare them on their
    common bars and write ``compare.json`` and ``compare.png`` into ``output_dir``
    (:func:`~sb3_trading.evaluation.compare.write_comparison`).

    :param paths: run folders, or folders of run folders (:func:`~sb3_trading.evaluation.compare.find_runs`).
    :param output_dir: folder of ``compare.json`` and ``compare.png``, created if needed.
    :param n_boot: resamples of the Sharpe-difference CIs (``0``: none).
    :param mean_block: mean block length of the bootstrap.
    :param alpha: ``1 -`` confidence level, in ``(0, 1)``.
    :param seed: bootstrap seed.
    :param plots: draw ``compare.png`` (needs matplotlib).
    :param device: torch device the models are loaded on.
    :param baselines: the first run's baselines shown beside the runs.
    :return: ``compare.json``'s content plus ``files``.
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output dir {str(out)!r} is a file, not a folder")
    check_positive_int(n_boot, "n_boot", minimum=0)
    if n_boot == 1:
        raise ValueError("n_boot must be 0 (no CIs) or at least 2 resamples, got 1")
    check_fraction(alpha, "alpha")
    check_device(device)
    if plots:
        require_matplotlib()  # before the work, not after it
    run_dirs = find_runs(paths)
    labels = run_labels(run_dirs)
    loaded = {label: load_run(run, device, baselines) for label, run in zip(labels, run_dirs, strict=True)}
    runs = {label: result["agent"] for label, result in loaded.items()}
    first = next(iter(loaded.values()))
    shown = {name: first[name] for name in baselines if name in first}
    extra = {"runs": {label: str(run) for label, run in zip(labels, run_dirs, strict=True)}}
    return write_comparison(
        runs, out, shown, n_boot=n_boot, mean_block=mean_block, alpha=alpha, seed=seed, plots=plots, extra=extra
    )


def add_compare_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``sb3-trading compare``'s arguments to ``parser`` (a subparser)."""
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run folders of sb3-trading train, or folders of them")
    parser.add_argument(
        "--output-dir", default=DEFAULT_OUTPUT_DIR, help="folder of compare.json and compare.png (default: %(default)s)"
    )
    parser.add_argument("--alpha", type=float, default=0.1, help="1 - confidence level of the CIs (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="torch device the models load on (default: %(default)s)")
    parser.add_argument("--no-baselines", action="store_true", help="leave buy-and-hold and equal-weight out")
    add_report_arguments(parser)
    return parser


def compare_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`~sb3_trading.evaluation.compare.compare_runs` from :func:`add_compare_arguments`' namespace."""
    return compare_runs(
        args.run_dirs,
        args.output_dir,
        n_boot=args.n_boot,
        alpha=args.alpha,
        seed=args.seed,
        plots=not args.no_plots,
        device=args.device,
        baselines=() if args.no_baselines else COMPARE_BASELINES,
    )


def _cell(value: Any, spec: str) -> str:
    return "-" if value is None else spec.format(value)


def format_compare_summary(summary: Mapping[str, Any]) -> str:
    """The text the CLI prints: one row per run (and baseline) on the common bars, then each pair's Sharpe
    difference with its paired-bootstrap CI, then the files."""
    marks = summary["marks"]
    table = summary["table"]
    width = max(16, *(len(name) + 2 for name in table))
    lines = [
        summary["title"],
        f"{marks['n_periods']} common held-out bars, {marks['first_mark']} .. {marks['last_mark']} "
        f"({marks['periods_per_year']:g} bars/year, risk-free rate {marks['risk_free']:.2%}/year)",
        f"{'run':<{width}}" + "".join(f"{header:>10}" for _, header, _ in TABLE_METRICS),
    ]
    for name, row in table.items():
        label = name if row["kind"] == "run" else f"({name})"
        lines.append(
            f"{label:<{width}}" + "".join(f"{_cell(row['metrics'].get(k), spec):>10}" for k, _, spec in TABLE_METRICS)
        )
    if summary["sharpe_differences"]:
        level = 1.0 - (summary.get("bootstrap") or {}).get("alpha", 0.1)
        lines.append(f"Sharpe differences (paired stationary bootstrap, {level:.0%} CI):")
        for d in summary["sharpe_differences"]:
            ci = d.get("ci")
            ci_text = f"[{ci['low']:.2f}, {ci['high']:.2f}]" if ci else "-"
            lines.append(f"  {d['a']} - {d['b']}: {d['estimate']:.2f} {ci_text}")
    files = summary.get("files") or {}
    if files:
        lines.append("written: " + ", ".join(str(path) for path in files.values()))
    return "\n".join(lines)
