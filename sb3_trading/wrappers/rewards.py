"""Risk-shaped reward wrappers that work on every ``sb3_trading`` env.

They read only the standard ``info`` keys every env reports (``portfolio_return``,
``log_return``, ``turnover``, ``drawdown``...; see :mod:`sb3_trading.envs.base`), so
any of them wraps any env, and they stack like functions: the first wrapper applied
(the innermost) sees the env's reward, each outer one transforms what the inner one
returns.

=======================  ========================  ==========================================================================
registry name            wrapper                   reward returned (``r`` = incoming reward)
=======================  ========================  ==========================================================================
``log_return``           LogReturnReward           ``log(1 + R_t)`` (replaces ``r``)
``excess_return``        ExcessReturnReward        ``log(1 + R_t) - log(1 + rf)``, or ``R_t - rf`` (replaces ``r``)
``differential_sharpe``  DifferentialSharpeReward  Moody & Saffell's ``D_t`` (replaces ``r``)
``rolling_sharpe``       RollingSharpeReward       ``mean(x) / std(x)`` of the last ``window`` returns ``x`` (replaces ``r``)
``drawdown``             DrawdownPenalty           ``r - coef * max(e_t - e_{t-1}, 0)`` (or ``r - coef * e_t``)
``cvar``                 CVaRPenalty               ``r - coef * max(CVaR_alpha(last window returns) - above, 0)``
``volatility``           VolatilityPenalty         ``r - coef * max(std(last window returns) - above, 0)``
``turnover``             TurnoverPenalty           ``r - coef * turnover_t``
``smoothness``           ActionSmoothnessPenalty   ``r - coef * ||a_t - a_{t-1}||_p``
``scale``                RewardScale               ``scale * r``
``clip``                 RewardClip                ``min(max(r, low), high)``
=======================  ========================  ==========================================================================

``R_t`` is ``info["portfolio_return"]``, the simple return of the step net of costs; ``rf`` the risk-free
rate per bar; ``e_t = max(dd_t - above, 0)`` the drawdown ``dd_t`` beyond ``above``. Order matters the way
function composition does: the four *replacing* wrappers discard the incoming reward, so list them first
(innermost); :func:`wrap_reward` warns otherwise. ``clip`` bounds what it receives, so it belongs outermost
(after ``scale`` when the bounds are in scaled units).

The rolling terms (``cvar``, ``volatility``, ``rolling_sharpe``) are causal: at step ``t`` they use
the returns ``R_{t-n+1}..R_t`` of the current episode, ``n = min(t, window)``, the current one included;
their window empties at every reset. Standard deviations use ``ddof=1`` (as
:func:`sb3_trading.evaluation.compute_metrics`) and are per bar unless ``annualize=True`` (times
``sqrt(P)``, ``P`` bars a year). A rate ``rate`` is **annual** and converted to the bar's rate
``(1 + rate) ** (1 / P) - 1`` with ``P`` the env data's calendar, ``env.unwrapped.data.periods_per_year``
(or ``periods_per_year=``), as the evaluation's risk-free rate is; ``per_bar=`` gives the bar's rate directly.

Specs (:func:`parse_reward_spec`): ``"NAME"``, ``"NAME:VALUE"`` (the main argument),
``"NAME:VALUE,key=value,..."``, ``"NAME:key=value,..."``, e.g. ``"drawdown:0.5,above=0.08"``,
``"volatility:2,window=48,above=0.01"``, ``"rolling_sharpe:window=168"``, ``"excess_return:rate=0.04"``,
``"clip:1.0"`` (``[-1, 1]``), ``"clip:-0.5,2"`` (``[-0.5, 2]``).

Every wrapper adds to the step's ``info`` (never removing a key):

* ``info["raw_reward"]``: the reward that entered the innermost of these wrappers (the env's
  own reward); set once, never overwritten by outer wrappers.
* ``info["reward_components"]``: ``{key: term}``, one entry per wrapper, innermost first: the
  value a replacing wrapper returned (``"log_return"``, ``"excess_return"``, ``"differential_sharpe"``,
  ``"rolling_sharpe"``) or the magnitude a penalty subtracted (``"drawdown_penalty"``, ``"cvar_penalty"``,
  ``"volatility_penalty"``, ``"turnover_penalty"``, ``"smoothness_penalty"``), the factor of ``"scale"``,
  or what ``"clip"`` took off, ``r - clip(r)`` (so the outgoing reward is ``r - term``, as for a
  penalty; negative when a reward below ``low`` was raised). A key that is already taken (the same
  wrapper stacked twice) gets a suffix ``_2``, ``_3``...

The wrappers never mutate the ``info`` dict of the env below them: each one works on a copy.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_trading.common.parsing import split_spec
from sb3_trading.common.validation import check_bool, check_int, check_real, suggest
from sb3_trading.data.calendar import check_annual_rate, check_periods_per_year

RAW_REWARD_KEY = "raw_reward"
COMPONENTS_KEY = "reward_components"
DRAWDOWN_MODES = ("increase", "level")
RETURN_KINDS = ("simple", "log")
#: info key of each return kind of :data:`RETURN_KINDS`
RETURN_INFO_KEYS = {"simple": "portfolio_return", "log": "log_return"}

RewardSpec = str | tuple[str, dict[str, Any]]


def _check_finite(name: str, value: Any, minimum: float | None = None, strict: bool = False) -> float:
    """``float(value)`` if finite (and ``>= minimum``, or ``> minimum`` when ``strict``), else ``TypeError``/``ValueError``."""
    return check_real(name, value, minimum, strict_minimum=strict)  # type: ignore[return-value]


def _check_returns(returns: Any) -> str:
    """``returns`` if it is one of :data:`RETURN_KINDS`, else ``ValueError``."""
    if returns not in RETURN_KINDS:
        raise ValueError(f"returns must be one of {RETURN_KINDS}, got {returns!r}")
    return str(returns)


def env_periods_per_year(env: gym.Env, periods_per_year: Any = None, why: str = "") -> float:
    """Bars per year: ``periods_per_year`` when given, else the env's data's calendar ``env.unwrapped.data.periods_per_year``
    (the one lookup of the reward and sizing wrappers).

    :param env: the wrapped env.
    :param periods_per_year: an override (``> 0``), or ``None``.
    :param why: what needs it, for the error message.
    :raises ValueError: ``None`` on an env without ``data.periods_per_year`` (pass ``periods_per_year=``).
    """
    if periods_per_year is not None:
        return check_periods_per_year(periods_per_year)
    try:
        found = env.unwrapped.data.periods_per_year  # type: ignore[attr-defined]
    except AttributeError:
        raise ValueError(
            f"{why or 'this wrapper'} needs the bars per year, and {env.unwrapped} has no data.periods_per_year: "
            "pass periods_per_year= (e.g. 252 for exchange days, 8760 for hours of a 24/7 market)"
        ) from None
    return check_periods_per_year(found, "data.periods_per_year")


def _bar_rate(env: gym.Env, rate: Any, per_bar: Any, periods_per_year: Any, why: str = "") -> float:
    """The risk-free rate of one bar: ``per_bar`` when given, else the annual ``rate`` over the env's calendar.

    ``(1 + rate) ** (1 / P) - 1`` (as :func:`sb3_trading.data.calendar.per_bar_rate`), ``P`` from
    :func:`env_periods_per_year`; a zero ``rate`` needs no calendar.

    :param env: the wrapped env.
    :param rate: annual rate as a fraction (``0.04`` = 4 %/year), ``> -1``.
    :param per_bar: the rate of one bar (a fraction, ``> -1``) or ``None``; excludes a non-zero ``rate``.
    :param periods_per_year: bars per year, or ``None`` for the env data's.
    :param why: what needs it, for the error message.
    :raises ValueError: both ``rate`` and ``per_bar``, or a value out of range.
    """
    rate = check_annual_rate(rate, "rate")
    if per_bar is not None:
        if rate != 0.0:
            raise ValueError(f"give rate (annual) or per_bar (per bar), not both: got rate={rate!r}, per_bar={per_bar!r}")
        return _check_finite("per_bar", per_bar, -1.0, strict=True)
    if rate == 0.0:
        return 0.0
    return math.expm1(math.log1p(rate) / env_periods_per_year(env, periods_per_year, why))  # = per_bar_rate(rate, P)


class TradingRewardWrapper(gym.RewardWrapper, gym.utils.RecordConstructorArgs):
    """Base class: a :class:`gymnasium.RewardWrapper` whose :meth:`reward` can read the step's ``info``.

    ``RewardWrapper.reward`` receives only the reward, so :meth:`step` keeps a copy of the step's
    ``info`` in :attr:`info` (and the action in :attr:`action`) before calling :meth:`reward`,
    sets ``info["raw_reward"]`` if no inner wrapper did, and returns the copy with the wrapper's
    term in ``info["reward_components"]`` (see the module docstring). Subclasses implement
    :meth:`reward`, call :meth:`_record` with their term, and reset their state in :meth:`_reset_state`.

    :cvar component_key: key of this wrapper's term in ``info["reward_components"]``.
    :cvar primary_arg: constructor argument set by the ``NAME:VALUE`` form of :func:`wrap_reward`.
    :cvar replaces_reward: ``True`` when the incoming reward is discarded (not added to).
    """

    component_key: ClassVar[str] = "reward"
    primary_arg: ClassVar[str | None] = None
    replaces_reward: ClassVar[bool] = False

    @classmethod
    def positional_kwargs(cls, values: Sequence[Any]) -> dict[str, Any]:
        """The keyword arguments of the positional values of a spec (``"drawdown:0.5"`` -> ``{"coef": 0.5}``).

        The default maps one value to :attr:`primary_arg`; :class:`RewardClip` also takes two.

        :param values: the parsed positional values, in order (at least one).
        :raises ValueError: more values than the wrapper takes, or a wrapper without a main argument.
        """
        if cls.primary_arg is None:
            raise ValueError(f"takes no argument, got {len(values)} positional value(s) {list(values)}")
        if len(values) > 1:
            raise ValueError(f"takes one positional value ({cls.primary_arg}), got {len(values)}: {list(values)}")
        return {cls.primary_arg: values[0]}

    def __init__(self, env: gym.Env, **constructor_args: Any) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, **constructor_args)
        gym.RewardWrapper.__init__(self, env)
        #: the (copied) ``info`` of the current step, readable in :meth:`reward`
        self.info: dict[str, Any] = {}
        #: the action of the current step, readable in :meth:`reward`
        self.action: Any = None
        self._components: dict[str, float] = {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self._reset_state(info)
        return obs, info

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info = dict(info)
        info.setdefault(RAW_REWARD_KEY, float(reward))
        self._components = dict(info.get(COMPONENTS_KEY, {}))
        self.info, self.action = info, action
        shaped = float(self.reward(reward))
        info[COMPONENTS_KEY] = self._components
        return obs, shaped, terminated, truncated, info

    def _reset_state(self, info: dict[str, Any]) -> None:
        """Clear per-episode state; ``info`` is the reset ``info`` of the new episode."""

    def _record(self, value: float) -> None:
        """Store this wrapper's term of the current step in ``info["reward_components"]``."""
        key, n = self.component_key, 1
        while key in self._components:
            n += 1
            key = f"{self.component_key}_{n}"
        self._components[key] = float(value)

    def _step_return(self, returns: str) -> float:
        """The step's return of kind ``returns``: ``info["portfolio_return"]`` (``"simple"``) or ``info["log_return"]``."""
        return self._info_value(RETURN_INFO_KEYS[returns])

    def _info_value(self, key: str) -> float:
        """``float(self.info[key])``; a ``KeyError`` naming the wrapper when the env does not report it."""
        try:
            return float(self.info[key])
        except KeyError:
            raise KeyError(
                f"{type(self).__name__} needs info[{key!r}], one of the standard sb3_trading info keys, "
                f"but {self.env.unwrapped} does not report it"
            ) from None


