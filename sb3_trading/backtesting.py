"""Backtest a saved model on held-out data and write the report (the library of ``sb3-trading backtest``).

It composes the run recipe (:mod:`sb3_trading.recipe`) with the measuring of :mod:`sb3_trading.evaluation`,
so it sits above both, beside :mod:`sb3_trading.training`.

The env, its arguments, the data source, the split and the normaliser
----------------------------------------------------------------------
A model saved by ``sb3-trading train`` sits in a run folder with ``run.json`` (env ID, env arguments,
data source, ``--join``, seed, test fraction) and ``normalizer.json`` (the feature normaliser fitted on
the training slice). :func:`run_backtest` reads them, so ``sb3-trading backtest runs/<run>/model.zip``
alone reproduces the run's held-out backtest; every field given explicitly overrides the run's.

A model's observations are normalised with statistics of its *training* data. Fitting the
normaliser on the backtest data itself would leak the test period's means and volatilities into
every observation, so the backtest never does that. It takes the normaliser from, in order:

1. ``normalizer_path`` (``--normalizer FILE.json``, a normaliser's ``to_dict()``, as walk-forward folds
   save it); the whole data is backtested;
2. ``train_data_path`` (``--train-data FILE``): fitted on that whole market; the whole data is backtested;
3. the run folder's ``normalizer.json``, with the run's chronological split: the trailing
   ``test_fraction`` is backtested;
4. otherwise the chronological split of ``sb3-trading train``: fitted on the leading
   ``1 - test_fraction`` of the data, and the trailing ``test_fraction`` is backtested.

Indicators with fitted state (``regime_prob``'s Gaussian HMMs) follow the normaliser: their training fit comes
from ``feature_fits.json`` beside the normaliser file (1; walk-forward folds save it), from the training data (2),
from the run folder's ``feature_fits.json`` (3; refitted on the training split, deterministically, for a run saved
without it) or from the training split (4). The report's ``"feature_fits"`` says which.

Data, calendar, risk-free rate
------------------------------
Metrics are annualised with the data's calendar (``MarketData.periods_per_year``) and Sharpe/Sortino
are on returns in excess of the annual ``risk_free`` rate, per bar ``(1 + rate) ** (1 / periods_per_year) - 1``;
every report states both, and the effective env configuration (costs, cash, window, calendar) it ran.
"""

from __future__ import annotations

import json
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import gymnasium as gym

from sb3_trading.common.validation import check_int
from sb3_trading.data.calendar import check_annual_rate
from sb3_trading.evaluation.backtest import backtest
from sb3_trading.evaluation.baselines import BASELINES
from sb3_trading.evaluation.reference import skill_report
from sb3_trading.evaluation.report import write_report
from sb3_trading.features import CausalNormalizer, FeatureNormalizer, normalizer_from_dict
from sb3_trading.recipe import (
    CONSECUTIVE,
    DEFAULT_ENV_ID,
    DEFAULT_TEST_FRACTION,
    FEATURE_FITS_JSON,
    JOIN_CHOICES,
    NORMALIZER_JSON,
    check_device,
    check_fraction,
    check_positive_int,
    check_trading_env,
    data_source,
    describe_source,
    effective_env_config,
    held_out_baselines,
    load_env_data,
    make_backtest_env,
    probe_env,
    read_feature_fits,
    read_run_spec,
    split_train_test,
)

logger = logging.getLogger(__name__)


