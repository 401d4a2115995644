"""Benchmark ``evaluator.staggered_did`` on register-style data against Callaway-Sant'Anna peers.

Three cases, each unconditional (no covariates) with analytic standard errors, one
configuration on one data set:

* **unbalanced**: the :func:`make_panel.make_panel` panel with 10% of its unit-periods
  removed at random (seeded), ``staggered_did(..., allow_unbalanced_panel=True)``.
  As in R ``did``, an unbalanced panel is estimated with the repeated-cross-section
  estimator on all observed rows, with the influence function summed by unit.
* **cross-section**: the same balanced panel read as repeated cross-sections
  (``panel=False``, no unit id passed). R ``did``'s RC estimator treats every row as
  its own observation (n = rows), so no unit identifier plays any role.
* **weighted**: the balanced panel plus a sampling weight constant within unit,
  ``w = 1 + (unit % 5) / 4``, passed as ``weights="w"``.

Run from the repository root, in the peers venv (see benchmarks/README.md)::

    python benchmarks/bench_register.py            # 1,000,000 rows (before the 10% drop)
    python benchmarks/bench_register.py --quick    # 100,000 rows (smoke run)

Options as in ``bench_staggered.py`` (``--budget``, ``--mem-limit``, ``--only``,
``--skip``, ``--n-units``, ``--seed``, ``--repeat-below``, ``--json``).

Method
------
Exactly that of ``bench_staggered.py`` (its measuring, budget and reporting code is
reused): one subprocess per task, which builds the case's frame (same seed) before
the clock starts; ``time.perf_counter`` around the estimator call only; best of 3
when the first run took under ``--repeat-below`` seconds; peak extra RSS sampled by
``psutil`` every 5 ms; a task over ``--budget`` is reported ``>budget`` (and killed
once it overruns the budget plus a set-up allowance). Peers' timings include the
small data preparation they need (``differences``: a (unit, time) index and NaN for
never-treated; a per-row id where a peer needs a unit column for cross-sections).
``peak / input`` divides by the bytes of the case's frame. The floor is
``groupby(["cohort", "time"])["y"].mean()`` on the balanced panel, as in
``bench_staggered.py``.

Peers, as their APIs allow (read from their installed sources):

* csdid 0.4.3 ``ATTgt(..., panel=, allow_unbalanced_panel=, weights_name=)``: a port
  of R ``did`` 2.5; ``idname=None`` with ``panel=False``.
* differences 0.3.0 ``ATTgt(data.set_index([entity, time]))`` + ``fit(...,
  weights_column=, as_repeated_cross_section=)``: an unbalanced panel is estimated as
  repeated cross-sections clustered by entity; a frame whose entity index is unique
  per row *is* a repeated cross-section (detected, there is no ``panel=`` argument),
  so it gets a per-row id.
* diff-diff 3.13.0 ``CallawaySantAnna(panel=, allow_unbalanced_panel=)`` +
  ``fit(..., survey_design=SurveyDesign(weights=))``: ``panel=False`` requires a
  unit column unique per row (a per-row id is passed); sampling weights go through
  its survey machinery (``pweight``, no strata/PSU); its unbalanced-panel SE differs
  from R's by the CR1 factor sqrt(G/(G-1)) (documented), G = units.

Known convention differences (not errors; printed under the tables as ``CONVENTIONS``):

* unbalanced, diff-diff: SE = sqrt(G/(G-1)) x R's (checked: the ratio to csdid's SE is
  that factor to 1e-15 in every cell), about 5e-6 relative at 90,000+ units.
* unbalanced, differences: it resolves cohorts per entity on the observed rows. A
  treated unit with no row before its cohort is dropped, and one with no row from its
  cohort on is re-coded never-treated (``pre_process_treated_before`` /
  ``pre_process_treated_after``). R ``did`` (csdid, diff-diff) keeps both as they are.
  With a 10% random drop such units exist from about 10,000 units on (3 + 2 of them
  at ``--quick``), so differences' ATT(g,t) differ from the others by ~1e-3 there.

All peers use ``est_method="reg"`` (the unconditional 2x2 DiD without covariates),
never-treated controls and a varying base period. A peer whose API cannot express a
case is listed in ``UNSUPPORTED`` and shown as ``skipped`` with the reason.

Until ``staggered_did`` has the arguments, our rows say ``not available`` (checked
with ``inspect.signature``, and a ``TypeError`` from the call is reported the same
way with its message) and the peers are compared with each other.
"""

