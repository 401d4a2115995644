r"""Sensitivity of event-study inference to violations of parallel trends (Rambachan and Roth 2023).

Arrays in, arrays out: ``betahat`` (event-study coefficients, the ``n_pre`` pre-periods first, the
reference period left out), ``sigma`` (their covariance), ``n_pre``, ``n_post`` and ``l_vec`` (weights
of the target :math:`\theta = \ell'\tau_{post}` over the post-periods). Three confidence sets:

- :func:`original_ci`: the usual interval under exact parallel trends;
- :func:`flci_smoothness`: the fixed-length confidence interval (FLCI) of Armstrong and Kolesar for
  :math:`\Delta^{SD}(M)` (second differences of the trend bounded by :math:`M`), as HonestDiD's
  ``findOptimalFLCI``; deterministic;
- :func:`rm_conditional_cs`: the conditional-least-favourable hybrid ("C-LF") confidence set of
  Andrews, Roth and Pakes for :math:`\Delta^{RM}(\bar M)` (post-treatment changes of the trend at most
  :math:`\bar M` times the largest pre-treatment change), inverted over a grid, as HonestDiD's
  ``computeConditionalCS_DeltaRM``.

Solver choice: the linear programs are small. The worst-case bias of an FLCI is checked with
``scipy.optimize.linprog`` (HiGHS); scipy is already a dependency, so no conic solver (cvxpy, which
R HonestDiD's CVXR mirrors) is needed. For the C-LF test the LP of every grid point shares one dual
polytope, whose vertices are enumerated once (exactly, by linear algebra): the test statistic, its
dual solution and the truncation points of the conditional test then follow for all 1000 grid
points at once as matrix products, which is what makes the set fast (no LP per grid point). With
R's grid and R's random draws (``r_rnorm``) for the least-favourable critical value, the bounds are R's
to rounding error.

Examples
--------
>>> import numpy as np
>>> b = np.array([0.0, 0.01, 0.05])
>>> S = np.diag([1e-4, 1e-4, 1e-4])
>>> lo, hi = original_ci(b, S, n_pre=2, n_post=1)
>>> round(lo, 4), round(hi, 4)
(0.0304, 0.0696)
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from scipy import optimize, special, stats

from evaluator.errors import DesignError
from evaluator.inference.compiled import jit

__all__ = [
    "FLCI",
    "RMSet",
    "check_inputs",
    "flci_smoothness",
    "original_ci",
    "r_rnorm",
    "rm_conditional_cs",
    "rm_conditional_sets",
]

#: Most vertices enumerated for the dual polytope of the C-LF test (C(2n, n) for n post-periods;
#: 48,620 at n = 9). Beyond that the enumeration costs more memory than a per-point LP would.
_MAX_SUBSETS = 60_000


# -- input checks ------------------------------------------------------------------------------------------------------
def check_inputs(
    betahat: np.ndarray, sigma: np.ndarray, n_pre: int, n_post: int, l_vec: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate shapes and covariance; return float arrays ``(betahat, sigma, l_vec)``.

    Raises
    ------
    DesignError
        Naming the parameter: wrong shapes, a ``sigma`` that is not symmetric positive
        semi-definite, or ``l_vec`` of the wrong length.

    Examples
    --------
    >>> check_inputs(np.zeros(3), np.eye(2), 2, 1, None)
    Traceback (most recent call last):
    ...
    evaluator.errors.DesignError: sigma has shape (2, 2) but betahat has 3 coefficients; sigma must be 3 x 3
    """
    b = np.asarray(betahat, dtype=float).ravel()
    S = np.asarray(sigma, dtype=float)
    if int(n_pre) != n_pre or int(n_post) != n_post or n_pre < 0 or n_post < 1:
        raise DesignError(f"n_pre={n_pre} and n_post={n_post} must be whole numbers, n_post >= 1")
    n_pre, n_post = int(n_pre), int(n_post)
    if b.size != n_pre + n_post:
        raise DesignError(
            f"betahat has {b.size} coefficients but n_pre + n_post = {n_pre} + {n_post} = {n_pre + n_post}; "
            "give the pre-period coefficients first and leave out the reference period"
        )
    if S.shape != (b.size, b.size):
        raise DesignError(
            f"sigma has shape {S.shape} but betahat has {b.size} coefficients; sigma must be {b.size} x {b.size}"
        )
    if not (np.isfinite(b).all() and np.isfinite(S).all()):
        raise DesignError("betahat and sigma must be finite (no NaN or infinity)")
    scale = max(float(np.abs(S).max()), np.finfo(float).tiny)
    if np.abs(S - S.T).max() > 1e-8 * scale:
        raise DesignError(f"sigma is not symmetric (largest |sigma - sigma'| = {np.abs(S - S.T).max():.3g})")
    S = (S + S.T) / 2
    eig = np.linalg.eigvalsh(S)
    if eig.min() < -1e-8 * max(eig.max(), scale):
        raise DesignError(
            f"sigma is not positive semi-definite (smallest eigenvalue {eig.min():.3g}); "
            "pass the covariance matrix of betahat, not a correlation or a difference of matrices"
        )
    if l_vec is None:
        l = np.zeros(n_post)
        l[0] = 1.0
    else:
        l = np.asarray(l_vec, dtype=float).ravel()
        if l.size != n_post:
            raise DesignError(f"l_vec has {l.size} weights but there are n_post = {n_post} post-periods")
        if not np.isfinite(l).all() or not np.any(l != 0):
            raise DesignError("l_vec must be finite and not all zero")
    return b, S, l


