"""Synthetic outcome-contract data with a known truth.

Each generator is deterministic given ``seed`` and returns a :class:`Simulation`
holding the data and the true effects used to make them, so estimators can be
checked for bias and interval coverage against a truth that is known exactly.

- :func:`sick_leave_sib`: a staggered-adoption panel in the spirit of Finland's
  2016 sick-leave SIB (employees in municipalities, monthly sick-leave days).
- :func:`employment_sib`: a few hundred treated citizens and a large register
  pool, a binary employment-or-education outcome (Danish employment SIBs).
- :func:`reoffending_sib`: cohorts of released prisoners and a comparison pool, a
  count of reconvictions within 12 months (Peterborough).
- :func:`single_municipality_sib`: one municipality in a programme among 30 to 98
  comparison municipalities, a yearly or monthly rate from a factor model (the
  Ballerup and Aalborg SIBs, Norrköping's fund: one municipality each, so synthetic
  control rather than clustered difference-in-differences).

All are vectorised; sizes scale to millions of rows by parameter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

__all__ = [
    "Simulation",
    "sick_leave_sib",
    "employment_sib",
    "reoffending_sib",
    "single_municipality_sib",
    "castle_like",
    "SCENARIOS",
    "SINGLE_MUNICIPALITY_CONTROLS",
]


@dataclass(frozen=True)
class Simulation:
    """Synthetic data and the truth that generated it.

    Attributes
    ----------
    data : pandas.DataFrame
        The simulated data, ready for :func:`evaluator.load_panel` or
        :func:`evaluator.load_individuals` with :attr:`columns`.
    truth : dict
        The true effects (keys documented by each generator).
    columns : dict
        The role-to-column mapping for the matching schema.
    schema : str
        Name of the schema in ``data_schemas/`` the data meet.
    params : dict
        The arguments the data were made with.
    """

    data: pd.DataFrame
    truth: dict[str, Any]
    columns: dict[str, Any]
    schema: str
    params: dict[str, Any] = field(default_factory=dict)


def _ar1(rng: np.random.Generator, n_series: int, n_periods: int, rho: float, sd: float) -> np.ndarray:
    """Stationary AR(1) shocks with marginal SD ``sd``, one row per series."""
    innov = rng.normal(0.0, sd * np.sqrt(1.0 - rho**2), size=(n_series, n_periods))
    out = np.empty_like(innov)
    out[:, 0] = rng.normal(0.0, sd, size=n_series)
    for t in range(1, n_periods):  # loop over periods, vectorised over series
        out[:, t] = rho * out[:, t - 1] + innov[:, t]
    return out


def sick_leave_sib(
    *,
    n_municipalities: int = 20,
    employees_per_municipality: int = 50,
    n_periods: int = 48,
    waves: tuple[int, ...] = (13, 25, 37),
    never_share: float = 0.4,
    effect: Literal["dynamic", "constant"] = "dynamic",
    effect_size: float = -0.6,
    municipal_sd: float = 0.15,
    municipal_rho: float = 0.0,
    attrition: float = 0.0,
    attrition_outcome: float = 0.0,
    joining: float = 0.0,
    seed: int = 0,
) -> Simulation:
    """Employees' monthly sick-leave days under staggered municipal adoption.

    Municipalities adopt an intervention in waves (cohorts given by the first
    treated month). Outcomes are Poisson counts of sick-leave days whose mean is
    additive in an employee effect, a municipality level, a seasonal cycle, a
    common trend, municipality-by-month shocks (optionally AR(1), the serially
    correlated shocks that make few-cluster inference hard) and the treatment
    effect. Municipalities with higher sick leave adopt earlier (selection on
    levels, which difference-in-differences allows). With ``effect="dynamic"`` the
    effect grows with time since adoption and differs by wave, so a static
    two-way fixed-effects estimate is biased while Callaway-Sant'Anna is not.

    With ``attrition`` or ``joining`` above 0 employees leave and join over the
    months and ``data`` is an unbalanced panel: an employee who joins is observed
    from the month of joining, one who leaves is never observed again. With
    ``attrition_outcome > 0`` a month of high sick leave raises the chance of
    leaving after it, so leavers have had more sick leave than stayers (attrition
    that depends on the outcome and, as the treatment lowers sick leave, differs
    between treated and comparison employees). The outcomes themselves are drawn
    as without attrition; attrition only removes rows. With all three at 0 (the
    default) the data are exactly those of earlier versions, seed for seed.

    Parameters
    ----------
    n_municipalities : int
        Number of municipalities (the natural cluster).
    employees_per_municipality : int
        Employees per municipality; ``n_municipalities * employees_per_municipality
        * n_periods`` rows in all (raise it for millions of rows).
    n_periods : int
        Number of months, numbered 1..n_periods.
    waves : tuple of int
        First treated month of each adoption wave; each must leave a pre-period.
    never_share : float
        Share of municipalities that never adopt (at least one adopts per wave).
    effect : {"dynamic", "constant"}
        Effect that grows with time since adoption and differs by wave, or a
        constant ``effect_size`` (two-way fixed effects is then unbiased).
    effect_size : float
        Long-run effect in days per month (negative: fewer sick days).
    municipal_sd, municipal_rho : float
        SD and AR(1) coefficient of municipality-by-month shocks.
    attrition : float
        Monthly probability, in [0, 1), that an employee observed in a month has
        left (is not observed) from the next month on; with ``attrition_outcome``
        it is the probability after a month of average sick leave.
    attrition_outcome : float
        Change in the log-odds of leaving after a month per sick-leave day above
        that month's mean over all employees (0: leaving does not depend on the
        outcome; 0.3: a month with 3 days more than average raises the odds of
        leaving by a factor of about 2.5). Needs ``attrition > 0``.
    joining : float
        Share of employees, in [0, 1), who join after the first month, each in a
        month drawn uniformly from 2..n_periods (they may then leave too).
        Joiners of an adopting municipality who arrive at or after its first
        treated month have no pre-period; :func:`evaluator.load_panel` drops them.
    seed : int
        Seed of the random generator; the same seed gives identical data.

    Returns
    -------
    Simulation
        ``data`` columns: ``employee``, ``municipality``, ``month``, ``sick_days``,
        ``first_treated`` (0 = never treated), ``age``, ``tenure``. ``truth`` keys:
        ``att_gt`` (cohort, time, att: mean over the cohort's employees of the
        expected effect), ``simple`` (mean effect over treated employee-months),
        ``dynamic`` (Series by event time, cohort-size weighted), ``group``
        (Series by cohort), ``effect_by_cohort_event`` (the effect function) and
        ``for_rows`` (a function: the same truth for a subset of the rows of
        ``data``, e.g. the panel :func:`evaluator.load_panel` returns).

        With attrition or joining the truth is computed over the rows of ``data``:
        ``att_gt`` is the average effect among the employees of cohort g *observed*
        in month t (which shifts as the observed employees change), ``simple`` the
        mean over the treated employee-months observed, ``dynamic`` cells weighted
        by the employees observed in them, and ``group_overall`` cohorts weighted
        by their employees observed from adoption on. Without attrition these are
        the cohort-size weights of Callaway and Sant'Anna.

    Examples
    --------
    >>> sim = sick_leave_sib(seed=1)
    >>> sim.data.shape
    (48000, 7)
    >>> round(sim.truth["simple"], 3) < 0
    True

    Two per cent of employees leave each month, more often after a month of
    high sick leave, and a fifth join after the first month:

    >>> sim = sick_leave_sib(seed=1, attrition=0.02, attrition_outcome=0.3, joining=0.2)
    >>> months = sim.data.groupby("employee")["month"].size()
    >>> bool(len(sim.data) < 48000 and months.min() < 48 and months.max() == 48)
    True
    >>> sim.truth["simple"] == sim.truth["for_rows"](sim.data)["simple"]
    True
    """
    _check_positive(
        n_municipalities=n_municipalities, employees_per_municipality=employees_per_municipality, n_periods=n_periods
    )
    waves = tuple(sorted(int(w) for w in waves))
    if any(w <= 1 or w > n_periods for w in waves):
        raise ValueError(f"waves {waves} must lie in 2..n_periods={n_periods} so every wave has a pre-period")
    if not 0.0 <= never_share < 1.0:
        raise ValueError(f"never_share={never_share} must be in [0, 1)")
    if effect not in ("dynamic", "constant"):
        raise ValueError(f"effect={effect!r}: use 'dynamic' or 'constant'")
    _check_attrition(attrition=attrition, attrition_outcome=attrition_outcome, joining=joining)
    n_waves = len(waves)
    if n_municipalities < n_waves + (1 if never_share > 0 else 0):
        raise ValueError(
            f"n_municipalities={n_municipalities} is too few for {n_waves} waves"
            + (" and a never-treated group" if never_share > 0 else "")
        )
    rng = np.random.default_rng(seed)
    M, E, T = n_municipalities, employees_per_municipality, n_periods

    # Municipality levels; adoption order follows them (high sick leave adopts first).
    level = rng.normal(0.0, 0.4, size=M)
    n_never = max(1, int(round(never_share * M))) if never_share > 0 else 0
    n_never = min(n_never, M - n_waves)
    counts = np.full(n_waves, (M - n_never) // n_waves)
    counts[: (M - n_never) % n_waves] += 1
    wave_of_rank = np.concatenate([np.repeat(np.array(waves), counts), np.zeros(n_never, dtype=int)])
    noisy_rank = np.argsort(np.argsort(-(level + rng.normal(0.0, 0.2, size=M))))
    cohort_m = wave_of_rank[noisy_rank]

    # Wave-specific effect paths: later waves get smaller effects.
    wave_mult = {w: 1.25 - 0.25 * i for i, w in enumerate(waves)}

    def tau(cohort: np.ndarray, month: np.ndarray) -> np.ndarray:
        e = month - cohort
        treated = (cohort > 0) & (e >= 0)
        if effect == "constant":
            return np.where(treated, effect_size, 0.0)
        mult = pd.Series(cohort).map(wave_mult).fillna(0.0).to_numpy()
        return np.where(treated, effect_size * mult * (1.0 - np.exp(-(e + 1) / 6.0)), 0.0)

    n_emp = M * E
    emp_muni = np.repeat(np.arange(M), E)
    emp_effect = rng.gamma(4.0, 0.25, size=n_emp)  # mean 1, positive
    age = rng.integers(22, 64, size=n_emp)
    tenure = np.minimum(age - 20, rng.integers(0, 30, size=n_emp))
    age_effect = 0.01 * (age - 42)

    months = np.arange(1, T + 1)
    season = 0.3 * np.cos(2 * np.pi * (months - 1) / 12.0)
    trend = 0.004 * months
    shocks = _ar1(rng, M, T, municipal_rho, municipal_sd)  # M x T

    mu0 = (
        2.0
        + emp_effect[:, None]
        + age_effect[:, None]
        + level[emp_muni][:, None]
        + season[None, :]
        + trend[None, :]
        + shocks[emp_muni, :]
    )
    cohort_e = cohort_m[emp_muni]
    effect_et = tau(np.repeat(cohort_e, T), np.tile(months, n_emp)).reshape(n_emp, T)
    mu0 = np.maximum(mu0, 0.05)
    mu1 = np.maximum(mu0 + effect_et, 0.05)
    y = rng.poisson(mu1)  # observed: treated potential outcome where treated (effect 0 elsewhere)
    # Who is observed when: drawn after the outcomes, so the default's draws (and data) are unchanged.
    present = _presence(rng, y, attrition=attrition, attrition_outcome=attrition_outcome, joining=joining)

    columns = {
        "employee": np.repeat(np.arange(1, n_emp + 1), T),
        "municipality": np.repeat(emp_muni + 1, T),
        "month": np.tile(months, n_emp),
        "sick_days": y.ravel().astype(np.int64),
        "first_treated": np.repeat(cohort_e, T).astype(np.int64),
        "age": np.repeat(age, T).astype(np.int64),
        "tenure": np.repeat(tenure, T).astype(np.int64),
    }
    effect_grid = mu1 - mu0  # employees x months, observed or not
    true_effect = effect_grid.ravel()
    if present is not None:
        keep = present.ravel()
        columns = {k: v[keep] for k, v in columns.items()}
        true_effect = true_effect[keep]
    data = pd.DataFrame(columns)
    truth = _staggered_truth(
        data["first_treated"].to_numpy(), data["month"].to_numpy(), true_effect, unit=data["employee"].to_numpy()
    )
    truth["effect_by_cohort_event"] = tau
    truth["for_rows"] = _truth_for_rows(effect_grid, cohort_e, unit="employee", time="month")
    return Simulation(
        data=data,
        truth=truth,
        columns={
            "unit": "employee",
            "time": "month",
            "outcome": "sick_days",
            "cohort": "first_treated",
            "cluster": "municipality",
            "covariates": ["age", "tenure"],
        },
        schema="panel",
        params=dict(
            n_municipalities=M,
            employees_per_municipality=E,
            n_periods=T,
            waves=waves,
            never_share=never_share,
            effect=effect,
            effect_size=effect_size,
            municipal_sd=municipal_sd,
            municipal_rho=municipal_rho,
            attrition=attrition,
            attrition_outcome=attrition_outcome,
            joining=joining,
            seed=seed,
        ),
    )


def _check_attrition(*, attrition: float, attrition_outcome: float, joining: float) -> None:
    def real(v: Any) -> bool:
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) and np.isfinite(v)

    problems = [
        f"{name}={value!r} must be a probability in [0, 1)"
        for name, value in (("attrition", attrition), ("joining", joining))
        if not (real(value) and 0.0 <= value < 1.0)
    ]
    if not real(attrition_outcome):
        problems.append(f"attrition_outcome={attrition_outcome!r} must be a finite number")
    elif attrition_outcome != 0 and real(attrition) and attrition == 0:
        problems.append(f"attrition_outcome={attrition_outcome!r} needs attrition > 0 (the leave rate it changes)")
    if problems:
        raise ValueError("; ".join(problems))


def _presence(
    rng: np.random.Generator, y: np.ndarray, *, attrition: float, attrition_outcome: float, joining: float
) -> np.ndarray | None:
    """Which unit-periods are observed (units x periods), or None when every unit is observed throughout.

    A ``joining`` share of units (exactly, rounded) enters in a period drawn
    uniformly from the 2nd to the last; a unit observed in period t leaves, and is
    not observed from t+1 on, with log-odds ``logit(attrition) + attrition_outcome *
    (y[t] - mean of y[t] over units)``. Leaving is absorbing. Vectorised over units,
    a loop over periods.
    """
    n, T = y.shape
    if attrition == 0 and joining == 0:
        return None
    entry = np.zeros(n, dtype=np.int64)  # index of the first period observed
    if joining > 0 and T > 1:
        k = int(round(joining * n))
        joiners = rng.choice(n, size=k, replace=False)
        entry[joiners] = rng.integers(1, T, size=k)
    present = np.zeros((n, T), dtype=bool)
    present[:, 0] = entry == 0
    gone = np.zeros(n, dtype=bool)
    if attrition > 0:
        base = np.log(attrition / (1.0 - attrition))
        centred = y - y.mean(axis=0, keepdims=True)
        u = rng.random((n, T - 1))
    for t in range(1, T):  # loop over periods, vectorised over units
        if attrition > 0:
            p_leave = _logistic(base + attrition_outcome * centred[:, t - 1])
            gone |= present[:, t - 1] & (u[:, t - 1] < p_leave)
        present[:, t] = (entry <= t) & ~gone
    return present


def _truth_for_rows(effect_grid: np.ndarray, cohort: np.ndarray, *, unit: str, time: str) -> Any:
    """A function giving the truth over any rows (unit ids 1..n, periods 1..T) of a generator's grid."""

    def for_rows(rows: pd.DataFrame) -> dict[str, Any]:
        """The true ATT(g,t) and aggregations over these rows (columns ``{unit}`` and ``{time}``)."""
        missing = [c for c in (unit, time) if c not in rows.columns]
        if missing:
            raise KeyError(f"for_rows needs the columns {[unit, time]}; missing {missing}")
        i = rows[unit].to_numpy(dtype=np.int64) - 1
        t = rows[time].to_numpy(dtype=np.int64) - 1
        n, T = effect_grid.shape
        if len(i) and (i.min() < 0 or i.max() >= n or t.min() < 0 or t.max() >= T):
            raise ValueError(f"rows outside the simulated grid: {unit} must be in 1..{n} and {time} in 1..{T}")
        return _staggered_truth(cohort[i], t + 1, effect_grid[i, t], unit=i + 1)

    for_rows.__doc__ = for_rows.__doc__.format(unit=unit, time=time)
    return for_rows


