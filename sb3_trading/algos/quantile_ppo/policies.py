"""Actor-critic policies whose critic predicts ``n_quantiles`` quantiles of the return.

The critic head (:class:`QuantileValueHead`) replaces SB3's ``value_net``. Called as a module it returns the
*scalar* value that SB3's rollout collection uses (the mean of the quantiles), so SB3's ``forward`` /
``predict_values`` work unchanged; :meth:`QuantileCriticMixin.evaluate_actions_quantiles` returns the quantiles
themselves, with the log-probabilities and entropies, for the update.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch as th
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy, MaskableMultiInputActorCriticPolicy
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy, MultiInputActorCriticPolicy
from stable_baselines3.common.type_aliases import PyTorchObs, Schedule
from torch import nn

from sb3_trading.algos.risk import DistortionRisk, quantile_fractions


class QuantileValueHead(nn.Module):
    """Critic head: latent ``(batch, latent_dim)`` -> sorted quantiles ``(batch, n_quantiles)`` -> mean ``(batch, 1)``.

    Monotone by sorting: :meth:`quantiles` is ``sort(linear(latent))``. Sorting is a permutation, so its gradient
    sends each sorted quantile's gradient to the output unit that produced it (the quantile loss of the ``i``-th
    smallest output is taken at ``tau_i`` whichever unit it came from); it keeps the linear head's scale, which
    cumulative softplus increments would fix at initialisation. The scalar forward is the mean, which sorting
    does not change.

    :param latent_dim: width of the critic's latent features.
    :param n_quantiles: number of quantiles.
    """

    def __init__(self, latent_dim: int, n_quantiles: int) -> None:
        super().__init__()
        self.linear = nn.Linear(latent_dim, n_quantiles)
        self.register_buffer("taus", quantile_fractions(n_quantiles))

    @property
    def n_quantiles(self) -> int:
        return self.linear.out_features

    def quantiles(self, latent_vf: th.Tensor) -> th.Tensor:
        """Sorted quantiles ``(batch, n_quantiles)`` at the fractions ``taus``."""
        return th.sort(self.linear(latent_vf), dim=1).values

    def forward(self, latent_vf: th.Tensor) -> th.Tensor:
        """The mean of the quantiles, ``(batch, 1)``: SB3's scalar value."""
        return self.linear(latent_vf).mean(dim=1, keepdim=True)


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

    def _as_obs_tensor(self, obs: PyTorchObs | np.ndarray | dict[str, np.ndarray]) -> PyTorchObs:
        if isinstance(obs, th.Tensor) or (isinstance(obs, dict) and all(isinstance(v, th.Tensor) for v in obs.values())):
            return obs
        return self.obs_to_tensor(obs)[0]  # type: ignore[attr-defined]

    def evaluate_actions_quantiles(
        self, obs: PyTorchObs, actions: th.Tensor, action_masks: th.Tensor | np.ndarray | None = None
    ) -> tuple[th.Tensor, th.Tensor, th.Tensor | None]:
        """``evaluate_actions`` with the critic's quantiles instead of its scalar value.

        :param obs: observations, a batch of ``batch``.
        :param actions: actions ``(batch, *action_shape)``.
        :param action_masks: ``(batch, n_actions)`` masks (maskable policies only).
        :return: sorted quantiles ``(batch, n_quantiles)``, log-probabilities ``(batch,)``, entropies ``(batch,)``.
        """
        features = self.extract_features(obs)  # type: ignore[attr-defined]
        if self.share_features_extractor:  # type: ignore[attr-defined]
            latent_pi, latent_vf = self.mlp_extractor(features)  # type: ignore[attr-defined]
        else:
            pi_features, vf_features = features
            latent_pi = self.mlp_extractor.forward_actor(pi_features)  # type: ignore[attr-defined]
            latent_vf = self.mlp_extractor.forward_critic(vf_features)  # type: ignore[attr-defined]
        distribution = self._get_action_dist_from_latent(latent_pi)  # type: ignore[attr-defined]
        if action_masks is not None:
            if not hasattr(distribution, "apply_masking"):
                raise ValueError(f"{type(self).__name__} takes no action masks: use the Maskable policy (MaskableQuantilePPO)")
            distribution.apply_masking(action_masks)
        return self.value_net.quantiles(latent_vf), distribution.log_prob(actions), distribution.entropy()

    def predict_quantiles(self, obs: PyTorchObs | np.ndarray | dict[str, np.ndarray]) -> th.Tensor:
        """Sorted return quantiles ``(batch, n_quantiles)`` at the fractions ``value_net.taus``.

        :param obs: observation tensors, or NumPy observations (one or a batch), converted as ``predict`` does.
            Wrap the call in ``th.no_grad()`` for inference.
        """
        # as SB3's predict_values: the critic's own extractor (the shared one when it is shared)
        features = BasePolicy.extract_features(self, self._as_obs_tensor(obs), self.vf_features_extractor)  # type: ignore[arg-type, attr-defined]
        return self.value_net.quantiles(self.mlp_extractor.forward_critic(features))  # type: ignore[attr-defined]

    def value_at_risk(self, obs: PyTorchObs | np.ndarray | dict[str, np.ndarray], alpha: float) -> th.Tensor:
        """VaR at level ``alpha`` of the predicted return, ``(batch,)``: the lower ``alpha``-quantile.

        The quantiles are read as ``n`` equally likely atoms, so this is the ``ceil(alpha n)``-th smallest one
        (a return, not a loss: lower is worse).
        """
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        quantiles = self.predict_quantiles(obs)
        return quantiles[:, max(0, int(np.ceil(alpha * quantiles.shape[1] - 1e-9)) - 1)]

    def cvar(self, obs: PyTorchObs | np.ndarray | dict[str, np.ndarray], alpha: float) -> th.Tensor:
        """CVaR at level ``alpha`` of the predicted return, ``(batch,)``: the mean of its worst ``alpha`` fraction.

        Exact for the ``n`` equally likely atoms (a partial weight on the atom that straddles ``alpha``); never
        above the mean of the quantiles (the scalar value).
        """
        return DistortionRisk("cvar", alpha).value(self.predict_quantiles(obs))


class QuantileActorCriticPolicy(QuantileCriticMixin, ActorCriticPolicy):
    """``MlpPolicy`` of :class:`~sb3_trading.algos.QuantilePPO`."""


class QuantileMultiInputActorCriticPolicy(QuantileCriticMixin, MultiInputActorCriticPolicy):
    """``MultiInputPolicy`` of :class:`~sb3_trading.algos.QuantilePPO` (Dict observations, e.g. every sb3_trading env)."""


class MaskableQuantileActorCriticPolicy(QuantileCriticMixin, MaskableActorCriticPolicy):
    """``MlpPolicy`` of :class:`~sb3_trading.algos.MaskableQuantilePPO`."""


class MaskableQuantileMultiInputActorCriticPolicy(QuantileCriticMixin, MaskableMultiInputActorCriticPolicy):
    """``MultiInputPolicy`` of :class:`~sb3_trading.algos.MaskableQuantilePPO`."""
