"""PPO vs QuantilePPO (mean) vs QuantilePPO (CVaR 10 %) on held-out data: seeds x envs, with bootstrap CIs.

    python benchmarks/compare_quantile_ppo.py            # 3 envs x 5 seeds x 3 variants x 32k steps (~15-20 min)
    python benchmarks/compare_quantile_ppo.py --quick    # 3 envs x 2 seeds x 2,048 steps, for CI

Each run is the main job (:func:`sb3_trading.training.train`, its default hyperparameters; QuantilePPO adds
``risk``/``alpha`` only): train on the first 80 % of the env's seeded synthetic market (``synthetic_seed=seed``),
backtest deterministically on the held-out 20 %. The three variants of a seed trade the same held-out bars,
so they are compared *paired*: the table gives, per env and variant, the mean over seeds of held-out total
return, Sharpe, CVaR 5 % and max drawdown, each with a 90 % bootstrap CI (stationary block bootstrap of the
held-out daily returns, resampled per seed and pooled); the second table gives the paired difference CVaR mode
minus mean mode (same resampled bars for both) of CVaR 5 % and total return. Written to
``benchmarks/results/compare_quantile_ppo.md`` with the machine and date.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch as th

from sb3_trading.algos import get_algo
from sb3_trading.evaluation import backtest
from sb3_trading.evaluation.bootstrap import default_mean_block, stationary_bootstrap_indices
from sb3_trading.training import TrainConfig, load_env_data, split_train_test, train

VARIANTS = {
    "PPO": ("ppo", {}),
    "QuantilePPO (mean)": ("qppo", {"risk": "mean"}),
    "QuantilePPO (CVaR 10 %)": ("qppo", {"risk": "cvar", "alpha": 0.1}),
}
MEAN, CVAR = "QuantilePPO (mean)", "QuantilePPO (CVaR 10 %)"
TAIL = 0.05


@dataclass
class Args:
    env_ids: tuple[str, ...] = ("sb3_trading/YieldAllocation-v0", "sb3_trading/MultiAsset-v0", "sb3_trading/MarketImpact-v0")
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    timesteps: int = 32_768
    n_boot: int = 2000
    ci_alpha: float = 0.1
    output: Path | None = field(default_factory=lambda: Path(__file__).parent / "results" / "compare_quantile_ppo.md")


def seed_everything(seed: int) -> None:
    """Explicit seeding of random, NumPy and torch (CleanRL's habit); the job seeds SB3 too."""
    random.seed(seed)
    np.random.seed(seed)  # noqa: NPY002 - SB3 draws minibatches from NumPy's global generator
    th.manual_seed(seed)


def held_out_returns(env_id: str, seed: int, report: dict) -> np.ndarray:
    """Backtest the saved model again on the held-out slice to get its per-step returns (``report`` has metrics only).

    The env is rebuilt by :func:`~sb3_trading.evaluation.backtest` from the held-out slice and the normaliser
    fitted on the training slice; all variants of a seed are measured on exactly the same bars.
    """
    data = load_env_data(env_id, None, seed)
    train_data, test_data = split_train_test(data, 0.2)
    probe = gym.make(env_id, data=train_data)
    normalizer = probe.unwrapped.normalizer
    probe.close()
    _, algo_class = get_algo(report["algo"])
    model = algo_class.load(report["model_path"], device="cpu")
    result = backtest(model, env_id, data=test_data, normalizer=normalizer)  # the same rebuild for every variant
    return np.asarray(result.returns, dtype=np.float64)


# statistics over the last axis of (..., n) returns
def total_return(x: np.ndarray) -> np.ndarray:
    return np.prod(1.0 + x, axis=-1) - 1.0


def sharpe(x: np.ndarray, periods_per_year: float) -> np.ndarray:
    std = x.std(axis=-1, ddof=1)
    return np.where(std > 0, x.mean(axis=-1) / np.where(std > 0, std, 1.0) * np.sqrt(periods_per_year), 0.0)


def cvar(x: np.ndarray, tail: float = TAIL) -> np.ndarray:
    """Historical CVaR as :func:`~sb3_trading.evaluation.metrics.conditional_value_at_risk` (a return, < 0 is a loss)."""
    k = int((x.shape[-1] - 1) * tail)
    return np.sort(x, axis=-1)[..., : k + 1].mean(axis=-1)


def max_drawdown(x: np.ndarray) -> np.ndarray:
    equity = np.cumprod(1.0 + x, axis=-1)
    peak = np.maximum.accumulate(np.maximum(equity, 1.0), axis=-1)
    return (1.0 - equity / peak).max(axis=-1)


def pad_terminated(returns: dict[str, dict[int, np.ndarray]]) -> dict[int, int]:
    """Give every variant of a seed the same held-out bars: an episode the env ended early (drawdown limit,
    stop-loss, margin call) holds its cash afterwards, so its later returns are 0. Returns bars traded per run."""
    traded = {}
    for seed in list(next(iter(returns.values()))):
        n = max(len(by_seed[seed]) for by_seed in returns.values())
        for variant, by_seed in returns.items():
            traded[(variant, seed)] = len(by_seed[seed])
            by_seed[seed] = np.concatenate([by_seed[seed], np.zeros(n - len(by_seed[seed]))])
    return traded


def resampled(series: dict[int, np.ndarray], n_boot: int, seed: int) -> dict[int, np.ndarray]:
    """Stationary-bootstrap indices ``(n_boot, n)`` per seed, shared by the variants (a paired resample)."""
    rng = np.random.default_rng(seed)
    return {s: stationary_bootstrap_indices(len(x), n_boot, default_mean_block(len(x)), rng) for s, x in series.items()}


def mean_over_seeds(returns: dict[int, np.ndarray], stat, indices: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """``stat`` per seed, averaged over seeds: a scalar, or ``(n_boot,)`` over the resamples ``indices``."""
    if indices is None:
        return np.mean([stat(r) for r in returns.values()])
    return np.mean([stat(r[indices[s]]) for s, r in returns.items()], axis=0)


def fmt_ci(estimate: float, samples: np.ndarray, alpha: float, digits: int = 3) -> str:
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return f"{estimate:+.{digits}f} [{low:+.{digits}f}, {high:+.{digits}f}]"


def run(args: Args) -> str:
    th.set_num_threads(1)
    rows, diff_rows = [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for env_id in args.env_ids:
            name = env_id.split("/")[1]
            returns: dict[str, dict[int, np.ndarray]] = {variant: {} for variant in VARIANTS}
            fps: dict[str, list[float]] = {variant: [] for variant in VARIANTS}
            ppy = 252.0
            for seed in args.seeds:
                for variant, (algo, extra) in VARIANTS.items():
                    seed_everything(seed)
                    config = TrainConfig(
                        env_id=env_id,
                        algo=algo,
                        timesteps=args.timesteps,
                        seed=seed,
                        device="cpu",
                        output_dir=tmp,
                        progress_bar=False,
                        run_name=f"{name}_{algo}_{extra.get('risk', 'ppo')}_{seed}",
                        hyperparams=dict(extra),
                    )
                    report = train(config)
                    ppy = float(report["agent"]["periods_per_year"])
                    returns[variant][seed] = held_out_returns(env_id, seed, report)
                    fps[variant].append(report["train_fps"])
            traded = pad_terminated(returns)
            indices = resampled(returns[MEAN], args.n_boot, seed=12345)
            stats = {
                "total return": total_return,
                "Sharpe": lambda x, ppy=ppy: sharpe(x, ppy),
                "CVaR 5 %": cvar,
                "max drawdown": max_drawdown,
            }
            for variant in VARIANTS:
                cells = [
                    fmt_ci(
                        mean_over_seeds(returns[variant], stat),
                        mean_over_seeds(returns[variant], stat, indices),
                        args.ci_alpha,
                        4 if key == "CVaR 5 %" else 3,
                    )
                    for key, stat in stats.items()
                ]
                bars = "/".join(str(traded[(variant, s)]) for s in args.seeds)
                rows.append(f"| {name} | {variant} | " + " | ".join(cells) + f" | {bars} | {np.mean(fps[variant]):,.0f} |")
            for key, digits in (("CVaR 5 %", 4), ("total return", 3)):
                stat = stats[key]
                diff = mean_over_seeds(returns[CVAR], stat) - mean_over_seeds(returns[MEAN], stat)
                boot = mean_over_seeds(returns[CVAR], stat, indices) - mean_over_seeds(returns[MEAN], stat, indices)
                low, high = np.quantile(boot, [args.ci_alpha / 2, 1 - args.ci_alpha / 2])
                verdict = "excludes 0" if low > 0 or high < 0 else "includes 0"
                per_seed = ", ".join(f"{stat(returns[CVAR][s]) - stat(returns[MEAN][s]):+.{digits}f}" for s in args.seeds)
                diff_rows.append(f"| {name} | {key} | {fmt_ci(diff, boot, args.ci_alpha, digits)} | {verdict} | {per_seed} |")
    minutes = (time.perf_counter() - started) / 60
    level = f"{100 * (1 - args.ci_alpha):.0f} %"
    header = (
        "# PPO vs QuantilePPO (mean) vs QuantilePPO (CVaR 10 %) on held-out data\n\n"
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, {os.cpu_count()} cores (shared), "
        f"python {platform.python_version()}, torch {th.__version__} (1 thread), CPU. "
        f"`python benchmarks/compare_quantile_ppo.py`: {len(args.seeds)} seeds x {args.timesteps:,} training steps per run, "
        f"the main job's default hyperparameters (8 envs, n_steps 256, gamma 0.5; QuantilePPO: 32 quantiles, "
        f"huber_kappa 1e-3); {minutes:.1f} min in all.\n\n"
        f"Held-out backtest (last 20 % of each seed's synthetic market). Each cell: mean over seeds [{level} CI, "
        f"stationary block bootstrap of the held-out returns, {args.n_boot} resamples per seed, pooled over seeds]. "
        "CVaR 5 % is a daily return (higher = smaller tail loss); max drawdown a fraction (lower is better). "
        "A run the env ended early (drawdown limit, stop-loss) holds cash for the rest of the held-out bars "
        "(returns 0), so every variant of a seed is measured on the same bars; `bars traded` says how many it traded.\n\n"
        "| env | algorithm | total return | Sharpe | CVaR 5 % | max drawdown | bars traded per seed | train fps |\n"
        "|---|---|---|---|---|---|---|---|\n"
    )
    diff_header = (
        "\n## CVaR mode minus mean mode, paired (same seeds, same resampled held-out bars)\n\n"
        f"| env | metric | difference [{level} CI] | CI | per seed |\n|---|---|---|---|---|\n"
    )
    return header + "\n".join(rows) + "\n" + diff_header + "\n".join(diff_rows) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 envs x 2 seeds x 2,048 steps, not written to results/")
    parser.add_argument("--timesteps", type=int, default=None, help="training steps per run")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (0, 1, ...)")
    cli = parser.parse_args()
    if cli.quick:
        args = Args(seeds=(0, 1), timesteps=2_048, n_boot=200, output=None)
    else:
        args = Args()
    if cli.timesteps is not None:
        args.timesteps = cli.timesteps
    if cli.seeds is not None:
        args.seeds = tuple(range(cli.seeds))
    table = run(args)
    print(table)
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(table)


if __name__ == "__main__":
    main()
