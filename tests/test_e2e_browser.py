"""End to end: a rendered report opened in a real headless Chromium, as a funder would open it.

Chromium comes from the system packages (Debian's ``chromium``); when it is missing
the fixture installs it with apt-get where it can, and otherwise skips with the
command to run. Playwright drives that browser (its own browser download is never used).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
INSTALL = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
# The flags a sandboxed machine needs: no sandbox as root, and no background calls to Google's hosts,
# which this network refuses and which would otherwise show up as page errors.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _find() -> str | None:
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = os.environ.get("EVALUATOR_CHROMIUM") or _find()
    if exe is None and shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        try:
            subprocess.run(INSTALL, check=True, capture_output=True, timeout=900)
        except (subprocess.SubprocessError, OSError):
            try:  # a fresh machine may need its package lists first
                subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=600)
                subprocess.run(INSTALL, check=True, capture_output=True, timeout=900)
            except (subprocess.SubprocessError, OSError) as exc:
                pytest.skip(f"Chromium is not installed and `{' '.join(INSTALL)}` failed: {exc}")
        exe = _find()
    if exe is None:
        pytest.skip(f"no Chromium found ({', '.join(CANDIDATES)}); install it with `sudo {' '.join(INSTALL)}`")
    return exe


@pytest.fixture(scope="module")
def browser(chromium):
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is in the dev extra: make test installs it"
    )
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium, headless=True, args=FLAGS)
        yield b
        b.close()


def _open(browser, path: Path):
    """Open a report from disk, refusing every request that is not for the file itself (the page must be offline)."""
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    remote: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))

    def route(r):
        if r.request.url.startswith(("file:", "data:")):
            r.continue_()
        else:
            remote.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.resolve().as_uri(), wait_until="load")
    return page, errors, remote


def _no_code_shown(page) -> None:
    # markdown cells carry an (empty) input area too; code cells must have none
    assert page.locator(".jp-CodeCell .jp-InputArea, .jp-CodeCell .jp-InputPrompt, .input_area").count() == 0
    text = page.inner_text("body")
    for snippet in ("import evaluator", "evaluator.sections", "def ", "plt.close"):
        assert snippet not in text, f"code is visible in the report: {snippet!r}"


def _figure_loaded(page, selector: str) -> None:
    img = page.locator(selector).first
    assert img.is_visible(), f"{selector} is not visible"
    assert img.evaluate("el => el.complete && el.naturalWidth > 100"), f"{selector} did not load"


def test_did_report_in_chromium(browser, rendered_reports):
    page, errors, remote = _open(browser, rendered_reports["did_evaluation"] / "report.html")
    box = page.locator(".headline-box").first
    assert box.is_visible()
    assert "95%" in box.inner_text()
    _figure_loaded(page, "figure.event-study img")
    assert "Event study" in page.locator("figure.event-study").first.inner_text()
    _no_code_shown(page)
    assert errors == [], f"the page logged errors: {errors}"
    assert remote == [], f"the page asked the network for {remote}"
    page.close()


def test_matched_report_in_chromium(browser, rendered_reports):
    page, errors, remote = _open(browser, rendered_reports["matched_evaluation"] / "report.html")
    assert page.locator(".headline-box").first.is_visible()
    table = page.locator("table.balance-table").first
    assert table.is_visible()
    assert table.locator("tr").count() > 3
    _figure_loaded(page, "img")
    _no_code_shown(page)
    assert errors == [], f"the page logged errors: {errors}"
    assert remote == [], f"the page asked the network for {remote}"
    page.close()
