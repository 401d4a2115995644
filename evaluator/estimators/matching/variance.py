"""Effects and their standard errors in a matched sample: pairs (CR1), Abadie-Imbens, bootstrap."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from scipy.spatial import cKDTree

from evaluator.errors import DataError, DesignError
from evaluator.estimators.matching.frame import _design
from evaluator.inference.sandwich import cr1_vcov

if TYPE_CHECKING:
    from evaluator.estimators.matching.result import MatchResult


def _wls_cluster(y: np.ndarray, X: np.ndarray, w: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WLS coefficients and CR1 cluster-robust SEs (G/(G-1) * (N-1)/(N-K), as sandwich::vcovCL)."""
    sw = np.sqrt(w)
    Xw, yw = X * sw[:, None], y * sw
    XtX_inv = np.linalg.pinv(Xw.T @ Xw)
    beta = XtX_inv @ (Xw.T @ yw)
    u = (y - X @ beta) * w
    _, g = np.unique(groups, return_inverse=True)
    G = int(g.max()) + 1
    n, k = X.shape
    if G < 2 or n <= k:  # one matched set, or no residual degrees of freedom: the se is unknown
        return beta, np.full(k, np.nan)
    # the row scores X_i w_i e_i are those of the weighted regression, with the unweighted X
    V = cr1_vcov(X, u, g.ravel(), bread=XtX_inv, n_clusters=G, factor_on_bread=True)
    with np.errstate(invalid="ignore"):  # a negative diagonal (rounding in a tiny sample) is an unknown se: NaN
        return beta, np.sqrt(np.diag(V))


