"""Estimators: a DataFrame and column names in, a result out.

- ``twfe``: ``did`` (2x2 and two-way fixed effects) and ``event_study``.
- ``staggered``: ``staggered_did``, Callaway and Sant'Anna (2021).
- ``matching`` (a package, one module per idea): ``match``, ``weighting`` (IPW, AIPW)
  and ``matched_did``.
- ``design``: the argument checks every estimator shares (``choice``, ``as_list``).
- ``logit``: the one logit (Newton-Raphson with step halving and separation checks)
  behind every propensity score.

A new estimator is a new module here: it checks its options with ``design.choice``,
validates its frame with the rule functions of ``evaluator.data.validate`` (the
ones ``load_panel`` uses), computes with the kernels in ``evaluator.inference``
(one CR1 sandwich: ``cr1_vcov``) and returns an ``evaluator.results`` object.
"""

from evaluator.estimators.matching import MatchResult, match, matched_did, weighting
from evaluator.estimators.staggered import StaggeredResult, staggered_did
from evaluator.estimators.twfe import did, event_study

__all__ = ["MatchResult", "StaggeredResult", "did", "event_study", "match", "matched_did", "staggered_did", "weighting"]
