"""Figures of a synthetic control or synthetic DiD fit: the trajectories and the unit weights.

:meth:`SyntheticResult.plot <evaluator.estimators.synthetic.SyntheticResult.plot>` delegates
here. The functions take the plain frames the result keeps (``trajectories``,
``unit_weights``), so the plots layer knows nothing of estimators.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from evaluator.plots.figures import new_axes, place_legend

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["placebo_plot", "trajectory_plot", "unit_weight_plot"]


def trajectory_plot(
    trajectories: pd.DataFrame,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    shift: bool = True,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """The treated units' mean path and its synthetic comparison, with the time weights below.

    Parameters
    ----------
    trajectories
        ``SyntheticResult.trajectories``: indexed by period, columns ``treated``, ``synthetic``,
        ``post`` and ``time_weight``.
    ax
        Axes to draw into; a new figure when ``None``.
    title
        Plot title.
    shift
        Draw the synthetic path shifted by the time-weighted pre-period gap (synthetic DiD compares
        changes, not levels); no shift when every time weight is zero (synthetic control).
    labels
        The words drawn, in the reader's language: ``treated``, ``synthetic``, ``shifted``,
        ``time_weight`` and ``x`` (the axis); English where not given.

    Examples
    --------
    >>> import pandas as pd
    >>> tr = pd.DataFrame({"treated": [1.0, 2, 4], "synthetic": [1.0, 2, 2], "post": [False, False, True],
    ...                    "time_weight": [0.5, 0.5, 0]}, index=[1, 2, 3])
    >>> fig = trajectory_plot(tr)
    >>> len(fig.axes[0].lines) >= 2
    True
    """
    fig, ax = new_axes(ax, (7.0, 4.0))
    t = trajectories.index.to_numpy()
    lam = trajectories["time_weight"].to_numpy(dtype=float)
    synth = trajectories["synthetic"].to_numpy(dtype=float)
    gap = float(np.dot(lam, (trajectories["treated"] - trajectories["synthetic"]).to_numpy()))
    words = {
        "treated": "treated",
        "synthetic": "synthetic comparison",
        "shifted": "synthetic comparison (shifted by the weighted pre-period gap)",
        "time_weight": "time weight (scaled)",
        "x": str(trajectories.index.name or "period"),
        **(labels or {}),
    }
    label = words["synthetic"]
    if shift and lam.any():
        synth = synth + gap
        label = words["shifted"]
    ax.plot(t, trajectories["treated"].to_numpy(dtype=float), color="C3", lw=2, label=words["treated"])
    ax.plot(t, synth, color="C0", lw=2, ls="--", label=label)
    post = trajectories["post"].to_numpy(dtype=bool)
    if post.any():
        start = t[np.argmax(post)]
        ax.axvline(start, color="grey", lw=1, ls=":")
    if lam.any():
        # the time weights as a strip along the bottom: which pre-periods the comparison leans on
        low, high = ax.get_ylim()
        height = 0.15 * (high - low) * lam / max(lam.max(), 1e-12)
        ax.bar(t, height, bottom=low, width=0.8, color="C2", alpha=0.5, label=words["time_weight"])
        ax.set_ylim(low, high)
    if np.issubdtype(t.dtype, np.integer):  # years or period numbers: whole-number ticks in every language
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Treated and synthetic trajectories" if title is None else title)
    ax.set_xlabel(words["x"])
    place_legend(ax)
    return fig


def unit_weight_plot(
    weights: pd.Series,
    ax: Axes | None = None,
    *,
    top: int = 20,
    title: str | None = None,
    xlabel: str = "unit weight",
) -> Figure:
    """Horizontal bars of the largest unit weights (omega) of the synthetic comparison.

    Examples
    --------
    >>> import pandas as pd
    >>> fig = unit_weight_plot(pd.Series([0.7, 0.3, 0.0], index=["a", "b", "c"]))
    >>> len(fig.axes[0].patches)
    2
    """
    w = weights[weights > 0].sort_values(ascending=True).tail(top)
    fig, ax = new_axes(ax, (6.0, max(2.0, 0.3 * len(w) + 1)))
    ax.barh([str(i) for i in w.index], w.to_numpy(dtype=float), color="C0")
    ax.set_xlabel(xlabel)
    n_zero = int((weights <= 0).sum())
    ax.set_title(f"Unit weights ({len(w)} shown, {n_zero} zero)" if title is None else title)
    return fig


def placebo_plot(
    placebo: np.ndarray,
    estimate: float,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> Figure:
    """The placebo-in-space distribution: each comparison unit's placebo estimate, with the treated unit's marked.

    Parameters
    ----------
    placebo
        ``SyntheticResult.placebo_estimates`` (one per comparison unit with one treated unit).
    estimate
        The treated unit's estimate.
    labels
        The words drawn: ``placebo``, ``treated`` and ``x`` (the axis); English where not given.

    Examples
    --------
    >>> import numpy as np
    >>> fig = placebo_plot(np.array([-1.0, 0.2, 0.5, 1.1]), -3.0)
    >>> len(fig.axes[0].patches), len(fig.axes[0].lines)  # 30 bins; the treated estimate and zero
    (30, 2)
    """
    words = {"placebo": "placebo estimates", "treated": "treated unit", "x": "estimate", **(labels or {})}
    fig, ax = new_axes(ax, (7.0, 3.2))
    values = np.asarray(placebo, dtype=float)
    values = values[np.isfinite(values)]
    reach = max(float(np.abs(values).max()) if values.size else 0.0, abs(float(estimate))) * 1.05 or 1.0
    bins = np.linspace(-reach, reach, 31)
    ax.hist(values, bins=bins, color="C0", alpha=0.6, label=words["placebo"])
    ax.axvline(float(estimate), color="C3", lw=2, label=words["treated"])
    ax.axvline(0.0, color="grey", lw=1, ls=":")
    ax.set_xlabel(words["x"])
    if title is not None:
        ax.set_title(title)
    place_legend(ax)
    return fig
