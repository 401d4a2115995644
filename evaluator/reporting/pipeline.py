"""The report pipeline: load the data and fit the model once; every chapter reads the fit."""

from __future__ import annotations

import math
import re
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaluator.data.aggregates import PanelAggregates
from evaluator.data.datasets import resolve_data
from evaluator.data.panel_source import PanelSource
from evaluator.errors import EvaluatorError, EvaluatorWarning, ParameterError, SmallCohortWarning
from evaluator.formatting import localized
from evaluator.i18n import N_, current, language, ngettext
from evaluator.i18n import gettext as _
from evaluator.reporting.html import render_text
from evaluator.reporting.settings import DidSettings, MatchedSettings, SyntheticSettings
from evaluator.results.base import Result

__all__ = [
    "DidFit",
    "OUT_OF_CORE_NOTE",
    "page_notes",
    "MatchedFit",
    "SyntheticFit",
    "TECHNICAL_NOTES_TITLE",
    "collect_warnings",
    "estimate_did",
    "fit_did",
    "fit_matched",
    "fit_synthetic",
    "load_did",
    "load_matched",
    "load_synthetic",
    "match_people",
    "matched_effect",
    "synthetic_estimate",
    "technical_notes",
    "technical_notes_title",
    "shown_notes",
]


@contextmanager
def collect_warnings(notes: list[str]) -> Iterator[None]:
    """Record warnings raised inside as notes (evaluator's own verbatim); FutureWarnings are dropped, and so are
    ResourceWarnings: an unclosed file or socket collected meanwhile is housekeeping, not the analysis, and its
    message names a local path."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        if issubclass(w.category, (FutureWarning, DeprecationWarning, PendingDeprecationWarning, ResourceWarning)):
            continue
        text = str(w.message)
        if issubclass(w.category, SmallCohortWarning):  # names the small cohorts: the report says it without them
            text = _english(SMALL_GROUPS_NOTE)  # notes stay English; page_notes says them in the page's language
        elif not issubclass(w.category, EvaluatorWarning):
            text = f"{w.category.__name__}: {text}"
        if text not in notes:
            notes.append(text)


# Notes of the estimators that name single cells, cohorts or event times (often the small ones), or the API.
_NAMES_CELLS = re.compile(
    r"cohorts? \[|ATT\(\d|\b[eg]=-?\d|single[- ]unit|single cluster|one-cluster|fewer than 2 clusters", re.I
)
_IDS = re.compile(r"[;:,]\s*(?:units?|ids?|people|persons)\s+[\w.-]+(?:,\s*[\w.-]+)+(?:\s*\(\d[\d,]* in all\))?")
_API = re.compile(r"aggregate\(|band_low|band_high|n_boot|\.effect\(|\w+=['\"\w]|att_gt|\(\)")

#: The title of the estimation's notes that a non-English page shows as they are, in English.
TECHNICAL_NOTES_TITLE = N_("Technical notes from the estimation (in English)")

#: The report's own note when two-way fixed effects is asked for a never-treated comparison (fit.notes keeps it).
TWFE_NEVER_NOTE = N_(
    "two-way fixed effects compares with every unit not (yet) in the programme; a comparison with "
    "never-treated units only applies to Callaway-Sant'Anna"
)
#: What a report read out of core says of a part it leaves out (a robustness row, the appendix's check).
# TRANSLATORS: the data were read in passes ("out of core"), never whole in memory; this part of the report needs
# the whole data in memory, so it was not computed.
OUT_OF_CORE_NOTE = N_("not computed: the data were read out of core and this needs them in memory")
#: The report's own note on matched cohorts too small to estimate on their own (numbers filled in).
SMALL_COHORTS_NOTE = (
    "{n} cohort(s) have fewer than {min_cell} participants: not estimated on their own "
    "(statistical disclosure control); they count in the overall estimate"
)

# Notes of the reporting and estimation layers that a non-English page says in its own language: the
# English note's pattern and its sentence in the page's language. Any other note is shown as it is, in
# English, under TECHNICAL_NOTES_TITLE (technical_notes).
_SPACES = re.compile(r"[ \t\r\n]+")
_NUMBER = r"<?\d[\d,]*"  # a count, maybe masked ("<5")
_CALIPER = re.compile(
    rf"the caliper \((?P<caliper>[\d.]+) sd = (?P<width>[\d.e+-]+)\) left (?P<n>{_NUMBER}) of (?P<total>{_NUMBER}) "
    r"treated units unmatched(?P<most> \(most of them\))?; the estimate is for the matched treated only\. "
    r"Fix: widen the caliper or report the estimand for the matched subgroup"
)
_NOT_MATCHED = re.compile(
    rf"(?P<n>{_NUMBER}) of (?P<total>{_NUMBER}) treated units were not matched \(caliper, common support or pool\); "
    r"the estimate is for the matched treated only"
)
_ADOPTION_COHORTS = re.compile(
    r"(?P<n>\d+) adoption cohorts: two-way fixed effects weights cohort-period effects implicitly \(some weights "
    r"can be negative\) and is biased when effects differ by cohort or grow over time; compare with a "
    r"heterogeneity-robust estimator \(e\.g\. Callaway-Sant'Anna\)"
)
_SMALL_COHORTS = re.compile(
    SMALL_COHORTS_NOTE.replace("(", r"\(").replace(")", r"\)").format(n=r"(?P<n>\d+)", min_cell=r"(?P<min_cell>\d+)")
)


def _english(template: str, **context: Any) -> str:
    """A note template rendered in English, on one line (what fit.notes keeps and page_notes recognises)."""
    with language("en"):
        return _one_line(render_text(template, **context))


def _one_line(text: str) -> str:
    """``text`` on one line; a no-break space (inside a number, in some languages) stays."""
    return _SPACES.sub(" ", text).strip()


def _count(text: str) -> int:
    """A count of a note, for choosing a plural ("<5" counts as a few)."""
    digits = text.lstrip("<").replace(",", "")
    return int(digits) if digits.isdigit() else 0


def _translated(note: str) -> str | None:
    """The page-language sentence of one of the notes the report knows (an English note), else ``None``."""
    if note == TWFE_NEVER_NOTE:
        return _(TWFE_NEVER_NOTE)
    if note == _english(SMALL_GROUPS_NOTE):
        return _one_line(render_text(SMALL_GROUPS_NOTE))
    if m := _SMALL_COHORTS.fullmatch(note):
        # TRANSLATORS: n: how many cohorts (groups that entered the programme in the same period); min_cell: the
        # smallest number of participants a figure may rest on. English writes "cohort(s)" in both forms.
        text = ngettext(
            "%(n)s cohort(s) have fewer than %(min_cell)s participants: not estimated on their own "
            "(statistical disclosure control); they count in the overall estimate",
            "%(n)s cohort(s) have fewer than %(min_cell)s participants: not estimated on their own "
            "(statistical disclosure control); they count in the overall estimate",
            int(m["n"]),
        )
        return text % {"n": m["n"], "min_cell": m["min_cell"]}
    if m := _ADOPTION_COHORTS.fullmatch(note):
        # TRANSLATORS: n: how many adoption cohorts (groups that entered the programme in the same period), always
        # more than one.
        text = ngettext(
            "%(n)s adoption cohort: two-way fixed effects weights cohort-period effects implicitly (some weights "
            "can be negative) and is biased when effects differ by cohort or grow over time; compare with a "
            "heterogeneity-robust estimator (e.g. Callaway-Sant'Anna)",
            "%(n)s adoption cohorts: two-way fixed effects weights cohort-period effects implicitly (some weights "
            "can be negative) and is biased when effects differ by cohort or grow over time; compare with a "
            "heterogeneity-robust estimator (e.g. Callaway-Sant'Anna)",
            int(m["n"]),
        )
        return text % {"n": m["n"]}
    if m := _CALIPER.fullmatch(note):
        numbers = {
            "caliper": localized(m["caliper"]),
            "width": localized(m["width"]),
            "n": m["n"],
            "total": m["total"],
        }
        if m["most"]:
            # TRANSLATORS: caliper: the largest allowed distance of a match, in standard deviations ("sd") of the
            # matching score; width: the same distance in the score's units; n of total: treated units left
            # unmatched, most of them.
            text = ngettext(
                "the caliper (%(caliper)s sd = %(width)s) left %(n)s of %(total)s treated unit unmatched (most of "
                "them); the estimate is for the matched treated only. Fix: widen the caliper or report the "
                "estimand for the matched subgroup",
                "the caliper (%(caliper)s sd = %(width)s) left %(n)s of %(total)s treated units unmatched (most of "
                "them); the estimate is for the matched treated only. Fix: widen the caliper or report the "
                "estimand for the matched subgroup",
                _count(m["total"]),
            )
        else:
            # TRANSLATORS: caliper: the largest allowed distance of a match, in standard deviations ("sd") of the
            # matching score; width: the same distance in the score's units; n of total: treated units left
            # unmatched.
            text = ngettext(
                "the caliper (%(caliper)s sd = %(width)s) left %(n)s of %(total)s treated unit unmatched; the "
                "estimate is for the matched treated only. Fix: widen the caliper or report the estimand for the "
                "matched subgroup",
                "the caliper (%(caliper)s sd = %(width)s) left %(n)s of %(total)s treated units unmatched; the "
                "estimate is for the matched treated only. Fix: widen the caliper or report the estimand for the "
                "matched subgroup",
                _count(m["total"]),
            )
        return text % numbers
    if m := _NOT_MATCHED.fullmatch(note):
        # TRANSLATORS: n of total: treated units that found no match.
        text = ngettext(
            "%(n)s of %(total)s treated unit were not matched (caliper, common support or pool); the estimate is "
            "for the matched treated only",
            "%(n)s of %(total)s treated units were not matched (caliper, common support or pool); the estimate is "
            "for the matched treated only",
            _count(m["total"]),
        )
        return text % {"n": m["n"], "total": m["total"]}
    return None


def _sorted_notes(notes: Sequence[str], min_cell: int | None) -> tuple[list[str], list[str]]:
    """The notes a page shows in its language, and (non-English pages) those it can only show in English."""
    from evaluator.reporting.disclosure import mask_small

    english = current() == "en"
    out: list[str] = []
    technical: list[str] = []
    for n in notes:
        n = _IDS.sub("", n)  # a list of unit ids names people: the count stays, the ids go
        if min_cell is not None and not english:
            n = mask_small(n, min_cell)  # before translating: the masking reads the English words after a count
        if n.startswith("the joint pre-trend test is not reported"):
            text = _one_line(render_text(JOINT_TEST_NOTE))
        elif n.startswith("simultaneous bands"):
            text = _one_line(render_text(BANDS_NOTE, lone="fewer than 2 clusters" in n))
        elif _NAMES_CELLS.search(n):
            text = _one_line(render_text(SMALL_GROUPS_NOTE))
        elif _API.search(n):
            continue
        elif english:
            text = n
        else:
            said = _translated(n)
            if said is None:
                if n not in technical:
                    technical.append(n)
                continue
            text = said
        if min_cell is not None and english:
            text = mask_small(text, min_cell)
        if text not in out:
            out.append(text)
    return out, technical


def page_notes(notes: Sequence[str], *, min_cell: int | None = None) -> list[str]:
    """The estimators' notes as a reader may see them: none names a cell or cohort, none quotes the API.

    A note that names cells or cohorts becomes one general sentence (the small
    groups are never named); a note that is about how to call the API is left to
    the notebook (``fit.notes`` keeps every note as it was).

    The notes are English (the estimation layer writes them so). A page in another
    language shows the notes the report knows in its own language; the others are
    not among these but in :func:`technical_notes`, shown as they are under
    :func:`technical_notes_title`. ``min_cell``: mask counts of people below it
    (:func:`evaluator.reporting.disclosure.mask_small`); for a non-English page this
    must happen here, on the English words, before the note is translated.

    Examples
    --------
    >>> notes = page_notes(["cohorts [2005, 2009] have a single unit", "12 units dropped", "see aggregate('g')"])
    >>> [n[:40] for n in notes]
    ['some cohorts rest on very few units: the', '12 units dropped']
    >>> page_notes(["dropped 3 units; units 5, 15, 16 (3 in all)"])
    ['dropped 3 units']
    >>> page_notes(["dropped 3 units"], min_cell=5)
    ['dropped <5 units']
    >>> with language("da"):
    ...     page_notes(["12 units dropped"]), technical_notes(["12 units dropped"])
    ([], ['12 units dropped'])
    """
    return _sorted_notes(notes, min_cell)[0]


def technical_notes(notes: Sequence[str], *, min_cell: int | None = None) -> list[str]:
    """The notes a non-English page cannot say in its language: shown as they are, in English; none on an English page.

    Show them under :func:`technical_notes_title`, after :func:`page_notes` of the same
    notes (with the same ``min_cell``).

    Examples
    --------
    >>> technical_notes(["12 units dropped"])
    []
    """
    return _sorted_notes(notes, min_cell)[1]


def technical_notes_title() -> str:
    """The title of :func:`technical_notes`, in the page's language."""
    return _(TECHNICAL_NOTES_TITLE)


