"""Environment and accounting-core throughput, printed as one table.

    python benchmarks/env_throughput.py            # full run (~1 minute)
    python benchmarks/env_throughput.py --quick    # a few seconds
    python benchmarks/env_throughput.py --frictions  # only the market-rules rows (issue 20)

Rows:
* ``gym-anytrading stocks-v0, 1 env``: the peer env, same machine, same run
  (``pip install "sb3-trading[bench]"``).
* ``<Env> 1 env``: every registered sb3_trading env through ``gymnasium.make`` (so with its
  ``OrderEnforcing``/``PassiveEnvChecker`` wrappers), 10 assets where it trades several, random
  actions, resets included, with the ratio to stocks-v0.
* ``accounting core, batch B``: ``Portfolio.trade_to`` + ``Portfolio.mark`` on ``B``
  portfolios of 10 assets; the figure is portfolio-steps/s (``B`` x batched steps/s).
* ``pandas-per-step reference``: a FinRL-style env that looks its prices up in a
  ``DataFrame`` every step, for scale (not part of the package).
* ``<Env> DummyVecEnv x64`` / ``<Env> batched x64`` / ``x1024``: env-steps/s of 64 envs in SB3's
  ``DummyVecEnv`` (Monitor-wrapped ``gymnasium.make`` envs, as ``make_vec_env`` builds them) and of 64
  and 1,024 accounts in :class:`sb3_trading.vec.BatchedVecEnv` (the same compiled kernels over the
  whole batch, lean infos), random actions, auto-resets included; MultiAsset with 10 assets and
  256-step random-start episodes, the other envs with their defaults.
* ``cold start``: seconds for the first ``gymnasium.make`` + reset + step of every env and the first
  batched step of every batched env, in a fresh process, with an empty numba cache (every kernel
  compiled) and again with the cache it left (warm; the package's own cache is not touched).
* ``PPO x64 ...: env / learn`` and ``env / rollouts``: the share of ``PPO("MultiInputPolicy").learn``
  wall time, and of its rollout collection (``collect_rollouts``), spent in ``step_wait`` (64 envs,
  ``n_steps=256``, ``batch_size=256``, 10 epochs, ``net_arch=[64, 64]``, CPU with ``--torch-threads``
  (default 1) threads, two iterations).
  Measured interleaved: each DummyVecEnv/batched pair alternates its repeats, so both see the same load.

* ``<Env> every friction on / defaults``: the same env with every market rule it models switched on
  (:data:`FRICTIONS`: fees, spread, impact, participation, lots, financing, margin, brackets where the env
  takes them) against its defaults, single env and batched x64, measured in alternation; target (issue 20)
  >= 0.7x.

Targets (issue 19), as ratios to stocks-v0 measured in the same run: every single env >= 0.3x;
every batched env >= 4x at 64 accounts and >= 15x at 1,024; cold start <= 15 s, warm <= 1 s. Also:
core at batch 1024 >= 2,000,000 portfolio-steps/s; batched VecEnv >= 20x DummyVecEnv at 64 envs;
env stepping < 5 % of PPO's wall time with the batched VecEnv (``training_profile.py`` has the
DummyVecEnv x8 and large-batch rows).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

import sb3_trading
from sb3_trading.data import make_regime_market
from sb3_trading.sim import CostModel, Portfolio
from sb3_trading.vec import SUPPORTED_ENV_IDS, make_vec_env


@dataclass
class Args:
    n_assets: int = 10
    env_steps: int = 100_000
    core_seconds: float = 2.0
    pandas_steps: int = 2_000
    n_envs: int = 64
    large_n_envs: int = 1024
    batched_steps: int = 1_000  # batched VecEnv steps (x n_envs env-steps) per repeat
    dummy_steps: int = 100  # DummyVecEnv steps per repeat
    ppo_timesteps: int = 2 * 64 * 256  # two PPO iterations of n_steps=256 x 64 envs
    # torch intra-op threads for the PPO rows: on a busy 2-core machine two threads spin against each
    # other (and the env) and PPO runs many times slower, which would understate the env's share
    torch_threads: int = 1
    seed: int = 0


def best_rate(run: Callable[[], int], repeats: int = 3) -> float:
    """Best of ``repeats`` runs of ``run`` (which returns the units it did), in units per second."""
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        units = run()
        rates.append(units / (time.perf_counter() - start))
    return max(rates)


def single_env_kwargs(env_id: str, args: Args) -> dict:
    """Each env with ``n_assets`` assets where it trades several (its own defaults otherwise)."""
    from sb3_trading.data.yield_market import make_yield_market

    if env_id.endswith(("MultiAsset-v0", "MarketImpact-v0")):
        return {"data": make_regime_market(n_assets=args.n_assets, seed=args.seed)}
    if env_id.endswith("YieldAllocation-v0"):
        return {"data": make_yield_market(n_assets=args.n_assets, seed=args.seed)}
    return {}


def bench_single(env: gym.Env, args: Args, repeats: int = 5) -> float:
    """Steps/s of one env through its ``gym.make`` wrappers, random actions, resets included."""
    env.reset(seed=args.seed)
    env.action_space.seed(args.seed)
    actions = [env.action_space.sample() for _ in range(1024)]

    def run() -> int:
        for i in range(args.env_steps):
            _, _, terminated, truncated, _ = env.step(actions[i % 1024])
            if terminated or truncated:
                env.reset()
        return args.env_steps

    # best of 5: on a shared (virtual) machine single runs vary by +-20 %, the best is the least disturbed
    return best_rate(run, repeats=repeats)


def make_anytrading() -> gym.Env:
    """gym-anytrading's ``stocks-v0`` (``pip install "sb3-trading[bench]"``)."""
    try:
        import gym_anytrading  # noqa: F401  (registers stocks-v0)
    except ImportError as exc:
        raise ImportError('the gym-anytrading comparison needs it: pip install "sb3-trading[bench]"') from exc
    return gym.make("stocks-v0")


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


