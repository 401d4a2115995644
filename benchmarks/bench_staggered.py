"""Benchmark ``evaluator.staggered_did`` against Callaway-Sant'Anna peers.

Run from the repository root, in the peers venv (see benchmarks/README.md)::

    python benchmarks/bench_staggered.py            # 1,000,000 rows
    python benchmarks/bench_staggered.py --quick    # 100,000 rows (smoke run)
    python benchmarks/bench_staggered.py --big      # 10,000,000 rows

Method
------
Every task runs in its own subprocess, which builds the same frame
(:func:`make_panel.make_panel`, same seed), so tasks cannot share caches or leak
memory into each other, and a task over the time budget can be killed.

* Time: ``time.perf_counter`` around the call only (frame building and imports
  excluded). A task is repeated up to 3 times and the best time reported when its
  first run took less than ``--repeat-below`` seconds (default 20 s); slower tasks
  run once.
* Peak memory: a thread samples the process RSS (``psutil``) every 5 ms while the
  task runs; the reported figure is the peak RSS minus the RSS just before the
  call (frame already built, ``gc.collect()`` done), i.e. the extra memory the
  estimator needed on top of its input. ``peak/input`` divides it by the bytes of
  the input frame (``DataFrame.memory_usage(deep=True).sum()``). ``tracemalloc`` is
  not used: it slows numpy-heavy code by an order of magnitude at 10M rows and
  misses memory allocated outside Python's allocator.
* Budget: a task whose first run exceeds ``--budget`` seconds (default 300) is
  reported as ``>budget``; its subprocess is killed once it overruns the budget
  plus a set-up allowance (frame building, fast repeats). A task whose RSS passes
  ``--mem-limit`` GiB (default 16) is killed and reported as ``>memory``, so a
  memory-hungry peer cannot take the machine down at 10M rows.
* Agreement: ATT(g,t) estimates and standard errors are aligned on (cohort, time)
  and the max absolute difference is reported against ours (or, when ours is not
  available, against the first peer of the same configuration). Bootstrap SEs are
  random, so their differences are Monte Carlo noise, not disagreement.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from make_panel import make_panel  # noqa: E402

COVARIATES = ["x1", "x2"]
N_BOOT = 999


# ----------------------------------------------------------------------------------------
# measuring


class PeakRSS:
    """Context manager sampling the RSS of this process in a thread.

    ``peak`` is the highest RSS seen (bytes) and ``delta`` the peak minus the RSS on
    entry.
    """

    def __init__(self, interval: float = 0.005) -> None:
        import psutil

        self._proc = psutil.Process()
        self.interval = interval
        self.base = 0
        self.peak = 0
        self._stop = threading.Event()

    def _run(self) -> None:
        while not self._stop.is_set():
            rss = self._proc.memory_info().rss
            if rss > self.peak:
                self.peak = rss
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.base = self.peak = self._proc.memory_info().rss
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def delta(self) -> int:
        return self.peak - self.base


@dataclass
class Task:
    """One thing to time: ``fn(df)`` returns a frame of estimates (or None)."""

    name: str
    group: str  # configuration the task belongs to ("floor", "analytic", ...)
    library: str
    fn: Callable[[pd.DataFrame], pd.DataFrame | None]
    imports: tuple[str, ...] = ()  # imported before measuring, so import cost is not counted


@dataclass
class Outcome:
    name: str
    group: str
    library: str
    status: str = "ok"  # ok | not available | >budget | >memory | error
    seconds: float | None = None
    runs: int = 0
    peak_bytes: int | None = None
    input_bytes: int = 0
    estimates: pd.DataFrame | None = None
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def measure(task: Any, df: pd.DataFrame, res: Outcome, repeat_below: float) -> None:
    """Time ``task.fn(df)`` (best of up to 3 runs while a run is quicker than ``repeat_below`` s) into ``res``.

    Peak extra RSS over the runs, and the estimates of the last; a missing library or a failure is
    recorded in ``res.status`` instead of raised. Shared by every benchmark's worker.
    """
    for module in task.imports:
        try:
            __import__(module)
        except ImportError:
            pass  # the task itself reports "not available"
    try:
        best = np.inf
        peak = 0
        est = None
        while True:
            with PeakRSS() as mem:
                t0 = time.perf_counter()
                est = task.fn(df)
                dt = time.perf_counter() - t0
            best = min(best, dt)
            peak = max(peak, mem.delta)
            res.runs += 1
            if res.runs >= 3 or dt >= repeat_below:
                break
            del est
            gc.collect()
        res.seconds, res.peak_bytes, res.estimates = best, peak, est
    except NotAvailable as exc:
        res.status, res.message = "not available", str(exc)
    except Exception as exc:  # report, do not crash the harness
        res.status, res.message = "error", f"{type(exc).__name__}: {exc}"[:300]


def worker(tasks: dict[str, Task], name: str, n_units: int, seed: int, out: str, repeat_below: float) -> None:
    """Run one task in this process and pickle an :class:`Outcome` to ``out``."""
    warnings.filterwarnings("ignore")
    task = tasks[name]
    res = Outcome(task.name, task.group, task.library)
    df = make_panel(n_units=n_units, seed=seed)
    res.input_bytes = int(df.memory_usage(deep=True).sum())
    measure(task, df, res, repeat_below)
    with open(out, "wb") as fh:
        pickle.dump(res, fh)


def _run_watched(cmd: list[str], timeout: float, mem_limit: float, log: str) -> tuple[str, str] | None:
    """Run ``cmd``; kill it past ``timeout`` seconds or ``mem_limit`` bytes of RSS.

    Returns ``(status, message)`` when it was killed, else None. Output goes to ``log``.
    """
    import psutil

    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
        watched = psutil.Process(proc.pid)
        t0 = time.perf_counter()
        peak = 0
        while proc.poll() is None:
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.Error:
                pass
            elapsed = time.perf_counter() - t0
            verdict = None
            if elapsed > timeout:
                verdict = (">budget", f"killed after {elapsed:.0f} s")
            elif peak > mem_limit:
                verdict = (">memory", f"killed at {peak / 2**30:.1f} GiB RSS (limit {mem_limit / 2**30:.1f} GiB)")
            if verdict:
                proc.kill()
                proc.wait()
                return verdict
            time.sleep(0.1)
    return None


def run_task(script: Path, task: Task, args: argparse.Namespace) -> Outcome:
    """Run ``task`` in a fresh interpreter with a wall-clock budget."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out.pkl")
        cmd = [
            sys.executable,
            str(script),
            "--worker",
            task.name,
            "--n-units",
            str(args.n_units),
            "--seed",
            str(args.seed),
            "--out",
            out,
            "--repeat-below",
            str(args.repeat_below),
        ]
        # budget for the first run, plus frame building and up to 3 fast repeats
        timeout = args.budget + 3 * args.repeat_below + 60 + args.n_units / 50_000
        t0 = time.perf_counter()
        killed = _run_watched(cmd, timeout, args.mem_limit * 2**30, os.path.join(tmp, "log.txt"))
        if killed:
            status, message = killed
            return Outcome(task.name, task.group, task.library, status=status, message=message)
        wall = time.perf_counter() - t0
        if not os.path.exists(out):
            tail = Path(tmp, "log.txt").read_text(errors="replace").strip().splitlines()[-3:]
            return Outcome(task.name, task.group, task.library, status="error", message=" | ".join(tail)[:300])
        with open(out, "rb") as fh:
            res: Outcome = pickle.load(fh)
        res.extra["wall"] = wall
        if res.status == "ok" and res.seconds is not None and res.seconds > args.budget:
            res.status = ">budget"
        return res


