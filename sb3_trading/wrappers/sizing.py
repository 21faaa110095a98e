"""Position-sizing action wrappers: volatility targeting and fractional Kelly sizing.

Each wrapper multiplies the *risky exposure* the agent asks for by a scale ``s_t >= 0`` known at the decision
bar ``t`` (from the recent per-bar returns of the **unscaled** strategy, or from a causal market regime), then
hands the scaled action to the env:

=============  ==================  ========================================================================
registry name  wrapper             scale ``s_t``
=============  ==================  ========================================================================
``vol_target`` VolatilityTargeting ``min(cap, target_annual_vol / sigma_t)``, ``sigma_t`` annualised
``kelly``      FractionalKelly     ``clip(fraction * mean(x) / var(x), 0, cap)``
``regime``     RegimeSizing        ``scales[l_t]``, ``l_t`` a causal regime label at the decision bar
=============  ==================  ========================================================================

The unscaled strategy's returns (``vol_target``, ``kelly``)
-----------------------------------------------------------
``x_u = e_{u-1} . (P_u / P_{u-1} - 1)``: the exposure ``e`` the agent *asked for* at bar ``u - 1`` (before
scaling, as fractions of equity per traded asset, relative to the env's neutral book), times the traded
assets' close-to-close returns over bar ``u``. They are computed from the env's prices, not from
``info["portfolio_return"] / s``: that ratio is undefined once a scale is 0 (Kelly without an edge would
never see the strategy again), and costs and clipping would leak into it. So ``x`` is gross of costs and
financing, close-to-close (also with ``execution="next_open"``).

Causality: the scale of the decision at bar ``t`` uses ``x_{t-n+1} .. x_t``, ``n = min(lookback, history)``:
prices of bars ``<= t`` and the actions before ``t``, never the current action or a later price. The history
empties at every reset (episodes chained by the backtester, ``consecutive=True``, each warm up again).

Warm-up: while fewer than ``min_periods`` returns are known the scale is ``warmup_scale`` (at most ``cap``):
1 (the action as asked) for volatility targeting, 0 (no evidence of an edge yet) for Kelly.

Statistics use ``ddof=1``; ``sigma_t = std(x) * sqrt(P)`` with ``P`` the env data's calendar
(``env.unwrapped.data.periods_per_year``) or ``periods_per_year=``. A zero ``std`` gives the ``cap``
(volatility targeting), and a zero variance gives ``cap`` with a positive mean and 0 otherwise (Kelly).

How each env's action is scaled
-------------------------------
=====================  ==========================================================================================
env                    exposure ``e`` and scaled action
=====================  ==========================================================================================
``MultiAsset-v0``      ``a in [-1, 1]^N`` holds ``a'_i / N`` of equity in asset ``i`` (``a'`` the action past the env's
                       ``dead_zone``, ``a`` itself without one): ``e = a' / N``; the env gets the action whose ``a'``
                       is ``clip(s a', -1, 1)`` (the action bound caps the scaled exposure: with ``s > 1`` an asset
                       already at ``|a'_i| = 1`` stays there, so the realised scale can fall short of ``s``).
``LeveragedPair-v0``   ``action_mode="split"``: the bull fraction ``f`` (the rest in the inverse ETF); the neutral book
                       is the 50/50 split (``+L`` and ``-L`` exposures cancel): ``e = (f - 1/2, 1/2 - f)`` on
                       ``(bull, bear)``; the env gets ``clip(1/2 + s (f - 1/2), 0, 1)``. The split holds no cash, so
                       scaling moves it towards 50/50, not towards cash. ``"net"``: the signed position ``n`` (past
                       the dead zone) holds ``e = (max(n, 0), max(-n, 0))``; the env gets the action of ``clip(s n,
                       -1, 1)``, the rest in cash.
``MarketImpact-v0``    ``e = w``. ``weight_mode="cap"`` (``w = a' / max(sum(a'), 1)``, the rest in cash): the env gets
                       the scores of ``s w``, cut to ``w / sum(w)`` when ``s sum(w) > 1`` (long only, no leverage).
                       ``weight_mode="sum"`` (always fully invested): the action is sent as is and the env's
                       ``exposure_scale`` (:class:`~sb3_trading.envs.kernel.ScalableExposure`) is set to
                       ``min(s, 1)``: it trades ``min(s, 1) w``, the rest in cash.
``YieldAllocation-v0`` ``e = x w``, its softmax weights (summing to 1) times the invested fraction ``x`` (1, or the
                       sizing action's with ``size_action=True``); the action is sent as is and ``exposure_scale``
                       is ``min(s, 1)``: the book holds ``min(s, 1) x w``, the rest in cash (earning nothing). The
                       unscaled strategy's returns ignore the yields (price moves only).
``MaskedTrading-v0``,  refused (``TypeError``), as every discrete action space.
``SingleAsset-v0``
=====================  ==========================================================================================

``info`` (never removing a key, on a copy of the env's): ``info["sizing_scale"]``, the scale applied to the
step's action, and ``info["sizing_estimate"]``, the estimate it came from (``sigma_t`` annualised, or the full
Kelly fraction ``mean / var``, or the regime label; NaN during the warm-up; ``(N,)`` arrays for a per-asset
:class:`RegimeSizing`). A second sizing wrapper stacked on top writes
``sizing_scale_2``... The wrappers record their constructor arguments (``gym.utils.RecordConstructorArgs``), so
``gym.make(env.spec)`` rebuilds them, they pickle with the env, and rl-zoo3 builds them from an ``env_wrapper:``
entry (``- sb3_trading.wrappers.sizing.VolatilityTargeting: {target_annual_vol: 0.15}``).

Specs (:func:`parse_sizing_spec`): ``"NAME"``, ``"NAME:VALUE"`` (the main argument), ``"NAME:VALUE,key=value"``,
``"NAME:key=value,..."``, e.g. ``"vol_target:0.15,lookback=60"``, ``"kelly:0.5,lookback=250,cap=1"``,
``"regime:'vol_regime:20',scales=(1,1,0.25)"`` (a value holding ``:`` or ``,`` is quoted).
"""