class LogReturnReward(TradingRewardWrapper):
    r"""Reward = the step's log return.

    .. math:: r_t = \log(1 + R_t)

    read from ``info["log_return"]``, with ``R_t`` the simple portfolio return net of costs.
    Replaces the incoming reward; summed over an episode it is ``log(E_T / E_0)``, so
    maximising it maximises log wealth (Kelly).

    :param env: an env reporting the standard ``info`` keys.
    """

    component_key = "log_return"
    replaces_reward = True

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)

    def reward(self, reward: SupportsFloat) -> float:
        value = self._info_value("log_return")
        self._record(value)
        return value


class DifferentialSharpeReward(TradingRewardWrapper):
    r"""Moody & Saffell's differential Sharpe ratio (1998, 2001): the first-order effect of the
    step's return on an exponentially weighted Sharpe ratio.

    With ``R_t`` the step's return, moving estimates of its first and second moments

    .. math::

        A_t = A_{t-1} + \eta (R_t - A_{t-1}), \qquad B_t = B_{t-1} + \eta (R_t^2 - B_{t-1}),

    and the reward

    .. math::

        D_t = \frac{B_{t-1} \Delta A_t - \tfrac12 A_{t-1} \Delta B_t}{(B_{t-1} - A_{t-1}^2)^{3/2}},
        \qquad \Delta A_t = R_t - A_{t-1}, \; \Delta B_t = R_t^2 - B_{t-1}.

    ``A_0 = B_0 = 0`` at every reset. While the variance estimate ``B_{t-1} - A_{t-1}^2`` is
    ``<= var_epsilon`` (always on the first step of an episode, and on a flat return path) there
    is no risk estimate to divide by and ``D_t = 0``. Replaces the incoming reward. ``D_t`` is
    dimensionless and its size grows as ``eta`` shrinks (the denominator is ``~eta^{3/2}`` early
    in an episode); combine with :class:`RewardScale` to tune it.

    :param env: an env reporting the standard ``info`` keys.
    :param eta: adaptation rate ``eta`` in ``(0, 1]`` (about 1 / the averaging window in steps).
    :param returns: ``"simple"`` (``R_t = info["portfolio_return"]``, the paper's choice) or
        ``"log"`` (``R_t = info["log_return"]``).
    :param var_epsilon: variance floor below which ``D_t = 0`` (in squared return units).
    """

    component_key = "differential_sharpe"
    primary_arg = "eta"
    replaces_reward = True

    def __init__(self, env: gym.Env, eta: float = 0.01, returns: str = "simple", var_epsilon: float = 1e-12) -> None:
        super().__init__(env, eta=eta, returns=returns, var_epsilon=var_epsilon)
        self.eta = _check_finite("eta", eta, 0.0, strict=True)
        if self.eta > 1.0:
            raise ValueError(f"eta must be in (0, 1], got {eta!r}")
        self.returns = _check_returns(returns)
        self.var_epsilon = _check_finite("var_epsilon", var_epsilon, 0.0)
        self.A = 0.0
        self.B = 0.0

    def _reset_state(self, info: dict[str, Any]) -> None:
        self.A, self.B = 0.0, 0.0

    def reward(self, reward: SupportsFloat) -> float:
        r = self._step_return(self.returns)
        a, b = self.A, self.B
        delta_a, delta_b = r - a, r * r - b
        variance = b - a * a
        value = (b * delta_a - 0.5 * a * delta_b) / variance**1.5 if variance > self.var_epsilon else 0.0
        self.A, self.B = a + self.eta * delta_a, b + self.eta * delta_b
        self._record(value)
        return value


