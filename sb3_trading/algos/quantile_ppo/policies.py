"""Actor-critic policies whose critic predicts ``n_quantiles`` quantiles of the return.

The critic head (:class:`QuantileValueHead`) replaces SB3's ``value_net``. Its ``forward``
returns the *scalar* value that SB3's rollout collection and GAE use (the quantile mean, or the
CVaR of the lower tail), and keeps the quantiles of that call for the quantile loss, so SB3's
``forward`` / ``evaluate_actions`` / ``predict_values`` work unchanged.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch as th
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy, MaskableMultiInputActorCriticPolicy
from stable_baselines3.common.policies import ActorCriticPolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

RISK_MODES = ("mean", "cvar")


def quantile_fractions(n_quantiles: int) -> th.Tensor:
    """Quantile midpoints ``tau_i = (2 i + 1) / (2 n)``, shape ``(n_quantiles,)`` (QR-DQN)."""
    return (th.arange(n_quantiles, dtype=th.float32) + 0.5) / n_quantiles


class QuantileValueHead(nn.Module):
    """Critic head: latent ``(B, latent_dim)`` -> quantiles ``(B, n_quantiles)`` -> scalar value ``(B, 1)``.

    The scalar is ``mean(quantiles)`` (``risk="mean"``) or the CVaR at level ``alpha``: the mean of
    the sorted quantiles whose midpoint ``tau_i < alpha`` (at least the lowest one). After each call
    ``self.quantiles`` holds that call's ``(B, n_quantiles)`` quantiles (with gradients), for the loss.

    :param latent_dim: width of the critic's latent features.
    :param n_quantiles: number of quantiles.
    """

    def __init__(self, latent_dim: int, n_quantiles: int) -> None:
        super().__init__()
        self.linear = nn.Linear(latent_dim, n_quantiles)
        self.register_buffer("taus", quantile_fractions(n_quantiles))
        self.quantiles: th.Tensor | None = None
        self.set_risk("mean", 1.0)

    @property
    def n_quantiles(self) -> int:
        return self.linear.out_features

    def set_risk(self, risk: str, alpha: float) -> None:
        """Choose the scalar value: ``"mean"``, or ``"cvar"`` of the lowest ``alpha`` fraction."""
        if risk not in RISK_MODES:
            raise ValueError(f"risk must be one of {RISK_MODES}, got {risk!r}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        self.risk, self.alpha = risk, float(alpha)
        self.n_tail = max(1, int((self.taus < alpha).sum()))

    def reduce(self, quantiles: th.Tensor) -> th.Tensor:
        """The scalar value ``(B, 1)`` of quantiles ``(B, n_quantiles)`` under the current risk mode."""
        if self.risk == "mean":
            return quantiles.mean(dim=1, keepdim=True)
        lowest = th.sort(quantiles, dim=1).values[:, : self.n_tail]
        return lowest.mean(dim=1, keepdim=True)

    def forward(self, latent_vf: th.Tensor) -> th.Tensor:
        self.quantiles = self.linear(latent_vf)
        return self.reduce(self.quantiles)


class QuantileCriticMixin:
    """Turns an SB3/sb3-contrib actor-critic policy into one with a :class:`QuantileValueHead` critic.

    :param n_quantiles: number of return quantiles the critic predicts (>= 2).
    """

    value_net: QuantileValueHead

    def __init__(self, *args: Any, n_quantiles: int = 32, **kwargs: Any) -> None:
        if not isinstance(n_quantiles, int) or isinstance(n_quantiles, bool) or n_quantiles < 2:
            raise ValueError(f"n_quantiles must be an integer >= 2, got {n_quantiles!r}")
        self.n_quantiles = n_quantiles  # read by _build, which the parent's __init__ calls
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        super()._build(lr_schedule)  # type: ignore[misc]
        self.value_net = QuantileValueHead(self.mlp_extractor.latent_dim_vf, self.n_quantiles)
        if self.ortho_init:
            self.value_net.linear.apply(partial(self.init_weights, gain=1))
        # the parent built its optimizer over the scalar head: rebuild it over the quantile head
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _get_constructor_parameters(self) -> dict[str, Any]:
        data = super()._get_constructor_parameters()  # type: ignore[misc]
        data["n_quantiles"] = self.n_quantiles
        return data

    def predict_quantiles(self, obs: PyTorchObs) -> th.Tensor:
        """Return quantiles ``(B, n_quantiles)`` for observations already converted to tensors."""
        self.predict_values(obs)  # type: ignore[attr-defined]
        assert self.value_net.quantiles is not None  # set by the call above
        return self.value_net.quantiles


class QuantileActorCriticPolicy(QuantileCriticMixin, ActorCriticPolicy):
    """``MlpPolicy`` of :class:`~sb3_trading.algos.QuantilePPO`."""


class QuantileMultiInputActorCriticPolicy(QuantileCriticMixin, MultiInputActorCriticPolicy):
    """``MultiInputPolicy`` of :class:`~sb3_trading.algos.QuantilePPO` (Dict observations, e.g. every sb3_trading env)."""


class MaskableQuantileActorCriticPolicy(QuantileCriticMixin, MaskableActorCriticPolicy):
    """``MlpPolicy`` of :class:`~sb3_trading.algos.MaskableQuantilePPO`."""


class MaskableQuantileMultiInputActorCriticPolicy(QuantileCriticMixin, MaskableMultiInputActorCriticPolicy):
    """``MultiInputPolicy`` of :class:`~sb3_trading.algos.MaskableQuantilePPO`."""
