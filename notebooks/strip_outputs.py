"""Keep only the outputs nbval checks: those of cells starting with ``# NBVAL_CHECK_OUTPUT``.

The report notebooks are committed small and diff-friendly: every other cell's
outputs, execution counts and run metadata are removed. With ``--execute`` the
notebooks are first run (with their default parameters, in a temporary folder so
nothing is written beside them), which refreshes the stored outputs that
``pytest --nbval-lax notebooks/`` compares.

Usage::

    python notebooks/strip_outputs.py --execute notebooks/did_evaluation.ipynb notebooks/matched_evaluation.ipynb
    python notebooks/strip_outputs.py notebooks/*.ipynb     # strip only
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nbformat

MARK = "# NBVAL_CHECK_OUTPUT"


def is_checked(cell: nbformat.NotebookNode) -> bool:
    """Whether nbval compares this cell's output (its first line is the marker)."""
    return cell.cell_type == "code" and cell.source.lstrip().startswith(MARK)


def strip(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove outputs and execution counts (except checked cells'), and execution metadata, in place."""
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if cell.cell_type != "code":
            continue
        if not is_checked(cell):  # nbval skips checked cells without an execution count, so those keep theirs
            cell.execution_count = None
            cell.outputs = []
    nb.metadata.pop("papermill", None)
    nb.metadata.pop("widgets", None)
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb: nbformat.NotebookNode, timeout: int = 600) -> nbformat.NotebookNode:
    """Run the notebook with its defaults in a temporary working folder."""
    from nbclient import NotebookClient

    with tempfile.TemporaryDirectory() as tmp:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": tmp}}).execute()
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--execute", action="store_true", help="run each notebook first to refresh checked outputs")
    args = parser.parse_args(argv)
    for path in args.notebooks:
        nb = nbformat.read(path, as_version=4)
        if args.execute:
            nb = execute(nb)
        nbformat.write(strip(nb), path)
        print(f"{path}: kept outputs of {sum(is_checked(c) for c in nb.cells)} checked cell(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
