"""The table of registered environment IDs and the (idempotent) registration."""

from __future__ import annotations

import gymnasium as gym

from sb3_trading.common.validation import suggest

NAMESPACE = "sb3_trading"

#: env ID -> lazy ``"module:Class"`` entry point
ENV_ENTRY_POINTS: dict[str, str] = {
    f"{NAMESPACE}/MultiAsset-v0": "sb3_trading.envs.multi_asset:MultiAssetEnv",
    f"{NAMESPACE}/LeveragedPair-v0": "sb3_trading.envs.leveraged_pair:LeveragedPairEnv",
    f"{NAMESPACE}/MaskedTrading-v0": "sb3_trading.envs.masked_trading:MaskedTradingEnv",
    f"{NAMESPACE}/SingleAsset-v0": "sb3_trading.envs.single_asset:SingleAssetEnv",
    f"{NAMESPACE}/YieldAllocation-v0": "sb3_trading.envs.yield_allocation:YieldAllocationEnv",
    f"{NAMESPACE}/MarketImpact-v0": "sb3_trading.envs.market_impact:MarketImpactEnv",
}


def register_envs() -> None:
    """Register every ``sb3_trading/...`` ID with gymnasium; calling it again is a no-op."""
    for env_id, entry_point in ENV_ENTRY_POINTS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point)


def check_env_id(env_id: str) -> str:
    """Return ``env_id`` if gymnasium knows it, else raise ``ValueError`` suggesting the closest ID.

    :param env_id: a registered ID such as ``"sb3_trading/MultiAsset-v0"``.
    """
    if not isinstance(env_id, str):
        raise TypeError(f"env ID must be a string, got {type(env_id).__name__}")
    if env_id in gym.registry:
        return env_id
    known = list(ENV_ENTRY_POINTS) + [key for key in gym.registry if key not in ENV_ENTRY_POINTS]
    raise ValueError(f"unknown env ID {env_id!r}{suggest(env_id, known)} sb3_trading envs: {sorted(ENV_ENTRY_POINTS)}")
