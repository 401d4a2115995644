"""Staggered DiD out of core: Callaway-Sant'Anna on a panel read in passes over shards of units.

:func:`staggered_did` sends a path to a Parquet file or folder, or a ``pyarrow.dataset.Dataset``,
here. The rows are streamed as Arrow record batches cut into blocks of whole units
(:mod:`evaluator.data.shards`), the panel rules are checked in the same pass, and each block
is reduced to sufficient statistics; the frame is never formed.

Without covariates every ATT(g,t) and its influence function depend on a unit only through
its cohort class ``h`` (a cohort, or never treated) and its outcomes ``Y_i`` (one per period):
for cell ``j`` with periods ``t`` and base ``b``, ``psi_ij = a_j(h) (D_j'Y_i - m_j(h))`` with
``D_j = e_t - e_b``, ``a_j(h)`` = ``n/n_t`` (treated), ``-n/n_c`` (control) or 0, and ``m_j(h)`` the
mean of ``D_j'Y`` over the unit's side. So with, per class, the count ``N_h``, the mean outcome
vector and the centred cross-product matrix ``C_h = sum (Y_i - mean_h)(Y_i - mean_h)'`` (combined
across blocks exactly, by Chan's pairwise update), every estimate follows, and the covariance of
all cells and cohort shares is ``sum_h (L_h C_h L_h' + N_h c_h c_h') / n^2`` with ``L_h`` and ``c_h``
the linear and constant parts of ``psi`` on class ``h``. With clusters the per-cluster sums of
``psi`` need, per (cluster, class), the count and the sum of ``Y_i``: the clustered ``S'S / n^2``
is then formed exactly as in memory. The aggregations are the in-memory ones, on the same
:class:`~evaluator.estimators.staggered.StaggeredResult`.

An unbalanced panel used whole (``allow_unbalanced_panel=True``, the estimator of
:mod:`evaluator.estimators.staggered_rc`: each cell the difference of four means over the rows
of its two periods, a unit's influence function the sum over its rows) needs, per class, the
second moments of ``z_i = ((Y_i - c) O_i, O_i, 1)`` (``O_i`` the periods observed, ``c`` a
constant), since there ``psi_i = C_h z_i``; with clusters, the per-(cluster, class) sums of ``z_i``.

Covered: balanced panels (units missing periods are dropped with a warning, as in memory) and
unbalanced panels used whole, no covariates (any ``method``: they all reduce to the unconditional
estimator), never and not-yet-treated controls, varying and universal base periods, anticipation,
analytic standard errors by unit or by a cluster column. Not yet: covariates, sampling weights,
the bootstraps and repeated cross-sections; they raise :class:`NotImplementedError` saying so.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from evaluator.data.shards import (
    BATCH_ROWS,
    PanelChecks,
    UnitBlock,
    check_block,
    check_block_rows,
    check_columns,
    is_dask_frame,
    is_dataset_source,
    open_dataset,
    ordered_map,
    periods,
    unit_blocks,
)
from evaluator.errors import (
    DataError,
    DesignError,
    DroppedUnitsWarning,
    FewClustersWarning,
    MissingPeriodWarning,
    Problem,
    SmallCohortWarning,
    UnbalancedPanelError,
    format_examples,
)
from evaluator.estimators.design import choice
from evaluator.estimators.staggered import (
    METHOD_NAMES,
    StaggeredResult,
    _num,
    _pretest,
    _tiny,
    _with_simple,
)
from evaluator.policy import FEW_CLUSTERS
from evaluator.results.base import tidy_table

__all__ = ["is_out_of_core", "staggered_did_ooc"]


def is_out_of_core(data: Any) -> bool:
    """Whether :func:`staggered_did` reads ``data`` out of core (a path, a pyarrow Dataset or a Dask DataFrame)."""
    return is_dataset_source(data) or is_dask_frame(data)


# -- sufficient statistics ---------------------------------------------------------------------------------------------
@dataclass
class _Moments:
    """Count, mean outcome vector and centred cross-product matrix of the units of one cohort class."""

    n: int
    mean: np.ndarray
    comoment: np.ndarray

    def combine(self, other: _Moments) -> _Moments:
        """Chan, Golub and LeVeque's pairwise update: exact in exact arithmetic, stable in floating point."""
        n = self.n + other.n
        delta = other.mean - self.mean
        mean = self.mean + delta * (other.n / n)
        comoment = self.comoment + other.comoment + np.outer(delta, delta) * (self.n * other.n / n)
        return _Moments(n, mean, comoment)

    def restrict(self, keep: np.ndarray) -> _Moments:
        return _Moments(self.n, self.mean[keep], self.comoment[np.ix_(keep, keep)])