def shown_notes(notes: Sequence[str], min_cell: int) -> list[str]:
    """The notes a chapter lists: :func:`page_notes` in the page's language, then any it cannot translate,
    in English after :func:`technical_notes_title` (counts below ``min_cell`` masked before translation).

    Examples
    --------
    >>> shown_notes(["12 units dropped", "3 units dropped"], 5)
    ['12 units dropped', '<5 units dropped']
    """
    return page_notes(notes, min_cell=min_cell) + [
        f"{technical_notes_title()}: {n}" for n in technical_notes(notes, min_cell=min_cell)
    ]


#: The note shown for an estimator's note that some simultaneous bands were widened (which names the rows).
BANDS_NOTE = "sentences/bands_note.txt.j2"
#: The note shown for the estimator's "joint pre-trend test is not reported" (which quotes the API).
JOINT_TEST_NOTE = "sentences/joint_test_note.txt.j2"
#: The note that replaces an estimator's warning naming small cohorts (the page must not name them).
SMALL_GROUPS_NOTE = "sentences/small_groups_note.txt.j2"
#: The template of the pre-trend verdict shown under the event-study figure.
PRETREND = "sentences/pretrend.txt.j2"


# -- loading and fitting -----------------------------------------------------------------------------------------------
def _notes_of(frame: pd.DataFrame) -> list[str]:
    return list(frame.attrs.get("evaluator", {}).get("notes", []))


