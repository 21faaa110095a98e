"""Small shared helpers: atomic file writes (a crash never leaves a half-written file)."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


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
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()
    return target


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Dump ``obj`` as indented JSON to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n"))


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
