"""The headline chapter: title, the effect in words and the verdict box."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

from evaluator.formatting import count, localized
from evaluator.reporting.contract_value import ContractValue
from evaluator.reporting.html import Html, render, render_text
from evaluator.reporting.pipeline import DidFit, MatchedFit, SyntheticFit
from evaluator.results.base import Result

if TYPE_CHECKING:
    from evaluator.reporting.verdict import Verdict

__all__ = [
    "SMS",
    "baseline_of",
    "check_line",
    "effect_sentence",
    "headline_box",
    "is_share",
    "title_block",
    "true_effect",
]

#: Maryland Scientific Methods Scale level of each design (what the level means is said in the headline template).
SMS = {"difference-in-differences": 3, "matched comparison": 3, "synthetic control": 3}


def check_line(result: Result) -> str:
    """Deterministic one-line headline (4 significant digits) that nbval compares.

    Examples
    --------
    >>> from evaluator.results import tidy_table
    >>> check_line(Result("x", tidy_table(["att"], [-0.448751], [0.1]), nobs=10))
    'Headline numbers: estimate -0.4488, standard error 0.1, 95% confidence interval [-0.6447, -0.2528]'
    """
    lo, hi = result.ci

    def g(v: float) -> str:
        s = f"{v:.4g}"
        return "0" if s in ("-0", "0") else localized(s)

    return render_text(
        "sentences/check_line.txt.j2",
        estimate=g(result.estimate),
        se=g(result.se),
        level=round(100 * (1 - result.alpha)),
        lo=g(lo),
        hi=g(hi),
    )


# -- title and section 1: the headline ---------------------------------------------------------------------------------
def title_block(fit: DidFit | MatchedFit | SyntheticFit) -> Html:
    """The report's title and a one-line description of what was evaluated."""
    s = fit.settings
    return render(
        "chapters/title.html.j2", title=s.title, design=fit.design, outcome=s.outcome, outcome_label=s.outcome_label
    )


def effect_sentence(
    estimate: float,
    ci: tuple[float, float],
    *,
    outcome_label: str = "",
    level: int = 95,
    share: bool = False,
    baseline: float | None = None,
    baseline_of: str = "",
) -> str:
    """The effect and its confidence interval in words, in the outcome's own units (plain text).

    ``share``: the outcome is a 0/1 share, so the effect reads in percentage points.
    ``baseline``: a reference level (the programme group's mean before it started, or
    the comparison group's mean), so the effect also reads as a percentage of it;
    ``baseline_of`` names it.

    Examples
    --------
    >>> effect_sentence(0.12, (-0.03, 0.27), outcome_label="points")  # doctest: +ELLIPSIS
    'The programme is estimated to have raised the outcome by 0.12 points (95% confidence interval: from ... effect).'
    >>> effect_sentence(0.183, (0.108, 0.259), outcome_label="share in work", share=True)  # doctest: +ELLIPSIS
    'The programme is estimated to have raised the outcome (share in work) by 18.3 percentage points (95% ...'
    """
    lo, hi = ci
    relative = None
    if baseline is not None and math.isfinite(baseline) and abs(baseline) > 0 and math.isfinite(estimate):
        relative = abs(estimate) / abs(baseline)
    return render_text(
        "sentences/effect.txt.j2",
        estimate=estimate,
        lo=lo,
        hi=hi,
        outcome_label=outcome_label,
        level=level,
        share=share,
        relative=relative,
        baseline=baseline,
        baseline_of=baseline_of,
    )


def is_share(values: pd.Series) -> bool:
    """Whether an outcome is a 0/1 indicator, so its effects read in percentage points.

    >>> is_share(pd.Series([0, 1, 1])), is_share(pd.Series([0.0, 2.5]))
    (True, False)
    """
    v = pd.to_numeric(values, errors="coerce").dropna()
    return bool(len(v)) and bool(v.isin([0, 1]).all())


def baseline_of(fit: DidFit | MatchedFit | SyntheticFit) -> tuple[float | None, str]:
    """The level the effect is compared with, and which it is.

    Difference-in-differences: the programme group's mean outcome before its start.
    Matched comparison: the matched comparison group's mean outcome (what the
    participants would have had without the programme).
    """
    s = fit.settings
    if isinstance(fit, SyntheticFit):  # the programme unit's own level before its start
        tr = fit.result.trajectories
        pre = tr.loc[~tr["post"], "treated"]
        return (float(pre.mean()) if len(pre) else None), "before"
    if isinstance(fit, DidFit):
        if fit.aggregates is not None:  # out of core: from the streamed sums by cohort and period
            return fit.aggregates.mean_where(before=True), "before"
        p = fit.panel
        g = p[s.cohort]
        rows = p.loc[(g != 0) & (p[s.time] < g), s.outcome]
        return (float(rows.mean()) if len(rows) else None), "before"
    from evaluator.reporting.contract_value import comparison_level

    return comparison_level(fit.match, s), "comparison"


