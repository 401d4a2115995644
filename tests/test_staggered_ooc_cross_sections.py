"""Repeated cross-sections out of core: ``staggered_did(path, panel=False)`` (evaluator/estimators/staggered_ooc.py).

Out of core the rows are read as a panel of one-row units, numbered as they are read
(:class:`evaluator.data.shards.RowNumbered`): every cell is then the unbalanced panel's (the difference of four
means over its two periods' rows, or DRDID's repeated cross-section estimators with covariates, each row its own
values), and the reference is the in-memory ``panel=False`` estimator on the same rows (checked against R did in
tests/test_staggered_rc.py). Agreement to 1e-10, as the other out-of-core tests (observed ~1e-14).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.errors import DataError, DesignError, FewClustersWarning, WeightsError
from evaluator.estimators.staggered import staggered_did
from evaluator.estimators.staggered_ooc import staggered_did_ooc
from tests.test_staggered_ooc import _cov_panel, _same, _same_boot, _with_warnings

CROSS = dict(outcome="y", time="t", cohort="g", panel=False, n_boot=0)


def _cross_sections(n_units: int, n_periods: int = 7, seed: int = 0, share: float = 0.3) -> pd.DataFrame:
    """Different people in each period: a share of a simulated panel's rows, in period order, without the unit
    column; late and early cohorts, sampling weights, and a covariate that varies by row."""
    frame = _cov_panel(n_units, n_periods=n_periods, seed=seed)
    frame = frame.assign(g=np.where(frame["id"] % 19 == 0, 12, np.where(frame["id"] % 31 == 0, 1, frame["g"])))
    rows = frame.sample(frac=share, random_state=seed).sort_values("t", kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed + 1)
    return rows.drop(columns="id").assign(
        w=rng.uniform(0.3, 2.0, len(rows)), x2=rows["x2"] + rng.normal(size=len(rows))
    )


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """About 8,400 rows as a folder of 3 files."""
    frame = _cross_sections(4_000)
    folder = tmp_path_factory.mktemp("ooc_cross") / "parts"
    folder.mkdir()
    for i, (a, b) in enumerate(zip([0, 2_001, 5_555], [2_001, 5_555, len(frame)], strict=True)):
        frame.iloc[a:b].to_parquet(folder / f"part-{i}.parquet", index=False)
    return frame, folder


@pytest.mark.parametrize("weights", [None, "w"])
@pytest.mark.parametrize("cluster", [None, "cl"])
@pytest.mark.parametrize("base_period", ["varying", "universal"])
@pytest.mark.parametrize("control", ["never", "not_yet"])
@pytest.mark.parametrize("method", ["unconditional", "dr", "ipw", "reg"])
def test_every_option_equals_in_memory(small, method, control, base_period, cluster, weights) -> None:
    frame, folder = small
    covs = None if method == "unconditional" else ["x1", "x2"]
    kw = dict(CROSS, method="dr" if covs is None else method, covariates=covs, control=control)
    kw.update(base_period=base_period, cluster=cluster, weights=weights)
    mem, w_mem = _with_warnings(staggered_did, frame, **kw)
    ooc, w_ooc = _with_warnings(staggered_did_ooc, folder, batch_rows=701, threads=2, **kw)
    assert w_mem == w_ooc and any("dropped" in w and "observations" in w for w in w_ooc)
    assert "repeated cross-sections" in ooc.estimator and ooc.info["panel"] is False
    assert ooc.info["n_units"] == mem.info["n_units"] < len(frame)  # the observations (early cohort dropped)
    _same(mem, ooc)


@pytest.mark.parametrize("cluster", [None, "cl"])
@pytest.mark.parametrize("method", ["unconditional", "dr"])
def test_bootstraps_equal_in_memory(small, method, cluster) -> None:
    """Draws keyed to each row's position (or its cluster): the same seed, the same draws as in memory."""
    frame, folder = small
    covs = None if method == "unconditional" else ["x1", "x2"]
    kw = dict(CROSS, covariates=covs, cluster=cluster, control="not_yet", weights="w", n_boot=99, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        mem = staggered_did(frame, **kw)
        ooc = staggered_did_ooc(folder, batch_rows=997, **kw)
    _same_boot(mem, ooc)


def test_a_million_rows_of_cross_sections(tmp_path) -> None:
    frame = _cross_sections(150_000, n_periods=10, seed=3, share=0.7)
    path = tmp_path / "cross.parquet"
    frame.to_parquet(path, index=False, row_group_size=250_000)
    for covs in (None, ["x1", "x2"]):
        kw = dict(CROSS, covariates=covs, cluster="cl")
        mem = staggered_did(frame, **kw)
        ooc = staggered_did(str(path), **kw)
        assert ooc.info["out_of_core"]["rows"] == len(frame) > 1_000_000
        _same(mem, ooc)


def test_bad_input_names_the_rows_or_says_what_to_do(small, tmp_path) -> None:
    frame, folder = small
    gap = frame.copy()
    gap.loc[gap.index[99], "y"] = np.nan
    gap.to_parquet(tmp_path / "gap.parquet", index=False)
    for source in (gap, tmp_path / "gap.parquet"):
        with pytest.raises(DataError, match=r"(?s)column 'y': 1 missing value\(s\) out of \d+.*data rows 100"):
            staggered_did(source, **CROSS)
    negative = frame.copy()
    negative.loc[negative.index[7], "w"] = -1.0
    negative.to_parquet(tmp_path / "negative.parquet", index=False)
    errors = []
    for source in (negative, tmp_path / "negative.parquet"):
        with pytest.raises(WeightsError, match=r"(?s)'w'.*negative") as err:
            staggered_did(source, **{**CROSS, "weights": "w"})
        errors.append(str(err.value))
    assert errors[0].split("\n", 1)[1] == errors[1].split("\n", 1)[1]  # the same words, naming data row 8
    assert "at data rows 8" in errors[1]
    with pytest.raises(NotImplementedError, match=r"unit='cl': .* leave unit out"):
        staggered_did(folder, unit="cl", **CROSS)
    frame[frame["t"] == 3].to_parquet(tmp_path / "one.parquet", index=False)
    for source in (frame[frame["t"] == 3], tmp_path / "one.parquet"):
        with pytest.raises(DesignError, match="fewer than two periods"):
            staggered_did(source, **CROSS)
