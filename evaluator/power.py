"""Minimum detectable effects: the smallest true effect a design would detect reliably.

Two questions a funder asks before (and after) an evaluation: *could this data have
shown an effect of the size the contract pays for?* and *how large would an
effect have to be to be found?* Both come down to the minimum detectable effect
(MDE, Bloom 1995)

.. math:: MDE = (q_{1-\\alpha/2} + q_{1-\\beta})\\, SE,

with :math:`q` the quantiles of the normal distribution, or of Student's t with
``df`` degrees of freedom when there are few clusters (``df = clusters - 1``),
:math:`\\alpha` the two-sided significance level and :math:`1-\\beta` the power.
A true effect of the size of the MDE is found significant with probability
``power``; a smaller one, less often.

Examples
--------
>>> round(minimum_detectable_effect(0.1), 4)
0.2802
>>> round(mde_from_design(n_units=1_000), 4)
0.1772
"""

from __future__ import annotations

import math
from typing import Any

from scipy import stats

__all__ = ["design_effect", "mde_from_design", "minimum_detectable_effect"]


def _probability(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name}={value!r} is not allowed; use a number strictly between 0 and 1")
    return float(value)


def _quantile(p: float, df: int | float | None) -> float:
    if df is None:
        return float(stats.norm.ppf(p))
    return float(stats.t.ppf(p, df))


def minimum_detectable_effect(
    se: float | Any,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    df: int | None = None,
) -> float:
    """Minimum detectable effect of an estimate with standard error ``se``.

    Parameters
    ----------
    se : float or Result
        The standard error, or any result with an ``se`` attribute
        (:class:`evaluator.Result`).
    alpha : float
        Two-sided significance level of the test, by default 0.05.
    power : float
        Probability of detecting a true effect of the returned size, by default 0.8.
    df : int, optional
        Degrees of freedom of a t reference distribution (with few clusters use
        ``clusters - 1``); normal quantiles when ``None``.

    Returns
    -------
    float
        :math:`(q_{1-\\alpha/2} + q_{power}) \\times se`, in the outcome's units.

    Raises
    ------
    ValueError
        A standard error that is not a positive finite number, ``alpha`` or
        ``power`` outside (0, 1), or ``df`` below 1.

    Notes
    -----
    The rule ignores the (tiny) probability of rejecting in the wrong direction,
    as is conventional; with the normal reference the factor for a 5% test and
    80% power is 1.960 + 0.842 = 2.802.

    Examples
    --------
    >>> round(minimum_detectable_effect(1.0), 4)
    2.8016
    >>> round(minimum_detectable_effect(1.0, df=9), 4)  # 10 clusters
    3.1456
    >>> round(minimum_detectable_effect(0.5, alpha=0.10, power=0.9), 4)
    1.4632
    """
    value = getattr(se, "se", se)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"se={value!r} is not allowed; the standard error must be a positive finite number")
    a = _probability("alpha", alpha)
    pw = _probability("power", power)
    if df is not None and (isinstance(df, bool) or not isinstance(df, (int, float)) or df < 1):
        raise ValueError(f"df={df!r} is not allowed; use a number of degrees of freedom >= 1 or None (normal)")
    return (_quantile(1 - a / 2, df) + _quantile(pw, df)) * float(value)


def design_effect(cluster_size: float, icc: float) -> float:
    """Variance inflation of a mean from clusters of ``cluster_size`` observations: ``1 + (m - 1) * icc``.

    Examples
    --------
    >>> design_effect(50, 0.02)
    1.98
    """
    if not (isinstance(icc, (int, float)) and 0 <= icc <= 1):
        raise ValueError(f"icc={icc!r} is not allowed; the intra-cluster correlation lies in [0, 1]")
    if not (isinstance(cluster_size, (int, float)) and cluster_size >= 1):
        raise ValueError(f"cluster_size={cluster_size!r} is not allowed; use a number of observations >= 1")
    return 1.0 + (float(cluster_size) - 1.0) * float(icc)


def mde_from_design(
    *,
    n_units: int,
    n_clusters: int | None = None,
    icc: float = 0.0,
    n_periods: int = 1,
    sd: float = 1.0,
    treated_share: float = 0.5,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """Minimum detectable effect of a comparison of means, from the design alone.

    Parameters
    ----------
    n_units : int
        Units (people, employees) in treated and comparison groups together.
    n_clusters : int, optional
        Clusters (e.g. municipalities) the units sit in; then the quantiles are
        t with ``n_clusters - 2`` degrees of freedom (two groups of clusters).
        Without clusters each unit is its own cluster and the quantiles are normal.
    icc : float
        Intra-cluster correlation of the outcome: between observations in the same
        cluster, or between a unit's periods when ``n_clusters`` is ``None``.
    n_periods : int
        Observations per unit (periods after treatment that are averaged).
    sd : float
        Standard deviation of the outcome for one observation; the MDE is in the
        outcome's units. With ``sd=1`` it is in standard deviations.
    treated_share : float
        Share of units that are treated.
    alpha, power : float
        As in :func:`minimum_detectable_effect`.

    Returns
    -------
    float
        ``(q_{1-alpha/2} + q_{power}) * sd * sqrt(DE / (N P (1 - P)))`` with
        ``N = n_units * n_periods`` observations, ``P`` the treated share and the
        design effect ``DE = 1 + (m - 1) * icc``, ``m = N / n_clusters``
        observations per cluster (``m = n_periods`` without clusters).

    Notes
    -----
    Exchangeable correlation within clusters is assumed (every pair of
    observations in a cluster correlates by ``icc``). Difference-in-differences
    on a panel usually does better than this because the unit's own baseline
    removes its permanent component; treat the result as a conservative guide.

    Examples
    --------
    >>> round(mde_from_design(n_units=1_000, sd=2.0), 4)  # 2.8016 * 2 * sqrt(4 / 1000)
    0.3544
    >>> round(mde_from_design(n_units=1_000, n_clusters=20, icc=0.05), 4)
    0.3481
    """
    if isinstance(n_units, bool) or not isinstance(n_units, int) or n_units < 2:
        raise ValueError(f"n_units={n_units!r} is not allowed; use a whole number of units >= 2")
    if isinstance(n_periods, bool) or not isinstance(n_periods, int) or n_periods < 1:
        raise ValueError(f"n_periods={n_periods!r} is not allowed; use a whole number >= 1")
    if n_clusters is not None and (isinstance(n_clusters, bool) or not isinstance(n_clusters, int) or n_clusters < 3):
        raise ValueError(f"n_clusters={n_clusters!r} is not allowed; use a whole number >= 3 or None")
    if not (isinstance(sd, (int, float)) and math.isfinite(sd) and sd > 0):
        raise ValueError(f"sd={sd!r} is not allowed; the outcome's standard deviation must be positive")
    p = _probability("treated_share", treated_share)
    n_obs = n_units * n_periods
    m = n_obs / n_clusters if n_clusters is not None else float(n_periods)
    deff = design_effect(max(m, 1.0), icc)
    se = sd * math.sqrt(deff / (n_obs * p * (1 - p)))
    df = None if n_clusters is None else n_clusters - 2
    return minimum_detectable_effect(se, alpha=alpha, power=power, df=df)
