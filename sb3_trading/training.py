"""The main job: train an SB3 algorithm on a training slice, backtest it on the held-out slice.

:func:`train` is a short composition of :mod:`sb3_trading.recipe` (the same recipe walk-forward and the
tuning objective use); ``sb3-trading train`` (:mod:`sb3_trading.commands.train`) is argparse over it.

The run folder is one commit: everything is written into a temporary folder beside it and renamed at the
end, so ``<run_dir>`` holds one whole run or none. It carries what reuses it: ``model.zip`` (the model that
scored best on the validation tail; ``last_model.zip`` beside it holds the final weights), ``report.json``,
``normalizer.json`` (the train-slice normaliser), ``feature_fits.json`` (the train-slice fits of indicators
with fitted state: ``regime_prob``'s HMMs) and ``run.json`` (env, env arguments, data source, split,
seed), which ``sb3-trading backtest <run_dir>/model.zip`` reads, ``progress.csv`` and TensorBoard event files
(``tensorboard --logdir <run_dir>``, when tensorboard is installed), ``backtest/`` with the same HTML/PNG
report ``sb3-trading backtest`` writes, and ``manifest.json`` (:mod:`sb3_trading.manifest`: versions, git commit,
data hashes, platform, device, torch threads, seeds).
"""

from __future__ import annotations

import copy
import importlib.util
import json
import logging
import os
import platform
import shutil
import time
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import stable_baselines3
import yaml
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger, make_output_format

from sb3_trading.algos import get_algo
from sb3_trading.callbacks import (
    AtomicCheckpointCallback,
    TradingMetricsCallback,
    WallClockLimit,
    check_confidence,
    latest_checkpoint,
    make_eval_callback,
)
from sb3_trading.common.validation import check_real, suggest
from sb3_trading.data.calendar import check_annual_rate
from sb3_trading.evaluation import backtest, skill_report
from sb3_trading.evaluation.report import calendar_summary, write_report
from sb3_trading.manifest import MANIFEST_JSON, run_manifest
from sb3_trading.recipe import (
    CONSECUTIVE,
    DEFAULT_ENV_ID,
    DEFAULT_EPISODE_LENGTH,
    DEFAULT_HYPERPARAMS,
    DEFAULT_N_PATHS,
    DEFAULT_TEST_FRACTION,
    DEFAULT_VALIDATION_FRACTION,
    FEATURE_FITS_JSON,
    JOIN_CHOICES,
    MODEL_ZIP,
    NORMALIZER_JSON,
    REPORT_JSON,
    RESAMPLE_CHOICES,
    RUN_JSON,
    SYNTHETIC,
    VEC_KINDS,
    MarketGenerator,
    check_algo_env,
    check_device,
    check_fraction,
    check_hyperparams,
    check_output_dir,
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
    split_train_test,
    split_validation,
    training_env_kwargs,
    training_market,
    with_lookback,
)
from sb3_trading.utils import atomic_write, atomic_write_json, check_new_dir, jsonable, save_model_atomic, staged_dir
from sb3_trading.version import __version__
from sb3_trading.wrappers import parse_reward_spec
from sb3_trading.wrappers.sizing import check_sizing_specs

logger = logging.getLogger(__name__)

#: the effective configuration in a run folder (and in its ``.checkpoints`` folder while it trains)
CONFIG_YML = "config.yml"
#: the checkpoints of a finished run
CHECKPOINTS_DIR = "checkpoints"
#: options a config file does not hold
_NOT_IN_FILES = ("market",)

#: the baselines of the held-out backtest in ``report.json``
TRAIN_BASELINES = ("buy_and_hold", "equal_weight")
#: validation backtests per run when ``eval_freq`` is left to its default
EVALUATIONS_PER_RUN = 10
#: the main job's validation gate (``TrainConfig.eval_confidence``): a checkpoint replaces the untrained policy only
#: when its validation Sharpe ratio is above 0 with this probability (README "Learning what is learnable")
DEFAULT_EVAL_CONFIDENCE = 0.9
#: the final weights, beside ``model.zip`` when validation chose an earlier model
LAST_MODEL_ZIP = "last_model.zip"
#: the run folder's held-out backtest report (report.json, report.html and the PNG plots of ``sb3-trading backtest``)
BACKTEST_DIR = "backtest"


