"""Trading callbacks: per-episode trading metrics and periodic held-out backtests with best-model saving."""

from sb3_trading.callbacks.backtest_eval import BacktestEvalCallback, known_metrics, make_eval_callback
from sb3_trading.callbacks.trading_metrics import TradingMetricsCallback

__all__ = ["BacktestEvalCallback", "TradingMetricsCallback", "known_metrics", "make_eval_callback"]