def load_did(settings: DidSettings) -> pd.DataFrame:
    """Read and validate the panel named by ``settings.data_path`` (:func:`evaluator.load_panel`).

    Warnings (e.g. units dropped for lack of a pre-period) are kept in
    ``frame.attrs["evaluator"]["notes"]`` for the data section.
    """
    from evaluator.data.load import load_cross_sections, load_panel
    from evaluator.reporting.settings import ROW_ID

    s = settings
    columns: dict[str, Any] = {"unit": s.unit, "time": s.time, "outcome": s.outcome, "cohort": s.cohort}
    if s.cluster:
        columns["cluster"] = s.cluster
    if s.covariates:
        columns["covariates"] = list(s.covariates)
    if s.weights:
        columns["weight"] = s.weights
    notes: list[str] = []
    with collect_warnings(notes):
        if s.panel:
            # out of core: a PanelSource, validated and summarised in one pass, never the frame
            frame = load_panel(resolve_data(s.data_path), columns=columns, out_of_core=s.out_of_core)
        else:  # repeated cross-sections: one row per person and period
            if s.unit == ROW_ID:
                columns.pop("unit")
            frame = load_cross_sections(resolve_data(s.data_path), columns=columns)
            if s.unit == ROW_ID:  # no person id: each row counts as its own unit in the report's tables
                frame[ROW_ID] = np.arange(len(frame))
    # the loader's own notes (an unbalanced panel, units seen once) first, then the warnings, each once
    own = list(frame.attrs["evaluator"].get("notes", []))
    frame.attrs["evaluator"]["notes"] = list(dict.fromkeys([*own, *notes]))
    return frame


