"""Transformer and LSTM feature extractors and the policies built on them.

Importing this module (``import sb3_trading`` does) adds the policy names to the
algorithms' ``policy_aliases``, so they work as strings:
``PPO("TransformerPolicy", env)``, ``MaskablePPO("LstmPolicy", env)`` (the maskable class),
``MaskablePPO("MaskableTransformerPolicy", env)``.
"""

from sb3_contrib import MaskablePPO
from stable_baselines3 import A2C, PPO

from sb3_trading.policies.extractors import LstmExtractor, TransformerExtractor, sinusoidal_encoding
from sb3_trading.policies.policies import LstmPolicy, MaskableLstmPolicy, MaskableTransformerPolicy, TransformerPolicy

#: algorithm -> alias -> policy class added by sb3_trading
POLICY_ALIASES = {
    PPO: {"TransformerPolicy": TransformerPolicy, "LstmPolicy": LstmPolicy},
    A2C: {"TransformerPolicy": TransformerPolicy, "LstmPolicy": LstmPolicy},
    MaskablePPO: {
        "TransformerPolicy": MaskableTransformerPolicy,
        "LstmPolicy": MaskableLstmPolicy,
        "MaskableTransformerPolicy": MaskableTransformerPolicy,
        "MaskableLstmPolicy": MaskableLstmPolicy,
    },
}


def register_policy_aliases() -> None:
    """Add the sb3_trading policy names to each algorithm's ``policy_aliases`` (idempotent)."""
    for algo, aliases in POLICY_ALIASES.items():
        for name, policy_class in aliases.items():
            algo.policy_aliases.setdefault(name, policy_class)


register_policy_aliases()

__all__ = [
    "POLICY_ALIASES",
    "LstmExtractor",
    "LstmPolicy",
    "MaskableLstmPolicy",
    "MaskableTransformerPolicy",
    "TransformerExtractor",
    "TransformerPolicy",
    "register_policy_aliases",
    "sinusoidal_encoding",
]
