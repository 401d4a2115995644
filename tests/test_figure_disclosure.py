"""Disclosure control reaches figures, sentences and sidecars (issue 12, "A report a funder can act on").

A figure records the numbers of people behind its points, bars and bins; the report writes
them on the ``<figure>`` (``data-counts``) and :func:`disclosure_check` flags any below
``min_cell``, as it flags sentences naming a group that rests on one or a few units and
small counts in ``results.json`` / ``index.json``. The panel fixture is shaped like the
castle-doctrine data: 50 states, cohorts of one state.
"""

from __future__ import annotations

import json
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from evaluator.cli import main
from evaluator.data.simulate import castle_like
from evaluator.plots import economics, figures, matching
from evaluator.reporting.disclosure import disclosure_check, json_findings
from evaluator.reporting.html import figure_html


@pytest.fixture(scope="module")
def castle() -> pd.DataFrame:
    return castle_like(seed=1).data


# -- figures -------------------------------------------------------------------------------------------------------
def test_a_figure_with_a_recorded_count_of_one_is_flagged():
    fig = Figure(figsize=(3, 2))
    fig.add_subplot().bar([0, 1], [3.0, 4.0])
    figures.record_counts(fig, "bars", [120, 1])
    page = figure_html(fig, "Two bars", css_class="demo")
    assert "data-counts=" in page
    report = disclosure_check(f"<html><body>{page}</body></html>")
    assert not report.ok
    (finding,) = report.findings
    assert finding.reason == "count below 5 behind a figure"
    assert "bars: 1 (item 2 of 2)" in finding.text and "demo" in finding.where


def test_a_figure_with_large_counts_or_none_recorded_passes():
    fig = Figure(figsize=(3, 2))
    fig.add_subplot().plot([0, 1])
    assert "data-counts" not in figure_html(fig, "no counts")
    fig = Figure(figsize=(3, 2))
    figures.record_counts(fig, "points", [0, 5, 400])
    page = figure_html(fig, "large counts")
    assert json.loads(page.split("data-counts='")[1].split("'")[0].replace("&quot;", '"')) == {"points": [0, 5, 400]}
    assert disclosure_check(page).ok


def test_raw_trends_of_single_state_cohorts_are_flagged_and_pass_once_they_are_left_out(castle):
    fig = figures.trends(castle, outcome="l_homicide", time="year", cohort="effyear", unit="state")
    assert figures.recorded_counts(fig) == {"cohorts": [29, 1, 13, 4, 2, 1]}
    report = disclosure_check(figure_html(fig, "Raw trends", css_class="raw-trends"))
    assert not report.ok and "cohorts: 1 (item 2 of 6), 4 (item 4 of 6), 2 (item 5 of 6)" in report.findings[0].text
    sizes = castle.groupby("effyear")["state"].nunique()
    kept = castle.loc[castle["effyear"].isin(sizes.index[(sizes >= 5) | (sizes.index == 0)])]
    fig = figures.trends(kept, outcome="l_homicide", time="year", cohort="effyear", unit="state")
    assert disclosure_check(figure_html(fig, "Raw trends")).ok


def test_histograms_merge_small_bins():
    rng = np.random.default_rng(7)
    score = np.concatenate([rng.uniform(0.05, 0.95, 400), [0.99, 0.995, 0.01]])  # three people alone in the tails
    focal = np.concatenate([rng.uniform(size=400) < score[:400], [True, True, False]])
    weights = np.ones(len(score))
    fig = matching.overlap_plot(score, focal, weights, bins=40)
    counts = figures.recorded_counts(fig)
    assert counts and all(n == 0 or n >= 5 for per_bin in counts.values() for n in per_bin)
    assert disclosure_check(figure_html(fig, "Overlap")).ok
    unmerged = matching.overlap_plot(score, focal, weights, bins=40, min_cell=0)
    assert any(0 < n < 5 for per_bin in figures.recorded_counts(unmerged).values() for n in per_bin)
    assert not disclosure_check(figure_html(unmerged, "Overlap")).ok


# -- money and tornado ---------------------------------------------------------------------------------------------
def _drawn(fig: Figure) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    fig.canvas.draw()
    return fig


