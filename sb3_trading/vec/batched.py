"""A batched SB3 ``VecEnv``: ``n_envs`` accounts on one market, stepped in single NumPy operations.

SB3's ``DummyVecEnv`` steps its envs one by one in Python. The envs built on
:class:`~sb3_trading.envs.base.KernelTradingEnv` keep their dynamics in a batched
:class:`~sb3_trading.envs.base.TradingKernel` (the Gymnasium env is its batch of one), so
:class:`BatchedVecEnv` runs the *same* kernel with ``n_envs`` rows: one call computes every
account's trade, costs, mark-to-market, reward and observation. Nothing of the dynamics is
re-implemented here; this module only speaks SB3's ``VecEnv`` protocol.

It is step-for-step equal to ``DummyVecEnv`` over ``gymnasium.make(env_id, **env_kwargs)``
seeded the same way (env ``i`` gets ``seed + i`` at the first reset, and draws its random starts
from its own generator, in the same order), and follows SB3's conventions: auto-reset with
``infos[i]["terminal_observation"]``, ``infos[i]["TimeLimit.truncated"]``, ``reset_infos``,
and Monitor-style ``infos[i]["episode"] = {"r", "l", "t"}`` when an episode ends, so SB3 logs
``ep_rew_mean``/``ep_len_mean`` without a ``VecMonitor`` (``monitor=False`` turns that off;
then wrap it in ``VecMonitor`` yourself).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.error import ResetNeeded
from gymnasium.utils import seeding
from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker
from stable_baselines3.common.monitor import Monitor, ResultsWriter
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvObs, VecEnvStepReturn

from sb3_trading.common.validation import suggest
from sb3_trading.envs.info import INFO_KEYS, TIMESTAMP_KEY, log_returns, summary_line
from sb3_trading.envs.kernel import TERMINATED_BY_KEY, KernelTradingEnv, Transition
from sb3_trading.envs.registration import NAMESPACE
from sb3_trading.envs.trading_env import MARKET_KEY, PORTFOLIO_KEY
from sb3_trading.vec.infos import StepInfos

#: env IDs whose dynamics are a batched kernel (``make_vec_env`` accepts these)
SUPPORTED_ENV_IDS: tuple[str, ...] = (
    f"{NAMESPACE}/MultiAsset-v0",
    f"{NAMESPACE}/LeveragedPair-v0",
    f"{NAMESPACE}/MaskedTrading-v0",
    f"{NAMESPACE}/SingleAsset-v0",
    f"{NAMESPACE}/YieldAllocation-v0",
    f"{NAMESPACE}/MarketImpact-v0",
)
#: methods ``env_method`` answers per account
ENV_METHODS: tuple[str, ...] = ("action_masks", "render")
#: wrappers ``gymnasium.make`` / SB3 add that the batched env may drop (it does their job itself)
_TRANSPARENT_WRAPPERS: tuple[type[gym.Wrapper], ...] = (Monitor, OrderEnforcing, PassiveEnvChecker)


class BatchedVecEnv(VecEnv):
    """``n_envs`` independent accounts of one :class:`~sb3_trading.envs.base.KernelTradingEnv`, batched.

    All accounts share the template env's data, features and arguments; each has its own book,
    clock, episode and random generator. Observations are the env's ``Dict`` batched:
    ``market`` ``(n_envs, window, F)`` and ``portfolio`` ``(n_envs, P)``, float32.

    ``infos[i]`` holds the env's standard keys (``equity``, ``cash``, ``positions``, ``weights``,
    ``portfolio_return``, ``log_return``, ``turnover``, ``costs``, ``drawdown``, ``t``, ``timestamp``
    when the data has timestamps) and its extras, plus ``TimeLimit.truncated`` every step and, when
    account ``i``'s episode ended, ``terminal_observation`` and (with ``monitor=True``) ``episode``.
    ``infos`` is a :class:`~sb3_trading.vec.infos.StepInfos`: the dicts are built when read, and
    ``infos.arrays`` (also :attr:`step_arrays`) holds every key of the step as ``(n_envs,)`` arrays, for
    callbacks that would otherwise read ``n_envs`` dicts per step.

    ``get_attr`` reads the shared template env (all accounts have the same configuration);
    ``env_method`` answers :data:`ENV_METHODS` per account (``action_masks`` is what sb3-contrib's
    ``MaskablePPO`` calls); ``set_attr`` sets an attribute on the template for all accounts (the
    dynamics' arguments are fixed when the kernel is built, as for the envs themselves).

    :param env: the configured template env (unwrapped), e.g. ``gymnasium.make(env_id, **kwargs).unwrapped``.
    :param n_envs: number of accounts.
    :param monitor: add Monitor-style ``episode`` infos and report ``env_is_wrapped(Monitor)`` as True.
    :param results_writer: an SB3 ``ResultsWriter`` that receives every finished episode (a Monitor file).
    """

    def __init__(
        self, env: KernelTradingEnv, n_envs: int, monitor: bool = True, results_writer: ResultsWriter | None = None
    ) -> None:
        if not isinstance(env, KernelTradingEnv):
            raise TypeError(
                f"BatchedVecEnv needs an env whose dynamics are a batched kernel (a KernelTradingEnv, e.g. one of "
                f"{list(SUPPORTED_ENV_IDS)}), got {type(env).__name__}"
            )
        self.env = env
        self.kernel = env.make_kernel(n_envs)
        super().__init__(self.kernel.n_envs, env.observation_space, env.action_space)
        self.monitor = bool(monitor)
        self.results_writer = results_writer
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._all_rows = np.arange(self.num_envs)
        self._actions: np.ndarray | None = None
        self._needs_reset = True
        self._episode_returns = np.zeros(self.num_envs)
        self._episode_lengths = np.zeros(self.num_envs, dtype=np.int64)
        self._t_start = time.time()
        self._last_infos: Sequence[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        self._step_arrays: dict[str, np.ndarray] = {}
        space = env.action_space
        self._discrete = isinstance(space, spaces.Discrete)
        if self._discrete:
            self._n_actions = int(space.n)
        elif isinstance(space, spaces.Box):
            self._action_shape = (self.num_envs, *space.shape)
            self._low, self._high = space.low.astype(np.float64), space.high.astype(np.float64)
        else:
            raise TypeError(f"BatchedVecEnv supports Box and Discrete action spaces, got {space}")

    # --------------------------------------------------------------------- API
    def reset(self) -> VecEnvObs:
        """Start a new episode for every account; seeds from :meth:`seed` apply now, once."""
        for i, seed in enumerate(self._seeds):
            if seed is not None:
                self._rngs[i] = seeding.np_random(int(seed))[0]
        kernel = self.kernel
        tr = kernel.reset(self._all_rows, kernel.draw(self._generators(range(self.num_envs))))
        self.reset_infos = self._infos(tr, self._outcome(tr, kernel.end_t))
        self._last_infos = list(self._reset_infos)
        self._reset_seeds()
        self._reset_options()
        self._episode_returns[:] = 0.0
        self._episode_lengths[:] = 0
        self._needs_reset = False
        return kernel.observe(tr)

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """Step every account at once; accounts whose episode ended are reset (SB3's auto-reset)."""
        if self._needs_reset or self._actions is None:
            raise ResetNeeded("call reset() before step() on a BatchedVecEnv")
        kernel = self.kernel
        tr = kernel.step(self._validate(self._actions))
        self._actions = None
        outcome = self._outcome(tr, kernel.end_t)
        reward, _, terminated, truncated, _ = outcome
        # truncated is never set together with terminated, as DummyVecEnv's "truncated and not terminated"
        infos = self._infos(tr, outcome, {"TimeLimit.truncated": truncated})
        if terminated.any():
            for row, reason in kernel.end_reasons(tr, terminated).items():
                infos[row][TERMINATED_BY_KEY] = reason
        self._step_arrays = infos.arrays
        obs = kernel.observe(tr)
        self._episode_returns += reward
        self._episode_lengths += 1
        dones = terminated | truncated
        if dones.any():
            self._auto_reset(np.flatnonzero(dones), obs, infos)
        self._last_infos = infos
        return obs, reward.astype(np.float32), dones, infos

    @property
    def step_arrays(self) -> dict[str, np.ndarray]:
        """The last step's ``info`` values as arrays: name -> ``(n_envs,)`` (``(n_envs, N)`` for ``positions`` and
        ``weights``), including ``TimeLimit.truncated``; empty before the first step. The arrays are the step's own
        (a new dict each step; do not write into them)."""
        return self._step_arrays

    def _auto_reset(self, rows: np.ndarray, obs: dict[str, np.ndarray], infos: StepInfos) -> None:
        """Record the finished episodes of ``rows`` in ``infos`` and start new ones, in place in ``obs``."""
        market, portfolio = obs[MARKET_KEY], obs[PORTFOLIO_KEY]
        final_market, final_portfolio = market[rows], portfolio[rows]  # copies: the rows are overwritten below
        returns, lengths = self._episode_returns[rows].tolist(), self._episode_lengths[rows].tolist()
        elapsed = round(time.time() - self._t_start, 6)
        for j, i in enumerate(rows.tolist()):
            info = infos[i]
            info["terminal_observation"] = {MARKET_KEY: final_market[j], PORTFOLIO_KEY: final_portfolio[j]}
            if self.monitor:
                episode = {"r": round(returns[j], 6), "l": lengths[j], "t": elapsed}
                info["episode"] = episode
                if self.results_writer is not None:
                    self.results_writer.write_row(episode)
        kernel = self.kernel
        end_t = kernel.end_t  # before the reset changes it
        tr = kernel.reset(rows, kernel.draw(self._generators(rows.tolist())))
        fresh = kernel.observe(tr)
        market[rows] = fresh[MARKET_KEY]
        portfolio[rows] = fresh[PORTFOLIO_KEY]
        # reset infos are built when someone reads reset_infos (SB3's training loop never does)
        source = (tr, end_t[rows])
        for j, i in enumerate(rows.tolist()):
            self._reset_sources[i] = (source, j)
        self._episode_returns[rows] = 0.0
        self._episode_lengths[rows] = 0

    @property
    def reset_infos(self) -> list[dict[str, Any]]:
        """The ``info`` of each account's latest reset (SB3's ``VecEnv`` attribute), built on first read."""
        sources = self._reset_sources
        if sources:
            built: dict[int, StepInfos] = {}
            for i, (source, j) in sources.items():
                infos = built.get(id(source))
                if infos is None:
                    tr, end_t = source
                    infos = built[id(source)] = self._infos(tr, self._outcome(tr, end_t))
                self._reset_infos[i] = infos[j]
            sources.clear()
        return self._reset_infos

    @reset_infos.setter
    def reset_infos(self, infos: Sequence[dict[str, Any]]) -> None:
        self._reset_infos = list(infos)
        self._reset_sources: dict[int, tuple[tuple[Transition, np.ndarray], int]] = {}

    def _infos(self, tr: Transition, outcome: tuple[np.ndarray, ...], eager: dict[str, np.ndarray] | None = None) -> StepInfos:
        """The accounts' standard ``info`` of ``tr`` and its :meth:`_outcome`: arrays now, dicts when read.

        :param eager: per-step entries every dict holds from the start (``TimeLimit.truncated``).
        """
        portfolio_return, turnover = outcome[1], outcome[4]
        kernel = self.kernel
        values = (
            tr.equity,
            tr.cash,
            tr.positions,
            tr.weights,
            portfolio_return,
            log_returns(portfolio_return),
            turnover,
            tr.costs,
            tr.drawdown,
            tr.t,
        )
        arrays = dict(zip(INFO_KEYS, values, strict=True))
        if kernel.timestamps is not None:
            arrays[TIMESTAMP_KEY] = kernel.timestamps[tr.t]
        arrays.update(tr.extras)

        def build_row(row: int) -> dict[str, Any]:
            return kernel.info(tr, row, portfolio_return, turnover)

        return StepInfos(tr.t.shape[0], arrays, build_row, eager)

    def _outcome(self, tr: Transition, end_t: np.ndarray) -> tuple[np.ndarray, ...]:
        return self.kernel.outcome(tr.equity, tr.equity_t, tr.notional, tr.t, end_t, tr.reward, tr.ended)

    def _generators(self, rows: Sequence[int]) -> list[np.random.Generator]:
        """Each account's generator, created from fresh entropy the first time when it was never seeded (as gymnasium)."""
        rngs = self._rngs
        for i in rows:
            if rngs[i] is None:
                rngs[i] = seeding.np_random()[0]
        return [rngs[i] for i in rows]  # type: ignore[misc]

    def _validate(self, actions: Any) -> np.ndarray:
        """Check a batch of actions like the single env does, and clip ``Box`` actions to the space (float64)."""
        a = np.asarray(actions)
        if self._discrete:
            if a.shape == (self.num_envs, 1):
                a = a[:, 0]
            if a.shape != (self.num_envs,):
                raise ValueError(f"actions must have shape ({self.num_envs},) for {self.action_space}, got shape {a.shape}")
            if a.dtype.kind not in "iu":
                raise TypeError(f"actions must be integers in [0, {self._n_actions}), got dtype {a.dtype}")
            if int(a.min()) < 0 or int(a.max()) >= self._n_actions:
                raise ValueError(f"actions must be in [0, {self._n_actions}), got {a}")
            return a.astype(np.int64, copy=False)
        if a.shape != self._action_shape:
            raise ValueError(f"actions must have shape {self._action_shape} for {self.action_space}, got shape {a.shape}")
        if a.dtype.kind not in "biuf":
            raise ValueError(f"actions must be finite numbers, got dtype {a.dtype}")
        a = a.astype(np.float64)  # one cast, then float64 arithmetic throughout (as the single env)
        # exact (a sum could overflow: 1e308 + 1e308 is finite values, clipped, not rejected) and as cheap
        if not np.isfinite(a).all():
            raise ValueError(f"actions must be finite numbers (no NaN or inf), got {a}")
        return np.minimum(np.maximum(a, self._low, out=a), self._high, out=a)

    def close(self) -> None:
        self.env.close()
        if self.results_writer is not None:
            self.results_writer.close()

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed account ``i`` with ``seed + i`` at the next :meth:`reset` (SB3's convention; ``None`` draws a seed)."""
        return super().seed(seed)

    def get_images(self) -> Sequence[np.ndarray | None]:
        warnings.warn(f"BatchedVecEnv has no images (render mode {self.render_mode!r}); use render_mode='ansi'", stacklevel=2)
        return [None] * self.num_envs

    # ---------------------------------------------------------- attributes
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The template env's attribute, once per index (every account has the same configuration)."""
        value = getattr(self.env, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the shared template env; only for all accounts at once."""
        if sorted(self._get_indices(indices)) != list(range(self.num_envs)):
            raise ValueError(f"BatchedVecEnv accounts share one configuration: set {attr_name!r} for all (indices=None)")
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None, **method_kwargs: Any) -> list:
        """Per-account results of :data:`ENV_METHODS`: ``action_masks`` (``(n_actions,)`` bool each) and ``render``."""
        rows = list(self._get_indices(indices))
        if method_name == "action_masks":
            if not hasattr(self.env, "action_masks"):
                raise AttributeError(f"{type(self.env).__name__} has no action_masks()")
            masks = self.kernel.action_masks()  # type: ignore[attr-defined]
            return [masks[i] for i in rows]
        if method_name == "render":
            if self.env.render_mode != "ansi":
                return [None for _ in rows]
            return [summary_line(self._last_infos[i]) if self._last_infos[i] else None for i in rows]
        raise AttributeError(
            f"BatchedVecEnv.env_method supports {list(ENV_METHODS)} per account, got {method_name!r}; "
            "the shared configuration is readable with get_attr"
        )

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """True for SB3's ``Monitor`` (and its bases) when ``monitor=True``: the ``episode`` infos are Monitor's."""
        wrapped = self.monitor and isinstance(wrapper_class, type) and issubclass(Monitor, wrapper_class)
        return [wrapped for _ in self._get_indices(indices)]


class BatchedVecEnvFromFns(BatchedVecEnv):
    """A drop-in ``vec_env_cls`` for SB3's ``make_vec_env`` and rl-zoo3: built from a list of env factories.

    Only the first factory is called: its env (unwrapped) is the template for ``len(env_fns)``
    accounts; the factories must all build the same env, as they do in ``make_vec_env``. SB3's
    ``Monitor`` is replaced by the built-in episode statistics (and a Monitor file, when it had
    one, receives every account's episodes). Other Gymnasium wrappers cannot run batched and are
    refused: use ``VecEnvWrapper``s, or ``vec_env_cls=DummyVecEnv`` for per-env wrappers.

    :param env_fns: env factories, one per account.
    :param monitor: see :class:`BatchedVecEnv`.
    """

    def __init__(self, env_fns: list[Callable[[], gym.Env]], monitor: bool = True) -> None:
        if not env_fns:
            raise ValueError("env_fns must hold at least one env factory")
        env = env_fns[0]()
        writer = None
        layer = env
        while isinstance(layer, gym.Wrapper):
            if not isinstance(layer, _TRANSPARENT_WRAPPERS):
                raise ValueError(
                    f"BatchedVecEnv steps the unwrapped env's kernel and cannot apply the Gymnasium wrapper "
                    f"{type(layer).__name__}; use VecEnvWrappers instead, or DummyVecEnv for per-env wrappers"
                )
            if isinstance(layer, Monitor) and layer.results_writer is not None:
                writer = layer.results_writer
            layer = layer.env
        super().__init__(env.unwrapped, len(env_fns), monitor=monitor, results_writer=writer)


def make_vec_env(
    env_id: str,
    n_envs: int = 1,
    seed: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    monitor: bool = True,
) -> BatchedVecEnv:
    """A :class:`BatchedVecEnv` of ``n_envs`` accounts of ``env_id``, seeded like SB3's ``make_vec_env``.

    Equivalent, step for step, to ``stable_baselines3.common.env_util.make_vec_env(env_id, n_envs,
    seed=seed, env_kwargs=env_kwargs)`` (a ``DummyVecEnv`` of ``Monitor``-wrapped envs), many times faster.

    :param env_id: one of :data:`SUPPORTED_ENV_IDS` (``"sb3_trading:"``-prefixed IDs work too).
    :param n_envs: number of accounts, ``>= 1``.
    :param seed: account ``i`` is seeded with ``seed + i`` at the first reset; ``None`` draws a seed.
    :param env_kwargs: keyword arguments of the env (``data``, ``window``, ``episode_length``, ...), shared by all accounts.
    :param monitor: Monitor-style ``episode`` infos (``False``: wrap in SB3's ``VecMonitor`` yourself).
    :return: the vectorised env; call ``reset()`` first.
    :raises ValueError: if ``env_id`` has no batched kernel.
    """
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a string, got {type(env_id).__name__}")
    bare_id = env_id.rsplit(":", 1)[-1]
    if bare_id not in SUPPORTED_ENV_IDS:
        raise ValueError(
            f"no batched VecEnv for {env_id!r}{suggest(bare_id, SUPPORTED_ENV_IDS)} Supported: {list(SUPPORTED_ENV_IDS)}; "
            "for other envs use stable_baselines3.common.env_util.make_vec_env (DummyVecEnv/SubprocVecEnv)"
        )
    vec_env = BatchedVecEnv(gym.make(env_id, **(env_kwargs or {})).unwrapped, n_envs, monitor=monitor)
    vec_env.seed(seed)
    return vec_env


def use_in_rl_zoo() -> None:
    """Make rl-zoo3 build its train and eval envs with :class:`BatchedVecEnvFromFns`.

    rl-zoo3's ``--vec-env`` only knows ``dummy``/``subproc``, but ``ExperimentManager.default_vec_env_cls``
    overrides it (``create_envs`` passes it to SB3's ``make_vec_env``, and ``enjoy`` reads it too). Call
    this in a launcher before rl-zoo3's ``train()``; every env ID must then be one of :data:`SUPPORTED_ENV_IDS`
    and the hyperparameters must not set an ``env_wrapper``.
    """
    from rl_zoo3.exp_manager import ExperimentManager

    ExperimentManager.default_vec_env_cls = BatchedVecEnvFromFns
