r"""Compare several runs' held-out backtests: one table, one equity/drawdown figure, bootstrap CIs of Sharpe differences.

This module measures: it takes :class:`~sb3_trading.evaluation.backtest.BacktestResult` s. Where they come from
is the floor above: ``sb3-trading train`` writes ``model.zip``, ``normalizer.json``, ``run.json`` and a
``report.json`` holding the held-out backtest's *summary* only (span and metrics, no per-step series), so
:func:`sb3_trading.commands.compare.load_run` rebuilds each run's held-out backtest from its folder as
``sb3-trading backtest <run>/model.zip`` does. :func:`find_runs` names the run folders.

Alignment
---------
Runs are compared on the bars they all traded: return ``k`` of a backtest is keyed by its mark (the timestamp
of ``t[k + 1]`` when every run has timestamps, else the data row ``t[k + 1]``) and only the marks common to every
run are kept, in time order (:func:`align_results`). Runs on the same market and split share all of them.

Sharpe differences
------------------
For each pair ``(a, b)``, :func:`sharpe_difference_ci` resamples the two aligned return series with the **same**
stationary-bootstrap indices (:func:`~sb3_trading.evaluation.bootstrap.stationary_bootstrap_indices`; Politis &
Romano 1994), so the dependence between the runs (the same market moves) is kept, and takes the percentile
interval of ``Sharpe(a*) - Sharpe(b*)`` (:func:`~sb3_trading.evaluation.bootstrap.sharpe_statistic`). A run
against itself gives exactly ``[0, 0]``. The intervals are not corrected for multiple comparisons.

Plots need matplotlib (``pip install "sb3-trading[report]"``), drawn on its Agg canvas without pyplot.
"""

from __future__ import annotations

import datetime as _dt
import itertools
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sb3_trading.evaluation.backtest import BacktestResult
from sb3_trading.evaluation.bootstrap import (
    BootstrapCI,
    default_mean_block,
    sharpe_statistic,
    stationary_bootstrap_indices,
)
from sb3_trading.evaluation.metrics import compute_metrics, drawdown_series
from sb3_trading.utils import atomic_write, atomic_write_json, jsonable
from sb3_trading.version import __version__

logger = logging.getLogger(__name__)

COMPARE_JSON = "compare.json"
COMPARE_PNG = "compare.png"
DEFAULT_OUTPUT_DIR = "runs/compare"
#: baselines of the first run shown beside the runs (the same market and split: the same for every run)
COMPARE_BASELINES = ("buy_and_hold", "equal_weight")
#: the files that make a folder a training run folder
RUN_FILES = ("model.zip", "run.json")


# ----------------------------------------------------------------------------- finding and loading runs
def is_run_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a folder holding a training run (:data:`RUN_FILES`)."""
    return Path(path).is_dir() and all((Path(path) / name).is_file() for name in RUN_FILES)


def find_runs(paths: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The run folders named by ``paths``: each a run folder itself, or a folder whose sub-folders are runs
    (sorted by name). Order is kept; a folder named twice counts once.

    :raises FileNotFoundError: a path that does not exist.
    :raises ValueError: a path that is neither a run folder nor holds one, or no runs at all.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise FileNotFoundError(f"run folder {str(path)!r} does not exist; give folders written by sb3-trading train")
        if is_run_dir(path):
            runs = [path]
        elif path.is_dir():
            runs = sorted(child for child in path.iterdir() if is_run_dir(child))
            if not runs:
                raise ValueError(
                    f"{str(path)!r} is not a run folder (no {' and '.join(RUN_FILES)}) and holds none; give folders "
                    "written by sb3-trading train, or a folder of them"
                )
        else:
            raise ValueError(f"{str(path)!r} is a file, not a run folder; give folders written by sb3-trading train")
        found += [run for run in runs if run.resolve() not in {f.resolve() for f in found}]
    if not found:
        raise ValueError("no run folders to compare")
    return found


def run_labels(runs: Sequence[Path]) -> list[str]:
    """A unique label per run folder: its name, or its parent/name where names repeat."""
    names = [run.name for run in runs]
    labels = [f"{run.parent.name}/{run.name}" if names.count(run.name) > 1 else run.name for run in runs]
    seen: dict[str, int] = {}
    out = []
    for label in labels:
        seen[label] = seen.get(label, 0) + 1
        out.append(label if seen[label] == 1 else f"{label}#{seen[label]}")
    return out


# ----------------------------------------------------------------------------- aligning and measuring
def _mark_keys(result: BacktestResult, use_time: bool) -> np.ndarray:
    """``(n,)`` key of each return: its mark's timestamp (as int64 ns) or data row."""
    marks = result.timestamps[1:] if use_time else result.t[1:]
    return np.asarray(marks).astype("int64")


