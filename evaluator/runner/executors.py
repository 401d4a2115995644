"""Where the runs of a batch execute: a pool of processes on this machine, or a Dask cluster.

An executor takes a plain function and picklable arguments (one run of a batch, see
:func:`evaluator.runner.batch.run_task`) and hands back a future whose result is the run's
outcome; the client (:func:`evaluator.runner.batch.run_batch`) keeps the bookkeeping: the skip
check, the progress bar and ``index.html`` / ``index.json``, rewritten as each future completes.
As papermill chooses how a notebook runs from a registry of engines, a batch chooses where its
runs execute from :data:`EXECUTORS`, by name:

- ``local`` (the default): a thread pool on this machine, each thread driving one
  ``evaluator report`` process at a time (``--jobs`` of them);
- ``dask``: a ``dask.distributed`` client of a scheduler already running (``tcp://host:8786``),
  or of a ``LocalCluster`` of N worker processes started for the batch (``local:N``). Dask is
  imported only here and only then (``pip install 'evaluator[cluster]'``).

Every run is the same function whichever executor runs it, so the reports are the same bit for
bit; on Dask a run whose worker dies is submitted again elsewhere (the task's ``retries`` and the
scheduler's ``allowed-failures``), and what finished is already on the shared filesystem.

Examples
--------
>>> spec = executor_spec("local:2")
>>> spec.name, spec.scheduler, local_workers(spec.scheduler)
('dask', 'local:2', 2)
>>> with open_executor(ExecutorSpec(), jobs=2) as pool:
...     [f.result() for f in pool.as_completed([pool.submit(pow, 2, 5, key="a")])]
[32]
"""

from __future__ import annotations

import concurrent.futures
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from evaluator.runner.batch_file import BatchError

__all__ = [
    "EXECUTORS",
    "CLUSTER_EXTRA",
    "DaskExecutor",
    "Executor",
    "ExecutorSpec",
    "LocalExecutor",
    "executor_spec",
    "local_workers",
    "open_executor",
    "register_executor",
]

#: What a user without Dask is told to install.
CLUSTER_EXTRA = "pip install 'evaluator[cluster]'"
#: ``local:N``: a LocalCluster of N worker processes; otherwise a scheduler address such as ``tcp://host:8786``.
_LOCAL = re.compile(r"^local:(\d+)$")
_ADDRESS = re.compile(r"^(tcp|tls|ucx|inproc|ws|wss)://\S+$")
#: Seconds to wait for a scheduler that was named before giving up with a message.
CONNECT_SECONDS = 20
#: Input files up to this size are sent with the task to a remote cluster when a worker cannot see them.
SHIP_BYTES = 16 * 2**20


@dataclass(frozen=True)
class ExecutorSpec:
    """Which executor runs a batch: ``name`` in :data:`EXECUTORS`, and for ``dask`` the ``scheduler``.

    ``scheduler`` is ``"local:N"`` (start a LocalCluster of N worker processes on this machine) or
    the address of a running scheduler (``"tcp://host:8786"``); ``in_worker`` (Dask only) runs each
    report inside its worker process instead of a ``python -m evaluator report`` process.
    """

    name: str = "local"
    scheduler: str | None = None
    #: Run each report inside its (long-lived) worker process rather than in a process of its own.
    in_worker: bool = False

    def describe(self) -> str:
        """``"local"``, ``"dask local:2"``, ``"dask tcp://host:8786"``."""
        if self.name == "local":
            return "local"
        return f"{self.name} {self.scheduler}" if self.scheduler else self.name


def local_workers(scheduler: str | None) -> int | None:
    """N of ``"local:N"``, None for a scheduler address."""
    match = _LOCAL.match(scheduler or "")
    return int(match.group(1)) if match else None


def scheduler_problem(value: Any) -> str | None:
    """Why ``value`` is no ``--scheduler`` (``local:N`` with N >= 1, or an address), or None when it is one."""
    if not isinstance(value, str) or not value.strip():
        return f"expected 'local:N' or a scheduler address such as 'tcp://host:8786', got {value!r}"
    n = local_workers(value.strip())
    if n is not None:
        return None if n >= 1 else f"'local:N' needs at least 1 worker, got {value!r}"
    if _ADDRESS.match(value.strip()):
        return None
    return (
        "expected 'local:N' (N worker processes on this machine) or a scheduler address such as "
        f"'tcp://host:8786', got {value!r}"
    )


