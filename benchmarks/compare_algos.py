"""PPO vs MaskablePPO vs RecurrentPPO vs QuantilePPO on sb3_trading envs, with the zoo configs.

    python benchmarks/compare_algos.py            # 3 envs x 3 seeds x 15k steps (~15 min on 2 cores)
    python benchmarks/compare_algos.py --quick    # CI-sized: 1 seed x 2,048 steps, results in benchmarks/results/quick/

Every run is the main job (:func:`sb3_trading.training.train`) with the hyperparameters, env arguments
and ``n_envs`` of ``zoo_configs/<algo>.yml`` for that env: train on the first 80 % of the env's seeded
synthetic market, backtest deterministically on the held-out 20 %. MaskablePPO runs only where the env
has discrete actions and ``action_masks()`` (MaskedTrading-v0). Writes
``benchmarks/results/compare_algos.md`` (mean ± std over seeds of held-out return, Sharpe, max drawdown,
CVaR 5 %, training fps and the invalid-action rate on masked envs) and one learning-curve PNG per env
(training episode return from each run's ``progress.csv``, mean over seeds).
"""

from __future__ import annotations

import argparse
import csv
import platform
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import sb3_trading
from sb3_trading.training import TrainConfig, train
from sb3_trading.zoo import load_zoo_hyperparams
from sb3_trading.zoo_configs import config_path

ROOT = Path(__file__).resolve().parents[1]
ALGOS = {"ppo": "PPO", "ppo_mask": "MaskablePPO", "ppo_lstm": "RecurrentPPO", "qppo": "QuantilePPO"}
MASKED_ENVS = ("sb3_trading/MaskedTrading-v0",)


@dataclass
class Args:
    env_ids: tuple[str, ...] = ("sb3_trading/MaskedTrading-v0", "sb3_trading/MultiAsset-v0", "sb3_trading/LeveragedPair-v0")
    seeds: tuple[int, ...] = (0, 1, 2)
    timesteps: int = 15_000
    results: Path = field(default_factory=lambda: ROOT / "benchmarks" / "results")


def learning_curve(progress_csv: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(timesteps, training episode return)`` rows of an SB3 ``progress.csv``."""
    steps, returns = [], []
    with progress_csv.open() as f:
        for row in csv.DictReader(f):
            if row.get("trading/episode_return") not in (None, ""):
                steps.append(float(row["time/total_timesteps"]))
                returns.append(float(row["trading/episode_return"]))
    return np.asarray(steps), np.asarray(returns)


def plot_curves(curves: dict[str, list[tuple[np.ndarray, np.ndarray]]], title: str, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for name, runs in curves.items():
        runs = [run for run in runs if len(run[0])]
        if not runs:
            continue
        grid = np.linspace(max(run[0][0] for run in runs), min(run[0][-1] for run in runs), 50)
        mean = np.mean([np.interp(grid, steps, values) for steps, values in runs], axis=0)
        axes.plot(grid, mean, label=name)
    axes.set(title=title, xlabel="timesteps", ylabel="training episode return (mean over seeds)")
    axes.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def run(args: Args) -> str:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for env_id in args.env_ids:
            env_name = env_id.split("/")[1]
            curves: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
            ppo_fps = None
            for algo, label in ALGOS.items():
                if algo.endswith("_mask") and env_id not in MASKED_ENVS:
                    rows.append(f"| {env_name} | {label} | n/a (needs discrete actions with masks) | | | | | |")
                    continue
                hyperparams, settings = load_zoo_hyperparams(algo, env_id, config_path(algo))
                results = []
                for seed in args.seeds:
                    report = train(
                        TrainConfig(
                            env_id=env_id,
                            algo=algo,
                            timesteps=args.timesteps,
                            seed=seed,
                            n_envs=int(settings.get("n_envs", 8)),
                            env_kwargs=dict(settings.get("env_kwargs") or {}),
                            hyperparams=hyperparams,
                            output_dir=tmp,
                            run_name=f"{algo}_{env_name}_{seed}",
                            progress_bar=False,
                        )
                    )
                    results.append({**report["agent"]["metrics"], "fps": report["train_fps"]})
                    curves.setdefault(label, []).append(learning_curve(Path(report["run_dir"]) / "progress.csv"))
                fps = float(np.mean([r["fps"] for r in results]))
                ppo_fps = fps if algo == "ppo" else ppo_fps

                def cell(key: str, results: list[dict] = results) -> str:
                    values = np.array([r[key] for r in results])
                    return f"{values.mean():+.3f} ± {values.std():.3f}"

                invalid = cell("invalid_action_rate") if "invalid_action_rate" in results[0] else "—"
                rows.append(
                    f"| {env_name} | {label} | {cell('total_return')} | {cell('sharpe')} | {cell('max_drawdown')} | "
                    f"{cell('cvar_5')} | {fps:,.0f} ({fps / ppo_fps:.2f}x PPO) | {invalid} |"
                )
            plot_curves(curves, env_name, args.results / f"learning_curves_{env_name}.png")
    return (
        f"# PPO vs MaskablePPO vs RecurrentPPO vs QuantilePPO (held-out backtests)\n\n"
        f"{len(args.seeds)} seeds x {args.timesteps:,} training steps per run, zoo_configs hyperparameters; "
        f"sb3_trading {sb3_trading.__version__}, {platform.machine()}, python {platform.python_version()}, 2 CPU cores.\n"
        "Mean ± std over seeds of the deterministic backtest on the held-out 20 % of each env's synthetic market.\n\n"
        "| env | algorithm | total return | Sharpe | max drawdown | CVaR 5 % | training fps | invalid-action rate |\n"
        "|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 seed x 2,048 steps, written under results/quick/")
    parser.add_argument("--results", type=Path, default=None, help="write the table and PNGs here instead")
    cli = parser.parse_args()
    args = Args()
    if cli.quick:
        args = Args(seeds=(0,), timesteps=2_048, results=args.results / "quick")
    if cli.results is not None:
        args.results = cli.results
    table = run(args)
    print(table)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "compare_algos.md").write_text(table)


if __name__ == "__main__":
    main()