@dataclass
class _ClusterSums:
    """Per (cluster, cohort class): the number of units and the sum of their outcome vectors."""

    n_periods: int
    codes: dict[Any, int] = field(default_factory=dict)
    counts: dict[float, np.ndarray] = field(default_factory=dict)
    sums: dict[float, np.ndarray] = field(default_factory=dict)
    capacity: int = 0

    def add(self, clusters: np.ndarray, classes: np.ndarray, counts: np.ndarray, sums: np.ndarray) -> None:
        codes = np.fromiter(
            (self.codes.setdefault(v, len(self.codes)) for v in clusters.tolist()), dtype=np.int64, count=len(clusters)
        )
        if len(self.codes) > self.capacity:
            new = max(2 * self.capacity, len(self.codes), 64)
            for h in self.counts:
                self.counts[h] = np.concatenate([self.counts[h], np.zeros(new - self.capacity)])
                self.sums[h] = np.concatenate([self.sums[h], np.zeros((new - self.capacity, self.n_periods))])
            self.capacity = new
        for hi, h in enumerate(classes.tolist()):
            if h not in self.counts:
                self.counts[h] = np.zeros(self.capacity)
                self.sums[h] = np.zeros((self.capacity, self.n_periods))
            self.counts[h][codes] += counts[:, hi]  # a block's clusters are distinct: no repeated index
            self.sums[h][codes] += sums[:, hi, :]


def _block_statistics(
    block: UnitBlock, *, roles: dict[str, str], times: np.ndarray, clustered: bool
) -> tuple[Any, dict[float, _Moments], tuple[np.ndarray, ...] | None]:
    """One block: its panel checks, per-class moments of its valid units and, with clusters, their sums."""
    found, layout = check_block(block, roles, times)
    if layout.units.size == 0:
        return found, {}, None
    T = len(times)
    y = np.asarray(block.columns[roles["outcome"]], dtype=np.float64)
    if layout.index is None:
        Y = y.reshape(-1, T)
        first = np.arange(0, len(y), T)
    else:
        Y = y[layout.index]
        first = layout.index[:, 0]
    gu = np.asarray(block.columns[roles["cohort"]][first], dtype=np.float64)
    gu = np.where(np.isnan(gu) | (gu == 0), np.inf, gu)
    classes, inv = np.unique(gu, return_inverse=True)
    moments: dict[float, _Moments] = {}
    for hi, h in enumerate(classes.tolist()):
        Yh = Y if len(classes) == 1 else Y[inv == hi]
        mean = Yh.mean(axis=0)
        dev = Yh - mean
        moments[h] = _Moments(len(Yh), mean, dev.T @ dev)
    sums = None
    if clustered:
        cl = block.columns[roles["cluster"]][first]
        cvals, cinv = np.unique(cl, return_inverse=True)
        H = len(classes)
        key = cinv.astype(np.int64) * H + inv
        size = len(cvals) * H
        counts = np.bincount(key, minlength=size).reshape(len(cvals), H).astype(np.float64)
        ysum = np.stack([np.bincount(key, weights=Y[:, t], minlength=size) for t in range(T)], axis=1)
        sums = (cvals, classes, counts, ysum.reshape(len(cvals), H, T))
    return found, moments, sums


# -- the estimator -----------------------------------------------------------------------------------------------------
def _refuse(*, covariates: list[str], weights: str | None, n_boot: int, panel: bool) -> None:
    options = []
    if covariates:
        options.append(f"covariates ({covariates})")
    if weights is not None:
        options.append(f"weights={weights!r}")
    if n_boot:
        options.append(f"n_boot={n_boot} (the multiplier bootstrap; pass n_boot=0 for analytic standard errors)")
    if not panel:
        options.append("panel=False (repeated cross-sections)")
    if options:
        raise NotImplementedError(
            "out of core (a Parquet path or pyarrow Dataset), staggered_did does not support "
            + "; ".join(options)
            + " yet: read the data into a pandas DataFrame (pandas.read_parquet(path)) for that"
        )