# -- the original interval ---------------------------------------------------------------------------------------------
def original_ci(
    betahat: np.ndarray,
    sigma: np.ndarray,
    n_pre: int,
    n_post: int,
    l_vec: np.ndarray | None = None,
    alpha: float = 0.05,
) -> tuple[float, float]:
    r"""The interval under exact parallel trends, as HonestDiD's ``constructOriginalCS``.

    :math:`\ell'\hat\beta_{post} \pm z_{1-\alpha/2}\sqrt{\ell'\Sigma_{post}\ell}`.

    Examples
    --------
    >>> original_ci(np.array([0.0, 1.0]), np.eye(2), 1, 1)[1] > 2.95
    True
    """
    b, S, l = check_inputs(betahat, sigma, n_pre, n_post, l_vec)
    post = slice(n_pre, n_pre + n_post)
    est = float(l @ b[post])
    se = math.sqrt(float(l @ S[post, post] @ l))
    z = float(stats.norm.ppf(1 - alpha / 2))
    return est - z * se, est + z * se


# -- smoothness: the FLCI ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FLCI:
    """A fixed-length confidence interval ``estimate +- half_length``.

    ``weights`` is the full vector :math:`v` (pre-periods, then ``l_vec``) of the affine estimator
    :math:`v'\\hat\\beta`; ``sd`` its standard deviation; ``max_bias`` its worst-case bias over
    :math:`\\Delta^{SD}(M)` (checked by LP).
    """

    ci_low: float
    ci_high: float
    estimate: float
    half_length: float
    sd: float
    max_bias: float
    weights: np.ndarray


def _folded_quantile(t: float, alpha: float) -> float:
    """The 1-alpha quantile of |N(t, 1)|, solved exactly (R HonestDiD simulates it with 10^6 draws)."""
    t = abs(t)
    if t > 8.0:  # the lower tail Phi(-x - t) is below 1e-15: the quantile is t + z_{1-alpha}
        return t + float(special.ndtri(1 - alpha))

    def f(x: float) -> float:
        return special.ndtr(x - t) - special.ndtr(-x - t) - (1 - alpha)

    return float(optimize.brentq(f, 0.0, t + 10.0, xtol=1e-15, rtol=4 * np.finfo(float).eps))


def _folded_quantile_slope(t: float, x: float) -> float:
    """d cv/dt by implicit differentiation of Phi(x - t) - Phi(-x - t) = 1 - alpha."""
    a, c = stats.norm.pdf(x - t), stats.norm.pdf(x + t)
    return float((a - c) / (a + c))


