"""Causal features: technical indicators, the feature pipeline, causal (default) or fitted normalisation, windows."""

from sb3_trading.features.indicators import (
    average_true_range,
    bollinger_percent_b,
    log_returns,
    macd,
    rolling_volatility,
    rsi,
    simple_returns,
    volume_zscore,
)
from sb3_trading.features.normalizer import (
    DEFAULT_MIN_PERIODS,
    DEFAULT_NORMALIZER,
    DEFAULT_ROLLING_WINDOW,
    NORMALIZER_NAMES,
    CausalNormalizer,
    FeatureNormalizer,
    NormalizerArg,
    make_normalizer,
    normalizer_from_dict,
)
from sb3_trading.features.pipeline import DEFAULT_INDICATORS, INDICATORS, FeatureMatrix, Indicator, compute_features
from sb3_trading.features.windows import gather_windows

__all__ = [
    "DEFAULT_INDICATORS",
    "DEFAULT_MIN_PERIODS",
    "DEFAULT_NORMALIZER",
    "DEFAULT_ROLLING_WINDOW",
    "INDICATORS",
    "NORMALIZER_NAMES",
    "CausalNormalizer",
    "FeatureMatrix",
    "FeatureNormalizer",
    "Indicator",
    "NormalizerArg",
    "average_true_range",
    "bollinger_percent_b",
    "compute_features",
    "gather_windows",
    "log_returns",
    "macd",
    "make_normalizer",
    "normalizer_from_dict",
    "rolling_volatility",
    "rsi",
    "simple_returns",
    "volume_zscore",
]
