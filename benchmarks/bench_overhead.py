"""Time one ``evaluator report`` outside the notebook's own cells (issue 16 item 5: at most 2 s).

Usage (from the repository root)::

    .venv/bin/python benchmarks/bench_overhead.py [did_evaluation] [--runs 5] [-p KEY VALUE ...] [--json PATH]
    .venv/bin/python benchmarks/bench_overhead.py --tree /tmp/old-checkout   # another tree, same interpreter

Each run is a fresh process, ``python -m evaluator.cli report NOTEBOOK --out TMP --no-progress``,
timed from just before it is spawned until it has exited (the report written). The cells' own
time is the sum of ``metadata.papermill.duration`` over the executed ``report.ipynb``; the
overhead is the wall time minus that sum. It is split by the timestamps papermill writes:

- *to papermill*: spawn to papermill's start (interpreter, imports, parameter check,
  fingerprint, kernel launch and its wait until it answers);
- *to the first cell*: papermill's start to the first cell's start (reading and
  parameterising the notebook, nbclient's client and its kernel checks);
- *between cells*: the cells' span minus their durations (nbclient's bookkeeping per cell);
- *after the cells*: the last cell's end to the process's exit (HTML export, disclosure
  check, manifest, kernel shutdown, interpreter exit).

The table goes to stdout (markdown), progress to stderr; min, median and max over the runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PHASES = ("to_papermill_s", "to_first_cell_s", "between_cells_s", "after_cells_s")


def _stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def one_run(notebook: str, params: list[list[str]], python: str, tree: Path = REPO) -> dict[str, Any]:
    """Run the report once in a fresh process; its wall time, cells' time and the phases of the rest."""
    tmp = Path(tempfile.mkdtemp(prefix="bench-overhead-"))
    out = tmp / "report"
    cmd = [python, "-m", "evaluator.cli", "report", notebook, "--out", str(out), "--no-progress"]
    for key, value in params:
        cmd += ["-p", key, value]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), os.environ.get("PYTHONPATH", "")]).rstrip(":")}
    try:
        t_wall, t0 = time.time(), time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=tmp)
        wall = time.perf_counter() - t0
        t_end = t_wall + wall
        if proc.returncode != 0:
            raise SystemExit(f"the report failed ({proc.returncode}):\n{proc.stderr}")
        nb = json.loads((out / "report.ipynb").read_text(encoding="utf-8"))
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    cells = [c["metadata"]["papermill"] for c in nb["cells"] if "papermill" in c.get("metadata", {})]
    cells = [c for c in cells if c.get("duration") is not None]
    cell_s = sum(c["duration"] for c in cells)
    first, last = _stamp(cells[0]["start_time"]), _stamp(cells[-1]["end_time"])
    pm_start = _stamp(nb["metadata"]["papermill"]["start_time"])
    return {
        "wall_s": wall,
        "cells_s": cell_s,
        "overhead_s": wall - cell_s,
        "runner_s": manifest["duration_s"],
        "to_papermill_s": pm_start - t_wall,
        "to_first_cell_s": first - pm_start,
        "between_cells_s": (last - first) - cell_s,
        "after_cells_s": t_end - last,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebook", nargs="?", default="did_evaluation")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("-p", "--param", nargs=2, action="append", default=[], metavar=("KEY", "VALUE"))
    parser.add_argument("--python", default=sys.executable, help="the interpreter of the runs")
    parser.add_argument("--tree", default=str(REPO), help="the source tree the runs import evaluator from")
    parser.add_argument("--json", default=None, help="also write the runs as JSON here")
    args = parser.parse_args(argv)

    load = os.getloadavg()[0]
    rows = []
    for i in range(args.runs):
        row = one_run(args.notebook, args.param, args.python, Path(args.tree).resolve())
        print(
            f"run {i + 1}/{args.runs}: wall {row['wall_s']:.2f} s, cells {row['cells_s']:.2f} s, "
            f"overhead {row['overhead_s']:.2f} s",
            file=sys.stderr,
        )
        rows.append(row)
    print(f"`evaluator report {args.notebook}`, {args.runs} runs, load average before: {load:.2f}\n")
    print("| measure | min | median | max |")
    print("|---|---:|---:|---:|")
    for key in ("wall_s", "cells_s", "overhead_s", *PHASES):
        values = [r[key] for r in rows]
        print(f"| {key[:-2]} (s) | {min(values):.2f} | {statistics.median(values):.2f} | {max(values):.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
