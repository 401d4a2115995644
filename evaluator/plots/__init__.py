"""Plots: pure functions from a result or a frame to a matplotlib Figure.

Importing this package lets a running Jupyter kernel show the figures returned
(:func:`evaluator.plots.inline.show_figures_inline`), so ``result.plot()`` displays
inline with no ``%matplotlib inline`` first.
"""

from evaluator.plots.figures import coefficients, specification_curve, trends
from evaluator.plots.inline import show_figures_inline

show_figures_inline()

__all__ = ["coefficients", "show_figures_inline", "specification_curve", "trends"]
