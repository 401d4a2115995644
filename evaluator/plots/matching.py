"""Figures of a matched comparison: the Love plot of balance and the overlap of the scores.

:meth:`MatchResult.plot_balance <evaluator.estimators.matching.MatchResult.plot_balance>` and
:meth:`~evaluator.estimators.matching.MatchResult.plot_overlap` delegate here; these
functions take plain tables and arrays, so the plots layer knows nothing of estimators.
Like the methods always did, they draw with pyplot (a notebook shows the figure).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["balance_plot", "overlap_plot"]


def balance_plot(balance: pd.DataFrame, ax: Any = None, threshold: float = 0.1, exclude: Sequence[str] = ()) -> Any:
    """Love plot: absolute standardised mean differences before and after matching.

    Parameters
    ----------
    balance : pandas.DataFrame
        The tidy table of :meth:`MatchResult.balance` (``term``, ``sample``, ``smd``).
    ax : matplotlib Axes, optional
        Where to draw.
    threshold : float
        The dashed line (0.1: the usual bound of good balance).
    exclude : list of str
        Balance terms to leave out, e.g. levels held by too few people to publish
        (statistical disclosure control).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    b = balance[~balance["term"].isin(list(exclude))]
    wide = b.pivot(index="term", columns="sample", values="smd").abs()
    wide = wide.loc[list(dict.fromkeys(b["term"]))[::-1]]
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(wide) + 1.5))
    else:
        fig = ax.figure
    y = np.arange(len(wide))
    ax.scatter(wide["before"], y, marker="o", facecolors="none", edgecolors="tab:gray", label="before")
    ax.scatter(wide["after"], y, marker="o", color="tab:blue", label="after")
    ax.axvline(threshold, color="tab:red", linestyle="--", linewidth=1)
    ax.set_yticks(y, wide.index)
    ax.set_xlabel("|standardised mean difference|")
    ax.legend(loc="lower right")
    ax.set_title("Covariate balance")
    fig.tight_layout()
    return fig


def overlap_plot(score: np.ndarray, focal: np.ndarray, weights: np.ndarray, ax: Any = None, bins: int = 30) -> Any:
    """Histograms of the propensity score by group, before matching and weighted by the match.

    Parameters
    ----------
    score : (n,) array
        The propensity score of every unit.
    focal : (n,) bool array
        The focal group (treated for the ATT).
    weights : (n,) array
        The match weights (0 for unmatched units).
    ax : matplotlib Axes or a pair of them, optional
        Where to draw.
    bins : int
        Histogram bins (shared edges over all units).

    Returns
    -------
    matplotlib.figure.Figure
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharex=True)
    else:
        axes = np.atleast_1d(ax)
        fig = axes[0].figure
    x = np.asarray(score)
    w = np.asarray(weights)
    edges = np.histogram_bin_edges(x, bins=bins)
    for a, (title, ww) in zip(axes, (("before matching", np.ones(len(x))), ("after matching", w)), strict=False):
        a.hist(x[focal], bins=edges, weights=ww[focal], density=True, alpha=0.5, label="treated")
        a.hist(x[~focal], bins=edges, weights=ww[~focal], density=True, alpha=0.5, label="control")
        a.set_title(title)
        a.set_xlabel("propensity score")
    axes[0].legend()
    fig.tight_layout()
    return fig
