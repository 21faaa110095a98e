"""The recipe of a run, written once: data, split, normaliser, envs, model, test env, baselines.

``sb3-trading train`` (:mod:`sb3_trading.training`), walk-forward (:mod:`sb3_trading.walk_forward`),
the tuning objective (:mod:`sb3_trading.tuning.objective`) and the backtest of a saved model
(:mod:`sb3_trading.backtesting`) compose these small functions, so what they build agrees by
construction (rl-zoo3's ``ExperimentManager.create_envs`` lesson, without its god object)::

    data = load_env_data(env_id, data_path, seed, env_kwargs)     # a file, or default_market(env_id, seed)
    train_data, test_data = split_train_test(data, test_fraction)
    probe = probe_env(env_id, train_data, env_kwargs)             # fits the train-slice z-score once
    check_algo_env(algo_name, probe)                              # maskable algorithms need action_masks()
    vec_env = make_training_vec_env(env_id, training_env_kwargs(env_kwargs, train_data, probe, 256), n_envs, seed)
    model = make_model(algo_name, default_hyperparams(algo_name, overrides), vec_env, seed, device)
    test_env = make_backtest_env(env_id, test_data, probe.normalizer, env_kwargs, feature_fits=probe.feature_fits)
    baselines = env_baselines(test_env, start, stop)              # from the env's initial cash

Nothing here imports the training job, the commands or the CLI.
"""

from __future__ import annotations

import copy
import dataclasses
import importlib
import inspect
import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th

from sb3_trading.common.hyperparams import resolve_zoo_hyperparams
from sb3_trading.common.validation import check_choice, check_int, check_real, suggest
from sb3_trading.data import MarketData, bootstrap_paths, stack_paths
from sb3_trading.data.loaders import load_market_data
from sb3_trading.envs.registration import ENV_ENTRY_POINTS, NAMESPACE, check_env_id
from sb3_trading.evaluation.backtest import make_backtest_env
from sb3_trading.evaluation.baselines import SINGLE_ASSET, env_baselines, env_yield_rates

logger = logging.getLogger(__name__)

DEFAULT_ENV_ID = f"{NAMESPACE}/MultiAsset-v0"
#: how several market files are joined on their dates (``sb3_trading.data.load_market_data``'s ``join=``):
#: ``exact`` (a date missing in one file is an error naming it) or ``inner`` (keep the common dates)
JOIN_CHOICES = ("exact", "inner")
#: a ``data_path`` naming the env's seeded synthetic market
SYNTHETIC = "synthetic"
#: trailing fraction of the data held out for the backtest (train, backtest, tune)
DEFAULT_TEST_FRACTION = 0.2
#: trailing fraction of the training slice used for validation (train --eval-freq, tune)
DEFAULT_VALIDATION_FRACTION = 0.2
#: training episode length with random starts, for envs that otherwise run to the end of the data
DEFAULT_EPISODE_LENGTH = 256
#: held-out and validation backtests chain an env's episodes to the end of their slice
#: (:func:`~sb3_trading.evaluation.backtest` ``consecutive=True``), so an env with its own horizon or stop
#: (LeveragedPair's ``max_days``, a stop-loss) is measured on every bar of the slice, not on its first episode
CONSECUTIVE = True
VEC_KINDS = ("auto", "batched", "dummy")
#: files of a run folder (``sb3-trading train``): the model, the report, the train-slice normaliser, the
#: train-slice indicator fits (``regime_prob``'s HMMs) and the run spec (env, env arguments, data source, split,
#: seed) that ``sb3-trading backtest`` reads
MODEL_ZIP = "model.zip"
REPORT_JSON = "report.json"
NORMALIZER_JSON = "normalizer.json"
FEATURE_FITS_JSON = "feature_fits.json"
RUN_JSON = "run.json"

_PPO_FAMILY: dict[str, Any] = {
    "policy": "MultiInputPolicy",
    "n_steps": 256,
    "batch_size": 256,
    "n_epochs": 10,
    "learning_rate": 3e-4,
    "gamma": 0.5,
    "ent_coef": 0.0,
    "policy_kwargs": {"net_arch": [64, 64]},
}
#: decoupled weight decay (AdamW) of the continuous-action policies: on a market with nothing to learn the policy
#: gradient is noise, and without decay the weights random-walk into a policy that trades on noise features and
#: loses its costs; the decay pulls them back towards the untrained, near-flat policy unless an edge keeps them
#: away (README "Learning what is learnable": MultiAsset-v0 null-market Sharpe CI excludes 0 in 0 of 4 seeds, was
#: 2 of 2, and held-out skill median 1.30, was 0.94)
_WEIGHT_DECAY: dict[str, Any] = {"optimizer_class": th.optim.AdamW, "optimizer_kwargs": {"weight_decay": 1.0}}
_QUANTILE = {"huber_kappa": 0.001, "policy_kwargs": {"net_arch": [64, 64], "n_quantiles": 32}}

