"""Plots: pure functions from a result or a frame to a matplotlib Figure."""

from evaluator.plots.figures import coefficients, specification_curve, trends

__all__ = ["coefficients", "specification_curve", "trends"]
