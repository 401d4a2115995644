"""Two-way fixed effects out of core (evaluator/estimators/twfe_ooc.py).

The reference is the in-memory ``did`` on the same rows (itself checked against pyfixest, linearmodels and
Stata in tests/test_twfe*.py): out of core the period effects' T x T system, the coefficient and the clusters'
scores are sums over units, formed in three passes, so the two agree to rounding (1e-10; observed ~1e-14).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.errors import DataError, DesignError, FewClustersWarning, WeightsError
from evaluator.estimators.twfe import did
from evaluator.estimators.twfe_ooc import did_ooc
from tests.test_staggered_ooc import _panel

KW = dict(outcome="y", unit="id", time="t", cohort="g")
COLUMNS = ["estimate", "std_error", "statistic", "p_value", "ci_low", "ci_high"]


def _same(a, b) -> None:
    """Two did Results agree: the numbers, the design's counts, the words."""
    x, y = a.to_frame(), b.to_frame()
    for col in COLUMNS:
        np.testing.assert_allclose(y[col], x[col], rtol=1e-10, atol=1e-12, err_msg=col)
    for key in ("n_units", "n_treated", "n_control", "n_clusters", "n_periods", "n_cohorts", "n_params", "fe_rank"):
        assert a.info[key] == b.info[key], key
    np.testing.assert_allclose(b.info["vcov"].to_numpy(), a.info["vcov"].to_numpy(), rtol=1e-10)
    assert a.nobs == b.nobs and a.estimator == b.estimator and a.inference == b.inference and a.notes == b.notes


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[pd.DataFrame, pd.DataFrame, Path, Path]:
    """1,000,000 rows (100,000 units x 10 periods) and the same with 15% of the rows missing, as Parquet files."""
    frame = _panel(100_000, seed=61)
    gappy = frame[np.random.default_rng(0).random(len(frame)) > 0.15].reset_index(drop=True)
    root = tmp_path_factory.mktemp("twfe_ooc")
    frame.to_parquet(root / "balanced.parquet", index=False, row_group_size=300_000)
    gappy.to_parquet(root / "gappy.parquet", index=False, row_group_size=300_000)
    return frame, gappy, root / "balanced.parquet", root / "gappy.parquet"


@pytest.mark.parametrize("inference", ["cluster", "hc1"])
@pytest.mark.parametrize("cluster", [None, "cl"])
@pytest.mark.parametrize("balanced", [True, False])
def test_a_million_rows_equal_in_memory(big, balanced, cluster, inference) -> None:
    frame, gappy, file, gfile = big
    data, path = (frame, file) if balanced else (gappy, gfile)
    mem = did(data, cluster=cluster, inference=inference, **KW)
    ooc = did(str(path), cluster=cluster, inference=inference, **KW)
    assert ooc.info["out_of_core"]["rows"] == len(data) and ooc.info["out_of_core"]["passes"] == 3
    _same(mem, ooc)


def test_the_numbers_do_not_depend_on_the_sharding(tmp_path) -> None:
    """A folder of files cut inside units, tiny or large batches, one thread or three."""
    frame = _panel(3_000, n_periods=7, seed=62)
    frame = frame[np.random.default_rng(1).random(len(frame)) > 0.2].reset_index(drop=True)
    folder = tmp_path / "parts"
    folder.mkdir()
    cuts = [0, 3_001, 9_999, len(frame)]
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        frame.iloc[a:b].to_parquet(folder / f"part-{i}.parquet", index=False)
    mem = did(frame, cluster="cl", **KW)
    for batch_rows, threads in ((61, 1), (5_000, 3)):
        _same(mem, did_ooc(folder, cluster="cl", batch_rows=batch_rows, threads=threads, **KW))


