"""Scale benchmark (issue 16): ``staggered_did`` out of core on 10M to 100M rows of Parquet.

Run from the repository root, in the peers venv (it needs pyarrow, duckdb and psutil)::

    python benchmarks/bench_scale.py --quick                  # 10,000,000 rows, smoke run
    python benchmarks/bench_scale.py                          # 10M, 20M, 50M, 100M rows
    python benchmarks/bench_scale.py --sizes 10M,100M --data /tmp/bench_scale --json out.json

Data. A synthetic balanced staggered panel (the design of ``make_panel.py``: never-treated
``cohort = 0`` and cohorts first treated in periods 4, 6, 8 of 10; 50 clusters; unit, cluster and
time effects, a mild covariate trend, a dynamic cohort-specific effect) written with vectorised
numpy + pyarrow, ``--file-units`` units (default 1,000,000 = 10M rows) per Parquet file in row
groups of 1,048,576 rows, sorted by unit then period, in compact types: ``unit`` int32,
``time`` int16, ``cohort`` int16, ``cluster`` int16, ``x1`` float32, ``x2`` float32 (time-invariant
covariates, for the DR task later) and ``y`` float32. File ``k`` holds units ``k * file_units`` onwards
and is drawn from its own seed ``(seed, k)``, so the 10M data set is the first file of the 100M
one: a size is a folder of hard links to the first files of the cache (``--data``, default
``/tmp/bench_scale``), written once and reused.

Tasks, each in its own subprocess (the harness of ``bench_staggered.py``: best of 3 while a run
takes under ``--repeat-below`` seconds, killed past ``--budget`` or ``--mem-limit``):

* ``floor, per-unit differences`` (the issue's floor): a streaming pass over
  ``pyarrow.dataset`` record batches of ``unit, time, cohort, y``, each batch cut at a unit
  boundary (the trailing unit carried over), reshaped to units x periods, the per-unit outcome
  differences against the base period of every cell formed (``Y[:, t] - Y[:, b]``: never-treated
  units for all 27 cells, a cohort's units for its 9) and summed per (cohort, cell), with the counts.
  ATT(g,t) = mean difference of cohort g minus that of the never-treated. Varying base period
  (pre-periods against the period before, post-periods against g - 1), never-treated controls,
  no anticipation: ``staggered_did``'s defaults.
* ``floor, class sums``: the same pass, but summing ``Y`` per cohort class and differencing the
  sums (the same numbers: a balanced panel's mean difference is the difference of means). The
  cheapest reduction of this data: reading plus one small matrix product per batch.
* ``duckdb query``: one SQL query over the Parquet files computing the same ATT(g,t) (the cell means
  per (cohort, time), then the differences in SQL), with DuckDB's default threads (all cores).
  A shortcut like the class-sums floor: right only because the panel is balanced.
* ``duckdb query, per-unit differences``: one SQL query that does what the estimator does, forming
  every unit's ``Y_t - Y_b`` (a GROUP BY unit pivots the 10 periods into columns, a GROUP BY cohort
  averages each needed difference); the peer the "faster than DuckDB" target is read against, and
  the GROUP BY shortcut is shown beside it.
* ``ours ooc unconditional``: ``staggered_did(folder, method="unconditional", n_boot=0)``
  (estimates, analytic SEs and the panel checks in one pass).
* ``ours ooc dr x1+x2``: ``method="dr", covariates=["x1", "x2"]`` (reported as ``not available``
  while the out-of-core path raises NotImplementedError for covariates).
* ``ours ooc, 2-worker LocalCluster``: ``staggered_did(folder, executor=client)`` on a LocalCluster of 2
  worker processes started in the task; the timed figure includes the cluster's start, reported apart
  as ``cluster_start_s``, the workers' first imports as ``worker_imports_s`` and the pass alone as
  ``estimate_s`` in the JSON.
* ``ours in memory``: ``pd.read_parquet(folder, columns=...)`` then ``staggered_did(frame)``
  at ``--memory-rows`` (default 20M), unconditional and DR; the read and the estimate are timed
  separately too.
* ``--passes N`` runs every size N times over (interleaved, so other jobs' load falls on all
  tasks alike) and keeps each task's best; ``--profile SIZE`` / ``--profile-dr SIZE`` print a
  cProfile of the out-of-core call with ``threads=1`` (so the block reductions are in the
  profiled thread); ``--report-json`` prints the tables of a ``--json`` file again.

Memory: ``peak RSS`` is the process's whole high-water mark (``VmHWM``, imports included: the
figure the 1.5 GB target is about), ``extra`` is the psutil-sampled peak minus the RSS before the
call. The files are read from the page cache (written just before, the machine has 24 GiB).

Agreement: every task's ATT(g,t) against the class-sums floor (max abs difference); DR out of
core against the in-memory DR at ``--memory-rows``; the out-of-core SEs against the in-memory ones.

Extrapolation: time and peak RSS fitted against rows (least squares, ``a + b * rows``) over
the sizes run, then evaluated at ``--target-rows`` (720M): on one machine, and on 10 such
nodes assuming the pass is embarrassingly parallel over shards of units (each node reads
1/10 of the files), the per-shard statistics are combined at negligible cost (kilobytes per
shard) and no node shares disks or cores.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pickle
import platform
import pstats
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_staggered import NotAvailable, Outcome, _run_watched, measure  # noqa: E402

N_PERIODS = 10
COHORTS = (4, 6, 8)  # make_panel's cohorts at 10 periods
N_CLUSTERS = 50
ROW_GROUP = 1 << 20
COLUMNS = ["unit", "time", "cohort", "y"]
MEMORY_TARGET_GB = 1.5


# ----------------------------------------------------------------------------------------
# data


def _file_table(k: int, file_units: int, seed: int) -> Any:
    """File ``k`` of the panel: units ``k * file_units`` onwards, sorted by unit and period."""
    import pyarrow as pa

    T = N_PERIODS
    n = file_units
    cluster_effect = (0.3 * np.random.default_rng(seed).standard_normal(N_CLUSTERS)).astype(np.float32)
    rng = np.random.default_rng([seed, k])
    x1 = rng.standard_normal(n, dtype=np.float32)
    x2 = (rng.random(n, dtype=np.float32) < 0.4).astype(np.float32)
    cluster = rng.integers(0, N_CLUSTERS, n).astype(np.int16)
    lin = np.column_stack(
        [np.zeros(n), -0.6 + 0.3 * x1 + 0.2 * x2, -0.8 + 0.2 * x1 - 0.2 * x2, -1.0 - 0.2 * x1 + 0.3 * x2]
    )
    p = np.exp(lin)
    np.cumsum(p / p.sum(axis=1, keepdims=True), axis=1, out=p)
    cls = np.minimum((rng.random(n)[:, None] > p).sum(axis=1), 3)
    del lin, p
    cohort = np.array((0,) + COHORTS, dtype=np.int16)[cls]
    alpha = (0.5 * x1 + 0.3 * x2 + rng.standard_normal(n, dtype=np.float32)) + cluster_effect[cluster]
    t = np.arange(1, T + 1, dtype=np.float32)
    gamma = (np.linspace(0.0, 1.0, T) + 0.1 * np.sin(np.arange(T))).astype(np.float32)
    # the effect by class and period: dynamic, larger for earlier cohorts
    effect = np.zeros((4, T), dtype=np.float32)
    for j, g in enumerate(COHORTS, start=1):
        e = t - g
        effect[j] = np.where(e >= 0, (1.0 + (max(COHORTS) - g) * 0.1) * (0.5 + 0.2 * e), 0.0)
    y = rng.standard_normal((n, T), dtype=np.float32)
    y += alpha[:, None]
    y += gamma[None, :]
    y += (0.05 * x1 + 0.03 * x2)[:, None] * t[None, :]
    y += effect[cls]
    return pa.table(
        {
            "unit": np.repeat(np.arange(k * n, (k + 1) * n, dtype=np.int32), T),
            "time": np.tile(np.arange(1, T + 1, dtype=np.int16), n),
            "cohort": np.repeat(cohort, T),
            "cluster": np.repeat(cluster, T),
            "x1": np.repeat(x1, T),
            "x2": np.repeat(x2, T),
            "y": y.ravel(),
        }
    )


def ensure_data(root: Path, rows: int, file_units: int, seed: int) -> Path:
    """The folder of the first ``rows`` rows (whole files), writing missing files into the cache."""
    import pyarrow.parquet as pq

    file_rows = file_units * N_PERIODS
    if rows % file_rows:
        raise SystemExit(f"--rows {rows:,} is not a multiple of the file size {file_rows:,} rows (--file-units)")
    cache = root / f"files_u{file_units}_T{N_PERIODS}_s{seed}"
    cache.mkdir(parents=True, exist_ok=True)
    folder = root / f"rows_{rows}_u{file_units}_T{N_PERIODS}_s{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(rows // file_rows):
        name = f"part-{k:05d}.parquet"
        path = cache / name
        if not path.exists():
            t0 = time.perf_counter()
            table = _file_table(k, file_units, seed)
            tmp = path.with_suffix(".tmp")
            pq.write_table(table, tmp, row_group_size=ROW_GROUP, compression="snappy")
            tmp.rename(path)
            print(f"  wrote {path} ({table.num_rows:,} rows) in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
            del table
        link = folder / name
        if not link.exists():
            os.link(path, link)
    return folder


# ----------------------------------------------------------------------------------------
# the cells: never-treated controls, varying base period, no anticipation


def cells() -> list[tuple[int, int, int]]:
    """(cohort g, period t, base period b) of every ATT(g,t), as staggered_did's defaults define them."""
    out = []
    for g in COHORTS:
        for t in range(2, N_PERIODS + 1):
            out.append((g, t, t - 1 if t < g else g - 1))
    return out