def load_matched(settings: MatchedSettings) -> pd.DataFrame:
    """Read and validate one-row-per-person data (:func:`evaluator.load_individuals`)."""
    from evaluator.data.load import load_individuals

    s = settings
    covs = list(dict.fromkeys([*s.covariates, *s.exact]))
    columns = {"unit": s.unit, "treat": s.treat, "outcome": s.outcome, "covariates": covs}
    notes: list[str] = []
    with collect_warnings(notes):
        frame = load_individuals(resolve_data(s.data_path), columns=columns)
    if s.cohort and s.cohort not in frame.columns:
        raise ParameterError(
            f"cohort={s.cohort!r}: no such column in {s.data_path}; the columns are {list(frame.columns)}"
        )
    if s.cohort and frame[s.cohort].isna().any():
        raise ParameterError(f"cohort={s.cohort!r}: the column has missing values; every person needs a cohort")
    frame.attrs["evaluator"]["notes"] = notes
    return frame


@dataclass
class DidFit:
    """What the difference-in-differences report shows: the headline result, the event study and notes."""

    settings: DidSettings
    panel: pd.DataFrame | PanelSource  # a PanelSource when the data are read out of core
    result: Result
    event: Result
    notes: list[str]
    n_units: int
    n_treated: int
    n_clusters: int
    cohorts: pd.DataFrame
    pretrend: dict[str, Any] = field(default_factory=dict)
    event_counts: pd.Series = field(default_factory=lambda: pd.Series(dtype=int))

    @property
    def design(self) -> str:
        return self.settings.design

    @property
    def aggregates(self) -> PanelAggregates | None:
        """The panel's counts and means by cohort and period when it is read out of core, else ``None``."""
        return self.panel.aggregates if isinstance(self.panel, PanelSource) else None