#: defaults of the main job, per algorithm (tuned configs belong in zoo_configs/)
DEFAULT_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "ppo": {**_PPO_FAMILY, "policy_kwargs": {"net_arch": [64, 64], **_WEIGHT_DECAY}},
    "ppo_mask": {**_PPO_FAMILY, "ent_coef": 0.01},
    "qppo": {**_PPO_FAMILY, **_QUANTILE, "policy_kwargs": {**_QUANTILE["policy_kwargs"], **_WEIGHT_DECAY}},
    "qppo_mask": {**_PPO_FAMILY, **_QUANTILE, "ent_coef": 0.01},
    "ppo_lstm": {
        **_PPO_FAMILY,
        "policy": "MultiInputLstmPolicy",
        "n_steps": 128,
        "policy_kwargs": {"net_arch": [64], "lstm_hidden_size": 64},
    },
}


# ----------------------------------------------------------------------------- small checks
def check_fraction(value: Any, name: str) -> float:
    """``value`` as a float in ``(0, 1)``, or an error naming ``name`` (:func:`sb3_trading.common.validation.check_real`)."""
    return check_real(name, value, minimum=0.0, maximum=1.0, strict_minimum=True, strict_maximum=True)


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int ``>= minimum``, or an error naming ``name`` (:func:`sb3_trading.common.validation.check_int`)."""
    return check_int(name, value, minimum=minimum)


def check_device(device: Any) -> str:
    """``device`` if torch knows it (``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``...), else ``ValueError``."""
    import torch

    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {device!r}")
    if device == "auto":
        return device
    try:
        torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"unknown torch device {device!r}: use auto, cpu, cuda, cuda:<index> or mps") from exc
    return device


def check_output_dir(output_dir: str | os.PathLike[str]) -> None:
    """``ValueError`` when ``output_dir`` exists and is not a folder (it would fail after training)."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"output dir {os.fspath(output_dir)!r} is a file, not a folder; choose a folder for the runs")


# ----------------------------------------------------------------------------- envs
def env_class(env_id: str) -> type:
    """The class behind a registered env ID (its entry point, imported)."""
    entry = gym.spec(env_id).entry_point
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        return getattr(importlib.import_module(module), attr)
    return entry  # type: ignore[return-value]


def check_trading_env(env_id: str) -> str:
    """``env_id`` if it is a registered ``sb3_trading`` env, else a clear ``ValueError``.

    The run recipe builds envs with ``data=``, ``normalizer=`` and the standard ``info`` keys, which
    other Gymnasium envs (``CartPole-v1``...) do not have.
    """
    env_id = check_env_id(env_id)
    entry = gym.spec(env_id).entry_point
    module = entry.partition(":")[0] if isinstance(entry, str) else getattr(entry, "__module__", "")
    if env_id not in ENV_ENTRY_POINTS and not str(module).startswith("sb3_trading."):
        raise ValueError(
            f"{env_id!r} is not an sb3_trading trading env (it takes no market data); "
            f"train, backtest, walk-forward and tune run one of {sorted(ENV_ENTRY_POINTS)}"
        )
    return env_id


def default_market(env_id: str, seed: int = 0, env_kwargs: Mapping[str, Any] | None = None) -> MarketData:
    """The seeded synthetic market ``gym.make(env_id, synthetic_seed=seed, **env_kwargs)`` trades, without an env.

    Asks the env class's ``default_market(seed, ...)`` hook (passing the ``env_kwargs`` its signature names,
    e.g. YieldAllocation's ``periods_per_year``); an ``sb3_trading`` env without one is built once to read its
    ``data``.

    :param env_id: registered ``sb3_trading`` env ID.
    :param seed: seed of the synthetic market.
    :param env_kwargs: env arguments; those that shape the market reach the hook.
    :raises ValueError: ``env_id`` is not an ``sb3_trading`` env.
    """
    env_id = check_trading_env(env_id)
    kwargs = dict(env_kwargs or {})
    hook = getattr(env_class(env_id), "default_market", None)
    if callable(hook):
        shaping = {name: kwargs[name] for name in inspect.signature(hook).parameters if name != "seed" and name in kwargs}
        try:
            return hook(seed, **shaping)
        except NotImplementedError:
            pass  # the base class's hook: build the env once below
    env = gym.make(env_id, synthetic_seed=seed, **kwargs)
    try:
        return env.unwrapped.data
    finally:
        env.close()


