"""QuantilePPO: PPO with a distributional (quantile) critic and optionally CVaR-aware advantages.

Differences from SB3's PPO, and nothing else:

* the critic predicts ``n_quantiles`` quantiles of the return (``policy_kwargs=dict(n_quantiles=...)``)
  and is trained with the quantile Huber loss (QR-DQN; ``sb3_contrib.common.utils.quantile_huber_loss``)
  against the λ-returns of the rollout buffer;
* the value that GAE bootstraps from is the quantile mean (``risk="mean"``, PPO's advantages) or the
  CVaR of the lowest ``alpha`` fraction of quantiles (``risk="cvar"``): a risk-averse critic makes the
  advantage of reaching a state with a heavy left tail smaller. The risk preference acts through
  bootstrapping, so it weakens as ``gae_lambda`` -> 1 (with ``gae_lambda=1`` the advantage is the Monte
  Carlo return minus a baseline, whatever the baseline);
* ``clip_range_vf`` is not supported (quantiles have no single old value to clip around).

Rollout collection, GAE and the rollout buffer are SB3's (or sb3-contrib's maskable ones).
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
from stable_baselines3.common.utils import explained_variance

from sb3_trading.algos.quantile_ppo.policies import (
    RISK_MODES,
    MaskableQuantileActorCriticPolicy,
    MaskableQuantileMultiInputActorCriticPolicy,
    QuantileActorCriticPolicy,
    QuantileCriticMixin,
    QuantileMultiInputActorCriticPolicy,
)

logger = logging.getLogger(__name__)


class QuantileTrainMixin:
    """The quantile critic's setup and PPO update, shared by :class:`QuantilePPO` and :class:`MaskableQuantilePPO`.

    :param risk: ``"mean"`` or ``"cvar"``: which scalar of the quantiles GAE bootstraps from.
    :param alpha: CVaR level (fraction of the lower tail), used when ``risk="cvar"``.
    :param huber_kappa: threshold of the quantile Huber loss, in reward units (1.0 as in QR-DQN/TQC;
        use a smaller value when returns are much smaller than 1, or the loss fits expectiles instead).
    """

    def _init_quantile(self, risk: str, alpha: float, huber_kappa: float) -> None:
        if risk not in RISK_MODES:
            raise ValueError(f"risk must be one of {RISK_MODES}, got {risk!r}")
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        if not huber_kappa > 0.0:
            raise ValueError(f"huber_kappa must be > 0, got {huber_kappa!r}")
        self.risk, self.alpha, self.huber_kappa = risk, float(alpha), float(huber_kappa)

    def _setup_model(self) -> None:
        super()._setup_model()  # type: ignore[misc]
        if not isinstance(self.policy, QuantileCriticMixin):
            raise ValueError(
                f"{type(self).__name__} needs a quantile-critic policy (e.g. 'MlpPolicy' or 'MultiInputPolicy' from its "
                f"policy_aliases), got {type(self.policy).__name__}"
            )
        if self.clip_range_vf is not None:
            raise ValueError(f"clip_range_vf is not supported by {type(self).__name__}: set it to None")
        self.policy.value_net.set_risk(self.risk, self.alpha)

    def quantile_loss(self, quantiles: th.Tensor, returns: th.Tensor) -> th.Tensor:
        """Quantile Huber loss of ``quantiles (B, n_quantiles)`` against λ-returns ``(B,)``, threshold ``huber_kappa``."""
        kappa = self.huber_kappa
        # huber_kappa(d) = kappa^2 huber_1(d / kappa); divide by kappa as QR-DQN's rho^kappa does
        return kappa * quantile_huber_loss(quantiles / kappa, returns.unsqueeze(1) / kappa)

    def train(self) -> None:
        """PPO's clipped-surrogate update with the quantile critic loss (and action masks when the buffer has them)."""
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)
        entropy_losses, pg_losses, quantile_losses, clip_fractions, spreads = [], [], [], [], []
        approx_kl_divs: list[float] = []
        continue_training = True
        for epoch in range(self.n_epochs):
            approx_kl_divs = []
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                actions = rollout_data.actions
                if isinstance(self.action_space, spaces.Discrete):
                    actions = actions.long().flatten()
                mask_kwargs = {"action_masks": rollout_data.action_masks} if hasattr(rollout_data, "action_masks") else {}
                _, log_prob, entropy = self.policy.evaluate_actions(rollout_data.observations, actions, **mask_kwargs)
                quantiles = self.policy.value_net.quantiles  # set by evaluate_actions' critic call

                advantages = rollout_data.advantages
                if self.normalize_advantage and len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
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
                    spreads.append((quantiles.max(dim=1).values - quantiles.min(dim=1).values).mean().item())
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

        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())
        self.logger.record("train/entropy_loss", np.mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(quantile_losses))
        self.logger.record("train/quantile_loss", np.mean(quantile_losses))
        self.logger.record("train/value_spread", np.mean(spreads))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", np.mean(clip_fractions))
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/explained_variance", explained_var)
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)


class QuantilePPO(QuantileTrainMixin, PPO):
    """PPO with a quantile critic (see the module docstring). Takes every :class:`~stable_baselines3.PPO` argument.

    :param policy: ``"MlpPolicy"``, ``"MultiInputPolicy"`` (sb3_trading envs) or a quantile-critic policy class;
        ``policy_kwargs`` take ``n_quantiles`` (default 32) besides SB3's usual keys (``net_arch``,
        ``features_extractor_class=TransformerExtractor``...).
    :param env: the environment.
    :param risk: ``"mean"`` (default) or ``"cvar"``.
    :param alpha: CVaR level for ``risk="cvar"`` (default 0.1, the worst 10 %).
    :param huber_kappa: quantile Huber threshold in reward units.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": QuantileActorCriticPolicy,
        "MultiInputPolicy": QuantileMultiInputActorCriticPolicy,
    }

    def __init__(
        self,
        policy: str | type[QuantileActorCriticPolicy],
        env: Any,
        risk: str = "mean",
        alpha: float = 0.1,
        huber_kappa: float = 1.0,
        **kwargs: Any,
    ) -> None:
        self._init_quantile(risk, alpha, huber_kappa)  # before PPO.__init__, which calls _setup_model
        super().__init__(policy, env, **kwargs)


class MaskableQuantilePPO(QuantileTrainMixin, MaskablePPO):
    """:class:`QuantilePPO` on sb3-contrib's MaskablePPO: honours ``action_masks()`` exactly like MaskablePPO.

    Same arguments as :class:`QuantilePPO` plus MaskablePPO's.
    """

    policy_aliases: ClassVar[dict[str, type[BasePolicy]]] = {
        "MlpPolicy": MaskableQuantileActorCriticPolicy,
        "MultiInputPolicy": MaskableQuantileMultiInputActorCriticPolicy,
    }

    def __init__(
        self,
        policy: str | type[MaskableQuantileActorCriticPolicy],
        env: Any,
        risk: str = "mean",
        alpha: float = 0.1,
        huber_kappa: float = 1.0,
        **kwargs: Any,
    ) -> None:
        self._init_quantile(risk, alpha, huber_kappa)
        super().__init__(policy, env, **kwargs)
