"""Reports: from data to a self-contained HTML page.

For now this module renders the demo: it generates the bundled synthetic
scenarios, validates each against its schema and writes ``reports/index.html``
summarising them. The parameterised notebooks and the papermill runner arrive
with the report pipeline (issue 5) and will write into the same index.
"""

from __future__ import annotations

import html
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from evaluator import simulate
from evaluator.data import load_individuals, load_panel
from evaluator.results import _jsonable

#: The demo scenarios: (file name, generator, keyword arguments).
DEMO = (
    ("sick_leave_sib", simulate.sick_leave_sib, {"seed": 2016}),
    ("employment_sib", simulate.employment_sib, {"seed": 2018}),
    ("reoffending_sib", simulate.reoffending_sib, {"seed": 2010}),
)


def atomic_write_text(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file, so a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def write_frame(frame: pd.DataFrame, path: Path) -> Path:
    """Write a DataFrame as Parquet or CSV (by the file's suffix) through a temporary file."""
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


@dataclass(frozen=True)
class DemoEntry:
    """One generated and validated demo data set."""

    name: str
    path: Path
    schema: str
    summary: dict[str, object]
    truth: dict[str, object]


def _summarise(name: str, sim: simulate.Simulation, frame: pd.DataFrame) -> dict[str, object]:
    cols = sim.columns
    if sim.schema == "panel":
        cohorts = frame[cols["cohort"]]
        return {
            "rows": len(frame),
            "units": int(frame[cols["unit"]].nunique()),
            "periods": int(frame[cols["time"]].nunique()),
            "clusters": int(frame[cols["cluster"]].nunique()),
            "cohorts (first treated period)": ", ".join(str(c) for c in sorted(cohorts[cohorts > 0].unique())),
            "never-treated units": int(frame.loc[cohorts == 0, cols["unit"]].nunique()),
        }
    treat = frame[cols["treat"]]
    return {
        "rows": len(frame),
        "treated": int(treat.sum()),
        "comparison pool": int((treat == 0).sum()),
        "covariates": ", ".join(cols["covariates"]),
        "outcomes": ", ".join(cols["outcome"]),
    }


def demo(out: Path = Path("reports"), data_dir: Path = Path("data/demo")) -> Path:
    """Generate, validate and summarise the demo scenarios; return the path of ``index.html``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> demo(out=d / "reports", data_dir=d / "data").name
    'index.html'
    """
    started = time.time()
    entries = []
    for name, generator, kwargs in DEMO:
        sim = generator(**kwargs)
        path = write_frame(sim.data, data_dir / f"{name}.parquet")
        loader = load_panel if sim.schema == "panel" else load_individuals
        frame = loader(path, columns=sim.columns)  # validate what was written, as a user would read it
        truth = {k: v for k, v in sim.truth.items() if not callable(v)}
        atomic_write_text(
            path.with_name(f"{name}.truth.json"),
            json.dumps({"params": _jsonable(sim.params), "columns": sim.columns, "truth": _jsonable(truth)}, indent=2),
        )
        entries.append(DemoEntry(name, path, sim.schema, _summarise(name, sim, frame), truth))
    return write_index(entries, out, seconds=time.time() - started)


def _headline_truth(entry: DemoEntry) -> str:
    t = entry.truth
    if "simple" in t:
        return f"true average effect on the treated: {float(t['simple']):.3f} sick-leave days per month"
    if "relative" in t:
        return f"true effect: {float(t['att']):.3f} reconvictions per person ({100 * float(t['relative']):.1f}%)"
    att = t.get("att", {})
    if isinstance(att, dict) and att:
        return "true effect on the treated: " + ", ".join(f"{k} {v:+.3f}" for k, v in att.items())
    return ""


def write_index(entries: list[DemoEntry], out: Path, *, seconds: float) -> Path:
    """Write ``out/index.html`` listing the demo data sets (all text HTML-escaped)."""
    esc = html.escape
    sections = []
    for e in entries:
        rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(f'{v:,}' if isinstance(v, int) else str(v))}</td></tr>"
                       for k, v in e.summary.items())
        sections.append(
            f"<section><h2>{esc(e.name)}</h2>"
            f"<p>Validated against <code>data_schemas/{esc(e.schema)}.schema.json</code>: "
            f"<code>{esc(str(e.path))}</code></p>"
            f"<table>{rows}</table><p><em>{esc(_headline_truth(e))}</em></p></section>"
        )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>evaluator demo</title>
<style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
table{{border-collapse:collapse}}th,td{{padding:.2rem .8rem;border-bottom:1px solid #ddd;text-align:left}}</style>
</head><body>
<h1>evaluator demo</h1>
<p>Synthetic outcome-contract data with a known true effect, generated and validated in {seconds:.1f} s.
The evaluation reports (notebooks rendered by papermill) are added to this index by the report pipeline.</p>
{"".join(sections)}
</body></html>
"""
    return atomic_write_text(out / "index.html", page)
