"""Staggered-adoption difference-in-differences: Callaway and Sant'Anna (2021).

:func:`staggered_did` estimates every group-time average treatment effect
ATT(g,t) on a balanced panel, by a 2x2 comparison of cohort ``g`` with a control
group (never treated, or not yet treated) between period ``t`` and a base
period, without covariates or with them (outcome regression, normalised inverse
probability weighting, or the doubly-robust estimator of Sant'Anna and Zhao 2020).
Inference uses each estimate's influence function: analytic standard errors, and a
multiplier bootstrap for simultaneous (uniform) bands. The aggregations (simple,
dynamic/event-time, group, calendar) carry the estimation effect of their weights.

The numbers reproduce R ``did`` 2.5.0 (``att_gt`` + ``aggte`` with
``bstrap=FALSE``) on ``mpdta``; conventions are in ``docs/staggered.md``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from evaluator.data.validate import duplicate_rows, where_units
from evaluator.errors import (
    DataError,
    DesignError,
    DroppedUnitsWarning,
    FewClustersWarning,
    Problem,
    SmallCohortWarning,
    TrimmingWarning,
    UnbalancedPanelError,
    WeightsError,
    format_examples,
)
from evaluator.estimators.design import check_frame, check_weights, choice, one_column
from evaluator.estimators.logit import fit_logit, weighted_logit_probabilities
from evaluator.inference.bootstrap import (
    CellClusterSums,
    cell_cluster_sums,
    simultaneous_band,
    wild_cluster_bootstrap_cell_sums,
)
from evaluator.inference.keyed_draws import bootstrap_keys, seed_key, signed_sums
from evaluator.policy import FEW_CLUSTERS, PS_TRIM_LEVEL, WEBB_BELOW_CLUSTERS
from evaluator.results.base import Result, tidy_table

__all__ = ["StaggeredResult", "staggered_did"]

Control = Literal["never", "not_yet"]
Method = Literal["dr", "ipw", "reg", "unconditional"]
BasePeriod = Literal["varying", "universal"]
Aggregation = Literal["simple", "dynamic", "group", "calendar"]

_IQR_NORMAL = stats.norm.ppf(0.75) - stats.norm.ppf(0.25)


# -- the result --------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class StaggeredResult(Result):
    """Group-time average treatment effects, ATT(g,t), and their aggregations.

    The tidy :attr:`table` has one row per (g,t) cell. :attr:`estimate`, :attr:`se`,
    :attr:`ci` and :attr:`pvalue` refer to the **simple** aggregate (the average of
    all post-treatment ATT(g,t) weighted by cohort size), i.e. ``aggregate("simple")``.
    Use :meth:`aggregate` for event-time, cohort and calendar summaries and
    :attr:`pretest` for the joint test that every pre-treatment ATT(g,t) is zero.
    """

    simple: Result | None = field(default=None, repr=False)
    _att: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    _sigma: np.ndarray = field(default_factory=lambda: np.empty((0, 0)), repr=False)
    _draws: np.ndarray | None = field(default=None, repr=False)
    _cells: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    _pg: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    _groups: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    _t_range: tuple[float, float] = (0.0, 0.0)
    _wcr: dict[str, Any] | None = field(default=None, repr=False)
    _scale: float = 1.0  # the outcome's standard deviation: the unit of "numerically zero" standard errors
    # per cell: up to two distinct clusters (units without clusters) of its treated and of its control units
    _cell_clusters: tuple[tuple[np.ndarray, np.ndarray], ...] = field(default=(), repr=False)

    @property
    def _row(self) -> pd.Series:
        if self.simple is None:
            return super()._row
        return self.simple._row

    def to_dict(self) -> dict[str, Any]:
        """As :meth:`Result.to_dict`; the headline numbers are those of the simple aggregate."""
        out = super().to_dict()
        out["headline"] = "simple aggregate: overall"
        return out

    @property
    def att_gt(self) -> pd.DataFrame:
        """ATT(g,t) with columns cohort, time, event_time, att, se, ci_low, ci_high, n_treated, n_control."""
        t = self.table
        out = pd.DataFrame(
            {
                "cohort": t["cohort"],
                "time": t["time"],
                "event_time": t["event_time"],
                "att": t["estimate"],
                "se": t["std_error"],
                "ci_low": t["ci_low"],
                "ci_high": t["ci_high"],
                "n_treated": t["n_treated"],
                "n_control": t["n_control"],
            }
        )
        for c in ("band_low", "band_high"):
            if c in t:
                out[c] = t[c]
        return out

    def aggregate(
        self,
        kind: Aggregation,
        *,
        min_e: float = -math.inf,
        max_e: float = math.inf,
        balance_e: int | None = None,
    ) -> Result:
        """Aggregate the ATT(g,t) into a summary parameter (Callaway and Sant'Anna 2021, Sec. 3).

        Parameters
        ----------
        kind : {"simple", "dynamic", "group", "calendar"}
            ``"simple"``: all post-treatment cells weighted by cohort size.
            ``"dynamic"``: by event time e = t - g (cohort-size weights within e);
            overall = mean over e >= 0. ``"group"``: by cohort (mean over its
            post-treatment periods); overall weighted by cohort size. ``"calendar"``:
            by period (cohort-size weights); overall = mean over periods.
        min_e, max_e : float
            Event times kept (``dynamic``); ``max_e`` also caps the cells used by
            ``simple`` and ``group``.
        balance_e : int, optional
            ``dynamic`` only: keep only cohorts observed for at least ``balance_e``
            periods after treatment, so the composition does not change with e.

        Returns
        -------
        Result
            Headline term ``"overall"``; the other rows are per e, g or t (with
            ``event_time``, ``cohort`` or ``time`` columns). Standard errors include
            the estimation effect of the cohort-size weights. With the bootstrap the per-e/g/t
            rows (not ``overall``) have a sup-t simultaneous band ``band_low``/``band_high`` that
            contains each row's pointwise interval (widened rows are named in a
            :class:`~evaluator.errors.FewClustersWarning` and ``info["bands_widened"]``);
            ``info["crit_value"]`` is the critical value used.
        """
        return _aggregate(self, kind, min_e=min_e, max_e=max_e, balance_e=balance_e)


# -- input checks ------------------------------------------------------------------------------------------------------
@dataclass
class _Panel:
    y: np.ndarray  # units x periods
    x: np.ndarray | None  # units x periods x p
    g: np.ndarray  # cohort per unit (inf = never)
    cl: np.ndarray | None  # cluster code per unit
    n_clusters: int
    times: np.ndarray
    units: np.ndarray
    notes: list[str]
    w: np.ndarray | None = None  # sampling weight per unit (as given; constant within the unit)
    dropped: dict[str, Any] | None = None  # units dropped to balance the panel (allow_unbalanced_panel=False)
    cluster_labels: np.ndarray | None = None  # the cluster of each code in ``cl`` (sorted values)


def _sorted_layout(units: np.ndarray, tt: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(units, periods) when rows are sorted by numeric unit then period and the panel is balanced, else None."""
    if not np.issubdtype(units.dtype, np.number) or len(tt) == 0:
        return None
    first = np.flatnonzero(units != units[0])
    nt = int(first[0]) if len(first) else len(units)
    if nt == 0 or len(units) % nt:
        return None
    times = tt[:nt]
    if nt > 1 and not np.all(np.diff(times) > 0):
        return None
    ublocks = units.reshape(-1, nt)
    heads = ublocks[:, 0]
    if not (np.all(tt.reshape(-1, nt) == times) and np.all(ublocks == heads[:, None])):
        return None
    if len(heads) > 1 and not np.all(np.diff(heads) > 0):
        return None
    return heads, times.astype(float)


