"""Run one parameterised report notebook into ``report.html``, ``results.json`` and ``manifest.json``."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluator.data.datasets import BUNDLED, resolve_data
from evaluator.errors import EvaluatorError, ParameterError
from evaluator.files import PACKAGE, atomic_write_text, sha256_file, size_of, swap_into_place
from evaluator.provenance import git_commit, package_versions, utc_now
from evaluator.runner.kernels import KERNEL_ARGUMENTS, THREAD_VARS, Kernel, KernelPool, start_kernel
from evaluator.runner.parameters import _is_input, check_parameters, notebook_parameters, notebook_path

__all__ = ["KERNEL_ARGUMENTS", "RunFailed", "RunRecord", "THREAD_VARS", "fingerprint", "main_report", "run_report"]
#: Environment variables that tell the kernel which run it is (read by evaluator.reporting.provenance_line).
RUN_VARS = ("EVALUATOR_RUN_FINGERPRINT", "EVALUATOR_RUN_STARTED")


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


def _effective(notebook: str | Path, given: Mapping[str, Any]) -> dict[str, Any]:
    params = {k: p.default for k, p in notebook_parameters(notebook).items()}
    params.update(given)
    return params


def _inputs(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, value in sorted(params.items()):
        if _is_input(name) and isinstance(value, str) and value:
            path = resolve_data(value, parameter=name)
            out[name] = {"path": str(path), "sha256": sha256_file(path), "bytes": size_of(path)}
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
    given = check_parameters(notebook, _given_with_data(parameters, data))
    params = _effective(notebook, given)
    return _fingerprint(sha256_file(Path(notebook)), params, _inputs(params))


def _fingerprint(notebook_sha256: str, params: Mapping[str, Any], inputs: Mapping[str, Mapping[str, Any]]) -> str:
    """:func:`fingerprint` of parameters already checked and inputs already hashed (each file is read once)."""
    from evaluator import __version__

    params = dict(params)
    for name in inputs:
        params[name] = inputs[name]["sha256"]
    blob = json.dumps(
        {"notebook": notebook_sha256, "parameters": params, "evaluator": __version__}, sort_keys=True, default=str
    )
    return hashlib.sha256(blob.encode()).hexdigest()


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


_EXPORTERS: dict[str, Any] = {}
_EXPORTERS_LOCK = threading.Lock()


def _exporter(language: str) -> Any:
    """The HTML exporter of reports in ``language``, built once per process (its templates loaded and compiled).

    Building one costs more than using it (nbconvert's import, the template lookup and jinja2's
    compilation), and a process that runs report after report (a Dask worker) needs it each
    time; an exporter keeps no state of a notebook between ``from_notebook_node`` calls.
    """
    with _EXPORTERS_LOCK:
        if language not in _EXPORTERS:
            from nbconvert import HTMLExporter
            from nbconvert.preprocessors import TagRemovePreprocessor

            remove = TagRemovePreprocessor(remove_cell_tags={"remove-cell", "injected-parameters"}, enabled=True)
            exporter = HTMLExporter(
                # evaluator/reporting/templates/report: JupyterLab's page minus scripts from the internet
                template_name="report",
                extra_template_basedirs=[str(PACKAGE / "reporting" / "templates")],
                exclude_input=True,
                exclude_input_prompt=True,
                exclude_output_prompt=True,
                embed_images=True,
                language_code=language,  # <html lang>: screen readers, hyphenation and spell-checking follow it
            )
            exporter.register_preprocessor(remove, enabled=True)
            exporter.template  # noqa: B018 -- loads and compiles the page template now, not during the export
            _EXPORTERS[language] = exporter
        return _EXPORTERS[language]


def _warm_up(language: str) -> threading.Thread:
    """Build the exporter, export a small page and import the disclosure check, in a thread while the cells run.

    The runner's own thread only waits for the kernel then, so this work costs no time of the run.
    A first export costs 0.5 s more than the next ones (nbconvert imports its markdown, HTML and
    CSS-selector parsers and compiles their patterns on first use); the page of :func:`_warm_up_page`
    pays for that here.
    """

    def work() -> None:
        try:
            import evaluator.reporting.disclosure  # noqa: F401 -- its import (pandas, the chapters) is the cost

            exporter = _exporter(language)
            with _EXPORTERS_LOCK:
                exporter.from_notebook_node(_warm_up_page(), resources={"metadata": {"name": "warm-up"}})
        except Exception:  # the export itself reports any problem, in the run's own thread
            pass

    thread = threading.Thread(target=work, name="evaluator-warm-up", daemon=True)
    thread.start()
    return thread


def _warm_up_page() -> Any:
    """A notebook with what a report's page holds (headings, a table, text, HTML and a PNG), for a first export."""
    import nbformat.v4 as v4

    png = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    removed = v4.new_code_cell("x = 1", metadata={"tags": ["remove-cell"]})
    shown = v4.new_code_cell(
        "x",
        outputs=[
            v4.new_output("stream", name="stdout", text="text\n"),
            v4.new_output("display_data", data={"text/html": "<table><tr><td>1</td></tr></table>", "text/plain": "1"}),
            v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}),
            v4.new_output("execute_result", data={"text/markdown": "**1**", "text/plain": "1"}, execution_count=1),
        ],
    )
    text = v4.new_markdown_cell("# Heading\n\nSome *text*, a [link](#heading).\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    nb = v4.new_notebook(cells=[text, removed, shown])
    nb.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    return nb


def _export_html(nb: Any, title: str, language: str = "en") -> str:
    """The executed notebook (papermill's, in memory) as one self-contained page: outputs only, images inline."""
    exporter = _exporter(language)
    with _EXPORTERS_LOCK:  # one export at a time through a shared exporter
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": title}})
    return body


def _prepare_out(out: Path) -> Path:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:6]}")
        partial.mkdir()
    except OSError as exc:
        raise ParameterError(f"output folder {out} is not writable ({exc.strerror}); choose another --out") from exc
    return partial


