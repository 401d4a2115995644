"""The shared design layer of the estimators: argument checks and input validation.

Every estimator checks its options with :func:`choice` and validates its data
frame through the rule functions of :mod:`evaluator.data.validate`, the ones
``load_panel`` and ``load_individuals`` use, so one fault raises one error with
one wording whichever door the data came in by.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import pandas as pd

from evaluator.data.validate import infinite_values, missing_columns, missing_values, non_numeric, require_frame
from evaluator.errors import DataError

__all__ = ["as_list", "check_frame", "choice", "one_column"]


def choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    """Raise ``ValueError`` naming the allowed values unless ``value`` is one of them.

    Examples
    --------
    >>> choice("method", "dr", ("dr", "ipw"))
    >>> choice("method", "ols", ("dr", "ipw"))
    Traceback (most recent call last):
    ...
    ValueError: method='ols' is not allowed; use one of 'dr', 'ipw'
    """
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; use one of {', '.join(repr(a) for a in allowed)}")


def one_column(**arguments: Any) -> None:
    """Raise one ``TypeError`` naming every argument that should be one column name and is not.

    ``None`` (an optional column left out) is fine. A list where one column is expected
    used to surface as pandas' ``unhashable type: 'list'``; this says which argument and
    what to do.

    Examples
    --------
    >>> one_column(outcome="y", cluster=None)
    >>> one_column(outcome=["y1", "y2"], unit="id")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: outcome=['y1', 'y2'] is a list, but one column name is expected: estimate one outcome per call ...
    """
    problems = []
    for name, value in arguments.items():
        if value is None or (isinstance(value, Hashable) and not isinstance(value, (tuple, frozenset))):
            continue
        what = f"{name}={value!r} is a {type(value).__name__}, but one column name is expected"
        if name == "outcome":
            what += ": estimate one outcome per call (a batch file's grid can vary the outcome)"
        else:
            what += ": pass the name of one column"
        problems.append(what)
    if problems:
        raise TypeError("; ".join(problems))


def as_list(x: str | Sequence[str] | None) -> list[str]:
    """Column names as a list: ``None`` gives ``[]``, one name gives ``[name]``.

    Examples
    --------
    >>> as_list("age"), as_list(None), as_list(("age", "sex"))
    (['age'], [], ['age', 'sex'])
    """
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return list(x)


def check_frame(
    data: Any,
    *,
    roles: Mapping[str, str],
    covariates: Sequence[str] = (),
    complete: Sequence[str] = (),
    numeric: Sequence[str] = (),
    finite: Sequence[str] = (),
) -> None:
    """The checks every estimator makes of its frame before it reads a number, in one order.

    A DataFrame; every role column (``{role: column}``) and covariate present; the
    ``complete`` columns without missing values and the ``numeric`` ones numbers (both
    reported together); then the ``finite`` ones without infinities. Each step raises
    one :class:`~evaluator.errors.DataError` listing every problem of that step, with
    data rows counted from 1, through the rule functions of :mod:`evaluator.data.validate`.

    Examples
    --------
    >>> import pandas as pd
    >>> check_frame(pd.DataFrame({"y": [1.0]}), roles={"outcome": "y", "unit": "id"})
    Traceback (most recent call last):
    ...
    evaluator.errors.DataError: 1 problem found:
    1. column 'id': column not found (unit='id')
        fix: pass the column names of your data; the data have 'y'
    """
    require_frame(data)
    frame: pd.DataFrame = data
    labels = [*(f"{r}={c!r}" for r, c in roles.items()), *(f"covariate {c!r}" for c in covariates)]
    problems = missing_columns(frame, [*roles.values(), *covariates], labels=labels)
    if problems:
        raise DataError(problems)
    problems = missing_values(frame, complete) + non_numeric(frame, numeric)
    if problems:
        raise DataError(problems)
    problems = infinite_values(frame, finite)
    if problems:
        raise DataError(problems)