def _prepare(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    covariates: list[str],
    cluster: str | None,
    anticipation: float,
    weights: str | None = None,
) -> _Panel:
    roles = {"outcome": outcome, "unit": unit, "time": time, "cohort": cohort}
    if cluster is not None:
        roles["cluster"] = cluster
    if weights is not None:
        roles["weights"] = weights  # its values are checked below, by check_weights
    check_frame(
        data,
        roles=roles,
        covariates=covariates,
        complete=[outcome, unit, time, *covariates, *([cluster] if cluster else [])],
        numeric=[outcome, time, cohort, *covariates],
        finite=[outcome, time, *covariates],  # the panel must be balanced: no cell may be dropped
    )
    y_all = data[outcome].to_numpy(dtype=float)
    tt = data[time].to_numpy(dtype=float)
    layout = _sorted_layout(data[unit].to_numpy(), tt)
    if layout is not None:
        # Already sorted by unit then period and balanced: the pivot is a reshape (no factorize, no scatter).
        uniq_units, times = layout
        nu, nt = len(uniq_units), len(times)
        if weights is not None:
            row_unit = np.repeat(np.arange(nu), nt)
            w_rows = check_weights(data, weights, unit=unit, unit_codes=row_unit, unit_labels=uniq_units)

        def pivot(values: np.ndarray) -> np.ndarray:
            return values.reshape(nu, nt)

    else:
        ucode, uniq_units = pd.factorize(data[unit], sort=True)  # no missing ids: check_frame saw to it
        tcode, times = pd.factorize(tt, sort=True)
        times = np.asarray(times, dtype=float)
        nu, nt = len(uniq_units), len(times)
        key = ucode.astype(np.int64) * nt + tcode
        if weights is not None:  # before any balancing, so that the rows named are the caller's rows
            w_rows = check_weights(data, weights, unit=unit, unit_codes=ucode, unit_labels=uniq_units)
        counts = np.bincount(key, minlength=nu * nt).reshape(nu, nt)
        if len(key) != nu * nt or (counts != 1).any():
            if (counts > 1).any():
                dup = duplicate_rows(data, [unit, time])[0]
                hint = dup.hint + "; if each period's rows are different individuals (repeated cross-sections), "
                raise DataError([Problem(dup.what, column=dup.column, where=dup.where, hint=hint + "pass panel=False")])
            # As R did with allow_unbalanced_panel=FALSE: keep the units observed in every period, say who went.
            gaps = np.nonzero((counts == 0).any(axis=1))[0]
            drop = np.isin(ucode, gaps)
            if drop.all():
                raise UnbalancedPanelError(
                    f"unbalanced panel: none of the {nu} units is observed in all {nt} periods, so balancing it "
                    "leaves nothing; pass allow_unbalanced_panel=True to use every observation (as R did), or "
                    "panel=False if the rows are repeated cross-sections"
                )
            why = (
                f"{len(gaps)} of {nu} units ({int(drop.sum())} rows) not observed in all {nt} periods "
                f"({where_units(uniq_units[gaps])})"
            )
            warnings.warn(
                f"unbalanced panel: dropped {why}, as R did does by default; pass allow_unbalanced_panel=True to use "
                "every observation",
                DroppedUnitsWarning,
                stacklevel=3,
            )
            out = _prepare(
                data.iloc[np.flatnonzero(~drop)],
                outcome=outcome,
                unit=unit,
                time=time,
                cohort=cohort,
                covariates=covariates,
                cluster=cluster,
                anticipation=anticipation,
                weights=weights,
            )
            out.notes.append(f"unbalanced panel: dropped {why} (allow_unbalanced_panel=False)")
            out.dropped = {"units": len(gaps), "rows": int(drop.sum()), "units_before": nu, "periods": nt}
            return out

        def pivot(values: np.ndarray) -> np.ndarray:
            out = np.empty(nu * nt, dtype=values.dtype)
            out[key] = values  # every (unit, period) cell exactly once
            return out.reshape(nu, nt)

    y = pivot(y_all)
    gmat = pivot(data[cohort].to_numpy(dtype=float))
    gmat = np.where(np.isnan(gmat) | (gmat == 0), np.inf, gmat)
    varies = (gmat != gmat[:, :1]).any(axis=1)
    if varies.any():
        raise DataError(
            f"column {cohort!r} (first treated period) varies within "
            f"{where_units(uniq_units[varies])}; it must be constant for each unit"
        )
    g = gmat[:, 0].copy()
    notes: list[str] = []
    late = np.isfinite(g) & (g > times[-1] + anticipation)
    if late.any():
        g[late] = np.inf
        notes.append(f"{int(late.sum())} units first treated after the last period are used as never treated")
    x = None
    if covariates:
        x = np.stack([pivot(data[c].to_numpy(dtype=float)) for c in covariates], axis=2)
    cl = None
    n_clusters = 0
    if cluster is not None:
        codes, cuniq = pd.factorize(data[cluster], sort=True)  # complete: check_frame saw to it
        cmat = pivot(codes)
        cvar = (cmat != cmat[:, :1]).any(axis=1)
        if cvar.any():
            raise DataError(
                f"cluster column {cluster!r} varies within {where_units(uniq_units[cvar])}; "
                "clusters must contain whole units"
            )
        cl = cmat[:, 0]
        n_clusters = len(cuniq)
    w = None
    if weights is not None:  # sampling weights: one per unit (R did's weightsname), checked above
        w = pivot(w_rows)[:, 0]
    return _Panel(
        y=y,
        x=x,
        g=g,
        cl=cl,
        n_clusters=n_clusters,
        times=times,
        units=np.asarray(uniq_units),
        notes=notes,
        w=w,
        cluster_labels=None if cluster is None else np.asarray(cuniq),
    )


def _check_covariates(x: np.ndarray, names: list[str]) -> None:
    flat = x.reshape(-1, x.shape[2])
    const = [n for j, n in enumerate(names) if np.ptp(flat[:, j]) == 0]
    if const:
        raise DesignError(
            f"covariates {const} are constant; they cannot enter the propensity score or outcome regression "
            "beside the intercept: drop them"
        )
    first = x[:, 0, :]  # collinearity is checked on the first period; each cell's fit checks its own design
    sd = first.std(0)
    Z = np.column_stack([np.ones(len(first)), (first - first.mean(0)) / np.where(sd > 0, sd, 1.0)])
    rank = np.linalg.matrix_rank(Z)
    if rank < Z.shape[1]:
        # find the covariates that are linear combinations of the earlier ones
        culprits = []
        for j in range(1, Z.shape[1]):
            if np.linalg.matrix_rank(Z[:, : j + 1]) < j + 1:
                culprits.append(names[j - 1])
        raise DesignError(f"covariates are collinear (with the intercept or each other): {culprits}; drop them")


def weights_note(weights: str) -> str:
    """The note of a panel estimate with sampling weights (in memory and out of core)."""
    return (
        f"sampling weights {weights!r} (one per unit, normalised to mean 1): weighted ATT(g,t) and influence "
        "functions, cohort shares of the aggregations weighted"
    )


def skipped_cells_note(skipped: list[str], *, weighted: bool) -> str:
    """The note naming the (cohort, period) cells skipped for want of controls (of positive weight, with weights)."""
    what = "a control unit of positive weight" if weighted else "any control unit"
    return f"cells without {what} were skipped: {format_examples(skipped)}"


def _check_cohort_weights(
    w: np.ndarray, G: np.ndarray, glist: np.ndarray, never: np.ndarray | None, column: str | None
) -> None:
    """Raise one WeightsError naming every cohort (and the never-treated controls) whose weights are all zero."""
    problems = []
    zero = [_num(gv) for gv in glist if not (w[G == gv] > 0).any()]
    if zero:
        problems.append(
            Problem(
                f"the weights are zero for every unit of {len(zero)} cohort(s): their ATT(g,t) weigh nothing",
                column=column,
                where=format_examples(zero, label="cohorts"),
                hint="give the units of those cohorts positive weights, or drop those cohorts' units",
            )
        )
    if never is not None and not (w[never] > 0).any():
        problems.append(
            Problem(
                'the weights are zero for every never-treated unit, the controls of control="never"',
                column=column,
                hint='give never-treated units positive weights, or use control="not_yet"',
            )
        )
    if problems:
        raise WeightsError(problems)