def _long_arrays(m: MatchResult) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Positions, focal indicator, weight and set of the long-form matched sample."""
    p = m.pairs
    first = p.drop_duplicates("set")
    pos = np.r_[first["treated"].to_numpy(), p["control"].to_numpy()]
    focal = np.r_[np.ones(len(first)), np.zeros(len(p))]
    w = np.r_[np.ones(len(first)), p["weight"].to_numpy()]
    sets = np.r_[first["set"].to_numpy(), p["set"].to_numpy()]
    return pos, focal, w, sets


def _pairs_estimate(
    m: MatchResult, outcome: str, adjust: Sequence[str], with_se: bool = True
) -> tuple[float, float, int]:
    pos, focal, w, sets = _long_arrays(m)
    d = m.data
    y = d[outcome].to_numpy(dtype=float)[pos]
    # the actual treatment indicator (for the ATC the focal units are the controls)
    cols = [np.ones(len(pos)), d[m.treat].to_numpy(dtype=float)[pos]]
    if adjust:
        A = _design(d, adjust).to_numpy()[pos]
        cols.extend(A.T)
    X = np.column_stack(cols)
    if not with_se:
        sw = np.sqrt(w)
        beta = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)[0]
        return float(beta[1]), np.nan, len(pos)
    beta, se = _wls_cluster(y, X, w, sets)
    return float(beta[1]), float(se[1]), len(pos)


def _abadie_imbens(
    m: MatchResult, outcome: str, adjust: Sequence[str], J: int
) -> tuple[float, float, int, dict[str, Any]]:
    d = m.data
    y = d[outcome].to_numpy(dtype=float)
    p = m.pairs
    t_pos = p["treated"].to_numpy()
    c_pos = p["control"].to_numpy()
    w = p["weight"].to_numpy()
    sets = p["set"].to_numpy()
    cov = list(adjust) if adjust else list(m.covariates)
    A = _design(d, cov).to_numpy()
    # bias correction: mu0(x) = a + x'b fitted on the matched controls weighted by K_j
    K = np.bincount(c_pos, weights=w, minlength=len(d))
    used = np.flatnonzero(K > 0)
    Xb = np.column_stack([np.ones(len(used)), A[used]])
    sw = np.sqrt(K[used])
    coef = np.linalg.lstsq(Xb * sw[:, None], y[used] * sw, rcond=None)[0]
    mu0 = coef[0] + A @ coef[1:]
    # tau_i per set: Y_i - sum_j w_ij (Y_j + mu0(X_i) - mu0(X_j))
    contrib = w * (y[c_pos] + mu0[t_pos] - mu0[c_pos])
    uniq_sets, inv = np.unique(sets, return_inverse=True)
    y0hat = np.bincount(inv, weights=contrib)
    t_of_set = np.zeros(len(uniq_sets), dtype=np.int64)
    t_of_set[inv] = t_pos
    tau_i = y[t_of_set] - y0hat
    if m.params["estimand"] == "ATC":  # focal units are controls: Y(1) - Y(0) = matched - own
        tau_i = -tau_i
    n1 = len(tau_i)
    tau = float(tau_i.mean())
    sw2 = np.bincount(c_pos, weights=w**2, minlength=len(d))
    coefv = K**2 - sw2
    need = np.flatnonzero(coefv > 1e-12)
    var_ctrl = 0.0
    if len(need):
        sig2 = _within_group_sigma2(m, y, need, J)
        var_ctrl = float(np.sum(coefv[need] * sig2))
    V = (np.sum((tau_i - tau) ** 2) + var_ctrl) / n1**2
    pos, _, _, _ = _long_arrays(m)
    return (
        tau,
        math.sqrt(V),
        len(pos),
        {"bias_correction": dict(zip(["const", *_design(d, cov).columns], coef, strict=True))},
    )


def _within_group_sigma2(m: MatchResult, y: np.ndarray, units: np.ndarray, J: int) -> np.ndarray:
    """sigma^2(X_j) for control units ``units``: J/(J+1) (Y_j - mean Y of their J nearest other controls)."""
    focal = m._focal_mask()
    Z = cast(np.ndarray, m._metric)
    ctrl = np.flatnonzero(~focal)
    if len(ctrl) < J + 1:
        return np.zeros(len(units))
    Zc = Z[ctrl]
    tree = cKDTree(Zc)
    _, idx = tree.query(Z[units], k=J + 1)
    idx = ctrl[np.asarray(idx).reshape(len(units), J + 1)]
    # drop the unit itself (or, for duplicates of it, the first column)
    is_self = idx == units[:, None]
    has_self = is_self.any(axis=1)
    drop_col = np.where(has_self, np.argmax(is_self, axis=1), J)
    keep = np.ones_like(idx, dtype=bool)
    keep[np.arange(len(units)), drop_col] = False
    nb = idx[keep].reshape(len(units), J)
    return J / (J + 1) * (y[units] - y[nb].mean(axis=1)) ** 2


def _bootstrap(
    m: MatchResult, outcome: str, adjust: Sequence[str], n_boot: int, seed: int | None
) -> tuple[np.ndarray, int]:
    if int(n_boot) < 2:
        raise ValueError(f"n_boot={n_boot!r} must be at least 2")
    from evaluator.estimators.matching.nearest import match  # here: nearest imports this module's readers

    rng = np.random.default_rng(seed)
    d = m.data.drop(columns=[c for c in ("pscore", "match_weight", "match_distance_score") if c in m.data.columns])
    t = d[m.treat].to_numpy()
    ti, ci = np.flatnonzero(t == 1), np.flatnonzero(t == 0)
    kw = {k: v for k, v in m.params.items() if k not in ("method", "caliper_width", "unit")}
    out = []
    failed = 0
    for _ in range(int(n_boot)):
        idx = np.r_[rng.choice(ti, len(ti)), rng.choice(ci, len(ci))]
        bd = d.iloc[idx].reset_index(drop=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                mb = match(bd, treat=m.treat, covariates=list(m.covariates), **kw)
                est, _, _ = _pairs_estimate(mb, outcome, adjust, with_se=False)
        except (DesignError, DataError, np.linalg.LinAlgError):
            failed += 1
            continue
        out.append(est)
    return np.asarray(out), failed
