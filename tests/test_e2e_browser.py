"""End to end: a rendered report opened in a real headless Chromium, as a funder would open it.

Chromium comes from the system packages (Debian's ``chromium``); when it is missing
the fixture installs it with apt-get where it can, and otherwise skips with the
command to run. Playwright drives that browser (its own browser download is never used).
"""

from __future__ import annotations

import os
import re
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


# -- the pages a funder reads: the demo batch and a castle-like report, read as a referee would ---------------------
#: Words of the API or the harness that must never reach a page.
API_NAMES = re.compile(
    r"NBVAL|Headline numbers:|aggregate\(|band_low|band_high|att_gt|abadie_imbens|callaway_santanna|staggered_did|"
    r"event_study\(|\.effect\(|n_boot|min_cell|control_group|not_yet|notyet|\bCR1\b|IQR-based|Traceback|Warning:"
)
SCIENTIFIC = re.compile(r"\de[+-]\d\d")
ABSOLUTE_PATH = re.compile(r"(?<![\w.])/(?:home|tmp|work|root|Users|var|usr|mnt|private)/|\b[A-Z]:\\")
#: The castle-like fixture's cohorts of fewer than 5 states (castle_like's defaults).
SMALL_COHORTS = ("2005", "2007", "2008", "2009")
MAX_A4_PAGES = 8


def _pdf_pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


@pytest.fixture(scope="module")
def demo_pages(tmp_path_factory) -> Path:
    """The demo batch (what `make report` renders), in a temporary folder."""
    from evaluator.runner.batch import load_batch, run_batch
    from evaluator.runner.parameters import notebook_path

    out = tmp_path_factory.mktemp("demo")
    summary = run_batch(load_batch(notebook_path("demo_batch.yaml")), out=out, jobs=2, progress=False)
    assert all(r.status == "ok" for r in summary.runs), summary
    return out


@pytest.fixture(scope="module")
def castle_page(tmp_path_factory) -> Path:
    """A report on a castle-doctrine-like panel: single-state cohorts, a pre-trend test resting on them."""
    from evaluator.data.simulate import castle_like
    from evaluator.runner.parameters import notebook_path
    from evaluator.runner.run import run_report

    root = tmp_path_factory.mktemp("castle")
    data = root / "castle.csv"
    castle_like(seed=1, pretrend=0.1).data.to_csv(data, index=False)
    params = {
        "title": "Castle-doctrine laws and homicide (castle-like fixture)",
        "outcome_label": "log homicides per 100,000",
        "unit": "state",
        "time": "year",
        "outcome": "l_homicide",
        "cohort": "effyear",
        "cluster": "state",
        "n_boot": 199,
    }
    return (
        run_report(
            notebook_path("did_evaluation"), out=root / "report", parameters=params, data=data, progress=False
        ).out
        / "report.html"
    )


def _read_page(browser, path: Path):
    """The page and all its text, the closed appendix sections (``<details>``) included."""
    page, errors, remote = _open(browser, path)
    assert errors == [] and remote == [], (errors, remote)
    return page, page.evaluate("document.body.textContent")


def _assert_readable(page, text: str, where: str) -> None:
    """What every page must be: no API or harness words, no scientific notation, NaN or local path; figures load."""
    assert not API_NAMES.search(text), f"{where}: API or harness text {API_NAMES.search(text).group(0)!r}"
    assert not SCIENTIFIC.search(text), f"{where}: scientific notation {SCIENTIFIC.search(text).group(0)!r}"
    assert "NaN" not in text and "nan" not in re.findall(r"\bnan\b", text), f"{where}: NaN on the page"
    assert not ABSOLUTE_PATH.search(text), f"{where}: a local path {ABSOLUTE_PATH.search(text).group(0)!r}"
    images = page.locator("figure img")
    for i in range(images.count()):
        assert images.nth(i).evaluate("el => el.complete && el.naturalWidth > 100"), f"{where}: figure {i} broken"


def test_demo_pages_read_as_a_funder_needs(browser, demo_pages):
    from evaluator.reporting.disclosure import disclosure_check

    index, _ = _read_page(browser, demo_pages / "index.html")
    index_text = index.inner_text("body")
    runs = sorted(p.parent for p in demo_pages.glob("*/report.html"))
    assert len(runs) == 8
    for folder in runs:
        page, text = _read_page(browser, folder / "report.html")
        _assert_readable(page, text, folder.name)
        assert disclosure_check(folder / "report.html").ok, folder.name
        payment = page.locator(".headline-payment").first.inner_text()
        assert payment.startswith("Contract target met?"), folder.name
        sentence = payment.removeprefix("Contract target met?").strip()
        contract = page.locator(".contract-payment")
        if "contract" in folder.name:
            # one verdict: the headline, the contract section and the index say the same about payment
            assert contract.count() == 1, folder.name
            assert contract.first.inner_text().removeprefix("Contract target met?").strip() == sentence
            assert " ".join(sentence.split()) in " ".join(index_text.split()), folder.name
        if "sick-leave" in folder.name:
            pdf = page.pdf(format="A4")
            assert _pdf_pages(pdf) <= MAX_A4_PAGES, f"{folder.name} prints as {_pdf_pages(pdf)} A4 pages"
        # synthetic data: the known truth stands beside the estimate
        assert page.locator(".headline-truth").count() == 1, folder.name
        page.close()
    index.close()


def test_castle_like_page_says_what_failed_and_names_no_small_group(browser, castle_page):
    from evaluator.reporting.disclosure import disclosure_check

    page, text = _read_page(browser, castle_page)
    _assert_readable(page, text, "castle")
    box = page.locator(".headline-box").first.inner_text()
    assert "trends before the programme" in box and "not reliable" in box  # the pre-trend test rests on 1-state cells
    assert "placebo" in box.lower()
    assert "checks that the groups are comparable failed" in box  # the evidence level is qualified
    assert "Some small groups" in box
    assert page.locator(".headline-truth").count() == 0  # real-looking data: no truth line
    assert "diverging trends before the programme" not in box
    for year in SMALL_COHORTS:
        for pattern in (f"cohort {year}", f"ATT({year}", f"g={year}", f"{year} cohort"):
            assert pattern not in text, f"the page names a small cohort: {pattern!r}"
    cells = page.locator("table.att-gt tr td:first-child")
    assert {cells.nth(i).text_content().strip() for i in range(cells.count())} == {"2006"}  # in a closed <details>
    assert disclosure_check(castle_page).ok
    assert _pdf_pages(page.pdf(format="A4")) <= MAX_A4_PAGES + 2
    page.close()
