"""Issue 12: what a batch tells a person is the same everywhere, and every result reads in Jupyter.

- one duration per run: the terminal table, ``BatchSummary.table()``, ``index.json`` and
  ``index.html`` all show the run's own ``manifest.json`` ``duration_s``;
- the index's numbers are for people (three significant figures, p-values ``< 0.001`` or
  two significant figures, never ``e+06`` or ``NaN``), and the terminal table reads alike;
- the contract's payment verdict (``results.json`` ``verdict.text``) is a column of the index;
- the demo batch's titles are unique;
- every result type has ``summary()`` text and ``_repr_html_()`` showing its headline number,
  and ``help(evaluator.match)`` says how to get from a match to an effect.

The executed batches use the tiny notebook of ``tests/test_batch.py`` (a kernel start each).
"""

from __future__ import annotations

import json
import math
import re
import sys
import warnings
from importlib import import_module
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.formatting import fmt
from evaluator.runner import batch as bt
from evaluator.runner.index import index_interval, index_number, index_p, index_seconds
from tests.test_batch import fake_run, needs_runner, write_batch, write_notebook


def _index_cells(page: str) -> dict[str, list[str]]:
    """The cells of each row of ``index.html``, by run name (tags stripped, entities kept)."""
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = {}
    for tr in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S):
        cells = [re.sub(r"<[^>]+>", " ", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, flags=re.S)]
        rows[cells[0]] = cells
    return rows


def _printed_rows(printed: str, names: list[str]) -> dict[str, str]:
    """The line of the terminal table of each run."""
    return {n: next(ln for ln in printed.splitlines() if ln.split() and ln.split()[0] == n) for n in names}


# -- 1. one duration per run -------------------------------------------------------------
@needs_runner
def test_terminal_table_and_index_show_each_runs_own_duration(tmp_path):
    write_notebook(tmp_path / "tiny.ipynb")
    path = write_batch(
        tmp_path,
        """
        defaults: {notebook: tiny.ipynb}
        runs:
          - {name: good, parameters: {x: 2, sleep: 0.3}}
          - {name: broken, parameters: {x: 0}}
        """,
    )
    out = tmp_path / "reports"
    names = ["good", "broken"]
    for attempt in ("run", "skip"):  # the second time "good" is skipped: its duration is still the report's
        summary = bt.run_batch(bt.load_batch(path), out=out, jobs=2, progress=False)
        status = {r.name: r.status for r in summary.runs}
        assert status == {"good": "ok" if attempt == "run" else "skipped", "broken": "failed"}
        rows = {r["name"]: r for r in json.loads((out / "index.json").read_text())["runs"]}
        table = summary.table().set_index("name")
        for name in names:
            manifest = json.loads((out / name / "manifest.json").read_text())
            assert table.loc[name, "seconds"] == rows[name]["duration_s"] == manifest["duration_s"], (attempt, name)
            assert manifest["duration_s"] > 0
        printed = _printed_rows(str(summary), names)
        cells = _index_cells((out / "index.html").read_text())
        for name in names:
            shown = index_seconds(rows[name]["duration_s"])
            assert shown.endswith(" s") and cells[name][-1] == shown, (attempt, name, cells[name])
            assert f"  {shown}  " in printed[name] + "  ", (attempt, printed[name])


