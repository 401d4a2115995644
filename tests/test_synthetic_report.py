"""The synthetic-control report of one treated municipality (notebooks/synthetic_evaluation.ipynb).

Rendered once by the repository's runner on the bundled data (``bundled:single_municipality_sib``):
its sections, its numbers (equal to a direct :func:`evaluator.synthetic` fit), ``results.json``,
disclosure control, and the errors of bad parameters; the chapters also in Danish.
"""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.data import datasets
from evaluator.errors import ParameterError
from evaluator.estimators.synthetic import placebo_in_time, synthetic
from evaluator.reporting import headings
from evaluator.runner.parameters import check_parameters, notebook_path

NAME = "single_municipality_sib"
ARGS = dict(outcome="readmissions", unit="municipality", time="year", treated="treated")
SECTIONS = ("summary", "data", "trajectories", "weights", "placebo", "robustness_methods", "contract", "appendix")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from evaluator.runner.run import run_report

    out = tmp_path_factory.mktemp("synthetic") / "report"
    return run_report(notebook_path("synthetic_evaluation"), out=out, progress=False).out


@pytest.fixture(scope="module")
def record(report) -> dict:
    return json.loads((report / "results.json").read_text())


@pytest.fixture(scope="module")
def direct() -> dict:
    """The fits the report must show, computed here without the reporting layer (the notebook's defaults)."""
    data = datasets.load(NAME)
    fits = {m: synthetic(data, **ARGS, method=m, n_reps=200, seed=1) for m in ("sdid", "sc", "did")}
    fits["placebo_in_time"] = placebo_in_time(data, **ARGS, method="sdid", n_reps=200, seed=1)
    return fits


def test_the_report_renders_every_section(report):
    manifest = json.loads((report / "manifest.json").read_text())
    assert manifest["status"] == "ok"
    html = (report / "report.html").read_text()
    for key in (*SECTIONS, "glossary"):
        assert f'id="{headings.SECTIONS[key]}"' in html, key
    for mark in (
        'class="headline-box"',
        'class="headline-truth"',
        "synthetic-trajectories",
        "synthetic-unit-weights",
        "synthetic-time-weights",
        "synthetic-weights",
        "synthetic-placebo",
        "synthetic-robustness",
        'class="glossary"',
    ):
        assert mark in html, mark
    assert "Municipality 01" in html and "Design: synthetic control" in html
    assert "no contract terms given" in html


def test_the_page_shows_no_code_no_path_and_nothing_below_min_cell(report):
    from evaluator.reporting.disclosure import disclosure_check

    html = (report / "report.html").read_text()
    assert "reporting.synthetic_settings" not in html and "import evaluator" not in html
    assert not re.search(r"/(?:tmp|home|work|Users)/", html)
    assert disclosure_check(report).ok  # the page and results.json


def test_the_numbers_are_those_of_a_direct_fit(report, record, direct):
    main = direct["sdid"]
    assert record["estimate"] == pytest.approx(main.estimate, rel=1e-12)
    assert record["se"] == pytest.approx(main.se, rel=1e-12)
    assert record["ci"] == pytest.approx(list(main.ci), rel=1e-12)
    assert record["pvalue"] == pytest.approx(main.pvalue)
    extra = record["extra"]
    weights = main.unit_weights[main.unit_weights > 1e-12]
    assert extra["unit_weights"] == pytest.approx({str(k): float(v) for k, v in weights.items()}, rel=1e-12)
    assert extra["placebo_estimates"] == pytest.approx(main.placebo_estimates.tolist(), rel=1e-12)
    assert extra["permutation_pvalue"] == pytest.approx(main.info["permutation_pvalue"])
    rows = {r["specification"]: r for r in extra["robustness"]}
    for method in ("sdid", "sc", "did"):
        assert rows[method]["estimate"] == pytest.approx(direct[method].estimate, rel=1e-12), method
        assert rows[method]["ci_low"] == pytest.approx(direct[method].ci[0], rel=1e-12), method
    pt = direct["placebo_in_time"]
    assert rows["placebo in time"]["estimate"] == pytest.approx(pt.estimate, rel=1e-12)
    assert extra["placebo_in_time"]["fake_start"] == pt.info["fake_start"]
    # the check line nbval compares and the page's headline agree with the fit
    html = (report / "report.html").read_text()
    assert f"{abs(main.estimate):.3g}" in html


def test_results_json(record):
    truth = datasets.truth(NAME)
    assert record["design"] == "synthetic control" and record["sms_level"] == 3
    assert record["n_units"] == 41 and record["n_treated"] is None  # one treated unit: below min_cell, not written
    assert record["extra"]["treated_unit"] == truth["treated_unit"] == "Municipality 01"
    assert record["extra"]["first_treated"] == truth["first_treated"]
    assert record["extra"]["n_control"] == 40 and record["extra"]["method"] == "sdid"
    assert record["verdict"]["status"] == "no_contract" and record["settlement"] is None
    assert set(record["verdict"]["checks"]) == {"pre_fit", "placebo"}
    assert record["verdict"]["checks"] == {"pre_fit": "passed", "placebo": "passed"}
    # the interval covers the known truth of the bundled data
    assert record["ci"][0] <= truth["att"] <= record["ci"][1]


