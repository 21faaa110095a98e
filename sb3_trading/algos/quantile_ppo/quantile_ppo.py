"""QuantilePPO: PPO with a distributional (quantile) critic whose risk measure changes what the policy prefers.

Differences from SB3's PPO, and nothing else:

* the critic predicts ``n_quantiles`` sorted quantiles of the return (``policy_kwargs=dict(n_quantiles=...)``),
  trained with the quantile Huber loss (QR-DQN; ``sb3_contrib.common.utils.quantile_huber_loss``) against samples
  of each step's *distributional* λ-return (:func:`~sb3_trading.algos.risk.quantile_lambda_returns`: the
  k-step returns bootstrap from the critic's whole distribution k steps later, mixed with GAE's weights), a new
  sample per epoch;
* ``risk="mean"`` keeps PPO's objective and SB3's GAE advantages. Any other ``risk`` replaces the advantage of
  step ``t`` at state ``s`` by

      ``A_t = E[ψ_s(Z^λ_t)] - E[ψ_s(Z_s)]``

  where ``ψ_s`` is the influence function of the distortion risk measure ``ρ`` (:mod:`sb3_trading.algos.risk`)
  at the critic's return distribution ``Z_s``, and ``Z^λ_t`` the step's distributional λ-return. For
  ``risk="cvar"`` ``ψ_s(x) = -(ν_s - x)^+ / α`` with ``ν_s`` the critic's VaR_α at ``s``: the per-sample term of
  the Rockafellar–Uryasev form ``CVaR_α = ν - E[(ν - G)^+] / α``, i.e. the CVaR policy gradient of Tamar,
  Glassner & Mannor (2015, "Optimizing the CVaR via Sampling"); for other measures it is the likelihood-ratio
  gradient of a distortion risk measure (Vijayan & Prashanth, 2021), with IQN's distortions (Dabney et al.,
  2018). PPO's clipped surrogate with these advantages is a trust-region step on ``ρ(Z_s)`` with respect to the
  action distribution at each visited state: in a one-step problem exactly Tamar et al.'s gradient of
  ``CVaR_α`` of the return; over several steps each state measures the risk of its own return-to-go (VaR
  ``ν_s`` per state, a nested, time-consistent surrogate), not the start state's return alone. The advantages
  are normalised per minibatch as PPO's are (``normalize_advantage``);
* ``clip_range_vf`` is not supported (quantiles have no single old value to clip around).

Rollout collection, the rollout buffer and SB3's GAE are SB3's (or sb3-contrib's maskable ones): the risk
advantages overwrite ``rollout_buffer.advantages`` at the start of :meth:`train`.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np
import torch as th
from gymnasium import spaces
from sb3_contrib import MaskablePPO
from sb3_contrib.common.utils import quantile_huber_loss
from stable_baselines3 import PPO
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.utils import explained_variance, obs_as_tensor

from sb3_trading.algos.quantile_ppo.policies import (
    MaskableQuantileActorCriticPolicy,
    MaskableQuantileMultiInputActorCriticPolicy,
    QuantileActorCriticPolicy,
    QuantileCriticMixin,
    QuantileMultiInputActorCriticPolicy,
)
from sb3_trading.algos.risk import DistortionRisk, quantile_lambda_returns, risk_advantages

logger = logging.getLogger(__name__)

#: rows per critic pass when the rollout's quantiles are computed before the update
_CHUNK = 4096


class QuantileTrainMixin:
    """The quantile critic's arguments, setup and PPO update, shared by :class:`QuantilePPO` and
    :class:`MaskableQuantilePPO`.

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` (sb3_trading envs) or a quantile-critic policy class;
        ``policy_kwargs`` take ``n_quantiles`` (default 32) besides SB3's usual keys (``net_arch``,
        ``features_extractor_class=TransformerExtractor``...).
    :param env: the environment.
    :param risk: what the policy maximises: ``"mean"`` (PPO), ``"cvar"`` (CVaR at level ``alpha``),
        ``"mean_cvar"`` (``(1 - cvar_weight) E + cvar_weight CVaR_alpha``) or ``"wang"`` (Wang transform ``eta``).
    :param alpha: CVaR level in ``(0, 1]`` (default 0.1, the worst 10 %), for ``cvar`` and ``mean_cvar``.
    :param eta: Wang-transform parameter, for ``wang``; IQN's convention, ``eta < 0`` risk-averse (default -0.75).
    :param cvar_weight: weight of the CVaR in ``mean_cvar``, in ``[0, 1]`` (default 0.5).
    :param huber_kappa: threshold of the quantile Huber loss, in reward units (1.0 as in QR-DQN/TQC;
        use a smaller value when returns are much smaller than 1, or the loss fits expectiles instead).
    :param kwargs: every other argument of the PPO class (``n_steps``, ``gae_lambda``, ``seed``...).
    """

    risk_measure: DistortionRisk

    def __init__(
        self,
        policy: str | type[BasePolicy],
        env: Any,
        risk: str = "mean",
        alpha: float = 0.1,
        eta: float = -0.75,
        cvar_weight: float = 0.5,
        huber_kappa: float = 1.0,
        **kwargs: Any,
    ) -> None:
        DistortionRisk(risk, alpha, eta, cvar_weight)  # validate before the parent builds anything
        if not huber_kappa > 0.0:
            raise ValueError(f"huber_kappa must be > 0, got {huber_kappa!r}")
        self.risk, self.alpha, self.eta, self.cvar_weight = risk, float(alpha), float(eta), float(cvar_weight)
        self.huber_kappa = float(huber_kappa)
        super().__init__(policy, env, **kwargs)  # type: ignore[call-arg]

    def _setup_model(self) -> None:
        super()._setup_model()  # type: ignore[misc]
        if not isinstance(self.policy, QuantileCriticMixin):
            raise ValueError(
                f"{type(self).__name__} needs a quantile-critic policy (e.g. 'MlpPolicy' or 'MultiInputPolicy' from its "
                f"policy_aliases), got {type(self.policy).__name__}"
            )
        if self.clip_range_vf is not None:
            raise ValueError(f"clip_range_vf is not supported by {type(self).__name__}: set it to None")
        self.risk_measure = DistortionRisk(self.risk, self.alpha, self.eta, self.cvar_weight)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "risk_measure"]  # type: ignore[misc]

    def quantile_loss(self, quantiles: th.Tensor, returns: th.Tensor) -> th.Tensor:
        """Quantile Huber loss of ``quantiles (batch, n_quantiles)`` against return samples ``(batch,)``."""
        kappa = self.huber_kappa
        # huber_kappa(d) = kappa^2 huber_1(d / kappa); divide by kappa as QR-DQN's rho^kappa does
        return kappa * quantile_huber_loss(quantiles / kappa, returns.unsqueeze(1) / kappa)

    def _rollout_quantiles(self) -> tuple[np.ndarray, np.ndarray]:
        """The critic's quantiles at every buffer observation ``(T, n_envs, n_quantiles)`` and after the rollout
        ``(n_envs, n_quantiles)``, in evaluation mode as during collection."""
        buffer = self.rollout_buffer
        n_steps, n_envs = buffer.buffer_size, buffer.n_envs
        if isinstance(buffer.observations, dict):
            flat: Any = {key: obs.reshape(n_steps * n_envs, *obs.shape[2:]) for key, obs in buffer.observations.items()}
        else:
            flat = buffer.observations.reshape(n_steps * n_envs, *buffer.observations.shape[2:])
        chunks = []
        for start in range(0, n_steps * n_envs, _CHUNK):
            part = (
                {k: v[start : start + _CHUNK] for k, v in flat.items()}
                if isinstance(flat, dict)
                else flat[start : start + _CHUNK]
            )
            chunks.append(self.policy.predict_quantiles(obs_as_tensor(part, self.device)).cpu().numpy())
        last = self.policy.predict_quantiles(obs_as_tensor(self._last_obs, self.device)).cpu().numpy()
        return np.concatenate(chunks).reshape(n_steps, n_envs, -1), last

    def _prepare_rollout(self) -> np.ndarray:
        """Distributional λ-returns of the rollout ``(T, n_envs, n_quantiles)``; for a risk mode other than
        ``"mean"`` also overwrite the buffer's advantages with the risk advantages."""
        buffer = self.rollout_buffer
        self.policy.set_training_mode(False)
        with th.no_grad():
            quantiles, last = self._rollout_quantiles()
        self.policy.set_training_mode(True)
        targets = quantile_lambda_returns(
            buffer.rewards, buffer.episode_starts, quantiles, last, self._last_episode_starts, self.gamma, self.gae_lambda
        )
        n_quantiles = quantiles.shape[-1]
        flat_q = th.as_tensor(quantiles.reshape(-1, n_quantiles), dtype=th.float64)
        self.logger.record("train/risk_value", float(self.risk_measure.value(flat_q).mean()))
        if self.risk != "mean":
            slopes = self.risk_measure.utility_slopes(n_quantiles).double()
            flat_t = th.as_tensor(targets.reshape(-1, n_quantiles), dtype=th.float64)
            advantages = th.cat(
                [
                    risk_advantages(flat_t[i : i + _CHUNK], flat_q[i : i + _CHUNK], slopes)
                    for i in range(0, flat_q.shape[0], _CHUNK)
                ]
            )
            buffer.advantages = advantages.numpy().reshape(buffer.advantages.shape).astype(np.float32)
            if getattr(self, "risk_advantage_rms", None) is None:
                self.risk_advantage_rms = RunningMeanStd(shape=())
            self.risk_advantage_rms.update(buffer.advantages.reshape(-1).astype(np.float64))
        return targets

    def _normalize(self, advantages: th.Tensor) -> th.Tensor:
        """PPO's per-minibatch advantage normalisation; in a risk mode, centred per minibatch but scaled by the
        running RMS of the risk advantages over every rollout so far.

        A risk advantage is heavy-tailed: a tail outcome is rare and large, and a minibatch without one holds only
        small differences (the critic's noise around its VaR). Dividing by each minibatch's own std would blow those
        up to the size of a real tail event; a scale estimated over many rollouts keeps them small.
        """
        if not self.normalize_advantage or len(advantages) < 2:
            return advantages
        if self.risk == "mean":
            return (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        rms = self.risk_advantage_rms
        return (advantages - advantages.mean()) / float(np.sqrt(rms.var + rms.mean**2) + 1e-8)

    def _sample_return_targets(self, targets: np.ndarray) -> None:
        """Write one sample of each step's distributional λ-return into ``rollout_buffer.returns`` (either layout)."""
        buffer = self.rollout_buffer
        # NumPy's global generator, seeded by SB3's set_random_seed, as the buffer's minibatch permutation
        pick = np.random.randint(targets.shape[-1], size=targets.shape[:2])  # noqa: NPY002
        sample = np.take_along_axis(targets, pick[..., None], axis=-1)[..., 0].astype(np.float32)
        buffer.returns = buffer.swap_and_flatten(sample) if buffer.generator_ready else sample

    def train(self) -> None:
        """PPO's clipped-surrogate update with the quantile critic loss (and action masks when the buffer has them)."""
        # before anything reshapes the buffer: SB3's TD(λ) returns for explained variance, then the risk advantages
        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())
        targets = self._prepare_rollout()
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)
        entropy_losses, pg_losses, quantile_losses, clip_fractions, spreads = [], [], [], [], []
        approx_kl_divs: list[float] = []
        continue_training = True
        for epoch in range(self.n_epochs):
            approx_kl_divs = []
            self._sample_return_targets(targets)
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                actions = rollout_data.actions
                if isinstance(self.action_space, spaces.Discrete):
                    actions = actions.long().flatten()
                masks = getattr(rollout_data, "action_masks", None)
                quantiles, log_prob, entropy = self.policy.evaluate_actions_quantiles(
                    rollout_data.observations, actions, action_masks=masks
                )

                advantages = self._normalize(rollout_data.advantages)
                ratio = th.exp(log_prob - rollout_data.old_log_prob)
                policy_loss = -th.min(advantages * ratio, advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)).mean()
                value_loss = self.quantile_loss(quantiles, rollout_data.returns)
                entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss

                pg_losses.append(policy_loss.item())
                quantile_losses.append(value_loss.item())
                entropy_losses.append(entropy_loss.item())
                clip_fractions.append(th.mean((th.abs(ratio - 1) > clip_range).float()).item())
                with th.no_grad():
                    log_ratio = log_prob - rollout_data.old_log_prob
                    approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio).cpu().numpy()
                    approx_kl_divs.append(float(approx_kl_div))
                    spreads.append((quantiles[:, -1] - quantiles[:, 0]).mean().item())
                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    logger.info("early stopping at epoch %d: approx_kl %.4f > 1.5 * target_kl", epoch, approx_kl_div)
                    break

                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()
            self._n_updates += 1
            if not continue_training:
                break

        self.logger.record("train/entropy_loss", np.mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(quantile_losses))
        self.logger.record("train/quantile_loss", np.mean(quantile_losses))
        self.logger.record("train/value_spread", np.mean(spreads))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", np.mean(clip_fractions))
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/explained_variance", explained_var)
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)


class QuantilePPO(QuantileTrainMixin, PPO):
    """PPO with a quantile critic and a risk measure (see the module docstring and :class:`QuantileTrainMixin`
    for the arguments ``risk``, ``alpha``, ``eta``, ``cvar_weight`` and ``huber_kappa``). Takes every
    :class:`~stable_baselines3.PPO` argument.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": QuantileActorCriticPolicy,
        "MultiInputPolicy": QuantileMultiInputActorCriticPolicy,
    }


class MaskableQuantilePPO(QuantileTrainMixin, MaskablePPO):
    """:class:`QuantilePPO` on sb3-contrib's MaskablePPO: honours ``action_masks()`` exactly like MaskablePPO,
    in rollouts and in the update. Same arguments as :class:`QuantilePPO` plus MaskablePPO's.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MaskableQuantileActorCriticPolicy,
        "MultiInputPolicy": MaskableQuantileMultiInputActorCriticPolicy,
    }
