"""Periodic deterministic backtest on a held-out env: log ``eval/...`` metrics, keep the best model, stop early."""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback, EventCallback, StopTrainingOnNoModelImprovement
from stable_baselines3.common.vec_env import VecEnv, VecNormalize

from sb3_trading.common.io import save_model_atomic
from sb3_trading.common.validation import check_int, is_int, suggest
from sb3_trading.data.calendar import check_annual_rate, per_bar_rate
from sb3_trading.envs.registration import check_env_id
from sb3_trading.evaluation import backtest, compute_metrics, probabilistic_sharpe_ratio

logger = logging.getLogger(__name__)

BEST_MODEL_NAME = "best_model.zip"
#: key of each evaluation's probabilistic Sharpe ratio (logged as ``eval/psr``), which ``min_confidence`` gates on
PSR_KEY = "psr"
#: metrics where smaller is better; every other metric of ``compute_metrics`` is maximised
LOWER_IS_BETTER = frozenset(
    {
        "max_drawdown",
        "max_drawdown_duration",
        "longest_drawdown",
        "drawdown_count",
        "mean_drawdown_duration",
        "time_under_water",
        "tracking_error",
        "annual_volatility",
        "mean_turnover",
        "annual_turnover",
        "total_costs",
    }
)


def known_metrics() -> list[str]:
    """Names of the metrics a backtest reports (the keys of :func:`~sb3_trading.evaluation.compute_metrics`)."""
    zeros = np.zeros(2)
    optional = {"turnover": zeros, "costs": zeros, "weights": np.zeros((2, 1))}
    accepted = inspect.signature(compute_metrics).parameters
    return sorted(compute_metrics(zeros, **{key: value for key, value in optional.items() if key in accepted}))


class _ObsNormalizingPolicy:
    """Wrap a model trained under ``VecNormalize`` so ``predict`` sees normalised observations, as in training."""

    def __init__(self, model: Any, vec_normalize: VecNormalize) -> None:
        self.model = model
        self.vec_normalize = vec_normalize
        self._takes_masks = "action_masks" in inspect.signature(model.predict).parameters

    def predict(
        self,
        observation: Any,
        state: Any = None,
        episode_start: Any = None,
        deterministic: bool = False,
        action_masks: np.ndarray | None = None,
    ) -> tuple[np.ndarray, Any]:
        kwargs = {"action_masks": action_masks} if self._takes_masks and action_masks is not None else {}
        observation = self.vec_normalize.normalize_obs(observation)
        return self.model.predict(observation, state=state, episode_start=episode_start, deterministic=deterministic, **kwargs)


