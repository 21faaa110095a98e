"""Gymnasium trading environments built on the shared data, features and accounting core."""

from sb3_trading.envs.base import INFO_KEYS, MARKET_KEY, PORTFOLIO_KEY, TradingEnv
from sb3_trading.envs.leveraged_pair import LeveragedPairEnv, leveraged_pair_targets
from sb3_trading.envs.market_impact import MarketImpactEnv
from sb3_trading.envs.masked_trading import MaskedTradingEnv
from sb3_trading.envs.multi_asset import MultiAssetEnv, multi_asset_targets
from sb3_trading.envs.registration import ENV_ENTRY_POINTS, check_env_id, register_envs
from sb3_trading.envs.single_asset import SingleAssetEnv
from sb3_trading.envs.yield_allocation import YieldAllocationEnv, project_capped_simplex, yield_weights

__all__ = [
    "ENV_ENTRY_POINTS",
    "INFO_KEYS",
    "MARKET_KEY",
    "PORTFOLIO_KEY",
    "LeveragedPairEnv",
    "MarketImpactEnv",
    "MaskedTradingEnv",
    "MultiAssetEnv",
    "SingleAssetEnv",
    "TradingEnv",
    "YieldAllocationEnv",
    "check_env_id",
    "leveraged_pair_targets",
    "multi_asset_targets",
    "project_capped_simplex",
    "register_envs",
    "yield_weights",
]