class NotAvailable(RuntimeError):
    """The library or function is not installed / not written yet."""


def resolve(module: str, name: str) -> Callable[..., Any]:
    """``module.name`` (e.g. ``evaluator.estimators.twfe.did``), or ``evaluator.name``; NotAvailable if neither.

    ``from evaluator import did`` would give the *module* ``evaluator.did`` when the
    package does not re-export the function, hence the explicit lookup.
    """
    import importlib
    import types

    errors = []
    for mod_name in (module, "evaluator"):
        try:
            obj = getattr(importlib.import_module(mod_name), name, None)
        except ImportError as exc:
            errors.append(str(exc))
            continue
        if callable(obj) and not isinstance(obj, types.ModuleType):
            return obj
    raise NotAvailable(f"{module}.{name} not importable ({'; '.join(errors) or 'not defined'})")


# ----------------------------------------------------------------------------------------
# tasks


def _gt_frame(cohort: Any, time_: Any, att: Any, se: Any) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "cohort": np.asarray(cohort, dtype=float),
            "time": np.asarray(time_, dtype=float),
            "att": np.asarray(att, dtype=float),
            "se": np.asarray(se, dtype=float),
        }
    )
    return out.sort_values(["cohort", "time"]).reset_index(drop=True)


def floor(df: pd.DataFrame) -> None:
    df.groupby(["cohort", "time"])["y"].mean()
    return None


