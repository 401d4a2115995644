"""Figures of a matched comparison: the Love plot of balance and the overlap of the scores.

:meth:`MatchResult.plot_balance <evaluator.estimators.matching.MatchResult.plot_balance>` and
:meth:`~evaluator.estimators.matching.MatchResult.plot_overlap` delegate here; these
functions take plain tables and arrays, so the plots layer knows nothing of estimators.
Like the methods always did, they draw with pyplot (a notebook shows the figure).

Both record the numbers of people they show (:func:`evaluator.plots.figures.record_counts`),
and the histograms merge bins held by fewer than ``min_cell`` people, so no bar of a
report rests on a handful of individuals.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from evaluator.i18n import N_
from evaluator.i18n import gettext as _
from evaluator.plots.figures import human_ticks, place_legend, record_counts
from evaluator.policy import MIN_CELL

__all__ = ["BALANCE_LABELS", "balance_plot", "merge_small_bins", "overlap_plot"]

#: Names shown for balance terms in the Love plot (the balance table calls the score matched on "matching score");
#: in English here, translated where they are drawn.
BALANCE_LABELS = {"distance": N_("matching score")}

#: The two panels of the overlap plot and the two samples of the Love plot: the English words are also the
#: names under which the overlap plot records its counts (``"treated before matching"``), never translated.
# TRANSLATORS: legend of the Love plot and title of the overlap plot's first panel: the groups as first sampled.
_BEFORE = N_("before matching")
# TRANSLATORS: legend of the Love plot and title of the overlap plot's second panel: the groups as matched.
_AFTER = N_("after matching")


def balance_plot(
    balance: pd.DataFrame,
    ax: Any = None,
    threshold: float = 0.1,
    exclude: Sequence[str] = (),
    *,
    labels: Mapping[str, str] | None = None,
    counts: Mapping[str, int] | None = None,
) -> Any:
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
    labels : mapping, optional
        Names shown for terms (covariates), over :data:`BALANCE_LABELS`: the score matched
        on (``distance``) reads "matching score", as in the balance table.
    counts : mapping, optional
        Sizes of the groups compared, e.g. ``{"programme": 80, "comparison before": 800,
        "comparison after": 80}``; recorded on the figure (``"groups"``) for the report's
        disclosure check.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> b = pd.DataFrame({"term": ["distance", "distance", "age", "age"], "sample": ["before", "after"] * 2,
    ...                   "smd": [0.8, 0.05, -0.3, 0.02]})
    >>> fig = balance_plot(b, counts={"programme": 60, "comparison": 60})
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()], fig.evaluator_counts
    (['age', 'matching score'], {'groups': [60, 60]})
    """
    import matplotlib.pyplot as plt

    names = {**{k: _(v) for k, v in BALANCE_LABELS.items()}, **(labels or {})}
    b = balance[~balance["term"].isin(list(exclude))]
    wide = b.pivot(index="term", columns="sample", values="smd").abs()
    wide = wide.loc[list(dict.fromkeys(b["term"]))[::-1]]
    if ax is None:
        fig, ax = plt.subplots(figsize=(7.5, 0.35 * len(wide) + 1.5))
    else:
        fig = ax.figure
    y = np.arange(len(wide))
    ax.scatter(wide["before"], y, marker="o", facecolors="none", edgecolors="tab:gray", label=_(_BEFORE))
    ax.scatter(wide["after"], y, marker="o", color="tab:blue", label=_(_AFTER))
    ax.axvline(threshold, color="tab:red", linestyle="--", linewidth=1)
    ax.set_yticks(y, [names.get(str(t), str(t)) for t in wide.index])
    # TRANSLATORS: axis of the Love plot; the bars | | mean the absolute value.
    ax.set_xlabel(_("|standardised mean difference|"))
    # TRANSLATORS: axis of the Love plot: the characteristics (covariates) of the people compared, e.g. age.
    ax.set_ylabel(_("characteristic"))
    place_legend(ax)
    ax.set_title(_("Covariate balance"))
    human_ticks(ax)
    if counts:
        record_counts(fig, "groups", list(counts.values()))
    fig.tight_layout()
    return fig