#: the cold-start probe: first make + reset + step of every env, first batched step of every batched env
COLD_START = "from sb3_trading.vec import compile_kernels; print(compile_kernels())"


def bench_cold_start() -> tuple[float, float]:
    """Seconds of :data:`COLD_START` in a fresh process with an empty numba cache, then with the cache it wrote."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        seconds = []
        for _ in range(2):
            result = subprocess.run([sys.executable, "-c", COLD_START], env=env, capture_output=True, text=True, check=True)
            seconds.append(float(result.stdout.split()[-1]))
    return seconds[0], seconds[1]


def vec_env_kwargs(env_id: str, args: Args) -> dict:
    """The env arguments of the VecEnv rows: 10-asset MultiAsset with training-style episodes, the others' defaults."""
    if env_id.endswith("MultiAsset-v0"):
        data = make_regime_market(n_assets=args.n_assets, seed=args.seed)
        return {"data": data, "episode_length": 256, "random_start": True}
    return {}


#: every cost a fill can carry (issue 20); each env below takes the ones it models
ALL_COSTS: dict[str, float] = {
    "commission_bps": 5,
    "slippage_bps": 2,
    "fixed_fee": 0.5,
    "min_fee": 1.0,
    "half_spread_bps": 1.0,
    "impact_k": 0.5,
    "participation": 0.2,
    "lot_size": 1.0,
}
LINEAR_COSTS = ("commission_bps", "slippage_bps", "half_spread_bps")
#: the costs of an order that depend on its size beyond proportion (the discrete envs' masks price them exactly)
ORDER_COSTS = ("fixed_fee", "min_fee", "impact_k")


def pick(*keys: str) -> dict[str, float]:
    """The entries of :data:`ALL_COSTS` named by ``keys``."""
    return {key: ALL_COSTS[key] for key in keys}


#: the account rules (financing, margin, brackets) of the envs that model them
ACCOUNT_RULES: dict[str, dict] = {
    "financing": {"cash_rate": 0.04, "loan_rate": 0.07, "borrow_bps": 50.0},
    "margin": {"max_leverage": 2.0, "maintenance_margin": 0.2},
    "brackets": {"stop_loss": 0.02, "take_profit": 0.04},
}

#: every market rule each env models (issue 20), for the ``every friction on`` rows
FRICTIONS: dict[str, dict] = {
    "sb3_trading/MultiAsset-v0": {"costs": ALL_COSTS, **ACCOUNT_RULES},
    "sb3_trading/LeveragedPair-v0": {"costs": ALL_COSTS, **ACCOUNT_RULES},
    "sb3_trading/MaskedTrading-v0": {"costs": pick(*LINEAR_COSTS, *ORDER_COSTS), **ACCOUNT_RULES},
    "sb3_trading/SingleAsset-v0": {"costs": pick(*LINEAR_COSTS, *ORDER_COSTS), **ACCOUNT_RULES},
    "sb3_trading/YieldAllocation-v0": {
        "costs": pick(*LINEAR_COSTS, "fixed_fee", "min_fee"),
        "financing": ACCOUNT_RULES["financing"],
        "brackets": ACCOUNT_RULES["brackets"],
        "rebalance_band": 0.02,
    },
    "sb3_trading/MarketImpact-v0": {
        "costs": pick("commission_bps", "slippage_bps", "fixed_fee", "min_fee"),
        "financing": ACCOUNT_RULES["financing"],
    },
}