def true_effect(fit: DidFit | MatchedFit | SyntheticFit) -> float | None:
    """The known true effect of a bundled synthetic data set, matching the headline's estimand; else ``None``.

    Only synthetic data (``bundled:NAME``) has a truth; a report on real data never shows one.
    """
    from evaluator.data.datasets import BUNDLED, truth

    s = fit.settings
    name = str(s.data_path).removeprefix(BUNDLED) if str(s.data_path).startswith(BUNDLED) else None
    if name is None:
        return None
    try:
        t = truth(name)
    except (KeyError, ValueError, OSError):
        return None
    if isinstance(fit, SyntheticFit):
        v = t.get("att")
    elif isinstance(fit, DidFit):
        v = t.get("simple")
    else:
        v = t.get("att_sample", t.get("att"))
        if isinstance(v, dict):
            v = v.get(s.outcome)
    return float(v) if isinstance(v, (int, float)) else None


def headline_box(
    fit: DidFit | MatchedFit | SyntheticFit,
    verdict: Verdict | ContractValue | None = None,
    robustness: pd.DataFrame | None = None,
) -> Html:
    """One screen for a non-specialist: the effect in words, the payment verdict, caveats and the evidence level.

    ``verdict`` (from :func:`evaluator.reporting.verdict`) says what is owed and
    which design checks failed; a :class:`ContractValue` or ``None`` is turned into
    one here (with ``robustness`` for the placebo check). The payment sentence is the
    verdict's own, as in the contract section, ``results.json`` and the batch index.
    """
    from evaluator.reporting.verdict import Verdict
    from evaluator.reporting.verdict import verdict as make_verdict

    if not isinstance(verdict, Verdict):
        verdict = make_verdict(fit, verdict, robustness)
    s, r = fit.settings, fit.result
    level = round(100 * (1 - r.alpha))
    if isinstance(fit, DidFit) and fit.aggregates is not None:
        share = fit.aggregates.share and fit.aggregates.rows > 0
    else:
        share = is_share(fit.data[s.outcome] if isinstance(fit, MatchedFit) else fit.panel[s.outcome])
    base, which = baseline_of(fit)
    return render(
        "chapters/headline.html.j2",
        effect=effect_sentence(
            r.estimate,
            r.ci,
            outcome_label=s.outcome_label,
            level=level,
            share=share,
            baseline=base,
            baseline_of=which,
        ),
        significant=r.pvalue < r.alpha,
        level=level,
        pvalue=r.pvalue,
        payment=verdict.payment,
        contract=verdict.status != "no_contract",
        caveats=verdict.caveats,
        qualified=verdict.comparability_failed,
        sms=SMS[fit.design],
        design=fit.design,
        n_units=count(fit.n_units, s.min_cell),
        n_treated=count(fit.n_treated, s.min_cell),
        n_all=fit.n_units,
        n_control=count(fit.n_control, s.min_cell) if isinstance(fit, SyntheticFit) else None,
        truth=true_effect(fit),
        share=share,
        record=run_record(s.evaluated_by),
    )


def run_record(evaluated_by: str = "") -> dict[str, str]:
    """Who evaluated, when, and the run's fingerprint, for the first page (empty values are left out).

    The runner hands the kernel the run's fingerprint and start time (``EVALUATOR_RUN_FINGERPRINT``,
    ``EVALUATOR_RUN_STARTED``; :func:`evaluator.runner.run_report`), so a printed page can be traced to
    its ``manifest.json``; a notebook run by hand has neither and shows today's date.

    Examples
    --------
    >>> run_record("Aalborg Kommune")["by"]
    'Aalborg Kommune'
    """
    import datetime as dt
    import os

    from babel.dates import format_date

    from evaluator.i18n import BABEL_LOCALES, current

    started = os.environ.get("EVALUATOR_RUN_STARTED", "")
    try:
        day = dt.datetime.fromisoformat(started.replace("Z", "+00:00")).date() if started else dt.date.today()
    except ValueError:
        day = dt.date.today()
    fp = os.environ.get("EVALUATOR_RUN_FINGERPRINT", "")
    return {
        "by": evaluated_by,
        "date": format_date(day, format="long", locale=BABEL_LOCALES[current()]),
        "fingerprint": fp[:16],
    }
