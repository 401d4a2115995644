"""HTML pieces shared by every chapter: the template environment, figures, tables and notes.

Every piece of report HTML is a jinja2 template under ``reporting/templates/``
(``pieces/`` for figures, notes and fact tables, ``chapters/`` for one chapter each,
``sentences/`` for plain-text sentences). Python computes the numbers and decides
which case applies; the words a reader sees are written in the templates.

Two conventions of the templates, so that they can be laid out on several lines and
still render to the compact HTML the reports have always had:

* A line break and the indentation around it disappear next to a tag or a ``{% %}``
  statement and between two ``{{ }}`` expressions, and read as one space between words
  (see :func:`_join_lines`). Text that needs a space after a statement keeps it on the
  statement's line: ``{% if x %} more{% endif %}``.
* Values are escaped as :func:`html.escape` does (``'`` as ``&#x27;``), in every
  template except plain-text ones (``*.txt.j2``), which are not escaped.
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Sequence
from contextlib import AbstractContextManager
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from evaluator.formatting import count, localized, money, num, p_phrase, p_value, percent
from evaluator.i18n import current, translations
from evaluator.i18n import gettext as _

__all__ = [
    "Html",
    "esc",
    "figure_html",
    "figure_theme",
    "label",
    "labels",
    "notes_html",
    "render",
    "render_macro",
    "render_text",
    "table_html",
]

esc = html.escape


# -- display helpers ---------------------------------------------------------------------------------------------------
class Html(str):
    """A string of HTML that Jupyter displays rendered (``display(Html("<b>x</b>"))``).

    It also has ``__html__``, so a template shows it as markup rather than escaping it again.
    """

    def _repr_html_(self) -> str:
        return str(self)

    def __html__(self) -> str:
        return str(self)


# -- the template environment ------------------------------------------------------------------------------------------
_BREAK = re.compile(r"[ \t]*\n\s*")


def _join_lines(source: str) -> str:
    """Template source with its line breaks removed: none next to markup, one space between words.

    >>> _join_lines("<p>\\n  Two\\n  lines {{ x }}\\n  {% if y %}\\n    more\\n  {% endif %}\\n</p>\\n")
    '<p>Two lines {{ x }}{% if y %}more{% endif %}</p>'
    >>> _join_lines("{{ table }}\\n{{ notes }}\\n{{ n }}\\nunits")
    '{{ table }}{{ notes }}{{ n }} units'
    """

    def joined(m: re.Match[str]) -> str:
        before, after = source[: m.start()], source[m.end() :]
        if not before or not after or before.endswith((">", "%}", "#}")) or after.startswith(("<", "{%", "{#")):
            return ""
        if before.endswith("}}") and after.startswith("{{"):  # one piece per line: {{ table }} then {{ notes }}
            return ""
        return " "

    return _BREAK.sub(joined, source)


def _join_lines_extension() -> Any:
    import jinja2.ext

    class JoinLines(jinja2.ext.Extension):
        """The line-joining convention of the module docstring, applied before jinja2 parses a template."""

        def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
            return _join_lines(source)

    return JoinLines


def __getattr__(name: str) -> Any:
    # ``evaluator.reporting.html.JoinLines`` for Babel's extraction (babel.cfg), without importing jinja2 here
    if name == "JoinLines":
        return _join_lines_extension()
    raise AttributeError(name)


def _jinja() -> Any:
    """The template environment of the current language (:func:`evaluator.i18n.current`)."""
    return _jinja_for(current())


@cache
def _jinja_for(code: str) -> Any:
    import jinja2
    import markupsafe

    @jinja2.pass_eval_context
    def finalize(ctx: Any, value: Any) -> Any:
        # html.escape rather than markupsafe's escape, so apostrophes read &#x27; as in every report so far
        if not ctx.autoescape or hasattr(value, "__html__"):
            return value
        return markupsafe.Markup(html.escape(str(value)))

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("evaluator.reporting", "templates"),
        autoescape=jinja2.select_autoescape(disabled_extensions=("txt.j2",), default=True, default_for_string=True),
        finalize=finalize,
        extensions=[_join_lines_extension(), "jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
    )
    # {% trans %} blocks read as one line, as the rest of a template does; _() and {% trans %} format %(name)s
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(translations(code), newstyle=True)
    env.globals["language"] = code
    env.filters.update(
        num=num, p_phrase=p_phrase, p_value=p_value, count=count, money=money, percent=percent, thousands=_thousands
    )
    return env


def _thousands(n: Any) -> str:
    return localized(f"{n:,}")


def render(name: str, **context: Any) -> Html:
    """Render the HTML template ``name`` (relative to ``reporting/templates``) with ``context``.

    Values are escaped; :class:`Html` values (pieces rendered already) are inserted as they are.

    Examples
    --------
    >>> render("pieces/notes.html.j2", notes=["a < b"], title="Notes")
    "<div class='evaluator-notes'><p><b>Notes</b></p><ul><li>a &lt; b</li></ul></div>"
    """
    return Html(_jinja().get_template(name).render(**context))


def render_macro(template: str, macro: str, /, *args: Any, **kwargs: Any) -> Html:
    """Call macro ``macro`` of the HTML template ``template`` (one chapter's file holds its pieces as macros).

    Examples
    --------
    >>> render_macro("pieces/macros.html.j2", "footnote", "3 < 5")
    '<p><small>3 &lt; 5</small></p>'
    """
    return Html(getattr(_jinja().get_template(template).module, macro)(*args, **kwargs))


def label(name: str, /, *args: Any) -> str:
    """A plain-text label (axis, legend, table header) from ``chapters/labels.txt.j2``: macro ``name``.

    Examples
    --------
    >>> label("npv_column", "DKK")
    'net present value (DKK, illustrative)'
    """
    return str(getattr(labels(), name)(*args))


def labels() -> Any:
    """The module of ``chapters/labels.txt.j2``: its macros, and its dictionaries of table headers.

    Examples
    --------
    >>> labels().robustness_columns["ci_low"]
    'CI low'
    """
    return _jinja().get_template("chapters/labels.txt.j2").module


def render_text(name: str, **context: Any) -> str:
    """Render the plain-text template ``name`` (a ``*.txt.j2`` file: nothing is escaped)."""
    return str(_jinja().get_template(name).render(**context))


# -- pieces ------------------------------------------------------------------------------------------------------------
def figure_theme() -> AbstractContextManager[None]:
    """The report theme for drawing figures (:func:`evaluator.plots.figures.report_theme`), imported lazily.

    Chapters draw and save their figures inside ``with figure_theme():``; importing this module
    loads neither matplotlib nor seaborn.
    """
    from evaluator.plots.figures import report_theme

    return report_theme()


def figure_html(fig: Any, caption: str, *, css_class: str = "", alt: str = "") -> Html:
    """A figure as an HTML ``<figure>`` with the PNG embedded and an escaped caption; closes ``fig``.

    The PNG is drawn under the report theme (:func:`evaluator.plots.figures.report_theme`).
    The numbers of people behind the figure's points, bars and bins, where the plot recorded
    them (:func:`evaluator.plots.figures.record_counts`), are written on its ``<img>`` as
    ``data-counts`` (JSON, attribute-escaped), so
    :func:`evaluator.reporting.disclosure.disclosure_check` can check them.

    Examples
    --------
    >>> from matplotlib.figure import Figure
    >>> from evaluator.plots.figures import record_counts
    >>> fig = Figure(figsize=(2, 2)); _ = fig.add_subplot().plot([0, 1])
    >>> out = figure_html(fig, "A <line>", css_class="demo")
    >>> out.startswith("<figure class='demo'>"), "A &lt;line&gt;" in out
    (True, True)
    >>> fig = Figure(figsize=(2, 2)); record_counts(fig, "points", [12, 40])
    >>> "data-counts='{&quot;points&quot;: [12, 40]}'" in figure_html(fig, "n")
    True
    """
    import json

    import matplotlib.pyplot as plt

    from evaluator.plots.figures import recorded_counts

    buf = io.BytesIO()
    with figure_theme():  # savefig reads a few settings (face colour) at save time
        fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)  # a no-op for figures pyplot does not manage; stops inline backends from showing it twice
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    recorded = recorded_counts(fig)
    counts = json.dumps(recorded) if recorded else ""
    return render(
        "pieces/figure.html.j2", css_class=css_class, data=data, alt=alt or caption, caption=caption, counts=counts
    )


_MONEY = re.compile(r"\b([A-Z]{3}) (?=-?\d)")


def table_html(frame: pd.DataFrame, *, css_class: str = "evaluator-table", index: bool = False) -> Html:
    """A DataFrame as an escaped HTML table: numbers with 3 significant digits, p-values with 2 ("< 0.001" below).

    The markup is pandas' own (``DataFrame.to_html``, escaping on), not a template.
    """

    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            return num(float(v), 3)
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and abs(v) >= 10_000:
            return localized(f"{int(v):,}")  # counts get separators; years and period numbers (below 10,000) do not
        return _MONEY.sub("\\1\u00a0", str(v))  # "EUR 1,500,000" never breaks after the currency

    def pv(v: Any) -> str:
        return p_value(v, 2).replace("< ", "<\u00a0")  # "< 0.001" never wraps in a narrow column

    # the p-value column by its header, also when the header is in the page's language ("p-værdi")
    p_headers = {"p-value", "p", _("p-value").lower()}
    shown = frame.copy()
    for c in shown.columns:
        shown[c] = shown[c].map(pv if str(c).replace("_", "-").lower() in p_headers else fmt)
    return Html(shown.to_html(index=index, escape=True, border=0, classes=css_class, na_rep="."))


def notes_html(notes: Sequence[str], *, title: str | None = None) -> Html:
    """A short list of notes (caveats, warnings raised by the estimators), each once; empty when there are none.

    ``title`` defaults to "Notes" in the reader's language.
    """
    return render("pieces/notes.html.j2", notes=list(notes), title=_("Notes") if title is None else title)
