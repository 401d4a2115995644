"""Batches: many report runs from one YAML file, in parallel, with an index page.

A batch file names runs; each run is one :func:`evaluator.runner.run_report` into
``OUT/NAME/``. Paths are relative to the batch file's folder; a bare notebook name
without a folder (``did_evaluation``) also finds the notebooks shipped with evaluator.

.. code-block:: yaml

    executor: {name: dask, scheduler: "local:4"}   # optional: where the runs execute (default: local)
    defaults:                            # optional, applied to every run
      notebook: did_evaluation.ipynb     # paths relative to the batch file's folder
      timeout: 600                       # seconds per run (the whole run, kernel included)
      parameters: {n_boot: 499}
    runs:                                # explicit runs
      - name: sick-leave-cs              # the run's folder: letters, digits, '.', '_' and '-'
        notebook: did_evaluation.ipynb
        data: ../data/x.parquet          # optional; sets the notebook's data_path
        parameters: {estimator: callaway_santanna}
    grid:                                # optional: one run per combination (cartesian product)
      - name: "employment-{outcome}"     # str.format with the grid values (the name only)
        notebook: matched_evaluation.ipynb
        parameters: {data_path: "bundled:employment_sib", outcome_label: "share in work (0 to 1)"}
        vary: {outcome: [employed_6m, employed_12m, employed_24m]}

A run's parameters are, later winning: ``defaults.parameters``, ``defaults.data``,
the run's ``parameters``, the run's ``data``, and (grid) the varied values.

:func:`load_batch` checks everything before anything runs (the schema, every
notebook, every run's parameters against its notebook's ``parameters`` cell and
every input file) and raises one :class:`BatchError` listing all problems.
:func:`run_batch` runs each run in its own process (``python -m evaluator report``,
in a new session so that a run over its timeout is killed with its kernel), skips
runs whose folder already holds an ``ok`` report with the same fingerprint, and
writes ``OUT/index.html`` (:func:`write_index`) over every report in ``OUT``. Where the runs
execute is pluggable (:mod:`evaluator.runner.executors`): a thread pool driving the run
processes (the default), or the workers of a Dask cluster (``--scheduler``), each run the same
:func:`run_task`; the skip check, the progress bar and the index stay with the client.

The pieces, one module each: ``batch_file`` reads and checks the file (its shape is
``data_schemas/batch.schema.json``), ``processes`` starts the runs and kills a run's
process tree, ``index`` writes the index page, ``executors`` holds the pool and the Dask client;
this module runs a batch, sums it up and is the ``evaluator batch`` command. Their public names are re-exported here.

Examples
--------
>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "batch.yaml").write_text('''
... grid:
...   - name: "employment-{outcome}"
...     notebook: matched_evaluation
...     parameters: {outcome_label: "share in work (0 to 1)"}
...     vary: {outcome: [employed_6m, employed_12m]}
... ''')
>>> [run.name for run in load_batch(folder / "batch.yaml").runs]
['employment-employed_6m', 'employment-employed_12m']
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from evaluator.errors import EvaluatorError
from evaluator.files import PACKAGE
from evaluator.provenance import utc_now
from evaluator.runner.batch_file import Batch, BatchError, RunSpec, load_batch
from evaluator.runner.executors import EXECUTORS, Executor, ExecutorSpec, executor_spec, open_executor
from evaluator.runner.index import index_interval, index_number, index_p, index_seconds, read_json, write_index
from evaluator.runner.kernels import KernelPool
from evaluator.runner.processes import Processes, remove_dead_leftovers, remove_leftovers

__all__ = [
    "Batch",
    "BatchError",
    "BatchSummary",
    "ExecutorSpec",
    "RunOutcome",
    "RunSpec",
    "RunTask",
    "add_batch_parser",
    "add_run_options",
    "cli_batch",
    "load_batch",
    "run_batch",
    "run_task",
    "stop_runs",
    "write_index",
]

Status = Literal["ok", "failed", "skipped", "timeout"]


# -- outcomes -------------------------------------------------------------------------
@dataclass(frozen=True)
class RunOutcome:
    """How one run of a batch ended.

    Attributes
    ----------
    name : str
        The run (and its folder under ``out``).
    status : {"ok", "failed", "skipped", "timeout"}
        ``skipped``: the folder already held an ok report with the same fingerprint.
    seconds : float
        How long the run took: the ``duration_s`` of the run's own ``manifest.json``, the
        number ``index.html`` shows (for a skipped run, that of the run that made the
        report). A run that left no manifest (killed, timed out, or failed before the
        report started) is timed around its process, and that time is written into the
        ``manifest.json`` recorded for it, so the index shows the same number.
    estimate, ci, pvalue
        Headline numbers from the run's ``results.json`` (None when absent).
    message : str
        Why it failed (the failing cell and exception, or the last lines the process wrote), or ``""``.
    exit_code : int or None
        The ``evaluator report`` process's exit status (None when skipped or killed).
    """

    name: str
    status: Status
    seconds: float = 0.0
    estimate: float | None = None
    ci: tuple[float, float] | None = None
    pvalue: float | None = None
    message: str = ""
    exit_code: int | None = None


@dataclass(frozen=True)
class BatchSummary:
    """What :func:`run_batch` did: one :class:`RunOutcome` per run, the index page and the wall time."""

    runs: tuple[RunOutcome, ...]
    out: Path
    index: Path | None = None
    seconds: float = 0.0
    jobs: int = 1
    #: Where the runs executed, as the summary says it ("2 jobs", "2 Dask worker threads on a LocalCluster").
    where: str = ""
    #: Seconds spent importing Dask and starting (or reaching) its cluster, included in ``seconds``; None on the pool.
    cluster_seconds: tuple[float, float] | None = None

    @property
    def ok(self) -> bool:
        """True when every run is ``ok`` or ``skipped``."""
        return all(r.status in ("ok", "skipped") for r in self.runs)

    @property
    def exit_code(self) -> int:
        """0 when every run is ok or skipped, else 1."""
        return 0 if self.ok else 1

    def counts(self) -> dict[str, int]:
        """Number of runs per status."""
        out: dict[str, int] = {}
        for r in self.runs:
            out[r.status] = out.get(r.status, 0) + 1
        return out

    def table(self) -> Any:
        """The runs as a DataFrame (columns name, status, seconds, estimate, ci_low, ci_high, pvalue, message).

        ``seconds`` is each run's ``duration_s`` in ``index.json`` (see :attr:`RunOutcome.seconds`).
        """
        import pandas as pd

        rows = [
            {
                "name": r.name,
                "status": r.status,
                "seconds": r.seconds,
                "estimate": r.estimate,
                "ci_low": r.ci[0] if r.ci else None,
                "ci_high": r.ci[1] if r.ci else None,
                "pvalue": r.pvalue,
                "message": r.message,
            }
            for r in self.runs
        ]
        columns = ["name", "status", "seconds", "estimate", "ci_low", "ci_high", "pvalue", "message"]
        return pd.DataFrame(rows, columns=columns)

    def __str__(self) -> str:
        header = ["run", "status", "duration", "estimate", "interval", "p-value"]
        rows = []
        for r in self.runs:  # the numbers as index.html writes them (evaluator.runner.index)
            row = [r.name, r.status, index_seconds(r.seconds), index_number(r.estimate), index_interval(r.ci)]
            rows.append([*row, index_p(r.pvalue)])
        widths = [max(len(h), *(len(row[i]) for row in rows)) if rows else len(h) for i, h in enumerate(header)]
        right = {2, 3, 5}

        def line(cells: Sequence[str]) -> str:
            return "  ".join(
                c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
            )

        lines = [line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)]
        counts = ", ".join(f"{n} {s}" for s, n in self.counts().items())
        lines.append("")
        jobs = self.where or f"{self.jobs} job{'s' if self.jobs != 1 else ''}"
        lines.append(f"{len(self.runs)} runs in {self.seconds:.1f} s with {jobs}: {counts}")
        if self.cluster_seconds is not None:
            imports, start = self.cluster_seconds
            lines.append(f"of which {imports:.2f} s importing Dask and {start:.2f} s starting or reaching its cluster")
        for r in self.runs:
            if r.message and r.status in ("failed", "timeout"):
                lines.append(f"{r.name} {r.status}: {r.message}")
        if self.index is not None:
            lines.append(f"index: {self.index}")
        return "\n".join(line.rstrip() for line in lines)


# -- running ------------------------------------------------------------------------
def _cli_value(value: Any, kind: str) -> str:
    """A checked parameter value as ``evaluator report -p`` text that coerces back to the same value."""
    if isinstance(value, str) and kind == "str":
        return value
    return json.dumps(value)


def _command(run: RunSpec, folder: Path) -> list[str]:
    from evaluator.runner.parameters import notebook_parameters

    kinds = {k: p.kind for k, p in notebook_parameters(run.notebook).items()}
    cmd = [sys.executable, "-m", "evaluator", "report", str(run.notebook), "--out", str(folder), "--no-progress"]
    for key, value in run.parameters.items():
        cmd += ["-p", key, _cli_value(value, kinds.get(key, "any"))]
    return cmd


def _write_record(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Replace ``folder`` by one holding only ``manifest.json`` (a run that left no record of its own)."""
    from evaluator.files import atomic_write_text, swap_into_place

    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    partial.mkdir(parents=True)
    atomic_write_text(partial / "manifest.json", json.dumps(manifest, indent=2, default=str))
    swap_into_place(partial, folder)


