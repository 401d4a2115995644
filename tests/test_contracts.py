"""Outcome contracts: published settlements rebuilt from their rules, bad input named.

Expected figures are computed here from the contract's terms and the published
inputs, never from the code under test.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from evaluator import ContractError
from evaluator.contracts import Contract, irr, settle, settlement_sensitivity
from evaluator.results.base import Result, tidy_table

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "notebooks" / "contracts"


def peterborough(**payment) -> Contract:
    terms = {
        "family": "counterfactual_threshold",
        "measure": "relative",
        "thresholds": {"per_cohort": 0.10, "overall": 0.075},
        "cohort_payment": 1000.0,
        "final_payment": 5000.0,
    }
    terms.update(payment)
    return Contract.from_dict(
        {
            "name": "Peterborough-style",
            "currency": "GBP",
            "outcome": {"metric": "reconvictions_12m", "unit": "events per prisoner", "direction": "decrease"},
            "payment": terms,
        }
    )


def write(tmp_path: Path, text: str, name: str = "contract.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# -- published settlements ---------------------------------------------------------------
def test_peterborough_cohort_1_no_early_payment():
    # Published: cohort 1 had 142 reconviction events per 100 prisoners against 155 in the
    # matched national comparison, an 8.4% fall, short of the 10% cohort threshold.
    treated, comparison = 142 / 100, 155 / 100
    expected_fall = (comparison - treated) / comparison
    assert round(expected_fall, 3) == 0.084
    s = settle(peterborough(), treated - comparison, comparison=comparison, cohorts={1: treated - comparison})
    row = s.rules.set_index("rule").loc["cohort 1"]
    assert row["improvement"] == pytest.approx(expected_fall, abs=1e-12)
    assert not row["met"]
    assert row["payment"] == 0.0


def test_peterborough_final_payment_due():
    # Published: over all cohorts a 9% fall against the 7.5% overall threshold, so the
    # final payment is due. The comparison level does not matter for a relative rule.
    comparison = 1.50
    effect = -0.09 * comparison
    contract = peterborough()
    expected = contract.final_payment if 0.09 >= 0.075 else 0.0
    s = settle(contract, effect, comparison=comparison, overall_only=True)
    row = s.rules.set_index("rule").loc["overall (final)"]
    assert row["improvement"] == pytest.approx(0.09, abs=1e-12)
    assert row["met"]
    assert s.due == pytest.approx(expected)
    assert expected == 5000.0


def test_peterborough_cohort_and_final_together():
    # Cohort 1 at 8.4% (not paid early), overall 9% (final due, nothing to deduct).
    s = settle(
        peterborough(),
        -0.09 * 1.5,
        comparison={"overall": 1.5, 1: 1.55},
        cohorts={1: 1.42 - 1.55},
    )
    assert s.rules["met"].tolist() == [False, True]
    assert s.due == pytest.approx(5000.0)


def test_finland_integration_fiscal_share():
    # Published rule: investors receive 50% of the difference in taxes paid minus
    # transfers received between treatment and control. Treatment 10, control 4.
    treatment, control, share = 10.0, 4.0, 0.5
    gain = treatment - control
    expected = share * gain
    assert (gain, expected) == (6.0, 3.0)
    c = Contract.from_dict(
        {
            "name": "Finnish integration SIB (rule)",
            "currency": "EUR",
            "outcome": {"metric": "net_taxes", "unit": "EUR per participant", "direction": "increase"},
            "payment": {"family": "fiscal_share", "share": share},
        }
    )
    s = settle(c, gain)
    assert s.due == pytest.approx(expected)


def test_finland_sick_leave_target_not_met_while_pre_post_pays():
    # Published: the target was 2.1 fewer sick-leave days per person per year than the
    # preceding 12 months; the counterfactual effect was about 1 day a year.
    target, effect_per_year = 2.1, -1.0
    c = Contract.from_file(EXAMPLES / "sick_leave_pre_post.yaml")
    assert c.thresholds["overall"] == target and c.scale == 12
    effect_per_month = effect_per_year / 12  # the bundled data measure days per month
    s = settle(c, effect_per_month, se=0.3 / 12, observed=-2.5 / 12)
    row = s.rules.iloc[0]
    assert row["improvement"] == pytest.approx(-effect_per_year)
    assert not row["met"] and s.due == 0.0
    # The pre/post rule, fed a general fall of 2.5 days a year, pays the full amount.
    assert s.own_rule["met"] and s.own_rule["payment"] == pytest.approx(c.final_payment)
    assert "general trend" in s.sentence
    frame = s.to_frame("comparison")
    assert frame["payment"].tolist()[-1] == pytest.approx(c.final_payment)


def test_rate_card_own_rule_pays_all_verified_outcomes():
    c = Contract.from_file(EXAMPLES / "employment_rate_card.yaml")
    effect, employed = 0.10, 0.45
    s = settle(c, effect, se=0.03, observed=employed)
    assert s.due == pytest.approx(c.price * effect * c.participants)
    assert s.own_rule["payment"] == pytest.approx(min(c.price * employed * c.participants, c.cap))


def test_savings_share_bonus_cap():
    c = Contract.from_dict(
        {
            "name": "Norrkoping-style",
            "outcome": {"metric": "y", "unit": "u", "direction": "increase"},
            "payment": {"family": "savings_share", "share": 0.5, "unit_value": 1000.0, "bonus_cap": 0.1},
            "participants": {"total": 100},
            "investor": {"capital": 10000.0},
            "horizon_years": 3,
        }
    )
    small = 0.5 * (0.05 * 100 * 1000.0) * 3
    assert settle(c, 0.05).due == pytest.approx(min(small, 11000.0))
    assert settle(c, 1.0).due == pytest.approx(10000.0 * 1.1)


def test_cap_cuts_later_payments_first():
    c = peterborough(cohort_payment=4000.0, final_payment=5000.0, cap=6000.0)
    s = settle(c, -0.2, comparison=1.0, cohorts={1: -0.2, 2: -0.2})
    assert s.rules["payment"].tolist() == [4000.0, 2000.0, 0.0]


# -- probabilities ------------------------------------------------------------------------
def test_probability_normal_approximation_matches_scipy():
    c = Contract.from_file(EXAMPLES / "sick_leave_pre_post.yaml")
    est, se = -0.2, 0.05
    s = settle(c, est, se=se)
    # improvement = -12 * effect >= 2.1  <=>  effect <= -2.1 / 12
    expected = stats.norm.cdf((-2.1 / 12 - est) / se)
    assert s.rules["p_met"].iloc[0] == pytest.approx(expected, rel=1e-12)
    assert s.probability_method == "normal approximation"


def test_probability_relative_threshold_matches_scipy():
    est, se, comp = -0.12, 0.05, 1.5
    s = settle(peterborough(), est, se=se, comparison=comp, overall_only=True)
    expected = stats.norm.cdf((-0.075 * comp - est) / se)
    assert s.rules["p_met"].iloc[0] == pytest.approx(expected, rel=1e-12)


def test_probability_from_bootstrap_draws_in_result():
    rng = np.random.default_rng(1)
    draws = rng.normal(-0.12, 0.05, size=999)
    r = Result(
        "matched",
        tidy_table(["att"], [-0.12], [0.05]),
        nobs=100,
        outcome="reconvictions_12m",
        info={"boot_estimates": draws},
    )
    s = settle(peterborough(), r, comparison=1.5, overall_only=True)
    assert s.rules["p_met"].iloc[0] == pytest.approx(np.mean(-draws / 1.5 >= 0.075))
    assert s.probability_method == "bootstrap (999 draws)"


def test_cohorts_read_from_a_result_by_cohort():
    table = tidy_table(["g=1", "g=2", "overall"], [-0.2, -0.08, -0.15], [0.05, 0.05, 0.04], cohort=[1, 2, np.nan])
    r = Result("by cohort", table, nobs=10, outcome="reconvictions_12m", headline="overall")
    s = settle(peterborough(), r, comparison=1.0)
    assert s.rules["rule"].tolist() == ["cohort 1", "cohort 2", "overall (final)"]
    assert s.rules["met"].tolist() == [True, False, True]


# -- investor -------------------------------------------------------------------------------
def test_irr_hand_checkable():
    assert irr([-100, 110], [dt.date(2021, 1, 1), dt.date(2022, 1, 1)]) == pytest.approx(0.10, abs=1e-12)
    # -100 now, 60 after one and two years: 60x + 60x^2 = 100 with x = 1 / (1 + r).
    x = (-60 + math.sqrt(60**2 + 4 * 60 * 100)) / (2 * 60)
    assert irr([-100, 60, 60], [0, 1, 2]) == pytest.approx(1 / x - 1, abs=1e-10)
    assert irr([-100, 0], [0, 1]) is None
    assert irr([100, 10], [0, 1]) is None


def test_investor_multiple_and_irr_in_settlement():
    c = Contract.from_dict(
        {
            "name": "x",
            "outcome": {"metric": "y", "unit": "u", "direction": "increase"},
            "payment": {"family": "rate_card", "price": 110.0, "dates": {"final": "2022-01-01"}},
            "investor": {"capital": 100.0, "invested": "2021-01-01"},
        }
    )
    s = settle(c, 1.0, se=0.1)
    inv = s.to_frame("investor").set_index("scenario").loc["estimate"]
    assert inv["multiple"] == pytest.approx(1.1)
    assert inv["irr"] == pytest.approx(0.1, abs=1e-10)
    assert s.present_value["estimate"] == pytest.approx(110.0 / 1.035 ** (365 / 365))


def test_irr_undefined_is_stated():
    c = peterborough()
    c = c.replace(capital=100.0, invested=dt.date(2020, 1, 1), final_date=dt.date(2023, 1, 1))
    s = settle(c, 0.1, comparison=1.0, overall_only=True)
    row = s.investor.set_index("scenario").loc["estimate"]
    assert math.isnan(row["irr"]) and "undefined" in row["irr_note"]


# -- files and bad input ----------------------------------------------------------------------
def test_example_contracts_load_and_match_bundled_outcomes():
    from evaluator.data import datasets

    outcomes = {name: datasets.columns(name)["outcome"] for name in datasets.NAMES}
    outcomes = {k: [v] if isinstance(v, str) else v for k, v in outcomes.items()}
    pairs = {
        "sick_leave_pre_post.yaml": "sick_leave_sib",
        "reoffending_peterborough.yaml": "reoffending_sib",
        "employment_rate_card.yaml": "employment_sib",
    }
    for file, data in pairs.items():
        c = Contract.from_file(EXAMPLES / file)
        assert c.metric in outcomes[data], file
    assert set(Contract.from_file(EXAMPLES / "reoffending_peterborough.yaml").participants_by_cohort) == {"1", "2"}


def test_danish_demo_contract_has_the_english_terms():
    # the Danish demo report's contract: its own words in Danish, every term the same as the English file's
    en, da = (Contract.from_file(EXAMPLES / f) for f in ("sick_leave_pre_post.yaml", "sick_leave_pre_post_da.yaml"))
    words = {"name", "description", "unit", "contract_unit", "baseline_period", "source"}
    a, b = en.to_dict(), da.to_dict()
    assert a["name"] != b["name"]

    def terms(d, drop=words):
        if isinstance(d, dict):
            return {k: terms(v) for k, v in d.items() if k not in drop and k != "period"}
        return d

    assert terms(a) == terms(b)


def test_yaml_and_json_agree(tmp_path):
    c = Contract.from_file(EXAMPLES / "employment_rate_card.yaml")
    path = tmp_path / "c.json"
    path.write_text(json.dumps(c.to_dict()), encoding="utf-8")
    d = Contract.from_file(path)
    assert (d.price, d.final_date, d.invested, d.metric) == (c.price, c.final_date, c.invested, c.metric)


def test_schema_errors_name_every_field_in_one_error(tmp_path):
    path = write(
        tmp_path,
        """\
        name: broken
        outcome:
          unit: days
          direction: down
        payment:
          family: rate_crad
          price: -5
          cap: -1
          thresholds: {overal: 0.1}
        horizon_years: -2
        discount_rate: 3.5
        """,
    )
    with pytest.raises(ContractError) as info:
        Contract.from_file(path)
    msg = str(info.value)
    for field in (
        "outcome.metric",
        "outcome.direction",
        "payment.family",
        "payment.price",
        "payment.cap",
        "payment.thresholds.overal",
        "horizon_years",
        "discount_rate",
    ):
        assert f"'{field}'" in msg, field
    assert "did you mean 'rate_card'" in msg
    assert "did you mean 'payment.thresholds.overall'" in msg
    assert "0.035" in msg, "a percentage discount rate gets a hint"
    assert len(info.value.problems) >= 8


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [("price", -1, "payment.price"), ("cap", -10, "payment.cap"), ("cohort_payment", -1, "payment.cohort_payment")],
)
def test_negative_money_refused(field, value, match):
    raw = {
        "name": "x",
        "outcome": {"metric": "y", "unit": "u", "direction": "increase"},
        "payment": {"family": "rate_card", "price": 1.0, field: value},
    }
    with pytest.raises(ContractError, match=match):
        Contract.from_dict(raw)


def test_negative_horizon_and_percentage_rate_refused():
    raw = {
        "name": "x",
        "outcome": {"metric": "y", "unit": "u", "direction": "increase"},
        "payment": {"family": "rate_card", "price": 1.0},
    }
    with pytest.raises(ContractError, match="horizon_years"):
        Contract.from_dict({**raw, "horizon_years": -1})
    with pytest.raises(ContractError, match=r"0\.035 for 3\.5%"):
        Contract.from_dict({**raw, "discount_rate": 3.5})
    with pytest.raises(ContractError, match=r"0\.035 for 3\.5%"):
        Contract.from_dict(raw).replace(discount_rate=3.5)


def test_family_rules_checked():
    raw = {"name": "x", "outcome": {"metric": "y", "unit": "u", "direction": "increase"}}
    with pytest.raises(ContractError, match="payment.share"):
        Contract.from_dict({**raw, "payment": {"family": "fiscal_share"}})
    with pytest.raises(ContractError, match="payment.thresholds.overall"):
        Contract.from_dict({**raw, "payment": {"family": "pre_post_target", "final_payment": 1}})


def test_yaml_is_read_safely(tmp_path):
    path = write(tmp_path, "name: !!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ContractError, match="could not be parsed"):
        Contract.from_file(path)


def test_missing_file():
    with pytest.raises(ContractError, match="not found"):
        Contract.from_file("no/such/contract.yaml")


def test_estimate_of_another_outcome_refused():
    r = Result("matched", tidy_table(["att"], [0.1], [0.03]), nobs=10, outcome="employed_6m")
    c = Contract.from_file(EXAMPLES / "employment_rate_card.yaml")
    with pytest.raises(ContractError, match="'employed_6m' but the contract pays on 'employed_12m'"):
        settle(c, r)


def test_per_cohort_rule_without_cohorts_refused():
    with pytest.raises(ContractError, match="per-cohort rule"):
        settle(peterborough(), -0.1, se=0.05, comparison=1.0)


def test_relative_rule_without_comparison_refused():
    with pytest.raises(ContractError, match="comparison group's level"):
        settle(peterborough(), -0.1, se=0.05, overall_only=True)


# -- display -----------------------------------------------------------------------------------
def test_settlement_displays():
    c = Contract.from_file(EXAMPLES / "reoffending_peterborough.yaml").replace(name="<script>x</script>")
    s = settle(c, -0.12, se=0.05, comparison={"overall": 1.5, 1: 1.5, 2: 1.5}, cohorts={1: (-0.16, 0.06), 2: -0.08})
    html = s._repr_html_()
    assert "<script>" not in html and "&lt;script&gt;" in html
    json.dumps(s.to_dict())
    assert isinstance(s.to_frame(), pd.DataFrame) and set(s.to_frame("comparison")["basis"].str[:14]) == {
        "counterfactual"
    }
    assert "GBP" in s.summary() and s.sentence in s.summary()
    assert type(s.plot()).__name__ == "Figure"


def test_settlement_sensitivity_sorted_by_swing():
    c = Contract.from_file(EXAMPLES / "employment_rate_card.yaml")
    t = settlement_sensitivity(c, 0.1, se=0.03)
    assert t["swing"].is_monotonic_decreasing
    assert t.iloc[0]["parameter"] == "effect"
    lo, hi = 0.1 - stats.norm.ppf(0.975) * 0.03, 0.1 + stats.norm.ppf(0.975) * 0.03
    assert (t.iloc[0]["low"], t.iloc[0]["high"]) == pytest.approx((lo, hi))
    unused = t.set_index("parameter").loc["decay"]
    assert unused["swing"] == 0 and "does not enter" in unused["note"]


def test_brentq_is_what_irr_uses():
    # Guard: the IRR agrees with a direct root of the NPV polynomial.
    flows, times = np.array([-1000.0, 300.0, 400.0, 500.0]), np.array([0.0, 1.0, 2.0, 3.0])
    root = optimize.brentq(lambda r: np.sum(flows / (1 + r) ** times), -0.5, 1.0)
    assert irr(flows, times) == pytest.approx(root, abs=1e-10)
