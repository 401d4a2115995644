"""Plots of results and raw data.

Every function here is pure: it takes a :class:`~evaluator.results.Result` or a data
frame and returns a :class:`matplotlib.figure.Figure`. Nothing is shown and no global
pyplot state is touched, so the functions work under any backend (including Agg on
a server) and inside notebooks and reports alike. Pass ``ax`` to draw into an
existing axes; the figure returned is then that axes' figure.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, MaxNLocator, ScalarFormatter

from evaluator.formatting import localized, money_ticks, p_decimals, tick_labels
from evaluator.i18n import gettext as _

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.legend import Legend

    from evaluator.results.base import Result

__all__ = [
    "AxisNumbers",
    "coefficients",
    "human_ticks",
    "legend_overlaps_data",
    "place_legend",
    "record_counts",
    "recorded_counts",
    "report_theme",
    "specification_curve",
    "trends",
]

#: Name of the Figure attribute that holds the counts behind a figure (:func:`record_counts`).
COUNTS_ATTRIBUTE = "evaluator_counts"

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


# -- numbers on the axes -----------------------------------------------------------------------------------------------
class AxisNumbers(Formatter):
    """Tick labels for people: plain numbers or amounts of money, never scientific notation, never an offset.

    The labels are :func:`evaluator.formatting.tick_labels` (``currency=None``) or
    :func:`evaluator.formatting.money_ticks` (``currency`` a code, or ``""`` for money
    without one), computed over all ticks at once so they share decimals and scale.

    Parameters
    ----------
    currency : str or None
        ``None``: the axis is not money. Otherwise the currency code written on each tick.
    thousands : bool
        Thousands separators on plain numbers (off for years).

    Examples
    --------
    >>> fig = Figure(); ax = fig.add_subplot(); _ = ax.plot([0, 3e6], [0, 1])
    >>> ax.xaxis.set_major_formatter(AxisNumbers("EUR"))
    >>> ax.xaxis.get_major_formatter().format_ticks([0, 1e6, 2e6])
    ['EUR 0', 'EUR 1 million', 'EUR 2 million']
    """

    def __init__(self, currency: str | None = None, *, thousands: bool = True) -> None:
        self.currency = currency
        self.thousands = thousands

    def _labels(self, values: Sequence[float]) -> list[str]:
        if self.currency is not None:
            return money_ticks(values, self.currency)
        return tick_labels(values, thousands=self.thousands)

    def format_ticks(self, values: Any) -> list[str]:
        self.set_locs(values)
        return self._labels(list(values))

    def __call__(self, x: float, pos: int | None = None) -> str:
        locs = [float(v) for v in self.locs]
        if x in locs:
            return self._labels(locs)[locs.index(x)]
        return self._labels([x])[0]

    def get_offset(self) -> str:
        return ""


class _FittingLocator(MaxNLocator):
    """Nice ticks along a horizontal axis, no more than its long labels ("EUR 1.5 million") leave room for."""

    def __init__(self, formatter: AxisNumbers, nbins: int = 6) -> None:
        super().__init__(nbins=nbins, steps=[1, 2, 2.5, 5, 10])
        self._formatter = formatter
        self._most = nbins

    def tick_values(self, vmin: float, vmax: float) -> Any:
        axis = self.axis
        if axis is None or getattr(axis, "axes", None) is None:
            return super().tick_values(vmin, vmax)
        from matplotlib import rcParams
        from matplotlib.font_manager import FontProperties
        from matplotlib.textpath import TextToPath

        width_px = axis.axes.bbox.width
        dpi = axis.axes.figure.dpi if axis.axes.figure is not None else 72.0
        prop = FontProperties(size=rcParams["xtick.labelsize"])
        size = prop.get_size_in_points()
        measure = TextToPath()
        slack = 1e-9 * abs(vmax - vmin)
        for n in range(self._most, 1, -1):
            self.set_params(nbins=n)
            ticks = super().tick_values(vmin, vmax)
            shown = [t for t in ticks if vmin - slack <= t <= vmax + slack]
            widths = [
                measure.get_text_width_height_descent(t, prop, ismath=False)[0] for t in self._formatter._labels(shown)
            ]
            needed_px = (sum(widths) + size * len(widths)) * dpi / 72.0  # labels and a gap of 1 em each
            if len(shown) <= 1 or needed_px <= width_px:
                return ticks
        return ticks


def human_ticks(
    ax: Axes,
    *,
    money_x: str | None = None,
    money_y: str | None = None,
    thousands_x: bool = True,
    thousands_y: bool = True,
) -> None:
    """Give every numeric axis of ``ax`` plain tick labels (:class:`AxisNumbers`): no ``1e6``, no offset.

    Axes with labelled ticks (terms, categories, dates) keep theirs; only matplotlib's default
    number formatter is replaced.

    Parameters
    ----------
    ax
        The axes.
    money_x, money_y
        Currency code of an axis of money (``""``: money without a code); ``None``: not money.
        A horizontal axis of money gets only as many ticks as its labels leave room for.
    thousands_x, thousands_y
        Thousands separators on plain numbers (off for an axis of years).

    Examples
    --------
    >>> fig = Figure(); ax = fig.add_subplot(); _ = ax.plot([0, 1], [1_000_000, 1_000_002])
    >>> human_ticks(ax); fig.canvas.draw()
    >>> ax.yaxis.get_major_formatter().get_offset(), ax.yaxis.get_major_formatter().format_ticks([1e6, 1000001.5])
    ('', ['1,000,000.0', '1,000,001.5'])
    """
    for axis, money, thousands in ((ax.xaxis, money_x, thousands_x), (ax.yaxis, money_y, thousands_y)):
        if money is not None:
            formatter = AxisNumbers(money)
            axis.set_major_formatter(formatter)
            if axis is ax.xaxis:  # long labels side by side: only as many ticks as fit
                axis.set_major_locator(_FittingLocator(formatter))
        elif isinstance(axis.get_major_formatter(), ScalarFormatter):
            axis.set_major_formatter(AxisNumbers(None, thousands=thousands))


def _integer_axis(axis: Axis, values: Any) -> None:
    """Ticks at whole numbers only, where every value is whole (years, periods)."""
    v = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce").dropna().to_numpy(dtype=float)
    if len(v) and np.allclose(v, np.round(v)):
        axis.set_major_locator(MaxNLocator(integer=True))


# -- legends -----------------------------------------------------------------------------------------------------------
def place_legend(ax: Axes, **kwargs: Any) -> Legend | None:
    """The legend of ``ax`` outside the axes, to the right of the plotting area, where it covers no data.

    Call it again after adding lines (instead of ``ax.legend()``, whose default placement may
    cover points). ``kwargs`` go to :meth:`matplotlib.axes.Axes.legend`. None when nothing is labelled.

    Examples
    --------
    >>> fig = Figure(layout="constrained"); ax = fig.add_subplot(); _ = ax.plot([0, 1], label="a line")
    >>> place_legend(ax) is ax.get_legend(), legend_overlaps_data(fig)
    (True, False)
    """
    handles, labels = ax.get_legend_handles_labels()
    if not handles:
        return None
    options: dict[str, Any] = {
        "loc": "upper left",
        "bbox_to_anchor": (1.02, 1.0),
        "borderaxespad": 0.0,
        "fontsize": 8,
        "frameon": False,
    }
    options.update(kwargs)
    return ax.legend(handles, labels, **options)


def _renderer(fig: Figure) -> Any:
    """Draw ``fig`` (laying it out) and return its renderer; a figure made without pyplot gets an Agg canvas."""
    if not hasattr(fig.canvas, "get_renderer"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


def _is_data(transform: Any, ax: Axes) -> bool:
    return bool(transform.contains_branch(ax.transData))


def _artist_hits(artist: Any, box: Any, ax: Axes, renderer: Any) -> bool:
    """Whether a data artist of ``ax`` (line, points, bars, error bars, bands) reaches into ``box``."""
    from matplotlib.collections import Collection, PathCollection, PolyCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    if not artist.get_visible():
        return False
    px = renderer.points_to_pixels(1.0)
    if isinstance(artist, Line2D):
        if not _is_data(artist.get_transform(), ax):
            return False  # reference lines across the axes (axhline, axvline) are not data
        xy = artist.get_xydata()
        if not len(xy):
            return False
        pts = artist.get_transform().transform(np.asarray(xy, dtype=float))
        pts = pts[np.isfinite(pts).all(axis=1)]
        marker = artist.get_marker() not in (None, "None", "none", "", " ")
        if marker and len(pts):
            r = artist.get_markersize() * px / 2
            if box.padded(r).count_contains(pts) > 0:
                return True
        if artist.get_linestyle() in ("None", "none", "", " ") or len(pts) < 2:
            return False
        path = artist.get_transform().transform_path(artist.get_path())
        return bool(path.intersects_bbox(box, filled=False))
    if isinstance(artist, PathCollection):  # scatter: markers at offsets
        if not _is_data(artist.get_offset_transform(), ax):
            return False
        offsets = np.asarray(artist.get_offsets(), dtype=float)
        if not len(offsets):
            return False
        pts = artist.get_offset_transform().transform(offsets)
        sizes = artist.get_sizes()
        r = float(np.sqrt(np.max(sizes)) * px / 2) if len(sizes) else 0.0
        return box.padded(r).count_contains(pts[np.isfinite(pts).all(axis=1)]) > 0
    if isinstance(artist, Collection):  # error bars (LineCollection), bands (PolyCollection)
        if not _is_data(artist.get_transform(), ax):
            return False
        filled = isinstance(artist, PolyCollection)
        return any(
            artist.get_transform().transform_path(p).intersects_bbox(box, filled=filled) for p in artist.get_paths()
        )
    if isinstance(artist, Patch):  # bars, histogram bins
        if not _is_data(artist.get_transform(), ax):
            return False
        ext = artist.get_window_extent(renderer)
        if ext.width <= 0.5 or ext.height <= 0.5:  # an empty bar is not drawn
            return False
        return bool(box.overlaps(ext))
    return False


def legend_overlaps_data(fig: Figure) -> bool:
    """True when a legend of ``fig`` (on an axes or the figure) covers plotted data.

    The figure is drawn (so a constrained layout is applied) and each legend's box is compared
    with every data artist of every axes: lines and their markers, scatter points, bars and
    histogram bins, error bars and bands. Reference lines spanning the axes (a zero line, the
    start of treatment) are not data and may pass behind a legend.

    Examples
    --------
    >>> fig = Figure(); ax = fig.add_subplot()
    >>> _ = ax.plot([0, 1], [0, 1], marker="o", label="rising"); _ = ax.legend(loc="center")
    >>> legend_overlaps_data(fig)
    True
    >>> _ = ax.legend(loc="upper left"); legend_overlaps_data(fig)
    False
    """
    renderer = _renderer(fig)
    legends = [lg for lg in [*(a.get_legend() for a in fig.axes), *fig.legends] if lg is not None]
    boxes = [lg.get_window_extent(renderer) for lg in legends if lg.get_visible()]
    if not boxes:
        return False
    for ax in fig.axes:
        artists = [*ax.lines, *ax.collections, *ax.patches]
        for artist in artists:
            if any(_artist_hits(artist, box, ax, renderer) for box in boxes):
                return True
    return False


# -- the counts behind a figure (statistical disclosure control) -------------------------------------------------------
def _root(fig: Any) -> Any:
    root = getattr(fig, "figure", None)
    return fig if root is None else root


def record_counts(fig: Any, what: str, counts: Iterable[Any]) -> None:
    """Record the numbers of people behind the points, bars or bins ``what`` of ``fig``.

    The counts are kept on the figure (attribute ``evaluator_counts``); the report writes them
    beside the picture (``data-counts`` on its ``<figure>``), where
    :func:`evaluator.reporting.disclosure.disclosure_check` flags any below ``min_cell``.
    Recording ``what`` again adds to its list. Missing values are left out.

    Parameters
    ----------
    fig
        The figure (or an axes' subfigure: the counts go to the figure holding it).
    what
        What the counts are of, e.g. ``"points"``, ``"cohorts"``, ``"treated before matching"``.
    counts
        One count per point, bar or bin.

    Examples
    --------
    >>> fig = Figure()
    >>> record_counts(fig, "points", [120, 45.0, None]); record_counts(fig, "points", [7])
    >>> recorded_counts(fig)
    {'points': [120, 45, 7]}
    """
    values = []
    for c in counts:
        if c is None:
            continue
        v = float(c)
        if np.isfinite(v):
            values.append(round(v))
    root = _root(fig)
    store: dict[str, list[int]] = getattr(root, COUNTS_ATTRIBUTE, None) or {}
    store.setdefault(str(what), []).extend(values)
    setattr(root, COUNTS_ATTRIBUTE, store)


def recorded_counts(fig: Any) -> dict[str, list[int]]:
    """The counts recorded on ``fig`` by :func:`record_counts` (a copy; empty when none were).

    Examples
    --------
    >>> recorded_counts(Figure())
    {}
    """
    store = getattr(_root(fig), COUNTS_ATTRIBUTE, None) or {}
    return {k: list(v) for k, v in store.items()}


def _counts_for(
    table: pd.DataFrame, keys: Sequence[Any], counts: Sequence[Any] | Mapping[Any, Any] | None, n_column: str | None
) -> list[Any] | None:
    """Counts aligned with ``table``'s rows: from ``counts`` (by position, or by ``keys`` for a mapping) or a column."""
    if counts is not None:
        if isinstance(counts, Mapping):

            def look(k: Any) -> Any:
                if k in counts:
                    return counts[k]
                if isinstance(k, float) and k.is_integer() and int(k) in counts:
                    return counts[int(k)]
                return None

            return [look(k) for k in keys]
        values = list(counts)
        if len(values) != len(table):
            raise ValueError(f"counts has {len(values)} values for {len(table)} rows of the table")
        return values
    if n_column is not None and n_column in table.columns:
        return list(table[n_column])
    return None


def _p_text(p: Any) -> str:
    """``"p = 0.548"`` or ``"p < 0.001"`` (never ``"p = < 0.001"``), three decimals as in the batch index."""
    shown = p_decimals(float(p), below="< " + localized("0.001"))
    return f"p {shown}" if shown.startswith("<") else f"p = {shown}"


def _effect_on(outcome: str) -> str:
    """The axis label of an effect: ``"Effect on earnings"``, ``"Effect on the outcome"`` when it has no name."""
    if not outcome:
        return _("Effect on the outcome")
    return _("Effect on %(outcome)s") % {"outcome": outcome}


def _ci_label(level: int) -> str:
    """The legend entry of the points with their confidence intervals: ``"estimate, 95% CI"``."""
    # TRANSLATORS: legend of a figure; CI is the confidence interval, %(level)s its level (95).
    return _("estimate, %(level)s%% CI") % {"level": level}


_DOUBLED = re.compile(r"^(?P<kind>[^()]+?) \((?P=kind) \((?P<name>.*)\)\)$")


def _undoubled(title: str) -> str:
    """``"Event study (Event study (two-way fixed effects))"`` -> ``"Event study (two-way fixed effects)"``."""
    lines = title.split("\n")
    return "\n".join(_DOUBLED.sub(r"\g<kind> (\g<name>)", ln) for ln in lines)


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
    outcome_label: str | None = None,
    counts: Sequence[Any] | Mapping[Any, Any] | None = None,
    n_column: str | None = "n_units",
    term_labels: Mapping[str, str] | None = None,
) -> Figure:
    """Coefficient plot of a result's tidy table.

    With an ``event_time`` column this is an event-study plot: estimates by event
    time with confidence-interval bars, the uniform (simultaneous) band as a shaded
    area where the table has ``band_low``/``band_high``, a zero line, a dashed line
    between event times -1 and 0 where treatment starts, and the reference period
    drawn as a hollow marker labelled "reference". The pre-trend test p-value
    (``result.info["pretest"]``) is shown in the title when there is one
    ("p = 0.548", "p < 0.001"). The legend sits outside the axes, beside the data.

    Without ``event_time`` it is a horizontal forest plot, one row per term.

    Parameters
    ----------
    result
        A fitted :class:`~evaluator.results.Result`.
    ax
        Axes to draw into; a new figure is made when ``None``.
    title
        Plot title; defaults to ``result.estimator``. A doubled title such as
        ``"Event study (Event study (two-way fixed effects))"`` is written once.
    reference
        Event time of the reference (normalised) period. Defaults to
        ``result.reference``; rows with a missing standard error are always
        treated as reference rows.
    outcome_label
        What the outcome is, in words, for the axis ("homicides per 100,000, log");
        defaults to ``result.outcome`` (the column name).
    counts
        Numbers of units behind each point, recorded on the figure
        (:func:`record_counts`, ``"points"``) so the report's disclosure check can see
        them: one per row of the table, or a mapping from event time (event study) or
        term (forest plot) to a count.
    n_column
        Column of the table holding those counts, used when ``counts`` is not given
        and the table has it.
    term_labels
        Names to show for terms of a forest plot (``{"treated x post": "effect"}``).

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
    >>> fig = coefficients(result, outcome_label="yearly earnings", counts={-2: 40, -1: 40, 0: 40, 1: 31})
    >>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
    ('Periods since treatment start', 'Effect on yearly earnings')
    >>> recorded_counts(fig)
    {'points': [40, 40, 40, 31]}
    >>> fig.savefig("event_study.png")  # doctest: +SKIP
    """
    table = result.to_frame()
    outcome = outcome_label or result.outcome or ""
    level = round(100 * (1 - result.alpha))
    if title is None:
        title = result.estimator
    title = _undoubled(title)
    ref = reference if reference is not None else result.reference
    pretest = result.pretest
    if pretest and "p_value" in pretest:
        # TRANSLATORS: second line of an event-study figure's title; %(p)s is "p = 0.548" or "p < 0.001".
        title = title + "\n" + _("pre-trend test %(p)s") % {"p": _p_text(pretest["p_value"])}

    if "event_time" in table.columns and table["event_time"].notna().any():
        return _event_plot(
            table, ax, title=title, outcome=outcome, level=level, reference=ref, counts=counts, n_column=n_column
        )
    return _forest_plot(
        table,
        ax,
        title=title,
        outcome=outcome,
        level=level,
        counts=counts,
        n_column=n_column,
        term_labels=term_labels or {},
    )


