"""Baselines of a backtest: cash, buy-and-hold, equal-weight (rebalanced), single-asset holds and seeded random actions.

Cash, buy-and-hold, equal-weight and the single-asset holds run the same bars through the same accounting core
and costs as the agent, without an env, from the env's initial cash; the random baseline runs the env itself with
:class:`~sb3_trading.evaluation.backtest.RandomPolicy`. :func:`env_baselines` builds them all for the
env a policy was backtested on; assets that pay a yield (YieldAllocation-v0's APYs) pay it to the
baselines too, read from the env's ``yield_rates()`` hook, so evaluation does not need to know env types.

Timing (as in the envs): step ``k`` decides at the close of row ``t[k]``, trades there, and is marked at
row ``t[k + 1]``.

Costs: the baselines pay their :class:`~sb3_trading.sim.CostModel` in full, never a part of it. Constant
frictions (commission, slippage, a half-spread in bps, fees per order) are the book's own; frictions that need
the data (square-root ``impact_k``, ``half_spread_bps="data"``) and the order limits (``participation``,
``lot_size``) are compiled with the traded data by :func:`~sb3_trading.sim.frictions.build_frictions` and
applied bar by bar, as MultiAsset-v0 applies them to orders at the close (the data must then have the volume or
spread they need, else ``ValueError``). An env's ``financing`` applies too (the cash baseline earns the cash rate,
a book pays its borrow fees), so every strategy is compared on the same money. ``margin`` and ``brackets`` and
env-specific mechanics (MarketImpact-v0's netted impact, weight bounds) are not applied (a stop-loss on the
buy-and-hold is another strategy); :func:`env_baselines` logs a warning when the env has margin or brackets.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np

from sb3_trading.data import MarketData
from sb3_trading.data.yield_market import apy_column
from sb3_trading.envs.multi_asset import multi_asset_targets
from sb3_trading.evaluation.backtest import BacktestResult, RandomPolicy, _finish, backtest, data_calendar
from sb3_trading.sim import CostModel, Portfolio
from sb3_trading.sim.accrual import accrue_yield
from sb3_trading.sim.frictions import Financing, Frictions, MarketRules, build_frictions
from sb3_trading.sim.kernels import finance_row, limit_row

logger = logging.getLogger(__name__)

#: the baselines :func:`env_baselines` builds by default
BASELINES = ("cash", "buy_and_hold", "equal_weight")
#: the :func:`env_baselines` name that expands to one buy-and-hold per traded asset (:func:`single_asset_name`)
SINGLE_ASSET = "single_asset"


def single_asset_name(asset: str) -> str:
    """Name of the baseline that holds only ``asset``: ``"hold_<asset>"``."""
    return f"hold_{asset}"


def random_baseline(
    env: gym.Env,
    seed: int = 0,
    name: str = "random",
    periods_per_year: float | None = None,
    *,
    risk_free: float = 0.0,
    consecutive: bool = False,
) -> BacktestResult:
    """Backtest seeded uniformly random actions (:class:`RandomPolicy`, legal ones only on masked envs).

    :param env: a single env, as for :func:`backtest` (it is reset with ``seed``).
    :param seed: seeds both the action sampler and ``env.reset``.
    :param periods_per_year: as :func:`backtest` (default: the env's data's).
    :param risk_free: annual risk-free rate, as :func:`backtest`.
    :param consecutive: chain episodes to the end of the data, as :func:`backtest`.
    """
    policy = RandomPolicy(env.action_space, seed=seed)
    return backtest(policy, env, False, name, seed, periods_per_year, risk_free=risk_free, consecutive=consecutive)


TargetFn = Callable[[int, np.ndarray, np.ndarray, Portfolio], np.ndarray]


def _data_frictions(data: MarketData, costs: CostModel, financing: Financing | None) -> Frictions | None:
    """The per-bar frictions of ``costs`` and ``financing`` on ``data`` (orders at the close), or ``None`` when the
    book's constant frictions price every fill exactly (no impact, no spread column, no participation cap, no lots)
    and nothing accrues.

    :raises ValueError: when ``costs`` needs data that ``data`` lacks (its volume or spread).
    """
    if costs.is_constant and costs.lot_size is None and financing is None:
        return None
    return build_frictions(
        MarketRules(costs, financing),
        data.prices,
        list(data.asset_names),
        float(data.periods_per_year),
        data.path_bounds,
        0,
        volume=data.volume,
        spread=getattr(data, "spread", None),
    )


def _run_targets(
    name: str,
    data: MarketData,
    start: int,
    stop: int,
    target_fn: TargetFn,
    initial_cash: float,
    costs: CostModel,
    periods_per_year: float | None,
    rates: np.ndarray | None = None,
    risk_free: float = 0.0,
    financing: Financing | None = None,
) -> BacktestResult:
    """Trade to ``target_fn(step, equity (1,), prices (1, N), book)`` at each close ``start..stop-1``.

    With ``rates`` ``(T, N)`` (simple yield per bar), holdings over ``t -> t+1`` earn ``rates[t]`` in
    shares before being marked at ``t + 1``, as in ``YieldAllocation-v0``. ``costs`` is paid in full (see the
    module docstring): frictions that need the data and the order limits are applied bar by bar; with
    ``financing`` each bar accrues after the trade (:func:`~sb3_trading.sim.kernels.finance_row`), as in the envs.
    """
    if not 0 <= start < stop < data.n_steps:
        raise ValueError(f"need 0 <= start < stop < {data.n_steps}, got start={start}, stop={stop}")
    if rates is not None:
        rates = np.asarray(rates, dtype=np.float64)
        if rates.shape != data.prices.shape:
            raise ValueError(f"rates must have the prices' shape {data.prices.shape} (per bar, per asset), got {rates.shape}")
        if not (np.isfinite(rates).all() and (rates > -1.0).all()):
            raise ValueError("rates must be finite and > -1 (a simple yield per bar, e.g. APY / periods_per_year)")
    book = Portfolio(1, data.n_assets, costs)
    book.reset(initial_cash)
    frictions = _data_frictions(data, costs, financing)
    n = stop - start
    financed = np.zeros(n) if financing is not None else None
    equity = np.empty(n + 1)
    equity[0] = initial_cash
    cash = np.empty(n + 1)
    cash[0] = initial_cash
    turnover, paid = np.empty(n), np.empty(n)
    weights, positions = np.empty((n, data.n_assets)), np.empty((n, data.n_assets))
    for k, t in enumerate(range(start, stop)):
        prices = data.prices[t : t + 1]
        target = target_fn(k, equity[k : k + 1], prices, book)
        if frictions is None:
            fills = book.trade_to(target, prices)
        else:  # this bar's spread and impact, and the lots and participation cap of the order
            bars = frictions.bars[t]
            target = np.array(target, dtype=np.float64).reshape(1, data.n_assets)
            if frictions.limited:
                limit_row(book.holdings, 0, target[0], prices[0], bars, frictions.rules)
            fills = book.trade_to(target, prices, bars)
            if financed is not None:
                financed[k] = finance_row(book.holdings, 0, prices[0], bars, frictions.rules)
        next_prices = data.prices[t + 1 : t + 2]
        if rates is not None:
            book.positions[...] = accrue_yield(book.positions, rates[t], next_prices).positions
        value, _ = book.mark(next_prices)
        equity[k + 1] = value[0]
        cash[k + 1] = book.cash[0]
        turnover[k] = fills.notional[0] / equity[k]
        paid[k] = fills.costs[0]
        weights[k] = book.weights(next_prices, value)[0]
        positions[k] = book.positions[0]
    return _finish(
        name,
        np.arange(start, stop + 1),
        equity,
        turnover,
        paid,
        weights,
        data,
        periods_per_year,
        positions=positions,
        cash=cash,
        asset_names=data.asset_names,
        risk_free=risk_free,
        financing=financed,
    )


def cash_baseline(
    data: MarketData,
    start: int = 0,
    stop: int | None = None,
    initial_cash: float = 1_000_000.0,
    periods_per_year: float | None = None,
    *,
    risk_free: float = 0.0,
    financing: Financing | None = None,
) -> BacktestResult:
    """Hold cash: zero return every step, or the cash rate of ``financing`` (accrued every bar, compounding).

    With ``risk_free > 0`` its excess return is a constant ``-rf`` per bar, so its Sharpe stays ``0``.
    """
    stop = data.n_steps - 1 if stop is None else stop
    return _run_targets(
        "cash",
        data,
        start,
        stop,
        lambda k, e, p, book: book.positions.copy(),
        initial_cash,
        CostModel(0.0, 0.0),
        periods_per_year,
        risk_free=risk_free,
        financing=financing,
    )


def buy_and_hold(
    data: MarketData,
    start: int = 0,
    stop: int | None = None,
    initial_cash: float = 1_000_000.0,
    costs: CostModel | None = None,
    periods_per_year: float | None = None,
    rates: np.ndarray | None = None,
    *,
    risk_free: float = 0.0,
    financing: Financing | None = None,
) -> BacktestResult:
    """Invest ``initial_cash / N`` in each asset at the close of ``start`` (paying costs), then hold.

    :param data: the market.
    :param start: first decision row.
    :param stop: last marked row (default: the last row).
    :param initial_cash: starting cash, account currency.
    :param costs: frictions (default ``CostModel()``), paid in full: those that need the data (impact, the spread
        column) and the order limits (participation, lots) bar by bar, as MultiAsset-v0 at the close.
    :param periods_per_year: bars per year of the metrics (default: ``data.periods_per_year``).
    :param rates: optional ``(T, N)`` simple yield per bar paid in shares (see :func:`yield_rates`).
    :param risk_free: annual risk-free rate (fraction) of the Sharpe and Sortino.
    :param financing: interest on the cash and borrow fees accrued every bar (``None``: none), as in the envs.
    """
    stop = data.n_steps - 1 if stop is None else stop

    def target(k: int, equity: np.ndarray, prices: np.ndarray, book: Portfolio) -> np.ndarray:
        if k == 0:
            return multi_asset_targets(equity, np.ones_like(prices), prices)
        return book.positions.copy()

    return _run_targets(
        "buy_and_hold",
        data,
        start,
        stop,
        target,
        initial_cash,
        costs or CostModel(),
        periods_per_year,
        rates,
        risk_free,
        financing,
    )


def equal_weight(
    data: MarketData,
    start: int = 0,
    stop: int | None = None,
    initial_cash: float = 1_000_000.0,
    costs: CostModel | None = None,
    periods_per_year: float | None = None,
    rates: np.ndarray | None = None,
    *,
    risk_free: float = 0.0,
    financing: Financing | None = None,
) -> BacktestResult:
    """Rebalance to ``E_t / N`` in every asset at every close (paying costs); arguments as :func:`buy_and_hold`."""
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
        rates,
        risk_free,
        financing,
    )


def single_asset_baselines(
    data: MarketData,
    start: int = 0,
    stop: int | None = None,
    initial_cash: float = 1_000_000.0,
    costs: CostModel | None = None,
    periods_per_year: float | None = None,
    rates: np.ndarray | None = None,
    *,
    risk_free: float = 0.0,
    financing: Financing | None = None,
) -> dict[str, BacktestResult]:
    """One :func:`buy_and_hold` per asset: all of ``initial_cash`` in that asset alone at the close of ``start``
    (paying costs), then held, earning its own yield when ``rates`` are given.

    Arguments as :func:`buy_and_hold`; asset ``i`` trades ``data.select_assets([asset_i])`` with the rate column
    ``rates[:, i]``. Each result's ``weights`` and ``positions`` are ``(n, 1)``, for its one asset.

    :return: ``{"hold_<asset>": result}`` (:func:`single_asset_name`) in the data's asset order.
    """
    if rates is not None:
        rates = np.asarray(rates, dtype=np.float64)
        if rates.shape != data.prices.shape:
            raise ValueError(f"rates must have the prices' shape {data.prices.shape} (per bar, per asset), got {rates.shape}")
    results: dict[str, BacktestResult] = {}
    for i, asset in enumerate(data.asset_names):
        one = data.select_assets([asset])
        column = None if rates is None else rates[:, i : i + 1]
        result = buy_and_hold(
            one, start, stop, initial_cash, costs, periods_per_year, column, risk_free=risk_free, financing=financing
        )
        name = single_asset_name(asset)
        results[name] = dataclasses.replace(result, name=name)
    return results


def yield_rates(data: MarketData, periods_per_year: float | None = None) -> np.ndarray:
    """``(T, N)`` simple yield per bar, ``apy[<asset>] / periods_per_year``, from the data's APY columns.

    :param data: the market with ``apy[<asset>]`` feature columns (annualised yields).
    :param periods_per_year: bars per year the APY is spread over; ``None``: ``data.periods_per_year``.
    :raises ValueError: if an asset has no ``apy[<asset>]`` feature column.
    """
    missing = [apy_column(a) for a in data.asset_names if apy_column(a) not in data.feature_names]
    if missing:
        raise ValueError(f"data lacks the APY feature columns {missing} (annualised yields, one per asset)")
    columns = [list(data.feature_names).index(apy_column(a)) for a in data.asset_names]
    ppy, _ = data_calendar(data, periods_per_year)
    return data.features[:, columns] / ppy


def env_yield_rates(env: gym.Env, traded: MarketData) -> np.ndarray | None:
    """``(T, N)`` yield per bar the env pays on its traded assets (its ``yield_rates()`` hook), or ``None``.

    Envs without the hook but with APY columns and their own accrual calendar (``periods_per_year``, as
    YieldAllocation-v0 before the hook) get :func:`yield_rates` of ``traded`` on that calendar.
    """
    base = env.unwrapped
    hook = getattr(base, "yield_rates", None)
    if callable(hook):
        rates = hook()
        return None if rates is None else np.asarray(rates, dtype=np.float64)
    if getattr(base, "periods_per_year", None) is not None and all(
        apy_column(a) in traded.feature_names for a in traded.asset_names
    ):
        return yield_rates(traded, base.periods_per_year)
    return None


def env_baselines(
    env: gym.Env,
    start: int,
    stop: int,
    names: Sequence[str] = BASELINES,
    periods_per_year: float | None = None,
    random_seed: int | None = None,
    *,
    risk_free: float = 0.0,
    consecutive: bool = False,
) -> dict[str, BacktestResult]:
    """The baselines of an env's backtest, on the same rows, assets, cash and costs.

    Cash, buy-and-hold and equal-weight trade the env's ``traded_assets`` of ``env.unwrapped.data``
    from row ``start`` to ``stop`` with the env's ``initial_cash`` and ``costs``; on
    ``YieldAllocation-v0`` they also earn the assets' yield (:func:`yield_rates`). They pay the env's
    ``CostModel`` in full (fees, spread, square-root impact, participation cap and lots bar by bar, as
    MultiAsset-v0 with orders at the close; see the module docstring) and its financing, but not its margin or
    brackets (a warning is logged when it has them) nor env-specific mechanics (MarketImpact-v0's netted impact,
    weight bounds). ``"single_asset"`` adds one buy-and-hold per traded asset, ``"hold_<asset>"``
    (:func:`single_asset_baselines`: all capital in that asset, with its yield on YieldAllocation-v0, paying the
    costs), e.g. ``hold_staked_0`` beside ``hold_asset_0``. ``"random"`` (or ``random_seed`` set) adds
    :func:`random_baseline`, which runs the env itself.

    :param env: the single env the agent was backtested on.
    :param start: first decision row (``result.t[0]``).
    :param stop: last marked row (``result.t[-1]``).
    :param names: any of ``"cash"``, ``"buy_and_hold"``, ``"equal_weight"``, ``"single_asset"``, ``"random"``.
    :param periods_per_year: bars per year of the metrics (default: the env's data's calendar).
    :param random_seed: seed of the random baseline (default 0 when ``"random"`` is named).
    :param risk_free: annual risk-free rate (fraction) of the Sharpe and Sortino.
    :param consecutive: the random baseline chains the env's episodes to the end of its data (as the agent's
        :func:`backtest` with ``consecutive=True``).
    :return: ``{name: result}`` in the order of ``names`` (``"single_asset"`` expanded in place, one entry per asset).
    """
    known = [*BASELINES, SINGLE_ASSET, "random"]
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise ValueError(f"unknown baselines {unknown}; choose from {known}")
    base = env.unwrapped
    data: MarketData = base.data
    traded = data.select_assets(list(getattr(base, "traded_assets", data.asset_names)))
    costs: CostModel = getattr(base, "costs", CostModel())
    rules = getattr(base, "market_rules", None)
    financing = None if rules is None else rules.financing
    unapplied = [] if rules is None else [n for n in ("margin", "brackets") if getattr(rules, n, None)]
    if unapplied and set(names) - {"random"}:
        logger.warning(
            "the cash, buy-and-hold, equal-weight and single-asset baselines pay the env's costs but not its %s",
            " and ".join(unapplied),
        )
    initial_cash = float(getattr(base, "initial_cash", 1_000_000.0))
    rates = env_yield_rates(env, traded)
    ppy, rf = periods_per_year, risk_free
    results: dict[str, BacktestResult] = {}
    for name in names:
        if name == "cash":
            result = cash_baseline(traded, start, stop, initial_cash, ppy, risk_free=rf, financing=financing)
        elif name == "buy_and_hold":
            result = buy_and_hold(traded, start, stop, initial_cash, costs, ppy, rates, risk_free=rf, financing=financing)
        elif name == "equal_weight":
            result = equal_weight(traded, start, stop, initial_cash, costs, ppy, rates, risk_free=rf, financing=financing)
        elif name == SINGLE_ASSET:
            singles = single_asset_baselines(
                traded, start, stop, initial_cash, costs, ppy, rates, risk_free=rf, financing=financing
            )
            results.update({key: dataclasses.replace(r, market=data) for key, r in singles.items()})
            continue
        else:
            seed = 0 if random_seed is None else random_seed
            result = random_baseline(env, seed, periods_per_year=ppy, risk_free=rf, consecutive=consecutive)
        results[name] = dataclasses.replace(result, market=data)
    if random_seed is not None and "random" not in names:
        results["random"] = random_baseline(env, random_seed, periods_per_year=ppy, risk_free=rf, consecutive=consecutive)
    return results


__all__ = [
    "BASELINES",
    "SINGLE_ASSET",
    "buy_and_hold",
    "cash_baseline",
    "env_baselines",
    "env_yield_rates",
    "equal_weight",
    "random_baseline",
    "single_asset_baselines",
    "single_asset_name",
    "yield_rates",
]