# -- 2x2 estimators (DRDID panel versions) -----------------------------------------------------------------------------
def _att_cov(
    dy: np.ndarray,
    d: np.ndarray,
    X: np.ndarray,
    method: str,
    fits: dict[str, Any] | None = None,
    iw: np.ndarray | None = None,
) -> tuple[float, np.ndarray, int]:
    """ATT and its influence function (subsample scale) by DRDID's drdid/std_ipw/reg panel estimators.

    ``fits`` caches what depends only on (X, d) -- the propensity score and the control
    Gram matrix -- so cells sharing treated group, controls and covariates fit them once.
    ``iw`` are DRDID's ``i.weights`` (sampling weights with mean 1 on the subsample); ``None``
    is every weight 1, by the unweighted arithmetic.
    """
    fits = {} if fits is None else fits
    n = len(d)
    c = 1.0 - d
    wd = d if iw is None else iw * d  # i.weights * D
    wc = c if iw is None else iw * c  # i.weights * (1 - D)
    trimmed = 0
    if method in ("dr", "reg"):
        ctl = d == 0
        Xc = X[ctl]
        if "XtX" not in fits:
            XtX = Xc.T @ Xc if iw is None else (Xc * iw[ctl, None]).T @ Xc
            if np.linalg.cond(XtX) > 1e14:
                raise DesignError("the outcome regression on the control units is singular")
            fits["XtX"] = XtX
        XtX = fits["XtX"]
        beta = np.linalg.solve(XtX, Xc.T @ (dy[ctl] if iw is None else iw[ctl] * dy[ctl]))
        out = X @ beta
        XpX_inv = np.linalg.inv(XtX / n)
        lin_ols = (wc * (dy - out))[:, None] * X @ XpX_inv
    if method in ("dr", "ipw"):
        if "ps" not in fits:
            if iw is None:
                ps = np.minimum(fit_logit(X, d, arithmetic="direct").predict(X), 1 - 1e-6)
            else:
                ps = np.minimum(weighted_logit_probabilities(X, d, iw), 1 - 1e-6)
            trim = np.ones(n, dtype=bool)
            trim[d == 0] = ps[d == 0] < PS_TRIM_LEVEL
            W = ps * (1 - ps) if iw is None else ps * (1 - ps) * iw
            H = np.linalg.inv((X * W[:, None]).T @ X) * n
            fits.update(
                ps=ps,
                trimmed=int((~trim).sum()),
                lin_ps=(((d - ps) if iw is None else iw * (d - ps))[:, None] * X) @ H,
                w_t=trim * wd,
                w_c=trim * ps * wc / (1 - ps),
            )
        ps, trimmed, lin_ps, w_t, w_c = (fits[k] for k in ("ps", "trimmed", "lin_ps", "w_t", "w_c"))
    if method == "dr":
        r = dy - out
        eta_t = np.mean(w_t * r) / np.mean(w_t)
        eta_c = np.mean(w_c * r) / np.mean(w_c)
        inf_t = (w_t * r - w_t * eta_t - lin_ols @ np.mean(w_t[:, None] * X, 0)) / np.mean(w_t)
        M2 = np.mean((w_c * (r - eta_c))[:, None] * X, 0)
        M3 = np.mean(w_c[:, None] * X, 0)
        inf_c = (w_c * r - w_c * eta_c + lin_ps @ M2 - lin_ols @ M3) / np.mean(w_c)
        return eta_t - eta_c, inf_t - inf_c, trimmed
    if method == "ipw":
        eta_t = np.mean(w_t * dy) / np.mean(w_t)
        eta_c = np.mean(w_c * dy) / np.mean(w_c)
        inf_t = (w_t * dy - w_t * eta_t) / np.mean(w_t)
        M2 = np.mean((w_c * (dy - eta_c))[:, None] * X, 0)
        inf_c = (w_c * dy - w_c * eta_c + lin_ps @ M2) / np.mean(w_c)
        return eta_t - eta_c, inf_t - inf_c, trimmed
    # reg (outcome regression): DRDID::reg_did_panel
    eta_t = np.mean(wd * dy) / np.mean(wd)
    eta_c = np.mean(wd * out) / np.mean(wd)
    inf_t = (wd * dy - wd * eta_t) / np.mean(wd)
    M1 = np.mean(wd[:, None] * X, 0)
    inf_c = (wd * out - wd * eta_c + lin_ols @ M1) / np.mean(wd)
    return eta_t - eta_c, inf_t - inf_c, 0


# -- bootstrap ---------------------------------------------------------------------------------------------------------
def _multiplier_draws(
    B: np.ndarray, keys: np.ndarray, n_boot: int, seed: int | np.random.Generator | None, n: int
) -> np.ndarray:
    """n_boot draws of (1/n) sum_i v_i B_i with Rademacher weights v (one per row of B), keyed to ``keys``.

    R did uses Mammen weights; any weights with mean 0 and variance 1 give a valid
    multiplier bootstrap. Rademacher signs are bits of a hash of (seed, row id, draw)
    (:mod:`evaluator.inference.keyed_draws`), so the draws do not depend on the order of the
    rows nor on how a panel read out of core is cut into shards: the same seed gives the
    same bootstrap in memory and out of core.
    """
    return signed_sums(keys, B, n_boot, seed_key(seed)) / n


def _crossprod(S: np.ndarray) -> np.ndarray:
    """S'S by BLAS: ten times faster than einsum on a 100,000 x 30 influence-function matrix (4 ms vs 40 ms)."""
    return S.T @ S


def _tiny(scale: float) -> float:
    """Standard errors at or below this are numerically zero (R did: sqrt(eps) * 10), relative to the outcome's
    spread so that changing the outcome's units (y * 1e-7) changes no conclusion."""
    return math.sqrt(np.finfo(float).eps) * 10 * (scale if scale > 0 and math.isfinite(scale) else 1.0)


def _boot_se(draws: np.ndarray, scale: float = 1.0) -> np.ndarray:
    q75, q25 = np.quantile(draws, [0.75, 0.25], axis=0, method="inverted_cdf")
    se = (q75 - q25) / _IQR_NORMAL
    se[se <= _tiny(scale)] = np.nan
    return se


def _sup_t(draws: np.ndarray, se: np.ndarray, alpha: float) -> float:
    ok = np.isfinite(se)
    if not ok.any():
        return math.nan
    t = np.max(np.abs(draws[:, ok] / se[ok]), axis=1)
    return float(np.quantile(t, 1 - alpha, method="inverted_cdf"))


def _two_clusters(mask: np.ndarray, cl: np.ndarray | None) -> np.ndarray:
    """Up to two distinct clusters (units when ``cl`` is None) of the units in ``mask``: enough for "fewer than 2"."""
    if cl is None:
        return np.flatnonzero(mask)[:2]
    ids = cl[mask]
    if ids.size == 0:
        return ids
    return np.concatenate([ids[:1], ids[ids != ids[0]][:1]])


