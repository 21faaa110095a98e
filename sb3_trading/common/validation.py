"""Argument validation shared by every module: one wording, one rule per kind of argument.

Validation happens once, in constructors and entry points, never on a hot path. Each helper
returns the value converted to its plain Python type (``int``, ``float``, ``str``) or raises an
error naming the argument and what it accepts:

* the wrong *type* (a string where a number is expected, ``1.5`` or ``True`` where an integer is)
  raises :class:`ArgumentTypeError`, which is both a ``TypeError`` and a ``ValueError`` (as NumPy's
  ``AxisError`` is both a ``ValueError`` and an ``IndexError``), so callers that caught the
  ``ValueError`` these checks used to raise keep working;
* a value of the right type out of its range raises ``ValueError``;
* an unknown choice raises ``ValueError`` with one ``difflib`` "did you mean" (:func:`suggest`).

Booleans are never numbers here (``True`` is an ``int`` to Python, never a sensible window or
cost); NumPy integers and floats are accepted wherever Python ones are.

This module imports nothing from the rest of the package (only NumPy), so any module may import it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from numbers import Integral, Real
from typing import Any

import numpy as np

#: similarity ratio (``difflib.SequenceMatcher``) from which :func:`suggest` offers a name
SUGGEST_CUTOFF = 0.5


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type: a ``TypeError`` that ``except ValueError`` also catches."""


def is_int(value: object) -> bool:
    """True for a Python or NumPy integer, False for a bool (and everything else)."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def is_real(value: object) -> bool:
    """True for a Python or NumPy real number (integers included), False for a bool (and everything else)."""
    return isinstance(value, Real) and not isinstance(value, bool)


def _range_text(minimum: float | None, maximum: float | None, strict_minimum: bool, strict_maximum: bool) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if strict_minimum else '>='} {minimum:g}" if isinstance(minimum, float) else f">= {minimum}")
    if maximum is not None:
        parts.append(f"{'<' if strict_maximum else '<='} {maximum:g}" if isinstance(maximum, float) else f"<= {maximum}")
    return " and ".join(parts)


def check_int(
    name: str,
    value: object,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    allow_none: bool = False,
) -> int | None:
    """``int(value)`` if ``value`` is an integer (Python or NumPy, not a bool) in ``[minimum, maximum]``.

    :param name: the argument's name, for the message.
    :param value: the value to check.
    :param minimum: smallest accepted value (``None``: no lower bound).
    :param maximum: largest accepted value (``None``: no upper bound).
    :param allow_none: accept ``None`` (returned as is), e.g. for "no limit".
    :return: the value as a Python ``int`` (or ``None``).
    :raises ArgumentTypeError: if ``value`` is not an integer (``1.5``, ``2.0``, ``"3"``, ``True``).
    :raises ValueError: if it lies outside the bounds.
    """
    if value is None and allow_none:
        return None
    bounds = _range_text(minimum, maximum, False, False)
    wanted = f"an integer{' ' + bounds if bounds else ''}{' or None' if allow_none else ''}"
    if not is_int(value):
        raise ArgumentTypeError(f"{name} must be {wanted}, got {type(value).__name__} {value!r}")
    result = int(value)  # type: ignore[call-overload]
    if (minimum is not None and result < minimum) or (maximum is not None and result > maximum):
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    return result


def check_real(
    name: str,
    value: object,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    strict_minimum: bool = False,
    strict_maximum: bool = False,
    allow_none: bool = False,
    finite: bool = True,
) -> float | None:
    """``float(value)`` if ``value`` is a real number (Python or NumPy, not a bool) within the bounds.

    :param name: the argument's name, for the message.
    :param value: the value to check.
    :param minimum: lower bound (``None``: none); inclusive unless ``strict_minimum``.
    :param maximum: upper bound (``None``: none); inclusive unless ``strict_maximum``.
    :param strict_minimum: exclude ``minimum`` itself (``value > minimum``).
    :param strict_maximum: exclude ``maximum`` itself (``value < maximum``).
    :param allow_none: accept ``None`` (returned as is).
    :param finite: reject NaN and infinities (default); with ``False`` only NaN is rejected.
    :return: the value as a Python ``float`` (or ``None``).
    :raises ArgumentTypeError: if ``value`` is not a real number (a string, ``None``, a bool, an array).
    :raises ValueError: if it is not finite or lies outside the bounds.
    """
    if value is None and allow_none:
        return None
    bounds = _range_text(
        None if minimum is None else float(minimum),
        None if maximum is None else float(maximum),
        strict_minimum,
        strict_maximum,
    )
    none = " or None" if allow_none else ""
    if not is_real(value):
        wanted = f"a number{' ' + bounds if bounds else ''}{none}"
        raise ArgumentTypeError(f"{name} must be {wanted}, got {type(value).__name__} {value!r}")
    result = float(value)  # type: ignore[arg-type]
    if math.isnan(result) or (finite and math.isinf(result)):
        wanted = f"{'finite' if finite else 'a number'}{' and ' + bounds if bounds else ''}{none}"
        raise ValueError(f"{name} must be {wanted}, got {value!r}")
    if (minimum is not None and (result < minimum or (strict_minimum and result == minimum))) or (
        maximum is not None and (result > maximum or (strict_maximum and result == maximum))
    ):
        raise ValueError(f"{name} must be {bounds}{none}, got {value!r}")
    return result


def check_float_array(name: str, value: object) -> np.ndarray:
    """``value`` (a number or a sequence of numbers) as a new ``float64`` array, else :class:`ArgumentTypeError`.

    Shape and range are the caller's to check; this only turns NumPy's conversion errors (a string, a ragged
    list, ``None``) into an error naming the argument. Booleans are refused, as by :func:`check_real`.

    :param name: the argument's name, for the message.
    :param value: the value to convert.
    """
    try:
        array = np.array(value, dtype=np.float64)
        kind = np.asarray(value).dtype.kind
    except (TypeError, ValueError) as exc:
        raise ArgumentTypeError(f"{name} must be a number or a sequence of numbers, got {value!r}") from exc
    if kind not in "iuf":
        raise ArgumentTypeError(f"{name} must be a number or a sequence of numbers, got {value!r}")
    return array


def check_bool(name: str, value: object) -> bool:
    """``value`` if it is a bool (Python or NumPy), else :class:`ArgumentTypeError`.

    :param name: the argument's name, for the message.
    :param value: the value to check.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    raise ArgumentTypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")


