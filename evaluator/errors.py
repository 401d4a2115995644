"""Named errors and warnings.

Every error raised on user input is one of these classes, and its message says
what was found, where (column, rows, units, parameter) and what to do about it.
Where several problems can be found in one pass they are collected into a single
error, so a user fixes a file once rather than once per problem.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem found in input data.

    Attributes
    ----------
    what : str
        Short statement of the problem, e.g. ``"duplicate unit-period rows"``.
    column : str or None
        The column (as named in the user's file) the problem is in.
    where : str
        The first offending rows or units, already formatted.
    hint : str
        What to do about it.
    """

    what: str
    column: str | None = None
    where: str = ""
    hint: str = ""

    def __str__(self) -> str:
        head = f"column '{self.column}': {self.what}" if self.column else self.what
        parts = [head]
        if self.where:
            parts.append(f"    at {self.where}")
        if self.hint:
            parts.append(f"    fix: {self.hint}")
        return "\n".join(parts)


class EvaluatorError(Exception):
    """Base class of every error evaluator raises on user input."""


def problems_message(problems: Sequence[Problem | str], source: str | None = None) -> str:
    """The one message listing every problem: a count, where, then one numbered problem a line.

    >>> print(problems_message([Problem("duplicate rows", column="id", where="rows 3, 4")], "panel.csv"))
    1 problem found in panel.csv:
    1. column 'id': duplicate rows
        at rows 3, 4
    """
    n = len(problems)
    where = f" in {source}" if source else ""
    head = f"{n} problem{'s' if n != 1 else ''} found{where}:"
    body = "\n".join(f"{i}. {p}" for i, p in enumerate(problems, 1))
    return f"{head}\n{body}"


class DataError(EvaluatorError, ValueError):
    """The input data do not meet their contract in ``data_schemas/``.

    ``problems`` holds every problem found, so that all of them can be fixed at
    once; the message lists them all.
    """

    def __init__(self, problems: Sequence[Problem] | str, *, source: str | None = None):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.source = source
        super().__init__(problems_message(self.problems, source))


class DesignError(EvaluatorError, ValueError):
    """The data are valid but cannot identify the requested estimate.

    For example: no never-treated units with ``control="never"``, a single
    cluster, or a cohort without a pre-treatment period.
    """


class ContractError(EvaluatorError, ValueError):
    """An outcome-contract file is invalid or inconsistent.

    Raised with one message, or with every problem of a contract file (``problems``,
    listed as :class:`DataError` lists them).
    """

    def __init__(self, problems: Sequence[Problem] | str, *, source: str | None = None):
        self.source = source
        if isinstance(problems, str):
            self.problems: tuple[Problem, ...] = (Problem(problems),)
            super().__init__(problems)
        else:
            self.problems = tuple(problems)
            super().__init__(problems_message(self.problems, source))


class ParameterError(EvaluatorError, ValueError):
    """Parameters, input files or the output folder of a run are not usable; nothing was executed."""


class WeightsError(DataError, DesignError):
    """Regression or sampling weights that cannot be used: negative, or zero everywhere.

    One fault, one error wherever weights are checked. It is a :class:`DataError` (the
    fault is in the data) and also a :class:`DesignError`, the type the estimators raised
    for it before validation was shared, so code that catches either keeps working.
    """


class UnbalancedPanelError(DesignError, DataError):
    """A panel estimator that needs every unit in every period was given an unbalanced panel.

    Raised alike by ``staggered_did`` and ``matched_did``. It is a :class:`DesignError`
    (the data are valid, the estimator cannot use them as they are) and also a
    :class:`DataError`, the type ``matched_did`` raised before, so code catching either works.
    """


class EvaluatorWarning(UserWarning):
    """Base class of evaluator's warnings."""


class FewClustersWarning(EvaluatorWarning):
    """Cluster-robust inference with few clusters: analytic intervals under-cover."""


class DroppedUnitsWarning(EvaluatorWarning):
    """Units or rows were dropped, legitimately; the message says how many and why."""


class SmallCohortWarning(EvaluatorWarning):
    """A cohort is so small that its analytic standard error is unreliable."""


class MissingPeriodWarning(SmallCohortWarning):
    """A cohort has no observation in a period that some ATT(g,t) cells need; those cells are left out.

    A :class:`SmallCohortWarning` too (what it was before it had its own type), so filters on either work.
    """


class TrimmingWarning(EvaluatorWarning):
    """Observations were trimmed (e.g. propensity scores at 0 or 1)."""


def format_examples(values: Iterable[object], *, limit: int = 5, label: str = "") -> str:
    """Format the first ``limit`` offending values, saying how many there are in all.

    >>> format_examples([3, 4, 9, 10, 11, 12, 15], label="rows")
    'rows 3, 4, 9, 10, 11 (7 in all)'
    """
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit])
    more = f" ({len(values)} in all)" if len(values) > limit else ""
    prefix = f"{label} " if label else ""
    return f"{prefix}{shown}{more}"
