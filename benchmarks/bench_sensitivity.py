"""Benchmark ``evaluator.honest_did`` and ``evaluator.synthetic`` against diff-diff on the reference examples.

Two cases, each ours against diff-diff 3.13 (``HonestDiD`` and ``SyntheticDiD``), on the data sets
of ``../shared/reference`` (beside the repository; ``$EVALUATOR_REFERENCE`` overrides the folder):

* **HonestDiD, relative magnitudes** (``honest RM``): the Medicaid-expansion example of
  ``honestdid.md`` (``ehec.csv``; 2008-2015 without the 2015 cohort, D = 1 for the 2014 cohort,
  344 rows = 43 states x 8 years). The TWFE event study with state and year fixed effects, SEs
  clustered by state and reference year 2013 gives 7 coefficients (5 pre-periods, 2 post); the
  sensitivity set under Delta^RM(Mbar) for the first post-period (2014) is computed at the 10 values
  ``Mbar = linspace(0.2, 2, 10)``.
* **Synthetic DiD on Proposition 99** (``prop99.csv``, ``prop99.md``; 39 states x 31 years,
  California treated from 1989): the SDID estimate alone (``sdid estimate``), and with 200 placebo
  replications for its SE (``sdid placebo 200``).

Run from the repository root, in the peers venv (see benchmarks/README.md)::

    python benchmarks/bench_sensitivity.py            # best of 3 runs per task
    python benchmarks/bench_sensitivity.py --quick    # one run per task (smoke run)
    python benchmarks/bench_sensitivity.py --only honest --json out.json

Options as in ``bench_staggered.py`` (``--budget``, ``--mem-limit``, ``--only``, ``--skip``,
``--seed``, ``--repeat-below``, ``--json``). ``--seed`` seeds the placebo replications of both
libraries (default 12345, the seed of ``prop99.md``'s runs); ``--quick`` runs every task once
instead of best of 3; ``--big`` and ``--n-units`` are accepted and ignored (the data are fixed).

Method
------
Exactly that of ``bench_staggered.py`` (its measuring, budget and reporting code is reused): one
subprocess per task, which reads the data and does the task's set-up before the clock starts;
``time.perf_counter`` around the timed call only; best of 3 when the first run took under
``--repeat-below`` seconds; peak extra RSS sampled by ``psutil`` every 5 ms.

* HonestDiD: only the sensitivity step is timed. Set-up (untimed) is the event study and reading
  off its coefficients: ours ``evaluator.event_study(..., cluster="stfips", reference=-1)`` and
  ``honest_did(es).betahat / .sigma``; diff-diff ``MultiPeriodDiD(cluster="stfips").fit(...,
  absorb=["stfips"], reference_period=2013, post_periods=[2014, 2015])``. Timed: ours
  ``honest_did(betahat=, sigma=, n_pre=5, method="relative_magnitude", mbar=MBAR)``; diff-diff
  ``HonestDiD(method="relative_magnitude", l_vec=[1, 0]).sensitivity_analysis(results,
  M_grid=MBAR)`` (which also runs its breakdown search, part of that call).
* SDID: the whole estimator call is timed, including the ever-treated column diff-diff needs.
  Ours ``synthetic(..., method="sdid", inference=None)`` / ``inference="placebo", n_reps=200``;
  diff-diff ``SyntheticDiD(variance_method="placebo", n_bootstrap=2 | 200, seed=)``: it has no
  estimate-only mode, so the estimate task uses its minimum of 2 placebo replications (its SE
  from 2 draws is discarded).
* ``peak / input`` divides by the bytes of the input frame (SDID only; HonestDiD's input is a
  7-vector and a 7 x 7 matrix, so it is left blank). There is no floor task, so ``x floor`` is
  blank. In the main table ``d att`` is the max abs difference of the estimates (the CI bounds,
  lower and upper at each Mbar, for HonestDiD: 20 cells) and ``d se`` that of the SEs (SDID with
  placebo replications only); the tables under it show the numbers side by side, with R's.

API differences (from diff-diff's installed source; listed under the tables as ``DIFFERENCES``):

* diff-diff's relative-magnitudes CI is not the conditional-least-favourable (C-LF) hybrid of
  Rambachan and Roth / R HonestDiD that ours computes: ``HonestDiD._compute_rm_bounds`` solves the
  identified set (union of polyhedra) at the *estimated* pre-trend and widens it by z x SE (the
  "naive FLCI"; its comment says the ARP hybrid is implemented but disabled "pending calibration").
  It ignores the sampling error of the pre-trend bound, so its sets grow linearly in Mbar and end
  up much narrower than R's and ours (at Mbar = 2 here its lower bound is 0.011, R's and ours
  -0.001: a difference of 1.2e-2), while at small Mbar they are slightly wider. A difference of
  method, not of inputs: the event-study coefficients agree to 1e-15.
* diff-diff's ``HonestDiD`` targets the average of the post-periods by default (``l_vec=None``);
  ``l_vec=[1, 0]`` is passed for the first post-period, R's default and ours (``target="first"``).
* ``MultiPeriodDiD`` is deprecated in diff-diff 3.13 (FutureWarning; ``TwoWayFixedEffects().fit(...,
  event_study=True)`` replaces it and gives the same coefficients and covariance here). With
  ``absorb=["stfips"]`` it is the README's regression: state and year fixed effects, CR1 SEs
  clustered by state with fixest's small-sample factor, normal critical values (no df).
* SDID placebo: ours fits each distinct placebo (with one treated unit: each of the 38 controls as
  pseudo-treated) once, in one batch, and reads the 200 draws off; diff-diff refits for every
  replication. Both draw the pseudo-treated units with ``numpy.random.default_rng(seed)``
  permutations, so with the same seed the SEs coincide.
"""

