"""Few-cluster coverage of nominal 95% intervals (issue 3's simulation study).

Design: ``sick_leave_sib`` reduced to 8 municipalities (3 never treated, waves of 3
and 2 municipalities), 25 employees each, 24 months, with AR(1) municipality-by-month
shocks (rho = 0.5). ``did`` is checked on the constant-effect variant (two-way fixed
effects is then unbiased); ``staggered_did`` on the dynamic, heterogeneous variant
(its simple aggregate is unbiased there). Each method's interval is compared with the
known truth over ``N_DRAWS`` independent data sets.

Expect even the best methods to under-cover a little with 8 clusters; the analytic
normal interval falls clearly short, which is the point of the bootstrap options.
Run with ``pytest -m slow -s tests/test_coverage.py`` to print the table.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from evaluator import did, staggered_did
from evaluator.data import simulate

N_DRAWS = 500
DESIGN = {
    "n_municipalities": 8,
    "employees_per_municipality": 25,
    "n_periods": 24,
    "waves": (9, 17),
    "municipal_rho": 0.5,
    "municipal_sd": 0.15,
}
COLS = {
    "outcome": "sick_days",
    "unit": "employee",
    "time": "month",
    "cohort": "first_treated",
    "cluster": "municipality",
}


def one_draw(seed: int) -> dict[str, float]:
    out: dict[str, float] = {}
    z = stats.norm.ppf(0.975)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the few-clusters warning is expected here
        const = simulate.sick_leave_sib(effect="constant", seed=seed, **DESIGN)
        truth = const.truth["simple"]
        r = did(const.data, **COLS, inference="cluster")
        out["did: CR1, normal critical value"] = abs(r.estimate - truth) <= z * r.se
        out["did: CR1, t(G-1) critical value"] = r.ci[0] <= truth <= r.ci[1]
        r = did(const.data, **COLS, inference="wild", n_boot=999, seed=seed)
        out["did: wild cluster bootstrap (WCR, Webb)"] = r.ci[0] <= truth <= r.ci[1]

        dyn = simulate.sick_leave_sib(effect="dynamic", seed=seed, **DESIGN)
        truth = dyn.truth["simple"]
        a = staggered_did(dyn.data, **COLS, method="unconditional", n_boot=0).aggregate("simple")
        out["staggered_did: analytic clustered, normal"] = a.ci[0] <= truth <= a.ci[1]
        b = staggered_did(dyn.data, **COLS, method="unconditional", n_boot=999, seed=seed).aggregate("simple")
        out["staggered_did: cluster bootstrap (WCR, Webb)"] = b.ci[0] <= truth <= b.ci[1]
    return out


@pytest.mark.slow
def test_few_cluster_coverage():
    table = pd.DataFrame([one_draw(seed) for seed in range(N_DRAWS)]).mean().rename("coverage")
    mc_se = np.sqrt(0.95 * 0.05 / N_DRAWS)
    print(f"\nCoverage of nominal 95% intervals, 8 clusters, {N_DRAWS} draws (MC SE {mc_se:.3f}):")
    print(table.round(3).to_string())
    # The bootstrap intervals must reach 92%; analytic normal intervals are shown to fall short of 95%.
    assert table["did: wild cluster bootstrap (WCR, Webb)"] >= 0.92
    assert table["staggered_did: cluster bootstrap (WCR, Webb)"] >= 0.92
    assert table["did: CR1, normal critical value"] < 0.95 - 2 * mc_se
    assert table["staggered_did: analytic clustered, normal"] < 0.95 - 2 * mc_se


@pytest.mark.slow
def test_staggered_unbiased_where_twfe_is_not():
    # sick_leave_sib's effects grow with time since adoption and differ by wave, so the static two-way fixed-effects
    # estimate is biased for the average effect on the treated; Callaway-Sant'Anna is not.
    n_draws = 400
    cs_err, tw_err = [], []
    for seed in range(n_draws):
        sim = simulate.sick_leave_sib(seed=2000 + seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cs = staggered_did(sim.data, **COLS, method="unconditional", n_boot=0)
            tw = did(sim.data, **COLS)
        cs_err.append(cs.estimate - sim.truth["simple"])
        tw_err.append(tw.estimate - sim.truth["simple"])
    cs_err, tw_err = np.array(cs_err), np.array(tw_err)
    cs_mcse = cs_err.std(ddof=1) / np.sqrt(n_draws)
    tw_mcse = tw_err.std(ddof=1) / np.sqrt(n_draws)
    print(
        f"\nbias over {n_draws} draws: staggered_did {cs_err.mean():+.4f} (MC SE {cs_mcse:.4f}), "
        f"two-way FE {tw_err.mean():+.4f} (MC SE {tw_mcse:.4f})"
    )
    assert abs(cs_err.mean()) < 2 * cs_mcse
    assert abs(tw_err.mean()) > 5 * tw_mcse