class BacktestEvalCallback(EventCallback):
    """Every ``eval_freq`` calls, backtest the policy on a held-out env; keep the best model; optionally stop.

    The evaluation runs :func:`sb3_trading.evaluation.backtest` (deterministic actions by default)
    over ``n_eval_episodes`` episodes of ``eval_env``, averages each metric over them, and records
    every metric of the result as ``eval/<name>`` (``eval/sharpe``, ``eval/max_drawdown``,
    ``eval/total_return``...) plus ``eval/final_equity`` and ``eval/best_<metric>``, then dumps the
    logger at the current timestep (as SB3's ``EvalCallback`` does).

    The model is scored by ``metric``: ``score = value`` when higher is better, ``-value`` when lower
    is better (``max_drawdown``, ``annual_volatility``, ``mean_turnover``, ``total_costs``). A score
    strictly above the best so far saves the model to ``best_model_save_path/best_model.zip``
    atomically (never a half-written file) and triggers ``callback_on_new_best``. Like
    ``EvalCallback`` it exposes ``best_mean_reward`` (the best score, ``-inf`` before the first
    evaluation) and ``last_mean_reward``, and is the ``parent`` of its child callbacks, so SB3's
    ``StopTrainingOnNoModelImprovement`` (as ``callback_after_eval``) and
    ``StopTrainingOnRewardThreshold`` (as ``callback_on_new_best``, threshold in score units)
    work unchanged.

    SB3 calls the callback while it collects a rollout, before that rollout's update, so a periodic
    evaluation scores the weights of before the update; once any periodic evaluation ran, the model
    training ends with is evaluated too (at the same ``num_timesteps``) and kept if it is the best,
    unless a child callback stopped training.

    **Validation gate** (``min_confidence``): on a market with nothing to learn every checkpoint is noise, and the
    best of them on validation is still a book that trades noise. With ``min_confidence`` set, the policy is also
    evaluated when training starts (the untrained policy: near flat for an action mapping with a dead zone or a
    cash position at ``a = 0``) and kept as the fallback; a later evaluation can replace it only when its
    validation backtest's probabilistic Sharpe ratio (:func:`~sb3_trading.evaluation.probabilistic_sharpe_ratio`,
    Bailey & López de Prado 2012: the probability that the true Sharpe ratio is above 0, from the Sharpe ratio,
    the number of bars, skewness and kurtosis; logged as ``eval/psr``) is at least ``min_confidence``, and among
    those the best by ``metric`` is kept. A book that never changes value (no variance) counts as no evidence
    (``psr = 0``). :attr:`selected_initial` says whether the fallback was kept. The gate needs a flat fallback: when
    the untrained policy holds anything on validation (``exposure > 0``: a tiny book's Sharpe is as large as a big
    one's, and it pays costs; an env with no cash action, a discrete policy that starts long) the gate is off for the
    run (:attr:`gate_active` ``False``, a warning is logged) and every evaluation competes on ``metric`` alone.

    A model trained under ``VecNormalize`` is evaluated on observations normalised with the
    training statistics. With several training envs one call is ``n_envs`` timesteps:
    ``eval_freq = max(eval_freq_in_steps // n_envs, 1)`` (see :func:`make_eval_callback`).

    :param eval_env: the held-out env: a single gymnasium env (not a ``VecEnv``), or a registered
        env ID built with ``gymnasium.make(eval_env, **eval_env_kwargs)`` when training starts; for an
        ID, the feature normaliser of the *training* env is reused (unless ``eval_env_kwargs``
        names one) so the held-out features are scaled with training statistics only. The ID
        form is what an rl-zoo3 yml ``callback:`` entry can pass.
    :param eval_freq: evaluate every ``eval_freq`` calls of the callback (``<= 0`` never).
    :param metric: the metric that selects the best model (a key of ``compute_metrics``).
    :param best_model_save_path: folder for ``best_model.zip``; ``None`` saves nothing.
    :param callback_on_new_best: called when the score improves.
    :param callback_after_eval: called after every evaluation (e.g. ``StopTrainingOnNoModelImprovement``).
    :param deterministic: use the policy's deterministic action.
    :param n_eval_episodes: episodes per evaluation (different with a ``random_start`` env).
    :param eval_env_kwargs: keyword arguments when ``eval_env`` is an ID (e.g. ``data``, ``synthetic_seed``).
    :param seed: seed of the first evaluation episode's ``reset`` (episode ``k`` uses ``seed + k``);
        ``None`` leaves the env's RNG running.
    :param periods_per_year: bars per year of the metrics; ``None`` (default): the eval env's data's
        calendar, ``eval_env.unwrapped.data.periods_per_year``.
    :param verbose: 1 logs each evaluation at INFO level (``logging``), 0 is silent.
    :param risk_free: **annual** risk-free rate (fraction, ``0.04`` = 4 %/year) of the Sharpe and Sortino.
    :param consecutive: each evaluation episode chains the env's episodes to the end of its data
        (:func:`~sb3_trading.evaluation.backtest` ``consecutive=True``: an env with its own horizon or
        stop-loss is scored on its whole slice).
    :param min_confidence: the validation gate, in ``(0, 1)`` (e.g. ``0.9``); ``None`` (default): every
        evaluation competes on ``metric`` alone and nothing is evaluated at the start.
    """

    def __init__(
        self,
        eval_env: gym.Env | str,
        eval_freq: int = 10_000,
        metric: str = "sharpe",
        best_model_save_path: str | Path | None = None,
        callback_on_new_best: BaseCallback | None = None,
        callback_after_eval: BaseCallback | None = None,
        deterministic: bool = True,
        n_eval_episodes: int = 1,
        eval_env_kwargs: dict[str, Any] | None = None,
        seed: int | None = None,
        periods_per_year: float | None = None,
        verbose: int = 0,
        *,
        risk_free: float = 0.0,
        consecutive: bool = False,
        min_confidence: float | None = None,
    ) -> None:
        super().__init__(callback_after_eval, verbose=verbose)
        if isinstance(eval_env, (VecEnv, gym.vector.VectorEnv)):
            raise TypeError("BacktestEvalCallback needs one held-out env (gymnasium.make(...)) or an env ID, not a VecEnv")
        self.eval_env_id: str | None = None
        self.eval_env_kwargs = dict(eval_env_kwargs or {})
        if isinstance(eval_env, str):
            self.eval_env_id = check_env_id(eval_env)
        elif self.eval_env_kwargs:
            raise ValueError("eval_env_kwargs is only used when eval_env is an env ID; got an env instance")
        elif not isinstance(eval_env, gym.Env):
            raise TypeError(f"eval_env must be a gymnasium.Env or an env ID, got {type(eval_env).__name__}")
        if not is_int(eval_freq):
            raise TypeError(f"eval_freq must be an integer, got {eval_freq!r}")
        check_int("n_eval_episodes", n_eval_episodes, 1)
        names = known_metrics()
        if metric not in names:
            raise ValueError(f"unknown metric {metric!r}{suggest(metric, names)} Known: {names}")

        #: the held-out env (built in ``_init_callback`` when ``eval_env`` is an ID)
        self.eval_env: gym.Env | None = None if isinstance(eval_env, str) else eval_env
        self.eval_freq = int(eval_freq)
        self._stopped_early = False
        self.metric = metric
        self.greater_is_better = metric not in LOWER_IS_BETTER
        self.best_model_save_path = None if best_model_save_path is None else Path(best_model_save_path)
        self.callback_on_new_best = callback_on_new_best
        if callback_on_new_best is not None:
            callback_on_new_best.parent = self
        self.deterministic = deterministic
        self.n_eval_episodes = int(n_eval_episodes)
        self.seed = seed
        self.periods_per_year = periods_per_year
        self.risk_free = check_annual_rate(risk_free)
        self.consecutive = bool(consecutive)
        self.min_confidence = check_confidence(min_confidence)
        #: whether the best model is the policy evaluated at the start (the gate's fallback, see ``min_confidence``)
        self.selected_initial = False
        #: whether the gate applies: ``min_confidence`` set and, once training started, a flat untrained policy
        self.gate_active = self.min_confidence is not None
        #: best score so far (``metric``'s value, negated when lower is better); read by SB3's stop callbacks
        self.best_mean_reward = -np.inf
        #: score of the latest evaluation
        self.last_mean_reward = -np.inf
        #: averaged metrics of the latest evaluation and of the best one
        self.last_metrics: dict[str, float] = {}
        self.best_metrics: dict[str, float] = {}
        #: ``num_timesteps`` of the best evaluation (``None`` before the first)
        self.best_timestep: int | None = None
        #: ``(num_timesteps, metrics)`` of every evaluation
        self.evaluations: list[tuple[int, dict[str, float]]] = []

    @property
    def best_model_path(self) -> Path | None:
        """``best_model_save_path / "best_model.zip"``, or ``None`` when not saving."""
        return None if self.best_model_save_path is None else self.best_model_save_path / BEST_MODEL_NAME

    def _init_callback(self) -> None:
        if self.best_model_save_path is not None:
            self.best_model_save_path.mkdir(parents=True, exist_ok=True)
        if self.eval_env is None:
            self.eval_env = self._make_eval_env()
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.init_callback(self.model)

    def _make_eval_env(self) -> gym.Env:
        """``gymnasium.make(eval_env_id, **eval_env_kwargs)``, with the training env's normaliser by default."""
        if self.eval_env_id is None:
            raise RuntimeError("BacktestEvalCallback has neither an eval env nor an env ID to build one")
        kwargs = dict(self.eval_env_kwargs)
        training_env = None if self.model is None else self.model.get_env()
        if "normalizer" not in kwargs and training_env is not None and training_env.has_attr("normalizer"):
            kwargs["normalizer"] = training_env.get_attr("normalizer", indices=[0])[0]
        return gym.make(self.eval_env_id, **kwargs)

    def evaluate(self) -> dict[str, float]:
        """Backtest the current policy ``n_eval_episodes`` times; return the mean of each metric.

        Also sets ``last_metrics``. Does not log, save or compare (``_on_step`` does).
        """
        if self.eval_env is None:
            self.eval_env = self._make_eval_env()
        vec_normalize = self.model.get_vec_normalize_env()
        policy: Any = self.model if vec_normalize is None else _ObsNormalizingPolicy(self.model, vec_normalize)
        runs = []
        for k in range(self.n_eval_episodes):
            seed = None if self.seed is None else self.seed + k
            result = backtest(
                policy,
                self.eval_env,
                deterministic=self.deterministic,
                seed=seed,
                periods_per_year=self.periods_per_year,
                risk_free=self.risk_free,
                consecutive=self.consecutive,
            )
            runs.append(
                {
                    **result.metrics,
                    "final_equity": float(result.equity[-1]),
                    PSR_KEY: validation_psr(result.returns, per_bar_rate(self.risk_free, result.periods_per_year)),
                }
            )
        self.last_metrics = {key: float(np.mean([run[key] for run in runs])) for key in runs[0]}
        return self.last_metrics

    def _on_training_start(self) -> None:
        # the gate's fallback: the policy before any update (the weights learn() was given)
        if self.min_confidence is not None and self.eval_freq > 0:
            self._evaluate_and_keep(initial=True)

    def _on_step(self) -> bool:
        if self.eval_freq <= 0 or self.n_calls % self.eval_freq != 0:
            return True
        continue_training = self._evaluate_and_keep()
        self._stopped_early = not continue_training
        return continue_training

    def _on_training_end(self) -> None:
        # SB3 calls _on_step while it collects a rollout, before the update that follows it, so every periodic
        # evaluation scored the weights of before the last update: once any ran, the final model competes too
        # (unless training was stopped, which skips that update and leaves the last evaluated weights)
        if self.evaluations and not self._stopped_early:
            self._evaluate_and_keep()

    def _evaluate_and_keep(self, initial: bool = False) -> bool:
        """Backtest the current policy, log, keep it if it is the best so far; ``False`` asks to stop training.

        :param initial: the gate's fallback evaluation at the start (kept as the best unconditionally).
        """
        metrics = self.evaluate()
        if self.metric not in metrics:
            raise ValueError(f"the backtest did not report metric {self.metric!r}; it reported {sorted(metrics)}")
        value = metrics[self.metric]
        score = value if self.greater_is_better else -value
        self.last_mean_reward = score
        self.evaluations.append((self.num_timesteps, metrics))
        for key, metric_value in metrics.items():
            self.logger.record(f"eval/{key}", metric_value)

        continue_training = True
        if initial:
            # the fallback counts only when flat: then it is the best so far, else the gate is off for the run
            self.gate_active = new_best = not metrics["exposure"] > 0.0
            if not self.gate_active:
                logger.warning(
                    "validation gate off: the untrained policy holds a book on validation (mean gross exposure %.4g), "
                    "so it is no flat fallback; every checkpoint competes on %s alone",
                    metrics["exposure"],
                    self.metric,
                )
        elif self.gate_active:
            passes = metrics[PSR_KEY] >= self.min_confidence
            new_best = passes and (self.selected_initial or score > self.best_mean_reward)
        else:
            new_best = score > self.best_mean_reward
        if new_best:
            self.selected_initial = initial
            self.best_mean_reward = score
            self.best_metrics = dict(metrics)
            self.best_timestep = int(self.num_timesteps)
            if self.best_model_path is not None:
                save_model_atomic(self.model, self.best_model_path)
        self.logger.record(f"eval/best_{self.metric}", self.best_metrics.get(self.metric, value))
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)
        if self.verbose >= 1:
            logger.info(
                "eval at %d steps: %s=%.4f (best %.4f)%s",
                self.num_timesteps,
                self.metric,
                value,
                self.best_metrics.get(self.metric, float("nan")),
                f", saved {self.best_model_path}" if new_best and self.best_model_path is not None else "",
            )
        if initial:  # a fallback, not an improvement: the child callbacks (stop rules) see periodic evaluations only
            return True
        if new_best and self.callback_on_new_best is not None:
            continue_training = self.callback_on_new_best.on_step()
        if self.callback is not None:
            continue_training = continue_training and self._on_event()
        return continue_training

    def update_child_locals(self, locals_: dict[str, Any]) -> None:
        if self.callback is not None:
            self.callback.update_locals(locals_)
        if self.callback_on_new_best is not None:
            self.callback_on_new_best.update_locals(locals_)