def estimate_did(
    panel: pd.DataFrame,
    s: DidSettings,
    *,
    estimator: str | None = None,
    control: str | None = None,
    inference: str | None = None,
    covariates: Sequence[str] | None = None,
    base_period: str = "varying",
) -> Result:
    """One difference-in-differences estimate under the settings, with the given parts changed.

    ``base_period`` is Callaway-Sant'Anna's (``"universal"`` for a common reference period, as the
    sensitivity analysis needs)."""
    from evaluator.estimators.staggered import staggered_did
    from evaluator.estimators.twfe import did
    from evaluator.reporting.settings import ROW_ID

    estimator = estimator or s.estimator
    inference = inference or s.inference
    covs = list(s.covariates if covariates is None else covariates)
    common = {"outcome": s.outcome, "unit": s.unit, "time": s.time, "cohort": s.cohort, "cluster": s.cluster}
    if s.weights:
        common["weights"] = s.weights
    if estimator == "callaway_santanna":
        control = control or s.control_group
        if not s.panel:
            common["unit"] = None if s.unit == ROW_ID else s.unit
        return staggered_did(
            panel,
            **common,
            panel=s.panel,
            allow_unbalanced_panel=s.allow_unbalanced_panel,
            control="not_yet" if control in ("not_yet", "notyet") else "never",
            method=s.method if covs else "dr",
            covariates=covs or None,
            base_period=base_period,
            n_boot=s.n_boot if inference == "bootstrap" else 0,
            seed=s.seed,
            alpha=s.alpha,
        )
    return did(
        panel,
        **common,
        covariates=covs or None,
        inference="wild" if inference == "wild" else "cluster",
        n_boot=s.n_boot,
        seed=s.seed,
        alpha=s.alpha,
    )


def _window(panel: pd.DataFrame | PanelSource, s: DidSettings) -> tuple[int, int]:
    """Event-time window of the event study: up to 6 periods before and 12 after the start."""
    if isinstance(panel, PanelSource):
        e = panel.aggregates.event_rows().index.to_numpy()
        return int(min(6, -e.min())) if len(e) else 0, int(min(12, e.max())) if len(e) else 0
    g = panel[s.cohort].to_numpy()
    t = panel[s.time].to_numpy()
    treated = g != 0
    e = t[treated] - g[treated]
    return int(min(6, -e.min())) if len(e) else 0, int(min(12, e.max())) if len(e) else 0


def event_counts(panel: pd.DataFrame, s: DidSettings, *, leads: int, lags: int, binned: bool) -> pd.Series:
    """Programme units behind each event-study point: distinct treated units observed ``e`` periods from their start.

    ``binned``: the end points collect everything beyond them (two-way fixed effects
    bins the first lead and last lag); otherwise periods outside ``-leads .. lags``
    are not counted. Indexed by event time.

    Examples
    --------
    >>> p = pd.DataFrame({"u": [1, 1, 2, 2], "t": [1, 2, 1, 2], "g": [2, 2, 0, 0], "y": 0.0})
    >>> s = DidSettings(data_path="p.csv", unit="u", time="t", outcome="y", cohort="g")
    >>> event_counts(p, s, leads=1, lags=0, binned=False).to_dict()
    {-1: 1, 0: 1}
    """
    if isinstance(panel, PanelSource):  # rows of a (cohort, period) cell are its distinct units
        rows = panel.aggregates.event_rows()
        e = rows.index.to_numpy()
        if binned:
            e = np.clip(e, -leads, lags)
        keep = (e >= -leads) & (e <= lags)
        return rows[keep].groupby(e[keep]).sum().rename("units").rename_axis("e")
    g = panel[s.cohort].to_numpy()
    treated = g != 0
    e = panel[s.time].to_numpy()[treated] - g[treated]
    if binned:
        e = np.clip(e, -leads, lags)
    keep = (e >= -leads) & (e <= lags)
    frame = pd.DataFrame({"e": e[keep].astype(int), "unit": panel[s.unit].to_numpy()[treated][keep]})
    return frame.groupby("e")["unit"].nunique().rename("units")


