"""Walk-forward evaluation: train on each training window, backtest on the test block that follows.

For fold ``k`` with rows ``[train_start, train_end)`` and ``[test_start, test_end)`` (from
:func:`~sb3_trading.evaluation.splits.walk_forward_bounds`, so ``train_end <= test_start - purge``):

1. the training env is built on ``data.slice(train_start, train_end)`` with ``normalizer="fit"``:
   the feature normaliser sees training rows only;
2. the algorithm is trained there (random-start episodes, as ``sb3-trading train``);
3. the test env is built on ``data.slice(test_start - lookback, test_end)`` with the *training*
   normaliser, where ``lookback`` is the env's window plus indicator warm-up, so the first
   decision is at ``test_start`` (earlier rows are look-back features only, never rewards);
4. the policy is backtested deterministically over the test block, with the baselines on the
   same rows.

The aggregate reports each metric's mean, standard deviation, minimum and maximum over the
folds, the metrics of the *stitched* out-of-sample path (all test blocks compounded in order),
and in how many folds the agent's Sharpe beat each baseline's.

Every metric is annualised with the data's calendar (``data.periods_per_year``, carried into
each fold's slice) and measured against the annual ``risk_free`` rate (default 0); ``config``
records both.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from sb3_trading.data import MarketData
from sb3_trading.data.calendar import check_annual_rate
from sb3_trading.evaluation.backtest import (
    BacktestResult,
    backtest,
    concat_results,
    data_calendar,
    env_baselines,
    make_backtest_env,
)
from sb3_trading.evaluation.splits import walk_forward_bounds

logger = logging.getLogger(__name__)

#: baselines run on every test block
WALK_FORWARD_BASELINES = ("buy_and_hold", "equal_weight")


@dataclass
class FoldResult:
    """One walk-forward fold.

    :ivar fold: fold number, from 0.
    :ivar train_rows: ``(start, stop)`` half-open rows of the training window.
    :ivar test_rows: ``(start, stop)`` half-open rows of the test block.
    :ivar agent: the backtest of the trained policy; its ``t`` are rows of the full data.
    :ivar baselines: baseline backtests on the same rows.
    :ivar train_seconds: wall time of ``learn``.
    :ivar model_path: where the fold's model was saved, if it was.
    :ivar model: the trained algorithm (not serialised).
    """

    fold: int
    train_rows: tuple[int, int]
    test_rows: tuple[int, int]
    agent: BacktestResult
    baselines: dict[str, BacktestResult]
    train_seconds: float
    model_path: str | None = None
    model: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "fold": self.fold,
            "train_rows": list(self.train_rows),
            "test_rows": list(self.test_rows),
            "train_seconds": self.train_seconds,
            "model_path": self.model_path,
            "agent": self.agent.to_dict(),
            "baselines": {name: r.to_dict() for name, r in self.baselines.items()},
        }


@dataclass
class WalkForwardResult:
    """All folds, the aggregate, and the stitched out-of-sample paths (``stitched["agent"]`` first)."""

    folds: list[FoldResult]
    aggregate: dict[str, Any]
    stitched: dict[str, BacktestResult]
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "folds": [f.to_dict() for f in self.folds],
            "aggregate": self.aggregate,
            "stitched": {name: r.to_dict() for name, r in self.stitched.items()},
        }


def summarize_folds(metrics: Sequence[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Per metric key: ``mean``, ``std`` (``ddof=0``), ``min``, ``max`` over folds (keys present in every fold)."""
    if not metrics:
        return {}
    keys = [key for key in metrics[0] if all(key in m for m in metrics)]
    out = {}
    for key in keys:
        values = np.asarray([m[key] for m in metrics], dtype=np.float64)
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            continue
        out[key] = {
            "mean": float(finite.mean()),
            "std": float(finite.std()),
            "min": float(finite.min()),
            "max": float(finite.max()),
        }
    return out


