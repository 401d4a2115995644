"""The data and estimate chapters: validation facts, trends, event study, overlap, balance, the main table."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from evaluator.formatting import count, localized
from evaluator.i18n import N_
from evaluator.i18n import gettext as _
from evaluator.reporting.disclosure import small_groups, suppress_counts
from evaluator.reporting.html import Html, figure_html, figure_theme, label, labels, render_macro, table_html
from evaluator.reporting.methods import shown_path
from evaluator.reporting.pipeline import DidFit, MatchedFit, collect_warnings, shown_notes

#: The template of this chapter: one macro per piece (summaries, captions, balance verdict, estimate).
CHAPTER = "chapters/data.html.j2"

#: The headers of the cohort tables: column -> the reader's words (translated where the table is shown).
_HEADERS = {
    # TRANSLATORS: cohort table header: a cohort's first period in the programme (a period of the data).
    "first treated period": N_("first treated period"),
    # TRANSLATORS: cohort table header: the number of units (people, municipalities ...) of the cohort.
    "units": N_("units"),
    # TRANSLATORS: cohort table header: the number of clusters (groups whose outcomes may be related) of the cohort.
    "clusters": N_("clusters"),
    # TRANSLATORS: table header: a cohort, named by its first period in the programme.
    "cohort": N_("cohort"),
    # TRANSLATORS: table header of a matched comparison's cohorts: people in the programme.
    "treated": N_("treated"),
    # TRANSLATORS: table header of a matched comparison's cohorts: people not in the programme (the comparison pool).
    "controls": N_("controls"),
    # TRANSLATORS: table header of a matched comparison's cohorts: people in the programme who were matched.
    "matched": N_("matched"),
}

__all__ = [
    "balance_table",
    "data_summary_did",
    "data_summary_matched",
    "estimate_table",
    "event_study_figure",
    "love_plot",
    "overlap_figure",
    "small_cohorts",
    "trends_figure",
]


# -- section 2: data ---------------------------------------------------------------------------------------------------
def _dropped(frame: pd.DataFrame, min_cell: int = 0) -> list[Html]:
    """One phrase per reason units were dropped while loading (counts below ``min_cell`` hidden)."""
    dropped = frame.attrs.get("evaluator", {}).get("dropped", {}) or {}
    out = []
    for key, v in dropped.items():
        units, rows = v.get("units", "?"), v.get("rows", "?")
        if isinstance(units, (int, np.integer)):
            if 0 < units < min_cell:
                rows = None  # the number of rows would give the small count away
            units = count(units, min_cell)
        out.append(render_macro(CHAPTER, "dropped_phrase", units, rows, key))
    return out


def _headed(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the headers of :data:`_HEADERS` in the reader's language (other columns as they are)."""
    return frame.rename(columns={k: _(v) for k, v in _HEADERS.items()})


def small_cohorts(fit: DidFit) -> list[Any]:
    """Treated cohorts with fewer than ``min_cell`` units (empty when disclosure control is off)."""
    sizes = fit.cohorts.set_index("first treated period")["units"]
    return [g for g in small_groups(sizes[sizes.index != 0], fit.settings.min_cell)]


def pooled_cohorts(fit: DidFit) -> pd.DataFrame:
    """Units and clusters by cohort, with the cohorts below ``min_cell`` units pooled into one unnamed row.

    The pooled row says how many cohorts it holds, never which: naming a cohort of
    one state tells the reader that state's numbers.
    """
    mc = fit.settings.min_cell
    c = fit.cohorts.copy()
    small = (c["first treated period"] != 0) & (c["units"] < mc) if mc > 1 else c["units"] < 0
    shown = c.loc[~small].astype({"first treated period": object})
    shown["first treated period"] = shown["first treated period"].map(lambda g: label("never") if g == 0 else g)
    if small.any():
        pool = c.loc[small]
        row = {
            "first treated period": label("pooled_cohorts", int(small.sum()), mc),
            "units": int(pool["units"].sum()),
            "clusters": _pool_clusters(fit, pool["first treated period"]),
        }
        shown = pd.concat([shown, pd.DataFrame([row])], ignore_index=True)
    return shown.reset_index(drop=True)


