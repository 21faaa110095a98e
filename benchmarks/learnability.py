"""Learning what is learnable: skill ratios on every env's learnable market, nothing on null markets.

    python benchmarks/learnability.py            # 7 rows x (5 seeds + 2 null markets x 10 seeds) at the zoo budget
    python benchmarks/learnability.py --quick    # CI-sized (~1 min): one rollout, 1 seed, 2 null seeds, 2 paths
    python benchmarks/learnability.py --envs MarketImpact-v0 --seeds 3 4 --null-seeds 2 3 --extend  # add seeds

Rows run apart (``--results DIR`` per process) join the committed result with ``--merge DIR/learnability.json``;
``--extend`` and ``--merge`` keep each run's wall time, date and commit, and a seed run again says whether it
reproduced its old numbers.

Every run is the main job (:func:`sb3_trading.training.train`) with the hyperparameters, ``n_envs``,
``env_kwargs`` and ``n_timesteps`` (the *zoo budget*) of ``zoo_configs/<algo>.yml`` for the env; ``--timesteps``
overrides the budget of every row. The zoo's ``episode_length`` goes to ``TrainConfig.episode_length`` (the same
training episodes), not to the env arguments, where it would also cut the held-out backtest short
(:func:`job_env_kwargs`); an env's own horizon (LeveragedPair-v0's ``max_days=30`` and ``stop_loss``) ends its
episodes, and the held-out backtest chains them over the whole slice (``backtest(consecutive=True)``).
Rows (:data:`ROWS`): PPO on MultiAsset-v0, LeveragedPair-v0, MarketImpact-v0 and YieldAllocation-v0,
MaskablePPO on MaskedTrading-v0 and SingleAsset-v0, and QuantilePPO on MultiAsset-v0.

**Learnable market** (the env's own seeded synthetic market, the one ``gym.make(id)`` trades): per seed the
report's held-out skill ratio (the agent's Sharpe over the market's signal follower's, with its 90 % bootstrap
CI), the agent's held-out total return and buy-and-hold's. Target: the median skill ratio over the seeds is
at least :data:`SKILL_TARGET` (0.5).

**Null markets** (``TrainConfig.market``: the same generator makes the run's market and the fresh training
paths of resampling, so the agent never sees an edge):

* ``driftless``: the env's generator with every predictable move switched off (:data:`DRIFTLESS`).
  MultiAsset-v0, MarketImpact-v0 and SingleAsset-v0: :func:`~sb3_trading.data.make_regime_market` with ``drift=0`` (the signal
  still tracks the hidden regime, but the regime no longer moves prices: a driftless random walk).
  LeveragedPair-v0 and MaskedTrading-v0: :func:`~sb3_trading.data.make_leveraged_pair_market` with ``drift=0``
  and ``expense_ratio=0`` (the fee is a predictable decay of both ETFs). YieldAllocation-v0:
  :func:`~sb3_trading.data.make_yield_market` with ``apy_mean=0, apy_vol=0`` (no yield: a yield is a known
  accrual, so any long-only, fully invested book would show a "significant" Sharpe from carry alone, and
  unequal yields are exactly what its signal follower exploits), ``depeg_prob=0`` (no de-peg shocks, whose
  geometric recovery the de-peg flag predicts) and ``peg_reversion=0`` (the pull back to the peg makes the
  peg noise mean-reverting, hence predictable): each price is then a driftless GBM.
* ``permuted``: the learnable market with its future permuted (:func:`permute_future`): the bars'
  close-to-close ratios (with each bar's open/high/low relative to the previous close, and its volume) are
  shuffled in time, jointly across assets, and the path rebuilt from the first close; the features stay in
  place, so the signal at ``t`` no longer says anything about the move from ``t`` to ``t + 1``. On
  YieldAllocation-v0 the APY columns are also set to 0 (the yield earned over ``t -> t + 1`` *is* the quoted
  APY of ``t``, so no permutation can hide it; see above); its de-peg flags stay in place.

Per null run: the agent's held-out Sharpe with its 90 % stationary-block-bootstrap CI
(:func:`~sb3_trading.evaluation.bootstrap.sharpe_ci` of the per-bar returns of the saved model, backtested again
on the held-out slice with the run's normaliser; the rebuilt backtest must reproduce the report's Sharpe).
Target: per env/algorithm and null market, at most 1 in 10 runs has a CI that excludes 0 (on either side);
for another number ``n`` of runs the allowance is ``ceil(n / 10)`` (:func:`null_allowance`), so 2 quick runs
may have 1. The targets are reported, never lowered here.

Writes ``benchmarks/results/learnability.md`` (machine, date, budget, seeds, wall time per row, the tables,
the targets with PASS/FAIL) and ``learnability.json`` (every run's raw numbers) beside it; each training runs
in a temporary folder.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import json
import math
import os
import platform
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch as th

import sb3_trading
from sb3_trading.backtesting import load_model
from sb3_trading.data import MarketData
from sb3_trading.data.synthetic import make_leveraged_pair_market, make_regime_market
from sb3_trading.data.yield_market import apy_column, make_yield_market
from sb3_trading.envs.market_impact import DEFAULT_N_ASSETS
from sb3_trading.evaluation.backtest import backtest, make_backtest_env
from sb3_trading.evaluation.bootstrap import sharpe_ci
from sb3_trading.features import normalizer_from_dict
from sb3_trading.manifest import git_commit as manifest_git_commit
from sb3_trading.recipe import (
    CONSECUTIVE,
    DEFAULT_EPISODE_LENGTH,
    DEFAULT_N_PATHS,
    FEATURE_FITS_JSON,
    NORMALIZER_JSON,
    MarketGenerator,
    default_market,
    load_env_data,
    read_feature_fits,
    split_train_test,
)
from sb3_trading.training import DEFAULT_EVAL_CONFIDENCE, TrainConfig, train
from sb3_trading.utils import jsonable
from sb3_trading.zoo import load_zoo_hyperparams
from sb3_trading.zoo_configs import config_path

ROOT = Path(__file__).resolve().parents[1]
ALGOS = {"ppo": "PPO", "ppo_mask": "MaskablePPO", "qppo": "QuantilePPO"}
#: (env ID, algorithm) rows of the benchmark
ROWS = (
    ("sb3_trading/MultiAsset-v0", "ppo"),
    ("sb3_trading/LeveragedPair-v0", "ppo"),
    ("sb3_trading/MaskedTrading-v0", "ppo_mask"),
    ("sb3_trading/SingleAsset-v0", "ppo_mask"),
    ("sb3_trading/MarketImpact-v0", "ppo"),
    ("sb3_trading/YieldAllocation-v0", "ppo"),
    ("sb3_trading/MultiAsset-v0", "qppo"),
)
YIELD_ENV = "sb3_trading/YieldAllocation-v0"
#: each env's generator with every predictable move switched off (see the module docstring)
DRIFTLESS: dict[str, MarketGenerator] = {
    "sb3_trading/MultiAsset-v0": functools.partial(make_regime_market, drift=0.0),
    "sb3_trading/MarketImpact-v0": functools.partial(make_regime_market, n_assets=DEFAULT_N_ASSETS, drift=0.0),
    "sb3_trading/LeveragedPair-v0": functools.partial(make_leveraged_pair_market, drift=0.0, expense_ratio=0.0),
    "sb3_trading/MaskedTrading-v0": functools.partial(make_leveraged_pair_market, drift=0.0, expense_ratio=0.0),
    "sb3_trading/SingleAsset-v0": functools.partial(make_regime_market, n_assets=1, drift=0.0),
    YIELD_ENV: functools.partial(make_yield_market, apy_mean=0.0, apy_vol=0.0, depeg_prob=0.0, peg_reversion=0.0),
}
NULL_MARKETS = ("driftless", "permuted")
#: the learnable-market target: median held-out skill ratio over the seeds
SKILL_TARGET = 0.5
#: the null-market target: at most this fraction of runs (1 in 10) may have a Sharpe CI excluding 0
NULL_RATE = 0.1
CI_ALPHA = 0.1


def null_allowance(n_runs: int) -> int:
    """Runs of ``n_runs`` allowed a Sharpe CI that excludes 0: 1 per 10, ``ceil(n_runs / 10)`` for other counts."""
    return math.ceil(round(NULL_RATE * n_runs, 9))


def permute_future(data: MarketData, seed: int) -> MarketData:
    """``data`` with its bars' moves shuffled in time and its features left in place (nothing left to predict).

    The ``T - 1`` close-to-close ratios are permuted (one permutation for all assets, so a leveraged pair's
    ETFs still follow their index), each bar's open/high/low ratio to the previous close and its volume move
    with its close, and the path is rebuilt from ``close[0]``: every bar stays a valid OHLC bar.

    :param data: a one-path market ``(T, N)``.
    :param seed: seed of the permutation.
    :return: a new ``MarketData`` with the same features, timestamps and calendar.
    """
    if data.n_paths != 1:
        raise ValueError(f"permute_future takes a one-path market, got {data.n_paths} paths")
    order = np.random.default_rng(seed).permutation(data.n_steps - 1)
    previous = data.prices[:-1]
    ratios = (data.prices[1:] / previous)[order]
    close = data.prices[0] * np.vstack([np.ones((1, data.n_assets)), np.cumprod(ratios, axis=0)])
    fields: dict[str, np.ndarray] = {}
    for name in ("open", "high", "low"):
        values = getattr(data, name)
        if values is not None:
            rebuilt = values.copy()
            rebuilt[1:] = close[:-1] * (values[1:] / previous)[order]
            fields[name] = rebuilt
    if data.volume is not None:
        volume = data.volume.copy()
        volume[1:] = data.volume[1:][order]
        fields["volume"] = volume
    return replace(data, prices=close, **fields)


def without_yield(data: MarketData) -> MarketData:
    """``data`` with every ``apy[<asset>]`` feature column set to 0 (a YieldAllocation market that pays nothing)."""
    features = data.features.copy()
    for asset in data.asset_names:
        features[:, list(data.feature_names).index(apy_column(asset))] = 0.0
    return replace(data, features=features)


class PermutedFuture:
    """``seed -> MarketData``: the env's own market of that seed with its future permuted (:func:`permute_future`),
    and on YieldAllocation-v0 without its yield (:func:`without_yield`).

    :param env_id: the env whose default market is permuted.
    :param env_kwargs: env arguments that shape that market.
    """

    def __init__(self, env_id: str, env_kwargs: dict[str, Any] | None = None) -> None:
        self.env_id = env_id
        self.env_kwargs = dict(env_kwargs or {})

    def __call__(self, seed: int) -> MarketData:
        data = permute_future(default_market(self.env_id, seed, self.env_kwargs), seed)
        return without_yield(data) if self.env_id == YIELD_ENV else data

    def __repr__(self) -> str:
        return f"PermutedFuture({self.env_id!r})"


@dataclass
class Args:
    rows: tuple[tuple[str, str], ...] = ROWS
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    null_seeds: tuple[int, ...] = tuple(range(10))
    timesteps: int | None = None  # None: each row's zoo budget
    n_paths: int = DEFAULT_N_PATHS
    eval_freq: int | None = None  # None: the job's default (EVALUATIONS_PER_RUN validation backtests per run)
    quick: bool = False
    results: Path = field(default_factory=lambda: ROOT / "benchmarks" / "results")


def zoo_entry(env_id: str, algo: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(hyperparameters, run settings)`` of the zoo config of ``algo`` on ``env_id``."""
    return load_zoo_hyperparams(algo, env_id, config_path(algo))