def _pretrend(
    event: Result,
    *,
    restrictions: int,
    n_clusters: int,
    alpha: float,
    counts: pd.Series | None = None,
    small_cells: bool = False,
    min_cell: int = 0,
) -> dict[str, Any]:
    """A pre-trend verdict: the joint test where it is reliable, else the simultaneous bands (or Bonferroni).

    The joint test is not reliable with as many restrictions as clusters, nor when
    some of its cells rest on fewer than ``min_cell`` units (``small_cells``): one
    unit's noise then reads as a diverging trend. The bands are then read only at
    the periods with at least ``min_cell`` programme units (``counts``).
    """
    pre = event.pretest
    t = event.table
    rows = t.loc[(t["event_time"] < 0) & t["std_error"].notna()] if "event_time" in t else t.iloc[0:0]
    n_small_periods = 0
    if counts is not None and min_cell > 1 and len(rows):
        n_e = rows["event_time"].astype(int).map(counts).fillna(0)
        n_small_periods = int((n_e < min_cell).sum())
        rows = rows.loc[n_e >= min_cell]
    out: dict[str, Any] = {"n_pre": len(rows), "small_cells": bool(small_cells), "small_periods": n_small_periods}
    computed = pre is not None and math.isfinite(float(pre.get("statistic", math.nan))) and float(pre["statistic"]) >= 0
    reliable = computed and restrictions < n_clusters - 1 and not small_cells
    out["reliable"] = reliable
    if computed and not reliable and small_cells:
        out["unreliable_p_value"] = float(pre["p_value"])  # kept for analysts; never read as a verdict
    if reliable:
        p = float(pre["p_value"])
        out.update(method="joint test", p_value=p, passed=p >= alpha)
        out["sentence"] = render_text(PRETREND, case="joint", restrictions=restrictions, p=p, passed=p >= alpha)
        return out
    if rows.empty:
        out.update(method="none", passed=None, sentence=render_text(PRETREND, case="none", small_cells=small_cells))
        return out
    if {"band_low", "band_high"} <= set(t.columns) and rows["band_low"].notna().all():
        lo, hi, how = rows["band_low"], rows["band_high"], "simultaneous (uniform) bands"
    else:
        from scipy import stats

        z = float(stats.norm.ppf(1 - alpha / (2 * len(rows))))
        lo, hi = rows["estimate"] - z * rows["std_error"], rows["estimate"] + z * rows["std_error"]
        how = "Bonferroni-adjusted intervals"
    bad = rows.loc[(lo > 0) | (hi < 0), "event_time"].astype(int).tolist()
    out.update(method=how, passed=not bad, periods_failing=bad)
    out["sentence"] = render_text(
        PRETREND,
        case="bands",
        unreliable=pre is not None or restrictions >= n_clusters - 1,
        small_cells=small_cells,
        min_cell=min_cell,
        n_small_periods=n_small_periods,
        restrictions=restrictions,
        n_clusters=n_clusters,
        level=round(100 * (1 - alpha)),
        how=how,
        bad=bad,
        n_pre=len(rows),
    )
    return out


def fit_did(panel: pd.DataFrame, settings: DidSettings) -> DidFit:
    """The main difference-in-differences estimate and its event study, as the settings ask.

    Callaway-Sant'Anna: headline = the simple aggregate; event study = the dynamic
    aggregate over event times -6 to 12. Two-way fixed effects: headline =
    :func:`evaluator.did`; event study = :func:`evaluator.event_study` with 6 leads
    and 12 lags (binned end points).
    """
    from evaluator.estimators.twfe import event_study

    s = settings
    notes = _notes_of(panel)
    leads, lags = _window(panel, s)
    with collect_warnings(notes):
        result = estimate_did(panel, s)
        if s.estimator == "callaway_santanna":
            event = result.aggregate("dynamic", min_e=-leads, max_e=lags)  # type: ignore[attr-defined]
            att = result.att_gt  # type: ignore[attr-defined]
            restrictions = int(((att["time"] < att["cohort"]) & att["att"].notna()).sum())
        else:
            if s.control_group == "never":
                notes.append(TWFE_NEVER_NOTE)
            event = event_study(
                panel,
                outcome=s.outcome,
                unit=s.unit,
                time=s.time,
                cohort=s.cohort,
                cluster=s.cluster,
                weights=s.weights or None,
                covariates=list(s.covariates) or None,
                leads=max(leads, 1),
                lags=lags,
                inference="wild" if s.inference == "wild" else "cluster",
                n_boot=s.n_boot,
                seed=s.seed,
                alpha=s.alpha,
            )
            restrictions = max(leads - 1, 0)
    for n in result.notes:
        if n not in notes and not n.startswith("estimate, SE, CI"):
            notes.append(n)
    cluster_col = s.cluster or s.unit
    if isinstance(panel, PanelSource):
        agg = panel.aggregates
        cohorts = agg.cohort_table()
        n_clusters, n_units, n_treated = agg.clusters(), agg.units, agg.n_treated
    else:
        units = panel.drop_duplicates(s.unit)
        cohorts = (
            units.assign(_c=units[s.cohort])
            .groupby("_c")
            .agg(units=(s.unit, "size"), clusters=(cluster_col, "nunique"))
            .reset_index()
            .rename(columns={"_c": "first treated period"})
        )
        n_clusters = int(panel[cluster_col].nunique())
        n_units, n_treated = int(len(units)), int((units[s.cohort] != 0).sum())
    fit = DidFit(
        settings=s,
        panel=panel,
        result=result,
        event=event,
        notes=notes,
        n_units=n_units,
        n_treated=n_treated,
        n_clusters=n_clusters,
        cohorts=cohorts,
    )
    cs = s.estimator == "callaway_santanna"
    fit.event_counts = event_counts(panel, s, leads=leads if cs else max(leads, 1), lags=lags, binned=not cs)
    small = [
        g for g, n in zip(cohorts["first treated period"], cohorts["units"], strict=True) if g != 0 and n < s.min_cell
    ]
    if cs:  # the joint test uses every pre-period ATT(g,t): any cell of a small cohort makes it unreliable
        pre_cells = att.loc[(att["time"] < att["cohort"]) & att["att"].notna(), "cohort"]
        small_cells = bool(pre_cells.isin(small).any())
    else:  # two-way fixed effects tests the leads: unreliable if a lead rests on too few programme units
        leads_n = fit.event_counts[fit.event_counts.index < -1]
        small_cells = bool(s.min_cell > 1 and (leads_n < s.min_cell).any())
    fit.pretrend = _pretrend(
        event,
        restrictions=restrictions,
        n_clusters=n_clusters,
        alpha=s.alpha,
        counts=fit.event_counts,
        small_cells=small_cells and s.min_cell > 1,
        min_cell=s.min_cell,
    )
    return fit


