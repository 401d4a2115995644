"""staggered_did out of core on a Dask cluster (evaluator/data/shards.py BlockPasses, executor=Client).

One real LocalCluster (2 worker processes of one thread, loopback) for the module. The reference is the
in-memory staggered_did on the same rows, as in tests/test_staggered_ooc.py: on the cluster the source is
read in parts of contiguous rows (Parquet row groups, a Dask DataFrame's partitions) whose boundaries cut
units, each part's blocks are reduced by a worker and the units at the boundaries by the client, so the
numbers agree to rounding (1e-10) and the errors name the same global data rows as in one process.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from evaluator.data.shards import BlockPasses, map_unit_blocks, open_dask_frame, open_dataset
from evaluator.errors import DataError, FewClustersWarning
from evaluator.estimators.staggered import staggered_did
from evaluator.estimators.staggered_ooc import staggered_did_ooc
from tests.test_staggered_ooc import BOOT, COVS, KW, _cov_panel, _panel, _same, _same_boot

distributed = pytest.importorskip(
    "distributed", reason="dask.distributed is not installed (pip install 'evaluator[cluster]')"
)
dd = pytest.importorskip("dask.dataframe", reason="dask.dataframe is not installed (pip install 'dask[dataframe]')")

#: Rows per record batch in the small-data tests: units straddle batches as well as parts.
BATCH = 7_001


@pytest.fixture(scope="module")
def client():
    """A LocalCluster of 2 worker processes (one thread each) on the loopback interface, for the module."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    )
    c = distributed.Client(cluster, set_as_default=False)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


def _write_folder(frame: pd.DataFrame, folder: Path, cuts: list[int], row_group: int) -> Path:
    """``frame`` as Parquet files cut at rows ``cuts`` (inside units), in row groups of ``row_group`` rows."""
    folder.mkdir()
    for i, (a, b) in enumerate(zip(cuts, [*cuts[1:], len(frame)], strict=True)):
        frame.iloc[a:b].to_parquet(folder / f"part-{i:03d}.parquet", index=False, row_group_size=row_group)
    return folder


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        return fn(*args, **kwargs)


def _cuts_units(passes: BlockPasses, n_periods: int) -> None:
    """The plan has several parts, and some part starts inside a unit (so boundaries are stitched)."""
    starts = [p.first_row for p in passes.parts()]
    assert len(starts) >= 4, starts
    assert any(s % n_periods for s in starts), starts


