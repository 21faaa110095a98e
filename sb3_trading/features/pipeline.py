"""Turn a :class:`~sb3_trading.data.MarketData` into a causal feature matrix.

:func:`compute_features` evaluates indicator *specs* (names from :data:`INDICATORS`, optionally with
parameters and a higher timeframe: ``"rsi"``, ``"rsi:7"``, ``"momentum:5,20,60"``, ``"weekly:rsi:14"``; the
syntax is in :mod:`sb3_trading.features.specs`) on every asset and stacks them, optionally followed by the
data's own ``features`` columns, into a :class:`FeatureMatrix`. :func:`describe` lists every indicator.

Column order (documented contract, environments rely on it):

1. indicators in the order requested;
2. within an indicator, its output columns in registry order (``"macd"`` gives
   ``macd``, ``macd_signal``, ``macd_hist``; ``"momentum:5,20"`` gives ``momentum_5``, ``momentum_20``);
3. within an output column, the assets in ``data.asset_names`` order;
4. then, if ``include_data_features``, the ``data.features`` columns under their
   own ``data.feature_names``.

Indicator columns are named ``"<column>[<asset>]"``, e.g. ``"log_return[asset_0]"``
or ``"macd_hist[SPY]"`` for bare names, ``"rsi_7[SPY]"`` or ``"weekly_rsi_14[SPY]"`` for specs with parameters.

**Adding an indicator.** Register an :class:`Indicator` under a new key; its ``function`` receives the
``MarketData`` and the parameter values in order::

    INDICATORS["regime_prob"] = Indicator(
        columns=("regime_prob",),
        requires=(),
        function=lambda d, n_states, window: (my_filtered_probs(d.prices, n_states, window),),
        params=(Parameter("n_states", 2, 2), Parameter("window", 250, 20)),
        warmup_of=lambda n_states, window: window,
        description="filtered probability of the high-volatility regime",
    )

after which ``"regime_prob"``, ``"regime_prob:3,500"`` and ``"weekly:regime_prob"`` all work, and
:func:`describe` lists it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

import sb3_trading.features.indicators as ind
import sb3_trading.features.regimes as regimes
from sb3_trading.data.market_data import MarketData
from sb3_trading.features.specs import (
    SPEC_SYNTAX,
    Indicator,
    Parameter,
    Spec,
    forward_fill,
    group_bounds,
    parse_spec,
    resample,
    timeframe_periods_per_year,
)

if TYPE_CHECKING:
    import pandas as pd


# --------------------------------------------------------------- registry helpers
def _window(default: int, minimum: int) -> tuple[Parameter, ...]:
    return (Parameter("window", default, minimum),)


def _fast_below_slow(fast: int, slow: int, *_: Any) -> str | None:
    return None if fast < slow else f"fast must be < slow, got fast={fast}, slow={slow}"


def _high_low(d: MarketData) -> tuple[np.ndarray, np.ndarray]:
    """The data's high and low, or the close twice when it lacks them."""
    if d.high is not None and d.low is not None:
        return d.high, d.low
    return d.prices, d.prices


def _typical_price(d: MarketData) -> np.ndarray:
    """``(h + l + c) / 3`` when the data has high and low, else the close."""
    if d.high is not None and d.low is not None:
        return (d.high + d.low + d.prices) / 3.0
    return d.prices