from __future__ import annotations

import json
import os
import pickle
import re
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
    _fmt_g,
    _gt_frame,
    measure,
    parse_args,
    report,
    resolve,
    run_task,
)

REFERENCE = Path(os.environ.get("EVALUATOR_REFERENCE", HERE.parent.parent / "shared" / "reference"))
MBAR = np.linspace(0.2, 2.0, 10)
N_PRE = 5
N_REPS = 200
DEFAULT_SEED = 12345  # prop99.md: R's set.seed(12345) and diff-diff's seed for its SE of 8.42
SDID_ARGS = {"outcome": "PacksPerCapita", "unit": "State", "time": "Year"}
# prop99.md: R synthdid 0.0.9, SDID -15.60 with placebo SE 8.37 (set.seed(12345), 200 replications, R's RNG)
R_SDID = (-15.60, 8.37)
PLACEBO = f"sdid placebo {N_REPS}"  # the case (group) with placebo replications

CASES: dict[str, str] = {
    "honest RM": f"HonestDiD relative magnitudes, first post-period, {len(MBAR)} values Mbar = "
    f"{MBAR[0]:g}..{MBAR[-1]:g} on the Medicaid event study (ehec.csv, 344 rows, 5 pre + 2 post coefficients)",
    "sdid estimate": "synthetic DiD on Proposition 99 (prop99.csv, 39 x 31), point estimate only",
    PLACEBO: f"the same with {N_REPS} placebo replications for the SE",
}

API: dict[tuple[str, str], str] = {
    ("evaluator", "honest RM"): "honest_did(betahat=, sigma=, n_pre=5, method='relative_magnitude', mbar=MBAR)",
    ("diff-diff", "honest RM"): "HonestDiD(method='relative_magnitude', l_vec=[1, 0]).sensitivity_analysis("
    "MultiPeriodDiD result, M_grid=MBAR)",
    ("evaluator", "sdid estimate"): "synthetic(..., method='sdid', inference=None)",
    ("diff-diff", "sdid estimate"): "SyntheticDiD(variance_method='placebo', n_bootstrap=2).fit(...) "
    "(no estimate-only mode; 2 is its minimum)",
    ("evaluator", PLACEBO): f"synthetic(..., method='sdid', inference='placebo', n_reps={N_REPS}, seed=)",
    ("diff-diff", PLACEBO): f"SyntheticDiD(variance_method='placebo', n_bootstrap={N_REPS}, seed=).fit(...)",
}

