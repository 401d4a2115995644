"""Results: the one face every fit shows (tidy table, summary, HTML, plot); they hold no numerics."""

from evaluator.results.base import TIDY_COLUMNS, Result, tidy_table

__all__ = ["TIDY_COLUMNS", "Result", "tidy_table"]
