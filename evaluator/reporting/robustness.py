"""The robustness chapter: other control groups, estimators and inference, placebo, specification curve."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from evaluator.errors import EvaluatorError
from evaluator.i18n import N_, language, ngettext
from evaluator.i18n import gettext as _
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
#: Where a robustness table keeps its reader's words: ``table.attrs[_WORDS]`` maps the English text of a
#: specification or a note (what the table and ``results.json`` hold) to the :class:`_Words` that write it.
_WORDS = "evaluator_words"


# -- the words of the rows ---------------------------------------------------------------------------------------------
class _Words(str):
    """The words of a robustness row: a ``str`` of their English text, which also writes them in the reader's language.

    The table, and ``results.json`` with it, holds the English text, so what a run records
    never depends on the language of its report; :meth:`shown` writes the words in the
    language current where they are shown (the robustness table, the specification curve).
    ``message`` is a catalog message (marked with ``N_``); ``values`` fill its named
    placeholders and may be :class:`_Words` themselves.

    Examples
    --------
    >>> w = _Words(N_("Leaving out cohort %(cohort)s"), cohort=13)
    >>> w, w.shown(), w.values
    ('Leaving out cohort 13', 'Leaving out cohort 13', {'cohort': 13})
    """

    message: str
    values: dict[str, Any]

    def __new__(cls, message: str = "", /, **values: Any) -> _Words:
        with language("en"):
            english = cls._write(message, values)
        self = super().__new__(cls, english)
        self.message, self.values = message, values
        return self

    def __getnewargs_ex__(self) -> tuple[tuple[str], dict[str, Any]]:  # copies and pickles are _Words as well
        return (self.message,), dict(self.values)

    def shown(self) -> str:
        """The words in the current language (:func:`evaluator.i18n.current`)."""
        return self._write(self.message, self.values)

    @classmethod
    def _write(cls, message: str, values: dict[str, Any]) -> str:
        return cls._say(message, {k: v.shown() if isinstance(v, _Words) else v for k, v in values.items()})

    @staticmethod
    def _say(message: str, values: dict[str, Any]) -> str:
        return _(message) % values if values else _(message)


class _Inference(_Words):
    """An inference scheme in the words of the page ("Abadie-Imbens standard errors", not ``abadie_imbens``)."""

    @staticmethod
    def _say(message: str, values: dict[str, Any]) -> str:
        name = values["scheme"]
        # TRANSLATORS: a robustness row's inference scheme, when it has no words of its own; name: the parameter value.
        return str(labels().inference_short.get(name) or _("%(name)s inference") % {"name": name})


class _PlaceboName(_Words):
    """The placebo row's name; k: how many periods early the placebo start is."""

    @staticmethod
    def _say(message: str, values: dict[str, Any]) -> str:
        # TRANSLATORS: a robustness row: the first cohort's start moved k periods earlier, on data from before any real
        # start. English writes "periods" in both forms.
        return ngettext(
            "Placebo: start %(k)s periods early (pre-programme data only)",
            "Placebo: start %(k)s periods early (pre-programme data only)",
            values["k"],
        ) % {"k": values["k"]}


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """The rows as a robustness table, English in its cells and the rows' :class:`_Words` in ``attrs[_WORDS]``."""
    words = {str(v): v for row in rows for v in (row["specification"], row["note"]) if isinstance(v, _Words)}
    out = pd.DataFrame(rows, columns=list(ROBUSTNESS_COLUMNS))
    out.attrs[_WORDS] = words
    return out


def _shown(table: pd.DataFrame, column: str) -> pd.Series:
    """A column of specifications or notes in the reader's language (text the table has no words for as it is)."""
    words = table.attrs.get(_WORDS) or {}
    return table[column].map(lambda v: words[v].shown() if isinstance(v, str) and v in words else v)


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
            # TRANSLATORS: a robustness row's note; reason: the error, in English (it is the program's message).
            "note": _Words(N_("could not be estimated: %(reason)s"), reason=str(exc).splitlines()[0]),
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


def _inf(name: str) -> _Words:
    """An inference scheme in the words of the page ("Abadie-Imbens standard errors", not ``abadie_imbens``)."""
    return _Inference(scheme=name)


