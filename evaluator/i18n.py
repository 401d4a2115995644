"""The reader's language: which catalog a report's words come from and how its numbers are written.

A report is written in one of :data:`LANGUAGES` (English, Danish, Swedish, Finnish).
The words live in gettext catalogs under ``evaluator/locale/<lang>/LC_MESSAGES/evaluator.po``,
extracted with Babel from the package and its templates (``make catalogs``); English is
the source language and has no catalog. The catalogs are read from the ``.po`` files when
first needed (Babel compiles them in memory), so an editable install needs no build step.

The language is a context, not an argument threaded through every function: a report
chapter, a template and :mod:`evaluator.formatting` all read :func:`current`, which
:func:`language` sets for a block::

    with language("da"):
        html = reporting.headline_box(fit, verdict)   # Danish words, "1.234,5"

Python code marks a reader's words with :func:`gettext` (imported as ``_``), or with
:func:`N_` where the words are looked up later (a table of labels); templates use
``{% trans %}`` blocks and ``_()``. Placeholders are named (``%(n)s``), so a translation
may put them in any order.

Examples
--------
>>> from evaluator.i18n import gettext as _, language
>>> _("million")
'million'
>>> with language("da"):
...     _("million")
'mio.'
>>> current()
'en'
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

__all__ = [
    "BABEL_LOCALES",
    "DOMAIN",
    "LANGUAGES",
    "LOCALE_DIR",
    "N_",
    "activate",
    "catalog_path",
    "check_language",
    "current",
    "gettext",
    "language",
    "ngettext",
    "source_messages",
    "translations",
]

#: The languages a report can be written in: code -> the language's own name.
LANGUAGES: dict[str, str] = {"en": "English", "da": "dansk", "sv": "svenska", "fi": "suomi"}
#: The Babel (CLDR) locale of each language: separators, currency and date formats.
BABEL_LOCALES: dict[str, str] = {"en": "en_GB", "da": "da_DK", "sv": "sv_SE", "fi": "fi_FI"}
#: The gettext domain of evaluator's catalogs.
DOMAIN = "evaluator"
#: Where the catalogs live: ``LOCALE_DIR / <lang> / "LC_MESSAGES" / "evaluator.po"``.
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

_current: ContextVar[str | None] = ContextVar("evaluator_language", default=None)
_default = "en"  # the process's language (activate), used outside any `with language(...)` block


def check_language(code: Any, *, parameter: str = "language") -> str:
    """``code`` if it is one of :data:`LANGUAGES`, else a :class:`ValueError` that lists them.

    >>> check_language("sv")
    'sv'
    >>> check_language("no")
    Traceback (most recent call last):
    ...
    ValueError: language='no' is not available: use one of 'en' (English), 'da' (dansk), 'sv' (svenska), 'fi' (suomi)
    """
    if isinstance(code, str) and code in LANGUAGES:
        return code
    known = ", ".join(f"{k!r} ({v})" for k, v in LANGUAGES.items())
    raise ValueError(f"{parameter}={code!r} is not available: use one of {known}")


def current() -> str:
    """The language of the text being written now: that of the enclosing :func:`language` block, else
    the one :func:`activate` set, else ``"en"``."""
    code = _current.get()
    return _default if code is None else code


def activate(code: str) -> None:
    """Write in language ``code`` from now on, in this process (a report notebook's first step).

    A notebook cannot use a ``with`` block across its cells (each cell runs in a context of
    its own), so the notebook activates its ``language`` parameter once, as Django's
    ``translation.activate`` does.

    Examples
    --------
    >>> activate("sv"); current()
    'sv'
    >>> activate("en")
    """
    global _default
    _default = check_language(code)


@contextmanager
def language(code: str) -> Iterator[None]:
    """Write in language ``code`` inside the ``with`` block (words and number formats); restored after it.

    Examples
    --------
    >>> with language("fi"):
    ...     current()
    'fi'
    """
    token = _current.set(check_language(code))
    try:
        yield
    finally:
        _current.reset(token)


def catalog_path(code: str) -> Path:
    """The ``.po`` file of language ``code``."""
    return LOCALE_DIR / code / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def translations(code: str) -> Any:
    """The gettext translations of language ``code``: its ``.po`` file compiled in memory (English: none).

    A missing catalog is an error rather than a silent fall-back to English: a page that
    says it is Danish must be Danish.
    """
    import gettext as _gettext

    check_language(code)
    if code == "en":
        return _gettext.NullTranslations()
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    path = catalog_path(code)
    if not path.is_file():
        raise FileNotFoundError(f"no catalog for language {code!r} at {path.name}; run `make catalogs`")
    with path.open("rb") as fh:
        catalog = read_po(fh, locale=BABEL_LOCALES[code], domain=DOMAIN)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return _gettext.GNUTranslations(buf)


def gettext(message: str) -> str:
    """``message`` in the current language (itself in English, or where a catalog lacks it)."""
    code = current()
    return message if code == "en" else translations(code).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """The singular or plural of a message for count ``n``, in the current language."""
    code = current()
    if code == "en":
        return singular if n == 1 else plural
    return translations(code).ngettext(singular, plural, n)


def source_messages(root: str | Path | None = None) -> dict[str, set[str]]:
    """Every message the package and its templates use, as ``make catalogs`` extracts it: msgid -> files.

    ``root`` is the repository (default: the one holding this package). It needs Babel's
    extraction and jinja2, so it serves the catalog tests and the translators, not a report.
    """
    from babel.messages.extract import extract_from_dir
    from babel.messages.frontend import parse_mapping_cfg

    base = Path(root) if root is not None else LOCALE_DIR.parents[1]
    with open(LOCALE_DIR / "babel.cfg", encoding="utf-8") as fh:
        method_map, options_map = parse_mapping_cfg(fh)
    out: dict[str, set[str]] = {}
    for filename, _lineno, message, _comments, _context in extract_from_dir(str(base), method_map, options_map):
        msgid = message[0] if isinstance(message, tuple) else message  # a plural message is known by its singular
        if msgid:
            out.setdefault(msgid, set()).add(filename)
    return out


def N_(message: str) -> str:
    """Mark ``message`` for the catalogs without translating it now (it is translated where it is shown)."""
    return message
