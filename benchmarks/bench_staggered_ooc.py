"""Out-of-core staggered_did against the in-memory path: wall time and peak memory on one Parquet file.

    python benchmarks/bench_staggered_ooc.py --units 2000000 --periods 10 [--cluster] [--unbalanced 0.1]

Writes the panel of ``make_panel`` (sorted by unit, then period) once, then runs each path in
its own process and reports the wall time and the process's peak resident memory
(``VmHWM`` of ``/proc/self/status``, Linux): ``memory`` reads the file with pandas and calls ``staggered_did`` on
the frame; ``ooc`` passes the path (record batches in blocks of whole units). Both with
``n_boot=0`` (analytic standard errors), never-treated controls, and the largest difference
between the two results' ATT(g,t) and standard errors.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

CHILD = r"""
import json, sys, time, warnings
import numpy as np, pandas as pd
from evaluator.estimators.staggered import staggered_did
mode, path, cluster, whole = sys.argv[1], sys.argv[2], sys.argv[3] or None, sys.argv[4] == "1"
kw = dict(outcome="y", unit="unit", time="time", cohort="cohort", n_boot=0, cluster=cluster,
          allow_unbalanced_panel=whole)
start = time.perf_counter()
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    if mode == "memory":
        cols = ["unit", "time", "cohort", "y"] + ([cluster] if cluster else [])
        res = staggered_did(pd.read_parquet(path, columns=cols), **kw)
    else:
        res = staggered_did(path, **kw)
seconds = time.perf_counter() - start
res.aggregate("dynamic")
# VmHWM, not ru_maxrss: the latter keeps the parent's high-water mark across fork and exec
peak = next(int(x.split()[1]) for x in open("/proc/self/status") if x.startswith("VmHWM")) / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "att": res.att_gt["att"].tolist(),
                  "se": res.att_gt["se"].tolist()}))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--units", type=int, default=2_000_000)
    ap.add_argument("--periods", type=int, default=10)
    ap.add_argument("--cluster", action="store_true")
    ap.add_argument(
        "--unbalanced",
        type=float,
        default=0.0,
        help="drop this share of rows at random and use every row (allow_unbalanced_panel=True)",
    )
    ap.add_argument("--path", default=None)
    args = ap.parse_args()
    tag = f"{args.units}x{args.periods}" + (f"-drop{args.unbalanced}" if args.unbalanced else "")
    path = Path(args.path or f"/tmp/bench_ooc_{tag}.parquet")
    if not path.exists():
        sys.path.insert(0, str(Path(__file__).parent))
        import numpy as np
        from make_panel import make_panel

        t0 = time.perf_counter()
        frame = make_panel(n_units=args.units, n_periods=args.periods, seed=0)
        if args.unbalanced:
            frame = frame[np.random.default_rng(1).random(len(frame)) >= args.unbalanced]
        frame.to_parquet(path, index=False)
        print(f"wrote {path} ({len(frame):,} rows) in {time.perf_counter() - t0:.1f} s")
    out = {}
    for mode in ("memory", "ooc"):
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                CHILD,
                mode,
                str(path),
                "cluster" if args.cluster else "",
                "1" if args.unbalanced else "0",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        out[mode] = json.loads(run.stdout.strip().splitlines()[-1])
        print(f"{mode:>6}: {out[mode]['seconds']:.2f} s, peak RSS {out[mode]['peak_mb']:.0f} MB")
    import numpy as np

    d_att = np.max(np.abs(np.subtract(out["memory"]["att"], out["ooc"]["att"])))
    d_se = np.nanmax(np.abs(np.divide(out["memory"]["se"], out["ooc"]["se"]) - 1))
    print(f"largest difference: ATT {d_att:.1e}, SE (relative) {d_se:.1e}")


if __name__ == "__main__":
    main()
