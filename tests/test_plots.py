"""Tests of evaluator.plots: each function returns a Figure with the expected artists."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.container import ErrorbarContainer
from matplotlib.figure import Figure

from evaluator.plots import figures as plots
from evaluator.results.base import Result, tidy_table


def event_result(*, band: bool = True, pretest: bool = True, reference_in_info: bool = True) -> Result:
    et = np.arange(-3, 4)
    est = np.array([0.05, -0.1, 0.0, 0.6, 0.9, 1.1, 1.3])
    se = np.array([0.1, 0.1, np.nan, 0.1, 0.12, 0.13, 0.15])
    extra: dict[str, object] = {"event_time": et}
    if band:
        extra |= {"band_low": est - 2.7 * se, "band_high": est + 2.7 * se}
    table = tidy_table([f"e={e}" for e in et], est, se, **extra)
    info: dict[str, object] = {}
    if reference_in_info:
        info["reference"] = -1
    if pretest:
        info["pretest"] = {"statistic": 1.2, "df": 2, "p_value": 0.548}
    return Result("Event study", table, nobs=700, headline="e=0", outcome="earnings", info=info)


def forest_result() -> Result:
    table = tidy_table(["treated x post", "age", "female"], [0.5, -0.02, 0.3], [0.1, 0.01, 0.2])
    return Result("TWFE", table, nobs=300, outcome="employment")


@pytest.fixture
def panel() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    units = np.arange(40)
    cohort = np.select([units < 10, units < 20, units < 30], [3, 5, 0], default=np.nan)  # NaN and 0 = never
    df = pd.DataFrame({"id": np.repeat(units, 6), "t": np.tile(np.arange(1, 7), 40), "g": np.repeat(cohort, 6)})
    df["y"] = df["t"] * 0.2 + ((df["g"] > 0) & (df["t"] >= df["g"])) * 1.0 + rng.normal(0, 0.1, len(df))
    return df


def _errorbars(ax) -> list[ErrorbarContainer]:
    return [c for c in ax.containers if isinstance(c, ErrorbarContainer)]


class TestCoefficientsEventStudy:
    def test_returns_figure_with_labels(self) -> None:
        fig = plots.coefficients(event_result())
        assert isinstance(fig, Figure)
        (ax,) = fig.axes
        assert ax.get_xlabel() == "Periods since treatment start"
        assert ax.get_ylabel() == "Effect on earnings"
        assert "Event study" in ax.get_title()
        assert "p = 0.548" in ax.get_title()

    def test_points_band_and_reference(self) -> None:
        fig = plots.coefficients(event_result())
        ax = fig.axes[0]
        (eb,) = _errorbars(ax)
        # six estimated periods carry error bars; the reference has no SE
        assert len(eb.lines[0].get_xdata()) == 6
        assert -1 not in list(eb.lines[0].get_xdata())
        bands = [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert len(bands) == 1
        hollow = [ln for ln in ax.get_lines() if ln.get_markerfacecolor() == "white"]
        assert len(hollow) == 1 and list(hollow[0].get_xdata()) == [-1]
        assert "reference" in [t.get_text() for t in ax.texts]

    def test_zero_and_treatment_start_lines(self) -> None:
        ax = plots.coefficients(event_result()).axes[0]
        horizontal = [ln for ln in ax.get_lines() if list(ln.get_ydata()) == [0, 0]]
        vertical = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [-0.5, -0.5]]
        assert len(horizontal) == 1
        assert len(vertical) == 1 and vertical[0].get_linestyle() == "--"

    def test_without_band_or_pretest(self) -> None:
        ax = plots.coefficients(event_result(band=False, pretest=False)).axes[0]
        assert not [c for c in ax.collections if isinstance(c, PolyCollection)]
        assert "pre-trend" not in ax.get_title()

    def test_reference_from_argument_and_nan_se(self) -> None:
        # reference found from the NaN SE even when info does not name it
        ax = plots.coefficients(event_result(reference_in_info=False)).axes[0]
        assert "reference" in [t.get_text() for t in ax.texts]
        # an explicit reference marks that period too
        ax = plots.coefficients(event_result(reference_in_info=False), reference=-2).axes[0]
        assert sum(t.get_text() == "reference" for t in ax.texts) == 2

    def test_reference_with_missing_estimate_drawn_at_zero(self) -> None:
        table = tidy_table(["e=-2", "e=-1", "e=0"], [0.1, np.nan, 0.8], [0.1, np.nan, 0.1], event_time=[-2, -1, 0])
        ax = plots.coefficients(Result("ES", table, nobs=10, headline="e=0"), reference=-1).axes[0]
        hollow = [ln for ln in ax.get_lines() if ln.get_markerfacecolor() == "white"]
        assert [list(h.get_xydata()[0]) for h in hollow] == [[-1.0, 0.0]]

    def test_title_and_existing_axes(self) -> None:
        fig = Figure()
        ax = fig.add_subplot()
        out = plots.coefficients(event_result(), ax=ax, title="My title")
        assert out is fig
        assert ax.get_title().startswith("My title")

    def test_result_plot_method(self) -> None:
        assert isinstance(event_result().plot(), Figure)


class TestCoefficientsForest:
    def test_forest(self) -> None:
        fig = plots.coefficients(forest_result())
        ax = fig.axes[0]
        assert ax.get_xlabel() == "Effect on employment"
        labels = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True)}
        # one row per term, first term on top
        assert labels["treated x post"] > labels["age"] > labels["female"]
        (eb,) = _errorbars(ax)
        assert len(eb.lines[0].get_xdata()) == 3
        assert ax.get_title() == "TWFE"


class TestTrends:
    def test_lines_and_markers(self, panel: pd.DataFrame) -> None:
        fig = plots.trends(panel, outcome="y", time="t", cohort="g", unit="id")
        assert isinstance(fig, Figure)
        ax = fig.axes[0]
        lines = ax.get_lines()
        data_lines = [ln for ln in lines if len(ln.get_xdata()) == 6]
        markers = [ln for ln in lines if ln.get_linestyle() == ":"]
        assert len(data_lines) == 3  # never treated (0 and NaN together), cohorts 3 and 5
        assert [list(m.get_xdata()) for m in markers] == [[3, 3], [5, 5]]
        # each marker is in its cohort line's colour
        by_label = {ln.get_label(): ln.get_color() for ln in data_lines}
        assert markers[0].get_color() == by_label["cohort 3 (n=10)"]
        assert markers[1].get_color() == by_label["cohort 5 (n=10)"]
        assert "never treated (n=20)" in by_label
        assert ax.get_xlabel() == "t"
        assert ax.get_ylabel() == "Mean y"

    def test_means_are_raw_means(self, panel: pd.DataFrame) -> None:
        ax = plots.trends(panel, outcome="y", time="t", cohort="g").axes[0]
        line = next(ln for ln in ax.get_lines() if ln.get_label() == "cohort 3")
        expected = panel.loc[panel["g"] == 3].groupby("t")["y"].mean()
        np.testing.assert_allclose(line.get_ydata(), expected.to_numpy())

    def test_never_label_and_missing_column(self, panel: pd.DataFrame) -> None:
        ax = plots.trends(panel, outcome="y", time="t", cohort="g", never_label="comparison").axes[0]
        assert "comparison" in [ln.get_label() for ln in ax.get_lines()]
        with pytest.raises(KeyError, match="nope"):
            plots.trends(panel, outcome="nope", time="t", cohort="g")


@pytest.mark.parametrize(
    "make",
    [
        lambda df: plots.coefficients(event_result()),
        lambda df: plots.coefficients(forest_result()),
        lambda df: plots.trends(df, outcome="y", time="t", cohort="g", unit="id"),
    ],
    ids=["event", "forest", "trends"],
)
def test_saves_png(make, panel: pd.DataFrame, tmp_path) -> None:
    path = tmp_path / "plot.png"
    make(panel).savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- specification_curve -------------------------------------------------------------------------------------------
def robustness_table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "specification": ["main", "other control", "no estimate", "placebo", "twfe"],
            "estimate": [-0.45, -0.40, np.nan, 0.1, -0.5],
            "ci_low": [-0.7, -0.6, np.nan, -0.2, -0.6],
            "ci_high": [-0.2, -0.2, np.nan, 0.4, -0.4],
            "kind": ["main", "comparison", "estimator", "placebo", "estimator"],
        }
    )


def test_specification_curve_sorts_and_leaves_out_placebo_and_missing():
    fig = plots.specification_curve(robustness_table(), outcome="sick days")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["twfe", "main", "other control"]
    bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    assert len(bars) == 2  # other specifications, and the main one drawn apart
    assert "sick days" in ax.get_xlabel()


def test_specification_curve_keeps_placebo_when_asked_and_refuses_bad_tables():
    fig = plots.specification_curve(robustness_table(), exclude_kinds=())
    assert len(fig.axes[0].get_yticklabels()) == 4
    with pytest.raises(KeyError, match="ci_low"):
        plots.specification_curve(robustness_table().drop(columns="ci_low"))
    with pytest.raises(ValueError, match="no specification"):
        plots.specification_curve(robustness_table().iloc[[2, 3]])


# -- figures show themselves in a kernel, without %matplotlib inline ------------------------------------------------
def test_a_plot_as_the_last_expression_shows_a_png_in_a_papermill_kernel(tmp_path):
    import nbformat
    import papermill

    cells = [
        "import evaluator\n"
        "sim = evaluator.simulate.sick_leave_sib(seed=1, n_municipalities=6, employees_per_municipality=10)\n"
        "r = evaluator.event_study(sim.data, outcome='sick_days', unit='employee', time='month',\n"
        "                          cohort='first_treated', cluster='municipality')",
        "r.plot()",
        "people = evaluator.simulate.employment_sib(seed=1, n_treated=50, n_pool=500).data\n"
        "m = evaluator.match(people, treat='treated', covariates=['age'])\n"
        "m.plot_balance()",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src, out = tmp_path / "plot.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    papermill.execute_notebook(str(src), str(out), kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    done = nbformat.read(out, as_version=4)
    for cell in done.cells[1:]:
        kinds = {k for o in cell.outputs for k in o.get("data", {})}
        assert "image/png" in kinds, (cell.source, [o.get("data", {}).get("text/plain") for o in cell.outputs])


# -- numbers and labels for people, legends that cover no data, the counts behind a figure -------------------------
def _tornado_table() -> pd.DataFrame:
    t = pd.DataFrame(
        {
            "parameter": ["effect", "horizon_years", "discount_rate", "decay"],
            "low": [-0.7, 2.0, 0.03, 0.0],
            "high": [-0.3, 8.0, 0.05, 0.5],
            "result_low": [1.1e6, 1.3e6, 2.6e6, 1.9e6],
            "result_high": [4.2e6, 3.9e6, 2.2e6, 2.5e6],
        }
    )
    t.attrs["base"] = 2.4e6
    return t


def _cash_table() -> pd.DataFrame:
    years = list(range(6))
    return pd.DataFrame(
        {
            "year": years * 3,
            "payer": ["kommune"] * 6 + ["state"] * 6 + ["total"] * 6,
            "cumulative": [*np.linspace(-2e6, 3e6, 6), *np.linspace(-1e6, 1e6, 6), *np.linspace(-3e6, 4e6, 6)],
        }
    )


def _balance_table() -> pd.DataFrame:
    terms = ["distance", "age", "female", "prior earnings"]
    before, after = [0.9, -0.4, 0.25, 0.6], [0.04, 0.02, -0.05, 0.08]
    return pd.DataFrame(
        {
            "term": np.repeat(terms, 2),
            "sample": ["before", "after"] * len(terms),
            "smd": [v for pair in zip(before, after, strict=True) for v in pair],
        }
    )


def _overlap_inputs(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    score = rng.beta(2, 5, size=n)
    focal = rng.uniform(size=n) < score
    weights = np.where(focal, 1.0, rng.uniform(size=n) < 0.3).astype(float)
    return score, focal, weights


def _make(name: str, panel: pd.DataFrame) -> Figure:
    from evaluator.plots import economics, matching

    if name == "event":
        return plots.coefficients(event_result())
    if name == "forest":
        return plots.coefficients(forest_result())
    if name == "trends":
        big = panel.assign(y=panel["y"] * 1e6 + 3e7)  # large raw means: no offset, no 1e7
        return plots.trends(big, outcome="y", time="t", cohort="g", unit="id")
    if name == "specification_curve":
        return plots.specification_curve(robustness_table(), outcome="sick days")
    if name == "payments":
        frame = pd.DataFrame(
            {
                "basis": ["counterfactual (estimate)", "counterfactual (ci low)", "counterfactual (ci high)"],
                "payment": [1.5e6, 2.5e5, 3.1e6],
            }
        )
        return economics.payments(frame, currency="EUR", title="Contract")
    if name == "cash_flow":
        return economics.cumulative_cash_flow(_cash_table(), break_even_year=2, currency="DKK")
    if name == "tornado":
        return economics.tornado(_tornado_table(), label="present value of payments (EUR)", currency="EUR")
    if name == "balance":
        return matching.balance_plot(_balance_table())
    if name == "overlap":
        return matching.overlap_plot(*_overlap_inputs())
    raise AssertionError(name)


FIGURES = [
    "event",
    "forest",
    "trends",
    "specification_curve",
    "payments",
    "cash_flow",
    "tornado",
    "balance",
    "overlap",
]


def _draw(fig: Figure):
    """Draw ``fig`` for real (a figure made without pyplot gets an Agg canvas) and return its renderer."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig.canvas.get_renderer()