def _gt_frame(g: Any, t: Any, att: Any, se: Any = None) -> pd.DataFrame:
    att = np.asarray(att, dtype=float)
    out = pd.DataFrame(
        {
            "cohort": np.asarray(g, dtype=float),
            "time": np.asarray(t, dtype=float),
            "att": att,
            "se": np.full(att.shape, np.nan) if se is None else np.asarray(se, dtype=float),
        }
    )
    return out.sort_values(["cohort", "time"]).reset_index(drop=True)


# ----------------------------------------------------------------------------------------
# tasks


def _unit_batches(folder: Path, columns: list[str]):
    """Record batches of ``folder`` as numpy arrays cut at unit boundaries (balanced, sorted panel).

    Yields ``(cohort per unit, Y units x periods float64)``; the rows of a unit cut by a batch
    boundary are carried into the next batch.
    """
    import pyarrow.dataset as ds

    dataset = ds.dataset(str(folder), format="parquet")
    T = N_PERIODS
    carry: dict[str, np.ndarray] | None = None
    for batch in dataset.to_batches(columns=columns, batch_size=1 << 18, use_threads=True):
        cols = {c: batch.column(i).to_numpy() for i, c in enumerate(batch.schema.names)}
        if carry is not None:
            cols = {c: np.concatenate([carry[c], v]) for c, v in cols.items()}
        u = cols["unit"]
        cut = int(np.searchsorted(u, u[-1], side="left"))  # the last unit may continue in the next batch
        carry = {c: v[cut:] for c, v in cols.items()}
        if cut == 0:
            continue
        m = cut // T
        if m * T != cut or u[0] != u[T - 1] or u[cut - T] != u[cut - 1]:
            raise ValueError("the floor needs a balanced panel sorted by unit then period")
        yield cols["cohort"][:cut:T], cols["y"][:cut].reshape(m, T).astype(np.float64)
    if carry is not None and len(carry["unit"]):
        m = len(carry["unit"]) // T
        yield carry["cohort"][::T], carry["y"].reshape(m, T).astype(np.float64)


