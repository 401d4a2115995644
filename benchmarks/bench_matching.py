"""Benchmark ``evaluator.match`` against causalml, dowhy and causalinference.

Run from the repository root, in the peers venv (see benchmarks/README.md)::

    python benchmarks/bench_matching.py                # 5,000 treated x 1,000,000 pool
    python benchmarks/bench_matching.py --quick        # 500 x 100,000, peers up to 30k pool
    python benchmarks/bench_matching.py --only ours    # our tasks only

Data: ``n_treated`` treated and ``n_pool`` pool units with 10 standard-normal
covariates ``x0..x9``; treated covariates are shifted (selection on observables:
mean shift 0.3 on x0..x4, 0.15 on x5..x9), so the true propensity is a logit
linear in the covariates. Outcome ``y = X b + 1 * treat + noise``. Vectorised
numpy, ``seed``.

Harness (imported from ``bench_staggered.py``): one subprocess per task, time with
``perf_counter`` around the call only (best of 3 when the first run is under
``--repeat-below`` s), peak extra RSS sampled with psutil (``PeakRSS``), a task
killed past ``--budget`` (plus a set-up allowance) or ``--mem-limit`` GiB.

Tasks
-----
* ours, full size: ``match(distance="ps", caliper=0.2)`` without and with
  replacement, and ``distance="mahalanobis"`` on x0..x4 (without replacement,
  ``order="data"``, no propensity model). Besides the whole call, the same
  subprocess times the matching step alone: the score is fitted with the same
  private ``_fit_ps`` ``match`` uses (untimed), then the internal
  ``_nn1d_without`` / ``_nn1d_with`` / ``_nnkd_without`` call is timed (for
  Mahalanobis the timed step includes whitening and the k-d tree build).
* peers, on a ladder of pool sizes (10k, 30k, 100k, 300k, 1M), stopping at the
  first size over budget, memory or in error. Peers whose cost grows with
  treated x pool get treated = pool / 200 (5,000 at 1M); the others 5,000 (or
  fewer if the pool is smaller than 10 x treated). Ours is then run on the
  largest size the peer completed, in the configuration closest to the peer's:

  - causalml ``NearestNeighborMatch(caliper=0.2, replace=False, ratio=1)`` on a
    propensity score fitted (inside the timing) by statsmodels Logit, the same
    model ours fits; vs ours ``distance="ps", caliper=0.2``. Both callipers are
    0.2 SD of the score.
  - causalml ``NearestNeighborMatch(replace=True)``, same score; vs ours
    ``distance="ps", caliper=0.2, replace=True``.
  - dowhy ``CausalModel(...).estimate_effect(method_name=
    "backdoor.propensity_score_matching", target_units="att")``: sklearn logistic
    score and 1-NN with replacement, plus the ATT; vs ours ``distance="ps",
    replace=True`` (no caliper) followed by ``.effect("y")``.
  - causalinference ``CausalModel(Y, D, X).est_via_matching()``: 1-NN with
    replacement on all 10 covariates (inverse-variance-weighted Euclidean),
    ATE/ATT/ATC with Abadie-Imbens SEs; vs ours ``distance="mahalanobis",
    replace=True`` on x0..x9 followed by ``.effect("y", inference="abadie_imbens")``.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import pickle
import sys
import tempfile
import time
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

from bench_staggered import NotAvailable, Outcome, PeakRSS, _run_watched, resolve  # noqa: E402

N_COV = 10
COVS = [f"x{j}" for j in range(N_COV)]
COVS5 = COVS[:5]
LADDER = [10_000, 30_000, 100_000, 300_000, 1_000_000]


def make_data(n_treated: int, n_pool: int, seed: int = 0) -> pd.DataFrame:
    """``treat, x0..x9, y``: treated first, then pool; selection on covariates."""
    rng = np.random.default_rng(seed)
    n = n_treated + n_pool
    X = rng.standard_normal((n, N_COV))
    shift = np.where(np.arange(N_COV) < 5, 0.3, 0.15)
    X[:n_treated] += shift
    t = np.zeros(n, dtype=np.int64)
    t[:n_treated] = 1
    b = np.linspace(1.0, 0.1, N_COV)
    y = X @ b + 1.0 * t + rng.standard_normal(n)
    df = pd.DataFrame(X, columns=COVS)
    df.insert(0, "treat", t)
    df["y"] = y
    return df


# ----------------------------------------------------------------------------------------
# tasks: fn(df) -> dict of extra numbers (may contain "step": seconds of the matching step)


def _ours(distance: str, replace: bool, caliper: float | None, covs: list[str], effect: str | None = None):
    def fn(df: pd.DataFrame) -> dict[str, Any]:
        match = resolve("evaluator.estimators.matching", "match")
        kw: dict[str, Any] = {}
        if caliper is not None:
            kw["caliper"] = caliper
            kw["caliper_scale"] = "raw" if distance == "mahalanobis" else "sd"
        m = match(df, treat="treat", covariates=covs, distance=distance, replace=replace, **kw)
        out: dict[str, Any] = {"pairs": len(m.pairs)}
        if effect == "pairs":
            out["att"] = float(m.effect("y").estimate)
        elif effect == "ai":
            out["att"] = float(m.effect("y", inference="abadie_imbens").estimate)
        return out

    return fn


def _ours_step(distance: str, replace: bool, caliper: float | None, covs: list[str]):
    """Set-up exactly as ``match`` does it (untimed), then time only the matching routine."""

    def fn(df: pd.DataFrame) -> dict[str, Any]:
        try:
            from evaluator.estimators.matching import frame as mframe
            from evaluator.estimators.matching import neighbours as nb
            from evaluator.estimators.matching import propensity as mps
        except ImportError as exc:
            raise NotAvailable(str(exc)) from exc
        d, _ = mframe._canonical(df, None)
        t = d["treat"].to_numpy().astype(np.int64)
        f = np.flatnonzero(t == 1)
        o = np.flatnonzero(t == 0)
        if distance == "mahalanobis":
            Xd = mframe._design(d, covs).to_numpy()
            t0 = time.perf_counter()
            Z = mps._whiten(Xd, t)
            width = math.inf if caliper is None else caliper
            if replace:
                r = nb._nnkd_with(Z[f], Z[o], 1, width)
            else:
                r = nb._nnkd_without(Z[f], np.arange(len(f)), Z[o], 1, width)
            step = time.perf_counter() - t0
        else:
            ps, _ = mps._fit_ps(d, t, "treat", covs, None)
            score = ps if distance == "ps" else np.log(ps) - np.log1p(-ps)
            width = math.inf if caliper is None else caliper * float(np.std(score, ddof=1))
            fo = f[np.argsort(-ps[f], kind="stable")]  # order="largest"
            t0 = time.perf_counter()
            if replace:
                r = nb._nn1d_with(score[fo], score[o], o, 1, width)
            else:
                r = nb._nn1d_without(score[fo], np.arange(len(fo)), score[o], o, 1, width)
            step = time.perf_counter() - t0
        return {"step": step, "pairs": len(r[0])}

    return fn


def _logit_ps(df: pd.DataFrame) -> np.ndarray:
    import statsmodels.api as sm

    X = sm.add_constant(df[COVS].to_numpy())
    return np.asarray(sm.Logit(df["treat"].to_numpy(dtype=float), X).fit(disp=0, method="newton").predict())


def _causalml(replace: bool, *, step: bool = False):
    """causalml on a score fitted by the same logit; with ``step`` the fit is untimed (the like of our "step")."""

    def fn(df: pd.DataFrame) -> dict[str, Any]:
        try:
            from causalml.match import NearestNeighborMatch
        except ImportError as exc:
            raise NotAvailable(str(exc)) from exc
        d = df.assign(score=_logit_ps(df))
        nn = NearestNeighborMatch(caliper=0.2, replace=replace, ratio=1, shuffle=False, random_state=0)
        t0 = time.perf_counter()
        matched = nn.match(data=d, treatment_col="treat", score_cols=["score"])
        out: dict[str, Any] = {"rows": len(matched)}
        if step:
            out["step"] = time.perf_counter() - t0
        return out

    return fn


def _dowhy(df: pd.DataFrame) -> dict[str, Any]:
    try:
        from dowhy import CausalModel
    except ImportError as exc:
        raise NotAvailable(str(exc)) from exc
    d = df.assign(treat=df["treat"].astype(bool))
    model = CausalModel(data=d, treatment="treat", outcome="y", common_causes=COVS)
    est = model.identify_effect(proceed_when_unidentifiable=True)
    e = model.estimate_effect(est, method_name="backdoor.propensity_score_matching", target_units="att")
    return {"att": float(e.value)}


def _causalinference(df: pd.DataFrame) -> dict[str, Any]:
    try:
        from causalinference import CausalModel
    except ImportError as exc:
        raise NotAvailable(str(exc)) from exc
    cm = CausalModel(df["y"].to_numpy(), df["treat"].to_numpy(), df[COVS].to_numpy())
    cm.est_via_matching()
    return {"att": float(cm.estimates["matching"]["att"])}


@dataclass
class MTask:
    name: str
    library: str
    fn: Callable[[pd.DataFrame], dict[str, Any]]
    imports: tuple[str, ...] = ()
    quadratic: bool = False  # cost grows with treated x pool: scale treated with the pool
    ours: str | None = None  # for a peer: the name of our task to compare with at the same size
    step: bool = False  # compare the matching steps (score given to both), not the whole calls


TASKS: dict[str, MTask] = {
    t.name: t
    for t in [
        MTask("ours ps cal0.2", "evaluator", _ours("ps", False, 0.2, COVS), ("evaluator.estimators.matching",)),
        MTask(
            "ours ps cal0.2 step", "evaluator", _ours_step("ps", False, 0.2, COVS), ("evaluator.estimators.matching",)
        ),
        MTask("ours ps cal0.2 repl", "evaluator", _ours("ps", True, 0.2, COVS), ("evaluator.estimators.matching",)),
        MTask(
            "ours ps cal0.2 repl step",
            "evaluator",
            _ours_step("ps", True, 0.2, COVS),
            ("evaluator.estimators.matching",),
        ),
        MTask(
            "ours mahal 5cov", "evaluator", _ours("mahalanobis", False, None, COVS5), ("evaluator.estimators.matching",)
        ),
        MTask(
            "ours mahal 5cov step",
            "evaluator",
            _ours_step("mahalanobis", False, None, COVS5),
            ("evaluator.estimators.matching",),
        ),
        MTask(
            "ours ps repl +effect",
            "evaluator",
            _ours("ps", True, None, COVS, "pairs"),
            ("evaluator.estimators.matching",),
        ),
        MTask(
            "ours mahal 10cov repl +effect AI",
            "evaluator",
            _ours("mahalanobis", True, None, COVS, "ai"),
            ("evaluator.estimators.matching",),
        ),
        MTask(
            "causalml NN cal0.2",
            "causalml",
            _causalml(False),
            ("causalml.match", "statsmodels.api"),
            quadratic=True,
            ours="ours ps cal0.2",
        ),
        MTask(
            "causalml NN cal0.2 repl",
            "causalml",
            _causalml(True),
            ("causalml.match", "statsmodels.api"),
            ours="ours ps cal0.2 repl",
        ),
        MTask(
            "causalml NN cal0.2 repl (score given)",
            "causalml",
            _causalml(True, step=True),
            ("causalml.match", "statsmodels.api"),
            ours="ours ps cal0.2 repl step",
            step=True,
        ),
        MTask("dowhy PSM att", "dowhy", _dowhy, ("dowhy",), ours="ours ps repl +effect"),
        MTask(
            "causalinference est_via_matching",
            "causalinference",
            _causalinference,
            ("causalinference",),
            quadratic=True,
            ours="ours mahal 10cov repl +effect AI",
        ),
    ]
}
FULL_OURS = ["ours ps cal0.2", "ours ps cal0.2 step", "ours ps cal0.2 repl", "ours ps cal0.2 repl step"]
FULL_OURS += ["ours mahal 5cov", "ours mahal 5cov step"]


# ----------------------------------------------------------------------------------------
# running


def worker(name: str, n_treated: int, n_pool: int, seed: int, out: str, repeat_below: float) -> None:
    warnings.filterwarnings("ignore")
    task = TASKS[name]
    res = Outcome(task.name, f"{n_treated}x{n_pool}", task.library)
    df = make_data(n_treated, n_pool, seed)
    res.input_bytes = int(df.memory_usage(deep=True).sum())
    for module in task.imports:
        try:
            __import__(module)
        except ImportError:
            pass
    try:
        best, best_step, peak = np.inf, np.inf, 0
        while True:
            with PeakRSS() as mem:
                t0 = time.perf_counter()
                extra = task.fn(df)
                dt = time.perf_counter() - t0
            best = min(best, dt)
            best_step = min(best_step, extra.pop("step", np.inf))
            peak = max(peak, mem.delta)
            res.runs += 1
            res.extra.update(extra)
            if res.runs >= 3 or dt >= repeat_below:
                break
            gc.collect()
        res.seconds, res.peak_bytes = best, peak
        if np.isfinite(best_step):
            res.extra["step"] = best_step
    except NotAvailable as exc:
        res.status, res.message = "not available", str(exc)
    except Exception as exc:  # report, do not crash the harness
        res.status, res.message = "error", f"{type(exc).__name__}: {exc}"[:300]
    with open(out, "wb") as fh:
        pickle.dump(res, fh)


def run(name: str, n_treated: int, n_pool: int, args: argparse.Namespace) -> Outcome:
    task = TASKS[name]
    print(f"running {name} at {n_treated:,} x {n_pool:,} ...", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.pkl")
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", name, "--n-treated", str(n_treated)]
        cmd += ["--n-pool", str(n_pool), "--seed", str(args.seed), "--out", out]
        cmd += ["--repeat-below", str(args.repeat_below)]
        timeout = args.budget + 3 * args.repeat_below + 30 + n_pool / 50_000
        t0 = time.perf_counter()
        killed = _run_watched(cmd, timeout, args.mem_limit * 2**30, os.path.join(tmp, "log.txt"))
        group = f"{n_treated}x{n_pool}"
        if killed:
            o = Outcome(task.name, group, task.library, status=killed[0], message=killed[1])
        elif not os.path.exists(out):
            tail = Path(tmp, "log.txt").read_text(errors="replace").strip().splitlines()[-3:]
            o = Outcome(task.name, group, task.library, status="error", message=" | ".join(tail)[:300])
        else:
            with open(out, "rb") as fh:
                o = pickle.load(fh)
            o.extra["wall"] = time.perf_counter() - t0
            if o.status == "ok" and o.seconds is not None and o.seconds > args.budget:
                o.status = ">budget"
    o.extra["size"] = (n_treated, n_pool)
    shown = f"{o.seconds:.3f} s" if o.seconds is not None else o.status
    print(f"  {shown} {o.message}", file=sys.stderr, flush=True)
    return o


def ladder_size(pool: int, n_treated: int, quadratic: bool, full_pool: int) -> int:
    if quadratic:
        return max(10, round(n_treated * pool / full_pool))
    return min(n_treated, max(10, pool // 10))


# ----------------------------------------------------------------------------------------
# reporting


def _s(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "."
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _flag(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def report(rows: list[tuple[Outcome, Outcome | None, str]], args: argparse.Namespace) -> str:
    lines = [
        "| task | size (treated x pool) | status | time (s) | matching step (s) | runs | ratio peer/ours "
        "| peak extra RSS (MiB) | target |",
        "|---|---|---|---:|---:|---:|---:|---:|---|",
    ]
    notes = []
    for o, ref, target in rows:
        nt, npool = o.extra["size"]
        ok = o.status == "ok"
        ratio = o.seconds / ref.seconds if ok and ref is not None and ref.status == "ok" and ref.seconds else None
        status = o.status
        if not ok and o.message:
            notes.append(f"{o.name} at {nt:,} x {npool:,}: {o.status}: {o.message}")
            status += f" [{len(notes)}]"
        mib = o.peak_bytes / 2**20 if ok and o.peak_bytes is not None else None
        lines.append(
            f"| {o.name} | {nt:,} x {npool:,} | {status} | {_s(o.seconds if ok else None)} "
            f"| {_s(o.extra.get('step'))} | {o.runs} | {_s(ratio)} | {_s(mib)} | {target} |"
        )
    if notes:
        lines += ["", "Notes:", *[f"{i}. {n}" for i, n in enumerate(notes, 1)]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Benchmark evaluator.match against causalml, dowhy, causalinference.")
    p.add_argument("--quick", action="store_true", help="500 x 100,000; peers' ladder up to 30,000")
    p.add_argument("--n-treated", type=int, default=None)
    p.add_argument("--n-pool", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--budget", type=float, default=180.0, help="seconds per task (peers: per ladder step)")
    p.add_argument("--mem-limit", type=float, default=8.0, help="GiB of RSS before a task is killed")
    p.add_argument("--repeat-below", type=float, default=20.0)
    p.add_argument("--only", default=None, help="comma-separated substrings of task names")
    p.add_argument("--skip", default=None, help="comma-separated substrings of task names")
    p.add_argument("--ladder", default=None, help="comma-separated pool sizes for the peers")
    p.add_argument("--json", default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker, args.n_treated, args.n_pool, args.seed, args.out, args.repeat_below)
        return
    n_treated = args.n_treated or (500 if args.quick else 5_000)
    n_pool = args.n_pool or (100_000 if args.quick else 1_000_000)
    ladder = [int(x) for x in args.ladder.split(",")] if args.ladder else [s for s in LADDER if s <= n_pool]
    if args.quick and not args.ladder:
        ladder = [10_000, 30_000]

    def wanted(name: str) -> bool:
        if args.only and not any(k.strip() in name for k in args.only.split(",")):
            return False
        return not (args.skip and any(k.strip() in name for k in args.skip.split(",")))

    import platform

    import psutil

    print(
        f"# bench_matching.py: {n_treated:,} treated x {n_pool:,} pool, 10 covariates, seed {args.seed}, "
        f"budget {args.budget:.0f} s/task, mem limit {args.mem_limit:.0f} GiB"
    )
    print(
        f"Python {platform.python_version()}, {psutil.cpu_count(logical=True)} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, {platform.platform()}"
    )
    rows: list[tuple[Outcome, Outcome | None, str]] = []
    two_gib = 2 * 2**30
    for name in FULL_OURS:
        if not wanted(name):
            continue
        o = run(name, n_treated, n_pool, args)
        target = ""
        if o.status == "ok":
            mem_ok = o.peak_bytes is not None and o.peak_bytes < two_gib
            if name.endswith("step"):
                lim = 3.0 if "mahal" in name else 1.0
                target = f"step < {lim:g} s: {_flag(o.extra['step'] < lim)}; mem < 2 GB: {_flag(mem_ok)}"
            else:
                target = f"mem < 2 GB: {_flag(mem_ok)}"
        rows.append((o, None, target))
    for name, task in TASKS.items():
        if task.ours is None or not wanted(name):
            continue
        last_ok: Outcome | None = None
        last: Outcome | None = None
        for pool in ladder:
            nt = ladder_size(pool, n_treated, task.quadratic, n_pool)
            last = run(name, nt, pool, args)
            if last.status != "ok":
                break
            last_ok = last
        if last_ok is None:
            rows.append((last, None, "")) if last is not None else None
            continue
        nt, pool = last_ok.extra["size"]
        ours = run(task.ours, nt, pool, args)
        if task.step:  # matching step against matching step
            mine, theirs = ours.extra.get("step"), last_ok.extra.get("step")
            ratio = theirs / mine if ours.status == "ok" and mine and theirs else None
            label = f"step ratio {_s(ratio)}; >= 20x: {_flag(ratio is not None and ratio >= 20)}"
        else:
            ratio = last_ok.seconds / ours.seconds if ours.status == "ok" and ours.seconds else None
            label = f">= 20x: {_flag(ratio is not None and ratio >= 20)}"
        rows.append((ours, None, ""))
        rows.append((last_ok, ours, label))
        if last is not last_ok and last is not None:
            rows.append((last, None, "stopped here"))
    print()
    print(report(rows, args))
    if args.json:
        raw = [vars(o) for o, _, _ in rows]
        Path(args.json).write_text(json.dumps(raw, indent=1, default=str))


if __name__ == "__main__":
    main()
