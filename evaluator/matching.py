"""Matched comparison: nearest-neighbour matching, balance, effects and weighting.

A treated group (a few hundred citizens in a social impact bond) is compared with
controls drawn from a large register pool that look like them on observed
covariates. :func:`match` finds the controls; the :class:`MatchResult` it returns
shows balance (:meth:`MatchResult.balance`, :meth:`MatchResult.plot_balance`),
overlap (:meth:`MatchResult.plot_overlap`) and estimates the effect on the treated
(:meth:`MatchResult.effect`). :func:`weighting` estimates the same effect by
inverse-probability weighting, optionally doubly robust.

Conventions (MatchIt's where there is one, so results can be checked against it):

- **Propensity score**: maximum-likelihood logistic regression of treatment on the
  covariates (our own Newton-Raphson, with the same estimates as statsmodels
  ``Logit``); string or categorical covariates are expanded to indicators, first
  level dropped. ``ps_formula`` passes a statsmodels formula instead.
- **Distance**: ``"ps"`` is the score itself (MatchIt ``distance = "glm"``),
  ``"logit"`` its logit (recommended by Rosenbaum and Rubin 1985; the default
  here), ``"mahalanobis"`` the Mahalanobis distance on the covariates, whitened
  by the Cholesky factor of the pooled within-group covariance.
- **Processing order** (matching without replacement is greedy, so the order
  matters): ``"largest"`` processes treated units by descending propensity score
  (MatchIt's default), ``"smallest"`` ascending, ``"data"`` by ascending unit key,
  ``"random"`` a permutation of the unit keys drawn from ``seed``. With
  ``ratio > 1`` every treated unit gets its first match before any gets its second.
- **Unit key and ties**: every unit has a key, the ``unit`` column if given and
  otherwise the DataFrame index. The data are put in key order before anything is
  computed, so the match does not depend on the row order of the input. A tie
  (two controls at exactly the same distance) goes to the control with the smaller
  key; with the default index that is the first control in data order, MatchIt's
  rule. In matching *with* replacement every control tied at the k-th distance is
  kept, with equal weight (Abadie and Imbens 2006).
- **Caliper**: in standard deviations of the distance over all units kept
  (``caliper_scale="sd"``, MatchIt's default) or in the distance's own units
  (``"raw"``). A treated unit with no control inside the caliper is dropped, with a
  :class:`~evaluator.errors.DroppedUnitsWarning` giving the count.
- **Balance**: standardised mean differences use the treated group's SD before
  matching for the ATT (``sqrt(p(1-p))`` for binary covariates), the control
  group's for the ATC; variance ratios are reported for continuous covariates only.

The algorithms never build a treated-by-pool matrix: 1-D distances sort the pool
once and use ``searchsorted`` with a union-find "next free control" structure
(matching without replacement) or a vectorised window search (with replacement);
Mahalanobis matching uses a k-d tree (:class:`scipy.spatial.cKDTree`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np
import pandas as pd
from scipy import linalg
from scipy.spatial import cKDTree

from evaluator.errors import (
    DataError,
    DesignError,
    DroppedUnitsWarning,
    Problem,
    TrimmingWarning,
    format_examples,
)
from evaluator.results import Result, tidy_table

__all__ = ["match", "MatchResult", "matched_did", "weighting"]

Distance = Literal["logit", "ps", "mahalanobis"]
Order = Literal["largest", "smallest", "data", "random"]
Inference = Literal["pairs", "abadie_imbens", "bootstrap"]

_DISTANCES = ("logit", "ps", "mahalanobis")
_ORDERS = ("largest", "smallest", "data", "random")
_INFERENCES = ("pairs", "abadie_imbens", "bootstrap")


# -- argument checks ----------------------------------------------------------------
def _choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not allowed; use one of {', '.join(repr(a) for a in allowed)}")


def _as_list(x: str | Sequence[str] | None) -> list[str]:
    if x is None:
        return []
    if isinstance(x, str):
        return [x]
    return list(x)


def _is_categorical(s: pd.Series) -> bool:
    return not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s))


def _check_columns(data: pd.DataFrame, treat: str, columns: Sequence[str], outcome: str | None = None) -> None:
    """Every column exists, treatment is 0/1, no missing values (all problems at once)."""
    problems: list[Problem] = []
    wanted = [treat, *columns] + ([outcome] if outcome else [])
    missing_cols = [c for c in dict.fromkeys(wanted) if c not in data.columns]
    for c in missing_cols:
        problems.append(
            Problem("column not found", column=c, hint=f"the data have {format_examples(data.columns, limit=12)}")
        )
    if missing_cols:
        raise DataError(problems)
    for c in dict.fromkeys(wanted):
        na = data[c].isna().to_numpy()
        if na.any():
            rows = np.flatnonzero(na) + 1
            problems.append(
                Problem(
                    f"{int(na.sum())} missing value(s) out of {len(data)}",
                    column=c,
                    where=format_examples(rows, label="data rows"),
                    hint="impute or drop these rows explicitly before matching; rows are never dropped silently",
                )
            )
    tv = data[treat]
    if not problems:
        ok = pd.api.types.is_numeric_dtype(tv) or pd.api.types.is_bool_dtype(tv)
        vals = set(pd.unique(tv.astype(float))) if ok else set()
        if not ok or not vals <= {0.0, 1.0}:
            problems.append(
                Problem(
                    f"treatment must be coded 0/1, found values {format_examples(sorted(map(str, pd.unique(tv))))}",
                    column=treat,
                    hint="recode the treatment indicator to 1 = treated, 0 = comparison",
                )
            )
    if outcome and not problems and not pd.api.types.is_numeric_dtype(data[outcome]):
        problems.append(Problem("outcome is not numeric", column=outcome, hint="recode the outcome as a number"))
    if problems:
        raise DataError(problems)


def _canonical(data: pd.DataFrame, unit: str | None) -> tuple[pd.DataFrame, np.ndarray]:
    """The data in unit-key order, and the permutation used (positions in ``data``)."""
    key = data[unit] if unit is not None else data.index.to_series()
    if key.duplicated().any():
        dup = key[key.duplicated()].unique()
        where = "column " + repr(unit) if unit else "the DataFrame index"
        raise DataError(
            [
                Problem(
                    f"unit keys in {where} are not unique",
                    column=unit,
                    where=format_examples(dup, label="keys"),
                    hint="pass unit= naming a unique id column, or call data.reset_index(drop=True) first",
                )
            ]
        )
    try:
        perm = np.argsort(key.to_numpy(), kind="stable")
    except TypeError:  # mixed key types: order by their text
        perm = np.argsort(key.astype(str).to_numpy(), kind="stable")
    return data.iloc[perm], perm


def _design_array(
    frame: pd.DataFrame, covariates: Sequence[str], *, drop_first: bool = True, const: bool = False
) -> tuple[list[str], np.ndarray]:
    """Names and values of the numeric design columns, as an (n, k) float64 array in column-major order.

    Column-major because every consumer reads whole columns (range checks, the logit's row blocks are
    column slices BLAS handles directly), and filling rows of a (k, n) buffer is several times cheaper
    than scattering into a row-major array. ``const`` puts an intercept column named ``"const"`` first.
    """
    names: list[str] = ["const"] if const else []
    sources: list[tuple[pd.Series | np.ndarray, int | None]] = []  # (values, None) or (level codes, level)
    for c in covariates:
        s = frame[c]
        if _is_categorical(s):
            codes, levels = pd.factorize(s.astype(str), sort=True)
            start = 1 if drop_first else 0
            for j in range(start, len(levels)):
                names.append(f"{c}[{levels[j]}]")
                sources.append((codes, j))
        else:
            names.append(c)
            sources.append((s, None))
    buf = np.empty((len(names), len(frame)))
    if const:
        buf[0] = 1.0
    for row, (values, level) in zip(buf[int(const) :], sources, strict=True):
        if level is None:
            row[:] = cast(pd.Series, values).to_numpy(dtype=float)
        else:
            np.equal(values, level, out=row, casting="unsafe")
    return names, buf.T


def _design(frame: pd.DataFrame, covariates: Sequence[str], *, drop_first: bool = True) -> pd.DataFrame:
    """Numeric design columns: categorical covariates become indicators ``col[level]`` (levels sorted)."""
    names, arr = _design_array(frame, covariates, drop_first=drop_first)
    return pd.DataFrame(arr, columns=names, index=frame.index)


# -- propensity score -----------------------------------------------------------------
def _separation_culprits(A: np.ndarray, names: Sequence[str], t: np.ndarray) -> list[str]:
    """Design columns (of ``A``, named ``names``) that alone separate treated from controls.

    Complete or quasi-complete separation: a 0/1 column whose level occurs in one group only,
    or another column whose treated and control ranges do not overlap. Works column by column
    on the few treated rows plus whole-column reductions, so the pool is never copied.
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


def _full_formula(ps_formula: str, treat: str) -> str:
    """``"y ~ x"`` as given; ``"~ x"`` or ``"x"`` get the treatment column as left-hand side."""
    if "~" not in ps_formula:
        return f"{treat} ~ {ps_formula}"
    lhs, rhs = ps_formula.split("~", 1)
    return ps_formula if lhs.strip() else f"{treat} ~ {rhs}"


# Rows per block in the logit's passes over the data: a block of 11 columns (2.8 MB) and its
# temporaries stay in cache, which makes a pass about 3x faster than whole-array temporaries.
_LOGIT_BLOCK = 1 << 15


