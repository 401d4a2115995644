"""Statistical disclosure control: no report shows a count below ``min_cell`` or an individual's row.

Evaluations run on register microdata about vulnerable people. The rule used by
the Nordic statistics offices for tables from such data is that no cell may rest on
fewer than (typically) 5 people. This module does two things:

* **Suppress** before display: :func:`suppress_counts` replaces counts below the
  threshold (and the statistics computed from them) by ``"<5"`` and says so in a
  footnote; :func:`small_groups` names the groups too small to show on their own.
* **Check** after rendering: :func:`disclosure_check` scans a rendered report (HTML
  or executed notebook) for counts below the threshold in tables and text, and for
  tables that look like individual-level rows; ``evaluator disclosure-check PATH``
  exits non-zero when it finds any. The batch runner runs it on every report.

The check is a safety net with rules a reader can predict, not a proof: it reads
tables whose column names say they hold counts (``n``, ``units``, ``treated`` ...),
phrases such as ``n = 3`` or ``3 units``, and tables with an identifier column.

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
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd

from evaluator.policy import MIN_CELL

__all__ = [
    "MIN_CELL",
    "Finding",
    "DisclosureReport",
    "HtmlTables",
    "Suppressed",
    "disclosure_check",
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
]
# Identifier columns: a table with one of these and several rows is individual-level data.
ID_HEADER = re.compile(r"^(id|\w+_id|unit|unit_id|person|personnummer|cpr|ssn|employee|prisoner|citizen)$", re.I)


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


def _small(value: object, min_cell: int) -> bool:
    try:
        v = float(str(value).replace(",", "").replace("\u202f", "").strip())
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
    note = (
        f"{n} row(s) rest on fewer than {min_cell} people: their counts are shown as <{min_cell} and their "
        "statistics are suppressed (statistical disclosure control)."
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

    After ``feed(html)``, ``tables`` holds one list of rows (lists of cell text) per table and
    ``text`` the page's visible text pieces (scripts and styles left out).

    Examples
    --------
    >>> p = HtmlTables(); p.feed("<table><tr><th>n</th></tr><tr><td>3</td></tr></table>"); p.tables
    [[['n'], ['3']]]
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self.text: list[str] = []
        self._stack: list[list[list[str]]] = []
        self._cell: list[str] | None = None
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list) -> None:
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


def _html_parts(source: str | Path) -> tuple[str, list[str]]:
    """(label, html fragments) of a report file, an executed notebook, or a literal HTML string."""
    if isinstance(source, Path) or (isinstance(source, str) and "<" not in source and len(source) < 4096):
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


def _check_table(rows: list[list[str]], where: str, min_cell: int) -> Iterable[Finding]:
    header = [h.strip() for h in rows[0]]
    body = rows[1:]
    ids = [h for h in header if ID_HEADER.match(h)]
    if ids and len(body) >= 2:
        yield Finding(
            where, f"columns {header[:6]}", f"table has an identifier column {ids[0]!r}: individual-level rows"
        )
    for j, h in enumerate(header):
        if not COUNT_HEADER.match(h):
            continue
        for i, row in enumerate(body):
            if j < len(row) and _small(row[j], min_cell):
                label = row[0] if row else ""
                yield Finding(where, f"{h} = {row[j]} (row {i + 1}: {label})", f"count below {min_cell}")


def disclosure_check(report: str | Path, *, min_cell: int = MIN_CELL) -> DisclosureReport:
    """Scan a rendered report (HTML file, executed ``.ipynb`` or an HTML string) for possible disclosures.

    Parameters
    ----------
    report : str or Path
        The report.
    min_cell : int
        Smallest count that may be shown.

    Returns
    -------
    DisclosureReport
        ``.ok`` is True when nothing was found; ``.findings`` says where and why.

    Examples
    --------
    >>> disclosure_check("<p>The cohort of 2024 has n = 3 participants.</p>").findings[0].reason
    'count below 5 in the text'
    >>> disclosure_check("<p>1,204 units were matched.</p>").ok
    True
    """
    label, parts = _html_parts(report)
    result = DisclosureReport(label, min_cell)
    if min_cell <= 1:
        return result
    for k, part in enumerate(parts):
        parser = HtmlTables()
        parser.feed(part)
        parser.close()
        where = f"part {k + 1}" if len(parts) > 1 else "page"
        for t, rows in enumerate(parser.tables):
            if len(rows) >= 2:
                result.findings.extend(_check_table(rows, f"{where}, table {t + 1}", min_cell))
        text = " ".join(" ".join(parser.text).split())
        for pattern in COUNT_TEXT:
            for m in pattern.finditer(text):
                if _small(m.group(1), min_cell):
                    lo, hi = max(0, m.start() - 40), min(len(text), m.end() + 20)
                    result.findings.append(Finding(where, text[lo:hi], f"count below {min_cell} in the text"))
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
