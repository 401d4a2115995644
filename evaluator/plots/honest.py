"""Sensitivity plot of an HonestDiD analysis: the confidence set at each bound beside the original interval."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from evaluator.plots.figures import new_axes

__all__ = ["sensitivity"]


def sensitivity(result: Any, ax: Any = None, *, figsize: tuple[float, float] = (6.0, 4.0)) -> Figure:
    """Intervals by M̄ (or M), the parallel-trends interval first, and a line at zero.

    ``result`` is an :class:`evaluator.estimators.honest.HonestResult` (anything with ``to_frame()``,
    ``original``, ``estimate`` and ``bound_name``).

    Examples
    --------
    >>> import numpy as np
    >>> from evaluator.estimators.honest import honest_did
    >>> r = honest_did(betahat=np.array([0.0, 0.0, 0.05]), sigma=np.eye(3) * 1e-4, n_pre=2, mbar=[0.5, 1])
    >>> fig = sensitivity(r)
    >>> len(fig.axes)
    1
    """
    fig, ax = new_axes(ax, figsize)
    table = result.to_frame()
    ms = table["m"].to_numpy(float)
    step = (ms.max() - ms.min()) / max(len(ms) - 1, 1) if len(ms) > 1 else 1.0
    x0 = ms.min() - step
    lo, hi = result.original
    ax.vlines(x0, lo, hi, color="0.4", linewidth=2.5, label="original (parallel trends)")
    ax.plot([x0], [result.estimate], "o", color="0.4")
    ax.vlines(ms, table["ci_low"], table["ci_high"], color="C0", linewidth=2.5, label=table["method"].iloc[0])
    ax.axhline(0.0, color="0.6", linewidth=0.8, linestyle="--")
    ax.set_xticks([x0, *ms], ["orig.", *(f"{v:g}" for v in ms)])
    ax.set_xlabel(result.bound_name)
    ax.set_ylabel("effect")
    ax.legend(loc="best", frameon=False)
    return fig