class DrawdownPenalty(TradingRewardWrapper):
    r"""Subtract a penalty on the drawdown ``dd_t = info["drawdown"] = 1 - E_t / max_{s<=t} E_s`` beyond a threshold.

    With ``e_t = max(dd_t - above, 0)``, the part of the drawdown deeper than ``above``,

    .. math::

        r'_t = r_t - \lambda \max(e_t - e_{t-1}, 0) \quad (\text{mode="increase"}), \qquad
        r'_t = r_t - \lambda \, e_t \quad (\text{mode="level"}),

    with ``e_{t-1}`` of the first step taken from the reset ``info`` (0 for a fresh account).
    ``"increase"`` charges each new loss below the running peak once, when it happens (a recovery
    is not rewarded); ``"level"`` charges the current depth on every step spent under water. On
    an equity path that never falls (``E_t >= E_{t-1}``) ``dd_t = 0`` and the penalty is exactly 0,
    and so it is while the drawdown is never deeper than ``above``. With ``above=0`` (default)
    ``e_t = dd_t``: the plain drawdown penalty. In ``"increase"`` mode a fall from
    5 % to 12 % under water with ``above=0.08`` costs ``lambda * 0.04``, the part of the fall below 8 %.

    :param env: an env reporting the standard ``info`` keys.
    :param coef: ``lambda >= 0``, reward units per unit of drawdown (a fraction).
    :param mode: ``"increase"`` or ``"level"``.
    :param above: threshold in ``[0, 1)``, a fraction of the peak (``0.08`` = 8 %): only the drawdown beyond it is charged.
    """

    component_key = "drawdown_penalty"
    primary_arg = "coef"

    def __init__(self, env: gym.Env, coef: float = 1.0, mode: str = "increase", above: float = 0.0) -> None:
        super().__init__(env, coef=coef, mode=mode, above=above)
        self.coef = _check_finite("coef", coef, 0.0)
        if mode not in DRAWDOWN_MODES:
            raise ValueError(f"mode must be one of {DRAWDOWN_MODES}, got {mode!r}")
        self.mode = mode
        self.above = _check_finite("above", above, 0.0)
        if self.above >= 1.0:
            raise ValueError(f"above must be in [0, 1) (a drawdown is a fraction of the peak, 0.08 = 8 %), got {above!r}")
        self._previous = 0.0

    def excess(self, drawdown: float) -> float:
        """``max(drawdown - above, 0)``: the part of ``drawdown`` beyond the threshold."""
        return max(drawdown - self.above, 0.0)

    def _reset_state(self, info: dict[str, Any]) -> None:
        self._previous = self.excess(float(info.get("drawdown", 0.0)))

    def reward(self, reward: SupportsFloat) -> float:
        excess = self.excess(self._info_value("drawdown"))
        measure = max(excess - self._previous, 0.0) if self.mode == "increase" else excess
        self._previous = excess
        penalty = self.coef * measure
        self._record(penalty)
        return float(reward) - penalty