def _ours(**kwargs: Any) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def fn(df: pd.DataFrame) -> pd.DataFrame:
        staggered_did = resolve("evaluator.estimators.staggered", "staggered_did")
        res = staggered_did(df, outcome="y", unit="unit", time="time", cohort="cohort", seed=0, **kwargs)
        gt = res.att_gt
        return _gt_frame(gt["cohort"], gt["time"], gt["att"], gt["se"])

    return fn


def _csdid(est_method: str, covariates: bool, bstrap: bool) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def fn(df: pd.DataFrame) -> pd.DataFrame:
        try:
            from csdid.att_gt import ATTgt
        except ImportError as exc:
            raise NotAvailable(str(exc)) from exc
        np.random.seed(0)  # noqa: NPY002 - csdid's multiplier bootstrap draws from the global state
        model = ATTgt(
            yname="y",
            tname="time",
            idname="unit",
            gname="cohort",
            data=df,
            control_group="nevertreated",
            xformla="y ~ " + " + ".join(COVARIATES) if covariates else None,
            biters=N_BOOT,
        )
        r = model.fit(est_method=est_method, bstrap=bstrap).results
        return _gt_frame(r["group"], r["year"], r["att"], r["se"])

    return fn


def _differences(est_method: str, covariates: bool, boot: int) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def fn(df: pd.DataFrame) -> pd.DataFrame:
        try:
            from differences import ATTgt
        except ImportError as exc:
            raise NotAvailable(str(exc)) from exc
        # differences wants a (unit, time) index and never-treated cohort coded NaN
        d = df.assign(cohort=df["cohort"].where(df["cohort"] > 0)).set_index(["unit", "time"])
        model = ATTgt(data=d, cohort_column="cohort")
        formula = "y ~ " + " + ".join(COVARIATES) if covariates else "y"
        model.fit(
            formula=formula,
            est_method=est_method,
            control_group="never_treated",
            boot_iterations=boot,
            random_state=0,
            progress_bar=False,
        )
        r = model.results()
        r.columns = [c[-1] for c in r.columns]
        r = r.reset_index()
        return _gt_frame(r["cohort"], r["time"], r["ATT"], r["std_error"])

    return fn


def _diffdiff(est_method: str, covariates: bool, boot: int) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def fn(df: pd.DataFrame) -> pd.DataFrame:
        try:
            from diff_diff import CallawaySantAnna
        except ImportError as exc:
            raise NotAvailable(str(exc)) from exc
        model = CallawaySantAnna(
            control_group="never_treated",
            estimation_method=est_method,
            n_bootstrap=boot,
            seed=0,
        )
        r = model.fit(
            df,
            outcome="y",
            unit="unit",
            time="time",
            first_treat="cohort",
            covariates=COVARIATES if covariates else None,
        )
        gt = r.to_dataframe()
        return _gt_frame(gt["group"], gt["time"], gt["effect"], gt["se"])

    return fn


