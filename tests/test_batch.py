"""Batches: the batch file's checks, parallel runs, skipping, timeouts and the index page.

The runs execute a tiny notebook written into tmp_path (a kernel start costs 1-2 s),
so the executed tests stay well under a minute.
"""

from __future__ import annotations

import argparse
import json
import os
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from evaluator import runner as report
from evaluator.runner import batch as bt

RUNNER = all(hasattr(report, f) for f in ("run_report", "check_parameters", "fingerprint"))
needs_runner = pytest.mark.skipif(not RUNNER, reason="runner not yet available")

PARAMETERS = """\
x = 1  # a number; 0 makes the notebook fail
title = "tiny"  # the report's title
sleep = 0.0  # seconds to sleep before the result
pid_file = ""  # where to write the kernel's process id, if anywhere
"""
BODY = """\
import json, os, time
if pid_file:
    with open(pid_file, "w") as fh:
        fh.write(str(os.getpid()))
time.sleep(sleep)
if x == 0:
    raise ValueError("x must not be zero")
record = {"title": title, "design": "test", "estimate": 1.5 * x, "ci": [x - 1, x + 2], "pvalue": 0.04,
          "outcome": "y", "outcome_label": "days off sick", "n_units": 10}
with open("results.json", "w") as fh:
    json.dump(record, fh)
print(record)
"""


def write_notebook(path: Path) -> Path:
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(BODY)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    write_notebook(tmp_path / "tiny.ipynb")
    return tmp_path


def write_batch(folder: Path, text: str, name: str = "batch.yaml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- the batch file ---------------------------------------------------------------------
def test_grid_expands_to_the_cartesian_product_with_formatted_names(folder):
    path = write_batch(
        folder,
        """
        defaults:
          notebook: tiny.ipynb
          timeout: 30
          parameters: {title: shared}
        runs:
          - name: single
            parameters: {x: 5}
            timeout: 12.5
        grid:
          - name: "g-{x}-{sleep}"
            vary: {x: [1, 2, 3], sleep: [0, 0.5]}
        """,
    )
    b = bt.load_batch(path)
    assert [r.name for r in b.runs] == ["single", "g-1-0", "g-1-0.5", "g-2-0", "g-2-0.5", "g-3-0", "g-3-0.5"]
    single, g = b.runs[0], b.runs[-1]
    assert single.parameters == {"title": "shared", "x": 5} and single.timeout == 12.5
    assert g.parameters == {"title": "shared", "x": 3, "sleep": 0.5} and g.timeout == 30
    assert g.notebook == (folder / "tiny.ipynb").resolve() and "grid[0]" in g.origin
    assert [r.name for r in b.select(["g-2-0", "single"]).runs] == ["single", "g-2-0"]


def test_data_sets_data_path_relative_to_the_batch_file(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('data_path = ""  # the data file')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    sub = tmp_path / "batches"
    sub.mkdir()
    nbformat.write(nb, sub / "nb.ipynb")
    (tmp_path / "data.csv").write_text("a\n1\n")
    path = write_batch(sub, "runs:\n  - {name: r, notebook: nb.ipynb, data: ../data.csv}\n")
    (run,) = bt.load_batch(path).runs
    assert run.parameters == {"data_path": str((tmp_path / "data.csv").resolve())}


def test_every_schema_problem_is_collected_in_one_error_naming_run_and_field(folder):
    path = write_batch(
        folder,
        """
        defaults:
          notebook: tiny.ipynb
          colour: blue
        runs:
          - name: no-notebook-file
            notebook: missing.ipynb
          - name: dup
          - name: dup
          - name: "bad/name"
          - name: bad-params
            parameters: [x, 1]
          - name: bad-timeout
            timeout: -3
          - notebook: tiny.ipynb
          - name: extra
            colour: red
        grid:
          - name: "empty-{x}"
            vary: {x: []}
          - name: "typo-{y}"
            vary: {x: [1, 2]}
          - name: "broken-{x"
            vary: {x: [1]}
        extras: 1
        """,
    )
    with pytest.raises(bt.BatchError) as info:
        bt.load_batch(path)
    msg = str(info.value)
    expected = [
        "unknown top-level key 'extras'",
        "defaults: unknown field 'colour'",
        "runs[0] 'no-notebook-file': field 'notebook': file not found",
        "duplicate run name 'dup'",
        "'bad/name' is not safe as a folder name",
        "runs[4] 'bad-params': field 'parameters': expected a mapping",
        "runs[5] 'bad-timeout': field 'timeout': expected a positive number",
        "runs[6]: field 'name': missing",
        "runs[7] 'extra': unknown field 'colour'",
        "grid[0] 'empty-{x}': field 'vary.x': expected a non-empty list",
        "grid[1] 'typo-{y}': field 'name': placeholder {y}",
        "grid[2] 'broken-{x': field 'name': bad format template",
    ]
    for fragment in expected:
        assert fragment in msg, fragment
    assert len(info.value.problems) == len(expected)
    assert msg.startswith(f"{len(expected)} problems found in {path}")


def test_grid_without_the_varied_key_in_its_name_gives_duplicates(folder):
    path = write_batch(folder, "grid:\n  - {name: same, notebook: tiny.ipynb, vary: {x: [1, 2]}}\n")
    with pytest.raises(bt.BatchError, match="duplicate run name 'same'.*put every varied key in the name"):
        bt.load_batch(path)


def test_missing_notebook_is_named(folder):
    path = write_batch(folder, "runs:\n  - name: a\n")
    with pytest.raises(bt.BatchError, match=r"runs\[0\] 'a': field 'notebook': missing"):
        bt.load_batch(path)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("runs:\n  - name: a\n   notebook: [x\n", r"YAML syntax error at line \d+, column \d+"),
        ("- name: a\n", "top level must be a mapping"),
        ("", "empty"),
        ("defaults: {notebook: tiny.ipynb}\n", "no runs"),
        ("runs: {name: a}\n", "runs: expected a list"),
    ],
)
def test_unusable_files(folder, text, match):
    with pytest.raises(bt.BatchError, match=match):
        bt.load_batch(write_batch(folder, text))