class CVaRPenalty(TradingRewardWrapper):
    r"""Subtract a penalty on the empirical CVaR (expected shortfall) of the recent returns beyond a threshold.

    Keep the last ``n = min(t, window)`` returns ``R_{t-n+1}..R_t`` of the episode (including the
    current one), sort them ascending, and with ``k = max(1, ceil(alpha * n))``

    .. math::

        \mathrm{CVaR}_\alpha = -\frac{1}{k} \sum_{i=1}^{k} R_{(i)}, \qquad
        r'_t = r_t - \lambda \max(\mathrm{CVaR}_\alpha - \theta, 0),

    the mean loss of the worst ``k`` returns (the tail convention of ``cvar_5`` in
    :func:`sb3_trading.evaluation.compute_metrics`, with the sign flipped so a loss is positive)
    beyond ``theta = above``. A window whose tail loses at most ``above`` (or whose worst returns
    are gains) costs nothing (no bonus). The window empties at reset.

    :param env: an env reporting the standard ``info`` keys.
    :param coef: ``lambda >= 0``, reward units per unit of return.
    :param alpha: tail fraction in ``(0, 1]``.
    :param window: number of recent returns in the estimate, ``>= 1``.
    :param above: threshold ``theta >= 0``, a per-bar loss (``0.02`` = a 2 % mean tail loss per bar is free).
    """

    component_key = "cvar_penalty"
    primary_arg = "coef"

    def __init__(self, env: gym.Env, coef: float = 1.0, alpha: float = 0.05, window: int = 20, above: float = 0.0) -> None:
        super().__init__(env, coef=coef, alpha=alpha, window=window, above=above)
        self.coef = _check_finite("coef", coef, 0.0)
        self.alpha = _check_finite("alpha", alpha, 0.0, strict=True)
        if self.alpha > 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        self.window = check_int("window", window, 1)
        self.above = _check_finite("above", above, 0.0)
        self._returns: deque[float] = deque(maxlen=self.window)

    def _reset_state(self, info: dict[str, Any]) -> None:
        self._returns.clear()

    def cvar(self) -> float:
        """Empirical ``CVaR_alpha`` (a loss, positive when the tail loses) of the current window."""
        tail = np.sort(np.fromiter(self._returns, dtype=np.float64))
        k = max(1, math.ceil(self.alpha * tail.size - 1e-9))  # tolerance: 0.1 * 30 is 3.0000000000000004
        return -float(np.mean(tail[:k]))

    def reward(self, reward: SupportsFloat) -> float:
        self._returns.append(self._info_value("portfolio_return"))
        penalty = self.coef * max(self.cvar() - self.above, 0.0)
        self._record(penalty)
        return float(reward) - penalty


