"""Logistic regression by Newton-Raphson: the one logit of the estimators (propensity scores).

:func:`fit_logit` maximises the logit likelihood by Newton-Raphson with step
halving, starting at the intercept-only fit; :func:`separation_culprits` names
the design columns that alone separate the two groups, which a caller checks
before fitting, and :func:`separated` says whether a fitted score predicts the
groups exactly. Matching and weighting (propensity scores on register-scale
samples) and the doubly-robust and IPW cells of ``staggered_did`` all fit here;
the tests check both arithmetics against statsmodels ``Logit``.

Two arithmetics of the same iteration are kept, because each caller's numbers
are pinned to the last digit by reference tests and published reports:

- ``"blocked"`` (matching, weighting): passes over the data in cache-sized row
  blocks with ``expit``, the information matrix as one ``syrk`` per block,
  Cholesky solves with statsmodels' ``1e-10`` ridge; stops when the largest
  Newton step is at most ``1e-10`` relative to the coefficient, or when steps
  below ``1e-6`` stop shrinking (rounding noise).
- ``"direct"`` (``staggered_did``; R ``did`` / DRDID's ``glm`` on small cells):
  whole-array passes with the linear predictor clipped at +-35, an LU solve;
  stops when the largest step is below ``1e-12 (1 + max |beta|)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import linalg

__all__ = [
    "Arithmetic",
    "LogitFit",
    "fit_logit",
    "logit_pass",
    "separated",
    "separation_culprits",
    "weighted_logit_probabilities",
]

Arithmetic = Literal["blocked", "direct"]

# Rows per block in the logit's passes over the data: a block of 11 columns (2.8 MB) and its
# temporaries stay in cache, which makes a pass about 3x faster than whole-array temporaries.
_BLOCK = 1 << 15

# |linear predictor| is clipped here in the "direct" arithmetic (as R glm's binomial link guards exp)
_ETA_CLIP = 35.0


@dataclass(frozen=True)
class LogitFit:
    """A fitted logit.

    Attributes
    ----------
    params : numpy.ndarray
        Maximum-likelihood coefficients (the last iterate when not converged).
    converged : bool
        Whether the stopping rule of the arithmetic was met within ``maxiter`` steps.
    n_iter : int
        Newton steps taken.
    n_halvings : int
        Times a step was halved because it lowered the likelihood.
    arithmetic : {"blocked", "direct"}
        The arithmetic the fit used; :meth:`predict` uses the same.
    """

    params: np.ndarray
    converged: bool
    n_iter: int
    n_halvings: int
    arithmetic: Arithmetic = "blocked"

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Fitted probabilities ``P(y = 1 | X)`` in the fit's arithmetic."""
        from scipy.special import expit  # lazily: scipy.special is not needed to import the package

        eta = X @ self.params
        if self.arithmetic == "direct":
            return 1.0 / (1.0 + np.exp(-np.clip(eta, -_ETA_CLIP, _ETA_CLIP)))
        return expit(eta)


def logit_pass(X: np.ndarray, y: np.ndarray, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log-likelihood, score ``X'(y - p)`` and information ``X' diag(p(1-p)) X`` of a logit at ``beta``.

    One pass over the rows in blocks, so a register-scale design is never copied whole.

    Examples
    --------
    >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]])
    >>> ll, g, H = logit_pass(X, np.array([0.0, 0.0, 1.0, 1.0]), np.zeros(2))
    >>> round(ll, 6), g.tolist()
    (-2.772589, [0.0, 2.0])
    """
    from scipy.special import expit

    k = X.shape[1]
    ll = 0.0
    g = np.zeros(k)
    H = np.zeros((k, k))
    for a in range(0, len(y), _BLOCK):
        Xb, yb = X[a : a + _BLOCK], y[a : a + _BLOCK]
        eta = Xb @ beta
        p = expit(eta)
        # log(1 - p) = log(p) - eta, taken from whichever of p and 1 - p is not rounded to 1 (cheaper than logaddexp)
        ll += float(yb @ eta + (np.log(np.where(eta > 0, p, 1.0 - p)) - np.maximum(eta, 0.0)).sum())
        g += Xb.T @ (yb - p)
        Xw = Xb * np.sqrt(p * (1.0 - p))[:, None]
        H += Xw.T @ Xw  # one syrk: the cheapest form of X'WX
    return ll, g, H


def _direct_pass(X: np.ndarray, y: np.ndarray, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """As :func:`logit_pass` on whole arrays, with the linear predictor clipped at +-35."""
    eta = np.clip(X @ beta, -_ETA_CLIP, _ETA_CLIP)
    p = 1.0 / (1.0 + np.exp(-eta))
    W = p * (1 - p)
    H = (X * W[:, None]).T @ X
    ll = float(y @ eta - np.logaddexp(0.0, eta).sum())
    return ll, X.T @ (y - p), H


def _ridge_solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Newton step by Cholesky with statsmodels' 1e-10 ridge (which matters only once a separated fit's weights
    underflow), falling back to a general solve if rounding leaves the matrix not positive definite."""
    H[np.diag_indices(len(g))] += 1e-10
    try:
        return linalg.cho_solve(linalg.cho_factor(H, check_finite=False), g, check_finite=False)
    except np.linalg.LinAlgError:
        return np.linalg.solve(H, g)


