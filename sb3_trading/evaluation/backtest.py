"""Deterministic backtests of a policy.

A backtest runs one episode of a single (non-vectorised) ``sb3_trading`` env
and reads the standard ``info`` keys, so it works with every env. The baselines
it is compared with are :mod:`sb3_trading.evaluation.baselines`.

Timing (as in the envs): step ``k`` decides at the close of row ``t[k]``, trades
there, and is marked at row ``t[k + 1]``; ``returns[k] = equity[k + 1] / equity[k] - 1``.

Calendar and risk-free rate: metrics are annualised with the traded data's
``MarketData.periods_per_year`` (its calendar, inferred from the timestamps or
given) unless ``periods_per_year=`` overrides it; ``risk_free`` is an **annual**
rate (fraction, default 0) whose per-bar rate ``(1 + risk_free) ** (1 / P) - 1``
Sharpe and Sortino are measured against. Both are stored in the result and in
its :meth:`BacktestResult.to_dict`, so every report states them.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from sb3_trading.data import MarketData
from sb3_trading.data.calendar import TRADING_DAYS, check_annual_rate
from sb3_trading.evaluation.metrics import _check_ppy, compute_metrics, drawdown_series, risk_free_per_period
from sb3_trading.features import FeatureNormalizer
from sb3_trading.wrappers.sizing import wrap_sizing

logger = logging.getLogger(__name__)

_UNSET: Any = object()


@dataclass
class BacktestResult:
    """One strategy's path over ``n`` decisions.

    :ivar name: label of the strategy.
    :ivar t: ``(n + 1,)`` data row of each equity mark (the start bar first).
    :ivar equity: ``(n + 1,)`` equity, starting equity first, account currency.
    :ivar returns: ``(n,)`` simple return of each step net of costs.
    :ivar turnover: ``(n,)`` traded notional / equity before the trade.
    :ivar costs: ``(n,)`` frictions paid per step, account currency.
    :ivar weights: ``(n, N)`` position weights after each step (position value / equity, marked at ``t[k + 1]``).
    :ivar timestamps: ``(n + 1,)`` times of ``t`` when the data has them.
    :ivar metrics: :func:`~sb3_trading.evaluation.metrics.compute_metrics` of ``returns``; on envs with
        ``action_masks()`` also ``invalid_action_rate``, the share of decisions that chose a masked action.
    :ivar positions: ``(n, N)`` share counts held after each step's trade.
    :ivar trades: ``(n, N)`` shares traded at each step, ``positions[k] - positions[k - 1]`` (``positions[-1]``
        = the holdings at the start, which are zero except for envs that invest at reset, e.g. LeveragedPair).
    :ivar cash: ``(n + 1,)`` cash at each mark, account currency.
    :ivar periods_per_year: bars per year used to annualise ``metrics`` (the data's calendar unless overridden).
    :ivar calendar: how ``periods_per_year`` came about (``MarketData.calendar``, or ``"given"``).
    :ivar risk_free: the **annual** risk-free rate (fraction) of the Sharpe and Sortino in ``metrics``.
    :ivar asset_names: names of the ``N`` columns of ``weights``/``positions``.
    :ivar market: the market the strategy traded on (the whole :class:`MarketData` whose rows ``t`` index),
        used for volatility regimes; not serialised.
    :ivar benchmark_returns: ``(n,)`` the benchmark of the metrics' ``alpha``, ``beta``, ``tracking_error``,
        ``information_ratio`` and ``correlation``: by default the frictionless buy-and-hold of the traded assets
        over the same marks (:func:`buy_and_hold_returns`); ``None``: no benchmark-relative metrics.
    :ivar financing: ``(n,)`` net financing of each step (interest on cash and loans, borrow fees; + received),
        account currency, when the env reports ``info["financing"]`` (summed in ``metrics["total_financing"]``).
    :ivar mask_rule_rates: on envs that report ``info["mask_reasons"]`` (rule codes per action, named by the env's
        ``mask_rule_names``): ``{rule: share of decisions at which the rule masked at least one action}``;
        ``None`` elsewhere.
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
    positions: np.ndarray | None = None
    trades: np.ndarray | None = None
    cash: np.ndarray | None = None
    periods_per_year: float = float(TRADING_DAYS)
    asset_names: tuple[str, ...] | None = None
    calendar: str | None = None
    risk_free: float = 0.0
    market: MarketData | None = field(default=None, repr=False, compare=False)
    benchmark_returns: np.ndarray | None = field(default=None, repr=False)
    financing: np.ndarray | None = field(default=None, repr=False)
    mask_rule_rates: dict[str, float] | None = None

    @property
    def n_steps(self) -> int:
        """Number of decisions ``n``."""
        return int(self.returns.shape[0])

    @property
    def drawdown(self) -> np.ndarray:
        """``(n + 1,)`` drawdown ``1 - equity / running peak`` of the equity curve."""
        return drawdown_series(self.returns)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary: name, span, final equity, calendar (``periods_per_year``, ``calendar``),
        ``risk_free`` (annual) and its per-bar rate ``risk_free_per_period``, and metrics."""
        summary: dict[str, Any] = {"name": self.name, "start_t": int(self.t[0]), "end_t": int(self.t[-1])}
        if self.timestamps is not None:
            summary["start"] = str(np.datetime_as_string(self.timestamps[0], unit="D"))
            summary["end"] = str(np.datetime_as_string(self.timestamps[-1], unit="D"))
        summary["final_equity"] = float(self.equity[-1])
        summary["periods_per_year"] = float(self.periods_per_year)
        summary["calendar"] = self.calendar
        summary["risk_free"] = float(self.risk_free)
        summary["risk_free_per_period"] = risk_free_per_period(self.risk_free, self.periods_per_year)
        summary["metrics"] = self.metrics
        if self.mask_rule_rates is not None:
            summary["mask_rule_rates"] = dict(self.mask_rule_rates)
        return summary

    def to_frame(self):  # -> pandas.DataFrame
        """One row per decision: ``t``, ``equity`` (after the step), ``return``, ``turnover``, ``costs``,
        ``drawdown`` (``financing`` when the env reports it) and ``weight[<asset>]`` columns; indexed by the mark's
        timestamp when known."""
        import pandas as pd

        names = self.asset_names or tuple(f"asset_{i}" for i in range(self.weights.shape[1]))
        columns: dict[str, Any] = {
            "t": self.t[1:],
            "equity": self.equity[1:],
            "return": self.returns,
            "turnover": self.turnover,
            "costs": self.costs,
            "drawdown": self.drawdown[1:],
        }
        if self.financing is not None:
            columns["financing"] = self.financing
        columns.update({f"weight[{name}]": self.weights[:, j] for j, name in enumerate(names)})
        index = None if self.timestamps is None else pd.DatetimeIndex(self.timestamps[1:], name="date")
        return pd.DataFrame(columns, index=index)


def _measured_result(**fields: Any) -> BacktestResult:
    """A :class:`BacktestResult` whose ``metrics`` are computed from its own path (one definition for every builder)."""
    metrics = compute_metrics(
        fields["returns"],
        fields["periods_per_year"],
        turnover=fields["turnover"],
        costs=fields["costs"],
        weights=fields["weights"],
        risk_free=fields.get("risk_free", 0.0),
        benchmark=fields.get("benchmark_returns"),
        financing=fields.get("financing"),
    )
    return BacktestResult(metrics=metrics, **fields)


def buy_and_hold_returns(prices: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Per-step returns ``(n,)`` of holding the assets of ``prices`` from the mark ``t[0]`` on, equal weights at
    ``t[0]`` and no costs: with value ``V_k = mean_i(P_i,t_k / P_i,t_0)``, ``r_k = V_{k+1} / V_k - 1``.

    :param prices: ``(T, N)`` closes.
    :param t: ``(n + 1,)`` data rows of the marks.
    """
    marks = prices[np.asarray(t)]
    value = (marks / marks[0]).mean(axis=1)
    return value[1:] / value[:-1] - 1.0


def _finish(
    name: str,
    t: np.ndarray,
    equity: np.ndarray,
    turnover: np.ndarray,
    costs: np.ndarray,
    weights: np.ndarray,
    data: MarketData,
    periods_per_year: float | None,
    positions: np.ndarray | None = None,
    start_positions: np.ndarray | None = None,
    cash: np.ndarray | None = None,
    asset_names: Sequence[str] | None = None,
    risk_free: float = 0.0,
    financing: np.ndarray | None = None,
) -> BacktestResult:
    returns = equity[1:] / equity[:-1] - 1.0
    timestamps = None if data.timestamps is None else data.timestamps[t]
    ppy, calendar = data_calendar(data, periods_per_year)
    trades = None
    if positions is not None:
        before = np.zeros(positions.shape[1]) if start_positions is None else start_positions
        trades = np.diff(positions, axis=0, prepend=before[None, :])
    traded = list(data.asset_names)
    if asset_names is not None and set(asset_names) <= set(traded):  # e.g. LeveragedPair: the pair, not its index
        traded = list(asset_names)
    columns = [data.asset_names.index(name) for name in traded]
    return _measured_result(
        name=name,
        t=t,
        equity=equity,
        returns=returns,
        turnover=turnover,
        costs=costs,
        weights=weights,
        timestamps=timestamps,
        positions=positions,
        trades=trades,
        cash=cash,
        periods_per_year=ppy,
        asset_names=None if asset_names is None else tuple(asset_names),
        calendar=calendar,
        risk_free=float(risk_free),
        market=data,
        benchmark_returns=buy_and_hold_returns(data.prices[:, columns], t),
        financing=financing,
    )


def data_calendar(data: MarketData, periods_per_year: float | None = None) -> tuple[float, str]:
    """``(periods_per_year, calendar)`` of ``data``: its own calendar, or ``periods_per_year`` when given.

    :param data: the market (``MarketData.periods_per_year`` / ``.calendar``).
    :param periods_per_year: an override; ``None`` uses the data's.
    """
    if periods_per_year is None:
        return float(data.periods_per_year), str(data.calendar)
    return _check_ppy(periods_per_year), f"given: {float(periods_per_year):g} bars a year"


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


def make_backtest_env(
    env_id: str,
    data: MarketData,
    normalizer: FeatureNormalizer | str | None,
    env_kwargs: Mapping[str, Any] | None = None,
    sizing: Sequence[Any] | None = None,
    feature_fits: Mapping[str, Any] | None = None,
) -> gym.Env:
    """A single env that backtests ``data`` from its first usable bar to its end.

    Sets ``random_start=False`` and, for envs that take it, ``episode_length=None`` (the same
    held-out setup as ``sb3-trading train``); an env's own horizon (LeveragedPair's ``max_days``,
    stop-losses, drawdown limits) still applies unless ``env_kwargs`` switch it off.

    :param env_id: registered env ID.
    :param data: the backtest slice (the first ``window`` + indicator warm-up rows are look-back only).
    :param normalizer: the feature normaliser *fitted on training data* (``train_env.unwrapped.normalizer``);
        ``"fit"`` fits it on ``data`` itself, which leaks the backtest's statistics into the observations.
    :param env_kwargs: further env arguments (those above win over them).
    :param sizing: position-sizing wrappers the policy trades through (``run.json["sizing"]``,
        :func:`sb3_trading.wrappers.sizing.wrap_sizing` specs, innermost first); ``None``: none.
    :param feature_fits: the fitted indicator state *of the training data* (``train_env.unwrapped.feature_fits``,
        a run folder's ``feature_fits.json``): ``regime_prob``'s HMM then keeps its training fit on ``data``
        instead of being fitted on the leading (look-back) rows of ``data``. ``None``: ``env_kwargs``'s, if any.
    """
    kwargs = dict(env_kwargs or {})
    kwargs.pop("data", None)
    kwargs["normalizer"] = normalizer
    if feature_fits is not None:
        kwargs["feature_fits"] = feature_fits
    kwargs["random_start"] = False
    spec = gym.spec(env_id)
    entry = spec.entry_point
    env_class = _load_entry_point(entry) if isinstance(entry, str) else entry
    if "episode_length" in inspect.signature(env_class).parameters and "episode_length" not in (env_kwargs or {}):
        kwargs["episode_length"] = None
    return wrap_sizing(gym.make(env_id, data=data, **kwargs), sizing)


def _load_entry_point(entry_point: str) -> Any:
    import importlib

    module, _, attr = entry_point.partition(":")
    return getattr(importlib.import_module(module), attr)


def backtest(
    policy: Any,
    env: gym.Env | str,
    deterministic: bool = True,
    name: str = "agent",
    seed: int | None = None,
    periods_per_year: float | None = None,
    *,
    risk_free: float = 0.0,
    data: MarketData | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    normalizer: FeatureNormalizer | str | None = _UNSET,
    start: int | None = None,
    stop: int | None = None,
    consecutive: bool = False,
) -> BacktestResult:
    """Run ``policy`` over one episode of ``env`` (or consecutive episodes to the end of its data) and collect the path.

    :param policy: anything with SB3's ``predict(obs, state, episode_start, deterministic)``: an
        algorithm (``PPO``, ``MaskablePPO``, ``RecurrentPPO``...), a policy, or :class:`RandomPolicy`.
        Recurrent state is carried; action masks are passed when the env has ``action_masks()``.
    :param env: a single gymnasium env (``gym.make(...)`` or an env instance) of ``sb3_trading``, or a
        registered env ID, then built on ``data`` rows ``start:stop`` by :func:`make_backtest_env`.
    :param deterministic: use the policy's deterministic action.
    :param name: label stored in the result.
    :param seed: passed to ``env.reset``.
    :param periods_per_year: bars per year of the metrics; ``None`` (default): the env's data's,
        ``env.unwrapped.data.periods_per_year`` (its calendar).
    :param risk_free: **annual** risk-free rate, a fraction (``0.04`` = 4 %/year); Sharpe and Sortino are
        on the excess over its per-bar rate ``(1 + risk_free) ** (1 / P) - 1``.
    :param data: with an env ID: the market to backtest on (required).
    :param env_kwargs: with an env ID: further env arguments.
    :param normalizer: with an env ID (required there): the feature normaliser fitted on the *training*
        data, ``"fit"`` to fit on the backtest slice (leaks its statistics), or ``None`` for raw features.
    :param start: with an env ID: first row of ``data`` given to the env (look-back included).
    :param stop: with an env ID: end row (exclusive) of ``data`` given to the env.
    :param consecutive: when an episode ends before its path's last bar (an env's own horizon such as
        LeveragedPair's ``max_days``, a stop-loss, ``episode_length``), start the next one at the bar where it
        ended (``env.reset(options={"start": t})``, a fresh book with the env's initial cash, recurrent state
        reset) until the path's last bar, and compound the episodes into one path (:func:`concat_results`):
        a backtest of the whole slice. ``False`` (default): one episode.
    :return: the :class:`BacktestResult`; its ``t`` index rows of the env's data (the slice, with an ID).
    :raises TypeError: for a vectorised env.
    """
    risk_free = check_annual_rate(risk_free)
    if isinstance(env, str):
        if data is None:
            raise ValueError("backtest(policy, env_id) needs data=MarketData(...) to build the env on")
        if normalizer is _UNSET:
            raise ValueError(
                "backtest(policy, env_id, data=...) needs normalizer=: the normaliser fitted on the training data "
                "(train_env.unwrapped.normalizer), 'fit' to fit on the backtest slice itself (leaks its statistics), "
                "or None for raw features"
            )
        sliced = data if start is None and stop is None else data.slice(start, stop)
        built = make_backtest_env(env, sliced, normalizer, env_kwargs)
        try:
            return backtest(
                policy, built, deterministic, name, seed, periods_per_year, risk_free=risk_free, consecutive=consecutive
            )
        finally:
            built.close()
    if isinstance(env, gym.vector.VectorEnv) or hasattr(env, "num_envs"):
        raise TypeError("backtest needs a single env (e.g. gymnasium.make(...)), not a vectorised env")
    base = env.unwrapped
    masks_fn: Callable[[], np.ndarray] | None = getattr(base, "action_masks", None)
    takes_masks = "action_masks" in inspect.signature(policy.predict).parameters
    if masks_fn is not None and not takes_masks:
        masks_fn = None

    episodes, invalid, decisions = [], 0, 0
    rule_hits: np.ndarray | None = None
    options: dict[str, Any] | None = None
    while True:
        episode, last_t, episode_invalid = _episode(
            policy, env, masks_fn, deterministic, seed if options is None else None, options
        )
        invalid += episode_invalid
        decisions += len(episode["turnover"])
        if episode["mask_hits"] is not None:
            rule_hits = episode["mask_hits"] if rule_hits is None else rule_hits + episode["mask_hits"]
        episodes.append(
            _finish(
                name,
                np.asarray(episode["t"]),
                np.asarray(episode["equity"], dtype=np.float64),
                np.asarray(episode["turnover"], dtype=np.float64),
                np.asarray(episode["costs"], dtype=np.float64),
                np.stack(episode["weights"]),
                base.data,
                periods_per_year,
                positions=np.stack(episode["positions"]),
                start_positions=episode["start_positions"],
                cash=np.asarray(episode["cash"], dtype=np.float64),
                asset_names=getattr(base, "traded_assets", None),
                risk_free=risk_free,
                financing=None if episode["financing"] is None else np.asarray(episode["financing"], dtype=np.float64),
            )
        )
        if not consecutive or last_t >= int(base.path_last_t[last_t]):
            break
        options = {"start": last_t}
    result = episodes[0] if len(episodes) == 1 else concat_results(episodes)
    if masks_fn is not None or hasattr(base, "action_masks"):
        # masked envs: the share of decisions that chose a masked (no-op) action
        result.metrics["invalid_action_rate"] = invalid / max(decisions, 1)
    rule_names = getattr(base, "mask_rule_names", None)
    if rule_hits is not None and rule_names is not None:
        # code 0 is "legal"
        result.mask_rule_rates = {rule_names[k]: float(rule_hits[k]) / max(decisions, 1) for k in range(1, len(rule_names))}
    return result


def _episode(
    policy: Any,
    env: gym.Env,
    masks_fn: Callable[[], np.ndarray] | None,
    deterministic: bool,
    seed: int | None,
    options: dict[str, Any] | None,
) -> tuple[dict[str, Any], int, int]:
    """One episode of ``policy`` on ``env`` from ``env.reset(seed=seed, options=options)``: the ``info`` series
    (``t``, ``equity``, ``cash`` with the reset's mark first; ``turnover``, ``costs``, ``weights``, ``positions``
    per step; the reset's ``start_positions``; ``mask_hits``, per mask rule code the decisions at which it masked
    some action, where the env reports ``info["mask_reasons"]``), the last bar ``t`` and the count of masked
    actions chosen."""
    obs, info = env.reset(seed=seed, options=options)
    series: dict[str, Any] = {
        "start_positions": np.asarray(info["positions"], dtype=np.float64).copy(),
        "t": [info["t"]],
        "equity": [info["equity"]],
        "cash": [info["cash"]],
        "turnover": [],
        "costs": [],
        "weights": [],
        "positions": [],
        "financing": [] if "financing" in info else None,  # envs with financing report it every step
        "mask_hits": None,
    }
    state, episode_start = None, np.ones((1,), dtype=bool)
    done = False
    invalid = 0
    n_rules = len(getattr(env.unwrapped, "mask_rule_names", ()))
    while not done:
        kwargs = {} if masks_fn is None else {"action_masks": masks_fn()}
        action, state = policy.predict(obs, state=state, episode_start=episode_start, deterministic=deterministic, **kwargs)
        episode_start = np.zeros((1,), dtype=bool)
        obs, _, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        for key in ("t", "equity", "cash", "turnover", "costs"):
            series[key].append(info[key])
        series["weights"].append(np.asarray(info["weights"], dtype=np.float64))
        series["positions"].append(np.asarray(info["positions"], dtype=np.float64).copy())
        if series["financing"] is not None:
            series["financing"].append(info["financing"])
        invalid += bool(info.get("invalid_action", False))
        reasons = info.get("mask_reasons")
        if reasons is not None and n_rules:
            hits = (np.bincount(np.asarray(reasons, dtype=np.int64).ravel(), minlength=n_rules)[:n_rules] > 0).astype(np.int64)
            series["mask_hits"] = hits if series["mask_hits"] is None else series["mask_hits"] + hits
    return series, int(info["t"]), invalid


def concat_results(results: Sequence[BacktestResult], name: str | None = None) -> BacktestResult:
    """Stitch consecutive out-of-sample results (e.g. walk-forward folds) into one path.

    Returns are concatenated and compounded from the first result's starting equity; ``t`` holds the
    first start row followed by every result's mark rows, so it may jump between pieces. Costs, cash
    and positions are rescaled to the stitched equity of each piece.

    :param results: results in time order, with the same assets, calendar and risk-free rate.
    :param name: label (default: the first result's).
    :raises ValueError: no results, or results annualised with different ``periods_per_year`` / ``risk_free``.
    """
    if not results:
        raise ValueError("concat_results needs at least one result")
    first = results[0]
    for attr in ("periods_per_year", "risk_free"):
        values = sorted({float(getattr(r, attr)) for r in results})
        if len(values) > 1:
            raise ValueError(f"concat_results needs results with one {attr}, got {values}: backtest them on the same data")
    returns = np.concatenate([r.returns for r in results])
    equity = first.equity[0] * np.concatenate([[1.0], np.cumprod(1.0 + returns)])
    scale = np.concatenate(
        [np.full(r.n_steps, equity[sum(x.n_steps for x in results[:i])] / r.equity[0]) for i, r in enumerate(results)]
    )
    t = np.concatenate([first.t[:1], *(r.t[1:] for r in results)])
    timestamps = None
    if all(r.timestamps is not None for r in results):
        timestamps = np.concatenate([first.timestamps[:1], *(r.timestamps[1:] for r in results)])
    weights = np.concatenate([r.weights for r in results])
    turnover = np.concatenate([r.turnover for r in results])
    costs = np.concatenate([r.costs for r in results]) * scale
    financing = None
    if all(r.financing is not None for r in results):
        financing = np.concatenate([r.financing for r in results]) * scale
    positions = trades = cash = None
    if all(r.positions is not None for r in results):
        positions = np.concatenate([r.positions for r in results]) * scale[:, None]
        trades = np.concatenate([r.trades for r in results]) * scale[:, None]
    if all(r.cash is not None for r in results):
        cash = np.concatenate([first.cash[:1], *(r.cash[1:] for r in results)]) * np.concatenate([[1.0], scale])
    benchmark = None
    if all(r.benchmark_returns is not None for r in results):
        benchmark = np.concatenate([r.benchmark_returns for r in results])
    ppy = first.periods_per_year
    return _measured_result(
        name=name or first.name,
        t=t,
        equity=equity,
        returns=returns,
        turnover=turnover,
        costs=costs,
        weights=weights,
        timestamps=timestamps,
        positions=positions,
        trades=trades,
        cash=cash,
        periods_per_year=ppy,
        asset_names=first.asset_names,
        calendar=first.calendar,
        risk_free=first.risk_free,
        market=first.market,
        benchmark_returns=benchmark,
        financing=financing,
    )


#: baseline names that moved to :mod:`sb3_trading.evaluation.baselines` (still importable from here)
_MOVED = (
    "BASELINES",
    "buy_and_hold",
    "cash_baseline",
    "env_baselines",
    "equal_weight",
    "random_baseline",
    "yield_rates",
)


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        import importlib

        return getattr(importlib.import_module("sb3_trading.evaluation.baselines"), name)
    raise AttributeError(f"module 'sb3_trading.evaluation.backtest' has no attribute {name!r}")
