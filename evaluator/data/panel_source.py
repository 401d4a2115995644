"""A panel validated out of core: :func:`evaluator.load_panel` on data too large to hold, as a small object.

``load_panel(folder)`` (or a pyarrow Dataset, or a Parquet file with ``out_of_core=True``)
never forms the frame. :func:`scan_panel` reads the role columns in one pass over blocks of
whole units (:mod:`evaluator.data.shards`; rows sorted by unit, then period), checks the
panel rules block by block (shards' checks, plus the rules of :func:`load_panel` they do not
cover: cohorts that are observed periods, whole numbers, weights, covariates, one unit, no
treated unit) into one :class:`~evaluator.errors.DataError`, and reduces each block to what
``frame.attrs["evaluator"]`` holds in memory (notes, balance, attrition; the counts add up
over blocks) and to the report's :class:`~evaluator.data.aggregates.PanelAggregates`.

The result, a :class:`PanelSource`, is what :func:`evaluator.staggered_did` takes as
``data``: it reads the rows again from their source, leaving out the units
:func:`load_panel` drops (never observed before their first treated period).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from evaluator.data.aggregates import PanelAggregates, block_aggregates, empty_aggregates
from evaluator.data.shards import (
    BATCH_ROWS,
    PanelChecks,
    _Found,
    check_block_rows,
    check_columns,
    open_dataset,
    ordered_map,
    periods,
    unit_blocks,
)
from evaluator.data.validate import infinite_problem, missing_problem, panel_balance, where_units
from evaluator.errors import DataError, DroppedUnitsWarning, Problem, format_examples

__all__ = ["PanelSource", "is_out_of_core_source", "scan_panel"]


@dataclass
class PanelSource:
    """A panel validated by :func:`scan_panel`: where its rows are, its roles and its summary; never its rows.

    ``source`` is the Parquet file, folder or pyarrow Dataset; ``columns`` the resolved
    role -> column mapping and ``attrs["evaluator"]`` the summary an in-memory panel
    carries (``schema``, ``columns``, ``dropped``, ``source``, ``notes``, ``balance``,
    ``attrition``); ``aggregates`` the counts and means of the report's data section;
    ``excluded`` the units :func:`load_panel` drops, left out whenever the rows are read;
    ``left_out`` cohorts a robustness check leaves out (:meth:`without_cohort`). The
    aggregates always describe the whole panel.
    """

    source: Any
    columns: dict[str, Any]
    attrs: dict[str, Any]
    aggregates: PanelAggregates
    excluded: list[Any] = field(default_factory=list)
    left_out: tuple[Any, ...] = ()
    #: the placebo of :meth:`placebo_start`: (the first cohort, its pretended start)
    placebo: tuple[float, float] | None = None

    def to_dataset(self) -> tuple[Any, str]:
        """The ``pyarrow.dataset.Dataset`` of the rows (dropped units and left-out cohorts filtered out) and the
        label naming it."""
        dataset, label = open_dataset(self.source)
        import pyarrow.compute as pc

        if self.excluded:
            dataset = dataset.filter(~pc.field(self.columns["unit"]).isin(self.excluded))
        cohort = pc.field(self.columns["cohort"])
        for g in self.left_out:  # a missing cohort (never treated) is kept: null != g is null, not true
            dataset = dataset.filter((cohort != g) | cohort.is_null())
        if self.placebo is not None:
            before = dataset.filter(pc.field(self.columns["time"]) < self.placebo[0])
            dataset = _PlaceboCohorts(before, self.columns["cohort"], *self.placebo)
        return dataset, label

    @property
    def filters_rows(self) -> bool:
        """Whether reading the rows filters some out (the passes then run in this process)."""
        return bool(self.excluded or self.left_out or self.placebo)

    def placebo_start(self, first: float, k: int) -> PanelSource:
        """The placebo of the robustness chapter: the rows before ``first`` (the first cohort's start), that cohort
        pretending to start ``k`` periods earlier and every other unit never treated (as the in-memory
        ``pre.assign(cohort=np.where(pre[cohort] == first, first - k, 0))``), recoded as the rows are read.

        Examples
        --------
        >>> src = PanelSource("p.parquet", {"unit": "id", "time": "t", "cohort": "g"}, {}, None)
        >>> src.placebo_start(5, 2).placebo, src.placebo_start(5, 2).filters_rows
        ((5.0, 3.0), True)
        """
        return replace(self, placebo=(float(first), float(first - k)))

    def without_cohort(self, cohort: Any) -> PanelSource:
        """The same panel without the units of ``cohort`` (as ``panel.loc[panel[cohort] != g]`` in memory).

        Examples
        --------
        >>> src = PanelSource("p.parquet", {"unit": "id", "cohort": "g"}, {}, None)
        >>> src.without_cohort(4).without_cohort(6).left_out, src.left_out
        ((4, 6), ())
        """
        return replace(self, left_out=(*self.left_out, cohort))

    # how evaluator.data.shards.open_dataset (hence staggered_did) recognises and opens a PanelSource
    __evaluator_dataset__ = to_dataset

    @property
    def rows(self) -> int:
        """Rows of the panel used (those of dropped units not counted)."""
        return self.aggregates.rows

    def __repr__(self) -> str:
        b = self.attrs["evaluator"]["balance"]
        return f"PanelSource({self.rows:,} rows, {b['units']:,} units, {b['periods']} periods, out of core)"


class _PlaceboCohorts:
    """A pyarrow Dataset whose cohort column is recoded in every record batch read (:meth:`PanelSource.placebo_start`):
    ``start`` where it equals ``first``, else 0 (never treated; missing values too, as NaN in memory). It answers
    what the passes in this process ask of a Dataset (``schema``, ``to_batches``)."""

    def __init__(self, dataset: Any, column: str, first: float, start: float) -> None:
        self.dataset, self.column, self.first, self.start = dataset, column, first, start

    @property
    def schema(self) -> Any:
        return self.dataset.schema

    def to_batches(self, *, columns: list[str], **kw: Any) -> Any:
        import pyarrow as pa
        import pyarrow.compute as pc

        for batch in self.dataset.to_batches(columns=columns, **kw):
            if self.column in batch.schema.names:
                i = batch.schema.get_field_index(self.column)
                g = batch.column(i)
                hit = pc.fill_null(pc.equal(g, pa.scalar(self.first).cast(g.type)), False)
                recoded = pc.if_else(hit, pa.scalar(self.start).cast(g.type), pa.scalar(0).cast(g.type))
                batch = batch.set_column(i, self.column, recoded)
            yield batch


def is_out_of_core_source(source: Any) -> bool:
    """Whether :func:`evaluator.load_panel` reads ``source`` out of core without being asked: a folder or a Dataset.

    Examples
    --------
    >>> import tempfile
    >>> is_out_of_core_source(tempfile.mkdtemp()), is_out_of_core_source("panel.parquet")
    (True, False)
    """
    if isinstance(source, (str, os.PathLike)):
        return Path(source).is_dir()
    module = type(source).__module__ or ""
    return module.startswith("pyarrow") and hasattr(source, "to_batches")


@dataclass
class _Extra:
    """The rules of :func:`load_panel` that the shards' block checks leave out, found in one block."""

    missing: dict[str, _Found] = field(default_factory=dict)  # column -> data rows
    infinite: dict[str, _Found] = field(default_factory=dict)
    fractional: dict[str, _Found] = field(default_factory=dict)
    negative: _Found = field(default_factory=_Found)  # weight: data rows
    weight_varies: _Found = field(default_factory=_Found)  # units
    cohort_outside: _Found = field(default_factory=_Found)  # units
    outside_values: set[float] = field(default_factory=set)
    cohort_zero: bool = False
    positive_weight: bool = False
    valid_weight: bool = False
    dropped: list[Any] = field(default_factory=list)  # units never observed before their first treated period
    dropped_rows: int = 0

    def merge(self, other: _Extra) -> None:
        for mine, theirs in (
            (self.missing, other.missing),
            (self.infinite, other.infinite),
            (self.fractional, other.fractional),
        ):
            for col, f in theirs.items():
                mine.setdefault(col, _Found()).add(f.first, f.count)
        for name in ("negative", "weight_varies", "cohort_outside"):
            f = getattr(other, name)
            if f.count:
                getattr(self, name).add(f.first, f.count)
        self.outside_values |= other.outside_values
        self.cohort_zero |= other.cohort_zero
        self.positive_weight |= other.positive_weight
        self.valid_weight |= other.valid_weight
        self.dropped.extend(other.dropped)
        self.dropped_rows += other.dropped_rows


def _resolve(names: list[str], schema: str, columns: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[Problem]]:
    """Roles -> columns as :func:`load_panel` resolves them (on the column names alone), and the problems found."""
    from evaluator.data.load import _resolve_columns, read_schema

    problems: list[Problem] = []
    roles = _resolve_columns(pd.DataFrame(columns=names), read_schema(schema), columns, problems)
    if "treatment" in roles:
        problems.append(
            Problem(
                "out of core the panel needs a 'cohort' column (first treated period), not a 'treatment' indicator",
                column=str(roles["treatment"]),
                hint="derive the cohort once (the first period with treatment 1, per unit) and map it with "
                "columns={'cohort': ...}, or read the data into a DataFrame",
            )
        )
    elif "cohort" not in roles and "unit" in roles and "time" in roles:
        problems.append(
            Problem(
                "neither a 'cohort' (first treated period) nor a 'treatment' (0/1) column was given",
                hint="map the first treated period with columns={'cohort': ...}",
            )
        )
    return roles, problems


def _as_list(value: Any) -> list[str]:
    return [] if value is None else ([value] if isinstance(value, str) else list(value))


def _block_extra(block: Any, layout: Any, roles: Mapping[str, Any], times: np.ndarray) -> tuple[_Extra, np.ndarray]:
    """The further rules on one block, the units to drop, and which of the layout's rows are kept."""
    cols = block.columns
    extra = _Extra()
    numeric = [*_as_list(roles.get("outcome"))[1:], *_as_list(roles.get("covariates"))]
    weight = roles.get("weight")
    for col in [*numeric, *([weight] if weight else [])]:
        v = cols[col]
        if not np.issubdtype(v.dtype, np.floating):
            continue
        na, inf = np.isnan(v), np.isinf(v)
        if na.any():
            extra.missing.setdefault(col, _Found()).add(block.positions(na) + 1)
        if inf.any():
            extra.infinite.setdefault(col, _Found()).add(block.positions(inf) + 1)
    for role in ("time", "cohort"):
        v = cols[roles[role]]
        if np.issubdtype(v.dtype, np.floating):
            frac = np.isfinite(v) & (np.mod(v, 1) != 0)
            if frac.any():
                extra.fractional.setdefault(roles[role], _Found()).add(block.positions(frac) + 1)
    rows = layout.rows
    u = cols[roles["unit"]][rows]
    g_raw = np.asarray(cols[roles["cohort"]][rows], dtype=np.float64)
    extra.cohort_zero = bool((g_raw == 0).any())
    g = np.where(np.isnan(g_raw), 0.0, g_raw)
    starts = np.flatnonzero(np.concatenate([[True], u[1:] != u[:-1]])) if len(u) else np.zeros(0, np.int64)
    outside = (g != 0) & ~np.isin(g, times)
    if outside.any():
        extra.outside_values |= set(np.unique(g[outside]).tolist())
        bad = np.unique(np.searchsorted(starts, np.flatnonzero(outside), side="right") - 1)
        extra.cohort_outside.add(u[starts[bad]])
    if weight:
        w = np.asarray(cols[weight][rows], dtype=np.float64)
        neg = w < 0
        if neg.any():
            extra.negative.add(block.positions(rows[neg]) + 1)
        ok = np.isfinite(w) & (w >= 0)
        extra.valid_weight = bool(ok.any())
        extra.positive_weight = bool((w[ok] > 0).any())
        if len(starts):
            # NaN differs from itself: rows with a missing weight are reported as missing, not as varying
            first = np.repeat(w[starts], np.diff(np.append(starts, len(w))))
            differs = ok & np.isfinite(first) & (w != first)
            varies = np.logical_or.reduceat(differs, starts)
            if varies.any():
                extra.weight_varies.add(u[starts[varies]])
    # units never observed before their first treated period (load_panel drops them)
    keep = np.ones(len(rows), dtype=bool)
    if len(starts):
        t = np.asarray(cols[roles["time"]][rows], dtype=np.float64)
        counts = np.diff(np.append(starts, len(u)))
        first_seen = np.minimum.reduceat(t, starts)
        gu = g[starts]
        late = (gu != 0) & (first_seen >= gu)
        if late.any():
            extra.dropped.extend(u[starts[late]].tolist())
            extra.dropped_rows += int(counts[late].sum())
            keep = ~np.repeat(late, counts)
    return extra, keep


def _extra_problems(extra: _Extra, roles: Mapping[str, Any], checks: PanelChecks, times: np.ndarray) -> list[Problem]:
    """The further rules' problems, worded as :func:`load_panel` words them in memory."""
    out: list[Problem] = []
    for col, f in extra.missing.items():
        where = f.where("data rows")
        out.append(missing_problem(col, f.count, what=f"out of {checks.rows}", where=where, before="loading"))
    for col, f in extra.infinite.items():
        out.append(infinite_problem(col, f.count, where=f.where("data rows")))
    for col, f in extra.fractional.items():
        role = "time" if col == roles["time"] else "cohort"
        out.append(
            Problem(
                f"{role} must be a whole number but has fractional values",
                column=col,
                where=f.where("data rows"),
                hint="code periods and cohorts as whole numbers (a year, 202401, or 1, 2, 3 ...)",
            )
        )
    cohort = roles["cohort"]
    if len(times) and 0 in set(times.tolist()) and extra.cohort_zero:
        out.append(
            Problem(
                "period 0 is observed, so cohort 0 cannot mean never treated",
                column=cohort,
                hint="mark never-treated units with an empty cell, or number periods from 1",
            )
        )
    if extra.cohort_outside.count and len(times):
        values = format_examples(sorted(v for v in extra.outside_values if not np.mod(v, 1)) or [], limit=5)
        out.append(
            Problem(
                f"cohort values outside the observed periods {times.min():g}..{times.max():g} or between them: "
                f"{values}",
                column=cohort,
                where=extra.cohort_outside.where("units"),
                hint="a cohort must be an observed period; code units first treated after the last period as never "
                "treated (0 or empty)",
            )
        )
    weight = roles.get("weight")
    if weight and extra.negative.count:
        out.append(
            Problem(
                "weight must be at least 0",
                column=weight,
                where=extra.negative.where("data rows"),
                hint="weights cannot be negative",
            )
        )
    if weight and extra.valid_weight and not extra.positive_weight:
        out.append(
            Problem(
                "the weights are zero everywhere",
                column=weight,
                hint="give positive weights (a weight of 0 leaves a row out), or leave the weight role out",
            )
        )
    if weight and extra.weight_varies.count:
        out.append(
            Problem(
                f"the weights vary within {extra.weight_varies.count} of {checks.units} units; sampling weights "
                "belong to a unit of the panel",
                column=weight,
                where=extra.weight_varies.where("units"),
                hint="give each unit one weight in every period, e.g. its weight at entry",
            )
        )
    return out


def scan_panel(
    source: Any,
    *,
    schema: str = "panel",
    columns: Mapping[str, Any] | None = None,
    batch_rows: int = BATCH_ROWS,
    threads: int = 1,
) -> PanelSource:
    """Validate and summarise a panel out of core in one pass: :func:`evaluator.load_panel` without the frame.

    Parameters
    ----------
    source : str, Path or pyarrow.dataset.Dataset
        A Parquet file, a folder of Parquet files (read in the sorted order of their
        paths) or a Dataset; the rows sorted by unit, then period.
    schema : str
        Schema name in ``data_schemas/`` or a path to a Table Schema JSON file.
    columns : mapping, optional
        Role -> column, as :func:`evaluator.load_panel` takes it (``cohort``, not
        ``treatment``; one outcome is summarised, every outcome is checked).
    batch_rows : int
        Rows per Arrow record batch read.
    threads : int
        Threads reducing blocks (the result does not depend on it).

    Returns
    -------
    PanelSource
        With ``attrs["evaluator"]`` as the in-memory panel's (``notes``, ``balance``,
        ``attrition``, ``dropped``) and the report's aggregates.

    Raises
    ------
    DataError
        One error listing every problem (missing columns, missing or infinite values,
        duplicate unit-period rows, a cohort or cluster changing within a unit, cohorts
        outside the observed periods ...), naming rows (data rows counted from 1 over the
        whole source) and units; a :class:`~evaluator.errors.WeightsError` when the
        problems include the weights. Rows out of order (not sorted by unit) stop the
        pass at the first, with a DataError saying how to sort.

    Warns
    -----
    DroppedUnitsWarning
        When units never observed before their first treated period are left out.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from evaluator.data.simulate import sick_leave_sib
    >>> sim = sick_leave_sib(n_municipalities=6, employees_per_municipality=10, n_periods=12, waves=(5,), seed=1,
    ...                      attrition=0.05)
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> sim.data.sort_values(["employee", "month"]).to_parquet(folder / "part-0.parquet")
    >>> panel = scan_panel(folder, columns=sim.columns, batch_rows=200)
    >>> from evaluator.data.load import load_panel
    >>> mem = load_panel(sim.data, columns=sim.columns)
    >>> panel.attrs["evaluator"]["balance"] == mem.attrs["evaluator"]["balance"]
    True
    >>> panel.attrs["evaluator"]["notes"] == mem.attrs["evaluator"]["notes"]
    True
    """
    from evaluator.data.load import _balance_notes, _dropped_note, _raise

    dataset, label = open_dataset(source)
    names = [n for n in dataset.schema.names if n != "__index_level_0__"]
    roles, problems = _resolve(names, schema, columns)
    _raise(problems, roles, label)
    outcomes = _as_list(roles["outcome"])
    core = {"unit": roles["unit"], "time": roles["time"], "outcome": outcomes[0], "cohort": roles["cohort"]}
    if roles.get("cluster"):
        core["cluster"] = roles["cluster"]
    numeric = [*outcomes, roles["time"], roles["cohort"], *_as_list(roles.get("covariates"))]
    if roles.get("weight"):
        numeric.append(roles["weight"])
    check_columns(dataset, core, numeric=numeric, label=label)
    read = dict(core)  # every column the rules read, each once
    for i, col in enumerate([*outcomes[1:], *_as_list(roles.get("covariates")), *_as_list(roles.get("weight"))]):
        read.setdefault(f"_extra{i}", col)
    times = periods(dataset, roles["time"])
    if not len(times):
        raise DataError([Problem("the data have no rows with a period", column=roles["time"])], source=label)

    def reduce(block: Any) -> tuple[Any, _Extra, dict[str, Any] | None, PanelAggregates | None]:
        found, layout = check_block_rows(block, core, times)
        extra, keep = _block_extra(block, layout, roles, times)
        rows = layout.rows[keep]
        if extra.cohort_outside.count or extra.fractional or not len(rows):
            return found, extra, None, None  # the cohorts cannot be placed among the periods: no summary
        c = block.columns
        u, t, y = c[core["unit"]][rows], c[core["time"]][rows], c[core["outcome"]][rows]
        g = np.asarray(c[core["cohort"]][rows], dtype=np.float64)
        g = np.where(np.isnan(g), 0, g).astype(np.int64)
        cl = c[core["cluster"]][rows] if "cluster" in core else None
        balance = panel_balance(pd.DataFrame({"u": u, "t": t, "g": g}), "u", "t", "g", periods=times)
        return found, extra, balance, block_aggregates(u, t, y, g, cl, periods=times)

    checks = PanelChecks(core)
    extra = _Extra()
    missing: list[int] = []
    balance: dict[str, Any] = {}
    aggregates = empty_aggregates(times, clustered="cluster" in core)
    blocks = unit_blocks(dataset, read, batch_rows=batch_rows, missing_units=missing, label=label)
    for found, ex, b, agg in ordered_map(reduce, blocks, threads=threads):
        checks.add(found)
        extra.merge(ex)
        if b is not None and agg is not None:
            balance = _add_balance(balance, b)
            aggregates = aggregates + agg
    checks.add_missing_units(missing)
    problems = checks.problems() + _extra_problems(extra, roles, checks, times)
    n_units = checks.units
    if n_units == 1:
        problems.append(
            Problem(
                "the panel has only 1 unit",
                column=roles["unit"],
                hint="difference-in-differences compares treated units with comparison units; check the export",
            )
        )
    flagged = {p.column for p in problems}
    if (
        n_units
        and roles["cohort"] not in flagged
        and aggregates.units
        and not aggregates.n_treated
        and not extra.dropped
    ):
        problems.append(
            Problem(
                "there are no treated units: every cohort is 0 or empty",
                column=roles["cohort"],
                hint="code the first treated period as the cohort of treated units",
            )
        )
    _raise(problems, roles, label)
    dropped: dict[str, Any] = {}
    if extra.dropped:
        warnings.warn(
            f"dropped {len(extra.dropped)} unit(s) ({extra.dropped_rows} rows) never observed before their first "
            f"treated period (column '{roles['cohort']}'): without a pre-treatment period their change cannot be "
            f"measured; {where_units(extra.dropped)}",
            DroppedUnitsWarning,
            stacklevel=3,
        )
        dropped = {"no_pre_period": {"units": len(extra.dropped), "rows": extra.dropped_rows}}
    balance = _finish_balance(balance, len(times))
    attrition = balance.pop("attrition")
    attrs = {
        "schema": schema,
        "columns": roles,
        "dropped": dropped,
        "source": label,
        "notes": _dropped_note(dropped, roles["cohort"]) + _balance_notes(balance),
        "balance": balance,
        "attrition": attrition,
        "out_of_core": True,
    }
    return PanelSource(source, roles, {"evaluator": attrs}, aggregates, excluded=extra.dropped)


def _add_balance(total: dict[str, Any], block: Mapping[str, Any]) -> dict[str, Any]:
    """Two blocks' :func:`~evaluator.data.validate.panel_balance` counts added (disjoint units, the same periods)."""
    if not total:
        return {k: (v if k != "attrition" else {g: dict(c) for g, c in v.items()}) for k, v in block.items()}
    out = dict(total)
    for key, value in block.items():
        if key in ("periods", "balanced", "attrition"):
            continue
        out[key] = total[key] + value
    table = {g: dict(c) for g, c in total["attrition"].items()}
    for g, by_seen in block["attrition"].items():
        row = table.setdefault(g, {})
        for k, n in by_seen.items():
            row[k] = row.get(k, 0) + n
    out["attrition"] = table
    return out


def _finish_balance(b: dict[str, Any], n_periods: int) -> dict[str, Any]:
    """The summed counts in :func:`~evaluator.data.validate.panel_balance`'s order, ``balanced`` from them."""
    keys = ("enter_late", "leave_early", "gaps", "single_period", "leave_before_treatment", "no_base_period")
    attrition = {
        g: dict(sorted(b.get("attrition", {}).get(g, {}).items(), reverse=True)) for g in sorted(b.get("attrition", {}))
    }
    return {
        "units": int(b.get("units", 0)),
        "periods": n_periods,
        "balanced": int(b.get("incomplete", 0)) == 0,
        "incomplete": int(b.get("incomplete", 0)),
        **{k: int(b.get(k, 0)) for k in keys},
        "attrition": attrition,
    }
