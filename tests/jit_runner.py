"""A randomised run of the compiled kernels, recorded to an ``.npz``: run once compiled, once under ``NUMBA_DISABLE_JIT=1``.

``python tests/jit_runner.py OUT.npz`` writes the record; :func:`record` returns it in-process. The test
(tests/test_jit.py) compares the two runs exactly: the kernels are one implementation, compiled or not.
"""

from __future__ import annotations

import sys

import numpy as np

from sb3_trading.features.regimes import hmm_filter
from sb3_trading.sim import CostModel, Portfolio, self_financing_value
from sb3_trading.vec import SUPPORTED_ENV_IDS, make_vec_env

#: small, fast configurations of every batched env, with frictions and short episodes (so that auto-resets happen)
COMMON_KWARGS = {"window": 8, "random_start": True}
FRICTIONS = {"commission_bps": 7.0, "slippage_bps": 3.0}
ENV_KWARGS = {
    "sb3_trading/MultiAsset-v0": {"episode_length": 12, **FRICTIONS},
    "sb3_trading/LeveragedPair-v0": {"max_days": 12, **FRICTIONS},
    "sb3_trading/MaskedTrading-v0": {"episode_length": 12, **FRICTIONS},
    "sb3_trading/SingleAsset-v0": {"episode_length": 12, "long_short": True, "max_drawdown": 0.02, **FRICTIONS},
    # the action options that give an untrained policy a flat start: a sizing entry, score and net dead zones
    "sb3_trading/YieldAllocation-v0": {
        "episode_length": 12,
        "rebalance_cost_bps": 7.0,
        "max_drawdown": 0.01,
        "size_action": True,
        "dead_zone": 0.3,
    },
    "sb3_trading/MarketImpact-v0": {"episode_length": 12, "impact_decay": 0.3, "dead_zone": 0.3, **FRICTIONS},
}
N_ENVS, N_STEPS = 5, 30
#: every market rule (issue 20) on the envs that model them all, with tight brackets and margin so that they act
EVERY_RULE = {
    "costs": {
        "commission_bps": 5.0,
        "slippage_bps": 2.0,
        "fixed_fee": 0.5,
        "min_fee": 1.0,
        "half_spread_bps": 1.0,
        "impact_k": 0.5,
        "participation": 0.2,
        "lot_size": 1.0,
    },
    "financing": {"cash_rate": 0.04, "loan_rate": 0.07, "borrow_bps": 50.0},
    "margin": {"max_leverage": 2.0, "maintenance_margin": 0.3},
    "brackets": {"stop_loss": 0.01, "take_profit": 0.01},
}
RULE_ENV_KWARGS = {
    "sb3_trading/MultiAsset-v0": {"episode_length": 12, **EVERY_RULE},
    "sb3_trading/LeveragedPair-v0": {"max_days": 12, "action_mode": "net", "dead_zone": 0.2, **EVERY_RULE},
    "sb3_trading/YieldAllocation-v0": {
        "episode_length": 12,
        "costs": {"commission_bps": 5.0, "fixed_fee": 0.5, "min_fee": 3.0},
        "brackets": {"stop_loss": 0.002, "take_profit": 0.002},
    },
}


def core_record(seed: int = 0) -> dict[str, np.ndarray]:
    """Trades, affordability cuts, marks and the self-financing solve on random books."""
    rng = np.random.default_rng(seed)
    n_envs, n_assets = 7, 4
    book = Portfolio(n_envs, n_assets, CostModel(commission_bps=12.0, slippage_bps=4.0))
    prices = rng.uniform(5.0, 200.0, (n_envs, n_assets))
    book.reset(rng.uniform(1e3, 1e5, n_envs), positions=rng.integers(-20, 40, (n_envs, n_assets)).astype(float), prices=prices)
    out: dict[str, np.ndarray] = {}
    for step in range(20):
        prices = prices * rng.lognormal(0.0, 0.02, prices.shape)
        target = rng.normal(0.0, 60.0, (n_envs, n_assets))
        target = book.affordable(target, prices, lot_size=1.0 if step % 2 else None)
        fills = book.trade_to(target, prices)
        values, equity, drawdown = book.mark_values(prices)
        weights = rng.dirichlet(np.ones(n_assets), n_envs)
        value = self_financing_value(np.abs(equity) + 1.0, weights, book.positions, prices, book.costs)
        for name, array in (
            ("costs", fills.costs),
            ("notional", fills.notional),
            ("fill_prices", fills.fill_prices),
            ("values", values),
            ("drawdown", drawdown),
            ("holdings", book.holdings),
            ("value", value),
        ):
            out[f"core/{name}/{step}"] = np.array(array)
    return out


def regimes_record(seed: int = 0) -> dict[str, np.ndarray]:
    """The forward filter of the regime features on random returns and parameters (3 assets, 2 states)."""
    rng = np.random.default_rng(seed)
    returns = rng.normal(0.0, 0.02, (200, 3))
    means, variances = rng.normal(0.0, 0.001, (3, 2)), rng.uniform(1e-5, 1e-3, (3, 2))
    transmat = np.array([[0.95, 0.05], [0.1, 0.9]])
    return {"regimes/filter": hmm_filter(returns, means, variances, transmat)}


def env_record(env_id: str, seed: int = 0, kwargs: dict | None = None, tag: str = "") -> dict[str, np.ndarray]:
    """Observations, rewards, dones and the step arrays of ``N_STEPS`` random actions on ``N_ENVS`` accounts
    (the env's :data:`ENV_KWARGS` unless ``kwargs``; ``tag`` prefixes the keys)."""
    env_id_tag = f"{tag}{env_id}"
    kwargs = ENV_KWARGS[env_id] if kwargs is None else kwargs
    vec = make_vec_env(env_id, N_ENVS, seed=seed, env_kwargs={**COMMON_KWARGS, **kwargs})
    vec.action_space.seed(seed)
    obs = vec.reset()
    out = {f"{env_id_tag}/reset/{key}": np.array(value) for key, value in obs.items()}
    for step in range(N_STEPS):
        obs, rewards, dones, infos = vec.step(np.stack([vec.action_space.sample() for _ in range(N_ENVS)]))
        out[f"{env_id_tag}/rewards/{step}"] = rewards
        out[f"{env_id_tag}/dones/{step}"] = dones
        for key, value in obs.items():
            out[f"{env_id_tag}/obs/{key}/{step}"] = np.array(value)
        for key in ("equity", "cash", "positions", "costs", "drawdown", "t"):
            out[f"{env_id_tag}/info/{key}/{step}"] = np.array(infos.arrays[key])
    vec.close()
    return out


def record() -> dict[str, np.ndarray]:
    """The whole record: the core on random books, the regime filter, every batched env, then the envs with
    their market rules on."""
    out = core_record()
    out.update(regimes_record())
    for env_id in SUPPORTED_ENV_IDS:
        out.update(env_record(env_id))
    for env_id, kwargs in RULE_ENV_KWARGS.items():
        out.update(env_record(env_id, kwargs=kwargs, tag="rules/"))
    return out


if __name__ == "__main__":
    np.savez(sys.argv[1], **record())
