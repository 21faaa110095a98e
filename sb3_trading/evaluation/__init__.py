"""Honest evaluation: metrics, a deterministic backtester and baselines."""

from sb3_trading.evaluation.backtest import (
    BacktestResult,
    RandomPolicy,
    backtest,
    buy_and_hold,
    cash_baseline,
    equal_weight,
)
from sb3_trading.evaluation.metrics import compute_metrics, infer_periods_per_year, max_drawdown

__all__ = [
    "BacktestResult",
    "RandomPolicy",
    "backtest",
    "buy_and_hold",
    "cash_baseline",
    "compute_metrics",
    "equal_weight",
    "infer_periods_per_year",
    "max_drawdown",
]