def executor_spec(scheduler: str | None = None, name: str | None = None) -> ExecutorSpec:
    """The executor that ``--scheduler`` / ``--executor`` (or a batch file's ``executor:``) ask for.

    A scheduler implies ``dask``; ``dask`` without a scheduler, an unknown name or a malformed
    address raises :class:`BatchError` naming the option.
    """
    if scheduler is not None:
        problem = scheduler_problem(scheduler)
        if problem:
            raise BatchError(f"--scheduler: {problem}")
        scheduler = scheduler.strip()
        if name not in (None, "dask"):
            raise BatchError(f"--scheduler {scheduler} runs on Dask; it cannot be combined with executor {name!r}")
        return ExecutorSpec("dask", scheduler)
    name = name or "local"
    if name not in EXECUTORS:
        raise BatchError(f"executor: unknown executor {name!r}; the executors are {', '.join(sorted(EXECUTORS))}")
    if name == "dask":
        raise BatchError("executor 'dask' needs a scheduler: --scheduler local:N or --scheduler tcp://host:8786")
    return ExecutorSpec(name)


# -- the interface ----------------------------------------------------------------------
class Executor:
    """Runs plain functions somewhere and hands back futures (``.result()``, ``.done()``).

    Subclasses set :attr:`name` and :attr:`slots` (runs at a time) and implement :meth:`submit`,
    :meth:`as_completed`, :meth:`everywhere`, :meth:`cancel` and :meth:`shutdown`.
    """

    name: ClassVar[str] = ""
    #: How many runs execute at a time.
    slots: int = 1
    #: Input files up to this many bytes travel with the task when a worker cannot read them (0: never).
    ship_bytes: int = 0
    #: Runs at a time on one machine, for the BLAS threads of each run process (None: unknown).
    runs_per_machine: int | None = None
    #: Seconds it took to import the executor's library and to start (or reach) its cluster, when it has one.
    import_seconds: float | None = None
    start_seconds: float | None = None

    def submit(self, fn: Callable[..., Any], /, *args: Any, key: str) -> Any:
        """Run ``fn(*args)``; ``key`` names the task (unique within the batch)."""
        raise NotImplementedError

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        """The futures in the order they finish."""
        raise NotImplementedError

    def everywhere(self, fn: Callable[..., Any], /, *args: Any) -> None:
        """Call ``fn(*args)`` in every process that runs tasks (to stop a batch's runs on an interrupt)."""
        raise NotImplementedError

    def cancel(self, futures: Iterable[Any]) -> None:
        """Drop the futures not yet started."""
        raise NotImplementedError

    def shutdown(self) -> None:
        """Release the pool (and a cluster started for the batch)."""

    def describe(self) -> str:
        """Where the runs executed, for the batch summary (``"2 jobs"``)."""
        return f"{self.slots} job{'s' if self.slots != 1 else ''}"

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