@pytest.fixture(scope="module")
def big(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """1,000,000 rows (100,000 units x 10 periods) in 4 files cut inside units, row groups that cut units too."""
    frame = _panel(100_000)
    return frame, _write_folder(frame, tmp_path_factory.mktemp("dask") / "big", [0, 250_003, 500_000, 777_777], 99_991)


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[pd.DataFrame, Path]:
    """24,000 units x 8 periods with two time-invariant covariates, in 3 files, row groups cutting units."""
    frame = _cov_panel(24_000, n_periods=8, seed=31)
    return frame, _write_folder(frame, tmp_path_factory.mktemp("dask") / "small", [0, 60_005, 123_457], 9_997)


def test_a_million_rows_on_the_cluster_equal_in_memory(client, big) -> None:
    frame, folder = big
    dataset, _ = open_dataset(folder)
    _cuts_units(BlockPasses(dataset, {"unit": "id", "time": "t"}, executor=client), 10)
    for kw in (dict(KW, cluster="cl"), dict(KW, control="not_yet", base_period="universal")):
        mem = _quiet(staggered_did, frame, **kw)
        ooc = _quiet(staggered_did, folder, executor=client, **kw)
        info = ooc.info["out_of_core"]
        assert info["rows"] == 1_000_000 and info["executor"].startswith("dask tcp://127.0.0.1:")
        assert "(2 workers, 2 threads)" in info["executor"] and info["parts"] == 6
        _same(mem, ooc)


#: Every method with both controls, both base periods, with and without clusters (each pair at least once).
CASES = [
    ("unconditional", "never", "varying", None),
    ("unconditional", "not_yet", "universal", "cl"),
    ("reg", "never", "universal", "cl"),
    ("reg", "not_yet", "varying", None),
    ("ipw", "never", "varying", "cl"),
    ("ipw", "not_yet", "universal", None),
    ("dr", "never", "universal", None),
    ("dr", "not_yet", "varying", "cl"),
]


@pytest.mark.parametrize(("method", "control", "base_period", "cluster"), CASES)
def test_methods_controls_and_base_periods_on_the_cluster(client, small, method, control, base_period, cluster):
    """Every method with both controls, both base periods, with and without clusters (each pair at least once)."""
    frame, folder = small
    covs = [] if method == "unconditional" else COVS
    kw = dict(KW, method=method, control=control, base_period=base_period, cluster=cluster, covariates=covs)
    mem = _quiet(staggered_did, frame, **kw)
    ooc = _quiet(staggered_did_ooc, folder, executor=client, batch_rows=BATCH, **kw)
    assert ooc.info["out_of_core"]["parts"] == 6 and ooc.info["method"] == method
    _same(mem, ooc)


@pytest.mark.parametrize(("method", "control", "base_period", "cluster"), CASES)
def test_bootstrap_on_the_cluster_equals_in_memory(client, small, method, control, base_period, cluster):
    """The same seed, the same draws: keyed to units or clusters, whichever worker sums them."""
    frame, folder = small
    covs = [] if method == "unconditional" else COVS
    kw = dict(BOOT, method=method, control=control, base_period=base_period, cluster=cluster, covariates=covs)
    mem = _quiet(staggered_did, frame, **kw)
    ooc = _quiet(staggered_did_ooc, folder, executor=client, batch_rows=BATCH, **kw)
    assert ooc.info["out_of_core"]["parts"] == 6
    _same_boot(mem, ooc)


def test_weights_on_the_cluster_equal_in_memory(client, small, tmp_path) -> None:
    """Sampling weights (some 0): the weighted moments and influence functions, summed by the workers, and the
    same keyed draws of the doubly robust cells with clusters as in memory."""
    frame, _ = small
    w = np.random.default_rng(42).uniform(0.2, 3.0, len(frame) // 8)
    w[::37] = 0.0
    frame = frame.assign(w=np.repeat(w, 8))
    folder = _write_folder(frame, tmp_path / "weighted", [0, 60_005, 123_457], 9_997)
    kw = dict(BOOT, method="dr", control="not_yet", cluster="cl", covariates=COVS, weights="w")
    mem = _quiet(staggered_did, frame, **kw)
    ooc = _quiet(staggered_did_ooc, folder, executor=client, batch_rows=BATCH, **kw)
    assert ooc.info["out_of_core"]["parts"] == 6 and ooc.info["weights"] == "w"
    _same_boot(mem, ooc)


def test_bootstrap_of_a_million_rows_on_the_cluster(client, big) -> None:
    frame, folder = big
    for cluster in (None, "cl"):
        kw = dict(BOOT, cluster=cluster)
        _same_boot(_quiet(staggered_did, frame, **kw), _quiet(staggered_did, folder, executor=client, **kw))


def test_parts_of_the_small_folder_cut_units(client, small) -> None:
    frame, folder = small
    dataset, _ = open_dataset(folder)
    _cuts_units(BlockPasses(dataset, {"unit": "id", "time": "t"}, executor=client), 8)


@pytest.mark.parametrize("cluster", [None, "cl"])
def test_unbalanced_panel_used_whole_on_the_cluster(client, tmp_path, cluster) -> None:
    """Analytic SEs by unit; by cluster, the multiplier and restricted wild cluster bootstraps too."""
    frame = _panel(30_000, n_periods=8, seed=13)
    frame = frame.assign(g=np.where(frame["id"] % 23 == 0, 11, np.where(frame["id"] % 29 == 0, 1, frame["g"])))
    frame = frame[np.random.default_rng(0).random(len(frame)) > 0.15].reset_index(drop=True)
    folder = _write_folder(frame, tmp_path / "unbalanced", [0, 50_001, 120_000], 10_007)
    kw = dict(KW if cluster is None else BOOT, cluster=cluster, control="not_yet", allow_unbalanced_panel=True)
    with warnings.catch_warnings(record=True) as w_mem:
        warnings.simplefilter("always")
        mem = staggered_did(frame, **kw)
    with warnings.catch_warnings(record=True) as w_ooc:
        warnings.simplefilter("always")
        ooc = staggered_did(folder, executor=client, **kw)
    assert [str(w.message) for w in w_mem] == [str(w.message) for w in w_ooc]
    assert "unbalanced panel" in ooc.estimator and ooc.info["n_obs"] == mem.info["n_obs"] < len(frame)
    assert ooc.info["out_of_core"]["parts"] == 6
    (_same if cluster is None else _same_boot)(mem, ooc)


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
def test_unbalanced_panel_with_covariates_on_the_cluster(client, tmp_path, method) -> None:
    """Covariates with allow_unbalanced_panel=True: the cells' sums, the logits' Newton steps and the influence
    functions in tasks on the workers; by cluster with both bootstraps."""
    frame = _cov_panel(20_000, n_periods=7, seed=57)
    frame = frame[np.random.default_rng(2).random(len(frame)) > 0.15].reset_index(drop=True)
    folder = _write_folder(frame, tmp_path / "unbalanced_cov", [0, 30_001, 80_000], 10_007)
    kw = dict(BOOT, covariates=COVS, method=method, cluster="cl", control="not_yet", allow_unbalanced_panel=True)
    mem = _quiet(staggered_did, frame, **kw)
    ooc = _quiet(staggered_did, folder, executor=client, **kw)
    assert "unbalanced panel" in ooc.estimator and ooc.info["out_of_core"]["executor"] != "threads"
    _same_boot(mem, ooc)


def test_two_way_fixed_effects_on_the_cluster(client, small) -> None:
    """did (two-way fixed effects) out of core with the passes on the workers: the in-memory numbers."""
    from evaluator.estimators.twfe import did
    from tests.test_twfe_ooc import _same as same_did

    frame, folder = small
    kw = dict(outcome="y", unit="id", time="t", cohort="g", cluster="cl")
    ooc = did(folder, executor=client, **kw)
    assert ooc.info["out_of_core"]["executor"].startswith("dask")
    same_did(did(frame, **kw), ooc)


def test_dask_dataframes_on_the_cluster_and_on_their_own_scheduler(client, small) -> None:
    """dask.dataframe.read_parquet of the folder, and from_pandas with partitions cutting units."""
    frame, folder = small
    kw = dict(KW, method="dr", covariates=COVS, cluster="cl")
    mem = _quiet(staggered_did, frame, **kw)
    from_files = dd.read_parquet(str(folder))
    cut = dd.from_pandas(frame, npartitions=7)
    lengths = cut.map_partitions(len).compute().tolist()
    assert any(n % 8 for n in lengths), lengths  # a unit's rows in two partitions
    for ddf in (from_files, cut):
        for executor in (client, None):
            ooc = _quiet(staggered_did, ddf, executor=executor, **kw)
            info = ooc.info["out_of_core"]
            assert info["parts"] == ddf.npartitions and info["rows"] == len(frame)
            assert info["executor"] == ("dask default scheduler" if executor is None else info["executor"])
            _same(mem, ooc)
    # unconditional, unbalanced, from a Dask DataFrame
    gappy = frame[np.random.default_rng(3).random(len(frame)) > 0.1].reset_index(drop=True)
    kw = dict(KW, allow_unbalanced_panel=True)
    _same(_quiet(staggered_did, gappy, **kw), _quiet(staggered_did, dd.from_pandas(gappy, 5), executor=client, **kw))


def test_a_table_in_memory_is_sent_with_the_tasks(client, small) -> None:
    frame, _ = small
    table = pa.Table.from_pandas(frame.iloc[:40_000], preserve_index=False)
    kw = dict(KW, method="ipw", covariates=COVS, control="not_yet")
    mem = staggered_did(frame.iloc[:40_000], **kw)
    ooc = staggered_did(table, executor=client, **kw)
    assert ooc.info["out_of_core"]["parts"] == 6
    _same(mem, ooc)


def _error(source, **kwargs) -> str:
    with pytest.raises(DataError) as err:
        staggered_did(source, **KW, **kwargs)
    return str(err.value)


def test_errors_on_the_cluster_name_the_same_global_rows(client, tmp_path) -> None:
    """Duplicate rows, a missing unit id, missing outcomes and a cohort varying within a unit in late parts."""
    frame = _panel(6_000, n_periods=5, seed=6)
    bad = frame.copy()
    bad.loc[bad.index[24_002], "y"] = np.nan
    bad.loc[bad.index[(bad["id"] == 4_444) & (bad["t"] == 3)], "g"] = 5
    bad["id"] = bad["id"].astype("float64")
    bad.loc[bad.index[27_000], "id"] = np.nan  # a row without a unit id, in the last part
    dup = pd.concat([bad.iloc[:18_001], bad.iloc[18_000:18_001], bad.iloc[18_001:]], ignore_index=True)
    folder = _write_folder(dup, tmp_path / "bad", [0, 9_001, 17_998], 1_999)
    here = _error(folder)
    assert "data rows 18001, 18002" in here and "data rows 24004" in here and "data rows 27002" in here
    assert "varies within units 4444.0;" in here  # float ids: a missing id made the column float
    assert _error(folder, executor=client) == here
    ddf = dd.from_pandas(dup, npartitions=6)
    assert _error(ddf, executor=client) == here.replace(
        str(folder), f"the Dask DataFrame ({ddf.npartitions} partitions)"
    )


def test_unsorted_units_across_parts_and_within_a_part_are_named_as_in_process(client, tmp_path) -> None:
    frame = _panel(3_000, n_periods=5, seed=5)
    # the second half of the units first: the descent is at a part boundary (file and part start at row 7500)
    turned = pd.concat([frame.iloc[7_500:], frame.iloc[:7_500]], ignore_index=True)
    folder = _write_folder(turned, tmp_path / "turned", [0, 7_500], 1_250)
    dataset, _ = open_dataset(folder)
    assert 7_500 in [p.first_row for p in BlockPasses(dataset, {"unit": "id"}, executor=client).parts()]
    here = _error(folder)
    assert "unit 1 (data row 7501) comes after unit 3000 (data row 7500)" in here
    assert _error(folder, executor=client) == here
    # two units' rows swapped inside the second file
    swapped = frame.copy()
    swapped.iloc[10_000:10_010] = frame.iloc[[*range(10_005, 10_010), *range(10_000, 10_005)]].to_numpy()
    folder = _write_folder(swapped, tmp_path / "swapped", [0, 5_003], 1_250)
    here = _error(folder)
    assert "unit 2001 (data row 10006) comes after unit 2002 (data row 10005)" in here
    assert _error(folder, executor=client) == here


def test_a_bad_executor_is_refused_naming_the_parameter(small) -> None:
    _, folder = small
    for bad in ("local:2", 4, object()):
        with pytest.raises(ValueError, match=r"executor=.* is not allowed; pass None .* dask.distributed Client"):
            staggered_did(folder, executor=bad, **KW)


def test_a_panel_source_that_filters_rows_is_read_in_process(client, small) -> None:
    """A cluster's parts are row groups read whole, so a PanelSource leaving out a cohort is refused there."""
    from evaluator.data.load import load_panel

    frame, folder = small
    source = load_panel(folder, columns={"unit": "id", "time": "t", "outcome": "y", "cohort": "g"})
    with pytest.raises(NotImplementedError, match="read in this process: pass executor=None"):
        staggered_did(source.without_cohort(4), executor=client, **KW)
    here = staggered_did(source.without_cohort(4), **KW)
    _same(staggered_did(frame[frame["g"] != 4], **KW), here)


def test_map_unit_blocks_gives_each_unit_once_in_source_order(client, small) -> None:
    """The general pass: whole units, each once, in order, whatever the executor or the kind of source."""
    frame, folder = small

    def units(block):
        return block.columns["id"], block.positions(np.arange(len(block.columns["id"])))

    roles = {"unit": "id", "time": "t"}
    dataset, _ = open_dataset(folder)
    sources = [(dataset, client), (dataset, None), (open_dask_frame(dd.from_pandas(frame, 7))[0], client)]
    for source, executor in sources:
        got = list(map_unit_blocks(units, source, roles, batch_rows=BATCH, executor=executor))
        ids = np.concatenate([u for u, _ in got])
        rows = np.concatenate([r for _, r in got])
        np.testing.assert_array_equal(ids, frame["id"].to_numpy())
        np.testing.assert_array_equal(rows, np.arange(len(frame)))
        starts = [u[0] for u, _ in got[1:]]
        ends = [u[-1] for u, _ in got[:-1]]
        assert all(a != b for a, b in zip(ends, starts, strict=True))  # no unit split between two blocks
