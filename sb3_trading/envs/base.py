"""What every ``sb3_trading`` environment shares: observation layout, episodes, ``info``.

Observation layout (the contract feature extractors read)
---------------------------------------------------------
Every env returns a ``gymnasium.spaces.Dict`` observation with two keys:

=================  ==================  ===========================================
key                shape               content
=================  ==================  ===========================================
``"market"``       ``(window, F)``     rows ``t - window + 1 .. t`` of the env's
                                       causal feature matrix (oldest first),
                                       normalised, ``float32``
``"portfolio"``    ``(P,)``            the agent's own state at ``t``, ``float32``
                                       (env-specific; MultiAsset: position value
                                       weights ``(N,)`` then cash weight ``(1,)``)
=================  ==================  ===========================================

SB3's ``MultiInputPolicy`` takes it as is; ``gymnasium.wrappers.FlattenObservation``
gives the flat vector ``[market.ravel(), portfolio]`` (keys sort alphabetically).

Standard ``info`` keys (every step and every reset)
---------------------------------------------------
``equity``, ``cash``, ``positions`` ``(N,)`` share counts, ``weights`` ``(N,)``,
``portfolio_return`` (simple return of the step, net of costs), ``log_return``,
``turnover`` (traded notional / equity before the trade), ``costs`` (currency),
``drawdown`` (``1 - equity / peak``), ``t`` (row index into the data) and
``timestamp`` (``numpy.datetime64``, when the data has timestamps).

Batched dynamics (one kernel, any batch size)
---------------------------------------------
The envs built on :class:`KernelTradingEnv` keep their dynamics in a :class:`TradingKernel`:
batched NumPy state (one :class:`~sb3_trading.sim.Portfolio` row, clock and counters per account)
and batched ``reset``/``step``/``observe``. The Gymnasium env is the kernel's batch of one;
:class:`sb3_trading.vec.BatchedVecEnv` runs the *same* kernel with ``n_envs`` rows, so the two
cannot drift apart (and the env tests, no-look-ahead included, cover the vectorised env too).
Randomness stays per account: :meth:`TradingKernel.draw` takes one ``numpy.random.Generator`` per
reset row (the env's ``np_random``, or the vectorised env's per-env generators) and draws from
each in the same order.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.lib.stride_tricks import sliding_window_view

from sb3_trading.data import MarketData
from sb3_trading.features import (
    DEFAULT_INDICATORS,
    DEFAULT_NORMALIZER,
    CausalNormalizer,
    FeatureNormalizer,
    NormalizerArg,
    compute_features,
    make_normalizer,
)
from sb3_trading.sim import CostModel, Portfolio, equity_fractions, with_cash_column

MARKET_KEY = "market"
PORTFOLIO_KEY = "portfolio"
INFO_KEYS = (
    "equity",
    "cash",
    "positions",
    "weights",
    "portfolio_return",
    "log_return",
    "turnover",
    "costs",
    "drawdown",
    "t",
)
EXECUTIONS = ("close", "next_open")
#: portfolio observation entries (weights, cash share) are clipped to [-PORTFOLIO_BOUND, PORTFOLIO_BOUND]
PORTFOLIO_BOUND = 10.0
#: smallest gross return whose log ``log_return`` reports (a ruined step reports ``log(1e-12)``)
_MIN_GROWTH = 1e-12
_LOG_MIN_GROWTH = math.log(_MIN_GROWTH)


def sample_start(rng: np.random.Generator, first_t: int, last_t: int, episode_length: int | None, random_start: bool) -> int:
    """First decision bar of a new episode: ``first_t``, or uniform over the bars that leave room for an episode.

    :param rng: the generator to draw from (an env's ``np_random``); untouched when ``random_start`` is False.
    :param first_t: first usable decision bar.
    :param last_t: last bar of the data.
    :param episode_length: decisions per episode (``None``: at least one).
    :param random_start: draw the bar instead of starting at ``first_t``.
    """
    if not random_start:
        return first_t
    length = 1 if episode_length is None else episode_length
    return int(rng.integers(first_t, last_t - length + 1))


def summary_line(info: dict[str, Any]) -> str:
    """One-line text summary of a step's standard ``info`` (what ``render_mode="ansi"`` shows)."""
    when = f" {np.datetime_as_string(info['timestamp'], unit='s')}" if "timestamp" in info else ""
    return (
        f"t={info['t']}{when} equity={info['equity']:.2f} return={info['portfolio_return']:+.4%} "
        f"drawdown={info['drawdown']:.2%} turnover={info['turnover']:.3f}"
    )


class TradingEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Base class: data, causal features, normalisation, episode bounds and ``info``.

    Subclasses build ``action_space`` and the ``portfolio`` part of the
    observation, and implement ``reset``/``step`` with the accounting core.

    :param data: the market; subclasses build a seeded synthetic one when ``None``.
    :param window: number of bars in the ``market`` observation.
    :param episode_length: decisions per episode; ``None`` runs to the end of the data.
    :param random_start: start each episode at a uniformly drawn bar (from ``self.np_random``)
        instead of the first usable one.
    :param indicators: technical indicators computed per asset (see :mod:`sb3_trading.features`);
        the data's own ``features`` columns are appended.
    :param feature_assets: compute the indicators on these assets only (default: all), e.g. the
        index that drives a traded ETF pair; the data's own ``features`` are always appended.
    :param render_mode: ``None`` or ``"ansi"`` (``render()`` returns a one-line text summary).
    :param normalizer: how the features are scaled (:mod:`sb3_trading.features.normalizer`).
        ``"expanding"`` (default): a :class:`~sb3_trading.features.CausalNormalizer` z-score of each row
        with the mean/std of all rows up to it, after a warm-up of ``min_periods`` rows (20), so the
        observation at ``t`` depends only on data ``<= t`` whatever data the env is built on;
        ``"rolling"`` (or ``"rolling:<window>"``): the same over the last 252 (``window``) rows;
        ``"fit"``: a :class:`~sb3_trading.features.FeatureNormalizer` z-score fitted on this env's whole
        data, which leaks the data's statistics into its own past (make the env on the *training*
        slice, then pass ``env.unwrapped.normalizer`` to the evaluation env); a normaliser instance is
        applied as is (a fitted one with its statistics, a causal one to this env's own past);
        ``None`` leaves features raw. ``env.normalizer`` holds the instance used.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        data: MarketData,
        window: int = 1,
        episode_length: int | None = None,
        random_start: bool = False,
        indicators: Sequence[str] | None = None,
        normalizer: NormalizerArg = DEFAULT_NORMALIZER,
        render_mode: str | None = None,
        feature_assets: Sequence[str] | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            # TypeError, not ValueError: SB3's make_vec_env asks for "rgb_array" and retries without it on TypeError
            raise TypeError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        if not isinstance(data, MarketData):
            raise TypeError(f"data must be a sb3_trading.data.MarketData, got {type(data).__name__}")
        if not isinstance(window, (int, np.integer)) or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window!r}")
        data.require_rows(window)
        self.data = data
        #: the assets the agent trades (subclasses narrow it, e.g. to an ETF pair); baselines use these
        self.traded_assets: tuple[str, ...] = tuple(data.asset_names)
        self.window = int(window)
        self.random_start = bool(random_start)

        source = data if feature_assets is None else data.select_assets(feature_assets)
        matrix = compute_features(source, DEFAULT_INDICATORS if indicators is None else tuple(indicators))
        self.feature_names = matrix.names
        resolved = make_normalizer(normalizer, matrix.values, matrix.warmup)
        self.normalizer: FeatureNormalizer | CausalNormalizer | None = resolved
        values = matrix.values if resolved is None else resolved.transform(matrix.values)
        self._features = np.ascontiguousarray(values, dtype=np.float32)  # (T, F)
        # leading rows with a NaN: the indicators' warm-up, plus a causal normaliser's min_periods
        bad_rows = np.flatnonzero(~np.isfinite(self._features).all(axis=1))
        warmup = int(bad_rows[-1]) + 1 if bad_rows.size else 0
        #: leading feature rows that are not observable (indicator and normaliser warm-up)
        self.feature_warmup = warmup
        # first row whose whole look-back window is past the warm-up
        self.first_t = warmup + self.window - 1
        self.last_t = data.n_steps - 1  # the last bar; a decision needs one bar after it
        if self.first_t > self.last_t - 1:
            normalizer_warmup = warmup - matrix.warmup
            also = f" and the normaliser's of {normalizer_warmup}" if normalizer_warmup else ""
            fix = " or a normaliser with a smaller min_periods" if normalizer_warmup else ""
            raise ValueError(
                f"window={window} plus the indicators' warm-up of {matrix.warmup} bars{also} needs at least "
                f"{self.first_t + 2} rows of data, but the data has {data.n_steps}; use a shorter window, "
                f"fewer/shorter indicators{fix} or more data"
            )
        max_length = self.last_t - self.first_t
        if episode_length is not None and not 1 <= episode_length <= max_length:
            raise ValueError(
                f"episode_length must be in [1, {max_length}] for this data and window "
                f"(usable bars {self.first_t}..{self.last_t}), got {episode_length!r}"
            )
        self.episode_length = episode_length

        bound = np.inf if resolved is None else resolved.clip
        self._market_space = spaces.Box(-bound, bound, shape=(self.window, self._features.shape[1]), dtype=np.float32)
        self._t = self.first_t
        self._start_t = self.first_t
        self._last_info: dict[str, Any] = {}

    # ----------------------------------------------------------- observation
    def _observation_space(self, portfolio_size: int) -> spaces.Dict:
        """The shared ``Dict`` layout; the ``(portfolio_size,)`` vector lies in ``[-PORTFOLIO_BOUND, PORTFOLIO_BOUND]``."""
        portfolio = spaces.Box(-PORTFOLIO_BOUND, PORTFOLIO_BOUND, shape=(portfolio_size,), dtype=np.float32)
        return spaces.Dict({MARKET_KEY: self._market_space, PORTFOLIO_KEY: portfolio})

    def _market_window(self, t: int) -> np.ndarray:
        """``(window, F)`` float32 copy of feature rows ``t - window + 1 .. t``."""
        return self._features[t - self.window + 1 : t + 1].copy()

    def _box_action(self, action: Any) -> np.ndarray:
        """Validate a ``Box`` action and clip it to the space's bounds.

        :raises ValueError: if the shape differs from ``action_space.shape`` or a value is NaN/inf.
        :return: the action as ``float64``, clipped to ``[low, high]`` (a new array).
        """
        space = self.action_space
        bounds = self.__dict__.get("_action_bounds")
        if bounds is None or bounds[0] is not space:  # float64 bounds: the clipped action is float64
            low, high = space.low.astype(np.float64), space.high.astype(np.float64)
            uniform = (float(low.min()), float(high.max())) if low.min() == low.max() and high.min() == high.max() else None
            bounds = self._action_bounds = (space, space.shape, low, high, uniform)
        a = np.asarray(action)
        if a.shape != bounds[1]:
            raise ValueError(f"action must have shape {space.shape} for {space}, got shape {a.shape}")
        if a.dtype.kind not in "biuf":
            raise ValueError(f"action must be finite numbers, got {a}")
        # Python floats (float64, so large float32 values cannot overflow): the sum is NaN/inf iff a value is,
        # and for these few values the builtins are cheaper than NumPy reductions
        values = a.ravel().tolist()
        if not math.isfinite(sum(values)):
            raise ValueError(f"action must be finite numbers, got {a}")
        uniform = bounds[4]
        if uniform is not None and uniform[0] <= min(values) and max(values) <= uniform[1]:
            return a.astype(np.float64)  # inside the box already (SB3 clips its actions before stepping)
        return np.minimum(np.maximum(a, bounds[2]), bounds[3])

    # --------------------------------------------------------------- episodes
    def _sample_start(self) -> int:
        """First decision bar of a new episode (uses ``self.np_random``)."""
        return sample_start(self.np_random, self.first_t, self.last_t, self.episode_length, self.random_start)

    def _episode_over(self) -> bool:
        """True once the data has no next bar or ``episode_length`` decisions were made."""
        if self._t >= self.last_t:
            return True
        return self.episode_length is not None and self._t - self._start_t >= self.episode_length

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: one line with the bar, its time and the last ``info`` numbers."""
        if self.render_mode != "ansi":
            return None
        return summary_line(self._last_info)

    # ------------------------------------------------------------------- info
    def _info(
        self,
        equity: float,
        cash: float,
        positions: np.ndarray,
        weights: np.ndarray,
        portfolio_return: float,
        turnover: float,
        costs: float,
        drawdown: float,
        t: int | None = None,
    ) -> dict[str, Any]:
        growth = 1.0 + portfolio_return
        if t is None:
            t = self._t
        info: dict[str, Any] = {
            "equity": equity,
            "cash": cash,
            "positions": positions,
            "weights": weights,
            "portfolio_return": portfolio_return,
            "log_return": math.log(growth) if growth > _MIN_GROWTH else _LOG_MIN_GROWTH,
            "turnover": turnover,
            "costs": costs,
            "drawdown": drawdown,
            "t": t,
        }
        if self.data.timestamps is not None:
            info["timestamp"] = self.data.timestamps[t]
        self._last_info = info
        return info


# ------------------------------------------------------------------------------------- batched kernels
class Transition(NamedTuple):
    """The accounts' state right after a kernel's ``reset`` or ``step``, ``k`` rows (``k = B`` for a step).

    Fresh arrays, never the kernel's state. What follows from it for the agent (reward, episode
    end, return, turnover) is :meth:`TradingKernel.outcome`.

    :ivar equity: ``(k,)`` equity marked at the close of ``t``.
    :ivar equity_t: ``(k,)`` equity the step started from (the trade was sized on it); at reset, ``initial_cash``.
    :ivar cash: ``(k,)`` cash.
    :ivar positions: ``(k, N)`` share counts.
    :ivar weights: ``(k, N)`` position values / equity (0 where equity <= 0).
    :ivar notional: ``(k,)`` traded notional at mid prices, currency.
    :ivar costs: ``(k,)`` commission plus slippage paid, currency.
    :ivar drawdown: ``(k,)`` ``1 - equity / peak``.
    :ivar t: ``(k,)`` int64 data row of the new observation.
    :ivar portfolio: ``(k, P)`` float32 ``portfolio`` observation at ``t``.
    :ivar extras: env-specific ``info`` entries, name -> ``(k,)`` array, in ``info`` order.
    """

    equity: np.ndarray
    equity_t: np.ndarray
    cash: np.ndarray
    positions: np.ndarray
    weights: np.ndarray
    notional: np.ndarray
    costs: np.ndarray
    drawdown: np.ndarray
    t: np.ndarray
    portfolio: np.ndarray
    extras: dict[str, np.ndarray]


# a 0-d array constant: NumPy adds two arrays faster than an array and a Python int (hot path)
ONE_INT = np.ones((), dtype=np.int64)
#: the ``extras`` of a transition without env-specific ``info`` entries (shared: never mutate it)
NO_EXTRAS: dict[str, np.ndarray] = {}


def clip_portfolio(portfolio: np.ndarray) -> np.ndarray:
    """A ``portfolio`` observation block: ``portfolio`` clipped to ``[-PORTFOLIO_BOUND, PORTFOLIO_BOUND]``, as new float32."""
    return np.minimum(np.maximum(portfolio, -PORTFOLIO_BOUND), PORTFOLIO_BOUND).astype(np.float32)


@functools.cache
def dict_builder(keys: tuple[str, ...]) -> Callable[[Iterable[tuple[Any, ...]]], list[dict[str, Any]]]:
    """A function turning rows of values into dicts with ``keys``, in order: ``[{keys[0]: row[0], ...} for row in rows]``.

    The comprehension is compiled once per key tuple with the keys as constants, so each dict is built by one
    dict display, sized for all its keys. Filling dicts key by key (or adding keys to a display) resizes every
    dict and costs about twice as much; the vectorised env builds ``n_envs`` infos on every step.

    :param keys: the dict keys (strings).
    """
    if not all(isinstance(key, str) for key in keys):
        raise TypeError(f"info keys must be strings, got {keys!r}")
    names = [f"v{i}" for i in range(len(keys))]
    display = ", ".join(f"{key!r}: {name}" for key, name in zip(keys, names, strict=True))
    return eval(f"lambda rows: [{{{display}}} for {', '.join(names)}, in rows]", {})  # noqa: S307 (keys are repr'd constants)


class TradingKernel:
    """Batched dynamics of one env type for ``B`` independent accounts on the same market.

    Holds the env's static arrays (features, prices: shared, never copied) and the batched state:
    :attr:`book` (a ``(B, N)`` :class:`~sb3_trading.sim.Portfolio`), the clock :attr:`t`,
    :attr:`start_t` and :attr:`end_t` (the bar where the episode is truncated) ``(B,)`` and the
    equity :attr:`equity` ``(B,)`` marked at the close of ``t``. Subclasses implement :meth:`reset`
    and :meth:`step`, and override :meth:`draw` and :meth:`outcome` where the env differs.

    State arrays may be shared with the last returned :class:`Transition`; the kernel replaces
    them (copy on write) instead of writing into them, so a transition handed out stays valid.

    :param env: the configured env whose data and arguments the kernel runs.
    :param n_envs: batch size ``B``.
    :param prices: ``(T, N)`` closes of the ``N`` traded assets, at which the books are marked.
    :param costs: friction model of every account.
    :param initial_cash: starting cash of every account.
    """

    def __init__(self, env: TradingEnv, n_envs: int, prices: np.ndarray, costs: CostModel, initial_cash: float) -> None:
        if isinstance(n_envs, bool) or not isinstance(n_envs, (int, np.integer)) or n_envs < 1:
            raise ValueError(f"n_envs must be an integer >= 1, got {n_envs!r}")
        self.n_envs = int(n_envs)
        self.n_assets = n_assets = prices.shape[1]
        self._prices = prices  # (T, N), shared
        self._prices_ext = with_cash_column(prices)  # (T, N + 1): the closes, then 1 (the price of cash)
        self.features = env._features  # (T, F) float32, shared
        # (T - window + 1, window, F) read-only view: row i is the window of features[i : i + window]
        self._windows = sliding_window_view(self.features, env.window, axis=0).transpose(0, 2, 1)
        self.window = env.window
        self.first_t, self.last_t = env.first_t, env.last_t
        self.episode_length = env.episode_length
        self.random_start = env.random_start
        self.timestamps = env.data.timestamps
        # the timestamps as a list of numpy.datetime64 scalars: a list lookup per info instead of a fancy index
        self._timestamp_list = None if self.timestamps is None else list(self.timestamps)
        self.initial_cash = float(initial_cash)
        self.book = Portfolio(self.n_envs, n_assets, costs)
        self.book.reset(self.initial_cash)  # a valid flat book before the first reset
        self.t = np.full(self.n_envs, self.first_t, dtype=np.int64)
        self.start_t = self.t.copy()
        self.end_t = self._end(self.start_t)
        self.equity = np.full(self.n_envs, self.initial_cash)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_windows"]  # a view: pickling it would copy every window; rebuilt on load
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._windows = sliding_window_view(self.features, self.window, axis=0).transpose(0, 2, 1)

    # ------------------------------------------------------------------ hooks
    def draw(self, rngs: Sequence[np.random.Generator]) -> dict[str, np.ndarray]:
        """Draw the randomness of one reset per generator, in the single env's order.

        :param rngs: one generator per reset row.
        :return: ``{"start": (k,) int64}`` (subclasses add their own draws after the start).
        """
        return {"start": self.draw_starts(rngs)}

    def draw_starts(self, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        """``(k,)`` int64 first decision bars, one :func:`sample_start` per generator (none is touched without
        ``random_start``: every episode then starts at ``first_t``)."""
        if not self.random_start:
            return np.full(len(rngs), self.first_t, dtype=np.int64)
        starts = [sample_start(rng, self.first_t, self.last_t, self.episode_length, True) for rng in rngs]
        return np.array(starts, dtype=np.int64)

    def reset(self, rows: np.ndarray, draws: dict[str, np.ndarray]) -> Transition:
        """Start new episodes in ``rows`` ``(k,)`` (int indices) with the values from :meth:`draw`."""
        raise NotImplementedError

    def step(self, actions: np.ndarray) -> Transition:
        """Advance every account one bar with validated, clipped ``actions`` (``(B, *action_shape)``)."""
        raise NotImplementedError

    def outcome(self, equity: Any, equity_t: Any, notional: Any, t: Any, end_t: Any) -> tuple[Any, Any, Any, Any, Any]:
        """What a transition means for the agent, written once for Python scalars (the single env) and
        for ``(k,)`` arrays (the vectorised env) alike.

        :param equity: equity after the step (:attr:`Transition.equity`).
        :param equity_t: equity the step started from (:attr:`Transition.equity_t`).
        :param notional: traded notional (:attr:`Transition.notional`).
        :param t: bar of the new observation (:attr:`Transition.t`).
        :param end_t: the episode's truncation bar (:attr:`end_t`, read before any reset).
        :return: ``(reward, portfolio_return, terminated, truncated, turnover)``; the default: the step
            return as reward, terminated on ruin (equity <= 0), truncated at ``end_t`` unless terminated.
        """
        portfolio_return = equity / equity_t - 1.0
        terminated = equity <= 0.0
        return portfolio_return, portfolio_return, terminated, (t >= end_t) > terminated, notional / equity_t

    # ---------------------------------------------------------------- shared
    def _end(self, start: np.ndarray) -> np.ndarray:
        """Truncation bar of episodes starting at ``start``: the last bar, or ``episode_length`` decisions later."""
        if self.episode_length is None:
            return np.full_like(start, self.last_t)
        return np.minimum(start + self.episode_length, self.last_t)

    def set_clock(self, rows: np.ndarray, t: np.ndarray | int | None = None, start: np.ndarray | int | None = None) -> None:
        """Set the bar ``t`` and/or the episode start ``start`` of ``rows`` (copy on write)."""
        if t is not None:
            self.t = self.t.copy()
            self.t[rows] = t
        if start is not None:
            self.start_t = self.start_t.copy()
            self.start_t[rows] = start
            self.end_t = self._end(self.start_t)

    def portfolio_block(self, fractions: np.ndarray, equity: np.ndarray, drawdown: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The ``(B, P)`` float32 ``portfolio`` observation after a step (subclasses add their own entries).

        :param fractions: ``(B, N + 1)`` position values, then the cash, as fractions of equity.
        :param equity: ``(B,)`` equity at the close of ``t``.
        :param drawdown: ``(B,)`` drawdown at the close of ``t``.
        :param t: ``(B,)`` the new bar.
        :return: the default: ``fractions`` clipped (position weights, then the cash weight).
        """
        return clip_portfolio(fractions)

    def finish_step(
        self, t_next: np.ndarray, notional: np.ndarray, costs: np.ndarray, extras: dict[str, np.ndarray]
    ) -> Transition:
        """End a step whose trade is done: mark the books at the closes of ``t_next`` ``(B,)`` (updating the
        peaks), move the clock and equity there and return the :class:`Transition` (``equity_t`` is the equity
        the step started from; ``positions`` and ``cash`` are views of one copy of the holdings).

        :param t_next: ``(B,)`` the new bar.
        :param notional: ``(B,)`` traded notional of the step.
        :param costs: ``(B,)`` frictions paid in the step.
        :param extras: the env-specific ``info`` entries of the step.
        """
        values, equity, drawdown = self.book.mark_values(self._prices_ext.take(t_next, axis=0))
        fractions = equity_fractions(values, equity)
        holdings = self.book.holdings.copy()
        portfolio = self.portfolio_block(fractions, equity, drawdown, t_next)
        equity_t, self.t, self.equity = self.equity, t_next, equity
        return Transition(  # positional: a third cheaper than keywords on this hot path
            equity,
            equity_t,
            holdings[:, -1],
            holdings[:, :-1],
            fractions[:, :-1],
            notional,
            costs,
            drawdown,
            t_next,
            portfolio,
            extras,
        )

    def _set_equity(self, rows: np.ndarray, equity: np.ndarray | float) -> None:
        self.equity = self.equity.copy()
        self.equity[rows] = equity

    def market(self, t: np.ndarray) -> np.ndarray:
        """``(k, window, F)`` float32 copies of the feature rows ``t - window + 1 .. t`` for each ``t`` ``(k,)``.

        One fancy index into a read-only sliding-window view of the features (each window is a contiguous
        block of memory); the same values as :func:`~sb3_trading.features.gather_windows`, which gathers
        ``window`` single rows per account and is several times slower for long windows.
        """
        return self._windows[t - (self.window - 1)]

    def observe(self, tr: Transition) -> dict[str, np.ndarray]:
        """Batched observation after ``tr``: ``market`` ``(k, window, F)``, ``portfolio`` ``(k, P)``, both float32."""
        return {MARKET_KEY: self.market(tr.t), PORTFOLIO_KEY: tr.portfolio}

    def infos(self, tr: Transition, outcome: tuple[np.ndarray, ...], extra: dict[str, np.ndarray] | None = None) -> list[dict]:
        """One standard ``info`` dict per account of ``tr``, the same entries as the single env's ``info``.

        :param tr: the transition.
        :param outcome: :meth:`outcome` of ``tr`` (arrays).
        :param extra: more per-account entries, name -> ``(k,)`` array, added last.
        :return: ``k`` dicts: the keys of :data:`INFO_KEYS`, ``timestamp`` when the data has timestamps, the
            env's extras, then ``extra``. Python scalars; ``positions`` and ``weights`` are rows of ``tr``'s arrays.
        """
        _, portfolio_return, _, _, turnover = outcome
        log_return = np.log(np.maximum(1.0 + portfolio_return, _MIN_GROWTH))
        keys = INFO_KEYS
        columns: list[list[Any]] = [
            tr.equity.tolist(),
            tr.cash.tolist(),
            list(tr.positions),
            list(tr.weights),
            portfolio_return.tolist(),
            log_return.tolist(),
            turnover.tolist(),
            tr.costs.tolist(),
            tr.drawdown.tolist(),
            tr.t.tolist(),
        ]
        if self.timestamps is not None:
            keys += ("timestamp",)
            timestamps = self._timestamp_list
            columns.append(list(map(timestamps.__getitem__, columns[-1])))
        for name, values in (tr.extras | extra if extra else tr.extras).items():
            keys += (name,)
            columns.append(values.tolist())
        return dict_builder(keys)(zip(*columns, strict=True))

    def _flat(self, start: np.ndarray, portfolio: np.ndarray) -> Transition:
        """Transition of ``k`` fresh all-cash accounts at bars ``start`` (no trade) with ``portfolio`` ``(k, P)``."""
        k = start.shape[0]
        cash = np.full(k, self.initial_cash)
        zeros = np.zeros(k)
        return Transition(
            equity=cash,
            equity_t=cash,
            cash=cash,
            positions=np.zeros((k, self.n_assets)),
            weights=np.zeros((k, self.n_assets)),
            notional=zeros,
            costs=zeros,
            drawdown=zeros,
            t=start.copy(),
            portfolio=portfolio,
            extras=NO_EXTRAS,
        )