from __future__ import annotations

import inspect
import logging
import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar, SupportsFloat

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_trading.common.parsing import split_spec
from sb3_trading.common.validation import check_int, check_real, suggest
from sb3_trading.envs.kernel import into_dead_zone, past_dead_zone
from sb3_trading.envs.yield_allocation import yield_weights
from sb3_trading.features.pipeline import regime_label_table
from sb3_trading.wrappers.rewards import env_periods_per_year

logger = logging.getLogger(__name__)

SCALE_KEY = "sizing_scale"
ESTIMATE_KEY = "sizing_estimate"
SUPPORTED_ENVS = ("MultiAsset-v0", "LeveragedPair-v0", "MarketImpact-v0", "YieldAllocation-v0")

SizingSpec = str | tuple[str, dict[str, Any]]


# ----------------------------------------------------------------------------- what an action means per env
class Exposure:
    """How one env's action maps onto a risky exposure, and back (see the module docstring's table).

    :param env: the env's ``unwrapped`` base.
    """

    name: ClassVar[str] = ""

    def __init__(self, env: gym.Env) -> None:
        self.env = env
        box = env.action_space  # a Box: exposure_model checked it
        self.low = np.asarray(box.low, dtype=np.float64)
        self.high = np.asarray(box.high, dtype=np.float64)

    def clip(self, action: Any) -> np.ndarray:
        """``action`` as float64 of the action space's shape, clipped to its bounds (as the env clips it)."""
        a = np.asarray(action, dtype=np.float64).reshape(self.low.shape)
        return np.clip(a, self.low, self.high)

    def exposure(self, action: np.ndarray) -> np.ndarray:
        """``(N,)`` the unscaled risky exposure of a clipped action, fractions of equity per traded asset."""
        raise NotImplementedError

    def scaled(self, action: np.ndarray, scale: float) -> np.ndarray:
        """The action (float32, in the action space) that holds ``scale`` times the exposure of ``action``."""
        raise NotImplementedError

    def scaled_past_dead_zone(self, action: np.ndarray, scale: float, dead_zone: float) -> np.ndarray:
        """A signed action in ``[-1, 1]`` with a dead zone (the position is the action past it): the action whose
        position is ``clip(scale * position, -1, 1)``, float32."""
        held = np.clip(scale * past_dead_zone(action, dead_zone), -1.0, 1.0)
        return np.clip(into_dead_zone(held, dead_zone), self.low, self.high).astype(np.float32)

    def prices(self, info: dict[str, Any]) -> np.ndarray:
        """``(N,)`` the traded assets' prices at the env's current bar (after a reset or step with ``info``)."""
        raise NotImplementedError

    def regime_columns(self, asset: str | None) -> tuple[list[int], bool]:
        """Columns of ``env.data`` whose regime sizes the exposure, and whether each scales its own asset.

        :param asset: an asset of the data (its regime scales the whole exposure), or ``None``: the env's default
            (:class:`RegimeSizing`).
        :return: ``(columns, per_asset)``: ``per_asset`` means one column per traded asset, in exposure order.
        """
        names = list(self.env.data.asset_names)  # type: ignore[attr-defined]
        if asset is None:
            return self.default_regime_columns()
        if asset not in names:
            raise ValueError(f"asset {asset!r} is not an asset of the env's data; its assets are {names}")
        return [names.index(asset)], False

    def default_regime_columns(self) -> tuple[list[int], bool]:
        """:meth:`regime_columns` for ``asset=None``."""
        raise NotImplementedError


