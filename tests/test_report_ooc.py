"""The DiD report on data read out of core (issue 16): a folder of Parquet files as ``data_path``.

The reference is the same report on the same rows read into memory. The notebook's cells are run in
this process with every whole-table reader of pandas and pyarrow made to fail, so a chapter that
loaded the frame would fail the test; the rendered report is compared with the in-memory one.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from evaluator import reporting
from evaluator.data.datasets import resolve_data
from evaluator.errors import ParameterError
from evaluator.files import sha256_file
from evaluator.runner import run as report

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "did_evaluation.ipynb"
COLS = {"unit": "employee", "time": "month", "outcome": "sick_days", "cohort": "first_treated"}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    """The bundled sick-leave panel, sorted by unit then period, as one Parquet file and as a folder of 3 files
    cut inside units."""
    frame = pd.read_parquet(resolve_data("bundled:sick_leave_sib")).sort_values(["employee", "month"])
    frame = frame.reset_index(drop=True)
    root = tmp_path_factory.mktemp("report_ooc")
    file = root / "sick.parquet"
    frame.to_parquet(file, index=False)
    folder = root / "sick"
    folder.mkdir()
    cuts = [0, len(frame) // 3 + 7, 2 * len(frame) // 3 + 1, len(frame)]
    for i, (a, b) in enumerate(zip(cuts[:-1], cuts[1:], strict=True)):
        frame.iloc[a:b].to_parquet(folder / f"part-{i}.parquet", index=False)
    return file, folder


def _no_whole_reads(monkeypatch) -> None:
    """Make every reader of a whole table fail: out of core, only record batches are read."""

    def refuse(*args, **kwargs):
        raise AssertionError("a whole table was read: out of core reads record batches only")

    import evaluator.data.load

    monkeypatch.setattr(pd, "read_parquet", refuse)
    monkeypatch.setattr(pq, "read_table", refuse)
    monkeypatch.setattr(pq.ParquetFile, "read", refuse)
    monkeypatch.setattr(evaluator.data.load, "_load", refuse)  # the in-memory loader of load_panel
    # (pyarrow's Dataset.to_table cannot be patched, a compiled type: the shards read Dataset.to_batches)


def _cells(data_path: Path, **params) -> dict:
    """Run the report notebook's cells in this process (display collected) with ``params``; its namespace."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    shown: list = []
    ns: dict = {}
    code = [c.source for c in nb.cells if c.cell_type == "code"]
    exec(code[0], ns)  # the parameters cell, then the values given
    ns.update(data_path=str(data_path), title="Sick leave", outcome_label="sick days", **params)
    import IPython.display

    original = IPython.display.display
    IPython.display.display = shown.append
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for source in code[1:]:
                if "save_results" not in source:
                    exec(source, ns)
    finally:
        IPython.display.display = original
    ns["_shown"] = shown
    return ns


def _html(obj) -> str:
    return obj._repr_html_() if hasattr(obj, "_repr_html_") else str(obj)


@pytest.mark.parametrize("inference", ["bootstrap", "analytic"])
def test_every_chapter_is_computed_without_reading_the_frame(data, monkeypatch, inference) -> None:
    file, folder = data
    mem = _cells(file, inference=inference, n_boot=199)
    _no_whole_reads(monkeypatch)
    ooc = _cells(folder, inference=inference, n_boot=199)
    assert ooc["fit"].aggregates is not None and mem["fit"].aggregates is None
    a, b = mem["fit"].result, ooc["fit"].result
    for col in ("estimate", "std_error", "ci_low", "ci_high", "p_value"):
        np.testing.assert_allclose(b.to_frame()[col], a.to_frame()[col], rtol=1e-10, atol=1e-12, err_msg=col)
    np.testing.assert_allclose(ooc["fit"].event.table["estimate"], mem["fit"].event.table["estimate"], rtol=1e-10)
    np.testing.assert_allclose(ooc["fit"].event.table["ci_low"], mem["fit"].event.table["ci_low"], rtol=1e-10)
    for key in ("n_units", "n_treated", "n_clusters"):
        assert getattr(ooc["fit"], key) == getattr(mem["fit"], key), key
    pd.testing.assert_frame_equal(ooc["fit"].cohorts, mem["fit"].cohorts, check_dtype=False)
    # the data section: the same words and counts (the data's name aside)
    html_mem = reporting.data_summary_did(mem["fit"]).replace("sick.parquet", "sick")
    assert reporting.data_summary_did(ooc["fit"]) == html_mem
    # the trends: the same lines, from the streamed means
    fig_mem, fig_ooc = (reporting.trends_figure(f["fit"]) for f in (mem, ooc))
    assert _html(fig_ooc) == _html(fig_mem)
    # what needs the frame is listed, not computed, and says why
    rob = ooc["robustness"].set_index("kind")
    assert rob.loc["inference", "estimate"] == pytest.approx(
        mem["robustness"].set_index("kind").loc["inference", "estimate"]
    )
    # two-way fixed effects and the placebo, in passes too (evaluator/estimators/twfe_ooc.py; the placebo's rows
    # filtered and its cohort recoded as they are read)
    rob_mem = mem["robustness"].set_index("kind")
    assert rob.index.tolist() == rob_mem.index.tolist()  # the same rows in the same order
    for kind in ("estimator", "placebo"):
        assert str(rob.loc[kind, "specification"]) == str(rob_mem.loc[kind, "specification"]), kind
        assert str(rob.loc[kind, "note"]) == str(rob_mem.loc[kind, "note"]), kind
        for col in ("estimate", "ci_low", "ci_high", "p_value"):
            assert np.isfinite(rob.loc[kind, col]), (kind, col)
            np.testing.assert_allclose(rob.loc[kind, col], rob_mem.loc[kind, col], rtol=1e-10, atol=1e-12)
    # leaving out each cohort: the rows read again without its units, as in memory
    loo_mem = mem["robustness"].loc[mem["robustness"]["kind"] == "leave-one-out"]
    loo_ooc = ooc["robustness"].loc[ooc["robustness"]["kind"] == "leave-one-out"]
    assert len(loo_ooc) == len(loo_mem) == 3
    assert [str(x) for x in loo_ooc["specification"]] == [str(x) for x in loo_mem["specification"]]
    for col in ("estimate", "ci_low", "ci_high", "p_value"):
        np.testing.assert_allclose(loo_ooc[col].to_numpy(float), loo_mem[col].to_numpy(float), rtol=1e-10, atol=1e-12)
    assert ooc["sensitivity"] is not None


