"""MarketImpact-v0: PPO among heuristic traders, seed 004's reward in fractions of the initial cash.

python examples/market_impact.py --quick    # ~30 s
"""

import gymnasium as gym
from _common import parse
from stable_baselines3 import PPO

import sb3_trading  # noqa: F401  (registers the env IDs)
from sb3_trading.evaluation import backtest

args = parse(__doc__, steps=200_000, quick_steps=2_048)
env = gym.make("sb3_trading/MarketImpact-v0", reward_basis="wealth", reward_units="fraction", impact_decay=1.0)
model = PPO("MultiInputPolicy", env, n_steps=252, batch_size=252, gamma=0.9, seed=0).learn(args.steps)
result = backtest(model, gym.make("sb3_trading/MarketImpact-v0", random_start=False, episode_length=None))
print(f"Sharpe {result.metrics['sharpe']:.2f}, return {result.metrics['total_return']:.2%}")
