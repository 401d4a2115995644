"""Two-way fixed effects out of core: :func:`evaluator.estimators.twfe.did` on a panel read in passes over units.

:func:`~evaluator.estimators.twfe.did` sends a path to a Parquet file or folder, a ``pyarrow.dataset.Dataset``,
a Dask DataFrame or a validated :class:`~evaluator.data.panel_source.PanelSource` here. In memory the unit
effects are swept out by unit means and the period effects solve a ``T x T`` system
(:func:`~evaluator.estimators.twfe._absorb_two_way`); that system is a sum over units, so:

1. a pass checks the panel rules (:func:`~evaluator.data.shards.check_block_rows`: every unit, balanced or
   not) and sums, per unit ``i`` with observed periods ``O_i`` and ``n_i`` rows, ``O_i O_i' / n_i`` and, for
   ``M = (y, D)``, the periods' sums of ``M`` and ``O_i mean_i(M)``: the period effects
   ``gamma`` follow, and the fixed effects' rank;
2. a pass forms each row's residuals ``M - alpha_i - gamma_t`` (``alpha_i = mean_i(M) - O_i'gamma / n_i``) and
   sums ``D~ y~`` and ``D~^2``: the coefficient;
3. a pass sums each cluster's (or unit's) score ``sum D~ e`` (and, for HC1, ``sum (D~ e)^2``), with the
   coefficient known, so the CR1 (or HC1) covariance is formed as in memory
   (:func:`~evaluator.inference.sandwich.cr1_from_scores`).

Covered: the treatment indicator and covariates (time-varying, each row its own values: ``M`` holds them too,
the coefficients come from ``X~'W[X~ | y~]`` and the absorbed and collinear checks from those sums and the
regressors' spread, :func:`~evaluator.estimators.twfe.check_regressors`), regression weights (``weights=``, by
row, checked with the in-memory words; rows of weight 0 left out with the same warning; every sum weighted, the
scores ``w X~ e``), CR1 by unit or a cluster column, HC1, the restricted wild cluster bootstrap (two passes more,
:func:`_wild`; at most :data:`WILD_MAX_CLUSTERS` clusters), balanced and unbalanced panels. The rows must be
sorted by unit, then period, and a cluster must contain whole units (the passes check both).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from evaluator.data.shards import (
    BATCH_ROWS,
    BlockPasses,
    PanelChecks,
    UnitBlock,
    check_block_rows,
    dask_client,
)
from evaluator.errors import DataError, DroppedUnitsWarning, Problem
from evaluator.estimators.design import choice
from evaluator.estimators.staggered_ooc import (
    _ClusterSums,
    _covariates_of,
    _CovFindings,
    _Moments,
    _weight_findings,
    _weighted_moments,
    _WeightFindings,
    open_panel,
    panel_roles,
)
from evaluator.estimators.twfe import (
    check_regressors,
    check_treated,
    single_cluster_error,
    solve_b_effects,
    staggered_note,
    vcov_words,
    wild_label,
)
from evaluator.inference.bootstrap import wild_from_sums
from evaluator.inference.sandwich import cr1_from_scores, hc1_from_meat
from evaluator.results.base import Result, tidy_table

__all__ = ["did_ooc"]


#: Most clusters the wild bootstrap keeps the cross-products of out of core (each ``(k + T - 1)^2`` numbers).
WILD_MAX_CLUSTERS = 100_000


def _wild(
    over: BlockPasses,
    roles: dict[str, str],
    times: np.ndarray,
    weights: str | None,
    covs: list[str],
    cname: str,
    *,
    G: int,
    K: int,
    N: int,
    k: int,
    n_boot: int,
    seed: Any,
    alpha: float,
) -> Any:
    """The restricted wild cluster bootstrap of the in-memory ``_fit``, from two passes more: the regressors and the
    period dummies with the unit effects swept out (``sqrt(w)`` times), their cross-products, then each cluster's
    scores and ``X_g'X_g`` (clusters in the order the rows first show them, as in memory), into
    :func:`~evaluator.inference.bootstrap.wild_from_sums`."""
    if G > WILD_MAX_CLUSTERS:
        raise NotImplementedError(
            f"out of core, inference='wild' keeps each cluster's cross-products: at most {WILD_MAX_CLUSTERS:,} "
            f"clusters, and '{cname}' has {G:,}; cluster by a coarser column, or use inference='cluster'"
        )
    T = len(times)
    label_col = roles.get("cluster", roles["unit"])

    def swept(block: UnitBlock) -> tuple[Any, np.ndarray] | None:
        _, _, rows, unit_i, period, M, w, nu = _rows(block, roles, times, weights, covs)
        if nu == 0:
            return None
        Td = np.zeros((len(M), T - 1))
        later = np.flatnonzero(period > 0)
        Td[later, period[later] - 1] = 1.0
        F = np.column_stack([M, Td])
        wt = np.ones(len(M)) if w is None else w
        sums = np.stack([np.bincount(unit_i, weights=wt * F[:, c], minlength=nu) for c in range(F.shape[1])], 1)
        Fb = (F - (sums / np.bincount(unit_i, weights=wt, minlength=nu)[:, None])[unit_i]) * np.sqrt(wt)[:, None]
        return block.columns[label_col][rows], Fb

    def cross(block: UnitBlock) -> np.ndarray:
        res = swept(block)
        q = k + T - 1
        if res is None:
            return np.zeros((q, q + 1))
        Fb = res[1]
        return Fb[:, 1:].T @ np.column_stack([Fb[:, 1:], Fb[:, 0]])

    q = k + T - 1
    xx = sum(over.map(cross), np.zeros((q, q + 1)))
    A = np.linalg.inv(xx[:, :q])
    beta = A @ xx[:, q]

    def by_cluster(block: UnitBlock) -> tuple[np.ndarray, ...] | None:
        """The block's clusters in the order its rows first show them, their rows, and their scores and X_g'X_g."""
        res = swept(block)
        if res is None:
            return None
        labels, Fb = res
        Xb = Fb[:, 1:]
        sc = Xb * (Fb[:, 0] - Xb @ beta)[:, None]
        codes, values = pd.factorize(labels, sort=False)  # the order the rows first show the clusters
        S = np.stack([np.bincount(codes, weights=sc[:, j], minlength=len(values)) for j in range(q)], axis=1)
        onehot = sparse.csr_matrix(
            (np.ones(len(codes)), (codes, np.arange(len(codes)))), shape=(len(values), len(codes))
        )
        outer = (Xb[:, :, None] * Xb[:, None, :]).reshape(len(Xb), q * q)  # each row's x x'
        counts = np.bincount(codes, minlength=len(values)).astype(np.float64)[:, None]
        return np.asarray(values), np.array([0.0]), counts, np.hstack([S, onehot @ outer])[:, None, :]

    # per cluster, combined over blocks in the order the clusters are first met (the in-memory codes)
    sums = _ClusterSums(q + q * q)
    for part in over.map(by_cluster):
        if part is not None:
            sums.add(*part)
    SH = sums.sums[0.0][: len(sums.codes)]
    Hs = SH[:, q:].reshape(-1, q, q)
    R = np.vstack([np.eye(k), np.zeros((T - 1, k))])
    return wild_from_sums(
        A,
        beta,
        SH[:, :q],
        lambda a: Hs @ a,
        n_obs=N,
        contrasts=R,
        n_boot=n_boot,
        alpha=alpha,
        seed=seed,
        n_params=K,
    )


def _rows(
    block: UnitBlock, roles: dict[str, str], times: np.ndarray, weights: str | None, covariates: list[str]
) -> tuple[Any, ...]:
    """A block's valid rows (of positive weight): checks, the weights' and covariates' faults, the rows' positions
    in the block, units (indices), periods, ``M = (y, D, X)``, weights (None without), and the rows of weight 0
    left out."""
    found, layout = check_block_rows(block, roles, times)
    cov_found = None
    if covariates:  # missing and infinite values by data row, as in memory (time-varying covariates are fine here)
        cov_found = _covariates_of(block, layout, covariates, len(times))[1]
        cov_found.varies = {}
    rows, unit, period = layout.rows, layout.unit, layout.period
    w = w_found = None
    zero = 0
    if weights is not None:
        w_found = _weight_findings(block, roles["unit"], weights)
        w_found.varies = type(w_found.varies)()  # regression weights may vary within a unit (as in memory)
        w = np.asarray(block.columns[weights], dtype=np.float64)[rows]
        keep = w > 0
        zero = int((w == 0).sum())
        rows, unit, period, w = rows[keep], unit[keep], period[keep], w[keep]
        unit = np.unique(unit, return_inverse=True)[1] if len(unit) else unit
    y = np.asarray(block.columns[roles["outcome"]], dtype=np.float64)[rows]
    g = np.asarray(block.columns[roles["cohort"]], dtype=np.float64)[rows]
    g = np.where(np.isnan(g) | (g == 0), np.inf, g)
    d = (times[period] >= g).astype(np.float64)
    X = [np.asarray(block.columns[c], dtype=np.float64)[rows] for c in covariates]
    nu = int(unit.max()) + 1 if len(unit) else 0
    return (found, w_found, cov_found), zero, rows, unit, period, np.column_stack([y, d, *X]), w, nu


def _unit_parts(
    unit: np.ndarray, period: np.ndarray, nu: int, M: np.ndarray, w: np.ndarray | None, T: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per unit: the weights of its periods (nu x T; 1 where observed without weights), their sum, and the
    (weighted) mean of each column of ``M``."""
    wt = np.ones(len(unit)) if w is None else w
    O = np.zeros((nu, T))
    O[unit, period] = wt
    n_i = O.sum(axis=1)
    means = np.stack([np.bincount(unit, weights=wt * M[:, c], minlength=nu) for c in range(M.shape[1])], axis=1)
    return O, n_i, means / n_i[:, None]


