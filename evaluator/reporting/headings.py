"""The section headings of a report and their one-line introductions, in the report's language.

The words are in ``templates/chapters/sections.html.j2``; a notebook shows a section's heading
with ``display(reporting.section("summary"))`` rather than a markdown cell, so that the heading
follows the ``language`` parameter like every other word of the page. Each heading keeps the
id JupyterLab gave the English markdown heading (``The-data``), so links into a report and the
tests that look for a section work in every language.
"""

from __future__ import annotations

from evaluator.reporting.html import Html, _jinja

__all__ = ["SECTIONS", "section"]

#: Section key -> the id of its heading (that of the English markdown heading it replaced).
SECTIONS: dict[str, str] = {
    "summary": "Summary",
    "data": "The-data",
    "data_matched": "The-data-and-the-match",
    "trends": "Raw-trends",
    "event_study": "The-effect-over-time",
    "overlap": "Overlap",
    "balance": "Balance",
    "estimate": "Main-estimate",
    "contract": "Contract-and-value",
    "robustness": "Robustness",
    "sensitivity": "What-if-the-trends-had-not-been-parallel?",
    "mde": "How-large-an-effect-could-this-evaluation-detect?",
    "appendix": "Technical-appendix",
    "glossary": "Glossary",
    "trajectories": "The-programme-unit-and-its-synthetic-comparison",
    "weights": "Who-the-comparison-is-made-of",
    "placebo": "Placebo-tests",
    "robustness_methods": "Robustness-across-methods",
}


def section(key: str) -> Html:
    """The heading (``<h2>``) and introduction of section ``key``, in the current language.

    Parameters
    ----------
    key : str
        One of :data:`SECTIONS`.

    Examples
    --------
    >>> print(section("data").replace("</h2>", "</h2>\\n"))
    <h2 id="The-data" class="report-section">The data<a class="anchor-link" href="#The-data">&#182;</a></h2>
    <p>Who and what the evaluation covers, and anything left out.</p>
    >>> from evaluator.i18n import language
    >>> with language("da"):
    ...     section("data").startswith('<h2 id="The-data"')
    True
    """
    if key not in SECTIONS:
        raise KeyError(f"no report section {key!r}; the sections are {', '.join(SECTIONS)}")
    # the template's module is built per call: its words are those of the current language
    module = _jinja().get_template("chapters/sections.html.j2").make_module({"heading_ids": SECTIONS})
    return Html(module.section(key))
