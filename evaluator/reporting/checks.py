"""Design checks: what the page must say about whether the comparison can be trusted.

Each check reads a fit (and the robustness table where the check needs it) and
returns a :class:`Check` with a status and, when the check failed or could not be
trusted, a caveat in plain words for the headline box. The checks are the ones a
referee asks for first:

- ``pretrend``: did the groups move in parallel before the programme? A joint test
  whose cells rest on fewer than ``min_cell`` units is reported as unreliable, not
  as proof of diverging trends.
- ``placebo``: does a fake, earlier start find an "effect"? It should not.
- ``balance``: after matching, is the largest absolute standardised mean difference
  at most 0.1?
- ``clusters``: are there enough clusters (:data:`evaluator.policy.FEW_CLUSTERS`)
  for the uncertainty to be measured well?
- ``pre_fit``: (synthetic control) does the synthetic comparison follow the treated unit
  before the start, within twice the period-to-period noise? If not, the treated unit may lie
  outside the comparison units' convex hull.
- ``small_groups``: were small cohorts or groups pooled or left out of the tables
  and figures (statistical disclosure control)?
- ``sensitivity``: (difference-in-differences) would the conclusion survive trends that diverge
  after the start as much as they did before it? The HonestDiD breakdown value (of the
  contract's target under a contract, else of zero) below :data:`evaluator.policy.FRAGILE_BREAKDOWN`
  adds a caveat.

The words live in ``templates/sentences/caveat.txt.j2``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluator.policy import FEW_CLUSTERS, FRAGILE_BREAKDOWN
from evaluator.reporting.html import render_text
from evaluator.reporting.pipeline import DidFit, MatchedFit, SyntheticFit

__all__ = ["BALANCE_LIMIT", "Check", "design_checks"]

#: Largest absolute standardised mean difference after matching that counts as balanced.
BALANCE_LIMIT = 0.1

Status = Literal["passed", "failed", "unreliable", "not_run"]
CAVEAT = "sentences/caveat.txt.j2"
_SPACES = re.compile(r"[ \t\r\n]+")


@dataclass(frozen=True)
class Check:
    """One design check: its name, status and the caveat the headline shows when it did not pass.

    ``comparability``: a failure means the groups may not be comparable, which
    qualifies the strength of evidence (not only the precision).
    """

    name: str
    status: Status
    caveat: str = ""
    comparability: bool = False

    @property
    def warns(self) -> bool:
        """Whether the headline shows this check's caveat."""
        return bool(self.caveat) and self.status in ("failed", "unreliable")


def _caveat(case: str, **context: Any) -> str:
    # one line; a no-break space (inside a number, in some languages) stays
    return _SPACES.sub(" ", render_text(CAVEAT, case=case, **context)).strip()


def _pretrend(fit: DidFit) -> Check:
    pt = fit.pretrend
    passed = pt.get("passed")
    if passed is False:
        return Check("pretrend", "failed", _caveat("pretrend_failed"), comparability=True)
    if pt.get("small_cells"):
        return Check("pretrend", "unreliable", _caveat("pretrend_small", min_cell=fit.settings.min_cell))
    if passed is None:
        return Check("pretrend", "not_run", _caveat("pretrend_none"))
    return Check("pretrend", "passed")


def _placebo(robustness: pd.DataFrame | None) -> Check:
    if robustness is None or "kind" not in robustness:
        return Check("placebo", "not_run")
    rows = robustness.loc[(robustness["kind"] == "placebo") & robustness["estimate"].notna()]
    if rows.empty:
        return Check("placebo", "not_run")
    row = rows.iloc[0]
    if row["ci_low"] <= 0 <= row["ci_high"]:
        return Check("placebo", "passed")
    return Check("placebo", "failed", _caveat("placebo_failed"), comparability=True)


