"""Socio-economic return: hand-computed present values, payer splits, defaults with sources."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evaluator.contracts.economics import (
    DECAY_SCENARIOS,
    DISCOUNT_RATE,
    HORIZONS,
    PAYERS,
    load_unit_costs,
    plot_tornado,
    scenarios,
    socio_economic_return,
    tornado_table,
)
from evaluator.results.base import Result, tidy_table

COSTS = {"sick_days": {"kommune": 800.0, "region": 100.0, "stat": 300.0}}


def test_npv_matches_hand_computation():
    # 50 participants, 3 fewer sick days each in year 1, fading 20% a year, over 3 years
    # at 3.5%; the intervention costs 200,000 to the kommune in year 0.
    effect, n, r, decay, cost = -3.0, 50, 0.035, 0.2, 200_000.0
    res = socio_economic_return(
        effect,
        participants=n,
        unit_costs=COSTS,
        outcome="sick_days",
        horizon_years=3,
        discount_rate=r,
        decay=decay,
        intervention_cost={"kommune": cost},
    )
    per_year = -effect * n * (800 + 100 + 300)
    expected = -cost + per_year / 1.035 + per_year * 0.8 / 1.035**2 + per_year * 0.64 / 1.035**3
    assert res.npv["total"] == pytest.approx(expected, abs=1e-9)
    expected_stat = -effect * n * 300 * (1 / 1.035 + 0.8 / 1.035**2 + 0.64 / 1.035**3)
    assert res.npv["stat"] == pytest.approx(expected_stat, abs=1e-9)


def test_zero_discount_rate_is_the_plain_sum():
    res = socio_economic_return(
        -2.0,
        participants=10,
        unit_costs={"x": 100.0},
        horizon_years=4,
        discount_rate=0.0,
        decay=0.5,
        intervention_cost=1000.0,
    )
    plain = -1000.0 + 2.0 * 10 * 100.0 * (1 + 0.5 + 0.25 + 0.125)
    assert res.npv["total"] == pytest.approx(plain, abs=1e-9)
    total = res.table[res.table["payer"] == "total"]
    assert total["net"].sum() == pytest.approx(plain, abs=1e-9)


@settings(max_examples=50, deadline=None)
@given(
    effect=st.floats(-10, 10),
    n=st.integers(1, 10_000),
    shares=st.lists(st.floats(0.01, 1), min_size=1, max_size=4),
    rate=st.floats(0, 0.2),
    decay=st.floats(0, 1),
    horizon=st.integers(1, 15),
    cost=st.floats(0, 1e6),
)
def test_payer_split_adds_up(effect, n, shares, rate, decay, horizon, cost):
    split = {f"payer{i}": s / sum(shares) for i, s in enumerate(shares)}
    split[next(iter(split))] += 1 - sum(split.values())  # exact sum of 1 after rounding
    res = socio_economic_return(
        effect,
        participants=n,
        unit_costs={"y": 250.0},
        payer_split=split,
        horizon_years=horizon,
        discount_rate=rate,
        decay=decay,
        intervention_cost=cost,
    )
    parts = sum(v for k, v in res.npv.items() if k != "total")
    assert parts == pytest.approx(res.npv["total"], rel=1e-9, abs=1e-6)
    t = res.table
    by_year = t[t["payer"] != "total"].groupby("year")["discounted"].sum().to_numpy()
    np.testing.assert_allclose(by_year, t[t["payer"] == "total"]["discounted"].to_numpy(), rtol=1e-9, atol=1e-6)


def test_break_even_year():
    res = socio_economic_return(
        -1.0, participants=10, unit_costs={"x": 100.0}, horizon_years=5, discount_rate=0.0, intervention_cost=2500.0
    )
    # 1,000 a year against 2,500: cumulative -2500, -1500, -500, 500 -> year 3.
    assert res.break_even_year == 3
    never = socio_economic_return(
        -1.0, participants=10, unit_costs={"x": 100.0}, horizon_years=2, discount_rate=0.0, intervention_cost=2500.0
    )
    assert never.break_even_year is None
    assert "does not break even" in never.sentence


def test_result_effect_and_bundled_table():
    r = Result("did", tidy_table(["att"], [-0.5], [0.1]), nobs=10, outcome="sick_days")
    res = socio_economic_return(r, participants=100, unit_costs="DK", scale=12, currency="DKK")
    table = load_unit_costs("DK", "sick_days")
    expected_year1 = 0.5 * 12 * 100 * table["cost"].sum()
    total = res.table[(res.table["payer"] == "total") & (res.table["year"] == 1)]
    assert total["gross_saving"].iloc[0] == pytest.approx(expected_year1)
    assert set(res.npv) == {"kommune", "stat", "region", "total"}
    assert "illustrative" in res.assumptions.to_string()


def test_bundled_unit_costs_are_marked_examples():
    t = load_unit_costs()
    assert list(t.columns) == ["outcome", "unit", "payer", "country", "cost", "currency", "year", "source", "note"]
    assert (t["source"] == "illustrative").all()
    assert t["note"].str.startswith("EXAMPLE TO REPLACE").all()
    for country, payers in PAYERS.items():
        assert set(t.loc[t["country"] == country, "payer"]) <= set(payers)
    assert {"sick_days", "employed_12m", "reconvictions_12m"} <= set(t["outcome"])


def test_defaults_carry_sources():
    assert DISCOUNT_RATE.value == 0.035 and "Green Book" in DISCOUNT_RATE.source and DISCOUNT_RATE.year == 2021
    assert HORIZONS.value == (5, 10) and DECAY_SCENARIOS.value == (0.0, 0.25, 0.5)
    res = socio_economic_return(-1.0, participants=1, unit_costs={"x": 1.0})
    text = res.summary()
    assert "Ministry of Finance" in text and "Green Book" in text
    grid = scenarios(-1.0, participants=1, unit_costs={"x": 1.0})
    assert len(grid) == 6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"discount_rate": 3.5}, r"0\.035 for 3\.5%"),
        ({"discount_rate": -0.01}, "non-negative"),
        ({"horizon_years": -5}, "positive whole number"),
        ({"horizon_years": 0}, "positive whole number"),
        ({"decay": 25}, r"0\.25 for 25%"),
        ({"intervention_cost": -1}, "non-negative"),
        ({"participants": -3}, "non-negative"),
        ({"payer_split": {"a": 0.5, "b": 0.4}}, "add up to 0.9"),
    ],
)
def test_bad_input(kwargs, match):
    base = {"participants": 10, "unit_costs": {"x": 1.0}}
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        socio_economic_return(-1.0, **base)


def test_unknown_outcome_in_table():
    with pytest.raises(ValueError, match="no unit costs for outcome"):
        socio_economic_return(-1.0, participants=1, unit_costs="DK", outcome="happiness")


def test_intervention_cost_needs_a_payer():
    with pytest.raises(ValueError, match="payer_split"):
        socio_economic_return(-1.0, participants=1, unit_costs=COSTS, outcome="sick_days", intervention_cost=10.0)


def test_tornado_sorted_and_plotted():
    r = Result("did", tidy_table(["att"], [-0.5], [0.1]), nobs=10, outcome="sick_days")
    res = socio_economic_return(r, participants=100, unit_costs="DK", scale=12, intervention_cost={"kommune": 1e5})
    t = res.sensitivity()
    assert list(t.columns) == ["parameter", "low", "high", "result_low", "result_high", "swing", "note"]
    assert t["swing"].is_monotonic_decreasing
    row = t.set_index("parameter").loc["effect"]
    assert (row["low"], row["high"]) == pytest.approx(r.ci)
    assert type(plot_tornado(t)).__name__ == "Figure"
    by_hand = tornado_table(lambda a=0.0: 2 * a, {"a": (-1.0, 3.0)})
    assert by_hand["swing"].iloc[0] == 8.0


def test_displays():
    res = socio_economic_return(-1.0, participants=1, unit_costs={"x<b>": 1.0}, currency="DKK")
    html = res._repr_html_()
    assert "x<b>" not in html
    json.dumps(res.to_dict())
    assert type(res.plot()).__name__ == "Figure"
    assert isinstance(res.to_frame(), pd.DataFrame)
    assert math.isfinite(res.npv["total"])
