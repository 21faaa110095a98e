"""Deterministic backtests of a policy, and the baselines it is compared with.

A backtest runs one episode of a single (non-vectorised) ``sb3_trading`` env
and reads the standard ``info`` keys, so it works with every env. Baselines
(cash, buy-and-hold, equal-weight rebalanced) run the same bars through the
same accounting core and costs, without an env.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from sb3_trading.data import MarketData
from sb3_trading.envs.multi_asset import multi_asset_targets
from sb3_trading.evaluation.metrics import compute_metrics, infer_periods_per_year
from sb3_trading.sim import CostModel, Portfolio


@dataclass
class BacktestResult:
    """One strategy's path over ``n`` decisions.

    :ivar name: label of the strategy.
    :ivar t: ``(n + 1,)`` data row of each equity mark (the start bar first).
    :ivar equity: ``(n + 1,)`` equity, starting equity first, account currency.
    :ivar returns: ``(n,)`` simple return of each step net of costs.
    :ivar turnover: ``(n,)`` traded notional / equity before the trade.
    :ivar costs: ``(n,)`` frictions paid per step, account currency.
    :ivar weights: ``(n, N)`` position weights after each step.
    :ivar timestamps: ``(n + 1,)`` times of ``t`` when the data has them.
    :ivar metrics: :func:`~sb3_trading.evaluation.metrics.compute_metrics` of ``returns``.
    """

    name: str
    t: np.ndarray
    equity: np.ndarray
    returns: np.ndarray
    turnover: np.ndarray
    costs: np.ndarray
    weights: np.ndarray
    timestamps: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: name, span and metrics."""
        summary: dict[str, Any] = {"name": self.name, "start_t": int(self.t[0]), "end_t": int(self.t[-1])}
        if self.timestamps is not None:
            summary["start"] = str(np.datetime_as_string(self.timestamps[0], unit="D"))
            summary["end"] = str(np.datetime_as_string(self.timestamps[-1], unit="D"))
        summary["final_equity"] = float(self.equity[-1])
        summary["metrics"] = self.metrics
        return summary


def _finish(
    name: str,
    t: np.ndarray,
    equity: np.ndarray,
    turnover: np.ndarray,
    costs: np.ndarray,
    weights: np.ndarray,
    data: MarketData,
    periods_per_year: float | None,
) -> BacktestResult:
    returns = equity[1:] / equity[:-1] - 1.0
    timestamps = None if data.timestamps is None else data.timestamps[t]
    ppy = infer_periods_per_year(data.timestamps) if periods_per_year is None else periods_per_year
    return BacktestResult(
        name=name,
        t=t,
        equity=equity,
        returns=returns,
        turnover=turnover,
        costs=costs,
        weights=weights,
        timestamps=timestamps,
        metrics=compute_metrics(returns, ppy, turnover=turnover, costs=costs),
    )


class RandomPolicy:
    """Uniformly random actions from ``action_space``, seeded; has SB3's ``predict`` signature."""

    def __init__(self, action_space: gym.Space, seed: int | None = None) -> None:
        self.action_space = action_space
        self.action_space.seed(seed)

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, None]:
        if action_masks is not None:
            return np.asarray(self.action_space.sample(mask=np.asarray(action_masks, dtype=np.int8))), None
        return np.asarray(self.action_space.sample()), None


def backtest(
    policy: Any,
    env: gym.Env,
    deterministic: bool = True,
    name: str = "agent",
    seed: int | None = None,
    periods_per_year: float | None = None,
) -> BacktestResult:
    """Run ``policy`` over one episode of ``env`` and collect the path.

    :param policy: anything with SB3's ``predict(obs, state, episode_start, deterministic)``: an
        algorithm (``PPO``, ``MaskablePPO``, ``RecurrentPPO``...), a policy, or :class:`RandomPolicy`.
        Recurrent state is carried; action masks are passed when the env has ``action_masks()``.
    :param env: a single gymnasium env (``gym.make(...)`` or an env instance) of ``sb3_trading``.
    :param deterministic: use the policy's deterministic action.
    :param name: label stored in the result.
    :param seed: passed to ``env.reset``.
    :param periods_per_year: annualisation; inferred from the data's timestamps when ``None``.
    """
    if isinstance(env, gym.vector.VectorEnv) or hasattr(env, "num_envs"):
        raise TypeError("backtest needs a single env (e.g. gymnasium.make(...)), not a vectorised env")
    base = env.unwrapped
    masks_fn: Callable[[], np.ndarray] | None = getattr(base, "action_masks", None)
    takes_masks = "action_masks" in inspect.signature(policy.predict).parameters
    if masks_fn is not None and not takes_masks:
        masks_fn = None

    obs, info = env.reset(seed=seed)
    ts, equity, turnover, costs, weights = [info["t"]], [info["equity"]], [], [], []
    state, episode_start = None, np.ones((1,), dtype=bool)
    done = False
    while not done:
        kwargs = {} if masks_fn is None else {"action_masks": masks_fn()}
        action, state = policy.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic, **kwargs)
        episode_start = np.zeros((1,), dtype=bool)
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        ts.append(info["t"])
        equity.append(info["equity"])
        turnover.append(info["turnover"])
        costs.append(info["costs"])
        weights.append(np.asarray(info["weights"], dtype=np.float64))
    return _finish(
        name,
        np.asarray(ts),
        np.asarray(equity, dtype=np.float64),
        np.asarray(turnover, dtype=np.float64),
        np.asarray(costs, dtype=np.float64),
        np.stack(weights),
        base.data,
        periods_per_year,
    )