def floor_differences(folder: Path) -> pd.DataFrame:
    """The issue's floor: per-unit differences against each cell's base period, summed per (cohort, cell)."""
    cl = cells()
    t_idx = np.array([t - 1 for _, t, _ in cl])
    b_idx = np.array([b - 1 for _, _, b in cl])
    own = {g: np.array([j for j, (gg, _, _) in enumerate(cl) if gg == g]) for g in COHORTS}
    sums = {h: np.zeros(len(cl)) for h in (0,) + COHORTS}
    counts = dict.fromkeys((0,) + COHORTS, 0)
    for g_unit, Y in _unit_batches(folder, COLUMNS):
        for h in (0,) + COHORTS:
            Yh = Y[g_unit == h]
            j = slice(None) if h == 0 else own[h]
            D = Yh[:, t_idx[j]] - Yh[:, b_idx[j]]  # per-unit differences, units x cells
            sums[h][j] += D.sum(axis=0)
            counts[h] += len(Yh)
    mean_c = sums[0] / counts[0]
    att = np.array([sums[g][j] / counts[g] - mean_c[j] for j, (g, _, _) in enumerate(cl)])
    return _gt_frame([g for g, _, _ in cl], [t for _, t, _ in cl], att)


def floor_sums(folder: Path) -> pd.DataFrame:
    """The same pass summing Y per cohort class (one indicator matrix product per batch), then differencing."""
    classes = np.array((0,) + COHORTS)
    S = np.zeros((len(classes), N_PERIODS))
    N = np.zeros(len(classes))
    for g_unit, Y in _unit_batches(folder, COLUMNS):
        ind = (g_unit[None, :] == classes[:, None]).astype(np.float64)
        S += ind @ Y
        N += ind.sum(axis=1)
    M = S / N[:, None]
    row = {int(h): i for i, h in enumerate(classes)}
    cl = cells()
    att = [(M[row[g], t - 1] - M[row[g], b - 1]) - (M[0, t - 1] - M[0, b - 1]) for g, t, b in cl]
    return _gt_frame([g for g, _, _ in cl], [t for _, t, _ in cl], att)


DUCKDB_SQL = """
WITH m AS (
    SELECT cohort, time, avg(y) AS ybar FROM read_parquet('{glob}') GROUP BY cohort, time
), cells AS (
    SELECT g.cohort AS g, t.time AS t,
           CASE WHEN t.time < g.cohort THEN t.time - 1 ELSE g.cohort - 1 END AS b
    FROM (SELECT DISTINCT cohort FROM m WHERE cohort > 0) g,
         (SELECT DISTINCT time FROM m) t
    WHERE t.time > (SELECT min(time) FROM m)
)
SELECT c.g AS cohort, c.t AS time,
       (tt.ybar - tb.ybar) - (ct.ybar - cb.ybar) AS att
FROM cells c
JOIN m tt ON tt.cohort = c.g AND tt.time = c.t
JOIN m tb ON tb.cohort = c.g AND tb.time = c.b
JOIN m ct ON ct.cohort = 0 AND ct.time = c.t
JOIN m cb ON cb.cohort = 0 AND cb.time = c.b
ORDER BY cohort, time
"""


