"""Tiny purpose-built envs with known answers, for testing distributional and risk-aware algorithms.

Like ``sb3_contrib.common.envs``: small, seeded, with analytic expectations in the docstrings.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class MixtureRewardEnv(gym.Env[np.ndarray, int]):
    """One-step episodes whose reward is drawn from a two-component Gaussian mixture.

    The observation is always ``[0.0]``; both actions are equivalent. The reward is
    ``N(mean_1, std_1)`` with probability ``weight_1``, else ``N(mean_2, std_2)``; the episode
    terminates after the step, so the return *is* the reward and :meth:`quantile` gives the
    analytic quantiles a distributional critic must learn.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(
        self, weight_1: float = 0.3, mean_1: float = -2.0, std_1: float = 0.3, mean_2: float = 3.0, std_2: float = 0.3
    ) -> None:
        if not 0.0 < weight_1 < 1.0 or std_1 <= 0 or std_2 <= 0:
            raise ValueError("need 0 < weight_1 < 1 and positive standard deviations")
        self.weight_1, self.mean_1, self.std_1, self.mean_2, self.std_2 = weight_1, mean_1, std_1, mean_2, std_2
        self.observation_space = spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)

    def cdf(self, x: float) -> float:
        """Mixture CDF at ``x``."""

        def normal_cdf(mean: float, std: float) -> float:
            return 0.5 * (1.0 + math.erf((x - mean) / (std * math.sqrt(2.0))))

        return self.weight_1 * normal_cdf(self.mean_1, self.std_1) + (1 - self.weight_1) * normal_cdf(self.mean_2, self.std_2)

    def quantile(self, tau: float) -> float:
        """Analytic ``tau``-quantile of the reward (bisection on the CDF to 1e-10)."""
        lo = min(self.mean_1, self.mean_2) - 20 * max(self.std_1, self.std_2)
        hi = max(self.mean_1, self.mean_2) + 20 * max(self.std_1, self.std_2)
        while hi - lo > 1e-10:
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if self.cdf(mid) < tau else (lo, mid)
        return 0.5 * (lo + hi)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        first = self.np_random.random() < self.weight_1
        mean, std = (self.mean_1, self.std_1) if first else (self.mean_2, self.std_2)
        return np.zeros(1, dtype=np.float32), float(self.np_random.normal(mean, std)), True, False, {}


class TwoArmRiskEnv(gym.Env[np.ndarray, int]):
    """Choose a safe or a risky arm, then collect its payoff: two steps per episode.

    Step 1 (observation ``[1, 0, 0]``): action 0 goes to the safe state ``[0, 1, 0]``, action 1 to the
    risky state ``[0, 0, 1]``; reward 0. Step 2 (any action): the safe arm pays ``safe_reward``; the
    risky arm pays ``win`` with probability ``1 - loss_prob`` and ``loss`` otherwise; then the episode
    terminates. Defaults: safe 1.0; risky 2.5 or -10 with probability 0.1 -> mean 1.25 (better than
    safe), CVaR at 10 % -10 (much worse). A risk-neutral learner should pick the risky arm, a
    CVaR(10 %) learner the safe one. Because the arm is chosen one step before the payoff, a critic's
    value of the two arm states enters the first step's advantage through bootstrapping.
    """

    metadata: dict[str, Any] = {"render_modes": []}
    START, SAFE, RISKY = 0, 1, 2

    def __init__(self, safe_reward: float = 1.0, win: float = 2.5, loss: float = -10.0, loss_prob: float = 0.1) -> None:
        self.safe_reward, self.win, self.loss, self.loss_prob = safe_reward, win, loss, loss_prob
        self.observation_space = spaces.Box(0.0, 1.0, shape=(3,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)
        self._state = self.START

    def _obs(self) -> np.ndarray:
        obs = np.zeros(3, dtype=np.float32)
        obs[self._state] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self._state = self.START
        return self._obs(), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self._state == self.START:
            self._state = self.RISKY if int(action) == 1 else self.SAFE
            return self._obs(), 0.0, False, False, {}
        if self._state == self.SAFE:
            reward = self.safe_reward
        else:
            reward = self.loss if self.np_random.random() < self.loss_prob else self.win
        return self._obs(), float(reward), True, False, {}


class RiskyBanditEnv(gym.Env[np.ndarray, int]):
    """A one-step bandit: a safe arm, and a risky arm of higher mean with a heavy left tail.

    Every episode is one step from the observation ``[1.0]``. Action 0 pays ``safe_reward``; action 1 pays
    ``win`` with probability ``1 - loss_prob`` and ``loss`` otherwise; then the episode terminates. Defaults:
    safe 1.0; risky +3 or -10 with probability 0.1 -> mean 1.7 (better than safe), CVaR at 10 % -10 (much
    worse). A risk-neutral learner should pick the risky arm, a CVaR(10 %) learner the safe one; the
    return *is* the reward, so no bootstrapping can carry the preference: only the policy's objective can.
    """

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, safe_reward: float = 1.0, win: float = 3.0, loss: float = -10.0, loss_prob: float = 0.1) -> None:
        if not 0.0 < loss_prob < 1.0:
            raise ValueError(f"loss_prob must be in (0, 1), got {loss_prob!r}")
        self.safe_reward, self.win, self.loss, self.loss_prob = safe_reward, win, loss, loss_prob
        self.observation_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32)
        self.action_space = spaces.Discrete(2)

    @property
    def risky_mean(self) -> float:
        """Expected payoff of the risky arm."""
        return (1.0 - self.loss_prob) * self.win + self.loss_prob * self.loss

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return np.ones(1, dtype=np.float32), {}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if int(action) == 0:
            reward = self.safe_reward
        else:
            reward = self.loss if self.np_random.random() < self.loss_prob else self.win
        return np.ones(1, dtype=np.float32), float(reward), True, False, {}


class MaskedRiskyBanditEnv(RiskyBanditEnv):
    """:class:`RiskyBanditEnv` with a third arm that always pays ``jackpot`` and is always masked.

    ``action_masks()`` is ``[True, True, False]``: a learner that honours masks chooses between the safe and
    the risky arm exactly as in :class:`RiskyBanditEnv`; one that ignores them would soon prefer the jackpot.
    ``info["invalid_action"]`` is true when the masked arm is taken (it then pays ``jackpot``).
    """

    JACKPOT = 2

    def __init__(self, jackpot: float = 100.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.jackpot = jackpot
        self.action_space = spaces.Discrete(3)

    def action_masks(self) -> np.ndarray:
        """``(3,)`` bool: the safe and risky arms are allowed, the jackpot never."""
        return np.array([True, True, False])

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        if int(action) == self.JACKPOT:
            return np.ones(1, dtype=np.float32), float(self.jackpot), True, False, {"invalid_action": True}
        obs, reward, terminated, truncated, _ = super().step(action)
        return obs, reward, terminated, truncated, {"invalid_action": False}
