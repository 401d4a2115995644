"""The one logit (evaluator.estimators.logit) against statsmodels, in both of its arithmetics."""

from __future__ import annotations

import numpy as np
import pytest

from evaluator.estimators.logit import fit_logit, logit_pass, separated, separation_culprits


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.integers(0, 2, n), rng.normal(size=n) ** 2])
    eta = -0.8 + 0.7 * X[:, 1] - 0.5 * X[:, 2] + 0.2 * X[:, 3]
    return X, (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)


@pytest.mark.parametrize("arithmetic", ["blocked", "direct"])
@pytest.mark.parametrize("n", [300, 70_000])  # 70,000 rows: the blocked passes span three blocks
def test_fit_logit_equals_statsmodels(arithmetic: str, n: int) -> None:
    import statsmodels.api as sm

    X, y = _data(n, seed=n)
    fit = fit_logit(X, y, arithmetic=arithmetic)  # type: ignore[arg-type]
    ref = sm.Logit(y, X).fit(disp=0, method="newton", maxiter=100)
    assert fit.converged and ref.mle_retvals["converged"]
    # both maximise the same concave likelihood; 1e-8 leaves room for the stopping rules only
    np.testing.assert_allclose(fit.params, ref.params, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(fit.predict(X), ref.predict(), rtol=1e-8, atol=1e-15)
    ll, g, H = logit_pass(X, y, fit.params)
    assert ll == pytest.approx(ref.llf, rel=1e-12)
    np.testing.assert_allclose(H, -ref.model.hessian(ref.params), rtol=1e-9)
    assert np.abs(g).max() < 1e-6


def test_heavy_tailed_covariate_reaches_statsmodels_maximum() -> None:
    # a Cauchy covariate puts a few units far out, where the quadratic model of the likelihood is poor
    import statsmodels.api as sm

    rng = np.random.default_rng(1)
    x = rng.standard_cauchy(size=300)
    X = np.column_stack([np.ones(300), x])
    y = (rng.random(300) < 1 / (1 + np.exp(-(2 * np.clip(x, -3, 3))))).astype(float)
    ref = sm.Logit(y, X).fit(disp=0, method="newton", maxiter=100)
    for arithmetic in ("blocked", "direct"):
        fit = fit_logit(X, y, arithmetic=arithmetic)  # type: ignore[arg-type]
        assert fit.converged
        np.testing.assert_allclose(fit.params, ref.params, rtol=1e-8)


def test_separation_is_detected() -> None:
    x = np.r_[np.zeros(10), np.ones(10)]
    A = x[:, None]
    assert separation_culprits(A, ["d"], x.astype(int)) == [
        "'d' = 1 occurs only among treated (10 units)",
        "'d' = 0 occurs only among controls (10 units)",
    ]
    X = np.column_stack([np.ones(20), x + np.linspace(0, 0.1, 20)])
    fit = fit_logit(X, x)
    assert separated(fit, fit.predict(X), x)


def test_unknown_arithmetic() -> None:
    X, y = _data(50, 1)
    with pytest.raises(ValueError, match="arithmetic="):
        fit_logit(X, y, arithmetic="lu")  # type: ignore[arg-type]
