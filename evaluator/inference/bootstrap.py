"""Bootstrap inference: wild cluster (restricted, WCR) and multiplier bootstraps, sup-t bands; arrays in, arrays out."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Literal, NamedTuple

import numpy as np
from scipy import sparse

from evaluator.errors import DesignError
from evaluator.inference.compiled import jit
from evaluator.inference.sandwich import _bread, _codes, cr1_factor, group_sums
from evaluator.policy import WEBB_BELOW_CLUSTERS

__all__ = [
    "Band",
    "CellBootstrap",
    "CellClusterSums",
    "WeightKind",
    "WildBootstrapTest",
    "cell_cluster_sums",
    "draw_weights",
    "simultaneous_band",
    "wild_cluster_bootstrap",
    "wild_cluster_bootstrap_cell_sums",
    "wild_cluster_bootstrap_cells",
    "wild_from_sums",
    "wild_sup_t_critical_value",
]

WeightKind = Literal["rademacher", "mammen", "webb"]

_WEBB = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])
_SQRT5 = np.sqrt(5.0)
_MAMMEN_LOW = -(_SQRT5 - 1.0) / 2.0
_MAMMEN_HIGH = (_SQRT5 + 1.0) / 2.0
_MAMMEN_P_LOW = (_SQRT5 + 1.0) / (2.0 * _SQRT5)


def draw_weights(rng: np.random.Generator, size: int | tuple[int, ...], kind: WeightKind = "rademacher") -> np.ndarray:
    """Draw wild-bootstrap multiplier weights (mean 0, variance 1).

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness.
    size : int or tuple of int
        Shape of the returned array.
    kind : {"rademacher", "mammen", "webb"}
        ``"rademacher"``: -1 or +1 with probability 1/2. ``"mammen"``: the two-point
        distribution with third moment 1 (Mammen 1993). ``"webb"``: six points
        ``+-sqrt(1/2), +-1, +-sqrt(3/2)`` with probability 1/6 each (Webb 2023),
        which has many more distinct draws than Rademacher when clusters are few.

    Returns
    -------
    numpy.ndarray of float

    Examples
    --------
    >>> w = draw_weights(np.random.default_rng(0), (4, 3), "webb")
    >>> w.shape
    (4, 3)
    >>> sorted(set(np.abs(draw_weights(np.random.default_rng(0), 100)).tolist()))
    [1.0]
    """
    if kind == "rademacher":
        return rng.integers(0, 2, size=size, dtype=np.int8).astype(float) * 2.0 - 1.0
    if kind == "webb":
        return _WEBB[rng.integers(0, 6, size=size)]
    if kind == "mammen":
        return np.where(rng.random(size=size) < _MAMMEN_P_LOW, _MAMMEN_LOW, _MAMMEN_HIGH)
    raise ValueError(f"kind={kind!r}: use 'rademacher', 'mammen' or 'webb'")


class WildBootstrapTest(NamedTuple):
    """Outcome of :func:`wild_cluster_bootstrap`; one entry per contrast tested.

    Attributes
    ----------
    estimate, std_error, statistic : numpy.ndarray
        ``R'beta``, its CR1 standard error and the t statistic against ``null``.
    p_value : numpy.ndarray
        Symmetric bootstrap p-value, ``mean(|t*| >= |t|)``.
    ci_low, ci_high : numpy.ndarray
        Confidence interval by test inversion (``+-inf`` when the test cannot
        reject at level ``alpha`` anywhere, which happens with very few clusters).
    n_boot : int
        Number of bootstrap draws used (``2^G`` when enumerated).
    weights : str
        Weight distribution used.
    enumerated : bool
        Whether all distinct weight vectors were enumerated.
    """

    estimate: np.ndarray
    std_error: np.ndarray
    statistic: np.ndarray
    p_value: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    n_boot: int
    weights: str
    enumerated: bool


def _rng(seed: int | np.random.Generator | None) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _weight_plan(
    G: int, n_boot: int, weights: Literal["auto", "rademacher", "mammen", "webb"]
) -> tuple[str, bool, int]:
    kind = ("webb" if G < WEBB_BELOW_CLUSTERS else "rademacher") if weights == "auto" else weights
    if kind not in ("rademacher", "mammen", "webb"):
        raise ValueError(f"weights={weights!r}: use 'auto', 'rademacher', 'mammen' or 'webb'")
    support = {"rademacher": 2, "webb": 6}.get(kind)
    if support is not None and G * np.log(support) <= np.log(n_boot) + 1e-12:
        return kind, True, int(support**G)
    return kind, False, int(n_boot)


def _weight_chunks(rng: np.random.Generator, G: int, kind: str, enumerated: bool, B: int):
    """Yield (G, b) blocks of weights, b summing to B, deterministic given rng."""
    if enumerated:
        values = np.array([1.0, -1.0]) if kind == "rademacher" else _WEBB
        grid = np.array(list(itertools.product(values, repeat=G)), dtype=float).T  # G x B
        yield grid
        return
    chunk = max(1, min(B, 16_000_000 // max(G, 1)))
    done = 0
    while done < B:
        b = min(chunk, B - done)
        yield draw_weights(rng, (G, b), kind)  # type: ignore[arg-type]
        done += b


def wild_cluster_bootstrap(
    X: np.ndarray,
    y: np.ndarray,
    cluster: np.ndarray,
    contrasts: np.ndarray | int | list[int],
    *,
    null: float | np.ndarray = 0.0,
    n_boot: int = 999,
    weights: Literal["auto", "rademacher", "mammen", "webb"] = "auto",
    alpha: float = 0.05,
    seed: int | np.random.Generator | None = None,
    n_params: int | None = None,
    ci: bool = True,
) -> WildBootstrapTest:
    r"""Restricted wild cluster bootstrap (WCR) t-tests and test-inversion intervals.

    For each contrast :math:`R` (a coefficient or a linear combination) the null
    :math:`H_0: R'\beta = r` is imposed, the restricted residuals
    :math:`\tilde u` are multiplied by cluster-level weights :math:`v_g`, and the
    bootstrap t statistic uses the same CR1 variance as the sample one. The
    p-value is :math:`B^{-1}\sum_b 1[|t^*_b| \ge |t|]`.

    Notes
    -----
    ``X`` must already have partialled out any fixed effects that are *nested
    within clusters* (unit effects when units sit inside clusters); fixed effects
    that are not nested (time effects) must be columns of ``X``: then the
    bootstrap residuals are exact. Everything is linear in :math:`r`: with
    :math:`a = (X'X)^{-1}R`, :math:`S_g(r) = X_g'\tilde u_g(r) = S_g^0 - rS_g^1`,

    .. math::

        R'\beta^*_b - r = \sum_g a'S_g(r) v_{gb},\qquad
        a's^*_{gb} = v_{gb}\,a'S_g(r) - a'H_g(X'X)^{-1}\sum_h S_h(r) v_{hb},

    with :math:`H_g = X_g'X_g`, so each draw is a few dot products of length G
    and the bootstrap variance is a quadratic in :math:`r`. Inverting the test
    (bisection on :math:`p(r) = \alpha`) then costs O(B) per evaluation.
    The same draws are used for every contrast and every :math:`r`.

    Parameters
    ----------
    X : (N, k) array
        Regressors (fixed effects nested in clusters partialled out; times ``sqrt(w)``).
    y : (N,) array
        Outcome, transformed like ``X``.
    cluster : (N,) array
        Cluster labels.
    contrasts : int, list of int, or (k,) / (k, m) array
        Coefficient index(es) or contrast vector(s) :math:`R`.
    null : float or array
        :math:`r` under the null for the p-value.
    n_boot : int
        Number of draws (fewer when all distinct draws are enumerated).
    weights : {"auto", "rademacher", "mammen", "webb"}
        ``"auto"`` is Webb with fewer than 12 clusters, Rademacher otherwise.
    alpha : float
        Level of the intervals.
    seed : int, Generator or None
        Randomness; the same seed gives the same answer.
    n_params : int, optional
        ``K`` of the CR1 factor (see :func:`cr1_vcov`).
    ci : bool
        Compute intervals by test inversion.

    Returns
    -------
    WildBootstrapTest

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(30), 10)
    >>> X = np.column_stack([np.ones(300), rng.normal(size=300)])
    >>> y = X @ [1.0, 0.5] + rng.normal(size=300) + rng.normal(size=30)[g]
    >>> out = wild_cluster_bootstrap(X, y, g, 1, seed=0)
    >>> bool(out.p_value[0] < 0.01), bool(out.ci_low[0] < 0.5 < out.ci_high[0])
    (True, True)
    """
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    y = np.asarray(y, dtype=float)
    N, k = X.shape
    codes, G = _codes(cluster)
    if G < 2:
        raise DesignError(f"the wild cluster bootstrap needs at least 2 clusters; found {G}")
    A = _bread(X)
    beta = A @ (X.T @ y)
    e = y - X @ beta
    scores = group_sums(X * e[:, None], codes, G)  # G x k
    indicator = sparse.csr_matrix((np.ones(N), (codes, np.arange(N))), shape=(G, N))

    def cluster_h(a: np.ndarray) -> np.ndarray:
        return np.asarray(indicator @ (X * (X @ a)[:, None]))  # rows H_g a

    return wild_from_sums(
        A,
        beta,
        scores,
        cluster_h,
        n_obs=N,
        contrasts=contrasts,
        null=null,
        n_boot=n_boot,
        weights=weights,
        alpha=alpha,
        seed=seed,
        n_params=n_params,
        ci=ci,
    )


def wild_from_sums(
    A: np.ndarray,
    beta: np.ndarray,
    scores: np.ndarray,
    cluster_h: Callable[[np.ndarray], np.ndarray],
    *,
    n_obs: int,
    contrasts: np.ndarray | int | list[int],
    null: float | np.ndarray = 0.0,
    n_boot: int = 999,
    weights: Literal["auto", "rademacher", "mammen", "webb"] = "auto",
    alpha: float = 0.05,
    seed: int | np.random.Generator | None = None,
    n_params: int | None = None,
    ci: bool = True,
) -> WildBootstrapTest:
    """:func:`wild_cluster_bootstrap` from sums formed elsewhere (out of core, in passes over the rows).

    ``A`` is ``(X'X)^{-1}``, ``beta`` the coefficients, ``scores`` the clusters' ``X_g'e_g`` (G x k, clusters in
    the order their weights are drawn) and ``cluster_h(a)`` the rows ``H_g a`` with ``H_g = X_g'X_g``; ``n_obs`` is
    N. The other arguments are :func:`wild_cluster_bootstrap`'s, with the same draws for the same seed.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(30), 10)
    >>> X = np.column_stack([np.ones(300), rng.normal(size=300)])
    >>> y = X @ [1.0, 0.5] + rng.normal(size=300) + rng.normal(size=30)[g]
    >>> A = np.linalg.inv(X.T @ X); b = A @ X.T @ y
    >>> S = np.stack([np.bincount(g, weights=X[:, j] * (y - X @ b)) for j in range(2)], axis=1)
    >>> H = np.stack([X[g == c].T @ X[g == c] for c in range(30)])
    >>> out = wild_from_sums(A, b, S, lambda a: H @ a, n_obs=300, contrasts=1, seed=0)
    >>> bool(np.isclose(out.p_value[0], wild_cluster_bootstrap(X, y, g, 1, seed=0).p_value[0]))
    True
    """
    N, (G, k) = n_obs, scores.shape
    if G < 2:
        raise DesignError(f"the wild cluster bootstrap needs at least 2 clusters; found {G}")
    R = np.asarray(contrasts)
    if R.dtype.kind in "iu" or (R.ndim <= 1 and R.size != k):
        idx = np.atleast_1d(R).astype(int)
        R = np.zeros((k, idx.size))
        R[idx, np.arange(idx.size)] = 1.0
    R = np.asarray(R, dtype=float)
    if R.ndim == 1:
        R = R[:, None]
    m = R.shape[1]
    r0 = np.broadcast_to(np.asarray(null, dtype=float), (m,))
    K = k if n_params is None else n_params
    c = cr1_factor(N, K, G)

    a = A @ R  # k x m
    est = R.T @ beta
    den = np.einsum("km,km->m", R, a)  # R'AR
    se = np.sqrt(c * ((scores @ a) ** 2).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = (est - r0) / se

    # Per contrast j, with w = S'v and c = (alpha o Q)'v (k-vectors per draw):
    #   sum_g d_gb^2 = sum_g v_gb^2 alpha_g^2 - 2 w_b'c_b + w_b'(Q'Q)w_b,
    # so each draw needs one product of a (4k+2) x G matrix with the G weights.
    kind, enumerated, B = _weight_plan(G, n_boot, weights)
    feats, sqs, QtQs = [], [], []
    for j in range(m):
        Hz = cluster_h(a[:, j])  # rows H_g a
        S0 = scores + est[j] / den[j] * Hz  # X_g' u0_g with u0 = e + est/den z
        S1 = Hz / den[j]
        Q = Hz @ A  # rows (A H_g a)'
        al0, al1 = S0 @ a[:, j], S1 @ a[:, j]
        feats.append(np.column_stack([S0, S1, al0[:, None] * Q, al1[:, None] * Q, al0, al1]))
        sqs.append(np.column_stack([al0 * al0, al0 * al1, al1 * al1]))
        QtQs.append(Q.T @ Q)
    rng = _rng(seed)
    n0, n1, P, Qx, R2 = (np.empty((m, B)) for _ in range(5))
    start = 0
    for V in _weight_chunks(rng, G, kind, enumerated, B):
        b = V.shape[1]
        sl = slice(start, start + b)
        V2 = None if kind == "rademacher" else V * V
        for j in range(m):
            FV = feats[j].T @ V
            w0, w1, c0, c1 = FV[:k], FV[k : 2 * k], FV[2 * k : 3 * k], FV[3 * k : 4 * k]
            sq = np.repeat(sqs[j].sum(axis=0)[:, None], b, axis=1) if V2 is None else sqs[j].T @ V2
            Qw0, Qw1 = QtQs[j] @ w0, QtQs[j] @ w1
            n0[j, sl], n1[j, sl] = FV[4 * k], FV[4 * k + 1]
            P[j, sl] = sq[0] - 2.0 * (w0 * c0).sum(axis=0) + (w0 * Qw0).sum(axis=0)
            Qx[j, sl] = sq[1] - (w1 * c0).sum(axis=0) - (w0 * c1).sum(axis=0) + (w0 * Qw1).sum(axis=0)
            R2[j, sl] = sq[2] - 2.0 * (w1 * c1).sum(axis=0) + (w1 * Qw1).sum(axis=0)
        start += b

    def pvalue(j: int, r: np.ndarray) -> np.ndarray:
        # contrast j's p-values at several nulls r at once (draws x nulls), the arithmetic of one at a time
        r = np.asarray(r, dtype=float)
        t = (est[j] - r) / se[j]
        num = n0[j, :, None] - r * n1[j, :, None]
        var = c * np.maximum(P[j, :, None] - 2.0 * r * Qx[j, :, None] + r * r * R2[j, :, None], 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            tstar = np.abs(num) / np.sqrt(var)
        tstar = np.where(np.isnan(tstar), 0.0, tstar)
        return np.mean(tstar >= np.abs(t) * (1.0 - 1e-10), axis=0)

    pv = np.array([pvalue(j, r0[j : j + 1])[0] for j in range(m)])
    lo = np.full(m, np.nan)
    hi = np.full(m, np.nan)
    if ci:
        for j in range(m):
            lo[j], hi[j] = _invert(lambda r, j=j: pvalue(j, r), est[j], se[j], alpha, vectorised=True)
    return WildBootstrapTest(est, se, stat, pv, lo, hi, B, kind, enumerated)


def _invert(pfun, est: float, se: float, alpha: float, *, vectorised: bool = False) -> tuple[float, float]:
    """Interval {r: p(r) > alpha} around est, by bracketing and bisection.

    Both ends are searched in lockstep, so a ``vectorised`` ``pfun`` (an array of points in,
    their p-values out) is called once per step for the two ends: half the calls, each on two
    points, and the very points a one-end-at-a-time search would try.
    """
    if not np.isfinite(se) or se <= 0:
        return est, est
    tol = 1e-9 * (abs(est) + se)
    many = pfun if vectorised else (lambda points: [pfun(x) for x in points])
    ends = [{"sign": sign, "inner": est, "step": 2.0 * se, "n": 0, "k": 0, "phase": "bracket"} for sign in (-1.0, 1.0)]
    for end in ends:
        end["outer"] = est + end["sign"] * end["step"]
    while True:
        todo = []
        for end in ends:
            if end["phase"] == "bracket":
                end["point"] = end["outer"]
                todo.append(end)
            elif end["phase"] == "bisect":
                if end["k"] >= 200 or abs(end["outer"] - end["inner"]) <= tol:
                    end["phase"], end["result"] = "done", 0.5 * (end["inner"] + end["outer"])
                else:
                    end["point"] = 0.5 * (end["inner"] + end["outer"])
                    todo.append(end)
        if not todo:
            break
        for end, p in zip(todo, many(np.array([e["point"] for e in todo])), strict=True):
            if end["phase"] == "bracket":
                if p > alpha:  # still inside: move outwards
                    end["inner"] = end["outer"]
                    end["step"] *= 2.0
                    end["outer"] = est + end["sign"] * end["step"]
                    end["n"] += 1
                    if end["n"] > 40:
                        end["phase"], end["result"] = "done", end["sign"] * np.inf
                else:
                    end["phase"] = "bisect"
            else:
                end["k"] += 1
                end["inner" if p > alpha else "outer"] = end["point"]
    return ends[0]["result"], ends[1]["result"]


def wild_sup_t_critical_value(
    X: np.ndarray,
    y: np.ndarray,
    cluster: np.ndarray,
    coefs: list[int] | np.ndarray,
    *,
    n_boot: int = 999,
    weights: Literal["auto", "rademacher", "mammen", "webb"] = "auto",
    alpha: float = 0.05,
    seed: int | np.random.Generator | None = None,
) -> float:
    r"""Critical value of a sup-t uniform band from an unrestricted wild cluster bootstrap.

    Draws :math:`\beta^* - \hat\beta = (X'X)^{-1}\sum_g X_g'\hat e_g v_g` and returns
    the :math:`1-\alpha` quantile of :math:`\max_j |\beta^*_j - \hat\beta_j| / \sigma_j`,
    where :math:`\sigma_j^2 = \sum_g (a_j'X_g'\hat e_g)^2` is the exact bootstrap
    variance. The band is :math:`\hat\beta_j \pm c\,\mathrm{se}_j` (Montiel Olea and
    Plagborg-Moller 2019). The draws are unrestricted, so a coefficient resting on one cluster
    (whose residuals there sum to zero) gets a band narrower than its restricted test-inversion
    interval; :func:`simultaneous_band` extends the band to contain it.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> g = np.repeat(np.arange(40), 5)
    >>> X = rng.normal(size=(200, 3))
    >>> c = wild_sup_t_critical_value(X, rng.normal(size=200), g, [0, 1, 2], seed=1)
    >>> bool(1.96 < c < 3.5)
    True
    """
    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    codes, G = _codes(cluster)
    A = _bread(X)
    e = np.asarray(y, dtype=float) - X @ (A @ (X.T @ y))
    a = A[:, np.asarray(coefs, dtype=int)]  # k x m
    alpha_g = group_sums(X * e[:, None], codes, G) @ a  # G x m
    sd = np.sqrt((alpha_g**2).sum(axis=0))
    kind, enumerated, B = _weight_plan(G, n_boot, weights)
    tmax = []
    for V in _weight_chunks(_rng(seed), G, kind, enumerated, B):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.abs(alpha_g.T @ V) / sd[:, None]
        tmax.append(np.nanmax(np.where(np.isfinite(t), t, np.nan), axis=0))
    return float(np.quantile(np.concatenate(tmax), 1.0 - alpha))


class Band(NamedTuple):
    """Outcome of :func:`simultaneous_band`; one entry per row of a table.

    Attributes
    ----------
    low, high : numpy.ndarray
        The simultaneous band, ``NaN`` on rows without one.
    critical_value : float
        The critical value used: the sup-t one, or the pointwise one where that was larger.
    raised : bool
        Whether the sup-t critical value fell below the pointwise one and was raised to it.
    widened : numpy.ndarray of bool
        Rows whose band was extended to contain their pointwise interval (beyond
        ``estimate +- critical_value * std_error``).
    """

    low: np.ndarray
    high: np.ndarray
    critical_value: float
    raised: bool
    widened: np.ndarray


def simultaneous_band(
    estimate: np.ndarray,
    std_error: np.ndarray,
    critical_value: float,
    ci_low: np.ndarray,
    ci_high: np.ndarray,
    *,
    rows: np.ndarray | None = None,
    pointwise_critical_value: float | None = None,
) -> Band:
    r"""A sup-t simultaneous band that contains every row's pointwise interval.

    The band is :math:`\hat\theta_j \pm c\,\mathrm{se}_j`, with :math:`c` the sup-t critical
    value, then extended row by row to the union with the pointwise interval
    ``[ci_low, ci_high]``. A simultaneous band covers every row at once, so it can never be
    narrower than the pointwise interval of any row; two things can make the plain band
    narrower, and each is repaired here:

    - ``pointwise_critical_value`` (when the pointwise interval is
      :math:`\hat\theta_j \pm z\,\mathrm{se}_j` with the same standard errors): a sup-t
      critical value below it comes from discrete or degenerate bootstrap draws (few clusters,
      cells resting on one cluster). It is raised to the pointwise value, as R ``did`` does;
    - pointwise intervals built from other ingredients (the restricted wild cluster bootstrap by
      test inversion, asymmetric, while the band uses an unrestricted bootstrap's standard
      errors): where such an interval sticks out of the band, the band takes its end points.
      When a row rests on a single cluster the unrestricted draws miss the treated side's
      variance (its residuals are zero), so its standard error understates the uncertainty
      that the restricted bootstrap, which imposes the null on that cluster, reflects.

    Widening can only raise the band's joint coverage; rows where the band already contained
    the pointwise interval are unchanged.

    Parameters
    ----------
    estimate, std_error : (m,) array
        Estimates and the standard errors the sup-t critical value was calibrated with.
    critical_value : float
        Sup-t critical value (``NaN`` when there is none).
    ci_low, ci_high : (m,) array
        Pointwise interval of each row (``NaN`` where there is none, ``+-inf`` allowed).
    rows : (m,) boolean array, optional
        Rows that get a band (all by default); the others are ``NaN``.
    pointwise_critical_value : float, optional
        Critical value of the pointwise intervals when they are symmetric with the same
        standard errors (e.g. the normal quantile); the sup-t value is not let below it.

    Returns
    -------
    Band

    Examples
    --------
    >>> b = simultaneous_band(np.array([0.0, 1.0]), np.array([1.0, 0.1]), 2.5,
    ...                       np.array([-2.0, -1.0]), np.array([2.0, 3.0]))
    >>> b.low.tolist(), b.high.tolist(), b.widened.tolist()
    ([-2.5, -1.0], [2.5, 3.0], [False, True])
    >>> simultaneous_band(np.zeros(1), np.ones(1), 1.5, -np.ones(1) * 1.96, np.ones(1) * 1.96,
    ...                   pointwise_critical_value=1.96).critical_value
    1.96
    """
    est = np.asarray(estimate, dtype=float)
    se = np.asarray(std_error, dtype=float)
    lo_ci = np.broadcast_to(np.asarray(ci_low, dtype=float), est.shape)
    hi_ci = np.broadcast_to(np.asarray(ci_high, dtype=float), est.shape)
    rows = np.ones(est.shape, dtype=bool) if rows is None else np.asarray(rows, dtype=bool)
    crit = float(critical_value)
    raised = False
    if pointwise_critical_value is not None and math.isfinite(crit) and crit < pointwise_critical_value:
        crit, raised = float(pointwise_critical_value), True
    low = np.where(rows, est - crit * se, np.nan)
    high = np.where(rows, est + crit * se, np.nan)
    # fmin/fmax skip NaN: a row whose band is missing but whose pointwise interval exists gets that interval.
    new_low = np.where(rows, np.fmin(low, lo_ci), np.nan)
    new_high = np.where(rows, np.fmax(high, hi_ci), np.nan)
    with np.errstate(invalid="ignore"):
        widened = rows & (
            (new_low < low)
            | (new_high > high)
            | (np.isnan(low) & ~np.isnan(new_low))
            | (np.isnan(high) & ~np.isnan(new_high))
        )
    return Band(new_low, new_high, crit, raised, widened)


class CellBootstrap(NamedTuple):
    """Outcome of :func:`wild_cluster_bootstrap_cells` for one aggregate."""

    p_value: float
    ci_low: float
    ci_high: float
    n_boot: int
    weights: str
    enumerated: bool


def wild_cluster_bootstrap_cells(
    psi: np.ndarray,
    treated: np.ndarray,
    control: np.ndarray,
    aggregation: np.ndarray,
    estimate: float,
    cluster: np.ndarray,
    *,
    n_boot: int = 999,
    weights: Literal["auto", "rademacher", "mammen", "webb"] = "auto",
    alpha: float = 0.05,
    seed: int | np.random.Generator | None = None,
) -> CellBootstrap:
    r"""Restricted wild cluster bootstrap for an aggregate of difference-in-differences cells.

    Callaway-Sant'Anna aggregates are weighted sums :math:`\theta = \sum_c a_c \theta_c` of
    cells, each a difference between a treated group's and a control group's mean
    (of outcome changes, or of doubly-robust pseudo-outcomes). Each cell's influence
    function gives its residuals :math:`r_{ic}` inside the two groups. Under
    :math:`H_0: \theta = \theta_0` every cell is shifted by :math:`\delta = \theta_0 - \hat\theta`
    (restricted least squares of the cell's two-group regression), so the residuals
    become :math:`r_{ic} + \delta s_{ic}` with :math:`s = -n_C/N` for treated and
    :math:`n_T/N` for control units. Cluster weights multiply the restricted
    residuals; each draw recomputes the aggregate and its clustered standard error
    (residuals re-centred within every group), giving a bootstrap-t. Numerator and
    variance are linear and quadratic in :math:`\delta`, so the test is inverted
    exactly by bisection on five numbers per draw.

    Parameters
    ----------
    psi : (n, K) array
        Cell influence functions, scaled so that ``theta_c - truth ~ psi[:, c].mean()``
        and zero outside a cell's treated and control units.
    treated, control : (n, K) boolean arrays
        Membership of each cell's treated and control groups.
    aggregation : (K,) array
        Aggregation weights ``a_c``.
    estimate : float
        :math:`\hat\theta = \sum_c a_c \hat\theta_c`.
    cluster : (n,) array
        Cluster of each unit.
    n_boot, weights, alpha, seed
        As in :func:`wild_cluster_bootstrap` (Webb weights below 12 clusters).

    Returns
    -------
    CellBootstrap
        Symmetric bootstrap-t p-value of :math:`\theta = 0` and the interval by test
        inversion. Estimation error in the aggregation weights is not bootstrapped.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = 40; g = np.repeat(np.arange(8), 5); t = (g < 4)
    >>> dy = rng.normal(size=n) + 0.5 * t
    >>> psi = np.where(t, n * (dy - dy[t].mean()) / t.sum(), -n * (dy - dy[~t].mean()) / (~t).sum())
    >>> out = wild_cluster_bootstrap_cells(psi[:, None], t[:, None], ~t[:, None], np.ones(1),
    ...                                    dy[t].mean() - dy[~t].mean(), g, seed=1)
    >>> bool(out.ci_low < dy[t].mean() - dy[~t].mean() < out.ci_high)
    True
    """
    sums = cell_cluster_sums(psi, treated, control, cluster)
    return wild_cluster_bootstrap_cell_sums(
        sums, aggregation, estimate, n_boot=n_boot, weights=weights, alpha=alpha, seed=seed
    )


class CellClusterSums(NamedTuple):
    """What the restricted wild cluster bootstrap of cells needs: per cluster and cell, counts and residual sums.

    ``count_t[g, c]`` and ``count_c[g, c]`` count cell ``c``'s treated and control units in
    cluster ``g`` (clusters in the sorted order of their ids, so that the weights drawn for
    them do not depend on the order of the rows), ``resid_t`` and ``resid_c`` sum their
    residuals (each unit's outcome change, or pseudo-outcome, minus its group's mean).
    Out of core they are formed from per-(cluster, cohort) sums without the units.
    """

    count_t: np.ndarray
    count_c: np.ndarray
    resid_t: np.ndarray
    resid_c: np.ndarray

    def columns(self, used: np.ndarray) -> CellClusterSums:
        """The sums of the cells ``used`` (a boolean mask or indices)."""
        return CellClusterSums(*(a[:, used] for a in self))


def cell_cluster_sums(
    psi: np.ndarray, treated: np.ndarray, control: np.ndarray, cluster: np.ndarray
) -> CellClusterSums:
    """:class:`CellClusterSums` of unit-level cell influence functions (see :func:`wild_cluster_bootstrap_cells`).

    Examples
    --------
    >>> t = np.array([[True], [True], [False], [False]])
    >>> psi = np.array([[2.0], [-2.0], [1.0], [-1.0]])
    >>> cell_cluster_sums(psi, t, ~t, np.array([0, 1, 0, 1])).count_t.ravel().tolist()
    [1.0, 1.0]
    """
    psi = np.asarray(psi, dtype=float)
    treated = np.asarray(treated, dtype=bool)
    control = np.asarray(control, dtype=bool)
    n, K = psi.shape
    codes, G = _codes(np.asarray(cluster))
    if G < 2:
        raise DesignError("the cluster bootstrap needs at least 2 clusters; found 1")
    n_t = treated.sum(0).astype(float)
    n_c = control.sum(0).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):  # an empty group is refused when it is bootstrapped
        coef = np.where(treated, 1.0 / n_t, 0.0) - np.where(control, 1.0 / n_c, 0.0)
        r = np.where(coef != 0, psi / (n * coef), 0.0)
    onehot = sparse.csr_matrix((np.ones(n), (codes, np.arange(n))), shape=(G, n))
    tr, ct = treated.astype(float), control.astype(float)
    return CellClusterSums(
        np.asarray(onehot @ tr), np.asarray(onehot @ ct), np.asarray(onehot @ (r * tr)), np.asarray(onehot @ (r * ct))
    )


def wild_cluster_bootstrap_cell_sums(
    sums: CellClusterSums,
    aggregation: np.ndarray,
    estimate: float,
    *,
    n_boot: int = 999,
    weights: Literal["auto", "rademacher", "mammen", "webb"] = "auto",
    alpha: float = 0.05,
    seed: int | np.random.Generator | None = None,
) -> CellBootstrap:
    """:func:`wild_cluster_bootstrap_cells` from the cells' :class:`CellClusterSums` (the same numbers).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> n = 40; g = np.repeat(np.arange(8), 5); t = (g < 4)
    >>> dy = rng.normal(size=n) + 0.5 * t
    >>> psi = np.where(t, n * (dy - dy[t].mean()) / t.sum(), -n * (dy - dy[~t].mean()) / (~t).sum())
    >>> sums = cell_cluster_sums(psi[:, None], t[:, None], ~t[:, None], g)
    >>> est = dy[t].mean() - dy[~t].mean()
    >>> a = wild_cluster_bootstrap_cell_sums(sums, np.ones(1), est, seed=1)
    >>> a == wild_cluster_bootstrap_cells(psi[:, None], t[:, None], ~t[:, None], np.ones(1), est, g, seed=1)
    True
    """
    agg = np.asarray(aggregation, dtype=float)
    count_t, count_c, resid_t, resid_c = (np.asarray(a, dtype=float) for a in sums)
    G = count_t.shape[0]
    if G < 2:
        raise DesignError("the cluster bootstrap needs at least 2 clusters; found 1")
    n_t = count_t.sum(0)
    n_c = count_c.sum(0)
    if np.any(n_t == 0) or np.any(n_c == 0):
        raise DesignError("every cell needs treated and control units for the cluster bootstrap")
    N = n_t + n_c
    share_t = count_t / n_t * agg  # G x K: cluster's share of each treated group, times a_c
    share_c = count_c / n_c * agg
    # residuals r within groups, and s (-n_C/N for treated, n_T/N for control units): their G x K sums
    group = {"r": (resid_t, resid_c), "s": (count_t * (-n_c / N), count_c * (n_t / N))}
    sums_ = {}
    for name, (Et, Ec) in group.items():
        sums_[name] = (Et / n_t, Ec / n_c, (Et / n_t - Ec / n_c) @ agg)
    se = float(np.sqrt((sums_["r"][2] ** 2).sum()))

    kind, enumerated, B = _weight_plan(G, n_boot, weights)
    if not (se > 0 and math.isfinite(se)):
        # With very few clusters the clustered se of an aggregate can be exactly 0 (every cluster's
        # residual sum cancels): the bootstrap-t is undefined, so say so instead of dividing by zero.
        nan = float("nan")
        return CellBootstrap(nan, nan, nan, 0, kind, enumerated)
    rng = _rng(seed)
    coeffs = []  # per draw: numerator (n0, n1) and variance (a, b, c) as functions of delta
    for W in _weight_chunks(rng, G, kind, enumerated, B):
        Wt = W.T  # b x G
        parts = []
        for name in ("r", "s"):
            mt, mc, S = sums_[name]
            num = Wt @ S
            # Re-centre the re-weighted residuals within every group of every cell.
            corr = (Wt @ mt) @ share_t.T - (Wt @ mc) @ share_c.T  # b x G
            parts.append((num, Wt * S - corr))
        (n0, B0), (n1, B1) = parts
        coeffs.append(np.column_stack([n0, n1, (B0**2).sum(1), (B0 * B1).sum(1), (B1**2).sum(1)]))
    C = np.vstack(coeffs)

    p0, lo, hi = _cell_test_interval(C, estimate, se, alpha)
    return CellBootstrap(p0, lo, hi, int(C.shape[0]), kind, enumerated)


def _cell_test_interval(C: np.ndarray, estimate: float, se: float, alpha: float) -> tuple[float, float, float]:
    """The p-value at 0 and the inverted interval of :func:`wild_cluster_bootstrap_cell_sums` from its per-draw
    coefficients ``C`` (draws x 5): compiled where numba is available, else numpy (the same numbers)."""
    kernel = jit(_cell_interval_loops)
    if kernel is not None:
        # Each of the ~70 p-values of an inversion is a dozen operations per draw: in numpy the
        # temporaries cost 20 times the arithmetic, and a clustered fit inverts one test per cell.
        out = np.empty(3)
        kernel(np.ascontiguousarray(C.T), float(estimate), float(se), float(alpha), out)
        return float(out[0]), float(out[1]), float(out[2])
    c0, c1, c2, c3, c4 = (np.ascontiguousarray(C[:, i, None]) for i in range(5))

    def pvalue(theta0: np.ndarray) -> np.ndarray:
        # p-values at several nulls at once (draws x nulls), the same arithmetic as one at a time
        d = np.asarray(theta0, dtype=float) - estimate
        se_star = np.sqrt(np.maximum(c2 + 2 * d * c3 + d * d * c4, 1e-300))
        t_star = np.abs(c0 + d * c1) / se_star
        return np.mean(t_star >= np.abs(d) / se * (1 - 1e-12), axis=0)

    lo, hi = _invert(pvalue, estimate, se, alpha, vectorised=True)
    return float(pvalue(np.zeros(1))[0]), float(lo), float(hi)


def _cell_interval_loops(C: np.ndarray, estimate: float, se: float, alpha: float, out: np.ndarray) -> None:
    """``_invert`` of the cell p-value, compiled: the same bracketing and bisection, end by end."""

    def pvalue(theta0: float) -> float:
        # the numpy pvalue of _cell_test_interval, one draw at a time, operation for operation
        d = theta0 - estimate
        threshold = abs(d) / se * (1 - 1e-12)
        hits = 0
        for b in range(C.shape[1]):
            se_star = np.sqrt(max(C[2, b] + 2 * d * C[3, b] + d * d * C[4, b], 1e-300))
            if abs(C[0, b] + d * C[1, b]) / se_star >= threshold:
                hits += 1
        return hits / C.shape[1]

    out[0] = pvalue(0.0)
    if not (np.isfinite(se) and se > 0):
        out[1] = estimate
        out[2] = estimate
        return
    tol = 1e-9 * (abs(estimate) + se)
    for i in range(2):
        sign = -1.0 if i == 0 else 1.0
        inner, step = estimate, 2.0 * se
        outer = estimate + sign * step
        n = 0
        unbounded = False
        while pvalue(outer) > alpha:
            inner = outer
            step *= 2.0
            outer = estimate + sign * step
            n += 1
            if n > 40:
                unbounded = True
                break
        if unbounded:
            out[1 + i] = sign * np.inf
            continue
        for _ in range(200):
            if abs(outer - inner) <= tol:
                break
            mid = 0.5 * (inner + outer)
            if pvalue(mid) > alpha:
                inner = mid
            else:
                outer = mid
        out[1 + i] = 0.5 * (inner + outer)