# ----------------------------------------------------------------------------- data
def data_source(data_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None) -> str | list[str] | None:
    """``data_path`` as :func:`sb3_trading.data.load_market_data` takes it: ``None`` for the synthetic market
    (``None``, ``"synthetic"``), one string for one value (a file, a folder or a glob), a list of strings for several.

    :raises TypeError: not a path or a sequence of paths.
    :raises ValueError: an empty list, or ``"synthetic"`` among several paths.
    """
    if data_path is None:
        return None
    if isinstance(data_path, (str, os.PathLike)):
        values = [os.fspath(data_path)]
    elif isinstance(data_path, Sequence) and all(isinstance(p, (str, os.PathLike)) for p in data_path):
        values = [os.fspath(p) for p in data_path]
    else:
        raise TypeError(f"data_path must be a path, a folder, a glob or a list of them, got {data_path!r}")
    if not values:
        raise ValueError("data_path is an empty list: give at least one market file, a folder or a glob")
    if SYNTHETIC in values:
        if len(values) > 1:
            raise ValueError(f"data_path {SYNTHETIC!r} (the env's synthetic market) cannot be combined with files: {values}")
        return None
    return values[0] if len(values) == 1 else values


def describe_source(source: str | list[str] | None, env_id: str, seed: int) -> str | list[str]:
    """The label a report gives the data: the path(s), or ``"<env> synthetic market (seed=<seed>)"``."""
    return source if source is not None else f"{env_id} synthetic market (seed={seed})"


def load_env_data(
    env_id: str,
    data_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    seed: int,
    env_kwargs: Mapping[str, Any] | None = None,
    *,
    join: str = "exact",
    generator: MarketGenerator | None = None,
) -> MarketData:
    """The market at ``data_path``, or the seeded synthetic market (:func:`default_market`, or ``generator(seed)``).

    :param env_id: registered ``sb3_trading`` env ID (names the synthetic market).
    :param data_path: see :func:`data_source`: a file, a folder, a glob, a list of them, or ``None``/``"synthetic"``.
    :param seed: seed of the synthetic market.
    :param env_kwargs: env arguments that shape the synthetic market.
    :param join: how several files are joined on their dates (:data:`JOIN_CHOICES`).
    :param generator: ``seed -> MarketData`` used instead of the env's own synthetic market (e.g. a null market
        with nothing to learn); ignored when ``data_path`` names files.
    :return: the market; its ``periods_per_year`` is its calendar (inferred from the timestamps).
    """
    if join not in JOIN_CHOICES:
        raise ValueError(f"join must be one of {JOIN_CHOICES}, got {join!r}")
    source = data_source(data_path)
    if source is not None:
        # one file with the default join needs no join= (older loaders take none); several files always say how
        kwargs: dict[str, Any] = {} if isinstance(source, str) and join == "exact" else {"join": join}
        return load_market_data(source, **kwargs)
    if generator is not None:
        return generator(seed=seed)
    return default_market(env_id, seed, env_kwargs)


