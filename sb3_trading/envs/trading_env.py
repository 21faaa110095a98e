"""The env base: data, causal features, normalisation, the observation layout, episode bounds, actions, ``info``.

:class:`TradingEnv` is what every ``sb3_trading`` environment shares; subclasses add the action space, the
``portfolio`` part of the observation and the dynamics (most of them through a batched kernel,
:mod:`sb3_trading.envs.kernel`). The layout of the observation and the standard ``info`` are documented in
:mod:`sb3_trading.envs.base` and :mod:`sb3_trading.envs.info`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded

from sb3_trading.common.validation import check_bool, check_int, check_real, is_int
from sb3_trading.data import MarketData
from sb3_trading.envs.info import summary_line
from sb3_trading.features import (
    DEFAULT_INDICATORS,
    DEFAULT_NORMALIZER,
    CausalNormalizer,
    FeatureFits,
    FeatureNormalizer,
    NormalizerArg,
    check_feature_fits,
    compute_features,
    make_normalizer,
)
from sb3_trading.sim.frictions import Frictions, MarketRules, build_frictions
from sb3_trading.sim.kernels import clip_action

MARKET_KEY = "market"
PORTFOLIO_KEY = "portfolio"
EXECUTIONS = ("close", "next_open")
#: portfolio observation entries (weights, cash share) are clipped to [-PORTFOLIO_BOUND, PORTFOLIO_BOUND]
PORTFOLIO_BOUND = 10.0
#: largest ``initial_cash`` an env accepts: share counts stay below 2 ** 53 (exact whole shares) for prices
#: above 0.1, and rounding in the books stays far below a cent
MAX_INITIAL_CASH = 1e15
#: what stepping an env whose episode ended raises (``gymnasium.error.ResetNeeded``), for every env
RESET_NEEDED_MESSAGE = "call reset() before step() after the episode ended (terminated or truncated)"


def sample_start(
    rng: np.random.Generator,
    first_t: int | np.ndarray,
    last_t: int | np.ndarray,
    episode_length: int | None,
    random_start: bool,
) -> int:
    """First decision bar of a new episode: ``first_t``, or uniform over the bars that leave room for an episode.

    With several paths (:attr:`~sb3_trading.data.MarketData.path_starts`) ``first_t`` and ``last_t`` are
    ``(P,)`` arrays, one entry per path, and the bar is uniform over every path's bars that leave room for
    an episode inside that path (so a longer path is drawn more often); without ``random_start`` the episode
    starts at the first path's ``first_t``.

    :param rng: the generator to draw from (an env's ``np_random``); untouched when ``random_start`` is False.
    :param first_t: first usable decision bar (per path).
    :param last_t: last bar of the data (per path).
    :param episode_length: decisions per episode (``None``: at least one).
    :param random_start: draw the bar instead of starting at ``first_t``.
    """
    if np.ndim(first_t) == 0:
        if not random_start:
            return int(first_t)
        length = 1 if episode_length is None else episode_length
        return int(rng.integers(first_t, last_t - length + 1))
    firsts, lasts = np.asarray(first_t), np.asarray(last_t)
    if not random_start:
        return int(firsts[0])
    length = 1 if episode_length is None else episode_length
    counts = np.maximum(lasts - length + 1 - firsts, 0)  # the starts each path leaves room for
    ends = np.cumsum(counts)
    j = int(rng.integers(ends[-1]))
    path = int(np.searchsorted(ends, j, side="right"))
    return int(firsts[path] + j - (ends[path] - counts[path]))


def clip_portfolio(portfolio: np.ndarray) -> np.ndarray:
    """A ``portfolio`` observation block: ``portfolio`` clipped to ``[-PORTFOLIO_BOUND, PORTFOLIO_BOUND]``, as new float32."""
    return np.minimum(np.maximum(portfolio, -PORTFOLIO_BOUND), PORTFOLIO_BOUND).astype(np.float32)


def check_initial_cash(initial_cash: object) -> float:
    """``float(initial_cash)`` if it is a number in ``(0, MAX_INITIAL_CASH]``, else ``TypeError``/``ValueError``."""
    return check_real("initial_cash", initial_cash, 0.0, MAX_INITIAL_CASH, strict_minimum=True)  # type: ignore[return-value]


class TradingEnv(gym.Env[dict[str, np.ndarray], np.ndarray]):
    """Base class: data, causal features, normalisation, episode bounds and ``info``.

    Subclasses build ``action_space`` and the ``portfolio`` part of the observation, and implement
    ``reset``/``step`` with the accounting core. Every argument is validated here, once: a wrong
    type raises ``TypeError`` naming the argument (:class:`~sb3_trading.common.validation.ArgumentTypeError`,
    also a ``ValueError``), a value out of range ``ValueError``. Stepping after the episode ended
    (terminated or truncated) raises ``gymnasium.error.ResetNeeded`` until ``reset()``.

    :param data: the market; subclasses build a seeded synthetic one when ``None``.
    :param initial_cash: starting cash, account currency, in ``(0, MAX_INITIAL_CASH]``.
    :param window: number of bars in the ``market`` observation (an integer ``>= 1``).
    :param episode_length: decisions per episode (an integer ``>= 1``); ``None`` runs to the end of the data.
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
    :param feature_fits: fitted indicator state (:data:`~sb3_trading.features.FeatureFits`) from the training
        data, e.g. the training env's ``env.unwrapped.feature_fits`` or a run folder's ``feature_fits.json``: an
        indicator with fitted state (``"regime_prob"``, an HMM) uses it instead of fitting on the leading rows of
        this env's data. ``None`` fits it here, on the first path (the other paths reuse that fit).
        ``env.feature_fits`` holds what was given plus what was fitted.
    """

    metadata: dict[str, Any] = {"render_modes": ["ansi"], "render_fps": 1}

    def __init__(
        self,
        *,
        data: MarketData,
        initial_cash: float,
        window: int = 1,
        episode_length: int | None = None,
        random_start: bool = False,
        indicators: Sequence[str] | None = None,
        normalizer: NormalizerArg = DEFAULT_NORMALIZER,
        render_mode: str | None = None,
        feature_assets: Sequence[str] | None = None,
        feature_fits: FeatureFits | None = None,
    ) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            # TypeError, not ValueError: SB3's make_vec_env asks for "rgb_array" and retries without it on TypeError
            raise TypeError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        self.render_mode = render_mode
        if not isinstance(data, MarketData):
            raise TypeError(f"data must be a sb3_trading.data.MarketData, got {type(data).__name__}")
        window = check_int("window", window, 1)
        episode_length = check_int("episode_length", episode_length, 1, allow_none=True)
        self.initial_cash = check_initial_cash(initial_cash)
        data.require_rows(window)
        self.data = data
        #: the assets the agent trades (subclasses narrow it, e.g. to an ETF pair); baselines use these
        self.traded_assets: tuple[str, ...] = tuple(data.asset_names)
        self.window = window
        self.random_start = check_bool("random_start", random_start)

        if feature_assets is not None:
            if isinstance(feature_assets, str):
                raise TypeError(f"feature_assets must be a sequence of asset names, got the string {feature_assets!r}")
            unknown = [name for name in feature_assets if name not in data.asset_names]
            if unknown:
                assets = list(data.asset_names)
                raise ValueError(f"feature_assets {unknown} are not assets of the data; its assets are {assets}")
        source = data if feature_assets is None else data.select_assets(feature_assets)
        names = DEFAULT_INDICATORS if indicators is None else tuple(indicators)
        # features, normalisation and warm-up per path: no indicator or causal statistic crosses a path boundary
        # (a fitted state -- an HMM -- is fitted once, on the first path, unless given)
        fits = check_feature_fits(feature_fits)
        matrices = []
        for path in source.paths() if data.n_paths > 1 else [source]:
            matrices.append(compute_features(path, names, fits=fits))
            fits = matrices[-1].fits
        #: fitted indicator state: ``feature_fits`` plus what this env fitted (pass it to the held-out envs)
        self.feature_fits: FeatureFits = fits
        matrix = matrices[0]
        self.feature_names = matrix.names
        fit_rows = np.concatenate([m.values[m.warmup :] for m in matrices]) if len(matrices) > 1 else matrix.values
        resolved = make_normalizer(normalizer, fit_rows, 0 if len(matrices) > 1 else matrix.warmup)
        self.normalizer: FeatureNormalizer | CausalNormalizer | None = resolved
        blocks = [m.values if resolved is None else resolved.transform(m.values) for m in matrices]
        self._features = np.ascontiguousarray(np.concatenate(blocks) if len(blocks) > 1 else blocks[0], dtype=np.float32)
        # leading rows of each path with a NaN: the indicators' warm-up, plus a causal normaliser's min_periods
        path_firsts, path_lasts = [], []
        for start, stop in data.path_bounds:
            bad_rows = np.flatnonzero(~np.isfinite(self._features[start:stop]).all(axis=1))
            path_firsts.append(start + (int(bad_rows[-1]) + 1 if bad_rows.size else 0) + self.window - 1)
            path_lasts.append(stop - 1)
        warmup = path_firsts[0] - (self.window - 1)
        #: leading feature rows that are not observable (indicator and normaliser warm-up)
        self.feature_warmup = warmup
        # first row whose whole look-back window is past the warm-up
        self.first_t = path_firsts[0]
        self.last_t = data.n_steps - 1  # the last bar; a decision needs one bar after it
        #: ``(T,)`` int64: the last bar of the path each row belongs to (episodes end there at the latest)
        self.path_last_t = np.repeat(np.array(path_lasts, dtype=np.int64), np.diff([*data.path_starts, data.n_steps]))
        #: ``(first_t, last_t)`` of :func:`sample_start`: scalars for one path, ``(P,)`` arrays for several
        self.start_bounds: tuple[Any, Any] = (
            (self.first_t, self.last_t)
            if data.n_paths == 1
            else (np.array(path_firsts, dtype=np.int64), np.array(path_lasts, dtype=np.int64))
        )
        short = [k for k, (first, last) in enumerate(zip(path_firsts, path_lasts, strict=True)) if first > last - 1]
        if short and data.n_paths > 1:
            raise ValueError(
                f"paths {short} of the data are too short for window={window} plus the indicators' warm-up of "
                f"{matrix.warmup} bars: every path needs at least {path_firsts[0] + 2} rows"
            )
        if self.first_t > self.last_t - 1:
            normalizer_warmup = warmup - matrix.warmup
            also = f" and the normaliser's of {normalizer_warmup}" if normalizer_warmup else ""
            fix = " or a normaliser with a smaller min_periods" if normalizer_warmup else ""
            raise ValueError(
                f"window={window} plus the indicators' warm-up of {matrix.warmup} bars{also} needs at least "
                f"{self.first_t + 2} rows of data, but the data has {data.n_steps}; use a shorter window, "
                f"fewer/shorter indicators{fix} or more data"
            )
        self.episode_length = self._check_episode_length("episode_length", episode_length)

        bound = np.inf if resolved is None else resolved.clip
        self._market_space = spaces.Box(-bound, bound, shape=(self.window, self._features.shape[1]), dtype=np.float32)
        self._t = self.first_t
        self._start_t = self.first_t
        self._last_info: dict[str, Any] = {}
        #: the last step ended the episode: the next step raises ``ResetNeeded`` until ``reset()``
        self._needs_reset = False

    # ----------------------------------------------------------------- hooks
    @classmethod
    def default_market(cls, seed: int = 0) -> MarketData:
        """The seeded synthetic market this env builds when given no ``data`` (``synthetic_seed=seed``), without
        building the env (what a run recipe needs to split the data before making any env).

        :param seed: seed of the synthetic market.
        """
        raise NotImplementedError(f"{cls.__name__} has no default synthetic market; pass data=...")

    def _market_rules(
        self,
        rules: MarketRules,
        supported: Collection[str],
        traded: Sequence[int] | None = None,
        fill_shift: int = 0,
    ) -> Frictions:
        """Compile the env's market ``rules`` with its data (:func:`~sb3_trading.sim.frictions.build_frictions`).

        :param rules: from :func:`~sb3_trading.sim.frictions.resolve_market_rules` of the env's ``costs``,
            ``commission_bps``, ``slippage_bps``, ``financing``, ``margin`` and ``brackets`` arguments.
        :param supported: the :data:`~sb3_trading.sim.frictions.RULE_FEATURES` this env models.
        :param traded: data columns of the traded assets (default: all).
        :param fill_shift: orders decided at ``t`` fill at row ``t + fill_shift``.
        :raises ValueError: naming a rule this env does not model, or the data a rule needs.
        """
        refused = [name for name in rules.features if name not in supported]
        if refused:
            raise ValueError(
                f"{type(self).__name__} does not model {', '.join(refused)}; it takes "
                f"{', '.join(sorted(supported)) or 'proportional costs only'} (MultiAsset-v0 models every rule)"
            )
        data = self.data
        columns = list(range(data.n_assets)) if traded is None else list(traded)

        def pick(values: np.ndarray | None) -> np.ndarray | None:
            return None if values is None else values[:, columns]

        return build_frictions(
            rules,
            data.prices[:, columns],
            [data.asset_names[i] for i in columns],
            data.periods_per_year,
            data.path_bounds,
            fill_shift,
            volume=pick(data.volume),
            spread=pick(getattr(data, "spread", None)),
            open_=pick(data.open),
            high=pick(data.high),
            low=pick(data.low),
        )

    def yield_rates(self) -> np.ndarray | None:
        """``(T, N)`` simple yield per bar that holding each of :attr:`traded_assets` earns on top of its price
        change (paid in shares), as the env accrues it; ``None`` (the default) when the assets pay none.

        Baselines (buy-and-hold, equal weight) read it to earn what the agent earns, without knowing the env type.
        """
        return None

    def _check_episode_length(self, name: str, value: int | None) -> int | None:
        """``value`` if ``None`` or in ``[1, last_t - first_t]`` (the decisions this data and window allow; with
        several paths, the shortest path's)."""
        max_length = int(np.min(np.asarray(self.start_bounds[1]) - np.asarray(self.start_bounds[0])))
        if value is not None and not 1 <= value <= max_length:
            bars = f"usable bars {self.first_t}..{self.last_t}" if self.data.n_paths == 1 else "in its shortest path"
            raise ValueError(f"{name} must be in [1, {max_length}] for this data and window ({bars}), got {value!r}")
        return value

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
        if bounds is None or bounds[0] is not space:  # float64 bounds, flat: the clipped action is float64
            bounds = self._action_bounds = (space, space.low.astype(np.float64).ravel(), space.high.astype(np.float64).ravel())
        a = np.asarray(action)
        if a.shape != space.shape:
            raise ValueError(f"action must have shape {space.shape} for {space}, got shape {a.shape}")
        if a.dtype.kind not in "biuf":
            raise ValueError(f"action must be finite numbers, got {a}")
        # float64 first, so large float32 values cannot overflow
        out = np.empty(space.shape)
        if not clip_action(a.astype(np.float64).ravel(), bounds[1], bounds[2], out.ravel()):
            raise ValueError(f"action must be finite numbers (no NaN or inf), got {a}")
        return out

    # --------------------------------------------------------------- episodes
    def _sample_start(self, options: dict[str, Any] | None = None) -> int:
        """First decision bar of a new episode (uses ``self.np_random``), or ``options["start"]`` when given.

        The start is drawn either way, so ``reset(options={"start": t})`` consumes the env's random numbers as a
        plain reset does.
        """
        drawn = sample_start(self.np_random, *self.start_bounds, self.episode_length, self.random_start)
        asked = self._start_option(options)
        return drawn if asked is None else asked

    def _start_option(self, options: dict[str, Any] | None) -> int | None:
        """``options["start"]`` of ``reset`` checked as a first decision bar (``None`` when absent).

        A start is a bar ``t`` of a path with ``first <= t < last`` (the path's first usable bar after the
        window and warm-up, and its last bar, since a decision needs the bar after it); the episode then runs
        from ``t`` as one drawn there would (``episode_length`` decisions at most, to the path's end).

        :raises TypeError: not an integer.
        :raises ValueError: outside every path's decision bars.
        """
        if not options or options.get("start") is None:
            return None
        start = options["start"]
        if not is_int(start):
            raise TypeError(f"reset(options={{'start': ...}}) takes an integer bar, got {start!r}")
        start = int(start)
        firsts, lasts = (np.atleast_1d(np.asarray(bound, dtype=np.int64)) for bound in self.start_bounds)
        if 0 <= start < self.data.n_steps:
            path = int(np.searchsorted(np.asarray(self.data.path_starts), start, side="right")) - 1
            if firsts[path] <= start < lasts[path]:
                return start
        ranges = ", ".join(f"{first}..{last - 1}" for first, last in zip(firsts.tolist(), lasts.tolist(), strict=True))
        raise ValueError(
            f"reset(options={{'start': {start}}}): a start must be a decision bar of the data ({ranges}: after the "
            f"window={self.window} and the indicators' warm-up, before each path's last bar)"
        )

    def _episode_over(self) -> bool:
        """True once the episode's path has no next bar or ``episode_length`` decisions were made."""
        if self._t >= self.path_last_t[self._start_t]:
            return True
        return self.episode_length is not None and self._t - self._start_t >= self.episode_length

    def _reset_needed(self) -> ResetNeeded:
        """The error of a step after the episode ended (raise it)."""
        return ResetNeeded(f"{type(self).__name__}: {RESET_NEEDED_MESSAGE}")

    def render(self) -> str | None:
        """With ``render_mode="ansi"``: one line with the bar, its time and the last ``info`` numbers."""
        if self.render_mode != "ansi":
            return None
        return summary_line(self._last_info)

    # ------------------------------------------------------------------- info
