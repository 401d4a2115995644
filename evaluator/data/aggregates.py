"""What a report shows of a panel it cannot hold: counts and means by cohort and period, computed block by block.

A difference-in-differences report's data section and raw trends need only a few
aggregates of the panel: units per cohort, rows and the mean outcome per (cohort,
period), the clusters of each cohort, whether the outcome is a 0/1 indicator. Out of
core (:mod:`evaluator.data.shards`) each block of whole units is reduced to these with
one vectorised group-by, and the blocks' reductions are added up in block order: counts
are exact, sums are added in the same order whatever the threads, so every number is
reproducible. :func:`evaluator.data.panel_source.scan_panel` computes them in its
validating pass; :func:`panel_aggregates` computes them in a pass of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evaluator.data.shards import BATCH_ROWS, PanelChecks, check_block_rows, ordered_map, periods, unit_blocks

__all__ = ["PanelAggregates", "block_aggregates", "empty_aggregates", "panel_aggregates", "window_means"]


@dataclass
class PanelAggregates:
    """Counts and sums of a panel by cohort (0: never treated) and period, added up over blocks of whole units.

    ``cells`` is indexed by (cohort, period) with the columns ``rows`` (one per unit
    observed then) and ``total`` (the sum of the outcome); ``cohort_units`` counts the
    units of each cohort; ``cluster_pairs`` holds the distinct (cohort, cluster) pairs
    (``None`` without a cluster column: each unit is its own cluster); ``share`` says
    whether every outcome value is 0 or 1.
    """

    periods: np.ndarray
    cells: pd.DataFrame
    cohort_units: pd.Series
    cluster_pairs: pd.DataFrame | None = None
    share: bool = True
    rows: int = 0
    units: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def __add__(self, other: PanelAggregates) -> PanelAggregates:
        """The aggregates of two disjoint sets of units (blocks of whole units), exactly."""
        cells = self.cells.add(other.cells, fill_value=0).astype({"rows": "int64"})
        units = self.cohort_units.add(other.cohort_units, fill_value=0).astype("int64")
        pairs = None
        if self.cluster_pairs is not None and other.cluster_pairs is not None:
            pairs = pd.concat([self.cluster_pairs, other.cluster_pairs], ignore_index=True).drop_duplicates()
        return PanelAggregates(
            periods=self.periods,
            cells=cells.sort_index(),
            cohort_units=units.sort_index(),
            cluster_pairs=pairs,
            share=self.share and other.share,
            rows=self.rows + other.rows,
            units=self.units + other.units,
        )

    @property
    def means(self) -> pd.Series:
        """Mean outcome by (cohort, period): the raw trends."""
        return (self.cells["total"] / self.cells["rows"]).rename("mean")

    @property
    def n_treated(self) -> int:
        """Units ever in the programme (cohort not 0)."""
        return int(self.cohort_units[self.cohort_units.index != 0].sum())

    def clusters(self, cohorts: Any = None) -> int:
        """Distinct clusters among the units of ``cohorts`` (all units when ``None``)."""
        if self.cluster_pairs is None:  # each unit its own cluster
            sizes = self.cohort_units if cohorts is None else self.cohort_units[self.cohort_units.index.isin(cohorts)]
            return int(sizes.sum())
        pairs = self.cluster_pairs
        if cohorts is not None:
            pairs = pairs.loc[pairs["cohort"].isin(list(cohorts))]
        return int(pairs["cluster"].nunique())

    def cohort_table(self) -> pd.DataFrame:
        """Units and clusters by cohort, as :class:`evaluator.reporting.pipeline.DidFit` keeps them."""
        rows = [(g, int(n), self.clusters([g])) for g, n in self.cohort_units.items()]
        return pd.DataFrame(rows, columns=["first treated period", "units", "clusters"])

    def event_rows(self) -> pd.Series:
        """Programme units observed ``e`` periods from their start (``e = period - cohort``), by ``e``.

        A panel has one row per unit and period, so the rows of a (cohort, period) cell
        are its distinct units.
        """
        c = self.cells.reset_index()
        c = c.loc[c["cohort"] != 0]
        e = (c["period"] - c["cohort"]).astype("int64")
        return c.groupby(e)["rows"].sum().rename("units").rename_axis("e")

    def mean_where(self, before: bool) -> float | None:
        """Mean outcome of the programme group's rows before (``True``) or from (``False``) its own start."""
        c = self.cells.reset_index()
        treated = c["cohort"] != 0
        side = c["period"] < c["cohort"] if before else c["period"] >= c["cohort"]
        pick = c.loc[treated & side]
        n = int(pick["rows"].sum())
        return float(pick["total"].sum() / n) if n else None


