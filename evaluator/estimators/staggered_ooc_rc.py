"""Out of core, an unbalanced panel used whole with time-invariant covariates (``method`` "reg", "ipw", "dr").

In memory (:mod:`evaluator.estimators.staggered_rc`) each ATT(g,t) of an unbalanced panel is DRDID's
repeated cross-section estimator on the rows of its two periods, and a unit's influence function is the sum
over its rows. Every quantity it needs is a sum over those rows (:func:`~evaluator.estimators.staggered_rc.
rc_group_sums`, :func:`~evaluator.estimators.staggered_rc.rc_score_sums`), so here the same functions run on
the rows of each block of units and the sums are added:

1. a pass forms each cell's group sums ``X'W[X | y]`` (the outcome regressions of the controls and the
   treated of each period follow), its rows and the range of its weights;
2. the propensity logit of each cell (on the cell's rows: a unit seen in both periods counts twice) is fitted
   as in memory, one Newton step per pass for every cell's logit at once
   (:class:`~evaluator.estimators.staggered_ooc._Logit`);
3. a pass at the fitted scores forms the trimmed odds' sums and each logit's information;
4. a last pass evaluates every row's influence function (:func:`~evaluator.estimators.staggered_rc.
   rc_influence`), sums it within the unit and reduces the units' functions as the balanced panel's
   (:func:`~evaluator.estimators.staggered_ooc.psi_totals`): ``psi'psi``, or per cluster, with the keyed
   bootstrap's sign sums and the restricted wild cluster bootstrap's per-(cluster, cell) sums.

The covariates must be constant within a unit (the first pass checks it, naming the units): in memory each
row takes its own values, which for such covariates are the unit's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from evaluator.data.shards import UnitBlock, check_block_rows
from evaluator.errors import DesignError
from evaluator.estimators.staggered import _num
from evaluator.estimators.staggered_ooc import (
    _check_covariates_ooc,
    _CovFindings,
    _Logit,
    _logit_eval,
    _Moments,
    _ps,
    _weighted_moments,
    influence_totals,
    psi_totals,
    unit_classes,
)
from evaluator.estimators.staggered_rc import (
    RcScoreSums,
    rc_group_sums,
    rc_influence,
    rc_parameters,
    rc_regressions,
    rc_score_sums,
)
from evaluator.inference.bootstrap import CellClusterSums

__all__ = ["rc_covariate_cells", "rc_units"]

#: A block's units as :func:`rc_units` gives them: class index, design (1, X), outcomes and observed indicators
#: of the periods kept, clusters, bootstrap keys, weights.
Units = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]


def rc_units(
    block: UnitBlock,
    *,
    roles: dict[str, str],
    times: np.ndarray,
    covariates: list[str],
    class_of: dict[float, int],
    kept: np.ndarray,
    clustered: bool,
    keyed: bool = False,
    weights: str | None = None,
    wscale: float = 1.0,
) -> Units:
    """A block's units of an unbalanced panel (a later pass, the block checked by the first).

    Returns the class index of each unit (into the classes estimated: late cohorts are in the never treated's),
    the design ``(1, X)`` (each unit's first row), the outcomes and observed indicators of the periods ``kept``
    (indices into ``times``; units x periods, 0 where not observed), the clusters, with ``keyed`` the bootstrap
    keys of the unit ids, and with ``weights`` the weights times ``wscale``. Units of cohorts not estimated
    (treated in the first period) and units without a row in the periods kept are left out.
    """
    _, layout = check_block_rows(block, roles, times)
    nu = len(layout.units)
    q = len(covariates) + 1
    if nu == 0:
        return (
            np.empty(0, dtype=np.int64),
            np.empty((0, q)),
            np.empty((0, len(kept))),
            np.empty((0, len(kept)), dtype=bool),
            None,
            np.empty(0, dtype=np.uint64) if keyed else None,
            None if weights is None else np.empty(0),
        )
    T = len(times)
    starts = np.flatnonzero(np.concatenate([[True], layout.unit[1:] != layout.unit[:-1]]))
    first = layout.rows[starts]
    Y = np.zeros((nu, T))
    O = np.zeros((nu, T), dtype=bool)
    Y[layout.unit, layout.period] = np.asarray(block.columns[roles["outcome"]], dtype=np.float64)[layout.rows]
    O[layout.unit, layout.period] = True
    Y, O = Y[:, kept], O[:, kept]
    X1 = np.ones((nu, q))
    for j, c in enumerate(covariates):
        X1[:, j + 1] = np.asarray(block.columns[c], dtype=np.float64)[first]
    hidx, keep, cl, keys, w = unit_classes(
        block,
        roles,
        first,
        class_of,
        clustered=clustered,
        keyed=keyed,
        weights=weights,
        wscale=wscale,
        observed=O.any(axis=1),
    )
    return hidx, X1[keep], Y[keep], O[keep], cl, keys, w


def _cell_rows(
    hidx: np.ndarray,
    X1: np.ndarray,
    Y: np.ndarray,
    O: np.ndarray,
    w: np.ndarray | None,
    cell: tuple[int, float, int, int, int, np.ndarray],
) -> tuple[np.ndarray, ...]:
    """A cell's rows among a block's units: the unit of each row, its outcome, ``post``, ``d``, design, weight."""
    _, _, ci, cur, base, ctrl = cell
    D = hidx == ci
    side = D | ctrl[hidx]
    u1 = np.flatnonzero(side & O[:, cur])
    u0 = np.flatnonzero(side & O[:, base])
    u = np.concatenate([u1, u0])
    y = np.concatenate([Y[u1, cur], Y[u0, base]])
    post = np.concatenate([np.ones(len(u1)), np.zeros(len(u0))])
    wr = np.ones(len(u)) if w is None else w[u]
    return u, y, post, D[u].astype(np.float64), X1[u], wr


def rc_covariate_cells(
    *,
    method: str,
    passes: Callable[[Callable[..., Any]], Iterator[Any]],
    plan: list[tuple[int, float, int, int, int, np.ndarray]],
    classes: list[float],
    glist: np.ndarray,
    pg: np.ndarray,
    n: int,
    times: np.ndarray,
    covs: list[str],
    cov_found: _CovFindings,
    clustered: bool,
    boot: tuple[int, int] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, CellClusterSums | None, int, int]:
    """ATT(g,t) with covariates on an unbalanced panel used whole, and the covariance of the cells and cohort shares.

    ``passes(fn)`` runs ``fn(hidx, X1, Y, O, cl, keys, w)`` (:func:`rc_units`) over every block and yields the
    results in order; ``plan`` is :func:`~evaluator.estimators.staggered_ooc._unbalanced`'s (cohort index, cohort,
    its class, current and base period among those kept, control classes). Returns the estimates, ``sigma``, the
    bootstrap draws, the restricted wild cluster bootstrap's sums, the control rows trimmed (summed over cells)
    and the passes made.
    """
    k = len(plan)
    G = len(glist)
    m = k + G
    q = len(covs) + 1
    live = [j for j, c in enumerate(plan) if c[3] != c[4]]
    cls = np.array(classes)
    share = (cls[:, None] == glist[None, :]).astype(np.float64)  # classes x cohorts

    # -- pass 1: each cell's group sums, rows, treated rows and the range of its weights; the covariates' moments
    def group_pass(hidx, X1, Y, O, cl, keys, w):
        Gs = np.zeros((k, 4, q, q + 1))
        counts = np.zeros((k, 2))
        lo, hi = np.full(k, np.inf), np.full(k, -np.inf)
        for j in live:
            u, y, post, d, X, wr = _cell_rows(hidx, X1, Y, O, w, plan[j])
            if not len(u):
                continue
            Gs[j] = rc_group_sums(y, post, d, X, wr)
            counts[j] = len(u), d.sum()
            lo[j], hi[j] = wr.min(), wr.max()
        # the covariates over every row kept, for the in-memory checks (constant, collinear)
        pooled = _weighted_moments(X1[:, 1:], O.sum(axis=1).astype(np.float64))
        return Gs, counts, lo, hi, pooled

    Gsum = np.zeros((k, 4, q, q + 1))
    counts = np.zeros((k, 2))
    wlo, whi = np.full(k, np.inf), np.full(k, -np.inf)
    pooled: _Moments | None = None
    for Gs, c, lo, hi, pm in passes(group_pass):
        Gsum += Gs
        counts += c
        wlo, whi = np.minimum(wlo, lo), np.maximum(whi, hi)
        if pm.n:
            pooled = pm if pooled is None else pooled.combine(pm)
    n_passes = 1
    if pooled is not None:
        _check_covariates_ooc(cov_found, pooled, 0)
    nrows = counts[:, 0]
    # each cell's weights normalised to mean 1 over its rows, as in memory
    wbar = np.ones(k)
    for j in live:
        wbar[j] = Gsum[j, :, 0, 0].sum() / nrows[j]
        Gsum[j] /= wbar[j]
    weighted_logit = whi > wlo  # in memory a cell's logit is weighted when its weights differ

    def fail(j: int, exc: Exception) -> DesignError:
        _, gv, _, cur, _, _ = plan[j]
        n_t = int(counts[j, 1])
        return DesignError(
            f"cannot fit the covariate models for ATT({_num(gv)},{_num(times[cur])}): {exc}; covariates "
            f"{covs} are (nearly) collinear within its {n_t} treated and {int(nrows[j]) - n_t} control rows"
        )

    fits: dict[int, Any] = {}
    for j in live:
        try:
            fits[j] = rc_regressions(Gsum[j], int(nrows[j]), method)
        except (np.linalg.LinAlgError, DesignError) as exc:
            raise fail(j, exc) from None

    # -- the propensity logits: one per cell, on its rows, Newton steps of all of them sharing the passes
    beta: dict[int, np.ndarray] = {}
    if method in ("ipw", "dr"):
        logits: dict[int, _Logit] = {}
        for j in live:
            Gj = Gsum[j]
            every = Gj.sum(axis=0)
            s_all, sx_all, xx_all = every[0, 0], every[:, 0], every[:, :q]
            s_d, sx_d = Gj[2, 0, 0] + Gj[3, 0, 0], Gj[2, :, 0] + Gj[3, :, 0]
            b0 = np.zeros(q)
            ybar = s_d / s_all
            if 0 < ybar < 1:
                b0[0] = np.log(ybar / (1 - ybar))
            eta0 = float(np.clip(b0[0], -35.0, 35.0))
            p0 = 1.0 / (1.0 + np.exp(-eta0))
            logits[j] = _Logit(
                sub=np.empty(0, dtype=bool),
                treated=np.empty(0, dtype=bool),
                beta=b0,
                ll=float(s_d * eta0 - s_all * np.logaddexp(0.0, eta0)),
                g=sx_d - p0 * sx_all,
                H=p0 * (1 - p0) * xx_all,
            )
        while True:
            for j, lg in logits.items():
                try:
                    lg.propose()
                except np.linalg.LinAlgError as exc:
                    raise fail(j, exc) from None
            moving = {j: lg.beta + lg.step for j, lg in logits.items() if lg.step is not None}
            if not moving:
                break

            def newton(hidx, X1, Y, O, cl, keys, w, moving=moving):
                out = {}
                for j, b in moving.items():
                    _, _, _, d, X, wr = _cell_rows(hidx, X1, Y, O, w, plan[j])
                    out[j] = _logit_eval(X, d, b, wr / wbar[j] if weighted_logit[j] else None)
                return out

            acc = {j: [0.0, np.zeros(q), np.zeros((q, q))] for j in moving}
            for res in passes(newton):
                for j, (ll, g, Hm) in res.items():
                    acc[j][0] += ll
                    acc[j][1] += g
                    acc[j][2] += Hm
            n_passes += 1
            for j in moving:
                logits[j].judge(*acc[j])
        beta = {j: lg.beta for j, lg in logits.items()}

    # -- the sums at the fitted scores, and every cell's parameters
    scores: dict[int, RcScoreSums | None] = dict.fromkeys(live)
    if beta:

        def at_fit(hidx, X1, Y, O, cl, keys, w):
            out = {}
            for j in live:
                _, y, post, d, X, wr = _cell_rows(hidx, X1, Y, O, w, plan[j])
                out[j] = rc_score_sums(y, post, d, X, wr / wbar[j], _ps(X, beta[j]))
            return out

        for res in passes(at_fit):
            for j, sc in res.items():
                prev = scores[j]
                scores[j] = sc if prev is None else prev + sc
        n_passes += 1
    att = np.zeros(k)
    params: dict[int, dict[str, Any]] = {}
    trimmed = 0
    for j in live:
        sc = scores[j]
        try:
            params[j] = rc_parameters(Gsum[j], int(nrows[j]), fits[j], sc, method)
        except np.linalg.LinAlgError as exc:
            raise fail(j, exc) from None
        att[j] = params[j]["att"]
        trimmed += 0 if sc is None else sc.trimmed

    # -- the influence functions: each row's, summed within its unit, reduced as the balanced panel's
    treated = np.array([[h == c[2] for c in plan] for h in range(len(classes))]).reshape(len(classes), k)
    control = np.array([c[5] for c in plan]).T.reshape(len(classes), k)
    cur_of = np.array([c[3] for c in plan], dtype=np.int64)
    base_of = np.array([c[4] for c in plan], dtype=np.int64)

    def influence(hidx, X1, Y, O, cl, keys, w):
        nu = len(hidx)
        psi = np.zeros((nu, m))
        for j in live:
            u, y, post, d, X, wr = _cell_rows(hidx, X1, Y, O, w, plan[j])
            ps = _ps(X, beta[j]) if j in beta else None
            inf = rc_influence(params[j], y, post, d, X, wr / wbar[j], ps) * (n / nrows[j])
            psi[:, j] = np.bincount(u, weights=inf, minlength=nu)
        psi[:, k:] = (share[hidx] if w is None else w[:, None] * share[hidx]) - pg
        either = O[:, cur_of] | O[:, base_of]  # a side's units: a row in either period of the cell
        return psi_totals(psi, treated[hidx] & either, control[hidx] & either, cl, keys, w, boot=boot, k=k)

    sigma, draws, wcr_sums = influence_totals(passes(influence), clustered=clustered, boot=boot, m=m, k=k, n=n)
    n_passes += 1
    return att, sigma, draws, wcr_sums, trimmed, n_passes
