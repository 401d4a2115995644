"""load_panel out of core (PanelSource), the streaming aggregates, and staggered_did on a PanelSource."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from evaluator.data.aggregates import panel_aggregates
from evaluator.data.load import load_panel
from evaluator.data.panel_source import PanelSource
from evaluator.data.simulate import sick_leave_sib
from evaluator.errors import DataError
from evaluator.estimators.staggered import staggered_did


@pytest.fixture(scope="module")
def sim():
    return sick_leave_sib(
        n_municipalities=10, employees_per_municipality=20, n_periods=24, waves=(7, 13), seed=1, attrition=0.03
    )


def _folder(tmp_path, data):
    data = data.sort_values(["employee", "month"]).reset_index(drop=True)
    data.iloc[:2000].to_parquet(tmp_path / "a.parquet")
    data.iloc[2000:].to_parquet(tmp_path / "b.parquet")
    return tmp_path


def test_folder_equals_in_memory_attrs(sim, tmp_path):
    ps = load_panel(_folder(tmp_path, sim.data), columns=sim.columns)
    mem = load_panel(sim.data, columns=sim.columns)
    assert isinstance(ps, PanelSource)
    for key in ("notes", "balance", "attrition", "dropped", "columns"):
        assert ps.attrs["evaluator"][key] == mem.attrs["evaluator"][key], key
    assert not ps.attrs["evaluator"]["balance"]["balanced"]


def test_aggregates_equal_groupby(sim, tmp_path):
    folder = _folder(tmp_path, sim.data)
    agg = panel_aggregates(
        folder,
        unit="employee",
        time="month",
        outcome="sick_days",
        cohort="first_treated",
        cluster="municipality",
        batch_rows=300,
    )
    d = sim.data
    mem = d.groupby(["first_treated", "month"])["sick_days"].agg(["size", "mean"])
    assert agg.cells["rows"].to_numpy().tolist() == mem["size"].tolist()
    np.testing.assert_allclose(agg.means.to_numpy(), mem["mean"].to_numpy(), rtol=1e-12)
    units = d.drop_duplicates("employee")["first_treated"].value_counts().sort_index()
    assert agg.cohort_units.to_dict() == units.to_dict()
    clusters = d.groupby("first_treated")["municipality"].nunique()
    assert agg.cohort_table().set_index("first treated period")["clusters"].to_dict() == clusters.to_dict()


@pytest.mark.parametrize("allow", [False, True])
def test_staggered_did_on_panel_source(sim, tmp_path, allow):
    ps = load_panel(_folder(tmp_path, sim.data), columns=sim.columns)
    mem = load_panel(sim.data, columns=sim.columns)
    kw = dict(
        outcome="sick_days",
        unit="employee",
        time="month",
        cohort="first_treated",
        cluster="municipality",
        n_boot=0,
        allow_unbalanced_panel=allow,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a, b = staggered_did(ps, **kw), staggered_did(mem, **kw)
    np.testing.assert_allclose(a.att_gt["att"], b.att_gt["att"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.att_gt["se"], b.att_gt["se"], rtol=0, atol=1e-10, equal_nan=True)
    assert abs(a.estimate - b.estimate) < 1e-10


def test_bad_input_one_error(sim, tmp_path):
    d = sim.data.sort_values(["employee", "month"]).reset_index(drop=True)
    d = d.drop(columns="municipality").copy()
    d.loc[d["employee"] == 5, "first_treated"] = np.where(d.loc[d["employee"] == 5, "month"] > 3, 13, 0)
    dup = d.iloc[[10]]
    d = __import__("pandas").concat([d.iloc[:11], dup, d.iloc[11:]], ignore_index=True)
    d.to_parquet(tmp_path / "p.parquet")
    with pytest.raises(DataError) as err:
        load_panel(tmp_path, columns=sim.columns)
    assert "missing column for role 'cluster'" in str(err.value)
    cols = {k: v for k, v in sim.columns.items() if k != "cluster"}
    with pytest.raises(DataError) as err:
        load_panel(tmp_path, columns=cols)
    text = str(err.value)
    assert "duplicate unit-period rows" in text and "data rows 11, 12" in text
    assert "varies within units 5" in text
