"""QuantilePPO and MaskableQuantilePPO: PPO with a quantile critic and risk-sensitive (CVaR, Wang...) advantages."""

from sb3_trading.algos.quantile_ppo.policies import (
    MaskableQuantileActorCriticPolicy,
    MaskableQuantileMultiInputActorCriticPolicy,
    QuantileActorCriticPolicy,
    QuantileMultiInputActorCriticPolicy,
    QuantileValueHead,
)
from sb3_trading.algos.quantile_ppo.quantile_ppo import MaskableQuantilePPO, QuantilePPO
from sb3_trading.algos.risk import quantile_fractions

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