def duckdb_query(folder: Path) -> pd.DataFrame:
    """One DuckDB query over the Parquet files: cell means per (cohort, time), differenced in SQL."""
    try:
        import duckdb
    except ImportError as exc:
        raise NotAvailable(str(exc)) from exc
    con = duckdb.connect()
    rows = con.execute(DUCKDB_SQL.format(glob=str(folder / "*.parquet"))).fetchall()
    con.close()
    g, t, att = zip(*rows, strict=True)
    return _gt_frame(g, t, att)


def duckdb_per_unit_sql(glob: str) -> str:
    """One DuckDB query that forms every unit's differences Y_t - Y_b, as staggered_did does, and averages
    them per cohort: one aggregation by unit pivots the periods into columns, a second by cohort averages
    each needed difference, and the ATT(g,t) are the treated minus the never-treated averages.

    Unlike :data:`DUCKDB_SQL` (means of Y per cell, differenced afterwards) this does not lean on the panel
    being balanced: a unit missing Y_t or Y_b drops out of that difference only, as in the estimator."""
    periods = range(1, N_PERIODS + 1)
    pivot = ", ".join(f"max(y) FILTER (WHERE time = {t}) AS y{t}" for t in periods)
    pairs = sorted({(t, b) for _, t, b in cells()})
    means = ", ".join(f"avg(CAST(y{t} AS DOUBLE) - y{b}) AS d{t}_{b}" for t, b in pairs)  # y is float32
    rows = " UNION ALL ".join(
        f"SELECT {g} AS cohort, {t} AS time, "
        f"(SELECT d{t}_{b} FROM d WHERE cohort = {g}) - (SELECT d{t}_{b} FROM d WHERE cohort = 0) AS att"
        for g, t, b in cells()
    )
    return (
        f"WITH w AS (SELECT unit, any_value(cohort) AS cohort, {pivot} FROM read_parquet('{glob}') GROUP BY unit), "
        f"d AS (SELECT cohort, {means} FROM w GROUP BY cohort) "
        f"SELECT * FROM ({rows}) ORDER BY cohort, time"
    )


def duckdb_per_unit(folder: Path) -> pd.DataFrame:
    """:func:`duckdb_per_unit_sql` over the Parquet files."""
    try:
        import duckdb
    except ImportError as exc:
        raise NotAvailable(str(exc)) from exc
    con = duckdb.connect()
    rows = con.execute(duckdb_per_unit_sql(str(folder / "*.parquet"))).fetchall()
    con.close()
    g, t, att = zip(*rows, strict=True)
    return _gt_frame(g, t, att)


KW = dict(outcome="y", unit="unit", time="time", cohort="cohort", n_boot=0)


def ours_ooc(folder: Path) -> pd.DataFrame:
    from evaluator import staggered_did

    res = staggered_did(str(folder), method="unconditional", **KW)
    gt = res.att_gt
    return _gt_frame(gt["cohort"], gt["time"], gt["att"], gt["se"])


def ours_ooc_dr(folder: Path) -> pd.DataFrame:
    from evaluator import staggered_did

    try:
        res = staggered_did(str(folder), method="dr", covariates=["x1", "x2"], **KW)
    except NotImplementedError as exc:
        raise NotAvailable(f"NotImplementedError: {exc}") from exc
    gt = res.att_gt
    return _gt_frame(gt["cohort"], gt["time"], gt["att"], gt["se"])


