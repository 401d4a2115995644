"""Writing files so that a reader never sees half of one: atomic text, frames and folder swaps."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "PACKAGE",
    "atomic_write_text",
    "jsonable",
    "sha256_file",
    "shipped",
    "size_of",
    "swap_into_place",
    "write_frame",
]

#: The installed package's folder.
PACKAGE = Path(__file__).resolve().parent


def shipped(folder: str) -> Path:
    """A folder shipped beside the package: the repository's in a source checkout, else the wheel's copy.

    ``data_schemas/`` and ``notebooks/`` live at the top of the repository, where data stewards
    and evaluators find them; a wheel carries copies inside the package (``pyproject.toml``).

    >>> shipped("data_schemas").joinpath("panel.schema.json").is_file()
    True
    """
    for base in (PACKAGE.parent / folder, PACKAGE / folder):
        if base.is_dir():
            return base
    return PACKAGE / folder


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    """Write a DataFrame as Parquet or CSV (by the file's suffix) through a temporary file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in {".parquet", ".pq", ".csv"}:
        raise ValueError("use a .parquet or .csv file name")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if suffix == ".csv":
        frame.to_csv(tmp, index=False)
    else:
        frame.to_parquet(tmp, index=False)
    tmp.replace(path)
    return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in chunks; of a folder, of its files' relative names and hashes.

    A folder (a Parquet data set) is named by its content as a file is: renaming or moving
    the folder keeps the hash, changing, adding or removing a file inside changes it.
    Hidden files (``.name``, as Spark's ``_SUCCESS`` markers are not) are left out.

    Examples
    --------
    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = (Path(tmp) / "a.parquet").write_bytes(b"x")
    ...     sha256_file(Path(tmp)) == sha256_file(Path(tmp))
    True
    """
    path = Path(path)
    if path.is_dir():
        h = hashlib.sha256()
        for file in _files_of(path):
            h.update(f"{file.relative_to(path).as_posix()}\0{sha256_file(file)}\n".encode())
        return h.hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def size_of(path: Path) -> int:
    """Bytes of a file, or of the files in a folder (as :func:`sha256_file` counts them)."""
    path = Path(path)
    return sum(f.stat().st_size for f in _files_of(path)) if path.is_dir() else path.stat().st_size


def _files_of(folder: Path) -> list[Path]:
    """The files below ``folder``, sorted, hidden ones left out."""
    return sorted(
        f for f in folder.rglob("*") if f.is_file() and not any(p.startswith(".") for p in f.relative_to(folder).parts)
    )


def swap_into_place(partial: Path, out: Path) -> None:
    """Replace ``out`` by ``partial`` with renames, so ``out`` is never a mix of old and new."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        out.rename(old)
    partial.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _loaded(module: str, name: str) -> Any:
    """``module.name`` if that module is imported (and has got that far), else None; imports nothing."""
    return getattr(sys.modules.get(module), name, None)


def jsonable(x: Any) -> Any:
    """Plain JSON values for numbers, arrays and frames; NaN and infinity become null.

    numpy and pandas are looked up where already imported, never imported here: a value cannot be
    an array or a frame before its module is loaded (and a manifest of plain values needs neither).
    """
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    frame, array, integer, floating = (
        _loaded("pandas", "DataFrame"),
        _loaded("numpy", "ndarray"),
        _loaded("numpy", "integer"),
        _loaded("numpy", "floating"),
    )
    if frame is not None and isinstance(x, frame):
        return jsonable(x.to_dict(orient="records"))
    if array is not None and isinstance(x, array):
        return jsonable(x.tolist())
    if integer is not None and isinstance(x, integer):
        return int(x)
    if isinstance(x, float) or (floating is not None and isinstance(x, floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    return str(x)