def _tail(text: str, n: int = 5) -> str:
    noise = ("[IPKernelApp] WARNING", "Kernel is running over TCP")  # every kernel's start-up warning
    lines = [ln for ln in (text or "").splitlines() if ln.strip() and not any(x in ln for x in noise)]
    return " | ".join(ln.strip() for ln in lines[-n:])


def _duration(manifest: Mapping[str, Any] | None) -> float | None:
    """A manifest's ``duration_s`` (the run's own measure, and what the index shows), None when it has none."""
    value = (manifest or {}).get("duration_s")
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    return float(value) if ok else None


def _own_manifest(folder: Path, started: str) -> dict[str, Any] | None:
    """The manifest the run started at ``started`` wrote, or None: the folder may still hold an older run's."""
    manifest = read_json(folder / "manifest.json")
    if manifest is None or str(manifest.get("started") or "") < started:  # ISO 8601 UTC, comparable as text
        return None
    return manifest


def _outcome_from_folder(
    name: str, folder: Path, status: Status, seconds: float, message: str = "", exit_code: int | None = None
) -> RunOutcome:
    """The outcome of the report in ``folder``; its duration is the manifest's, else ``seconds``."""
    results = read_json(folder / "results.json") or {}
    ci = results.get("ci")
    ci_t = (ci[0], ci[1]) if isinstance(ci, list) and len(ci) == 2 else None
    recorded = _duration(read_json(folder / "manifest.json"))
    seconds = recorded if recorded is not None else round(seconds, 3)
    return RunOutcome(name, status, seconds, results.get("estimate"), ci_t, results.get("pvalue"), message, exit_code)


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _execute(
    run: RunSpec,
    folder: Path,
    timeout: float | None,
    env: Mapping[str, str],
    fp: str | None,
    procs: Processes,
    pdf: bool = False,
    die_with_parent: bool = False,
) -> RunOutcome:
    """Run one ``evaluator report`` process; kill it with its kernel if it overruns ``timeout``."""
    started, t0 = utc_now(), time.perf_counter()
    proc = procs.start(_command(run, folder) + (["--pdf"] if pdf else []), env, die_with_parent=die_with_parent)
    if proc is None:
        return RunOutcome(run.name, "failed", message="not started: the batch was interrupted")
    stderr, timed_out = procs.wait(proc, timeout)
    seconds = round(time.perf_counter() - t0, 3)  # only used when the run left no manifest of its own
    if timed_out:
        remove_leftovers(folder.parent, proc.pid)
        message = f"killed after {timeout:g} s (the run's timeout), kernel included"
        _write_failure(folder, run, fp, "timeout", started, seconds, "Timeout", message)
        return RunOutcome(run.name, "timeout", seconds, message=message)
    manifest = _own_manifest(folder, started)
    if proc.returncode == 0 and manifest is not None:
        return _outcome_from_folder(run.name, folder, "ok", seconds, exit_code=0)
    message = _manifest_message(manifest) if proc.returncode == 1 else ""
    if not message and proc.returncode < 0:
        message = f"killed by signal {-proc.returncode}"
    if not message and proc.returncode == 0:
        message = "the report process ended without writing its manifest.json"
    if not message:
        message = _tail(stderr) or f"exit status {proc.returncode}"
    recorded = _duration(manifest)
    if recorded is not None:
        seconds = recorded
    elif not procs.stopping:  # an interrupted batch leaves the folder as it was (an older report stays)
        if proc.returncode < 0:
            remove_leftovers(folder.parent, proc.pid)
        _write_failure(folder, run, fp, "failed", started, seconds, "RunFailed", message)
    return RunOutcome(run.name, "failed", seconds, message=message, exit_code=proc.returncode)