class _RollingReturns(TradingRewardWrapper):
    """Base of the wrappers on a rolling window of the episode's step returns (:class:`VolatilityPenalty`,
    :class:`RollingSharpeReward`): the window, its kind of return, its warm-up and its per-bar or annual scale."""

    def _setup_window(self, window: Any, returns: Any, min_periods: Any, annualize: Any, periods_per_year: Any) -> None:
        """Validate and store the window's arguments (called by the subclass's ``__init__``).

        :param window: number of recent returns kept, ``>= 2``.
        :param returns: ``"simple"`` or ``"log"``.
        :param min_periods: returns needed before the statistic is defined, in ``[2, window]``; ``None``: ``window``.
        :param annualize: scale the statistic by ``sqrt(P)``.
        :param periods_per_year: ``P``, or ``None`` for the env data's calendar (read only with ``annualize``).
        """
        self.window = check_int("window", window, 2)
        self.returns = _check_returns(returns)
        self.min_periods = check_int("min_periods", self.window if min_periods is None else min_periods, 2, self.window)
        self.annualize = check_bool("annualize", annualize)
        if periods_per_year is not None:
            check_periods_per_year(periods_per_year)
        if self.annualize:
            self.periods_per_year = env_periods_per_year(self.env, periods_per_year, f"{type(self).__name__}(annualize=True)")
        else:
            self.periods_per_year = periods_per_year
        self.annual_factor = math.sqrt(self.periods_per_year) if self.annualize else 1.0
        self._returns: deque[float] = deque(maxlen=self.window)

    def _reset_state(self, info: dict[str, Any]) -> None:
        self._returns.clear()

    def window_returns(self) -> np.ndarray:
        """``(n,)`` float64 returns of the current window, oldest first (``n = min(t, window)``)."""
        return np.fromiter(self._returns, dtype=np.float64, count=len(self._returns))


class VolatilityPenalty(_RollingReturns):
    r"""Subtract a penalty on the rolling volatility of the step returns beyond a threshold.

    With ``sigma_t = std(R_{t-n+1}..R_t, ddof=1)`` over the last ``n = min(t, window)`` returns of the
    episode (causal: the current step's return is the newest; nothing after it), per bar, or
    ``sigma_t * sqrt(P)`` with ``annualize=True``,

    .. math:: r'_t = r_t - \lambda \max(\sigma_t - \theta, 0), \qquad \theta = \text{above},

    Warm-up: while ``n < min_periods`` (default 2, the fewest returns with a standard deviation) the
    penalty is 0. The window empties at reset. ``above`` is in the units of ``sigma_t``: a per-bar
    standard deviation (``0.01`` = 1 % a bar), or an annual volatility with ``annualize=True`` (``0.2`` = 20 %).

    :param env: an env reporting the standard ``info`` keys.
    :param coef: ``lambda >= 0``, reward units per unit of standard deviation.
    :param window: number of recent returns in the estimate, ``>= 2``.
    :param above: threshold ``theta >= 0``; a volatility at or below it costs nothing.
    :param returns: ``"simple"`` (``info["portfolio_return"]``) or ``"log"`` (``info["log_return"]``).
    :param min_periods: returns needed before the penalty starts, in ``[2, window]``.
    :param annualize: compare and charge the annualised volatility ``sigma_t * sqrt(P)``.
    :param periods_per_year: ``P`` for ``annualize``; ``None``: ``env.unwrapped.data.periods_per_year``.
    """

    component_key = "volatility_penalty"
    primary_arg = "coef"

    def __init__(
        self,
        env: gym.Env,
        coef: float = 1.0,
        window: int = 20,
        above: float = 0.0,
        returns: str = "simple",
        min_periods: int = 2,
        annualize: bool = False,
        periods_per_year: float | None = None,
    ) -> None:
        super().__init__(
            env,
            coef=coef,
            window=window,
            above=above,
            returns=returns,
            min_periods=min_periods,
            annualize=annualize,
            periods_per_year=periods_per_year,
        )
        self.coef = _check_finite("coef", coef, 0.0)
        self.above = _check_finite("above", above, 0.0)
        self._setup_window(window, returns, min_periods, annualize, periods_per_year)

    def volatility(self) -> float:
        """``sigma_t`` of the current window (per bar, or annualised), 0 during the warm-up."""
        if len(self._returns) < self.min_periods:
            return 0.0
        return float(np.std(self.window_returns(), ddof=1)) * self.annual_factor

    def reward(self, reward: SupportsFloat) -> float:
        self._returns.append(self._step_return(self.returns))
        penalty = self.coef * max(self.volatility() - self.above, 0.0)
        self._record(penalty)
        return float(reward) - penalty