def staggered_did_ooc(
    source: str | os.PathLike[str] | Any,
    *,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    control: str = "never",
    method: str = "dr",
    covariates: list[str] | None = None,
    anticipation: int = 0,
    base_period: str = "varying",
    cluster: str | None = None,
    weights: str | None = None,
    panel: bool = True,
    allow_unbalanced_panel: bool = False,
    n_boot: int = 0,
    seed: Any = None,
    alpha: float = 0.05,
    batch_rows: int = BATCH_ROWS,
    threads: int | None = None,
) -> StaggeredResult:
    """:func:`~evaluator.estimators.staggered.staggered_did` on a Parquet file, folder or pyarrow Dataset.

    The arguments are :func:`staggered_did`'s (which checks them and calls this for such
    ``source``), plus ``batch_rows`` (rows per Arrow record batch) and ``threads`` (threads
    reducing blocks; default ``min(4, cpu count)``). The rows must be sorted by unit, then
    period. The result equals the in-memory one on the same rows to rounding (1e-10), whatever
    ``batch_rows``, ``threads`` or the split into files.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from evaluator.data.simulate import sick_leave_sib
    >>> sim = sick_leave_sib(n_municipalities=10, employees_per_municipality=20, n_periods=24, waves=(7, 13), seed=1)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "panel.parquet"
    >>> sim.data.sort_values(["employee", "month"]).to_parquet(path)
    >>> kw = dict(outcome="sick_days", unit="employee", time="month", cohort="first_treated", n_boot=0)
    >>> res = staggered_did_ooc(path, batch_rows=1000, **kw)
    >>> from evaluator.estimators.staggered import staggered_did
    >>> mem = staggered_did(sim.data, **kw)
    >>> bool(np.allclose(res.att_gt["se"], mem.att_gt["se"], rtol=1e-10, equal_nan=True))
    True
    """
    if is_dask_frame(source):
        raise NotImplementedError(
            "Dask DataFrames are not supported by staggered_did yet: write it to Parquet sorted by unit then period "
            "(ddf.to_parquet(folder)) and pass the folder"
        )
    choice("control", control, ("never", "not_yet"))
    choice("base_period", base_period, ("varying", "universal"))
    covs = [covariates] if isinstance(covariates, str) else list(covariates or [])
    _refuse(covariates=covs, weights=weights, n_boot=n_boot, panel=panel)
    threads = min(4, os.cpu_count() or 1) if threads is None else int(threads)

    dataset, label = open_dataset(source)
    roles = {"outcome": outcome, "unit": unit, "time": time, "cohort": cohort}
    if cluster is not None:
        roles["cluster"] = cluster
    check_columns(dataset, roles, numeric=[outcome, time, cohort], label=label)
    times = periods(dataset, time)
    if not len(times):
        raise DataError([Problem("the data have no rows with a period", column=time)], source=label)
    T0 = len(times)

    # -- the pass: checks and sufficient statistics, block by block, combined in order
    checks = PanelChecks(roles)
    missing_units: list[int] = []
    moments: dict[float, _Moments] = {}
    csums = _ClusterSums(T0) if cluster is not None else None
    blocks = unit_blocks(dataset, roles, batch_rows=batch_rows, missing_units=missing_units, label=label)
    n_blocks = 0
    if allow_unbalanced_panel:
        # every unit, complete or not: second moments of (outcomes, observed, 1) per cohort class
        patterns: dict[float, _Pattern] = {}
        psums = _PatternClusters(T0) if cluster is not None else None
        first = next(blocks, None)
        shift = _shift(first, roles["outcome"])
        rows_reduce = partial(_row_statistics, roles=roles, times=times, clustered=cluster is not None, shift=shift)
        for found, block_patterns, sums in ordered_map(rows_reduce, _chain(first, blocks), threads=threads):
            n_blocks += 1
            checks.add(found)
            for h, pat in block_patterns.items():
                patterns[h] = pat if h not in patterns else patterns[h] + pat
            if psums is not None and sums is not None:
                psums.add(*sums)
        checks.add_missing_units(missing_units)
        checks.raise_problems(label)
        if checks.unbalanced.count:
            return _unbalanced(
                patterns,
                psums,
                shift=shift,
                times=times,
                outcome=outcome,
                control=control,
                anticipation=anticipation,
                base_period=base_period,
                cluster=cluster,
                alpha=alpha,
                covs=covs,
                source={"source": label, "rows": checks.rows, "blocks": n_blocks, "batch_rows": batch_rows},
            )
        # balanced after all: the panel estimator, as in memory (its moments from the same sums)
        moments = {h: pat.moments(shift) for h, pat in patterns.items()}
        if psums is not None and csums is not None:
            psums.to_balanced(csums, shift)
    else:
        reduce = partial(_block_statistics, roles=roles, times=times, clustered=cluster is not None)
        for found, block_moments, sums in ordered_map(reduce, blocks, threads=threads):
            n_blocks += 1
            checks.add(found)
            for h, m in block_moments.items():
                moments[h] = m if h not in moments else moments[h].combine(m)
            if csums is not None and sums is not None:
                csums.add(*sums)
        checks.add_missing_units(missing_units)
        checks.raise_problems(label)

    notes: list[str] = []
    dropped = None
    if checks.unbalanced.count:
        nu, gaps = checks.units, checks.unbalanced.count
        if gaps == nu:
            raise UnbalancedPanelError(
                f"unbalanced panel: none of the {nu} units is observed in all {T0} periods, so balancing it "
                "leaves nothing; pass allow_unbalanced_panel=True to use every observation (as R did), or "
                "panel=False if the rows are repeated cross-sections"
            )
        why = (
            f"{gaps} of {nu} units ({checks.unbalanced_rows} rows) not observed in all {T0} periods "
            f"({checks.unbalanced.where('units')})"
        )
        warnings.warn(
            f"unbalanced panel: dropped {why}, as R did does by default; pass allow_unbalanced_panel=True to use "
            "every observation",
            DroppedUnitsWarning,
            stacklevel=3,
        )
        dropped = {"units": gaps, "rows": checks.unbalanced_rows, "units_before": nu, "periods": T0}
        unbalanced_note = f"unbalanced panel: dropped {why} (allow_unbalanced_panel=False)"
    else:
        unbalanced_note = None

    # the outcome's standard deviation over every (unit, period) of the balanced panel (the unit of "zero" SEs)
    total = sum(m.n for m in moments.values())
    grand = sum(m.n * m.mean.sum() for m in moments.values()) / (total * T0)
    m2 = sum(np.trace(m.comoment) + m.n * np.sum((m.mean - grand) ** 2) for m in moments.values())
    scale = float(np.sqrt(m2 / (total * T0)))

    # -- cohorts: late ones never treated, early ones dropped (as in memory)
    late = [h for h in moments if np.isfinite(h) and h > times[-1] + anticipation]
    if late:
        n_late = sum(moments[h].n for h in late)
        notes.append(f"{n_late} units first treated after the last period are used as never treated")
        for h in late:
            _merge_class(moments, csums, h, np.inf)
    if unbalanced_note is not None:
        notes.append(unbalanced_note)
    early = sorted(h for h in moments if np.isfinite(h) and h <= times[0] + anticipation)
    if early:
        n_early = sum(moments[h].n for h in early)
        warnings.warn(
            f"dropped {n_early} units of cohorts {[_num(v) for v in early]}: treated in or before the first "
            f"period {_num(times[0])} (+ anticipation {anticipation}), they have no pre-treatment period",
            DroppedUnitsWarning,
            stacklevel=3,
        )
        for h in early:
            del moments[h]
            if csums is not None:
                csums.counts.pop(h, None)
                csums.sums.pop(h, None)
        notes.append(f"{n_early} units treated in the first period were dropped")
    has_never = np.inf in moments
    if control == "never" and not has_never:
        raise DesignError(
            'no never-treated units (cohort 0 or NaN) to compare with under control="never"; '
            'use control="not_yet" to compare with units not yet treated'
        )
    glist = np.array(sorted(h for h in moments if np.isfinite(h)))
    keep_t = np.ones(T0, dtype=bool)
    if not has_never and len(glist):
        latest = glist[-1]
        keep_t = times < latest - anticipation
        times = times[keep_t]
        glist = glist[:-1]
        notes.append(
            f"no never-treated units: periods from {_num(latest - anticipation)} on are dropped and cohort "
            f"{_num(latest)} serves only as a not-yet-treated control"
        )
    if len(glist) == 0:
        raise DesignError("no treated cohort with a pre-treatment period remains; nothing to estimate")
    T = len(times)
    if T < 2:
        raise DesignError("fewer than two periods remain; nothing to compare")
    classes = sorted(moments)
    mom = [moments[h].restrict(keep_t) for h in classes]
    N = np.array([m.n for m in mom], dtype=np.float64)
    n = int(N.sum())

    # clusters with a unit left
    if csums is not None:
        present = np.zeros(csums.capacity, dtype=bool)
        for h in classes:
            present |= csums.counts[h] > 0
        cl_counts = [csums.counts[h][present] for h in classes]
        cl_sums = [csums.sums[h][present][:, keep_t] for h in classes]
        n_clusters = int(present.sum())
        if n_clusters < 2:
            raise DesignError(f"cluster={cluster!r} has a single cluster; clustered inference needs at least 2")
    else:
        n_clusters = n
    sizes = {gv: moments[gv].n for gv in glist}
    single = [_num(gv) for gv, s in sizes.items() if s == 1]
    if single:
        warnings.warn(
            f"cohorts {single} have a single unit: their analytic standard errors ignore the variance of the "
            "treated side (it cannot be estimated from one unit); treat them with great caution, e.g. compare "
            "with the bootstrap (n_boot > 0) or pool cohorts",
            SmallCohortWarning,
            stacklevel=3,
        )
        notes.append(f"single-unit cohorts {single}: their standard errors understate uncertainty")
    if cluster is not None and n_clusters < FEW_CLUSTERS:
        warnings.warn(
            f"only {n_clusters} clusters in {cluster!r}: analytic cluster-robust intervals under-cover with fewer "
            f"than {FEW_CLUSTERS} clusters; use the cluster multiplier bootstrap (n_boot > 0)",
            FewClustersWarning,
            MissingPeriodWarning,
            stacklevel=3,
        )
        notes.append(f"only {n_clusters} clusters: inference is fragile")

    # -- the cells, planned as in memory (classes stand for their units)
    tfirst = 0 if base_period == "universal" else 1
    cls = np.array(classes)
    never_cls = ~np.isfinite(cls)
    plan: list[tuple[int, float, int, int, np.ndarray]] = []
    skipped: list[str] = []
    for gi, gv in enumerate(glist):
        pret_g = int(np.nonzero(times + anticipation < gv)[0][-1])
        for cur in range(tfirst, T):
            base = pret_g if (times[cur] >= gv or base_period == "universal") else cur - 1
            if control == "never":
                ctrl = never_cls
            else:
                cutoff = float(times[max(cur, base)] + anticipation)
                ctrl = (never_cls | (cls > cutoff)) & (cls != gv)
            if base != cur and not ctrl.any():
                skipped.append(f"({_num(gv)},{_num(times[cur])})")
                continue
            plan.append((gi, gv, cur, base, ctrl))
    if skipped:
        notes.append(f"cells without any control unit were skipped: {format_examples(skipped)}")
    if not plan:
        raise DesignError("no (cohort, period) cell has both treated and control units")
    k = len(plan)
    G = len(glist)
    pg = np.array([sizes[gv] / n for gv in glist])
    H = len(classes)
    A = np.zeros((H, k))  # a_j(h)
    Mv = np.zeros((H, k))  # m_j(h)
    Dmat = np.zeros((T, k))
    att = np.zeros(k)
    cells: list[dict[str, Any]] = []
    means = np.array([m.mean for m in mom])  # H x T
    for j, (gi, gv, cur, base, ctrl) in enumerate(plan):
        ti = classes.index(gv)
        n_t, n_c = sizes[gv], int(N[ctrl].sum())
        cells.append(
            {"cohort": gv, "time": times[cur], "gidx": gi, "n_treated": n_t, "n_control": n_c, "base": times[base]}
        )
        if base == cur:  # universal base period: normalised to zero
            continue
        dy = means[:, cur] - means[:, base]  # mean change of each class
        mt = float(dy[ti])
        mc = float(np.sum(N[ctrl] * dy[ctrl])) / n_c
        att[j] = mt - mc
        Dmat[cur, j], Dmat[base, j] = 1.0, -1.0
        A[ti, j] = n / n_t
        A[ctrl, j] = -n / n_c
        Mv[ti, j] = mt
        Mv[ctrl, j] = mc

    # psi_i = L_h (Y_i - mean_h) + c_h for a unit of class h, over the k cells and the G cohort shares
    m = k + G
    share = np.array([[1.0 if h == gv else 0.0 for gv in glist] for h in classes]).reshape(H, G)
    L = [np.vstack([(A[h][:, None] * Dmat.T), np.zeros((G, T))]) for h in range(H)]  # m x T each
    c = [np.concatenate([A[h] * (means[h] @ Dmat - Mv[h]), share[h] - pg]) for h in range(H)]
    if csums is None:
        sigma = np.zeros((m, m))
        for h in range(H):
            sigma += L[h] @ mom[h].comoment @ L[h].T + N[h] * np.outer(c[h], c[h])
        sigma /= n**2
    else:
        S = np.zeros((n_clusters, m))
        for h in range(H):
            S += (cl_sums[h] - cl_counts[h][:, None] * means[h]) @ L[h].T + cl_counts[h][:, None] * c[h]
        sigma = (S.T @ S) / n**2

    # -- the result, as the in-memory analytic branch builds it
    cells_df = pd.DataFrame(cells)
    se_an = np.sqrt(np.maximum(np.diag(sigma)[:k], 0.0))
    se_an[se_an <= _tiny(scale)] = np.nan
    ev = (cells_df["time"] - cells_df["cohort"]).to_numpy()
    terms = [f"ATT({_num(a)},{_num(b)})" for a, b in zip(cells_df["cohort"], cells_df["time"], strict=True)]
    extra = {
        "cohort": [_num(v) for v in cells_df["cohort"]],
        "time": [_num(v) for v in cells_df["time"]],
        "event_time": [_num(v) for v in ev],
        "n_treated": cells_df["n_treated"].to_numpy(),
        "n_control": cells_df["n_control"].to_numpy(),
    }
    table = tidy_table(terms, att, se_an, alpha=alpha, **extra)
    inference = (
        "analytic, influence function"
        + (f" summed within {n_clusters} clusters of {cluster!r}" if cluster is not None else "")
        + ": se = sqrt(sum psi^2)/n, normal intervals"
    )
    pretest, pretest_note = _pretest(cells_df, att, sigma, se_an, anticipation, cluster, n_clusters)
    n_never = int(N[never_cls].sum())
    info: dict[str, Any] = {
        "n_units": n,
        "n_treated": n - n_never,
        "n_control": n_never,
        "n_periods": int(T),
        "n_cohorts": int(G),
        "control": control,
        "method": "unconditional",
        "base_period": base_period,
        "anticipation": anticipation,
        "covariates": covs,
        "cohort_sizes": {_num(gv): s for gv, s in sizes.items()},
        "n_boot": 0,
        "crit_value": float("nan"),
        "boot_df": None,
    }
    if cluster is not None:
        info["n_clusters"] = n_clusters
        info["cluster"] = cluster
    if dropped is not None:
        info["unbalanced_dropped"] = dropped
    if pretest is not None:
        info["pretest"] = pretest
    if pretest_note is not None:
        info["pretest_unavailable"] = pretest_note
        notes.append(pretest_note)
    info["out_of_core"] = {"source": label, "rows": checks.rows, "blocks": n_blocks, "batch_rows": batch_rows}
    headline_note = (
        "estimate, SE, CI and p-value of the ATT(g,t) result are the simple aggregate (post-treatment cells "
        "weighted by cohort size); see .aggregate()"
    )
    res = StaggeredResult(
        estimator=f"Callaway-Sant'Anna ATT(g,t), {METHOD_NAMES['unconditional']}, "
        f"{'never-treated' if control == 'never' else 'not-yet-treated'} controls",
        table=table,
        nobs=int(n * T),
        alpha=alpha,
        inference=inference,
        outcome=outcome,
        notes=(headline_note, *notes),
        info=info,
        _att=att,
        _sigma=sigma,
        _draws=None,
        _cells=cells_df,
        _pg=pg,
        _groups=glist,
        _t_range=(float(times[0]), float(times[-1])),
        _wcr=None,
        _scale=scale,
        _cell_clusters=(),
    )
    return _with_simple(res)