class _TableExposure(Exposure):
    """Exposures on columns of the data's closes, read at ``info["t"]``."""

    columns: list[int]

    def prices(self, info: dict[str, Any]) -> np.ndarray:
        return np.asarray(self.env.data.prices[int(info["t"]), self.columns], dtype=np.float64)  # type: ignore[attr-defined]


class MultiAssetExposure(_TableExposure):
    """MultiAsset-v0: ``e = a / N``; scaled action ``clip(s a, -1, 1)``."""

    name = "MultiAsset-v0"

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.columns = list(range(env.data.n_assets))  # type: ignore[attr-defined]

    def exposure(self, action: np.ndarray) -> np.ndarray:
        return past_dead_zone(action, self.env.dead_zone) / action.shape[0]  # type: ignore[attr-defined]

    def default_regime_columns(self) -> tuple[list[int], bool]:
        return self.columns, True

    def scaled(self, action: np.ndarray, scale: float) -> np.ndarray:
        return self.scaled_past_dead_zone(action, scale, self.env.dead_zone)  # type: ignore[attr-defined]


class LeveragedPairExposure(_TableExposure):
    """LeveragedPair-v0. ``action_mode="split"``: ``e = (f - 1/2, 1/2 - f)`` on ``(bull, bear)``; scaled action
    ``clip(1/2 + s (f - 1/2), 0, 1)``. ``"net"``: ``e = (max(n, 0), max(-n, 0))`` for the position ``n`` past the
    dead zone; scaled: the action of ``clip(s n, -1, 1)``."""

    name = "LeveragedPair-v0"

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        names = list(env.data.asset_names)  # type: ignore[attr-defined]
        self.columns = [names.index(asset) for asset in env.traded_assets]  # type: ignore[attr-defined]
        self.index_column = names.index(env.index_asset)  # type: ignore[attr-defined]
        self.net, self.dead_zone = env.action_mode == "net", env.dead_zone  # type: ignore[attr-defined]

    def default_regime_columns(self) -> tuple[list[int], bool]:
        return [self.index_column], False  # both ETFs are leveraged on the index: its regime is theirs

    def exposure(self, action: np.ndarray) -> np.ndarray:
        if self.net:
            position = float(past_dead_zone(action, self.dead_zone)[0])
            return np.array([max(position, 0.0), max(-position, 0.0)])
        tilt = float(action[0]) - 0.5
        return np.array([tilt, -tilt])

    def scaled(self, action: np.ndarray, scale: float) -> np.ndarray:
        if self.net:
            return self.scaled_past_dead_zone(action, scale, self.dead_zone)
        return np.clip(0.5 + scale * (action - 0.5), self.low, self.high).astype(np.float32)


class MarketImpactExposure(Exposure):
    """MarketImpact-v0 with ``weight_mode="cap"``: ``e = w``; scaled action ``s w`` (cut to ``w / sum(w)`` past 1)."""

    name = "MarketImpact-v0"

    def exposure(self, action: np.ndarray) -> np.ndarray:
        return np.asarray(self.env.action_to_weights(action), dtype=np.float64)  # type: ignore[attr-defined]

    def scaled(self, action: np.ndarray, scale: float) -> np.ndarray:
        weights = self.exposure(action)
        total = float(weights.sum())
        factor = min(scale, 1.0 / total) if total > 0.0 else 0.0
        scores = into_dead_zone(factor * weights, self.env.dead_zone)  # type: ignore[attr-defined]
        return np.clip(scores, self.low, self.high).astype(np.float32)

    def prices(self, info: dict[str, Any]) -> np.ndarray:
        return np.asarray(self.env.market.current_prices[0], dtype=np.float64).copy()  # type: ignore[attr-defined]

    def default_regime_columns(self) -> tuple[list[int], bool]:
        names = list(self.env.data.asset_names)  # type: ignore[attr-defined]
        raise ValueError(
            f"MarketImpact-v0 sizes its book with one scale: name the asset whose regime (of the data's exogenous "
            f"prices) sizes it with asset=... (one of {names})"
        )


class BookFractionExposure(Exposure):
    """Envs whose action always allocates the whole book (:class:`~sb3_trading.envs.kernel.ScalableExposure`): the
    scale goes to the env's ``exposure_scale`` (the fraction of the book the action's weights apply to, the rest
    cash), capped at 1 (no leverage); the action itself is sent unchanged."""

    def scaled(self, action: np.ndarray, scale: float) -> np.ndarray:
        self.env.exposure_scale = min(float(scale), 1.0)  # type: ignore[attr-defined]
        return action.astype(np.float32)


