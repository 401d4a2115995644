"""The DiD report's sensitivity section: HonestDiD relative magnitudes on the report's event study, and the contract."""

from __future__ import annotations

import math

import pytest

from evaluator import reporting
from evaluator.estimators.honest import honest_did
from evaluator.i18n import language
from evaluator.reporting.sensitivity import MBAR, sensitivity_did, sensitivity_section


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    from evaluator.data.simulate import sick_leave_sib

    sim = sick_leave_sib(
        n_municipalities=16, employees_per_municipality=40, n_periods=24, waves=(9, 15), effect_size=-1.5, seed=3
    )
    path = tmp_path_factory.mktemp("sens") / "panel.parquet"
    sim.data.to_parquet(path)
    s = reporting.did_settings(
        data_path=str(path),
        unit="employee",
        time="month",
        outcome="sick_days",
        cohort="first_treated",
        cluster="municipality",
        outcome_label="sick-leave days per employee per month",
        n_boot=99,
    )
    return reporting.fit_did(reporting.load_did(s), s)


def test_bounds_and_breakdown_are_those_of_honest_did(fit):
    sens = sensitivity_did(fit)
    assert sens is not None
    d = sens.to_dict()
    assert d["mbar"] == list(MBAR) and len(d["ci_low"]) == len(MBAR)
    # the sets widen with M-bar and contain the parallel-trends interval's centre region
    widths = [hi - lo for lo, hi in zip(d["ci_low"], d["ci_high"], strict=True)]
    assert widths == sorted(widths)
    b = sens.breakdown
    assert 0 < b < math.inf
    # at the breakdown the set reaches zero, a little below it it does not
    lo_at, hi_at = sens.result.confidence_set(b + 0.01)
    lo_below, hi_below = sens.result.confidence_set(b - 0.01)
    assert lo_at <= 0 <= hi_at
    assert not (lo_below <= 0 <= hi_below)
    assert d["breakdown_mbar"] == round(b, 4)


def test_a_harder_threshold_breaks_down_sooner(fit):
    zero = sensitivity_did(fit)
    est = zero.result.estimate

    class Value:  # a contract whose target is half the estimated effect
        cut = est / 2

    with_contract = sensitivity_did(fit, Value())
    assert 0 < with_contract.threshold_breakdown < zero.breakdown
    html = str(sensitivity_section(with_contract))
    assert "The contract&#x27;s target would still be met" in html and "sensitivity" in html


def test_section_in_danish_has_no_english_sentence(fit):
    sens = sensitivity_did(fit)
    with language("da"):
        html = str(sensitivity_section(sens))
    assert "Sammenligningen forudsætter" in html and "The comparison assumes" not in html
    assert "helt parallelle tendenser" in html


def test_universal_base_period_is_used_for_callaway_santanna(fit):
    # HonestDiD needs pre-period coefficients against one reference period: the section refits with it
    from evaluator.estimators.staggered import staggered_did

    s = fit.settings
    res = staggered_did(
        fit.panel, outcome=s.outcome, unit=s.unit, time=s.time, cohort=s.cohort, cluster=s.cluster,
        base_period="universal", n_boot=0,
    )  # fmt: skip
    direct = honest_did(res, mbar=list(MBAR), target="average", min_e=-6, max_e=5)
    sens = sensitivity_did(fit)
    assert sens.result.to_frame()["ci_low"].tolist() == pytest.approx(direct.to_frame()["ci_low"].tolist(), abs=1e-12)


# -- the headline caveat when the breakdown value is small ------------------------------------------------------------
def _with(sens, breakdown, threshold=None):
    import dataclasses

    return dataclasses.replace(sens, breakdown=breakdown, threshold_breakdown=threshold)


def test_small_breakdown_is_a_headline_caveat(fit):
    from evaluator.policy import FRAGILE_BREAKDOWN

    sens = sensitivity_did(fit)
    checks = {
        b: {c.name: c for c in reporting.verdict(fit, None, None, sensitivity=_with(sens, b)).checks}["sensitivity"]
        for b in (0.0, 0.42, FRAGILE_BREAKDOWN, 1.7, math.inf)
    }
    assert checks[0.0].status == "not_run" and not checks[0.0].warns  # nothing significant to break
    assert checks[0.42].status == "failed" and checks[0.42].warns
    assert "diverged by more than 0.42 times the largest difference" in checks[0.42].caveat
    assert all(checks[b].status == "passed" for b in (FRAGILE_BREAKDOWN, 1.7, math.inf))
    # the verdict's caveats are the headline box's
    v = reporting.verdict(fit, None, None, sensitivity=_with(sens, 0.42))
    box = str(reporting.headline_box(fit, v))
    assert "fragile to diverging trends" in box
    robust = reporting.verdict(fit, None, None, sensitivity=_with(sens, 1.7))
    assert "fragile" not in str(reporting.headline_box(fit, robust))
    assert v.to_dict()["checks"]["sensitivity"] == "failed" and robust.to_dict()["checks"]["sensitivity"] == "passed"
    assert any("fragile to diverging trends" in c for c in v.to_dict()["caveats"])


def test_small_breakdown_at_the_target_is_about_the_payment(fit):
    sens = sensitivity_did(fit)
    pay = {c.name: c for c in reporting.verdict(fit, None, None, sensitivity=_with(sens, 2.0, 0.3)).checks}
    assert pay["sensitivity"].warns and "could no longer say that the target was met" in pay["sensitivity"].caveat
    assert "0.3 times" in pay["sensitivity"].caveat
    # a target breakdown of zero: the verdict already says the payment is not confirmed; the effect's own applies
    zero = {c.name: c for c in reporting.verdict(fit, None, None, sensitivity=_with(sens, 0.5, 0.0)).checks}
    assert "interval would include zero" in zero["sensitivity"].caveat
    with language("sv"):
        sv = {c.name: c for c in reporting.verdict(fit, None, None, sensitivity=_with(sens, 0.42)).checks}
    assert "känslig för avvikande trender" in sv["sensitivity"].caveat and "0,42" in sv["sensitivity"].caveat