class RollingSharpeReward(_RollingReturns):
    r"""Reward = the Sharpe ratio of the last ``window`` step returns (e.g. 168 hourly bars: one week).

    With ``x_s = R_s - rf`` the excess returns of the last ``n = min(t, window)`` steps of the episode
    (causal: the current step's return is the newest),

    .. math:: r_t = \frac{\operatorname{mean}(x)}{\operatorname{std}(x, \mathrm{ddof}=1)} \quad (\times \sqrt{P}),

    a per-bar Sharpe ratio (the factor ``sqrt(P)`` only with ``annualize=True``). ``rf`` is the bar's rate of
    the annual ``rate`` (0 by default), ``log(1 + rf)`` for ``returns="log"``. Replaces the
    incoming reward.

    Warm-up: while ``n < min_periods`` the reward is 0. The default ``min_periods=2`` gives a ratio from the
    episode's second step on, over the ``n < window`` returns so far (an expanding window until it is full;
    noisier early on); ``min_periods=window`` rewards only full windows (pandas' ``rolling(window)``), and
    warns when the env's episodes are shorter than that (every reward would be 0).
    Zero spread: when ``std(x) <= std_epsilon`` (a flat path, e.g. all cash) there is no risk to divide
    by and the reward is 0. The window empties at reset. Unlike :class:`DifferentialSharpeReward` this is
    the *level* of the ratio at every step, not its change: an episode's sum counts a good week many times.

    :param env: an env reporting the standard ``info`` keys.
    :param window: number of recent returns in the ratio, ``>= 2``.
    :param returns: ``"simple"`` (``info["portfolio_return"]``) or ``"log"`` (``info["log_return"]``).
    :param rate: annual risk-free rate as a fraction (``0.04`` = 4 %/year), converted per bar with ``P``.
    :param per_bar: the risk-free rate of one bar instead of ``rate``.
    :param min_periods: returns needed before the ratio is defined, in ``[2, window]``; ``None``: ``window``.
    :param annualize: multiply the ratio by ``sqrt(P)``.
    :param periods_per_year: ``P``; ``None``: ``env.unwrapped.data.periods_per_year`` (read only when needed).
    :param std_epsilon: standard-deviation floor (return units) at or below which the reward is 0.
    """

    component_key = "rolling_sharpe"
    primary_arg = "window"
    replaces_reward = True

    def __init__(
        self,
        env: gym.Env,
        window: int = 168,
        returns: str = "simple",
        rate: float = 0.0,
        per_bar: float | None = None,
        min_periods: int | None = 2,
        annualize: bool = False,
        periods_per_year: float | None = None,
        std_epsilon: float = 1e-10,
    ) -> None:
        super().__init__(
            env,
            window=window,
            returns=returns,
            rate=rate,
            per_bar=per_bar,
            min_periods=min_periods,
            annualize=annualize,
            periods_per_year=periods_per_year,
            std_epsilon=std_epsilon,
        )
        self._setup_window(window, returns, min_periods, annualize, periods_per_year)
        rf = _bar_rate(self.env, rate, per_bar, periods_per_year, type(self).__name__)
        self.rate, self.per_bar = float(rate), per_bar
        self._warn_if_window_outlasts_episode()
        #: the risk-free return of one bar, in the kind of ``returns``
        self.risk_free_per_bar = math.log1p(rf) if self.returns == "log" else rf
        self.std_epsilon = _check_finite("std_epsilon", std_epsilon, 0.0)

    def _warn_if_window_outlasts_episode(self) -> None:
        """Warn when every episode ends before the warm-up does (the reward would always be 0)."""
        spec_steps = getattr(self.env.spec, "max_episode_steps", None) if self.env.spec is not None else None
        own_steps = getattr(self.env.unwrapped, "episode_length", None)
        lengths = [n for n in (spec_steps, own_steps) if isinstance(n, int) and not isinstance(n, bool) and n > 0]
        if lengths and min(lengths) < self.min_periods:
            warnings.warn(
                f"RollingSharpeReward needs min_periods={self.min_periods} returns before its first non-zero reward, "
                f"but episodes last at most {min(lengths)} steps: every reward would be 0; "
                "pass a smaller window or min_periods",
                UserWarning,
                stacklevel=3,
            )

    def sharpe(self) -> float:
        """The ratio of the current window (per bar, or annualised); 0 during the warm-up or on zero spread."""
        if len(self._returns) < self.min_periods:
            return 0.0
        excess = self.window_returns() - self.risk_free_per_bar
        std = float(np.std(excess, ddof=1))
        if not std > self.std_epsilon:
            return 0.0
        return float(np.mean(excess)) / std * self.annual_factor

    def reward(self, reward: SupportsFloat) -> float:
        self._returns.append(self._step_return(self.returns))
        value = self.sharpe()
        self._record(value)
        return value


class ExcessReturnReward(TradingRewardWrapper):
    r"""Reward = the step's return in excess of the risk-free rate.

    .. math::

        r_t = \log(1 + R_t) - \log(1 + r_f) \quad (\text{returns="log"}), \qquad
        r_t = R_t - r_f \quad (\text{returns="simple"}),

    with ``r_f`` the bar's risk-free rate: the annual ``rate`` converted with the env data's calendar,
    ``(1 + rate) ** (1 / P) - 1``, ``P = env.unwrapped.data.periods_per_year`` (or ``periods_per_year=``) —
    the rate :func:`sb3_trading.evaluation.compute_metrics` subtracts for its Sharpe ratio — or ``per_bar``
    directly. Replaces the incoming reward, as :class:`LogReturnReward` does: with the default
    ``returns="log"`` and ``rate=0`` the two are the same, and summed over an episode of ``T`` steps the
    reward is ``log(E_T / E_0) - T log(1 + r_f)``, the log wealth relative to cash earning the rate.

    :param env: an env reporting the standard ``info`` keys.
    :param rate: annual risk-free rate as a fraction (``0.04`` = 4 %/year), ``> -1``.
    :param per_bar: the risk-free rate of one bar (a fraction) instead of ``rate``.
    :param returns: ``"log"`` (``info["log_return"]``) or ``"simple"`` (``info["portfolio_return"]``).
    :param periods_per_year: ``P``; ``None``: the env data's calendar (read only for a non-zero ``rate``).
    """

    component_key = "excess_return"
    primary_arg = "rate"
    replaces_reward = True

    def __init__(
        self,
        env: gym.Env,
        rate: float = 0.0,
        per_bar: float | None = None,
        returns: str = "log",
        periods_per_year: float | None = None,
    ) -> None:
        super().__init__(env, rate=rate, per_bar=per_bar, returns=returns, periods_per_year=periods_per_year)
        self.returns = _check_returns(returns)
        if periods_per_year is not None:
            check_periods_per_year(periods_per_year)
        rf = _bar_rate(self.env, rate, per_bar, periods_per_year, type(self).__name__)
        self.rate, self.per_bar = float(rate), per_bar
        #: the risk-free return of one bar, in the kind of ``returns`` (``log(1 + r_f)`` for log returns)
        self.risk_free_per_bar = math.log1p(rf) if self.returns == "log" else rf

    def reward(self, reward: SupportsFloat) -> float:
        value = self._step_return(self.returns) - self.risk_free_per_bar
        self._record(value)
        return value


