"""Risk-shaped reward wrappers that work on every ``sb3_trading`` env.

They read only the standard ``info`` keys every env reports (``portfolio_return``,
``log_return``, ``turnover``, ``drawdown``...; see :mod:`sb3_trading.envs.base`), so
any of them wraps any env, and they stack like functions: the first wrapper applied
(the innermost) sees the env's reward, each outer one transforms what the inner one
returns.

============================  ========================  ==========================================================
registry name                 wrapper                   reward returned (``r`` = incoming reward)
============================  ========================  ==========================================================
``log_return``                LogReturnReward           ``log(1 + R_t)`` (replaces ``r``)
``differential_sharpe``       DifferentialSharpeReward  Moody & Saffell's ``D_t`` (replaces ``r``)
``drawdown``                  DrawdownPenalty           ``r - coef * max(dd_t - dd_{t-1}, 0)`` (or ``r - coef * dd_t``)
``cvar``                      CVaRPenalty               ``r - coef * max(CVaR_alpha(last window returns), 0)``
``turnover``                  TurnoverPenalty           ``r - coef * turnover_t``
``smoothness``                ActionSmoothnessPenalty   ``r - coef * ||a_t - a_{t-1}||_p``
``scale``                     RewardScale               ``scale * r``
============================  ========================  ==========================================================

``R_t`` is ``info["portfolio_return"]``, the simple return of the step net of costs.
Order matters the way function composition does: the two *replacing* wrappers discard the
incoming reward, so list them first (innermost); :func:`wrap_reward` warns otherwise.

Every wrapper adds to the step's ``info`` (never removing a key):

* ``info["raw_reward"]``: the reward that entered the innermost of these wrappers (the env's
  own reward); set once, never overwritten by outer wrappers.
* ``info["reward_components"]``: ``{key: term}``, one entry per wrapper, innermost first: the
  value a replacing wrapper returned (``"log_return"``, ``"differential_sharpe"``) or the
  magnitude a penalty subtracted (``"drawdown_penalty"``, ``"cvar_penalty"``,
  ``"turnover_penalty"``, ``"smoothness_penalty"``), or the factor of ``"scale"``. A key that
  is already taken (the same wrapper stacked twice) gets a suffix ``_2``, ``_3``...

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

from sb3_trading.common.parsing import parse_literal
from sb3_trading.common.validation import check_int, check_real, suggest

RAW_REWARD_KEY = "raw_reward"
COMPONENTS_KEY = "reward_components"
DRAWDOWN_MODES = ("increase", "level")
RETURN_KINDS = ("simple", "log")

RewardSpec = str | tuple[str, dict[str, Any]]


def _check_finite(name: str, value: Any, minimum: float | None = None, strict: bool = False) -> float:
    """``float(value)`` if finite (and ``>= minimum``, or ``> minimum`` when ``strict``), else ``TypeError``/``ValueError``."""
    return check_real(name, value, minimum, strict_minimum=strict)  # type: ignore[return-value]


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
        if returns not in RETURN_KINDS:
            raise ValueError(f"returns must be one of {RETURN_KINDS}, got {returns!r}")
        self.returns = returns
        self.var_epsilon = _check_finite("var_epsilon", var_epsilon, 0.0)
        self.A = 0.0
        self.B = 0.0

    def _reset_state(self, info: dict[str, Any]) -> None:
        self.A, self.B = 0.0, 0.0

    def reward(self, reward: SupportsFloat) -> float:
        r = self._info_value("portfolio_return" if self.returns == "simple" else "log_return")
        a, b = self.A, self.B
        delta_a, delta_b = r - a, r * r - b
        variance = b - a * a
        value = (b * delta_a - 0.5 * a * delta_b) / variance**1.5 if variance > self.var_epsilon else 0.0
        self.A, self.B = a + self.eta * delta_a, b + self.eta * delta_b
        self._record(value)
        return value


class DrawdownPenalty(TradingRewardWrapper):
    r"""Subtract a penalty on the drawdown ``dd_t = info["drawdown"] = 1 - E_t / max_{s<=t} E_s``.

    .. math::

        r'_t = r_t - \lambda \max(dd_t - dd_{t-1}, 0) \quad (\text{mode="increase"}), \qquad
        r'_t = r_t - \lambda \, dd_t \quad (\text{mode="level"}),

    with ``dd_{t-1}`` of the first step taken from the reset ``info`` (0 for a fresh account).
    ``"increase"`` charges each new loss below the running peak once, when it happens (a recovery
    is not rewarded); ``"level"`` charges the current depth on every step spent under water. On
    an equity path that never falls (``E_t >= E_{t-1}``) ``dd_t = 0`` and the penalty is exactly 0.

    :param env: an env reporting the standard ``info`` keys.
    :param coef: ``lambda >= 0``, reward units per unit of drawdown (a fraction).
    :param mode: ``"increase"`` or ``"level"``.
    """

    component_key = "drawdown_penalty"
    primary_arg = "coef"

    def __init__(self, env: gym.Env, coef: float = 1.0, mode: str = "increase") -> None:
        super().__init__(env, coef=coef, mode=mode)
        self.coef = _check_finite("coef", coef, 0.0)
        if mode not in DRAWDOWN_MODES:
            raise ValueError(f"mode must be one of {DRAWDOWN_MODES}, got {mode!r}")
        self.mode = mode
        self._previous = 0.0

    def _reset_state(self, info: dict[str, Any]) -> None:
        self._previous = float(info.get("drawdown", 0.0))

    def reward(self, reward: SupportsFloat) -> float:
        drawdown = self._info_value("drawdown")
        measure = max(drawdown - self._previous, 0.0) if self.mode == "increase" else max(drawdown, 0.0)
        self._previous = drawdown
        penalty = self.coef * measure
        self._record(penalty)
        return float(reward) - penalty


class CVaRPenalty(TradingRewardWrapper):
    r"""Subtract a penalty on the empirical CVaR (expected shortfall) of the recent returns.

    Keep the last ``n = min(t, window)`` returns ``R_{t-n+1}..R_t`` of the episode (including the
    current one), sort them ascending, and with ``k = max(1, ceil(alpha * n))``

    .. math::

        \mathrm{CVaR}_\alpha = -\frac{1}{k} \sum_{i=1}^{k} R_{(i)}, \qquad
        r'_t = r_t - \lambda \max(\mathrm{CVaR}_\alpha, 0),

    the mean loss of the worst ``k`` returns (the tail convention of ``cvar_5`` in
    :func:`sb3_trading.evaluation.compute_metrics`, with the sign flipped so a loss is positive).
    A window whose worst returns are gains costs nothing (no bonus). The window empties at reset.

    :param env: an env reporting the standard ``info`` keys.
    :param coef: ``lambda >= 0``, reward units per unit of return.
    :param alpha: tail fraction in ``(0, 1]``.
    :param window: number of recent returns in the estimate, ``>= 1``.
    """

    component_key = "cvar_penalty"
    primary_arg = "coef"

    def __init__(self, env: gym.Env, coef: float = 1.0, alpha: float = 0.05, window: int = 20) -> None:
        super().__init__(env, coef=coef, alpha=alpha, window=window)
        self.coef = _check_finite("coef", coef, 0.0)
        self.alpha = _check_finite("alpha", alpha, 0.0, strict=True)
        if self.alpha > 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        self.window = check_int("window", window, 1)
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
        penalty = self.coef * max(self.cvar(), 0.0)
        self._record(penalty)
        return float(reward) - penalty


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


#: registry name -> wrapper class, for :func:`wrap_reward` and ``sb3-trading train --reward NAME[:ARG]``
REWARD_WRAPPERS: dict[str, type[TradingRewardWrapper]] = {
    "log_return": LogReturnReward,
    "differential_sharpe": DifferentialSharpeReward,
    "drawdown": DrawdownPenalty,
    "cvar": CVaRPenalty,
    "turnover": TurnoverPenalty,
    "smoothness": ActionSmoothnessPenalty,
    "scale": RewardScale,
}


def parse_reward_spec(spec: RewardSpec) -> tuple[type[TradingRewardWrapper], dict[str, Any]]:
    """Resolve one reward spec to its wrapper class and keyword arguments.

    Accepted forms: ``"NAME"``; ``"NAME:VALUE"`` (sets the wrapper's main argument: ``eta`` for
    ``differential_sharpe``, ``scale`` for ``scale``, ``coef`` for the penalties);
    ``"NAME:key=value,key=value"``; or a tuple ``(NAME, {kwargs})``. Values are Python literals.

    :raises ValueError: unknown name (with the closest registered one), or a malformed spec.
    """
    if isinstance(spec, tuple):
        if len(spec) != 2 or not isinstance(spec[0], str) or not isinstance(spec[1], dict):
            raise ValueError(f"a reward spec tuple must be (name, kwargs dict), got {spec!r}")
        name, kwargs = spec[0].strip(), dict(spec[1])
        arg = None
    elif isinstance(spec, str):
        name, _, arg = (part.strip() for part in spec.partition(":"))
        kwargs = {}
    else:
        raise TypeError(f"a reward spec must be 'NAME[:ARG]' or (name, kwargs), got {type(spec).__name__} {spec!r}")
    if name not in REWARD_WRAPPERS:
        # a name contained in a registered one ("sharpe") first, then difflib's closest spelling
        close = [known for known in REWARD_WRAPPERS if name and name in known]
        hint = f"; did you mean {close[0]!r}?" if close else suggest(name, REWARD_WRAPPERS)
        raise ValueError(f"unknown reward wrapper {name!r}{hint} Known: {sorted(REWARD_WRAPPERS)}")
    cls = REWARD_WRAPPERS[name]
    if arg:
        if "=" in arg:
            for item in arg.split(","):
                key, sep, value = (part.strip() for part in item.partition("="))
                if not sep or not key:
                    raise ValueError(f"malformed reward spec {spec!r}: expected NAME:key=value[,key=value...]")
                kwargs[key] = parse_literal(value)
        elif cls.primary_arg is None:
            raise ValueError(f"reward wrapper {name!r} takes no argument, got {spec!r}")
        else:
            kwargs[cls.primary_arg] = parse_literal(arg)
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "env")]
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