def _staggered_truth(
    cohort: np.ndarray, time: np.ndarray, effect: np.ndarray, *, unit: np.ndarray | None = None
) -> dict[str, Any]:
    """True ATT(g,t) and its Callaway-Sant'Anna aggregations from row-level true effects.

    Cells are weighted by their rows (units observed in them: in a balanced panel the
    cohort size); cohorts in ``group_overall`` by the units observed from their first
    treated period on, given ``unit`` (else by the rows of their first post cell).
    """
    frame = pd.DataFrame({"cohort": cohort, "time": time, "effect": effect})
    treated = frame[(frame["cohort"] > 0)]
    att_gt = treated.groupby(["cohort", "time"], as_index=False).agg(att=("effect", "mean"), n=("effect", "size"))
    att_gt["event_time"] = att_gt["time"] - att_gt["cohort"]
    post = att_gt[att_gt["event_time"] >= 0]
    # Weights as in Callaway and Sant'Anna: cohort sizes (units), equal over a cohort's periods.
    simple = float(np.average(post["att"], weights=post["n"]))
    dynamic = post.groupby("event_time").apply(lambda d: np.average(d["att"], weights=d["n"]), include_groups=False)
    group = post.groupby("cohort")["att"].mean()
    if unit is None:
        group_size = post.groupby("cohort")["n"].first()
    else:
        rows = (frame["cohort"].to_numpy() > 0) & (frame["time"].to_numpy() >= frame["cohort"].to_numpy())
        group_size = pd.Series(unit[rows]).groupby(frame["cohort"].to_numpy()[rows]).nunique().reindex(group.index)
    return {
        "att_gt": att_gt[["cohort", "time", "event_time", "att"]].reset_index(drop=True),
        "simple": simple,
        "dynamic": dynamic.rename("att"),
        "dynamic_overall": float(dynamic.mean()),
        "group": group.rename("att"),
        "group_overall": float(np.average(group, weights=group_size)),
    }


