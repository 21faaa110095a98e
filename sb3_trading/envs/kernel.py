"""The batched dynamics and their adapter: :class:`TradingKernel` and :class:`KernelTradingEnv`.

The envs built on :class:`KernelTradingEnv` keep their dynamics in a :class:`TradingKernel`:
batched state (one :class:`~sb3_trading.sim.Portfolio` row, clock and counters per account) and
batched ``reset``/``step``/``observe``, whose per-step work is one compiled numba function per env
(the env module's ``*_step``, built from the core's row kernels in :mod:`sb3_trading.sim.kernels`)
writing into the fresh arrays of a :class:`Transition` (:meth:`TradingKernel.blank`). The Gymnasium
env is the kernel's batch of one;
:class:`sb3_trading.vec.BatchedVecEnv` runs the *same* kernel with ``n_envs`` rows, so the two
cannot drift apart (and the env tests, no-look-ahead included, cover the vectorised env too).
Randomness stays per account: :meth:`TradingKernel.draw` takes one ``numpy.random.Generator`` per
reset row (the env's ``np_random``, or the vectorised env's per-env generators) and draws from
each in the same order. Both build their ``info`` with the one builder,
:func:`~sb3_trading.envs.info.standard_info`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sb3_trading.common.jit import njit
from sb3_trading.common.validation import check_int, check_real
from sb3_trading.envs.info import standard_info
from sb3_trading.envs.trading_env import (
    MARKET_KEY,
    PORTFOLIO_BOUND,
    PORTFOLIO_KEY,
    TradingEnv,
    clip_portfolio,
    sample_start,
)
from sb3_trading.sim import CostModel, Frictions, Portfolio


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
    :ivar reward: ``(k,)`` the agent's reward when it is not the step return (a shaped or penalised reward);
        ``None``: the reward is ``portfolio_return`` (see :meth:`TradingKernel.outcome`).
    :ivar ended: ``(k,)`` int8 codes of episodes a rule of the step ended (an index into :data:`END_REASONS`,
        0: none, e.g. :data:`MARGIN_CALL`); ``None``: only ruin ends episodes.
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
    reward: np.ndarray | None = None
    ended: np.ndarray | None = None

    @property
    def outputs(self) -> tuple[np.ndarray, ...]:
        """``(t, equity, cash, positions, weights, notional, costs, drawdown, portfolio)``: the arrays a compiled
        step kernel writes (see :meth:`TradingKernel.blank`)."""
        return (
            self.t,
            self.equity,
            self.cash,
            self.positions,
            self.weights,
            self.notional,
            self.costs,
            self.drawdown,
            self.portfolio,
        )


#: the ``info`` entries of the market rules, each present when its rule is on: net financing (currency), the mid
#: notional the order limits left unfilled, the positions the bracket orders closed
RULE_EXTRAS = ("financing", "unfilled", "bracket_exits")
#: ``info["terminated_by"]`` of a terminated step, by :attr:`Transition.ended` code (code 0: the env's own rule,
#: :meth:`TradingKernel.end_reason`)
END_REASONS = ("", "ruin", "margin_call", "stop_loss", "drawdown_limit")
#: :attr:`Transition.ended` code of a margin call (the book was liquidated below the maintenance margin)
MARGIN_CALL = 2
#: :attr:`Transition.ended` code of a drawdown limit that terminates the episode (``drawdown_action="terminate"``)
DRAWDOWN_LIMIT = 4
#: what an env's risk limit (YieldAllocation's ``max_drawdown``, LeveragedPair's ``stop_loss``) does to the episode:
#: ``"terminate"`` (a terminal state: SB3 bootstraps nothing past it) or ``"truncate"`` (a time-limit-like cut:
#: ``info["TimeLimit.truncated"]``, SB3 bootstraps the value of the last observation)
DRAWDOWN_ACTIONS: tuple[str, ...] = ("terminate", "truncate")
#: the ``info`` key naming why a terminated episode ended
TERMINATED_BY_KEY = "terminated_by"


@njit(internal=True)
def clip_bound(value: float) -> float:
    """``value`` clipped to ``[-PORTFOLIO_BOUND, PORTFOLIO_BOUND]``: one entry of a ``portfolio`` observation."""
    return min(max(value, -PORTFOLIO_BOUND), PORTFOLIO_BOUND)


@njit
def dead_zone_action(action: float, dead_zone: float) -> float:
    """The exposure of one action with a dead zone ``d`` in ``[0, 1)``: ``0`` for ``|a| <= d``, else
    ``sign(a) (|a| - d) / (1 - d)`` (continuous; ``+-1`` stay the full size; ``d = 0``: ``a`` itself)."""
    if dead_zone == 0.0:
        return action
    size = abs(action) - dead_zone
    if size <= 0.0:
        return 0.0
    return size / (1.0 - dead_zone) if action > 0.0 else -size / (1.0 - dead_zone)


def past_dead_zone(action: np.ndarray, dead_zone: float) -> np.ndarray:
    """The exposures of actions with a dead zone ``d``, elementwise (:func:`dead_zone_action` vectorised):
    ``sign(a) max(|a| - d, 0) / (1 - d)``."""
    return np.sign(action) * np.maximum(np.abs(action) - dead_zone, 0.0) / (1.0 - dead_zone)


def into_dead_zone(exposure: np.ndarray, dead_zone: float) -> np.ndarray:
    """The actions that hold ``exposure`` in ``[-1, 1]`` past a dead zone ``d``, the inverse of
    :func:`past_dead_zone`: ``0`` for ``0``, else ``sign(m) (d + |m| (1 - d))``."""
    size = np.abs(exposure)
    return np.where(size > 0.0, np.sign(exposure) * (dead_zone + size * (1.0 - dead_zone)), 0.0)


# the extras of a transition without env-specific info entries (shared: never mutate it)
NO_EXTRAS: dict[str, np.ndarray] = {}


class TradingKernel:
    """Batched dynamics of one env type for ``B`` independent accounts on the same market.

    Holds the env's static arrays (features, prices: shared, never copied) and the batched state:
    :attr:`book` (a ``(B, N)`` :class:`~sb3_trading.sim.Portfolio`), the clock :attr:`t`,
    :attr:`start_t` and :attr:`end_t` (the bar where the episode is truncated) ``(B,)`` and the
    equity :attr:`equity` ``(B,)`` marked at the close of ``t``. Subclasses implement :meth:`reset`
    and :meth:`step` (a step: :meth:`blank`, the env's compiled step kernel writing into it, :meth:`advance`),
    and override :meth:`draw` and :meth:`outcome` where the env differs.

    The clock and the equity may be shared with the last returned :class:`Transition`; the kernel replaces
    them (copy on write) instead of writing into them, and every transition gets fresh arrays, so a
    transition handed out stays valid. The books (:attr:`book`) are written in place.

    :param env: the configured env whose data and arguments the kernel runs.
    :param n_envs: batch size ``B``.
    :param prices: ``(T, N)`` closes of the ``N`` traded assets, at which the books are marked.
    :param costs: friction model of every account.
    :param initial_cash: starting cash of every account.
    """

    def __init__(self, env: TradingEnv, n_envs: int, prices: np.ndarray, costs: CostModel, initial_cash: float) -> None:
        self.n_envs = check_int("n_envs", n_envs, 1)
        self.n_assets = n_assets = prices.shape[1]
        self._prices = prices  # (T, N), shared
        self.features = env._features  # (T, F) float32, shared
        # (T - window + 1, window, F) read-only view: row i is the window of features[i : i + window]
        self._windows = sliding_window_view(self.features, env.window, axis=0).transpose(0, 2, 1)
        self.window = env.window
        self.first_t, self.last_t = env.first_t, env.last_t
        self.start_bounds, self.path_last_t = env.start_bounds, env.path_last_t  # episodes stay inside one path
        self.episode_length = env.episode_length
        self.random_start = env.random_start
        self.timestamps = env.data.timestamps
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
        starts = [sample_start(rng, *self.start_bounds, self.episode_length, True) for rng in rngs]
        return np.array(starts, dtype=np.int64)

    def reset(self, rows: np.ndarray, draws: dict[str, np.ndarray]) -> Transition:
        """Start new episodes in ``rows`` ``(k,)`` (int indices) with the values from :meth:`draw`."""
        raise NotImplementedError

    def step(self, actions: np.ndarray) -> Transition:
        """Advance every account one bar with validated, clipped ``actions`` (``(B, *action_shape)``)."""
        raise NotImplementedError

    def outcome(
        self, equity: Any, equity_t: Any, notional: Any, t: Any, end_t: Any, reward: Any = None, ended: Any = None
    ) -> tuple[Any, Any, Any, Any, Any]:
        """What a transition means for the agent, written once for Python scalars (the single env) and
        for ``(k,)`` arrays (the vectorised env) alike.

        :param equity: equity after the step (:attr:`Transition.equity`).
        :param equity_t: equity the step started from (:attr:`Transition.equity_t`).
        :param notional: traded notional (:attr:`Transition.notional`).
        :param t: bar of the new observation (:attr:`Transition.t`).
        :param end_t: the episode's truncation bar (:attr:`end_t`, read before any reset).
        :param reward: :attr:`Transition.reward` (``None``: the step return is the reward).
        :param ended: :attr:`Transition.ended` (``None``: no rule of the step ended an episode).
        :return: ``(reward, portfolio_return, terminated, truncated, turnover)``: terminated on ruin (equity <= 0)
            or when ``ended`` is set, truncated at ``end_t`` unless terminated.
        """
        portfolio_return = equity / equity_t - 1.0
        terminated = equity <= 0.0
        if ended is not None:
            if isinstance(terminated, np.ndarray):
                np.logical_or(terminated, ended, out=terminated)  # any non-zero code ends the episode
            else:
                terminated = terminated or bool(ended > 0)
        return (
            portfolio_return if reward is None else reward,
            portfolio_return,
            terminated,
            (t >= end_t) > terminated,
            notional / equity_t,
        )

    # ----------------------------------------------------------- market rules
    def use_market_rules(self, frictions: Frictions) -> None:
        """Run the compiled market rules ``frictions`` (the env's ``_market_rules``): keeps their arrays for the step
        kernel (``_friction_bars`` ``(T, F, N)``, ``_friction_rules``, ``_ohlc``), the bracket state :attr:`levels`
        ``(B, 3, N)`` and the ``info`` entries the rules in use report (:data:`RULE_EXTRAS`)."""
        self.frictions = frictions
        self._friction_bars, self._friction_rules = frictions.bars, frictions.rules
        self._ohlc = np.zeros((1, 3, self.n_assets)) if frictions.ohlc is None else frictions.ohlc
        #: ``(B, 3, N)`` bracket entry, stop and take-profit prices of each position (NaN: none)
        self.levels = np.full((self.n_envs, 3, self.n_assets), np.nan)
        on = (frictions.financed, frictions.limited, frictions.bracketed)
        #: ``(row of rule_outputs' values, name)`` of each ``info`` extra the rules in use report
        self._rule_extras = tuple((k, name) for k, (name, used) in enumerate(zip(RULE_EXTRAS, on, strict=True)) if used)

    def rule_outputs(self) -> tuple[tuple[np.ndarray, ...], dict[str, np.ndarray], np.ndarray | None]:
        """Fresh ``(financing, unfilled, bracket_exits, ended)`` ``(B,)`` arrays for a step kernel to write (``ended``
        int8), the ``info`` extras among them that the rules in use report, and ``ended`` when a margin call can end
        episodes (else ``None``: the :attr:`Transition.ended` of the step, for :meth:`blank`)."""
        n = self.n_envs
        values = np.empty((3, n))
        more = (values[0], values[1], values[2], np.empty(n, dtype=np.int8))
        return more, {name: values[k] for k, name in self._rule_extras}, more[3] if self.frictions.margined else None

    def reset_rules(self, rows: np.ndarray, tr: Transition) -> Transition:
        """Clear the bracket levels of reset ``rows`` and give the reset ``tr`` the rules' extras (zeros)."""
        self.levels[rows] = np.nan
        if not self._rule_extras:
            return tr
        zeros = np.zeros(tr.t.shape[0])
        return tr._replace(extras={**tr.extras, **{name: zeros for _, name in self._rule_extras}})

    def commit_opening(
        self, rows: np.ndarray, holdings: np.ndarray, peak: np.ndarray, levels: np.ndarray, tr: Transition
    ) -> Transition:
        """Install the books of ``rows`` that bought at their reset (LeveragedPair's split, YieldAllocation's initial
        weights): ``holdings`` ``(k, N + 1)``, ``peak`` ``(k,)`` and bracket ``levels`` ``(k, 3, N)`` from the opening
        kernel, the reset equity ``tr.equity``; returns ``tr`` with the rules' reset extras."""
        book = self.book
        book.holdings[rows] = holdings
        book.peak_equity[rows] = peak
        book.initial_equity[rows] = self.initial_cash
        self._set_equity(rows, tr.equity)
        tr = self.reset_rules(rows, tr)
        self.levels[rows] = levels
        return tr

    def end_reason(self, ended: int, equity: float) -> str:
        """``info["terminated_by"]`` of a terminated step: the :data:`END_REASONS` entry of its ``ended`` code, or
        ``"ruin"`` (the envs' own rule; envs that end episodes otherwise override this)."""
        return END_REASONS[ended] if ended > 0 else "ruin"

    def end_reasons(self, tr: Transition, terminated: np.ndarray) -> dict[int, str]:
        """Row -> :meth:`end_reason` of every terminated row of ``tr`` (``terminated`` ``(k,)`` bool)."""
        rows = np.flatnonzero(terminated)
        ended = np.zeros(tr.equity.shape[0], dtype=np.int8) if tr.ended is None else tr.ended
        return {int(r): self.end_reason(int(ended[r]), float(tr.equity[r])) for r in rows}

    # ---------------------------------------------------------------- shared
    def _end(self, start: np.ndarray) -> np.ndarray:
        """Truncation bar of episodes starting at ``start``: the last bar of their path, or ``episode_length``
        decisions later."""
        last = self.path_last_t.take(start)
        if self.episode_length is None:
            return last
        return np.minimum(start + self.episode_length, last)

    def set_clock(self, rows: np.ndarray, t: np.ndarray | int | None = None, start: np.ndarray | int | None = None) -> None:
        """Set the bar ``t`` and/or the episode start ``start`` of ``rows`` (copy on write)."""
        if t is not None:
            self.t = self.t.copy()
            self.t[rows] = t
        if start is not None:
            self.start_t = self.start_t.copy()
            self.start_t[rows] = start
            self.end_t = self._end(self.start_t)

    def blank(
        self,
        portfolio_size: int,
        extras: dict[str, np.ndarray] | None = None,
        n_rows: int | None = None,
        reward: bool = False,
        ended: np.ndarray | None = None,
    ) -> Transition:
        """A step's :class:`Transition` with fresh, unfilled arrays, for a compiled step kernel to write
        (:attr:`Transition.outputs`, which starts with ``t``: the kernel writes the next bar): ``equity_t`` is the
        current equity, ``portfolio`` ``(B, portfolio_size)`` float32. Finish the step with :meth:`advance`.
        ``n_rows``: a transition of that many rows instead of ``B`` (a reset's; set its ``equity_t`` yourself);
        ``reward``: with a ``(B,)`` :attr:`Transition.reward` for the kernel to write (a reward that is not the return);
        ``ended``: the :attr:`Transition.ended` array the kernel writes (:meth:`rule_outputs`)."""
        n, n_assets = self.n_envs if n_rows is None else n_rows, self.n_assets
        return Transition(
            np.empty(n),
            self.equity,
            np.empty(n),
            np.empty((n, n_assets)),
            np.empty((n, n_assets)),
            np.empty(n),
            np.empty(n),
            np.empty(n),
            np.empty(n, dtype=np.int64),
            np.empty((n, portfolio_size), dtype=np.float32),
            NO_EXTRAS if extras is None else extras,
            np.empty(n) if reward else None,
            ended,
        )

    def advance(self, tr: Transition) -> Transition:
        """Move the clock and the equity to the filled step ``tr`` (from :meth:`blank`) and return it."""
        self.t, self.equity = tr.t, tr.equity
        return tr

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

    def info(
        self,
        tr: Transition,
        row: int,
        portfolio_return: Sequence[float] | np.ndarray,
        turnover: Sequence[float] | np.ndarray,
        extra: dict[str, np.ndarray] | None = None,
    ) -> dict[str, Any]:
        """The standard ``info`` of account ``row`` of ``tr`` (:func:`~sb3_trading.envs.info.standard_info`).

        :param tr: the transition.
        :param row: the account.
        :param portfolio_return: ``(k,)`` step returns, from :meth:`outcome` (an array, or Python scalars in a tuple).
        :param turnover: ``(k,)`` turnover, from :meth:`outcome`.
        :param extra: more per-account entries, name -> ``(k,)`` array, added after the env's extras.
        :return: the keys of :data:`~sb3_trading.envs.info.INFO_KEYS`, ``timestamp`` when the data has timestamps,
            the env's extras, then ``extra``; Python scalars, ``positions`` and ``weights`` rows of ``tr``'s arrays.
        """
        return standard_info(
            row,
            tr.equity,
            tr.cash,
            tr.positions,
            tr.weights,
            portfolio_return,
            turnover,
            tr.costs,
            tr.drawdown,
            tr.t,
            self.timestamps,
            tr.extras | extra if extra else tr.extras,
        )

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
        t = tr.t.item()
        reward = None if tr.reward is None else tr.reward.item()
        ended = None if tr.ended is None else tr.ended.item()
        equity = tr.equity.item()
        outcome = kernel.outcome(equity, tr.equity_t.item(), tr.notional.item(), t, kernel.end_t.item(), reward, ended)
        info = self._last_info = kernel.info(tr, 0, (outcome[1],), (outcome[4],))
        if outcome[2]:
            info[TERMINATED_BY_KEY] = kernel.end_reason(ended or 0, equity)
        return {MARKET_KEY: self._market_window(t), PORTFOLIO_KEY: tr.portfolio[0]}, info, outcome

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        super().reset(seed=seed)
        kernel = self._kernel
        draws = kernel.draw((self.np_random,))
        start = self._start_option(options)
        if start is not None:  # reset(options={"start": t}): the drawn start is replaced, the other draws kept
            draws = {**draws, "start": np.array([start], dtype=np.int64)}
        obs, info, _ = self._single(kernel.reset(_ROW0, draws))
        self._needs_reset = False
        return obs, info

    def step(self, action: Any) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        if self._needs_reset:
            raise self._reset_needed()
        obs, info, (reward, _, terminated, truncated, _) = self._single(self._kernel.step(self._batch_action(action)))
        self._needs_reset = terminated or truncated
        return obs, reward, terminated, truncated, info


class ScalableExposure:
    """Mixin of the envs whose action cannot express a smaller book (YieldAllocation-v0's softmax weights,
    MarketImpact-v0's ``weight_mode="sum"``): :attr:`exposure_scale`, the fraction of the book the action's target
    weights apply to (the rest stays cash). The position-sizing wrappers (:mod:`sb3_trading.wrappers.sizing`) set it
    before every step; it is 1 (the action as asked) otherwise. Kernels read it as ``exposure_scale``.
    """

    _kernel: Any

    @property
    def exposure_scale(self) -> float:
        """Fraction of the book, in ``[0, 1]``, the next steps' target weights apply to."""
        return float(self._kernel.exposure_scale)

    @exposure_scale.setter
    def exposure_scale(self, value: float) -> None:
        self._kernel.exposure_scale = float(check_real("exposure_scale", value, 0.0, 1.0))


__all__ = [
    "DRAWDOWN_ACTIONS",
    "ScalableExposure",
    "DRAWDOWN_LIMIT",
    "END_REASONS",
    "MARGIN_CALL",
    "RULE_EXTRAS",
    "TERMINATED_BY_KEY",
    "NO_EXTRAS",
    "KernelTradingEnv",
    "TradingKernel",
    "Transition",
    "clip_bound",
    "clip_portfolio",
    "dead_zone_action",
    "into_dead_zone",
    "past_dead_zone",
]
