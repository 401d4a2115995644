""":func:`matched_did`: match per cohort on a panel, then difference-in-differences."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluator.data.validate import duplicate_rows, missing_columns, missing_values, where_units
from evaluator.errors import DataError, DesignError, DroppedUnitsWarning, Problem, UnbalancedPanelError
from evaluator.estimators.design import as_list, one_column
from evaluator.estimators.matching.nearest import Distance, match
from evaluator.results.base import Result, tidy_table

__all__ = ["matched_did"]


def matched_did(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    covariates: Sequence[str],
    pre_periods: int | None = None,
    distance: Distance = "logit",
    ratio: int = 1,
    replace: bool = False,
    caliper: float | None = None,
    caliper_scale: Literal["sd", "raw"] = "sd",
    exact: str | Sequence[str] | None = None,
    alpha: float = 0.05,
) -> Result:
    """Match treated units to never-treated units per cohort, then difference-in-differences.

    For each cohort g (first treated period; 0 = never treated) the units of that cohort
    are matched to never-treated units (:func:`match`, the other arguments as there)
    on the time-invariant ``covariates`` and, with ``pre_periods = k``, on the outcome
    in the k periods before g (``g-1, ..., g-k``). For each period t the matched-set
    contrast is ``c_s(t) = (Y_it - Y_i,g-1) - sum_j w_sj (Y_jt - Y_j,g-1)`` and
    ``ATT(g, t)`` is its mean over the cohort's sets (base period g-1 for every t, so
    pre-period rows are placebo checks). The overall ``att`` averages the post-period
    cells weighted by the number of matched sets (as Callaway and Sant'Anna's simple
    aggregation); ``event_time=e`` rows average cells with t - g = e, weighted the same.

    Standard errors treat matched sets as independent clusters: each aggregate is a
    linear combination of set means, and its variance is the sum over sets of squared
    influence values times S/(S-1) per cohort. Controls reused across sets or cohorts
    make this approximate (a note says so).

    Parameters
    ----------
    data : pandas.DataFrame
        A balanced long panel: one row per unit and period.
    outcome, unit, time, cohort : str
        Column names; ``cohort`` holds the first treated period, 0 for never treated.
    covariates : list of str
        Time-invariant unit covariates to match on.
    pre_periods : int, optional
        Number of pre-treatment outcome periods to match on (none when omitted).
    distance, ratio, replace, caliper, caliper_scale, exact
        As in :func:`match`.
    alpha : float
        1 - confidence level.

    Returns
    -------
    Result
        Terms ``att`` (headline) and ``event_time=e``; ``info["att_gt"]`` holds the
        cohort-period cells (cohort, time, event_time, att, se, n_sets).

    Examples
    --------
    >>> from evaluator.data.simulate import sick_leave_sib
    >>> sim = sick_leave_sib(n_periods=24, waves=(13,), employees_per_municipality=20, effect="constant", seed=1)
    >>> r = matched_did(sim.data, outcome="sick_days", unit="employee", time="month", cohort="first_treated",
    ...                 covariates=["age", "tenure"], pre_periods=2, replace=True)
    >>> r.headline, float(r.table["event_time"].min()), float(r.table["event_time"].max())
    ('att', -12.0, 11.0)
    """
    one_column(outcome=outcome, unit=unit, time=time, cohort=cohort)
    covariates = as_list(covariates)
    cols = [outcome, unit, time, cohort, *covariates, *as_list(exact)]
    absent = missing_columns(data, cols)
    if absent:
        raise DataError(absent)
    problems = missing_values(data, cols, before="matching")
    if problems:
        raise DataError(problems)
    if pre_periods is not None and (not isinstance(pre_periods, (int, np.integer)) or pre_periods < 0):
        raise ValueError(f"pre_periods={pre_periods!r} is not allowed; use a whole number >= 0 or None")
    k = int(pre_periods or 0)
    wide = data.pivot_table(index=unit, columns=time, values=outcome, aggfunc="size")
    if (wide > 1).any().any():
        raise DataError(duplicate_rows(data, [unit, time]))
    Y = data.pivot(index=unit, columns=time, values=outcome)
    if Y.isna().any().any():
        bad = Y.index[Y.isna().any(axis=1)]
        raise UnbalancedPanelError(
            [
                Problem(
                    "the panel is not balanced",
                    column=unit,
                    where=where_units(bad),
                    hint="matched_did needs every unit observed in every period",
                )
            ]
        )
    unit_cols = [cohort, *covariates, *as_list(exact)]
    units = data.drop_duplicates([unit, *unit_cols]).set_index(unit)[unit_cols]
    if units.index.duplicated().any():
        bad = units.index[units.index.duplicated()].unique()
        raise DataError(
            [
                Problem(
                    "cohort or covariates vary within unit",
                    column=unit,
                    where=where_units(bad),
                    hint="matched_did matches on time-invariant unit characteristics; use their first-period values",
                )
            ]
        )
    units = units.loc[Y.index]
    periods = np.asarray(Y.columns)
    Yv = Y.to_numpy(dtype=float)
    g_all = units[cohort].to_numpy()
    cohorts = sorted(set(g_all[g_all != 0].tolist()))
    if not cohorts:
        raise DesignError(f"no treated units: every unit has {cohort} = 0")
    if not (g_all == 0).any():
        raise DesignError(f"no never-treated units ({cohort} = 0) to match to")
    cells = []
    notes: list[str] = []
    for g in cohorts:
        base_idx = int(np.searchsorted(periods, g)) - 1  # the last period before g
        if base_idx - max(k, 1) + 1 < 0:
            raise DesignError(f"cohort {g} has fewer than {max(k, 1)} pre-treatment period(s) in column '{time}'")
        sel = (g_all == g) | (g_all == 0)
        frame = units.loc[sel, [*covariates, *as_list(exact)]].copy()
        frame["_treated"] = (g_all[sel] == g).astype(np.int64)
        lag_cols = []
        for lag in range(1, k + 1):
            name = f"{outcome}_pre{lag}"
            frame[name] = Yv[sel, base_idx - lag + 1]
            lag_cols.append(name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DroppedUnitsWarning)
            m = match(
                frame,
                treat="_treated",
                covariates=[*covariates, *lag_cols],
                distance=distance,
                ratio=ratio,
                replace=replace,
                caliper=caliper,
                caliper_scale=caliper_scale,
                exact=exact,
            )
        for w in caught:
            notes.append(f"cohort {g}: {w.message}")
        # m.data is in key order of frame's index (unit ids); map back to rows of Yv
        rows_of = np.flatnonzero(sel)[np.argsort(units.index[sel].to_numpy(), kind="stable")]
        p = m.pairs
        d = Yv[rows_of] - Yv[rows_of, base_idx][:, None]  # differences to the base period, key order
        sets, inv = np.unique(p["set"].to_numpy(), return_inverse=True)
        t_of = np.zeros(len(sets), dtype=np.int64)
        t_of[inv] = p["treated"].to_numpy()
        ctrl = np.zeros((len(sets), d.shape[1]))
        np.add.at(ctrl, inv, d[p["control"].to_numpy()] * p["weight"].to_numpy()[:, None])
        c = d[t_of] - ctrl  # sets x periods
        S = len(sets)
        for j, t in enumerate(periods):
            if j == base_idx:
                continue
            cells.append({"cohort": g, "time": t, "event_time": j - base_idx - 1, "n_sets": S, "c": c[:, j]})
        if m.params["replace"] or len(cohorts) > 1:
            notes.append("controls reused across matched sets or cohorts are treated as independent (approximate SEs)")

    # influence values: for a cell, IF_s = (c_s - mean) / S; aggregates are linear combinations of cells
    def aggregate(chosen: list[dict[str, Any]]) -> tuple[float, float]:
        wts = np.array([cl["n_sets"] for cl in chosen], dtype=float)
        wts /= wts.sum()
        est = float(sum(w * cl["c"].mean() for w, cl in zip(wts, chosen, strict=True)))
        var = 0.0
        for g in {cl["cohort"] for cl in chosen}:
            inf = sum(
                w * (cl["c"] - cl["c"].mean()) / cl["n_sets"]
                for w, cl in zip(wts, chosen, strict=True)
                if cl["cohort"] == g
            )
            S = len(inf)
            var += float(np.sum(inf**2)) * (S / (S - 1) if S > 1 else np.nan)
        return est, math.sqrt(var)

    post = [cl for cl in cells if cl["event_time"] >= 0]
    terms, ests, ses, evs = ["att"], [], [], [np.nan]
    e0, s0 = aggregate(post)
    ests.append(e0)
    ses.append(s0)
    for e in sorted({cl["event_time"] for cl in cells}):
        est, se = aggregate([cl for cl in cells if cl["event_time"] == e])
        terms.append(f"event_time={e}")
        ests.append(est)
        ses.append(se)
        evs.append(float(e))
    att_gt = pd.DataFrame(
        [
            {
                "cohort": cl["cohort"],
                "time": cl["time"],
                "event_time": cl["event_time"],
                "att": float(cl["c"].mean()),
                "se": float(cl["c"].std(ddof=1) / math.sqrt(cl["n_sets"])) if cl["n_sets"] > 1 else np.nan,
                "n_sets": cl["n_sets"],
            }
            for cl in cells
        ]
    )
    table = tidy_table(terms, ests, ses, alpha=alpha, event_time=evs)
    return Result(
        estimator="Matched difference-in-differences (never-treated controls matched per cohort), ATT",
        table=table,
        nobs=int(Yv.size),
        headline="att",
        alpha=alpha,
        inference="matched sets as clusters (CR1-style S/(S-1) per cohort), normal critical values",
        outcome=outcome,
        notes=tuple(dict.fromkeys(notes)),
        info={
            "att_gt": att_gt,
            "n_treated": int((g_all != 0).sum()),
            "n_units": len(g_all),
            "n_periods": len(periods),
        },
    )
