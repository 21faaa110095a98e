"""MultiAsset-v0 through the main job: PPO on the seeded regime market, held-out skill ratio.

python examples/multi_asset.py --quick      # ~30 s
"""

from _common import parse

from sb3_trading.training import TrainConfig, train

args = parse(__doc__, steps=300_000, quick_steps=4_096)
report = train(
    TrainConfig(
        env_id="sb3_trading/MultiAsset-v0",
        timesteps=args.steps,
        n_envs=8,
        output_dir=args.output_dir,
        progress_bar=False,
        hyperparams={"n_steps": 256, "batch_size": 256},
    )
)
agent = report["agent"]["metrics"]
print(f"held-out Sharpe {agent['sharpe']:.2f}, return {agent['total_return']:.2%}")
print(f"skill ratio: {report['skill_ratio']['estimate']}")
print(f"HTML report: {report['html_report']}")
