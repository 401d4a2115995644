"""The Frank-Wolfe solver of the synthetic estimators: compiled and numpy steps agree, and they solve the problem."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from evaluator.inference import frank_wolfe as fw


def _problems(seed: int, B: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(B, n, k)).cumsum(axis=1)  # trending columns, as pre-period outcomes are
    mix = rng.dirichlet(np.ones(k), size=B)
    b = np.einsum("bnk,bk->bn", A, mix) + rng.normal(0, 0.3, (B, n))
    return A, b, np.full((B, k), 1.0 / k)


def _solve(backend: str, A, b, x0, zeta, **kw):
    return fw.frank_wolfe(A, b, x0, zeta, backend=backend, **kw)


@pytest.mark.skipif(fw.compiled() is None, reason="numba is not installed")
@pytest.mark.parametrize("intercept", [True, False])
@pytest.mark.parametrize("shape", [(1, 19, 38), (7, 12, 5), (30, 6, 40)])
def test_compiled_and_numpy_take_the_same_steps(shape, intercept):
    A, b, x0 = _problems(sum(shape), *shape)
    kw = dict(intercept=intercept, min_decrease=1e-5, max_iter=10_000)
    for zeta in (0.0, 0.3, 2.0):
        got = _solve("numba", A, b, x0, zeta, **kw)
        ref = _solve("numpy", A, b, x0, zeta, **kw)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)
        # and a batch stops each problem where it stops alone
        alone = [_solve("numba", A[q : q + 1], b[q : q + 1], x0[q : q + 1], zeta, **kw) for q in range(len(A))]
        np.testing.assert_array_equal(got, np.vstack(alone))


@pytest.mark.skipif(fw.compiled() is None, reason="numba is not installed")
@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(2, 15),
    k=st.integers(2, 12),
    max_iter=st.integers(0, 300),
    zeta=st.floats(0.0, 3.0),
)
def test_compiled_equals_numpy_property(seed, n, k, max_iter, zeta):
    A, b, x0 = _problems(seed, 3, n, k)
    kw = dict(intercept=True, min_decrease=1e-6, max_iter=max_iter)
    got = _solve("numba", A, b, x0, zeta, **kw)
    np.testing.assert_allclose(got, _solve("numpy", A, b, x0, zeta, **kw), rtol=0, atol=1e-9)
    assert (got >= 0).all() and np.allclose(got.sum(axis=1), 1.0)


@pytest.mark.parametrize("backend", ["numpy", "auto"])
def test_reaches_the_constrained_optimum(backend):
    # known truth: the minimum f* of f(x) = zeta^2 |x|^2 + |Ax - b|^2 / n over the simplex, by SLSQP to 1e-15.
    # Frank-Wolfe converges like 1/t, so the answer is near f*, not at it: f* <= f(x) <= f* + gap(x), with
    # the Frank-Wolfe gap gap(x) = grad f(x) . (x - e_i) (i the best vertex), and within 0.1% of f*
    A, b, x0 = _problems(5, 4, 10, 6)
    zeta = 0.2
    got = _solve(backend, A, b, x0, zeta, intercept=False, min_decrease=1e-9, max_iter=50_000)
    n = A.shape[1]
    for q in range(len(A)):

        def f(x, q=q):
            return zeta**2 * x @ x + np.sum((A[q] @ x - b[q]) ** 2) / n

        grad = 2 * zeta**2 * got[q] + 2 * A[q].T @ (A[q] @ got[q] - b[q]) / n
        gap = grad @ got[q] - grad.min()
        res = optimize.minimize(
            f,
            x0[q],
            method="SLSQP",
            bounds=[(0, 1)] * A.shape[2],
            constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1}],
            options={"ftol": 1e-15, "maxiter": 1000},
        )
        assert res.fun - 1e-12 <= f(got[q]) <= res.fun + gap + 1e-12
        assert f(got[q]) - res.fun <= 1e-3 * res.fun
        np.testing.assert_allclose(got[q], res.x, atol=2e-2)


def test_numpy_fallback_when_numba_is_missing(monkeypatch):
    A, b, x0 = _problems(1, 3, 8, 4)
    kw = dict(intercept=True, min_decrease=1e-5, max_iter=1000)
    ref = _solve("numpy", A, b, x0, 0.5, **kw)
    monkeypatch.setattr(fw, "compiled", lambda: None)
    np.testing.assert_array_equal(_solve("auto", A, b, x0, 0.5, **kw), ref)
    with pytest.raises(ImportError, match="backend='numba' needs numba"):
        _solve("numba", A, b, x0, 0.5, **kw)


def test_does_not_touch_its_inputs():
    A, b, x0 = _problems(2, 2, 6, 3)
    copies = [a.copy() for a in (A, b, x0)]
    _solve("auto", A, b, x0, 0.1, intercept=True, min_decrease=1e-5, max_iter=100)
    for a, c in zip((A, b, x0), copies, strict=True):
        np.testing.assert_array_equal(a, c)


# -- with covariates -----------------------------------------------------------------------------------------------
def _collapsed(seed: int, B: int, n0: int, T0: int, C: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(B, n0 + 1, T0 + 1, C)).cumsum(axis=2)
    Y = rng.normal(size=(B, n0 + 1, T0 + 1)).cumsum(axis=2) + X @ rng.normal(size=C)
    return Y, X


COV_CASES = [
    dict(lambda_intercept=True, omega_intercept=True, update_lambda=True, update_omega=True),  # sdid
    dict(lambda_intercept=True, omega_intercept=False, update_lambda=False, update_omega=True),  # sc
    dict(lambda_intercept=True, omega_intercept=True, update_lambda=False, update_omega=False),  # did
]


@pytest.mark.skipif(fw.compiled_covariates() is None, reason="numba is not installed")
@pytest.mark.parametrize("case", COV_CASES)
@pytest.mark.parametrize("C", [1, 3])
def test_covariates_compiled_and_numpy_take_the_same_steps(case, C):
    Y, X = _collapsed(C, 4, 9, 7, C)
    lam0, om0 = np.full((4, 7), 1 / 7), np.full((4, 9), 1 / 9)
    kw = dict(zeta_lambda=1e-3, zeta_omega=0.4, min_decrease=1e-4, max_iter=3000, **case)
    fast = fw.frank_wolfe_covariates(Y, X, lam0, om0, backend="numba", **kw)
    slow = fw.frank_wolfe_covariates(Y, X, lam0, om0, backend="numpy", **kw)
    for a, b in zip(fast, slow, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-9)


def test_covariates_with_fixed_weights_reach_least_squares():
    # known truth: with the weights fixed, the objective is quadratic in beta, so the gradient steps must end
    # near its minimiser (by lstsq); the outcome is 1.5 x1 - 0.7 x2 plus noise
    rng = np.random.default_rng(4)
    n0, T0 = 12, 9
    X = rng.normal(size=(1, n0 + 1, T0 + 1, 2))
    Y = X @ np.array([1.5, -0.7]) + rng.normal(0, 0.2, (1, n0 + 1, T0 + 1))
    lam0, om0 = np.full((1, T0), 1 / T0), np.full((1, n0), 1 / n0)
    kw = dict(lambda_intercept=True, omega_intercept=True, update_lambda=False, update_omega=False)
    _, _, beta = fw.frank_wolfe_covariates(
        Y, X, lam0, om0, zeta_lambda=0.0, zeta_omega=0.0, min_decrease=1e-9, max_iter=200_000, **kw
    )
    # the residuals e_lambda (rows: controls, centred) and e_omega (rows: pre-periods, centred) are linear in beta
    wl, wo = np.append(lam0[0], -1), np.append(om0[0], -1)

    def residuals(Z):
        ZL = Z[:n0] - Z[:n0].mean(axis=0)
        ZO = Z[:, :T0].T - Z[:, :T0].T.mean(axis=0)
        return np.concatenate([ZL @ wl / np.sqrt(n0), ZO @ wo / np.sqrt(T0)])

    design = np.column_stack([residuals(X[0, :, :, k]) for k in range(2)])
    target = residuals(Y[0])
    best = np.linalg.lstsq(design, target, rcond=None)[0]
    np.testing.assert_allclose(beta[0], best, atol=2e-3)
