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

:func:`cpcv` is the combinatorial purged cross-validation scheme (``sb3-trading walk-forward --scheme cpcv``):
the same recipe per split, trained on the split's training blocks (as separate paths, purged and embargoed
around each test group) and tested on each of its test groups, whose backtests are stitched into the
``cpcv_paths`` full out-of-sample paths; its report gives the distribution of the paths' Sharpe ratios.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sb3_trading.algos import get_algo
from sb3_trading.common.validation import check_choice
from sb3_trading.data import MarketData, stack_paths
from sb3_trading.data.calendar import check_annual_rate
from sb3_trading.evaluation.backtest import BacktestResult, backtest, concat_results, data_calendar
from sb3_trading.evaluation.folds import FoldResult, WalkForwardResult, aggregate_folds, on_rows, summarize_folds
from sb3_trading.evaluation.report import write_report
from sb3_trading.evaluation.splits import combinatorial_purged_splits, cpcv_paths, cpcv_test_groups, walk_forward_bounds
from sb3_trading.recipe import (
    CONSECUTIVE,
    DEFAULT_ENV_ID,
    DEFAULT_EPISODE_LENGTH,
    DEFAULT_N_PATHS,
    FEATURE_FITS_JSON,
    JOIN_CHOICES,
    NORMALIZER_JSON,
    Probe,
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
    path_seed,
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
#: ``sb3-trading walk-forward --scheme``: train-before-test folds, or combinatorial purged cross-validation
SCHEMES = ("walk-forward", "cpcv")
#: AFML's example CPCV layout, the defaults of ``--scheme cpcv``
DEFAULT_CPCV_GROUPS = 6
DEFAULT_CPCV_TEST_GROUPS = 2


def _checked_recipe(
    env_id: str,
    algo: str,
    data: MarketData,
    timesteps: int,
    n_envs: int,
    device: str,
    risk_free: float,
    vec: str,
    env_kwargs: dict[str, Any] | None,
    hyperparams: dict[str, Any] | None,
    seed: int,
    resample: str,
    n_paths: int,
    baselines: Sequence[str],
    periods_per_year: float | None,
) -> _Recipe:
    """The :class:`_Recipe` of the arguments every scheme shares, checked (the zoo hyperparameters under the given
    ``hyperparams``)."""
    env_id = check_trading_env(env_id)
    algo_name, algo_class = get_algo(algo)
    if not isinstance(data, MarketData):
        raise TypeError(f"data must be a MarketData, got {type(data).__name__}")
    check_positive_int(timesteps, "timesteps")
    check_positive_int(n_envs, "n_envs")
    check_device(device)
    risk_free = check_annual_rate(risk_free)
    vec_kind = choose_vec_env(env_id, vec)
    params = default_hyperparams(algo_name, hyperparams)
    check_hyperparams(algo_name, algo_class, params)
    return _Recipe(
        algo_name, algo_class, params, env_id, dict(env_kwargs or {}), n_envs, seed, vec_kind, device, timesteps,
        resample, n_paths, tuple(baselines), periods_per_year, risk_free,
    )  # fmt: skip


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
    recipe = _checked_recipe(
        env_id, algo, data, timesteps, n_envs, device, risk_free, vec, env_kwargs, hyperparams, seed, resample,
        n_paths, baselines, periods_per_year,
    )  # fmt: skip
    bounds = walk_forward_bounds(data.n_steps, n_splits, train_size, test_size, purge, embargo, expanding)
    ppy, calendar = data_calendar(data, periods_per_year)
    config: dict[str, Any] = {
        **recipe.config(data, episode_length, hyperparams, ppy, calendar, purge, embargo),
        "n_splits": len(bounds),
        "expanding": expanding,
        "train_size": train_size,
        "test_size": bounds[0][3] - bounds[0][2],
    }
    folds: list[FoldResult] = []
    for k, (train_start, train_end, test_start, test_end) in enumerate(bounds):
        train_data = data.slice(train_start, train_end)
        label = f"fold {k + 1}/{len(bounds)}: rows [{train_start}, {train_end})"
        model, probe, train_seconds = recipe.train(train_data, training_market, episode_length, label)
        agent, fold_baselines, env_config = recipe.test(model, data, probe, test_start, test_end)
        if k == 0:
            config["env_config"] = env_config
        model_path = _save_fold(model, probe, output_dir, f"fold_{k}")
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
    return aggregate_folds(folds, recipe.algo_name, config)


# ----------------------------------------------------------------------------- combinatorial purged CV
@dataclass
class CPCVSplit:
    """One split of combinatorial purged cross-validation (:func:`cpcv`).

    :ivar split: split number, from 0 (order of :func:`~sb3_trading.evaluation.splits.cpcv_test_groups`).
    :ivar test_groups: the groups tested, sorted.
    :ivar train_blocks: ``(start, stop)`` half-open rows of each contiguous training block (one path each).
    :ivar test_rows: ``{group: (start, stop)}`` half-open rows of each test group.
    :ivar agent: ``{group: backtest}`` of the trained policy on each test group; ``t`` are rows of the full data.
    :ivar baselines: ``{group: {name: backtest}}`` on the same rows.
    :ivar train_seconds: wall time of ``learn``.
    :ivar model_path: where the split's model was saved, if it was.
    :ivar model: the trained algorithm (not serialised).
    """

    split: int
    test_groups: tuple[int, ...]
    train_blocks: list[tuple[int, int]]
    test_rows: dict[int, tuple[int, int]]
    agent: dict[int, BacktestResult]
    baselines: dict[int, dict[str, BacktestResult]]
    train_seconds: float
    model_path: str | None = None
    model: Any = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "test_groups": list(self.test_groups),
            "train_blocks": [list(b) for b in self.train_blocks],
            "test_rows": {str(g): list(rows) for g, rows in self.test_rows.items()},
            "train_seconds": self.train_seconds,
            "model_path": self.model_path,
            "agent": {str(g): r.to_dict() for g, r in self.agent.items()},
            "baselines": {str(g): {name: r.to_dict() for name, r in b.items()} for g, b in self.baselines.items()},
        }


