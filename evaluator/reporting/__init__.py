"""Reporting: the chapters of an evaluation report, each one module, read by the report notebooks.

In reading order:

- ``settings``: the notebook's parameters checked into settings.
- ``pipeline``: load and fit once (``load_did`` / ``fit_did``, ``load_matched`` / ``fit_matched``).
- ``checks``: the design checks (pre-trends, placebo, balance, clusters, small groups).
- ``verdict``: the one place that decides what the page says about payment and evidence.
- ``headline``: title and the headline box (reads the verdict).
- ``glossary``: the technical terms explained at the end of the page.
- ``data_chapter``: data summary, trends, event study, overlap, balance, the main estimate table.
- ``robustness``: robustness table and specification curve.
- ``synthetic_chapter``: the synthetic-control report of one treated unit: data, trajectories, weights,
  placebo distribution, robustness across methods, appendix.
- ``contract_chapter``: settlement and socio-economic return.
- ``appendix``: minimum detectable effect, parameters, versions.
- ``html`` (the template environment and the pieces every chapter shares), ``disclosure`` (small
  cells), ``results_file`` (``results.json``).

The words a reader sees are in jinja2 templates (autoescape on) under ``templates/``:
``chapters/<chapter>.html.j2`` (one file per chapter, its pieces as macros),
``chapters/labels.txt.j2`` (axis labels, legend entries, table headers), ``sentences/*.txt.j2``
(plain-text sentences such as the effect in words) and ``pieces/`` (figures, notes, facts).
Python computes the numbers and picks the case; numbers are formatted by :mod:`evaluator.formatting`.
Report figures are drawn under seaborn's theme (``html.figure_theme``).

A new chapter is a new module here with a function that takes the fit and returns HTML, its
template in ``templates/chapters/``, and one cell in each notebook that calls it.
"""

from evaluator.reporting.appendix import appendix, mde_section, mde_sentence, results_extra
from evaluator.reporting.checks import Check, design_checks
from evaluator.reporting.contract_chapter import contract_section
from evaluator.reporting.contract_value import contract_value, settlement_record
from evaluator.reporting.data_chapter import (
    balance_table,
    data_summary_did,
    data_summary_matched,
    estimate_table,
    event_study_figure,
    love_plot,
    overlap_figure,
    trends_figure,
)
from evaluator.reporting.glossary import glossary
from evaluator.reporting.headings import section
from evaluator.reporting.headline import SMS, check_line, effect_sentence, headline_box, title_block
from evaluator.reporting.html import Html, esc, figure_html, notes_html, table_html
from evaluator.reporting.pipeline import (
    DidFit,
    MatchedFit,
    SyntheticFit,
    fit_did,
    fit_matched,
    fit_synthetic,
    load_did,
    load_matched,
    load_synthetic,
)
from evaluator.reporting.results_file import save_results
from evaluator.reporting.robustness import (
    ROBUSTNESS_COLUMNS,
    robustness_did,
    robustness_figure,
    robustness_matched,
    robustness_table,
)
from evaluator.reporting.sensitivity import sensitivity_did, sensitivity_section
from evaluator.reporting.settings import (
    DidSettings,
    MatchedSettings,
    SyntheticSettings,
    did_settings,
    matched_settings,
    synthetic_settings,
)
from evaluator.reporting.synthetic_chapter import (
    data_summary_synthetic,
    placebo_section,
    results_extra_synthetic,
    robustness_synthetic,
    robustness_table_synthetic,
    synthetic_appendix,
    trajectories_section,
    weights_section,
)
from evaluator.reporting.verdict import Verdict, verdict

__all__ = [
    "ROBUSTNESS_COLUMNS",
    "SMS",
    "Check",
    "Verdict",
    "design_checks",
    "verdict",
    "DidFit",
    "DidSettings",
    "Html",
    "MatchedFit",
    "MatchedSettings",
    "appendix",
    "balance_table",
    "check_line",
    "contract_section",
    "contract_value",
    "data_summary_did",
    "data_summary_matched",
    "did_settings",
    "effect_sentence",
    "esc",
    "estimate_table",
    "event_study_figure",
    "figure_html",
    "glossary",
    "fit_did",
    "fit_matched",
    "headline_box",
    "load_did",
    "load_matched",
    "love_plot",
    "matched_settings",
    "mde_section",
    "mde_sentence",
    "notes_html",
    "overlap_figure",
    "results_extra",
    "robustness_did",
    "robustness_figure",
    "robustness_matched",
    "robustness_table",
    "save_results",
    "section",
    "sensitivity_did",
    "sensitivity_section",
    "settlement_record",
    "table_html",
    "title_block",
    "trends_figure",
    "SyntheticFit",
    "SyntheticSettings",
    "data_summary_synthetic",
    "fit_synthetic",
    "load_synthetic",
    "placebo_section",
    "results_extra_synthetic",
    "robustness_synthetic",
    "robustness_table_synthetic",
    "synthetic_appendix",
    "synthetic_settings",
    "trajectories_section",
    "weights_section",
]
