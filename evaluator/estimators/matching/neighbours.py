"""Nearest-neighbour search without a treated-by-pool matrix: 1-D scores and k-d trees."""

from __future__ import annotations

import math

import numpy as np
from scipy.spatial import cKDTree


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
    dk = np.minimum(d[:, min(k, m) - 1], width)  # a pool smaller than k: every control (as the 1-D search)
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
