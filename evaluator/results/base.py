"""The result every estimator returns: estimate, SE, interval and p-value over a tidy table."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaluator.files import jsonable
from evaluator.formatting import fmt
from evaluator.results.display import Display

__all__ = ["Design", "Result", "TIDY_COLUMNS", "tidy_table"]

#: Columns every tidy table has, in this order. Estimators may add more after them
#: (``event_time``, ``cohort``, ``time``, ``n_treated``, ``band_low``, ``band_high`` ...).
TIDY_COLUMNS: tuple[str, ...] = (
    "term",
    "estimate",
    "std_error",
    "statistic",
    "p_value",
    "ci_low",
    "ci_high",
)


def tidy_table(
    terms: Sequence[object],
    estimates: Sequence[float] | np.ndarray,
    std_errors: Sequence[float] | np.ndarray,
    *,
    alpha: float = 0.05,
    df: float | None = None,
    **extra: Sequence[object] | np.ndarray,
) -> pd.DataFrame:
    """Build a tidy table with Wald statistics, p-values and intervals.

    Parameters
    ----------
    terms, estimates, std_errors
        One entry per row.
    alpha
        1 - confidence level of the intervals.
    df
        Degrees of freedom of a t reference distribution; ``None`` uses the normal.
    **extra
        Further columns, appended after the tidy ones.

    Examples
    --------
    >>> tidy_table(["att"], [0.5], [0.25])[["term", "statistic", "ci_low"]].round(3)
      term  statistic  ci_low
    0  att        2.0    0.01
    """
    est = np.asarray(estimates, dtype=float)
    se = np.asarray(std_errors, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = est / se
    from scipy import stats  # here, not at the top: scipy.stats is slow to import and only this function needs it

    dist = stats.norm if df is None else stats.t(df)
    p = 2 * dist.sf(np.abs(stat))
    crit = dist.ppf(1 - alpha / 2)
    table = pd.DataFrame(
        {
            "term": list(terms),
            "estimate": est,
            "std_error": se,
            "statistic": stat,
            "p_value": p,
            "ci_low": est - crit * se,
            "ci_high": est + crit * se,
        }
    )
    for name, values in extra.items():
        table[name] = list(values)
    return table


@dataclass(frozen=True)
class Design:
    """Counts of the sample behind an estimate (``None`` where an estimator does not report one).

    >>> Design(n_units=10).n_units, Design().n_clusters
    (10, None)
    """

    n_units: int | None = None
    n_treated: int | None = None
    n_control: int | None = None
    n_clusters: int | None = None
    n_periods: int | None = None
    n_params: int | None = None


def _count_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


@dataclass(frozen=True, repr=False)
class Result(Display):
    """The fitted result of an estimator.

    Attributes
    ----------
    estimator : str
        Human-readable name of the estimator and estimand.
    table : pandas.DataFrame
        Tidy table (columns :data:`TIDY_COLUMNS` first). Read it with :meth:`to_frame`.
    nobs : int
        Number of observations (rows) used.
    headline : str or None
        The term that :attr:`estimate`, :attr:`se`, :attr:`ci` and :attr:`pvalue` refer
        to; the first row when ``None``.
    alpha : float
        1 - confidence level of the intervals in the table.
    inference : str
        How standard errors and intervals were computed (conventions included).
    outcome : str or None
        Name of the outcome column.
    notes : tuple of str
        Caveats a reader should see (few clusters, trimmed units ...).
    info : mapping
        Further numbers: counts of units and clusters, pre-trend test, bootstrap
        critical values. Keys are documented by each estimator.

    Examples
    --------
    >>> r = Result("Example", tidy_table(["att"], [1.0], [0.5]), nobs=10)
    >>> round(r.estimate, 2), round(r.ci[0], 3)
    (1.0, 0.02)
    """

    estimator: str
    table: pd.DataFrame
    nobs: int
    headline: str | None = None
    alpha: float = 0.05
    inference: str = ""
    outcome: str | None = None
    notes: tuple[str, ...] = ()
    info: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        missing = [c for c in TIDY_COLUMNS if c not in self.table.columns]
        if missing:
            raise ValueError(f"result table lacks the tidy columns {missing}")
        cols = list(TIDY_COLUMNS) + [c for c in self.table.columns if c not in TIDY_COLUMNS]
        object.__setattr__(self, "table", self.table[cols].reset_index(drop=True).copy())
        object.__setattr__(self, "notes", tuple(self.notes))
        object.__setattr__(self, "info", dict(self.info))
        if self.headline is not None and self.headline not in set(self.table["term"]):
            raise ValueError(f"headline term {self.headline!r} is not in the table")

    # -- the headline -------------------------------------------------------------
    @property
    def _row(self) -> pd.Series:
        if self.headline is None:
            return self.table.iloc[0]
        return self.table.loc[self.table["term"] == self.headline].iloc[0]

    @property
    def estimate(self) -> float:
        """Point estimate of the headline term."""
        return float(self._row["estimate"])

    @property
    def se(self) -> float:
        """Standard error of the headline term."""
        return float(self._row["std_error"])

    @property
    def ci(self) -> tuple[float, float]:
        """(low, high) confidence interval of the headline term at level 1 - alpha."""
        row = self._row
        return float(row["ci_low"]), float(row["ci_high"])

    @property
    def pvalue(self) -> float:
        """Two-sided p-value of the headline term."""
        return float(self._row["p_value"])

    # -- typed views of what other modules read ---------------------------------------
    # ``info`` keeps each estimator's own extras; these are the few entries that settlement,
    # plots and reports read, under one name each, so no reader guesses between spellings.
    @property
    def pretest(self) -> Mapping[str, float] | None:
        """Joint test that all pre-treatment effects are zero (``statistic``, ``df``, ``p_value``), if made."""
        return self.info.get("pretest")

    @property
    def design(self) -> Design:
        """The sample behind the estimate: units, treated, controls, clusters, periods, parameters."""
        return Design(**{f: _count_or_none(self.info.get(f)) for f in Design.__dataclass_fields__})

    @property
    def draws(self) -> np.ndarray | None:
        """Bootstrap draws of the headline estimate (``info["boot_estimates"]``), where the estimator kept them."""
        draws = self.info.get("boot_estimates")
        return None if draws is None else np.asarray(draws, dtype=float).ravel()

    @property
    def comparison_mean(self) -> float | None:
        """The comparison group's mean of the outcome (``info["comparison_mean"]``), where known."""
        value = self.info.get("comparison_mean")
        return None if value is None else float(value)

    @property
    def reference(self) -> float | None:
        """The omitted (reference) event time of an event study (``info["reference"]``), if any."""
        value = self.info.get("reference")
        return None if value is None else float(value)

    # -- reading it ---------------------------------------------------------------
    def to_frame(self) -> pd.DataFrame:
        """The tidy table (a copy)."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dictionary of everything in the result (for report sidecars)."""
        return jsonable(
            {
                "estimator": self.estimator,
                "outcome": self.outcome,
                "headline": self.headline or str(self.table["term"].iloc[0]),
                "estimate": self.estimate,
                "std_error": self.se,
                "ci": list(self.ci),
                "p_value": self.pvalue,
                "alpha": self.alpha,
                "nobs": self.nobs,
                "inference": self.inference,
                "notes": list(self.notes),
                "info": self.info,
                "table": self.table,
            }
        )

    # -- what Display shows ---------------------------------------------------------------
    def _title(self) -> str:
        return self.estimator

    def _subtitle(self) -> tuple[str, str] | None:
        return ("outcome", self.outcome) if self.outcome else None

    def _headline(self) -> list[str]:
        level = round(100 * (1 - self.alpha))
        lo, hi = self.ci
        return [
            f"Estimate: {fmt(self.estimate)} (SE {fmt(self.se)}), {level}% CI [{fmt(lo)}, {fmt(hi)}], "
            f"p = {fmt(self.pvalue)}"
        ]

    def _facts(self) -> list[tuple[str, str]]:
        lines = [("Observations", f"{self.nobs:,}")]
        design = self.design
        for key in ("n_units", "n_treated", "n_control", "n_clusters", "n_periods"):
            value = getattr(design, key)
            if value is not None:
                lines.append((key.replace("n_", "").replace("_", " ").capitalize(), f"{value:,}"))
        lines.append(("Inference", self.inference or "."))
        pre = self.pretest
        if pre:
            lines.append(
                (
                    "Pre-trend test",
                    f"stat = {fmt(pre['statistic'])}, df = {pre.get('df', '.')}, p = {fmt(pre['p_value'])}",
                )
            )
        return lines

    def _css_class(self) -> str:
        return "evaluator-result"

    def __repr__(self) -> str:
        lo, hi = self.ci
        return (
            f"<{type(self).__name__} {self.estimator}: {fmt(self.estimate)} "
            f"(SE {fmt(self.se)}, CI [{fmt(lo)}, {fmt(hi)}]), nobs={self.nobs}>"
        )

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Coefficient plot of the table (by event time where there is one).

        Returns a matplotlib Figure; see :func:`evaluator.plots.coefficients`.
        """
        from evaluator import plots

        return plots.coefficients(self, ax=ax, **kwargs)