def test_covariates_on_an_unbalanced_panel_used_whole(data, monkeypatch, tmp_path) -> None:
    """Covariates with allow_unbalanced_panel=True out of core: the report's estimate is the in-memory one."""
    file, _ = data
    frame = pd.read_parquet(file)
    gappy = frame[np.random.default_rng(7).random(len(frame)) > 0.1].reset_index(drop=True)
    gappy.to_parquet(tmp_path / "gappy.parquet", index=False)
    folder = tmp_path / "gappy"
    folder.mkdir()
    gappy.iloc[: len(gappy) // 2 + 3].to_parquet(folder / "part-0.parquet", index=False)
    gappy.iloc[len(gappy) // 2 + 3 :].to_parquet(folder / "part-1.parquet", index=False)
    params = dict(covariates=["age"], allow_unbalanced_panel=True, inference="analytic")
    mem = _cells(tmp_path / "gappy.parquet", **params)
    _no_whole_reads(monkeypatch)
    ooc = _cells(folder, **params)
    a, b = mem["fit"].result, ooc["fit"].result
    assert "unbalanced panel" in b.estimator and b.info["covariates"] == ["age"]
    for col in ("estimate", "std_error", "ci_low", "ci_high"):
        np.testing.assert_allclose(b.to_frame()[col], a.to_frame()[col], rtol=1e-10, atol=1e-12, err_msg=col)


def test_sampling_weights_out_of_core(data, monkeypatch, tmp_path) -> None:
    """Sampling weights (one per unit): the estimate and every robustness row as in memory."""
    file, _ = data
    frame = pd.read_parquet(file)
    w = np.random.default_rng(8).uniform(0.5, 2.0, frame["employee"].nunique())
    frame = frame.assign(w=w[pd.factorize(frame["employee"])[0]])
    frame.to_parquet(tmp_path / "weighted.parquet", index=False)
    folder = tmp_path / "weighted"
    folder.mkdir()
    frame.iloc[: len(frame) // 2 + 5].to_parquet(folder / "part-0.parquet", index=False)
    frame.iloc[len(frame) // 2 + 5 :].to_parquet(folder / "part-1.parquet", index=False)
    mem = _cells(tmp_path / "weighted.parquet", weights="w", inference="analytic")
    _no_whole_reads(monkeypatch)
    ooc = _cells(folder, weights="w", inference="analytic")
    a, b = mem["fit"].result, ooc["fit"].result
    assert b.info["weights"] == "w"
    np.testing.assert_allclose(b.to_frame()["estimate"], a.to_frame()["estimate"], rtol=1e-10)
    np.testing.assert_allclose(b.to_frame()["std_error"], a.to_frame()["std_error"], rtol=1e-10)
    rob, rob_mem = ooc["robustness"].set_index("kind"), mem["robustness"].set_index("kind")
    assert rob.index.tolist() == rob_mem.index.tolist()
    for col in ("estimate", "ci_low", "ci_high", "p_value"):
        np.testing.assert_allclose(rob[col].to_numpy(float), rob_mem[col].to_numpy(float), rtol=1e-10, atol=1e-12)
    assert rob[["estimate"]].notna().all().all()


def test_a_contract_settles_on_the_same_numbers(data, monkeypatch) -> None:
    """The pre/post contract pays on the treated units' windows: one more pass, by unit, out of core."""
    file, folder = data
    contract = str(REPO / "notebooks" / "contracts" / "sick_leave_pre_post.yaml")
    mem = _cells(file, inference="analytic", contract_path=contract)
    _no_whole_reads(monkeypatch)
    ooc = _cells(folder, inference="analytic", contract_path=contract)
    a, b = mem["value"], ooc["value"]
    assert a is not None and b is not None
    va, vb = mem["verdict"].to_dict(), ooc["verdict"].to_dict()
    for key in ("status", "text", "due", "range", "currency", "underpowered"):
        assert vb[key] == va[key], key
    assert va["due"] is not None
    assert _html(reporting.contract_section(ooc["fit"], b, ooc["verdict"])) == _html(
        reporting.contract_section(mem["fit"], a, mem["verdict"])
    )


def test_the_rendered_report_on_a_folder_matches_the_one_in_memory(data, tmp_path) -> None:
    file, folder = data
    given = {"title": "Sick leave", "outcome_label": "sick days", "n_boot": 199}
    mem = report.run_report(NOTEBOOK, out=tmp_path / "mem", parameters=given, data=file, progress=False)
    ooc = report.run_report(NOTEBOOK, out=tmp_path / "ooc", parameters=given, data=folder, progress=False)
    assert mem.status == ooc.status == "ok"
    a, b = (json.loads((tmp_path / k / "results.json").read_text()) for k in ("mem", "ooc"))
    for key in ("estimate", "se", "pvalue", "nobs", "n_units", "n_treated"):
        assert b[key] == pytest.approx(a[key], rel=1e-10), key
    assert b["ci"] == pytest.approx(a["ci"], rel=1e-10) and b["ci_level"] == a["ci_level"]
    assert b["extra"]["parameters"]["out_of_core"] is True
    man = json.loads((tmp_path / "ooc" / "manifest.json").read_text())
    assert man["inputs"]["data_path"]["sha256"] == sha256_file(folder)
    assert man["inputs"]["data_path"]["bytes"] == sum(f.stat().st_size for f in folder.iterdir())
    page = (tmp_path / "ooc" / "report.html").read_text()
    assert str(folder) not in page and str(tmp_path) not in page  # no local paths
    assert "not computed: the data were read out of core" in page


def test_a_folder_is_named_by_its_content(data, tmp_path) -> None:
    _, folder = data
    copy = tmp_path / "elsewhere"
    copy.mkdir()
    for f in folder.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    (copy / ".hidden").write_text("editor backup")
    assert sha256_file(copy) == sha256_file(folder)  # moved: the same fingerprint, so a rerun skips
    given = {"title": "t", "outcome_label": "d"}
    before = report.fingerprint(NOTEBOOK, given, data=copy)
    (copy / "part-9.parquet").write_bytes((folder / "part-0.parquet").read_bytes())
    assert report.fingerprint(NOTEBOOK, given, data=copy) != before  # a file added: run again


def test_settings_out_of_core_refuse_what_the_passes_do_not_compute(data, tmp_path) -> None:
    file, folder = data
    csv = tmp_path / "sick.csv"
    csv.write_text("employee,month\n1,1\n")
    with pytest.raises(ParameterError) as err:
        reporting.did_settings(
            data_path=str(folder),
            **COLS,
            title="t",
            outcome_label="d",
            estimator="twfe",
            inference="cluster",
            panel=False,
        )
    text = str(err.value)
    assert "estimator='twfe': out of core" in text and "panel=False: out of core" in text
    # covariates with allow_unbalanced_panel=True are estimated out of core too (tests/test_staggered_ooc_unbalanced_
    # covariates.py): accepted
    accepted = reporting.did_settings(
        data_path=str(folder), **COLS, title="t", outcome_label="d", covariates=["age"], allow_unbalanced_panel=True
    )
    assert accepted.out_of_core and accepted.covariates == ("age",) and accepted.allow_unbalanced_panel
    with pytest.raises(ParameterError, match=r"data_path='.*sick.csv': out of core .* reads Parquet files"):
        reporting.did_settings(data_path=str(csv), **COLS, title="t", outcome_label="d", out_of_core=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ParameterError, match=r"the folder holds no .parquet files"):
        resolve_data(empty)
    assert reporting.did_settings(data_path=str(folder), **COLS, title="t", outcome_label="d").out_of_core
    assert reporting.did_settings(
        data_path=str(file), **COLS, title="t", outcome_label="d", out_of_core=True
    ).out_of_core
