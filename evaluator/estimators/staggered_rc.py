"""Callaway-Sant'Anna ATT(g,t) from repeated cross-sections and unbalanced panels (R ``did``'s ``panel=FALSE`` path).

:func:`staggered_did_rc` is what :func:`evaluator.staggered_did` runs with ``panel=False``
(repeated cross-sections: every row its own observation) or with
``allow_unbalanced_panel=True`` on a panel in which some units miss periods. Each
ATT(g,t) compares cohort ``g`` with its controls between period ``t`` and the base
period using the *rows* of the two periods, by the repeated cross-section estimators of
Sant'Anna and Zhao (2020) as R ``DRDID`` implements them: ``drdid_rc`` (the locally
efficient doubly robust estimator, what ``att_gt(est_method="dr", panel=FALSE)`` calls),
``std_ipw_did_rc`` and ``reg_did_rc``. Without covariates all three reduce to the
difference of four (weighted) means, computed here from group sums.

Each row's influence function is scaled as R ``did``'s ``compute.att_gt`` does (``n/n1``,
``n`` observations in all, ``n1`` rows in the cell) and summed within the observation it
belongs to: the row itself for repeated cross-sections, the unit for an unbalanced panel
(R keeps the unit ids for exactly this). The result is a
:class:`~evaluator.estimators.staggered.StaggeredResult` carrying the same fields as the
panel estimator (influence-function matrix, cohort shares of the observations, clusters),
so its aggregations, multiplier bootstrap, bands and pre-test are the panel's code.

The numbers reproduce R ``did`` 2.3.0 / 2.5.1 with ``DRDID`` 1.2.3 on ``mpdta``
(``../shared/reference/did_more.md``, cases A-D); conventions are in ``docs/staggered.md``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaluator.data.validate import duplicate_rows, where_units
from evaluator.errors import (
    DataError,
    DesignError,
    DroppedUnitsWarning,
    EvaluatorWarning,
    MissingPeriodWarning,
    Problem,
    TrimmingWarning,
    format_examples,
)
from evaluator.estimators.design import check_frame, check_weights
from evaluator.estimators.logit import fit_logit, weighted_logit_probabilities
from evaluator.estimators.staggered import (
    METHOD_NAMES,
    StaggeredResult,
    _check_cohort_weights,
    _check_covariates,
    _crossprod,
    _multiplier_draws,
    _num,
    _pretest,
    _two_clusters,
    _with_simple,
    analytic_se,
    cell_table,
    small_sample_warnings,
    wcr_spec,
)
from evaluator.inference.bootstrap import CellClusterSums, cell_cluster_sums
from evaluator.inference.keyed_draws import bootstrap_keys
from evaluator.policy import PS_TRIM_LEVEL

__all__ = ["is_balanced_panel", "staggered_did_rc"]


# -- the observations ----------------------------------------------------------------------------------------------
@dataclass
class _Rows:
    """Rows of the data as arrays, and the observation (row or unit) each belongs to."""

    y: np.ndarray  # outcome per row
    tcode: np.ndarray  # period index per row (into times)
    g: np.ndarray  # cohort per row (inf = never treated)
    x: np.ndarray | None  # covariates per row (rows x p)
    w: np.ndarray | None  # sampling weight per row (None: all 1)
    obs: np.ndarray  # observation code per row, 0..n-1 (the row for cross-sections, the unit for a panel)
    n: int  # number of observations
    obs_g: np.ndarray  # cohort per observation
    obs_w: np.ndarray | None  # weight per observation (a unit's mean weight)
    cl_row: np.ndarray | None  # cluster code per row
    cl_obs: np.ndarray | None  # cluster code per observation
    n_clusters: int
    obs_ids: np.ndarray  # id of each observation (its unit, or its row in the data): keys the bootstrap signs
    cluster_ids: np.ndarray | None  # the cluster of each cluster code
    times: np.ndarray
    notes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)


def is_balanced_panel(data: Any, *, unit: str | None, time: str) -> bool:
    """Whether ``data`` has as many rows as units times periods (a balanced panel, if no row repeats).

    The cheap test :func:`evaluator.staggered_did` makes before it picks the panel estimator
    for ``allow_unbalanced_panel=True`` (R ``did`` does the same: a balanced panel is
    estimated as a panel). Frames it cannot judge (not a DataFrame, columns missing) count as
    balanced, so the panel path reports what is wrong with them.

    Examples
    --------
    >>> d = pd.DataFrame({"id": [1, 1, 2, 2], "t": [1, 2, 1, 2]})
    >>> is_balanced_panel(d, unit="id", time="t"), is_balanced_panel(d.iloc[:3], unit="id", time="t")
    (True, False)
    """
    if not isinstance(data, pd.DataFrame) or unit is None or unit not in data or time not in data:
        return True
    return len(data) == data[unit].nunique() * data[time].nunique()


def _rows(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str | None,
    time: str,
    cohort: str,
    covariates: list[str],
    cluster: str | None,
    weights: str | None,
    panel: bool,
    control: str,
    anticipation: int,
) -> _Rows:
    roles = {"outcome": outcome, "time": time, "cohort": cohort}
    if unit is not None:
        roles["unit"] = unit
    if cluster is not None:
        roles["cluster"] = cluster
    if weights is not None:
        roles["weights"] = weights
    ids = [unit] if unit is not None else []
    cls = [cluster] if cluster is not None else []
    check_frame(
        data,
        roles=roles,
        covariates=covariates,
        complete=[outcome, time, *ids, *covariates, *cls],
        numeric=[outcome, time, cohort, *covariates],
        finite=[outcome, time, *covariates],
    )
    notes: list[str] = []
    info: dict[str, Any] = {}
    y = data[outcome].to_numpy(dtype=float)
    tt = data[time].to_numpy(dtype=float)
    g = data[cohort].to_numpy(dtype=float)
    g = np.where(np.isnan(g) | (g == 0), np.inf, g)
    ucode = None
    uniq_units: Any = None
    if unit is not None:
        ucode, uniq_units = pd.factorize(data[unit], sort=True)
        ucode = ucode.astype(np.int64)
        tcode0, _ = pd.factorize(tt, sort=True)
        key = ucode * (int(tcode0.max()) + 1 if len(tcode0) else 1) + tcode0
        # sorting and comparing neighbours: np.unique on ~1e6 distinct keys is ~50x slower here
        ks = np.sort(key)
        dup = bool(len(ks) > 1 and (ks[1:] == ks[:-1]).any())
        repeats = bool(len(uniq_units) < len(ucode))  # some unit has several rows (codes are dense)
        if panel:
            if dup:
                problems = duplicate_rows(data, [unit, time])
                p = problems[0]
                problems[0] = Problem(
                    p.what,
                    column=p.column,
                    where=p.where,
                    hint=p.hint + "; if the rows are different individuals in each period (repeated "
                    "cross-sections), pass panel=False",
                )
                raise DataError(problems)
            gmin = pd.Series(g).groupby(ucode).agg(["min", "max"]).to_numpy()
            varies = np.flatnonzero(gmin[:, 0] != gmin[:, 1])
            if varies.size:
                raise DataError(
                    f"column {cohort!r} (first treated period) varies within {where_units(uniq_units[varies])}; "
                    "it must be constant for each unit"
                )
        elif dup:
            p = duplicate_rows(data, [unit, time])[0]
            raise DataError(
                [
                    Problem(
                        "with panel=False the unit column must identify single rows, but some ids repeat within a "
                        "period: " + p.what.split(": ", 1)[1],
                        column=p.column,
                        where=p.where,
                        hint="repeated cross-sections need no unit column (leave unit out: every row is its own "
                        "observation); if the column is a group such as a municipality, pass it as cluster=; if the "
                        "data are a panel with duplicate rows, keep one row per unit and period and use panel=True",
                    )
                ]
            )
        elif repeats:
            n_units = len(uniq_units)
            msg = (
                f"panel=False, but column {unit!r} identifies {n_units} units observed in several periods: the data "
                "are a panel. They are estimated as repeated cross-sections (every row its own observation, as R did "
                "does with panel=FALSE), whose standard errors ignore the correlation of a unit's rows over time; "
                "use panel=True (with allow_unbalanced_panel=True if units miss periods) to use it"
            )
            warnings.warn(msg, EvaluatorWarning, stacklevel=4)
            notes.append(f"panel=False on a panel ({n_units} units in several periods): rows treated as independent")
    w = None
    if weights is not None:
        w = check_weights(
            data,
            weights,
            **({"unit": unit, "unit_codes": ucode, "unit_labels": np.asarray(uniq_units)} if panel else {}),
        )
    x = np.column_stack([data[c].to_numpy(dtype=float) for c in covariates]) if covariates else None
    cl_all = None
    if cluster is not None:
        cl_all, cl_labels = pd.factorize(data[cluster], sort=True)
        cl_all = cl_all.astype(np.int64)
        if panel:
            cmm = pd.Series(cl_all).groupby(ucode).agg(["min", "max"]).to_numpy()
            cvar = np.flatnonzero(cmm[:, 0] != cmm[:, 1])
            if cvar.size:
                raise DataError(
                    f"cluster column {cluster!r} varies within {where_units(uniq_units[cvar])}; "
                    "clusters must contain whole units"
                )

    times = np.sort(pd.unique(tt))
    late = np.isfinite(g) & (g > times[-1] + anticipation)
    if late.any():
        g = np.where(late, np.inf, g)
        what = "units" if panel else "observations"
        n_late = len(np.unique(ucode[late])) if panel else int(late.sum())
        notes.append(f"{n_late} {what} first treated after the last period are used as never treated")

    keep = np.ones(len(y), dtype=bool)
    early = np.isfinite(g) & (g <= times[0] + anticipation)
    if early.any():
        gs = [_num(v) for v in np.unique(g[early])]
        if panel:
            n_units = len(np.unique(ucode[early]))
            msg = f"dropped {n_units} units ({int(early.sum())} rows) of cohorts {gs}"
        else:
            msg = f"dropped {int(early.sum())} observations of cohorts {gs}"
        warnings.warn(
            f"{msg}: treated in or before the first period {_num(times[0])} (+ anticipation {anticipation}), they "
            "have no pre-treatment period",
            DroppedUnitsWarning,
            stacklevel=4,
        )
        notes.append(f"{msg}: treated in the first period")
        keep &= ~early
    never_any = (~np.isfinite(g) & keep).any()
    if control == "never" and not never_any:
        raise DesignError(
            'no never-treated observations (cohort 0 or NaN) to compare with under control="never"; '
            'use control="not_yet" to compare with observations not yet treated'
        )
    if not never_any:  # not_yet without never-treated: the last cohort only serves as control (as R did)
        latest = float(np.max(g[keep]))
        late_rows = keep & (tt >= latest - anticipation)
        if late_rows.any():
            notes.append(
                f"no never-treated observations: periods from {_num(latest - anticipation)} on are dropped "
                f"({int(late_rows.sum())} rows) and cohort {_num(latest)} serves only as a not-yet-treated control"
            )
        keep &= ~late_rows
    row_ids = np.arange(len(y), dtype=np.int64)  # a cross-section's observations are its rows
    if not keep.all():
        y, tt, g, row_ids = y[keep], tt[keep], g[keep], row_ids[keep]
        x = None if x is None else x[keep]
        w = None if w is None else w[keep]
        cl_all = None if cl_all is None else cl_all[keep]
        ucode = None if ucode is None else ucode[keep]
    if len(y) == 0:
        raise DesignError("no observations remain; nothing to estimate")
    tcode, times = pd.factorize(tt, sort=True)  # hashing: 3x faster than np.unique's sort at 1e6 rows
    tcode = tcode.astype(np.int64)

    if panel:
        present, obs = np.unique(ucode, return_inverse=True)
        obs = obs.astype(np.int64)
        obs_ids = np.asarray(uniq_units)[present]
        first = np.unique(obs, return_index=True)[1]  # the first row of each unit
        n = len(first)
        obs_g = g[first]
        obs_w = None if w is None else np.bincount(obs, weights=w, minlength=n) / np.bincount(obs, minlength=n)
        cl_obs = None if cl_all is None else cl_all[first]
    else:
        obs = np.arange(len(y), dtype=np.int64)
        obs_ids = row_ids
        n = len(y)
        obs_g = g
        obs_w = w
        cl_obs = cl_all
    n_clusters = 0
    cl_row = None
    cluster_ids = None
    if cl_all is not None:
        codes, cl_obs = np.unique(cl_obs, return_inverse=True)
        n_clusters = len(codes)
        cl_row = cl_obs[obs]
        cluster_ids = np.asarray(cl_labels)[codes]
    return _Rows(
        y=y,
        tcode=tcode,
        g=g,
        x=x,
        w=w,
        obs=obs,
        n=n,
        obs_g=obs_g,
        obs_w=obs_w,
        cl_row=cl_row,
        cl_obs=cl_obs,
        obs_ids=obs_ids,
        cluster_ids=cluster_ids,
        n_clusters=n_clusters,
        times=times.astype(float),
        notes=notes,
        info=info,
    )


# -- 2x2 estimators (DRDID repeated cross-section versions) ----------------------------------------------------------
# Each cell's estimate and influence function are formed in stages, so that out of core
# (:mod:`evaluator.estimators.staggered_ooc`) the same formulas run on the rows of a pass's blocks: the
# groups' sums (:func:`rc_group_sums`), their regressions (:func:`rc_regressions`), the propensity logit, the
# sums at its scores (:func:`rc_score_sums`), the parameters (:func:`rc_parameters`) and each row's influence
# (:func:`rc_influence`). Every sum is over the cell's rows, so the blocks' sums add up to the whole's.

#: The four groups of a cell's rows, in the order of :func:`rc_group_sums`: controls of the earlier and later
#: period, treated of the earlier and later period.
RC_GROUPS = ("c0", "c1", "t0", "t1")
_GROUP_WORDS = {
    "c0": "control rows of the earlier period",
    "c1": "control rows of the later period",
    "t0": "treated rows of the earlier period",
    "t1": "treated rows of the later period",
}
#: The groups whose outcome regressions each method fits.
_REGRESSIONS = {"reg": ("c0", "c1"), "dr": RC_GROUPS, "ipw": ()}


def _group_masks(post: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, ...]:
    pre, c = 1.0 - post, 1.0 - d
    return c * pre, c * post, d * pre, d * post


def rc_group_sums(y: np.ndarray, post: np.ndarray, d: np.ndarray, X: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Per group of :data:`RC_GROUPS`, ``X' W [X | y]`` over its rows: a (4, q, q + 1) array.

    Column 0 of ``X`` is the intercept, so ``[k, 0, 0]`` is the group's weight, ``[k, 0, q]`` its weighted outcome
    sum and ``[k, :, 0]`` its weighted covariate sums.
    """
    Xy = np.column_stack([X, y])
    return np.stack([(X.T * (w * m)) @ Xy for m in _group_masks(post, d)])