def ours_cluster(folder: Path) -> pd.DataFrame:
    """``staggered_did(folder, executor=client)`` on a 2-worker LocalCluster; its start is timed apart (``_TIMES``)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise NotAvailable(str(exc)) from exc
    from evaluator import staggered_did

    t0 = time.perf_counter()
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        t1 = time.perf_counter()
        # the workers' first imports of evaluator, pandas and pyarrow, apart: long-lived workers pay them once
        client.run(_warm_worker)
        t2 = time.perf_counter()
        res = staggered_did(str(folder), method="unconditional", executor=client, **KW)
        t3 = time.perf_counter()
    if t3 - t2 < _TIMES.get("estimate", np.inf):
        _TIMES.update(cluster_start=t1 - t0, worker_imports=t2 - t1, estimate=t3 - t2)
    gt = res.att_gt
    return _gt_frame(gt["cohort"], gt["time"], gt["att"], gt["se"])


_TIMES: dict[str, float] = {}


def _warm_worker() -> None:
    """What a worker imports for its first part (run on every worker before the pass is timed)."""
    import pyarrow.dataset  # noqa: F401

    import evaluator.estimators.staggered_ooc  # noqa: F401


def _memory(method: str, covariates: list[str] | None):
    def fn(folder: Path) -> pd.DataFrame:
        return ours_memory(folder, method, covariates)

    return fn


def ours_memory(folder: Path, method: str = "unconditional", covariates: list[str] | None = None) -> pd.DataFrame:
    from evaluator import staggered_did

    t0 = time.perf_counter()
    frame = pd.read_parquet(str(folder), columns=COLUMNS + list(covariates or []))
    t1 = time.perf_counter()
    res = staggered_did(frame, method=method, covariates=covariates, **KW)
    t2 = time.perf_counter()
    # best run: keep the split of the fastest total
    if t2 - t0 < _TIMES.get("total", np.inf):
        _TIMES.update(total=t2 - t0, read=t1 - t0, estimate=t2 - t1)
    gt = res.att_gt
    return _gt_frame(gt["cohort"], gt["time"], gt["att"], gt["se"])


def _profiled(method: str, covariates: list[str] | None):
    """The out-of-core call with ``threads=1``, so cProfile (main thread only) sees the block reductions too."""

    def fn(folder: Path) -> pd.DataFrame:
        from evaluator.estimators.staggered_ooc import staggered_did_ooc

        res = staggered_did_ooc(str(folder), method=method, covariates=covariates, threads=1, **KW)
        gt = res.att_gt
        return _gt_frame(gt["cohort"], gt["time"], gt["att"], gt["se"])

    return fn


@dataclass
class ScaleTask:
    name: str
    group: str
    library: str
    fn: Any
    imports: tuple[str, ...] = ()
    memory: bool = False  # the in-memory comparison, run at --memory-rows only
    dry: bool = False  # not available without reading data: run once, at the first size


TASKS: dict[str, ScaleTask] = {
    t.name: t
    for t in [
        ScaleTask("floor, per-unit differences", "floor", "pyarrow+numpy", floor_differences, ("pyarrow.dataset",)),
        ScaleTask("floor, class sums", "floor", "pyarrow+numpy", floor_sums, ("pyarrow.dataset",)),
        ScaleTask("duckdb query", "peer", "duckdb", duckdb_query, ("duckdb",)),
        ScaleTask("duckdb query, per-unit differences", "peer", "duckdb", duckdb_per_unit, ("duckdb",)),
        ScaleTask(
            "ours ooc unconditional",
            "ours",
            "evaluator",
            ours_ooc,
            ("evaluator", "evaluator.estimators.staggered", "evaluator.estimators.staggered_ooc", "pyarrow.dataset"),
        ),
        ScaleTask(
            "ours ooc dr x1+x2", "ours", "evaluator", ours_ooc_dr, ("evaluator", "evaluator.estimators.staggered")
        ),
        ScaleTask(
            "ours ooc, 2-worker LocalCluster",
            "ours",
            "evaluator",
            ours_cluster,
            ("evaluator", "evaluator.estimators.staggered_ooc", "distributed", "pyarrow.dataset"),
        ),
        ScaleTask(
            "ours in memory (read_parquet + staggered_did)",
            "ours",
            "evaluator",
            _memory("unconditional", None),
            ("evaluator", "evaluator.estimators.staggered", "pyarrow.parquet"),
            memory=True,
        ),
        ScaleTask(
            "ours in memory dr x1+x2 (read_parquet + staggered_did)",
            "ours",
            "evaluator",
            _memory("dr", ["x1", "x2"]),
            ("evaluator", "evaluator.estimators.staggered", "pyarrow.parquet"),
            memory=True,
        ),
    ]
}
PROFILED = {
    "unconditional": ScaleTask(
        "profile ooc unconditional, threads=1",
        "profile",
        "evaluator",
        _profiled("unconditional", None),
        ("evaluator", "evaluator.estimators.staggered_ooc", "pyarrow.dataset"),
    ),
    "dr": ScaleTask(
        "profile ooc dr x1+x2, threads=1",
        "profile",
        "evaluator",
        _profiled("dr", ["x1", "x2"]),
        ("evaluator", "evaluator.estimators.staggered_ooc", "pyarrow.dataset"),
    ),
}


# ----------------------------------------------------------------------------------------
# harness: one subprocess per task


def _vmhwm() -> float:
    """Peak resident memory of this process so far, bytes (Linux VmHWM)."""
    with open("/proc/self/status") as fh:
        return next(int(x.split()[1]) for x in fh if x.startswith("VmHWM")) * 1024.0


CODE = ("evaluator/estimators/staggered_ooc.py", "evaluator/data/shards.py", "evaluator/estimators/staggered.py")


def code_version() -> str:
    """Short hashes of the files the out-of-core path runs (other sessions edit them while this runs)."""
    import hashlib

    return " ".join(hashlib.sha1((HERE.parent / f).read_bytes()).hexdigest()[:7] for f in CODE)


def worker(name: str, folder: str, out: str, repeat_below: float, profile: str | None) -> None:
    warnings.filterwarnings("ignore")
    code = code_version()
    task = TASKS[name] if name in TASKS else next(t for t in PROFILED.values() if t.name == name)
    res = Outcome(task.name, task.group, task.library)
    path = Path(folder)
    res.input_bytes = sum(p.stat().st_size for p in path.glob("*.parquet"))
    if profile:
        for module in task.imports:
            __import__(module)
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(task.fn, path)
        res.seconds, res.runs = time.perf_counter() - t0, 1
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(25)
        Path(profile).write_text(buf.getvalue())
    else:
        measure(task, path, res, repeat_below)  # type: ignore[arg-type]
    res.extra["vmhwm"] = _vmhwm()
    res.extra["code"] = code
    res.extra.update({f"{k}_s": v for k, v in _TIMES.items()})
    with open(out, "wb") as fh:
        pickle.dump(res, fh)


def run_task(task: ScaleTask, folder: Path, args: argparse.Namespace, profile: str | None = None) -> Outcome:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.pkl")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", task.name, "--data", str(folder)]
        cmd += ["--out", out, "--repeat-below", str(args.repeat_below)]
        if profile:
            cmd += ["--profile-out", profile]
        timeout = args.budget + 3 * args.repeat_below + 60
        t0 = time.perf_counter()
        killed = _run_watched(cmd, timeout, args.mem_limit * 2**30, os.path.join(tmp, "log.txt"))
        if killed:
            return Outcome(task.name, task.group, task.library, status=killed[0], message=killed[1])
        if not os.path.exists(out):
            tail = Path(tmp, "log.txt").read_text(errors="replace").strip().splitlines()[-3:]
            return Outcome(task.name, task.group, task.library, status="error", message=" | ".join(tail)[:300])
        with open(out, "rb") as fh:
            res: Outcome = pickle.load(fh)
        res.extra["wall"] = time.perf_counter() - t0
        return res


# ----------------------------------------------------------------------------------------
# report


def _num(x: float | None, digits: int = 3) -> str:
    if x is None or not np.isfinite(x):
        return "."
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{digits}f}"


def _d(a: pd.DataFrame | None, b: pd.DataFrame | None, col: str = "att") -> float:
    if a is None or b is None or len(a) != len(b):
        return np.nan
    m = a.merge(b, on=["cohort", "time"], suffixes=("", "_r"))
    if len(m) != len(a) or not np.isfinite(m[col]).any():
        return np.nan
    return float(np.nanmax(np.abs(m[col] - m[col + "_r"])))


def _reference(o: Outcome, by: dict[str, Outcome]) -> tuple[str, Outcome | None]:
    """What a task's estimates are checked against: the in-memory DR for DR, else the class-sums floor."""
    if "dr" in o.name:
        if "in memory" in o.name:
            return "", None
        ref = by.get("ours in memory dr x1+x2 (read_parquet + staggered_did)")
        if ref is None:  # the in-memory DR runs at one size only: compare there
            return "", None
        return "in-memory dr", ref
    return "floor", by.get("floor, class sums")


