"""Batched vectorised envs: many accounts on one market, stepped by one compiled kernel.

SB3's ``DummyVecEnv`` steps ``n_envs`` Gymnasium envs one by one in Python. Every sb3_trading env's
dynamics are a batched kernel (:data:`SUPPORTED_ENV_IDS`), so :func:`make_vec_env` returns a
:class:`BatchedVecEnv` that steps every account in one call of the *same* kernel the single env
runs, with SB3's ``VecEnv`` conventions (auto-reset, ``terminal_observation``,
``TimeLimit.truncated``, Monitor-style ``episode`` infos). Its ``infos`` are lean
(:class:`StepInfos`): ``infos.arrays`` holds the step's standard keys as ``(n_envs,)`` arrays, and
``infos[i]`` is built when read::

    from sb3_contrib import MaskablePPO
    from stable_baselines3 import PPO
    from sb3_trading.vec import make_vec_env

    kwargs = {"episode_length": 256, "random_start": True}
    vec_env = make_vec_env("sb3_trading/MultiAsset-v0", n_envs=64, seed=0, env_kwargs=kwargs)
    PPO("MultiInputPolicy", vec_env).learn(100_000)  # ep_rew_mean is logged: no VecMonitor needed

    masked = make_vec_env("sb3_trading/MaskedTrading-v0", n_envs=64, seed=0)
    MaskablePPO("MultiInputPolicy", masked).learn(100_000)  # masks via masked.env_method("action_masks")

It equals ``stable_baselines3.common.env_util.make_vec_env(env_id, n_envs, seed=seed,
env_kwargs=env_kwargs)`` step for step. ``make_vec_env(..., monitor=False)`` drops the ``episode``
infos (wrap in ``VecMonitor`` instead). Gymnasium wrappers (e.g. the reward wrappers) cannot run
batched; ``VecEnvWrapper``s (``VecNormalize``, ``VecMonitor``, ``VecFrameStack``) work.

SB3's ``make_vec_env`` and rl-zoo3 take it as a ``vec_env_cls``: :class:`BatchedVecEnvFromFns`
builds the batched env from the first env factory. rl-zoo3's ``--vec-env`` only offers
``dummy``/``subproc``; call :func:`use_in_rl_zoo` in a launcher before rl-zoo3's ``train()`` (it sets
``ExperimentManager.default_vec_env_cls``, which ``create_envs`` and ``enjoy`` use for the train and
eval envs)::

    from sb3_trading.vec import use_in_rl_zoo
    from rl_zoo3.train import train

    use_in_rl_zoo()
    train()  # python launcher.py --algo ppo --env sb3_trading/MultiAsset-v0 --gym-packages sb3_trading ...
"""

from sb3_trading.vec.batched import (
    ENV_METHODS,
    SUPPORTED_ENV_IDS,
    BatchedVecEnv,
    BatchedVecEnvFromFns,
    make_vec_env,
    use_in_rl_zoo,
)
from sb3_trading.vec.compile import compile_kernels
from sb3_trading.vec.infos import LazyInfo, StepInfos

__all__ = [
    "ENV_METHODS",
    "SUPPORTED_ENV_IDS",
    "BatchedVecEnv",
    "BatchedVecEnvFromFns",
    "LazyInfo",
    "StepInfos",
    "compile_kernels",
    "make_vec_env",
    "use_in_rl_zoo",
]