def _manifest_message(manifest: Mapping[str, Any] | None) -> str:
    """Why the report of ``manifest`` failed (the cell and exception), or ``""`` when it does not say."""
    if not manifest or manifest.get("status") not in ("failed", "flagged") or not manifest.get("error"):
        return ""
    err = manifest["error"]
    cell = f"cell {err['cell_index']}" if err.get("cell_index") is not None else "the kernel"
    return f"{cell}: {err.get('ename')}: {err.get('evalue')} (notebook: {err.get('notebook')})"


#: One report at a time runs inside a process (``in_worker``): run_report sets the environment its kernel inherits.
_IN_PROCESS = threading.Lock()


def _execute_in_process(
    run: RunSpec,
    folder: Path,
    timeout: float | None,
    fp: str | None,
    procs: Processes,
    pdf: bool = False,
    batch: str = "",
) -> RunOutcome:
    """Run one report inside this (long-lived worker) process, its imports warm; the kernel is still a process of
    its own, killed with its tree past ``timeout`` (a report stuck outside its kernel, in the HTML export, is
    not stopped before it ends). A crash of this process is the worker's death: the task is retried elsewhere.

    The kernel comes from the batch's :class:`~evaluator.runner.kernels.KernelPool` in this process: booted
    while the previous report ran, fresh, and shut down after this one."""
    from evaluator.errors import ParameterError
    from evaluator.runner.run import RunFailed, run_report

    with _IN_PROCESS:
        if procs.stopping:
            return RunOutcome(run.name, "failed", message="not started: the batch was interrupted")
        started, t0 = utc_now(), time.perf_counter()
        kernels = _kernel_pool(batch)
        expired = threading.Event()

        def overrun() -> None:  # the run's own kernel, with its tree; the spare booted for the next run is spared
            expired.set()
            kernels.kill_taken()

        timer = threading.Timer(timeout, overrun) if timeout is not None else None
        saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "PYDEVD_DISABLE_FILE_VALIDATION")}
        env = _child_env(1)  # the kernel imports this package, as from a run process
        os.environ.update({k: env[k] for k in saved})
        message, status = "", "ok"
        try:
            if timer is not None:
                timer.start()
            run_report(run.notebook, out=folder, parameters=run.parameters, progress=False, pdf=pdf, kernels=kernels)
        except RunFailed:
            status = "failed"
        except ParameterError as exc:
            status, message = "failed", str(exc)
        except Exception as exc:  # nbconvert, papermill or the disk: the run failed, the batch goes on
            status, message = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            if timer is not None:
                timer.cancel()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
        seconds = round(time.perf_counter() - t0, 3)
        if expired.is_set():
            remove_dead_leftovers(folder.parent, run.name)
            message = f"killed after {timeout:g} s (the run's timeout), kernel included"
            _write_failure(folder, run, fp, "timeout", started, seconds, "Timeout", message)
            return RunOutcome(run.name, "timeout", seconds, message=message)
        manifest = _own_manifest(folder, started)
        if status == "ok" and manifest is not None:
            return _outcome_from_folder(run.name, folder, "ok", seconds, exit_code=0)
        message = _manifest_message(manifest) or message or "the report ended without writing its manifest.json"
        recorded = _duration(manifest)
        if recorded is not None:
            seconds = recorded
        elif not procs.stopping:
            _write_failure(folder, run, fp, "failed", started, seconds, "RunFailed", message)
        return RunOutcome(run.name, "failed", seconds, message=message, exit_code=1)