def closest(name: object, choices: Iterable[object], cutoff: float = SUGGEST_CUTOFF) -> str | None:
    """The known name closest to an unknown ``name`` (``difflib``, compared as strings), or ``None`` when none is close.

    :param name: the unknown name.
    :param choices: the known names.
    :param cutoff: the ``difflib.get_close_matches`` similarity from which a name is offered.
    """
    close = difflib.get_close_matches(str(name), [str(choice) for choice in choices], n=1, cutoff=cutoff)
    return close[0] if close else None


def suggest(name: object, choices: Iterable[object], cutoff: float = SUGGEST_CUTOFF) -> str:
    """The "did you mean" hint for an unknown ``name``: ``"; did you mean 'x'?"``, or ``""`` when nothing is close.

    :param name: the unknown name (converted with ``str``).
    :param choices: the known names.
    :param cutoff: the ``difflib.get_close_matches`` similarity from which a name is offered.
    :return: the hint, to append to a message (it starts with ``"; "``).
    """
    close = closest(name, choices, cutoff)
    return f"; did you mean {close!r}?" if close is not None else ""


def check_choice(name: str, value: Any, choices: Iterable[Any], what: str | None = None) -> Any:
    """``value`` if it is one of ``choices``, else ``ValueError`` listing them with :func:`suggest`'s hint.

    :param name: the argument's name, for the message.
    :param value: the value to check (compared with ``==``; an unhashable value is simply not a choice).
    :param choices: the accepted values.
    :param what: how to call the value in the message (default: ``name``), e.g. ``"trader kind"``.
    :return: ``value``.
    :raises ValueError: if ``value`` is not a choice.
    """
    options = list(choices)
    try:
        if value in options:
            return value
    except (TypeError, ValueError):  # an array compared element-wise: not a choice
        pass
    label = name if what is None else what
    hint = suggest(value, options)
    raise ValueError(f"unknown {label} {value!r}{hint or ':'} {name} must be one of {options}")


__all__ = [
    "SUGGEST_CUTOFF",
    "ArgumentTypeError",
    "check_bool",
    "check_choice",
    "check_float_array",
    "check_int",
    "check_real",
    "closest",
    "is_int",
    "is_real",
    "suggest",
]