class TurnoverPenalty(TradingRewardWrapper):
    r"""Subtract a penalty proportional to the step's turnover (traded notional / equity).

    .. math:: r'_t = r_t - \lambda \, \mathrm{turnover}_t

    Trading costs are already in the env's return; this is an extra regulariser that makes
    trading look dearer than it is (e.g. to be robust to underestimated costs).

    :param env: an env reporting the standard ``info`` keys.
    :param coef: ``lambda >= 0``, reward units per unit of turnover (``1e-3`` ~ 10 bps).
    """

    component_key = "turnover_penalty"
    primary_arg = "coef"

    def __init__(self, env: gym.Env, coef: float = 1e-3) -> None:
        super().__init__(env, coef=coef)
        self.coef = _check_finite("coef", coef, 0.0)

    def reward(self, reward: SupportsFloat) -> float:
        penalty = self.coef * abs(self._info_value("turnover"))
        self._record(penalty)
        return float(reward) - penalty


class ActionSmoothnessPenalty(TradingRewardWrapper):
    r"""Subtract a penalty on the change of the action between consecutive steps.

    .. math:: r'_t = r_t - \lambda \, \lVert \phi(a_t) - \phi(a_{t-1}) \rVert_p

    where ``phi`` is :func:`gymnasium.spaces.flatten` of the action space (identity for a
    ``Box``; one-hot for ``Discrete``, so a change of a discrete action costs ``lambda * 2**(1/p)``).
    The first step of an episode has no previous action and costs nothing.

    :param env: any env (only the action is used).
    :param coef: ``lambda >= 0``, reward units per unit of action change.
    :param ord: the norm's order ``p`` (1 or 2).
    """

    component_key = "smoothness_penalty"
    primary_arg = "coef"

    def __init__(self, env: gym.Env, coef: float = 1e-3, ord: int = 1) -> None:
        super().__init__(env, coef=coef, ord=ord)
        self.coef = _check_finite("coef", coef, 0.0)
        if ord not in (1, 2):
            raise ValueError(f"ord must be 1 or 2, got {ord!r}")
        self.ord = int(ord)
        self._previous: np.ndarray | None = None

    def _reset_state(self, info: dict[str, Any]) -> None:
        self._previous = None

    def reward(self, reward: SupportsFloat) -> float:
        current = np.asarray(spaces.flatten(self.env.action_space, self.action), dtype=np.float64).reshape(-1)
        change = 0.0 if self._previous is None else float(np.linalg.norm(current - self._previous, ord=self.ord))
        self._previous = current
        penalty = self.coef * change
        self._record(penalty)
        return float(reward) - penalty


class RewardScale(TradingRewardWrapper):
    r"""Multiply the reward by a constant.

    .. math:: r'_t = c \, r_t

    Per-step returns are ~1e-3; PPO's value loss and ``huber_kappa`` are easier to tune at ~1.

    :param env: any env.
    :param scale: ``c > 0`` (a negative factor would turn the objective around).
    """

    component_key = "scale"
    primary_arg = "scale"

    def __init__(self, env: gym.Env, scale: float = 100.0) -> None:
        super().__init__(env, scale=scale)
        self.scale = _check_finite("scale", scale, 0.0, strict=True)

    def reward(self, reward: SupportsFloat) -> float:
        self._record(self.scale)
        return self.scale * float(reward)


class RewardClip(TradingRewardWrapper):
    r"""Clip the reward to ``[low, high]``.

    .. math:: r'_t = \min(\max(r_t, \text{low}), \text{high})

    ``bound=b`` is the symmetric range ``[-b, b]`` (the spec ``"clip:1.0"``); ``low``/``high`` an asymmetric
    one (``"clip:-0.5,2"``, or ``"clip:high=2"`` for one side only: a missing side is unbounded). With
    nothing given the range is ``[-1, 1]``. The term recorded is what was taken off, ``r_t - r'_t``
    (positive when a reward above ``high`` was cut, negative when one below ``low`` was raised, 0 inside).
    Clipping bounds what the wrapper receives, so list it last (outermost) for a bounded reward.

    :param env: any env.
    :param bound: ``b > 0`` for ``[-b, b]``; excludes ``low`` and ``high``.
    :param low: lower bound (``None``: none).
    :param high: upper bound (``None``: none), ``> low``.
    """

    component_key = "clip"
    primary_arg = "bound"

    def __init__(self, env: gym.Env, bound: float | None = None, low: float | None = None, high: float | None = None) -> None:
        super().__init__(env, bound=bound, low=low, high=high)
        if bound is not None:
            if low is not None or high is not None:
                raise ValueError(
                    f"give bound (for [-bound, bound]) or low/high, not both: got bound={bound!r}, low={low!r}, high={high!r}"
                )
            b = _check_finite("bound", bound, 0.0, strict=True)
            self.low, self.high = -b, b
        elif low is None and high is None:
            self.low, self.high = -1.0, 1.0
        else:
            self.low = -math.inf if low is None else _check_finite("low", low)
            self.high = math.inf if high is None else _check_finite("high", high)
            if not self.low < self.high:
                raise ValueError(f"low must be < high, got low={low!r}, high={high!r}")

    @classmethod
    def positional_kwargs(cls, values: Sequence[Any]) -> dict[str, Any]:
        """``clip:B`` -> ``{"bound": B}``; ``clip:LOW,HIGH`` -> ``{"low": LOW, "high": HIGH}``."""
        if len(values) == 1:
            return {"bound": values[0]}
        if len(values) == 2:
            return {"low": values[0], "high": values[1]}
        raise ValueError(f"takes clip:BOUND or clip:LOW,HIGH, got {len(values)} positional values: {list(values)}")

    def reward(self, reward: SupportsFloat) -> float:
        value = float(reward)
        clipped = min(max(value, self.low), self.high)
        self._record(value - clipped)
        return clipped