def _merge_class(moments: dict[float, _Moments], csums: _ClusterSums | None, h: float, into: float) -> None:
    """Move cohort class ``h`` into class ``into`` (late cohorts into the never treated)."""
    m = moments.pop(h)
    moments[into] = m if into not in moments else moments[into].combine(m)
    if csums is not None and h in csums.counts:
        counts, sums = csums.counts.pop(h), csums.sums.pop(h)
        if into in csums.counts:
            csums.counts[into] = csums.counts[into] + counts
            csums.sums[into] = csums.sums[into] + sums
        else:
            csums.counts[into], csums.sums[into] = counts, sums


# -- unbalanced panels used whole (allow_unbalanced_panel=True) ------------------------------------------------------
def _chain(first: UnitBlock | None, rest: Iterator[UnitBlock]) -> Iterator[UnitBlock]:
    if first is not None:
        yield first
    yield from rest


def _shift(block: UnitBlock | None, outcome: str) -> float:
    """A constant taken from the outcomes (their mean in the first block) so that second moments are formed about it:
    the estimates and influence functions do not depend on it, their rounding does (less cancellation)."""
    if block is None:
        return 0.0
    y = np.asarray(block.columns[outcome], dtype=np.float64)
    y = y[np.isfinite(y)]
    return float(y.mean()) if y.size else 0.0


