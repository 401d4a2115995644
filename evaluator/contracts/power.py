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

:func:`power` answers the converse question: for a given true effect, how likely
is the evaluation to find it significant, or to produce an estimate that crosses a
contract's threshold? At the top level ``evaluator.power`` is that function (as
``evaluator.did`` is the function of ``evaluator/did.py``); the MDE functions are
``evaluator.minimum_detectable_effect`` and ``evaluator.mde_from_design``.

>>> round(power(-0.3, se=0.1), 3)  # a true fall of 3 standard errors
0.851
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["design_effect", "mde_from_design", "minimum_detectable_effect", "power", "threshold_sentence"]


def _probability(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{name}={value!r} is not allowed; use a number strictly between 0 and 1")
    return float(value)


def _quantile(p: float, df: int | float | None) -> float:
    from scipy import stats  # here, so that importing evaluator.contracts stays light

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
    se, df = _design_se(
        n_units=n_units, n_clusters=n_clusters, icc=icc, n_periods=n_periods, sd=sd, treated_share=treated_share
    )
    return minimum_detectable_effect(se, alpha=alpha, power=power, df=df)


def _design_se(
    *,
    n_units: Any,
    n_clusters: Any = None,
    icc: float = 0.0,
    n_periods: Any = 1,
    sd: float = 1.0,
    treated_share: float = 0.5,
) -> tuple[float, int | None]:
    """Standard error of a difference in means from the design, and the t degrees of freedom (None: normal).

    ``sd * sqrt(DE / (N P (1 - P)))`` with ``N = n_units * n_periods``, the design
    effect ``DE = 1 + (m - 1) * icc`` and ``m`` observations per cluster; t with
    ``n_clusters - 2`` degrees of freedom when there are clusters. The one formula
    behind :func:`mde_from_design` and :func:`power`.
    """
    if isinstance(n_units, bool) or not isinstance(n_units, int) or n_units < 2:
        raise ValueError(f"n_units={n_units!r} is not allowed; use a whole number of units >= 2")
    if isinstance(n_periods, bool) or not isinstance(n_periods, int) or n_periods < 1:
        raise ValueError(f"n_periods={n_periods!r} is not allowed; use a whole number >= 1")
    if n_clusters is not None and (isinstance(n_clusters, bool) or not isinstance(n_clusters, int) or n_clusters < 3):
        raise ValueError(f"n_clusters={n_clusters!r} is not allowed; use a whole number >= 3 or None")
    if not (isinstance(sd, (int, float)) and not isinstance(sd, bool) and math.isfinite(sd) and sd > 0):
        raise ValueError(f"sd={sd!r} is not allowed; the outcome's standard deviation must be positive")
    p = _probability("treated_share", treated_share)
    n_obs = n_units * n_periods
    m = n_obs / n_clusters if n_clusters is not None else float(n_periods)
    deff = design_effect(max(m, 1.0), icc)
    se = sd * math.sqrt(deff / (n_obs * p * (1 - p)))
    return se, None if n_clusters is None else n_clusters - 2


_DIRECTIONS = {"reduction": -1.0, "decrease": -1.0, "increase": 1.0}


def power(
    effect: float,
    *,
    se: float | None = None,
    result: Any = None,
    threshold: float | None = None,
    direction: str = "reduction",
    alpha: float = 0.05,
    df: int | None = None,
    n_units: int | None = None,
    n_clusters: int | None = None,
    icc: float = 0.0,
    n_periods: int = 1,
    sd: float = 1.0,
    treated_share: float = 0.5,
) -> float:
    """Probability, for a given true effect, of a significant estimate or of one that crosses a threshold.

    Exported as ``evaluator.power``.

    Parameters
    ----------
    effect : float
        The true effect (treated minus counterfactual, in the outcome's units).
    se : float, optional
        Standard error of the estimate. Otherwise taken from ``result`` (its
        ``.se``), else computed from the design arguments (``n_units`` ...) as in
        :func:`mde_from_design`.
    result : Result, optional
        A fitted result whose standard error is used.
    threshold : float, optional
        A contract threshold in the outcome's units, signed as the effect (a fall
        of 0.175 days is ``-0.175``). When given, the probability that the point
        estimate crosses it: ``estimate <= threshold`` for a reduction,
        ``estimate >= threshold`` for an increase. When ``None``, the probability that
        the estimate is statistically significant at ``alpha`` (two-sided) *in the
        stated direction*.
    direction : {"reduction", "increase"}
        Which direction counts as success (``"decrease"`` is accepted for
        ``"reduction"``, as contracts write it).
    alpha : float
        Two-sided significance level, by default 0.05.
    df : int, optional
        Degrees of freedom of a t reference distribution (few clusters: clusters - 1).
        From the design arguments with clusters it defaults to ``n_clusters - 2``.
    n_units, n_clusters, icc, n_periods, sd, treated_share
        The design, as in :func:`mde_from_design`; used only without ``se`` and ``result``.

    Returns
    -------
    float
        A probability in [0, 1]. The estimate is taken to be distributed around
        ``effect`` with scale ``se``, normal or t(``df``):
        ``P = F((effect - threshold) / se)`` (increase) or ``F((threshold - effect) / se)``
        (reduction); for significance the threshold is ``-+ q_{1-alpha/2} * se``.

    Raises
    ------
    ValueError
        Naming the parameter: a missing or non-positive standard error, a direction
        other than those above, ``alpha`` outside (0, 1), ``df`` below 1, or a
        non-finite effect or threshold.

    Examples
    --------
    A true fall of 0.3 days with a standard error of 0.1: found significant with
    probability 0.851; an estimate at or below a contract threshold of -0.175 days
    with probability 0.894.

    >>> round(power(-0.3, se=0.1), 3)
    0.851
    >>> round(power(-0.3, se=0.1, threshold=-0.175), 3)
    0.894
    >>> round(power(0.2, n_units=1_000, direction="increase"), 3)  # se from the design
    0.885
    """
    if isinstance(effect, bool) or not isinstance(effect, (int, float)) or not math.isfinite(effect):
        raise ValueError(f"effect={effect!r} is not allowed; the true effect must be a finite number")
    if direction not in _DIRECTIONS:
        raise ValueError(f"direction={direction!r} is not allowed; use 'reduction' or 'increase'")
    a = _probability("alpha", alpha)
    if df is not None and (isinstance(df, bool) or not isinstance(df, (int, float)) or df < 1):
        raise ValueError(f"df={df!r} is not allowed; use a number of degrees of freedom >= 1 or None (normal)")
    if se is None and result is not None:
        se = getattr(result, "se", None)
        name = "result.se"
    else:
        name = "se"
    if se is None:
        if n_units is None:
            raise ValueError("se=None is not allowed without result= or n_units=: give a standard error or a design")
        se, design_df = _design_se(
            n_units=n_units, n_clusters=n_clusters, icc=icc, n_periods=n_periods, sd=sd, treated_share=treated_share
        )
        df = design_df if df is None else df
    if isinstance(se, bool) or not isinstance(se, (int, float)) or not math.isfinite(se) or se <= 0:
        raise ValueError(f"{name}={se!r} is not allowed; the standard error must be a positive finite number")
    sign = _DIRECTIONS[direction]
    if threshold is None:
        cut = sign * _quantile(1 - a / 2, df) * float(se)
    else:
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not math.isfinite(threshold):
            raise ValueError(f"threshold={threshold!r} is not allowed; use a finite number in the outcome's units")
        cut = float(threshold)
    z = sign * (float(effect) - cut) / float(se)
    from scipy import stats  # here, so that importing evaluator.contracts stays light

    return float(stats.norm.cdf(z) if df is None else stats.t.cdf(z, df))


def threshold_sentence(threshold: float, mde: float, *, label: str = "") -> str:
    """Whether a contract threshold is within what the evaluation can detect, in words.

    A threshold smaller in magnitude than the minimum detectable effect (at 80%
    power) cannot be told apart from no effect.

    Examples
    --------
    >>> threshold_sentence(0.1, 0.3, label="days")  # doctest: +ELLIPSIS
    'The contract threshold (0.1 days) is smaller than the minimum detectable effect (0.3 days): this evaluation ...'
    """
    units = f" {label}" if label else ""
    t, m = f"{abs(threshold):.4g}{units}", f"{mde:.4g}{units}"
    if abs(threshold) < mde:
        return (
            f"The contract threshold ({t}) is smaller than the minimum detectable effect ({m}): this evaluation "
            "could not reliably tell an effect of the target size from no effect."
        )
    return (
        f"The contract threshold ({t}) is at least the minimum detectable effect ({m}): an effect of the target size "
        "would be detected."
    )
