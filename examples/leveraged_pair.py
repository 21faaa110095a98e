"""LeveragedPair-v0 with plain SB3: PPO on the batched VecEnv, backtest against the signal follower.

python examples/leveraged_pair.py --quick   # ~20 s
"""

import gymnasium as gym
from _common import parse
from stable_baselines3 import PPO

import sb3_trading  # noqa: F401  (registers the env IDs)
from sb3_trading.data import make_leveraged_pair_market
from sb3_trading.evaluation import backtest
from sb3_trading.evaluation.reference import reference_policies
from sb3_trading.recipe import split_train_test
from sb3_trading.vec import make_vec_env

args = parse(__doc__, steps=200_000, quick_steps=4_096)
train_data, test_data = split_train_test(make_leveraged_pair_market(seed=0), 0.2)
venv = make_vec_env("sb3_trading/LeveragedPair-v0", n_envs=8, env_kwargs={"data": train_data}, seed=0)
model = PPO("MultiInputPolicy", venv, n_steps=240, batch_size=240, gamma=0.9, seed=0).learn(args.steps)
# the held-out env reuses the training slice's feature normaliser (no statistics from the future)
test_env = gym.make("sb3_trading/LeveragedPair-v0", data=test_data, normalizer=venv.get_attr("normalizer")[0])
agent = backtest(model, test_env, consecutive=True)
follower = backtest(reference_policies(test_env)["signal_follower"], test_env, consecutive=True)
print(f"PPO Sharpe {agent.metrics['sharpe']:.2f} vs signal follower {follower.metrics['sharpe']:.2f}")
