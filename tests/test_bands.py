"""Simultaneous (sup-t) bands always contain the pointwise intervals, and are unchanged where they already did.

A uniform band covers every row at once, so it can never be narrower than a row's pointwise
interval. Ours were, on cells resting on a single cluster (castle-doctrine shape: cohorts of one
state): the pointwise interval came from the restricted wild cluster bootstrap (test inversion),
the band from an unrestricted bootstrap's standard error times a sup-t critical value, and the
unrestricted draws miss the one cluster's variance. ``simultaneous_band`` now takes the union,
and the sup-t critical value is never below the pointwise normal one (R ``did``'s guard).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from evaluator.data.simulate import castle_like, sick_leave_sib
from evaluator.errors import FewClustersWarning
from evaluator.estimators.staggered import staggered_did
from evaluator.estimators.twfe import event_study
from evaluator.inference.bootstrap import simultaneous_band

pytestmark = pytest.mark.filterwarnings("ignore::evaluator.errors.EvaluatorWarning")

CASTLE = dict(outcome="l_homicide", unit="state", time="year", cohort="effyear")
SICK = dict(outcome="sick_days", unit="employee", time="month", cohort="first_treated")
AGGREGATIONS = ("dynamic", "group", "calendar")


def _band_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows that carry a band: every row but the headline aggregates and covariates."""
    keep = ~table["term"].isin(["overall", "post_avg"])
    if "event_time" in table:  # event study: the event-time rows (the reference row has no interval)
        keep &= table["event_time"].notna()
    return table[keep]


def assert_band_contains_pointwise(table: pd.DataFrame, what: str = "") -> int:
    """Every band row with a pointwise interval: the band contains it and is finite where it is. Returns rows seen."""
    rows = _band_rows(table)
    has_ci = rows["ci_low"].notna() & rows["ci_high"].notna()
    rows = rows[has_ci]
    lo, hi = rows["band_low"].to_numpy(float), rows["band_high"].to_numpy(float)
    clo, chi = rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float)
    bad = ~((lo <= clo + 1e-12) & (hi >= chi - 1e-12))
    assert not bad.any(), f"{what}: band narrower than the pointwise interval:\n{rows[bad].to_string()}"
    finite_ci = np.isfinite(clo) & np.isfinite(chi)
    assert np.isfinite(lo[finite_ci]).all() and np.isfinite(hi[finite_ci]).all(), f"{what}: band not finite"
    return len(rows)


def _check_staggered(data: pd.DataFrame, cols: dict, cluster: str | None, n_boot: int, seed: int) -> int:
    r = staggered_did(data, **cols, cluster=cluster, n_boot=n_boot, seed=seed)
    n = assert_band_contains_pointwise(r.table, f"att_gt cluster={cluster}")
    assert n == len(r.table.dropna(subset=["ci_low"]))  # every cell with an interval has a band
    for kind in AGGREGATIONS:
        n += assert_band_contains_pointwise(r.aggregate(kind).table, f"{kind} cluster={cluster}")
    return n


# -- the castle-doctrine shape: cohorts of one state -----------------------------------------------------------------
@pytest.mark.parametrize(("seed", "pretrend"), [(1, 0.1), (2, 0.0), (3, 0.1), (4, 0.0)])
def test_castle_like_bands_contain_pointwise_intervals(seed: int, pretrend: float) -> None:
    d = castle_like(seed=seed, pretrend=pretrend).data
    es = event_study(
        d, **CASTLE, cluster="state", leads=5, lags=5, inference="wild", n_boot=299, seed=seed
    )  # pointwise: restricted wild bootstrap (test inversion)
    assert assert_band_contains_pointwise(es.table, "event_study") == 10
    for cluster in (None, "state", "region"):  # multiplier by unit, by state; cluster bootstrap by 4 regions
        assert _check_staggered(d, CASTLE, cluster, 299, seed) > 50


