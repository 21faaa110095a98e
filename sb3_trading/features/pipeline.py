"""Turn a :class:`~sb3_trading.data.MarketData` into a causal feature matrix.

:func:`compute_features` evaluates named indicators from :data:`INDICATORS` on
every asset and stacks them, optionally followed by the data's own
``features`` columns, into a :class:`FeatureMatrix`.

Column order (documented contract, environments rely on it):

1. indicators in the order requested;
2. within an indicator, its output columns in registry order (``"macd"`` gives
   ``macd``, ``macd_signal``, ``macd_hist``);
3. within an output column, the assets in ``data.asset_names`` order;
4. then, if ``include_data_features``, the ``data.features`` columns under their
   own ``data.feature_names``.

Indicator columns are named ``"<column>[<asset>]"``, e.g. ``"log_return[asset_0]"``
or ``"macd_hist[SPY]"``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

import sb3_trading.features.indicators as ind
from sb3_trading.common.validation import closest
from sb3_trading.data.market_data import MarketData


@dataclass(frozen=True)
class Indicator:
    """How one named indicator is computed from a :class:`MarketData` (at its default parameters).

    :param columns: names of its output columns, one ``(T, N)`` block each.
    :param requires: optional ``MarketData`` fields it reads besides ``prices`` (close).
    :param warmup: leading NaN rows of its output.
    :param compute: ``MarketData -> tuple`` of ``len(columns)`` float64 ``(T, N)`` arrays.
    :param description: one line, for help texts.
    """

    columns: tuple[str, ...]
    requires: tuple[str, ...]
    warmup: int
    compute: Callable[[MarketData], tuple[np.ndarray, ...]]
    description: str


INDICATORS: dict[str, Indicator] = {
    "return": Indicator(
        columns=("return",),
        requires=(),
        warmup=1,
        compute=lambda d: (ind.simple_returns(d.prices),),
        description="simple return p_t / p_{t-1} - 1",
    ),
    "log_return": Indicator(
        columns=("log_return",),
        requires=(),
        warmup=1,
        compute=lambda d: (ind.log_returns(d.prices),),
        description="log return ln(p_t / p_{t-1})",
    ),
    "volatility": Indicator(
        columns=("volatility",),
        requires=(),
        warmup=20,
        compute=lambda d: (ind.rolling_volatility(d.prices, window=20),),
        description="sample std (ddof=1) of the last 20 log returns, per bar",
    ),
    "rsi": Indicator(
        columns=("rsi",),
        requires=(),
        warmup=14,
        compute=lambda d: (ind.rsi(d.prices, window=14),),
        description="14-bar Wilder RSI rescaled to [-1, 1]",
    ),
    "macd": Indicator(
        columns=("macd", "macd_signal", "macd_hist"),
        requires=(),
        warmup=26 + 9 - 2,
        compute=lambda d: ind.macd(d.prices, fast=12, slow=26, signal=9),
        description="MACD(12, 26, 9) line, signal and histogram as fractions of the price",
    ),
    "bollinger": Indicator(
        columns=("bollinger_pct_b",),
        requires=(),
        warmup=20 - 1,
        compute=lambda d: (ind.bollinger_percent_b(d.prices, window=20, num_std=2.0),),
        description="Bollinger %b (20 bars, 2 std)",
    ),
    "atr": Indicator(
        columns=("atr_pct",),
        requires=("high", "low"),
        warmup=14,
        compute=lambda d: (ind.average_true_range(d.high, d.low, d.prices, window=14),),
        description="14-bar Wilder ATR as a fraction of the close",
    ),
    "volume_zscore": Indicator(
        columns=("volume_zscore",),
        requires=("volume",),
        warmup=20 - 1,
        compute=lambda d: (ind.volume_zscore(d.volume, window=20),),
        description="z-score (ddof=1) of volume over the last 20 bars",
    ),
}
"""Registry of indicator names accepted by :func:`compute_features`.

