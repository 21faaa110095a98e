"""Parsing of user-typed literals: the one home for ``KEY=VALUE`` options and spec arguments.

Values are Python literals read with :func:`ast.literal_eval` (never ``eval``): the CLI's ``--env-kwargs``,
``--hyperparams`` and ``--choices``, and the arguments of reward specs (``drawdown:0.5``) all go through
:func:`parse_literal`.
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any


def parse_literal(text: str) -> Any:
    """A Python literal (``0.5``, ``True``, ``'x'``, ``[64, 64]``: ``ast.literal_eval``, never ``eval``), a float
    spelled ``nan``/``inf``, or else the text itself (a bare word such as ``next_open``)."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        pass
    try:
        return float(text)
    except ValueError:
        return text


def parse_kwargs(items: Sequence[str] | None, flag: str) -> dict[str, Any]:
    """``["window=5", "execution='next_open'"]`` -> ``{"window": 5, "execution": "next_open"}``.

    The one parser of ``KEY=VALUE`` arguments (``--env-kwargs``, ``--hyperparams``, ``--choices``): values are
    Python literals (:func:`parse_literal`); a bare word is kept as a string.

    :param items: the ``KEY=VALUE`` strings.
    :param flag: the option's name, for the error message.
    :raises ValueError: an item without ``=`` or whose key is not an identifier.
    """
    result: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key.isidentifier():
            raise ValueError(f"{flag} expects key=value pairs, got {item!r}")
        result[key] = parse_literal(raw)
    return result


def split_arguments(text: str, sep: str = ",") -> list[str]:
    """Split ``text`` at each ``sep`` outside brackets and quotes: ``"0.5,w=[1, 2],m='a,b'"`` -> ``["0.5", "w=[1, 2]", ...]``.

    The items of a spec's argument list (``drawdown:0.5,above=0.08``), so that a literal list, tuple, dict or
    quoted string may itself contain ``sep``. Items are stripped; an empty ``text`` gives ``[]``.

    :param text: the argument list.
    :param sep: the one-character separator.
    :raises ValueError: unbalanced brackets or an unterminated quote.
    """
    items: list[str] = []
    quote, start = "", 0
    closing = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for k, char in enumerate(text):
        if quote:
            if char == quote and text[k - 1] != "\\":
                quote = ""
        elif char in "'\"":
            quote = char
        elif char in "([{":
            stack.append(char)
        elif char in closing:
            if not stack or stack.pop() != closing[char]:
                raise ValueError(f"unbalanced {char!r} in {text!r}")
        elif char == sep and not stack:
            items.append(text[start:k].strip())
            start = k + 1
    if quote or stack:
        raise ValueError(f"unterminated {quote or stack[-1]!r} in {text!r}")
    if text.strip():
        items.append(text[start:].strip())
    return items


def split_spec(spec: Any, kind: str, form: str) -> tuple[str, list[Any], dict[str, Any]]:
    """Name, positional values and keyword arguments of a wrapper spec (the reward and sizing wrappers).

    Forms: ``"NAME"``, ``"NAME:V1[,V2...][,key=value...]"``, ``"NAME:key=value[,...]"``, or a tuple
    ``(NAME, {kwargs})`` (or the list JSON makes of it). Values are Python literals (:func:`parse_literal`); an item
    may hold ``,`` inside brackets or quotes (:func:`split_arguments`).

    :param spec: the spec.
    :param kind: what it specifies, for the messages (``"reward"``, ``"sizing"``).
    :param form: the accepted forms, appended to the messages.
    :raises ValueError: a malformed spec (an empty item, a value after a ``key=value``, a bad key, a key twice).
    :raises TypeError: neither a string nor a ``(name, kwargs)`` pair.
    """
    if isinstance(spec, (tuple, list)):
        if len(spec) != 2 or not isinstance(spec[0], str) or not isinstance(spec[1], dict):
            raise ValueError(f"a {kind} spec tuple must be (name, kwargs dict), got {spec!r}")
        return spec[0].strip(), [], dict(spec[1])
    if not isinstance(spec, str):
        raise TypeError(f"a {kind} spec must be 'NAME[:ARG]' or (name, kwargs), got {type(spec).__name__} {spec!r}")
    name, _, arg = (part.strip() for part in spec.partition(":"))
    positional: list[Any] = []
    kwargs: dict[str, Any] = {}
    if not arg:
        return name, positional, kwargs
    try:
        items = split_arguments(arg)
    except ValueError as exc:
        raise ValueError(f"malformed {kind} spec {spec!r}: {exc}; {form}") from None
    for item in items:
        key, sep, value = (part.strip() for part in item.partition("="))
        if not item:
            raise ValueError(f"malformed {kind} spec {spec!r}: an empty argument; {form}")
        if not sep:
            if kwargs:
                raise ValueError(f"malformed {kind} spec {spec!r}: value {item!r} after a key=value; {form}")
            positional.append(parse_literal(item))
            continue
        if not key.isidentifier():
            raise ValueError(f"malformed {kind} spec {spec!r}: {key!r} is not an argument name; {form}")
        if key in kwargs:
            raise ValueError(f"{kind} spec {spec!r} gives {key!r} twice")
        kwargs[key] = parse_literal(value)
    return name, positional, kwargs