INDICATORS: dict[str, Indicator] = {
    "return": Indicator(
        columns=("return",),
        requires=(),
        function=lambda d: (ind.simple_returns(d.prices),),
        warmup_of=lambda: 1,
        description="simple return p_t / p_{t-1} - 1",
    ),
    "log_return": Indicator(
        columns=("log_return",),
        requires=(),
        function=lambda d: (ind.log_returns(d.prices),),
        warmup_of=lambda: 1,
        description="log return ln(p_t / p_{t-1})",
    ),
    "volatility": Indicator(
        columns=("volatility",),
        requires=(),
        function=lambda d, window: (ind.rolling_volatility(d.prices, window=window),),
        params=_window(20, 2),
        warmup_of=lambda window: window,
        description="sample std (ddof=1) of the last `window` log returns, per bar (not annualised)",
    ),
    "rsi": Indicator(
        columns=("rsi",),
        requires=(),
        function=lambda d, window: (ind.rsi(d.prices, window=window),),
        params=_window(14, 1),
        warmup_of=lambda window: window,
        description="Wilder RSI over `window` bars rescaled to [-1, 1] ((RSI - 50) / 50)",
    ),
    "macd": Indicator(
        columns=("macd", "macd_signal", "macd_hist"),
        requires=(),
        function=lambda d, fast, slow, signal: ind.macd(d.prices, fast=fast, slow=slow, signal=signal),
        params=(Parameter("fast", 12, 1), Parameter("slow", 26, 2), Parameter("signal", 9, 1)),
        warmup_of=lambda fast, slow, signal: slow + signal - 2,
        check=_fast_below_slow,
        description="MACD(fast, slow, signal) line, signal and histogram as fractions of the price",
    ),
    "bollinger": Indicator(
        columns=("bollinger_pct_b",),
        requires=(),
        function=lambda d, window, num_std: (ind.bollinger_percent_b(d.prices, window=window, num_std=float(num_std)),),
        params=(Parameter("window", 20, 2), Parameter("num_std", 2.0, 0.0, integer=False, strict=True)),
        warmup_of=lambda window, num_std: window - 1,
        description="Bollinger %b (window bars, num_std population std): 0 lower band, 1 upper band",
    ),
    "atr": Indicator(
        columns=("atr_pct",),
        requires=("high", "low"),
        function=lambda d, window: (ind.average_true_range(d.high, d.low, d.prices, window=window),),
        params=_window(14, 1),
        warmup_of=lambda window: window,
        description="Wilder ATR over `window` bars as a fraction of the close",
    ),
    "volume_zscore": Indicator(
        columns=("volume_zscore",),
        requires=("volume",),
        function=lambda d, window: (ind.volume_zscore(d.volume, window=window),),
        params=_window(20, 2),
        warmup_of=lambda window: window - 1,
        description="z-score (ddof=1) of volume over the last `window` bars",
    ),
    "momentum": Indicator(
        columns=("momentum",),
        requires=(),
        function=lambda d, *lookbacks: tuple(ind.momentum(d.prices, lookback=k) for k in lookbacks),
        params=(Parameter("lookback", 20, 1),),
        warmup_of=lambda *lookbacks: max(lookbacks),
        variadic=True,
        description="simple return over each lookback k, p_t / p_{t-k} - 1 (one column per k)",
    ),
    "sma_ratio": Indicator(
        columns=("sma_ratio",),
        requires=(),
        function=lambda d, fast, slow: (ind.sma_ratio(d.prices, fast=fast, slow=slow),),
        params=(Parameter("fast", 5, 1), Parameter("slow", 20, 2)),
        warmup_of=lambda fast, slow: slow - 1,
        check=_fast_below_slow,
        description="SMA_fast / SMA_slow - 1 of the close",
    ),
    "ema_ratio": Indicator(
        columns=("ema_ratio",),
        requires=(),
        function=lambda d, fast, slow: (ind.ema_ratio(d.prices, fast=fast, slow=slow),),
        params=(Parameter("fast", 12, 1), Parameter("slow", 26, 2)),
        warmup_of=lambda fast, slow: slow - 1,
        check=_fast_below_slow,
        description="EMA_fast / EMA_slow - 1 of the close (span EMAs seeded with the first price)",
    ),
    "zscore": Indicator(
        columns=("zscore",),
        requires=(),
        function=lambda d, window: (ind.price_zscore(d.prices, window=window),),
        params=_window(20, 2),
        warmup_of=lambda window: window - 1,
        description="z-score (ddof=1) of the close over the last `window` bars",
    ),
    "stochastic": Indicator(
        columns=("stoch_k",),
        requires=(),
        optional=("high", "low"),
        function=lambda d, window: (ind.stochastic_k(*_high_low(d), d.prices, window=window),),
        params=_window(14, 1),
        warmup_of=lambda window: window - 1,
        description="stochastic %K over `window` bars rescaled to [-1, 1] (2 %K / 100 - 1); close if no high/low",
    ),
    "williams_r": Indicator(
        columns=("williams_r",),
        requires=(),
        optional=("high", "low"),
        function=lambda d, window: (ind.williams_r(*_high_low(d), d.prices, window=window),),
        params=_window(14, 1),
        warmup_of=lambda window: window - 1,
        description="Williams %R over `window` bars as a fraction in [-1, 0]; close if no high/low",
    ),
    "obv": Indicator(
        columns=("obv_flow",),
        requires=("volume",),
        function=lambda d, window: (ind.obv_flow(d.prices, d.volume, window=window),),
        params=_window(20, 1),
        warmup_of=lambda window: window,
        description="OBV change over `window` bars / volume traded in them, in [-1, 1]",
    ),
    "vwap_ratio": Indicator(
        columns=("vwap_ratio",),
        requires=("volume",),
        optional=("high", "low"),
        function=lambda d, window: (ind.vwap_ratio(_typical_price(d), d.prices, d.volume, window=window),),
        params=_window(20, 1),
        warmup_of=lambda window: window - 1,
        description="close / rolling VWAP - 1 over `window` bars (typical price (h+l+c)/3 if high/low, else close)",
    ),
    "range": Indicator(
        columns=("range_pct",),
        requires=("high", "low"),
        function=lambda d, window: (ind.range_pct(d.high, d.low, d.prices, window=window),),
        params=_window(14, 1),
        warmup_of=lambda window: window - 1,
        description="mean of (high - low) / close over the last `window` bars",
    ),
    "skew": Indicator(
        columns=("skew",),
        requires=(),
        function=lambda d, window: (ind.rolling_skew(d.prices, window=window),),
        params=_window(30, 3),
        warmup_of=lambda window: window,
        description="bias-corrected skewness of the last `window` log returns (pandas rolling .skew())",
    ),
    "kurtosis": Indicator(
        columns=("kurtosis",),
        requires=(),
        function=lambda d, window: (ind.rolling_kurtosis(d.prices, window=window),),
        params=_window(30, 4),
        warmup_of=lambda window: window,
        description="bias-corrected excess kurtosis of the last `window` log returns (pandas rolling .kurt())",
    ),
    "autocorr": Indicator(
        columns=("autocorr",),
        requires=(),
        function=lambda d, window: (ind.rolling_autocorr(d.prices, window=window),),
        params=_window(20, 3),
        warmup_of=lambda window: window + 1,
        description="lag-1 autocorrelation of log returns over `window` pairs (r_s, r_{s-1})",
    ),
    "volume_ratio": Indicator(
        columns=("volume_ratio",),
        requires=("volume",),
        function=lambda d, window: (ind.volume_ratio(d.volume, window=window),),
        params=_window(20, 2),
        warmup_of=lambda window: window - 1,
        description="volume / its mean over the last `window` bars",
    ),
    # ------------------------------------------------------------ causal regimes (sb3_trading.features.regimes)
    "regime_prob": Indicator(
        columns=("regime_prob_0", "regime_prob_1"),
        requires=(),
        function=lambda d, n_states, fit, refit, states: regimes.hmm_regime_probabilities(
            d.prices, n_states=n_states, fit=fit, refit=refit or None, params=states
        ),
        fit=lambda d, n_states, fit, refit: regimes.fit_hmm_params(d.prices, n_states=n_states, fit=fit),
        params=(Parameter("n_states", 2, 2), Parameter("fit", 250, 5), Parameter("refit", 0, 0)),
        warmup_of=lambda n_states, fit, refit: fit - 1,
        columns_of=lambda n_states, fit, refit: tuple(f"regime_prob_{k}" for k in range(n_states)),
        description="filtered (forward-only) Gaussian-HMM state probabilities of the log returns, one column per "
        "state, state 0 the calmest; fitted on the first `fit` bars of the training data (a held-out env reuses "
        "that fit), refitted every `refit` bars on an expanding window (0: never); needs hmmlearn",
    ),
    "vol_regime": Indicator(
        columns=("vol_regime",),
        requires=(),
        function=lambda d, window: (regimes.volatility_regime(d.prices, window=window),),
        params=_window(60, 2),
        warmup_of=lambda window: 2 * window - 1,
        description="tercile 0/1/2 (low/mid/high) of the `window`-bar volatility within its own expanding history",
    ),
    "trend_regime": Indicator(
        columns=("trend_regime",),
        requires=(),
        function=lambda d, window: (regimes.trend_regime(d.prices, window=window),),
        params=_window(60, 1),
        warmup_of=lambda window: window,
        description="sign -1/0/1 of the `window`-bar log return",
    ),
}
"""Registry of indicator names accepted by :func:`compute_features` (see the module docstring to add one)."""

