"""QuantilePPO and MaskableQuantilePPO: PPO with a quantile critic and optional CVaR-aware advantages."""

from sb3_trading.algos.quantile_ppo.policies import (
    MaskableQuantileActorCriticPolicy,
    MaskableQuantileMultiInputActorCriticPolicy,
    QuantileActorCriticPolicy,
    QuantileMultiInputActorCriticPolicy,
    QuantileValueHead,
    quantile_fractions,
)
from sb3_trading.algos.quantile_ppo.quantile_ppo import MaskableQuantilePPO, QuantilePPO

__all__ = [
    "MaskableQuantileActorCriticPolicy",
    "MaskableQuantileMultiInputActorCriticPolicy",
    "MaskableQuantilePPO",
    "QuantileActorCriticPolicy",
    "QuantileMultiInputActorCriticPolicy",
    "QuantilePPO",
    "QuantileValueHead",
    "quantile_fractions",
]
