"""Causal features: technical indicators, the feature pipeline, normalisation and look-back windows."""

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
from sb3_trading.features.normalizer import FeatureNormalizer
from sb3_trading.features.pipeline import DEFAULT_INDICATORS, INDICATORS, FeatureMatrix, Indicator, compute_features
from sb3_trading.features.windows import gather_windows

__all__ = [
    "DEFAULT_INDICATORS",
    "INDICATORS",
    "FeatureMatrix",
    "FeatureNormalizer",
    "Indicator",
    "average_true_range",
    "bollinger_percent_b",
    "compute_features",
    "gather_windows",
    "log_returns",
    "macd",
    "rolling_volatility",
    "rsi",
    "simple_returns",
    "volume_zscore",
]