# configurations: "analytic" = unconditional, analytic SEs; "bootstrap" = unconditional
# with 999 multiplier-bootstrap draws; "dr" = doubly robust with x1, x2, analytic SEs.
# Without covariates every peer's "reg" (outcome regression on a constant) is the
# unconditional 2x2 DiD, which is what method="unconditional" computes.
TASKS: dict[str, Task] = {
    t.name: t
    for t in [
        Task("floor groupby mean", "floor", "pandas", floor),
        Task(
            "ours unconditional",
            "analytic",
            "evaluator",
            _ours(method="unconditional", n_boot=0),
            ("evaluator", "evaluator.estimators.staggered"),
        ),
        Task("csdid reg", "analytic", "csdid", _csdid("reg", False, False), ("csdid.att_gt",)),
        Task("differences reg", "analytic", "differences", _differences("reg", False, 0), ("differences",)),
        Task("diff-diff reg", "analytic", "diff-diff", _diffdiff("reg", False, 0), ("diff_diff",)),
        Task(
            "ours unconditional, 999 boot",
            "bootstrap",
            "evaluator",
            _ours(method="unconditional", n_boot=N_BOOT),
            ("evaluator", "evaluator.estimators.staggered"),
        ),
        Task("csdid reg, bstrap 999", "bootstrap", "csdid", _csdid("reg", False, True), ("csdid.att_gt",)),
        Task(
            "differences reg, 999 boot",
            "bootstrap",
            "differences",
            _differences("reg", False, N_BOOT),
            ("differences",),
        ),
        Task("diff-diff reg, 999 boot", "bootstrap", "diff-diff", _diffdiff("reg", False, N_BOOT), ("diff_diff",)),
        Task(
            "ours dr x1+x2",
            "dr",
            "evaluator",
            _ours(method="dr", covariates=COVARIATES, n_boot=0),
            ("evaluator", "evaluator.estimators.staggered"),
        ),
        Task("csdid dr x1+x2", "dr", "csdid", _csdid("dr", True, False), ("csdid.att_gt",)),
        Task("differences dr x1+x2", "dr", "differences", _differences("dr", True, 0), ("differences",)),
        Task("diff-diff dr x1+x2", "dr", "diff-diff", _diffdiff("dr", True, 0), ("diff_diff",)),
    ]
}


# ----------------------------------------------------------------------------------------
# reporting


def max_abs_diff(a: pd.DataFrame | None, b: pd.DataFrame | None) -> tuple[float, float, int]:
    """Max |difference| in att and se of two (cohort, time, att, se) frames aligned on (cohort, time)."""
    if a is None or b is None or a.empty or b.empty:
        return np.nan, np.nan, 0
    m = a.merge(b, on=["cohort", "time"], suffixes=("_a", "_b"))
    if m.empty:
        return np.nan, np.nan, 0
    datt = np.nanmax(np.abs(m["att_a"] - m["att_b"])) if m[["att_a", "att_b"]].notna().any().all() else np.nan
    dse = np.nanmax(np.abs(m["se_a"] - m["se_b"])) if m[["se_a", "se_b"]].notna().all(axis=1).any() else np.nan
    return float(datt), float(dse), len(m)


