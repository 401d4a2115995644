"""Time a batch of reports: sequential against parallel, per-run overhead, and a failing run.

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_batch.py [notebooks/demo_batch.yaml] [--jobs 2] [--json PATH]

Measures, each batch run with ``force=True`` into a fresh temporary folder:

(a) the batch's wall time with ``jobs=1``;
(b) its wall time with ``jobs=--jobs`` (default 2) and the ratio parallel / sequential
    (target <= 0.65 on 2 cores);
(c) per run (from the sequential batch, so runs do not compete for the cores): the
    run process's wall time against the notebook's own cells, the sum of
    ``metadata.papermill.duration`` over the executed notebook's cells. Their
    difference is the overhead of a run: process start and imports, parameter check
    and fingerprint, kernel start and shutdown, HTML export, manifest. It is split
    into "before run_report's clock" (process start, imports, checks: the run's
    wall time minus the manifest's ``duration_s``) and "inside it" (kernel, export:
    ``duration_s`` minus the cells);
(d) the batch again with one extra run whose column-name parameter names a column
    that does not exist: it must fail, and every other run's folder must hold
    ``report.html``, ``report.ipynb``, ``results.json`` and a manifest with status ok.

The markdown report goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from evaluator.runner import batch as bt
from evaluator.runner.parameters import notebook_parameters

REPO = Path(__file__).resolve().parents[1]
#: Parameters that name a column, in the order tried for the failing run of (d).
COLUMN_PARAMETERS = ("outcome", "unit", "time", "cohort", "cluster", "treatment", "treated")


def cell_seconds(notebook: Path) -> tuple[float | None, float | None]:
    """(sum of the cells' papermill durations, the notebook's papermill duration) of an executed notebook."""
    try:
        nb = json.loads(notebook.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, None
    cells = [c.get("metadata", {}).get("papermill", {}).get("duration") for c in nb.get("cells", [])]
    total = sum(d for d in cells if isinstance(d, (int, float)))
    whole = nb.get("metadata", {}).get("papermill", {}).get("duration")
    return total, whole if isinstance(whole, (int, float)) else None


def timed(batch: bt.Batch, out: Path, jobs: int) -> tuple[float, bt.BatchSummary]:
    print(f"running {len(batch.runs)} runs with jobs={jobs} into {out}", file=sys.stderr)
    t0 = time.perf_counter()
    summary = bt.run_batch(batch, out=out, jobs=jobs, force=True, progress=True)
    return time.perf_counter() - t0, summary


def failing_run(batch: bt.Batch, name: str | None, param: str | None) -> bt.RunSpec:
    """A copy of one run whose column-name parameter names a column that does not exist."""
    for run in batch.runs:
        if name is not None and run.name != name:
            continue
        known = notebook_parameters(run.notebook)
        keys = [param] if param else [k for k in COLUMN_PARAMETERS if k in known and known[k].kind in ("str", "any")]
        if keys and keys[0] in known:
            key = keys[0]
            params = {**run.parameters, key: "no_such_column"}
            return dataclasses.replace(run, name=f"{run.name}-bad-column", parameters=params, origin="benchmark")
    raise SystemExit("no run has a column-name parameter to break; pass --fail-run NAME --fail-param KEY")


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def check_complete(out: Path, names: list[str]) -> list[str]:
    """Problems with the ok runs' folders (missing files, status not ok)."""
    problems = []
    for name in names:
        folder = out / name
        for file in ("report.html", "report.ipynb", "results.json", "manifest.json"):
            if not (folder / file).is_file():
                problems.append(f"{name}: {file} missing")
        manifest = read_json(folder / "manifest.json")
        if manifest.get("status") != "ok":
            problems.append(f"{name}: manifest status {manifest.get('status')!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("batch", nargs="?", default=str(REPO / "notebooks" / "demo_batch.yaml"), help="batch file")
    parser.add_argument("--jobs", type=int, default=2, help="jobs of the parallel batch (default 2)")
    parser.add_argument("--out", default=None, help="folder for the reports (default: a temporary folder)")
    parser.add_argument("--fail-run", default=None, help="run to copy for the failing run (default: the first)")
    parser.add_argument("--fail-param", default=None, help="its column-name parameter (default: outcome, unit, ...)")
    parser.add_argument("--skip-failure", action="store_true", help="skip (d)")
    parser.add_argument("--json", default=None, help="write the raw numbers here")
    args = parser.parse_args(argv)

    batch = bt.load_batch(args.batch)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="bench_batch-"))
    numbers: dict[str, Any] = {"batch": str(batch.path), "runs": len(batch.runs), "jobs": args.jobs}

    seq_wall, seq = timed(batch, root / "sequential", 1)
    par_wall, par = timed(batch, root / "parallel", args.jobs)
    numbers.update(sequential_s=seq_wall, parallel_s=par_wall, ratio=par_wall / seq_wall)
    numbers["sequential_status"] = seq.counts()
    numbers["parallel_status"] = par.counts()

    per_run = []
    for r in seq.runs:
        folder = root / "sequential" / r.name
        cells, whole = cell_seconds(folder / "report.ipynb")
        manifest = read_json(folder / "manifest.json")
        duration = manifest.get("duration_s")
        row = {
            "name": r.name,
            "status": r.status,
            "run_s": r.seconds,
            "cells_s": cells,
            "notebook_s": whole,
            "run_report_s": duration,
        }
        if cells is not None:
            row["overhead_s"] = r.seconds - cells
        if isinstance(duration, (int, float)):
            row["before_s"] = r.seconds - duration
            if cells is not None:
                row["inside_s"] = duration - cells
        per_run.append(row)
    numbers["per_run"] = per_run
    overheads = [row["overhead_s"] for row in per_run if "overhead_s" in row]

    failure: dict[str, Any] | None = None
    if not args.skip_failure:
        bad = failing_run(batch, args.fail_run, args.fail_param)
        with_bad = bt.Batch(batch.path, (*batch.runs, bad))
        wall, summary = timed(with_bad, root / "with-failure", args.jobs)
        status = {r.name: r.status for r in summary.runs}
        others = [r.name for r in batch.runs]
        failure = {
            "run": bad.name,
            "parameters": bad.parameters,
            "status": status[bad.name],
            "message": next(r.message for r in summary.runs if r.name == bad.name),
            "others_ok": all(status[n] == "ok" for n in others),
            "problems": check_complete(root / "with-failure", others),
            "wall_s": wall,
            "index_lists_all": all(
                f'href="{n}/report.html"' in (root / "with-failure" / "index.html").read_text() for n in others
            ),
        }
        numbers["failure"] = failure

    # -- report
    print(f"# bench_batch.py: {batch.path.name}, {len(batch.runs)} runs")
    print(f"Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.platform()}; reports in {root}\n")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| (a) sequential wall time, jobs=1 | {seq_wall:.1f} s |")
    print(f"| (b) parallel wall time, jobs={args.jobs} | {par_wall:.1f} s |")
    print(f"| (b) ratio parallel / sequential (target <= 0.65) | {par_wall / seq_wall:.2f} |")
    if overheads:
        print(f"| (c) per-run overhead outside the cells, mean | {statistics.mean(overheads):.2f} s |")
        print(f"| (c) per-run overhead outside the cells, max | {max(overheads):.2f} s |")
    if failure:
        ok = failure["others_ok"] and not failure["problems"] and failure["status"] == "failed"
        print(f"| (d) failing run `{failure['run']}` | {failure['status']} |")
        print(
            f"| (d) every other report complete (files, manifest ok, in index) | "
            f"{'yes' if ok and failure['index_lists_all'] else 'NO: ' + '; '.join(failure['problems'])} |"
        )
    print()
    print(
        "| run | status | run process (s) | run_report (s) | notebook cells (s) | overhead (s) "
        "| of which before run_report (s) | of which kernel + export (s) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")

    def f(x: Any) -> str:
        return f"{x:.2f}" if isinstance(x, (int, float)) else "."

    for row in per_run:
        print(
            f"| {row['name']} | {row['status']} | {f(row['run_s'])} | {f(row['run_report_s'])} | "
            f"{f(row['cells_s'])} | {f(row.get('overhead_s'))} | {f(row.get('before_s'))} | "
            f"{f(row.get('inside_s'))} |"
        )
    if failure:
        print(f"\n(d) message: {failure['message']}")
    if args.json:
        Path(args.json).write_text(json.dumps(numbers, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