def logger_formats() -> list[str]:
    """SB3 logger formats of a training run: ``csv``, plus ``tensorboard`` when the package is installed (without
    it, a one-line notice, not a failure)."""
    if importlib.util.find_spec("tensorboard") is None:
        logger.warning("tensorboard is not installed: progress.csv only (pip install tensorboard for event files)")
        return ["csv"]
    return ["csv", "tensorboard"]


def auto_eval_freq(timesteps: int, rollout: int = 1) -> int:
    """The default ``eval_freq``: about :data:`EVALUATIONS_PER_RUN` validation backtests over ``timesteps``, in whole
    rollouts of ``rollout`` steps (``n_envs * n_steps``): the policy changes only between rollouts, so a second
    backtest inside one would score the same weights."""
    rollout = max(int(rollout), 1)
    return rollout * max(round(int(timesteps) / EVALUATIONS_PER_RUN / rollout), 1)


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
    :param run_name: run folder name; default ``<algo>_<Env>_seed<seed>_<time>``; an existing folder is refused
        unless ``overwrite``.
    :param test_fraction: trailing fraction of the data held out for the backtest.
    :param n_envs: parallel training envs (accounts of the batched env, or ``DummyVecEnv`` members).
    :param episode_length: training episode length with random starts, for envs that otherwise run to
        the end of the data (an env with its own horizon, such as LeveragedPair's ``max_days``, keeps it).
    :param env_kwargs: extra keyword arguments for the env (train and test alike).
    :param hyperparams: overrides of :data:`DEFAULT_HYPERPARAMS` for ``algo``.
    :param progress_bar: show SB3's progress bar while training.
    :param reward: reward wrappers, innermost first (:func:`sb3_trading.wrappers.wrap_reward` specs such as
        ``["differential_sharpe:0.05", "drawdown:0.5"]``); the backtest always reports the env's own returns.
    :param sizing: position-sizing action wrappers, innermost first (:func:`sb3_trading.wrappers.sizing.wrap_sizing`
        specs such as ``["vol_target:0.15,lookback=60"]``); unlike reward wrappers they change what is traded, so
        the validation and held-out backtests run through them too, and ``run.json`` records them (``"sizing"``).
    :param eval_freq: every ``eval_freq`` timesteps backtest on a validation slice and keep the best model:
        ``model.zip`` is then the model that scored best on validation (``last_model.zip`` the final weights);
        ``None`` (default) evaluates :data:`EVALUATIONS_PER_RUN` times per run; 0 disables it (``model.zip`` is
        the final model).
    :param eval_metric: validation metric that picks the best model (``sharpe``...).
    :param patience: stop after this many evaluations without a new best (``None``: never).
    :param eval_confidence: the validation gate (:class:`~sb3_trading.callbacks.BacktestEvalCallback`
        ``min_confidence``, default :data:`DEFAULT_EVAL_CONFIDENCE`): the untrained policy is evaluated first and
        kept unless a later checkpoint's validation probabilistic Sharpe ratio (``P(true Sharpe > 0)``) reaches it,
        so a run that finds nothing significant on validation ships the untrained policy and the report says so
        (``validation.selected_initial``); only where that policy is flat on validation (an action mapping with a
        dead zone or a cash action at ``a = 0``; otherwise ``validation.gate_active`` is false and the gate is off
        for the run); ``None``: off.
    :param validation_fraction: tail of the *training* slice used for validation when ``eval_freq > 0``
        (the held-out test slice is never used to pick a model).
    :param vec: ``"batched"`` (:mod:`sb3_trading.vec`, all accounts in one NumPy step), ``"dummy"`` (SB3's
        ``DummyVecEnv``) or ``"auto"``: batched where the env has a batched kernel and no Gymnasium reward
        wrapper is requested (those wrap single envs), else dummy. The report records the choice.
    :param join: how several market files are joined on their dates (:data:`JOIN_CHOICES`).
    :param risk_free: **annual** risk-free rate as a fraction (``0.04`` = 4 %/year) of every Sharpe and Sortino
        ratio (training metrics, validation, backtest); per bar ``(1 + risk_free) ** (1 / P) - 1`` with ``P`` the
        data's ``periods_per_year``. The report states it and the calendar.
    :param overwrite: replace an existing run folder (otherwise reusing ``run_name`` is refused).
    :param resample: how the training market is resampled every episode (:data:`~sb3_trading.recipe.RESAMPLE_CHOICES`,
        :func:`~sb3_trading.recipe.training_market`): ``auto`` (default) draws fresh paths of the env's generator
        on its synthetic market and stationary-bootstrap paths of the training slice on market files; ``none``
        trains on the one history.
    :param n_paths: paths of the resampled training market (the training slice plus ``n_paths - 1``).
    :param checkpoint_freq: save a checkpoint every ``checkpoint_freq`` timesteps (atomically, SB3's
        ``CheckpointCallback`` naming ``model_<steps>_steps.zip``) into ``<run_dir>.checkpoints/`` while training,
        moved into ``<run_dir>/checkpoints/`` at the end; 0 (default): none.
    :param max_minutes: stop training cleanly after this many minutes of wall time, save, and still backtest (the
        report says so: ``"stopped"``); ``None``: no budget.
    :param resume: a run folder (or its ``.checkpoints`` folder after a crash) whose latest checkpoint, else its
        final weights, training continues from, up to ``timesteps`` in all (the timestep count carries on).
    :param market: Python API only: ``seed -> MarketData``, the synthetic market to train and test on instead of
        the env's own (used when ``data_path`` is ``None``; its fresh paths feed ``resample="synthetic"``), e.g. a
        null market with nothing to learn. ``run.json`` records its name, but ``sb3-trading backtest`` cannot
        rebuild it: pass ``--data`` to backtest such a run.
    """

    env_id: str = DEFAULT_ENV_ID
    algo: str = "ppo"
    timesteps: int = 300_000
    seed: int = 0
    device: str = "auto"
    data_path: str | list[str] | None = None
    output_dir: str = "runs"
    run_name: str | None = None
    test_fraction: float = DEFAULT_TEST_FRACTION
    n_envs: int = 8
    episode_length: int = DEFAULT_EPISODE_LENGTH
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    hyperparams: dict[str, Any] = field(default_factory=dict)
    progress_bar: bool = True
    reward: list[str] = field(default_factory=list)
    sizing: list[Any] = field(default_factory=list)
    eval_freq: int | None = None
    eval_metric: str = "sharpe"
    patience: int | None = None
    eval_confidence: float | None = DEFAULT_EVAL_CONFIDENCE
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION
    vec: str = "auto"
    join: str = "exact"
    risk_free: float = 0.0
    overwrite: bool = False
    resample: str = "auto"
    n_paths: int = DEFAULT_N_PATHS
    checkpoint_freq: int = 0
    max_minutes: float | None = None
    resume: str | None = None
    market: MarketGenerator | None = None

    def validate(self) -> TrainConfig:
        """Check every field once (before any work); return a normalised copy.

        :raises ValueError: naming the field and the fix.
        """
        env_id = check_trading_env(self.env_id)
        algo_name, algo_class = get_algo(self.algo)
        check_positive_int(self.timesteps, "timesteps")
        check_positive_int(self.n_envs, "n_envs")
        check_positive_int(self.episode_length, "episode_length")
        check_fraction(self.test_fraction, "test_fraction")
        check_fraction(self.validation_fraction, "validation_fraction")
        if self.eval_freq is not None:
            check_positive_int(self.eval_freq, "eval_freq", minimum=0)
        check_confidence(self.eval_confidence)
        resample = resample_kind(self.resample, self.data_path)
        check_positive_int(self.n_paths, "n_paths")
        check_positive_int(self.checkpoint_freq, "checkpoint_freq", minimum=0)
        if self.max_minutes is not None:
            check_real("max_minutes", self.max_minutes, 0.0, strict_minimum=True)
        if self.resume is not None and not isinstance(self.resume, (str, os.PathLike)):
            raise TypeError(f"resume must be a run folder path, got {type(self.resume).__name__}")
        check_device(self.device)
        check_output_dir(self.output_dir)
        for spec in self.reward:
            parse_reward_spec(spec)  # fail before any work on a bad --reward
        sizing = check_sizing_specs(self.sizing)  # fail before any work on a bad --sizing
        if self.join not in JOIN_CHOICES:
            raise ValueError(f"join must be one of {JOIN_CHOICES}, got {self.join!r}")
        choose_vec_env(env_id, self.vec, self.reward, sizing)
        if not isinstance(self.env_kwargs, dict) or not isinstance(self.hyperparams, dict):
            raise TypeError("env_kwargs and hyperparams must be dicts of keyword arguments")
        params = default_hyperparams(algo_name, self.hyperparams)
        check_hyperparams(algo_name, algo_class, params)
        rollout = self.n_envs * int(params.get("n_steps", 2048))  # SB3's PPO default n_steps
        data_source(self.data_path)
        if self.market is not None and not callable(self.market):
            raise TypeError(f"market must be a callable seed -> MarketData, got {type(self.market).__name__}")
        # replace, not asdict: asdict would turn a dataclass market generator (or any dataclass value) into a dict
        return replace(
            self,
            env_kwargs=copy.deepcopy(self.env_kwargs),
            hyperparams=copy.deepcopy(self.hyperparams),
            reward=list(self.reward),
            sizing=copy.deepcopy(sizing),
            env_id=env_id,
            algo=algo_name,
            risk_free=check_annual_rate(self.risk_free, "risk_free"),
            resample=resample,
            eval_freq=self.eval_freq if self.eval_freq is not None else auto_eval_freq(self.timesteps, rollout),
        )

    def default_run_name(self) -> str:
        """``<algo>_<Env>_seed<seed>_<time>``."""
        return f"{self.algo}_{self.env_id.split('/')[-1]}_seed{self.seed}_{time.strftime('%Y%m%d-%H%M%S')}"

    def to_dict(self) -> dict[str, Any]:
        """The options as a config file holds them (:data:`CONFIG_YML`): every field but ``market`` (Python only),
        with ``run_name``, ``overwrite`` and ``resume`` cleared so that a rerun makes a new run folder."""
        values = {f.name: copy.deepcopy(getattr(self, f.name)) for f in fields(self) if f.name not in _NOT_IN_FILES}
        values.update(run_name=None, overwrite=False, resume=None)
        return jsonable(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "the config") -> TrainConfig:
        """A config from ``{option: value}`` (the :class:`TrainConfig` field names, or the CLI's: ``-`` for ``_``,
        ``env`` for ``env_id``, ``data`` for ``data_path``).

        :raises ValueError: an unknown option (with the closest one), naming ``source``.
        """
        if not isinstance(values, dict):
            raise ValueError(f"{source} must hold a mapping of train options (timesteps: ..., env_id: ...), got {values!r}")
        known = [f.name for f in fields(cls) if f.name not in _NOT_IN_FILES]
        options = {str(key).replace("-", "_"): value for key, value in values.items()}
        aliases = {"env": "env_id", "data": "data_path"}  # the CLI's names of these options
        options = {aliases.get(key, key): value for key, value in options.items()}
        unknown = [key for key in options if key not in known]
        if unknown:
            raise ValueError(f"{source}: unknown train option {unknown[0]!r}{suggest(unknown[0], known)} Options: {known}")
        return cls(**options)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """Read a config file written by a run (``<run_dir>/config.yml``) or by hand: YAML (``.yml``/``.yaml``) or
        JSON (``.json``) with the :class:`TrainConfig` option names.

        :raises ValueError: an unreadable file, another format, or an unknown option, naming the file.
        """
        file = Path(path)
        if not file.is_file():
            raise ValueError(f"config file {str(file)!r} does not exist; pass a YAML or JSON file of train options")
        text = file.read_text(encoding="utf-8")
        try:
            if file.suffix.lower() in (".yml", ".yaml"):
                values = yaml.safe_load(text)
            elif file.suffix.lower() == ".json":
                values = json.loads(text)
            else:
                raise ValueError(f"config file {str(file)!r}: use a .yml, .yaml or .json file")
        except (yaml.YAMLError, json.JSONDecodeError) as exc:
            raise ValueError(f"config file {str(file)!r} is not valid {file.suffix[1:].upper()}: {exc}") from None
        return cls.from_dict(values or {}, f"config file {str(file)!r}")


def train(config: TrainConfig | None = None) -> dict[str, Any]:
    """Train, save ``<run_dir>/model.zip``, backtest on the held-out slice, write ``<run_dir>/report.json``.

    The recipe (:mod:`sb3_trading.recipe`): load the data, split it in time order (and a validation tail when
    ``eval_freq > 0``), fit the normaliser on the training slice, check the algorithm against the env, build the
    training VecEnv and the model from :data:`DEFAULT_HYPERPARAMS`, backtest on the held-out slice with
    :func:`~sb3_trading.recipe.make_backtest_env` (as ``sb3-trading backtest`` does) and its baselines.

    :param config: the run; ``None`` is the default main job.
    :return: the report (also written as JSON), including ``run_dir`` and ``model_path``.
    :raises FileExistsError: the run folder exists and ``config.overwrite`` is false.
    """
    config = (config or TrainConfig()).validate()
    env_id, algo_name = config.env_id, config.algo
    _, algo_class = get_algo(algo_name)
    run_dir = Path(config.output_dir) / (config.run_name or config.default_run_name())
    resume_from = None if config.resume is None else resume_weights(config.resume)
    # resuming into the run's own folder replaces it (atomically, as every run folder is written)
    overwrite = config.overwrite or (resume_from is not None and run_dir.resolve() == _run_folder(config.resume).resolve())
    run_dir = check_new_dir(run_dir, overwrite)
    checkpoint_dir = run_dir.parent / f"{run_dir.name}.checkpoints"
    vec_kind = choose_vec_env(env_id, config.vec, config.reward, config.sizing)
    env_kwargs = dict(config.env_kwargs)
    data = load_env_data(env_id, config.data_path, config.seed, env_kwargs, join=config.join, generator=config.market)
    train_data, test_data = split_train_test(data, config.test_fraction)
    train_all, validation_data = train_data, None
    if config.eval_freq > 0:
        train_data, validation_data = split_validation(train_all, config.validation_fraction)
    probe = probe_env(env_id, train_data, env_kwargs, config.sizing)
    check_algo_env(algo_name, probe, env_id)
    hyperparams = default_hyperparams(algo_name, config.hyperparams)
    market = training_market(
        env_id, train_data, config.resample, config.n_paths, config.seed, env_kwargs, generator=config.market
    )
    vec_env = make_training_vec_env(
        env_id,
        training_env_kwargs(env_kwargs, market, probe, config.episode_length),
        config.n_envs,
        config.seed,
        vec_kind,
        config.reward,
        sizing=config.sizing,
    )
    try:
        if resume_from is None:
            model = make_model(algo_name, algo_class, hyperparams, vec_env, config.seed, config.device)
        else:
            model = algo_class.load(resume_from, env=vec_env, device=config.device)
            if model.num_timesteps >= config.timesteps:
                raise ValueError(
                    f"{resume_from} already holds {model.num_timesteps} of the {config.timesteps} timesteps; pass a "
                    "larger --timesteps to continue training"
                )
    except Exception:
        vec_env.close()
        raise
    remaining = config.timesteps - model.num_timesteps

    if config.checkpoint_freq > 0:
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        previous = None if config.resume is None else _run_folder(config.resume) / CHECKPOINTS_DIR
        if previous is not None and previous.is_dir():  # a resumed run keeps the checkpoints it continues
            shutil.copytree(previous, checkpoint_dir, dirs_exist_ok=True)
        # what --resume needs when the run dies before its folder is committed
        write_config(config, checkpoint_dir / CONFIG_YML)

    with staged_dir(run_dir, overwrite) as stage:
        # progress.csv (train/, trading/, eval/) and TensorBoard event files beside it
        # TensorBoard events go to the run folder, or to <tensorboard_log>/<run name>/ when that hyperparameter is set
        formats = logger_formats()
        tensorboard_root = hyperparams.get("tensorboard_log")
        tensorboard_dir = run_dir if tensorboard_root is None else Path(tensorboard_root) / run_dir.name
        outputs = [make_output_format("csv", str(stage))]
        if "tensorboard" in formats:
            outputs.append(make_output_format("tensorboard", str(stage if tensorboard_root is None else tensorboard_dir)))
        model.set_logger(Logger(str(stage), outputs))
        # metrics are annualised with the data's calendar (read off the envs' MarketData), net of the risk-free rate
        callbacks: list[BaseCallback] = [TradingMetricsCallback(risk_free=config.risk_free)]
        eval_callback = None
        if validation_data is not None:
            # the validation rows with their look-back just before them, as the tuning objective validates
            context = with_lookback(train_all, train_data.n_steps, train_all.n_steps, probe.first_t)
            validation_env = make_backtest_env(
                env_id, context, probe.normalizer, env_kwargs, config.sizing, probe.feature_fits
            )
            eval_callback = make_eval_callback(
                validation_env,
                config.eval_freq,
                best_model_save_path=str(stage),
                patience=config.patience,
                metric=config.eval_metric,
                n_envs=config.n_envs,
                risk_free=config.risk_free,
                consecutive=CONSECUTIVE,
                min_confidence=config.eval_confidence,
            )
            callbacks.append(eval_callback)
        if config.checkpoint_freq > 0:
            every = max(config.checkpoint_freq // config.n_envs, 1)  # SB3 counts calls, one per n_envs timesteps
            callbacks.append(AtomicCheckpointCallback(every, str(checkpoint_dir), name_prefix="model"))
        clock = None if config.max_minutes is None else WallClockLimit(config.max_minutes)
        if clock is not None:
            callbacks.append(clock)
        logger.info("training %s on %s for %d steps -> %s", algo_name, env_id, remaining, run_dir)
        start = time.perf_counter()
        try:
            model.learn(
                total_timesteps=remaining,
                callback=callbacks,
                progress_bar=config.progress_bar,
                reset_num_timesteps=resume_from is None,
            )
        finally:
            vec_env.close()
        train_seconds = time.perf_counter() - start
        # validation picks the model: model.zip is the best on validation, last_model.zip the final weights
        selected = eval_callback is not None and (stage / "best_model.zip").exists()
        save_model_atomic(model, stage / (LAST_MODEL_ZIP if selected else MODEL_ZIP))
        chosen, model_kind = model, "last"
        if selected:
            gated = eval_callback.selected_initial
            model_kind = "initial (no checkpoint passed the validation gate)" if gated else "best on validation"
            (stage / "best_model.zip").replace(stage / MODEL_ZIP)
            chosen = algo_class.load(stage / MODEL_ZIP, device=config.device)

        test_env = make_backtest_env(env_id, test_data, probe.normalizer, env_kwargs, config.sizing, probe.feature_fits)
        try:
            agent = backtest(
                chosen, test_env, deterministic=True, name=algo_name, risk_free=config.risk_free, consecutive=CONSECUTIVE
            )
            last_agent = None
            if selected:
                last_agent = backtest(
                    model,
                    test_env,
                    deterministic=True,
                    name=f"{algo_name} (last)",
                    risk_free=config.risk_free,
                    consecutive=CONSECUTIVE,
                )
            baselines = held_out_baselines(test_env, agent, TRAIN_BASELINES, risk_free=config.risk_free)
            # the market's reference policies (signal follower) and the agent's skill ratio against it
            references, skill = skill_report(
                test_env, agent, risk_free=config.risk_free, seed=config.seed, consecutive=CONSECUTIVE
            )
            effective = effective_env_config(test_env)
        finally:
            test_env.close()
        # the same HTML/PNG report as sb3-trading backtest, in <run_dir>/backtest/
        html = write_report(
            {algo_name: agent, **baselines},
            stage / BACKTEST_DIR,
            title=f"Held-out backtest of {algo_name} on {env_id}",
            extra={"command": "train", "env_id": env_id, "algo": algo_name, "seed": config.seed},
            seed=config.seed,
            references=references,
            skill_ratio=skill,
        )
        calendar, risk_free_entry = calendar_summary({agent.name: agent})
        if data.timezone:
            calendar["timezone"] = data.timezone
        source = data_source(config.data_path)
        report: dict[str, Any] = {
            "sb3_trading_version": __version__,
            "stable_baselines3_version": stable_baselines3.__version__,
            "python": platform.python_version(),
            "config": {
                **{f.name: getattr(config, f.name) for f in fields(config)},
                "market": None if config.market is None else market_name(config.market),
            },
            "env_id": env_id,
            "algo": algo_name,
            "hyperparams": hyperparams,
            "env_config": effective,
            "device": str(model.device),
            "train_seconds": train_seconds,
            "train_fps": config.timesteps / train_seconds if train_seconds > 0 else None,
            "calendar": calendar,
            "risk_free": risk_free_entry,
            "data": {
                "source": describe_source(source, env_id, config.seed)
                if config.market is None or source is not None
                else f"{market_name(config.market)} (seed={config.seed})",
                "n_steps": data.n_steps,
                "assets": list(data.asset_names),
                "train_rows": train_all.n_steps,  # the validation tail included
                "fit_rows": train_data.n_steps,
                "test_rows": test_data.n_steps,
            },
            "run_dir": str(run_dir),
            "model_path": str(run_dir / MODEL_ZIP),
            "trained_timesteps": int(model.num_timesteps),
            "vec_env": vec_kind,
            "reward_wrappers": list(config.reward),
            "sizing_wrappers": list(config.sizing),
            "training_market": {"resample": config.resample, "paths": market.n_paths, "rows": market.n_steps},
            "model": model_kind,
            "validation": None
            if eval_callback is None
            else {
                "rows": validation_data.n_steps,
                "metric": config.eval_metric,
                "eval_freq": config.eval_freq,
                "confidence": config.eval_confidence,
                "gate_active": eval_callback.gate_active,
                "selected_initial": eval_callback.selected_initial,
                "best": eval_callback.best_metrics,
                "best_timestep": eval_callback.best_timestep,
                "last_model_path": str(run_dir / LAST_MODEL_ZIP) if selected else None,
                "stopped_early": model.num_timesteps < config.timesteps,
            },
            "agent": agent.to_dict(),
            "last_model_agent": None if last_agent is None else last_agent.to_dict(),
            "baselines": {name: result.to_dict() for name, result in baselines.items()},
            "references": {name: result.to_dict() for name, result in references.items()},
            "skill_ratio": skill,
            "html_report": str(run_dir / BACKTEST_DIR / Path(html["files"]["html"]).name),
            "stopped": None
            if clock is None or not clock.stopped
            else {
                "reason": f"max_minutes={config.max_minutes}: the wall-clock budget ran out",
                "timesteps": int(model.num_timesteps),
                "of": int(config.timesteps),
            },
            "resumed_from": None if resume_from is None else str(resume_from),
            "checkpoints": str(run_dir / CHECKPOINTS_DIR) if config.checkpoint_freq > 0 else None,
            "tensorboard": str(tensorboard_dir) if "tensorboard" in formats else None,
        }
        report = jsonable(report)
        model.logger.close()  # progress.csv complete before the folder is committed
        atomic_write_json(stage / NORMALIZER_JSON, None if probe.normalizer is None else probe.normalizer.to_dict())
        atomic_write_json(stage / FEATURE_FITS_JSON, probe.feature_fits)
        atomic_write_json(stage / RUN_JSON, jsonable(run_spec(config, source)))
        synthetic = report["data"]["source"] if source is None else None
        manifest = run_manifest(seeds={"seed": config.seed}, device=str(model.device), data_source=source, synthetic=synthetic)
        atomic_write_json(stage / MANIFEST_JSON, jsonable(manifest))
        write_config(config, stage / CONFIG_YML)
        if checkpoint_dir.is_dir():  # the run's checkpoints move into its folder with it
            shutil.move(str(checkpoint_dir), str(stage / CHECKPOINTS_DIR))
        atomic_write_json(stage / REPORT_JSON, report)
    return report


def write_config(config: TrainConfig, path: str | os.PathLike[str]) -> Path:
    """Write ``config`` as the YAML file :meth:`TrainConfig.from_file` reads back (:meth:`TrainConfig.to_dict`), atomically."""
    text = yaml.safe_dump(config.to_dict())
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def _run_folder(path: str | os.PathLike[str]) -> Path:
    """The run folder a ``resume`` path names (``<run>`` for ``<run>`` or ``<run>.checkpoints``)."""
    folder = Path(path)
    return folder.with_name(folder.name.removesuffix(".checkpoints")) if folder.name.endswith(".checkpoints") else folder


def resume_weights(path: str | os.PathLike[str]) -> Path:
    """The weights ``--resume <path>`` continues from: the latest checkpoint of ``<run>/checkpoints/`` or of
    ``<run>.checkpoints/`` (a run that died before its folder was written), else ``<run>/last_model.zip`` (the final
    weights when validation chose an earlier model), else ``<run>/model.zip``.

    :raises ValueError: none of them exists.
    """
    run = _run_folder(path)
    for folder in (run / CHECKPOINTS_DIR, run.with_name(f"{run.name}.checkpoints")):
        found = latest_checkpoint(folder) if folder.is_dir() else None
        if found is not None:
            return found
    for name in (LAST_MODEL_ZIP, MODEL_ZIP):
        if (run / name).is_file():
            return run / name
    raise ValueError(
        f"nothing to resume in {str(run)!r}: no checkpoints ({CHECKPOINTS_DIR}/ or {run.name}.checkpoints/), "
        f"{LAST_MODEL_ZIP} or {MODEL_ZIP}; pass the folder of a sb3-trading train run"
    )


def resume_config(path: str | os.PathLike[str]) -> TrainConfig:
    """The configuration of the run ``--resume <path>`` continues: its ``config.yml`` (in the run folder, or in its
    ``.checkpoints`` folder), writing into the same run folder.

    :raises ValueError: no ``config.yml`` there.
    """
    run = _run_folder(path)
    for file in (run / CONFIG_YML, run.with_name(f"{run.name}.checkpoints") / CONFIG_YML):
        if file.is_file():
            config = TrainConfig.from_file(file)
            return replace(config, output_dir=str(run.parent), run_name=run.name, resume=str(path))
    raise ValueError(f"nothing to resume in {str(run)!r}: no {CONFIG_YML}; pass the folder of a sb3-trading train run")


def market_name(market: MarketGenerator) -> str:
    """A readable name of a market generator (its qualified name, or its ``repr``)."""
    return getattr(market, "__qualname__", None) or repr(market)


def run_spec(config: TrainConfig, source: str | list[str] | None) -> dict[str, Any]:
    """The ``run.json`` of a training run: what rebuilds its held-out backtest (:func:`~sb3_trading.recipe.read_run_spec`)."""
    return {
        "command": "train",
        "sb3_trading_version": __version__,
        "env_id": config.env_id,
        "env_kwargs": dict(config.env_kwargs),
        "algo": config.algo,
        # absolute, so the run folder is reusable from any working directory
        "data_path": None if source is None else _absolute(source),
        "join": config.join,
        "market": None if config.market is None else market_name(config.market),
        "seed": config.seed,
        "test_fraction": config.test_fraction,
        "normalizer": NORMALIZER_JSON,
        # the train-slice fits of indicators with fitted state (regime_prob's HMMs) the backtest env reuses
        "feature_fits": FEATURE_FITS_JSON,
        # position-sizing wrappers (wrap_sizing specs) the backtest env must be wrapped in
        "sizing": list(config.sizing),
    }


def _absolute(source: str | list[str]) -> str | list[str]:
    return os.path.abspath(source) if isinstance(source, str) else [os.path.abspath(p) for p in source]


__all__ = [
    "DEFAULT_ENV_ID",
    "DEFAULT_EVAL_CONFIDENCE",
    "DEFAULT_HYPERPARAMS",
    "EVALUATIONS_PER_RUN",
    "JOIN_CHOICES",
    "LAST_MODEL_ZIP",
    "RESAMPLE_CHOICES",
    "SYNTHETIC",
    "VEC_KINDS",
    "BACKTEST_DIR",
    "CHECKPOINTS_DIR",
    "CONFIG_YML",
    "TrainConfig",
    "auto_eval_freq",
    "logger_formats",
    "resume_config",
    "resume_weights",
    "write_config",
    "choose_vec_env",
    "data_source",
    "load_env_data",
    "run_spec",
    "split_train_test",
    "train",
]
