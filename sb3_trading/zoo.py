"""Thin rl-zoo3 launcher: adds the algorithms rl-zoo3 does not list, then runs rl-zoo3's own scripts.

rl-zoo3's ``ALGOS`` table has PPO and RecurrentPPO (``ppo_lstm``) but not MaskablePPO, QuantilePPO
or MaskableQuantilePPO. This module adds them (``ppo_mask``, ``qppo``, ``qppo_mask``) to that table,
imports ``sb3_trading`` (which registers the env IDs, like ``--gym-packages sb3_trading``), and
hands the remaining arguments to ``rl_zoo3.train.train`` or ``rl_zoo3.enjoy.enjoy`` unchanged::

    python -m sb3_trading.zoo train --algo qppo --env sb3_trading/MultiAsset-v0 --conf-file sb3_trading/zoo_configs/qppo.yml
    python -m sb3_trading.zoo enjoy --algo qppo --env sb3_trading/MultiAsset-v0 -f logs/ --no-render

Nothing of rl-zoo3's trainer is re-written here.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sb3_contrib import MaskablePPO
from stable_baselines3.common.base_class import BaseAlgorithm

import sb3_trading  # noqa: F401  (registers the env IDs and policy aliases)
from sb3_trading.algos import MaskableQuantilePPO, QuantilePPO
from sb3_trading.common.hyperparams import parse_zoo_dict

#: algorithms added to rl-zoo3's ALGOS table
ZOO_ALGOS: dict[str, type[BaseAlgorithm]] = {
    "ppo_mask": MaskablePPO,
    "qppo": QuantilePPO,
    "qppo_mask": MaskableQuantilePPO,
}
COMMANDS = ("train", "enjoy")
#: zoo keys that configure the run rather than the algorithm
ZOO_RUN_KEYS = (
    "n_envs",
    "n_timesteps",
    "normalize",
    "env_kwargs",
    "env_wrapper",
    "callback",
    "vec_env_wrapper",
    "frame_stack",
)


def load_zoo_hyperparams(algo: str, env_id: str, path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """One ``zoo_configs/<algo>.yml`` entry split into ``(algorithm kwargs, run settings)``.

    :param algo: algorithm name (only used in error messages).
    :param env_id: the entry's key.
    :param path: the yml file.
    :return: algorithm keyword arguments (``policy`` included, ``policy_kwargs`` parsed) and the run
        settings (``n_envs``, ``n_timesteps``, ``env_kwargs``...).
    """
    import yaml

    config = yaml.safe_load(Path(path).read_text())
    if env_id not in config:
        raise ValueError(f"{path} has no entry for {env_id!r} (algo {algo}); entries: {sorted(config)}")
    entry = dict(config[env_id])
    run = {key: entry.pop(key) for key in ZOO_RUN_KEYS if key in entry}
    if isinstance(entry.get("policy_kwargs"), str):
        entry["policy_kwargs"] = parse_zoo_dict(entry["policy_kwargs"])
    return entry, run


def register_zoo_algos() -> None:
    """Add :data:`ZOO_ALGOS` to ``rl_zoo3.utils.ALGOS`` (the table rl-zoo3's train and enjoy read)."""
    try:
        from rl_zoo3 import utils
    except ImportError as exc:
        raise ImportError('the rl-zoo3 launcher needs rl-zoo3: pip install "sb3-trading[zoo]"') from exc

    for name, algo in ZOO_ALGOS.items():
        utils.ALGOS.setdefault(name, algo)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m sb3_trading.zoo {train,enjoy} [rl-zoo3 arguments]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in COMMANDS:
        raise SystemExit(f"usage: python -m sb3_trading.zoo {{{','.join(COMMANDS)}}} [rl-zoo3 arguments]; got {args[:1]}")
    register_zoo_algos()
    if "--gym-packages" not in args:
        args += ["--gym-packages", "sb3_trading"]
    command: Callable[[], None]
    if args[0] == "train":
        from rl_zoo3.train import train as command
    else:
        from rl_zoo3.enjoy import enjoy as command
    sys.argv = [f"rl_zoo3.{args[0]}", *args[1:]]
    command()


if __name__ == "__main__":
    main()
