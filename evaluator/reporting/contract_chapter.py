"""The contract chapter: settlement, socio-economic return and the tornado figure."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from evaluator.errors import EvaluatorError
from evaluator.formatting import localized, money, num, percent
from evaluator.i18n import gettext as _
from evaluator.reporting.contract_value import FINNISH_LESSON, RATE_CARD_LESSON, ContractValue
from evaluator.reporting.html import Html, figure_html, figure_theme, label, labels, render_macro, table_html
from evaluator.reporting.pipeline import DidFit, MatchedFit, collect_warnings

if TYPE_CHECKING:
    from evaluator.reporting.verdict import Verdict

__all__ = ["contract_section"]

#: The template of this chapter: the section and each caption and axis label as a macro.
CHAPTER = "chapters/contract.html.j2"


def _tornado(table: pd.DataFrame, caption: str, axis: str, currency: str = "") -> Html:
    from evaluator.contracts.economics import plot_tornado

    with figure_theme():
        return figure_html(plot_tornado(table, label=axis, currency=currency), caption, css_class="tornado")


def _macro(name: str, *args: Any) -> Html:
    return render_macro(CHAPTER, name, *args)


def _caption(name: str) -> str:
    """A figure's caption macro as plain text (:func:`figure_html` escapes it, for the caption and the alt text)."""
    return str(_macro(name))


def _rules_table(value: ContractValue) -> pd.DataFrame:
    """The settlement's rules for readers: improvement and target in the contract's terms, met, payments as money."""
    from evaluator.contracts.rules import rule_name

    st, c = value.settlement, value.contract
    cur = c.currency or ""
    words = labels().rules_columns
    blank = labels().cell_words
    relative = c.measure == "relative"

    def terms(v: Any) -> str:
        if v is None or not math.isfinite(float(v)):
            return blank["not_defined"]
        return percent(float(v), 1) if relative else num(float(v))

    rows = []
    early_paid = 0.0
    for _i, row in st.rules.iterrows():
        pays = [float(row.get(k, math.nan)) for k in ("payment", "payment_ci_low", "payment_ci_high")]
        lo, hi = min(pays[1:]), max(pays[1:])
        meaning = ""
        is_final = str(row["rule"]).startswith("overall (final)")
        if is_final and bool(row["met"]) and pays[0] == 0 and early_paid > 0:
            meaning = label("final_covered")
        if not is_final:
            early_paid += pays[0]
        p = row.get("p_met")
        rows.append(
            {
                words["rule"]: rule_name(row["rule"]),
                words["improvement"]: terms(row["improvement"]),
                words["threshold"]: terms(row["threshold"]) if pd.notna(row.get("threshold")) else blank["none"],
                words["met"]: label("yes_no", bool(row["met"])),
                words["p_met"]: percent(float(p), 0) if p is not None and pd.notna(p) else blank["not_available"],
                words["payment"]: money(pays[0], cur),
                words["range"]: label("money_range", money(lo, cur), money(hi, cur)),
                words["meaning"]: meaning,
            }
        )
    table = pd.DataFrame(rows)
    if not table[words["meaning"]].astype(bool).any():
        table = table.drop(columns=[words["meaning"]])
    return table


def _comparison_table(value: ContractValue) -> pd.DataFrame:
    """What the counterfactual estimate and the contract's own rule pay, in money."""
    st = value.settlement
    cur = st.contract.currency or ""
    t = st.to_frame("comparison")
    words = labels().comparison_columns
    bases = labels().comparison_bases
    return pd.DataFrame(
        {
            words["basis"]: [bases.get(str(b), str(b)) for b in t["basis"]],
            words["improvement"]: [num(float(v)) for v in t["improvement"]],
            words["payment"]: [money(float(v), cur) for v in t["payment"]],
        }
    )


