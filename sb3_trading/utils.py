"""Small shared helpers: atomic file writes (a crash never leaves a half-written file), run folders that
are committed whole, and plain-JSON conversion."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> Path:
    """Write ``path`` through ``write(tmp_path)`` into a temporary file in the same folder, then rename.

    The rename is atomic on POSIX and Windows, so ``path`` is either the old file
    or the complete new one, never a partial write.

    :param path: destination file.
    :param write: callable that writes the whole content to the path it is given.
    :return: the destination path.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.chmod(tmp, _default_mode(0o666))  # mkstemp makes 0600; files get the usual 0666 & ~umask
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Dump ``obj`` as indented, strict JSON to ``path`` atomically.

    :raises ValueError: if ``obj`` holds NaN or infinity (not JSON; nothing is written, an existing file is kept).
    """
    text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False)  # before the write: a bad value loses nothing
    return atomic_write(path, lambda tmp: tmp.write_text(text + "\n"))


def save_model_atomic(model: Any, path: str | os.PathLike[str]) -> Path:
    """``model.save`` to a ``.zip`` atomically (SB3 appends ``.zip`` itself, so the temp name ends in it)."""
    target = Path(path)
    if target.suffix != ".zip":
        target = target.with_suffix(".zip")

    def write(tmp: Path) -> None:
        tmp_zip = tmp.with_suffix(".zip")
        try:
            model.save(tmp_zip)
            os.replace(tmp_zip, tmp)
        finally:
            if tmp_zip.exists():
                tmp_zip.unlink()

    return atomic_write(target, write)


def _default_mode(mode: int) -> int:
    """``mode & ~umask`` (the mode ``open``/``mkdir`` would give), reading the process umask."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def jsonable(obj: Any) -> Any:
    """Plain-Python copy of ``obj`` for strict JSON: mappings, sequences and arrays to dicts and lists, NumPy
    scalars to Python ones, NaN/inf to ``None``, paths to strings, classes to their qualified names, anything else
    to ``str``."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, type):  # a class in hyperparameters (optimizer_class=th.optim.AdamW): its qualified name
        return f"{obj.__module__}.{obj.__qualname__}"
    return str(obj)


def check_new_dir(path: str | os.PathLike[str], overwrite: bool = False, flag: str = "--overwrite") -> Path:
    """``path`` as a ``Path`` if it can become a run folder: absent, or present with ``overwrite``.

    :raises FileExistsError: ``path`` exists and ``overwrite`` is false (naming ``flag``).
    :raises NotADirectoryError: ``path`` or its parent is a file.
    """
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise NotADirectoryError(f"{str(target)!r} is a file, not a run folder")
    if target.exists() and not overwrite:
        raise FileExistsError(f"run folder {str(target)!r} exists; choose another --run-name or pass {flag} to replace it")
    if target.parent.exists() and not target.parent.is_dir():
        raise NotADirectoryError(f"output dir {str(target.parent)!r} is a file, not a folder")
    return target


@contextlib.contextmanager
def staged_dir(path: str | os.PathLike[str], overwrite: bool = False) -> Iterator[Path]:
    """Write a whole folder as one commit: yield a temporary folder beside ``path``; on success it is renamed
    to ``path`` (replacing an existing one only with ``overwrite``), on an exception it is removed.

    So ``path`` never mixes two runs (a new model beside an old report): it is the old folder or the new one.

    :param path: the final folder.
    :param overwrite: replace an existing ``path``; otherwise it is refused before anything is written.
    :raises FileExistsError: ``path`` exists and ``overwrite`` is false.
    """
    target = check_new_dir(path, overwrite)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".staging", dir=target.parent))
    os.chmod(staging, _default_mode(0o777))
    try:
        yield staging
        check_new_dir(target, overwrite)  # another process may have created it meanwhile
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / target.name)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
