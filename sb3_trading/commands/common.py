"""Arguments shared by several subcommands, and the one ``KEY=VALUE`` parser."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from sb3_trading.common.parsing import parse_kwargs
from sb3_trading.recipe import DEFAULT_N_PATHS, JOIN_CHOICES, RESAMPLE_CHOICES

__all__ = [
    "add_data_arguments",
    "add_report_arguments",
    "add_resample_arguments",
    "add_risk_free_argument",
    "data_arg",
    "parse_kwargs",
]


def add_data_arguments(
    parser: argparse.ArgumentParser, default: Any = None, what: str = "default: synthetic", join_default: str | None = "exact"
) -> None:
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
        choices=JOIN_CHOICES,
        default=join_default,
        help="how several files join on their dates: exact (a date missing in one file is an error) or inner "
        f"(keep the common dates) (default: {join_default or 'the run folder’s, else exact'})",
    )


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    """``--n-boot N`` (bootstrap resamples of the report's CIs) and ``--no-plots`` (no PNGs, no matplotlib)."""
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples for the CIs (0: none)")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots (no matplotlib needed)")


def add_resample_arguments(parser: argparse.ArgumentParser) -> None:
    """``--resample`` and ``--n-paths``: how the training market is resampled every episode
    (:func:`sb3_trading.recipe.training_market`)."""
    parser.add_argument(
        "--resample",
        choices=RESAMPLE_CHOICES,
        default="auto",
        help="resample the training market every episode: synthetic (fresh paths of the env's generator), bootstrap "
        "(stationary-bootstrap paths of the training slice), none; auto: synthetic on the synthetic market, bootstrap "
        "on files (default: %(default)s)",
    )
    parser.add_argument(
        "--n-paths", type=int, default=DEFAULT_N_PATHS, help="paths of the resampled training market (default: %(default)s)"
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