def _balance(fit: MatchedFit) -> Check:
    b = fit.match.balance()
    after = b.loc[b["sample"] == "after"]
    after = after.loc[after["term"] != "distance"]  # the matching score itself is not a characteristic
    smd = after["smd"].to_numpy(dtype=float)
    if not np.isfinite(smd).any():
        return Check("balance", "not_run")
    i = int(np.nanargmax(np.abs(smd)))
    worst, term = float(abs(smd[i])), str(after["term"].iloc[i])
    if worst <= BALANCE_LIMIT:
        return Check("balance", "passed")
    n_over = int((np.abs(smd) > BALANCE_LIMIT).sum())
    return Check(
        "balance",
        "failed",
        _caveat("balance_failed", worst=worst, term=term, n_over=n_over, limit=BALANCE_LIMIT),
        comparability=True,
    )


def _clusters(fit: DidFit | MatchedFit) -> Check:
    n = fit.n_clusters
    if n is None:
        return Check("clusters", "not_run")
    if n < FEW_CLUSTERS:
        return Check("clusters", "failed", _caveat("few_clusters", n=n, limit=FEW_CLUSTERS))
    return Check("clusters", "passed")


def _small_groups(fit: DidFit | MatchedFit) -> Check:
    mc = fit.settings.min_cell
    if mc <= 1:
        return Check("small_groups", "not_run")
    if isinstance(fit, DidFit):
        c = fit.cohorts
        n_small = int(((c["first treated period"] != 0) & (c["units"] < mc)).sum())
        n_small += int((fit.event_counts < mc).sum()) if len(fit.event_counts) else 0
    else:
        n_small = len(fit.small_cohorts)
    if n_small == 0:
        return Check("small_groups", "passed")
    return Check("small_groups", "failed", _caveat("small_groups", min_cell=mc))


def _pre_fit(fit: SyntheticFit) -> Check:
    info = fit.result.info
    rmse = info.get("pre_rmse")
    if rmse is None:  # difference-in-differences with equal weights: no fit to check
        return Check("pre_fit", "not_run")
    if rmse > 2 * float(info["noise_level"]):
        return Check("pre_fit", "failed", _caveat("pre_fit_failed"), comparability=True)
    return Check("pre_fit", "passed")


def _sensitivity(sens: Any) -> Check:
    """Fragile to diverging trends: a breakdown value (payment's first, else the effect's) in (0, FRAGILE_BREAKDOWN)."""
    if sens is None:
        return Check("sensitivity", "not_run")
    b_pay = sens.threshold_breakdown
    if b_pay is not None and 0 < b_pay < FRAGILE_BREAKDOWN:
        return Check("sensitivity", "failed", _caveat("sensitivity_payment", mbar=b_pay))
    b = sens.breakdown
    if b == 0:  # the interval includes zero even with parallel trends: there is no conclusion to break
        return Check("sensitivity", "not_run")
    if b < FRAGILE_BREAKDOWN:
        return Check("sensitivity", "failed", _caveat("sensitivity_effect", mbar=b))
    return Check("sensitivity", "passed")


def design_checks(
    fit: DidFit | MatchedFit | SyntheticFit, robustness: pd.DataFrame | None = None, sensitivity: Any = None
) -> tuple[Check, ...]:
    """The design checks of a fit, in the order the headline lists their caveats.

    Parameters
    ----------
    fit : DidFit or MatchedFit
        From :func:`~evaluator.reporting.fit_did` or :func:`~evaluator.reporting.fit_matched`.
    robustness : pandas.DataFrame, optional
        From :func:`~evaluator.reporting.robustness_did`; its placebo row is the placebo check.
    sensitivity : Sensitivity, optional
        From :func:`~evaluator.reporting.sensitivity_did` (difference-in-differences): its breakdown
        values are the sensitivity check.

    Returns
    -------
    tuple of Check

    Examples
    --------
    >>> from evaluator.reporting.checks import Check
    >>> Check("placebo", "failed", "A fake earlier start finds an effect.").warns
    True
    """
    if isinstance(fit, SyntheticFit):  # one treated unit: its placebo in time and how well it is followed before
        return (_pre_fit(fit), _placebo(robustness))
    if isinstance(fit, DidFit):
        return (_pretrend(fit), _placebo(robustness), _clusters(fit), _small_groups(fit), _sensitivity(sensitivity))
    return (_balance(fit), _small_groups(fit))