def check_confidence(min_confidence: float | None) -> float | None:
    """``min_confidence`` of the validation gate: ``None``, or a probability strictly between 0 and 1.

    :raises TypeError: not a real number.
    :raises ValueError: outside ``(0, 1)``.
    """
    if min_confidence is None:
        return None
    if isinstance(min_confidence, bool) or not isinstance(min_confidence, (int, float, np.floating)):
        raise TypeError(f"min_confidence must be a probability in (0, 1) or None, got {min_confidence!r}")
    if not 0.0 < float(min_confidence) < 1.0:
        raise ValueError(
            f"min_confidence must be in (0, 1) (e.g. 0.9), got {min_confidence!r}; None switches the validation gate off"
        )
    return float(min_confidence)


def validation_psr(returns: np.ndarray, risk_free_per_bar: float = 0.0) -> float:
    """Probabilistic Sharpe ratio of a validation backtest's per-bar returns ``(T,)`` in excess of
    ``risk_free_per_bar``: ``P(true Sharpe > 0)``; ``0`` (no evidence of skill) for fewer than 3 bars or a book
    whose value never changes (no variance)."""
    excess = np.asarray(returns, dtype=np.float64) - float(risk_free_per_bar)
    if excess.shape[0] < 3 or not np.ptp(excess) > 0.0:
        return 0.0
    return probabilistic_sharpe_ratio(excess)