@pytest.mark.parametrize("name", FIGURES)
def test_no_legend_covers_the_data(name, panel) -> None:
    fig = _make(name, panel)
    assert not plots.legend_overlaps_data(fig)


@pytest.mark.parametrize("name", FIGURES)
def test_no_axis_shows_an_offset_or_scientific_notation(name, panel) -> None:
    fig = _make(name, panel)
    _draw(fig)
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            assert axis.get_offset_text().get_text() == "", (name, axis.get_offset_text().get_text())
            labels = [t.get_text() for t in axis.get_ticklabels()]
            assert not [t for t in labels if "e+" in t or "e-" in t or "1e" in t or "×10" in t], (name, labels)


@pytest.mark.parametrize("name", FIGURES)
def test_every_numeric_axis_has_a_human_label(name, panel) -> None:
    fig = _make(name, panel)
    for ax in fig.axes:
        assert ax.get_xlabel(), (name, "x")
        if ax is fig.axes[0]:
            assert ax.get_ylabel(), (name, "y")


@pytest.mark.parametrize("name", ["payments", "tornado"])
def test_money_tick_labels_have_room_and_the_currency(name, panel) -> None:
    fig = _make(name, panel)
    renderer = _draw(fig)
    ax = fig.axes[0]
    ticks = [t for t in ax.xaxis.get_ticklabels() if t.get_visible() and t.get_text()]
    assert len(ticks) >= 2
    assert all(t.get_text().startswith("EUR ") for t in ticks)
    boxes = sorted((t.get_window_extent(renderer) for t in ticks), key=lambda b: b.x0)
    assert all(a.x1 <= b.x0 for a, b in zip(boxes, boxes[1:], strict=False)), [t.get_text() for t in ticks]


