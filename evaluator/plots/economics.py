"""Figures of money: a contract's payments, a cumulative cash flow and a tornado of one-at-a-time sensitivity.

Like :mod:`evaluator.plots.figures`, every function is pure: it takes frames and labels
(never a contract or a settlement, so this layer knows nothing of contracts) and returns
a :class:`matplotlib.figure.Figure` made without pyplot, so no global state is touched
and any backend works. Pass ``ax`` to draw into an existing axes; the figure returned is
then that axes' figure. :meth:`Settlement.plot <evaluator.contracts.Settlement.plot>`,
:meth:`SocioEconomicReturn.plot <evaluator.contracts.SocioEconomicReturn.plot>` and
:func:`evaluator.contracts.economics.plot_tornado` draw through these.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from evaluator.formatting import money_short, num, percent_short
from evaluator.plots.figures import human_ticks, new_axes, place_legend

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["PAYMENT_LABELS", "TORNADO_FORMATS", "TORNADO_LABELS", "cumulative_cash_flow", "payments", "tornado"]

#: Payment at the estimate, at the interval's two ends, and under the contract's own rule.
_PAYMENT_COLOURS = ("#1f77b4", "#9ecae1", "#9ecae1", "#d62728")

#: What each basis of payment (``Settlement.to_frame("comparison")``) is called in the figure.
PAYMENT_LABELS = {
    "counterfactual (estimate)": "at the estimated effect",
    "counterfactual (ci low)": "at the low end of the confidence interval",
    "counterfactual (ci high)": "at the high end of the confidence interval",
}

#: Readable names of the assumptions a tornado moves (the parameters of
#: :func:`evaluator.contracts.settlement_sensitivity` and ``SocioEconomicReturn.sensitivity``).
TORNADO_LABELS = {
    "effect": "effect size",
    "discount_rate": "discount rate",
    "horizon_years": "time horizon",
    "horizon": "time horizon",
    "decay": "yearly decay of the effect",
    "unit_cost": "unit cost",
    "unit_costs": "unit cost",
    "unit_value": "value per unit of outcome",
    "intervention_cost": "programme cost",
    "participants": "number of participants",
    "share": "share of savings paid",
    "scale": "scale of the outcome",
    "cap": "payment cap",
    "threshold": "threshold",
}

#: How the low and high values of each assumption are written: ``"percent"`` (3% / 5%),
#: ``"years"`` (2 / 8 years), ``"money"`` (EUR 1.5 million), ``"count"`` (80 / 120 people) or
#: ``"number"`` (the default).
TORNADO_FORMATS = {
    "discount_rate": "percent",
    "decay": "percent",
    "share": "percent",
    "horizon_years": "years",
    "horizon": "years",
    "unit_cost": "money",
    "unit_costs": "money",
    "unit_value": "money",
    "intervention_cost": "money",
    "cap": "money",
    "participants": "count",
}


def _value_pair(lo: Any, hi: Any, kind: str | Callable[[Any], str], currency: str, note: str = "") -> str:
    """``"3% / 5%"``, ``"2 / 8 years"``, ``"EUR 1 million / EUR 2 million"``: an assumption's two values."""
    if callable(kind):
        return f"{kind(lo)} / {kind(hi)}"
    try:
        a, b = float(lo), float(hi)
    except (TypeError, ValueError):
        return f"{lo} / {hi}"
    if not (math.isfinite(a) and math.isfinite(b)):
        return f"{num(a)} / {num(b)}"
    if kind == "percent":
        return f"{percent_short(a)} / {percent_short(b)}"
    if kind == "years":
        return f"{num(a)} / {num(b)} years"
    if kind == "money":
        return f"{money_short(a, currency)} / {money_short(b, currency)}"
    if kind == "count":
        return f"{a:,.0f} / {b:,.0f} people"
    if re.search(r"\bscaled\b", note):
        return f"{num(a)}x / {num(b)}x the estimate"
    return f"{num(a)} / {num(b)}"