def _check_positive(**kwargs: int) -> None:
    bad = [f"{k}={v}" for k, v in kwargs.items() if not (isinstance(v, (int, np.integer)) and v > 0)]
    if bad:
        raise ValueError(f"{', '.join(bad)}: each must be a positive whole number")


def _logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


EDUCATION = ("basic", "upper_secondary", "tertiary")
DIAGNOSIS = ("none", "autism", "adhd", "other")


def employment_sib(
    *,
    n_treated: int = 300,
    n_pool: int = 30_000,
    followups: tuple[int, ...] = (6, 12, 24),
    effect: float = 0.10,
    selection: float = 1.0,
    seed: int = 0,
) -> Simulation:
    """Treated citizens in one municipality against a large register pool.

    Covariates: age, sex, education, diagnosis and the share of months employed
    in each of the three years before. Treated units are drawn with a
    probability that depends on those covariates (selection on observables, so a
    matched comparison identifies the effect), and the outcome, employed or in
    education at each follow-up, is Bernoulli with a logistic probability. The
    treatment raises the log-odds so that its average effect on the treated is
    about ``effect`` in probability.

    Parameters
    ----------
    n_treated, n_pool : int
        Sizes of the treated group and the comparison pool (scale the pool to
        millions for register-scale tests).
    followups : tuple of int
        Months after the start at which the outcome is measured.
    effect : float
        Approximate effect in probability on the treated (the exact truth is in
        ``truth``).
    selection : float
        Strength of selection on observables (0: random assignment).
    seed : int
        Seed of the random generator.

    Returns
    -------
    Simulation
        ``data`` columns: ``person_id``, ``municipality``, ``treated``, ``age``,
        ``sex``, ``education``, ``diagnosis``, ``emp_y1``, ``emp_y2``, ``emp_y3``
        and ``employed_{m}m`` for each follow-up m. ``truth`` keys: ``att``
        (dict follow-up column -> expected ATT, the mean over treated units of
        p1 - p0) and ``att_sample`` (the same with the realised potential outcomes).

    Examples
    --------
    >>> sim = employment_sib(n_pool=2_000, seed=3)
    >>> int(sim.data["treated"].sum())
    300
    """
    _check_positive(n_treated=n_treated, n_pool=n_pool)
    rng = np.random.default_rng(seed)
    n = n_treated + n_pool
    age = rng.integers(18, 60, size=n)
    sex = rng.choice(np.array(["female", "male"]), size=n)
    educ_idx = rng.choice(3, size=n, p=[0.3, 0.45, 0.25])
    diag_idx = rng.choice(4, size=n, p=[0.7, 0.1, 0.1, 0.1])
    latent = rng.normal(0.0, 1.0, size=n) + 0.4 * educ_idx - 0.5 * (diag_idx > 0)
    emp = np.clip(_logistic(latent[:, None] + rng.normal(0.0, 0.6, size=(n, 3))) * 1.1 - 0.05, 0.0, 1.0)
    emp = np.round(emp * 12) / 12  # share of months employed

    # Selection score: the treated are younger, have diagnoses and weaker histories.
    score = selection * (-0.03 * (age - 35) + 0.9 * (diag_idx > 0) - 1.2 * emp.mean(axis=1) - 0.2 * educ_idx)
    # Choose exactly n_treated units with probability proportional to exp(score) (Gumbel top-k).
    keys = score + rng.gumbel(size=n)
    treated = np.zeros(n, dtype=np.int64)
    treated[np.argpartition(-keys, n_treated - 1)[:n_treated]] = 1

    base = -1.0 + 2.0 * emp.mean(axis=1) + 0.3 * educ_idx - 0.6 * (diag_idx > 0) - 0.01 * (age - 35)
    base = base + 0.2 * (sex == "female")
    data = pd.DataFrame(
        {
            "person_id": np.arange(1, n + 1),
            "municipality": np.where(treated == 1, 1, rng.integers(2, 99, size=n)),
            "treated": treated,
            "age": age,
            "sex": sex,
            "education": np.asarray(EDUCATION)[educ_idx],
            "diagnosis": np.asarray(DIAGNOSIS)[diag_idx],
            "emp_y1": emp[:, 0],
            "emp_y2": emp[:, 1],
            "emp_y3": emp[:, 2],
        }
    )
    # Log-odds shift giving roughly `effect` on the treated's probability scale.
    shift = effect / 0.2
    att, att_sample = {}, {}
    outcomes = []
    for m in followups:  # a handful of follow-ups, vectorised over people
        p0 = _logistic(base + 0.01 * m)
        p1 = _logistic(base + 0.01 * m + shift)
        u = rng.random(n)
        y0, y1 = (u < p0).astype(np.int64), (u < p1).astype(np.int64)
        col = f"employed_{m}m"
        data[col] = np.where(treated == 1, y1, y0)
        att[col] = float((p1 - p0)[treated == 1].mean())
        att_sample[col] = float((y1 - y0)[treated == 1].mean())
        outcomes.append(col)
    return Simulation(
        data=data,
        truth={"att": att, "att_sample": att_sample},
        columns={
            "unit": "person_id",
            "treat": "treated",
            "covariates": ["age", "sex", "education", "diagnosis", "emp_y1", "emp_y2", "emp_y3"],
            "outcome": outcomes,
            "cluster": "municipality",
        },
        schema="individuals",
        params=dict(
            n_treated=n_treated,
            n_pool=n_pool,
            followups=tuple(followups),
            effect=effect,
            selection=selection,
            seed=seed,
        ),
    )


