"""The test processes' watchdog (``tests/watchdog.py``): a hung test and a runaway one end their process,
and the run's summary names them with their tracebacks, under pytest-xdist as ``make test`` runs it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

HANGS = """\
import time

def test_hangs():
    time.sleep(60)
"""

GROWS = """\
import time
import numpy as np

def test_grows():
    block = np.ones(2**27)  # 1 GiB, past the limit below
    time.sleep(30)
"""

PASSES = """\
def test_passes():
    assert 1 + 1 == 2
"""


def _run(tmp_path: Path, files: dict[str, str], **env: str) -> subprocess.CompletedProcess:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.watchdog", "-n", "2", "--dist", "loadfile",
         "--max-worker-restart=0", "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=240,
        env={**os.environ, "PYTHONPATH": str(REPO), "EVALUATOR_TEST_WATCHDOG_DIR": str(tmp_path / "watchdog"), **env},
    )  # fmt: skip


def test_a_hung_test_is_named_with_its_traceback_and_the_run_ends(tmp_path):
    run = _run(tmp_path, {"test_hangs.py": HANGS, "test_passes.py": PASSES}, EVALUATOR_TEST_TIMEOUT="3")
    out = run.stdout
    assert run.returncode != 0, out
    assert "test_hangs.py::test_hangs ran over 3 s; every thread's traceback follows" in out, out
    assert "in test_hangs" in out, out  # the hung test's own frame
    assert "1 failed" in out and "crashed while running 'test_hangs.py::test_hangs'" in out, out


def test_a_test_whose_memory_runs_away_is_named_and_ended(tmp_path):
    run = _run(tmp_path, {"test_grows.py": GROWS, "test_passes.py": PASSES}, EVALUATOR_TEST_MAX_GB="0.5")
    out = run.stdout
    assert run.returncode != 0, out
    used = re.search(r"test_grows.py::test_grows used (\d+\.\d) GB \(limit 0.5 GB, this process and 0 below", out)
    assert used and float(used.group(1)) >= 0.5, out  # past 0.5 GiB, printed to a tenth
    assert "in test_grows" in out, out
    assert "largest memory" in out and "test_passes.py::test_passes" in out, out
