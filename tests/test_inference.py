"""Tests of evaluator.inference: covariances against statsmodels, the wild bootstrap against brute force."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm

from evaluator.errors import DesignError
from evaluator.inference.bootstrap import draw_weights, wild_cluster_bootstrap, wild_sup_t_critical_value
from evaluator.inference.sandwich import cr1_factor, cr1_vcov, hc1_vcov


def _data(G=15, per=8, seed=3):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(G), per)
    n = g.size
    X = np.column_stack([np.ones(n), rng.normal(size=n), rng.normal(size=n) + rng.normal(size=G)[g]])
    y = X @ [1.0, 0.2, 0.3] + rng.normal(size=n) + rng.normal(size=G)[g]
    return X, y, g


def test_cr1_and_hc1_match_statsmodels():
    X, y, g = _data()
    fit = sm.OLS(y, X).fit()
    V = cr1_vcov(X, fit.resid, g)
    ref = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": g}).cov_params()
    np.testing.assert_allclose(V, ref, rtol=1e-10)
    np.testing.assert_allclose(hc1_vcov(X, fit.resid), sm.OLS(y, X).fit(cov_type="HC1").cov_params(), rtol=1e-10)
    # n_params changes only the (N-1)/(N-K) factor
    ratio = cr1_vcov(X, fit.resid, g, n_params=10)[1, 1] / V[1, 1]
    assert ratio == pytest.approx((len(y) - 3) / (len(y) - 10))
    assert cr1_factor(100, 3, 10) == pytest.approx(10 / 9 * 99 / 97)


def test_cr1_needs_two_clusters():
    X, y, _ = _data()
    with pytest.raises(DesignError, match="at least 2 clusters; found 1"):
        cr1_vcov(X, y, np.zeros(len(y)))


@pytest.mark.parametrize("kind", ["rademacher", "mammen", "webb"])
def test_weight_moments(kind):
    w = draw_weights(np.random.default_rng(0), 200_000, kind)
    assert w.mean() == pytest.approx(0.0, abs=0.01)
    assert (w**2).mean() == pytest.approx(1.0, abs=0.01)
    if kind == "mammen":
        assert (w**3).mean() == pytest.approx(1.0, abs=0.05)
    np.testing.assert_array_equal(w[:10], draw_weights(np.random.default_rng(0), 200_000, kind)[:10])
    with pytest.raises(ValueError, match="kind="):
        draw_weights(np.random.default_rng(0), 3, "normal")  # type: ignore[arg-type]


def _brute_force_p(X, y, g, j, r, V):
    """Restricted wild cluster bootstrap p-value, one regression per draw."""
    keep = [i for i in range(X.shape[1]) if i != j]
    yr = y - r * X[:, j]
    bt = np.linalg.lstsq(X[:, keep], yr, rcond=None)[0]
    u = yr - X[:, keep] @ bt
    fit = y - u
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    t = (beta[j] - r) / np.sqrt(cr1_vcov(X, y - X @ beta, g)[j, j])
    ts = []
    for b in range(V.shape[1]):
        ys = fit + u * V[g, b]
        bb = np.linalg.lstsq(X, ys, rcond=None)[0]
        ts.append((bb[j] - r) / np.sqrt(cr1_vcov(X, ys - X @ bb, g)[j, j]))
    return np.mean(np.abs(ts) >= abs(t) * (1 - 1e-10))


@pytest.mark.parametrize(("weights", "null"), [("rademacher", 0.1), ("webb", 0.0), ("mammen", 0.25)])
def test_wild_matches_brute_force(weights, null):
    X, y, g = _data(G=13)
    B = 199
    out = wild_cluster_bootstrap(X, y, g, 1, null=null, n_boot=B, weights=weights, seed=5, ci=False)
    V = draw_weights(np.random.default_rng(5), (13, B), weights)
    assert out.p_value[0] == pytest.approx(_brute_force_p(X, y, g, 1, null, V), abs=1e-12)
    assert out.weights == weights and out.n_boot == B and not out.enumerated


def test_wild_interval_is_test_inversion():
    X, y, g = _data(G=20)
    out = wild_cluster_bootstrap(X, y, g, [1, 2], seed=2, n_boot=399)
    for j, coef in enumerate([1, 2]):
        lo, hi = out.ci_low[j], out.ci_high[j]
        assert lo < out.estimate[j] < hi
        eps = 1e-6 * (hi - lo)
        inside = wild_cluster_bootstrap(X, y, g, coef, null=[lo + eps], seed=2, n_boot=399, ci=False).p_value[0]
        outside = wild_cluster_bootstrap(X, y, g, coef, null=[lo - eps], seed=2, n_boot=399, ci=False).p_value[0]
        assert inside > 0.05 >= outside


def test_wild_enumerates_rademacher_and_uses_webb_when_few_clusters():
    X, y, g = _data(G=6)
    out = wild_cluster_bootstrap(X, y, g, 1, weights="rademacher", n_boot=999)
    assert out.enumerated and out.n_boot == 2**6
    assert (out.p_value[0] * 64) == pytest.approx(round(out.p_value[0] * 64))
    auto = wild_cluster_bootstrap(X, y, g, 1, n_boot=99, seed=0)
    assert auto.weights == "webb" and not auto.enumerated
    X, y, g = _data(G=12)
    assert wild_cluster_bootstrap(X, y, g, 1, n_boot=99, seed=0, ci=False).weights == "rademacher"


def test_wild_contrast_and_seed():
    X, y, g = _data(G=25)
    R = np.array([0.0, 1.0, 1.0])
    a = wild_cluster_bootstrap(X, y, g, R, seed=np.random.default_rng(4), n_boot=299)
    b = wild_cluster_bootstrap(X, y, g, R, seed=4, n_boot=299)
    beta = np.linalg.lstsq(X, y, rcond=None)[0]
    assert a.estimate[0] == pytest.approx(beta[1] + beta[2])
    assert a.p_value[0] == b.p_value[0] and a.ci_low[0] == b.ci_low[0]
    fit = sm.OLS(y, X).fit(cov_type="cluster", cov_kwds={"groups": g})
    assert a.std_error[0] == pytest.approx(np.sqrt(R @ fit.cov_params() @ R), rel=1e-10)


def test_sup_t_critical_value_between_pointwise_and_bonferroni():
    X, y, g = _data(G=40, per=5)
    c1 = wild_sup_t_critical_value(X, y, g, [1], seed=1, n_boot=1999)
    c3 = wild_sup_t_critical_value(X, y, g, [0, 1, 2], seed=1, n_boot=1999)
    assert 1.7 < c1 < 2.3
    assert c1 < c3 < 3.2


def _two_group_cell(seed: int):
    rng = np.random.default_rng(seed)
    n = 60
    cluster = np.repeat(np.arange(10), 6)
    treated = cluster < 4
    dy = rng.normal(size=n) + 0.3 * treated + rng.normal(size=10)[cluster]
    psi = np.where(
        treated, n * (dy - dy[treated].mean()) / treated.sum(), -n * (dy - dy[~treated].mean()) / (~treated).sum()
    )
    return dy, treated, cluster, psi


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cell_bootstrap_equals_regression_wcr(seed):
    # A single difference-in-means cell is the regression of dy on [1, D]: the cell bootstrap must give the
    # same restricted wild cluster bootstrap p-value and interval as the regression WCR (same draws).
    from evaluator.inference.bootstrap import wild_cluster_bootstrap, wild_cluster_bootstrap_cells

    dy, treated, cluster, psi = _two_group_cell(seed)
    X = np.column_stack([np.ones_like(dy), treated.astype(float)])
    reg = wild_cluster_bootstrap(X, dy, cluster, 1, n_boot=999, seed=5, weights="webb")
    est = dy[treated].mean() - dy[~treated].mean()
    cell = wild_cluster_bootstrap_cells(
        psi[:, None],
        treated[:, None],
        ~treated[:, None],
        np.ones(1),
        est,
        cluster,
        n_boot=999,
        seed=5,
        weights="webb",
    )
    assert cell.p_value == pytest.approx(float(reg.p_value[0]), abs=1e-12)
    assert cell.ci_low == pytest.approx(float(reg.ci_low[0]), rel=1e-6)
    assert cell.ci_high == pytest.approx(float(reg.ci_high[0]), rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cell_interval_compiled_and_numpy_agree_exactly(seed, monkeypatch):
    # The cell bootstrap's test inversion runs compiled (numba) where it can and in numpy otherwise:
    # the same draws, the same bracketing and bisection, so the same numbers to the last bit.
    from evaluator.inference import bootstrap
    from evaluator.inference.compiled import available

    if not available():
        pytest.skip("numba is not installed: only the numpy inversion runs here")
    dy, treated, cluster, psi = _two_group_cell(seed)
    est = dy[treated].mean() - dy[~treated].mean()
    args = (psi[:, None], treated[:, None], ~treated[:, None], np.ones(1), est, cluster)
    kinds = {"n_boot": 499, "seed": seed, "weights": ["webb", "rademacher", "mammen", "webb"][seed]}
    compiled = bootstrap.wild_cluster_bootstrap_cells(*args, **kinds)
    monkeypatch.setattr(bootstrap, "jit", lambda fn: None)
    plain = bootstrap.wild_cluster_bootstrap_cells(*args, **kinds)
    assert compiled == plain
    assert np.isfinite(compiled.ci_low) and compiled.ci_low < est < compiled.ci_high