def fit_logit(
    X: np.ndarray,
    y: np.ndarray,
    *,
    intercept: int | None = 0,
    XtX: np.ndarray | None = None,
    maxiter: int = 100,
    arithmetic: Arithmetic = "blocked",
) -> LogitFit:
    """Maximum-likelihood logit coefficients by Newton-Raphson with step halving.

    Parameters
    ----------
    X : (n, k) array
        Design matrix, intercept column included.
    y : (n,) array
        Outcome coded 0/1 (as floats).
    intercept : int or None
        Position of the intercept column in ``X``; ``None`` if there is none.
    XtX : (k, k) array, optional
        ``X'X`` if already computed (``"blocked"`` only: it gives the first step).
    maxiter : int
        Most Newton steps.
    arithmetic : {"blocked", "direct"}
        See the module notes. Both halve a step that would lower the likelihood; the
        old ``staggered_did`` logit took every full Newton step, so a fit that needs a
        halving (far starting point, heavy-tailed covariates) now ends at the maximum
        where that one could overshoot. No reference fit needs one.

    Returns
    -------
    LogitFit

    Raises
    ------
    numpy.linalg.LinAlgError
        The information matrix is singular (collinear or separated design).

    Notes
    -----
    The fit starts at the intercept-only estimate (the logit of the mean; zeros
    without an intercept). With ``"blocked"`` every weight is then the same, so
    the first information matrix is a multiple of ``X'X`` and the first step
    needs no pass over the data.

    Convergence is judged on the full Newton step, so a step cut short by halving
    cannot fake it; the step size, not a Hessian-scaled norm, is the test because
    a diverging (separated) fit keeps taking steps of order one while its gradient
    and Hessian vanish together. A step that lowers the log-likelihood (beyond
    ``1e-12`` of it) is halved until it does not, at most 30 times; if none
    improves, the fit stops where it is, not converged.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = np.column_stack([np.ones(200), rng.normal(size=200)])
    >>> y = (rng.random(200) < 1 / (1 + np.exp(-(0.5 + X[:, 1])))).astype(float)
    >>> fit = fit_logit(X, y)
    >>> fit.converged, fit.n_halvings
    (True, 0)
    >>> bool(np.allclose(fit.params, fit_logit(X, y, arithmetic="direct").params, rtol=1e-9))
    True
    """
    n, k = X.shape
    beta = np.zeros(k)
    ybar = float(y.mean())
    p0 = 0.5
    if intercept is not None and 0 < ybar < 1:
        p0 = ybar
        beta[intercept] = math.log(ybar / (1 - ybar))
    evaluate: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[float, np.ndarray, np.ndarray]]
    solve: Callable[[np.ndarray, np.ndarray], np.ndarray]
    if arithmetic == "blocked":
        XtX = X.T @ X if XtX is None else XtX
        ll = float(n * ybar * math.log(p0) + n * (1 - ybar) * math.log1p(-p0))
        colsum = X.sum(axis=0) if intercept is None else XtX[intercept]
        g = X.T @ y - p0 * colsum
        H = p0 * (1 - p0) * XtX
        evaluate, solve = logit_pass, _ridge_solve
    elif arithmetic == "direct":
        ll, g, H = _direct_pass(X, y, beta)
        evaluate, solve = _direct_pass, np.linalg.solve
    else:
        raise ValueError(f"arithmetic={arithmetic!r} is not allowed; use 'blocked' or 'direct'")
    previous = math.inf
    halvings = 0
    for it in range(maxiter):
        step = solve(H, g)
        new = beta + step
        if arithmetic == "blocked":
            size = float(np.max(np.abs(step) / np.maximum(1.0, np.abs(new))))
            done = size <= 1e-10
        else:
            size = float(np.max(np.abs(step)))
            done = size < 1e-12 * (1 + np.max(np.abs(new)))
        if done:  # a step this small cannot lower the likelihood: no pass needed to check it
            return LogitFit(new, True, it + 1, halvings, arithmetic)
        for _halving in range(30):
            ll_new, g_new, H_new = evaluate(X, y, beta + step)
            # a Newton step on this concave likelihood only lowers it far from the optimum
            if ll_new >= ll - 1e-12 * abs(ll):
                break
            step = step / 2
            halvings += 1
        else:  # no step along the Newton direction improves the likelihood: stop where we are
            return LogitFit(beta, False, it, halvings, arithmetic)
        beta = beta + step
        ll, g, H = ll_new, g_new, H_new
        # Newton's convergence is quadratic: a step below 1e-6 that stops shrinking has reached rounding noise
        if arithmetic == "blocked" and previous <= 1e-6 and size >= previous / 2:
            return LogitFit(beta, True, it + 1, halvings, arithmetic)
        previous = size
    return LogitFit(beta, False, maxiter, halvings, arithmetic)


