"""MaskedTrading-v0 with MaskablePPO and seed 002's rule set: regimes, daily loss limit, volatility-scaled cap.

python examples/masked_trading.py --quick   # ~30 s
"""

import gymnasium as gym
from _common import parse
from sb3_contrib import MaskablePPO

import sb3_trading  # noqa: F401  (registers the env IDs)
from sb3_trading.evaluation import backtest

args = parse(__doc__, steps=200_000, quick_steps=2_048)
rules = {"regime_rules": True, "position_vol_target": 0.6, "daily_loss_limit": 0.05, "window": 30}
env = gym.make("sb3_trading/MaskedTrading-v0", **rules)
model = MaskablePPO("MultiInputPolicy", env, n_steps=256, batch_size=256, gamma=0.5, seed=0).learn(args.steps)
result = backtest(model, gym.make("sb3_trading/MaskedTrading-v0", **rules, random_start=False, episode_length=None))
print(f"Sharpe {result.metrics['sharpe']:.2f}; masked actions chosen: {result.metrics['invalid_action_rate']:.1%}")
print("share of decisions each rule masked something:")
for rule, rate in result.mask_rule_rates.items():
    if rate:
        print(f"  {rule:<20}{rate:.1%}")
env.reset(seed=0)
print("now masked:", env.unwrapped.mask_reasons())
