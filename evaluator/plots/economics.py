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

from collections.abc import Hashable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from evaluator.formatting import fmt
from evaluator.plots.figures import new_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["cumulative_cash_flow", "payments", "tornado"]

#: Payment at the estimate, at the interval's two ends, and under the contract's own rule.
_PAYMENT_COLOURS = ("#1f77b4", "#9ecae1", "#9ecae1", "#d62728")


def payments(frame: pd.DataFrame, *, currency: str = "", title: str = "", ax: Axes | None = None) -> Figure:
    """Horizontal bars of the payment on each basis (``Settlement.to_frame("comparison")``).

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

    Examples
    --------
    >>> f = pd.DataFrame({"basis": ["estimate", "low", "high"], "payment": [10.0, 0.0, 20.0]})
    >>> type(payments(f, currency="EUR")).__name__
    'Figure'
    """
    fig, ax = new_axes(ax, (6.5, 0.6 * len(frame) + 1.2), layout=None)
    ax.barh(frame["basis"], frame["payment"], color=list(_PAYMENT_COLOURS[: len(frame)]))
    ax.invert_yaxis()
    ax.set_xlabel(f"payment ({currency})" if currency else "payment")
    ax.set_title(title, fontsize=10)
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
    >>> type(cumulative_cash_flow(t, break_even_year=1)).__name__
    'Figure'
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
    ax.set_xlabel("year")
    ax.set_ylabel(f"cumulative discounted net saving {currency}".strip())
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def tornado(table: pd.DataFrame, *, ax: Axes | None = None, title: str = "", label: str = "result") -> Figure:
    """Tornado plot of a one-at-a-time sensitivity table: one bar per parameter from its low to its high result.

    Parameters
    ----------
    table
        Columns ``parameter, low, high, result_low, result_high`` (as
        :func:`evaluator.contracts.economics.tornado_table`), largest swing first; the base
        result in ``table.attrs["base"]`` (else the mean of the results).
    ax
        Axes to draw into; a new figure is made when ``None``.
    title
        The figure's title.
    label
        The axis label: what the result is.

    Examples
    --------
    >>> t = pd.DataFrame({"parameter": ["a"], "low": [0.0], "high": [2.0], "result_low": [0.0],
    ...                   "result_high": [20.0]})
    >>> type(tornado(t)).__name__
    'Figure'
    """
    base = table.attrs.get("base", float(np.mean(table[["result_low", "result_high"]].to_numpy())))
    fig, ax = new_axes(ax, (6.5, 0.55 * len(table) + 1.4), layout=None)
    y = np.arange(len(table))
    lo, hi = table["result_low"].to_numpy(float), table["result_high"].to_numpy(float)
    ax.barh(y, lo - base, left=base, color="#d62728", alpha=0.8, label="low value")
    ax.barh(y, hi - base, left=base, color="#1f77b4", alpha=0.8, label="high value")
    ax.set_yticks(y, [f"{p} ({fmt(a)} / {fmt(b)})" for p, a, b in table[["parameter", "low", "high"]].values])
    ax.invert_yaxis()
    ax.axvline(base, color="black", lw=1)
    ax.set_xlabel(label)
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig
