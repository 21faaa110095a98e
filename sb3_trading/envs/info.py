"""The standard ``info`` of every step and reset: its keys, its one builder, its one-line summary.

Every env, single or batched, builds its ``info`` dicts with :func:`standard_info`, so the keys, their
order and their values (``log_return`` included) are the same wherever they come from: the Gymnasium env
is a batch of one, :class:`~sb3_trading.vec.BatchedVecEnv` a batch of ``n_envs`` (whose dicts are built
when read, see :mod:`sb3_trading.vec.infos`).

=====================  =====================================================================
key                    value
=====================  =====================================================================
``equity``             equity marked at the close of ``t``, currency
``cash``               cash, currency
``positions``          ``(N,)`` share counts
``weights``            ``(N,)`` position values / equity
``portfolio_return``   simple return of the step, net of costs
``log_return``         ``log(1 + portfolio_return)`` (``log(1e-12)`` on a ruined step)
``turnover``           traded notional / equity before the trade
``costs``              frictions paid in the step, currency
``drawdown``           ``1 - equity / peak``
``t``                  row index into the data
``timestamp``          ``numpy.datetime64`` of row ``t``, when the data has timestamps
=====================  =====================================================================

Env-specific entries follow, in the order the env adds them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

INFO_KEYS = (
    "equity",
    "cash",
    "positions",
    "weights",
    "portfolio_return",
    "log_return",
    "turnover",
    "costs",
    "drawdown",
    "t",
)
#: the key of the row's time, present when the data has timestamps
TIMESTAMP_KEY = "timestamp"
#: smallest gross return whose log ``log_return`` reports (a ruined step reports ``log(1e-12)``)
MIN_GROWTH = 1e-12
LOG_MIN_GROWTH = math.log(MIN_GROWTH)


def log_return(portfolio_return: float) -> float:
    """``log(1 + r)``, or ``log(MIN_GROWTH)`` on a ruined step (``1 + r <= MIN_GROWTH``): one ``log_return`` entry."""
    growth = 1.0 + portfolio_return
    return math.log(growth) if growth > MIN_GROWTH else LOG_MIN_GROWTH


def log_returns(portfolio_return: Sequence[float] | np.ndarray) -> np.ndarray:
    """:func:`log_return` of each return, vectorised (``numpy.log``, which may differ from ``math.log`` in the last bit)."""
    return np.log(np.maximum(np.add(portfolio_return, 1.0), MIN_GROWTH))


def standard_info(
    row: int,
    equity: Sequence[float] | np.ndarray,
    cash: Sequence[float] | np.ndarray,
    positions: Sequence[np.ndarray] | np.ndarray,
    weights: Sequence[np.ndarray] | np.ndarray,
    portfolio_return: Sequence[float] | np.ndarray,
    turnover: Sequence[float] | np.ndarray,
    costs: Sequence[float] | np.ndarray,
    drawdown: Sequence[float] | np.ndarray,
    t: Sequence[int] | np.ndarray,
    timestamps: Sequence[Any] | np.ndarray | None = None,
    extras: Mapping[str, Sequence[Any] | np.ndarray] | None = None,
) -> dict[str, Any]:
    """The standard ``info`` of account ``row`` of ``k``: keys :data:`INFO_KEYS`, then ``timestamp``, then ``extras``.

    The one builder of every ``info`` (single env, batched env, PettingZoo env). Each column holds ``k``
    values; the dict holds Python scalars, and ``positions``/``weights`` are row ``row`` of theirs (a view of
    a ``(k, N)`` array).

    :param row: the account, ``0 <= row < k``.
    :param equity: ``(k,)`` equity at the close of ``t``.
    :param cash: ``(k,)`` cash.
    :param positions: ``k`` ``(N,)`` share-count rows.
    :param weights: ``k`` ``(N,)`` weight rows.
    :param portfolio_return: ``(k,)`` step returns; ``log_return`` is :func:`log_return` of it.
    :param turnover: ``(k,)`` turnover.
    :param costs: ``(k,)`` frictions paid.
    :param drawdown: ``(k,)`` drawdowns.
    :param t: ``(k,)`` data rows.
    :param timestamps: the data's timestamps (all rows, indexed by ``t``), or ``None`` for data without them.
    :param extras: env-specific entries, name -> ``k`` values (a ``(k,)`` array gives scalars, a ``(k, M)`` one
        rows), added in this order.
    """
    # entry ``row`` of each column: a Python scalar of a (k,) array (``item``), a row view of a (k, M) one, or a
    # sequence's element. Written out per column, not as a helper: this runs every step of every env, and a
    # function call per entry was nearly half of its time
    nd = np.ndarray
    step_return = portfolio_return.item(row) if type(portfolio_return) is nd else portfolio_return[row]
    bar = t.item(row) if type(t) is nd else t[row]
    info: dict[str, Any] = {
        "equity": equity.item(row) if type(equity) is nd else equity[row],
        "cash": cash.item(row) if type(cash) is nd else cash[row],
        "positions": positions[row],
        "weights": weights[row],
        "portfolio_return": step_return,
        "log_return": log_return(step_return),
        "turnover": turnover.item(row) if type(turnover) is nd else turnover[row],
        "costs": costs.item(row) if type(costs) is nd else costs[row],
        "drawdown": drawdown.item(row) if type(drawdown) is nd else drawdown[row],
        "t": bar,
    }
    if timestamps is not None:
        info[TIMESTAMP_KEY] = timestamps[bar]
    if extras:
        for name, values in extras.items():
            info[name] = values.item(row) if type(values) is nd and values.ndim == 1 else values[row]
    return info


def standard_infos(
    equity: Sequence[float] | np.ndarray,
    cash: Sequence[float] | np.ndarray,
    positions: Sequence[np.ndarray] | np.ndarray,
    weights: Sequence[np.ndarray] | np.ndarray,
    portfolio_return: Sequence[float] | np.ndarray,
    turnover: Sequence[float] | np.ndarray,
    costs: Sequence[float] | np.ndarray,
    drawdown: Sequence[float] | np.ndarray,
    t: Sequence[int] | np.ndarray,
    timestamps: Sequence[Any] | np.ndarray | None = None,
    extras: Mapping[str, Sequence[Any] | np.ndarray] | None = None,
) -> list[dict[str, Any]]:
    """:func:`standard_info` of every one of the ``k`` accounts (same arguments, without ``row``)."""
    columns = (equity, cash, positions, weights, portfolio_return, turnover, costs, drawdown, t, timestamps, extras)
    return [standard_info(row, *columns) for row in range(len(t))]


def summary_line(info: dict[str, Any]) -> str:
    """One-line text summary of a step's standard ``info`` (what ``render_mode="ansi"`` shows)."""
    when = f" {np.datetime_as_string(info[TIMESTAMP_KEY], unit='s')}" if TIMESTAMP_KEY in info else ""
    return (
        f"t={info['t']}{when} equity={info['equity']:.2f} return={info['portfolio_return']:+.4%} "
        f"drawdown={info['drawdown']:.2%} turnover={info['turnover']:.3f}"
    )


__all__ = [
    "INFO_KEYS",
    "LOG_MIN_GROWTH",
    "MIN_GROWTH",
    "TIMESTAMP_KEY",
    "log_return",
    "log_returns",
    "standard_info",
    "standard_infos",
    "summary_line",
]
