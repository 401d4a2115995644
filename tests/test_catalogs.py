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