def _single_cluster_rows(coefs: np.ndarray, cell_clusters: Sequence[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """Rows (columns of ``coefs``, cells x rows) whose treated or control units all lie in fewer than 2 clusters."""
    out = np.zeros(coefs.shape[1], dtype=bool)
    if not cell_clusters:
        return out
    for j in range(coefs.shape[1]):
        used = np.flatnonzero(coefs[:, j] != 0)
        if used.size:
            treated = np.unique(np.concatenate([cell_clusters[c][0] for c in used]))
            control = np.unique(np.concatenate([cell_clusters[c][1] for c in used]))
            out[j] = treated.size < 2 or control.size < 2
    return out


def _bands(
    table: pd.DataFrame,
    ests: np.ndarray,
    se: np.ndarray,
    crit: float,
    alpha: float,
    df: float | None,
    rows: np.ndarray,
    single: np.ndarray,
    *,
    clustered: bool,
    where: str,
) -> tuple[float, str | None, list[str], bool]:
    """Write the sup-t bands into ``table`` (in place); return the critical value used, a note, widened rows and
    whether the note deserves a warning.

    Only a raised critical value or a widened row resting on fewer than 2 clusters warns: a band that
    merely takes the end of an asymmetric (test-inverted) interval on a regular panel is a note, not news.

    The band is ``est +- crit * se`` with ``crit`` from :func:`_sup_t`, never below the pointwise
    critical value (R did's guard), and it contains every row's pointwise interval: with clusters
    that interval is the restricted wild cluster bootstrap one, built from other draws (see
    :func:`evaluator.inference.bootstrap.simultaneous_band`).
    """
    pointwise = float(stats.norm.ppf(1 - alpha / 2) if df is None else stats.t.ppf(1 - alpha / 2, df))
    band = simultaneous_band(
        ests,
        se,
        crit,
        table["ci_low"].to_numpy(dtype=float),
        table["ci_high"].to_numpy(dtype=float),
        rows=rows,
        pointwise_critical_value=pointwise,
    )
    table["band_low"] = band.low
    table["band_high"] = band.high
    terms = table["term"].to_numpy()
    parts = []
    if band.raised:
        parts.append(
            f"the sup-t critical value {crit:.3f} fell below the pointwise one {pointwise:.3f} (too few distinct "
            "bootstrap draws: few clusters, or cells resting on one unit or cluster) and was raised to it, as in R did"
        )
    if band.widened.any():
        lone = band.widened & single
        how = (
            " (restricted wild cluster bootstrap, test inversion), which the sup-t band (multiplier bootstrap) did "
            "not contain"
            if clustered
            else ""
        )
        msg = f"the bands of {format_examples(terms[band.widened])} were widened to their pointwise intervals{how}"
        if lone.any():
            msg += (
                f"; of these, {int(lone.sum())} rest on fewer than 2 clusters ({format_examples(terms[lone])}): the "
                "multiplier draws miss the variance of their one-cluster side, so their bootstrap standard errors "
                "understate the uncertainty"
            )
        parts.append(msg)
    note = f"simultaneous bands{where}: " + "; ".join(parts) if parts else None
    serious = bool(band.raised or (band.widened & single).any())
    return band.critical_value, note, [str(t) for t in terms[band.widened]], serious


def _with_simple(res: StaggeredResult) -> StaggeredResult:
    """The result with its headline (the simple aggregate) attached; ``None`` when it cannot be formed."""
    try:
        simple = res.aggregate("simple")
    except DesignError:
        simple = None
    object.__setattr__(res, "simple", simple)
    return res


#: How the result's description names each estimation method.
METHOD_NAMES = {"unconditional": "unconditional", "dr": "doubly robust", "ipw": "IPW", "reg": "outcome regression"}


def _pretest(
    cells_df: pd.DataFrame,
    att: np.ndarray,
    sigma: np.ndarray,
    se_an: np.ndarray,
    anticipation: int,
    cluster: str | None,
    n_clusters: int,
) -> tuple[dict[str, float] | None, str | None]:
    """The Wald test that every pre-treatment ATT(g,t) is zero, or the note saying why it is not reported.

    Shared by the panel estimator and :mod:`evaluator.estimators.staggered_rc`.
    """
    g_c = cells_df["cohort"].to_numpy(float)
    t_c = cells_df["time"].to_numpy(float)
    pre = np.nonzero((t_c < g_c - anticipation) & np.isfinite(se_an))[0]
    if not len(pre):
        return None, None
    if cluster is not None and len(pre) >= n_clusters:
        # A covariance summed over G clusters has rank below G: with as many restrictions the Wald
        # statistic divides by numerical noise (values of 1e10 were seen), so no test is better than a wrong one.
        return None, (
            f"the joint pre-trend test is not reported: {len(pre)} pre-treatment ATT(g,t) but only {n_clusters} "
            "clusters, so their clustered covariance is singular; read the uniform bands of aggregate('dynamic')"
        )
    V = sigma[np.ix_(pre, pre)]
    eig = np.linalg.eigvalsh(V)
    tol = max(float(eig.max()), 0.0) * 1e-10
    rank = int((eig > tol).sum())
    W = float(att[pre] @ np.linalg.pinv(V, rcond=1e-10, hermitian=True) @ att[pre])
    return {"statistic": W, "df": rank, "p_value": float(stats.chi2.sf(W, rank))}, None


def _wcr_columns(table: pd.DataFrame, wcr: dict[str, Any], coefs: np.ndarray, ests: np.ndarray, alpha: float):
    """Replace p-values and intervals by restricted wild cluster bootstrap ones, row by row.

    ``coefs`` (cells x rows) holds each row's weights on the ATT(g,t) cells. The
    multiplier bootstrap behaves like the analytic normal interval and under-covers
    with few clusters; the restricted wild cluster bootstrap (imposing the null on
    every cell) is the few-cluster remedy of MacKinnon and Webb, carried over from
    regression to Callaway-Sant'Anna cells in :func:`evaluator.inference.wild_cluster_bootstrap_cells`.
    """
    out = table.copy()
    # Filled as arrays and written once: a .loc assignment per row cost more than the bootstrap itself.
    cols = ["p_value", "ci_low", "ci_high"]
    filled = out[cols].to_numpy(dtype=float, copy=True)
    std_error = out["std_error"].to_numpy(dtype=float)
    for j in range(coefs.shape[1]):
        a = coefs[:, j]
        used = a != 0
        if not used.any() or not np.isfinite(ests[j]) or not np.isfinite(std_error[j]):
            continue
        boot = wild_cluster_bootstrap_cell_sums(
            wcr["sums"].columns(used),
            a[used],
            float(ests[j]),
            n_boot=wcr["n_boot"],
            alpha=alpha,
            seed=wcr["seed"],
        )
        filled[j] = boot.p_value, boot.ci_low, boot.ci_high
    out[cols] = filled
    return out


def analytic_se(sigma: np.ndarray, k: int, scale: float) -> np.ndarray:
    """The cells' analytic standard errors from ``sigma``: NaN where numerically zero (``_tiny`` of ``scale``)."""
    se = np.sqrt(np.maximum(np.diag(sigma)[:k], 0.0))
    se[se <= _tiny(scale)] = np.nan
    return se


def wcr_spec(sums: CellClusterSums, n_boot: int, seed: int | np.random.Generator | None) -> dict[str, Any]:
    """What the restricted wild cluster bootstrap of any row needs: the cells' per-cluster sums, draws and seed
    (a Generator is not kept: each row's bootstrap then draws afresh)."""
    return {"sums": sums, "n_boot": n_boot, "seed": seed if isinstance(seed, (int, np.integer)) else None}


def panel_analytic_words(cluster: str | None, n_clusters: int) -> str:
    """The inference sentence of the panel estimator's analytic standard errors (in memory and out of core)."""
    return (
        "analytic, influence function"
        + (f" summed within {n_clusters} clusters of {cluster!r}" if cluster is not None else "")
        + ": se = sqrt(sum psi^2)/n, normal intervals"
    )


def cell_table(
    cells_df: pd.DataFrame,
    att: np.ndarray,
    se_an: np.ndarray,
    *,
    draws: np.ndarray | None,
    wcr: dict[str, Any] | None,
    alpha: float,
    scale: float,
    cell_clusters: Sequence[tuple[np.ndarray, np.ndarray]],
    n_boot: int,
    cluster: str | None,
    n_clusters: int,
    level: str,
    analytic: str,
    notes: list[str],
    boot_df: float | None = None,
    stacklevel: int = 2,
) -> tuple[pd.DataFrame, float, list[Any], str]:
    """The ATT(g,t) table, sup-t critical value, widened bands and inference sentence, analytic or bootstrapped.

    One place for the in-memory panel, the unbalanced and cross-section estimators and the out-of-core
    passes: ``draws`` are the multiplier draws of the cells (and cohort shares), ``wcr`` the restricted
    wild cluster bootstrap's sums (clusters with ``n_boot > 0``), ``analytic`` the sentence without
    bootstrap. Band notes are appended to ``notes`` (and warned when serious).
    """
    k = len(att)
    ev = (cells_df["time"] - cells_df["cohort"]).to_numpy()
    terms = [f"ATT({_num(a)},{_num(b)})" for a, b in zip(cells_df["cohort"], cells_df["time"], strict=True)]
    extra = {
        "cohort": [_num(v) for v in cells_df["cohort"]],
        "time": [_num(v) for v in cells_df["time"]],
        "event_time": [_num(v) for v in ev],
        "n_treated": cells_df["n_treated"].to_numpy(),
        "n_control": cells_df["n_control"].to_numpy(),
    }
    if draws is None:
        return tidy_table(terms, att, se_an, alpha=alpha, **extra), math.nan, [], analytic
    se_b = _boot_se(draws[:, :k], scale)
    extra["se_analytic"] = se_an
    table = tidy_table(terms, att, se_b, alpha=alpha, df=boot_df, **extra)
    if wcr is not None:
        table = _wcr_columns(table, wcr, np.eye(k), att, alpha)
    crit, band_note, bands_widened, serious = _bands(
        table,
        att,
        se_b,
        _sup_t(draws[:, :k], se_b, alpha),
        alpha,
        boot_df,
        np.ones(k, dtype=bool),
        _single_cluster_rows(np.eye(k), cell_clusters),
        clustered=wcr is not None,
        where="",
    )
    if band_note is not None:
        if serious:
            warnings.warn(band_note, FewClustersWarning, stacklevel=stacklevel + 1)
        notes.append(band_note)
    kind_w = f"cluster ({n_clusters} clusters of {cluster!r})" if cluster is not None else level
    inference = (
        f"multiplier bootstrap ({n_boot} draws, Rademacher weights, {kind_w} level): IQR-based standard errors"
        + (
            f"; p-values and pointwise intervals from the restricted wild cluster bootstrap ({n_clusters} "
            f"clusters, {'Webb' if n_clusters < WEBB_BELOW_CLUSTERS else 'Rademacher'} weights, test inversion)"
            if wcr is not None
            else "; pointwise normal intervals"
        )
        + ", sup-t simultaneous bands (band_low/band_high)"
    )
    return table, crit, bands_widened, inference


# -- aggregation -------------------------------------------------------------------------------------------------------
def _weighted(coef_cells: list[int], att: np.ndarray, pg_cell: np.ndarray, gidx: np.ndarray, k: int, m: int):
    """Cohort-size weighted mean of cells, with the estimation effect of the weights (R did's wif)."""
    K = np.asarray(coef_cells, dtype=int)
    c = np.zeros(m)
    S = pg_cell[K].sum()
    est = float(np.sum(pg_cell[K] * att[K]) / S)
    c[K] += pg_cell[K] / S
    np.add.at(c, k + gidx[K], (att[K] - est) / S)
    return est, c


def _aggregate(res: StaggeredResult, kind: str, *, min_e: float, max_e: float, balance_e: int | None) -> Result:
    choice("kind", kind, ("simple", "dynamic", "group", "calendar"))
    cells = res._cells
    att = res._att
    k = len(att)
    m = res._sigma.shape[0]
    g = cells["cohort"].to_numpy(float)
    t = cells["time"].to_numpy(float)
    e = t - g
    gidx = cells["gidx"].to_numpy(int)
    pg_cell = res._pg[gidx]
    ok = np.isfinite(att)
    post = ok & (g <= t) & (e <= max_e)
    rows: list[tuple[Any, float, np.ndarray]] = []  # (label value, estimate, coef)
    if kind == "simple":
        if not post.any():
            raise DesignError("no post-treatment ATT(g,t) to aggregate")
        est, c = _weighted(np.nonzero(post)[0].tolist(), att, pg_cell, gidx, k, m)
        overall = (est, c)
        label = None
    elif kind == "dynamic":
        include = ok.copy()
        eseq = np.unique(e[ok])
        if balance_e is not None:
            tmin, tmax = res._t_range
            include &= (tmax - g) >= balance_e
            eseq = np.unique(e[include])
            eseq = eseq[(eseq <= balance_e) & (eseq >= balance_e - tmax + tmin)]
        eseq = eseq[(eseq >= min_e) & (eseq <= max_e)]
        for ev in eseq:
            which = np.nonzero(include & (e == ev))[0]
            if len(which):
                est, c = _weighted(which.tolist(), att, pg_cell, gidx, k, m)
                rows.append((ev, est, c))
        pos = [r for r in rows if r[0] >= 0]
        if not pos:
            raise DesignError("no event times >= 0 to aggregate")
        overall = (float(np.mean([r[1] for r in pos])), np.mean([r[2] for r in pos], axis=0))
        label = "event_time"
    elif kind == "group":
        gvals, ests, coefs, pgs = [], [], [], []
        for gi, gv in enumerate(res._groups):
            which = np.nonzero(post & (gidx == gi))[0]
            if not len(which):
                continue
            c = np.zeros(m)
            c[which] = 1.0 / len(which)
            est = float(att[which].mean())
            rows.append((gv, est, c))
            gvals.append(gi)
            ests.append(est)
            coefs.append(c)
            pgs.append(res._pg[gi])
        if not rows:
            raise DesignError("no post-treatment ATT(g,t) to aggregate")
        pgs_a = np.asarray(pgs)
        S = pgs_a.sum()
        est_o = float(np.sum(pgs_a * np.asarray(ests)) / S)
        c = np.sum([p / S * cc for p, cc in zip(pgs_a, coefs, strict=True)], axis=0)
        for gi, est in zip(gvals, ests, strict=True):
            c[k + gi] += (est - est_o) / S
        overall = (est_o, c)
        label = "cohort"
    else:  # calendar
        tlist = np.unique(t[ok & (t >= g.min())])
        for tv in tlist:
            which = np.nonzero(ok & (t == tv) & (g <= t))[0]
            if len(which):
                est, c = _weighted(which.tolist(), att, pg_cell, gidx, k, m)
                rows.append((tv, est, c))
        if not rows:
            raise DesignError("no post-treatment ATT(g,t) to aggregate")
        overall = (float(np.mean([r[1] for r in rows])), np.mean([r[2] for r in rows], axis=0))
        label = "time"

    C = np.column_stack([r[2] for r in rows] + [overall[1]])
    ests = np.array([r[1] for r in rows] + [overall[0]])
    se_an = np.sqrt(np.maximum(np.einsum("ij,ik,kj->j", C, res._sigma, C), 0.0))
    se_an[se_an <= _tiny(res._scale)] = np.nan
    extra: dict[str, Any] = {}
    prefix = {"event_time": "e", "cohort": "g", "time": "t"}.get(label or "", "")
    terms = [f"{prefix}={_num(r[0])}" for r in rows] + ["overall"]
    if label is not None:
        extra[label] = [_num(r[0]) for r in rows] + [np.nan]
    crit_agg = math.nan
    band_note = None
    extra_info: dict[str, Any] = {}
    if res._draws is not None:
        d = res._draws @ C
        se = _boot_se(d, res._scale)
        extra["se_analytic"] = se_an
        table = tidy_table(terms, ests, se, alpha=res.alpha, df=res.info.get("boot_df"), **extra)
        if res._wcr is not None:
            table = _wcr_columns(table, res._wcr, C[:k], ests, res.alpha)
        if rows:
            has_band = np.arange(len(ests)) < len(rows)  # not the overall row
            crit_agg, band_note, widened, serious = _bands(
                table,
                ests,
                se,
                _sup_t(d[:, :-1], se[:-1], res.alpha),
                res.alpha,
                res.info.get("boot_df"),
                has_band,
                _single_cluster_rows(C[:k], res._cell_clusters),
                clustered=res._wcr is not None,
                where=f" of aggregate({kind!r})",
            )
            if band_note is not None and serious:
                warnings.warn(band_note, FewClustersWarning, stacklevel=3)
            if widened:
                extra_info["bands_widened"] = widened
        inference = res.inference
    else:
        table = tidy_table(terms, ests, se_an, alpha=res.alpha, **extra)
        inference = res.inference
    names = {
        "simple": "simple (all post-treatment cells, cohort-size weights)",
        "dynamic": "by event time",
        "group": "by cohort",
        "calendar": "by calendar period",
    }
    info = {k2: v for k2, v in res.info.items() if (k2 != "pretest" or kind == "dynamic") and k2 != "bands_widened"}
    info.update(extra_info)
    info["aggregation"] = kind
    info["crit_value"] = crit_agg  # sup-t critical value of the per-e/g/t rows (NaN without bootstrap)
    # the analytic (influence-function) covariance of the rows, e.g. for honest_did on the event-time estimates
    info["vcov"] = pd.DataFrame(C.T @ res._sigma @ C, index=terms, columns=terms)
    if kind == "dynamic":
        info["reference"] = None if res.info.get("base_period") == "varying" else -1 - res.info.get("anticipation", 0)
    return Result(
        estimator=f"Callaway-Sant'Anna ATT, {names[kind]}",
        table=table,
        nobs=res.nobs,
        headline="overall",
        alpha=res.alpha,
        inference=inference,
        outcome=res.outcome,
        notes=tuple(n for n in res.notes if not n.startswith(("estimate, SE, CI", "simultaneous bands")))
        + ((band_note,) if band_note is not None else ()),
        info=info,
    )


def _num(v: float) -> Any:
    v = float(v)
    return int(v) if v.is_integer() else v


def small_sample_warnings(
    cohort_sizes: dict[float, int],
    cluster: str | None,
    n_clusters: int,
    n_boot: int,
    notes: list[str],
    *,
    observations: bool = False,
    stacklevel: int = 2,
) -> None:
    """Warn about and note single-unit cohorts and few clusters, as every path of :func:`staggered_did` words it.

    ``cohort_sizes`` counts each cohort's units (``observations``: its rows, for repeated cross-sections and
    unbalanced panels used whole); the few-clusters warning is left out when a bootstrap is drawn.
    """
    single = [_num(gv) for gv, s in cohort_sizes.items() if s == 1]
    if single and observations:
        warnings.warn(
            f"cohorts {single} have a single observation: their analytic standard errors ignore the variance of "
            "the treated side; treat them with great caution",
            SmallCohortWarning,
            stacklevel=stacklevel,
        )
        notes.append(f"single-observation cohorts {single}: their standard errors understate uncertainty")
    elif single:
        warnings.warn(
            f"cohorts {single} have a single unit: their analytic standard errors ignore the variance of the "
            "treated side (it cannot be estimated from one unit); treat them with great caution, e.g. compare "
            "with the bootstrap (n_boot > 0) or pool cohorts",
            SmallCohortWarning,
            stacklevel=stacklevel,
        )
        notes.append(f"single-unit cohorts {single}: their standard errors understate uncertainty")
    if cluster is not None and n_clusters < FEW_CLUSTERS and n_boot == 0:
        warnings.warn(
            f"only {n_clusters} clusters in {cluster!r}: analytic cluster-robust intervals under-cover with fewer "
            f"than {FEW_CLUSTERS} clusters; use the cluster multiplier bootstrap (n_boot > 0)",
            FewClustersWarning,
            stacklevel=stacklevel,
        )
    if cluster is not None and n_clusters < FEW_CLUSTERS:
        notes.append(f"only {n_clusters} clusters: inference is fragile")


# -- the estimator -----------------------------------------------------------------------------------------------------
def staggered_did(
    data: pd.DataFrame | str | os.PathLike[str] | Any,
    *,
    outcome: str,
    unit: str | None = None,
    time: str,
    cohort: str,
    control: Control = "never",
    method: Method = "dr",
    covariates: Sequence[str] | str | None = None,
    anticipation: int = 0,
    base_period: BasePeriod = "varying",
    cluster: str | None = None,
    weights: str | None = None,
    panel: bool = True,
    allow_unbalanced_panel: bool = False,
    n_boot: int = 999,
    seed: int | np.random.Generator | None = None,
    alpha: float = 0.05,
    executor: Any = None,
) -> StaggeredResult:
    r"""Group-time average treatment effects under staggered adoption (Callaway and Sant'Anna 2021).

    Parameters
    ----------
    data : pandas.DataFrame, path, pyarrow.dataset.Dataset or dask.dataframe.DataFrame
        Panel in long form, one row per unit and period (balanced, unless
        ``allow_unbalanced_panel``), or repeated cross-sections (``panel=False``), one row
        per observation. A path to a Parquet file or a folder of them, a
        ``pyarrow.dataset.Dataset`` or a Dask DataFrame is read out of core, in passes over shards of units
        sorted by unit then period (:mod:`evaluator.estimators.staggered_ooc`; covariates must
        be time-invariant there, and ``panel=False`` reads every row as its own observation, without a
        ``unit`` column). The numbers, bootstrap
        included, are those of the same rows in memory.
    outcome, unit, time, cohort : str
        Columns. ``cohort`` is the first treated period; never-treated units have
        0 or NaN. Cohorts after the last period (+ anticipation) count as never treated.
        ``unit`` is required for a panel and optional with ``panel=False`` (then only checked:
        ids repeating within a period raise, ids recurring across periods warn that the data
        are a panel).
    control : {"never", "not_yet"}
        Comparison group: never-treated units, or units not yet treated by
        ``max(t, base period) + anticipation`` (never-treated included).
    method : {"dr", "ipw", "reg", "unconditional"}
        With ``covariates``: doubly robust (Sant'Anna-Zhao 2020, DRDID ``drdid_panel``),
        normalised IPW (``std_ipw_did_panel``) or outcome regression (``reg_did_panel``).
        Without covariates all give the unconditional 2x2 DiD.
    covariates : list of str, optional
        Pre-treatment covariates, taken from the earlier of the two periods compared.
    anticipation : int
        Periods of anticipation: the base period for cohort g is the last period
        before ``g - anticipation``.
    base_period : {"varying", "universal"}
        ``"varying"``: pre-treatment cells compare t with t-1 (R ``did``'s default);
        ``"universal"``: every cell compares with ``g - anticipation - 1`` (that cell is 0).
    cluster : str, optional
        Column of clusters containing whole units: the influence function is summed
        within clusters, and the bootstrap draws one weight per cluster. With clusters and
        ``n_boot > 0`` p-values and pointwise intervals come from the restricted wild cluster
        bootstrap (test inversion, Webb weights below 12 clusters); analytic clustered intervals
        are normal (R-style) and warn below 20 clusters.
    weights : str, optional
        Column of sampling weights (R ``did``'s ``weightsname``): non-negative, one per unit,
        so constant within each unit across periods. They are normalised to mean 1 and
        enter everything: every ATT(g,t) (weighted means, or the weighted propensity score
        and outcome regression of DRDID with ``i.weights``), its influence function, the
        cohort shares that weight the aggregations (the weighted share of each cohort),
        and so the analytic standard errors, the multiplier bootstrap and the restricted
        wild cluster bootstrap. Only their ratios matter (scaling them changes nothing);
        a unit of weight 0 stays in the panel but counts in no mean. ``n_treated`` and
        ``n_control`` still count units. ``None``: every unit weighs the same.
        With ``panel=False`` they are per row (R did's ``weightsname`` with ``panel=FALSE``).
    panel : bool
        ``True`` (default): a panel of ``unit``. ``False``: repeated cross-sections, every
        row its own observation (R ``did``'s ``panel=FALSE``): each ATT(g,t) is estimated from
        the rows of its two periods by DRDID's repeated cross-section estimators
        (``drdid_rc``, ``std_ipw_did_rc``, ``reg_did_rc``; without covariates the difference of
        four means) with row-level influence functions; see
        :func:`evaluator.estimators.staggered_rc.staggered_did_rc`.
    allow_unbalanced_panel : bool
        ``False`` (default, as R ``did``): units not observed in every period are dropped with
        a :class:`~evaluator.errors.DroppedUnitsWarning` saying how many units and rows, also
        in ``info["unbalanced_dropped"]`` and the notes. ``True``: every observation is used, as
        R ``did`` does: the rows are estimated as repeated cross-sections and each row's
        influence function is summed within its unit (a balanced panel is estimated as a panel).
    n_boot : int
        Multiplier-bootstrap draws (Rademacher weights keyed to the unit or cluster ids, so
        the draws depend neither on the order of the rows nor on how they are read; see
        :mod:`evaluator.inference.keyed_draws`). With ``n_boot > 0`` the reported
        standard errors are bootstrap ones (IQR-based, as R ``did``) and the tables
        get simultaneous bands ``band_low``/``band_high``, which always contain the pointwise
        intervals (see Notes); ``0`` gives analytic only.
    seed : int or numpy.random.Generator, optional
        Makes the bootstrap exactly reproducible.
    alpha : float
        1 - confidence level.
    executor : distributed.Client, optional
        Where the passes over data read out of core run: ``None`` (default), in threads of this
        process (a Dask DataFrame: on its own scheduler); a ``dask.distributed`` Client (the
        cluster a batch runs on, ``pip install 'evaluator[cluster]'``), on its workers, in parts
        of contiguous rows, the same numbers to rounding (the workers must read the files at the
        same path). ``info["out_of_core"]`` records which, and how many parts. A pandas
        DataFrame is always estimated in this process.

    Returns
    -------
    StaggeredResult
        One row per (g,t); headline numbers are the simple aggregate. See
        :meth:`StaggeredResult.aggregate` and :attr:`StaggeredResult.pretest`.

    Raises
    ------
    DesignError
        A panel in which no unit is observed in every period (with
        ``allow_unbalanced_panel=False``), no never-treated units with ``control="never"``,
        constant or collinear covariates, a single cluster.
    DataError
        Missing columns or values, duplicate unit-period rows, a cohort that varies within a unit.
    WeightsError
        ``weights`` not numeric, missing, infinite, negative or varying within a unit (all such
        problems in one error, naming rows and units), or zero for every unit of a cohort or of
        the never-treated controls (naming them). A ``DataError`` and a ``DesignError``.
    ValueError
        A parameter outside its allowed values.

    Notes
    -----
    For cohort :math:`g`, period :math:`t` and base period :math:`b` (``b = g - \delta - 1`` for
    post-treatment cells; ``t - 1`` for pre-treatment cells with the varying base),
    with :math:`\Delta Y_i = Y_{it} - Y_{ib}`, :math:`G_i` the cohort indicator and :math:`C_i`
    the control indicator, the unconditional estimator is

    .. math:: \widehat{ATT}(g,t) = \bar{\Delta Y}_{G=1} - \bar{\Delta Y}_{C=1},

    with influence function (on the n units of the panel)
    :math:`\psi_i = n\,[G_i(\Delta Y_i - \bar{\Delta Y}_{G})/n_G - C_i(\Delta Y_i - \bar{\Delta Y}_{C})/n_C]`.
    With covariates the doubly-robust estimator is

    .. math:: \widehat{ATT}_{dr} = \frac{\sum_i G_i (\Delta Y_i - \hat m(X_i))}{\sum_i G_i}
       - \frac{\sum_i w_i(X_i)(\Delta Y_i - \hat m(X_i))}{\sum_i w_i(X_i)},\quad
       w_i = \frac{\hat p(X_i) C_i}{1 - \hat p(X_i)},

    with a logit propensity score :math:`\hat p` and a linear regression :math:`\hat m`
    of :math:`\Delta Y` on the controls; its influence function includes the estimation
    effect of both. Standard errors are :math:`\sqrt{\sum_i \psi_i^2}/n`, or with clusters
    :math:`\sqrt{\sum_c (\sum_{i\in c}\psi_i)^2}/n`. An aggregate
    :math:`\theta = \sum_{(g,t)} w_{gt} ATT(g,t)` with cohort-share weights
    :math:`w_{gt} \propto \hat P(G=g)` has influence function
    :math:`\sum w_{gt}\psi_{gt} + \sum ATT(g,t)\,\partial w_{gt}/\partial \hat P` (the "wif"
    term of R ``did``). The multiplier bootstrap draws
    :math:`\hat\theta^* - \hat\theta = n^{-1}\sum_i v_i\psi_i` with Rademacher weights :math:`v_i` (R did: Mammen);
    the uniform band uses the :math:`1-\alpha` quantile :math:`c` of
    :math:`\max_j |\hat\theta_j^*-\hat\theta_j|/se_j`, never below the pointwise normal critical
    value (R ``did``'s guard: with few clusters or one-unit cells the draws take few values and
    :math:`c` can fall below 1.96), and each row's band is the union of :math:`\hat\theta_j \pm c\,se_j`
    with its pointwise interval. That matters with ``cluster``: the pointwise interval then comes
    from the restricted wild cluster bootstrap, and a cell whose treated units lie in one cluster
    has a cluster-summed influence function of zero on that side, so its multiplier draws (and IQR
    standard error) understate the uncertainty the restricted bootstrap shows. Rows widened this way
    are named in a :class:`~evaluator.errors.FewClustersWarning`, a note and ``info["bands_widened"]``;
    the other rows keep ``est +- c se``. See :func:`evaluator.inference.bootstrap.simultaneous_band`.
    The pre-test is the Wald statistic :math:`\hat\theta_{pre}'\hat V_{pre}^{+}\hat\theta_{pre}`
    over pre-treatment cells (``t < g - anticipation``), chi-squared with rank(V) df.

    With sampling weights :math:`s_i` (``weights``, normalised to mean 1 over the units) every mean
    above is weighted: :math:`\bar{\Delta Y}_{G} = \sum_i s_i G_i \Delta Y_i / \sum_i s_i G_i`, and
    :math:`\psi_i = n\,[s_i G_i(\Delta Y_i - \bar{\Delta Y}_{G})/\sum_j s_j G_j - s_i C_i(\Delta Y_i -
    \bar{\Delta Y}_{C})/\sum_j s_j C_j]`; the covariate estimators are DRDID's with ``i.weights = s``
    (weighted logit and weighted least squares, normalised to mean 1 in each cell's sample), and
    :math:`\hat P(G=g) = n^{-1}\sum_i s_i 1\{G_i = g\}`, with influence function
    :math:`s_i 1\{G_i=g\} - \hat P(G=g)`, as R ``did``. The bootstraps draw from these influence
    functions, so they carry the weights too.

    Examples
    --------
    >>> from evaluator.data.simulate import sick_leave_sib
    >>> sim = sick_leave_sib(n_municipalities=10, employees_per_municipality=20, n_periods=24, waves=(7, 13), seed=1)
    >>> res = staggered_did(sim.data, outcome="sick_days", unit="employee", time="month",
    ...                     cohort="first_treated", n_boot=0)
    >>> res.att_gt.columns[:4].tolist()
    ['cohort', 'time', 'event_time', 'att']
    >>> dyn = res.aggregate("dynamic")
    >>> dyn.headline
    'overall'

    Sampling weights, one per employee (only their ratios matter):

    >>> data = sim.data.assign(w=1.0 + sim.data["employee"] % 3)
    >>> kw = dict(outcome="sick_days", unit="employee", time="month", cohort="first_treated", n_boot=0)
    >>> weighted = staggered_did(data, weights="w", **kw)
    >>> rescaled = staggered_did(data.assign(w=10 * data["w"]), weights="w", **kw)
    >>> bool(np.allclose(weighted.att_gt["att"], rescaled.att_gt["att"], rtol=0, atol=1e-12))
    True
    >>> bool(np.allclose(weighted.att_gt["att"], res.att_gt["att"]))
    False
    """
    one_column(outcome=outcome, unit=unit, time=time, cohort=cohort, cluster=cluster, weights=weights)
    choice("control", control, ("never", "not_yet"))
    choice("method", method, ("dr", "ipw", "reg", "unconditional"))
    choice("base_period", base_period, ("varying", "universal"))
    if not (isinstance(anticipation, (int, np.integer)) and anticipation >= 0):
        raise ValueError(f"anticipation={anticipation!r} is not allowed; use a non-negative integer")
    if not (isinstance(n_boot, (int, np.integer)) and n_boot >= 0):
        raise ValueError(f"n_boot={n_boot!r} is not allowed; use 0 (analytic only) or a positive integer")
    if not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise ValueError(f"alpha={alpha!r} is not allowed; use a number strictly between 0 and 1")
    covs = [covariates] if isinstance(covariates, str) else list(covariates or [])
    if method == "unconditional" and covs:
        raise ValueError("method='unconditional' takes no covariates; use method='dr', 'ipw' or 'reg'")
    for name, flag in (("panel", panel), ("allow_unbalanced_panel", allow_unbalanced_panel)):
        if not isinstance(flag, (bool, np.bool_)):
            raise ValueError(f"{name}={flag!r} is not allowed; use True or False")
    if unit is None and panel:
        raise ValueError(
            "unit is missing: a panel needs its unit column (unit=...); for repeated cross-sections, where every "
            "row is its own observation, pass panel=False"
        )
    if not isinstance(data, pd.DataFrame):
        # A Parquet file or folder, or a pyarrow Dataset: passes over shards of units, never the whole frame.
        from evaluator.estimators import staggered_ooc  # imported here: it imports us

        if staggered_ooc.is_out_of_core(data):
            return staggered_ooc.staggered_did_ooc(
                data,
                outcome=outcome,
                unit=unit,
                time=time,
                cohort=cohort,
                control=control,
                method=method,
                covariates=covs,
                anticipation=anticipation,
                base_period=base_period,
                cluster=cluster,
                weights=weights,
                panel=bool(panel),
                allow_unbalanced_panel=bool(allow_unbalanced_panel),
                n_boot=n_boot,
                seed=seed,
                alpha=alpha,
                executor=executor,
            )
    if not panel or allow_unbalanced_panel:
        # Repeated cross-sections, or an unbalanced panel used whole: the rows of each cell, as R did's
        # panel=FALSE path (a balanced panel stays on the panel path, as R did). Imported here: it imports us.
        from evaluator.estimators import staggered_rc

        if not panel or not staggered_rc.is_balanced_panel(data, unit=unit, time=time):
            return staggered_rc.staggered_did_rc(
                data,
                outcome=outcome,
                unit=unit,
                time=time,
                cohort=cohort,
                panel=bool(panel),
                control=control,
                method=method,
                covariates=covs,
                anticipation=anticipation,
                base_period=base_period,
                cluster=cluster,
                weights=weights,
                n_boot=n_boot,
                seed=seed,
                alpha=alpha,
            )

    panel = _prepare(
        data,
        outcome=outcome,
        unit=unit,
        time=time,
        cohort=cohort,
        covariates=covs,
        cluster=cluster,
        anticipation=anticipation,
        weights=weights,
    )
    notes = list(panel.notes)
    headline_note = (
        "estimate, SE, CI and p-value of the ATT(g,t) result are the simple aggregate (post-treatment cells "
        "weighted by cohort size); see .aggregate()"
    )
    if weights is not None:
        notes.append(weights_note(weights))
    if panel.x is not None:
        _check_covariates(panel.x, covs)
    times = panel.times
    y, G, x, cl, w = panel.y, panel.g, panel.x, panel.cl, panel.w
    unit_ids = panel.units

    # cohorts without a pre-treatment period are dropped
    early = np.isfinite(G) & (G <= times[0] + anticipation)
    if early.any():
        gs = np.unique(G[early])
        warnings.warn(
            f"dropped {int(early.sum())} units of cohorts {[_num(v) for v in gs]}: treated in or before the first "
            f"period {_num(times[0])} (+ anticipation {anticipation}), they have no pre-treatment period",
            DroppedUnitsWarning,
            stacklevel=2,
        )
        keep = ~early
        y, G, unit_ids = y[keep], G[keep], unit_ids[keep]
        x = None if x is None else x[keep]
        cl = None if cl is None else cl[keep]
        w = None if w is None else w[keep]
        notes.append(f"{int(early.sum())} units treated in the first period were dropped")
    never = ~np.isfinite(G)
    if control == "never" and not never.any():
        raise DesignError(
            'no never-treated units (cohort 0 or NaN) to compare with under control="never"; '
            'use control="not_yet" to compare with units not yet treated'
        )
    glist = np.unique(G[np.isfinite(G)])
    if not never.any():  # not_yet without never-treated: the last cohort only serves as control (as R did)
        latest = glist[-1]
        keep_t = times < latest - anticipation
        times = times[keep_t]
        y = y[:, keep_t]
        x = None if x is None else x[:, keep_t]
        glist = glist[:-1]
        notes.append(
            f"no never-treated units: periods from {_num(latest - anticipation)} on are dropped and cohort "
            f"{_num(latest)} serves only as a not-yet-treated control"
        )
    if len(glist) == 0:
        raise DesignError("no treated cohort with a pre-treatment period remains; nothing to estimate")
    n, T = y.shape
    if T < 2:
        raise DesignError("fewer than two periods remain; nothing to compare")
    if cl is not None:
        cl_codes, cl = np.unique(cl, return_inverse=True)
        n_clusters = len(cl_codes)
        assert panel.cluster_labels is not None
        cluster_ids = panel.cluster_labels[cl_codes]
        if n_clusters < 2:
            raise DesignError(f"cluster={cluster!r} has a single cluster; clustered inference needs at least 2")
    else:
        n_clusters = n
    sizes = {gv: int(np.sum(G == gv)) for gv in glist}
    if w is not None:
        _check_cohort_weights(w, G, glist, never if control == "never" else None, weights)
        w = w / w.mean()  # as R did (w / mean(w)); only the ratios of the weights matter
    positive = sizes if w is None else {gv: int(np.sum((G == gv) & (w > 0))) for gv in glist}
    small_sample_warnings(positive, cluster, n_clusters, n_boot, notes, stacklevel=3)

    est_method = "unconditional" if x is None else method
    tfirst = 0 if base_period == "universal" else 1
    Gmask = {gv: G == gv for gv in glist}
    # plan the cells first, so the influence functions can be written into one preallocated array
    plan: list[tuple[int, float, int, int, np.ndarray]] = []
    ctrl_cache: dict[float, np.ndarray] = {}
    ctrl_weight: dict[Any, float] = {}  # with weights: the weight of each control group, computed once
    ctrl_wsum: dict[int, float] = {}  # ... and of the control group of each planned cell (by its mask)
    skipped: list[str] = []
    for gi, gv in enumerate(glist):
        pret_g = int(np.nonzero(times + anticipation < gv)[0][-1])
        for cur in range(tfirst, T):
            base = pret_g if (times[cur] >= gv or base_period == "universal") else cur - 1
            if control == "never":
                ctrl = never
            else:
                cutoff = float(times[max(cur, base)] + anticipation)
                if cutoff not in ctrl_cache:
                    ctrl_cache[cutoff] = never | (G > cutoff)
                ctrl = ctrl_cache[cutoff] & ~Gmask[gv]
            if w is not None:
                ckey = "never" if control == "never" else (cutoff, gi)
                if ckey not in ctrl_weight:
                    ctrl_weight[ckey] = float(np.sum(w, where=ctrl))
            if base != cur and not (ctrl.any() if w is None else ctrl_weight[ckey] > 0):
                skipped.append(f"({_num(gv)},{_num(times[cur])})")
                continue
            plan.append((gi, gv, cur, base, ctrl))
            if w is not None:
                ctrl_wsum[id(ctrl)] = ctrl_weight[ckey]  # the mask lives in plan: its id stays unique
    if skipped:
        notes.append(skipped_cells_note(skipped, weighted=w is not None))
    if not plan:
        raise DesignError("no (cohort, period) cell has both treated and control units")
    k = len(plan)
    two_t: dict[int, np.ndarray] = {}
    two_c: dict[int, np.ndarray] = {}
    positive_w = None if w is None else w > 0  # units of weight 0 count in no mean and in no cluster count
    for gi, gv, _, _, ctrl in plan:  # shared masks: each computed once
        if gi not in two_t:
            two_t[gi] = _two_clusters(Gmask[gv] if positive_w is None else Gmask[gv] & positive_w, cl)
        if id(ctrl) not in two_c:
            two_c[id(ctrl)] = _two_clusters(ctrl if positive_w is None else ctrl & positive_w, cl)
    cell_clusters = tuple((two_t[gi], two_c[id(ctrl)]) for gi, _, _, _, ctrl in plan)
    # cohort shares P(G=g): with weights the weighted share, mean(w 1{G=g}) with mean(w) = 1 (R did's pg)
    cohort_w = sizes if w is None else {gv: float(np.sum(w, where=Gmask[gv])) for gv in glist}
    pg = np.array([cohort_w[gv] / n for gv in glist])
    # base columns: cell influence functions, then cohort-share influence functions w 1{G=g} - P(G=g)
    Bcols = np.zeros((n, k + len(glist)))
    att = np.zeros(k)
    cells: list[dict[str, Any]] = []
    trimmed_total = 0
    fmask = {gv: m.astype(np.float64) if w is None else w * m for gv, m in Gmask.items()}  # w 1{G=g}
    # Time-invariant covariates make the covariate models of a cohort's cells identical (never-treated controls).
    x_constant = x is not None and bool(np.all(x == x[:, :1, :]))
    fits_cache: dict[tuple[Any, ...], dict[str, Any]] = {}
    for j, (gi, gv, cur, base, ctrl) in enumerate(plan):
        treated = Gmask[gv]
        n_t, n_c = sizes[gv], int(ctrl.sum())
        cells.append(
            {"cohort": gv, "time": times[cur], "gidx": gi, "n_treated": n_t, "n_control": n_c, "base": times[base]}
        )
        if base == cur:  # universal base period: normalised to zero
            continue
        dy = y[:, cur] - y[:, base]
        if est_method == "unconditional":
            # weighted means with sampling weights (sums of weights in place of the counts n_t, n_c)
            tf = fmask[gv]
            cf = ctrl.astype(np.float64) if w is None else w * ctrl
            s_t = n_t if w is None else cohort_w[gv]
            s_c = n_c if w is None else ctrl_wsum[id(ctrl)]
            mt = float(np.sum(tf * dy)) / s_t  # elementwise: no BLAS threads for a 1-D dot
            mc = float(np.sum(cf * dy)) / s_c
            att[j] = mt - mc
            Bcols[:, j] = (n / s_t) * tf * (dy - mt) - (n / s_c) * cf * (dy - mc)
        else:
            sub = treated | ctrl
            n1 = int(sub.sum())
            period = None if x_constant else min(base, cur)
            fits = fits_cache.setdefault((gi, period, hash(sub.tobytes())), {})
            if "X" not in fits:
                fits["X"] = np.column_stack([np.ones(n1), x[sub, period if period is not None else 0, :]])
                fits["d"] = treated[sub].astype(float)
                fits["iw"] = None if w is None else w[sub] / w[sub].mean()  # DRDID's i.weights: mean 1
            X = fits["X"]
            try:
                att_j, inf, trimmed = _att_cov(dy[sub], fits["d"], X, est_method, fits, fits["iw"])
            except (np.linalg.LinAlgError, DesignError) as exc:
                raise DesignError(
                    f"cannot fit the covariate models for ATT({_num(gv)},{_num(times[cur])}): {exc}; "
                    f"covariates {covs} are (nearly) collinear within its {n_t} treated and {n_c} control units"
                ) from None
            trimmed_total += trimmed
            att[j] = att_j
            Bcols[sub, j] = inf * (n / n1)
    if trimmed_total:
        warnings.warn(
            f"{trimmed_total} control observations (summed over ATT(g,t) cells) had propensity scores >= "
            f"{PS_TRIM_LEVEL} and were given weight zero (DRDID trimming); overlap is weak",
            TrimmingWarning,
            stacklevel=2,
        )
        notes.append(f"{trimmed_total} control observations trimmed for propensity scores >= {PS_TRIM_LEVEL}")
    for gi, gv in enumerate(glist):
        Bcols[:, k + gi] = fmask[gv] - pg[gi]
    if cl is not None:
        S = np.empty((n_clusters, Bcols.shape[1]))
        for j in range(Bcols.shape[1]):
            S[:, j] = np.bincount(cl, weights=Bcols[:, j], minlength=n_clusters)
    else:
        S = Bcols
    sigma = _crossprod(S) / n**2
    draws = None
    if n_boot > 0:
        # signs keyed to the ids of the units (or clusters): the out-of-core passes draw the same
        draws = _multiplier_draws(S, bootstrap_keys(unit_ids if cl is None else cluster_ids), n_boot, seed, n)
    boot_df = None
    wcr = None
    if cl is not None and n_boot > 0:
        # Few-cluster inference: restricted wild cluster bootstrap of every row (see _wcr_columns). With
        # weights, psi is the weighted influence function, whose pseudo-residuals the bootstrap re-weights
        # by cluster (as for doubly-robust cells); units of weight 0 are in neither group.
        treated_m = np.column_stack([Gmask[gv] for (_, gv, _, _, _) in plan])
        control_m = np.column_stack([ctrl for (_, _, _, _, ctrl) in plan])
        if positive_w is not None:
            treated_m &= positive_w[:, None]
            control_m &= positive_w[:, None]
        # per (cluster, cell) counts and residual sums: all the restricted bootstrap of any aggregate needs
        wcr = wcr_spec(cell_cluster_sums(Bcols[:, :k], treated_m, control_m, cl), n_boot, seed)

    cells_df = pd.DataFrame(cells)
    scale = float(np.nanstd(panel.y)) if panel.y.size else 1.0
    se_an = analytic_se(sigma, k, scale)
    table, crit, bands_widened, inference = cell_table(
        cells_df,
        att,
        se_an,
        draws=draws,
        wcr=wcr,
        alpha=alpha,
        scale=scale,
        cell_clusters=cell_clusters,
        n_boot=n_boot,
        cluster=cluster,
        n_clusters=n_clusters,
        level="unit",
        analytic=panel_analytic_words(cluster, n_clusters),
        notes=notes,
        boot_df=boot_df,
        stacklevel=3,
    )

    # pre-test: every pre-treatment ATT(g,t) = 0
    pretest, pretest_note = _pretest(cells_df, att, sigma, se_an, anticipation, cluster, n_clusters)

    info: dict[str, Any] = {
        "n_units": n,
        "n_treated": int(np.isfinite(G).sum()),
        "n_control": int(never.sum()),
        "n_periods": int(T),
        "n_cohorts": int(len(glist)),
        "control": control,
        "method": est_method,
        "base_period": base_period,
        "anticipation": anticipation,
        "covariates": covs,
        "cohort_sizes": {_num(gv): s for gv, s in sizes.items()},
        "n_boot": n_boot,
        "crit_value": crit,
        "boot_df": boot_df,
    }
    if bands_widened:
        info["bands_widened"] = bands_widened
    if cluster is not None:
        info["n_clusters"] = n_clusters
        info["cluster"] = cluster
    if panel.dropped is not None:
        info["unbalanced_dropped"] = panel.dropped  # units (and rows) dropped to balance the panel
    if weights is not None:
        info["weights"] = weights
        info["cohort_weights"] = {_num(gv): float(p) for gv, p in zip(glist, pg, strict=True)}
    if pretest is not None:
        info["pretest"] = pretest
    if pretest_note is not None:
        info["pretest_unavailable"] = pretest_note
        notes.append(pretest_note)
    res = StaggeredResult(
        estimator=f"Callaway-Sant'Anna ATT(g,t), {METHOD_NAMES[est_method]}, "
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
        _draws=draws,
        _cells=cells_df,
        _pg=pg,
        _groups=glist,
        _t_range=(float(times[0]), float(times[-1])),
        _wcr=wcr,
        _scale=scale,
        _cell_clusters=cell_clusters,
    )
    return _with_simple(res)