#: registry name -> wrapper class, for :func:`wrap_reward` and ``sb3-trading train --reward NAME[:ARG[,key=value...]]``
REWARD_WRAPPERS: dict[str, type[TradingRewardWrapper]] = {
    "log_return": LogReturnReward,
    "excess_return": ExcessReturnReward,
    "differential_sharpe": DifferentialSharpeReward,
    "rolling_sharpe": RollingSharpeReward,
    "drawdown": DrawdownPenalty,
    "cvar": CVaRPenalty,
    "volatility": VolatilityPenalty,
    "turnover": TurnoverPenalty,
    "smoothness": ActionSmoothnessPenalty,
    "scale": RewardScale,
    "clip": RewardClip,
}


def parse_reward_spec(spec: RewardSpec) -> tuple[type[TradingRewardWrapper], dict[str, Any]]:
    """Resolve one reward spec to its wrapper class and keyword arguments.

    Accepted forms:

    * ``"NAME"``: the wrapper with its defaults;
    * ``"NAME:VALUE"``: sets the wrapper's main argument (:attr:`~TradingRewardWrapper.primary_arg`: ``coef`` for
      the penalties, ``eta`` for ``differential_sharpe``, ``window`` for ``rolling_sharpe``, ``rate`` for
      ``excess_return``, ``scale`` for ``scale``; ``clip:B`` is ``[-B, B]`` and ``clip:LOW,HIGH`` takes two);
    * ``"NAME:key=value,key=value"``; ``"NAME:VALUE,key=value,..."`` (positional values first), e.g.
      ``"drawdown:0.5,above=0.08"``;
    * a tuple ``(NAME, {kwargs})`` (or the list JSON makes of it).

    Values are Python literals (:func:`~sb3_trading.common.parsing.parse_literal`; a bare word is a string); commas
    inside brackets or quotes do not split (``"x:w=[1, 2]"``).

    :raises ValueError: unknown name (with the closest registered one), a malformed spec, an argument the wrapper
        does not take (listing those it takes), or one given twice.
    """
    form = "expected NAME:key=value[,key=value...] or NAME:VALUE[,VALUE...][,key=value...]"
    name, positional, kwargs = split_spec(spec, "reward", form)
    if name not in REWARD_WRAPPERS:
        # a name contained in a registered one ("sharpe") first, then difflib's closest spelling
        close = [known for known in REWARD_WRAPPERS if name and name in known]
        hint = f"; did you mean {close[0]!r}?" if close else suggest(name, REWARD_WRAPPERS)
        raise ValueError(f"unknown reward wrapper {name!r}{hint} Known: {sorted(REWARD_WRAPPERS)}")
    cls = REWARD_WRAPPERS[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "env")]
    if positional:
        if not accepted:
            raise ValueError(f"reward wrapper {name!r} takes no argument, got {spec!r}")
        try:
            from_positional = cls.positional_kwargs(positional)
        except ValueError as exc:
            raise ValueError(f"reward wrapper {name!r} {exc} in {spec!r}; it takes {accepted}") from None
        for key in from_positional:
            if key in kwargs:
                raise ValueError(f"reward spec {spec!r} gives {key!r} twice: as a value and as {key}=")
        kwargs = {**from_positional, **kwargs}
    for key in kwargs:
        if key not in accepted:
            raise ValueError(f"reward wrapper {name!r} has no argument {key!r}{suggest(key, accepted)} It takes {accepted}")
    return cls, kwargs


def wrap_reward(env: gym.Env, specs: RewardSpec | Sequence[RewardSpec] | None) -> gym.Env:
    """Wrap ``env`` in the reward wrappers named by ``specs``, the first one innermost.

    ``wrap_reward(env, ["differential_sharpe:0.01", "drawdown:0.5", "scale:10"])`` is
    ``RewardScale(DrawdownPenalty(DifferentialSharpeReward(env, eta=0.01), coef=0.5), scale=10)``.
    Usable as SB3's ``make_vec_env(..., wrapper_class=wrap_reward, wrapper_kwargs={"specs": specs})``.

    :param env: the env to wrap.
    :param specs: one spec or a sequence of them (forms in :func:`parse_reward_spec`); ``None`` or
        empty returns ``env`` unchanged.
    :return: the wrapped env.
    :raises ValueError: on an unknown name (with a suggestion) or bad arguments.
    """
    if specs is None:
        return env
    single = isinstance(specs, str) or (isinstance(specs, tuple) and len(specs) == 2 and isinstance(specs[1], dict))
    items: Iterable[RewardSpec] = [specs] if single else specs  # type: ignore[list-item]
    parsed = [parse_reward_spec(spec) for spec in items]
    for position, (cls, _) in enumerate(parsed):
        if cls.replaces_reward and position > 0:
            inner = ", ".join(c.__name__ for c, _ in parsed[:position])
            warnings.warn(
                f"{cls.__name__} replaces the reward, so the shaping of the wrappers inside it ({inner}) is discarded; "
                "list it first",
                stacklevel=2,
            )
    for cls, kwargs in parsed:
        env = cls(env, **kwargs)
    return env
