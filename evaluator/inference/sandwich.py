"""Cluster-robust covariance: the CR1 sandwich (as Stata and reghdfe) and HC1; arrays in, arrays out."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse

from evaluator.errors import DesignError

__all__ = ["cr1_factor", "cr1_from_scores", "cr1_vcov", "group_sums", "hc1_from_meat", "hc1_vcov"]


def group_sums(values: np.ndarray, groups: np.ndarray, n_groups: int | None = None) -> np.ndarray:
    """Sum the rows of ``values`` within groups coded ``0..n_groups-1``.

    Examples
    --------
    >>> group_sums(np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), np.array([0, 1, 0]))
    array([[6., 8.],
           [3., 4.]])
    """
    values = np.asarray(values, dtype=float)
    groups = np.asarray(groups)
    if n_groups is None:
        n_groups = int(groups.max()) + 1 if groups.size else 0
    if values.ndim == 1:
        return np.bincount(groups, weights=values, minlength=n_groups)
    if values.shape[1] <= 2:
        return np.column_stack([np.bincount(groups, weights=v, minlength=n_groups) for v in values.T])
    n = len(groups)
    indicator = sparse.csr_matrix((np.ones(n), (groups, np.arange(n))), shape=(n_groups, n))
    return np.asarray(indicator @ values)


def _codes(cluster: np.ndarray) -> tuple[np.ndarray, int]:
    cluster = np.asarray(cluster)
    if cluster.dtype.kind in "iu" and cluster.size and cluster.min() >= 0:
        uniq, codes = np.unique(cluster, return_inverse=True)
        return codes.ravel(), len(uniq)
    codes, uniq = pd.factorize(cluster, sort=False)
    if (codes < 0).any():
        raise DesignError("the cluster variable has missing values; fill them or drop those rows")
    return codes, len(uniq)


def cr1_factor(n_obs: int, n_params: int, n_clusters: int) -> float:
    """The CR1 small-sample factor ``G/(G-1) * (N-1)/(N-K)``.

    Examples
    --------
    >>> round(cr1_factor(100, 3, 10), 6)
    1.134021
    """
    if n_clusters < 2:
        raise DesignError(f"cluster-robust inference needs at least 2 clusters; found {n_clusters}")
    if n_obs <= n_params:
        raise DesignError(f"{n_obs} observations cannot identify {n_params} parameters")
    return n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - n_params)


def _bread(X: np.ndarray) -> np.ndarray:
    return np.linalg.inv(X.T @ X)


def cr1_vcov(
    X: np.ndarray,
    resid: np.ndarray,
    cluster: np.ndarray,
    *,
    n_params: int | None = None,
    bread: np.ndarray | None = None,
    n_clusters: int | None = None,
    factor_on_bread: bool = False,
) -> np.ndarray:
    r"""CR1 cluster-robust covariance of (weighted) least-squares coefficients.

    .. math::

        \hat V = \frac{G}{G-1}\frac{N-1}{N-K} (X'X)^{-1}
                 \Big(\sum_g X_g'\hat e_g \hat e_g' X_g\Big) (X'X)^{-1}

    The one CR1 kernel of the package: two-way fixed effects, the matched-sample
    regression and the tests all call it, so the formula is written once.

    Parameters
    ----------
    X : (N, k) array
        Regressors after partialling out fixed effects (and times ``sqrt(w)``).
    resid : (N,) array
        Residuals (times ``sqrt(w)``). Only the row scores ``X * resid`` enter the
        meat, so weighted least squares may equally pass the unweighted ``X`` and
        ``w * e`` with the weighted bread.
    cluster : (N,) array
        Cluster labels, or codes ``0..n_clusters-1`` when ``n_clusters`` is given.
    n_params : int, optional
        ``K`` in the factor; defaults to ``k``. Pass ``k`` plus the number of
        partialled-out fixed effects *not* nested within clusters.
    bread : (k, k) array, optional
        ``(X'X)^{-1}`` (or a pseudo-inverse) if already computed.
    n_clusters : int, optional
        ``G``, when ``cluster`` already holds codes ``0..G-1`` (each used): skips
        coding the labels again.
    factor_on_bread : bool
        Multiply the bread by the small-sample factor before the products,
        ``((cA) M) A``, rather than the product, ``c (A M A)``. The two agree to
        rounding; the matched-sample regression has always used the first order
        and keeps it so its standard errors stay the same to the last digit.

    Returns
    -------
    (k, k) numpy.ndarray

    Raises
    ------
    DesignError
        Fewer than 2 clusters, or no more observations than parameters.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([np.ones(40), rng.normal(size=40)])
    >>> V = cr1_vcov(X, rng.normal(size=40), np.repeat(np.arange(8), 5))
    >>> V.shape
    (2, 2)
    """
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if n_clusters is None:
        codes, G = _codes(cluster)
    else:
        codes, G = np.asarray(cluster), int(n_clusters)
    A = _bread(X) if bread is None else bread
    scores = group_sums(X * np.asarray(resid, dtype=float)[:, None], codes, G)
    K = X.shape[1] if n_params is None else n_params
    return cr1_from_scores(scores, A, n_obs=X.shape[0], n_params=K, factor_on_bread=factor_on_bread)


def cr1_from_scores(
    scores: np.ndarray, bread: np.ndarray, *, n_obs: int, n_params: int, factor_on_bread: bool = False
) -> np.ndarray:
    """:func:`cr1_vcov` from the clusters' score sums ``X_g'e_g`` (G x k) formed elsewhere (out of core, in passes).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X, e, g = rng.normal(size=(40, 1)), rng.normal(size=40), np.repeat(np.arange(8), 5)
    >>> A = np.linalg.inv(X.T @ X)
    >>> S = np.bincount(g, weights=X[:, 0] * e)[:, None]
    >>> bool(np.allclose(cr1_from_scores(S, A, n_obs=40, n_params=1), cr1_vcov(X, e, g)))
    True
    """
    meat = scores.T @ scores
    c = cr1_factor(n_obs, n_params, scores.shape[0])
    if factor_on_bread:
        return c * bread @ meat @ bread
    return c * (bread @ meat @ bread)


def hc1_vcov(
    X: np.ndarray, resid: np.ndarray, *, n_params: int | None = None, bread: np.ndarray | None = None
) -> np.ndarray:
    r"""HC1 heteroskedasticity-robust covariance, factor ``N/(N-K)``.

    .. math:: \hat V = \frac{N}{N-K} (X'X)^{-1}\Big(\sum_i \hat e_i^2 x_i x_i'\Big)(X'X)^{-1}

    Examples
    --------
    >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
    >>> hc1_vcov(X, np.array([0.1, -0.2, 0.2, -0.1])).shape
    (2, 2)
    """
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    N = X.shape[0]
    K = X.shape[1] if n_params is None else n_params
    if N <= K:
        raise DesignError(f"{N} observations cannot identify {K} parameters")
    A = _bread(X) if bread is None else bread
    Xe = X * np.asarray(resid, dtype=float)[:, None]
    return hc1_from_meat(Xe.T @ Xe, A, n_obs=N, n_params=K)


def hc1_from_meat(meat: np.ndarray, bread: np.ndarray, *, n_obs: int, n_params: int) -> np.ndarray:
    """:func:`hc1_vcov` from ``sum_i e_i^2 x_i x_i'`` formed elsewhere (out of core, in passes).

    Examples
    --------
    >>> hc1_from_meat(np.array([[2.0]]), np.array([[0.5]]), n_obs=10, n_params=2)
    array([[0.625]])
    """
    if n_obs <= n_params:
        raise DesignError(f"{n_obs} observations cannot identify {n_params} parameters")
    return n_obs / (n_obs - n_params) * (bread @ meat @ bread)