Add an :class:`Indicator` under a new key to make it available by name (e.g. with other parameters).
"""

DEFAULT_INDICATORS: tuple[str, ...] = ("log_return", "volatility", "rsi", "macd", "bollinger")
"""Indicators used by default; they need close prices only."""


@dataclass(frozen=True, eq=False)
class FeatureMatrix:
    """Causal features aligned with the bars of a :class:`MarketData`.

    :param values: float64 array ``(T, F)``; row ``t`` uses data up to bar ``t`` only.
    :param names: ``F`` column names, e.g. ``"log_return[asset_0]"``, ``"macd_hist[asset_1]"``.
    :param warmup: number of leading rows that contain a NaN; rows ``>= warmup`` are all finite.
    """

    values: np.ndarray
    names: tuple[str, ...]
    warmup: int

    @property
    def n_features(self) -> int:
        """Number of columns ``F``."""
        return int(self.values.shape[1])

    def __len__(self) -> int:
        return int(self.values.shape[0])


def _unknown_indicator(name: object) -> ValueError:
    known = sorted(INDICATORS)
    close = closest(name, known)
    hint = f" (did you mean {close!r}?)" if close else ""
    return ValueError(f"unknown indicator {name!r}{hint}; known indicators: {known}")


def compute_features(
    data: MarketData,
    indicators: Sequence[str] = DEFAULT_INDICATORS,
    include_data_features: bool = True,
) -> FeatureMatrix:
    """Compute indicator columns for every asset, then append ``data.features``.

    See the module docstring for the column order.

    :param data: the market.
    :param indicators: names from :data:`INDICATORS`, each at most once.
    :param include_data_features: append the ``data.features`` columns (already finite) after the indicators.
    :return: a :class:`FeatureMatrix` with ``T = data.n_steps`` rows.
    :raises ValueError: unknown or duplicated indicator name (the message suggests the closest one), an
        indicator needing ``high``/``low``/``volume`` that ``data`` lacks, too few rows for an indicator's
        warm-up, or no column selected at all.
    """
    if isinstance(indicators, str):
        raise TypeError(f"indicators must be a sequence of names, got the string {indicators!r}; use ({indicators!r},)")
    indicators = tuple(indicators)
    for name in indicators:
        if name not in INDICATORS:
            raise _unknown_indicator(name)
    duplicated = sorted({name for name in indicators if indicators.count(name) > 1})
    if duplicated:
        raise ValueError(f"indicators must be unique, duplicated: {duplicated}")
    for name in indicators:
        missing = [field for field in INDICATORS[name].requires if getattr(data, field) is None]
        if missing:
            fields = ", ".join(f"MarketData.{field}" for field in missing)
            raise ValueError(f"indicator {name!r} needs {fields}, which this data lacks; pass {missing[0]}=... to MarketData")

    blocks: list[np.ndarray] = []
    names: list[str] = []
    for name in indicators:
        spec = INDICATORS[name]
        try:
            outputs = spec.compute(data)
        except ValueError as exc:
            raise ValueError(f"indicator {name!r} cannot be computed on {data!r}: {exc}") from exc
        if len(outputs) != len(spec.columns):
            raise ValueError(f"indicator {name!r} returned {len(outputs)} arrays but declares columns {spec.columns}")
        for column, output in zip(spec.columns, outputs, strict=True):
            blocks.append(np.asarray(output, dtype=np.float64))
            names.extend(f"{column}[{asset}]" for asset in data.asset_names)
    if include_data_features and data.n_features:
        blocks.append(np.asarray(data.features, dtype=np.float64))
        names.extend(data.feature_names)
    if not blocks:
        raise ValueError("no feature columns selected: pass at least one indicator or data with features")

    values = np.concatenate(blocks, axis=1)
    if values.shape != (data.n_steps, len(names)):
        raise ValueError(f"feature matrix has shape {values.shape}, expected {(data.n_steps, len(names))}")
    bad_rows = np.flatnonzero(~np.isfinite(values).all(axis=1))
    warmup = int(bad_rows[-1]) + 1 if bad_rows.size else 0
    if warmup >= data.n_steps:
        raise ValueError(f"no row of the feature matrix is finite ({data!r}); use more data or shorter indicators")
    values.setflags(write=False)
    return FeatureMatrix(values=values, names=tuple(names), warmup=warmup)
