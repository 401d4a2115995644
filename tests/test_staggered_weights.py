"""Sampling weights in ``staggered_did`` (R ``did``'s ``weightsname``), and the weights check shared with TWFE.

Reference numbers are R ``did`` 2.3.0 / DRDID 1.2.3 (equal to ``did`` 2.5.1 to 1e-13), analytic standard
errors, as documented in ``../shared/reference/did_more.md`` section E: ``mpdta_weighted.csv`` is ``mpdta``
with a sampling weight ``w = 1 + (countyreal %% 5) / 4``, constant within a county.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evaluator.errors import DataError, DesignError, FewClustersWarning, WeightsError
from evaluator.estimators.staggered import StaggeredResult, _att_cov, staggered_did
from evaluator.estimators.twfe import did, event_study

ARGS = dict(outcome="lemp", unit="countyreal", time="year", cohort="first.treat", n_boot=0)
KINDS = ("simple", "dynamic", "group", "calendar")

# [R] att_gt(yname="lemp", tname="year", idname="countyreal", gname="first.treat", xformla=~1,
# data=read.csv("mpdta_weighted.csv"), weightsname="w", est_method="dr", bstrap=FALSE, cband=FALSE)
R_ATT_GT_E = [
    (2004, 2004, -0.0006518672, 0.0204190613),
    (2004, 2005, -0.0628644269, 0.0252059916),
    (2004, 2006, -0.1247245330, 0.0312332912),
    (2004, 2007, -0.0963009248, 0.0304741669),
    (2006, 2004, 0.0097689170, 0.0249715944),
    (2006, 2005, 0.0039199449, 0.0200974751),
    (2006, 2006, -0.0099743880, 0.0174959927),
    (2006, 2007, -0.0375124552, 0.0200038472),
    (2007, 2004, 0.0350299526, 0.0150196483),
    (2007, 2005, -0.0044221940, 0.0172515070),
    (2007, 2006, -0.0344603654, 0.0178942648),
    (2007, 2007, -0.0236665465, 0.0179751581),
]
# [R] aggte(res, type=..., bstrap=FALSE, cband=FALSE): overall ATT and SE
R_AGG_E = {
    "simple": (-0.0363179245, 0.0116233539),
    "dynamic": (-0.0712307454, 0.0174942850),
    "group": (-0.0284881959, 0.0131464042),
    "calendar": (-0.0359746960, 0.0132099008),
}
R_PRETEST_E = (9.9827707, 0.0757200)  # Wald statistic and p-value, printed to 7 decimals


@pytest.fixture(scope="module")
def mpdta_weighted(reference_dir) -> pd.DataFrame:
    path = reference_dir / "mpdta_weighted.csv"
    if not path.is_file():
        pytest.skip(f"reference data mpdta_weighted.csv not found at {path}")
    return pd.read_csv(path)


def _panel(n_units: int = 400, n_periods: int = 6, seed: int = 0, n_clusters: int = 15) -> pd.DataFrame:
    """A balanced staggered panel with a time-varying covariate, clusters and a sampling weight per unit."""
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=n_units)
    # selection on the covariate: treated cohorts have larger x
    cohort = np.where(rng.random(n_units) < 1 / (1 + np.exp(-x0)), rng.choice([3, 4, 5], size=n_units), 0)
    cohort[:4] = [0, 3, 4, 5]
    t = np.arange(1, n_periods + 1)
    x = x0[:, None] + 0.2 * rng.normal(size=(n_units, n_periods))
    effect = np.where((cohort[:, None] > 0) & (t >= cohort[:, None]), 1.0 + 0.3 * (t - cohort[:, None]), 0.0)
    y = rng.normal(size=n_units)[:, None] + 0.2 * t + 0.4 * x * t / n_periods + effect
    y = y + rng.normal(size=(n_units, n_periods))
    return pd.DataFrame(
        {
            "id": np.repeat(np.arange(n_units), n_periods),
            "t": np.tile(t, n_units),
            "g": np.repeat(cohort, n_periods),
            "x": x.ravel(),
            "y": y.ravel(),
            "w": np.repeat(rng.uniform(0.2, 3.0, n_units), n_periods),
            "cl": np.repeat(np.arange(n_units) % n_clusters, n_periods),
        }
    )


KW = dict(outcome="y", unit="id", time="t", cohort="g")


def _covs(method: str) -> list[str] | None:
    return None if method == "unconditional" else ["x"]


def _all_numbers(res: StaggeredResult) -> dict[str, pd.DataFrame]:
    """Every table of a result: ATT(g,t) and each aggregation."""
    cols = [c for c in ("estimate", "std_error", "se_analytic", "ci_low", "ci_high", "p_value") if c in res.table]
    out = {"att_gt": res.table[cols]}
    for kind in KINDS:
        out[kind] = res.aggregate(kind).table[cols]  # type: ignore[arg-type]
    return out


def _assert_same(a: StaggeredResult, b: StaggeredResult, *, atol: float, rtol: float = 0.0) -> float:
    worst = 0.0
    for name, ta in _all_numbers(a).items():
        tb = _all_numbers(b)[name]
        assert ta.shape == tb.shape, name
        np.testing.assert_allclose(ta.to_numpy(float), tb.to_numpy(float), atol=atol, rtol=rtol, err_msg=name)
        worst = max(worst, float(np.nanmax(np.abs(ta.to_numpy(float) - tb.to_numpy(float)))))
    return worst


# -- R reference -------------------------------------------------------------------------------------------------------
@pytest.mark.reference
@pytest.mark.parametrize("method", ["dr", "unconditional"])
def test_weighted_unconditional_matches_r_case_e(mpdta_weighted: pd.DataFrame, method: str) -> None:
    res = staggered_did(mpdta_weighted, weights="w", method=method, **ARGS)  # type: ignore[arg-type]
    got = res.att_gt.set_index(["cohort", "time"])
    assert len(got) == len(R_ATT_GT_E)
    for g, t, att, se in R_ATT_GT_E:
        assert got.loc[(g, t), "att"] == pytest.approx(att, abs=1e-6), (g, t)
        assert got.loc[(g, t), "se"] == pytest.approx(se, abs=1e-6), (g, t)
    for kind, (att, se) in R_AGG_E.items():
        agg = res.aggregate(kind)  # type: ignore[arg-type]
        assert agg.estimate == pytest.approx(att, abs=1e-6), kind
        assert agg.se == pytest.approx(se, abs=1e-6), kind
    assert res.estimate == pytest.approx(R_AGG_E["simple"][0], abs=1e-6)
    assert res.info["pretest"]["statistic"] == pytest.approx(R_PRETEST_E[0], abs=1e-6)
    assert res.info["pretest"]["p_value"] == pytest.approx(R_PRETEST_E[1], abs=1e-5)
    assert res.info["weights"] == "w"
    assert any("sampling weights 'w'" in n for n in res.notes)


@pytest.mark.reference
def test_weighted_multiplier_bootstrap_close_to_analytic(mpdta_weighted: pd.DataFrame) -> None:
    res = staggered_did(mpdta_weighted, weights="w", **{**ARGS, "n_boot": 999}, seed=20240613)
    t = res.table
    rel = (t["std_error"] / t["se_analytic"]).to_numpy() - 1
    assert np.all(np.abs(rel) < 0.12), rel  # one IQR-based se from 999 draws has ~4% Monte Carlo error
    assert abs(np.mean(rel)) < 0.04, rel
    for kind in KINDS:
        agg = res.aggregate(kind).table.set_index("term").loc["overall"]  # type: ignore[arg-type]
        assert agg["std_error"] == pytest.approx(agg["se_analytic"], rel=0.1), kind
        assert agg["se_analytic"] == pytest.approx(R_AGG_E[kind][1], abs=1e-6), kind


# -- properties of the weights ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("control", ["never", "not_yet"])
@pytest.mark.parametrize("method", ["unconditional", "dr", "ipw", "reg"])
def test_unit_weights_reproduce_unweighted(method: str, control: str) -> None:
    df = _panel(seed=1).assign(one=1.0)
    kw = dict(**KW, method=method, covariates=_covs(method), control=control, n_boot=0)
    plain = staggered_did(df, **kw)  # type: ignore[arg-type]
    weighted = staggered_did(df, weights="one", **kw)  # type: ignore[arg-type]
    _assert_same(plain, weighted, atol=1e-12)
    assert weighted.info["pretest"]["statistic"] == pytest.approx(plain.info["pretest"]["statistic"], abs=1e-9)


@pytest.mark.parametrize("method", ["unconditional", "dr", "ipw", "reg"])
def test_unit_weights_reproduce_unweighted_bootstrap_and_cluster_bootstrap(method: str) -> None:
    df = _panel(seed=2).assign(one=1.0)
    for cluster in (None, "cl"):  # multiplier bootstrap; cluster multiplier + restricted wild cluster bootstrap
        kw = dict(**KW, method=method, covariates=_covs(method), cluster=cluster, n_boot=199, seed=5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewClustersWarning)
            plain = staggered_did(df, **kw)  # type: ignore[arg-type]
            weighted = staggered_did(df, weights="one", **kw)  # type: ignore[arg-type]
        _assert_same(plain, weighted, atol=1e-12)
        pd.testing.assert_frame_equal(plain.table, weighted.table)


@pytest.mark.parametrize("method", ["unconditional", "dr"])
def test_integer_weights_equal_duplicated_units(method: str) -> None:
    df = _panel(n_units=150, seed=3)
    k = 1 + df["id"] % 3  # 1, 2 or 3 copies of each unit
    df["k"] = k.astype(float)
    reps = df.loc[df.index.repeat(k)].copy()
    reps["copy"] = reps.groupby(["id", "t"]).cumcount()
    reps["id"] = reps["id"] * 10 + reps["copy"]
    reps = reps.sort_values(["id", "t"]).reset_index(drop=True)
    kw = dict(**KW, method=method, covariates=_covs(method), n_boot=0)
    weighted = staggered_did(df, weights="k", **kw)  # type: ignore[arg-type]
    duplicated = staggered_did(reps, **kw)  # type: ignore[arg-type]
    np.testing.assert_allclose(weighted.att_gt["att"], duplicated.att_gt["att"], atol=1e-10, rtol=0)
    for kind in KINDS:  # the weighted cohort shares are the duplicated counts' shares
        a, b = weighted.aggregate(kind), duplicated.aggregate(kind)  # type: ignore[arg-type]
        np.testing.assert_allclose(a.table["estimate"], b.table["estimate"], atol=1e-10, rtol=0, err_msg=kind)


@pytest.mark.parametrize("method", ["unconditional", "dr", "ipw", "reg"])
def test_scaling_the_weights_changes_nothing(method: str) -> None:
    df = _panel(seed=4)
    df["w_big"] = df["w"] * 1234.5
    kw = dict(**KW, method=method, covariates=_covs(method), cluster="cl", n_boot=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FewClustersWarning)
        a = staggered_did(df, weights="w", **kw)  # type: ignore[arg-type]
        b = staggered_did(df, weights="w_big", **kw)  # type: ignore[arg-type]
    _assert_same(a, b, atol=1e-12, rtol=1e-9)


def test_weights_change_the_estimates() -> None:
    df = _panel(seed=5)
    plain = staggered_did(df, **KW, n_boot=0)
    weighted = staggered_did(df, **KW, weights="w", n_boot=0)
    assert np.max(np.abs(plain.att_gt["att"] - weighted.att_gt["att"])) > 1e-3
    # the aggregations weight cohorts by their share of the weights
    G = df.groupby("id")[["g", "w"]].first()
    shares = {g: G.loc[G["g"] == g, "w"].sum() / G["w"].sum() for g in (3, 4, 5)}
    assert weighted.info["cohort_weights"] == pytest.approx(shares, rel=1e-12)
    groups = weighted.aggregate("group").table.set_index("term")["estimate"]
    p = np.array([shares[g] for g in (3, 4, 5)])
    expected = float(np.sum(p * groups[["g=3", "g=4", "g=5"]].to_numpy()) / p.sum())
    assert groups["overall"] == pytest.approx(expected, abs=1e-12)


def test_weighted_means_by_hand() -> None:
    df = _panel(n_units=60, seed=6)
    res = staggered_did(df, **KW, weights="w", n_boot=0)
    wide = df.pivot(index="id", columns="t", values="y")
    unit = df.groupby("id")[["g", "w"]].first()
    dy = wide[3] - wide[2]
    tr, ct = unit["g"] == 3, unit["g"] == 0
    mt = np.average(dy[tr], weights=unit["w"][tr])
    mc = np.average(dy[ct], weights=unit["w"][ct])
    assert res.att_gt.set_index(["cohort", "time"]).loc[(3, 3), "att"] == pytest.approx(mt - mc, abs=1e-12)
    # analytic se: sqrt(sum w^2 (dy - m)^2) / sum w on each side, added in quadrature
    w = unit["w"]
    v = (
        np.sum((w[tr] * (dy[tr] - mt)) ** 2) / w[tr].sum() ** 2
        + np.sum((w[ct] * (dy[ct] - mc)) ** 2) / w[ct].sum() ** 2
    )
    assert res.att_gt.set_index(["cohort", "time"]).loc[(3, 3), "se"] == pytest.approx(np.sqrt(v), rel=1e-12)


def test_zero_weight_units_count_in_no_mean() -> None:
    df = _panel(seed=7)
    out = df["id"].isin([5, 6, 7, 50, 51])
    kw = dict(**KW, weights="w", method="dr", covariates=["x"], n_boot=0)
    dropped = staggered_did(df[~out], **kw)  # type: ignore[arg-type]
    zero = staggered_did(df.assign(w=np.where(out, 0.0, df["w"])), **kw)  # type: ignore[arg-type]
    # ATT(g,t) and their standard errors are those without the units; the aggregations' standard errors are
    # not: the units still count in n, so in the variance of the estimated cohort shares (as in R did)
    np.testing.assert_allclose(zero.att_gt["att"], dropped.att_gt["att"], atol=1e-10, rtol=0)
    np.testing.assert_allclose(zero.att_gt["se"], dropped.att_gt["se"], atol=1e-10, rtol=0)
    for kind in KINDS:
        a, b = zero.aggregate(kind), dropped.aggregate(kind)  # type: ignore[arg-type]
        np.testing.assert_allclose(a.table["estimate"], b.table["estimate"], atol=1e-10, rtol=0, err_msg=kind)


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
def test_covariate_methods_without_covariates_equal_weighted_unconditional(method: str) -> None:
    """With only an intercept the weighted propensity score is the weighted treated share and the weighted
    regression the weighted control mean, so dr, ipw and reg are the weighted difference of means, and their
    influence functions (estimation effects included) are the unconditional one."""
    rng = np.random.default_rng(8)
    n = 300
    d = (rng.random(n) < 0.3).astype(float)
    dy = rng.normal(size=n) + 0.5 * d
    iw = rng.uniform(0.1, 4.0, n)
    iw = iw / iw.mean()
    att, inf, _ = _att_cov(dy, d, np.ones((n, 1)), method, None, iw)
    st, sc = np.sum(iw * d), np.sum(iw * (1 - d))
    mt, mc = np.sum(iw * d * dy) / st, np.sum(iw * (1 - d) * dy) / sc
    assert att == pytest.approx(mt - mc, abs=1e-12)
    psi = n * iw * d * (dy - mt) / st - n * iw * (1 - d) * (dy - mc) / sc
    np.testing.assert_allclose(inf, psi, atol=1e-10, rtol=0)
    # and through staggered_did: without covariates every method is the unconditional estimator
    df = _panel(seed=8)
    a = staggered_did(df, **KW, weights="w", method=method, n_boot=0)  # type: ignore[arg-type]
    b = staggered_did(df, **KW, weights="w", method="unconditional", n_boot=0)
    _assert_same(a, b, atol=0)


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
def test_weighted_influence_function_is_the_derivative_in_the_weights(method: str) -> None:
    """inf_i / w_i = sum(w) * d ATT / d w_i: the influence function, estimation effects of the weighted logit and
    weighted regression included, checked by central differences on a few units of either group."""
    rng = np.random.default_rng(9)
    n = 250
    x = rng.normal(size=n)
    d = (rng.random(n) < 1 / (1 + np.exp(-0.7 * x))).astype(float)
    dy = 1 + x + 0.5 * x**2 + 0.8 * d + rng.normal(size=n)
    X = np.column_stack([np.ones(n), x])
    iw = rng.uniform(0.3, 3.0, n)
    iw = iw / iw.mean()
    _, inf, _ = _att_cov(dy, d, X, method, None, iw)
    h = 1e-6
    for i in [*np.flatnonzero(d == 1)[:3], *np.flatnonzero(d == 0)[:3]]:
        up, down = iw.copy(), iw.copy()
        up[i] += h
        down[i] -= h
        deriv = (_att_cov(dy, d, X, method, None, up)[0] - _att_cov(dy, d, X, method, None, down)[0]) / (2 * h)
        assert inf[i] / iw[i] == pytest.approx(n * deriv, rel=1e-5, abs=1e-7), i


def test_weighted_cluster_bootstrap_runs_and_covers() -> None:
    df = _panel(seed=10, n_clusters=12)
    res = staggered_did(df, **KW, weights="w", method="dr", covariates=["x"], cluster="cl", n_boot=299, seed=3)
    t = res.table
    assert t["p_value"].between(0, 1).all()
    assert ((t["ci_low"] <= t["estimate"]) & (t["estimate"] <= t["ci_high"])).all()
    assert ((t["band_low"] <= t["ci_low"] + 1e-12) & (t["ci_high"] <= t["band_high"] + 1e-12)).all()
    agg = res.aggregate("dynamic").table
    assert ((agg["ci_low"] <= agg["estimate"]) & (agg["estimate"] <= agg["ci_high"])).all()
    assert "restricted wild cluster bootstrap" in res.inference


# -- bad weights ---------------------------------------------------------------------------------------------------
def test_negative_weights_name_column_and_rows() -> None:
    df = _panel(n_units=30, seed=11)
    df.loc[df["id"] == 4, "w"] = -1.0
    with pytest.raises(WeightsError, match=r"column 'w': 6 negative weight\(s\)(.|\n)*data rows 25, 26, 27, 28, 29"):
        staggered_did(df, **KW, weights="w")


def test_missing_weights_name_column_and_rows() -> None:
    df = _panel(n_units=30, seed=12)
    df.loc[[3, 40], "w"] = np.nan
    with pytest.raises(WeightsError, match=r"column 'w': 2 missing weight\(s\) out of 180(.|\n)*data rows 4, 41"):
        staggered_did(df, **KW, weights="w")


def test_weights_varying_within_a_unit_name_the_units_and_the_fix() -> None:
    df = _panel(n_units=30, seed=13)
    df.loc[(df["id"].isin([2, 9])) & (df["t"] == 4), "w"] += 1.0
    with pytest.raises(WeightsError, match=r"vary within 2 of 30 units(.|\n)*units 2, 9(.|\n)*transform\('first'\)"):
        staggered_did(df, **KW, weights="w")


def test_weight_errors_name_the_callers_rows_when_the_panel_is_balanced_first() -> None:
    df = _panel(n_units=30, seed=19).drop(index=3).reset_index(drop=True)  # unit 0 misses a period
    df.loc[df["id"] == 10, "w"] = -1.0
    rows = ", ".join(str(r) for r in np.flatnonzero(df["id"] == 10)[:5] + 1)
    with pytest.raises(WeightsError, match=f"data rows {rows}"):
        staggered_did(df, **KW, weights="w")


def test_every_weight_problem_in_one_error() -> None:
    df = _panel(n_units=30, seed=14)
    df.loc[0, "w"] = -2.0  # unit 0: negative in one period, so also varying
    df.loc[7, "w"] = np.nan
    df.loc[(df["id"] == 20) & (df["t"] == 6), "w"] = 9.0
    with pytest.raises(WeightsError, match="3 problems found") as err:
        staggered_did(df, **KW, weights="w")
    text = str(err.value)
    assert "missing weight" in text and "negative weight" in text and "vary within 2 of 30 units" in text
    assert "units 0, 20" in text
    assert isinstance(err.value, DataError) and isinstance(err.value, DesignError)


def test_cohort_with_zero_weights_is_named() -> None:
    df = _panel(n_units=60, seed=15)
    df.loc[df["g"] == 4, "w"] = 0.0
    with pytest.raises(WeightsError, match=r"zero for every unit of 1 cohort(.|\n)*cohorts 4(.|\n)*fix:"):
        staggered_did(df, **KW, weights="w")
    df.loc[df["g"] == 0, "w"] = 0.0
    with pytest.raises(WeightsError, match=r"2 problems(.|\n)*never-treated unit(.|\n)*control=\"not_yet\""):
        staggered_did(df, **KW, weights="w")


def test_not_yet_cells_without_weighted_controls_are_skipped() -> None:
    df = _panel(n_units=80, seed=16)
    df = df[df["g"] != 0]  # no never-treated: cohort 5 serves only as not-yet-treated control
    full = staggered_did(df, **KW, control="not_yet", weights="w", n_boot=0)
    zero5 = df.assign(w=np.where(df["g"] == 5, 0.0, df["w"]))
    res = staggered_did(zero5, **KW, control="not_yet", weights="w", n_boot=0)
    assert len(res.att_gt) < len(full.att_gt)
    assert any("control unit of positive weight were skipped" in n for n in res.notes)


def test_non_numeric_and_absent_weight_columns() -> None:
    df = _panel(n_units=20, seed=17)
    with pytest.raises(WeightsError, match="column 'w': must be numeric"):
        staggered_did(df.assign(w="heavy"), **KW, weights="w")
    with pytest.raises(DataError, match=r"column 'nope': column not found \(weights='nope'\)"):
        staggered_did(df, **KW, weights="nope")
    with pytest.raises(TypeError, match="weights="):
        staggered_did(df, **KW, weights=["w"])  # type: ignore[arg-type]


@pytest.mark.parametrize("estimator", [did, event_study])
def test_twfe_shares_the_weights_check(estimator) -> None:
    df = _panel(n_units=30, seed=18)
    bad = df.assign(w=np.where(df.index == 2, -1.0, np.where(df.index == 5, np.nan, df["w"])))
    with pytest.raises(WeightsError, match=r"2 problems(.|\n)*missing weight(.|\n)*data rows 6(.|\n)*negative"):
        estimator(bad, **KW, weights="w")
    with pytest.raises(WeightsError, match="zero everywhere"):
        estimator(df.assign(w=0.0), **KW, weights="w")
    with pytest.raises(WeightsError, match="infinite weight"):
        estimator(df.assign(w=np.where(df.index == 1, np.inf, df["w"])), **KW, weights="w")