def _write_failure(
    folder: Path, run: RunSpec, fp: str | None, status: Status, started: str, seconds: float, ename: str, message: str
) -> None:
    """Record a run that left no manifest of its own, with the batch's measure of its duration (as the index shows)."""
    _write_record(
        folder,
        {
            "status": status,
            "notebook": str(run.notebook),
            "parameters": run.parameters,
            "fingerprint": fp,
            "started": started,
            "ended": utc_now(),
            "duration_s": seconds,
            "error": {"cell_index": None, "ename": ename, "evalue": message, "notebook": None},
        },
    )


def _child_env(jobs: int) -> dict[str, str]:
    """The environment of each run: this package importable, and BLAS threads shared out between the jobs.

    Evaluated where the run executes (on a Dask worker, that worker's package and cores).
    """
    env = dict(os.environ)
    root = str(PACKAGE.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, threads)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiets a debugpy warning in every kernel
    return env


# -- one run, where it executes -------------------------------------------------------
@dataclass(frozen=True)
class RunTask:
    """One run as it is sent to where it executes: plain, picklable values (no lock, no bar, no pool).

    Attributes
    ----------
    run : RunSpec
        The run, its notebook and input paths as the client sees them.
    folder : Path
        The run's report folder (on a cluster: on the filesystem the client and the workers share).
    timeout, fingerprint, pdf
        As for :func:`run_batch`; the fingerprint is recorded for a run that leaves no manifest.
    batch : str
        The batch's token: :func:`stop_runs` stops the runs of one batch.
    jobs : int or None
        Runs at a time on the machine the run executes on (None: unknown, one BLAS thread per run).
    inputs : tuple of (field, path, sha256)
        The run's input files (``"notebook"`` or a parameter name); a worker that cannot read one at
        its path uses the copy sent with the task (:func:`run_task`'s ``files``), if any.
    die_with_parent : bool
        The run process dies with the thread that waits for it (on Dask: with its worker).
    in_process : bool
        Run the report inside the process that runs the task (a long-lived Dask worker, imports
        warm) instead of a ``python -m evaluator report`` process; the kernel is a process either way.
    """

    run: RunSpec
    folder: Path
    timeout: float | None = None
    fingerprint: str | None = None
    pdf: bool = False
    batch: str = ""
    jobs: int | None = None
    inputs: tuple[tuple[str, str, str], ...] = ()
    die_with_parent: bool = False
    in_process: bool = False


