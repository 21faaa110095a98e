"""Speed of the feature pipeline: ``compute_features`` with 40 indicator specs on 10 assets x 10,000 bars.

    OMP_NUM_THREADS=1 python benchmarks/feature_speed.py            # best of 5, writes results/feature_speed.md
    python benchmarks/feature_speed.py --quick                      # 2 repeats, 4,000 bars, prints only

Target (issue 21): the 40 specs together in under 1 s on 2 cores. Also times each spec alone (best of the
repeats) and, as a reference measured in the same run, the 5 default indicators.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sb3_trading.data import MarketData
from sb3_trading.features import DEFAULT_INDICATORS, compute_features

#: 40 specs: every indicator, several parameterisations, three higher timeframes
SPECS: tuple[str, ...] = (
    "return",
    "log_return",
    "volatility:10",
    "volatility:60",
    "rsi:7",
    "rsi:14",
    "rsi:28",
    "macd",
    "macd:5,35,5",
    "bollinger:20,2",
    "bollinger:50,2.5",
    "atr:14",
    "volume_zscore:20",
    "momentum:5,20,60",
    "momentum:120",
    "sma_ratio:5,20",
    "sma_ratio:20,100",
    "ema_ratio:12,26",
    "ema_ratio:50,200",
    "zscore:20",
    "zscore:60",
    "stochastic:14",
    "williams_r:14",
    "obv",
    "obv:60",
    "vwap_ratio:20",
    "range:14",
    "range:5",
    "skew:60",
    "kurtosis:60",
    "autocorr:20",
    "autocorr:60",
    "volume_ratio:20",
    "volume_ratio:5",
    "tf5:rsi:14",
    "tf5:macd",
    "tf20:momentum:1,4",
    "daily:volatility:20",
    "weekly:rsi:14",
    "daily:atr:14",
)
TARGET_S = 1.0


@dataclass
class Args:
    n_assets: int = 10
    n_steps: int = 10_000
    repeats: int = 5
    seed: int = 0
    results: Path = Path(__file__).resolve().parent / "results"
    quick: bool = False


def make_market(args: Args) -> MarketData:
    """A seeded GBM OHLCV market on hourly bars (so daily and weekly specs have whole periods)."""
    rng = np.random.default_rng(args.seed)
    shape = (args.n_steps, args.n_assets)
    close = 100.0 * np.exp(np.cumsum(rng.normal(1e-4, 0.01, shape), axis=0))
    open_ = close * np.exp(rng.normal(0.0, 0.003, shape))
    high = np.maximum(open_, close) * (1.0 + rng.uniform(0.0, 0.01, shape))
    low = np.minimum(open_, close) * (1.0 - rng.uniform(0.0, 0.01, shape))
    stamps = np.datetime64("2020-01-06T00") + np.arange(args.n_steps) * np.timedelta64(1, "h")
    volume = rng.lognormal(10.0, 0.5, shape)
    return MarketData(prices=close, open=open_, high=high, low=low, volume=volume, timestamps=stamps)


def best_of(data: MarketData, specs: tuple[str, ...], repeats: int) -> tuple[float, int]:
    """Best wall time (s) of ``compute_features(data, specs)`` over ``repeats`` runs, and its column count."""
    times = []
    n_columns = 0
    for _ in range(repeats):
        start = time.perf_counter()
        matrix = compute_features(data, specs, include_data_features=False)
        times.append(time.perf_counter() - start)
        n_columns = matrix.n_features
    return min(times), n_columns


def main(args: Args) -> str:
    assert len(SPECS) == 40 and len(set(SPECS)) == 40
    data = make_market(args)
    compute_features(data, SPECS)  # warm caches (pandas, imports)
    total, n_columns = best_of(data, SPECS, args.repeats)
    reference, reference_columns = best_of(data, DEFAULT_INDICATORS, args.repeats)
    per_spec = {spec: best_of(data, (spec,), max(1, args.repeats - 2))[0] for spec in SPECS}

    cores = os.cpu_count()
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    lines = [
        f"# feature speed: {args.n_assets} assets x {args.n_steps:,} bars, best of {args.repeats}",
        f"# {datetime.date.today().isoformat()}, nproc {cores}, OMP_NUM_THREADS={threads}, {platform.machine()}, "
        f"numpy {np.__version__}, python {platform.python_version()}",
        "",
        "| what | columns | best time (s) | target (s) | met |",
        "|---|---:|---:|---:|---|",
        f"| compute_features, 40 specs | {n_columns} | {total:.3f} | {TARGET_S:.1f} | {'yes' if total < TARGET_S else 'NO'} |",
        f"| compute_features, 5 default indicators (reference) | {reference_columns} | {reference:.3f} | | |",
        f"| 40 specs / defaults | | {total / reference:.1f}x | | |",
        "",
        "| spec | best time (ms) | share of the 40 |",
        "|---|---:|---:|",
    ]
    slowest = sorted(per_spec.items(), key=lambda item: -item[1])
    lines += [f"| `{spec}` | {seconds * 1e3:.1f} | {seconds / total:.0%} |" for spec, seconds in slowest]
    text = "\n".join(lines) + "\n"
    if not args.quick:
        args.results.mkdir(parents=True, exist_ok=True)
        (args.results / "feature_speed.md").write_text(text)
    return text


def parse_args() -> Args:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2 repeats on 4,000 bars; write nothing")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--results", type=Path, default=Args.results)
    parsed = parser.parse_args()
    if parsed.quick:
        return Args(n_steps=4_000, repeats=2, quick=True, results=parsed.results)
    return Args(repeats=parsed.repeats, results=parsed.results)


if __name__ == "__main__":
    print(main(parse_args()))