@dataclass
class RcScoreSums:
    """Sums over a cell's rows at the propensity scores: per control group (earlier, later period) ``X' V [X | y]``
    with ``V`` the trimmed odds times the weight, the logit's information ``X' diag(w ps (1 - ps)) X``, and the
    control rows trimmed."""

    odds: np.ndarray  # (2, q, q + 1)
    info: np.ndarray  # (q, q)
    trimmed: int

    def __add__(self, other: RcScoreSums) -> RcScoreSums:
        return RcScoreSums(self.odds + other.odds, self.info + other.info, self.trimmed + other.trimmed)


def _odds(ps: np.ndarray, d: np.ndarray) -> np.ndarray:
    """The controls' trimmed odds ``ps / (1 - ps)`` (0 where ``ps`` reaches the trimming level; 0 for treated rows)."""
    return np.where((d == 0) & (ps < PS_TRIM_LEVEL), ps / (1 - ps), 0.0)


def rc_score_sums(
    y: np.ndarray, post: np.ndarray, d: np.ndarray, X: np.ndarray, w: np.ndarray, ps: np.ndarray
) -> RcScoreSums:
    """:class:`RcScoreSums` of some rows of a cell at their propensity scores ``ps``."""
    v = w * _odds(ps, d)
    Xy = np.column_stack([X, y])
    odds = np.stack([(X.T * (v * m)) @ Xy for m in (1.0 - post, post)])
    info = (X.T * (ps * (1 - ps) * w)) @ X
    return RcScoreSums(odds, info, int(((d == 0) & (ps >= PS_TRIM_LEVEL)).sum()))


