"""Forward+backward time per 2048-sample batch and parameter counts of the policies, as a table.

    python benchmarks/policy_speed.py             # window 32, 10 assets
    python benchmarks/policy_speed.py --quick     # fewer repeats

Each policy evaluates a 2048-sample batch of MultiAsset-v0 observations (``evaluate_actions``:
features, actor and critic), then backpropagates ``values.mean() + log_prob.mean()`` -- the work
of one PPO minibatch. Runs on CPU, and on CUDA too when it is available.
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import PPO

import sb3_trading  # noqa: F401  (env IDs and policy aliases)
from sb3_trading.data import make_regime_market

POLICIES = {
    "MLP (MultiInputPolicy)": ("MultiInputPolicy", {"net_arch": [64, 64]}),
    "LSTM (LstmPolicy)": ("LstmPolicy", {"net_arch": [64], "features_extractor_kwargs": {"hidden_size": 64}}),
    "Transformer (TransformerPolicy)": (
        "TransformerPolicy",
        {"net_arch": [64], "features_extractor_kwargs": {"d_model": 64, "n_heads": 4, "n_layers": 2}},
    ),
}


@dataclass
class Args:
    window: int = 32
    n_assets: int = 10
    batch_size: int = 2048
    repeats: int = 10
    seed: int = 0


def time_policy(policy: str, kwargs: dict, env: gym.Env, device: str, args: Args) -> tuple[float, int]:
    """Median seconds of one forward+backward pass over ``batch_size`` samples, and the parameter count."""
    th.manual_seed(args.seed)
    model = PPO(policy, env, policy_kwargs=kwargs, device=device, seed=args.seed)
    rng = np.random.default_rng(args.seed)
    space = env.observation_space
    obs = {key: rng.standard_normal((args.batch_size, *space[key].shape)).astype(np.float32) for key in space}
    obs_tensor, _ = model.policy.obs_to_tensor(obs)
    actions = th.as_tensor(rng.uniform(-1, 1, (args.batch_size, *env.action_space.shape)), device=model.device)
    model.policy.set_training_mode(True)
    times = []
    for i in range(args.repeats + 2):
        start = time.perf_counter()
        values, log_prob, _ = model.policy.evaluate_actions(obs_tensor, actions)
        (values.mean() + log_prob.mean()).backward()
        model.policy.optimizer.zero_grad()
        if model.device.type == "cuda":
            th.cuda.synchronize()
        if i >= 2:  # warm-up
            times.append(time.perf_counter() - start)
    return statistics.median(times), sum(p.numel() for p in model.policy.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--window", type=int, default=Args.window)
    cli = parser.parse_args()
    args = Args(window=cli.window, repeats=3 if cli.quick else Args.repeats)
    data = make_regime_market(n_steps=400, n_assets=args.n_assets, seed=args.seed)
    env = gym.make("sb3_trading/MultiAsset-v0", data=data, window=args.window)
    devices = ["cpu"] + (["cuda"] if th.cuda.is_available() else [])
    shape = env.observation_space["market"].shape
    threads = th.get_num_threads()
    print(f"# policy speed: batch {args.batch_size}, market window {shape}, torch {th.__version__}, threads {threads}")
    print(f"| {'policy':<32} | {'device':<6} | {'parameters':>10} | {'fwd+bwd ms':>10} | {'samples/s':>10} |")
    print(f"|{'-' * 34}|{'-' * 8}|{'-' * 12}|{'-' * 12}|{'-' * 12}|")
    for name, (policy, kwargs) in POLICIES.items():
        for device in devices:
            seconds, n_params = time_policy(policy, kwargs, env, device, args)
            rate = args.batch_size / seconds
            print(f"| {name:<32} | {device:<6} | {n_params:>10,} | {seconds * 1e3:>10.1f} | {rate:>10,.0f} |")


if __name__ == "__main__":
    main()
