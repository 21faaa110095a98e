r"""Distortion risk measures of a return distribution given by quantiles, and the advantages that optimise them.

A *distortion risk measure* (Wang, 2000; Dabney et al., 2018, IQN) of a return :math:`Z` with CDF :math:`F` is

.. math:: \rho_h(Z) = \int_0^1 F^{-1}(u)\, dh(u)

for a distortion :math:`h: [0, 1] \to [0, 1]`, non-decreasing, :math:`h(0) = 0`, :math:`h(1) = 1`. The modes:

=============  ==================================================  ==========================================
``risk``       :math:`h(u)`                                        :math:`\rho_h(Z)`
=============  ==================================================  ==========================================
``mean``       :math:`u`                                           :math:`E[Z]` (PPO's objective)
``cvar``       :math:`\min(u / \alpha, 1)`                         :math:`\mathrm{CVaR}_\alpha(Z)`, the mean of the worst
                                                                   ``alpha`` fraction of returns
``mean_cvar``  :math:`(1 - w) u + w \min(u / \alpha, 1)`           :math:`(1 - w) E[Z] + w\, \mathrm{CVaR}_\alpha(Z)`
``wang``       :math:`\Phi(\Phi^{-1}(u) - \eta)`                   Wang's transform; IQN samples
                                                                   :math:`\beta = h^{-1}`, i.e.
                                                                   :math:`\beta(\tau) = \Phi(\Phi^{-1}(\tau) + \eta)`, so
                                                                   ``eta < 0`` is risk-averse (IQN's convention)
=============  ==================================================  ==========================================

**Its policy gradient.** Writing :math:`\rho_h = \int x\, d h(F(x))` and integrating by parts,
:math:`\nabla_\theta \rho_h = E[\psi(G)\, \nabla_\theta \log p_\theta(G)]` with the *influence function*

.. math:: \psi(x) = \int^x h'(F(y))\, dy,

a utility whose slope at :math:`x` is the distortion weight of :math:`x`'s quantile level (the likelihood-ratio
gradient of a distortion risk measure, Vijayan & Prashanth, 2021). For CVaR, :math:`\psi(x) = -(\nu - x)^+ / \alpha`
with :math:`\nu = \mathrm{VaR}_\alpha`: Tamar, Glassner & Mannor's (2015) CVaR gradient, the sample form of the
Rockafellar–Uryasev representation :math:`\mathrm{CVaR}_\alpha = \max_\nu\, \nu - E[(\nu - Z)^+] / \alpha`. For the
mean, :math:`\psi(x) = x`.

**From quantiles.** The critic gives ``n`` sorted quantiles :math:`\theta_1 \le \dots \le \theta_n` at the fractions
:math:`\tau_i = (2i - 1) / 2n`. :func:`utility` builds :math:`\psi` from the CDF that interpolates
:math:`(\theta_i, \tau_i)` linearly: on :math:`[\theta_i, \theta_{i+1}]` its slope is
:math:`(h(\tau_{i+1}) - h(\tau_i)) / (\tau_{i+1} - \tau_i)`; below :math:`\theta_1` it is :math:`h(\tau_1) / \tau_1`,
above :math:`\theta_n` it is :math:`(1 - h(\tau_n)) / (1 - \tau_n)`. For CVaR that is slope :math:`1/\alpha` below
the VaR and 0 above it, with the kink spread over the one segment that straddles :math:`\alpha`.
:func:`risk_advantages` then gives, per step, :math:`E[\psi_s(Z^\lambda_t)] - E[\psi_s(Z_s)]`: the expected utility
of the step's sampled return distribution (:func:`quantile_lambda_returns`) minus that of the critic's distribution
at the state, which is the baseline that makes the advantage zero on average.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import torch as th

#: the risk modes of :class:`DistortionRisk` (``risk=`` of QuantilePPO)
RISK_MODES = ("mean", "cvar", "mean_cvar", "wang")

_NORMAL = NormalDist()


def quantile_fractions(n_quantiles: int) -> th.Tensor:
    """Quantile midpoints ``tau_i = (2 i + 1) / (2 n)``, shape ``(n_quantiles,)`` (QR-DQN)."""
    return (th.arange(n_quantiles, dtype=th.float32) + 0.5) / n_quantiles


class DistortionRisk:
    """A distortion risk measure :math:`\\rho_h` (see the module docstring), evaluated on quantiles.

    :param risk: ``"mean"``, ``"cvar"``, ``"mean_cvar"`` or ``"wang"``.
    :param alpha: CVaR level in ``(0, 1]`` (the worst ``alpha`` fraction), for ``cvar`` and ``mean_cvar``.
    :param eta: Wang-transform parameter (finite), for ``wang``; ``eta < 0`` is risk-averse, ``0`` the mean.
    :param cvar_weight: weight ``w`` in ``[0, 1]`` of the CVaR in ``mean_cvar``: ``(1 - w) E[Z] + w CVaR_alpha(Z)``.
    :raises ValueError: an unknown ``risk`` or a parameter out of range.
    """

    def __init__(self, risk: str = "mean", alpha: float = 0.1, eta: float = -0.75, cvar_weight: float = 0.5) -> None:
        if risk not in RISK_MODES:
            raise ValueError(f"risk must be one of {RISK_MODES}, got {risk!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha (the CVaR level) must be in (0, 1], got {alpha!r}")
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta):
            raise ValueError(f"eta (the Wang-transform parameter) must be a finite number, got {eta!r}")
        if isinstance(cvar_weight, bool) or not isinstance(cvar_weight, (int, float)) or not 0.0 <= cvar_weight <= 1.0:
            raise ValueError(f"cvar_weight must be in [0, 1], got {cvar_weight!r}")
        self.risk, self.alpha, self.eta, self.cvar_weight = risk, float(alpha), float(eta), float(cvar_weight)

    def __repr__(self) -> str:
        return f"DistortionRisk(risk={self.risk!r}, alpha={self.alpha}, eta={self.eta}, cvar_weight={self.cvar_weight})"

    def distortion(self, u: float) -> float:
        """:math:`h(u)` for ``u`` in ``[0, 1]``."""
        u = min(max(float(u), 0.0), 1.0)
        if self.risk == "mean":
            return u
        cvar = min(u / self.alpha, 1.0)
        if self.risk == "cvar":
            return cvar
        if self.risk == "mean_cvar":
            return (1.0 - self.cvar_weight) * u + self.cvar_weight * cvar
        if u in (0.0, 1.0):  # wang
            return u
        return _NORMAL.cdf(_NORMAL.inv_cdf(u) - self.eta)

    def atom_weights(self, n_quantiles: int) -> th.Tensor:
        """Weights ``(n_quantiles,)`` of the sorted quantiles in :math:`\\rho_h`: ``h(i / n) - h((i - 1) / n)``; they sum to 1.

        The quantiles are read as ``n`` equally likely atoms, whose ``i``-th covers ``u`` in ``[(i - 1) / n, i / n)``.
        """
        edges = [self.distortion(i / n_quantiles) for i in range(n_quantiles + 1)]
        return th.tensor(np.diff(edges), dtype=th.float32)

    def value(self, quantiles: th.Tensor) -> th.Tensor:
        """:math:`\\rho_h` of each row of sorted ``quantiles (batch, n_quantiles)``, shape ``(batch,)``."""
        weights = self.atom_weights(quantiles.shape[-1]).to(quantiles.device, quantiles.dtype)
        return quantiles @ weights

    def utility_slopes(self, n_quantiles: int) -> th.Tensor:
        """Slopes ``(n_quantiles + 1,)`` of :math:`\\psi`: below the first quantile, between consecutive ones, above
        the last."""
        taus = quantile_fractions(n_quantiles).double().numpy()
        h = np.array([self.distortion(tau) for tau in taus])
        inner = np.diff(h) / np.diff(taus)
        slopes = np.concatenate([[h[0] / taus[0]], inner, [(1.0 - h[-1]) / (1.0 - taus[-1])]])
        return th.tensor(slopes, dtype=th.float32)


def utility(x: th.Tensor, quantiles: th.Tensor, slopes: th.Tensor) -> th.Tensor:
    """The influence function :math:`\\psi_s(x)` of a state's return distribution, up to a constant per row.

    :param x: returns ``(batch, m)`` to evaluate.
    :param quantiles: the state's sorted quantiles ``(batch, n_quantiles)``.
    :param slopes: ``(n_quantiles + 1,)`` from :meth:`DistortionRisk.utility_slopes`.
    :return: ``(batch, m)``; :math:`\\psi` is piecewise linear with knots at the quantiles, and 0 at the first one.
    """
    x = x.unsqueeze(-1)  # (batch, m, 1)
    lows, highs = quantiles[:, None, :-1], quantiles[:, None, 1:]  # (batch, 1, n - 1)
    inner = th.minimum(th.clamp(x - lows, min=0.0), highs - lows) @ slopes[1:-1]  # (batch, m)
    below = th.clamp(quantiles[:, None, :1] - x, min=0.0)[..., 0] * slopes[0]
    above = th.clamp(x - quantiles[:, None, -1:], min=0.0)[..., 0] * slopes[-1]
    return inner - below + above


def risk_advantages(targets: th.Tensor, quantiles: th.Tensor, slopes: th.Tensor) -> th.Tensor:
    """Risk-sensitive advantages :math:`E[\\psi_s(Z^\\lambda_t)] - E[\\psi_s(Z_s)]`, shape ``(batch,)``.

    :param targets: atoms ``(batch, m)`` of each step's return distribution (:func:`quantile_lambda_returns`),
        equally likely.
    :param quantiles: the critic's sorted quantiles ``(batch, n_quantiles)`` at the step's state.
    :param slopes: ``(n_quantiles + 1,)`` from :meth:`DistortionRisk.utility_slopes`.
    """
    return utility(targets, quantiles, slopes).mean(dim=1) - utility(quantiles, quantiles, slopes).mean(dim=1)


def project_mixture(atoms: np.ndarray, weights: np.ndarray, n_quantiles: int) -> np.ndarray:
    """Quantiles of a mixture of weighted atoms at the midpoints ``tau_i``: the W1 projection of QR-DQN.

    :param atoms: ``(batch, k)`` atom locations.
    :param weights: ``(k,)`` probabilities of the atoms (the same for every row), summing to 1.
    :param n_quantiles: number of output quantiles ``n``.
    :return: ``(batch, n)`` sorted: the inverse CDF of each row's mixture at ``tau_i = (2 i + 1) / 2n``.
    """
    order = np.argsort(atoms, axis=1, kind="stable")
    sorted_atoms = np.take_along_axis(atoms, order, axis=1)
    cdf = np.cumsum(weights[order], axis=1)  # (batch, k)
    taus = (np.arange(n_quantiles) + 0.5) / n_quantiles
    index = (cdf[:, :, None] < taus[None, None, :]).sum(axis=1)  # first atom whose CDF reaches tau
    return np.take_along_axis(sorted_atoms, np.minimum(index, atoms.shape[1] - 1), axis=1)


def quantile_lambda_returns(
    rewards: np.ndarray,
    episode_starts: np.ndarray,
    quantiles: np.ndarray,
    last_quantiles: np.ndarray,
    last_dones: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> np.ndarray:
    """The distribution of each step's λ-return, as ``n_quantiles`` atoms: GAE's target, distributionally.

    The λ-return is the mixture, with weights ``(1 - λ) λ^(k-1)``, of the k-step returns. Here the k-step returns
    bootstrap from the critic's whole *distribution* at the state k steps later, not from its mean, and the mixture
    is of distributions, not an average of values, so a tail that sits several steps ahead stays in the target:

        ``Z_t = r_t + γ (1 - done_t) [(1 - λ) Z(s_{t+1}) + λ Z_{t+1}]``  (``Z_{T-1} = r + γ Z(s_T)`` at the rollout's end)

    with each mixture projected back to ``n`` quantiles (:func:`project_mixture`). Its mean is the TD(λ) return of
    SB3's buffer (up to the projection); with ``λ = 1`` it is the Monte-Carlo return plus the discounted bootstrap
    distribution at the rollout's end. Truncated episodes bootstrap from the value SB3 already added to the reward.

    :param rewards: ``(T, n_envs)`` rewards of the rollout buffer.
    :param episode_starts: ``(T, n_envs)`` 1 where the step's observation starts an episode.
    :param quantiles: ``(T, n_envs, n_quantiles)`` sorted critic quantiles at each step's observation.
    :param last_quantiles: ``(n_envs, n_quantiles)`` sorted critic quantiles at the observation after the rollout.
    :param last_dones: ``(n_envs,)`` whether the rollout's last step ended an episode.
    :param gamma: discount factor.
    :param gae_lambda: λ in ``[0, 1]``.
    :return: ``(T, n_envs, n_quantiles)`` sorted atoms of each step's λ-return.
    """
    n_steps, n_quantiles = rewards.shape[0], quantiles.shape[-1]
    weights = np.concatenate(
        [np.full(n_quantiles, (1.0 - gae_lambda) / n_quantiles), np.full(n_quantiles, gae_lambda / n_quantiles)]
    )
    out = np.empty(quantiles.shape, dtype=np.float64)
    for step in reversed(range(n_steps)):
        if step == n_steps - 1:
            not_done = 1.0 - np.asarray(last_dones, dtype=np.float64)
            ahead = last_quantiles
        else:
            not_done = 1.0 - episode_starts[step + 1]
            ahead = project_mixture(np.concatenate([quantiles[step + 1], out[step + 1]], axis=1), weights, n_quantiles)
        out[step] = rewards[step][:, None] + gamma * not_done[:, None] * ahead
    return out
