"""The main job: train an SB3 algorithm on a training slice, backtest it on the held-out slice.

``sb3-trading train`` is a thin argument parser over :func:`train`.
"""

from __future__ import annotations

import copy
import inspect
import logging
import os
import platform
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import configure as configure_logger

from sb3_trading.algos import get_algo
from sb3_trading.callbacks import TradingMetricsCallback, make_eval_callback
from sb3_trading.data import MarketData
from sb3_trading.data.calendar import check_annual_rate
from sb3_trading.data.loaders import load_market_data
from sb3_trading.envs.registration import check_env_id
from sb3_trading.evaluation import backtest, buy_and_hold, equal_weight
from sb3_trading.evaluation.report import calendar_summary
from sb3_trading.sim import CostModel
from sb3_trading.utils import atomic_write_json, save_model_atomic
from sb3_trading.vec import SUPPORTED_ENV_IDS
from sb3_trading.vec import make_vec_env as make_batched_vec_env
from sb3_trading.version import __version__
from sb3_trading.wrappers import parse_reward_spec, wrap_reward

logger = logging.getLogger(__name__)

DEFAULT_ENV_ID = "sb3_trading/MultiAsset-v0"
#: how several market files are joined on their dates (``sb3_trading.data.load_market_data``'s ``join=``):
#: ``exact`` (a date missing in one file is an error naming it) or ``inner`` (keep the common dates)
JOIN_CHOICES = ("exact", "inner")
#: a ``data_path`` naming the env's seeded synthetic market
SYNTHETIC = "synthetic"

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
_QUANTILE = {"huber_kappa": 0.001, "policy_kwargs": {"net_arch": [64, 64], "n_quantiles": 32}}

#: defaults of the main job, per algorithm (tuned configs belong in zoo_configs/)
DEFAULT_HYPERPARAMS: dict[str, dict[str, Any]] = {
    "ppo": dict(_PPO_FAMILY),
    "ppo_mask": {**_PPO_FAMILY, "ent_coef": 0.01},
    "qppo": {**_PPO_FAMILY, **_QUANTILE},
    "qppo_mask": {**_PPO_FAMILY, **_QUANTILE, "ent_coef": 0.01},
    "ppo_lstm": {
        **_PPO_FAMILY,
        "policy": "MultiInputLstmPolicy",
        "n_steps": 128,
        "policy_kwargs": {"net_arch": [64], "lstm_hidden_size": 64},
    },
}


