"""YieldAllocation-v0 on a market with exogenous drivers and a staked asset, starting from given weights.

python examples/yield_allocation.py --quick # ~20 s
"""

import gymnasium as gym
from _common import parse
from stable_baselines3 import PPO

import sb3_trading  # noqa: F401  (registers the env IDs)
from sb3_trading.data.yield_market import make_yield_market
from sb3_trading.evaluation import backtest, env_baselines
from sb3_trading.recipe import split_train_test

args = parse(__doc__, steps=100_000, quick_steps=2_048)
data = make_yield_market(n_assets=3, seed=0, drivers=True, staked_assets=1, staked_beta=1.2)
train_data, test_data = split_train_test(data, 0.2)
kwargs = {"initial_weights": [0.25, 0.25, 0.25, 0.0], "depeg_tolerance": [0.005, 0.005, 0.005, 0.05], "max_drawdown": 0.3}
env = gym.make("sb3_trading/YieldAllocation-v0", data=train_data, **kwargs)
model = PPO("MultiInputPolicy", env, n_steps=256, batch_size=64, seed=0).learn(args.steps)
test_env = gym.make(
    "sb3_trading/YieldAllocation-v0",
    data=test_data,
    normalizer=env.unwrapped.normalizer,
    random_start=False,
    episode_length=None,
    **kwargs,
)
agent = backtest(model, test_env, consecutive=True)
baselines = env_baselines(test_env, int(agent.t[0]), int(agent.t[-1]), names=("buy_and_hold", "single_asset"))
print(f"PPO total return {agent.metrics['total_return']:.2%}")
for name, result in baselines.items():
    print(f"{name:<20}{result.metrics['total_return']:.2%}")