FeatureFits = dict[str, dict[str, Any]]
"""Fitted indicator state, ``{canonical spec: {asset name: state}}`` (``{"regime_prob:2,250,0": {"SPY": {"means":
[...], "variances": [...], "transmat": [[...]]}}}``), JSON-ready. An env fits it on its own data
(``env.feature_fits``); the recipe passes the training env's to the held-out envs (``feature_fits=``) and writes it
to the run folder (``feature_fits.json``), as it does the normaliser, so held-out bars use the training fit."""

REGIME_INDICATORS: tuple[str, ...] = ("regime_prob", "trend_regime", "vol_regime")
"""The regime entries of :data:`INDICATORS` (:mod:`sb3_trading.features.regimes`): their warm-up is long (a
volatility history, an HMM's training slice) and ``regime_prob`` needs the ``hmm`` extra."""

DEFAULT_INDICATORS: tuple[str, ...] = ("log_return", "volatility", "rsi", "macd", "bollinger")
"""Indicators used by default; they need close prices only."""


@dataclass(frozen=True, eq=False)
class FeatureMatrix:
    """Causal features aligned with the bars of a :class:`MarketData`.

    :param values: float64 array ``(T, F)``; row ``t`` uses data up to bar ``t`` only.
    :param names: ``F`` column names, e.g. ``"log_return[asset_0]"``, ``"macd_hist[asset_1]"``.
    :param warmup: number of leading rows that contain a NaN; rows ``>= warmup`` are all finite.
    :param fits: the fitted state of every indicator with one (:data:`FeatureFits`): those given to
        :func:`compute_features` plus those it fitted on this data.
    """

    values: np.ndarray
    names: tuple[str, ...]
    warmup: int
    fits: FeatureFits = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        """Number of columns ``F``."""
        return int(self.values.shape[1])

    def __len__(self) -> int:
        return int(self.values.shape[0])