def reoffending_sib(
    *,
    n_cohorts: int = 2,
    cohort_size: int = 500,
    n_pool: int = 20_000,
    effect: float = -0.10,
    seed: int = 0,
) -> Simulation:
    """Cohorts of released prisoners and a national comparison pool.

    The outcome is the number of reconviction events within 12 months of
    release, Poisson with a rate that depends on age, sex, prior convictions,
    sentence length and offence type. The intervention multiplies the rate by
    ``1 + effect`` (``-0.10``: ten per cent fewer events, Peterborough's
    threshold for a cohort payment). Treated prisoners differ from the pool on
    those covariates.

    Parameters
    ----------
    n_cohorts, cohort_size : int
        Number of release cohorts and treated prisoners per cohort.
    n_pool : int
        Comparison pool size (all cohorts).
    effect : float
        Proportional change in the reconviction rate of the treated.
    seed : int
        Seed of the random generator.

    Returns
    -------
    Simulation
        ``data`` columns: ``prisoner_id``, ``cohort`` (release cohort 1..n_cohorts),
        ``treated``, ``age``, ``sex``, ``prior_convictions``, ``sentence_months``,
        ``offence``, ``reconvictions_12m``. ``truth`` keys: ``att`` (expected events
        per treated prisoner, overall), ``att_by_cohort``, ``relative`` (the effect
        as a share of the treated's counterfactual rate).

    Examples
    --------
    >>> sim = reoffending_sib(n_pool=1_000, seed=2)
    >>> sorted(sim.data["cohort"].unique().tolist())
    [1, 2]
    """
    _check_positive(n_cohorts=n_cohorts, cohort_size=cohort_size, n_pool=n_pool)
    if not -1.0 < effect:
        raise ValueError(f"effect={effect} must be above -1 (a proportional change in the rate)")
    rng = np.random.default_rng(seed)
    n_t = n_cohorts * cohort_size
    n = n_t + n_pool
    treated = np.r_[np.ones(n_t, dtype=np.int64), np.zeros(n_pool, dtype=np.int64)]
    cohort = np.r_[np.repeat(np.arange(1, n_cohorts + 1), cohort_size), rng.integers(1, n_cohorts + 1, size=n_pool)]
    # Short-sentence prisoners (Peterborough's group) are younger with more priors.
    age = np.where(treated == 1, rng.normal(29, 7, size=n), rng.normal(34, 10, size=n)).clip(18, 80).round()
    sex = np.where(rng.random(n) < np.where(treated == 1, 0.95, 0.88), "male", "female")
    priors = rng.poisson(np.where(treated == 1, 6.0, 3.5))
    sentence = np.where(treated == 1, rng.integers(1, 12, size=n), rng.integers(1, 36, size=n))
    offence = rng.choice(np.array(["theft", "violence", "drugs", "other"]), size=n, p=[0.4, 0.25, 0.2, 0.15])
    log_rate = (
        -0.3
        - 0.02 * (age - 30)
        + 0.08 * np.minimum(priors, 15)
        + 0.15 * (sex == "male")
        + 0.2 * (offence == "theft")
        - 0.01 * sentence
    )
    rate0 = np.exp(log_rate)
    rate1 = rate0 * (1.0 + effect)
    y = rng.poisson(np.where(treated == 1, rate1, rate0))
    data = pd.DataFrame(
        {
            "prisoner_id": np.arange(1, n + 1),
            "cohort": cohort,
            "treated": treated,
            "age": age.astype(np.int64),
            "sex": sex,
            "prior_convictions": priors.astype(np.int64),
            "sentence_months": sentence.astype(np.int64),
            "offence": offence,
            "reconvictions_12m": y.astype(np.int64),
        }
    )
    diff = (rate1 - rate0)[treated == 1]
    by_cohort = pd.Series(diff).groupby(cohort[treated == 1]).mean()
    return Simulation(
        data=data,
        truth={
            "att": float(diff.mean()),
            "att_by_cohort": {int(k): float(v) for k, v in by_cohort.items()},
            "relative": float(diff.sum() / rate0[treated == 1].sum()),
        },
        columns={
            "unit": "prisoner_id",
            "treat": "treated",
            "covariates": ["age", "sex", "prior_convictions", "sentence_months", "offence"],
            "outcome": ["reconvictions_12m"],
            "cohort": "cohort",
        },
        schema="individuals",
        params=dict(n_cohorts=n_cohorts, cohort_size=cohort_size, n_pool=n_pool, effect=effect, seed=seed),
    )