class LocalExecutor(Executor):
    """Today's pool: ``jobs`` threads on this machine, each driving one run process at a time."""

    name = "local"

    def __init__(self, spec: ExecutorSpec, *, jobs: int) -> None:
        self.slots = self.runs_per_machine = jobs
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="evaluator-batch")

    def submit(self, fn: Callable[..., Any], /, *args: Any, key: str) -> concurrent.futures.Future:
        return self._pool.submit(fn, *args)

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        return concurrent.futures.as_completed(list(futures))

    def everywhere(self, fn: Callable[..., Any], /, *args: Any) -> None:
        fn(*args)  # the runs are this process's threads

    def cancel(self, futures: Iterable[Any]) -> None:
        for future in futures:
            future.cancel()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _distributed() -> Any:
    """``dask.distributed``, or a BatchError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise BatchError(
            f"running a batch on Dask needs dask.distributed, which is not installed: {CLUSTER_EXTRA}"
        ) from None
    return distributed


class DaskExecutor(Executor):
    """A ``dask.distributed`` client: of the scheduler at ``spec.scheduler``, or of a LocalCluster (``local:N``).

    ``local:N`` starts N worker processes of one thread each on the loopback interface, with no
    dashboard, and closes them with the executor. Tasks are submitted with ``pure=False`` and
    ``retries=1``; a task whose worker dies is rescheduled on another by the scheduler.
    """

    name = "dask"

    def __init__(self, spec: ExecutorSpec, *, jobs: int | None = None) -> None:
        t0 = time.perf_counter()
        distributed = _distributed()
        t1 = time.perf_counter()
        self.import_seconds = round(t1 - t0, 3)
        self._distributed = distributed
        self._cluster = None
        self.address = spec.scheduler or ""
        n = local_workers(spec.scheduler)
        if n is not None:
            self._cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
            )
            self.client = distributed.Client(self._cluster, set_as_default=False)
            self.ship_bytes = 0  # the workers share this machine's files
            self.runs_per_machine = n
        else:
            try:
                self.client = distributed.Client(spec.scheduler, timeout=CONNECT_SECONDS, set_as_default=False)
            except (OSError, TimeoutError) as exc:
                raise BatchError(
                    f"--scheduler: no Dask scheduler answered at {spec.scheduler} within {CONNECT_SECONDS} s "
                    f"({type(exc).__name__}: {exc}); start one (dask scheduler, or a dask-jobqueue cluster, "
                    "see docs/cluster.md) or check the address"
                ) from None
            self.ship_bytes = SHIP_BYTES
        self.start_seconds = round(time.perf_counter() - t1, 3)
        threads = self.client.nthreads()
        self.slots = max(1, sum(threads.values())) if threads else 1
        self.workers = len(threads)

    @classmethod
    def from_client(cls, client: Any, *, ship_bytes: int = SHIP_BYTES) -> DaskExecutor:
        """An executor over a ``distributed.Client`` you opened (on a dask-jobqueue cluster, say); closing it is yours.

        ``ship_bytes``: input files up to this size go with the tasks to workers that cannot read them.
        """
        self = cls.__new__(cls)
        self._distributed, self._cluster, self.client = _distributed(), None, client
        self.address = str(client.scheduler.address) if client.scheduler is not None else ""
        self.ship_bytes = ship_bytes
        threads = client.nthreads()
        self.slots, self.workers = max(1, sum(threads.values())) if threads else 1, len(threads)
        return self

    def submit(self, fn: Callable[..., Any], /, *args: Any, key: str) -> Any:
        return self.client.submit(fn, *args, key=key, pure=False, retries=1)

    def as_completed(self, futures: Iterable[Any]) -> Iterator[Any]:
        return iter(self._distributed.as_completed(list(futures), loop=self.client.loop))

    def everywhere(self, fn: Callable[..., Any], /, *args: Any) -> None:
        self.client.run(fn, *args)

    def cancel(self, futures: Iterable[Any]) -> None:
        self.client.cancel(list(futures), force=True)

    def scatter(self, data: Mapping[str, bytes]) -> dict[str, Any]:
        """Send each of ``data``'s values to the cluster once; the futures stand for them in a task's arguments."""
        return {k: self.client.scatter(v, hash=False) for k, v in data.items()}

    def worker_pids(self) -> dict[str, int]:
        """The process id of each worker, by address (a test kills one)."""
        import os

        return self.client.run(os.getpid)

    def shutdown(self) -> None:
        try:
            self.client.close()
        finally:
            if self._cluster is not None:
                self._cluster.close()

    def describe(self) -> str:
        where = "a LocalCluster" if self._cluster is not None else f"the Dask scheduler {self.address}"
        return f"{self.slots} Dask worker thread{'s' if self.slots != 1 else ''} on {where}"


#: The executors by name (papermill's engine registry is the model): ``--executor NAME``, ``executor: NAME``.
EXECUTORS: dict[str, type[Executor]] = {"local": LocalExecutor, "dask": DaskExecutor}


def register_executor(name: str, cls: type[Executor]) -> None:
    """Make ``cls`` available as ``executor: NAME`` (a plug-in executor)."""
    EXECUTORS[name] = cls


def open_executor(spec: ExecutorSpec, *, jobs: int) -> Executor:
    """Start the executor ``spec`` names; ``jobs`` is the local pool's width."""
    try:
        cls = EXECUTORS[spec.name]
    except KeyError:
        raise BatchError(
            f"executor: unknown executor {spec.name!r}; the executors are {', '.join(sorted(EXECUTORS))}"
        ) from None
    return cls(spec, jobs=jobs)