def parse_specs(indicators: Sequence[str]) -> tuple[Spec, ...]:
    """Parse and check a list of indicator specs against :data:`INDICATORS` (not yet against any data).

    :param indicators: specs such as ``("rsi", "rsi:7", "momentum:5,20", "weekly:rsi:14")``.
    :return: one :class:`~sb3_trading.features.specs.Spec` per entry, in order.
    :raises TypeError: ``indicators`` is a single string, or an entry is not a string.
    :raises ValueError: a bad spec (see :func:`~sb3_trading.features.specs.parse_spec`), two specs computing the
        same thing (``"rsi"`` and ``"rsi:14"``) or giving a column of the same name.
    """
    if isinstance(indicators, str):
        raise TypeError(f"indicators must be a sequence of names, got the string {indicators!r}; use ({indicators!r},)")
    specs = tuple(parse_spec(text, INDICATORS) for text in indicators)
    keys = [spec.key for spec in specs]
    duplicated = sorted({spec.text for spec in specs if keys.count(spec.key) > 1})
    if duplicated:
        raise ValueError(f"indicators must be unique, duplicated: {duplicated} (a bare name means its default parameters)")
    stems = [stem for spec in specs for stem in spec.column_stems(INDICATORS[spec.name])]
    clashing = sorted({stem for stem in stems if stems.count(stem) > 1})
    if clashing:
        raise ValueError(f"indicators must be unique, these columns are duplicated: {clashing}; drop the repeated values")
    return specs


