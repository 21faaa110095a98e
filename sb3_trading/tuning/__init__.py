"""Optuna hyperparameter tuning: search spaces, the validation-Sharpe objective, resumable and distributed studies.

Needs Optuna (``pip install "sb3-trading[tune]"``; a PostgreSQL storage also ``"sb3-trading[postgres]"``).
The search spaces (:mod:`sb3_trading.tuning.spaces`) and the command-line glue
(:mod:`sb3_trading.tuning.commands`) import without Optuna; the names below load it on first use::

    from sb3_trading.tuning import export_best_params, run_study

    study = run_study("sb3_trading/MultiAsset-v0", "ppo", n_trials=50)           # SQLite in runs/tune/
    export_best_params(study, "ppo", "sb3_trading/MultiAsset-v0", "best_ppo.yml")  # rl-zoo3 yml
    best_trial_deflated_sharpe(study)["dsr"]   # P(best trial's true Sharpe > the expected best of N lucky ones)
"""

from __future__ import annotations

import importlib
from typing import Any

from sb3_trading.tuning.spaces import (
    DEFAULT_CHOICES,
    HYPERPARAMS_SAMPLER,
    NET_ARCH,
    SEARCH_SPACES,
    check_choices,
    check_rollout_budget,
    params_to_hyperparams,
    sample_params,
    sample_ppo_lstm_params,
    sample_ppo_mask_params,
    sample_ppo_params,
    sample_qppo_mask_params,
    sample_qppo_params,
)

INSTALL_HINT = 'pip install "sb3-trading[tune]"'

#: public names that need Optuna, by module
_LAZY = {
    "TradingObjective": "objective",
    "TrialEvalCallback": "objective",
    "TrialSeededTPESampler": "study",
    "best_trial_deflated_sharpe": "study",
    "check_storage_url": "study",
    "check_zoo_config": "study",
    "export_best_params": "study",
    "make_storage": "study",
    "run_study": "study",
    "study_summary": "study",
    "validation_sharpe_moments": "objective",
}


def require_optuna() -> Any:
    """Import and return ``optuna``, or raise ``ImportError`` with the install hint."""
    try:
        return importlib.import_module("optuna")
    except ImportError as exc:
        raise ImportError(f"hyperparameter tuning needs Optuna: {INSTALL_HINT}") from exc


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        require_optuna()
        return getattr(importlib.import_module(f"sb3_trading.tuning.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'sb3_trading.tuning' has no attribute {name!r}")


__all__ = [
    "DEFAULT_CHOICES",
    "HYPERPARAMS_SAMPLER",
    "INSTALL_HINT",
    "NET_ARCH",
    "SEARCH_SPACES",
    "TradingObjective",
    "TrialEvalCallback",
    "TrialSeededTPESampler",
    "best_trial_deflated_sharpe",
    "check_choices",
    "check_rollout_budget",
    "check_storage_url",
    "check_zoo_config",
    "export_best_params",
    "make_storage",
    "params_to_hyperparams",
    "require_optuna",
    "run_study",
    "sample_params",
    "sample_ppo_lstm_params",
    "sample_ppo_mask_params",
    "sample_ppo_params",
    "sample_qppo_mask_params",
    "sample_qppo_params",
    "study_summary",
    "validation_sharpe_moments",
]
