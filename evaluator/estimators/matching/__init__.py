"""Matched comparison: nearest-neighbour matching, balance, effects and weighting.

A treated group (a few hundred citizens in a social impact bond) is compared with
controls drawn from a large register pool that look like them on observed
covariates. :func:`match` finds the controls; the :class:`MatchResult` it returns
shows balance (:meth:`MatchResult.balance`, :meth:`MatchResult.plot_balance`),
overlap (:meth:`MatchResult.plot_overlap`) and estimates the effect on the treated
(:meth:`MatchResult.effect`). :func:`weighting` estimates the same effect by
inverse-probability weighting, optionally doubly robust.
With ``estimand="ATE"`` and ``replace=True`` both groups are matched to each other
(treated units to their nearest controls, controls to their nearest treated units)
and the effect is the average over everyone, as Abadie and Imbens (2006) and Stata's
``teffects nnmatch``, with their robust standard error and, optionally, the Abadie
and Imbens (2011) bias correction.

Conventions (MatchIt's where there is one, so results can be checked against it):

- **Propensity score**: maximum-likelihood logistic regression of treatment on the
  covariates (our own Newton-Raphson, with the same estimates as statsmodels
  ``Logit``); string or categorical covariates are expanded to indicators, first
  level dropped. ``ps_formula`` passes a statsmodels formula instead.
- **Distance**: ``"ps"`` is the score itself (MatchIt ``distance = "glm"``),
  ``"logit"`` its logit (recommended by Rosenbaum and Rubin 1985; the default
  here), ``"mahalanobis"`` the Mahalanobis distance on the covariates, whitened
  by the Cholesky factor of the pooled within-group covariance.
- **Processing order** (matching without replacement is greedy, so the order
  matters): ``"largest"`` processes treated units by descending propensity score
  (MatchIt's default), ``"smallest"`` ascending, ``"data"`` by ascending unit key,
  ``"random"`` a permutation of the unit keys drawn from ``seed``. With
  ``ratio > 1`` every treated unit gets its first match before any gets its second.
- **Unit key and ties**: every unit has a key, the ``unit`` column if given and
  otherwise the DataFrame index. The data are put in key order before anything is
  computed, so the match does not depend on the row order of the input. A tie
  (two controls at exactly the same distance) goes to the control with the smaller
  key; with the default index that is the first control in data order, MatchIt's
  rule. In matching *with* replacement every control tied at the k-th distance is
  kept, with equal weight (Abadie and Imbens 2006).
- **Caliper**: in standard deviations of the distance over all units kept
  (``caliper_scale="sd"``, MatchIt's default) or in the distance's own units
  (``"raw"``). A treated unit with no control inside the caliper is dropped, with a
  :class:`~evaluator.errors.DroppedUnitsWarning` giving the count.
- **Balance**: standardised mean differences use the treated group's SD before
  matching for the ATT (``sqrt(p(1-p))`` for binary covariates), the control
  group's for the ATC, the root mean of the two groups' variances for the ATE;
  variance ratios are reported for continuous covariates only.

The algorithms never build a treated-by-pool matrix: 1-D distances sort the pool
once and use ``searchsorted`` with a union-find "next free control" structure
(matching without replacement) or a vectorised window search (with replacement);
Mahalanobis matching uses a k-d tree (:class:`scipy.spatial.cKDTree`).

The package holds one module per idea: ``frame`` (column checks, key order, design),
``propensity`` (the score, by :mod:`evaluator.estimators.logit`), ``neighbours`` (the
searches), ``nearest`` (:func:`match`), ``result`` (:class:`MatchResult`), ``variance``
(pairs, Abadie-Imbens, bootstrap), ``ipw`` (:func:`weighting`) and ``panel_did``
(:func:`matched_did`); the figures are in :mod:`evaluator.plots.matching`.
"""

from evaluator.estimators.matching.ipw import weighting
from evaluator.estimators.matching.nearest import match
from evaluator.estimators.matching.panel_did import matched_did
from evaluator.estimators.matching.result import MatchResult

__all__ = ["MatchResult", "match", "matched_did", "weighting"]
