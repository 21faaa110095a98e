"""Optuna studies over sb3_trading's objective: storage, resumability, distributed workers, zoo export.

Storage
-------
By default a study lives in an embedded SQLite file, ``sqlite:///<output_dir>/<study_name>.db``
(``study_name`` defaults to ``<algo>_<Env>``, e.g. ``ppo_MultiAsset-v0``): nothing needs a server.
Any SQLAlchemy URL works as well; with ``postgresql://user:password@host:port/db`` (``pip install
"sb3-trading[postgres]"``) any number of worker processes on any number of machines run the *same*
study name against the same database, which is Optuna's own distributed mode. Optuna's RDB storage
writes every trial change in a database transaction, so a killed worker never corrupts the study.

Nothing is created before every setting is checked (:func:`check_storage_url`, the ``choices``, the
budget): an in-memory SQLite database (``sqlite://``; nothing could resume it) is refused, and so are a
file that is not a SQLite database (corrupted, or random bytes), a SQLite database of another
application (Optuna would add its tables to it), a URL SQLAlchemy cannot use and a server that does not
answer, each with a ``ValueError`` naming the storage and the fix instead of a SQLAlchemy traceback.

Resuming
--------
``n_trials`` is the study's **total** of finished (``COMPLETE`` or ``PRUNED``) trials over all runs and
workers (``optuna.study.MaxTrialsCallback``). Rerunning the same command after a crash or a kill loads
the study (``load_if_exists=True``), keeps every finished trial as it was, and runs only the missing
ones; a study that already holds ``n_trials`` finished trials runs nothing. Workers that run
concurrently stop after the trial that reaches the total, so the study may end with up to
``workers - 1`` trials more than ``n_trials`` (each worker finishes the trial it is running).
The study records the settings that make values comparable (env, algorithm, budget, data
fingerprint...) and a rerun with different settings is refused.

Heartbeat: what happens to a killed worker's trial
--------------------------------------------------
While a trial runs, its worker writes a heartbeat to the storage every ``heartbeat_interval``
seconds (default 60). A trial still ``RUNNING`` whose last heartbeat is more than ``grace_period``
seconds old (default ``2 * heartbeat_interval``) is marked ``FAIL`` by the next worker that starts a
trial (Optuna checks before every trial), and is re-queued once with the same parameters as a new
trial (``RetryHeartbeatStaleTrialCallback(max_retry=1)``; the copy's ``system_attrs["failed_trial"]``
names the original). So with the defaults, a killed worker's trial turns ``FAIL`` when some worker
starts a trial 60 to 120 s after the kill (``grace_period - heartbeat_interval`` to ``grace_period``
after the kill, as the last heartbeat was up to one interval earlier), or at the first trial start
after that; until then it shows as ``RUNNING``. ``FAIL`` trials do not count towards ``n_trials``.

Sampler and pruner
------------------
TPE (``TPESampler``, ``constant_liar=True`` so concurrent workers avoid each other's running
trials) seeded per trial with ``seed + trial.number`` (:class:`TrialSeededTPESampler`): a fresh
single-worker study is reproducible, a resumed one does not replay its first trials' random draws,
and concurrent workers (whose trial numbers differ) never draw the same random startup points.
``MedianPruner(n_startup_trials=5, n_warmup_steps=timesteps // 3)`` on the reported validation
scores (steps are training timesteps).

Selection bias: the deflated Sharpe ratio of the best trial
-----------------------------------------------------------
The best of ``N`` trials by validation score is the textbook setting of backtest overfitting: even with
no skill, the maximum of ``N`` noisy Sharpe ratios grows with ``N``. :func:`best_trial_deflated_sharpe`
(part of :func:`study_summary`) reports, for the best trial, Bailey & López de Prado's (2014) deflated
Sharpe ratio (:func:`~sb3_trading.evaluation.overfitting.deflated_sharpe_ratio`)::

    SR0 = sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e)))
    DSR = PSR(SR0) = Phi( (SR - SR0) * sqrt(n - 1) / sqrt(1 - g3 * SR + (g4 - 1) / 4 * SR**2) )

with ``SR``, ``n``, ``g3``, ``g4`` the per-period Sharpe ratio, bars, skewness and raw kurtosis of the
best trial's validation excess returns (recorded by the objective), ``N`` the study's number of
``COMPLETE`` trials and ``V`` the sample variance (``ddof=1``) of those trials' per-period Sharpe ratios.
It is the probability that the best trial's true Sharpe ratio exceeds the one the best of ``N``
skill-less trials is expected to reach. Every Sharpe ratio in these formulas is **per period** (per
validation bar); the summary also gives ``SR`` and ``SR0`` annualised (``* sqrt(periods_per_year)``).
Conventions: one completed trial selects nothing (``SR0 = 0``): the DSR is then the PSR against 0.
Equal Sharpe ratios across trials (``V = 0``) also give ``SR0 = 0`` and ``DSR = PSR``. Pruned trials
are not counted in ``N`` (they never finished), and TPE's trials are not independent, so ``N`` is the
number of trials tried, not the effective number of independent ones of the paper. The statistics are
those of each trial's *final* model, also with ``score="best"`` (whose trial value, the best checkpoint, is
itself a maximum over evaluations the DSR does not count). Where a statistic is undefined the summary holds
``None`` and a ``reason`` (strict JSON: never NaN).
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import logging
import math
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import optuna
import sqlalchemy.exc
import yaml
from optuna.samplers import BaseSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState

from sb3_trading.algos import get_algo
from sb3_trading.common.hyperparams import format_zoo_value, zoo_dict_keywords
from sb3_trading.common.io import atomic_write, jsonable
from sb3_trading.common.validation import is_int
from sb3_trading.data import MarketData
from sb3_trading.envs.registration import check_env_id
from sb3_trading.evaluation.overfitting import deflated_sharpe_ratio, expected_max_sharpe, probabilistic_sharpe_ratio
from sb3_trading.recipe import DEFAULT_N_PATHS, resample_kind
from sb3_trading.training import DEFAULT_HYPERPARAMS, load_env_data
from sb3_trading.tuning.objective import PARAMS_ATTR, SHARPE_MOMENTS_ATTR, TradingObjective, default_worker_id
from sb3_trading.tuning.spaces import algo_init_parameters, check_choices, params_to_hyperparams
from sb3_trading.zoo_configs import CONFIG_DIR, config_path

logger = logging.getLogger(__name__)

DEFAULT_OUTPUT_DIR = "runs/tune"
DEFAULT_TIMESTEPS = 20_000
DEFAULT_EVAL_FREQ = 5_000
DEFAULT_N_ENVS = 4
DEFAULT_HEARTBEAT_INTERVAL = 60
#: connection attempts of :func:`make_storage` (workers racing to create the schema of an empty database)
STORAGE_ATTEMPTS = 4
#: ``RDBStorage``'s argument for the callback of trials whose heartbeat went stale (renamed in Optuna 4.9)
STALE_TRIAL_CALLBACK_ARG = (
    "heartbeat_stale_trial_callback"
    if "heartbeat_stale_trial_callback" in inspect.signature(optuna.storages.RDBStorage).parameters
    else "failed_trial_callback"  # Optuna < 4.9
)
#: the study user attribute holding the settings a resumed run must match
CONFIG_ATTR = "sb3_trading_config"
#: trial states that count towards ``n_trials``
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED)
#: keys of an rl-zoo3 hyperparameter entry that are not algorithm arguments (rl_zoo3/exp_manager.py)
ZOO_KEYS = frozenset(
    {
        "n_timesteps",
        "n_envs",
        "policy",
        "policy_kwargs",
        "normalize",
        "normalize_kwargs",
        "env_kwargs",
        "env_wrapper",
        "vec_env_wrapper",
        "callback",
        "frame_stack",
        "monitor_kwargs",
        "noise_type",
        "noise_std",
    }
)
ZOO_CONFIG_DIR = CONFIG_DIR


# ----------------------------------------------------------------------------- sampler, pruner, storage
class TrialSeededTPESampler(BaseSampler):
    """``TPESampler(seed=seed + trial.number, **tpe_kwargs)``, built afresh for each trial.

    TPE keeps no state between trials except its random generator (it reads the history from the
    storage), so re-seeding per trial changes nothing but the randomness: with a fixed ``seed`` a
    fresh study samples the same sequence every time, a resumed study continues with new draws
    instead of repeating the first trials', and two workers never share a trial number, hence
    never share random draws.

    :param seed: base seed (``None``: unseeded TPE).
    :param tpe_kwargs: other ``TPESampler`` arguments (``n_startup_trials``, ``constant_liar``...).
    """

    def __init__(self, seed: int | None = None, **tpe_kwargs: Any) -> None:
        self.seed = seed
        self.tpe_kwargs = tpe_kwargs
        self._sampler = self._make(seed)

    def _make(self, seed: int | None) -> TPESampler:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return TPESampler(seed=seed, **self.tpe_kwargs)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if self.seed is not None:
            self._sampler = self._make((self.seed + trial.number) % 2**32)
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any]:
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]) -> dict[str, Any]:
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str, param_distribution: Any) -> Any:
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study: optuna.Study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()


def default_study_name(algo: str, env_id: str) -> str:
    """``<algo>_<Env>``, e.g. ``ppo_MultiAsset-v0``."""
    return f"{get_algo(algo)[0]}_{check_env_id(env_id).split('/')[-1]}"


def default_storage_url(output_dir: str | Path, study_name: str) -> str:
    """``sqlite:///<output_dir>/<study_name>.db`` (absolute path; the folder is created)."""
    folder = Path(output_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", study_name)
    return f"sqlite:///{folder / safe}.db"


def redact_url(url: str) -> str:
    """The storage URL with its password hidden (for logs and summaries)."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
        return url if parsed.password is None else parsed.render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a display helper must not fail
        return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def resolve_storage_url(url: str) -> str:
    """Pick an installed PostgreSQL driver for a driverless ``postgresql://`` (or ``postgres://``) URL.

    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3 and 2.0 to psycopg2; this keeps whichever
    of the two is installed (psycopg 3 first), so ``pip install "sb3-trading[postgres]"`` (psycopg2-binary)
    works with either SQLAlchemy. URLs naming a driver (``postgresql+psycopg2://``) and other databases are
    returned unchanged.

    :raises ImportError: no PostgreSQL driver is installed.
    """
    import importlib.util

    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises ArgumentError with the reason
        raise ValueError(f"storage {redact_url(url)!r} is not a SQLAlchemy URL: {exc}") from exc
    if parsed.drivername not in ("postgresql", "postgres"):
        return url
    for module, driver in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return parsed.set(drivername=driver).render_as_string(hide_password=False)
    raise ImportError(f'storage {redact_url(url)!r} needs a PostgreSQL driver: pip install "sb3-trading[postgres]"')


#: tables of Optuna's RDB schema; a SQLite file holding tables but none of these belongs to something else
OPTUNA_TABLES = frozenset({"studies", "study_directions", "trials", "version_info", "alembic_version"})
#: how to name a storage in an error message's fix
STORAGE_HINT = "use a file, sqlite:///path/to/study.db, or a server, postgresql://user:password@host:port/db"


def _one_line(text: object) -> str:
    """``text`` with its whitespace (newlines of a driver's message) collapsed: error messages are one line."""
    return " ".join(str(text).split())


def _sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///<path>`` URL; ``None`` for other databases and for in-memory SQLite."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def is_in_memory_sqlite(url: str) -> bool:
    """Whether ``url`` is an in-memory SQLite database (``sqlite://``, ``sqlite:///:memory:``, ``mode=memory``)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    uri_memory = database.startswith("file:") and (":memory:" in database or "mode=memory" in database)
    return database in ("", ":memory:") or uri_memory or parsed.query.get("mode") == "memory"


def check_storage_url(url: str) -> str:
    """Check a study storage URL before anything is created in it; return it.

    Refuses what would fail later with a raw SQLAlchemy error, or silently lose or mix up a study:
    a string that is not a SQLAlchemy URL, a database SQLAlchemy has no dialect for (``foo://bar``),
    an in-memory SQLite database (nothing could resume the study, and other workers cannot join it),
    a SQLite file in a folder that does not exist, a file that is not a SQLite database (corrupted,
    or another kind of file), and a SQLite database that holds another application's tables (Optuna
    would add its own to it). Server databases are checked when :func:`make_storage` connects.

    :param url: SQLAlchemy URL.
    :return: ``url``.
    :raises ValueError: naming the storage and the fix.
    """
    import sqlite3

    from sqlalchemy.engine import make_url

    if not isinstance(url, str) or not url.strip():
        raise ValueError(f"storage must be a SQLAlchemy URL, got {url!r}: {STORAGE_HINT}")
    shown = redact_url(url)
    try:
        parsed = make_url(url)
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises ArgumentError with the reason
        raise ValueError(f"storage {shown!r} is not a SQLAlchemy URL ({_one_line(exc)}): {STORAGE_HINT}") from exc
    try:
        parsed.get_dialect()
    except ImportError:
        pass  # a known dialect whose driver is missing: make_storage raises ImportError with the install hint
    except sqlalchemy.exc.ArgumentError as exc:  # NoSuchModuleError: no such dialect
        raise ValueError(f"storage {shown!r}: SQLAlchemy knows no database {parsed.drivername!r}; {STORAGE_HINT}") from exc
    if is_in_memory_sqlite(url):
        raise ValueError(
            f"storage {shown!r} is an in-memory SQLite database: the study would vanish with this process, so "
            "nothing could resume it and no other worker could join it. Use a file URL, sqlite:///path/to/study.db "
            "(or leave --storage out for sqlite:///<output-dir>/<study-name>.db)"
        )
    path = _sqlite_file(url)
    if path is None:
        return url
    if path.is_dir():
        raise ValueError(f"storage {shown!r} names a folder, not a SQLite file: use sqlite:///{path / 'study.db'}")
    if not path.exists():
        if not path.parent.is_dir():
            raise ValueError(f"storage {shown!r}: folder {str(path.parent)!r} does not exist; create it or choose another")
        return url  # a new study file
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=60)
        try:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise ValueError(
            f"storage {shown!r}: {str(path)!r} is not a usable SQLite database ({_one_line(exc)}); the file is corrupted "
            "or of another kind. Move it away (a study cannot be recovered from it) or point --storage at another file"
        ) from exc
    if tables and not tables & OPTUNA_TABLES:
        raise ValueError(
            f"storage {shown!r}: {str(path)!r} is a SQLite database of something else (tables {sorted(tables)[:5]}), "
            "not an Optuna study file; point --storage at another file so Optuna does not write into it"
        )
    return url


def _storage_error(url: str, exc: BaseException) -> ValueError:
    """The ``ValueError`` of a storage that failed while Optuna opened or read it."""
    reason = _one_line(getattr(exc, "orig", None) or exc)
    if isinstance(exc, sqlalchemy.exc.OperationalError):
        fix = (
            "Check the URL, that the database server runs and is reachable, and that the database exists"
            if _sqlite_file(url) is None
            else "Check the path, that its folder exists and that the file is writable"
        )
    elif isinstance(exc, RuntimeError):  # Optuna's schema-version check, whose message says what to run
        fix = "Upgrade the storage or Optuna as it says, or point --storage at another database"
    else:
        fix = "The database is corrupted or not an Optuna study database: point --storage at another database"
    return ValueError(
        f"cannot use the study storage {redact_url(url)!r}: {reason}{'' if reason.endswith(('.', '?')) else '.'} {fix}"
    )


def make_storage(
    url: str,
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
    grace_period: int | None = None,
    max_retry: int | None = 1,
) -> optuna.storages.RDBStorage:
    """An Optuna ``RDBStorage`` at ``url`` with a heartbeat and a retry of trials whose worker died.

    :param url: SQLAlchemy URL (``sqlite:///file.db``, ``postgresql://user:pw@host:port/db``...); a
        driverless ``postgresql://`` uses whichever of psycopg / psycopg2 is installed.
    :param heartbeat_interval: seconds between a running trial's heartbeats.
    :param grace_period: seconds without a heartbeat after which a ``RUNNING`` trial is failed
        (default ``2 * heartbeat_interval``; must exceed ``heartbeat_interval``).
    :param max_retry: how often a failed-by-heartbeat trial is re-queued with the same parameters
        (``0``: never; ``None``: always).
    """
    if isinstance(heartbeat_interval, bool) or not isinstance(heartbeat_interval, int) or heartbeat_interval < 1:
        raise ValueError(f"heartbeat_interval must be an integer >= 1 (seconds), got {heartbeat_interval!r}")
    grace = 2 * heartbeat_interval if grace_period is None else grace_period
    if isinstance(grace, bool) or not isinstance(grace, int) or grace <= heartbeat_interval:
        raise ValueError(
            f"grace_period must be an integer > heartbeat_interval ({heartbeat_interval} s), got {grace!r}: a live "
            "worker's trial could be failed between two heartbeats"
        )
    check_storage_url(url)
    url = resolve_storage_url(url)
    engine_kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        engine_kwargs["connect_args"] = {"timeout": 60}  # wait for another local worker's write lock
    else:
        engine_kwargs["pool_pre_ping"] = True  # survive a database restart between trials
    callback_arg = STALE_TRIAL_CALLBACK_ARG
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry_class = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None)  # Optuna >= 4.9
        retry_class = retry_class or optuna.storages.RetryFailedTrialCallback
        callback = None if max_retry == 0 else retry_class(max_retry=max_retry)
        for attempt in range(STORAGE_ATTEMPTS):
            try:
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace,
                    **{callback_arg: callback},
                )
            except ImportError as exc:
                hint = ' (pip install "sb3-trading[postgres]")' if url.startswith("postgres") else ""
                raise ImportError(f"no database driver for storage {redact_url(url)!r}{hint}: {exc}") from exc
            except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ProgrammingError) as exc:
                reason = str(getattr(exc, "orig", exc)).strip()
                if "already exists" in reason and attempt < STORAGE_ATTEMPTS - 1:
                    # the schema-creation race below, as SQLite (OperationalError) and PostgreSQL's CREATE TABLE
                    # (ProgrammingError: DuplicateTable) report it: connect again
                    logger.info("storage %s: concurrent schema creation (%s); retrying", redact_url(url), reason)
                    time.sleep(0.5 * (attempt + 1))
                    continue
                raise _storage_error(url, exc) from exc
            except sqlalchemy.exc.IntegrityError as exc:
                # workers starting together on an empty database race to create Optuna's tables;
                # the loser's CREATE/INSERT fails once the winner's exist: connect again
                if attempt == STORAGE_ATTEMPTS - 1:
                    raise _storage_error(url, exc) from exc
                logger.info("storage %s: concurrent schema creation (%s); retrying", redact_url(url), type(exc).__name__)
                time.sleep(0.5 * (attempt + 1))
            except sqlalchemy.exc.SQLAlchemyError as exc:  # a corrupted file ("file is not a database", "malformed")
                raise _storage_error(url, exc) from exc
            except RuntimeError as exc:
                if "schema" not in str(exc):
                    raise
                raise _storage_error(url, exc) from exc  # a schema of another Optuna version
    raise AssertionError("unreachable")


def make_pruner(n_startup_trials: int = 5, n_warmup_steps: int = 0) -> optuna.pruners.MedianPruner:
    """``MedianPruner``: prune a trial whose validation score is below the median of earlier trials at the same step.

    :param n_startup_trials: trials that run to the end before pruning starts.
    :param n_warmup_steps: training timesteps before a trial can be pruned.
    """
    return optuna.pruners.MedianPruner(n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps)


def data_fingerprint(data: MarketData) -> str:
    """Short hash of the prices and features: the same data on any machine, whatever its file path."""
    digest = hashlib.sha1()
    for array in (data.prices, data.features):
        if array is not None:
            digest.update(np.ascontiguousarray(array, dtype=np.float64).tobytes())
    return f"{data.n_steps}x{data.prices.shape[1]}:{digest.hexdigest()[:16]}"


def count_trials(study: optuna.Study, states: Sequence[TrialState] = FINISHED_STATES) -> int:
    """Trials of ``study`` in ``states`` (default: finished, i.e. ``COMPLETE`` or ``PRUNED``)."""
    return len(study.get_trials(deepcopy=False, states=tuple(states)))


#: how a trial's value is measured, recorded on the study: the final model, evaluated after ``learn`` returned
FINAL_SCORE = "final model, after the last update"
#: settings recorded on studies since they exist, with the value studies created before ran with
#: (trial Sharpe ratios then had no risk-free rate and were annualised with 252 bars for daily data; a trial
#: whose last periodic evaluation fell on its last timestep was scored by that evaluation, before the last update)
LEGACY_CONFIG: dict[str, Any] = {
    "risk_free": 0.0,
    "periods_per_year": 252.0,
    "final_score": "last periodic evaluation when at the last timestep (before the last update)",
}


def _check_study_config(study: optuna.Study, config: dict[str, Any]) -> None:
    """Store ``config`` on a new study; refuse to resume a study created with different settings."""
    config = jsonable(config)
    stored = study.user_attrs.get(CONFIG_ATTR)
    if stored is None:
        study.set_user_attr(CONFIG_ATTR, config)
        return
    keys = sorted(set(stored) | set(config))
    # a study created before a setting was recorded ran with its legacy value
    stored = {**{k: v for k, v in LEGACY_CONFIG.items() if k not in stored}, **stored}
    differing = {key: (stored.get(key), config.get(key)) for key in keys if stored.get(key) != config.get(key)}
    if differing:
        details = "; ".join(f"{key}: study has {old!r}, this run {new!r}" for key, (old, new) in differing.items())
        raise ValueError(
            f"study {study.study_name!r} was created with other settings ({details}). Its trial values would not be "
            "comparable: rerun with the study's settings or choose another --study-name"
        )


# ----------------------------------------------------------------------------- run
def run_study(
    env_id: str,
    algo: str,
    n_trials: int,
    timeout: float | None = None,
    storage: str | None = None,
    study_name: str | None = None,
    output_dir: str | Path = DEFAULT_OUTPUT_DIR,
    timesteps: int = DEFAULT_TIMESTEPS,
    eval_freq: int = DEFAULT_EVAL_FREQ,
    seed: int = 0,
    n_envs: int = DEFAULT_N_ENVS,
    env_kwargs: Mapping[str, Any] | None = None,
    data_path: str | Sequence[str] | None = None,
    *,
    join: str = "exact",
    risk_free: float = 0.0,
    device: str = "auto",
    worker_id: str | None = None,
    choices: Mapping[str, Sequence[Any]] | None = None,
    test_fraction: float = 0.2,
    validation_fraction: float = 0.2,
    episode_length: int = 256,
    metric: str = "sharpe",
    score: str = "last",
    heartbeat_interval: int = DEFAULT_HEARTBEAT_INTERVAL,
    grace_period: int | None = None,
    max_retry: int | None = 1,
    n_startup_trials: int = 5,
    n_warmup_steps: int | None = None,
    catch: tuple[type[Exception], ...] = (),
    resample: str = "auto",
    n_paths: int = DEFAULT_N_PATHS,
) -> optuna.Study:
    """Create or resume the study and run trials until it holds ``n_trials`` finished trials (or ``timeout``).

    See the module documentation for storage, resuming and the heartbeat. Many workers may call this
    with the same ``storage`` and ``study_name`` at once.

    :param env_id: registered env ID.
    :param algo: ``ppo``, ``ppo_mask``, ``ppo_lstm``, ``qppo`` or ``qppo_mask``.
    :param n_trials: total finished (``COMPLETE``/``PRUNED``) trials the study should hold, over all runs and workers.
    :param timeout: stop this worker after the trial running at ``timeout`` seconds (``None``: no limit).
    :param storage: SQLAlchemy URL; ``None``: ``sqlite:///<output_dir>/<study_name>.db``.
    :param study_name: default ``<algo>_<Env>``.
    :param output_dir: folder of the default SQLite file.
    :param timesteps: training timesteps per trial.
    :param eval_freq: validation backtest (and pruning point) every ``eval_freq`` timesteps.
    :param seed: data seed (synthetic market), training seed of every trial, and the sampler's base seed.
    :param n_envs: parallel training envs per trial.
    :param env_kwargs: env arguments.
    :param data_path: the market: CSV/parquet file(s), a folder or a glob; ``None``: the env's seeded synthetic market.
    :param join: how several files join on their dates (``exact`` or ``inner``).
    :param risk_free: **annual** risk-free rate (fraction) of the validation Sharpe/Sortino (stored on the study).
    :param device: torch device.
    :param worker_id: recorded in ``trial.user_attrs["worker_id"]``; default ``<hostname>-<pid>``.
    :param choices: replacements of categorical choices (:data:`~sb3_trading.tuning.spaces.DEFAULT_CHOICES`).
    :param test_fraction: untouched held-out tail.
    :param validation_fraction: tail of the rest used for validation.
    :param episode_length: training episode length (see :class:`~sb3_trading.tuning.objective.TradingObjective`).
    :param metric: validation metric (``sharpe``).
    :param score: ``"last"`` or ``"best"`` validation score as the trial value.
    :param heartbeat_interval: seconds between heartbeats of a running trial.
    :param grace_period: seconds without heartbeat before a running trial is failed (default twice the interval).
    :param max_retry: re-queues of a failed-by-heartbeat trial with the same parameters.
    :param n_startup_trials: trials before the pruner (and TPE, which samples randomly until then) kick in.
    :param n_warmup_steps: timesteps before a trial can be pruned (default ``timesteps // 3``).
    :param catch: exception types a trial may raise without stopping the worker (the trial is ``FAIL``).
    :param resample: how each trial's training market is resampled every episode (as ``sb3-trading train``;
        ``auto``: fresh synthetic paths on the synthetic market, bootstrap paths of the training fold on files).
    :param n_paths: paths of the resampled training market.
    :return: the study (loaded from the storage; holds every worker's trials).
    """
    if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
        raise ValueError(f"n_trials must be an integer >= 1 (the study's total of finished trials), got {n_trials!r}")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be > 0 seconds or None, got {timeout!r}")
    env_id = check_env_id(env_id)
    algo_name, _ = get_algo(algo)
    # validate before anything is built, loaded or stored: a bad choice or storage must leave no study behind
    choices = check_choices(choices, algo_name, n_envs if is_int(n_envs) and n_envs >= 1 else None)
    if storage is not None:
        check_storage_url(storage)
    env_kwargs = dict(env_kwargs or {})
    data = load_env_data(env_id, data_path, seed, env_kwargs, join=join)
    objective = TradingObjective(
        env_id,
        algo_name,
        data,
        timesteps=timesteps,
        eval_freq=eval_freq,
        n_envs=n_envs,
        seed=seed,
        env_kwargs=env_kwargs,
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        episode_length=episode_length,
        resample=resample_kind(resample, data_path),
        n_paths=n_paths,
        device=device,
        choices=choices or None,
        metric=metric,
        score=score,
        worker_id=worker_id or default_worker_id(),
        risk_free=risk_free,
    )
    study_name = study_name or default_study_name(algo_name, env_id)
    url = storage or default_storage_url(output_dir, study_name)
    rdb = make_storage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period, max_retry=max_retry)
    warmup = timesteps // 3 if n_warmup_steps is None else n_warmup_steps
    try:
        study = optuna.create_study(
            storage=rdb,
            study_name=study_name,
            load_if_exists=True,
            direction="maximize",
            sampler=TrialSeededTPESampler(seed=seed, n_startup_trials=n_startup_trials, constant_liar=True),
            pruner=make_pruner(n_startup_trials, warmup),
        )
        config = {**objective.config(), "data": data_fingerprint(data), "test_fraction": test_fraction}
        _check_study_config(study, {**config, "final_score": FINAL_SCORE})
        done = count_trials(study)
    except sqlalchemy.exc.SQLAlchemyError as exc:  # e.g. a damaged file that opened but cannot be read
        raise _storage_error(url, exc) from exc
    if done >= n_trials:
        logger.info("study %r already holds %d finished trials (n_trials=%d): nothing to run", study_name, done, n_trials)
        return study
    logger.info(
        "study %r in %s: %d finished trials, running until %d (worker %s)",
        study_name,
        redact_url(url),
        done,
        n_trials,
        objective.worker_id,
    )
    study.optimize(
        objective,
        timeout=timeout,
        callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=FINISHED_STATES)],
        catch=catch,
        gc_after_trial=True,
    )
    return study


# ----------------------------------------------------------------------------- zoo export
def zoo_config_path(algo: str) -> Path:
    """``sb3_trading/zoo_configs/<algo>.yml`` (package data: the same in a source tree and an installed wheel)."""
    return config_path(get_algo(algo)[0])


def _format_value(value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"cannot write non-finite {value!r} into policy_kwargs")
    return format_zoo_value(value)


def merge_policy_kwargs(base: str | Mapping[str, Any] | None, tuned: Mapping[str, Any]) -> str:
    """Override keys of a zoo ``policy_kwargs`` string (``"dict(net_arch=[64, 64], n_quantiles=32)"``).

    Keywords of ``base`` that are not tuned keep their source text (``activation_fn=nn.ReLU`` stays as
    written); tuned ones are replaced or appended with their ``repr``.

    :raises ValueError: ``base`` is not a ``dict(key=value, ...)`` expression.
    """
    items: dict[str, str] = {}
    if isinstance(base, Mapping):
        items = {str(k): _format_value(v) for k, v in base.items()}
    elif isinstance(base, str) and base.strip():
        try:
            keywords = zoo_dict_keywords(base)
        except ValueError as exc:
            raise ValueError(f"policy_kwargs of the base config: {exc}; edit the base config") from exc
        for keyword in keywords:
            if keyword.arg is None:
                raise ValueError(f"policy_kwargs {base!r} uses **; write its keys out")
            items[keyword.arg] = ast.get_source_segment(base.strip(), keyword.value) or ""
    elif base is not None and not isinstance(base, str):
        raise ValueError(f"policy_kwargs must be a string or a mapping, got {type(base).__name__}")
    for key, value in tuned.items():
        items[key] = _format_value(value)
    return "dict(" + ", ".join(f"{key}={value}" for key, value in items.items()) + ")"


def _base_entry(algo: str, env_id: str, base_config: str | Path | None, n_envs: int) -> tuple[dict[str, Any], str]:
    path = Path(base_config) if base_config is not None else zoo_config_path(algo)
    if path.is_file():
        configs = yaml.safe_load(path.read_text()) or {}
        if env_id in configs:
            return dict(configs[env_id]), str(path)
        if base_config is not None:
            raise ValueError(f"{path} has no entry for {env_id}; it has {sorted(configs)}")
    elif base_config is not None:
        raise FileNotFoundError(f"base config {str(path)!r} does not exist")
    defaults = dict(DEFAULT_HYPERPARAMS[algo])
    entry: dict[str, Any] = {
        "n_envs": n_envs,
        "n_timesteps": 2e5,
        "policy": defaults.pop("policy"),
        "normalize": False,
    }
    policy_kwargs = defaults.pop("policy_kwargs", None)
    entry.update(defaults)
    if policy_kwargs:
        entry["policy_kwargs"] = merge_policy_kwargs(None, policy_kwargs)
    return entry, "sb3_trading.training.DEFAULT_HYPERPARAMS"


def best_trial_params(study: optuna.Study) -> tuple[FrozenTrial, dict[str, Any]]:
    """The best ``COMPLETE`` trial and its readable parameters (the effective ones the objective recorded).

    :raises ValueError: the study has no completed trial yet.
    """
    try:
        best = study.best_trial
    except ValueError as exc:
        raise ValueError(f"study {study.study_name!r} has no completed trial yet; run more trials") from exc
    return best, dict(best.user_attrs.get(PARAMS_ATTR) or best.params)


def export_best_params(
    study: optuna.Study,
    algo: str,
    env_id: str,
    path: str | Path,
    base_config: str | Path | None = None,
    n_envs: int | None = None,
) -> Path:
    """Write the best trial's hyperparameters as an rl-zoo3 yml keyed by ``env_id`` (atomically), and check it.

    Starts from ``env_id``'s entry of ``zoo_configs/<algo>.yml`` (or ``base_config``; without either,
    from :data:`~sb3_trading.training.DEFAULT_HYPERPARAMS`) and overrides the tuned keys: algorithm
    arguments directly, ``net_arch``/``n_quantiles``/``lstm_hidden_size`` inside the ``policy_kwargs``
    string. ``n_envs`` becomes the study's tuning ``n_envs`` (``n_steps`` and ``batch_size`` were tuned
    for that rollout size); ``n_timesteps``, ``policy``, ``normalize``, ``env_kwargs`` and the rest are kept.

    :param study: a study with at least one completed trial.
    :param algo: the study's algorithm.
    :param env_id: the study's env ID (the yml key).
    :param path: output ``.yml``.
    :param base_config: zoo yml to start from (default ``zoo_configs/<algo>.yml``).
    :param n_envs: ``n_envs`` to write (default: the study's tuning ``n_envs``, else the base entry's).
    :return: ``path``.
    """
    algo_name, _ = get_algo(algo)
    env_id = check_env_id(env_id)
    best, params = best_trial_params(study)
    config = study.user_attrs.get(CONFIG_ATTR, {})
    for key, value in (("algo", algo_name), ("env_id", env_id)):
        if config.get(key, value) != value:
            raise ValueError(f"study {study.study_name!r} tuned {key}={config[key]!r}, not {value!r}")
    n_envs = n_envs or config.get("n_envs")
    entry, source = _base_entry(algo_name, env_id, base_config, n_envs or DEFAULT_N_ENVS)
    if n_envs:
        entry["n_envs"] = int(n_envs)
    hyperparams = params_to_hyperparams(algo_name, params)
    policy_kwargs = hyperparams.pop("policy_kwargs", None)
    for key, value in hyperparams.items():
        entry[key] = value.item() if isinstance(value, np.generic) else value
    if policy_kwargs:
        entry["policy_kwargs"] = merge_policy_kwargs(entry.get("policy_kwargs"), policy_kwargs)
    if entry.get("batch_size") and entry.get("n_steps") and entry["batch_size"] > entry["n_steps"] * entry.get("n_envs", 1):
        entry["batch_size"] = entry["n_steps"] * entry.get("n_envs", 1)

    header = (
        f"# rl-zoo3 hyperparameters for {algo_name} on {env_id}, tuned by sb3-trading tune.\n"
        f"# study {study.study_name!r}, best trial #{best.number}: validation score {best.value:.6g} "
        f"({config.get('metric', 'sharpe')}, {config.get('score', 'last')} evaluation, "
        f"{config.get('timesteps', '?')} timesteps per trial); base entry: {source}\n"
        f"#   python -m sb3_trading.zoo train --algo {algo_name} --env {env_id} --conf-file {Path(path).name}\n"
    )
    text = header + yaml.safe_dump({env_id: entry}, sort_keys=False, default_flow_style=False)
    out = atomic_write(path, lambda tmp: tmp.write_text(text))
    check_zoo_config(out, algo_name, env_id)
    logger.info("wrote the best parameters of study %r (trial %d) to %s", study.study_name, best.number, out)
    return out


def check_zoo_config(path: str | Path, algo: str, env_id: str) -> dict[str, Any]:
    """Check that rl-zoo3 can load ``path`` for ``algo``/``env_id``: YAML parses (``yaml.safe_load``, as rl-zoo3),
    the entry is keyed by the env ID, has ``n_timesteps`` and ``policy``, every other key is an rl-zoo3 key or an
    argument of the algorithm, ``policy_kwargs`` is a ``dict(...)`` expression, and ``batch_size <= n_steps * n_envs``.

    :return: the entry.
    :raises ValueError: naming what is wrong.
    """
    algo_name, _ = get_algo(algo)
    try:
        configs = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(configs, dict) or env_id not in configs:
        raise ValueError(f"{path} has no entry keyed by {env_id!r}")
    entry = configs[env_id]
    missing = [key for key in ("n_timesteps", "policy") if key not in entry]
    if missing:
        raise ValueError(f"{path}: entry {env_id!r} lacks {missing}")
    unknown = sorted(set(entry) - ZOO_KEYS - algo_init_parameters(algo_name))
    if unknown:
        raise ValueError(f"{path}: {unknown} are neither rl-zoo3 keys nor arguments of {algo_name}")
    if "policy_kwargs" in entry and isinstance(entry["policy_kwargs"], str):
        merge_policy_kwargs(entry["policy_kwargs"], {})  # parses, or raises
    n_rollout = entry.get("n_steps", 0) * entry.get("n_envs", 1)
    if "batch_size" in entry and n_rollout and entry["batch_size"] > n_rollout:
        raise ValueError(f"{path}: batch_size {entry['batch_size']} > n_steps * n_envs = {n_rollout}")
    return entry


def best_trial_deflated_sharpe(study: optuna.Study) -> dict[str, Any]:
    """Deflated Sharpe ratio of the best trial given the study's completed trials (see the module documentation).

    :param study: a study with at least one ``COMPLETE`` trial.
    :return: plain, strict-JSON data:

        * ``n_trials``: ``N``, the ``COMPLETE`` trials; ``n_trials_with_sharpe``: those with a defined
          validation Sharpe ratio (trials whose validation returns are constant have none, nor have trials
          of older versions that recorded no return statistics: they count in ``N``, not in ``V``);
        * ``sharpe`` / ``sharpe_annualised``: the best trial's validation Sharpe ratio, per period and
          times ``sqrt(periods_per_year)``; ``n_periods``, ``skew``, ``kurtosis`` (raw, normal = 3) of its
          validation excess returns; ``periods_per_year``;
        * ``sharpe_variance``: ``V``, variance (``ddof=1``) of the trials' per-period Sharpe ratios
          (``None`` with fewer than two);
        * ``expected_max_sharpe`` / ``expected_max_sharpe_annualised``: ``SR0``, per period and annualised;
        * ``psr``: P(true Sharpe ratio > 0); ``dsr``: P(true Sharpe ratio > ``SR0``), ``<= psr`` when
          ``SR0 >= 0``; with ``N = 1`` ``dsr == psr``;
        * ``reason``: why ``psr``/``dsr`` are ``None`` (an undefined statistic), else ``None``.
    :raises ValueError: the study has no completed trial yet.
    """
    best, _ = best_trial_params(study)
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sharpes = [float(m["sharpe"]) for t in complete if (m := t.user_attrs.get(SHARPE_MOMENTS_ATTR))]
    n_trials = len(complete)
    variance = float(np.var(sharpes, ddof=1)) if len(sharpes) >= 2 else None
    out: dict[str, Any] = {
        "n_trials": n_trials,
        "n_trials_with_sharpe": len(sharpes),
        "sharpe": None,
        "sharpe_annualised": None,
        "n_periods": None,
        "skew": None,
        "kurtosis": None,
        "periods_per_year": study.user_attrs.get(CONFIG_ATTR, {}).get("periods_per_year"),
        "sharpe_variance": variance,
        "expected_max_sharpe": None,
        "expected_max_sharpe_annualised": None,
        "psr": None,
        "dsr": None,
        "reason": None,
    }
    moments = best.user_attrs.get(SHARPE_MOMENTS_ATTR)
    if not moments:
        out["reason"] = (
            f"trial {best.number} has no validation Sharpe ratio (constant validation returns, or a trial of an older "
            "version that recorded no return statistics)"
        )
        return out
    ppy = float(moments["periods_per_year"])
    stats = {"sharpe": float(moments["sharpe"]), "n": int(moments["n"])}
    stats.update(skew=float(moments["skew"]), kurtosis=float(moments["kurtosis"]))
    out.update(
        sharpe=stats["sharpe"],
        sharpe_annualised=stats["sharpe"] * math.sqrt(ppy),
        n_periods=stats["n"],
        skew=stats["skew"],
        kurtosis=stats["kurtosis"],
        periods_per_year=ppy,
    )
    if n_trials > 1 and variance is None:
        out["reason"] = (
            f"only {len(sharpes)} of the {n_trials} completed trials has a validation Sharpe ratio: the variance "
            "of the trials' Sharpe ratios, hence the deflated Sharpe, is undefined"
        )
    try:
        out["psr"] = probabilistic_sharpe_ratio(**stats)
        if out["reason"] is None:
            sharpe_variance = 0.0 if variance is None else variance  # one trial: SR0 = 0 whatever V is
            sr0 = expected_max_sharpe(n_trials, sharpe_variance)
            out.update(expected_max_sharpe=sr0, expected_max_sharpe_annualised=sr0 * math.sqrt(ppy))
            out["dsr"] = deflated_sharpe_ratio(n_trials=n_trials, sharpe_variance=sharpe_variance, **stats)
    except ValueError as exc:  # moments for which the Sharpe ratio's standard error is undefined
        out.update(psr=None, dsr=None, reason=str(exc))
    return out


def study_summary(study: optuna.Study) -> dict[str, Any]:
    """Counts by state and the best trial, as plain data.

    ``best`` holds the trial's ``number``, ``value``, ``params``, ``worker_id``, its annualised
    ``validation_sharpe`` and ``deflated_sharpe`` (:func:`best_trial_deflated_sharpe`).
    """
    trials = study.get_trials(deepcopy=False)
    counts = {state.name: sum(t.state == state for t in trials) for state in TrialState}
    summary: dict[str, Any] = {
        "study_name": study.study_name,
        "n_trials": len(trials),
        "states": {name: n for name, n in counts.items() if n},
        "workers": sorted({str(t.user_attrs.get("worker_id")) for t in trials if "worker_id" in t.user_attrs}),
        "best": None,
    }
    if counts["COMPLETE"]:
        best, params = best_trial_params(study)
        summary["best"] = {
            "number": best.number,
            "value": best.value,
            "params": params,
            "worker_id": best.user_attrs.get("worker_id"),
            "validation_sharpe": (best.user_attrs.get("validation_metrics") or {}).get("sharpe"),
            "deflated_sharpe": best_trial_deflated_sharpe(study),
        }
    return summary


__all__ = [
    "CONFIG_ATTR",
    "DEFAULT_OUTPUT_DIR",
    "FINISHED_STATES",
    "OPTUNA_TABLES",
    "TrialSeededTPESampler",
    "best_trial_deflated_sharpe",
    "check_storage_url",
    "check_zoo_config",
    "count_trials",
    "data_fingerprint",
    "default_storage_url",
    "default_study_name",
    "export_best_params",
    "is_in_memory_sqlite",
    "make_pruner",
    "make_storage",
    "merge_policy_kwargs",
    "redact_url",
    "run_study",
    "study_summary",
    "zoo_config_path",
]
