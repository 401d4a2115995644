"""The batch index: ``OUT/index.html`` and ``OUT/index.json`` over every report folder in ``OUT``.

The rows are read from each folder's ``manifest.json`` and ``results.json``; the page is
the jinja2 template ``templates/index.html.j2`` with autoescape on, in one of the languages of
:data:`evaluator.i18n.LANGUAGES` (``write_index(out, language="da")``: its words from the catalog,
its numbers with that language's separators; English by default).

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
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import quote

from evaluator.files import atomic_write_text
from evaluator.formatting import localized, num, p_value
from evaluator.i18n import LANGUAGES, N_, check_language, translations
from evaluator.i18n import gettext as _
from evaluator.i18n import language as in_language
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


#: The statuses of a run as the page shows them (the manifest's ``status``; an unknown one is shown as it is).
_STATUS_WORDS = {
    # TRANSLATORS: status of a report run in the batch index: it ran without error.
    "ok": N_("ok"),
    # TRANSLATORS: status of a report run in the batch index: it stopped with an error.
    "failed": N_("failed"),
    # TRANSLATORS: status of a report run in the batch index: it ran out of time and was stopped.
    "timeout": N_("timeout"),
    # TRANSLATORS: status of a report run in the batch index: it ran, but its report was flagged (disclosure check).
    "flagged": N_("flagged"),
    # TRANSLATORS: status of a report run in the batch index: not run again, its report was up to date.
    "skipped": N_("skipped"),
    # TRANSLATORS: status of a report run in the batch index: still running.
    "running": N_("running"),
    # TRANSLATORS: status of a report run in the batch index: its record does not say.
    "unknown": N_("unknown"),
}

#: The designs of ``results.json`` (``design``) as the page shows them; any other is shown as it is.
_DESIGN_WORDS = {
    "difference-in-differences": N_("difference-in-differences"),
    "matched comparison": N_("matched comparison"),
    "synthetic control": N_("synthetic control"),
}


def _word(words: Mapping[str, str], key: str) -> str:
    """``key``'s word in the current language, or ``key`` itself when it is not one of ``words``."""
    return _(words[key]) if key in words else key


def _finite(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _positional(x: float, digits: int) -> str:
    """``x`` written out in full where :func:`~evaluator.formatting.num` switches to scientific notation:
    from a million up in whole units (as ``num`` writes every number from 1,000 up), from a millionth
    down to ``digits`` significant figures."""
    if abs(x) >= 1:
        return localized(f"{x:,.0f}")
    rounded = float(f"{x:.{digits}g}")
    decimals = max(digits - 1 - math.floor(math.log10(abs(rounded))), 0)
    return localized(f"{rounded:.{decimals}f}".rstrip("0").rstrip("."))


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
    # TRANSLATORS: a confidence interval from %(low)s to %(high)s; where the decimal separator is a comma,
    # separate the two ends with a semicolon ("[0,1; 0,9]").
    return _("[%(low)s, %(high)s]") % {"low": index_number(ci[0]), "high": index_number(ci[1])}


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
    return localized(f"{float(seconds):.1f}") + " s" if _finite(seconds) else ""


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
        parameters = manifest.get("parameters") if isinstance(manifest.get("parameters"), Mapping) else {}
        rows.append(
            {
                "name": folder.name,
                "status": str(manifest.get("status", "unknown")),
                "title": results.get("title") or parameters.get("title"),
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
                "language": parameters.get("language") or None,
            }
        )
    return rows


def _row_view(r: Mapping[str, Any], page_language: str = "en") -> dict[str, str]:
    """What one row of the page shows, as plain text (the template escapes it).

    The run's report language (its parameter ``language``) is shown where it is not the page's own.
    """
    status = r["status"]
    code = r.get("language")
    if code == page_language:
        code = None
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
        "design": _word(_DESIGN_WORDS, str(r["design"] or "")),
        "estimate": estimate,
        "label": label,
        "pvalue": index_p(r["pvalue"]),
        "contract": r.get("contract") or "",
        "status": _word(_STATUS_WORDS, status),
        "css": status if status in ("ok", "failed", "timeout") else ("failed" if status == "flagged" else "other"),
        "date": str(r["started"] or "")[:16].replace("T", " "),  # minutes suffice; index.json has the rest
        "duration": index_seconds(r["duration_s"]),
        # the report's language in its own name ("dansk"), and its code for the tag's lang attribute
        "language": LANGUAGES.get(str(code), str(code)) if code else "",
        "language_code": str(code) if code in LANGUAGES else "",
    }


@cache
def _template(code: str = "en") -> Any:
    """The index template of language ``code``: its own environment, with that language's catalog installed."""
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("evaluator.runner", "templates"),
        autoescape=True,
        trim_blocks=True,
        keep_trailing_newline=True,
        extensions=["jinja2.ext.i18n"],
    )
    # as the reports' environment (evaluator.reporting.html): {% trans %} blocks read as one line,
    # and _() and {% trans %} format %(name)s placeholders
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(translations(code), newstyle=True)
    env.globals["language"] = code
    return env.get_template("index.html.j2")


def render_index(rows: Sequence[Mapping[str, Any]], generated: str, *, language: str = "en") -> str:
    """The index page for ``rows`` (from :func:`index_rows`), written at ``generated``, in ``language``.

    The page's words and numbers are in ``language`` (one of :data:`evaluator.i18n.LANGUAGES`);
    a run whose report is in another language (its parameter ``language``) shows that language
    in its row, in the language's own name ("dansk").

    >>> page = render_index([], "2026-01-01T00:00:00+00:00")
    >>> "0 reports: no reports yet." in page, "No reports in this folder yet." in page, '<html lang="en">' in page
    (True, True, True)
    """
    code = check_language(language)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    with in_language(code):
        shown = [_row_view(r, code) for r in rows]
        statuses = [(_word(_STATUS_WORDS, status), n) for status, n in sorted(counts.items())]
        return _template(code).render(rows=shown, counts=statuses, generated=generated)


def write_index(out: str | Path, *, language: str = "en") -> Path:
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
    language : str
        The language of the page's words and numbers (one of :data:`evaluator.i18n.LANGUAGES`);
        a run whose report is in another language (its parameter ``language``) shows it in its row.

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

    A run whose report is in another language than the page shows it in its row, in the language's own name:

    >>> _ = (out / "demo" / "manifest.json").write_text(json.dumps({"status": "ok", "parameters": {"language": "da"}}))
    >>> '<small lang="da">dansk</small>' in write_index(out).read_text()
    True
    >>> "dansk" in write_index(out, language="da").read_text()  # a Danish page: no need to say so
    False
    """
    out = Path(out)
    if not out.is_dir():
        raise BatchError(f"reports folder not found: {out}")
    rows = index_rows(out)
    generated = utc_now()
    page = render_index(rows, generated, language=language)
    # The page first: a reader (or a test) that sees the new index.json finds the page beside it,
    # even when the batch is killed between the two writes.
    html_path = atomic_write_text(out / "index.html", page)
    atomic_write_text(out / "index.json", json.dumps({"generated": generated, "runs": rows}, indent=2, default=str))
    return html_path
