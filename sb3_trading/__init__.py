"""sb3_trading: Stable-Baselines3 extensions for reinforcement-learning trading.

Importing the package registers the ``sb3_trading/...`` Gymnasium env IDs and adds the
policy names (``"TransformerPolicy"``, ``"LstmPolicy"``...) to SB3's policy aliases.
"""

from sb3_trading.algos import MaskableQuantilePPO, QuantilePPO
from sb3_trading.data import MarketData
from sb3_trading.envs.registration import ENV_ENTRY_POINTS, register_envs
from sb3_trading.policies import (
    LstmExtractor,
    LstmPolicy,
    MaskableLstmPolicy,
    MaskableTransformerPolicy,
    TransformerExtractor,
    TransformerPolicy,
)
from sb3_trading.sim import CostModel, Portfolio
from sb3_trading.version import __version__

register_envs()

__all__ = [
    "ENV_ENTRY_POINTS",
    "CostModel",
    "LstmExtractor",
    "LstmPolicy",
    "MarketData",
    "MaskableLstmPolicy",
    "MaskableQuantilePPO",
    "MaskableTransformerPolicy",
    "Portfolio",
    "QuantilePPO",
    "TransformerExtractor",
    "TransformerPolicy",
    "__version__",
    "register_envs",
]