@pytest.mark.parametrize("scale", [1.0, 1e3, 1e6, 1e9])
def test_money_axis_tick_labels_have_no_scientific_notation_and_no_offset(scale):
    frame = pd.DataFrame({"basis": ["counterfactual (estimate)", "low", "high"], "payment": [1.5, 0.2, 3.1]})
    frame["payment"] *= scale
    table = pd.DataFrame({"year": [0, 1, 2, 3], "payer": "total", "cumulative": np.array([-2, -0.5, 1.5, 3.2]) * scale})
    for fig, axis in (
        (economics.payments(frame, currency="EUR"), "x"),
        (economics.cumulative_cash_flow(table, currency="DKK"), "y"),
    ):
        ax = _drawn(fig).axes[0]
        money = ax.xaxis if axis == "x" else ax.yaxis
        labels = [t.get_text() for t in money.get_ticklabels() if t.get_text()]
        assert labels and not [t for t in labels if "e+" in t or "e-" in t or "1e" in t], labels
        assert money.get_offset_text().get_text() == ""
        assert all(t.split()[0] in ("EUR", "DKK") for t in labels), labels
        if scale >= 1e6:
            assert any("million" in t or "billion" in t for t in labels), labels


def test_tornado_labels_are_human():
    table = pd.DataFrame(
        {
            "parameter": ["horizon_years", "discount_rate", "effect", "decay", "unit_cost"],
            "low": [2.0, 0.03, -0.7, 0.0, 250_000.0],
            "high": [8.0, 0.05, -0.3, 0.5, 1_500_000.0],
            "result_low": [1e6, 2.1e6, 0.5e6, 1.9e6, 1.5e6],
            "result_high": [4e6, 2.6e6, 3.9e6, 2.5e6, 2.9e6],
        }
    )
    fig = economics.tornado(table, label="present value (EUR)", currency="EUR")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels == [
        "time horizon (2 / 8 years)",
        "discount rate (3% / 5%)",
        "effect size (-0.7 / -0.3)",
        "yearly decay of the effect (0% / 50%)",
        "unit cost (EUR 250,000 / EUR 1.5 million)",
    ]
    assert not [t for t in labels if "_" in t or "0000" in t]
    renamed = economics.tornado(table.iloc[:1], labels={"horizon_years": "years of payments"})
    assert renamed.axes[0].get_yticklabels()[0].get_text() == "years of payments (2 / 8 years)"
    assert not figures.legend_overlaps_data(fig)


def test_the_sensitivity_tables_of_the_contracts_get_human_labels():
    from evaluator.contracts import Contract, settlement_sensitivity
    from evaluator.contracts.economics import plot_tornado

    c = Contract.from_dict(
        {
            "name": "x",
            "outcome": {"metric": "y", "unit": "u", "direction": "increase"},
            "payment": {"family": "savings_share", "share": 0.5, "unit_value": 100},
            "horizon_years": 5,
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = settlement_sensitivity(c, 2.0, se=0.5)
    labels = [t.get_text() for t in plot_tornado(table).axes[0].get_yticklabels()]
    names = {label.split(" (")[0] for label in labels}
    assert names == {"effect size", "discount rate", "time horizon", "yearly decay of the effect"}
    assert "time horizon (2.5 / 10 years)" in labels
    assert not [t for t in labels if "_" in t or "0000" in t]


# -- sentences -----------------------------------------------------------------------------------------------------
def test_a_castle_like_sentence_is_flagged(castle):
    import evaluator

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        evaluator.staggered_did(castle, outcome="l_homicide", unit="state", time="year", cohort="effyear")
    sentence = next(str(w.message) for w in caught if "single unit" in str(w.message))
    assert sentence.startswith("cohorts [2005, 2009] have a single unit")
    report = disclosure_check(f"<p>Note: {sentence}</p>")
    assert not report.ok
    assert report.findings[0].reason == "a group resting on fewer than 5 units in the text"


@pytest.mark.parametrize(
    "sentence",
    [
        "Cohorts [2006, 2010] have a single unit.",
        "Cohort 2005 has 3 units.",
        "The estimate for 2009 rests on one state.",
        "The comparison rests on two municipalities.",
        "It is identified from a single cluster.",
        "a single person",
        "The cohort of 2008 has two states.",
        "Single-unit cohorts [2005, 2009]: their standard errors understate uncertainty.",
        "one-state cells drive the pre-trend test",
        "Cohort 2007 consists of four employees.",
    ],
)
def test_sentences_naming_a_group_of_one_or_a_few_units_are_flagged(sentence):
    assert not disclosure_check(f"<p>{sentence}</p>").ok


@pytest.mark.parametrize(
    "sentence",
    [
        "1,204 units, 48 periods, 3 cohorts and 2 municipalities.",
        "Cohort 2006 has 13 states.",
        "How a single unit cost divides between payers.",
        "A one-unit increase in age.",
        "The table has one row per person.",
        "Only 10 clusters: inference is fragile.",
        "Two-way fixed effects with one-at-a-time sensitivity.",
    ],
)
def test_sentences_about_large_groups_or_no_group_pass(sentence):
    assert disclosure_check(f"<p>{sentence}</p>").ok


# -- sidecars ------------------------------------------------------------------------------------------------------
def test_a_results_json_with_a_single_unit_cohort_is_flagged(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"cohorts": [{"cohort": 2005, "units": 1}]}))
    report = disclosure_check(path)
    assert not report.ok
    (finding,) = report.findings
    assert finding.text == "$.cohorts[0].units = 1" and finding.where == "results.json"
    assert finding.reason == "count below 5 in a sidecar"


