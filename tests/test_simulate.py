"""Synthetic data: deterministic, valid against its schema, and its truth is what it says."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluator import load_individuals, load_panel
from evaluator.data import simulate


@pytest.mark.parametrize("name", sorted(simulate.SCENARIOS))
def test_same_seed_same_data_and_valid(name):
    small = {
        "sick_leave_sib": {},
        "employment_sib": {"n_pool": 2_000},
        "reoffending_sib": {"n_pool": 2_000},
        "single_municipality_sib": {},
    }[name]
    gen = simulate.SCENARIOS[name]
    a, b, c = gen(seed=11, **small), gen(seed=11, **small), gen(seed=12, **small)
    pd.testing.assert_frame_equal(a.data, b.data)
    assert not a.data.equals(c.data)
    loader = load_panel if a.schema == "panel" else load_individuals
    loader(a.data, columns=a.columns)


def test_sick_leave_design():
    sim = simulate.sick_leave_sib(seed=1)
    d = sim.data
    assert d.shape == (20 * 50 * 48, 7)
    munis = d.groupby("first_treated")["municipality"].nunique()
    assert munis.loc[0] == 8 and set(munis.index) == {0, 13, 25, 37}
    # Effects grow with time since adoption and differ by wave.
    dyn = sim.truth["dynamic"]
    assert dyn.loc[0] > dyn.loc[6] > dyn.loc[11]
    group = sim.truth["group"]
    assert group.loc[13] < group.loc[37] < 0
    # Selection on levels: earlier adopters had more sick leave before anyone was treated.
    pre = d[d["month"] < 13].groupby("first_treated")["sick_days"].mean()
    assert pre.loc[13] > pre.loc[0]


def test_sick_leave_truth_matches_outcome_means():
    # Known truth: with the effect switched off the treated-minus-control change is ~0; with it on, the
    # truth's simple ATT is recovered by an oracle that uses each unit's own untreated mean path.
    sim = simulate.sick_leave_sib(seed=3, employees_per_municipality=400, effect="constant", effect_size=-0.5)
    assert sim.truth["simple"] == pytest.approx(-0.5, abs=1e-12)
    d = sim.data
    treated = d["first_treated"] > 0
    post = treated & (d["month"] >= d["first_treated"])
    # 2x2 on the last wave's last pre-period vs first post-period is unbiased for -0.5.
    g = 37
    sub = d[(d["month"].isin([g - 1, g])) & d["first_treated"].isin([0, g])]
    means = sub.groupby(["first_treated", "month"])["sick_days"].mean()
    did = (means[(g, g)] - means[(g, g - 1)]) - (means[(0, g)] - means[(0, g - 1)])
    assert did == pytest.approx(-0.5, abs=0.25)
    assert post.sum() > 0


def test_sick_leave_scales_by_parameter():
    sim = simulate.sick_leave_sib(
        n_municipalities=8, employees_per_municipality=10, n_periods=24, waves=(7, 13, 19), municipal_rho=0.8, seed=0
    )
    assert len(sim.data) == 8 * 10 * 24
    assert sim.data.groupby("first_treated")["municipality"].nunique().min() >= 1


def test_employment_truth_and_selection():
    sim = simulate.employment_sib(n_pool=20_000, seed=5)
    d = sim.data
    assert d["treated"].sum() == 300
    # Selection on observables: the treated are younger and were employed less before.
    means = d.groupby("treated")[["age", "emp_y1"]].mean()
    assert means.loc[1, "age"] < means.loc[0, "age"] and means.loc[1, "emp_y1"] < means.loc[0, "emp_y1"]
    for col, att in sim.truth["att"].items():
        assert 0.05 < att < 0.15, col
        assert set(d[col].unique()) <= {0, 1}


def test_reoffending_truth():
    sim = simulate.reoffending_sib(seed=5, effect=-0.1)
    assert sim.truth["relative"] == pytest.approx(-0.1)
    assert sim.truth["att"] < 0
    assert set(sim.truth["att_by_cohort"]) == {1, 2}
    assert np.issubdtype(sim.data["reconvictions_12m"].dtype, np.integer)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"waves": (1, 5)}, "every wave has a pre-period"),
        ({"n_municipalities": 0}, "n_municipalities=0"),
        ({"effect": "growing"}, "effect='growing'"),
        ({"n_municipalities": 3}, "too few for 3 waves"),
    ],
)
def test_bad_parameters(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate.sick_leave_sib(**kwargs)


# -- one treated municipality (synthetic control) ---------------------------------------------------------------------
@pytest.mark.parametrize("n_control", [30, 98])
def test_single_municipality_design(n_control):
    sim = simulate.single_municipality_sib(n_control=n_control, n_pre=10, n_post=4, seed=3)
    d = sim.data
    assert d.shape == ((n_control + 1) * 14, 5) and d["municipality"].nunique() == n_control + 1
    treated = d.loc[d["treated"] == 1]
    assert set(treated["municipality"]) == {"Municipality 01"} == {sim.truth["treated_unit"]}
    assert treated["year"].min() == sim.truth["first_treated"] == 2010 + 10 and len(treated) == 4
    assert (d.loc[d["municipality"] == "Municipality 01", "first_treated"] == 2020).all()
    assert (d.loc[d["municipality"] != "Municipality 01", "first_treated"] == 0).all()
    assert sim.truth["att"] == sim.truth["effect"] == -3.0
    assert sum(sim.truth["donors"].values()) == pytest.approx(1.0)
    load_panel(d, columns=sim.columns)


def test_single_municipality_lies_inside_the_controls_hull_and_carries_the_true_effect():
    # without noise and effect, the treated path is exactly its donors' mix: the truth is known exactly
    sim = simulate.single_municipality_sib(seed=5, effect=0.0)
    wide = sim.data.pivot(index="year", columns="municipality", values="readmissions")
    donors = sim.truth["donors"]
    mixed = sum(w * wide[name] for name, w in donors.items())
    # the mix reproduces the treated path up to the noise (sd 0.5 for the treated unit, less for the mix)
    assert np.sqrt(np.mean((wide["Municipality 01"] - mixed) ** 2)) < 1.5
    shifted = simulate.single_municipality_sib(seed=5, effect=-2.5).data
    diff = shifted["readmissions"] - sim.data["readmissions"]
    assert np.allclose(diff, -2.5 * shifted["treated"])


def test_single_municipality_monthly():
    sim = simulate.single_municipality_sib(frequency="month", n_pre=24, n_post=12, seed=1)
    assert sim.columns["time"] == "month" and sorted(sim.data["month"].unique()) == list(range(1, 37))
    assert sim.truth["first_treated"] == 25


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_control": 29}, "n_control=29: a single treated municipality needs 30 to 98"),
        ({"n_control": 99}, "n_control=99"),
        ({"n_control": 40.0}, "n_control=40.0"),
        ({"n_pre": 3}, "n_pre=3"),
        ({"frequency": "week"}, "frequency='week'"),
        ({"n_donors": 0}, "n_donors=0"),
    ],
)
def test_single_municipality_bad_parameters_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        simulate.single_municipality_sib(**kwargs)