def split_train_test(data: MarketData, test_fraction: float) -> tuple[MarketData, MarketData]:
    """Chronological train / held-out split (the test slice is the last ``test_fraction`` of rows)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    train, test = data.split(1.0 - test_fraction)
    return train, test


def split_validation(train_data: MarketData, validation_fraction: float) -> tuple[MarketData, MarketData]:
    """``(fit, validation)``: the training slice without / with only its trailing ``validation_fraction``."""
    check_fraction(validation_fraction, "validation_fraction")
    return train_data.split(1.0 - validation_fraction)


def with_lookback(data: MarketData, start: int, stop: int, lookback: int) -> MarketData:
    """Rows ``[start, stop)`` of ``data`` with up to ``lookback`` earlier rows before them (past bars only), so an
    env built on it (``first_t = lookback``, :attr:`Probe.first_t`) decides first at row ``start``."""
    return data.slice(max(0, int(start) - int(lookback)), int(stop))


# ----------------------------------------------------------------------------- resampled training markets
#: how the training market is resampled every episode (``train --resample``): ``synthetic`` adds fresh paths of the
#: env's own generator, ``bootstrap`` stationary-bootstrap paths of the training slice, ``none`` trains on the one
#: path; ``auto`` is ``synthetic`` on the env's synthetic market and ``bootstrap`` on market files
RESAMPLE_CHOICES = ("auto", "synthetic", "bootstrap", "none")
#: a seeded synthetic market, called as ``generator(seed=seed) -> MarketData``
#: (e.g. ``functools.partial(make_regime_market, drift=0.0)``)
MarketGenerator = Callable[[int], MarketData]
#: paths in a resampled training market (the training slice itself plus ``n_paths - 1`` new ones)
DEFAULT_N_PATHS = 16
#: mean block length (bars) of the stationary bootstrap of a training slice
DEFAULT_MEAN_BLOCK = 20.0


def resample_kind(resample: str, data_path: Any) -> str:
    """Resolve ``resample`` (:data:`RESAMPLE_CHOICES`) for a run on ``data_path`` (``None``: the synthetic market)."""
    check_choice("resample", resample, RESAMPLE_CHOICES)
    if resample == "auto":
        return "synthetic" if data_source(data_path) is None else "bootstrap"
    if resample == "synthetic" and data_source(data_path) is not None:
        raise ValueError(
            "resample='synthetic' draws fresh paths of the env's synthetic market, but the run trains on market "
            "files; use resample='bootstrap' (resampled bars of the training slice) or 'none'"
        )
    return resample


def path_seed(seed: int, k: int) -> int:
    """Seed of the ``k``-th fresh synthetic path of a run seeded ``seed``: ``SeedSequence([seed, k])``'s first word,
    so no path repeats the run's own market (seed ``seed``) and path ``k`` does not depend on how many are drawn."""
    return int(np.random.SeedSequence([int(seed), int(k)]).generate_state(1)[0])


def training_market(
    env_id: str,
    train_data: MarketData,
    resample: str,
    n_paths: int = DEFAULT_N_PATHS,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    mean_block: float = DEFAULT_MEAN_BLOCK,
    generator: MarketGenerator | None = None,
) -> MarketData:
    """The market the training envs run on: ``train_data`` itself, or a bank of ``n_paths`` paths laid end to end
    (:func:`~sb3_trading.data.stack_paths`) whose first path is ``train_data``; every episode (every account of
    the batched env) then starts on a uniformly drawn bar of a uniformly drawn path, so the agent cannot memorise
    one history.

    :param env_id: the env (its ``default_market`` generator makes the ``synthetic`` paths).
    :param train_data: the training slice (rows ``0 .. n - 1`` of the run's market).
    :param resample: ``"synthetic"``: ``n_paths - 1`` fresh markets of the env's generator, seeds
        :func:`path_seed` ``(seed, k)``, each cut to the first ``n`` rows (the training slice's span: none of them
        holds a bar of the held-out period); ``"bootstrap"``: ``n_paths - 1`` stationary-bootstrap paths of
        ``train_data`` (:func:`~sb3_trading.data.bootstrap_paths`, mean block ``mean_block`` bars, never a bar from
        outside the slice); ``"none"``: ``train_data`` unchanged. Resolve ``"auto"`` first (:func:`resample_kind`).
    :param n_paths: paths in the bank, ``>= 1`` (1 is ``train_data`` alone).
    :param seed: the run's seed.
    :param env_kwargs: env arguments that shape the synthetic market.
    :param mean_block: mean block length of the bootstrap, bars.
    :param generator: ``seed -> MarketData`` drawing the ``synthetic`` paths instead of the env's own market (the
        generator the run's market came from, see :func:`load_env_data`).
    :raises ValueError: an unknown ``resample``, or a generator market shorter than the training slice.
    """
    check_choice("resample", resample, RESAMPLE_CHOICES[1:])
    n_paths = check_positive_int(n_paths, "n_paths")
    if resample == "none" or n_paths == 1:
        return train_data
    if resample == "bootstrap":
        return stack_paths([train_data, *bootstrap_paths(train_data, n_paths - 1, mean_block, seed)])
    paths = [train_data]
    for k in range(1, n_paths):
        k_seed = path_seed(seed, k)
        market = default_market(env_id, k_seed, env_kwargs) if generator is None else generator(seed=k_seed)
        if market.n_steps < train_data.n_steps:
            raise ValueError(
                f"the synthetic market of {env_id} has {market.n_steps} rows, fewer than the {train_data.n_steps} of "
                "the training slice; use resample='bootstrap' or 'none'"
            )
        paths.append(market.slice(0, train_data.n_steps))
    return stack_paths(paths)


