"""Statistical disclosure control inside the rendered reports.

Fixture data are built to contain small cells (a cohort of 3 units, a municipality of
2, a category held by 3 people, a release cohort of 3): with the default ``min_cell=5``
the reports must pass :func:`evaluator.disclosure.disclosure_check`; rendered
deliberately with ``min_cell=0`` they must not.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evaluator.data.simulate import reoffending_sib, sick_leave_sib
from evaluator.reporting.disclosure import disclosure_check
from evaluator.runner.parameters import notebook_path
from evaluator.runner.run import run_report

REPO = Path(__file__).resolve().parents[1]
CONTRACTS = REPO / "notebooks" / "contracts"


@pytest.fixture(scope="module")
def small_panel(tmp_path_factory) -> Path:
    """A staggered panel with a cohort of 3 units and a municipality of 2 units."""
    sim = sick_leave_sib(n_municipalities=10, employees_per_municipality=30, n_periods=30, waves=(9, 17), seed=3)
    df = sim.data.copy()
    units = df.drop_duplicates("employee")
    late = units.loc[units["first_treated"] == 17, "employee"].to_numpy()[:3]
    df.loc[df["employee"].isin(late), "first_treated"] = 13  # a cohort of 3 units
    last = units["municipality"].max()
    movers = units.loc[units["municipality"] == last, "employee"].to_numpy()[2:]
    df.loc[df["employee"].isin(movers), "municipality"] = last - 1  # a municipality of 2 units
    per_cohort = df.drop_duplicates("employee").groupby("first_treated").size()
    per_muni = df.drop_duplicates("employee").groupby("municipality").size()
    assert per_cohort[13] == 3 and per_muni.min() == 2
    path = tmp_path_factory.mktemp("data") / "small_panel.parquet"
    df.to_parquet(path)
    return path


@pytest.fixture(scope="module")
def small_people(tmp_path_factory) -> Path:
    """Released prisoners with an offence held by 3 people and a release cohort of 3 participants."""
    sim = reoffending_sib(n_cohorts=2, cohort_size=80, n_pool=2_000, seed=2)
    df = sim.data.copy()
    rng = np.random.default_rng(0)
    treated = df.index[df["treated"] == 1]
    controls = df.index[df["treated"] == 0]
    df["offence"] = df["offence"].astype(object)
    df.loc[rng.choice(treated, 2, replace=False), "offence"] = "arson"
    df.loc[rng.choice(controls, 1, replace=False), "offence"] = "arson"
    df.loc[treated[:3], "cohort"] = 3  # a release cohort of 3 participants
    df.loc[controls[:40], "cohort"] = 3
    path = tmp_path_factory.mktemp("data") / "small_people.parquet"
    df.to_parquet(path)
    return path


def _did(path: Path, out: Path, **extra):
    # the data is not the notebook's own: its labels must be given (issue 12)
    params = {"data_path": str(path), "n_boot": 99, "title": "Small panel", "outcome_label": "days", **extra}
    return run_report(notebook_path("did_evaluation"), out=out, parameters=params, progress=False)


def _matched(path: Path, out: Path, **extra):
    params = {
        "data_path": str(path),
        "title": "Small cohorts",
        "unit": "prisoner_id",
        "treat": "treated",
        "outcome": "reconvictions_12m",
        "covariates": ["age", "sex", "prior_convictions", "sentence_months", "offence"],
        "outcome_label": "reconviction events per person within 12 months",
        "cohort": "cohort",
        "contract_path": str(CONTRACTS / "reoffending_peterborough.yaml"),
        **extra,
    }
    return run_report(notebook_path("matched_evaluation"), out=out, parameters=params, progress=False)


def test_did_report_with_small_cells_passes_the_check(small_panel, tmp_path):
    rec = _did(small_panel, tmp_path / "did")
    assert rec.status == "ok"
    html = (rec.out / "report.html").read_text(encoding="utf-8")
    report = disclosure_check(rec.out / "report.html")
    assert report.ok, str(report)
    assert "&lt;5" in html  # the cohort of 3 is shown as <5
    assert "statistical disclosure control" in html
    assert "ATT(13," not in html  # no group-time effects of the cohort of 3


def test_did_report_rendered_without_disclosure_control_is_flagged(small_panel, tmp_path):
    rec = _did(small_panel, tmp_path / "did0", min_cell=0)
    assert not disclosure_check(rec.out / "report.html").ok


def test_matched_report_with_small_cells_passes_the_check(small_people, tmp_path):
    rec = _matched(small_people, tmp_path / "matched")
    assert rec.status == "ok"
    html = (rec.out / "report.html").read_text(encoding="utf-8")
    report = disclosure_check(rec.out / "report.html")
    assert report.ok, str(report)
    assert "offence[arson]" in html and "statistical disclosure" in html
    assert "Cohort 3 (matched" not in html  # the release cohort of 3 has no estimate of its own


def test_matched_report_rendered_without_disclosure_control_is_flagged(small_people, tmp_path):
    rec = _matched(small_people, tmp_path / "matched0", min_cell=0)
    assert not disclosure_check(rec.out / "report.html").ok
