"""The shared helpers of sb3_trading.common: argument validation and file writes."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

from sb3_trading.common.io import atomic_write, atomic_write_json, jsonable
from sb3_trading.common.validation import (
    ArgumentTypeError,
    check_bool,
    check_choice,
    check_int,
    check_real,
    is_int,
    is_real,
    suggest,
)


def test_predicates_accept_numpy_numbers_and_refuse_bools():
    assert all(is_int(v) for v in (3, np.int64(3), np.uint8(3), -1))
    assert not any(is_int(v) for v in (True, np.True_, 3.0, "3", None, np.array(3)))
    assert all(is_real(v) for v in (3, 3.5, np.float32(1.5), np.int64(2), math.inf))
    assert not any(is_real(v) for v in (True, False, "1.0", None, [1.0], np.array([1.0]), 1j))


def test_check_int_returns_plain_ints_within_bounds():
    assert check_int("n", np.int64(5), 1) == 5 and type(check_int("n", np.int64(5), 1)) is int
    assert check_int("n", 3, 1, 3) == 3
    assert check_int("n", None, 1, allow_none=True) is None
    with pytest.raises(ValueError, match=r"n must be an integer >= 1, got 0"):
        check_int("n", 0, 1)
    with pytest.raises(ValueError, match=r"n must be an integer >= 1 and <= 3"):
        check_int("n", 4, 1, 3)


@pytest.mark.parametrize("value", [1.5, 2.0, "2", True, None, np.float64(2.0), [2]])
def test_check_int_refuses_non_integers_with_a_type_error_that_is_also_a_value_error(value):
    with pytest.raises(ArgumentTypeError, match="window must be an integer") as caught:
        check_int("window", value, 1)
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ValueError)


def test_check_real_bounds_and_messages():
    assert check_real("x", np.float32(0.5), 0.0, 1.0) == 0.5 and type(check_real("x", 1, 0.0)) is float
    assert check_real("x", None, allow_none=True) is None
    assert check_real("x", math.inf, 0.0, finite=False) == math.inf
    with pytest.raises(ValueError, match=r"^x must be >= 0, got -1"):
        check_real("x", -1.0, 0.0)
    with pytest.raises(ValueError, match=r"^x must be > 0, got 0"):
        check_real("x", 0.0, 0.0, strict_minimum=True)
    with pytest.raises(ValueError, match=r"^x must be >= 0 and < 10000, got 10000"):
        check_real("x", 1e4, 0.0, 1e4, strict_maximum=True)
    with pytest.raises(ValueError, match=r"^x must be finite"):
        check_real("x", math.nan)
    with pytest.raises(ValueError, match=r"^x must be finite"):
        check_real("x", -math.inf, 0.0)
    with pytest.raises(ValueError, match=r"^x must be a number"):
        check_real("x", math.nan, finite=False)


@pytest.mark.parametrize("value", ["10", None, True, [1.0], np.array([1.0]), 1j])
def test_check_real_refuses_non_numbers_with_a_type_error(value):
    with pytest.raises(TypeError, match=r"^commission_bps must be a number"):
        check_real("commission_bps", value, 0.0)
    with pytest.raises(ValueError, match=r"^commission_bps"):
        check_real("commission_bps", value, 0.0)


def test_check_bool():
    assert check_bool("flag", True) is True and check_bool("flag", np.False_) is False
    with pytest.raises(TypeError, match="flag must be True or False"):
        check_bool("flag", 1)


def test_suggest_and_check_choice():
    assert suggest("momentun", ["momentum", "mean_reversion"]) == "; did you mean 'momentum'?"
    assert suggest("zzz", ["momentum"]) == ""
    assert suggest(3, ["3a"]) == "; did you mean '3a'?"  # names are compared as strings
    assert check_choice("execution", "close", ("close", "next_open")) == "close"
    with pytest.raises(ValueError, match=r"unknown execution 'clsoe'; did you mean 'close'\? execution must be one of"):
        check_choice("execution", "clsoe", ("close", "next_open"))
    with pytest.raises(ValueError, match=r"^unknown trader kind 'x': traders must be one of \['momentum'\]$"):
        check_choice("traders", "x", ("momentum",), what="trader kind")
    with pytest.raises(ValueError, match="must be one of"):
        check_choice("mode", np.array([1, 2]), ("sum", "cap"))  # an array is not a choice, and no NumPy error


def test_jsonable_makes_strict_json():
    obj = {1: np.float32(0.5), "a": np.arange(3), "nan": float("nan"), "inf": np.inf, "p": Path("x/y"), "t": (1, None)}
    out = jsonable(obj)
    assert out == {"1": 0.5, "a": [0, 1, 2], "nan": None, "inf": None, "p": "x/y", "t": [1, None]}
    json.dumps(out, allow_nan=False)
    assert jsonable(object()).startswith("<object")


def test_atomic_writes_replace_whole_files(tmp_path):
    target = tmp_path / "sub" / "report.json"
    assert atomic_write_json(target, {"a": 1}) == target and json.loads(target.read_text()) == {"a": 1}

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        atomic_write(target, fail)
    assert json.loads(target.read_text()) == {"a": 1}  # the old file, whole
    assert [p.name for p in target.parent.iterdir()] == ["report.json"]  # no temporary file left
    # reports are strict JSON: a NaN is refused before anything is written
    with pytest.raises(ValueError, match="not JSON compliant"):
        atomic_write_json(target, {"sharpe": float("nan")})
    assert json.loads(target.read_text()) == {"a": 1} and len(list(target.parent.iterdir())) == 1


def test_the_shared_helpers_import_nothing_from_the_package():
    """``sb3_trading.common.validation`` may be imported by any module: it must not import the package back."""
    import sb3_trading.common.validation as validation

    tree = ast.parse(Path(validation.__file__).read_text())
    imported = [
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    ]
    assert not [name for name in imported if name and name.startswith("sb3_trading")]


def test_closest():
    from sb3_trading.common.validation import closest

    assert closest("rsii", ["rsi", "macd"]) == "rsi" and closest("zzz", ["rsi"]) is None
