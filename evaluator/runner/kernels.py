"""Report kernels started ahead of their run: a fresh kernel per report, booted while other work goes on.

A Jupyter kernel takes 0.5 to 1.5 s to boot (an interpreter, IPython, zmq), and papermill starts
one only once it has been called, then waits for it. Here the kernel process is launched first
(:func:`start_kernel`) and boots while the runner does the rest of its preparation; papermill is
handed the running kernel. In a long-lived process that runs report after report (a Dask worker,
``in_worker``), a :class:`KernelPool` keeps one spare kernel booted for the *next* report while
the current one runs.

Every report still gets a kernel of its own, used once and shut down after it: a spare has run
no code of any report when it is taken, so nothing a report sets (a variable, an import, an
option) reaches the next. A spare is started in a neutral folder with the environment of the
pool; :meth:`Kernel.prepare` moves it into its run's folder and hands it the run's variables
(``EVALUATOR_RUN_*``) by one silent execution that leaves no name behind, before the notebook's
first cell. The kernel stays a process of its own: a cell that kills it fails that report only,
and a timeout kills it with its process tree (:meth:`Kernel.kill`). A kernel whose parent dies is
ended by ipykernel itself (it polls its parent, ``JPY_PARENT_PID``), so a killed worker leaves no
kernel behind; :meth:`KernelPool.close` ends the spares when a batch ends or is interrupted.

Examples
--------
>>> pool = KernelPool(env={})  # doctest: +SKIP
>>> kernel = pool.take()       # doctest: +SKIP
>>> kernel.prepare(cwd="/tmp", env={"EVALUATOR_RUN_FINGERPRINT": "..."})  # doctest: +SKIP
>>> kernel.close(); pool.close()  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import functools
import os
import tempfile
import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["KERNEL_ARGUMENTS", "THREAD_VARS", "Kernel", "KernelPool", "kernel_env", "start_kernel"]

#: Extra arguments of every report kernel: its own log only for critical problems, and IPython's history in
#: memory (nbclient's default too): a history file on disk would be state shared between reports.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL", "--HistoryManager.hist_file=:memory:"]
#: Environment variables that set the kernel's BLAS/OpenMP threads (see ``run_report(threads=)``).
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
#: Seconds a kernel may take to boot and answer (papermill's own default start timeout).
START_SECONDS = 60.0
#: Seconds a kernel asked to shut down is given before it is killed.
SHUTDOWN_SECONDS = 3.0


@functools.cache
def _manager_class() -> type:
    """jupyter_client's synchronous KernelManager, handing out the asynchronous client nbclient awaits.

    The synchronous manager keeps plain zmq sockets, so a kernel started in one thread or event
    loop can be driven by papermill's loop later. Each client it makes is remembered, so that the
    runner can close the channels of papermill's client (papermill leaves them open when the
    kernel is not its own) and a long-lived worker does not collect open sockets.

    The client is jupyter_client's asynchronous one with a quicker ``wait_for_ready``: jupyter_client's
    ends by reading IOPub until it has been silent for 0.2 s, which every report waited for before its
    first cell. This one ends when the idle status of its own ``kernel_info`` request has come on
    IOPub: what the kernel publishes for that request has then all arrived, and is drained, and IOPub
    is shown to be connected (jupyter_client's reason to read it). nbclient reads only the messages of
    its own requests afterwards, on either channel.
    """
    import time
    from queue import Empty

    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.manager import KernelManager

    class ReportKernelClient(AsyncKernelClient):
        async def wait_for_ready(self, timeout: float | None = None) -> None:
            deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
            sent: set[str] = set()
            while True:
                sent.add(self.kernel_info())
                try:
                    reply = await self.shell_channel.get_msg(timeout=1)
                except Empty:
                    reply = None
                if reply is not None and reply["msg_type"] == "kernel_info_reply":
                    while True:  # IOPub up to the idle status of one of our requests (0.2 s per message at most)
                        try:
                            msg = await self.iopub_channel.get_msg(timeout=0.2)
                        except Empty:
                            break  # not connected yet: ask again
                        idle = msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle"
                        if idle and msg["parent_header"].get("msg_id") in sent:
                            self._handle_kernel_info_reply(reply)
                            return
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")

    class ReportKernelManager(KernelManager):
        def client(self, **kwargs: Any) -> Any:
            kc = super().client(**kwargs)
            self._evaluator_clients.append(kc)
            return kc

    ReportKernelManager.client_factory = ReportKernelClient
    return ReportKernelManager


class Kernel:
    """One Jupyter kernel process, for exactly one report.

    Parameters
    ----------
    km : jupyter_client.KernelManager
        The manager of the started kernel (from :func:`start_kernel`).
    pool : KernelPool, optional
        The pool it was taken from, which then no longer counts it as in use once closed.
    """

    def __init__(self, km: Any, pool: KernelPool | None = None) -> None:
        self.km = km
        self.pool = pool
        self.prepared = False
        self.closed = False
        self._lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        """The kernel's process id (None once it is gone)."""
        process = getattr(self.km.provisioner, "process", None)
        return getattr(process, "pid", None)

    def alive(self) -> bool:
        """Whether the kernel process is running."""
        try:
            return bool(self.km.is_alive())
        except Exception:  # a manager in a bad state is as good as a dead kernel
            return False

    def prepare(self, cwd: str | Path, env: Mapping[str, str], *, timeout: float = START_SECONDS) -> None:
        """Wait until the kernel answers, then move it into ``cwd`` and set ``env`` in its environment.

        One silent execution (no execution count, no history, no output) that deletes the names
        it binds, so the notebook's first cell finds the namespace of a kernel that has just booted.

        It also has the kernel freeze its objects when it exits (``gc.freeze`` at exit), so that the
        interpreter's last collections do not walk the whole heap of a report: a kernel that ran the
        difference-in-differences report took 1.1 s to end after its shutdown request, 0.1 s so, and
        the run waits for its kernel to end. Nothing runs after the last cell but that exit.

        Raises
        ------
        RuntimeError
            The kernel died or did not answer within ``timeout`` seconds.
        """
        code = (
            "import atexit as __evaluator_atexit, gc as __evaluator_gc, os as __evaluator_os\n"
            f"__evaluator_os.chdir({str(cwd)!r})\n"
            f"__evaluator_os.environ.update({dict(env)!r})\n"
            "__evaluator_atexit.register(__evaluator_gc.freeze)\n"
            "del __evaluator_atexit, __evaluator_gc, __evaluator_os\n"
        )
        import time
        from queue import Empty

        # The shell channel only: its replies say when the kernel is up and when the code ran. A client's
        # own wait_for_ready also drains the IOPub channel for 0.2 s, which nbclient does again after this.
        kc = self.km.blocking_client()
        kc.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        deadline = time.monotonic() + timeout
        try:
            reply = None
            for request in (kc.kernel_info, lambda: kc.execute(code, silent=True, store_history=False)):
                msg_id = request()
                while True:
                    if not self.alive():
                        raise RuntimeError("the kernel died")
                    try:
                        reply = kc.get_shell_msg(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
                    except Empty:
                        if time.monotonic() > deadline:
                            raise TimeoutError(f"no answer within {timeout:g} s") from None
                        continue
                    if reply.get("parent_header", {}).get("msg_id") == msg_id:
                        break
        except Exception as exc:
            raise RuntimeError(f"the report kernel did not start: {type(exc).__name__}: {exc}") from exc
        finally:
            kc.stop_channels()
        if reply["content"].get("status") != "ok":
            raise RuntimeError(f"the report kernel refused its run's folder {cwd}: {reply['content'].get('evalue')}")
        self.prepared = True

    def request_shutdown(self) -> None:
        """Ask the kernel to end, without waiting: it winds down while the runner exports the report."""
        if self.closed:
            return
        try:
            if self.km.is_alive():
                self.km.request_shutdown()
        except Exception:  # already gone, or its control socket is: close() kills what is left
            pass

    def kill(self) -> None:
        """SIGKILL the kernel and every process below it (a timeout, an interrupted batch); close() still follows."""
        import psutil

        pid = self.pid
        if pid is None:
            return
        try:
            top = psutil.Process(pid)
            victims = [top, *top.children(recursive=True)]
        except psutil.Error:
            return
        for victim in victims:
            try:
                victim.kill()
            except psutil.Error:
                pass
        psutil.wait_procs(victims, timeout=5)

    def close(self) -> None:
        """End the kernel (politely if :meth:`request_shutdown` was called, else at once) and free its files.

        Idempotent; never raises. Afterwards no process of this kernel is left: a call while another
        thread closes the kernel returns when that close has ended.
        """
        with self._lock:
            if self.closed:
                return
            self.closed = True
            self._close()

    def _close(self) -> None:
        for kc in getattr(self.km, "_evaluator_clients", ()):
            try:
                kc.stop_channels()
            except Exception:
                pass
        try:
            if self.km.has_kernel:
                from jupyter_client.manager import _ShutdownStatus

                if getattr(self.km, "_shutdown_status", None) == _ShutdownStatus.ShutdownRequest:
                    self.km.finish_shutdown(waittime=SHUTDOWN_SECONDS)
                else:  # never asked (a failure, an interrupt): nothing left to wait for
                    self.km.shutdown_kernel(now=True)
        except Exception:
            pass
        self.kill()  # what is left of it, and anything it started
        try:
            self.km.cleanup_resources()
        except Exception:
            pass
        if self.pool is not None:
            self.pool._released(self)


def start_kernel(
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | Path | None = None,
    kernel_name: str | None = None,
    extra_arguments: Sequence[str] = KERNEL_ARGUMENTS,
    pool: KernelPool | None = None,
) -> Kernel:
    """Launch a kernel and return at once: it boots in its own process while the caller goes on.

    Parameters
    ----------
    env : mapping, optional
        The kernel's whole environment (default: this process's).
    cwd : str or Path, optional
        The folder it starts in (default: the temporary folder; :meth:`Kernel.prepare` moves it).
    kernel_name : str, optional
        The Jupyter kernel (default ``python3``).
    extra_arguments : sequence of str
        Arguments of the kernel process.
    pool : KernelPool, optional
        The pool the kernel belongs to.

    Returns
    -------
    Kernel
    """
    km = _manager_class()(kernel_name=kernel_name or "python3")
    km._evaluator_clients = []
    km.start_kernel(
        extra_arguments=list(extra_arguments),
        env=dict(os.environ if env is None else env),
        cwd=str(cwd or tempfile.gettempdir()),
    )
    return Kernel(km, pool)


def kernel_env(threads: int = 1, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a report kernel: ``base`` (default: this process's) with its BLAS/OpenMP threads set.

    A run's own variables (``EVALUATOR_RUN_*``) are not in it: :meth:`Kernel.prepare` hands them over.
    """
    return {**(os.environ if base is None else base), **dict.fromkeys(THREAD_VARS, str(threads))}


class KernelPool:
    """Fresh kernels for the reports of one process, each booted while the report before it runs.

    :meth:`take` hands out the spare kernel (started during the previous report) and starts the
    next spare, so a report rarely waits for a kernel to boot. A kernel is never handed out twice.

    Parameters
    ----------
    env : mapping
        The environment of every kernel of the pool (a report's own variables come with
        :meth:`Kernel.prepare`).
    spares : int
        Kernels kept booted ahead (0: each kernel starts when it is taken).
    kernel_name : str, optional
        The Jupyter kernel (default ``python3``).
    """

    def __init__(self, env: Mapping[str, str], *, spares: int = 1, kernel_name: str | None = None) -> None:
        self.env = dict(env)
        self.spares = spares
        self.kernel_name = kernel_name
        self._lock = threading.Lock()
        self._idle: list[Kernel] = []
        self._taken: set[Kernel] = set()
        self._closed = False
        _POOLS.add(self)

    def launch(self) -> KernelPool:
        """Start a kernel now, for a later :meth:`take`: a pool of ``spares=0`` then holds just it. Returns the pool.

        ``evaluator report`` launches its kernel so, before it imports pandas and papermill and checks
        the parameters, and the kernel boots meanwhile.
        """
        kernel = start_kernel(env=self.env, kernel_name=self.kernel_name, pool=self)
        with self._lock:
            closed = self._closed
            if not closed:
                self._idle.append(kernel)
        if closed:
            kernel.close()
        return self

    def take(self) -> Kernel:
        """A kernel that has run nothing yet, in use until it is closed; then the next spare starts.

        Raises
        ------
        RuntimeError
            The pool is closed (the batch was stopped).
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("the batch was stopped: no kernel is started any more")
            kernel = self._idle.pop(0) if self._idle else None
        if kernel is not None and not kernel.alive():  # killed or crashed while it waited: a new one
            kernel.close()
            kernel = None
        if kernel is None:
            kernel = start_kernel(env=self.env, kernel_name=self.kernel_name, pool=self)
        with self._lock:
            self._taken.add(kernel)
        self._refill()
        return kernel

    def _refill(self) -> None:
        while True:
            with self._lock:
                if self._closed or len(self._idle) >= self.spares:
                    return
            spare = start_kernel(env=self.env, kernel_name=self.kernel_name, pool=self)
            with self._lock:
                if self._closed:  # closed while it started
                    break
                self._idle.append(spare)
        spare.close()

    def _released(self, kernel: Kernel) -> None:
        with self._lock:
            self._taken.discard(kernel)
            if kernel in self._idle:
                self._idle.remove(kernel)

    def pids(self) -> list[int]:
        """Process ids of the pool's kernels alive, spares and in use (a test looks for orphans)."""
        with self._lock:
            kernels = [*self._idle, *self._taken]
        return [k.pid for k in kernels if k.pid is not None and not k.closed]

    def kill_taken(self) -> None:
        """Kill the kernels in use (a report over its timeout); the runs they serve then fail."""
        with self._lock:
            taken = list(self._taken)
        for kernel in taken:
            kernel.kill()

    def close(self) -> None:
        """Start no more kernels; end the spares and kill those in use. Idempotent."""
        with self._lock:
            self._closed = True
            kernels = [*self._idle, *self._taken]
            self._idle.clear()
        for kernel in kernels:
            if kernel in self._taken:
                kernel.kill()
            kernel.close()
        _POOLS.discard(self)


#: Pools alive in this process, closed when it exits normally (a worker that is shut down).
_POOLS: weakref.WeakSet[KernelPool] = weakref.WeakSet()


@atexit.register
def _close_pools() -> None:
    for pool in list(_POOLS):
        pool.close()
