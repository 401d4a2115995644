"""The batch index: ``OUT/index.html`` and ``OUT/index.json`` over every report folder in ``OUT``.

The rows are read from each folder's ``manifest.json`` and ``results.json``; the page is
the jinja2 template ``templates/index.html.j2`` with autoescape on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from evaluator.files import atomic_write_text
from evaluator.formatting import p_decimals, sig
from evaluator.provenance import utc_now
from evaluator.runner.batch_file import BatchError

__all__ = ["index_p", "index_rows", "read_json", "render_index", "write_index"]


def index_p(p: Any) -> str:
    """A p-value as the index and the batch summary show it (``"<0.001"``, ``"0.040"``, ``""``)."""
    return p_decimals(p, below="<0.001", missing="")


def read_json(path: Path) -> dict[str, Any] | None:
    """A run's JSON record (manifest, results) as a dict; None when absent, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def index_rows(out: Path) -> list[dict[str, Any]]:
    """One row per folder of ``out`` with a ``manifest.json``, in name order (the rows of ``index.json``)."""
    rows = []
    for folder in sorted(p for p in out.iterdir() if p.is_dir() and not p.name.startswith(".")):
        manifest = read_json(folder / "manifest.json")
        if manifest is None:
            continue
        results = read_json(folder / "results.json") or {}
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


def _row_view(r: Mapping[str, Any]) -> dict[str, str]:
    """What one row of the page shows, as plain text (the template escapes it)."""
    status = r["status"]
    estimate = label = ""
    if r["estimate"] is not None:
        estimate = sig(r["estimate"])
        if r["ci"]:
            estimate += f" [{sig(r['ci'][0])}, {sig(r['ci'][1])}]"
        label = str(r["outcome_label"] or r["outcome"] or "")
    return {
        "name": r["name"],
        "href": quote(r["link"]) if r["link"] else "",
        "title": str(r["title"]) if r["title"] else "",
        "error": str(r["error"]) if r["error"] and status != "ok" else "",
        "design": str(r["design"] or ""),
        "estimate": estimate,
        "label": label,
        "pvalue": index_p(r["pvalue"]),
        "status": status,
        "css": status if status in ("ok", "failed", "timeout") else ("failed" if status == "flagged" else "other"),
        "date": str(r["started"] or "")[:16].replace("T", " "),  # minutes suffice; index.json has the rest
        "duration": f"{r['duration_s']:.1f} s" if isinstance(r["duration_s"], (int, float)) else "",
    }


@lru_cache(maxsize=1)
def _template() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("evaluator.runner", "templates"),
        autoescape=True,
        trim_blocks=True,
        keep_trailing_newline=True,
    )
    return env.get_template("index.html.j2")


def render_index(rows: Sequence[Mapping[str, Any]], generated: str) -> str:
    """The index page for ``rows`` (from :func:`index_rows`), written at ``generated``.

    >>> page = render_index([], "2026-01-01T00:00:00+00:00")
    >>> "0 reports: no reports yet." in page, "No reports in this folder yet." in page
    (True, True)
    """
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return _template().render(rows=[_row_view(r) for r in rows], counts=sorted(counts.items()), generated=generated)


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

    Raises
    ------
    BatchError
        When ``out`` is not a folder.

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
    out = Path(out)
    if not out.is_dir():
        raise BatchError(f"reports folder not found: {out}")
    rows = index_rows(out)
    generated = utc_now()
    page = render_index(rows, generated)
    # The page first: a reader (or a test) that sees the new index.json finds the page beside it,
    # even when the batch is killed between the two writes.
    html_path = atomic_write_text(out / "index.html", page)
    atomic_write_text(out / "index.json", json.dumps({"generated": generated, "runs": rows}, indent=2, default=str))
    return html_path
