"""Indicator specs: parameterised, optionally multi-timeframe names such as ``"rsi:7"`` or ``"weekly:rsi:14"``.

Syntax (whitespace around tokens is ignored)::

    spec      := [timeframe ":"] name [":" params]
    params    := value ("," value)*
    timeframe := "daily" | "weekly" | "monthly" | "tf<k>"      (k >= 2 base bars)

* ``name`` is a key of :data:`sb3_trading.features.INDICATORS`; ``params`` are its parameters in order. Missing
  trailing parameters take their defaults (``"macd:8"`` is ``macd(8, 26, 9)``); a *variadic* indicator
  (``momentum``) takes one or more values of its single parameter and gives one column per value.
* A bare name (``"rsi"``) uses the defaults and keeps the historical column names (``"rsi[SPY]"``); a spec
  with parameters names its columns ``<column>_<p1>_<p2>...`` (``"rsi_7[SPY]"``, ``"macd_hist_12_26_9[SPY]"``,
  ``"momentum_20[SPY]"``), and a timeframe prefixes them (``"weekly_rsi_14[SPY]"``, ``"tf5_rsi[SPY]"``).
* Two specs that compute the same thing (``"rsi"`` and ``"rsi:14"``) are duplicates.

**Higher timeframes.** ``tf<k>`` groups every ``k`` base bars (rows ``jk .. jk + k - 1``; no timestamps
needed); ``daily`` / ``weekly`` (ISO weeks, Monday to Sunday) / ``monthly`` group by calendar period of
``MarketData.timestamps`` in the data's ``timezone`` (naive UTC when it has none). Each group becomes one OHLCV
bar (first open, highest high, lowest low, last close, summed volume) and the indicator runs on those bars. The
value at base bar ``t`` is that of the last group *known complete* at ``t`` (forward-filled), NaN before the
first. A ``tf<k>`` group is known complete at its last base bar (its row number says so). A calendar period is
known complete only at the first bar of a later period: at a period's last bar nothing in the data up to it
says that no more bars of the period will follow (a holiday, a gap, a feed that stops), so the value appears
one bar later, and the data's final period never counts. Features on ``data.slice(0, t + 1)`` therefore equal
row ``t`` of the features on the whole data. Parameters (windows) count higher-timeframe bars.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from sb3_trading.common.validation import closest
from sb3_trading.data.market_data import MarketData

#: calendar timeframes: prefix -> description
CALENDAR_TIMEFRAMES: dict[str, str] = {"daily": "calendar day", "weekly": "ISO week (Monday-Sunday)", "monthly": "month"}
#: the bar-count timeframe prefix: ``tf<k>`` groups every ``k >= 2`` base bars
BAR_TIMEFRAME = re.compile(r"tf(\d+)")
SPEC_SYNTAX = '"name", "name:p1,p2,...", "<timeframe>:name[:p1,...]" with timeframe daily, weekly, monthly or tf<k>'


@dataclass(frozen=True)
class Parameter:
    """One parameter of an indicator.

    :param name: its name (as in the indicator function's signature).
    :param default: value used by the bare name.
    :param minimum: smallest accepted value (inclusive, or exclusive with ``strict=True``).
    :param integer: whether the value must be an integer (a window, a lookback); else a real number.
    :param strict: the minimum itself is excluded (``num_std > 0``).
    """

    name: str
    default: int | float
    minimum: int | float
    integer: bool = True
    strict: bool = False

    def parse(self, text: str, spec: str) -> int | float:
        """Convert one token of ``spec`` into this parameter's value; ``ValueError`` naming the spec otherwise."""
        kind = "an integer" if self.integer else "a number"
        bound = f"{'>' if self.strict else '>='} {self.minimum}"
        try:
            value: int | float = int(text) if self.integer else float(text)
        except ValueError:
            raise ValueError(f"indicator spec {spec!r}: {self.name} must be {kind} {bound}, got {text!r}") from None
        if not np.isfinite(value) or value < self.minimum or (self.strict and value == self.minimum):
            raise ValueError(f"indicator spec {spec!r}: {self.name} must be {kind} {bound}, got {text!r}")
        return value


@dataclass(frozen=True)
class Indicator:
    """How one named indicator is computed from a :class:`MarketData`, and which parameters it takes.

    :param columns: stems of its output columns, one ``(T, N)`` block each (for a variadic indicator, one stem
        shared by every value). At the defaults (bare name) they are the column names.
    :param requires: ``MarketData`` fields it needs besides ``prices`` (close).
    :param function: ``(data, *params) -> tuple`` of float64 ``(T, N)`` arrays, one per column (per value for a
        variadic indicator), causal in the rows of ``data``.
    :param description: one line, for :func:`~sb3_trading.features.describe` and help texts.
    :param params: its parameters, in the order of the spec (``"macd:12,26,9"``).
    :param warmup_of: ``(*params) -> int``, the leading NaN rows of its output at those parameters.
    :param check: optional cross-parameter rule ``(*params) -> str | None``: the error text (e.g.
        ``"fast must be < slow"``), or ``None`` when the values are fine.
    :param variadic: the single parameter takes one or more values, one output column each.
    :param optional: ``MarketData`` fields it uses when present (documented in the description).
    :param columns_of: optional ``(*params) -> stems`` for an indicator whose number of output columns depends on
        its parameters (``"regime_prob:3"``: one column per state); ``columns`` are then the stems at the defaults.
    :param fit: for an indicator with fitted state (``"regime_prob"``: an HMM), ``(data, *params) -> states``, one
        JSON-ready state per asset of ``data`` fitted on its leading ``warmup_of(*params) + 1`` rows; ``function``
        then takes them as ``states=`` (one per asset, in ``data.asset_names`` order). A held-out env passes the
        training env's states (``feature_fits``) instead of fitting on its own rows.
    """

    columns: tuple[str, ...]
    requires: tuple[str, ...]
    function: Callable[..., tuple[np.ndarray, ...]]
    description: str
    params: tuple[Parameter, ...] = ()
    warmup_of: Callable[..., int] = lambda *params: 0
    check: Callable[..., str | None] | None = None
    variadic: bool = False
    optional: tuple[str, ...] = ()
    columns_of: Callable[..., tuple[str, ...]] | None = None
    fit: Callable[..., list[Any]] | None = None

    @property
    def defaults(self) -> tuple[int | float, ...]:
        """Parameter values of the bare name."""
        return tuple(p.default for p in self.params)

    @property
    def warmup(self) -> int:
        """Leading NaN rows at the default parameters."""
        return int(self.warmup_of(*self.defaults))

    def compute(self, data: MarketData, *params: int | float) -> tuple[np.ndarray, ...]:
        """The output arrays on ``data`` at ``params`` (the defaults when none are given); an indicator with a
        ``fit`` is fitted on the leading rows of ``data`` itself."""
        params = params or self.defaults
        if self.fit is None:
            return self.function(data, *params)
        return self.function(data, *params, states=None)

    def column_stems(self, params: tuple[int | float, ...], bare: bool) -> tuple[str, ...]:
        """Output column names (before the ``[asset]`` suffix) at ``params``; ``bare`` keeps the plain stems."""
        if self.variadic:
            if bare:
                return self.columns
            return tuple(f"{self.columns[0]}_{_format(value)}" for value in params)
        columns = self.columns if self.columns_of is None or not params else self.columns_of(*params)
        if bare or not params:
            return columns
        suffix = "_".join(_format(value) for value in params)
        return tuple(f"{column}_{suffix}" for column in columns)

    def signature(self) -> str:
        """Parameters with defaults as text, e.g. ``"fast=12, slow=26, signal=9"`` (``"lookback=20, ..."`` if variadic)."""
        text = ", ".join(f"{p.name}={_format(p.default)}" for p in self.params)
        return f"{text}, ..." if self.variadic else text


def _format(value: int | float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


@dataclass(frozen=True)
class Timeframe:
    """A higher timeframe: every ``factor`` base bars (``kind="bars"``) or a calendar period (``kind`` in
    :data:`CALENDAR_TIMEFRAMES`)."""

    kind: str
    factor: int = 1

    @property
    def label(self) -> str:
        """The spec prefix, e.g. ``"weekly"`` or ``"tf5"``."""
        return f"tf{self.factor}" if self.kind == "bars" else self.kind


@dataclass(frozen=True)
class Spec:
    """A parsed indicator spec.

    :param text: the spec as given (stripped).
    :param name: the indicator's key in the registry.
    :param params: every parameter value (defaults filled in).
    :param bare: no parameters were given (historical column names).
    :param timeframe: the higher timeframe, or ``None`` for the data's own bars.
    """

    text: str
    name: str
    params: tuple[int | float, ...]
    bare: bool
    timeframe: Timeframe | None = None

    @property
    def key(self) -> tuple[object, ...]:
        """What the spec computes: equal keys are duplicates (``"rsi"`` and ``"rsi:14"``)."""
        return (None if self.timeframe is None else self.timeframe.label, self.name, self.params)

    @property
    def canonical(self) -> str:
        """The spec with every parameter written out, e.g. ``"regime_prob:2,250,0"`` for ``"regime_prob"``: the
        key of its fitted state in ``feature_fits``."""
        text = self.name if not self.params else f"{self.name}:{','.join(_format(p) for p in self.params)}"
        return text if self.timeframe is None else f"{self.timeframe.label}:{text}"

    def column_stems(self, indicator: Indicator) -> tuple[str, ...]:
        """Output column names (before ``[asset]``), prefixed by the timeframe's label if any."""
        stems = indicator.column_stems(self.params, self.bare)
        return stems if self.timeframe is None else tuple(f"{self.timeframe.label}_{stem}" for stem in stems)


def _unknown(name: str, registry: Mapping[str, Indicator], spec: str) -> ValueError:
    known = sorted(registry)
    close = closest(name, known)
    hint = f" (did you mean {close!r}?)" if close else ""
    where = "" if spec == name else f" in spec {spec!r}"
    return ValueError(f"unknown indicator {name!r}{hint}{where}; known indicators: {known}; spec syntax: {SPEC_SYNTAX}")


def _parse_timeframe(token: str) -> Timeframe | None:
    if token in CALENDAR_TIMEFRAMES:
        return Timeframe(token)
    match = BAR_TIMEFRAME.fullmatch(token)
    if match:
        return Timeframe("bars", int(match.group(1)))
    return None


def parse_spec(text: object, registry: Mapping[str, Indicator]) -> Spec:
    """Parse one indicator spec (see the module docstring for the syntax).

    :param text: e.g. ``"rsi"``, ``"rsi:7"``, ``"momentum:5,20,60"``, ``"weekly:rsi:14"``, ``"tf5:macd"``.
    :param registry: name -> :class:`Indicator` (normally :data:`sb3_trading.features.INDICATORS`).
    :return: the :class:`Spec`, parameters validated one by one and against each other (not yet against the data).
    :raises TypeError: ``text`` is not a string.
    :raises ValueError: unknown name or timeframe, wrong number of parameters, a non-integer or out-of-range
        value, or parameters that contradict each other; the message names the spec and what it accepts.
    """
    if not isinstance(text, str):
        raise TypeError(f"an indicator spec must be a string such as 'rsi:7', got {type(text).__name__} {text!r}")
    spec = text.strip()
    tokens = [token.strip() for token in spec.split(":")]
    timeframe = None
    if len(tokens) > 1 and tokens[0] not in registry:
        timeframe = _parse_timeframe(tokens[0])
        if timeframe is None and (len(tokens) == 3 or tokens[1] in registry):
            raise ValueError(
                f"indicator spec {spec!r}: unknown timeframe {tokens[0]!r}; use one of "
                f"{[*CALENDAR_TIMEFRAMES, 'tf<k>']} (tf<k>: every k >= 2 base bars), e.g. 'weekly:rsi:14' or 'tf5:rsi:14'"
            )
        if timeframe is not None:
            if timeframe.kind == "bars" and timeframe.factor < 2:
                raise ValueError(f"indicator spec {spec!r}: tf<k> needs k >= 2 base bars, got {tokens[0]!r}")
            tokens = tokens[1:]
    if len(tokens) > 2:
        raise ValueError(f"indicator spec {spec!r} has too many ':'; spec syntax: {SPEC_SYNTAX}")
    name = tokens[0]
    if name not in registry:
        raise _unknown(name, registry, spec)
    indicator = registry[name]
    if len(tokens) == 1:
        return Spec(spec, name, indicator.defaults, bare=True, timeframe=timeframe)

    values = [value.strip() for value in tokens[1].split(",")]
    usage = f"{name}:{','.join(p.name for p in indicator.params)}" + (",..." if indicator.variadic else "")
    if not indicator.params:
        raise ValueError(f"indicator spec {spec!r}: {name!r} takes no parameters; write {name!r}")
    if values == [""] or "" in values:
        raise ValueError(f"indicator spec {spec!r} has an empty parameter; write {usage} ({indicator.signature()})")
    try:
        parsed = _parse_values(indicator, values, spec, usage)
    except ValueError as exc:
        raise ValueError(f"{exc}; write {usage} (defaults {indicator.signature()})") from None
    if indicator.check is not None:
        problem = indicator.check(*parsed)
        if problem:
            raise ValueError(f"indicator spec {spec!r}: {problem}; write {usage} (defaults {indicator.signature()})")
    return Spec(spec, name, parsed, bare=False, timeframe=timeframe)


def _parse_values(indicator: Indicator, values: list[str], spec: str, usage: str) -> tuple[int | float, ...]:
    """The parameter values of ``spec`` (defaults filled in), each converted and range-checked."""
    name = usage.split(":")[0]
    if indicator.variadic:
        parsed = tuple(indicator.params[0].parse(value, spec) for value in values)
        if len(set(parsed)) != len(parsed):
            raise ValueError(f"indicator spec {spec!r} repeats a value of {indicator.params[0].name}")
    else:
        if len(values) > len(indicator.params):
            raise ValueError(
                f"indicator spec {spec!r} gives {len(values)} parameters but {name!r} takes at most {len(indicator.params)}"
            )
        parsed = tuple(p.parse(value, spec) for p, value in zip(indicator.params, values, strict=False))
        parsed += indicator.defaults[len(parsed) :]
    return parsed


# ---------------------------------------------------------------- higher timeframes
def _calendar_groups(data: MarketData, kind: str) -> np.ndarray:
    """``(T,)`` int64 period number of each bar (in the data's time zone)."""
    if data.timestamps is None:
        raise ValueError(
            f"a {kind!r} timeframe needs MarketData.timestamps, which this data lacks; pass timestamps=... or use "
            "a bar-count timeframe such as 'tf5:rsi:14'"
        )
    stamps = np.asarray(data.timestamps, dtype="datetime64[ns]")
    if data.timezone:
        import pandas as pd  # lazily: pandas stays out of the env hot paths

        local = pd.DatetimeIndex(stamps).tz_localize("UTC").tz_convert(data.timezone).tz_localize(None)
        stamps = local.to_numpy(dtype="datetime64[ns]")
    if kind == "monthly":
        return stamps.astype("datetime64[M]").astype(np.int64)
    days = stamps.astype("datetime64[D]").astype(np.int64)
    return days if kind == "daily" else (days + 3) // 7  # 1970-01-01 was a Thursday: weeks start on Monday


def group_bounds(data: MarketData, timeframe: Timeframe) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First and last base rows of every higher-timeframe bar known to be complete, and where that is known.

    :return: ``(starts, ends, known)``, int64 ``(G,)`` each, increasing; group ``j`` covers rows
        ``starts[j] .. ends[j]`` and is known complete from row ``known[j]`` on: ``ends[j]`` for ``tf<k>``, the
        first row of the next period (``ends[j] + 1``) for a calendar period.
    """
    n_rows = data.n_steps
    if timeframe.kind == "bars":
        starts = np.arange(0, n_rows, timeframe.factor, dtype=np.int64)
        ends = starts + timeframe.factor - 1
        keep = ends <= n_rows - 1
        return starts[keep], ends[keep], ends[keep]
    groups = _calendar_groups(data, timeframe.kind)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]]).astype(np.int64)
    # a period is known complete when a bar of a later one arrives; the data's final period never is
    return starts[:-1], starts[1:] - 1, starts[1:]


#: higher bars per year of the calendar timeframes (``daily``: trading days)
CALENDAR_PERIODS_PER_YEAR = {"daily": 252.0, "weekly": 52.0, "monthly": 12.0}


def timeframe_periods_per_year(data: MarketData, timeframe: Timeframe) -> float:
    """Higher bars per year: ``data.periods_per_year / k`` for ``tf<k>``, else :data:`CALENDAR_PERIODS_PER_YEAR`
    (fixed, so that no row's features depend on how many periods the whole data holds)."""
    if timeframe.kind == "bars":
        return float(data.periods_per_year) / timeframe.factor
    return CALENDAR_PERIODS_PER_YEAR[timeframe.kind]


def resample(data: MarketData, starts: np.ndarray, ends: np.ndarray, periods_per_year: float) -> MarketData:
    """One OHLCV bar per group: first open, highest high, lowest low, last close, summed volume (no features).

    :param data: the base bars.
    :param starts: first rows of the groups, ``(G,)``, with ``ends`` their last rows (contiguous groups).
    :param periods_per_year: the higher bars' calendar (:func:`timeframe_periods_per_year`).
    :return: a ``MarketData`` of ``G`` bars; its row ``j`` uses base rows ``<= ends[j]`` only.
    """
    stop = int(ends[-1]) + 1

    def reduce(ufunc: np.ufunc, values: np.ndarray | None) -> np.ndarray | None:
        return None if values is None else ufunc.reduceat(values[:stop], starts, axis=0)

    return MarketData(
        prices=data.prices[ends],
        open=None if data.open is None else data.open[starts],
        high=reduce(np.maximum, data.high),
        low=reduce(np.minimum, data.low),
        volume=reduce(np.add, data.volume),
        asset_names=data.asset_names,
        periods_per_year=periods_per_year,
    )


def forward_fill(values: np.ndarray, known: np.ndarray, n_rows: int) -> np.ndarray:
    """Spread ``(G, N)`` higher-timeframe values onto ``n_rows`` base bars: row ``t`` gets the last group with
    ``known[j] <= t`` (:func:`group_bounds`), NaN before ``known[0]``."""
    index = np.searchsorted(known, np.arange(n_rows), side="right") - 1
    out = values[np.maximum(index, 0)]
    out[index < 0] = np.nan
    return out
