"""The verdict: the one place that decides what a report says about payment and about the evidence.

The headline box, the contract section, ``results.json`` and the batch's
``index.html`` all show :attr:`Verdict.payment`, so they can never disagree. The
verdict reads the settlement (what the contract's rule pays at the estimate and at
both ends of the effect's confidence interval), the power of the design (whether
the target is at least the minimum detectable effect) and the design checks
(:mod:`evaluator.reporting.checks`).

The payment is *confirmed* when the contract pays the same at both ends of the
interval as at the estimate: then no plausible effect changes what is owed. When
the estimate crosses a target but the interval reaches effects short of it, the
verdict says once, the same way everywhere, that the design was too weak to
confirm it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd

from evaluator.formatting import money
from evaluator.reporting.checks import Check, design_checks
from evaluator.reporting.contract_value import ContractValue
from evaluator.reporting.html import render_text
from evaluator.reporting.pipeline import DidFit, MatchedFit, SyntheticFit

__all__ = ["Verdict", "verdict"]

Status = Literal["no_contract", "met", "met_unconfirmed", "not_met", "not_met_unconfirmed", "per_outcome"]
SENTENCE = "sentences/verdict.txt.j2"
_SPACES = re.compile(r"[ \t\r\n]+")


@dataclass(frozen=True)
class Verdict:
    """What the page says about payment and the strength of evidence; built by :func:`verdict`.

    Attributes
    ----------
    status : str
        ``"no_contract"``, ``"met"`` (met and confirmed across the interval),
        ``"met_unconfirmed"``, ``"not_met"``, ``"not_met_unconfirmed"`` (not met at the
        estimate, but the interval reaches effects that would pay) or
        ``"per_outcome"`` (a rate card without a threshold).
    payment : str
        The one plain sentence about what is owed.
    due, low, high : float or None
        The payment at the estimate and the smallest and largest across the interval.
    currency : str
    underpowered : bool
        The target is smaller than the minimum detectable effect.
    checks : tuple of Check
    """

    status: Status
    payment: str
    due: float | None = None
    low: float | None = None
    high: float | None = None
    currency: str = ""
    underpowered: bool = False
    checks: tuple[Check, ...] = field(default=())

    @property
    def caveats(self) -> list[str]:
        """The caveat lines of the headline box, one per check that did not pass."""
        return [c.caveat for c in self.checks if c.warns]

    @property
    def comparability_failed(self) -> bool:
        """A check of whether the groups are comparable failed: the evidence level is qualified."""
        return any(c.comparability and c.status == "failed" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """The verdict for ``results.json``: status, the payment sentence, amounts, caveats and each check's status."""
        return {
            "status": self.status,
            "text": self.payment,
            "due": self.due,
            "range": None if self.low is None else [self.low, self.high],
            "currency": self.currency,
            "underpowered": self.underpowered,
            "caveats": self.caveats,
            "checks": {c.name: c.status for c in self.checks},
        }


def _met_at_estimate(rules: pd.DataFrame) -> bool | None:
    if "met" not in rules or "threshold" not in rules or not rules["threshold"].notna().any():
        return None
    met = rules.loc[rules["threshold"].notna(), "met"].dropna()
    return bool(met.astype(bool).any()) if len(met) else None


def verdict(
    fit: DidFit | MatchedFit | SyntheticFit,
    value: ContractValue | None = None,
    robustness: pd.DataFrame | None = None,
    *,
    mde: float | None = None,
    sensitivity: Any = None,
) -> Verdict:
    """Decide what the report says about payment, from the settlement, the design's power and its checks.

    Parameters
    ----------
    fit : DidFit or MatchedFit
    value : ContractValue, optional
        From :func:`~evaluator.reporting.contract_value`; ``None`` without a contract.
    robustness : pandas.DataFrame, optional
        The robustness table (its placebo row is a design check).
    mde : float, optional
        The minimum detectable effect; computed from the fit when not given.
    sensitivity : Sensitivity, optional
        From :func:`~evaluator.reporting.sensitivity_did`: a small breakdown value adds a caveat.

    Returns
    -------
    Verdict

    Examples
    --------
    >>> from evaluator.reporting.verdict import Verdict
    >>> Verdict("no_contract", "No contract terms were given.").to_dict()["status"]
    'no_contract'
    """
    checks = design_checks(fit, robustness, sensitivity)
    if value is None:
        return Verdict("no_contract", _sentence("no_contract"), checks=checks)
    st = value.settlement
    cur = st.contract.currency or ""
    due = float(st.payments["estimate"])
    ends = [float(st.payments["ci_low"]), float(st.payments["ci_high"])]
    low, high = min(ends + [due]), max(ends + [due])
    confirmed = all(math.isclose(v, due, rel_tol=1e-9, abs_tol=0.005) for v in ends)
    met = _met_at_estimate(st.rules)
    underpowered = False
    if value.cut is not None:
        if mde is None:
            from evaluator.reporting.appendix import mde_of

            mde = mde_of(fit)
        underpowered = bool(math.isfinite(mde) and abs(value.cut) < mde)
    if met is None:
        status: Status = "per_outcome"
    elif met:
        status = "met" if confirmed else "met_unconfirmed"
    else:
        status = "not_met" if confirmed else "not_met_unconfirmed"
    level = round(100 * (1 - st.alpha))
    text = _sentence(
        status,
        due=money(due, cur),
        low=money(low, cur),
        high=money(high, cur),
        level=level,
        underpowered=underpowered,
        own=_own_rule(st, cur),
    )
    return Verdict(status, text, due, low, high, cur, underpowered, checks)


def _own_rule(st: Any, cur: str) -> str:
    """What the contract's own (pre/post or rate-card) rule pays, when it differs from the counterfactual payment."""
    own = st.own_rule
    if not own or "payment" not in own:
        return ""
    pay = float(own["payment"])
    if math.isclose(pay, st.due, rel_tol=1e-9, abs_tol=0.005):
        return ""
    return money(pay, cur)


def _sentence(status: str, **context: Any) -> str:
    context.setdefault("own", "")
    # one line; a no-break space (inside an amount of money, in some languages) stays
    return _SPACES.sub(" ", render_text(SENTENCE, status=status, **context)).strip()