@dataclass
class _Pattern:
    """One cohort class of an unbalanced panel: ``Q = sum_i z_i z_i'`` with ``z_i = (Y_i - shift) * O_i, O_i, 1``
    (outcomes, 0 where unobserved; the observed indicators; one), and the units by their first observed period."""

    Q: np.ndarray
    first: np.ndarray

    def __add__(self, other: _Pattern) -> _Pattern:
        return _Pattern(self.Q + other.Q, self.first + other.first)

    def moments(self, shift: float) -> _Moments:
        """The balanced panel's moments (every unit observed in every period)."""
        T = len(self.first)
        n = int(round(self.Q[-1, -1]))
        sz = self.Q[:T, 2 * T]
        mean_z = sz / n
        comoment = self.Q[:T, :T] - n * np.outer(mean_z, mean_z)
        return _Moments(n, mean_z + shift, comoment)


@dataclass
class _PatternClusters:
    """Per (cluster, cohort class): sums of ``z`` (shifted outcomes, observed indicators), units by first period."""

    n_periods: int
    inner: _ClusterSums = field(init=False)

    def __post_init__(self) -> None:
        self.inner = _ClusterSums(3 * self.n_periods)  # z sums, observed counts, units by first period

    def add(self, clusters: np.ndarray, classes: np.ndarray, counts: np.ndarray, sums: np.ndarray) -> None:
        self.inner.add(clusters, classes, counts, sums)

    def part(self, h: float, which: int) -> np.ndarray:
        T = self.n_periods
        return self.inner.sums[h][:, which * T : (which + 1) * T]

    def to_balanced(self, csums: _ClusterSums, shift: float) -> None:
        """Per (cluster, class) unit counts and outcome sums of a balanced panel."""
        csums.codes, csums.capacity = self.inner.codes, self.inner.capacity
        for h in self.inner.sums:
            units = self.part(h, 2).sum(axis=1)
            csums.counts[h] = units
            csums.sums[h] = self.part(h, 0) + units[:, None] * shift


