"""Walk-forward training: train on each training window, backtest on the test block that follows.

Each fold is the recipe of ``sb3-trading train`` (:mod:`sb3_trading.recipe`) on a row slice:

1. the probe env is built on ``data.slice(train_start, train_end)`` with ``normalizer="fit"``: the
   feature normaliser sees training rows only;
2. the algorithm is trained there (random-start episodes, the batched VecEnv where supported, the
   default hyperparameters overridden by ``hyperparams``);
3. the test env is built on ``data.slice(test_start - lookback, test_end)`` with the *training*
   normaliser, where ``lookback`` is the env's window plus indicator warm-up, so the first decision is
   at ``test_start`` (earlier rows are look-back features only, never rewards);
4. the policy is backtested deterministically over the test block, with the baselines on the same rows
   (from the env's initial cash).

What is measured (fold results, aggregate, stitched path) is :mod:`sb3_trading.evaluation.folds`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sb3_trading.algos import get_algo
from sb3_trading.data import MarketData
from sb3_trading.data.calendar import check_annual_rate
from sb3_trading.evaluation.backtest import backtest, data_calendar
from sb3_trading.evaluation.folds import FoldResult, WalkForwardResult, aggregate_folds, on_rows
from sb3_trading.evaluation.report import write_report
from sb3_trading.evaluation.splits import walk_forward_bounds
from sb3_trading.recipe import (
    CONSECUTIVE,
    DEFAULT_ENV_ID,
    DEFAULT_EPISODE_LENGTH,
    DEFAULT_N_PATHS,
    JOIN_CHOICES,
    check_algo_env,
    check_device,
    check_hyperparams,
    check_positive_int,
    check_trading_env,
    choose_vec_env,
    data_source,
    default_hyperparams,
    describe_source,
    effective_env_config,
    held_out_baselines,
    load_env_data,
    make_backtest_env,
    make_model,
    make_training_vec_env,
    probe_env,
    resample_kind,
    training_env_kwargs,
    training_market,
    with_lookback,
)
from sb3_trading.utils import atomic_write_json, jsonable, save_model_atomic

logger = logging.getLogger(__name__)

#: baselines run on every test block
WALK_FORWARD_BASELINES = ("buy_and_hold", "equal_weight")
DEFAULT_OUTPUT_DIR = "runs/walk_forward"


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
    episode_length: int = DEFAULT_EPISODE_LENGTH,
    device: str = "auto",
    output_dir: str | Path | None = None,
    baselines: Sequence[str] = WALK_FORWARD_BASELINES,
    periods_per_year: float | None = None,
    risk_free: float = 0.0,
    vec: str = "auto",
    resample: str = "bootstrap",
    n_paths: int = DEFAULT_N_PATHS,
) -> WalkForwardResult:
    """Train ``algo`` on each walk-forward training window and backtest it on the test block after it.

    :param algo: algorithm name for :func:`sb3_trading.algos.get_algo` (``ppo``, ``ppo_mask``, ...).
    :param env_id: registered ``sb3_trading`` env ID.
    :param data: the whole market; folds are row slices of it.
    :param n_splits: number of folds (see :func:`~sb3_trading.evaluation.splits.walk_forward_bounds`).
    :param timesteps: training steps per fold.
    :param seed: seed of the algorithm and training envs (the same for every fold).
    :param env_kwargs: env arguments, train and test alike (an explicit ``normalizer`` choice wins over the fit).
    :param hyperparams: overrides of :data:`sb3_trading.recipe.DEFAULT_HYPERPARAMS` ``[algo]`` (incl. ``policy``).
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
    :param vec: training VecEnv, as ``sb3-trading train --vec`` (``auto``: batched where supported).
    :param resample: how each fold's training window is resampled every episode (``synthetic``: fresh paths of the
        env's generator, ``bootstrap``: stationary-bootstrap paths of the window, ``none``;
        :func:`~sb3_trading.recipe.training_market`); :func:`run_walk_forward` resolves the CLI's ``auto``.
    :param n_paths: paths of each resampled training market.
    :return: the :class:`~sb3_trading.evaluation.folds.WalkForwardResult`.
    """
    env_id = check_trading_env(env_id)
    algo_name, algo_class = get_algo(algo)
    if not isinstance(data, MarketData):
        raise TypeError(f"data must be a MarketData, got {type(data).__name__}")
    check_positive_int(timesteps, "timesteps")
    check_positive_int(n_envs, "n_envs")
    check_device(device)
    risk_free = check_annual_rate(risk_free)
    vec_kind = choose_vec_env(env_id, vec)
    env_kwargs = dict(env_kwargs or {})
    params = default_hyperparams(algo_name, hyperparams)
    check_hyperparams(algo_name, algo_class, params)
    bounds = walk_forward_bounds(data.n_steps, n_splits, train_size, test_size, purge, embargo, expanding)
    ppy, calendar = data_calendar(data, periods_per_year)
    config: dict[str, Any] = {
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
        "vec_env": vec_kind,
        "n_rows": data.n_steps,
        "periods_per_year": ppy,
        "calendar": calendar,
        "risk_free": risk_free,
        "resample": resample,
        "n_paths": n_paths,
    }
    folds: list[FoldResult] = []
    for k, (train_start, train_end, test_start, test_end) in enumerate(bounds):
        train_data = data.slice(train_start, train_end)
        probe = probe_env(env_id, train_data, env_kwargs)
        check_algo_env(algo_name, probe, env_id)
        market = training_market(env_id, train_data, resample, n_paths, seed, env_kwargs)
        vec_env = make_training_vec_env(
            env_id, training_env_kwargs(env_kwargs, market, probe, episode_length), n_envs, seed, vec_kind
        )
        try:
            model = make_model(algo_name, algo_class, params, vec_env, seed, device)
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
        finally:
            vec_env.close()

        context_start = max(0, test_start - probe.first_t)
        test_data = with_lookback(data, test_start, test_end, probe.first_t)
        test_env = make_backtest_env(env_id, test_data, probe.normalizer, env_kwargs)
        try:
            agent = backtest(
                model,
                test_env,
                deterministic=True,
                name=algo_name,
                periods_per_year=periods_per_year,
                risk_free=risk_free,
                consecutive=CONSECUTIVE,
            )
            fold_baselines = (
                held_out_baselines(test_env, agent, baselines, risk_free=risk_free, periods_per_year=periods_per_year)
                if baselines
                else {}
            )
            if k == 0:
                config["env_config"] = effective_env_config(test_env)
        finally:
            test_env.close()
        agent = on_rows(agent, context_start, data)
        fold_baselines = {name: on_rows(r, context_start, data) for name, r in fold_baselines.items()}
        model_path = None
        if output_dir is not None:
            fold_dir = Path(output_dir) / f"fold_{k}"
            model_path = str(save_model_atomic(model, fold_dir / "model.zip"))
            atomic_write_json(fold_dir / "normalizer.json", None if probe.normalizer is None else probe.normalizer.to_dict())
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
    return aggregate_folds(folds, algo_name, config)


@dataclass
class WalkForwardConfig:
    """Everything ``sb3-trading walk-forward`` needs (see :func:`walk_forward` for the training arguments).

    :param data_path: market file(s), folder or glob (joined on their dates as ``join`` says), or
        ``None``/``"synthetic"`` for the env's seeded synthetic market.
    :param output_dir: folder of ``fold_<k>/``, ``walk_forward.json`` and the stitched report.
    :param n_boot: bootstrap resamples of the report's CIs (``0``: none).
    :param alpha: ``1 -`` confidence level.
    :param plots: write the PNG plots (needs matplotlib).
    :param resample: how each fold's training window is resampled (``auto``: fresh synthetic paths on the
        synthetic market, bootstrap paths on files; see :func:`walk_forward`).
    """

    env_id: str = DEFAULT_ENV_ID
    algo: str = "ppo"
    data_path: str | list[str] | None = None
    n_splits: int | None = 3
    timesteps: int = 10_000
    seed: int = 0
    output_dir: str = DEFAULT_OUTPUT_DIR
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    hyperparams: dict[str, Any] = field(default_factory=dict)
    purge: int = 0
    embargo: int = 0
    train_size: int | None = None
    test_size: int | None = None
    expanding: bool = True
    n_envs: int = 1
    episode_length: int = DEFAULT_EPISODE_LENGTH
    device: str = "auto"
    n_boot: int = 1000
    alpha: float = 0.1
    plots: bool = True
    risk_free: float = 0.0
    join: str = "exact"
    vec: str = "auto"
    resample: str = "auto"
    n_paths: int = DEFAULT_N_PATHS

    def validate(self) -> WalkForwardConfig:
        """Check the fields once, before any work; return a normalised copy."""
        env_id = check_trading_env(self.env_id or DEFAULT_ENV_ID)
        algo_name, algo_class = get_algo(self.algo)
        check_positive_int(self.timesteps, "timesteps")
        check_positive_int(self.n_envs, "n_envs")
        check_positive_int(self.episode_length, "episode_length")
        check_positive_int(self.n_boot, "n_boot", minimum=0)
        check_device(self.device)
        if self.join not in JOIN_CHOICES:
            raise ValueError(f"join must be one of {JOIN_CHOICES}, got {self.join!r}")
        choose_vec_env(env_id, self.vec)
        check_hyperparams(algo_name, algo_class, default_hyperparams(algo_name, self.hyperparams))
        data_source(self.data_path)
        out = Path(self.output_dir)
        if out.exists() and not out.is_dir():
            raise ValueError(f"output dir {str(out)!r} is a file, not a folder")
        check_positive_int(self.n_paths, "n_paths")
        resample = resample_kind(self.resample, self.data_path)
        return WalkForwardConfig(
            **{
                **asdict(self),
                "env_id": env_id,
                "algo": algo_name,
                "risk_free": check_annual_rate(self.risk_free),
                "resample": resample,
            }
        )


def run_walk_forward(config: WalkForwardConfig) -> dict[str, Any]:
    """Walk-forward train/test (``sb3-trading walk-forward``); writes into ``config.output_dir``:

    ``fold_<k>/model.zip`` and ``fold_<k>/normalizer.json`` per fold, ``walk_forward.json`` (config,
    per-fold results, aggregate) and the report (``report.json``, ``report.html``, PNGs) of the stitched
    out-of-sample paths of the agent and the baselines.

    :return: ``walk_forward.json``'s content plus ``report`` (the stitched report).
    """
    config = config.validate()
    env_kwargs = dict(config.env_kwargs)
    source = data_source(config.data_path)
    data = load_env_data(config.env_id, source, config.seed, env_kwargs, join=config.join)
    out = Path(config.output_dir)
    result = walk_forward(
        config.algo,
        config.env_id,
        data,
        n_splits=config.n_splits,
        timesteps=config.timesteps,
        seed=config.seed,
        env_kwargs=env_kwargs,
        hyperparams=config.hyperparams,
        purge=config.purge,
        embargo=config.embargo,
        train_size=config.train_size,
        test_size=config.test_size,
        expanding=config.expanding,
        n_envs=config.n_envs,
        episode_length=config.episode_length,
        device=config.device,
        output_dir=out,
        risk_free=config.risk_free,
        vec=config.vec,
        resample=config.resample,
        n_paths=config.n_paths,
    )
    summary = result.to_dict()
    summary["config"]["data"] = {
        "source": describe_source(source, config.env_id, config.seed),
        "n_steps": data.n_steps,
        "assets": list(data.asset_names),
    }
    summary["config"]["timezone"] = data.timezone
    summary = jsonable(summary)
    atomic_write_json(out / "walk_forward.json", summary)
    algo_name = result.config["algo"]
    stitched = {algo_name: result.stitched["agent"], **{k: v for k, v in result.stitched.items() if k != "agent"}}
    extra = {**summary["config"], "command": "walk-forward", "aggregate": summary["aggregate"]}
    summary["report"] = write_report(
        stitched,
        out,
        title=f"Walk-forward ({len(result.folds)} folds) of {algo_name} on {config.env_id}: stitched out-of-sample",
        extra=extra,
        n_boot=config.n_boot,
        alpha=config.alpha,
        seed=config.seed,
        plots=config.plots,
    )
    return summary


def run_walk_forward_command(**kwargs: Any) -> dict[str, Any]:
    """:func:`run_walk_forward` of ``WalkForwardConfig(**kwargs)`` (the keyword form of earlier versions)."""
    return run_walk_forward(WalkForwardConfig(**kwargs))


__all__ = ["WALK_FORWARD_BASELINES", "WalkForwardConfig", "run_walk_forward", "run_walk_forward_command", "walk_forward"]
