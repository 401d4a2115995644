"""The shared design layer of the estimators: argument checks and input validation.

Every estimator checks its options with :func:`choice` and validates its data
frame through the rule functions of :mod:`evaluator.data.validate`, the ones
``load_panel`` and ``load_individuals`` use, so one fault raises one error with
one wording whichever door the data came in by.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from evaluator.data.validate import (
    infinite_values,
    missing_columns,
    missing_values,
    non_numeric,
    require_frame,
    where_rows,
    where_units,
)
from evaluator.errors import DataError, Problem, WeightsError

__all__ = ["as_list", "check_frame", "check_weights", "choice", "one_column", "weights_problems"]


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


def check_weights(
    data: pd.DataFrame,
    column: str,
    *,
    unit: str | None = None,
    unit_codes: np.ndarray | None = None,
    unit_labels: Sequence[Any] | np.ndarray | None = None,
) -> np.ndarray:
    """Validate a column of sampling weights and return it as floats, one per row.

    The one check of weights for every estimator that takes them (``staggered_did``,
    ``did``, ``event_study``), so a bad weight raises one error with one wording. It
    finds, and reports together in one :class:`~evaluator.errors.WeightsError`, every
    problem of the column: not numeric; missing or infinite values; negative weights;
    with ``unit``, weights that vary within a unit (sampling weights belong to the unit
    of a panel, as R ``did``'s ``weightsname``); and weights that are zero everywhere.
    Data rows are counted from 1. The column itself must exist (``check_frame`` says so
    when it does not).

    Parameters
    ----------
    data : pandas.DataFrame
    column : str
        The weights column.
    unit : str, optional
        Unit column of a panel: the weights must then be constant within each unit.
    unit_codes, unit_labels : array, optional
        The unit of each row as integer codes ``0..n_units-1`` and the unit id of each
        code, when the caller has them already (saves factorising ``unit`` again).

    Returns
    -------
    numpy.ndarray
        The weights of the rows, as float64.

    Raises
    ------
    WeightsError
        Listing every problem found.

    Examples
    --------
    >>> d = pd.DataFrame({"id": [1, 1, 2, 2, 3, 3], "w": [1.0, 1.0, 2.0, 2.5, -1.0, -1.0]})
    >>> check_weights(d.iloc[:2], "w", unit="id")
    array([1., 1.])
    >>> check_weights(d, "w", unit="id")  # doctest: +NORMALIZE_WHITESPACE
    Traceback (most recent call last):
    ...
    evaluator.errors.WeightsError: 2 problems found:
    1. column 'w': 2 negative weight(s); weights must be >= 0
        at data rows 5, 6
        fix: weights cannot be negative: correct or drop those rows
    2. column 'w': the weights vary within 1 of 3 units; sampling weights belong to a unit of the panel
        at units 2
        fix: give each unit one weight in every period, e.g. data['w'] = data.groupby('id')['w'].transform('first')
    """
    col = data[column]
    if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
        raise WeightsError(non_numeric(data, [column]))
    w = col.to_numpy(dtype=float)
    na, inf, neg = np.isnan(w), np.isinf(w), w < 0
    varying = None
    ok = np.isfinite(w)
    if unit is not None:
        if unit_codes is None:
            unit_codes, unit_labels = pd.factorize(data[unit], sort=False)
        codes = np.asarray(unit_codes)
        labels = np.asarray(unit_labels)
        # one valid weight of each unit (the last one written); a unit whose weights vary differs from it somewhere
        some = np.full(len(labels), np.nan)
        if ok.all():
            some[codes] = w
            differs = w != some[codes]
        else:
            some[codes[ok]] = w[ok]
            differs = ok & (w != some[codes])
        bad = np.unique(codes[differs]) if differs.any() else np.empty(0, dtype=np.int64)
        varying = (bad.size, len(labels), where_units(labels[bad]))
    problems = weights_problems(
        column,
        rows=len(w),
        missing=(int(na.sum()), where_rows(na)),
        infinite=(int(inf.sum()), where_rows(inf)),
        negative=(int(neg.sum()), where_rows(neg)),
        varying=varying,
        unit=unit,
        positive=bool((w > 0).any()),
    )
    if problems:
        raise WeightsError(problems)
    return w


def weights_problems(
    column: str,
    *,
    rows: int,
    missing: tuple[int, str],
    infinite: tuple[int, str],
    negative: tuple[int, str],
    varying: tuple[int, int, str] | None,
    unit: str | None,
    positive: bool,
) -> list[Problem]:
    """The problems of a column of sampling weights, from what a check counted: one wording wherever they are checked.

    :func:`check_weights` counts them on a frame; out of core
    (:mod:`evaluator.estimators.staggered_ooc`) a pass counts them block by block.

    Parameters
    ----------
    column : str
        The weights column.
    rows : int
        The number of data rows.
    missing, infinite, negative : (int, str)
        How many rows have a missing, an infinite or a negative weight, and which (formatted, e.g.
        :func:`~evaluator.data.validate.where_rows`).
    varying : (int, int, str) or None
        With a unit column: how many units have weights that vary, of how many units, and which (formatted).
    unit : str or None
        The unit column (named in the fix).
    positive : bool
        Whether any weight is positive.

    Returns
    -------
    list of Problem
        Empty when the weights are fine.

    Examples
    --------
    >>> print(weights_problems("w", rows=4, missing=(0, ""), infinite=(0, ""), negative=(1, "data rows 2"),
    ...                        varying=None, unit=None, positive=True)[0])
    column 'w': 1 negative weight(s); weights must be >= 0
        at data rows 2
        fix: weights cannot be negative: correct or drop those rows
    """
    problems: list[Problem] = []
    if missing[0]:
        problems.append(
            Problem(
                f"{missing[0]} missing weight(s) out of {rows}",
                column=column,
                where=missing[1],
                hint="give every row a weight (0 leaves a unit out of every mean), or drop those rows or units "
                "explicitly; rows are never dropped silently",
            )
        )
    if infinite[0]:
        problems.append(
            Problem(
                f"{infinite[0]} infinite weight(s)",
                column=column,
                where=infinite[1],
                hint="replace them with finite weights, or drop those rows explicitly",
            )
        )
    if negative[0]:
        problems.append(
            Problem(
                f"{negative[0]} negative weight(s); weights must be >= 0",
                column=column,
                where=negative[1],
                hint="weights cannot be negative: correct or drop those rows",
            )
        )
    if varying is not None and varying[0]:
        problems.append(
            Problem(
                f"the weights vary within {varying[0]} of {varying[1]} units; sampling weights belong to a unit "
                "of the panel",
                column=column,
                where=varying[2],
                hint=f"give each unit one weight in every period, e.g. data[{column!r}] = "
                f"data.groupby({unit!r})[{column!r}].transform('first')",
            )
        )
    if not problems and not positive:
        problems.append(Problem("the weights are zero everywhere", column=column, hint="give positive weights"))
    return problems