DIFFERENCES = [
    "honest RM, diff-diff: its RM confidence set is the identified set at the estimated pre-trend widened by "
    "z x SE (naive FLCI; the ARP/C-LF hybrid is disabled in 3.13), not R HonestDiD's C-LF hybrid set that ours "
    "computes, so its bounds differ from ours and R's by a difference of method (the inputs agree to 1e-15).",
    "honest RM, diff-diff: HonestDiD targets the post-period average by default; l_vec=[1, 0] selects the first "
    "post-period (R's default and ours).",
    "honest RM, diff-diff: MultiPeriodDiD is deprecated in 3.13 (TwoWayFixedEffects(event_study=True) gives the "
    "same coefficients); only the sensitivity step is timed for both libraries.",
    "sdid estimate, diff-diff: no estimate-only mode; timed with its minimum n_bootstrap=2 placebo replications "
    "(and its pre-fit placebo diagnostic on 2 draws), the SE discarded.",
    "sdid placebo, ours: each distinct placebo (38 with one treated unit) is fitted once in one batch and the "
    f"{N_REPS} draws read off; diff-diff refits every replication. Same seed, same permutations (numpy default_rng).",
]


# ----------------------------------------------------------------------------------------
# data and reference values


def _reference_file(name: str) -> Path:
    path = REFERENCE / name
    if not path.is_file():
        raise NotAvailable(f"reference file {path} not found (set EVALUATOR_REFERENCE)")
    return path


def ehec_sample() -> pd.DataFrame:
    """The README's sample: 2008-2015 without the 2015 cohort; D = 1 (cohort 2014) for the 2014 expanders."""
    df = pd.read_csv(_reference_file("ehec.csv"))
    d = df[(df["year"] < 2016) & (df["yexp2"].isna() | (df["yexp2"] != 2015))].copy()
    d["D"] = (d["yexp2"] == 2014).astype(int)
    d["cohort"] = np.where(d["yexp2"] == 2014, 2014.0, np.nan)
    return d.reset_index(drop=True)


def r_honest_reference() -> dict[str, Any]:
    """R's inputs (betahat, sigma) and RM bounds for the first post-period, read from honestdid.md.

    Keys ``betahat``, ``sigma`` (arrays) and ``rm`` ({Mbar: (lb, ub)}, full precision from the README
    cache); missing when the file is absent or does not parse.
    """
    out: dict[str, Any] = {}
    try:
        text = _reference_file("honestdid.md").read_text()
    except NotAvailable:
        return out
    rows = re.findall(r"\| `year::(\d{4}):D` \| (\S+) \| (\S+) \|", text)
    if len(rows) == N_PRE + 2:
        out["betahat"] = np.array([float(b) for _, b, _ in rows])
    m = re.search(r"sigma \(7 x 7[^\n]*\n+```text\n(.*?)```", text, flags=re.S)
    if m:
        try:
            out["sigma"] = np.array(json.loads(m.group(1)), dtype=float)
        except ValueError:
            pass
    rm = re.findall(r"\| (\d\.\d) \| \S+ \| \S+ \| C-LF \| DeltaRM \| (\S+) \| (\S+) \|", text)
    if rm:
        out["rm"] = {float(k): (float(lo), float(hi)) for k, lo, hi in rm}
    return out


def _bounds_frame(m: Any, lo: Any, hi: Any, identified: Any = None) -> pd.DataFrame:
    """Bounds as a (cohort, time, att, se) frame for ``report``: cohort = Mbar, time 0 = lower, 1 = upper."""
    m = np.asarray(m, dtype=float)
    out = _gt_frame(
        np.r_[m, m],
        np.r_[np.zeros(m.size), np.ones(m.size)],
        np.r_[np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)],
        np.full(2 * m.size, np.nan),
    )
    if identified is not None:  # diff-diff's identified set, in the same (Mbar, side) order
        lo_id, hi_id = identified
        key = pd.DataFrame({"cohort": np.r_[m, m], "time": np.r_[np.zeros(m.size), np.ones(m.size)]})
        key["identified"] = np.r_[np.asarray(lo_id, dtype=float), np.asarray(hi_id, dtype=float)]
        out = out.merge(key, on=["cohort", "time"], how="left")
    return out


# ----------------------------------------------------------------------------------------
# tasks: prepare(seed) -> (input, input bytes, extra) untimed; fn(input) -> estimates, timed