def _check_masks(algo_name: str, env: gym.Env, env_id: str) -> None:
    if algo_name.endswith("_mask") and not hasattr(env.unwrapped, "action_masks"):
        raise ValueError(
            f"algorithm {algo_name!r} needs an env with action_masks() and a discrete action space; "
            f"{env_id} has {env.action_space}. Use a masked env (sb3_trading/MaskedTrading-v0) or an unmasked algorithm"
        )


def walk_forward(
    algo: str,
    env_id: str,
    data: MarketData,
    n_splits: int | None = 3,
    timesteps: int = 10_000,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    hyperparams: Mapping[str, Any] | None = None,
    purge: int = 0,
    embargo: int = 0,
    train_size: int | None = None,
    test_size: int | None = None,
    expanding: bool = True,
    n_envs: int = 1,
    episode_length: int = 256,
    device: str = "auto",
    output_dir: str | Path | None = None,
    baselines: Sequence[str] = WALK_FORWARD_BASELINES,
    periods_per_year: float | None = None,
    risk_free: float = 0.0,
) -> WalkForwardResult:
    """Train ``algo`` on each walk-forward training window and backtest it on the test block after it.

    :param algo: algorithm name for :func:`sb3_trading.algos.get_algo` (``ppo``, ``ppo_mask``, ...).
    :param env_id: registered env ID.
    :param data: the whole market; folds are row slices of it.
    :param n_splits: number of folds (see :func:`~sb3_trading.evaluation.splits.walk_forward_bounds`).
    :param timesteps: training steps per fold.
    :param seed: seed of the algorithm and training envs (the same for every fold).
    :param env_kwargs: env arguments, train and test alike.
    :param hyperparams: overrides of ``sb3_trading.training.DEFAULT_HYPERPARAMS[algo]`` (incl. ``policy``).
    :param purge: bars between each training window and its test block.
    :param embargo: validated; no effect in walk-forward (training never follows a test block).
    :param train_size: first (expanding) / every (rolling) training window, bars.
    :param test_size: bars per test block.
    :param expanding: anchored (``True``) or rolling (``False``) training windows.
    :param n_envs: parallel training envs.
    :param episode_length: training episode length with random starts, for envs that otherwise run to the end.
    :param device: torch device.
    :param output_dir: when given, each fold's ``model.zip`` and ``normalizer.json`` go to ``fold_<k>/``.
    :param baselines: baselines per test block (see :func:`~sb3_trading.evaluation.backtest.env_baselines`).
    :param periods_per_year: bars per year of the metrics (default: ``data.periods_per_year``, its calendar).
    :param risk_free: **annual** risk-free rate (fraction) of the Sharpe and Sortino ratios.
    :return: the :class:`WalkForwardResult`.
    """
    from stable_baselines3.common.env_util import make_vec_env

    from sb3_trading.algos import get_algo
    from sb3_trading.envs.registration import check_env_id
    from sb3_trading.training import DEFAULT_HYPERPARAMS
    from sb3_trading.utils import atomic_write_json, save_model_atomic

    env_id = check_env_id(env_id)
    algo_name, algo_class = get_algo(algo)
    if not isinstance(data, MarketData):
        raise TypeError(f"data must be a MarketData, got {type(data).__name__}")
    if timesteps < 1 or n_envs < 1:
        raise ValueError(f"timesteps and n_envs must be >= 1, got {timesteps} and {n_envs}")
    risk_free = check_annual_rate(risk_free)
    env_kwargs = dict(env_kwargs or {})
    env_kwargs.pop("normalizer", None)
    bounds = walk_forward_bounds(data.n_steps, n_splits, train_size, test_size, purge, embargo, expanding)
    ppy, calendar = data_calendar(data, periods_per_year)
    config = {
        "algo": algo_name,
        "env_id": env_id,
        "n_splits": len(bounds),
        "timesteps": timesteps,
        "seed": seed,
        "purge": purge,
        "embargo": embargo,
        "expanding": expanding,
        "train_size": train_size,
        "test_size": bounds[0][3] - bounds[0][2],
        "n_envs": n_envs,
        "episode_length": episode_length,
        "env_kwargs": env_kwargs,
        "hyperparams": dict(hyperparams or {}),
        "n_rows": data.n_steps,
        "periods_per_year": ppy,
        "calendar": calendar,
        "risk_free": risk_free,
    }
    folds: list[FoldResult] = []
    for k, (train_start, train_end, test_start, test_end) in enumerate(bounds):
        train_data = data.slice(train_start, train_end)
        probe = gym.make(env_id, data=train_data, normalizer="fit", **env_kwargs)
        normalizer = probe.unwrapped.normalizer
        _check_masks(algo_name, probe, env_id)
        lookback = int(probe.unwrapped.first_t)
        episode_kwargs: dict[str, Any] = {"random_start": True}
        if probe.unwrapped.episode_length is None:
            episode_kwargs["episode_length"] = max(1, min(episode_length, probe.unwrapped.last_t - probe.unwrapped.first_t))
        probe.close()

        vec_env = make_vec_env(
            env_id,
            n_envs=n_envs,
            seed=seed,
            env_kwargs={**env_kwargs, "data": train_data, "normalizer": normalizer, **episode_kwargs, "render_mode": None},
        )
        params = {**DEFAULT_HYPERPARAMS.get(algo_name, {"policy": "MultiInputPolicy"}), **(hyperparams or {})}
        policy = params.pop("policy")
        model = algo_class(policy, vec_env, seed=seed, device=device, verbose=0, **params)
        logger.info(
            "fold %d/%d: training %s on rows [%d, %d) for %d steps",
            k + 1,
            len(bounds),
            algo_name,
            train_start,
            train_end,
            timesteps,
        )
        clock = time.perf_counter()
        model.learn(total_timesteps=timesteps)
        train_seconds = time.perf_counter() - clock
        vec_env.close()

        context_start = max(0, test_start - lookback)
        offset = context_start
        test_env = make_backtest_env(env_id, data.slice(context_start, test_end), normalizer, env_kwargs)
        try:
            agent = backtest(
                model, test_env, deterministic=True, name=algo_name, periods_per_year=periods_per_year, risk_free=risk_free
            )
            start_t, stop_t = int(agent.t[0]), int(agent.t[-1])
            fold_baselines = (
                env_baselines(test_env, start_t, stop_t, baselines, periods_per_year, risk_free=risk_free) if baselines else {}
            )
        finally:
            test_env.close()
        agent = dataclasses.replace(agent, t=agent.t + offset, market=data)
        fold_baselines = {name: dataclasses.replace(r, t=r.t + offset, market=data) for name, r in fold_baselines.items()}
        model_path = None
        if output_dir is not None:
            fold_dir = Path(output_dir) / f"fold_{k}"
            model_path = str(save_model_atomic(model, fold_dir / "model.zip"))
            atomic_write_json(fold_dir / "normalizer.json", normalizer.to_dict() if normalizer is not None else None)
        logger.info(
            "fold %d: test rows [%d, %d], sharpe %.3f, total return %.4f",
            k,
            int(agent.t[0]),
            int(agent.t[-1]),
            agent.metrics["sharpe"],
            agent.metrics["total_return"],
        )
        folds.append(
            FoldResult(
                k, (train_start, train_end), (test_start, test_end), agent, fold_baselines, train_seconds, model_path, model
            )
        )

    stitched = {"agent": concat_results([f.agent for f in folds], name=algo_name)}
    for name in folds[0].baselines:
        stitched[name] = concat_results([f.baselines[name] for f in folds], name=name)
    aggregate: dict[str, Any] = {
        "agent": {
            "folds": summarize_folds([f.agent.metrics for f in folds]),
            "stitched": stitched["agent"].metrics,
        },
        "baselines": {
            name: {"folds": summarize_folds([f.baselines[name].metrics for f in folds]), "stitched": stitched[name].metrics}
            for name in folds[0].baselines
        },
        "agent_beats_baseline_sharpe": {
            name: float(np.mean([f.agent.metrics["sharpe"] > f.baselines[name].metrics["sharpe"] for f in folds]))
            for name in folds[0].baselines
        },
    }
    return WalkForwardResult(folds, aggregate, stitched, config)
