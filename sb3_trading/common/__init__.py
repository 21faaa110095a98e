"""Shared helpers that are not trading-specific.

* :mod:`sb3_trading.common.validation`: argument checks (``check_int``, ``check_real``, ``check_choice``, ``suggest``);
* :mod:`sb3_trading.common.bootstrap`: the stationary-bootstrap index generator (``stationary_bootstrap_indices``);
* :mod:`sb3_trading.common.io`: strict-JSON conversion and atomic file writes;
* :mod:`sb3_trading.common.envs`: tiny purpose-built test envs with known answers.

Import the submodules directly; this package imports none of them (and none imports the rest of the package),
so any module of ``sb3_trading`` may use them without an import cycle.
"""