class YieldAllocationExposure(BookFractionExposure, _TableExposure):
    """YieldAllocation-v0: ``e = x w`` (its softmax weights, summing to 1, times the sizing action's invested fraction
    ``x``, 1 without one); scaled: ``min(s, 1) x w``, the rest cash."""

    name = "YieldAllocation-v0"

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.columns = list(range(env.data.n_assets))  # type: ignore[attr-defined]

    def exposure(self, action: np.ndarray) -> np.ndarray:
        env: Any = self.env
        n = len(self.columns)
        weights = yield_weights(action[None, :n], env.lower_bound, env.upper_bound, env.temperature)[0]
        if env.size_action:  # the sizing entry's invested fraction, past its dead zone
            weights = weights * max(float(past_dead_zone(action[n:], env.dead_zone)[0]), 0.0)
        return weights

    def default_regime_columns(self) -> tuple[list[int], bool]:
        names = list(self.env.data.asset_names)  # type: ignore[attr-defined]
        raise ValueError(
            f"YieldAllocation-v0 sizes its whole book with one scale: name the asset whose regime sizes it with "
            f"asset=... (one of {names})"
        )


class MarketImpactBookExposure(BookFractionExposure, MarketImpactExposure):
    """MarketImpact-v0 with ``weight_mode="sum"`` (``w = a / sum(a)``, fully invested): scaled ``min(s, 1) w``."""


def exposure_model(env: gym.Env, wrapper: str = "a sizing wrapper") -> Exposure:
    """The :class:`Exposure` of ``env`` (read off ``env.unwrapped``).

    :raises TypeError: a discrete action space, or an env whose action is not a known exposure; the message names
        the env.
    """
    from sb3_trading.envs.leveraged_pair import LeveragedPairEnv
    from sb3_trading.envs.market_impact import MarketImpactEnv
    from sb3_trading.envs.multi_asset import MultiAssetEnv
    from sb3_trading.envs.yield_allocation import YieldAllocationEnv

    base = env.unwrapped
    label = getattr(getattr(base, "spec", None), "id", None) or type(base).__name__
    if not isinstance(base.action_space, spaces.Box):
        raise TypeError(
            f"{wrapper} scales a continuous target exposure, but {label} has a discrete action space "
            f"{base.action_space} (its actions are not exposures to scale); use it on {', '.join(SUPPORTED_ENVS)}"
        )
    if isinstance(base, YieldAllocationEnv):
        return YieldAllocationExposure(base)
    if isinstance(base, MultiAssetEnv):
        return MultiAssetExposure(base)
    if isinstance(base, LeveragedPairEnv):
        return LeveragedPairExposure(base)
    if isinstance(base, MarketImpactEnv):
        return MarketImpactExposure(base) if base.weight_mode == "cap" else MarketImpactBookExposure(base)
    raise TypeError(f"{wrapper} does not know what the action of {label} means; it supports {', '.join(SUPPORTED_ENVS)}")


# ----------------------------------------------------------------------------- the wrappers
class SizingWrapper(gym.ActionWrapper, gym.utils.RecordConstructorArgs):
    """Base class: scale the agent's risky exposure by a causal scale chosen before each step.

    Subclasses implement :meth:`current_scale` (the scale of the next decision, from what is known at the env's
    current bar) and may extend :meth:`start` (after a reset) and :meth:`record` (after a step with the unscaled
    action). :class:`ReturnsSizing` sizes from the unscaled strategy's recent returns, :class:`RegimeSizing` from a
    causal regime label.

    :param env: a continuous sb3_trading env whose action is an exposure (module docstring).
    :param constructor_args: the subclass's constructor arguments (``env`` excluded), recorded for
        ``gym.make(env.spec)`` and rl-zoo3.
    :cvar primary_arg: constructor argument set by the ``NAME:VALUE`` form of :func:`wrap_sizing`.
    """

    primary_arg: ClassVar[str | None] = None

    def __init__(self, env: gym.Env, constructor_args: dict[str, Any]) -> None:
        gym.utils.RecordConstructorArgs.__init__(self, **constructor_args)
        gym.ActionWrapper.__init__(self, env)
        self.exposure = exposure_model(env, type(self).__name__)
        #: the scale of the last step (a float, or ``(N,)`` per traded asset); the warm-up scale after a reset
        self.scale: float | np.ndarray = 1.0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        obs, info = self.env.reset(seed=seed, options=options)
        self.start(info)
        return obs, info

    def start(self, info: dict[str, Any]) -> None:
        """Forget the previous episode; ``info`` is the reset's."""

    def current_scale(self) -> tuple[float | np.ndarray, float | np.ndarray]:
        """``(scale, estimate)`` for the next decision, from what is known at the env's current bar."""
        raise NotImplementedError

    def record(self, clipped: np.ndarray, info: dict[str, Any]) -> None:
        """Learn from a step: ``clipped`` is the unscaled (clipped) action, ``info`` the step's."""

    def action(self, action: Any) -> np.ndarray:
        """The scaled action at the current scale (what :meth:`step` sends; the env still validates it)."""
        return self.exposure.scaled(self.exposure.clip(action), self.scale)

    def step(self, action: Any) -> tuple[Any, SupportsFloat, bool, bool, dict[str, Any]]:
        raw = np.asarray(action, dtype=np.float64)
        if raw.size != self.exposure.low.size or not np.all(np.isfinite(raw)):
            return self.env.step(action)  # the env refuses it with its own message
        clipped = self.exposure.clip(raw)
        self.scale, estimate = self.current_scale()
        obs, reward, terminated, truncated, info = self.env.step(self.exposure.scaled(clipped, self.scale))
        info = dict(info)
        suffix, n = "", 1
        while SCALE_KEY + suffix in info:
            n += 1
            suffix = f"_{n}"
        info[SCALE_KEY + suffix] = self.scale.copy() if isinstance(self.scale, np.ndarray) else self.scale
        info[ESTIMATE_KEY + suffix] = estimate
        self.record(clipped, info)
        return obs, reward, terminated, truncated, info