def infer_algo(model_path: str | Path) -> str:
    """The ``sb3_trading.algos`` name of the algorithm that saved ``model_path``, from its policy class.

    Reads the ``data`` entry of the SB3 ``.zip`` and checks the saved policy class, most specific first:
    quantile-critic + maskable -> ``qppo_mask``, quantile critic -> ``qppo``, maskable -> ``ppo_mask``,
    recurrent -> ``ppo_lstm``, any other actor-critic policy -> ``ppo``.

    :raises ValueError: the file is not an SB3 model or its policy matches none of these (pass ``--algo``).
    """
    from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
    from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
    from stable_baselines3.common.policies import ActorCriticPolicy
    from stable_baselines3.common.save_util import json_to_data

    from sb3_trading.algos.quantile_ppo.policies import QuantileCriticMixin

    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"model file {str(path)!r} does not exist")
    try:
        with zipfile.ZipFile(path) as archive:
            raw = json.loads(archive.read("data"))
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"{str(path)!r} is not a Stable-Baselines3 model .zip ({exc})") from exc
    if "policy_class" not in raw:
        raise ValueError(f"{str(path)!r} has no saved policy class; pass --algo")
    policy_class = json_to_data(json.dumps({"policy_class": raw["policy_class"]}))["policy_class"]
    if not isinstance(policy_class, type):
        raise ValueError(f"could not read the policy class of {str(path)!r}; pass --algo")
    rules = (
        ("qppo_mask", (QuantileCriticMixin, MaskableActorCriticPolicy)),
        ("qppo", (QuantileCriticMixin,)),
        ("ppo_mask", (MaskableActorCriticPolicy,)),
        ("ppo_lstm", (RecurrentActorCriticPolicy,)),
        ("ppo", (ActorCriticPolicy,)),
    )
    for name, bases in rules:
        if all(issubclass(policy_class, base) for base in bases):
            return name
    raise ValueError(f"cannot tell the algorithm of {str(path)!r} from its policy {policy_class.__name__}; pass --algo")


def load_model(model_path: str | Path, algo: str | None = None, device: str = "cpu") -> tuple[str, Any]:
    """``(algo_name, model)``: ``model_path`` loaded with the class of ``algo`` (default :func:`infer_algo`)."""
    from sb3_trading.algos import get_algo

    algo_name, algo_class = get_algo(algo if algo is not None else infer_algo(model_path))
    return algo_name, algo_class.load(str(model_path), device=device)


def _check_spaces(model: Any, env: gym.Env, env_id: str) -> None:
    if model.observation_space != env.observation_space or model.action_space != env.action_space:
        raise ValueError(
            f"the model does not fit {env_id} with these arguments: it was trained with observation space "
            f"{model.observation_space} and action space {model.action_space}, the env has {env.observation_space} "
            f"and {env.action_space}; pass the training run's --env and --env-kwargs (e.g. window=...), or keep the "
            "model in its run folder (run.json) so they are read from there"
        )


def check_spaces(model: Any, env: gym.Env, env_id: str) -> None:
    """``ValueError`` when ``model`` was trained on other observation/action spaces than ``env`` has."""
    _check_spaces(model, env, env_id)


