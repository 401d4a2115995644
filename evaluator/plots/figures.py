"""Plots of results and raw data.

Every function here is pure: it takes a :class:`~evaluator.results.Result` or a data
frame and returns a :class:`matplotlib.figure.Figure`. Nothing is shown and no global
pyplot state is touched, so the functions work under any backend (including Agg on
a server) and inside notebooks and reports alike. Pass ``ax`` to draw into an
existing axes; the figure returned is then that axes' figure.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from evaluator.formatting import p_decimals

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from evaluator.results.base import Result

__all__ = ["coefficients", "report_theme", "specification_curve", "trends"]

_POINT_COLOR = "#1f4e79"
_BAND_COLOR = "#9ecae1"


@contextmanager
def report_theme(style: str = "whitegrid", context: str = "notebook", palette: str = "deep") -> Iterator[None]:
    """Draw and save report figures under seaborn's theme, without changing matplotlib's global settings.

    The same settings as ``seaborn.set_theme(style, context, palette)``, applied only inside
    the ``with`` block (``matplotlib.rc_context``), so figures drawn elsewhere (a user's
    notebook, the tests) keep the user's own style. Both drawing and saving should happen
    inside: matplotlib reads most settings when an artist is created, a few when it is saved.
    seaborn is imported here, only when a report draws a figure.

    Examples
    --------
    >>> with report_theme():
    ...     fig = Figure(); ax = fig.add_subplot()
    >>> ax.xaxis.get_gridlines()[0].get_visible()  # seaborn's whitegrid style draws grid lines
    True
    >>> import matplotlib
    >>> matplotlib.rcParams["axes.grid"]  # and matplotlib's own settings are as they were
    False
    """
    import matplotlib as mpl
    import seaborn as sns

    rc = {**sns.axes_style(style), **sns.plotting_context(context)}
    rc["axes.prop_cycle"] = mpl.cycler(color=sns.color_palette(palette))
    with mpl.rc_context(rc):
        yield


def new_axes(
    ax: Axes | None, figsize: tuple[float, float], *, layout: str | None = "constrained"
) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new figure (no pyplot state) with one axes of ``figsize``."""
    if ax is not None:
        fig = ax.get_figure()
        if fig is None:  # pragma: no cover - an axes always belongs to a figure in practice
            raise ValueError("ax does not belong to a figure")
        return fig, ax  # type: ignore[return-value]
    fig = Figure(figsize=figsize, layout=layout)
    return fig, fig.add_subplot()


def _reference_mask(table: pd.DataFrame, reference: Any) -> np.ndarray:
    """Rows that are the omitted/normalised reference period."""
    mask = table["std_error"].isna().to_numpy() & table["estimate"].notna().to_numpy()
    if reference is not None and "event_time" in table:
        mask |= (table["event_time"] == reference).to_numpy()
    return mask


def coefficients(
    result: Result,
    ax: Axes | None = None,
    *,
    title: str | None = None,
    reference: float | None = None,
) -> Figure:
    """Coefficient plot of a result's tidy table.

    With an ``event_time`` column this is an event-study plot: estimates by event
    time with confidence-interval bars, the uniform (simultaneous) band as a shaded
    area where the table has ``band_low``/``band_high``, a zero line, a dashed line
    between event times -1 and 0 where treatment starts, and the reference period
    drawn as a hollow marker labelled "reference". The pre-trend test p-value
    (``result.info["pretest"]``) is shown in the title when there is one.

    Without ``event_time`` it is a horizontal forest plot, one row per term.

    Parameters
    ----------
    result
        A fitted :class:`~evaluator.results.Result`.
    ax
        Axes to draw into; a new figure is made when ``None``.
    title
        Plot title; defaults to ``result.estimator``.
    reference
        Event time of the reference (normalised) period. Defaults to
        ``result.reference``; rows with a missing standard error are always
        treated as reference rows.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into.

    Examples
    --------
    >>> from evaluator.results import Result, tidy_table
    >>> table = tidy_table(
    ...     ["e=-2", "e=-1", "e=0", "e=1"], [0.1, 0.0, 1.0, 1.5], [0.2, np.nan, 0.2, 0.3],
    ...     event_time=[-2, -1, 0, 1],
    ... )
    >>> result = Result("Event study", table, nobs=400, outcome="earnings", info={"reference": -1})
    >>> fig = coefficients(result)
    >>> fig.axes[0].get_xlabel()
    'Periods since treatment start'
    >>> fig.savefig("event_study.png")  # doctest: +SKIP
    """
    table = result.to_frame()
    outcome = result.outcome or "outcome"
    level = round(100 * (1 - result.alpha))
    if title is None:
        title = result.estimator
    ref = reference if reference is not None else result.reference
    pretest = result.pretest
    if pretest and "p_value" in pretest:
        title = f"{title}\npre-trend test p = {p_decimals(float(pretest['p_value']))}"

    if "event_time" in table.columns and table["event_time"].notna().any():
        return _event_plot(table, ax, title=title, outcome=outcome, level=level, reference=ref)
    return _forest_plot(table, ax, title=title, outcome=outcome, level=level)


