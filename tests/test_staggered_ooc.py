"""staggered_did out of core (evaluator/estimators/staggered_ooc.py, evaluator/data/shards.py).

The reference is the in-memory staggered_did on the same rows: out of core the same
numbers come from sufficient statistics combined over shards of units, so they agree to
rounding. Tolerance 1e-10 (relative, as the issue asks; the observed differences are ~1e-15).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from evaluator.errors import DataError, DesignError, DroppedUnitsWarning, FewClustersWarning, TrimmingWarning
from evaluator.estimators.staggered import staggered_did
from evaluator.estimators.staggered_ooc import staggered_did_ooc

TOL = dict(rtol=1e-10, atol=1e-12)
# A z-statistic (and its p-value) of a near-zero estimate is compared in its own unit: est/se amplifies the
# estimate's rounding (~1e-13 on outcomes near 10) by 1/se, so 1e-10 absolute.
TOL_Z = dict(rtol=0, atol=1e-10)
KW = dict(outcome="y", unit="id", time="t", cohort="g", n_boot=0)
AGGREGATIONS = ("simple", "dynamic", "group", "calendar")
NUMBERS = ["estimate", "std_error", "statistic", "p_value", "ci_low", "ci_high"]


def _panel(n_units: int, n_periods: int = 10, seed: int = 0, n_clusters: int = 40) -> pd.DataFrame:
    """A balanced staggered panel sorted by unit then period: cohorts 4, 6, 8 and never treated (0)."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, n_periods + 1)
    g = rng.choice([0, 4, 6, 8], size=n_units, p=[0.4, 0.2, 0.2, 0.2])
    level = rng.normal(size=n_units) + 0.5 * (g > 0)
    e = t[None, :] - g[:, None]
    effect = np.where((g[:, None] > 0) & (e >= 0), 1.0 + 0.3 * e, 0.0)
    y = 10.0 + level[:, None] + 0.2 * t[None, :] + effect + rng.normal(size=(n_units, n_periods))
    return pd.DataFrame(
        {
            "id": np.repeat(np.arange(1, n_units + 1), n_periods),
            "t": np.tile(t, n_units),
            "g": np.repeat(g, n_periods),
            "cl": np.repeat(rng.integers(0, n_clusters, n_units), n_periods),
            "y": y.ravel(),
        }
    )


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[pd.DataFrame, Path, Path]:
    """1,000,000 rows (100,000 units x 10 periods) as one Parquet file and as a folder of 4 files."""
    frame = _panel(100_000)
    root = tmp_path_factory.mktemp("ooc")
    file = root / "panel.parquet"
    frame.to_parquet(file, index=False, row_group_size=300_000)
    folder = root / "panel"
    folder.mkdir()
    cuts = [0, 250_003, 500_000, 777_777, len(frame)]  # cuts inside units: a unit's rows span two files
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        frame.iloc[a:b].to_parquet(folder / f"part-{i:03d}.parquet", index=False)
    return frame, file, folder


def _tol(col: str, tol_z: dict[str, float] = TOL_Z) -> dict[str, float]:
    return tol_z if col in ("statistic", "p_value") else TOL


def _same(a, b, tol_z: dict[str, float] = TOL_Z) -> None:
    """Two StaggeredResults agree: every ATT(g,t), SE, interval, the four aggregations, the pre-test, the notes."""
    assert a.table["term"].tolist() == b.table["term"].tolist()
    for col in NUMBERS:
        np.testing.assert_allclose(b.table[col], a.table[col], **_tol(col, tol_z), err_msg=col)
    assert b.table["n_treated"].tolist() == a.table["n_treated"].tolist()
    assert b.table["n_control"].tolist() == a.table["n_control"].tolist()
    for kind in AGGREGATIONS:
        x, y = a.aggregate(kind), b.aggregate(kind)
        assert x.table["term"].tolist() == y.table["term"].tolist()
        for col in NUMBERS:
            np.testing.assert_allclose(y.table[col], x.table[col], **_tol(col, tol_z), err_msg=f"{kind}: {col}")
        np.testing.assert_allclose(y.info["vcov"].to_numpy(), x.info["vcov"].to_numpy(), **TOL)
    assert (a.info.get("pretest") is None) == (b.info.get("pretest") is None)
    if a.info.get("pretest") is not None:
        assert a.info["pretest"]["df"] == b.info["pretest"]["df"]
        np.testing.assert_allclose(b.info["pretest"]["statistic"], a.info["pretest"]["statistic"], rtol=1e-8)
    assert a.notes == b.notes
    assert a.nobs == b.nobs and a.estimator == b.estimator and a.inference == b.inference
    np.testing.assert_allclose(b._scale, a._scale, rtol=1e-10)
    for key in ("n_units", "n_treated", "n_control", "n_periods", "cohort_sizes", "n_clusters"):
        assert a.info.get(key) == b.info.get(key), key


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        return fn(*args, **kwargs)


