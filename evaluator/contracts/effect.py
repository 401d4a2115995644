"""What a settlement reads from an estimate: the effect, its uncertainty and the comparison level.

:func:`read_effect` turns an evaluator :class:`~evaluator.results.Result`, a number
(with ``se=``), a pair ``(estimate, se)`` or a mapping into an :class:`Effect` in the
metric's measured unit; :func:`cohorts_from_result` splits a result by cohort.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from evaluator.contracts.terms import cohort_key
from evaluator.errors import ContractError, Problem
from evaluator.results.base import Result

__all__ = ["Effect", "cohorts_from_result", "read_effect"]


@dataclass(frozen=True)
class Effect:
    """An effect in the metric's measured unit, with what is known of its uncertainty."""

    estimate: float
    se: float
    ci: tuple[float, float]
    alpha: float
    outcome: str | None
    draws: np.ndarray | None
    comparison: float | None = None


def read_effect(x: Any, *, se: float | None, alpha: float, draws: Any, label: str) -> Effect:
    """The effect ``x`` as an :class:`Effect`: a Result, a number, ``(estimate, se)`` or ``{"estimate": e, "se": s}``.

    A number's interval is the normal one at level ``1 - alpha``; a Result keeps its own
    interval and level. Bootstrap draws come from ``draws`` or from the result's
    :attr:`Result.draws <evaluator.results.Result.draws>`; fewer than two finite draws count as none. ``label``
    names the estimate in the error raised when nothing can be read from ``x``.

    Examples
    --------
    >>> e = read_effect((0.5, 0.25), se=None, alpha=0.05, draws=None, label="estimate")
    >>> e.estimate, round(e.ci[0], 4)
    (0.5, 0.01)
    """
    from scipy import stats  # here, so that importing evaluator.contracts stays light

    outcome, kept_draws, comparison = None, None, None
    if isinstance(x, Result):
        est, se_, ci, alpha, outcome = (x.estimate, x.se, x.ci, x.alpha, x.outcome)
        kept_draws, comparison = x.draws, x.comparison_mean
    else:
        if isinstance(x, Mapping):
            x, se = x.get("estimate"), x.get("se", se)
        elif isinstance(x, (tuple, list)) and len(x) == 2:
            x, se = x
        try:
            est = float(x)
        except (TypeError, ValueError):
            raise ContractError(
                [
                    Problem(
                        f"{label}: cannot read an estimate from {type(x).__name__}",
                        hint="pass an evaluator Result, a number (with se=), or a pair (estimate, se)",
                    )
                ]
            ) from None
        se_ = math.nan if se is None else float(se)
        z = stats.norm.ppf(1 - alpha / 2)
        ci = (est - z * se_, est + z * se_)
    if draws is None:
        draws = kept_draws
    arr = None if draws is None else np.asarray(draws, dtype=float).ravel()
    if arr is not None:
        arr = arr[np.isfinite(arr)]
        if arr.size < 2:
            arr = None
    return Effect(float(est), float(se_), (float(ci[0]), float(ci[1])), float(alpha), outcome, arr, comparison)


def cohorts_from_result(r: Result) -> dict[str, Result] | None:
    """Per-cohort rows of a result whose table has a ``cohort`` column (``aggregate("group")``)."""
    t = r.table
    if "cohort" not in t.columns:
        return None
    rows = t[t["cohort"].notna()]
    if rows.empty:
        return None
    out = {}
    for _, row in rows.iterrows():
        one = t.loc[[row.name]].copy()
        out[cohort_key(row["cohort"])] = Result(
            r.estimator, one, nobs=r.nobs, alpha=r.alpha, inference=r.inference, outcome=r.outcome
        )
    return out