def _event_plot(
    table: pd.DataFrame,
    ax: Axes | None,
    *,
    title: str,
    outcome: str,
    level: int,
    reference: Any,
    counts: Sequence[Any] | Mapping[Any, Any] | None,
    n_column: str | None,
) -> Figure:
    if counts is not None and not isinstance(counts, Mapping):
        values = list(counts)
        if len(values) != len(table):
            raise ValueError(f"counts has {len(values)} values for {len(table)} rows of the table")
        table = table.assign(_n=values)
        counts, n_column = None, "_n"
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
            # TRANSLATORS: legend of an event-study figure: the simultaneous confidence band of level %(level)s (95).
            label=_("%(level)s%% uniform band") % {"level": level},
            zorder=1,
        )
    ax.axhline(0.0, color="0.3", linewidth=0.8, zorder=2)
    ax.axvline(-0.5, color="0.4", linestyle="--", linewidth=1.0, zorder=2, label=_("treatment starts"))

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
            label=_ci_label(level),
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
                # TRANSLATORS: marks the reference period of an event study (its estimate is zero by definition).
                _("reference"),
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
        ax.set_xticklabels(tick_labels(x, thousands=False))
    else:
        _integer_axis(ax.xaxis, x)
    ax.set_xlabel(_("Periods since treatment start"))
    ax.set_ylabel(_effect_on(outcome))
    ax.set_title(title, fontsize=11)
    place_legend(ax)
    ax.spines[["top", "right"]].set_visible(False)
    human_ticks(ax, thousands_x=False)
    n = _counts_for(table, list(x), counts, n_column)
    if n is not None:
        record_counts(fig, "points", n)
    return fig


