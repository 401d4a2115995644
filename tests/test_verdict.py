"""One verdict (issue 12): what the page says about payment, decided in one place and shown the same everywhere.

Contracts with thresholds of different sizes move the same estimate through every status; the
design checks of a castle-like panel (single-state cohorts, a pre-trend test resting on them) and
of a matched comparison reach the headline box as caveats in plain words.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

import pandas as pd
import pytest

from evaluator import reporting
from evaluator.reporting.checks import Check, design_checks

CONTRACTS = Path(__file__).resolve().parents[1] / "notebooks" / "contracts"
DID = {
    "data_path": "bundled:sick_leave_sib",
    "unit": "employee",
    "time": "month",
    "outcome": "sick_days",
    "cohort": "first_treated",
    "cluster": "municipality",
    "outcome_label": "sick-leave days per employee per month",
    "title": "Sick leave",
}


def _contract(tmp_path: Path, threshold: float) -> Path:
    """The sick-leave pre/post example with another threshold (days per person per year)."""
    text = (CONTRACTS / "sick_leave_pre_post.yaml").read_text(encoding="utf-8")
    out = tmp_path / f"contract_{threshold}.yaml"
    out.write_text(text.replace("overall: 2.1 ", f"overall: {threshold} "), encoding="utf-8")
    return out


@pytest.fixture(scope="module")
def did_fit() -> reporting.DidFit:
    s = reporting.did_settings(**DID, n_boot=199)
    return reporting.fit_did(reporting.load_did(s), s)


def _with_contract(fit: reporting.DidFit, path: Path) -> tuple[reporting.DidFit, object]:
    from dataclasses import replace

    s = reporting.did_settings(**DID, n_boot=199, contract_path=str(path))
    fit = replace(fit, settings=s)
    return fit, reporting.contract_value(fit)


@pytest.mark.parametrize(
    ("threshold", "status"),
    [
        (0.5, "met"),  # the whole interval (0.15 to 0.72 days a month, x12) is beyond 0.5 a year
        (2.1, "met_unconfirmed"),  # the estimate is beyond, the interval's weak end is not
        (7.0, "not_met_unconfirmed"),  # the estimate falls short, the interval's strong end does not
        (20.0, "not_met"),  # no effect in the interval reaches 20 days a year
    ],
)
def test_every_status_is_decided_from_the_payments_across_the_interval(did_fit, tmp_path, threshold, status):
    fit, value = _with_contract(did_fit, _contract(tmp_path, threshold))
    v = reporting.verdict(fit, value)
    assert v.status == status
    st = value.settlement
    assert v.due == pytest.approx(st.due)
    assert (v.low, v.high) == (min(st.payments.values()), max(st.payments.values()))
    confirmed = v.low == v.high
    assert confirmed == (status in ("met", "not_met"))
    # the same sentence in the headline box, the contract section and results.json
    box = reporting.headline_box(fit, v)
    section = reporting.contract_section(fit, value, v)
    assert f"Contract target met?</b> {escape(v.payment)}" in box
    assert escape(v.payment) in section
    assert v.to_dict()["text"] == v.payment and v.to_dict()["status"] == status
    assert "EUR" in v.payment and "e+0" not in v.payment


def test_a_target_below_the_mde_is_said_once_in_the_verdict(did_fit, tmp_path):
    fit, value = _with_contract(did_fit, _contract(tmp_path, 2.1))
    v = reporting.verdict(fit, value)
    assert v.underpowered and "smallest effect this evaluation can reliably detect" in v.payment
    v2 = reporting.verdict(fit, value, mde=0.01)
    assert not v2.underpowered and "reliably detect" not in v2.payment


def test_no_contract_says_so_everywhere(did_fit):
    v = reporting.verdict(did_fit, None)
    assert v.status == "no_contract" and v.payment == "No contract terms were given."
    assert reporting.contract_section(did_fit, None, v) == "<p>No contract terms were given.</p>"
    assert "no contract terms given" in reporting.headline_box(did_fit, v)


def test_the_checks_of_a_clean_panel_pass(did_fit):
    checks = {c.name: c for c in design_checks(did_fit)}
    assert checks["pretrend"].status == "passed" and not checks["pretrend"].warns
    assert checks["placebo"].status == "not_run"  # no robustness table given
    assert checks["clusters"].status == "passed" and checks["small_groups"].status == "passed"
    assert "Read with care" not in reporting.headline_box(did_fit)


@pytest.fixture(scope="module")
def castle_fit() -> reporting.DidFit:
    """A castle-like state panel written to CSV: cohorts of 1, 13, 4, 2 and 1 states, a trend in the 1-state ones."""
    import tempfile

    from evaluator.data.simulate import castle_like

    path = Path(tempfile.mkdtemp()) / "castle.csv"
    castle_like(seed=1, pretrend=0.1).data.to_csv(path, index=False)
    s = reporting.did_settings(
        data_path=str(path),
        unit="state",
        time="year",
        outcome="l_homicide",
        cohort="effyear",
        cluster="state",
        n_boot=199,
        title="Castle",
        outcome_label="log homicides",
    )
    return reporting.fit_did(reporting.load_did(s), s)


def test_a_pretrend_test_resting_on_single_state_cells_is_unreliable_not_a_failure(castle_fit):
    pt = castle_fit.pretrend
    assert pt["small_cells"] and not pt["reliable"]
    assert pt["unreliable_p_value"] < 1e-6  # the joint test "rejects", driven by the one-state cohorts
    checks = {c.name: c for c in design_checks(castle_fit)}
    assert checks["pretrend"].status == "unreliable"
    assert "not reliable" in checks["pretrend"].caveat and "diverging trends" in checks["pretrend"].caveat
    assert checks["small_groups"].status == "failed"
    assert "evidence of diverging trends" not in pt["sentence"]


def test_a_failed_placebo_and_small_groups_reach_the_headline_and_qualify_the_evidence(castle_fit):
    rob = reporting.robustness_did(castle_fit)
    v = reporting.verdict(castle_fit, None, rob)
    names = {c.name: c.status for c in v.checks}
    assert names["placebo"] == "failed"  # the one-state cohorts' trend shows in the fake earlier start
    assert v.comparability_failed
    box = reporting.headline_box(castle_fit, v)
    assert "Read with care" in box and "placebo" in box and "Some small groups" in box
    assert "checks that the groups are comparable failed" in box
    # the leave-one-out rows never name a cohort below min_cell
    loo = rob.loc[rob["kind"] == "leave-one-out", "specification"].tolist()
    assert loo == ["Leaving out cohort 2006"]


def test_small_cohorts_are_pooled_unnamed_in_the_cohort_table_and_hidden_in_the_event_study(castle_fit):
    from evaluator.reporting.data_chapter import pooled_cohorts, shown_event_table

    t = pooled_cohorts(castle_fit)
    assert t["first treated period"].tolist()[:2] == ["never", 2006]
    assert t["units"].tolist() == [29, 13, 8] and "4 small cohort(s) pooled" in t["first treated period"].iloc[2]
    table, hidden = shown_event_table(castle_fit)
    shown = table.loc[table["std_error"].notna() & table["event_time"].notna()]
    assert hidden >= 1 and (shown["n_units"] >= 5).all()
    page = reporting.data_summary_did(castle_fit) + reporting.event_study_figure(castle_fit)
    for year in ("2005", "2007", "2008", "2009"):
        assert f"cohort {year}" not in page and f"<td>{year}</td>" not in page


def test_balance_after_matching_is_a_design_check():
    s = reporting.matched_settings(
        data_path="bundled:employment_sib",
        unit="person_id",
        treat="treated",
        outcome="employed_12m",
        covariates=["age", "sex", "education", "diagnosis", "emp_y1", "emp_y2", "emp_y3"],
        caliper=0.2,
        title="Employment",
        outcome_label="share in work",
    )
    fit = reporting.fit_matched(reporting.load_matched(s), s)
    check = {c.name: c for c in design_checks(fit)}["balance"]
    b = fit.match.balance()
    worst = b.loc[(b["sample"] == "after") & (b["term"] != "distance"), "smd"].abs().max()
    assert check.status == ("passed" if worst <= 0.1 else "failed")
    one_bad = Check("balance", "failed", "After matching, the groups still differ.", comparability=True)
    assert one_bad.warns


def test_results_json_carries_the_verdict(did_fit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fit, value = _with_contract(did_fit, _contract(tmp_path, 2.1))
    v = reporting.verdict(fit, value)
    rec = reporting.save_results(fit.result, title="t", design=fit.design, verdict=v.to_dict())
    assert rec["verdict"]["text"] == v.payment and rec["verdict"]["status"] == "met_unconfirmed"
    saved = pd.read_json(tmp_path / "results.json", typ="series")
    assert saved["verdict"]["text"] == v.payment