def table(results: dict[int, list[Outcome]]) -> str:
    lines = [
        "| rows | task | status | time (s) | runs | x floor | x duckdb GROUP BY | x duckdb per-unit | peak RSS (MiB) | "
        "extra RSS (MiB) | rows/s (M) | max abs d att (vs) | max abs d se vs in memory | cells | code |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|",
    ]
    for rows, outs in results.items():
        by = {o.name: o for o in outs}
        fl = by.get("floor, per-unit differences")
        dk = by.get("duckdb query")
        du = by.get("duckdb query, per-unit differences")
        mem = by.get("ours in memory (read_parquet + staggered_did)")
        for o in outs:
            ok = o.status == "ok" and o.seconds is not None
            xf = o.seconds / fl.seconds if ok and fl and fl.seconds else None
            xd = o.seconds / dk.seconds if ok and dk and dk.seconds else None
            xu = o.seconds / du.seconds if ok and du and du.seconds else None
            peak = o.extra.get("vmhwm")
            label, ref = _reference(o, by)
            if o.name == "floor, class sums":
                d_att = "ref"
            elif ok and ref is not None and ref.status == "ok":
                d = _d(o.estimates, ref.estimates)
                d_att = f"{d:.1e} ({label})" if np.isfinite(d) else "."
            else:
                d_att = "."
            d_se = "."
            if ok and o.name == "ours ooc unconditional" and mem is not None and mem.status == "ok":
                d = _d(o.estimates, mem.estimates, "se")
                d_se = f"{d:.1e}" if np.isfinite(d) else "."
            status = o.status + (f" ({o.message})" if o.status != "ok" and o.message else "")
            if o.seconds is not None and o.extra.get("read_s") is not None:
                status += f" (read {o.extra['read_s']:.1f} s + estimate {o.extra['estimate_s']:.1f} s)"
            lines.append(
                f"| {rows / 1e6:g}M | {o.name} | {status} | {_num(o.seconds)} | {o.runs or '.'} | {_num(xf)} | "
                f"{_num(xd)} | {_num(xu)} | {_num(peak / 2**20 if peak and ok else None)} | "
                f"{_num(o.peak_bytes / 2**20 if o.peak_bytes is not None else None)} | "
                f"{_num(rows / o.seconds / 1e6 if ok and o.seconds else None)} | {d_att} | {d_se} | "
                f"{len(o.estimates) if o.estimates is not None else '.'} | {o.extra.get('code', '.')} |"
            )
    return "\n".join(lines)


