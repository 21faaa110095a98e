"""Read market files into DataFrames: suffixes, compression, separators, raw headers, folders and globs.

Supported files (the suffix decides; names are case-insensitive):

================================================  ====================================
suffix                                            read as
================================================  ====================================
``.csv``, ``.txt``, ``.tsv``                      text table, separator sniffed
the same + ``.gz``, ``.bz2``, ``.zip``, ``.xz``   compressed text table
``.gz``, ``.bz2``, ``.zip``, ``.xz`` alone        compressed text table (a ``.zip``
                                                  must hold exactly one file)
``.parquet``, ``.pq``                             Parquet (needs ``pyarrow``)
``.feather``, ``.ft``                             Feather (needs ``pyarrow``)
================================================  ====================================

The separator of a text table is the most frequent of tab, ``;``, ``|`` and ``,`` in its
header line (unless ``read_kwargs`` sets ``sep``), so MetaTrader's tab-separated exports
and European ``;`` files load like comma-separated ones (a ``;`` file whose first data
lines hold ``1,5``-style numbers is read with ``decimal=","``). Column names are stripped of
blanks and of a byte-order mark; a header that names a column twice raises (pandas would
rename the second ``AAA.1`` and it would become an asset).
"""

from __future__ import annotations

import bz2
import csv
import glob
import gzip
import io
import logging
import lzma
import os
import re
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pandas as pd

logger = logging.getLogger(__name__)

TEXT_SUFFIXES = (".csv", ".txt", ".tsv")
COMPRESSIONS = {".gz": "gzip", ".bz2": "bz2", ".zip": "zip", ".xz": "xz"}
PARQUET_SUFFIXES = (".parquet", ".pq")
FEATHER_SUFFIXES = (".feather", ".ft")
SUPPORTED_SUFFIXES = (
    TEXT_SUFFIXES
    + tuple(t + c for t in TEXT_SUFFIXES for c in COMPRESSIONS)
    + tuple(COMPRESSIONS)
    + PARQUET_SUFFIXES
    + FEATHER_SUFFIXES
)
SEPARATORS = ("\t", ";", "|", ",")
PYARROW_INSTALL_HINT = 'pip install "sb3-trading[parquet]"'

PathLike = str | os.PathLike[str]
_GLOB_CHARS = re.compile(r"[*?[]")


def file_kind(path: PathLike) -> tuple[str, str | None]:
    """``(kind, compression)`` of a file from its name: kind ``"text"``, ``"parquet"`` or ``"feather"``.

    :raises ValueError: unknown suffix, naming the supported ones.
    """
    name = Path(path).name.lower()
    for suffix in PARQUET_SUFFIXES:
        if name.endswith(suffix):
            return "parquet", None
    for suffix in FEATHER_SUFFIXES:
        if name.endswith(suffix):
            return "feather", None
    compression = None
    for suffix, kind in COMPRESSIONS.items():
        if name.endswith(suffix):
            compression, name = kind, name[: -len(suffix)]
            break
    if name.endswith(TEXT_SUFFIXES) or (compression is not None and "." not in name):
        return "text", compression
    raise ValueError(f"unknown file type {Path(path).name!r}: expected a suffix in {SUPPORTED_SUFFIXES}")


def file_stem(path: PathLike) -> str:
    """The file name without its data and compression suffixes: ``AAPL.csv.gz`` -> ``"AAPL"``."""
    name = Path(path).name
    lower = name.lower()
    for suffix in sorted(SUPPORTED_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def is_supported(path: PathLike) -> bool:
    """Whether :func:`file_kind` knows the suffix of ``path``."""
    try:
        file_kind(path)
    except ValueError:
        return False
    return True


def resolve_sources(source: PathLike | Sequence[PathLike]) -> list[Path]:
    """The files that ``source`` names, in load order.

    :param source: one path; a folder (every supported, non-hidden file in it, sorted by
        name); a glob pattern (``"data/*.csv"``, sorted by name); or a list/tuple of any of
        these (kept in the given order).
    :return: the files, at least one.
    :raises ValueError: nothing matches, an unknown suffix, or a file named twice.
    :raises FileNotFoundError: a named file does not exist.
    """
    if isinstance(source, (list, tuple)):
        if not source:
            raise ValueError("load_market_data() got an empty list of sources; name at least one file")
        paths = [path for item in source for path in resolve_sources(item)]
    elif isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if path.is_dir():
            paths = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and is_supported(p))
            skipped = sorted(p.name for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and p not in paths)
            if skipped:
                logger.debug("folder %s: skipping files of unknown type %s", path, skipped)
            if not paths:
                raise ValueError(f"folder {str(path)!r} holds no market files (suffixes {SUPPORTED_SUFFIXES})")
        elif not path.exists() and _GLOB_CHARS.search(str(source)):
            paths = sorted(Path(p) for p in glob.glob(str(source)) if Path(p).is_file())
            if not paths:
                raise ValueError(f"no files match the pattern {str(source)!r}")
            for p in paths:
                file_kind(p)
        else:
            file_kind(path)
            if not path.exists():
                raise FileNotFoundError(f"market data file {str(path)!r} does not exist")
            paths = [path]
    else:
        raise TypeError(
            f"load_market_data() needs a path, a folder, a glob or a list of them, got {type(source).__name__} {source!r}"
        )
    seen: dict[Path, int] = {}
    for path in paths:
        key = path.resolve()
        if key in seen:
            raise ValueError(f"file {str(path)!r} is named twice in the sources; name each file once")
        seen[key] = 1
    return paths