# ----------------------------------------------------------------------------- the probe: normaliser + facts
@dataclass(frozen=True)
class Probe:
    """What one env built on the training slice tells the recipe (the env is closed afterwards).

    :ivar normalizer: the feature normaliser, fitted on the training slice (``normalizer="fit"``) unless
        ``env_kwargs`` chose another one (e.g. ``"expanding"``).
    :ivar first_t: first usable bar (window + indicator warm-up - 1): the look-back a test slice needs.
    :ivar last_t: last bar of the training slice.
    :ivar episode_length: the env's own horizon (``None``: it runs to the end of the data).
    :ivar masking: whether the env exposes ``action_masks()`` (sb3-contrib's ``is_masking_supported``).
    :ivar observation_space: the env's observation space.
    :ivar action_space: the env's action space.
    :ivar feature_fits: fitted indicator state of the training slice (``regime_prob``'s HMMs, those of the sizing
        wrappers' regimes included; :data:`~sb3_trading.features.FeatureFits`): the held-out envs reuse it.
    """

    normalizer: Any
    first_t: int
    last_t: int
    episode_length: int | None
    masking: bool
    observation_space: gym.Space
    action_space: gym.Space
    feature_fits: dict[str, Any] = dataclasses.field(default_factory=dict)


def probe_env(
    env_id: str, train_data: MarketData, env_kwargs: Mapping[str, Any] | None = None, sizing: Sequence[Any] = ()
) -> Probe:
    """Build the env once on ``train_data`` with ``normalizer="fit"`` (the train-slice z-score, causal for every
    later bar) and read what the recipe needs; an explicit ``env_kwargs["normalizer"]`` wins. The ``sizing``
    wrappers (:func:`~sb3_trading.wrappers.sizing.wrap_sizing` specs) are applied only to fit their regimes on
    the training slice (``Probe.feature_fits``); the spaces are the env's own.
    """
    from sb3_contrib.common.maskable.utils import is_masking_supported

    from sb3_trading.wrappers.sizing import wrap_sizing

    kwargs = {"normalizer": "fit", **dict(env_kwargs or {}), "data": train_data}
    env = gym.make(env_id, **kwargs)
    try:
        base = env.unwrapped
        if sizing:
            wrap_sizing(env, list(sizing))  # fits the sizing regimes into base.feature_fits
        return Probe(
            normalizer=base.normalizer,
            first_t=int(base.first_t),
            last_t=int(base.last_t),
            episode_length=None if base.episode_length is None else int(base.episode_length),
            masking=bool(is_masking_supported(env)),
            observation_space=env.observation_space,
            action_space=env.action_space,
            feature_fits=copy.deepcopy(base.feature_fits),
        )
    finally:
        env.close()


def check_algo_env(algo_name: str, probe: Probe, env_id: str) -> None:
    """``ValueError`` when a maskable algorithm meets an env without ``action_masks()``."""
    if algo_name.endswith("_mask") and not probe.masking:
        raise ValueError(
            f"algorithm {algo_name!r} needs an env with action_masks() and a discrete action space; "
            f"{env_id} has {probe.action_space}. Use a masked env (sb3_trading/MaskedTrading-v0) or an unmasked algorithm"
        )


def training_env_kwargs(
    env_kwargs: Mapping[str, Any] | None, train_data: MarketData, probe: Probe, episode_length: int
) -> dict[str, Any]:
    """The training envs' arguments: the user's, the training slice, the fitted normaliser and indicator state,
    random starts and, for envs that otherwise run to the end of the data, ``episode_length`` (at most the slice's
    usable bars)."""
    check_positive_int(episode_length, "episode_length")
    kwargs = {
        **dict(env_kwargs or {}),
        "data": train_data,
        "normalizer": probe.normalizer,
        "feature_fits": probe.feature_fits,
        "random_start": True,
    }
    if probe.episode_length is None:
        kwargs["episode_length"] = max(1, min(int(episode_length), probe.last_t - probe.first_t))
    return kwargs