@dataclass
class CaseTask(Task):
    """A :class:`bench_staggered.Task` with an untimed set-up ``prepare(seed) -> (input, bytes, extra)``."""

    prepare: Callable[[int], tuple[Any, int, dict[str, Any]]] | None = None


def _prep_ours_honest(seed: int) -> tuple[dict[str, Any], int, dict[str, Any]]:
    event_study = resolve("evaluator.estimators.twfe", "event_study")
    honest_did = resolve("evaluator.estimators.honest", "honest_did")
    d = ehec_sample()
    es = event_study(d, outcome="dins", unit="stfips", time="year", cohort="cohort", cluster="stfips", reference=-1)
    h = honest_did(es, mbar=[1.0])  # reads off betahat / sigma as honest_did(es) would use them
    if h.n_pre != N_PRE or h.n_post != 2:
        raise RuntimeError(f"event study has {h.n_pre} pre / {h.n_post} post coefficients, expected {N_PRE} / 2")
    inp = {"betahat": np.asarray(h.betahat, float), "sigma": np.asarray(h.sigma, float)}
    return inp, 0, {"betahat": inp["betahat"], "sigma": inp["sigma"], "rows": len(d)}


def _ours_honest(inp: dict[str, Any]) -> pd.DataFrame:
    honest_did = resolve("evaluator.estimators.honest", "honest_did")
    res = honest_did(betahat=inp["betahat"], sigma=inp["sigma"], n_pre=N_PRE, method="relative_magnitude", mbar=MBAR)
    f = res.to_frame()
    return _bounds_frame(f["m"], f["ci_low"], f["ci_high"])


def _prep_diffdiff_honest(seed: int) -> tuple[Any, int, dict[str, Any]]:
    try:
        from diff_diff import MultiPeriodDiD
    except ImportError as exc:
        raise NotAvailable(str(exc)) from exc
    d = ehec_sample()
    results = MultiPeriodDiD(cluster="stfips").fit(
        d,
        outcome="dins",
        treatment="D",
        time="year",
        post_periods=[2014, 2015],
        absorb=["stfips"],
        reference_period=2013,
        unit="stfips",
    )
    extra: dict[str, Any] = {"rows": len(d)}
    try:  # the coefficients HonestDiD reads (its own extractor), to compare the inputs
        from diff_diff.honest_did import _extract_event_study_params

        b, s, n_pre, n_post, *_ = _extract_event_study_params(results)
        extra.update(betahat=np.asarray(b, float), sigma=np.asarray(s, float), n_pre=n_pre, n_post=n_post)
    except Exception:  # private helper: a missing or changed one only loses the input comparison
        pass
    return results, 0, extra


def _diffdiff_honest(results: Any) -> pd.DataFrame:
    try:
        from diff_diff import HonestDiD
    except ImportError as exc:
        raise NotAvailable(str(exc)) from exc
    s = HonestDiD(method="relative_magnitude", l_vec=np.array([1.0, 0.0])).sensitivity_analysis(
        results, M_grid=list(MBAR)
    )
    ci = np.asarray(s.robust_cis, dtype=float)
    ident = np.asarray(s.bounds, dtype=float)
    return _bounds_frame(s.M_values, ci[:, 0], ci[:, 1], identified=(ident[:, 0], ident[:, 1]))


def _prep_prop99(seed: int) -> tuple[dict[str, Any], int, dict[str, Any]]:
    df = pd.read_csv(_reference_file("prop99.csv"))
    return {"df": df, "seed": seed}, int(df.memory_usage(deep=True).sum()), {"rows": len(df)}


def _prep_ours_prop99(seed: int) -> tuple[dict[str, Any], int, dict[str, Any]]:
    # the compiled Frank-Wolfe solver is loaded (from numba's disk cache; compiled once per machine, about 2 s)
    # before the clock, as diff-diff's Rust extension is built at install
    frank_wolfe = resolve("evaluator.inference.frank_wolfe", "frank_wolfe")
    frank_wolfe(
        np.eye(2)[None], np.ones((1, 2)), np.full((1, 2), 0.5), 0.1, intercept=True, min_decrease=1e-5, max_iter=5
    )
    return _prep_prop99(seed)


def _one(estimate: float, se: float) -> pd.DataFrame:
    return _gt_frame([0.0], [0.0], [estimate], [se])


