"""SingleAsset-v0: hold / buy / sell one ticker with MaskablePPO; the held-out skill ratio.

python examples/single_asset.py --quick     # ~25 s
python examples/single_asset.py             # the zoo budget: 150k steps, about 30 s of training here
"""

import gymnasium as gym
from _common import parse
from sb3_contrib import MaskablePPO

import sb3_trading  # noqa: F401  (registers the env IDs)
from sb3_trading.data import make_regime_market
from sb3_trading.evaluation import backtest
from sb3_trading.evaluation.reference import reference_policies, skill_ratio
from sb3_trading.recipe import split_train_test
from sb3_trading.vec import make_vec_env

args = parse(__doc__, steps=150_000, quick_steps=4_096)
train_data, test_data = split_train_test(make_regime_market(n_assets=1, seed=2), 0.2)
venv = make_vec_env("sb3_trading/SingleAsset-v0", n_envs=8, env_kwargs={"data": train_data}, seed=2)
model = MaskablePPO("MultiInputPolicy", venv, n_steps=256, batch_size=256, gamma=0.5, seed=2).learn(args.steps)
test_env = gym.make(
    "sb3_trading/SingleAsset-v0",
    data=test_data,
    random_start=False,
    episode_length=None,
    normalizer=venv.get_attr("normalizer")[0],
)
agent = backtest(model, test_env)
follower = backtest(reference_policies(test_env)["signal_follower"], test_env)
ratio = skill_ratio(agent, follower)
print(f"MaskablePPO Sharpe {agent.metrics['sharpe']:.2f}, signal follower {follower.metrics['sharpe']:.2f}")
print(f"skill ratio {ratio.estimate:.2f} [{ratio.low:.2f}, {ratio.high:.2f}]")