class ReturnsSizing(SizingWrapper):
    """Base class: size from the recent per-bar returns of the **unscaled** strategy (module docstring).

    Subclasses implement :meth:`compute_scale` over the window of returns (a ``(n,)`` float64 array of per-bar
    simple returns, ``n >= min_periods``, oldest first) and return ``(scale, estimate)``.

    :param env: a continuous sb3_trading env whose action is an exposure (module docstring).
    :param lookback: returns in the window, ``>= 2``.
    :param cap: largest scale, ``> 0``.
    :param min_periods: returns needed before :meth:`compute_scale` is used, in ``[2, lookback]``; ``None``:
        ``min(lookback, 20)``.
    :param warmup_scale: the scale before that, in ``[0, cap]`` (a larger value is cut to ``cap``).
    """

    def __init__(
        self,
        env: gym.Env,
        lookback: int,
        cap: float,
        min_periods: int | None,
        warmup_scale: float,
        **constructor_args: Any,
    ) -> None:
        super().__init__(
            env,
            {"lookback": lookback, "cap": cap, "min_periods": min_periods, "warmup_scale": warmup_scale, **constructor_args},
        )
        self.lookback = check_int("lookback", lookback, 2)
        self.cap = float(check_real("cap", cap, 0.0, strict_minimum=True))
        self.min_periods = min(self.lookback, 20) if min_periods is None else check_int("min_periods", min_periods, 2)
        if self.min_periods > self.lookback:
            raise ValueError(f"min_periods must be <= lookback, got min_periods={min_periods!r}, lookback={lookback!r}")
        self.warmup_scale = min(float(check_real("warmup_scale", warmup_scale, 0.0)), self.cap)
        #: the unscaled strategy's last ``lookback`` per-bar returns, oldest first
        self.returns: deque[float] = deque(maxlen=self.lookback)
        self.scale = self.warmup_scale
        self._prices: np.ndarray | None = None

    def start(self, info: dict[str, Any]) -> None:
        self.returns.clear()
        self.scale = self.warmup_scale
        self._prices = self.exposure.prices(info)

    def current_scale(self) -> tuple[float, float]:
        """``(scale, estimate)`` from the returns known now (the warm-up scale before ``min_periods``)."""
        if len(self.returns) < self.min_periods:
            return self.warmup_scale, math.nan
        scale, estimate = self.compute_scale(np.fromiter(self.returns, dtype=np.float64, count=len(self.returns)))
        return min(max(float(scale), 0.0), self.cap), float(estimate)

    def compute_scale(self, returns: np.ndarray) -> tuple[float, float]:
        """``(scale, estimate)`` from the window ``returns`` ``(n,)`` (per-bar simple returns, oldest first)."""
        raise NotImplementedError

    def record(self, clipped: np.ndarray, info: dict[str, Any]) -> None:
        prices = self.exposure.prices(info)
        if self._prices is not None:
            self.returns.append(float(self.exposure.exposure(clipped) @ (prices / self._prices - 1.0)))
        self._prices = prices


