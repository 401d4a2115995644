""":func:`match`: nearest-neighbour matching of treated units to controls."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluator.data.validate import missing_columns, require_frame
from evaluator.errors import DataError, DesignError, DroppedUnitsWarning, format_examples
from evaluator.estimators.design import as_list, choice, one_column
from evaluator.estimators.matching.frame import _canonical, _check_columns, _design_array
from evaluator.estimators.matching.neighbours import _nn1d_with, _nn1d_without, _nnkd_with, _nnkd_without
from evaluator.estimators.matching.propensity import _fit_ps, _whiten
from evaluator.estimators.matching.result import MatchResult

__all__ = ["Distance", "Order", "match"]

Distance = Literal["logit", "ps", "mahalanobis"]
Order = Literal["largest", "smallest", "data", "random"]

_DISTANCES = ("logit", "ps", "mahalanobis")
_ORDERS = ("largest", "smallest", "data", "random")


def match(
    data: pd.DataFrame,
    *,
    treat: str,
    covariates: Sequence[str],
    distance: Distance = "logit",
    ratio: int = 1,
    replace: bool = False,
    caliper: float | None = None,
    caliper_scale: Literal["sd", "raw"] = "sd",
    exact: str | Sequence[str] | None = None,
    order: Order | None = None,
    common_support: bool = False,
    estimand: Literal["ATT", "ATC"] = "ATT",
    ps_formula: str | None = None,
    unit: str | None = None,
    seed: int | None = None,
) -> MatchResult:
    """Nearest-neighbour matching of treated units to controls.

    The match is the comparison sample, not yet an effect: check its balance
    (``m.balance()``, ``m.plot_balance()``), then estimate the effect on an outcome
    with ``m.effect(outcome, adjust=..., inference=...)``
    (:meth:`MatchResult.effect`), which returns a :class:`~evaluator.results.base.Result`
    with the estimate, its standard error, interval and p-value.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit.
    treat : str
        Treatment column, coded 1 = treated, 0 = comparison.
    covariates : list of str
        Covariates to balance. Numeric columns enter as they are; string or
        categorical columns are expanded to indicators (first level dropped in the
        propensity model; every level shown in :meth:`MatchResult.balance`).
    distance : {"logit", "ps", "mahalanobis"}
        Match on the logit of the propensity score, on the score itself
        (MatchIt's default), or on the Mahalanobis distance of the covariates
        (whitened by the Cholesky factor of the pooled within-group covariance).
    ratio : int
        Controls per treated unit.
    replace : bool
        Whether a control may be matched to several treated units.
    caliper : float, optional
        Largest allowed distance; units in ``caliper_scale``.
    caliper_scale : {"sd", "raw"}
        ``"sd"``: the caliper is in SDs of the distance over all units kept
        (score distances only). ``"raw"``: in the distance's own units.
    exact : str or list of str, optional
        Columns to match exactly on: matching happens within each combination of
        their values. A stratum with treated units and no control is an error that
        names the stratum.
    order : {"largest", "smallest", "data", "random"}, optional
        Processing order of the treated (see the module notes). Default
        ``"largest"`` for score distances and ``"data"`` for Mahalanobis.
    common_support : bool
        Drop units whose propensity score lies outside the other group's range
        (MatchIt ``discard = "both"``), with a warning giving the counts.
    estimand : {"ATT", "ATC"}
        The focal group whose units are matched: treated (ATT) or controls (ATC).
    ps_formula : str, optional
        statsmodels formula for the propensity model, e.g.
        ``"treated ~ age + I(age**2) + C(education)"`` (a right-hand side alone,
        starting with ``~``, is also accepted).
    unit : str, optional
        Column with a unique unit id; the key that fixes ties and the ``"data"``
        order. The DataFrame index is used when omitted.
    seed : int, optional
        Seed for ``order="random"``.

    Returns
    -------
    MatchResult
        The matched sample, its counts and balance; ``.effect(outcome, ...)`` gives the effect.

    Raises
    ------
    DataError
        Missing columns or values, treatment not 0/1, duplicate unit keys.
    DesignError
        Fewer than 2 focal units, a pool too small for ``ratio`` without
        replacement, exact strata without controls, perfect separation.
    ValueError
        An unknown parameter value.

    See Also
    --------
    MatchResult.effect : the effect on an outcome in the matched sample.
    weighting : the same effect by inverse-probability weighting.
    matched_did : matching within each cohort of a panel, then difference-in-differences.

    Examples
    --------
    >>> from evaluator.data.simulate import employment_sib
    >>> sim = employment_sib(n_treated=60, n_pool=600, seed=2)
    >>> m = match(sim.data, treat="treated", covariates=sim.columns["covariates"])
    >>> m.counts()[["treated", "treated_matched", "controls_used"]].tolist()
    [60, 60, 60]
    >>> b = m.balance()
    >>> bool((b.loc[b["sample"] == "after", "smd"].abs() < b.loc[b["sample"] == "before", "smd"].abs().max()).all())
    True

    From the match to an effect: the effect on the treated of being in the programme
    on employment 12 months after starting, with its 95% interval.

    >>> effect = m.effect("employed_12m")
    >>> effect.table["term"].tolist(), effect.nobs
    (['att'], 120)
    >>> lo, hi = effect.ci
    >>> bool(lo < effect.estimate < hi)
    True
    """
    one_column(treat=treat)
    choice("distance", distance, _DISTANCES)
    choice("caliper_scale", caliper_scale, ("sd", "raw"))
    choice("estimand", estimand, ("ATT", "ATC"))
    if order is not None:
        choice("order", order, _ORDERS)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, np.integer)) or ratio < 1:
        raise ValueError(f"ratio={ratio!r} is not allowed; use a positive whole number")
    if caliper is not None and not (isinstance(caliper, (int, float, np.floating)) and caliper > 0):
        raise ValueError(f"caliper={caliper!r} is not allowed; use a positive number or None")
    if distance == "mahalanobis" and caliper is not None and caliper_scale == "sd":
        raise ValueError("caliper_scale='sd' is not allowed with distance='mahalanobis'; use caliper_scale='raw'")
    require_frame(data)
    covariates = as_list(covariates)
    exact_cols = as_list(exact)
    if not covariates and ps_formula is None:
        raise ValueError("covariates=[] is not allowed; name at least one covariate")
    if unit is not None and unit not in data.columns:
        raise DataError(missing_columns(data, [unit], labels=[f"unit={unit!r}"]))
    _check_columns(data, treat, covariates + exact_cols)
    if order is None:
        order = "data" if distance == "mahalanobis" else "largest"

    df, _ = _canonical(data, unit)
    t = df[treat].to_numpy().astype(np.int64)
    focal = (t == 1) if estimand == "ATT" else (t == 0)
    n_focal, n_other = int(focal.sum()), int((~focal).sum())
    fname = "treated" if estimand == "ATT" else "control (ATC focal)"
    if n_focal < 2:
        raise DesignError(f"only {n_focal} {fname} unit(s) in column '{treat}'; matching needs at least 2")
    if n_other < 1:
        raise DesignError(f"no comparison units in column '{treat}'; matching needs a pool to draw from")
    if not replace and n_other < ratio * n_focal:
        raise DesignError(
            f"ratio={ratio} without replacement needs {ratio * n_focal} controls for {n_focal} treated units, "
            f"but the pool has {n_other}. Fix: lower ratio, or use replace=True"
        )

    need_ps = distance != "mahalanobis" or order in ("largest", "smallest") or common_support
    ps_info: dict[str, Any] = {}
    ps = None
    if need_ps:
        ps, ps_info = _fit_ps(df, t, treat, covariates, ps_formula)
    if distance == "mahalanobis":
        Xd = _design_array(df, covariates)[1]
        metric = _whiten(Xd, focal.astype(np.int64))
        score = None
    else:
        with np.errstate(divide="ignore"):
            score = ps if distance == "ps" else np.log(ps) - np.log1p(-ps)
        metric = score[:, None]

    # common support (MatchIt discard = "both") on the propensity score
    keep = np.ones(len(df), dtype=bool)
    dropped_support_f = dropped_support_o = 0
    if common_support:
        pf, po = ps[focal], ps[~focal]
        out_f = focal & ((ps < po.min()) | (ps > po.max()))
        out_o = ~focal & ((ps < pf.min()) | (ps > pf.max()))
        keep = ~(out_f | out_o)
        dropped_support_f, dropped_support_o = int(out_f.sum()), int(out_o.sum())
        if dropped_support_f or dropped_support_o:
            warnings.warn(
                f"common support: dropped {dropped_support_f} {fname} and {dropped_support_o} comparison units "
                "whose propensity score lies outside the other group's range",
                DroppedUnitsWarning,
                stacklevel=2,
            )
        if int((focal & keep).sum()) < 2:
            raise DesignError("fewer than 2 treated units remain on common support")

    width = math.inf
    if caliper is not None:
        if caliper_scale == "sd":
            width = float(caliper) * float(np.std(score[keep], ddof=1))
        else:
            width = float(caliper)

    # processing order of the focal units (positions in key order)
    fpos = np.flatnonzero(focal & keep)
    if order == "largest" or order == "smallest":
        pf = ps[fpos] if estimand == "ATT" else 1 - ps[fpos]
        o = np.argsort(-pf if order == "largest" else pf, kind="stable")
        fpos = fpos[o]
    elif order == "random":
        fpos = fpos[np.random.default_rng(seed).permutation(len(fpos))]
    rank = np.empty(len(df), dtype=np.int64)
    rank[fpos] = np.arange(len(fpos))

    # strata
    if exact_cols:
        strata = df.groupby(exact_cols, sort=True, dropna=False).ngroup().to_numpy()
    else:
        strata = np.zeros(len(df), dtype=np.int64)
    opos_all = np.flatnonzero(~focal & keep)
    if exact_cols:
        f_strata = np.unique(strata[fpos])
        o_strata = set(np.unique(strata[opos_all]).tolist())
        empty = [s for s in f_strata if s not in o_strata]
        if empty:
            labels = df.groupby(exact_cols, sort=True, dropna=False).ngroup()
            names = []
            for s in empty:
                row = df.loc[labels.to_numpy() == s, exact_cols].iloc[0]
                names.append("(" + ", ".join(f"{c}={row[c]!r}" for c in exact_cols) + ")")
            raise DesignError(
                f"{len(empty)} exact-matching strata have treated units but no controls: "
                f"{format_examples(names)}. Fix: coarsen the exact variables, or drop these treated units "
                "explicitly before matching"
            )

    T_, C_, D_ = [], [], []
    short_strata = []
    for s in np.unique(strata[fpos]):
        f_in = fpos[strata[fpos] == s]  # already in processing order
        o_in = opos_all[strata[opos_all] == s]
        if not replace and len(o_in) < ratio * len(f_in):
            short_strata.append(int(s))
        loc_order = np.arange(len(f_in))
        if distance == "mahalanobis":
            if replace:
                ti, ci, di = _nnkd_with(metric[f_in], metric[o_in], ratio, width)
            else:
                ti, ci, di, _ = _nnkd_without(metric[f_in], loc_order, metric[o_in], ratio, width)
        else:
            if replace:
                ti, ci, di = _nn1d_with(score[f_in], score[o_in], o_in, ratio, width)
            else:
                ti, ci, di, _ = _nn1d_without(score[f_in], loc_order, score[o_in], o_in, ratio, width)
        T_.append(f_in[ti])
        C_.append(o_in[ci])
        D_.append(di)
    tp = np.concatenate(T_) if T_ else np.zeros(0, np.int64)
    cp = np.concatenate(C_) if C_ else np.zeros(0, np.int64)
    dp = np.concatenate(D_) if D_ else np.zeros(0)
    # sets numbered by processing order; rows ordered by set then distance then control key
    srt = np.lexsort((cp, dp, rank[tp]))
    tp, cp, dp = tp[srt], cp[srt], dp[srt]
    matched_f, set_inv = np.unique(rank[tp], return_inverse=True)
    set_id = set_inv + 1
    size = np.bincount(set_inv)
    wpair = 1.0 / size[set_inv]
    pairs = pd.DataFrame({"set": set_id, "treated": tp, "control": cp, "distance": dp, "weight": wpair})

    # MatchIt-style unit weights
    uw = np.zeros(len(df))
    uw[fpos[matched_f]] = 1.0
    cw = np.bincount(cp, weights=wpair, minlength=len(df))
    n_used = int((cw > 0).sum())
    if n_used:
        cw *= n_used / cw.sum()
    uw += cw
    out = df.copy(deep=False)  # df is already a fresh frame (taken in key order), never the caller's
    if ps is not None:
        out["pscore"] = ps
    if score is not None:
        out["match_distance_score"] = score
    out["match_weight"] = uw

    n_matched = len(matched_f)
    n_focal_kept = len(fpos)
    n_unmatched = n_focal_kept - n_matched
    reuse = np.bincount(cp, minlength=len(df))
    counts = {
        "treated": n_focal,
        "treated_matched": n_matched,
        "treated_dropped_caliper": 0,
        "treated_dropped_support": dropped_support_f,
        "treated_unmatched_other": 0,
        "controls": n_other,
        "controls_used": n_used,
        "controls_dropped_support": dropped_support_o,
        "matched_sets": n_matched,
        "control_reuse_max": int(reuse.max()) if len(cp) else 0,
        "controls_used_more_than_once": int((reuse > 1).sum()),
        "mean_controls_per_set": float(len(cp) / n_matched) if n_matched else 0.0,
    }
    if caliper is not None:
        counts["treated_dropped_caliper"] = n_unmatched
    else:
        counts["treated_unmatched_other"] = n_unmatched
    if short_strata:
        warnings.warn(
            f"{len(short_strata)} exact strata have fewer controls than ratio x treated; some treated units there "
            f"got fewer than {ratio} matches or none ({n_unmatched} unmatched in all)",
            DroppedUnitsWarning,
            stacklevel=2,
        )
    if n_unmatched and caliper is not None:
        most = " (most of them)" if n_unmatched > n_focal_kept / 2 else ""
        warnings.warn(
            f"the caliper ({caliper} {caliper_scale} = {width:.4g}) left {n_unmatched} of {n_focal_kept} "
            f"{fname} units unmatched{most}; the estimate is for the matched treated only. Fix: widen the "
            "caliper or report the estimand for the matched subgroup",
            DroppedUnitsWarning,
            stacklevel=2,
        )
    if n_matched < 2:
        raise DesignError(f"only {n_matched} {fname} unit(s) could be matched; no estimate is possible")
    what = {"logit": "logit propensity score", "ps": "propensity score", "mahalanobis": "Mahalanobis distance"}
    method = (
        f"{ratio}:1 nearest neighbour on {what[distance]}, {'with' if replace else 'without'} replacement"
        + (f", caliper {caliper} {caliper_scale}" if caliper is not None else "")
        + (f", exact on {', '.join(exact_cols)}" if exact_cols else "")
    )
    params = dict(
        distance=distance,
        ratio=ratio,
        replace=replace,
        caliper=caliper,
        caliper_scale=caliper_scale,
        exact=exact_cols or None,
        order=order,
        common_support=common_support,
        estimand=estimand,
        ps_formula=ps_formula,
        seed=seed,
        method=method,
        caliper_width=width,
        unit=unit,
    )
    return MatchResult(
        data=out,
        pairs=pairs,
        treat=treat,
        covariates=tuple(covariates),
        params=params,
        info={"counts": counts, **ps_info},
        _metric=metric,
        _focal=focal,
    )
