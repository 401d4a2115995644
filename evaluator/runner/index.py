"""The batch index: ``OUT/index.html`` and ``OUT/index.json`` over every report folder in ``OUT``.

The rows are read from each folder's ``manifest.json`` and ``results.json``; the page is
the jinja2 template ``templates/index.html.j2`` with autoescape on.

The numbers a person reads here and in the batch summary printed in the terminal
(:class:`evaluator.runner.batch.BatchSummary`) are written by the same functions, so
that both read alike, and alike the reports they list (:mod:`evaluator.formatting`):
:func:`index_number` (estimates and interval bounds, three significant figures),
:func:`index_p` (p-values: ``< 0.001`` or two significant figures) and
:func:`index_seconds` (the run's duration, from its ``manifest.json``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from evaluator.files import atomic_write_text
from evaluator.formatting import num, p_value
from evaluator.provenance import utc_now
from evaluator.runner.batch_file import BatchError

__all__ = [
    "index_interval",
    "index_number",
    "index_p",
    "index_rows",
    "index_seconds",
    "read_json",
    "render_index",
    "write_index",
]


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _positional(x: float, digits: int) -> str:
    """``x`` written out in full where :func:`~evaluator.formatting.num` switches to scientific notation:
    from a million up in whole units (as ``num`` writes every number from 1,000 up), from a millionth
    down to ``digits`` significant figures."""
    if abs(x) >= 1:
        return f"{x:,.0f}"
    rounded = float(f"{x:.{digits}g}")
    decimals = max(digits - 1 - math.floor(math.log10(abs(rounded))), 0)
    return f"{rounded:.{decimals}f}".rstrip("0").rstrip(".")


def index_number(x: Any) -> str:
    """An estimate or interval bound as the index and the batch summary show it: three significant figures.

    As the reports write it (:func:`evaluator.formatting.num`: thousands separators, trailing
    zeros dropped, whole units from 1,000 up), but never in scientific notation; ``""`` when
    missing or not a finite number.

    >>> index_number(0.0800), index_number(0.003037), index_number(-2.345), index_number(0.157)
    ('0.08', '0.00304', '-2.35', '0.157')
    >>> index_number(1234567.0), index_number(2.5e-7), index_number(None), index_number(float("nan"))
    ('1,234,567', '0.00000025', '', '')
    """
    if not _finite(x):
        return ""
    text = num(float(x), 3)
    return _positional(float(x), 3) if "e" in text else text


def index_interval(ci: Any) -> str:
    """An interval as ``"[low, high]"`` (:func:`index_number` each), ``""`` unless both ends are finite numbers.

    >>> index_interval([0.003037, 0.157]), index_interval(None), index_interval([float("nan"), 1.0])
    ('[0.00304, 0.157]', '', '')
    """
    if not isinstance(ci, Sequence) or isinstance(ci, str) or len(ci) != 2 or not all(map(_finite, ci)):
        return ""
    return f"[{index_number(ci[0])}, {index_number(ci[1])}]"


def index_p(p: Any) -> str:
    """A p-value as the index and the batch summary show it: ``"< 0.001"``, else two significant figures.

    As in the reports' tables (:func:`evaluator.formatting.p_value` with two digits); ``""`` when missing.

    >>> index_p(0.0004), index_p(0.04), index_p(0.04321), index_p(0.00701), index_p(0.999), index_p(None)
    ('< 0.001', '0.04', '0.043', '0.007', '1', '')
    """
    return p_value(float(p), 2) if _finite(p) else ""


def index_seconds(seconds: Any) -> str:
    """A run's duration as the index and the batch summary show it (``"35.2 s"``; ``""`` when unknown).

    >>> index_seconds(35.249), index_seconds(0), index_seconds(None)
    ('35.2 s', '0.0 s', '')
    """
    return f"{float(seconds):.1f} s" if _finite(seconds) else ""


def _verdict(results: Mapping[str, Any]) -> dict[str, str] | None:
    """The run's payment verdict (``results.json`` ``verdict``: ``status`` and ``text``), None when it has none."""
    verdict = results.get("verdict")
    if not isinstance(verdict, Mapping) or not isinstance(verdict.get("text"), str) or not verdict["text"].strip():
        return None
    status = verdict.get("status")
    return {"status": str(status) if status is not None else "", "text": verdict["text"]}


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
        verdict = _verdict(results)
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
                "verdict": verdict,
                "contract": verdict["text"] if verdict else None,
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
    if _finite(r["estimate"]):
        estimate = index_number(r["estimate"])
        interval = index_interval(r["ci"])
        if interval:
            estimate += f" {interval}"
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
        "contract": r.get("contract") or "",
        "status": status,
        "css": status if status in ("ok", "failed", "timeout") else ("failed" if status == "flagged" else "other"),
        "date": str(r["started"] or "")[:16].replace("T", " "),  # minutes suffice; index.json has the rest
        "duration": index_seconds(r["duration_s"]),
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
    the contract's payment verdict (``results.json`` ``verdict.text``, verbatim),
    status, start time and duration (the run's own ``duration_s``). The page is self-contained (inline CSS, no
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
    ...     "ci": [-2.0, -1.0], "pvalue": 0.0001, "verdict": {"status": "met", "text": "GBP 5,000 is owed."}}))
    >>> page = write_index(out).read_text()
    >>> "A &amp; B" in page, "-1.5 [-2, -1]" in page, "&lt; 0.001" in page, "3.2 s" in page
    (True, True, True, True)
    >>> row = json.loads((out / "index.json").read_text())["runs"][0]
    >>> row["name"], row["contract"], row["verdict"]["status"]
    ('demo', 'GBP 5,000 is owed.', 'met')
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
