"""Register data (issue 13): attrition and sampling weights, simulated with a known truth.

Design: issue 3's few-cluster design (``tests/test_coverage.py``): ``sick_leave_sib``
reduced to 8 municipalities of 25 employees, 24 months, waves in months 9 and 17,
AR(1) municipality shocks, a dynamic effect. Attrition: each month 3% of the
employees leave for good, and a month with more sick days than average makes leaving
more likely (``attrition_outcome=0.5``), so who is observed depends on the outcome.
The truth is the average effect over the treated employee-months observed.

Compared over ``N_DRAWS`` data sets:

- the balanced sub-panel (``staggered_did``'s default, as R did: units not seen in
  every period are dropped) against every observation (``allow_unbalanced_panel=True``);
- the cluster bootstrap (999 draws) with attrition, and with sampling weights on the
  balanced panel (target: 92% coverage at 8 clusters, as for the balanced design).

Run with ``pytest -m slow -s tests/test_coverage_register.py`` to print the table.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evaluator import staggered_did
from evaluator.data import simulate

N_DRAWS = 300
DESIGN = {
    "n_municipalities": 8,
    "employees_per_municipality": 25,
    "n_periods": 24,
    "waves": (9, 17),
    "municipal_rho": 0.5,
    "municipal_sd": 0.15,
}
ATTRITION = {"attrition": 0.03, "attrition_outcome": 0.5}
COLS = {
    "outcome": "sick_days",
    "unit": "employee",
    "time": "month",
    "cohort": "first_treated",
    "cluster": "municipality",
}
BALANCED, UNBALANCED = "balanced sub-panel (units dropped), analytic", "every observation, analytic"
UNBALANCED_BOOT, WEIGHTED_BOOT = "every observation, cluster bootstrap", "sampling weights, cluster bootstrap"


def one_draw(seed: int) -> list[tuple[str, float, bool]]:
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dropped units and few clusters are the point here
        sim = simulate.sick_leave_sib(effect="dynamic", seed=seed, **DESIGN, **ATTRITION)
        truth = sim.truth["simple"]
        runs = {
            BALANCED: staggered_did(sim.data, **COLS),
            UNBALANCED: staggered_did(sim.data, **COLS, allow_unbalanced_panel=True),
            UNBALANCED_BOOT: staggered_did(sim.data, **COLS, allow_unbalanced_panel=True, n_boot=999, seed=seed),
        }
        for name, r in runs.items():
            a = r.aggregate("simple")
            out.append((name, a.estimate - truth, a.ci[0] <= truth <= a.ci[1]))
        bal = simulate.sick_leave_sib(effect="dynamic", seed=seed, **DESIGN)
        data = bal.data.assign(w=1 + (bal.data["employee"] % 5) / 4)  # constant within an employee
        a = staggered_did(data, **COLS, weights="w", n_boot=999, seed=seed).aggregate("simple")
        truth = bal.truth["simple"]
        out.append((WEIGHTED_BOOT, a.estimate - truth, a.ci[0] <= truth <= a.ci[1]))
    return out


@pytest.mark.slow
def test_attrition_and_weights_bias_and_coverage():
    rows = [row for seed in range(N_DRAWS) for row in one_draw(seed)]
    frame = pd.DataFrame(rows, columns=["estimator", "error", "covered"])
    table = frame.groupby("estimator", sort=False).agg(
        bias=("error", "mean"), sd=("error", "std"), coverage=("covered", "mean")
    )
    mc_se = np.sqrt(0.95 * 0.05 / N_DRAWS)
    print(f"\nAttrition and weights, 8 clusters, {N_DRAWS} draws (coverage MC SE {mc_se:.3f}):")
    print(table.round(4).to_string())
    # the cluster bootstrap keeps its few-cluster coverage with attrition and with sampling weights
    assert table.loc[UNBALANCED_BOOT, "coverage"] >= 0.92
    assert table.loc[WEIGHTED_BOOT, "coverage"] >= 0.92
    # every observation: no bias beyond Monte Carlo noise, and less noise than dropping the units who left
    for name in (UNBALANCED, WEIGHTED_BOOT):
        assert abs(table.loc[name, "bias"]) < 3 * table.loc[name, "sd"] / np.sqrt(N_DRAWS)
    assert table.loc[UNBALANCED, "sd"] < 0.85 * table.loc[BALANCED, "sd"]
