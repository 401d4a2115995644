"""Validation rules for input frames: one function per rule, shared by the loaders and the estimators.

``load_panel`` / ``load_individuals`` and every estimator's preparation call
these, so a fault is found, numbered and named the same way whichever door the
data came in by:

- rows are numbered as the user sees them, **data rows counted from 1** (the
  first row after a CSV header is row 1; for a DataFrame, position + 1),
  whatever the frame's index; a rule about units names the **unit ids**;
- a fault in the data raises :class:`~evaluator.errors.DataError` (collected
  as :class:`~evaluator.errors.Problem` items, so all are fixed at once); data
  that are valid but cannot identify an estimate are the estimator's
  :class:`~evaluator.errors.DesignError`.

The checks are vectorised: the Table Schema part of a file's contract is checked
here in code rather than by frictionless, which validates row by row and takes
minutes on a register extract.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from evaluator.errors import DataError, Problem, format_examples

__all__ = [
    "data_rows",
    "duplicate_rows",
    "infinite_problem",
    "infinite_values",
    "missing_columns",
    "missing_problem",
    "missing_values",
    "non_numeric",
    "panel_balance",
    "require_frame",
    "varies_within",
    "where_rows",
    "where_units",
]


def data_rows(mask: np.ndarray | pd.Series) -> list[int]:
    """1-based data-row numbers where ``mask`` is true (positions, not index labels).

    Examples
    --------
    >>> data_rows(np.array([False, True, False, True]))
    [2, 4]
    """
    return (np.flatnonzero(np.asarray(mask)) + 1).tolist()


def where_rows(mask: np.ndarray | pd.Series) -> str:
    """The first offending data rows, formatted for a :class:`~evaluator.errors.Problem`.

    Examples
    --------
    >>> where_rows(np.array([True, False, True]))
    'data rows 1, 3'
    """
    return format_examples(data_rows(mask), label="data rows")


def where_units(values: pd.Index | Sequence[Any] | np.ndarray) -> str:
    """The first offending unit ids, formatted for a :class:`~evaluator.errors.Problem`.

    Examples
    --------
    >>> where_units([4, 9])
    'units 4, 9'
    """
    return format_examples(list(values), label="units")


def require_frame(data: Any) -> None:
    """Raise :class:`~evaluator.errors.DataError` unless ``data`` is a pandas DataFrame.

    Examples
    --------
    >>> require_frame([1, 2])
    Traceback (most recent call last):
    ...
    evaluator.errors.DataError: 1 problem found:
    1. data must be a pandas DataFrame; got list
    """
    if not isinstance(data, pd.DataFrame):
        raise DataError(f"data must be a pandas DataFrame; got {type(data).__name__}")


def missing_columns(frame: pd.DataFrame, columns: Sequence[str], *, labels: Sequence[str] = ()) -> list[Problem]:
    """One problem per column of ``columns`` the frame does not have, listing the columns it has.

    ``labels`` (one per column, optional) say what the column was asked for, e.g.
    ``"outcome='y'"`` or ``"covariate 'age'"``.

    Examples
    --------
    >>> print(missing_columns(pd.DataFrame({"y": [1.0]}), ["y", "x"])[0])
    column 'x': column not found
        fix: pass the column names of your data; the data have 'y'
    """
    have = format_examples(map(repr, frame.columns), limit=12)
    label_of = dict(zip(columns, labels, strict=False))
    out = []
    for c in dict.fromkeys(columns):
        if c not in frame.columns:
            what = f"column not found ({label_of[c]})" if c in label_of else "column not found"
            out.append(Problem(what, column=c, hint=f"pass the column names of your data; the data have {have}"))
    return out


def missing_values(
    frame: pd.DataFrame,
    columns: Sequence[str],
    *,
    before: str = "estimating",
    role: str | None = None,
    exclude: np.ndarray | None = None,
) -> list[Problem]:
    """One problem per column of ``columns`` holding missing values, with the data rows.

    Parameters
    ----------
    frame : pandas.DataFrame
    columns : list of str
        Columns that must be complete (duplicates are checked once).
    before : str
        What the fix must come before, for the hint ("estimating", "matching", "loading").
    role : str, optional
        The schema role of the column(s), for the loaders: named in the message.
    exclude : bool array, optional
        Rows already reported for another fault (e.g. a value that is not a number).

    Examples
    --------
    >>> d = pd.DataFrame({"x": [1.0, None, 3.0]})
    >>> print(missing_values(d, ["x"])[0])
    column 'x': 1 missing value(s) out of 3
        at data rows 2
        fix: impute or drop the rows with missing values explicitly before estimating; rows are never dropped silently
    """
    out = []
    for c in dict.fromkeys(columns):
        na = frame[c].isna().to_numpy()
        if exclude is not None:
            na = na & ~exclude
        if na.any():
            what = f"in required role '{role}'" if role is not None else f"out of {len(frame)}"
            out.append(missing_problem(c, int(na.sum()), what=what, where=where_rows(na), before=before))
    return out


def missing_problem(column: str, count: int, *, what: str, where: str, before: str = "estimating") -> Problem:
    """The problem of ``count`` missing values of ``column``: one wording in memory and out of core.

    ``what`` follows the count (``"out of 1000"``, ``"in required role 'unit'"``), ``where`` names
    the rows and ``before`` what the fix must come before.

    Examples
    --------
    >>> print(missing_problem("y", 2, what="out of 9", where="data rows 3, 7"))
    column 'y': 2 missing value(s) out of 9
        at data rows 3, 7
        fix: impute or drop the rows with missing values explicitly before estimating; rows are never dropped silently
    """
    return Problem(
        f"{count} missing value(s) {what}",
        column=column,
        where=where,
        hint=f"impute or drop the rows with missing values explicitly before {before}; rows are never dropped silently",
    )


def infinite_problem(column: str, count: int, *, where: str) -> Problem:
    """The problem of ``count`` infinite values of ``column``: one wording in memory and out of core.

    Examples
    --------
    >>> print(infinite_problem("y", 1, where="data rows 2"))
    column 'y': 1 infinite value(s)
        at data rows 2
        fix: replace them with numbers, or drop those rows explicitly
    """
    return Problem(
        f"{count} infinite value(s)",
        column=column,
        where=where,
        hint="replace them with numbers, or drop those rows explicitly",
    )


def non_numeric(frame: pd.DataFrame, columns: Sequence[str]) -> list[Problem]:
    """One problem per column of ``columns`` that is neither numeric nor boolean.

    Examples
    --------
    >>> frame = pd.DataFrame({"y": pd.Series(["a"], dtype=object), "d": [True]})
    >>> print(non_numeric(frame, ["y", "d"])[0])
    column 'y': must be numeric; found dtype object
        fix: convert it to numbers
    """
    out = []
    for c in dict.fromkeys(columns):
        col = frame[c]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            out.append(Problem(f"must be numeric; found dtype {col.dtype}", column=c, hint="convert it to numbers"))
    return out


def infinite_values(frame: pd.DataFrame, columns: Sequence[str]) -> list[Problem]:
    """One problem per (numeric) column of ``columns`` holding infinite values, with the data rows.

    Examples
    --------
    >>> print(infinite_values(pd.DataFrame({"y": [1.0, np.inf]}), ["y"])[0])
    column 'y': 1 infinite value(s)
        at data rows 2
        fix: replace them with numbers, or drop those rows explicitly
    """
    out = []
    for c in dict.fromkeys(columns):
        bad = np.isinf(frame[c].to_numpy(dtype=float))
        if bad.any():
            out.append(infinite_problem(c, int(bad.sum()), where=where_rows(bad)))
    return out


def duplicate_rows(
    frame: pd.DataFrame, key: Sequence[str], *, among: np.ndarray | pd.Series | None = None
) -> list[Problem]:
    """A problem if rows repeat a value of ``key`` (unit-period rows, or unit ids), with the data rows.

    ``among`` (a boolean mask) limits the check to some rows, e.g. those whose key is
    complete; the rows named are still counted in the whole frame.

    Examples
    --------
    >>> d = pd.DataFrame({"id": [1, 1, 2], "t": [1, 1, 1]})
    >>> print(duplicate_rows(d, ["id", "t"])[0].what)
    duplicate unit-period rows: 2 rows share a (id, t) value with another row
    """
    key = list(key)
    if among is None:
        dup = frame.duplicated(subset=key, keep=False).to_numpy()
    else:
        among = np.asarray(among, dtype=bool)
        dup = np.zeros(len(frame), dtype=bool)
        dup[among] = frame.loc[among].duplicated(subset=key, keep=False).to_numpy()
    if not dup.any():
        return []
    what = "duplicate unit-period rows" if len(key) > 1 else "duplicate unit ids"
    return [
        Problem(
            f"{what}: {int(dup.sum())} rows share a ({', '.join(key)}) value with another row",
            column=", ".join(key),
            where=where_rows(dup),
            hint=f"keep one row per {'unit and period' if len(key) > 1 else 'unit'} (aggregate or remove copies)",
        )
    ]


def varies_within(frame: pd.DataFrame, unit: str, col: str) -> pd.Index:
    """Units whose value of ``col`` is not the same in every row (missing counts as a value).

    Examples
    --------
    >>> d = pd.DataFrame({"id": [1, 1, 2, 2], "g": [3, 3, 0, 4]})
    >>> varies_within(d, "id", "g").tolist()
    [2]
    """
    codes = pd.Series(pd.factorize(frame[col], use_na_sentinel=False)[0], index=frame.index)
    n = codes.groupby(frame[unit], sort=False).nunique()
    return n.index[n > 1]


def panel_balance(
    frame: pd.DataFrame, unit: str, time: str, cohort: str, *, periods: np.ndarray | None = None
) -> dict[str, Any]:
    """How complete a panel is: units by periods observed and cohort, and who enters, leaves or skips.

    The frame must already be valid (one row per unit and period, no missing ids
    or periods, the cohort constant within a unit, 0 for never treated).

    Returns
    -------
    dict
        ``units``, ``periods`` (distinct periods in the panel), ``balanced``;
        ``incomplete`` (units not observed in every period), of which ``enter_late``
        (first seen after the first period), ``leave_early`` (last seen before the
        last), ``gaps`` (missing a period between their first and last);
        ``single_period`` (units seen once: no change over time);
        ``leave_before_treatment`` (treated units last seen before their first treated
        period: they add nothing after it); ``no_base_period`` (treated units seen
        after their first treated period but not in the period just before it, the
        base period of their post-treatment comparisons); ``attrition``: cohort ->
        {periods observed -> units}.

    ``periods`` gives the panel's periods (sorted) when ``frame`` holds only some of its
    units, e.g. one block of whole units read out of core: the counts of the blocks then
    add up to those of the whole panel (``periods`` stays the number of all periods).

    Examples
    --------
    Unit 2 (cohort 3) misses period 2, its base period; unit 3 (cohort 3) leaves before period 3:

    >>> d = pd.DataFrame({"id": [1, 1, 1, 2, 2, 3, 3], "t": [1, 2, 3, 1, 3, 1, 2], "g": [0, 0, 0, 3, 3, 3, 3]})
    >>> b = panel_balance(d, "id", "t", "g")
    >>> b["balanced"], b["gaps"], b["leave_early"], b["leave_before_treatment"], b["no_base_period"]
    (False, 1, 1, 1, 1)
    >>> b["attrition"]
    {0: {3: 1}, 3: {2: 2}}
    """
    if periods is None:
        tcode, periods = pd.factorize(frame[time], sort=True)  # hashing: faster than np.unique's sort
        periods = np.asarray(periods)
    else:
        periods = np.asarray(periods)
        tcode = np.searchsorted(periods, frame[time].to_numpy())
    ucode, _ = pd.factorize(frame[unit], sort=False)
    n_t, n_u = len(periods), int(ucode.max()) + 1 if len(ucode) else 0
    tcode = tcode.astype(np.int64)
    first = np.full(n_u, n_t, dtype=np.int64)
    last = np.full(n_u, -1, dtype=np.int64)
    np.minimum.at(first, ucode, tcode)
    np.maximum.at(last, ucode, tcode)
    seen = np.bincount(ucode, minlength=n_u)
    g = np.zeros(n_u, dtype=np.int64)
    g[ucode] = frame[cohort].to_numpy(dtype=np.int64)  # constant within a unit
    # The base period of a treated unit: the last observed period before its cohort.
    treated = g > 0
    start = np.searchsorted(periods, g)  # the cohort's position among the periods (g is one of them)
    base = start - 1
    post = treated & (last >= start)
    observed = np.zeros(n_u * n_t, dtype=bool) if n_u * n_t <= 50_000_000 else None
    cells = ucode.astype(np.int64) * n_t + tcode
    want = np.flatnonzero(post & (base >= 0))
    want_cells = want * n_t + base[want]
    if observed is not None:
        observed[cells] = True
        has_base = observed[want_cells]
    else:
        has_base = np.isin(want_cells, cells)
    table: dict[int, dict[int, int]] = {}
    counts = pd.Series(1, index=pd.MultiIndex.from_arrays([g, seen])).groupby(level=[0, 1]).size()
    for (gv, k), n in counts.sort_index(level=[0, 1], ascending=[True, False]).items():
        table.setdefault(int(gv), {})[int(k)] = int(n)
    return {
        "units": n_u,
        "periods": n_t,
        "balanced": bool((seen == n_t).all()),
        "incomplete": int((seen < n_t).sum()),
        "enter_late": int((first > 0).sum()),
        "leave_early": int((last < n_t - 1).sum()),
        "gaps": int((seen < last - first + 1).sum()),
        "single_period": int((seen == 1).sum()),
        "leave_before_treatment": int((treated & ~post).sum()),
        "no_base_period": int((~has_base).sum() + (post & (base < 0)).sum()),
        "attrition": table,
    }
