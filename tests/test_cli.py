"""The command line: simulate, validate, demo."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

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


def test_console_script_runs(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "evaluator.cli", "demo", "--out", str(tmp_path / "r"), "--data", str(tmp_path / "d")],
        capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "r" / "index.html").read_text()
    assert "sick_leave_sib" in page and "employment_sib" in page and "reoffending_sib" in page