_ROW0 = np.zeros(1, dtype=np.intp)
_ROW0.setflags(write=False)


class KernelTradingEnv(TradingEnv):
    """A :class:`TradingEnv` whose dynamics live in a :class:`TradingKernel`; the env is its batch of one.

    Subclasses build ``self._kernel = self.make_kernel(1)`` at the end of ``__init__`` and implement
    :meth:`make_kernel` and :meth:`_batch_action`. ``reset``/``step`` here only translate between
    the Gymnasium API and the batched kernel. ``_t``, ``_start_t`` and ``_book`` are the kernel's row 0.
    """

    _kernel: TradingKernel

    def make_kernel(self, n_envs: int) -> TradingKernel:
        """A kernel running this env's data and arguments for ``n_envs`` independent accounts."""
        raise NotImplementedError

    def _batch_action(self, action: Any) -> np.ndarray:
        """Validate one action and return it as a batch of one (``(1, *action_shape)``)."""
        return self._box_action(action)[None]

    # the kernel's row 0, under the names the other envs (and tests) use
    @property
    def _t(self) -> int:
        return int(self._kernel.t[0])

    @_t.setter
    def _t(self, value: int) -> None:
        kernel = self.__dict__.get("_kernel")
        if kernel is not None:  # TradingEnv.__init__ sets the clock before the kernel exists; it starts at first_t
            kernel.set_clock(_ROW0, t=value)

    @property
    def _start_t(self) -> int:
        return int(self._kernel.start_t[0])

    @_start_t.setter
    def _start_t(self, value: int) -> None:
        kernel = self.__dict__.get("_kernel")
        if kernel is not None:
            kernel.set_clock(_ROW0, start=value)

    @property
    def _book(self) -> Portfolio:
        return self._kernel.book

    def _single(self, tr: Transition) -> tuple[dict[str, np.ndarray], dict[str, Any], tuple[Any, ...]]:
        """Observation, ``info`` and :meth:`TradingKernel.outcome` (Python scalars) of the batch of one."""
        kernel = self._kernel
        t, equity = tr.t.item(), tr.equity.item()
        outcome = kernel.outcome(equity, tr.equity_t.item(), tr.notional.item(), t, kernel.end_t.item())
        info = self._info(
            equity,
            tr.cash.item(),
            tr.positions[0],
            tr.weights[0],
            outcome[1],
            outcome[4],
            tr.costs.item(),
            tr.drawdown.item(),
            t,
        )
        for name, values in tr.extras.items():
            info[name] = values.item()
        return {MARKET_KEY: self._market_window(t), PORTFOLIO_KEY: tr.portfolio[0]}, info, outcome

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        kernel = self._kernel
        obs, info, _ = self._single(kernel.reset(_ROW0, kernel.draw((self.np_random,))))
        return obs, info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        obs, info, (reward, _, terminated, truncated, _) = self._single(self._kernel.step(self._batch_action(action)))
        return obs, reward, terminated, truncated, info