@dataclass
class MatchedFit:
    """What the matched-comparison report shows: the match, the effect and notes."""

    settings: MatchedSettings
    data: pd.DataFrame
    match: Any
    result: Result
    notes: list[str]
    n_units: int
    n_treated: int
    n_clusters: None = None
    by_cohort: dict[str, tuple[Any, Result]] = field(default_factory=dict)
    cohort_sizes: dict[str, int] = field(default_factory=dict)
    small_cohorts: list[str] = field(default_factory=list)

    @property
    def design(self) -> str:
        return self.settings.design


def match_people(data: pd.DataFrame, s: MatchedSettings, *, distance: str | None = None) -> Any:
    """The match the settings ask for (:func:`evaluator.match`), with ``distance`` changed if given."""
    from evaluator.estimators.matching import match

    distance = distance or s.distance
    return match(
        data,
        treat=s.treat,
        covariates=list(s.covariates),
        distance=distance,  # type: ignore[arg-type]
        ratio=s.ratio,
        replace=s.replace,
        caliper=None if distance == "mahalanobis" else s.caliper,
        exact=list(s.exact) or None,
        unit=s.unit,
        seed=s.seed,
    )


def matched_effect(m: Any, s: MatchedSettings, *, inference: str | None = None, adjust: bool | None = None) -> Result:
    """The effect on the treated of match ``m`` under the settings, with inference or adjustment changed if given."""
    adjust = s.adjust if adjust is None else adjust
    return m.effect(
        s.outcome,
        adjust=list(s.covariates) if adjust else None,
        inference=inference or s.inference,
        alpha=s.alpha,
        n_boot=s.n_boot,
        seed=s.seed,
    )


def fit_matched(data: pd.DataFrame, settings: MatchedSettings) -> MatchedFit:
    """Match treated units to comparisons and estimate the effect on the treated, as the settings ask."""
    s = settings
    notes = _notes_of(data)
    with collect_warnings(notes):
        m = match_people(data, s)
        result = matched_effect(m, s)
    for n in result.notes:
        if n not in notes:
            notes.append(n)
    by_cohort: dict[str, tuple[Any, Result]] = {}
    sizes: dict[str, int] = {}
    small: list[str] = []
    if s.cohort:
        for g in sorted(data[s.cohort].unique()):
            sub = data.loc[data[s.cohort] == g]
            key = str(int(g)) if isinstance(g, (int, float, np.number)) and float(g).is_integer() else str(g)
            n_treated = int((sub[s.treat] == 1).sum())
            if s.min_cell > 1 and n_treated < s.min_cell:
                small.append(key)
                continue
            try:
                with collect_warnings(notes):
                    mg = match_people(sub, s)
                    by_cohort[key] = (mg, matched_effect(mg, s))
            except (EvaluatorError, ValueError, np.linalg.LinAlgError) as exc:
                notes.append(f"cohort {key} could not be matched on its own: {str(exc).splitlines()[0]}")
                continue
            sizes[key] = int(mg.counts()["treated_matched"])
        if small:
            notes.append(SMALL_COHORTS_NOTE.format(n=len(small), min_cell=s.min_cell))
    c = m.counts()
    return MatchedFit(
        settings=s,
        data=data,
        match=m,
        result=result,
        notes=notes,
        n_units=int(c["treated_matched"]) + int(c["controls_used"]),
        n_treated=int(c["treated_matched"]),
        by_cohort=by_cohort,
        cohort_sizes=sizes,
        small_cohorts=small,
    )


