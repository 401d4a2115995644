"""jinja2 templates for results shown in a notebook (autoescape on: every value is escaped)."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

__all__ = ["render"]


@lru_cache(maxsize=1)
def _environment() -> Any:
    import jinja2

    return jinja2.Environment(
        loader=jinja2.PackageLoader("evaluator.results", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )


def render(name: str, **context: Any) -> str:
    """Render template ``name`` of this folder with ``context``.

    Tables already rendered to HTML by pandas (escaped there) are passed as ``(caption, html)``
    pairs and marked safe in the template.
    """
    return _environment().get_template(name).render(**context).strip()
