"""docs/cluster.md's SLURMCluster recipe, run against a stand-in for SLURM on this machine (sbatch runs the
job script in a session of its own): the demo batch, compared with the local pool's results bit for bit."""

import hashlib
import sys
import time
from pathlib import Path

from dask.distributed import Client
from dask_jobqueue import SLURMCluster

from evaluator.runner.batch import load_batch, run_batch
from evaluator.runner.executors import DaskExecutor
from evaluator.runner.parameters import notebook_path

out, pool_out = Path(sys.argv[1]), Path(sys.argv[2])
t0 = time.perf_counter()
cluster = SLURMCluster(
    cores=2,
    processes=2,
    memory="8GB",
    walltime="01:00:00",
    queue="normal",
    job_extra_directives=["--account=my_project"],
    local_directory="$TMPDIR",
    log_directory=str(out.parent / "dask-logs"),
)
print(cluster.job_script())
cluster.scale(jobs=1)
client = Client(cluster)
client.wait_for_workers(2, timeout=120)
t1 = time.perf_counter()
print(f"workers up in {t1 - t0:.1f} s: {sorted(client.nthreads())}")
summary = run_batch(
    load_batch(notebook_path("demo_batch.yaml")), out=out, executor=DaskExecutor.from_client(client), progress=False
)
t2 = time.perf_counter()
print(summary)
print(f"batch on the stand-in: {t2 - t1:.1f} s")
rerun = run_batch(
    load_batch(notebook_path("demo_batch.yaml")), out=out, executor=DaskExecutor.from_client(client), progress=False
)
print("rerun:", rerun)
client.close()
cluster.close()


def digest(root: Path) -> dict[str, str]:
    return {p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.glob("*/results.json"))}


a, b = digest(out), digest(pool_out)
print(f"{len(a)} results.json on the stand-in, {len(b)} from the pool; identical: {a == b}")