def test_missing_batch_file(tmp_path):
    with pytest.raises(bt.BatchError, match="batch file not found"):
        bt.load_batch(tmp_path / "nope.yaml")


def test_unknown_or_mistyped_parameter_is_refused_before_anything_runs(folder):
    path = write_batch(
        folder,
        """
        defaults: {notebook: tiny.ipynb}
        runs:
          - {name: good, parameters: {x: 2}}
          - {name: typo, parameters: {xx: 2}}
          - {name: wrong-type, parameters: {x: lots}}
        grid:
          - {name: "g-{sleep}", vary: {sleep: [0, soon]}}
        """,
    )
    with pytest.raises(bt.BatchError) as info:
        bt.load_batch(path)
    msg = str(info.value)
    assert "runs[1] 'typo': field 'parameters'" in msg and "unknown parameter 'xx'" in msg
    assert "runs[2] 'wrong-type': field 'parameters'" in msg and "expected a whole number" in msg
    assert "grid[0] 'g-soon': field 'parameters'" in msg and "expected a number" in msg
    assert "good" not in msg and len(info.value.problems) == 3
    assert not any(p.is_dir() and p.name != "__pycache__" for p in folder.iterdir())  # nothing ran


def test_cli_returns_2_on_a_bad_batch_file(folder, capsys):
    path = write_batch(folder, "runs:\n  - {name: a, notebook: tiny.ipynb, parameters: {nope: 1}}\n")
    args = argparse.Namespace(
        batch=str(path), out=str(folder / "reports"), jobs=1, force=False, timeout=None, no_progress=True
    )
    assert bt.cli_batch(args) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'nope'" in err and "Traceback" not in err
    assert not (folder / "reports").exists()