@dataclass
class BacktestConfig:
    """Everything ``sb3-trading backtest`` needs. Fields left ``None`` come from the model's run folder
    (``run.json``), else from the defaults shown.

    :param model_path: the SB3 ``.zip``.
    :param data_path: the market: a CSV/parquet file, a folder or a glob, or a list of them (joined on their
        dates); ``"synthetic"``: the env's seeded synthetic market (default when the run folder names none).
    :param env_id: registered env ID (default: the run's, else ``sb3_trading/MultiAsset-v0``).
    :param algo: algorithm name; default: inferred from the zip (:func:`infer_algo`).
    :param output_dir: report folder (default ``<model folder>/backtest``).
    :param env_kwargs: env arguments (default: the run's).
    :param test_fraction: with a split: the trailing fraction backtested (default: the run's, else 0.2).
    :param train_data_path: fit the normaliser on this market (file(s), folder, glob) and backtest all of the data.
    :param normalizer_path: JSON of a normaliser's ``to_dict()``; then all of the data is backtested.
    :param seed: seed of the synthetic market and of the random baseline (default: the run's, else 0).
    :param device: torch device for the model.
    :param baselines: any of ``cash``, ``buy_and_hold``, ``equal_weight``, ``random``.
    :param n_boot: bootstrap resamples for the CIs (``0``: none).
    :param alpha: ``1 -`` confidence level.
    :param plots: write the PNG plots (needs matplotlib).
    :param title: report title.
    :param risk_free: **annual** risk-free rate (fraction, ``0.04`` = 4 %/year) of the Sharpe and Sortino ratios.
    :param join: how several files join on their dates (``exact`` or ``inner``; default: the run's).
    :param n_trials: how many configurations were tried before this model was chosen (e.g. a tuning study's
        completed trials): the report then gives the agent's deflated Sharpe ratio beside its probabilistic one.
    """

    model_path: str | Path
    data_path: str | list[str] | None = None
    env_id: str | None = None
    algo: str | None = None
    output_dir: str | Path | None = None
    env_kwargs: dict[str, Any] | None = None
    test_fraction: float | None = None
    train_data_path: str | list[str] | None = None
    normalizer_path: str | Path | None = None
    seed: int | None = None
    device: str = "cpu"
    baselines: Sequence[str] = field(default_factory=lambda: (*BASELINES, "random"))
    n_boot: int = 1000
    alpha: float = 0.1
    plots: bool = True
    title: str | None = None
    risk_free: float = 0.0
    join: str | None = None
    n_trials: int | None = None

    def resolved(self) -> tuple[BacktestConfig, dict[str, Any] | None]:
        """``(config, run_spec)``: every ``None`` field filled from the run folder or the defaults, validated once."""
        spec = read_run_spec(self.model_path) if Path(self.model_path).is_file() else None
        run = spec or {}

        def pick(value: Any, key: str, default: Any) -> Any:
            return value if value is not None else run.get(key, default)

        config = replace(
            self,
            env_id=check_trading_env(pick(self.env_id, "env_id", DEFAULT_ENV_ID)),
            env_kwargs=dict(pick(self.env_kwargs, "env_kwargs", {}) or {}),
            data_path=pick(self.data_path, "data_path", None),
            join=pick(self.join, "join", "exact"),
            seed=pick(self.seed, "seed", 0),
            test_fraction=pick(self.test_fraction, "test_fraction", DEFAULT_TEST_FRACTION),
            risk_free=check_annual_rate(self.risk_free),
            n_trials=None if self.n_trials is None else check_int("n_trials (--n-trials)", self.n_trials, 1),
        )
        config.env_kwargs.pop("normalizer", None)
        if config.join not in JOIN_CHOICES:
            raise ValueError(f"join must be one of {JOIN_CHOICES}, got {config.join!r}")
        check_fraction(config.test_fraction, "test_fraction")
        check_positive_int(config.n_boot, "n_boot", minimum=0)
        check_device(config.device)
        data_source(config.data_path)
        if config.normalizer_path is not None and config.train_data_path is not None:
            raise ValueError("give either a normaliser file or training data to fit it on, not both")
        return config, spec


def _read_normalizer(path: str | Path) -> FeatureNormalizer | CausalNormalizer | None:
    try:
        return normalizer_from_dict(json.loads(Path(path).read_text()))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{str(path)!r} is not a normaliser's to_dict() JSON ({exc})") from exc