#: The comparison municipalities :func:`single_municipality_sib` accepts: enough for a placebo p-value below
#: 0.05 (30 give 1/31), and at most 98 (the Nordic countries' larger regions have about that many municipalities).
SINGLE_MUNICIPALITY_CONTROLS = (30, 98)


def single_municipality_sib(
    *,
    n_control: int = 40,
    n_pre: int = 12,
    n_post: int = 6,
    frequency: Literal["year", "month"] = "year",
    effect: float = -3.0,
    first_year: int = 2010,
    level: float = 60.0,
    n_donors: int = 5,
    seed: int = 0,
) -> Simulation:
    r"""One municipality in a programme among ``n_control`` comparison municipalities: a factor model.

    The outcome is psychiatric readmissions within 30 days per 1,000 residents, one
    value per municipality and period: a municipality effect, a common trend, two
    common factors (random walks) with municipality-specific loadings, and noise,

    .. math:: y_{it} = \ell + \alpha_i + 0.3 t + \lambda_i' f_t + \varepsilon_{it} + \tau D_{it},

    with :math:`f_t` the cumulative sum of standard normal steps (two columns),
    :math:`\lambda_i \sim N(0, I_2)`, :math:`\alpha_i \sim N(0, 2^2)` and
    :math:`\varepsilon_{it} \sim N(0, 0.5^2)`: the model of ``tests/test_synthetic.py``. The
    programme municipality (``Municipality 01``) is a convex mix of ``n_donors`` comparison
    municipalities, in its effect and its loadings, so it lies inside the comparison
    municipalities' convex hull (a synthetic control can reproduce its path); its own noise is
    drawn as theirs. From period ``n_pre + 1`` on its outcome moves by ``effect`` (constant,
    known exactly). Municipalities on their own are not named after real ones.

    Parameters
    ----------
    n_control : int
        Comparison municipalities, 30 to 98 (:data:`SINGLE_MUNICIPALITY_CONTROLS`): 30 is the
        fewest for a placebo p-value below 0.05 (1/31).
    n_pre, n_post : int
        Periods before the programme (at least 4) and in it (at least 1).
    frequency : {"year", "month"}
        Yearly periods numbered from ``first_year`` (column ``year``) or monthly periods
        numbered 1, 2, ... (column ``month``).
    effect : float
        The true effect on the outcome, in readmissions per 1,000 residents (negative: fewer).
    first_year : int
        The first year (``frequency="year"``).
    level : float
        The outcome's average level (readmissions per 1,000 residents).
    n_donors : int
        How many comparison municipalities the programme municipality is a mix of.
    seed : int
        Seed of the random generator.

    Returns
    -------
    Simulation
        ``data`` columns: ``municipality`` ("Municipality 01" is in the programme, then
        "Municipality 02" ...), ``year`` or ``month``, ``readmissions`` (per 1,000 residents),
        ``treated`` (1 for the programme municipality in its programme periods) and
        ``first_treated`` (its first programme period; 0 for the others). ``truth`` keys:
        ``att`` (the effect averaged over the programme periods, ``effect``), ``effect``,
        ``treated_unit``, ``first_treated``, ``donors`` (the comparison municipalities the
        programme municipality is a mix of, with their mixing weights).

    Examples
    --------
    >>> sim = single_municipality_sib(seed=1)
    >>> sim.data.shape
    (738, 5)
    >>> sim.truth["att"], sim.truth["treated_unit"]
    (-3.0, 'Municipality 01')
    >>> single_municipality_sib(n_control=12)
    Traceback (most recent call last):
    ...
    ValueError: n_control=12: a single treated municipality needs 30 to 98 comparison municipalities ...
    """
    low, high = SINGLE_MUNICIPALITY_CONTROLS
    if isinstance(n_control, bool) or not isinstance(n_control, (int, np.integer)) or not low <= n_control <= high:
        raise ValueError(
            f"n_control={n_control!r}: a single treated municipality needs {low} to {high} comparison municipalities "
            f"({low} is the fewest for a placebo p-value below 0.05); choose n_control between {low} and {high}"
        )
    _check_positive(n_pre=n_pre, n_post=n_post, n_donors=n_donors)
    if n_pre < 4:
        raise ValueError(f"n_pre={n_pre}: need at least 4 periods before the programme to fit a synthetic comparison")
    if n_donors > n_control:
        raise ValueError(f"n_donors={n_donors}: at most n_control={n_control} comparison municipalities")
    if frequency not in ("year", "month"):
        raise ValueError(f"frequency={frequency!r}: use 'year' or 'month'")
    if not np.isfinite(effect):
        raise ValueError(f"effect={effect!r}: expected a finite number")
    rng = np.random.default_rng(seed)
    n, T = n_control + 1, n_pre + n_post
    # the draws of tests/test_synthetic.py's _factor_panel (controls first here, the treated unit last)
    f = np.cumsum(rng.normal(0.0, 1.0, (T, 2)), axis=0)
    load = rng.normal(0.0, 1.0, (n, 2))
    alpha = rng.normal(0.0, 2.0, n)
    noise = rng.normal(0.0, 0.5, (n, T))
    # the programme municipality: a convex mix of a few comparison municipalities, in effect and loadings
    donors = np.sort(rng.choice(n_control, size=n_donors, replace=False))
    mix = rng.dirichlet(np.ones(n_donors))
    load[-1] = mix @ load[donors]
    alpha[-1] = mix @ alpha[donors]
    y0 = level + alpha[:, None] + 0.3 * np.arange(T)[None, :] + load @ f.T + noise
    treat = np.zeros((n, T), dtype=np.int64)
    treat[-1, n_pre:] = 1
    y = y0 + effect * treat
    # the programme municipality first, as a report would list it
    order = np.r_[n - 1, np.arange(n_control)]
    names = np.array([f"Municipality {i + 1:02d}" for i in range(n)])
    periods = np.arange(first_year, first_year + T) if frequency == "year" else np.arange(1, T + 1)
    start = int(periods[n_pre])
    time = "year" if frequency == "year" else "month"
    data = pd.DataFrame(
        {
            "municipality": np.repeat(names, T),
            time: np.tile(periods, n).astype(np.int64),
            "readmissions": y[order].ravel(),
            "treated": treat[order].ravel(),
            "first_treated": np.repeat(np.r_[start, np.zeros(n_control, dtype=np.int64)], T).astype(np.int64),
        }
    )
    # comparison municipality j (0-based among the controls) is named "Municipality {j + 2:02d}"
    donor_names = [str(names[j + 1]) for j in donors]
    return Simulation(
        data=data,
        truth={
            "att": float(effect),
            "effect": float(effect),
            "treated_unit": str(names[0]),
            "first_treated": start,
            "donors": dict(zip(donor_names, mix.tolist(), strict=True)),
        },
        columns={
            "unit": "municipality",
            "time": time,
            "outcome": "readmissions",
            "treatment": "treated",
            "cohort": "first_treated",
        },
        schema="panel",
        params=dict(
            n_control=int(n_control),
            n_pre=n_pre,
            n_post=n_post,
            frequency=frequency,
            effect=effect,
            first_year=first_year,
            level=level,
            n_donors=n_donors,
            seed=seed,
        ),
    )