def _row_statistics(
    block: UnitBlock, *, roles: dict[str, str], times: np.ndarray, clustered: bool, shift: float
) -> tuple[Any, dict[float, _Pattern], tuple[np.ndarray, ...] | None]:
    """One block of an unbalanced panel: its checks, per-class ``_Pattern`` and, with clusters, per-cluster sums."""
    found, layout = check_block_rows(block, roles, times)
    nu = len(layout.units)
    if nu == 0:
        return found, {}, None
    T = len(times)
    y = np.asarray(block.columns[roles["outcome"]], dtype=np.float64)[layout.rows]
    Z = np.zeros((nu, 2 * T + 1))
    Z[layout.unit, layout.period] = y - shift
    Z[layout.unit, T + layout.period] = 1.0
    Z[:, 2 * T] = 1.0
    starts = np.flatnonzero(np.concatenate([[True], layout.unit[1:] != layout.unit[:-1]]))
    first_period = layout.period[starts]
    g = np.asarray(block.columns[roles["cohort"]], dtype=np.float64)[layout.rows[starts]]
    g = np.where(np.isnan(g) | (g == 0), np.inf, g)
    classes, inv = np.unique(g, return_inverse=True)
    out: dict[float, _Pattern] = {}
    for hi, h in enumerate(classes.tolist()):
        sel = inv == hi
        Zh = Z if len(classes) == 1 else Z[sel]
        out[h] = _Pattern(Zh.T @ Zh, np.bincount(first_period[sel], minlength=T).astype(np.float64))
    sums = None
    if clustered:
        cl = block.columns[roles["cluster"]][layout.rows[starts]]
        cvals, cinv = np.unique(cl, return_inverse=True)
        H = len(classes)
        key = cinv.astype(np.int64) * H + inv
        size = len(cvals) * H
        F = np.zeros((nu, T))
        F[np.arange(nu), first_period] = 1.0
        W = np.hstack([Z[:, : 2 * T], F])
        acc = np.stack([np.bincount(key, weights=W[:, c], minlength=size) for c in range(3 * T)], axis=1)
        counts = np.bincount(key, minlength=size).reshape(len(cvals), H).astype(np.float64)
        sums = (cvals, classes, counts, acc.reshape(len(cvals), H, 3 * T))
    return found, out, sums