def _forest_plot(
    table: pd.DataFrame,
    ax: Axes | None,
    *,
    title: str,
    outcome: str,
    level: int,
    counts: Sequence[Any] | Mapping[Any, Any] | None,
    n_column: str | None,
    term_labels: Mapping[str, str],
) -> Figure:
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
            label=_ci_label(level),
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
    ax.set_yticklabels([term_labels.get(str(t), str(t)) for t in table["term"]])
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel(_effect_on(outcome))
    # TRANSLATORS: axis of a forest plot: the terms (coefficients) of a regression model.
    ax.set_ylabel(_("model term"))
    ax.set_title(title, fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    human_ticks(ax)
    counted = _counts_for(table, [str(t) for t in table["term"]], counts, n_column)
    if counted is not None:
        record_counts(fig, "points", counted)
    return fig


def trends(
    data: pd.DataFrame,
    *,
    outcome: str,
    time: str,
    cohort: str,
    unit: str | None = None,
    ax: Axes | None = None,
    never_label: str | None = None,
    outcome_label: str | None = None,
    time_label: str | None = None,
    units: Mapping[Any, int] | None = None,
) -> Figure:
    """Raw mean outcome by treatment cohort over time.

    One line per cohort (the period a unit is first treated); never-treated units
    (cohort 0 or missing) form their own grey line. A dotted vertical line in each
    cohort's colour marks its first treated period. Looking at this before fitting
    anything shows whether cohorts trended in parallel before treatment. The legend
    sits outside the axes, to the right.

    Parameters
    ----------
    data
        Long panel (or repeated cross-section): one row per unit and period.
    outcome, time, cohort
        Column names. ``cohort`` is the first treated period, 0 or missing for
        never-treated units.
    unit
        Unit identifier column. When given, the legend shows the number of units in
        each cohort, and those numbers are recorded on the figure (:func:`record_counts`,
        ``"cohorts"``: never treated first, then the cohorts in order) for the report's
        disclosure check.
    ax
        Axes to draw into; a new figure is made when ``None``.
    never_label
        Legend label of the never-treated line; ``"never treated"`` in the current language when ``None``.
    outcome_label, time_label
        The outcome and the time axis in words; default to the column names.
    units
        Units per cohort (0 or missing: never treated) counted elsewhere, when ``data``
        holds the mean outcome of each (cohort, period) rather than the panel (a panel read
        out of core); shown and recorded as ``unit`` counts are.

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
    >>> fig = trends(df, outcome="y", time="year", cohort="first", unit="id", outcome_label="earnings")
    >>> len(fig.axes[0].get_lines())  # 3 cohort lines + 2 treatment-start markers
    5
    >>> fig.axes[0].get_ylabel(), recorded_counts(fig)
    ('Mean earnings', {'cohorts': [1, 1, 1]})
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
    elif units is not None:  # never treated under NaN, as the cohort key above
        counts = {(np.nan if pd.isna(k) or k == 0 else k): int(n) for k, n in units.items()}

    cohorts = sorted(c for c in means.index.get_level_values(0).unique() if pd.notna(c))
    has_never = bool(never.any())
    fig, ax = new_axes(ax, (7.0, 4.2))
    cmap = _cohort_colors(len(cohorts))
    shown: list[int] = []

    def n_of(c: Hashable) -> int:
        assert counts is not None
        n = counts.get(c)
        if n is None:  # NaN keys do not compare equal; look them up by position
            n = next((v for k, v in counts.items() if pd.isna(k)), 0) if pd.isna(c) else 0
        return int(n)

    def label(name: str, c: Hashable) -> str:
        if counts is None:
            return name
        n = n_of(c)
        shown.append(n)
        # TRANSLATORS: legend entry of a cohort line with its number of units, e.g. "cohort 2021 (n=1,234)".
        return _("%(name)s (n=%(n)s)") % {"name": name, "n": localized(f"{n:,}")}

    if has_never:
        nv = means.loc[means.index.get_level_values(0).isna()].droplevel(0)
        ax.plot(
            nv.index,
            nv.to_numpy(),
            color="0.45",
            linewidth=2.0,
            marker="o",
            markersize=3,
            label=label(_("never treated") if never_label is None else never_label, np.nan),
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
            # TRANSLATORS: legend entry: the units first treated in period %(cohort)s (e.g. 2021).
            label=label(_("cohort %(cohort)s") % {"cohort": _fmt_cohort(c)}, c),
        )
    for color, c in zip(cmap, cohorts, strict=True):
        ax.axvline(c, color=color, linestyle=":", linewidth=1.3, alpha=0.9)
    shown_outcome = outcome_label or outcome
    ax.set_xlabel(time_label or time)
    ax.set_ylabel(_("Mean %(outcome)s") % {"outcome": shown_outcome})
    ax.set_title(
        _("Mean %(outcome)s by treatment cohort (dotted: first treated period)") % {"outcome": shown_outcome},
        fontsize=11,
    )
    place_legend(ax)
    ax.spines[["top", "right"]].set_visible(False)
    _integer_axis(ax.xaxis, frame["_t"])
    human_ticks(ax, thousands_x=False)
    if counts is not None:
        record_counts(fig, "cohorts", shown)
    return fig


def specification_curve(
    table: pd.DataFrame,
    ax: Axes | None = None,
    *,
    outcome: str = "",
    exclude_kinds: tuple[str, ...] = ("placebo",),
    title: str | None = None,
    counts: Sequence[Any] | None = None,
    n_column: str | None = None,
) -> Figure:
    """Specification curve: estimates and confidence intervals across specifications, sorted by size.

    The legend sits below the axes' title line, outside the plotting area, so it never covers
    an interval.

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
        Shown in the axis label (the outcome in words).
    exclude_kinds
        Kinds left out (placebo estimates answer a different question).
    title
        Plot title; ``"Estimates across specifications"`` in the current language when ``None``.
    counts, n_column
        Numbers of units behind each specification's estimate (one per row of ``table``,
        or the column holding them), recorded on the figure (:func:`record_counts`,
        ``"points"``) for the points drawn.

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
    >>> legend_overlaps_data(fig)
    False
    """
    missing = [c for c in ("specification", "estimate", "ci_low", "ci_high") if c not in table.columns]
    if missing:
        raise KeyError(f"columns not in table: {missing}")
    if counts is not None:
        values = list(counts)
        if len(values) != len(table):
            raise ValueError(f"counts has {len(values)} values for {len(table)} rows of the table")
        table = table.assign(_n=values)
        n_column = "_n"
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
    # TRANSLATORS: legend of a specification curve: every specification but the main one.
    others = _("other specifications")
    # TRANSLATORS: legend of a specification curve: the main specification, the one the report's headline uses.
    main = _("main")
    legend = ((~is_main, "0.45", 5, others), (is_main, _POINT_COLOR, 7, main))
    for mask, color, size, label in legend:
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
    if outcome:
        xlabel = _("Estimated effect on %(outcome)s (with confidence interval)") % {"outcome": outcome}
    else:
        xlabel = _("Estimated effect (with confidence interval)")
    ax.set_xlabel(xlabel)
    # TRANSLATORS: axis of a specification curve: one row per way of estimating the effect.
    ax.set_ylabel(_("specification"))
    ax.set_title(_("Estimates across specifications") if title is None else title, fontsize=11)
    place_legend(ax)
    ax.spines[["top", "right"]].set_visible(False)
    human_ticks(ax)
    if n_column is not None and n_column in t.columns:
        record_counts(fig, "points", list(t[n_column]))
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
