"""Several seeds of the main job and one aggregate: ``sb3-trading train --seeds 0 1 2 3 4 [--workers N]``.

Every comparison in this field needs more than one seed: :func:`train_seeds` runs :func:`~sb3_trading.training.train`
once per seed (sequentially, or in ``workers`` processes), each into its own run folder
``<output_dir>/<run_name>/seed_<s>/`` (written whole or not at all, as every run folder), then writes
``<output_dir>/<run_name>/aggregate.json``:

* ``per_seed``: each run's held-out ``sharpe``, ``total_return``, ``max_drawdown`` and skill ratio (``skill``,
  ``None`` where the market has no reference or the ratio is undefined), read from its ``report.json``;
* ``summary``: per metric the ``median`` and the interquartile range ``[q25, q75]`` over the seeds (NaN-free values);
* ``mean_sharpe``: the mean held-out Sharpe over the seeds with a percentile bootstrap interval (the seeds'
  Sharpe ratios resampled with replacement, ``n_boot`` times): the uncertainty *across seeds*, which a single run's
  bootstrap of its own returns does not show.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sb3_trading.common.validation import check_int
from sb3_trading.evaluation.bootstrap import stationary_bootstrap_ci
from sb3_trading.training import TrainConfig, train
from sb3_trading.utils import atomic_write_json, jsonable

logger = logging.getLogger(__name__)

#: the aggregate of a multi-seed run, beside the per-seed run folders
AGGREGATE_JSON = "aggregate.json"
#: held-out agent metrics the aggregate summarises (with the skill ratio)
AGGREGATED_METRICS: tuple[str, ...] = ("sharpe", "total_return", "max_drawdown")


def seed_run_name(seed: int) -> str:
    """The folder of one seed's run inside the multi-seed folder: ``seed_<seed>``."""
    return f"seed_{seed}"


def _train_one(config: TrainConfig) -> dict[str, Any]:
    return train(config)


def per_seed_row(report: dict[str, Any]) -> dict[str, Any]:
    """One seed's entry of the aggregate, from its ``report.json``."""
    metrics = report["agent"]["metrics"]
    skill = report.get("skill_ratio") or {}
    estimate = skill.get("estimate")
    return {
        "seed": int(report["config"]["seed"]),
        "run_dir": report["run_dir"],
        **{name: metrics.get(name) for name in AGGREGATED_METRICS},
        "skill": None if estimate is None or not np.isfinite(estimate) else float(estimate),
    }


def summarize(values: Sequence[float | None]) -> dict[str, Any]:
    """``{"n", "median", "iqr": [q25, q75]}`` of the finite ``values`` (``None`` entries dropped)."""
    finite = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if finite.size == 0:
        return {"n": 0, "median": None, "iqr": None}
    q25, q50, q75 = np.percentile(finite, [25, 50, 75])
    return {"n": int(finite.size), "median": float(q50), "iqr": [float(q25), float(q75)]}


def mean_ci(values: Sequence[float], n_boot: int = 2000, alpha: float = 0.1, seed: int = 0) -> dict[str, Any]:
    """Mean of ``values`` with its percentile bootstrap interval: the seeds are independent, so they are resampled
    one by one (:func:`~sb3_trading.evaluation.bootstrap.stationary_bootstrap_ci` with blocks of mean length 1)."""
    x = np.asarray(values, dtype=np.float64)
    entry: dict[str, Any] = {"mean": None, "low": None, "high": None, "n": int(x.size), "alpha": alpha, "n_boot": n_boot}
    if x.size == 1:  # one seed: no spread to resample
        entry.update(mean=float(x[0]), low=float(x[0]), high=float(x[0]))
    elif x.size > 1:
        ci = stationary_bootstrap_ci(x, lambda sample: sample.mean(axis=-1), n_boot, mean_block=1.0, alpha=alpha, seed=seed)
        entry.update(mean=ci.estimate, low=ci.low, high=ci.high)
    return entry


def aggregate(reports: Sequence[dict[str, Any]], n_boot: int = 2000, alpha: float = 0.1) -> dict[str, Any]:
    """The aggregate of the seeds' reports (module docstring)."""
    rows = sorted((per_seed_row(report) for report in reports), key=lambda row: row["seed"])
    sharpes = [row["sharpe"] for row in rows if row["sharpe"] is not None and np.isfinite(row["sharpe"])]
    return {
        "seeds": [row["seed"] for row in rows],
        "per_seed": rows,
        "summary": {name: summarize([row[name] for row in rows]) for name in (*AGGREGATED_METRICS, "skill")},
        "mean_sharpe": mean_ci(sharpes, n_boot=n_boot, alpha=alpha),
    }


def train_seeds(config: TrainConfig, seeds: Sequence[int], workers: int = 1) -> dict[str, Any]:
    """Train ``config`` once per seed and aggregate the held-out results (module docstring).

    :param config: the run; its ``seed`` is replaced by each of ``seeds``, its ``run_name`` (default
        ``<algo>_<Env>_seeds_<time>``) names the folder holding the runs.
    :param seeds: distinct seeds, at least one.
    :param workers: processes running seeds at once (1: one after another in this process).
    :return: the aggregate (also ``aggregate.json``), with ``run_dir``.
    :raises ValueError: no seeds, repeated seeds, ``workers < 1``, or a bad config (checked before any run).
    """
    seeds = [check_int("seeds", s, 0) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers >= 0, at least one, got {seeds}")
    workers = check_int("workers", workers, 1)
    config.validate()  # fail before any run
    name = config.run_name or config.default_run_name().replace(f"_seed{config.seed}_", "_seeds_")
    folder = Path(config.output_dir) / name
    runs = [replace(config, seed=s, output_dir=str(folder), run_name=seed_run_name(s)) for s in seeds]
    if workers == 1 or len(runs) == 1:
        reports = [train(run) for run in runs]
    else:
        # spawn: a fresh interpreter per worker (no forked torch/numba state)
        with ProcessPoolExecutor(max_workers=min(workers, len(runs)), mp_context=multiprocessing.get_context("spawn")) as pool:
            reports = list(pool.map(_train_one, runs))
    result = {
        **aggregate(reports),
        "run_dir": str(folder),
        "env_id": reports[0]["env_id"],
        "algo": reports[0]["algo"],
        "timesteps": config.timesteps,
        "workers": workers,
    }
    result = jsonable(result)
    atomic_write_json(folder / AGGREGATE_JSON, result)
    return result


__all__ = [
    "AGGREGATED_METRICS",
    "AGGREGATE_JSON",
    "aggregate",
    "mean_ci",
    "per_seed_row",
    "seed_run_name",
    "summarize",
    "train_seeds",
]