def job_env_kwargs(settings: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The zoo entry's ``env_kwargs`` as the main job takes them: ``(env_kwargs, TrainConfig.episode_length)``.

    The zoo's ``episode_length`` (and ``random_start``) describe the *training* episodes; given in ``env_kwargs``
    they would also cut the held-out backtest to that many bars (:func:`~sb3_trading.evaluation.make_backtest_env`
    keeps an explicit ``episode_length``), so they go to ``TrainConfig.episode_length`` instead, which trains the
    same episodes with random starts and backtests the whole held-out slice.
    """
    env_kwargs = dict(settings.get("env_kwargs") or {})
    env_kwargs.pop("random_start", None)  # the job trains with random starts and backtests without
    return env_kwargs, int(env_kwargs.pop("episode_length", DEFAULT_EPISODE_LENGTH))


def held_out_returns(
    report: dict[str, Any], market: MarketGenerator | None, env_kwargs: dict[str, Any]
) -> tuple[np.ndarray, float]:
    """The saved model's per-bar held-out returns and the data's bars per year, backtested again as the job did.

    The held-out slice is rebuilt from the run's market and split, the normaliser read from the run folder, the
    model loaded on the device it trained on. The rebuilt backtest should give the report's Sharpe; when it does
    not (a device's float differences flipping an action), a warning says so and the run's numbers keep both.
    """
    config = report["config"]
    data = load_env_data(report["env_id"], None, config["seed"], env_kwargs, generator=market)
    _, test_data = split_train_test(data, config["test_fraction"])
    state = json.loads((Path(report["run_dir"]) / NORMALIZER_JSON).read_text())
    fits = read_feature_fits(Path(report["run_dir"]) / FEATURE_FITS_JSON)
    env = make_backtest_env(report["env_id"], test_data, normalizer_from_dict(state), env_kwargs, feature_fits=fits)
    try:
        _, model = load_model(report["model_path"], report["algo"], device=report["device"])
        result = backtest(model, env, deterministic=True, risk_free=config["risk_free"], consecutive=CONSECUTIVE)
    finally:
        env.close()
    expected, got = number(report["agent"]["metrics"]["sharpe"]), float(result.metrics["sharpe"])
    if not math.isclose(expected, got, rel_tol=1e-6, abs_tol=1e-9):
        warnings.warn(
            f"the rebuilt held-out backtest of {report['run_dir']} gives Sharpe {got}, the report {expected}", stacklevel=2
        )
    return np.asarray(result.returns, dtype=np.float64), float(result.periods_per_year)


def run_one(
    args: Args, env_id: str, algo: str, seed: int, tmp: str, market: MarketGenerator | None, tag: str
) -> dict[str, Any]:
    """One training run of the main job with the zoo entry; its report."""
    hyperparams, settings = zoo_entry(env_id, algo)
    budget = int(float(settings["n_timesteps"])) if args.timesteps is None else args.timesteps
    env_kwargs, episode_length = job_env_kwargs(settings)
    return train(
        TrainConfig(
            env_id=env_id,
            algo=algo,
            timesteps=budget,
            seed=seed,
            n_envs=int(settings.get("n_envs", 8)),
            env_kwargs=env_kwargs,
            episode_length=episode_length,
            hyperparams=hyperparams,
            output_dir=tmp,
            run_name=f"{algo}_{env_id.split('/')[1]}_{tag}_{seed}",
            progress_bar=False,
            n_paths=args.n_paths,
            eval_freq=args.eval_freq,
            market=market,
        )
    )


def number(value: Any) -> float:
    """A report number as a float (the report's JSON writes NaN as ``None``)."""
    return math.nan if value is None else float(value)


def learnable_run(report: dict[str, Any]) -> dict[str, Any]:
    """The numbers of one learnable-market run: held-out skill ratio (and CI), agent and buy-and-hold returns."""
    skill = report.get("skill_ratio") or {}
    return {
        "seed": report["config"]["seed"],
        "skill": number(skill.get("estimate")),
        "skill_low": number(skill.get("low")),
        "skill_high": number(skill.get("high")),
        "skill_reason": skill.get("reason") if skill else "no reference policy",
        "agent_return": number(report["agent"]["metrics"]["total_return"]),
        "agent_sharpe": number(report["agent"]["metrics"]["sharpe"]),
        "buy_and_hold_return": number(report["baselines"]["buy_and_hold"]["metrics"]["total_return"]),
        "reference_sharpe": number(skill.get("reference_sharpe")),
        "bars": int(report["agent"]["end_t"]) - int(report["agent"]["start_t"]),
        "timesteps": report["trained_timesteps"],
        "device": report["device"],
    }


def null_run(report: dict[str, Any], market: MarketGenerator, env_kwargs: dict[str, Any], seed: int) -> dict[str, Any]:
    """The numbers of one null-market run: held-out Sharpe, its 90 % block-bootstrap CI, and whether it excludes 0
    (``1`` above, ``-1`` below, ``0`` no)."""
    returns, periods_per_year = held_out_returns(report, market, env_kwargs)
    ci = sharpe_ci(returns, periods_per_year, alpha=CI_ALPHA, seed=seed)
    side = 1 if ci.low > 0 else -1 if ci.high < 0 else 0
    return {
        "seed": seed,
        "sharpe": ci.estimate,
        "report_sharpe": number(report["agent"]["metrics"]["sharpe"]),
        "low": ci.low,
        "high": ci.high,
        "excludes_zero": side,
        "agent_return": number(report["agent"]["metrics"]["total_return"]),
        "buy_and_hold_return": number(report["baselines"]["buy_and_hold"]["metrics"]["total_return"]),
        "bars": int(returns.size),
    }


def null_markets(env_id: str, env_kwargs: dict[str, Any]) -> dict[str, MarketGenerator]:
    """The row's null markets by name (:data:`NULL_MARKETS`)."""
    return {"driftless": DRIFTLESS[env_id], "permuted": PermutedFuture(env_id, env_kwargs)}


def describe(market: MarketGenerator) -> str:
    """A readable name of a null-market generator (``make_regime_market(drift=0.0)``, ``PermutedFuture(...)``)."""
    if isinstance(market, functools.partial):
        arguments = ", ".join(f"{key}={value!r}" for key, value in market.keywords.items())
        return f"{market.func.__name__}({arguments})"
    return repr(market)


def run(args: Args) -> dict[str, Any]:
    """Train every row on its learnable and null markets; the raw per-run numbers."""
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for env_id, algo in args.rows:
            start = time.perf_counter()
            _, settings = zoo_entry(env_id, algo)
            env_kwargs, _ = job_env_kwargs(settings)
            learnable = []
            for seed in args.seeds:
                since = time.perf_counter()
                learnable.append(stamped(learnable_run(run_one(args, env_id, algo, seed, tmp, None, "learnable")), since))
            learnable_seconds = time.perf_counter() - start
            nulls: dict[str, list[dict[str, Any]]] = {}
            for name, market in null_markets(env_id, env_kwargs).items():
                nulls[name] = []
                for seed in args.null_seeds:
                    since = time.perf_counter()
                    report = run_one(args, env_id, algo, seed, tmp, market, name)
                    nulls[name].append(stamped(null_run(report, market, env_kwargs, seed), since))
            rows.append(
                {
                    "env_id": env_id,
                    "algo": algo,
                    "timesteps": int(float(settings["n_timesteps"])) if args.timesteps is None else args.timesteps,
                    "n_envs": int(settings.get("n_envs", 8)),
                    "learnable": learnable,
                    "null": nulls,
                    "null_markets": {name: describe(market) for name, market in null_markets(env_id, env_kwargs).items()},
                    "learnable_seconds": learnable_seconds,
                    "seconds": time.perf_counter() - start,
                    "date": now(),
                    "commit": git_commit(),
                }
            )
            print(f"{env_id} / {algo}: {rows[-1]['seconds']:.0f} s", flush=True)
    return {
        "date": now(),
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "torch_threads": th.get_num_threads(),
            "cuda": th.cuda.get_device_name(0) if th.cuda.is_available() else None,
            "sb3_trading": sb3_trading.__version__,
        },
        "quick": args.quick,
        "seeds": list(args.seeds),
        "null_seeds": list(args.null_seeds),
        "n_paths": args.n_paths,
        "eval_freq": args.eval_freq,
        "timesteps_override": args.timesteps,
        "targets": {"skill_ratio_median": SKILL_TARGET, "null_ci_exclusion_rate": NULL_RATE, "ci_alpha": CI_ALPHA},
        "rows": rows,
    }


def stamped(numbers: dict[str, Any], since: float) -> dict[str, Any]:
    """The numbers of one run with its wall time (from ``since``, a :func:`time.perf_counter`), date and commit, which
    it keeps when ``--extend`` merges runs of several invocations into one row."""
    return {**numbers, "seconds": time.perf_counter() - since, "date": now(), "commit": git_commit()}


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def git_commit() -> str:
    """The checkout's short commit (with ``+`` when it has uncommitted changes), or ``"unknown"``."""
    commit = manifest_git_commit(ROOT)
    return "unknown" if commit is None else commit[:7] + ("+" if commit.endswith("+") else "")


def merge_rows(previous: dict[str, Any], results: dict[str, Any], extend: bool = False) -> dict[str, Any]:
    """``results`` with the rows of ``previous`` it did not rerun kept (in :data:`ROWS` order, each with its own
    ``date`` and ``commit``): ``--update`` reruns some rows of a committed result.

    With ``extend`` a rerun row also keeps the previous row's runs of the seeds it did not rerun (``--extend``: add
    seeds to a row; a seed run again replaces its old run, and :func:`compare_runs` says whether it reproduced it).
    Every run then carries its own wall time, date and commit (:func:`with_run_stamps`)."""
    # a row saved without its own date (older files) is dated by its file, as the markdown has always shown it
    old = {(row["env_id"], row["algo"]): {"date": previous.get("date"), **row} for row in previous.get("rows", [])}
    new = {(row["env_id"], row["algo"]): row for row in results["rows"]}
    if extend:
        new = {key: extend_row(old[key], row) if key in old else row for key, row in new.items()}
    kept = [row for key, row in old.items() if key not in new]
    order = {key: k for k, key in enumerate(ROWS)}
    rows = sorted([*kept, *new.values()], key=lambda row: order.get((row["env_id"], row["algo"]), len(order)))
    return {**results, "rows": rows}


def with_run_stamps(row: dict[str, Any]) -> dict[str, Any]:
    """``row`` with a wall time, date and commit on every run: a run recorded before runs carried their own gets its
    row's (the mean wall time of the row's learnable runs, or of its null runs)."""
    n_null = sum(len(runs) for runs in row["null"].values())
    null_seconds = row["seconds"] - row["learnable_seconds"]
    stamp = {"date": row.get("date"), "commit": row.get("commit", "unknown")}
    learnable = [{"seconds": row["learnable_seconds"] / max(len(row["learnable"]), 1), **stamp, **r} for r in row["learnable"]]
    null = {
        name: [{"seconds": null_seconds / max(n_null, 1), **stamp, **r} for r in runs] for name, runs in row["null"].items()
    }
    return {**row, "learnable": learnable, "null": null}


def merge_runs(old: list[dict[str, Any]], new: list[dict[str, Any]], label: str) -> list[dict[str, Any]]:
    """The runs of ``old`` and ``new`` by seed (``new`` replacing a seed of ``old``), sorted by seed."""
    by_seed = {r["seed"]: r for r in old}
    for r in new:
        if r["seed"] in by_seed:
            compare_runs(by_seed[r["seed"]], r, label)
        by_seed[r["seed"]] = r
    return [by_seed[seed] for seed in sorted(by_seed)]


#: the numbers two runs of one seed must share to count as a reproduction
REPRODUCED = ("skill", "agent_sharpe", "agent_return", "sharpe", "low", "high")


def compare_runs(old: dict[str, Any], new: dict[str, Any], label: str) -> None:
    """Print whether ``new`` (a rerun of ``old``'s seed at another commit) reproduced ``old``'s numbers."""
    keys = [key for key in REPRODUCED if key in old and key in new]
    same = all(
        math.isclose(number(old[key]), number(new[key]), rel_tol=1e-9, abs_tol=1e-12)
        or (math.isnan(number(old[key])) and math.isnan(number(new[key])))
        for key in keys
    )
    numbers = ", ".join(f"{key} {number(old[key]):+.4f} -> {number(new[key]):+.4f}" for key in keys)
    print(
        f"{label} seed {new['seed']}: {'reproduced' if same else 'DIFFERS'} "
        f"({old.get('commit', 'unknown')} -> {new.get('commit', 'unknown')}: {numbers})",
        flush=True,
    )


def extend_row(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """One row of the runs of ``old`` and ``new`` (same env, algorithm and budget), by seed."""
    if (old["timesteps"], old["n_envs"]) != (new["timesteps"], new["n_envs"]):
        raise SystemExit(
            f"--extend: {new['env_id']} / {new['algo']} ran {new['timesteps']:,} timesteps x {new['n_envs']} envs, the "
            f"kept row {old['timesteps']:,} x {old['n_envs']}: rerun the whole row without --extend"
        )
    old, new = with_run_stamps(old), with_run_stamps(new)
    label = f"{new['env_id']} / {new['algo']}"
    learnable = merge_runs(old["learnable"], new["learnable"], f"{label} learnable")
    null = {
        name: merge_runs(old["null"].get(name, []), new["null"].get(name, []), f"{label} {name}")
        for name in dict.fromkeys([*old["null"], *new["null"]])
    }
    runs = [*learnable, *(r for rs in null.values() for r in rs)]
    learnable_seconds = sum(r["seconds"] for r in learnable)
    return {
        **new,
        "learnable": learnable,
        "null": null,
        "learnable_seconds": learnable_seconds,
        "seconds": learnable_seconds + sum(r["seconds"] for rs in null.values() for r in rs),
        "date": max(r["date"] for r in runs if r["date"]),
        "commit": ", ".join(dict.fromkeys(sorted(r["commit"] for r in runs))),
    }


# ----------------------------------------------------------------------------- summaries and the markdown
def skill_summary(row: dict[str, Any]) -> dict[str, Any]:
    skills = np.array([r["skill"] for r in row["learnable"]], dtype=np.float64)
    finite = skills[np.isfinite(skills)]
    median = float(np.median(finite)) if finite.size else math.nan
    q25, q75 = (float(q) for q in np.percentile(finite, [25, 75])) if finite.size else (math.nan, math.nan)
    return {
        "median": median,
        "q25": q25,
        "q75": q75,
        "undefined": int(skills.size - finite.size),
        # a row run with --seeds and no seed (null runs only, to --merge) has no learnable runs yet
        "agent_return": float(np.median([r["agent_return"] for r in row["learnable"]])) if row["learnable"] else math.nan,
        "buy_and_hold_return": (
            float(np.median([r["buy_and_hold_return"] for r in row["learnable"]])) if row["learnable"] else math.nan
        ),
        # a median over a minority of the seeds is no verdict: most seeds must have a defined skill ratio
        "passed": bool(np.isfinite(median) and median >= SKILL_TARGET and 2 * finite.size > skills.size),
    }


def null_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    sides = [r["excludes_zero"] for r in runs]
    excluded = sum(1 for s in sides if s != 0)
    allowed = null_allowance(len(runs))
    return {
        "runs": len(runs),
        "excluded": excluded,
        "above": sides.count(1),
        "below": sides.count(-1),
        "allowed": allowed,
        "median_sharpe": float(np.median([r["sharpe"] for r in runs])) if runs else math.nan,
        "passed": excluded <= allowed,
    }


def name_of(row: dict[str, Any]) -> tuple[str, str]:
    return row["env_id"].split("/")[1], ALGOS.get(row["algo"], row["algo"])


def verdict(passed: bool) -> str:
    return "PASS" if passed else "FAIL"


def run_stamp(run: dict[str, Any]) -> str:
    """``date commit`` of one run of :func:`with_run_stamps`."""
    return f"{(run['date'] or '')[:10]} {run['commit']}"


def markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    budgets = sorted({row["timesteps"] for row in results["rows"]})
    budget = (
        f"{results['timesteps_override']:,} timesteps per run (overriding the zoo budget)"
        if results["timesteps_override"] is not None
        else "the zoo budget (n_timesteps of zoo_configs/<algo>.yml): " + ", ".join(f"{b:,}" for b in budgets) + " timesteps"
    )
    lines = [
        "# Learning what is learnable (held-out skill on learnable markets, nothing on null markets)",
        "",
        f"{'**Quick run** (a smoke test, not a result). ' if results['quick'] else ''}"
        f"Date {results['date']} (rows kept by --update show their own run date and commit; a row extended with "
        "seeds of other runs, --extend or --merge, lists the commits of its runs, and each run's date and commit are in "
        "the per-seed tables); "
        f"{machine['platform']}, python {machine['python']}, {machine['cpu_count']} CPUs, "
        f"torch threads {machine['torch_threads']}, GPU {machine['cuda'] or 'none'}; sb3_trading {machine['sb3_trading']}.",
        f"Budget: {budget}; seeds {results['seeds']} on the learnable market (the latest run's; each row's own are in "
        f"its tables), null seeds {results['null_seeds']} on "
        f"each null market; {results['n_paths']} training paths (resample=auto); validation every "
        f"{results['eval_freq'] or 'timesteps / 10'} steps and the main job's model selection (from 3490634 on its "
        f"validation gate, eval_confidence {DEFAULT_EVAL_CONFIDENCE}: the untrained policy unless a checkpoint's "
        "validation PSR reaches it, since 458817c only where the untrained policy is flat on validation; runs of "
        "earlier commits, and rows whose untrained policy is not flat, keep the best validation Sharpe); zoo "
        "hyperparameters, n_envs and env_kwargs.",
        "Generated by `benchmarks/learnability.py` (its docstring defines the null markets); raw numbers in "
        "`learnability.json`.",
        "",
        "## Targets",
        "",
        f"- every env/algorithm's median held-out skill ratio (agent Sharpe / signal follower's) >= {SKILL_TARGET}, "
        "over the seeds whose ratio is defined (most of them must be)",
        f"- null markets: per env/algorithm and null market, at most 1 in 10 runs has a held-out Sharpe whose "
        f"{1 - CI_ALPHA:.0%} block-bootstrap CI excludes 0 (either side); for n runs, ceil(n / 10) allowed",
        "",
        "| env | algorithm | learnable: median skill >= 0.5 | null driftless | null permuted | run (date, commit) |",
        "|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        env, algo = name_of(row)
        skill = skill_summary(row)
        nulls = {name: null_summary(runs) for name, runs in row["null"].items()}
        cells = [f"{verdict(skill['passed'])} ({skill['median']:.2f})"]
        cells += [f"{verdict(s['passed'])} ({s['excluded']}/{s['runs']}, allowed {s['allowed']})" for s in nulls.values()]
        cells.append(f"{row.get('date', results['date'])[:10]} {row.get('commit', 'unknown')}")
        lines.append(f"| {env} | {algo} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Learnable markets",
        "",
        "Median and IQR over seeds of the held-out skill ratio; median held-out total return of the agent and of "
        "buy-and-hold; wall time of the row's learnable runs and of the whole row (null runs included; the sum of its "
        "runs' times when they come from several invocations).",
        "",
        "| env | algorithm | timesteps | seeds | skill ratio median | skill IQR | agent return | buy-and-hold return "
        "| wall (learnable / row) | target |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        env, algo = name_of(row)
        s = skill_summary(row)
        undefined = f" ({s['undefined']} undefined)" if s["undefined"] else ""
        lines.append(
            f"| {env} | {algo} | {row['timesteps']:,} | {len(row['learnable'])}{undefined} | {s['median']:.2f} | "
            f"[{s['q25']:.2f}, {s['q75']:.2f}] | {s['agent_return']:+.3f} | {s['buy_and_hold_return']:+.3f} | "
            f"{row['learnable_seconds']:.0f} s / {row['seconds']:.0f} s | {verdict(s['passed'])} |"
        )
    lines += [
        "",
        "Per seed (skill ratio with its 90 % bootstrap CI):",
        "",
        "| env | algorithm | seed | skill ratio [90 % CI] | agent Sharpe | agent return | buy-and-hold return "
        "| held-out bars | run (date, commit) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in map(with_run_stamps, results["rows"]):
        env, algo = name_of(row)
        for r in row["learnable"]:
            if r["skill"] is None or not math.isfinite(r["skill"]):  # NaN, or None as JSON stores it (--update)
                skill = f"undefined ({r['skill_reason']})"
            else:
                skill = f"{r['skill']:.2f} [{r['skill_low']:.2f}, {r['skill_high']:.2f}]"
            lines.append(
                f"| {env} | {algo} | {r['seed']} | {skill} | {r['agent_sharpe']:+.2f} | {r['agent_return']:+.3f} | "
                f"{r['buy_and_hold_return']:+.3f} | {r['bars']} | {run_stamp(r)} |"
            )
    lines += [
        "",
        "## Null markets",
        "",
        "Held-out Sharpe of the agent trained and tested on a market with nothing to learn; runs whose "
        f"{1 - CI_ALPHA:.0%} CI excludes 0 (above / below), out of the runs, against the allowance.",
        "",
        "| env | algorithm | null market | runs | CI excludes 0 (above / below) | allowed | median Sharpe | target |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in results["rows"]:
        env, algo = name_of(row)
        for name, runs in row["null"].items():
            s = null_summary(runs)
            lines.append(
                f"| {env} | {algo} | {name} | {s['runs']} | {s['excluded']} ({s['above']} / {s['below']}) | "
                f"{s['allowed']} | {s['median_sharpe']:+.2f} | {verdict(s['passed'])} |"
            )
    lines += [
        "",
        "Per seed (held-out Sharpe with its 90 % CI):",
        "",
        "| env | algorithm | null market | seed | Sharpe [90 % CI] | CI excludes 0 | agent return | buy-and-hold return "
        "| held-out bars | run (date, commit) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in map(with_run_stamps, results["rows"]):
        env, algo = name_of(row)
        for name, runs in row["null"].items():
            for r in runs:
                side = {1: "yes (above)", -1: "yes (below)", 0: "no"}[r["excludes_zero"]]
                lines.append(
                    f"| {env} | {algo} | {name} | {r['seed']} | {r['sharpe']:+.2f} [{r['low']:+.2f}, {r['high']:+.2f}] | "
                    f"{side} | {r['agent_return']:+.3f} | {r['buy_and_hold_return']:+.3f} | {r['bars']} | "
                    f"{run_stamp(r)} |"
                )
    return "\n".join(lines) + "\n"


def select_rows(envs: list[str] | None, algos: list[str] | None) -> tuple[tuple[str, str], ...]:
    """:data:`ROWS` filtered by env (ID or short name) and algorithm."""
    rows = tuple(
        (env_id, algo)
        for env_id, algo in ROWS
        if (not envs or env_id in envs or env_id.split("/")[1] in envs) and (not algos or algo in algos)
    )
    if not rows:
        raise SystemExit(f"no row matches --envs {envs} --algos {algos}; rows: {ROWS}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one rollout, 1 seed, 2 null seeds, 2 paths; results/quick/")
    parser.add_argument("--results", type=Path, default=None, help="write learnability.md and .json here instead")
    parser.add_argument("--timesteps", type=int, default=None, help="override every row's zoo budget")
    parser.add_argument("--envs", nargs="+", default=None, help="only these envs (IDs or names like MultiAsset-v0)")
    parser.add_argument("--algos", nargs="+", default=None, choices=sorted(ALGOS), help="only these algorithms")
    parser.add_argument(
        "--seeds", nargs="*", type=int, default=None, help="learnable-market seeds (default 0 1 2 3 4; none: no run)"
    )
    parser.add_argument("--null-seeds", nargs="*", type=int, default=None, help="null-market seeds (default 0..9)")
    parser.add_argument("--n-paths", type=int, default=None, help=f"training paths per run (default {DEFAULT_N_PATHS})")
    parser.add_argument(
        "--update", action="store_true", help="keep the rows of the existing learnability.json that this run does not rerun"
    )
    parser.add_argument(
        "--extend",
        action="store_true",
        help="--update, and a rerun row keeps its old runs of the seeds not given (add seeds to a row)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        default=None,
        metavar="JSON",
        help="train nothing: add the runs of these learnability.json files (runs of other invocations, e.g. in "
        "parallel with --results elsewhere) to the results' learnability.json, as --extend would",
    )
    cli = parser.parse_args()
    args = Args(rows=select_rows(cli.envs, cli.algos))
    if cli.quick:
        # one rollout per run (the zoo n_steps x n_envs, about 2,000 steps) and validation every 2,048 steps (not 10
        # per run): the validation backtests dominate a tiny run
        quick = {"seeds": (0,), "null_seeds": (0, 1), "timesteps": 1_024, "n_paths": 2, "eval_freq": 2_048}
        args = replace(args, **quick, quick=True, results=args.results / "quick")
    overrides = {"seeds": cli.seeds, "null_seeds": cli.null_seeds, "timesteps": cli.timesteps, "n_paths": cli.n_paths}
    args = replace(args, **{k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items() if v is not None})
    if cli.results is not None:
        args = replace(args, results=cli.results)
    previous = args.results / "learnability.json"
    if cli.merge:
        results = json.loads(previous.read_text())
        for path in cli.merge:
            results = merge_rows(results, json.loads(path.read_text()), extend=True)
    else:
        results = run(args)
        if (cli.update or cli.extend) and previous.is_file():
            results = merge_rows(json.loads(previous.read_text()), results, extend=cli.extend)
    text = markdown(results)
    print(text)
    args.results.mkdir(parents=True, exist_ok=True)
    (args.results / "learnability.md").write_text(text)
    (args.results / "learnability.json").write_text(json.dumps(jsonable(results), indent=2) + "\n")


if __name__ == "__main__":
    main()