class VolatilityTargeting(ReturnsSizing):
    r"""Scale the exposure so that the strategy runs at a target annual volatility.

    .. math:: s_t = \min\bigl(\text{cap}, \; \sigma^* / \hat\sigma_t\bigr), \qquad
              \hat\sigma_t = \operatorname{std}(x_{t-n+1..t}) \sqrt{P}

    with ``x`` the unscaled strategy's per-bar returns (module docstring), ``P`` bars per year.

    :param env: a continuous sb3_trading env whose action is an exposure.
    :param target_annual_vol: ``sigma*``, annualised volatility as a fraction (``0.15`` = 15 %/sqrt(year)), ``> 0``.
    :param lookback: returns in the window (bars), ``>= 2``.
    :param cap: largest scale (leverage over the asked exposure), ``> 0``.
    :param periods_per_year: bars per year; ``None``: the env data's ``periods_per_year``.
    :param min_periods: returns needed before the estimate is used (``None``: ``min(lookback, 20)``).
    :param warmup_scale: the scale before that (default 1: the action as asked; at most ``cap``).
    """

    primary_arg = "target_annual_vol"

    def __init__(
        self,
        env: gym.Env,
        target_annual_vol: float = 0.15,
        lookback: int = 60,
        cap: float = 2.0,
        periods_per_year: float | None = None,
        min_periods: int | None = None,
        warmup_scale: float = 1.0,
    ) -> None:
        super().__init__(
            env,
            lookback,
            cap,
            min_periods,
            warmup_scale,
            target_annual_vol=target_annual_vol,
            periods_per_year=periods_per_year,
        )
        self.target_annual_vol = float(check_real("target_annual_vol", target_annual_vol, 0.0, strict_minimum=True))
        self.periods_per_year = env_periods_per_year(env, periods_per_year, f"{type(self).__name__} (annualising)")
        self._annualize = math.sqrt(self.periods_per_year)

    def compute_scale(self, returns: np.ndarray) -> tuple[float, float]:
        sigma = float(np.std(returns, ddof=1)) * self._annualize
        if not sigma > 0.0:
            return self.cap, sigma
        return self.target_annual_vol / sigma, sigma


class FractionalKelly(ReturnsSizing):
    r"""Scale the exposure by a fraction of the Kelly leverage of the strategy's own recent returns.

    .. math:: s_t = \operatorname{clip}\bigl(c \, \bar x / \widehat{\operatorname{var}}(x), \; 0, \; \text{cap}\bigr)

    over the unscaled strategy's last ``n`` per-bar returns ``x`` (module docstring): the growth-optimal
    leverage ``mean / var`` of the continuous-time approximation, times ``fraction`` ``c`` (half Kelly by
    default). No edge or a negative one gives 0. The estimate is noisy: its standard error is about
    ``1 / (std(x) sqrt(n))``, so a long ``lookback`` and a ``fraction`` below 1 are the usual guard.

    :param env: a continuous sb3_trading env whose action is an exposure.
    :param fraction: ``c > 0`` (0.5: half Kelly).
    :param lookback: returns in the window (bars), ``>= 2``.
    :param cap: largest scale, ``> 0``.
    :param min_periods: returns needed before the estimate is used (``None``: ``min(lookback, 20)``).
    :param warmup_scale: the scale before that (default 0: no evidence of an edge yet).
    """

    primary_arg = "fraction"

    def __init__(
        self,
        env: gym.Env,
        fraction: float = 0.5,
        lookback: int = 250,
        cap: float = 1.0,
        min_periods: int | None = None,
        warmup_scale: float = 0.0,
    ) -> None:
        super().__init__(env, lookback, cap, min_periods, warmup_scale, fraction=fraction)
        self.fraction = float(check_real("fraction", fraction, 0.0, strict_minimum=True))

    def compute_scale(self, returns: np.ndarray) -> tuple[float, float]:
        mean = float(np.mean(returns))
        var = float(np.var(returns, ddof=1))
        if not var > 0.0:
            return (self.cap if mean > 0.0 else 0.0), math.nan
        kelly = mean / var
        return self.fraction * kelly, kelly


