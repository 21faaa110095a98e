"""Gymnasium trading environments built on the shared data, features and accounting core."""

from sb3_trading.envs.base import INFO_KEYS, MARKET_KEY, PORTFOLIO_KEY, TradingEnv
from sb3_trading.envs.multi_asset import MultiAssetEnv, multi_asset_targets
from sb3_trading.envs.registration import ENV_ENTRY_POINTS, check_env_id, register_envs

__all__ = [
    "ENV_ENTRY_POINTS",
    "INFO_KEYS",
    "MARKET_KEY",
    "PORTFOLIO_KEY",
    "MultiAssetEnv",
    "TradingEnv",
    "check_env_id",
    "multi_asset_targets",
    "register_envs",
]