@pytest.mark.parametrize("cluster", [None, "cl"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
@pytest.mark.parametrize("control", ["never", "not_yet"])
def test_million_rows_equal_in_memory(big, control, base_period, cluster) -> None:
    frame, file, _ = big
    kw = dict(KW, control=control, base_period=base_period, cluster=cluster)
    mem = _quiet(staggered_did, frame, **kw)
    ooc = _quiet(staggered_did, str(file), **kw)  # the dispatch: a path goes out of core
    assert ooc.info["out_of_core"]["rows"] == 1_000_000
    _same(mem, ooc)


@pytest.mark.parametrize("control", ["never", "not_yet"])
def test_folder_and_dataset_and_sharding_give_the_same_numbers(big, control) -> None:
    frame, file, folder = big
    kw = dict(KW, control=control, cluster="cl")
    mem = _quiet(staggered_did, frame, **kw)
    _same(mem, _quiet(staggered_did, folder, **kw))
    _same(mem, _quiet(staggered_did, ds.dataset(str(folder), format="parquet"), **kw))
    # small batches (a unit split across nearly every batch boundary), one thread or three
    for batch_rows, threads in ((65_537, 1), (9_999, 3)):
        _same(mem, _quiet(staggered_did_ooc, file, batch_rows=batch_rows, threads=threads, **kw))


@pytest.mark.parametrize("method", ["dr", "ipw", "reg", "unconditional"])
def test_every_method_without_covariates(method) -> None:
    frame = _panel(3_000, seed=2)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    mem = staggered_did(frame, method=method, **KW)
    ooc = staggered_did(ds.dataset(table), method=method, **KW)  # an in-memory pyarrow Dataset
    assert ooc.info["method"] == mem.info["method"] == "unconditional"
    _same(mem, ooc)


def test_small_panels_edge_cases(tmp_path) -> None:
    """Anticipation, late and early cohorts, no never-treated units, string unit ids, a unit split by batches."""
    base = _panel(400, n_periods=6, seed=3)
    late = base.assign(g=np.where(base["id"] % 7 == 0, 9, base["g"]))  # after the last period: never treated
    early = late.assign(g=np.where(late["id"] % 11 == 0, 1, late["g"]))  # in the first period: dropped
    cases = [
        (early, dict(KW)),
        (early, dict(KW, anticipation=1, control="not_yet")),
        (base[base["g"] > 0], dict(KW, control="not_yet")),
        (base.assign(id="u" + base["id"].astype(str).str.zfill(4)), dict(KW, base_period="universal")),
    ]
    for i, (frame, kw) in enumerate(cases):
        path = tmp_path / f"case{i}.parquet"
        frame.to_parquet(path, index=False)
        with warnings.catch_warnings(record=True) as w_mem:
            warnings.simplefilter("always")
            mem = staggered_did(frame, **kw)
        with warnings.catch_warnings(record=True) as w_ooc:
            warnings.simplefilter("always")
            ooc = staggered_did_ooc(path, batch_rows=5, threads=2, **kw)
        assert [str(w.message) for w in w_mem] == [str(w.message) for w in w_ooc]
        _same(mem, ooc)


@pytest.mark.parametrize("allow_unbalanced", [False, True])
def test_few_clusters_and_single_unit_cohorts_warn_as_in_memory(tmp_path, allow_unbalanced) -> None:
    """8 clusters and a cohort of one unit: the same warnings and notes as in memory (this once crashed out of core)."""
    frame = _panel(400, n_periods=6, seed=5, n_clusters=8)
    frame = frame.assign(g=np.where(frame["id"] == 1, 5, frame["g"]))  # cohort 5: one unit
    if allow_unbalanced:
        frame = frame.drop(index=frame.index[frame["id"].isin([7, 40]) & (frame["t"] == 3)])
    path = tmp_path / "few.parquet"
    frame.to_parquet(path, index=False)
    kw = dict(KW, cluster="cl", allow_unbalanced_panel=allow_unbalanced)
    mem, w_mem = _with_warnings(staggered_did, frame, **kw)
    ooc, w_ooc = _with_warnings(staggered_did_ooc, path, batch_rows=97, threads=2, **kw)
    assert w_mem == w_ooc
    assert any(w.startswith("FewClustersWarning: only 8 clusters in 'cl'") for w in w_ooc)
    assert any(w.startswith("SmallCohortWarning: cohorts [5] have a single") for w in w_ooc)
    assert "only 8 clusters: inference is fragile" in ooc.notes
    _same(mem, ooc)


def test_unbalanced_panel_dropped_as_in_memory(tmp_path) -> None:
    frame = _panel(300, n_periods=6, seed=4)
    frame = frame.drop(index=frame.index[frame["id"].isin([3, 8, 200]) & (frame["t"] == 2)])
    path = tmp_path / "unbalanced.parquet"
    frame.to_parquet(path, index=False)
    with pytest.warns(DroppedUnitsWarning, match=r"dropped 3 of 300 units \(15 rows\).*units 3, 8, 200"):
        mem = staggered_did(frame, **KW)
    with pytest.warns(DroppedUnitsWarning, match=r"dropped 3 of 300 units \(15 rows\).*units 3, 8, 200"):
        ooc = staggered_did(path, **KW)
    assert ooc.info["unbalanced_dropped"] == mem.info["unbalanced_dropped"]
    _same(mem, ooc)


@pytest.fixture(scope="module")
def unbalanced(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """200,000 units x 8 periods with 15% of the rows missing at random (about 1.36 million rows), late and early
    cohorts, sorted by unit then period."""
    frame = _panel(200_000, n_periods=8, seed=13)
    frame = frame.assign(g=np.where(frame["id"] % 23 == 0, 11, np.where(frame["id"] % 29 == 0, 1, frame["g"])))
    frame = frame[np.random.default_rng(0).random(len(frame)) > 0.15].reset_index(drop=True)
    path = tmp_path_factory.mktemp("ooc") / "unbalanced.parquet"
    frame.to_parquet(path, index=False)
    return frame, path


def _with_warnings(fn, *args, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fn(*args, **kwargs)
    return res, [f"{type(w.message).__name__}: {w.message}" for w in caught]


@pytest.mark.parametrize("cluster", [None, "cl"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
@pytest.mark.parametrize("control", ["never", "not_yet"])
def test_unbalanced_panel_used_whole_equals_in_memory(unbalanced, control, base_period, cluster) -> None:
    """allow_unbalanced_panel=True: every row, as staggered_rc (R did's unbalanced panel), from second moments."""
    frame, path = unbalanced
    kw = dict(KW, control=control, base_period=base_period, cluster=cluster, allow_unbalanced_panel=True)
    mem, w_mem = _with_warnings(staggered_did, frame, **kw)
    ooc, w_ooc = _with_warnings(staggered_did_ooc, path, batch_rows=300_001, threads=2, **kw)
    assert w_mem == w_ooc and any("DroppedUnitsWarning: dropped" in w for w in w_ooc)  # the early cohort
    assert "unbalanced panel" in ooc.estimator and ooc.info["n_obs"] == mem.info["n_obs"] < len(frame)
    _same(mem, ooc)


def test_unbalanced_panel_edge_cases(tmp_path) -> None:
    """No never-treated units, anticipation, a cohort missing its base period, string ids, and a balanced panel
    with allow_unbalanced_panel=True (the panel estimator, as in memory)."""
    frame = _panel(1_500, n_periods=7, seed=12)
    gappy = frame[np.random.default_rng(1).random(len(frame)) > 0.2]
    cases = [
        (gappy[gappy["g"] > 0], dict(control="not_yet", cluster="cl")),
        (gappy, dict(anticipation=1, control="not_yet")),
        (gappy[~((gappy["g"] == 6) & (gappy["t"] == 5))], {}),  # MissingPeriodWarning
        (gappy.assign(id="u" + gappy["id"].astype(str).str.zfill(5), cl="c" + gappy["cl"].astype(str)), {}),
        (frame, dict(cluster="cl")),
    ]
    for i, (data, extra) in enumerate(cases):
        path = tmp_path / f"case{i}.parquet"
        data.to_parquet(path, index=False)
        kw = dict(KW, allow_unbalanced_panel=True, **extra)
        mem, w_mem = _with_warnings(staggered_did, data, **kw)
        ooc, w_ooc = _with_warnings(staggered_did_ooc, path, batch_rows=77, threads=2, **kw)
        assert w_mem == w_ooc, i
        _same(mem, ooc)
    assert "unbalanced panel" not in ooc.estimator  # the balanced one


def test_unbalanced_panel_checks_every_unit(tmp_path) -> None:
    frame = _panel(100, n_periods=5, seed=14)
    frame = frame.drop(index=frame.index[(frame["id"] == 7) & (frame["t"] == 1)])  # unit 7 incomplete
    frame.loc[frame.index[(frame["id"] == 7) & (frame["t"] == 4)], "g"] = 2  # ... and its cohort varies
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    for source in (frame, tmp_path / "p.parquet"):
        with pytest.raises(DataError, match=r"column 'g' \(first treated period\) varies within units 7;"):
            staggered_did(source, allow_unbalanced_panel=True, **KW)


def test_rows_out_of_order_are_refused_with_the_row(tmp_path) -> None:
    frame = _panel(200, n_periods=5, seed=5)
    shuffled = frame.sample(frac=1.0, random_state=1)
    shuffled.to_parquet(tmp_path / "shuffled.parquet", index=False)
    with pytest.raises(DataError, match=r"not sorted by unit: unit \d+ \(data row \d+\) comes after") as err:
        staggered_did(tmp_path / "shuffled.parquet", **KW)
    assert "sort_by" in str(err.value)
    # units in order but periods not: named by unit
    swapped = frame.copy()
    swapped.iloc[[5, 6]] = swapped.iloc[[6, 5]].to_numpy()
    swapped.to_parquet(tmp_path / "periods.parquet", index=False)
    with pytest.raises(DataError, match=r"(?s)rows of 1 unit\(s\) are not sorted by period.*at units 2"):
        staggered_did(tmp_path / "periods.parquet", **KW)


def test_bad_panels_raise_one_error_naming_units_and_rows(tmp_path) -> None:
    frame = _panel(200, n_periods=5, seed=6)
    bad = frame.copy()
    bad.loc[bad.index[(bad["id"] == 4) & (bad["t"] == 3)], "g"] = 5  # cohort varies within unit 4
    bad.loc[bad.index[(bad["id"] == 9) & (bad["t"] == 2)], "cl"] = 999  # cluster varies within unit 9
    bad.loc[bad.index[11], "y"] = np.nan
    dup = pd.concat([bad.iloc[:31], bad.iloc[30:31], bad.iloc[31:]], ignore_index=True)  # row 31 twice
    path = tmp_path / "bad.parquet"
    dup.to_parquet(path, index=False)
    with pytest.raises(DataError) as err:
        staggered_did(path, cluster="cl", **KW)
    text = str(err.value)
    assert "4 problems found" in text
    assert "column 'y': 1 missing value(s) out of 1001" in text and "data rows 12" in text
    assert "duplicate unit-period rows: 2 rows share a (id, t) value" in text and "data rows 31, 32" in text
    assert "column 'g' (first treated period) varies within units 4;" in text
    assert "cluster column 'cl' varies within units 9;" in text
    # the same faults, one at a time, raise in memory with the same words
    with pytest.raises(DataError, match=r"varies within units 4;"):
        staggered_did(bad.drop(columns="cl").fillna({"y": 0.0}), **KW)
    with pytest.raises(DataError, match=r"duplicate unit-period rows: 2 rows share a \(id, t\)"):
        staggered_did(dup.assign(y=dup["y"].fillna(0)), **KW)


def test_refused_options_say_what_to_do(tmp_path) -> None:
    frame = _panel(100, n_periods=5, seed=7).assign(x=1.0, w=1.0)
    path = tmp_path / "p.parquet"
    frame.to_parquet(path, index=False)
    gaps = tmp_path / "gaps.parquet"
    frame.drop(index=frame.index[2]).to_parquet(gaps, index=False)  # one row missing: unbalanced
    # covariates with allow_unbalanced_panel=True are computed (tests/test_staggered_ooc_unbalanced_covariates.py),
    # and checked as in memory
    for source in (pd.read_parquet(gaps), gaps):
        with pytest.raises(DesignError, match=r"covariates \['x'\] are constant"):
            staggered_did(source, covariates=["x"], allow_unbalanced_panel=True, **KW)
    with pytest.raises(DesignError, match=r"covariates \['x'\] are constant"):  # as in memory
        staggered_did(path, covariates=["x"], **KW)
    with pytest.raises(NotImplementedError, match=r"panel=False, unit='id': .* leave unit out"):
        staggered_did(path, panel=False, **KW)  # repeated cross-sections are read without a unit column
    with pytest.raises(DataError, match=r"column 'nope': column not found \(cohort='nope'\)"):
        staggered_did(path, **{**KW, "cohort": "nope"})
    with pytest.raises(DataError, match="file not found"):
        staggered_did(tmp_path / "absent.parquet", **KW)
    frame.to_csv(tmp_path / "p.csv", index=False)
    with pytest.raises(DataError, match="reads Parquet files"):
        staggered_did(tmp_path / "p.csv", **KW)
    with pytest.raises(DesignError, match="single cluster"):
        staggered_did(path, cluster="w", **KW)
    with pytest.raises(ValueError, match="control='both'"):
        staggered_did(path, **{**KW, "control": "both"})


def test_string_cohort_column_is_refused(tmp_path) -> None:
    frame = _panel(50, n_periods=4, seed=8)
    table = pa.Table.from_pandas(frame.assign(g=frame["g"].astype(str)), preserve_index=False)
    pq.write_table(table, tmp_path / "s.pq")
    with pytest.raises(DataError, match="column 'g': must be numeric"):
        staggered_did(tmp_path / "s.pq", **KW)


# -- time-invariant covariates: outcome regression, IPW, doubly robust ------------------------------------------------
COVS = ["x1", "x2"]
METHODS = ("reg", "ipw", "dr")


def _cov_panel(n_units: int, n_periods: int = 10, seed: int = 0, separation: float = 0.5) -> pd.DataFrame:
    """``_panel`` with two time-invariant covariates that shift the cohort and the outcome's trend."""
    frame = _panel(n_units, n_periods=n_periods, seed=seed)
    rng = np.random.default_rng(seed + 100)
    g = frame["g"].to_numpy()[::n_periods]
    x1 = rng.normal(size=n_units) + separation * (g > 0)
    x2 = rng.binomial(1, 0.4, size=n_units) + 0.3 * rng.normal(size=n_units)
    t = frame["t"].to_numpy()
    frame["x1"] = np.repeat(x1, n_periods)
    frame["x2"] = np.repeat(x2, n_periods)
    frame["y"] = frame["y"] + 0.14 * frame["x1"] * t - 0.4 * frame["x2"]
    return frame


@pytest.fixture(scope="module")
def big_cov(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """1,000,000 rows (100,000 units x 10 periods) with 2 covariates, as one Parquet file."""
    frame = _cov_panel(100_000, seed=21)
    path = tmp_path_factory.mktemp("ooc") / "covariates.parquet"
    frame.to_parquet(path, index=False, row_group_size=300_000)
    return frame, path


@pytest.mark.parametrize("cluster", [None, "cl"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
@pytest.mark.parametrize("control", ["never", "not_yet"])
@pytest.mark.parametrize("method", METHODS)
def test_million_rows_with_covariates_equal_in_memory(big_cov, method, control, base_period, cluster) -> None:
    frame, path = big_cov
    kw = dict(KW, method=method, control=control, base_period=base_period, cluster=cluster, covariates=COVS)
    mem, w_mem = _with_warnings(staggered_did, frame, **kw)
    ooc, w_ooc = _with_warnings(staggered_did, str(path), **kw)
    assert w_mem == w_ooc
    assert ooc.info["method"] == method and ooc.info["covariates"] == COVS
    assert ooc.info["out_of_core"]["rows"] == 1_000_000
    assert ooc.info["out_of_core"]["passes"] == (2 if method == "reg" else 7)  # the logits' Newton steps share passes
    _same(mem, ooc)


@pytest.mark.parametrize("method", METHODS)
def test_covariates_whatever_the_sharding(tmp_path, method) -> None:
    """A folder of files cut inside units, small batches, one thread or three: the same numbers."""
    frame = _cov_panel(4_000, n_periods=6, seed=22)
    folder = tmp_path / "parts"
    folder.mkdir()
    cuts = [0, 5_001, 12_000, 17_777, len(frame)]
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        frame.iloc[a:b].to_parquet(folder / f"part-{i:03d}.parquet", index=False)
    kw = dict(KW, method=method, control="not_yet", cluster="cl", covariates=COVS)
    mem = _quiet(staggered_did, frame, **kw)
    for batch_rows, threads in ((1_001, 1), (333, 3)):
        _same(mem, _quiet(staggered_did_ooc, folder, batch_rows=batch_rows, threads=threads, **kw))


@pytest.mark.parametrize("method", METHODS)
def test_covariates_edge_cases(tmp_path, method) -> None:
    """Late and early cohorts, anticipation, no never-treated units, string ids, one covariate, units missing
    periods (dropped), trimming."""
    base = _cov_panel(1_200, n_periods=6, seed=23)
    late = base.assign(g=np.where(base["id"] % 7 == 0, 9, base["g"]))  # after the last period: never treated
    early = late.assign(g=np.where(late["id"] % 11 == 0, 1, late["g"]))  # in the first period: dropped
    strong = _cov_panel(1_200, n_periods=9, seed=24, separation=3.0)
    outlier = (strong["g"] == 0) & (strong["id"] % 97 == 0)  # never treated, beyond the treated: scores >= 0.995
    strong = strong.assign(x1=np.where(outlier, strong["x1"] + 6.0, strong["x1"]))
    cases = [
        (early, dict(KW)),
        (early, dict(KW, anticipation=1, control="not_yet", cluster="cl")),
        (base[base["g"] > 0], dict(KW, control="not_yet")),
        (base.assign(id="u" + base["id"].astype(str).str.zfill(5)), dict(KW, base_period="universal")),
        (base, dict(KW, covariates=["x1"])),
        (base.drop(index=base.index[base["id"].isin([3, 8, 200]) & (base["t"] == 2)]), dict(KW, cluster="cl")),
        (strong, dict(KW, cluster="cl")),
        (strong, dict(KW, control="not_yet")),
    ]
    trimmed = False
    for i, (frame, kw) in enumerate(cases):
        kw = dict(kw, method=method)
        kw.setdefault("covariates", COVS)
        path = tmp_path / f"case{i}.parquet"
        frame.to_parquet(path, index=False)
        mem, w_mem = _with_warnings(staggered_did, frame, **kw)
        ooc, w_ooc = _with_warnings(staggered_did_ooc, path, batch_rows=97, threads=2, **kw)
        assert w_mem == w_ooc, i
        trimmed |= any(w.startswith(TrimmingWarning.__name__) for w in w_ooc)
        _same(mem, ooc)
    assert trimmed == (method != "reg")  # the strong case trims, as in memory


def test_time_varying_covariate_is_refused_naming_the_unit(tmp_path) -> None:
    """Out of core the covariates must be time-invariant; in memory each cell takes the earlier period's values."""
    frame = _cov_panel(300, n_periods=5, seed=25)
    frame.loc[frame.index[(frame["id"] == 17) & (frame["t"] == 3)], "x2"] += 1.0
    frame.to_parquet(tmp_path / "p.parquet", index=False)
    staggered_did(frame, method="reg", covariates=COVS, **KW)  # accepted in memory
    with pytest.raises(
        DataError,
        match=r"covariate 'x2' varies within units 17; out of core the covariates must be "
        r"time-invariant",
    ) as err:
        staggered_did(tmp_path / "p.parquet", method="reg", covariates=COVS, **KW)
    assert "pandas DataFrame" in str(err.value)


def test_covariate_faults_as_in_memory(tmp_path) -> None:
    """A missing covariate value names its data row; a collinear covariate raises the in-memory DesignError."""
    frame = _cov_panel(200, n_periods=5, seed=26)
    gap = frame.copy()
    gap.loc[gap.index[41], "x1"] = np.nan
    gap.to_parquet(tmp_path / "gap.parquet", index=False)
    with pytest.raises(DataError, match=r"column 'x1': 1 missing value\(s\) out of 1000") as err:
        staggered_did(tmp_path / "gap.parquet", covariates=COVS, **KW)
    assert "data rows 42" in str(err.value)
    with pytest.raises(DataError, match=r"column 'x1': 1 missing value\(s\) out of 1000"):
        staggered_did(gap, covariates=COVS, **KW)
    # ... also in a unit missing a period (which the balancing would drop), as in memory
    holed = gap.drop(index=gap.index[42])
    holed.to_parquet(tmp_path / "holed.parquet", index=False)
    for source in (holed, tmp_path / "holed.parquet"):
        with pytest.raises(DataError, match=r"column 'x1': 1 missing value\(s\) out of 999") as err:
            staggered_did(source, covariates=COVS, **KW)
        assert "data rows 42" in str(err.value)
    twin = frame.assign(x3=2.0 * frame["x1"] - 1.0)
    twin.to_parquet(tmp_path / "twin.parquet", index=False)
    kw = dict(KW, covariates=[*COVS, "x3"])
    with pytest.raises(DesignError, match=r"covariates are collinear .*: \['x3'\]"):
        staggered_did(twin, **kw)
    with pytest.raises(DesignError, match=r"covariates are collinear .*: \['x3'\]"):
        staggered_did(tmp_path / "twin.parquet", **kw)


# -- the bootstraps: draws keyed to units or clusters, so the same seed gives the same draws as in memory -----------
BOOT = dict(KW, n_boot=99, seed=11)
# Bootstrap statistics est/se_boot reach the hundreds here (se_boot an interpolated quantile range, rounded like
# the estimate): 1e-10 relative to them, as for every other number, besides 1e-10 absolute for those near zero.
TOL_Z_BOOT = dict(rtol=1e-10, atol=1e-10)


def _same_boot(a, b) -> None:
    """``_same`` and every bootstrap number: SEs, pointwise and cluster-bootstrap intervals, sup-t bands."""
    _same(a, b, TOL_Z_BOOT)
    assert a.table.columns.tolist() == b.table.columns.tolist()
    assert {"band_low", "band_high", "se_analytic"} <= set(a.table.columns)
    for col in a.table.select_dtypes("number").columns:
        np.testing.assert_allclose(b.table[col], a.table[col], **_tol(col, TOL_Z_BOOT), err_msg=col)
    np.testing.assert_allclose(b.info["crit_value"], a.info["crit_value"], **TOL)
    assert a.info["n_boot"] == b.info["n_boot"] == 99 and a.info.get("bands_widened") == b.info.get("bands_widened")
    for kind in AGGREGATIONS:
        x, y = a.aggregate(kind), b.aggregate(kind)
        assert x.table.columns.tolist() == y.table.columns.tolist()
        for col in x.table.select_dtypes("number").columns:
            np.testing.assert_allclose(y.table[col], x.table[col], **_tol(col, TOL_Z_BOOT), err_msg=f"{kind}: {col}")


@pytest.mark.parametrize("cluster", [None, "cl"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
@pytest.mark.parametrize("control", ["never", "not_yet"])
def test_bootstrap_on_a_million_rows_equals_in_memory(big, control, base_period, cluster) -> None:
    frame, file, _ = big
    kw = dict(BOOT, control=control, base_period=base_period, cluster=cluster)
    mem, w_mem = _with_warnings(staggered_did, frame, **kw)
    ooc, w_ooc = _with_warnings(staggered_did, str(file), **kw)
    assert w_mem == w_ooc
    assert ooc.inference.startswith("multiplier bootstrap (99 draws")
    assert ("restricted wild cluster bootstrap" in ooc.inference) == (cluster is not None)
    _same_boot(mem, ooc)


def test_bootstrap_draws_do_not_depend_on_the_sharding(big) -> None:
    """A folder cut inside units, small batches, one thread or three: the same draws, so the same bands."""
    frame, file, folder = big
    for cluster in (None, "cl"):
        kw = dict(BOOT, control="not_yet", cluster=cluster)
        mem = _quiet(staggered_did, frame, **kw)
        _same_boot(mem, _quiet(staggered_did, folder, **kw))
        _same_boot(mem, _quiet(staggered_did_ooc, file, batch_rows=9_999, threads=3, **kw))
    # and a different seed gives different draws
    other = _quiet(staggered_did, file, **{**BOOT, "seed": 12})
    assert not np.allclose(other.table["band_low"], mem.table["band_low"])


@pytest.mark.parametrize("cluster", [None, "cl"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
@pytest.mark.parametrize("control", ["never", "not_yet"])
def test_bootstrap_of_an_unbalanced_panel_used_whole_equals_in_memory(
    unbalanced, control, base_period, cluster
) -> None:
    """The multiplier bootstrap by unit or by cluster and, with clusters, the restricted wild cluster bootstrap's
    p-values and intervals: its counts of each cell's units per cluster come from the pairs of periods observed."""
    frame, path = unbalanced
    kw = dict(BOOT, control=control, base_period=base_period, cluster=cluster, allow_unbalanced_panel=True)
    mem, w_mem = _with_warnings(staggered_did, frame, **kw)
    ooc, w_ooc = _with_warnings(staggered_did_ooc, path, batch_rows=300_001, threads=2, **kw)
    assert w_mem == w_ooc
    assert ("restricted wild cluster bootstrap" in ooc.inference) == (cluster is not None)
    _same_boot(mem, ooc)


def test_cluster_bootstrap_of_a_small_unbalanced_panel_flags_the_same_cells(tmp_path) -> None:
    """Few clusters, cells whose treated side lies in one cluster, cut into tiny batches: the same bands and flags."""
    frame = _panel(400, n_periods=6, seed=31, n_clusters=5)
    gappy = frame[np.random.default_rng(3).random(len(frame)) > 0.3]
    gappy = gappy[~((gappy["g"] == 6) & (gappy["cl"] != 2))]  # cohort 6 lives in cluster 2 only
    gappy = gappy.assign(g=gappy["g"].where(gappy["id"] != gappy["id"].iloc[0], 5))  # cohort 5: a single unit
    path = tmp_path / "few.parquet"
    gappy.to_parquet(path, index=False)
    for cluster in (None, "cl"):
        kw = dict(BOOT, cluster=cluster, control="not_yet", allow_unbalanced_panel=True)
        mem, w_mem = _with_warnings(staggered_did, gappy, **kw)
        ooc, w_ooc = _with_warnings(staggered_did_ooc, path, batch_rows=50, threads=3, **kw)
        assert w_mem == w_ooc
        _same_boot(mem, ooc)


@pytest.mark.parametrize("cluster", [None, "cl"])
@pytest.mark.parametrize("control", ["never", "not_yet"])
@pytest.mark.parametrize("method", METHODS)
def test_bootstrap_with_covariates_equals_in_memory(big_cov, method, control, cluster) -> None:
    frame, path = big_cov
    kw = dict(BOOT, method=method, control=control, cluster=cluster, covariates=COVS)
    mem, w_mem = _with_warnings(staggered_did, frame, **kw)
    ooc, w_ooc = _with_warnings(staggered_did, str(path), **kw)
    assert w_mem == w_ooc
    _same_boot(mem, ooc)


def test_bootstrap_with_covariates_whatever_the_sharding(tmp_path) -> None:
    frame = _cov_panel(4_000, n_periods=6, seed=23)
    folder = tmp_path / "parts"
    folder.mkdir()
    for i, (a, b) in enumerate(zip([0, 5_001, 17_777], [5_001, 17_777, len(frame)], strict=True)):
        frame.iloc[a:b].to_parquet(folder / f"part-{i:03d}.parquet", index=False)
    for cluster in (None, "cl"):
        kw = dict(BOOT, method="dr", cluster=cluster, covariates=COVS)
        mem = _quiet(staggered_did, frame, **kw)
        _same_boot(mem, _quiet(staggered_did_ooc, folder, batch_rows=333, threads=3, **kw))


def test_weights_on_a_million_rows_equal_in_memory(big_cov, tmp_path) -> None:
    """Sampling weights on the large panel: dr, not-yet controls, clusters (tests/test_staggered_ooc_weights.py has
    the matrix of methods and controls on small panels)."""
    frame, _ = big_cov
    w = np.random.default_rng(41).uniform(0.2, 3.0, len(frame) // 10)
    frame = frame.assign(w=np.repeat(w, 10))
    path = tmp_path / "weighted.parquet"
    frame.to_parquet(path, index=False, row_group_size=300_000)
    kw = dict(KW, method="dr", control="not_yet", cluster="cl", covariates=COVS, weights="w")
    mem, w_mem = _with_warnings(staggered_did, frame, **kw)
    ooc, w_ooc = _with_warnings(staggered_did, str(path), **kw)
    assert w_mem == w_ooc and ooc.info["out_of_core"]["rows"] == 1_000_000
    _same(mem, ooc)