def test_a_run_without_a_manifest_of_its_own_is_recorded_with_the_batch_measure(tmp_path, monkeypatch):
    """A run process that dies before its report writes a manifest: the batch's own measure is written into
    the folder's manifest, so the index shows the same duration and no longer an older report's."""
    write_notebook(tmp_path / "tiny.ipynb")
    path = write_batch(tmp_path, "defaults: {notebook: tiny.ipynb}\nruns:\n  - {name: crash}\n")
    out = tmp_path / "reports"
    fake_run(out, "crash", "ok", {"title": "an older report", "estimate": 1.0, "ci": [0.5, 1.5], "pvalue": 0.01})
    old = json.loads((out / "crash" / "manifest.json").read_text())
    assert old["duration_s"] == 4.25 and old["started"] < "2027"

    crash = [sys.executable, "-c", "import sys, time; time.sleep(0.2); sys.stderr.write('boom\\n'); sys.exit(3)"]
    monkeypatch.setattr(bt, "_command", lambda run, folder: crash)
    summary = bt.run_batch(bt.load_batch(path), out=out, jobs=1, progress=False)
    (outcome,) = summary.runs
    assert outcome.status == "failed" and outcome.exit_code == 3 and "boom" in outcome.message
    assert outcome.seconds != 4.25 and 0.2 <= outcome.seconds < 30  # not the older report's duration
    manifest = json.loads((out / "crash" / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["duration_s"] == outcome.seconds
    assert "boom" in manifest["error"]["evalue"]
    assert not (out / "crash" / "results.json").exists()  # the older report's numbers are not shown as this run's
    (row,) = json.loads((out / "index.json").read_text())["runs"]
    assert row["status"] == "failed" and row["duration_s"] == outcome.seconds and row["estimate"] is None
    assert _index_cells((out / "index.html").read_text())["crash"][-1] == index_seconds(outcome.seconds)
    assert index_seconds(outcome.seconds) in _printed_rows(str(summary), ["crash"])["crash"]


# -- 2. numbers for people ---------------------------------------------------------------
NUMBERS = {  # what results.json holds, what the index shows (estimate [interval], p-value), as the reports write it
    "small": ({"estimate": 0.08, "ci": [0.003037, 0.157], "pvalue": 0.04321}, "0.08 [0.00304, 0.157]", "0.043"),
    "large": ({"estimate": 1234567.0, "ci": [987654.3, 1.5e6], "pvalue": 0.0004}, "1,234,567 [987,654, 1,500,000]",
              "< 0.001"),
    "negative": ({"estimate": -2.345, "ci": [-3.1, -1.5], "pvalue": 0.5}, "-2.35 [-3.1, -1.5]", "0.5"),
    "tiny": ({"estimate": 2.5e-7, "ci": [-1.234e-7, 6.0e-7], "pvalue": 0.0701}, "0.00000025 [-0.000000123, 0.0000006]",
             "0.07"),
    "missing": ({"estimate": 0.1, "ci": [math.nan, 0.2], "pvalue": math.nan}, "0.1", ""),
}  # fmt: skip


def test_index_and_terminal_numbers_have_three_significant_figures_and_plain_p_values(tmp_path):
    out = tmp_path / "reports"
    for name, (results, _, _) in NUMBERS.items():
        fake_run(out, name, "ok", results)  # json.dumps writes NaN, which json.loads reads back
    page = bt.write_index(out).read_text()
    cells = _index_cells(page)
    table = page.split("<tbody>", 1)[1]
    assert not re.search(r"\de[+-]?\d", table) and "nan" not in table.lower() and "inf" not in table.lower()
    outcomes = []
    for name, (results, estimate, p) in NUMBERS.items():
        assert cells[name][3] == estimate, (name, cells[name])
        assert cells[name][4] == p.replace("<", "&lt;"), (name, cells[name])
        ci = tuple(results["ci"])
        outcomes.append(bt.RunOutcome(name, "ok", 4.25, results["estimate"], ci, results["pvalue"]))
    printed = str(bt.BatchSummary(tuple(outcomes), out))
    assert not re.search(r"\de[+-]?\d", printed) and "nan" not in printed.lower()
    lines = _printed_rows(printed, list(NUMBERS))
    for name, (_results, estimate, p) in NUMBERS.items():
        number, _, interval = estimate.partition(" ")
        expected = [name, "ok", index_seconds(4.25), number, *([interval] if interval else []), *([p] if p else [])]
        assert re.split(r"\s{2,}", lines[name].strip()) == expected, (name, lines[name])


def test_index_formatters_are_the_reports_numbers_without_scientific_notation():
    from evaluator.formatting import num, p_value

    ordinary = (0.08, 0.003037, 0.157, -2.345, 100.0, 999.5, -0.0001234, 12345.678, 0.0)
    assert [index_number(x) for x in ordinary] == [num(x, 3) for x in ordinary]
    assert [index_number(x) for x in ordinary] == [
        "0.08",
        "0.00304",
        "0.157",
        "-2.35",
        "100",
        "1,000",
        "-0.000123",
        "12,346",
        "0",
    ]
    assert [index_number(x) for x in (2.5e-7, -3.2e9, 1e6, None, math.inf, math.nan, "n/a", True)] == [
        "0.00000025",
        "-3,200,000,000",
        "1,000,000",
        "",
        "",
        "",
        "",
        "",
    ]
    ps = (0.0009999, 0.001, 0.0123, 0.049, 0.951, 1.0)
    assert [index_p(p) for p in ps] == [p_value(p, 2) for p in ps]
    assert [index_p(p) for p in ps] == ["< 0.001", "0.001", "0.012", "0.049", "0.95", "1"]
    assert [index_p(p) for p in (math.nan, None, "0.5", True)] == ["", "", "", ""]
    assert index_interval((1.0, 2.5)) == "[1, 2.5]" and index_interval((1.0,)) == "" and index_interval("ab") == ""
    assert index_seconds(12.04) == "12.0 s" and index_seconds(math.nan) == ""


# -- 3. the payment verdict --------------------------------------------------------------
def test_index_shows_the_contract_verdict_verbatim_and_escaped(tmp_path):
    out = tmp_path / "reports"
    text = "Target met: GBP 5,000 is owed to the investor <at the estimate> & nothing more."
    fake_run(out, "a-contract", "ok", {"title": "A", "estimate": 1.0, "verdict": {"status": "met", "text": text}})
    fake_run(out, "b-no-contract", "ok", {"title": "B", "estimate": 1.0, "verdict": None})
    fake_run(out, "c-absent", "ok", {"title": "C", "estimate": 1.0})
    fake_run(out, "d-malformed", "ok", {"title": "D", "estimate": 1.0, "verdict": "owed"})
    page = bt.write_index(out).read_text()
    assert "<th>Contract</th>" in page
    escaped = "Target met: GBP 5,000 is owed to the investor &lt;at the estimate&gt; &amp; nothing more."
    assert escaped in page and "<at the estimate>" not in page
    cells = _index_cells(page)
    header = re.findall(r"<th>(.*?)</th>", page)
    column = header.index("Contract")
    assert len(header) == len(cells["a-contract"])
    assert cells["a-contract"][column] == escaped
    assert [cells[n][column] for n in ("b-no-contract", "c-absent", "d-malformed")] == ["", "", ""]
    rows = {r["name"]: r for r in json.loads((out / "index.json").read_text())["runs"]}
    assert rows["a-contract"]["contract"] == text and rows["a-contract"]["verdict"] == {"status": "met", "text": text}
    assert all(rows[n]["contract"] is None and rows[n]["verdict"] is None for n in ("b-no-contract", "c-absent"))
    assert rows["d-malformed"]["contract"] is None


# -- 4. the demo batch ---------------------------------------------------------------------
def test_demo_batch_titles_are_unique_and_say_which_follow_up():
    from evaluator.runner.batch_file import load_batch
    from evaluator.runner.parameters import notebook_path

    demo = load_batch(notebook_path("demo_batch.yaml"))
    titles = {r.name: r.parameters.get("title") for r in demo.runs}
    assert all(isinstance(t, str) and t.strip() for t in titles.values()), titles
    assert len(set(titles.values())) == len(titles), titles
    for months in (6, 12, 24):
        run = next(r for r in demo.runs if r.name == f"employment-employed_{months}m")
        assert run.parameters["outcome"] == f"employed_{months}m"
        assert f"{months} months" in run.parameters["title"] and f"{months} months" in run.parameters["outcome_label"]
    lines = Path(notebook_path("demo_batch.yaml")).read_text().splitlines()
    header = "\n".join(ln for ln in lines[: next(i for i, ln in enumerate(lines) if not ln.startswith("#"))])
    named = re.findall(r"\b((?:evaluator|data_schemas)/[\w/.]*\w/?)", header)
    assert "evaluator/runner/batch.py" in named and "data_schemas/batch.schema.json" in named, named
    for path in named:  # the header's comment names places that exist
        assert (Path(__file__).resolve().parents[1] / path.replace("NAME", "employment_sib")).exists(), path


# -- 5. results in Jupyter -------------------------------------------------------------------
def _employment(n_treated: int = 60, n_pool: int = 600):
    from evaluator.data.simulate import employment_sib

    return employment_sib(n_treated=n_treated, n_pool=n_pool, seed=2)


def _base_result():
    from evaluator.results.base import Result, tidy_table

    return Result("Example <estimator>", tidy_table(["att"], [-1.25], [0.5]), nobs=10, outcome="y")


def _did_result():
    from evaluator.estimators.twfe import did

    toy = pd.DataFrame(
        {
            "id": [1, 1, 2, 2, 3, 3, 4, 4],
            "t": [0, 1] * 4,
            "y": [1.0, 3.0, 2.0, 4.5, 1.0, 1.5, 2.0, 2.0],
            "first": [1, 1, 1, 1, 0, 0, 0, 0],
        }
    )
    return did(toy, outcome="y", unit="id", time="t", cohort="first", inference="hc1")


def _staggered_result():
    from evaluator.data.simulate import sick_leave_sib
    from evaluator.estimators.staggered import staggered_did

    sim = sick_leave_sib(n_municipalities=10, employees_per_municipality=20, n_periods=24, waves=(7, 13), seed=1)
    with warnings.catch_warnings():  # ten clusters: the few-cluster warnings are beside the point here
        warnings.simplefilter("ignore")
        return staggered_did(
            sim.data, outcome="sick_days", unit="employee", time="month", cohort="first_treated", cluster="municipality"
        )


def _match():
    from evaluator.estimators.matching import match

    sim = _employment()
    return match(sim.data, treat="treated", covariates=sim.columns["covariates"])


def _weighting_result():
    from evaluator.estimators.matching import weighting

    sim = _employment(200, 2_000)
    return weighting(sim.data, treat="treated", outcome="employed_12m", covariates=sim.columns["covariates"])


def _settlement():
    from evaluator.contracts.settlement import settle
    from evaluator.contracts.terms import Contract

    c = Contract.from_dict(
        {
            "name": "Peterborough-style",
            "currency": "GBP",
            "outcome": {"metric": "reconvictions_12m", "unit": "events per prisoner", "direction": "decrease"},
            "payment": {
                "family": "counterfactual_threshold",
                "measure": "relative",
                "thresholds": {"per_cohort": 0.10, "overall": 0.075},
                "cohort_payment": 1000,
                "final_payment": 5000,
            },
        }
    )
    return settle(c, -0.135, se=0.05, comparison={"overall": 1.5, 1: 1.55}, cohorts={1: (1.42 - 1.55, 0.07)})


def _socio_economic_return():
    from evaluator.contracts.economics import socio_economic_return

    return socio_economic_return(
        -2.0,
        participants=100,
        unit_costs={"sick_days": {"kommune": 80.0, "stat": 20.0}},
        outcome="sick_days",
        horizon_years=2,
        discount_rate=0.0,
        intervention_cost=30000,
        payer_split={"kommune": 1.0, "stat": 0.0},
    )


def _honest():
    from evaluator.estimators.honest import honest_did

    b = np.array([0.01, -0.02, 0.0, 0.3, 0.4])
    return honest_did(betahat=b, sigma=np.diag([0.01, 0.01, 0.01, 0.02, 0.02]), n_pre=3, mbar=[0.5, 1.0])


def _synthetic():
    from evaluator.estimators.synthetic import synthetic

    rng = np.random.default_rng(3)
    units, periods = 25, 10  # 24 controls: placebo p-values down to 1/25
    frame = pd.DataFrame({"unit": np.repeat(np.arange(units), periods), "time": np.tile(np.arange(periods), units)})
    frame["y"] = rng.normal(size=len(frame)) + frame["unit"] * 0.1 + frame["time"] * 0.2
    frame["treated"] = ((frame["unit"] == 0) & (frame["time"] >= 7)).astype(int)
    frame.loc[frame["treated"] == 1, "y"] += 2.0
    return synthetic(frame, outcome="y", unit="unit", time="time", treated="treated", n_reps=50, seed=1)


def _estimate_text(obj) -> list[str]:
    """What the summary and the HTML must both show: the headline number, as the result writes it."""
    name = type(obj).__name__
    if name in ("Result", "StaggeredResult"):
        return [fmt(obj.estimate)]
    if name == "MatchResult":  # no effect yet: its counts, and how to get the effect
        c = obj.info["counts"]
        return [f"{c['treated_matched']:,} of {c['treated']:,}", "m.effect(outcome"]
    if name == "Settlement":
        return [fmt(obj.effect["estimate"]), obj.money(obj.due)]
    if name == "SocioEconomicReturn":
        return [f"{obj.npv['total']:,.0f}"]
    if name == "HonestResult":  # the parallel-trends interval it is read beside
        return [fmt(obj.original[0]), fmt(obj.original[1])]
    if name == "SyntheticResult":
        return [fmt(obj.estimate)]
    raise AssertionError(f"no expectation for {name}")


RESULTS = {
    "Result": _base_result,
    "did (Result)": _did_result,
    "StaggeredResult": _staggered_result,
    "MatchResult": _match,
    "MatchResult.effect (Result)": lambda: _match().effect("employed_12m"),
    "weighting (Result)": _weighting_result,
    "Settlement": _settlement,
    "SocioEconomicReturn": _socio_economic_return,
    "HonestResult": _honest,
    "SyntheticResult": _synthetic,
}


@pytest.mark.parametrize("make", list(RESULTS.values()), ids=list(RESULTS))
def test_every_result_type_has_a_text_summary_and_html_showing_its_headline(make):
    obj = make()
    text, page = obj.summary(), obj._repr_html_()
    assert isinstance(text, str) and text.strip() and isinstance(page, str) and page.lstrip().startswith("<")
    for shown in _estimate_text(obj):
        assert shown in text, (shown, text[:500])
        assert shown in page or shown.replace("<", "&lt;") in page, (shown, page[:500])
    assert "<estimator>" not in page  # values are escaped


def test_every_result_class_is_covered():
    """A new result class (anything with summary and _repr_html_ under evaluator/) needs a row in RESULTS."""
    from evaluator.results.display import Display

    for module in (
        "contracts.economics",
        "contracts.settlement",
        "estimators.matching",
        "estimators.staggered",
        "estimators.honest",
        "estimators.synthetic",
    ):
        import_module(f"evaluator.{module}")  # so that their classes are defined

    def all_subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from all_subclasses(sub)

    def public(cls) -> bool:  # a class of the package (not one a doctest defined in a module's namespace)
        module = sys.modules.get(cls.__module__)
        return cls.__module__.startswith("evaluator.") and getattr(module, cls.__name__, None) is cls

    known = {"Result", "StaggeredResult", "MatchResult", "Settlement", "SocioEconomicReturn"}
    known |= {"HonestResult", "SyntheticResult"}
    found = {c.__name__ for c in all_subclasses(Display) if public(c)}
    assert found <= known, found - known


def test_help_of_match_says_how_to_get_an_effect():
    import pydoc

    import evaluator

    for obj in (evaluator.match, evaluator.MatchResult):
        text = pydoc.render_doc(obj, renderer=pydoc.plaintext)
        assert "m.effect(outcome" in text and "Examples" in text
        assert re.search(r">>> \w+ = m\.effect\(", text), obj