def _with_inference(spec: str, inference: str) -> _Words:
    # TRANSLATORS: a robustness row: a specification and its inference scheme ("Two-way fixed effects, wild cluster
    # bootstrap", "propensity score, matched-pairs standard errors").
    return _Words(N_("%(specification)s, %(inference)s"), specification=spec, inference=_inf(inference))


def _main_row(fit: DidFit | MatchedFit, label: str) -> dict[str, Any]:
    r = fit.result
    return {
        # TRANSLATORS: the robustness table's first row: the report's own specification.
        "specification": _Words(N_("Main: %(specification)s"), specification=label),
        "estimate": r.estimate,
        "ci_low": r.ci[0],
        "ci_high": r.ci[1],
        "p_value": r.pvalue,
        # TRANSLATORS: the note of the robustness table's first row.
        "note": _Words(N_("main specification")),
        "kind": "main",
    }


def _placebo_shift(periods: int, shift: int | None) -> int | None:
    """How many periods early the placebo pretends the first cohort started, given the ``periods`` before its real
    start (half of them by default); None when there are too few for a placebo."""
    if periods < 3:
        return None
    k = shift if shift is not None else max(1, periods // 2)
    return k if 1 <= k < periods else None


def _placebo_panel(panel: pd.DataFrame, s: DidSettings, shift: int | None) -> tuple[pd.DataFrame, int] | None:
    """Pre-period data only, with the first cohort's start moved ``shift`` periods earlier."""
    g = panel[s.cohort]
    first = int(g[g != 0].min())
    pre = panel.loc[panel[s.time] < first]
    k = _placebo_shift(int(pre[s.time].nunique()), shift)
    if k is None:
        return None
    fake_g = np.where(pre[s.cohort] == first, first - k, 0)
    return pre.assign(**{s.cohort: fake_g}), k


def _placebo_row(placebo: tuple[Any, int] | None, s: DidSettings) -> dict[str, Any]:
    """The placebo's row: estimated on the placebo data (a frame, or a PanelSource recoding its rows as read), or
    missing numbers saying there are too few periods before the first start."""
    if placebo is None:
        return {
            # TRANSLATORS: a robustness row: the placebo (a pretended earlier start), when it cannot be run.
            "specification": _Words(N_("Placebo start")),
            "estimate": np.nan,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "p_value": np.nan,
            "note": _Words(N_("too few periods before the first start for a placebo")),
            "kind": "placebo",
        }
    pp, k = placebo
    fast = "analytic" if s.estimator == "callaway_santanna" else "cluster"
    return _row(
        "placebo",
        _PlaceboName(k=k),
        lambda: estimate_did(pp, s, inference=fast),
        # TRANSLATORS: the note of the placebo row: its estimate should be close to zero.
        _Words(N_("should be close to zero")),
    )


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
        # TRANSLATORS: robustness rows: Callaway-Sant'Anna with units never (or not yet) in the programme as comparison.
        "never": N_("Callaway-Sant'Anna, never-treated comparison"),
        "not_yet": N_("Callaway-Sant'Anna, not-yet-treated comparison"),
        "notyet": N_("Callaway-Sant'Anna, not-yet-treated comparison"),  # the old spelling of the parameter
    }
    # TRANSLATORS: a robustness row: the two-way fixed-effects estimator.
    twfe = _Words(N_("Two-way fixed effects"))
    est_name: str = "Callaway-Sant'Anna" if s.estimator == cs else twfe  # a name: the same in every language
    label = _Words(names[s.control_group]) if s.estimator == cs else est_name
    rows = [_main_row(fit, _with_inference(label, s.inference))]
    twfe_covs = [] if s.covariates else None  # covariates of CS are pre-treatment; TWFE would absorb them
    # TRANSLATORS: the note of a robustness row: two-way fixed effects leave out the covariates, as its unit effects
    # absorb them.
    twfe_note = _Words(N_("without the covariates (absorbed by unit effects)")) if s.covariates else ""
    if fit.aggregates is not None:  # out of core: only what Callaway-Sant'Anna computes in passes
        twfe_row = _row(
            "estimator",
            twfe,
            lambda: estimate_did(panel, s, estimator=tw, inference="cluster", covariates=twfe_covs),
            twfe_note,
        )
        return _frame(rows + _out_of_core_rows(fit, est_name, twfe_row, placebo_shift))
    if s.estimator == cs:
        other = "not_yet" if s.control_group == "never" else "never"
        rows.append(
            _row(
                "comparison",
                _Words(names[other]),
                lambda: estimate_did(panel, s, control=other, inference="analytic"),
            )
        )
        rows.append(
            _row(
                "estimator",
                twfe,
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
                    _Words(names[control]),
                    lambda c=control: estimate_did(panel, s, estimator=cs, control=c, inference=fast[cs]),
                )
            )
        alt_inf = "wild" if s.inference == "cluster" else "cluster"
    rows.append(
        _row("inference", _with_inference(est_name, alt_inf), lambda: estimate_did(panel, s, inference=alt_inf))
    )
    if s.covariates:
        rows.append(
            _row(
                "covariates",
                # TRANSLATORS: a robustness row; estimator: Callaway-Sant'Anna or "Two-way fixed effects".
                _Words(N_("%(estimator)s, without covariates"), estimator=est_name),
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
                    # TRANSLATORS: a robustness row; cohort: the cohort left out (its first period in the programme).
                    _Words(N_("Leaving out cohort %(cohort)s"), cohort=g),
                    lambda sub=sub: estimate_did(sub, s, inference=fast[s.estimator]),
                )
            )
    rows.append(_placebo_row(_placebo_panel(panel, s, placebo_shift), s))
    return _frame(rows)


