"""Synthetic control and synthetic difference-in-differences: :func:`synthetic`.

Arkhangelsky, Athey, Hirshberg, Imbens and Wager (2021), "Synthetic
Difference-in-Differences", *AER* 111(12), computed as the R package
``synthdid`` (0.0.9) computes it: the same collapsed form, the same
Frank-Wolfe solver with the same regularisation, intercepts, stopping rule and
sparsification, and the same placebo, jackknife and bootstrap standard errors.
Staggered adoption, which synthdid refuses, is one block fit per adoption cohort
averaged by treated cells (as Stata's ``sdid``); :func:`placebo_in_time` is the
placebo-in-time check.

All weights of a batch of problems (the fit, or every placebo or bootstrap
replication at once) are found by one call of the Frank-Wolfe solver of
:mod:`evaluator.inference.frank_wolfe` (compiled); each problem keeps its own
stopping rule, so a batched problem stops exactly where it would stop alone.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluator.data.validate import duplicate_rows, where_units
from evaluator.errors import DataError, DesignError, EvaluatorWarning, UnbalancedPanelError
from evaluator.estimators.design import check_frame, choice, one_column
from evaluator.inference.frank_wolfe import frank_wolfe, frank_wolfe_covariates
from evaluator.results.base import Result, tidy_table

__all__ = ["SyntheticResult", "placebo_in_time", "synthetic"]

Method = Literal["sdid", "sc", "did"]
Inference = Literal["placebo", "jackknife", "bootstrap"]

#: synthdid's defaults (``synthdid_estimate``): eta.lambda, min.decrease / noise, iterations.
_ETA_LAMBDA = 1e-6
_MIN_DECREASE = 1e-5
_MAX_ITER = 10_000
_MAX_ITER_PRE_SPARSIFY = 100
#: ``sc_estimate``'s eta.omega: (almost) no ridge penalty on the unit weights.
_ETA_OMEGA_SC = 1e-6

_NAMES = {
    "sdid": "Synthetic difference-in-differences",
    "sc": "Synthetic control",
    "did": "Difference-in-differences (uniform weights)",
}


# -- the solver ------------------------------------------------------------------------------------------------------
def _sparsify(v: np.ndarray) -> np.ndarray:
    """synthdid's ``sparsify_function``, row by row: zero weights at most a quarter of the largest, renormalise."""
    out = np.where(v <= v.max(axis=1, keepdims=True) / 4, 0.0, v)
    return out / out.sum(axis=1, keepdims=True)


def _weights(
    A: np.ndarray, b: np.ndarray, x0: np.ndarray, zeta: float, intercept: bool, min_decrease: float
) -> np.ndarray:
    """synthdid_estimate's two passes: 100 steps, sparsify, then up to 10,000 steps from there."""
    x = frank_wolfe(A, b, x0, zeta, intercept=intercept, min_decrease=min_decrease, max_iter=_MAX_ITER_PRE_SPARSIFY)
    return frank_wolfe(A, b, _sparsify(x), zeta, intercept=intercept, min_decrease=min_decrease, max_iter=_MAX_ITER)


@dataclass(frozen=True)
class _Spec:
    """The options synthdid keeps in ``attr(estimate, "opts")`` and reuses in every replication."""

    method: str
    zeta_omega: float
    zeta_lambda: float
    min_decrease: float
    T0: int


def _sum_normalize(w: np.ndarray) -> np.ndarray:
    """synthdid's ``sum_normalize`` row by row: divide by the sum, uniform where the sum is zero."""
    s = w.sum(axis=1, keepdims=True)
    uniform = np.full_like(w, 1.0 / w.shape[1])
    return np.where(s != 0, w / np.where(s != 0, s, 1.0), uniform)