def check_feature_fits(fits: Any, name: str = "feature_fits") -> FeatureFits:
    """A copy of ``fits`` checked to be :data:`FeatureFits` (``None`` gives ``{}``).

    :raises TypeError: not a mapping of spec text to a mapping of asset name to state.
    """
    if fits is None:
        return {}
    if not isinstance(fits, Mapping) or not all(
        isinstance(key, str) and isinstance(value, Mapping) and all(isinstance(asset, str) for asset in value)
        for key, value in fits.items()
    ):
        raise TypeError(
            f"{name} must map a spec (e.g. 'regime_prob:2,250,0') to {{asset name: fitted state}}, as env.feature_fits "
            f"or a run folder's feature_fits.json holds; got {fits!r:.200}"
        )
    return {key: dict(value) for key, value in fits.items()}


def _evaluate(spec: Spec, data: MarketData, fits: FeatureFits) -> tuple[np.ndarray, ...]:
    """The ``(T, N)`` output arrays of one parsed spec on ``data`` (higher timeframes forward-filled).

    An indicator with a ``fit`` reuses the states of ``fits[spec.canonical]`` for the assets it has and fits the
    others on the leading rows of ``data`` (their rows before the fit's end are NaN); ``fits`` is updated in place.
    """
    indicator = INDICATORS[spec.name]
    warmup = int(indicator.warmup_of(*spec.params))
    fix = "use shorter windows (smaller parameters) or more data"
    if spec.timeframe is None:
        source, known = data, None
        unit = "rows"
    else:
        try:
            starts, ends, known = group_bounds(data, spec.timeframe)
        except ValueError as exc:
            raise ValueError(f"indicator {spec.text!r}: {exc}") from exc
        unit = f"complete {spec.timeframe.label} bars"
        if len(starts) == 0:
            raise ValueError(
                f"indicator {spec.text!r} cannot be computed on {data!r}: the data holds no complete "
                f"{spec.timeframe.label} bar; use a shorter timeframe or more data"
            )
        source = resample(data, starts, ends, timeframe_periods_per_year(data, spec.timeframe))
    assets = list(source.asset_names)
    given = fits.get(spec.canonical, {}) if indicator.fit is not None else {}
    to_fit = [asset for asset in assets if asset not in given]
    if to_fit and warmup >= source.n_steps:
        raise ValueError(
            f"indicator {spec.text!r} cannot be computed on {data!r}: it needs more than {warmup} {unit} of warm-up but "
            f"the data has {source.n_steps}; {fix}"
        )
    try:
        if indicator.fit is None:
            outputs = indicator.compute(source, *spec.params)
        else:
            states = dict(given)
            if to_fit:
                subset = source if len(to_fit) == len(assets) else source.select_assets(to_fit)
                states.update(zip(to_fit, indicator.fit(subset, *spec.params), strict=True))
            outputs = indicator.function(source, *spec.params, states=[states[asset] for asset in assets])
            fits[spec.canonical] = {**fits.get(spec.canonical, {}), **states}
    except ValueError as exc:
        raise ValueError(f"indicator {spec.text!r} cannot be computed on {data!r}: {exc}") from exc
    outputs = tuple(np.array(output, dtype=np.float64) for output in outputs)
    if indicator.fit is not None and to_fit:
        # rows before the end of a fit on this data's own leading rows used parameters from later rows
        fitted_here = np.array([asset in to_fit for asset in assets])
        for output in outputs:
            output[:warmup, fitted_here] = np.nan
    if known is not None:
        outputs = tuple(forward_fill(output, known, data.n_steps) for output in outputs)
    return outputs