def test_legend_overlaps_data_sees_a_legend_over_points_lines_bars_and_bands() -> None:
    x = np.linspace(0, 1, 41)
    draws = [
        lambda ax: ax.plot(x, np.full_like(x, 0.5), label="flat line"),
        lambda ax: ax.plot(x, np.full_like(x, 0.5), "o", label="points"),
        lambda ax: ax.scatter(x, np.full_like(x, 0.5), label="scatter"),
        lambda ax: ax.bar(x, np.ones_like(x), width=0.02, label="bars"),
        lambda ax: ax.errorbar(x, np.full_like(x, 0.5), yerr=0.4, fmt="none", label="error bars"),
        lambda ax: ax.fill_between(x, 0.2, 0.8, label="band"),
    ]
    for draw in draws:
        fig = Figure()
        ax = fig.add_subplot()
        draw(ax)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.legend(loc="center")
        assert plots.legend_overlaps_data(fig)
        plots.place_legend(ax)
        assert not plots.legend_overlaps_data(fig)
    fig = Figure()
    ax = fig.add_subplot()
    ax.axhline(0.5, label="reference line")
    ax.legend(loc="center")
    assert not plots.legend_overlaps_data(fig)  # a line across the axes is not data
    assert not plots.legend_overlaps_data(Figure())