# -- synthetic control of one treated unit -------------------------------------------------------------------------
def load_synthetic(settings: SyntheticSettings) -> pd.DataFrame:
    """Read and validate the panel of a synthetic-control report (:func:`evaluator.load_panel`).

    The panel must be balanced and hold exactly one treated unit (the design of this report:
    one municipality in a programme, the others its possible comparisons); each problem is a
    :class:`~evaluator.errors.ParameterError` or :class:`~evaluator.errors.DataError` naming the column.
    """
    from evaluator.data.load import load_panel

    s = settings
    columns = {"unit": s.unit, "time": s.time, "outcome": s.outcome, "treatment": s.treated}
    notes: list[str] = []
    with collect_warnings(notes):
        frame = load_panel(resolve_data(s.data_path), columns=columns)
    treated_units = frame.loc[frame[s.treated] == 1, s.unit].unique()
    if len(treated_units) != 1:
        raise ParameterError(
            f"treated={s.treated!r}: the synthetic-control report is for one treated unit, but {len(treated_units)} "
            f"units have '{s.treated}' = 1; evaluate each treated unit in its own report (the others left out), "
            "or use the difference-in-differences report (did_evaluation) for several"
        )
    own = list(frame.attrs["evaluator"].get("notes", []))
    frame.attrs["evaluator"]["notes"] = list(dict.fromkeys([*own, *notes]))
    return frame


@dataclass
class SyntheticFit:
    """What the synthetic-control report shows: the headline fit of one treated unit, its placebo in time, notes.

    ``n_units`` counts the treated unit and its possible comparisons, ``n_control`` the
    comparisons; these are units such as municipalities, not people.
    """

    settings: SyntheticSettings
    panel: pd.DataFrame
    result: Any
    placebo_time: Any
    notes: list[str]
    n_units: int
    n_treated: int
    n_control: int
    treated_unit: str
    first_treated: Any
    n_clusters: None = None

    @property
    def design(self) -> str:
        return self.settings.design


def synthetic_estimate(panel: pd.DataFrame, s: SyntheticSettings, *, method: str | None = None) -> Any:
    """One synthetic-control estimate under the settings (placebo inference), with ``method`` changed if given."""
    from evaluator.estimators.synthetic import synthetic

    return synthetic(
        panel,
        outcome=s.outcome,
        unit=s.unit,
        time=s.time,
        treated=s.treated,
        method=method or s.method,  # type: ignore[arg-type]
        inference="placebo",
        n_reps=s.n_reps,
        seed=s.seed,
        alpha=s.alpha,
    )


def fit_synthetic(panel: pd.DataFrame, settings: SyntheticSettings) -> SyntheticFit:
    """The headline synthetic comparison (``settings.method``) and its placebo in time.

    The placebo in time (:func:`evaluator.estimators.synthetic.placebo_in_time`) refits the
    same estimator on the periods before the start, with a fake start as many periods earlier
    as there are programme periods (at most half the periods before); where it cannot be
    computed (too few periods before the start) it is ``None``, with a note.
    """
    from evaluator.errors import DesignError
    from evaluator.estimators.synthetic import placebo_in_time

    s = settings
    notes = _notes_of(panel)
    with collect_warnings(notes):
        result = synthetic_estimate(panel, s)
    placebo = None
    try:
        with collect_warnings([]):
            placebo = placebo_in_time(
                panel,
                outcome=s.outcome,
                unit=s.unit,
                time=s.time,
                treated=s.treated,
                method=s.method,  # type: ignore[arg-type]
                inference="placebo",
                n_reps=s.n_reps,
                seed=s.seed,
                alpha=s.alpha,
            )
    except DesignError as exc:
        notes.append(f"no placebo in time: {str(exc).splitlines()[0]}")
    info = result.info
    treated_unit = panel.loc[panel[s.treated] == 1, s.unit].iloc[0]
    return SyntheticFit(
        settings=s,
        panel=panel,
        result=result,
        placebo_time=placebo,
        notes=notes,
        n_units=int(info["n_units"]),
        n_treated=int(info["n_treated"]),
        n_control=int(info["n_control"]),
        treated_unit=str(treated_unit),
        first_treated=info["first_treated"],
    )