# ----------------------------------------------------------------------------- reading
@contextmanager
def _open_text_bytes(path: Path, compression: str | None) -> Iterator[IO[bytes]]:
    """Binary stream of the (decompressed) table; a zip must hold exactly one data file."""
    if compression == "zip":
        with zipfile.ZipFile(path) as archive:
            members = [
                info.filename
                for info in archive.infolist()
                if not (info.is_dir() or info.filename.startswith("__MACOSX/") or Path(info.filename).name.startswith("."))
            ]
            if len(members) != 1:
                raise ValueError(f"zip archive holds {len(members)} files {members[:5]}; it must hold exactly one table")
            with archive.open(members[0]) as handle:
                yield handle
        return
    opener: Any = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open, None: open}[compression]
    with opener(path, "rb") as handle:
        yield handle


def _sniff(header: str) -> str:
    counts = {sep: header.count(sep) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: counts[sep])  # ties: the earlier (tab before comma)
    return best if counts[best] else ","


def read_text_table(path: PathLike, read_kwargs: dict[str, Any] | None = None) -> pd.DataFrame:
    """Read a (compressed) text table with :func:`pandas.read_csv`, sniffing the separator.

    :param path: the file.
    :param read_kwargs: extra :func:`pandas.read_csv` arguments (``sep``, ``decimal``, ...).
    :return: the raw table, column names stripped.
    :raises ValueError: a header naming a column twice, an empty file, a bad zip.
    """
    path = Path(path)
    try:
        _, compression = file_kind(path)
    except ValueError:  # load_csv() of a text file with another suffix
        compression = None
    kwargs = dict(read_kwargs or {})
    with _open_text_bytes(path, compression) as handle:
        raw = handle.read() if compression == "zip" else handle.read(65536)
    text_head = raw[:65536].decode(kwargs.get("encoding") or "utf-8", errors="replace").lstrip("\ufeff")
    header = text_head.splitlines()[0] if text_head.strip() else ""
    if not header.strip():
        raise ValueError("the file is empty or its first line is blank; it needs a header line with column names")
    if "sep" not in kwargs and "delimiter" not in kwargs:
        kwargs["sep"] = _sniff(header)
        if kwargs["sep"] == ";" and "decimal" not in kwargs and re.search(r"\d,\d", "\n".join(text_head.splitlines()[1:6])):
            kwargs["decimal"] = ","  # European files: ";" between fields, "," in numbers
    if kwargs.get("header", "infer") == "infer" and "names" not in kwargs:
        sep = kwargs.get("sep") or kwargs.get("delimiter") or ","
        if isinstance(sep, str) and len(sep) == 1:
            names = [name.strip() for name in next(csv.reader([header], delimiter=sep))]
            seen: dict[str, int] = {}
            for i, name in enumerate(names):
                if name and name in seen:
                    raise ValueError(
                        f"the header names column {name!r} twice (columns {seen[name]} and {i}); pandas would call the "
                        f"second one {name + '.1'!r} and read it as another column: rename or drop one"
                    )
                seen[name] = i
    if compression == "zip":  # the one member, whatever the archive holds besides (__MACOSX/...)
        frame = pd.read_csv(io.BytesIO(raw), **kwargs)
    else:
        frame = pd.read_csv(path, compression=compression, **kwargs)
    frame.columns = [str(c).strip().lstrip("\ufeff") if isinstance(c, str) else c for c in frame.columns]
    return frame


def _require_pyarrow(what: str) -> None:
    try:
        import pyarrow  # noqa: F401
    except ImportError as exc:
        raise ImportError(f"reading {what} files needs pyarrow: {PYARROW_INSTALL_HINT}") from exc


def read_table(path: PathLike, read_kwargs: dict[str, Any] | None = None) -> pd.DataFrame:
    """Read any supported file (see the module table) into a DataFrame.

    :param path: the file.
    :param read_kwargs: extra arguments for the pandas reader of that kind.
    :return: the raw table.
    :raises ImportError: Parquet/Feather without ``pyarrow``, with the install hint.
    """
    kind, _ = file_kind(path)
    if kind == "text":
        return read_text_table(path, read_kwargs)
    if kind == "parquet":
        _require_pyarrow("Parquet")
        return pd.read_parquet(path, engine="pyarrow", **(read_kwargs or {}))
    _require_pyarrow("Feather")
    return pd.read_feather(path, **(read_kwargs or {}))
