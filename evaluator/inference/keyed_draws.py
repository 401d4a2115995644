"""Multiplier-bootstrap signs keyed to unit (or cluster) ids, so that a seed fixes the draws whatever the sharding.

A multiplier bootstrap draws one weight per unit and forms ``sum_i v_ib psi_i`` for each draw
``b``. Drawing the weights from one generator in row order ties them to the order in which
units are met: a panel read in shards (out of core, or on a cluster) would need every
shard's offset into the stream. Here the weight of unit ``i`` in draw ``b`` is a pure
function of (seed, the unit's id, b): bit ``b mod 64`` of a 64-bit hash of the id, the seed
and ``b // 64`` (SplitMix64's finaliser, a bijection with full avalanche, which is the
mixing step of a counter-based generator). So any shard can form its own partial sums
and the totals equal those of the whole panel, in any order, on any machine.

Ids are made into 64-bit keys by value: integers (and floats holding integers, as a
Parquet integer column with nulls arrives) by their value, other numbers by their bits,
text by a fixed-key SipHash (``pandas.util.hash_array``), so ``7``, ``7.0`` and ``np.int32(7)``
are one unit and the keys never depend on the process (unlike Python's ``hash``).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd

from evaluator.inference.compiled import jit

__all__ = ["bootstrap_keys", "seed_key", "signed_sums"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
#: Elements of the (units x draws) sign matrix formed at once: 64 MB of float64.
_CHUNK_ELEMENTS = 8_000_000


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser, elementwise on uint64 (wrapping arithmetic is the point)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def bootstrap_keys(ids: Any) -> np.ndarray:
    """64-bit keys of unit or cluster ids, equal for equal values whatever their dtype.

    Parameters
    ----------
    ids : array-like
        One id per unit (or cluster): integers, floats, text, dates or categories.

    Returns
    -------
    numpy.ndarray
        ``uint64`` keys, one per id.

    Examples
    --------
    >>> import numpy as np
    >>> k = bootstrap_keys(np.array([7, 8], dtype=np.int32))
    >>> bool((k == bootstrap_keys([7.0, 8.0])).all()), bool(k[0] != k[1])
    (True, True)
    >>> bool((bootstrap_keys(["a", "b"]) == bootstrap_keys(np.array(["a", "b"], dtype=object))).all())
    True
    """
    values = ids.to_numpy() if isinstance(ids, (pd.Series, pd.Index)) else ids
    if isinstance(values, pd.Categorical):
        values = np.asarray(values)
    v = np.asarray(values)
    if v.dtype.kind in "biu":
        return v.astype(np.int64).view(np.uint64)
    if v.dtype.kind in "mM":
        return v.view(np.int64).view(np.uint64)
    if v.dtype.kind == "f":
        f = v.astype(np.float64)
        whole = np.isfinite(f) & (f == np.round(f)) & (np.abs(f) < 2.0**63)
        as_int = np.where(whole, f, 0.0).astype(np.int64).view(np.uint64)
        return np.where(whole, as_int, f.view(np.uint64))
    kind = pd.api.types.infer_dtype(v, skipna=False)
    if kind == "integer":
        return v.astype(np.int64).view(np.uint64)
    if kind in ("floating", "mixed-integer-float"):
        return bootstrap_keys(v.astype(np.float64))
    return pd.util.hash_array(v.astype(str).astype(object), categorize=False)


def seed_key(seed: int | np.random.Generator | np.random.SeedSequence | None) -> int:
    """The 64-bit key of a bootstrap seed (fresh entropy for ``None``; a Generator is advanced once).

    Examples
    --------
    >>> seed_key(1) == seed_key(1), seed_key(1) == seed_key(2)
    (True, False)
    """
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(0, 2**63, dtype=np.int64))
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return int(ss.generate_state(1, dtype=np.uint64)[0])


def _sign_bits(keys: np.ndarray, key: int, first_word: int, n_words: int) -> np.ndarray:
    """(units x 64 n_words) bits: bit b of row i is unit i's bit for draw 64 first_word + b."""
    base = _mix(keys * _GOLDEN ^ np.uint64(key))
    words = np.arange(first_word + 1, first_word + n_words + 1, dtype=np.uint64) * _GOLDEN
    h = _mix(base[:, None] + words[None, :])
    return np.unpackbits(h.view(np.uint8).reshape(len(keys), 8 * n_words), axis=1, bitorder="little")


