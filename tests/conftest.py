"""Shared fixtures: the reference data folder beside the repository, if present; and the test processes'
watchdog (``tests/watchdog.py``: a hung or runaway test is named in the run's summary)."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import pytest

from tests.watchdog import (  # noqa: F401 (pytest finds hooks by name in a conftest)
    pytest_configure,
    pytest_runtest_protocol,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

matplotlib.use("Agg")

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """``../shared/reference``; tests using it skip cleanly when it is absent."""
    if not REFERENCE.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE} (../shared/ is not beside this checkout)")
    return REFERENCE


@pytest.fixture(scope="session")
def rendered_reports(tmp_path_factory) -> dict[str, Path]:
    """Both report notebooks rendered once with their defaults (bundled data): name -> report folder."""
    from evaluator.runner.parameters import notebook_path
    from evaluator.runner.run import run_report

    root = tmp_path_factory.mktemp("reports")
    out = {}
    for name in ("did_evaluation", "matched_evaluation"):
        out[name] = run_report(notebook_path(name), out=root / name, progress=False).out
    return out
