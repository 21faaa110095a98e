"""The reproducibility manifest of a run folder (``manifest.json``): what a rerun must match.

Package versions, the git commit when the package runs from a checkout (with ``+`` for uncommitted changes),
a SHA-256 of every data file read, the platform, the torch device and threads, and the seeds. Two CPU runs with
the same manifest and configuration give the same metrics (``tests/test_run_management.py``); on CUDA, cuDNN
kernels may still differ between runs.
"""

from __future__ import annotations

import glob
import hashlib
import importlib.metadata
import os
import platform
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

#: file name of the manifest in a run folder
MANIFEST_JSON = "manifest.json"
#: distributions whose versions the manifest records
PACKAGES: tuple[str, ...] = (
    "sb3-trading",
    "stable-baselines3",
    "sb3-contrib",
    "gymnasium",
    "torch",
    "numpy",
    "pandas",
    "numba",
)
_CHUNK = 1 << 20


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """``{distribution: version}`` of ``names`` (``None`` when not installed)."""
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(path: str | os.PathLike[str] | None = None) -> str | None:
    """The commit of the git checkout holding ``path`` (default: this package), ``+`` when it has uncommitted
    changes to tracked files; ``None`` outside a checkout or without git."""
    where = Path(path) if path is not None else Path(__file__).resolve().parent
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, check=True, timeout=10)
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=where, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+" if status.stdout.strip() else "")


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_files(source: str | list[str] | None) -> list[Path]:
    """The files a data source names: files as given, folders' files, glob matches (sorted); ``[]`` for synthetic."""
    if source is None:
        return []
    files: list[Path] = []
    for item in [source] if isinstance(source, str) else source:
        path = Path(item)
        if path.is_dir():
            files.extend(sorted(p for p in path.iterdir() if p.is_file()))
        elif path.is_file():
            files.append(path)
        else:
            files.extend(sorted(Path(p) for p in glob.glob(str(item)) if Path(p).is_file()))
    return files


def data_hashes(source: str | list[str] | None) -> dict[str, str] | None:
    """``{absolute path: sha256}`` of the data files, or ``None`` for the synthetic market."""
    if source is None:
        return None
    return {str(path.resolve()): file_sha256(path) for path in data_files(source)}


def run_manifest(
    *,
    seeds: dict[str, Any],
    device: str,
    data_source: str | list[str] | None,
    synthetic: str | None = None,
) -> dict[str, Any]:
    """The manifest of one run.

    :param seeds: the run's seeds by role (``{"seed": 0}``: data, envs and algorithm).
    :param device: the torch device the model ran on.
    :param data_source: the data path(s) (hashed), ``None`` for a synthetic market.
    :param synthetic: the synthetic market's description when ``data_source`` is ``None``.
    """
    import torch

    return {
        "packages": package_versions(),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "device": str(device),
        "torch_threads": int(torch.get_num_threads()),
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
        "numpy_blas": _blas(),
        "seeds": dict(seeds),
        "data": {"files": data_hashes(data_source), "synthetic": synthetic if data_source is None else None},
    }


def _blas() -> str | None:
    """The BLAS NumPy was built with (its name), when NumPy reports it."""
    try:
        config = np.show_config(mode="dicts")
    except TypeError:  # numpy < 1.25 has no mode
        return None
    blas = (config or {}).get("Build Dependencies", {}).get("blas", {})
    return blas.get("name")


__all__ = [
    "MANIFEST_JSON",
    "PACKAGES",
    "data_files",
    "data_hashes",
    "file_sha256",
    "git_commit",
    "package_versions",
    "run_manifest",
]
