"""The synthetic-control report's chapters: data, trajectories, weights, placebo distribution, robustness, appendix.

One treated unit (a municipality, such as those of the Danish and Swedish social impact
bonds) is compared with a weighted combination of comparison units
(:func:`evaluator.synthetic`). The chapters read a :class:`~evaluator.reporting.pipeline.SyntheticFit`;
the words are in ``templates/chapters/synthetic.html.j2`` and the labels catalog.

Disclosure: every value of the outcome is an aggregate of a whole unit (a municipality's
rate), so the unit weights and the trajectories name units, not people; no count of people
is shown, and counts of units below ``min_cell`` go through :func:`evaluator.formatting.count`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluator.errors import EvaluatorError
from evaluator.formatting import count, num, p_value
from evaluator.i18n import LANGUAGES
from evaluator.provenance import package_versions
from evaluator.reporting.appendix import manifest_facts, plain_value
from evaluator.reporting.html import Html, figure_html, figure_theme, label, labels, render_macro, table_html
from evaluator.reporting.methods import display_parameters
from evaluator.reporting.pipeline import SyntheticFit, collect_warnings, shown_notes, synthetic_estimate

__all__ = [
    "ROBUSTNESS_METHODS",
    "data_summary_synthetic",
    "placebo_section",
    "results_extra_synthetic",
    "robustness_synthetic",
    "robustness_table_synthetic",
    "synthetic_appendix",
    "trajectories_section",
    "weights_section",
]

#: The template of these chapters.
CHAPTER = "chapters/synthetic.html.j2"
#: The methods of the robustness table, in its order.
ROBUSTNESS_METHODS = ("sdid", "sc", "did")
#: Most comparison units drawn in the weights figure and listed in the weights table.
TOP_UNITS = 15


def _macro(name: str, *args: Any, **kwargs: Any) -> Html:
    return render_macro(CHAPTER, name, *args, **kwargs)


def _method_name(method: str) -> str:
    return str(_module().method_names[method])


def _module() -> Any:
    from evaluator.reporting.html import _jinja

    return _jinja().get_template(CHAPTER).module


def _period(v: Any) -> str:
    """A period as the page shows it: a year or a period number without separators."""
    if isinstance(v, (int, np.integer)) or (isinstance(v, float) and float(v).is_integer()):
        return str(int(v))
    return str(v)


# -- the data ----------------------------------------------------------------------------------------------------------
def data_summary_synthetic(fit: SyntheticFit) -> Html:
    """The programme unit, the comparison units and the periods, with the estimation's notes."""
    r, s = fit.result, fit.settings
    tr = r.trajectories
    pre = tr.loc[~tr["post"], "treated"]
    times = list(tr.index)
    return _macro(
        "data",
        fit.treated_unit,
        count(fit.n_control, s.min_cell),
        _period(times[0]),
        _period(fit.first_treated),
        _period(times[-1]),
        int(r.info["n_pre"]),
        int(r.info["n_post"]),
        float(pre.mean()),
        shown_notes(fit.notes, s.min_cell),
    )


# -- the trajectories --------------------------------------------------------------------------------------------------
def trajectories_section(fit: SyntheticFit) -> Html:
    """The programme unit's path and its synthetic comparison (time weights below), and how well they agree before."""
    from evaluator.plots.synthetic import trajectory_plot

    r, s = fit.result, fit.settings
    words = dict(labels().synthetic_figure)
    words["x"] = label("time_axis", s.time)
    with figure_theme():
        fig = trajectory_plot(r.trajectories, title="", labels=words)
        figure = figure_html(fig, str(_macro("trajectories_caption", s.method)), css_class="synthetic-trajectories")
    rmse = r.info.get("pre_rmse")
    sentence = Html("")
    if rmse is not None:
        noise = float(r.info["noise_level"])
        sentence = _macro("fit_sentence", float(rmse), noise, bool(rmse > 2 * noise))
    return Html(figure + sentence)