def payments(
    frame: pd.DataFrame,
    *,
    currency: str = "",
    title: str = "",
    ax: Axes | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """Horizontal bars of the payment on each basis (``Settlement.to_frame("comparison")``).

    The payment axis is money for people (:func:`evaluator.formatting.money_ticks`:
    ``"EUR 250,000"``, ``"EUR 1.5 million"``), never in scientific notation, and each bar has
    its amount written beside it.

    Parameters
    ----------
    frame
        Columns ``basis`` and ``payment``, one row per basis in the order to show (top first):
        the estimate, the two ends of its interval and, where there is one, the contract's own rule.
    currency
        Shown in the axis label.
    title
        The figure's title (the contract's name).
    ax
        Axes to draw into; a new figure is made when ``None``.
    labels
        Names shown for the bases, over :data:`PAYMENT_LABELS`
        (``"counterfactual (ci low)"`` reads "at the low end of the confidence interval").

    Examples
    --------
    >>> f = pd.DataFrame({"basis": ["counterfactual (estimate)", "low", "high"], "payment": [1.5e6, 0.0, 3e6]})
    >>> ax = payments(f, currency="EUR").axes[0]
    >>> ax.get_yticklabels()[0].get_text(), "e+" in ax.xaxis.get_major_formatter().format_ticks([0, 1.5e6])[1]
    ('at the estimated effect', False)
    """
    names = {**PAYMENT_LABELS, **(labels or {})}
    fig, ax = new_axes(ax, (8.0, 0.6 * len(frame) + 1.2), layout=None)
    y = np.arange(len(frame))
    amounts = frame["payment"].to_numpy(dtype=float)
    bars = ax.barh(y, amounts, color=list(_PAYMENT_COLOURS[: len(frame)]))
    ax.bar_label(bars, labels=[money_short(v, currency) for v in amounts], padding=3, fontsize=8)
    finite = amounts[np.isfinite(amounts)]
    if len(finite):  # room for the amounts written beside the bars
        lo, hi = min(0.0, float(finite.min())), max(0.0, float(finite.max()))
        ax.set_xlim(lo - 0.3 * (hi - lo) * (lo < 0), hi + 0.3 * (hi - lo) * (hi > 0) or 1.0)
    ax.set_yticks(y, [names.get(str(b), str(b)) for b in frame["basis"]])
    ax.invert_yaxis()
    ax.set_xlabel(f"payment ({currency})" if currency else "payment")
    ax.set_ylabel("basis of payment")
    ax.set_title(title, fontsize=10)
    human_ticks(ax, money_x=currency)
    fig.tight_layout()
    return fig


def cumulative_cash_flow(
    table: pd.DataFrame,
    *,
    total: Hashable = "total",
    break_even_year: int | None = None,
    currency: str = "",
    ax: Axes | None = None,
) -> Figure:
    """Cumulative discounted cash flow by payer, the total in bold, the break-even year marked.

    The money axis reads ``"DKK 250,000"`` / ``"DKK 1.5 million"`` (never ``1e6``); the legend sits
    outside the axes, to the right.

    Parameters
    ----------
    table
        Columns ``year``, ``payer`` and ``cumulative`` (``SocioEconomicReturn.table``), payers in
        the order of the legend.
    total
        The ``payer`` value of the total line.
    break_even_year
        Marked with a dashed vertical line when given.
    currency
        Shown in the axis label.
    ax
        Axes to draw into; a new figure is made when ``None``.

    Examples
    --------
    >>> t = pd.DataFrame({"year": [0, 1, 0, 1], "payer": ["a", "a", "total", "total"],
    ...                   "cumulative": [-1.0, 1.0, -1.0, 1.0]})
    >>> fig = cumulative_cash_flow(t, break_even_year=1, currency="DKK")
    >>> fig.axes[0].yaxis.get_major_formatter().format_ticks([-1e6, 0, 1e6])
    ['DKK -1 million', 'DKK 0', 'DKK 1 million']
    """
    fig, ax = new_axes(ax, (6.5, 4), layout=None)
    for payer, part in table.groupby("payer", sort=False):
        is_total = payer == total
        ax.plot(
            part["year"],
            part["cumulative"],
            marker="o",
            lw=2.5 if is_total else 1.2,
            color="black" if is_total else None,
            label=str(payer),
        )
    ax.axhline(0, color="grey", lw=0.8)
    if break_even_year is not None:
        ax.axvline(break_even_year, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("years from the start")
    ax.set_ylabel(f"cumulative discounted net saving ({currency})" if currency else "cumulative discounted net saving")
    place_legend(ax)
    human_ticks(ax, money_y=currency, thousands_x=False)
    ax.xaxis.get_major_locator().set_params(integer=True)
    fig.tight_layout()
    return fig


def tornado(
    table: pd.DataFrame,
    *,
    ax: Axes | None = None,
    title: str = "",
    label: str = "result",
    labels: Mapping[str, str] | None = None,
    formats: Mapping[str, str | Callable[[Any], str]] | None = None,
    currency: str = "",
) -> Figure:
    """Tornado plot of a one-at-a-time sensitivity table: one bar per parameter from its low to its high result.

    Each bar is named in words with its two values written for people
    ("time horizon (2 / 8 years)", "discount rate (0% / 7%)"); the result axis is money
    (:func:`evaluator.formatting.money_ticks`), never in scientific notation. The legend
    sits outside the axes, to the right.

    Parameters
    ----------
    table
        Columns ``parameter, low, high, result_low, result_high`` (as
        :func:`evaluator.contracts.economics.tornado_table`), largest swing first; the base
        result in ``table.attrs["base"]`` (else the mean of the results). A ``note`` saying the
        effect was "scaled" writes the effect's values as factors of the estimate.
    ax
        Axes to draw into; a new figure is made when ``None``.
    title
        The figure's title.
    label
        The axis label: what the result is.
    labels
        Names of the parameters, over :data:`TORNADO_LABELS` (``{"horizon_years": "years paid"}``).
    formats
        How each parameter's values are written, over :data:`TORNADO_FORMATS`: ``"percent"``,
        ``"years"``, ``"money"``, ``"count"``, ``"number"`` or a function of one value.
    currency
        Currency code on the result axis and on money-valued parameters.

    Examples
    --------
    >>> t = pd.DataFrame({"parameter": ["horizon_years", "discount_rate"], "low": [2.0, 0.03], "high": [8.0, 0.05],
    ...                   "result_low": [1e6, 2.1e6], "result_high": [4e6, 2.6e6]})
    >>> ax = tornado(t, currency="EUR").axes[0]
    >>> [t.get_text() for t in ax.get_yticklabels()]
    ['time horizon (2 / 8 years)', 'discount rate (3% / 5%)']
    """
    names = {**TORNADO_LABELS, **(labels or {})}
    kinds: dict[str, str | Callable[[Any], str]] = {**TORNADO_FORMATS, **(formats or {})}
    notes = table["note"] if "note" in table.columns else pd.Series([""] * len(table), index=table.index)
    base = table.attrs.get("base", float(np.mean(table[["result_low", "result_high"]].to_numpy())))
    fig, ax = new_axes(ax, (9.0, 0.55 * len(table) + 1.6), layout=None)
    y = np.arange(len(table))
    lo, hi = table["result_low"].to_numpy(float), table["result_high"].to_numpy(float)
    ax.barh(y, lo - base, left=base, color="#d62728", alpha=0.8, label="at the low value")
    ax.barh(y, hi - base, left=base, color="#1f77b4", alpha=0.8, label="at the high value")
    ticks = [
        f"{names.get(str(p), str(p).replace('_', ' '))} "
        f"({_value_pair(a, b, kinds.get(str(p), 'number'), currency, str(n or ''))})"
        for p, a, b, n in zip(table["parameter"], table["low"], table["high"], notes, strict=True)
    ]
    ax.set_yticks(y, ticks)
    ax.invert_yaxis()
    ax.axvline(base, color="black", lw=1)
    ax.set_xlabel(label)
    ax.set_ylabel("assumption (low / high value)")
    if title:
        ax.set_title(title, fontsize=10)
    place_legend(ax)
    human_ticks(ax, money_x=currency)
    fig.tight_layout()
    return fig
