"""Where a number came from: package versions, the git commit and the time, for manifests and appendices."""

from __future__ import annotations

import platform
import subprocess
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["VERSIONED", "git_commit", "package_versions", "utc_now"]

#: Packages whose versions go into every manifest.
VERSIONED = (
    "evaluator",
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "linearmodels",
    "matplotlib",
    "papermill",
    "nbconvert",
    "nbclient",
    "ipykernel",
)


def package_versions() -> dict[str, str]:
    """Python's version and those of the packages in ``VERSIONED`` that are installed.

    >>> sorted(package_versions())[:2]
    ['evaluator', 'ipykernel']
    """
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_commit(folder: Path) -> dict[str, Any] | None:
    """The commit checked out at ``folder`` and whether tracked files differ from it; None outside git."""
    try:
        head = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(folder), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": head, "dirty": bool(dirty)}


def utc_now() -> str:
    """The time now in UTC, ISO 8601 to the second (manifests, batch records, the index)."""
    return datetime.now(UTC).isoformat(timespec="seconds")
