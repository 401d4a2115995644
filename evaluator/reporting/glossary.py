"""The glossary at the end of the page: the technical terms the report uses, each in a sentence or two."""

from __future__ import annotations

from evaluator.reporting.html import Html, render
from evaluator.reporting.pipeline import DidFit, MatchedFit, SyntheticFit

__all__ = ["TERMS", "glossary"]

#: The terms each design's report uses (their explanations are in ``templates/chapters/glossary.html.j2``).
TERMS = {
    "common": [
        "confidence_interval",
        "p_value",
        "significant",
        "standard_error",
        "mde",
        "robustness",
        "maryland",
        "small_cells",
        "present_value",
    ],
    "difference-in-differences": [
        "did",
        "cohort",
        "callaway_santanna",
        "twfe",
        "event_study",
        "pretrend",
        "uniform_band",
        "placebo",
        "cluster",
        "bootstrap",
        "wild_bootstrap",
    ],
    "matched comparison": ["matching", "propensity", "caliper", "smd", "abadie_imbens", "ipw", "bootstrap"],
    "synthetic control": [
        "synthetic_control",
        "sdid",
        "unit_weights",
        "time_weights",
        "placebo_space",
        "permutation_p",
        "placebo",
        "did",
    ],
}


def glossary(fit: DidFit | MatchedFit | SyntheticFit) -> Html:
    """The glossary of the report's design: each technical term explained in plain words (``<div class='glossary'>``).

    Examples
    --------
    >>> from evaluator.reporting.html import render
    >>> "confidence interval" in render("chapters/glossary.html.j2", terms=["confidence_interval"])
    True
    """
    terms = TERMS[fit.design] + TERMS["common"]
    if isinstance(fit, SyntheticFit):  # no minimum-detectable-effect section in this report
        terms = [t for t in terms if t != "mde"]
    return render("chapters/glossary.html.j2", terms=list(dict.fromkeys(terms)))