def test_titles_read_p_less_than_and_are_never_doubled() -> None:
    r = event_result()
    r.info["pretest"] = {"statistic": 40.0, "df": 2, "p_value": 1e-6}
    title = plots.coefficients(r).axes[0].get_title()
    assert "p < 0.001" in title and "= <" not in title
    doubled = plots.coefficients(event_result(), title="Event study (Event study (two-way fixed effects))")
    assert doubled.axes[0].get_title().split("\n")[0] == "Event study (two-way fixed effects)"


def test_outcome_and_time_labels_in_words(panel) -> None:
    ax = plots.coefficients(event_result(), outcome_label="yearly earnings (EUR)").axes[0]
    assert ax.get_ylabel() == "Effect on yearly earnings (EUR)"
    ax = plots.coefficients(forest_result(), outcome_label="employment rate").axes[0]
    assert ax.get_xlabel() == "Effect on employment rate"
    ax = plots.trends(panel, outcome="y", time="t", cohort="g", outcome_label="sick days", time_label="month").axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("month", "Mean sick days")
    assert "sick days" in ax.get_title()


def test_forest_term_labels() -> None:
    ax = plots.coefficients(forest_result(), term_labels={"treated x post": "effect of the programme"}).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()][0] == "effect of the programme"


def test_counts_are_recorded_from_arguments_and_columns(panel) -> None:
    assert plots.recorded_counts(plots.coefficients(event_result())) == {}
    by_time = {e: 40 + e for e in range(-3, 4)}
    fig = plots.coefficients(event_result(), counts=by_time)
    assert plots.recorded_counts(fig) == {"points": [37, 38, 39, 40, 41, 42, 43]}
    fig = plots.coefficients(event_result(), counts=[10, 11, 12, 13, 14, 15, 16])  # one per row
    assert plots.recorded_counts(fig) == {"points": [10, 11, 12, 13, 14, 15, 16]}
    with pytest.raises(ValueError, match="counts has 2 values"):
        plots.coefficients(event_result(), counts=[1, 2])
    r = forest_result()
    r.table["n_units"] = [300, 300, 120]
    assert plots.recorded_counts(plots.coefficients(r)) == {"points": [300, 300, 120]}
    assert plots.recorded_counts(plots.coefficients(r, counts={"age": 280})) == {"points": [280]}
    fig = plots.trends(panel, outcome="y", time="t", cohort="g", unit="id")
    assert plots.recorded_counts(fig) == {"cohorts": [20, 10, 10]}  # never treated, cohort 3, cohort 5
    tab = robustness_table().assign(n=[500, 480, 0, 500, 3])
    fig = plots.specification_curve(tab, n_column="n")
    assert plots.recorded_counts(fig) == {"points": [3, 500, 480]}  # in the order drawn: twfe, main, other
    fig = Figure()
    plots.record_counts(fig, "bars", np.array([4, 9]))
    assert fig.evaluator_counts == {"bars": [4, 9]}


