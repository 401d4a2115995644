"""Re-run a report from its manifest and compare every number."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluator.errors import ParameterError
from evaluator.files import sha256_file
from evaluator.runner.run import run_report

__all__ = ["Reproduction", "reproduce"]


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
    from evaluator.reporting.disclosure import HtmlTables

    parser = HtmlTables()
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