def _pool_clusters(fit: DidFit, cohorts: pd.Series) -> int:
    """Distinct clusters among the units of ``cohorts`` (from the streamed aggregates when out of core)."""
    if fit.aggregates is not None:
        return fit.aggregates.clusters(cohorts.tolist())
    p, s = fit.panel, fit.settings
    return int(p.loc[p[s.cohort].isin(cohorts)][s.cluster or s.unit].nunique())


def _periods(fit: DidFit) -> np.ndarray:
    """The panel's distinct periods, sorted (whole numbers as integers)."""
    if fit.aggregates is None:
        return np.sort(fit.panel[fit.settings.time].unique())
    t = fit.aggregates.periods
    return t.astype(np.int64) if np.all(np.mod(t, 1) == 0) else t


def attrition_summary(fit: DidFit) -> pd.DataFrame | None:
    """How many units are observed in how many periods, by cohort; ``None`` for a balanced panel.

    Periods observed are grouped into bands (all, three quarters or more, half or
    more, fewer); cohorts below ``min_cell`` units share one column, as in the
    cohort table; counts below ``min_cell`` are suppressed when shown.
    """
    from evaluator.data.load import attrition_table

    s = fit.settings
    if not s.panel:
        return None
    try:
        table = attrition_table(fit.panel)
    except Exception:  # a frame not from load_panel: nothing to say about attrition
        return None
    n_periods = len(_periods(fit))
    if len(table) <= 1 and (len(table) == 0 or int(table.index[0]) == n_periods):
        return None
    observed = table.index.to_numpy()
    words = labels().attrition_bands
    band = np.select(
        [observed >= n_periods, observed >= 0.75 * n_periods, observed >= 0.5 * n_periods],
        [words["all"], words["most"], words["half"]],
        words["fewer"],
    )
    by_band = table.groupby(band, sort=False).sum()
    order = [w for w in (words["all"], words["most"], words["half"], words["fewer"]) if w in by_band.index]
    by_band = by_band.loc[order]
    small = set(small_cohorts(fit))
    keep = [c for c in by_band.columns if c not in small]
    out = by_band[keep].rename(columns=lambda c: label("never") if c == 0 else c)
    if small & set(by_band.columns):
        out[label("pooled_cohorts", len(small), s.min_cell)] = by_band[[c for c in by_band.columns if c in small]].sum(
            1
        )
    out = out.reset_index().rename(columns={"index": words["header"]})
    out.columns = [str(c) for c in out.columns]
    return out


def data_summary_did(fit: DidFit) -> Html:
    """Units, periods, cohorts with unit counts, clusters, anything dropped and why."""
    s, p = fit.settings, fit.panel
    times = _periods(fit)
    mc = s.min_cell
    shown = suppress_counts(pooled_cohorts(fit), counts=["units"], statistics=["clusters"], min_cell=mc)
    attrition = attrition_summary(fit)
    attrition_html, attrition_foot = Html(""), ""
    if attrition is not None:
        counted = [c for c in attrition.columns[1:]]
        shown_att = suppress_counts(attrition, counts=counted, min_cell=mc)
        attrition_html, attrition_foot = (
            table_html(shown_att.frame, css_class="evaluator-table attrition"),
            shown_att.footnote,
        )
    data_notes = shown_notes(
        [n for n in fit.notes if any(w in n.lower() for w in ("dropped", "unbalanced", "observed"))], mc
    )
    return render_macro(
        CHAPTER,
        "did_summary",
        s=s,
        data=shown_path(s.data_path),
        n_obs=len(p) if fit.aggregates is None else fit.aggregates.rows,
        n_units=count(fit.n_units, mc),
        n_treated=count(fit.n_treated, mc),
        n_never=count(fit.n_units - fit.n_treated, mc),
        n_periods=len(times),
        first=times[0],
        last=times[-1],
        n_clusters=fit.n_clusters,
        dropped=_dropped(p, mc),
        cohorts=table_html(_headed(shown.frame)),
        foot=shown.footnote,
        attrition=attrition_html,
        attrition_foot=attrition_foot,
        notes=data_notes,
    )


