"""Sampling weights in staggered_did out of core (evaluator/estimators/staggered_ooc.py).

The reference is the in-memory staggered_did on the same rows with the same ``weights=`` (R did's
``weightsname``, checked against R in tests/test_staggered_weights.py): the weighted moments combined
over shards give the same numbers to rounding, with the tolerances and helpers of
tests/test_staggered_ooc.py. The panels are small (50,000 rows) so that the matrix of cases stays fast;
one case on a million rows is in tests/test_staggered_ooc.py.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.errors import FewClustersWarning, WeightsError
from evaluator.estimators.staggered import staggered_did
from evaluator.estimators.staggered_ooc import staggered_did_ooc
from tests.test_staggered_ooc import BOOT, COVS, KW, TOL, _cov_panel, _same, _same_boot

#: Rows per record batch: units straddle batches, and the two threads reduce blocks out of order.
OOC = dict(batch_rows=4_999, threads=2)


def _weighted(frame: pd.DataFrame, seed: int = 0, zero: float = 0.03) -> pd.DataFrame:
    """``frame`` with a sampling weight per unit in column ``w`` (a few units of weight 0)."""
    n_periods = int(frame["t"].nunique())
    n_units = len(frame) // n_periods
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.2, 3.0, n_units)
    w[rng.random(n_units) < zero] = 0.0
    return frame.assign(w=np.repeat(w, n_periods))


@pytest.fixture(scope="module")
def weighted(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """50,000 rows (5,000 units x 10 periods) with two covariates, 40 clusters and sampling weights."""
    frame = _weighted(_cov_panel(5_000, seed=31), seed=32)
    path = tmp_path_factory.mktemp("ooc_weights") / "weighted.parquet"
    frame.to_parquet(path, index=False)
    return frame, path


def _both(frame: pd.DataFrame, path: Path, **kw):
    """The in-memory and the out-of-core result, and each one's warnings."""
    out = []
    for fn, source, extra in ((staggered_did, frame, {}), (staggered_did_ooc, path, OOC)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            res = fn(source, **kw, **extra)
        out.append((res, [f"{type(w.message).__name__}: {w.message}" for w in caught]))
    (mem, w_mem), (ooc, w_ooc) = out
    assert w_mem == w_ooc
    return mem, ooc


# method, control, base period, cluster: every method with either control, clusters and the universal base for some
CASES = [
    ("unconditional", "never", "varying", None),
    ("unconditional", "not_yet", "universal", "cl"),
    ("reg", "never", "universal", "cl"),
    ("reg", "not_yet", "varying", None),
    ("ipw", "never", "varying", None),
    ("ipw", "not_yet", "varying", "cl"),
    ("dr", "never", "varying", "cl"),
    ("dr", "not_yet", "universal", None),
]


@pytest.mark.parametrize(("method", "control", "base_period", "cluster"), CASES)
def test_weighted_equals_in_memory(weighted, method, control, base_period, cluster) -> None:
    frame, path = weighted
    covs = None if method == "unconditional" else COVS
    kw = dict(KW, weights="w", method=method, covariates=covs, control=control, base_period=base_period)
    mem, ooc = _both(frame, path, cluster=cluster, **kw)
    assert ooc.info["weights"] == "w" and ooc.info["method"] == method
    assert ooc.info["cohort_weights"] == pytest.approx(mem.info["cohort_weights"], rel=1e-12)
    _same(mem, ooc)


@pytest.mark.parametrize(("method", "cluster"), [("unconditional", None), ("dr", "cl")])
def test_weighted_bootstrap_equals_in_memory(weighted, method, cluster) -> None:
    """The same seed gives the same draws, so the same bands (and, with clusters, the restricted wild cluster
    bootstrap, whose groups leave out units of weight 0 as in memory)."""
    frame, path = weighted
    covs = None if method == "unconditional" else COVS
    mem, ooc = _both(frame, path, **dict(BOOT, weights="w", method=method, covariates=covs, cluster=cluster))
    assert ("restricted wild cluster bootstrap" in ooc.inference) == (cluster is not None)
    _same_boot(mem, ooc)


def test_zero_weight_cohort_and_skipped_cells_as_in_memory(tmp_path) -> None:
    """A late cohort of weight 0: not-yet cells whose only controls weigh nothing are skipped, with the in-memory
    note; a treated cohort of weight 0 raises the in-memory error."""
    frame = _weighted(_cov_panel(600, n_periods=6, seed=33), seed=34)
    frame = frame[frame["g"] > 0]  # no never-treated: cohort 8 serves only as a not-yet-treated control
    light = frame.assign(w=np.where(frame["g"] == 8, 0.0, frame["w"]))
    path = tmp_path / "light.parquet"
    light.to_parquet(path, index=False)
    for method in ("unconditional", "dr"):
        covs = None if method == "unconditional" else COVS
        mem, ooc = _both(light, path, **dict(KW, weights="w", control="not_yet", method=method, covariates=covs))
        assert any("control unit of positive weight were skipped" in n for n in ooc.notes)
        _same(mem, ooc)
    frame.assign(w=np.where(frame["g"] == 4, 0.0, frame["w"])).to_parquet(path, index=False)
    with pytest.raises(WeightsError, match=r"zero for every unit of 1 cohort(.|\n)*cohorts 4"):
        staggered_did(path, **KW, weights="w", control="not_yet")


def _problems(source, **kw) -> tuple:
    with pytest.raises(WeightsError) as err, warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        staggered_did(source, **kw)
    return err.value.problems


@pytest.mark.parametrize("fault", ["missing", "negative", "varying", "all"])
def test_bad_weights_raise_the_in_memory_error(tmp_path, fault) -> None:
    """The same WeightsError, problem for problem: the column, the data rows, the units and the fix."""
    frame = _weighted(_cov_panel(300, n_periods=5, seed=35), seed=36, zero=0.0)
    bad = frame.copy()
    if fault in ("missing", "all"):
        bad.loc[bad.index[[3, 41]], "w"] = np.nan
    if fault in ("negative", "all"):
        bad.loc[bad["id"] == 7, "w"] = -1.0
        bad.loc[bad.index[100], "w"] = -np.inf
    if fault in ("varying", "all"):
        bad.loc[bad["id"].isin([12, 250]) & (bad["t"] == 4), "w"] += 1.0
    if fault == "all":  # and a unit missing a period: the rows named are the caller's, before balancing
        bad = bad.drop(index=bad.index[bad["id"] == 20][:1])
    path = tmp_path / "bad.parquet"
    bad.to_parquet(path, index=False)
    mem = _problems(bad, **KW, weights="w")
    ooc = _problems(path, **KW, weights="w")
    assert ooc == mem
    text = "\n".join(map(str, ooc))
    assert "column 'w'" in text
    expect = {
        "missing": r"2 missing weight\(s\) out of 1500(.|\n)*data rows 4, 42",
        "negative": r"6 negative weight\(s\)(.|\n)*data rows 31, 32, 33, 34, 35 \(6 in all\)",
        "varying": r"vary within 2 of 300 units(.|\n)*units 12, 250(.|\n)*transform\('first'\)",
        "all": r"out of 1499(.|\n)*infinite weight(.|\n)*negative weight(.|\n)*vary within 2 of 300 units",
    }[fault]
    assert re.search(expect, text), text
    # weights that are not numbers, and zero everywhere
    frame.assign(w="heavy").to_parquet(path, index=False)
    with pytest.raises(WeightsError, match="column 'w': must be numeric"):
        staggered_did(path, **KW, weights="w")
    frame.assign(w=0.0).to_parquet(path, index=False)
    assert _problems(path, **KW, weights="w") == _problems(frame.assign(w=0.0), **KW, weights="w")


def test_scaling_the_weights_changes_nothing_out_of_core(tmp_path) -> None:
    """Only the ratios of the weights matter: every weight times a constant gives the same numbers; weights all 1
    give the unweighted ones."""
    frame = _weighted(_cov_panel(1_500, n_periods=6, seed=37), seed=38)
    frame = frame.assign(w10=10.0 * frame["w"], w3=frame["w"] / 3.0, one=1.0)
    path = tmp_path / "scaled.parquet"
    frame.to_parquet(path, index=False)
    for method, covs in (("unconditional", None), ("dr", COVS)):
        kw = dict(KW, method=method, covariates=covs, control="not_yet", cluster="cl", **OOC)
        base = staggered_did_ooc(path, weights="w", **kw)
        for column in ("w10", "w3"):
            other = staggered_did_ooc(path, weights=column, **kw)
            for kind in (None, "dynamic", "group"):
                a = base.table if kind is None else base.aggregate(kind).table
                b = other.table if kind is None else other.aggregate(kind).table
                for col in ("estimate", "std_error"):
                    np.testing.assert_allclose(b[col], a[col], **TOL, err_msg=f"{column} {kind} {col}")
        ones = staggered_did_ooc(path, weights="one", **kw)
        plain = staggered_did_ooc(path, **kw)
        for col in ("estimate", "std_error"):
            np.testing.assert_allclose(ones.table[col], plain.table[col], **TOL, err_msg=col)


@pytest.fixture(scope="module")
def weighted_gaps(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """An unbalanced weighted panel: 8,000 units x 8 periods with 15% of the rows missing, a few units of weight 0,
    a cohort first treated in the first period (dropped) and one after the last (used as never treated)."""
    frame = _weighted(_cov_panel(8_000, n_periods=8, seed=43), seed=44)
    frame = frame.assign(g=np.where(frame["id"] % 23 == 0, 11, np.where(frame["id"] % 29 == 0, 1, frame["g"])))
    frame = frame[np.random.default_rng(45).random(len(frame)) > 0.15].reset_index(drop=True)
    path = tmp_path_factory.mktemp("ooc_weights") / "gaps.parquet"
    frame.to_parquet(path, index=False)
    return frame, path


# control, base period, cluster, draws: analytic SEs, the multiplier bootstrap by unit and by cluster (with the
# restricted wild cluster bootstrap)
UNBALANCED_CASES = [
    ("never", "varying", None, 0),
    ("not_yet", "universal", "cl", 0),
    ("not_yet", "varying", None, 99),
    ("never", "varying", "cl", 99),
    ("not_yet", "universal", "cl", 99),
]


@pytest.mark.parametrize(("control", "base_period", "cluster", "n_boot"), UNBALANCED_CASES)
def test_weights_with_an_unbalanced_panel_used_whole_equal_in_memory(
    weighted_gaps, control, base_period, cluster, n_boot
) -> None:
    frame, path = weighted_gaps
    kw = dict(BOOT if n_boot else KW, weights="w", control=control, base_period=base_period, cluster=cluster)
    mem, ooc = _both(frame, path, allow_unbalanced_panel=True, **kw)
    assert "unbalanced panel" in ooc.estimator and ooc.info["n_obs"] == mem.info["n_obs"] < len(frame)
    assert ooc.info["cohort_weights"] == pytest.approx(mem.info["cohort_weights"], rel=1e-12)
    assert any("sampling weights 'w'" in n for n in ooc.notes)
    (_same_boot if n_boot else _same)(mem, ooc)
    # and not the unweighted numbers
    plain = staggered_did_ooc(path, allow_unbalanced_panel=True, **{**kw, "weights": None}, **OOC)
    assert not np.allclose(plain.table["estimate"], ooc.table["estimate"])


def test_weights_with_an_unbalanced_panel_edge_cases_as_in_memory(tmp_path) -> None:
    """A balanced panel with allow_unbalanced_panel=True (the panel estimator), a late cohort of weight 0 as the
    only not-yet control of some cells, a treated cohort of weight 0 (the in-memory error), scaled weights."""
    frame = _weighted(_cov_panel(900, n_periods=6, seed=46), seed=47)
    path = tmp_path / "balanced.parquet"
    frame.to_parquet(path, index=False)
    kw = dict(KW, weights="w", allow_unbalanced_panel=True)
    mem, ooc = _both(frame, path, cluster="cl", **kw)
    assert "unbalanced panel" not in ooc.estimator
    _same(mem, ooc)
    gaps = frame[np.random.default_rng(48).random(len(frame)) > 0.2]
    light = gaps[gaps["g"] > 0].assign(w=lambda d: np.where(d["g"] == 8, 0.0, d["w"]))
    light.to_parquet(path, index=False)
    mem, ooc = _both(light, path, **{**kw, "control": "not_yet"})
    assert any("control observation were skipped: (4,6), (6,4)" in n for n in ooc.notes)
    _same(mem, ooc)
    light.assign(w=light["w"] * 7.5).to_parquet(path, index=False)
    scaled = staggered_did_ooc(path, **{**kw, "control": "not_yet"}, **OOC)
    for col in ("estimate", "std_error"):
        np.testing.assert_allclose(scaled.table[col], ooc.table[col], **TOL, err_msg=col)
    zero = gaps.assign(w=np.where(gaps["g"] == 4, 0.0, gaps["w"]))
    zero.to_parquet(path, index=False)
    with pytest.raises(WeightsError, match=r"zero for every unit of 1 cohort(.|\n)*cohorts 4"):
        staggered_did(path, **kw)
    with pytest.raises(WeightsError, match=r"zero for every unit of 1 cohort(.|\n)*cohorts 4"):
        staggered_did(zero, **kw)


def test_bad_weights_of_an_unbalanced_panel_raise_the_in_memory_error(tmp_path) -> None:
    frame = _weighted(_cov_panel(300, n_periods=5, seed=49), seed=50, zero=0.0)
    bad = frame.drop(index=frame.index[frame["id"] == 20][:1])  # unbalanced
    bad.loc[bad.index[[3, 41]], "w"] = np.nan
    bad.loc[bad["id"].isin([12, 250]) & (bad["t"] == 4), "w"] += 1.0
    path = tmp_path / "bad.parquet"
    bad.to_parquet(path, index=False)
    kw = dict(KW, weights="w", allow_unbalanced_panel=True)
    assert _problems(path, **kw) == _problems(bad, **kw)