def run_backtest(config: BacktestConfig) -> dict[str, Any]:
    """Backtest a saved model on held-out data and write the report (``sb3-trading backtest``).

    The report also holds the env's reference policies (``"references"``) and the agent's skill ratio against the
    signal follower (``"skill_ratio"``, ``None`` on data without a reference), see
    :func:`~sb3_trading.evaluation.reference.skill_report`.

    :return: the report (``report.json``'s content plus ``files``).
    """
    config, spec = config.resolved()
    env_id, env_kwargs, seed = config.env_id, config.env_kwargs, config.seed
    algo_name, model = load_model(config.model_path, config.algo, config.device)
    source = data_source(config.data_path)
    data = load_env_data(env_id, source, seed, env_kwargs, join=config.join)
    run_dir = None if spec is None else Path(config.model_path).resolve().parent
    run_normalizer = None if run_dir is None else run_dir / spec.get("normalizer", NORMALIZER_JSON)
    run_fits = None if run_dir is None else run_dir / spec.get("feature_fits", FEATURE_FITS_JSON)
    sizing = (spec or {}).get("sizing") or ()
    split = False
    fits = None
    if config.normalizer_path is not None:
        normalizer = _read_normalizer(config.normalizer_path)
        test_data, normalizer_source = data, f"file {config.normalizer_path}"
        fits_file = Path(config.normalizer_path).parent / FEATURE_FITS_JSON  # a walk-forward fold's, beside it
        fits, fits_source = read_feature_fits(fits_file), f"file {fits_file}"
    elif config.train_data_path is not None:
        train_data = load_env_data(env_id, data_source(config.train_data_path), seed, env_kwargs, join=config.join)
        probe = probe_env(env_id, train_data, env_kwargs, sizing)
        normalizer, fits, test_data = probe.normalizer, probe.feature_fits, data
        normalizer_source = fits_source = f"fitted on {config.train_data_path}"
    else:
        split = True
        train_data, test_data = split_train_test(data, config.test_fraction)
        fitted = f"fitted on the leading {1 - config.test_fraction:.0%} ({train_data.n_steps} rows)"
        if run_normalizer is not None and run_normalizer.is_file():
            normalizer = _read_normalizer(run_normalizer)
            normalizer_source = f"{fitted} by the training run: {run_normalizer}"
            fits, fits_source = read_feature_fits(run_fits), f"{fitted} by the training run: {run_fits}"
        if fits is None:
            # no saved fits (a run from before feature_fits.json): the same deterministic fit on the training split
            probe = probe_env(env_id, train_data, env_kwargs, sizing)
            fits, fits_source = probe.feature_fits, fitted
            if run_normalizer is None or not run_normalizer.is_file():
                normalizer, normalizer_source = probe.normalizer, fitted
    if fits is None:
        fits_source = "none: indicators with fitted state (regime_prob) are fitted on the backtest data's look-back rows"

    env = make_backtest_env(env_id, test_data, normalizer, env_kwargs, sizing, fits)
    try:
        _check_spaces(model, env, env_id)
        agent = backtest(model, env, deterministic=True, name=algo_name, risk_free=config.risk_free, consecutive=CONSECUTIVE)
        named = tuple(name for name in config.baselines if name != "random")
        random_seed = seed if "random" in config.baselines else None
        baselines = held_out_baselines(env, agent, named, random_seed=random_seed, risk_free=config.risk_free)
        references, skill = skill_report(
            env,
            agent,
            risk_free=config.risk_free,
            n_boot=config.n_boot,
            seed=seed,
            alpha=config.alpha,
            consecutive=CONSECUTIVE,
        )
        effective = effective_env_config(env)
    finally:
        env.close()

    out = Path(config.output_dir) if config.output_dir is not None else Path(config.model_path).resolve().parent / "backtest"
    extra = {
        "command": "backtest",
        "model_path": str(config.model_path),
        "algo": algo_name,
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "env_config": effective,
        "run_spec": spec,
        "data": {
            "source": describe_source(source, env_id, seed),
            "n_steps": data.n_steps,
            "assets": list(data.asset_names),
            "backtest_rows": test_data.n_steps,
        },
        "periods_per_year": float(data.periods_per_year),
        "calendar": data.calendar,
        "timezone": data.timezone,
        "risk_free": float(config.risk_free),
        "normalizer": normalizer_source,
        "feature_fits": fits_source,
        "test_fraction": config.test_fraction if split else None,
        "seed": seed,
    }
    title = config.title or f"Backtest of {algo_name} on {env_id}"
    results = {algo_name: agent, **baselines}
    return write_report(
        results,
        out,
        title=title,
        extra=extra,
        n_boot=config.n_boot,
        alpha=config.alpha,
        seed=seed,
        plots=config.plots,
        references=references,
        skill_ratio=skill,
        n_trials=config.n_trials,
    )


def run_backtest_command(model_path: str | Path, **kwargs: Any) -> dict[str, Any]:
    """:func:`run_backtest` of ``BacktestConfig(model_path, **kwargs)`` (the keyword form)."""
    return run_backtest(BacktestConfig(model_path, **kwargs))


__all__ = ["BacktestConfig", "check_spaces", "infer_algo", "load_model", "run_backtest", "run_backtest_command"]