# -- the weights -------------------------------------------------------------------------------------------------------
def weights_section(fit: SyntheticFit) -> Html:
    """The comparison units' weights (largest first, a table and a figure) and the periods' weights (SDID)."""
    from evaluator.plots.synthetic import unit_weight_plot

    r, s = fit.result, fit.settings
    cols = labels().synthetic_columns
    w = r.unit_weights
    positive = w[w > 1e-12].sort_values(ascending=False)
    units = pd.DataFrame({cols["unit"]: [str(u) for u in positive.index], cols["weight"]: positive.to_numpy(float)})
    figure = Html("")
    if s.method != "did" and len(positive):
        with figure_theme():
            fig = unit_weight_plot(positive, top=TOP_UNITS, title="", xlabel=str(labels().synthetic_figure["weight"]))
            figure = figure_html(fig, str(_macro("weights_caption")), css_class="synthetic-weights")
    times_table = None
    lam = r.time_weights
    if s.method == "sdid":
        shown = lam[lam > 1e-12]
        times = pd.DataFrame({cols["period"]: [_period(t) for t in shown.index], cols["weight"]: shown.to_numpy(float)})
        times_table = table_html(times, css_class="evaluator-table synthetic-time-weights")
    n_zero = int((w <= 1e-12).sum())
    return _macro(
        "weights",
        s.method,
        table_html(units.head(TOP_UNITS), css_class="evaluator-table synthetic-unit-weights"),
        count(len(positive), s.min_cell),
        count(n_zero, s.min_cell),
        figure,
        times_table,
    )


# -- the placebo distribution ------------------------------------------------------------------------------------------
def placebo_section(fit: SyntheticFit) -> Html:
    """Placebo in space (each comparison unit as if treated; the treated unit's estimate marked) and in time."""
    from evaluator.plots.synthetic import placebo_plot

    r, s = fit.result, fit.settings
    placebo = np.asarray(r.placebo_estimates, dtype=float)
    words = labels().synthetic_figure
    with figure_theme():
        fig = placebo_plot(
            placebo,
            r.estimate,
            title="",
            labels={
                "placebo": words["placebo"],
                "treated": words["placebo_treated"],
                "x": label("effect_axis", s.outcome_label),
            },
        )
        figure = figure_html(fig, str(_macro("placebo_caption")), css_class="synthetic-placebo")
    n_larger = int(np.sum(np.abs(placebo) >= abs(r.estimate) * (1 - 1e-12)))
    rows = None
    pt = fit.placebo_time
    if pt is not None:
        names = labels().placebo_time_rows
        lo, hi = pt.ci
        rows = [
            (names["fake_start"], _period(pt.info["fake_start"])),
            (names["estimate"], num(pt.estimate)),
            (names["interval"], label("interval", num(lo), num(hi))),
            (names["p_value"], p_value(pt.pvalue, 2)),
        ]
    return _macro(
        "placebo",
        figure,
        count(placebo.size, s.min_cell),
        n_larger,
        r.pvalue,
        float(r.info.get("p_resolution", math.nan)),
        rows,
    )


# -- robustness --------------------------------------------------------------------------------------------------------
def robustness_synthetic(fit: SyntheticFit) -> pd.DataFrame:
    """The estimate by each method (synthetic DiD, synthetic control, DiD) and the placebo in time, one row each.

    Columns ``specification`` (the method's key, or ``"placebo in time"``), ``estimate``, ``se``,
    ``ci_low``, ``ci_high``, ``p_value``, ``kind`` (``"main"``, ``"method"`` or ``"placebo"``, the
    row :func:`evaluator.reporting.verdict` reads as the placebo check) and ``note``.
    """
    s = fit.settings
    rows = []
    for method in ROBUSTNESS_METHODS:
        note = ""
        if method == s.method:
            res = fit.result
        else:
            try:
                with collect_warnings([]):
                    res = synthetic_estimate(fit.panel, s, method=method)
            except (EvaluatorError, ValueError) as exc:
                rows.append({"specification": method, "kind": "method", "note": str(exc).splitlines()[0]})
                continue
        lo, hi = res.ci
        rows.append(
            {
                "specification": method,
                "estimate": res.estimate,
                "se": res.se,
                "ci_low": lo,
                "ci_high": hi,
                "p_value": res.pvalue,
                "kind": "main" if method == s.method else "method",
                "note": note,
            }
        )
    pt = fit.placebo_time
    if pt is not None:
        lo, hi = pt.ci
        rows.append(
            {
                "specification": "placebo in time",
                "estimate": pt.estimate,
                "se": pt.se,
                "ci_low": lo,
                "ci_high": hi,
                "p_value": pt.pvalue,
                "kind": "placebo",
                "note": f"fake start {pt.info['fake_start']}",
            }
        )
    table = pd.DataFrame(rows)
    for c in ("estimate", "se", "ci_low", "ci_high", "p_value"):
        if c not in table:
            table[c] = np.nan
    return table[["specification", "estimate", "se", "ci_low", "ci_high", "p_value", "kind", "note"]]


