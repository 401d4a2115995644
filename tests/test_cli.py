"""The command line: simulate, validate, demo."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from evaluator import cli


def test_simulate_writes_valid_parquet_and_truth(tmp_path, capsys):
    out = tmp_path / "sick.parquet"
    assert cli.main(["simulate", "sick_leave_sib", "--seed", "1", "--out", str(out)]) == 0
    frame = pd.read_parquet(out)
    assert len(frame) == 48_000
    truth = json.loads((tmp_path / "sick.truth.json").read_text())
    assert truth["columns"]["unit"] == "employee" and truth["truth"]["simple"] < 0
    columns = [f"{k}={v}" for k, v in truth["columns"].items() if isinstance(v, str)]
    assert cli.main(["validate", str(out), "--schema", "panel", "--columns", *columns]) == 0
    assert "valid panel data" in capsys.readouterr().out


def test_simulate_csv_with_parameters(tmp_path):
    out = tmp_path / "emp.csv"
    assert cli.main(["simulate", "employment_sib", "--seed", "2", "--out", str(out), "--set", "n_pool=500"]) == 0
    assert len(pd.read_csv(out)) == 800


def test_validate_reports_data_error_without_traceback(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("unit,time,outcome,cohort\n1,1,x,0\n1,1,2,0\n")
    assert cli.main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert "DataError" in err and "duplicate unit-period rows" in err and "Traceback" not in err


def test_console_script_runs():
    done = subprocess.run([sys.executable, "-m", "evaluator", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    for command in ("simulate", "validate", "report", "batch", "demo"):
        assert command in done.stdout


@pytest.mark.slow
def test_demo_renders_every_run_of_the_demo_batch(tmp_path):
    """The README's first command: the demo batch (at least 6 runs) into reports/ with an index."""
    done = subprocess.run(
        [sys.executable, "-m", "evaluator", "demo", "--out", str(tmp_path / "r"), "--no-progress"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads((tmp_path / "r" / "index.json").read_text())
    rows = rows["runs"] if isinstance(rows, dict) else rows
    assert len(rows) >= 6
    for name in (r["name"] for r in rows):
        folder = tmp_path / "r" / name
        assert json.loads((folder / "manifest.json").read_text())["status"] == "ok", name
        assert (folder / "report.html").stat().st_size > 10_000
    page = (tmp_path / "r" / "index.html").read_text()
    assert all(f"{r['name']}/report.html" in page for r in rows)
