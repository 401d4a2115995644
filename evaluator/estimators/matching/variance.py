"""Effects and their standard errors in a matched sample: pairs (CR1), Abadie-Imbens, bootstrap."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from scipy.spatial import cKDTree

from evaluator.errors import DataError, DesignError
from evaluator.estimators.matching.frame import _design, _design_array
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


def _set_rows(m: MatchResult) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``m.pairs``: the set's focal unit, the match, weight, set, and whether the focal unit is treated.

    For the ATT and the ATC the ``treated`` column of ``pairs`` holds the focal unit; for the ATE ``treated``
    and ``control`` are the actual treated and control units and ``focal`` names the one the set is formed around.
    """
    p = m.pairs
    w = p["weight"].to_numpy()
    sets = p["set"].to_numpy()
    t_col, c_col = p["treated"].to_numpy(), p["control"].to_numpy()
    if m.params["estimand"] == "ATE":
        ft = (p["focal"] == "treated").to_numpy()
        return np.where(ft, t_col, c_col), np.where(ft, c_col, t_col), w, sets, ft
    return t_col, c_col, w, sets, np.full(len(p), m.params["estimand"] == "ATT")


def _long_arrays(m: MatchResult) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Positions, focal indicator, weight and set of the long-form matched sample."""
    f_pos, o_pos, w_row, set_row, _ = _set_rows(m)
    first = np.r_[True, set_row[1:] != set_row[:-1]]  # rows are grouped by set
    pos = np.r_[f_pos[first], o_pos]
    focal = np.r_[np.ones(int(first.sum())), np.zeros(len(o_pos))]
    w = np.r_[np.ones(int(first.sum())), w_row]
    sets = np.r_[set_row[first], set_row]
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
    m: MatchResult, outcome: str, bias_cov: Sequence[str], J: int
) -> tuple[float, float, int, dict[str, Any]]:
    """The matching estimator, bias-corrected on ``bias_cov`` (none: not corrected), and its AI (2006) variance.

    Every matched set s has a focal unit f (treated for the ATT, control for the ATC, either for the ATE) and
    matches j with weights w_sj (1 / matches in the set). The missing potential outcome of f is
    ``sum_j w_sj (Y_j + mu_g(X_f) - mu_g(X_j))``, where g is the matches' group and mu_g a linear regression
    of the outcome on ``bias_cov`` among the units of group g used as matches, weighted by K_j = sum_s w_sj
    (Abadie and Imbens 2011); without ``bias_cov`` mu_g = 0. tau_s is treated minus control outcome, the
    estimate their mean over the N sets, and the variance (Abadie and Imbens 2006, Theorem 7, with weights
    for ties) ``[sum_s (tau_s - tau)^2 + sum_i (K_i^2 - K'_i + 2 K_i [i is focal]) sigma2_i] / N^2`` with
    ``K'_i = sum_s w_si^2``. For the ATT no focal unit is a match, so the last term is the AI (2006) PATT one.
    """
    d = m.data
    n = len(d)
    y = d[outcome].to_numpy(dtype=float)
    treated = d[m.treat].to_numpy() == 1
    f_pos, o_pos, w, sets, ft = _set_rows(m)
    K = np.bincount(o_pos, weights=w, minlength=n)
    # bias correction: mu_g(x) = a + x'b fitted on the units of group g used as matches, weighted by K
    mu_f = np.zeros(len(o_pos))  # mu of the match's group at the focal unit's covariates
    mu_o = np.zeros(len(o_pos))  # ... and at the match's own
    fits: dict[str, dict[str, float]] = {}
    if bias_cov:
        names, A = _design_array(d, bias_cov)
        for g in (False, True):
            rows = treated[o_pos] == g
            used = np.flatnonzero((K > 0) & (treated == g))
            if not len(used):
                continue
            Xb = np.column_stack([np.ones(len(used)), A[used]])
            sw = np.sqrt(K[used])
            coef = np.linalg.lstsq(Xb * sw[:, None], y[used] * sw, rcond=None)[0]
            mu = coef[0] + A @ coef[1:]
            mu_f[rows], mu_o[rows] = mu[f_pos[rows]], mu[o_pos[rows]]
            fits["mu1" if g else "mu0"] = dict(zip(["const", *names], coef.tolist(), strict=True))
    # per set: the imputed missing outcome, tau_s = Y(1) - Y(0)
    contrib = w * (y[o_pos] + mu_f - mu_o)
    uniq_sets, inv = np.unique(sets, return_inverse=True)
    imputed = np.bincount(inv, weights=contrib)
    f_of_set = np.zeros(len(uniq_sets), dtype=np.int64)
    f_of_set[inv] = f_pos
    ft_of_set = np.zeros(len(uniq_sets), dtype=bool)
    ft_of_set[inv] = ft
    tau_i = np.where(ft_of_set, y[f_of_set] - imputed, imputed - y[f_of_set])
    n_sets = len(tau_i)
    tau = float(tau_i.mean())
    is_focal = np.zeros(n)
    is_focal[f_of_set] = 1.0
    coefv = K**2 - np.bincount(o_pos, weights=w**2, minlength=n) + 2 * K * is_focal
    need = np.flatnonzero(coefv > 1e-12)
    var_units = 0.0
    if len(need):
        Z = cast(np.ndarray, m._metric)
        sig2 = np.zeros(len(need))
        for g in (False, True):
            sel = treated[need] == g
            if sel.any():
                sig2[sel] = _within_group_sigma2(Z, np.flatnonzero(treated == g), y, need[sel], J)
        var_units = float(np.sum(coefv[need] * sig2))
    V = (np.sum((tau_i - tau) ** 2) + var_units) / n_sets**2
    if not bias_cov:
        bc: dict[str, Any] | None = None
    elif m.params["estimand"] == "ATE":
        bc = fits
    else:  # one outcome model: the matches' group (controls for the ATT, treated for the ATC)
        bc = next(iter(fits.values()), None)
    return tau, math.sqrt(V), n_sets + len(o_pos), {"bias_correction": bc}


def _within_group_sigma2(Z: np.ndarray, members: np.ndarray, y: np.ndarray, units: np.ndarray, J: int) -> np.ndarray:
    """sigma^2(X_i) for ``units`` (a subset of ``members``, one treatment group): J/(J+1) (Y_i - mean Y of
    their J nearest other members)^2, on the metric ``Z`` of the match (Abadie and Imbens 2006)."""
    if len(members) < J + 1:
        return np.zeros(len(units))
    tree = cKDTree(Z[members])
    _, idx = tree.query(Z[units], k=J + 1)
    idx = members[np.asarray(idx).reshape(len(units), J + 1)]
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