def _ours_sdid(placebo: bool) -> Callable[[dict[str, Any]], pd.DataFrame]:
    def fn(inp: dict[str, Any]) -> pd.DataFrame:
        synthetic = resolve("evaluator.estimators.synthetic", "synthetic")
        fit = synthetic(
            inp["df"],
            **SDID_ARGS,
            treated="treated",
            method="sdid",
            inference="placebo" if placebo else None,
            n_reps=N_REPS,
            seed=inp["seed"],
        )
        return _one(fit.estimate, fit.se if placebo else np.nan)

    return fn


def _diffdiff_sdid(placebo: bool) -> Callable[[dict[str, Any]], pd.DataFrame]:
    def fn(inp: dict[str, Any]) -> pd.DataFrame:
        try:
            from diff_diff import SyntheticDiD
        except ImportError as exc:
            raise NotAvailable(str(exc)) from exc
        df = inp["df"]
        # diff-diff wants an ever-treated indicator and the post-periods
        treated_units = df.loc[df["treated"] == 1, "State"].unique()
        d = df.assign(ever=df["State"].isin(treated_units).astype(int))
        post = sorted(df.loc[df["treated"] == 1, "Year"].unique().tolist())
        model = SyntheticDiD(variance_method="placebo", n_bootstrap=N_REPS if placebo else 2, seed=inp["seed"])
        r = model.fit(d, **SDID_ARGS, treatment="ever", post_periods=post)
        return _one(r.att, r.se if placebo else np.nan)

    return fn


def _tasks() -> dict[str, CaseTask]:
    ours_honest = ("evaluator", "evaluator.estimators.honest", "evaluator.estimators.twfe")
    ours_sdid = ("evaluator", "evaluator.estimators.synthetic")
    dd = ("diff_diff",)
    tasks = [
        CaseTask("ours honest RM", "honest RM", "evaluator", _ours_honest, ours_honest, _prep_ours_honest),
        CaseTask("diff-diff honest RM", "honest RM", "diff-diff", _diffdiff_honest, dd, _prep_diffdiff_honest),
        CaseTask("ours sdid estimate", "sdid estimate", "evaluator", _ours_sdid(False), ours_sdid, _prep_ours_prop99),
        CaseTask("diff-diff sdid estimate", "sdid estimate", "diff-diff", _diffdiff_sdid(False), dd),
        CaseTask(f"ours {PLACEBO}", PLACEBO, "evaluator", _ours_sdid(True), ours_sdid, _prep_ours_prop99),
        CaseTask(f"diff-diff {PLACEBO}", PLACEBO, "diff-diff", _diffdiff_sdid(True), dd),
    ]
    for t in tasks:
        if t.prepare is None:
            t.prepare = _prep_prop99
    return {t.name: t for t in tasks}


TASKS = _tasks()


# ----------------------------------------------------------------------------------------
# running


def worker(name: str, seed: int, out: str, repeat_below: float) -> None:
    """Run one task in this process and pickle an Outcome to ``out``.

    The loop of :func:`bench_staggered.worker`; the input is the task's (untimed) set-up.
    """
    warnings.filterwarnings("ignore")
    task = TASKS[name]
    res = Outcome(task.name, task.group, task.library)
    try:
        assert task.prepare is not None
        inp, input_bytes, extra = task.prepare(seed)
    except NotAvailable as exc:
        res.status, res.message = "not available", str(exc)
    except Exception as exc:  # report, do not crash the harness
        res.status, res.message = "error", f"set-up: {type(exc).__name__}: {exc}"[:300]
    else:
        res.input_bytes = input_bytes
        res.extra.update(extra)
        measure(task, inp, res, repeat_below)
    with open(out, "wb") as fh:
        pickle.dump(res, fh)


def _f(x: Any, digits: int = 6) -> str:
    if x is None or not np.isfinite(x):
        return "."
    return f"{x:.{digits}f}"


def _max_abs(a: Any, b: Any) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.size == 0:
        return np.nan
    d = np.abs(a - b)
    return float(np.nanmax(d)) if np.isfinite(d).any() else np.nan


