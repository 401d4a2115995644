"""Difference-in-differences by two-way fixed effects: :func:`did` and :func:`event_study`.

Both fit

.. math:: y_{it} = \\alpha_i + \\lambda_t + x_{it}'\\beta + \\varepsilon_{it}

with unit effects :math:`\\alpha_i` and period effects :math:`\\lambda_t` removed
exactly (Frisch-Waugh-Lovell), so a million rows take well under a second. The
unit effects are swept out by (weighted) unit means and the period effects by
solving a small :math:`T \\times T` system, which is exact for unbalanced and
weighted panels, not an iteration. Inference conventions are in
:mod:`evaluator.inference` and ``docs/inference.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse, stats

from evaluator.data.shards import is_dask_frame, is_dataset_source
from evaluator.data.validate import duplicate_rows, where_units
from evaluator.errors import (
    DataError,
    DesignError,
    DroppedUnitsWarning,
    FewClustersWarning,
    Problem,
    format_examples,
)
from evaluator.estimators.design import as_list, check_frame, check_weights, choice, one_column
from evaluator.inference.bootstrap import simultaneous_band, wild_cluster_bootstrap, wild_sup_t_critical_value
from evaluator.inference.sandwich import cr1_vcov, group_sums, hc1_vcov
from evaluator.policy import FEW_CLUSTERS
from evaluator.results.base import Result, tidy_table

__all__ = ["did", "event_study"]

Inference = Literal["cluster", "hc1", "wild"]


# -- data preparation -------------------------------------------------------------------------------------------------
@dataclass
class _Panel:
    y: np.ndarray
    cov: np.ndarray  # N x p
    cov_names: list[str]
    u: np.ndarray  # unit codes
    t: np.ndarray  # time codes (sorted)
    n_units: int
    n_times: int
    time: np.ndarray  # numeric time per row
    cohort: np.ndarray  # numeric first treated period per row, inf = never
    w: np.ndarray | None
    g: np.ndarray  # cluster codes
    n_clusters: int
    cluster_name: str
    n_treated_units: int
    n_never_units: int
    n_cohorts: int
    units_nested: bool


def _prepare(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    covariates: Sequence[str] | None,
    cluster: str | None,
    weights: str | None,
) -> _Panel:
    covariates = as_list(covariates)
    roles = {"outcome": outcome, "unit": unit, "time": time, "cohort": cohort}
    if cluster is not None:
        roles["cluster"] = cluster
    if weights is not None:
        roles["weights"] = weights
    check_frame(
        data,
        roles=roles,
        covariates=covariates,
        complete=[outcome, unit, time, *covariates, *([cluster] if cluster is not None else [])],
        numeric=[outcome, time, cohort, *covariates],
        finite=[outcome, time, *covariates],
    )

    y = data[outcome].to_numpy(dtype=float)
    tvals = data[time].to_numpy(dtype=float)
    coh = data[cohort].to_numpy(dtype=float)
    never = np.isnan(coh) | (coh == 0) | np.isinf(coh)
    coh = np.where(never, np.inf, coh)
    cov = data[covariates].to_numpy(dtype=float) if covariates else np.empty((len(data), 0))

    # the weights check shared with staggered_did (design.check_weights); regression weights may vary by row
    w = None if weights is None else check_weights(data, weights)

    ucodes, ulabels = pd.factorize(data[unit], sort=False)
    keep = None if w is None else w > 0
    if keep is not None and not keep.all():
        warnings.warn(
            f"{int((~keep).sum())} rows with weight 0 in '{weights}' were dropped",
            DroppedUnitsWarning,
            stacklevel=3,
        )
        y, tvals, coh, cov, w = y[keep], tvals[keep], coh[keep], cov[keep], w[keep]
        ucodes = pd.factorize(ucodes[keep])[0]
    tlev, tcodes = np.unique(tvals, return_inverse=True)
    nu, nt = int(ucodes.max()) + 1, len(tlev)
    pair = ucodes.astype(np.int64) * nt + tcodes
    counts = np.bincount(pair, minlength=nu * nt) if nu * nt < 50_000_000 else np.unique(pair, return_counts=True)[1]
    if counts.max() > 1:
        raise DataError(duplicate_rows(data, [unit, time], among=keep))
    first = np.empty(nu)
    first[ucodes] = coh
    varying = np.flatnonzero(first[ucodes] != coh)
    if varying.size:
        units = pd.unique(np.asarray(ulabels)[ucodes[varying]])
        raise DataError(
            [
                Problem(
                    "the first treated period changes within a unit",
                    column=cohort,
                    where=where_units(units),
                    hint="give each unit one first treated period (0 or missing for never treated)",
                )
            ]
        )
    if cluster is None:
        gcodes, G, cname = ucodes, nu, unit
    else:
        gcol = data[cluster].to_numpy() if keep is None else data[cluster].to_numpy()[keep]
        gcodes, glabels = pd.factorize(gcol, sort=False)
        G, cname = len(glabels), cluster
    if G < 2:
        raise single_cluster_error(cname)
    gfirst = np.empty(nu, dtype=np.int64)
    gfirst[ucodes] = gcodes
    nested = bool((gfirst[ucodes] == gcodes).all())
    ever = np.isfinite(first)
    return _Panel(
        y=y,
        cov=cov,
        cov_names=covariates,
        u=ucodes,
        t=tcodes,
        n_units=nu,
        n_times=nt,
        time=tvals,
        cohort=coh,
        w=w,
        g=gcodes,
        n_clusters=G,
        cluster_name=cname,
        n_treated_units=int(ever.sum()),
        n_never_units=int((~ever).sum()),
        n_cohorts=len(np.unique(first[ever])),
        units_nested=nested,
    )


# -- fixed effects -----------------------------------------------------------------------------------------------------
def _absorb_two_way(
    M: np.ndarray, a: np.ndarray, b: np.ndarray, na: int, nb: int, w: np.ndarray | None
) -> tuple[np.ndarray, int]:
    """Residuals of the columns of M on a-effects and b-effects (weighted), and the FE rank.

    The a-effects are swept out by weighted means; the b-effects solve
    ``(diag(W_b) - C' diag(1/W_a) C) gamma = T'W M - C' mean_a(M)`` with ``C`` the
    a-by-b table of weights (formed as a Laplacian: :func:`solve_b_effects`). Exact for any pattern of missing cells.
    """
    if nb > na:
        a, b, na, nb = b, a, nb, na
    wt = np.ones(len(a)) if w is None else w
    Wa = np.bincount(a, weights=wt, minlength=na)
    C = sparse.csr_matrix((wt, (a, b)), shape=(na, nb))
    S = (C.T @ sparse.diags(1.0 / Wa) @ C).toarray()
    WM = M * wt[:, None]
    abar = group_sums(WM, a, na) / Wa[:, None]
    rhs = group_sums(WM, b, nb) - C.T @ abar
    gamma, rank_b = solve_b_effects(S, rhs)
    alpha = abar - (C @ gamma) / Wa[:, None]
    out = M - alpha[a] - gamma[b]
    return out, na + rank_b


def solve_b_effects(S: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, int]:
    """The b-effects of :func:`_absorb_two_way` (its ``gamma``, least norm) and their rank, from ``S = C' diag(1/W_a)
    C`` and the right-hand side; out of core (:mod:`evaluator.estimators.twfe_ooc`) the same sums over units.

    The system's matrix is formed as the Laplacian ``diag(S 1) - S`` (``S 1 = W_b`` in exact arithmetic): so each
    connected component's indicator is a null vector to rounding, and the rank test below does not depend on how
    the sums were rounded (with ``diag(W_b)`` the null eigenvalue of a panel of 8.5 million rows rose above the
    tolerance, counting one parameter too many in K).

    Examples
    --------
    >>> S = np.array([[1.0, 1.0], [1.0, 1.0]])  # two units, each in both periods
    >>> solve_b_effects(S, np.array([[0.5], [-0.5]]))[1]
    1
    """
    nb = S.shape[0]
    Amat = np.diag(S.sum(axis=1)) - S
    evals, evecs = np.linalg.eigh(Amat)
    tol = evals.max(initial=0.0) * nb * np.finfo(float).eps * 10
    pos = evals > tol
    gamma = evecs[:, pos] @ ((evecs[:, pos].T @ rhs) / evals[pos][:, None])
    return gamma, int(pos.sum())


def _unit_demean(M: np.ndarray, u: np.ndarray, nu: int, w: np.ndarray | None) -> np.ndarray:
    wt = np.ones(len(u)) if w is None else w
    Wu = np.bincount(u, weights=wt, minlength=nu)
    means = group_sums(M * wt[:, None], u, nu) / Wu[:, None]
    return M - means[u]


def _check_regressors(Xt: np.ndarray, X: np.ndarray, names: list[str], w: np.ndarray | None, treat: list[str]) -> None:
    """DesignError naming regressors absorbed by the fixed effects or collinear with others."""
    wt = np.ones(len(X)) if w is None else w
    scales = np.array([np.sum(wt * (X[:, j] - np.average(X[:, j], weights=wt)) ** 2) for j in range(len(names))])
    check_regressors((Xt * wt[:, None]).T @ Xt, scales, names, treat)


def check_regressors(xtx: np.ndarray, scales: np.ndarray, names: list[str], treat: list[str]) -> None:
    """The rule of :func:`_check_regressors` from sums (out of core, in passes): ``xtx`` the weighted cross-products
    of the regressors after the fixed effects, ``scales`` each regressor's weighted sum of squares about its mean
    before them. A regressor keeping at most 1e-10 of its variation is absorbed; one whose normalised Gram matrix
    with the earlier ones has an eigenvalue below 1e-10 is collinear."""
    diag = np.diag(xtx)
    absorbed = [name for j, name in enumerate(names) if scales[j] == 0 or diag[j] <= 1e-10 * scales[j]]
    if absorbed:
        raise absorbed_error([n for n in absorbed if n in treat], [n for n in absorbed if n not in treat])
    norm = np.sqrt(diag)
    gram = xtx / np.outer(norm, norm)
    for j in range(1, len(names)):
        sub = gram[: j + 1, : j + 1]
        if np.linalg.eigvalsh(sub).min() < 1e-10:
            raise DesignError(
                f"regressor '{names[j]}' is collinear with {names[:j]} (given the fixed effects); "
                "drop it, or for an event study bin more event times (leads=/lags=) or add never-treated units"
            )


@dataclass
class _Fit:
    beta: np.ndarray
    vcov: np.ndarray
    names: list[str]
    df: float | None
    n_params: int
    nobs: int
    fe_rank: int
    inference: str
    notes: list[str]
    boot: Any = None
    sup_t: float | None = None
    boot_args: dict[str, Any] | None = None


def _fit(
    panel: _Panel,
    X: np.ndarray,
    names: list[str],
    treat_names: list[str],
    *,
    inference: Inference,
    n_boot: int,
    seed: int | np.random.Generator | None,
    alpha: float,
    contrasts: np.ndarray | None = None,
    band_coefs: list[int] | None = None,
) -> _Fit:
    choice("inference", inference, ("cluster", "hc1", "wild"))
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha} must be between 0 and 1")
    if inference == "wild" and int(n_boot) < 1:
        raise ValueError(f"n_boot={n_boot} must be a positive number of bootstrap draws (999 or more is usual)")
    N = len(panel.y)
    M = np.column_stack([panel.y, X])
    Mt, fe_rank = _absorb_two_way(M, panel.u, panel.t, panel.n_units, panel.n_times, panel.w)
    yt, Xt = Mt[:, 0], Mt[:, 1:]
    _check_regressors(Xt, X, names, panel.w, treat_names)
    sw = None if panel.w is None else np.sqrt(panel.w)
    if sw is not None:
        yt, Xt = yt * sw, Xt * sw[:, None]
    k = Xt.shape[1]
    A = np.linalg.inv(Xt.T @ Xt)
    beta = A @ (Xt.T @ yt)
    e = yt - Xt @ beta
    G = panel.n_clusters
    notes: list[str] = []
    if inference == "hc1":
        K = k + fe_rank
        vcov = hc1_vcov(Xt, e, n_params=K, bread=A)
        df = None
    else:
        # Fixed effects nested within clusters do not count in K (Stata xtreg/reghdfe, fixest 'nested').
        K = k + (fe_rank - panel.n_units + 1 if panel.units_nested else fe_rank)
        vcov = cr1_vcov(Xt, e, panel.g, n_params=K, bread=A, n_clusters=G)
        df = G - 1
    label, notes = vcov_words(inference, K=K, G=G, cluster_name=panel.cluster_name, stacklevel=4)
    fit = _Fit(beta, vcov, names, df, K, N, fe_rank, label, notes)
    if inference == "wild":
        if not panel.units_nested:
            raise DesignError(
                f"inference='wild' needs every unit inside one cluster, but units move between clusters of "
                f"'{panel.cluster_name}'; cluster by the unit or a grouping of units, or use inference='cluster'"
            )
        # Unit effects are nested in clusters: sweep them out; period effects become explicit dummies.
        Td = np.zeros((N, panel.n_times - 1))
        rows = panel.t > 0
        Td[np.flatnonzero(rows), panel.t[rows] - 1] = 1.0
        Mb = _unit_demean(np.column_stack([panel.y, X, Td]), panel.u, panel.n_units, panel.w)
        if sw is not None:
            Mb *= sw[:, None]
        Xb, yb = Mb[:, 1:], Mb[:, 0]
        R0 = np.eye(k) if contrasts is None else contrasts
        R = np.vstack([R0, np.zeros((Td.shape[1], R0.shape[1]))])
        boot = wild_cluster_bootstrap(Xb, yb, panel.g, R, n_boot=n_boot, alpha=alpha, seed=seed, n_params=K)
        fit.boot = boot
        fit.inference = wild_label(boot, panel.cluster_name, G, K)
        if band_coefs:
            fit.sup_t = wild_sup_t_critical_value(
                Xb, yb, panel.g, band_coefs, n_boot=n_boot, alpha=alpha, seed=None if seed is None else _child(seed)
            )
    return fit


def _child(seed: int | np.random.Generator) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return np.random.default_rng(seed.integers(2**63))
    return np.random.default_rng([int(seed), 1])


def _info(panel: _Panel, fit: _Fit) -> dict[str, Any]:
    return {
        "n_units": panel.n_units,
        "n_treated": panel.n_treated_units,
        "n_control": panel.n_never_units,
        "n_clusters": panel.n_clusters,
        "n_periods": panel.n_times,
        "n_cohorts": panel.n_cohorts,
        "cluster": panel.cluster_name,
        "n_params": fit.n_params,
        "fe_rank": fit.fe_rank,
        "df": fit.df,
        "vcov": pd.DataFrame(fit.vcov, index=fit.names, columns=fit.names),
    }


def _staggered_note(panel: _Panel) -> list[str]:
    return staggered_note(panel.n_cohorts)


def staggered_note(n_cohorts: int) -> list[str]:
    """The note of a two-way fixed-effects estimate with several adoption cohorts (none with one)."""
    if n_cohorts > 1:
        return [
            f"{n_cohorts} adoption cohorts: two-way fixed effects weights cohort-period effects implicitly "
            "(some weights can be negative) and is biased when effects differ by cohort or grow over time; "
            "compare with a heterogeneity-robust estimator (e.g. Callaway-Sant'Anna)"
        ]
    return []


def single_cluster_error(cluster_name: str) -> DesignError:
    """The DesignError of rows that all lie in one cluster."""
    return DesignError(
        f"all rows are in a single cluster of '{cluster_name}'; cluster-robust inference needs at least 2 clusters "
        "(cluster by a finer variable, or use inference='hc1' if errors are independent)"
    )


def vcov_words(inference: str, *, K: int, G: int, cluster_name: str, stacklevel: int) -> tuple[str, list[str]]:
    """The inference words and notes of a CR1 or HC1 fit (in memory and out of core), warning when there are few
    clusters for analytic cluster-robust intervals (``stacklevel`` of that warning, counted from here)."""
    if inference == "hc1":
        label = f"HC1 heteroskedasticity-robust (factor N/(N-K), K={K} incl. fixed effects); normal critical values"
        note = "HC1 standard errors ignore serial correlation within units; cluster-robust errors are the default "
        return label, [note + "for panels"]
    label = (
        f"CR1 cluster-robust by '{cluster_name}' (G={G}; factor G/(G-1)*(N-1)/(N-K), K={K}); t({G - 1}) critical values"
    )
    notes = []
    if inference == "cluster" and G < FEW_CLUSTERS:
        msg = (
            f"only {G} clusters of '{cluster_name}': with {G} clusters analytic cluster-robust intervals under-cover; "
            "use inference='wild'"
        )
        warnings.warn(msg, FewClustersWarning, stacklevel=stacklevel)
        notes.append(msg)
    return label, notes


def wild_label(boot: Any, cluster_name: str, G: int, K: int) -> str:
    """The inference words of a two-way fixed-effects fit with the restricted wild cluster bootstrap."""
    draws = f"all {boot.n_boot} draws enumerated" if boot.enumerated else f"B={boot.n_boot}"
    return (
        f"wild cluster bootstrap (restricted, {boot.weights} weights, {draws}) by '{cluster_name}' (G={G}); "
        f"p-values and intervals by test inversion; standard errors CR1 (K={K})"
    )


def check_treated(any_treated: bool, all_treated: bool, *, time: str, cohort: str) -> None:
    """The DesignError of a panel without treated rows, or without untreated ones."""
    if not any_treated:
        raise DesignError(
            f"no treated observations: no row has '{time}' >= '{cohort}' (first treated period); check the "
            "cohort coding (0 or missing = never treated) and that the panel covers post-treatment periods"
        )
    if all_treated:
        raise DesignError("no untreated observations: every row is treated, so there is nothing to compare")


def absorbed_error(treat: list[str], covariates: list[str]) -> DesignError:
    """The DesignError naming treatment indicators and covariates the unit and period fixed effects absorb."""
    msgs = []
    if treat:
        msgs.append(
            f"the treatment indicator(s) {treat} are absorbed by the unit and period fixed effects: there is no "
            "variation in treatment timing to compare (e.g. every unit starts treatment in the same period and "
            "none is never treated); add never-treated units or units treated at other times"
        )
    if covariates:
        msgs.append(
            f"covariate(s) {covariates} are constant or do not vary within units beyond the common period pattern, "
            "so the unit/period fixed effects absorb them; drop them (time-invariant traits are already controlled)"
        )
    return DesignError("; ".join(msgs))


# -- did ---------------------------------------------------------------------------------------------------------------
def did(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    covariates: Sequence[str] | None = None,
    cluster: str | None = None,
    weights: str | None = None,
    inference: Inference = "cluster",
    n_boot: int = 999,
    seed: int | np.random.Generator | None = None,
    alpha: float = 0.05,
    executor: Any = None,
) -> Result:
    r"""Difference-in-differences by two-way fixed effects (the canonical 2x2 with two periods).

    Parameters
    ----------
    data : pandas.DataFrame, path, pyarrow.dataset.Dataset or dask.dataframe.DataFrame
        A panel, one row per unit and period. A path to a Parquet file or a folder of them, a
        ``pyarrow.dataset.Dataset``, a Dask DataFrame or a validated ``PanelSource`` is read out of
        core, in passes over units sorted by unit then period (:mod:`evaluator.estimators.twfe_ooc`:
        covariates, weights, CR1, HC1 or the wild bootstrap, clusters containing whole units),
        with the numbers of the same rows in memory.
    outcome, unit, time : str
        Columns of the outcome, the unit identifier and the (numeric) period.
    cohort : str
        Column with the first treated period of the unit; ``0`` or missing for
        never-treated units. Constant within a unit.
    covariates : list of str, optional
        Time-varying covariates entering linearly. Time-invariant ones are absorbed
        by the unit effects and raise :class:`~evaluator.errors.DesignError`.
    cluster : str, optional
        Cluster column; defaults to ``unit``.
    weights : str, optional
        Non-negative regression (sampling) weights, one per row (rows with weight 0 are
        dropped). Checked by :func:`evaluator.estimators.design.check_weights`, as in
        ``staggered_did``: missing, infinite or negative weights raise one
        :class:`~evaluator.errors.WeightsError` naming the rows.
    inference : {"cluster", "hc1", "wild"}
        CR1 cluster-robust (default), HC1, or the restricted wild cluster
        bootstrap (Rademacher weights; Webb weights with fewer than 12 clusters).
    n_boot : int
        Bootstrap draws for ``inference="wild"``.
    seed : int or numpy.random.Generator, optional
        Seed of the bootstrap.
    alpha : float
        1 - confidence level.
    executor : distributed.Client, optional
        Out of core: run the passes on this Dask cluster (default: threads of this process).

    Returns
    -------
    Result
        Headline term ``att`` (then one row per covariate). ``info`` holds
        ``n_units``, ``n_treated`` (ever-treated units), ``n_control``
        (never-treated units), ``n_clusters``, ``n_periods``, ``n_cohorts``,
        ``n_params`` (the K of the small-sample factor), ``fe_rank``, ``df``
        (of the t critical values), ``vcov`` (covariance of the coefficients).

    Notes
    -----
    With treatment indicator :math:`D_{it} = 1[G_i \ne \infty,\ t \ge G_i]` (``G_i``
    the first treated period) the estimate is :math:`\hat\tau` in

    .. math:: y_{it} = \alpha_i + \lambda_t + \tau D_{it} + x_{it}'\gamma + \varepsilon_{it}.

    With two periods and one treated group this is exactly the 2x2 estimate
    :math:`(\bar y_{T,1} - \bar y_{T,0}) - (\bar y_{C,1} - \bar y_{C,0})`.

    Identifying assumption: parallel trends, :math:`E[y_{it}(0) - y_{is}(0) \mid G_i]`
    does not depend on :math:`G_i`, and no anticipation. With staggered
    adoption the TWFE estimate is a weighted average of cohort-period effects
    that is biased if effects vary across cohorts or over time (Goodman-Bacon
    2021; de Chaisemartin and D'Haultfoeuille 2020); a note says so.

    Standard errors: CR1 with factor :math:`\frac{G}{G-1}\frac{N-1}{N-K}`, where
    :math:`K` counts the regressors and the fixed effects *not* nested within
    clusters (units nested in clusters: :math:`K = k + T`, as Stata's
    ``xtreg, fe vce(cluster)`` and ``reghdfe``); intervals use :math:`t(G-1)`.
    HC1 uses :math:`N/(N-K)` with all fixed effects in :math:`K` and normal
    critical values. See ``docs/inference.md``.

    Examples
    --------
    >>> toy = pd.DataFrame({
    ...     "id": [1, 1, 2, 2, 3, 3, 4, 4], "t": [0, 1] * 4,
    ...     "y": [1.0, 3.0, 2.0, 4.5, 1.0, 1.5, 2.0, 2.0],
    ...     "first": [1, 1, 1, 1, 0, 0, 0, 0]})
    >>> r = did(toy, outcome="y", unit="id", time="t", cohort="first", inference="hc1")
    >>> round(r.estimate, 3)  # (2.0 + 2.5) / 2 - (0.5 + 0.0) / 2
    2.0
    """
    one_column(outcome=outcome, unit=unit, time=time, cohort=cohort, cluster=cluster, weights=weights)
    cols = dict(
        outcome=outcome, unit=unit, time=time, cohort=cohort, covariates=covariates, cluster=cluster, weights=weights
    )
    if is_dataset_source(data) or is_dask_frame(data):
        from evaluator.estimators.twfe_ooc import did_ooc  # here: it imports this module's rules

        opts = dict(inference=inference, n_boot=n_boot, seed=seed, alpha=alpha, executor=executor)
        return did_ooc(data, **cols, **opts)
    panel = _prepare(data, **cols)
    D = (panel.time >= panel.cohort).astype(float)
    check_treated(bool(D.any()), bool(D.all()), time=time, cohort=cohort)
    X = np.column_stack([D, panel.cov])
    names = ["att", *panel.cov_names]
    fit = _fit(panel, X, names, ["att"], inference=inference, n_boot=n_boot, seed=seed, alpha=alpha)
    se = np.sqrt(np.diag(fit.vcov))
    table = tidy_table(names, fit.beta, se, alpha=alpha, df=fit.df)
    notes = list(fit.notes) + _staggered_note(panel)
    info = _info(panel, fit)
    if fit.boot is not None:
        table["p_value"] = fit.boot.p_value
        table["ci_low"] = fit.boot.ci_low
        table["ci_high"] = fit.boot.ci_high
        info.update(n_boot=fit.boot.n_boot, boot_weights=fit.boot.weights, enumerated=fit.boot.enumerated)
    two_by_two = panel.n_times == 2 and panel.n_cohorts == 1 and not panel.cov_names
    name = "Difference-in-differences (2x2)" if two_by_two else "Difference-in-differences (two-way fixed effects)"
    return Result(
        name,
        table,
        nobs=fit.nobs,
        headline="att",
        alpha=alpha,
        inference=fit.inference,
        outcome=outcome,
        notes=tuple(notes),
        info=info,
    )


# -- event study -----------------------------------------------------------------------------------------------------
def _singular(V: np.ndarray) -> bool:
    """True when a covariance matrix is numerically singular (smallest eigenvalue below 1e-12 of the largest)."""
    eig = np.linalg.eigvalsh((V + V.T) / 2)
    return not (eig.size and eig[-1] > 0 and eig[0] > eig[-1] * 1e-12)


def event_study(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    leads: int | None = None,
    lags: int | None = None,
    reference: int = -1,
    covariates: Sequence[str] | None = None,
    cluster: str | None = None,
    weights: str | None = None,
    inference: Inference = "cluster",
    n_boot: int = 999,
    seed: int | np.random.Generator | None = None,
    alpha: float = 0.05,
) -> Result:
    r"""Event study by two-way fixed effects with event-time dummies.

    Parameters
    ----------
    data, outcome, unit, time, cohort, covariates, cluster, weights, inference, n_boot, seed, alpha
        As in :func:`did`.
    leads : int, optional
        Number of pre-treatment event times estimated; event times before
        ``-leads`` are binned into ``-leads``. Defaults to all observed.
    lags : int, optional
        Last post-treatment event time; later ones are binned into ``lags``.
        Defaults to all observed.
    reference : int
        Omitted event time (normalised to 0), by default -1.

    Returns
    -------
    Result
        Rows ``e=-3``, ..., ``e=0``, ... with an ``event_time`` column (the
        reference row has estimate 0 and missing standard error), then
        ``post_avg`` (the headline), then covariates. ``info["pretest"]`` holds the
        joint pre-trend test; ``info["reference"]`` the omitted event time; with
        ``inference="wild"`` the table also has ``band_low``/``band_high``, a sup-t
        uniform band, and ``info["sup_t_critical_value"]``. The band is
        :math:`\hat\beta_e \pm c\,\mathrm{se}_e` (CR1 se, :math:`c` from the unrestricted wild
        bootstrap), extended where needed to contain the row's pointwise interval (restricted wild
        bootstrap, test inversion): an event time carried by one treated cluster has an
        understated CR1 se (that cluster's residuals sum to zero there) but a wide restricted
        interval. Widened rows are named in a :class:`~evaluator.errors.FewClustersWarning`, a note
        and ``info["bands_widened"]``; see ``docs/inference.md``.

    Notes
    -----
    With event time :math:`e = t - G_i` binned to :math:`[-L, M]` (``leads``, ``lags``),

    .. math::

        y_{it} = \alpha_i + \lambda_t + \sum_{e \ne r} \beta_e 1[t - G_i = e]
                 + x_{it}'\gamma + \varepsilon_{it},

    never-treated units having every dummy 0. The headline
    :math:`\bar\beta_{post} = \frac{1}{M+1}\sum_{e=0}^{M}\beta_e` (``post_avg``) is
    the unweighted mean of the post-treatment coefficients, with standard error
    :math:`\sqrt{\ell'\hat V\ell}` from the same covariance (:math:`\ell` the
    averaging vector). The pre-trend test is the Wald test that all
    pre-treatment :math:`\beta_e` (excluding :math:`r`) are zero:
    :math:`F = \hat\beta_{pre}'\hat V_{pre}^{-1}\hat\beta_{pre}/q` against
    :math:`F(q, G-1)` with cluster-robust covariance (also with
    ``inference="wild"``), and :math:`\chi^2_q` (statistic :math:`qF`) with HC1.

    Identifying assumption: parallel trends and no anticipation relative to the
    reference period. With staggered adoption and heterogeneous effects the
    coefficients mix effects of other event times (Sun and Abraham 2021); a
    heterogeneity-robust estimator is then preferable.

    Examples
    --------
    >>> from evaluator.data.simulate import sick_leave_sib
    >>> sim = sick_leave_sib(n_municipalities=30, employees_per_municipality=10, n_periods=24, waves=(13,),
    ...                      effect="constant", seed=3)
    >>> r = event_study(sim.data, outcome="sick_days", unit="employee", time="month", cohort="first_treated",
    ...                 cluster="municipality", leads=4, lags=4)
    >>> r.table["term"].head(3).tolist()
    ['e=-4', 'e=-3', 'e=-2']
    >>> abs(r.estimate - sim.truth["simple"]) < 4 * r.se
    True
    """
    one_column(outcome=outcome, unit=unit, time=time, cohort=cohort, cluster=cluster, weights=weights)
    panel = _prepare(
        data,
        outcome=outcome,
        unit=unit,
        time=time,
        cohort=cohort,
        covariates=covariates,
        cluster=cluster,
        weights=weights,
    )
    treated = np.isfinite(panel.cohort)
    if not treated.any():
        raise DesignError(f"no unit is ever treated: '{cohort}' is 0 or missing everywhere")
    e = np.where(treated, panel.time - np.where(treated, panel.cohort, 0.0), np.nan)
    if not np.allclose(e[treated], np.round(e[treated])):
        raise DataError(
            [
                Problem(
                    "event times t - cohort are not whole numbers",
                    column=f"{time}, {cohort}",
                    hint="code periods as consecutive integers and cohorts in the same units",
                )
            ]
        )
    et = np.round(e[treated]).astype(int)
    lo_obs, hi_obs = int(et.min()), int(et.max())
    L = -lo_obs if leads is None else int(leads)
    Mlag = hi_obs if lags is None else int(lags)
    if L < 0 or Mlag < 0:
        raise DesignError(f"leads={leads} and lags={lags} must be >= 0")
    if hi_obs < 0:
        raise DesignError("no post-treatment observations of treated units: the panel ends before treatment starts")
    if not -L <= reference <= Mlag:
        raise DesignError(
            f"reference={reference} lies outside the event window [-{L}, {Mlag}] "
            f"(observed event times run from {lo_obs} to {hi_obs}); choose a reference inside it"
        )
    ebin = np.clip(et, -L, Mlag)
    present = set(np.unique(ebin).tolist())
    if reference not in present:
        raise DesignError(
            f"no treated observation at the reference event time {reference}; choose one of {sorted(present)}"
        )
    events = [v for v in range(-L, Mlag + 1) if v != reference and v in present]
    if not any(v >= 0 for v in events):
        raise DesignError("no post-treatment event time to estimate (the reference absorbs them all)")
    lookup = np.full(L + Mlag + 1, -1)
    lookup[np.array(events) + L] = np.arange(len(events))
    N = len(panel.y)
    X = np.zeros((N, len(events) + panel.cov.shape[1]))
    rows = np.flatnonzero(treated)
    keep = ebin != reference
    X[rows[keep], lookup[ebin[keep] + L]] = 1.0
    X[:, len(events) :] = panel.cov
    ev_names = [f"e={v}" for v in events]
    names = ev_names + panel.cov_names
    k = len(names)
    post = [i for i, v in enumerate(events) if v >= 0]
    pre = [i for i, v in enumerate(events) if v < 0]
    ell = np.zeros(k)
    ell[post] = 1.0 / len(post)
    contrasts = np.column_stack([np.eye(k)[:, : len(events)], ell])
    fit = _fit(
        panel,
        X,
        names,
        ev_names,
        inference=inference,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
        contrasts=contrasts,
        band_coefs=list(range(len(events))),
    )
    V = fit.vcov
    se = np.sqrt(np.diag(V))
    avg, avg_se = float(ell @ fit.beta), float(np.sqrt(ell @ V @ ell))

    nev = len(events)
    terms = ev_names + [f"e={reference}", "post_avg"] + panel.cov_names
    est = np.concatenate([fit.beta[:nev], [0.0, avg], fit.beta[nev:]])
    ses = np.concatenate([se[:nev], [np.nan, avg_se], se[nev:]])
    event_time = [*events, reference, np.nan] + [np.nan] * len(panel.cov_names)
    table = tidy_table(terms, est, ses, alpha=alpha, df=fit.df, event_time=event_time)
    info = _info(panel, fit)
    info.update(reference=reference, leads=L, lags=Mlag, post_terms=[ev_names[i] for i in post])
    band_note = None
    if fit.boot is not None:
        b = fit.boot
        idx = list(range(nev)) + [None, nev] + [None] * len(panel.cov_names)
        for colname, vals in (("p_value", b.p_value), ("ci_low", b.ci_low), ("ci_high", b.ci_high)):
            table[colname] = [np.nan if i is None else vals[i] for i in idx]
        # Covariate rows keep analytic CR1 p-values and intervals (not bootstrapped).
        analytic = tidy_table(terms, est, ses, alpha=alpha, df=fit.df)
        cov_rows = np.arange(nev + 2, len(terms))
        for colname in ("p_value", "ci_low", "ci_high"):
            table.loc[cov_rows, colname] = analytic.loc[cov_rows, colname]
        crit = fit.sup_t
        # The band is beta_j +- crit * se_j (CR1 se, unrestricted wild bootstrap); the pointwise intervals are the
        # restricted bootstrap's test inversion. Where one sticks out, the band takes its end points.
        band = simultaneous_band(
            est,
            ses,
            crit,
            table["ci_low"].to_numpy(dtype=float),
            table["ci_high"].to_numpy(dtype=float),
            rows=np.arange(len(terms)) < nev,
        )
        table["band_low"] = band.low
        table["band_high"] = band.high
        info.update(n_boot=b.n_boot, boot_weights=b.weights, enumerated=b.enumerated, sup_t_critical_value=crit)
        if band.widened.any():
            widened = [terms[i] for i in np.flatnonzero(band.widened)]
            n_cl = [np.unique(panel.g[X[:, j] != 0]).size for j in range(nev)]
            lone = [ev_names[j] for j in range(nev) if band.widened[j] and n_cl[j] < 2]
            band_note = (
                f"simultaneous bands: the bands of {format_examples(widened)} were widened to their pointwise "
                "intervals (restricted wild cluster bootstrap, test inversion), which the sup-t band (CR1 standard "
                "errors, unrestricted wild bootstrap) did not contain"
            )
            if lone:
                band_note += (
                    f"; of these, {len(lone)} rest on fewer than 2 clusters of '{panel.cluster_name}' "
                    f"({format_examples(lone)}): the residuals of their one treated cluster sum to zero there, so "
                    "their CR1 standard errors understate the uncertainty"
                )
            info["bands_widened"] = widened
            if lone:  # a regular panel's band taking an asymmetric interval's end is a note, not a warning
                warnings.warn(band_note, FewClustersWarning, stacklevel=2)
    if pre and fit.df is not None and len(pre) > fit.df:
        # CR1 with G clusters has rank at most G-1: more restrictions than that make the F statistic
        # divide by numerical noise (negative values of -1e13 were seen), so report none.
        info["pretest_unavailable"] = (
            f"the joint pre-trend test is not reported: {len(pre)} pre-treatment coefficients but only "
            f"{fit.df + 1} clusters, so their clustered covariance is singular; use fewer leads or read the "
            "individual intervals"
        )
    elif pre and _singular(V[np.ix_(pre, pre)]):
        info["pretest_unavailable"] = (
            "the joint pre-trend test is not reported: the covariance of the pre-treatment coefficients is "
            "singular (too few clusters or periods for so many leads); read the individual intervals"
        )
    elif pre:
        bp = fit.beta[pre]
        Vp = V[np.ix_(pre, pre)]
        q = len(pre)
        wald = float(bp @ np.linalg.solve(Vp, bp))
        if fit.df is not None:
            F = wald / q
            info["pretest"] = {
                "statistic": F,
                "df": (q, fit.df),
                "p_value": float(stats.f.sf(F, q, fit.df)),
                "test": f"Wald F({q}, {fit.df}) with CR1 covariance: all pre-treatment coefficients are zero",
            }
        else:
            info["pretest"] = {
                "statistic": wald,
                "df": q,
                "p_value": float(stats.chi2.sf(wald, q)),
                "test": f"Wald chi2({q}) with HC1 covariance: all pre-treatment coefficients are zero",
            }
    notes = list(fit.notes) + _staggered_note(panel)
    if band_note is not None:
        notes.append(band_note)
    if "pretest_unavailable" in info:
        notes.append(info["pretest_unavailable"])
    if leads is not None and lo_obs < -L or lags is not None and hi_obs > Mlag:
        notes.append(f"event times outside [-{L}, {Mlag}] are binned into the end points")
    return Result(
        "Event study (two-way fixed effects)",
        table,
        nobs=fit.nobs,
        headline="post_avg",
        alpha=alpha,
        inference=fit.inference,
        outcome=outcome,
        notes=tuple(notes),
        info=info,
    )