def align_results(results: Mapping[str, BacktestResult]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The marks every result traded, and each result's step indices on them.

    :param results: ``{name: result}``, at least one.
    :return: ``(marks, {name: idx})``: ``marks`` ``(m,)`` the common mark keys in time order (``datetime64[ns]``
        when every result has timestamps, else data rows), ``idx[name]`` ``(m,)`` the positions in
        ``results[name].returns`` of those marks.
    :raises ValueError: the results share fewer than 2 marks.
    """
    if not results:
        raise ValueError("align_results needs at least one result")
    use_time = all(r.timestamps is not None for r in results.values())
    keys = {name: _mark_keys(r, use_time) for name, r in results.items()}
    common = None
    for k in keys.values():
        common = k if common is None else np.intersect1d(common, k)
    common = np.unique(common)
    if common.size < 2:
        spans = {name: (int(r.t[0]), int(r.t[-1])) for name, r in results.items()}
        raise ValueError(
            f"the runs share {common.size} held-out bars (data rows {spans}); compare runs backtested on the same "
            "market and period"
        )
    index = {}
    for name, k in keys.items():
        order = np.argsort(k, kind="stable")
        index[name] = order[np.searchsorted(k, common, sorter=order)]
    marks = common.astype("datetime64[ns]") if use_time else common
    return marks, index


def aligned_metrics(result: BacktestResult, idx: np.ndarray) -> dict[str, float]:
    """:func:`~sb3_trading.evaluation.metrics.compute_metrics` of ``result`` on its steps ``idx`` (its calendar,
    risk-free rate, turnover, costs, weights and benchmark on the same steps)."""
    benchmark = None if result.benchmark_returns is None else result.benchmark_returns[idx]
    return compute_metrics(
        result.returns[idx],
        result.periods_per_year,
        turnover=result.turnover[idx],
        costs=result.costs[idx],
        weights=result.weights[idx],
        risk_free=result.risk_free,
        benchmark=benchmark,
        financing=None if result.financing is None else result.financing[idx],
    )


def sharpe_difference_ci(
    returns_a: np.ndarray | Sequence[float],
    returns_b: np.ndarray | Sequence[float],
    periods_per_year: float,
    n_boot: int = 1000,
    mean_block: float | None = None,
    alpha: float = 0.1,
    seed: int | np.random.Generator | None = 0,
    *,
    risk_free: float = 0.0,
) -> BootstrapCI:
    """Paired stationary-bootstrap CI of ``Sharpe(a) - Sharpe(b)`` (annualised) on aligned return series.

    Both series are resampled with the same indices (one block structure for the pair), so the CI reflects the
    uncertainty of the *difference* on the same market path; ``a`` equal to ``b`` gives ``[0, 0]``.

    :param returns_a: ``(n,)`` per-bar simple returns of run ``a``, ``n >= 2``.
    :param returns_b: ``(n,)`` returns of run ``b`` on the same bars.
    :param periods_per_year: bars per year of the Sharpe ratios.
    :param n_boot: resamples, ``>= 2``.
    :param mean_block: mean block length in bars (default ``n ** (1/3)``).
    :param alpha: ``1 -`` confidence level, in ``(0, 1)``.
    :param seed: seed or ``Generator``.
    :param risk_free: **annual** risk-free rate of both Sharpe ratios.
    :return: the :class:`~sb3_trading.evaluation.bootstrap.BootstrapCI` of the difference.
    """
    a = np.asarray(returns_a, dtype=np.float64)
    b = np.asarray(returns_b, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"returns_a and returns_b must be aligned 1-D series, got shapes {a.shape} and {b.shape}")
    if a.size < 2:
        raise ValueError(f"a Sharpe difference needs at least 2 aligned returns, got {a.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("returns_a and returns_b must be finite")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ValueError(f"n_boot must be an integer >= 2, got {n_boot!r}")
    block = default_mean_block(a.size) if mean_block is None else float(mean_block)
    sharpe = sharpe_statistic(periods_per_year, risk_free)
    estimate = float(sharpe(a[None, :])[0] - sharpe(b[None, :])[0])
    idx = stationary_bootstrap_indices(a.size, n_boot, block, seed)
    samples = np.asarray(sharpe(a[idx]) - sharpe(b[idx]), dtype=np.float64)
    finite = samples[np.isfinite(samples)]
    if finite.size < 2:
        raise ValueError("the Sharpe difference is not finite on the bootstrap resamples")
    low, high = np.quantile(finite, [alpha / 2.0, 1.0 - alpha / 2.0])
    return BootstrapCI(estimate, float(low), float(high), float(alpha), int(n_boot), block, float(np.std(finite)))


def compare_results(
    runs: Mapping[str, BacktestResult],
    baselines: Mapping[str, BacktestResult] | None = None,
    *,
    n_boot: int = 1000,
    mean_block: float | None = None,
    alpha: float = 0.1,
    seed: int = 0,
) -> dict[str, Any]:
    """The comparison of ``runs`` on their common bars: a metrics table and pairwise Sharpe-difference CIs.

    :param runs: ``{label: held-out backtest}`` of each run (at least one), with one calendar.
    :param baselines: ``{name: backtest}`` shown in the table beside the runs (no CIs), aligned with them.
    :param n_boot: bootstrap resamples of each CI (``0``: no CIs).
    :param mean_block: mean block length of the bootstrap (default ``n ** (1/3)`` of the common bars).
    :param alpha: ``1 -`` confidence level.
    :param seed: bootstrap seed (the same indices for every pair).
    :return: ``{"marks": {...}, "table": {label: {"kind", "metrics"}}, "sharpe_differences": [...]}``; each
        difference is ``{"a", "b", "sharpe_a", "sharpe_b", "estimate", "ci": {low, high, ...} | None}``.
    :raises ValueError: no runs, runs with different ``periods_per_year``, or fewer than 2 common bars.
    """
    if not runs:
        raise ValueError("compare_results needs at least one run")
    baselines = dict(baselines or {})
    clash = sorted(set(runs) & set(baselines))
    if clash:
        raise ValueError(f"run labels {clash} clash with baseline names; rename the run folders")
    everything = {**runs, **baselines}
    ppys = sorted({float(r.periods_per_year) for r in everything.values()})
    if len(ppys) > 1:
        raise ValueError(f"the runs are annualised with different periods_per_year {ppys}: compare runs on one calendar")
    marks, index = align_results(everything)
    table = {
        name: {"kind": "run" if name in runs else "baseline", "metrics": aligned_metrics(r, index[name])}
        for name, r in everything.items()
    }
    differences = []
    for a, b in itertools.combinations(runs, 2):
        ra, rb = runs[a].returns[index[a]], runs[b].returns[index[b]]
        if runs[a].risk_free != runs[b].risk_free:
            raise ValueError(f"runs {a!r} and {b!r} have different risk-free rates; compare runs with one --risk-free")
        entry: dict[str, Any] = {
            "a": a,
            "b": b,
            "sharpe_a": table[a]["metrics"]["sharpe"],
            "sharpe_b": table[b]["metrics"]["sharpe"],
        }
        entry["estimate"] = entry["sharpe_a"] - entry["sharpe_b"]
        entry["ci"] = (
            sharpe_difference_ci(ra, rb, ppys[0], n_boot, mean_block, alpha, seed, risk_free=runs[a].risk_free).to_dict()
            if n_boot
            else None
        )
        differences.append(entry)
    first = next(iter(everything.values()))
    use_time = np.issubdtype(marks.dtype, np.datetime64)
    span = {
        "n_periods": int(marks.size),
        "first_mark": str(np.datetime_as_string(marks[0], unit="D")) if use_time else int(marks[0]),
        "last_mark": str(np.datetime_as_string(marks[-1], unit="D")) if use_time else int(marks[-1]),
        "periods_per_year": ppys[0],
        "calendar": first.calendar,
        "risk_free": float(first.risk_free),
    }
    return {
        "marks": span,
        "bootstrap": {"n_boot": n_boot, "alpha": alpha, "mean_block": mean_block, "seed": seed, "paired": True}
        if n_boot
        else None,
        "table": table,
        "sharpe_differences": differences,
    }


# ----------------------------------------------------------------------------- the figure
def _require_matplotlib() -> tuple[Any, Any]:
    """``(Figure, FigureCanvasAgg)``, or ImportError with the install hint."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError('the comparison figure needs matplotlib: pip install "sb3-trading[report]" (or --no-plots)') from exc
    return Figure, FigureCanvasAgg


def plot_comparison(
    runs: Mapping[str, BacktestResult],
    output_path: str | os.PathLike[str],
    baselines: Mapping[str, BacktestResult] | None = None,
) -> Path:
    """One PNG: equity (rebased to 1) above drawdown, every run (and baseline, dashed) on their common bars.

    :param runs: ``{label: backtest}``.
    :param output_path: the PNG file, written atomically.
    :param baselines: ``{name: backtest}`` drawn dashed.
    :return: the path written.
    """
    Figure, FigureCanvasAgg = _require_matplotlib()
    everything = {**runs, **(baselines or {})}
    marks, index = align_results(everything)
    fig = Figure(figsize=(9, 6), layout="constrained")
    FigureCanvasAgg(fig)
    ax_equity, ax_drawdown = fig.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    for name, result in everything.items():
        returns = result.returns[index[name]]
        style = {"lw": 1.4} if name in runs else {"lw": 1.0, "ls": "--"}
        ax_equity.plot(marks, np.cumprod(1.0 + returns), label=name, **style)
        ax_drawdown.plot(marks, drawdown_series(returns)[1:], label=name, **style)
    ax_equity.set_title(f"Held-out equity of {len(runs)} runs on their {marks.size} common bars (rebased to 1)")
    ax_equity.set_ylabel("equity / equity at start")
    ax_drawdown.set_ylabel("drawdown")
    ax_drawdown.invert_yaxis()
    ax_drawdown.set_xlabel("date" if np.issubdtype(marks.dtype, np.datetime64) else "data row")
    for ax in (ax_equity, ax_drawdown):
        ax.grid(True, alpha=0.3)
    ax_equity.legend(loc="best", fontsize="small")
    path = Path(output_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))