def make_eval_callback(
    eval_env: gym.Env | str,
    eval_freq: int,
    best_model_save_path: str | Path | None = None,
    patience: int | None = None,
    metric: str = "sharpe",
    n_envs: int = 1,
    min_evals: int = 0,
    **kwargs: Any,
) -> BacktestEvalCallback:
    """The trainer's evaluation callback: backtest every ``eval_freq`` timesteps, keep the best, stop on a plateau.

    :param eval_env: the held-out env (or an env ID, see :class:`BacktestEvalCallback`).
    :param eval_freq: evaluate every ``eval_freq`` environment steps (timesteps, summed over the
        ``n_envs`` training envs); converted to callback calls as ``max(eval_freq // n_envs, 1)``.
    :param best_model_save_path: folder for ``best_model.zip``; ``None`` saves nothing.
    :param patience: stop after this many consecutive evaluations without a new best score
        (SB3's ``StopTrainingOnNoModelImprovement(max_no_improvement_evals=patience)``, which stops
        at the ``patience + 1``-th evaluation without improvement); ``None`` never stops early.
    :param metric: the selection metric.
    :param n_envs: number of training envs.
    :param min_evals: evaluations before non-improvement starts to count.
    :param kwargs: other :class:`BacktestEvalCallback` arguments.
    """
    check_int("eval_freq", eval_freq, 1)
    check_int("n_envs", n_envs, 1)
    stop = None
    if patience is not None:
        check_int("patience", patience, 0, allow_none=True)
        stop = StopTrainingOnNoModelImprovement(max_no_improvement_evals=int(patience), min_evals=min_evals)
    return BacktestEvalCallback(
        eval_env,
        eval_freq=max(int(eval_freq) // int(n_envs), 1),
        metric=metric,
        best_model_save_path=best_model_save_path,
        callback_after_eval=stop,
        **kwargs,
    )
