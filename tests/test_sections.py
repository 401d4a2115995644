"""Tests of evaluator.sections: parameter checks, each report section, robustness tables and the MDE text."""

from __future__ import annotations

import json
import math
import re
from dataclasses import replace
from html import escape as html_escape
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator import ContractError, DesignError
from evaluator import reporting as sections
from evaluator.errors import ParameterError
from evaluator.formatting import num as _num
from evaluator.reporting.robustness import _row

DID = {
    "data_path": "bundled:sick_leave_sib",
    "unit": "employee",
    "time": "month",
    "outcome": "sick_days",
    "cohort": "first_treated",
    "cluster": "municipality",
    "outcome_label": "sick-leave days per employee per month",
}
CONTRACTS = Path(__file__).resolve().parents[1] / "notebooks" / "contracts"
MATCHED = {
    "data_path": "bundled:employment_sib",
    "unit": "person_id",
    "treat": "treated",
    "outcome": "employed_12m",
    "covariates": ["age", "sex", "education", "diagnosis", "emp_y1", "emp_y2", "emp_y3"],
}


@pytest.fixture(scope="module")
def did_fit() -> sections.DidFit:
    s = sections.did_settings(**DID, n_boot=199, title="Sick <leave> & co")
    return sections.fit_did(sections.load_did(s), s)


@pytest.fixture(scope="module")
def twfe_fit() -> sections.DidFit:
    s = sections.did_settings(**DID, estimator="twfe", inference="cluster")
    return sections.fit_did(sections.load_did(s), s)


@pytest.fixture(scope="module")
def matched_fit() -> sections.MatchedFit:
    s = sections.matched_settings(**MATCHED, caliper=0.2)
    return sections.fit_matched(sections.load_matched(s), s)


# -- parameters --------------------------------------------------------------------------------------------------------
def test_did_settings_defaults_and_inference_per_estimator():
    assert sections.did_settings(**DID).inference == "bootstrap"
    s = sections.did_settings(**DID, estimator="twfe")
    assert (s.inference, s.cluster) == ("cluster", "municipality")
    assert sections.did_settings(**{**DID, "cluster": ""}).cluster is None


def test_did_settings_lists_every_problem_naming_the_parameter():
    with pytest.raises(ParameterError) as err:
        sections.did_settings(**DID, estimator="ols", control_group="all", alpha=2.0, n_boot=-1, covariates="")
    text = str(err.value)
    for name in ("estimator='ols'", "control_group='all'", "alpha=2.0", "n_boot=-1"):
        assert name in text


def test_did_settings_refuses_an_inference_of_the_other_estimator():
    with pytest.raises(ParameterError, match=r"inference='wild': with estimator='callaway_santanna' choose one of"):
        sections.did_settings(**DID, inference="wild")
    with pytest.raises(ParameterError, match=r"n_boot=10: a bootstrap needs at least 99 draws"):
        sections.did_settings(**DID, n_boot=10)


