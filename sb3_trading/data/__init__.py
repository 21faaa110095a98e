"""Market data: validated arrays, loaders, date parsing, quality checks and seeded synthetic markets."""

from sb3_trading.data.dates import ParsedDates, parse_dates
from sb3_trading.data.loaders import from_dataframe, load_csv, load_feather, load_market_data, load_parquet
from sb3_trading.data.market_data import MarketData, stack_paths
from sb3_trading.data.quality import SuspectDataWarning, check_data_quality
from sb3_trading.data.resample import bootstrap_market, bootstrap_paths, bootstrap_rows
from sb3_trading.data.synthetic import (
    derive_leveraged_pair,
    make_gbm_market,
    make_leveraged_pair_market,
    make_ou_market,
    make_regime_market,
    regime_expected_returns,
    regime_signal_accuracy,
    signal_column,
)
from sb3_trading.data.yield_market import YieldDrivers, make_yield_market, with_peg_deviation

__all__ = [
    "MarketData",
    "ParsedDates",
    "SuspectDataWarning",
    "YieldDrivers",
    "bootstrap_market",
    "bootstrap_paths",
    "bootstrap_rows",
    "check_data_quality",
    "derive_leveraged_pair",
    "make_leveraged_pair_market",
    "from_dataframe",
    "load_csv",
    "load_feather",
    "load_market_data",
    "load_parquet",
    "make_gbm_market",
    "make_ou_market",
    "make_regime_market",
    "make_yield_market",
    "parse_dates",
    "regime_expected_returns",
    "regime_signal_accuracy",
    "signal_column",
    "stack_paths",
    "with_peg_deviation",
]