def _by_library(outcomes: list[Outcome], group: str) -> dict[str, Outcome]:
    return {o.library: o for o in outcomes if o.group == group and o.status == "ok" and o.estimates is not None}


def honest_tables(outcomes: list[Outcome]) -> str:
    """Bounds side by side (ours, diff-diff, R), and the agreement of the inputs and of the bounds."""
    have = _by_library(outcomes, "honest RM")
    ran = {o.library: o for o in outcomes if o.group == "honest RM"}
    if not ran:
        return ""
    ref = r_honest_reference()
    r_rm = ref.get("rm", {})

    def side(lib: str) -> pd.DataFrame | None:
        o = have.get(lib)
        if o is None:
            return None
        e = o.estimates.set_index(["cohort", "time"])
        return e

    ours, dd = side("evaluator"), side("diff-diff")
    lines = [
        "HonestDiD relative magnitudes, first post-period (2014): 95% sets, ours (C-LF) | diff-diff "
        "(naive FLCI, and its identified set) | R HonestDiD (README cache; Mbar 1 and 2 are on this grid):",
        "",
        "| Mbar | ours lb | ours ub | diff-diff lb | diff-diff ub | diff-diff id. set lb | diff-diff id. set ub "
        "| R lb | R ub |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    r_lo, r_hi, o_lo, o_hi, d_lo, d_hi = [], [], [], [], [], []
    for m in MBAR:

        def get(e: pd.DataFrame | None, side_: int, col: str = "att", m: float = m) -> float:
            if e is None or (m, float(side_)) not in e.index or col not in e.columns:
                return np.nan
            return float(e.loc[(m, float(side_)), col])

        r = next((v for k, v in r_rm.items() if np.isclose(k, m, rtol=0, atol=1e-9)), (np.nan, np.nan))
        row = [get(ours, 0), get(ours, 1), get(dd, 0), get(dd, 1), get(dd, 0, "identified"), get(dd, 1, "identified")]
        lines.append(f"| {m:.1f} | " + " | ".join(_f(x) for x in [*row, *r]) + " |")
        o_lo.append(row[0])
        o_hi.append(row[1])
        d_lo.append(row[2])
        d_hi.append(row[3])
        r_lo.append(r[0])
        r_hi.append(r[1])
    ours_b, dd_b, r_b = np.r_[o_lo, o_hi], np.r_[d_lo, d_hi], np.r_[r_lo, r_hi]
    on_r = np.isfinite(r_b)  # the Mbar values R's table has
    pairs = [
        ("ours vs diff-diff", ours_b, dd_b, ours_b.size),
        ("ours vs R", ours_b[on_r], r_b[on_r], int(on_r.sum())),
        ("diff-diff vs R", dd_b[on_r], r_b[on_r], int(on_r.sum())),
    ]
    lines += ["", "| comparison | max abs d bound | bounds |", "|---|---:|---:|"]
    for label, a, b, n in pairs:
        lines.append(f"| {label} | {_fmt_g(_max_abs(a, b))} | {n} |")
    # the inputs each library's sensitivity step received
    lines += ["", "Inputs of the sensitivity step (event-study betahat and sigma), max abs difference:", ""]
    lines += ["| a | b | d betahat | d sigma |", "|---|---|---:|---:|"]
    inputs = {lib: o.extra for lib, o in ran.items() if "betahat" in o.extra}
    if "betahat" in ref:
        inputs["R (honestdid.md)"] = {"betahat": ref["betahat"], "sigma": ref.get("sigma")}
    names = list(inputs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            db = _max_abs(inputs[a]["betahat"], inputs[b]["betahat"])
            sa, sb = inputs[a].get("sigma"), inputs[b].get("sigma")
            ds = _max_abs(sa, sb) if sa is not None and sb is not None else np.nan
            lines.append(f"| {a} | {b} | {_fmt_g(db)} | {_fmt_g(ds)} |")
    return "\n".join(lines)


def sdid_table(outcomes: list[Outcome], seed: int) -> str:
    groups = ["sdid estimate", PLACEBO]
    if not any(o.group in groups for o in outcomes):
        return ""
    lines = [
        f"Synthetic DiD, Proposition 99 (seed {seed}); R synthdid 0.0.9 from prop99.md "
        f"(2 decimals; its SE uses R's RNG with set.seed(12345)):",
        "",
        "| task | ours estimate | diff-diff estimate | R estimate | ours SE | diff-diff SE | R SE "
        "| d estimate | d SE |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for g in groups:
        have = _by_library(outcomes, g)
        vals = {lib: (float(o.estimates["att"].iloc[0]), float(o.estimates["se"].iloc[0])) for lib, o in have.items()}
        o_est, o_se = vals.get("evaluator", (np.nan, np.nan))
        d_est, d_se = vals.get("diff-diff", (np.nan, np.nan))
        r_se = R_SDID[1] if g != "sdid estimate" else np.nan
        lines.append(
            f"| {g} | {_f(o_est, 10)} | {_f(d_est, 10)} | {R_SDID[0]:.2f} | {_f(o_se)} | {_f(d_se)} | {_f(r_se, 2)} "
            f"| {_fmt_g(abs(o_est - d_est))} | {_fmt_g(abs(o_se - d_se))} |"
        )
    return "\n".join(lines)


def support_table() -> str:
    lines = ["| case | library | API used (timed) |", "|---|---|---|"]
    for case in CASES:
        for library in ("evaluator", "diff-diff"):
            lines.append(f"| {case} | {library} | `{API[(library, case)]}` |")
    return "\n".join(lines)


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, pd.DataFrame):
        return json.loads(x.to_json(orient="records"))
    return x


def main(argv: list[str] | None = None) -> list[Outcome]:
    script = Path(__file__).resolve()
    argv = list(sys.argv[1:] if argv is None else argv)
    if not any(a == "--seed" or a.startswith("--seed=") for a in argv):
        argv += ["--seed", str(DEFAULT_SEED)]
    args = parse_args(argv, __doc__.splitlines()[0], TASKS)
    if args.worker:
        worker(args.worker, args.seed, args.out, args.repeat_below)
        return []
    if args.quick:
        args.repeat_below = 0.0  # one run per task
    selected = list(TASKS.values())
    if args.only:
        keys = [k.strip() for k in args.only.split(",")]
        selected = [t for t in selected if any(k in t.name for k in keys)]
    if args.skip:
        keys = [k.strip() for k in args.skip.split(",")]
        selected = [t for t in selected if not any(k in t.name for k in keys)]
    import platform

    import psutil

    runs = "one run per task (--quick)" if args.quick else f"best of 3 below {args.repeat_below:g} s"
    print(f"# {script.name}: seed {args.seed}, {runs}, budget {args.budget:.0f} s/task, data {REFERENCE}")
    print(
        f"Python {platform.python_version()}, {psutil.cpu_count(logical=True)} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, {platform.platform()}"
    )
    try:
        from importlib.metadata import version

        print(f"diff-diff {version('diff-diff')}, numpy {np.__version__}, pandas {pd.__version__}")
    except Exception:
        pass
    print()
    for case, what in CASES.items():
        print(f"- {case}: {what}")
    print()
    print(support_table())
    outcomes: list[Outcome] = []
    for task in selected:
        print(f"running {task.name} ...", file=sys.stderr, flush=True)
        o = run_task(script, task, args)
        extra = f" ({o.message})" if o.message else ""
        shown = f"{o.seconds:.3f} s" if o.seconds is not None else o.status
        print(f"  {shown}{extra}", file=sys.stderr, flush=True)
        outcomes.append(o)
    print()
    print(
        "`d att`: max abs difference of the estimates against ours (HonestDiD: the lower and upper bounds at "
        "each Mbar); `d se`: of the SEs. No floor task, so `x floor` is blank."
    )
    print()
    print(report(outcomes))
    for block in (honest_tables(outcomes), sdid_table(outcomes, args.seed)):
        if block:
            print()
            print(block)
    print()
    print("DIFFERENCES (API and method differences between the libraries, from diff-diff's source):")
    print()
    for line in DIFFERENCES:
        print(f"- {line}")
    if args.json:
        raw = [
            {k: _jsonable(v) for k, v in vars(o).items()} | {"cells": None if o.estimates is None else len(o.estimates)}
            for o in outcomes
        ]
        Path(args.json).write_text(json.dumps(raw, indent=1, default=str))
    return outcomes


if __name__ == "__main__":
    main()
