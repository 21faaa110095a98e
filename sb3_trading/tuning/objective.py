"""The tuning objective: validation Sharpe of an agent trained on a chronological training fold.

The data (the env's seeded synthetic market or a file) is split in time order, as ``sb3-trading train``
splits it::

    |---------------- train ----------------|--- validation ---|----- test -----|
     fit normaliser, train the agent here     objective, pruning   never touched

``test_fraction`` (0.2) is the held-out tail of ``sb3-trading train`` and stays untouched, so a tuned
configuration can still be judged honestly on it afterwards; ``validation_fraction`` (0.2) is the tail
of the remaining rows. The feature normaliser is fitted on the training fold only and handed to the
validation env. The validation env starts its look-back window inside the training rows just before
the fold (past bars only, as the walk-forward does), so its first decision is on the first validation bar.

Each trial trains ``algo`` with the sampled hyperparameters (on top of
:data:`sb3_trading.recipe.DEFAULT_HYPERPARAMS`) and, every ``eval_freq`` timesteps, backtests the
deterministic policy on the validation fold (:class:`TrialEvalCallback`, a
:class:`~sb3_trading.callbacks.BacktestEvalCallback`), reports the validation Sharpe to Optuna and stops
when the pruner says so. The trial's value is the validation Sharpe of the *final* model (``score="last"``,
always evaluated once more after training: a periodic evaluation at the last timestep ran before PPO's
last update), as rl-zoo3's objective does: it is what training with these hyperparameters for this budget
produces. ``score="best"`` returns the best periodic evaluation instead, which is the best-checkpoint selection of
``sb3-trading train --eval-freq`` but an optimistic (maximum-of-noisy-estimates) number.

Each completed trial also records the return statistics the deflated Sharpe ratio of the study's best trial needs
(:func:`validation_sharpe_moments`, in ``user_attrs["validation_sharpe_moments"]``): the **per-period** Sharpe ratio,
number of bars, skewness and raw kurtosis of the final model's validation excess returns
(:func:`~sb3_trading.evaluation.overfitting.sharpe_moments`), whatever ``score`` and ``metric`` are.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import optuna

from sb3_trading.algos import get_algo
from sb3_trading.callbacks import BacktestEvalCallback
from sb3_trading.callbacks.backtest_eval import LOWER_IS_BETTER, _ObsNormalizingPolicy, known_metrics
from sb3_trading.data import MarketData
from sb3_trading.data.calendar import check_annual_rate
from sb3_trading.evaluation import BacktestResult, backtest
from sb3_trading.evaluation.metrics import risk_free_per_period
from sb3_trading.evaluation.overfitting import sharpe_moments
from sb3_trading.recipe import (
    CONSECUTIVE,
    DEFAULT_EPISODE_LENGTH,
    DEFAULT_HYPERPARAMS,
    DEFAULT_N_PATHS,
    DEFAULT_TEST_FRACTION,
    DEFAULT_VALIDATION_FRACTION,
    check_algo_env,
    check_trading_env,
    choose_vec_env,
    make_backtest_env,
    make_model,
    make_training_vec_env,
    probe_env,
    split_train_test,
    split_validation,
    training_env_kwargs,
    training_market,
    with_lookback,
)
from sb3_trading.tuning.spaces import (
    check_choices,
    check_rollout_budget,
    merge_hyperparams,
    params_to_hyperparams,
    sample_params,
)

logger = logging.getLogger(__name__)

#: what a trial returns: the last evaluation (default) or the best one
SCORES = ("last", "best")
#: trial user attributes written by the objective
WORKER_ATTR = "worker_id"
PARAMS_ATTR = "params"
#: the final model's validation return statistics (:func:`validation_sharpe_moments`), for the deflated Sharpe
SHARPE_MOMENTS_ATTR = "validation_sharpe_moments"


def default_worker_id() -> str:
    """``<hostname>-<pid>``: tells apart the processes that share a study."""
    return f"{socket.gethostname()}-{os.getpid()}"


class TrialEvalCallback(BacktestEvalCallback):
    """:class:`~sb3_trading.callbacks.BacktestEvalCallback` that reports each evaluation to an Optuna trial.

    After every evaluation it calls ``trial.report(score, num_timesteps)`` (``score`` is the metric,
    negated for lower-is-better metrics so the study always maximises) and, when
    ``trial.should_prune()``, sets :attr:`is_pruned` and stops training (the caller raises
    ``optuna.TrialPruned``; raising inside SB3's loop would skip its clean-up). The validation fold is one
    deterministic path, so every evaluation is one backtest (``n_eval_episodes=1``), and the final model's is kept
    whole in :attr:`final_result` (its returns give the trial's deflated-Sharpe statistics).

    :param trial: the trial to report to.
    :param eval_env: the validation env (see :class:`~sb3_trading.callbacks.BacktestEvalCallback`).
    :param eval_freq: evaluate every ``eval_freq`` callback calls (one call = ``n_envs`` timesteps).
    :param metric: the reported metric (``sharpe``).
    :param kwargs: further :class:`~sb3_trading.callbacks.BacktestEvalCallback` arguments.
    :raises ValueError: ``n_eval_episodes`` other than 1.
    """

    def __init__(
        self, trial: optuna.Trial, eval_env: gym.Env | str, eval_freq: int, metric: str = "sharpe", **kwargs: Any
    ) -> None:
        super().__init__(eval_env, eval_freq=eval_freq, metric=metric, **kwargs)
        if self.n_eval_episodes != 1:
            raise ValueError(
                f"TrialEvalCallback evaluates one backtest of the validation fold (deterministic start), got "
                f"n_eval_episodes={self.n_eval_episodes}; leave it at 1"
            )
        self.trial = trial
        #: whether the pruner stopped training
        self.is_pruned = False
        #: the final model's validation backtest (:meth:`final_evaluation`), ``None`` before it ran
        self.final_result: BacktestResult | None = None

    def _on_step(self) -> bool:
        n_before = len(self.evaluations)
        continue_training = super()._on_step()
        if len(self.evaluations) > n_before:
            self.trial.report(self.last_mean_reward, self.num_timesteps)
            if self.trial.should_prune():
                self.is_pruned = True
                return False
        return continue_training

    def final_evaluation(self) -> float:
        """Evaluate the final model (after ``learn`` returned); report it; return its score.

        Always evaluates, even when a periodic evaluation carries the same ``num_timesteps``: callbacks
        run while the rollout is collected, *before* the update that follows it, so a periodic evaluation
        at the last timestep scored the weights before the last update (with a budget of one rollout,
        the initial weights). The final score is reported to the trial only at a timestep not reported
        yet (Optuna keeps the first value of a step); it is not a pruning point: the trial is over anyway.
        The backtest is kept in :attr:`final_result`.
        """
        already_reported = any(step == self.num_timesteps for step, _ in self.evaluations)
        metrics = self._evaluate_final()
        value = metrics[self.metric]
        score = value if self.greater_is_better else -value
        self.last_mean_reward = score
        self.evaluations.append((self.num_timesteps, metrics))
        if score > self.best_mean_reward:
            self.best_mean_reward = score
            self.best_metrics = dict(metrics)
        if not already_reported:
            self.trial.report(score, self.num_timesteps)
        return score

    def _evaluate_final(self) -> dict[str, float]:
        """:meth:`evaluate` of the final model (one backtest), keeping its :class:`BacktestResult` in :attr:`final_result`."""
        if self.eval_env is None:
            self.eval_env = self._make_eval_env()
        vec_normalize = self.model.get_vec_normalize_env()
        policy: Any = self.model if vec_normalize is None else _ObsNormalizingPolicy(self.model, vec_normalize)
        self.final_result = backtest(
            policy,
            self.eval_env,
            deterministic=self.deterministic,
            seed=self.seed,
            periods_per_year=self.periods_per_year,
            risk_free=self.risk_free,
            consecutive=self.consecutive,
        )
        metrics = {**self.final_result.metrics, "final_equity": float(self.final_result.equity[-1])}
        self.last_metrics = {key: float(value) for key, value in metrics.items()}
        return self.last_metrics


def validation_sharpe_moments(result: BacktestResult) -> dict[str, float] | None:
    """The deflated Sharpe ratio's inputs from one validation backtest, as JSON-ready numbers.

    :func:`~sb3_trading.evaluation.overfitting.sharpe_moments` of the excess returns
    ``result.returns - rf`` (``rf`` the per-bar rate of ``result.risk_free``, as the backtest's Sharpe ratio).

    :param result: the final model's validation backtest.
    :return: ``{"sharpe": per-period (not annualised) Sharpe ratio, "n": bars, "skew": skewness,
        "kurtosis": raw (non-excess, normal = 3) kurtosis, "periods_per_year": P}`` (the annualised Sharpe ratio
        is ``sharpe * sqrt(P)``); ``None`` when the Sharpe ratio is undefined (fewer than 2 bars, or constant
        returns: a policy that never leaves cash).
    """
    excess = np.asarray(result.returns, dtype=np.float64) - risk_free_per_period(result.risk_free, result.periods_per_year)
    try:
        moments = sharpe_moments(excess)
    except ValueError:
        return None
    return {
        "sharpe": moments.sharpe,
        "n": moments.n,
        "skew": moments.skew,
        "kurtosis": moments.kurtosis,
        "periods_per_year": float(result.periods_per_year),
    }


class TradingObjective:
    """Optuna objective: train ``algo`` on the training fold, return the validation score (see the module doc).

    Build it once per worker (it splits the data and fits the normaliser once); call it per trial.

    :param env_id: registered env ID.
    :param algo: ``ppo``, ``ppo_mask``, ``ppo_lstm``, ``qppo`` or ``qppo_mask``.
    :param data: the whole market (:func:`sb3_trading.recipe.load_env_data`).
    :param timesteps: training timesteps per trial.
    :param eval_freq: validation backtest every ``eval_freq`` timesteps (summed over the ``n_envs`` envs).
    :param n_envs: parallel training envs (the batched VecEnv where supported, as ``sb3-trading train``).
    :param seed: seed of the training envs and the algorithm, the same for every trial so trials differ
        only by their hyperparameters.
    :param env_kwargs: env arguments, training and validation alike.
    :param test_fraction: held-out tail left untouched (the ``sb3-trading train`` test slice).
    :param validation_fraction: tail of the remaining rows used for validation.
    :param episode_length: training episode length with random starts, for envs that otherwise run to the
        end of the data (as ``sb3-trading train``).
    :param device: torch device of the algorithm.
    :param choices: categorical choices replacing :data:`~sb3_trading.tuning.spaces.DEFAULT_CHOICES` entries.
    :param metric: validation metric (``sharpe``; lower-is-better metrics are negated).
    :param score: ``"last"`` (the final model's validation score) or ``"best"`` (the best evaluation).
    :param worker_id: recorded in each trial's ``user_attrs["worker_id"]``; default ``<hostname>-<pid>``.
    :param risk_free: **annual** risk-free rate (fraction) of the validation Sharpe/Sortino; validation metrics
        are annualised with the data's calendar (``data.periods_per_year``).
    :param vec: training VecEnv kind (``auto``: batched where supported; see :func:`sb3_trading.recipe.choose_vec_env`).
    :param resample: how the training fold is resampled every episode (``synthetic``, ``bootstrap`` or ``none``,
        :func:`~sb3_trading.recipe.training_market`); ``run_study`` resolves ``sb3-trading tune``'s ``auto``.
    :param n_paths: paths of the resampled training market.
    """

    def __init__(
        self,
        env_id: str,
        algo: str,
        data: MarketData,
        timesteps: int = 20_000,
        eval_freq: int = 5_000,
        n_envs: int = 4,
        seed: int = 0,
        env_kwargs: Mapping[str, Any] | None = None,
        test_fraction: float = DEFAULT_TEST_FRACTION,
        validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
        episode_length: int = DEFAULT_EPISODE_LENGTH,
        device: str = "auto",
        choices: Mapping[str, Sequence[Any]] | None = None,
        metric: str = "sharpe",
        score: str = "last",
        worker_id: str | None = None,
        risk_free: float = 0.0,
        vec: str = "auto",
        resample: str = "bootstrap",
        n_paths: int = DEFAULT_N_PATHS,
    ) -> None:
        self.env_id = check_trading_env(env_id)
        #: training VecEnv kind (``batched`` where supported, as ``sb3-trading train``)
        self.vec = choose_vec_env(self.env_id, vec)
        self.risk_free = check_annual_rate(risk_free)
        self.algo, self.algo_class = get_algo(algo)
        for name, value, minimum in (("timesteps", timesteps, 1), ("eval_freq", eval_freq, 1), ("n_envs", n_envs, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
        if eval_freq > timesteps:
            raise ValueError(f"eval_freq ({eval_freq}) > timesteps ({timesteps}): no trial could be pruned; lower --eval-freq")
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}, got {score!r}")
        if metric not in known_metrics():
            raise ValueError(f"unknown metric {metric!r}; known: {known_metrics()}")
        choices = check_choices(choices, self.algo, n_envs)  # before any env is built or any study stores them
        check_rollout_budget(self.algo, choices, n_envs, timesteps)
        if not 0.0 < validation_fraction < 1.0:
            raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
        self.timesteps, self.eval_freq, self.n_envs, self.seed = timesteps, eval_freq, n_envs, seed
        self.env_kwargs = dict(env_kwargs or {})
        for key in ("data", "normalizer"):
            if key in self.env_kwargs:
                raise ValueError(f"env_kwargs may not set {key!r}: the objective builds the folds and fits the normaliser")
        self.device, self.choices, self.metric, self.score = device, dict(choices or {}), metric, score
        self.worker_id = worker_id or default_worker_id()

        # the recipe of ``sb3-trading train`` (sb3_trading.recipe): split, probe, check, training env arguments
        train_all, self.test_data = split_train_test(data, test_fraction)
        self.train_data, validation = split_validation(train_all, validation_fraction)
        probe = probe_env(self.env_id, self.train_data, self.env_kwargs)
        #: feature normaliser fitted on the training fold only
        self.normalizer = probe.normalizer
        #: indicator fits (regime_prob's HMMs) of the training fold, reused by the validation env
        self.feature_fits = probe.feature_fits
        check_algo_env(self.algo, probe, self.env_id)
        lookback = probe.first_t
        #: the training envs' arguments (data, normaliser, random starts, episode length)
        #: how the training fold is resampled every episode (:func:`~sb3_trading.recipe.training_market`)
        self.resample, self.n_paths = resample, n_paths
        market = training_market(self.env_id, self.train_data, resample, n_paths, seed, self.env_kwargs)
        self.train_env_kwargs = training_env_kwargs(self.env_kwargs, market, probe, episode_length)
        self.episode_kwargs: dict[str, Any] = {
            key: self.train_env_kwargs[key] for key in ("random_start", "episode_length") if key in self.train_env_kwargs
        }
        # validation rows with the look-back context just before them (past bars only)
        self.validation_data = with_lookback(train_all, self.train_data.n_steps, train_all.n_steps, lookback)
        self.validation_rows = validation.n_steps

    def make_validation_env(self) -> gym.Env:
        """The validation env: the whole validation fold, deterministic start, the training normaliser."""
        return make_backtest_env(
            self.env_id, self.validation_data, self.normalizer, self.env_kwargs, feature_fits=self.feature_fits
        )

    def make_training_vec_env(self) -> Any:
        """The training VecEnv of a trial (:func:`sb3_trading.recipe.make_training_vec_env`, as ``sb3-trading train``)."""
        return make_training_vec_env(self.env_id, self.train_env_kwargs, self.n_envs, self.seed, self.vec)

    def hyperparams(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Algorithm kwargs (incl. ``policy``) of sampled ``params``: ``DEFAULT_HYPERPARAMS[algo]`` overridden by them."""
        return merge_hyperparams(DEFAULT_HYPERPARAMS[self.algo], params_to_hyperparams(self.algo, params))

    def __call__(self, trial: optuna.Trial) -> float:
        """Run one trial; return its validation score or raise ``optuna.TrialPruned``."""
        trial.set_user_attr(WORKER_ATTR, self.worker_id)
        params = sample_params(self.algo, trial, self.n_envs, self.choices)
        trial.set_user_attr(PARAMS_ATTR, params)
        hyperparams = self.hyperparams(params)
        vec_env = self.make_training_vec_env()
        eval_env = self.make_validation_env()
        start = time.perf_counter()
        try:
            model = make_model(self.algo, self.algo_class, hyperparams, vec_env, self.seed, self.device)
            callback = TrialEvalCallback(
                trial,
                eval_env,
                eval_freq=max(self.eval_freq // self.n_envs, 1),
                metric=self.metric,
                risk_free=self.risk_free,
                consecutive=CONSECUTIVE,
            )
            model.learn(total_timesteps=self.timesteps, callback=callback)
            trial.set_user_attr("trained_timesteps", int(model.num_timesteps))
            if callback.is_pruned:
                trial.set_user_attr("train_seconds", time.perf_counter() - start)
                raise optuna.TrialPruned(
                    f"validation {self.metric} {callback.last_metrics.get(self.metric, float('nan')):.4f} "
                    f"at {model.num_timesteps} of {self.timesteps} steps"
                )
            last = callback.final_evaluation()
        finally:
            vec_env.close()
            eval_env.close()
        trial.set_user_attr("train_seconds", time.perf_counter() - start)
        trial.set_user_attr("last_score", float(last))
        trial.set_user_attr("best_score", float(callback.best_mean_reward))
        trial.set_user_attr("validation_metrics", {k: float(v) for k, v in callback.last_metrics.items()})
        assert callback.final_result is not None
        trial.set_user_attr(SHARPE_MOMENTS_ATTR, validation_sharpe_moments(callback.final_result))
        value = last if self.score == "last" else callback.best_mean_reward
        logger.info("trial %d (%s): validation %s score %.4f", trial.number, self.worker_id, self.metric, value)
        return float(value)

    def config(self) -> dict[str, Any]:
        """The settings that make trial values comparable (stored on the study; a resumed study must match)."""
        return {
            "env_id": self.env_id,
            "algo": self.algo,
            "timesteps": self.timesteps,
            "eval_freq": self.eval_freq,
            "n_envs": self.n_envs,
            "seed": self.seed,
            "env_kwargs": self.env_kwargs,
            "episode_length": self.episode_kwargs.get("episode_length"),
            "resample": self.resample,
            "n_paths": self.n_paths,
            "train_rows": self.train_data.n_steps,
            "validation_rows": self.validation_rows,
            "test_rows": self.test_data.n_steps,
            "choices": {k: list(v) for k, v in sorted(self.choices.items())},
            "metric": self.metric,
            "score": self.score,
            "lower_is_better": self.metric in LOWER_IS_BETTER,
            "periods_per_year": float(self.validation_data.periods_per_year),
            "risk_free": self.risk_free,
        }


__all__ = [
    "SCORES",
    "SHARPE_MOMENTS_ATTR",
    "TradingObjective",
    "TrialEvalCallback",
    "default_worker_id",
    "validation_sharpe_moments",
]
