"""The contract chapter: settlement, socio-economic return and the tornado figure."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from evaluator.errors import EvaluatorError
from evaluator.reporting.appendix import mde_of
from evaluator.reporting.contract_value import FINNISH_LESSON, RATE_CARD_LESSON, ContractValue
from evaluator.reporting.html import Html, figure_html, figure_theme, label, render_macro, table_html
from evaluator.reporting.pipeline import DidFit, MatchedFit, collect_warnings

__all__ = ["contract_section"]

#: The template of this chapter: the section and each caption and axis label as a macro.
CHAPTER = "chapters/contract.html.j2"


def _tornado(table: pd.DataFrame, caption: str, axis: str) -> Html:
    from evaluator.contracts.economics import plot_tornado

    with figure_theme():
        return figure_html(plot_tornado(table, label=axis), caption, css_class="tornado")


def _macro(name: str, *args: Any) -> Html:
    return render_macro(CHAPTER, name, *args)


def contract_section(fit: DidFit | MatchedFit, value: ContractValue | None) -> Html:
    """The "Contract and value" section: settlement, own rule, power to cross the threshold, economic return.

    One line ("No contract terms were given.") without a contract.
    """
    from evaluator.contracts import settlement_sensitivity

    if value is None:
        return _macro("no_contract")
    s, r, c, st = fit.settings, fit.result, value.contract, value.settlement
    units = s.outcome_label or s.outcome
    rules = st.rules
    probabilities = [
        (row["rule"], float(row["p_met"]))
        for _, row in rules.iterrows()
        if row.get("p_met") is not None and pd.notna(row.get("p_met"))
    ]
    investor = None
    if st.investor is not None and len(st.investor):
        inv = st.investor.iloc[0]
        investor = {
            "multiple": inv["multiple"],
            "irr": inv["irr"],
            "irr_finite": math.isfinite(inv["irr"]),
            "irr_note": inv.get("irr_note", ""),
        }
    own_rule = table_html(st.to_frame("comparison")) if st.own_rule is not None else None
    lesson = FINNISH_LESSON if c.family == "pre_post_target" else RATE_CARD_LESSON
    with figure_theme():
        settlement_figure = figure_html(st.plot(), _macro("settlement_caption"), css_class="settlement")
    threshold = None
    if value.cut is not None:
        from evaluator.contracts.power import threshold_sentence

        threshold = {
            "cut": value.cut,
            "label": units,
            "power": value.threshold_power,
            "estimate": r.estimate,
            "sentence": threshold_sentence(value.cut, mde_of(fit), label=units),
        }
    sensitivity = Html("")
    try:
        with collect_warnings([]):
            sens = settlement_sensitivity(c, r, **value.settle_kwargs)
        axis = label("settlement_axis", c.currency)
        sensitivity = _tornado(sens, _macro("settlement_sensitivity_caption"), axis)
    except (EvaluatorError, ValueError) as exc:
        value.notes.append(f"the settlement's sensitivity could not be computed: {exc}")
    economic = None if value.economic is None else _economic(value)
    describe = c.describe()
    return _macro(
        "section",
        describe[0].upper() + describe[1:],
        Html(st._repr_html_()),
        st,
        c,
        round(100 * (1 - st.alpha)),
        probabilities,
        investor,
        value.observed_text,
        own_rule,
        lesson,
        settlement_figure,
        threshold,
        sensitivity,
        economic,
        list(value.notes),
    )


def _economic(value: ContractValue) -> dict[str, Any]:
    """The socio-economic return's pieces: NPV by payer, the cumulative figure and its sensitivity."""
    ser = value.economic
    cur = ser.params.get("currency") or ""
    npv = pd.DataFrame({"payer": list(ser.npv), label("npv_column", cur): [f"{v:,.0f}" for v in ser.npv.values()]})
    with figure_theme():
        figure = figure_html(ser.plot(), _macro("economic_caption"), css_class="economic-return")
    sensitivity = Html("")
    try:
        with collect_warnings([]):
            table = ser.sensitivity()
        sensitivity = _tornado(table, _macro("economic_sensitivity_caption"), label("economic_axis", cur))
    except (EvaluatorError, ValueError) as exc:
        value.notes.append(f"the socio-economic sensitivity could not be computed: {exc}")
    return {
        "country": str(value.country),
        "currency": cur,
        "sentence": ser.sentence,
        "npv": table_html(npv, css_class="evaluator-table npv-by-payer"),
        "break_even_year": ser.break_even_year,
        "figure": figure,
        "sensitivity": sensitivity,
    }
