"""synthetic(..., covariates=): synthdid's covariate adjustment, against simulations with a known truth.

R synthdid could not be installed here (CRAN is out of reach), so there is no reference run: the solver
is held to a numpy transcription of R's ``sc.weight.fw.covariates`` (tests/test_frank_wolfe.py), and
the estimator to simulations where a time-varying covariate confounds the comparison.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evaluator.errors import DataError, DesignError
from evaluator.estimators.synthetic import placebo_in_time, synthetic

SIM = dict(outcome="y", unit="unit", time="time", treated="d")
EFFECT, SLOPE = 3.0, 2.0


def _confounded(
    seed: int, *, n_control: int = 30, n_treated: int = 1, n_pre: int = 15, n_post: int = 6, level_sd: float = 2.0
) -> pd.DataFrame:
    """Factor model plus SLOPE * x_it; the treated units' x rises by 1.5 from the start of treatment."""
    rng = np.random.default_rng(seed)
    n, T = n_control + n_treated, n_pre + n_post
    f = np.cumsum(rng.normal(0, 1, (T, 2)), axis=0)
    load = rng.normal(0, 1, (n, 2))
    x = rng.normal(0, 1, (n, T)).cumsum(axis=1) * 0.3
    x[n_control:, n_pre:] += 1.5  # the confounder: moves with treatment, so ignoring it biases by 3
    treat = np.zeros((n, T), dtype=int)
    treat[n_control:, n_pre:] = 1
    y = rng.normal(0, level_sd, n)[:, None] + load @ f.T + SLOPE * x + EFFECT * treat + rng.normal(0, 0.3, (n, T))
    return pd.DataFrame(
        {
            "unit": np.repeat([f"m{i:02d}" for i in range(n)], T),
            "time": np.tile(np.arange(2000, 2000 + T), n),
            "y": y.ravel(),
            "x": x.ravel(),
            "noise": rng.normal(0, 1, n * T),
            "d": treat.ravel(),
        }
    )


@pytest.mark.parametrize("method", ["sdid", "did"])
def test_adjusting_removes_the_confounding(method):
    # 40 draws: without the covariate the estimate is off by about SLOPE x 1.5 = 3; with it, near the truth
    adj, raw, betas = [], [], []
    for seed in range(40):
        d = _confounded(seed)
        fit = synthetic(d, **SIM, method=method, covariates=["x"], inference=None)
        adj.append(fit.estimate)
        betas.append(fit.info["covariates"]["x"])
        raw.append(synthetic(d, **SIM, method=method, inference=None).estimate)
    assert abs(np.mean(raw) - EFFECT - SLOPE * 1.5) < 0.6
    assert abs(np.mean(adj) - EFFECT) < 0.3
    assert abs(np.median(betas) - SLOPE) < 0.2


def test_placebo_interval_covers_with_covariates():
    # 50 draws, 20 controls, 95% placebo intervals: at least 0.85 (Monte Carlo sd about 0.031 at 0.95; each draw
    # fits its 20 placebos with the covariate solver, which mostly runs all its 10,000 steps)
    cover = []
    for seed in range(50):
        fit = synthetic(_confounded(500 + seed, n_control=20, n_pre=12), **SIM, covariates=["x"], seed=seed)
        lo, hi = fit.ci
        cover.append(lo <= EFFECT <= hi)
    assert np.mean(cover) >= 0.85


def test_a_covariate_of_pure_noise_leaves_the_estimate_unbiased():
    # R's solver fits beta on few collapsed cells, so a noise covariate gets a coefficient, but no bias
    est, beta = [], []
    for seed in range(30):
        fit = synthetic(_confounded(seed), **SIM, covariates=["x", "noise"], inference=None)
        est.append(fit.estimate)
        beta.append(fit.info["covariates"]["noise"])
    assert abs(np.mean(est) - EFFECT) < 0.3
    assert abs(np.median(beta)) < 0.2


def test_rows_in_any_order_give_the_same_result():
    d = _confounded(3, n_treated=3)
    a = synthetic(d, **SIM, covariates=["x"], inference="bootstrap", n_reps=20, seed=5)
    b = synthetic(d.sample(frac=1, random_state=1), **SIM, covariates=["x"], inference="bootstrap", n_reps=20, seed=5)
    assert a.estimate == b.estimate and a.se == b.se
    assert a.info["covariates"] == b.info["covariates"]


def test_jackknife_refits_the_coefficients_with_the_weights_fixed():
    d = _confounded(11, n_treated=4)
    fit = synthetic(d, **SIM, covariates=["x"], inference="jackknife")
    assert np.isfinite(fit.se) and 0 < fit.se < 3
    # the trajectories are the outcome net of the covariate: their post-period gap is the estimate's
    traj = fit.trajectories
    lam = traj["time_weight"][~traj["post"]]
    gap = traj.loc[traj["post"], "difference"].mean() - (traj.loc[~traj["post"], "difference"] * lam).sum()
    assert gap == pytest.approx(fit.estimate, abs=1e-10)
    assert any("covariate-adjusted" in n for n in fit.notes)


def test_sc_and_placebo_in_time_take_covariates():
    # synthetic control has no intercept: on units of equal levels it recovers the effect once x is adjusted for
    sc, raw = [], []
    for seed in range(20):
        d = _confounded(seed, level_sd=0.0)
        sc.append(synthetic(d, **SIM, method="sc", covariates=["x"], inference=None).estimate)
        raw.append(synthetic(d, **SIM, method="sc", inference=None).estimate)
    assert abs(np.mean(sc) - EFFECT) < 0.5 < abs(np.mean(raw) - EFFECT)
    d = _confounded(2)
    check = placebo_in_time(d, **SIM, covariates=["x"], inference=None)
    assert abs(check.estimate) < 1.0 and "x" in check.info["covariates"]


def test_bad_covariates():
    d = _confounded(0)
    with pytest.raises(DataError, match="nope"):
        synthetic(d, **SIM, covariates=["nope"])
    bad = d.copy()
    bad.loc[5, "x"] = np.nan
    with pytest.raises(DataError, match="'x'"):
        synthetic(bad, **SIM, covariates=["x"])
    with pytest.raises(DesignError, match="named once"):
        synthetic(d, **SIM, covariates=["x", "x"])
    stag = d.copy()
    stag.loc[(stag["unit"] == "m00") & (stag["time"] >= 2018), "d"] = 1
    with pytest.raises(NotImplementedError, match="staggered adoption"):
        synthetic(stag, **SIM, covariates=["x"])
