"""A randomised run of the compiled kernels, recorded to an ``.npz``: run once compiled, once under ``NUMBA_DISABLE_JIT=1``.

``python tests/jit_runner.py OUT.npz`` writes the record; :func:`record` returns it in-process. The test
(tests/test_jit.py) compares the two runs exactly: the kernels are one implementation, compiled or not.
"""

from __future__ import annotations

import sys

import numpy as np

from sb3_trading.sim import CostModel, Portfolio, self_financing_value
from sb3_trading.vec import SUPPORTED_ENV_IDS, make_vec_env

#: small, fast configurations of every batched env, with frictions and short episodes (so that auto-resets happen)
COMMON_KWARGS = {"window": 8, "random_start": True}
FRICTIONS = {"commission_bps": 7.0, "slippage_bps": 3.0}
ENV_KWARGS = {
    "sb3_trading/MultiAsset-v0": {"episode_length": 12, **FRICTIONS},
    "sb3_trading/LeveragedPair-v0": {"max_days": 12, **FRICTIONS},
    "sb3_trading/MaskedTrading-v0": {"episode_length": 12, **FRICTIONS},
    "sb3_trading/YieldAllocation-v0": {"episode_length": 12, "rebalance_cost_bps": 7.0, "max_drawdown": 0.01},
    "sb3_trading/MarketImpact-v0": {"episode_length": 12, "impact_decay": 0.3, **FRICTIONS},
}
N_ENVS, N_STEPS = 5, 30


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


def env_record(env_id: str, seed: int = 0) -> dict[str, np.ndarray]:
    """Observations, rewards, dones and the step arrays of ``N_STEPS`` random actions on ``N_ENVS`` accounts."""
    vec = make_vec_env(env_id, N_ENVS, seed=seed, env_kwargs={**COMMON_KWARGS, **ENV_KWARGS[env_id]})
    vec.action_space.seed(seed)
    obs = vec.reset()
    out = {f"{env_id}/reset/{key}": np.array(value) for key, value in obs.items()}
    for step in range(N_STEPS):
        obs, rewards, dones, infos = vec.step(np.stack([vec.action_space.sample() for _ in range(N_ENVS)]))
        out[f"{env_id}/rewards/{step}"] = rewards
        out[f"{env_id}/dones/{step}"] = dones
        for key, value in obs.items():
            out[f"{env_id}/obs/{key}/{step}"] = np.array(value)
        for key in ("equity", "cash", "positions", "costs", "drawdown", "t"):
            out[f"{env_id}/info/{key}/{step}"] = np.array(infos.arrays[key])
    vec.close()
    return out


def record() -> dict[str, np.ndarray]:
    """The whole record: the core on random books, then every batched env."""
    out = core_record()
    for env_id in SUPPORTED_ENV_IDS:
        out.update(env_record(env_id))
    return out


if __name__ == "__main__":
    np.savez(sys.argv[1], **record())