#: The runs alive in this process, by batch token, so that :func:`stop_runs` can kill them.
_BATCHES: dict[str, Processes] = {}
_BATCHES_LOCK = threading.Lock()


def _processes(batch: str) -> Processes:
    with _BATCHES_LOCK:
        return _BATCHES.setdefault(batch, Processes())


#: The kernel pools of the batches whose reports run inside this process (``in_worker``), by batch token.
_KERNELS: dict[str, KernelPool] = {}


def _kernel_pool(batch: str) -> KernelPool:
    """The pool of batch ``batch`` in this process: one spare kernel booting while a report runs.

    Its kernels' environment is what a run process would give them (this package importable, one
    BLAS thread: ``run_report``'s default ``threads``), fixed when the pool starts.
    """
    from evaluator.runner.run import THREAD_VARS

    with _BATCHES_LOCK:
        if batch not in _KERNELS:
            env = _child_env(1)
            env.update(dict.fromkeys(THREAD_VARS, "1"))
            _KERNELS[batch] = KernelPool(env, spares=1)
        return _KERNELS[batch]


def release_kernels(batch: str) -> int:
    """Shut down the kernels batch ``batch`` keeps in this process (its spare); the number of pools closed.

    Called in every worker when the batch ends, and by :func:`stop_runs` when it is interrupted.
    """
    with _BATCHES_LOCK:
        pool = _KERNELS.pop(batch, None)
    if pool is None:
        return 0
    pool.close()
    return 1


def stop_runs(batch: str, out: str) -> None:
    """Stop batch ``batch`` in this process: start no more of its runs, kill those alive (kernels included, and
    the spare kernel), remove their half-built folders in ``out``. Called in every process that runs tasks when
    the batch is interrupted (Ctrl-C, SIGTERM)."""
    _processes(batch).stop(Path(out))
    release_kernels(batch)


def _local_copy(path: str, sha: str, data: bytes) -> str:
    """Where a file sent with the task is kept on this machine (by content, so each is written once)."""
    folder = Path(tempfile.gettempdir()) / "evaluator-inputs" / sha
    target = folder / Path(path).name
    if not target.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:6]}"
        tmp.write_bytes(data)
        tmp.replace(target)
    return str(target)


def _localize(task: RunTask, files: Mapping[str, bytes]) -> tuple[RunSpec, str | None]:
    """The run with every input at a path this machine can read, or the problem when one cannot be read."""
    run = task.run
    params, notebook = dict(run.parameters), run.notebook
    for field, path, sha in task.inputs:
        if Path(path).exists():
            continue
        if sha not in files:
            import socket

            what = "the notebook" if field == "notebook" else f"parameter {field!r}"
            return run, (
                f"input file {path} ({what}) cannot be read on {socket.gethostname()}: put the inputs (and the "
                "output folder) on a filesystem the workers share, at the same path (docs/cluster.md)"
            )
        local = _local_copy(path, sha, files[sha])
        if field == "notebook":
            notebook = Path(local)
        else:
            params[field] = local
    return dataclasses.replace(run, notebook=notebook, parameters=params), None


def run_task(task: RunTask, files: Mapping[str, bytes] | None = None) -> RunOutcome:
    """Execute one run of a batch where this function is called (a pool thread, or a Dask worker).

    A plain function of picklable arguments, the same whichever executor calls it: the run is
    ``python -m evaluator report ...`` with this machine's interpreter and this package on its
    ``PYTHONPATH``, in a session of its own, killed with its kernel past ``task.timeout``. Input
    files this machine cannot read are taken from ``files`` (sha256 to bytes) when they were sent.
    Never raises for a failed run: the outcome says what happened.
    """
    run, problem = _localize(task, files or {})
    if problem:
        _write_failure(task.folder, run, task.fingerprint, "failed", utc_now(), 0.0, "InputNotFound", problem)
        return RunOutcome(run.name, "failed", message=problem)
    env = _child_env(task.jobs or os.cpu_count() or 1)
    procs = _processes(task.batch)
    try:
        if task.in_process:
            return _execute_in_process(run, task.folder, task.timeout, task.fingerprint, procs, task.pdf, task.batch)
        return _execute(run, task.folder, task.timeout, env, task.fingerprint, procs, task.pdf, task.die_with_parent)
    except Exception as exc:  # the process could not even start: record it, keep going
        return RunOutcome(run.name, "failed", message=f"{type(exc).__name__}: {exc}")
    finally:
        remove_dead_leftovers(task.folder.parent, run.name)  # an earlier attempt's, if its worker died


