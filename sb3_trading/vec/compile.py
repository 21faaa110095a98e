"""Compile every env's kernels ahead of use: what the first ``make`` and ``step`` of each env would do anyway.

numba compiles each kernel on its first call and caches the machine code beside the sources (or in
``NUMBA_CACHE_DIR``), so the first process to touch an env pays the compile time (about 20 s for all of them on
2 cores) and later ones load the cache in well under a second. Run :func:`compile_kernels` once where that first
process should not be a training run, for example while building a container image::

    python -c "from sb3_trading.vec import compile_kernels; compile_kernels()"
"""

from __future__ import annotations

import logging
import time

import gymnasium as gym
import numpy as np

from sb3_trading.envs.registration import ENV_ENTRY_POINTS
from sb3_trading.vec.batched import SUPPORTED_ENV_IDS, make_vec_env

logger = logging.getLogger(__name__)


def compile_kernels(n_envs: int = 4, seed: int = 0) -> float:
    """Make, reset and step every registered env once through ``gymnasium.make`` (default arguments, a random
    action), then the batched VecEnv of each (:func:`~sb3_trading.vec.make_vec_env`, ``n_envs`` accounts):
    every kernel the envs run with default arguments is compiled, or loaded from numba's cache.

    Options that switch on other rules (frictions, brackets, margin) run the same kernels; those that change an
    argument's type (another action mode) may compile one more form on first use.

    :param n_envs: accounts of each batched env.
    :param seed: seed of the envs and of their action spaces.
    :return: the seconds it took (about 20 s on 2 cores with an empty cache, under 1 s with a warm one).
    """
    start = time.perf_counter()
    for env_id in sorted(ENV_ENTRY_POINTS):
        env = gym.make(env_id)
        env.reset(seed=seed)
        env.action_space.seed(seed)
        env.step(env.action_space.sample())
        env.close()
    for env_id in SUPPORTED_ENV_IDS:
        vec = make_vec_env(env_id, n_envs, seed=seed)
        vec.reset()
        vec.action_space.seed(seed)
        vec.step(np.stack([vec.action_space.sample() for _ in range(n_envs)]))
        vec.close()
    seconds = time.perf_counter() - start
    logger.info("compiled the kernels of %d envs in %.1f s", len(ENV_ENTRY_POINTS), seconds)
    return seconds


__all__ = ["compile_kernels"]
