"""Where PPO's wall time goes: env stepping vs policy inference vs gradient updates, per env.

    python benchmarks/training_profile.py                    # 5 envs: DummyVecEnv x8/x64, batched x64/x256/x1024
    python benchmarks/training_profile.py --quick            # fewer steps

Timers: ``VecEnv.step_wait`` (env stepping, including SB3's Monitor and, for DummyVecEnv, its
Python loop over envs), the policy's ``forward`` during rollouts (inference: obs -> tensor ->
actions/values), ``PPO.train`` (updates); "other" is the rest of ``learn`` (rollout buffer,
callbacks, obs conversion). The batched vectorised env (``sb3_trading.vec``) is profiled at 64 accounts
and with large batches, 256 and 1,024 accounts (one rollout of 16 steps per account, 4 minibatches
per epoch: the way to use many accounts per forward pass). PPO's ``n_steps`` is ``2048 // n_envs``
(at least 16) and its ``batch_size`` 256, or a quarter of the rollout for the large batches. Target
(issue 19): env stepping < 10 % of wall time with DummyVecEnv x8, rl-zoo3's default path.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper

import sb3_trading
from sb3_trading.vec import SUPPORTED_ENV_IDS

PARTS = ("env", "inference", "update")


@dataclass
class Args:
    timesteps: int = 40_000  # >= 2 rollouts of the largest batch (1,024 x 16)
    seed: int = 0


class TimedVecEnv(VecEnvWrapper):
    """Adds the seconds spent in ``step_wait`` to ``timers["env"]``."""

    def __init__(self, venv: VecEnv, timers: dict[str, float]) -> None:
        super().__init__(venv)
        self.timers = timers

    def reset(self) -> Any:
        return self.venv.reset()

    def step_wait(self) -> Any:
        start = time.perf_counter()
        result = self.venv.step_wait()
        self.timers["env"] += time.perf_counter() - start
        return result


def timed(function: Callable, timers: dict[str, float], key: str) -> Callable:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            timers[key] += time.perf_counter() - start

    return wrapper


def make_env(env_id: str, n_envs: int, batched: bool, seed: int) -> VecEnv:
    kwargs: dict[str, Any] = {"window": 30} if env_id.endswith("MaskedTrading-v0") else {}
    if batched:
        from sb3_trading.vec import make_vec_env as make_batched

        return make_batched(env_id, n_envs=n_envs, seed=seed, env_kwargs=kwargs)
    return make_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs={**kwargs, "render_mode": None})


def profile(env_id: str, n_envs: int, batched: bool, args: Args) -> dict[str, float]:
    timers: dict[str, float] = defaultdict(float)
    env = TimedVecEnv(make_env(env_id, n_envs, batched, args.seed), timers)
    n_steps = max(2048 // n_envs, 16)
    model = PPO(
        "MultiInputPolicy",
        env,
        n_steps=n_steps,
        batch_size=max(256, n_steps * n_envs // 4),
        policy_kwargs={"net_arch": [64, 64]},
        seed=args.seed,
        device="cpu",
    )
    model.train = timed(model.train, timers, "update")
    starts: list[float] = []

    def stop_clock(module: Any, inputs: Any, output: Any) -> None:
        timers["inference"] += time.perf_counter() - starts.pop()

    model.policy.register_forward_pre_hook(lambda module, inputs: starts.append(time.perf_counter()))
    model.policy.register_forward_hook(stop_clock)
    start = time.perf_counter()
    model.learn(args.timesteps)
    total = time.perf_counter() - start
    shares = {part: timers[part] / total for part in PARTS}
    shares["other"] = 1.0 - sum(shares.values())
    shares["fps"] = model.num_timesteps / total
    return shares


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    cli = parser.parse_args()
    args = Args(timesteps=2_048) if cli.quick else Args()
    large = (256, 1024) if not cli.quick else (256,)
    print(
        f"# PPO wall-time profile: {args.timesteps:,} steps, MultiInputPolicy [64, 64], {platform.machine()}, "
        f"torch {th.__version__} ({th.get_num_threads()} threads)"
    )
    print("| env | vec env | n_envs | env stepping | inference | update | other | fps |")
    print("|---|---|---|---|---|---|---|---|")
    for env_id in sorted(sb3_trading.ENV_ENTRY_POINTS):
        setups = [("DummyVecEnv", 8, False), ("DummyVecEnv", 64, False)]
        if env_id in SUPPORTED_ENV_IDS:
            setups += [("batched", n_envs, True) for n_envs in (64, *large)]
        for name, n_envs, batched in setups:
            s = profile(env_id, n_envs, batched, args)
            print(
                f"| {env_id.split('/')[1]} | {name} | {n_envs} | {s['env']:.1%} | {s['inference']:.1%} | "
                f"{s['update']:.1%} | {s['other']:.1%} | {s['fps']:,.0f} |"
            )


if __name__ == "__main__":
    main()