def block_aggregates(
    unit: np.ndarray,
    time: np.ndarray,
    outcome: np.ndarray,
    cohort: np.ndarray,
    cluster: np.ndarray | None = None,
    *,
    periods: np.ndarray,
) -> PanelAggregates:
    """The aggregates of one block of valid rows of whole units (``cohort`` 0 for never treated).

    Parameters
    ----------
    unit, time, outcome, cohort : numpy.ndarray
        One value per row; every unit's rows are all in the block.
    cluster : numpy.ndarray, optional
        The cluster of each row; without it each unit is its own cluster.
    periods : numpy.ndarray
        The panel's periods, sorted (the same for every block).

    Returns
    -------
    PanelAggregates
        Add the blocks' results with ``+``.

    Examples
    --------
    >>> a = block_aggregates(np.array([1, 1, 2, 2]), np.array([1, 2, 1, 2]), np.array([1.0, 3.0, 0.0, 1.0]),
    ...                      np.array([2, 2, 0, 0]), periods=np.array([1, 2]))
    >>> b = block_aggregates(np.array([3, 3]), np.array([1, 2]), np.array([2.0, 2.0]), np.array([2, 2]),
    ...                      periods=np.array([1, 2]))
    >>> total = a + b
    >>> total.cohort_units.to_dict(), total.means.loc[2].to_dict()
    ({0: 1, 2: 2}, {1: 1.5, 2: 2.5})
    """
    g = np.asarray(cohort, dtype=np.float64)
    g = np.where(np.isnan(g), 0, g).astype(np.int64)
    frame = pd.DataFrame({"cohort": g, "period": time, "y": np.asarray(outcome, dtype=np.float64)})
    cells = frame.groupby(["cohort", "period"], sort=True)["y"].agg(rows="size", total="sum")
    first = np.concatenate([[True], unit[1:] != unit[:-1]]) if len(unit) else np.zeros(0, dtype=bool)
    units = pd.Series(g[first]).value_counts().sort_index().astype("int64")
    units.index.name = "cohort"
    pairs = None
    if cluster is not None:
        pairs = pd.DataFrame({"cohort": g[first], "cluster": cluster[first]}).drop_duplicates(ignore_index=True)
    y = frame["y"].to_numpy()
    return PanelAggregates(
        periods=np.asarray(periods),
        cells=cells,
        cohort_units=units,
        cluster_pairs=pairs,
        share=bool(np.isin(y, (0.0, 1.0)).all()),
        rows=len(frame),
        units=int(first.sum()),
    )


def empty_aggregates(periods: np.ndarray, *, clustered: bool) -> PanelAggregates:
    """The aggregates of no rows: the start of a sum over blocks."""
    index = pd.MultiIndex.from_arrays([np.empty(0, np.int64), np.empty(0, np.asarray(periods).dtype)])
    index.names = ["cohort", "period"]
    cells = pd.DataFrame({"rows": np.empty(0, np.int64), "total": np.empty(0)}, index=index)
    units = pd.Series(np.empty(0, np.int64), index=pd.Index(np.empty(0, np.int64), name="cohort"))
    pairs = pd.DataFrame({"cohort": np.empty(0, np.int64), "cluster": []}) if clustered else None
    return PanelAggregates(periods=np.asarray(periods), cells=cells, cohort_units=units, cluster_pairs=pairs)


