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
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from sb3_trading.data import MarketData
from sb3_trading.features import DEFAULT_INDICATORS, FeatureNormalizer, compute_features

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
NormalizerArg = FeatureNormalizer | Literal["fit"] | None


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
    :param normalizer: ``"fit"`` fits a z-score :class:`FeatureNormalizer` on this env's data
        (make the env on the *training* slice, then pass ``env.unwrapped.normalizer`` to the
        evaluation env); a fitted normaliser is applied as is; ``None`` leaves features raw.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        data: MarketData,
        window: int = 1,
        episode_length: int | None = None,
        random_start: bool = False,
        indicators: Sequence[str] | None = None,
        normalizer: NormalizerArg = "fit",
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
        # first row whose whole look-back window is past the indicators' warm-up
        self.first_t = matrix.warmup + self.window - 1
        self.last_t = data.n_steps - 1  # the last bar; a decision needs one bar after it
        if self.first_t > self.last_t - 1:
            raise ValueError(
                f"window={window} plus the indicators' warm-up of {matrix.warmup} bars needs at least "
                f"{self.first_t + 2} rows of data, but the data has {data.n_steps}; use a shorter window, "
                "fewer/shorter indicators or more data"
            )
        max_length = self.last_t - self.first_t
        if episode_length is not None and not 1 <= episode_length <= max_length:
            raise ValueError(
                f"episode_length must be in [1, {max_length}] for this data and window "
                f"(usable bars {self.first_t}..{self.last_t}), got {episode_length!r}"
            )
        self.episode_length = episode_length

        if isinstance(normalizer, str):
            if normalizer != "fit":
                raise ValueError(f"normalizer must be 'fit', a FeatureNormalizer or None, got {normalizer!r}")
            normalizer = FeatureNormalizer.fit(matrix.values[matrix.warmup :])
        elif normalizer is not None and not isinstance(normalizer, FeatureNormalizer):
            raise TypeError(f"normalizer must be 'fit', a FeatureNormalizer or None, got {type(normalizer).__name__}")
        self.normalizer: FeatureNormalizer | None = normalizer
        values = matrix.values if normalizer is None else normalizer.transform(matrix.values)
        self._features = np.ascontiguousarray(values, dtype=np.float32)  # (T, F)

        bound = np.inf if normalizer is None else normalizer.clip
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
        :return: the action as ``float64``, clipped to ``[low, high]``.
        """
        a = np.asarray(action, dtype=np.float64)
        space = self.action_space
        if a.shape != space.shape:
            raise ValueError(f"action must have shape {space.shape} for {space}, got shape {a.shape}")
        if not math.isfinite(a.sum()):  # one reduction catches any NaN or inf
            raise ValueError(f"action must be finite, got {a}")
        return np.minimum(np.maximum(a, space.low), space.high)

    # --------------------------------------------------------------- episodes
    def _sample_start(self) -> int:
        """First decision bar of a new episode (uses ``self.np_random``)."""
        if not self.random_start:
            return self.first_t
        length = 1 if self.episode_length is None else self.episode_length
        return int(self.np_random.integers(self.first_t, self.last_t - length + 1))

    def _episode_over(self) -> bool:
        """True once the data has no next bar or ``episode_length`` decisions were made."""
        if self._t >= self.last_t:
            return True
        return self.episode_length is not None and self._t - self._start_t >= self.episode_length

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: one line with the bar, its time and the last ``info`` numbers."""
        if self.render_mode != "ansi":
            return None
        info = self._last_info
        when = f" {np.datetime_as_string(info['timestamp'], unit='s')}" if "timestamp" in info else ""
        return (
            f"t={info['t']}{when} equity={info['equity']:.2f} return={info['portfolio_return']:+.4%} "
            f"drawdown={info['drawdown']:.2%} turnover={info['turnover']:.3f}"
        )

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
    ) -> dict[str, Any]:
        growth = 1.0 + portfolio_return
        info: dict[str, Any] = {
            "equity": equity,
            "cash": cash,
            "positions": positions,
            "weights": weights,
            "portfolio_return": portfolio_return,
            "log_return": math.log(growth) if growth > 1e-12 else math.log(1e-12),
            "turnover": turnover,
            "costs": costs,
            "drawdown": drawdown,
            "t": self._t,
        }
        if self.data.timestamps is not None:
            info["timestamp"] = self.data.timestamps[self._t]
        self._last_info = info
        return info