def test_castle_like_reproduction_is_fixed_and_named() -> None:
    """The numbers of the report: e=5 rests on the 2005 state alone."""
    d = castle_like(seed=1, pretrend=0.1).data
    with pytest.warns(FewClustersWarning, match=r"bands of e=5 were widened.*fewer than 2 clusters of 'state'"):
        es = event_study(d, **CASTLE, cluster="state", leads=5, lags=5, inference="wild", n_boot=999, seed=1)
    row = es.table.set_index("term").loc["e=5"]
    assert row["ci_low"] == pytest.approx(-1.0576, abs=1e-3) and row["ci_high"] == pytest.approx(1.1441, abs=1e-3)
    assert (row["band_low"], row["band_high"]) == (row["ci_low"], row["ci_high"])  # was [0.164, 0.347]
    assert es.info["bands_widened"] == ["e=5"]
    assert any(n.startswith("simultaneous bands") for n in es.notes)
    # rows that rest on many states keep est +- c se
    e0 = es.table.set_index("term").loc["e=0"]
    c = es.info["sup_t_critical_value"]
    assert e0["band_low"] == pytest.approx(e0["estimate"] - c * e0["std_error"], rel=1e-12)

    r = staggered_did(d, **CASTLE, cluster="region", n_boot=999, seed=1)
    with pytest.warns(FewClustersWarning, match=r"2 rest on fewer than 2 clusters \(e=-8, e=5\)"):
        dyn = r.aggregate("dynamic")
    row = dyn.table.set_index("term").loc["e=5"]
    assert row["ci_low"] == pytest.approx(-0.1018, abs=1e-3) and row["ci_high"] == pytest.approx(0.9146, abs=1e-3)
    assert row["band_low"] <= row["ci_low"] and row["band_high"] >= row["ci_high"]  # was [0.319, 0.339]
    assert dyn.info["crit_value"] >= 1.959963984540054  # 1.75 before: raised to the normal one, as R did
    assert "e=5" in dyn.info["bands_widened"]


def test_multiplier_bands_without_clusters_are_never_narrower_than_normal_intervals() -> None:
    # one unit per cohort, no clusters: the sup-t value comes from the same draws and se as the normal intervals
    d = castle_like(cohort_sizes={2004: 1, 2007: 1}, n_never=6, seed=5).data
    r = staggered_did(d, **CASTLE, n_boot=199, seed=2)
    for t in [r.table] + [r.aggregate(k).table for k in AGGREGATIONS]:
        assert_band_contains_pointwise(t)
        w = _band_rows(t).dropna(subset=["std_error"])
        assert ((w["band_high"] - w["band_low"]) >= (w["ci_high"] - w["ci_low"]) - 1e-12).all()


# -- a property over small random staggered panels --------------------------------------------------------------------
_cohorts = st.dictionaries(st.sampled_from(range(2002, 2011)), st.integers(1, 4), min_size=1, max_size=4)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cohorts=_cohorts, n_never=st.integers(2, 12), seed=st.integers(0, 10_000), pretrend=st.sampled_from([0, 0.1]))
def test_containment_holds_on_random_castle_panels(cohorts, n_never, seed, pretrend) -> None:
    d = castle_like(cohort_sizes=cohorts, n_never=n_never, pretrend=pretrend, seed=seed).data
    assume(d["region"].nunique() >= 2)
    for cluster in (None, "state", "region"):
        _check_staggered(d, CASTLE, cluster, 199, seed)
    es = event_study(d, **CASTLE, cluster="state", leads=3, lags=3, inference="wild", n_boot=199, seed=seed)
    assert_band_contains_pointwise(es.table, "event_study")


@pytest.mark.parametrize("seed", range(4))
def test_containment_holds_on_small_sick_leave_panels(seed: int) -> None:
    # 6 municipalities in 2 waves: waves of one municipality (cells on one cluster) happen often
    sim = sick_leave_sib(n_municipalities=6, employees_per_municipality=4, n_periods=8, waves=(3, 5), seed=seed)
    for cluster in (None, "municipality"):
        _check_staggered(sim.data, SICK, cluster, 199, seed)
    es = event_study(sim.data, **SICK, cluster="municipality", leads=2, lags=3, inference="wild", n_boot=199, seed=seed)
    assert_band_contains_pointwise(es.table, "event_study")