class RegimeSizing(SizingWrapper):
    r"""Scale the exposure by a factor chosen per causal market regime.

    .. math:: s_t = \text{scales}[\ell_t]

    with ``l_t`` the label at the decision bar ``t`` of a regime indicator (:func:`regime_label_table`: the
    rolling-volatility tercile, the trend sign or the most likely filtered HMM state, all from bars ``<= t``).
    Which asset's regime counts (``asset=None``): on MultiAsset-v0 each asset's own (a per-asset scale, an ``(N,)``
    ``info["sizing_scale"]``), on LeveragedPair-v0 the index's (both ETFs are leveraged on it); YieldAllocation-v0
    and MarketImpact-v0 size the whole book with one scale and need ``asset="NAME"`` (on MarketImpact the regime of
    the data's exogenous prices, which the agents' impact does not move). ``asset="NAME"`` makes that asset's
    regime scale the whole exposure on every env.

    Stack it with a returns-based wrapper to combine the two (``--sizing vol_target:0.15 --sizing
    "regime:vol_regime"``: the outer regime scale multiplies the action the inner volatility target then sizes).

    ``info["sizing_estimate"]`` is the label (``(N,)`` per asset; NaN during the indicator's warm-up).

    :param env: a continuous sb3_trading env (or a wrapper of one).
    :param regime: a regime indicator spec (:data:`~sb3_trading.features.pipeline.REGIME_INDICATORS`):
        ``"vol_regime:60"`` (labels 0 low, 1 mid, 2 high volatility), ``"trend_regime:60"`` (-1 down, 0 flat,
        1 up), ``"regime_prob:K,fit"`` (HMM states 0 .. K-1, 0 the calmest, fitted on the first ``fit`` bars of
        the env's data and filtered forward; needs the ``hmm`` extra).
    :param scales: one scale ``>= 0`` per possible label, in label order (a sequence), or ``{label: scale}``
        naming every label. ``None``: 1 in every regime but the most volatile one (the last ``vol_regime`` or HMM
        state), 0.5 there; a ``trend_regime`` needs explicit scales.
    :param asset: the asset whose regime sizes the whole exposure; ``None``: the env's default (above).
    :param warmup_scale: the scale while the label is undefined (the indicator's warm-up), ``>= 0``.
    """

    primary_arg = "regime"

    def __init__(
        self,
        env: gym.Env,
        regime: str = "vol_regime:60",
        scales: Sequence[float] | dict[Any, float] | None = None,
        asset: str | None = None,
        warmup_scale: float = 1.0,
    ) -> None:
        super().__init__(env, {"regime": regime, "scales": scales, "asset": asset, "warmup_scale": warmup_scale})
        if not isinstance(regime, str):
            raise TypeError(f"regime must be an indicator spec string such as 'vol_regime:60', got {regime!r}")
        self.regime = regime
        self.warmup_scale = float(check_real("warmup_scale", warmup_scale, 0.0))
        columns, self.per_asset = self.exposure.regime_columns(asset)
        base = self.env.unwrapped
        # the HMM of a regime_prob spec: the env's training fit (feature_fits) when it has one, else fitted here
        table, possible, fits = regime_label_table(base.data, regime, getattr(base, "feature_fits", None))
        base.feature_fits = fits  # type: ignore[attr-defined]  # so a probe carries it to the held-out envs
        #: ``(T, n)`` float64 labels of the regime columns (``n = N`` per asset, else 1); NaN in the warm-up
        self.labels = np.ascontiguousarray(table[:, columns])
        self.possible_labels = possible
        self.scales = self._resolve_scales(scales, possible)
        self._label_values = np.array(possible, dtype=np.float64)
        self._scale_values = np.array(self.scales, dtype=np.float64)
        self.scale = self.warmup_scale
        self._t = 0

    def _resolve_scales(self, scales: Any, possible: tuple[float, ...]) -> tuple[float, ...]:
        names = [int(label) for label in possible]
        if scales is None:
            if possible[0] < 0:
                raise ValueError(
                    f"regime {self.regime!r} has labels {names} (down, flat, up) and no default sizing; pass "
                    f"scales=(s_down, s_flat, s_up), e.g. scales=(0.0, 0.5, 1.0)"
                )
            return (1.0,) * (len(possible) - 1) + (0.5,)
        if isinstance(scales, dict):
            keys = {float(key) for key in scales}
            if keys != set(possible):
                raise ValueError(
                    f"scales must name every label of regime {self.regime!r}, {names}, once; got {sorted(scales)}"
                )
            values = [scales[key] if key in scales else scales[int(key)] for key in possible]  # type: ignore[index]
        else:
            if isinstance(scales, str) or not isinstance(scales, Sequence) or len(scales) != len(possible):
                raise ValueError(
                    f"scales must hold one scale per label of regime {self.regime!r}, {names} in that order, or be a "
                    f"{{label: scale}} dict; got {scales!r}"
                )
            values = list(scales)
        return tuple(float(check_real(f"scales[{label}]", value, 0.0)) for label, value in zip(names, values, strict=True))

    def start(self, info: dict[str, Any]) -> None:
        self._t = int(info["t"])
        self.scale = self.warmup_scale

    def current_scale(self) -> tuple[float | np.ndarray, float | np.ndarray]:
        """The scale of the label at the env's current bar (``warmup_scale`` where it is undefined)."""
        labels = self.labels[self._t]
        known = ~np.isnan(labels)
        slot = np.searchsorted(self._label_values, np.where(known, labels, self._label_values[0]))
        scale = np.where(known, self._scale_values[slot], self.warmup_scale)
        if self.per_asset:
            return scale, labels.copy()
        return float(scale[0]), float(labels[0])

    def record(self, clipped: np.ndarray, info: dict[str, Any]) -> None:
        self._t = int(info["t"])


