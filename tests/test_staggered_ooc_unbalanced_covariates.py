"""Out of core, an unbalanced panel used whole with time-invariant covariates (estimators/staggered_ooc_rc.py).

The reference is the in-memory estimator on the same rows (evaluator/estimators/staggered_rc.py: DRDID's
repeated cross-section estimators on each cell's rows, influence functions summed within units, checked
against R did there); out of core the same per-row formulas run block by block and their sums are added, so
the two agree to rounding: 1e-10, as the other out-of-core tests (observed ~1e-14).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.errors import DataError, DesignError, FewClustersWarning, TrimmingWarning
from evaluator.estimators.staggered import staggered_did
from evaluator.estimators.staggered_ooc import staggered_did_ooc
from tests.test_staggered_ooc import BOOT, COVS, KW, _cov_panel, _same, _same_boot, _with_warnings

METHODS = ("dr", "ipw", "reg")
UNBALANCED = dict(allow_unbalanced_panel=True, covariates=COVS)


def _gappy(frame: pd.DataFrame, share: float = 0.15, seed: int = 0) -> pd.DataFrame:
    """The panel with a share of its rows missing at random (still sorted by unit, then period)."""
    return frame[np.random.default_rng(seed).random(len(frame)) > share].reset_index(drop=True)


@pytest.fixture(scope="module")
def big_gappy(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """120,000 units x 10 periods with 15% of the rows missing (about 1.02 million rows) and 2 covariates."""
    frame = _gappy(_cov_panel(120_000, seed=51))
    path = tmp_path_factory.mktemp("ooc_rc") / "gappy.parquet"
    frame.to_parquet(path, index=False, row_group_size=300_000)
    return frame, path


@pytest.fixture(scope="module")
def small_gappy(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """3,000 units x 7 periods, 20% of the rows missing, late and early cohorts, weights, as a folder of files cut
    inside units."""
    frame = _cov_panel(3_000, n_periods=7, seed=52)
    frame = frame.assign(g=np.where(frame["id"] % 19 == 0, 12, np.where(frame["id"] % 31 == 0, 1, frame["g"])))
    frame = _gappy(frame, 0.2, seed=1)
    w = np.random.default_rng(2).uniform(0.3, 2.5, frame["id"].max() + 1)
    frame = frame.assign(w=w[frame["id"].to_numpy()])
    folder = tmp_path_factory.mktemp("ooc_rc") / "parts"
    folder.mkdir()
    cuts = [0, 4_001, 9_999, 13_333, len(frame)]
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        frame.iloc[a:b].to_parquet(folder / f"part-{i:03d}.parquet", index=False)
    return frame, folder


@pytest.mark.parametrize("control", ["never", "not_yet"])
@pytest.mark.parametrize("method", METHODS)
def test_a_million_unbalanced_rows_with_covariates_equal_in_memory(big_gappy, method, control) -> None:
    frame, path = big_gappy
    kw = dict(KW, **UNBALANCED, method=method, control=control, cluster="cl" if control == "never" else None)
    mem, w_mem = _with_warnings(staggered_did, frame, **kw)
    ooc, w_ooc = _with_warnings(staggered_did, str(path), **kw)
    assert w_mem == w_ooc
    assert "unbalanced panel" in ooc.estimator and ooc.info["method"] == method
    assert ooc.info["out_of_core"]["rows"] == len(frame) > 1_000_000
    # the rows pass, the cells' sums, the logits' Newton steps (shared), the scores, the influence functions
    passes = ooc.info["out_of_core"]["passes"]
    assert passes == 3 if method == "reg" else passes > 4
    _same(mem, ooc)


@pytest.mark.parametrize("weights", [None, "w"])
@pytest.mark.parametrize("cluster", [None, "cl"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
@pytest.mark.parametrize("control", ["never", "not_yet"])
@pytest.mark.parametrize("method", METHODS)
def test_every_option_equals_in_memory(small_gappy, method, control, base_period, cluster, weights) -> None:
    """Methods, controls, base periods, clusters and sampling weights; late cohorts (never treated) and an early one
    (dropped), as in memory with the same warnings."""
    frame, folder = small_gappy
    kw = dict(KW, **UNBALANCED, method=method, control=control, base_period=base_period, cluster=cluster)
    kw["weights"] = weights
    mem, w_mem = _with_warnings(staggered_did, frame, **kw)
    ooc, w_ooc = _with_warnings(staggered_did_ooc, folder, batch_rows=997, threads=2, **kw)
    assert w_mem == w_ooc and any("dropped" in w for w in w_ooc)
    _same(mem, ooc)


@pytest.mark.parametrize("weights", [None, "w"])
@pytest.mark.parametrize("cluster", [None, "cl"])
@pytest.mark.parametrize("method", METHODS)
def test_bootstraps_equal_in_memory(small_gappy, method, cluster, weights) -> None:
    """The multiplier bootstrap by unit or cluster and the restricted wild cluster bootstrap: the same seed, the same
    draws and intervals."""
    frame, folder = small_gappy
    kw = dict(BOOT, **UNBALANCED, method=method, control="not_yet", cluster=cluster, weights=weights)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        mem = staggered_did(frame, **kw)
        ooc = staggered_did_ooc(folder, batch_rows=1_201, threads=3, **kw)
    assert ("restricted wild cluster bootstrap" in ooc.inference) == (cluster is not None)
    _same_boot(mem, ooc)


def test_the_numbers_do_not_depend_on_the_sharding(small_gappy, tmp_path) -> None:
    """One file or a folder cut inside units, big or tiny batches, one thread or three: the same numbers and draws."""
    frame, folder = small_gappy
    file = tmp_path / "one.parquet"
    frame.to_parquet(file, index=False)
    kw = dict(BOOT, **UNBALANCED, method="dr", cluster="cl")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        ref = staggered_did_ooc(file, **kw)
        for source, batch_rows, threads in ((folder, 50, 1), (folder, 7_777, 3), (file, 333, 2)):
            _same_boot(ref, staggered_did_ooc(source, batch_rows=batch_rows, threads=threads, **kw))


@pytest.mark.parametrize("method", METHODS)
def test_edge_cases_as_in_memory(tmp_path, method) -> None:
    """No never-treated units, anticipation, a cohort missing its base period, string ids, one covariate, trimming,
    and a balanced panel (the panel estimator, as in memory)."""
    base = _gappy(_cov_panel(1_500, n_periods=7, seed=53), 0.2, seed=3)
    strong = _cov_panel(1_500, n_periods=8, seed=54, separation=3.0)
    outlier = (strong["g"] == 0) & (strong["id"] % 97 == 0)  # never treated, beyond the treated: scores >= 0.995
    strong = _gappy(strong.assign(x1=np.where(outlier, strong["x1"] + 6.0, strong["x1"])), 0.1, seed=4)
    cases = [
        (base[base["g"] > 0], dict(control="not_yet", cluster="cl")),
        (base, dict(anticipation=1, control="not_yet")),
        (base[~((base["g"] == 6) & (base["t"] == 5))], {}),  # a cell without its period's rows: skipped
        (base.assign(id="u" + base["id"].astype(str).str.zfill(5), cl="c" + base["cl"].astype(str)), {}),
        (base, dict(covariates=["x1"], cluster="cl")),
        (strong, dict(control="not_yet")),
        (_cov_panel(600, n_periods=5, seed=55), dict(cluster="cl")),  # balanced after all
    ]
    trimmed = False
    for i, (data, extra) in enumerate(cases):
        path = tmp_path / f"case{i}.parquet"
        data.to_parquet(path, index=False)
        kw = {**KW, **UNBALANCED, "method": method, **extra}
        mem, w_mem = _with_warnings(staggered_did, data, **kw)
        ooc, w_ooc = _with_warnings(staggered_did_ooc, path, batch_rows=101, threads=2, **kw)
        assert w_mem == w_ooc, i
        trimmed |= any(w.startswith(TrimmingWarning.__name__) for w in w_ooc)
        _same(mem, ooc)
    assert "unbalanced panel" not in ooc.estimator  # the last, balanced, case: the panel estimator
    assert trimmed == (method != "reg")


def test_covariate_faults_name_units_and_rows(tmp_path) -> None:
    """A covariate varying within a unit names the unit; a missing value its data row; collinear covariates and a
    cell whose design is singular raise the in-memory DesignError."""
    frame = _gappy(_cov_panel(300, n_periods=5, seed=56), 0.2, seed=5)
    kw = dict(KW, **UNBALANCED, method="dr")
    varying = frame.copy()
    varying.loc[varying.index[varying["id"] == 17][1], "x2"] += 1.0
    varying.to_parquet(tmp_path / "varying.parquet", index=False)
    with pytest.raises(DataError, match=r"covariate 'x2' varies within units 17; out of core the covariates must"):
        staggered_did(tmp_path / "varying.parquet", **kw)
    gap = frame.copy()
    gap.loc[gap.index[41], "x1"] = np.nan
    gap.to_parquet(tmp_path / "gap.parquet", index=False)
    for source in (gap, tmp_path / "gap.parquet"):
        with pytest.raises(DataError, match=rf"column 'x1': 1 missing value\(s\) out of {len(gap)}") as err:
            staggered_did(source, **kw)
        assert "data rows 42" in str(err.value)
    twin = frame.assign(x3=2.0 * frame["x1"] - 1.0)
    twin.to_parquet(tmp_path / "twin.parquet", index=False)
    for source in (twin, tmp_path / "twin.parquet"):
        with pytest.raises(DesignError, match=r"covariates are collinear .*: \['x3'\]"):
            staggered_did(source, **{**kw, "covariates": [*COVS, "x3"]})
    # a covariate constant among the controls only (cohorts 6 and 8 come after the last period: never treated): the
    # controls' regression of the first cell is singular, named with its rows
    lone = frame.assign(x3=np.where(frame["g"] == 4, frame["x1"] ** 2, 0.0))
    lone.to_parquet(tmp_path / "lone.parquet", index=False)
    errors = []
    for source in (lone, tmp_path / "lone.parquet"):
        with pytest.raises(
            DesignError, match=r"cannot fit the covariate models for ATT\(4,2\): .* control rows"
        ) as err:
            staggered_did(source, **{**kw, "method": "reg", "covariates": [*COVS, "x3"]})
        errors.append(str(err.value))
    assert errors[0] == errors[1]