# ----------------------------------------------------------------------------- vec env and model
def choose_vec_env(env_id: str, vec: str, reward: Sequence[str] = (), sizing: Sequence[Any] = ()) -> str:
    """Resolve ``vec`` (``auto``, ``batched``, ``dummy``) to ``"batched"`` or ``"dummy"``.

    ``auto`` is batched where the env has a batched kernel and no Gymnasium reward or sizing wrapper is requested.
    """
    from sb3_trading.vec import SUPPORTED_ENV_IDS

    if vec not in VEC_KINDS:
        raise ValueError(f"vec must be one of {VEC_KINDS}, got {vec!r}")
    batched_ok = env_id.rsplit(":", 1)[-1] in SUPPORTED_ENV_IDS
    if vec == "batched" and not batched_ok:
        raise ValueError(f"vec='batched' supports {list(SUPPORTED_ENV_IDS)}, not {env_id!r}; use vec='dummy'")
    if vec == "batched" and reward:
        raise ValueError("reward wrappers wrap single Gymnasium envs: use vec='dummy' (or 'auto') with --reward")
    if vec == "batched" and sizing:
        raise ValueError("sizing wrappers wrap single Gymnasium envs: use vec='dummy' (or 'auto') with --sizing")
    if vec == "auto":
        return "batched" if batched_ok and not reward and not sizing else "dummy"
    return vec


def wrap_training_env(env: gym.Env, reward: Sequence[Any] = (), sizing: Sequence[Any] = ()) -> gym.Env:
    """``env`` in its sizing wrappers (innermost: they decide what is traded), then its reward wrappers.

    :param env: one env.
    :param reward: :func:`sb3_trading.wrappers.wrap_reward` specs, innermost first.
    :param sizing: :func:`sb3_trading.wrappers.sizing.wrap_sizing` specs, innermost first.
    """
    from sb3_trading.wrappers import wrap_reward
    from sb3_trading.wrappers.sizing import wrap_sizing

    env = wrap_sizing(env, list(sizing))
    return wrap_reward(env, list(reward)) if reward else env


def make_training_vec_env(
    env_id: str,
    env_kwargs: Mapping[str, Any],
    n_envs: int,
    seed: int,
    vec: str = "auto",
    reward: Sequence[str] = (),
    sizing: Sequence[Any] = (),
) -> Any:
    """The training VecEnv: :mod:`sb3_trading.vec`'s batched env where :func:`choose_vec_env` allows, else SB3's
    ``DummyVecEnv`` (with the sizing and reward wrappers ``sizing`` and ``reward`` when given,
    :func:`wrap_training_env`)."""
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_trading.vec import make_vec_env as make_batched_vec_env

    check_positive_int(n_envs, "n_envs")
    kind = choose_vec_env(env_id, vec, reward, sizing)
    if kind == "batched":
        return make_batched_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs=dict(env_kwargs))
    return make_vec_env(
        env_id,
        n_envs=n_envs,
        seed=seed,
        env_kwargs={**env_kwargs, "render_mode": None},
        wrapper_class=wrap_training_env if reward or sizing else None,
        wrapper_kwargs={"reward": list(reward), "sizing": list(sizing)} if reward or sizing else None,
    )