@dataclass
class TrainConfig:
    """Everything ``sb3-trading train`` needs; the defaults are the no-argument main job.

    :param env_id: registered env ID.
    :param algo: ``ppo``, ``ppo_mask``, ``ppo_lstm`` (RecurrentPPO), ``qppo`` (QuantilePPO) or ``qppo_mask``.
    :param timesteps: total environment steps of training.
    :param seed: seeds the synthetic market, the envs and the algorithm.
    :param device: torch device for the algorithm (``auto`` uses CUDA when present).
    :param data_path: the market: a CSV/parquet file, a folder or a glob of them, or a list of those (joined on
        their dates, see ``join``); ``None`` (or ``"synthetic"``) uses the env's seeded synthetic market.
    :param output_dir: parent folder of the run folder.
    :param run_name: run folder name; default ``<algo>_<Env>_seed<seed>_<time>``.
    :param test_fraction: trailing fraction of the data held out for the backtest.
    :param n_envs: parallel training envs (accounts of the batched env, or ``DummyVecEnv`` members).
    :param episode_length: training episode length with random starts, for envs that otherwise run to
        the end of the data (an env with its own horizon, such as LeveragedPair's ``max_days``, keeps it).
    :param env_kwargs: extra keyword arguments for the env (train and test alike).
    :param hyperparams: overrides of :data:`DEFAULT_HYPERPARAMS` for ``algo``.
    :param progress_bar: show SB3's progress bar while training.
    :param reward: reward wrappers, innermost first (:func:`sb3_trading.wrappers.wrap_reward` specs such as
        ``["differential_sharpe:0.05", "drawdown:0.5"]``); the backtest always reports the env's own returns.
    :param eval_freq: every ``eval_freq`` timesteps backtest on a validation slice and keep ``best_model.zip``;
        0 disables it.
    :param eval_metric: validation metric that picks the best model (``sharpe``...).
    :param patience: stop after this many evaluations without a new best (``None``: never).
    :param validation_fraction: tail of the *training* slice used for validation when ``eval_freq > 0``
        (the held-out test slice is never used to pick a model).
    :param vec: ``"batched"`` (:mod:`sb3_trading.vec`, all accounts in one NumPy step), ``"dummy"`` (SB3's
        ``DummyVecEnv``) or ``"auto"``: batched where the env has a batched kernel and no Gymnasium reward
        wrapper is requested (those wrap single envs), else dummy. The report records the choice.
    :param join: how several market files are joined on their dates (:data:`JOIN_CHOICES`).
    :param risk_free: **annual** risk-free rate as a fraction (``0.04`` = 4 %/year) of every Sharpe and Sortino
        ratio (training metrics, validation, backtest); per bar ``(1 + risk_free) ** (1 / P) - 1`` with ``P`` the
        data's ``periods_per_year``. The report states it and the calendar.
    """

    env_id: str = DEFAULT_ENV_ID
    algo: str = "ppo"
    timesteps: int = 100_000
    seed: int = 0
    device: str = "auto"
    data_path: str | list[str] | None = None
    output_dir: str = "runs"
    run_name: str | None = None
    test_fraction: float = 0.2
    n_envs: int = 8
    episode_length: int = 256
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    hyperparams: dict[str, Any] = field(default_factory=dict)
    progress_bar: bool = True
    reward: list[str] = field(default_factory=list)
    eval_freq: int = 0
    eval_metric: str = "sharpe"
    patience: int | None = None
    validation_fraction: float = 0.1
    vec: str = "auto"
    join: str = "exact"
    risk_free: float = 0.0


VEC_KINDS = ("auto", "batched", "dummy")


def choose_vec_env(env_id: str, vec: str, reward: list[str]) -> str:
    """Resolve ``TrainConfig.vec`` to ``"batched"`` or ``"dummy"`` (see :class:`TrainConfig`)."""
    if vec not in VEC_KINDS:
        raise ValueError(f"vec must be one of {VEC_KINDS}, got {vec!r}")
    batched_ok = env_id in SUPPORTED_ENV_IDS
    if vec == "batched" and not batched_ok:
        raise ValueError(f"vec='batched' supports {list(SUPPORTED_ENV_IDS)}, not {env_id!r}; use vec='dummy'")
    if vec == "batched" and reward:
        raise ValueError("reward wrappers wrap single Gymnasium envs: use vec='dummy' (or 'auto') with --reward")
    if vec == "auto":
        return "batched" if batched_ok and not reward else "dummy"
    return vec


