"""Parameters checked before any kernel starts: declared values and ranges, one spelling, "did you mean", data labels.

Every rule is shown to fail before a kernel starts: ``papermill.execute_notebook`` is
replaced by a function that fails the test if it is called (not a timing).
"""

from __future__ import annotations

import inspect
import itertools
import json
import math
import textwrap
import warnings
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from evaluator import cli
from evaluator.errors import ParameterError
from evaluator.reporting import settings as rules
from evaluator.runner import batch_file
from evaluator.runner.parameters import (
    SEPARATOR,
    check_parameters,
    notebook_parameters,
    notebook_path,
    parse_declaration,
)
from evaluator.runner.run import run_report

NAMES = ("did_evaluation", "matched_evaluation", "synthetic_evaluation")
DID, MATCHED = notebook_path("did_evaluation"), notebook_path("matched_evaluation")


@pytest.fixture
def no_kernel(monkeypatch):
    """Fail the test if a notebook is executed (a kernel would start)."""
    import papermill

    def refuse(*args, **kwargs):
        raise AssertionError("a kernel was started: the check should have refused the run before")

    monkeypatch.setattr(papermill, "execute_notebook", refuse)


def refused(notebook: Path, out: Path, **parameters) -> str:
    """The ParameterError message of a run with ``parameters``; no kernel may start (see ``no_kernel``)."""
    with pytest.raises(ParameterError) as info:
        run_report(notebook, out=out, parameters=parameters, progress=False)
    assert not out.exists(), "nothing is written for a refused run"
    return str(info.value)