def test_parser_accepts_the_documented_options():
    parser = argparse.ArgumentParser()
    bt.add_batch_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["batch", "b.yaml", "--out", "r", "--jobs", "3", "--force", "--timeout", "9"])
    assert (args.batch, args.out, args.jobs, args.force, args.timeout, args.no_progress) == (
        "b.yaml",
        "r",
        3,
        True,
        9.0,
        False,
    )
    assert args.func is bt.cli_batch


# -- the index page ---------------------------------------------------------------------
def fake_run(out: Path, name: str, status: str, results: dict | None = None) -> None:
    folder = out / name
    folder.mkdir(parents=True)
    manifest = {"status": status, "started": "2026-11-23T10:00:00+00:00", "duration_s": 4.25}
    if status != "ok":
        manifest["error"] = {"cell_index": 1, "ename": "ValueError", "evalue": "<bad> & worse", "notebook": "x"}
        (folder / "report.ipynb").write_text("{}")
    else:
        (folder / "report.html").write_text("<html></html>")
    (folder / "manifest.json").write_text(json.dumps(manifest))
    if results:
        (folder / "results.json").write_text(json.dumps(results))


def test_index_lists_every_run_folder_escaped_with_relative_links(tmp_path):
    out = tmp_path / "reports"
    xss = "<script>alert(1)</script>"
    fake_run(
        out,
        "alpha",
        "ok",
        {"title": xss, "estimate": -2.345, "ci": [-3.1, -1.5], "pvalue": 0.0004, "outcome_label": "days <off>"},
    )
    fake_run(out, "beta", "failed")
    fake_run(out, "from-another-batch", "ok", {"title": "Other", "estimate": 0.5, "ci": [0.1, 0.9], "pvalue": 0.2})
    (out / "not-a-run").mkdir()  # no manifest: not listed
    (out / ".alpha.partial-1-abc").mkdir()  # a run in progress: not listed
    page = bt.write_index(out).read_text(encoding="utf-8")
    assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href="alpha/report.html"' in page and 'href="from-another-batch/report.html"' in page
    assert 'href="beta/report.ipynb"' in page and "ValueError: &lt;bad&gt; &amp; worse" in page
    # issue 12: three significant figures and "< 0.001" in the index, as in the reports
    assert "-2.35 [-3.1, -1.5]" in page and "days &lt;off&gt;" in page and "&lt; 0.001" in page
    assert "not-a-run" not in page and "partial" not in page
    assert "http" not in page.replace("http-equiv", "")  # self-contained: nothing fetched
    rows = json.loads((out / "index.json").read_text())["runs"]
    assert [r["name"] for r in rows] == ["alpha", "beta", "from-another-batch"]
    assert rows[0]["title"] == xss and rows[1]["status"] == "failed" and rows[0]["link"] == "alpha/report.html"
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


# -- running ---------------------------------------------------------------------------
def run_args(path: Path, out: Path, **kw) -> argparse.Namespace:
    base = {"batch": str(path), "out": str(out), "jobs": 2, "force": False, "timeout": None, "no_progress": True}
    return argparse.Namespace(**{**base, **kw})


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory):
    """A batch of three runs, the middle one failing, run once through the CLI function (2 jobs)."""
    folder = tmp_path_factory.mktemp("batch")
    write_notebook(folder / "tiny.ipynb")
    path = write_batch(
        folder,
        """
        defaults: {notebook: tiny.ipynb}
        runs:
          - {name: first, parameters: {x: 2, title: "<script>alert(1)</script>"}}
          - {name: broken, parameters: {x: 0}}
        grid:
          - {name: "third-{x}", vary: {x: [3]}}
        """,
    )
    out = folder / "reports"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = bt.cli_batch(run_args(path, out))
    return path, out, code, buf.getvalue()


