"""The logic of ``sb3-trading backtest`` and ``sb3-trading walk-forward``, as library functions.

``cli.py`` only adds the subparsers (:func:`add_backtest_arguments`, :func:`add_walk_forward_arguments`)
and calls :func:`backtest_from_args` / :func:`walk_forward_from_args`, which return the report and
print nothing; :func:`format_summary` renders the table the CLI prints.

The feature normaliser of a backtest
------------------------------------
A model's observations are normalised with statistics of its *training* data. Fitting the
normaliser on the backtest data itself would leak the test period's means and volatilities into
every observation, so ``backtest`` never does that. It takes the normaliser from, in order:

1. ``--normalizer FILE.json`` (a normaliser's ``to_dict()``, as walk-forward folds save it);
2. ``--train-data FILE``: fitted on that whole file; the whole ``--data`` is backtested;
3. otherwise the chronological split of ``sb3-trading train``: fitted on the leading
   ``1 - test_fraction`` of the data, and the trailing ``test_fraction`` is backtested. With the
   same data, env, env arguments and ``--test-fraction`` as the training run (and, for synthetic
   data, the same ``--seed``), this reproduces the held-out backtest of ``sb3-trading train``.

Data, calendar, risk-free rate
------------------------------
``--data`` takes one or several values (files, a folder, a glob; ``synthetic``), joined on their
dates as ``--join`` says. Metrics are annualised with the data's calendar
(``MarketData.periods_per_year``) and Sharpe/Sortino are on returns in excess of the annual
``--risk-free`` rate, per bar ``(1 + rate) ** (1 / periods_per_year) - 1``; every report and the
printed summary state both.
"""

from __future__ import annotations

import argparse
import json
import logging
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym

from sb3_trading.data import MarketData
from sb3_trading.evaluation.backtest import BASELINES, backtest, env_baselines, make_backtest_env
from sb3_trading.evaluation.report import describe_calendar, write_report
from sb3_trading.features import CausalNormalizer, FeatureNormalizer, normalizer_from_dict

logger = logging.getLogger(__name__)

SYNTHETIC = "synthetic"
DEFAULT_TEST_FRACTION = 0.2


# ----------------------------------------------------------------------------- shared arguments
def add_data_arguments(parser: argparse.ArgumentParser, default: Any = None, what: str = "default: synthetic") -> None:
    """``--data PATH [PATH ...]`` (files, folders or globs of CSV/parquet; ``synthetic``) and ``--join``."""
    parser.add_argument(
        "--data",
        dest="data_path",
        nargs="+",
        default=default,
        metavar="PATH",
        help="market data: a CSV/parquet file, several files, a folder or a glob (quoted) of them, joined on their "
        f"dates; 'synthetic' for the env's seeded synthetic market ({what})",
    )
    parser.add_argument(
        "--join",
        choices=("exact", "inner"),
        default="exact",
        help="how several files join on their dates: exact (a date missing in one file is an error) or inner "
        "(keep the common dates) (default: %(default)s)",
    )


def add_risk_free_argument(parser: argparse.ArgumentParser) -> None:
    """``--risk-free RATE``: the annual risk-free rate of Sharpe and Sortino (a fraction)."""
    parser.add_argument(
        "--risk-free",
        type=float,
        default=0.0,
        metavar="RATE",
        help="annual risk-free rate as a fraction, e.g. 0.04 for 4%%/year; Sharpe and Sortino are on returns in "
        "excess of (1 + RATE) ** (1 / bars_per_year) - 1 per bar (default: %(default)s)",
    )


def data_arg(values: Sequence[str] | str | None) -> str | list[str] | None:
    """``--data``'s values as the loader takes them: ``None``, one string, or a list of several."""
    if values is None or isinstance(values, str):
        return values
    values = list(values)
    return values[0] if len(values) == 1 else values


# ----------------------------------------------------------------------------- models
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
            f"and {env.action_space}; pass the training run's --env and --env-kwargs (e.g. window=...)"
        )


