"""Number formatting for every text a reader sees: summaries, tables, report chapters and the batch index.

One family, so a number reads the same in a result's summary and in the report around it:

- :func:`fmt`: a number in a result's summary table (fixed decimals).
- :func:`num`: a number in a sentence or a report table (significant digits, thousands separators).
- :func:`p_value` (a p-value in a table cell) and :func:`p_phrase` (a p-value in a sentence: ``"p = 0.04"``).
- :func:`count`: a count of people, hidden below the small-cell threshold.
- :func:`money`: an amount of money, with its currency code; :func:`percent`: a share as a percentage.
- In figures: :func:`tick_labels` (plain numbers on an axis), :func:`money_ticks` and :func:`money_short`
  (money on an axis: ``"EUR 250,000"``, ``"EUR 1.5 million"``), :func:`percent_short` (``"3.5%"``) and
  :func:`qualified` (``"Event study (two-way fixed effects)"``, never doubled).

Every function writes for the current language (:func:`evaluator.i18n.current`): English as
above (``1,234.5``, ``EUR 1,500,000``, ``15%``); Danish ``1.234,5``, ``1.500.000 kr.``,
``15 %``; Swedish and Finnish ``1 234,5`` (a no-break space groups the thousands),
``1 500 000 €``. The separators and currency symbols are the CLDR locale's, from Babel.

>>> from evaluator.i18n import language
>>> with language("da"):
...     num(-1234.5678, 5), money(1500000, "DKK"), percent(0.153)
('-1.234,6', '1.500.000\xa0kr.', '15\xa0%')
"""

from __future__ import annotations

import math
import sys
from functools import cache
from typing import Any

from evaluator.i18n import BABEL_LOCALES, N_, current
from evaluator.i18n import gettext as _

__all__ = [
    "HOME_CURRENCY",
    "count",
    "currency_symbol",
    "fmt",
    "localized",
    "money",
    "money_short",
    "money_ticks",
    "num",
    "p_decimals",
    "p_phrase",
    "p_value",
    "percent",
    "percent_short",
    "qualified",
    "sig",
    "tick_labels",
]

#: Smallest p-value written as a number; below it readers see "< 0.001".
P_FLOOR = 0.001

#: The currency each language's readers know by its symbol ("kr."); others read as their ISO code.
HOME_CURRENCY = {"da": "DKK", "sv": "SEK", "fi": "EUR"}
_NBSP = "\u00a0"


@cache
def _symbols(code: str) -> dict[int, str]:
    """The translation table from an English-formatted number to language ``code``'s separators."""
    from babel import numbers

    loc = BABEL_LOCALES[code]
    return str.maketrans(
        {
            ",": numbers.get_group_symbol(loc),
            ".": numbers.get_decimal_symbol(loc),
            "-": numbers.get_minus_sign_symbol(loc),
        }
    )


def localized(text: str) -> str:
    """An English-formatted number (``"-1,234.5"``) with the current language's separators.

    >>> from evaluator.i18n import language
    >>> localized("-1,234.5")
    '-1,234.5'
    >>> with language("sv"):  # a true minus sign, and a no-break space between the thousands
    ...     localized("-1,234.5") == "\u22121\u00a0234,5"
    True
    """
    code = current()
    return text if code == "en" else text.translate(_symbols(code))


@cache
def currency_symbol(currency: str, code: str) -> str:
    """How language ``code`` writes ``currency``: its symbol for the home currency and the euro, else the code."""
    if code == "en" or currency not in (HOME_CURRENCY.get(code), "EUR"):
        return currency
    from babel import numbers

    return numbers.get_currency_symbol(currency, BABEL_LOCALES[code])


def _with_currency(amount: str, currency: str) -> str:
    """``amount`` (already localized) with its currency, where the current language puts it."""
    if not currency:
        return amount
    code = current()
    if code == "en":
        return f"{currency} {amount}"
    return f"{amount}{_NBSP}{currency_symbol(currency, code)}"  # da, sv, fi: the amount first (CLDR "#,##0.00 ¤")


def _is_float(x: object) -> bool:
    """A Python or numpy float; numpy is not imported for it (nothing is a numpy float before it is loaded).

    The batch index imports this module, and with it the ``evaluator`` command's parser (0.09 s of numpy).
    """
    floating = getattr(sys.modules.get("numpy"), "floating", None)
    return isinstance(x, float) or (floating is not None and isinstance(x, floating))


