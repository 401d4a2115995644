"""Kernels started ahead of their run: fresh per report, nothing leaks between reports, none left behind.

The runs execute a tiny notebook (``tests/test_batch.py``'s, and one that looks for what an earlier
report left) on a :class:`evaluator.runner.kernels.KernelPool`, as a Dask worker runs its reports
(``in_worker``): the next report's kernel boots while the current one runs.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import nbformat
import psutil
import pytest

from evaluator.runner import batch as bt
from evaluator.runner.kernels import KernelPool
from evaluator.runner.run import THREAD_VARS, RunFailed, run_report
from tests.test_batch import write_notebook

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="kernels are killed with SIGKILL")

LOOK = """\
import json, os
seen = sorted(k for k in ("left_by_an_earlier_report", "np") if k in globals())
left_by_an_earlier_report = x
import numpy as np
if crash:
    os.kill(os.getpid(), 9)
record = {"title": "look", "design": "test", "estimate": float(len(seen)), "ci": [0, 1], "pvalue": 0.5,
          "outcome": "y", "outcome_label": "things seen", "n_units": 10}
with open("results.json", "w") as fh:
    json.dump(record, fh)
with open(pid_file, "w") as fh:
    json.dump({"pid": os.getpid(), "seen": seen, "cwd": os.getcwd(),
               "fingerprint": os.environ.get("EVALUATOR_RUN_FINGERPRINT", ""),
               "threads": os.environ.get("OMP_NUM_THREADS")}, fh)
"""


def write_looking_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('x = 1  # a number\ncrash = False  # kill the kernel\npid_file = ""  # where')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(LOOK)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone(pids: list[int]) -> bool:
    procs = []
    for pid in pids:
        try:
            procs.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    _gone_, alive = psutil.wait_procs(procs, timeout=10)
    return not [p for p in alive if _alive(p.pid)]


def _kernels_below_me() -> list[int]:
    return [
        p.pid
        for p in psutil.Process().children(recursive=True)
        if _alive(p.pid) and any("ipykernel" in part for part in p.cmdline())
    ]


@pytest.fixture
def pool():
    env = {**os.environ, **dict.fromkeys(THREAD_VARS, "1")}
    kernels = KernelPool(env, spares=1)
    try:
        yield kernels
    finally:
        kernels.close()


def test_reports_on_one_pool_each_get_a_fresh_kernel_and_the_spare_is_shut_down_at_the_end(tmp_path, pool):
    nb = write_looking_notebook(tmp_path / "look.ipynb")
    seen = []
    for i in range(3):
        info = tmp_path / f"kernel-{i}.json"
        rec = run_report(
            nb, out=tmp_path / f"r{i}", parameters={"x": i, "pid_file": str(info)}, progress=False, kernels=pool
        )
        assert rec.status == "ok"
        seen.append(json.loads(info.read_text()))
    # nothing an earlier report defined or imported into its namespace is visible to the next
    assert [s["seen"] for s in seen] == [[], [], []]
    assert [json.loads((tmp_path / f"r{i}" / "results.json").read_text())["estimate"] for i in range(3)] == [0.0] * 3
    # each report its own kernel, in its own folder, with its own fingerprint; and none of them is left running
    pids = [s["pid"] for s in seen]
    assert len(set(pids)) == 3 and _gone(pids)
    assert all(Path(s["cwd"]).name.startswith(f".r{i}.partial-") for i, s in enumerate(seen))
    assert [s["fingerprint"] for s in seen] == [
        json.loads((tmp_path / f"r{i}" / "manifest.json").read_text())["fingerprint"] for i in range(3)
    ]
    assert {s["threads"] for s in seen} == {"1"}
    # the next report's kernel is booted already; closing the pool ends it
    spares = pool.pids()
    assert len(spares) == 1 and spares[0] not in pids and _alive(spares[0])
    pool.close()
    assert _gone(spares) and pool.pids() == []
    with pytest.raises(RuntimeError, match="stopped"):
        pool.take()


def test_a_failing_cell_and_a_dying_kernel_fail_their_run_only_and_leave_no_kernel(tmp_path, pool):
    write_notebook(tmp_path / "tiny.ipynb")
    nb = write_looking_notebook(tmp_path / "look.ipynb")
    with pytest.raises(RunFailed, match="x must not be zero"):
        run_report(tmp_path / "tiny.ipynb", out=tmp_path / "broken", parameters={"x": 0}, progress=False, kernels=pool)
    info = tmp_path / "crash.json"
    with pytest.raises(RunFailed, match="the kernel|DeadKernel"):
        run_report(
            nb, out=tmp_path / "crash", parameters={"crash": True, "pid_file": str(info)}, progress=False, kernels=pool
        )
    assert json.loads((tmp_path / "crash" / "manifest.json").read_text())["status"] == "failed"
    # the next report on the same pool runs as if nothing had happened
    info = tmp_path / "after.json"
    rec = run_report(nb, out=tmp_path / "after", parameters={"pid_file": str(info)}, progress=False, kernels=pool)
    assert rec.status == "ok" and json.loads(info.read_text())["seen"] == []
    assert set(_kernels_below_me()) == set(pool.pids())  # only the spare is alive
    pool.close()
    assert _kernels_below_me() == []


def test_a_single_report_leaves_no_kernel_and_gives_its_kernel_the_run_folder(tmp_path):
    nb = write_looking_notebook(tmp_path / "look.ipynb")
    info = tmp_path / "k.json"
    rec = run_report(nb, out=tmp_path / "one", parameters={"pid_file": str(info)}, progress=False)
    assert rec.status == "ok"
    seen = json.loads(info.read_text())
    assert seen["seen"] == [] and Path(seen["cwd"]).name.startswith(".one.partial-")
    assert seen["fingerprint"] == rec.manifest["fingerprint"]
    assert _gone([seen["pid"]]) and _kernels_below_me() == []


def test_a_run_over_its_timeout_in_a_worker_kills_its_kernel_spares_the_next_and_stop_runs_ends_the_spare(tmp_path):
    write_notebook(tmp_path / "tiny.ipynb")
    pid_file = tmp_path / "kernel.pid"
    token = "test-kernels"
    slow = bt.RunSpec("slow", tmp_path / "tiny.ipynb", {"sleep": 120.0, "pid_file": str(pid_file)})
    outcome = bt.run_task(bt.RunTask(slow, tmp_path / "reports" / "slow", timeout=8, batch=token, in_process=True))
    assert outcome.status == "timeout" and "killed after 8 s" in outcome.message
    assert _gone([int(pid_file.read_text())])
    spares = bt._kernel_pool(token).pids()
    assert len(spares) == 1 and _alive(spares[0])  # the spare for the next run survived the kill
    quick = bt.RunSpec("quick", tmp_path / "tiny.ipynb", {"x": 2})
    outcome = bt.run_task(bt.RunTask(quick, tmp_path / "reports" / "quick", batch=token, in_process=True))
    assert outcome.status == "ok" and outcome.estimate == 3.0
    spares = bt._kernel_pool(token).pids()
    bt.stop_runs(token, str(tmp_path / "reports"))  # an interrupted batch: the spare goes too
    assert _gone(spares) and _kernels_below_me() == []
    assert bt.release_kernels(token) == 0  # nothing left to release