def _task_inputs(run: RunSpec) -> tuple[tuple[str, str, str], ...]:
    """The run's input files as (field, absolute path, sha256): the notebook and every given input parameter."""
    from evaluator.files import sha256_file
    from evaluator.runner.parameters import _is_input

    found = [("notebook", str(run.notebook))]
    for key, value in sorted(run.parameters.items()):
        if _is_input(key) and isinstance(value, str) and value and not value.startswith("bundled:"):
            found.append((key, value))
    # a folder (a Parquet data set) is named by its files' hashes; it is read from a shared path, never shipped
    return tuple((f, p, sha256_file(Path(p))) for f, p in found if Path(p).exists())


def _shipped(executor: Any, tasks: Sequence[RunTask]) -> dict[str, Any]:
    """The input files small enough to travel with the tasks, sent to the cluster once each (sha256 to a future)."""
    limit = executor.ship_bytes
    if not limit:
        return {}
    data: dict[str, bytes] = {}
    for task in tasks:
        for _field, path, sha in task.inputs:
            if sha not in data and Path(path).is_file() and Path(path).stat().st_size <= limit:
                blob = Path(path).read_bytes()
                if hashlib.sha256(blob).hexdigest() == sha:  # unchanged since it was fingerprinted
                    data[sha] = blob
    return executor.scatter(data) if data else {}


def _spec(
    batch: Batch, executor: str | ExecutorSpec | None, scheduler: str | None, in_worker: bool | None
) -> ExecutorSpec:
    """The executor of a batch: ``scheduler``, else ``executor``, else the batch file's ``executor:``, else local."""
    if isinstance(executor, ExecutorSpec):
        spec = executor if scheduler is None else executor_spec(scheduler, executor.name)
    elif scheduler is None and batch.executor is not None and batch.executor.name == executor:
        spec = batch.executor  # --executor dask: the batch file's scheduler
    elif scheduler is not None or executor is not None:
        spec = executor_spec(scheduler, executor)
    else:
        spec = batch.executor or ExecutorSpec()
    return spec if in_worker is None else dataclasses.replace(spec, in_worker=in_worker)


