"""Trading callbacks: per-episode trading metrics, periodic held-out backtests with best-model saving, atomic
checkpoints and a wall-clock budget."""

from sb3_trading.callbacks.backtest_eval import (
    BacktestEvalCallback,
    check_confidence,
    known_metrics,
    make_eval_callback,
    validation_psr,
)
from sb3_trading.callbacks.run_control import AtomicCheckpointCallback, WallClockLimit, latest_checkpoint
from sb3_trading.callbacks.trading_metrics import TradingMetricsCallback

__all__ = [
    "AtomicCheckpointCallback",
    "BacktestEvalCallback",
    "TradingMetricsCallback",
    "WallClockLimit",
    "check_confidence",
    "known_metrics",
    "latest_checkpoint",
    "make_eval_callback",
    "validation_psr",
]
