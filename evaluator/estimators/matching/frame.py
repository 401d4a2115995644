"""Matching's view of the input frame: column checks, the unit-key order and the numeric design."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

import numpy as np
import pandas as pd

from evaluator.data.validate import missing_columns, missing_values
from evaluator.errors import DataError, Problem, format_examples


def _is_categorical(s: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s))


def _check_columns(data: pd.DataFrame, treat: str, columns: Sequence[str], outcome: str | None = None) -> None:
    """Every column exists, treatment is 0/1, no missing values (all problems at once)."""
    problems: list[Problem] = []
    wanted = [treat, *columns] + ([outcome] if outcome else [])
    problems.extend(missing_columns(data, wanted))
    if problems:
        raise DataError(problems)
    problems.extend(missing_values(data, wanted, before="matching"))
    tv = data[treat]
    if not problems:
        ok = pd.api.types.is_numeric_dtype(tv) or pd.api.types.is_bool_dtype(tv)
        vals = set(pd.unique(tv.astype(float))) if ok else set()
        if not ok or not vals <= {0.0, 1.0}:
            problems.append(
                Problem(
                    f"treatment must be coded 0/1, found values {format_examples(sorted(map(str, pd.unique(tv))))}",
                    column=treat,
                    hint="recode the treatment indicator to 1 = treated, 0 = comparison",
                )
            )
    if outcome and not problems and not pd.api.types.is_numeric_dtype(data[outcome]):
        problems.append(Problem("outcome is not numeric", column=outcome, hint="recode the outcome as a number"))
    if problems:
        raise DataError(problems)


def _canonical(data: pd.DataFrame, unit: str | None) -> tuple[pd.DataFrame, np.ndarray]:
    """The data in unit-key order, and the permutation used (positions in ``data``)."""
    key = data[unit] if unit is not None else data.index.to_series()
    if key.duplicated().any():
        dup = key[key.duplicated()].unique()
        where = "column " + repr(unit) if unit else "the DataFrame index"
        raise DataError(
            [
                Problem(
                    f"unit keys in {where} are not unique",
                    column=unit,
                    where=format_examples(dup, label="keys"),
                    hint="pass unit= naming a unique id column, or call data.reset_index(drop=True) first",
                )
            ]
        )
    try:
        perm = np.argsort(key.to_numpy(), kind="stable")
    except TypeError:  # mixed key types: order by their text
        perm = np.argsort(key.astype(str).to_numpy(), kind="stable")
    return data.iloc[perm], perm


def _design_array(
    frame: pd.DataFrame, covariates: Sequence[str], *, drop_first: bool = True, const: bool = False
) -> tuple[list[str], np.ndarray]:
    """Names and values of the numeric design columns, as an (n, k) float64 array in column-major order.

    Column-major because every consumer reads whole columns (range checks, the logit's row blocks are
    column slices BLAS handles directly), and filling rows of a (k, n) buffer is several times cheaper
    than scattering into a row-major array. ``const`` puts an intercept column named ``"const"`` first.
    """
    names: list[str] = ["const"] if const else []
    sources: list[tuple[pd.Series | np.ndarray, int | None]] = []  # (values, None) or (level codes, level)
    for c in covariates:
        s = frame[c]
        if _is_categorical(s):
            codes, levels = pd.factorize(s.astype(str), sort=True)
            start = 1 if drop_first else 0
            for j in range(start, len(levels)):
                names.append(f"{c}[{levels[j]}]")
                sources.append((codes, j))
        else:
            names.append(c)
            sources.append((s, None))
    buf = np.empty((len(names), len(frame)))
    if const:
        buf[0] = 1.0
    for row, (values, level) in zip(buf[int(const) :], sources, strict=True):
        if level is None:
            row[:] = cast(pd.Series, values).to_numpy(dtype=float)
        else:
            np.equal(values, level, out=row, casting="unsafe")
    return names, buf.T


def _design(frame: pd.DataFrame, covariates: Sequence[str], *, drop_first: bool = True) -> pd.DataFrame:
    """Numeric design columns: categorical covariates become indicators ``col[level]`` (levels sorted)."""
    names, arr = _design_array(frame, covariates, drop_first=drop_first)
    return pd.DataFrame(arr, columns=names, index=frame.index)
