"""A printable ``report.pdf`` beside ``report.html``, printed by headless Chromium.

The page's print stylesheet (A4, no table or figure split across pages, the headline box
on the first page) is in the report template; this module only asks a browser to print
it, with page numbers in the footer. Playwright drives the system's Chromium (its own
browser download is never used), as the end-to-end tests do. Where either is missing,
:func:`write_pdf` says why and writes nothing: the HTML report is the report, the PDF a
copy of it on paper.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["CHROMIUM_CANDIDATES", "CHROMIUM_FLAGS", "PdfUnavailable", "find_chromium", "write_pdf"]

#: Browser executables tried in turn (``EVALUATOR_CHROMIUM`` names another).
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
#: What a sandboxed server needs: no sandbox as root, no background calls to Google's hosts.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Page numbers in the footer, in the page's own font size; Chromium fills the two spans.
_FOOTER = (
    "<div style='font-size:8px;width:100%;text-align:center;color:#555'>"
    "<span class='pageNumber'></span> / <span class='totalPages'></span></div>"
)


class PdfUnavailable(RuntimeError):
    """No PDF can be printed here: the message says what is missing and how to add it."""


def find_chromium() -> str | None:
    """The Chromium executable to print with: ``$EVALUATOR_CHROMIUM``, else the first of the candidates found."""
    exe = os.environ.get("EVALUATOR_CHROMIUM")
    if exe:
        return exe
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def write_pdf(html: str | Path, pdf: str | Path | None = None, *, timeout_s: float = 120.0) -> Path:
    """Print the report page ``html`` to A4 ``pdf`` (default: ``report.pdf`` beside it) with page numbers.

    Parameters
    ----------
    html : str or Path
        A rendered ``report.html``. It is opened from disk; every request to anywhere else is refused.
    pdf : str or Path, optional
        Where to write the PDF.
    timeout_s : float
        Seconds the browser may take to load and print the page.

    Returns
    -------
    Path
        The PDF written.

    Raises
    ------
    PdfUnavailable
        Without playwright (``pip install 'evaluator[pdf]'``) or without a Chromium browser.

    Examples
    --------
    >>> write_pdf("reports/sick-leave-contract/report.html")  # doctest: +SKIP
    PosixPath('reports/sick-leave-contract/report.pdf')
    """
    html = Path(html)
    out = Path(pdf) if pdf is not None else html.with_suffix(".pdf")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise PdfUnavailable(
            "no PDF: playwright is not installed; install it with `pip install 'evaluator[pdf]'` "
            "(it drives the system's Chromium, no browser download)"
        ) from None
    exe = find_chromium()
    if exe is None:
        raise PdfUnavailable(
            f"no PDF: no Chromium browser found ({', '.join(CHROMIUM_CANDIDATES)}); install one "
            "(Debian/Ubuntu: `apt-get install chromium`) or set EVALUATOR_CHROMIUM to its path"
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.route("**/*", lambda r: r.continue_() if r.request.url.startswith(("file:", "data:")) else r.abort())
            page.goto(html.resolve().as_uri(), wait_until="load", timeout=timeout_s * 1000)
            page.emulate_media(media="print")
            tmp = out.with_name(f".{out.name}.partial")
            page.pdf(
                path=str(tmp),
                format="A4",
                print_background=True,
                display_header_footer=True,
                header_template="<div></div>",
                footer_template=_FOOTER,
                margin={"top": "14mm", "bottom": "16mm", "left": "14mm", "right": "14mm"},
            )
            tmp.replace(out)
        finally:
            browser.close()
    return out
