"""Batches: many report runs from one YAML file, in parallel, with an index page.

A batch file names runs; each run is one :func:`evaluator.report.run_report` into
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
      - name: "employment-{outcome}"     # str.format with the grid values
        notebook: matched_evaluation.ipynb
        parameters: {data_path: "bundled:employment_sib"}
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

Examples
--------
>>> import pathlib, tempfile
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> _ = (folder / "batch.yaml").write_text('''
... grid:
...   - name: "employment-{outcome}"
...     notebook: matched_evaluation
...     vary: {outcome: [employed_6m, employed_12m]}
... ''')
>>> [run.name for run in load_batch(folder / "batch.yaml").runs]
['employment-employed_6m', 'employment-employed_12m']
"""

from __future__ import annotations

import argparse
import html
import itertools
import json
import math
import os
import re
import reprlib
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from evaluator.errors import EvaluatorError

__all__ = [
    "Batch",
    "BatchError",
    "BatchSummary",
    "RunOutcome",
    "RunSpec",
    "add_batch_parser",
    "cli_batch",
    "load_batch",
    "run_batch",
    "write_index",
]

Status = Literal["ok", "failed", "skipped", "timeout"]

TOP_KEYS = ("defaults", "runs", "grid")
DEFAULT_KEYS = ("notebook", "data", "timeout", "parameters")
RUN_KEYS = ("name", "notebook", "data", "timeout", "parameters")
GRID_KEYS = (*RUN_KEYS, "vary")
#: A run's name is its folder: no separators, no leading dot (temporary folders start with one).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
RESERVED = {"index.html", "index.json"}
BUNDLED = "bundled:"


class BatchError(EvaluatorError, ValueError):
    """A batch file is not usable; nothing was run.

    ``problems`` holds every problem found (each naming the run and the field), so
    that all of them can be fixed at once; the message lists them all.
    """

    def __init__(self, problems: Sequence[str] | str, *, source: str | Path | None = None) -> None:
        if isinstance(problems, str):
            problems = [problems]
        self.problems: tuple[str, ...] = tuple(problems)
        self.source = str(source) if source is not None else None
        n = len(self.problems)
        where = f" in {source}" if source is not None else ""
        body = "\n".join(f"{i}. {p}" for i, p in enumerate(self.problems, 1))
        super().__init__(f"{n} problem{'s' if n != 1 else ''} found{where}:\n{body}")


@dataclass(frozen=True)
class RunSpec:
    """One run of a batch, checked.

    Attributes
    ----------
    name : str
        The run's name and the name of its folder under the batch's ``out``.
    notebook : pathlib.Path
        Absolute path of the notebook.
    parameters : dict
        The run's parameters as given (``data`` folded into ``data_path``, relative
        input paths made absolute), already checked against the notebook.
    timeout : float or None
        Seconds the whole run may take (None: no limit).
    origin : str
        Where the run comes from in the batch file, e.g. ``"runs[0]"`` or ``"grid[1] outcome='x'"``.
    """

    name: str
    notebook: Path
    parameters: dict[str, Any]
    timeout: float | None = None
    origin: str = ""


@dataclass(frozen=True)
class Batch:
    """A checked batch file: its path and its runs, in file order (explicit runs, then grids)."""

    path: Path
    runs: tuple[RunSpec, ...]

    def __len__(self) -> int:
        return len(self.runs)

    def select(self, names: Iterable[str]) -> Batch:
        """The same batch restricted to the runs named (in file order); unknown names raise BatchError."""
        wanted = list(names)
        known = {r.name for r in self.runs}
        missing = [n for n in wanted if n not in known]
        if missing:
            raise BatchError(
                [f"no run named {n!r}; the runs are {', '.join(sorted(known))}" for n in missing], source=self.path
            )
        return Batch(self.path, tuple(r for r in self.runs if r.name in set(wanted)))


# -- loading ------------------------------------------------------------------------
#: The most runs one batch file may expand to: a grid is a product, and a few keys can ask for millions.
MAX_RUNS = 10_000

_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother, _REPR.maxlist, _REPR.maxdict = 2, 60, 60, 5, 5


