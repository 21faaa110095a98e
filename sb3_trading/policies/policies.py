"""Actor-critic policies with the transformer or LSTM extractor as their default feature extractor.

Everything else (``net_arch``, ``activation_fn``, ``share_features_extractor``, the extractor's own
arguments through ``features_extractor_kwargs``) is configured with ``policy_kwargs`` as usual.
"""

from __future__ import annotations

from typing import Any

from sb3_contrib.common.maskable.policies import MaskableMultiInputActorCriticPolicy
from stable_baselines3.common.policies import MultiInputActorCriticPolicy
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

from sb3_trading.policies.extractors import LstmExtractor, TransformerExtractor


class TransformerPolicy(MultiInputActorCriticPolicy):
    """PPO/A2C policy reading the market window with a :class:`TransformerExtractor`."""

    def __init__(
        self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = TransformerExtractor, **kwargs: Any
    ) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class LstmPolicy(MultiInputActorCriticPolicy):
    """PPO/A2C policy reading the market window with an :class:`LstmExtractor`."""

    def __init__(
        self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = LstmExtractor, **kwargs: Any
    ) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class MaskableTransformerPolicy(MaskableMultiInputActorCriticPolicy):
    """MaskablePPO policy reading the market window with a :class:`TransformerExtractor`."""

    def __init__(
        self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = TransformerExtractor, **kwargs: Any
    ) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class MaskableLstmPolicy(MaskableMultiInputActorCriticPolicy):
    """MaskablePPO policy reading the market window with an :class:`LstmExtractor`."""

    def __init__(
        self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = LstmExtractor, **kwargs: Any
    ) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)
