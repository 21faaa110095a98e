"""Honest evaluation: metrics, a deterministic backtester and baselines, purged walk-forward CV,
stationary-bootstrap confidence intervals, volatility regimes and reports.

This package measures; it never trains. :func:`walk_forward` (which trains a model per fold) lives in
:mod:`sb3_trading.walk_forward`; the name stays importable from here for compatibility, resolved on first
use so that importing ``sb3_trading.evaluation`` does not import the training job.
"""

import importlib
from typing import Any

from sb3_trading.evaluation.backtest import BacktestResult, RandomPolicy, backtest, concat_results, make_backtest_env
from sb3_trading.evaluation.baselines import (
    BASELINES,
    buy_and_hold,
    cash_baseline,
    env_baselines,
    env_yield_rates,
    equal_weight,
    random_baseline,
    yield_rates,
)
from sb3_trading.evaluation.bootstrap import (
    BootstrapCI,
    return_ci,
    sharpe_ci,
    stationary_bootstrap_ci,
    stationary_bootstrap_indices,
)
from sb3_trading.evaluation.compare import (
    align_results,
    compare_results,
    find_runs,
    plot_comparison,
    sharpe_difference_ci,
    write_comparison,
)
from sb3_trading.evaluation.folds import FoldResult, WalkForwardResult, aggregate_folds, summarize_folds
from sb3_trading.evaluation.metrics import (
    annual_return,
    annual_volatility,
    calmar_ratio,
    compute_metrics,
    conditional_value_at_risk,
    drawdown_periods,
    infer_periods_per_year,
    max_drawdown,
    max_drawdown_duration,
    risk_free_per_period,
    rolling_sharpe,
    sharpe_ratio,
    sortino_ratio,
    value_at_risk,
)
from sb3_trading.evaluation.overfitting import (
    PBOResult,
    SharpeMoments,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe_moments,
    sharpe_ratio_std,
)
from sb3_trading.evaluation.reference import (
    REFERENCE_POLICIES,
    SIGNAL_FOLLOWER,
    ReferencePolicy,
    SkillRatio,
    format_skill_ratio,
    reference_baselines,
    reference_policies,
    skill_ratio,
    skill_report,
)
from sb3_trading.evaluation.regimes import regime_breakdown, volatility_regimes
from sb3_trading.evaluation.report import sharpe_significance, write_report
from sb3_trading.evaluation.splits import (
    combinatorial_purged_splits,
    cpcv_paths,
    cpcv_test_groups,
    purged_kfold,
    walk_forward_bounds,
    walk_forward_splits,
)
from sb3_trading.evaluation.trades import (
    RoundTrip,
    TradeStats,
    format_trade_stats,
    round_trips,
    trade_analytics,
    trade_stats,
)

__all__ = [
    "align_results",
    "compare_results",
    "find_runs",
    "plot_comparison",
    "sharpe_difference_ci",
    "write_comparison",
    "skill_report",
    "skill_ratio",
    "reference_policies",
    "reference_baselines",
    "format_skill_ratio",
    "SkillRatio",
    "ReferencePolicy",
    "SIGNAL_FOLLOWER",
    "REFERENCE_POLICIES",
    "BASELINES",
    "BacktestResult",
    "BootstrapCI",
    "FoldResult",
    "RandomPolicy",
    "WalkForwardResult",
    "aggregate_folds",
    "annual_return",
    "annual_volatility",
    "backtest",
    "buy_and_hold",
    "calmar_ratio",
    "cash_baseline",
    "compute_metrics",
    "concat_results",
    "conditional_value_at_risk",
    "drawdown_periods",
    "env_baselines",
    "env_yield_rates",
    "equal_weight",
    "infer_periods_per_year",
    "make_backtest_env",
    "max_drawdown",
    "max_drawdown_duration",
    "purged_kfold",
    "random_baseline",
    "regime_breakdown",
    "return_ci",
    "risk_free_per_period",
    "rolling_sharpe",
    "sharpe_ci",
    "sharpe_ratio",
    "sortino_ratio",
    "stationary_bootstrap_ci",
    "stationary_bootstrap_indices",
    "summarize_folds",
    "value_at_risk",
    "volatility_regimes",
    "walk_forward",
    "walk_forward_bounds",
    "walk_forward_splits",
    "write_report",
    "sharpe_significance",
    "RoundTrip",
    "TradeStats",
    "format_trade_stats",
    "round_trips",
    "trade_analytics",
    "trade_stats",
    "yield_rates",
    "PBOResult",
    "SharpeMoments",
    "combinatorial_purged_splits",
    "cpcv_paths",
    "cpcv_test_groups",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "sharpe_moments",
    "sharpe_ratio_std",
]


#: names kept for compatibility that live above this package (resolved lazily, see the module doc)
_MOVED = {"walk_forward": "sb3_trading.walk_forward"}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'sb3_trading.evaluation' has no attribute {name!r}")
