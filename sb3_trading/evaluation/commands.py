"""Compatibility names of the former ``sb3_trading.evaluation.commands`` (the glue moved up a floor).

The library of ``sb3-trading backtest`` is :mod:`sb3_trading.backtesting` (it uses the run recipe, so it
sits above this package); the argparse glue of
every subcommand is the commands layer (:mod:`sb3_trading.commands`); walk-forward training is
:mod:`sb3_trading.walk_forward`. The old names resolve on first use, so importing this module imports
nothing above :mod:`sb3_trading.evaluation`.
"""

from __future__ import annotations

import importlib
from typing import Any

#: former name -> the module that holds it now
_MOVED = {
    "BacktestConfig": "sb3_trading.backtesting",
    "infer_algo": "sb3_trading.backtesting",
    "load_model": "sb3_trading.backtesting",
    "run_backtest": "sb3_trading.backtesting",
    "run_backtest_command": "sb3_trading.backtesting",
    "add_backtest_arguments": "sb3_trading.commands.backtest",
    "backtest_from_args": "sb3_trading.commands.backtest",
    "format_summary": "sb3_trading.commands.backtest",
    "add_walk_forward_arguments": "sb3_trading.commands.walk_forward",
    "walk_forward_from_args": "sb3_trading.commands.walk_forward",
    "add_data_arguments": "sb3_trading.commands.common",
    "add_risk_free_argument": "sb3_trading.commands.common",
    "data_arg": "sb3_trading.commands.common",
    "run_walk_forward": "sb3_trading.walk_forward",
    "run_walk_forward_command": "sb3_trading.walk_forward",
}


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        return getattr(importlib.import_module(_MOVED[name]), name)
    raise AttributeError(f"module 'sb3_trading.evaluation.commands' has no attribute {name!r}")


__all__ = list(_MOVED)
