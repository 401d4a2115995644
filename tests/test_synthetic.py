"""Tests of evaluator.estimators.synthetic: synthetic DiD, synthetic control and DiD as R synthdid.

Reference numbers: R synthdid 0.0.9 on ``california_prop99`` (``../shared/reference/prop99.md``):
``synthdid_estimate`` -15.60, ``sc_estimate`` -19.62, ``did_estimate`` -27.35 (Arkhangelsky et
al. 2021, AER, Table 1; diff-diff 3.13.0 reproduces R to about 1e-13).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.data.simulate import single_municipality_sib
from evaluator.errors import DataError, DesignError, EvaluatorWarning, UnbalancedPanelError
from evaluator.estimators.synthetic import SyntheticResult, placebo_in_time, synthetic

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
PROP99 = REFERENCE / "prop99.csv"
ARGS = dict(outcome="PacksPerCapita", unit="State", time="Year", treated="treated")


@pytest.fixture(scope="module")
def prop99() -> pd.DataFrame:
    if not PROP99.is_file():
        pytest.skip(f"reference data {PROP99} absent (it lives in ../shared/reference beside the repository)")
    return pd.read_csv(PROP99)


@pytest.fixture(scope="module")
def sdid_fit(prop99: pd.DataFrame) -> SyntheticResult:
    return synthetic(prop99, **ARGS, method="sdid", n_reps=200, seed=12345)


def _factor_panel(
    seed: int, *, n_control: int = 35, n_pre: int = 20, n_post: int = 8, effect: float = 3.0, n_treated: int = 1
) -> pd.DataFrame:
    """Two-factor model y_it = a_i + b_t + l_i'f_t + e_it; the treated units' loadings are drawn as the controls'.

    ``evaluator.simulate.single_municipality_sib`` draws the same model, with the treated unit a convex mix of controls.
    """
    rng = np.random.default_rng(seed)
    n = n_control + n_treated
    T = n_pre + n_post
    f = np.cumsum(rng.normal(0, 1, (T, 2)), axis=0)
    load = rng.normal(0, 1, (n, 2))
    alpha = rng.normal(0, 2, n)
    y = alpha[:, None] + 0.3 * np.arange(T)[None, :] + load @ f.T + rng.normal(0, 0.5, (n, T))
    treat = np.zeros((n, T), dtype=int)
    treat[n_control:, n_pre:] = 1
    y = y + effect * treat
    units = [f"m{i:03d}" for i in range(n)]
    return pd.DataFrame(
        {
            "unit": np.repeat(units, T),
            "time": np.tile(np.arange(2000, 2000 + T), n),
            "y": y.ravel(),
            "d": treat.ravel(),
        }
    )


SIM = dict(outcome="y", unit="unit", time="time", treated="d")
MUNICIPAL = dict(outcome="readmissions", unit="municipality", time="year", treated="treated")


# -- reference: R synthdid on Proposition 99 ---------------------------------------------------------------------
@pytest.mark.reference
@pytest.mark.parametrize(("method", "expected"), [("sdid", -15.60), ("sc", -19.62), ("did", -27.35)])
def test_prop99_point_estimates_match_r(prop99, method, expected):
    fit = synthetic(prop99, **ARGS, method=method, inference=None)
    # R prints two decimals; the brief's tolerance is 0.01 (we agree with R to ~1e-12 for SDID)
    assert fit.estimate == pytest.approx(expected, abs=0.01)


@pytest.mark.reference
def test_prop99_sdid_full_precision(prop99):
    fit = synthetic(prop99, **ARGS, method="sdid", inference=None)
    # R synthdid_estimate / diff-diff (agreeing to 7e-14): -15.6038278727338
    assert fit.estimate == pytest.approx(-15.6038278727338, abs=1e-8)


@pytest.mark.reference
def test_prop99_weights_and_trajectories(sdid_fit):
    w, lam = sdid_fit.unit_weights, sdid_fit.time_weights
    assert w.sum() == pytest.approx(1.0) and (w >= 0).all() and len(w) == 38
    assert lam.sum() == pytest.approx(1.0) and (lam >= 0).all() and len(lam) == 19
    assert "California" not in w.index
    tr = sdid_fit.trajectories
    assert list(tr.columns) == ["treated", "synthetic", "difference", "post", "time_weight"]
    assert int(tr["post"].sum()) == 12 and tr.index[0] == 1970
    # the estimate is the post-mean minus the time-weighted pre-mean of the treated-synthetic gap
    d = tr["difference"]
    assert d[tr["post"]].mean() - (d * tr["time_weight"]).sum() == pytest.approx(sdid_fit.estimate, abs=1e-10)
    assert set(sdid_fit.weights["kind"]) == {"unit", "time"}


@pytest.mark.reference
def test_prop99_placebo_se_converges_to_exhaustive_se(prop99, sdid_fit):
    # with one treated unit, each placebo replication draws one of the 38 controls as pseudo-treated,
    # so the placebo SE resamples the 38 placebo estimates and converges to their (population) sd
    placebo = sdid_fit.placebo_estimates
    assert placebo.shape == (38,)
    exhaustive = float(np.std(placebo, ddof=0))
    many = synthetic(prop99, **ARGS, method="sdid", n_reps=5000, seed=7)
    assert many.se == pytest.approx(exhaustive, rel=0.10)
    # the permutation p-value uses the 38 placebo estimates: resolution 1/39
    assert sdid_fit.info["p_resolution"] == pytest.approx(1 / 39)
    hits = int(np.sum(np.abs(placebo) >= abs(sdid_fit.estimate)))
    assert sdid_fit.pvalue == pytest.approx((1 + hits) / 39)
    # and the R-seeded run (8.37 in R with its own RNG) is a draw from the same distribution
    assert 6.0 < sdid_fit.se < 11.5


@pytest.mark.reference
def test_prop99_placebo_se_matches_diff_diff_draws(prop99):
    # prop99.md: diff-diff 3.13.0's SyntheticDiD (200 placebo replications, numpy's default_rng) gives SDID SEs
    # 8.42, 10.91, 9.70, 10.42 for seeds 12345, 1, 2, 3; we draw the pseudo-treated units the same way
    # (rng.permutation over the sorted controls), so the same seeds give the same SEs (R's own RNG gives 8.37)
    for seed, expected in [(12345, 8.42), (1, 10.91), (2, 9.70), (3, 10.42)]:
        fit = synthetic(prop99, **ARGS, method="sdid", n_reps=200, seed=seed)
        assert fit.se == pytest.approx(expected, abs=0.005)


@pytest.mark.reference
@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:poor pre-period fit")
def test_prop99_exhaustive_placebo_by_independent_refits(prop99, sdid_fit):
    # independently: drop California, make each control in turn the treated unit and fit afresh;
    # a fresh fit recomputes the noise level on 37 controls and starts the solver cold, so the
    # estimates differ a little from synthdid's warm-started replications, but the SE agrees
    rest = prop99[prop99["State"] != "California"].copy()
    estimates = []
    for state in sorted(rest["State"].unique()):
        d = rest.assign(treated=((rest["State"] == state) & (rest["Year"] >= 1989)).astype(int))
        estimates.append(synthetic(d, **ARGS, method="sdid", inference=None).estimate)
    exhaustive = float(np.std(estimates, ddof=0))
    many = synthetic(prop99, **ARGS, method="sdid", n_reps=5000, seed=11)
    assert many.se == pytest.approx(exhaustive, rel=0.10)


@pytest.mark.reference
def test_prop99_shuffled_rows_give_identical_results(prop99, sdid_fit):
    shuffled = prop99.sample(frac=1.0, random_state=3).reset_index(drop=True)
    again = synthetic(shuffled, **ARGS, method="sdid", n_reps=200, seed=12345)
    assert again.estimate == sdid_fit.estimate
    assert again.se == sdid_fit.se
    assert again.pvalue == sdid_fit.pvalue
    pd.testing.assert_series_equal(again.unit_weights, sdid_fit.unit_weights)
    pd.testing.assert_frame_equal(again.trajectories, sdid_fit.trajectories)


@pytest.mark.reference
def test_prop99_seed_matters_and_is_reproducible(prop99, sdid_fit):
    same = synthetic(prop99, **ARGS, method="sdid", n_reps=200, seed=12345)
    other = synthetic(prop99, **ARGS, method="sdid", n_reps=200, seed=1)
    assert same.se == sdid_fit.se
    assert other.se != sdid_fit.se
    assert other.estimate == sdid_fit.estimate


@pytest.mark.reference
def test_prop99_result_family(sdid_fit):
    frame = sdid_fit.to_frame()
    assert list(frame.columns[:7]) == ["term", "estimate", "std_error", "statistic", "p_value", "ci_low", "ci_high"]
    lo, hi = sdid_fit.ci
    assert lo < sdid_fit.estimate < hi
    assert hi - lo == pytest.approx(2 * 1.959964 * sdid_fit.se, rel=1e-5)
    assert sdid_fit.nobs == 39 * 31
    assert sdid_fit.design.n_control == 38 and sdid_fit.design.n_treated == 1
    assert "Synthetic difference-in-differences" in sdid_fit.summary()
    assert "<" in sdid_fit._repr_html_()
    assert sdid_fit.to_dict()["info"]["n_pre"] == 19


@pytest.mark.reference
def test_prop99_plots(sdid_fit):
    import matplotlib

    matplotlib.use("Agg")
    fig = sdid_fit.plot()
    assert fig.axes and len(fig.axes[0].lines) >= 2
    fig = sdid_fit.plot(kind="weights")
    assert len(fig.axes[0].patches) == min(20, int((sdid_fit.unit_weights > 0).sum()))


# -- simulation with a known truth -------------------------------------------------------------------------------
def test_factor_model_small_bias():
    truth = 3.0
    est = {m: [] for m in ("sdid", "sc", "did")}
    for seed in range(12):
        data = _factor_panel(seed, effect=truth)
        for m in est:
            est[m].append(synthetic(data, **SIM, method=m, inference=None).estimate)
    sdid = np.array(est["sdid"])
    # 12 draws, each with noise sd 0.5 over 8 post-periods: the mean error is a few tenths at most
    assert abs(sdid.mean() - truth) < 0.5
    # SDID is more precise than DiD when units load differently on the factors
    assert np.mean((sdid - truth) ** 2) < np.mean((np.array(est["did"]) - truth) ** 2)


def test_several_treated_jackknife_and_bootstrap():
    data = _factor_panel(1, n_control=30, n_treated=4, effect=2.0)
    jk = synthetic(data, **SIM, inference="jackknife")
    boot = synthetic(data, **SIM, inference="bootstrap", n_reps=50, seed=2)
    pl = synthetic(data, **SIM, inference="placebo", n_reps=50, seed=2)
    assert jk.estimate == boot.estimate == pl.estimate
    for fit in (jk, boot, pl):
        assert np.isfinite(fit.se) and fit.se > 0
    assert abs(jk.estimate - 2.0) < 4 * jk.se
    assert boot.draws is not None and boot.draws.shape == (50,)
    # same seed, same bootstrap
    assert synthetic(data, **SIM, inference="bootstrap", n_reps=50, seed=2).se == boot.se


def test_placebo_pvalue_resolution_one_treated():
    data = _factor_panel(4, n_control=30, effect=0.0)
    fit = synthetic(data, **SIM, n_reps=100, seed=5)
    assert fit.info["p_resolution"] == pytest.approx(1 / 31)
    assert 1 / 31 <= fit.pvalue <= 1


# -- bad input -----------------------------------------------------------------------------------------------------
def test_no_treated_unit():
    data = _factor_panel(0).assign(d=0)
    with pytest.raises(DesignError, match="no treated unit"):
        synthetic(data, **SIM)


def test_treatment_switching_off():
    data = _factor_panel(0)
    data.loc[(data["unit"] == "m035") & (data["time"] == data["time"].max()), "d"] = 0
    with pytest.raises(DesignError, match="switches off"):
        synthetic(data, **SIM)


def test_unbalanced_panel():
    data = _factor_panel(0).iloc[1:]
    with pytest.raises(UnbalancedPanelError, match="unbalanced panel"):
        synthetic(data, **SIM)


def _staggered_panel(seed: int) -> pd.DataFrame:
    """Six treated units: three start in 2020, three in 2024; the true effect is 2 in every treated cell."""
    data = _factor_panel(seed, n_control=30, n_treated=6, effect=2.0)
    late = data["unit"].isin(["m033", "m034", "m035"]) & (data["time"] < 2024)
    data.loc[late, "y"] -= 2.0 * data.loc[late, "d"]
    data.loc[late, "d"] = 0
    return data


def test_staggered_is_cohort_fits_averaged_by_treated_cells():
    data = _staggered_panel(1)
    fit = synthetic(data, **SIM, inference=None)
    early = synthetic(data[~data["unit"].isin(["m033", "m034", "m035"])], **SIM, inference=None)
    late = synthetic(data[~data["unit"].isin(["m030", "m031", "m032"])], **SIM, inference=None)
    table = fit.to_frame().set_index("term")
    # each cohort against the never-treated units alone is exactly the block fit on that sub-panel
    assert table.loc["cohort 2020", "estimate"] == pytest.approx(early.estimate, abs=1e-12)
    assert table.loc["cohort 2024", "estimate"] == pytest.approx(late.estimate, abs=1e-12)
    # weights N1_a * T1_a: 3 * 8 and 3 * 4 treated cells
    assert fit.estimate == pytest.approx((24 * early.estimate + 12 * late.estimate) / 36, abs=1e-12)
    assert fit.cohorts == [2020, 2024]
    assert set(fit.weights["cohort"]) == {2020, 2024}
    assert fit.unit_weights.sum().to_numpy() == pytest.approx([1.0, 1.0])
    import matplotlib

    matplotlib.use("Agg")
    assert fit.plot(cohort=2024).axes
    assert fit.plot(kind="weights").axes
    with pytest.raises(ValueError, match="cohort=2022"):
        fit.plot(cohort=2022)


def test_staggered_small_bias():
    est = [synthetic(_staggered_panel(seed), **SIM, inference=None).estimate for seed in range(1, 7)]
    assert abs(np.mean(est) - 2.0) < 0.4


def test_staggered_inference_and_row_order():
    data = _staggered_panel(2)
    pl = synthetic(data, **SIM, n_reps=40, seed=3)
    again = synthetic(data.sample(frac=1.0, random_state=1), **SIM, n_reps=40, seed=3)
    assert (pl.estimate, pl.se, pl.pvalue) == (again.estimate, again.se, again.pvalue)
    assert pl.info["p_resolution"] == pytest.approx(1 / 41)
    jk = synthetic(data, **SIM, inference="jackknife")
    assert jk.estimate == pl.estimate
    for fit in (pl, jk):
        assert np.isfinite(fit.to_frame()["std_error"]).all()


def test_placebo_in_time_refuses_staggered():
    with pytest.raises(DesignError, match="staggered adoption"):
        placebo_in_time(_staggered_panel(0), **SIM)


def test_too_few_controls_for_placebo():
    data = _factor_panel(0, n_control=10)
    with pytest.raises(DesignError, match=r"smallest placebo p-value is 1/11.*at least 19 control units"):
        synthetic(data, **SIM)
    # a coarser level needs fewer controls, and the point estimate alone needs no placebo
    assert np.isfinite(synthetic(data, **SIM, alpha=0.1, seed=1).se)
    assert np.isnan(synthetic(data, **SIM, inference=None).se)


def test_jackknife_needs_two_treated():
    with pytest.raises(DesignError, match="at least 2 treated units"):
        synthetic(_factor_panel(0), **SIM, inference="jackknife")


def test_treatment_not_binary_and_duplicates():
    data = _factor_panel(0)
    with pytest.raises(DataError, match="0 or 1"):
        synthetic(data.assign(d=data["d"] * 2), **SIM)
    with pytest.raises(DataError, match="duplicate"):
        synthetic(pd.concat([data, data.iloc[:1]]), **SIM)


def test_bad_options():
    data = _factor_panel(0)
    with pytest.raises(ValueError, match="method='synth'"):
        synthetic(data, **SIM, method="synth")
    with pytest.raises(DesignError, match="a covariate must be another column than outcome"):
        synthetic(data, **SIM, covariates=["y"])


def test_outside_convex_hull_warns_and_notes():
    data = _factor_panel(2)
    data.loc[data["unit"] == "m035", "y"] += 100.0  # far above every control: no convex combination reaches it
    with pytest.warns(EvaluatorWarning, match="convex hull"):
        fit = synthetic(data, **SIM, method="sc", inference=None)
    assert any("poor pre-period fit" in n for n in fit.notes)
    # synthetic DiD has an intercept: a level shift is absorbed, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", EvaluatorWarning)
        synthetic(data, **SIM, method="sdid", inference=None)


def test_exported_lazily():
    import evaluator

    assert evaluator.synthetic is synthetic
    assert evaluator.SyntheticResult is SyntheticResult


def test_jackknife_did_equals_hand_computed():
    # with uniform weights the estimate is a 2x2 DiD of group means; jackknife by hand, leaving out each unit
    data = _factor_panel(3, n_control=12, n_treated=3)
    fit = synthetic(data, **SIM, method="did", inference="jackknife")
    Y = data.pivot(index="unit", columns="time", values="y").to_numpy()
    treated = data.groupby("unit")["d"].max().to_numpy() == 1
    post = np.arange(Y.shape[1]) >= 20

    def did(keep):
        t, c = Y[keep & treated], Y[keep & ~treated]
        return (t[:, post].mean() - t[:, ~post].mean()) - (c[:, post].mean() - c[:, ~post].mean())

    everyone = np.ones(len(Y), dtype=bool)
    assert fit.estimate == pytest.approx(did(everyone), abs=1e-10)
    u = np.array([did(np.arange(len(Y)) != j) for j in range(len(Y))])
    n = len(u)
    assert fit.se == pytest.approx(np.sqrt((n - 1) / n * np.sum((u - u.mean()) ** 2)), rel=1e-10)


@pytest.mark.reference
def test_prop99_placebo_in_time(prop99):
    check = placebo_in_time(prop99, **ARGS, method="sdid", inference=None)
    # 12 real post-periods, 19 pre-periods: the fake start is 9 periods back, in 1980
    assert check.info["fake_start"] == 1980 and check.info["n_post"] == 9 and check.info["n_pre"] == 10
    # no treatment before 1989: a placebo effect small beside the real -15.6
    assert abs(check.estimate) < 5
    with pytest.raises(DesignError, match="periods_back=18"):
        placebo_in_time(prop99, **ARGS, periods_back=18, inference=None)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:poor pre-period fit")
def test_placebo_interval_coverage_single_treated_unit():
    # 300 draws of evaluator.simulate.single_municipality_sib (the two-factor model of _factor_panel, the treated
    # municipality a convex mix of five controls) with 20 periods before and 8 after, true effect 3, for 30 controls
    # (the fewest the generator allows) and 60: the 95% placebo interval covered in 0.973 (30) and 0.973 (60) of
    # these draws when written; 0.90 leaves room for the Monte Carlo error of 300 draws (sd about 0.014)
    coverage = {}
    for n_control in (30, 60):
        cover = []
        for seed in range(300):
            sim = single_municipality_sib(n_control=n_control, n_pre=20, n_post=8, effect=3.0, seed=1000 + seed)
            fit = synthetic(sim.data, **MUNICIPAL, n_reps=200, seed=seed)
            lo, hi = fit.ci
            cover.append(lo <= 3.0 <= hi)
        coverage[n_control] = float(np.mean(cover))
    print(f"placebo-interval coverage by number of controls: {coverage}")  # shown with pytest -s
    assert all(c >= 0.90 for c in coverage.values()), coverage