def _unbalanced(
    patterns: dict[float, _Pattern],
    psums: _PatternClusters | None,
    *,
    shift: float,
    times: np.ndarray,
    outcome: str,
    control: str,
    anticipation: int,
    base_period: str,
    cluster: str | None,
    alpha: float,
    covs: list[str],
    source: dict[str, Any],
) -> StaggeredResult:
    """An unbalanced panel used whole, as :func:`evaluator.estimators.staggered_rc.staggered_did_rc` (panel=True).

    Each cell is the difference of four means over the rows of its two periods; a unit's
    influence function is the sum over its rows, linear in ``z_i``: ``psi_i = C_h z_i``, so
    ``sum_i psi_i psi_i' = sum_h C_h Q_h C_h'`` and the cluster sums are ``C_h`` times the sums of ``z``.
    """
    from evaluator.estimators.staggered_rc import _finish  # imported here: it imports staggered, as we do

    T0 = len(times)
    notes: list[str] = []

    def units(h: float, keep: np.ndarray | None = None) -> int:
        f = patterns[h].first
        return int(round(f.sum() if keep is None else f[keep].sum()))

    def rows_of(h: float, keep: np.ndarray | None = None) -> float:
        d = np.diag(patterns[h].Q)[T0 : 2 * T0]
        return float(d.sum() if keep is None else d[keep].sum())

    late = [h for h in patterns if np.isfinite(h) and h > times[-1] + anticipation]
    if late:
        notes.append(
            f"{sum(units(h) for h in late)} units first treated after the last period are used as never treated"
        )
        for h in late:
            pat = patterns.pop(h)
            patterns[np.inf] = pat if np.inf not in patterns else patterns[np.inf] + pat
            if psums is not None and h in psums.inner.sums:
                inner = psums.inner
                c, sm = inner.counts.pop(h), inner.sums.pop(h)
                if np.inf in inner.sums:
                    inner.counts[np.inf] = inner.counts[np.inf] + c
                    inner.sums[np.inf] = inner.sums[np.inf] + sm
                else:
                    inner.counts[np.inf], inner.sums[np.inf] = c, sm
    early = sorted(h for h in patterns if np.isfinite(h) and h <= times[0] + anticipation)
    if early:
        gs = [_num(v) for v in early]
        msg = (
            f"dropped {sum(units(h) for h in early)} units ({int(sum(rows_of(h) for h in early))} rows) of cohorts {gs}"
        )
        warnings.warn(
            f"{msg}: treated in or before the first period {_num(times[0])} (+ anticipation {anticipation}), they "
            "have no pre-treatment period",
            DroppedUnitsWarning,
            stacklevel=4,
        )
        notes.append(f"{msg}: treated in the first period")
        for h in early:
            del patterns[h]
            if psums is not None:
                psums.inner.counts.pop(h, None)
                psums.inner.sums.pop(h, None)
    never_any = np.inf in patterns
    if control == "never" and not never_any:
        raise DesignError(
            'no never-treated observations (cohort 0 or NaN) to compare with under control="never"; '
            'use control="not_yet" to compare with observations not yet treated'
        )
    keep = np.ones(T0, dtype=bool)
    if not never_any and patterns:
        latest = max(patterns)
        drop = times >= latest - anticipation
        late_rows = int(sum(rows_of(h, drop) for h in patterns))
        if late_rows:
            notes.append(
                f"no never-treated observations: periods from {_num(latest - anticipation)} on are dropped "
                f"({late_rows} rows) and cohort {_num(latest)} serves only as a not-yet-treated control"
            )
        keep &= ~drop
    per_period = sum((np.diag(p.Q)[T0 : 2 * T0] for p in patterns.values()), np.zeros(T0))
    keep &= per_period > 0
    if not keep.any():
        raise DesignError("no observations remain; nothing to estimate")
    times = times[keep]
    T = len(times)
    if T < 2:
        raise DesignError("fewer than two periods remain; nothing to compare")
    kept = np.flatnonzero(keep)
    pick = np.concatenate([kept, T0 + kept, [2 * T0]])
    classes = sorted(h for h in patterns if units(h, keep) > 0)
    n_h = np.array([units(h, keep) for h in classes], dtype=np.float64)
    Q = []
    for h, nh in zip(classes, n_h, strict=True):
        q = patterns[h].Q[np.ix_(pick, pick)].copy()
        q[-1, -1] = nh  # units with a row in the periods kept
        Q.append(q)
    allg = np.array([h for h in classes if np.isfinite(h)])
    glist = allg if never_any else allg[:-1]
    if len(glist) == 0:
        raise DesignError("no treated cohort with a pre-treatment period remains; nothing to estimate")
    n = int(n_h.sum())
    if psums is not None:
        present = np.zeros(psums.inner.capacity, dtype=bool)
        for h in classes:
            present |= psums.part(h, 1)[:, kept].sum(axis=1) > 0
        n_clusters = int(present.sum())
        if n_clusters < 2:
            raise DesignError(f"cluster={cluster!r} has a single cluster; clustered inference needs at least 2")
    else:
        n_clusters = n
    sizes = {gv: int(n_h[classes.index(gv)]) for gv in glist}
    single = [_num(gv) for gv, s in sizes.items() if s == 1]
    if single:
        warnings.warn(
            f"cohorts {single} have a single observation: their analytic standard errors ignore the variance of "
            "the treated side; treat them with great caution",
            SmallCohortWarning,
            stacklevel=4,
        )
        notes.append(f"single-observation cohorts {single}: their standard errors understate uncertainty")
    if cluster is not None and n_clusters < FEW_CLUSTERS:
        warnings.warn(
            f"only {n_clusters} clusters in {cluster!r}: analytic cluster-robust intervals under-cover with fewer "
            f"than {FEW_CLUSTERS} clusters; use the cluster multiplier bootstrap (n_boot > 0)",
            FewClustersWarning,
            MissingPeriodWarning,
            stacklevel=4,
        )
        notes.append(f"only {n_clusters} clusters: inference is fragile")

    H = len(classes)
    cls = np.array(classes)
    cnt = np.array([np.diag(q)[T : 2 * T] for q in Q])  # rows per class and period (H x T)
    sz = np.array([q[:T, 2 * T] for q in Q])  # shifted outcome sums (H x T)
    tfirst = 0 if base_period == "universal" else 1
    plan: list[tuple[int, float, int, int, int, np.ndarray]] = []
    no_control: list[str] = []
    missing: dict[tuple[float, float], list[str]] = {}
    for gi, gv in enumerate(glist):
        ci = classes.index(gv)
        pret_g = int(np.nonzero(times + anticipation < gv)[0][-1])
        for cur in range(tfirst, T):
            base = pret_g if (times[cur] >= gv or base_period == "universal") else cur - 1
            if control == "never":
                ctrl = ~np.isfinite(cls)
            else:
                cutoff = float(times[max(cur, base)] + anticipation)
                ctrl = ~np.isfinite(cls) | ((cls > cutoff) & (cls != gv))
            label = f"ATT({_num(gv)},{_num(times[cur])})"
            if base != cur:
                gaps = [p for p in (cur, base) if cnt[ci, p] <= 0]
                for p in gaps:
                    missing.setdefault((gv, float(times[p])), []).append(label)
                if gaps:
                    continue
                if any(cnt[ctrl, p].sum() <= 0 for p in (cur, base)):
                    no_control.append(f"({_num(gv)},{_num(times[cur])})")
                    continue
            plan.append((gi, gv, ci, cur, base, ctrl))
    if missing:
        parts = [
            f"cohort {_num(gv)} has no observation in period {_num(p)} (needed by {format_examples(cells)})"
            for (gv, p), cells in missing.items()
        ]
        msg = (
            "; ".join(parts)
            + ": those cells cannot be estimated and are left out (R did reports them as NA). Fix: the cohort "
            "needs observations in that period (for post-treatment cells it is the base period g - anticipation - 1); "
            "if the data have none, drop the cohort or report only the cells that remain"
        )
        warnings.warn(msg, MissingPeriodWarning, stacklevel=4)
        notes.append("cells left out, a cohort unobserved in a period they need: " + "; ".join(parts))
    if no_control:
        notes.append(f"cells without any control observation were skipped: {format_examples(no_control)}")
    if not plan:
        raise DesignError("no (cohort, period) cell has both treated and control observations in both periods")
    k = len(plan)
    G = len(glist)
    pg = np.array([sizes[gv] / n for gv in glist])
    m = k + G
    # psi_i = C_h z_i, z_i = (shifted outcomes (T), observed (T), 1)
    C = np.zeros((H, m, 2 * T + 1))
    for h in range(H):
        C[h, k:, 2 * T] = (cls[h] == glist).astype(np.float64) - pg
    att = np.zeros(k)
    cells: list[dict[str, Any]] = []
    for j, (gi, gv, ci, cur, base, ctrl) in enumerate(plan):
        treated = np.zeros(H, dtype=bool)
        treated[ci] = True
        cells.append(
            {
                "cohort": gv,
                "time": times[cur],
                "gidx": gi,
                "n_treated": int(cnt[ci, cur] + cnt[ci, base]),
                "n_control": int(cnt[ctrl, cur].sum() + cnt[ctrl, base].sum()),
                "base": times[base],
            }
        )
        if base == cur:  # universal base period: normalised to zero
            continue
        est = 0.0
        for p, members, sign in ((cur, treated, 1.0), (base, treated, -1.0), (cur, ctrl, -1.0), (base, ctrl, 1.0)):
            W = float(cnt[members, p].sum())
            mean = float(sz[members, p].sum()) / W
            est += sign * mean
            C[members, j, p] += n * sign / W  # on the outcome
            C[members, j, T + p] -= n * sign / W * mean  # on the observed indicator
        att[j] = est
    if psums is None:
        sigma = sum(C[h] @ Q[h] @ C[h].T for h in range(H)) / n**2
    else:
        S = np.zeros((n_clusters, m))
        for h, hv in enumerate(classes):
            V = np.column_stack(
                [
                    psums.part(hv, 0)[present][:, kept],
                    psums.part(hv, 1)[present][:, kept],
                    psums.part(hv, 2)[present][:, kept].sum(axis=1),
                ]
            )
            S += V @ C[h].T
        sigma = (S.T @ S) / n**2
    total_rows = float(cnt.sum())
    sum_z = float(sz.sum())
    sum_z2 = float(sum(np.trace(q[:T, :T]) for q in Q))
    scale = float(np.sqrt(max(sum_z2 / total_rows - (sum_z / total_rows) ** 2, 0.0)))
    n_never = int(n_h[~np.isfinite(cls)].sum())
    return _finish(
        Bcols=None,
        sigma=sigma,
        att=att,
        cells=cells,
        cell_clusters=(),
        pg=pg,
        glist=glist,
        times=times,
        n=n,
        cl=None,
        n_clusters=n_clusters,
        cluster=cluster,
        treated_m=None,
        control_m=None,
        n_boot=0,
        seed=None,
        alpha=alpha,
        notes=notes,
        info_extra={"panel": True, "allow_unbalanced_panel": True, "n_obs": int(total_rows), "out_of_core": source},
        outcome=outcome,
        nobs=int(total_rows),
        scale=scale,
        est_method="unconditional",
        control=control,
        base_period=base_period,
        anticipation=anticipation,
        covs=covs,
        sizes=sizes,
        n_treated=n - n_never,
        n_never=n_never,
        what="units",
        panel=True,
    )