def _subset_sum_loops(keys: np.ndarray, Z: np.ndarray, key: np.uint64, n_words: int, out: np.ndarray) -> None:
    """Add ``sum_i bit_ib Z_i`` for the ``64 n_words`` draws into ``out`` (draws x columns), 8 units at a time.

    For a group of 8 units, the 256 sums of their rows over every subset are formed once (256 m additions);
    each draw then adds the one its 8 bits select. That is ``n/8 (256 + draws) m`` additions in place of
    ``n draws m`` multiply-adds and the (units x draws) 0/1 matrix a product needs: the signs are never
    stored. Compiled by numba (plain loops); ``_sign_bits`` is the same hash in numpy.
    """
    n, m = Z.shape
    golden = np.uint64(0x9E3779B97F4A7C15)
    m1 = np.uint64(0xBF58476D1CE4E5B9)
    m2 = np.uint64(0x94D049BB133111EB)
    s30, s27, s31, one = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(1)
    table = np.zeros((256, m))
    base = np.empty(8, dtype=np.uint64)
    h = np.empty(8, dtype=np.uint64)
    for g0 in range(0, n, 8):
        size = min(8, n - g0)
        for u in range(size):
            step = 1 << u
            for c in range(step):
                for col in range(m):
                    table[step + c, col] = table[c, col] + Z[g0 + u, col]
            z = (keys[g0 + u] * golden) ^ key
            z = (z ^ (z >> s30)) * m1
            z = (z ^ (z >> s27)) * m2
            base[u] = z ^ (z >> s31)
        for w in range(n_words):
            word = np.uint64(w + 1) * golden
            for u in range(size):
                z = base[u] + word
                z = (z ^ (z >> s30)) * m1
                z = (z ^ (z >> s27)) * m2
                h[u] = z ^ (z >> s31)
            for b in range(64):
                shift = np.uint64(b)
                idx = 0
                for u in range(size):
                    idx |= int((h[u] >> shift) & one) << u
                row = 64 * w + b
                for col in range(m):
                    out[row, col] += table[idx, col]


#: Units below which the compiled sums run in one thread (a thread's start costs more than it saves).
_THREADED_FROM = 50_000


def _compiled_bit_sums(keys: np.ndarray, Z: np.ndarray, key: int, n_words: int) -> np.ndarray | None:
    """``sum_i bit_ib Z_i`` for ``64 n_words`` draws by the compiled loops, in threads over the units; ``None``
    without numba."""
    fn = jit(_subset_sum_loops)
    if fn is None:
        return None
    n, m = Z.shape
    threads = min(os.cpu_count() or 1, 8) if n >= _THREADED_FROM else 1
    cuts = np.linspace(0, n // 8, threads + 1).astype(int) * 8
    cuts[-1] = n
    outs = [np.zeros((64 * n_words, m)) for _ in range(threads)]

    def part(t: int) -> None:
        a, b = cuts[t], cuts[t + 1]
        fn(keys[a:b], Z[a:b], np.uint64(key), n_words, outs[t])

    if threads == 1:
        part(0)
    else:
        with ThreadPoolExecutor(threads) as pool:  # the loops release the GIL (nogil)
            list(pool.map(part, range(threads)))
    return sum(outs[1:], outs[0])


def signed_sums(keys: np.ndarray, Z: np.ndarray, n_boot: int, key: int) -> np.ndarray:
    """``sum_i v_ib Z_i`` for draws ``b < n_boot``, with Rademacher signs ``v_ib`` keyed to ``keys``.

    Parameters
    ----------
    keys : (n,) uint64 array
        :func:`bootstrap_keys` of the rows' ids (distinct ids for independent signs).
    Z : (n,) or (n, m) array
        What the signs multiply.
    n_boot : int
        Number of draws.
    key : int
        :func:`seed_key` of the seed.

    Returns
    -------
    numpy.ndarray
        ``(n_boot, m)`` float64 (``(n_boot,)`` for a 1-D ``Z``). Summing the results of any
        split of the rows gives the result on all of them.

    Examples
    --------
    >>> import numpy as np
    >>> keys = bootstrap_keys(np.arange(1000))
    >>> Z = np.random.default_rng(0).normal(size=(1000, 2))
    >>> whole = signed_sums(keys, Z, 99, seed_key(3))
    >>> parts = signed_sums(keys[:400], Z[:400], 99, seed_key(3)) + signed_sums(keys[400:], Z[400:], 99, seed_key(3))
    >>> bool(np.allclose(whole, parts, rtol=0, atol=1e-12))
    True
    """
    Z = np.asarray(Z, dtype=np.float64)
    flat = Z.ndim == 1
    Z2 = Z[:, None] if flat else Z
    n, m = Z2.shape
    out = np.zeros((n_boot, m))
    if n == 0 or n_boot == 0:
        return out[:, 0] if flat else out
    keys = np.asarray(keys, dtype=np.uint64)
    colsum = Z2.sum(axis=0)
    bit_sums = _compiled_bit_sums(keys, np.ascontiguousarray(Z2), key, -(-n_boot // 64))
    if bit_sums is not None:  # v = 2 bit - 1, as below
        out = 2.0 * bit_sums[:n_boot] - colsum
        return out[:, 0] if flat else out
    # draws per chunk: a multiple of 64 (one hash word gives 64 draws), the chunk's signs under ~64 MB
    words_per_chunk = max(1, _CHUNK_ELEMENTS // (64 * n))
    done = 0
    while done < n_boot:
        nw = min(words_per_chunk, -(-(n_boot - done) // 64))
        b = min(64 * nw, n_boot - done)
        bits = _sign_bits(keys, key, done // 64, nw)[:, :b]
        # v = 2 bit - 1, so sum v Z = 2 bits'Z - sum Z; float64 throughout so that shards add up to 1e-15
        # (Z' bits)' rather than bits' Z: casting the transposed bit matrix costs ten times the product
        out[done : done + b] = (2.0 * (Z2.T @ bits.astype(np.float64)) - colsum[:, None]).T
        done += b
    return out[:, 0] if flat else out