def _sd_bias_pieces(n_pre: int, n_post: int, l: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    r"""Matrices of the worst-case bias of an FLCI over :math:`\Delta^{SD}(M)`, per unit of M.

    The pre-period weights are written as :math:`\ell_{pre} = D w` (D: first differences), so the
    estimator is invariant to linear trends iff :math:`\sum w = \sum_t t\,\ell_t`, and the worst-case
    bias is :math:`M (c + \sum_s |(Lw)_s|)`, L lower triangular of ones (HonestDiD's formulation).
    """
    D = np.eye(n_pre) - np.eye(n_pre, k=-1)
    L = np.tril(np.ones((n_pre, n_pre)))
    t = np.arange(1, n_post + 1)
    const = sum(abs(float(np.arange(1, s + 1) @ l[n_post - s :])) for s in range(1, n_post + 1)) - float(t @ l)
    return D, L, const, float(t @ l)


@functools.lru_cache(maxsize=1)
def _r_draws() -> np.ndarray:
    """R HonestDiD's draws for the folded-normal quantile: ``set.seed(0); rnorm(10^6)``."""
    return r_rnorm(10**6, 0)


def _sd_worst_bias_lp(v: np.ndarray, n_pre: int, n_post: int, m: float) -> float:
    r"""Worst-case bias :math:`\max_{\delta\in\Delta^{SD}(M)} v'\delta` by LP (HiGHS), a check on the closed form."""
    if m == 0:
        return 0.0
    n = n_pre + n_post
    # delta over periods -n_pre..-1, 0, 1..n_post; delta_0 = 0 fixed by the bounds
    full = np.insert(v, n_pre, 0.0)
    rows = []
    for j in range(1, n):
        r = np.zeros(n + 1)
        r[j - 1], r[j], r[j + 1] = 1.0, -2.0, 1.0
        rows.append(r)
    A = np.array(rows)
    A_ub = np.vstack([A, -A])
    b_ub = np.full(2 * len(rows), m)
    bounds = [(None, None)] * (n + 1)
    bounds[n_pre] = (0.0, 0.0)
    res = optimize.linprog(-full, A_ub=A_ub, b_ub=b_ub, bounds=bounds, method="highs")
    if res.status == 3:
        return math.inf
    if res.status != 0:
        raise RuntimeError(f"HiGHS failed on the worst-case bias LP: {res.message}")
    return float(-res.fun)


def flci_smoothness(
    betahat: np.ndarray,
    sigma: np.ndarray,
    n_pre: int,
    n_post: int,
    l_vec: np.ndarray | None = None,
    m: float = 0.0,
    alpha: float = 0.05,
    *,
    folded_normal: Literal["exact", "r"] = "exact",
) -> FLCI:
    r"""Optimal fixed-length confidence interval for :math:`\ell'\tau_{post}` under :math:`\Delta^{SD}(M)`.

    Parameters
    ----------
    betahat, sigma : numpy.ndarray
        Event-study coefficients (pre-periods first, reference period excluded) and covariance.
    n_pre, n_post : int
        Numbers of pre- and post-periods; smoothness needs ``n_pre >= 1``.
    l_vec : numpy.ndarray, optional
        Target weights over the post-periods; the first post-period by default.
    m : float
        Bound :math:`M \ge 0` on :math:`|(\delta_{t+1}-\delta_t)-(\delta_t-\delta_{t-1})|`.
    alpha : float
        1 - coverage.
    folded_normal : {"exact", "r"}
        How the half-length's :math:`cv_\alpha` is computed once the weights are chosen: solved exactly
        (the default), or as R HonestDiD does, the quantile of :math:`|z + t|` over R's
        ``set.seed(0); rnorm(1e6)`` draws, which reproduces R's bounds to about 1e-11 where the
        optimum is a corner (M large enough) and moves them by about 2e-5 from the exact ones.

    Returns
    -------
    FLCI

    Notes
    -----
    Among affine estimators :math:`v'\hat\beta` with :math:`v_{post}=\ell`, choose the pre-period
    weights to minimise the half-length :math:`\chi = \sigma_v\,cv_\alpha(\bar b_v/\sigma_v)`, with
    :math:`\sigma_v=\sqrt{v'\Sigma v}`, :math:`\bar b_v` the worst-case bias and :math:`cv_\alpha(t)` the
    :math:`1-\alpha` quantile of :math:`|N(t,1)|` (Armstrong and Kolesar 2018; Rambachan and Roth 2023,
    Section 4.1). HonestDiD minimises over a scalar bound :math:`h` on :math:`\sigma_v` with a nested
    conic program and simulates :math:`cv_\alpha`; here the same convex problem is solved directly
    over the weights (SLSQP with exact gradients, :math:`cv_\alpha` solved exactly), so the result is
    deterministic. :math:`\chi` is the perspective of the convex :math:`cv_\alpha`, hence convex in
    the weights: the local optimum is global.

    Examples
    --------
    >>> S = np.eye(4) * 1e-4
    >>> r = flci_smoothness(np.array([0.0, 0.0, 0.0, 0.05]), S, n_pre=3, n_post=1, m=0.0)
    >>> r.ci_low < 0.05 < r.ci_high, round(r.max_bias, 12)
    (True, 0.0)
    """
    b, S, l = check_inputs(betahat, sigma, n_pre, n_post, l_vec)
    if n_pre < 1:
        raise DesignError("smoothness (method='smoothness') needs at least 1 pre-period; n_pre=0")
    if not m >= 0 or not math.isfinite(m):
        raise DesignError(f"m={m} must be a finite number >= 0")
    D, L, const, target = _sd_bias_pieces(n_pre, n_post, l)
    post = slice(n_pre, n_pre + n_post)
    S_pp, S_pq = S[:n_pre, :n_pre], S[:n_pre, post]
    var_post = float(l @ S[post, post] @ l)
    # the minimum-bias estimator: all weight on the last pre-period difference (HonestDiD's h0); its sd scales
    # the objective
    w0 = np.zeros(n_pre)
    w0[-1] = target
    h0 = math.sqrt(max(float((D @ w0) @ S_pp @ (D @ w0) + 2 * (D @ w0) @ S_pq @ l + var_post), 1e-300))

    def parts(x: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        w = x[:n_pre]
        lp = D @ w
        q = float(lp @ S_pp @ lp + 2 * lp @ S_pq @ l + var_post)
        return math.sqrt(max(q, 1e-300)), lp, S_pp @ lp + S_pq @ l

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        h, _, g = parts(x)
        bias = m * (const + x[n_pre:].sum())
        t = bias / h
        cv = _folded_quantile(t, alpha)
        dcv = _folded_quantile_slope(t, cv)
        dh = D.T @ g / h
        grad = np.concatenate([(cv - t * dcv) * dh, np.full(n_pre, m * dcv)])
        return h * cv / h0, grad / h0  # scaled to order 1 so SLSQP's tolerance is relative

    # u >= |L w| as two sets of linear inequalities; sum(w) = target (invariance to linear trends)
    I = np.eye(n_pre)
    A_ineq = np.vstack([np.hstack([-L, I]), np.hstack([L, I])])
    cons = [
        {"type": "ineq", "fun": lambda x: A_ineq @ x, "jac": lambda x: A_ineq},
        {
            "type": "eq",
            "fun": lambda x: np.array([x[:n_pre].sum() - target]),
            "jac": lambda x: np.concatenate([np.ones(n_pre), np.zeros(n_pre)])[None, :],
        },
    ]
    x0 = np.concatenate([w0, np.abs(L @ w0)])
    # start from the minimum-bias estimator and from equal weights; keep the shortest feasible point
    # (SLSQP can stop with "positive directional derivative" at the optimum when the bias term dominates)
    starts = [x0]
    if n_pre > 1:
        w1 = np.full(n_pre, target / n_pre)
        starts.append(np.concatenate([w1, np.abs(L @ w1)]))

    def feasible(x: np.ndarray) -> bool:
        return bool((A_ineq @ x).min() >= -1e-9 and abs(x[:n_pre].sum() - target) <= 1e-9 * max(1.0, abs(target)))

    candidates = [(objective(x)[0], x) for x in starts]
    for start in starts:
        res = optimize.minimize(
            objective, start, jac=True, method="SLSQP", constraints=cons, options={"ftol": 1e-14, "maxiter": 1000}
        )
        if feasible(res.x) and np.isfinite(res.fun):
            candidates.append((float(res.fun), res.x))
    best_x = min(candidates, key=lambda c: c[0])[1]
    h, lp, _ = parts(best_x)
    v = np.concatenate([lp, l])
    # the worst-case bias of the chosen weights, from the LP rather than the slack variables
    bias = _sd_worst_bias_lp(v, n_pre, n_post, m)
    if folded_normal == "r":
        half = h * float(np.quantile(np.abs(_r_draws() + bias / h), 1 - alpha))
    elif folded_normal == "exact":
        half = h * _folded_quantile(bias / h, alpha)
    else:
        raise DesignError(f"folded_normal={folded_normal!r} must be 'exact' or 'r'")
    est = float(v @ b)
    return FLCI(est - half, est + half, est, half, h, bias, v)


# -- relative magnitudes: the C-LF hybrid confidence set ---------------------------------------------------------------
@dataclass(frozen=True)
class RMSet:
    """A confidence set read off a grid: the smallest and largest accepted grid points.

    ``grid`` and ``accept`` hold the whole test inversion; ``open_low`` / ``open_high`` say the set
    reaches an end of the grid (then it is at least that wide); ``empty`` that no point was accepted.
    """

    ci_low: float
    ci_high: float
    grid: np.ndarray
    accept: np.ndarray
    lf_cv: float

    @property
    def empty(self) -> bool:
        return not self.accept.any()

    @property
    def open_low(self) -> bool:
        return bool(self.accept[0])

    @property
    def open_high(self) -> bool:
        return bool(self.accept[-1])


def r_rnorm(n: int, seed: int = 0) -> np.ndarray:
    """``set.seed(seed); rnorm(n)`` of R (Mersenne-Twister, inversion), so simulated critical values match R's.

    Examples
    --------
    >>> np.round(r_rnorm(3, seed=0), 7).tolist()
    [1.2629543, -0.3262334, 1.3297993]
    """
    s = np.uint32(seed)
    with np.errstate(over="ignore"):
        for _ in range(50):  # R's initial scrambling (RNG.c, RNG_Init)
            s = np.uint32(69069) * s + np.uint32(1)
        key = np.empty(625, dtype=np.uint32)
        for j in range(625):
            s = np.uint32(69069) * s + np.uint32(1)
            key[j] = s
    bg = np.random.MT19937()
    # key[0] is R's position slot, reset to 624 ("generate a fresh block first") by FixupSeeds
    bg.state = {"bit_generator": "MT19937", "state": {"key": key[1:], "pos": 624}}
    u = bg.random_raw(2 * n).astype(np.float64) * 2.3283064365386963e-10
    u = np.where(u <= 0.0, 0.5 * 2.328306437080797e-10, u)
    u = np.where(1.0 - u <= 0.0, 1.0 - 0.5 * 2.328306437080797e-10, u)
    big = 134217728.0  # 2^27: R's norm_rand(INVERSION) joins two uniforms for precision
    x = (np.floor(big * u[0::2]) + u[1::2]) / big
    return special.ndtri(x)


@functools.lru_cache(maxsize=8)
def _r_normals(n: int, seed: int) -> np.ndarray:
    """``r_rnorm(n, seed)``, kept: every polyhedron and every bound draws the same numbers (read-only)."""
    z = r_rnorm(n, seed)
    z.flags.writeable = False
    return z


def _r_rmvnorm_root(cov: np.ndarray) -> np.ndarray:
    """The square roots ``mvtnorm::rmvnorm(method="eigen")`` multiplies R's draws by, for a stack ``(P, m, m)``:
    ``set.seed(seed); rmvnorm(n, sigma=cov[p])`` is ``r_rnorm(n * m, seed).reshape(n, m) @ root[p]`` (draws
    filled by row)."""
    lam, V = np.linalg.eigh(cov)
    return np.matmul(V * np.sqrt(np.maximum(lam, 0.0))[:, None, :], np.swapaxes(V, 1, 2))


def _rm_post_rows(n_pre: int, n_post: int, mbar: float, s: int, positive: bool) -> np.ndarray:
    r"""Rows of :math:`A` in :math:`A\beta \le 0` for :math:`\Delta^{RM}_{s,\pm}(\bar M)`, post-period rows only.

    In R's order (``.create_A_RM``: upper bounds on the post first differences, then lower bounds):
    :math:`\pm(\delta_t - \delta_{t-1}) \le \bar M\,\mathrm{sign}\,(\delta_s - \delta_{s-1})`, with
    :math:`\delta_0 = 0`. The pre-period rows are left out as HonestDiD does by default
    (``postPeriodMomentsOnly``).
    """
    n = n_pre + n_post
    # column of period p in betahat (pre -n_pre..-1, post 1..n_post); period 0 is not a column
    col = {p: p + n_pre for p in range(-n_pre, 0)} | {t: n_pre + t - 1 for t in range(1, n_post + 1)}
    vmax = np.zeros(n)
    if s in col:
        vmax[col[s]] += 1.0
    if s - 1 in col:
        vmax[col[s - 1]] -= 1.0
    if not positive:
        vmax = -vmax
    diff = np.zeros((n_post, n))
    for t in range(1, n_post + 1):
        diff[t - 1, col[t]] = 1.0
        if t - 1 >= 1:
            diff[t - 1, col[t - 1]] = -1.0
    return np.vstack([diff - mbar * vmax, -diff - mbar * vmax])


@functools.lru_cache(maxsize=16)
def _subsets(m: int, r: int) -> np.ndarray:
    return np.array(list(itertools.combinations(range(m), r)), dtype=np.intp).reshape(-1, r)


def _dual_vertices(sd: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Vertices of :math:`\{\gamma \ge 0: sd'\gamma = 1, X'\gamma = 0\}`, the dual feasible set of the
    ARP test LP :math:`\min_{\eta,\nu} \eta` s.t. :math:`y - X\nu \le \eta\, sd`, for a stack of problems.

    ``sd`` is ``(P, m)``, ``X`` ``(P, m, k)``. A vertex is a basic feasible solution: k+1 coordinates
    solving the equalities, the rest zero. Returns ``G`` ``(P, V, m)`` over every basis and ``valid``
    ``(P, V)``, which bases are vertices. A vertex reached from two bases appears twice; that changes
    neither the maximum nor the truncation of the test (a copy of the optimal vertex has
    :math:`1 - K_{vj}/K_{jj} = 0` and is left out of the conditioning, as R's duplicate is).
    """
    P, m, k = X.shape
    r = k + 1
    subsets = _subsets(m, r)
    if len(subsets) > _MAX_SUBSETS:
        raise DesignError(
            f"relative magnitudes with {k + 1} post-periods would enumerate {len(subsets)} bases; "
            "use at most 9 post-periods (bin later event times) or a target over fewer periods"
        )
    E = np.concatenate([sd[:, None, :], np.swapaxes(X, 1, 2)], axis=1)  # (P, r, m)
    Es = np.swapaxes(E[:, :, subsets], 1, 2)  # (P, V, r, r): the basis columns of each subset
    det = np.linalg.det(Es)
    scale = np.abs(E).max(axis=(1, 2)) ** r
    ok = np.abs(det) > 1e-12 * scale[:, None]
    Es = np.where(ok[:, :, None, None], Es, np.eye(r))  # singular bases: solved harmlessly, then dropped
    rhs = np.zeros(r)
    rhs[0] = 1.0
    sol = np.linalg.solve(Es, np.broadcast_to(rhs, Es.shape[:-1])[..., None])[..., 0]  # (P, V, r)
    feas = ok & (sol >= -1e-12 * np.abs(sol).max(axis=2, keepdims=True)).all(axis=2)
    if not feas.any(axis=1).all():
        raise DesignError("the relative-magnitudes test has an empty dual set (sigma or the restriction is degenerate)")
    # keep the vertices only (most bases are infeasible once there are several post-periods): each problem's
    # feasible bases first, padded to the largest count
    n_v = int(feas.sum(axis=1).max())
    order = np.argsort(~feas, axis=1, kind="stable")[:, :n_v]  # (P, n_v)
    keep = np.take_along_axis(feas, order, axis=1)
    G = np.zeros((P, n_v, m))
    cols = subsets[order]  # (P, n_v, r)
    vals = np.take_along_axis(sol, order[:, :, None], axis=1)
    G[np.arange(P)[:, None, None], np.arange(n_v)[None, :, None], cols] = np.where(
        keep[:, :, None], np.maximum(vals, 0.0), 0.0
    )
    return G, keep


def _truncnorm_ppf(q: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    r"""Quantile ``q`` of the standard normal truncated to ``[lo, hi]``, elementwise.

    Written in log space, from the tail nearer the interval (scipy's ``truncnorm.ppf`` gives the same
    numbers about 20 times slower on these arrays): a truncation to the right of 0 is mirrored to
    the left, where :math:`\Phi(x) = (1-q)\Phi(lo) + q\Phi(hi)` has no cancellation.
    """
    flip = lo > 0
    a = np.where(flip, -hi, lo)
    b = np.where(flip, -lo, hi)
    qq = np.where(flip, 1.0 - q, q)
    with np.errstate(divide="ignore"):
        logp = np.logaddexp(np.log1p(-qq) + special.log_ndtr(a), np.log(qq) + special.log_ndtr(b))
    x = special.ndtri_exp(np.minimum(logp, 0.0))
    return np.clip(np.where(flip, -x, x), lo, hi)


def _quantile7(x: np.ndarray, q: float) -> np.ndarray:
    """Row-wise quantile ``q`` by R's type 7 (numpy's 'linear'), from the two order statistics it needs."""
    n = x.shape[1]
    h = (n - 1) * q
    lo = int(math.floor(h))
    hi = min(lo + 1, n - 1)
    part = np.partition(x, [lo, hi] if hi > lo else [lo], axis=1)
    return part[:, lo] + (h - lo) * (part[:, hi] - part[:, lo])


def _lf_stat_loops(z: np.ndarray, Wt: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """max over the vertices v of z_i . Wt[p, v] for every problem p and draw i, ``(P, n)``; loops for numba."""
    n, m = z.shape
    P, V, _ = Wt.shape
    out = np.full((P, n), -np.inf)
    for p in range(P):
        for v in range(V):
            if not valid[p, v]:
                continue
            w = Wt[p, v]
            for i in range(n):
                s = 0.0
                for k in range(m):
                    s += z[i, k] * w[k]
                if s > out[p, i]:
                    out[p, i] = s
    return out


#: The C-LF test at a grid point: accepted, rejected, or left to the quantile of the second stage (where the
#: truncation interval holds less normal mass than _TINY_MASS, so its CDF cannot be formed in doubles).
_ACCEPT, _REJECT, _SECOND = 0, 1, 2
_TINY_MASS = 1e-280
_SQRT2 = math.sqrt(2.0)


def _clf_grid_numpy(
    c: np.ndarray,
    d: np.ndarray,
    valid: np.ndarray,
    K: np.ndarray,
    thetas: np.ndarray,
    cv: np.ndarray,
    scale: np.ndarray,
    tol: float,
    q: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The test at every grid point, as whole arrays (without numba).

    The statistic is :math:`\\hat\\eta = \\max_v c_v - d_v\\theta` over the vertices, attained at ``j``; the
    first stage rejects when it exceeds the least-favourable ``cv``. Otherwise, with
    :math:`\\sigma_j = \\sqrt{K_{jj}}`, the second stage compares :math:`z = \\hat\\eta/\\sigma_j` with the
    truncated normal on :math:`[v^{lo}, \\min(v^{up}, cv)]/\\sigma_j`, the interval on which ``j`` stays
    optimal (polyhedral conditioning); it can only reject where :math:`z > 0`. Returns the case
    (``_ACCEPT``, ``_REJECT``, ``_SECOND``) and ``z``, ``zlo``, ``zup``, each ``(P, T)``.
    """
    vals = np.where(valid[:, :, None], c[:, :, None] - d[:, :, None] * thetas[:, None, :], -np.inf)  # (P, V, T)
    j = np.argmax(vals, axis=1)  # (P, T)
    eta = np.take_along_axis(vals, j[:, None, :], axis=1)[:, 0, :]
    Kj = np.take_along_axis(K, j[:, None, :], axis=2)  # (P, V, T): K_vj
    s2 = np.take_along_axis(Kj, j[:, None, :], axis=1)[:, 0, :]  # K_jj
    # gamma_j stays optimal iff c (1 - K_vj/K_jj) >= gamma_v' z for all v, with y = z + c Sy gamma_j / K_jj
    # and c = eta; gamma_v' z = vals_v - K_vj/K_jj * eta
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = Kj / s2[:, None, :]
        den = 1.0 - ratio
        bound = (vals - ratio * eta[:, None, :]) / den
        use = valid[:, :, None]
        vlo = np.where(use & (den > tol), bound, -np.inf).max(axis=1)
        vup = np.where(use & (den < -tol), bound, np.inf).min(axis=1)
        sig = np.sqrt(np.maximum(s2, 0.0))
        first = eta > cv[:, None]
        degenerate = sig < 1e-10 * scale[:, None]
        z = eta / sig
        zlo = vlo / sig
        zup = np.minimum(vup, cv[:, None]) / sig
        second = ~first & ~degenerate & (zlo <= z) & (z <= zup) & (z > 0)
    case = np.where(first | (degenerate & (eta > 0)), _REJECT, _ACCEPT).astype(np.int8)
    if second.any():
        F, mass = _truncated_cdf(z[second], zlo[second], zup[second], special.ndtr)
        case[second] = np.where(mass > _TINY_MASS, np.where(F <= q, _ACCEPT, _REJECT), _SECOND)
    return case, z, zlo, zup


def _truncated_cdf(z: Any, lo: Any, hi: Any, ndtr: Any) -> tuple[Any, Any]:
    """P(Z <= z | lo <= Z <= hi) for a standard normal Z, and the mass of [lo, hi]; from the tail nearer
    the interval (mirrored when lo > 0), so that a truncation far in the right tail keeps its digits."""
    flip = lo > 0
    a = np.where(flip, -hi, lo)
    b = np.where(flip, -lo, hi)
    x = np.where(flip, -z, z)
    pa, pb = ndtr(a), ndtr(b)
    mass = pb - pa
    with np.errstate(divide="ignore", invalid="ignore"):
        F = (ndtr(x) - pa) / mass
    return np.where(flip, 1.0 - F, F), mass


def _clf_grid_loops(
    c: np.ndarray,
    d: np.ndarray,
    valid: np.ndarray,
    K: np.ndarray,
    thetas: np.ndarray,
    cv: np.ndarray,
    scale: np.ndarray,
    tol: float,
    q: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_clf_grid_numpy` as loops for numba: each grid point a pass over the few vertices, no
    ``(P, V, T)`` arrays (most of the C-LF set's time in numpy)."""
    P, V = c.shape
    T = thetas.shape[1]
    case = np.empty((P, T), dtype=np.int8)
    z = np.zeros((P, T))
    zlo = np.zeros((P, T))
    zup = np.zeros((P, T))
    for p in range(P):
        for t in range(T):
            th = thetas[p, t]
            best = -np.inf
            j = 0
            for v in range(V):  # the first largest, as numpy's argmax
                if valid[p, v]:
                    val = c[p, v] - d[p, v] * th
                    if val > best:
                        best = val
                        j = v
            kjj = K[p, j, j]
            sig = np.sqrt(max(kjj, 0.0))
            if best > cv[p]:
                case[p, t] = 1
                continue
            if sig < 1e-10 * scale[p]:
                case[p, t] = 1 if best > 0 else 0
                continue
            lo = -np.inf
            up = np.inf
            for v in range(V):
                if valid[p, v]:
                    ratio = K[p, v, j] / kjj
                    den = 1.0 - ratio
                    if den > tol:
                        bound = (c[p, v] - d[p, v] * th - ratio * best) / den
                        if bound > lo:
                            lo = bound
                    elif den < -tol:
                        bound = (c[p, v] - d[p, v] * th - ratio * best) / den
                        if bound < up:
                            up = bound
            zz = best / sig
            zl = lo / sig
            zu = min(up, cv[p]) / sig
            z[p, t] = zz
            zlo[p, t] = zl
            zup[p, t] = zu
            case[p, t] = 0
            if zl <= zz and zz <= zu and zz > 0:  # the second stage: P(Z <= z | zl <= Z <= zu) against q
                if zl > 0:  # mirrored to the left tail, as _truncated_cdf
                    pa = 0.5 * math.erfc(zu / _SQRT2)
                    pb = 0.5 * math.erfc(zl / _SQRT2)
                    F = 1.0 - (0.5 * math.erfc(zz / _SQRT2) - pa) / (pb - pa) if pb - pa > _TINY_MASS else 0.0
                else:
                    pa = 0.5 * math.erfc(-zl / _SQRT2)
                    pb = 0.5 * math.erfc(-zu / _SQRT2)
                    F = (0.5 * math.erfc(-zz / _SQRT2) - pa) / (pb - pa) if pb - pa > _TINY_MASS else 0.0
                if not pb - pa > _TINY_MASS:
                    case[p, t] = 2
                elif F > q:
                    case[p, t] = 1
    return case, z, zlo, zup


def _clf_accept(
    Y: np.ndarray,
    a: np.ndarray,
    X: np.ndarray,
    Sy: np.ndarray,
    thetas: np.ndarray,
    alpha: float,
    kappa: float,
    n_sims: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Accept (True) or reject each theta by the C-LF hybrid test of ARP, for a stack of ``P`` problems.

    ``Y``, ``a`` ``(P, m)``, ``X`` ``(P, m, k)``, ``Sy`` ``(P, m, m)``, ``thetas`` ``(P, T)``. Returns
    ``accept`` ``(P, T)`` and the least-favourable critical values ``(P,)``.
    """
    sd = np.sqrt(np.diagonal(Sy, axis1=1, axis2=2))
    if (sd <= 0).any():
        raise DesignError("a moment of the relative-magnitudes test has zero variance: check sigma")
    G, valid = _dual_vertices(sd, X)  # (P, V, m), (P, V)
    K = np.matmul(np.matmul(G, Sy), np.swapaxes(G, 1, 2))  # (P, V, V): gamma_v' Sigma gamma_w
    # least-favourable critical value: 1-kappa quantile of eta under y ~ N(0, Sy); R draws with set.seed(0)
    # gamma_v' xi_i for every draw i: xi_i = z_i root_p, so with the draws z shared by all problems this is one
    # product z @ (root_p G_p') over the stacked problems
    m = Sy.shape[1]
    draws = _r_normals(n_sims * m, seed).reshape(n_sims, m)
    W = np.matmul(_r_rmvnorm_root(Sy), np.swapaxes(G, 1, 2))  # (P, m, V)
    lf_kernel = jit(_lf_stat_loops)
    if lf_kernel is not None:
        lf_stat = lf_kernel(draws, np.ascontiguousarray(np.swapaxes(W, 1, 2)), valid)
    else:
        stat = (draws @ np.swapaxes(W, 0, 1).reshape(m, -1)).reshape(n_sims, *valid.shape)  # (n_sims, P, V)
        lf_stat = np.where(valid[None, :, :], stat, -np.inf).max(axis=2).T  # (P, n_sims)
    lf_cv = _quantile7(lf_stat, 1 - kappa)
    # gamma_v' y(theta) = c_v - d_v theta: the statistic and its conditioning at every grid point
    c = np.matmul(G, Y[:, :, None])[:, :, 0]
    d = np.matmul(G, a[:, :, None])[:, :, 0]
    scale = np.sqrt(np.maximum(np.abs(Sy).max(axis=(1, 2)), 1e-300))
    q = 1 - (alpha - kappa) / (1 - kappa)  # the second stage's truncated-normal quantile
    args = (c, d, valid, K, np.ascontiguousarray(thetas, dtype=float), lf_cv, scale, 1e-10, q)
    kernel = jit(_clf_grid_loops)
    case, z, zlo, zup = kernel(*args) if kernel is not None else _clf_grid_numpy(*args)
    accept = case == _ACCEPT
    rare = case == _SECOND
    if rare.any():  # a truncation interval of (almost) no normal mass: its quantile, in log space
        accept[rare] = z[rare] <= np.maximum(0.0, _truncnorm_ppf(q, zlo[rare], zup[rare]))
    return accept, lf_cv


def rm_conditional_cs(
    betahat: np.ndarray,
    sigma: np.ndarray,
    n_pre: int,
    n_post: int,
    l_vec: np.ndarray | None = None,
    mbar: float = 0.0,
    alpha: float = 0.05,
    *,
    grid_points: int = 1000,
    grid: Literal["centered", "zero"] = "centered",
    grid_lb: float | None = None,
    grid_ub: float | None = None,
    n_sims: int = 1000,
    seed: int = 0,
) -> RMSet:
    r"""C-LF hybrid confidence set for :math:`\ell'\tau_{post}` under :math:`\Delta^{RM}(\bar M)`.

    Parameters
    ----------
    betahat, sigma, n_pre, n_post, l_vec, alpha
        As in :func:`flci_smoothness`; relative magnitudes need ``n_pre >= 1``.
    mbar : float
        :math:`\bar M \ge 0`.
    grid_points : int
        Number of tested values (1000 in HonestDiD).
    grid : {"centered", "zero"}
        Where they lie. ``"centered"``, as ``createSensitivityResults_relativeMagnitudes`` of R
        HonestDiD 0.2.6 and later (its README's tables): :math:`\ell'\hat\beta_{post} \pm
        (\bar M \sum_t t|\ell_t| \max_s|\hat\beta_s-\hat\beta_{s-1}| + 20\sigma_\theta)`, with the
        pre-period differences taken with :math:`\beta_0 = 0`. ``"zero"``: :math:`[-20, 20]\,\sigma_\theta`,
        the default of ``computeConditionalCS_DeltaRM`` and of the README before 2024.
        :math:`\sigma_\theta = \sqrt{\ell'\Sigma_{post}\ell}`.
    grid_lb, grid_ub : float, optional
        Explicit ends of the grid (override ``grid``).
    n_sims, seed : int
        Draws for the least-favourable critical value, drawn as R's ``set.seed(seed)`` and
        ``mvtnorm::rmvnorm`` would (1000 and 0 in HonestDiD).

    Returns
    -------
    RMSet

    Notes
    -----
    :math:`\Delta^{RM}(\bar M)` is the union over pre-periods :math:`s` and signs of polyhedra
    :math:`\{|\delta_{t}-\delta_{t-1}| \le \bar M\,\pm(\delta_s-\delta_{s-1})\ \forall t > 0\}`;
    a value of :math:`\theta` is in the set when any of them accepts it. Each test (Andrews, Roth
    and Pakes 2023) reparametrises :math:`\tau_{post}` as :math:`(\theta, \nu)`, computes
    :math:`\hat\eta = \min_\nu \max_i (y_i - X_i\nu)/\sigma_i` on the post-period moments, rejects when
    :math:`\hat\eta` exceeds the least-favourable critical value at size :math:`\kappa = \alpha/10`,
    and otherwise compares :math:`\hat\eta/\sigma_B` with the :math:`1-(\alpha-\kappa)/(1-\kappa)`
    quantile of the normal truncated to the conditioning interval. Test statistic, dual solution
    and truncation come from the vertices of the dual polytope, which are the same for every grid
    point.

    Examples
    --------
    >>> S = np.eye(3) * 1e-4
    >>> r = rm_conditional_cs(np.array([0.0, 0.0, 0.05]), S, n_pre=2, n_post=1, mbar=1.0)
    >>> r.ci_low < 0.05 < r.ci_high
    True
    """
    return rm_conditional_sets(
        betahat,
        sigma,
        n_pre,
        n_post,
        l_vec,
        [mbar],
        alpha,
        grid_points=grid_points,
        grid=grid,
        grid_lb=grid_lb,
        grid_ub=grid_ub,
        n_sims=n_sims,
        seed=seed,
    )[0]


#: Most cells (problems x bases x grid points) of one stacked C-LF pass: about 16 MB per working array.
_MAX_CELLS = 2_000_000


def rm_conditional_sets(
    betahat: np.ndarray,
    sigma: np.ndarray,
    n_pre: int,
    n_post: int,
    l_vec: np.ndarray | None,
    mbars: Sequence[float] | np.ndarray,
    alpha: float = 0.05,
    *,
    grid_points: int = 1000,
    grid: Literal["centered", "zero"] = "centered",
    grid_lb: float | None = None,
    grid_ub: float | None = None,
    n_sims: int = 1000,
    seed: int = 0,
) -> list[RMSet]:
    r""":func:`rm_conditional_cs` at several values of :math:`\bar M` at once, one :class:`RMSet` each.

    Every polyhedron of every :math:`\bar M` (``2 n_pre`` per value) is one problem of the same
    shape, so all of them are tested in one stacked pass: vertices, critical values and the
    test at every grid point as batched linear algebra.

    Examples
    --------
    >>> S = np.eye(3) * 1e-4
    >>> sets = rm_conditional_sets(np.array([0.0, 0.0, 0.05]), S, 2, 1, None, [0.5, 2.0])
    >>> sets[0].ci_high - sets[0].ci_low < sets[1].ci_high - sets[1].ci_low
    True
    """
    b, S, l = check_inputs(betahat, sigma, n_pre, n_post, l_vec)
    if n_pre < 1:
        raise DesignError("relative magnitudes (method='relative_magnitude') need at least 1 pre-period; n_pre=0")
    mb = np.atleast_1d(np.asarray(mbars, dtype=float))
    bad = [float(v) for v in mb if not (v >= 0 and math.isfinite(v))]
    if bad or mb.size == 0:
        raise DesignError(f"mbar={bad or mb.tolist()} must be finite numbers >= 0")
    if grid not in ("centered", "zero"):
        raise DesignError(f"grid={grid!r} must be 'centered' or 'zero'")
    post = slice(n_pre, n_pre + n_post)
    sd_theta = math.sqrt(float(l @ S[post, post] @ l))
    if grid == "centered":
        # R HonestDiD >= 0.2.6 (createSensitivityResults_relativeMagnitudes): reproduces its README to 1e-15
        max_pre = float(np.abs(np.diff(np.append(b[:n_pre], 0.0))).max())
        centre = float(l @ b[post])
        half = mb * float(np.arange(1, n_post + 1) @ np.abs(l)) * max_pre + 20 * sd_theta
        lo0, hi0 = centre - half, centre + half
    else:
        lo0, hi0 = np.full(mb.size, -20 * sd_theta), np.full(mb.size, 20 * sd_theta)
    lo = lo0 if grid_lb is None else np.full(mb.size, float(grid_lb))
    hi = hi0 if grid_ub is None else np.full(mb.size, float(grid_ub))
    thetas = np.linspace(lo, hi, int(grid_points), axis=1)  # (n_mbar, T)
    # Gamma: invertible, first row l; tau = Gamma^{-1} (theta, nu)
    j0 = int(np.argmax(np.abs(l)))
    Gam = np.vstack([l[None, :], np.delete(np.eye(n_post), j0, axis=0)])
    Gi = np.linalg.inv(Gam)
    # the problems: every (Mbar, pre-period s, sign) polyhedron, Mbar-major
    polys = [(s, positive) for s in range(-(n_pre - 1), 1) for positive in (True, False)]
    # the rows are linear in Mbar: A(Mbar) = A(0) + Mbar (A(1) - A(0))
    A0 = np.stack([_rm_post_rows(n_pre, n_post, 0.0, s, pos) for s, pos in polys])
    A1 = np.stack([_rm_post_rows(n_pre, n_post, 1.0, s, pos) for s, pos in polys]) - A0
    A = (A0[None] + mb[:, None, None, None] * A1[None]).reshape(-1, *A0.shape[1:])  # (P, m, n), Mbar-major
    AG = np.matmul(A[:, :, post], Gi)
    Y, a, X = A @ b, AG[:, :, 0], AG[:, :, 1:]
    Sy = np.matmul(np.matmul(A, S), np.swapaxes(A, 1, 2))
    owner = np.repeat(np.arange(mb.size), len(polys))
    n_bases = math.comb(A.shape[1], n_post)
    r = n_post  # basis size: the target's nuisance parameters plus one
    chunk = max(1, min(_MAX_CELLS // (n_bases * thetas.shape[1]), _MAX_CELLS // (n_bases * r * r)))
    acc_all = np.empty((len(A), thetas.shape[1]), dtype=bool)
    lf_all = np.empty(len(A))
    for start in range(0, len(A), chunk):
        part = slice(start, start + chunk)
        acc_all[part], lf_all[part] = _clf_accept(
            Y[part], a[part], X[part], Sy[part], thetas[owner[part]], alpha, alpha / 10, n_sims, seed
        )
    # a value is in the set when any polyhedron of its Mbar accepts it
    accept = acc_all.reshape(mb.size, len(polys), -1).any(axis=1)
    lf_max = lf_all.reshape(mb.size, len(polys)).max(axis=1)
    out = []
    for q in range(mb.size):
        acc = accept[q]
        if acc.any():
            lo_v, hi_v = float(thetas[q][acc].min()), float(thetas[q][acc].max())
        else:
            lo_v = hi_v = math.nan
        out.append(RMSet(lo_v, hi_v, thetas[q], acc, float(lf_max[q])))
    return out