def _short(value: Any) -> str:
    """A bounded repr of a value from the batch file: YAML aliases can nest a small file into a huge object."""
    return _REPR.repr(value)


def _label(section: str, index: int, entry: Any) -> str:
    name = entry.get("name") if isinstance(entry, Mapping) else None
    return f"{section}[{index}] {name!r}" if isinstance(name, str) and name else f"{section}[{index}]"


def _resolve_notebook(value: Any, base: Path, where: str, problems: list[str]) -> Path | None:
    from evaluator.report import notebook_path

    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}: field 'notebook': expected a notebook path, got {_short(value)}")
        return None
    path = Path(value).expanduser()
    candidate = path if path.is_absolute() else base / path
    if candidate.is_file():
        return candidate.resolve()
    if len(path.parts) == 1:  # a bare name may be a shipped notebook
        try:
            return notebook_path(value).resolve()
        except EvaluatorError:
            pass
    problems.append(f"{where}: field 'notebook': file not found: {candidate} (paths are relative to the batch file)")
    return None


def _absolute_inputs(params: dict[str, Any], base: Path) -> dict[str, Any]:
    """Relative input paths (``data_path``, ``*_path``) made absolute against the batch file's folder."""
    out = dict(params)
    for key, value in params.items():
        if (key == "data_path" or key.endswith("_path")) and isinstance(value, str) and value:
            if not value.startswith(BUNDLED) and not Path(value).expanduser().is_absolute():
                out[key] = str((base / Path(value).expanduser()).resolve())
    return out


def _check_timeout(value: Any, where: str, problems: list[str]) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
        problems.append(f"{where}: field 'timeout': expected a positive number of seconds, got {_short(value)}")
        return None
    return float(value)


def _check_mapping(value: Any, where: str, fld: str, problems: list[str]) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        problems.append(f"{where}: field '{fld}': expected a mapping of names to values, got {_short(value)}")
        return {}
    return dict(value)


def _unknown(entry: Mapping[str, Any], allowed: Sequence[str], where: str, problems: list[str]) -> None:
    for key in entry:
        if key not in allowed:
            problems.append(f"{where}: unknown field {key!r}; allowed: {', '.join(allowed)}")


def _placeholders(template: str) -> list[str]:
    """Field names used by a ``str.format`` template; ValueError if it is malformed."""
    names = []
    for _, fname, spec, _ in string.Formatter().parse(template):
        if fname is not None:
            if fname == "" or not fname.isidentifier():
                raise ValueError(f"placeholder {{{fname}}} is not a name; use {{parameter}}")
            names.append(fname)
            if spec and "{" in spec:
                raise ValueError("nested placeholders are not supported")
    return names