def data_summary_matched(fit: MatchedFit) -> Html:
    """Treated units, the comparison pool, who was matched and who was dropped (caliper, support) and why."""
    s = fit.settings
    mc = s.min_cell
    c = {k: count(v, mc) for k, v in fit.match.counts().items()}
    c["control_reuse_max"] = localized(f"{int(fit.match.counts()['control_reuse_max']):,}")  # not a count of people
    table, foot = Html(""), ""
    if s.cohort:
        d = fit.data
        per = (
            d.groupby(s.cohort)[s.treat]
            .agg(treated="sum", controls=lambda x: int((x == 0).sum()))
            .reset_index()
            .rename(columns={s.cohort: "cohort"})
        )
        per["treated"] = per["treated"].astype(int)
        per["matched"] = [fit.cohort_sizes.get(str(g), 0) for g in per["cohort"]]
        shown = suppress_counts(per, counts=["treated", "controls", "matched"], min_cell=mc)
        table, foot = table_html(_headed(shown.frame)), shown.footnote
    return render_macro(
        CHAPTER,
        "matched_summary",
        s=s,
        data=shown_path(s.data_path),
        c=c,
        n_people=count(len(fit.data), mc),
        cohorts=table,
        foot=foot,
        notes=shown_notes(fit.notes, mc),
        caliper=None if s.caliper is None else localized(str(s.caliper)),
    )


# -- figures -----------------------------------------------------------------------------------------------------------
def trends_figure(fit: DidFit) -> Html:
    """Raw mean outcome by cohort over time."""
    from evaluator import plots
    from evaluator.plots.figures import place_legend, record_counts, recorded_counts

    s, agg = fit.settings, fit.aggregates
    small = small_cohorts(fit)
    if agg is None:
        panel = fit.panel.loc[~fit.panel[s.cohort].isin(small)] if small else fit.panel
        drawn: dict[str, Any] = {"unit": s.unit}
    else:  # out of core: one row per (cohort, period) holding its mean, the units counted by the pass
        cells = agg.means.rename(s.outcome).reset_index().rename(columns={"cohort": s.cohort, "period": s.time})
        panel = cells.loc[~cells[s.cohort].isin(small)]
        drawn = {"units": agg.cohort_units.drop(small, errors="ignore").to_dict()}
    with figure_theme():
        fig = plots.trends(
            panel,
            outcome=s.outcome,
            time=s.time,
            cohort=s.cohort,
            outcome_label=s.outcome_label or None,
            time_label=label("time_axis", s.time),
            **drawn,
        )
        fig.set_size_inches(8, 4.2)
        merged_n = 0
        if small:
            if agg is None:
                merged = fit.panel.loc[fit.panel[s.cohort].isin(small)]
                n = int(merged[s.unit].nunique())
                means = merged.groupby(s.time)[s.outcome].mean()
            else:
                n = int(agg.cohort_units[agg.cohort_units.index.isin(small)].sum())
                pooled = agg.cells.loc[agg.cells.index.get_level_values("cohort").isin(small)].groupby(level="period")
                means = pooled["total"].sum() / pooled["rows"].sum()
            if n >= s.min_cell:
                ax = fig.axes[0]
                label_ = label("merged_cohorts", n)
                ax.plot(means.index, means.to_numpy(), color="black", ls=":", lw=1.2, label=label_)
                place_legend(ax)
                record_counts(fig, "cohorts", [*recorded_counts(fig).get("cohorts", []), n])
                merged_n = n
        caption = render_macro(CHAPTER, "trends_caption", s, bool(merged_n), merged_n, len(small))
        return figure_html(fig, caption, css_class="raw-trends")


