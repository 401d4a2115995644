"""The robustness chapter: other control groups, estimators and inference, placebo, specification curve."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from evaluator.errors import EvaluatorError
from evaluator.reporting.html import Html, figure_html, figure_theme, labels, render_macro, table_html
from evaluator.reporting.pipeline import (
    DidFit,
    MatchedFit,
    collect_warnings,
    estimate_did,
    match_people,
    matched_effect,
)
from evaluator.reporting.settings import DidSettings
from evaluator.results.base import Result

__all__ = ["ROBUSTNESS_COLUMNS", "robustness_did", "robustness_figure", "robustness_matched", "robustness_table"]
ROBUSTNESS_COLUMNS = ("specification", "estimate", "ci_low", "ci_high", "p_value", "note", "kind")
#: The template of this chapter (the table's sentence and the figure's caption).
CHAPTER = "chapters/robustness.html.j2"


# -- robustness --------------------------------------------------------------------------------------------------------
def _row(kind: str, spec: str, run: Callable[[], Result], note: str = "") -> dict[str, Any]:
    notes: list[str] = []
    try:
        with collect_warnings(notes):
            r = run()
    except (EvaluatorError, ValueError, np.linalg.LinAlgError) as exc:
        return {
            "specification": spec,
            "estimate": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "p_value": np.nan,
            "note": f"could not be estimated: {str(exc).splitlines()[0]}",
            "kind": kind,
        }
    lo, hi = r.ci
    return {
        "specification": spec,
        "estimate": r.estimate,
        "ci_low": lo,
        "ci_high": hi,
        "p_value": r.pvalue,
        "note": note,
        "kind": kind,
    }


def _inf(name: str) -> str:
    """An inference scheme in the words of the page ("Abadie-Imbens standard errors", not ``abadie_imbens``)."""
    return str(labels().inference_short.get(name, f"{name} inference"))


def _main_row(fit: DidFit | MatchedFit, label: str) -> dict[str, Any]:
    r = fit.result
    return {
        "specification": f"Main: {label}",
        "estimate": r.estimate,
        "ci_low": r.ci[0],
        "ci_high": r.ci[1],
        "p_value": r.pvalue,
        "note": "main specification",
        "kind": "main",
    }


def _placebo_panel(panel: pd.DataFrame, s: DidSettings, shift: int | None) -> tuple[pd.DataFrame, int] | None:
    """Pre-period data only, with the first cohort's start moved ``shift`` periods earlier."""
    g = panel[s.cohort]
    first = int(g[g != 0].min())
    pre = panel.loc[panel[s.time] < first]
    periods = int(pre[s.time].nunique())
    if periods < 3:
        return None
    k = shift if shift is not None else max(1, periods // 2)
    if not 1 <= k < periods:
        return None
    fake_g = np.where(pre[s.cohort] == first, first - k, 0)
    return pre.assign(**{s.cohort: fake_g}), k


def robustness_did(fit: DidFit, *, placebo_shift: int | None = None) -> pd.DataFrame:
    """The main estimate next to other reasonable specifications, as a tidy table.

    Rows: the main specification; the other comparison group and the other
    estimator (Callaway-Sant'Anna vs two-way fixed effects); the other inference
    scheme; without covariates (when there are any); leaving out each cohort in
    turn; and a placebo that pretends the first cohort started ``placebo_shift``
    periods early (half its pre-period by default), on data from before any real
    start only: it should be close to zero. Robustness rows use analytic
    inference to keep the run short. A specification that cannot be estimated
    gets missing numbers and the reason in ``note``.

    Returns
    -------
    pandas.DataFrame
        Columns ``specification, estimate, ci_low, ci_high, p_value, note, kind``
        (``kind``: main, comparison, estimator, inference, covariates,
        leave-one-out, placebo).
    """
    s, panel = fit.settings, fit.panel
    cs, tw = "callaway_santanna", "twfe"
    fast = {cs: "analytic", tw: "cluster"}
    names = {
        "never": "never-treated comparison",
        "not_yet": "not-yet-treated comparison",
        "notyet": "not-yet-treated comparison",  # the old spelling of the parameter
    }
    est_name = "Callaway-Sant'Anna" if s.estimator == cs else "Two-way fixed effects"
    label = f"{est_name}, {names[s.control_group]}" if s.estimator == cs else est_name
    rows = [_main_row(fit, f"{label}, {_inf(s.inference)}")]
    twfe_covs = [] if s.covariates else None  # covariates of CS are pre-treatment; TWFE would absorb them
    twfe_note = "without the covariates (absorbed by unit effects)" if s.covariates else ""
    if s.estimator == cs:
        other = "not_yet" if s.control_group == "never" else "never"
        rows.append(
            _row(
                "comparison",
                f"Callaway-Sant'Anna, {names[other]}",
                lambda: estimate_did(panel, s, control=other, inference="analytic"),
            )
        )
        rows.append(
            _row(
                "estimator",
                "Two-way fixed effects",
                lambda: estimate_did(panel, s, estimator=tw, inference="cluster", covariates=twfe_covs),
                twfe_note,
            )
        )
        alt_inf = "analytic" if s.inference == "bootstrap" else "bootstrap"
    else:
        for control in ("never", "not_yet"):
            rows.append(
                _row(
                    "estimator" if control == "never" else "comparison",
                    f"Callaway-Sant'Anna, {names[control]}",
                    lambda c=control: estimate_did(panel, s, estimator=cs, control=c, inference=fast[cs]),
                )
            )
        alt_inf = "wild" if s.inference == "cluster" else "cluster"
    rows.append(_row("inference", f"{est_name}, {_inf(alt_inf)}", lambda: estimate_did(panel, s, inference=alt_inf)))
    if s.covariates:
        rows.append(
            _row(
                "covariates",
                f"{est_name}, without covariates",
                lambda: estimate_did(panel, s, inference=fast[s.estimator], covariates=[]),
            )
        )
    sizes = panel.loc[panel[s.cohort] != 0].groupby(s.cohort)[s.unit].nunique()
    cohorts = sorted(int(g) for g in sizes.index)
    # a cohort below min_cell is not left out on its own: the row would name it and show what it moves
    large = [g for g in cohorts if s.min_cell <= 1 or sizes[g] >= s.min_cell]
    if len(cohorts) > 1:
        for g in large:
            sub = panel.loc[panel[s.cohort] != g]
            rows.append(
                _row(
                    "leave-one-out",
                    f"Leaving out cohort {g}",
                    lambda sub=sub: estimate_did(sub, s, inference=fast[s.estimator]),
                )
            )
    placebo = _placebo_panel(panel, s, placebo_shift)
    if placebo is None:
        rows.append(
            {
                "specification": "Placebo start",
                "estimate": np.nan,
                "ci_low": np.nan,
                "ci_high": np.nan,
                "p_value": np.nan,
                "note": "too few periods before the first start for a placebo",
                "kind": "placebo",
            }
        )
    else:
        pp, k = placebo
        rows.append(
            _row(
                "placebo",
                f"Placebo: start {k} periods early (pre-programme data only)",
                lambda: estimate_did(pp, s, inference=fast[s.estimator]),
                "should be close to zero",
            )
        )
    return pd.DataFrame(rows, columns=list(ROBUSTNESS_COLUMNS))


def robustness_matched(fit: MatchedFit) -> pd.DataFrame:
    """The main matched estimate next to other reasonable specifications, as a tidy table.

    Rows: the main specification; the other inference scheme(s) (the bootstrap is
    left out for time); with or without regression adjustment; the other
    distances; and inverse-probability weighting (IPW) and the doubly-robust
    augmented IPW on the whole sample (:func:`evaluator.weighting`), which do not
    depend on the match. Columns as :func:`robustness_did`.
    """
    from evaluator.estimators.matching import weighting

    s, m, data = fit.settings, fit.match, fit.data
    desc = {"logit": "logit propensity score", "ps": "propensity score", "mahalanobis": "Mahalanobis distance"}
    rows = [_main_row(fit, f"{desc[s.distance]}, {_inf(s.inference)}" + (", adjusted" if s.adjust else ""))]
    fast = "abadie_imbens" if s.replace else "pairs"
    for inf in ("pairs", "abadie_imbens"):
        if inf != s.inference:
            rows.append(
                _row("inference", f"{desc[s.distance]}, {_inf(inf)}", lambda i=inf: matched_effect(m, s, inference=i))
            )
    main_inf = s.inference if s.inference != "bootstrap" else fast
    # Abadie-Imbens always bias-corrects with the covariates, so adjustment is compared under pairs inference
    adj = not s.adjust
    rows.append(
        _row(
            "covariates",
            f"{desc[s.distance]}, {_inf('pairs')}, {'with' if adj else 'without'} regression adjustment",
            lambda: matched_effect(m, s, inference="pairs", adjust=adj),
        )
    )
    for dist in ("logit", "ps", "mahalanobis"):
        if dist == s.distance:
            continue
        note = "without the caliper (not defined for Mahalanobis)" if dist == "mahalanobis" and s.caliper else ""
        rows.append(
            _row(
                "distance",
                f"Matching on the {desc[dist]}",
                lambda d=dist: matched_effect(match_people(data, s, distance=d), s, inference=main_inf),
                note,
            )
        )
    covs = list(dict.fromkeys([*s.covariates, *s.exact]))
    for method, name in (("ipw", "Inverse-probability weighting"), ("aipw", "Doubly robust (AIPW)")):
        rows.append(
            _row(
                "weighting",
                name,
                lambda mt=method: weighting(
                    data, treat=s.treat, outcome=s.outcome, covariates=covs, method=mt, alpha=s.alpha
                ),
                "whole sample, no matching",
            )
        )
    return pd.DataFrame(rows, columns=list(ROBUSTNESS_COLUMNS))


def robustness_table(table: pd.DataFrame, fit: DidFit | MatchedFit | None = None) -> Html:
    """The robustness table for readers, with a sentence on how far the estimates move."""
    shown = table.drop(columns=["kind"]).rename(columns=labels().robustness_columns)
    est = table.loc[table["kind"] != "placebo", "estimate"].dropna()
    same = bool((np.sign(est) == np.sign(est.iloc[0])).all()) if len(est) > 1 else True
    placebo = table.loc[(table["kind"] == "placebo") & table["estimate"].notna()]
    pl = placebo.iloc[0] if len(placebo) else None
    return render_macro(
        CHAPTER,
        "table",
        table_html(shown),
        len(est),
        est.min() if len(est) else None,
        est.max() if len(est) else None,
        same,
        None if pl is None else pl["estimate"],
        pl is not None and pl["ci_low"] <= 0 <= pl["ci_high"],
    )


def robustness_figure(table: pd.DataFrame, fit: DidFit | MatchedFit) -> Html:
    """The specification curve of a robustness table, as a captioned figure."""
    from evaluator import plots

    with figure_theme():
        fig = plots.specification_curve(table, outcome=fit.settings.outcome_label or fit.result.outcome or "")
        fig.set_size_inches(10, 0.35 * len(table) + 1.4)  # wide: long specification names sit left of the axes
        return figure_html(fig, render_macro(CHAPTER, "curve_caption"), css_class="specification-curve")