def compute_features(
    data: MarketData,
    indicators: Sequence[str] = DEFAULT_INDICATORS,
    include_data_features: bool = True,
    fits: FeatureFits | None = None,
) -> FeatureMatrix:
    """Compute indicator columns for every asset, then append ``data.features``.

    See the module docstring for the column order and :mod:`sb3_trading.features.specs` for the spec syntax.

    :param data: the market.
    :param indicators: indicator specs (``"rsi"``, ``"rsi:7"``, ``"momentum:5,20,60"``, ``"weekly:rsi:14"``,
        ``"tf5:macd"``), each at most once.
    :param include_data_features: append the ``data.features`` columns (already finite) after the indicators.
    :param fits: fitted indicator state from training data (:data:`FeatureFits`, e.g. the training env's
        ``feature_fits``): an indicator with fitted state (``regime_prob``) uses it for the assets it covers
        instead of fitting on the leading rows of ``data``. Not modified.
    :return: a :class:`FeatureMatrix` with ``T = data.n_steps`` rows; its ``fits`` are ``fits`` plus what was fitted.
    :raises ValueError: unknown indicator (the message suggests the closest one) or bad parameters, a duplicated
        spec, an indicator needing ``high``/``low``/``volume`` (or a calendar timeframe needing timestamps) that
        ``data`` lacks, too few rows for an indicator's warm-up, or no column selected at all.
    """
    specs = parse_specs(indicators)
    fitted = check_feature_fits(fits, "fits")
    for spec in specs:
        missing = [name for name in INDICATORS[spec.name].requires if getattr(data, name) is None]
        if missing:
            fields = ", ".join(f"MarketData.{name}" for name in missing)
            raise ValueError(
                f"indicator {spec.text!r} needs {fields}, which this data lacks; pass {missing[0]}=... to MarketData"
            )

    blocks: list[np.ndarray] = []
    names: list[str] = []
    for spec in specs:
        indicator = INDICATORS[spec.name]
        columns = spec.column_stems(indicator)
        outputs = _evaluate(spec, data, fitted)
        if len(outputs) != len(columns):
            raise ValueError(f"indicator {spec.text!r} returned {len(outputs)} arrays but declares columns {columns}")
        for column, output in zip(columns, outputs, strict=True):
            blocks.append(output)
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
    return FeatureMatrix(values=values, names=tuple(names), warmup=warmup, fits=fitted)


def regime_label_table(
    data: MarketData, regime: str, fits: FeatureFits | None = None
) -> tuple[np.ndarray, tuple[float, ...], FeatureFits]:
    """Causal regime labels of every bar and asset of ``data``, from one regime indicator spec.

    The spec is computed with :func:`~sb3_trading.features.pipeline.compute_features` on each path of ``data``
    (no statistic crosses a path boundary), so the label at bar ``t`` uses bars ``<= t`` of its path only:
    ``vol_regime`` and ``trend_regime`` are labels already; ``regime_prob`` gives the most likely filtered HMM
    state (:func:`~sb3_trading.features.regimes.regime_labels`), with the HMM of ``fits`` (the training data's)
    where it has one, else fitted on the first path's leading rows and reused on the other paths.

    :param data: the market.
    :param regime: a spec of :data:`~sb3_trading.features.pipeline.REGIME_INDICATORS`, e.g. ``"vol_regime:60"``,
        ``"regime_prob:2,250"``, ``"weekly:trend_regime:4"``.
    :param fits: fitted indicator state to reuse (:data:`FeatureFits`); not modified.
    :return: ``(labels, possible, fits)``: float64 ``(T, N)`` labels (NaN during the warm-up), the sorted labels the
        spec can take, and ``fits`` plus what was fitted here.
    :raises ValueError: a spec that is not a regime indicator (listing those that are), or too little data.
    """
    spec = parse_specs((regime,))[0]
    if spec.name not in REGIME_INDICATORS:
        raise ValueError(
            f"regime {regime!r} is not a regime indicator; use one of {list(REGIME_INDICATORS)} with its parameters, "
            "e.g. 'vol_regime:60', 'trend_regime:20' or 'regime_prob:2,250'"
        )
    n_assets = int(data.n_assets)
    blocks = []
    fitted = check_feature_fits(fits, "fits")
    for path in data.paths() if data.n_paths > 1 else [data]:
        matrix = compute_features(path, (regime,), include_data_features=False, fits=fitted)
        values, fitted = matrix.values, matrix.fits
        columns = values.reshape(path.n_steps, -1, n_assets).transpose(1, 0, 2)  # (C, T, N)
        if spec.name == "regime_prob":
            labels = regimes.regime_labels(columns).astype(np.float64)
            labels[labels == regimes.NO_REGIME] = np.nan
        else:
            labels = columns[0]
        blocks.append(labels)
    if spec.name == "regime_prob":
        possible: tuple[float, ...] = tuple(float(k) for k in range(int(spec.params[0])))
    elif spec.name == "vol_regime":
        possible = (0.0, 1.0, 2.0)
    else:
        possible = (-1.0, 0.0, 1.0)
    return np.concatenate(blocks) if len(blocks) > 1 else blocks[0], possible, fitted


