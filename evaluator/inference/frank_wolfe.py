"""synthdid's Frank-Wolfe solver: least squares over the simplex, with a ridge term and R's stopping rule.

:func:`frank_wolfe` minimises :math:`\\zeta^2 |x|^2 + |A x - b|^2 / n` over
:math:`\\{x \\ge 0, \\sum x = 1\\}` for a batch of problems, step by step as the R package
``synthdid`` (0.0.9, ``sc.weight.fw``) steps: the vertex of the smallest half gradient
(first one on ties, as ``which.min``), an exact line search clipped to [0, 1], at least two
steps, then on while the objective falls by more than ``min_decrease^2``. The synthetic
estimators' unit and time weights are its solutions.

Two implementations give the same steps:

- compiled loops (:mod:`evaluator.inference.compiled`, numba): one problem after another,
  each step a few short loops over its columns and rows. A fit of Proposition 99 (38
  controls, 19 pre-periods) runs about 10,000 steps; each costs about 8 microseconds in
  numpy, where the work of a step is dwarfed by the cost of calling numpy, and about 0.3
  microseconds compiled.
- numpy (when numba cannot be imported, and as the reference in the tests): the batch as
  whole arrays, one vectorised step for every problem still running.

Examples
--------
>>> import numpy as np
>>> A = np.array([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])   # one problem, 3 rows, 2 columns
>>> b = np.array([[0.5, 0.5, 1.0]])
>>> x = frank_wolfe(A, b, np.array([[1.0, 0.0]]), 1e-6, intercept=False, min_decrease=1e-8, max_iter=1000)
>>> np.round(x, 4).tolist()
[[0.5, 0.5]]
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from evaluator.inference.compiled import jit

__all__ = ["compiled", "compiled_covariates", "frank_wolfe", "frank_wolfe_covariates"]

Backend = Literal["auto", "numba", "numpy"]


def frank_wolfe(
    A: np.ndarray,
    b: np.ndarray,
    x0: np.ndarray,
    zeta: float,
    *,
    intercept: bool,
    min_decrease: float,
    max_iter: int,
    backend: Backend = "auto",
) -> np.ndarray:
    """Solve a batch of synthdid weight problems from the starting points ``x0``.

    Parameters
    ----------
    A, b, x0 : numpy.ndarray
        ``(B, n, k)``, ``(B, n)`` and ``(B, k)``: ``B`` problems of ``n`` rows and ``k`` weights.
    zeta : float
        Ridge penalty; the solver's eta is ``n * zeta**2`` as in synthdid.
    intercept : bool
        Centre every column of ``A`` and ``b`` over its rows first (synthdid's ``intercept=TRUE``).
    min_decrease, max_iter
        Stop when a step lowers the objective by ``min_decrease**2`` or less (after at least two
        steps), or after ``max_iter`` steps.
    backend : {"auto", "numba", "numpy"}
        ``"auto"``: compiled when numba is available, numpy otherwise.

    Returns
    -------
    numpy.ndarray
        ``(B, k)`` weights.

    Examples
    --------
    >>> A = np.eye(3)[None]
    >>> frank_wolfe(A, np.full((1, 3), 1 / 3), np.array([[1.0, 0, 0]]), 0.0, intercept=False,
    ...             min_decrease=1e-9, max_iter=100).round(3).tolist()
    [[0.333, 0.333, 0.333]]
    """
    if intercept:  # R centres every column of Y (A and b alike) over its rows
        A = A - A.mean(axis=1, keepdims=True)
        b = b - b.mean(axis=1, keepdims=True)
    B, n, k = A.shape
    eta = n * zeta**2
    x = np.array(x0, dtype=float, copy=True)
    if max_iter <= 0 or B == 0:
        return x
    threshold = min_decrease**2
    kernel = compiled() if backend in ("auto", "numba") else None
    if backend == "numba" and kernel is None:
        raise ImportError("backend='numba' needs numba: pip install numba")
    if kernel is not None:
        return kernel(
            np.ascontiguousarray(A, dtype=float),
            np.ascontiguousarray(b, dtype=float),
            x,
            float(zeta),
            float(eta),
            float(threshold),
            int(max_iter),
        )
    if B == 1:
        return _numpy_one(A[0], b[0], x[0], zeta, eta, threshold, max_iter)[None, :]
    return _numpy_batch(A, b, x, zeta, eta, threshold, max_iter)


# -- compiled --------------------------------------------------------------------------------------------------------
def _loops(
    A: np.ndarray, b: np.ndarray, x: np.ndarray, zeta: float, eta: float, threshold: float, max_iter: int
) -> np.ndarray:
    """Every problem of the batch in turn, in place on ``x``; plain loops for numba (never run uncompiled)."""
    B, n, k = A.shape
    zeta2 = zeta * zeta
    toward = np.empty((k, n))
    grad_at = np.empty((k, k))
    r = np.empty(n)
    g = np.empty(k)
    for q in range(B):
        # a step moves x towards the vertex e_i: the residual A x - b moves towards A_i - b and the half
        # gradient A'(A x - b) + eta x towards its value at e_i, so both are updated, not recomputed
        for i in range(k):
            for j in range(n):
                toward[i, j] = A[q, j, i] - b[q, j]
        for i in range(k):
            for c in range(k):
                s = 0.0
                for j in range(n):
                    s += toward[i, j] * A[q, j, c]
                grad_at[i, c] = s
            grad_at[i, i] += eta
        for j in range(n):
            s = -b[q, j]
            for c in range(k):
                s += A[q, j, c] * x[q, c]
            r[j] = s
        for c in range(k):
            s = eta * x[q, c]
            for j in range(n):
                s += r[j] * A[q, j, c]
            g[c] = s
        prev = np.inf
        t = 0
        while t < max_iter:
            t += 1
            i = 0
            for c in range(1, k):  # first minimum, as R's which.min
                if g[c] < g[i]:
                    i = c
            gx = 0.0
            xx = 0.0
            for c in range(k):
                gx += g[c] * x[q, c]
                xx += x[q, c] * x[q, c]
            num = gx - g[i]  # -(half gradient . d_x), d_x = e_i - x
            den = 0.0
            for j in range(n):
                d = toward[i, j] - r[j]
                den += d * d
            den += eta * (xx - 2.0 * x[q, i] + 1.0)
            step = 0.0
            if den > 0.0:  # den is 0 only at the vertex itself (d_x = 0), where R leaves x as it is
                step = min(1.0, max(0.0, num / den))
            keep = 1.0 - step
            xx = 0.0
            for c in range(k):
                x[q, c] *= keep
                if c == i:
                    x[q, c] += step
                xx += x[q, c] * x[q, c]
                g[c] = g[c] * keep + grad_at[i, c] * step
            rr = 0.0
            for j in range(n):
                r[j] = r[j] * keep + toward[i, j] * step
                rr += r[j] * r[j]
            val = zeta2 * xx + rr / n
            if t >= 2 and not prev - val > threshold:
                break
            prev = val
    return x


def compiled() -> Any | None:
    """The compiled solver (:func:`evaluator.inference.compiled.jit`), or ``None`` without numba.

    Examples
    --------
    >>> compiled() is None or callable(compiled())
    True
    """
    return jit(_loops)


# -- numpy ------------------------------------------------------------------------------------------------------------
def _numpy_batch(
    A: np.ndarray, b: np.ndarray, x: np.ndarray, zeta: float, eta: float, threshold: float, max_iter: int
) -> np.ndarray:
    """All problems at once: each step a few whole-array operations over the problems still running."""
    B, n, k = A.shape
    zeta2 = zeta * zeta
    # the state Z = [x | r | g] is updated as one convex combination Z <- (1 - s) Z + s V_i
    toward = np.swapaxes(A, 1, 2) - b[:, None, :]  # (B, k, n): A_i - b
    grad_at = np.matmul(toward, A) + eta * np.eye(k)[None]  # (B, k, k): half gradient at e_i
    V = np.concatenate([np.broadcast_to(np.eye(k), (B, k, k)), toward, grad_at], axis=2)
    r = np.matmul(A, x[:, :, None])[:, :, 0] - b
    g = np.matmul(r[:, None, :], A)[:, 0, :] + eta * x
    Z = np.concatenate([x, r, g], axis=1)
    kn = k + n
    sums = np.zeros((kn, 2))  # Z[:, :kn]**2 @ sums = (|x|^2, |r|^2)
    sums[:k, 0] = sums[k:, 1] = 1.0
    norms = np.matmul(Z[:, :kn] ** 2, sums)
    # the working set: problems still running; finished problems are written back and dropped
    act = np.arange(B)
    rows = np.arange(B)
    prev = np.full(B, np.inf)
    t = 0
    with np.errstate(divide="ignore", invalid="ignore"):
        while t < max_iter and act.size:
            t += 1
            xs, rs, gs = Z[:, :k], Z[:, k:kn], Z[:, kn:]
            i = gs.argmin(axis=1)
            Vi = V[rows, i]
            num = np.einsum("bk,bk->b", xs, gs) - gs[rows, i]
            d_err = Vi[:, k:kn] - rs
            den = np.einsum("bn,bn->b", d_err, d_err) + eta * (norms[:, 0] - 2 * xs[rows, i] + 1)
            step = np.minimum(1.0, np.maximum(0.0, num / den))
            step[~(den > 0)] = 0.0
            Z *= (1.0 - step)[:, None]
            Vi *= step[:, None]
            Z += Vi
            norms = np.matmul(Z[:, :kn] ** 2, sums)
            val = zeta2 * norms[:, 0] + norms[:, 1] / n
            if t >= 2:
                keep = prev - val > threshold
                if not keep.all():
                    x[act[~keep]] = Z[~keep, :k]
                    act, Z, V, norms, val = act[keep], Z[keep], V[keep], norms[keep], val[keep]
                    rows = np.arange(act.size)
            prev = val
    x[act] = Z[:, :k]
    return x


def _numpy_one(
    A: np.ndarray, b: np.ndarray, x0: np.ndarray, zeta: float, eta: float, threshold: float, max_iter: int
) -> np.ndarray:
    """:func:`_numpy_batch` for one problem, its scalars kept as Python floats (a third of the cost per step)."""
    n, k = A.shape
    zeta2 = zeta * zeta
    toward = np.ascontiguousarray(A.T - b[None, :])
    grad_at = toward @ A + eta * np.eye(k)
    x = np.array(x0, dtype=float)
    r = A @ x - b
    g = r @ A + eta * x
    tmp_n, tmp_k = np.empty(n), np.empty(k)
    prev = np.inf
    t = 0
    while t < max_iter:
        t += 1
        i = int(g.argmin())
        xi = x.item(i)
        num = float(g @ x) - g.item(i)
        vi = toward[i]
        np.subtract(vi, r, out=tmp_n)
        den = float(tmp_n @ tmp_n) + eta * (float(x @ x) - 2.0 * xi + 1.0)
        step = min(1.0, max(0.0, num / den)) if den > 0 else 0.0
        keep = 1.0 - step
        x *= keep
        x[i] += step
        r *= keep
        np.multiply(vi, step, out=tmp_n)
        r += tmp_n
        g *= keep
        np.multiply(grad_at[i], step, out=tmp_k)
        g += tmp_k
        val = zeta2 * float(x @ x) + float(r @ r) / n
        if t >= 2 and not prev - val > threshold:
            break
        prev = val
    return x


# -- with covariates: Frank-Wolfe steps for the weights, gradient steps for the coefficients ---------------------------
def frank_wolfe_covariates(
    Y: np.ndarray,
    X: np.ndarray,
    lam0: np.ndarray,
    om0: np.ndarray,
    *,
    zeta_lambda: float,
    zeta_omega: float,
    lambda_intercept: bool,
    omega_intercept: bool,
    update_lambda: bool,
    update_omega: bool,
    min_decrease: float,
    max_iter: int,
    backend: Backend = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""synthdid's ``sc.weight.fw.covariates`` on a batch of collapsed panels: weights and covariate coefficients.

    Each step adjusts the outcome for the covariates, :math:`Y - \sum_k \beta_k X_k`, takes one exact
    line-search Frank-Wolfe step for the time weights :math:`\lambda` (across the controls' rows)
    and one for the unit weights :math:`\omega` (across the pre-periods), then a gradient step of
    size :math:`1/t` for :math:`\beta` on the joint objective
    :math:`\zeta_\omega^2|\omega|^2 + \zeta_\lambda^2|\lambda|^2 + |e_\omega|^2/T_0 + |e_\lambda|^2/N_0`;
    it stops when the objective falls by ``min_decrease**2`` or less (after at least two steps) or
    after ``max_iter`` steps. :math:`\beta` starts at zero, as in synthdid.

    Parameters
    ----------
    Y : numpy.ndarray
        ``(B, N0 + 1, T0 + 1)`` collapsed outcome (``synthdid::collapsed.form``): controls' pre-periods
        and post-period mean, then the treated mean.
    X : numpy.ndarray
        ``(B, N0 + 1, T0 + 1, C)``: each covariate collapsed the same way.
    lam0, om0 : numpy.ndarray
        ``(B, T0)`` and ``(B, N0)`` starting (or, when not updated, fixed) weights.
    zeta_lambda, zeta_omega, lambda_intercept, omega_intercept, update_lambda, update_omega
        As synthdid's arguments of the same names.
    min_decrease, max_iter, backend
        As :func:`frank_wolfe`.

    Returns
    -------
    tuple of numpy.ndarray
        ``lambda (B, T0)``, ``omega (B, N0)``, ``beta (B, C)``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(1, 6, 5, 1))
    >>> Y = 2.0 * X[..., 0] + rng.normal(0, 0.01, (1, 6, 5))   # the outcome is twice the covariate
    >>> lam, om, beta = frank_wolfe_covariates(
    ...     Y, X, np.full((1, 4), 0.25), np.full((1, 5), 0.2), zeta_lambda=0.0, zeta_omega=0.0,
    ...     lambda_intercept=True, omega_intercept=True, update_lambda=False, update_omega=False,
    ...     min_decrease=1e-8, max_iter=10_000)
    >>> bool(abs(beta[0, 0] - 2.0) < 0.05)
    True
    """
    Y = np.ascontiguousarray(Y, dtype=float)
    X = np.ascontiguousarray(X, dtype=float)
    lam = np.array(lam0, dtype=float, copy=True)
    om = np.array(om0, dtype=float, copy=True)
    B = Y.shape[0]
    beta = np.zeros((B, X.shape[3]))
    flags = (bool(lambda_intercept), bool(omega_intercept), bool(update_lambda), bool(update_omega))
    args = (float(zeta_lambda), float(zeta_omega), *flags, float(min_decrease) ** 2, int(max_iter))
    kernel = compiled_covariates() if backend in ("auto", "numba") else None
    if backend == "numba" and kernel is None:
        raise ImportError("backend='numba' needs numba: pip install numba")
    if kernel is not None:
        kernel(Y, X, lam, om, beta, *args)
    else:
        for q in range(B):
            _covariates_numpy(Y[q], X[q], lam[q], om[q], beta[q], *args)
    return lam, om, beta


def _fw_step(A: np.ndarray, x: np.ndarray, b: np.ndarray, eta: float) -> np.ndarray:
    """synthdid's ``fw.step`` with exact line search (numpy)."""
    Ax = A @ x
    half_grad = (Ax - b) @ A + eta * x
    i = int(np.argmin(half_grad))
    dx = -x
    dx[i] = 1.0 - x[i]
    if not dx.any():
        return x
    d_err = A[:, i] - Ax
    step = -(half_grad @ dx) / (d_err @ d_err + eta * (dx @ dx))
    return x + min(1.0, max(0.0, step)) * dx


def _covariates_numpy(
    Y: np.ndarray,
    X: np.ndarray,
    lam: np.ndarray,
    om: np.ndarray,
    beta: np.ndarray,
    zeta_lambda: float,
    zeta_omega: float,
    lambda_intercept: bool,
    omega_intercept: bool,
    update_lambda: bool,
    update_omega: bool,
    threshold: float,
    max_iter: int,
) -> None:
    """One problem of :func:`frank_wolfe_covariates` in numpy, written as R writes it (in place)."""
    n, T = Y.shape[0] - 1, Y.shape[1] - 1

    def update(Yb: np.ndarray, lam: np.ndarray, om: np.ndarray) -> tuple[float, Any, Any, Any, Any]:
        YL = Yb[:n] - Yb[:n].mean(axis=0) if lambda_intercept else Yb[:n]
        if update_lambda:
            lam = _fw_step(YL[:, :T], lam, YL[:, T], n * zeta_lambda**2)
        err_l = YL @ np.append(lam, -1.0)
        YO = Yb[:, :T].T
        YO = YO - YO.mean(axis=0) if omega_intercept else YO
        if update_omega:
            om = _fw_step(YO[:, :n], om, YO[:, n], T * zeta_omega**2)
        err_o = YO @ np.append(om, -1.0)
        val = zeta_omega**2 * (om @ om) + zeta_lambda**2 * (lam @ lam) + (err_o @ err_o) / T + (err_l @ err_l) / n
        return float(val), lam, om, err_l, err_o

    b = beta.copy()
    val, l, o, err_l, err_o = update(Y - X @ b, lam, om)
    vals: list[float] = []
    t = 0
    while t < max_iter and (t < 2 or vals[-2] - vals[-1] > threshold):
        t += 1
        lw, ow = np.append(l, -1.0), np.append(o, -1.0)
        grad = -(np.einsum("i,itk,t->k", err_l, X[:n], lw) / n + np.einsum("t,itk,i->k", err_o, X[:, :T], ow) / T)
        b = b - grad / t
        val, l, o, err_l, err_o = update(Y - X @ b, l, o)
        vals.append(val)
    lam[:], om[:], beta[:] = l, o, b


def _covariates_loops(
    Y: np.ndarray,
    X: np.ndarray,
    lam_all: np.ndarray,
    om_all: np.ndarray,
    beta_all: np.ndarray,
    zeta_lambda: float,
    zeta_omega: float,
    lambda_intercept: bool,
    omega_intercept: bool,
    update_lambda: bool,
    update_omega: bool,
    threshold: float,
    max_iter: int,
) -> None:
    """:func:`_covariates_numpy` for the whole batch as loops for numba (in place; never run uncompiled)."""
    B, n1, T1 = Y.shape
    C = X.shape[3]
    n, T = n1 - 1, T1 - 1
    Yb = np.empty((n1, T1))
    AL = np.empty((n, T))
    bL = np.empty(n)
    AO = np.empty((T, n))
    bO = np.empty(T)
    err_l = np.empty(n)
    err_o = np.empty(T)
    grad = np.empty(C)
    for q in range(B):
        lam = lam_all[q]
        om = om_all[q]
        beta = beta_all[q]
        t = 0
        first = True
        vp2 = np.inf
        vp1 = np.inf
        while True:
            if not first:
                if not (t < max_iter and (t < 2 or vp2 - vp1 > threshold)):
                    break
                t += 1
                # the gradient of the objective in beta, at the weights of the last update
                for k in range(C):
                    g = 0.0
                    for i in range(n):
                        s = -X[q, i, T, k]
                        for u in range(T):
                            s += X[q, i, u, k] * lam[u]
                        g += err_l[i] * s
                    g /= n
                    h = 0.0
                    for u in range(T):
                        s = -X[q, n, u, k]
                        for i in range(n):
                            s += X[q, i, u, k] * om[i]
                        h += err_o[u] * s
                    grad[k] = -(g + h / T)
                for k in range(C):
                    beta[k] -= grad[k] / t
            # the outcome adjusted for the covariates, and the two least-squares problems
            for i in range(n1):
                for u in range(T1):
                    v = Y[q, i, u]
                    for k in range(C):
                        v -= beta[k] * X[q, i, u, k]
                    Yb[i, u] = v
            for u in range(T1):
                m = 0.0
                if lambda_intercept:
                    for i in range(n):
                        m += Yb[i, u]
                    m /= n
                for i in range(n):
                    if u < T:
                        AL[i, u] = Yb[i, u] - m
                    else:
                        bL[i] = Yb[i, u] - m
            for i in range(n1):
                m = 0.0
                if omega_intercept:
                    for u in range(T):
                        m += Yb[i, u]
                    m /= T
                for u in range(T):
                    if i < n:
                        AO[u, i] = Yb[i, u] - m
                    else:
                        bO[u] = Yb[i, u] - m
            for part in range(2):  # one Frank-Wolfe step for lambda, then one for omega
                if part == 0:
                    A, b, x, eta, upd = AL, bL, lam, n * zeta_lambda * zeta_lambda, update_lambda
                else:
                    A, b, x, eta, upd = AO, bO, om, T * zeta_omega * zeta_omega, update_omega
                rows, cols = A.shape
                if upd:
                    Ax = np.empty(rows)
                    for r in range(rows):
                        s = 0.0
                        for c in range(cols):
                            s += A[r, c] * x[c]
                        Ax[r] = s
                    best = 0
                    hg_best = np.inf
                    hg_dx = 0.0
                    hg = np.empty(cols)
                    for c in range(cols):
                        s = eta * x[c]
                        for r in range(rows):
                            s += (Ax[r] - b[r]) * A[r, c]
                        hg[c] = s
                        if s < hg_best:  # the first minimum, as which.min
                            hg_best = s
                            best = c
                    moves = False
                    dxx = 0.0
                    for c in range(cols):
                        dx = (1.0 - x[c]) if c == best else -x[c]
                        if dx != 0.0:
                            moves = True
                        hg_dx += hg[c] * dx
                        dxx += dx * dx
                    if moves:
                        dee = 0.0
                        for r in range(rows):
                            d = A[r, best] - Ax[r]
                            dee += d * d
                        step = -hg_dx / (dee + eta * dxx)
                        step = min(1.0, max(0.0, step))
                        for c in range(cols):
                            dx = (1.0 - x[c]) if c == best else -x[c]
                            x[c] += step * dx
                # the residual at the new weights
                for r in range(rows):
                    s = -b[r]
                    for c in range(cols):
                        s += A[r, c] * x[c]
                    if part == 0:
                        err_l[r] = s
                    else:
                        err_o[r] = s
            val = 0.0
            for i in range(n):
                val += zeta_omega * zeta_omega * om[i] * om[i] + err_l[i] * err_l[i] / n
            for u in range(T):
                val += zeta_lambda * zeta_lambda * lam[u] * lam[u] + err_o[u] * err_o[u] / T
            if not first:
                vp2 = vp1
                vp1 = val
            first = False


def compiled_covariates() -> Any | None:
    """The compiled covariate solver, or ``None`` without numba.

    Examples
    --------
    >>> compiled_covariates() is None or callable(compiled_covariates())
    True
    """
    return jit(_covariates_loops)