def test_small_panels_and_their_warnings_as_in_memory(tmp_path) -> None:
    """Few clusters (the same warning), one cohort in two periods (the 2x2), string ids, cohorts given as NaN."""
    frame = _panel(400, n_periods=6, seed=63, n_clusters=6)
    two = frame[frame["t"].isin([3, 4]) & frame["g"].isin([0, 4])]
    cases = [
        (frame, dict(cluster="cl")),
        (two, {}),
        (frame.assign(id="u" + frame["id"].astype(str).str.zfill(4)), {}),
        (frame.assign(g=frame["g"].where(frame["g"] > 0)), {}),
    ]
    for i, (data, kw) in enumerate(cases):
        path = tmp_path / f"case{i}.parquet"
        data.to_parquet(path, index=False)
        with warnings.catch_warnings(record=True) as w_mem:
            warnings.simplefilter("always")
            mem = did(data, **kw, **KW)
        with warnings.catch_warnings(record=True) as w_ooc:
            warnings.simplefilter("always")
            ooc = did(path, **kw, **KW)
        assert [str(w.message) for w in w_mem] == [str(w.message) for w in w_ooc], i
        _same(mem, ooc)
    assert any(issubclass(w.category, FewClustersWarning) for w in w_mem) is False  # the last case: by unit
    assert ooc.estimator.endswith("(two-way fixed effects)")
    assert did(tmp_path / "case1.parquet", **KW).estimator == "Difference-in-differences (2x2)"


def test_bad_input_raises_the_in_memory_errors(tmp_path) -> None:
    """No treated row, treatment absorbed by the effects, a bad row named, and what is not computed yet."""
    frame = _panel(200, n_periods=5, seed=64)
    cases = {
        "never": frame.assign(g=0),
        "absorbed": frame.assign(g=3),  # every unit starts in period 3: no comparison
    }
    for name, data in cases.items():
        data.to_parquet(tmp_path / f"{name}.parquet", index=False)
        with pytest.raises(DesignError) as mem:
            did(data, **KW)
        with pytest.raises(DesignError) as ooc:
            did(tmp_path / f"{name}.parquet", **KW)
        assert str(ooc.value) == str(mem.value), name
    bad = frame.copy()
    bad.loc[bad.index[11], "y"] = np.nan
    bad.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(DataError, match=r"(?s)column 'y': 1 missing value\(s\).*data rows 12"):
        did(tmp_path / "bad.parquet", **KW)
    path = tmp_path / "ok.parquet"
    frame.assign(w=1.0, x=frame["t"] * 1.0).to_parquet(path, index=False)
    with pytest.raises(ValueError, match="inference='both'"):
        did(path, inference="both", **KW)


def test_a_validated_panel_source(tmp_path) -> None:
    """load_panel's PanelSource (units it drops left out as the rows are read), as the report passes it."""
    from evaluator.data.load import load_panel

    frame = _panel(1_000, n_periods=8, seed=65)
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    roles = {"unit": "id", "time": "t", "outcome": "y", "cohort": "g"}
    source = load_panel(tmp_path / "p.parquet", columns=roles, out_of_core=True)
    mem = load_panel(frame, columns=roles)
    _same(did(mem, cluster="cl", **KW), did(source, cluster="cl", **KW))


@pytest.mark.parametrize("inference", ["cluster", "hc1"])
def test_regression_weights_as_in_memory(tmp_path, inference) -> None:
    """Weights varying by row, some 0 (those rows dropped with the in-memory warning), on an unbalanced panel."""
    frame = _panel(5_000, n_periods=8, seed=66)
    frame = frame[np.random.default_rng(2).random(len(frame)) > 0.15].reset_index(drop=True)
    w = np.random.default_rng(3).uniform(0.2, 3.0, len(frame))
    frame = frame.assign(w=np.where(np.arange(len(frame)) % 97 == 0, 0.0, w))
    path = tmp_path / "weighted.parquet"
    frame.to_parquet(path, index=False, row_group_size=7_001)
    kw = dict(KW, cluster="cl", weights="w", inference=inference)
    with warnings.catch_warnings(record=True) as w_mem:
        warnings.simplefilter("always")
        mem = did(frame, **kw)
    with warnings.catch_warnings(record=True) as w_ooc:
        warnings.simplefilter("always")
        ooc = did_ooc(path, batch_rows=999, **kw)
    assert [str(x.message) for x in w_ooc] == [str(x.message) for x in w_mem]
    assert any("rows with weight 0 in 'w' were dropped" in str(x.message) for x in w_ooc)
    _same(mem, ooc)
    assert not np.isclose(ooc.estimate, did(path, **{**kw, "weights": None}).estimate, rtol=1e-6)  # weights matter
    bad = frame.assign(w=np.where(np.arange(len(frame)) == 5, -1.0, frame["w"]))
    bad.to_parquet(tmp_path / "bad.parquet", index=False)
    messages = []
    for source in (bad, tmp_path / "bad.parquet"):
        with pytest.raises(WeightsError, match=r"(?s)column 'w': 1 negative weight.*data rows 6") as err:
            did(source, **kw)
        messages.append(str(err.value).split("\n", 1)[1])
    assert messages[0] == messages[1]


