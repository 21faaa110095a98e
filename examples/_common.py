"""Shared by the examples: the ``--quick`` flag and a temporary output folder."""

from __future__ import annotations

import argparse
import tempfile


def parse(description: str, steps: int, quick_steps: int) -> argparse.Namespace:
    """``--quick`` (a budget of ``quick_steps``, under a minute on 2 CPU cores), ``--steps`` and ``--output-dir``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=f"{quick_steps} training steps (a smoke run)")
    parser.add_argument("--steps", type=int, default=None, help=f"training steps (default {steps})")
    parser.add_argument("--output-dir", default=None, help="run folder parent (default: a temporary folder)")
    args = parser.parse_args()
    args.steps = args.steps or (quick_steps if args.quick else steps)
    args.output_dir = args.output_dir or tempfile.mkdtemp(prefix="sb3_trading_example_")
    return args
