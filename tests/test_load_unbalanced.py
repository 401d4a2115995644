"""Unbalanced panels load with a note and an attrition table; repeated cross-sections; weights at load time."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator import DataError, DroppedUnitsWarning, WeightsError, load_individuals, load_panel
from evaluator.data import simulate
from evaluator.data.load import attrition_table, load_cross_sections, read_schema
from evaluator.data.validate import panel_balance

COLS = {"unit": "id", "time": "t", "outcome": "y", "cohort": "g"}
RC = {"time": "year", "outcome": "y", "cohort": "g"}


def no_warnings(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


def small_unbalanced() -> pd.DataFrame:
    """Periods 1..4; unit 1 complete, 2 leaves after 2, 3 joins in 2, 4 (cohort 3) skips 2, 5 (cohort 3) complete."""
    rows = {1: ([1, 2, 3, 4], 0), 2: ([1, 2], 0), 3: ([2, 3, 4], 0), 4: ([1, 3, 4], 3), 5: ([1, 2, 3, 4], 3)}
    out = [{"id": u, "t": t, "y": float(u + t), "g": g} for u, (ts, g) in rows.items() for t in ts]
    return pd.DataFrame(out)


# -- unbalanced panels -------------------------------------------------------------------------------------------------
def test_unbalanced_panel_loads_with_a_note_and_the_attrition_table():
    frame = small_unbalanced()
    out = no_warnings(load_panel, frame, columns=COLS)
    assert len(out) == len(frame), "nothing is dropped for being unbalanced"
    meta = out.attrs["evaluator"]
    assert meta["attrition"] == {0: {4: 1, 3: 1, 2: 1}, 3: {4: 1, 3: 1}}
    b = meta["balance"]
    assert (b["units"], b["periods"], b["balanced"], b["incomplete"]) == (5, 4, False, 3)
    assert (b["enter_late"], b["leave_early"], b["gaps"], b["single_period"]) == (1, 1, 1, 0)
    assert (b["leave_before_treatment"], b["no_base_period"]) == (0, 1)
    assert meta["notes"][0] == (
        "unbalanced panel: 3 of 5 units are not observed in all 4 periods (1 enter after the first period, "
        "1 leave before the last, 1 miss periods in between); effects are averages over the units observed in each "
        "period, so attrition that depends on the outcome can bias them"
    )
    assert any("not observed in the period just before it" in n for n in meta["notes"])
    table = attrition_table(out)
    assert table.index.name == "periods observed" and table.columns.name == "cohort"
    assert table.index.tolist() == [4, 3, 2] and table.columns.tolist() == [0, 3]
    assert table.to_dict() == {0: {4: 1, 3: 1, 2: 1}, 3: {4: 1, 3: 1, 2: 0}}


def test_balanced_panel_has_no_note_and_a_one_row_table():
    sim = simulate.sick_leave_sib(seed=1)
    out = no_warnings(load_panel, sim.data, columns=sim.columns)
    meta = out.attrs["evaluator"]
    assert meta["notes"] == [] and meta["balance"]["balanced"] is True and meta["dropped"] == {}
    assert meta["attrition"] == {0: {48: 400}, 13: {48: 200}, 25: {48: 200}, 37: {48: 200}}
    assert attrition_table(out).shape == (1, 4)


def test_attrition_table_of_a_simulated_panel_counts_every_unit():
    sim = simulate.sick_leave_sib(seed=2, attrition=0.03, attrition_outcome=0.3)
    out = no_warnings(load_panel, sim.data, columns=sim.columns)
    table = attrition_table(out)
    expected = sim.data.groupby("employee").agg(g=("first_treated", "first"), n=("month", "size"))
    expected = expected.groupby(["n", "g"]).size().unstack(fill_value=0).sort_index(ascending=False)
    np.testing.assert_array_equal(table.to_numpy(), expected.to_numpy())
    assert table.to_numpy().sum() == sim.data["employee"].nunique()
    assert out.attrs["evaluator"]["balance"]["leave_before_treatment"] > 0
    assert any("leave before their first treated period" in n for n in out.attrs["evaluator"]["notes"])
    # the table is also computed for a frame that lost its attrs
    bare = out.copy()
    bare.attrs["evaluator"] = {k: v for k, v in out.attrs["evaluator"].items() if k != "attrition"}
    pd.testing.assert_frame_equal(attrition_table(bare), table)
    with pytest.raises(DataError, match="pass a frame returned by load_panel"):
        attrition_table(pd.DataFrame({"a": [1]}))


def test_no_pre_period_rule_is_per_unit_in_an_unbalanced_panel():
    frame = small_unbalanced()
    # unit 6 joins cohort 3 at adoption: others of its cohort have pre-periods, it has none
    frame = pd.concat([frame, pd.DataFrame({"id": 6, "t": [3, 4], "y": 1.0, "g": 3})], ignore_index=True)
    with pytest.warns(DroppedUnitsWarning, match=r"dropped 1 unit\(s\) \(2 rows\) never observed before"):
        out = load_panel(frame, columns=COLS)
    assert 6 not in set(out["id"]) and 4 in set(out["id"]), "a gap before adoption is kept, a late joiner dropped"
    meta = out.attrs["evaluator"]
    assert meta["dropped"]["no_pre_period"] == {"units": 1, "rows": 2}
    assert meta["notes"][0].startswith("dropped 1 unit(s) (2 rows) never observed before their first treated period")
    assert meta["notes"][1].startswith("unbalanced panel: 3 of 5 units")


def test_panel_balance_on_a_large_frame_matches_groupby():
    sim = simulate.sick_leave_sib(employees_per_municipality=200, attrition=0.02, joining=0.2, seed=9)
    d = sim.data
    b = panel_balance(d, "employee", "month", "first_treated")
    s = d.groupby("employee")["month"].agg(["min", "max", "size"])
    assert b["enter_late"] == int((s["min"] > 1).sum()) and b["leave_early"] == int((s["max"] < 48).sum())
    assert b["gaps"] == 0 and b["incomplete"] == int((s["size"] < 48).sum())
    g = d.groupby("employee")["first_treated"].first()
    assert b["leave_before_treatment"] == int(((g > 0) & (s["max"] < g)).sum())


def test_missing_unit_role_points_to_cross_sections():
    frame = small_unbalanced().drop(columns="id")
    with pytest.raises(DataError, match=r"required role 'unit'[\s\S]*repeated cross-sections: load them with"):
        load_panel(frame, columns={"time": "t", "outcome": "y", "cohort": "g"})


# -- panel weights -----------------------------------------------------------------------------------------------------
def test_panel_weights_constant_within_units_load():
    frame = small_unbalanced().assign(w=lambda d: d["id"] * 0.5)
    out = no_warnings(load_panel, frame, columns={**COLS, "weight": "w"})
    assert out.attrs["evaluator"]["columns"]["weight"] == "w"


def test_panel_weight_varying_within_a_unit():
    frame = small_unbalanced().assign(w=1.0)
    frame.loc[frame["id"] == 5, "w"] = [1.0, 1.0, 2.0, 2.0]
    with pytest.raises(WeightsError) as info:
        load_panel(frame, columns={**COLS, "weight": "w"})
    assert str(info.value) == (
        "1 problem found in the DataFrame:\n"
        "1. column 'w': the weights vary within 1 of 5 units; sampling weights belong to a unit of the panel\n"
        "    at units 5\n"
        "    fix: give each unit one weight in every period, e.g. its weight at entry: "
        "data['w'] = data.groupby('id')['w'].transform('first')"
    )


def test_panel_weight_faults_are_one_error_each_reported_once():
    frame = small_unbalanced().assign(w=1.0)
    frame.loc[0, "w"] = np.nan  # unit 1
    frame.loc[4, "w"] = -2.0  # unit 2
    with pytest.raises(WeightsError) as info:
        load_panel(frame, columns={**COLS, "weight": "w"})
    err = info.value
    assert isinstance(err, DataError)
    assert [p.what for p in err.problems] == [
        "1 missing value(s) in required role 'weight'",
        "weight must be at least 0",
    ]
    assert "data rows 1" in str(err) and "data rows 5" in str(err)


def test_zero_weights_everywhere():
    frame = small_unbalanced().assign(w=0)
    with pytest.raises(WeightsError, match="the weights are zero everywhere[\\s\\S]*give positive weights"):
        load_panel(frame, columns={**COLS, "weight": "w"})


def test_other_faults_stay_a_plain_data_error():
    frame = small_unbalanced().assign(w=1.0)
    frame.loc[0, "y"] = np.nan
    with pytest.raises(DataError) as info:
        load_panel(frame, columns={**COLS, "weight": "w"})
    assert type(info.value) is DataError


def test_individuals_zero_weights():
    sim = simulate.employment_sib(n_pool=300, seed=1)
    data = sim.data.assign(w=0.0)
    with pytest.raises(WeightsError, match="zero everywhere"):
        load_individuals(data, columns={**sim.columns, "weight": "w"})
    assert load_individuals(sim.data, columns=sim.columns).attrs["evaluator"]["notes"] == []


# -- repeated cross-sections -------------------------------------------------------------------------------------------
def survey(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    muni = rng.integers(1, 7, n)
    return pd.DataFrame(
        {
            "year": rng.integers(2001, 2005, n),
            "muni": muni,
            "g": pd.Series(muni).map({1: 0, 2: 0, 3: 2003, 4: 2003, 5: 2004, 6: 0}).to_numpy(),
            "y": rng.normal(size=n),
            "w": rng.uniform(0.5, 2.0, n),
            "age": rng.integers(20, 60, n),
        }
    )


def test_cross_section_schema_is_a_table_schema_without_a_required_unit():
    spec = read_schema("cross_sections")
    fields = {f["name"]: f for f in spec["fields"]}
    assert list(fields) == ["time", "outcome", "cohort", "unit", "cluster", "covariates", "weight"]
    required = {n for n, f in fields.items() if f["x-evaluator"]["presence"] == "required"}
    assert required == {"time", "outcome", "cohort"}
    assert "primaryKey" not in spec and spec["missingValues"] == read_schema("panel")["missingValues"]


def test_cross_sections_load_from_csv(tmp_path: Path):
    data = survey()
    path = tmp_path / "survey.csv"
    data.assign(g=data["g"].replace(0, np.nan)).to_csv(path, index=False)
    cols = {**RC, "cluster": "muni", "weight": "w", "covariates": ["age"]}
    out = no_warnings(load_cross_sections, path, columns=cols)
    assert len(out) == len(data) and set(out["g"]) == {0, 2003, 2004}, "never treated (empty) is coded 0"
    meta = out.attrs["evaluator"]
    assert meta["schema"] == "cross_sections" and meta["columns"]["weight"] == "w" and meta["dropped"] == {}
    expected = data.groupby(["g", "year"]).size()
    assert {(g, t): n for g, row in meta["observations"].items() for t, n in row.items()} == expected.to_dict()
    assert meta["notes"] == []


def test_cross_sections_with_person_ids_across_periods_and_varying_weights():
    data = survey().assign(pid=lambda d: np.arange(len(d)) % 150)  # ids repeat across years ...
    data = data.drop_duplicates(["pid", "year"]).reset_index(drop=True)  # ... but not within one
    data["w"] = np.where(data["year"] == 2001, 1.0, 2.0)  # weights may change between waves
    out = no_warnings(load_cross_sections, data, columns={**RC, "unit": "pid", "weight": "w"})
    assert any("persons appear in more than one period" in n for n in out.attrs["evaluator"]["notes"])


def test_cross_sections_with_a_person_twice_in_a_period_is_a_panel():
    data = survey().assign(pid=lambda d: np.arange(len(d)))
    data.loc[7, ["pid", "year"]] = data.loc[3, ["pid", "year"]].to_numpy()
    with pytest.raises(DataError, match=r"1 person id\(s\) repeat within a period \(2 rows\): these data are a panel"):
        load_cross_sections(data, columns={**RC, "unit": "pid"})
    with pytest.raises(DataError, match=r"at units 3 \(data rows 4, 8\)\n    fix: load one row per unit and period"):
        load_cross_sections(data, columns={**RC, "unit": "pid"})


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda d: d.assign(w=d["w"].where(d.index != 5, -1.0)), WeightsError, r"weight must be at least 0\n.*rows 6"),
        (
            lambda d: d.assign(w=d["w"].where(d.index != 2)),
            WeightsError,
            r"missing value\(s\) in required role 'weight'",
        ),
        (lambda d: d.assign(w=0.0), WeightsError, "the weights are zero everywhere"),
        (lambda d: d.assign(g=d["g"].where(d.index != 9, 2010)), DataError, r"outside the observed periods 2001..2004"),
        (lambda d: d.assign(g=0), DataError, "there are no treated rows"),
        (lambda d: d.assign(year=d["year"].astype(float).where(d.index != 0, 2001.5)), DataError, "whole number"),
        (lambda d: d.assign(year=d["year"] - 2001), DataError, "period 0 is observed"),
        (lambda d: d.drop(columns="g"), DataError, r"column 'g': missing column for role 'cohort'"),
    ],
)
def test_bad_cross_sections(change, error, match):
    with pytest.raises(error, match=match):
        load_cross_sections(change(survey()), columns={**RC, "weight": "w"})


def test_cross_sections_need_a_cohort():
    with pytest.raises(DataError, match=r"no column given for the required role 'cohort'"):
        load_cross_sections(survey(), columns={"time": "year", "outcome": "y"})


def test_cross_section_cohort_without_pre_period_is_dropped():
    data = survey()
    data.loc[data["muni"] == 4, "g"] = 2001  # a cohort treated from the first year: no pre-period
    data["pid"] = np.arange(len(data))
    n_bad = int((data["g"] == 2001).sum())
    with pytest.warns(DroppedUnitsWarning, match=r"dropped 1 cohort\(s\) \(\d+ rows\) never observed before"):
        out = load_cross_sections(data, columns={**RC, "unit": "pid"})
    assert 2001 not in set(out["g"]) and len(out) == len(data) - n_bad
    meta = out.attrs["evaluator"]
    assert meta["dropped"]["no_pre_period"] == {"cohorts": 1, "units": n_bad, "rows": n_bad}
    assert meta["notes"][0].startswith("dropped 1 cohort(s)")


def test_cross_section_empty_cells_are_a_note():
    data = survey()
    data = data[~((data["g"] == 2004) & (data["year"] == 2002))]
    out = no_warnings(load_cross_sections, data, columns=RC)
    assert out.attrs["evaluator"]["notes"] == ["1 of the 12 cohort-by-period cells have no observations"]


def test_cross_section_file_errors_name_the_file(tmp_path: Path):
    path = tmp_path / "bad.csv"
    path.write_text(
        textwrap.dedent("""\
        year,y,g
        2001,1.0,0
        2002,x,2002
        """)
    )
    with pytest.raises(DataError, match=r"found in .*bad.csv[\s\S]*outcome must be numeric"):
        load_cross_sections(path, columns=RC)


def test_cross_section_faults_are_all_listed_in_one_error():
    data = pd.DataFrame({"year": [1, 2, 3], "y": [1.0, np.nan, 2.0], "g": [0, 0, 0]})
    with pytest.raises(DataError) as info:
        load_cross_sections(data, columns=RC)
    assert [p.what for p in info.value.problems] == [
        "1 missing value(s) in required role 'outcome'",
        "there are no treated rows: every cohort is 0 or empty",
    ]
