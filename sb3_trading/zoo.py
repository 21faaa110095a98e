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

import ast
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sb3_contrib import MaskablePPO
from stable_baselines3.common.base_class import BaseAlgorithm

import sb3_trading  # noqa: F401  (registers the env IDs and policy aliases)
from sb3_trading.algos import MaskableQuantilePPO, QuantilePPO

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


def zoo_dict_keywords(text: str) -> list[ast.keyword]:
    """The keyword nodes of an rl-zoo3 ``"dict(net_arch=[64, 64], n_quantiles=32)"`` string, parsed without ``eval``.

    :param text: the string as written in a zoo config (surrounding whitespace is ignored).
    :return: the ``ast.keyword`` nodes of the ``dict(...)`` call, in order (``arg`` is ``None`` for ``**``).
    :raises ValueError: ``text`` is not a Python expression, or not a ``dict(key=value, ...)`` call.
    """
    try:
        call = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ValueError(f"{text!r} is not a dict(key=value, ...) expression: {exc}") from exc
    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Name) and call.func.id == "dict" and not call.args):
        raise ValueError(f"expected dict(key=value, ...), got {text!r}")
    return call.keywords


def parse_zoo_dict(text: str) -> dict[str, Any]:
    """Read rl-zoo3's ``"dict(net_arch=[64, 64], n_quantiles=32)"`` strings without ``eval``.

    Only keyword arguments whose values are Python literals are accepted (``ast.literal_eval``).
    """
    keywords = zoo_dict_keywords(text)
    try:
        return {kw.arg: ast.literal_eval(kw.value) for kw in keywords if kw.arg is not None}
    except ValueError as exc:
        raise ValueError(f"only literal values are supported in {text!r} (no activation functions or classes)") from exc


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
