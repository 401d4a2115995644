"""The investor's side: internal rate of return of dated cash flows and the multiple on the capital."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from evaluator.contracts.schema import as_date
from evaluator.contracts.terms import Contract
from evaluator.i18n import N_
from evaluator.i18n import gettext as _

__all__ = ["DAYS_PER_YEAR", "investor_table", "irr", "irr_note_text", "year_fractions"]

#: Day count of the internal rate of return: actual days / 365, as Excel's XIRR.
DAYS_PER_YEAR = 365.0

#: What the reader reads for each ``irr_note`` of :func:`investor_table` (the table keeps the English notes).
IRR_NOTES = {
    # TRANSLATORS: why the investor's internal rate of return is not defined.
    "undefined: the investor receives nothing back": N_("undefined: the investor receives nothing back"),
    # TRANSLATORS: the investor's internal rate of return is not defined (the cash flows never change sign).
    "undefined": N_("undefined"),
    # TRANSLATORS: the internal rate of return needs dated payments, and the contract gives none.
    "no dates": N_("no dates"),
}


def irr_note_text(note: str) -> str:
    """An ``irr_note`` of :func:`investor_table` as the reader reads it, in the current language.

    >>> irr_note_text("no dates"), irr_note_text("")
    ('no dates', '')
    """
    return _(IRR_NOTES[note]) if note in IRR_NOTES else str(note)


def irr(amounts: Sequence[float] | np.ndarray, times: Sequence[Any] | np.ndarray) -> float | None:
    """Internal rate of return of dated cash flows, or ``None`` where it is undefined.

    ``times`` are years from the first flow or dates (actual days / 365, as Excel's
    XIRR). The rate solves ``sum(amount / (1 + r) ** t) = 0`` by Brent's method on
    (-0.9999, 1e6). It is undefined (``None``) unless the flows change sign.

    Examples
    --------
    >>> round(irr([-100, 110], [0, 1]), 12)
    0.1
    >>> import datetime as dt
    >>> round(irr([-100, 121], [dt.date(2021, 1, 1), dt.date(2023, 1, 1)]), 10)
    0.1
    >>> irr([-100, 0], [0, 1]) is None
    True
    """
    from scipy import optimize  # here, so that importing evaluator.contracts stays light

    a = np.asarray(amounts, dtype=float)
    t = year_fractions(times)
    if a.size < 2 or not (np.any(a > 0) and np.any(a < 0)):
        return None

    def npv(r: float) -> float:
        return float(np.sum(a / (1.0 + r) ** t))

    lo, hi = -0.9999, 1e6
    f_lo, f_hi = npv(lo), npv(hi)
    if not (math.isfinite(f_lo) and math.isfinite(f_hi)) or f_lo * f_hi > 0:
        return None
    return float(optimize.brentq(npv, lo, hi, xtol=1e-14, rtol=1e-14, maxiter=500))


def year_fractions(times: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Dates as years since the first of them (actual days / 365); numbers are already years.

    >>> import datetime as dt
    >>> year_fractions([dt.date(2021, 1, 1), dt.date(2022, 1, 1)]).tolist()
    [0.0, 1.0]
    """
    items = list(times)
    if items and all(as_date(x) is not None and not isinstance(x, (int, float)) for x in items):
        dates = [as_date(x) for x in items]
        first = min(dates)
        return np.array([(d - first).days / DAYS_PER_YEAR for d in dates], dtype=float)
    return np.asarray(items, dtype=float)


def investor_table(c: Contract, schedule: pd.DataFrame) -> tuple[pd.DataFrame | None, list[str]]:
    """Capital, received, multiple and IRR per scenario of a payment ``schedule``, and notes; ``None`` without capital.

    ``schedule`` has one row per dated payment with columns ``date``, ``estimate``,
    ``ci_low`` and ``ci_high``; the investor receives them times ``investor.share``.
    """
    notes: list[str] = []
    if c.capital is None:
        return None, notes
    rows = []
    dated = c.invested is not None and schedule["date"].notna().all() and len(schedule) > 0
    if not dated:
        notes.append(
            _("the internal rate of return needs investor.invested and every payment date; it is not computed")
        )
    for scen in ("estimate", "ci_low", "ci_high"):
        received = schedule[scen].to_numpy() * c.investor_share
        total = float(received.sum())
        rate, why = None, ""
        if dated:
            rate = irr(np.r_[-c.capital, received], [c.invested, *schedule["date"].tolist()])
            if rate is None:
                why = "undefined: the investor receives nothing back" if total <= 0 else "undefined"
        else:
            why = "no dates"
        rows.append(
            {
                "scenario": scen,
                "capital": c.capital,
                "received": total,
                "multiple": total / c.capital,
                "irr": math.nan if rate is None else rate,
                "irr_note": why,
            }
        )
    return pd.DataFrame(rows), notes
