"""Writing files so that a reader never sees half of one: atomic text, frames and folder swaps."""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["PACKAGE", "atomic_write_text", "jsonable", "sha256_file", "shipped", "swap_into_place", "write_frame"]

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
    """Hex sha256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def swap_into_place(partial: Path, out: Path) -> None:
    """Replace ``out`` by ``partial`` with renames, so ``out`` is never a mix of old and new."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        out.rename(old)
    partial.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def jsonable(x: Any) -> Any:
    """Plain JSON values for numbers, arrays and frames; NaN and infinity become null."""
    if isinstance(x, Mapping):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, pd.DataFrame):
        return jsonable(x.to_dict(orient="records"))
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if isinstance(x, (str, int, bool)) or x is None:
        return x
    return str(x)