def robustness_table_synthetic(robustness: pd.DataFrame, fit: SyntheticFit) -> Html:
    """The three methods side by side, with a sentence on how far the estimate moves between them."""
    cols = labels().synthetic_columns
    rows = robustness.loc[robustness["kind"] != "placebo"]
    shown = pd.DataFrame(
        {
            cols["method"]: [_method_name(m) for m in rows["specification"]],
            cols["estimate"]: rows["estimate"].to_numpy(float),
            cols["se"]: rows["se"].to_numpy(float),
            cols["ci_low"]: rows["ci_low"].to_numpy(float),
            cols["ci_high"]: rows["ci_high"].to_numpy(float),
            cols["p_value"]: rows["p_value"].to_numpy(float),
        }
    )
    est = rows["estimate"].dropna().to_numpy(float)
    low, high = (float(est.min()), float(est.max())) if est.size else (math.nan, math.nan)
    same_sign = bool(est.size) and (bool((est > 0).all()) or bool((est < 0).all()))
    return _macro(
        "robustness", table_html(shown, css_class="evaluator-table synthetic-robustness"), low, high, same_sign
    )


# -- appendix and results.json -----------------------------------------------------------------------------------------
def _parameters(fit: SyntheticFit) -> list[tuple[str, str]]:
    words = labels()
    out = []
    for name, value in display_parameters(fit.settings).items():
        title = words.synthetic_parameter_names.get(name) or words.parameter_names.get(name, name)
        if name == "language":
            shown = LANGUAGES.get(value, plain_value(value))
        elif name == "method":
            shown = _method_name(value)
        else:
            shown = plain_value(value)
        out.append((str(title), str(shown)))
    return out


def synthetic_appendix(fit: SyntheticFit, *, manifest: str | Path = "manifest.json") -> Html:
    """Technical appendix: how the estimate was computed, the notes, parameters, versions and the run record."""
    s = fit.settings
    words = labels()
    method = {
        "estimator": str(words.estimator_words(s.method, "", False)).strip(),
        "inference": str(words.inference_words("placebo", s.n_reps, 0, "")).strip(),
    }
    return render_macro(
        "chapters/appendix.html.j2",
        "appendix",
        method=method,
        design=fit.design,
        notes=shown_notes(fit.notes, s.min_cell),
        cells=None,
        small=0,
        hidden=0,
        min_cell=s.min_cell,
        event=None,
        check=Html(""),
        parameters=_parameters(fit),
        versions=list(package_versions().items()),
        manifest=manifest_facts(manifest),
    )


def results_extra_synthetic(fit: SyntheticFit, robustness: pd.DataFrame | None = None) -> dict[str, Any]:
    """What ``results.json`` keeps beyond the headline: weights, placebo estimates, robustness, parameters."""
    from evaluator.reporting.pipeline import page_notes

    r = fit.result
    w = r.unit_weights
    extra: dict[str, Any] = {
        "parameters": display_parameters(fit.settings),
        "notes": page_notes(fit.notes),
        "min_cell": fit.settings.min_cell,
        "method": fit.settings.method,
        "treated_unit": fit.treated_unit,
        "first_treated": fit.first_treated,
        "n_control": fit.n_control,
        "unit_weights": {str(k): float(v) for k, v in w[w > 1e-12].sort_values(ascending=False).items()},
        "time_weights": {_period(k): float(v) for k, v in r.time_weights.items()},
        "placebo_estimates": [float(v) for v in np.asarray(r.placebo_estimates, dtype=float)],
        "permutation_pvalue": r.info.get("permutation_pvalue"),
        "pre_rmse": r.info.get("pre_rmse"),
        "noise_level": r.info.get("noise_level"),
    }
    pt = fit.placebo_time
    if pt is not None:
        extra["placebo_in_time"] = {
            "fake_start": pt.info["fake_start"],
            "estimate": pt.estimate,
            "ci": list(pt.ci),
            "pvalue": pt.pvalue,
        }
    if robustness is not None:
        extra["robustness"] = robustness.replace({np.nan: None}).to_dict("records")
    return extra