def test_json_findings_read_count_like_keys_only():
    data = {
        "n_units": 50,
        "n_treated": 3,
        "nobs": 550,
        "extra": {
            "parameters": {"n_boot": 99, "min_cell": 5, "n_periods": 3},
            "match": {"treated_matched": 4, "control_reuse_max": 3, "mean_controls_per_set": 1.0},
            "sizes": [40, 2],
            "flags": {"n": True},
        },
        "index": [{"name": "a", "n_units": 2}],
    }
    found = sorted(f.text for f in json_findings(data))
    assert found == [
        "$.extra.match.treated_matched = 4",
        "$.extra.sizes[1] = 2",
        "$.index[0].n_units = 2",
        "$.n_treated = 3",
    ]
    assert json_findings(data, min_cell=0) == []
    assert json_findings({"weird key": {"n": 1}})[0].text == '$["weird key"].n = 1'


def test_a_report_folder_is_checked_as_a_whole_and_by_the_cli(tmp_path, capsys):
    folder = tmp_path / "reports"
    run = folder / "castle"
    run.mkdir(parents=True)
    fig = Figure(figsize=(2, 2))
    figures.record_counts(fig, "points", [30, 2])
    (run / "report.html").write_text(
        f"<html><body><p>Cohort 2005 has 3 units.</p>{figure_html(fig, 'x')}</body></html>"
    )
    (run / "results.json").write_text(json.dumps({"n_units": 50, "cohorts": [{"cohort": 2005, "units": 1}]}))
    (folder / "index.json").write_text(json.dumps({"rows": [{"name": "castle", "n_units": 50}]}))
    (run / ".castle.partial-1").mkdir()
    (run / ".castle.partial-1" / "results.json").write_text(json.dumps({"n": 1}))  # hidden: not read
    report = disclosure_check(folder)
    where = sorted({f.where.split(":")[0].split(",")[0] for f in report.findings})
    assert where == ["castle/report.html", "castle/results.json"]
    reasons = sorted(f.reason for f in report.findings)
    assert reasons == ["count below 5 behind a figure", "count below 5 in a sidecar", "count below 5 in the text"]
    assert "3 possible disclosure(s)" in str(report)
    assert main(["disclosure-check", str(folder)]) == 1
    assert "$.cohorts[0].units = 1" in capsys.readouterr().out
    assert main(["disclosure-check", str(run / "results.json"), "--min-cell", "1"]) == 0
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "results.json").write_text(json.dumps({"n_units": 50}))
    (clean / "report.html").write_text("<p>50 units</p>")
    assert disclosure_check(clean).ok
    assert main(["disclosure-check", str(clean)]) == 0
