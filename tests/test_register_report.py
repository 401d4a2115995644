"""The DiD report on register data (issue 13): weights, repeated cross-sections and unbalanced panels."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from evaluator import reporting, staggered_did
from evaluator.data.simulate import sick_leave_sib
from evaluator.errors import ParameterError
from evaluator.reporting.settings import ROW_ID

COLS = {"unit": "employee", "time": "month", "outcome": "sick_days", "cohort": "first_treated"}
SMALL = {"n_municipalities": 8, "employees_per_municipality": 20, "n_periods": 16, "waves": (6, 10)}


def _settings(path: Path, **extra):
    return reporting.did_settings(
        data_path=str(path),
        **{**COLS, **{k: extra.pop(k) for k in list(extra) if k in COLS}},
        cluster="municipality",
        title="t",
        outcome_label="days",
        inference="analytic",
        **extra,
    )


@pytest.fixture(scope="module")
def attrition_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("register") / "attrition.csv"
    sick_leave_sib(**SMALL, seed=5, attrition=0.04, attrition_outcome=0.5).data.to_csv(path, index=False)
    return path


def test_weights_reach_the_estimator(tmp_path):
    data = sick_leave_sib(**SMALL, seed=2).data
    data = data.assign(w=1 + (data["employee"] % 3) / 2)
    path = tmp_path / "weighted.csv"
    data.to_csv(path, index=False)
    s = _settings(path, weights="w")
    fit = reporting.fit_did(reporting.load_did(s), s)
    direct = staggered_did(data, **COLS, cluster="municipality", weights="w", n_boot=0)
    assert fit.result.estimate == pytest.approx(direct.estimate, rel=1e-12)
    assert fit.result.se == pytest.approx(direct.se, rel=1e-12)


def test_an_unbalanced_panel_is_kept_and_its_attrition_shown(attrition_csv):
    s = _settings(attrition_csv, allow_unbalanced_panel=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit = reporting.fit_did(reporting.load_did(s), s)
        dropped = _settings(attrition_csv)
        fit_dropped = reporting.fit_did(reporting.load_did(dropped), dropped)
    assert fit.result.estimate != pytest.approx(fit_dropped.result.estimate)  # every observation vs the sub-panel
    html = reporting.data_summary_did(fit)
    assert "Not every unit is observed in every period" in html and "attrition" in html
    assert "every period" in html and "fewer than half" in html


def test_repeated_cross_sections_without_a_person_id(tmp_path):
    data = sick_leave_sib(**SMALL, seed=3).data.groupby("employee").sample(n=3, random_state=1)
    path = tmp_path / "survey.csv"
    data.drop(columns=["employee"]).to_csv(path, index=False)
    s = _settings(path, panel=False, unit="")
    assert s.unit == ROW_ID and s.panel is False
    fit = reporting.fit_did(reporting.load_did(s), s)
    direct = staggered_did(
        data.drop(columns=["employee"]),
        time="month",
        outcome="sick_days",
        cohort="first_treated",
        cluster="municipality",
        panel=False,
    )
    assert fit.result.estimate == pytest.approx(direct.estimate, rel=1e-12)
    assert fit.n_units == len(data)
    assert "Observations (people-periods)" in reporting.data_summary_did(fit)


def test_twfe_needs_a_panel():
    with pytest.raises(ParameterError, match=r"estimator='twfe' needs a panel of units"):
        reporting.did_settings(data_path="x.csv", **COLS, estimator="twfe", panel=False)
    with pytest.raises(ParameterError, match=r"allow_unbalanced_panel=True\) are for estimator='callaway_santanna'"):
        reporting.did_settings(data_path="x.csv", **COLS, estimator="twfe", allow_unbalanced_panel=True)
    with pytest.raises(ParameterError, match=r"panel='no': expected True or False"):
        reporting.did_settings(data_path="x.csv", **COLS, panel="no")