def bench_frictions(args: Args) -> list[tuple]:
    """Rows of each env with :data:`FRICTIONS` on vs its defaults: single env and batched x ``n_envs``, alternated."""
    rows = []
    for env_id, frictions in FRICTIONS.items():
        name, single_kwargs = env_id.split("/")[1], single_env_kwargs(env_id, args)
        envs = [gym.make(env_id, **single_kwargs), gym.make(env_id, **single_kwargs, **frictions)]
        steps = args.env_steps // 5
        best = [0.0, 0.0]
        for _ in range(5):
            for k, env in enumerate(envs):
                best[k] = max(best[k], bench_single(env, Args(**{**args.__dict__, "env_steps": steps}), repeats=1))
        rows.append((f"{name} 1 env, every friction on / defaults", "x", best[1] / best[0], 0.7))
        kwargs = vec_env_kwargs(env_id, args)
        vecs = [make_vec_env(env_id, args.n_envs, seed=args.seed, env_kwargs=kw) for kw in (kwargs, {**kwargs, **frictions})]
        runs = [vec_runner(v, args.batched_steps, args.seed) for v in vecs]
        best = [0.0, 0.0]
        for _ in range(5):
            for k, run in enumerate(runs):
                best[k] = max(best[k], best_rate(run, repeats=1))
        rows.append((f"{name} batched x{args.n_envs}, every friction on / defaults", "x", best[1] / best[0], 0.7))
    return rows


def make_dummy(env_id: str, n_envs: int, seed: int, kwargs: dict) -> VecEnv:
    """What ``stable_baselines3.common.env_util.make_vec_env`` builds: Monitor-wrapped envs in a DummyVecEnv."""
    venv = DummyVecEnv([lambda: Monitor(gym.make(env_id, **kwargs))] * n_envs)
    venv.seed(seed)
    return venv


def vec_runner(venv: VecEnv, steps: int, seed: int) -> Callable[[], int]:
    """A run of ``steps`` steps of ``venv`` under random actions (auto-resets included); returns the env-steps."""
    venv.reset()
    space, n = venv.action_space, venv.num_envs
    rng = np.random.default_rng(seed)
    if isinstance(space, gym.spaces.Discrete):
        actions = [rng.integers(0, space.n, size=n) for _ in range(64)]
    else:
        actions = [rng.uniform(space.low, space.high, size=(n, *space.shape)).astype(np.float32) for _ in range(64)]

    def run() -> int:
        for i in range(steps):
            venv.step(actions[i % 64])
        return steps * n

    return run


def bench_vec_pair(dummy: VecEnv, batched: VecEnv, args: Args, repeats: int = 5) -> tuple[float, float]:
    """Best env-steps/s of a DummyVecEnv and a batched VecEnv, measured in alternation (so both see the same load)."""
    runs = (vec_runner(dummy, args.dummy_steps, args.seed), vec_runner(batched, args.batched_steps, args.seed))
    best = [0.0, 0.0]
    for _ in range(repeats):
        for k, run in enumerate(runs):
            best[k] = max(best[k], best_rate(run, repeats=1))
    return best[0], best[1]


