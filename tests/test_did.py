"""Tests of evaluator.did: reference values, independent computations, simulations, bad input, properties."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evaluator.data.simulate import sick_leave_sib
from evaluator.errors import DataError, DesignError, DroppedUnitsWarning, FewClustersWarning
from evaluator.estimators.twfe import did, event_study

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"


def _panel(n_units=60, n_periods=6, seed=0, n_clusters=None, unbalanced=False, effect=1.0):
    """A small staggered panel with never-treated units (cohort 0)."""
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n_units), n_periods)
    t = np.tile(np.arange(1, n_periods + 1), n_units)
    coh_u = rng.choice([0, 3, 5], size=n_units)
    coh_u[:3] = [0, 3, 5]
    coh = coh_u[u]
    x = rng.normal(size=u.size)
    y = rng.normal(size=n_units)[u] + 0.3 * t + effect * ((coh > 0) & (t >= coh)) + 0.5 * x + rng.normal(size=u.size)
    df = pd.DataFrame({"unit": u, "time": t, "cohort": coh, "x": x, "y": y, "w": rng.uniform(0.5, 2.0, u.size)})
    df["cl"] = df["unit"] % (n_clusters or n_units)
    if unbalanced:
        df = df.sample(frac=0.8, random_state=seed).sort_index()
    return df


def _cr1_nested_scale(n_obs: int, n_units: int, n_periods: int, k: int) -> float:
    """statsmodels counts every dummy in K; the documented convention drops unit dummies nested in clusters."""
    k_full = k + n_units + n_periods - 1
    k_nested = k + n_periods
    return np.sqrt((n_obs - k_full) / (n_obs - k_nested))


# -- reference computations ------------------------------------------------------------------------------------------
def test_two_by_two_equals_difference_of_means():
    df = pd.DataFrame(
        {
            "id": np.repeat(np.arange(7), 2),
            "t": np.tile([2019, 2020], 7),
            "first": np.repeat([2020, 2020, 2020, 0, 0, 0, 0], 2),
            "y": [1.0, 4.0, 2.0, 3.5, 0.0, 5.0, 1.0, 1.5, 2.0, 2.2, 3.0, 2.9, 0.5, 1.4],
        }
    )
    treated = df["first"] > 0
    means = df.groupby([treated, "t"])["y"].mean()
    expected = (means[(True, 2020)] - means[(True, 2019)]) - (means[(False, 2020)] - means[(False, 2019)])
    r = did(df, outcome="y", unit="id", time="t", cohort="first", inference="hc1")
    assert r.estimate == pytest.approx(expected, abs=1e-12)
    assert r.estimator == "Difference-in-differences (2x2)"
    assert r.info["n_treated"] == 3 and r.info["n_control"] == 4


@pytest.mark.parametrize("unbalanced", [False, True])
@pytest.mark.parametrize("use_weights", [False, True])
def test_matches_statsmodels_dummies_cluster(unbalanced, use_weights):
    df = _panel(n_units=40, n_clusters=13, unbalanced=unbalanced, seed=3)
    df["d"] = ((df["cohort"] > 0) & (df["time"] >= df["cohort"])).astype(float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        r = did(
            df,
            outcome="y",
            unit="unit",
            time="time",
            cohort="cohort",
            covariates=["x"],
            cluster="cl",
            weights="w" if use_weights else None,
        )
    formula = "y ~ d + x + C(unit) + C(time)"
    model = smf.wls(formula, df, weights=df["w"]) if use_weights else smf.ols(formula, df)
    m = model.fit(cov_type="cluster", cov_kwds={"groups": df["cl"]})
    scale = _cr1_nested_scale(len(df), df["unit"].nunique(), df["time"].nunique(), k=2)
    assert r.estimate == pytest.approx(m.params["d"], abs=1e-10)
    assert r.se == pytest.approx(m.bse["d"] * scale, rel=1e-8)
    assert r.table.loc[1, "std_error"] == pytest.approx(m.bse["x"] * scale, rel=1e-8)
    assert r.info["df"] == 12
    assert r.info["n_params"] == 2 + df["time"].nunique()


def test_cluster_not_nesting_units_counts_all_fixed_effects():
    df = _panel(n_units=30, seed=4)
    df["d"] = ((df["cohort"] > 0) & (df["time"] >= df["cohort"])).astype(float)
    df["cl2"] = (df["unit"] + df["time"]) % 25  # units move between clusters
    r = did(df, outcome="y", unit="unit", time="time", cohort="cohort", cluster="cl2")
    m = smf.ols("y ~ d + C(unit) + C(time)", df).fit(cov_type="cluster", cov_kwds={"groups": df["cl2"]})
    assert r.se == pytest.approx(m.bse["d"], rel=1e-8)  # K counts every fixed effect, as statsmodels does


def test_hc1_matches_statsmodels():
    df = _panel(n_units=25, seed=5, unbalanced=True)
    df["d"] = ((df["cohort"] > 0) & (df["time"] >= df["cohort"])).astype(float)
    r = did(df, outcome="y", unit="unit", time="time", cohort="cohort", covariates=["x"], inference="hc1")
    m = smf.ols("y ~ d + x + C(unit) + C(time)", df).fit(cov_type="HC1")
    assert r.se == pytest.approx(m.bse["d"], rel=1e-8)
    assert r.info["df"] is None


def _dummy_ols_cluster(df, regressors, unit, time, cluster):
    """statsmodels OLS with explicit unit and period dummies and cov_type='cluster' (no formula parsing)."""
    import statsmodels.api as sm

    fe = pd.get_dummies(df[[unit, time]].astype(str), drop_first=True, dtype=float)
    X = pd.concat([df[regressors].astype(float), fe], axis=1)
    X.insert(0, "const", 1.0)
    return sm.OLS(df["lemp"].to_numpy(), X).fit(cov_type="cluster", cov_kwds={"groups": df[cluster].to_numpy()})


@pytest.mark.reference
def test_mpdta_twfe_matches_dummy_regression():
    if not REFERENCE.is_dir():
        pytest.skip(f"reference data not found at {REFERENCE}")
    df = pd.read_csv(REFERENCE / "mpdta.csv")
    df["post"] = ((df["first.treat"] > 0) & (df["year"] >= df["first.treat"])).astype(float)
    r = did(df, outcome="lemp", unit="countyreal", time="year", cohort="first.treat")
    m = _dummy_ols_cluster(df, ["post"], "countyreal", "year", "countyreal")
    assert r.estimate == pytest.approx(m.params["post"], abs=1e-10)
    assert r.estimate == pytest.approx(-0.0365, abs=5e-5)  # the well-known TWFE estimate on mpdta
    assert r.se == pytest.approx(m.bse["post"] * _cr1_nested_scale(len(df), 500, 5, 1), rel=1e-8)
    assert r.info["n_clusters"] == 500

    es = event_study(df, outcome="lemp", unit="countyreal", time="year", cohort="first.treat")
    e = np.where(df["first.treat"] > 0, df["year"] - df["first.treat"], -99)
    events = [-4, -3, -2, 0, 1, 2, 3]
    for v in events:
        df[f"e{v + 10}"] = (e == v).astype(float)
    m2 = _dummy_ols_cluster(df, [f"e{v + 10}" for v in events], "countyreal", "year", "countyreal")
    tab = es.table.set_index("term")
    scale = _cr1_nested_scale(len(df), 500, 5, 7)
    for v in events:
        assert tab.loc[f"e={v}", "estimate"] == pytest.approx(m2.params[f"e{v + 10}"], abs=1e-10)
        assert tab.loc[f"e={v}", "std_error"] == pytest.approx(m2.bse[f"e{v + 10}"] * scale, rel=1e-8)


# -- event study -------------------------------------------------------------------------------------------------------
def test_event_study_table_binning_pretest_and_post_average():
    df = _panel(n_units=80, n_periods=8, seed=6)
    r = event_study(df, outcome="y", unit="unit", time="time", cohort="cohort", leads=2, lags=2)
    tab = r.table.set_index("term")
    assert list(r.table["term"]) == ["e=-2", "e=0", "e=1", "e=2", "e=-1", "post_avg"]
    assert tab.loc["e=-1", "estimate"] == 0 and np.isnan(tab.loc["e=-1", "std_error"])
    assert tab.loc["e=-1", "event_time"] == -1 and r.info["reference"] == -1
    post = ["e=0", "e=1", "e=2"]
    assert r.estimate == pytest.approx(tab.loc[post, "estimate"].mean())
    V = r.info["vcov"].loc[post, post].to_numpy()
    assert r.se == pytest.approx(np.sqrt(V.sum()) / 3)
    pre = r.pretest
    assert pre["df"] == (1, 79)
    assert pre["statistic"] == pytest.approx(tab.loc["e=-2", "statistic"] ** 2)

    # binning by hand: e <= -2 into -2, e >= 2 into 2
    e = np.where(df["cohort"] > 0, df["time"] - df["cohort"], np.nan)
    d = df.assign(**{f"b{v + 5}": (np.clip(e, -2, 2) == v).astype(float) for v in [-2, 0, 1, 2]})
    m = smf.ols("y ~ b3 + b5 + b6 + b7 + C(unit) + C(time)", d).fit()
    assert tab.loc["e=2", "estimate"] == pytest.approx(m.params["b7"], abs=1e-10)
    assert tab.loc["e=-2", "estimate"] == pytest.approx(m.params["b3"], abs=1e-10)


def test_event_study_hc1_pretest_is_chi2():
    df = _panel(n_units=50, n_periods=7, seed=7)
    r = event_study(df, outcome="y", unit="unit", time="time", cohort="cohort", inference="hc1")
    assert "chi2" in r.pretest["test"] and r.pretest["df"] == sum(t.startswith("e=-") for t in r.table["term"]) - 1


def test_event_study_wild_has_band_and_bootstrap_intervals():
    df = _panel(n_units=40, n_periods=6, seed=8, n_clusters=15)
    r = event_study(df, outcome="y", unit="unit", time="time", cohort="cohort", cluster="cl", inference="wild", seed=1)
    tab = r.table
    ev = tab["event_time"].notna() & tab["std_error"].notna()
    assert (tab.loc[ev, "band_low"] <= tab.loc[ev, "ci_low"] + 1e-12).all()
    assert (tab.loc[ev, "band_high"] >= tab.loc[ev, "ci_high"] - 1e-12).all()
    assert (tab.loc[ev, "ci_low"] < tab.loc[ev, "estimate"]).all()
    assert r.info["sup_t_critical_value"] > 1.96
    assert "wild" in r.inference
    r2 = event_study(df, outcome="y", unit="unit", time="time", cohort="cohort", cluster="cl", inference="wild", seed=1)
    pd.testing.assert_frame_equal(r.table, r2.table)


# -- simulations with known truth --------------------------------------------------------------------------------------
def test_constant_effect_is_recovered_on_sick_leave_data():
    estimates, ses = [], []
    for seed in range(6):
        sim = sick_leave_sib(
            n_municipalities=24,
            employees_per_municipality=20,
            n_periods=24,
            waves=(7, 13, 19),
            effect="constant",
            seed=seed,
        )
        r = did(
            sim.data, outcome="sick_days", unit="employee", time="month", cohort="first_treated", cluster="municipality"
        )
        estimates.append(r.estimate)
        ses.append(r.se)
        truth = sim.truth["simple"]
    bias = np.mean(estimates) - truth
    assert abs(bias) < 3 * np.sqrt(np.mean(np.square(ses)) / len(ses))


def _null_pvalue(seed: int) -> float:
    rng = np.random.default_rng(seed)
    G, per, T = 10, 6, 4
    u = np.repeat(np.arange(G * per), T)
    t = np.tile(np.arange(T), G * per)
    g = u // per
    coh = np.where(g < 4, 2, 0)
    y = rng.normal(size=G)[g] + rng.normal(size=(G, T))[g, t] + rng.normal(size=u.size)
    df = pd.DataFrame({"u": u, "t": t, "g": g, "c": coh, "y": y})
    return did(
        df, outcome="y", unit="u", time="t", cohort="c", cluster="g", inference="wild", n_boot=199, seed=seed
    ).pvalue


def test_wild_bootstrap_pvalues_under_null_quick():
    p = np.array([_null_pvalue(s) for s in range(40)])
    assert 0.0 <= np.mean(p < 0.1) <= 0.3
    assert 0.3 < np.mean(p) < 0.7


def test_wild_bootstrap_pvalues_under_null_are_uniform():
    from scipy import stats

    p = np.array([_null_pvalue(s) for s in range(200)])
    assert stats.kstest(p, "uniform").pvalue > 0.001
    assert np.mean(p < 0.05) < 0.1


def test_wild_pvalue_matches_brute_force_with_explicit_dummies():
    from evaluator.inference.bootstrap import draw_weights

    df = _panel(n_units=24, n_periods=5, seed=14, n_clusters=8, unbalanced=True).reset_index(drop=True)
    df["d"] = ((df["cohort"] > 0) & (df["time"] >= df["cohort"])).astype(float)
    r = did(
        df,
        outcome="y",
        unit="unit",
        time="time",
        cohort="cohort",
        covariates=["x"],
        cluster="cl",
        weights="w",
        inference="wild",
        n_boot=99,
        seed=3,
    )
    with pytest.warns(FewClustersWarning):
        analytic = did(
            df,
            outcome="y",
            unit="unit",
            time="time",
            cohort="cohort",
            covariates=["x"],
            cluster="cl",
            weights="w",
            inference="cluster",
        )
    assert r.se == pytest.approx(analytic.se, rel=1e-10)
    # brute force: full dummy regression, restricted residuals, one WLS per draw
    X = pd.get_dummies(df[["unit", "time"]].astype(str), drop_first=True, dtype=float)
    X.insert(0, "x", df["x"])
    X.insert(0, "const", 1.0)
    Xr = X.to_numpy()
    Xf = np.column_stack([df["d"], Xr])
    sw = np.sqrt(df["w"].to_numpy())
    y = df["y"].to_numpy()
    g = pd.factorize(df["cl"])[0]

    def tstat(yy):
        b = np.linalg.lstsq(Xf * sw[:, None], yy * sw, rcond=None)[0]
        e = (yy - Xf @ b) * sw
        A = np.linalg.pinv((Xf * sw[:, None]).T @ (Xf * sw[:, None]))
        sc = np.array([(Xf[g == h] * sw[g == h, None]).T @ e[g == h] for h in range(8)])
        return b[0] / np.sqrt((A @ sc.T @ sc @ A)[0, 0])

    br = np.linalg.lstsq(Xr * sw[:, None], y * sw, rcond=None)[0]
    u = y - Xr @ br
    V = draw_weights(np.random.default_rng(3), (8, 99), "webb")
    t = tstat(y)
    tb = np.array([tstat(Xr @ br + u * V[g, b]) for b in range(99)])
    assert r.pvalue == pytest.approx(np.mean(np.abs(tb) >= abs(t) * (1 - 1e-10)), abs=1e-12)


def test_wild_reproducible_with_seed_and_uses_webb_with_few_clusters():
    df = _panel(n_units=40, seed=9, n_clusters=8)
    kw = dict(outcome="y", unit="unit", time="time", cohort="cohort", cluster="cl", inference="wild")
    a = did(df, seed=11, **kw)
    b = did(df, seed=11, **kw)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.info["boot_weights"] == "webb"
    assert a.ci[0] < a.estimate < a.ci[1]
    c = did(df, seed=12, **kw)
    assert c.estimate == a.estimate and c.se == a.se


# -- bad input ---------------------------------------------------------------------------------------------------------
def test_few_clusters_warns_for_analytic_only():
    df = _panel(n_units=40, seed=10, n_clusters=10)
    with pytest.warns(FewClustersWarning, match="10 clusters.*inference='wild'"):
        r = did(df, outcome="y", unit="unit", time="time", cohort="cohort", cluster="cl")
    assert any("under-cover" in n for n in r.notes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FewClustersWarning)
        did(df, outcome="y", unit="unit", time="time", cohort="cohort", cluster="cl", inference="wild", n_boot=99)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda d: d.assign(cl=1), DesignError, "single cluster"),
        (lambda d: d.assign(cohort=0), DesignError, "no treated observations"),
        (lambda d: d.assign(cohort=1), DesignError, "no untreated observations"),
        (lambda d: d.assign(cohort=3), DesignError, "treatment indicator.*absorbed"),
        (lambda d: d.assign(w=-d["w"]), DesignError, "negative"),
        (lambda d: d.assign(x=d["unit"] * 1.0), DesignError, r"\['x'\].*absorb"),
        (lambda d: d.assign(x2=2 * d["x"] + 1), DesignError, "'x2' is collinear"),
        (lambda d: d.drop(columns="y"), DataError, "'y'"),
        (lambda d: pd.concat([d, d.iloc[:2]]), DataError, "duplicate unit-period"),
        (lambda d: d.assign(cohort=np.where(d.index == 0, 4, d["cohort"])), DataError, "changes within a unit"),
        (lambda d: d.assign(y=np.where(d.index == 3, np.nan, d["y"])), DataError, "missing values"),
    ],
)
def test_bad_input_raises_named_errors(change, error, match):
    df = change(_panel(n_units=30, seed=11))
    covs = [c for c in ("x", "x2") if c in df.columns]
    with pytest.raises(error, match=match):
        did(df, outcome="y", unit="unit", time="time", cohort="cohort", covariates=covs, cluster="cl", weights="w")


def test_zero_weights_are_dropped_with_a_warning():
    df = _panel(n_units=30, seed=15)
    base = did(df[df["unit"] != 5], outcome="y", unit="unit", time="time", cohort="cohort", weights="w")
    df.loc[df["unit"] == 5, "w"] = 0.0
    with pytest.warns(DroppedUnitsWarning, match="6 rows with weight 0"):
        r = did(df, outcome="y", unit="unit", time="time", cohort="cohort", weights="w")
    assert r.nobs == len(df) - 6 and r.estimate == pytest.approx(base.estimate, rel=1e-10)


def test_wild_needs_units_nested_in_clusters():
    df = _panel(n_units=30, seed=12)
    df["cl2"] = (df["unit"] + df["time"]) % 25
    with pytest.raises(DesignError, match="every unit inside one cluster"):
        did(df, outcome="y", unit="unit", time="time", cohort="cohort", cluster="cl2", inference="wild")


def test_event_study_bad_reference():
    df = _panel(n_units=30, seed=13)
    with pytest.raises(DesignError, match="reference=-9"):
        event_study(df, outcome="y", unit="unit", time="time", cohort="cohort", reference=-9, leads=2)


# -- properties --------------------------------------------------------------------------------------------------------
_fast = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fit(df):
    return did(df, outcome="y", unit="unit", time="time", cohort="cohort", covariates=["x"], inference="hc1")


@_fast
@given(seed=st.integers(0, 10_000), perm_seed=st.integers(0, 10_000))
def test_row_order_and_unit_labels_do_not_matter(seed, perm_seed):
    df = _panel(n_units=12, n_periods=5, seed=seed, unbalanced=True)
    base = _fit(df)
    rng = np.random.default_rng(perm_seed)
    shuffled = df.sample(frac=1.0, random_state=perm_seed)
    relabel = dict(zip(df["unit"].unique(), rng.permutation(10_000)[: df["unit"].nunique()], strict=True))
    relabelled = shuffled.assign(unit=shuffled["unit"].map(relabel).astype(str))
    for other in (_fit(shuffled), _fit(relabelled)):
        assert other.estimate == pytest.approx(base.estimate, rel=1e-9, abs=1e-12)
        assert other.se == pytest.approx(base.se, rel=1e-9)


@_fast
@given(seed=st.integers(0, 10_000), shift=st.floats(-1e3, 1e3), scale=st.floats(0.01, 100))
def test_outcome_shift_and_scale(seed, shift, scale):
    df = _panel(n_units=12, n_periods=5, seed=seed)
    base = _fit(df)
    shifted = _fit(df.assign(y=df["y"] + shift))
    scaled = _fit(df.assign(y=df["y"] * scale))
    assert shifted.estimate == pytest.approx(base.estimate, abs=1e-8 * (1 + abs(shift)))
    assert scaled.estimate == pytest.approx(scale * base.estimate, rel=1e-8, abs=1e-12)
    assert scaled.se == pytest.approx(scale * base.se, rel=1e-8)


def test_event_study_reports_no_pretest_beyond_the_cluster_rank():
    import evaluator

    sim = evaluator.simulate.sick_leave_sib(n_municipalities=8, employees_per_municipality=10, seed=3)
    kw = dict(outcome="sick_days", unit="employee", time="month", cohort="first_treated", cluster="municipality")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wide = evaluator.event_study(sim.data, **kw)
        narrow = evaluator.event_study(sim.data, leads=3, lags=3, **kw)
    assert wide.pretest is None and any("pre-trend test is not reported" in n for n in wide.notes)
    assert narrow.pretest is not None and 0 <= narrow.pretest["p_value"] <= 1


def test_a_list_where_one_column_is_expected_is_named_in_the_error():
    import evaluator

    sim = sick_leave_sib(n_municipalities=6, employees_per_municipality=10, seed=1)
    kw = dict(outcome=["sick_days", "age"], unit="employee", time="month", cohort="first_treated")
    for estimator in (did, event_study, evaluator.staggered_did):
        with pytest.raises(TypeError, match=r"outcome=\['sick_days', 'age'\] is a list.*one outcome per call"):
            estimator(sim.data, **kw)
    with pytest.raises(TypeError, match=r"outcome=.* is a list.*; unit=\['employee'\] is a list.*one column"):
        did(sim.data, **{**kw, "unit": ["employee"]})


def test_fixed_effects_rank_does_not_depend_on_rounding() -> None:
    """1M units missing 15% of 10 periods: the period system's null eigenvalue is rounding, and must stay below the
    rank tolerance (built as diag(W_b) - S it was 3e-6 against a tolerance of 2e-8: K one too many, found by the
    out-of-core estimator, whose sums round differently)."""
    from evaluator.estimators.twfe import _absorb_two_way

    rng = np.random.default_rng(0)
    na, nb = 1_000_000, 10
    a, b = np.repeat(np.arange(na), nb), np.tile(np.arange(nb), na)
    keep = rng.random(len(a)) > 0.15
    a, b = np.unique(a[keep], return_inverse=True)[1], b[keep]
    _, rank = _absorb_two_way(np.ones((len(a), 1)), a, b, int(a.max()) + 1, nb, None)
    assert rank == int(a.max()) + 1 + nb - 1  # connected: one effect less than units plus periods
