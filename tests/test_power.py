"""Tests of evaluator.power: hand computations, a simulation at the MDE and bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evaluator.contracts.power import (
    design_effect,
    mde_from_design,
    minimum_detectable_effect,
    power,
    threshold_sentence,
)
from evaluator.results.base import Result, tidy_table

Z975, Z80 = 1.959964, 0.841621  # normal quantiles, from any table


def test_mde_is_2_8_standard_errors_for_a_5_percent_test_with_80_percent_power():
    assert minimum_detectable_effect(1.0) == pytest.approx(Z975 + Z80, abs=1e-6)
    assert minimum_detectable_effect(0.25) == pytest.approx(0.25 * (Z975 + Z80), abs=1e-6)


def test_mde_takes_a_result_and_other_levels():
    r = Result("x", tidy_table(["att"], [1.0], [0.4]), nobs=100)
    assert minimum_detectable_effect(r) == pytest.approx(0.4 * (Z975 + Z80), abs=1e-6)
    # alpha 0.10 (z 1.644854) and power 0.90 (z 1.281552)
    assert minimum_detectable_effect(1.0, alpha=0.10, power=0.9) == pytest.approx(1.644854 + 1.281552, abs=1e-6)


def test_t_quantiles_with_few_clusters_are_larger():
    # t(9): 0.975 quantile 2.262157, 0.80 quantile 0.883404 (standard tables)
    assert minimum_detectable_effect(1.0, df=9) == pytest.approx(2.262157 + 0.883404, abs=1e-5)
    assert (
        minimum_detectable_effect(1.0, df=9) > minimum_detectable_effect(1.0, df=200) > minimum_detectable_effect(1.0)
    )


def test_a_true_effect_of_the_mde_is_found_about_80_percent_of_the_time():
    se = 0.3
    mde = minimum_detectable_effect(se)
    rng = np.random.default_rng(20240501)
    estimates = rng.normal(mde, se, size=2_000)
    rejected = np.abs(estimates / se) > Z975
    # binomial SD at 2,000 draws is 0.9 points; 3 points is more than 3 SDs
    assert abs(rejected.mean() - 0.80) < 0.03


def test_a_true_effect_at_the_t_mde_is_found_about_80_percent_of_the_time():
    from scipy import stats

    se, df = 1.0, 9
    mde = minimum_detectable_effect(se, df=df)
    rng = np.random.default_rng(7)
    # a t statistic centred on mde/se (the usual approximation of the non-central t)
    t = mde / se + rng.standard_t(df, size=2_000)
    assert abs((np.abs(t) > stats.t.ppf(0.975, df)).mean() - 0.80) < 0.03


def test_mde_from_design_by_hand():
    # N = 1000, P = 0.5: se = sd * sqrt(1 / (N P (1 - P))) = 2 * sqrt(4 / 1000)
    assert mde_from_design(n_units=1_000, sd=2.0) == pytest.approx((Z975 + Z80) * 2 * math.sqrt(0.004), abs=1e-6)
    # 20 clusters of 50, icc 0.05: DE = 1 + 49 * 0.05 = 3.45; t with 18 df
    from scipy import stats

    se = math.sqrt(3.45 / 250)
    want = (stats.t.ppf(0.975, 18) + stats.t.ppf(0.8, 18)) * se
    assert mde_from_design(n_units=1_000, n_clusters=20, icc=0.05) == pytest.approx(want, rel=1e-9)


def test_design_effect_and_what_raises_the_mde():
    assert design_effect(50, 0.02) == pytest.approx(1.98)
    assert design_effect(1, 0.9) == 1.0
    base = mde_from_design(n_units=500)
    assert mde_from_design(n_units=500, treated_share=0.1) > base
    assert mde_from_design(n_units=2_000) < base
    # repeated periods help, less so with correlation between them
    assert mde_from_design(n_units=500, n_periods=4) < mde_from_design(n_units=500, n_periods=4, icc=0.5) < base


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"se": -1.0}, "se=-1.0"),
        ({"se": float("nan")}, "se=nan"),
        ({"se": 1.0, "alpha": 1.5}, "alpha=1.5"),
        ({"se": 1.0, "power": 0}, "power=0"),
        ({"se": 1.0, "df": 0}, "df=0"),
    ],
)
def test_minimum_detectable_effect_refuses_bad_input(kwargs, match):
    se = kwargs.pop("se")
    with pytest.raises(ValueError, match=match):
        minimum_detectable_effect(se, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_units": 1}, "n_units=1"),
        ({"n_units": 100, "icc": 2.0}, "icc=2.0"),
        ({"n_units": 100, "n_clusters": 2}, "n_clusters=2"),
        ({"n_units": 100, "sd": 0}, "sd=0"),
        ({"n_units": 100, "treated_share": 1.0}, "treated_share=1.0"),
        ({"n_units": 100, "n_periods": 0}, "n_periods=0"),
    ],
)
def test_mde_from_design_refuses_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        mde_from_design(**kwargs)


def test_power_by_hand_with_scipy_norm():
    from scipy.stats import norm

    # significance in the stated direction: P(estimate / se < -z) for a reduction
    assert power(-0.3, se=0.1) == pytest.approx(norm.cdf(3 - norm.ppf(0.975)), abs=1e-12)
    assert power(0.3, se=0.1, direction="increase") == pytest.approx(norm.cdf(3 - norm.ppf(0.975)), abs=1e-12)
    # crossing a threshold: P(estimate <= -0.175) with estimate ~ N(-0.3, 0.1)
    assert power(-0.3, se=0.1, threshold=-0.175) == pytest.approx(norm.cdf((-0.175 + 0.3) / 0.1), abs=1e-12)
    assert power(0.05, se=0.02, threshold=0.06, direction="increase") == pytest.approx(norm.cdf(-0.5), abs=1e-12)
    # at the MDE the power is 80% (bar the negligible wrong-direction tail)
    assert power(-minimum_detectable_effect(0.1), se=0.1) == pytest.approx(0.8, abs=1e-9)


def test_power_takes_a_result_t_quantiles_and_the_design():
    from scipy import stats

    r = Result("x", tidy_table(["att"], [1.0], [0.4]), nobs=100)
    assert power(-1.0, result=r, threshold=-0.5) == pytest.approx(stats.norm.cdf(0.5 / 0.4), abs=1e-12)
    assert power(-1.0, se=0.4, threshold=-0.5, df=9) == pytest.approx(stats.t.cdf(0.5 / 0.4, 9), abs=1e-12)
    # from the design: the same standard error as mde_from_design uses (one formula)
    mde = mde_from_design(n_units=1_000, n_clusters=20, icc=0.05)
    assert power(mde, n_units=1_000, n_clusters=20, icc=0.05, direction="increase") == pytest.approx(0.8, abs=1e-3)


def test_crossing_probability_matches_a_simulation():
    rng = np.random.default_rng(11)
    effect, se, threshold = -0.2, 0.08, -0.175
    estimates = rng.normal(effect, se, size=4_000)
    simulated = (estimates <= threshold).mean()
    # binomial SD at 4,000 draws is under 0.8 points; 2 points is > 2.5 SDs
    assert abs(simulated - power(effect, se=se, threshold=threshold)) < 0.02
    significant = (estimates / se < -1.959964).mean()
    assert abs(significant - power(effect, se=se)) < 0.02


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"effect": float("nan"), "se": 1.0}, "effect=nan"),
        ({"effect": 1.0, "se": 0.0}, "se=0.0"),
        ({"effect": 1.0}, "se=None"),
        ({"effect": 1.0, "se": 1.0, "direction": "down"}, "direction='down'"),
        ({"effect": 1.0, "se": 1.0, "alpha": 2}, "alpha=2"),
        ({"effect": 1.0, "se": 1.0, "df": 0}, "df=0"),
        ({"effect": 1.0, "se": 1.0, "threshold": float("inf")}, "threshold=inf"),
        ({"effect": 1.0, "n_units": 1}, "n_units=1"),
        ({"effect": 1.0, "result": object()}, "se=None"),
    ],
)
def test_power_refuses_bad_input_naming_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        power(**kwargs)


def test_threshold_sentence_says_when_a_target_cannot_be_told_from_no_effect():
    small = threshold_sentence(-0.1, 0.3, label="days")
    assert "could not reliably tell an effect of the target size from no effect" in small
    assert "would be detected" in threshold_sentence(0.5, 0.3)