@dataclass
class CPCVResult:
    """All CPCV splits, the backtest paths stitched from their test groups, and the distribution over paths.

    :ivar splits: the :class:`CPCVSplit` s.
    :ivar groups: ``(start, stop)`` half-open rows of each group.
    :ivar path_splits: ``(n_backtest_paths, n_groups)`` :func:`~sb3_trading.evaluation.splits.cpcv_paths`: the split
        whose test backtest path ``p`` uses on group ``g``.
    :ivar paths: per path ``{"agent": result, <baseline>: result}``, each the groups' backtests compounded in order.
    :ivar aggregate: per-metric summaries over paths, the path Sharpe distribution, baseline win rates.
    :ivar config: the run's settings.
    """

    splits: list[CPCVSplit]
    groups: list[tuple[int, int]]
    path_splits: np.ndarray
    paths: list[dict[str, BacktestResult]]
    aggregate: dict[str, Any]
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "config": self.config,
            "groups": [list(g) for g in self.groups],
            "splits": [s.to_dict() for s in self.splits],
            "paths": [
                {
                    "path": p,
                    "splits": self.path_splits[p].tolist(),
                    "agent": path["agent"].to_dict(),
                    "baselines": {name: r.to_dict() for name, r in path.items() if name != "agent"},
                }
                for p, path in enumerate(self.paths)
            ],
            "aggregate": self.aggregate,
        }


