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


#: names a zoo ``policy_kwargs`` string may start a torch reference with (rl-zoo3 evaluates these strings with
#: ``import torch as th`` and ``from torch import nn`` in scope)
TORCH_ROOTS = ("th", "torch", "nn")


def _torch_reference(node: ast.expr, text: str) -> type:
    """The torch optimiser or module class an ``ast`` attribute chain (``th.optim.AdamW``, ``nn.ReLU``) names."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in TORCH_ROOTS:
        raise ValueError(f"only literals, dict(...) and torch classes (th.optim.AdamW, nn.ReLU) are supported in {text!r}")
    import torch as th

    value: Any = th.nn if node.id == "nn" else th
    for name in reversed(parts):
        if name.startswith("_") or not hasattr(value, name):
            raise ValueError(f"{ast.unparse(node)}.{'.'.join(reversed(parts))} is not a torch class (in {text!r})")
        value = getattr(value, name)
    if not (isinstance(value, type) and issubclass(value, (th.optim.Optimizer, th.nn.Module))):
        raise ValueError(f"{'.'.join([node.id, *reversed(parts)])} is not a torch optimizer or module class (in {text!r})")
    return value


def _zoo_value(node: ast.expr, text: str) -> Any:
    """A keyword value of a zoo ``dict(...)``: a literal, a nested ``dict(...)`` or a torch class."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        return {kw.arg: _zoo_value(kw.value, text) for kw in node.keywords if kw.arg is not None}
    if isinstance(node, (ast.Attribute, ast.Name)) and not (
        isinstance(node, ast.Name) and node.id in ("True", "False", "None")
    ):
        return _torch_reference(node, text)
    try:
        return ast.literal_eval(node)
    except ValueError as exc:
        raise ValueError(
            f"only literals, dict(...) and torch classes (th.optim.AdamW, nn.ReLU) are supported in {text!r}"
        ) from exc


def parse_zoo_dict(text: str) -> dict[str, Any]:
    """Read rl-zoo3's ``"dict(net_arch=[64, 64], n_quantiles=32)"`` strings without ``eval``.

    Values may be Python literals (``ast.literal_eval``), nested ``dict(key=value, ...)`` calls, and references
    to torch optimiser or module classes under ``th``/``torch``/``nn`` (``optimizer_class=th.optim.AdamW``,
    ``activation_fn=nn.ReLU``), the names rl-zoo3 evaluates these strings with; nothing else is evaluated.

    :raises ValueError: another expression, or a name that is not a torch optimiser or module class.
    """
    keywords = zoo_dict_keywords(text)
    return {kw.arg: _zoo_value(kw.value, text) for kw in keywords if kw.arg is not None}


def format_zoo_value(value: Any) -> str:
    """The zoo-config source text of a ``policy_kwargs`` value, read back by :func:`parse_zoo_dict`.

    Dicts become ``dict(key=value, ...)``, torch classes ``th.optim.AdamW`` / ``th.nn.ReLU``, other values
    their ``repr``.
    """
    if isinstance(value, dict):
        return "dict(" + ", ".join(f"{key}={format_zoo_value(item)}" for key, item in value.items()) + ")"
    if isinstance(value, type) and value.__module__.startswith("torch."):
        import torch as th

        for prefix, namespace in (("th.optim", th.optim), ("th.nn", th.nn)):
            if getattr(namespace, value.__name__, None) is value:
                return f"{prefix}.{value.__name__}"
    return repr(value)


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