# ----------------------------------------------------------------------------- the job
def write_comparison(
    runs: Mapping[str, BacktestResult],
    output_dir: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR,
    baselines: Mapping[str, BacktestResult] | None = None,
    *,
    n_boot: int = 1000,
    mean_block: float | None = None,
    alpha: float = 0.1,
    seed: int = 0,
    plots: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`compare_results` of ``runs`` written into ``output_dir``: ``compare.json`` and (``plots``)
    ``compare.png`` (:func:`plot_comparison`).

    :param runs: ``{label: held-out backtest}``.
    :param output_dir: folder, created if needed; files are replaced atomically.
    :param baselines: ``{name: backtest}`` shown beside the runs.
    :param extra: JSON-able entries added to ``compare.json`` (e.g. ``runs``: the folders compared).
    :return: ``compare.json``'s content plus ``files``.
    """
    out = Path(output_dir)
    if out.exists() and not out.is_dir():
        raise ValueError(f"output dir {str(out)!r} is a file, not a folder")
    comparison = compare_results(runs, baselines, n_boot=n_boot, mean_block=mean_block, alpha=alpha, seed=seed)
    summary: dict[str, Any] = {
        "title": f"Comparison of {len(runs)} runs' held-out backtests",
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "sb3_trading_version": __version__,
        **dict(extra or {}),
        **comparison,
    }
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    if plots:
        files["figure"] = str(plot_comparison(runs, out / COMPARE_PNG, baselines))
        summary["figure"] = COMPARE_PNG
    summary = jsonable(summary)
    files["json"] = str(atomic_write_json(out / COMPARE_JSON, summary))
    logger.info("wrote %s", ", ".join(files.values()))
    summary["files"] = files
    return summary


def require_matplotlib() -> None:
    """ImportError with the install hint when matplotlib is missing (check it before any work)."""
    _require_matplotlib()


__all__ = [
    "COMPARE_BASELINES",
    "COMPARE_JSON",
    "COMPARE_PNG",
    "align_results",
    "aligned_metrics",
    "DEFAULT_OUTPUT_DIR",
    "RUN_FILES",
    "compare_results",
    "find_runs",
    "is_run_dir",
    "plot_comparison",
    "require_matplotlib",
    "run_labels",
    "sharpe_difference_ci",
    "write_comparison",
]
