"""Reports: run a parameterised notebook into a self-contained HTML report.

One run is ``notebook + parameters + input files -> folder``::

    reports/NAME/
        report.html     self-contained page: images embedded, code hidden, no scripts from the internet
        report.ipynb    the executed notebook (up to the failing cell when a run fails)
        results.json    the headline numbers the notebook saved with :func:`save_results`
        manifest.json   parameters, sha256 of every input, package versions, git commit,
                        seed, start and end time, duration and status

papermill executes the notebook; what it leaves to its users this module adds:

* **Parameters are checked before the kernel starts.** The notebook's cell tagged
  ``parameters`` is parsed (literal assignments, each with a comment);
  unknown names are refused with the list of known ones, and every value is
  coerced to its default's type or refused, all problems in one
  :class:`ParameterError`. Input files (parameters named ``data_path`` or ending in
  ``_path``) must exist; ``"bundled:NAME"`` names a data set shipped in
  :mod:`evaluator.datasets`.
* **Nothing half-written looks complete.** The folder is built under a temporary
  name beside its destination and swapped into place at the end; ``manifest.json``
  is written last. A failing run still gets its folder: the executed notebook up to
  the failing cell and a manifest with ``status: "failed"`` and the error, and
  :class:`RunFailed` tells the caller the cell, its exception and that notebook's path.
* **Same inputs, same fingerprint.** :func:`fingerprint` hashes the notebook, the
  checked parameters and the input files, so a batch can skip runs that would
  only reproduce what is there (:mod:`evaluator.batch`).

Examples
--------
>>> import evaluator.report as rp
>>> params = rp.notebook_parameters(rp.notebook_path("did_evaluation"))
>>> params["data_path"].default
'bundled:sick_leave_sib'
>>> rp.check_parameters(rp.notebook_path("did_evaluation"), {"n_boot": "199"})
{'n_boot': 199}
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import pandas as pd

from evaluator.errors import EvaluatorError

__all__ = [
    "Parameter",
    "ParameterError",
    "RunFailed",
    "RunRecord",
    "atomic_write_text",
    "check_parameters",
    "fingerprint",
    "notebook_parameters",
    "notebook_path",
    "resolve_data",
    "run_report",
    "save_results",
    "write_frame",
]

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
BUNDLED = "bundled:"
#: Environment variables that set the kernel's BLAS/OpenMP threads (see ``run_report(threads=)``).
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")


class ParameterError(EvaluatorError, ValueError):
    """Parameters, input files or the output folder of a run are not usable; nothing was executed."""


class RunFailed(EvaluatorError, RuntimeError):
    """A notebook raised during execution.

    Attributes
    ----------
    cell_index : int or None
        Index of the failing cell in the notebook (None when the kernel died or timed out between cells).
    ename, evalue : str
        The exception's type name and message.
    notebook : pathlib.Path
        The executed notebook, up to and including the failing cell.
    """

    def __init__(self, message: str, *, cell_index: int | None, ename: str, evalue: str, notebook: Path) -> None:
        super().__init__(message)
        self.cell_index, self.ename, self.evalue, self.notebook = cell_index, ename, evalue, notebook


# -- files ------------------------------------------------------------------------
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


def notebook_path(name: str) -> Path:
    """Path of a report notebook shipped with evaluator (``"did_evaluation"``, ``"matched_evaluation"``).

    The notebooks live in the repository's ``notebooks/``; an installed wheel carries a copy.
    """
    file = name if Path(name).suffix else f"{name}.ipynb"
    for folder in (
        Path(__file__).resolve().parents[1] / "notebooks",
        Path(str(resources.files("evaluator"))) / "notebooks",
    ):
        if (folder / file).is_file():
            return folder / file
    raise ParameterError(f"no report notebook {name!r}; the shipped ones are did_evaluation and matched_evaluation")


def resolve_data(spec: str | Path, *, parameter: str = "data_path") -> Path:
    """The file a ``data_path`` parameter names: ``"bundled:NAME"`` or a path that must exist.

    Examples
    --------
    >>> resolve_data("bundled:employment_sib").name
    'employment_sib.parquet'
    """
    text = str(spec)
    if text.startswith(BUNDLED):
        from evaluator import datasets

        name = text[len(BUNDLED) :]
        if name not in datasets.NAMES:
            raise ParameterError(
                f"{parameter}={text!r}: no bundled data set {name!r}; choose one of {list(datasets.NAMES)}"
            )
        return datasets.path(name)
    path = Path(text).expanduser()
    if not path.is_file():
        raise ParameterError(f"{parameter}={text!r}: file not found (looked at {path.resolve()}); check the path")
    return path.resolve()


# -- parameters -------------------------------------------------------------------
@dataclass(frozen=True)
class Parameter:
    """One entry of a notebook's ``parameters`` cell."""

    name: str
    default: Any
    comment: str
    line: int

    @property
    def kind(self) -> str:
        """The type values are coerced to: bool, int, float, str, list, dict or any (default None)."""
        d = self.default
        for t, name in ((bool, "bool"), (int, "int"), (float, "float"), (str, "str"), (list, "list"), (dict, "dict")):
            if isinstance(d, t):
                return name
        return "any"


