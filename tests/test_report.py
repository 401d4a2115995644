"""The single-run report runner: parameters checked before execution, atomic folders, manifest, errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from evaluator import runner as report
from evaluator.errors import ParameterError
from evaluator.files import sha256_file
from evaluator.runner.run import RunFailed

PARAMS = """x = 1  # a whole number; 0 makes the run fail
scale = 2.5  # a number
label = "demo"  # a title
flag = False  # a switch
items = ["a", "b"]  # a list
data_path = ""  # a CSV file; empty for none
caliper = None  # optional number
"""

# nobs=100 without data: results.json is checked for small counts too (issue 12), and a toy of 1 would be one
BODY = """
import json, evaluator, pandas as pd
n = len(pd.read_csv(data_path)) if data_path else 0
if x == 0:
    raise ValueError("x must not be 0")
r = evaluator.Result("Toy", evaluator.tidy_table(["att"], [x * scale], [0.5]), nobs=n or 100, outcome="y")
evaluator.reporting.save_results(r, title=label, design="difference-in-differences", outcome_label="days")
print("estimate", r.estimate, "rows", n, "flag", flag, "items", items, "caliper", caliper)
print(label)
"""


@pytest.fixture()
def toy(tmp_path) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# Toy report"),
        nbformat.v4.new_code_cell(PARAMS, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(BODY),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "toy.ipynb"
    nbformat.write(nb, path)
    return path


def test_parameters_are_read_with_types_and_comments(toy):
    p = report.notebook_parameters(toy)
    assert list(p) == ["x", "scale", "label", "flag", "items", "data_path", "caliper"]
    assert p["x"].default == 1 and p["x"].kind == "int" and p["x"].comment.startswith("a whole number")
    assert p["items"].kind == "list" and p["caliper"].kind == "any"


def test_values_are_coerced_to_the_defaults_type(toy):
    got = report.check_parameters(
        toy, {"x": "3", "scale": "1e-1", "label": 7, "flag": "yes", "items": "c, d", "caliper": "0.2"}
    )
    assert got == {"x": 3, "scale": 0.1, "label": "7", "flag": True, "items": ["c", "d"], "caliper": 0.2}
    assert report.check_parameters(toy, {"items": '["e"]'}) == {"items": ["e"]}


def test_unknown_and_mistyped_parameters_are_all_refused_at_once(toy):
    with pytest.raises(ParameterError) as info:
        report.check_parameters(toy, {"scael": 1, "x": "three", "flag": "maybe", "data_path": "missing.csv"})
    msg = str(info.value)
    assert "unknown parameter 'scael'" in msg and "did you mean 'scale'" in msg
    assert "known: x, scale, label, flag, items, data_path, caliper" in msg
    assert "x='three': expected a whole number" in msg
    assert "flag='maybe': expected true or false" in msg
    assert "data_path='missing.csv': file not found" in msg


def test_a_parameters_cell_with_code_is_refused(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import os\nx = os.getcwd()", metadata={"tags": ["parameters"]})]
    nbformat.write(nb, tmp_path / "bad.ipynb")
    with pytest.raises(ParameterError, match="only `name = literal`"):
        report.notebook_parameters(tmp_path / "bad.ipynb")
    nb.cells = [nbformat.v4.new_code_cell("x = 1")]
    nbformat.write(nb, tmp_path / "none.ipynb")
    with pytest.raises(ParameterError, match="no cell tagged 'parameters'"):
        report.notebook_parameters(tmp_path / "none.ipynb")


def test_fingerprint_follows_content_not_location(toy, tmp_path):
    a = tmp_path / "a.csv"
    pd.DataFrame({"y": [1, 2]}).to_csv(a, index=False)
    f1 = report.fingerprint(toy, {"x": 2}, data=a)
    b = tmp_path / "sub" / "b.csv"
    b.parent.mkdir()
    a.rename(b)
    assert report.fingerprint(toy, {"x": "2"}, data=b) == f1  # moved, and "2" coerces to 2
    b.write_text("y\n1\n3\n")
    assert report.fingerprint(toy, {"x": 2}, data=b) != f1
    assert report.fingerprint(toy, {"x": 3}) != report.fingerprint(toy, {"x": 2})


def test_a_run_writes_report_results_and_manifest(toy, tmp_path):
    data = tmp_path / "d.csv"
    pd.DataFrame({"y": range(7)}).to_csv(data, index=False)
    out = tmp_path / "reports" / "toy"
    rec = report.run_report(toy, out=out, parameters={"x": "4", "flag": "true"}, data=data, progress=False)
    assert rec.status == "ok"
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "report.html", "report.ipynb", "results.json"]
    assert [p.name for p in out.parent.iterdir()] == ["toy"]  # no temporary folders left behind
    res = json.loads((out / "results.json").read_text())
    assert res["estimate"] == 10.0 and res["title"] == "demo" and res["outcome_label"] == "days"
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "ok" and man["error"] is None
    assert man["parameters"]["x"] == 4 and man["parameters"]["flag"] is True and man["parameters"]["scale"] == 2.5
    assert man["inputs"]["data_path"]["sha256"] == sha256_file(data)
    assert {"python", "evaluator", "pandas", "papermill", "nbconvert"} <= set(man["versions"])
    assert man["fingerprint"] == report.fingerprint(toy, {"x": 4, "flag": True}, data=data)
    assert man["duration_s"] > 0 and man["started"] <= man["ended"]
    page = (out / "report.html").read_text()
    assert "estimate 10.0 rows 7 flag True" in page
    assert "save_results" not in page and "import json" not in page  # code is hidden
    assert '<script src="http' not in page and "cdnjs" not in page  # works offline


def test_a_failing_run_keeps_its_notebook_and_says_where(toy, tmp_path):
    out = tmp_path / "r"
    with pytest.raises(RunFailed) as info:
        report.run_report(toy, out=out, parameters={"x": 0}, progress=False)
    err = info.value
    # cell 3: papermill's injected-parameters cell comes before the failing one
    assert err.cell_index == 3 and err.ename == "ValueError" and "x must not be 0" in err.evalue
    assert err.notebook == out / "report.ipynb" and err.notebook.is_file()
    assert "report.ipynb" in str(err)
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "failed" and man["error"]["ename"] == "ValueError"
    assert not (out / "report.html").exists() and not (out / "results.json").exists()


def test_a_rerun_replaces_the_folder_whole(toy, tmp_path):
    out = tmp_path / "r"
    report.run_report(toy, out=out, parameters={"x": 1}, progress=False)
    (out / "stale.txt").write_text("from the old run")
    with pytest.raises(RunFailed):
        report.run_report(toy, out=out, parameters={"x": 0}, progress=False)
    assert not (out / "stale.txt").exists() and not (out / "report.html").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_an_unwritable_output_folder_is_refused_before_running(toy, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(ParameterError, match="not writable"):
            report.run_report(toy, out=locked / "r", progress=False)
    finally:
        locked.chmod(stat.S_IRWXU)


def test_an_output_path_under_a_file_is_refused(toy, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(ParameterError, match="not writable"):
        report.run_report(toy, out=blocker / "r", progress=False)


def test_cli_exit_codes(toy, tmp_path, capsys):
    from evaluator.cli import main

    assert main(["report", str(toy), "--out", str(tmp_path / "ok"), "-p", "x", "2", "--no-progress"]) == 0
    assert "report written" in capsys.readouterr().out
    assert main(["report", str(toy), "--out", str(tmp_path / "bad"), "-p", "y", "2", "--no-progress"]) == 2
    assert "unknown parameter 'y'" in capsys.readouterr().err
    assert main(["report", str(toy), "--out", str(tmp_path / "fail"), "-p", "x", "0", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "cell 3" in err and "ValueError" in err and "x must not be 0" in err
    assert main(["report", str(toy), "--out", str(tmp_path / "nodata"), "--data", "nope.csv", "--no-progress"]) == 2


def test_a_warning_during_the_parameter_check_is_issued_once_and_the_check_returns(monkeypatch, tmp_path):
    # Issued again inside the recording block, each warning appended itself to the list being walked: a
    # ResourceWarning from a file collected during the check grew a CI worker to 8 GB. Without the fix this
    # test does not end (the watchdog stops it at its memory limit).
    import warnings

    from evaluator.runner import run

    def check(notebook, given):
        warnings.warn("a parameter looks odd", UserWarning, stacklevel=1)
        warnings.warn("the old spelling", DeprecationWarning, stacklevel=1)
        warnings.warn("unclosed file <_io.BufferedReader name='/home/someone/data.csv'>", ResourceWarning, stacklevel=1)
        return dict(given)

    monkeypatch.setattr(run, "check_parameters", check)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        warnings.simplefilter("ignore", ResourceWarning)  # as Python's own filters have it
        assert run._checked_with_notes(tmp_path / "nb.ipynb", {"x": 1}) == {"x": 1}
    assert [(w.category, str(w.message)) for w in seen] == [(UserWarning, "a parameter looks odd")]


def test_report_notes_leave_out_resource_warnings():
    import warnings

    from evaluator.reporting.pipeline import collect_warnings

    notes: list[str] = []
    with collect_warnings(notes):
        warnings.warn("unclosed file <_io.BufferedReader name='/home/someone/data.csv'>", ResourceWarning, stacklevel=1)
        warnings.warn("few clusters", UserWarning, stacklevel=1)
    assert notes == ["UserWarning: few clusters"]


def test_a_report_that_shows_a_small_count_is_flagged_not_published_as_ok(toy, tmp_path):
    out = tmp_path / "r"
    with pytest.raises(RunFailed, match="disclosure check") as info:
        report.run_report(toy, out=out, parameters={"label": "a cohort of n = 2 people"}, progress=False)
    assert info.value.ename == "DisclosureCheck"
    man = json.loads((out / "manifest.json").read_text())
    assert man["status"] == "flagged" and man["disclosure"]["ok"] is False
    assert any("count below 5" in f for f in man["disclosure"]["findings"])
    assert (out / "report.html").is_file()  # kept for inspection
    ok = report.run_report(toy, out=tmp_path / "fine", parameters={"label": "120 people"}, progress=False)
    assert ok.manifest["disclosure"] == {"min_cell": 5, "ok": True, "findings": []}


def test_a_successful_run_prints_no_kernel_log_lines(toy, tmp_path, capfd):
    data = tmp_path / "d.csv"
    pd.DataFrame({"y": range(7)}).to_csv(data, index=False)
    rec = report.run_report(toy, out=tmp_path / "quiet", parameters={"x": "4"}, data=data, progress=False)
    assert rec.status == "ok"
    out, err = capfd.readouterr()
    assert "[IPKernelApp]" not in out + err, err
