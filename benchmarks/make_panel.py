"""Shared synthetic panel for the benchmarks.

A balanced staggered-adoption panel: ``n_units`` units observed over ``n_periods``
periods (``time`` = 1..n_periods), three treated cohorts (first treated in periods
4, 6 and 8 with the default 10 periods) plus never-treated units (``cohort`` = 0).
Two time-invariant covariates ``x1`` (continuous) and ``x2`` (binary) shift both the
probability of each cohort and the outcome trend (mildly), so the covariate-adjusted
estimators have something to adjust. Units are nested in ``n_clusters``
"municipalities" (``cluster``). The outcome has unit and time effects, a
covariate-specific trend, and a dynamic, cohort-heterogeneous treatment effect.

Everything is vectorised; 1,000,000 rows (the default) builds in well under a second.

Run ``python benchmarks/make_panel.py [--big] [--out panel.parquet]`` to print a
summary (and optionally save the frame).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def make_panel(
    n_units: int = 100_000,
    n_periods: int = 10,
    seed: int = 0,
    *,
    n_clusters: int = 50,
) -> pd.DataFrame:
    """Build a balanced staggered panel.

    Parameters
    ----------
    n_units
        Number of units (rows = n_units * n_periods).
    n_periods
        Number of periods, ``time`` = 1..n_periods. Needs at least 4.
    seed
        Seed of the numpy Generator.
    n_clusters
        Number of clusters ("municipalities") units are nested in.

    Returns
    -------
    pandas.DataFrame
        Columns unit (int64), time (int64), cohort (int64, 0 = never treated),
        cluster (int64), x1 (float64), x2 (float64), y (float64), sorted by unit
        then time.

    Examples
    --------
    >>> df = make_panel(n_units=1_000, n_periods=6, seed=1)
    >>> df.shape
    (6000, 7)
    >>> sorted(df["cohort"].unique().tolist())
    [0, 3, 4, 5]
    """
    if n_periods < 4:
        raise ValueError("n_periods must be at least 4 (three cohorts need pre-periods)")
    rng = np.random.default_rng(seed)
    T = n_periods
    # three cohorts spread over the second half-ish of the window, each with >= 1 pre-period
    cohorts = np.unique(np.round(np.linspace(max(3, T * 0.4), T * 0.8, 3)).astype(np.int64))
    if cohorts.size < 3:
        cohorts = np.array([T - 2, T - 1, T], dtype=np.int64)

    # unit-level draws
    x1 = rng.standard_normal(n_units)
    x2 = (rng.random(n_units) < 0.4).astype(np.float64)
    cluster = rng.integers(0, n_clusters, n_units)
    # cohort membership: multinomial logit in x1, x2 (never-treated is the base)
    lin = np.column_stack(
        [
            np.zeros(n_units),
            -0.6 + 0.3 * x1 + 0.2 * x2,
            -0.8 + 0.2 * x1 - 0.2 * x2,
            -1.0 - 0.2 * x1 + 0.3 * x2,
        ]
    )
    p = np.exp(lin)
    p /= p.sum(axis=1, keepdims=True)
    u = rng.random(n_units)[:, None]
    k = (u > np.cumsum(p, axis=1)).sum(axis=1)
    k = np.minimum(k, 3)
    cohort = np.concatenate([[0], cohorts])[k]

    alpha = 0.5 * x1 + 0.3 * x2 + rng.standard_normal(n_units)  # unit effect
    cluster_effect = 0.3 * rng.standard_normal(n_clusters)

    # long format
    unit = np.repeat(np.arange(n_units, dtype=np.int64), T)
    t = np.tile(np.arange(1, T + 1, dtype=np.int64), n_units)
    g = np.repeat(cohort, T)
    gamma = np.linspace(0.0, 1.0, T) + 0.1 * np.sin(np.arange(T))  # time effects
    trend = 0.05 * np.repeat(x1, T) + 0.03 * np.repeat(x2, T)  # covariate-specific trend (mild)
    treated = (g > 0) & (t >= g)
    e = np.where(treated, t - g, 0)
    # dynamic heterogeneous effect: grows with exposure, larger for earlier cohorts
    g_scale = np.where(g > 0, 1.0 + (cohorts.max() - g) * 0.1, 0.0)
    effect = np.where(treated, g_scale * (0.5 + 0.2 * e), 0.0)
    y = (
        np.repeat(alpha + cluster_effect[cluster], T)
        + gamma[t - 1]
        + trend * t
        + effect
        + rng.standard_normal(n_units * T)
    )
    return pd.DataFrame(
        {
            "unit": unit,
            "time": t,
            "cohort": g,
            "cluster": np.repeat(cluster.astype(np.int64), T),
            "x1": np.repeat(x1, T),
            "x2": np.repeat(x2, T),
            "y": y,
        }
    )


def rows_to_units(rows: int, n_periods: int = 10) -> int:
    """Number of units giving ``rows`` rows with ``n_periods`` periods."""
    return max(1, rows // n_periods)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="100,000 rows")
    size.add_argument("--big", action="store_true", help="10,000,000 rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="save to this .parquet or .csv path")
    args = parser.parse_args()
    n_units = 10_000 if args.quick else 1_000_000 if args.big else 100_000
    t0 = time.perf_counter()
    df = make_panel(n_units=n_units, seed=args.seed)
    dt = time.perf_counter() - t0
    print(f"{len(df):,} rows, {df.memory_usage(deep=True).sum() / 2**20:.0f} MiB, built in {dt:.2f} s")
    print(df.drop_duplicates("unit")["cohort"].value_counts().sort_index().rename("units by cohort").to_string())
    if args.out:
        if args.out.endswith(".csv"):
            df.to_csv(args.out, index=False)
        else:
            df.to_parquet(args.out, index=False)
        print(f"saved to {args.out}")


if __name__ == "__main__":
    main()