def _load_data(
    data_path: str | Sequence[str] | None,
    env_id: str,
    seed: int,
    env_kwargs: Mapping[str, Any],
    join: str = "exact",
) -> tuple[MarketData, str | list[str]]:
    """``(data, source)``: the market (``None``/``"synthetic"``: the env's seeded synthetic one) and its label."""
    from sb3_trading.training import data_source, load_env_data

    source = data_source(data_path)
    if source is None:
        return load_env_data(env_id, None, seed, dict(env_kwargs)), f"{env_id} synthetic market (seed={seed})"
    return load_env_data(env_id, source, seed, dict(env_kwargs), join=join), source


def _calendar_config(data: MarketData, risk_free: float) -> dict[str, Any]:
    """The calendar and risk-free entries a command's config records."""
    return {
        "periods_per_year": float(data.periods_per_year),
        "calendar": data.calendar,
        "timezone": data.timezone,
        "risk_free": float(risk_free),
    }


# ----------------------------------------------------------------------------- backtest
def run_backtest_command(
    model_path: str | Path,
    data_path: str | Sequence[str] | None = None,
    env_id: str | None = None,
    algo: str | None = None,
    output_dir: str | Path | None = None,
    env_kwargs: Mapping[str, Any] | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    train_data_path: str | None = None,
    normalizer_path: str | Path | None = None,
    seed: int = 0,
    device: str = "cpu",
    baselines: Sequence[str] = (*BASELINES, "random"),
    n_boot: int = 1000,
    alpha: float = 0.1,
    plots: bool = True,
    title: str | None = None,
    risk_free: float = 0.0,
    join: str = "exact",
) -> dict[str, Any]:
    """Backtest a saved model on held-out data and write the report (``sb3-trading backtest``).

    :param model_path: the SB3 ``.zip``.
    :param data_path: the market: a CSV/parquet file, a folder or a glob, or a list of them (joined on their
        dates); ``None`` or ``"synthetic"``: the env's seeded synthetic market.
    :param env_id: registered env ID (default ``sb3_trading/MultiAsset-v0``); the model must fit its spaces.
    :param algo: algorithm name; default: inferred from the zip (:func:`infer_algo`).
    :param output_dir: report folder (default ``<model folder>/backtest``).
    :param env_kwargs: env arguments (as in training).
    :param test_fraction: without a normaliser source: backtest the trailing fraction, fit on the rest.
    :param train_data_path: fit the normaliser on this market (file(s), folder, glob) and backtest all of the data.
    :param normalizer_path: JSON of a normaliser's ``to_dict()``; then all of the data is backtested.
    :param seed: seed of the synthetic market and of the random baseline.
    :param device: torch device for the model.
    :param baselines: any of ``cash``, ``buy_and_hold``, ``equal_weight``, ``random``.
    :param n_boot: bootstrap resamples for the CIs (``0``: none).
    :param alpha: ``1 -`` confidence level.
    :param plots: write the PNG plots (needs matplotlib).
    :param title: report title.
    :param risk_free: **annual** risk-free rate (fraction, ``0.04`` = 4 %/year) of the Sharpe and Sortino ratios.
    :param join: how several files join on their dates (``exact`` or ``inner``).
    :return: the report (``report.json``'s content plus ``files``).
    """
    from sb3_trading.data.calendar import check_annual_rate
    from sb3_trading.envs.registration import check_env_id
    from sb3_trading.training import DEFAULT_ENV_ID, split_train_test

    env_id = check_env_id(env_id or DEFAULT_ENV_ID)
    risk_free = check_annual_rate(risk_free)
    env_kwargs = dict(env_kwargs or {})
    env_kwargs.pop("normalizer", None)
    if normalizer_path is not None and train_data_path is not None:
        raise ValueError("give either a normaliser file or training data to fit it on, not both")
    algo_name, model = load_model(model_path, algo, device)
    data, source = _load_data(data_path, env_id, seed, env_kwargs, join)

    if normalizer_path is not None:
        state = json.loads(Path(normalizer_path).read_text())
        normalizer: FeatureNormalizer | CausalNormalizer | None = normalizer_from_dict(state)
        test_data, normalizer_source = data, f"file {normalizer_path}"
    elif train_data_path is not None:
        train_data, _ = _load_data(train_data_path, env_id, seed, env_kwargs, join)
        probe = gym.make(env_id, data=train_data, normalizer="fit", **env_kwargs)
        normalizer, test_data, normalizer_source = probe.unwrapped.normalizer, data, f"fitted on {train_data_path}"
        probe.close()
    else:
        train_data, test_data = split_train_test(data, test_fraction)
        probe = gym.make(env_id, data=train_data, normalizer="fit", **env_kwargs)
        normalizer = probe.unwrapped.normalizer
        probe.close()
        normalizer_source = f"fitted on the leading {1 - test_fraction:.0%} ({train_data.n_steps} rows)"

    env = make_backtest_env(env_id, test_data, normalizer, env_kwargs)
    try:
        _check_spaces(model, env, env_id)
        agent = backtest(model, env, deterministic=True, name=algo_name, risk_free=risk_free)
        named = tuple(name for name in baselines if name != "random")
        random_seed = seed if "random" in baselines else None
        start, stop = int(agent.t[0]), int(agent.t[-1])
        results = {algo_name: agent, **env_baselines(env, start, stop, named, random_seed=random_seed, risk_free=risk_free)}
    finally:
        env.close()

    out = Path(output_dir) if output_dir is not None else Path(model_path).resolve().parent / "backtest"
    extra = {
        "command": "backtest",
        "model_path": str(model_path),
        "algo": algo_name,
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "data": {
            "source": source,
            "n_steps": data.n_steps,
            "assets": list(data.asset_names),
            "backtest_rows": test_data.n_steps,
        },
        **_calendar_config(data, risk_free),
        "normalizer": normalizer_source,
        "test_fraction": test_fraction if normalizer_path is None and train_data_path is None else None,
        "seed": seed,
    }
    title = title or f"Backtest of {algo_name} on {env_id}"
    return write_report(results, out, title=title, extra=extra, n_boot=n_boot, alpha=alpha, seed=seed, plots=plots)