# -- the regular case is unchanged ------------------------------------------------------------------------------------
# Recorded before the fix (sick_leave_sib, 30 municipalities, no single-unit cohort): band_low/band_high of the first
# six rows. Rows whose band contained the pointwise interval must keep it to the last digit. The multiplier-bootstrap
# rows (att_gt and dynamic without clusters, dynamic by municipality) were recorded again, from the same code, when the
# bootstrap signs became keyed to unit and cluster ids (evaluator.inference.keyed_draws): other draws, same method.
_REGULAR = sick_leave_sib(n_municipalities=30, employees_per_municipality=8, n_periods=10, waves=(4, 7), seed=0)
_BEFORE = {
    ("att_gt", None): (
        [
            -1.553546114554639,
            -1.0385601596775849,
            -1.5458402233748467,
            -1.586014575800621,
            -1.5130580784167447,
            -1.2410863039724909,
        ],
        [
            0.928546114554639,
            1.5941157152331407,
            0.44167355670817976,
            0.8151812424672876,
            0.4297247450834113,
            1.0674751928613797,
        ],
    ),
    ("dynamic", None): (
        [
            -1.3713899601765742,
            -1.1546232748274843,
            -0.43463609598807207,
            -1.1674154720159542,
            -0.7084166967043939,
            -0.7385706018518525,
        ],
        [
            1.024167737954352,
            0.9046232748274843,
            1.5249138737658496,
            0.3688043609048431,
            0.8577222522599495,
            0.6135706018518525,
        ],
    ),
    ("dynamic", "municipality"): (
        [
            -1.0613087502707386,
            -0.9027777777777778,
            -0.3395264782326187,
            -1.351059941520468,
            -0.7793108349577648,
            -0.7697774528914878,
        ],
        [
            0.7140865280485165,
            0.6527777777777778,
            1.4298042560103963,
            0.5524488304093569,
            0.9286163905133203,
            0.6447774528914876,
        ],
    ),
    ("event_study", "municipality"): (
        [
            -0.4399084679595911,
            -0.8525537063911584,
            -0.8609564801431568,
            -0.711625823935794,
            -0.609515709127226,
            -0.9138120944073187,
        ],
        [
            0.3938395467136349,
            0.6058216802473744,
            0.20131596535419122,
            0.46731940571633984,
            0.2573661536528693,
            0.06667346991775097,
        ],
    ),
}


@pytest.mark.parametrize(("table", "cluster"), list(_BEFORE))
def test_regular_panel_bands_are_unchanged(table: str, cluster: str | None) -> None:
    r = None if table == "event_study" else staggered_did(_REGULAR.data, **SICK, cluster=cluster, n_boot=299, seed=3)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        if r is None:
            t = event_study(
                _REGULAR.data, **SICK, cluster=cluster, leads=3, lags=3, inference="wild", n_boot=299, seed=3
            ).table
        elif table == "att_gt":
            t = staggered_did(_REGULAR.data, **SICK, cluster=cluster, n_boot=299, seed=3).table
        else:
            t = r.aggregate(table).table
    low, high = _BEFORE[(table, cluster)]
    np.testing.assert_allclose(t["band_low"].to_numpy()[:6], low, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(t["band_high"].to_numpy()[:6], high, rtol=1e-6, atol=1e-12)
    assert not [w for w in seen if "simultaneous bands" in str(w.message)]  # nothing widened, nothing raised


# -- the kernel --------------------------------------------------------------------------------------------------------
def test_simultaneous_band_kernel() -> None:
    est, se = np.array([0.0, 1.0, 2.0, 3.0]), np.array([1.0, 0.1, np.nan, 1.0])
    lo, hi = np.array([-2.0, -1.0, 1.5, -np.inf]), np.array([2.0, 3.0, 2.5, np.inf])
    b = simultaneous_band(est, se, 2.5, lo, hi)
    assert b.low.tolist() == [-2.5, -1.0, 1.5, -np.inf] and b.high.tolist() == [2.5, 3.0, 2.5, np.inf]
    assert b.widened.tolist() == [False, True, True, True] and not b.raised
    b = simultaneous_band(est, se, 2.5, lo, hi, rows=np.array([True, True, False, False]))
    assert np.isnan(b.low[2:]).all() and b.widened.tolist() == [False, True, False, False]
    # a sup-t value below the pointwise one is raised to it; symmetric intervals are then matched exactly
    z = 1.959963984540054
    b = simultaneous_band(est[:2], se[:2], 1.5, est[:2] - z * se[:2], est[:2] + z * se[:2], pointwise_critical_value=z)
    assert b.raised and b.critical_value == z and not b.widened.any()
    assert b.low.tolist() == (est[:2] - z * se[:2]).tolist()
    b = simultaneous_band(est[:2], se[:2], np.nan, est[:2] - z * se[:2], est[:2] + z * se[:2])
    assert b.widened.all() and b.low.tolist() == (est[:2] - z * se[:2]).tolist()  # no sup-t value: the intervals
