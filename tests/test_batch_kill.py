"""Nothing lost: a batch killed with SIGKILL midway leaves every finished report complete,
an index that lists exactly those, and a re-run that finishes only what is missing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from evaluator.runner.processes import descendants
from tests.test_batch import write_notebook

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
RUNS = 4


def _kill_everything(pid: int) -> None:
    """SIGKILL the batch and every process under it, kernels included, as a power cut or the OOM killer would."""
    victims = [pid, *descendants(pid)]
    for p in victims:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _complete(folder: Path) -> bool:
    man = folder / "manifest.json"
    return man.is_file() and json.loads(man.read_text())["status"] == "ok"


def test_sigkill_midway_loses_nothing_finished(tmp_path):
    write_notebook(tmp_path / "tiny.ipynb")
    runs = "\n".join(f"  - name: run-{i}\n    parameters: {{x: {i + 1}, sleep: 1.0}}" for i in range(RUNS))
    spec = tmp_path / "batch.yaml"
    spec.write_text(textwrap.dedent("defaults:\n  notebook: tiny.ipynb\nruns:\n") + runs + "\n", encoding="utf-8")
    out = tmp_path / "reports"
    cmd = [sys.executable, "-m", "evaluator", "batch", str(spec), "--out", str(out), "--jobs", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not (out / "index.json").is_file():
            assert proc.poll() is None, "the batch ended before it could be killed"
            time.sleep(0.05)
        assert (out / "index.json").is_file(), "no run finished within 240 s"
    finally:
        _kill_everything(proc.pid)
        proc.wait(timeout=30)
    time.sleep(0.5)

    finished = sorted(p.name for p in out.iterdir() if not p.name.startswith(".") and p.is_dir())
    assert 1 <= len(finished) < RUNS, finished
    for name in finished:  # every folder that looks like a report is a complete one
        folder = out / name
        assert _complete(folder), name
        assert (folder / "report.html").stat().st_size > 0 and (folder / "results.json").is_file()
    index = json.loads((out / "index.json").read_text())
    rows = index["runs"] if isinstance(index, dict) else index
    listed = sorted(r["name"] for r in rows)
    assert set(listed) <= set(finished) and all(r["status"] == "ok" for r in rows)
    page = (out / "index.html").read_text()
    assert all(f"{n}/report.html" in page for n in listed)

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    rows = json.loads((out / "index.json").read_text())
    rows = rows["runs"] if isinstance(rows, dict) else rows
    assert sorted(r["name"] for r in rows) == [f"run-{i}" for i in range(RUNS)]
    assert all(_complete(out / f"run-{i}") for i in range(RUNS))
    for name in finished:  # the re-run left the finished reports alone
        assert "skipped" in done.stdout.split(name, 1)[1].splitlines()[0], done.stdout
    assert not [p for p in out.iterdir() if ".partial-" in p.name], "half-built folders left after the re-run"
