"""PPO and QuantilePPO on the batched env: timesteps/s with ``device="cuda"`` beside ``device="cpu"``, same machine.

    bash benchmarks/gpu_check.sh          # on a machine with a CUDA GPU (prints a markdown table)
    python benchmarks/gpu_check.py --quick

Each row trains ``MultiInputPolicy`` ([64, 64]) on ``sb3_trading.vec.make_vec_env("sb3_trading/MultiAsset-v0",
n_envs)`` (10 assets) for two rollouts after one warm-up rollout (CUDA context, kernel caches), with
``n_steps = max(2048 // n_envs, 16)`` and four minibatches per epoch, and reports the timesteps/s of the
timed rollouts (collection and updates). Record the figures in ``benchmarks/results/gpu.md`` with the date and
the GPU.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch as th
from stable_baselines3 import PPO

from sb3_trading.algos import QuantilePPO
from sb3_trading.data import make_regime_market
from sb3_trading.vec import make_vec_env


def timesteps_per_second(algo: type, n_envs: int, device: str, rollouts: int, seed: int = 0) -> float:
    """Timesteps/s of ``rollouts`` PPO iterations of ``algo`` on ``n_envs`` batched accounts after one warm-up."""
    data = make_regime_market(n_assets=10, seed=seed)
    vec = make_vec_env("sb3_trading/MultiAsset-v0", n_envs, seed=seed, env_kwargs={"data": data, "episode_length": 256})
    n_steps = max(2048 // n_envs, 16)
    model = algo(
        "MultiInputPolicy",
        vec,
        n_steps=n_steps,
        batch_size=n_steps * n_envs // 4,
        n_epochs=4,
        policy_kwargs={"net_arch": [64, 64]},
        seed=seed,
        device=device,
    )
    model.learn(n_steps * n_envs)  # warm-up rollout
    if device == "cuda":
        th.cuda.synchronize()
    start = time.perf_counter()
    model.learn(rollouts * n_steps * n_envs, reset_num_timesteps=False)
    if device == "cuda":
        th.cuda.synchronize()
    return rollouts * n_steps * n_envs / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one timed rollout, 64 accounts only")
    parser.add_argument("--cpu-only", action="store_true", help="skip CUDA (to try the script on a CPU machine)")
    cli = parser.parse_args()
    if not cli.cpu_only and not th.cuda.is_available():
        raise SystemExit("gpu_check: torch sees no CUDA device (torch.cuda.is_available() is False); use --cpu-only to try it")
    devices = ["cpu"] if cli.cpu_only else ["cuda", "cpu"]
    gpu = th.cuda.get_device_name(0) if not cli.cpu_only else "none"
    print(
        f"# gpu_check: {time.strftime('%Y-%m-%d')}, GPU {gpu}, torch {th.__version__}, {platform.machine()}, "
        f"{th.get_num_threads()} CPU threads"
    )
    print("| algo | n_envs | device | timesteps/s |")
    print("|---|---|---|---|")
    for algo in (PPO, QuantilePPO):
        for n_envs in (64,) if cli.quick else (64, 1024):
            for device in devices:
                rate = timesteps_per_second(algo, n_envs, device, rollouts=1 if cli.quick else 2)
                print(f"| {algo.__name__} | {n_envs} | {device} | {rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