def test_time_varying_covariates_as_in_memory(tmp_path) -> None:
    """Covariates that vary within units: the coefficients of every regressor, as in memory; one constant within
    units is absorbed and two collinear ones are named, with the in-memory words; a missing value names its row."""
    frame = _panel(6_000, n_periods=7, seed=67)
    frame = frame[np.random.default_rng(4).random(len(frame)) > 0.15].reset_index(drop=True)
    rng = np.random.default_rng(5)
    frame = frame.assign(x1=rng.normal(size=len(frame)) + 0.1 * frame["t"], x2=rng.uniform(size=len(frame)) * 40 + 20)
    frame = frame.assign(y=frame["y"] + 0.5 * frame["x1"] - 0.02 * frame["x2"])
    frame = frame.assign(fixed=frame["id"] % 5, twin=2 * frame["x1"] - 3)
    path = tmp_path / "covs.parquet"
    frame.to_parquet(path, index=False, row_group_size=9_999)
    for inference in ("cluster", "hc1"):
        kw = dict(KW, covariates=["x1", "x2"], cluster="cl", inference=inference)
        mem, ooc = did(frame, **kw), did_ooc(path, batch_rows=1_234, **kw)
        assert ooc.to_frame()["term"].tolist() == ["att", "x1", "x2"]
        _same(mem, ooc)
    for covs in (["x1", "fixed"], ["x1", "twin"]):
        with pytest.raises(DesignError) as a:
            did(frame, covariates=covs, **KW)
        with pytest.raises(DesignError) as b:
            did(path, covariates=covs, **KW)
        assert str(a.value) == str(b.value) and covs[1] in str(b.value)
    gap = frame.assign(x1=frame["x1"].where(frame.index != 30))
    gap.to_parquet(tmp_path / "gap.parquet", index=False)
    with pytest.raises(DataError, match=r"(?s)column 'x1': 1 missing value\(s\).*data rows 31"):
        did(tmp_path / "gap.parquet", covariates=["x1"], **KW)


def test_wild_cluster_bootstrap_as_in_memory(tmp_path, monkeypatch) -> None:
    """The restricted wild cluster bootstrap from two passes more (the swept regressors with the period dummies, then
    each cluster's scores and cross-products, clusters in the order the rows first show them): the same draws, so
    the same p-values and test-inversion intervals for the same seed; few clusters (Webb weights), with weights and
    a covariate, and by unit (Rademacher)."""
    frame = _panel(3_000, n_periods=7, seed=68, n_clusters=9)
    frame = frame[np.random.default_rng(6).random(len(frame)) > 0.15].reset_index(drop=True)
    rng = np.random.default_rng(7)
    frame = frame.assign(w=rng.uniform(0.5, 2.0, len(frame)), x=rng.normal(size=len(frame)))
    path = tmp_path / "wild.parquet"
    frame.to_parquet(path, index=False, row_group_size=2_001)
    for extra in (dict(cluster="cl"), dict(cluster="cl", weights="w", covariates=["x"]), {}):
        kw = dict(KW, inference="wild", n_boot=199, seed=5, **extra)
        mem, ooc = did(frame, **kw), did_ooc(path, batch_rows=777, **kw)
        assert ooc.info["n_boot"] == mem.info["n_boot"] and ooc.info["boot_weights"] == mem.info["boot_weights"]
        assert ooc.info["out_of_core"]["passes"] == 5
        _same(mem, ooc)
    assert (
        mem.info["boot_weights"] == "rademacher" and did(path, **{**kw, "cluster": "cl"}).info["boot_weights"] == "webb"
    )
    other = did_ooc(path, **{**kw, "seed": 6})
    assert other.to_frame()["ci_low"][0] != ooc.to_frame()["ci_low"][0]  # another seed, other draws
    import evaluator.estimators.twfe_ooc as twfe_ooc

    monkeypatch.setattr(twfe_ooc, "WILD_MAX_CLUSTERS", 100)
    with pytest.raises(NotImplementedError, match=r"inference='wild' keeps each cluster's cross-products: at most 100"):
        did(path, **kw)
    with pytest.raises(ValueError, match="n_boot=0 must be a positive number"):
        did(path, **{**kw, "n_boot": 0})