def toy_notebook(path: Path, cell: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(cell, metadata={"tags": ["parameters"]}), nbformat.v4.new_code_cell("1")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


# -- the declarations -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_declarations_parse_and_every_default_satisfies_its_own(name):
    params = notebook_parameters(notebook_path(name))
    defaults = {k: p.default for k, p in params.items()}
    declared = {k for k, p in params.items() if p.declaration}
    draws = {"n_reps", "method"} if name == "synthetic_evaluation" else {"n_boot", "inference"}
    assert {"alpha", "min_cell", "seed", "title", "outcome_label", *draws} <= declared
    for p in params.values():
        assert p.help and SEPARATOR not in p.help, f"{p.name}: no human description in {p.comment!r}"
        if p.declaration:
            assert p.declaration.problem(p.default, defaults, kind=p.kind) is None, p.name
    assert check_parameters(notebook_path(name), {}) == {}


@pytest.mark.parametrize("name", NAMES)
def test_papermill_inspection_still_lists_every_parameter_with_its_help(name):
    import papermill

    inspected = papermill.inspect_notebook(str(notebook_path(name)))
    params = notebook_parameters(notebook_path(name))
    assert list(inspected) == list(params)
    for key, p in params.items():
        assert inspected[key]["help"] == p.comment and p.help in inspected[key]["help"]


def test_the_grammar():
    d = parse_declaration('one of: "cluster", "wild" if estimator is "twfe"; "bootstrap", "analytic" — interval method')
    assert d.help == "interval method"
    assert d.allowed({"estimator": "twfe"}) == ("cluster", "wild")
    assert d.allowed({"estimator": "callaway_santanna"}) == ("bootstrap", "analytic")
    assert d.problem("wild", {"estimator": "callaway_santanna"}).startswith("choose one of 'bootstrap'")
    r = parse_declaration("range: [0, 1] or None — a share")
    assert (
        r.problem(None, {}) is None
        and r.problem(1, {}) is None
        and r.problem(1.01, {}) == "expected a number >= 0 and <= 1 or None"
    )
    assert parse_declaration("range: (-inf, 0)").problem(0, {}) == "expected a number < 0"
    assert parse_declaration("required with data_path, outcome — units").required_with == ("data_path", "outcome")
    assert parse_declaration("a plain help: one of the inputs") is None
    for bad, why in [
        ('one of: "a", "b" -- help', "em dash"),
        ("range: [1, 0]", "empty"),
        ('one of: "a" if x; "b"', "expected 'is'"),
        ('one of: "a"; "b" if x is 1', "only the last case"),
        ("range: 1", "expected a range"),
        ("one of: a", "expected a value"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_declaration(bad)


def test_a_malformed_declaration_is_refused_when_the_notebook_is_read(tmp_path):
    nb = toy_notebook(
        tmp_path / "t.ipynb", 'x = 1  # range: [1, 10 — a number\ny = "a"  # one of: "a" if z is 1 — text\n'
    )
    with pytest.raises(ParameterError) as info:
        notebook_parameters(nb)
    msg = str(info.value)
    assert "line 1 (x): the declaration in its comment does not parse" in msg
    assert "line 2 (y): the declaration names no parameter of this cell: ['z']" in msg


# -- each rule fails before a kernel starts --------------------------------------------------------------------------
def test_enum_values_are_checked_before_the_kernel_with_a_suggestion(no_kernel, tmp_path):
    msg = refused(DID, tmp_path / "r", estimator="twfee")
    assert "parameter estimator='twfee': choose one of 'callaway_santanna', 'twfe' (did you mean 'twfe'?)" in msg
    with pytest.raises(
        ParameterError, match=r"distance='mahalnobis': choose one of .* \(did you mean 'mahalanobis'\?\)"
    ):
        run_report(MATCHED, out=tmp_path / "m", parameters={"distance": "mahalnobis"}, progress=False)
    with pytest.raises(
        ParameterError, match=r"inference='jackknife': choose one of 'pairs', 'abadie_imbens', 'bootstrap'"
    ):
        run_report(MATCHED, out=tmp_path / "m", parameters={"inference": "jackknife"}, progress=False)


def test_values_that_depend_on_another_parameter(no_kernel, tmp_path):
    # the notebook's default inference does not go with two-way fixed effects: said before the kernel, not in it
    default = r"inference='bootstrap' \(the notebook's default\)"
    with pytest.raises(ParameterError, match=default + r": with estimator='twfe' choose one of 'cluster', 'wild'"):
        run_report(DID, out=tmp_path / "r", parameters={"estimator": "twfe"}, progress=False)
    with pytest.raises(ParameterError, match=r"n_boot=10: with inference='bootstrap' expected a whole number >= 99"):
        run_report(DID, out=tmp_path / "r", parameters={"n_boot": 10}, progress=False)
    assert check_parameters(DID, {"n_boot": 10, "inference": "analytic"}) == {"n_boot": 10, "inference": "analytic"}
    with pytest.raises(ParameterError, match=r"caliper=0.2: with distance='mahalanobis' only None is allowed"):
        run_report(MATCHED, out=tmp_path / "m", parameters={"distance": "mahalanobis", "caliper": 0.2}, progress=False)


@pytest.mark.parametrize(
    ("notebook", "given", "message"),
    [
        (DID, {"alpha": 0.5}, r"parameter alpha=0.5: expected a number > 0 and < 0.5"),
        (DID, {"alpha": "0"}, r"parameter alpha=0.0: expected a number > 0 and < 0.5"),
        (DID, {"min_cell": -1}, r"parameter min_cell=-1: expected a whole number >= 0"),
        (DID, {"seed": "-3"}, r"parameter seed=-3: expected a whole number >= 0"),
        (MATCHED, {"ratio": 0}, r"parameter ratio=0: expected a whole number >= 1"),
        (MATCHED, {"caliper": -0.1}, r"parameter caliper=-0.1: expected a number > 0 or None"),
        (MATCHED, {"caliper": "wide"}, r"parameter caliper='wide': expected a number > 0 or None"),
        (MATCHED, {"n_boot": 1}, r"parameter n_boot=1: expected a whole number >= 2"),
    ],
)
def test_ranges_are_checked_before_the_kernel(no_kernel, tmp_path, notebook, given, message):
    with pytest.raises(ParameterError, match=message):
        run_report(notebook, out=tmp_path / "r", parameters=given, progress=False)


def test_misspelled_parameter_names_get_a_suggestion(no_kernel, tmp_path):
    msg = refused(DID, tmp_path / "r", estimatr="twfe", Alpha=0.1, n_bot=99)
    assert "unknown parameter 'estimatr' (did you mean 'estimator'?)" in msg
    assert "unknown parameter 'Alpha' (did you mean 'alpha'?)" in msg
    assert "unknown parameter 'n_bot' (did you mean 'n_boot'?)" in msg
    assert "known: title, data_path" in msg


def test_several_bad_values_give_one_error_listing_all(no_kernel, tmp_path):
    msg = refused(
        DID, tmp_path / "r", estimator="ols", control_group="all", alpha=2.0, n_boot=-1, method="dr ", mood="good"
    )
    assert msg.startswith("did_evaluation.ipynb: ")
    for part in (
        "unknown parameter 'mood'",
        "estimator='ols': choose one of 'callaway_santanna', 'twfe'",
        "control_group='all': choose one of 'never', 'not_yet'",
        "method='dr ': choose one of 'dr', 'ipw', 'reg' (did you mean 'dr'?)",
        "alpha=2.0: expected a number > 0 and < 0.5",
        "n_boot=-1: with inference='bootstrap' expected a whole number >= 99",
    ):
        assert part in msg, part
    assert msg.count("; parameter ") == 5  # one error, each problem once


# -- notebook names ---------------------------------------------------------------------------------------------------
def test_misspelled_notebook_names_get_a_suggestion(no_kernel, tmp_path, capsys):
    with pytest.raises(ParameterError, match=r"no report notebook 'did_evalution' \(did you mean did_evaluation\?\)"):
        notebook_path("did_evalution")
    assert cli.main(["report", "did_evalution", "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "did you mean did_evaluation?" in err
    assert "the shipped ones are did_evaluation, matched_evaluation, synthetic_evaluation" in err
    assert cli.main(["report", "matched_evaluaton.ipynb", "--out", str(tmp_path / "r"), "--no-progress"]) == 2
    assert "did you mean matched_evaluation?" in capsys.readouterr().err
    (tmp_path / "mine.ipynb").write_text("{}")
    with pytest.raises(ParameterError, match=r"notebook not found: .*mien.ipynb \(did you mean .*mine.ipynb\?\)"):
        check_parameters(tmp_path / "mien.ipynb", {})
    assert not (tmp_path / "r").exists()


def test_the_cli_refuses_bad_values_with_exit_2_and_no_kernel(no_kernel, tmp_path, capsys):
    out = tmp_path / "r"
    assert cli.main(["report", "did_evaluation", "--out", str(out), "-p", "estimator", "twfee", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "estimator='twfee'" in err and "did you mean 'twfe'?" in err and "Traceback" not in err
    assert not out.exists()


# -- one spelling: not_yet ------------------------------------------------------------------------------------------
def test_not_yet_is_the_spelling_and_notyet_still_works_with_a_deprecation_note(no_kernel, tmp_path, capsys):
    assert check_parameters(DID, {"control_group": "not_yet"}) == {"control_group": "not_yet"}
    with pytest.warns(FutureWarning, match=r"control_group='notyet' is deprecated.*write control_group='not_yet'"):
        assert check_parameters(DID, {"control_group": "notyet"}) == {"control_group": "not_yet"}
    # the command line prints the note and does not fail on it (here it fails later, on purpose, on alpha)
    assert cli.main(["report", "did_evaluation", "--out", str(tmp_path / "r"), "-p", "control_group", "notyet",
                     "-p", "alpha", "1", "--no-progress"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "note: did_evaluation.ipynb: parameter control_group='notyet' is deprecated" in err
    note, error = err.strip().splitlines()
    assert "alpha=1.0: expected a number > 0 and < 0.5" in error and "control_group" not in error


@pytest.mark.filterwarnings("ignore::evaluator.errors.FewClustersWarning")
def test_notyet_runs_through_the_settings_with_a_warning_and_reaches_the_estimator():
    from evaluator import simulate, staggered_did
    from evaluator.reporting.pipeline import estimate_did

    base = {"data_path": "bundled:sick_leave_sib", "unit": "employee", "time": "month", "outcome": "sick_days",
            "cohort": "first_treated", "cluster": "municipality", "inference": "analytic"}  # fmt: skip
    with pytest.warns(FutureWarning, match="not_yet"):
        old = rules.did_settings(**base, control_group="notyet")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        new = rules.did_settings(**base, control_group="not_yet")
    assert old == new and new.control_group == "not_yet" and new.as_dict()["control_group"] == "not_yet"
    sim = simulate.sick_leave_sib(seed=1, n_municipalities=6, employees_per_municipality=20)
    common = {k: base[k] for k in ("unit", "time", "outcome", "cohort", "cluster")}
    want = staggered_did(sim.data, **common, control="not_yet", n_boot=0, seed=1)
    got = estimate_did(sim.data, new)
    assert got.estimate == pytest.approx(want.estimate, rel=1e-12)
    never = estimate_did(sim.data, rules.did_settings(**base))
    assert never.estimate != pytest.approx(got.estimate, rel=1e-9)  # the spelling reached the estimator


# -- labels that belong to the data ---------------------------------------------------------------------------------
@pytest.fixture
def own_csv(tmp_path) -> Path:
    path = tmp_path / "panel.csv"
    pd.DataFrame({"employee": [1, 1], "month": [1, 2], "sick_days": [0.0, 1.0], "first_treated": [0, 0]}).to_csv(
        path, index=False
    )
    return path


def test_other_data_needs_its_own_title_and_outcome_label(no_kernel, tmp_path, own_csv):
    msg = refused(DID, tmp_path / "r", data_path=str(own_csv))
    assert "title and outcome_label must be given" in msg
    assert f"data_path={str(own_csv)!r} is not this notebook's own data set ('bundled:sick_leave_sib')" in msg
    assert '-p title "..." -p outcome_label "..."' in msg and "panel.schema.json" in msg
    # a bundled set other than the notebook's own is other data too (and its sidecar is not the user's to write)
    msg = refused(DID, tmp_path / "r", data_path="bundled:employment_sib")
    assert "title and outcome_label must be given" in msg and "schema.json" not in msg
    # the notebook's own data, however named, is not
    from evaluator.data import datasets

    same = str(datasets.path("sick_leave_sib"))
    assert check_parameters(DID, {"data_path": same}) == {"data_path": same}
    # given: fine
    given = {"data_path": str(own_csv), "title": "My evaluation", "outcome_label": "days"}
    assert check_parameters(DID, given) == given
    with pytest.raises(ParameterError, match=r"outcome_label must be given: data_path=.* its default describes"):
        check_parameters(DID, {"data_path": str(own_csv), "title": "My evaluation"})


def test_another_outcome_column_needs_its_own_label(no_kernel, tmp_path):
    msg = refused(MATCHED, tmp_path / "r", outcome="employed_6m")
    assert (
        "outcome_label must be given: outcome='employed_6m' is not this notebook's own column ('employed_12m')" in msg
    )
    assert "title" not in msg.split(":")[1]  # the title is about the data set, which is the same
    assert check_parameters(MATCHED, {"outcome": "employed_6m", "outcome_label": "share in work at 6 months"})


def test_labels_can_come_from_the_datas_own_schema(no_kernel, own_csv):
    sidecar = own_csv.with_name("panel.schema.json")
    sidecar.write_text(
        json.dumps(
            {
                "title": "Sick leave in our municipalities",
                "fields": [{"name": "sick_days", "title": "Sick days", "description": "sick-leave days per month"}],
            }
        )
    )
    got = check_parameters(DID, {"data_path": str(own_csv)})
    assert got == {
        "data_path": str(own_csv),
        "title": "Sick leave in our municipalities",
        "outcome_label": "sick-leave days per month",
    }
    # given values win over the sidecar's
    assert check_parameters(DID, {"data_path": str(own_csv), "title": "T"})["title"] == "T"
    # a schema that does not describe the outcome column gives nothing
    sidecar.write_text(json.dumps({"title": "x", "fields": [{"name": "other", "description": "no"}]}))
    with pytest.raises(ParameterError, match="title and outcome_label must be given"):
        check_parameters(DID, {"data_path": str(own_csv)})
    sidecar.write_text("{not json")
    with pytest.raises(ParameterError, match=r"panel.schema.json beside the data cannot be read"):
        check_parameters(DID, {"data_path": str(own_csv)})


def test_a_batch_file_is_checked_the_same_way(tmp_path, own_csv):
    spec = tmp_path / "b.yaml"
    spec.write_text(
        textwrap.dedent(
            f"""
            runs:
              - name: typo
                notebook: {DID}
                parameters: {{estimator: twfee, inference: wild}}
              - name: own-data
                notebook: {DID}
                parameters: {{data_path: {own_csv.name}}}
              - name: old-spelling
                notebook: {DID}
                parameters: {{control_group: notyet, title: T}}
            """
        )
    )
    with pytest.warns(FutureWarning, match="notyet"), pytest.raises(batch_file.BatchError) as info:
        batch_file.load_batch(spec)
    msg = str(info.value)
    assert "runs[0] 'typo'" in msg and "did you mean 'twfe'?" in msg
    assert "runs[1] 'own-data'" in msg and "title and outcome_label must be given" in msg
    assert "old-spelling" not in msg and len(info.value.problems) == 2


def test_every_run_of_the_demo_batch_passes_the_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # and uses no deprecated spelling
        demo = batch_file.load_batch(notebook_path("demo_batch.yaml"))
    assert len(demo.runs) >= 6
    for run in demo.runs:
        check_parameters(run.notebook, run.parameters)


# -- the notebooks and settings agree ---------------------------------------------------------------------------------
def _candidates(p, check) -> list:
    d = p.declaration
    out = [p.default, "junk", True, -1, 0, 1, 2, 98, 99, 100, 1.5, 2.0, 0.0, 1e-9, 0.05, 0.2, 0.4999, 0.5, "0.2"]
    out += [math.nan, "nan", math.inf]
    # None, except where the settings take it as "the default" (did_settings' inference: the estimator's first),
    # which a notebook cannot pass: its parameter is text
    if p.kind == "any" or inspect.signature(check).parameters[p.name].default is not None:
        out.append(None)
    for case in d.one_of:
        out += list(case.allowed) + [a.upper() for a in case.allowed if isinstance(a, str)]
    out += [old for old, _ in d.formerly]
    for case in d.range:
        if case.interval is not None:
            out += [case.interval.low, case.interval.high]
    return out


def _contexts(params, name) -> list[dict]:
    """Every combination of the values allowed for the parameters ``name``'s declaration depends on (transitively)."""
    seen, todo = [], [name]
    while todo:
        for other in sorted(params[todo.pop()].declaration.references() - {"data_path", "outcome"}):
            if other not in seen:
                seen.append(other)
                todo.append(other)
    choices = [sorted({v for c in params[o].declaration.one_of for v in c.allowed}) for o in seen]
    return [dict(zip(seen, combo, strict=True)) for combo in itertools.product(*choices)]


def _runner_verdict(notebook, given) -> tuple[bool, dict]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return True, check_parameters(notebook, given)
    except ParameterError:
        return False, {}


def _settings_of(name):
    return {
        "did_evaluation": rules.did_settings,
        "matched_evaluation": rules.matched_settings,
        "synthetic_evaluation": rules.synthetic_settings,
    }[name]


def _settings_verdict(name, values) -> bool:
    check = _settings_of(name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            check(**values)
    except ParameterError:
        return False
    return True


@pytest.mark.parametrize("name", NAMES)
def test_the_notebook_declarations_and_the_settings_accept_and_refuse_the_same_values(name):
    notebook = notebook_path(name)
    params = notebook_parameters(notebook)
    defaults = {k: p.default for k, p in params.items()}
    checked = 0
    for key, p in params.items():
        if p.declaration is None or not (p.declaration.one_of or p.declaration.range):
            continue
        for context, value in itertools.product(_contexts(params, key), _candidates(p, _settings_of(name))):
            given = {**context, key: value}
            ok, coerced = _runner_verdict(notebook, given)
            # the kernel's settings see what the runner injects: coerced values (raw ones where coercion failed)
            values = {**defaults, **given, **coerced}
            assert ok == _settings_verdict(name, values), f"{name}: {given} runner {'accepts' if ok else 'refuses'}"
            checked += 1
    assert checked > (150 if name == "synthetic_evaluation" else 200)  # the synthetic report has fewer choices


def test_the_declared_values_are_the_settings_constants():
    did, matched = notebook_parameters(DID), notebook_parameters(MATCHED)

    def allowed(p):
        return {v for case in p.declaration.one_of for v in case.allowed}

    assert allowed(did["estimator"]) == set(rules.ESTIMATORS)
    assert allowed(did["control_group"]) == set(rules.CONTROL_GROUPS)
    assert dict(did["control_group"].declaration.formerly) == dict(rules.FORMER_SPELLINGS["control_group"])
    assert allowed(did["method"]) == set(rules.DID_METHODS)
    for estimator, schemes in rules.DID_INFERENCE.items():
        assert did["inference"].declaration.allowed({"estimator": estimator}) == schemes
    assert allowed(matched["distance"]) == set(rules.DISTANCES)
    assert allowed(matched["inference"]) == set(rules.MATCHED_INFERENCE)
    for params in (did, matched):
        (alpha,) = params["alpha"].declaration.range
        assert (alpha.interval.low, alpha.interval.high) == rules.ALPHA_RANGE
        assert not alpha.interval.low_closed and not alpha.interval.high_closed
    low = {c.interval.low for c in did["n_boot"].declaration.range if c.on == "inference"}
    assert low == {rules.DID_MIN_DRAWS}
    assert matched["n_boot"].declaration.range[0].interval.low == rules.MATCHED_MIN_DRAWS
    synthetic = notebook_parameters(notebook_path("synthetic_evaluation"))
    assert allowed(synthetic["method"]) == set(rules.SYNTHETIC_METHODS)
    assert synthetic["n_reps"].declaration.range[0].interval.low == rules.SYNTHETIC_MIN_REPS
