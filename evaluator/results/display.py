"""One face for everything a user reads: a text summary, HTML in Jupyter, a tidy frame and a JSON-safe dict.

A fitted result, a match, a settlement and a socio-economic return are read the
same way: ``summary()`` gives text, ``_repr_html_()`` shows it in a notebook,
``to_frame()`` gives the tidy table, ``to_dict()`` / ``to_json()`` a sidecar.
Subclasses say *what* to show (title, headline lines, facts, tables, notes);
this class says *how*, once.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pandas as pd

from evaluator.formatting import fmt

__all__ = ["Display", "Shown"]

#: A table to show: (caption or "", frame, formatter for floats or a per-column formatter dict).
Shown = tuple[str, pd.DataFrame, Callable[[float], str] | dict[str, Callable[[Any], str]] | None]


class Display:
    """Mixin that renders a result from a few hooks.

    Hooks a subclass provides: ``_title()``; optionally ``_subtitle()`` (plain text shown in
    ``<code>`` beside the title, e.g. the outcome), ``_headline()`` (lines under the title),
    ``_facts()`` (label/value pairs), ``_tables()`` (what to show below), ``_closing()`` (a
    last paragraph) and ``_notes()``; and ``to_frame()`` / ``to_dict()``.

    Examples
    --------
    >>> import pandas as pd
    >>> class Counts(Display):
    ...     def _title(self): return "Counts"
    ...     def _facts(self): return [("Units", "12")]
    ...     def to_frame(self): return pd.DataFrame({"group": ["a"], "n": [12]})
    ...     def to_dict(self): return {"n": 12}
    >>> print(Counts().summary())
    Counts
    ======
    Units: 12
    <BLANKLINE>
    group  n
        a 12
    """

    # -- hooks ---------------------------------------------------------------------------
    def _title(self) -> str:
        raise NotImplementedError

    def _subtitle(self) -> tuple[str, str] | None:
        """(label, value) shown after the title in HTML, e.g. ("outcome", "sick_days")."""
        return None

    def _headline(self) -> list[str]:
        return []

    def _facts(self) -> list[tuple[str, str]]:
        return []

    def _tables(self) -> list[Shown]:
        return [("", self.to_frame(), fmt)]

    def _closing(self) -> str:
        return ""

    def _notes(self) -> Sequence[str]:
        return tuple(getattr(self, "notes", ()) or ())

    def _css_class(self) -> str:
        return "evaluator-" + type(self).__name__.lower()

    def to_frame(self) -> pd.DataFrame:
        """The tidy table."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary of the result (for report sidecars)."""
        raise NotImplementedError

    # -- renderings ------------------------------------------------------------------------
    def to_json(self, **kwargs: Any) -> str:
        """The :meth:`to_dict` content as a JSON string."""
        return json.dumps(self.to_dict(), **kwargs)

    def summary(self) -> str:
        """A plain-text summary: title, headline, facts, tables and notes."""
        title = self._title()
        sub = self._subtitle()
        head = [title, "=" * len(title), f"{sub[0].capitalize()}: {sub[1]}" if sub else ""]
        head += [*self._headline(), *(f"{k}: {v}" for k, v in self._facts())]
        parts = ["\n".join(h for h in head if h)]
        with pd.option_context("display.width", 120, "display.max_columns", 20, "display.max_rows", 200):
            for caption, frame, formatter in self._tables():
                text = _frame_text(frame, formatter)
                parts.append(f"{caption}:\n{text}" if caption else text)
        if self._closing():
            parts.append(self._closing())
        notes = [f"Note: {n}" for n in self._notes()]
        if notes:
            parts.append("\n".join(notes))
        return "\n\n".join(parts)

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        from evaluator.results.templates import render

        tables = [(caption, _frame_html(frame, formatter)) for caption, frame, formatter in self._tables()]
        return render(
            "display.html.j2",
            css_class=self._css_class(),
            title=self._title(),
            subtitle=self._subtitle(),
            headline=self._headline(),
            facts=self._facts(),
            tables=tables,
            closing=self._closing(),
            notes=list(self._notes()),
        )


def _frame_text(frame: pd.DataFrame, formatter: Any) -> str:
    if isinstance(formatter, dict):
        return frame.to_string(index=False, formatters=formatter)
    if formatter is None:
        return frame.to_string(index=False)
    return frame.to_string(index=False, float_format=lambda v: formatter(v))


def _frame_html(frame: pd.DataFrame, formatter: Any) -> str:
    if isinstance(formatter, dict):
        return frame.to_html(index=False, formatters=formatter, escape=True, border=0)
    if formatter is None:
        return frame.to_html(index=False, escape=True, border=0)
    return frame.to_html(index=False, float_format=lambda v: formatter(v), escape=True, border=0)