def test_bad_parameters_are_refused_before_a_kernel_starts():
    nb = notebook_path("synthetic_evaluation")
    with pytest.raises(ParameterError, match=r"method='synth'.*'sdid', 'sc', 'did'"):
        check_parameters(nb, {"method": "synth"})
    with pytest.raises(ParameterError, match=r"n_reps=10"):
        check_parameters(nb, {"n_reps": 10})
    with pytest.raises(ParameterError, match="title and outcome_label must be given"):
        check_parameters(nb, {"data_path": str(datasets.path("sick_leave_sib"))})


def test_settings_list_every_problem():
    from evaluator.reporting import synthetic_settings

    with pytest.raises(ParameterError) as info:
        synthetic_settings(
            data_path="bundled:single_municipality_sib", unit="", time="year", outcome="readmissions",
            treated="treated", method="scm", n_reps=5, alpha=0.7,
        )  # fmt: skip
    msg = str(info.value)
    for part in ("unit=''", "method='scm'", "n_reps=5", "alpha=0.7"):
        assert part in msg, part


def _settings(**kw):
    from evaluator.reporting import synthetic_settings

    return synthetic_settings(data_path=f"bundled:{NAME}", **ARGS, n_reps=50, **kw)


def test_several_treated_units_are_refused_with_a_clear_error(tmp_path):
    from evaluator.reporting import load_synthetic, synthetic_settings

    data = datasets.load(NAME)
    second = (data["municipality"] == "Municipality 02") & (data["year"] >= 2022)
    data.loc[second, "treated"] = 1
    path = tmp_path / "two.parquet"
    data.to_parquet(path)
    s = synthetic_settings(data_path=str(path), **ARGS)
    with pytest.raises(ParameterError, match="one treated unit, but 2 units have 'treated' = 1"):
        load_synthetic(s)


def test_the_chapters_in_danish_and_without_the_headline_method():
    from evaluator import reporting
    from evaluator.i18n import language

    s = _settings(method="sc", language="da")
    fit = reporting.fit_synthetic(reporting.load_synthetic(s), s)
    robustness = reporting.robustness_synthetic(fit)
    assert list(robustness["specification"]) == ["sdid", "sc", "did", "placebo in time"]
    assert list(robustness["kind"]) == ["method", "main", "method", "placebo"]
    with language("da"):
        verdict = reporting.verdict(fit, None, robustness)
        pages = [
            reporting.headline_box(fit, verdict),
            reporting.data_summary_synthetic(fit),
            reporting.weights_section(fit),
            reporting.placebo_section(fit),
            reporting.robustness_table_synthetic(robustness, fit),
            reporting.synthetic_appendix(fit),
            reporting.glossary(fit),
        ]
        heading = reporting.section("weights")
    text = " ".join(str(p) for p in pages)
    assert "syntetisk kontrol" in text.lower() and "Headline" not in text
    assert "Who the comparison is made of" not in heading
    # synthetic control has no time weights: no table of them
    assert "synthetic-time-weights" not in str(pages[2])


def test_a_pre_post_contract_settles_on_the_synthetic_estimate(tmp_path):
    from evaluator import reporting

    contract = tmp_path / "readmissions.yaml"
    contract.write_text(
        textwrap.dedent(
            """\
            name: Readmissions SIB (example)
            currency: DKK
            outcome:
              metric: readmissions
              unit: readmissions per 1,000 residents
              direction: decrease
            payment:
              family: pre_post_target
              thresholds:
                overall: 2.0
              baseline:
                period: the years before the start
              final_payment: 2000000
              cap: 2000000
              dates:
                final: 2027-12-31
            participants:
              total: 400
            investor:
              capital: 1500000
              invested: 2022-01-01
            horizon_years: 6
            discount_rate: 0.035
            """
        ),
        encoding="utf-8",
    )
    s = _settings(contract_path=str(contract))
    fit = reporting.fit_synthetic(reporting.load_synthetic(s), s)
    value = reporting.contract_value(fit)
    assert value is not None and value.settle_kwargs["observed"]["before"] > 0
    tr = fit.result.trajectories
    # equal windows before and after the start (6 years: all the programme years), as the page's sentence says
    pre, post = tr.loc[~tr["post"], "treated"], tr.loc[tr["post"], "treated"]
    assert value.settle_kwargs["observed"]["before"] == pytest.approx(pre.tail(len(post)).mean())
    assert value.settle_kwargs["observed"]["after"] == pytest.approx(post.mean())
    assert "in the 6 periods before" in value.observed_text
    verdict = reporting.verdict(fit, value, reporting.robustness_synthetic(fit))
    # the estimate (about -3) is beyond the 2.0 target at both ends of its interval: met and confirmed
    assert verdict.status == "met" and verdict.due == pytest.approx(2_000_000)
    html = str(reporting.contract_section(fit, value, verdict))
    assert "contract-payment" in html and "DKK 2,000,000 is due" in html


def test_the_bundled_data_is_one_treated_municipality_among_forty():
    data = datasets.load(NAME)
    by_unit = data.groupby("municipality")["treated"].max()
    assert by_unit.sum() == 1 and len(by_unit) == 41
    assert isinstance(data, pd.DataFrame) and np.isfinite(data["readmissions"]).all()
