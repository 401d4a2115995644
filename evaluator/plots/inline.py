"""Figures show themselves in Jupyter, with no ``%matplotlib inline`` first.

Our figures are made without pyplot (no global state, any backend). IPython shows an
object through a formatter registered for its type, and only ``%matplotlib inline``
(or importing pyplot inside a kernel) registers one for matplotlib's Figure; without
it, a kernel run by JupyterLab, nbconvert or papermill shows a figure we return as
``<Figure size 930x400 with 1 Axes>``. :func:`show_figures_inline` registers the PNG
formatter that ``%matplotlib inline`` would, and only where no formatter for Figure is
registered yet, so a backend the user chose keeps its own and no figure shows twice.
``evaluator.plots`` calls it when it is imported, which every ``plot()`` does.
"""

from __future__ import annotations

import io
import sys
from typing import Any

__all__ = ["NOTEBOOK_DPI", "show_figures_inline"]

#: Resolution of a figure shown in a notebook (the inline backend's default).
NOTEBOOK_DPI = 100


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=NOTEBOOK_DPI, bbox_inches="tight")
    return buf.getvalue()


def show_figures_inline() -> bool:
    """Let a running IPython kernel show matplotlib Figures as PNG; True when this registered it.

    Does nothing outside IPython, or when a formatter for Figure is already registered
    (``%matplotlib inline``, another backend or the user's own).

    Examples
    --------
    >>> show_figures_inline()  # not inside IPython here: nothing to do
    False
    """
    if "IPython" not in sys.modules:  # never import IPython just to find out
        return False
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return False
    from matplotlib.figure import Figure

    png = shell.display_formatter.formatters["image/png"]
    try:
        png.lookup_by_type(Figure)
        return False
    except KeyError:
        png.for_type(Figure, _png)
        return True
