"""Environment and accounting-core throughput, printed as one table.

    python benchmarks/env_throughput.py            # full run (~1 minute)
    python benchmarks/env_throughput.py --quick    # a few seconds

Rows:
* ``MultiAsset-v0 (gym.make)``: one env with 10 assets, through ``gymnasium.make``
  (so with its ``OrderEnforcing``/``PassiveEnvChecker`` wrappers), random actions.
* ``accounting core, batch B``: ``Portfolio.trade_to`` + ``Portfolio.mark`` on ``B``
  portfolios of 10 assets; the figure is portfolio-steps/s (``B`` x batched steps/s).
* ``pandas-per-step reference``: a FinRL-style env that looks its prices up in a
  ``DataFrame`` every step, for scale (not part of the package).

Targets on the 2-core development machine: single env >= 30,000 steps/s;
core at batch 1024 >= 2,000,000 portfolio-steps/s.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pandas as pd

import sb3_trading  # noqa: F401  (registers the env IDs)
from sb3_trading.data import make_regime_market
from sb3_trading.sim import CostModel, Portfolio


@dataclass
class Args:
    n_assets: int = 10
    env_steps: int = 100_000
    core_seconds: float = 2.0
    pandas_steps: int = 2_000
    seed: int = 0


def best_rate(run: Callable[[], int], repeats: int = 3) -> float:
    """Best of ``repeats`` runs of ``run`` (which returns the units it did), in units per second."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        units = run()
        rates.append(units / (time.perf_counter() - start))
    return max(rates)


def bench_env(args: Args) -> float:
    env = gym.make("sb3_trading/MultiAsset-v0", data=make_regime_market(n_assets=args.n_assets, seed=args.seed))
    env.reset(seed=args.seed)
    actions = np.random.default_rng(args.seed).uniform(-1, 1, size=(1024, args.n_assets)).astype(np.float32)

    def run() -> int:
        for i in range(args.env_steps):
            _, _, terminated, truncated, _ = env.step(actions[i % 1024])
            if terminated or truncated:
                env.reset()
        return args.env_steps

    return best_rate(run)


def bench_core(args: Args, n_envs: int) -> float:
    rng = np.random.default_rng(args.seed)
    book = Portfolio(n_envs, args.n_assets, CostModel(10.0, 2.0))
    book.reset(1e6)
    prices = rng.uniform(50, 150, size=(64, n_envs, args.n_assets))
    targets = rng.uniform(-5_000, 5_000, size=(64, n_envs, args.n_assets))

    def run() -> int:
        steps, deadline = 0, time.perf_counter() + args.core_seconds / 3
        while time.perf_counter() < deadline:
            for k in range(64):
                book.trade_to(targets[k], prices[k])
                book.mark(prices[(k + 1) % 64])
            steps += 64
        return steps * n_envs

    return best_rate(run)


TECH = ("macd", "rsi", "cci", "dx", "boll_ub", "boll_lb", "sma_30", "sma_60")


class PandasStepEnv:
    """FinRL-style reference: a long DataFrame indexed by day, ``df.loc[day, :]`` every step,
    the state built as Python lists, and trades executed in a Python loop over assets."""

    def __init__(self, data) -> None:
        frames = []
        for j, name in enumerate(data.asset_names):
            frame = pd.DataFrame({"date": data.timestamps, "tic": name, "close": data.prices[:, j]})
            for column in TECH:
                frame[column] = data.prices[:, j]  # stand-in values: only the access pattern matters here
            frames.append(frame)
        df = pd.concat(frames).sort_values(["date", "tic"])
        df.index = df["date"].factorize()[0]
        self.df, self.n_days = df, int(df.index.max()) + 1
        self.day, self.cash, self.shares = 0, 1e6, [0.0] * data.n_assets

    def _state(self) -> list[float]:
        today = self.df.loc[self.day, :]
        return (
            [self.cash]
            + today.close.values.tolist()
            + list(self.shares)
            + sum((today[tech].values.tolist() for tech in TECH), [])
        )

    def step(self, action: np.ndarray) -> float:
        n = len(self.shares)
        state = self._state()
        prices = state[1 : n + 1]
        equity = self.cash + sum(s * p for s, p in zip(self.shares, prices, strict=True))
        for i in range(n):  # FinRL's per-asset buy/sell loop
            target = equity / n * float(action[i]) / prices[i]
            trade = target - self.shares[i]
            self.cash -= trade * prices[i] + 0.001 * abs(trade) * prices[i]
            self.shares[i] = target
        self.day = (self.day + 1) % (self.n_days - 1)
        tomorrow = self._state()[1 : n + 1]
        return (self.cash + sum(s * p for s, p in zip(self.shares, tomorrow, strict=True))) / equity - 1.0


def bench_pandas(args: Args) -> float:
    env = PandasStepEnv(make_regime_market(n_assets=args.n_assets, seed=args.seed))
    action = np.full(args.n_assets, 0.5)

    def run() -> int:
        for _ in range(args.pandas_steps):
            env.step(action)
        return args.pandas_steps

    return best_rate(run, repeats=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run for CI")
    parser.add_argument("--n-assets", type=int, default=Args.n_assets)
    cli = parser.parse_args()
    args = Args(n_assets=cli.n_assets)
    if cli.quick:
        args = Args(n_assets=cli.n_assets, env_steps=5_000, core_seconds=0.3, pandas_steps=200)

    rows = [("MultiAsset-v0 (gym.make), 1 env", "steps/s", bench_env(args), 30_000)]
    for n_envs in (1, 64, 1024):
        target = 2_000_000 if n_envs == 1024 else None
        rows.append((f"accounting core, batch {n_envs}", "portfolio-steps/s", bench_core(args, n_envs), target))
    rows.append(("pandas-per-step reference, 1 env", "steps/s", bench_pandas(args), None))

    print(
        f"# env throughput: {args.n_assets} assets, {platform.processor() or platform.machine()}, "
        f"numpy {np.__version__}, python {platform.python_version()}"
    )
    print(f"| {'what':<36} | {'unit':<17} | {'rate':>12} | {'target':>10} | met |")
    print(f"|{'-' * 38}|{'-' * 19}|{'-' * 14}|{'-' * 12}|-----|")
    for name, unit, rate, target in rows:
        met = "" if target is None else ("yes" if rate >= target else "NO")
        target_text = "" if target is None else f"{target:,}"
        print(f"| {name:<36} | {unit:<17} | {rate:>12,.0f} | {target_text:>10} | {met:>3} |")


if __name__ == "__main__":
    main()