def _read_yaml(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BatchError(f"batch file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchError(f"batch file {path} cannot be read: {exc}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        raise BatchError(
            f"YAML syntax error at {where}{problem}" + (f" ({context})" if context else ""), source=path
        ) from None


def load_batch(path: str | Path) -> Batch:
    """Read and check a batch file (format in the module docstring).

    Every problem is collected before raising: unknown keys, missing or absent
    notebooks, duplicate or unsafe names, non-mapping parameters, empty grid
    lists, bad name placeholders, bad timeouts and, for each run, its parameters
    checked against its notebook with :func:`evaluator.report.check_parameters`
    (unknown names, values of the wrong type, missing input files).

    Parameters
    ----------
    path : str or Path
        The YAML batch file.

    Returns
    -------
    Batch

    Raises
    ------
    BatchError
        Listing every problem, each naming the run (``runs[0] 'name'``) and the field.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> file = pathlib.Path(tempfile.mkdtemp()) / "batch.yaml"
    >>> _ = file.write_text("runs:\\n  - name: a/b\\n    notebook: nowhere.ipynb\\n    timeout: -1\\n")
    >>> load_batch(file)
    Traceback (most recent call last):
    ...
    evaluator.batch.BatchError: 3 problems found in ...
    """
    path = Path(path).expanduser().resolve()
    doc = _read_yaml(path)
    base = path.parent
    problems: list[str] = []
    if doc is None:
        raise BatchError("the batch file is empty; it needs 'runs' or 'grid'", source=path)
    if not isinstance(doc, Mapping):
        raise BatchError(
            f"the top level must be a mapping with keys {', '.join(TOP_KEYS)}; got a {type(doc).__name__}", source=path
        )
    for key in doc:
        if key not in TOP_KEYS:
            problems.append(f"unknown top-level key {key!r}; allowed: {', '.join(TOP_KEYS)}")

    # defaults
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, Mapping):
        problems.append(f"defaults: expected a mapping, got {_short(defaults)}")
        defaults = {}
    _unknown(defaults, DEFAULT_KEYS, "defaults", problems)
    d_notebook = None
    if "notebook" in defaults:
        d_notebook = _resolve_notebook(defaults["notebook"], base, "defaults", problems)
    d_timeout = _check_timeout(defaults.get("timeout"), "defaults", problems)
    d_params = _check_mapping(defaults.get("parameters"), "defaults", "parameters", problems)
    if defaults.get("data") is not None:
        d_params["data_path"] = str(defaults["data"])
    d_params = _absolute_inputs(d_params, base)

    # entries: (section, index, label, entry)
    entries: list[tuple[str, int, str, Mapping[str, Any]]] = []
    for section in ("runs", "grid"):
        items = doc.get(section)
        if items is None:
            continue
        if not isinstance(items, list):
            problems.append(f"{section}: expected a list of runs, got {type(items).__name__}")
            continue
        for i, entry in enumerate(items):
            where = _label(section, i, entry)
            if not isinstance(entry, Mapping):
                problems.append(f"{where}: expected a mapping with fields {', '.join(RUN_KEYS)}, got {_short(entry)}")
                continue
            entries.append((section, i, where, entry))
    if not entries and not problems:
        problems.append("no runs: add a 'runs' or 'grid' list")

    runs: list[RunSpec] = []
    for section, index, where, entry in entries:
        _unknown(entry, GRID_KEYS if section == "grid" else RUN_KEYS, where, problems)
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            problems.append(f"{where}: field 'name': missing; every run needs a name (its folder)")
            name = None
        notebook = d_notebook
        if "notebook" in entry:
            notebook = _resolve_notebook(entry["notebook"], base, where, problems)
        elif d_notebook is None and "notebook" not in defaults:
            problems.append(f"{where}: field 'notebook': missing (and no defaults.notebook)")
        timeout = _check_timeout(entry.get("timeout"), where, problems) if "timeout" in entry else d_timeout
        params = _check_mapping(entry.get("parameters"), where, "parameters", problems)
        if entry.get("data") is not None:
            params["data_path"] = str(entry["data"])
        params = {**d_params, **_absolute_inputs(params, base)}

        combos: list[dict[str, Any]] = [{}]
        if section == "grid":
            vary = entry.get("vary")
            if not isinstance(vary, Mapping) or not vary:
                problems.append(
                    f"{where}: field 'vary': expected a mapping of parameter names to lists of values, "
                    f"got {_short(vary)}"
                )
                continue
            ok = True
            for key, values in vary.items():
                if not isinstance(values, list) or not values:
                    problems.append(
                        f"{where}: field 'vary.{key}': expected a non-empty list of values, got {_short(values)}"
                    )
                    ok = False
            if not ok:
                continue
            size = math.prod(len(v) for v in vary.values())
            if size > MAX_RUNS:
                problems.append(
                    f"{where}: field 'vary': the grid expands to {size:,} runs, more than the {MAX_RUNS:,} a batch "
                    "may hold; split it into several batch files or vary fewer parameters"
                )
                continue
            combos = [dict(zip(vary, combo, strict=True)) for combo in itertools.product(*vary.values())]
            if name is not None:
                try:
                    used = _placeholders(name)
                except ValueError as exc:
                    problems.append(f"{where}: field 'name': bad format template {name!r}: {exc}")
                    continue
                unknown = [u for u in used if u not in vary]
                if unknown:
                    problems.append(
                        f"{where}: field 'name': placeholder {{{unknown[0]}}} in {name!r} is not a key of "
                        f"'vary' ({', '.join(map(str, vary))})"
                    )
                    continue

        for combo in combos:
            run_name = name.format(**combo) if (name is not None and section == "grid") else name
            origin = where if not combo else f"{where} " + " ".join(f"{k}={v!r}" for k, v in combo.items())
            label = f"{section}[{index}] {run_name!r}" if run_name else where
            if run_name is not None and (not NAME_RE.match(run_name) or run_name.lower() in RESERVED):
                problems.append(
                    f"{label}: field 'name': {run_name!r} is not safe as a folder name; use letters, "
                    f"digits, '.', '_' and '-' (not first), at most 100 characters"
                )
            run_params = _absolute_inputs({**params, **combo}, base)
            runs.append(RunSpec(run_name or "", notebook or Path(), run_params, timeout, origin))
            if notebook is not None and run_name is not None:
                _check_run_parameters(notebook, run_params, label, problems)

    seen: dict[str, str] = {}
    for run in runs:
        if not run.name:
            continue
        if run.name in seen:
            problems.append(
                f"{run.origin}: field 'name': duplicate run name {run.name!r} (also {seen[run.name]}); "
                "names must be unique (in a grid, put every varied key in the name)"
            )
        else:
            seen[run.name] = run.origin
    if problems:
        raise BatchError(problems, source=path)
    return Batch(path, tuple(runs))


def _check_run_parameters(notebook: Path, params: Mapping[str, Any], label: str, problems: list[str]) -> None:
    from evaluator.report import check_parameters

    try:
        check_parameters(notebook, params)
    except EvaluatorError as exc:
        problems.append(f"{label}: field 'parameters': {exc}")


# -- running ------------------------------------------------------------------------
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
        Wall time of the run's process (0 when skipped).
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
        """The runs as a DataFrame (columns name, status, seconds, estimate, ci_low, ci_high, pvalue, message)."""
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
        header = ["run", "status", "seconds", "estimate", "interval", "p-value"]
        rows = []
        for r in self.runs:
            interval = f"[{_num(r.ci[0])}, {_num(r.ci[1])}]" if r.ci else ""
            rows.append([r.name, r.status, f"{r.seconds:.1f}", _num(r.estimate), interval, _pval(r.pvalue)])
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


def _num(x: Any) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return "" if x is None else str(x)
    return f"{x:.4g}"


def _pval(p: Any) -> str:
    if isinstance(p, bool) or not isinstance(p, (int, float)):
        return ""
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _cli_value(value: Any, kind: str) -> str:
    """A checked parameter value as ``evaluator report -p`` text that coerces back to the same value."""
    if isinstance(value, str) and kind == "str":
        return value
    return json.dumps(value)


def _command(run: RunSpec, folder: Path) -> list[str]:
    from evaluator.report import notebook_parameters

    kinds = {k: p.kind for k, p in notebook_parameters(run.notebook).items()}
    cmd = [sys.executable, "-m", "evaluator", "report", str(run.notebook), "--out", str(folder), "--no-progress"]
    for key, value in run.parameters.items():
        cmd += ["-p", key, _cli_value(value, kinds.get(key, "any"))]
    return cmd


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (the kernel runs in a session of its own, so a process-group kill misses it)."""
    try:
        import psutil

        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except ImportError:
        pass
    except Exception:
        return []
    children: dict[int, list[int]] = {}
    try:
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    except OSError:
        return []
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _kill_tree(proc: subprocess.Popen) -> None:
    """Kill the run's process group (started with ``start_new_session``) and every descendant's group."""
    own = os.getpgrp()
    below = _descendants(proc.pid)
    groups = {proc.pid}
    for pid in below:
        try:
            groups.add(os.getpgid(pid))
        except OSError:
            continue
    for group in groups - {own}:
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            pass
    for pid in below:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    proc.wait()


def _write_record(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Replace ``folder`` by one holding only ``manifest.json`` (a run that left no record of its own)."""
    from evaluator.report import _swap_into_place, atomic_write_text

    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    partial.mkdir(parents=True)
    atomic_write_text(partial / "manifest.json", json.dumps(manifest, indent=2, default=str))
    _swap_into_place(partial, folder)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _tail(text: str, n: int = 5) -> str:
    noise = ("[IPKernelApp] WARNING", "Kernel is running over TCP")  # every kernel's start-up warning
    lines = [ln for ln in (text or "").splitlines() if ln.strip() and not any(x in ln for x in noise)]
    return " | ".join(ln.strip() for ln in lines[-n:])


def _outcome_from_folder(
    name: str, folder: Path, status: Status, seconds: float, message: str = "", exit_code: int | None = None
) -> RunOutcome:
    results = _read_json(folder / "results.json") or {}
    ci = results.get("ci")
    ci_t = (ci[0], ci[1]) if isinstance(ci, list) and len(ci) == 2 else None
    return RunOutcome(
        name, status, round(seconds, 3), results.get("estimate"), ci_t, results.get("pvalue"), message, exit_code
    )


class _Processes:
    """The run processes alive, so that an interrupted batch (Ctrl-C) can kill them: they are in sessions of
    their own and do not get the terminal's signal."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: set[subprocess.Popen] = set()
        self.stopping = False

    def start(self, cmd: list[str], env: Mapping[str, str]) -> subprocess.Popen | None:
        with self.lock:
            if self.stopping:
                return None
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,
                env=dict(env),
            )
            self.live.add(proc)
            return proc

    def done(self, proc: subprocess.Popen) -> None:
        with self.lock:
            self.live.discard(proc)

    def stop(self, out: Path) -> None:
        with self.lock:
            self.stopping = True
            procs = list(self.live)
        for proc in procs:
            _kill_tree(proc)
            _remove_leftovers(out, proc.pid)


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _remove_leftovers(out: Path, pid: int) -> None:
    """Remove the half-built folders of a killed run process (named ``.NAME.partial-PID-*`` by the runner)."""
    for leftover in out.glob(f".*.partial-{pid}-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def _execute(
    run: RunSpec, folder: Path, timeout: float | None, env: Mapping[str, str], fp: str | None, procs: _Processes
) -> RunOutcome:
    """Run one ``evaluator report`` process; kill it with its kernel if it overruns ``timeout``."""
    started, t0 = _now(), time.perf_counter()
    proc = procs.start(_command(run, folder), env)
    if proc is None:
        return RunOutcome(run.name, "failed", message="not started: the batch was interrupted")
    try:
        _stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_tree(proc)
        proc.communicate()
        seconds = time.perf_counter() - t0
        _remove_leftovers(folder.parent, proc.pid)
        message = f"killed after {timeout:g} s (the run's timeout), kernel included"
        _write_record(
            folder,
            {
                "status": "timeout",
                "notebook": str(run.notebook),
                "parameters": run.parameters,
                "fingerprint": fp,
                "started": started,
                "ended": _now(),
                "duration_s": round(seconds, 3),
                "error": {"cell_index": None, "ename": "Timeout", "evalue": message, "notebook": None},
            },
        )
        return RunOutcome(run.name, "timeout", round(seconds, 3), message=message)
    finally:
        procs.done(proc)
    seconds = time.perf_counter() - t0
    if proc.returncode == 0:
        return _outcome_from_folder(run.name, folder, "ok", seconds, exit_code=0)
    message = ""
    manifest = _read_json(folder / "manifest.json")
    if proc.returncode == 1 and manifest and manifest.get("status") in ("failed", "flagged") and manifest.get("error"):
        err = manifest["error"]
        cell = f"cell {err['cell_index']}" if err.get("cell_index") is not None else "the kernel"
        message = f"{cell}: {err.get('ename')}: {err.get('evalue')} (notebook: {err.get('notebook')})"
    if not message and proc.returncode < 0:
        message = f"killed by signal {-proc.returncode}"
    if not message:
        message = _tail(stderr) or f"exit status {proc.returncode}"
    return RunOutcome(run.name, "failed", round(seconds, 3), message=message, exit_code=proc.returncode)


def _child_env(jobs: int) -> dict[str, str]:
    """The environment of each run: this package importable, and BLAS threads shared out between the jobs."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
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
        (:func:`evaluator.report.fingerprint`) is skipped.
    timeout : float, optional
        Seconds each run may take, kernel start and export included; overrides the
        batch file. A run over it is killed with its kernel and recorded as ``timeout``.
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

    from evaluator.report import fingerprint

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
            continue
        manifest = _read_json(out / run.name / "manifest.json")
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
    procs = _Processes()
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
            result = _execute(run, out / run.name, timeout if timeout is not None else run.timeout, env, fp, procs)
        except Exception as exc:  # the process could not even start: record it, keep going
            result = RunOutcome(run.name, "failed", message=f"{type(exc).__name__}: {exc}")
        with lock:
            running.remove(run.name)
            bar.set_postfix_str(", ".join(running), refresh=False)
            bar.update(1)
            # after every run, so a batch killed midway still leaves an index of what finished
            write_index(out)
            if result.status != "ok":
                bar.write(f"{run.name}: {result.status}: {result.message}", file=sys.stderr)
        return result

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
    index = write_index(out)
    ordered = tuple(outcomes[r.name] for r in batch.runs)
    return BatchSummary(ordered, out, index, round(time.perf_counter() - t0, 3), n_jobs)


# -- the index page -----------------------------------------------------------------
def _index_rows(out: Path) -> list[dict[str, Any]]:
    rows = []
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        manifest = _read_json(folder / "manifest.json")
        if manifest is None:
            continue
        results = _read_json(folder / "results.json") or {}
        ci = results.get("ci") if isinstance(results.get("ci"), list) and len(results["ci"]) == 2 else None
        link = next((f"{folder.name}/{f}" for f in ("report.html", "report.ipynb") if (folder / f).is_file()), None)
        error = manifest.get("error") if isinstance(manifest.get("error"), Mapping) else None
        rows.append(
            {
                "name": folder.name,
                "status": str(manifest.get("status", "unknown")),
                "title": results.get("title") or (manifest.get("parameters") or {}).get("title"),
                "design": results.get("design"),
                "outcome": results.get("outcome"),
                "outcome_label": results.get("outcome_label"),
                "estimate": results.get("estimate"),
                "ci": ci,
                "pvalue": results.get("pvalue"),
                "n_units": results.get("n_units"),
                "started": manifest.get("started"),
                "ended": manifest.get("ended"),
                "duration_s": manifest.get("duration_s"),
                "fingerprint": manifest.get("fingerprint"),
                "error": f"{error.get('ename')}: {error.get('evalue')}" if error else None,
                "link": link,
            }
        )
    return rows


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:72rem;
padding:0 1rem;color:#1b1b1b}
h1{font-size:1.5rem;margin-bottom:.2rem}p.meta{color:#555;margin-top:0}
table{border-collapse:collapse;width:100%}th,td{padding:.45rem .6rem;border-bottom:1px solid #ddd;
text-align:left;vertical-align:top}
th{background:#f4f4f4;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.status{font-weight:600;border-radius:.25rem;padding:.05rem .4rem;white-space:nowrap}
.ok{background:#e3f4e6;color:#1d6b2c}.failed,.timeout{background:#fbe4e4;color:#8a1c1c}
.other{background:#eee;color:#444}.err{color:#8a1c1c;font-size:.85rem}a{color:#0b57d0}
"""


def _render_index(rows: Sequence[Mapping[str, Any]], generated: str) -> str:
    e = html.escape
    body = []
    for r in rows:
        status = r["status"]
        css = status if status in ("ok", "failed", "timeout") else ("failed" if status == "flagged" else "other")
        name = e(r["name"])
        title = e(str(r["title"])) if r["title"] else ""
        label = r["outcome_label"] or r["outcome"] or ""
        if r["estimate"] is not None:
            est = _num(r["estimate"])
            if r["ci"]:
                est += f" [{_num(r['ci'][0])}, {_num(r['ci'][1])}]"
            estimate = e(est) + (f"<br><small>{e(str(label))}</small>" if label else "")
        else:
            estimate = ""
        link = f'<a href="{e(quote(r["link"]))}">{name}</a>' if r["link"] else name
        error = f'<div class="err">{e(str(r["error"]))}</div>' if r["error"] and status != "ok" else ""
        duration = f"{r['duration_s']:.1f} s" if isinstance(r["duration_s"], (int, float)) else ""
        date = e(str(r["started"] or "")[:16].replace("T", " "))  # minutes suffice; index.json has the rest
        body.append(
            f"<tr><td>{link}</td><td>{title}{error}</td><td>{e(str(r['design'] or ''))}</td>"
            f'<td class="num">{estimate}</td><td class="num">{e(_pval(r["pvalue"]))}</td>'
            f'<td><span class="status {css}">{e(status)}</span></td><td>{date}</td>'
            f'<td class="num">{e(duration)}</td></tr>'
        )
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    summary = ", ".join(f"{n} {e(s)}" for s, n in sorted(counts.items())) or "no reports yet"
    empty = '<tr><td colspan="8">No reports in this folder yet.</td></tr>' if not rows else ""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>evaluator reports</title>
<style>{_CSS}</style>
</head>
<body>
<h1>evaluator reports</h1>
<p class="meta">{len(rows)} report{"s" if len(rows) != 1 else ""}: {summary}. Index written {e(generated)}.</p>
<table>
<thead><tr><th>run</th><th>title</th><th>design</th><th>estimate [interval]</th><th>p-value</th><th>status</th>
<th>started (UTC)</th><th>duration</th></tr></thead>
<tbody>
{chr(10).join(body)}{empty}
</tbody>
</table>
</body>
</html>
"""


def write_index(out: str | Path) -> Path:
    """Write ``out/index.html`` and ``out/index.json`` over every report folder in ``out``.

    Every folder of ``out`` with a ``manifest.json`` is listed (not only one batch's
    runs): name (linking ``NAME/report.html``, or the executed notebook of a failed
    run), title, design, estimate with its interval and outcome label, p-value,
    status, start time and duration. The page is self-contained (inline CSS, no
    scripts) and every text is HTML-escaped. Both files are written to a temporary
    name and moved into place.

    Parameters
    ----------
    out : str or Path
        The reports folder.

    Returns
    -------
    pathlib.Path
        ``out/index.html``.

    Examples
    --------
    >>> import json, pathlib, tempfile
    >>> out = pathlib.Path(tempfile.mkdtemp())
    >>> (out / "demo").mkdir()
    >>> _ = (out / "demo" / "manifest.json").write_text(json.dumps({"status": "ok", "duration_s": 3.2}))
    >>> _ = (out / "demo" / "results.json").write_text(json.dumps({"title": "A & B", "estimate": -1.5,
    ...                                                           "ci": [-2.0, -1.0], "pvalue": 0.0001}))
    >>> page = write_index(out).read_text()
    >>> "A &amp; B" in page, "-1.5 [-2, -1]" in page, "&lt;0.001" in page
    (True, True, True)
    >>> json.loads((out / "index.json").read_text())["runs"][0]["name"]
    'demo'
    """
    from evaluator.report import atomic_write_text

    out = Path(out)
    if not out.is_dir():
        raise BatchError(f"reports folder not found: {out}")
    rows = _index_rows(out)
    generated = _now()
    atomic_write_text(out / "index.json", json.dumps({"generated": generated, "runs": rows}, indent=2, default=str))
    return atomic_write_text(out / "index.html", _render_index(rows, generated))


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


def cli_batch(args: argparse.Namespace) -> int:
    """The ``evaluator batch`` command: 0 every run ok or up to date, 1 a run failed, 2 a bad batch file."""
    try:
        batch = load_batch(args.batch)
    except BatchError as exc:
        print(f"evaluator batch: {exc}", file=sys.stderr)
        return 2
    try:
        summary = run_batch(
            batch, out=args.out, jobs=args.jobs, force=args.force, timeout=args.timeout, progress=not args.no_progress
        )
    except BatchError as exc:
        print(f"evaluator batch: {exc}", file=sys.stderr)
        return 2
    print(summary)
    return summary.exit_code
