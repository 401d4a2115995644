"""End to end: a rendered report opened in a real headless Chromium, as a funder would open it.

Chromium comes from the system packages (Debian's ``chromium``); when it is missing
the fixture installs it with apt-get where it can, and otherwise skips with the
command to run. Playwright drives that browser (its own browser download is never used).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evaluator.runner.pdf import CHROMIUM_CANDIDATES, CHROMIUM_FLAGS, find_chromium

INSTALL = ["apt-get", "install", "-y", "--no-install-recommends", "chromium"]
# the browsers tried and the flags a sandboxed machine needs are the PDF printer's own (evaluator.runner.pdf)
CANDIDATES, FLAGS = CHROMIUM_CANDIDATES, CHROMIUM_FLAGS


@pytest.fixture(scope="module")
def chromium() -> str:
    exe = find_chromium()
    if exe is None and shutil.which("apt-get") and hasattr(os, "geteuid") and os.geteuid() == 0:
        try:
            subprocess.run(INSTALL, check=True, capture_output=True, timeout=900)
        except (subprocess.SubprocessError, OSError):
            try:  # a fresh machine may need its package lists first
                subprocess.run(["apt-get", "update"], check=True, capture_output=True, timeout=600)
                subprocess.run(INSTALL, check=True, capture_output=True, timeout=900)
            except (subprocess.SubprocessError, OSError) as exc:
                pytest.skip(f"Chromium is not installed and `{' '.join(INSTALL)}` failed: {exc}")
        exe = find_chromium()
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
    from evaluator.i18n import gettext as _
    from evaluator.i18n import language
    from evaluator.reporting.disclosure import disclosure_check

    index, _text = _read_page(browser, demo_pages / "index.html")
    index_text = index.inner_text("body")
    runs = sorted(p.parent for p in demo_pages.glob("*/report.html"))
    # 9 in English (one of them the single-municipality synthetic control), the sick-leave contract in Danish,
    # the 12-month employment in Swedish
    assert len(runs) == 11
    languages = {}
    for folder in runs:
        code = json.loads((folder / "manifest.json").read_text())["parameters"]["language"]
        languages[folder.name] = code
        with language(code):
            asked = _("Contract target met?")
        page, text = _read_page(browser, folder / "report.html")
        _assert_readable(page, text, folder.name)
        assert page.evaluate("document.documentElement.lang") == code, folder.name
        assert disclosure_check(folder / "report.html").ok, folder.name
        payment = page.locator(".headline-payment").first.inner_text()
        assert payment.startswith(asked), folder.name
        sentence = payment.removeprefix(asked).strip()
        contract = page.locator(".contract-payment")
        if "contract" in folder.name:
            # one verdict: the headline, the contract section and the index say the same about payment
            assert contract.count() == 1, folder.name
            assert contract.first.inner_text().removeprefix(asked).strip() == sentence
            assert " ".join(sentence.split()) in " ".join(index_text.split()), folder.name
        if "sick-leave" in folder.name:
            pdf = page.pdf(format="A4")
            assert _pdf_pages(pdf) <= MAX_A4_PAGES, f"{folder.name} prints as {_pdf_pages(pdf)} A4 pages"
        # synthetic data: the known truth stands beside the estimate
        assert page.locator(".headline-truth").count() == 1, folder.name
        if code != "en":  # the Danish and Swedish demos (a DiD and a matched report): no English sentence left
            body = " ".join(text.split())
            left = [p for p in _english_fragments(code) if p in body]
            assert not left, f"{folder.name}: English text left on the page: {left[:6]}"
        page.close()
    assert languages["sick-leave-contract-da"] == "da" and languages["employment-employed_12m-sv"] == "sv"
    # the index links the Danish and Swedish reports, and says which language each is in
    links = index.locator("a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    assert any("sick-leave-contract-da/report.html" in h for h in links if h)
    assert any("employment-employed_12m-sv/report.html" in h for h in links if h)
    assert "dansk" in index_text and "svenska" in index_text
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


# -- the same report in Danish, Swedish and Finnish (issue 14) -------------------------------------------------------
LANGUAGE_CODES = ("en", "da", "sv", "fi")
#: Words that stay as they are in every language: proper names, method names, payers, currency codes.
PROPER = re.compile(
    r"Callaway-Sant'Anna|Sant'Anna|Abadie-Imbens|Maryland Scientific Methods Scale|linearmodels|PanelOLS|"
    r"evaluator|kommune|region|stat\b|EUR|DKK|SEK|MDE|SMD"
)


@pytest.fixture(scope="module")
def contract_pages(tmp_path_factory) -> dict[str, Path]:
    """The demo sick-leave contract report rendered in each language (its demo batch parameters, plus language)."""
    from evaluator.runner.batch import load_batch
    from evaluator.runner.parameters import notebook_path
    from evaluator.runner.run import run_report

    run = next(r for r in load_batch(notebook_path("demo_batch.yaml")).runs if r.name == "sick-leave-contract")
    root = tmp_path_factory.mktemp("languages")
    pages = {}
    for code in LANGUAGE_CODES:
        params = {**run.parameters, "language": code}
        pages[code] = run_report(run.notebook, out=root / code, parameters=params, progress=False).out / "report.html"
    return pages


def _english_fragments(code: str) -> list[str]:
    """Pieces of the catalog's English messages (split at placeholders) that a page in ``code`` must not show.

    Only pieces of four words or more: shorter ones ("p-value", "Robustness") may be the same
    word in the other language. A piece that the language's own translation also contains
    (a proper name) is allowed.
    """
    from evaluator.i18n import source_messages, translations

    tr = translations(code)
    out = []
    for msgid in source_messages():
        own = tr.gettext(msgid)
        for piece in re.split(r"%\(\w+\)[sd]|%%|<[^>]+>", msgid):
            piece = " ".join(piece.split()).strip(" ,.:;()")
            if len(piece.split()) >= 4 and piece not in own and not PROPER.fullmatch(piece):
                out.append(piece)
    return sorted(set(out))


@pytest.mark.parametrize("code", LANGUAGE_CODES)
def test_contract_report_is_written_in_its_language(browser, contract_pages, code):
    from evaluator.i18n import language
    from evaluator.reporting.headings import SECTIONS
    from evaluator.reporting.html import labels

    page, text = _read_page(browser, contract_pages[code])
    _assert_readable(page, text, code)
    assert page.evaluate("document.documentElement.lang") == code
    with language(code):
        from evaluator.reporting.headings import section

        for key in ("summary", "data", "estimate", "contract", "robustness", "appendix", "glossary"):
            want = re.sub(r"<[^>]+>", "", str(section(key)).split("<a ")[0]).strip()
            got = page.locator(f"h2[id='{SECTIONS[key]}']").first.inner_text().strip().rstrip("¶").strip()
            assert got == want, f"{code}: section {key!r} reads {got!r}, the catalog says {want!r}"
        lab = labels()
        headers = {lab.estimate_column(k, 95) for k in ("estimate", "se", "p_value")}
        rules = set(lab.rules_columns.values())
    shown = {" ".join(t.split()) for t in page.locator("th").all_inner_texts()}
    assert headers <= shown, f"{code}: estimate table headers {headers - shown} missing"
    assert rules & shown, f"{code}: no header of the contract's rules table in the language"
    box = " ".join(page.locator(".headline-box").first.inner_text().split())
    results = json.loads((contract_pages[code].parent / "results.json").read_text())
    with language(code):  # the headline's numbers as the locale writes them (decimal and grouping separators)
        from evaluator.formatting import money, num

        expected = [num(abs(results["estimate"])), num(abs(results["ci"][0])), money(1_500_000, "EUR")]
    expected = [" ".join(e.split()) for e in expected]
    missing = [e for e in expected if e not in box]
    assert not missing, f"{code}: the headline lacks {missing}: {box[:300]}"
    if code != "en":
        assert not re.search(r"\d\.\d\d?(?!\d)", box), f"{code}: an English decimal point in the headline"
    if code != "en":
        body = " ".join(text.split())
        left = [p for p in _english_fragments(code) if p in body]
        assert not left, f"{code}: English text left on the page: {left[:6]}"
    page.close()


#: The printable area of an A4 page in CSS pixels (96 per inch) with evaluator.runner.pdf's margins (14/16 mm).
A4_WIDTH_PX, A4_HEIGHT_PX = (210 - 28) / 25.4 * 96, (297 - 30) / 25.4 * 96


@pytest.mark.parametrize("code", ["en", "da"])
def test_contract_report_prints_with_the_summary_on_page_one(browser, contract_pages, chromium, code):
    """``report.pdf`` (evaluator.runner.pdf) is at most 8 A4 pages and page 1 holds the whole summary box."""
    # printed in a process of its own, as `evaluator report --pdf` does (this one already drives a browser)
    env = {**os.environ, "EVALUATOR_CHROMIUM": chromium}
    html = contract_pages[code]
    code_ = f"from evaluator.runner.pdf import write_pdf; write_pdf({str(html)!r})"
    subprocess.run([sys.executable, "-c", code_], check=True, env=env, timeout=300)
    pdf = html.with_suffix(".pdf")
    assert pdf.name == "report.pdf" and pdf.is_file()
    pages = _pdf_pages(pdf.read_bytes())
    assert 1 < pages <= MAX_A4_PAGES, f"{code}: report.pdf has {pages} A4 pages"
    # laid out as on paper (print styles, the page's width): the box ends within the first page's height
    page = browser.new_page(viewport={"width": round(A4_WIDTH_PX), "height": round(A4_HEIGHT_PX)})
    page.emulate_media(media="print")
    page.goto(contract_pages[code].resolve().as_uri(), wait_until="load")
    bottom = page.evaluate(
        "() => { const r = document.querySelector('.headline-box').getBoundingClientRect();"
        " return r.bottom + window.scrollY; }"
    )
    assert bottom <= A4_HEIGHT_PX, (
        f"{code}: the summary box ends {bottom:.0f} px down, past page 1 ({A4_HEIGHT_PX:.0f})"
    )
    page.close()
