"""Staggered DiD out of core: Callaway-Sant'Anna on a panel read in passes over shards of units.

:func:`staggered_did` sends a path to a Parquet file or folder, or a ``pyarrow.dataset.Dataset``,
here. The rows are streamed as Arrow record batches cut into blocks of whole units
(:mod:`evaluator.data.shards`), the panel rules are checked in the same pass, and each block
is reduced to sufficient statistics; the frame is never formed.

Without covariates every ATT(g,t) and its influence function depend on a unit only through
its cohort class ``h`` (a cohort, or never treated) and its outcomes ``Y_i`` (one per period):
for cell ``j`` with periods ``t`` and base ``b``, ``psi_ij = a_j(h) (D_j'Y_i - m_j(h))`` with
``D_j = e_t - e_b``, ``a_j(h)`` = ``n/n_t`` (treated), ``-n/n_c`` (control) or 0, and ``m_j(h)`` the
mean of ``D_j'Y`` over the unit's side. So with, per class, the count ``N_h``, the mean outcome
vector and the centred cross-product matrix ``C_h = sum (Y_i - mean_h)(Y_i - mean_h)'`` (combined
across blocks exactly, by Chan's pairwise update), every estimate follows, and the covariance of
all cells and cohort shares is ``sum_h (L_h C_h L_h' + N_h c_h c_h') / n^2`` with ``L_h`` and ``c_h``
the linear and constant parts of ``psi`` on class ``h``. With clusters the per-cluster sums of
``psi`` need, per (cluster, class), the count and the sum of ``Y_i``: the clustered ``S'S / n^2``
is then formed exactly as in memory. The aggregations are the in-memory ones, on the same
:class:`~evaluator.estimators.staggered.StaggeredResult`.

An unbalanced panel used whole (``allow_unbalanced_panel=True``, the estimator of
:mod:`evaluator.estimators.staggered_rc`: each cell the difference of four means over the rows
of its two periods, a unit's influence function the sum over its rows) needs, per class, the
second moments of ``z_i = ((Y_i - c) O_i, O_i, 1)`` (``O_i`` the periods observed, ``c`` a
constant), since there ``psi_i = C_h z_i``; with clusters, the per-(cluster, class) sums of ``z_i`` (and, for
the restricted wild cluster bootstrap, a pass more counting the units observed in both periods of each cell: a
cell's side counts the units with a row in either period).

With time-invariant covariates ``X_i`` (``method`` "reg", "ipw", "dr", DRDID's panel estimators
as :func:`evaluator.estimators.staggered._att_cov` computes them) the first pass keeps, per class,
the moments of ``(Y_i, X_i)``: every cell's outcome regression (the controls' ``X'X`` and ``X'dY``)
and the treated sums follow. The propensity logit of each (cohort, control set) is fitted as in
memory (:func:`evaluator.estimators.logit.fit_logit`, ``arithmetic="direct"``: intercept-only start,
step halving, the same stop rule), one Newton step per pass for all logits at once; a pass at the
fitted scores gives each logit's information ``X'WX``, the trimming and each cell's weighted control
sums, and a last pass forms every unit's influence function over all cells and cohort shares and
sums ``psi psi'`` (or, with clusters, ``psi`` per cluster). A unit's influence function in cell
``j`` is ``n [D (r - m_t)/n_t - C r X'a - w_C (r - e_C)/S_C - (D - ps) X'b]`` with ``r = dY - X'beta``.

Covered: balanced panels (units missing periods are dropped with a warning, as in memory) and
unbalanced panels used whole, no covariates (any ``method``: they all reduce to the unconditional
estimator) or time-invariant ones on balanced panels, never and not-yet-treated controls, varying
and universal base periods, anticipation, analytic standard errors by unit or by a cluster column,
the multiplier bootstrap and (with a cluster column) the restricted wild cluster bootstrap. A
covariate varying within a unit raises a :class:`~evaluator.errors.DataError` naming the units
(in memory each cell takes the earlier period's values).

Sampling weights (``weights=``, one per unit) are covered on balanced panels, with or without
covariates, clusters and bootstraps: beside each class's moments the pass keeps them with every unit
counted ``w_i`` and ``w_i^2`` times (the sum of weights, the weighted mean and centred comoment, combined
by the same update). A unit's influence function on class ``h`` is then ``P_h u_i`` with
``u_i = (w_i (Y_i - mean_h), w_i, 1)`` (weighted means), so ``sum psi psi' = sum_h P_h Q_h P_h'`` with
``Q_h`` the second moments of ``u``; with covariates each cell's is ``w_i`` times the unweighted one of
weighted sums (DRDID's ``i.weights``: weighted least squares, the weighted logit, weighted score sums).
The weights are checked in the same pass, with the words of
:func:`~evaluator.estimators.design.check_weights`.

Sampling weights with ``allow_unbalanced_panel=True`` (no covariates): ``z_i`` goes on with the weighted parts
``(w_i (Y_i - c) O_i, w_i O_i, w_i)`` and ``p_i O_i`` (``p_i = 1{w_i > 0}``: the units a cell's bootstrap groups
count), and the influence functions are linear in ``(w_i (Y_i - c) O_i, w_i O_i, w_i, 1)``.

Covariates with ``allow_unbalanced_panel=True`` (each cell DRDID's repeated cross-section estimator on the rows
of its two periods, as in memory) are :mod:`evaluator.estimators.staggered_ooc_rc`'s: the in-memory per-row
formulas run on each block's rows and their sums are added, in a few passes more.

Repeated cross-sections (``panel=False``, no ``unit``) are read as a panel of one-row units, each row numbered as
it is read (:class:`evaluator.data.shards.RowNumbered`: the positions the in-memory estimator keys its bootstrap
to), so every cell is the unbalanced panel's above, covariates each row's own; in this process only, and a
``unit`` column (whose checks need the frame) raises :class:`NotImplementedError` saying so.

Bootstrap draws are keyed (:mod:`evaluator.inference.keyed_draws`): unit ``i``'s sign in draw ``b``
is a hash of its id, the seed and ``b``, so each block adds its units' signed sums and the draws
are those of the in-memory estimator, whatever the blocks, threads or Dask parts.

The passes run in threads of this process, or with ``executor=`` a ``distributed.Client`` on a Dask
cluster (:class:`evaluator.data.shards.BlockPasses`: a task per part of contiguous rows, the units cut
by part boundaries joined and reduced by the client); a Dask DataFrame is read partition by partition,
on that cluster or on its own scheduler. The numbers are the same to rounding either way.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from evaluator.data.shards import (
    BATCH_ROWS,
    ROW_NUMBER,
    BlockPasses,
    DaskFrame,
    PanelChecks,
    RowLayout,
    RowNumbered,
    UnitBlock,
    check_block,
    check_block_rows,
    check_columns,
    dask_client,
    is_dask_frame,
    is_dataset_source,
    open_dask_frame,
    open_dataset,
    periods,
)
from evaluator.data.validate import infinite_problem, missing_problem
from evaluator.errors import (
    DataError,
    DesignError,
    DroppedUnitsWarning,
    Problem,
    TrimmingWarning,
    UnbalancedPanelError,
    WeightsError,
)
from evaluator.estimators.design import choice, weights_problems
from evaluator.estimators.staggered import (
    METHOD_NAMES,
    StaggeredResult,
    _check_cohort_weights,
    _num,
    _pretest,
    _with_simple,
    analytic_se,
    cell_table,
    panel_analytic_words,
    skipped_cells_note,
    small_sample_warnings,
    wcr_spec,
    weights_note,
)
from evaluator.estimators.staggered_rc import report_skipped_cells
from evaluator.inference.bootstrap import CellClusterSums
from evaluator.inference.keyed_draws import bootstrap_keys, seed_key, signed_sums
from evaluator.policy import PS_TRIM_LEVEL

__all__ = ["is_out_of_core", "staggered_did_ooc"]


def is_out_of_core(data: Any) -> bool:
    """Whether :func:`staggered_did` reads ``data`` out of core (a path, a pyarrow Dataset or a Dask DataFrame)."""
    return is_dataset_source(data) or is_dask_frame(data)


# -- sufficient statistics ---------------------------------------------------------------------------------------------
@dataclass
class _Moments:
    """Count, mean outcome vector and centred cross-product matrix of the units of one cohort class.

    With sampling weights ``w`` the units' moments are kept as without, and beside them ``w1`` and ``w2``: the
    same moments with each unit counted ``w_i`` and ``w_i^2`` times (``n`` a sum of weights, the mean weighted,
    the comoment ``sum w (Y - mean)(Y - mean)'``), which Chan's update combines alike; ``positive`` counts the
    units of positive weight.
    """

    n: float
    mean: np.ndarray
    comoment: np.ndarray
    #: with the bootstrap: per draw, the sums of ``v_i (Y_i, 1)`` (keyed signs, n_boot x (T + 1)); with weights
    #: those of ``v_i (w_i Y_i, w_i, 1)`` (n_boot x (T + 2))
    signs: np.ndarray | None = None
    w1: _Moments | None = None
    w2: _Moments | None = None
    positive: int = 0

    def combine(self, other: _Moments) -> _Moments:
        """Chan, Golub and LeVeque's pairwise update: exact in exact arithmetic, stable in floating point."""
        n = self.n + other.n
        delta = other.mean - self.mean
        # a sum of weights can be 0 (units of weight 0 only): then the (unused) mean stays
        mean = self.mean + delta * (other.n / n) if n else self.mean
        comoment = self.comoment + other.comoment + (np.outer(delta, delta) * (self.n * other.n / n) if n else 0.0)
        signs = None if self.signs is None or other.signs is None else self.signs + other.signs
        if self.w1 is None or other.w1 is None or self.w2 is None or other.w2 is None:
            return _Moments(n, mean, comoment, signs)
        w1, w2 = self.w1.combine(other.w1), self.w2.combine(other.w2)
        return _Moments(n, mean, comoment, signs, w1, w2, self.positive + other.positive)

    def restrict(self, keep: np.ndarray) -> _Moments:
        signs = None
        if self.signs is not None:
            idx = np.flatnonzero(keep) if np.asarray(keep).dtype == bool else np.asarray(keep)
            # the columns after the outcomes (1, or with weights w and 1) are kept whole
            signs = self.signs[:, np.append(idx, np.arange(len(self.mean), self.signs.shape[1]))]
        w1 = None if self.w1 is None else self.w1.restrict(keep)
        w2 = None if self.w2 is None else self.w2.restrict(keep)
        return _Moments(self.n, self.mean[keep], self.comoment[np.ix_(keep, keep)], signs, w1, w2, self.positive)

    def scaled(self, c: float) -> _Moments:
        """The moments with every weight times ``c`` (``c`` squared for ``w2``): the weights normalised."""
        w1 = None if self.w1 is None else _Moments(self.w1.n * c, self.w1.mean, self.w1.comoment * c)
        w2 = None if self.w2 is None else _Moments(self.w2.n * c * c, self.w2.mean, self.w2.comoment * (c * c))
        return _Moments(self.n, self.mean, self.comoment, self.signs, w1, w2, self.positive)


def _weighted_moments(Z: np.ndarray, v: np.ndarray) -> _Moments:
    """The moments of the rows of ``Z``, row ``i`` counted ``v_i`` times."""
    s = float(v.sum())
    if s == 0:
        return _Moments(0.0, np.zeros(Z.shape[1]), np.zeros((Z.shape[1], Z.shape[1])))
    mean = (v @ Z) / s
    dev = Z - mean
    return _Moments(s, mean, (dev * v[:, None]).T @ dev)


@dataclass
class _ClusterSums:
    """Per (cluster, cohort class): the number of units and the sum of their outcome vectors."""

    n_periods: int
    codes: dict[Any, int] = field(default_factory=dict)
    counts: dict[float, np.ndarray] = field(default_factory=dict)
    sums: dict[float, np.ndarray] = field(default_factory=dict)
    capacity: int = 0

    def add(self, clusters: np.ndarray, classes: np.ndarray, counts: np.ndarray, sums: np.ndarray) -> None:
        codes = np.fromiter(
            (self.codes.setdefault(v, len(self.codes)) for v in clusters.tolist()), dtype=np.int64, count=len(clusters)
        )
        if len(self.codes) > self.capacity:
            new = max(2 * self.capacity, len(self.codes), 64)
            for h in self.counts:
                self.counts[h] = np.concatenate([self.counts[h], np.zeros(new - self.capacity)])
                self.sums[h] = np.concatenate([self.sums[h], np.zeros((new - self.capacity, self.n_periods))])
            self.capacity = new
        for hi, h in enumerate(classes.tolist()):
            if h not in self.counts:
                self.counts[h] = np.zeros(self.capacity)
                self.sums[h] = np.zeros((self.capacity, self.n_periods))
            self.counts[h][codes] += counts[:, hi]  # a block's clusters are distinct: no repeated index
            self.sums[h][codes] += sums[:, hi, :]


def _block_statistics(
    block: UnitBlock,
    *,
    roles: dict[str, str],
    times: np.ndarray,
    clustered: bool,
    covariates: list[str] | None = None,
    boot: tuple[int, int] | None = None,
    weights: str | None = None,
) -> tuple[Any, dict[float, _Moments], tuple[np.ndarray, ...] | None, _CovFindings | None]:
    """One block: its panel checks, per-class moments of its valid units and, with clusters, their sums.

    With ``covariates`` the moments are those of ``(Y_1..Y_T, X)`` (X each unit's time-invariant covariates),
    and the covariates' faults come back too. With ``boot`` (draws, seed key) and no covariates the moments
    carry each class's keyed sign sums of ``(Y, 1)``: the multiplier bootstrap of every cell follows from them.
    With ``weights`` (the column of sampling weights) the moments carry their weighted versions too
    (:func:`_add_weights`) and the cluster sums are those of ``(w Y, w, 1{w > 0})``; the weights' faults are
    :func:`_weight_findings`'.
    """
    found, layout = check_block(block, roles, times)
    cov = None
    if layout.units.size == 0:
        if covariates:  # their missing values are still reported
            cov = _covariates_of(block, layout, covariates, len(times))[1]
        return found, {}, None, cov
    T = len(times)
    y = np.asarray(block.columns[roles["outcome"]], dtype=np.float64)
    if layout.index is None:
        Y = y.reshape(-1, T)
        first = np.arange(0, len(y), T)
    else:
        Y = y[layout.index]
        first = layout.index[:, 0]
    gu = np.asarray(block.columns[roles["cohort"]][first], dtype=np.float64)
    gu = np.where(np.isnan(gu) | (gu == 0), np.inf, gu)
    classes, inv = np.unique(gu, return_inverse=True)
    wu = None if weights is None else _unit_weights(block, weights, first)
    moments: dict[float, _Moments] = {}
    Z = Y
    if covariates:
        X, cov = _covariates_of(block, layout, covariates, T)
        Z = np.hstack([Y, X])
    keys = None
    if boot is not None and not covariates:
        keys = bootstrap_keys(block.columns[roles["unit"]][first])
    for hi, h in enumerate(classes.tolist()):
        sel = slice(None) if len(classes) == 1 else inv == hi
        Yh = Z[sel]
        mean = Yh.mean(axis=0)
        dev = Yh - mean
        signs = None
        if keys is not None and boot is not None:
            V = np.column_stack([Yh, np.ones(len(Yh))]) if wu is None else _weighted_rows(Yh, wu[sel])
            signs = signed_sums(keys[sel], V, *boot)
        moments[h] = _Moments(len(Yh), mean, dev.T @ dev, signs)
        if wu is not None:
            _add_weights(moments[h], Yh, wu[sel])
    sums = None
    if clustered:
        cl = block.columns[roles["cluster"]][first]
        cvals, cinv = np.unique(cl, return_inverse=True)
        H = len(classes)
        key = cinv.astype(np.int64) * H + inv
        size = len(cvals) * H
        counts = np.bincount(key, minlength=size).reshape(len(cvals), H).astype(np.float64)
        V = Y if wu is None else np.column_stack([Y * wu[:, None], wu, wu > 0])
        ysum = np.stack([np.bincount(key, weights=V[:, t], minlength=size) for t in range(V.shape[1])], axis=1)
        sums = (cvals, classes, counts, ysum.reshape(len(cvals), H, V.shape[1]))
    return found, moments, sums, cov


# -- sampling weights --------------------------------------------------------------------------------------------------
def _unit_weights(block: UnitBlock, weights: str, first: np.ndarray) -> np.ndarray:
    """Each unit's weight (its first row's; 0 where it is not a valid weight, whose fault the pass reports)."""
    w = np.asarray(block.columns[weights], dtype=np.float64)[first]
    return np.where(np.isfinite(w) & (w > 0), w, 0.0)


def _weighted_rows(Z: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``(w Z, w, 1)``, row by row: what the keyed signs multiply for the weighted bootstrap."""
    return np.column_stack([Z * w[:, None], w, np.ones(len(w))])


def _add_weights(mom: _Moments, Z: np.ndarray, w: np.ndarray) -> None:
    """Give the moments of the rows ``Z`` their weighted versions (weights ``w`` and ``w^2``)."""
    mom.w1 = _weighted_moments(Z, w)
    mom.w2 = _weighted_moments(Z, w * w)
    mom.positive = int(np.count_nonzero(w))


@dataclass
class _WeightFindings:
    """The weights' faults in a pass, by data row (missing, infinite, negative) and by unit (varying)."""

    missing: _Tally = field(default_factory=lambda: _Tally())
    infinite: _Tally = field(default_factory=lambda: _Tally())
    negative: _Tally = field(default_factory=lambda: _Tally())
    varies: _Tally = field(default_factory=lambda: _Tally())
    positive: bool = False

    def merge(self, other: _WeightFindings) -> None:
        for name in ("missing", "infinite", "negative", "varies"):
            getattr(self, name).merge(getattr(other, name))
        self.positive |= other.positive

    def raise_problems(self, column: str, unit: str, *, rows: int, units: int, label: str) -> None:
        """Raise the in-memory :class:`~evaluator.errors.WeightsError` (:func:`check_weights`'s words), if any."""
        problems = weights_problems(
            column,
            rows=rows,
            missing=(self.missing.count, self.missing.where("data rows")),
            infinite=(self.infinite.count, self.infinite.where("data rows")),
            negative=(self.negative.count, self.negative.where("data rows")),
            varying=(self.varies.count, units, self.varies.where("units")),
            unit=unit,
            positive=self.positive,
        )
        if problems:
            raise WeightsError(problems, source=label)


def _weight_findings(block: UnitBlock, unit: str, weights: str) -> _WeightFindings:
    """The faults of a block's weights, every row and unit (as :func:`check_weights`, before any unit is dropped)."""
    found = _WeightFindings()
    w = np.asarray(block.columns[weights], dtype=np.float64)
    for tally, bad in ((found.missing, np.isnan(w)), (found.infinite, np.isinf(w)), (found.negative, w < 0)):
        if bad.any():
            tally.add(block.positions(bad) + 1)
    found.positive = bool((w > 0).any())
    u = block.columns[unit]
    if len(u):
        starts = np.flatnonzero(np.concatenate([[True], u[1:] != u[:-1]]))
        finite = np.where(np.isfinite(w), w, np.nan)  # a unit varies if its finite weights differ (fmin skips NaN)
        varies = np.fmax.reduceat(finite, starts) > np.fmin.reduceat(finite, starts)
        if varies.any():
            found.varies.add(u[starts[varies]])
    return found


def _block_reduce(block: UnitBlock, *, weights: str | None, **kw: Any) -> tuple[Any, ...]:
    """:func:`_block_statistics` and, with ``weights``, the weights' faults in the block (else None)."""
    found = None if weights is None else _weight_findings(block, kw["roles"]["unit"], weights)
    return (*_block_statistics(block, weights=weights, **kw), found)


# -- the estimator -----------------------------------------------------------------------------------------------------
def panel_roles(
    *,
    outcome: str,
    unit: str,
    time: str,
    cohort: str,
    cluster: str | None,
    weights: str | None,
    covariates: list[str],
) -> dict[str, str]:
    """Role -> column of a panel read out of core (the names its messages use for each column)."""
    roles = {"outcome": outcome, "unit": unit, "time": time, "cohort": cohort}
    if cluster is not None:
        roles["cluster"] = cluster
    for c in covariates:
        roles[f"covariate {c!r}"] = c
    if weights is not None:
        roles["weights"] = weights
    return roles


def open_panel(
    source: Any, roles: dict[str, str], *, executor: Any, row_numbers: bool = False
) -> tuple[Any, str, np.ndarray]:
    """The Dataset of ``source`` (a Dask DataFrame projected on the roles' columns; with ``row_numbers`` each row
    numbered as read, :class:`~evaluator.data.shards.RowNumbered`), the label naming it and its periods.

    A missing or non-numeric column raises one DataError naming the role (a WeightsError for the weights, as in
    memory); so do data without any period."""
    dataset, label = open_dask_frame(source) if is_dask_frame(source) else open_dataset(source)
    if row_numbers:
        dataset = RowNumbered(dataset)
    numeric = [c for r, c in roles.items() if r in ("outcome", "time", "cohort") or r.startswith("covariate ")]
    check_columns(dataset, roles, numeric=numeric, label=label)
    if "weights" in roles:
        try:  # as in memory, weights that are not numbers are a WeightsError
            check_columns(dataset, {}, numeric=[roles["weights"]], label=label)
        except DataError as exc:
            raise WeightsError(exc.problems, source=label) from None
    if isinstance(dataset, DaskFrame):
        dataset = dataset.project(roles.values())
    times = periods(dataset, roles["time"], executor=executor)
    if not len(times):
        raise DataError([Problem("the data have no rows with a period", column=roles["time"])], source=label)
    return dataset, label, times


def _cross_sections(source: Any, *, unit: str | None, executor: Any) -> None:
    """Raise what repeated cross-sections out of core (``panel=False``) do not do yet, saying what to do instead."""
    why = None
    if unit is not None:
        why = (
            f"unit={unit!r}: the checks of a unit column (ids repeating within a period, or across periods) need the "
            "frame; leave unit out, every row is its own observation"
        )
    elif executor is not None or is_dask_frame(source):
        why = "repeated cross-sections are read in this process: pass a Parquet path or pyarrow Dataset, executor=None"
    if why is not None:
        raise NotImplementedError(
            f"out of core with panel=False, {why}; or read the data into a pandas DataFrame (pandas.read_parquet(path))"
        )


def staggered_did_ooc(
    source: str | os.PathLike[str] | Any,
    *,
    outcome: str,
    unit: str | None = None,
    time: str,
    cohort: str,
    control: str = "never",
    method: str = "dr",
    covariates: list[str] | None = None,
    anticipation: int = 0,
    base_period: str = "varying",
    cluster: str | None = None,
    weights: str | None = None,
    panel: bool = True,
    allow_unbalanced_panel: bool = False,
    n_boot: int = 0,
    seed: Any = None,
    alpha: float = 0.05,
    batch_rows: int = BATCH_ROWS,
    threads: int | None = None,
    executor: Any = None,
) -> StaggeredResult:
    """:func:`~evaluator.estimators.staggered.staggered_did` on Parquet files, a pyarrow Dataset or a Dask DataFrame.

    The arguments are :func:`staggered_did`'s (which checks them and calls this for such
    ``source``), plus ``batch_rows`` (rows per Arrow record batch) and ``threads`` (threads
    reducing blocks; default ``min(4, cpu count)``). The rows must be sorted by unit, then
    period. The result equals the in-memory one on the same rows to rounding (1e-10), whatever
    ``batch_rows``, ``threads``, the split into files or the executor.

    ``executor`` runs the passes: None, in ``threads`` threads of this process (a Dask DataFrame:
    on its own scheduler), or a ``distributed.Client``, on its cluster in parts of contiguous rows
    (:class:`evaluator.data.shards.BlockPasses`; the workers read the files from the same path).
    ``info["out_of_core"]`` says which ran them (``executor``) and in how many ``parts``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from evaluator.data.simulate import sick_leave_sib
    >>> sim = sick_leave_sib(n_municipalities=10, employees_per_municipality=20, n_periods=24, waves=(7, 13), seed=1)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "panel.parquet"
    >>> sim.data.sort_values(["employee", "month"]).to_parquet(path)
    >>> kw = dict(outcome="sick_days", unit="employee", time="month", cohort="first_treated", n_boot=0)
    >>> res = staggered_did_ooc(path, batch_rows=1000, **kw)
    >>> from evaluator.estimators.staggered import staggered_did
    >>> mem = staggered_did(sim.data, **kw)
    >>> bool(np.allclose(res.att_gt["se"], mem.att_gt["se"], rtol=1e-10, equal_nan=True))
    True
    """
    dask_client(executor)  # a bad executor is refused before any data are read
    if executor is not None and getattr(source, "filters_rows", False):
        # the cluster's parts are row groups read whole: a filter on the rows would be lost there
        raise NotImplementedError(
            "a PanelSource that leaves out units or cohorts is read in this process: pass executor=None"
        )
    choice("control", control, ("never", "not_yet"))
    choice("base_period", base_period, ("varying", "universal"))
    covs = [covariates] if isinstance(covariates, str) else list(covariates or [])
    cross = not panel
    if cross:  # repeated cross-sections: a panel of one-row units, each row numbered as it is read
        _cross_sections(source, unit=unit, executor=executor)
        allow_unbalanced_panel = True
    est_method = method if covs else "unconditional"
    threads = min(4, os.cpu_count() or 1) if threads is None else int(threads)

    if cross:
        unit = ROW_NUMBER
    roles = panel_roles(
        outcome=outcome, unit=unit, time=time, cohort=cohort, cluster=cluster, weights=weights, covariates=covs
    )
    dataset, label, times = open_panel(source, roles, executor=executor, row_numbers=cross)
    times_all = times
    T0 = len(times)

    # -- the pass: checks and sufficient statistics, block by block, combined in order
    checks = PanelChecks(roles)
    missing_units: list[int] = []
    moments: dict[float, _Moments] = {}
    # with weights the cluster sums are those of (w Y, w, 1{w > 0})
    csums = _ClusterSums(T0 if weights is None else T0 + 2) if cluster is not None else None
    # the bootstrap: signs keyed to unit ids (summed per class here) or, with clusters, to cluster ids (at the end)
    boot = (int(n_boot), seed_key(seed)) if n_boot > 0 else None
    unit_boot = boot if cluster is None and not covs else None
    # in this process's threads, or on a Dask cluster in parts (the same reducers, results in the same order)
    over = BlockPasses(dataset, roles, batch_rows=batch_rows, threads=threads, executor=executor, label=label)
    n_blocks = 0
    balanced_pass = not allow_unbalanced_panel
    if allow_unbalanced_panel:
        # every unit, complete or not: second moments of (outcomes, observed, 1) per cohort class
        patterns: dict[float, _Pattern] = {}
        psums = _PatternClusters(T0, weighted=weights is not None) if cluster is not None else None
        shift = _shift(over.first_block(), roles["outcome"])
        rows_reduce = partial(
            _row_statistics,
            roles=roles,
            times=times,
            clustered=cluster is not None,
            shift=shift,
            boot=unit_boot,
            weights=weights,
            covariates=covs,
        )
        w_found = _WeightFindings()
        cov_found = _CovFindings(covs)
        for found, block_patterns, sums, wf, cov in over.map(rows_reduce, missing_units=missing_units):
            n_blocks += 1
            checks.add(found)
            for h, pat in block_patterns.items():
                patterns[h] = pat if h not in patterns else patterns[h] + pat
            if psums is not None and sums is not None:
                psums.add(*sums)
            if wf is not None:
                w_found.merge(wf)
            if cov is not None:
                cov_found.merge(cov)
        checks.add_missing_units(missing_units)
        problems = checks.problems() + cov_found.problems(checks.rows)
        if problems:
            raise DataError(problems, source=label)
        if weights is not None:
            w_found.raise_problems(weights, unit, rows=checks.rows, units=checks.units, label=label)
        if cross and not checks.unbalanced.count:  # a single period
            raise DesignError("fewer than two periods remain; nothing to compare")
        if checks.unbalanced.count:

            def pair_counts(pairs: np.ndarray) -> _ClusterSums:
                """A pass more: :func:`_pair_counts` of every block, combined."""
                out = _ClusterSums(len(pairs))
                step = partial(_pair_counts, roles=roles, times=times, pairs=pairs, weights=weights)
                for sums in over.map(step):
                    if sums is not None:
                        out.add(*sums)
                return out

            def cov_cells(*, classes: list[float], late: list[float], kept: np.ndarray, cw: float, **kw: Any) -> Any:
                """The covariates' passes (:func:`~evaluator.estimators.staggered_ooc_rc.rc_covariate_cells`)."""
                from evaluator.estimators.staggered_ooc_rc import rc_covariate_cells, rc_units

                passes = _class_passes(
                    over,
                    rc_units,
                    classes=classes,
                    late=late,
                    roles=roles,
                    times=times,
                    covariates=covs,
                    kept=kept,
                    clustered=cluster is not None,
                    keyed=boot is not None,
                    weights=weights,
                    wscale=cw,
                )
                return rc_covariate_cells(
                    method=est_method,
                    passes=passes,
                    classes=classes,
                    covs=covs,
                    cov_found=cov_found,
                    clustered=cluster is not None,
                    boot=boot,
                    **kw,
                )

            return _unbalanced(
                patterns,
                psums,
                shift=shift,
                times=times,
                outcome=outcome,
                control=control,
                anticipation=anticipation,
                base_period=base_period,
                cluster=cluster,
                alpha=alpha,
                covs=covs,
                n_boot=n_boot,
                seed=seed,
                weights=weights,
                pair_counts=pair_counts if cluster is not None and n_boot > 0 else None,
                cov_cells=cov_cells if covs else None,
                method=est_method,
                cross=cross,
                source={
                    "source": label,
                    "rows": checks.rows,
                    "blocks": n_blocks,
                    "batch_rows": batch_rows,
                    **over.describe(),
                },
            )
        if weights is None and not covs:
            # balanced after all: the panel estimator, as in memory (its moments from the same sums)
            moments = {h: pat.moments(shift) for h, pat in patterns.items()}
            if psums is not None and csums is not None:
                psums.to_balanced(csums, shift)
        else:
            # balanced after all, with weights or covariates: the panel estimator, whose weighted moments or
            # moments of (Y, X) the balanced pass keeps (a pass more, checked afresh)
            checks, missing_units, n_blocks = PanelChecks(roles), [], 0
            balanced_pass = True
    if balanced_pass:
        reduce = partial(
            _block_reduce,
            roles=roles,
            times=times,
            clustered=cluster is not None,
            covariates=covs,
            boot=unit_boot,
            weights=weights,
        )
        cov_found = _CovFindings(covs)
        w_found = _WeightFindings()
        for found, block_moments, sums, cov, wf in over.map(reduce, missing_units=missing_units):
            n_blocks += 1
            checks.add(found)
            for h, m in block_moments.items():
                moments[h] = m if h not in moments else moments[h].combine(m)
            if csums is not None and sums is not None:
                csums.add(*sums)
            if cov is not None:
                cov_found.merge(cov)
            if wf is not None:
                w_found.merge(wf)
        checks.add_missing_units(missing_units)
        problems = checks.problems() + cov_found.problems(checks.rows)
        if problems:
            raise DataError(problems, source=label)
        if weights is not None:
            w_found.raise_problems(weights, unit, rows=checks.rows, units=checks.units, label=label)
    # with covariates: the moments of (Y, X) per class, and those of Y alone as without
    zmoments = dict(moments) if covs else {}
    if covs:
        moments = {h: m.restrict(np.arange(T0)) for h, m in zmoments.items()}

    notes: list[str] = []
    dropped = None
    if checks.unbalanced.count:
        nu, gaps = checks.units, checks.unbalanced.count
        if gaps == nu:
            raise UnbalancedPanelError(
                f"unbalanced panel: none of the {nu} units is observed in all {T0} periods, so balancing it "
                "leaves nothing; pass allow_unbalanced_panel=True to use every observation (as R did), or "
                "panel=False if the rows are repeated cross-sections"
            )
        why = (
            f"{gaps} of {nu} units ({checks.unbalanced_rows} rows) not observed in all {T0} periods "
            f"({checks.unbalanced.where('units')})"
        )
        warnings.warn(
            f"unbalanced panel: dropped {why}, as R did does by default; pass allow_unbalanced_panel=True to use "
            "every observation",
            DroppedUnitsWarning,
            stacklevel=3,
        )
        dropped = {"units": gaps, "rows": checks.unbalanced_rows, "units_before": nu, "periods": T0}
        unbalanced_note = f"unbalanced panel: dropped {why} (allow_unbalanced_panel=False)"
    else:
        unbalanced_note = None
    if covs:
        if not zmoments:
            raise DataError([Problem("no unit has a complete, valid set of rows")], source=label)
        _check_covariates_ooc(cov_found, _pooled([zmoments[h] for h in sorted(zmoments)]), T0)

    # the outcome's standard deviation over every (unit, period) of the balanced panel (the unit of "zero" SEs)
    total = sum(m.n for m in moments.values())
    grand = sum(m.n * m.mean.sum() for m in moments.values()) / (total * T0)
    m2 = sum(np.trace(m.comoment) + m.n * np.sum((m.mean - grand) ** 2) for m in moments.values())
    scale = float(np.sqrt(m2 / (total * T0)))

    # -- cohorts: late ones never treated, early ones dropped (as in memory)
    late = [h for h in moments if np.isfinite(h) and h > times[-1] + anticipation]
    if late:
        n_late = sum(moments[h].n for h in late)
        notes.append(f"{n_late} units first treated after the last period are used as never treated")
        for h in late:
            _merge_class(moments, csums, h, np.inf)
            if covs:
                zm = zmoments.pop(h)
                zmoments[np.inf] = zm if np.inf not in zmoments else zmoments[np.inf].combine(zm)
    if unbalanced_note is not None:
        notes.append(unbalanced_note)
    if weights is not None:
        notes.append(weights_note(weights))
    early = sorted(h for h in moments if np.isfinite(h) and h <= times[0] + anticipation)
    if early:
        n_early = sum(moments[h].n for h in early)
        warnings.warn(
            f"dropped {n_early} units of cohorts {[_num(v) for v in early]}: treated in or before the first "
            f"period {_num(times[0])} (+ anticipation {anticipation}), they have no pre-treatment period",
            DroppedUnitsWarning,
            stacklevel=3,
        )
        for h in early:
            del moments[h]
            zmoments.pop(h, None)
            if csums is not None:
                csums.counts.pop(h, None)
                csums.sums.pop(h, None)
        notes.append(f"{n_early} units treated in the first period were dropped")
    has_never = np.inf in moments
    if control == "never" and not has_never:
        raise DesignError(
            'no never-treated units (cohort 0 or NaN) to compare with under control="never"; '
            'use control="not_yet" to compare with units not yet treated'
        )
    glist = np.array(sorted(h for h in moments if np.isfinite(h)))
    keep_t = np.ones(T0, dtype=bool)
    if not has_never and len(glist):
        latest = glist[-1]
        keep_t = times < latest - anticipation
        times = times[keep_t]
        glist = glist[:-1]
        notes.append(
            f"no never-treated units: periods from {_num(latest - anticipation)} on are dropped and cohort "
            f"{_num(latest)} serves only as a not-yet-treated control"
        )
    if len(glist) == 0:
        raise DesignError("no treated cohort with a pre-treatment period remains; nothing to estimate")
    T = len(times)
    if T < 2:
        raise DesignError("fewer than two periods remain; nothing to compare")
    classes = sorted(moments)
    mom = [moments[h].restrict(keep_t) for h in classes]
    N = np.array([m.n for m in mom], dtype=np.float64)
    n = int(N.sum())
    weighted = weights is not None
    cw = 1.0
    if weighted:
        raw_w = np.array([m.w1.n for m in mom if m.w1 is not None])
        _check_cohort_weights(
            raw_w, np.array(classes), glist, ~np.isfinite(classes) if control == "never" else None, weights
        )
        # the weights normalised to mean 1 over the units, as in memory (w / mean(w)): the sums scaled by cw
        cw = n / float(raw_w.sum())
        mom = [m.scaled(cw) for m in mom]

    # clusters with a unit left
    if csums is not None:
        present = np.zeros(csums.capacity, dtype=bool)
        for h in classes:
            present |= csums.counts[h] > 0
        cl_counts = [csums.counts[h][present] for h in classes]
        cl_sums = [csums.sums[h][present][:, :T0][:, keep_t] for h in classes]
        if weighted:  # the sums were of (w Y, w, 1{w > 0}): w Y and the units' weights, normalised
            cl_sums = [cw * v for v in cl_sums]
            cl_weights = [cw * csums.sums[h][present][:, T0] for h in classes]
            cl_positive = [csums.sums[h][present][:, T0 + 1] for h in classes]
        n_clusters = int(present.sum())
        cluster_ids = _code_values(csums.codes, csums.capacity)[present]
        if n_clusters < 2:
            raise DesignError(f"cluster={cluster!r} has a single cluster; clustered inference needs at least 2")
    else:
        n_clusters = n
    sizes = {gv: moments[gv].n for gv in glist}
    # with weights, units of weight 0 count in no mean: the warnings and the bootstrap's clusters are of the others
    n_pos = np.array([m.positive for m in mom], dtype=np.float64) if weighted else N
    Wh = np.array([m.w1.n for m in mom if m.w1 is not None]) if weighted else N  # (normalised) weight per class
    positive = sizes if not weighted else {gv: int(n_pos[classes.index(gv)]) for gv in glist}
    small_sample_warnings(positive, cluster, n_clusters, n_boot, notes, stacklevel=4)

    # -- the cells, planned as in memory (classes stand for their units)
    tfirst = 0 if base_period == "universal" else 1
    cls = np.array(classes)
    never_cls = ~np.isfinite(cls)
    plan: list[tuple[int, float, int, int, np.ndarray]] = []
    skipped: list[str] = []
    for gi, gv in enumerate(glist):
        pret_g = int(np.nonzero(times + anticipation < gv)[0][-1])
        for cur in range(tfirst, T):
            base = pret_g if (times[cur] >= gv or base_period == "universal") else cur - 1
            if control == "never":
                ctrl = never_cls
            else:
                cutoff = float(times[max(cur, base)] + anticipation)
                ctrl = (never_cls | (cls > cutoff)) & (cls != gv)
            if base != cur and not (ctrl.any() if not weighted else Wh[ctrl].sum() > 0):
                skipped.append(f"({_num(gv)},{_num(times[cur])})")
                continue
            plan.append((gi, gv, cur, base, ctrl))
    if skipped:
        notes.append(skipped_cells_note(skipped, weighted=weighted))
    if not plan:
        raise DesignError("no (cohort, period) cell has both treated and control units")
    k = len(plan)
    G = len(glist)
    pg = np.array([sizes[gv] / n for gv in glist]) if not weighted else Wh[[classes.index(gv) for gv in glist]] / n
    H = len(classes)
    A = np.zeros((H, k))  # a_j(h)
    Mv = np.zeros((H, k))  # m_j(h)
    Dmat = np.zeros((T, k))
    att = np.zeros(k)
    cells: list[dict[str, Any]] = []
    # H x T; with weights the weighted means, and each class's weight in place of its count
    means = np.array([m.mean if m.w1 is None else m.w1.mean for m in mom])
    for j, (gi, gv, cur, base, ctrl) in enumerate(plan):
        ti = classes.index(gv)
        n_t, n_c = sizes[gv], int(N[ctrl].sum())
        cells.append(
            {"cohort": gv, "time": times[cur], "gidx": gi, "n_treated": n_t, "n_control": n_c, "base": times[base]}
        )
        if base == cur:  # universal base period: normalised to zero
            continue
        dy = means[:, cur] - means[:, base]  # mean change of each class
        s_t, s_c = (n_t, n_c) if not weighted else (float(Wh[ti]), float(Wh[ctrl].sum()))
        mt = float(dy[ti])
        mc = float(np.sum(Wh[ctrl] * dy[ctrl])) / s_c
        att[j] = mt - mc
        Dmat[cur, j], Dmat[base, j] = 1.0, -1.0
        A[ti, j] = n / s_t
        A[ctrl, j] = -n / s_c
        Mv[ti, j] = mt
        Mv[ctrl, j] = mc

    # psi_i = L_h (Y_i - mean_h) + c_h for a unit of class h, over the k cells and the G cohort shares
    m = k + G
    share = np.array([[1.0 if h == gv else 0.0 for gv in glist] for h in classes]).reshape(H, G)
    L = [np.vstack([(A[h][:, None] * Dmat.T), np.zeros((G, T))]) for h in range(H)]  # m x T each
    c = [np.concatenate([A[h] * (means[h] @ Dmat - Mv[h]), share[h] - pg]) for h in range(H)]
    draws = None
    wcr_sums = None
    cell_clusters: tuple[tuple[np.ndarray, np.ndarray], ...] = ()
    if weighted:
        sigma, draws, wcr_sums = _weighted_unconditional(
            mom,
            L,
            [np.concatenate([c[h][:k], share[h]]) for h in range(H)],
            pg,
            csums=None
            if csums is None
            else (cl_counts, cl_sums, cl_weights, cl_positive, np.argsort(cluster_ids, kind="stable"), cluster_ids),
            boot=None if covs else boot,
            plan=plan,
            classes=classes,
            Dmat=Dmat,
            Mv=Mv,
            cw=cw,
            n=n,
        )
    elif csums is None:
        sigma = np.zeros((m, m))
        for h in range(H):
            sigma += L[h] @ mom[h].comoment @ L[h].T + N[h] * np.outer(c[h], c[h])
        sigma /= n**2
        if boot is not None and not covs:
            # sum_i v_i psi_i = L_h (sum v Y - mean_h sum v) + c_h sum v over each class's keyed sign sums
            draws = np.zeros((n_boot, m))
            for h in range(H):
                sg = mom[h].signs
                assert sg is not None
                draws += (sg[:, :T] - sg[:, T:] * means[h]) @ L[h].T + sg[:, T:] * c[h]
            draws /= n
    else:
        S = np.zeros((n_clusters, m))
        for h in range(H):
            S += (cl_sums[h] - cl_counts[h][:, None] * means[h]) @ L[h].T + cl_counts[h][:, None] * c[h]
        sigma = (S.T @ S) / n**2
        if boot is not None and not covs:
            draws = signed_sums(bootstrap_keys(cluster_ids), S, *boot) / n
            wcr_sums = _wcr_sums_unconditional(
                plan, classes, cl_counts, cl_sums, Dmat, Mv, cluster_order=np.argsort(cluster_ids, kind="stable")
            )
    n_passes = 1
    if covs:
        # covariates: the regressions from the moments of (Y, X), the logits and influence functions in more passes
        keep_z = np.concatenate([keep_t, np.ones(len(covs), dtype=bool)])
        zmom = [zmoments[h].restrict(keep_z).scaled(cw) for h in classes]
        passes = _class_passes(
            over,
            _covariate_units,
            classes=classes,
            late=late,
            roles=roles,
            times=times_all,
            covariates=covs,
            keep_t=keep_t,
            clustered=cluster is not None,
            keyed=boot is not None,
            weights=weights,
            wscale=cw,
        )
        att, sigma, trimmed_total, more, cov_draws, cov_wcr = _covariate_cells(
            method=est_method,
            passes=passes,
            plan=plan,
            classes=classes,
            zmom=zmom,
            glist=glist,
            sizes=sizes,
            n=n,
            T=T,
            p=len(covs),
            times=times,
            covs=covs,
            clustered=cluster is not None,
            boot=boot,
            weighted=weighted,
        )
        draws, wcr_sums = cov_draws, cov_wcr
        n_passes += more
        if trimmed_total:
            warnings.warn(
                f"{trimmed_total} control observations (summed over ATT(g,t) cells) had propensity scores >= "
                f"{PS_TRIM_LEVEL} and were given weight zero (DRDID trimming); overlap is weak",
                TrimmingWarning,
                stacklevel=3,
            )
            notes.append(f"{trimmed_total} control observations trimmed for propensity scores >= {PS_TRIM_LEVEL}")

    # -- the result, as the in-memory branch builds it
    cells_df = pd.DataFrame(cells)
    se_an = analytic_se(sigma, k, scale)
    wcr = None
    if draws is not None:
        cell_clusters = _cell_clusters_ooc(plan, classes, n_pos, wcr_sums)
        if wcr_sums is not None:
            wcr = wcr_spec(wcr_sums, n_boot, seed)
    table, crit, bands_widened, inference = cell_table(
        cells_df,
        att,
        se_an,
        draws=draws,
        wcr=wcr,
        alpha=alpha,
        scale=scale,
        cell_clusters=cell_clusters,
        n_boot=n_boot,
        cluster=cluster,
        n_clusters=n_clusters,
        level="unit",
        analytic=panel_analytic_words(cluster, n_clusters),
        notes=notes,
        stacklevel=3,
    )
    pretest, pretest_note = _pretest(cells_df, att, sigma, se_an, anticipation, cluster, n_clusters)
    n_never = int(N[never_cls].sum())
    info: dict[str, Any] = {
        "n_units": n,
        "n_treated": n - n_never,
        "n_control": n_never,
        "n_periods": int(T),
        "n_cohorts": int(G),
        "control": control,
        "method": est_method,
        "base_period": base_period,
        "anticipation": anticipation,
        "covariates": covs,
        "cohort_sizes": {_num(gv): s for gv, s in sizes.items()},
        "n_boot": int(n_boot),
        "crit_value": crit,
        "boot_df": None,
    }
    if bands_widened:
        info["bands_widened"] = bands_widened
    if cluster is not None:
        info["n_clusters"] = n_clusters
        info["cluster"] = cluster
    if dropped is not None:
        info["unbalanced_dropped"] = dropped
    if weights is not None:
        info["weights"] = weights
        info["cohort_weights"] = {_num(gv): float(p) for gv, p in zip(glist, pg, strict=True)}
    if pretest is not None:
        info["pretest"] = pretest
    if pretest_note is not None:
        info["pretest_unavailable"] = pretest_note
        notes.append(pretest_note)
    info["out_of_core"] = {
        "source": label,
        "rows": checks.rows,
        "blocks": n_blocks,
        "batch_rows": batch_rows,
        "passes": n_passes,
        **over.describe(),
    }
    headline_note = (
        "estimate, SE, CI and p-value of the ATT(g,t) result are the simple aggregate (post-treatment cells "
        "weighted by cohort size); see .aggregate()"
    )
    res = StaggeredResult(
        estimator=f"Callaway-Sant'Anna ATT(g,t), {METHOD_NAMES[est_method]}, "
        f"{'never-treated' if control == 'never' else 'not-yet-treated'} controls",
        table=table,
        nobs=int(n * T),
        alpha=alpha,
        inference=inference,
        outcome=outcome,
        notes=(headline_note, *notes),
        info=info,
        _att=att,
        _sigma=sigma,
        _draws=draws,
        _cells=cells_df,
        _pg=pg,
        _groups=glist,
        _t_range=(float(times[0]), float(times[-1])),
        _wcr=wcr,
        _scale=scale,
        _cell_clusters=cell_clusters,
    )
    return _with_simple(res)


def _weighted_second_moments(mom: _Moments) -> np.ndarray:
    """``sum_i u_i u_i'`` of ``u_i = (w_i (Y_i - mean), w_i, 1)`` over a class (weighted mean; weights normalised)."""
    w1, w2 = mom.w1, mom.w2
    assert w1 is not None and w2 is not None
    T = len(w1.mean)
    d = w2.mean - w1.mean  # sum w^2 (Y - mean) = W2 (mean_w2 - mean); sum w (Y - mean) = 0
    Q = np.zeros((T + 2, T + 2))
    Q[:T, :T] = w2.comoment + w2.n * np.outer(d, d)
    Q[:T, T] = Q[T, :T] = w2.n * d
    Q[T, T] = w2.n
    Q[T, T + 1] = Q[T + 1, T] = w1.n
    Q[T + 1, T + 1] = mom.n
    return Q


def _weighted_unconditional(
    mom: list[_Moments],
    L: list[np.ndarray],
    c1: list[np.ndarray],
    pg: np.ndarray,
    *,
    csums: tuple[Any, ...] | None,
    boot: tuple[int, int] | None,
    plan: list[tuple[int, float, int, int, np.ndarray]],
    classes: list[float],
    Dmat: np.ndarray,
    Mv: np.ndarray,
    cw: float,
    n: int,
) -> tuple[np.ndarray, np.ndarray | None, CellClusterSums | None]:
    """``sigma``, the bootstrap draws and the cluster bootstrap's sums of the weighted unconditional estimator.

    With weights a unit's influence function on class ``h`` is ``psi_i = P_h u_i``, ``u_i = (w_i (Y_i - mean_h),
    w_i, 1)`` (weighted means, weights normalised to mean 1), ``P_h = [L_h, c1_h, e]``: ``c1_h`` the cells' constant
    part and the cohort indicator, ``e = (0, -pg)``. So ``sum psi psi' = sum_h P_h Q_h P_h'`` with ``Q_h`` the second
    moments of ``u`` (:func:`_weighted_second_moments`), the draws are ``P_h`` times each class's keyed sums of
    ``v (w Y, w, 1)``, and a cluster's sum is ``P_h`` times its sums of ``u``. ``csums`` are the per-(cluster, class)
    unit counts, sums of ``w Y`` and of ``w`` (both normalised), counts of units of positive weight, the clusters'
    sorted order and their ids; the raw sign sums are scaled by ``cw`` here.
    """
    H, k = len(mom), Dmat.shape[1]
    T = Dmat.shape[0]
    m = k + len(pg)
    e = np.concatenate([np.zeros(k), -pg])
    P = [np.column_stack([L[h], c1[h], e]) for h in range(H)]
    means = [mom[h].w1.mean for h in range(H)]  # type: ignore[union-attr]
    draws = None
    if csums is None:
        sigma = sum((P[h] @ _weighted_second_moments(mom[h]) @ P[h].T for h in range(H)), np.zeros((m, m))) / n**2
        if boot is not None:
            draws = np.zeros((boot[0], m))
            for h in range(H):
                sg = mom[h].signs
                assert sg is not None
                sw = cw * sg[:, T : T + 1]  # sum v w (normalised), and sum v
                draws += np.column_stack([cw * sg[:, :T] - sw * means[h], sw, sg[:, T + 1 :]]) @ P[h].T
            draws /= n
        return sigma, draws, None
    counts, wy, wts, positive, order, cluster_ids = csums
    S = sum(
        (np.column_stack([wy[h] - wts[h][:, None] * means[h], wts[h], counts[h]]) @ P[h].T for h in range(H)),
        np.zeros((len(order), m)),
    )
    sigma = (S.T @ S) / n**2
    wcr_sums = None
    if boot is not None:
        draws = signed_sums(bootstrap_keys(cluster_ids), S, *boot) / n
        wcr_sums = _wcr_sums_unconditional(plan, classes, positive, wy, Dmat, Mv, cluster_order=order, cl_weights=wts)
    return sigma, draws, wcr_sums


def _code_values(codes: dict[Any, int], capacity: int) -> np.ndarray:
    """The cluster id of each code of a :class:`_ClusterSums` (``capacity`` slots; unused ones repeat the first id)."""
    values = list(codes)  # insertion order is code order
    return np.array(values + values[:1] * (capacity - len(values)))


def _wcr_sums_unconditional(
    plan: list[tuple[int, float, int, int, np.ndarray]],
    classes: list[float],
    cl_counts: list[np.ndarray],
    cl_sums: list[np.ndarray],
    Dmat: np.ndarray,
    Mv: np.ndarray,
    *,
    cluster_order: np.ndarray,
    cl_weights: list[np.ndarray] | None = None,
) -> CellClusterSums:
    """The restricted wild cluster bootstrap's per-(cluster, cell) sums from per-(cluster, class) counts and sums.

    A unit's residual in cell ``j`` is ``D_j'Y_i - m_j(h)`` on either side, so a cluster's residual sum over
    class ``h`` is ``D_j' sum Y - count m_j(h)``. Clusters come in the sorted order of their ids, as in memory.
    With ``cl_weights`` (the clusters' sums of the weights; ``cl_sums`` those of ``w Y``, ``cl_counts`` the units
    of positive weight) a unit's residual is, as in memory, ``psi / (n coef)`` with ``coef = 1 / n_t`` (units of
    positive weight): ``(n_t / s_t) w_i (D_j'Y_i - m_j(h))``, ``s_t`` the side's weight.
    """
    G, k = len(cluster_order), len(plan)
    count_t, count_c, resid_t, resid_c = (np.zeros((G, k)) for _ in range(4))
    wts = cl_counts if cl_weights is None else cl_weights
    for j, (_, gv, _, _, ctrl) in enumerate(plan):
        ti = classes.index(gv)
        count_t[:, j] = cl_counts[ti]
        resid_t[:, j] = cl_sums[ti] @ Dmat[:, j] - wts[ti] * Mv[ti, j]
        s_c = np.zeros(G)
        for h in np.flatnonzero(ctrl):
            count_c[:, j] += cl_counts[h]
            resid_c[:, j] += cl_sums[h] @ Dmat[:, j] - wts[h] * Mv[h, j]
            s_c += wts[h]
        if cl_weights is not None:
            with np.errstate(divide="ignore", invalid="ignore"):  # a side without weight is refused when bootstrapped
                resid_t[:, j] *= count_t[:, j].sum() / wts[ti].sum()
                resid_c[:, j] *= count_c[:, j].sum() / s_c.sum()
    return CellClusterSums(*(a[cluster_order] for a in (count_t, count_c, resid_t, resid_c)))


def _cell_clusters_ooc(
    plan: list[tuple[int, float, int, int, np.ndarray]],
    classes: list[float],
    N: np.ndarray,
    wcr_sums: CellClusterSums | None,
) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """Up to two clusters (units without clusters) of each cell's sides, as ``staggered._two_clusters`` gives them.

    Only whether a row's sides span fewer than two distinct ones matters (``_single_cluster_rows``): with
    clusters their sorted codes; without, a class's units stand as ``2h`` and ``2h + 1`` (one if it has one unit).
    """
    out = []
    for j, (_, gv, _, _, ctrl) in enumerate(plan):
        if wcr_sums is not None:
            out.append((np.flatnonzero(wcr_sums.count_t[:, j] > 0)[:2], np.flatnonzero(wcr_sums.count_c[:, j] > 0)[:2]))
            continue
        ti = classes.index(gv)
        out.append((_first_ids(np.array([ti]), N), _first_ids(np.flatnonzero(ctrl), N)))
    return tuple(out)


def _merge_class(moments: dict[float, _Moments], csums: _ClusterSums | None, h: float, into: float) -> None:
    """Move cohort class ``h`` into class ``into`` (late cohorts into the never treated)."""
    m = moments.pop(h)
    moments[into] = m if into not in moments else moments[into].combine(m)
    if csums is not None and h in csums.counts:
        counts, sums = csums.counts.pop(h), csums.sums.pop(h)
        if into in csums.counts:
            csums.counts[into] = csums.counts[into] + counts
            csums.sums[into] = csums.sums[into] + sums
        else:
            csums.counts[into], csums.sums[into] = counts, sums


# -- unbalanced panels used whole (allow_unbalanced_panel=True) ------------------------------------------------------
def _shift(block: UnitBlock | None, outcome: str) -> float:
    """A constant taken from the outcomes (their mean in the first block) so that second moments are formed about it:
    the estimates and influence functions do not depend on it, their rounding does (less cancellation)."""
    if block is None:
        return 0.0
    y = np.asarray(block.columns[outcome], dtype=np.float64)
    y = y[np.isfinite(y)]
    return float(y.mean()) if y.size else 0.0


def _WZ(T: int) -> dict[str, Any]:
    """Where each part of the weighted ``z_i`` of :class:`_Pattern` lies (``T`` column indices, or one index)."""
    return {
        "wy": np.arange(2 * T + 1, 3 * T + 1),
        "wo": np.arange(3 * T + 1, 4 * T + 1),
        "w": 4 * T + 1,
        "po": np.arange(4 * T + 2, 5 * T + 2),
    }


@dataclass
class _Pattern:
    """One cohort class of an unbalanced panel: ``Q = sum_i z_i z_i'`` with ``z_i = (Y_i - shift) * O_i, O_i, 1``
    (outcomes, 0 where unobserved; the observed indicators; one), and the units by their first observed period.

    With sampling weights ``z_i`` goes on with ``(w_i (Y_i - shift) O_i, w_i O_i, w_i, p_i O_i)``, ``p_i = 1{w_i > 0}``
    (:data:`_WZ`), and the units by first period are kept summed with ``w_i``, ``w_i^2`` and ``p_i`` too."""

    Q: np.ndarray
    first: np.ndarray
    #: with the bootstrap: per draw, the sums of ``v_i (z_i, F_i)`` (keyed signs, n_boot x (3T + 1)), ``F_i`` the
    #: indicator of the unit's first observed period (which units keep a row when later periods are dropped);
    #: with weights ``v_i (z_i, F_i, w_i F_i)``
    signs: np.ndarray | None = None
    #: with weights: ``sum w_i F_i``, ``sum w_i^2 F_i`` and ``sum p_i F_i``, 3 x T
    first_w: np.ndarray | None = None

    def __add__(self, other: _Pattern) -> _Pattern:
        signs = None if self.signs is None or other.signs is None else self.signs + other.signs
        fw = None if self.first_w is None or other.first_w is None else self.first_w + other.first_w
        return _Pattern(self.Q + other.Q, self.first + other.first, signs, fw)

    def moments(self, shift: float) -> _Moments:
        """The balanced panel's moments (every unit observed in every period)."""
        T = len(self.first)
        n = int(round(self.Q[2 * T, 2 * T]))
        sz = self.Q[:T, 2 * T]
        mean_z = sz / n
        comoment = self.Q[:T, :T] - n * np.outer(mean_z, mean_z)
        signs = None
        if self.signs is not None:  # sum v Y = sum v (Y - shift) + shift sum v
            ones = self.signs[:, 2 * T : 2 * T + 1]
            signs = np.hstack([self.signs[:, :T] + shift * ones, ones])
        return _Moments(n, mean_z + shift, comoment, signs)


@dataclass
class _PatternClusters:
    """Per (cluster, cohort class): sums of ``z`` (shifted outcomes, observed indicators), units by first period."""

    n_periods: int
    #: with weights the parts go on (see ``PARTS``): ``w (Y - shift) O``, ``w O``, ``p O``, ``w F``, ``p F``
    weighted: bool = False
    inner: _ClusterSums = field(init=False)
    #: the parts of each (cluster, class) row, T columns each, in this order
    PARTS = ("y", "o", "f", "wy", "wo", "po", "wf", "pf")

    def __post_init__(self) -> None:
        self.inner = _ClusterSums(self.n_parts * self.n_periods)

    @property
    def n_parts(self) -> int:
        return len(self.PARTS) if self.weighted else 3

    def get(self, h: float, name: str) -> np.ndarray:
        """Part ``name`` (one of ``PARTS``) of class ``h``, per cluster (capacity x T)."""
        return self.part(h, self.PARTS.index(name))

    def add(self, clusters: np.ndarray, classes: np.ndarray, counts: np.ndarray, sums: np.ndarray) -> None:
        self.inner.add(clusters, classes, counts, sums)

    def part(self, h: float, which: int) -> np.ndarray:
        T = self.n_periods
        return self.inner.sums[h][:, which * T : (which + 1) * T]

    def to_balanced(self, csums: _ClusterSums, shift: float) -> None:
        """Per (cluster, class) unit counts and outcome sums of a balanced panel."""
        csums.codes, csums.capacity = self.inner.codes, self.inner.capacity
        for h in self.inner.sums:
            units = self.part(h, 2).sum(axis=1)
            csums.counts[h] = units
            csums.sums[h] = self.part(h, 0) + units[:, None] * shift


def _row_statistics(
    block: UnitBlock,
    *,
    roles: dict[str, str],
    times: np.ndarray,
    clustered: bool,
    shift: float,
    boot: tuple[int, int] | None = None,
    weights: str | None = None,
    covariates: list[str] | None = None,
) -> tuple[Any, dict[float, _Pattern], tuple[np.ndarray, ...] | None, _WeightFindings | None, _CovFindings | None]:
    """One block of an unbalanced panel: its checks, per-class ``_Pattern`` and, with clusters, per-cluster sums
    (:class:`_PatternClusters`); with ``weights``, the weighted parts and the weights' faults; with ``covariates``,
    their faults (:func:`_covariates_of`: the passes that use them come later)."""
    found, layout = check_block_rows(block, roles, times)
    w_found = None if weights is None else _weight_findings(block, roles["unit"], weights)
    cov = _covariates_of(block, layout, covariates, len(times))[1] if covariates else None
    nu = len(layout.units)
    if nu == 0:
        return found, {}, None, w_found, cov
    T = len(times)
    y = np.asarray(block.columns[roles["outcome"]], dtype=np.float64)[layout.rows]
    starts = np.flatnonzero(np.concatenate([[True], layout.unit[1:] != layout.unit[:-1]]))
    Z = np.zeros((nu, 2 * T + 1 if weights is None else 5 * T + 2))
    Z[layout.unit, layout.period] = y - shift
    Z[layout.unit, T + layout.period] = 1.0
    Z[:, 2 * T] = 1.0
    w = None
    if weights is not None:
        lay = _WZ(T)
        w = _unit_weights(block, weights, layout.rows[starts])
        Z[:, lay["wy"]] = w[:, None] * Z[:, :T]
        Z[:, lay["wo"]] = w[:, None] * Z[:, T : 2 * T]
        Z[:, lay["w"]] = w
        Z[:, lay["po"]] = (w > 0)[:, None] * Z[:, T : 2 * T]
    first_period = layout.period[starts]
    F = np.zeros((nu, T))
    F[np.arange(nu), first_period] = 1.0
    g = np.asarray(block.columns[roles["cohort"]], dtype=np.float64)[layout.rows[starts]]
    g = np.where(np.isnan(g) | (g == 0), np.inf, g)
    classes, inv = np.unique(g, return_inverse=True)
    out: dict[float, _Pattern] = {}
    keys = None if boot is None else bootstrap_keys(block.columns[roles["unit"]][layout.rows[starts]])
    for hi, h in enumerate(classes.tolist()):
        sel = inv == hi
        Zh = Z if len(classes) == 1 else Z[sel]
        Fh = F if len(classes) == 1 else F[sel]
        wh = None if w is None else w[sel]
        signs = None
        if keys is not None and boot is not None:
            signed = [Zh, Fh] if wh is None else [Zh, Fh, wh[:, None] * Fh]
            signs = signed_sums(keys[sel], np.hstack(signed), *boot)
        fw = None if wh is None else np.vstack([wh @ Fh, (wh * wh) @ Fh, (wh > 0) @ Fh])
        out[h] = _Pattern(Zh.T @ Zh, Fh.sum(axis=0), signs, fw)
    sums = None
    if clustered:
        cl = block.columns[roles["cluster"]][layout.rows[starts]]
        cvals, cinv = np.unique(cl, return_inverse=True)
        H = len(classes)
        key = cinv.astype(np.int64) * H + inv
        size = len(cvals) * H
        parts = [Z[:, : 2 * T], F]  # _PatternClusters.PARTS
        if w is not None:
            lay = _WZ(T)
            parts += [Z[:, lay["wy"]], Z[:, lay["wo"]], Z[:, lay["po"]], w[:, None] * F, (w > 0)[:, None] * F]
        W = np.hstack(parts)
        # one sparse product sums every column per (cluster, class) key (rather than a bincount per column)
        onehot = sparse.csr_matrix((np.ones(nu), (key, np.arange(nu))), shape=(size, nu))
        acc = np.asarray(onehot @ W)
        counts = np.bincount(key, minlength=size).reshape(len(cvals), H).astype(np.float64)
        sums = (cvals, classes, counts, acc.reshape(len(cvals), H, W.shape[1]))
    return found, out, sums, w_found, cov


#: Pairs of periods whose co-observation counts one step of :func:`_pair_counts` forms (bounds its memory).
PAIRS_PER_STEP = 64


def _pair_counts(
    block: UnitBlock, *, roles: dict[str, str], times: np.ndarray, pairs: np.ndarray, weights: str | None
) -> tuple[np.ndarray, ...] | None:
    """Per (cluster, class) of one block: the units (of positive weight) observed in both periods of each pair.

    A pass of its own after the first, for the restricted wild cluster bootstrap of an unbalanced panel used
    whole, once the cells (so the pairs ``(current, base)`` needed, indices of all periods) are known: the pairs
    of every period would be T^2 counts per cluster, the cells' are at most T x (cohorts + 1).
    """
    _, layout = check_block_rows(block, roles, times)
    nu = len(layout.units)
    if nu == 0:
        return None
    T = len(times)
    O = np.zeros((nu, T))
    O[layout.unit, layout.period] = 1.0
    starts = np.flatnonzero(np.concatenate([[True], layout.unit[1:] != layout.unit[:-1]]))
    if weights is not None:
        O *= (_unit_weights(block, weights, layout.rows[starts]) > 0)[:, None]
    g = np.asarray(block.columns[roles["cohort"]], dtype=np.float64)[layout.rows[starts]]
    g = np.where(np.isnan(g) | (g == 0), np.inf, g)
    classes, inv = np.unique(g, return_inverse=True)
    cvals, cinv = np.unique(block.columns[roles["cluster"]][layout.rows[starts]], return_inverse=True)
    H = len(classes)
    size = len(cvals) * H
    onehot = sparse.csr_matrix((np.ones(nu), (cinv.astype(np.int64) * H + inv, np.arange(nu))), shape=(size, nu))
    acc = np.empty((size, len(pairs)))
    for lo in range(0, len(pairs), PAIRS_PER_STEP):
        a, b = pairs[lo : lo + PAIRS_PER_STEP].T
        acc[:, lo : lo + len(a)] = onehot @ (O[:, a] * O[:, b])
    counts = np.zeros((len(cvals), H))
    return cvals, classes, counts, acc.reshape(len(cvals), H, len(pairs))


def _unbalanced(
    patterns: dict[float, _Pattern],
    psums: _PatternClusters | None,
    *,
    shift: float,
    times: np.ndarray,
    outcome: str,
    control: str,
    anticipation: int,
    base_period: str,
    cluster: str | None,
    alpha: float,
    covs: list[str],
    source: dict[str, Any],
    n_boot: int = 0,
    seed: Any = None,
    weights: str | None = None,
    pair_counts: Any = None,
    cov_cells: Any = None,
    method: str = "unconditional",
    cross: bool = False,
) -> StaggeredResult:
    """An unbalanced panel used whole, as :func:`evaluator.estimators.staggered_rc.staggered_did_rc` (panel=True).

    Each cell is the difference of four means over the rows of its two periods; a unit's
    influence function is the sum over its rows, linear in ``z_i``: ``psi_i = C_h z_i``, so
    ``sum_i psi_i psi_i' = sum_h C_h Q_h C_h'`` and the cluster sums are ``C_h`` times the sums of ``z``.
    With ``weights`` the means are weighted and ``z_i = (w_i (Y_i - c) O_i, w_i O_i, w_i, 1)`` (weights normalised
    to mean 1 over the units): the cohort shares' influence is ``w_i 1{G_i = g} - p_g``. ``pair_counts`` (with
    clusters and the bootstrap) runs the pass of :func:`_pair_counts` for the restricted wild cluster bootstrap.

    With covariates ``cov_cells`` runs their passes (:func:`evaluator.estimators.staggered_ooc_rc.rc_covariate_cells`,
    given the cells planned here) for the estimates and their covariance, by ``method``. With ``cross`` the units
    are the rows of repeated cross-sections (``panel=False``), and the words say "observations".
    """
    from evaluator.estimators.staggered_rc import _finish, rc_weights_note  # here: staggered_rc imports staggered

    T0 = len(times)
    notes: list[str] = []

    def units(h: float, keep: np.ndarray | None = None) -> int:
        f = patterns[h].first
        return int(round(f.sum() if keep is None else f[keep].sum()))

    def rows_of(h: float, keep: np.ndarray | None = None) -> float:
        d = np.diag(patterns[h].Q)[T0 : 2 * T0]
        return float(d.sum() if keep is None else d[keep].sum())

    what = "observations" if cross else "units"
    late = [h for h in patterns if np.isfinite(h) and h > times[-1] + anticipation]
    if late:
        notes.append(
            f"{sum(units(h) for h in late)} {what} first treated after the last period are used as never treated"
        )
        for h in late:
            pat = patterns.pop(h)
            patterns[np.inf] = pat if np.inf not in patterns else patterns[np.inf] + pat
            if psums is not None and h in psums.inner.sums:
                inner = psums.inner
                c, sm = inner.counts.pop(h), inner.sums.pop(h)
                if np.inf in inner.sums:
                    inner.counts[np.inf] = inner.counts[np.inf] + c
                    inner.sums[np.inf] = inner.sums[np.inf] + sm
                else:
                    inner.counts[np.inf], inner.sums[np.inf] = c, sm
    early = sorted(h for h in patterns if np.isfinite(h) and h <= times[0] + anticipation)
    if early:
        gs = [_num(v) for v in early]
        if cross:
            msg = f"dropped {sum(units(h) for h in early)} observations of cohorts {gs}"
        else:
            n_rows = int(sum(rows_of(h) for h in early))
            msg = f"dropped {sum(units(h) for h in early)} units ({n_rows} rows) of cohorts {gs}"
        warnings.warn(
            f"{msg}: treated in or before the first period {_num(times[0])} (+ anticipation {anticipation}), they "
            "have no pre-treatment period",
            DroppedUnitsWarning,
            stacklevel=4,
        )
        notes.append(f"{msg}: treated in the first period")
        for h in early:
            del patterns[h]
            if psums is not None:
                psums.inner.counts.pop(h, None)
                psums.inner.sums.pop(h, None)
    never_any = np.inf in patterns
    if control == "never" and not never_any:
        raise DesignError(
            'no never-treated observations (cohort 0 or NaN) to compare with under control="never"; '
            'use control="not_yet" to compare with observations not yet treated'
        )
    keep = np.ones(T0, dtype=bool)
    if not never_any and patterns:
        latest = max(patterns)
        drop = times >= latest - anticipation
        late_rows = int(sum(rows_of(h, drop) for h in patterns))
        if late_rows:
            notes.append(
                f"no never-treated observations: periods from {_num(latest - anticipation)} on are dropped "
                f"({late_rows} rows) and cohort {_num(latest)} serves only as a not-yet-treated control"
            )
        keep &= ~drop
    per_period = sum((np.diag(p.Q)[T0 : 2 * T0] for p in patterns.values()), np.zeros(T0))
    keep &= per_period > 0
    if not keep.any():
        raise DesignError("no observations remain; nothing to estimate")
    times = times[keep]
    T = len(times)
    if T < 2:
        raise DesignError("fewer than two periods remain; nothing to compare")
    kept = np.flatnonzero(keep)
    pick = np.concatenate([kept, T0 + kept, [2 * T0]])
    classes = sorted(h for h in patterns if units(h, keep) > 0)
    n_h = np.array([units(h, keep) for h in classes], dtype=np.float64)
    Q = []
    for h, nh in zip(classes, n_h, strict=True):
        q = patterns[h].Q[np.ix_(pick, pick)].copy()
        q[-1, -1] = nh  # units with a row in the periods kept
        Q.append(q)
    allg = np.array([h for h in classes if np.isfinite(h)])
    glist = allg if never_any else allg[:-1]
    if len(glist) == 0:
        raise DesignError("no treated cohort with a pre-treatment period remains; nothing to estimate")
    n = int(n_h.sum())
    if psums is not None:
        present = np.zeros(psums.inner.capacity, dtype=bool)
        for h in classes:
            present |= psums.get(h, "o")[:, kept].sum(axis=1) > 0
        n_clusters = int(present.sum())
        if n_clusters < 2:
            raise DesignError(f"cluster={cluster!r} has a single cluster; clustered inference needs at least 2")
    else:
        n_clusters = n
    sizes = {gv: int(n_h[classes.index(gv)]) for gv in glist}
    weighted = weights is not None
    cw = 1.0
    # the z the influence functions are linear in (Qw its second moments per class): (Y - c) O, O, 1; or weighted,
    # w (Y - c) O, w O, w, 1 with the weights normalised to mean 1 over the units (scaled by cw), as in memory
    Qw = Q
    positive = sizes
    if weighted:
        assert weights is not None
        fw = [patterns[h].first_w for h in classes]
        assert all(f is not None for f in fw)
        w_kept = np.array([f[0][keep].sum() for f in fw])  # units with a row kept: their first period is kept
        notes.append(rc_weights_note(weights, what))
        _check_cohort_weights(
            w_kept, np.array(classes), glist, ~np.isfinite(classes) if control == "never" else None, weights
        )
        cw = n / float(w_kept.sum())
        lay = _WZ(T0)
        pick_w = np.concatenate([lay["wy"][kept], lay["wo"][kept], [lay["w"], 2 * T0]])
        scale_w = np.concatenate([np.full(2 * T, cw), [cw, 1.0]])
        Qw = []
        for h, nh, f in zip(classes, n_h, fw, strict=True):
            q = patterns[h].Q[np.ix_(pick_w, pick_w)] * np.outer(scale_w, scale_w)
            q[-2, -2] = cw * cw * f[1][keep].sum()  # of the units with a row kept
            q[-2, -1] = q[-1, -2] = cw * f[0][keep].sum()
            q[-1, -1] = nh
            Qw.append(q)
        positive = {gv: int(round(fw[classes.index(gv)][2][keep].sum())) for gv in glist}
    small_sample_warnings(positive, cluster, n_clusters, n_boot, notes, observations=True, stacklevel=5)

    H = len(classes)
    cls = np.array(classes)
    cnt = np.array([np.diag(q)[T : 2 * T] for q in Q])  # rows per class and period (H x T)
    sz = np.array([q[:T, 2 * T] for q in Q])  # shifted outcome sums (H x T)
    swz = np.array([q[:T, -1] for q in Qw])  # (weighted) shifted outcome sums
    wcnt = np.array([q[T : 2 * T, -1] for q in Qw])  # (weighted) rows: the means' denominators
    zdim = Qw[0].shape[0]
    tfirst = 0 if base_period == "universal" else 1
    plan: list[tuple[int, float, int, int, int, np.ndarray]] = []
    no_control: list[str] = []
    missing: dict[tuple[float, float], list[str]] = {}
    for gi, gv in enumerate(glist):
        ci = classes.index(gv)
        pret_g = int(np.nonzero(times + anticipation < gv)[0][-1])
        for cur in range(tfirst, T):
            base = pret_g if (times[cur] >= gv or base_period == "universal") else cur - 1
            if control == "never":
                ctrl = ~np.isfinite(cls)
            else:
                cutoff = float(times[max(cur, base)] + anticipation)
                ctrl = ~np.isfinite(cls) | ((cls > cutoff) & (cls != gv))
            label = f"ATT({_num(gv)},{_num(times[cur])})"
            if base != cur:
                gaps = [p for p in (cur, base) if wcnt[ci, p] <= 0]  # no row (of positive weight)
                for p in gaps:
                    missing.setdefault((gv, float(times[p])), []).append(label)
                if gaps:
                    continue
                if any(wcnt[ctrl, p].sum() <= 0 for p in (cur, base)):
                    no_control.append(f"({_num(gv)},{_num(times[cur])})")
                    continue
            plan.append((gi, gv, ci, cur, base, ctrl))
    report_skipped_cells(missing, no_control, plan, notes, weighted=weighted, stacklevel=5)
    k = len(plan)
    G = len(glist)
    if weighted:
        pg = np.array([Qw[classes.index(gv)][-2, -1] / n for gv in glist])
    else:
        pg = np.array([sizes[gv] / n for gv in glist])
    m = k + G
    # psi_i = C_h z_i, z_i = (shifted outcomes (T), observed (T), 1), or weighted (..., w, 1)
    C = np.zeros((H, m, zdim))
    for h in range(H):
        share = (cls[h] == glist).astype(np.float64)
        if weighted:
            C[h, k:, 2 * T] = share  # on w
            C[h, k:, 2 * T + 1] = -pg
        else:
            C[h, k:, 2 * T] = share - pg
    att = np.zeros(k)
    cells: list[dict[str, Any]] = []
    for j, (gi, gv, ci, cur, base, ctrl) in enumerate(plan):
        treated = np.zeros(H, dtype=bool)
        treated[ci] = True
        cells.append(
            {
                "cohort": gv,
                "time": times[cur],
                "gidx": gi,
                "n_treated": int(cnt[ci, cur] + cnt[ci, base]),
                "n_control": int(cnt[ctrl, cur].sum() + cnt[ctrl, base].sum()),
                "base": times[base],
            }
        )
        if base == cur:  # universal base period: normalised to zero
            continue
        est = 0.0
        for p, members, sign in ((cur, treated, 1.0), (base, treated, -1.0), (cur, ctrl, -1.0), (base, ctrl, 1.0)):
            W = float(wcnt[members, p].sum())
            mean = float(swz[members, p].sum()) / W
            est += sign * mean
            C[members, j, p] += n * sign / W  # on the outcome
            C[members, j, T + p] -= n * sign / W * mean  # on the observed indicator
        att[j] = est
    draws = None
    wcr_sums = None
    cell_clusters: tuple[tuple[np.ndarray, np.ndarray], ...] = ()
    # the bands' "fewer than two units" check: a class's units (of positive weight) with a row in either period of
    # the cell
    po = T0 + kept if not weighted else _WZ(T0)["po"][kept]

    def either_units(h: int, a: int, b: int) -> float:
        q = patterns[classes[h]].Q
        return float(q[po[a], po[a]] + q[po[b], po[b]] - q[po[a], po[b]])

    def unit_cell_clusters() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
        either = [[either_units(h, cur, base) for h in range(H)] for _, _, _, cur, base, _ in plan]
        return tuple(
            (_first_ids(np.array([ci]), either[j]), _first_ids(np.flatnonzero(ctrl), either[j]))
            for j, (_, _, ci, _, _, ctrl) in enumerate(plan)
        )

    n_passes = 1
    trimmed = 0
    if cov_cells is not None:
        att, sigma, draws, wcr_sums, trimmed, more = cov_cells(
            plan=plan, classes=classes, late=late, kept=kept, cw=cw, glist=glist, pg=pg, n=n, times=times
        )
        n_passes += more
        if n_boot > 0:
            if psums is None:
                cell_clusters = unit_cell_clusters()
            else:
                assert wcr_sums is not None
                cell_clusters = tuple(
                    (np.flatnonzero(wcr_sums.count_t[:, j] > 0)[:2], np.flatnonzero(wcr_sums.count_c[:, j] > 0)[:2])
                    for j in range(k)
                )
        if trimmed:
            warnings.warn(
                f"{trimmed} control rows (summed over ATT(g,t) cells) had propensity scores >= "
                f"{PS_TRIM_LEVEL} and were given weight zero (DRDID trimming); overlap is weak",
                TrimmingWarning,
                stacklevel=5,
            )
            notes.append(f"{trimmed} control rows trimmed for propensity scores >= {PS_TRIM_LEVEL}")
    elif psums is None:
        sigma = sum(C[h] @ Qw[h] @ C[h].T for h in range(H)) / n**2
        if n_boot > 0:
            # psi_i = C_h z_i: the draws from each class's keyed sums of z, its "1" (and w) counting only units with
            # a row kept; the signed sums are of (z, F) or, weighted, of (z, F, w F) (_row_statistics)
            draws = np.zeros((n_boot, m))
            for h, hv in enumerate(classes):
                sg = patterns[hv].signs
                assert sg is not None
                if weighted:
                    lay = _WZ(T0)
                    f0 = 5 * T0 + 2
                    Vz = np.column_stack(
                        [
                            cw * sg[:, lay["wy"][kept]],
                            cw * sg[:, lay["wo"][kept]],
                            cw * sg[:, f0 + T0 + kept].sum(axis=1),
                            sg[:, f0 + kept].sum(axis=1),
                        ]
                    )
                else:
                    Vz = np.column_stack([sg[:, pick[:-1]], sg[:, 2 * T0 + 1 + kept].sum(axis=1)])
                draws += Vz @ C[h].T
            draws /= n
            cell_clusters = unit_cell_clusters()
    else:
        S = np.zeros((n_clusters, m))
        V = []
        for h, hv in enumerate(classes):
            if weighted:
                parts = [
                    cw * psums.get(hv, "wy")[present][:, kept],
                    cw * psums.get(hv, "wo")[present][:, kept],
                    cw * psums.get(hv, "wf")[present][:, kept].sum(axis=1),
                    psums.get(hv, "f")[present][:, kept].sum(axis=1),
                ]
            else:
                parts = [
                    psums.get(hv, "y")[present][:, kept],
                    psums.get(hv, "o")[present][:, kept],
                    psums.get(hv, "f")[present][:, kept].sum(axis=1),
                ]
            V.append(np.column_stack(parts))
            S += V[h] @ C[h].T
        sigma = (S.T @ S) / n**2
        if n_boot > 0:
            cluster_ids = _code_values(psums.inner.codes, psums.inner.capacity)[present]
            draws = signed_sums(bootstrap_keys(cluster_ids), S, int(n_boot), seed_key(seed)) / n
            assert pair_counts is not None  # the caller gives it whenever clusters are bootstrapped
            pairs = sorted({(int(kept[cur]), int(kept[base])) for _, _, _, cur, base, _ in plan})
            both = pair_counts(np.array(pairs, dtype=np.int64).reshape(-1, 2))
            # its clusters in the first pass's codes (the same clusters; codes are given in the order met)
            where = np.array([psums.inner.codes[v] for v in both.codes], dtype=np.int64)
            aligned = {hv: np.zeros((psums.inner.capacity, len(pairs))) for hv in classes}
            for hv, sums in both.sums.items():
                into = np.inf if hv in late else hv  # late cohorts count as never treated, as above
                if into in aligned:  # (early cohorts are dropped)
                    aligned[into][where] += sums[: len(where)]
            aligned = {hv: a[present] for hv, a in aligned.items()}
            wcr_sums = _wcr_sums_rows(
                plan,
                [psums.get(hv, "po" if weighted else "o")[present] for hv in classes],
                [aligned[hv] for hv in classes],
                {pq: i for i, pq in enumerate(pairs)},
                V,
                C,
                kept=kept,
                n=n,
                cluster_order=np.argsort(cluster_ids, kind="stable"),
            )
            cell_clusters = tuple(
                (np.flatnonzero(wcr_sums.count_t[:, j] > 0)[:2], np.flatnonzero(wcr_sums.count_c[:, j] > 0)[:2])
                for j in range(k)
            )
    total_rows = float(cnt.sum())
    sum_z = float(sz.sum())
    sum_z2 = float(sum(np.trace(q[:T, :T]) for q in Q))
    scale = float(np.sqrt(max(sum_z2 / total_rows - (sum_z / total_rows) ** 2, 0.0)))
    n_never = int(n_h[~np.isfinite(cls)].sum())
    return _finish(
        Bcols=None,
        sigma=sigma,
        att=att,
        cells=cells,
        cell_clusters=cell_clusters,
        pg=pg,
        glist=glist,
        times=times,
        n=n,
        cl=None,
        n_clusters=n_clusters,
        cluster=cluster,
        treated_m=None,
        control_m=None,
        n_boot=n_boot,
        seed=seed,
        alpha=alpha,
        notes=notes,
        info_extra={
            "panel": not cross,
            "allow_unbalanced_panel": not cross,
            "n_obs": int(total_rows),
            **(
                {"weights": weights, "cohort_weights": {_num(gv): float(p) for gv, p in zip(glist, pg, strict=True)}}
                if weighted
                else {}
            ),
            "out_of_core": {**source, "passes": n_passes},
        },
        outcome=outcome,
        nobs=int(total_rows),
        scale=scale,
        est_method=method,
        control=control,
        base_period=base_period,
        anticipation=anticipation,
        covs=covs,
        sizes=sizes,
        n_treated=n - n_never,
        n_never=n_never,
        what=what,
        panel=not cross,
        draws=draws,
        wcr_sums=wcr_sums,
    )


def _first_ids(hs: np.ndarray, units: Any) -> np.ndarray:
    """Up to two distinct stand-ins for the units of classes ``hs`` (``units[h]`` of class ``h``): ``2h, 2h + 1``."""
    return np.concatenate([2 * h + np.arange(min(round(units[h]), 2)) for h in hs] or [np.empty(0, int)])[:2]


def _wcr_sums_rows(
    plan: list[tuple[int, float, int, int, int, np.ndarray]],
    observed: list[np.ndarray],
    both: list[np.ndarray],
    pair_index: dict[tuple[int, int], int],
    V: list[np.ndarray],
    C: np.ndarray,
    *,
    kept: np.ndarray,
    n: int,
    cluster_order: np.ndarray,
) -> CellClusterSums:
    """The restricted wild cluster bootstrap's per-(cluster, cell) sums of an unbalanced panel used whole.

    As in memory (:func:`evaluator.inference.bootstrap.cell_cluster_sums` of the units' influence functions): a
    side's units are those (of positive weight) with a row in either period of the cell, counted per cluster
    from the units observed in each period (``observed[h]``, clusters x T) and in both periods of each cell
    (``both[h]``, clusters x pairs, column ``pair_index[(current, base)]``); a unit's residual is
    ``psi_i / (n coef)`` with ``coef`` ``1/n_t`` or ``-1/n_c``, and a cluster's sum of ``psi`` over class ``h`` is
    ``V_h C_h'`` (``V_h`` its sums of ``z``).
    """
    G, k = V[0].shape[0], len(plan)
    count_t, count_c, resid_t, resid_c = (np.zeros((G, k)) for _ in range(4))

    def either(h: int, cur: int, base: int) -> np.ndarray:
        a, b = kept[cur], kept[base]
        return observed[h][:, a] + observed[h][:, b] - both[h][:, pair_index[(int(a), int(b))]]

    for j, (_, _, ci, cur, base, ctrl) in enumerate(plan):
        count_t[:, j] = either(ci, cur, base)
        resid_t[:, j] = V[ci] @ C[ci, j]
        for h in np.flatnonzero(ctrl):
            count_c[:, j] += either(h, cur, base)
            resid_c[:, j] += V[h] @ C[h, j]
        resid_t[:, j] *= count_t[:, j].sum() / n
        resid_c[:, j] *= -count_c[:, j].sum() / n
    return CellClusterSums(*(a[cluster_order] for a in (count_t, count_c, resid_t, resid_c)))


# -- time-invariant covariates (method "reg", "ipw", "dr") -----------------------------------------------------------
@dataclass
class _Tally:
    """How many of something a pass found, and the first few to name."""

    count: int = 0
    first: list[Any] = field(default_factory=list)

    def add(self, values: Any) -> None:
        values = list(values)
        self.count += len(values)
        self.first.extend(values[: max(0, 5 - len(self.first))])

    def merge(self, other: _Tally) -> None:
        self.count += other.count
        self.first.extend(other.first[: max(0, 5 - len(self.first))])

    def where(self, label: str) -> str:
        more = f" ({self.count} in all)" if self.count > 5 else ""
        return f"{label} {', '.join(str(v) for v in self.first)}{more}"


@dataclass
class _CovFindings:
    """The covariates' faults in a pass (missing or infinite values by data row, variation within a unit) and their
    ranges (for the constant-covariate check)."""

    names: list[str]
    missing: dict[str, _Tally] = field(default_factory=dict)
    infinite: dict[str, _Tally] = field(default_factory=dict)
    varies: dict[str, _Tally] = field(default_factory=dict)
    lo: np.ndarray | None = None
    hi: np.ndarray | None = None

    def merge(self, other: _CovFindings) -> None:
        for mine, theirs in ((self.missing, other.missing), (self.infinite, other.infinite)):
            for c, t in theirs.items():
                mine.setdefault(c, _Tally()).merge(t)
        for c, t in other.varies.items():
            self.varies.setdefault(c, _Tally()).merge(t)
        if other.lo is not None:
            self.lo = other.lo if self.lo is None else np.fmin(self.lo, other.lo)
            self.hi = other.hi if self.hi is None else np.fmax(self.hi, other.hi)

    def problems(self, rows: int) -> list[Problem]:
        out = []
        for c in self.names:
            if c in self.missing:
                f = self.missing[c]
                out.append(missing_problem(c, f.count, what=f"out of {rows}", where=f.where("data rows")))
            if c in self.infinite:
                out.append(infinite_problem(c, self.infinite[c].count, where=self.infinite[c].where("data rows")))
            if c in self.varies:
                f = self.varies[c]
                out.append(
                    Problem(
                        f"covariate {c!r} varies within {f.where('units')}; out of core the covariates must be "
                        "time-invariant (constant for each unit)",
                        column=c,
                        hint="use each unit's pre-treatment value in every period, e.g. data[c] = "
                        "data.groupby(unit)[c].transform('first'); or read the data into a pandas DataFrame, where "
                        "each ATT(g,t) takes the covariates of the earlier of its two periods",
                    )
                )
        return out


def _covariates_of(block: UnitBlock, layout: Any, covariates: list[str], T: int) -> tuple[np.ndarray, _CovFindings]:
    """The valid units' covariates (units x p, each unit's first row) and their faults in the block.

    ``layout`` is a balanced pass's (:class:`~evaluator.data.shards.BlockLayout`) or, for an unbalanced panel used
    whole, a :class:`~evaluator.data.shards.RowLayout`."""
    found = _CovFindings(list(covariates))
    nu = len(layout.units)
    rows_layout = isinstance(layout, RowLayout)
    if rows_layout:
        starts = np.flatnonzero(np.concatenate([[True], layout.unit[1:] != layout.unit[:-1]])) if nu else None
    else:
        index = np.arange(nu * T).reshape(nu, T) if layout.index is None else layout.index
    X = np.empty((nu, len(covariates)))
    for j, c in enumerate(covariates):
        v = np.asarray(block.columns[c], dtype=np.float64)
        na, inf = np.isnan(v), np.isinf(v)  # every row, as in memory (units then dropped included)
        if na.any():
            found.missing.setdefault(c, _Tally()).add(block.positions(na) + 1)
        if inf.any():
            found.infinite.setdefault(c, _Tally()).add(block.positions(inf) + 1)
        if rows_layout:
            if not nu:
                continue
            vr = v[layout.rows]
            firsts = vr[starts]
            differs = np.logical_or.reduceat(vr != firsts[layout.unit], starts)
            varies = differs & np.logical_and.reduceat(np.isfinite(vr), starts)
            if varies.any():
                found.varies.setdefault(c, _Tally()).add(layout.units[varies])
            X[:, j] = firsts
            continue
        vm = v[index]
        varies = (vm != vm[:, :1]).any(axis=1) & np.isfinite(vm).all(axis=1)
        if varies.any():
            found.varies.setdefault(c, _Tally()).add(layout.units[varies])
        X[:, j] = vm[:, 0]
    if nu:  # the ranges of the finite values (a column without any gives (inf, -inf): not constant)
        finite = np.isfinite(X)
        found.lo = np.where(finite, X, np.inf).min(axis=0)
        found.hi = np.where(finite, X, -np.inf).max(axis=0)
    return X, found


def _check_covariates_ooc(found: _CovFindings, pooled: _Moments, T: int) -> None:
    """The in-memory checks of :func:`evaluator.estimators.staggered._check_covariates` from the pass's moments:
    constant covariates, then covariates collinear with the intercept or the earlier ones."""
    names = found.names
    lo = np.full(len(names), np.nan) if found.lo is None else found.lo
    hi = np.full(len(names), np.nan) if found.hi is None else found.hi
    const = [c for j, c in enumerate(names) if hi[j] - lo[j] == 0]
    if const:
        raise DesignError(
            f"covariates {const} are constant; they cannot enter the propensity score or outcome regression "
            "beside the intercept: drop them"
        )
    n = pooled.n
    cxx = pooled.comoment[T:, T:]
    sd = np.sqrt(np.diag(cxx) / n)
    sd = np.where(sd > 0, sd, 1.0)
    p = len(names)
    gram = np.zeros((p + 1, p + 1))  # Z'Z of Z = (1, standardised covariates): their sums vanish
    gram[0, 0] = n
    gram[1:, 1:] = cxx / np.outer(sd, sd)

    def rank(j: int) -> int:
        # In memory the rank is that of Z (singular values above s_max n eps); from Z'Z the smallest eigenvalue of
        # an exactly collinear design is rounding of order eps lambda_max, not zero: so eigenvalues above
        # lambda_max n eps count (singular values above s_max sqrt(n eps)).
        ev = np.linalg.eigvalsh(gram[:j, :j])
        return int((ev > ev.max() * max(n, j) * np.finfo(float).eps).sum())

    if rank(p + 1) < p + 1:
        culprits = [names[j - 1] for j in range(1, p + 1) if rank(j + 1) < j + 1]
        raise DesignError(f"covariates are collinear (with the intercept or each other): {culprits}; drop them")


def _pooled(moms: list[_Moments]) -> _Moments:
    out = moms[0]
    for m in moms[1:]:
        out = out.combine(m)
    return out


def _covariate_units(
    block: UnitBlock,
    *,
    roles: dict[str, str],
    times: np.ndarray,
    covariates: list[str],
    class_of: dict[float, int],
    keep_t: np.ndarray,
    clustered: bool,
    keyed: bool = False,
    weights: str | None = None,
    wscale: float = 1.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """A block's units again (a later pass): class index, design (1, X), outcomes of the periods kept, clusters,
    with ``keyed`` the units' bootstrap keys, and with ``weights`` their weights times ``wscale`` (normalised)."""
    _, layout = check_block(block, roles, times)
    T = len(times)
    nu = len(layout.units)
    if nu == 0:
        empty = np.empty(0, dtype=np.uint64) if keyed else None
        return (
            np.empty(0, dtype=np.int64),
            np.empty((0, len(covariates) + 1)),
            np.empty((0, int(keep_t.sum()))),
            None,
            empty,
            None if weights is None else np.empty(0),
        )
    index = np.arange(nu * T).reshape(nu, T) if layout.index is None else layout.index
    first = index[:, 0]
    Y = np.asarray(block.columns[roles["outcome"]], dtype=np.float64)[index][:, keep_t]
    X1 = np.empty((nu, len(covariates) + 1))
    X1[:, 0] = 1.0
    for j, c in enumerate(covariates):
        X1[:, j + 1] = np.asarray(block.columns[c], dtype=np.float64)[first]
    hidx, keep, cl, keys, w = unit_classes(
        block, roles, first, class_of, clustered=clustered, keyed=keyed, weights=weights, wscale=wscale
    )
    return hidx, X1[keep], Y[keep], cl, keys, w


def unit_classes(
    block: UnitBlock,
    roles: dict[str, str],
    first: np.ndarray,
    class_of: dict[float, int],
    *,
    clustered: bool,
    keyed: bool,
    weights: str | None,
    wscale: float,
    observed: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """What the later passes know of a block's units (``first``: each unit's first row): the class index of those
    estimated (``class_of``; early cohorts have none and are left out, as are units not ``observed``), which units
    those are, and theirs clusters, bootstrap keys (with ``keyed``) and weights times ``wscale``."""
    g = np.asarray(block.columns[roles["cohort"]][first], dtype=np.float64)
    g = np.where(np.isnan(g) | (g == 0), np.inf, g)
    vals, inv = np.unique(g, return_inverse=True)
    hidx = np.array([class_of.get(v, -1) for v in vals.tolist()], dtype=np.int64)[inv]
    keep = hidx >= 0 if observed is None else (hidx >= 0) & observed
    cl = block.columns[roles["cluster"]][first][keep] if clustered else None
    keys = bootstrap_keys(block.columns[roles["unit"]][first][keep]) if keyed else None
    w = None if weights is None else wscale * _unit_weights(block, weights, first)[keep]
    return hidx[keep], keep, cl, keys, w


def _class_passes(over: BlockPasses, reader: Any, *, classes: list[float], late: list[float], **kw: Any) -> Any:
    """``passes(fn)``: ``fn(*reader(block, class_of=..., **kw))`` over every block, in order (the covariates' later
    passes), each unit's class an index into ``classes``, the late cohorts' that of the never treated."""
    class_of = {h: i for i, h in enumerate(classes)}
    for h in late:
        class_of[h] = classes.index(np.inf)
    unpack = partial(reader, class_of=class_of, **kw)

    def passes(fn: Any) -> Iterator[Any]:
        return over.map(lambda b: fn(*unpack(b)))

    return passes


def _logit_eval(
    X: np.ndarray, d: np.ndarray, b: np.ndarray, w: np.ndarray | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    """A block's share of the "direct" logit pass of :func:`evaluator.estimators.logit.fit_logit` (with weights
    ``w``, of :func:`~evaluator.estimators.logit.weighted_logit_probabilities`)."""
    eta = np.clip(X @ b, -35.0, 35.0)
    p = 1.0 / (1.0 + np.exp(-eta))
    W = p * (1 - p)
    if w is None:
        return float(d @ eta - np.logaddexp(0.0, eta).sum()), X.T @ (d - p), (X * W[:, None]).T @ X
    wd = w * d
    return float(wd @ eta - w @ np.logaddexp(0.0, eta)), X.T @ (wd - w * p), (X * (w * W)[:, None]).T @ X


def _ps(X: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The propensity scores of ``_att_cov``: the logit's probabilities, capped at 1 - 1e-6."""
    return np.minimum(1.0 / (1.0 + np.exp(-np.clip(X @ b, -35.0, 35.0))), 1 - 1e-6)


@dataclass
class _Logit:
    """The state of one cell-group's propensity logit (treated cohort vs its controls), fitted over passes as
    :func:`evaluator.estimators.logit.fit_logit` (``arithmetic="direct"``) fits it on the whole sample."""

    sub: np.ndarray  # per class: in the logit's sample
    treated: np.ndarray  # per class: the treated cohort
    beta: np.ndarray
    ll: float
    g: np.ndarray
    H: np.ndarray
    it: int = 0
    #: with weights: DRDID's i.weights are the weights over their mean on the logit's sample, 1 / that mean here
    iscale: float = 1.0
    step: np.ndarray | None = None  # the candidate step being evaluated
    halvings: int = 0
    done: bool = False

    def propose(self, maxiter: int = 100) -> None:
        """Take the next Newton step (or finish): leaves ``step`` set when a pass must evaluate ``beta + step``."""
        if self.done or self.step is not None:
            return
        if self.it >= maxiter:
            self.done = True
            return
        step = np.linalg.solve(self.H, self.g)
        new = self.beta + step
        if float(np.max(np.abs(step))) < 1e-12 * (1 + np.max(np.abs(new))):
            self.beta, self.done = new, True
            return
        self.step, self.halvings = step, 0

    def judge(self, ll: float, g: np.ndarray, H: np.ndarray) -> None:
        """The pass's log-likelihood at ``beta + step``: accept, or halve the step (at most 30 evaluations)."""
        assert self.step is not None
        if ll >= self.ll - 1e-12 * abs(self.ll):
            self.beta = self.beta + self.step
            self.ll, self.g, self.H = ll, g, H
            self.it += 1
            self.step = None
            return
        self.halvings += 1
        if self.halvings == 30:  # no step along the Newton direction improves the likelihood: stop where we are
            self.step, self.done = None, True
            return
        self.step = self.step / 2


def _covariate_cells(
    *,
    method: str,
    passes: Any,
    plan: list[tuple[int, float, int, int, np.ndarray]],
    classes: list[float],
    zmom: list[_Moments],
    glist: np.ndarray,
    sizes: dict[float, int],
    n: int,
    T: int,
    p: int,
    times: np.ndarray,
    covs: list[str],
    clustered: bool,
    boot: tuple[int, int] | None = None,
    weighted: bool = False,
) -> tuple[np.ndarray, np.ndarray, int, int, np.ndarray | None, Any]:
    """ATT(g,t) with covariates and the covariance of the cells and cohort shares, in passes over the blocks.

    ``passes(fn)`` runs ``fn(hidx, X1, Y, cl, keys, w)`` over every block (in threads) and yields the results in
    order. Returns the estimates, ``sigma``, the trimmed control observations (summed over cells) and the passes made.

    With ``weighted`` (sampling weights ``w``, normalised, in ``zmom``'s ``w1`` and the passes' ``w``) DRDID's
    weighted estimators: each cell's influence function is ``w_i`` times the unweighted one with every count and
    sum weighted (the treated weight for ``n_t``, weighted means, the weighted least squares of the controls, the
    weighted logit, ``w`` times the scores' odds); the cohort shares' is ``w_i 1{G_i = g} - pg``.
    """
    H = len(classes)
    k = len(plan)
    G = len(glist)
    m = k + G
    live = [j for j, (_, _, cur, base, _) in enumerate(plan) if base != cur]
    q = p + 1

    def raw(mom: _Moments) -> tuple[float, np.ndarray, np.ndarray]:
        """The count, the sums of (1, X) and the uncentred X'X of (1, X) of some units' moments."""
        mx = np.concatenate([[1.0], mom.mean[T:]])
        xtx = mom.n * np.outer(mx, mx)
        xtx[1:, 1:] += mom.comoment[T:, T:]
        return float(mom.n), mom.n * mx, xtx

    beta = np.zeros((q, k))
    avec = np.zeros((q, k))
    mt = np.zeros(k)
    dmat = np.zeros((T, k))
    treated_of = np.zeros((H, k), dtype=bool)
    ctrl_of = np.zeros((H, k), dtype=bool)
    logit_of = np.full(k, -1, dtype=np.int64)
    logits: list[_Logit] = []
    logit_key: dict[tuple[int, bytes], int] = {}  # one logit per (treated cohort, control classes), as in memory
    xbar_t = np.zeros((q, k))

    def fail_cell(j: int, exc: Exception) -> DesignError:
        """The in-memory error for a cell whose covariate models cannot be fitted."""
        _, gv, cur, _, ctrl = plan[j]
        n_c = int(sum(zmom[h].n for h in np.flatnonzero(ctrl)))
        return DesignError(
            f"cannot fit the covariate models for ATT({_num(gv)},{_num(times[cur])}): {exc}; "
            f"covariates {covs} are (nearly) collinear within its {sizes[gv]} treated and {n_c} control units"
        )

    # the moments the estimates are formed from: with weights the weighted ones (zmom's own still count units)
    zs = [z.w1 if weighted and z.w1 is not None else z for z in zmom]
    xtx_cache: dict[bytes, np.ndarray] = {}
    for j in live:
        gi, gv, cur, base, ctrl = plan[j]
        ti = classes.index(gv)
        treated_of[ti, j] = True
        ctrl_of[ctrl, j] = True
        dmat[cur, j], dmat[base, j] = 1.0, -1.0
        tm = zs[ti]
        xbar_t[:, j] = np.concatenate([[1.0], tm.mean[T:]])
        mdy_t = float(tm.mean[cur] - tm.mean[base])
        cm = _pooled([zs[h] for h in np.flatnonzero(ctrl)])
        n_t = sizes[gv] if not weighted else tm.n
        fail = partial(fail_cell, j)
        if method in ("reg", "dr"):
            _, _, xtx = raw(cm)
            key = ctrl.tobytes()
            if key not in xtx_cache:
                if np.linalg.cond(xtx) > 1e14:
                    raise fail(DesignError("the outcome regression on the control units is singular"))
                xtx_cache[key] = xtx
            # the OLS of dY on (1, X) over the controls, from their centred moments (as solve(X'X, X'dY))
            d_full = np.concatenate([dmat[:, j], np.zeros(p)])
            cxy = cm.comoment[T:, :] @ d_full
            try:
                slope = np.linalg.solve(cm.comoment[T:, T:], cxy)
            except np.linalg.LinAlgError as exc:
                raise fail(exc) from None
            beta[1:, j] = slope
            beta[0, j] = float(cm.mean @ d_full) - cm.mean[T:] @ slope
            avec[:, j] = np.linalg.solve(xtx_cache[key], xbar_t[:, j])
        mt[j] = mdy_t - xbar_t[:, j] @ beta[:, j]
        if method in ("ipw", "dr"):
            key2 = (ti, ctrl.tobytes())
            if key2 not in logit_key:
                sub = ctrl.copy()
                sub[ti] = True
                sm = _pooled([zs[h] for h in np.flatnonzero(sub)])
                n1, xs, xtx_s = raw(sm)
                _, xs_t, _ = raw(tm)
                # in memory the weighted logit's weights have mean 1 on its sample: units over weight
                iscale = float(sum(zmom[h].n for h in np.flatnonzero(sub))) / n1 if weighted else 1.0
                b0 = np.zeros(q)
                ybar = n_t / n1
                if 0 < ybar < 1:
                    b0[0] = np.log(ybar / (1 - ybar))
                eta0 = float(np.clip(b0[0], -35.0, 35.0))
                p0 = 1.0 / (1.0 + np.exp(-eta0))
                tmask = np.zeros(H, dtype=bool)
                tmask[ti] = True
                logit_key[key2] = len(logits)
                logits.append(
                    _Logit(
                        sub=sub,
                        treated=tmask,
                        beta=b0,
                        ll=iscale * float(n_t * eta0 - n1 * np.logaddexp(0.0, eta0)),
                        g=iscale * (xs_t - p0 * xs),
                        H=iscale * (p0 * (1 - p0) * xtx_s),
                        iscale=iscale,
                    )
                )
            logit_of[j] = logit_key[key2]
    n_passes = 0
    trimmed_total = 0
    L = len(logits)
    if L:
        # Newton steps of every logit, each pass evaluating the candidates of all logits still moving
        while True:
            for i, lg in enumerate(logits):
                try:
                    lg.propose()
                except np.linalg.LinAlgError as exc:
                    raise fail_cell(int(np.flatnonzero(logit_of == i)[0]), exc) from None
            moving = [i for i, lg in enumerate(logits) if lg.step is not None]
            if not moving:
                break
            cand = {i: logits[i].beta + logits[i].step for i in moving}

            def newton(hidx, X1, Y, cl, keys, w, cand=cand):
                out = {}
                for i, b in cand.items():
                    lg = logits[i]
                    sel = lg.sub[hidx]
                    ws = None if w is None else lg.iscale * w[sel]
                    out[i] = _logit_eval(X1[sel], lg.treated[hidx][sel].astype(np.float64), b, ws)
                return out

            acc: dict[int, list[Any]] = {i: [0.0, np.zeros(q), np.zeros((q, q))] for i in moving}
            for res in passes(newton):
                for i, (ll, g, Hm) in res.items():
                    a = acc[i]
                    a[0] += ll
                    a[1] += g
                    a[2] += Hm
            n_passes += 1
            for i in moving:
                logits[i].judge(*acc[i])
        params = np.column_stack([lg.beta for lg in logits])  # q x L

        # the scores at the fit: each logit's information, trimming, and each cell's weighted control sums
        cells_l = [j for j in live if logit_of[j] >= 0]

        cells_of = [np.array([j for j in cells_l if logit_of[j] == i], dtype=np.int64) for i in range(L)]

        def at_fit(hidx, X1, Y, cl, keys, w):
            """Per logit: X'WX at the fit and the trimmed controls; per cell: sums of w_C, w_C r, w_C X, w_C r X."""
            PS = _ps(X1, params)  # units x L
            xwx = np.zeros((L, q, q))
            trimmed = np.zeros(L, dtype=np.int64)
            sums = np.zeros((k, 2 + 2 * q))
            for i, lg in enumerate(logits):
                sel = lg.sub[hidx]
                ps = PS[sel, i]
                Xs = X1[sel]
                xwx[i] = (Xs * (ps * (1 - ps) * (1.0 if w is None else w[sel]))[:, None]).T @ Xs
                c = sel & ~lg.treated[hidx]  # the controls of the logit's cells
                ps = PS[c, i]
                keep = ps < PS_TRIM_LEVEL
                trimmed[i] = int(np.sum(~keep))
                wc = np.where(keep, ps / (1 - ps), 0.0) * (1.0 if w is None else w[c])
                js = cells_of[i]
                Xc = X1[c]
                Rc = Y[c] @ dmat[:, js] - Xc @ beta[:, js]  # controls x cells
                sums[js, 0] = wc.sum()
                sums[js, 1] = wc @ Rc
                sums[js, 2 : 2 + q] = wc @ Xc
                sums[js, 2 + q :] = (Rc * wc[:, None]).T @ Xc
            return xwx, trimmed, sums

        xwx = np.zeros((L, q, q))
        trimmed_l = np.zeros(L, dtype=np.int64)
        wsums = np.zeros((k, 2 + 2 * q))
        for a, b, c in passes(at_fit):
            xwx += a
            trimmed_l += b
            wsums += c
        n_passes += 1
        trimmed_total = int(sum(trimmed_l[logit_of[j]] for j in cells_l))
    else:
        params = np.zeros((q, 0))
    att = np.zeros(k)
    ec = np.zeros(k)
    swc = np.ones(k)
    bvec = np.zeros((q, k))
    for j in live:
        if method == "reg":
            att[j] = mt[j]
            continue
        i = logit_of[j]
        s0, s1 = wsums[j, 0], wsums[j, 1]
        sx, srx = wsums[j, 2 : 2 + q], wsums[j, 2 + q :]
        ec[j] = s1 / s0
        swc[j] = s0
        att[j] = mt[j] - ec[j]
        try:
            bvec[:, j] = np.linalg.inv(xwx[i]) @ (srx - ec[j] * sx) / s0
        except np.linalg.LinAlgError as exc:
            raise fail_cell(j, exc) from None
        if method == "dr":
            avec[:, j] = np.linalg.solve(xtx_cache[plan[j][4].tobytes()], xbar_t[:, j] - sx / s0)
    n_t_cell = np.array([sizes[plan[j][1]] for j in range(k)], dtype=np.float64)
    if weighted:  # the treated cohort's weight
        n_t_cell = np.array([zs[classes.index(plan[j][1])].n for j in range(k)])
    share = np.array([[1.0 if h == gv else 0.0 for gv in glist] for h in classes]).reshape(H, G)
    pg = np.array([(sizes[gv] if not weighted else zs[classes.index(gv)].n) / n for gv in glist])
    dead = np.ones(k, dtype=bool)
    dead[live] = False

    def influence(hidx, X1, Y, cl, keys, w):
        """psi (units x (cells + cohort shares)), summed: psi'psi, or by cluster."""
        R = Y @ dmat - X1 @ beta
        D = treated_of[hidx]
        C = ctrl_of[hidx]
        psi = np.empty((len(hidx), m))
        cell = D * (R - mt) / n_t_cell - C * R * (X1 @ avec)
        if method != "reg":
            PS = _ps(X1, params)[:, np.maximum(logit_of, 0)]
            wc = np.where(C & (PS < PS_TRIM_LEVEL), PS / (1 - PS), 0.0)
            cell -= wc * (R - ec) / swc + (D | C) * (D - PS) * (X1 @ bvec)
        if w is not None:  # the weighted influence function: w_i times the unweighted one of weighted sums
            cell *= w[:, None]
        cell[:, dead] = 0.0
        psi[:, :k] = n * cell
        psi[:, k:] = (share[hidx] if w is None else w[:, None] * share[hidx]) - pg
        return psi_totals(psi, D, C, cl, keys, w, boot=boot, k=k)

    sigma, draws, wcr_sums = influence_totals(passes(influence), clustered=clustered, boot=boot, m=m, k=k, n=n)
    n_passes += 1
    return att, sigma, trimmed_total, n_passes, draws, wcr_sums


def psi_totals(
    psi: np.ndarray,
    D: np.ndarray,
    C: np.ndarray,
    cl: np.ndarray | None,
    keys: np.ndarray | None,
    w: np.ndarray | None,
    *,
    boot: tuple[int, int] | None,
    k: int,
) -> tuple[Any, ...]:
    """A block's share of the covariance of its units' influence functions ``psi`` (units x (cells + shares)).

    Without clusters ``psi'psi`` and, with ``boot``, the keyed sign sums of ``psi``; with clusters ``cl``, per
    cluster the count and the sum of ``psi`` and, with ``boot``, the restricted bootstrap's per-(cluster, cell)
    sums of ``psi`` over each side (``D`` treated, ``C`` control: units x cells) and each side's units (of
    positive weight ``w``). :func:`influence_totals` combines them.
    """
    if cl is None:
        return psi.T @ psi, None, (None if keys is None or boot is None else signed_sums(keys, psi, *boot))
    m = psi.shape[1]
    cvals, cinv = np.unique(cl, return_inverse=True)
    sums = np.stack([np.bincount(cinv, weights=psi[:, c], minlength=len(cvals)) for c in range(m)], axis=1)
    counts = np.bincount(cinv, minlength=len(cvals)).astype(np.float64)[:, None]
    wsums = None
    if boot is not None:
        rows = np.arange(len(cinv))
        onehot = sparse.csr_matrix((np.ones(len(cinv)), (cinv, rows)), shape=(len(cvals), len(cinv)))
        if w is not None:  # units of weight 0 are on neither side (as in memory)
            D, C = D & (w > 0)[:, None], C & (w > 0)[:, None]
        W = np.hstack([psi[:, :k] * D, psi[:, :k] * C, D, C])
        wsums = (cvals, np.array([0.0]), counts, np.asarray(onehot @ W)[:, None, :])
    return None, (cvals, np.array([0.0]), counts, sums[:, None, :]), wsums


def influence_totals(
    results: Iterator[tuple[Any, ...]], *, clustered: bool, boot: tuple[int, int] | None, m: int, k: int, n: int
) -> tuple[np.ndarray, np.ndarray | None, CellClusterSums | None]:
    """The blocks' :func:`psi_totals` combined: the covariance ``sigma`` (over ``n^2``), the multiplier bootstrap's
    draws (over ``n``; keyed to units, or to clusters) and the restricted wild cluster bootstrap's sums."""
    draws = None
    wcr_sums = None
    if not clustered:
        sigma = np.zeros((m, m))
        if boot is not None:
            draws = np.zeros((boot[0], m))
        for sq, _, sg in results:
            sigma += sq
            if draws is not None and sg is not None:
                draws += sg
    else:
        csum = _ClusterSums(m)
        wsum = _ClusterSums(4 * k)
        for _, cs, ws in results:
            if cs is not None:
                csum.add(*cs)
            if ws is not None:
                wsum.add(*ws)
        if csum.sums:
            present = csum.counts[0.0] > 0
            S = csum.sums[0.0][present]
        else:
            present, S = np.zeros(0, dtype=bool), np.zeros((0, m))
        sigma = S.T @ S
        if boot is not None and csum.sums:
            cluster_ids = _code_values(csum.codes, csum.capacity)[present]
            draws = signed_sums(bootstrap_keys(cluster_ids), S, *boot)
            Wc = wsum.sums[0.0][present][np.argsort(cluster_ids, kind="stable")]
            count_t, count_c = Wc[:, 2 * k : 3 * k], Wc[:, 3 * k :]
            n_t, n_c = count_t.sum(axis=0), count_c.sum(axis=0)
            # a unit's residual is psi / (n coef): coef = 1/n_t treated, -1/n_c control
            wcr_sums = CellClusterSums(count_t, count_c, Wc[:, :k] * n_t / n, -Wc[:, k : 2 * k] * n_c / n)
    if draws is not None:
        draws = draws / n
    return sigma / n**2, draws, wcr_sums