def _fit_batch(
    Yc: np.ndarray,
    ytr: np.ndarray,
    spec: _Spec,
    omega0: np.ndarray | None = None,
    lambda0: np.ndarray | None = None,
    *,
    Xc: np.ndarray | None = None,
    xtr: np.ndarray | None = None,
    fixed_weights: bool = False,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Estimates and weights for a batch: controls ``Yc`` ``(B, n0, T)``, mean treated path ``ytr`` ``(B, T)``.

    ``omega0`` / ``lambda0`` start the solver (synthdid's warm start in replications); uniform if ``None``.
    With covariates, ``Xc`` ``(B, n0, T, C)`` and ``xtr`` ``(B, T, C)`` (the treated mean) are their
    panels, and the weights and coefficients are found together (synthdid's covariate solver);
    ``fixed_weights`` keeps the given weights and fits the coefficients only (synthdid's jackknife).
    Returns ``(tau (B,), omega (B, n0), lambda (B, T0), beta (B, C))``.
    """
    B, n0, T = Yc.shape
    T0 = spec.T0
    if Xc is not None and Xc.shape[-1] > 0:
        return _fit_batch_covariates(Yc, ytr, spec, omega0, lambda0, Xc, xtr, fixed_weights)
    if spec.method == "did":
        omega = np.full((B, n0), 1.0 / n0)
        lam = np.full((B, T0), 1.0 / T0)
    else:
        if spec.method == "sdid":
            lam_start = np.full((B, T0), 1.0 / T0) if lambda0 is None else lambda0
            # time weights: pre-periods of the controls reproduce their post-period means (collapsed form)
            lam = _weights(
                Yc[:, :, :T0], Yc[:, :, T0:].mean(axis=2), lam_start, spec.zeta_lambda, True, spec.min_decrease
            )
        else:  # sc_estimate: lambda fixed at zero
            lam = np.zeros((B, T0))
        om_start = np.full((B, n0), 1.0 / n0) if omega0 is None else omega0
        omega = _weights(
            np.swapaxes(Yc[:, :, :T0], 1, 2),
            ytr[:, :T0],
            om_start,
            spec.zeta_omega,
            spec.method == "sdid",
            spec.min_decrease,
        )
    return _tau(Yc, ytr, omega, lam, T0), omega, lam, np.zeros((B, 0))


def _tau(Yc: np.ndarray, ytr: np.ndarray, omega: np.ndarray, lam: np.ndarray, T0: int) -> np.ndarray:
    """The estimate of each problem of a batch from its weights (synthdid_estimate's last line)."""
    d = ytr - np.matmul(omega[:, None, :], Yc)[:, 0, :]
    return d[:, T0:].mean(axis=1) - np.einsum("bt,bt->b", d[:, :T0], lam)


def _collapse(Yc: np.ndarray, ytr: np.ndarray, T0: int) -> np.ndarray:
    """synthdid's ``collapsed.form`` for a batch: ``(B, n0 + 1, T0 + 1, ...)`` of controls' pre-periods and
    post-period mean, then the treated mean (trailing axes, such as covariates, carried along)."""
    top = np.concatenate([Yc[:, :, :T0], Yc[:, :, T0:].mean(axis=2, keepdims=True)], axis=2)
    bottom = np.concatenate([ytr[:, :T0], ytr[:, T0:].mean(axis=1, keepdims=True)], axis=1)
    return np.concatenate([top, bottom[:, None]], axis=1)


def _fit_batch_covariates(
    Yc: np.ndarray,
    ytr: np.ndarray,
    spec: _Spec,
    omega0: np.ndarray | None,
    lambda0: np.ndarray | None,
    Xc: np.ndarray,
    xtr: np.ndarray,
    fixed_weights: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_fit_batch` with covariates: synthdid's ``sc.weight.fw.covariates`` on the collapsed panel.

    As R: ``sdid`` updates both weights (intercepts on), ``sc`` fixes lambda at zero (no unit intercept),
    ``did`` fixes both at uniform and fits the coefficients only; no sparsification in this path.
    """
    B, n0, T = Yc.shape
    T0 = spec.T0
    if spec.method == "sc":
        lam0 = np.zeros((B, T0))
    elif lambda0 is None or spec.method == "did":
        lam0 = np.full((B, T0), 1.0 / T0)
    else:
        lam0 = lambda0
    om0 = np.full((B, n0), 1.0 / n0) if omega0 is None or spec.method == "did" else omega0
    lam, omega, beta = frank_wolfe_covariates(
        _collapse(Yc, ytr, T0),
        _collapse(Xc, xtr, T0),
        lam0,
        om0,
        zeta_lambda=spec.zeta_lambda,
        zeta_omega=spec.zeta_omega,
        lambda_intercept=True,
        omega_intercept=spec.method != "sc",
        update_lambda=spec.method == "sdid" and not fixed_weights,
        update_omega=spec.method != "did" and not fixed_weights,
        min_decrease=spec.min_decrease,
        max_iter=_MAX_ITER,
    )
    adj_c = Yc - np.einsum("bntc,bc->bnt", Xc, beta)
    adj_t = ytr - np.einsum("btc,bc->bt", xtr, beta)
    return _tau(adj_c, adj_t, omega, lam, T0), omega, lam, beta


# -- the panel -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Panel:
    Y: np.ndarray  # (N, T): controls first (sorted), then treated (sorted by start, then unit)
    N0: int
    T0: int
    units: np.ndarray
    times: np.ndarray
    starts: np.ndarray  # (N1,): index of each treated unit's first treated period
    X: np.ndarray | None = None  # (N, T, C): time-varying covariates, rows as Y
    covariates: tuple[str, ...] = ()

    def rows(self, index: Any) -> np.ndarray | None:
        """The covariates of rows ``index`` of Y (any numpy index), or None without covariates."""
        return None if self.X is None else self.X[index]


def _panel_matrices(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    treated: str,
    *,
    staggered: bool = False,
    covariates: list[str] | tuple[str, ...] = (),
) -> _Panel:
    """synthdid's ``panel.matrices``: a balanced panel, controls then treated, sorted.

    Block adoption (one start for every treated unit) unless ``staggered``; treated units are sorted
    by start, then by unit, and ``T0`` is the earliest start. ``covariates`` (time-varying columns)
    become ``X`` ``(N, T, C)`` in the same order.
    """
    one_column(outcome=outcome, unit=unit, time=time, treated=treated)
    covs = list(covariates)
    check_frame(
        data,
        roles={"outcome": outcome, "unit": unit, "time": time, "treated": treated}
        | {f"covariates[{k}]": c for k, c in enumerate(covs)},
        complete=[outcome, unit, time, treated, *covs],
        numeric=[outcome, treated, *covs],
        finite=[outcome, *covs],
    )
    clash = [c for c in covs if c in (outcome, unit, time, treated)]
    if clash or len(set(covs)) < len(covs):
        raise DesignError(
            f"covariates={covs}: a covariate must be another column than outcome, unit, time and treated, "
            "and named once"
        )
    w = data[treated].to_numpy(dtype=float)
    bad = ~np.isin(w, (0.0, 1.0))
    if bad.any():
        raise DataError(
            f"column '{treated}': the treatment indicator must be 0 or 1; found {sorted(set(w[bad]))[:5]}; "
            "code it 1 for a treated unit in its treated periods, 0 otherwise"
        )
    problems = duplicate_rows(data, [unit, time])
    if problems:
        raise DataError(problems)
    units, ucode = np.unique(data[unit].to_numpy(), return_inverse=True)
    times, tcode = np.unique(data[time].to_numpy(), return_inverse=True)
    N, T = units.size, times.size
    if len(data) != N * T:
        counts = np.bincount(ucode, minlength=N)
        short = units[counts < T]
        raise UnbalancedPanelError(
            f"unbalanced panel: {short.size} of {N} units are not observed in all {T} periods "
            f"({where_units(short)}); synthetic control needs a balanced panel: drop those units or fill the gaps"
        )
    Y = np.empty((N, T))
    Y[ucode, tcode] = data[outcome].to_numpy(dtype=float)
    X = None
    if covs:
        X = np.empty((N, T, len(covs)))
        X[ucode, tcode] = data[covs].to_numpy(dtype=float)
    W = np.zeros((N, T))
    W[ucode, tcode] = w
    if not W.any():
        raise DesignError(
            f"no treated unit: column '{treated}' is 0 in every row; mark a treated unit's treated periods with 1"
        )
    switch_off = np.any(np.diff(W, axis=1) < 0, axis=1)
    if switch_off.any():
        raise DesignError(
            f"treatment switches off: {where_units(units[switch_off])} go from '{treated}' = 1 back to 0; "
            "synthetic control needs a treatment that stays on once it starts"
        )
    ever = W.any(axis=1)
    first = np.where(ever, np.argmax(W > 0, axis=1), T)
    starts = np.unique(first[ever])
    if starts.size > 1 and not staggered:
        raise DesignError(
            f"staggered adoption: treated units start in {starts.size} different periods "
            f"({', '.join(str(times[s]) for s in starts[:5])}); only block adoption (one start period for every "
            "treated unit) is supported: estimate each adoption cohort separately against the never-treated units"
        )
    T0 = int(starts[0])
    if T0 < 2:
        raise DesignError(
            f"{T0} pre-treatment period(s) before {times[T0]}; synthetic control needs at least 2 "
            "(the noise level is the spread of the controls' period-to-period changes)"
        )
    N0 = int((~ever).sum())
    if N0 < 2:
        raise DesignError(f"{N0} control unit(s); synthetic control needs at least 2 never-treated units")
    treated_units = np.flatnonzero(ever)
    treated_units = treated_units[np.argsort(first[treated_units], kind="stable")]  # by start, then unit
    order = np.concatenate([np.flatnonzero(~ever), treated_units])
    return _Panel(
        Y=Y[order],
        N0=N0,
        T0=T0,
        units=units[order],
        times=times,
        starts=first[treated_units],
        X=None if X is None else X[order],
        covariates=tuple(covs),
    )


# -- inference -------------------------------------------------------------------------------------------------------
def _n_assignments(n_control: int, sizes: list[int]) -> int:
    """Distinct placebo assignments: which controls are pseudo-treated, and (staggered) in which cohort."""
    n, out = n_control, 1
    for size in sizes:
        out *= math.comb(n, size)
        n -= size
    return out


def _check_placebo(n_control: int, sizes: list[int], alpha: float) -> None:
    """Raise unless there are more controls than treated units and a placebo p-value can reach ``alpha``."""
    n1 = sum(sizes)
    if n_control <= n1:
        raise DesignError(
            f"{n_control} control and {n1} treated units: placebo inference needs more controls than treated units"
        )
    n_assign = _n_assignments(n_control, sizes)
    if 1 / (n_assign + 1) > alpha:
        need = n1 + 1
        while _n_assignments(need, sizes) + 1 < 1 / alpha:
            need += 1
        raise DesignError(
            f"too few control units for placebo inference: {n_control} controls and {n1} treated unit(s) give "
            f"{n_assign} placebo assignments, so the smallest placebo p-value is 1/{n_assign + 1} = "
            f"{1 / (n_assign + 1):.3g}, above alpha = {alpha}; a p-value resolution of {alpha} needs at least "
            f"{need} control units (with J controls and one treated unit the smallest p is 1/(J+1)); "
            "add control units, raise alpha, or use inference='jackknife' with several treated units"
        )


def _placebo(
    panel: _Panel, spec: _Spec, omega: np.ndarray, lam: np.ndarray, n_reps: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """synthdid's ``placebo_se`` draws, and (one treated unit) the estimate of every distinct placebo.

    A replication makes ``N1`` randomly chosen controls pseudo-treated and re-fits the weights on the
    rest, starting from the fitted weights, with the noise level and penalties of the fit (as R).
    The estimate depends only on which controls are pseudo-treated, so each distinct set is fitted
    once, all in one batch, and the draws are read off. Returns ``(draws (n_reps,), exhaustive)``,
    ``exhaustive`` being the ``N0`` placebo estimates when one unit is treated (else empty).
    """
    N0, N1 = panel.N0, panel.Y.shape[0] - panel.N0
    sets = np.sort(np.stack([rng.permutation(N0)[N0 - N1 :] for _ in range(n_reps)]), axis=1)
    if N1 == 1:
        unique, inverse = np.arange(N0)[:, None], sets[:, 0]  # every control, so the exhaustive set comes for free
    else:
        unique, inverse = np.unique(sets, axis=0, return_inverse=True)
        inverse = inverse.ravel()
    mask = np.ones((unique.shape[0], N0), dtype=bool)
    mask[np.arange(unique.shape[0])[:, None], unique] = False
    rest = np.stack([np.flatnonzero(m) for m in mask])  # (S, N0 - N1) remaining controls, in order
    Yc0, Xc0 = panel.Y[:N0], panel.rows(slice(0, N0))
    tau, _, _, _ = _fit_batch(
        Yc0[rest],
        Yc0[unique].mean(axis=1),
        spec,
        omega0=_sum_normalize(omega[rest]),
        lambda0=np.broadcast_to(lam, (rest.shape[0], lam.size)).copy(),
        Xc=None if Xc0 is None else Xc0[rest],
        xtr=None if Xc0 is None else Xc0[unique].mean(axis=1),
    )
    return tau[inverse], (tau if N1 == 1 else np.empty(0))


def _jackknife(panel: _Panel, spec: _Spec, omega: np.ndarray, lam: np.ndarray) -> float:
    """synthdid's ``jackknife_se``: leave one unit out with the weights fixed (renormalised), vectorised."""
    Y, N0 = panel.Y, panel.N0
    if panel.X is not None:
        u_c, u_t = _jackknife_covariates(panel, spec, omega, lam)
    else:
        u_c, u_t = _jackknife_cohort(Y[:N0], Y[N0:], omega, lam, panel.T0)
    u = np.concatenate([u_c, u_t])
    n = u.size
    return float(np.sqrt((n - 1) / n * (n - 1) * np.var(u, ddof=1)))


def _jackknife_covariates(
    panel: _Panel, spec: _Spec, omega: np.ndarray, lam: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out estimates with covariates: the weights fixed (omega renormalised), the coefficients
    re-fitted (synthdid's jackknife_se with update.omega = update.lambda = FALSE)."""
    Y, X, N0 = panel.Y, panel.X, panel.N0
    assert X is not None
    N1 = Y.shape[0] - N0
    rest = np.array([np.delete(np.arange(N0), j) for j in range(N0)])  # (N0, N0 - 1)
    lam_c = np.broadcast_to(lam, (N0, lam.size)).copy()
    u_c, _, _, _ = _fit_batch(
        Y[rest],
        np.broadcast_to(Y[N0:].mean(axis=0), (N0, Y.shape[1])).copy(),
        spec,
        omega0=_sum_normalize(omega[rest]),
        lambda0=lam_c,
        Xc=X[rest],
        xtr=np.broadcast_to(X[N0:].mean(axis=0), (N0, *X.shape[1:])).copy(),
        fixed_weights=True,
    )
    if N1 < 2:
        return u_c, np.full(N1, np.nan)
    others = np.array([np.delete(np.arange(N0, N0 + N1), j) for j in range(N1)])  # (N1, N1 - 1)
    u_t, _, _, _ = _fit_batch(
        np.broadcast_to(Y[:N0], (N1, *Y[:N0].shape)).copy(),
        Y[others].mean(axis=1),
        spec,
        omega0=np.broadcast_to(omega, (N1, omega.size)).copy(),
        lambda0=np.broadcast_to(lam, (N1, lam.size)).copy(),
        Xc=np.broadcast_to(X[:N0], (N1, *X[:N0].shape)).copy(),
        xtr=X[others].mean(axis=1),
        fixed_weights=True,
    )
    return u_c, u_t


def _bootstrap(
    panel: _Panel, spec: _Spec, omega: np.ndarray, lam: np.ndarray, n_reps: int, rng: np.random.Generator
) -> np.ndarray:
    """synthdid's ``bootstrap_se`` draws: resample units, keep draws with both groups, re-fit warm-started."""
    Y, N0 = panel.Y, panel.N0
    N = Y.shape[0]
    draws: list[np.ndarray] = []
    while len(draws) < n_reps:
        ind = np.sort(rng.integers(0, N, size=N))
        if (ind < N0).all() or (ind >= N0).all():
            continue
        draws.append(ind)
    n0s = np.array([(d < N0).sum() for d in draws])
    out = np.empty(n_reps)
    # draws with the same number of controls share array shapes: one batch each
    for n0 in np.unique(n0s):
        which = np.flatnonzero(n0s == n0)
        idx = np.stack([draws[k] for k in which])
        ctrl, trt = idx[:, :n0], idx[:, n0:]
        tau, _, _, _ = _fit_batch(
            Y[ctrl],
            Y[trt].mean(axis=1),
            spec,
            omega0=_sum_normalize(omega[ctrl]),
            lambda0=np.broadcast_to(lam, (which.size, lam.size)).copy(),
            Xc=panel.rows(ctrl),
            xtr=None if panel.X is None else panel.X[trt].mean(axis=1),
        )
        out[which] = tau
    return out


# -- staggered adoption ----------------------------------------------------------------------------------------------
# synthdid handles block adoption only. With several adoption periods we follow Arkhangelsky et al. (2021,
# appendix) and Clarke, Pailanir, Athey and Imbens (2023, Stata ``sdid``): one block estimate per adoption
# cohort against the never-treated units (all periods, the cohort's own pre-periods, noise level and penalties),
# averaged with weights proportional to the cohort's treated unit-periods (N1_a * T1_a).
@dataclass(frozen=True)
class _Cohorts:
    starts: np.ndarray  # (C,) start index of each cohort
    members: tuple[np.ndarray, ...]  # rows of Y of each cohort's units
    weights: np.ndarray  # (C,) N1_a T1_a / sum
    specs: tuple[_Spec, ...]


def _cohorts(panel: _Panel, method: str) -> _Cohorts:
    Y, N0 = panel.Y, panel.N0
    T = Y.shape[1]
    starts, sizes = np.unique(panel.starts, return_counts=True)
    specs = []
    for start, n1 in zip(starts, sizes, strict=True):
        noise = float(np.std(np.diff(Y[:N0, :start], axis=1), ddof=1))
        eta = _ETA_OMEGA_SC if method == "sc" else (n1 * (T - start)) ** 0.25
        specs.append(_Spec(method, eta * noise, _ETA_LAMBDA * noise, _MIN_DECREASE * noise, int(start)))
    cells = sizes * (T - starts)
    members = tuple(N0 + np.flatnonzero(panel.starts == a) for a in starts)
    return _Cohorts(starts=starts, members=members, weights=cells / cells.sum(), specs=tuple(specs))


def _combine(taus: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted average over cohorts (last axis), the weights renormalised over the cohorts present (not NaN)."""
    t = np.atleast_2d(taus)
    present = ~np.isnan(t)
    w = np.where(present, weights, 0.0)
    out = np.einsum("rc,rc->r", np.where(present, t, 0.0), w) / w.sum(axis=1)
    return out if taus.ndim > 1 else out[0]


def _staggered_placebo(
    panel: _Panel, co: _Cohorts, fits: list[tuple[np.ndarray, np.ndarray]], n_reps: int, rng: np.random.Generator
) -> np.ndarray:
    """Placebo draws: N1 random controls get the treated units' adoption periods; re-fit each cohort, batched."""
    N0 = panel.N0
    sizes = [m.size for m in co.members]
    N1 = sum(sizes)
    perms = np.stack([rng.permutation(N0) for _ in range(n_reps)])
    rest = np.sort(perms[:, : N0 - N1], axis=1)
    taus = np.empty((n_reps, len(sizes)))
    offset = N0 - N1
    Yc0 = panel.Y[:N0]
    for c, (size, spec, (omega, lam)) in enumerate(zip(sizes, co.specs, fits, strict=True)):
        pseudo = perms[:, offset : offset + size]
        offset += size
        taus[:, c], _, _, _ = _fit_batch(
            Yc0[rest],
            Yc0[pseudo].mean(axis=1),
            spec,
            omega0=_sum_normalize(omega[rest]),
            lambda0=np.broadcast_to(lam, (n_reps, lam.size)).copy(),
        )
    return taus


def _staggered_bootstrap(
    panel: _Panel, co: _Cohorts, fits: list[tuple[np.ndarray, np.ndarray]], n_reps: int, rng: np.random.Generator
) -> np.ndarray:
    """Bootstrap draws: resample units (redraw without controls or treated); cohorts absent from a draw are NaN."""
    Y, N0 = panel.Y, panel.N0
    N = Y.shape[0]
    draws: list[np.ndarray] = []
    while len(draws) < n_reps:
        ind = np.sort(rng.integers(0, N, size=N))
        if not ((ind < N0).all() or (ind >= N0).all()):
            draws.append(ind)
    n0s = np.array([(d < N0).sum() for d in draws])
    taus = np.full((n_reps, len(co.members)), np.nan)
    for n0 in np.unique(n0s):
        which = np.flatnonzero(n0s == n0)
        ctrl = np.stack([draws[k][:n0] for k in which])
        for c, (rows, spec, (omega, lam)) in enumerate(zip(co.members, co.specs, fits, strict=True)):
            picked = [draws[k][np.isin(draws[k], rows)] for k in which]
            here = np.array([p.size > 0 for p in picked])
            if not here.any():
                continue
            ytr = np.stack([Y[p].mean(axis=0) for p, h in zip(picked, here, strict=True) if h])
            taus[which[here], c], _, _, _ = _fit_batch(
                Y[ctrl[here]],
                ytr,
                spec,
                omega0=_sum_normalize(omega[ctrl[here]]),
                lambda0=np.broadcast_to(lam, (int(here.sum()), lam.size)).copy(),
            )
    return taus


def _staggered_jackknife(
    panel: _Panel, co: _Cohorts, fits: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[float, np.ndarray]:
    """Leave one unit out with every cohort's weights fixed; a cohort left without units drops out."""
    Y, N0 = panel.Y, panel.N0
    N = Y.shape[0]
    taus = np.empty((N, len(co.members)))
    for c, (rows, spec, (omega, lam)) in enumerate(zip(co.members, co.specs, fits, strict=True)):
        u_c, u_t = _jackknife_cohort(Y[:N0], Y[rows], omega, lam, spec.T0)
        full = _closed_form(Y[:N0], Y[rows].mean(axis=0), omega, lam, spec.T0)
        taus[:, c] = full
        taus[:N0, c] = u_c
        taus[rows, c] = u_t
    u = _combine(taus, co.weights)
    n = u.size
    se = float(np.sqrt((n - 1) / n * (n - 1) * np.var(u, ddof=1)))
    cohort_se = np.empty(len(co.members))
    for c, rows in enumerate(co.members):
        # a cohort's own jackknife: leave out each control and each of its units (not other cohorts' units)
        vals = taus[np.r_[np.arange(N0), rows], c]
        vals = vals[~np.isnan(vals)]
        m = vals.size
        cohort_se[c] = np.sqrt((m - 1) / m * (m - 1) * np.var(vals, ddof=1)) if m > 1 else np.nan
    return se, cohort_se


def _closed_form(Yc: np.ndarray, ytr: np.ndarray, omega: np.ndarray, lam: np.ndarray, T0: int) -> float:
    """The estimate for given weights: post-mean minus time-weighted pre-mean of the treated-synthetic gap."""
    d = ytr - omega @ Yc
    return float(d[T0:].mean() - d[:T0] @ lam)


def _jackknife_cohort(
    Yc: np.ndarray, Yt: np.ndarray, omega: np.ndarray, lam: np.ndarray, T0: int
) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out estimates with the weights fixed: each control (omega renormalised), each treated unit.

    All at once as matrices; a lone treated unit gives NaN (nothing is left to estimate).
    """
    N0, N1 = Yc.shape[0], Yt.shape[0]
    om = np.broadcast_to(omega, (N0, N0)).copy()
    np.fill_diagonal(om, 0.0)
    d_c = Yt.mean(axis=0) - _sum_normalize(om) @ Yc
    u_c = d_c[:, T0:].mean(axis=1) - d_c[:, :T0] @ lam
    if N1 < 2:
        return u_c, np.full(N1, np.nan)
    d_t = (N1 * Yt.mean(axis=0) - Yt) / (N1 - 1) - omega @ Yc
    return u_c, d_t[:, T0:].mean(axis=1) - d_t[:, :T0] @ lam


# -- the result ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False)
class SyntheticResult(Result):
    """The result of :func:`synthetic`: a :class:`~evaluator.results.base.Result` with its weights and paths.

    Attributes
    ----------
    unit_weights : pandas.Series
        The control units' weights (omega), indexed by unit; they sum to one.
    time_weights : pandas.Series
        The pre-periods' weights (lambda), indexed by period (zero for SC, uniform for DiD).
    trajectories : pandas.DataFrame
        Indexed by period: ``treated`` (mean of the treated units), ``synthetic`` (the weighted
        controls), ``difference``, ``post`` (a treated period) and ``time_weight``.
    placebo_estimates : numpy.ndarray
        With one treated unit, the estimate with each control unit as the pseudo-treated unit
        (the placebo-in-space distribution behind the permutation p-value); else the placebo draws.
    """

    unit_weights: pd.Series | pd.DataFrame = field(default_factory=lambda: pd.Series(dtype=float), repr=False)
    time_weights: pd.Series | pd.DataFrame = field(default_factory=lambda: pd.Series(dtype=float), repr=False)
    trajectories: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False)
    placebo_estimates: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    @property
    def weights(self) -> pd.DataFrame:
        """Unit and time weights in one long frame: ``kind`` ("unit" / "time"), ``name``, ``weight``.

        With staggered adoption a ``cohort`` column says whose weights they are.
        """
        parts = []
        for kind, w in (("unit", self.unit_weights), ("time", self.time_weights)):
            if isinstance(w, pd.Series):
                long = pd.DataFrame({"name": w.index, "weight": w.to_numpy()})
            else:
                long = w.rename_axis("name").reset_index().melt(id_vars="name", var_name="cohort", value_name="weight")
                long = long.dropna(subset=["weight"])
            parts.append(long.assign(kind=kind))
        out = pd.concat(parts, ignore_index=True)
        return out[["kind", *(c for c in out.columns if c != "kind")]]

    @property
    def cohorts(self) -> list[Any]:
        """The adoption periods (one for block adoption)."""
        if "cohort" in self.trajectories.columns:
            return list(dict.fromkeys(self.trajectories["cohort"]))
        return [self.info.get("first_treated")]

    def plot(
        self,
        ax: Any = None,
        kind: Literal["trajectories", "weights"] = "trajectories",
        cohort: Any = None,
        **kwargs: Any,
    ) -> Any:
        """The treated and synthetic trajectories, or the unit weights (``kind="weights"``); a matplotlib Figure.

        With staggered adoption, ``cohort`` (an adoption period; the first by default) says which to draw.
        """
        from evaluator.plots import synthetic as plots  # here: estimators never import matplotlib at load time

        choice("kind", kind, ("trajectories", "weights"))
        weights, paths, title = self.unit_weights, self.trajectories, self.estimator
        if isinstance(weights, pd.DataFrame):
            cohort = self.cohorts[0] if cohort is None else cohort
            choice("cohort", cohort, self.cohorts)
            weights = weights[cohort]
            paths = paths[paths["cohort"] == cohort].drop(columns="cohort")
            title = f"{title}: cohort {cohort}"
        if kind == "weights":
            return plots.unit_weight_plot(weights, ax=ax, **kwargs)
        return plots.trajectory_plot(paths, ax=ax, title=title, **kwargs)


# -- the estimator ---------------------------------------------------------------------------------------------------
def synthetic(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    treated: str,
    method: Method = "sdid",
    covariates: list[str] | None = None,
    inference: Inference | None = "placebo",
    n_reps: int = 200,
    seed: int | None = None,
    alpha: float = 0.05,
) -> SyntheticResult:
    r"""Synthetic difference-in-differences, synthetic control or DiD, as R's ``synthdid``.

    Parameters
    ----------
    data : pandas.DataFrame
        A balanced panel, one row per unit and period.
    outcome, unit, time : str
        Column names of the outcome, the unit and the period.
    treated : str
        A 0/1 column: 1 for a treated unit in its treated periods (as ``synthdid::panel.matrices``).
        A treated unit stays treated once it starts. Block adoption (one start for every treated
        unit) is synthdid itself; with several starts (staggered adoption) each adoption cohort is
        fitted against the never-treated units and the cohort estimates are averaged (see Notes).
    method : {"sdid", "sc", "did"}
        ``"sdid"``: synthdid_estimate (unit and time weights, intercept); ``"sc"``: sc_estimate
        (unit weights without intercept and with a tiny ridge, no time weights); ``"did"``:
        did_estimate (uniform weights).
    covariates : list of str, optional
        Time-varying covariates (numeric columns, complete), adjusted for as synthdid does: the outcome
        net of :math:`\sum_k \beta_k X_k` is what the weights balance, with :math:`\beta` fitted jointly
        with them (Frank-Wolfe steps for the weights, gradient steps for :math:`\beta`; R's
        ``sc.weight.fw.covariates``, no sparsification). Replications re-fit :math:`\beta` from zero;
        the jackknife keeps the weights and re-fits :math:`\beta`. ``info["covariates"]`` holds the
        coefficients. Block adoption only. As in R the covariates are not rescaled: give them a scale
        near the outcome's (the gradient steps for :math:`\beta` are in their units).
    inference : {"placebo", "jackknife", "bootstrap"} or None
        ``"placebo"`` (synthdid's placebo_se, for one or few treated units), ``"jackknife"`` and
        ``"bootstrap"`` (several treated units); ``None`` for the point estimate only.
    n_reps : int
        Replications of the placebo or bootstrap (R's default, 200).
    seed : int or None
        Seed of the replications. Units and periods are sorted first, so the same seed gives the
        same result whatever the order of the rows.
    alpha : float
        1 - confidence level; also the level the placebo p-value must be able to reach.

    Returns
    -------
    SyntheticResult
        One row ``att``. ``se`` is the chosen standard error and ``ci`` the normal interval
        ``estimate ± z se`` (as synthdid). With placebo inference ``pvalue`` is the permutation
        (placebo-in-space) p-value ``(1 + #{|placebo| >= |estimate|}) / (J + 1)`` over the ``J``
        distinct placebo estimates (one treated unit) or the ``n_reps`` draws; otherwise the
        normal p-value. ``info`` holds ``noise_level``, ``zeta_omega``, ``zeta_lambda``,
        ``permutation_pvalue``, ``p_resolution`` and the counts. With staggered adoption the table
        has a row ``cohort <start>`` per cohort after ``att`` (with ``cohort_weight``), and
        ``unit_weights`` / ``time_weights`` are frames with one column per cohort.

    Raises
    ------
    DataError
        Missing columns or values, a treatment column that is not 0/1, duplicate unit-periods.
    UnbalancedPanelError
        A unit is not observed in every period.
    DesignError
        No treated unit, a treatment that switches off, fewer than two pre-periods or control
        units, or too few controls for the chosen inference (the message says how many are needed
        for a placebo p-value that can reach ``alpha``).

    Notes
    -----
    With :math:`N_0` controls, :math:`N_1` treated units, :math:`T_0` pre- and :math:`T_1`
    post-periods, the estimate is

    .. math:: \hat\tau = \Big(\bar Y_{tr,post} - \sum_t \lambda_t \bar Y_{tr,t}\Big)
              - \sum_i \omega_i \Big(\bar Y_{i,post} - \sum_t \lambda_t Y_{it}\Big).

    The unit weights solve :math:`\min_{\omega_0, \omega \in \Delta} \sum_{t \le T_0}
    (\omega_0 + \omega' Y_{co,t} - \bar Y_{tr,t})^2 + \zeta_\omega^2 T_0 \|\omega\|^2` with
    :math:`\zeta_\omega = (N_1 T_1)^{1/4} \hat\sigma`, :math:`\hat\sigma` the standard deviation
    of the controls' first differences over the pre-periods; the time weights solve the
    analogous problem across controls, with :math:`\zeta_\lambda = 10^{-6} \hat\sigma`.
    Both are found by Frank-Wolfe (100 steps, weights below a quarter of the largest set to
    zero, then up to 10,000 steps, stopping when the objective falls by less than
    :math:`(10^{-5} \hat\sigma)^2`). The identifying assumption is that the weighted controls,
    shifted by a constant, would have followed the treated units' path without treatment.

    Staggered adoption (beyond synthdid, which refuses it) follows Arkhangelsky et al. (2021,
    appendix) and Stata's ``sdid`` (Clarke, Pailañir, Athey and Imbens 2023): cohort :math:`a`
    (start :math:`a`, :math:`N_a` units) is a block problem on the never-treated units and its own
    units over all periods, with its own noise level and penalties, and
    :math:`\hat\tau = \sum_a \frac{N_a T_{1a}}{\sum_b N_b T_{1b}} \hat\tau_a`. Its placebo gives
    random controls the treated units' adoption periods; its jackknife and bootstrap resample units,
    a cohort missing from a resample dropping out of the average.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> units, years = [f"u{i:02d}" for i in range(25)], range(2000, 2012)
    >>> df = pd.DataFrame([(u, y) for u in units for y in years], columns=["unit", "year"])
    >>> level = df["unit"].str[1:].astype(int).to_numpy()
    >>> df["treated"] = ((df["unit"] == "u00") & (df["year"] >= 2008)).astype(int)
    >>> df["y"] = level + 0.5 * (df["year"] - 2000) + rng.normal(0, 0.1, len(df)) + 2.0 * df["treated"]
    >>> fit = synthetic(df, outcome="y", unit="unit", time="year", treated="treated", seed=1)
    >>> round(fit.estimate), fit.info["n_control"], float(round(fit.unit_weights.sum(), 6))
    (2, 24, 1.0)
    """
    choice("method", method, ("sdid", "sc", "did"))
    choice("inference", inference, ("placebo", "jackknife", "bootstrap", None))
    if isinstance(covariates, str):
        covariates = [covariates]
    covs = list(covariates or [])
    if not (isinstance(n_reps, int | np.integer) and n_reps >= 2):
        raise ValueError(f"n_reps={n_reps!r}: need an integer of at least 2 replications")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r} must be between 0 and 1")
    panel = _panel_matrices(data, outcome, unit, time, treated, staggered=True, covariates=covs)
    if np.unique(panel.starts).size > 1:
        if covs:
            raise NotImplementedError(
                "covariates with staggered adoption are not supported yet: fit each adoption cohort against the "
                "never-treated units (block adoption, with covariates), or leave covariates=None"
            )
        return _synthetic_staggered(
            panel,
            method=method,
            inference=inference,
            n_reps=n_reps,
            seed=seed,
            alpha=alpha,
            outcome=outcome,
            unit=unit,
            time=time,
        )
    Y, N0, T0 = panel.Y, panel.N0, panel.T0
    N, T = Y.shape
    N1, T1 = N - N0, T - T0

    # synthdid's noise level: sd of all first differences of the controls over the pre-periods
    noise = float(np.std(np.diff(Y[:N0, :T0], axis=1), ddof=1))
    eta_omega = _ETA_OMEGA_SC if method == "sc" else (N1 * T1) ** 0.25
    spec = _Spec(
        method=method,
        zeta_omega=eta_omega * noise,
        zeta_lambda=_ETA_LAMBDA * noise,
        min_decrease=_MIN_DECREASE * noise,
        T0=T0,
    )
    X = panel.X
    tau_b, omega_b, lam_b, beta_b = _fit_batch(
        Y[None, :N0],
        Y[None, N0:].mean(axis=1),
        spec,
        Xc=None if X is None else X[None, :N0],
        xtr=None if X is None else X[None, N0:].mean(axis=1),
    )
    tau, omega, lam, beta = float(tau_b[0]), omega_b[0], lam_b[0], beta_b[0]
    if X is not None:  # the rest of the page reads the outcome net of the covariates, as synthdid's plots
        Y = Y - X @ beta

    rng = np.random.default_rng(seed)
    info: dict[str, Any] = {
        "method": method,
        "n_units": N,
        "n_treated": N1,
        "n_control": N0,
        "n_periods": T,
        "n_pre": T0,
        "n_post": T1,
        "first_treated": panel.times[T0].item() if hasattr(panel.times[T0], "item") else panel.times[T0],
        "noise_level": noise,
        "zeta_omega": spec.zeta_omega,
        "zeta_lambda": spec.zeta_lambda,
        "seed": seed,
        "covariates": dict(zip(panel.covariates, beta.tolist(), strict=True)),
    }
    se, pvalue, placebo = float("nan"), None, np.empty(0)
    if inference == "placebo":
        _check_placebo(N0, [N1], alpha)
        draws, exhaustive = _placebo(panel, spec, omega, lam, n_reps, rng)
        se = float(np.sqrt((n_reps - 1) / n_reps) * np.std(draws, ddof=1))
        placebo = exhaustive if N1 == 1 else draws
        # at least as large in absolute value; a small tolerance so ties in floating point count as ties
        hits = int(np.sum(np.abs(placebo) >= abs(tau) * (1 - 1e-12)))
        pvalue = (1 + hits) / (placebo.size + 1)
        info.update(
            n_reps=n_reps,
            placebo_draws=draws,
            permutation_pvalue=pvalue,
            p_resolution=1 / (placebo.size + 1),
        )
        how = (
            f"placebo SE (synthdid placebo_se, {n_reps} replications, weights re-fitted); "
            f"permutation p-value over {placebo.size} placebo estimates"
        )
    elif inference == "jackknife":
        if N1 < 2:
            raise DesignError(
                "jackknife inference needs at least 2 treated units (with one the leave-one-out estimate is "
                "undefined); use inference='placebo'"
            )
        se = _jackknife(panel, spec, omega, lam)
        how = "jackknife SE (synthdid jackknife_se, weights fixed); normal p-value and interval"
    elif inference == "bootstrap":
        if N1 < 2:
            raise DesignError(
                "bootstrap inference needs at least 2 treated units (a resample without the treated unit "
                "identifies nothing); use inference='placebo'"
            )
        boot = _bootstrap(panel, spec, omega, lam, n_reps, rng)
        se = float(np.sqrt((n_reps - 1) / n_reps) * np.std(boot, ddof=1))
        info.update(n_reps=n_reps, boot_estimates=boot)
        how = f"bootstrap SE (synthdid bootstrap_se, {n_reps} unit resamples, weights re-fitted); normal p-value"
    else:
        how = "none (point estimate only)"

    table = tidy_table(["att"], [tau], [se], alpha=alpha)
    if pvalue is not None:
        table["p_value"] = pvalue
    ytr = Y[N0:].mean(axis=0)
    synth = omega @ Y[:N0]
    index = pd.Index(panel.times, name=time)
    trajectories = pd.DataFrame(
        {
            "treated": ytr,
            "synthetic": synth,
            "difference": ytr - synth,
            "post": np.arange(T) >= T0,
            "time_weight": np.concatenate([lam, np.zeros(T1)]),
        },
        index=index,
    )
    notes = []
    if covs:
        notes.append(
            "covariate-adjusted: the weights and the coefficients of "
            + ", ".join(f"{c} ({b:.4g})" for c, b in info["covariates"].items())
            + " were fitted together (synthdid's covariate solver); trajectories show the outcome net of them"
        )
    if method != "did":
        # outside the convex hull: the weighted controls cannot reach the treated path (levels for SC, changes for SDID)
        resid = trajectories["difference"].to_numpy()[:T0]
        if method == "sdid":
            resid = resid - resid.mean()
        rmse = float(np.sqrt(np.mean(resid**2)))
        info["pre_rmse"] = rmse
        if rmse > 2 * noise:
            notes.append(
                f"poor pre-period fit: the synthetic comparison misses the treated path by {rmse:.3g} (RMSE) "
                f"against a period-to-period noise of {noise:.3g}; the treated unit may lie outside the "
                "controls' convex hull; look at result.plot()"
            )
            warnings.warn(notes[-1], EvaluatorWarning, stacklevel=2)
    return SyntheticResult(
        _NAMES[method],
        table,
        nobs=N * T,
        headline="att",
        alpha=alpha,
        inference=how,
        outcome=outcome,
        notes=tuple(notes),
        info=info,
        unit_weights=pd.Series(omega, index=pd.Index(panel.units[:N0], name=unit), name="weight"),
        time_weights=pd.Series(lam, index=pd.Index(panel.times[:T0], name=time), name="weight"),
        trajectories=trajectories,
        placebo_estimates=placebo,
    )


def _synthetic_staggered(
    panel: _Panel,
    *,
    method: str,
    inference: str | None,
    n_reps: int,
    seed: int | None,
    alpha: float,
    outcome: str,
    unit: str,
    time: str,
) -> SyntheticResult:
    """:func:`synthetic` with several adoption periods: one block fit per cohort, averaged by treated cells."""
    Y, N0 = panel.Y, panel.N0
    N, T = Y.shape
    N1 = N - N0
    co = _cohorts(panel, method)
    labels = [panel.times[a].item() if hasattr(panel.times[a], "item") else panel.times[a] for a in co.starts]
    fits, taus = [], []
    for rows, spec in zip(co.members, co.specs, strict=True):
        tau_b, omega_b, lam_b, _ = _fit_batch(Y[None, :N0], Y[rows].mean(axis=0)[None], spec)
        taus.append(float(tau_b[0]))
        fits.append((omega_b[0], lam_b[0]))
    tau_c = np.array(taus)
    att = float(co.weights @ tau_c)
    rng = np.random.default_rng(seed)
    sizes = [int(m.size) for m in co.members]
    se, cohort_se, pvalue = float("nan"), np.full(len(sizes), np.nan), None
    info: dict[str, Any] = {
        "method": method,
        "n_units": N,
        "n_treated": N1,
        "n_control": N0,
        "n_periods": T,
        "cohorts": labels,
        "cohort_weights": co.weights,
        "seed": seed,
    }
    if inference == "placebo":
        _check_placebo(N0, sizes, alpha)
        draws_c = _staggered_placebo(panel, co, fits, n_reps, rng)
        draws = draws_c @ co.weights
        scale = np.sqrt((n_reps - 1) / n_reps)
        se = float(scale * np.std(draws, ddof=1))
        cohort_se = scale * np.std(draws_c, axis=0, ddof=1)
        hits = int(np.sum(np.abs(draws) >= abs(att) * (1 - 1e-12)))
        pvalue = (1 + hits) / (n_reps + 1)
        info.update(n_reps=n_reps, placebo_draws=draws, permutation_pvalue=pvalue, p_resolution=1 / (n_reps + 1))
        how = (
            f"placebo SE ({n_reps} replications: random controls take the treated units' adoption periods, "
            "weights re-fitted); permutation p-value over the draws"
        )
        placebo = draws
    elif inference in ("jackknife", "bootstrap"):
        if N1 < 2:
            raise DesignError(f"{inference} inference needs at least 2 treated units; use inference='placebo'")
        placebo = np.empty(0)
        if inference == "jackknife":
            se, cohort_se = _staggered_jackknife(panel, co, fits)
            how = "jackknife SE (leave one unit out, weights fixed, cohorts averaged by treated cells); normal p-value"
        else:
            draws_c = _staggered_bootstrap(panel, co, fits, n_reps, rng)
            draws = _combine(draws_c, co.weights)
            scale = np.sqrt((n_reps - 1) / n_reps)
            se = float(scale * np.std(draws, ddof=1))
            cohort_se = scale * np.nanstd(draws_c, axis=0, ddof=1)
            info.update(n_reps=n_reps, boot_estimates=draws)
            how = f"bootstrap SE ({n_reps} unit resamples, weights re-fitted); normal p-value"
    else:
        placebo = np.empty(0)
        how = "none (point estimate only)"
    table = tidy_table(
        ["att", *(f"cohort {a}" for a in labels)],
        [att, *tau_c],
        [se, *cohort_se],
        alpha=alpha,
        cohort=[None, *labels],
        cohort_weight=[1.0, *co.weights],
        n_treated=[N1, *sizes],
    )
    if pvalue is not None:
        table.loc[0, "p_value"] = pvalue
    frames = []
    unit_w = pd.DataFrame(index=pd.Index(panel.units[:N0], name=unit))
    time_w = pd.DataFrame(index=pd.Index(panel.times, name=time))
    for label, rows, spec, (omega, lam) in zip(labels, co.members, co.specs, fits, strict=True):
        ytr, synth = Y[rows].mean(axis=0), omega @ Y[:N0]
        lam_full = np.concatenate([lam, np.zeros(T - spec.T0)])
        frames.append(
            pd.DataFrame(
                {
                    "cohort": label,
                    "treated": ytr,
                    "synthetic": synth,
                    "difference": ytr - synth,
                    "post": np.arange(T) >= spec.T0,
                    "time_weight": lam_full,
                },
                index=pd.Index(panel.times, name=time),
            )
        )
        unit_w[label] = omega
        time_w[label] = np.where(np.arange(T) < spec.T0, lam_full, np.nan)
    return SyntheticResult(
        f"{_NAMES[method]}, staggered adoption ({len(labels)} cohorts)",
        table,
        nobs=N * T,
        headline="att",
        alpha=alpha,
        inference=how,
        outcome=outcome,
        info=info,
        unit_weights=unit_w,
        time_weights=time_w,
        trajectories=pd.concat(frames),
        placebo_estimates=placebo,
    )


def placebo_in_time(
    data: pd.DataFrame,
    *,
    outcome: str,
    unit: str,
    time: str,
    treated: str,
    periods_back: int | None = None,
    method: Method = "sdid",
    covariates: list[str] | None = None,
    inference: Inference | None = "placebo",
    n_reps: int = 200,
    seed: int | None = None,
    alpha: float = 0.05,
) -> SyntheticResult:
    """A placebo in time: the same estimator on the pre-periods only, with a fake start ``periods_back`` earlier.

    The post-periods are dropped and the treated units are marked treated from ``periods_back``
    periods before the real start. With no effect before the real start, the estimate should be
    near zero; a large one says the synthetic comparison does not track the treated path.

    Parameters
    ----------
    data, outcome, unit, time, treated
        As :func:`synthetic`.
    periods_back : int or None
        How many pre-periods become fake post-periods; by default as many as there are real
        post-periods, but at most half of the pre-periods (at least two remain before the fake start).
    method, covariates, inference, n_reps, seed, alpha
        As :func:`synthetic`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame([(f"u{i:02d}", y) for i in range(25) for y in range(2000, 2012)], columns=["unit", "year"])
    >>> df["treated"] = ((df["unit"] == "u00") & (df["year"] >= 2008)).astype(int)
    >>> df["y"] = 0.5 * (df["year"] - 2000) + rng.normal(0, 0.1, len(df)) + 2.0 * df["treated"]
    >>> check = placebo_in_time(df, outcome="y", unit="unit", time="year", treated="treated", seed=1)
    >>> check.info["fake_start"], abs(check.estimate) < 0.3
    (2004, True)
    """
    panel = _panel_matrices(data, outcome, unit, time, treated)
    T0, T = panel.T0, panel.times.size
    if periods_back is None:
        periods_back = max(1, min(T - T0, T0 // 2))
    if not (isinstance(periods_back, int | np.integer) and 1 <= periods_back <= T0 - 2):
        raise DesignError(
            f"periods_back={periods_back!r}: with {T0} pre-periods a fake start needs 1 to {T0 - 2} periods back "
            "(at least two pre-periods must remain before it)"
        )
    start, fake = panel.times[T0], panel.times[T0 - periods_back]
    covs = [covariates] if isinstance(covariates, str) else list(covariates or [])
    pre = data.loc[data[time] < start, [outcome, unit, time, *covs]].copy()
    is_treated = pre[unit].isin(panel.units[panel.N0 :]).to_numpy()
    pre[treated] = (is_treated & (pre[time] >= fake).to_numpy()).astype(int)
    fit = synthetic(
        pre,
        outcome=outcome,
        unit=unit,
        time=time,
        treated=treated,
        method=method,
        covariates=covs or None,
        inference=inference,
        n_reps=n_reps,
        seed=seed,
        alpha=alpha,
    )
    info = dict(
        fit.info,
        fake_start=fake.item() if hasattr(fake, "item") else fake,
        real_start=start.item() if hasattr(start, "item") else start,
    )
    return dataclasses.replace(fit, estimator=f"{fit.estimator}: placebo in time (fake start {fake})", info=info)