def fmt(x: object, digits: int = 4) -> str:
    """A number for a table or summary: ``digits`` decimals, scientific only when very large or small.

    >>> fmt(0.123456), fmt(1234567.0), fmt(float("nan"))
    ('0.1235', '1.235e+06', '.')
    """
    if _is_float(x):
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
        return localized(f"{x:.{digits - 1}e}")
    decimals = max(digits - 1 - mag, 0)
    out = f"{round(x, decimals):,.{decimals}f}"
    if decimals > 0:
        out = out.rstrip("0").rstrip(".")
    return "0" if out.strip("-0.,") == "" else localized(out)


def p_value(p: Any, digits: int = 4) -> str:
    """A p-value in a table cell: ``"< 0.001"`` below 0.001, else :func:`num` with ``digits`` digits.

    Anything that is not a float (a suppressed cell, a label) is shown as it is.

    >>> p_value(0.0004), p_value(0.04321), p_value(float("nan")), p_value(".")
    ('< 0.001', '0.04321', '.', '.')
    """
    if _is_float(p):
        if math.isfinite(p) and p < P_FLOOR:
            return "< " + localized("0.001")
        return num(float(p), digits)
    return str(p)


def p_phrase(p: float) -> str:
    """A p-value for a sentence, after "p": 2 significant digits (``"= 0.041"``), ``"< 0.001"`` below that.

    >>> "p " + p_phrase(0.04123), "p " + p_phrase(1e-5), "p " + p_phrase(0.00701)
    ('p = 0.041', 'p < 0.001', 'p = 0.007')
    """
    return "< " + localized("0.001") if math.isfinite(p) and p < P_FLOOR else f"= {num(p, 2)}"


def p_decimals(p: Any, *, below: str = "< 0.001", missing: str = ".") -> str:
    """A p-value in a figure title or the batch index: three decimals, ``below`` under 0.001.

    Anything that is not a finite number reads ``missing``.

    >>> p_decimals(0.04), p_decimals(0.0004), p_decimals(float("nan")), p_decimals(None, below="<0.001", missing="")
    ('0.040', '< 0.001', '.', '')
    """
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p):
        return missing
    return below if p < P_FLOOR else localized(f"{p:.3f}")


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
    return f"<{min_cell}" if 0 < n < min_cell else localized(f"{n:,}")


def money(x: float, currency: str = "") -> str:
    """An amount with its currency code: whole units from 100 up and for whole amounts, cents below.

    Never in scientific notation; a missing amount reads "not defined".

    >>> money(1500000, "EUR"), money(-42.5, "SEK"), money(99.999), money(0, "EUR"), money(2.5e12, "DKK")
    ('EUR 1,500,000', 'SEK -42.50', '100.00', 'EUR 0', 'DKK 2,500,000,000,000')
    """
    x = float(x)
    if not math.isfinite(x):
        return _("not defined")
    whole = abs(x) >= 100 or x == round(x)
    return _with_currency(localized(f"{x:,.0f}" if whole else f"{x:,.2f}"), currency)


def percent(x: float, decimals: int = 0) -> str:
    """A share as a percentage: ``percent(0.853) == "85%"``, ``percent(0.045, 1) == "4.5%"``.

    >>> percent(0.853), percent(0.045, 1), percent(-0.054, 1)
    ('85%', '4.5%', '-5.4%')
    """
    if current() == "en":
        return f"{float(x):.{decimals}%}"
    return localized(f"{100 * float(x):,.{decimals}f}") + _NBSP + "%"


# -- figures: tick labels, amounts of money on an axis, short percentages ---------------------------------------------
#: Amounts of money from these sizes up are written in millions / billions (``"EUR 1.5 million"``);
#: the words are translated where they are written (da "mio." / "mia.", sv and fi "milj." / "mdr" / "mrd.").
MONEY_SCALES = ((1e9, N_("billion")), (1e6, N_("million")))


