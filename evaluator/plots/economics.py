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

from evaluator.formatting import count, money_short, num, percent_short
from evaluator.i18n import N_
from evaluator.i18n import gettext as _
from evaluator.plots.figures import human_ticks, new_axes, place_legend

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["PAYMENT_LABELS", "TORNADO_FORMATS", "TORNADO_LABELS", "cumulative_cash_flow", "payments", "tornado"]

#: Payment at the estimate, at the interval's two ends, and under the contract's own rule.
_PAYMENT_COLOURS = ("#1f77b4", "#9ecae1", "#9ecae1", "#d62728")

#: What each basis of payment (``Settlement.to_frame("comparison")``) is called in the figure
#: (marked for the catalogs, translated where it is drawn).
PAYMENT_LABELS = {
    "counterfactual (estimate)": N_("at the estimated effect"),
    "counterfactual (ci low)": N_("at the low end of the confidence interval"),
    "counterfactual (ci high)": N_("at the high end of the confidence interval"),
    # TRANSLATORS: a bar of the payments figure: what the contract's own before/after (pre/post) rule pays.
    "contract's own rule (pre/post)": N_("contract's own rule (pre/post)"),
    # TRANSLATORS: a bar of the payments figure: what the contract's own rate card (price per outcome) pays.
    "contract's own rule (rate card)": N_("contract's own rule (rate card)"),
}

#: Readable names of the assumptions a tornado moves (the parameters of
#: :func:`evaluator.contracts.settlement_sensitivity` and ``SocioEconomicReturn.sensitivity``),
#: marked for the catalogs and translated where they are drawn.
TORNADO_LABELS = {
    # TRANSLATORS: an assumption of the sensitivity (tornado) figure: the size of the programme's effect.
    "effect": N_("effect size"),
    "discount_rate": N_("discount rate"),
    # TRANSLATORS: an assumption of the sensitivity figure: the number of years the effect is counted over.
    "horizon_years": N_("time horizon"),
    "horizon": N_("time horizon"),
    "decay": N_("yearly decay of the effect"),
    # TRANSLATORS: an assumption of the sensitivity figure: the public cost of one unit of the outcome.
    "unit_cost": N_("unit cost"),
    "unit_costs": N_("unit cost"),
    "unit_value": N_("value per unit of outcome"),
    "intervention_cost": N_("programme cost"),
    "participants": N_("number of participants"),
    "share": N_("share of savings paid"),
    # TRANSLATORS: an assumption of the sensitivity figure: the factor from the outcome's unit to the unit cost's.
    "scale": N_("scale of the outcome"),
    "cap": N_("payment cap"),
    # TRANSLATORS: an assumption of the sensitivity figure: the contract's target that triggers payment.
    "threshold": N_("threshold"),
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
        # TRANSLATORS: the low and high value of a time horizon in the sensitivity figure ("2 / 8 years").
        return _("%(low)s / %(high)s years") % {"low": num(a), "high": num(b)}
    if kind == "money":
        return f"{money_short(a, currency)} / {money_short(b, currency)}"
    if kind == "count":
        # TRANSLATORS: the low and high number of participants in the sensitivity figure ("80 / 120 people").
        return _("%(low)s / %(high)s people") % {"low": count(round(a), 0), "high": count(round(b), 0)}
    if re.search(r"\bscaled\b", note):
        # TRANSLATORS: the effect in the sensitivity figure as factors of the estimate ("0.5x / 1.5x the estimate").
        return _("%(low)sx / %(high)sx the estimate") % {"low": num(a), "high": num(b)}
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
    names = {**{k: _(v) for k, v in PAYMENT_LABELS.items()}, **(labels or {})}
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
    # TRANSLATORS: the axis of the payments figure; %(currency)s is a currency code (EUR).
    ax.set_xlabel(_("payment (%(currency)s)") % {"currency": currency} if currency else _("payment"))
    ax.set_ylabel(_("basis of payment"))
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
    labels: Mapping[str, str] | None = None,
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
    labels
        Names shown in the legend for the payers (``{"total": "i alt"}``); the rest by their ``payer`` value.

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
            label=(labels or {}).get(str(payer), str(payer)),
        )
    ax.axhline(0, color="grey", lw=0.8)
    if break_even_year is not None:
        ax.axvline(break_even_year, color="grey", ls="--", lw=0.8)
    ax.set_xlabel(_("years from the start"))
    if currency:
        # TRANSLATORS: the axis of the cash-flow figure; %(currency)s is a currency code (DKK).
        ax.set_ylabel(_("cumulative discounted net saving (%(currency)s)") % {"currency": currency})
    else:
        ax.set_ylabel(_("cumulative discounted net saving"))
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
    names = {**{k: _(v) for k, v in TORNADO_LABELS.items()}, **(labels or {})}
    kinds: dict[str, str | Callable[[Any], str]] = {**TORNADO_FORMATS, **(formats or {})}
    notes = table["note"] if "note" in table.columns else pd.Series([""] * len(table), index=table.index)
    base = table.attrs.get("base", float(np.mean(table[["result_low", "result_high"]].to_numpy())))
    fig, ax = new_axes(ax, (9.0, 0.55 * len(table) + 1.6), layout=None)
    y = np.arange(len(table))
    lo, hi = table["result_low"].to_numpy(float), table["result_high"].to_numpy(float)
    # TRANSLATORS: legend of the sensitivity figure: the result with the assumption at its low value.
    ax.barh(y, lo - base, left=base, color="#d62728", alpha=0.8, label=_("at the low value"))
    # TRANSLATORS: legend of the sensitivity figure: the result with the assumption at its high value.
    ax.barh(y, hi - base, left=base, color="#1f77b4", alpha=0.8, label=_("at the high value"))
    ticks = [
        f"{names.get(str(p), str(p).replace('_', ' '))} "
        f"({_value_pair(a, b, kinds.get(str(p), 'number'), currency, str(n or ''))})"
        for p, a, b, n in zip(table["parameter"], table["low"], table["high"], notes, strict=True)
    ]
    ax.set_yticks(y, ticks)
    ax.invert_yaxis()
    ax.axvline(base, color="black", lw=1)
    ax.set_xlabel(label)
    ax.set_ylabel(_("assumption (low / high value)"))
    if title:
        ax.set_title(title, fontsize=10)
    place_legend(ax)
    human_ticks(ax, money_x=currency)
    fig.tight_layout()
    return fig
