"""The standard ``info`` of every step and reset: its keys, its one builder, its one-line summary.

Every env, single or batched, builds its ``info`` dicts with :func:`standard_infos`, so the keys, their
order and their values (``log_return`` included) are the same wherever they come from: the Gymnasium env
is a batch of one, :class:`~sb3_trading.vec.BatchedVecEnv` a batch of ``n_envs``.

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

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
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


@functools.cache
def dict_builder(keys: tuple[str, ...]) -> Callable[[Iterable[tuple[Any, ...]]], list[dict[str, Any]]]:
    """A function turning rows of values into dicts with ``keys``, in order: ``[{keys[0]: row[0], ...} for row in rows]``.

    The comprehension is compiled once per key tuple with the keys as constants, so each dict is built by one
    dict display, sized for all its keys. Filling dicts key by key (or adding keys to a display) resizes every
    dict and costs about twice as much; the vectorised env builds ``n_envs`` infos on every step.

    :param keys: the dict keys (strings).
    """
    if not all(isinstance(key, str) for key in keys):
        raise TypeError(f"info keys must be strings, got {keys!r}")
    names = [f"v{i}" for i in range(len(keys))]
    display = ", ".join(f"{key!r}: {name}" for key, name in zip(keys, names, strict=True))
    return eval(f"lambda rows: [{{{display}}} for {', '.join(names)}, in rows]", {})  # noqa: S307 (keys are repr'd constants)


def _column(values: Any) -> list[Any]:
    return values.tolist() if isinstance(values, np.ndarray) else list(values)


def _first(values: Any) -> Any:
    return values.item(0) if isinstance(values, np.ndarray) else values[0]


def log_return(portfolio_return: float) -> float:
    """``log(1 + r)``, or ``log(MIN_GROWTH)`` on a ruined step (``1 + r <= MIN_GROWTH``): one ``log_return`` entry."""
    growth = 1.0 + portfolio_return
    return math.log(growth) if growth > MIN_GROWTH else LOG_MIN_GROWTH


def log_returns(portfolio_return: Sequence[float] | np.ndarray) -> list[float]:
    """:func:`log_return` of each return, vectorised (``numpy.log``, which may differ from ``math.log`` in the last bit)."""
    return np.log(np.maximum(np.add(portfolio_return, 1.0), MIN_GROWTH)).tolist()


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
    """The standard ``info`` of ``k`` accounts: one dict each, keys :data:`INFO_KEYS`, then ``timestamp``, then ``extras``.

    Every column holds ``k`` values (a list, or an array converted with ``tolist``: the dicts hold Python scalars).

    :param equity: ``(k,)`` equity at the close of ``t``.
    :param cash: ``(k,)`` cash.
    :param positions: ``k`` ``(N,)`` share-count rows (a ``(k, N)`` array: each dict gets a row view).
    :param weights: ``k`` ``(N,)`` weight rows.
    :param portfolio_return: ``(k,)`` step returns; ``log_return`` is computed from them, by :func:`log_return` for
        one account and :func:`log_returns` for a batch (the two may differ in the last bit of a float64).
    :param turnover: ``(k,)`` turnover.
    :param costs: ``(k,)`` frictions paid.
    :param drawdown: ``(k,)`` drawdowns.
    :param t: ``(k,)`` data rows.
    :param timestamps: the data's timestamps (all rows, indexed by ``t``), or ``None`` for data without them.
    :param extras: env-specific entries, name -> ``k`` values, added in this order.
    :return: ``k`` dicts.
    """
    if len(t) == 1:  # a single env's step: one dict display, scalars read directly (its hot path)
        row = _first(t)
        info: dict[str, Any] = {
            "equity": _first(equity),
            "cash": _first(cash),
            "positions": positions[0],
            "weights": weights[0],
            "portfolio_return": _first(portfolio_return),
            "log_return": log_return(_first(portfolio_return)),
            "turnover": _first(turnover),
            "costs": _first(costs),
            "drawdown": _first(drawdown),
            "t": row,
        }
        if timestamps is not None:
            info[TIMESTAMP_KEY] = timestamps[row]
        if extras:
            for name, values in extras.items():
                info[name] = _first(values)
        return [info]
    keys = INFO_KEYS
    t_column = _column(t)
    columns: list[list[Any]] = [
        _column(equity),
        _column(cash),
        list(positions),
        list(weights),
        _column(portfolio_return),
        log_returns(portfolio_return),
        _column(turnover),
        _column(costs),
        _column(drawdown),
        t_column,
    ]
    if timestamps is not None:
        keys += (TIMESTAMP_KEY,)
        columns.append(list(map(timestamps.__getitem__, t_column)))
    if extras:
        for name, values in extras.items():
            keys += (name,)
            columns.append(_column(values))
    return dict_builder(keys)(zip(*columns, strict=True))


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
    "dict_builder",
    "log_return",
    "log_returns",
    "standard_infos",
    "summary_line",
]
