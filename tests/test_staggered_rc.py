"""Tests of evaluator.estimators.staggered_rc: Callaway-Sant'Anna on repeated cross-sections and unbalanced panels.

Reference numbers are R ``did`` 2.3.0 (and 2.5.1, equal to 1e-13) with DRDID 1.2.3 on ``mpdta``, analytic
influence-function standard errors, as documented in ``../shared/reference/did_more.md``:

- A: ``mpdta_unbalanced.csv``, ``allow_unbalanced_panel=TRUE``, ``est_method="dr"``, ``xformla=~lpop``;
- B: the same, unconditional (``xformla=~1``);
- C: ``mpdta.csv`` as repeated cross-sections (``panel=FALSE``, no ``idname``), unconditional;
- D: the same, ``est_method="dr"``, ``xformla=~lpop`` (DRDID ``drdid_rc``).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evaluator.errors import (
    DataError,
    DesignError,
    DroppedUnitsWarning,
    EvaluatorWarning,
    MissingPeriodWarning,
    SmallCohortWarning,
    UnbalancedPanelError,
)
from evaluator.estimators.staggered import StaggeredResult, staggered_did
from evaluator.estimators.staggered_rc import staggered_did_rc

REFERENCE = Path(__file__).resolve().parents[1].parent / "shared" / "reference"
ARGS = dict(outcome="lemp", time="year", cohort="first.treat", n_boot=0)
KINDS = ("simple", "dynamic", "group", "calendar")


def _read(name: str) -> pd.DataFrame:
    path = REFERENCE / name
    if not path.is_file():
        pytest.skip(f"reference data {name} not found at {path} (../shared/ is not beside this checkout)")
    return pd.read_csv(path)


@pytest.fixture(scope="module")
def mpdta() -> pd.DataFrame:
    return _read("mpdta.csv")


@pytest.fixture(scope="module")
def unbalanced() -> pd.DataFrame:
    return _read("mpdta_unbalanced.csv")


# -- reference values: did_more.md, cases A-D --------------------------------------------------------------------------
# group, time, ATT, analytic SE; aggregations (overall ATT, SE); Wald pre-test (W, p rounded by R to 5 decimals)
R_CASES = {
    "A": {
        "att_gt": [
            (2004, 2004, -0.0145480136, 0.0273705416),
            (2004, 2005, 0.0471355192, 0.0556175443),
            (2004, 2006, -0.1424177674, 0.0401980016),
            (2004, 2007, -0.1687246156, 0.0600032838),
            (2006, 2004, -0.0136064491, 0.0518196429),
            (2006, 2005, -0.0566110478, 0.0342821299),
            (2006, 2006, 0.0532054291, 0.0376513831),
            (2006, 2007, -0.0322915795, 0.0582331595),
            (2007, 2004, 0.0241452258, 0.0303826236),
            (2007, 2005, 0.0131743478, 0.0283063596),
            (2007, 2006, -0.0464928372, 0.0293560373),
            (2007, 2007, -0.0397129378, 0.0289568768),
        ],
        "aggregate": {
            "simple": (-0.0341475547, 0.0208691768),
            "dynamic": (-0.0836441966, 0.0273477765),
            "group": (-0.0323397500, 0.0229157751),
            "calendar": (-0.0077706501, 0.0197801962),
        },
        "wald": (7.1661043, 0.2085800),
    },
    "B": {
        "att_gt": [
            (2004, 2004, 0.1204251806, 0.1003827106),
            (2004, 2005, 0.6271283998, 0.2905803774),
            (2004, 2006, -0.0063303121, 0.1066891413),
            (2004, 2007, -0.1298856538, 0.2379244585),
            (2006, 2004, -0.0443021278, 0.1303576453),
            (2006, 2005, 0.0245328536, 0.0711858935),
            (2006, 2006, -0.0318782793, 0.0704659760),
            (2006, 2007, -0.2030906974, 0.1683848223),
            (2007, 2004, 0.0369472209, 0.0867837066),
            (2007, 2005, -0.0709708533, 0.0830696503),
            (2007, 2006, 0.0371578410, 0.0815891212),
            (2007, 2007, 0.0696212166, 0.0671918067),
        ],
        "aggregate": {
            "simple": (0.0410596996, 0.0586321566),
            "dynamic": (-0.0022206000, 0.0952601072),
            "group": (0.0391501985, 0.0557496433),
            "calendar": (0.1789523231, 0.0921186556),
        },
        "wald": (3.8228470, 0.5751900),
    },
    "C": {
        "att_gt": [
            (2004, 2004, -0.0105032462, 0.4758294503),
            (2004, 2005, -0.0704231581, 0.4822699070),
            (2004, 2006, -0.1372587389, 0.4856213147),
            (2004, 2007, -0.1008113631, 0.4789545138),
            (2006, 2004, 0.0065201124, 0.3041051634),
            (2006, 2005, -0.0027508188, 0.3068654313),
            (2006, 2006, -0.0045946070, 0.3112691437),
            (2006, 2007, -0.0412244715, 0.3124697604),
            (2007, 2004, 0.0305066556, 0.2218944969),
            (2007, 2005, -0.0027258929, 0.2233045833),
            (2007, 2006, -0.0310871194, 0.2236433617),
            (2007, 2007, -0.0260544107, 0.2232215028),
        ],
        "aggregate": {
            "simple": (-0.0399512752, 0.1620999496),
            "dynamic": (-0.0772398215, 0.2521136897),
            "group": (-0.0310182822, 0.1678844075),
            "calendar": (-0.0417004321, 0.2476534004),
        },
        "wald": (0.0387611, 0.9999800),
    },
    "D": {
        "att_gt": [
            (2004, 2004, -0.0145296683, 0.0897357692),
            (2004, 2005, -0.0764218817, 0.0924330883),
            (2004, 2006, -0.1404483368, 0.0954476312),
            (2004, 2007, -0.1069038981, 0.0890462695),
            (2006, 2004, -0.0004721461, 0.0996127779),
            (2006, 2005, -0.0062025246, 0.0942345372),
            (2006, 2006, 0.0009605737, 0.0935518611),
            (2006, 2007, -0.0412938656, 0.0927697341),
            (2007, 2004, 0.0267277962, 0.0763619364),
            (2007, 2005, -0.0045765708, 0.0764327436),
            (2007, 2006, -0.0284474872, 0.0770510897),
            (2007, 2007, -0.0287813610, 0.0790590994),
        ],
        "aggregate": {
            "simple": (-0.0417517721, 0.0460317505),
            "dynamic": (-0.0803539498, 0.0513919967),
            "group": (-0.0328195972, 0.0571275667),
            "calendar": (-0.0441773578, 0.0490338730),
        },
        "wald": (0.2821456, 0.9979700),
    },
}
# how each case is called here: (data fixture, keyword arguments of staggered_did)
CALLS = {
    "A": ("unbalanced", dict(unit="countyreal", allow_unbalanced_panel=True, method="dr", covariates=["lpop"])),
    "B": ("unbalanced", dict(unit="countyreal", allow_unbalanced_panel=True)),
    "C": ("mpdta", dict(panel=False)),
    "D": ("mpdta", dict(panel=False, method="dr", covariates=["lpop"])),
}


def _case(case: str, request: pytest.FixtureRequest) -> StaggeredResult:
    fixture, kwargs = CALLS[case]
    return staggered_did(request.getfixturevalue(fixture), **ARGS, **kwargs)


def _worst_att_gt(res: StaggeredResult, expected: list[tuple[int, int, float, float]]) -> tuple[float, float]:
    got = res.att_gt.set_index(["cohort", "time"])
    assert len(got) == len(expected)
    d_att = max(abs(got.loc[(g, t), "att"] - a) for g, t, a, _ in expected)
    d_se = max(abs(got.loc[(g, t), "se"] - s) for g, t, _, s in expected)
    return float(d_att), float(d_se)


@pytest.mark.reference
@pytest.mark.parametrize("case", list(R_CASES))
def test_matches_r_did(case: str, request: pytest.FixtureRequest) -> None:
    res = _case(case, request)
    ref = R_CASES[case]
    d_att, d_se = _worst_att_gt(res, ref["att_gt"])
    assert d_att < 1e-6 and d_se < 1e-6, (d_att, d_se)
    for kind, (att, se) in ref["aggregate"].items():
        agg = res.aggregate(kind)
        assert agg.estimate == pytest.approx(att, abs=1e-6), kind
        assert agg.se == pytest.approx(se, abs=1e-6), kind
    W, p = ref["wald"]
    assert res.pretest["statistic"] == pytest.approx(W, abs=1e-6)
    assert res.pretest["p_value"] == pytest.approx(p, abs=5e-6)  # R rounds p to 5 decimals
    assert res.pretest["df"] == 5
    # the headline is the simple aggregate
    assert res.estimate == pytest.approx(ref["aggregate"]["simple"][0], abs=1e-9)


@pytest.mark.reference
def test_case_records_the_design(mpdta: pd.DataFrame, unbalanced: pd.DataFrame) -> None:
    rc = staggered_did(mpdta, panel=False, **ARGS)
    assert rc.info["panel"] is False and rc.info["n_units"] == rc.info["n_obs"] == 2500 == rc.nobs
    assert "repeated cross-sections" in rc.estimator
    assert rc.att_gt.set_index(["cohort", "time"]).loc[(2004, 2004), "n_treated"] == 40  # 20 counties x 2 years
    un = staggered_did(unbalanced, unit="countyreal", allow_unbalanced_panel=True, **ARGS)
    assert un.info["panel"] is True and un.info["n_units"] == 500 and un.nobs == 2221
    assert "unbalanced panel" in un.estimator
    assert "summed within units" in un.inference


# -- the estimators agree where they must ------------------------------------------------------------------------------
@pytest.mark.reference
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"control": "not_yet"}, {"base_period": "universal"}, {"anticipation": 1}],
    ids=["never", "not_yet", "universal", "anticipation"],
)
@pytest.mark.filterwarnings("ignore::evaluator.errors.DroppedUnitsWarning")  # anticipation 1: cohort 2004 goes
def test_cross_sections_of_a_balanced_panel_give_the_panel_att(mpdta: pd.DataFrame, kwargs: dict) -> None:
    # Without covariates the difference of four means of a balanced panel is the mean of the differences:
    # the same cells, bases and controls must come out whichever path planned them.
    pan = staggered_did(mpdta, unit="countyreal", **ARGS, **kwargs).att_gt
    rc = staggered_did(mpdta, panel=False, **ARGS, **kwargs).att_gt
    pd.testing.assert_frame_equal(
        pan[["cohort", "time", "att"]], rc[["cohort", "time", "att"]], check_exact=False, atol=1e-12
    )
    assert (rc["se"].dropna() > pan["se"].dropna()).all()  # rows of a unit are correlated: RC ignores it


@pytest.mark.reference
@pytest.mark.parametrize("control", ["never", "not_yet"])
def test_unit_sums_on_a_balanced_panel_equal_the_panel_estimator(mpdta: pd.DataFrame, control: str) -> None:
    # The unbalanced-panel path summed within units is the panel estimator when nothing is missing
    # (staggered_did itself sends a balanced panel to the panel path, as R did).
    kw = dict(**ARGS, control=control)
    pan = staggered_did(mpdta, unit="countyreal", **kw)
    un = staggered_did_rc(mpdta, unit="countyreal", panel=True, **kw)
    np.testing.assert_allclose(un.att_gt["att"], pan.att_gt["att"], atol=1e-12)
    np.testing.assert_allclose(un.att_gt["se"], pan.att_gt["se"], rtol=1e-10)
    for kind in KINDS:
        a, b = un.aggregate(kind), pan.aggregate(kind)
        assert a.estimate == pytest.approx(b.estimate, abs=1e-12) and a.se == pytest.approx(b.se, rel=1e-10)
    assert un.pretest["statistic"] == pytest.approx(pan.pretest["statistic"], rel=1e-8)
    same = staggered_did(mpdta, unit="countyreal", allow_unbalanced_panel=True, **kw)
    pd.testing.assert_frame_equal(same.to_frame(), pan.to_frame())  # balanced: the panel estimator itself


@pytest.mark.reference
def test_methods_agree_without_covariates(mpdta: pd.DataFrame) -> None:
    base = staggered_did(mpdta, panel=False, **ARGS).att_gt
    for method in ("ipw", "reg", "unconditional"):
        other = staggered_did(mpdta, panel=False, method=method, **ARGS).att_gt  # type: ignore[arg-type]
        np.testing.assert_allclose(other["att"], base["att"], atol=1e-12)
        np.testing.assert_allclose(other["se"], base["se"], rtol=1e-10)


@pytest.mark.reference
def test_ipw_and_reg_with_covariate_close_to_dr(mpdta: pd.DataFrame, unbalanced: pd.DataFrame) -> None:
    for method in ("ipw", "reg"):
        dr = staggered_did(mpdta, panel=False, covariates="lpop", method="dr", **ARGS).att_gt
        other = staggered_did(mpdta, panel=False, covariates="lpop", method=method, **ARGS).att_gt  # type: ignore
        assert np.allclose(other["att"], dr["att"], atol=0.02), method
        assert other["se"].notna().all()
    # In the unbalanced panel a cohort's rows change between periods. Only drdid_rc's regressions of the treated
    # rows absorb that (through lpop); std_ipw_did_rc and reg_did_rc use the treated rows' raw means, as DRDID.
    kw = dict(unit="countyreal", allow_unbalanced_panel=True, covariates="lpop", **ARGS)
    raw = staggered_did(unbalanced, unit="countyreal", allow_unbalanced_panel=True, **ARGS).att_gt
    for method in ("ipw", "reg"):
        other = staggered_did(unbalanced, method=method, **kw).att_gt  # type: ignore[arg-type]
        assert other["se"].notna().all() and np.corrcoef(other["att"], raw["att"])[0, 1] > 0.9


@pytest.mark.parametrize("method", ["dr", "ipw", "reg"])
def test_influence_functions_are_derivatives_of_the_estimates(method: str) -> None:
    # The influence function of row i is d ATT / d eps along (1 - eps) F_n + eps delta_i, F_n the empirical law of
    # (y, post, d, x, w): each row's weight times (1 - eps), plus n eps w_i at row i. Central differences, one cell.
    from evaluator.estimators.staggered_rc import _att_rc, _ps

    rng = np.random.default_rng(3)
    n = 400
    x = rng.normal(size=n)
    d = (rng.random(n) < 1 / (1 + np.exp(-0.5 * x))).astype(float)
    post = (rng.random(n) < 0.5).astype(float)
    y = 1 + x + 0.5 * post + d * (0.3 + 0.4 * x) + post * d * (1.0 + 0.3 * x) + rng.normal(size=n)
    X = np.column_stack([np.ones(n), x])
    w = rng.uniform(0.5, 2.0, size=n)  # unequal weights: the weighted logit and regressions
    att, inf, _ = _att_rc(y, post, d, X, w, method)
    if method == "dr":
        # DRDID 1.2.3's drdid_rc (and so R did, and this package) adds the estimation effect of the control rows'
        # pre-period regression with the sign of the post-period one; for a doubly robust estimator that term
        # vanishes asymptotically (so the standard errors stay valid), but it is not the derivative. Undo it here.
        wn, pre = w / w.mean(), 1 - post
        ps = _ps(X, d, wn)
        odds = np.where(d == 0, ps / (1 - ps) * (ps < 0.995), 0.0)
        w_t0, w_c0, mw = wn * d * pre, wn * odds * pre, wn * (1 - d) * pre
        beta = np.linalg.solve((X.T * mw) @ X, (X.T * mw) @ y)
        lin = mw * (y - X @ beta) * (X @ np.linalg.solve((X.T * mw) @ X / n, -(X.T @ w_t0) / w_t0.sum()))
        lin_c = mw * (y - X @ beta) * (X @ np.linalg.solve((X.T * mw) @ X / n, -(X.T @ w_c0) / w_c0.sum()))
        inf = inf - 2 * lin + 2 * lin_c
    eps = 1e-6
    for i in (0, 7, 123, 399):
        up, down = w * (1 - eps), w * (1 + eps)
        up[i] += n * eps * w[i]
        down[i] -= n * eps * w[i]
        deriv = (_att_rc(y, post, d, X, up, method)[0] - _att_rc(y, post, d, X, down, method)[0]) / (2 * eps)
        assert deriv == pytest.approx(inf[i], rel=1e-5, abs=1e-7), (method, i)


# -- sampling weights --------------------------------------------------------------------------------------------------
@pytest.mark.reference
@pytest.mark.parametrize("case", list(R_CASES))
def test_weights_of_one_reproduce_unweighted_results(case: str, request: pytest.FixtureRequest) -> None:
    fixture, kwargs = CALLS[case]
    data = request.getfixturevalue(fixture).assign(w=1.0)
    plain = staggered_did(data, **ARGS, **kwargs)
    weighted = staggered_did(data, weights="w", **ARGS, **kwargs)
    pd.testing.assert_frame_equal(weighted.to_frame(), plain.to_frame(), check_exact=True)
    for kind in KINDS:
        pd.testing.assert_frame_equal(weighted.aggregate(kind).to_frame(), plain.aggregate(kind).to_frame())
    assert weighted.pretest == plain.pretest
    assert weighted.info["weights"] == "w"


@pytest.mark.reference
@pytest.mark.parametrize("covariates", [None, ["lpop"]], ids=["unconditional", "dr_lpop"])
def test_integer_weights_equal_repeated_rows(mpdta: pd.DataFrame, covariates: list[str] | None) -> None:
    # A row of weight 2 is two rows of weight 1: same means, regressions, logit and cohort shares.
    w = 1 + (mpdta["countyreal"] % 3).to_numpy()
    weighted = staggered_did(mpdta.assign(w=w.astype(float)), panel=False, weights="w", covariates=covariates, **ARGS)
    repeated = staggered_did(mpdta.loc[mpdta.index.repeat(w)], panel=False, covariates=covariates, **ARGS)
    np.testing.assert_allclose(weighted.att_gt["att"], repeated.att_gt["att"], atol=1e-9)
    for kind in KINDS:
        assert weighted.aggregate(kind).estimate == pytest.approx(repeated.aggregate(kind).estimate, abs=1e-9)
    # the same for whole units of an unbalanced panel (copies get new ids)
    un = _read("mpdta_unbalanced.csv")
    wu = 1 + (un["countyreal"] % 3).to_numpy()
    copies = un.loc[un.index.repeat(wu)].copy()
    copies["countyreal"] = copies["countyreal"] * 10 + copies.groupby(["countyreal", "year"]).cumcount()
    kw = dict(unit="countyreal", allow_unbalanced_panel=True, covariates=covariates, **ARGS)
    a = staggered_did(un.assign(w=wu.astype(float)), weights="w", **kw)
    b = staggered_did(copies, **kw)
    np.testing.assert_allclose(a.att_gt["att"], b.att_gt["att"], atol=1e-9)
    assert a.aggregate("dynamic").estimate == pytest.approx(b.aggregate("dynamic").estimate, abs=1e-9)


def test_weights_are_checked() -> None:
    data = _rc_sample(seed=3)
    bad = data.assign(w=1.0)
    bad.loc[bad.index[:2], "w"] = -1.0
    with pytest.raises(DataError, match="negative weight"):
        staggered_did(bad, panel=False, weights="w", **SIM)


# -- simulation against a known truth ----------------------------------------------------------------------------------
SIM = dict(outcome="sick_days", time="month", cohort="first_treated", n_boot=0)


def _rc_sample(seed: int = 1, employees: int = 1500) -> pd.DataFrame:
    """Repeated cross-sections from sick_leave_sib: every employee observed in one month drawn at random."""
    from evaluator.data.simulate import sick_leave_sib

    sim = sick_leave_sib(
        n_municipalities=20, employees_per_municipality=employees, n_periods=12, waves=(5, 8), seed=seed
    )
    data = sim.data.sample(frac=1.0, random_state=seed).drop_duplicates("employee").sort_values(["month", "employee"])
    data.attrs["truth"] = sim.truth["for_rows"](data)
    return data.reset_index(drop=True)


def test_cross_sections_recover_the_simulated_truth() -> None:
    data = _rc_sample()
    truth = data.attrs["truth"]
    assert data["employee"].is_unique
    res = staggered_did(data, panel=False, cluster="municipality", **SIM)
    assert abs(res.estimate - truth["simple"]) < 4 * res.se
    dyn = res.aggregate("dynamic")
    assert abs(dyn.estimate - truth["dynamic_overall"]) < 4 * dyn.se
    cells = res.att_gt.set_index(["cohort", "time"])
    true = truth["att_gt"].set_index(["cohort", "time"])["att"]
    z = (cells["att"] - true.reindex(cells.index).fillna(0.0)) / cells["se"]
    assert np.abs(z).max() < 4.5
    # covariates (age, tenure: the employee's own) do not move a randomised-within-municipality estimate much
    dr = staggered_did(data, panel=False, covariates=["age", "tenure"], method="dr", **SIM)
    assert abs(dr.estimate - truth["simple"]) < 4 * dr.se


def test_unbalanced_panel_recovers_the_simulated_truth() -> None:
    from evaluator.data.simulate import sick_leave_sib

    sim = sick_leave_sib(
        n_municipalities=20, employees_per_municipality=100, n_periods=12, waves=(5, 8), seed=2, attrition=0.03
    )
    kw = dict(unit="employee", cluster="municipality", **SIM)
    with pytest.warns(DroppedUnitsWarning, match="not observed in all 12 periods"):
        balanced = staggered_did(sim.data, **kw)
    res = staggered_did(sim.data, allow_unbalanced_panel=True, **kw)
    assert res.nobs == len(sim.data) > balanced.nobs
    assert abs(res.estimate - sim.truth["simple"]) < 4 * res.se
    dyn = res.aggregate("dynamic")
    assert abs(dyn.estimate - sim.truth["dynamic_overall"]) < 4 * dyn.se


# -- inference: clusters and the bootstrap -----------------------------------------------------------------------------
def test_clustered_inference_sums_within_clusters() -> None:
    data = _rc_sample(seed=4, employees=400)
    data["row"] = np.arange(len(data))
    plain = staggered_did(data, panel=False, **SIM)
    by_row = staggered_did(data, panel=False, cluster="row", **SIM)
    np.testing.assert_allclose(by_row.att_gt["se"], plain.att_gt["se"], rtol=1e-12)
    clustered = staggered_did(data, panel=False, cluster="municipality", **SIM)
    np.testing.assert_allclose(clustered.att_gt["att"], plain.att_gt["att"], atol=0)
    assert clustered.info["n_clusters"] == 20
    # municipality-by-month shocks make rows of a municipality correlated: clustered SEs are larger on average
    assert (clustered.att_gt["se"] / plain.att_gt["se"]).mean() > 1.0
    # by hand: the simple aggregate's clustered SE from the cell influence functions
    agg = clustered.aggregate("simple")
    assert agg.se > plain.aggregate("simple").se


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"control": "not_yet"},
        {"base_period": "universal"},
        {"covariates": ["age", "tenure"], "method": "dr", "control": "not_yet"},
        {"weights": "w"},
    ],
    ids=["never", "not_yet", "universal", "dr-not_yet", "weighted"],
)
def test_blockwise_covariance_equals_the_dense_product(kwargs: dict) -> None:
    # without the bootstrap, cross-section covariances are summed block by block; with it, from the dense
    # rows x cells matrix (se_analytic): the two must agree, for the cells and for every aggregation
    data = _rc_sample(seed=8, employees=150)
    data["w"] = 1.0 + (np.arange(len(data)) % 4) / 3.0
    fast = staggered_did(data, panel=False, **{**SIM, **kwargs})
    dense = staggered_did(data, panel=False, seed=1, **{**SIM, **kwargs, "n_boot": 19})
    np.testing.assert_allclose(dense.to_frame()["se_analytic"], fast.to_frame()["std_error"], rtol=1e-10)
    for kind in KINDS:
        np.testing.assert_allclose(
            dense.aggregate(kind).to_frame()["se_analytic"], fast.aggregate(kind).to_frame()["std_error"], rtol=1e-10
        )


def test_unbalanced_cluster_must_hold_whole_units(unbalanced: pd.DataFrame) -> None:
    data = unbalanced.assign(state=unbalanced["countyreal"] // 1000)
    res = staggered_did(data, unit="countyreal", allow_unbalanced_panel=True, cluster="state", **ARGS)
    assert res.info["n_clusters"] == data["state"].nunique()
    by_unit = staggered_did(data, unit="countyreal", allow_unbalanced_panel=True, cluster="countyreal", **ARGS)
    plain = staggered_did(data, unit="countyreal", allow_unbalanced_panel=True, **ARGS)
    np.testing.assert_allclose(by_unit.att_gt["se"], plain.att_gt["se"], rtol=1e-12)
    mixed = data.copy()
    mixed.loc[mixed.index[0], "state"] = 99
    with pytest.raises(DataError, match="clusters must contain whole units"):
        staggered_did(mixed, unit="countyreal", allow_unbalanced_panel=True, cluster="state", **ARGS)


def test_bootstrap_reproducible_and_close_to_analytic() -> None:
    data = _rc_sample(seed=5, employees=500)
    kw = {**SIM, "n_boot": 999}
    a = staggered_did(data, panel=False, seed=7, **kw)
    b = staggered_did(data, panel=False, seed=7, **kw)
    pd.testing.assert_frame_equal(a.to_frame(), b.to_frame())
    t = a.to_frame()
    assert t["std_error"].div(t["se_analytic"]).between(0.85, 1.15).all()
    assert (t["band_high"] - t["band_low"] >= t["ci_high"] - t["ci_low"] - 1e-12).all()
    dyn = a.aggregate("dynamic").to_frame()
    assert {"band_low", "band_high", "se_analytic"} <= set(dyn.columns)
    assert "observation level" in a.inference


def test_cluster_bootstrap_runs_on_cross_sections_and_unbalanced_panels(unbalanced: pd.DataFrame) -> None:
    data = _rc_sample(seed=6, employees=200)
    res = staggered_did(data, panel=False, cluster="municipality", seed=1, **{**SIM, "n_boot": 199})
    t = res.to_frame()
    finite = t["std_error"].notna()
    assert ((t["ci_low"] <= t["estimate"]) & (t["estimate"] <= t["ci_high"]))[finite].all()
    assert "restricted wild cluster bootstrap" in res.inference
    state = unbalanced.assign(state=unbalanced["countyreal"] // 1000 % 7)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few clusters
        un = staggered_did(
            state, unit="countyreal", allow_unbalanced_panel=True, cluster="state", **{**ARGS, "n_boot": 99}, seed=1
        )
        group = un.aggregate("group")
    assert un.to_frame()["p_value"].between(0, 1).all()
    assert group.table["estimate"].notna().all()


# -- unbalanced panels by default: dropped, as R did -------------------------------------------------------------------
@pytest.mark.reference
def test_unbalanced_panel_drops_units_by_default(unbalanced: pd.DataFrame) -> None:
    with pytest.warns(DroppedUnitsWarning, match=r"dropped 279 of 500 units \(1116 rows\) not observed in all 5"):
        res = staggered_did(unbalanced, unit="countyreal", **ARGS)
    assert res.info["unbalanced_dropped"] == {"units": 279, "rows": 1116, "units_before": 500, "periods": 5}
    assert res.info["n_units"] == 221
    assert any("allow_unbalanced_panel=False" in note for note in res.notes)
    complete = unbalanced.groupby("countyreal")["year"].transform("size") == 5
    by_hand = staggered_did(unbalanced[complete], unit="countyreal", **ARGS)
    pd.testing.assert_frame_equal(res.to_frame(), by_hand.to_frame())


def test_no_unit_in_every_period_raises() -> None:
    data = pd.DataFrame({"id": [1, 1, 2, 2], "t": [1, 2, 2, 3], "g": [0, 0, 3, 3], "y": [1.0, 2.0, 3.0, 4.0]})
    with pytest.raises(UnbalancedPanelError, match="allow_unbalanced_panel=True"):
        staggered_did(data, outcome="y", unit="id", time="t", cohort="g", n_boot=0)


# -- bad input ---------------------------------------------------------------------------------------------------------
@pytest.mark.reference
def test_cross_sections_with_a_panel_unit_column_warn(mpdta: pd.DataFrame) -> None:
    with pytest.warns(EvaluatorWarning, match="the data are a panel.*use panel=True"):
        res = staggered_did(mpdta, unit="countyreal", panel=False, **ARGS)
    assert any("panel=False on a panel" in note for note in res.notes)
    pd.testing.assert_frame_equal(res.att_gt, staggered_did(mpdta, panel=False, **ARGS).att_gt)  # as R: id ignored


@pytest.mark.reference
def test_cross_sections_with_ids_repeating_within_a_period_raise(mpdta: pd.DataFrame) -> None:
    data = mpdta.assign(state=mpdta["countyreal"] // 1000)
    with pytest.raises(DataError, match=r"repeat within a period.*(?s:.*)cluster="):
        staggered_did(data, unit="state", panel=False, **ARGS)


@pytest.mark.reference
def test_panel_with_duplicate_rows_suggests_cross_sections(mpdta: pd.DataFrame, unbalanced: pd.DataFrame) -> None:
    dup = pd.concat([unbalanced, unbalanced.iloc[:1]])
    with pytest.raises(DataError, match=r"duplicate unit-period(?s:.*)panel=False"):
        staggered_did(dup, unit="countyreal", allow_unbalanced_panel=True, **ARGS)
    with pytest.raises(DataError, match=r"duplicate unit-period(?s:.*)panel=False"):
        staggered_did(pd.concat([mpdta, mpdta.iloc[:1]]), unit="countyreal", **ARGS)


@pytest.mark.reference
def test_unit_required_for_panels_and_flags_checked(mpdta: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="panel=False"):
        staggered_did(mpdta, **ARGS)
    with pytest.raises(ValueError, match="panel='no'"):
        staggered_did(mpdta, panel="no", **ARGS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="allow_unbalanced_panel=1"):
        staggered_did(mpdta, unit="countyreal", allow_unbalanced_panel=1, **ARGS)  # type: ignore[arg-type]
    with pytest.raises(DataError, match="covariate 'nope'"):
        staggered_did(mpdta, panel=False, covariates=["nope"], **ARGS)
    with pytest.raises(DesignError, match="constant"):
        staggered_did(mpdta.assign(c=1.0), panel=False, covariates=["lpop", "c"], **ARGS)


@pytest.mark.reference
def test_cohort_varying_within_a_unit_raises(unbalanced: pd.DataFrame) -> None:
    data = unbalanced.copy()
    data.loc[data.index[0], "first.treat"] = 2006
    with pytest.raises(DataError, match="varies within units 8001"):
        staggered_did(data, unit="countyreal", allow_unbalanced_panel=True, **ARGS)


@pytest.mark.reference
def test_cohort_without_its_base_period_is_named(unbalanced: pd.DataFrame) -> None:
    # cohort 2006 loses every row of 2005, the base period of its post-treatment cells
    data = unbalanced[~((unbalanced["first.treat"] == 2006) & (unbalanced["year"] == 2005))]
    with pytest.warns(MissingPeriodWarning, match=r"cohort 2006 has no observation in period 2005 \(needed by ATT"):
        res = staggered_did(data, unit="countyreal", allow_unbalanced_panel=True, **ARGS)
    cells = set(zip(res.att_gt["cohort"], res.att_gt["time"], strict=True))
    assert {(2006, 2005), (2006, 2006), (2006, 2007)}.isdisjoint(cells)
    assert (2006, 2004) in cells and (2004, 2005) in cells
    assert res.info["cells_missing_period"]["2006@2005"] == ["ATT(2006,2005)", "ATT(2006,2006)", "ATT(2006,2007)"]
    assert res.aggregate("group").table.set_index("term").index.tolist() == ["g=2004", "g=2007", "overall"]
    assert issubclass(MissingPeriodWarning, SmallCohortWarning)  # filters written for the old type still apply


@pytest.mark.reference
def test_first_period_cohort_dropped_and_no_never_treated(mpdta: pd.DataFrame) -> None:
    data = mpdta.copy()
    data.loc[data["countyreal"] < 8100, "first.treat"] = 2003
    with pytest.warns(DroppedUnitsWarning, match="observations of cohorts \\[2003\\]"):
        res = staggered_did(data, panel=False, **ARGS)
    assert 2003 not in set(res.att_gt["cohort"])
    treated = mpdta[mpdta["first.treat"] > 0]
    with pytest.raises(DesignError, match='control="not_yet"'):
        staggered_did(treated, panel=False, **ARGS)
    res = staggered_did(treated, panel=False, control="not_yet", **ARGS)
    assert 2007 not in set(res.att_gt["cohort"]) and res.att_gt["time"].max() < 2007
    pan = staggered_did(treated, unit="countyreal", control="not_yet", **ARGS).att_gt
    np.testing.assert_allclose(res.att_gt["att"], pan["att"], atol=1e-12)


def test_vectorised_on_a_large_cross_section() -> None:
    # 200,000 rows, unconditional: group sums and index blocks, no loop over rows (well under a few seconds)
    import time

    rng = np.random.default_rng(0)
    n, T = 200_000, 8
    g = rng.choice([0, 4, 6], size=n)
    t = rng.integers(1, T + 1, size=n)
    y = rng.normal(size=n) + 0.1 * t + 0.5 * ((g > 0) & (t >= g))
    data = pd.DataFrame({"t": t, "g": g, "y": y})
    start = time.perf_counter()
    res = staggered_did(data, outcome="y", time="t", cohort="g", panel=False, n_boot=0)
    assert time.perf_counter() - start < 10
    post = res.att_gt[res.att_gt["event_time"] >= 0]
    assert np.abs(post["att"] - 0.5).max() < 5 * post["se"].max()