def split_train_test(data: MarketData, test_fraction: float) -> tuple[MarketData, MarketData]:
    """Chronological train / held-out split (the test slice is the last ``test_fraction`` of rows)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    train, test = data.split(1.0 - test_fraction)
    return train, test


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


def load_env_data(
    env_id: str,
    data_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None,
    seed: int,
    env_kwargs: dict[str, Any] | None = None,
    *,
    join: str = "exact",
) -> MarketData:
    """The market at ``data_path``, or the env's own seeded synthetic market (``synthetic_seed=seed``).

    :param env_id: registered env ID (builds the synthetic market).
    :param data_path: see :func:`data_source`: a file, a folder, a glob, a list of them, or ``None``/``"synthetic"``.
    :param seed: seed of the synthetic market.
    :param env_kwargs: env arguments for the synthetic market's env.
    :param join: how several files are joined on their dates (:data:`JOIN_CHOICES`).
    :return: the market; its ``periods_per_year`` is its calendar (inferred from the timestamps).
    """
    if join not in JOIN_CHOICES:
        raise ValueError(f"join must be one of {JOIN_CHOICES}, got {join!r}")
    source = data_source(data_path)
    if source is not None:
        # one file with the default join needs no join= (older loaders take none); several files always say how
        kwargs: dict[str, Any] = {} if isinstance(source, str) and join == "exact" else {"join": join}
        return load_market_data(source, **kwargs)
    env = gym.make(env_id, synthetic_seed=seed, **(env_kwargs or {}))
    data = env.unwrapped.data
    env.close()
    return data


def train(config: TrainConfig | None = None) -> dict[str, Any]:
    """Train, save ``<run_dir>/model.zip``, backtest on the held-out slice, write ``<run_dir>/report.json``.

    :param config: the run; ``None`` is the default main job.
    :return: the report (also written as JSON), including ``run_dir`` and ``model_path``.
    """
    config = config or TrainConfig()
    env_id = check_env_id(config.env_id)
    algo_name, algo_class = get_algo(config.algo)
    if config.timesteps < 1:
        raise ValueError(f"timesteps must be >= 1, got {config.timesteps}")
    if config.n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {config.n_envs}")

    if config.eval_freq < 0:
        raise ValueError(f"eval_freq must be >= 0, got {config.eval_freq}")
    for spec in config.reward:
        parse_reward_spec(spec)  # fail before any work on a bad --reward
    risk_free = check_annual_rate(config.risk_free, "risk_free")
    vec_kind = choose_vec_env(env_id, config.vec, config.reward)
    env_kwargs = dict(config.env_kwargs)
    data = load_env_data(env_id, config.data_path, config.seed, env_kwargs, join=config.join)
    train_data, test_data = split_train_test(data, config.test_fraction)
    validation_data = None
    if config.eval_freq > 0:
        if not 0.0 < config.validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {config.validation_fraction}")
        train_data, validation_data = train_data.split(1.0 - config.validation_fraction)
    # fit the feature normaliser once, on the training slice only (a z-score: causal for every later bar);
    # the validation and test envs reuse it. An explicit env_kwargs normalizer (e.g. "expanding") wins.
    probe = gym.make(env_id, data=train_data, **{"normalizer": "fit", **env_kwargs})
    normalizer = probe.unwrapped.normalizer
    if algo_name.endswith("_mask") and not hasattr(probe.unwrapped, "action_masks"):
        raise ValueError(
            f"algorithm {algo_name!r} needs an env with action_masks() and a discrete action space; "
            f"{env_id} has {probe.action_space}. Use a masked env (sb3_trading/MaskedTrading-v0) or an unmasked algorithm"
        )
    # envs that run to the end of the data by default get random-start episodes of ``episode_length``;
    # envs with their own horizon (LeveragedPair's max_days) keep it
    episode_kwargs: dict[str, Any] = {"random_start": True}
    if probe.unwrapped.episode_length is None:
        episode_kwargs["episode_length"] = min(config.episode_length, probe.unwrapped.last_t - probe.unwrapped.first_t)
    # the backtest covers the whole held-out slice from its first usable bar, where the env allows it
    test_kwargs: dict[str, Any] = {"random_start": False}
    if "episode_length" in inspect.signature(type(probe.unwrapped)).parameters:
        test_kwargs["episode_length"] = None
    probe.close()

    train_env_kwargs = {**env_kwargs, "data": train_data, "normalizer": normalizer, **episode_kwargs}
    if vec_kind == "batched":
        vec_env = make_batched_vec_env(env_id, n_envs=config.n_envs, seed=config.seed, env_kwargs=train_env_kwargs)
    else:
        vec_env = make_vec_env(
            env_id,
            n_envs=config.n_envs,
            seed=config.seed,
            env_kwargs={**train_env_kwargs, "render_mode": None},
            wrapper_class=wrap_reward if config.reward else None,
            wrapper_kwargs={"specs": config.reward} if config.reward else None,
        )
    hyperparams = copy.deepcopy({**DEFAULT_HYPERPARAMS[algo_name], **config.hyperparams})  # SB3 may mutate policy_kwargs
    policy = hyperparams.pop("policy")
    model = algo_class(policy, vec_env, seed=config.seed, device=config.device, verbose=0, **hyperparams)

    run_name = config.run_name or f"{algo_name}_{env_id.split('/')[-1]}_seed{config.seed}_{time.strftime('%Y%m%d-%H%M%S')}"
    run_dir = Path(config.output_dir) / run_name
    run_dir.mkdir(parents=True, exist_ok=True)
    model.set_logger(configure_logger(str(run_dir), ["csv"]))  # progress.csv: train/, trading/, eval/
    # metrics are annualised with the data's calendar (read off the envs' MarketData), net of the risk-free rate
    callbacks: list[BaseCallback] = [TradingMetricsCallback(risk_free=risk_free)]
    eval_callback = None
    if validation_data is not None:
        validation_env = gym.make(env_id, data=validation_data, normalizer=normalizer, **{**env_kwargs, **test_kwargs})
        eval_callback = make_eval_callback(
            validation_env,
            config.eval_freq,
            best_model_save_path=str(run_dir),
            patience=config.patience,
            metric=config.eval_metric,
            n_envs=config.n_envs,
            risk_free=risk_free,
        )
        callbacks.append(eval_callback)
    logger.info("training %s on %s for %d steps -> %s", algo_name, env_id, config.timesteps, run_dir)
    start = time.perf_counter()
    model.learn(total_timesteps=config.timesteps, callback=callbacks, progress_bar=config.progress_bar)
    train_seconds = time.perf_counter() - start
    vec_env.close()
    model_path = save_model_atomic(model, run_dir / "model.zip")

    test_env = gym.make(env_id, data=test_data, normalizer=normalizer, **{**env_kwargs, **test_kwargs})
    agent = backtest(model, test_env, deterministic=True, name=algo_name, risk_free=risk_free)
    best_agent = None
    if eval_callback is not None and (run_dir / "best_model.zip").exists():
        best_model = algo_class.load(run_dir / "best_model.zip", device=config.device)
        best_agent = backtest(
            best_model, test_env, deterministic=True, name=f"{algo_name} (best on validation)", risk_free=risk_free
        )
    test_env.close()
    start_t, stop_t = int(agent.t[0]), int(agent.t[-1])
    costs: CostModel = test_env.unwrapped.costs
    initial_cash = float(agent.equity[0])
    traded = test_data.select_assets(test_env.unwrapped.traded_assets)
    baselines = [
        buy_and_hold(traded, start_t, stop_t, initial_cash, costs, risk_free=risk_free),
        equal_weight(traded, start_t, stop_t, initial_cash, costs, risk_free=risk_free),
    ]
    calendar, risk_free_entry = calendar_summary({agent.name: agent})
    if data.timezone:
        calendar["timezone"] = data.timezone

    report: dict[str, Any] = {
        "sb3_trading_version": __version__,
        "stable_baselines3_version": stable_baselines3.__version__,
        "python": platform.python_version(),
        "config": asdict(config),
        "env_id": env_id,
        "algo": algo_name,
        "device": str(model.device),
        "train_seconds": train_seconds,
        "train_fps": config.timesteps / train_seconds if train_seconds > 0 else None,
        "calendar": calendar,
        "risk_free": risk_free_entry,
        "data": {
            "source": data_source(config.data_path) or f"{env_id} synthetic market (seed={config.seed})",
            "n_steps": data.n_steps,
            "assets": list(data.asset_names),
            "train_rows": train_data.n_steps,
            "test_rows": test_data.n_steps,
        },
        "run_dir": str(run_dir),
        "model_path": str(model_path),
        "trained_timesteps": int(model.num_timesteps),
        "vec_env": vec_kind,
        "reward_wrappers": list(config.reward),
        "validation": None
        if eval_callback is None
        else {
            "rows": validation_data.n_steps,
            "metric": config.eval_metric,
            "best": eval_callback.best_metrics,
            "best_model_path": str(run_dir / "best_model.zip"),
            "stopped_early": model.num_timesteps < config.timesteps,
        },
        "agent": agent.to_dict(),
        "best_model_agent": None if best_agent is None else best_agent.to_dict(),
        "baselines": {result.name: result.to_dict() for result in baselines},
    }
    atomic_write_json(run_dir / "report.json", _jsonable(report))
    return report


def _jsonable(obj: Any) -> Any:
    """Convert NumPy scalars/arrays inside ``obj`` to plain Python for ``json``."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    return obj