def tick_labels(values: Any, *, thousands: bool = True) -> list[str]:
    """Tick labels for a numeric axis: plain numbers, never scientific notation and never an offset.

    All labels share the fewest decimals that show every value exactly (up to float noise),
    with thousands separators unless ``thousands=False`` (years, event times).

    Parameters
    ----------
    values : sequence of float
        The tick positions.
    thousands : bool
        Write ``1,500`` rather than ``1500``.

    Returns
    -------
    list of str
        One label per value; missing values read ``""``.

    Examples
    --------
    >>> tick_labels([0.0, 500000.0, 1000000.0, 1500000.0])
    ['0', '500,000', '1,000,000', '1,500,000']
    >>> tick_labels([-0.1, 0.1 + 0.2, 0.5]), tick_labels([2000, 2005, 2010], thousands=False)
    (['-0.1', '0.3', '0.5'], ['2000', '2005', '2010'])
    """
    vals = [float(v) for v in values]
    finite = sorted({v for v in vals if math.isfinite(v)})
    if not finite:
        return ["" for _ in vals]
    steps = [b - a for a, b in zip(finite, finite[1:], strict=False) if b > a]
    scale = min(steps) if steps else max(abs(finite[0]), 1e-300)
    tol = 1e-6 * scale
    decimals = next((d for d in range(13) if all(abs(round(v, d) - v) <= tol for v in finite)), 12)
    sep = "," if thousands else ""
    out = []
    for v in vals:
        if not math.isfinite(v):
            out.append("")
            continue
        text = f"{round(v, decimals):{sep}.{decimals}f}"
        out.append("0" if text.strip("-0.,") == "" else localized(text))
    return out


def money_ticks(values: Any, currency: str = "") -> list[str]:
    """Tick labels for an axis of money: the currency, thousands separators, millions and billions in words.

    One rule for every figure: the largest amount on the axis sets the scale, so all labels
    share it. Below a million the amounts are written in full (``"EUR 250,000"``); from a
    million up in millions (``"EUR 1.5 million"``), from a billion up in billions. Never
    scientific notation, never an offset. Zero reads ``"EUR 0"``; in millions and billions
    each label drops its trailing zeros (``"EUR 1 million"`` beside ``"EUR 1.5 million"``).

    Parameters
    ----------
    values : sequence of float
        The amounts (tick positions).
    currency : str
        Currency code written before each amount, e.g. ``"EUR"``; none when empty.

    Examples
    --------
    >>> money_ticks([0, 500000, 1000000, 1500000], "EUR")
    ['EUR 0', 'EUR 0.5 million', 'EUR 1 million', 'EUR 1.5 million']
    >>> money_ticks([-20000, 0, 20000, 40000], "DKK"), money_ticks([2.5e9])
    (['DKK -20,000', 'DKK 0', 'DKK 20,000', 'DKK 40,000'], ['2.5 billion'])
    """
    vals = [float(v) for v in values]
    finite = [abs(v) for v in vals if math.isfinite(v)]
    largest = max(finite, default=0.0)
    div, word = next(((d, w) for d, w in MONEY_SCALES if largest >= d), (1.0, ""))
    word = _(word) if word else ""
    point = localized(".")
    sep = " " if current() == "en" else _NBSP
    out = []
    for text in tick_labels([v / div for v in vals]):
        if not text:
            out.append("")
        elif text == "0" or not word:
            out.append(_with_currency(text, currency))
        else:  # "1 million" beside "1.5 million" reads better than "1.0 million"
            short = text.rstrip("0").rstrip(point) if point in text else text
            out.append(_with_currency(f"{short}{sep}{word}", currency))
    return out


def money_short(x: float, currency: str = "") -> str:
    """One amount as a figure shows it: the rule of :func:`money_ticks` for a single value.

    >>> money_short(1_500_000, "EUR"), money_short(250_000, "EUR"), money_short(12.5)
    ('EUR 1.5 million', 'EUR 250,000', '12.5')
    """
    return money_ticks([x], currency)[0]


def percent_short(x: float, max_decimals: int = 2) -> str:
    """A share as a percentage with as few decimals as it needs (at most ``max_decimals``).

    >>> percent_short(0.035), percent_short(0.07), percent_short(0.0), percent_short(0.12345)
    ('3.5%', '7%', '0%', '12.35%')
    """
    v = 100 * float(x)
    if not math.isfinite(v):
        return "."
    d = next((d for d in range(max_decimals + 1) if abs(round(v, d) - v) < 1e-9), max_decimals)
    if current() == "en":
        return f"{v:.{d}f}%"
    return localized(f"{v:.{d}f}") + _NBSP + "%"


def qualified(kind: str, name: str) -> str:
    """``"kind (name)"``, or ``name`` alone when it already says what kind it is (no doubled titles).

    >>> qualified("Event study", "two-way fixed effects")
    'Event study (two-way fixed effects)'
    >>> qualified("Event study", "Event study (two-way fixed effects)")
    'Event study (two-way fixed effects)'
    """
    if not name:
        return kind
    if not kind or name.lower().startswith(kind.lower()):
        return name
    return f"{kind} ({name})"