def extrapolate(results: dict[int, list[Outcome]], target: int, nodes: int) -> str:
    """Time: least squares ``a + b * rows`` over the sizes run. Peak RSS: the measured series, and the same
    linear fit as an upper bound (it grows less than linearly: readahead buffers, not rows, set it)."""
    names = sorted({o.name for outs in results.values() for o in outs if o.status == "ok"})
    T, per = target / 1e6, target / nodes / 1e6
    lines = [
        f"Time: least-squares fit `a + b * rows` over the sizes run, at {T:g}M rows on one machine and on {nodes} "
        f"nodes ({per:g}M rows each: the pass is embarrassingly parallel over shards of units, the per-shard "
        "statistics are combined at negligible cost). Peak RSS: measured at each size; the linear fit is an "
        "upper bound.",
        "",
        f"| task | sizes | time fit (s) | time at {T:g}M, 1 machine (s) | time at {T:g}M, {nodes} nodes (s) | "
        f"peak RSS measured (MiB) | peak RSS fit at {T:g}M (MiB) | at {per:g}M per node (MiB) |",
        "|---|---|---|---:|---:|---|---:|---:|",
    ]
    for name in names:
        pts = [(r, o) for r, outs in results.items() for o in outs if o.name == name and o.status == "ok" and o.seconds]
        if len(pts) < 2:
            continue
        r = np.array([p[0] for p in pts], dtype=float)
        s = np.array([p[1].seconds for p in pts])
        m = np.array([p[1].extra.get("vmhwm", np.nan) for p in pts]) / 2**20
        bt, at = np.polyfit(r, s, 1)
        bm, am = np.polyfit(r, m, 1)
        lines.append(
            f"| {name} | {', '.join(f'{x / 1e6:g}M' for x in r)} | {at:.2f} + {bt * 1e8:.2f} per 100M | "
            f"{at + bt * target:.0f} | {at + bt * target / nodes:.1f} | {', '.join(f'{x:.0f}' for x in m)} | "
            f"{am + bm * target:.0f} | {am + bm * target / nodes:.0f} |"
        )
    return "\n".join(lines)


def load_json(path: str) -> dict[int, list[Outcome]]:
    """The results of a ``--json`` file, to print the report again (``--report-json``)."""
    results: dict[int, list[Outcome]] = {}
    for d in json.loads(Path(path).read_text()):
        rows = int(d.pop("rows"))
        est = d.pop("estimates")
        o = Outcome(**{k: v for k, v in d.items() if k in Outcome.__dataclass_fields__})
        o.estimates = None if est is None else pd.DataFrame(est)
        results.setdefault(rows, []).append(o)
    return results