#: registry name -> wrapper class, for :func:`wrap_sizing` and ``sb3-trading train --sizing NAME[:ARG[,key=value...]]``
SIZING_WRAPPERS: dict[str, type[SizingWrapper]] = {
    "vol_target": VolatilityTargeting,
    "kelly": FractionalKelly,
    "regime": RegimeSizing,
}


def parse_sizing_spec(spec: SizingSpec) -> tuple[type[SizingWrapper], dict[str, Any]]:
    """Resolve one sizing spec to its wrapper class and keyword arguments.

    Forms: ``"NAME"``; ``"NAME:VALUE"`` (``target_annual_vol`` of ``vol_target``, ``fraction`` of ``kelly``);
    ``"NAME:VALUE,key=value,..."``; ``"NAME:key=value,..."``; a tuple ``(NAME, {kwargs})`` (or the list JSON makes of
    it). Values are Python literals (:func:`~sb3_trading.common.parsing.parse_literal`).

    :raises ValueError: unknown name (with the closest one), a malformed spec, an argument the wrapper does not
        take (listing those it takes), or one given twice.
    """
    form = "expected NAME, NAME:VALUE[,key=value...] or NAME:key=value[,...], e.g. 'vol_target:0.15,lookback=60'"
    name, positional, kwargs = split_spec(spec, "sizing", form)
    if name not in SIZING_WRAPPERS:
        raise ValueError(f"unknown sizing wrapper {name!r}{suggest(name, SIZING_WRAPPERS)} Known: {sorted(SIZING_WRAPPERS)}")
    cls = SIZING_WRAPPERS[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p not in ("self", "env")]
    if len(positional) > 1:
        raise ValueError(
            f"malformed sizing spec {spec!r}: {positional[1]!r} must be key=value ({name} takes one positional value, "
            f"{cls.primary_arg}, first); {form}"
        )
    if positional:
        if cls.primary_arg in kwargs:
            raise ValueError(f"sizing spec {spec!r} gives {cls.primary_arg!r} twice: as a value and as {cls.primary_arg}=")
        kwargs = {cls.primary_arg: positional[0], **kwargs}
    for key in kwargs:
        if key not in accepted:
            raise ValueError(f"sizing wrapper {name!r} has no argument {key!r}{suggest(key, accepted)} It takes {accepted}")
    return cls, kwargs


def sizing_specs(specs: SizingSpec | Sequence[SizingSpec] | None) -> list[SizingSpec]:
    """``specs`` as a list (one spec, a sequence of them, or ``None``/empty for none)."""
    if specs is None:
        return []
    single = isinstance(specs, str) or (
        isinstance(specs, (tuple, list)) and len(specs) == 2 and isinstance(specs[0], str) and isinstance(specs[1], dict)
    )
    items: Iterable[SizingSpec] = [specs] if single else specs  # type: ignore[list-item]
    return list(items)


def wrap_sizing(env: gym.Env, specs: SizingSpec | Sequence[SizingSpec] | None) -> gym.Env:
    """Wrap ``env`` in the sizing wrappers named by ``specs``, the first one innermost.

    ``wrap_sizing(env, "vol_target:0.15,lookback=60")`` is ``VolatilityTargeting(env, target_annual_vol=0.15,
    lookback=60)``. Usable as SB3's ``make_vec_env(..., wrapper_class=wrap_sizing, wrapper_kwargs={"specs": ...})``.

    :param env: the env to wrap.
    :param specs: one spec or a sequence of them (forms in :func:`parse_sizing_spec`); ``None`` or empty returns
        ``env`` unchanged.
    :return: the wrapped env.
    :raises ValueError: an unknown name (with a suggestion) or bad arguments.
    :raises TypeError: an env whose action is not an exposure (module docstring).
    """
    parsed = [parse_sizing_spec(spec) for spec in sizing_specs(specs)]
    for cls, kwargs in parsed:
        env = cls(env, **kwargs)
    return env


def check_sizing_specs(specs: SizingSpec | Sequence[SizingSpec] | None) -> list[SizingSpec]:
    """Parse every spec (fail before any work on a bad ``--sizing``); return them as a list."""
    items = sizing_specs(specs)
    for spec in items:
        parse_sizing_spec(spec)
    return items


__all__ = [
    "ESTIMATE_KEY",
    "SCALE_KEY",
    "SIZING_WRAPPERS",
    "SUPPORTED_ENVS",
    "Exposure",
    "FractionalKelly",
    "RegimeSizing",
    "ReturnsSizing",
    "SizingWrapper",
    "VolatilityTargeting",
    "check_sizing_specs",
    "exposure_model",
    "parse_sizing_spec",
    "wrap_sizing",
]