from __future__ import annotations

import inspect
import json
import pickle
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from bench_staggered import (  # noqa: E402
    NotAvailable,
    Outcome,
    Task,
    _gt_frame,
    floor,
    measure,
    parse_args,
    report,
    resolve,
    run_task,
)
from make_panel import make_panel  # noqa: E402

DROP_FRACTION = 0.10  # share of unit-periods removed for the unbalanced case
DROP_SEED_OFFSET = 1_000_003  # the drop draws from default_rng(seed + offset), not the panel's stream

CASES: dict[str, str] = {
    "unbalanced": f"make_panel with {DROP_FRACTION:.0%} of unit-periods removed at random; allow_unbalanced_panel",
    "cross-section": "balanced panel read as repeated cross-sections (panel=False, no unit id; n = rows)",
    "weighted": "balanced panel + sampling weight w = 1 + (unit % 5) / 4, constant within unit",
}

# (library, case) -> why the peer's API cannot express the case. Filled from reading
# the installed sources: every peer supports every case (see the module docstring).
UNSUPPORTED: dict[tuple[str, str], str] = {}

CONVENTIONS = [
    "unbalanced, diff-diff: its SE is sqrt(G/(G-1)) times R did's (CR1 factor, G = units; documented).",
    "unbalanced, differences: cohorts resolved per entity on the observed rows: a treated unit with no "
    "row before its cohort is dropped, one with no row from its cohort on is re-coded never-treated; "
    "R did (csdid, diff-diff) keeps both. This moves its ATT(g,t) by ~1e-3.",
]

# the API used, per (library, case), for the support table
API: dict[tuple[str, str], str] = {
    ("evaluator", "unbalanced"): "staggered_did(..., unit='unit', allow_unbalanced_panel=True)",
    ("evaluator", "cross-section"): "staggered_did(..., panel=False) (no unit)",
    ("evaluator", "weighted"): "staggered_did(..., weights='w')",
    ("csdid", "unbalanced"): "ATTgt(idname='unit', panel=True, allow_unbalanced_panel=True)",
    ("csdid", "cross-section"): "ATTgt(idname=None, panel=False)",
    ("csdid", "weighted"): "ATTgt(idname='unit', weights_name='w')",
    ("differences", "unbalanced"): "ATTgt(index (unit, time)).fit(as_repeated_cross_section=True)",
    ("differences", "cross-section"): "ATTgt(index (row id, time)) (RC detected from unique ids)",
    ("differences", "weighted"): "ATTgt(index (unit, time)).fit(weights_column='w')",
    ("diff-diff", "unbalanced"): "CallawaySantAnna(allow_unbalanced_panel=True).fit(unit='unit')",
    ("diff-diff", "cross-section"): "CallawaySantAnna(panel=False).fit(unit=row id)",
    ("diff-diff", "weighted"): "CallawaySantAnna().fit(survey_design=SurveyDesign(weights='w'))",
}


# ----------------------------------------------------------------------------------------
# data


