"""Bootstrap signs keyed to unit ids (evaluator/inference/keyed_draws.py) and the draws built on them.

Keyed signs must (1) be a fair coin, independent across units and draws, (2) not depend on the
order or the split of the rows, so that shards add up to the whole, and (3) be summed the same by the
compiled loops as by the numpy product they replace.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluator.inference import keyed_draws
from evaluator.inference.compiled import available
from evaluator.inference.keyed_draws import _sign_bits, bootstrap_keys, seed_key, signed_sums


def test_signs_are_a_fair_coin_independent_across_units_and_draws() -> None:
    n, words = 20_000, 2
    bits = _sign_bits(bootstrap_keys(np.arange(n)), seed_key(5), 0, words).astype(float)
    v = 2 * bits - 1  # (units, 128 draws)
    se = 1 / np.sqrt(n)
    assert np.abs(v.mean(axis=0)).max() < 5 * se  # each draw: half the units +1
    corr = np.corrcoef(v.T)  # draws against draws, over the units
    off = corr[~np.eye(len(corr), dtype=bool)]
    assert np.abs(off).max() < 5 * se and abs(off.mean()) < se
    # neighbouring ids are not related either (the hash avalanches): units against units, over draws
    many = 2 * _sign_bits(bootstrap_keys(np.arange(64)), seed_key(5), 0, 64).astype(float) - 1  # 4096 draws
    c = np.corrcoef(many)[~np.eye(64, dtype=bool)]
    assert np.abs(c).max() < 5 / np.sqrt(many.shape[1])
    # another seed, other signs
    other = _sign_bits(bootstrap_keys(np.arange(n)), seed_key(6), 0, words)
    assert 0.45 < (other == bits).mean() < 0.55


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 300), st.integers(1, 200), st.integers(0, 2**32), st.data())
def test_sums_do_not_depend_on_row_order_or_split(n: int, n_boot: int, seed: int, data) -> None:
    rng = np.random.default_rng(seed)
    keys = bootstrap_keys(rng.choice(10**9, size=n, replace=False))
    Z = rng.normal(size=(n, 3)) * 10.0 ** rng.integers(-3, 4)
    key = seed_key(seed)
    whole = signed_sums(keys, Z, n_boot, key)
    perm = rng.permutation(n)
    cut = data.draw(st.integers(0, n))
    parts = signed_sums(keys[perm[:cut]], Z[perm[:cut]], n_boot, key) + signed_sums(
        keys[perm[cut:]], Z[perm[cut:]], n_boot, key
    )
    np.testing.assert_allclose(parts, whole, rtol=0, atol=1e-12 * np.abs(Z).sum())
    # one draw by hand: the signs are +-1 times Z
    signs = 2.0 * _sign_bits(keys, key, 0, 1)[:, 0] - 1
    np.testing.assert_allclose(whole[0], signs @ Z, rtol=1e-12, atol=1e-12 * np.abs(Z).sum())


def test_ids_are_keyed_by_value_whatever_their_type() -> None:
    k = bootstrap_keys(np.array([7, 8], dtype=np.int32))
    assert (k == bootstrap_keys(np.array([7.0, 8.0]))).all()
    assert (k == bootstrap_keys(pd.Series([7, 8], dtype="Int64"))).all()
    assert (k == bootstrap_keys(np.array([7, 8], dtype=object))).all()
    text = bootstrap_keys(np.array(["u7", "u8", "u7"], dtype=object))
    assert text[0] == text[2] != text[1]
    assert (bootstrap_keys(pd.Categorical(["u7", "u8"])) == text[:2]).all()
    assert len(set(bootstrap_keys(np.arange(100_000)).tolist())) == 100_000


@pytest.mark.skipif(not available(), reason="numba is not installed: signed_sums runs its numpy loops only")
@pytest.mark.parametrize(("n", "m", "n_boot"), [(1, 1, 1), (7, 3, 64), (9, 2, 65), (60_001, 5, 999), (50_000, 30, 199)])
def test_compiled_sums_equal_the_numpy_ones(monkeypatch, n, m, n_boot) -> None:
    """The compiled subset sums (8 units at a time, in threads from 50,000 units) against the 0/1 matrix product."""
    rng = np.random.default_rng(n)
    keys = bootstrap_keys(rng.choice(10**12, size=n, replace=False))
    Z = rng.normal(size=(n, m))
    key = seed_key(n_boot)
    fast = signed_sums(keys, Z, n_boot, key)
    monkeypatch.setattr(keyed_draws, "_compiled_bit_sums", lambda *args: None)
    slow = signed_sums(keys, Z, n_boot, key)
    assert fast.shape == slow.shape == (n_boot, m)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-12 * max(1.0, np.abs(Z).sum(axis=0).max()))
