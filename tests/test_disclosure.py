"""Statistical disclosure control: suppression before display and the check after rendering."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from evaluator.cli import main
from evaluator.reporting.disclosure import disclosure_check, small_groups, suppress_counts


def test_suppression_hides_small_counts_and_their_statistics():
    t = pd.DataFrame({"cohort": [13, 25, 37], "units": [120, 3, 0], "treated": [60, 2, 0], "mean": [1.25, 0.9, 0.1]})
    s = suppress_counts(t, counts=["units", "treated"], statistics=["mean"], min_cell=5)
    assert s.frame["units"].tolist() == [120, "<5", 0]
    assert s.frame["treated"].tolist() == [60, "<5", 0]
    assert s.frame["mean"].tolist() == [1.25, ".", 0.1]
    assert s.n_suppressed == 1 and "fewer than 5" in s.footnote
    assert suppress_counts(t, counts=["units"], min_cell=0).frame.equals(t)
    with pytest.raises(KeyError, match="no column"):
        suppress_counts(t, counts=["people"])


def test_small_groups():
    assert small_groups(pd.Series({"a": 10, "b": 4, "c": 0})) == ["b"]
    assert small_groups({"a": 1}, min_cell=0) == []


@pytest.mark.parametrize(
    "page",
    [
        "<table><tr><th>municipality</th><th>n</th></tr><tr><td>Aa</td><td>2</td></tr></table>",
        "<table><thead><tr><th>cohort</th><th>Treated</th></tr></thead><tr><td>25</td><td>4</td></tr></table>",
        "<p>Only 3 participants remained after matching.</p>",
        "<pre>cohort 37: N=2</pre>",
        "<table><tr><th>person_id</th><th>age</th></tr><tr><td>17</td><td>44</td></tr>"
        "<tr><td>18</td><td>51</td></tr></table>",
    ],
)
def test_the_check_finds_small_counts_and_microdata(page):
    rep = disclosure_check(page)
    assert not rep.ok and rep.findings
    assert "possible disclosure" in str(rep)


@pytest.mark.parametrize(
    "page",
    [
        "<table><tr><th>cohort</th><th>units</th></tr><tr><td>25</td><td>&lt;5</td></tr></table>",
        "<p>1,204 units, 48 periods, 3 cohorts and 2 municipalities.</p>",
        "<table><tr><th>term</th><th>estimate</th></tr><tr><td>att</td><td>3</td></tr></table>",
        "<p>n = 0 dropped</p>",
    ],
)
def test_the_check_passes_what_is_safe(page):
    assert disclosure_check(page).ok


def test_the_check_reads_executed_notebooks_and_the_cli_exit_status(tmp_path, capsys):
    nb = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Report"], "metadata": {}},
            {
                "cell_type": "code",
                "source": [],
                "metadata": {},
                "outputs": [{"output_type": "stream", "name": "stdout", "text": ["treated units: n = 2\n"]}],
            },
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    bad = tmp_path / "r.ipynb"
    bad.write_text(json.dumps(nb))
    good = tmp_path / "ok.html"
    good.write_text("<p>120 units</p>")
    assert main(["disclosure-check", str(good)]) == 0
    assert main(["disclosure-check", str(bad), str(good)]) == 1
    assert "count below 5" in capsys.readouterr().out
    assert main(["disclosure-check", str(bad), "--min-cell", "2"]) == 0
    assert main(["disclosure-check", str(tmp_path / "missing.html")]) == 2


def test_love_plot_leaves_out_excluded_levels():
    import evaluator

    sim = evaluator.simulate.employment_sib(n_treated=80, n_pool=800, seed=3)
    cols = sim.columns
    m = evaluator.match(sim.data, treat=cols["treat"], covariates=cols["covariates"], seed=1)
    terms = list(dict.fromkeys(m.balance()["term"]))
    hidden = [t for t in terms if "[" in t][:1]
    assert hidden, terms
    fig = m.plot_balance(exclude=hidden)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert hidden[0] not in labels and len(labels) == len(terms) - 1


def test_one_report_lists_every_problem_of_tables_text_and_figures():
    page = (
        "<table><tr><th>cohort</th><th>units</th></tr><tr><td>2005</td><td>1</td></tr></table>"
        "<p>Cohorts [2005, 2009] have a single unit.</p>"
        "<figure class='raw-trends' data-counts='{&quot;cohorts&quot;: [29, 1, 13]}'><img src='x'/></figure>"
    )
    rep = disclosure_check(page)
    reasons = [f.reason for f in rep.findings]
    assert reasons == [
        "count below 5",
        "count below 5 behind a figure",
        "a group resting on fewer than 5 units in the text",
    ]
    assert "3 possible disclosure(s)" in str(rep)
    assert disclosure_check(page, min_cell=0).ok


def test_unreadable_figure_counts_are_a_finding():
    rep = disclosure_check("<figure data-counts='not json'></figure>")
    assert [f.reason for f in rep.findings] == ["the counts behind a figure cannot be read"]
