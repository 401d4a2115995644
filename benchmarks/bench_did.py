"""Benchmark ``evaluator.did`` (TWFE, CR1 cluster-robust SEs) against pyfixest and linearmodels.

Run from the repository root, in the peers venv (see benchmarks/README.md)::

    python benchmarks/bench_did.py            # 1,000,000 rows
    python benchmarks/bench_did.py --quick    # 100,000 rows
    python benchmarks/bench_did.py --big      # 10,000,000 rows

The model is ``y ~ d | unit + time`` with ``d = 1[cohort > 0 and time >= cohort]``
and standard errors clustered by ``cluster`` (50 clusters). The peers' timings
include building ``d`` (and, for linearmodels, the (unit, time) index), which is
what a user would have to do; ours builds its treatment indicator internally.
Timing, memory and budget are measured exactly as in ``bench_staggered.py`` (one
subprocess per task, best of 3 for fast tasks, psutil RSS sampled in a thread).

SE conventions differ. pyfixest's CRV1 is sqrt(G/(G-1) * (n-1)/(n-k)) times the
raw sandwich SE, with k counting the slope and the time effects but not the unit
effects (nested in the clusters): it equals CR1 computed by hand to 1e-15.
linearmodels, run with its defaults ``fit(cov_type="clustered", clusters=...)``,
applies no G/(G-1) factor but always counts the absorbed unit effects in the
residual degrees of freedom, so its SE is about sqrt(n / (n - n_units)) ~ 1.054
times the raw SE with 10 periods: SE differences between linearmodels and the
others of a few percent are this convention, not an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from bench_staggered import NotAvailable, Task, _gt_frame, floor, main, resolve


def _one(estimate: float, se: float) -> pd.DataFrame:
    return _gt_frame([0], [0], [estimate], [se])


def _treat(df: pd.DataFrame) -> pd.DataFrame:
    c = df["cohort"].to_numpy()
    return df.assign(d=((c > 0) & (df["time"].to_numpy() >= c)).astype(np.float64))


def ours(df: pd.DataFrame) -> pd.DataFrame:
    did = resolve("evaluator.estimators.twfe", "did")
    res: Any = did(df, outcome="y", unit="unit", time="time", cohort="cohort", cluster="cluster")
    return _one(float(res.estimate), float(res.se))


def pyfixest_feols(df: pd.DataFrame) -> pd.DataFrame:
    try:
        import pyfixest as pf
    except ImportError as exc:
        raise NotAvailable(str(exc)) from exc
    fit = pf.feols("y ~ d | unit + time", data=_treat(df), vcov={"CRV1": "cluster"})
    return _one(float(fit.coef()["d"]), float(fit.se()["d"]))


def linearmodels_panelols(df: pd.DataFrame) -> pd.DataFrame:
    try:
        from linearmodels.panel import PanelOLS
    except ImportError as exc:
        raise NotAvailable(str(exc)) from exc
    d = _treat(df).set_index(["unit", "time"])
    model = PanelOLS(d["y"], d[["d"]], entity_effects=True, time_effects=True)
    fit = model.fit(cov_type="clustered", clusters=d["cluster"])
    return _one(float(fit.params["d"]), float(fit.std_errors["d"]))


TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("floor groupby mean", "floor", "pandas", floor),
        Task("ours did (TWFE, CR1)", "twfe", "evaluator", ours, ("evaluator", "evaluator.estimators.twfe")),
        Task("pyfixest feols CR1", "twfe", "pyfixest", pyfixest_feols, ("pyfixest",)),
        Task("linearmodels PanelOLS clustered", "twfe", "linearmodels", linearmodels_panelols, ("linearmodels.panel",)),
    ]
}


if __name__ == "__main__":
    main(Path(__file__).resolve(), TASKS, "Benchmark evaluator.did against pyfixest and linearmodels.")