def event_study_figure(fit: DidFit) -> Html:
    """The event-study figure with the pre-trend check in its caption (class ``event-study``)."""
    from matplotlib.figure import Figure

    from evaluator import plots

    s, ev = fit.settings, fit.event
    table, n_hidden = shown_event_table(fit)
    shown = replace(ev, table=table, info={k: v for k, v in ev.info.items() if k != "pretest"})
    with figure_theme():
        fig = Figure(figsize=(9, 4.2), layout="constrained")
        title = label("event_title")
        # the table's n_units column is recorded on the figure for the disclosure check
        plots.coefficients(shown, ax=fig.add_subplot(), title=title, outcome_label=s.outcome_label or s.outcome)
        caption = render_macro(
            CHAPTER,
            "event_caption",
            s.estimator == "callaway_santanna",
            fit.pretrend.get("sentence", ""),
            n_hidden,
            s.min_cell,
        )
        return figure_html(fig, caption, css_class="event-study")


def shown_event_table(fit: DidFit) -> tuple[pd.DataFrame, int]:
    """The event-study rows a reader may see, with their unit counts (``n_units``), and how many were left out.

    Rows resting on fewer than ``min_cell`` programme units are left out
    (disclosure control); the reference period and aggregates are kept.
    """
    t = fit.event.table.copy()
    if "event_time" not in t:
        return t, 0
    e = t["event_time"]
    n = e.map(lambda v: fit.event_counts.get(int(v), 0) if pd.notna(v) else np.nan)
    t["n_units"] = n
    mc = fit.settings.min_cell
    if mc <= 1:
        return t, 0
    hide = e.notna() & (n < mc) & t["std_error"].notna()
    return t.loc[~hide].reset_index(drop=True), int(hide.sum())


def overlap_figure(fit: MatchedFit) -> Html:
    """Propensity-score distributions of treated and comparison people, before and after matching."""
    from evaluator.estimators.matching import match

    m = fit.match
    if "pscore" not in m.data.columns:  # Mahalanobis matching: fit a score only to show overlap
        s = fit.settings
        with collect_warnings([]):
            m = match(fit.data, treat=s.treat, covariates=list(s.covariates), unit=s.unit, distance="ps")
        m = replace(m, data=m.data.assign(match_weight=fit.match.data["match_weight"].to_numpy()))
    with figure_theme():
        fig = m.plot_overlap(min_cell=fit.settings.min_cell)
        return figure_html(fig, render_macro(CHAPTER, "overlap_caption"), css_class="overlap")


def love_plot(fit: MatchedFit) -> Html:
    """Love plot: absolute standardised mean differences before and after matching."""
    small = _small_levels(fit, fit.match.balance())
    with figure_theme():
        c = fit.match.counts()
        groups = {
            "programme": c["treated_matched"],
            "comparison before": c["controls"],
            "comparison after": c["controls_used"],
        }
        fig = fit.match.plot_balance(exclude=small, counts=groups)
        caption = render_macro(CHAPTER, "love_caption", len(small), fit.settings.min_cell)
        return figure_html(fig, caption, css_class="love-plot")