def _fmt_s(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "."
    return f"{x:.3f}" if x < 10 else f"{x:.1f}"


def _fmt_g(x: float | None) -> str:
    if x is None or not np.isfinite(x):
        return "."
    return f"{x:.1e}" if x != 0 else "0"


def report(outcomes: list[Outcome], ours_library: str = "evaluator") -> str:
    """Markdown table of times, ratios, memory and agreement."""
    by_name = {o.name: o for o in outcomes}
    floor_o = next((o for o in outcomes if o.group == "floor" and o.status == "ok"), None)
    floor_s = floor_o.seconds if floor_o else None
    lines = [
        "| task | status | time (s) | runs | x floor | ours / this | peak extra RSS (MiB) | peak / input "
        "| vs | max abs d att | max abs d se | cells |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|",
    ]
    notes: list[str] = []
    groups: dict[str, list[Outcome]] = {}
    for o in outcomes:
        groups.setdefault(o.group, []).append(o)
    for group, members in groups.items():
        ours = next((o for o in members if o.library == ours_library and o.status == "ok"), None)
        ref = ours or next((o for o in members if o.status == "ok" and o.estimates is not None), None)
        for o in members:
            ok = o.status == "ok"
            secs = o.seconds if ok else None
            x_floor = secs / floor_s if ok and floor_s else None
            ratio = ours.seconds / secs if ok and ours and secs else None
            mib = o.peak_bytes / 2**20 if ok and o.peak_bytes is not None else None
            per_input = o.peak_bytes / o.input_bytes if ok and o.peak_bytes is not None and o.input_bytes else None
            if ok and ref is not None and ref is not o and o.estimates is not None:
                datt, dse, cells = max_abs_diff(ref.estimates, o.estimates)
                vs = ref.library
            else:
                datt = dse = np.nan
                cells = len(o.estimates) if ok and o.estimates is not None else 0
                vs = "(reference)" if o is ref and group != "floor" else ""
            status = o.status
            if not ok and o.message:
                notes.append(f"- {o.name}: {o.status}: {o.message}")
                status += f" [{len(notes)}]"
            lines.append(
                f"| {o.name} | {status} | {_fmt_s(secs)} | {o.runs} | {_fmt_s(x_floor)} | {_fmt_s(ratio)} "
                f"| {_fmt_s(mib)} | {_fmt_s(per_input)} | {vs} | {_fmt_g(datt)} | {_fmt_g(dse)} | {cells or '.'} |"
            )
    # pairwise agreement of everything that produced estimates, within each configuration
    pair_lines = ["", "Pairwise agreement within each configuration (max abs difference, aligned on (g, t)):", ""]
    pair_lines += ["| configuration | a | b | d att | d se | cells |", "|---|---|---|---:|---:|---:|"]
    for group, members in groups.items():
        have = [o for o in members if o.status == "ok" and o.estimates is not None]
        for i, a in enumerate(have):
            for b in have[i + 1 :]:
                datt, dse, cells = max_abs_diff(a.estimates, b.estimates)
                pair_lines.append(f"| {group} | {a.library} | {b.library} | {_fmt_g(datt)} | {_fmt_g(dse)} | {cells} |")
    del by_name
    notes = ["", "Notes:", *[f"{i}. {n[2:]}" for i, n in enumerate(notes, 1)]] if notes else []
    return "\n".join(lines + notes + pair_lines)


def parse_args(argv: list[str] | None, description: str, tasks: dict[str, Task]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="100,000 rows (smoke run)")
    size.add_argument("--big", action="store_true", help="10,000,000 rows")
    size.add_argument("--n-units", type=int, default=None, help="units (rows = 10 x units); default 100,000")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--budget", type=float, default=300.0, help="seconds per task before it is skipped")
    parser.add_argument(
        "--mem-limit", type=float, default=16.0, help="GiB of RSS per task before it is killed (>memory)"
    )
    parser.add_argument("--repeat-below", type=float, default=20.0, help="repeat (best of 3) tasks faster than this")
    parser.add_argument("--only", default=None, help="comma-separated substrings; run tasks whose name matches")
    parser.add_argument("--skip", default=None, help="comma-separated substrings; skip tasks whose name matches")
    parser.add_argument("--json", default=None, help="also write the raw outcomes (without estimates) here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.n_units is None:
        args.n_units = 10_000 if args.quick else 1_000_000 if args.big else 100_000
    return args


def main(script: Path, tasks: dict[str, Task], description: str, argv: list[str] | None = None) -> list[Outcome]:
    """Parse arguments, run each task in a subprocess, print the markdown report."""
    args = parse_args(argv, description, tasks)
    if args.worker:
        worker(tasks, args.worker, args.n_units, args.seed, args.out, args.repeat_below)
        return []
    selected = list(tasks.values())
    if args.only:
        keys = [k.strip() for k in args.only.split(",")]
        selected = [t for t in selected if t.group == "floor" or any(k in t.name for k in keys)]
    if args.skip:
        keys = [k.strip() for k in args.skip.split(",")]
        selected = [t for t in selected if not any(k in t.name for k in keys)]
    import platform

    import psutil

    print(
        f"# {script.name}: {args.n_units * 10:,} rows ({args.n_units:,} units x 10 periods), seed {args.seed}, "
        f"budget {args.budget:.0f} s/task"
    )
    print(
        f"Python {platform.python_version()}, {psutil.cpu_count(logical=True)} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB RAM, {platform.platform()}"
    )
    outcomes = []
    for task in selected:
        print(f"running {task.name} ...", file=sys.stderr, flush=True)
        o = run_task(script, task, args)
        extra = f" ({o.message})" if o.message else ""
        shown = f"{o.seconds:.3f} s" if o.seconds is not None else o.status
        print(f"  {shown}{extra}", file=sys.stderr, flush=True)
        outcomes.append(o)
    print()
    print(report(outcomes))
    if args.json:
        raw = [
            {k: v for k, v in vars(o).items() if k != "estimates"}
            | {"cells": None if o.estimates is None else len(o.estimates)}
            for o in outcomes
        ]
        Path(args.json).write_text(json.dumps(raw, indent=1, default=str))
    return outcomes


if __name__ == "__main__":
    main(Path(__file__).resolve(), TASKS, "Benchmark evaluator.staggered_did against csdid, differences, diff-diff.")