def panel_aggregates(
    source: Any,
    *,
    unit: str,
    time: str,
    outcome: str,
    cohort: str,
    cluster: str | None = None,
    batch_rows: int = BATCH_ROWS,
    threads: int = 1,
) -> PanelAggregates:
    """Counts and means of a panel by cohort and period, in one pass over a Parquet file, folder or pyarrow Dataset.

    The rows must be sorted by unit, then period (as :func:`evaluator.staggered_did` reads
    them out of core). Rows the panel rules reject make one
    :class:`~evaluator.errors.DataError` (as :mod:`evaluator.data.shards` words them);
    units missing periods are counted, as in memory.

    Parameters
    ----------
    source : str, Path, pyarrow.dataset.Dataset or PanelSource
        The data, never read whole.
    unit, time, outcome, cohort : str
        Columns; ``cohort`` is the first treated period, 0 or empty for never treated.
    cluster : str, optional
        Column of clusters, to count the clusters of each cohort.
    batch_rows : int
        Rows per Arrow record batch read.
    threads : int
        Threads reducing blocks (the result does not depend on it).

    Returns
    -------
    PanelAggregates

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from evaluator.data.simulate import sick_leave_sib
    >>> sim = sick_leave_sib(n_municipalities=6, employees_per_municipality=10, n_periods=12, waves=(5,), seed=1)
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> data = sim.data.sort_values(["employee", "month"])
    >>> data.iloc[:300].to_parquet(folder / "a.parquet"); data.iloc[300:].to_parquet(folder / "b.parquet")
    >>> agg = panel_aggregates(folder, unit="employee", time="month", outcome="sick_days",
    ...                        cohort="first_treated", cluster="municipality", batch_rows=100)
    >>> mem = data.groupby(["first_treated", "month"])["sick_days"].mean()
    >>> bool(np.allclose(agg.means.to_numpy(), mem.to_numpy(), rtol=1e-12))
    True
    >>> units = data.drop_duplicates("employee")["first_treated"].value_counts().sort_index()
    >>> agg.cohort_units.to_dict() == units.to_dict(), agg.cohort_units.to_dict(), agg.clusters()
    (True, {0: 20, 5: 40}, 6)
    """
    from evaluator.data.shards import check_columns, open_dataset

    dataset, label = open_dataset(source)
    roles = {"unit": unit, "time": time, "outcome": outcome, "cohort": cohort}
    if cluster is not None:
        roles["cluster"] = cluster
    check_columns(dataset, roles, numeric=[outcome, time, cohort], label=label)
    times = periods(dataset, time)
    checks = PanelChecks(roles)
    missing: list[int] = []

    def reduce(block: Any) -> tuple[Any, PanelAggregates]:
        found, layout = check_block_rows(block, roles, times)
        cols = {role: block.columns[col][layout.rows] for role, col in roles.items()}
        agg = block_aggregates(
            cols["unit"], cols["time"], cols["outcome"], cols["cohort"], cols.get("cluster"), periods=times
        )
        return found, agg

    total = empty_aggregates(times, clustered=cluster is not None)
    blocks = unit_blocks(dataset, roles, batch_rows=batch_rows, missing_units=missing, label=label)
    for found, agg in ordered_map(reduce, blocks, threads=threads):
        checks.add(found)
        total = total + agg
    checks.add_missing_units(missing)
    checks.raise_problems(label)
    return total


def window_means(
    source: Any,
    *,
    unit: str,
    time: str,
    outcome: str,
    cohort: str,
    periods: int = 12,
    batch_rows: int = BATCH_ROWS,
) -> dict[str, float] | None:
    """The programme group's mean outcome in the ``periods`` before and from each unit's start, in one pass.

    As :func:`evaluator.reporting.contract_value.observed_pre_post` computes it in memory:
    each treated unit's mean over event times ``-periods .. -1`` and ``0 .. periods - 1``,
    averaged over the units observed in both windows; ``None`` when no unit is. A unit's
    rows are all in one block, so its two means are exact and only their sums cross blocks.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pd.DataFrame({"u": [1, 1, 1, 2, 2, 2], "t": [1, 2, 3, 1, 2, 3], "g": [3, 3, 3, 0, 0, 0],
    ...                   "y": [1.0, 2.0, 5.0, 0.0, 0.0, 0.0]})
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "p.parquet"
    >>> d.to_parquet(path)
    >>> window_means(path, unit="u", time="t", outcome="y", cohort="g", periods=2)
    {'before': 1.5, 'after': 5.0, 'units': 1}
    """
    from evaluator.data.shards import open_dataset

    dataset, label = open_dataset(source)
    roles = {"unit": unit, "time": time, "outcome": outcome, "cohort": cohort}
    before_sum = after_sum = 0.0
    n = 0
    for block in unit_blocks(dataset, roles, batch_rows=batch_rows, label=label):
        c = block.columns
        g = np.asarray(c[cohort], dtype=np.float64)
        treated = np.isfinite(g) & (g != 0)
        e = np.asarray(c[time], dtype=np.float64)[treated] - g[treated]
        frame = pd.DataFrame({"u": c[unit][treated], "e": e, "y": np.asarray(c[outcome], dtype=np.float64)[treated]})
        before = frame.loc[(frame["e"] < 0) & (frame["e"] >= -periods)].groupby("u")["y"].mean()
        after = frame.loc[(frame["e"] >= 0) & (frame["e"] < periods)].groupby("u")["y"].mean()
        both = before.index.intersection(after.index)
        before_sum += float(before[both].sum())
        after_sum += float(after[both].sum())
        n += len(both)
    if n == 0:
        return None
    return {"before": before_sum / n, "after": after_sum / n, "units": n}
