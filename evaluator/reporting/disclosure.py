"""Statistical disclosure control: no report shows a count below ``min_cell`` or an individual's row.

Evaluations run on register microdata about vulnerable people. The rule used by
the Nordic statistics offices for tables from such data is that no cell may rest on
fewer than (typically) 5 people. This module does two things:

* **Suppress** before display: :func:`suppress_counts` replaces counts below the
  threshold (and the statistics computed from them) by ``"<5"`` and says so in a
  footnote; :func:`small_groups` names the groups too small to show on their own.
* **Check** after rendering: :func:`disclosure_check` scans a rendered report (HTML
  or executed notebook) for counts below the threshold in tables, text and figures,
  and for tables that look like individual-level rows; given a report folder (or a
  ``results.json``) it also reads the JSON sidecars. ``evaluator disclosure-check PATH``
  exits non-zero when it finds any. The batch runner runs it on every report.

The check is a safety net with rules a reader can predict, not a proof. It reads

* tables whose column names say they hold counts (``n``, ``units``, ``treated`` ...)
  and tables with an identifier column;
* phrases such as ``n = 3`` or ``3 units``, and sentences naming a group that rests on
  one or a few units: "cohorts [2006, 2010] have a single unit", "cohort 2005 has 3
  units", "rests on one state", "single-unit cohorts" (:data:`FEW_UNITS_TEXT`);
* the counts behind each figure, written by the report as ``data-counts`` on its
  ``<figure>`` (:func:`evaluator.plots.figures.record_counts`);
* in ``results.json`` and ``index.json``, every count-like key (``n``, ``n_units``,
  ``units``, ``treated``, ``size``, ``count`` ...; :data:`JSON_COUNT_KEY`), reported
  with its JSON path.

Examples
--------
>>> import pandas as pd
>>> t = pd.DataFrame({"cohort": [13, 25], "units": [120, 3], "mean": [1.2, 0.9]})
>>> suppress_counts(t, counts=["units"], statistics=["mean"], min_cell=5).frame
   cohort units mean
0      13   120  1.2
1      25    <5    .
>>> disclosure_check("<table><tr><th>cohort</th><th>units</th></tr><tr><td>25</td><td>3</td></tr></table>").ok
False
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

from evaluator.i18n import ngettext
from evaluator.policy import MIN_CELL

__all__ = [
    "FEW_UNITS_TEXT",
    "JSON_COUNT_KEY",
    "MIN_CELL",
    "SIDECARS",
    "Finding",
    "DisclosureReport",
    "HtmlTables",
    "Suppressed",
    "disclosure_check",
    "json_findings",
    "mask_notes",
    "mask_small",
    "small_groups",
    "suppress_counts",
]


# Column headers that announce a count of people (compared case-insensitively after trimming).
COUNT_HEADER = re.compile(
    r"^(n|n_\w+|\w+_n|nobs|count|counts|\w*_count|units?|n units|treated|controls?|control units|"
    r"observations|people|persons|participants|employees|prisoners|citizens|individuals|"
    r"treated units|units \(treated\)|matched|matched controls|controls used|dropped)$",
    re.I,
)
# "n = 3", "N=3", "3 units", "3 people" ...
COUNT_TEXT = [
    re.compile(r"\b[nN]\s*=\s*(\d[\d,]*)\b"),
    re.compile(
        r"\b(\d[\d,]*)\s+(?:treated\s+)?(units|people|persons|participants|employees|prisoners|citizens|"
        r"individuals|observations|controls)\b",
        re.I,
    ),
    # the same in Danish, Swedish and Finnish pages ("3 enheder", "3 personer", "3 deltagare", "3 henkilöä")
    re.compile(
        r"\b(\d[\d.,\u00a0 ]*)\s+(enheder|enheter|personer|deltagere|deltagare|medarbejdere|anställda|"
        r"observationer|yksikköä|yksikkö|henkilöä|osallistujaa|työntekijää|havaintoa)\b",
        re.I,
    ),
]
# Identifier columns: a table with one of these and several rows is individual-level data.
ID_HEADER = re.compile(r"^(id|\w+_id|unit|unit_id|person|personnummer|cpr|ssn|employee|prisoner|citizen)$", re.I)

# -- a group named as resting on one or a few units --------------------------------------------------------------------
_NUMBER_WORDS = {
    "a single": 1,
    "single": 1,
    "one": 1,
    "only one": 1,
    "just one": 1,
    "one single": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "a few": 2,
    "a handful of": 2,
}
_UNIT = (
    r"(?:(?:treated|untreated|control|comparison|adopting|distinct|different)\s+)?"
    r"(?:units?|states?|municipalit(?:y|ies)|clusters?|persons?|people|individuals?|employees?|participants?|"
    r"prisoners?|citizens?|households?|patients?|pupils?|students?|firms?|schools?|count(?:y|ies)|regions?|"
    r"countr(?:y|ies)|observations?)"
)
_NUMBER = r"(?:\d[\d,]*|a single|one single|only one|just one|one|two|three|four|five|six|seven|eight|nine|ten)"
# "a unit cost", "a one-unit increase": the unit of a measure, not a group of people
_NOT_A_GROUP = r"(?![\w-]|\s+(?:cost|costs|value|values|price|prices|of|increase|decrease|change|rise|fall|shift)\b)"
#: Sentences naming a group that rests on one or a few units; group ``n`` is the number (digits or words).
FEW_UNITS_TEXT = [
    # "a single unit", "only one state", "just one cluster"
    re.compile(rf"\b(?P<n>a single|one single|only one|just one)\s+{_UNIT}\b{_NOT_A_GROUP}", re.I),
    # "cohort 2005 has 3 units", "cohorts [2006, 2010] have one state", "with two municipalities"
    re.compile(
        rf"\b(?:has|have|had|having|with|contains?|containing|comprises?|comprising|consists?\s+of|holds?)\s+"
        rf"(?:only\s+|just\s+|exactly\s+)?(?P<n>{_NUMBER})\s+{_UNIT}\b{_NOT_A_GROUP}",
        re.I,
    ),
    # "rests on one state", "based on two clusters", "relies on a few units", "drawn from 3 people"
    re.compile(
        rf"\b(?:rests?|rested|resting|based|relies|rely|relied|relying|built|drawn|computed|estimated|identified)\s+"
        rf"(?:on|upon|from)\s+(?:only\s+|just\s+|exactly\s+)?(?P<n>{_NUMBER}|a few|a handful of)\s+{_UNIT}\b"
        rf"{_NOT_A_GROUP}",
        re.I,
    ),
    # "single-unit cohorts", "one-state cells", "two-cluster design"
    re.compile(
        r"\b(?P<n>single|one|two|three|four|five|six|seven|eight|nine|\d)-"
        r"(?:unit|state|municipality|cluster|person|employee|participant|individual|household|firm|school)\b"
        + _NOT_A_GROUP,
        re.I,
    ),
]


def _number(text: str) -> int | None:
    """The number a phrase names: digits (``"3"``, ``"1,204"``) or words (``"a single"``, ``"three"``)."""
    t = " ".join(text.lower().split())
    if t in _NUMBER_WORDS:
        return _NUMBER_WORDS[t]
    try:
        return int(t.replace(",", ""))
    except ValueError:
        return None


# -- sidecars ----------------------------------------------------------------------------------------------------------
#: The JSON files beside a report that are read when a folder is checked.
SIDECARS = ("results.json", "index.json")
#: Keys of a JSON sidecar that hold a number of people (compared case-insensitively).
JSON_COUNT_KEY = re.compile(
    r"^(n|nobs|count|counts|size|sizes|units?|treated|untreated|controls?|people|persons|participants|employees|"
    r"individuals|members|matched|dropped|n_\w+|\w+_n|\w+_count|count_\w+|\w+_size|size_\w+|"
    r"(?:treated|controls?|units|people|participants)_\w+)$",
    re.I,
)
# ... except those that count something other than people, or are not counts at all
_JSON_NOT_PEOPLE = re.compile(
    r"^(n_(?:boot\w*|draws?|reps?|replications?|iter\w*|periods?|times?|years?|months?|weeks?|days?|cohorts?|"
    r"clusters?|specifications?|specs?|terms?|params?|parameters?|covariates?|outcomes?|bins?|rows?|cols?|"
    r"columns?|waves?|seeds?|jobs?|workers?|lags?|leads?|events?|estimates?|tests?|folds?|neighbou?rs?|digits?|"
    r"decimals?|cells?|payments?|rules?|notes?|warnings?|figures?|tables?)|min_cell|\w+_(?:max|min|mean|share|rate|"
    r"ratio|per_\w+)|(?:max|min|mean|share)_\w+)$",
    re.I,
)


@dataclass(frozen=True)
class Finding:
    """One possible disclosure: where it is, what was seen and why it matters."""

    where: str
    text: str
    reason: str

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}: {self.text!r}"


@dataclass
class DisclosureReport:
    """The result of :func:`disclosure_check`."""

    source: str
    min_cell: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    def __str__(self) -> str:
        if self.ok:
            return f"{self.source}: no counts below {self.min_cell} and no individual-level rows found"
        lines = [f"{self.source}: {len(self.findings)} possible disclosure(s) (min_cell={self.min_cell}):"]
        return "\n".join(lines + [f"  - {f}" for f in self.findings])


@dataclass(frozen=True)
class Suppressed:
    """A table after suppression, and the footnote that says what was hidden."""

    frame: pd.DataFrame
    footnote: str
    n_suppressed: int


_GROUPED_INT = re.compile(r"^\d{1,3}(?:[.,\u00a0\u202f ]\d{3})+$")  # 1,234 / 1.234 / 1 234: any language's grouping


def _small(value: object, min_cell: int) -> bool:
    text = str(value).strip()
    if _GROUPED_INT.match(text):
        text = re.sub(r"[.,\u00a0\u202f ]", "", text)
    try:
        v = float(text.replace(",", "").replace("\u202f", "").strip())
    except ValueError:
        return False
    return v.is_integer() and 0 < v < min_cell


def suppress_counts(
    frame: pd.DataFrame,
    *,
    counts: Sequence[str],
    statistics: Sequence[str] = (),
    min_cell: int = MIN_CELL,
) -> Suppressed:
    """Hide counts below ``min_cell`` and the statistics of the same rows.

    Parameters
    ----------
    frame : pandas.DataFrame
        A table for display (one row per group).
    counts : list of str
        Columns holding numbers of people.
    statistics : list of str
        Columns computed from the people of the row (means, rates ...): hidden where
        the row's smallest count is below the threshold.
    min_cell : int
        The threshold; 0 or 1 disables suppression.

    Returns
    -------
    Suppressed
        ``frame`` (counts as text: ``"<5"`` where hidden, ``"."`` for hidden
        statistics), a ``footnote`` to print under the table (empty when nothing was
        hidden) and the number of rows affected.
    """
    missing = [c for c in [*counts, *statistics] if c not in frame.columns]
    if missing:
        raise KeyError(f"suppress_counts: no column(s) {missing} in the table; it has {list(frame.columns)}")
    out = frame.copy()
    if min_cell <= 1 or not counts:
        return Suppressed(out, "", 0)
    values = out[list(counts)].apply(pd.to_numeric, errors="coerce")
    small = (values > 0) & (values < min_cell)
    rows = small.any(axis=1)
    for c in counts:
        out[c] = out[c].astype(object)
        out.loc[small[c], c] = f"<{min_cell}"
    for c in statistics:
        out[c] = out[c].astype(object)
        out.loc[rows, c] = "."
    n = int(rows.sum())
    # the footnote is the reader's, in the report's language (the checks below write for analysts, in English)
    note = (
        # TRANSLATORS: a footnote under a table; n: rows hidden; English writes "row(s)" in both forms.
        ngettext(
            "%(n)s row(s) rest on fewer than %(min_cell)s people: their counts are shown as <%(min_cell)s and their "
            "statistics are suppressed (statistical disclosure control).",
            "%(n)s row(s) rest on fewer than %(min_cell)s people: their counts are shown as <%(min_cell)s and their "
            "statistics are suppressed (statistical disclosure control).",
            n,
        )
        % {"n": n, "min_cell": min_cell}
        if n
        else ""
    )
    return Suppressed(out, note, n)


def small_groups(sizes: pd.Series | dict, min_cell: int = MIN_CELL) -> list:
    """The groups (index labels) whose size is positive but below ``min_cell``.

    Examples
    --------
    >>> small_groups({"cohort 13": 40, "cohort 25": 3})
    ['cohort 25']
    """
    s = pd.Series(sizes)
    return list(s.index[(s > 0) & (s < min_cell)]) if min_cell > 1 else []


# -- the check ----------------------------------------------------------------------
class HtmlTables(HTMLParser):
    """Collects the tables (header + rows of cell text) and the visible text of a page.

    After ``feed(html)``, ``tables`` holds one list of rows (lists of cell text) per table,
    ``text`` the page's visible text pieces (scripts and styles left out) and ``counts`` the
    ``data-counts`` attributes of figures: (label, raw JSON text) pairs.

    Examples
    --------
    >>> p = HtmlTables(); p.feed("<table><tr><th>n</th></tr><tr><td>3</td></tr></table>"); p.tables
    [[['n'], ['3']]]
    >>> p = HtmlTables(); p.feed("<figure class='trends' data-counts='{&quot;cohorts&quot;: [40]}'></figure>")
    >>> p.counts
    [('figure 1 (trends)', '{"cohorts": [40]}')]
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self.counts: list[tuple[str, str]] = []
        self._stack: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._skip = 0
        self._figures = 0
        self._figure_class: str | None = None

    def handle_starttag(self, tag: str, attrs: list) -> None:
        values = dict(attrs)
        if tag == "figure":
            self._figures += 1
            self._figure_class = values.get("class")
        if values.get("data-counts") is not None:
            cls = values.get("class") or (self._figure_class if tag == "img" else None)
            name = f"figure {self._figures}" if tag in ("figure", "img") and self._figures else tag
            self.counts.append((f"{name} ({cls})" if cls else name, str(values["data-counts"])))
        if tag in ("script", "style"):
            self._skip += 1
        elif tag == "table":
            self._stack.append([])
        elif tag == "tr" and self._stack:
            self._stack[-1].append([])
        elif tag in ("td", "th") and self._stack:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in ("td", "th") and self._stack and self._cell is not None:
            if not self._stack[-1]:
                self._stack[-1].append([])
            self._stack[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "table" and self._stack:
            self.tables.append([r for r in self._stack.pop() if r])

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._cell is not None:
            self._cell.append(data)
        self.text.append(data)


def _is_path(source: str | Path) -> bool:
    return isinstance(source, Path) or (isinstance(source, str) and "<" not in source and len(source) < 4096)


def _html_parts(source: str | Path) -> tuple[str, list[str]]:
    """(label, html fragments) of a report file, an executed notebook, or a literal HTML string."""
    if _is_path(source):
        path = Path(source)
        if path.suffix == ".ipynb":
            nb = json.loads(path.read_text(encoding="utf-8"))
            parts = []
            for cell in nb.get("cells", []):
                if cell.get("cell_type") == "markdown":
                    parts.append("<p>" + "".join(cell.get("source", "")) + "</p>")
                for out in cell.get("outputs", []):
                    data = out.get("data", {})
                    if "text/html" in data:
                        parts.append("".join(data["text/html"]))
                    elif "text/plain" in data:
                        parts.append("<pre>" + "".join(data["text/plain"]) + "</pre>")
                    elif "text" in out:
                        parts.append("<pre>" + "".join(out["text"]) + "</pre>")
            return str(path), parts
        return str(path), [path.read_text(encoding="utf-8", errors="replace")]
    return "<html string>", [str(source)]


@cache
def _translated_count_headers() -> frozenset[str]:
    """The Danish, Swedish and Finnish words of the report's count headers (their English matches COUNT_HEADER or
    names people: "units", "programme units", "people"), so that a translated page is checked as an English one."""
    from evaluator.i18n import LANGUAGES, translations

    out: set[str] = set()
    for code in LANGUAGES:
        if code == "en":
            continue
        try:
            catalog = translations(code)._catalog  # GNUTranslations: msgid -> msgstr
        except FileNotFoundError:
            continue
        for msgid, msgstr in catalog.items():
            if not isinstance(msgid, str) or not msgid or not isinstance(msgstr, str):
                continue
            head = msgid.strip().lower()
            if COUNT_HEADER.match(head) or (len(head.split()) <= 3 and _PEOPLE_WORD.search(head)):
                out.add(msgstr.strip().lower())
    return frozenset(out)


_PEOPLE_WORD = re.compile(r"\b(units|people|persons|participants|employees|controls|treated)\b")


def _is_count_header(h: str) -> bool:
    return bool(COUNT_HEADER.match(h)) or h.strip().lower() in _translated_count_headers()


def _check_table(rows: list[list[str]], where: str, min_cell: int) -> Iterable[Finding]:
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    ids = [h for h in header if ID_HEADER.match(h)]
    if ids and len(body) >= 2:
        yield Finding(
            where, f"columns {header[:6]}", f"table has an identifier column {ids[0]!r}: individual-level rows"
        )
    for j, h in enumerate(header):
        if not _is_count_header(h):
            continue
        for i, row in enumerate(body):
            if j < len(row) and _small(row[j], min_cell):
                label = row[0] if row else ""
                yield Finding(where, f"{h} = {row[j]} (row {i + 1}: {label})", f"count below {min_cell}")


def _small_int(value: object, min_cell: int) -> bool:
    """An integer count (not a flag, not a share) in 1..min_cell-1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return float(value).is_integer() and 0 < value < min_cell


def _figure_counts(label: str, raw: str, where: str, min_cell: int) -> Iterable[Finding]:
    """Findings for one figure's ``data-counts``: every recorded count in 1..min_cell-1."""
    try:
        data = json.loads(raw)
    except ValueError:
        yield Finding(f"{where}, {label}", raw[:80], "the counts behind a figure cannot be read")
        return
    groups = data.items() if isinstance(data, dict) else [("counts", data)]
    for what, values in groups:
        seq = values if isinstance(values, list) else [values]
        small = [(i, v) for i, v in enumerate(seq) if _small_int(v, min_cell)]
        if small:
            shown = ", ".join(f"{v} (item {i + 1} of {len(seq)})" for i, v in small[:5])
            more = f" and {len(small) - 5} more" if len(small) > 5 else ""
            yield Finding(f"{where}, {label}", f"{what}: {shown}{more}", f"count below {min_cell} behind a figure")


def _text_findings(text: str, where: str, min_cell: int) -> Iterable[Finding]:
    """Counts below ``min_cell`` in visible text: ``n = 3``, ``3 units``, and groups resting on a few units."""
    seen: set[tuple[int, int]] = set()
    for pattern in COUNT_TEXT:
        for m in pattern.finditer(text):
            if _small(m.group(1), min_cell):
                seen.add(m.span())
                lo, hi = max(0, m.start() - 40), min(len(text), m.end() + 20)
                yield Finding(where, text[lo:hi], f"count below {min_cell} in the text")
    for pattern in FEW_UNITS_TEXT:
        for m in pattern.finditer(text):
            n = _number(m.group("n"))
            overlaps = any(a < m.end() and m.start() < b for a, b in seen)
            if n is None or not 0 < n < min_cell or overlaps:
                continue
            seen.add(m.span())
            lo, hi = max(0, m.start() - 40), min(len(text), m.end() + 20)
            yield Finding(where, text[lo:hi], f"a group resting on fewer than {min_cell} units in the text")


def _json_path(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    k = str(key)
    return f"{path}.{k}" if re.fullmatch(r"[A-Za-z_]\w*", k) else f"{path}[{json.dumps(k)}]"


def json_findings(data: object, *, min_cell: int = MIN_CELL, where: str = "results.json") -> list[Finding]:
    """Counts below ``min_cell`` in a JSON sidecar: count-like keys (:data:`JSON_COUNT_KEY`) with a small integer.

    Every object of ``data`` is visited; a key that names a number of people (``n``,
    ``n_units``, ``units``, ``treated``, ``size``, ``count``, ``n_treated`` ..., but not
    ``n_periods``, ``n_boot`` or ``min_cell``) holding an integer, or a list of integers,
    in 1..min_cell-1 is a finding, reported with its JSON path.

    Parameters
    ----------
    data : object
        The parsed JSON.
    min_cell : int
        Smallest count that may be shown.
    where : str
        The file's name, for the findings.

    Returns
    -------
    list of Finding

    Examples
    --------
    >>> [f.text for f in json_findings({"cohorts": [{"cohort": 2005, "units": 1}, {"cohort": 2006, "units": 13}]})]
    ['$.cohorts[0].units = 1']
    >>> json_findings({"n_periods": 3, "n_units": 50, "min_cell": 5})
    []
    """
    out: list[Finding] = []
    if min_cell <= 1:
        return out

    def visit(node: object, path: str) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                p = _json_path(path, k)
                key = str(k).strip()
                if JSON_COUNT_KEY.match(key) and not _JSON_NOT_PEOPLE.match(key):
                    values = v if isinstance(v, list) else [v]
                    for i, x in enumerate(values):
                        if _small_int(x, min_cell):
                            at = p if not isinstance(v, list) else f"{p}[{i}]"
                            out.append(Finding(where, f"{at} = {x}", f"count below {min_cell} in a sidecar"))
                visit(v, p)
        elif isinstance(node, list):
            for i, v in enumerate(node):
                visit(v, _json_path(path, i))

    visit(data, "$")
    return out


def _json_file(path: Path, min_cell: int, where: str) -> list[Finding]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return [Finding(where, str(exc)[:80], "the sidecar cannot be read")]
    return json_findings(data, min_cell=min_cell, where=where)


def _folder_files(folder: Path) -> list[Path]:
    """The rendered pages and JSON sidecars of a report folder or a batch folder, in name order.

    ``report.html`` (or ``report.ipynb`` where there is no HTML), ``index.html`` and the
    :data:`SIDECARS`, in the folder and its (non-hidden) subfolders.
    """
    names = {"report.html", "index.html", *SIDECARS}
    files = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not p.is_file():
            continue
        if p.name in names or (p.name == "report.ipynb" and not (p.parent / "report.html").is_file()):
            files.append(p)
    return files


def _check_page(parts: list[str], min_cell: int, prefix: str = "") -> list[Finding]:
    """Findings of one rendered page (its tables, text and figures)."""
    findings: list[Finding] = []
    for k, part in enumerate(parts):
        parser = HtmlTables()
        parser.feed(part)
        parser.close()
        where = prefix + (f"part {k + 1}" if len(parts) > 1 else "page")
        for t, rows in enumerate(parser.tables):
            if len(rows) >= 2:
                findings.extend(_check_table(rows, f"{where}, table {t + 1}", min_cell))
        for name, raw in parser.counts:
            findings.extend(_figure_counts(name, raw, where, min_cell))
        text = " ".join(" ".join(parser.text).split())
        findings.extend(_text_findings(text, where, min_cell))
    return findings


def disclosure_check(report: str | Path, *, min_cell: int = MIN_CELL) -> DisclosureReport:
    """Scan a rendered report, its figures and its sidecars for possible disclosures.

    Parameters
    ----------
    report : str or Path
        The report: an HTML file, an executed ``.ipynb``, an HTML string, a JSON sidecar
        (``results.json``, ``index.json``), or a report folder (or a batch folder), in which
        ``report.html`` (or ``report.ipynb``), ``index.html`` and the JSON sidecars are all
        read, in subfolders too.
    min_cell : int
        Smallest count that may be shown.

    Returns
    -------
    DisclosureReport
        ``.ok`` is True when nothing was found; ``.findings`` lists every problem found,
        in every file, and says where and why.

    Examples
    --------
    >>> disclosure_check("<p>The cohort of 2024 has n = 3 participants.</p>").findings[0].reason
    'count below 5 in the text'
    >>> disclosure_check("<p>1,204 units were matched.</p>").ok
    True
    >>> disclosure_check("<p>Cohorts [2006, 2010] have a single unit.</p>").findings[0].reason
    'a group resting on fewer than 5 units in the text'
    >>> disclosure_check("<figure data-counts='{&quot;points&quot;: [40, 2]}'></figure>").findings[0].text
    'points: 2 (item 2 of 2)'
    """
    if _is_path(report) and Path(report).is_dir():
        folder = Path(report)
        result = DisclosureReport(str(folder), min_cell)
        if min_cell <= 1:
            return result
        for path in _folder_files(folder):
            rel = path.relative_to(folder).as_posix()
            if path.suffix == ".json":
                result.findings.extend(_json_file(path, min_cell, rel))
            else:
                _, parts = _html_parts(path)
                result.findings.extend(_check_page(parts, min_cell, prefix=f"{rel}: "))
        return result
    if _is_path(report) and Path(report).suffix == ".json":
        path = Path(report)
        result = DisclosureReport(str(path), min_cell)
        if min_cell > 1:
            result.findings.extend(_json_file(path, min_cell, path.name))
        return result
    label, parts = _html_parts(report)
    result = DisclosureReport(label, min_cell)
    if min_cell <= 1:
        return result
    result.findings.extend(_check_page(parts, min_cell))
    return result


# -- masking counts in sentences -----------------------------------------------------
_SMALL_COUNT = re.compile(
    r"\b(\d+)(?=\s+(?:of|out of|treated|units?|people|persons|participants|employees|prisoners|controls?|"
    r"comparisons?|observations|rows)\b)",
    re.I,
)


def mask_small(text: str, min_cell: int = MIN_CELL) -> str:
    """``text`` with counts of people below ``min_cell`` ("3 units", "3 of 500") written as ``"<5"``.

    Examples
    --------
    >>> mask_small("3 units (40 rows) dropped; 12 of 500 treated", 5)
    '<5 units (40 rows) dropped; 12 of 500 treated'
    """
    if min_cell <= 1:
        return text
    return _SMALL_COUNT.sub(lambda m: f"<{min_cell}" if 0 < int(m.group(1)) < min_cell else m.group(1), text)


def mask_notes(notes: Sequence[str], min_cell: int = MIN_CELL) -> list[str]:
    """Each note with its small counts masked (:func:`mask_small`)."""
    return [mask_small(n, min_cell) for n in notes]