def castle_like(
    *,
    cohort_sizes: dict[int, int] | None = None,
    n_never: int = 29,
    years: tuple[int, int] = (2000, 2010),
    effect: float = 0.08,
    pretrend: float = 0.0,
    noise_sd: float = 0.1,
    seed: int = 0,
) -> Simulation:
    """A state-by-year panel shaped like the castle-doctrine data: few states per adoption cohort.

    The castle-doctrine panel (Cheng and Hoekstra 2013) has 50 states over 2000-2010,
    with cohorts that adopted the law of one to thirteen states each. That shape is
    what breaks careless reporting: cells ATT(g, t) that rest on one state, joint
    pre-trend tests driven by them, and bootstrap bands built on single clusters.
    The outcome is a log rate with state and year effects and AR-free noise; the law
    adds ``effect`` from its first year on. ``pretrend`` adds a linear trend of that
    slope per year, before adoption, to every cohort of a single state (so a failed
    pre-trend test rests on one-state cells, as on the real data).

    Parameters
    ----------
    cohort_sizes : dict, optional
        Adoption year -> number of states. Default ``{2005: 1, 2006: 13, 2007: 4,
        2008: 2, 2009: 1}``.
    n_never : int
        States that never adopt.
    years : tuple of int
        First and last year.
    effect : float
        The true effect on the log rate (constant from the first year on).
    pretrend : float
        Slope of the pre-adoption trend of the one-state cohorts.
    noise_sd : float
        SD of the state-year noise.
    seed : int
        Seed of the random generator.

    Returns
    -------
    Simulation
        ``data`` columns: ``state``, ``year``, ``effyear`` (adoption year, 0 for never),
        ``region`` (4 regions), ``population``, ``l_homicide``. ``truth`` keys as
        :func:`sick_leave_sib` (``att_gt``, ``simple``, ``dynamic``, ``group`` ...).

    Examples
    --------
    >>> sim = castle_like(seed=1)
    >>> sim.data.groupby("effyear")["state"].nunique().to_dict()
    {0: 29, 2005: 1, 2006: 13, 2007: 4, 2008: 2, 2009: 1}
    """
    sizes = dict(cohort_sizes or {2005: 1, 2006: 13, 2007: 4, 2008: 2, 2009: 1})
    _check_positive(n_never=n_never, **{f"cohort_{g}": k for g, k in sizes.items()})
    first, last = years
    if last <= first:
        raise ValueError(f"years={years}: the last year must come after the first")
    rng = np.random.default_rng(seed)
    cohort = np.concatenate(
        [np.zeros(n_never, dtype=np.int64), *[np.full(k, g, dtype=np.int64) for g, k in sizes.items()]]
    )
    n_states = len(cohort)
    year = np.arange(first, last + 1)
    n_years = len(year)
    state_fe = rng.normal(1.5, 0.5, size=n_states)
    year_fe = np.cumsum(rng.normal(0.0, 0.03, size=n_years))
    g = np.repeat(cohort, n_years)
    t = np.tile(year, n_states)
    treated_now = (g > 0) & (t >= g)
    single = np.isin(g, [c for c, k in sizes.items() if k == 1])
    trend = np.where(single & (t < g), pretrend * (t - g), 0.0)
    true_effect = np.where(treated_now, effect, 0.0)
    y = np.repeat(state_fe, n_years) + np.tile(year_fe, n_states) + trend + true_effect
    y = y + rng.normal(0.0, noise_sd, size=len(y))
    data = pd.DataFrame(
        {
            "state": np.repeat(np.arange(1, n_states + 1), n_years),
            "year": t,
            "effyear": g,
            "region": np.repeat(rng.integers(1, 5, size=n_states), n_years),
            "population": np.repeat(rng.integers(500_000, 20_000_000, size=n_states), n_years),
            "l_homicide": y,
        }
    )
    truth = _staggered_truth(g, t, true_effect)
    truth["effect"] = effect
    return Simulation(
        data=data,
        truth=truth,
        columns={"unit": "state", "time": "year", "outcome": "l_homicide", "cohort": "effyear", "cluster": "state"},
        schema="panel",
        params=dict(
            cohort_sizes=sizes,
            n_never=n_never,
            years=years,
            effect=effect,
            pretrend=pretrend,
            noise_sd=noise_sd,
            seed=seed,
        ),
    )


#: Scenario name -> generator, for the command line and the demo.
SCENARIOS = {
    "sick_leave_sib": sick_leave_sib,
    "employment_sib": employment_sib,
    "reoffending_sib": reoffending_sib,
    "single_municipality_sib": single_municipality_sib,
}