@needs_runner
def test_parallel_batch_records_a_failure_and_finishes_the_others(three_runs):
    _path, out, code, printed = three_runs
    assert code == 1
    for name in ("first", "third-3"):
        assert (out / name / "report.html").is_file() and (out / name / "report.ipynb").is_file()
        manifest = json.loads((out / name / "manifest.json").read_text())
        assert manifest["status"] == "ok" and len(manifest["fingerprint"]) == 64
    assert json.loads((out / "third-3" / "results.json").read_text())["estimate"] == 4.5
    failed = json.loads((out / "broken" / "manifest.json").read_text())
    assert failed["status"] == "failed" and failed["error"]["ename"] == "ValueError"
    assert "broken" in printed and "failed" in printed and "x must not be zero" in printed
    assert "2 ok, 1 failed" in printed
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary folders left


@needs_runner
def test_index_after_a_batch_links_every_run(three_runs):
    _path, out, _code, _printed = three_runs
    page = (out / "index.html").read_text()
    for name in ("first", "third-3"):
        assert f'href="{name}/report.html"' in page
    assert 'href="broken/report.ipynb"' in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


@needs_runner
def test_rerun_skips_unchanged_runs_and_force_reruns(three_runs):
    path, out, _code, _printed = three_runs
    before = (out / "first" / "manifest.json").read_text()
    summary = bt.run_batch(bt.load_batch(path).select(["first", "third-3"]), out=out, progress=False)
    assert [(r.name, r.status) for r in summary.runs] == [("first", "skipped"), ("third-3", "skipped")]
    assert summary.exit_code == 0 and summary.seconds < 5  # nothing was executed
    assert (out / "first" / "manifest.json").read_text() == before  # untouched
    table = summary.table()
    assert list(table["status"]) == ["skipped", "skipped"]
    assert table.loc[table["name"] == "third-3", "estimate"].item() == 4.5

    # force re-runs an up-to-date run; a failed run is never skipped
    again = bt.run_batch(bt.load_batch(path).select(["first", "broken"]), out=out, jobs=2, force=True, progress=False)
    assert [(r.name, r.status) for r in again.runs] == [("first", "ok"), ("broken", "failed")]
    assert again.exit_code == 1 and "x must not be zero" in str(again)
    assert (out / "first" / "manifest.json").read_text() != before


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead, only not yet reaped
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True


@needs_runner
def test_a_run_over_its_timeout_is_killed_with_its_kernel_and_the_others_finish(folder):
    pid_file = folder / "kernel.pid"
    path = write_batch(
        folder,
        f"""
        defaults: {{notebook: tiny.ipynb}}
        runs:
          - {{name: quick}}
          - {{name: slow, timeout: 12, parameters: {{sleep: 120, pid_file: "{pid_file}"}}}}
        """,
    )
    t0 = time.perf_counter()
    summary = bt.run_batch(bt.load_batch(path), out=folder / "reports", jobs=2, progress=False)
    assert time.perf_counter() - t0 < 40
    status = {r.name: r.status for r in summary.runs}
    assert status == {"quick": "ok", "slow": "timeout"} and summary.exit_code == 1
    manifest = json.loads((folder / "reports" / "slow" / "manifest.json").read_text())
    assert manifest["status"] == "timeout" and "killed after 12 s" in manifest["error"]["evalue"]
    assert (folder / "reports" / "quick" / "report.html").is_file()
    assert pid_file.is_file(), "the slow run's kernel had not started within its timeout; machine overloaded?"
    kernel = int(pid_file.read_text())
    deadline = time.time() + 5
    while _alive(kernel) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(kernel), "the timed-out run's kernel survived"
    assert not [p for p in (folder / "reports").iterdir() if p.name.startswith(".")]
    # the next run does not skip a timed-out run
    assert "timeout" in (folder / "reports" / "index.html").read_text()