def contract_section(fit: DidFit | MatchedFit, value: ContractValue | None, verdict: Verdict | None = None) -> Html:
    """The "Contract and value" section: the payment verdict, the rules, own rule, power, economic return.

    The payment sentence is ``verdict.payment`` (:func:`evaluator.reporting.verdict`),
    the same as in the headline box, ``results.json`` and the batch index. One line
    without a contract.
    """
    from evaluator.contracts import settlement_sensitivity
    from evaluator.contracts.finance import irr_note_text
    from evaluator.contracts.rules import method_name, rule_name
    from evaluator.reporting.verdict import verdict as make_verdict

    if verdict is None:
        verdict = make_verdict(fit, value)
    if value is None:
        return _macro("no_contract", verdict.payment)
    s, r, c, st = fit.settings, fit.result, value.contract, value.settlement
    units = s.outcome_label or s.outcome
    investor = None
    if st.investor is not None and len(st.investor):
        inv = st.investor.iloc[0]
        investor = {
            "multiple": localized(f"{inv['multiple']:.2f}"),
            "irr": inv["irr"],
            "irr_finite": math.isfinite(inv["irr"]),
            "irr_note": irr_note_text(inv.get("irr_note", "")),
        }
    probabilities = [
        (rule_name(row["rule"]), float(row["p_met"]))
        for _, row in st.rules.iterrows()
        if row.get("p_met") is not None and pd.notna(row.get("p_met"))
    ]
    own_rule = table_html(_comparison_table(value)) if st.own_rule is not None else None
    lesson = _(FINNISH_LESSON) if c.family == "pre_post_target" else _(RATE_CARD_LESSON)
    with figure_theme():
        settlement_figure = figure_html(st.plot(), _caption("settlement_caption"), css_class="settlement")
    threshold = None
    if value.cut is not None:
        threshold = {"cut": value.cut, "label": units, "power": value.threshold_power, "estimate": r.estimate}
    sensitivity = Html("")
    try:
        with collect_warnings([]):
            sens = settlement_sensitivity(c, r, **value.settle_kwargs)
        axis = label("settlement_axis", c.currency)
        sensitivity = _tornado(sens, _caption("settlement_sensitivity_caption"), axis, c.currency or "")
    except (EvaluatorError, ValueError) as exc:
        # TRANSLATORS: %(error)s is the reason, an error message in English.
        value.notes.append(_("the settlement's sensitivity could not be computed: %(error)s") % {"error": exc})
    economic = None if value.economic is None else _economic(value)
    describe = c.describe()
    return _macro(
        "section",
        verdict.payment,
        describe[0].upper() + describe[1:],
        table_html(_rules_table(value), css_class="evaluator-table contract-rules"),
        st,
        c,
        round(100 * (1 - st.alpha)),
        probabilities,
        method_name(st.probability_method),
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
    from evaluator.contracts.economics import payer_label

    ser = value.economic
    cur = ser.params.get("currency") or ""
    npv = pd.DataFrame(
        {
            # TRANSLATORS: a column header: who pays (or saves), e.g. kommune, stat, region.
            _("payer"): [payer_label(p) for p in ser.npv],
            label("npv_column", cur): [money(v) for v in ser.npv.values()],
        }
    )
    with figure_theme():
        fig = ser.plot()
        fig.set_size_inches(7, 3.2)
        figure = figure_html(fig, _caption("economic_caption"), css_class="economic-return")
    sensitivity = Html("")
    try:
        with collect_warnings([]):
            table = ser.sensitivity()
        sensitivity = _tornado(table, _caption("economic_sensitivity_caption"), label("economic_axis", cur), cur)
    except (EvaluatorError, ValueError) as exc:
        # TRANSLATORS: %(error)s is the reason, an error message in English.
        value.notes.append(_("the socio-economic sensitivity could not be computed: %(error)s") % {"error": exc})
    return {
        "country": str(value.country),
        "currency": cur,
        "sentence": ser.sentence,
        "npv": table_html(npv, css_class="evaluator-table npv-by-payer"),
        "break_even_year": ser.break_even_year,
        "figure": figure,
        "sensitivity": sensitivity,
    }