def add_backtest_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``sb3-trading backtest``'s arguments to ``parser`` (a subparser)."""
    parser.add_argument("model_path", metavar="MODEL.zip", help="a saved SB3 model")
    add_data_arguments(parser)
    parser.add_argument("--env", default=None, help="registered env ID the model was trained on (default: MultiAsset-v0)")
    parser.add_argument("--algo", default=None, help="ppo, ppo_mask, ppo_lstm, qppo, qppo_mask (default: read from the zip)")
    parser.add_argument("--output-dir", default=None, help="report folder (default: <model folder>/backtest)")
    parser.add_argument("--env-kwargs", nargs="*", metavar="KEY=VALUE", help="env arguments used in training, e.g. window=5")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--test-fraction",
        type=float,
        default=DEFAULT_TEST_FRACTION,
        help="backtest this trailing fraction; the normaliser is fitted on the rest (default: %(default)s, as train)",
    )
    source.add_argument(
        "--train-data",
        nargs="+",
        metavar="PATH",
        default=None,
        help="fit the normaliser on this market (file(s), folder, glob) and backtest all of --data",
    )
    source.add_argument(
        "--normalizer", default=None, help="normalizer.json (a normaliser's to_dict()); backtest all of --data"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic market and the random baseline")
    parser.add_argument("--device", default="cpu", help="torch device for the model (default: %(default)s)")
    add_risk_free_argument(parser)
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs (0: none)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")
    return parser


def backtest_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`run_backtest_command` from :func:`add_backtest_arguments`' namespace."""
    from sb3_trading.cli import parse_kwargs

    return run_backtest_command(
        args.model_path,
        data_path=data_arg(args.data_path),
        env_id=args.env,
        algo=args.algo,
        output_dir=args.output_dir,
        env_kwargs=parse_kwargs(args.env_kwargs, "--env-kwargs"),
        test_fraction=args.test_fraction,
        train_data_path=data_arg(args.train_data),
        normalizer_path=args.normalizer,
        seed=args.seed,
        device=args.device,
        n_boot=args.n_boot,
        plots=not args.no_plots,
        risk_free=args.risk_free,
        join=args.join,
    )


# ----------------------------------------------------------------------------- walk-forward
def run_walk_forward_command(
    env_id: str | None = None,
    algo: str = "ppo",
    data_path: str | Sequence[str] | None = None,
    n_splits: int | None = 3,
    timesteps: int = 10_000,
    seed: int = 0,
    output_dir: str | Path = "runs/walk_forward",
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
    n_boot: int = 1000,
    alpha: float = 0.1,
    plots: bool = True,
    risk_free: float = 0.0,
    join: str = "exact",
) -> dict[str, Any]:
    """Walk-forward train/test (``sb3-trading walk-forward``); writes into ``output_dir``:

    ``fold_<k>/model.zip`` and ``fold_<k>/normalizer.json`` per fold, ``walk_forward.json`` (config,
    per-fold results, aggregate) and the report (``report.json``, ``report.html``, PNGs) of the
    stitched out-of-sample paths of the agent and the baselines.

    :param data_path: market file(s), folder or glob (joined on their dates as ``join`` says), or
        ``None``/``"synthetic"`` for the env's seeded synthetic market.
    :param risk_free: **annual** risk-free rate (fraction) of the Sharpe and Sortino ratios.
    :param join: how several files join on their dates (``exact`` or ``inner``).
    :return: ``walk_forward.json``'s content plus ``report`` (the stitched report).
    Other arguments as :func:`~sb3_trading.evaluation.walk_forward.walk_forward`.
    """
    from sb3_trading.envs.registration import check_env_id
    from sb3_trading.evaluation.report import _jsonable
    from sb3_trading.evaluation.walk_forward import walk_forward
    from sb3_trading.training import DEFAULT_ENV_ID
    from sb3_trading.utils import atomic_write_json

    env_id = check_env_id(env_id or DEFAULT_ENV_ID)
    env_kwargs = dict(env_kwargs or {})
    data, source = _load_data(data_path, env_id, seed, env_kwargs, join)
    out = Path(output_dir)
    result = walk_forward(
        algo,
        env_id,
        data,
        n_splits=n_splits,
        timesteps=timesteps,
        seed=seed,
        env_kwargs=env_kwargs,
        hyperparams=hyperparams,
        purge=purge,
        embargo=embargo,
        train_size=train_size,
        test_size=test_size,
        expanding=expanding,
        n_envs=n_envs,
        episode_length=episode_length,
        device=device,
        output_dir=out,
        risk_free=risk_free,
    )
    summary = result.to_dict()
    summary["config"]["data"] = {"source": source, "n_steps": data.n_steps, "assets": list(data.asset_names)}
    summary["config"]["timezone"] = data.timezone
    summary = _jsonable(summary)
    atomic_write_json(out / "walk_forward.json", summary)
    algo_name = result.config["algo"]
    stitched = {algo_name: result.stitched["agent"], **{k: v for k, v in result.stitched.items() if k != "agent"}}
    extra = {**summary["config"], "command": "walk-forward", "aggregate": summary["aggregate"]}
    summary["report"] = write_report(
        stitched,
        out,
        title=f"Walk-forward ({len(result.folds)} folds) of {algo_name} on {env_id}: stitched out-of-sample",
        extra=extra,
        n_boot=n_boot,
        alpha=alpha,
        seed=seed,
        plots=plots,
    )
    return summary


def add_walk_forward_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add ``sb3-trading walk-forward``'s arguments to ``parser`` (a subparser)."""
    parser.add_argument("--env", default=None, help="registered env ID (default: MultiAsset-v0)")
    parser.add_argument("--algo", default="ppo", help="ppo, ppo_mask, ppo_lstm, qppo, qppo_mask (default: %(default)s)")
    add_data_arguments(parser, default=SYNTHETIC, what="default: %(default)s")
    parser.add_argument("--splits", type=int, default=3, help="number of folds (default: %(default)s)")
    parser.add_argument("--timesteps", type=int, default=10_000, help="training steps per fold (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of data, envs and algorithm")
    parser.add_argument("--output-dir", default="runs/walk_forward", help="output folder (default: %(default)s)")
    parser.add_argument("--env-kwargs", nargs="*", metavar="KEY=VALUE", help="env arguments, e.g. window=5")
    parser.add_argument("--hyperparams", nargs="*", metavar="KEY=VALUE", help="algorithm arguments, e.g. n_steps=128")
    parser.add_argument("--purge", type=int, default=0, help="bars between each training window and its test block")
    parser.add_argument("--embargo", type=int, default=0, help="bars after a test block kept out of training (no-op here)")
    parser.add_argument("--train-size", type=int, default=None, help="bars of the first/rolling training window")
    parser.add_argument("--test-size", type=int, default=None, help="bars per test block")
    parser.add_argument("--rolling", action="store_true", help="rolling training windows instead of expanding ones")
    parser.add_argument("--n-envs", type=int, default=1, help="parallel training envs (default: %(default)s)")
    parser.add_argument("--episode-length", type=int, default=256, help="training episode length")
    parser.add_argument("--device", default="auto", help="torch device (default: %(default)s)")
    add_risk_free_argument(parser)
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs (0: none)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")
    return parser


def walk_forward_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run :func:`run_walk_forward_command` from :func:`add_walk_forward_arguments`' namespace."""
    from sb3_trading.cli import parse_kwargs

    return run_walk_forward_command(
        env_id=args.env,
        algo=args.algo,
        data_path=data_arg(args.data_path),
        n_splits=args.splits,
        timesteps=args.timesteps,
        seed=args.seed,
        output_dir=args.output_dir,
        env_kwargs=parse_kwargs(args.env_kwargs, "--env-kwargs"),
        hyperparams=parse_kwargs(args.hyperparams, "--hyperparams"),
        purge=args.purge,
        embargo=args.embargo,
        train_size=args.train_size,
        test_size=args.test_size,
        expanding=not args.rolling,
        n_envs=args.n_envs,
        episode_length=args.episode_length,
        device=args.device,
        n_boot=args.n_boot,
        plots=not args.no_plots,
        risk_free=args.risk_free,
        join=args.join,
    )


# ----------------------------------------------------------------------------- printing
def format_summary(report: Mapping[str, Any]) -> str:
    """The text table the CLI prints: one row per strategy of a ``write_report`` report (or a
    walk-forward summary's ``report``), with the Sharpe CI, and the report's paths."""
    report = report.get("report", report)
    level = 1.0 - (report.get("bootstrap") or {}).get("alpha", 0.1)
    lines = [
        report["title"],
        describe_calendar(report),
        f"{'strategy':<16}{'return':>10}{'sharpe':>9}{f'{level:.0%} CI':>18}{'max_dd':>9}{'dd_bars':>9}{'turnover':>10}",
    ]
    for name, s in report["strategies"].items():
        m = s["metrics"]
        ci = (s.get("ci") or {}).get("sharpe")
        ci_text = f"[{ci['low']:.2f}, {ci['high']:.2f}]" if ci else "-"
        lines.append(
            f"{name:<16}{m['total_return']:>10.2%}{m['sharpe']:>9.2f}{ci_text:>18}{m['max_drawdown']:>9.2%}"
            f"{m['max_drawdown_duration']:>9.0f}{m.get('mean_turnover', 0.0):>10.3f}"
        )
    files = report.get("files", {})
    if files:
        lines.append(f"report: {files.get('html')}  ({files.get('json')})")
    return "\n".join(lines)
