"""The payment rules: how an effect becomes an improvement in the contract's terms and then money.

:func:`payment_rows` evaluates a contract's rule at three points of the effect (the
estimate and both ends of its interval, :data:`SCENARIOS`) and returns one row per
rule (each cohort, the final payment, or the single rule) with the payments. A new
payment family adds its branch here (and its terms to ``data_schemas/contract.schema.json``
and :data:`evaluator.contracts.terms.FAMILIES`).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np

from evaluator.contracts.effect import Effect
from evaluator.contracts.terms import Contract
from evaluator.i18n import N_, ngettext
from evaluator.i18n import gettext as _

__all__ = [
    "SCENARIOS",
    "improvement",
    "improvement_slope",
    "method_name",
    "outcome_quantity",
    "payment_rows",
    "probability_met",
    "rule_name",
    "target_row",
    "years_factor",
]

#: The three points of the effect every payment is evaluated at.
SCENARIOS = ("estimate", "ci_low", "ci_high")

#: What the reader reads for each rule (the ``rule`` column keeps these English names: results.json stores them).
RULE_NAMES = {
    # TRANSLATORS: a row of the contract's rules table: the final payment, over all cohorts together.
    "overall (final)": N_("overall (final)"),
    "share of net fiscal gain": N_("share of net fiscal gain"),
    # TRANSLATORS: a row of the contract's rules table: the pre/post target applied to the counterfactual estimate.
    "target vs counterfactual": N_("target vs counterfactual"),
    # TRANSLATORS: a row of the contract's rules table: the outcomes the programme caused, times the price of one.
    "attributable outcomes x price": N_("attributable outcomes x price"),
    "share of savings": N_("share of savings"),
}
#: What the reader reads for each way a probability of meeting a threshold was computed.
METHOD_NAMES = {
    "normal approximation": N_("normal approximation"),
    "not available (no standard error)": N_("not available (no standard error)"),
    "observed (no uncertainty)": N_("observed (no uncertainty)"),
}
_BOOTSTRAP = re.compile(r"bootstrap \((\d+) draws\)")


def rule_name(rule: str) -> str:
    """A rule of :func:`payment_rows` (``"cohort 1"``, ``"overall (final)"``) as the reader reads it.

    The rules table keeps the English names (``Settlement.rules``, results.json); this is
    what a page shows, in the current language (:mod:`evaluator.i18n`).

    >>> rule_name("cohort 2"), rule_name("overall (final)"), rule_name("something else")
    ('cohort 2', 'overall (final)', 'something else')
    """
    rule = str(rule)
    if rule.startswith("cohort "):
        # TRANSLATORS: a row of the contract's rules table: the payment of one cohort (%(cohort)s is its name).
        return _("cohort %(cohort)s") % {"cohort": rule[len("cohort ") :]}
    return _(RULE_NAMES[rule]) if rule in RULE_NAMES else rule


def method_name(method: str) -> str:
    """How the probabilities were computed (``Settlement.probability_method``) as the reader reads it.

    >>> method_name("bootstrap (999 draws); normal approximation")
    'bootstrap (999 draws); normal approximation'
    """

    def one(m: str) -> str:
        boot = _BOOTSTRAP.fullmatch(m)
        if boot:
            n = int(boot.group(1))
            return ngettext("bootstrap (%(draws)d draw)", "bootstrap (%(draws)d draws)", n) % {"draws": n}
        return _(METHOD_NAMES[m]) if m in METHOD_NAMES else m

    return "; ".join(one(m) for m in str(method).split("; "))


def improvement(c: Contract, effect: np.ndarray, comparison: float | None) -> np.ndarray:
    """Improvement in the contract's terms: positive in the direction of success.

    Absolute: per participant in the contract's unit (effect x scale). Relative: as a
    fraction of the comparison level (the scale cancels).
    """
    effect = np.asarray(effect, dtype=float)
    if c.measure == "relative":
        return c.sign * effect / comparison
    return c.sign * effect * c.scale


def improvement_slope(c: Contract, comparison: float | None) -> float:
    """Improvement per unit of effect: the effect at which a threshold ``t`` is reached is ``t / slope``."""
    return float(improvement(c, np.array([1.0]), comparison)[0])


def probability_met(c: Contract, eff: Effect, threshold: float, comparison: float | None) -> tuple[float, str]:
    """P(improvement >= threshold) from the bootstrap draws where there are any, else the normal approximation."""
    if eff.draws is not None:
        imp = improvement(c, eff.draws, comparison)
        return float(np.mean(imp >= threshold)), f"bootstrap ({eff.draws.size} draws)"
    if not (math.isfinite(eff.se) and eff.se > 0):
        return math.nan, "not available (no standard error)"
    from scipy import stats  # here, so that importing evaluator.contracts stays light

    k = improvement_slope(c, comparison)
    cut = threshold / k  # the effect at which the improvement equals the threshold
    z = (eff.estimate - cut) / eff.se if k > 0 else (cut - eff.estimate) / eff.se
    return float(stats.norm.cdf(z)), "normal approximation"


def outcome_quantity(c: Contract, effect: np.ndarray, n: float) -> np.ndarray:
    """Contract units of improvement summed over ``n`` participants (outcomes to price)."""
    return c.sign * np.asarray(effect, dtype=float) * c.scale * n


def years_factor(c: Contract, horizon: float | None = None, decay: float | None = None) -> float:
    """Sum of the yearly weights ``(1 - decay) ** t`` over the horizon (a part year counts in part); 1 without one."""
    h = c.horizon_years if horizon is None else horizon
    d = c.decay if decay is None else decay
    if h is None:
        return 1.0
    whole, part = int(h), h - int(h)
    t = np.arange(whole + (1 if part > 0 else 0))
    w = np.ones(t.size)
    if part > 0:
        w[-1] = part
    return float(np.sum(w * (1 - d) ** t))


def payment_rows(
    c: Contract, overall: Effect, cohorts: dict[str, Effect], comp: dict[str, float | None]
) -> tuple[list[dict[str, Any]], np.ndarray]:
    """One row per rule, and the dated payments at the three points (estimate, ci_low, ci_high).

    Returns rows (rule, cohort, improvement, threshold, met, p_met, method, payments)
    and a matrix of payments (rules x 3). The effect's three points are evaluated
    together: every cohort at its own lower end, then every cohort at its upper end.
    """
    rows: list[dict[str, Any]] = []

    def points(e: Effect) -> np.ndarray:
        return np.array([e.estimate, e.ci[0], e.ci[1]])

    fam, thr = c.family, c.thresholds
    if fam == "counterfactual_threshold":
        early_paid = np.zeros(3)
        t_c = thr.get("per_cohort")
        if t_c is not None:
            for key, e in cohorts.items():
                n = c.participants_by_cohort.get(key, c.participants / max(len(cohorts), 1))
                imp = improvement(c, points(e), comp.get(key))
                met = imp >= t_c
                pay = np.where(met, c.cohort_payment + c.price * np.maximum(outcome_quantity(c, points(e), n), 0), 0.0)
                p, how = probability_met(c, e, t_c, comp.get(key))
                early_paid = early_paid + pay
                rows.append(_row(f"cohort {key}", key, imp, t_c, met, p, how, pay, c.early_dates.get(key)))
        t_o = thr.get("overall")
        if t_o is not None:
            imp = improvement(c, points(overall), comp.get(None))
            met = imp >= t_o
            full = c.final_payment + c.price * np.maximum(outcome_quantity(c, points(overall), c.participants), 0)
            # Early payments are advances on the final one: it pays only what they have not.
            pay = np.where(met, np.maximum(full - early_paid, 0.0), 0.0)
            p, how = probability_met(c, overall, t_o, comp.get(None))
            rows.append(_row("overall (final)", None, imp, t_o, met, p, how, pay, c.final_date))
    elif fam == "fiscal_share":
        gain = outcome_quantity(c, points(overall), c.participants) * c.unit_value
        t_o = thr.get("overall") or 0.0
        imp = improvement(c, points(overall), None)
        met = imp >= t_o if thr.get("overall") is not None else gain > 0
        pay = np.where(met, c.share * np.maximum(gain, 0.0), 0.0)
        p, how = probability_met(c, overall, t_o, None)
        rows.append(_row("share of net fiscal gain", None, imp, thr.get("overall"), met, p, how, pay, c.final_date))
    elif fam == "pre_post_target":
        rows.append(target_row(c, points(overall), overall, "target vs counterfactual"))
    elif fam == "rate_card":
        outcomes = np.maximum(outcome_quantity(c, points(overall), c.participants), 0.0)
        pay = c.price * outcomes
        imp = improvement(c, points(overall), None)
        p, how = probability_met(c, overall, 0.0, None)
        rows.append(_row("attributable outcomes x price", None, imp, None, imp > 0, p, how, pay, c.final_date))
    else:  # savings_share
        savings = outcome_quantity(c, points(overall), c.participants) * c.unit_value * years_factor(c)
        pay = c.share * np.maximum(savings, 0.0)
        if c.bonus_cap is not None and c.capital is not None:
            pay = np.minimum(pay, c.capital * (1 + c.bonus_cap))
        imp = improvement(c, points(overall), None)
        p, how = probability_met(c, overall, 0.0, None)
        rows.append(_row("share of savings", None, imp, None, imp > 0, p, how, pay, c.final_date))
    payments = np.array([r["_pay"] for r in rows]) if rows else np.zeros((0, 3))
    if c.cap is not None and len(rows):
        # The cap binds on the running total in payment order: later payments are cut first.
        cum = np.cumsum(payments, axis=0)
        capped = np.minimum(cum, c.cap)
        payments = np.diff(np.vstack([np.zeros(3), capped]), axis=0)
    return rows, payments


def target_row(c: Contract, effect_points: np.ndarray, eff: Effect | None, label: str) -> dict[str, Any]:
    """The row of a pre/post target at ``effect_points``; without ``eff`` (observed figures) no probability."""
    target = c.thresholds["overall"]
    imp = improvement(c, effect_points, None)
    met = imp >= target
    pay = np.where(
        met, c.final_payment + c.price * np.maximum(outcome_quantity(c, effect_points, c.participants), 0), 0.0
    )
    p, how = probability_met(c, eff, target, None) if eff is not None else (math.nan, "observed (no uncertainty)")
    return _row(label, None, imp, target, met, p, how, pay, c.final_date)


def _row(rule, cohort, imp, threshold, met, p, how, pay, date) -> dict[str, Any]:
    imp, met, pay = (np.atleast_1d(imp), np.atleast_1d(met), np.atleast_1d(pay).astype(float))
    if imp.size == 1:
        imp, met, pay = np.repeat(imp, 3), np.repeat(met, 3), np.repeat(pay, 3)
    return {
        "rule": rule,
        "cohort": cohort,
        "improvement": float(imp[0]),
        "improvement_ci_low": float(imp[1]),
        "improvement_ci_high": float(imp[2]),
        "threshold": math.nan if threshold is None else float(threshold),
        "met": bool(met[0]),
        "p_met": p,
        "probability_method": how,
        "date": date,
        "_pay": pay,
    }
