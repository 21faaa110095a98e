"""rl-zoo3's hyperparameter strings, read safely: ``dict(...)`` policy kwargs and ``lin_<x>`` schedules.

rl-zoo3 writes ``policy_kwargs: "dict(net_arch=[64, 64], optimizer_class=th.optim.AdamW)"`` and
``learning_rate: lin_3e-4`` in its YAML files and evaluates the first with ``eval``. Here the same strings are
parsed with :mod:`ast` (:func:`parse_zoo_dict`): literals, nested ``dict(...)`` and torch optimiser/module classes
only, never ``eval``; :func:`resolve_zoo_hyperparams` applies both rules to a dict of algorithm arguments, as
``sb3-trading train --hyperparams`` (and the Python API's ``hyperparams``) take them.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from typing import Any

#: hyperparameters that take a schedule of the remaining progress; rl-zoo3 reads ``lin_<x>`` there
SCHEDULE_KEYS: tuple[str, ...] = ("learning_rate", "clip_range", "clip_range_vf")


class LinearSchedule:
    """rl-zoo3's ``lin_<x>``: ``progress_remaining * initial_value`` (from ``x`` at the start to 0 at the end).

    A class rather than a closure, so it pickles, compares and prints as the string it was read from.
    """

    def __init__(self, initial_value: float) -> None:
        self.initial_value = float(initial_value)

    def __call__(self, progress_remaining: float) -> float:
        return progress_remaining * self.initial_value

    def __repr__(self) -> str:
        return f"lin_{self.initial_value!r}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LinearSchedule) and other.initial_value == self.initial_value

    def __hash__(self) -> int:
        return hash(("lin", self.initial_value))


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


def resolve_zoo_hyperparams(hyperparams: Mapping[str, Any]) -> dict[str, Any]:
    """``hyperparams`` with rl-zoo3's strings resolved, as rl-zoo3 resolves them, without ``eval``.

    * ``learning_rate``/``clip_range``/``clip_range_vf`` = ``"lin_<x>"`` -> :class:`LinearSchedule` ``(x)``;
      another string there is refused;
    * ``policy_kwargs`` = ``"dict(...)"`` -> :func:`parse_zoo_dict` (torch classes such as ``th.optim.AdamW``
      allowed, any other code refused);
    * everything else unchanged.

    :raises ValueError: naming the hyperparameter, the string and the accepted forms.
    """
    resolved = dict(hyperparams)
    for key in SCHEDULE_KEYS:
        value = resolved.get(key)
        if isinstance(value, str):
            text = value.strip()
            try:
                if not text.startswith("lin_"):
                    raise ValueError
                resolved[key] = LinearSchedule(float(text[4:]))
            except ValueError:
                raise ValueError(
                    f"hyperparameter {key} must be a number > 0 or rl-zoo3's linear schedule 'lin_<initial value>' "
                    f"(e.g. {key}=lin_3e-4), got {value!r}"
                ) from None
    value = resolved.get("policy_kwargs")
    if isinstance(value, str):
        try:
            resolved["policy_kwargs"] = parse_zoo_dict(value)
        except ValueError as exc:
            raise ValueError(
                f"hyperparameter policy_kwargs={value!r} is not read (never evaluated): {exc}; write "
                'policy_kwargs="dict(net_arch=[64, 64], optimizer_class=th.optim.AdamW)"'
            ) from None
    return resolved


__all__ = [
    "SCHEDULE_KEYS",
    "TORCH_ROOTS",
    "LinearSchedule",
    "format_zoo_value",
    "parse_zoo_dict",
    "resolve_zoo_hyperparams",
    "zoo_dict_keywords",
]
