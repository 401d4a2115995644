r"""HonestDiD sensitivity analysis of an event study (Rambachan and Roth 2023): ``honest_did``.

How wrong could parallel trends be before the conclusion changes? ``honest_did`` takes the
event-time estimates and their covariance from an :func:`~evaluator.event_study` result, a
:func:`~evaluator.staggered_did` result (aggregated by event time here, with the covariance from the
influence functions), or given ``betahat`` and ``sigma``, and returns confidence sets for the effect
when post-treatment violations of parallel trends are bounded

- relative to the pre-treatment violations (``method="relative_magnitude"``, :math:`\Delta^{RM}(\bar M)`:
  no post-treatment change of trend larger than :math:`\bar M` times the largest pre-treatment change;
  the C-LF hybrid set of HonestDiD), or
- by smoothness (``method="smoothness"``, :math:`\Delta^{SD}(M)`: the slope of the trend changes by at
  most :math:`M` per period; the FLCI of HonestDiD).

The numerics live in :mod:`evaluator.inference.honest`; this module reads results and presents.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from evaluator.errors import DesignError
from evaluator.estimators.design import choice
from evaluator.files import jsonable
from evaluator.formatting import fmt
from evaluator.inference.honest import (
    check_inputs,
    flci_smoothness,
    original_ci,
    rm_conditional_cs,
    rm_conditional_sets,
)
from evaluator.results.base import Result
from evaluator.results.display import Display, Shown

__all__ = ["HonestResult", "honest_did"]

HonestMethod = Literal["relative_magnitude", "smoothness"]

_DEFAULT_MBAR = (0.5, 1.0, 1.5, 2.0)  # HonestDiD README's Mbarvec
_DEFAULT_M = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05)  # only sensible on the outcome's scale; see honest_did


@dataclass(frozen=True, repr=False)
class HonestResult(Display):
    """Confidence sets for the target effect at each bound on the violation of parallel trends.

    Read it with :meth:`to_frame` (one row per M̄ or M: ``m``, ``ci_low``, ``ci_high``, ``method``, and
    the parallel-trends interval ``original_low`` / ``original_high``), :meth:`breakdown` and :meth:`plot`.
    """

    method: str
    table: pd.DataFrame
    original: tuple[float, float]
    estimate: float
    alpha: float
    betahat: np.ndarray = field(repr=False)
    sigma: np.ndarray = field(repr=False)
    n_pre: int = 0
    n_post: int = 0
    l_vec: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)
    target: str = "first"
    event_times: tuple[float, ...] = ()
    notes: tuple[str, ...] = ()
    options: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- reading it ------------------------------------------------------------------------------------
    @property
    def bound_name(self) -> str:
        return "Mbar" if self.method == "relative_magnitude" else "M"

    def to_frame(self) -> pd.DataFrame:
        """One row per bound: ``m``, ``ci_low``, ``ci_high``, ``method``, ``original_low``, ``original_high``."""
        return self.table.copy()

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe content (for report sidecars)."""
        return jsonable(
            {
                "method": self.method,
                "target": self.target,
                "l_vec": self.l_vec,
                "alpha": self.alpha,
                "estimate": self.estimate,
                "original": list(self.original),
                "n_pre": self.n_pre,
                "n_post": self.n_post,
                "table": self.table,
                "notes": list(self.notes),
            }
        )

    def confidence_set(self, m: float) -> tuple[float, float]:
        """The set at one bound ``m`` (M̄ or M), computed afresh."""
        return _one(self, float(m))

    def breakdown(self, *, value: float = 0.0, tol: float | None = None, upper: float | None = None) -> float:
        """The smallest M̄ (or M) at which the confidence set includes ``value`` (zero by default).

        With ``value`` a contract's threshold (as an effect in the outcome's units), it is the
        smallest violation of parallel trends at which the evaluation could no longer say, with
        its confidence, that the effect is beyond the threshold.

        Found by bisection on the bound (not read off the table's grid of bounds) to ``tol``
        (1e-4 for M̄; 1e-4 times the effect's standard error for M). ``0.0`` when even exact
        parallel trends do not exclude zero; ``inf`` when no bound up to ``upper`` includes it.
        For relative magnitudes, "includes zero" means the test of the effect 0 accepts.
        """
        se = math.sqrt(float(self.l_vec @ self.sigma[self.n_pre :, self.n_pre :] @ self.l_vec))
        if tol is None:
            tol = 1e-4 if self.method == "relative_magnitude" else 1e-4 * se
        if _includes_zero(self, 0.0, value):
            return 0.0
        # bracket by doubling from one unit (M-bar) or one standard error (M), up to `upper`
        cap = float(upper) if upper is not None else (100.0 if self.method == "relative_magnitude" else 100.0 * se)
        lo, hi = 0.0, min(1.0 if self.method == "relative_magnitude" else se, cap)
        while not _includes_zero(self, hi, value):
            if hi >= cap:
                return math.inf
            lo, hi = hi, min(2 * hi, cap)
        while hi - lo > tol:
            mid = (lo + hi) / 2
            if _includes_zero(self, mid, value):
                hi = mid
            else:
                lo = mid
        return hi

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Sensitivity plot: the set at each bound beside the original interval (matplotlib Figure)."""
        from evaluator.plots.honest import sensitivity

        return sensitivity(self, ax=ax, **kwargs)

    # -- what Display shows -------------------------------------------------------------------------------
    def _title(self) -> str:
        kind = "relative magnitudes" if self.method == "relative_magnitude" else "smoothness"
        return f"HonestDiD sensitivity ({kind})"

    def _headline(self) -> list[str]:
        level = round(100 * (1 - self.alpha))
        lo, hi = self.original
        return [
            f"Target: {self.target}; estimate {fmt(self.estimate)}, {level}% CI under parallel trends "
            f"[{fmt(lo)}, {fmt(hi)}]"
        ]

    def _facts(self) -> list[tuple[str, str]]:
        how = (
            "C-LF hybrid (conditional / least favourable), test inversion over a grid"
            if self.method == "relative_magnitude"
            else "FLCI (optimal fixed-length interval)"
        )
        return [
            ("Pre-periods", str(self.n_pre)),
            ("Post-periods", str(self.n_post)),
            ("Confidence set", how),
        ]

    def _tables(self) -> list[Shown]:
        return [("", self.table, fmt)]

    def __repr__(self) -> str:
        lo, hi = self.original
        return f"<HonestResult {self.method}: {len(self.table)} bounds, original CI [{fmt(lo)}, {fmt(hi)}]>"


def _one(res: HonestResult, m: float, **grid: Any) -> tuple[float, float]:
    if res.method == "relative_magnitude":
        r = rm_conditional_cs(
            res.betahat, res.sigma, res.n_pre, res.n_post, res.l_vec, mbar=m, alpha=res.alpha, **res.options, **grid
        )
        return r.ci_low, r.ci_high
    f = flci_smoothness(res.betahat, res.sigma, res.n_pre, res.n_post, res.l_vec, m=m, alpha=res.alpha, **res.options)
    return f.ci_low, f.ci_high


def _includes_zero(res: HonestResult, m: float, value: float = 0.0) -> bool:
    if res.method == "relative_magnitude":
        # test the value 0 itself: a grid of one point, so the answer does not depend on the grid's step
        opts = {k: v for k, v in res.options.items() if k not in ("grid_points", "grid", "grid_lb", "grid_ub")}
        r = rm_conditional_cs(
            res.betahat,
            res.sigma,
            res.n_pre,
            res.n_post,
            res.l_vec,
            mbar=m,
            alpha=res.alpha,
            grid_points=1,
            grid_lb=value,
            grid_ub=value,
            **opts,
        )
        return bool(r.accept[0])
    lo, hi = _one(res, m)
    return lo <= value <= hi


# -- reading results ---------------------------------------------------------------------------------------------------
def _from_result(result: Any, min_e: float, max_e: float) -> tuple[np.ndarray, np.ndarray, int, list[float], list[str]]:
    """(betahat, sigma, n_pre, event times, notes) from an event study or a staggered DiD result."""
    from evaluator.estimators.staggered import StaggeredResult

    if isinstance(result, StaggeredResult):
        return _from_staggered(result, min_e, max_e)
    if not isinstance(result, Result):
        raise DesignError(
            f"result must be an event_study(...) or staggered_did(...) result; got {type(result).__name__}. "
            "Or pass betahat=, sigma= and n_pre="
        )
    table = result.table
    if "event_time" not in table.columns:
        raise DesignError(
            "result has no event-time estimates (no 'event_time' column): pass an event_study(...) result, "
            "a staggered_did(...) result or its .aggregate('dynamic')"
        )
    vcov = result.info.get("vcov")
    if not isinstance(vcov, pd.DataFrame):
        raise DesignError(
            "result does not carry the covariance of its event-time estimates (info['vcov']); "
            "for staggered DiD pass the staggered_did(...) result itself (honest_did aggregates it by event time "
            "with the influence-function covariance), or pass betahat= and sigma="
        )
    ref = result.info.get("reference")
    rows = table[table["event_time"].notna() & table["std_error"].notna()]
    if ref is not None:
        rows = rows[rows["event_time"] != ref]
    rows = rows[(rows["event_time"] >= min_e) & (rows["event_time"] <= max_e)]
    rows = rows.sort_values("event_time")
    terms = rows["term"].tolist()
    missing = [t for t in terms if t not in vcov.index]
    if missing:
        raise DesignError(f"the covariance of result lacks the terms {missing}")
    b = rows["estimate"].to_numpy(float)
    S = vcov.loc[terms, terms].to_numpy(float)
    e = rows["event_time"].to_numpy(float)
    return b, S, int((e < 0).sum()), e.tolist(), []


def _from_staggered(res: Any, min_e: float, max_e: float) -> tuple[np.ndarray, np.ndarray, int, list[float], list[str]]:
    """The event-time estimates of ``res.aggregate('dynamic')`` and their influence-function covariance."""
    b, S, n_pre, evs, notes = _from_result(res.aggregate("dynamic"), min_e, max_e)
    if res.info.get("base_period") == "varying":
        notes.append(
            "the staggered DiD used base_period='varying': its pre-period estimates are period-to-period changes, "
            "not the cumulative pre-trends the restrictions are written for; refit with base_period='universal'"
        )
    return b, S, n_pre, evs, notes


def _target(target: str | Sequence[float] | np.ndarray, n_post: int) -> tuple[np.ndarray, str]:
    if isinstance(target, str):
        choice("target", target, ("first", "average"))
        if target == "first":
            l = np.zeros(n_post)
            l[0] = 1.0
            return l, "first post-period"
        return np.full(n_post, 1.0 / n_post), f"average of the {n_post} post-periods"
    l = np.asarray(target, dtype=float).ravel()
    if l.size != n_post:
        raise DesignError(f"target has {l.size} weights but there are {n_post} post-periods")
    return l, "weights " + ", ".join(fmt(v) for v in l)


def honest_did(
    result: Any = None,
    *,
    betahat: Sequence[float] | np.ndarray | None = None,
    sigma: np.ndarray | None = None,
    n_pre: int | None = None,
    method: HonestMethod = "relative_magnitude",
    mbar: Sequence[float] | float | None = None,
    m: Sequence[float] | float | None = None,
    target: Literal["first", "average"] | Sequence[float] = "first",
    alpha: float = 0.05,
    grid_points: int = 1000,
    grid: Literal["centered", "zero"] = "centered",
    n_sims: int = 1000,
    seed: int = 0,
    min_e: float = -math.inf,
    max_e: float = math.inf,
    folded_normal: Literal["exact", "r"] = "exact",
) -> HonestResult:
    r"""Sensitivity of an event study to violations of parallel trends (Rambachan and Roth 2023).

    Parameters
    ----------
    result : Result or StaggeredResult, optional
        An :func:`~evaluator.event_study` result, or a :func:`~evaluator.staggered_did` result
        (aggregated by event time here, as ``.aggregate("dynamic")``, with the covariance of the
        influence functions; fit it with ``base_period="universal"``). Pre-periods are the event times
        below 0 other than the reference period.
    betahat, sigma, n_pre : optional
        Instead of ``result``: coefficients (pre-periods first, the reference period left out), their
        covariance and the number of pre-periods, as HonestDiD's ``createSensitivityResults``.
    method : {"relative_magnitude", "smoothness"}
        :math:`\Delta^{RM}(\bar M)` with the C-LF hybrid set, or :math:`\Delta^{SD}(M)` with the FLCI.
    mbar : float or sequence, optional
        Values of :math:`\bar M` (relative magnitudes); 0.5, 1, 1.5, 2 by default.
    m : float or sequence, optional
        Values of :math:`M` (smoothness), on the outcome's scale (change of slope per period); by
        default 0 to 2 standard errors of the target in 6 steps.
    target : {"first", "average"} or sequence of float
        The effect: the first post-period, the average over the post-periods, or weights over them.
    alpha : float
        1 - coverage.
    grid_points, grid, n_sims, seed
        Relative magnitudes only: the test-inversion grid (``grid_points`` values, centred on the estimate
        as R HonestDiD 0.2.6+ or on zero as before; see
        :func:`evaluator.inference.honest.rm_conditional_cs`) and the draws (with R's generator and seed)
        for the least-favourable critical value; HonestDiD's defaults.
    min_e, max_e : float
        With ``result``: the event times kept (as ``aggregate("dynamic", min_e=, max_e=)``).
    folded_normal : {"exact", "r"}
        Smoothness only: the FLCI's folded-normal quantile solved exactly (deterministic, the default)
        or simulated with R's draws as R HonestDiD does, to reproduce R's numbers digit for digit.

    Returns
    -------
    HonestResult

    Raises
    ------
    DesignError
        Too few pre-periods for the restriction, a ``sigma`` that is not symmetric positive
        semi-definite, wrong shapes, a result without event-time estimates.

    Notes
    -----
    With :math:`\hat\beta = \delta + (0, \tau_{post})`, the target :math:`\theta = \ell'\tau_{post}` is
    partially identified once the bias :math:`\delta` may violate parallel trends within a set
    :math:`\Delta`. :math:`\Delta^{RM}(\bar M)` requires
    :math:`|\delta_{t+1}-\delta_t| \le \bar M \max_{s<0}|\delta_{s+1}-\delta_s|` after treatment;
    :math:`\Delta^{SD}(M)` requires :math:`|(\delta_{t+1}-\delta_t)-(\delta_t-\delta_{t-1})| \le M`
    throughout (:math:`\delta_0 = 0` at the reference period). The identifying assumption is that the
    violation lies in the chosen set; :math:`\bar M = 0` or :math:`M = 0` with linear trends is the
    usual parallel-trends analysis.

    Examples
    --------
    >>> import numpy as np
    >>> b = np.array([0.001, -0.002, 0.0, 0.05, 0.06])
    >>> S = np.eye(5) * 1e-4
    >>> r = honest_did(betahat=b, sigma=S, n_pre=3, mbar=[0.5, 1.0])
    >>> r.to_frame()[["m", "ci_low", "ci_high"]].shape
    (2, 3)
    >>> bool(r.to_frame()["ci_low"].iloc[0] > 0)
    True
    """
    choice("method", method, ("relative_magnitude", "smoothness"))
    choice("folded_normal", folded_normal, ("exact", "r"))
    notes: list[str] = []
    event_times: list[float] = []
    if result is not None:
        if betahat is not None or sigma is not None or n_pre is not None:
            raise DesignError("give either result= or betahat=, sigma= and n_pre=, not both")
        b, S, npre, event_times, notes = _from_result(result, min_e, max_e)
    else:
        if betahat is None or sigma is None or n_pre is None:
            raise DesignError("without result=, give betahat=, sigma= and n_pre= (the number of pre-periods)")
        b = np.asarray(betahat, dtype=float).ravel()
        S = np.asarray(sigma, dtype=float)
        npre = n_pre
    if int(npre) != npre or npre < 0:
        raise DesignError(f"n_pre={npre} must be a whole number >= 0")
    npre = int(npre)
    npost = b.size - npre
    if npost < 1:
        raise DesignError(f"n_pre={npre} leaves no post-period among the {b.size} coefficients of betahat")
    if npre < 1:
        raise DesignError(
            f"method={method!r} needs at least 1 pre-period (besides the reference period); n_pre={npre}. "
            "Estimate more leads"
        )
    if not 0 < alpha < 1:
        raise DesignError(f"alpha={alpha} must be between 0 and 1")
    l, label = _target(target, npost)
    b, S, l = check_inputs(b, S, npre, npost, l)
    post = slice(npre, npre + npost)
    est = float(l @ b[post])
    se = math.sqrt(float(l @ S[post, post] @ l))
    orig = original_ci(b, S, npre, npost, l, alpha)
    if method == "relative_magnitude":
        if m is not None:
            raise DesignError("m= is the smoothness bound; for method='relative_magnitude' give mbar=")
        bounds = _DEFAULT_MBAR if mbar is None else mbar
    else:
        if mbar is not None:
            raise DesignError("mbar= is the relative-magnitudes bound; for method='smoothness' give m=")
        bounds = tuple(np.linspace(0, 2 * se, 6)) if m is None else m
    vals = np.atleast_1d(np.asarray(bounds, dtype=float))
    if vals.size == 0 or not np.isfinite(vals).all() or (vals < 0).any():
        name = "mbar" if method == "relative_magnitude" else "m"
        raise DesignError(f"{name} must be finite numbers >= 0; got {vals.tolist()}")
    choice("grid", grid, ("centered", "zero"))
    options = {"grid_points": int(grid_points), "grid": grid, "n_sims": int(n_sims), "seed": int(seed)}
    opts: dict[str, Any] = options if method == "relative_magnitude" else {"folded_normal": folded_normal}
    rows = []
    at_edge: list[float] = []
    steps: list[float] = []
    # relative magnitudes: every Mbar in one stacked pass
    sets = rm_conditional_sets(b, S, npre, npost, l, vals, alpha, **opts) if method == "relative_magnitude" else []
    for q, v in enumerate(vals):
        if method == "relative_magnitude":
            r = sets[q]
            lo, hi = r.ci_low, r.ci_high
            if r.open_low or r.open_high:
                at_edge.append(float(v))
            steps.append(float(r.grid[1] - r.grid[0]) if r.grid.size > 1 else 0.0)
        else:
            f = flci_smoothness(b, S, npre, npost, l, m=float(v), alpha=alpha, **opts)
            lo, hi = f.ci_low, f.ci_high
        rows.append((float(v), lo, hi))
    table = pd.DataFrame(rows, columns=["m", "ci_low", "ci_high"])
    table["method"] = "C-LF" if method == "relative_magnitude" else "FLCI"
    table["original_low"], table["original_high"] = orig
    if method == "relative_magnitude":
        if at_edge:
            notes.append(
                f"at Mbar = {', '.join(fmt(x) for x in at_edge)} the set reaches an end of the test grid: "
                "it is at least that wide"
            )
        if table["ci_low"].isna().any():
            notes.append("at some Mbar no value on the grid was accepted: the confidence set is empty there")
        notes.append(
            f"relative-magnitude bounds are read off a grid of {int(grid_points)} points "
            f"(steps {fmt(min(steps))} to {fmt(max(steps))})"
        )
    return HonestResult(
        method=method,
        table=table,
        original=orig,
        estimate=est,
        alpha=alpha,
        betahat=b,
        sigma=S,
        n_pre=npre,
        n_post=npost,
        l_vec=l,
        target=label,
        event_times=tuple(event_times),
        notes=tuple(notes),
        options=opts,
    )