def drop_unit_periods(df: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """``df`` without ``round(fraction * len(df))`` rows chosen at random (seeded), order kept."""
    rng = np.random.default_rng(seed)
    n_drop = int(round(fraction * len(df)))
    keep = np.ones(len(df), dtype=bool)
    keep[rng.choice(len(df), size=n_drop, replace=False)] = False
    return df.loc[keep].reset_index(drop=True)


def build_frame(case: str, n_units: int, seed: int) -> pd.DataFrame:
    """The input frame of ``case`` (``"balanced"`` for the floor)."""
    df = make_panel(n_units=n_units, seed=seed)
    if case == "unbalanced":
        return drop_unit_periods(df, DROP_FRACTION, seed + DROP_SEED_OFFSET)
    if case == "weighted":
        df["w"] = 1.0 + (df["unit"].to_numpy() % 5) / 4.0
    return df  # balanced, cross-section


@dataclass
class CaseTask(Task):
    """A :class:`bench_staggered.Task` whose frame is that of ``case``."""

    case: str = "balanced"


# ----------------------------------------------------------------------------------------
# tasks

NEW_ARGS = {
    "unbalanced": {"allow_unbalanced_panel": True},
    "cross-section": {"panel": False},
    "weighted": {"weights": "w"},
}


def _ours(case: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def fn(df: pd.DataFrame) -> pd.DataFrame:
        staggered_did = resolve("evaluator.estimators.staggered", "staggered_did")
        params = inspect.signature(staggered_did).parameters
        new = NEW_ARGS[case]
        missing = [k for k in new if k not in params]
        if missing:
            raise NotAvailable(f"staggered_did has no parameter {', '.join(missing)} yet")
        kwargs: dict[str, Any] = dict(new)
        if case != "cross-section":
            kwargs["unit"] = "unit"
        elif "unit" in params and params["unit"].default is inspect.Parameter.empty:
            kwargs["unit"] = None  # required keyword: say "no unit" explicitly
        try:
            res = staggered_did(
                df, outcome="y", time="time", cohort="cohort", method="unconditional", n_boot=0, seed=0, **kwargs
            )
        except TypeError as exc:
            raise NotAvailable(f"TypeError: {exc}") from exc
        gt = res.att_gt
        return _gt_frame(gt["cohort"], gt["time"], gt["att"], gt["se"])

    return fn


def _csdid(case: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def fn(df: pd.DataFrame) -> pd.DataFrame:
        try:
            from csdid.att_gt import ATTgt
        except ImportError as exc:
            raise NotAvailable(str(exc)) from exc
        kwargs: dict[str, Any] = {
            "unbalanced": {"idname": "unit", "panel": True, "allow_unbalanced_panel": True},
            "cross-section": {"idname": None, "panel": False},
            "weighted": {"idname": "unit", "weights_name": "w"},
        }[case]
        model = ATTgt(yname="y", tname="time", gname="cohort", data=df, control_group="nevertreated", **kwargs)
        r = model.fit(est_method="reg", bstrap=False).results
        return _gt_frame(r["group"], r["year"], r["att"], r["se"])

    return fn


def _differences(case: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def fn(df: pd.DataFrame) -> pd.DataFrame:
        try:
            from differences import ATTgt
        except ImportError as exc:
            raise NotAvailable(str(exc)) from exc
        # differences wants an (entity, time) index and never-treated cohort coded NaN
        d = df.assign(cohort=df["cohort"].where(df["cohort"] > 0))
        if case == "cross-section":
            d = d.assign(rowid=np.arange(len(d))).set_index(["rowid", "time"])
        else:
            d = d.set_index(["unit", "time"])
        fit_kwargs: dict[str, Any] = {
            "unbalanced": {"as_repeated_cross_section": True},
            "cross-section": {},
            "weighted": {"weights_column": "w"},
        }[case]
        model = ATTgt(data=d, cohort_column="cohort")
        model.fit(
            formula="y",
            est_method="reg",
            control_group="never_treated",
            boot_iterations=0,
            random_state=0,
            progress_bar=False,
            **fit_kwargs,
        )
        r = model.results()
        r.columns = [c[-1] for c in r.columns]
        r = r.reset_index()
        return _gt_frame(r["cohort"], r["time"], r["ATT"], r["std_error"])

    return fn


def _diffdiff(case: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def fn(df: pd.DataFrame) -> pd.DataFrame:
        try:
            from diff_diff import CallawaySantAnna
            from diff_diff.survey import SurveyDesign
        except ImportError as exc:
            raise NotAvailable(str(exc)) from exc
        init: dict[str, Any] = {
            "unbalanced": {"allow_unbalanced_panel": True},
            "cross-section": {"panel": False},
            "weighted": {},
        }[case]
        unit = "unit"
        fit_kwargs: dict[str, Any] = {}
        if case == "cross-section":
            df = df.assign(rowid=np.arange(len(df)))  # panel=False wants a unit column unique per row
            unit = "rowid"
        if case == "weighted":
            fit_kwargs["survey_design"] = SurveyDesign(weights="w")
        model = CallawaySantAnna(control_group="never_treated", estimation_method="reg", n_bootstrap=0, seed=0, **init)
        r = model.fit(df, outcome="y", unit=unit, time="time", first_treat="cohort", **fit_kwargs)
        gt = r.to_dataframe()
        return _gt_frame(gt["group"], gt["time"], gt["effect"], gt["se"])

    return fn


PEERS: list[tuple[str, Callable[[str], Callable[[pd.DataFrame], pd.DataFrame]], tuple[str, ...]]] = [
    ("csdid", _csdid, ("csdid.att_gt",)),
    ("differences", _differences, ("differences",)),
    ("diff-diff", _diffdiff, ("diff_diff", "diff_diff.survey")),
]


def _tasks() -> dict[str, CaseTask]:
    tasks = [CaseTask("floor groupby mean", "floor", "pandas", floor, (), "balanced")]
    for case in CASES:
        ours_imports = ("evaluator", "evaluator.estimators.staggered")
        tasks.append(CaseTask(f"ours {case}", case, "evaluator", _ours(case), ours_imports, case))
        for library, make, imports in PEERS:
            tasks.append(CaseTask(f"{library} reg {case}", case, library, make(case), imports, case))
    return {t.name: t for t in tasks}


TASKS = _tasks()


# ----------------------------------------------------------------------------------------
# running


def worker(tasks: dict[str, CaseTask], name: str, n_units: int, seed: int, out: str, repeat_below: float) -> None:
    """Run one task in this process and pickle an Outcome to ``out``.

    The loop of :func:`bench_staggered.worker`; only the frame differs (that of the case).
    """
    warnings.filterwarnings("ignore")
    task = tasks[name]
    res = Outcome(task.name, task.group, task.library)
    df = build_frame(task.case, n_units, seed)
    res.input_bytes = int(df.memory_usage(deep=True).sum())
    res.extra["rows"] = len(df)
    measure(task, df, res, repeat_below)
    with open(out, "wb") as fh:
        pickle.dump(res, fh)


def support_table() -> str:
    lines = ["| case | library | API used |", "|---|---|---|"]
    for case in CASES:
        for library in ["evaluator", *(p[0] for p in PEERS)]:
            why = UNSUPPORTED.get((library, case))
            lines.append(f"| {case} | {library} | {'skipped: ' + why if why else '`' + API[(library, case)] + '`'} |")
    skipped = ", ".join(f"{lib} ({case})" for lib, case in UNSUPPORTED) or "none (every peer's API supports every case)"
    return "\n".join([*lines, "", f"Peers skipped: {skipped}."])


def main(argv: list[str] | None = None) -> list[Outcome]:
    script = Path(__file__).resolve()
    args = parse_args(argv, __doc__.splitlines()[0], TASKS)
    if args.worker:
        worker(TASKS, args.worker, args.n_units, args.seed, args.out, args.repeat_below)
        return []
    selected = list(TASKS.values())
    if args.only:
        keys = [k.strip() for k in args.only.split(",")]
        selected = [t for t in selected if t.group == "floor" or any(k in t.name for k in keys)]
    if args.skip:
        keys = [k.strip() for k in args.skip.split(",")]
        selected = [t for t in selected if not any(k in t.name for k in keys)]
    import platform

    import psutil

    print(
        f"# {script.name}: {args.n_units * 10:,} rows ({args.n_units:,} units x 10 periods) before the "
        f"unbalanced case's {DROP_FRACTION:.0%} drop, seed {args.seed}, budget {args.budget:.0f} s/task"
    )
    print(
        f"Python {platform.python_version()}, {psutil.cpu_count(logical=True)} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, {platform.platform()}"
    )
    print()
    for case, what in CASES.items():
        print(f"- {case}: {what}")
    print()
    print(support_table())
    outcomes: list[Outcome] = []
    rows: dict[str, int] = {}
    for task in selected:
        why = UNSUPPORTED.get((task.library, task.case))
        if why:
            outcomes.append(Outcome(task.name, task.group, task.library, status="skipped", message=why))
            continue
        print(f"running {task.name} ...", file=sys.stderr, flush=True)
        o = run_task(script, task, args)
        extra = f" ({o.message})" if o.message else ""
        shown = f"{o.seconds:.3f} s" if o.seconds is not None else o.status
        print(f"  {shown}{extra}", file=sys.stderr, flush=True)
        if "rows" in o.extra:
            rows.setdefault(task.case, o.extra["rows"])
        outcomes.append(o)
    print()
    if rows:
        print("Rows per case: " + ", ".join(f"{c} {n:,}" for c, n in rows.items()))
        print()
    print(report(outcomes))
    print()
    print("Known convention differences between the libraries:")
    print()
    for line in CONVENTIONS:
        print(f"- {line}")
    if args.json:
        raw = [
            {k: v for k, v in vars(o).items() if k != "estimates"}
            | {"cells": None if o.estimates is None else len(o.estimates)}
            for o in outcomes
        ]
        Path(args.json).write_text(json.dumps(raw, indent=1, default=str))
    return outcomes


if __name__ == "__main__":
    main()
