"""Settle an estimated effect under a contract: payments, the chance each threshold was met, the investor's return.

:func:`settle` applies a :class:`~evaluator.contracts.terms.Contract` to an estimated
effect and returns a :class:`Settlement`: the payment due at the point estimate and at
both ends of its confidence interval, the probability that each threshold was met,
payments per cohort, the investor's multiple and internal rate of return, and one
plain-language sentence. Settlement takes a result; it never fits a model.

Where the contract's own rule is not counterfactual (pre/post and rate card), the
settlement also shows what that rule pays on the observed figures, next to what the
counterfactual estimate would pay: a pre/post rule cannot separate the intervention
from the general trend (the lesson of the Finnish sick-leave SIB).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluator.contracts.effect import Effect, cohorts_from_result, read_effect
from evaluator.contracts.finance import DAYS_PER_YEAR, investor_table
from evaluator.contracts.rules import SCENARIOS, payment_rows, target_row
from evaluator.contracts.terms import FAMILY_LABELS, Contract, cohort_key
from evaluator.errors import ContractError, Problem
from evaluator.files import jsonable
from evaluator.formatting import fmt, money
from evaluator.i18n import gettext as _
from evaluator.results.base import Result
from evaluator.results.display import Display, Shown

__all__ = ["Settlement", "settle"]


@dataclass(frozen=True, repr=False)
class Settlement(Display):
    """What a contract pays on an estimated effect. Built by :func:`settle`; immutable.

    Read it as every result is read (:class:`~evaluator.results.display.Display`):
    ``summary()``, ``_repr_html_()`` in a notebook, ``to_frame()`` and ``to_dict()``.

    Attributes
    ----------
    contract : Contract
    rules : pandas.DataFrame
        One row per rule (each cohort, the final payment, or the single rule):
        improvement in the contract's terms at the estimate and at the ends of the
        interval, threshold, whether it is met at the estimate, the probability it
        was met and how that was computed, and the payment at the three points.
    payments : dict
        Total payment at ``estimate``, ``ci_low`` and ``ci_high`` (the ends of the
        effect's interval, not the order of the payments).
    present_value : dict
        The same, discounted to the investment date (or the first payment) at the
        contract's discount rate.
    own_rule : dict or None
        What the contract's own, non-counterfactual rule pays on the observed
        figures (pre/post target or rate card), with the observed improvement.
    investor : pandas.DataFrame or None
        Capital, received, multiple and internal rate of return per scenario.
    probability_method : str
        ``"bootstrap (B draws)"``, ``"normal approximation"`` or ``"not available"``.
    sentence : str
        The settlement in one plain-language sentence.
    notes : tuple of str
    """

    contract: Contract
    rules: pd.DataFrame
    payments: Mapping[str, float]
    present_value: Mapping[str, float]
    own_rule: Mapping[str, Any] | None
    investor: pd.DataFrame | None
    probability_method: str
    alpha: float
    effect: Mapping[str, float]
    sentence: str = ""
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "rules", self.rules.copy())
        if self.investor is not None:
            object.__setattr__(self, "investor", self.investor.copy())

    @property
    def due(self) -> float:
        """Total payment due at the point estimate."""
        return float(self.payments["estimate"])

    def to_frame(self, which: Literal["rules", "investor", "comparison"] = "rules") -> pd.DataFrame:
        """Tidy tables: ``"rules"`` (one row per rule), ``"investor"``, or ``"comparison"``.

        ``"comparison"`` has one row per basis of payment (counterfactual estimate and
        its interval ends, and the contract's own rule where it differs).
        """
        if which == "rules":
            return self.rules.copy()
        if which == "investor":
            return pd.DataFrame() if self.investor is None else self.investor.copy()
        if which == "comparison":
            rows = [
                {"basis": f"counterfactual ({s.replace('_', ' ')})", "improvement": self._imp(s), "payment": v}
                for s, v in self.payments.items()
            ]
            if self.own_rule is not None:
                rows.append(
                    {
                        "basis": f"contract's own rule ({self.own_rule['rule']})",
                        "improvement": self.own_rule["improvement"],
                        "payment": self.own_rule["payment"],
                    }
                )
            return pd.DataFrame(rows)
        raise ValueError(f"which={which!r}: use 'rules', 'investor' or 'comparison'")

    def _imp(self, scenario: str) -> float:
        col = {"estimate": "improvement", "ci_low": "improvement_ci_low", "ci_high": "improvement_ci_high"}[scenario]
        last = self.rules[col]
        return float(last.iloc[-1]) if len(last) else math.nan

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary (for the results.json sidecar of a report)."""
        return jsonable(
            {
                "contract": self.contract.name,
                "family": self.contract.family,
                "metric": self.contract.metric,
                "direction": self.contract.direction,
                "currency": self.contract.currency,
                "effect": dict(self.effect),
                "alpha": self.alpha,
                "payments": dict(self.payments),
                "present_value": dict(self.present_value),
                "probability_method": self.probability_method,
                "own_rule": None if self.own_rule is None else dict(self.own_rule),
                "rules": self.rules.assign(date=self.rules["date"].astype(str)),
                "investor": self.investor,
                "sentence": self.sentence,
                "notes": list(self.notes),
            }
        )

    def money(self, x: float) -> str:
        """A money amount in the contract's currency (:func:`evaluator.formatting.money`)."""
        return money(x, self.contract.currency)

    def __repr__(self) -> str:
        return f"<Settlement {self.contract.name!r}: due {self.money(self.due)} at the estimate>"

    # -- what is shown (evaluator.results.display.Display renders it) ----------------------
    def _title(self) -> str:
        return f"Settlement: {self.contract.name}"

    def _headline(self) -> list[str]:
        return [self.sentence]

    def _facts(self) -> list[tuple[str, str]]:
        c = self.contract
        level = round(100 * (1 - self.alpha))
        e = self.effect
        out = [
            ("Contract", c.name),
            ("Rule", FAMILY_LABELS[c.family] + ": " + c.describe()),
            ("Effect", f"{fmt(e['estimate'])} {c.unit}, {level}% CI [{fmt(e['ci_low'])}, {fmt(e['ci_high'])}]"),
            (
                "Payment due",
                f"{self.money(self.payments['estimate'])} at the estimate; {self.money(self.payments['ci_low'])} "
                f"and {self.money(self.payments['ci_high'])} at the ends of the interval",
            ),
            ("Present value", f"{self.money(self.present_value['estimate'])} at {c.discount_rate:.1%}"),
            ("Probability method", self.probability_method),
        ]
        if self.own_rule is not None:
            out.append(
                (
                    "Contract's own rule",
                    f"{self.own_rule['rule']}: improvement {fmt(self.own_rule['improvement'])}, "
                    f"pays {self.money(self.own_rule['payment'])}",
                )
            )
        if self.investor is not None:
            row = self.investor.iloc[0]
            irr_txt = f"{row['irr']:.1%}" if math.isfinite(row["irr"]) else f"- ({row['irr_note']})"
            out.append(("Investor", f"multiple {row['multiple']:.2f}, IRR {irr_txt}"))
        return out

    def _shown_rules(self) -> pd.DataFrame:
        cols = ["rule", "improvement", "threshold", "met", "p_met", "payment", "payment_ci_low", "payment_ci_high"]
        return self.rules[[c for c in cols if c in self.rules.columns] + ["date"]]

    def _tables(self) -> list[Shown]:
        shown = self._shown_rules()
        tables: list[Shown] = [("", shown, _formatters(shown))]
        if self.investor is not None:
            tables.append(("", self.investor, _formatters(self.investor)))
        return tables

    def _css_class(self) -> str:
        return "evaluator-settlement"

    def plot(self, ax: Any = None) -> Any:
        """Bar chart of the payment at the estimate, at the interval's ends and under the own rule.

        Drawn by :func:`evaluator.plots.economics.payments`; returns a matplotlib Figure.
        """
        from evaluator.plots.economics import payments

        return payments(self.to_frame("comparison"), currency=self.contract.currency, title=self.contract.name, ax=ax)


_MONEY = {"payment", "payment_ci_low", "payment_ci_high", "capital", "received"}
_SHARES = {"p_met", "irr"}


def _formatters(frame: pd.DataFrame) -> dict[str, Callable[[Any], str]]:
    """Money with thousands separators, probabilities and rates as percentages, the rest as results do."""

    def whole(v: Any) -> str:
        return f"{v:,.0f}" if isinstance(v, (int, float)) and math.isfinite(v) else "."

    def share(v: Any) -> str:
        return f"{v:.1%}" if isinstance(v, (int, float)) and math.isfinite(v) else "."

    out: dict[str, Callable[[Any], str]] = {}
    for col in frame.columns:
        if col in _MONEY:
            out[col] = whole
        elif col in _SHARES:
            out[col] = share
        elif pd.api.types.is_float_dtype(frame[col]):
            out[col] = fmt
    return out


def _sentence(c: Contract, s: dict[str, Any]) -> str:
    e, pay, level = s["effect"], s["payments"], round(100 * (1 - s["alpha"]))

    def m(x: float) -> str:
        return money(x, c.currency)

    rules = s["rules"]
    parts = [
        f"The estimated effect on {c.metric} is {fmt(e['estimate'])} {c.unit} "
        f"({level}% CI {fmt(e['ci_low'])} to {fmt(e['ci_high'])})."
    ]
    for r in rules:
        if math.isnan(r["threshold"]):
            continue
        shown = (
            f"{r['improvement']:.1%} against {r['threshold']:.1%}"
            if c.measure == "relative"
            else f"{fmt(r['improvement'])} against {fmt(r['threshold'])} {c.contract_unit}"
        )
        p = (
            f"; probability it was met {r['p_met']:.0%} ({r['probability_method']})"
            if math.isfinite(r["p_met"])
            else ""
        )
        parts.append(f"{r['rule'].capitalize()}: {shown}, {'met' if r['met'] else 'not met'}{p}.")
    lo, hi = sorted([pay["ci_low"], pay["ci_high"]])
    rng = f" ({m(lo)} to {m(hi)} across the interval)" if not math.isclose(lo, hi) or lo != pay["estimate"] else ""
    due = f"{m(pay['estimate'])} is due" if pay["estimate"] > 0 else "no payment is due"
    parts.append(f"Under the contract's rule applied to the counterfactual estimate, {due}{rng}.")
    own = s["own_rule"]
    if own is not None:
        same = math.isclose(own["payment"], pay["estimate"])
        if c.family == "rate_card":
            what = f"{own['improvement']:,.0f} verified outcomes"
            why = "it also pays for outcomes that would have happened without the intervention"
        else:
            what = f"an observed improvement of {fmt(own['improvement'])} {c.contract_unit}"
            why = "a before/after comparison cannot separate the intervention from the general trend"
        tail = "; the same." if same else f"; {why}."
        parts.append(f"The contract's own {own['rule']} rule, on {what}, pays {m(own['payment'])}{tail}")
    return " ".join(parts)


# -- settle -------------------------------------------------------------------------------
def settle(
    contract: Contract | str | Path | Mapping[str, Any],
    estimate: Result | float | tuple[float, float] | Mapping[str, Any],
    *,
    se: float | None = None,
    cohorts: Mapping[Any, Any] | None = None,
    observed: float | Mapping[str, float] | None = None,
    comparison: float | Mapping[Any, float] | None = None,
    draws: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    overall_only: bool = False,
) -> Settlement:
    """Apply an outcome contract's payment rule to an estimated effect.

    Parameters
    ----------
    contract : Contract, path or mapping
        The terms; a path or mapping is read with :meth:`Contract.from_file` / ``from_dict``.
    estimate : Result, number, (estimate, se) or mapping
        The effect over all participants, in the metric's measured unit (treated minus
        counterfactual). A :class:`~evaluator.results.Result` must be of the contract's
        metric. A number needs ``se=`` for probabilities and an interval.
    se : float, optional
        Standard error of a numeric ``estimate``.
    cohorts : mapping, optional
        cohort -> effect (Result, number or (estimate, se)) for per-cohort rules. When
        omitted and ``estimate`` is a result with a ``cohort`` column (as
        ``StaggeredResult.aggregate("group")``), its cohort rows are used.
    observed : number or mapping, optional
        For a non-counterfactual own rule, the figure that rule is applied to, in the
        measured unit: ``pre_post_target``: the observed change after minus before
        (or ``{"before": b, "after": a}``; ``before`` defaults to ``payment.baseline.value``);
        ``rate_card``: the observed outcome per participant (e.g. the share employed).
    comparison : number or mapping, optional
        Comparison group's level of the outcome (measured unit) for ``measure: relative``;
        a mapping may hold cohorts and ``"overall"``. Defaults to ``payment.comparison``
        of the contract, then to a result's ``comparison_mean``. A cohort
        without a level of its own is compared with the overall level.
    draws : array, optional
        Bootstrap draws of the overall estimate. Otherwise a result's ``draws`` (e.g. a matched
        bootstrap's) are
        used; without draws the probabilities use the normal approximation.
    alpha : float
        1 - confidence level for numeric estimates (a Result keeps its own).
    overall_only : bool
        Settle only the overall rule of a contract with per-cohort thresholds.

    Returns
    -------
    Settlement

    Notes
    -----
    Improvement is signed so that positive is success: ``sign x effect x scale`` per
    participant (absolute) or ``sign x effect / comparison`` (relative, Peterborough's
    "fall against the comparison"). A threshold is met when the improvement reaches it.
    The probability that it was met is ``P(improvement >= threshold)``: the share of
    bootstrap draws that reach it, or under the normal approximation
    ``Phi((sign x (estimate - cut)) / se)`` with ``cut`` the effect at which the
    improvement equals the threshold. Payments at the interval ends evaluate every
    cohort at the same end. Early payments are advances on the final payment.

    Examples
    --------
    Peterborough cohort 1: 142 reconviction events per 100 against 155 in the comparison.

    >>> c = Contract.from_dict({"name": "Peterborough-style", "currency": "GBP",
    ...     "outcome": {"metric": "reconvictions_12m", "unit": "events per prisoner", "direction": "decrease"},
    ...     "payment": {"family": "counterfactual_threshold", "measure": "relative",
    ...                 "thresholds": {"per_cohort": 0.10, "overall": 0.075},
    ...                 "cohort_payment": 1000, "final_payment": 5000}})
    >>> s = settle(c, -0.09 * 1.5, se=0.05, comparison={"overall": 1.5, 1: 1.55},
    ...            cohorts={1: (1.42 - 1.55, 0.07)})
    >>> s.rules[["rule", "met"]].values.tolist()
    [['cohort 1', False], ['overall (final)', True]]
    >>> s.due
    5000.0
    """
    c = contract if isinstance(contract, Contract) else _coerce_contract(contract)
    alpha = float(alpha)
    overall = read_effect(estimate, se=se, alpha=alpha, draws=draws, label="estimate")
    problems: list[Problem] = []
    if overall.outcome is not None and overall.outcome != c.metric:
        problems.append(
            Problem(
                f"the estimate is of '{overall.outcome}' but the contract pays on '{c.metric}'",
                hint=f"estimate the effect on '{c.metric}' or use a contract on '{overall.outcome}'",
            )
        )
    cohort_in = cohorts
    if cohort_in is None and isinstance(estimate, Result):
        cohort_in = cohorts_from_result(estimate)
    cohort_effects: dict[str, Effect] = {}
    if c.thresholds.get("per_cohort") is not None and not overall_only:
        if not cohort_in:
            problems.append(
                Problem(
                    "the contract has a per-cohort rule (payment.thresholds.per_cohort) "
                    "but the estimate has no cohorts",
                    hint="pass cohorts={cohort: estimate} (e.g. one matched estimate per cohort), a result by cohort "
                    "(aggregate('group')), or settle(..., overall_only=True) for the final payment alone",
                )
            )
        else:
            for key, val in cohort_in.items():
                e = read_effect(val, se=None, alpha=alpha, draws=None, label=f"cohort {key}")
                if e.outcome is not None and e.outcome != c.metric:
                    problems.append(
                        Problem(
                            f"the estimate for cohort {key} is of '{e.outcome}' but the contract pays on '{c.metric}'"
                        )
                    )
                cohort_effects[cohort_key(key)] = e
    comp = _comparisons(c, comparison, overall, cohort_effects, problems)
    if problems:
        raise ContractError(problems)
    rules, pay = payment_rows(c, overall, cohort_effects, comp)
    methods = sorted({r["probability_method"] for r in rules})
    table = pd.DataFrame([{k: v for k, v in r.items() if k != "_pay"} for r in rules])
    table["payment"], table["payment_ci_low"], table["payment_ci_high"] = (pay[:, 0], pay[:, 1], pay[:, 2])
    totals = dict(zip(SCENARIOS, pay.sum(axis=0).tolist(), strict=True))
    pv = _present_value(c, table, pay)
    own = _own_rule(c, observed)
    schedule = table.rename(columns={"payment": "estimate", "payment_ci_low": "ci_low", "payment_ci_high": "ci_high"})
    investor, notes = investor_table(c, schedule)
    if c.family in {"pre_post_target", "rate_card"} and observed is None:
        notes.append(
            _("the contract's own rule is not counterfactual; pass observed= to show what it pays beside the estimate")
        )
    eff = {"estimate": overall.estimate, "ci_low": overall.ci[0], "ci_high": overall.ci[1], "se": overall.se}
    parts = {"effect": eff, "payments": totals, "alpha": overall.alpha, "rules": rules, "own_rule": own}
    return Settlement(
        contract=c,
        rules=table,
        payments=totals,
        present_value=pv,
        own_rule=own,
        investor=investor,
        probability_method="; ".join(methods),
        alpha=overall.alpha,
        effect=eff,
        sentence=_sentence(c, parts),
        notes=tuple(notes),
    )


def _coerce_contract(x: str | Path | Mapping[str, Any]) -> Contract:
    if isinstance(x, Mapping):
        return Contract.from_dict(x)
    return Contract.from_file(x)


def _comparisons(
    c: Contract, comparison: Any, overall: Effect, cohorts: dict[str, Effect], problems: list[Problem]
) -> dict[Any, float | None]:
    comp: dict[Any, float | None] = {None: c.comparison.get("overall")}
    comp.update(c.comparison.get("by_cohort", {}))
    if comparison is not None:
        if isinstance(comparison, Mapping):
            for k, v in comparison.items():
                comp[None if k in (None, "overall") else cohort_key(k)] = float(v)
        else:
            comp[None] = float(comparison)
    if comp[None] is None and overall.comparison is not None:
        comp[None] = overall.comparison
    for k, e in cohorts.items():
        if comp.get(k) is None:
            # A cohort without its own comparison level is compared with the overall one.
            comp[k] = e.comparison if e.comparison is not None else comp[None]
    if c.measure == "relative":
        needed = [None] * (c.thresholds.get("overall") is not None) + list(cohorts)
        for k in needed:
            v = comp.get(k)
            if v is None or not v > 0:
                what = "overall" if k is None else f"cohort {k}"
                problems.append(
                    Problem(
                        f"a relative threshold needs the comparison group's level ({what}), which is missing"
                        if v is None
                        else f"the comparison level ({what}) must be positive, found {v}",
                        hint="give payment.comparison in the contract or settle(..., comparison={'overall': level, "
                        "cohort: level}) in the metric's measured unit",
                    )
                )
    return comp


def _present_value(c: Contract, table: pd.DataFrame, pay: np.ndarray) -> dict[str, float]:
    dates = table["date"].tolist() if len(table) else []
    start = c.invested or (min(d for d in dates if d is not None) if any(d is not None for d in dates) else None)
    if start is None or any(d is None for d in dates):
        return dict(zip(SCENARIOS, pay.sum(axis=0).tolist(), strict=True))
    t = np.array([(d - start).days / DAYS_PER_YEAR for d in dates])
    factor = (1 + c.discount_rate) ** -t
    return dict(zip(SCENARIOS, (factor @ pay).tolist(), strict=True))


def _own_rule(c: Contract, observed: Any) -> dict[str, Any] | None:
    if observed is None or c.family not in {"pre_post_target", "rate_card"}:
        return None
    if c.family == "pre_post_target":
        if isinstance(observed, Mapping):
            before = observed.get("before", c.baseline.get("value"))
            if before is None:
                raise ContractError([Problem("observed= has no 'before' and the contract no payment.baseline.value")])
            change = float(observed["after"]) - float(before)
        else:
            change = float(observed)
        row = target_row(c, np.array([change] * 3), None, "pre/post target")
        return {
            "rule": "pre/post",
            "observed": change,
            "improvement": row["improvement"],
            "threshold": row["threshold"],
            "met": row["met"],
            "payment": float(row["_pay"][0]),
        }
    level = float(observed)
    quantity = level * c.scale * c.participants
    pay = c.price * quantity
    if c.cap is not None:
        pay = min(pay, c.cap)
    return {
        "rule": "rate card",
        "observed": level,
        "improvement": quantity,
        "threshold": None,
        "met": None,
        "payment": pay,
    }
