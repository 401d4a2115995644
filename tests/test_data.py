"""Loading and validating input data: every defect named, all in one error."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import evaluator
from evaluator import DataError, DroppedUnitsWarning, load_individuals, load_panel
from evaluator.data import simulate

PANEL_COLUMNS = {"unit": "unit", "time": "year", "outcome": "y", "cohort": "g", "cluster": "muni"}


def write(tmp_path: Path, text: str, name: str = "data.csv") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def good_panel() -> pd.DataFrame:
    rows = []
    for unit, g, muni in [(1, 2002, "A"), (2, 2003, "A"), (3, 0, "B"), (4, 0, "B")]:
        for year in (2001, 2002, 2003):
            rows.append({"unit": unit, "year": year, "y": unit + year / 1000, "g": g, "muni": muni})
    return pd.DataFrame(rows)


def test_valid_panel_round_trips_with_own_names(tmp_path):
    frame = good_panel()
    path = tmp_path / "panel.parquet"
    frame.to_parquet(path)
    out = load_panel(path, columns=PANEL_COLUMNS)
    assert list(out.columns) == list(frame.columns)
    assert len(out) == len(frame)
    assert out.attrs["evaluator"]["columns"]["outcome"] == ["y"]
    pd.testing.assert_frame_equal(out.reset_index(drop=True), frame, check_dtype=False)


def test_dataframe_input_is_not_modified():
    frame = good_panel().assign(g=lambda d: d["g"].replace(0, np.nan))
    before = frame.copy()
    out = load_panel(frame, columns=PANEL_COLUMNS)
    pd.testing.assert_frame_equal(frame, before)
    assert set(out["g"].unique()) == {2002, 2003, 0}, "never-treated (missing) is coded 0"


def test_every_defect_in_one_error(tmp_path):
    # One file with each defect of the foundation issue, item 3.
    path = write(
        tmp_path,
        """\
        unit,year,y,g,muni,d
        1,2001,1.0,2002,A,0
        1,2002,2.0,2002,A,1
        1,2003,abc,2002,A,0
        2,2001,1.0,0,B,0
        2,2001,1.5,0,B,0
        2,2002,,2003,C,0
        3,2001,1,2010,D,0
        3,2002,1,2010,D,0
        """,
    )
    columns = {**PANEL_COLUMNS, "treatment": "d", "covariates": ["age"]}
    with pytest.raises(DataError) as info:
        load_panel(path, columns=columns)
    msg = str(info.value)
    expected = [
        "missing column for role 'covariates'",  # missing column
        "outcome must be numeric",  # wrong type / non-numeric outcome
        "missing value(s) in required role 'outcome'",  # missing where required
        "duplicate unit-period rows",
        "cohort changes over time",
        "cohort values outside the observed periods",
        "cluster changes within",
        "treatment switches off",
    ]
    for text in expected:
        assert text in msg, f"{text!r} not in:\n{msg}"
    assert len(info.value.problems) >= len(expected)
    assert "data rows 3" in msg and "units 2" in msg and "fix:" in msg
    # Each problem names its column.
    columns_named = {p.column for p in info.value.problems}
    assert {"age", "y", "g", "muni", "d"} <= columns_named


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("unit,year,y,g,muni\n1,2001,x,0,A\n1,2002,2,0,A\n", r"column 'y': outcome must be numeric"),
        ("unit,year,y,g,muni\n1,2001,1,0,A\n1,2001,2,0,A\n", r"duplicate unit-period rows"),
        ("unit,year,y,g,muni\n1,2001,1,2002,A\n1,2002,2,0,A\n", r"cohort changes over time within 1 unit"),
        ("unit,year,y,g,muni\n1,2001,1,0,A\n1,2002,2,0,B\n", r"cluster changes within 1 unit"),
        ("unit,year,y,g,muni\n1,2001,1,2009,A\n1,2002,2,2009,A\n", r"cohort values outside the observed periods"),
        ("unit,year,y,g,muni\n1,2001.5,1,0,A\n1,2002,2,0,A\n", r"column 'year': time must be a whole number"),
        ("unit,year,y,g,muni\n,2001,1,0,A\n1,2002,2,0,A\n", r"missing value\(s\) in required role 'unit'"),
        ("unit,yr,y,g,muni\n1,2001,1,0,A\n", r"column 'year': missing column for role 'time'[\s\S]*did you mean 'yr'"),
        ("unit,year,y,g,muni\n1,Jan,1,0,A\n", r"column 'year': time must be numeric"),
    ],
)
def test_single_defects_are_named(tmp_path, text, match):
    with pytest.raises(DataError, match=match):
        load_panel(write(tmp_path, text), columns=PANEL_COLUMNS)


def test_treatment_switching_off_and_disagreeing_cohort(tmp_path):
    path = write(tmp_path, "unit,year,y,d\n1,2001,1,1\n1,2002,1,0\n2,2001,1,0\n2,2002,1,0\n")
    with pytest.raises(DataError, match=r"treatment switches off[\s\S]*units 1"):
        load_panel(path, columns={"unit": "unit", "time": "year", "outcome": "y", "treatment": "d"})
    path = write(tmp_path, "unit,year,y,d,g\n1,2001,1,0,2001\n1,2002,1,1,2001\n2,2001,1,0,0\n2,2002,1,0,0\n")
    with pytest.raises(DataError, match="treatment and cohort disagree"):
        load_panel(path, columns={"unit": "unit", "time": "year", "outcome": "y", "treatment": "d", "cohort": "g"})


def test_cohort_derived_from_treatment():
    frame = pd.DataFrame({"id": [1, 1, 1, 2, 2, 2], "t": [1, 2, 3] * 2, "y": np.arange(6.0), "d": [0, 1, 1, 0, 0, 0]})
    out = load_panel(frame, columns={"unit": "id", "time": "t", "outcome": "y", "treatment": "d"})
    assert out["cohort"].tolist() == [2, 2, 2, 0, 0, 0]
    assert out.attrs["evaluator"]["columns"]["cohort"] == "cohort"


def test_neither_cohort_nor_treatment():
    frame = pd.DataFrame({"unit": [1, 1], "time": [1, 2], "outcome": [1.0, 2.0]})
    with pytest.raises(DataError, match="neither a 'cohort'"):
        load_panel(frame)


def test_units_without_pre_period_are_dropped_with_warning():
    frame = good_panel()
    frame.loc[frame["unit"] == 2, "g"] = 2001  # treated in the first observed period
    with pytest.warns(DroppedUnitsWarning, match=r"dropped 1 unit\(s\) \(3 rows\) never observed before"):
        out = load_panel(frame, columns=PANEL_COLUMNS)
    assert 2 not in set(out["unit"])
    assert out.attrs["evaluator"]["dropped"]["no_pre_period"] == {"units": 1, "rows": 3}


def test_no_warning_on_clean_data():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_panel(good_panel(), columns=PANEL_COLUMNS)


def test_period_zero_makes_cohort_zero_ambiguous():
    frame = good_panel().assign(year=lambda d: d["year"] - 2001, g=lambda d: np.where(d["g"] > 0, d["g"] - 2001, 0))
    with pytest.raises(DataError, match="period 0 is observed"):
        load_panel(frame, columns=PANEL_COLUMNS)


@pytest.mark.parametrize(
    ("content", "name", "match"),
    [
        ("", "empty.csv", "the file is empty"),
        ("unit,year,y,g,muni\n", "header.csv", "the data have no rows"),
        (b"\xff\xfe\x00u\x00n\x00i\x00t\xff\xff\xfe", "binary.csv", "not UTF-8|could not be read"),
        ("not parquet", "bad.parquet", "could not be read"),
        ("a,b\n1,2\n", "data.xlsx", "unsupported file type"),
    ],
)
def test_unreadable_and_empty_files(tmp_path, content, name, match):
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    with pytest.raises(DataError, match=match):
        load_panel(path, columns=PANEL_COLUMNS)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_panel(tmp_path / "nope.csv")


def test_unknown_role_is_named_with_suggestion():
    with pytest.raises(DataError, match=r"unknown role 'outcomes'[\s\S]*did you mean 'outcome'"):
        load_panel(good_panel(), columns={**PANEL_COLUMNS, "outcomes": "y"})


def test_negative_weight():
    frame = good_panel().assign(w=1.0)
    frame.loc[3, "w"] = -1
    with pytest.raises(DataError, match=r"column 'w': weight must be at least 0[\s\S]*data rows 4"):
        load_panel(frame, columns={**PANEL_COLUMNS, "weight": "w"})


def test_individuals_valid_and_defects(tmp_path):
    sim = simulate.employment_sib(n_pool=500, seed=4)
    out = load_individuals(sim.data, columns=sim.columns)
    assert len(out) == 800
    bad = sim.data.copy()
    bad.loc[0, "person_id"] = bad.loc[1, "person_id"]
    bad["treated"] = bad["treated"].astype(object)
    bad.loc[5, "treated"] = 2
    bad.loc[7, "age"] = np.nan
    with pytest.raises(DataError) as info:
        load_individuals(bad, columns=sim.columns)
    msg = str(info.value)
    assert "duplicate unit ids" in msg and "data rows 1, 2" in msg
    assert "treat must be one of [0, 1]" in msg and "data rows 6" in msg
    assert "column 'age'" in msg and "missing value" in msg


def test_individuals_need_both_groups():
    frame = pd.DataFrame({"unit": [1, 2], "treat": [1, 1], "outcome": [0.0, 1.0]})
    with pytest.raises(DataError, match="there are no comparison units"):
        load_individuals(frame)


def test_treat_accepts_true_false(tmp_path):
    path = write(tmp_path, "unit,treat,outcome\n1,true,1\n2,false,0\n3,False,1\n")
    assert load_individuals(path)["treat"].tolist() == [1, 0, 0]


def test_schemas_are_table_schemas():
    for name in ("panel", "individuals"):
        schema = evaluator.read_schema(name)
        assert schema["fields"] and schema["primaryKey"]
        for field in schema["fields"]:
            assert field["type"] in {"any", "string", "number", "integer", "boolean"}
            assert field.get("description")


def test_unknown_schema():
    with pytest.raises(DataError, match="unknown schema 'pannel'"):
        load_panel(good_panel(), schema="pannel")


# -- files written the Nordic way: semicolons and decimal commas ---------------------------------------------------
NORDIC = "id;t;y;g\n1;1;2,5;2\n1;2;3,25;2\n2;1;1,0;0\n2;2;1,5;0\n"
NORDIC_COLUMNS = {"unit": "id", "time": "t", "outcome": "y", "cohort": "g"}


def test_decimal_commas_get_a_hint_that_names_the_options(tmp_path):
    path = tmp_path / "dk.csv"
    path.write_text(NORDIC)
    with pytest.raises(DataError, match=r"decimal comma.*decimal=','.*sep=';'") as info:
        load_panel(path, columns=NORDIC_COLUMNS)
    assert "column 'y'" in str(info.value) and "'2,5'" in str(info.value)


def test_sep_and_decimal_read_a_nordic_file(tmp_path):
    path = tmp_path / "dk.csv"
    path.write_text(NORDIC)
    panel = load_panel(path, columns=NORDIC_COLUMNS, sep=";", decimal=",")
    assert panel["y"].tolist() == [2.5, 3.25, 1.0, 1.5]
    people = tmp_path / "people.csv"
    people.write_text("id;treated;age;y\n1;1;30,5;1\n2;0;41,25;0\n")
    frame = load_individuals(
        people, columns={"unit": "id", "treat": "treated", "covariates": ["age"], "outcome": "y"}, sep=";", decimal=","
    )
    assert frame["age"].tolist() == [30.5, 41.25]


def test_bad_sep_and_decimal_are_refused_together(tmp_path):
    path = tmp_path / "dk.csv"
    path.write_text(NORDIC)
    with pytest.raises(DataError, match=r"(?s)2 problems.*sep=''.*decimal='::'"):
        load_panel(path, columns=NORDIC_COLUMNS, sep="", decimal="::")
    with pytest.raises(DataError, match="decimal=';' equals sep"):
        load_panel(path, columns=NORDIC_COLUMNS, sep=";", decimal=";")


def test_numbers_that_are_not_decimal_commas_keep_the_plain_hint(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("id,t,y,g\n1,1,abc,2\n1,2,2.5,2\n2,1,1.0,0\n2,2,1.5,0\n")
    with pytest.raises(DataError, match="fix or remove these values") as info:
        load_panel(path, columns=NORDIC_COLUMNS)
    assert "decimal comma" not in str(info.value)