def balance_table(fit: MatchedFit) -> Html:
    """Balance before and after matching: means, standardised differences, variance ratios (``balance-table``)."""
    b = fit.match.balance()
    wide = b.pivot(index="term", columns="sample", values=["mean_treated", "mean_control", "smd", "var_ratio"])
    order = list(dict.fromkeys(b["term"]))
    out = pd.DataFrame(
        {
            "characteristic": order,
            "mean_treated": wide[("mean_treated", "after")].loc[order].to_numpy(),
            "mean_control_before": wide[("mean_control", "before")].loc[order].to_numpy(),
            "mean_control_after": wide[("mean_control", "after")].loc[order].to_numpy(),
            "smd_before": wide[("smd", "before")].loc[order].to_numpy(),
            "smd_after": wide[("smd", "after")].loc[order].to_numpy(),
            "var_ratio_after": wide[("var_ratio", "after")].loc[order].to_numpy(),
        }
    )
    words = labels()
    out["characteristic"] = out["characteristic"].replace({"distance": words.distance_term})
    out.iloc[:, 1:] = out.iloc[:, 1:].astype(float).round(3)
    small = _small_levels(fit, b)
    worst = float(np.nanmax(np.abs(out["smd_after"].to_numpy(dtype=float))))
    if small:
        hide = out["characteristic"].isin(small)
        out = out.astype({c: object for c in out.columns[1:]})
        out.loc[hide, out.columns[1:]] = "."
    table = table_html(out.rename(columns=words.balance_columns), css_class="balance-table")
    return render_macro(CHAPTER, "balance", table, len(small), fit.settings.min_cell, worst)


def _small_levels(fit: MatchedFit, balance: pd.DataFrame) -> list[str]:
    """Balance terms (levels of categorical or 0/1 characteristics) held by fewer than ``min_cell`` people in a group.

    Counted before matching (everyone) and after (the matched sample), among
    programme and comparison people, for the level and for its complement.
    """
    s = fit.settings
    mc = s.min_cell
    if mc <= 1:
        return []
    before = fit.data
    after = fit.match.data
    if "match_weight" in after.columns:
        after = after.loc[after["match_weight"] > 0]
    out = []
    terms = balance.drop_duplicates("term")
    for _i, row in terms.iterrows():
        term, cov = str(row["term"]), str(row.get("covariate", row["term"]))
        if cov not in before.columns:
            continue
        if term.startswith(cov + "[") and term.endswith("]"):
            level = term[len(cov) + 1 : -1]

            def ind(d: pd.DataFrame, cov: str = cov, level: str = level) -> pd.Series:
                return d[cov].astype(str) == level
        elif row.get("kind") == "binary":

            def ind(d: pd.DataFrame, cov: str = cov) -> pd.Series:
                return pd.to_numeric(d[cov], errors="coerce") == 1
        else:
            continue
        for d in (before, after):
            flag = ind(d)
            for group in (0, 1):
                g = flag[d[s.treat] == group]
                for n in (int(g.sum()), int((~g).sum())):
                    if 0 < n < mc:
                        out.append(term)
        # one small count is enough
    return list(dict.fromkeys(out))


# -- estimate table ----------------------------------------------------------------------------------------------------
def estimate_table(fit: DidFit | MatchedFit) -> Html:
    """The main estimate with its uncertainty, sample and method; for Callaway-Sant'Anna also the other summaries."""
    r = fit.result
    level = round(100 * (1 - r.alpha))
    words = labels()
    rows = [(words.estimate_rows["main"], r)]
    if isinstance(fit, DidFit) and fit.settings.estimator == "callaway_santanna":
        with collect_warnings([]):  # said already when the fit was made
            for kind in ("dynamic", "group"):
                rows.append((words.estimate_rows[kind], r.aggregate(kind)))  # type: ignore[attr-defined]
    if isinstance(fit, MatchedFit):
        for g, (_fitted, res) in fit.by_cohort.items():
            rows.append((label("cohort_row", g), res))
    columns = {
        "summary": [n for n, _x in rows],
        "estimate": [x.estimate for _n, x in rows],
        "se": [x.se for _n, x in rows],
        "ci_low": [x.ci[0] for _n, x in rows],
        "ci_high": [x.ci[1] for _n, x in rows],
        "p_value": [x.pvalue for _n, x in rows],
    }
    table = pd.DataFrame({label("estimate_column", k, level): v for k, v in columns.items()})
    from evaluator.reporting.methods import method_words

    return render_macro(
        CHAPTER,
        "estimate",
        table_html(table),
        r,
        fit.settings.outcome_label,
        method_words(fit),
        isinstance(fit, DidFit) and fit.settings.estimator == "callaway_santanna",
    )