def merge_small_bins(edges: Any, counts: Sequence[Any], min_cell: int = MIN_CELL) -> np.ndarray:
    """Histogram edges with neighbouring bins merged until every bin holds 0 or at least ``min_cell`` people.

    Each array of ``counts`` (one per group drawn, e.g. treated and control, before and after
    matching) gives the people per bin of ``edges``. Bins are joined from the left until each
    group's total in the merged bin is either zero (no bar is drawn) or ``min_cell`` or more; a
    short remainder at the right joins the bin before it. Only when a whole group has fewer
    than ``min_cell`` people does a bin remain below the threshold.

    Parameters
    ----------
    edges : (k + 1,) array
        Bin edges.
    counts : list of (k,) arrays
        People per bin, one array per group.
    min_cell : int
        Smallest number of people a bar may rest on; 0 or 1 merges nothing.

    Returns
    -------
    numpy.ndarray
        The merged edges (a subset of ``edges``, the first and last kept).

    Examples
    --------
    >>> merge_small_bins([0, 1, 2, 3, 4], [[6, 2, 3, 9], [10, 10, 0, 10]], min_cell=5).tolist()
    [0.0, 1.0, 3.0, 4.0]
    """
    edges = np.asarray(edges, dtype=float)
    c = np.vstack([np.asarray(x, dtype=float) for x in counts]) if len(counts) else np.zeros((0, len(edges) - 1))
    k = len(edges) - 1
    if min_cell <= 1 or k <= 1:
        return edges

    def ok(total: np.ndarray) -> bool:
        return bool(np.all((total == 0) | (total >= min_cell)))

    groups: list[list[int]] = []  # [first bin, last bin + 1]
    start = 0
    for j in range(k):
        if ok(c[:, start : j + 1].sum(axis=1)):
            groups.append([start, j + 1])
            start = j + 1
    if start < k:
        if groups:
            groups[-1][1] = k
        else:
            groups.append([0, k])
    # a remainder joined on the right may itself fall short: keep joining leftwards
    while len(groups) > 1 and not ok(c[:, groups[-1][0] : groups[-1][1]].sum(axis=1)):
        last = groups.pop()
        groups[-1][1] = last[1]
    return np.array([edges[g[0]] for g in groups] + [edges[-1]])


def overlap_plot(
    score: np.ndarray,
    focal: np.ndarray,
    weights: np.ndarray,
    ax: Any = None,
    bins: int = 30,
    *,
    min_cell: int = MIN_CELL,
    labels: tuple[str, str] | None = None,
    score_label: str | None = None,
) -> Any:
    """Histograms of the propensity score by group, before matching and weighted by the match.

    Bins held by fewer than ``min_cell`` people of either group, before or after matching,
    are merged with their neighbours (:func:`merge_small_bins`), so no bar rests on fewer
    than ``min_cell`` people. The people per bin of each group are recorded on the figure
    (:func:`evaluator.plots.figures.record_counts`: ``"treated before matching"``,
    ``"control before matching"``, ``"treated after matching"``, ``"control after matching"``)
    for the report's disclosure check.

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
        Histogram bins before merging (shared edges over all units).
    min_cell : int
        Smallest number of people a bar may rest on (default :data:`evaluator.policy.MIN_CELL`).
    labels : (str, str), optional
        Names of the focal and the other group in the legend; ``("treated", "control")`` in the
        current language when ``None``.
    score_label : str, optional
        The horizontal axis; ``"propensity score"`` in the current language when ``None``.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> score = rng.uniform(size=400); focal = rng.uniform(size=400) < score
    >>> fig = overlap_plot(score, focal, np.ones(400), bins=40)
    >>> min(n for ns in fig.evaluator_counts.values() for n in ns if n > 0) >= 5
    True
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharex=True)
    else:
        axes = np.atleast_1d(ax)
        fig = axes[0].figure
    x = np.asarray(score, dtype=float)
    focal = np.asarray(focal, dtype=bool)
    w = np.asarray(weights, dtype=float)
    edges = np.histogram_bin_edges(x, bins=bins)
    panels = ((_BEFORE, np.ones(len(x))), (_AFTER, w))
    # the counts are recorded under English names ("treated before matching"); the legend is in the reader's words
    if labels is None:
        keys = ("treated", "control")
        # TRANSLATORS: legend of the overlap plot: the people who took part in the programme.
        treated = _("treated")
        # TRANSLATORS: legend of the overlap plot: the comparison group (people who did not take part).
        shown = (treated, _("control"))
    else:
        keys = shown = labels
    groups = list(zip(keys, shown, (focal, ~focal), strict=True))

    def people(mask: np.ndarray, ww: np.ndarray, e: np.ndarray) -> np.ndarray:
        return np.histogram(x[mask & (ww > 0)], bins=e)[0]

    edges = merge_small_bins(edges, [people(m, ww, edges) for _p, ww in panels for _k, _n, m in groups], min_cell)
    for a, (title, ww) in zip(axes, panels, strict=False):
        for key, name, mask in groups:
            a.hist(x[mask], bins=edges, weights=ww[mask], density=True, alpha=0.5, label=name)
            record_counts(fig, f"{key} {title}", people(mask, ww, edges))
        a.set_title(_(title))
        a.set_xlabel(_("propensity score") if score_label is None else score_label)
        human_ticks(a)
    # TRANSLATORS: vertical axis of a histogram drawn as a probability density.
    axes[0].set_ylabel(_("density"))
    place_legend(axes[-1])
    fig.tight_layout()
    return fig