def separation_culprits(A: np.ndarray, names: Sequence[str], t: np.ndarray) -> list[str]:
    """Design columns (of ``A``, named ``names``) that alone separate treated from controls.

    Complete or quasi-complete separation: a 0/1 column whose level occurs in one group only,
    or another column whose treated and control ranges do not overlap. Works column by column
    on the few treated rows plus whole-column reductions, so the pool is never copied.

    Examples
    --------
    >>> A = np.column_stack([[0.0, 0.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]])
    >>> separation_culprits(A, ["female", "age"], np.array([0, 1, 0, 1]))
    []
    >>> separation_culprits(A, ["female", "age"], np.array([0, 0, 1, 1]))
    ["'female' = 1 occurs only among treated (2 units)", "'female' = 0 occurs only among controls (2 units)", \
"'age' does not overlap between treated and controls"]
    """
    out: list[str] = []
    tb = t.astype(bool)
    ti = np.flatnonzero(tb)
    n, nt = len(t), len(ti)
    if A.shape[1] == 0 or nt == 0 or nt == n:
        return out
    At = A[ti]
    lo, hi = A.min(axis=0), A.max(axis=0)
    lo_t, hi_t = At.min(axis=0), At.max(axis=0)
    for j, c in enumerate(names):
        col = A[:, j]
        if lo[j] == 0 and hi[j] == 1 and bool(np.all((col == 0) | (col == 1))):
            s1, s1t = float(col.sum()), float(At[:, j].sum())
            for v, cnt, cnt_t in ((1, s1, s1t), (0, n - s1, nt - s1t)):
                if cnt_t in (0, cnt):
                    who = "treated" if cnt_t == cnt else "controls"
                    out.append(f"'{c}' = {v} occurs only among {who} ({int(cnt)} units)")
            continue
        # the controls' extremes equal the overall ones unless the treated attain them
        lo_c = lo[j] if lo[j] < lo_t[j] else np.min(col, where=~tb, initial=np.inf)
        hi_c = hi[j] if hi[j] > hi_t[j] else np.max(col, where=~tb, initial=-np.inf)
        if hi_t[j] < lo_c or hi_c < lo_t[j]:
            out.append(f"'{c}' does not overlap between treated and controls")
    return out


def separated(fit: LogitFit, p: np.ndarray, y: np.ndarray) -> bool:
    """True when a fit diverged to separation.

    Some fitted probabilities are exactly 0 or 1 (quasi-separation), or all of them
    equal the outcome (complete separation, statsmodels' test), or the coefficients
    are not finite.
    """
    return bool(not np.all(np.isfinite(fit.params)) or np.any((p == 0.0) | (p == 1.0)) or np.all(np.abs(p - y) <= 1e-8))


def weighted_logit_probabilities(X: np.ndarray, y: np.ndarray, w: np.ndarray, maxiter: int = 100) -> np.ndarray:
    """Fitted probabilities of the weighted logit (R ``glm(weights=)``, as DRDID fits it): the "direct"
    arithmetic of :func:`fit_logit` with each row's log-likelihood times ``w`` (sampling weights).

    Starts at the weighted intercept-only fit (column 0 is the intercept), halves a step that lowers
    the likelihood, stops when the largest step is below ``1e-12 (1 + max |beta|)``.

    >>> X = np.column_stack([np.ones(4), [0.0, 1.0, 2.0, 3.0]]); y = np.array([0.0, 1.0, 0.0, 1.0])
    >>> p = weighted_logit_probabilities(X, y, np.array([1.0, 2.0, 2.0, 1.0]))
    >>> round(float(p @ np.array([1.0, 2.0, 2.0, 1.0])), 6)  # weighted score equation: sum w p = sum w y
    3.0
    """
    beta = np.zeros(X.shape[1])
    ybar = float(w @ y) / float(w.sum())
    if 0 < ybar < 1:
        beta[0] = math.log(ybar / (1 - ybar))
    wy = w * y

    def evaluate(b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        eta = np.clip(X @ b, -_ETA_CLIP, _ETA_CLIP)
        p = 1.0 / (1.0 + np.exp(-eta))
        ll = float(wy @ eta - w @ np.logaddexp(0.0, eta))
        return ll, X.T @ (wy - w * p), (X * (w * p * (1 - p))[:, None]).T @ X

    ll, g, H = evaluate(beta)
    for _ in range(maxiter):
        step = np.linalg.solve(H, g)
        new = beta + step
        if float(np.max(np.abs(step))) < 1e-12 * (1 + np.max(np.abs(new))):
            beta = new
            break
        for _halving in range(30):
            ll_new, g_new, H_new = evaluate(beta + step)
            if ll_new >= ll - 1e-12 * abs(ll):
                break
            step = step / 2
        else:  # no step along the Newton direction improves the likelihood: stop where we are
            break
        beta = beta + step
        ll, g, H = ll_new, g_new, H_new
    return 1.0 / (1.0 + np.exp(-np.clip(X @ beta, -_ETA_CLIP, _ETA_CLIP)))
