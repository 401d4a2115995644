"""Tests of evaluator.staggered: Callaway-Sant'Anna ATT(g,t), aggregations, inference.

Reference numbers are R ``did`` 2.5.0 output on ``mpdta`` (analytic, influence-function
standard errors), as documented in ``../shared/reference/mpdta.md``:
- section A/C: d2cml-ai/csdid ``csdid/test_csdid/r_ref/ref_attgt.csv``, ``ref_aggte.csv`` and
  ``ref_pretest.csv`` (scenarios ``mpdta_nev_dr``, ``mpdta_nyt_dr``, ``mpdta_nev_reg_cov``);
- section B: Stata ``csdid ..., method(dripw)`` (friosavila/playingwithstata ``drdid/csdid_stata.md``),
  printed to 7 decimals, and Python ``csdid``/``differences`` for the overall values Stata does not print.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats

from evaluator.errors import (
    DataError,
    DesignError,
    DroppedUnitsWarning,
    FewClustersWarning,
    SmallCohortWarning,
    TrimmingWarning,
)
from evaluator.estimators.staggered import StaggeredResult, staggered_did
from evaluator.results.base import Result

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
MPDTA = REFERENCE / "mpdta.csv"
ARGS = dict(outcome="lemp", unit="countyreal", time="year", cohort="first.treat", n_boot=0)


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    if not MPDTA.is_file():
        pytest.skip(f"reference data mpdta.csv not found at {MPDTA} (../shared/ is not beside this checkout)")
    return pd.read_csv(MPDTA)


# -- reference values --------------------------------------------------------------------------------------------------
# [R] did 2.5.0, att_gt(yname="lemp", tname="year", idname="countyreal", gname="first.treat", data=mpdta,
# bstrap=FALSE, cband=FALSE): g, t, ATT, analytic SE.
R_ATT_GT = [
    (2004, 2004, -0.0105032462, 0.0232510364),
    (2004, 2005, -0.0704231581, 0.0309847668),
    (2004, 2006, -0.1372587389, 0.0364356643),
    (2004, 2007, -0.1008113631, 0.0343592258),
    (2006, 2004, 0.0065201124, 0.0233268051),
    (2006, 2005, -0.0027508188, 0.0195585610),
    (2006, 2006, -0.0045946070, 0.0177551967),
    (2006, 2007, -0.0412244715, 0.0202291807),
    (2007, 2004, 0.0305066556, 0.0150335603),
    (2007, 2005, -0.0027258929, 0.0163958329),
    (2007, 2006, -0.0310871194, 0.0178775113),
    (2007, 2007, -0.0260544107, 0.0166554353),
]
# [R] aggte(type=...): term -> (ATT, SE)
R_AGG = {
    "simple": {"overall": (-0.0399512752, 0.0120340128)},
    "dynamic": {
        "e=-3": (0.0305066556, 0.0150335603),
        "e=-2": (-0.0005630846, 0.0132916447),
        "e=-1": (-0.0244587450, 0.0142364022),
        "e=0": (-0.0199318168, 0.0118263641),
        "e=1": (-0.0509573671, 0.0168934763),
        "e=2": (-0.1372587389, 0.0364356643),
        "e=3": (-0.1008113631, 0.0343592258),
        "overall": (-0.0772398215, 0.0199649891),
    },
    "group": {
        "g=2004": (-0.0797491266, 0.0263677994),
        "g=2006": (-0.0229095392, 0.0167033303),
        "g=2007": (-0.0260544107, 0.0166554353),
        "overall": (-0.0310182822, 0.0124460593),
    },
    "calendar": {
        "t=2004": (-0.0105032462, 0.0232510364),
        "t=2005": (-0.0704231581, 0.0309847668),
        "t=2006": (-0.0488159843, 0.0201258613),
        "t=2007": (-0.0370593399, 0.0137470791),
        "overall": (-0.0417004321, 0.0159718519),
    },
}
# [S] Stata csdid method(dripw) with lpop == R did est_method="dr", xformla=~lpop (7 printed decimals).
DR_ATT_GT = [
    (2004, 2004, -0.0145297, 0.0221292),
    (2004, 2005, -0.0764219, 0.0286713),
    (2004, 2006, -0.1404483, 0.0353782),
    (2004, 2007, -0.1069039, 0.0328865),
    (2006, 2004, -0.0004721, 0.0222234),
    (2006, 2005, -0.0062025, 0.0184957),
    (2006, 2006, 0.0009606, 0.0194002),
    (2006, 2007, -0.0412939, 0.0197211),
    (2007, 2004, 0.0267278, 0.0140657),
    (2007, 2005, -0.0045766, 0.0157178),
    (2007, 2006, -0.0284475, 0.0181809),
    (2007, 2007, -0.0287814, 0.0162390),
]
DR_AGG = {
    "simple": {"overall": (-0.0417518, 0.0115028)},
    "dynamic": {
        "e=-3": (0.0267278, 0.0140657),
        "e=-2": (-0.0036165, 0.0129283),
        "e=-1": (-0.0232440, 0.0144851),
        "e=0": (-0.0210604, 0.0114942),
        "e=1": (-0.0530032, 0.0163465),
        "e=2": (-0.1404483, 0.0353782),
        "e=3": (-0.1069039, 0.0328865),
        "overall": (-0.0803539, 0.0189576),
    },
    "group": {
        "g=2004": (-0.0845759, 0.0245649),
        "g=2006": (-0.0201666, 0.0174696),
        "g=2007": (-0.0287814, 0.0162390),
        "overall": (-0.0328196, 0.0118982),
    },
    "calendar": {
        "t=2004": (-0.0145297, 0.0221292),
        "t=2005": (-0.0764219, 0.0286713),
        "t=2006": (-0.0461757, 0.0212107),
        "t=2007": (-0.0395822, 0.0129299),
        "overall": (-0.0441774, 0.0150382),
    },
}
# [R] mpdta_nyt_dr (not-yet-treated, no covariates) and mpdta_nev_reg_cov (est_method="reg", ~lpop): overall values.
R_NYT = {
    "simple": (-0.0397636256, 0.0120524248),
    "dynamic": (-0.0773993140, 0.0195601769),
    "group": (-0.0304622281, 0.0125751201),
    "calendar": (-0.0442670835, 0.0155709044),
}
R_REG = {
    "simple": (-0.0419686124, 0.0114448298),
    "dynamic": (-0.0807817453, 0.0187458547),
    "group": (-0.0329292402, 0.0118603088),
    "calendar": (-0.0445323314, 0.0148850278),
}


def _check_att_gt(res: StaggeredResult, expected: list[tuple[int, int, float, float]], tol: float) -> float:
    got = res.att_gt.set_index(["cohort", "time"])
    assert len(got) == len(expected)
    worst = 0.0
    for g, t, att, se in expected:
        worst = max(worst, abs(got.loc[(g, t), "att"] - att), abs(got.loc[(g, t), "se"] - se))
    assert worst < tol, f"max abs difference {worst:.3g} from the reference"
    return worst


def _check_agg(res: StaggeredResult, expected: dict[str, dict[str, tuple[float, float]]], tol: float) -> None:
    for kind, rows in expected.items():
        table = res.aggregate(kind).table.set_index("term")  # type: ignore[arg-type]
        assert set(rows) == set(table.index), kind
        for term, (att, se) in rows.items():
            assert table.loc[term, "estimate"] == pytest.approx(att, abs=tol), (kind, term)
            assert table.loc[term, "std_error"] == pytest.approx(se, abs=tol), (kind, term)


@pytest.mark.reference
def test_unconditional_never_treated_matches_r(mpdta: pd.DataFrame) -> None:
    res = staggered_did(mpdta, **ARGS)
    _check_att_gt(res, R_ATT_GT, 1e-9)
    _check_agg(res, R_AGG, 1e-9)
    # the result's own headline is the simple aggregate
    assert res.estimate == pytest.approx(-0.0399512752, abs=1e-9)
    assert res.se == pytest.approx(0.0120340128, abs=1e-9)
    # [R] ref_pretest.csv: W = 7.791237, p = 0.16812 (5 restrictions)
    assert res.pretest["statistic"] == pytest.approx(7.791237, abs=1e-6)
    assert res.pretest["p_value"] == pytest.approx(0.16812, abs=5e-6)
    assert res.pretest["df"] == 5


@pytest.mark.reference
@pytest.mark.parametrize("method", ["dr", "ipw", "reg", "unconditional"])
def test_methods_agree_without_covariates(mpdta: pd.DataFrame, method: str) -> None:
    res = staggered_did(mpdta, method=method, **ARGS)  # type: ignore[arg-type]
    _check_att_gt(res, R_ATT_GT, 1e-9)


@pytest.mark.reference
def test_doubly_robust_with_covariate_matches_stata_and_r(mpdta: pd.DataFrame) -> None:
    res = staggered_did(mpdta, covariates=["lpop"], method="dr", **ARGS)
    _check_att_gt(res, DR_ATT_GT, 6e-7)  # printed to 7 decimals
    _check_agg(res, DR_AGG, 6e-7)
    # [S] pre-trend chi2(5) = 6.8418, p = 0.2327
    assert res.pretest["statistic"] == pytest.approx(6.8418, abs=5e-5)
    assert res.pretest["p_value"] == pytest.approx(0.2327, abs=5e-5)


@pytest.mark.reference
@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [({"control": "not_yet"}, R_NYT), ({"method": "reg", "covariates": ["lpop"]}, R_REG)],
    ids=["not_yet", "reg_lpop"],
)
def test_extra_scenarios_match_r(mpdta: pd.DataFrame, kwargs: dict, expected: dict) -> None:
    res = staggered_did(mpdta, **ARGS, **kwargs)
    for kind, (att, se) in expected.items():
        agg = res.aggregate(kind)
        assert agg.estimate == pytest.approx(att, abs=1e-9), kind
        assert agg.se == pytest.approx(se, abs=1e-9), kind


@pytest.mark.reference
def test_ipw_with_covariate_close_to_dr(mpdta: pd.DataFrame) -> None:
    ipw = staggered_did(mpdta, covariates="lpop", method="ipw", **ARGS)
    dr = staggered_did(mpdta, covariates="lpop", method="dr", **ARGS)
    assert np.allclose(ipw.att_gt["att"], dr.att_gt["att"], atol=0.01)
    assert ipw.att_gt["se"].notna().all()


@pytest.mark.reference
def test_result_shape_and_immutability(mpdta: pd.DataFrame) -> None:
    res = staggered_did(mpdta, **ARGS)
    assert isinstance(res, Result)
    assert res.table["term"].iloc[0] == "ATT(2004,2004)"
    for col in ("cohort", "time", "event_time", "n_treated", "n_control"):
        assert col in res.table
    assert res.att_gt["n_treated"].tolist()[:4] == [20] * 4
    assert res.att_gt["n_control"].eq(309).all()
    dyn = res.aggregate("dynamic")
    assert dyn.headline == "overall" and "event_time" in dyn.table
    before = res.to_frame()
    copy = res.to_frame()
    copy.loc[0, "estimate"] = 99.0
    pd.testing.assert_frame_equal(res.to_frame(), before)
    with pytest.raises(AttributeError):
        res.alpha = 0.1  # type: ignore[misc]
    assert "simple" in repr(res.aggregate("simple").estimator)


@pytest.mark.reference
def test_universal_base_period_and_aggregation_options(mpdta: pd.DataFrame) -> None:
    res = staggered_did(mpdta, base_period="universal", **ARGS)
    cells = res.att_gt.set_index(["cohort", "time"])
    assert cells.loc[(2006, 2005), "att"] == 0.0  # the base period itself
    assert np.isnan(cells.loc[(2006, 2005), "se"])
    # post-treatment cells use the same base period in both conventions
    varying = staggered_did(mpdta, **ARGS).att_gt.set_index(["cohort", "time"])
    assert cells.loc[(2004, 2007), "att"] == pytest.approx(varying.loc[(2004, 2007), "att"], abs=1e-12)
    dyn = res.aggregate("dynamic", min_e=-1, max_e=2)
    assert dyn.table["event_time"].dropna().tolist() == [-1, 0, 1, 2]
    bal = staggered_did(mpdta, **ARGS).aggregate("dynamic", balance_e=1)
    # cohort 2007 (one post period) is dropped; e ranges over [balance_e - 4, balance_e]
    assert bal.table["event_time"].dropna().max() == 1


# -- simulation against a known truth ----------------------------------------------------------------------------------
def _dgp(n_units: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, dict[tuple[int, int], float]]:
    """Staggered adoption, heterogeneous dynamic effects, selection on levels, trending outcome."""
    rng = np.random.default_rng(seed)
    T = 8
    cohorts = rng.choice([0, 3, 5, 7], size=n_units, p=[0.4, 0.2, 0.2, 0.2])
    alpha = rng.normal(size=n_units) + 0.5 * (cohorts > 0)
    t = np.arange(1, T + 1)
    gmat = cohorts[:, None]
    e = t[None, :] - gmat
    treated = (gmat > 0) & (e >= 0)
    # effect grows with exposure and differs by cohort
    effect = np.where(treated, (1.0 + 0.5 * e) * (1 + (gmat == 3)), 0.0)
    y = alpha[:, None] + 0.3 * t[None, :] + effect + rng.normal(size=(n_units, T))
    data = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n_units), T),
            "t": np.tile(t, n_units),
            "g": np.repeat(cohorts, T),
            "y": y.ravel(),
            "x": np.repeat(rng.normal(size=n_units), T),
        }
    )
    truth = {(g, s): float((1.0 + 0.5 * (s - g)) * (1 + (g == 3))) for g in (3, 5, 7) for s in range(g, T + 1)}
    return data, truth


def test_recovers_heterogeneous_dynamic_effects() -> None:
    data, truth = _dgp()
    res = staggered_did(data, outcome="y", unit="id", time="t", cohort="g", n_boot=0)
    cells = res.att_gt.set_index(["cohort", "time"])
    z = [(cells.loc[k, "att"] - v) / cells.loc[k, "se"] for k, v in truth.items()]
    assert np.max(np.abs(z)) < 4.5
    pre = res.att_gt[res.att_gt["event_time"] < 0]
    assert pre["att"].abs().max() < 0.25
    # simple aggregate against the cohort-size-weighted truth
    sizes = data.groupby("g")["id"].nunique()
    w = np.array([sizes[g] for g, _ in truth])
    true_simple = float(np.sum(w * np.array(list(truth.values()))) / w.sum())
    assert abs(res.estimate - true_simple) < 4 * res.se


def test_simulation_against_simulate_truth() -> None:
    from evaluator.data import simulate

    sim = simulate.sick_leave_sib(n_municipalities=20, employees_per_municipality=100, seed=1)
    res = staggered_did(
        sim.data,
        outcome="sick_days",
        unit="employee",
        time="month",
        cohort="first_treated",
        n_boot=0,
        cluster="municipality",
    )
    truth = sim.truth
    assert abs(res.estimate - truth["simple"]) < 4 * res.se
    dyn = res.aggregate("dynamic")
    assert abs(dyn.estimate - truth["dynamic_overall"]) < 4 * dyn.se


# -- bootstrap ---------------------------------------------------------------------------------------------------------
def test_bootstrap_reproducible_and_close_to_analytic() -> None:
    data, _ = _dgp(n_units=2000, seed=1)
    kw = dict(outcome="y", unit="id", time="t", cohort="g")
    a = staggered_did(data, n_boot=999, seed=7, **kw)
    b = staggered_did(data, n_boot=999, seed=7, **kw)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    pd.testing.assert_frame_equal(a.aggregate("dynamic").to_frame(), b.aggregate("dynamic").to_frame())
    t = a.to_frame()
    ratio = t["std_error"] / t["se_analytic"]
    assert ratio.between(0.85, 1.15).all(), ratio.describe()
    # uniform bands are wider than pointwise intervals and the critical value is plausible
    assert (t["band_high"] - t["band_low"] >= t["ci_high"] - t["ci_low"]).all()
    assert 1.96 < a.info["crit_value"] < 4.0
    dyn = a.aggregate("dynamic").to_frame()
    assert {"band_low", "band_high", "event_time"} <= set(dyn.columns)
    c = staggered_did(data, n_boot=999, seed=8, **kw)
    assert not np.array_equal(a.to_frame()["std_error"], c.to_frame()["std_error"])


def test_cluster_bootstrap_and_clustered_se() -> None:
    data, _ = _dgp(n_units=2000, seed=2)
    data["cl"] = data["id"] % 40
    kw = dict(outcome="y", unit="id", time="t", cohort="g")
    res = staggered_did(data, cluster="cl", n_boot=499, seed=1, **kw)
    assert res.info["n_clusters"] == 40
    ratio = res.to_frame()["std_error"] / res.to_frame()["se_analytic"]
    assert ratio.between(0.7, 1.3).all()
    # clustered bootstrap: p-values and intervals from the restricted wild cluster bootstrap (test inversion), so
    # each interval excludes 0 exactly when p < alpha, and with 40 clusters it is close to the normal interval
    t = res.to_frame()
    finite = t["std_error"].notna()
    assert ((t["ci_low"] <= t["estimate"]) & (t["estimate"] <= t["ci_high"]))[finite].all()
    excludes0 = (t["ci_low"] > 0) | (t["ci_high"] < 0)
    assert (excludes0 == (t["p_value"] < 0.05))[finite].all()
    half = (t["ci_high"] - t["ci_low"]) / (2 * stats.norm.ppf(0.975) * t["se_analytic"])
    assert half[finite].between(0.8, 1.3).all(), half.describe()
    # clustering on the unit itself reproduces the unclustered analytic SEs
    data["self"] = data["id"]
    one = staggered_did(data, cluster="self", n_boot=0, **kw).to_frame()["std_error"]
    base = staggered_did(data, n_boot=0, **kw).to_frame()["std_error"]
    np.testing.assert_allclose(one, base, rtol=1e-12)


# -- properties --------------------------------------------------------------------------------------------------------
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), shift=st.floats(-1e3, 1e3, allow_nan=False), perm_seed=st.integers(0, 10_000))
def test_invariances(seed: int, shift: float, perm_seed: int) -> None:
    data, _ = _dgp(n_units=120, seed=seed)
    kw = dict(outcome="y", unit="id", time="t", cohort="g", n_boot=0)
    base = staggered_did(data, **kw).att_gt
    rng = np.random.default_rng(perm_seed)
    shuffled = data.sample(frac=1.0, random_state=rng.integers(2**31)).reset_index(drop=True)
    labels = rng.permutation(data["id"].nunique()) * 7 + 1000
    shuffled["id"] = labels[shuffled["id"]]
    other = staggered_did(shuffled, **kw).att_gt
    np.testing.assert_allclose(other["att"], base["att"], atol=1e-10)
    np.testing.assert_allclose(other["se"], base["se"], rtol=1e-8)
    moved = data.assign(y=data["y"] + shift)
    np.testing.assert_allclose(staggered_did(moved, **kw).att_gt["att"], base["att"], atol=1e-8)


# -- errors and warnings -----------------------------------------------------------------------------------------------
@pytest.fixture
def small() -> pd.DataFrame:
    return _dgp(n_units=200, seed=5)[0]


KW = dict(outcome="y", unit="id", time="t", cohort="g", n_boot=0)


def test_no_never_treated_with_never_control(small: pd.DataFrame) -> None:
    data = small[small["g"] > 0]
    with pytest.raises(DesignError, match='control="not_yet"'):
        staggered_did(data, **KW)
    res = staggered_did(data, control="not_yet", **KW)  # works, last cohort used as control only
    assert 7 not in set(res.att_gt["cohort"])


def test_cohort_without_pre_period_dropped(small: pd.DataFrame) -> None:
    data = small.copy()
    data.loc[data["id"] < 10, "g"] = 1
    with pytest.warns(DroppedUnitsWarning, match="dropped 10 units"):
        res = staggered_did(data, **KW)
    assert 1 not in set(res.att_gt["cohort"])


def test_single_unit_cohort_warns(small: pd.DataFrame) -> None:
    data = small.copy()
    data.loc[data["id"] == 0, "g"] = 6
    data.loc[(data["g"] == 6) & (data["id"] != 0), "g"] = 0
    with pytest.warns(SmallCohortWarning, match="single unit"):
        staggered_did(data, **KW)


def test_constant_and_collinear_covariates(small: pd.DataFrame) -> None:
    data = small.assign(c=1.0, x2=lambda d: 2 * d["x"] + 1)
    with pytest.raises(DesignError, match=r"\['c'\]"):
        staggered_did(data, covariates=["x", "c"], **KW)
    with pytest.raises(DesignError, match="x2"):
        staggered_did(data, covariates=["x", "x2"], **KW)


def test_extreme_propensity_scores_trimmed() -> None:
    rng = np.random.default_rng(0)
    n, T = 400, 4
    x = rng.normal(size=n)
    g = np.where(x > 0.5, 3, 0)
    x[:3] = 3.5  # three controls deep inside the treated's covariate region: propensity score ~ 1
    g[:3] = 0
    y = rng.normal(size=(n, T))
    data = pd.DataFrame(
        {
            "id": np.repeat(np.arange(n), T),
            "t": np.tile(np.arange(1, T + 1), n),
            "g": np.repeat(g, T),
            "y": y.ravel(),
            "x": np.repeat(x, T),
        }
    )
    with pytest.warns(TrimmingWarning, match="propensity scores >= 0.995"):
        res = staggered_did(data, covariates=["x"], method="dr", **KW)
    assert any("trimmed" in note for note in res.notes)


def test_single_and_few_clusters(small: pd.DataFrame) -> None:
    with pytest.raises(DesignError, match="single cluster"):
        staggered_did(small.assign(cl=1), cluster="cl", **KW)
    with pytest.warns(FewClustersWarning, match="only 5 clusters"):
        staggered_did(small.assign(cl=small["id"] % 5), cluster="cl", **KW)


def test_unbalanced_panel_names_units(small: pd.DataFrame) -> None:
    # issue 13: as R did (allow_unbalanced_panel=FALSE), incomplete units are dropped with a warning naming them,
    # not refused; allow_unbalanced_panel=True keeps them (tests/test_staggered_rc.py)
    from evaluator.errors import DroppedUnitsWarning

    data = small.drop(index=small.index[(small["id"].isin([3, 8])) & (small["t"] == 2)])
    with pytest.warns(DroppedUnitsWarning, match=r"dropped 2 of 200 units \(14 rows\).*units 3, 8"):
        res = staggered_did(data, **KW)
    assert res.info["unbalanced_dropped"]["units"] == 2


def test_bad_inputs(small: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="control='both'"):
        staggered_did(small, control="both", **KW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method='ols'"):
        staggered_did(small, method="ols", **KW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="base_period"):
        staggered_did(small, base_period="fixed", **KW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="anticipation"):
        staggered_did(small, anticipation=-1, **KW)
    with pytest.raises(ValueError, match="n_boot"):
        staggered_did(small, **{**KW, "n_boot": -5})
    with pytest.raises(ValueError, match="alpha"):
        staggered_did(small, alpha=1.5, **KW)
    with pytest.raises(DataError, match="covariate 'nope'"):
        staggered_did(small, covariates=["nope"], **KW)
    with pytest.raises(DataError, match="duplicate unit-period"):
        staggered_did(pd.concat([small, small.iloc[:1]]), **KW)
    varying = small.copy()
    varying.loc[(varying["id"] == 4) & (varying["t"] == 2), "g"] = 5
    with pytest.raises(DataError, match="varies within units 4"):
        staggered_did(varying, **KW)
    res = staggered_did(small, **KW)
    with pytest.raises(ValueError, match="kind='weekly'"):
        res.aggregate("weekly")  # type: ignore[arg-type]


def test_anticipation_shifts_base_period(small: pd.DataFrame) -> None:
    res = staggered_did(small, anticipation=1, **KW)
    # with one period of anticipation the post-treatment base period of cohort 5 is 3
    assert res.to_frame().shape[0] > 0
    plain = staggered_did(small, **KW)
    assert not np.allclose(
        res.att_gt.set_index(["cohort", "time"]).loc[(5, 6), "att"],
        plain.att_gt.set_index(["cohort", "time"]).loc[(5, 6), "att"],
    )


def test_sorted_fast_path_equals_general_path() -> None:
    # Rows sorted by unit then period take a reshape instead of factorize + scatter; shuffled rows take the general
    # path. Both must give the same numbers to the last bit.
    data, _ = _dgp(n_units=300, seed=5)
    data = data.sort_values(["id", "t"]).reset_index(drop=True)
    kw = dict(outcome="y", unit="id", time="t", cohort="g", n_boot=0)
    sorted_ = staggered_did(data, **kw).to_frame()
    shuffled = staggered_did(data.sample(frac=1, random_state=1), **kw).to_frame()
    pd.testing.assert_frame_equal(sorted_, shuffled, check_exact=True)


def test_no_pretest_when_pre_cells_outnumber_clusters():
    """A clustered covariance of G clusters is singular beyond G restrictions: report no test, say why."""
    import evaluator

    sim = evaluator.simulate.sick_leave_sib(n_municipalities=8, employees_per_municipality=10, seed=3)
    kw = dict(outcome="sick_days", unit="employee", time="month", cohort="first_treated", n_boot=0)
    with pytest.warns(Warning):
        r = evaluator.staggered_did(sim.data, cluster="municipality", **kw)
    assert r.pretest is None
    assert any("pre-trend test is not reported" in n for n in r.notes)
    unclustered = evaluator.staggered_did(sim.data, **kw)
    assert unclustered.pretest is not None and 0 <= unclustered.pretest["p_value"] <= 1