def test_balance_plot_says_matching_score_and_records_group_sizes() -> None:
    from evaluator.plots.matching import balance_plot

    fig = balance_plot(_balance_table(), counts={"programme": 80, "comparison": 800})
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert "matching score" in labels and "distance" not in labels
    assert plots.recorded_counts(fig) == {"groups": [80, 800]}
    fig = balance_plot(_balance_table(), labels={"prior earnings": "earnings the year before"})
    assert "earnings the year before" in [t.get_text() for t in fig.axes[0].get_yticklabels()]


def test_overlap_histograms_merge_small_bins_and_record_people_per_bin() -> None:
    from evaluator.plots.matching import merge_small_bins, overlap_plot

    score, focal, weights = _overlap_inputs(n=300, seed=4)
    fig = overlap_plot(score, focal, weights, bins=60)
    counts = plots.recorded_counts(fig)
    assert set(counts) == {f"{g} {s} matching" for g in ("treated", "control") for s in ("before", "after")}
    lengths = {len(v) for v in counts.values()}
    assert len(lengths) == 1 and lengths.pop() < 60  # bins were merged, the same edges for all groups
    assert all(n == 0 or n >= 5 for v in counts.values() for n in v)
    assert sum(counts["treated before matching"]) == int(focal.sum())
    # the bars drawn rest on those bins
    ax = fig.axes[0]
    assert len(ax.patches) == 2 * len(counts["treated before matching"])
    # min_cell=0 merges nothing
    fig = overlap_plot(score, focal, weights, bins=60, min_cell=0)
    assert len(plots.recorded_counts(fig)["treated before matching"]) == 60
    # a remainder on the right joins the bins before it until every group is empty or large enough
    edges = merge_small_bins([0, 1, 2, 3, 4, 5], [[9, 9, 0, 1, 2], [9, 9, 9, 0, 0]], min_cell=5)
    assert edges.tolist() == [0, 1, 5]