def did_ooc(
    source: Any,
    *,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    covariates: Any = None,
    cluster: str | None = None,
    weights: str | None = None,
    inference: str = "cluster",
    n_boot: int = 999,
    seed: Any = None,
    alpha: float = 0.05,
    batch_rows: int = BATCH_ROWS,
    threads: int | None = None,
    executor: Any = None,
) -> Result:
    """:func:`~evaluator.estimators.twfe.did` (two-way fixed effects) on Parquet files, a Dataset or a Dask DataFrame.

    The arguments are :func:`did`'s, plus ``batch_rows``, ``threads`` and ``executor`` as
    :func:`~evaluator.estimators.staggered_ooc.staggered_did_ooc` takes them. The rows must be sorted by unit,
    then period. The result equals the in-memory one to rounding (1e-10).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from evaluator.data.simulate import sick_leave_sib
    >>> from evaluator.estimators.twfe import did
    >>> sim = sick_leave_sib(n_municipalities=10, employees_per_municipality=20, n_periods=12, waves=(5, 8), seed=1)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "panel.parquet"
    >>> sim.data.sort_values(["employee", "month"]).to_parquet(path)
    >>> kw = dict(outcome="sick_days", unit="employee", time="month", cohort="first_treated")
    >>> ooc, mem = did_ooc(path, batch_rows=500, **kw), did(sim.data, **kw)
    >>> bool(np.isclose(ooc.estimate, mem.estimate, rtol=1e-10)), bool(np.isclose(ooc.se, mem.se, rtol=1e-10))
    (True, True)
    """
    choice("inference", inference, ("cluster", "hc1", "wild"))
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha} must be between 0 and 1")
    if inference == "wild" and int(n_boot) < 1:
        raise ValueError(f"n_boot={n_boot} must be a positive number of bootstrap draws (999 or more is usual)")
    covs = [covariates] if isinstance(covariates, str) else list(covariates or [])
    names = ["att", *covs]
    k = len(names)
    dask_client(executor)
    if executor is not None and getattr(source, "filters_rows", False):
        raise NotImplementedError(
            "a PanelSource that leaves out units or cohorts is read in this process: pass executor=None"
        )
    threads = min(4, os.cpu_count() or 1) if threads is None else int(threads)
    roles = panel_roles(
        outcome=outcome, unit=unit, time=time, cohort=cohort, cluster=cluster, weights=weights, covariates=covs
    )
    dataset, label, times = open_panel(source, roles, executor=executor)
    T = len(times)
    over = BlockPasses(dataset, roles, batch_rows=batch_rows, threads=threads, executor=executor, label=label)

    # -- pass 1: the checks, and the sums of the period effects' system
    def system(block: UnitBlock) -> tuple[Any, ...]:
        faults, zero, rows, unit_i, period, M, w, nu = _rows(block, roles, times, weights, covs)
        if nu == 0:
            return faults, zero, None
        O, n_i, mean_i = _unit_parts(unit_i, period, nu, M, w, T)
        wt = np.ones(len(M)) if w is None else w
        by_t = np.stack([np.bincount(period, weights=wt * M[:, c], minlength=T) for c in range(k + 1)], axis=1)
        starts = np.flatnonzero(np.concatenate([[True], unit_i[1:] != unit_i[:-1]]))
        g_units = np.asarray(block.columns[cohort], dtype=np.float64)[rows[starts]]
        g_units = np.where(np.isnan(g_units) | (g_units == 0), np.inf, g_units)
        sums = {
            "S": (O / n_i[:, None]).T @ O,
            "rhs": by_t - O.T @ mean_i,
            "rows": float(len(M)),
            "d": float(M[:, 1].sum()),
            "units": float(nu),
            "treated": float(np.isfinite(g_units).sum()),
        }
        # the regressors' weighted spread about their means before the fixed effects (Chan's update: stable)
        spread = _weighted_moments(M[:, 1:], wt)
        return faults, zero, (sums, np.unique(g_units[np.isfinite(g_units)]), spread)

    checks = PanelChecks(roles)
    missing_units: list[int] = []
    total: dict[str, Any] = {}
    cohorts_seen: set[float] = set()
    w_all = None if weights is None else _WeightFindings()
    cov_all = _CovFindings(covs)
    zero_rows = 0
    spread: _Moments | None = None
    for (found, w_found, cov_found), zero, part in over.map(system, missing_units=missing_units):
        checks.add(found)
        zero_rows += zero
        if w_all is not None and w_found is not None:
            w_all.merge(w_found)
        if cov_found is not None:
            cov_all.merge(cov_found)
        if part is None:
            continue
        sums, cohorts, block_spread = part
        cohorts_seen.update(cohorts.tolist())
        spread = block_spread if spread is None else spread.combine(block_spread)
        for key, v in sums.items():
            total[key] = v if key not in total else total[key] + v
    checks.add_missing_units(missing_units)
    problems = checks.problems() + cov_all.problems(checks.rows)
    if problems:
        raise DataError(problems, source=label)
    if w_all is not None and weights is not None:
        w_all.raise_problems(weights, unit, rows=checks.rows, units=checks.units, label=label)
    if zero_rows:
        warnings.warn(f"{zero_rows} rows with weight 0 in '{weights}' were dropped", DroppedUnitsWarning, stacklevel=3)
    if not total:
        raise DataError([Problem("no unit has a complete, valid set of rows")], source=label)
    N, n_units = int(total["rows"]), int(total["units"])
    check_treated(total["d"] > 0, total["d"] == N, time=time, cohort=cohort)
    # the period effects, as _absorb_two_way solves them (the same function: rank test and least-norm solution)
    gamma, rank_t = solve_b_effects(total["S"], total["rhs"])
    fe_rank = n_units + rank_t

    def residuals(block: UnitBlock) -> tuple[Any, ...] | None:
        _, _, rows, unit_i, period, M, w, nu = _rows(block, roles, times, weights, covs)
        if nu == 0:
            return None
        O, n_i, mean_i = _unit_parts(unit_i, period, nu, M, w, T)
        alpha_i = mean_i - (O @ gamma) / n_i[:, None]
        return rows, M - alpha_i[unit_i] - gamma[period], np.ones(len(M)) if w is None else w

    # -- pass 2: the coefficients, from the regressors' cross-products after the fixed effects
    def moments(block: UnitBlock) -> np.ndarray:
        res = residuals(block)
        if res is None:
            return np.zeros((k, k + 1))
        _, Mt, wt = res
        return (Mt[:, 1:] * wt[:, None]).T @ np.column_stack([Mt[:, 1:], Mt[:, 0]])

    xtx_y = sum(over.map(moments), np.zeros((k, k + 1)))
    xtx, xty = xtx_y[:, :k], xtx_y[:, k]
    assert spread is not None  # some unit has rows (checked above)
    check_regressors(xtx, np.diag(spread.comoment), names, ["att"])
    bread = np.linalg.inv(xtx)
    beta = bread @ xty

    # -- pass 3: the scores, by cluster (or unit), with the coefficient known
    def scores(block: UnitBlock) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        res = residuals(block)
        if res is None:
            return (np.empty(0), np.array([0.0]), np.empty((0, 1)), np.empty((0, 1, k))), np.zeros((k, k))
        rows, Mt, wt = res
        Xt = Mt[:, 1:]
        sc = Xt * (wt * (Mt[:, 0] - Xt @ beta))[:, None]  # sqrt(w) X~ times sqrt(w) e, as in memory
        labels = block.columns[roles["cluster"] if cluster is not None else unit][rows]
        values, inv = np.unique(labels, return_inverse=True)
        by = np.stack([np.bincount(inv, weights=sc[:, j], minlength=len(values)) for j in range(k)], axis=1)
        counts = np.bincount(inv, minlength=len(values)).astype(np.float64)[:, None]
        return (values, np.array([0.0]), counts, by[:, None, :]), sc.T @ sc

    per_cluster = _ClusterSums(k)  # the clusters' scores, combined over blocks
    hc_meat = np.zeros((k, k))
    for by_cluster, sq in over.map(scores):
        hc_meat += sq
        per_cluster.add(*by_cluster)
    G = len(per_cluster.codes)
    cname = cluster if cluster is not None else unit
    if inference == "hc1":
        K = k + fe_rank
        vcov = hc1_from_meat(hc_meat, bread, n_obs=N, n_params=K)
        df = None
    else:
        if G < 2:
            raise single_cluster_error(cname)
        K = k + (fe_rank - n_units + 1)  # units nested in clusters (the passes check it): their effects not in K
        vcov = cr1_from_scores(per_cluster.sums[0.0][:G], bread, n_obs=N, n_params=K)
        df = G - 1
    label_inf, notes = vcov_words(inference, K=K, G=G, cluster_name=cname, stacklevel=4)
    boot = None
    if inference == "wild":
        boot = _wild(
            over, roles, times, weights, covs, cname, G=G, K=K, N=N, k=k, n_boot=n_boot, seed=seed, alpha=alpha
        )
        label_inf = wild_label(boot, cname, G, K)
    n_cohorts = len(cohorts_seen)
    notes += staggered_note(n_cohorts)
    table = tidy_table(names, beta, np.sqrt(np.diag(vcov)), alpha=alpha, df=df)
    info = {
        "n_units": n_units,
        "n_treated": int(total["treated"]),
        "n_control": n_units - int(total["treated"]),
        "n_clusters": G,
        "n_periods": T,
        "n_cohorts": n_cohorts,
        "cluster": cname,
        "n_params": K,
        "fe_rank": fe_rank,
        "df": df,
        "vcov": pd.DataFrame(vcov, index=names, columns=names),
        "out_of_core": {"source": label, "rows": N, "passes": 3 if boot is None else 5, **over.describe()},
    }
    if boot is not None:
        table["p_value"] = boot.p_value
        table["ci_low"] = boot.ci_low
        table["ci_high"] = boot.ci_high
        info.update(n_boot=boot.n_boot, boot_weights=boot.weights, enumerated=boot.enumerated)
    two_by_two = T == 2 and n_cohorts == 1 and not covs
    name = "Difference-in-differences (2x2)" if two_by_two else "Difference-in-differences (two-way fixed effects)"
    return Result(
        name,
        table,
        nobs=N,
        headline="att",
        alpha=alpha,
        inference=label_inf,
        outcome=outcome,
        notes=tuple(notes),
        info=info,
    )