def _disclosure(page: Path, params: Mapping[str, Any]) -> dict[str, Any]:
    """Run the disclosure check on a rendered run folder (page, figures' counts and sidecars) with its ``min_cell``."""
    from evaluator.reporting.disclosure import MIN_CELL, disclosure_check

    raw = params.get("min_cell", MIN_CELL)
    min_cell = raw if isinstance(raw, int) and not isinstance(raw, bool) else MIN_CELL
    if not page.exists():
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
    pdf: bool = False,
    kernels: KernelPool | None = None,
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
    pdf : bool
        Also print ``report.pdf`` (A4) beside ``report.html`` with headless Chromium
        (:func:`evaluator.runner.pdf.write_pdf`). Where Chromium or playwright is missing the run
        says so on stderr, records why in the manifest (``pdf``) and is still ``ok``.
    kernels : KernelPool, optional
        Where the run's kernel comes from: a kernel booted during the previous report of this
        process (:class:`evaluator.runner.kernels.KernelPool`, a Dask worker's). Without it the
        run launches its kernel as soon as its parameters are checked, and the kernel boots while
        the run hashes its inputs and records versions. Either way the kernel is fresh (it ran no
        other report), the run's own, and shut down when the run ends; its ``threads`` are the
        pool's (``THREAD_VARS`` of its environment) when it comes from a pool.

    Returns
    -------
    RunRecord

    Raises
    ------
    ParameterError
        Before anything runs (no kernel is started): unknown or mistyped parameters,
        values outside what the notebook's parameters cell declares, labels left at the
        defaults of other data, missing input files, an output folder that cannot be
        written (see :func:`evaluator.runner.check_parameters`).
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
    notebook = Path(notebook).resolve()
    out = Path(out).absolute()
    given = check_parameters(notebook, _given_with_data(parameters, data))
    params = _effective(notebook, given)
    inputs = _inputs(params)
    injected = dict(given)
    for name, info in inputs.items():  # the kernel runs elsewhere: hand it absolute paths
        if name in injected and not str(injected[name]).startswith(BUNDLED):
            injected[name] = info["path"]
    notebook_sha256 = sha256_file(notebook)
    fp = _fingerprint(notebook_sha256, params, inputs)
    partial = _prepare_out(out)
    started, t0 = utc_now(), time.perf_counter()
    # the kernel inherits the threads; the first page prints the run's fingerprint and date, so that a
    # printed page can be traced to its manifest
    run_env = {k: str(threads) for k in THREAD_VARS}
    run_env.update({"EVALUATOR_RUN_FINGERPRINT": fp, "EVALUATOR_RUN_STARTED": started})
    error: dict[str, Any] | None = None
    kernel: Kernel | None = None
    try:  # from here on the kernel boots in its own process while this one does the rest
        if kernels is not None:
            kernel = kernels.take()
        else:
            kernel = start_kernel(env={**os.environ, **run_env}, cwd=partial, kernel_name=kernel_name)
    except Exception as exc:  # no kernel could be launched: the run failed, the caller hears why
        error = {"cell_index": None, "ename": type(exc).__name__, "evalue": f"kernel start: {exc}", "source": ""}
    language = str(params.get("language") or "en")
    _warm_up(language)
    manifest: dict[str, Any] = {
        "status": "running",
        "notebook": str(notebook),
        "notebook_sha256": notebook_sha256,
        "parameters": params,
        "given": given,
        "inputs": inputs,
        "fingerprint": fp,
        "seed": params.get("seed"),
        "versions": package_versions(),
        "git": git_commit(notebook.parent),
        "platform": platform.platform(),
        "started": started,
    }
    manifest["threads"] = threads
    executed = partial / "report.ipynb"
    nb = None
    try:
        if kernel is not None:
            error, nb = _execute(notebook, executed, kernel, partial, run_env, injected, progress, timeout, kernel_name)
            # it winds down, and its channels and files are freed, while the report is exported
            kernel.request_shutdown()
            threading.Thread(target=kernel.close, name="evaluator-kernel-close", daemon=True).start()
        return _finish(notebook, out, partial, executed, nb, params, manifest, error, t0, pdf=pdf, language=language)
    finally:
        if kernel is not None:
            kernel.close()  # waits for the close begun above: no process of the kernel outlives the run


def _execute(
    notebook: Path,
    executed: Path,
    kernel: Kernel,
    partial: Path,
    run_env: Mapping[str, str],
    injected: Mapping[str, Any],
    progress: bool,
    timeout: float | None,
    kernel_name: str | None,
) -> tuple[dict[str, Any] | None, Any]:
    """Execute ``notebook`` into ``executed`` with papermill on ``kernel``: (the error or None, the executed notebook).

    The notebook is papermill's in memory (what it wrote to ``executed``), None when the run failed.
    """
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    try:
        kernel.prepare(partial, run_env)
        nb = pm.execute_notebook(
            str(notebook),
            str(executed),
            parameters=dict(injected),
            progress_bar=progress,
            kernel_name=kernel_name,
            request_save_on_cell_execute=False,
            execution_timeout=timeout,
            km=kernel.km,  # the kernel booted already; nbclient drives it and leaves its shutdown to us
        )
    except PapermillExecutionError as exc:
        return {"cell_index": exc.cell_index, "ename": exc.ename, "evalue": exc.evalue, "source": exc.source}, None
    except Exception as exc:  # kernel death, cell timeout, papermill I/O: the run failed, the caller hears why
        return {"cell_index": None, "ename": type(exc).__name__, "evalue": str(exc), "source": ""}, None
    return None, nb


def _finish(
    notebook: Path,
    out: Path,
    partial: Path,
    executed: Path,
    nb: Any,
    params: Mapping[str, Any],
    manifest: dict[str, Any],
    error: dict[str, Any] | None,
    t0: float,
    *,
    pdf: bool,
    language: str,
) -> RunRecord:
    """Export, check and record the executed notebook, move the folder into place; raise :class:`RunFailed`.

    ``nb`` is the executed notebook in memory (written to ``executed`` already), or None when the run failed.
    """
    results = None
    results_path = partial / "results.json"
    if error is None:
        try:
            page = _export_html(nb, str(params.get("title", notebook.stem)), language)
            atomic_write_text(partial / "report.html", page)
        except Exception as exc:  # an export failure fails the run; the executed notebook is kept
            error = {"cell_index": None, "ename": type(exc).__name__, "evalue": f"HTML export: {exc}", "source": ""}
        if pdf and error is None:
            manifest["pdf"] = _print_pdf(partial / "report.html", out)
        if results_path.is_file():
            results = json.loads(results_path.read_text(encoding="utf-8"))
    if error is None:
        disclosure = _disclosure(partial, params)
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
        ended=utc_now(),
        duration_s=round(seconds, 3),
        cell_seconds=_cell_seconds(executed),
        error=error and {**error, "notebook": str(out / "report.ipynb")},
        files=sorted(p.name for p in partial.iterdir() if not p.name.startswith(".")) + ["manifest.json"],
    )
    from evaluator.files import jsonable

    atomic_write_text(partial / "manifest.json", json.dumps(jsonable(manifest), indent=2))
    swap_into_place(partial, out)
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


