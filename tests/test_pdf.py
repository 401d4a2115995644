"""report.pdf: printed by headless Chromium where there is one; said, not failed, where there is none."""

from __future__ import annotations

import pytest

from evaluator.runner import pdf as pdf_module
from evaluator.runner.pdf import PdfUnavailable, find_chromium, write_pdf


def test_without_chromium_the_run_is_told_why_and_what_to_do(tmp_path, monkeypatch):
    page = tmp_path / "report.html"
    page.write_text("<html><body>x</body></html>", encoding="utf-8")
    monkeypatch.delenv("EVALUATOR_CHROMIUM", raising=False)
    monkeypatch.setattr(pdf_module.shutil, "which", lambda name: None)
    assert find_chromium() is None
    with pytest.raises(
        PdfUnavailable, match=r"no Chromium browser found .*apt-get install chromium.*EVALUATOR_CHROMIUM"
    ):
        write_pdf(page)
    assert not (tmp_path / "report.pdf").exists()


def test_a_run_without_a_browser_keeps_its_html_and_records_why(tmp_path, monkeypatch, capsys):
    from evaluator.runner.run import _print_pdf

    page = tmp_path / "report.html"
    page.write_text("<html><body>x</body></html>", encoding="utf-8")
    monkeypatch.delenv("EVALUATOR_CHROMIUM", raising=False)
    monkeypatch.setattr(pdf_module.shutil, "which", lambda name: None)
    record = _print_pdf(page, tmp_path)
    assert record["written"] is False and "no Chromium" in record["reason"]
    assert "the HTML report is written" in capsys.readouterr().err
    assert page.is_file()


def test_the_environment_names_the_browser(monkeypatch):
    monkeypatch.setenv("EVALUATOR_CHROMIUM", "/opt/chrome/chrome")
    assert find_chromium() == "/opt/chrome/chrome"
