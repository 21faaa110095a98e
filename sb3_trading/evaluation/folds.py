"""Walk-forward results: the folds, their aggregate and the stitched out-of-sample path (measuring only).

The training loop is :func:`sb3_trading.walk_forward.walk_forward`. For fold ``k`` with rows
``[train_start, train_end)`` and ``[test_start, test_end)`` (from
:func:`~sb3_trading.evaluation.splits.walk_forward_bounds`, so ``train_end <= test_start - purge``) it
trains on the training window (normaliser fitted there only) and backtests the test block, whose first
decision is at ``test_start``; this module holds what it measures:

* :class:`FoldResult` per fold and :class:`WalkForwardResult` for the run;
* :func:`aggregate_folds`: each metric's mean, standard deviation, minimum and maximum over the folds,
  the metrics of the *stitched* out-of-sample path (all test blocks compounded in order), and in how
  many folds the agent's Sharpe beat each baseline's.

Every metric is annualised with the data's calendar (``data.periods_per_year``, carried into each
fold's slice) and measured against the annual ``risk_free`` rate; ``config`` records both.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sb3_trading.data import MarketData
from sb3_trading.evaluation.backtest import BacktestResult, concat_results

logger = logging.getLogger(__name__)

#: baselines run on every test block
WALK_FORWARD_BASELINES = ("buy_and_hold", "equal_weight")


@dataclass
class FoldResult:
    """One walk-forward fold.

    :ivar fold: fold number, from 0.
    :ivar train_rows: ``(start, stop)`` half-open rows of the training window.
    :ivar test_rows: ``(start, stop)`` half-open rows of the test block.
    :ivar agent: the backtest of the trained policy; its ``t`` are rows of the full data.
    :ivar baselines: baseline backtests on the same rows.
    :ivar train_seconds: wall time of ``learn``.
    :ivar model_path: where the fold's model was saved, if it was.
    :ivar model: the trained algorithm (not serialised).
    """

    fold: int
    train_rows: tuple[int, int]
    test_rows: tuple[int, int]
    agent: BacktestResult
    baselines: dict[str, BacktestResult]
    train_seconds: float
    model_path: str | None = None
    model: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fold": self.fold,
            "train_rows": list(self.train_rows),
            "test_rows": list(self.test_rows),
            "train_seconds": self.train_seconds,
            "model_path": self.model_path,
            "agent": self.agent.to_dict(),
            "baselines": {name: r.to_dict() for name, r in self.baselines.items()},
        }


@dataclass
class WalkForwardResult:
    """All folds, the aggregate, and the stitched out-of-sample paths (``stitched["agent"]`` first)."""

    folds: list[FoldResult]
    aggregate: dict[str, Any]
    stitched: dict[str, BacktestResult]
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "folds": [f.to_dict() for f in self.folds],
            "aggregate": self.aggregate,
            "stitched": {name: r.to_dict() for name, r in self.stitched.items()},
        }


def summarize_folds(metrics: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Per metric key: ``mean``, ``std`` (``ddof=0``), ``min``, ``max`` over folds (keys present in every fold)."""
    if not metrics:
        return {}
    keys = [key for key in metrics[0] if all(key in m for m in metrics)]
    out = {}
    for key in keys:
        values = np.asarray([m[key] for m in metrics], dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            continue
        out[key] = {
            "mean": float(finite.mean()),
            "std": float(finite.std()),
            "min": float(finite.min()),
            "max": float(finite.max()),
        }
    return out


def on_rows(result: BacktestResult, offset: int, data: MarketData) -> BacktestResult:
    """``result`` of a backtest on ``data.slice(offset, ...)`` re-indexed to rows of the whole ``data``."""
    return dataclasses.replace(result, t=result.t + offset, market=data)


def aggregate_folds(folds: Sequence[FoldResult], algo_name: str, config: Mapping[str, Any]) -> WalkForwardResult:
    """The :class:`WalkForwardResult` of ``folds``: per-metric summaries over folds, the stitched out-of-sample
    paths (all test blocks compounded in order) and how often the agent's Sharpe beat each baseline's.

    :param folds: the folds in time order (at least one).
    :param algo_name: label of the stitched agent path.
    :param config: the run's settings, stored as :attr:`WalkForwardResult.config`.
    """
    if not folds:
        raise ValueError("aggregate_folds needs at least one fold")
    stitched = {"agent": concat_results([f.agent for f in folds], name=algo_name)}
    for name in folds[0].baselines:
        stitched[name] = concat_results([f.baselines[name] for f in folds], name=name)
    aggregate: dict[str, Any] = {
        "agent": {
            "folds": summarize_folds([f.agent.metrics for f in folds]),
            "stitched": stitched["agent"].metrics,
        },
        "baselines": {
            name: {"folds": summarize_folds([f.baselines[name].metrics for f in folds]), "stitched": stitched[name].metrics}
            for name in folds[0].baselines
        },
        "agent_beats_baseline_sharpe": {
            name: float(np.mean([f.agent.metrics["sharpe"] > f.baselines[name].metrics["sharpe"] for f in folds]))
            for name in folds[0].baselines
        },
    }
    return WalkForwardResult(list(folds), aggregate, stitched, dict(config))