def _out_of_core_rows(
    fit: DidFit, est_name: str, twfe_row: dict[str, Any], placebo_shift: int | None
) -> list[dict[str, Any]]:
    """The robustness rows of a panel read out of core after the main one, in the in-memory order, each estimated
    in passes over the rows: the other comparison group, two-way fixed effects (``twfe_row``), the other interval
    method, with covariates none, each cohort left out (its rows filtered as they are read) and the placebo (the
    rows before the first start, that cohort's recoded as they are read)."""
    s, panel = fit.settings, fit.panel
    other = "not_yet" if s.control_group == "never" else "never"
    names = {
        "never": N_("Callaway-Sant'Anna, never-treated comparison"),
        "not_yet": N_("Callaway-Sant'Anna, not-yet-treated comparison"),
    }
    alt_inf = "analytic" if s.inference == "bootstrap" else "bootstrap"
    rows = [
        _row("comparison", _Words(names[other]), lambda: estimate_did(panel, s, control=other, inference="analytic")),
        twfe_row,
        _row("inference", _with_inference(est_name, alt_inf), lambda: estimate_did(panel, s, inference=alt_inf)),
    ]
    if s.covariates:
        rows.append(
            _row(
                "covariates",
                _Words(N_("%(estimator)s, without covariates"), estimator=est_name),
                lambda: estimate_did(panel, s, inference="analytic", covariates=[]),
            )
        )
    # leaving out each cohort: the same rows read again without its units (filtered as they are read)
    sizes = fit.aggregates.cohort_units if fit.aggregates is not None else None
    cohorts = [] if sizes is None else sorted(int(g) for g in sizes.index if g != 0)
    if len(cohorts) > 1:
        for g in cohorts:
            if s.min_cell <= 1 or sizes[g] >= s.min_cell:  # as in memory: a small cohort is not named
                rows.append(
                    _row(
                        "leave-one-out",
                        _Words(N_("Leaving out cohort %(cohort)s"), cohort=g),
                        lambda g=g: estimate_did(panel.without_cohort(g), s, inference="analytic"),
                    )
                )
    # the placebo: the rows before the first start, that cohort's recoded as they are read
    first = min((g for g in cohorts), default=None)
    placebo = None
    if first is not None and fit.aggregates is not None:
        k = _placebo_shift(int((fit.aggregates.periods < first).sum()), placebo_shift)
        placebo = None if k is None else (panel.placebo_start(first, k), k)
    rows.append(_placebo_row(placebo, s))
    return rows


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
    desc = {
        # TRANSLATORS: robustness rows: the distance people are matched on (the logit of the propensity score).
        "logit": N_("logit propensity score"),
        "ps": N_("propensity score"),
        "mahalanobis": N_("Mahalanobis distance"),
    }
    distance = _Words(desc[s.distance])
    if s.adjust:
        main = _Words(
            # TRANSLATORS: a robustness row: a matching distance, its inference scheme, and regression adjustment.
            N_("%(specification)s, %(inference)s, adjusted"),
            specification=distance,
            inference=_inf(s.inference),
        )
    else:
        main = _with_inference(distance, s.inference)
    rows = [_main_row(fit, main)]
    fast = "abadie_imbens" if s.replace else "pairs"
    for inf in ("pairs", "abadie_imbens"):
        if inf != s.inference:
            rows.append(
                _row("inference", _with_inference(distance, inf), lambda i=inf: matched_effect(m, s, inference=i))
            )
    main_inf = s.inference if s.inference != "bootstrap" else fast
    # Abadie-Imbens always bias-corrects with the covariates, so adjustment is compared under pairs inference
    adj = not s.adjust
    # TRANSLATORS: robustness rows: a matching distance, its inference scheme, with or without regression adjustment.
    with_adj = N_("%(specification)s, %(inference)s, with regression adjustment")
    # TRANSLATORS: a robustness row: a matching distance, its inference scheme, without regression adjustment.
    without_adj = N_("%(specification)s, %(inference)s, without regression adjustment")
    rows.append(
        _row(
            "covariates",
            _Words(with_adj if adj else without_adj, specification=distance, inference=_inf("pairs")),
            lambda: matched_effect(m, s, inference="pairs", adjust=adj),
        )
    )
    matching_on = {
        # TRANSLATORS: robustness rows: the match run again on another distance.
        "logit": N_("Matching on the logit propensity score"),
        "ps": N_("Matching on the propensity score"),
        "mahalanobis": N_("Matching on the Mahalanobis distance"),
    }
    for dist in ("logit", "ps", "mahalanobis"):
        if dist == s.distance:
            continue
        # TRANSLATORS: the note of a robustness row: a caliper is not defined for the Mahalanobis distance.
        caliper_note = _Words(N_("without the caliper (not defined for Mahalanobis)"))
        note = caliper_note if dist == "mahalanobis" and s.caliper else ""
        rows.append(
            _row(
                "distance",
                _Words(matching_on[dist]),
                lambda d=dist: matched_effect(match_people(data, s, distance=d), s, inference=main_inf),
                note,
            )
        )
    covs = list(dict.fromkeys([*s.covariates, *s.exact]))
    # TRANSLATORS: robustness rows: weighting estimators on the whole sample (AIPW: augmented inverse-probability
    # weighting).
    for method, name in (("ipw", N_("Inverse-probability weighting")), ("aipw", N_("Doubly robust (AIPW)"))):
        rows.append(
            _row(
                "weighting",
                _Words(name),
                lambda mt=method: weighting(
                    data, treat=s.treat, outcome=s.outcome, covariates=covs, method=mt, alpha=s.alpha
                ),
                # TRANSLATORS: the note of a weighting row of the robustness table.
                _Words(N_("whole sample, no matching")),
            )
        )
    return _frame(rows)


def robustness_table(table: pd.DataFrame, fit: DidFit | MatchedFit | None = None) -> Html:
    """The robustness table for readers, with a sentence on how far the estimates move."""
    shown = table.drop(columns=["kind"])
    for column in ("specification", "note"):
        if column in shown:
            shown[column] = _shown(table, column)
    headers = {
        # TRANSLATORS: robustness table header: one reasonable way of estimating the effect.
        "specification": _("specification"),
        # TRANSLATORS: robustness table header: a short note on the row.
        "note": _("note"),
        **labels().robustness_columns,
    }
    shown = shown.rename(columns=headers)
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
        shown = table.assign(specification=_shown(table, "specification"))
        fig = plots.specification_curve(shown, outcome=fit.settings.outcome_label or fit.result.outcome or "")
        fig.set_size_inches(10, 0.35 * len(table) + 1.4)  # wide: long specification names sit left of the axes
        return figure_html(fig, render_macro(CHAPTER, "curve_caption"), css_class="specification-curve")