def _event_plot(
    table: pd.DataFrame, ax: Axes | None, *, title: str, outcome: str, level: int, reference: Any
) -> Figure:
    table = table.loc[table["event_time"].notna()].sort_values("event_time")
    x = table["event_time"].to_numpy(dtype=float)
    est = table["estimate"].to_numpy(dtype=float)
    lo = table["ci_low"].to_numpy(dtype=float)
    hi = table["ci_high"].to_numpy(dtype=float)
    is_ref = _reference_mask(table, reference)
    # the reference period is normalised to zero; some tables leave its estimate missing
    est = np.where(is_ref & np.isnan(est), 0.0, est)
    fig, ax = new_axes(ax, (max(5.0, 0.45 * len(x) + 3.0), 4.0))

    if {"band_low", "band_high"} <= set(table.columns) and table["band_low"].notna().any():
        ax.fill_between(
            x,
            table["band_low"].to_numpy(dtype=float),
            table["band_high"].to_numpy(dtype=float),
            color=_BAND_COLOR,
            alpha=0.45,
            linewidth=0,
            step=None,
            label=f"{level}% uniform band",
            zorder=1,
        )
    ax.axhline(0.0, color="0.3", linewidth=0.8, zorder=2)
    ax.axvline(-0.5, color="0.4", linestyle="--", linewidth=1.0, zorder=2, label="treatment starts")

    est_rows = ~is_ref
    if est_rows.any():
        ax.errorbar(
            x[est_rows],
            est[est_rows],
            yerr=np.vstack([est[est_rows] - lo[est_rows], hi[est_rows] - est[est_rows]]),
            fmt="o",
            color=_POINT_COLOR,
            ecolor=_POINT_COLOR,
            elinewidth=1.4,
            capsize=3,
            markersize=5,
            label=f"estimate, {level}% CI",
            zorder=3,
        )
    if is_ref.any():
        ax.plot(
            x[is_ref],
            est[is_ref],
            linestyle="none",
            marker="o",
            markersize=7,
            markerfacecolor="white",
            markeredgecolor=_POINT_COLOR,
            markeredgewidth=1.4,
            zorder=4,
        )
        for xr, yr in zip(x[is_ref], est[is_ref], strict=True):
            ax.annotate(
                "reference",
                (xr, yr),
                xytext=(0, -14),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=8,
                color="0.35",
            )
    # integer ticks at every event time when there are not too many
    if np.allclose(x, np.round(x)) and len(x) <= 25:
        ax.set_xticks(x)
        ax.set_xticklabels([f"{int(v)}" for v in x])
    ax.set_xlabel("Periods since treatment start")
    ax.set_ylabel(f"Effect on {outcome}")
    ax.set_title(title, fontsize=11)
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _forest_plot(table: pd.DataFrame, ax: Axes | None, *, title: str, outcome: str, level: int) -> Figure:
    n = len(table)
    fig, ax = new_axes(ax, (6.0, max(2.0, 0.45 * n + 1.4)))
    y = np.arange(n)[::-1].astype(float)  # first term on top
    est = table["estimate"].to_numpy(dtype=float)
    lo = table["ci_low"].to_numpy(dtype=float)
    hi = table["ci_high"].to_numpy(dtype=float)
    has_ci = np.isfinite(lo) & np.isfinite(hi)
    ax.axvline(0.0, color="0.3", linewidth=0.8, zorder=1)
    if has_ci.any():
        ax.errorbar(
            est[has_ci],
            y[has_ci],
            xerr=np.vstack([est[has_ci] - lo[has_ci], hi[has_ci] - est[has_ci]]),
            fmt="o",
            color=_POINT_COLOR,
            elinewidth=1.4,
            capsize=3,
            markersize=5,
            label=f"estimate, {level}% CI",
            zorder=3,
        )
    if (~has_ci).any():
        ax.plot(
            est[~has_ci],
            y[~has_ci],
            linestyle="none",
            marker="o",
            markerfacecolor="white",
            markeredgecolor=_POINT_COLOR,
            zorder=3,
        )
    ax.set_yticks(y)
    ax.set_yticklabels([str(t) for t in table["term"]])
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(f"Effect on {outcome}")
    ax.set_title(title, fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def trends(
    data: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    cohort: str,
    unit: str | None = None,
    ax: Axes | None = None,
    never_label: str = "never treated",
) -> Figure:
    """Raw mean outcome by treatment cohort over time.

    One line per cohort (the period a unit is first treated); never-treated units
    (cohort 0 or missing) form their own grey line. A dotted vertical line in each
    cohort's colour marks its first treated period. Looking at this before fitting
    anything shows whether cohorts trended in parallel before treatment.

    Parameters
    ----------
    data
        Long panel (or repeated cross-section): one row per unit and period.
    outcome, time, cohort
        Column names. ``cohort`` is the first treated period, 0 or missing for
        never-treated units.
    unit
        Unit identifier column. When given, the legend shows the number of units in
        each cohort.
    ax
        Axes to draw into; a new figure is made when ``None``.
    never_label
        Legend label of the never-treated line.

    Returns
    -------
    matplotlib.figure.Figure
        The figure drawn into.

    Examples
    --------
    >>> df = pd.DataFrame({
    ...     "id": np.repeat([1, 2, 3], 4), "year": np.tile([2019, 2020, 2021, 2022], 3),
    ...     "first": np.repeat([2021, 0, 2022], 4), "y": np.arange(12.0),
    ... })
    >>> fig = trends(df, outcome="y", time="year", cohort="first", unit="id")
    >>> len(fig.axes[0].get_lines())  # 3 cohort lines + 2 treatment-start markers
    5
    """
    missing = [c for c in (outcome, time, cohort, unit) if c is not None and c not in data.columns]
    if missing:
        raise KeyError(f"columns not in data: {missing}")
    g = data[cohort]
    never = g.isna() | (g == 0)
    key = g.where(~never, other=np.nan)
    frame = pd.DataFrame({"_c": key, "_t": data[time], "_y": data[outcome]})
    means = frame.groupby(["_c", "_t"], dropna=False, sort=True)["_y"].mean()
    counts: dict[Hashable, int] | None = None
    if unit is not None:
        counts = data.assign(_c=key).groupby("_c", dropna=False)[unit].nunique().to_dict()

    cohorts = sorted(c for c in means.index.get_level_values(0).unique() if pd.notna(c))
    has_never = bool(never.any())
    fig, ax = new_axes(ax, (7.0, 4.2))
    cmap = _cohort_colors(len(cohorts))

    def label(name: str, c: Hashable) -> str:
        if counts is None:
            return name
        n = counts.get(c)
        if n is None:  # NaN keys do not compare equal; look them up by position
            n = next((v for k, v in counts.items() if pd.isna(k)), 0) if pd.isna(c) else 0
        return f"{name} (n={n:,})"

    if has_never:
        nv = means.loc[means.index.get_level_values(0).isna()].droplevel(0)
        ax.plot(
            nv.index,
            nv.to_numpy(),
            color="0.45",
            linewidth=2.0,
            marker="o",
            markersize=3,
            label=label(never_label, np.nan),
        )
    for color, c in zip(cmap, cohorts, strict=True):
        s = means.loc[c]
        ax.plot(
            s.index,
            s.to_numpy(),
            color=color,
            linewidth=1.8,
            marker="o",
            markersize=3,
            label=label(f"cohort {_fmt_cohort(c)}", c),
        )
    for color, c in zip(cmap, cohorts, strict=True):
        ax.axvline(c, color=color, linestyle=":", linewidth=1.3, alpha=0.9)
    ax.set_xlabel(time)
    ax.set_ylabel(f"Mean {outcome}")
    ax.set_title(f"Mean {outcome} by treatment cohort (dotted: first treated period)", fontsize=11)
    ax.legend(fontsize=8, frameon=False, loc="best")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def specification_curve(
    table: pd.DataFrame,
    ax: Axes | None = None,
    *,
    outcome: str = "",
    exclude_kinds: tuple[str, ...] = ("placebo",),
    title: str = "Estimates across specifications",
) -> Figure:
    """Specification curve: estimates and confidence intervals across specifications, sorted by size.

    Parameters
    ----------
    table
        A robustness table with columns ``specification``, ``estimate``, ``ci_low``,
        ``ci_high`` and optionally ``kind`` (as :func:`evaluator.reporting.robustness_did`
        returns). Rows without an estimate are left out; the row of kind ``"main"``
        is drawn in a stronger colour.
    ax
        Axes to draw into; a new figure is made when ``None``.
    outcome
        Shown in the axis label.
    exclude_kinds
        Kinds left out (placebo estimates answer a different question).
    title
        Plot title.

    Returns
    -------
    matplotlib.figure.Figure
        One horizontal interval per specification, smallest estimate at the bottom.

    Examples
    --------
    >>> tab = pd.DataFrame({"specification": ["main", "other", "placebo"], "estimate": [1.0, 0.8, 0.1],
    ...                     "ci_low": [0.5, 0.2, -0.3], "ci_high": [1.5, 1.4, 0.5],
    ...                     "kind": ["main", "estimator", "placebo"]})
    >>> fig = specification_curve(tab)
    >>> [t.get_text() for t in fig.axes[0].get_yticklabels()]
    ['other', 'main']
    """
    missing = [c for c in ("specification", "estimate", "ci_low", "ci_high") if c not in table.columns]
    if missing:
        raise KeyError(f"columns not in table: {missing}")
    t = table.loc[table["estimate"].notna()]
    if "kind" in t.columns:
        t = t.loc[~t["kind"].isin(exclude_kinds)]
    if t.empty:
        raise ValueError("no specification with an estimate to plot")
    t = t.sort_values("estimate", kind="stable").reset_index(drop=True)
    is_main = (t["kind"] == "main").to_numpy() if "kind" in t.columns else np.zeros(len(t), bool)
    fig, ax = new_axes(ax, (7.5, max(2.2, 0.42 * len(t) + 1.3)))
    y = np.arange(len(t), dtype=float)
    est = t["estimate"].to_numpy(dtype=float)
    lo = t["ci_low"].to_numpy(dtype=float)
    hi = t["ci_high"].to_numpy(dtype=float)
    for mask, color, size, label in ((~is_main, "0.45", 5, "other specifications"), (is_main, _POINT_COLOR, 7, "main")):
        if mask.any():
            ax.errorbar(
                est[mask],
                y[mask],
                xerr=np.vstack([est[mask] - lo[mask], hi[mask] - est[mask]]),
                fmt="o",
                color=color,
                ecolor=color,
                elinewidth=1.5,
                capsize=3,
                markersize=size,
                label=label,
            )
    ax.axvline(0.0, color="0.3", linewidth=0.8)
    ax.set_yticks(y, [str(s) for s in t["specification"]])
    ax.set_xlabel(f"Estimated effect{f' on {outcome}' if outcome else ''} (with confidence interval)")
    ax.set_title(title, fontsize=11)
    ax.legend(fontsize=8, frameon=False, loc="best")
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def _fmt_cohort(c: Any) -> str:
    if isinstance(c, (float, np.floating)) and float(c).is_integer():
        return str(int(c))
    return str(c)


def _cohort_colors(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    if n <= 10:
        cmap = colormaps["tab10"]
        return [cmap(i) for i in range(n)]
    cmap = colormaps["viridis"]
    return [cmap(v) for v in np.linspace(0.0, 0.9, n)]
