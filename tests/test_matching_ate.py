"""The ATE by nearest-neighbour matching with replacement (Abadie and Imbens 2006, Stata ``teffects nnmatch``).

``match(..., estimand="ATE", replace=True)`` matches every treated unit to its nearest controls and every
control to its nearest treated units; ``effect(..., inference="abadie_imbens")`` gives the matching estimator,
optionally bias-corrected (Abadie and Imbens 2011), with the robust AI variance. The checks here:

1. an independent brute force (double loops over n = 60 units) of the estimate and the robust SE, for the
   package's Mahalanobis distance (pooled within-group covariance) and its propensity-score distances, M = 1, 2,
   with and without the bias correction, to 1e-10; ties (all units tied at the M-th distance kept);
2. a simulation with heterogeneous effects (ATE != ATT): bias and 95% interval coverage over 200 draws;
3. the bad inputs.

There is no Stata ``teffects`` reference in ``/work/shared/reference/`` (``lalonde.md`` holds MatchIt numbers for
the ATT only), so nothing here is compared with Stata output.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from evaluator.errors import DesignError, DroppedUnitsWarning
from evaluator.estimators.matching import match

TOL = 1e-10


# -- the brute force ------------------------------------------------------------------------------------------
def _pairwise_distances(X: np.ndarray, t: np.ndarray, distance: str, score: np.ndarray | None) -> np.ndarray:
    """n x n distances by a double loop: Mahalanobis on the pooled within-group covariance, or |score_i - score_j|."""
    n = len(t)
    if distance == "mahalanobis":
        X1, X0 = X[t == 1], X[t == 0]
        n1, n0 = len(X1), len(X0)
        S = ((n1 - 1) * np.cov(X1, rowvar=False) + (n0 - 1) * np.cov(X0, rowvar=False)) / (n - 2)
        S_inv = np.linalg.inv(S)
    D = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            if distance == "mahalanobis":
                diff = X[i] - X[j]
                D[i, j] = np.sqrt(diff @ S_inv @ diff)
            else:
                D[i, j] = abs(score[i] - score[j])
    return D


def brute_force(
    X: np.ndarray,
    t: np.ndarray,
    y: np.ndarray,
    *,
    M: int,
    J: int = 2,
    bias: bool,
    distance: str = "mahalanobis",
    score: np.ndarray | None = None,
    estimand: str = "ATE",
    strata: np.ndarray | None = None,
) -> tuple[float, float, np.ndarray]:
    """Matching estimate, Abadie-Imbens robust SE and the match-weight matrix W (W[i, j]: weight of j for i).

    Written from Abadie and Imbens (2006, 2011) without the package: every focal unit i (everyone for the ATE,
    the treated for the ATT) gets its M nearest units of the other group (within its exact stratum), with every
    unit tied at the M-th distance; its missing potential outcome is sum_j W_ij (Y_j + mu(X_i) - mu(X_j)) with
    mu the K-weighted regression of Y on (1, X) among the other group's units used as matches (mu = 0 without
    bias correction). sigma2_i = J/(J+1) (Y_i - mean of its J nearest same-group units)^2 (all units, no
    strata). V = [sum_i (tau_i - tau)^2 + sum_i c_i sigma2_i] / N^2, with c_i = (1 + K_i)^2 - (1 + K'_i)
    for the ATE and K_i^2 - K'_i for the ATT.
    """
    n = len(y)
    D = _pairwise_distances(X, t, distance, score)
    strata = np.zeros(n, dtype=int) if strata is None else strata
    focal = [i for i in range(n) if estimand == "ATE" or t[i] == 1]
    W = np.zeros((n, n))
    for i in focal:
        cand = [j for j in range(n) if t[j] != t[i] and strata[j] == strata[i]]
        d = np.array([D[i, j] for j in cand])
        dM = np.sort(d)[min(M, len(d)) - 1]
        chosen = [j for j, dj in zip(cand, d, strict=True) if dj <= dM]
        for j in chosen:
            W[i, j] = 1.0 / len(chosen)
    K = W.sum(axis=0)
    Kp = (W**2).sum(axis=0)
    Xc = np.column_stack([np.ones(n), X])
    mu = np.zeros((2, n))  # mu[g]: the outcome model of group g, at every unit
    if bias:
        for g in (0, 1):
            used = [i for i in range(n) if t[i] == g and K[i] > 0]
            if not used:
                continue
            A, b = Xc[used], y[used]
            k = K[used]
            beta = np.linalg.solve(A.T @ (A * k[:, None]), A.T @ (b * k))
            mu[g] = Xc @ beta
    tau_i = []
    for i in focal:
        g = 1 - t[i]  # the group of i's matches
        imputed = sum(W[i, j] * (y[j] + mu[g, i] - mu[g, j]) for j in range(n) if W[i, j] > 0)
        tau_i.append(y[i] - imputed if t[i] == 1 else imputed - y[i])
    tau_i = np.array(tau_i)
    N = len(tau_i)
    tau = tau_i.mean()
    sig2 = np.zeros(n)
    for i in range(n):
        same = [j for j in range(n) if t[j] == t[i] and j != i]
        near = sorted(same, key=lambda j: D[i, j])[:J]
        sig2[i] = J / (J + 1) * (y[i] - np.mean(y[near])) ** 2
    is_focal = np.isin(np.arange(n), focal)
    c = np.where(is_focal, (1 + K) ** 2 - (1 + Kp), K**2 - Kp)
    V = (np.sum((tau_i - tau) ** 2) + np.sum(c * sig2)) / N**2
    return float(tau), float(np.sqrt(V)), W


def _weight_matrix(m) -> np.ndarray:
    """W[i, j] from ``m.pairs`` (positions in ``m.data``, which is in index order here)."""
    n = len(m.data)
    W = np.zeros((n, n))
    p = m.pairs
    if m.params["estimand"] == "ATE":
        ft = (p["focal"] == "treated").to_numpy()
        f = np.where(ft, p["treated"], p["control"])
        o = np.where(ft, p["control"], p["treated"])
    else:
        f, o = p["treated"].to_numpy(), p["control"].to_numpy()
    np.add.at(W, (f, o), p["weight"].to_numpy())
    return W


@pytest.fixture(scope="module")
def small() -> pd.DataFrame:
    """n = 60, two continuous covariates, selection on x1, an effect that grows with x1."""
    rng = np.random.default_rng(20240613)
    n = 60
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-(0.7 * x1 - 0.4 * x2)))).astype(int)
    y = 1 + x1 + 0.5 * x2**2 + t * (1 + x1) + rng.normal(scale=0.5 + 0.3 * np.abs(x2), size=n)
    return pd.DataFrame({"t": t, "x1": x1, "x2": x2, "y": y, "g": np.where(x2 > 0, "hi", "lo")})


def _logit_score(df: pd.DataFrame, distance: str) -> np.ndarray:
    """The propensity score (statsmodels, not the package's own fit) on the scale matched on."""
    X = sm.add_constant(df[["x1", "x2"]].to_numpy())
    ps = sm.Logit(df["t"].to_numpy(), X).fit(disp=0, method="newton", tol=1e-12).predict(X)
    return ps if distance == "ps" else np.log(ps / (1 - ps))


CASES = [(distance, M, bias) for distance in ("mahalanobis", "logit", "ps") for M in (1, 2) for bias in (False, True)]


@pytest.mark.parametrize(("distance", "M", "bias"), CASES)
def test_ate_equals_brute_force(small, distance, M, bias) -> None:
    d = small
    X, t, y = d[["x1", "x2"]].to_numpy(), d["t"].to_numpy(), d["y"].to_numpy()
    score = None if distance == "mahalanobis" else _logit_score(d, distance)
    tau, se, W = brute_force(X, t, y, M=M, bias=bias, distance=distance, score=score)
    m = match(d, treat="t", covariates=["x1", "x2"], distance=distance, ratio=M, replace=True, estimand="ATE")
    np.testing.assert_allclose(_weight_matrix(m), W, atol=1e-15)
    r = m.effect("y", inference="abadie_imbens", adjust=None if bias else [])
    assert r.table["term"].tolist() == ["ate"]
    assert r.estimate == pytest.approx(tau, abs=TOL)
    assert r.se == pytest.approx(se, abs=TOL)
    # the ATE's default inference is abadie_imbens, bias-corrected on the matching covariates
    if bias:
        default = m.effect("y")
        assert (default.estimate, default.se) == (r.estimate, r.se)
        assert r.info["bias_correction"].keys() == {"mu0", "mu1"}
    else:
        assert r.info["bias_correction"] is None and "not bias-corrected" in r.inference


@pytest.mark.parametrize("M", [1, 2])
@pytest.mark.parametrize("bias", [False, True])
def test_att_equals_brute_force(small, M, bias) -> None:
    """The ATT path (shared code) against the same brute force; adjust=[] turns its bias correction off too."""
    d = small
    X, t, y = d[["x1", "x2"]].to_numpy(), d["t"].to_numpy(), d["y"].to_numpy()
    tau, se, _ = brute_force(X, t, y, M=M, bias=bias, estimand="ATT")
    m = match(d, treat="t", covariates=["x1", "x2"], distance="mahalanobis", ratio=M, replace=True)
    r = m.effect("y", inference="abadie_imbens", adjust=None if bias else [])
    assert r.estimate == pytest.approx(tau, abs=TOL)
    assert r.se == pytest.approx(se, abs=TOL)


def test_ate_with_exact_strata_equals_brute_force(small) -> None:
    d = small
    X, t, y = d[["x1", "x2"]].to_numpy(), d["t"].to_numpy(), d["y"].to_numpy()
    strata = (d["g"] == "hi").to_numpy().astype(int)
    tau, se, W = brute_force(X, t, y, M=2, bias=True, strata=strata)
    m = match(
        d, treat="t", covariates=["x1", "x2"], distance="mahalanobis", ratio=2, replace=True, estimand="ATE", exact="g"
    )
    np.testing.assert_allclose(_weight_matrix(m), W, atol=1e-15)
    r = m.effect("y", inference="abadie_imbens")
    assert r.estimate == pytest.approx(tau, abs=TOL)
    assert r.se == pytest.approx(se, abs=TOL)


@pytest.mark.parametrize("distance", ["mahalanobis", "logit"])
@pytest.mark.parametrize("M", [1, 2])
@pytest.mark.parametrize("bias", [False, True])
def test_ate_keeps_every_tied_match(distance, M, bias) -> None:
    """Repeated covariate values: all units tied at the M-th distance are used, with equal weight (as teffects).

    The values lie on irregular grids (no two differences alike), so ties come from units with the same
    covariates, whose distances are equal in any arithmetic; mathematically equal distances that differ in
    the last bit (e.g. offsets +1 and -1 on an integer grid) are not ties for the package, as for the ATT.
    Only the estimate is compared: the conditional-variance neighbours of a unit with ties in its own group
    are chosen by the k-d tree, which the brute force cannot reproduce.
    """
    rng = np.random.default_rng(7)
    n = 60
    x1 = rng.choice([0.0, 0.37, 1.21, 2.9], n)
    x2 = rng.choice([0.0, 0.83, 2.2], n)
    t = (rng.random(n) < 1 / (1 + np.exp(-(0.6 * x1 - 0.8)))).astype(int)
    y = x1 + x2 + t * (1 + 0.5 * x1) + rng.normal(size=n)
    d = pd.DataFrame({"t": t, "x1": x1, "x2": x2, "y": y})
    score = None if distance == "mahalanobis" else _logit_score(d, distance)
    tau, _, W = brute_force(d[["x1", "x2"]].to_numpy(), t, y, M=M, bias=bias, distance=distance, score=score)
    assert (np.count_nonzero(W, axis=1) > M).any()  # there are ties to keep
    m = match(d, treat="t", covariates=["x1", "x2"], distance=distance, ratio=M, replace=True, estimand="ATE")
    np.testing.assert_allclose(_weight_matrix(m), W, atol=1e-15)
    r = m.effect("y", inference="abadie_imbens", adjust=None if bias else [])
    assert r.estimate == pytest.approx(tau, abs=TOL)


def test_ate_sample_structure_and_weights(small) -> None:
    d = small
    m = match(d, treat="t", covariates=["x1", "x2"], distance="mahalanobis", ratio=2, replace=True, estimand="ATE")
    n1, n0 = int(d["t"].sum()), int((1 - d["t"]).sum())
    c = m.counts()
    assert (c["treated_matched"], c["controls_matched"], c["matched_sets"]) == (n1, n0, n1 + n0)
    assert c["mean_controls_per_set"] == c["mean_treated_per_set"] == 2.0
    p = m.pairs
    assert set(p.columns) == {"set", "treated", "control", "distance", "weight", "focal"}
    assert (d["t"].to_numpy()[p["treated"]] == 1).all() and (d["t"].to_numpy()[p["control"]] == 0).all()
    assert (p.loc[p["set"] <= n1, "focal"] == "treated").all() and (p.loc[p["set"] > n1, "focal"] == "control").all()
    mm = m.matched
    assert mm.groupby("match_set")["match_focal"].sum().eq(1).all()
    focal_rows = mm[mm["match_focal"]]
    assert (focal_rows["match_role"] == np.where(focal_rows["t"] == 1, "treated", "control")).all()
    # unit weights 1 + K_i: each group sums to N, and the weighted difference in means is the simple estimate
    w, t, y = m.weights.to_numpy(), d["t"].to_numpy() == 1, d["y"].to_numpy()
    assert w[t].sum() == pytest.approx(n1 + n0) and w[~t].sum() == pytest.approx(n1 + n0)
    simple = m.effect("y", inference="abadie_imbens", adjust=[])
    assert simple.estimate == pytest.approx((w[t] @ y[t] - w[~t] @ y[~t]) / (n1 + n0), abs=TOL)
    # pairs (WLS in the long form) without adjustment gives the same estimate, with a note that its SE is not valid
    pairs = m.effect("y", inference="pairs")
    assert pairs.estimate == pytest.approx(simple.estimate, abs=TOL)
    assert any("not valid for the ATE" in note for note in pairs.notes)
    # balance: SMD on the pooled SD, after matching with the 1 + K weights
    b = m.balance().set_index(["term", "sample"])
    x1 = d["x1"].to_numpy()
    pooled = np.sqrt((x1[t].var(ddof=1) + x1[~t].var(ddof=1)) / 2)
    assert b.loc[("x1", "before"), "smd"] == pytest.approx((x1[t].mean() - x1[~t].mean()) / pooled)
    after = (np.average(x1[t], weights=w[t]) - np.average(x1[~t], weights=w[~t])) / pooled
    assert b.loc[("x1", "after"), "smd"] == pytest.approx(after)
    assert "Controls matched" in m.summary() and "ATE" in m.summary()


def test_ate_does_not_depend_on_row_order(small) -> None:
    kw = dict(treat="t", covariates=["x1", "x2"], distance="logit", ratio=2, replace=True, estimand="ATE")
    a = match(small, **kw).effect("y")
    b = match(small.sample(frac=1.0, random_state=3), **kw).effect("y")
    assert a.estimate == pytest.approx(b.estimate, abs=1e-12) and a.se == pytest.approx(b.se, abs=1e-12)


# -- simulation: heterogeneous effects, ATE != ATT ----------------------------------------------------------
TRUE_ATE = 1.0
SLOPE = 1.5  # tau(x) = 1 + SLOPE * x1, E[x1] = 0


def _sim_draw(seed: int, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    t = (rng.random(n) < 1 / (1 + np.exp(-(0.8 * x1 - 0.4 * x2)))).astype(int)
    y0 = x1 + 0.5 * x2 + rng.normal(scale=1 + 0.5 * np.abs(x2), size=n)  # heteroskedastic
    return pd.DataFrame({"t": t, "x1": x1, "x2": x2, "y": y0 + t * (TRUE_ATE + SLOPE * x1)})


def _true_att() -> float:
    """1 + SLOPE * E[x1 | T = 1], by a large Monte Carlo integral of the selection model."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.normal(size=(2, 2_000_000))
    p = 1 / (1 + np.exp(-(0.8 * x1 - 0.4 * x2)))
    return TRUE_ATE + SLOPE * float(np.sum(p * x1) / np.sum(p))


def test_simulation_bias_and_coverage() -> None:
    start = time.perf_counter()
    R = 200
    est, se, simple = np.empty(R), np.empty(R), np.empty(R)
    for r in range(R):
        d = _sim_draw(10_000 + r)
        m = match(d, treat="t", covariates=["x1", "x2"], distance="mahalanobis", ratio=2, replace=True, estimand="ATE")
        res = m.effect("y")  # abadie_imbens, bias-corrected on x1, x2
        est[r], se[r] = res.estimate, res.se
        simple[r] = m.effect("y", adjust=[]).estimate
    mc_se = est.std(ddof=1) / np.sqrt(R)
    bias = est.mean() - TRUE_ATE
    coverage = float(np.mean(np.abs(est - TRUE_ATE) <= 1.959964 * se))
    att = _true_att()
    print(
        f"\nATE simulation ({R} draws, n=400, M=2, Mahalanobis, bias-corrected): mean {est.mean():.4f} "
        f"(true ATE {TRUE_ATE}, true ATT {att:.4f}), bias {bias:+.4f}, MC SE {mc_se:.4f}, SD {est.std(ddof=1):.4f}, "
        f"mean SE {se.mean():.4f}, 95% coverage {coverage:.3f}; not bias-corrected: bias "
        f"{simple.mean() - TRUE_ATE:+.4f}; {time.perf_counter() - start:.1f} s"
    )
    assert abs(att - TRUE_ATE) > 0.3  # the design has ATE != ATT
    assert abs(bias) <= 2 * mc_se, (bias, mc_se)
    assert abs(est.mean() - att) > 10 * mc_se  # the estimate targets the ATE, not the ATT
    assert coverage >= 0.90, coverage


# -- bad input ---------------------------------------------------------------------------------------------------
def test_ate_without_replacement_is_refused(small) -> None:
    with pytest.raises(ValueError, match=r"estimand='ATE' is not allowed with replace=False: .*reusable.*replace=True"):
        match(small, treat="t", covariates=["x1", "x2"], estimand="ATE")


def test_unknown_estimand(small) -> None:
    with pytest.raises(ValueError, match=r"estimand='ATU' is not allowed; use one of 'ATT', 'ATC', 'ATE'"):
        match(small, treat="t", covariates=["x1"], estimand="ATU", replace=True)


def test_ate_stratum_without_treated(small) -> None:
    d = small.copy()
    d.loc[(d["g"] == "lo") & (d["t"] == 1), "g"] = "hi"  # stratum "lo" keeps only controls
    d.loc[d.index[:1], "g"] = "solo"
    d.loc[d.index[:1], "t"] = 0
    with pytest.raises(
        DesignError, match=r"exact-matching strata have controls but no treated units: \(g='(lo|solo)'\)"
    ):
        match(d, treat="t", covariates=["x1"], replace=True, estimand="ATE", exact="g")


def test_ate_needs_two_controls(small) -> None:
    d = small.copy()
    d["t"] = 1
    d.loc[d.index[0], "t"] = 0
    with pytest.raises(DesignError, match=r"only 1 control unit\(s\) .* the ATE matches every control too"):
        match(d, treat="t", covariates=["x1"], replace=True, estimand="ATE")


def test_ate_caliper_drops_both_groups_with_a_warning(small) -> None:
    with pytest.warns(
        DroppedUnitsWarning, match=r"left \d+ of \d+ treated units and \d+ of \d+ control units unmatched"
    ):
        m = match(small, treat="t", covariates=["x1", "x2"], distance="ps", caliper=0.05, replace=True, estimand="ATE")
    c = m.counts()
    assert c["controls_dropped_caliper"] + c["treated_dropped_caliper"] > 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = m.effect("y")
    assert r.info["n_treated"] + r.info["n_control"] == c["matched_sets"]
    assert any("matched units only" in note for note in r.notes)