def rc_regressions(G: np.ndarray, n: int, method: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each group's outcome regression the method needs, from :func:`rc_group_sums` over the cell's ``n`` rows:
    ``{group: (coefficients, inverse of X'WX / n)}``; a singular design raises :class:`DesignError`."""
    q = G.shape[1]
    out = {}
    for key in _REGRESSIONS[method]:
        XtX = G[RC_GROUPS.index(key), :, :q]
        if not np.all(np.isfinite(XtX)) or np.linalg.cond(XtX) > 1e14:
            raise DesignError(f"the outcome regression of the {_GROUP_WORDS[key]} is singular")
        out[key] = (np.linalg.solve(XtX, G[RC_GROUPS.index(key), :, q]), np.linalg.inv(XtX / n))
    return out


def rc_parameters(
    G: np.ndarray,
    n: int,
    fits: dict[str, tuple[np.ndarray, np.ndarray]],
    score: RcScoreSums | None,
    method: str,
) -> dict[str, Any]:
    """The ATT (``"att"``) and what each row's influence function needs, from the cell's sums (DRDID's
    ``reg_did_rc``, ``std_ipw_did_rc`` or ``drdid_rc`` term by term)."""
    q = G.shape[1]
    S = {k: G[i, 0, 0] for i, k in enumerate(RC_GROUPS)}  # weights
    SY = {k: G[i, 0, q] for i, k in enumerate(RC_GROUPS)}  # weighted outcome sums
    SX = {k: G[i, :, 0] for i, k in enumerate(RC_GROUPS)}  # weighted covariate sums
    S_d, SX_d = S["t0"] + S["t1"], SX["t0"] + SX["t1"]
    P: dict[str, Any] = {"method": method, "n": n}
    if method == "reg":
        (b0, inv0), (b1, inv1) = fits["c0"], fits["c1"]
        e_t1, e_t0 = SY["t1"] / S["t1"], SY["t0"] / S["t0"]
        e_c = float(SX_d @ (b1 - b0)) / S_d
        md = S_d / n
        M1 = SX_d / n
        P.update(
            att=float((e_t1 - e_t0) - e_c),
            e_t1=e_t1,
            e_t0=e_t0,
            e_c=e_c,
            m_t1=S["t1"] / n,
            m_t0=S["t0"] / n,
            md=md,
            db=b1 - b0,
            # the regressions' linear representations: w_k (y - X b_k) X'u_k
            lin={"c1": (b1, -(inv1 @ M1) / md), "c0": (b0, (inv0 @ M1) / md)},
        )
        return P
    assert score is not None
    VS = {k: score.odds[i, 0, 0] for i, k in enumerate(("c0", "c1"))}
    VSY = {k: score.odds[i, 0, q] for i, k in enumerate(("c0", "c1"))}
    VSX = {k: score.odds[i, :, 0] for i, k in enumerate(("c0", "c1"))}
    VXY = {k: score.odds[i, :, q] for i, k in enumerate(("c0", "c1"))}
    VXX = {k: score.odds[i, :, :q] for i, k in enumerate(("c0", "c1"))}
    m = {"t1": S["t1"] / n, "t0": S["t0"] / n, "c1": VS["c1"] / n, "c0": VS["c0"] / n}
    Hn = np.linalg.inv(score.info) * n
    P.update(m=m, Hn=Hn)
    if method == "ipw":
        a = {"t1": SY["t1"] / S["t1"], "t0": SY["t0"] / S["t0"], "c1": VSY["c1"] / VS["c1"], "c0": VSY["c0"] / VS["c0"]}
        M2 = (VXY["c1"] - a["c1"] * VSX["c1"]) / n / m["c1"] - (VXY["c0"] - a["c0"] * VSX["c0"]) / n / m["c0"]
        P.update(att=float((a["t1"] - a["t0"]) - (a["c1"] - a["c0"])), a=a, ps_dir=Hn @ M2)
        return P
    b = {k: fits[k][0] for k in RC_GROUPS}
    inv = {k: fits[k][1] for k in RC_GROUPS}
    a = {
        "t1": (SY["t1"] - SX["t1"] @ b["c1"]) / S["t1"],
        "t0": (SY["t0"] - SX["t0"] @ b["c0"]) / S["t0"],
        "c1": (VSY["c1"] - VSX["c1"] @ b["c1"]) / VS["c1"],
        "c0": (VSY["c0"] - VSX["c0"] @ b["c0"]) / VS["c0"],
    }
    d1, d0 = b["t1"] - b["c1"], b["t0"] - b["c0"]
    md = S_d / n
    a_d1, a_dt1 = float(SX_d @ d1) / S_d, float(SX["t1"] @ d1) / S["t1"]
    a_d0, a_dt0 = float(SX_d @ d0) / S_d, float(SX["t0"] @ d0) / S["t0"]
    att = (a["t1"] - a["t0"]) - (a["c1"] - a["c0"]) + (a_d1 - a_dt1) - (a_d0 - a_dt0)
    # mean_x(w_c (r - a_c)) of the controls: r = y - X b_c
    M2 = ((VXY["c1"] - VXX["c1"] @ b["c1"]) / n - a["c1"] * VSX["c1"] / n) / m["c1"] - (
        (VXY["c0"] - VXX["c0"] @ b["c0"]) / n - a["c0"] * VSX["c0"] / n
    ) / m["c0"]
    M1_post, M1_pre = -SX["t1"] / S["t1"], -SX["t0"] / S["t0"]
    M3_post, M3_pre = -VSX["c1"] / VS["c1"], -VSX["c0"] / VS["c0"]
    mom_post, mom_pre = SX_d / S_d - SX["t1"] / S["t1"], SX_d / S_d - SX["t0"] / S["t0"]
    P.update(
        att=float(att),
        a=a,
        b=b,
        d1=d1,
        d0=d0,
        md=md,
        a_d=(a_d1, a_dt1, a_d0, a_dt0),
        ps_dir=Hn @ M2,
        # the four regressions' linear representations, each term w_k (y - X b_k) X'u_k collected by group
        lin={
            "c1": (b["c1"], inv["c1"] @ (M1_post - M3_post - mom_post)),
            "c0": (b["c0"], inv["c0"] @ (M1_pre - M3_pre + mom_pre)),
            "t1": (b["t1"], inv["t1"] @ mom_post),
            "t0": (b["t0"], -(inv["t0"] @ mom_pre)),
        },
    )
    return P


def rc_influence(
    P: dict[str, Any],
    y: np.ndarray,
    post: np.ndarray,
    d: np.ndarray,
    X: np.ndarray,
    w: np.ndarray,
    ps: np.ndarray | None,
) -> np.ndarray:
    """Each row's influence function (cell scale: ``att - truth ~ mean``) from :func:`rc_parameters`."""
    method = P["method"]
    masks = dict(zip(RC_GROUPS, _group_masks(post, d), strict=True))
    out = np.zeros(len(y))
    for key, (bk, uk) in P.get("lin", {}).items():
        out += w * masks[key] * (y - X @ bk) * (X @ uk)
    if method == "reg":
        out += w * masks["t1"] * (y - P["e_t1"]) / P["m_t1"] - w * masks["t0"] * (y - P["e_t0"]) / P["m_t0"]
        out -= w * d * (X @ P["db"] - P["e_c"]) / P["md"]
        return out
    assert ps is not None
    v = w * _odds(ps, d)
    m, a = P["m"], P["a"]
    out -= w * (d - ps) * (X @ P["ps_dir"])
    if method == "ipw":
        r = y
    else:
        r = y - np.where(post == 1, X @ P["b"]["c1"], X @ P["b"]["c0"])
    out += w * masks["t1"] * (r - a["t1"]) / m["t1"] - w * masks["t0"] * (r - a["t0"]) / m["t0"]
    out -= v * post * (r - a["c1"]) / m["c1"] - v * (1.0 - post) * (r - a["c0"]) / m["c0"]
    if method == "dr":
        a_d1, a_dt1, a_d0, a_dt0 = P["a_d"]
        x1, x0 = X @ P["d1"], X @ P["d0"]
        out += (w * d * (x1 - a_d1) / P["md"] - w * masks["t1"] * (x1 - a_dt1) / m["t1"]) - (
            w * d * (x0 - a_d0) / P["md"] - w * masks["t0"] * (x0 - a_dt0) / m["t0"]
        )
    return out


def _ps(X: np.ndarray, d: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Logit propensity score, weighted as R ``glm(weights=)`` when the weights differ (equal weights: the
    unweighted fit, so weights of 1 give the unweighted numbers exactly)."""
    ps = weighted_logit_probabilities(X, d, w) if np.ptp(w) > 0 else fit_logit(X, d, arithmetic="direct").predict(X)
    return np.minimum(ps, 1 - 1e-6)


def _att_rc(
    y: np.ndarray, post: np.ndarray, d: np.ndarray, X: np.ndarray, w: np.ndarray, method: str
) -> tuple[float, np.ndarray, int]:
    """ATT and its influence function (cell scale: ``att - truth ~ mean(inf)``) by DRDID's ``drdid_rc``,
    ``std_ipw_did_rc`` or ``reg_did_rc``, on the rows of one cell: outcome ``y``, ``post`` = row of the
    later-compared period, ``d`` = treated cohort, design ``X`` (intercept first), weights ``w``.

    Returns the ATT, the influence function and the number of trimmed control rows.

    Examples
    --------
    Without covariates every method is the difference of four means:

    >>> rng = np.random.default_rng(0)
    >>> d = np.repeat([1.0, 0.0], 50); post = np.tile([0.0, 1.0], 50); y = rng.normal(size=100) + d * post
    >>> X = np.ones((100, 1)); w = np.ones(100)
    >>> means = [y[(d == a) & (post == b)].mean() for a in (1, 0) for b in (1, 0)]
    >>> did = (means[0] - means[1]) - (means[2] - means[3])
    >>> [bool(abs(_att_rc(y, post, d, X, w, m)[0] - did) < 1e-12) for m in ("dr", "ipw", "reg")]
    [True, True, True]
    """
    n = len(y)
    w = w / w.mean()
    G = rc_group_sums(y, post, d, X, w)
    fits = rc_regressions(G, n, method)
    ps = score = None
    if method in ("dr", "ipw"):
        ps = _ps(X, d, w)
        score = rc_score_sums(y, post, d, X, w, ps)
    P = rc_parameters(G, n, fits, score, method)
    return P["att"], rc_influence(P, y, post, d, X, w, ps), 0 if score is None else score.trimmed


# -- the estimator ---------------------------------------------------------------------------------------------------
def report_skipped_cells(
    missing: dict[tuple[float, float], list[str]],
    no_control: list[str],
    plan: list[Any],
    notes: list[str],
    *,
    weighted: bool = False,
    stacklevel: int = 3,
) -> None:
    """Warn about and note the ATT(g,t) cells left out, as every unbalanced or cross-section path words it.

    ``missing`` maps (cohort, period) to the cells that need an unobserved period of that cohort;
    ``no_control`` lists cells without control observations; an empty ``plan`` (no cell left) raises.
    """
    if missing:
        parts = [
            f"cohort {_num(gv)} has no observation{' of positive weight' if weighted else ''} in period "
            f"{_num(p)} (needed by {format_examples(cells)})"
            for (gv, p), cells in missing.items()
        ]
        msg = (
            "; ".join(parts)
            + ": those cells cannot be estimated and are left out (R did reports them as NA). Fix: the cohort "
            "needs observations in that period (for post-treatment cells it is the base period g - anticipation - 1); "
            "if the data have none, drop the cohort or report only the cells that remain"
        )
        warnings.warn(msg, MissingPeriodWarning, stacklevel=stacklevel)
        notes.append("cells left out, a cohort unobserved in a period they need: " + "; ".join(parts))
    if no_control:
        notes.append(f"cells without any control observation were skipped: {format_examples(no_control)}")
    if not plan:
        raise DesignError("no (cohort, period) cell has both treated and control observations in both periods")


def staggered_did_rc(
    data: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    cohort: str,
    unit: str | None = None,
    panel: bool = False,
    control: str = "never",
    method: str = "dr",
    covariates: Sequence[str] | str | None = None,
    anticipation: int = 0,
    base_period: str = "varying",
    cluster: str | None = None,
    weights: str | None = None,
    n_boot: int = 999,
    seed: int | np.random.Generator | None = None,
    alpha: float = 0.05,
) -> StaggeredResult:
    r"""Group-time ATT(g,t) from repeated cross-sections (``panel=False``) or an unbalanced panel (``panel=True``).

    Called by :func:`evaluator.staggered_did` with ``panel=False``, or with
    ``allow_unbalanced_panel=True`` on a panel that is not balanced; the options mean what
    they mean there, and the arguments are assumed checked by it.

    Parameters
    ----------
    data : pandas.DataFrame
        Long form: one row per observation (repeated cross-sections) or per unit and period
        observed (unbalanced panel).
    outcome, time, cohort : str
        Columns; ``cohort`` is the first treated period of the row's unit or group (0 or NaN:
        never treated).
    unit : str, optional
        With ``panel=True`` the unit of each row: its rows' influence functions are summed, so a
        unit's rows count as one observation (R ``did``'s ``allow_unbalanced_panel=TRUE``). With
        ``panel=False`` it is not needed; if given it is checked: ids repeating within a period
        raise :class:`~evaluator.errors.DataError`, ids recurring across periods (a panel) warn.
    panel : bool
        ``False``: repeated cross-sections, every row its own observation. ``True``: an
        unbalanced panel of ``unit``.
    control, method, covariates, anticipation, base_period, cluster, n_boot, seed, alpha
        As in :func:`evaluator.staggered_did`. ``method="dr"`` is DRDID's ``drdid_rc`` (the
        locally efficient doubly robust estimator), ``"ipw"`` ``std_ipw_did_rc``, ``"reg"``
        ``reg_did_rc``; covariates are each row's own values. ``cluster`` must contain whole
        units of a panel; for cross-sections any grouping of rows.
    weights : str, optional
        Column of sampling weights (constant within a unit of a panel), as R ``did``'s
        ``weightsname``: they weight each cell's means and regressions and the cohort shares.

    Returns
    -------
    StaggeredResult
        As the panel estimator's; ``n_treated``/``n_control`` of a cell count its rows in the two
        periods compared; ``info["n_units"]`` is the number of observations (rows, or units of
        the panel) and ``info["n_obs"]`` the rows.

    Notes
    -----
    For a cell with treated cohort :math:`G` and controls :math:`C`, comparing period
    :math:`t` (``post``) with base period :math:`b`, the unconditional estimator is the
    difference of four means over the rows of those two periods,

    .. math:: \widehat{ATT}(g,t) = (\bar Y_{G,t} - \bar Y_{G,b}) - (\bar Y_{C,t} - \bar Y_{C,b}),

    whose influence function at a row :math:`r` of group :math:`q` is
    :math:`n\,s_q w_r (Y_r - \bar Y_q)/W_q` (:math:`s_q = \pm 1`, :math:`W_q` the group's
    weight, :math:`n` observations in all); with covariates it is DRDID's, scaled by
    :math:`n/n_1`. The function of an observation is the sum over its rows, and standard errors
    are :math:`\sqrt{\sum_i \psi_i^2}/n` (with clusters, summed within clusters first). The
    aggregations weight cohorts by their share of the *observations* (R ``did`` averages the data
    by observation id: rows of cross-sections, units of a panel).

    Examples
    --------
    A repeated cross-section: each employee of a simulated panel is observed in one month.

    >>> from evaluator.data.simulate import sick_leave_sib
    >>> sim = sick_leave_sib(n_municipalities=10, employees_per_municipality=300, n_periods=8, waves=(4, 6), seed=1)
    >>> one = sim.data.sample(frac=1, random_state=1).drop_duplicates("employee")
    >>> res = staggered_did_rc(one, outcome="sick_days", time="month", cohort="first_treated", n_boot=0)
    >>> res.info["n_units"] == len(one), res.att_gt.columns[:4].tolist()
    (True, ['cohort', 'time', 'event_time', 'att'])
    >>> res.aggregate("dynamic").headline
    'overall'
    """
    covs = [covariates] if isinstance(covariates, str) else list(covariates or [])
    if panel and unit is None:
        raise ValueError(
            "an unbalanced panel needs its unit column (unit=); for repeated cross-sections pass panel=False"
        )
    rows = _rows(
        data,
        outcome=outcome,
        unit=unit,
        time=time,
        cohort=cohort,
        covariates=covs,
        cluster=cluster,
        weights=weights,
        panel=panel,
        control=control,
        anticipation=anticipation,
    )
    notes = list(rows.notes)
    if rows.x is not None:
        _check_covariates(rows.x[:, None, :], covs)
    times, T, n = rows.times, len(rows.times), rows.n
    if T < 2:
        raise DesignError("fewer than two periods remain; nothing to compare")
    y, tcode, g, obs = rows.y, rows.tcode, rows.g, rows.obs
    what = "units" if panel else "observations"
    obs_w = rows.obs_w
    if obs_w is not None:  # as R did, only the ratios matter: normalised to mean 1 over the observations
        scale_w = float(obs_w.mean())
        obs_w = obs_w / scale_w if scale_w > 0 else obs_w
        w_row = rows.w / scale_w if scale_w > 0 else rows.w
        notes.append(rc_weights_note(weights, what))
    else:
        w_row = np.ones(len(y))

    # cohorts: those with a pre-treatment period are estimated; every finite cohort can be a not-yet control
    allg = np.unique(g[np.isfinite(g)])
    never_any = bool((~np.isfinite(g)).any())
    glist = allg if never_any else allg[:-1]
    if len(glist) == 0:
        raise DesignError("no treated cohort with a pre-treatment period remains; nothing to estimate")
    K = len(allg) + 1  # cohort codes 0..len(allg)-1, never treated = K-1
    cidx = np.where(np.isfinite(g), np.searchsorted(allg, np.where(np.isfinite(g), g, 0.0)), K - 1)
    key = tcode * K + cidx
    # a stable sort of 16-bit keys is a radix sort: 6x faster than on int64 at 1e6 rows
    order = np.argsort(key.astype(np.uint16) if T * K < 2**16 else key, kind="stable")
    counts = np.bincount(key, minlength=T * K)
    starts = np.concatenate([[0], np.cumsum(counts)])
    s_wy = np.bincount(key, weights=w_row * y, minlength=T * K)
    s_w = np.bincount(key, weights=w_row, minlength=T * K)

    def block(t: int, c: int) -> np.ndarray:
        b = t * K + c
        return order[starts[b] : starts[b + 1]]

    cl, n_clusters = rows.cl_obs, rows.n_clusters
    if cluster is not None and n_clusters < 2:
        raise DesignError(f"cluster={cluster!r} has a single cluster; clustered inference needs at least 2")
    if cluster is None:
        n_clusters = n
    sizes = {gv: int(np.sum(rows.obs_g == gv)) for gv in glist}
    if obs_w is not None:
        never_obs = ~np.isfinite(rows.obs_g)
        _check_cohort_weights(obs_w, rows.obs_g, glist, never_obs if control == "never" else None, weights)
        positive = {gv: int(np.sum((rows.obs_g == gv) & (obs_w > 0))) for gv in glist}
    else:
        positive = sizes
    small_sample_warnings(positive, cluster, n_clusters, n_boot, notes, observations=True, stacklevel=4)

    est_method = "unconditional" if rows.x is None else method
    tfirst = 0 if base_period == "universal" else 1
    # plan the cells: (gi, gv, cohort code, current period, base period, control cohort codes)
    plan: list[tuple[int, float, int, int, int, list[int]]] = []
    no_control: list[str] = []
    missing: dict[tuple[float, float], list[str]] = {}  # (cohort, period) without rows -> cells needing it
    for gi, gv in enumerate(glist):
        ci = int(np.searchsorted(allg, gv))
        pret_g = int(np.nonzero(times + anticipation < gv)[0][-1])
        for cur in range(tfirst, T):
            base = pret_g if (times[cur] >= gv or base_period == "universal") else cur - 1
            if control == "never":
                ctrl = [K - 1]
            else:
                cutoff = float(times[max(cur, base)] + anticipation)
                ctrl = [K - 1] + [c for c, v in enumerate(allg) if v > cutoff and v != gv]
            label = f"ATT({_num(gv)},{_num(times[cur])})"
            if base != cur:
                gaps = [p for p in (cur, base) if s_w[p * K + ci] <= 0]  # no row (of positive weight)
                for p in gaps:
                    missing.setdefault((gv, float(times[p])), []).append(label)
                if gaps:
                    continue
                if any(sum(s_w[p * K + c] for c in ctrl) <= 0 for p in (cur, base)):
                    no_control.append(f"({_num(gv)},{_num(times[cur])})")
                    continue
            plan.append((gi, gv, ci, cur, base, ctrl))
    report_skipped_cells(missing, no_control, plan, notes, weighted=obs_w is not None, stacklevel=4)
    k = len(plan)
    mtot = k + len(glist)
    att = np.zeros(k)
    # each cell's influence function lives on the rows of a few (period, cohort) blocks; it is kept as
    # (blocks, rows, values) and the dense rows x cells matrix is only formed where the bootstrap or the
    # unit sums need it (a dense 1e6 x 30 matrix is 240 MB and most of the run time)
    cell_if: list[tuple[list[int], np.ndarray, np.ndarray]] = []
    cells: list[dict[str, Any]] = []
    cell_clusters: list[tuple[np.ndarray, np.ndarray]] = []
    keep_wcr = cluster is not None and n_boot > 0
    treated_m = np.zeros((n, k), dtype=bool) if keep_wcr else None
    control_m = np.zeros((n, k), dtype=bool) if keep_wcr else None
    cl_id = rows.cl_row if rows.cl_row is not None else obs  # the cluster (or observation) of each row
    counted = None if obs_w is None else w_row > 0  # rows of weight 0 count in no mean and in no cluster count
    trimmed_total = 0
    for j, (gi, gv, ci, cur, base, ctrl) in enumerate(plan):
        t_rows = np.concatenate([block(cur, ci), block(base, ci)])
        c_rows = np.concatenate([block(p, c) for p in (cur, base) for c in ctrl])
        cells.append(
            {
                "cohort": gv,
                "time": times[cur],
                "gidx": gi,
                "n_treated": len(t_rows),
                "n_control": len(c_rows),
                "base": times[base],
            }
        )
        t_in, c_in = (t_rows, c_rows) if counted is None else (t_rows[counted[t_rows]], c_rows[counted[c_rows]])
        if rows.cl_row is None and not panel:  # every row its own observation: the first two rows are distinct
            cell_clusters.append((t_in[:2], c_in[:2]))
        else:
            cell_clusters.append(
                (
                    _two_clusters(np.ones(len(t_in), bool), cl_id[t_in]),
                    _two_clusters(np.ones(len(c_in), bool), cl_id[c_in]),
                )
            )
        if treated_m is not None and control_m is not None:
            treated_m[obs[t_in], j] = True
            control_m[obs[c_in], j] = True
        if base == cur:  # universal base period: normalised to zero
            cell_if.append(([], np.empty(0, dtype=np.int64), np.empty(0)))
            continue
        if est_method == "unconditional":
            groups = [(cur, [ci], 1.0), (base, [ci], -1.0), (cur, ctrl, -1.0), (base, ctrl, 1.0)]
            est = 0.0
            idx_parts, val_parts, blocks = [], [], []
            for p, cs, sign in groups:
                W = float(sum(s_w[p * K + c] for c in cs))
                mean = float(sum(s_wy[p * K + c] for c in cs)) / W
                est += sign * mean
                for c in cs:
                    b = block(p, c)
                    if len(b):
                        blocks.append(p * K + c)
                        idx_parts.append(b)
                        val_parts.append((n * sign / W) * w_row[b] * (y[b] - mean))
            att[j] = est
            r_idx = np.concatenate(idx_parts)
            psi = np.concatenate(val_parts)
        else:
            r_idx = np.concatenate([t_rows, c_rows])
            blocks = [p * K + c for p, c in [(cur, ci), (base, ci)] + [(p, c) for p in (cur, base) for c in ctrl]]
            d = np.zeros(len(r_idx))
            d[: len(t_rows)] = 1.0
            post = (tcode[r_idx] == cur).astype(float)
            X = np.column_stack([np.ones(len(r_idx)), rows.x[r_idx]])
            try:
                att_j, inf, trimmed = _att_rc(y[r_idx], post, d, X, w_row[r_idx], est_method)
            except (np.linalg.LinAlgError, DesignError) as exc:
                raise DesignError(
                    f"cannot fit the covariate models for ATT({_num(gv)},{_num(times[cur])}): {exc}; covariates "
                    f"{covs} are (nearly) collinear within its {len(t_rows)} treated and {len(c_rows)} control rows"
                ) from None
            trimmed_total += trimmed
            att[j] = att_j
            psi = inf * (n / len(r_idx))
        cell_if.append((blocks, r_idx, psi))
    if trimmed_total:
        warnings.warn(
            f"{trimmed_total} control rows (summed over ATT(g,t) cells) had propensity scores >= "
            f"{PS_TRIM_LEVEL} and were given weight zero (DRDID trimming); overlap is weak",
            TrimmingWarning,
            stacklevel=3,
        )
        notes.append(f"{trimmed_total} control rows trimmed for propensity scores >= {PS_TRIM_LEVEL}")
    # cohort shares among the observations (R did: the data averaged by observation id), with their influence
    shares = np.empty((n, len(glist)), order="F")
    for gi, gv in enumerate(glist):
        ind = (rows.obs_g == gv).astype(np.float64)
        if obs_w is not None:
            ind *= obs_w
        shares[:, gi] = ind
    pg = shares.mean(axis=0)
    shares -= pg
    Bcols = None
    sigma = None
    if panel or n_boot > 0:  # unit sums, or the bootstrap's draws over rows: the dense matrix
        Bcols = np.zeros((n, mtot), order="F")  # column-major: each cell writes one contiguous column
        for j, (_, r_idx, psi) in enumerate(cell_if):
            if panel:
                Bcols[:, j] = np.bincount(obs[r_idx], weights=psi, minlength=n)
            else:
                Bcols[r_idx, j] = psi  # a row is its own observation
        Bcols[:, k:] = shares
    elif cl is not None:
        S = np.empty((n_clusters, mtot))
        for j, (_, r_idx, psi) in enumerate(cell_if):
            S[:, j] = np.bincount(cl[r_idx], weights=psi, minlength=n_clusters)
        for gi in range(len(glist)):
            S[:, k + gi] = np.bincount(cl, weights=shares[:, gi], minlength=n_clusters)
        sigma = _crossprod(S) / n**2
    else:
        codes = [int(np.searchsorted(allg, gv)) for gv in glist]
        sigma = _block_crossprod(cell_if, shares, pg, starts, order, codes, K, w_row) / n**2

    info_extra = {
        "panel": panel,
        "allow_unbalanced_panel": bool(panel),
        "n_obs": len(y),
        **rows.info,
    }
    if weights is not None:
        info_extra["weights"] = weights
        info_extra["cohort_weights"] = {_num(gv): float(p) for gv, p in zip(glist, pg, strict=True)}
    if missing:
        info_extra["cells_missing_period"] = {f"{_num(gv)}@{_num(p)}": c for (gv, p), c in missing.items()}
    return _finish(
        Bcols=Bcols,
        sigma=sigma,
        att=att,
        cells=cells,
        cell_clusters=tuple(cell_clusters),
        pg=pg,
        glist=glist,
        times=times,
        n=n,
        cl=cl,
        n_clusters=n_clusters,
        cluster=cluster,
        treated_m=treated_m,
        control_m=control_m,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
        notes=notes,
        info_extra=info_extra,
        outcome=outcome,
        nobs=len(y),
        scale=float(np.std(y)) if len(y) else 1.0,
        est_method=est_method,
        control=control,
        base_period=base_period,
        anticipation=anticipation,
        covs=covs,
        sizes=sizes,
        n_treated=int(np.isfinite(rows.obs_g).sum()),
        n_never=int((~np.isfinite(rows.obs_g)).sum()),
        what=what,
        panel=panel,
        keys=bootstrap_keys(rows.obs_ids if cl is None else rows.cluster_ids) if n_boot > 0 else None,
    )


def _block_crossprod(
    cell_if: list[tuple[list[int], np.ndarray, np.ndarray]],
    shares: np.ndarray,
    pg: np.ndarray,
    starts: np.ndarray,
    order: np.ndarray,
    share_codes: list[int],
    K: int,
    w: np.ndarray,
) -> np.ndarray:
    """B'B of the repeated-cross-section influence functions without forming B (rows x cells).

    Every cell's values are whole (period, cohort) blocks of rows in one fixed order, so
    B'B is the sum over blocks of the small products of the cells that use the block; the
    cohort-share columns are w * 1[cohort] - share, whose products with a cell reduce to
    sums over the cell's blocks of that cohort. At 1e6 rows and 30 cells this is ~4x faster
    than the dense product and needs no 240 MB matrix.
    """
    k, G = len(cell_if), shares.shape[1]
    out = np.zeros((k + G, k + G))
    by_block: dict[int, list[tuple[int, np.ndarray]]] = {}
    colsum = np.empty(k)
    for j, (blocks, _, psi) in enumerate(cell_if):
        colsum[j] = psi.sum()
        if not blocks:  # a cell normalised to zero
            continue
        cuts = np.cumsum([starts[b + 1] - starts[b] for b in blocks])[:-1]
        for b, piece in zip(blocks, np.split(psi, cuts), strict=True):
            by_block.setdefault(b, []).append((j, piece))
    gi_of = {c: gi for gi, c in enumerate(share_codes)}
    for b, items in by_block.items():
        J = np.array([j for j, _ in items])
        M = np.column_stack([piece for _, piece in items])
        out[np.ix_(J, J)] += M.T @ M
        gi = gi_of.get(b % K)
        if gi is not None:
            out[J, k + gi] += w[order[starts[b] : starts[b + 1]]] @ M
    out[:k, k:] -= np.outer(colsum, pg)
    out[k:, :k] = out[:k, k:].T
    out[k:, k:] = shares.T @ shares
    return out


def rc_weights_note(weights: str | None, what: str) -> str:
    """The note on sampling weights of the estimator of rows (in memory and out of core); ``what`` names the
    observations ("units" or "observations")."""
    return (
        f"sampling weights {weights!r} (normalised to mean 1 over the {what}): weighted ATT(g,t) and "
        "influence functions, cohort shares of the aggregations weighted"
    )


def _finish(
    *,
    Bcols: np.ndarray | None,
    sigma: np.ndarray | None,
    att: np.ndarray,
    cells: list[dict[str, Any]],
    cell_clusters: tuple[tuple[np.ndarray, np.ndarray], ...],
    pg: np.ndarray,
    glist: np.ndarray,
    times: np.ndarray,
    n: int,
    cl: np.ndarray | None,
    n_clusters: int,
    cluster: str | None,
    treated_m: np.ndarray | None,
    control_m: np.ndarray | None,
    n_boot: int,
    seed: int | np.random.Generator | None,
    alpha: float,
    notes: list[str],
    info_extra: dict[str, Any],
    outcome: str,
    nobs: int,
    scale: float,
    est_method: str,
    control: str,
    base_period: str,
    anticipation: int,
    covs: list[str],
    sizes: dict[float, int],
    n_treated: int,
    n_never: int,
    what: str,
    panel: bool,
    keys: np.ndarray | None = None,
    draws: np.ndarray | None = None,
    wcr_sums: CellClusterSums | None = None,
) -> StaggeredResult:
    """Covariance, bootstrap, tables, pre-test and result from the influence-function matrix, with the panel
    estimator's helpers (the same steps as the end of :func:`evaluator.staggered_did`).

    ``keys`` are the bootstrap keys of the rows of ``S`` (observations, or clusters); out of core the
    caller gives the multiplier ``draws`` and the restricted bootstrap's ``wcr_sums`` instead."""
    k = len(att)
    S = Bcols
    if Bcols is not None and cl is not None:
        S = np.empty((n_clusters, Bcols.shape[1]))
        for j in range(Bcols.shape[1]):
            S[:, j] = np.bincount(cl, weights=Bcols[:, j], minlength=n_clusters)
    if sigma is None:
        assert S is not None  # the caller gives the covariance or the influence functions
        sigma = _crossprod(S) / n**2
    if n_boot > 0 and draws is None:
        assert S is not None and keys is not None  # the caller forms them whenever it bootstraps
        draws = _multiplier_draws(S, keys, n_boot, seed, n)
    wcr = None
    if cluster is not None and n_boot > 0:
        if wcr_sums is None:
            assert Bcols is not None and cl is not None
            wcr_sums = cell_cluster_sums(Bcols[:, :k], treated_m, control_m, cl)
        wcr = wcr_spec(wcr_sums, n_boot, seed)
    cells_df = pd.DataFrame(cells)
    se_an = analytic_se(sigma, k, scale)
    level = "unit" if panel else "observation"
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
        level=level,
        analytic="analytic, influence function"
        + (" summed within units" if panel else " of each row")
        + (f" and within {n_clusters} clusters of {cluster!r}" if cluster is not None else "")
        + ": se = sqrt(sum psi^2)/n, normal intervals",
        notes=notes,
        stacklevel=3,
    )
    # pre-test: every pre-treatment ATT(g,t) = 0 (as the panel estimator)
    pretest, pretest_note = _pretest(cells_df, att, sigma, se_an, anticipation, cluster, n_clusters)

    info: dict[str, Any] = {
        "n_units": n,
        "n_treated": n_treated,
        "n_control": n_never,
        "n_periods": len(times),
        "n_cohorts": len(glist),
        "control": control,
        "method": est_method,
        "base_period": base_period,
        "anticipation": anticipation,
        "covariates": covs,
        "cohort_sizes": {_num(gv): s for gv, s in sizes.items()},
        "n_boot": n_boot,
        "crit_value": crit,
        "boot_df": None,
        **info_extra,
    }
    if bands_widened:
        info["bands_widened"] = bands_widened
    if cluster is not None:
        info["n_clusters"] = n_clusters
        info["cluster"] = cluster
    if pretest is not None:
        info["pretest"] = pretest
    if pretest_note is not None:
        info["pretest_unavailable"] = pretest_note
        notes.append(pretest_note)
    design = "unbalanced panel" if panel else "repeated cross-sections"
    headline_note = (
        "estimate, SE, CI and p-value of the ATT(g,t) result are the simple aggregate (post-treatment cells "
        "weighted by cohort size); see .aggregate()"
    )
    notes.insert(
        0,
        f"{design}: each ATT(g,t) uses the rows of its two periods (DRDID repeated cross-section estimators), "
        f"cohort shares are those of the {n} {what}",
    )
    res = StaggeredResult(
        estimator=f"Callaway-Sant'Anna ATT(g,t), {METHOD_NAMES[est_method]}, "
        f"{'never-treated' if control == 'never' else 'not-yet-treated'} controls, {design}",
        table=table,
        nobs=nobs,
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