def contiguous_blocks(rows: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` half-open runs of consecutive integers in the sorted ``rows`` (e.g. a CPCV training set)."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return []
    cuts = np.flatnonzero(np.diff(rows) != 1) + 1
    return [(int(run[0]), int(run[-1]) + 1) for run in np.split(rows, cuts)]


def cpcv_training_market(
    env_id: str,
    train_data: MarketData,
    resample: str,
    n_paths: int = DEFAULT_N_PATHS,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
) -> MarketData:
    """:func:`~sb3_trading.recipe.training_market` of a training set of several blocks (paths of ``train_data``):
    ``bootstrap`` resamples each block on its own (a bank of ``n_paths`` paths per block, seeds
    :func:`~sb3_trading.recipe.path_seed` ``(seed, block)``: no bootstrap path joins bars of two blocks, so none
    crosses a test group); ``synthetic`` and ``none`` are :func:`training_market` of ``train_data`` itself."""
    if resample != "bootstrap" or train_data.n_paths == 1:
        return training_market(env_id, train_data, resample, n_paths, seed, env_kwargs)
    banks = [
        training_market(env_id, block, resample, n_paths, seed if b == 0 else path_seed(seed, b), env_kwargs)
        for b, block in enumerate(train_data.paths())
    ]
    return stack_paths(banks)


def check_cpcv_groups(n_groups: Any, n_test_groups: Any) -> tuple[int, int]:
    """``(n_groups, n_test_groups)`` as ints with ``2 <= n_groups`` and ``1 <= n_test_groups < n_groups``, else a
    ``ValueError`` naming the argument (and its ``walk-forward`` flag) and the fix."""
    n_groups = check_positive_int(n_groups, "n_groups (--groups)", minimum=2)
    n_test_groups = check_positive_int(n_test_groups, "n_test_groups (--test-groups)")
    if n_test_groups >= n_groups:
        raise ValueError(
            f"n_test_groups={n_test_groups} (--test-groups) must be less than n_groups={n_groups} (--groups): some "
            f"groups must be left to train on; use --test-groups {max(1, n_groups - 1)} or fewer, or more --groups"
        )
    return n_groups, n_test_groups


def cpcv(
    algo: str,
    env_id: str,
    data: MarketData,
    n_groups: int = 6,
    n_test_groups: int = 2,
    timesteps: int = 10_000,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    hyperparams: Mapping[str, Any] | None = None,
    purge: int = 0,
    embargo: int = 0,
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
) -> CPCVResult:
    """Combinatorial purged cross-validation of ``algo`` (López de Prado, *Advances in Financial ML*, ch. 12).

    The rows are cut into ``n_groups`` contiguous groups; each of the ``binomial(n_groups, n_test_groups)`` splits
    (:func:`~sb3_trading.evaluation.splits.combinatorial_purged_splits`) tests ``n_test_groups`` of them and trains
    on the rest, minus ``purge`` bars before and ``embargo`` bars after **each** test group.

    **Training on a non-contiguous set.** The training rows fall apart into contiguous blocks (the rows between
    test groups and their purge/embargo zones). They are trained on as separate paths of one market
    (:func:`~sb3_trading.data.stack_paths`), never joined into one series: the envs compute indicators and the
    causal statistics per path, and no episode starts, runs or ends across a path boundary, so no observation or
    reward of training spans a test group (joining the blocks would fake a jump from the bar before a test group
    to the bar after it). The feature normaliser is fitted on the training blocks only; the training episode
    length is capped to the shortest block's usable bars; ``resample="bootstrap"`` resamples each block on its own
    (:func:`cpcv_training_market`).

    **Testing.** Each test group is backtested on its own, as a walk-forward test block (look-back rows before
    the group are features only, never rewards; group 0 starts at the env's first usable bar). Backtest path
    ``p`` (:func:`~sb3_trading.evaluation.splits.cpcv_paths`) compounds, group by group in time order, the test
    backtest of the split assigned to it, so each of the ``binomial(n_groups - 1, n_test_groups - 1)`` paths is
    a full out-of-sample history in which every group is predicted by a model that never trained on it. The
    aggregate reports the distribution of the paths' Sharpe ratios (``mean``, ``std``, ``min``, ``max``) and of
    every other metric.

    Arguments as :func:`walk_forward`, and:

    :param n_groups: number of groups ``N``, ``>= 2`` (AFML's example: 6).
    :param n_test_groups: test groups per split ``k``, ``1 <= k < N`` (AFML's example: 2).
    :param purge: bars before each test group removed from training.
    :param embargo: bars after each test group removed from training.
    :param output_dir: when given, each split's ``model.zip`` and ``normalizer.json`` go to ``split_<s>/``.
    :raises ValueError: bad groups, or groups too short for the env's window and warm-up plus purge and embargo.
    :return: the :class:`CPCVResult`.
    """
    recipe = _checked_recipe(
        env_id, algo, data, timesteps, n_envs, device, risk_free, vec, env_kwargs, hyperparams, seed, resample,
        n_paths, baselines, periods_per_year,
    )  # fmt: skip
    env_id, env_kwargs = recipe.env_id, recipe.env_kwargs
    if data.n_paths > 1:
        raise ValueError(f"cpcv needs one market history, got data of {data.n_paths} stacked paths")
    n_groups, n_test_groups = check_cpcv_groups(n_groups, n_test_groups)
    check_positive_int(episode_length, "episode_length")
    purge = check_positive_int(purge, "purge", minimum=0)
    embargo = check_positive_int(embargo, "embargo", minimum=0)
    if n_groups > data.n_steps:
        raise ValueError(f"n_groups={n_groups} (--groups) is more than the {data.n_steps} bars of the data; use fewer groups")
    edges = np.cumsum([0, *(len(g) for g in np.array_split(np.arange(data.n_steps), n_groups))]).tolist()
    groups = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    # the look-back (window + warm-up) of this env: the same for every slice, read off one env on the whole market
    lookback = probe_env(env_id, data, env_kwargs).first_t
    shortest = min(b - a for a, b in groups)
    need = lookback + 2 + purge + embargo
    if shortest < need:
        raise ValueError(
            f"n_groups={n_groups} (--groups) cuts the {data.n_steps} bars into groups of {shortest} bars, but a training "
            f"block between two test groups needs the env's look-back of {lookback} bars (window + indicator warm-up) "
            f"+ 2 (a decision and its mark) + purge={purge} + embargo={embargo} = {need} bars; use --groups "
            f"{max(2, data.n_steps // need)} or fewer, a shorter window, a smaller purge/embargo or more data"
        )
    splits_rows = list(combinatorial_purged_splits(data.n_steps, n_groups, n_test_groups, purge, embargo))
    test_groups = cpcv_test_groups(n_groups, n_test_groups)
    path_splits = cpcv_paths(n_groups, n_test_groups)
    ppy, calendar = data_calendar(data, periods_per_year)
    config: dict[str, Any] = {
        "scheme": "cpcv",
        **recipe.config(data, episode_length, hyperparams, ppy, calendar, purge, embargo),
        "n_groups": n_groups,
        "n_test_groups": n_test_groups,
        "n_splits": len(test_groups),
        "n_backtest_paths": int(path_splits.shape[0]),
        "lookback": lookback,
    }
    splits: list[CPCVSplit] = []
    for s, ((train_rows, _), chosen) in enumerate(zip(splits_rows, test_groups, strict=True)):
        blocks = contiguous_blocks(train_rows)
        train_data = stack_paths([data.slice(a, b) for a, b in blocks])
        # random-start episodes stay inside one block: at most the shortest block's usable decisions
        length = min(episode_length, min(b - a for a, b in blocks) - 1 - lookback)
        label = f"split {s + 1}/{len(test_groups)}: test groups {list(chosen)}, training blocks {blocks}"
        model, probe, train_seconds = recipe.train(train_data, cpcv_training_market, length, label)
        agents: dict[int, BacktestResult] = {}
        group_baselines: dict[int, dict[str, BacktestResult]] = {}
        for g in chosen:
            agents[g], group_baselines[g], env_config = recipe.test(model, data, probe, *groups[g])
            config.setdefault("env_config", env_config)
        model_path = _save_fold(model, probe, output_dir, f"split_{s}")
        logger.info(
            "split %d: test groups %s, sharpe %s",
            s,
            list(chosen),
            ", ".join(f"{agents[g].metrics['sharpe']:.3f}" for g in chosen),
        )
        splits.append(
            CPCVSplit(
                s,
                tuple(chosen),
                blocks,
                {g: groups[g] for g in chosen},
                agents,
                group_baselines,
                train_seconds,
                model_path,
                model,
            )
        )
    return aggregate_cpcv(splits, groups, path_splits, recipe.algo_name, config)


def aggregate_cpcv(
    splits: Sequence[CPCVSplit],
    groups: Sequence[tuple[int, int]],
    path_splits: np.ndarray,
    algo_name: str,
    config: Mapping[str, Any],
) -> CPCVResult:
    """The :class:`CPCVResult` of ``splits``: each backtest path compounded from its groups' test backtests
    (:func:`~sb3_trading.evaluation.backtest.concat_results`, groups in time order), the distribution over paths of
    every metric (``mean``, ``std`` with ``ddof=0``, ``min``, ``max``), the path Sharpe ratios themselves, and the
    share of paths on which the agent's Sharpe beat each baseline's."""
    paths: list[dict[str, BacktestResult]] = []
    names = list(splits[0].baselines[splits[0].test_groups[0]]) if splits else []
    for p in range(path_splits.shape[0]):
        pieces = [splits[int(path_splits[p, g])] for g in range(len(groups))]
        path = {"agent": concat_results([s.agent[g] for g, s in enumerate(pieces)], name=f"{algo_name}[path {p}]")}
        for name in names:
            path[name] = concat_results([s.baselines[g][name] for g, s in enumerate(pieces)], name=name)
        paths.append(path)
    sharpes = np.asarray([path["agent"].metrics["sharpe"] for path in paths], dtype=np.float64)
    aggregate: dict[str, Any] = {
        "path_sharpe": {
            "mean": float(sharpes.mean()),
            "std": float(sharpes.std()),
            "min": float(sharpes.min()),
            "max": float(sharpes.max()),
            "values": sharpes.tolist(),
        },
        "agent": {"paths": summarize_folds([path["agent"].metrics for path in paths])},
        "baselines": {name: {"paths": summarize_folds([path[name].metrics for path in paths])} for name in names},
        "agent_beats_baseline_sharpe": {
            name: float(np.mean([path["agent"].metrics["sharpe"] > path[name].metrics["sharpe"] for path in paths]))
            for name in names
        },
    }
    return CPCVResult(list(splits), list(groups), path_splits, paths, aggregate, dict(config))


@dataclass(frozen=True)
class _Recipe:
    """The settings every fold or split of one run trains and tests with."""

    algo_name: str
    algo_class: type
    params: Mapping[str, Any]
    env_id: str
    env_kwargs: Mapping[str, Any]
    n_envs: int
    seed: int
    vec_kind: str
    device: str
    timesteps: int
    resample: str
    n_paths: int
    baselines: Sequence[str]
    periods_per_year: float | None
    risk_free: float

    def config(
        self,
        data: MarketData,
        episode_length: int | None,
        hyperparams: Mapping[str, Any] | None,
        periods_per_year: float,
        calendar: str,
        purge: int,
        embargo: int,
    ) -> dict[str, Any]:
        """The run's settings every scheme reports in its JSON (the scheme adds its own)."""
        return {
            "algo": self.algo_name,
            "env_id": self.env_id,
            "timesteps": self.timesteps,
            "seed": self.seed,
            "purge": purge,
            "embargo": embargo,
            "n_envs": self.n_envs,
            "episode_length": episode_length,
            "env_kwargs": dict(self.env_kwargs),
            "hyperparams": dict(hyperparams or {}),
            "vec_env": self.vec_kind,
            "n_rows": data.n_steps,
            "periods_per_year": periods_per_year,
            "calendar": calendar,
            "risk_free": self.risk_free,
            "resample": self.resample,
            "n_paths": self.n_paths,
        }

    def train(
        self, train_data: MarketData, make_market: Callable[..., MarketData], episode_length: int, label: str
    ) -> tuple[Any, Probe, float]:
        """Steps 1 and 2 of the module docstring on ``train_data`` (one slice, or several paths): the probe
        (normaliser fitted on ``train_data`` only), the training market ``make_market(env_id, train_data, resample,
        n_paths, seed, env_kwargs)`` and ``timesteps`` of learning. :return: ``(model, probe, train_seconds)``."""
        probe = probe_env(self.env_id, train_data, self.env_kwargs)
        check_algo_env(self.algo_name, probe, self.env_id)
        market = make_market(self.env_id, train_data, self.resample, self.n_paths, self.seed, self.env_kwargs)
        kwargs = training_env_kwargs(self.env_kwargs, market, probe, episode_length)
        vec_env = make_training_vec_env(self.env_id, kwargs, self.n_envs, self.seed, self.vec_kind)
        try:
            model = make_model(self.algo_name, self.algo_class, self.params, vec_env, self.seed, self.device)
            logger.info("%s: training %s for %d steps", label, self.algo_name, self.timesteps)
            clock = time.perf_counter()
            model.learn(total_timesteps=self.timesteps)
            train_seconds = time.perf_counter() - clock
        finally:
            vec_env.close()
        return model, probe, train_seconds

    def test(
        self, model: Any, data: MarketData, probe: Probe, test_start: int, test_end: int
    ) -> tuple[BacktestResult, dict[str, BacktestResult], dict[str, Any]]:
        """Steps 3 and 4 of the module docstring on rows ``[test_start, test_end)`` of ``data``: the deterministic
        backtest and the baselines on its rows, re-indexed to rows of ``data``; plus the test env's effective config."""
        context_start = max(0, test_start - probe.first_t)
        test_data = with_lookback(data, test_start, test_end, probe.first_t)
        test_env = make_backtest_env(
            self.env_id, test_data, probe.normalizer, self.env_kwargs, feature_fits=probe.feature_fits
        )
        ppy, risk_free = self.periods_per_year, self.risk_free
        try:
            agent = backtest(
                model,
                test_env,
                deterministic=True,
                name=self.algo_name,
                periods_per_year=ppy,
                risk_free=risk_free,
                consecutive=CONSECUTIVE,
            )
            found = (
                held_out_baselines(test_env, agent, self.baselines, risk_free=risk_free, periods_per_year=ppy)
                if self.baselines
                else {}
            )
            env_config = effective_env_config(test_env)
        finally:
            test_env.close()
        agent = on_rows(agent, context_start, data)
        return agent, {name: on_rows(r, context_start, data) for name, r in found.items()}, env_config


def _save_fold(model: Any, probe: Probe, output_dir: str | Path | None, name: str) -> str | None:
    """Save ``model.zip``, ``normalizer.json`` and ``feature_fits.json`` (the fold's training fits, which
    ``sb3-trading backtest --normalizer <fold>/normalizer.json`` reads beside it) into ``output_dir/name``
    (nothing without ``output_dir``)."""
    if output_dir is None:
        return None
    fold_dir = Path(output_dir) / name
    model_path = str(save_model_atomic(model, fold_dir / "model.zip"))
    atomic_write_json(fold_dir / NORMALIZER_JSON, None if probe.normalizer is None else probe.normalizer.to_dict())
    atomic_write_json(fold_dir / FEATURE_FITS_JSON, probe.feature_fits)
    return model_path


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
    :param scheme: ``"walk-forward"`` (:func:`walk_forward`: ``n_splits``, ``train_size``, ``test_size``,
        ``expanding``) or ``"cpcv"`` (:func:`cpcv`: ``n_groups``, ``n_test_groups``, ``purge``, ``embargo``).
    :param n_groups: CPCV groups (default :data:`DEFAULT_CPCV_GROUPS`); only with ``scheme="cpcv"``.
    :param n_test_groups: CPCV test groups per split (default :data:`DEFAULT_CPCV_TEST_GROUPS`); only with
        ``scheme="cpcv"``.
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
    scheme: str = "walk-forward"
    n_groups: int | None = None
    n_test_groups: int | None = None

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
        check_choice("scheme", self.scheme, SCHEMES)
        n_groups, n_test_groups = self.n_groups, self.n_test_groups
        if self.scheme == "cpcv":
            walk_forward_only = [
                flag
                for flag, unset in (
                    ("train_size (--train-size)", self.train_size is None),
                    ("test_size (--test-size)", self.test_size is None),
                    ("expanding=False (--rolling)", self.expanding),
                )
                if not unset
            ]
            if walk_forward_only:
                raise ValueError(
                    f"{', '.join(walk_forward_only)} shape walk-forward folds, not CPCV, whose test blocks are its "
                    "groups: drop them with scheme='cpcv' (--scheme cpcv) and size the groups with --groups"
                )
            n_groups, n_test_groups = check_cpcv_groups(
                DEFAULT_CPCV_GROUPS if n_groups is None else n_groups,
                DEFAULT_CPCV_TEST_GROUPS if n_test_groups is None else n_test_groups,
            )
        elif n_groups is not None or n_test_groups is not None:
            raise ValueError(
                "n_groups (--groups) and n_test_groups (--test-groups) are CPCV settings; use them with "
                "scheme='cpcv' (--scheme cpcv), or drop them for walk-forward folds (--splits)"
            )
        return WalkForwardConfig(
            **{
                **asdict(self),
                "env_id": env_id,
                "algo": algo_name,
                "risk_free": check_annual_rate(self.risk_free),
                "resample": resample,
                "n_groups": n_groups,
                "n_test_groups": n_test_groups,
            }
        )


def run_walk_forward(config: WalkForwardConfig) -> dict[str, Any]:
    """Walk-forward train/test (``sb3-trading walk-forward``); writes into ``config.output_dir``:

    ``fold_<k>/model.zip`` and ``fold_<k>/normalizer.json`` per fold, ``walk_forward.json`` (config,
    per-fold results, aggregate) and the report (``report.json``, ``report.html``, PNGs) of the stitched
    out-of-sample paths of the agent and the baselines.

    With ``scheme="cpcv"`` (:func:`cpcv`): ``split_<s>/`` per split, ``walk_forward.json`` with ``groups``,
    ``splits`` (training blocks, test groups, each group's backtest), ``paths`` (each backtest path's splits
    and metrics) and ``aggregate`` (``path_sharpe``: mean, std, min, max and the values; per-metric summaries over
    paths), and the report of every agent path (``<algo>[path <p>]``) beside the baselines.

    :return: ``walk_forward.json``'s content plus ``report`` (the stitched report).
    """
    config = config.validate()
    env_kwargs = dict(config.env_kwargs)
    source = data_source(config.data_path)
    data = load_env_data(config.env_id, source, config.seed, env_kwargs, join=config.join)
    out = Path(config.output_dir)
    common: dict[str, Any] = {
        "timesteps": config.timesteps,
        "seed": config.seed,
        "env_kwargs": env_kwargs,
        "hyperparams": config.hyperparams,
        "purge": config.purge,
        "embargo": config.embargo,
        "n_envs": config.n_envs,
        "episode_length": config.episode_length,
        "device": config.device,
        "output_dir": out,
        "risk_free": config.risk_free,
        "vec": config.vec,
        "resample": config.resample,
        "n_paths": config.n_paths,
    }
    result: WalkForwardResult | CPCVResult
    if config.scheme == "cpcv":
        result = cpcv(
            config.algo,
            config.env_id,
            data,
            n_groups=config.n_groups,  # type: ignore[arg-type]  # validate() filled them in
            n_test_groups=config.n_test_groups,  # type: ignore[arg-type]
            **common,
        )
    else:
        result = walk_forward(
            config.algo,
            config.env_id,
            data,
            n_splits=config.n_splits,
            train_size=config.train_size,
            test_size=config.test_size,
            expanding=config.expanding,
            **common,
        )
    summary = result.to_dict()
    summary["config"]["scheme"] = config.scheme
    summary["config"]["data"] = {
        "source": describe_source(source, config.env_id, config.seed),
        "n_steps": data.n_steps,
        "assets": list(data.asset_names),
    }
    summary["config"]["timezone"] = data.timezone
    summary = jsonable(summary)
    atomic_write_json(out / "walk_forward.json", summary)
    algo_name = result.config["algo"]
    extra = {**summary["config"], "command": "walk-forward", "aggregate": summary["aggregate"]}
    if isinstance(result, CPCVResult):
        # every backtest path of the agent, then the baselines (the same on every path: they ignore the model)
        strategies = {path["agent"].name: path["agent"] for path in result.paths}
        strategies.update({k: v for k, v in result.paths[0].items() if k != "agent"})
        title = (
            f"CPCV ({config.n_groups} groups, {config.n_test_groups} tested: {len(result.splits)} splits, "
            f"{len(result.paths)} paths) of {algo_name} on {config.env_id}: out-of-sample paths"
        )
    else:
        strategies = {algo_name: result.stitched["agent"], **{k: v for k, v in result.stitched.items() if k != "agent"}}
        title = f"Walk-forward ({len(result.folds)} folds) of {algo_name} on {config.env_id}: stitched out-of-sample"
    summary["report"] = write_report(
        strategies,
        out,
        title=title,
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


__all__ = [
    "DEFAULT_CPCV_GROUPS",
    "DEFAULT_CPCV_TEST_GROUPS",
    "SCHEMES",
    "WALK_FORWARD_BASELINES",
    "CPCVResult",
    "CPCVSplit",
    "WalkForwardConfig",
    "aggregate_cpcv",
    "check_cpcv_groups",
    "contiguous_blocks",
    "cpcv",
    "cpcv_training_market",
    "run_walk_forward",
    "run_walk_forward_command",
    "walk_forward",
]
