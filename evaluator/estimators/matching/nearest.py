""":func:`match`: nearest-neighbour matching of treated units to controls."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple, cast

import numpy as np
import pandas as pd

from evaluator.data.validate import missing_columns, require_frame
from evaluator.errors import DataError, DesignError, DroppedUnitsWarning, format_examples
from evaluator.estimators.design import as_list, choice, one_column
from evaluator.estimators.matching.frame import _canonical, _check_columns, _design_array
from evaluator.estimators.matching.neighbours import _nn1d_with, _nn1d_without, _nnkd_with, _nnkd_without
from evaluator.estimators.matching.propensity import _fit_ps, _whiten
from evaluator.estimators.matching.result import MatchResult

__all__ = ["Distance", "Estimand", "Order", "match"]

Distance = Literal["logit", "ps", "mahalanobis"]
Order = Literal["largest", "smallest", "data", "random"]
Estimand = Literal["ATT", "ATC", "ATE"]

_DISTANCES = ("logit", "ps", "mahalanobis")
_ORDERS = ("largest", "smallest", "data", "random")
_ESTIMANDS = ("ATT", "ATC", "ATE")


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
    estimand: Estimand = "ATT",
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
        Controls per treated unit (M; for the ATE, matches per unit in each
        direction). With replacement every unit tied with the M-th nearest is
        also kept, with equal weight (Abadie and Imbens 2006, ``teffects nnmatch``).
    replace : bool
        Whether a control may be matched to several treated units. Required for
        the ATE.
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
    estimand : {"ATT", "ATC", "ATE"}
        The focal group whose units are matched: treated (ATT), controls (ATC),
        or both (ATE: every treated unit is matched to its nearest controls and
        every control to its nearest treated units, so that each unit's missing
        potential outcome is imputed, as Abadie and Imbens 2006 and Stata's
        ``teffects nnmatch``). The ATE needs ``replace=True``; its processing order
        only numbers the sets (the controls' by descending ``1 - ps`` for
        ``"largest"``, as for the ATC).
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
        An unknown parameter value; ``estimand="ATE"`` with ``replace=False``.

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

    The average effect over treated and controls (ATE): each group matched to its
    2 nearest in the other, with replacement, and the bias-corrected estimate with
    the Abadie-Imbens standard error (the ATE's default inference).

    >>> m_ate = match(sim.data, treat="treated", covariates=["age", "emp_y1", "emp_y2", "emp_y3"],
    ...               distance="mahalanobis", ratio=2, replace=True, estimand="ATE")
    >>> c = m_ate.counts()
    >>> int(c["treated_matched"]), int(c["controls_matched"]), int(c["matched_sets"])
    (60, 600, 660)
    >>> ate = m_ate.effect("employed_12m")
    >>> ate.table["term"].tolist(), ate.inference
    (['ate'], 'Abadie-Imbens (2006) population variance, bias-corrected, J=2')
    >>> match(sim.data, treat="treated", covariates=["age"], estimand="ATE")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: estimand='ATE' is not allowed with replace=False: ... Fix: pass replace=True
    """
    one_column(treat=treat)
    choice("distance", distance, _DISTANCES)
    choice("caliper_scale", caliper_scale, ("sd", "raw"))
    choice("estimand", estimand, _ESTIMANDS)
    if estimand == "ATE" and not replace:
        raise ValueError(
            "estimand='ATE' is not allowed with replace=False: the ATE imputes the missing outcome of every "
            "treated unit from its nearest controls and of every control from its nearest treated units, so "
            "units must be reusable as matches (Abadie and Imbens 2006). Fix: pass replace=True"
        )
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
    focal = (t == 0) if estimand == "ATC" else (t == 1)  # the ATE's treated side for balance; both are matched
    n_focal, n_other = int(focal.sum()), int((~focal).sum())
    fname = "control (ATC focal)" if estimand == "ATC" else "treated"
    if n_focal < 2:
        raise DesignError(f"only {n_focal} {fname} unit(s) in column '{treat}'; matching needs at least 2")
    if estimand == "ATE" and n_other < 2:
        raise DesignError(
            f"only {n_other} control unit(s) in column '{treat}'; the ATE matches every control too, "
            "so it needs at least 2"
        )
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
        if estimand == "ATE" and int((~focal & keep).sum()) < 2:
            raise DesignError("fewer than 2 control units remain on common support")

    width = math.inf
    if caliper is not None:
        if caliper_scale == "sd":
            width = float(caliper) * float(np.std(score[keep], ddof=1))
        else:
            width = float(caliper)

    if exact_cols:
        strata = df.groupby(exact_cols, sort=True, dropna=False).ngroup().to_numpy()
    else:
        strata = np.zeros(len(df), dtype=np.int64)
    # One direction for the ATT (treated matched to controls) and the ATC (controls to treated); both for the
    # ATE (Abadie and Imbens 2006): its sets are the treated units' (in processing order), then the controls'.
    found = [
        _match_focal(
            f,
            treated_focal=tf,
            df=df,
            keep=keep,
            ps=ps,
            order=order,
            seed=seed,
            strata=strata,
            exact_cols=exact_cols,
            distance=distance,
            metric=metric,
            score=score,
            replace=replace,
            ratio=ratio,
            width=width,
        )
        for f, tf in ([(t == 1, True), (t == 0, False)] if estimand == "ATE" else [(focal, estimand == "ATT")])
    ]
    offsets = np.cumsum([0] + [f.n_matched for f in found])
    tp = np.concatenate([f.focal for f in found])
    cp = np.concatenate([f.other for f in found])
    dp = np.concatenate([f.distance for f in found])
    set_inv = np.concatenate([f.set_index + off for f, off in zip(found, offsets, strict=False)])
    set_id = set_inv + 1
    size = np.bincount(set_inv)
    wpair = 1.0 / size[set_inv]
    if estimand == "ATE":  # the pair's actual treated and control unit, and which of the two the set is formed around
        ft = t[tp] == 1
        pairs = pd.DataFrame(
            {
                "set": set_id,
                "treated": np.where(ft, tp, cp),
                "control": np.where(ft, cp, tp),
                "distance": dp,
                "weight": wpair,
                "focal": pd.Categorical.from_codes(ft.astype(np.int8), categories=["control", "treated"]),
            }
        )
    else:
        pairs = pd.DataFrame({"set": set_id, "treated": tp, "control": cp, "distance": dp, "weight": wpair})

    # unit weights
    uw = np.zeros(len(df))
    uw[tp] = 1.0
    cw = np.bincount(cp, weights=wpair, minlength=len(df))  # K_M(i): the unit's total weight as a match
    if estimand == "ATE":  # 1 (as a focal unit) + K_M(i): the estimate is sum_t w Y / N - sum_c w Y / N
        uw += cw
    else:  # MatchIt-style: controls scaled to sum to the number of distinct controls used
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

    first = found[0]  # the focal group's direction (the treated units' for the ATE)
    n_matched = first.n_matched
    n_unmatched = first.n_kept - n_matched
    c_first = first.other
    reuse = np.bincount(c_first, minlength=len(df))
    counts: dict[str, Any] = {
        "treated": n_focal,
        "treated_matched": n_matched,
        "treated_dropped_caliper": n_unmatched if caliper is not None else 0,
        "treated_dropped_support": dropped_support_f,
        "treated_unmatched_other": 0 if caliper is not None else n_unmatched,
        "controls": n_other,
        "controls_used": int((reuse > 0).sum()),
        "controls_dropped_support": dropped_support_o,
        "matched_sets": int(offsets[-1]),
        "control_reuse_max": int(reuse.max()) if len(c_first) else 0,
        "controls_used_more_than_once": int((reuse > 1).sum()),
        "mean_controls_per_set": float(len(c_first) / n_matched) if n_matched else 0.0,
    }
    unmatched_text = f"{n_unmatched} of {first.n_kept} {fname} units"
    if estimand == "ATE":
        second = found[1]
        back = np.bincount(second.other, minlength=len(df))
        n_back_unmatched = second.n_kept - second.n_matched
        counts.update(
            controls_matched=second.n_matched,
            controls_dropped_caliper=n_back_unmatched if caliper is not None else 0,
            controls_unmatched_other=0 if caliper is not None else n_back_unmatched,
            treated_used=int((back > 0).sum()),
            treated_reuse_max=int(back.max()) if len(second.other) else 0,
            treated_used_more_than_once=int((back > 1).sum()),
            mean_treated_per_set=float(len(second.other) / second.n_matched) if second.n_matched else 0.0,
        )
        n_unmatched += n_back_unmatched
        unmatched_text += f" and {n_back_unmatched} of {second.n_kept} control units"
    short_strata = [s for f in found for s in f.short_strata]
    if short_strata:
        warnings.warn(
            f"{len(short_strata)} exact strata have fewer controls than ratio x treated; some treated units there "
            f"got fewer than {ratio} matches or none ({n_unmatched} unmatched in all)",
            DroppedUnitsWarning,
            stacklevel=2,
        )
    if n_unmatched and caliper is not None:
        n_kept = sum(f.n_kept for f in found)
        most = " (most of them)" if n_unmatched > n_kept / 2 else ""
        whom = "matched units" if estimand == "ATE" else "matched treated"
        warnings.warn(
            f"the caliper ({caliper} {caliper_scale} = {width:.4g}) left {unmatched_text} unmatched{most}; "
            f"the estimate is for the {whom} only. Fix: widen the caliper or report the estimand for the "
            "matched subgroup",
            DroppedUnitsWarning,
            stacklevel=2,
        )
    for f, name in zip(found, [fname, "control"], strict=False):
        if f.n_matched < 2:
            raise DesignError(f"only {f.n_matched} {name} unit(s) could be matched; no estimate is possible")
    what = {"logit": "logit propensity score", "ps": "propensity score", "mahalanobis": "Mahalanobis distance"}
    method = (
        f"{ratio}:1 nearest neighbour on {what[distance]}, {'with' if replace else 'without'} replacement"
        + (", treated matched to controls and controls to treated" if estimand == "ATE" else "")
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


class _Direction(NamedTuple):
    """The matches of one direction (focal units to the other group), sorted by set, distance, key."""

    focal: np.ndarray  # position of each row's focal unit
    other: np.ndarray  # position of each row's match
    distance: np.ndarray
    set_index: np.ndarray  # 0, 1, ... in the focal units' processing order
    n_kept: int  # focal units kept (after common support)
    n_matched: int
    short_strata: list[int]


def _match_focal(
    focal: np.ndarray,
    *,
    treated_focal: bool,
    df: pd.DataFrame,
    keep: np.ndarray,
    ps: np.ndarray | None,
    order: str,
    seed: int | None,
    strata: np.ndarray,
    exact_cols: list[str],
    distance: str,
    metric: np.ndarray,
    score: np.ndarray | None,
    replace: bool,
    ratio: int,
    width: float,
) -> _Direction:
    """Match the units of ``focal`` (kept) to the other group's kept units, within exact strata."""
    fpos = np.flatnonzero(focal & keep)
    if order == "largest" or order == "smallest":  # by the score of belonging to the focal group
        pf = cast(np.ndarray, ps)[fpos]
        pf = pf if treated_focal else 1 - pf
        o = np.argsort(-pf if order == "largest" else pf, kind="stable")
        fpos = fpos[o]
    elif order == "random":
        fpos = fpos[np.random.default_rng(seed).permutation(len(fpos))]
    rank = np.empty(len(df), dtype=np.int64)
    rank[fpos] = np.arange(len(fpos))

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
            have, lack = ("treated units", "controls") if treated_focal else ("controls", "treated units")
            raise DesignError(
                f"{len(empty)} exact-matching strata have {have} but no {lack}: "
                f"{format_examples(names)}. Fix: coarsen the exact variables, or drop these {have} "
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
            sc = cast(np.ndarray, score)
            if replace:
                ti, ci, di = _nn1d_with(sc[f_in], sc[o_in], o_in, ratio, width)
            else:
                ti, ci, di, _ = _nn1d_without(sc[f_in], loc_order, sc[o_in], o_in, ratio, width)
        T_.append(f_in[ti])
        C_.append(o_in[ci])
        D_.append(di)
    tp = np.concatenate(T_) if T_ else np.zeros(0, np.int64)
    cp = np.concatenate(C_) if C_ else np.zeros(0, np.int64)
    dp = np.concatenate(D_) if D_ else np.zeros(0)
    # sets numbered by processing order; rows ordered by set then distance then control key
    srt = np.lexsort((cp, dp, rank[tp]))
    tp, cp, dp = tp[srt], cp[srt], dp[srt]
    r = rank[tp]  # sorted: a new set starts where the rank changes
    set_inv = np.cumsum(np.r_[False, r[1:] != r[:-1]]) if len(r) else np.zeros(0, np.int64)
    return _Direction(tp, cp, dp, set_inv, len(fpos), int(set_inv[-1]) + 1 if len(r) else 0, short_strata)
