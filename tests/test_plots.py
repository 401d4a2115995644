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