def _logit_pass(X: np.ndarray, y: np.ndarray, beta: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Log-likelihood, score ``X'(y - p)`` and information ``X' diag(p(1-p)) X`` of a logit at ``beta``."""
    from scipy.special import expit

    k = X.shape[1]
    ll = 0.0
    g = np.zeros(k)
    H = np.zeros((k, k))
    for a in range(0, len(y), _LOGIT_BLOCK):
        Xb, yb = X[a : a + _LOGIT_BLOCK], y[a : a + _LOGIT_BLOCK]
        eta = Xb @ beta
        p = expit(eta)
        # log(1 - p) = log(p) - eta, taken from whichever of p and 1 - p is not rounded to 1 (cheaper than logaddexp)
        ll += float(yb @ eta + (np.log(np.where(eta > 0, p, 1.0 - p)) - np.maximum(eta, 0.0)).sum())
        g += Xb.T @ (yb - p)
        Xw = Xb * np.sqrt(p * (1.0 - p))[:, None]
        H += Xw.T @ Xw  # one syrk: the cheapest form of X'WX
    return ll, g, H


def _logit_newton(
    X: np.ndarray, y: np.ndarray, XtX: np.ndarray, intercept: int | None, *, maxiter: int = 100
) -> tuple[np.ndarray, bool]:
    """Maximum-likelihood logit coefficients by Newton-Raphson with step halving.

    Starts at the intercept-only fit (the logit of the mean; zeros without an intercept),
    where every weight is the same, so the first information matrix is a multiple of
    ``XtX`` and the first step needs no pass over the data. Each step solves with a
    Cholesky factor of the information matrix plus 1e-10 on the diagonal (statsmodels'
    ridge, which matters only once the weights of a separated fit underflow), falling
    back to a general solve if rounding leaves it not positive definite.

    Converged when the largest full Newton step is at most 1e-10 (relative to the
    coefficient where that exceeds 1). The step size, not a Hessian-scaled norm, is the
    test because a diverging (separated) fit keeps taking steps of order one while its
    gradient and Hessian vanish together. A step that stops shrinking once below 1e-6 has
    reached rounding noise (Newton's convergence is quadratic) and also counts as
    converged. A step that lowers the log-likelihood is halved until it does not.

    Returns
    -------
    beta, converged
    """
    n, k = X.shape
    beta = np.zeros(k)
    ybar = float(y.mean())
    p0 = 0.5
    if intercept is not None and 0 < ybar < 1:
        p0 = ybar
        beta[intercept] = math.log(ybar / (1 - ybar))
    ll = float(n * ybar * math.log(p0) + n * (1 - ybar) * math.log1p(-p0))
    colsum = X.sum(axis=0) if intercept is None else XtX[intercept]
    g = X.T @ y - p0 * colsum
    H = p0 * (1 - p0) * XtX
    previous = math.inf
    for _ in range(maxiter):
        H[np.diag_indices(k)] += 1e-10  # statsmodels' ridge: keeps a diverging fit's steps finite
        try:
            step = linalg.cho_solve(linalg.cho_factor(H, check_finite=False), g, check_finite=False)
        except np.linalg.LinAlgError:  # not numerically positive definite: a general solve still may work
            step = np.linalg.solve(H, g)
        # convergence is judged on the full Newton step, so a step cut short by halving cannot fake it
        size = float(np.max(np.abs(step) / np.maximum(1.0, np.abs(beta + step))))
        if size <= 1e-10:  # a step this small cannot lower the likelihood: no pass needed to check it
            return beta + step, True
        for _halving in range(30):
            ll_new, g_new, H_new = _logit_pass(X, y, beta + step)
            # a Newton step on this concave likelihood only lowers it far from the optimum
            if ll_new >= ll - 1e-12 * abs(ll):
                break
            step = step / 2
        else:  # no step along the Newton direction improves the likelihood: stop where we are
            return beta, False
        beta = beta + step
        ll, g, H = ll_new, g_new, H_new
        if previous <= 1e-6 and size >= previous / 2:
            return beta, True
        previous = size
    return beta, False


def _propensity(
    frame: pd.DataFrame, t: np.ndarray, treat: str, covariates: Sequence[str], ps_formula: str | None
) -> tuple[np.ndarray, dict[str, Any], np.ndarray]:
    """Propensity score P(treat = 1 | X) from a maximum-likelihood logit (in key order), its info and design.

    The fit is our own Newton-Raphson (:func:`_logit_newton`); it reaches the same maximum as
    statsmodels ``Logit.fit(method="newton")`` (the tests check this to 1e-8) in a fraction of
    the time at register scale. With ``ps_formula`` the design matrix is the formula's.
    """
    from scipy.special import expit

    if ps_formula is not None:
        import statsmodels.formula.api as smf

        formula = _full_formula(ps_formula, treat)
        fdata = frame.copy()
        fdata[treat] = t  # the model is for membership of the focal group's complement-invariant score
        model = smf.logit(formula, data=fdata)
        names = list(model.exog_names)
        X = np.asarray(model.exog, dtype=float)
        y = np.asarray(model.endog, dtype=float)
        if len(X) != len(frame):
            raise DataError(
                [
                    Problem(
                        f"the propensity formula dropped {len(frame) - len(X)} rows with missing values",
                        where=f"ps_formula={ps_formula!r}",
                        hint="impute or drop the rows with missing values in the formula's variables first",
                    )
                ]
            )
    else:
        names, X = _design_array(frame, covariates, const=True)
        flat = X.min(axis=0) == X.max(axis=0)
        const = [c for c, f in zip(names[1:], flat[1:], strict=True) if f]
        if const:
            raise DesignError(
                f"covariate column(s) {const} are constant, so the propensity model cannot be fitted; "
                "drop them from covariates"
            )
        y = t.astype(float)
    XtX = X.T @ X
    sv = np.linalg.svd(XtX, compute_uv=False)
    if sv[-1] <= sv[0] * 1e-12:
        raise DesignError(
            "the propensity model's covariates are collinear (one is a combination of others); "
            f"design columns: {names}. Fix: drop redundant covariates"
        )
    slopes = [j for j, c in enumerate(names) if c not in ("const", "Intercept")]
    culprits = _separation_culprits(X[:, slopes], [names[j] for j in slopes], t)
    if culprits:
        raise DesignError(
            "perfect separation in the propensity model: "
            + "; ".join(culprits)
            + ". Units there have a propensity of 0 or 1 and cannot be matched. Fix: drop or merge that level, "
            "restrict the sample to the region of overlap, or match exactly on that covariate with exact=."
        )
    intercept = next((j for j, c in enumerate(names) if c in ("const", "Intercept")), None)
    separated = DesignError(
        "perfect separation in the propensity model: a combination of covariates predicts treatment exactly. "
        "Fix: simplify the covariates or restrict the sample to the region of overlap."
    )
    try:
        beta, converged = _logit_newton(X, y, XtX, intercept)
    except np.linalg.LinAlgError as err:
        raise DesignError(
            f"the propensity model could not be fitted ({err}); a combination of covariates separates treated "
            "from controls or they are collinear. Fix: simplify covariates or pass ps_formula="
        ) from err
    ps = expit(X @ beta)
    # a diverging fit drives some scores to exactly 0 or 1 (quasi-separation) or all of them to the
    # treatment itself (complete separation, statsmodels' test)
    if not np.all(np.isfinite(beta)) or np.any((ps == 0.0) | (ps == 1.0)) or np.all(np.abs(ps - y) <= 1e-8):
        raise separated
    info: dict[str, Any] = {"ps_params": dict(zip(names, beta.tolist(), strict=True))}
    if not converged:
        info["ps_warning"] = "the propensity model did not converge"
    return ps, info, X


def _fit_ps(
    frame: pd.DataFrame, t: np.ndarray, treat: str, covariates: Sequence[str], ps_formula: str | None
) -> tuple[np.ndarray, dict[str, Any]]:
    """Propensity score P(treat = 1 | X) from a logit (in key order) and its info (see :func:`_propensity`)."""
    ps, info, _ = _propensity(frame, t, treat, covariates, ps_formula)
    return ps, info


def _whiten(Xd: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Covariates times the inverse Cholesky factor of the pooled within-group covariance."""
    Xt, Xc = Xd[t == 1], Xd[t == 0]
    nt, nc = len(Xt), len(Xc)
    S = ((nt - 1) * np.cov(Xt, rowvar=False, ddof=1).reshape(Xd.shape[1], -1) if nt > 1 else 0) + (
        (nc - 1) * np.cov(Xc, rowvar=False, ddof=1).reshape(Xd.shape[1], -1)
    )
    S = np.atleast_2d(S / max(nt + nc - 2, 1))
    try:
        L = np.linalg.cholesky(S)
        return linalg.solve_triangular(L, Xd.T, lower=True).T
    except np.linalg.LinAlgError:  # singular: whiten on the non-null eigen-space (a pseudo-inverse)
        vals, vecs = np.linalg.eigh(S)
        keep = vals > vals.max() * 1e-10
        return (Xd @ vecs[:, keep]) / np.sqrt(vals[keep])


# -- 1-D nearest neighbours -------------------------------------------------------
def _score_key_order(cs: np.ndarray, c_key: np.ndarray) -> np.ndarray:
    """The permutation sorting controls by (score, key), as ``np.lexsort((c_key, cs))``.

    A stable sort of a million floats is about 4x slower than numpy's default (SIMD)
    sort, so the scores are sorted unstably and only runs of tied scores, usually few,
    are put in key order afterwards.
    """
    o = np.argsort(cs)
    s = cs[o]
    tie = s[1:] == s[:-1]
    if tie.any():
        in_run = np.zeros(len(cs), dtype=bool)
        in_run[1:] |= tie
        in_run[:-1] |= tie
        pos = np.flatnonzero(in_run)  # each run of equal scores occupies consecutive positions
        sub = o[pos]
        o[pos] = sub[np.lexsort((c_key[sub], s[pos]))]
    return o


def _find_right(nr: np.ndarray, j: int) -> int:
    root = j
    while nr[root] != root:
        root = nr[root]
    while nr[j] != root:  # path compression
        nr[j], j = root, nr[j]
    return root


def _nn1d_without(
    ts: np.ndarray, t_order: np.ndarray, cs: np.ndarray, c_key: np.ndarray, ratio: int, width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Greedy 1-D matching without replacement.

    ``ts``: scores of treated (in processing order ``t_order`` = their indices);
    ``cs``/``c_key``: control scores and keys. Returns (treated index, control index,
    distance, round) arrays. The pool is sorted once by (score, key). Two union-find
    arrays give the next free control to the right and to the left of any position
    in amortised O(alpha(n)); each treated unit looks at the nearest free control on
    each side (for the left side, the free control with the smallest key among those
    tied at that score) and takes the nearer, ties to the smaller key.
    """
    m = len(cs)
    srt = _score_key_order(cs, c_key)
    s = cs[srt]
    keys = c_key[srt]
    # first position of each run of equal scores
    newrun = np.r_[True, s[1:] != s[:-1]]
    run_start = np.maximum.accumulate(np.where(newrun, np.arange(m), 0))
    nr = np.arange(m + 1)  # nr: next free at or right of j (m = none)
    nl = np.arange(m + 1)  # nl[j+1]: next free at or left of j, stored shifted (0 = none)
    pos = np.searchsorted(s, ts, side="left")
    out_t, out_c, out_d, out_r = [], [], [], []
    active = np.ones(len(ts), dtype=bool)
    n_free = m
    for r in range(ratio):
        for i in t_order:
            if not active[i] or n_free == 0:
                continue
            x = ts[i]
            p = int(pos[i])
            rgt = _find_right(nr, p)
            lft = _find_right(nl, p) - 1  # nl is indexed shifted by one
            best = -1
            bd = math.inf
            if lft >= 0:
                lft = _find_right(nr, int(run_start[lft]))  # smallest key free in that tied run
                best, bd = lft, x - s[lft]
            if rgt < m:
                dr = s[rgt] - x
                if best < 0 or dr < bd or (dr == bd and keys[rgt] < keys[best]):
                    best, bd = rgt, dr
            if best < 0 or bd > width:
                active[i] = False  # nothing in the caliper: no (further) match for this unit
                continue
            nr[best] = best + 1
            nl[best + 1] = best
            n_free -= 1
            out_t.append(i)
            out_c.append(srt[best])
            out_d.append(bd)
            out_r.append(r)
    return (
        np.asarray(out_t, dtype=np.int64),
        np.asarray(out_c, dtype=np.int64),
        np.asarray(out_d, dtype=float),
        np.asarray(out_r, dtype=np.int64),
    )


def _ranges(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row ids and positions of the concatenated ranges [lo_i, hi_i)."""
    lengths = np.maximum(hi - lo, 0)
    rows = np.repeat(np.arange(len(lo)), lengths)
    starts = np.repeat(lo - np.cumsum(lengths) + lengths, lengths)
    return rows, starts + np.arange(lengths.sum())


def _nn1d_with(
    ts: np.ndarray, cs: np.ndarray, c_key: np.ndarray, k: int, width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised 1-D k-nearest neighbours with replacement, keeping every control tied at the k-th distance."""
    m = len(cs)
    srt = _score_key_order(cs, c_key)
    s = cs[srt]
    pos = np.searchsorted(s, ts, side="left")
    win = np.arange(-k, k)
    cand = pos[:, None] + win[None, :]
    valid = (cand >= 0) & (cand < m)
    d = np.where(valid, np.abs(s[np.clip(cand, 0, m - 1)] - ts[:, None]), np.inf)
    dk = np.partition(d, k - 1, axis=1)[:, k - 1]
    dk = np.minimum(dk, width)
    slack = 1e-12 * (np.abs(ts) + dk) + 1e-300
    lo = np.searchsorted(s, ts - dk - slack, side="left")
    hi = np.searchsorted(s, ts + dk + slack, side="right")
    rows, idx = _ranges(lo, hi)
    dist = np.abs(s[idx] - ts[rows])
    keep = dist <= dk[rows]
    return rows[keep], srt[idx[keep]], dist[keep]


# -- Mahalanobis (k-d tree) ----------------------------------------------------------
def _sorted_query(tree: cKDTree, Z: np.ndarray, zq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """k nearest (exact distances recomputed), ordered by (distance, index) so ties go to the smaller key."""
    k = min(k, tree.n)
    _, idx = tree.query(zq, k=k)
    idx = np.asarray(idx).reshape(len(zq), k)
    d = np.sqrt(((Z[idx] - zq[:, None, :]) ** 2).sum(axis=2))
    o = np.lexsort((idx, d), axis=1)
    return np.take_along_axis(d, o, 1), np.take_along_axis(idx, o, 1)


def _nnkd_with(Zt: np.ndarray, Zc: np.ndarray, k: int, width: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    tree = cKDTree(Zc)
    m = len(Zc)
    kq = min(m, k + 4)
    d, idx = _sorted_query(tree, Zc, Zt, kq)
    dk = np.minimum(d[:, k - 1], width)
    rows = np.repeat(np.arange(len(Zt)), kq)
    dd, ii = d.ravel(), idx.ravel()
    keep = dd <= dk[rows]
    rows, ii, dd = rows[keep], ii[keep], dd[keep]
    # rows whose tie at the k-th distance may extend past the kq queried: ask the tree for the whole ball
    more = np.flatnonzero((d[:, -1] <= dk) & (kq < m))
    if len(more):
        drop = np.isin(rows, more)
        rows, ii, dd = rows[~drop], ii[~drop], dd[~drop]
        ball = tree.query_ball_point(Zt[more], r=dk[more] * (1 + 1e-9) + 1e-300)
        er, ei = [], []
        for r_, lst in zip(more, ball, strict=True):
            er.extend([r_] * len(lst))
            ei.extend(lst)
        er_a, ei_a = np.asarray(er, dtype=np.int64), np.asarray(ei, dtype=np.int64)
        ed = np.sqrt(((Zc[ei_a] - Zt[er_a]) ** 2).sum(axis=1))
        ok = ed <= dk[er_a]
        rows, ii, dd = np.r_[rows, er_a[ok]], np.r_[ii, ei_a[ok]], np.r_[dd, ed[ok]]
    return rows, ii, dd


def _nnkd_without(
    Zt: np.ndarray, t_order: np.ndarray, Zc: np.ndarray, ratio: int, width: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Greedy Mahalanobis matching without replacement.

    All treated units are first queried for their ``ratio + 10`` nearest controls in
    one vectorised k-d tree call. Each treated unit, in processing order, takes the
    nearest control not yet used; if every control in its list is used (or the one
    found ties with the last in the list) the unit is queried again with twice as
    many neighbours, until a free control is found or the pool is exhausted.
    """
    tree = cKDTree(Zc)
    m = len(Zc)
    used = np.zeros(m, dtype=bool)
    k0 = min(m, ratio + 10)
    D, I = _sorted_query(tree, Zc, Zt, k0)
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    out_t, out_c, out_d, out_r = [], [], [], []
    active = np.ones(len(Zt), dtype=bool)
    n_free = m
    for r in range(ratio):
        for i in t_order:
            if not active[i] or n_free == 0:
                continue
            d, idx = cache.get(i, (D[i], I[i]))
            k = len(idx)
            while True:
                free = ~used[idx]
                j = int(np.argmax(free)) if free.any() else -1
                exhaustive = k >= m
                if j >= 0 and (exhaustive or d[j] < d[-1]):
                    break
                if exhaustive:
                    break
                k = min(m, 2 * k)
                dq, iq = _sorted_query(tree, Zc, Zt[i : i + 1], k)
                d, idx = dq[0], iq[0]
                cache[i] = (d, idx)
            if j < 0 or d[j] > width:
                active[i] = False
                continue
            used[idx[j]] = True
            n_free -= 1
            out_t.append(i)
            out_c.append(int(idx[j]))
            out_d.append(float(d[j]))
            out_r.append(r)
    return (
        np.asarray(out_t, dtype=np.int64),
        np.asarray(out_c, dtype=np.int64),
        np.asarray(out_d, dtype=float),
        np.asarray(out_r, dtype=np.int64),
    )


# -- the result ---------------------------------------------------------------------
@dataclass(frozen=True, repr=False, eq=False)
class MatchResult:
    """A matched comparison sample and the tools to read it.

    Built by :func:`match`; do not construct it directly.

    Attributes
    ----------
    data : pandas.DataFrame
        The input data in unit-key order, with the columns ``pscore`` (when a
        propensity score was fitted) and ``match_weight`` (MatchIt-style unit
        weights: 1 for matched treated units; for controls the sum over the sets
        they are in of 1 / (controls in the set), scaled to sum to the number of
        distinct controls used; 0 for unmatched units).
    pairs : pandas.DataFrame
        One row per (matched set, control): ``set`` (1, 2, ... in processing
        order), ``treated`` and ``control`` (positions in :attr:`data`),
        ``distance``, ``weight`` (1 / controls in the set).
    treat, covariates, params, info
        The arguments of :func:`match`, and counts (see :meth:`summary`).
    """

    data: pd.DataFrame
    pairs: pd.DataFrame
    treat: str
    covariates: tuple[str, ...]
    params: Mapping[str, Any]
    info: Mapping[str, Any] = field(default_factory=dict)
    _metric: np.ndarray | None = None
    _focal: np.ndarray | None = None

    # -- samples ---------------------------------------------------------------------
    @property
    def matched(self) -> pd.DataFrame:
        """The matched sample in long form: one row per member of each matched set.

        Columns: the input columns, ``match_set`` (set id), ``match_role``
        (``"treated"`` or ``"control"``), ``match_weight`` (1 for the treated
        unit, 1 / (controls in the set) for each control), ``match_distance``
        (distance to the set's treated unit; 0 for the treated unit) and
        ``pscore`` when fitted. Without replacement each unit appears at most once;
        with replacement a control appears once per set it is in. The index holds
        the units' original index labels.
        """
        p = self.pairs
        first = p.drop_duplicates("set")
        base = self.data.drop(columns=["match_weight"])
        tr = base.iloc[first["treated"].to_numpy()].assign(
            match_set=first["set"].to_numpy(), match_role="treated", match_weight=1.0, match_distance=0.0
        )
        co = base.iloc[p["control"].to_numpy()].assign(
            match_set=p["set"].to_numpy(),
            match_role="control",
            match_weight=p["weight"].to_numpy(),
            match_distance=p["distance"].to_numpy(),
        )
        out = pd.concat([tr, co])
        order = np.lexsort(((out["match_role"] == "control").to_numpy(), out["match_set"].to_numpy()))
        return out.iloc[order]

    @property
    def weights(self) -> pd.Series:
        """MatchIt-style unit weights (0 = unmatched), indexed by the input's index labels, in key order."""
        return self.data["match_weight"].copy()

    def _focal_mask(self) -> np.ndarray:
        return cast(np.ndarray, self._focal)

    # -- summaries ---------------------------------------------------------------------
    def summary(self) -> pd.Series:
        """Counts of the match.

        Returns
        -------
        pandas.Series
            ``treated``, ``treated_matched``, ``treated_dropped_caliper``,
            ``treated_dropped_support``, ``treated_unmatched_other`` (e.g. the pool
            ran out), ``controls``, ``controls_used`` (distinct), ``controls_dropped_support``,
            ``matched_sets``, ``control_reuse_max`` (most sets one control is in),
            ``controls_used_more_than_once``, ``mean_controls_per_set``.
        """
        return pd.Series(dict(self.info["counts"]), name="count", dtype=object)

    def balance(self) -> pd.DataFrame:
        """Covariate balance before and after matching, as a tidy table.

        Returns
        -------
        pandas.DataFrame
            One row per term and sample (``"before"``, ``"after"``) with columns
            ``term`` (``distance``: the score matched on, i.e. the propensity score
            or its logit, absent for Mahalanobis; a covariate; or ``covariate[level]`` for each
            level of a categorical), ``covariate``, ``kind`` (``binary`` or
            ``continuous``), ``sample``, ``mean_treated``, ``mean_control``,
            ``smd``, ``var_ratio`` (treated / control, continuous terms only),
            ``ecdf_max``. "Treated" means the focal group of the estimand.
        """
        d = self.data
        focal = self._focal_mask()
        X = _design(d, self.covariates, drop_first=False)
        cov_of = {}
        for c in self.covariates:
            for col in X.columns:
                if col == c or col.startswith(f"{c}["):
                    cov_of[col] = c
        if "match_distance_score" in d.columns:
            X.insert(0, "distance", d["match_distance_score"].to_numpy())
            cov_of["distance"] = "distance"
        w_after = d["match_weight"].to_numpy()
        rows = []
        Xv = X.to_numpy()
        for j, term in enumerate(X.columns):
            x = Xv[:, j]
            binary = term != "distance" and set(np.unique(x)) <= {0.0, 1.0}
            xt_all = x[focal]
            sd = math.sqrt(xt_all.mean() * (1 - xt_all.mean())) if binary else xt_all.std(ddof=1)
            for sample, w in (("before", np.ones(len(x))), ("after", w_after)):
                wt, wc = w[focal], w[~focal]
                xt, xc = x[focal], x[~focal]
                mt, mc = np.average(xt, weights=wt), np.average(xc, weights=wc)
                vr = np.nan if binary else _wvar(xt, wt) / _wvar(xc, wc)
                rows.append(
                    {
                        "term": term,
                        "covariate": cov_of[term],
                        "kind": "binary" if binary else "continuous",
                        "sample": sample,
                        "mean_treated": mt,
                        "mean_control": mc,
                        "smd": (mt - mc) / sd if sd > 0 else np.nan,
                        "var_ratio": vr,
                        "ecdf_max": _ecdf_max(xt, wt, xc, wc),
                    }
                )
        return pd.DataFrame(rows)

    def plot_balance(self, ax: Any = None, threshold: float = 0.1, exclude: Sequence[str] = ()) -> Any:
        """Love plot: absolute standardised mean differences before and after matching.

        Parameters
        ----------
        ax : matplotlib Axes, optional
            Where to draw.
        threshold : float
            The dashed line (0.1: the usual bound of good balance).
        exclude : list of str
            Balance terms to leave out, e.g. levels held by too few people to publish
            (statistical disclosure control).

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt

        b = self.balance()
        b = b[~b["term"].isin(list(exclude))]
        wide = b.pivot(index="term", columns="sample", values="smd").abs()
        wide = wide.loc[list(dict.fromkeys(b["term"]))[::-1]]
        if ax is None:
            fig, ax = plt.subplots(figsize=(6, 0.35 * len(wide) + 1.5))
        else:
            fig = ax.figure
        y = np.arange(len(wide))
        ax.scatter(wide["before"], y, marker="o", facecolors="none", edgecolors="tab:gray", label="before")
        ax.scatter(wide["after"], y, marker="o", color="tab:blue", label="after")
        ax.axvline(threshold, color="tab:red", linestyle="--", linewidth=1)
        ax.set_yticks(y, wide.index)
        ax.set_xlabel("|standardised mean difference|")
        ax.legend(loc="lower right")
        ax.set_title("Covariate balance")
        fig.tight_layout()
        return fig

    def plot_overlap(self, ax: Any = None, bins: int = 30) -> Any:
        """Distributions of the propensity score (or the matching distance score) by group, before and after.

        Returns
        -------
        matplotlib.figure.Figure
        """
        import matplotlib.pyplot as plt

        d = self.data
        col = "pscore" if "pscore" in d.columns else None
        if col is None:
            raise DesignError("no propensity score was fitted (Mahalanobis matching); plot_overlap needs one")
        focal = self._focal_mask()
        if ax is None:
            fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharex=True)
        else:
            axes = np.atleast_1d(ax)
            fig = axes[0].figure
        x = d[col].to_numpy()
        w = d["match_weight"].to_numpy()
        edges = np.histogram_bin_edges(x, bins=bins)
        for a, (title, ww) in zip(axes, (("before matching", np.ones(len(x))), ("after matching", w)), strict=False):
            a.hist(x[focal], bins=edges, weights=ww[focal], density=True, alpha=0.5, label="treated")
            a.hist(x[~focal], bins=edges, weights=ww[~focal], density=True, alpha=0.5, label="control")
            a.set_title(title)
            a.set_xlabel("propensity score")
        axes[0].legend()
        fig.tight_layout()
        return fig

    def __repr__(self) -> str:
        c = self.info["counts"]
        return (
            f"<MatchResult {self.params['method']}: {c['treated_matched']} of {c['treated']} treated matched "
            f"to {c['controls_used']} controls>"
        )

    # -- effects ---------------------------------------------------------------------
    def effect(
        self,
        outcome: str,
        *,
        adjust: Sequence[str] | None = None,
        inference: Inference = "pairs",
        alpha: float = 0.05,
        n_boot: int = 499,
        seed: int | None = None,
        ai_neighbours: int = 2,
    ) -> Result:
        """Effect on the treated (or controls, for the ATC) in the matched sample.

        Parameters
        ----------
        outcome : str
            Outcome column (numeric).
        adjust : list of str, optional
            Covariates for regression adjustment. ``"pairs"`` and ``"bootstrap"``:
            the coefficient on treatment in a weighted least-squares regression
            of the outcome on treatment and these covariates in the matched sample
            (without: the weighted difference in means). ``"abadie_imbens"``: the
            covariates of the bias-correction regression (default: the matching
            covariates).
        inference : {"pairs", "abadie_imbens", "bootstrap"}
            ``"pairs"``: cluster-robust SE clustered on the matched set, CR1
            (``G/(G-1) * (N-1)/(N-K)``, as R ``sandwich::vcovCL``), normal
            critical values; this is MatchIt's recommended SE after matching
            without replacement. With replacement the long-form sample is used and
            the SE ignores that controls recur across sets (use
            ``"abadie_imbens"``). ``"abadie_imbens"``: the bias-corrected matching
            estimator and the Abadie-Imbens (2006) variance for the population
            ATT: ``(1/N1^2) [sum_i (tau_i - tau)^2 + sum_j (K_j^2 - sum_i w_ij^2)
            sigma2_j]``, where ``K_j`` is the total weight of control j over the
            sets it is in. The conditional variances ``sigma2_j`` are estimated by
            matching control j to its ``ai_neighbours`` nearest other controls
            (same distance as the match: score, or whitened covariates) and taking
            ``J/(J+1) (Y_j - mean of their Y)^2``. The bias correction is a linear
            regression of the outcome on ``adjust`` among the matched controls,
            weighted by ``K_j``. ``"bootstrap"``: units are resampled within the
            treated and control groups, the propensity model and the match are
            re-run ``n_boot`` times; the SE is the SD of the estimates, the
            interval normal (the percentile interval is in ``info``). Note that
            the bootstrap is not valid for matching with replacement
            (Abadie and Imbens 2008).
        alpha : float
            1 - confidence level.
        n_boot, seed
            Bootstrap replications and seed.
        ai_neighbours : int
            J, the number of same-group neighbours for the Abadie-Imbens
            conditional variances (1 or 2 are usual; 2 by default).

        Returns
        -------
        Result
            Term ``"att"`` (or ``"atc"``). ``info``: ``n_treated``, ``n_control``
            (distinct controls), ``n_sets`` (clusters), and for the bootstrap
            ``boot_estimates``, ``percentile_ci``, ``n_boot_failed``.

        Examples
        --------
        >>> from evaluator.simulate import employment_sib
        >>> sim = employment_sib(n_treated=60, n_pool=600, seed=2)
        >>> m = match(sim.data, treat="treated", covariates=sim.columns["covariates"])
        >>> r = m.effect("employed_12m")
        >>> r.table["term"].tolist(), r.nobs
        (['att'], 120)
        """
        _choice("inference", inference, _INFERENCES)
        d = self.data
        adjust = _as_list(adjust)
        _check_columns(d, self.treat, list(adjust), outcome)
        if int(ai_neighbours) < 1:
            raise ValueError(f"ai_neighbours={ai_neighbours!r} must be a positive whole number")
        term = "att" if self.params["estimand"] == "ATT" else "atc"
        counts = self.info["counts"]
        info: dict[str, Any] = {
            "n_treated": counts["treated_matched"],
            "n_control": counts["controls_used"],
            "n_sets": counts["matched_sets"],
        }
        notes: list[str] = []
        if counts["treated_matched"] < counts["treated"]:
            notes.append(
                f"{counts['treated'] - counts['treated_matched']} of {counts['treated']} treated units were not "
                "matched (caliper, common support or pool); the estimate is for the matched treated only"
            )
        method = self.params["method"]
        if inference == "pairs":
            est, se, nobs = _pairs_estimate(self, outcome, adjust)
            info["n_clusters"] = counts["matched_sets"]
            how = "cluster-robust (CR1) on matched set, normal critical values"
            if self.params["replace"]:
                notes.append("pairs SEs with replacement ignore that controls recur across sets; see abadie_imbens")
        elif inference == "abadie_imbens":
            est, se, nobs, extra = _abadie_imbens(self, outcome, adjust, int(ai_neighbours))
            info.update(extra)
            how = f"Abadie-Imbens (2006) population variance, bias-corrected, J={int(ai_neighbours)}"
        else:
            est, _, nobs = _pairs_estimate(self, outcome, adjust)
            boots, failed = _bootstrap(self, outcome, adjust, n_boot, seed)
            if len(boots) < 2:
                raise DesignError(f"only {len(boots)} of {n_boot} bootstrap replications could be matched")
            se = float(np.std(boots, ddof=1))
            info.update(
                boot_estimates=boots,
                percentile_ci=tuple(np.quantile(boots, [alpha / 2, 1 - alpha / 2]).tolist()),
                n_boot=len(boots),
                n_boot_failed=failed,
            )
            how = f"bootstrap ({len(boots)} replications re-running the propensity model and the match), normal CI"
            if failed:
                notes.append(f"{failed} bootstrap replications failed to match and were left out")
            if self.params["replace"]:
                notes.append("the bootstrap is not valid for matching with replacement (Abadie and Imbens 2008)")
        table = tidy_table([term], [est], [se], alpha=alpha)
        return Result(
            estimator=f"Matched comparison ({method}), {self.params['estimand']}",
            table=table,
            nobs=int(nobs),
            alpha=alpha,
            inference=how,
            outcome=outcome,
            notes=tuple(notes),
            info=info,
        )


def _wvar(x: np.ndarray, w: np.ndarray) -> float:
    """Weighted variance with reliability-weight correction (n - 1 when all weights are 1)."""
    sw = w.sum()
    m = np.sum(w * x) / sw
    return float(np.sum(w * (x - m) ** 2) / (sw - np.sum(w**2) / sw))


def _ecdf_max(xt: np.ndarray, wt: np.ndarray, xc: np.ndarray, wc: np.ndarray) -> float:
    """Largest absolute difference between the (weighted) empirical CDFs."""
    keep_t, keep_c = wt > 0, wc > 0
    xt, wt, xc, wc = xt[keep_t], wt[keep_t], xc[keep_c], wc[keep_c]
    x = np.r_[xt, xc]
    wt_all = np.r_[wt / wt.sum(), np.zeros(len(xc))]
    wc_all = np.r_[np.zeros(len(xt)), wc / wc.sum()]
    o = np.argsort(x, kind="stable")
    x, ft, fc = x[o], np.cumsum(wt_all[o]), np.cumsum(wc_all[o])
    last = np.r_[x[1:] != x[:-1], True]
    return float(np.max(np.abs(ft[last] - fc[last])))


# -- estimation ---------------------------------------------------------------------
def _wls_cluster(y: np.ndarray, X: np.ndarray, w: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WLS coefficients and CR1 cluster-robust SEs (G/(G-1) * (N-1)/(N-K), as sandwich::vcovCL)."""
    sw = np.sqrt(w)
    Xw, yw = X * sw[:, None], y * sw
    XtX_inv = np.linalg.pinv(Xw.T @ Xw)
    beta = XtX_inv @ (Xw.T @ yw)
    u = (y - X @ beta) * w
    _, g = np.unique(groups, return_inverse=True)
    G = g.max() + 1
    scores = np.zeros((G, X.shape[1]))
    np.add.at(scores, g, X * u[:, None])
    n, k = X.shape
    c = G / (G - 1) * (n - 1) / (n - k) if G > 1 and n > k else np.nan
    V = c * XtX_inv @ (scores.T @ scores) @ XtX_inv
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


# -- match ----------------------------------------------------------------------------
def match(
    data: pd.DataFrame,
    *,
    treat: str,
    covariates: Sequence[str],
    distance: Distance = "logit",
    ratio: int = 1,
    replace: bool = False,
    caliper: float | None = None,
    caliper_scale: Literal["sd", "raw"] = "sd",
    exact: str | Sequence[str] | None = None,
    order: Order | None = None,
    common_support: bool = False,
    estimand: Literal["ATT", "ATC"] = "ATT",
    ps_formula: str | None = None,
    unit: str | None = None,
    seed: int | None = None,
) -> MatchResult:
    """Nearest-neighbour matching of treated units to controls.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per unit.
    treat : str
        Treatment column, coded 1 = treated, 0 = comparison.
    covariates : list of str
        Covariates to balance. Numeric columns enter as they are; string or
        categorical columns are expanded to indicators (first level dropped in the
        propensity model; every level shown in :meth:`MatchResult.balance`).
    distance : {"logit", "ps", "mahalanobis"}
        Match on the logit of the propensity score, on the score itself
        (MatchIt's default), or on the Mahalanobis distance of the covariates
        (whitened by the Cholesky factor of the pooled within-group covariance).
    ratio : int
        Controls per treated unit.
    replace : bool
        Whether a control may be matched to several treated units.
    caliper : float, optional
        Largest allowed distance; units in ``caliper_scale``.
    caliper_scale : {"sd", "raw"}
        ``"sd"``: the caliper is in SDs of the distance over all units kept
        (score distances only). ``"raw"``: in the distance's own units.
    exact : str or list of str, optional
        Columns to match exactly on: matching happens within each combination of
        their values. A stratum with treated units and no control is an error that
        names the stratum.
    order : {"largest", "smallest", "data", "random"}, optional
        Processing order of the treated (see the module notes). Default
        ``"largest"`` for score distances and ``"data"`` for Mahalanobis.
    common_support : bool
        Drop units whose propensity score lies outside the other group's range
        (MatchIt ``discard = "both"``), with a warning giving the counts.
    estimand : {"ATT", "ATC"}
        The focal group whose units are matched: treated (ATT) or controls (ATC).
    ps_formula : str, optional
        statsmodels formula for the propensity model, e.g.
        ``"treated ~ age + I(age**2) + C(education)"`` (a right-hand side alone,
        starting with ``~``, is also accepted).
    unit : str, optional
        Column with a unique unit id; the key that fixes ties and the ``"data"``
        order. The DataFrame index is used when omitted.
    seed : int, optional
        Seed for ``order="random"``.

    Returns
    -------
    MatchResult

    Raises
    ------
    DataError
        Missing columns or values, treatment not 0/1, duplicate unit keys.
    DesignError
        Fewer than 2 focal units, a pool too small for ``ratio`` without
        replacement, exact strata without controls, perfect separation.
    ValueError
        An unknown parameter value.

    Examples
    --------
    >>> from evaluator.simulate import employment_sib
    >>> sim = employment_sib(n_treated=60, n_pool=600, seed=2)
    >>> m = match(sim.data, treat="treated", covariates=sim.columns["covariates"])
    >>> m.summary()[["treated", "treated_matched", "controls_used"]].tolist()
    [60, 60, 60]
    >>> b = m.balance()
    >>> bool((b.loc[b["sample"] == "after", "smd"].abs() < b.loc[b["sample"] == "before", "smd"].abs().max()).all())
    True
    """
    _choice("distance", distance, _DISTANCES)
    _choice("caliper_scale", caliper_scale, ("sd", "raw"))
    _choice("estimand", estimand, ("ATT", "ATC"))
    if order is not None:
        _choice("order", order, _ORDERS)
    if isinstance(ratio, bool) or not isinstance(ratio, (int, np.integer)) or ratio < 1:
        raise ValueError(f"ratio={ratio!r} is not allowed; use a positive whole number")
    if caliper is not None and not (isinstance(caliper, (int, float, np.floating)) and caliper > 0):
        raise ValueError(f"caliper={caliper!r} is not allowed; use a positive number or None")
    if distance == "mahalanobis" and caliper is not None and caliper_scale == "sd":
        raise ValueError("caliper_scale='sd' is not allowed with distance='mahalanobis'; use caliper_scale='raw'")
    if not isinstance(data, pd.DataFrame):
        raise DataError("data must be a pandas DataFrame")
    covariates = _as_list(covariates)
    exact_cols = _as_list(exact)
    if not covariates and ps_formula is None:
        raise ValueError("covariates=[] is not allowed; name at least one covariate")
    if unit is not None and unit not in data.columns:
        raise DataError([Problem("column not found", column=unit, hint="unit= must name a column of the data")])
    _check_columns(data, treat, covariates + exact_cols)
    if order is None:
        order = "data" if distance == "mahalanobis" else "largest"

    df, _ = _canonical(data, unit)
    t = df[treat].to_numpy().astype(np.int64)
    focal = (t == 1) if estimand == "ATT" else (t == 0)
    n_focal, n_other = int(focal.sum()), int((~focal).sum())
    fname = "treated" if estimand == "ATT" else "control (ATC focal)"
    if n_focal < 2:
        raise DesignError(f"only {n_focal} {fname} unit(s) in column '{treat}'; matching needs at least 2")
    if n_other < 1:
        raise DesignError(f"no comparison units in column '{treat}'; matching needs a pool to draw from")
    if not replace and n_other < ratio * n_focal:
        raise DesignError(
            f"ratio={ratio} without replacement needs {ratio * n_focal} controls for {n_focal} treated units, "
            f"but the pool has {n_other}. Fix: lower ratio, or use replace=True"
        )

    need_ps = distance != "mahalanobis" or order in ("largest", "smallest") or common_support
    ps_info: dict[str, Any] = {}
    ps = None
    if need_ps:
        ps, ps_info = _fit_ps(df, t, treat, covariates, ps_formula)
    if distance == "mahalanobis":
        Xd = _design_array(df, covariates)[1]
        metric = _whiten(Xd, focal.astype(np.int64))
        score = None
    else:
        with np.errstate(divide="ignore"):
            score = ps if distance == "ps" else np.log(ps) - np.log1p(-ps)
        metric = score[:, None]

    # common support (MatchIt discard = "both") on the propensity score
    keep = np.ones(len(df), dtype=bool)
    dropped_support_f = dropped_support_o = 0
    if common_support:
        pf, po = ps[focal], ps[~focal]
        out_f = focal & ((ps < po.min()) | (ps > po.max()))
        out_o = ~focal & ((ps < pf.min()) | (ps > pf.max()))
        keep = ~(out_f | out_o)
        dropped_support_f, dropped_support_o = int(out_f.sum()), int(out_o.sum())
        if dropped_support_f or dropped_support_o:
            warnings.warn(
                f"common support: dropped {dropped_support_f} {fname} and {dropped_support_o} comparison units "
                "whose propensity score lies outside the other group's range",
                DroppedUnitsWarning,
                stacklevel=2,
            )
        if int((focal & keep).sum()) < 2:
            raise DesignError("fewer than 2 treated units remain on common support")

    width = math.inf
    if caliper is not None:
        if caliper_scale == "sd":
            width = float(caliper) * float(np.std(score[keep], ddof=1))
        else:
            width = float(caliper)

    # processing order of the focal units (positions in key order)
    fpos = np.flatnonzero(focal & keep)
    if order == "largest" or order == "smallest":
        pf = ps[fpos] if estimand == "ATT" else 1 - ps[fpos]
        o = np.argsort(-pf if order == "largest" else pf, kind="stable")
        fpos = fpos[o]
    elif order == "random":
        fpos = fpos[np.random.default_rng(seed).permutation(len(fpos))]
    rank = np.empty(len(df), dtype=np.int64)
    rank[fpos] = np.arange(len(fpos))

    # strata
    if exact_cols:
        strata = df.groupby(exact_cols, sort=True, dropna=False).ngroup().to_numpy()
    else:
        strata = np.zeros(len(df), dtype=np.int64)
    opos_all = np.flatnonzero(~focal & keep)
    if exact_cols:
        f_strata = np.unique(strata[fpos])
        o_strata = set(np.unique(strata[opos_all]).tolist())
        empty = [s for s in f_strata if s not in o_strata]
        if empty:
            labels = df.groupby(exact_cols, sort=True, dropna=False).ngroup()
            names = []
            for s in empty:
                row = df.loc[labels.to_numpy() == s, exact_cols].iloc[0]
                names.append("(" + ", ".join(f"{c}={row[c]!r}" for c in exact_cols) + ")")
            raise DesignError(
                f"{len(empty)} exact-matching strata have treated units but no controls: "
                f"{format_examples(names)}. Fix: coarsen the exact variables, or drop these treated units "
                "explicitly before matching"
            )

    T_, C_, D_ = [], [], []
    short_strata = []
    for s in np.unique(strata[fpos]):
        f_in = fpos[strata[fpos] == s]  # already in processing order
        o_in = opos_all[strata[opos_all] == s]
        if not replace and len(o_in) < ratio * len(f_in):
            short_strata.append(int(s))
        loc_order = np.arange(len(f_in))
        if distance == "mahalanobis":
            if replace:
                ti, ci, di = _nnkd_with(metric[f_in], metric[o_in], ratio, width)
            else:
                ti, ci, di, _ = _nnkd_without(metric[f_in], loc_order, metric[o_in], ratio, width)
        else:
            if replace:
                ti, ci, di = _nn1d_with(score[f_in], score[o_in], o_in, ratio, width)
            else:
                ti, ci, di, _ = _nn1d_without(score[f_in], loc_order, score[o_in], o_in, ratio, width)
        T_.append(f_in[ti])
        C_.append(o_in[ci])
        D_.append(di)
    tp = np.concatenate(T_) if T_ else np.zeros(0, np.int64)
    cp = np.concatenate(C_) if C_ else np.zeros(0, np.int64)
    dp = np.concatenate(D_) if D_ else np.zeros(0)
    # sets numbered by processing order; rows ordered by set then distance then control key
    srt = np.lexsort((cp, dp, rank[tp]))
    tp, cp, dp = tp[srt], cp[srt], dp[srt]
    matched_f, set_inv = np.unique(rank[tp], return_inverse=True)
    set_id = set_inv + 1
    size = np.bincount(set_inv)
    wpair = 1.0 / size[set_inv]
    pairs = pd.DataFrame({"set": set_id, "treated": tp, "control": cp, "distance": dp, "weight": wpair})

    # MatchIt-style unit weights
    uw = np.zeros(len(df))
    uw[fpos[matched_f]] = 1.0
    cw = np.bincount(cp, weights=wpair, minlength=len(df))
    n_used = int((cw > 0).sum())
    if n_used:
        cw *= n_used / cw.sum()
    uw += cw
    out = df.copy(deep=False)  # df is already a fresh frame (taken in key order), never the caller's
    if ps is not None:
        out["pscore"] = ps
    if score is not None:
        out["match_distance_score"] = score
    out["match_weight"] = uw

    n_matched = len(matched_f)
    n_focal_kept = len(fpos)
    n_unmatched = n_focal_kept - n_matched
    reuse = np.bincount(cp, minlength=len(df))
    counts = {
        "treated": n_focal,
        "treated_matched": n_matched,
        "treated_dropped_caliper": 0,
        "treated_dropped_support": dropped_support_f,
        "treated_unmatched_other": 0,
        "controls": n_other,
        "controls_used": n_used,
        "controls_dropped_support": dropped_support_o,
        "matched_sets": n_matched,
        "control_reuse_max": int(reuse.max()) if len(cp) else 0,
        "controls_used_more_than_once": int((reuse > 1).sum()),
        "mean_controls_per_set": float(len(cp) / n_matched) if n_matched else 0.0,
    }
    if caliper is not None:
        counts["treated_dropped_caliper"] = n_unmatched
    else:
        counts["treated_unmatched_other"] = n_unmatched
    if short_strata:
        warnings.warn(
            f"{len(short_strata)} exact strata have fewer controls than ratio x treated; some treated units there "
            f"got fewer than {ratio} matches or none ({n_unmatched} unmatched in all)",
            DroppedUnitsWarning,
            stacklevel=2,
        )
    if n_unmatched and caliper is not None:
        most = " (most of them)" if n_unmatched > n_focal_kept / 2 else ""
        warnings.warn(
            f"the caliper ({caliper} {caliper_scale} = {width:.4g}) left {n_unmatched} of {n_focal_kept} "
            f"{fname} units unmatched{most}; the estimate is for the matched treated only. Fix: widen the "
            "caliper or report the estimand for the matched subgroup",
            DroppedUnitsWarning,
            stacklevel=2,
        )
    if n_matched < 2:
        raise DesignError(f"only {n_matched} {fname} unit(s) could be matched; no estimate is possible")
    what = {"logit": "logit propensity score", "ps": "propensity score", "mahalanobis": "Mahalanobis distance"}
    method = (
        f"{ratio}:1 nearest neighbour on {what[distance]}, {'with' if replace else 'without'} replacement"
        + (f", caliper {caliper} {caliper_scale}" if caliper is not None else "")
        + (f", exact on {', '.join(exact_cols)}" if exact_cols else "")
    )
    params = dict(
        distance=distance,
        ratio=ratio,
        replace=replace,
        caliper=caliper,
        caliper_scale=caliper_scale,
        exact=exact_cols or None,
        order=order,
        common_support=common_support,
        estimand=estimand,
        ps_formula=ps_formula,
        seed=seed,
        method=method,
        caliper_width=width,
        unit=unit,
    )
    return MatchResult(
        data=out,
        pairs=pairs,
        treat=treat,
        covariates=tuple(covariates),
        params=params,
        info={"counts": counts, **ps_info},
        _metric=metric,
        _focal=focal,
    )


# -- weighting ------------------------------------------------------------------------
def _num_jacobian(fun: Callable[[np.ndarray], np.ndarray], theta: np.ndarray) -> np.ndarray:
    """Central-difference Jacobian of the mean estimating function."""
    k = len(theta)
    J = np.empty((k, k))
    for j in range(k):
        h = 1e-6 * max(1.0, abs(theta[j]))
        e = np.zeros(k)
        e[j] = h
        J[:, j] = (fun(theta + e).mean(axis=0) - fun(theta - e).mean(axis=0)) / (2 * h)
    return J


def weighting(
    data: pd.DataFrame,
    *,
    treat: str,
    outcome: str,
    covariates: Sequence[str] | None = None,
    ps_formula: str | None = None,
    estimand: Literal["ATT", "ATE"] = "ATT",
    method: Literal["ipw", "aipw"] = "ipw",
    trim: float | None = None,
    alpha: float = 0.05,
) -> Result:
    """Inverse-probability weighting (normalised) or augmented IPW, with M-estimation SEs.

    The propensity score is a logistic regression as in :func:`match`. ``"ipw"``
    compares the treated mean with the control mean weighted by ``e/(1-e)``
    (ATT) or both arms weighted by ``1/e`` and ``1/(1-e)`` (ATE), weights
    normalised to sum to one in each arm (Hajek). ``"aipw"`` adds linear outcome
    regressions on the covariates (per arm), which makes the estimate doubly
    robust. Standard errors come from the sandwich of the stacked estimating
    equations (propensity model, outcome models and means), so the uncertainty of
    the estimated score is included; the Jacobian is taken by central differences.

    Parameters
    ----------
    data : pandas.DataFrame
    treat, outcome : str
        Treatment (0/1) and outcome columns.
    covariates : list of str, optional
        Covariates of the propensity (and outcome) models.
    ps_formula : str, optional
        statsmodels formula for the propensity model instead.
    estimand : {"ATT", "ATE"}
    method : {"ipw", "aipw"}
    trim : float, optional
        Drop units with a propensity score outside ``[trim, 1 - trim]`` (the
        model is refitted on the rest), with a :class:`TrimmingWarning`.
    alpha : float
        1 - confidence level.

    Returns
    -------
    Result
        Term ``"att"`` or ``"ate"``; ``info``: ``n_treated``, ``n_control``,
        ``n_trimmed``, ``effective_n_control`` (Kish).

    Examples
    --------
    >>> from evaluator.simulate import employment_sib
    >>> sim = employment_sib(n_treated=200, n_pool=2_000, seed=4)
    >>> r = weighting(sim.data, treat="treated", outcome="employed_12m", covariates=sim.columns["covariates"])
    >>> r.table["term"].tolist(), r.nobs
    (['att'], 2200)
    """
    _choice("estimand", estimand, ("ATT", "ATE"))
    _choice("method", method, ("ipw", "aipw"))
    if trim is not None and not (0 < trim < 0.5):
        raise ValueError(f"trim={trim!r} is not allowed; use a number in (0, 0.5) or None")
    covariates = _as_list(covariates)
    if not covariates and ps_formula is None:
        raise ValueError("covariates=None is not allowed without ps_formula; name the covariates")
    _check_columns(data, treat, covariates, outcome)
    df, _ = _canonical(data.reset_index(drop=True), None)
    t = df[treat].to_numpy().astype(np.int64)
    if t.sum() < 2 or (1 - t).sum() < 2:
        raise DesignError(f"weighting needs at least 2 treated and 2 control units in '{treat}'")
    n_trim = 0
    if trim is not None:
        ps0, _ = _fit_ps(df, t, treat, covariates, ps_formula)
        keep = (ps0 >= trim) & (ps0 <= 1 - trim)
        n_trim = int((~keep).sum())
        if n_trim:
            warnings.warn(
                f"trimmed {n_trim} units ({int((~keep & (t == 1)).sum())} treated) with a propensity score outside "
                f"[{trim}, {1 - trim}]; the estimand is for the remaining units",
                TrimmingWarning,
                stacklevel=2,
            )
            df, t = df[keep], t[keep]
    ps, ps_info, Xp = _propensity(df, t, treat, covariates, ps_formula)
    gamma = np.asarray(list(ps_info["ps_params"].values()))
    y = df[outcome].to_numpy(dtype=float)
    # without a formula the outcome models use the propensity model's design (intercept + covariates)
    Xo = Xp if ps_formula is None or not covariates else _design_array(df, covariates, const=True)[1]
    kp, ko = Xp.shape[1], Xo.shape[1]
    tt = t.astype(float)

    def e_of(g: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-(Xp @ g)))

    def ols(mask: np.ndarray) -> np.ndarray:
        return np.linalg.lstsq(Xo[mask], y[mask], rcond=None)[0]

    if method == "aipw":
        b1 = ols(t == 1)
        b0 = ols(t == 0)
    else:
        b1 = b0 = np.zeros(0)

    def psi(theta: np.ndarray) -> np.ndarray:
        g = theta[:kp]
        e = e_of(g)
        cols = [Xp * (tt - e)[:, None]]
        i = kp
        if method == "aipw":
            c1, c0 = theta[i : i + ko], theta[i + ko : i + 2 * ko]
            i += 2 * ko
            m1, m0 = Xo @ c1, Xo @ c0
            cols += [Xo * (tt * (y - m1))[:, None], Xo * ((1 - tt) * (y - m0))[:, None]]
        else:
            m1 = m0 = np.zeros(len(y))
        mu1, mu0 = theta[i], theta[i + 1]
        if estimand == "ATT":
            odds = e / (1 - e)
            cols += [(tt * (y - m0 - mu1))[:, None], ((1 - tt) * odds * (y - m0 - mu0))[:, None]]
        elif method == "ipw":
            cols += [(tt / e * (y - mu1))[:, None], ((1 - tt) / (1 - e) * (y - mu0))[:, None]]
        else:
            cols += [
                (m1 + tt / e * (y - m1) - mu1)[:, None],
                (m0 + (1 - tt) / (1 - e) * (y - m0) - mu0)[:, None],
            ]
        return np.column_stack(cols)

    # point estimates of the means (closed forms of the estimating equations)
    e = ps
    m1, m0 = (Xo @ b1, Xo @ b0) if method == "aipw" else (np.zeros(len(y)), np.zeros(len(y)))
    if estimand == "ATT":
        odds = e / (1 - e)
        mu1 = np.sum(tt * (y - m0)) / tt.sum()
        mu0 = np.sum((1 - tt) * odds * (y - m0)) / np.sum((1 - tt) * odds)
        wc = (1 - tt) * odds
    elif method == "ipw":
        mu1 = np.sum(tt / e * y) / np.sum(tt / e)
        mu0 = np.sum((1 - tt) / (1 - e) * y) / np.sum((1 - tt) / (1 - e))
        wc = (1 - tt) / (1 - e)
    else:
        mu1 = np.mean(m1 + tt / e * (y - m1))
        mu0 = np.mean(m0 + (1 - tt) / (1 - e) * (y - m0))
        wc = (1 - tt) / (1 - e)
    theta = np.r_[gamma, b1, b0, mu1, mu0]
    n = len(y)
    A = _num_jacobian(psi, theta)
    P = psi(theta)
    B = P.T @ P / n
    Ainv = np.linalg.pinv(A)
    V = Ainv @ B @ Ainv.T / n
    grad = np.zeros(len(theta))
    grad[-2], grad[-1] = 1.0, -1.0
    est = float(mu1 - mu0)
    se = float(math.sqrt(grad @ V @ grad))
    term = estimand.lower()
    ess = float(wc.sum() ** 2 / np.sum(wc**2))
    notes = []
    if ps.min() < 0.01 or ps.max() > 0.99:
        notes.append("some propensity scores lie outside [0.01, 0.99]; weights may be extreme (consider trim=)")
    return Result(
        estimator=f"{'Augmented inverse' if method == 'aipw' else 'Inverse'}-probability weighting, {estimand}",
        table=tidy_table([term], [est], [se], alpha=alpha),
        nobs=n,
        alpha=alpha,
        inference="M-estimation sandwich (stacked propensity, outcome and mean equations), normal critical values",
        outcome=outcome,
        notes=tuple(notes),
        info={
            "n_treated": int(t.sum()),
            "n_control": int((1 - t).sum()),
            "n_trimmed": n_trim,
            "effective_n_control": ess,
        },
    )


# -- matched difference-in-differences ----------------------------------------------------
def matched_did(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    covariates: Sequence[str],
    pre_periods: int | None = None,
    distance: Distance = "logit",
    ratio: int = 1,
    replace: bool = False,
    caliper: float | None = None,
    caliper_scale: Literal["sd", "raw"] = "sd",
    exact: str | Sequence[str] | None = None,
    alpha: float = 0.05,
) -> Result:
    """Match treated units to never-treated units per cohort, then difference-in-differences.

    For each cohort g (first treated period; 0 = never treated) the units of that cohort
    are matched to never-treated units (:func:`match`, the other arguments as there)
    on the time-invariant ``covariates`` and, with ``pre_periods = k``, on the outcome
    in the k periods before g (``g-1, ..., g-k``). For each period t the matched-set
    contrast is ``c_s(t) = (Y_it - Y_i,g-1) - sum_j w_sj (Y_jt - Y_j,g-1)`` and
    ``ATT(g, t)`` is its mean over the cohort's sets (base period g-1 for every t, so
    pre-period rows are placebo checks). The overall ``att`` averages the post-period
    cells weighted by the number of matched sets (as Callaway and Sant'Anna's simple
    aggregation); ``event_time=e`` rows average cells with t - g = e, weighted the same.

    Standard errors treat matched sets as independent clusters: each aggregate is a
    linear combination of set means, and its variance is the sum over sets of squared
    influence values times S/(S-1) per cohort. Controls reused across sets or cohorts
    make this approximate (a note says so).

    Parameters
    ----------
    data : pandas.DataFrame
        A balanced long panel: one row per unit and period.
    outcome, unit, time, cohort : str
        Column names; ``cohort`` holds the first treated period, 0 for never treated.
    covariates : list of str
        Time-invariant unit covariates to match on.
    pre_periods : int, optional
        Number of pre-treatment outcome periods to match on (none when omitted).
    distance, ratio, replace, caliper, caliper_scale, exact
        As in :func:`match`.
    alpha : float
        1 - confidence level.

    Returns
    -------
    Result
        Terms ``att`` (headline) and ``event_time=e``; ``info["att_gt"]`` holds the
        cohort-period cells (cohort, time, event_time, att, se, n_sets).

    Examples
    --------
    >>> from evaluator.simulate import sick_leave_sib
    >>> sim = sick_leave_sib(n_periods=24, waves=(13,), employees_per_municipality=20, effect="constant", seed=1)
    >>> r = matched_did(sim.data, outcome="sick_days", unit="employee", time="month", cohort="first_treated",
    ...                 covariates=["age", "tenure"], pre_periods=2, replace=True)
    >>> r.headline, float(r.table["event_time"].min()), float(r.table["event_time"].max())
    ('att', -12.0, 11.0)
    """
    covariates = _as_list(covariates)
    cols = [outcome, unit, time, cohort, *covariates, *_as_list(exact)]
    missing = [c for c in dict.fromkeys(cols) if c not in data.columns]
    if missing:
        raise DataError([Problem("column not found", column=c) for c in missing])
    problems: list[Problem] = []
    for c in dict.fromkeys(cols):
        na = data[c].isna().to_numpy()
        if na.any():
            problems.append(
                Problem(
                    f"{int(na.sum())} missing value(s)",
                    column=c,
                    where=format_examples(np.flatnonzero(na) + 1, label="data rows"),
                    hint="impute or drop these rows explicitly; rows are never dropped silently",
                )
            )
    if problems:
        raise DataError(problems)
    if pre_periods is not None and (not isinstance(pre_periods, (int, np.integer)) or pre_periods < 0):
        raise ValueError(f"pre_periods={pre_periods!r} is not allowed; use a whole number >= 0 or None")
    k = int(pre_periods or 0)
    wide = data.pivot_table(index=unit, columns=time, values=outcome, aggfunc="size")
    if (wide > 1).any().any():
        raise DataError([Problem("duplicate unit-period rows", column=unit, hint="keep one row per unit and period")])
    Y = data.pivot(index=unit, columns=time, values=outcome)
    if Y.isna().any().any():
        bad = Y.index[Y.isna().any(axis=1)]
        raise DataError(
            [
                Problem(
                    "the panel is not balanced",
                    column=unit,
                    where=format_examples(bad, label="units"),
                    hint="matched_did needs every unit observed in every period",
                )
            ]
        )
    unit_cols = [cohort, *covariates, *_as_list(exact)]
    units = data.drop_duplicates([unit, *unit_cols]).set_index(unit)[unit_cols]
    if units.index.duplicated().any():
        bad = units.index[units.index.duplicated()].unique()
        raise DataError(
            [
                Problem(
                    "cohort or covariates vary within unit",
                    column=unit,
                    where=format_examples(bad, label="units"),
                    hint="matched_did matches on time-invariant unit characteristics; use their first-period values",
                )
            ]
        )
    units = units.loc[Y.index]
    periods = np.asarray(Y.columns)
    Yv = Y.to_numpy(dtype=float)
    g_all = units[cohort].to_numpy()
    cohorts = sorted(set(g_all[g_all != 0].tolist()))
    if not cohorts:
        raise DesignError(f"no treated units: every unit has {cohort} = 0")
    if not (g_all == 0).any():
        raise DesignError(f"no never-treated units ({cohort} = 0) to match to")
    cells = []
    notes: list[str] = []
    for g in cohorts:
        base_idx = int(np.searchsorted(periods, g)) - 1  # the last period before g
        if base_idx - max(k, 1) + 1 < 0:
            raise DesignError(f"cohort {g} has fewer than {max(k, 1)} pre-treatment period(s) in column '{time}'")
        sel = (g_all == g) | (g_all == 0)
        frame = units.loc[sel, [*covariates, *_as_list(exact)]].copy()
        frame["_treated"] = (g_all[sel] == g).astype(np.int64)
        lag_cols = []
        for lag in range(1, k + 1):
            name = f"{outcome}_pre{lag}"
            frame[name] = Yv[sel, base_idx - lag + 1]
            lag_cols.append(name)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", DroppedUnitsWarning)
            m = match(
                frame,
                treat="_treated",
                covariates=[*covariates, *lag_cols],
                distance=distance,
                ratio=ratio,
                replace=replace,
                caliper=caliper,
                caliper_scale=caliper_scale,
                exact=exact,
            )
        for w in caught:
            notes.append(f"cohort {g}: {w.message}")
        # m.data is in key order of frame's index (unit ids); map back to rows of Yv
        rows_of = np.flatnonzero(sel)[np.argsort(units.index[sel].to_numpy(), kind="stable")]
        p = m.pairs
        d = Yv[rows_of] - Yv[rows_of, base_idx][:, None]  # differences to the base period, key order
        sets, inv = np.unique(p["set"].to_numpy(), return_inverse=True)
        t_of = np.zeros(len(sets), dtype=np.int64)
        t_of[inv] = p["treated"].to_numpy()
        ctrl = np.zeros((len(sets), d.shape[1]))
        np.add.at(ctrl, inv, d[p["control"].to_numpy()] * p["weight"].to_numpy()[:, None])
        c = d[t_of] - ctrl  # sets x periods
        S = len(sets)
        for j, t in enumerate(periods):
            if j == base_idx:
                continue
            cells.append({"cohort": g, "time": t, "event_time": j - base_idx - 1, "n_sets": S, "c": c[:, j]})
        if m.params["replace"] or len(cohorts) > 1:
            notes.append("controls reused across matched sets or cohorts are treated as independent (approximate SEs)")

    # influence values: for a cell, IF_s = (c_s - mean) / S; aggregates are linear combinations of cells
    def aggregate(chosen: list[dict[str, Any]]) -> tuple[float, float]:
        wts = np.array([cl["n_sets"] for cl in chosen], dtype=float)
        wts /= wts.sum()
        est = float(sum(w * cl["c"].mean() for w, cl in zip(wts, chosen, strict=True)))
        var = 0.0
        for g in {cl["cohort"] for cl in chosen}:
            inf = sum(
                w * (cl["c"] - cl["c"].mean()) / cl["n_sets"]
                for w, cl in zip(wts, chosen, strict=True)
                if cl["cohort"] == g
            )
            S = len(inf)
            var += float(np.sum(inf**2)) * (S / (S - 1) if S > 1 else np.nan)
        return est, math.sqrt(var)

    post = [cl for cl in cells if cl["event_time"] >= 0]
    terms, ests, ses, evs = ["att"], [], [], [np.nan]
    e0, s0 = aggregate(post)
    ests.append(e0)
    ses.append(s0)
    for e in sorted({cl["event_time"] for cl in cells}):
        est, se = aggregate([cl for cl in cells if cl["event_time"] == e])
        terms.append(f"event_time={e}")
        ests.append(est)
        ses.append(se)
        evs.append(float(e))
    att_gt = pd.DataFrame(
        [
            {
                "cohort": cl["cohort"],
                "time": cl["time"],
                "event_time": cl["event_time"],
                "att": float(cl["c"].mean()),
                "se": float(cl["c"].std(ddof=1) / math.sqrt(cl["n_sets"])) if cl["n_sets"] > 1 else np.nan,
                "n_sets": cl["n_sets"],
            }
            for cl in cells
        ]
    )
    table = tidy_table(terms, ests, ses, alpha=alpha, event_time=evs)
    return Result(
        estimator="Matched difference-in-differences (never-treated controls matched per cohort), ATT",
        table=table,
        nobs=int(Yv.size),
        headline="att",
        alpha=alpha,
        inference="matched sets as clusters (CR1-style S/(S-1) per cohort), normal critical values",
        outcome=outcome,
        notes=tuple(dict.fromkeys(notes)),
        info={
            "att_gt": att_gt,
            "n_treated": int((g_all != 0).sum()),
            "n_units": len(g_all),
            "n_periods": len(periods),
        },
    )