TargetFn = Callable[[int, np.ndarray, np.ndarray, Portfolio], np.ndarray]


def _run_targets(
    name: str,
    data: MarketData,
    start: int,
    stop: int,
    target_fn: TargetFn,
    initial_cash: float,
    costs: CostModel,
    periods_per_year: float | None,
) -> BacktestResult:
    """Trade to ``target_fn(step, equity (1,), prices (1, N), book)`` at each close ``start..stop-1``."""
    if not 0 <= start < stop < data.n_steps:
        raise ValueError(f"need 0 <= start < stop < {data.n_steps}, got start={start}, stop={stop}")
    book = Portfolio(1, data.n_assets, costs)
    book.reset(initial_cash)
    n = stop - start
    equity = np.empty(n + 1)
    equity[0] = initial_cash
    turnover, paid, weights = np.empty(n), np.empty(n), np.empty((n, data.n_assets))
    for k, t in enumerate(range(start, stop)):
        prices = data.prices[t : t + 1]
        fills = book.trade_to(target_fn(k, equity[k : k + 1], prices, book), prices)
        next_prices = data.prices[t + 1 : t + 2]
        value, _ = book.mark(next_prices)
        equity[k + 1] = value[0]
        turnover[k] = fills.notional[0] / equity[k]
        paid[k] = fills.costs[0]
        weights[k] = book.weights(next_prices, value)[0]
    return _finish(name, np.arange(start, stop + 1), equity, turnover, paid, weights, data, periods_per_year)


def cash_baseline(
    data: MarketData, start: int = 0, stop: int | None = None, initial_cash: float = 1_000_000.0
) -> BacktestResult:
    """Hold cash: zero return every step."""
    stop = data.n_steps - 1 if stop is None else stop
    return _run_targets(
        "cash", data, start, stop, lambda k, e, p, book: book.positions.copy(), initial_cash, CostModel(0.0, 0.0), None
    )


def buy_and_hold(
    data: MarketData,
    start: int = 0,
    stop: int | None = None,
    initial_cash: float = 1_000_000.0,
    costs: CostModel | None = None,
    periods_per_year: float | None = None,
) -> BacktestResult:
    """Invest ``initial_cash / N`` in each asset at the close of ``start`` (paying costs), then hold.

    :param data: the market.
    :param start: first decision row; ``stop``: last marked row (default: the last row).
    """
    stop = data.n_steps - 1 if stop is None else stop

    def target(k: int, equity: np.ndarray, prices: np.ndarray, book: Portfolio) -> np.ndarray:
        if k == 0:
            return multi_asset_targets(equity, np.ones_like(prices), prices)
        return book.positions.copy()

    return _run_targets("buy_and_hold", data, start, stop, target, initial_cash, costs or CostModel(), periods_per_year)


def equal_weight(
    data: MarketData,
    start: int = 0,
    stop: int | None = None,
    initial_cash: float = 1_000_000.0,
    costs: CostModel | None = None,
    periods_per_year: float | None = None,
) -> BacktestResult:
    """Rebalance to ``E_t / N`` in every asset at every close (paying costs)."""
    stop = data.n_steps - 1 if stop is None else stop
    return _run_targets(
        "equal_weight",
        data,
        start,
        stop,
        lambda k, equity, prices, book: multi_asset_targets(equity, np.ones_like(prices), prices),
        initial_cash,
        costs or CostModel(),
        periods_per_year,
    )
