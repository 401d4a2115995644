"""sick_leave_sib with attrition: employees leave and join, the truth is over the rows observed."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evaluator import DroppedUnitsWarning, load_panel
from evaluator.data import datasets, simulate

OLD_TRUTH_KEYS = {"att_gt", "simple", "dynamic", "dynamic_overall", "group", "group_overall", "effect_by_cohort_event"}


# -- defaults unchanged -----------------------------------------------------------------------------------------------
def test_defaults_still_make_the_shipped_data_set():
    generator, kwargs = datasets.RECIPES["sick_leave_sib"]
    assert generator is simulate.sick_leave_sib
    shipped = datasets.load("sick_leave_sib")
    sim = simulate.sick_leave_sib(**kwargs)
    pd.testing.assert_frame_equal(sim.data, shipped, check_dtype=False)
    assert (sim.data.dtypes == "int64").all()
    data, meta = datasets.generate("sick_leave_sib")
    assert meta["truth"] == datasets.truth("sick_leave_sib"), "the truth written beside the data is unchanged"
    explicit = simulate.sick_leave_sib(**kwargs, attrition=0.0, attrition_outcome=0.0, joining=0.0)
    pd.testing.assert_frame_equal(explicit.data, sim.data)
    assert set(sim.truth) == OLD_TRUTH_KEYS | {"for_rows"}


@pytest.mark.parametrize("kwargs", [{"seed": 1}, {"seed": 4, "effect": "constant", "municipal_rho": 0.5}])
def test_defaults_are_a_balanced_panel_and_for_rows_reproduces_the_truth(kwargs):
    sim = simulate.sick_leave_sib(**kwargs)
    assert sim.data.groupby("employee").size().eq(48).all()
    again = sim.truth["for_rows"](sim.data)
    pd.testing.assert_frame_equal(again["att_gt"], sim.truth["att_gt"])
    for key in ("simple", "dynamic_overall", "group_overall"):
        assert again[key] == sim.truth[key]
    assert sim.params["attrition"] == sim.params["joining"] == sim.params["attrition_outcome"] == 0.0


# -- rates -------------------------------------------------------------------------------------------------------------
def _spells(data: pd.DataFrame) -> pd.DataFrame:
    g = data.groupby("employee")["month"]
    return pd.DataFrame({"first": g.min(), "last": g.max(), "n": g.size()})


def test_attrition_and_joining_rates_over_a_large_draw():
    T = 48
    sim = simulate.sick_leave_sib(employees_per_municipality=500, attrition=0.03, joining=0.25, seed=7)
    d = sim.data
    assert not d.duplicated(["employee", "month"]).any()
    s = _spells(d)
    assert len(s) == 20 * 500, "every employee is observed at least once (joiners from their month of joining)"
    assert (s["n"] == s["last"] - s["first"] + 1).all(), "no gaps: an employee who leaves never comes back"
    assert s["n"].min() < T and (s["n"] == T).any(), "an unbalanced panel"
    # joining: exactly the share asked for, in months spread evenly over 2..T
    joined = s["first"] > 1
    assert joined.mean() == pytest.approx(0.25, abs=1e-12)
    assert s.loc[joined, "first"].between(2, T).all()
    assert s.loc[joined, "first"].mean() == pytest.approx((2 + T) / 2, abs=1.0)
    # leaving: the monthly hazard among employee-months that have a next month
    at_risk = (d["month"] < T).sum()
    leavers = (s["last"] < T).sum()
    assert leavers / at_risk == pytest.approx(0.03, abs=0.0015)
    assert len(d) < 20 * 500 * T


def test_only_joining_or_only_leaving():
    only_join = _spells(simulate.sick_leave_sib(joining=0.3, seed=2).data)
    assert (only_join["last"] == 48).all() and (only_join["first"] > 1).mean() == pytest.approx(0.3)
    only_leave = _spells(simulate.sick_leave_sib(attrition=0.05, seed=2).data)
    assert (only_leave["first"] == 1).all() and (only_leave["last"] < 48).any()


def test_attrition_removes_rows_and_leaves_the_outcomes_as_they_were():
    full = simulate.sick_leave_sib(seed=3).data
    sim = simulate.sick_leave_sib(seed=3, attrition=0.04, attrition_outcome=0.5, joining=0.2)
    merged = sim.data.merge(full, on=["employee", "month"], suffixes=("", "_full"), validate="1:1")
    assert len(merged) == len(sim.data)
    for col in ("sick_days", "first_treated", "municipality", "age", "tenure"):
        assert (merged[col] == merged[f"{col}_full"]).all()
    again = simulate.sick_leave_sib(seed=3, attrition=0.04, attrition_outcome=0.5, joining=0.2)
    pd.testing.assert_frame_equal(again.data, sim.data)


# -- outcome-dependent attrition -------------------------------------------------------------------------------------
def _leaver_gap(data: pd.DataFrame, T: int = 48) -> float:
    """Mean sick days (minus the month's mean) in the month before leaving, minus the same among those who stay."""
    d = data[data["month"] < T].copy()
    last = data.groupby("employee")["month"].transform("max").loc[d.index]
    d["leaves"] = last == d["month"]
    d["dev"] = d["sick_days"] - d.groupby("month")["sick_days"].transform("mean")
    return float(d.loc[d["leaves"], "dev"].mean() - d.loc[~d["leaves"], "dev"].mean())


def test_outcome_dependent_attrition_makes_leavers_have_higher_outcomes():
    kwargs = {"employees_per_municipality": 300, "attrition": 0.03, "seed": 11}
    dependent = simulate.sick_leave_sib(attrition_outcome=0.4, **kwargs).data
    independent = simulate.sick_leave_sib(**kwargs).data
    assert _leaver_gap(dependent) > 0.8
    assert abs(_leaver_gap(independent)) < 0.15
    # Leavers had more sick leave over their whole spell too (a selected sample remains).
    s = _spells(dependent)
    mean_days = dependent.groupby("employee")["sick_days"].mean()
    assert mean_days[s["last"] < 48].mean() > mean_days[s["last"] == 48].mean()


def test_outcome_dependent_attrition_differs_by_treatment():
    # The treatment lowers sick leave, so treated employees leave less often after adoption than the never treated.
    sim = simulate.sick_leave_sib(
        employees_per_municipality=400, attrition=0.03, attrition_outcome=0.6, effect="constant", effect_size=-1.5
    )
    d = sim.data
    s = _spells(d)
    post = d[(d["month"] >= 37) & (d["month"] < 48)]
    leave = post.assign(leaves=post["month"].to_numpy() == s["last"].reindex(post["employee"]).to_numpy())
    rate = leave.groupby(leave["first_treated"] > 0)["leaves"].mean()
    assert rate.loc[True] < rate.loc[False]


# -- truth -------------------------------------------------------------------------------------------------------------
def test_truth_is_over_the_rows_observed():
    sim = simulate.sick_leave_sib(seed=5, attrition=0.03, attrition_outcome=0.4, joining=0.2)
    d, truth = sim.data, sim.truth
    tau = truth["effect_by_cohort_event"]
    treated = d[d["first_treated"] > 0]
    cells = treated.groupby(["first_treated", "month"]).size()
    att = truth["att_gt"].set_index(["cohort", "time"])
    assert list(att.index) == list(cells.index), "one cell per (cohort, month) with a treated employee observed"
    assert (att["event_time"] == att.index.get_level_values(1) - att.index.get_level_values(0)).all()
    # The effect is the same for every employee of a cohort in a month (up to the floor of the mean at 0.05).
    expected = tau(att.index.get_level_values(0).to_numpy(), att.index.get_level_values(1).to_numpy())
    np.testing.assert_allclose(att["att"], expected, atol=1e-9)
    # simple: the mean effect over the treated employee-months observed
    post = treated[treated["month"] >= treated["first_treated"]]
    assert truth["simple"] == pytest.approx(tau(post["first_treated"].to_numpy(), post["month"].to_numpy()).mean())
    # dynamic: by event time, cells weighted by the employees observed in them
    e = post["month"] - post["first_treated"]
    by_e = pd.Series(tau(post["first_treated"].to_numpy(), post["month"].to_numpy()), index=post.index).groupby(e)
    np.testing.assert_allclose(truth["dynamic"].to_numpy(), by_e.mean().to_numpy())
    # group_overall: cohorts weighted by their employees observed from adoption on
    n_g = post.groupby("first_treated")["employee"].nunique()
    assert truth["group_overall"] == pytest.approx(
        np.average(truth["group"], weights=n_g.reindex(truth["group"].index))
    )
    for key in ("simple", "dynamic_overall", "group_overall"):
        assert truth["for_rows"](d)[key] == truth[key]


def test_truth_for_the_loaded_panel():
    # Joiners of an adopting municipality who arrive after adoption are dropped by load_panel; for_rows gives the
    # truth over what is left.
    sim = simulate.sick_leave_sib(seed=6, attrition=0.02, joining=0.3)
    with pytest.warns(DroppedUnitsWarning, match="never observed before their first treated period"):
        panel = load_panel(sim.data, columns=sim.columns)
    assert len(panel) < len(sim.data)
    truth = sim.truth["for_rows"](panel)
    kept = panel[(panel["first_treated"] > 0) & (panel["month"] >= panel["first_treated"])]
    tau = sim.truth["effect_by_cohort_event"]
    assert truth["simple"] == pytest.approx(tau(kept["first_treated"].to_numpy(), kept["month"].to_numpy()).mean())
    assert truth["simple"] != sim.truth["simple"]
    with pytest.raises(KeyError, match="for_rows needs the columns"):
        sim.truth["for_rows"](panel.rename(columns={"month": "period"}))
    with pytest.raises(ValueError, match="outside the simulated grid"):
        sim.truth["for_rows"](pd.DataFrame({"employee": [1], "month": [49]}))


def test_unbalanced_simulation_is_a_valid_panel():
    sim = simulate.sick_leave_sib(seed=8, attrition=0.02, attrition_outcome=0.3)  # no joiners: nothing dropped
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        panel = load_panel(sim.data, columns=sim.columns)
    assert len(panel) == len(sim.data)
    assert panel.attrs["evaluator"]["balance"]["balanced"] is False
    assert panel.attrs["evaluator"]["notes"][0].startswith("unbalanced panel")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"attrition": 1.0}, r"attrition=1.0 must be a probability in \[0, 1\)"),
        ({"attrition": -0.1}, "attrition=-0.1 must be a probability"),
        ({"joining": 1.5}, "joining=1.5 must be a probability"),
        ({"attrition": float("nan")}, "attrition=nan must be a probability"),
        ({"attrition": 0.1, "attrition_outcome": float("inf")}, "attrition_outcome=inf must be a finite number"),
        ({"attrition_outcome": 0.3}, r"attrition_outcome=0.3 needs attrition > 0"),
        ({"attrition": "0.1"}, "attrition='0.1' must be a probability"),
    ],
)
def test_bad_attrition_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate.sick_leave_sib(**kwargs)