def run_batch(
    batch: Batch,
    *,
    out: str | Path = "reports",
    jobs: int | None = None,
    force: bool = False,
    timeout: float | None = None,
    progress: bool = True,
    pdf: bool = False,
    executor: str | ExecutorSpec | Executor | None = None,
    scheduler: str | None = None,
    in_worker: bool | None = None,
) -> BatchSummary:
    """Run a batch's reports in parallel processes (or on a Dask cluster) and write ``out/index.html``.

    Each run is ``python -m evaluator report NOTEBOOK --out OUT/NAME -p ...`` in a
    process of its own, started in a new session (:func:`run_task`); by default a small
    thread pool drives up to ``jobs`` of them at a time, and with ``scheduler`` the
    workers of a Dask cluster run them (:mod:`evaluator.runner.executors`). A failed run
    is recorded and the others go on; the skip check, the progress bar and the index stay
    here, the index rewritten as each run finishes.

    Parameters
    ----------
    batch : Batch
        From :func:`load_batch`.
    out : str or Path
        Folder of the reports; each run writes ``out/NAME/``. On a cluster, a folder the
        workers see at the same path (a shared filesystem).
    jobs : int, optional
        Runs at a time on the local pool (default: the number of cores). Not for Dask, whose
        workers' threads decide.
    force : bool
        Re-run reports that are up to date. Without it, a run whose folder holds a
        manifest with status ``ok`` and the same fingerprint
        (:func:`evaluator.runner.fingerprint`) is skipped.
    timeout : float, optional
        Seconds each run may take, kernel start and export included; overrides the
        batch file. A run over it is killed with its kernel and recorded as ``timeout``.
    pdf : bool
        Each run also prints ``report.pdf`` beside its ``report.html`` (``evaluator report --pdf``);
        where no Chromium is found a run says so and writes the HTML only.
    progress : bool
        One progress bar on stderr (runs done / total, the runs in progress as postfix).
    executor : str, ExecutorSpec or Executor, optional
        Where the runs execute: a name of :data:`evaluator.runner.executors.EXECUTORS`
        (``"local"``), an :class:`ExecutorSpec`, or an executor already open (it is left open, so
        that one cluster serves several batches); default the batch file's ``executor:``, else local.
    scheduler : str, optional
        Run on Dask: ``"local:N"`` starts a LocalCluster of N worker processes for the batch,
        ``"tcp://host:8786"`` uses a running scheduler (``pip install 'evaluator[cluster]'``).
    in_worker : bool, optional
        On Dask, run each report inside its worker process, whose imports stay warm from run
        to run, instead of in a ``python -m evaluator report`` process of its own (the default).
        The kernel is a process of its own either way and the timeout kills it; give the
        workers one thread each (``local:N`` does). Default: the batch file's ``executor:``.

    Returns
    -------
    BatchSummary

    Examples
    --------
    >>> summary = run_batch(load_batch("notebooks/demo_batch.yaml"), out="reports")  # doctest: +SKIP
    >>> summary = run_batch(load_batch("notebooks/demo_batch.yaml"), scheduler="local:2")  # doctest: +SKIP
    >>> print(summary)  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from evaluator.runner.run import fingerprint

    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise BatchError(f"jobs must be a whole number >= 1, got {jobs!r}")
    if timeout is not None and not timeout > 0:
        raise BatchError(f"timeout must be a positive number of seconds, got {timeout!r}")
    given = executor if isinstance(executor, Executor) else None  # open already: the caller's, not shut down here
    if given is not None:
        spec = ExecutorSpec(given.name, getattr(given, "address", None), bool(in_worker))
    else:
        spec = _spec(batch, executor, scheduler, in_worker)  # type: ignore[arg-type]
    if spec.name not in EXECUTORS:
        raise BatchError(f"executor: unknown executor {spec.name!r}; the executors are {', '.join(sorted(EXECUTORS))}")
    if spec.in_worker and spec.name == "local":
        raise BatchError("in_worker runs reports inside long-lived Dask workers; the local pool has none")
    if spec.name != "local" and jobs is not None:
        raise BatchError(
            f"--jobs sets the width of the local pool; on {spec.describe()} the workers' threads decide "
            "(--scheduler local:N starts N workers)"
        )
    t0 = time.perf_counter()
    out = Path(out).absolute()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BatchError(f"reports folder {out} cannot be created ({exc.strerror}); choose another --out") from None
    outcomes: dict[str, RunOutcome] = {}
    todo: list[tuple[RunSpec, str | None]] = []
    for run in batch.runs:
        try:
            fp = fingerprint(run.notebook, run.parameters)
        except EvaluatorError as exc:  # an input changed or vanished since load_batch
            outcomes[run.name] = RunOutcome(run.name, "failed", message=str(exc))
            # recorded, so that the index does not go on showing an older report of this run as its result
            _write_failure(out / run.name, run, None, "failed", utc_now(), 0.0, type(exc).__name__, str(exc))
            continue
        manifest = read_json(out / run.name / "manifest.json")
        if (
            not force
            and manifest
            and manifest.get("status") == "ok"
            and manifest.get("fingerprint") == fp
            and (out / run.name / "report.html").is_file()
        ):
            outcomes[run.name] = _outcome_from_folder(run.name, out / run.name, "skipped", 0.0, message="up to date")
        else:
            todo.append((run, fp))

    n_jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    # the index speaks the runs' language when they share one (a Danish batch, a Danish index), else English
    langs = {str(r.parameters.get("language") or "en") for r in batch.runs}
    index_language = langs.pop() if len(langs) == 1 else "en"
    token = uuid.uuid4().hex[:12]
    pool = given or (open_executor(spec, jobs=n_jobs) if todo else None)  # nothing to run: no cluster started
    slots = pool.slots if pool is not None else n_jobs
    bar = tqdm(
        total=len(batch.runs),
        initial=len(outcomes),
        desc="batch",
        unit="run",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )
    remote = spec.name != "local"
    per_machine = pool.runs_per_machine if pool is not None else None
    tasks = [
        RunTask(
            run,
            out / run.name,
            timeout if timeout is not None else run.timeout,
            fp,
            pdf,
            token,
            per_machine,
            _task_inputs(run) if remote else (),
            die_with_parent=remote,
            in_process=spec.in_worker,
        )
        for run, fp in todo
    ]
    futures: dict[Any, RunSpec] = {}
    previous = None
    if threading.current_thread() is threading.main_thread():  # SIGTERM too must not leave runs behind
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        if pool is not None:
            files = _shipped(pool, tasks)
            for task in tasks:
                mine = {sha: files[sha] for _f, _p, sha in task.inputs if sha in files}
                futures[pool.submit(run_task, task, mine, key=f"evaluator-{task.run.name}-{token}")] = task.run
            pending = [task.run.name for task in tasks]
            bar.set_postfix_str(", ".join(pending[:slots]), refresh=True)
            for future in pool.as_completed(futures):
                run = futures[future]
                try:
                    result = future.result()
                except Exception as exc:  # the task itself failed (its workers kept dying): record it, go on
                    message = f"{type(exc).__name__}: {exc}"
                    result = RunOutcome(run.name, "failed", message=message)
                    fp = next((t.fingerprint for t in tasks if t.run is run), None)
                    _write_failure(out / run.name, run, fp, "failed", utc_now(), 0.0, type(exc).__name__, message)
                outcomes[result.name] = result
                pending.remove(run.name)
                bar.set_postfix_str(", ".join(pending[:slots]), refresh=False)
                bar.update(1)
                # after every run, so a batch killed midway still leaves an index of what finished
                write_index(out, language=index_language)
                if result.status != "ok":
                    bar.write(f"{run.name}: {result.status}: {result.message}", file=sys.stderr)
    except BaseException:  # Ctrl-C: the runs are in sessions of their own, so they must be killed here
        if pool is not None:
            try:
                pool.everywhere(stop_runs, token, str(out))
                pool.cancel(list(futures))
            except Exception as exc:  # a cluster that cannot be reached any more: say so, raise the interrupt
                print(f"evaluator batch: could not stop the runs on {spec.describe()}: {exc}", file=sys.stderr)
        raise
    finally:
        if pool is not None and spec.in_worker:
            try:  # the spare kernel each worker keeps for a next run of this batch: none is coming
                pool.everywhere(release_kernels, token)
            except Exception as exc:  # workers gone already: their kernels ended with them (they poll their parent)
                print(f"evaluator batch: could not release the kernels on {spec.describe()}: {exc}", file=sys.stderr)
        if pool is not None and given is None:
            pool.shutdown()
        bar.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        with _BATCHES_LOCK:
            _BATCHES.pop(token, None)
    index = write_index(out, language=index_language)
    ordered = tuple(outcomes[r.name] for r in batch.runs)
    where = pool.describe() if pool is not None and remote else ""
    cluster = None
    if pool is not None and given is None and pool.start_seconds is not None:
        cluster = (pool.import_seconds or 0.0, pool.start_seconds)
    return BatchSummary(ordered, out, index, round(time.perf_counter() - t0, 3), slots, where, cluster)


# -- command line -------------------------------------------------------------------
def add_batch_parser(subparsers: Any) -> None:
    """Add ``evaluator batch BATCH.yaml [--out reports] [--jobs N | --scheduler ADDRESS] [--force] [--timeout S]
    [--no-progress]``."""
    p = subparsers.add_parser("batch", help="run the reports of a batch file in parallel, with an index page")
    p.add_argument("batch", help="the batch file (YAML)")
    add_run_options(p)
    p.set_defaults(func=cli_batch)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of a batch run (``--out --jobs --force --timeout --no-progress --pdf --scheduler --executor``),
    shared with ``evaluator demo``."""
    p.add_argument("--out", default="reports", help="report folder (default: reports)")
    p.add_argument("--jobs", type=int, default=None, help="runs in parallel (default: the number of cores)")
    p.add_argument("--force", action="store_true", help="re-run reports that are up to date")
    p.add_argument("--timeout", type=float, default=None, help="seconds per run (overrides the batch file)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--pdf", action="store_true", help="also print each report.pdf (A4) with headless Chromium")
    p.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on Dask: local:N (a LocalCluster of N worker processes) or a scheduler address tcp://host:port "
        "(pip install 'evaluator[cluster]'; see docs/cluster.md)",
    )
    p.add_argument(
        "--executor",
        default=None,
        choices=sorted(EXECUTORS),
        help="where the runs execute (default: the batch file's executor, else local); dask needs --scheduler",
    )
    p.add_argument(
        "--in-worker",
        action="store_true",
        default=None,
        help="with --scheduler: run each report inside its Dask worker (warm imports) instead of a process of its own",
    )


def cli_batch(args: argparse.Namespace) -> int:
    """The ``evaluator batch`` command: 0 every run ok or up to date, 1 a run failed, 2 a bad batch file."""
    try:
        batch = load_batch(args.batch)
    except BatchError as exc:
        print(f"evaluator batch: {exc}", file=sys.stderr)
        return 2
    try:
        summary = run_batch(
            batch,
            out=args.out,
            jobs=args.jobs,
            force=args.force,
            timeout=args.timeout,
            progress=not args.no_progress,
            pdf=getattr(args, "pdf", False),
            executor=getattr(args, "executor", None),
            scheduler=getattr(args, "scheduler", None),
            in_worker=getattr(args, "in_worker", None),
        )
    except BatchError as exc:
        print(f"evaluator batch: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return summary.exit_code
