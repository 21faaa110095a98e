"""What the causal default normaliser does to learning: PPO with each normaliser, several seeds.

    python benchmarks/normalizer_learning.py            # MultiAsset-v0, 3 seeds x 4 normalisers x 100k steps
    python benchmarks/normalizer_learning.py --timesteps 300000 --normalizers fit expanding
    python benchmarks/normalizer_learning.py --quick    # 1 seed x 2,048 steps, prints only (--results DIR writes)

Each run follows the main job (:func:`sb3_trading.training.train` defaults: PPO ``MultiInputPolicy``
``[64, 64]``, ``n_steps=256``, ``gamma=0.5``, 8 batched accounts with random-start episodes of 256 bars, the
first 80 % of the env's synthetic market seeded by the run's seed for training, the last 20 % held out)
and changes only the feature normaliser (:data:`NORMALIZERS`):

* ``fit``: a z-score fitted on the training slice (``normalizer="fit"`` on the probe env) and applied as is to
  the held-out slice -- the train-slice-fitted normaliser of the main job;
* ``expanding``: the envs' causal default, each row scaled with the statistics of all rows up to it (after a
  warm-up of ``min_periods=20`` rows); ``expanding, min_periods=252``: the same with a year of warm-up;
* ``rolling``: the causal rolling variant, the last 252 rows.

Every row is scored on the same held-out bars. *slice*: the test env gets the held-out slice plus the
look-back rows its warm-up needs (indicators, and a causal normaliser's ``min_periods``), as the walk-forward
does, so its first decision is the first held-out bar; a causal normaliser's statistics restart at the start
of that slice (the normaliser object carries no statistics). *history* (causal normalisers only): the test env
gets every row up to the end, which a causal normaliser may use, and only the held-out decisions are scored.
Buy-and-hold and the market's signal follower (holding ``sign(signal)``,
:func:`sb3_trading.data.make_regime_market`) over the same bars are the references. Prints a Markdown table
(mean ± std over seeds) and writes it to ``benchmarks/results/normalizer_learning.md``.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import os
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import PPO

import sb3_trading  # noqa: F401  (registers the IDs)
from sb3_trading.evaluation import backtest, buy_and_hold, compute_metrics
from sb3_trading.features import CausalNormalizer
from sb3_trading.training import DEFAULT_HYPERPARAMS, load_env_data, split_train_test
from sb3_trading.vec import make_vec_env

#: label -> the envs' ``normalizer=`` argument
NORMALIZERS: dict[str, Any] = {
    "fit": "fit",
    "expanding": "expanding",
    "rolling": "rolling",
    "expanding, min_periods=252": CausalNormalizer(min_periods=252),
}
METRICS = ("sharpe", "total_return", "max_drawdown")


@dataclass
class Args:
    env_id: str = "sb3_trading/MultiAsset-v0"
    seeds: tuple[int, ...] = (0, 1, 2)
    timesteps: int = 100_000
    normalizers: tuple[str, ...] = tuple(NORMALIZERS)
    n_envs: int = 8
    episode_length: int = 256
    test_fraction: float = 0.2
    output: Path = field(default_factory=lambda: Path(__file__).parent / "results" / "normalizer_learning.md")


class SignalFollower:
    """Holds ``sign(signal[asset])`` of the env's raw data at the current bar (the regime market's reference)."""

    def __init__(self, env: gym.Env) -> None:
        self.env = env.unwrapped

    def predict(self, obs: Any, state: Any = None, episode_start: Any = None, deterministic: bool = True) -> tuple:
        signal = self.env.data.features[self.env._t, : self.env.n_assets]
        return np.sign(signal).astype(np.float32), state


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002  (the legacy global generator, as SB3's set_random_seed seeds it)
    th.manual_seed(seed)


def one_run(args: Args, seed: int, normalizer_name: str) -> dict[str, dict[str, float]]:
    """Train once, backtest the held-out bars; ``{"slice": metrics}``, plus ``"history"`` for a causal normaliser."""
    seed_everything(seed)
    data = load_env_data(args.env_id, None, seed)
    train_data, test_data = split_train_test(data, args.test_fraction)
    probe = gym.make(args.env_id, data=train_data, normalizer=NORMALIZERS[normalizer_name])
    normalizer = probe.unwrapped.normalizer
    episode_length = min(args.episode_length, probe.unwrapped.last_t - probe.unwrapped.first_t)
    probe.close()
    env_kwargs = {"data": train_data, "normalizer": normalizer, "random_start": True, "episode_length": episode_length}
    vec_env = make_vec_env(args.env_id, n_envs=args.n_envs, seed=seed, env_kwargs=env_kwargs)
    hyperparams = copy.deepcopy(DEFAULT_HYPERPARAMS["ppo"])
    policy = hyperparams.pop("policy")
    model = PPO(policy, vec_env, seed=seed, device="cpu", verbose=0, **hyperparams)
    clock = time.perf_counter()
    model.learn(total_timesteps=args.timesteps)
    seconds = time.perf_counter() - clock
    vec_env.close()

    test_start = train_data.n_steps
    # look-back rows so that the first decision is the first held-out bar: the env's own warm-up on that data
    lookback = gym.make(args.env_id, data=test_data, normalizer=normalizer).unwrapped.first_t
    context = data.slice(test_start - lookback, data.n_steps)
    test_env = gym.make(args.env_id, data=context, normalizer=normalizer, random_start=False, episode_length=None)
    assert test_env.unwrapped.first_t == lookback, "the held-out backtest must start at the first held-out bar"
    agent = backtest(model, test_env, deterministic=True, name=normalizer_name)
    start, stop = int(agent.t[0]), int(agent.t[-1])
    costs = test_env.unwrapped.costs
    reference = buy_and_hold(context, start, stop, float(agent.equity[0]), costs)
    follower = backtest(SignalFollower(test_env), test_env, deterministic=True, name="signal_follower")
    test_env.close()
    follower_sharpe = float(follower.metrics["sharpe"])
    shared = {
        "buy_and_hold_sharpe": float(reference.metrics["sharpe"]),
        "follower_sharpe": follower_sharpe,
        "bars": stop - start,
        "fps": args.timesteps / seconds,
    }
    runs = {"slice": {**{name: float(agent.metrics[name]) for name in METRICS}, **shared}}
    if normalizer_name != "fit":
        # causal: the test env may see every row up to each held-out bar; only the held-out decisions are scored
        history_env = gym.make(args.env_id, data=data, normalizer=normalizer, random_start=False, episode_length=None)
        whole = backtest(model, history_env, deterministic=True, name=normalizer_name)
        history_env.close()
        held_out = whole.returns[whole.t[:-1] >= test_start]
        assert held_out.shape[0] == stop - start, "the history backtest must score the same held-out bars"
        metrics = compute_metrics(held_out, data.periods_per_year)
        runs["history"] = {**{name: float(metrics[name]) for name in METRICS}, **shared}
    for run in runs.values():
        run["skill"] = run["sharpe"] / follower_sharpe if follower_sharpe else float("nan")
    return runs


def mean_std(values: list[float], fmt: str = "{:+.3f}") -> str:
    array = np.asarray(values, dtype=np.float64)
    return f"{fmt.format(array.mean())} ± {fmt.format(array.std()).lstrip('+')}"


def run(args: Args) -> str:
    results: dict[str, list[dict[str, float]]] = {}
    for seed in args.seeds:
        for name in args.normalizers:
            for protocol, metrics in one_run(args, seed, name).items():
                results.setdefault(f"{name} ({protocol})", []).append(metrics)
                print(f"seed {seed} {name} ({protocol}): {metrics}", flush=True)
    first = next(iter(results.values()))
    lines = [
        f"# Feature normaliser vs learning: PPO on {args.env_id.split('/')[-1]}",
        "",
        f"{len(args.seeds)} seeds ({', '.join(map(str, args.seeds))}) x {args.timesteps:,} PPO steps per run, main-job "
        f"defaults (8 batched accounts, episodes of {args.episode_length} bars, 80/20 split of the seed's synthetic "
        f"market); held-out backtest of {int(first[0]['bars'])} bars, the same bars for every row. "
        f"sb3_trading {sb3_trading.__version__}, {platform.machine()}, python {platform.python_version()}, torch "
        f"{th.__version__} ({th.get_num_threads()} thread), {os.cpu_count()} CPU cores shared with other jobs, "
        f"{datetime.date.today().isoformat()}. Mean ± std over seeds.",
        "",
        "*slice*: the test env holds the held-out slice plus the look-back rows of its warm-up (a causal normaliser's",
        "statistics restart there). *history*: the test env holds every row up to the end (causal, so legitimate) and",
        "only the held-out decisions are scored (the book entering the held-out period is the one the policy held).",
        "",
        "| normaliser (test env) | held-out Sharpe | total return | max drawdown | skill (Sharpe / follower's) | fps |",
        "|---|---|---|---|---|---|",
    ]
    for name, runs in results.items():
        lines.append(
            f"| {name} | {mean_std([r['sharpe'] for r in runs])} | {mean_std([r['total_return'] for r in runs])} | "
            f"{mean_std([r['max_drawdown'] for r in runs])} | {mean_std([r['skill'] for r in runs], '{:+.2f}')} | "
            f"{np.mean([r['fps'] for r in runs]):,.0f} |"
        )
    lines += [
        "",
        f"References over the same bars: buy-and-hold Sharpe {mean_std([r['buy_and_hold_sharpe'] for r in first])}, "
        f"signal follower Sharpe {mean_std([r['follower_sharpe'] for r in first])}.",
        "",
        "Per seed (held-out Sharpe):",
        "",
        "| seed | " + " | ".join(results) + " |",
        "|---|" + "---|" * len(results),
    ]
    for i, seed in enumerate(args.seeds):
        lines.append(f"| {seed} | " + " | ".join(f"{runs[i]['sharpe']:+.3f}" for runs in results.values()) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="1 seed x 2,048 steps (a smoke test)")
    parser.add_argument("--timesteps", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--normalizers", nargs="+", choices=list(NORMALIZERS), default=None, metavar="NAME")
    parser.add_argument(
        "--results", type=Path, default=None, help="folder of normalizer_learning.md (default: benchmarks/results)"
    )
    ns = parser.parse_args(argv)
    th.set_num_threads(1)
    args = Args()
    if ns.quick:
        args.seeds, args.timesteps = (0,), 2_048
    if ns.timesteps is not None:
        args.timesteps = ns.timesteps
    if ns.seeds is not None:
        args.seeds = tuple(ns.seeds)
    if ns.normalizers is not None:
        args.normalizers = tuple(ns.normalizers)
    table = run(args)
    print(table)
    output = args.output if ns.results is None else ns.results / args.output.name
    if ns.quick and ns.results is None:
        output = None  # --quick only prints, unless told where to write
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(table)


if __name__ == "__main__":
    main()
