"""Algorithms by name (rl-zoo3's names for SB3's and sb3-contrib's), sb3_trading's QuantilePPO and its risk measures."""

from __future__ import annotations

from sb3_contrib import MaskablePPO, RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.base_class import BaseAlgorithm

from sb3_trading.algos.quantile_ppo import MaskableQuantilePPO, QuantilePPO
from sb3_trading.algos.risk import RISK_MODES, DistortionRisk
from sb3_trading.common.validation import suggest

#: rl-zoo3 name -> algorithm class
ALGOS: dict[str, type[BaseAlgorithm]] = {
    "ppo": PPO,
    "ppo_mask": MaskablePPO,
    "ppo_lstm": RecurrentPPO,
    "qppo": QuantilePPO,
    "qppo_mask": MaskableQuantilePPO,
}
#: other spellings accepted on the command line
ALGO_ALIASES = {
    "recurrent_ppo": "ppo_lstm",
    "maskable_ppo": "ppo_mask",
    "quantile_ppo": "qppo",
    "maskable_quantile_ppo": "qppo_mask",
}


def get_algo(name: str) -> tuple[str, type[BaseAlgorithm]]:
    """Resolve an algorithm name to ``(zoo_name, class)``; unknown names raise ``ValueError`` with a suggestion."""
    key = ALGO_ALIASES.get(name.lower(), name.lower())
    if key in ALGOS:
        return key, ALGOS[key]
    hint = suggest(key, [*ALGOS, *ALGO_ALIASES])
    raise ValueError(f"unknown algorithm {name!r}{hint} Known: {sorted(ALGOS)} (aliases {sorted(ALGO_ALIASES)})")


__all__ = [
    "ALGOS",
    "ALGO_ALIASES",
    "RISK_MODES",
    "DistortionRisk",
    "MaskableQuantilePPO",
    "QuantilePPO",
    "get_algo",
]