def test_a_contract_is_read_and_checked_in_the_parameter_step(tmp_path):
    good = sections.did_settings(**DID, contract_path=str(CONTRACTS / "sick_leave_pre_post.yaml"))
    assert good.contract.metric == "sick_days" and "contract" not in good.as_dict()
    with pytest.raises(ContractError, match="outcome.metric"):
        sections.matched_settings(**MATCHED, contract_path=str(CONTRACTS / "reoffending_peterborough.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "name: x\noutcome: {metric: sick_days, unit: days, direction: sideways}\npayment: {family: rate_card}\n"
    )
    with pytest.raises(ContractError, match="outcome.direction"):
        sections.did_settings(**DID, contract_path=str(bad))
    with pytest.raises(ParameterError, match="contract_path="):
        sections.did_settings(**DID, contract_path=str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("name", ["sick_leave_pre_post", "reoffending_peterborough", "employment_rate_card"])
def test_example_contracts_parse(name):
    from evaluator.contracts.terms import Contract

    c = Contract.from_file(CONTRACTS / f"{name}.yaml")
    assert c.metric in {"sick_days", "reconvictions_12m", "employed_12m"}


def test_contract_section_did(did_fit):
    s = sections.did_settings(**DID, n_boot=199, contract_path=str(CONTRACTS / "sick_leave_pre_post.yaml"))
    fit = replace(did_fit, settings=s)
    value = sections.contract_value(fit)
    assert value.settlement.own_rule is not None  # the pre/post rule on the observed before/after means
    assert value.cut == pytest.approx(-2.1 / 12)
    assert 0 <= value.threshold_power <= 1
    html = sections.contract_section(fit, value)
    for text in ("Settlement", "Probability the threshold was met", "net present value", "illustrative", "Finnish"):
        assert text in html
    for css in ("settlement", "economic-return", "tornado"):
        assert f"<figure class='{css}'>" in html
    box = sections.headline_box(fit, value)
    # issue 12: one verdict. The old headline said "yes ... payment due: EUR 1,500,000" while the contract section
    # said the target could not be confirmed; now both show the verdict's own sentence, word for word.
    verdict = sections.verdict(fit, value)
    assert verdict.status == "met_unconfirmed" and verdict.due == 1_500_000
    assert f"Contract target met?</b> {html_escape(verdict.payment)}" in box and "EUR 1,500,000" in box
    assert html_escape(verdict.payment) in html
    rec = sections.settlement_record(value)
    assert {"npv", "npv_by_payer", "payments"} <= set(rec)
    json.dumps(rec)
    assert "could not reliably tell" in sections.mde_section(fit, value) or "at least the MDE" in sections.mde_section(
        fit, value
    )


def test_no_contract_is_one_line(did_fit):
    assert sections.contract_value(did_fit) is None
    assert sections.contract_section(did_fit, None) == "<p>No contract terms were given.</p>"


def test_matched_per_cohort_contract():
    s = sections.matched_settings(
        data_path="bundled:reoffending_sib",
        unit="prisoner_id",
        treat="treated",
        outcome="reconvictions_12m",
        covariates=["age", "sex", "prior_convictions", "sentence_months", "offence"],
        caliper=0.2,
        cohort="cohort",
        contract_path=str(CONTRACTS / "reoffending_peterborough.yaml"),
    )
    fit = sections.fit_matched(sections.load_matched(s), s)
    assert set(fit.by_cohort) == {"1", "2"}
    value = sections.contract_value(fit)
    assert value.settlement.rules["rule"].tolist() == ["cohort 1", "cohort 2", "overall (final)"]
    assert "Cohort 1 (matched within the cohort)" in sections.estimate_table(fit)


def test_matched_settings_problems():
    with pytest.raises(ParameterError, match="caliper=0.2: .* cannot be used with distance='mahalanobis'"):
        sections.matched_settings(**MATCHED, distance="mahalanobis", caliper=0.2)
    with pytest.raises(ParameterError) as err:
        sections.matched_settings(**{**MATCHED, "covariates": []}, ratio=0, inference="jackknife", replace="yes")
    text = str(err.value)
    for name in ("covariates=[]", "ratio=0", "inference='jackknife'", "replace='yes'"):
        assert name in text


def test_a_missing_data_file_is_a_parameter_error(tmp_path):
    s = sections.did_settings(**{**DID, "data_path": str(tmp_path / "none.csv")})
    with pytest.raises(ParameterError, match="data_path=.*file not found"):
        sections.load_did(s)


# -- display helpers ---------------------------------------------------------------------------------------------------
def test_html_helpers_escape_text():
    assert sections.Html("<b>x</b>")._repr_html_() == "<b>x</b>"
    t = sections.table_html(pd.DataFrame({"<col>": ["<script>"], "p_value": [1e-9], "x": [1234.5678]}))
    assert "&lt;script&gt;" in t and "&lt;col&gt;" in t and "<script>" not in t
    assert "&lt;\xa00.001" in t and "1,235" in t  # a no-break space: "< 0.001" never wraps in a narrow column
    assert sections.notes_html([]) == ""
    assert "&lt;b&gt;" in sections.notes_html(["<b>", "<b>"]) and sections.notes_html(["a", "a"]).count("<li>") == 1


def test_number_formatting():
    assert _num(-0.44875) == "-0.449"
    assert _num(0.300) == "0.3"
    assert _num(12345.6) == "12,346"
    assert _num(float("nan")) == "."


def test_effect_sentence_says_direction_and_whether_zero_is_possible():
    down = sections.effect_sentence(-0.45, (-0.72, -0.15), outcome_label="days")
    assert "lowered the outcome by 0.45 days" in down and "a fall of between 0.15 and 0.72" in down
    up = sections.effect_sentence(0.2, (0.1, 0.3))
    assert "raised the outcome by 0.2 (" in up and "a rise of between 0.1 and 0.3" in up
    both = sections.effect_sentence(0.1, (-0.05, 0.25), level=90)
    assert "90% confidence interval" in both and "consistent with no effect" in both


def test_mde_sentence_says_when_a_target_could_never_be_detected():
    never = sections.mde_sentence(0.3, estimate=0.1, target=0.2, outcome_label="days")
    assert "smaller than the MDE" in never and "could not reliably tell an effect of the target size" in never
    assert "weak evidence of no effect" in never
    ok = sections.mde_sentence(0.3, estimate=-0.5, target=-0.4)
    assert "larger than the MDE" in ok and "can detect it" in ok
    assert "No contract target" in sections.mde_sentence(0.3, estimate=0.5)


# -- difference-in-differences sections --------------------------------------------------------------------------------
def test_did_fit_counts(did_fit):
    assert (did_fit.n_units, did_fit.n_treated, did_fit.n_clusters) == (1_000, 600, 20)
    assert did_fit.cohorts["units"].tolist() == [400, 200, 200, 200]
    assert math.isfinite(did_fit.result.estimate) and did_fit.result.ci[0] < did_fit.result.estimate


def test_headline_box(did_fit):
    box = sections.headline_box(did_fit)
    assert box.startswith("<div class='headline-box'>")
    assert "95% confidence interval" in box and "sick-leave days per employee per month" in box
    assert "no contract terms given" in box
    assert "level 3 of 5 on the Maryland Scientific Methods Scale" in box


def test_title_is_escaped(did_fit):
    assert "Sick &lt;leave&gt; &amp; co" in sections.title_block(did_fit)
    assert "<leave>" not in sections.appendix(did_fit)


def test_check_line_is_plain_and_rounded(did_fit):
    line = sections.check_line(did_fit.result)
    assert line.startswith("Headline numbers: estimate -0.4488, standard error ")
    assert "95% confidence interval [" in line


def test_data_summary_did(did_fit):
    out = sections.data_summary_did(did_fit)
    assert "1,000" in out and "48 (from 1 to 48)" in out and "nothing was dropped" in out
    assert "20 (municipality)" in out and "never" in out


def test_data_summary_reports_dropped_units(tmp_path):
    from evaluator.data import datasets

    raw = datasets.load("sick_leave_sib")
    # two employees of cohort 13 lose their pre-programme months: load_panel drops them with a warning
    first = raw.loc[raw["first_treated"] == 13, "employee"].unique()[:2]
    raw = raw.loc[~(raw["employee"].isin(first) & (raw["month"] < 13))]
    raw.to_parquet(tmp_path / "panel.parquet")
    s = sections.did_settings(**{**DID, "data_path": str(tmp_path / "panel.parquet")}, inference="analytic")
    panel = sections.load_did(s)  # the warning becomes a note, not output
    assert any("dropped 2 unit(s)" in n for n in panel.attrs["evaluator"]["notes"])
    out = sections.data_summary_did(sections.fit_did(panel, s))
    # 2 units are below the small-cell threshold: shown as <5 (escaped), their rows not at all
    assert "&lt;5 units (rows not shown) dropped: never observed before their first treated period" in out
    assert "Data notes" in out and "998" in out and "dropped 2 unit" not in out
    out0 = sections.data_summary_did(sections.fit_did(panel, replace(s, min_cell=0)))
    assert "2 units (72 rows) dropped: never observed before their first treated period" in out0


def test_figures_are_embedded_with_captions(did_fit):
    ev = sections.event_study_figure(did_fit)
    assert ev.startswith("<figure class='event-study'><img src='data:image/png;base64,")
    assert "<figcaption>Event study (Callaway-Sant&#x27;Anna)" in ev and "Pre-trend check" in ev
    tr = sections.trends_figure(did_fit)
    assert "class='raw-trends'" in tr and "Raw trends" in tr


def test_pretrend_falls_back_to_bands_when_the_joint_test_is_unreliable(did_fit, twfe_fit):
    # Callaway-Sant'Anna: 69 pre-programme cells and 20 clusters, so the joint test is not used
    assert did_fit.pretrend["method"] == "simultaneous (uniform) bands"
    assert "not reliable" in did_fit.pretrend["sentence"]
    # TWFE event study with 6 leads: 5 restrictions < 19
    assert twfe_fit.pretrend["method"] == "joint test" and 0 <= twfe_fit.pretrend["p_value"] <= 1


def test_estimate_table(did_fit, twfe_fit):
    t = sections.estimate_table(did_fit)
    assert "Main estimate" in t and "Average by time since start" in t and "Average over cohorts" in t
    assert "Average over cohorts" not in sections.estimate_table(twfe_fit)


def test_robustness_did(did_fit):
    rob = sections.robustness_did(did_fit)
    assert list(rob.columns) == list(sections.ROBUSTNESS_COLUMNS)
    main = rob.iloc[0]
    assert main["kind"] == "main" and main["estimate"] == pytest.approx(did_fit.result.estimate)
    assert (rob["kind"] == "leave-one-out").sum() == 3
    assert {"comparison", "estimator", "inference", "placebo"} <= set(rob["kind"])
    assert rob["estimate"].notna().all() and (rob["ci_low"] <= rob["estimate"]).all()
    placebo = rob.loc[rob["kind"] == "placebo"].iloc[0]
    assert "6 periods early" in placebo["specification"]
    assert abs(placebo["estimate"]) < abs(main["estimate"])  # no effect before any start


def test_robustness_did_from_twfe(twfe_fit):
    rob = sections.robustness_did(twfe_fit, placebo_shift=3)
    specs = rob["specification"].tolist()
    assert "Callaway-Sant'Anna, never-treated comparison" in specs
    assert "Two-way fixed effects, wild cluster bootstrap" in specs  # plain words (issue 12)
    assert "Placebo: start 3 periods early (pre-programme data only)" in specs


def test_a_failing_specification_is_a_row_with_the_reason():
    def boom():
        raise DesignError("no never-treated units")

    row = _row("comparison", "X", boom)
    assert math.isnan(row["estimate"]) and row["note"] == "could not be estimated: no never-treated units"


def test_robustness_table_and_figure(did_fit):
    rob = sections.robustness_did(did_fit)
    t = sections.robustness_table(rob, did_fit)
    assert "ranges from" in t and "placebo estimate" in t and "kind" not in t
    fig = sections.robustness_figure(rob, did_fit)
    assert fig.startswith("<figure class='specification-curve'>")


def test_mde_section_uses_t_with_clusters(did_fit):
    out = sections.mde_section(did_fit)
    assert "t distribution with 19 degrees of freedom (20 clusters)" in out
    assert "minimum detectable effect (MDE)" in out


def test_appendix_shows_parameters_versions_and_a_manifest(did_fit, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = sections.appendix(did_fit)
    assert "Parameters" in out and "numpy" in out and "written beside this report" in out
    (tmp_path / "manifest.json").write_text(json.dumps({"status": "ok", "seed": 1}))
    # issue 12: the manifest is a table in a collapsible section, not a JSON dump
    out = sections.appendix(did_fit)
    assert "Run manifest" in out and "<th style='text-align:left'>status</th><td>ok</td>" in out


def test_appendix_reproduces_the_twfe_estimate_with_linearmodels(twfe_fit, did_fit):
    import evaluator
    from evaluator.reporting.appendix import reproduce_twfe

    s = twfe_fit.settings
    ours = evaluator.did(
        twfe_fit.panel, outcome=s.outcome, unit=s.unit, time=s.time, cohort=s.cohort, cluster=s.cluster
    )
    check = reproduce_twfe(twfe_fit)
    assert not check.error and check.agrees
    # two independent programs on the same panel: equal up to floating-point rounding
    assert check.estimate == pytest.approx(ours.estimate, rel=1e-8)
    # PanelOLS counts the unit effects in (N-1)/(N-K); on evaluator's K the standard errors are the same
    assert check.se_our_count == pytest.approx(ours.se, rel=1e-8)
    out = sections.appendix(twfe_fit)
    # the page shows PanelOLS's estimate, which is ours to the digits shown
    shown = re.search(r"reproduced by linearmodels PanelOLS: (-?[\d,.]+) \(SE ([\d,.]+)\)", str(out))
    assert shown is not None
    assert float(shown[1].replace(",", "")) == pytest.approx(ours.estimate, rel=1e-5)
    assert float(shown[2].replace(",", "")) == pytest.approx(check.se, rel=1e-5)
    assert "differ by more than one part in a million" not in out
    # a Callaway-Sant'Anna report checks the TWFE estimate of its robustness table
    cs = sections.appendix(did_fit)
    assert "reproduced by linearmodels PanelOLS: " in cs and "no Callaway-Sant&#x27;Anna estimator" in cs


def test_results_extra_is_json(did_fit):
    extra = sections.results_extra(did_fit, sections.robustness_did(did_fit))
    text = json.dumps(extra, allow_nan=False)
    assert '"min_cell": 5' in text and extra["mde"] > 0 and extra["pretrend"]["passed"] in (True, False)


# -- matched comparison sections ---------------------------------------------------------------------------------------
def test_matched_sections(matched_fit):
    assert matched_fit.n_treated == 300 and matched_fit.n_units == 600
    box = sections.headline_box(matched_fit)
    assert "headline-box" in box and "matched on recorded characteristics" in box
    data = sections.data_summary_matched(matched_fit)
    assert "30,000" in data and "0.2 SD of the distance" in data
    bal = sections.balance_table(matched_fit)
    assert "<table" in bal and "balance-table" in bal and "SMD after" in bal
    assert bal.count("<tr>") > 10
    assert sections.overlap_figure(matched_fit).startswith("<figure class='overlap'>")
    assert sections.love_plot(matched_fit).startswith("<figure class='love-plot'>")
    assert "normal distribution" in sections.mde_section(matched_fit)


def test_overlap_figure_with_mahalanobis():
    s = sections.matched_settings(**MATCHED, distance="mahalanobis", replace=True, inference="abadie_imbens")
    fit = sections.fit_matched(sections.load_matched(s), s)
    assert sections.overlap_figure(fit).startswith("<figure class='overlap'>")


def test_robustness_matched(matched_fit):
    rob = sections.robustness_matched(matched_fit)
    assert list(rob.columns) == list(sections.ROBUSTNESS_COLUMNS)
    specs = rob["specification"].tolist()
    assert "Inverse-probability weighting" in specs and "Doubly robust (AIPW)" in specs
    assert "Matching on the Mahalanobis distance" in specs
    maha = rob.loc[rob["specification"] == "Matching on the Mahalanobis distance", "note"].iloc[0]
    assert "without the caliper" in maha
    assert np.isfinite(rob[["estimate", "ci_low", "ci_high"]].to_numpy()).all()
    assert json.dumps(sections.results_extra(matched_fit, rob), allow_nan=False)