def describe(as_text: bool = False) -> pd.DataFrame | str:
    """Every registered indicator: name, parameters with defaults, output columns, fields, warm-up, description.

    :param as_text: return a readable fixed-width table (``str``) instead of a DataFrame.
    :return: a ``pandas.DataFrame`` with one row per name of :data:`INDICATORS` (sorted) and the columns
        ``name``, ``params`` (``"fast=12, slow=26, signal=9"``), ``example`` (a spec with every parameter),
        ``columns`` (bare name, then with parameters), ``requires`` (fields besides the close; optional ones
        in brackets), ``warmup`` (leading NaN rows at the defaults) and ``warmup_rule`` and ``description``;
        or that table as text (with the spec syntax) when ``as_text``.
    """
    import pandas as pd  # lazily: pandas stays out of the env hot paths

    rows = []
    for name in sorted(INDICATORS):
        indicator = INDICATORS[name]
        defaults = indicator.defaults
        example = (
            name if not defaults else f"{name}:{','.join(f'{v:g}' if isinstance(v, float) else str(v) for v in defaults)}"
        )
        bare_columns = indicator.column_stems(defaults, bare=True)
        full_columns = indicator.column_stems(defaults, bare=False)
        columns = ", ".join(bare_columns)
        if full_columns != bare_columns:
            columns += f" ({example}: {', '.join(full_columns)})"
        fields = ["close", *indicator.requires, *(f"[{name}]" for name in indicator.optional)]
        rule = _warmup_rule(indicator)
        rows.append(
            {
                "name": name,
                "params": indicator.signature() or "-",
                "example": example,
                "columns": columns,
                "requires": ", ".join(fields),
                "warmup": indicator.warmup,
                "warmup_rule": rule,
                "description": indicator.description,
            }
        )
    frame = pd.DataFrame(
        rows, columns=["name", "params", "example", "columns", "requires", "warmup", "warmup_rule", "description"]
    )
    if not as_text:
        return frame
    header = (
        f"Indicator specs: {SPEC_SYNTAX}.\nBare names use the defaults; windows of a timeframe spec count its bars; "
        "[field] is used when present.\n"
    )
    return header + frame.to_string(index=False)


def _warmup_rule(indicator: Indicator) -> str:
    """The warm-up as a formula of the parameters, found by probing ``warmup_of`` (e.g. ``"slow + signal - 2"``)."""
    if not indicator.params:
        return str(indicator.warmup)
    names = [p.name for p in indicator.params]
    base = [100 + 17 * k for k in range(len(names))]
    constant = int(indicator.warmup_of(*base))
    terms = []
    for k, pname in enumerate(names):
        probe = list(base)
        probe[k] += 1
        slope = indicator.warmup_of(*probe) - indicator.warmup_of(*base)
        if slope:
            terms.append(pname if slope == 1 else f"{slope} {pname}")
            constant -= slope * base[k]
    if indicator.variadic:
        terms = [f"max({names[0]})"]
    text = " + ".join(terms) or "0"
    if constant:
        text += f" {'+' if constant > 0 else '-'} {abs(constant)}"
    return text
