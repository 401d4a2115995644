"""Policy constants: the judgement calls every module shares, in one place.

Each is a choice a referee may question, so each is named, explained here and
used from here; changing one changes it for every estimator, report and check.
"""

from __future__ import annotations

#: Smallest group of people a report may show (statistical disclosure control). Statistics
#: Denmark and Statistics Sweden publish no cell below 5 individuals; a group smaller than this
#: is suppressed in tables and figures, and a rendered report containing one fails the check.
MIN_CELL = 5

#: Below this many clusters, analytic cluster-robust intervals under-cover (docs/few_clusters.md):
#: estimators warn (``FewClustersWarning``) and suggest the wild or multiplier bootstrap.
FEW_CLUSTERS = 20

#: Below this many clusters, critical values and minimum detectable effects use Student's t with
#: G - 1 degrees of freedom instead of the normal (the usual small-G correction of Stata and reghdfe).
T_DF_BELOW_CLUSTERS = 50


def t_df(n_clusters: int | None) -> int | None:
    """Degrees of freedom for critical values: G - 1 below :data:`T_DF_BELOW_CLUSTERS` clusters, else None (normal).

    >>> t_df(8), t_df(120), t_df(None)
    (7, None, None)
    """
    return n_clusters - 1 if n_clusters is not None and n_clusters < T_DF_BELOW_CLUSTERS else None


#: Below this many clusters the wild bootstrap draws Webb's six-point weights rather than
#: Rademacher's two points, which give only 2**G distinct draws (Webb 2014).
WEBB_BELOW_CLUSTERS = 12

#: Propensity-score trimming of DRDID / R did: comparison units with a score at or above this
#: level get weight zero in inverse-probability and doubly-robust ATT(g,t).
PS_TRIM_LEVEL = 0.995

#: A DiD conclusion (the effect differs from zero, or the contract's target was met) whose HonestDiD breakdown
#: value is below this multiple M-bar of the largest pre-programme difference is fragile: it would not survive
#: post-programme divergence as large as the divergence already seen before the start. M-bar = 1 is the benchmark
#: of Rambachan and Roth (2023, section 5); the report's headline then carries a caveat.
FRAGILE_BREAKDOWN = 1.0

__all__ = [
    "FEW_CLUSTERS",
    "FRAGILE_BREAKDOWN",
    "MIN_CELL",
    "PS_TRIM_LEVEL",
    "T_DF_BELOW_CLUSTERS",
    "WEBB_BELOW_CLUSTERS",
    "t_df",
]
