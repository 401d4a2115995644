"""Batches: many report runs from one YAML file, in parallel, with an index page.

A batch file names runs; each run is one :func:`evaluator.runner.run_report` into
``OUT/NAME/``. Paths are relative to the batch file's folder; a bare notebook name
without a folder (``did_evaluation``) also finds the notebooks shipped with evaluator.

.. code-block:: yaml

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
writes ``OUT/index.html`` (:func:`write_index`) over every report in ``OUT``.

The pieces, one module each: ``batch_file`` reads and checks the file (its shape is
``data_schemas/batch.schema.json``), ``processes`` starts the runs and kills a run's
process tree, ``index`` writes the index page; this module runs a batch, sums it up
and is the ``evaluator batch`` command. Their public names are re-exported here.

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
import json
import os
import signal
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from evaluator.errors import EvaluatorError
from evaluator.files import PACKAGE
from evaluator.provenance import utc_now
from evaluator.runner.batch_file import Batch, BatchError, RunSpec, load_batch
from evaluator.runner.index import index_interval, index_number, index_p, index_seconds, read_json, write_index
from evaluator.runner.processes import Processes, remove_leftovers

__all__ = [
    "Batch",
    "BatchError",
    "BatchSummary",
    "RunOutcome",
    "RunSpec",
    "add_batch_parser",
    "add_run_options",
    "cli_batch",
    "load_batch",
    "run_batch",
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
        jobs = f"{self.jobs} job{'s' if self.jobs != 1 else ''}"
        lines.append(f"{len(self.runs)} runs in {self.seconds:.1f} s with {jobs}: {counts}")
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
) -> RunOutcome:
    """Run one ``evaluator report`` process; kill it with its kernel if it overruns ``timeout``."""
    started, t0 = utc_now(), time.perf_counter()
    proc = procs.start(_command(run, folder) + (["--pdf"] if pdf else []), env)
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
    message = ""
    if proc.returncode == 1 and manifest and manifest.get("status") in ("failed", "flagged") and manifest.get("error"):
        err = manifest["error"]
        cell = f"cell {err['cell_index']}" if err.get("cell_index") is not None else "the kernel"
        message = f"{cell}: {err.get('ename')}: {err.get('evalue')} (notebook: {err.get('notebook')})"
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
    """The environment of each run: this package importable, and BLAS threads shared out between the jobs."""
    env = dict(os.environ)
    root = str(PACKAGE.parent)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, threads)
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiets a debugpy warning in every kernel
    return env


def run_batch(
    batch: Batch,
    *,
    out: str | Path = "reports",
    jobs: int | None = None,
    force: bool = False,
    timeout: float | None = None,
    progress: bool = True,
    pdf: bool = False,
) -> BatchSummary:
    """Run a batch's reports in parallel processes and write ``out/index.html``.

    Each run is ``python -m evaluator report NOTEBOOK --out OUT/NAME -p ...`` in a
    process of its own, started in a new session; a small thread pool drives up to
    ``jobs`` of them at a time. A failed run is recorded and the others go on.

    Parameters
    ----------
    batch : Batch
        From :func:`load_batch`.
    out : str or Path
        Folder of the reports; each run writes ``out/NAME/``.
    jobs : int, optional
        Runs at a time (default: the number of cores).
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

    Returns
    -------
    BatchSummary

    Examples
    --------
    >>> summary = run_batch(load_batch("notebooks/demo_batch.yaml"), out="reports")  # doctest: +SKIP
    >>> print(summary)  # doctest: +SKIP
    """
    from tqdm.auto import tqdm

    from evaluator.runner.run import fingerprint

    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise BatchError(f"jobs must be a whole number >= 1, got {jobs!r}")
    if timeout is not None and not timeout > 0:
        raise BatchError(f"timeout must be a positive number of seconds, got {timeout!r}")
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
    env = _child_env(n_jobs)
    running: list[str] = []
    lock = threading.Lock()
    procs = Processes()
    bar = tqdm(
        total=len(batch.runs),
        initial=len(outcomes),
        desc="batch",
        unit="run",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
    )

    def one(item: tuple[RunSpec, str | None]) -> RunOutcome:
        run, fp = item
        with lock:
            running.append(run.name)
            bar.set_postfix_str(", ".join(running), refresh=True)
        try:
            result = _execute(run, out / run.name, timeout if timeout is not None else run.timeout, env, fp, procs, pdf)
        except Exception as exc:  # the process could not even start: record it, keep going
            result = RunOutcome(run.name, "failed", message=f"{type(exc).__name__}: {exc}")
        with lock:
            running.remove(run.name)
            bar.set_postfix_str(", ".join(running), refresh=False)
            bar.update(1)
            # after every run, so a batch killed midway still leaves an index of what finished
            write_index(out, language=index_language)
            if result.status != "ok":
                bar.write(f"{run.name}: {result.status}: {result.message}", file=sys.stderr)
        return result

    # the index speaks the runs' language when they share one (a Danish batch, a Danish index), else English
    langs = {str(r.parameters.get("language") or "en") for r in batch.runs}
    index_language = langs.pop() if len(langs) == 1 else "en"
    pool = ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="evaluator-batch")
    previous = None
    if threading.current_thread() is threading.main_thread():  # SIGTERM too must not leave runs behind
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        for result in pool.map(one, todo):
            outcomes[result.name] = result
    except BaseException:  # Ctrl-C: the runs are in sessions of their own, so they must be killed here
        pool.shutdown(wait=False, cancel_futures=True)
        procs.stop(out)
        raise
    finally:
        pool.shutdown(wait=True)
        bar.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    index = write_index(out, language=index_language)
    ordered = tuple(outcomes[r.name] for r in batch.runs)
    return BatchSummary(ordered, out, index, round(time.perf_counter() - t0, 3), n_jobs)


# -- command line -------------------------------------------------------------------
def add_batch_parser(subparsers: Any) -> None:
    """Add ``evaluator batch BATCH.yaml [--out reports] [--jobs N] [--force] [--timeout S] [--no-progress]``."""
    p = subparsers.add_parser("batch", help="run the reports of a batch file in parallel, with an index page")
    p.add_argument("batch", help="the batch file (YAML)")
    add_run_options(p)
    p.set_defaults(func=cli_batch)


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The options of a batch run (``--out --jobs --force --timeout --no-progress``), shared with ``evaluator demo``."""
    p.add_argument("--out", default="reports", help="report folder (default: reports)")
    p.add_argument("--jobs", type=int, default=None, help="runs in parallel (default: the number of cores)")
    p.add_argument("--force", action="store_true", help="re-run reports that are up to date")
    p.add_argument("--timeout", type=float, default=None, help="seconds per run (overrides the batch file)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--pdf", action="store_true", help="also print each report.pdf (A4) with headless Chromium")


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
        )
    except BatchError as exc:
        print(f"evaluator batch: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return summary.exit_code
