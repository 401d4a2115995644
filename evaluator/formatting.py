"""Number formatting for every text a reader sees: summaries, tables, report chapters and the batch index.

One family, so a number reads the same in a result's summary and in the report around it:

- :func:`fmt`: a number in a result's summary table (fixed decimals).
- :func:`num`: a number in a sentence or a report table (significant digits, thousands separators).
- :func:`p_value` (a p-value in a table cell) and :func:`p_phrase` (a p-value in a sentence: ``"p = 0.04"``).
- :func:`count`: a count of people, hidden below the small-cell threshold.
- :func:`money`: an amount of money, with its currency code; :func:`percent`: a share as a percentage.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["count", "fmt", "money", "num", "p_decimals", "p_phrase", "p_value", "percent", "sig"]

#: Smallest p-value written as a number; below it readers see "< 0.001".
P_FLOOR = 0.001


def fmt(x: object, digits: int = 4) -> str:
    """A number for a table or summary: ``digits`` decimals, scientific only when very large or small.

    >>> fmt(0.123456), fmt(1234567.0), fmt(float("nan"))
    ('0.1235', '1.235e+06', '.')
    """
    if isinstance(x, (float, np.floating)):
        if not math.isfinite(x):
            return "." if math.isnan(x) else str(x)
        return f"{x:.{digits}g}" if abs(x) >= 1e5 or (x != 0 and abs(x) < 1e-3) else f"{x:.{digits}f}"
    return str(x)


def num(x: float | None, digits: int = 3) -> str:
    """``x`` with ``digits`` significant digits, without scientific notation for ordinary sizes.

    Missing or infinite values read ``"."``; trailing zeros are dropped.

    >>> num(0.448751), num(-1234.5678, 4), num(2.5e-7), num(float("nan")), num(-0.0001, 1)
    ('0.449', '-1,235', '2.50e-07', '.', '-0.0001')
    """
    if x is None or not math.isfinite(x):
        return "."
    if x == 0:
        return "0"
    mag = math.floor(math.log10(abs(x)))
    if mag >= 6 or mag <= -6:
        return f"{x:.{digits - 1}e}"
    decimals = max(digits - 1 - mag, 0)
    out = f"{round(x, decimals):,.{decimals}f}"
    if decimals > 0:
        out = out.rstrip("0").rstrip(".")
    return "0" if out.strip("-0.,") == "" else out


def p_value(p: Any, digits: int = 4) -> str:
    """A p-value in a table cell: ``"< 0.001"`` below 0.001, else :func:`num` with ``digits`` digits.

    Anything that is not a float (a suppressed cell, a label) is shown as it is.

    >>> p_value(0.0004), p_value(0.04321), p_value(float("nan")), p_value(".")
    ('< 0.001', '0.04321', '.', '.')
    """
    if isinstance(p, (float, np.floating)):
        if math.isfinite(p) and p < P_FLOOR:
            return "< 0.001"
        return num(float(p), digits)
    return str(p)


def p_phrase(p: float) -> str:
    """A p-value for a sentence, after "p": 3 significant digits (``"= 0.0412"``), ``"< 0.001"`` below that.

    >>> "p " + p_phrase(0.04123), "p " + p_phrase(1e-5)
    ('p = 0.0412', 'p < 0.001')
    """
    return "< 0.001" if math.isfinite(p) and p < P_FLOOR else f"= {num(p)}"


def p_decimals(p: Any, *, below: str = "< 0.001", missing: str = ".") -> str:
    """A p-value in a figure title or the batch index: three decimals, ``below`` under 0.001.

    Anything that is not a finite number reads ``missing``.

    >>> p_decimals(0.04), p_decimals(0.0004), p_decimals(float("nan")), p_decimals(None, below="<0.001", missing="")
    ('0.040', '< 0.001', '.', '')
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p):
        return missing
    return below if p < P_FLOOR else f"{p:.3f}"


def sig(x: Any, digits: int = 4) -> str:
    """A headline number in the batch index and summary: ``digits`` significant digits.

    ``None`` reads ``""``; anything else that is not a number is shown as it is.

    >>> sig(-2.345), sig(1234567.0), sig(None), sig("n/a")
    ('-2.345', '1.235e+06', '', 'n/a')
    """
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return "" if x is None else str(x)
    return f"{x:.{digits}g}"


def count(n: Any, min_cell: int) -> str:
    """A count of people: ``"<5"`` when positive but below ``min_cell`` (disclosure control), else ``"1,234"``.

    >>> count(3, 5), count(0, 5), count(12345, 5), count(3, 0)
    ('<5', '0', '12,345', '3')
    """
    n = int(n)
    return f"<{min_cell}" if 0 < n < min_cell else f"{n:,}"


def money(x: float, currency: str = "") -> str:
    """An amount with its currency code: whole units from 100 up, cents below.

    >>> money(1500000, "EUR"), money(-42.5, "SEK"), money(99.999)
    ('EUR 1,500,000', 'SEK -42.50', '100.00')
    """
    cur = f"{currency} " if currency else ""
    x = float(x)
    return f"{cur}{x:,.0f}" if abs(x) >= 100 else f"{cur}{x:,.2f}"


def percent(x: float, decimals: int = 0) -> str:
    """A share as a percentage: ``percent(0.853) == "85%"``, ``percent(0.045, 1) == "4.5%"``.

    >>> percent(0.853), percent(0.045, 1), percent(-0.054, 1)
    ('85%', '4.5%', '-5.4%')
    """
    return f"{float(x):.{decimals}%}"