def _read_notebook(notebook: str | Path) -> Any:
    import nbformat

    path = Path(notebook)
    if not path.is_file():
        raise ParameterError(f"notebook not found: {path}")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as exc:  # nbformat raises several unrelated types for a broken file
        raise ParameterError(f"{path} is not a readable notebook: {exc}") from exc


def notebook_parameters(notebook: str | Path) -> dict[str, Parameter]:
    """The parameters a notebook declares in its cell tagged ``parameters``.

    The cell must hold only assignments of Python literals, one a line, each with a
    ``# comment``; anything else is refused so that what a run may change is exactly
    what the cell shows.
    """
    nb = _read_notebook(notebook)
    cells = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.get("metadata", {}).get("tags", [])]
    if not cells:
        raise ParameterError(f"{notebook}: no cell tagged 'parameters' (papermill's convention); tag one")
    source = cells[0].source
    lines = source.splitlines()
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ParameterError(f"{notebook}: the parameters cell does not parse: {exc}") from exc
    out: dict[str, Parameter] = {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        if not isinstance(target, ast.Name) or node.value is None:
            raise ParameterError(f"{notebook}: parameters cell line {node.lineno}: only `name = literal` is allowed")
        try:
            value = ast.literal_eval(node.value)
        except ValueError as exc:
            raise ParameterError(
                f"{notebook}: parameter {target.id!r} (line {node.lineno}) is not a literal; "
                "parameters must be literals"
            ) from exc
        text = lines[node.end_lineno - 1] if node.end_lineno else ""
        comment = text.split("#", 1)[1].strip() if "#" in text else ""
        out[target.id] = Parameter(target.id, value, comment, node.lineno)
    return out


_TRUE, _FALSE = {"true", "yes", "1", "on"}, {"false", "no", "0", "off"}


def _coerce(p: Parameter, value: Any) -> Any:
    """``value`` as ``p``'s type, or ValueError with what was expected."""
    kind = p.kind
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError("expected true or false")
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError("expected a whole number, got a boolean")
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise ValueError("expected a whole number")
    if kind == "float":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise ValueError("expected a number")
    if kind == "str":
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ValueError("expected text")
    if kind in ("list", "dict"):
        want = list if kind == "list" else dict
        if isinstance(value, tuple):
            value = list(value)
        if isinstance(value, str):
            text = value.strip()
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                if kind == "dict":
                    raise ValueError('expected a JSON object such as {"a": 1}') from None
                value = [v.strip() for v in text.split(",") if v.strip()] if text else []
        if not isinstance(value, want):
            raise ValueError(f"expected a {kind} (JSON, or comma-separated text for a list)")
        return value
    # default None: take what was given, parsing command-line text as JSON where it can
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def check_parameters(notebook: str | Path, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate and coerce ``given`` against the notebook's parameters cell.

    Returns the coerced values (only those given). Raises :class:`ParameterError`
    listing every unknown name (with the known ones), every value that cannot be
    coerced to its default's type, and every input file that does not exist.

    Examples
    --------
    >>> nb = notebook_path("matched_evaluation")
    >>> check_parameters(nb, {"replace": "yes", "ratio": 2.0})
    {'replace': True, 'ratio': 2}
    >>> check_parameters(nb, {"ratoi": 2})
    Traceback (most recent call last):
    ...
    evaluator.report.ParameterError: ...unknown parameter 'ratoi'...
    """
    known = notebook_parameters(notebook)
    problems: list[str] = []
    out: dict[str, Any] = {}
    for name, value in (given or {}).items():
        if name not in known:
            close = [k for k in known if k.lower() == name.lower() or sorted(k) == sorted(name)]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"unknown parameter {name!r}{hint}; known: {', '.join(known)}")
            continue
        p = known[name]
        try:
            out[name] = _coerce(p, value)
        except ValueError as exc:
            problems.append(f"parameter {name}={value!r}: {exc} (the default is {p.default!r}: {p.comment})")
    for name, value in out.items():
        if _is_input(name) and isinstance(value, str) and value:
            try:
                resolve_data(value, parameter=name)
            except ParameterError as exc:
                problems.append(str(exc))
    if problems:
        raise ParameterError(f"{Path(notebook).name}: " + "; ".join(problems))
    return out


def _is_input(name: str) -> bool:
    return name == "data_path" or name.endswith("_path")


def _effective(notebook: str | Path, given: Mapping[str, Any]) -> dict[str, Any]:
    params = {k: p.default for k, p in notebook_parameters(notebook).items()}
    params.update(given)
    return params


def _inputs(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, value in sorted(params.items()):
        if _is_input(name) and isinstance(value, str) and value:
            path = resolve_data(value, parameter=name)
            out[name] = {"path": str(path), "sha256": sha256_file(path), "bytes": path.stat().st_size}
    return out


def _given_with_data(given: Mapping[str, Any] | None, data: str | Path | None) -> dict[str, Any]:
    merged = dict(given or {})
    if data is not None:
        merged["data_path"] = str(data)
    return merged


def fingerprint(
    notebook: str | Path, parameters: Mapping[str, Any] | None = None, data: str | Path | None = None
) -> str:
    """sha256 of what determines a run: notebook bytes, checked parameters, input file contents, package version.

    Paths enter by content, not by name, so moving a data file keeps the fingerprint.
    """
    from evaluator import __version__

    given = check_parameters(notebook, _given_with_data(parameters, data))
    params = _effective(notebook, given)
    inputs = _inputs(params)
    for name in inputs:
        params[name] = inputs[name]["sha256"]
    blob = json.dumps(
        {"notebook": sha256_file(Path(notebook)), "parameters": params, "evaluator": __version__},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


# -- the notebook's side ------------------------------------------------------------
def save_results(
    result: Any,
    *,
    title: str,
    design: str,
    outcome_label: str = "",
    n_units: int | None = None,
    n_treated: int | None = None,
    settlement: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
    path: str | Path = "results.json",
) -> dict[str, Any]:
    """Write a run's headline numbers to ``results.json`` (called by the report notebooks).

    The runner copies the file beside the report, so a batch can be summarised
    without parsing HTML.

    Examples
    --------
    >>> import tempfile, pathlib, evaluator
    >>> r = evaluator.Result("Example", evaluator.tidy_table(["att"], [1.0], [0.5]), nobs=10)
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "results.json"
    >>> save_results(r, title="t", design="difference-in-differences", path=out)["estimate"]
    1.0
    """
    from evaluator.results import _jsonable

    lo, hi = result.ci
    record = {
        "title": title,
        "design": design,
        "sms_level": 3 if design in ("difference-in-differences", "matched comparison") else None,
        "estimator": result.estimator,
        "outcome": result.outcome,
        "outcome_label": outcome_label,
        "estimate": result.estimate,
        "se": result.se,
        "ci": [lo, hi],
        "ci_level": 1 - result.alpha,
        "pvalue": result.pvalue,
        "nobs": result.nobs,
        "n_units": n_units,
        "n_treated": n_treated,
        "inference": result.inference,
        "settlement": dict(settlement) if settlement else None,
        "extra": dict(extra) if extra else {},
    }
    record = _jsonable(record)
    atomic_write_text(Path(path), json.dumps(record, indent=2))
    return record


# -- running ---------------------------------------------------------------------
@dataclass
class RunRecord:
    """What a finished run left: its folder, status, manifest and results."""

    out: Path
    status: str
    manifest: dict[str, Any]
    results: dict[str, Any] | None = None
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)

    @property
    def html(self) -> Path:
        """The rendered report."""
        return self.out / "report.html"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def _git_commit(folder: Path) -> dict[str, Any] | None:
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


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _export_html(nb_path: Path, title: str) -> str:
    """The executed notebook as one self-contained page: outputs only, images inline, no remote scripts."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    nb = nbformat.read(nb_path, as_version=4)
    remove = TagRemovePreprocessor(remove_cell_tags={"remove-cell", "injected-parameters"}, enabled=True)
    exporter = HTMLExporter(
        template_name="report",  # evaluator/templates/report: JupyterLab's page minus scripts from the internet
        extra_template_basedirs=[str(Path(__file__).resolve().parent / "templates")],
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
    )
    exporter.register_preprocessor(remove, enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


def _swap_into_place(partial: Path, out: Path) -> None:
    """Replace ``out`` by ``partial`` with renames, so ``out`` is never a mix of old and new."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        out.rename(old)
    partial.rename(out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _prepare_out(out: Path) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        partial.mkdir()
    except OSError as exc:
        raise ParameterError(f"output folder {out} is not writable ({exc.strerror}); choose another --out") from exc
    return partial


def _disclosure(page: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """Run the disclosure check on a rendered page with the run's own ``min_cell`` (default 5)."""
    from evaluator.disclosure import MIN_CELL, disclosure_check

    raw = params.get("min_cell", MIN_CELL)
    min_cell = raw if isinstance(raw, int) and not isinstance(raw, bool) else MIN_CELL
    if not page.is_file():
        return {"min_cell": min_cell, "ok": True, "findings": []}
    rep = disclosure_check(page, min_cell=min_cell)
    return {"min_cell": min_cell, "ok": rep.ok, "findings": [str(f) for f in rep.findings]}


def _cell_seconds(nb_path: Path) -> float | None:
    try:
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    total = 0.0
    for cell in nb.get("cells", []):
        d = cell.get("metadata", {}).get("papermill", {}).get("duration")
        if isinstance(d, (int, float)):
            total += d
    return total


def run_report(
    notebook: str | Path,
    *,
    out: str | Path,
    parameters: Mapping[str, Any] | None = None,
    data: str | Path | None = None,
    progress: bool = True,
    timeout: float | None = None,
    kernel_name: str | None = None,
    threads: int = 1,
) -> RunRecord:
    """Execute a report notebook with parameters and render it into the folder ``out``.

    Parameters
    ----------
    notebook : str or Path
        The notebook; :func:`notebook_path` finds the shipped ones by name.
    out : str or Path
        Folder of this report (``reports/NAME``); replaced as a whole when the run ends.
    parameters : mapping, optional
        Values for the notebook's parameters; text is coerced to the default's type.
    data : str or Path, optional
        Shortcut for the ``data_path`` parameter.
    progress : bool
        Show a progress bar over the notebook's cells.
    timeout : float, optional
        Seconds any one cell may take before the run is stopped as failed.
    kernel_name : str, optional
        Jupyter kernel; by default the notebook's, ``python3``.
    threads : int
        BLAS/OpenMP threads of the kernel (recorded in the manifest). Fixed, because the
        number of threads changes the order of floating-point sums and so the last digits
        of a result: the same run must give the same bits in a batch of any width.

    Returns
    -------
    RunRecord

    Raises
    ------
    ParameterError
        Before anything runs: unknown or mistyped parameters, missing input files,
        an output folder that cannot be written.
    RunFailed
        A cell raised (or the kernel died or timed out); ``out`` then holds the
        executed notebook up to that cell and a manifest with ``status: "failed"``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> rec = run_report(notebook_path("did_evaluation"), out=pathlib.Path(tempfile.mkdtemp()) / "r",
    ...                  parameters={"n_boot": 99}, progress=False)  # doctest: +SKIP
    >>> rec.status  # doctest: +SKIP
    'ok'
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    notebook = Path(notebook).resolve()
    out = Path(out).absolute()
    given = check_parameters(notebook, _given_with_data(parameters, data))
    params = _effective(notebook, given)
    inputs = _inputs(params)
    injected = dict(given)
    for name, info in inputs.items():  # the kernel runs elsewhere: hand it absolute paths
        if name in injected and not str(injected[name]).startswith(BUNDLED):
            injected[name] = info["path"]
    fp = fingerprint(notebook, given)
    partial = _prepare_out(out)
    started, t0 = _now(), time.perf_counter()
    manifest: dict[str, Any] = {
        "status": "running",
        "notebook": str(notebook),
        "notebook_sha256": sha256_file(notebook),
        "parameters": params,
        "given": given,
        "inputs": inputs,
        "fingerprint": fp,
        "seed": params.get("seed"),
        "versions": _versions(),
        "git": _git_commit(notebook.parent),
        "platform": platform.platform(),
        "started": started,
    }
    manifest["threads"] = threads
    executed = partial / "report.ipynb"
    error: dict[str, Any] | None = None
    saved_env = {k: os.environ.get(k) for k in THREAD_VARS}
    os.environ.update({k: str(threads) for k in THREAD_VARS})  # the kernel inherits this environment
    try:
        pm.execute_notebook(
            str(notebook),
            str(executed),
            parameters=injected,
            cwd=str(partial),
            progress_bar=progress,
            kernel_name=kernel_name,
            request_save_on_cell_execute=False,
            execution_timeout=timeout,
        )
    except PapermillExecutionError as exc:
        error = {"cell_index": exc.cell_index, "ename": exc.ename, "evalue": exc.evalue, "source": exc.source}
    except Exception as exc:  # kernel death, cell timeout, papermill I/O: the run failed, the caller hears why
        error = {"cell_index": None, "ename": type(exc).__name__, "evalue": str(exc), "source": ""}
    finally:
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    results = None
    results_path = partial / "results.json"
    if error is None:
        try:
            atomic_write_text(partial / "report.html", _export_html(executed, str(params.get("title", notebook.stem))))
        except Exception as exc:  # an export failure fails the run; the executed notebook is kept
            error = {"cell_index": None, "ename": type(exc).__name__, "evalue": f"HTML export: {exc}", "source": ""}
        if results_path.is_file():
            results = json.loads(results_path.read_text(encoding="utf-8"))
    if error is None:
        disclosure = _disclosure(partial / "report.html", params)
        manifest["disclosure"] = disclosure
        if not disclosure["ok"]:
            error = {
                "cell_index": None,
                "ename": "DisclosureCheck",
                "evalue": f"{len(disclosure['findings'])} possible disclosure(s) below min_cell="
                f"{disclosure['min_cell']}: " + "; ".join(disclosure["findings"][:3]),
                "source": "",
            }
    elif results_path.exists():
        results_path.unlink()  # numbers from a failed run must not be mistaken for a result
    seconds = time.perf_counter() - t0
    manifest.update(
        status=("flagged" if error["ename"] == "DisclosureCheck" else "failed") if error else "ok",
        ended=_now(),
        duration_s=round(seconds, 3),
        cell_seconds=_cell_seconds(executed),
        error=error and {**error, "notebook": str(out / "report.ipynb")},
        files=sorted(p.name for p in partial.iterdir() if not p.name.startswith(".")) + ["manifest.json"],
    )
    from evaluator.results import _jsonable

    atomic_write_text(partial / "manifest.json", json.dumps(_jsonable(manifest), indent=2))
    _swap_into_place(partial, out)
    if error:
        if error["ename"] == "DisclosureCheck":
            raise RunFailed(
                f"{notebook.name}: the rendered report failed the disclosure check: {error['evalue']}. "
                f"It is kept for inspection in {out} (status 'flagged'); raise min_cell or fix the section",
                cell_index=None,
                ename=error["ename"],
                evalue=error["evalue"],
                notebook=out / "report.ipynb",
            )
        where = f"cell {error['cell_index']}" if error["cell_index"] is not None else "the kernel"
        first = next((ln for ln in str(error.get("source") or "").splitlines() if ln.strip()), "")
        if first:
            where += f" (which starts `{first.strip()[:80]}`)"
        raise RunFailed(
            f"{notebook.name} failed in {where}: {error['ename']}: {error['evalue']}. "
            f"The notebook up to the failure is {out / 'report.ipynb'}",
            cell_index=error["cell_index"],
            ename=error["ename"],
            evalue=error["evalue"],
            notebook=out / "report.ipynb",
        )
    return RunRecord(out, "ok", manifest, results, seconds, manifest["files"])


def main_report(
    notebook: str, out: str, data: str | None, pairs: list[list[str]] | None, *, progress: bool, timeout: float | None
) -> int:
    """The ``evaluator report`` command: 0 ok, 1 the run failed, 2 bad input."""
    given: dict[str, Any] = {}
    for key, value in pairs or []:
        given[key] = value
    nb = Path(notebook)
    if not nb.is_file() and not nb.suffix:
        nb = notebook_path(notebook)
    try:
        rec = run_report(nb, out=out, parameters=given, data=data, progress=progress, timeout=timeout)
    except ParameterError as exc:
        print(f"evaluator report: {exc}", file=sys.stderr)
        return 2
    except RunFailed as exc:
        print(f"evaluator report: {exc}", file=sys.stderr)
        return 1
    r = rec.results or {}
    if r.get("estimate") is not None:
        lo, hi = r["ci"]
        print(f"{rec.out}: estimate {r['estimate']:.4g} [{lo:.4g}, {hi:.4g}] {r.get('outcome_label') or ''}".rstrip())
    print(f"report written: {rec.html} ({rec.seconds:.1f} s)")
    return 0


# -- reproducing a run ------------------------------------------------------------
@dataclass
class Reproduction:
    """The comparison of a re-run with the report its manifest describes."""

    original: Path
    rerun: Path
    compared: int
    differences: list[str]

    @property
    def identical(self) -> bool:
        """True when every compared number is bit-identical."""
        return not self.differences

    def __str__(self) -> str:
        if self.identical:
            return f"all {self.compared} numbers identical ({self.original} vs {self.rerun})"
        head = f"{len(self.differences)} of {self.compared} numbers differ ({self.original} vs {self.rerun}):"
        return "\n".join([head, *(f"  - {d}" for d in self.differences[:50])])


# Rows of the appendix that change with every run by design (clock, paths), not with the result.
_VOLATILE = re.compile(r"started|ended|duration|seconds|time|date|path|folder|commit|host|platform", re.I)


def _numbers_in_tables(html_text: str) -> list[tuple[str, str]]:
    """(location, cell text) of every numeric cell of every table in a page, minus clock and path rows."""
    from evaluator.disclosure import _Tables

    parser = _Tables()
    parser.feed(html_text)
    out = []
    for t, rows in enumerate(parser.tables):
        for i, row in enumerate(rows):
            if row and _VOLATILE.search(row[0]):
                continue
            for j, cell in enumerate(row):
                if re.fullmatch(r"[-+−]?[\d,.]+(e[-+]?\d+)?%?", cell.strip(), flags=re.I) and re.search(r"\d", cell):
                    out.append((f"table {t + 1} row {i} col {j} ({row[0][:30]})", cell.strip()))
    return out


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        return [kv for k in sorted(value) for kv in _flatten(value[k], f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(value, list):
        return [kv for i, v in enumerate(value) for kv in _flatten(v, f"{prefix}[{i}]")]
    return [(prefix, value)]


def reproduce(manifest: str | Path, *, out: str | Path | None = None, progress: bool = True) -> Reproduction:
    """Re-run a report from its ``manifest.json`` and compare every number with the original.

    Refuses (:class:`ParameterError`) when the notebook or an input file no longer has
    the sha256 the manifest recorded. Compares ``results.json`` field by field and
    every number in every table of ``report.html`` (except clock and path rows of the
    appendix) as text, so "identical" means identical to the last printed digit, and
    the results to the last bit.

    Examples
    --------
    >>> rep = reproduce("reports/sick-leave-cs/manifest.json")  # doctest: +SKIP
    >>> rep.identical  # doctest: +SKIP
    True
    """
    manifest = Path(manifest)
    if manifest.is_dir():
        manifest = manifest / "manifest.json"
    try:
        man = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ParameterError(f"cannot read the manifest {manifest}: {exc}") from exc
    original = manifest.parent
    if man.get("status") != "ok":
        raise ParameterError(f"{manifest}: the original run did not succeed (status {man.get('status')!r})")
    notebook = Path(man["notebook"])
    problems = []
    if not notebook.is_file():
        problems.append(f"the notebook {notebook} no longer exists")
    elif sha256_file(notebook) != man["notebook_sha256"]:
        problems.append(f"the notebook {notebook} has changed since the run (sha256 differs)")
    for name, info in (man.get("inputs") or {}).items():
        path = Path(info["path"])
        if not path.is_file():
            problems.append(f"input {name} ({path}) no longer exists")
        elif sha256_file(path) != info["sha256"]:
            problems.append(
                f"input {name} ({path}) has changed since the run: sha256 {sha256_file(path)[:12]}..., "
                f"the manifest recorded {info['sha256'][:12]}..."
            )
    if problems:
        raise ParameterError(
            "cannot reproduce "
            + str(original)
            + ": "
            + "; ".join(problems)
            + ". Restore the recorded files or run the report anew"
        )
    given = dict(man.get("given") or {})
    for name, info in (man.get("inputs") or {}).items():
        if name in given:
            given[name] = info["path"]
    target = Path(out) if out is not None else original.with_name(f"{original.name}.reproduced")
    rec = run_report(notebook, out=target, parameters=given, progress=progress, threads=int(man.get("threads", 1)))
    diffs: list[str] = []
    old_res = (
        json.loads((original / "results.json").read_text(encoding="utf-8"))
        if (original / "results.json").is_file()
        else {}
    )
    new_res = rec.results or {}
    a, b = dict(_flatten(old_res)), dict(_flatten(new_res))
    compared = 0
    for key in sorted(set(a) | set(b)):
        compared += 1
        if a.get(key) != b.get(key):
            diffs.append(f"results.json {key}: {a.get(key)!r} -> {b.get(key)!r}")
    old_cells = _numbers_in_tables((original / "report.html").read_text(encoding="utf-8"))
    new_cells = _numbers_in_tables(rec.html.read_text(encoding="utf-8"))
    if len(old_cells) != len(new_cells):
        diffs.append(f"report.html: {len(old_cells)} numbers in tables before, {len(new_cells)} now")
    for (where, x), (_, y) in zip(old_cells, new_cells, strict=False):
        compared += 1
        if x != y:
            diffs.append(f"report.html {where}: {x} -> {y}")
    return Reproduction(original, rec.out, compared, diffs)