def default_hyperparams(algo_name: str, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A deep copy of :data:`DEFAULT_HYPERPARAMS` ``[algo_name]`` overridden by ``overrides`` (``policy`` included).

    Deep copies because SB3 mutates ``policy_kwargs``; keys of ``overrides`` replace whole entries. rl-zoo3's
    strings in ``overrides`` are resolved (:func:`~sb3_trading.common.hyperparams.resolve_zoo_hyperparams`:
    ``learning_rate="lin_3e-4"``, ``policy_kwargs="dict(optimizer_class=th.optim.AdamW)"``), never evaluated.

    :raises ValueError: a zoo string that is not a linear schedule or a ``dict(...)`` of literals and torch classes.
    """
    base = DEFAULT_HYPERPARAMS.get(algo_name, {"policy": "MultiInputPolicy"})
    return copy.deepcopy({**base, **resolve_zoo_hyperparams(overrides or {})})


_POSITIVE_INTS = ("n_steps", "batch_size", "n_epochs")
_UNIT_INTERVAL = ("gamma", "gae_lambda")
_NON_NEGATIVE = ("ent_coef", "vf_coef")
_POSITIVE_OR_SCHEDULE = ("learning_rate", "clip_range")


def _check_net_arch(net_arch: Any) -> None:
    def layers_ok(layers: Any) -> bool:
        return isinstance(layers, (list, tuple)) and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in layers
        )

    if isinstance(net_arch, dict):
        ok = set(net_arch) <= {"pi", "vf", "qf"} and all(layers_ok(v) for v in net_arch.values())
    else:
        ok = net_arch is None or layers_ok(net_arch)
    if not ok:
        raise ValueError(
            f"hyperparameter policy_kwargs.net_arch must be a list of positive layer sizes such as [64, 64] "
            f"or dict(pi=[64], vf=[64]), got {net_arch!r}"
        )


def check_hyperparams(algo_name: str, algo_class: type, hyperparams: Mapping[str, Any]) -> None:
    """Validate algorithm arguments before building a model: known names, types and ranges of the usual ones.

    :raises ValueError: naming the argument and the fix.
    """
    params = inspect.signature(algo_class.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    for key in hyperparams:
        if key != "policy" and key not in params and not takes_any:
            hint = suggest(key, [p for p in params if p not in ("self", "env")])
            raise ValueError(f"unknown hyperparameter {key!r} for {algo_name} ({algo_class.__name__}){hint}")
    policy = hyperparams.get("policy")
    if policy is not None and not isinstance(policy, (str, type)):
        raise ValueError(f"hyperparameter policy must be a policy name such as 'MultiInputPolicy', got {policy!r}")
    for key in _POSITIVE_INTS:
        if hyperparams.get(key) is not None:
            check_int(f"hyperparameter {key}", hyperparams[key], minimum=1)
    for key in _UNIT_INTERVAL:
        if key in hyperparams:
            check_real(f"hyperparameter {key}", hyperparams[key], minimum=0.0, maximum=1.0)
    for key in _NON_NEGATIVE:
        if key in hyperparams:
            check_real(f"hyperparameter {key}", hyperparams[key], minimum=0.0)
    for key in _POSITIVE_OR_SCHEDULE:
        if key in hyperparams and not callable(hyperparams[key]):  # a schedule is a callable of progress
            check_real(f"hyperparameter {key}", hyperparams[key], minimum=0.0, strict_minimum=True)
    policy_kwargs = hyperparams.get("policy_kwargs")
    if policy_kwargs is not None:
        if not isinstance(policy_kwargs, Mapping):
            raise ValueError(
                f"hyperparameter policy_kwargs must be a dict such as {{'net_arch': [64, 64]}}, got {policy_kwargs!r}"
            )
        if "net_arch" in policy_kwargs:
            _check_net_arch(policy_kwargs["net_arch"])


def make_model(
    algo_name: str,
    algo_class: type,
    hyperparams: Mapping[str, Any],
    vec_env: Any,
    seed: int,
    device: str = "auto",
) -> Any:
    """``algo_class(policy, vec_env, seed=seed, device=device, **hyperparams)`` after :func:`check_hyperparams`.

    :param hyperparams: the algorithm arguments including ``policy`` (e.g. :func:`default_hyperparams`); not mutated.
    :raises ValueError: a bad hyperparameter or device (SB3's own construction errors re-raised as ``ValueError``).
    """
    check_device(device)
    check_hyperparams(algo_name, algo_class, hyperparams)
    params = copy.deepcopy(dict(hyperparams))
    policy = params.pop("policy", "MultiInputPolicy")
    try:
        return algo_class(policy, vec_env, seed=seed, device=device, verbose=0, **params)
    except (TypeError, ValueError, AssertionError, KeyError, RuntimeError) as exc:
        raise ValueError(f"cannot build {algo_name} with hyperparameters {dict(hyperparams)!r}: {exc}") from exc


# ----------------------------------------------------------------------------- the effective env configuration
def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(v) for k, v in dataclasses.asdict(value).items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


#: env attributes the report records as the effective configuration (those the env has)
EFFECTIVE_ATTRS = ("initial_cash", "window", "episode_length", "random_start", "traded_assets", "first_t", "periods_per_year")


def effective_env_config(env: gym.Env) -> dict[str, Any]:
    """What the built env actually uses, read off ``env.unwrapped``: class, cost model, initial cash, window,
    horizon, traded assets and the data's calendar (not only what the user typed)."""
    base = env.unwrapped
    config: dict[str, Any] = {"class": f"{type(base).__module__}.{type(base).__qualname__}"}
    if getattr(base, "costs", None) is not None:
        config["costs"] = _plain(base.costs)
    for attr in EFFECTIVE_ATTRS:
        if hasattr(base, attr):
            config[attr] = _plain(getattr(base, attr))
    data = getattr(base, "data", None)
    if data is not None:
        config["data_periods_per_year"] = float(data.periods_per_year)
        config["calendar"] = data.calendar
        config["timezone"] = data.timezone
    normalizer = getattr(base, "normalizer", None)
    config["normalizer"] = None if normalizer is None else type(normalizer).__name__
    return config


def read_feature_fits(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The :data:`~sb3_trading.features.FeatureFits` saved at ``path`` (a run or fold folder's
    ``feature_fits.json``), or ``None`` when there is no such file (a run saved before the file existed).

    :raises ValueError: the file is not JSON of that shape.
    """
    from sb3_trading.features import check_feature_fits

    path = Path(path)
    if not path.is_file():
        return None
    try:
        return check_feature_fits(json.loads(path.read_text()), str(path))
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError(f"{str(path)!r} is not a feature_fits JSON (env.unwrapped.feature_fits): {exc}") from exc


def read_run_spec(model_path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The :data:`RUN_JSON` beside ``model_path`` (``None`` when the model is not in a run folder).

    :raises ValueError: the file exists but is not a JSON object.
    """
    path = Path(model_path).resolve().parent / RUN_JSON
    if not path.is_file():
        return None
    try:
        spec = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{str(path)!r} is not valid JSON ({exc}); pass --env, --env-kwargs and --data instead") from exc
    if not isinstance(spec, dict):
        raise ValueError(f"{str(path)!r} is not a run spec (a JSON object)")
    return spec


__all__ = [
    "DEFAULT_ENV_ID",
    "CONSECUTIVE",
    "DEFAULT_EPISODE_LENGTH",
    "DEFAULT_HYPERPARAMS",
    "DEFAULT_MEAN_BLOCK",
    "DEFAULT_N_PATHS",
    "DEFAULT_TEST_FRACTION",
    "DEFAULT_VALIDATION_FRACTION",
    "JOIN_CHOICES",
    "MarketGenerator",
    "RESAMPLE_CHOICES",
    "SYNTHETIC",
    "VEC_KINDS",
    "Probe",
    "check_algo_env",
    "check_device",
    "check_hyperparams",
    "check_trading_env",
    "choose_vec_env",
    "data_source",
    "default_hyperparams",
    "default_market",
    "effective_env_config",
    "held_out_baselines",
    "load_env_data",
    "make_backtest_env",
    "make_model",
    "make_training_vec_env",
    "path_seed",
    "read_feature_fits",
    "read_run_spec",
    "probe_env",
    "resample_kind",
    "split_train_test",
    "split_validation",
    "training_env_kwargs",
    "training_market",
    "with_lookback",
    "wrap_training_env",
]


def held_out_baselines(
    env: gym.Env,
    agent: Any,
    names: Sequence[str] = ("buy_and_hold", "equal_weight"),
    *,
    random_seed: int | None = None,
    risk_free: float = 0.0,
    periods_per_year: float | None = None,
) -> dict[str, Any]:
    """The baselines of ``agent``'s backtest on ``env``: the one path,
    :func:`~sb3_trading.evaluation.env_baselines` on the agent's rows, from the env's initial cash
    (not the agent's first equity), with the env's costs and (YieldAllocation) yields; a random baseline
    covers the slice as the held-out backtest does (:data:`CONSECUTIVE`). On an env that pays yields
    (YieldAllocation-v0) the single-asset holds (``hold_<asset>``, one per asset) are added to named baselines."""
    start, stop = int(agent.t[0]), int(agent.t[-1])
    base = env.unwrapped
    if names and SINGLE_ASSET not in names:
        traded = base.data.select_assets(list(getattr(base, "traded_assets", base.data.asset_names)))
        if env_yield_rates(env, traded) is not None:
            names = (*names, SINGLE_ASSET)
    return env_baselines(
        env, start, stop, tuple(names), periods_per_year, random_seed=random_seed, risk_free=risk_free, consecutive=CONSECUTIVE
    )
