"""Optuna tuning of PPO on MultiAsset-v0 (a SQLite study: rerun to resume), then the best trial's hyperparameters.

python examples/tune.py --quick             # 2 short trials, ~40 s
"""

from _common import parse

from sb3_trading.tuning.commands import TuneConfig, run_tune

args = parse(__doc__, steps=20_000, quick_steps=1_024)
summary = run_tune(
    TuneConfig(
        env_id="sb3_trading/MultiAsset-v0",
        n_trials=2 if args.quick else 20,
        timesteps=args.steps,
        eval_freq=args.steps // 2,
        n_envs=2,
        output_dir=args.output_dir,
        choices={"n_steps": [256], "batch_size": [128]} if args.quick else None,
    )
)
best = summary["best"]
print(f"{summary['n_trials']} trials; best trial {best['number']}: validation score {best['value']:.3f}")
print(f"its hyperparameters: {best['params']}")
print(f"zoo config of the best trial: {summary.get('best_config')}")