def _parse_rows(text: str) -> int:
    text = text.strip().upper().replace(",", "").replace("_", "")
    mult = 1_000_000 if text.endswith("M") else 1_000_000_000 if text.endswith("G") else 1
    return int(float(text.rstrip("MG")) * mult)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10M rows only (smoke run)")
    ap.add_argument("--sizes", default="10M,20M,50M,100M", help="row counts to run, e.g. 10M,100M")
    ap.add_argument("--rows", default=None, help="one size (overrides --sizes)")
    ap.add_argument("--units", type=int, default=None, help="one size in units (rows = units x 10)")
    ap.add_argument("--memory-rows", default="20M", help="size at which the in-memory path runs ('' to skip)")
    ap.add_argument("--file-units", type=int, default=1_000_000, help="units per Parquet file (10 periods each)")
    ap.add_argument("--data", default="/tmp/bench_scale", help="cache folder of the Parquet files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", default=None, help="comma-separated substrings of task names")
    ap.add_argument("--skip", default=None)
    ap.add_argument("--budget", type=float, default=900)
    ap.add_argument("--mem-limit", type=float, default=16)
    ap.add_argument("--repeat-below", type=float, default=20)
    ap.add_argument("--target-rows", default="720M")
    ap.add_argument("--nodes", type=int, default=10)
    ap.add_argument("--profile", default=None, help="cProfile ours ooc (threads=1) at this size (e.g. 10M), top 25")
    ap.add_argument("--profile-dr", default=None, help="the same for method='dr' with x1, x2 at this size")
    ap.add_argument("--passes", type=int, default=1, help="run the sizes this many times, keep each task's best")
    ap.add_argument("--json", default=None)
    ap.add_argument("--report-json", default=None, help="print the tables of a --json file again and stop")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--profile-out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.data, args.out, args.repeat_below, args.profile_out)
        return

    import psutil

    if args.report_json:
        results = load_json(args.report_json)
        print(table(results))
        print()
        print(extrapolate(results, _parse_rows(args.target_rows), args.nodes))
        return
    if args.units:
        sizes = [args.units * N_PERIODS]
    elif args.rows:
        sizes = [_parse_rows(args.rows)]
    elif args.quick:
        sizes = [10_000_000]
    else:
        sizes = [_parse_rows(s) for s in args.sizes.split(",")]
    mem_rows = _parse_rows(args.memory_rows) if args.memory_rows else None
    if mem_rows and mem_rows not in sizes and not args.quick:
        sizes = sorted(sizes + [mem_rows])
    tasks = list(TASKS.values())
    if args.only:
        keys = [k.strip() for k in args.only.split(",")]
        tasks = [t for t in tasks if any(k in t.name for k in keys) or t.group == "floor"]
    if args.skip:
        keys = [k.strip() for k in args.skip.split(",")]
        tasks = [t for t in tasks if not any(k in t.name for k in keys)]
    root = Path(args.data)

    def versions() -> str:
        from importlib.metadata import version

        out = []
        for pkg in ("pyarrow", "duckdb", "numpy", "pandas"):
            try:
                out.append(f"{pkg} {version(pkg)}")
            except Exception:
                pass
        return ", ".join(out)

    print(f"# bench_scale.py: sizes {', '.join(f'{s / 1e6:g}M' for s in sizes)} rows, seed {args.seed}")
    print(
        f"Python {platform.python_version()}, {psutil.cpu_count(logical=True)} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, {platform.platform()}; {versions()}"
    )
    print(f"load average at start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    results: dict[int, list[Outcome]] = {}
    for p in range(args.passes):
        for rows in sizes:
            t0 = time.perf_counter()
            folder = ensure_data(root, rows, args.file_units, args.seed)
            size_mb = sum(f.stat().st_size for f in folder.glob("*.parquet")) / 2**20
            ready = time.perf_counter() - t0
            print(
                f"pass {p + 1}, {rows:,} rows: {folder} ({size_mb:.0f} MiB on disk, ready in {ready:.1f} s)",
                file=sys.stderr,
            )
            outs = []
            for task in tasks:
                if task.memory and rows != mem_rows:
                    continue
                if task.dry and (rows != sizes[0] or p > 0):
                    continue
                print(f"  {task.name} ...", file=sys.stderr, flush=True)
                load = os.getloadavg()[0]
                o = run_task(task, folder, args)
                o.extra["load_before"] = load
                o.extra["passes"] = 1
                shown = f"{o.seconds:.2f} s, peak {o.extra.get('vmhwm', 0) / 2**20:.0f} MiB" if o.seconds else o.status
                print(f"    {shown} (load {load:.2f}) {o.message[:120]}", file=sys.stderr, flush=True)
                outs.append(o)
            if p == 0:
                results[rows] = outs
                continue
            # keep the best time of each task over the passes (runs add up; peak memory is the largest seen)
            for o in outs:
                prev = next(q for q in results[rows] if q.name == o.name)
                if o.status != "ok" or o.seconds is None:
                    continue
                runs = prev.runs + o.runs
                peak = max(prev.extra.get("vmhwm", 0), o.extra.get("vmhwm", 0))
                extra_rss = max(prev.peak_bytes or 0, o.peak_bytes or 0)
                if prev.seconds is None or o.seconds < prev.seconds:
                    o.extra["passes"] = prev.extra.get("passes", 1) + 1
                    results[rows][results[rows].index(prev)] = o
                    prev = o
                else:
                    prev.extra["passes"] = prev.extra.get("passes", 1) + 1
                prev.runs, prev.peak_bytes, prev.extra["vmhwm"] = runs, extra_rss, peak
            gc.collect()
    print(table(results))
    print()
    print(f"code: short sha1 of {', '.join(CODE)} as each task read them (now: {code_version()})")
    print()
    print(f"load average at end: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print()
    print(extrapolate(results, _parse_rows(args.target_rows), args.nodes))
    for size, method in ((args.profile, "unconditional"), (args.profile_dr, "dr")):
        if not size:
            continue
        rows = _parse_rows(size)
        folder = ensure_data(root, rows, args.file_units, args.seed)
        prof = os.path.join(tempfile.gettempdir(), f"bench_scale_profile_{method}_{rows}.txt")
        o = run_task(PROFILED[method], folder, args, profile=prof)
        print()
        print(
            f"cProfile of ours ooc {method}, threads=1, at {rows / 1e6:g}M rows "
            f"({_num(o.seconds)} s under the profiler):"
        )
        print()
        print("```")
        print(Path(prof).read_text() if os.path.exists(prof) else o.message)
        print("```")
    if args.json:
        raw = []
        for rows, outs in results.items():
            for o in outs:
                d = {k: v for k, v in vars(o).items() if k != "estimates"}
                d["rows"] = rows
                d["estimates"] = None if o.estimates is None else o.estimates.to_dict("list")
                raw.append(d)
        Path(args.json).write_text(json.dumps(raw, indent=1, default=str))


if __name__ == "__main__":
    main()