def _print_pdf(html: Path, out: Path) -> dict[str, Any]:
    """Print ``report.pdf`` beside ``html``; a missing browser is said, recorded, and not a failure."""
    from evaluator.runner.pdf import PdfUnavailable, write_pdf

    try:
        write_pdf(html)
    except PdfUnavailable as exc:
        print(f"evaluator: {out.name}: {exc}; the HTML report is written", file=sys.stderr)
        return {"written": False, "reason": str(exc)}
    except Exception as exc:  # a browser crash costs the PDF, never the report
        print(
            f"evaluator: {out.name}: no PDF ({type(exc).__name__}: {exc}); the HTML report is written", file=sys.stderr
        )
        return {"written": False, "reason": f"{type(exc).__name__}: {exc}"}
    return {"written": True, "file": "report.pdf"}


def _checked_with_notes(notebook: Path, given: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`check_parameters`, its deprecation warnings printed as one-line notes (also when it raises); other
    warnings are issued again as they came, under the filters in force (a ResourceWarning stays hidden)."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            return check_parameters(notebook, given)
    finally:
        # Outside the recording block: inside it, issuing a warning appends to `caught`, and this loop, walking
        # that list, never ends (a ResourceWarning from a collected file during the check did that: 8 GB of copies)
        for w in caught:
            if issubclass(w.category, (FutureWarning, DeprecationWarning)):
                print(f"evaluator report: note: {w.message}", file=sys.stderr)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def main_report(
    notebook: str,
    out: str,
    data: str | None,
    pairs: list[list[str]] | None,
    *,
    progress: bool,
    timeout: float | None,
    pdf: bool = False,
    kernels: KernelPool | None = None,
) -> int:
    """The ``evaluator report`` command: 0 ok, 1 the run failed, 2 bad input.

    ``kernels`` holds the kernel the command launched first (see :func:`run_report`).
    """
    given: dict[str, Any] = {}
    for key, value in pairs or []:
        given[key] = value
    try:
        nb = Path(notebook)
        if not nb.is_file() and len(nb.parts) == 1 and nb.suffix in ("", ".ipynb"):
            nb = notebook_path(notebook)  # a shipped notebook by name; a misspelt one gets a suggestion
        given = _checked_with_notes(nb, _given_with_data(given, data))
        rec = run_report(nb, out=out, parameters=given, progress=progress, timeout=timeout, pdf=pdf, kernels=kernels)
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
