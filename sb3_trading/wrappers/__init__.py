"""Reward wrappers computed from the standard ``info`` keys of every ``sb3_trading`` env."""

from sb3_trading.wrappers.rewards import (
    COMPONENTS_KEY,
    RAW_REWARD_KEY,
    REWARD_WRAPPERS,
    ActionSmoothnessPenalty,
    CVaRPenalty,
    DifferentialSharpeReward,
    DrawdownPenalty,
    LogReturnReward,
    RewardScale,
    TradingRewardWrapper,
    TurnoverPenalty,
    parse_reward_spec,
    wrap_reward,
)

__all__ = [
    "COMPONENTS_KEY",
    "RAW_REWARD_KEY",
    "REWARD_WRAPPERS",
    "ActionSmoothnessPenalty",
    "CVaRPenalty",
    "DifferentialSharpeReward",
    "DrawdownPenalty",
    "LogReturnReward",
    "RewardScale",
    "TradingRewardWrapper",
    "TurnoverPenalty",
    "parse_reward_spec",
    "wrap_reward",
]
