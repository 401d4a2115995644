"""The report notebooks: their parameters cells, a run with non-default parameters, and nbval.

nbval runs in a subprocess because ``notebooks/`` is not among pytest's testpaths.
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
NAMES = ("did_evaluation", "matched_evaluation", "synthetic_evaluation")
MARK = "# NBVAL_CHECK_OUTPUT"
EXPECTED = {
    "did_evaluation": {
        "title", "data_path", "unit", "time", "outcome", "cohort", "cluster", "covariates", "outcome_label",
        "estimator", "control_group", "method", "inference", "n_boot", "alpha", "seed", "contract_path", "min_cell",
        "weights", "panel", "allow_unbalanced_panel",  # register data (issue 13)
        "language", "evaluated_by", "exchange_rate",  # the reader's language and the first page (issue 14)
        "out_of_core",  # register data too large for memory (issue 16)
    },
    "matched_evaluation": {
        "title", "data_path", "unit", "treat", "outcome", "covariates", "exact", "distance", "ratio", "replace",
        "caliper", "inference", "adjust", "n_boot", "outcome_label", "alpha", "seed", "contract_path", "min_cell",
        "cohort", "language", "evaluated_by", "exchange_rate",
    },
    "synthetic_evaluation": {  # one treated municipality (issue 15)
        "title", "data_path", "unit", "time", "outcome", "treated", "outcome_label", "method", "n_reps", "alpha",
        "seed", "contract_path", "min_cell", "language", "evaluated_by", "exchange_rate",
    },
}  # fmt: skip
NON_DEFAULT = {
    "did_evaluation": {"estimator": "twfe", "inference": "wild", "control_group": "notyet", "n_boot": 199},
    "matched_evaluation": {"distance": "mahalanobis", "inference": "abadie_imbens", "replace": True},
    "synthetic_evaluation": {"method": "sc", "n_reps": 100, "seed": 7},
}


def read(name: str) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell must be tagged 'parameters'"
    assert not any("parameters" in c.metadata.get("tags", []) for c in code[1:])
    return code[0]


@pytest.mark.parametrize("name", NAMES)
def test_parameters_cell_holds_commented_literal_assignments(name):
    source = parameters_cell(read(name)).source
    lines = source.splitlines()
    tree = ast.parse(source)
    names = []
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
        assert node.lineno == node.end_lineno, f"{node.targets[0].id}: one assignment per line"
        ast.literal_eval(node.value)  # raises unless a literal
        line = lines[node.lineno - 1]
        assert "  # " in line and line.split("  # ", 1)[1].strip(), f"line {node.lineno} has no comment: {line}"
        names.append(node.targets[0].id)
    assert len(tree.body) == len([ln for ln in lines if ln.strip()]), "only assignments in the parameters cell"
    assert set(names) == EXPECTED[name] and len(names) == len(set(names))


@pytest.mark.parametrize("name", NAMES)
def test_runner_reads_the_parameters(name):
    from evaluator.runner.parameters import notebook_parameters

    params = notebook_parameters(NOTEBOOKS / f"{name}.ipynb")
    assert set(params) == EXPECTED[name] and all(p.comment for p in params.values())
    assert params["data_path"].default.startswith("bundled:")
    assert params["contract_path"].default == "" and params["min_cell"].default == 5


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_keep_only_the_checked_outputs(name):
    nb = read(name)
    checked = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(MARK)]
    assert checked, "a cell must print the headline numbers for nbval"
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.source.startswith(MARK):
            text = "".join(o.get("text", "") for o in cell.outputs)
            assert text.startswith("Headline numbers: estimate "), f"no stored output in {cell.source!r}"
            assert cell.execution_count is not None  # nbval skips cells it thinks were never run
        else:
            assert cell.outputs == [] and cell.execution_count is None, f"stored output in {cell.source[:40]!r}"


def test_strip_outputs_leaves_committed_notebooks_unchanged():
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import strip_outputs
    finally:
        sys.path.remove(str(NOTEBOOKS))
    for name in NAMES:
        nb = read(name)
        before = nbformat.writes(nb)
        assert nbformat.writes(strip_outputs.strip(nb)) == before


@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs_with_non_default_parameters(name, tmp_path):
    papermill = pytest.importorskip("papermill")
    out = tmp_path / f"{name}.ipynb"
    papermill.execute_notebook(
        str(NOTEBOOKS / f"{name}.ipynb"),
        str(out),
        parameters=NON_DEFAULT[name],
        cwd=str(tmp_path),
        progress_bar=False,
        kernel_name="python3",
    )
    record = json.loads((tmp_path / "results.json").read_text())
    for key in ("estimate", "se", "pvalue"):
        assert math.isfinite(record[key]), key
    assert all(math.isfinite(v) for v in record["ci"]) and record["ci"][0] < record["estimate"] < record["ci"][1]
    assert record["sms_level"] == 3
    if name == "synthetic_evaluation":  # one treated unit: its count is below min_cell and never written
        assert record["n_treated"] is None and record["n_units"] == record["extra"]["n_control"] + 1
        assert record["extra"]["parameters"]["method"] == "sc" and record["extra"]["robustness"]
    else:
        assert record["n_units"] > record["n_treated"] > 0
        assert record["extra"]["parameters"]["inference"] == NON_DEFAULT[name]["inference"]
        assert record["extra"]["mde"] > 0 and record["extra"]["robustness"]
    # setup and computation cells print nothing (no warnings spam): only displays and the checked line
    nb = nbformat.read(out, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            for o in cell.outputs:
                if o.output_type == "stream":
                    assert o.name == "stdout" and cell.source.startswith(MARK), f"unexpected output: {o.get('text')!r}"
    html = "".join(
        o["data"].get("text/html", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs if "data" in o
    )
    assert "class='headline-box'" in html
    marks = {"did_evaluation": "class='event-study'", "matched_evaluation": "balance-table"}
    assert marks.get(name, "synthetic-trajectories") in html


def test_nbval_checks_the_stored_headline_numbers():
    before = {p: p.exists() for p in (NOTEBOOKS / "results.json", REPO / "results.json")}
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "--nbval-lax", "notebooks/", "-p", "no:cacheprovider", "-q"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:  # the notebooks write results.json into their working folder
        for path, existed in before.items():
            if not existed and path.exists():
                path.unlink()
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
