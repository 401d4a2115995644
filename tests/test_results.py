"""The shared result object: read many ways, immutable."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from evaluator.results.base import TIDY_COLUMNS, Result, tidy_table


def make() -> Result:
    table = tidy_table(["e=-1", "e=0", "e=1"], [0.1, -0.5, -1.0], [0.2, 0.25, 0.5], event_time=[-1, 0, 1])
    return Result(
        "Event study",
        table,
        nobs=120,
        headline="e=0",
        outcome="sick <days>",
        notes=("few clusters",),
        info={"pretest": {"statistic": 0.25, "df": 1, "p_value": 0.62}},
    )


def test_headline_and_intervals_are_normal_wald():
    r = make()
    z = stats.norm.ppf(0.975)
    assert r.estimate == -0.5 and r.se == 0.25
    assert r.ci == pytest.approx((-0.5 - z * 0.25, -0.5 + z * 0.25))
    assert r.pvalue == pytest.approx(2 * stats.norm.sf(2.0))


def test_t_reference_distribution():
    t = tidy_table(["a"], [1.0], [0.5], df=7)
    assert t["p_value"].iloc[0] == pytest.approx(2 * stats.t(7).sf(2.0))


def test_tidy_contract_and_immutability():
    r = make()
    frame = r.to_frame()
    assert tuple(frame.columns[:7]) == TIDY_COLUMNS
    frame.loc[0, "estimate"] = 99
    assert r.to_frame().loc[0, "estimate"] == pytest.approx(0.1)
    with pytest.raises(AttributeError):
        r.nobs = 1  # type: ignore[misc]


def test_readers():
    r = make()
    assert "Event study" in r.summary() and "Pre-trend test" in r.summary()
    html = r._repr_html_()
    assert "&lt;days&gt;" in html and "<days>" not in html
    d = json.loads(r.to_json())
    assert d["estimate"] == -0.5 and d["info"]["pretest"]["p_value"] == 0.62
    assert "Event study" in repr(r)


def test_bad_tables_rejected():
    with pytest.raises(ValueError, match="tidy columns"):
        Result("x", tidy_table(["a"], [1.0], [1.0]).drop(columns="p_value"), nobs=1)
    with pytest.raises(ValueError, match="headline term"):
        Result("x", tidy_table(["a"], [1.0], [1.0]), nobs=1, headline="b")


def test_nan_se_is_json_null():
    r = Result("x", tidy_table(["ref", "a"], [0.0, 1.0], [np.nan, 1.0]), nobs=1)
    assert json.loads(r.to_json())["table"][0]["std_error"] is None
