"""The Danish, Swedish and Finnish catalogs hold exactly the words the package and its templates use.

The messages are extracted from the source here, as ``make catalogs`` does (Babel, with the
mapping in ``evaluator/locale/babel.cfg``), so a new message without a translation, or a
translation whose message no longer exists, fails this test until the catalogs are updated.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from evaluator.i18n import LANGUAGES, catalog_path, language, source_messages, translations

ROOT = Path(__file__).resolve().parents[1]
FOREIGN = [code for code in LANGUAGES if code != "en"]
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]|%%")


@lru_cache(maxsize=1)
def extracted() -> dict[str, set[str]]:
    """msgid -> the files it comes from, as ``pybabel extract -F evaluator/locale/babel.cfg .``."""
    return source_messages(ROOT)


def _catalog(code: str):
    with open(catalog_path(code), "rb") as fh:
        return read_po(fh)


def _translated(string: str | tuple[str, ...]) -> bool:
    return all(string) if isinstance(string, tuple) else bool(string)


def test_extraction_finds_the_report_words() -> None:
    found = extracted()
    assert "million" in found  # formatting.py, marked with N_()
    assert len(found) > 2


@pytest.mark.parametrize("code", FOREIGN)
def test_every_message_has_a_translation_and_none_is_stale(code: str) -> None:
    found = extracted()
    cat = _catalog(code)
    have = {m.id if isinstance(m.id, str) else m.id[0]: m for m in cat if m.id}
    missing = sorted(set(found) - set(have))
    stale = sorted(set(have) - set(found))
    untranslated = sorted(k for k, m in have.items() if k in found and not _translated(m.string))
    fuzzy = sorted(k for k, m in have.items() if m.fuzzy)
    problems = {
        "missing from the catalog (run `make catalogs`)": missing,
        "stale (no longer in the source; run `make catalogs`)": stale,
        "without a translation": untranslated,
        "marked fuzzy (check and clear the flag)": fuzzy,
    }
    shown = {k: [f"{m[:60]!r} ({', '.join(sorted(found.get(m, [])))})" for m in v[:8]] for k, v in problems.items()}
    shown = {k: v for k, v in shown.items() if v}
    assert not shown, f"catalog {catalog_path(code).relative_to(ROOT)}: {shown}"


@pytest.mark.parametrize("code", FOREIGN)
def test_translations_keep_the_placeholders(code: str) -> None:
    bad = []
    for m in _catalog(code):
        if not m.id or not _translated(m.string):
            continue
        ids = m.id if isinstance(m.id, tuple) else (m.id,)
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        want = sorted(PLACEHOLDER.findall(ids[-1]))
        for s in strings:
            if sorted(PLACEHOLDER.findall(s)) != want:
                bad.append(f"{ids[0][:50]!r}: {sorted(PLACEHOLDER.findall(s))} != {want}")
    assert not bad, f"{code}: translations whose %(name)s placeholders differ from the message: {bad[:8]}"


@pytest.mark.parametrize("code", FOREIGN)
def test_catalog_loads_and_translates(code: str) -> None:
    with language(code):
        assert translations(code).gettext("million") not in ("", "million")


def _figure_words(fig) -> list[str]:
    """Every text a figure draws: titles, axis labels, tick labels, legend entries and annotations."""
    out = []
    for ax in fig.axes:
        out += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        out += [t.get_text() for t in ax.get_xticklabels() + ax.get_yticklabels()]
        legend = ax.get_legend()
        if legend is not None:
            out += [t.get_text() for t in legend.get_texts()]
        out += [t.get_text() for t in ax.texts]
    return [w for w in out if w.strip()]


@pytest.mark.parametrize("code", FOREIGN)
def test_figures_draw_their_words_and_numbers_in_the_language(code: str) -> None:
    # the event study as the report draws it: title, axes, legend and ticks follow the language
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from evaluator import plots, simulate, staggered_did

    sim = simulate.sick_leave_sib(n_municipalities=8, employees_per_municipality=20, n_periods=12, waves=(5, 8))
    res = staggered_did(sim.data, outcome="sick_days", unit="employee", time="month", cohort="first_treated", n_boot=0)
    dyn = res.aggregate("dynamic")

    from evaluator.reporting.html import label

    def draw() -> list[str]:  # as the report's event-study chapter draws it, its title from the labels catalog
        fig = Figure()
        plots.coefficients(dyn, ax=fig.add_subplot(), title=label("event_title"), outcome_label="sick days")
        fig.canvas.draw() if hasattr(fig.canvas, "draw") else None
        return _figure_words(fig)

    english = draw()
    with language(code):
        shown = draw()
    words = [w for w in english if re.search(r"[A-Za-z]{3}", w) and w != "sick days"]
    assert words, english
    same = [w for w in shown if w in words and w not in ("sick days",)]
    assert not same, f"{code}: the figure still draws English {same}"
    decimals = [w for w in shown if re.fullmatch(r"[−-]?\d+[.,]\d+", w)]
    assert all("," in w for w in decimals), f"{code}: tick labels {decimals} use a decimal point"
