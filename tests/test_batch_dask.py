"""Batches on Dask: a real LocalCluster (2 worker processes, loopback) runs demo reports bit for bit as the
local pool does, loses only a retry when a worker is killed by its PID, and a rerun skips everything; the
choice of executor (``--scheduler``, ``executor:``) is checked with messages that name the option.

The cluster tests run three of the demo batch's reports (notebooks/demo_batch.yaml; each takes 5-15 s) on the
pool and on the cluster, and the tiny notebook of tests/test_batch.py for timeouts and failures.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import psutil
import pytest

from evaluator.runner import batch as bt
from evaluator.runner import executors as ex
from evaluator.runner.parameters import notebook_path
from tests.test_batch import write_batch, write_notebook

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="worker processes are killed with SIGKILL")

#: Three demo reports of different designs (matched comparison twice, two-way fixed effects).
DEMO = ["reoffending", "employment-employed_6m", "sick-leave-twfe"]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


@pytest.fixture(scope="module")
def cluster():
    """A LocalCluster of 2 worker processes on the loopback interface, for the module."""
    pytest.importorskip("distributed")
    executor = ex.open_executor(ex.ExecutorSpec("dask", "local:2"), jobs=2)
    try:
        yield executor
    finally:
        executor.shutdown()


# -- choosing the executor (no cluster) -----------------------------------------------------
@pytest.mark.parametrize(
    ("scheduler", "match"),
    [("local:0", "at least 1 worker"), ("localhost", "tcp://host:8786"), ("", "local:N"), ("local:two", "local:N")],
)
def test_a_bad_scheduler_is_refused_naming_the_option(scheduler, match):
    with pytest.raises(bt.BatchError, match=match) as err:
        ex.executor_spec(scheduler)
    assert "--scheduler" in str(err.value)


def test_scheduler_and_executor_names():
    assert ex.executor_spec("local:3") == ex.ExecutorSpec("dask", "local:3")
    assert ex.executor_spec("tcp://10.1.2.3:8786").scheduler == "tcp://10.1.2.3:8786"
    assert ex.executor_spec(None, "local") == ex.ExecutorSpec("local")
    with pytest.raises(bt.BatchError, match="needs a scheduler"):
        ex.executor_spec(None, "dask")
    with pytest.raises(bt.BatchError, match="unknown executor 'ray'.*dask, local"):
        ex.executor_spec(None, "ray")
    assert set(ex.EXECUTORS) == {"local", "dask"}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("executor: dask\n", "'dask' needs a scheduler"),
        ("executor: ray\n", "unknown executor 'ray'"),
        ("executor: {name: dask, scheduler: 'localhost:8786'}\n", "field 'scheduler': expected 'local:N'"),
        ("executor: {name: dask, adress: 'tcp://h:1'}\n", "executor: expected 'local'.*got"),
        ("executor: [local]\n", "executor: expected 'local'"),
        ("executor: {name: local, in_worker: true}\n", "'local' takes no in_worker"),
    ],
)
def test_a_bad_executor_key_is_refused_naming_the_key(folder_with_tiny, text, match):
    path = write_batch(folder_with_tiny, text + "defaults: {notebook: tiny.ipynb}\nruns: [{name: a}]\n")
    with pytest.raises(bt.BatchError, match=match):
        bt.load_batch(path)


def test_the_executor_key_is_read_and_kept_by_select(folder_with_tiny):
    path = write_batch(
        folder_with_tiny,
        "executor: {name: dask, scheduler: 'local:2', in_worker: true}\n"
        "defaults: {notebook: tiny.ipynb}\nruns: [{name: a}, {name: b}]\n",
    )
    batch = bt.load_batch(path)
    assert batch.executor == ex.ExecutorSpec("dask", "local:2", in_worker=True)
    assert batch.select(["b"]).executor == batch.executor
    plain = write_batch(folder_with_tiny, "defaults: {notebook: tiny.ipynb}\nruns: [{name: a}]\n", "plain.yaml")
    assert bt.load_batch(plain).executor is None


def test_jobs_with_a_scheduler_and_in_worker_on_the_pool_are_refused(folder_with_tiny):
    path = write_batch(folder_with_tiny, "defaults: {notebook: tiny.ipynb}\nruns: [{name: a}]\n")
    batch = bt.load_batch(path)
    with pytest.raises(bt.BatchError, match="--jobs sets the width of the local pool"):
        bt.run_batch(batch, out=folder_with_tiny / "r", jobs=2, scheduler="local:2", progress=False)
    with pytest.raises(bt.BatchError, match="in_worker"):
        bt.run_batch(batch, out=folder_with_tiny / "r", in_worker=True, progress=False)


def test_without_dask_the_scheduler_says_what_to_install(folder_with_tiny, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)  # `import distributed` raises ImportError
    path = write_batch(folder_with_tiny, "defaults: {notebook: tiny.ipynb}\nruns: [{name: a}]\n")
    args = argparse.Namespace(
        batch=str(path), out=str(folder_with_tiny / "r"), jobs=None, force=False, timeout=None, no_progress=True,
        scheduler="local:2", executor=None, in_worker=None,
    )  # fmt: skip
    assert bt.cli_batch(args) == 2
    err = capsys.readouterr().err
    assert "pip install 'evaluator[cluster]'" in err and "Traceback" not in err


def test_the_command_line_takes_scheduler_executor_and_in_worker():
    parser = argparse.ArgumentParser()
    bt.add_batch_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["batch", "b.yaml", "--scheduler", "tcp://h:8786", "--in-worker"])
    assert (args.scheduler, args.executor, args.in_worker) == ("tcp://h:8786", None, True)
    args = parser.parse_args(["batch", "b.yaml", "--executor", "local"])
    assert (args.scheduler, args.executor, args.in_worker) == (None, "local", None)


def test_an_input_the_worker_cannot_read_is_taken_from_the_task_or_named(tmp_path):
    data = tmp_path / "panel.csv"
    data.write_text("a,b\n1,2\n")
    spec = bt.RunSpec("r", tmp_path / "nb.ipynb", {"data_path": str(tmp_path / "gone" / "panel.csv"), "x": 1})
    sha = "0" * 63 + "1"
    task = bt.RunTask(spec, tmp_path / "out" / "r", inputs=(("data_path", spec.parameters["data_path"], sha),))
    run, problem = bt._localize(task, {sha: data.read_bytes()})
    assert problem is None and run.parameters["x"] == 1
    assert Path(run.parameters["data_path"]).read_text() == "a,b\n1,2\n"
    assert Path(run.parameters["data_path"]).name == "panel.csv"
    _run, problem = bt._localize(task, {})
    assert "cannot be read on" in problem and "parameter 'data_path'" in problem and "docs/cluster.md" in problem


@pytest.fixture
def folder_with_tiny(tmp_path: Path) -> Path:
    write_notebook(tmp_path / "tiny.ipynb")
    return tmp_path


# -- a real LocalCluster ----------------------------------------------------------------------
def _kill_a_busy_worker(executor, out: Path, first_done: threading.Event) -> dict:
    """After the first run finished, SIGKILL a worker process (by its PID) that is running another run."""
    assert first_done.wait(240), "no run finished within 240 s"
    finished = {p.parent.name: p.read_text() for p in out.glob("*/manifest.json")}
    pids = executor.worker_pids()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        busy = {addr: keys for addr, keys in executor.client.processing().items() if keys and addr in pids}
        if busy:
            break
        time.sleep(0.1)
    assert busy, "no worker was running a run"
    addr, keys = next(iter(busy.items()))
    victim = pids[addr]
    runs_below = psutil.Process(victim).children(recursive=True)  # its `evaluator report` process and kernel
    killed_at = time.time()
    os.kill(victim, signal.SIGKILL)
    name = next(iter(keys)).removeprefix("evaluator-").rsplit("-", 1)[0]
    return {"finished": finished, "run": name, "at": killed_at, "orphans": runs_below}


def test_localcluster_reports_match_the_pool_bit_for_bit_a_killed_worker_costs_a_retry_and_reruns_skip(
    tmp_path, cluster, monkeypatch
):
    demo = bt.load_batch(notebook_path("demo_batch.yaml")).select(DEMO)
    pool = bt.run_batch(demo, out=tmp_path / "pool", jobs=2, progress=False)
    assert pool.ok, str(pool)

    out = tmp_path / "dask"
    first_done = threading.Event()
    original = bt.write_index

    def index_then_signal(*args, **kwargs):  # the client rewrites the index as each run finishes
        path = original(*args, **kwargs)
        first_done.set()
        return path

    result: dict = {}

    def batch() -> None:
        result["summary"] = bt.run_batch(demo, out=out, executor=cluster, progress=False)

    monkeypatch.setattr(bt, "write_index", index_then_signal)
    thread = threading.Thread(target=batch)
    thread.start()
    kill = _kill_a_busy_worker(cluster, out, first_done)
    thread.join(600)
    monkeypatch.undo()
    assert not thread.is_alive()
    summary = result["summary"]
    assert [r.status for r in summary.runs] == ["ok"] * len(DEMO), str(summary)
    assert summary.where.startswith("2 Dask worker threads")

    # bit for bit: results.json holds no time nor path, so the files are compared whole
    for name in DEMO:
        assert (out / name / "results.json").read_bytes() == (tmp_path / "pool" / name / "results.json").read_bytes()
        assert _manifest(out / name)["fingerprint"] == _manifest(tmp_path / "pool" / name)["fingerprint"]
    # nothing finished was redone; the killed run was run again after the kill
    assert kill["finished"] and kill["run"] not in kill["finished"]
    for name, text in kill["finished"].items():
        assert (out / name / "manifest.json").read_text() == text, name
    retried = _manifest(out / kill["run"])
    assert retried["status"] == "ok" and datetime.fromisoformat(retried["started"]).timestamp() >= kill["at"] - 1
    assert kill["orphans"], "the killed worker was running no report process"
    # the killed worker's run did not go on as an orphan (it dies with its worker), and left no half-built folder
    gone, alive = psutil.wait_procs(kill["orphans"], timeout=15)
    assert not alive, f"processes of the killed worker's run survived: {alive}"
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    rows = {r["name"]: r["status"] for r in json.loads((out / "index.json").read_text())["runs"]}
    assert rows == dict.fromkeys(DEMO, "ok")

    # a rerun skips everything, on the cluster as on the pool
    again = bt.run_batch(demo, out=out, executor=cluster, progress=False)
    assert [r.status for r in again.runs] == ["skipped"] * len(DEMO) and again.seconds < 10
    assert len(cluster.worker_pids()) == 2  # the nanny restarted the killed worker

    # a report run inside its worker (warm imports) is the same report, bit for bit
    warm = bt.run_batch(demo.select(DEMO[:1]), out=tmp_path / "warm", executor=cluster, in_worker=True, progress=False)
    assert warm.ok, str(warm)
    assert (tmp_path / "warm" / DEMO[0] / "results.json").read_bytes() == (out / DEMO[0] / "results.json").read_bytes()


@pytest.mark.parametrize("in_worker", [False, True], ids=["run-process", "in-worker"])
def test_on_the_cluster_a_failure_is_recorded_and_a_run_over_its_timeout_is_killed_with_its_kernel(
    folder_with_tiny, cluster, in_worker
):
    pid_file = folder_with_tiny / "kernel.pid"
    path = write_batch(
        folder_with_tiny,
        f"""
        defaults: {{notebook: tiny.ipynb}}
        runs:
          - {{name: quick, parameters: {{x: 2}}}}
          - {{name: broken, parameters: {{x: 0}}}}
          - {{name: slow, timeout: 10, parameters: {{sleep: 120, pid_file: "{pid_file}"}}}}
        """,
    )
    out = folder_with_tiny / "reports"
    t0 = time.perf_counter()
    summary = bt.run_batch(bt.load_batch(path), out=out, executor=cluster, in_worker=in_worker, progress=False)
    assert time.perf_counter() - t0 < 60
    status = {r.name: r.status for r in summary.runs}
    assert status == {"quick": "ok", "broken": "failed", "slow": "timeout"}, str(summary)
    assert "x must not be zero" in str(summary)
    assert json.loads((out / "quick" / "results.json").read_text())["estimate"] == 3.0
    manifest = _manifest(out / "slow")
    assert manifest["status"] == "timeout" and "killed after 10 s" in manifest["error"]["evalue"]
    assert pid_file.is_file(), "the slow run's kernel had not started within its timeout; machine overloaded?"
    kernel = int(pid_file.read_text())
    deadline = time.time() + 10
    while _alive(kernel):
        assert time.time() < deadline, "the timed-out run's kernel survived"
        time.sleep(0.1)
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    rows = {r["name"]: r["status"] for r in json.loads((out / "index.json").read_text())["runs"]}
    assert rows == {"quick": "ok", "broken": "failed", "slow": "timeout"}