def bench_ppo(venv: VecEnv, args: Args) -> tuple[float, float, float]:
    """Seconds of ``PPO.learn`` spent in ``venv.step_wait``, in rollout collection, and in total."""
    timers = {"env": 0.0, "rollout": 0.0}

    def timed(name: str, fn: Callable) -> Callable:
        def wrapper(*a, **k):  # noqa: ANN002, ANN003, ANN202
            start = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                timers[name] += time.perf_counter() - start

        return wrapper

    venv.step_wait = timed("env", venv.step_wait)  # type: ignore[method-assign]
    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(args.seed)
    model = PPO(
        "MultiInputPolicy",
        venv,
        n_steps=256,
        batch_size=256,
        n_epochs=10,
        policy_kwargs={"net_arch": [64, 64]},
        seed=args.seed,
        device="cpu",
    )
    model.collect_rollouts = timed("rollout", model.collect_rollouts)  # type: ignore[method-assign]
    start = time.perf_counter()
    model.learn(args.ppo_timesteps)
    return timers["env"], timers["rollout"], time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short run for CI")
    parser.add_argument("--n-assets", type=int, default=Args.n_assets)
    parser.add_argument("--frictions", action="store_true", help="only the every-friction-on rows (issue 20)")
    parser.add_argument("--torch-threads", type=int, default=Args.torch_threads, help="torch threads of the PPO rows")
    cli = parser.parse_args()
    args = Args(n_assets=cli.n_assets, torch_threads=cli.torch_threads)
    if cli.quick:
        quick = {"env_steps": 5_000, "core_seconds": 0.3, "pandas_steps": 200, "batched_steps": 100, "dummy_steps": 10}
        args = Args(n_assets=cli.n_assets, torch_threads=cli.torch_threads, ppo_timesteps=64 * 256, **quick)

    rows = bench_frictions(args)
    for n_envs in () if cli.frictions else (1, 64, 1024):
        target = 2_000_000 if n_envs == 1024 else None
        rows.append((f"accounting core, batch {n_envs}", "portfolio-steps/s", bench_core(args, n_envs), target))
    if cli.frictions:
        print_table(args, rows)
        return
    rows.append(("pandas-per-step reference, 1 env", "steps/s", bench_pandas(args), None))
    anytrading = bench_single(make_anytrading(), args)
    rows.append(("gym-anytrading stocks-v0, 1 env", "steps/s", anytrading, None))
    for env_id in sorted(sb3_trading.ENV_ENTRY_POINTS):
        rate = bench_single(gym.make(env_id, **single_env_kwargs(env_id, args)), args)
        rows.append(
            (f"{env_id.split('/')[1]} 1 env ({rate / anytrading:.2f}x stocks-v0)", "steps/s", rate, round(0.3 * anytrading))
        )
    n = args.n_envs
    for env_id in SUPPORTED_ENV_IDS:
        name, kwargs = env_id.split("/")[1], vec_env_kwargs(env_id, args)
        batched_env = make_vec_env(env_id, n, seed=args.seed, env_kwargs=kwargs)
        dummy, batched = bench_vec_pair(make_dummy(env_id, n, args.seed, kwargs), batched_env, args)
        rows.append((f"{name} DummyVecEnv x{n}", "env-steps/s", dummy, None))
        rows.append((f"{name} batched x{n} ({batched / dummy:.1f}x)", "env-steps/s", batched, round(20 * dummy)))
        rows.append(
            (f"{name} batched x{n} vs stocks-v0 ({batched / anytrading:.1f}x)", "env-steps/s", batched, round(4 * anytrading))
        )
        large = make_vec_env(env_id, args.large_n_envs, seed=args.seed, env_kwargs=kwargs)
        rate = best_rate(vec_runner(large, max(args.batched_steps // 16, 10), args.seed), repeats=3)
        rows.append(
            (
                f"{name} batched x{args.large_n_envs} vs stocks-v0 ({rate / anytrading:.1f}x)",
                "env-steps/s",
                rate,
                round(15 * anytrading),
            )
        )
    cold, warm = bench_cold_start()
    rows.append(("cold start, all envs, empty numba cache", "s", cold, -15))
    rows.append(("cold start, all envs, warm numba cache", "s", warm, -1))
    env_id, kwargs = SUPPORTED_ENV_IDS[0], vec_env_kwargs(SUPPORTED_ENV_IDS[0], args)
    for label, venv in (
        ("batched", make_vec_env(env_id, n, seed=args.seed, env_kwargs=kwargs)),
        ("DummyVecEnv", make_dummy(env_id, n, args.seed, kwargs)),
    ):
        env_s, rollout_s, total_s = bench_ppo(venv, args)
        what = f"PPO x{n} MultiAsset, {label}: env"
        target = -5 if label == "batched" else None  # DummyVecEnv is the reference
        rows.append((f"{what} / learn ({env_s:.2f} of {total_s:.0f} s)", "% of wall time", 100 * env_s / total_s, target))
        rows.append((f"{what} / rollouts ({rollout_s:.1f} s)", "% of wall time", 100 * env_s / rollout_s, None))
    print_table(args, rows)


def print_table(args: Args, rows: list[tuple]) -> None:
    """The rows ``(what, unit, rate, target)`` as a Markdown table (a negative target is an upper bound)."""
    print(
        f"# env throughput: {args.n_assets} assets, {platform.processor() or platform.machine()}, "
        f"numpy {np.__version__}, python {platform.python_version()}"
    )
    print(f"| {'what':<60} | {'unit':<17} | {'rate':>12} | {'target':>12} | met |")
    print(f"|{'-' * 62}|{'-' * 19}|{'-' * 14}|{'-' * 14}|-----|")
    for name, unit, rate, target in rows:
        # a negative target is an upper bound ("< 5 %"), a positive one a lower bound
        met = "" if target is None else ("yes" if (rate >= target if target > 0 else rate < -target) else "NO")
        target_text = "" if target is None else (f"{target:,}" if target > 0 else f"< {-target}")
        rate_text = f"{rate:,.0f}" if rate >= 100 else f"{rate:.2f}"
        print(f"| {name:<60} | {unit:<17} | {rate_text:>12} | {target_text:>12} | {met:>3} |")


if __name__ == "__main__":
    main()
