"""The headline chapter: title, the effect in words and the verdict box."""

from __future__ import annotations

from evaluator.reporting.contract_value import ContractValue, contract_verdict
from evaluator.reporting.html import Html, render, render_text
from evaluator.reporting.pipeline import DidFit, MatchedFit
from evaluator.results.base import Result

__all__ = ["SMS", "check_line", "effect_sentence", "headline_box", "title_block"]

#: Maryland Scientific Methods Scale level of each design (what the level means is said in the headline template).
SMS = {"difference-in-differences": 3, "matched comparison": 3}


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
        return "0" if s in ("-0", "0") else s

    return render_text(
        "sentences/check_line.txt.j2",
        estimate=g(result.estimate),
        se=g(result.se),
        level=round(100 * (1 - result.alpha)),
        lo=g(lo),
        hi=g(hi),
    )


# -- title and section 1: the headline ---------------------------------------------------------------------------------
def title_block(fit: DidFit | MatchedFit) -> Html:
    """The report's title and a one-line description of what was evaluated."""
    s = fit.settings
    return render(
        "chapters/title.html.j2", title=s.title, design=fit.design, outcome=s.outcome, outcome_label=s.outcome_label
    )


def effect_sentence(estimate: float, ci: tuple[float, float], *, outcome_label: str = "", level: int = 95) -> str:
    """The effect and its confidence interval in words, in the outcome's own units (plain text).

    Examples
    --------
    >>> effect_sentence(0.12, (-0.03, 0.27), outcome_label="points")  # doctest: +ELLIPSIS
    'The programme is estimated to have raised the outcome by 0.12 points (95% confidence interval: from ... effect).'
    """
    lo, hi = ci
    return render_text(
        "sentences/effect.txt.j2", estimate=estimate, lo=lo, hi=hi, outcome_label=outcome_label, level=level
    )


def headline_box(fit: DidFit | MatchedFit, value: ContractValue | None = None) -> Html:
    """One screen for a non-specialist: the effect in words, the contract verdict and the evidence level.

    ``value`` (from :func:`contract_value`) gives the verdict: whether the target was
    met and the payment due, with its range across the confidence interval.
    """
    s, r = fit.settings, fit.result
    level = round(100 * (1 - r.alpha))
    return render(
        "chapters/headline.html.j2",
        effect=effect_sentence(r.estimate, r.ci, outcome_label=s.outcome_label, level=level),
        significant=r.pvalue < r.alpha,
        level=level,
        pvalue=r.pvalue,
        contract=contract_verdict(value),
        sms=SMS[fit.design],
        design=fit.design,
        n_units=fit.n_units,
        n_treated=fit.n_treated,
    )
