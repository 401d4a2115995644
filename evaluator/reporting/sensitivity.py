"""How robust the difference-in-differences estimate is to diverging trends (HonestDiD), and what it means for payment.

The section reruns the event study with a common reference period (Callaway-Sant'Anna with
``base_period="universal"``, or the two-way fixed-effects event study as it is), takes up to 6
periods before the start and 6 after, and applies :func:`evaluator.honest_did` with relative
magnitudes to the average effect over those periods after the start. Its breakdown value (the
smallest M̄ at which the interval includes zero) and, under a contract, the smallest M̄ at
which the target would no longer be met are written in words and into ``results.json``.
The words are in ``templates/chapters/sensitivity.html.j2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from evaluator.errors import EvaluatorError
from evaluator.formatting import num
from evaluator.reporting.html import Html, labels, render_macro, table_html
from evaluator.reporting.pipeline import DidFit, estimate_did

__all__ = ["MBAR", "Sensitivity", "sensitivity_did", "sensitivity_section"]

#: The multiples M̄ of the largest pre-programme difference the report shows.
MBAR = (0.5, 1.0, 1.5, 2.0)
#: The window of event times used: up to this many periods before and after the start. The C-LF set's cost grows
#: steeply with the number of post-periods (0.4 s at 6, 12 s at 9 on a 24-month panel), and 6 matches the figure's
#: pre-period window.
PRE, POST = 6, 6
#: Breakdown values are found to this precision in M-bar (the page shows two significant digits).
TOL = 0.005
CHAPTER = "chapters/sensitivity.html.j2"


@dataclass
class Sensitivity:
    """The sensitivity of a DiD report: the HonestDiD result, its breakdown value and, with a contract, the target's."""

    result: Any
    breakdown: float
    n_post: int
    level: int
    threshold_breakdown: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """For ``results.json``: the bounds per M̄, the breakdown values (``null`` when infinite)."""

        def finite(v: float | None) -> float | None:
            return None if v is None or not math.isfinite(v) else round(float(v), 4)

        t = self.result.to_frame()
        return {
            "method": "relative_magnitude",
            "target": f"average of event times 0..{self.n_post - 1}",
            "mbar": [float(v) for v in t["m"]],
            "ci_low": [float(v) for v in t["ci_low"]],
            "ci_high": [float(v) for v in t["ci_high"]],
            "original": [float(v) for v in self.result.original],
            "breakdown_mbar": finite(self.breakdown),
            "threshold_breakdown_mbar": finite(self.threshold_breakdown),
        }


def sensitivity_did(fit: DidFit, value: Any = None) -> Sensitivity | None:
    """The HonestDiD sensitivity of ``fit`` (relative magnitudes, M̄ in :data:`MBAR`); ``None`` when it cannot apply.

    ``value`` (a :class:`~evaluator.reporting.contract_value.ContractValue`) adds the smallest
    M̄ at which the contract's target (its effect in the outcome's units) would no longer be met.
    """
    from evaluator.estimators.honest import honest_did

    s = fit.settings
    try:
        if s.estimator == "callaway_santanna":
            # a common reference period, as HonestDiD needs (varying-base pre-period cells are short differences)
            res = estimate_did(fit.panel, s, inference="analytic", base_period="universal")
        else:
            res = fit.event
        h = honest_did(res, method="relative_magnitude", mbar=list(MBAR), target="average", min_e=-PRE, max_e=POST - 1)
        breakdown = h.breakdown(tol=TOL)
        cut = getattr(value, "cut", None) if value is not None else None
        at_cut = h.breakdown(value=float(cut), tol=TOL) if cut is not None and math.isfinite(cut) else None
    except (EvaluatorError, ValueError, ZeroDivisionError):
        return None
    return Sensitivity(h, breakdown, h.n_post, round(100 * (1 - s.alpha)), at_cut)


def sensitivity_section(sens: Sensitivity | None) -> Html:
    """The section: the bounds at each M̄ beside the parallel-trends interval, the breakdown in words, the contract."""
    if sens is None:
        return render_macro(CHAPTER, "section", None, "", "")
    words = labels()
    t = sens.result.to_frame()
    lo, hi = sens.result.original
    rows = [(str(words.sensitivity_parallel()), lo, hi)]
    rows += [(num(m, 2), a, b) for m, a, b in zip(t["m"], t["ci_low"], t["ci_high"], strict=True)]
    cols = words.sensitivity_columns
    frame = pd.DataFrame(rows, columns=[cols["m"], cols["ci_low"], cols["ci_high"]])
    line = ""
    if sens.threshold_breakdown is not None:
        b = sens.threshold_breakdown
        line = str(render_macro(CHAPTER, "contract_line", _state(b), num(b, 2)))
    info = {
        "n_post": sens.n_post,
        "level": sens.level,
        "state": _state(sens.breakdown),
        "breakdown": num(sens.breakdown, 2),
    }
    return render_macro(CHAPTER, "section", info, table_html(frame, css_class="evaluator-table sensitivity"), line)


def _state(breakdown: float) -> str:
    """``"zero"``: the set includes the value under parallel trends; ``"never"``: at no M̄ examined; else ``"at"``."""
    return "zero" if breakdown == 0 else ("never" if not math.isfinite(breakdown) else "at")
