"""The processes of a batch: each run in a session of its own, killed with its whole tree on a timeout or Ctrl-C.

A run is ``python -m evaluator report ...``, which starts a Jupyter kernel; the
kernel runs in a session of its own, so killing the run's process group would
leave it behind. The tree below a run is therefore found with psutil and killed
process by process, as well as every process group in it.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import psutil

__all__ = ["Processes", "descendants", "kill_tree", "remove_dead_leftovers", "remove_leftovers"]

#: Seconds to wait for killed processes to be gone (SIGKILL cannot be caught; this only bounds a stuck kernel).
REAP_SECONDS = 5.0


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children, grandchildren, ...); empty when ``pid`` is gone.

    >>> import subprocess, sys
    >>> child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    >>> child.pid in descendants(os.getpid())
    True
    >>> child.kill(); child.wait()
    -9
    """
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except (psutil.Error, ValueError):  # gone, or not a process id at all
        return []


def kill_tree(proc: subprocess.Popen) -> None:
    """SIGKILL the run's process group (started with ``start_new_session``), every descendant and its group.

    A kernel that left the run's group (a session of its own) is found as a descendant; one that
    was orphaned is found by its group. Waits until the killed processes are gone.
    """
    try:
        below = psutil.Process(proc.pid).children(recursive=True)
    except psutil.Error:
        below = []
    groups = {proc.pid}
    for child in below:
        try:
            groups.add(os.getpgid(child.pid))
        except OSError:
            continue
    for group in groups - {os.getpgrp()}:  # never this process's own group (the batch's)
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            pass
    for child in below:
        try:
            child.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(below, timeout=REAP_SECONDS)
    proc.wait()


def remove_leftovers(out: Path, pid: int) -> None:
    """Remove the half-built folders of a killed run process (named ``.NAME.partial-PID-*`` by the runner)."""
    for leftover in out.glob(f".*.partial-{pid}-*"):
        shutil.rmtree(leftover, ignore_errors=True)


def remove_dead_leftovers(out: Path, name: str) -> None:
    """Remove the half-built folders of run ``name`` whose process is gone (a worker that died mid-run left them).

    A folder whose process is alive on this machine is left alone: it may be a run in progress.
    """
    pattern = re.compile(rf"^\.{re.escape(name)}\.(?:partial|old)-(\d+)-[0-9a-f]+$")
    for leftover in out.glob(f".{name}.*-*"):
        match = pattern.match(leftover.name)
        if match and not psutil.pid_exists(int(match.group(1))):
            shutil.rmtree(leftover, ignore_errors=True)


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux SIGKILL the child when the thread that started it dies (PR_SET_PDEATHSIG).

    A Dask worker killed mid-run takes its run process along, so that the retry elsewhere is the
    only one writing the run's folder (the kernel, in a session of its own, ends when its parent
    does). None where the call is not available.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the call: nobody waits for this run
            os._exit(1)

    return preexec


class Processes:
    """The run processes alive, so that an interrupted batch (Ctrl-C, SIGTERM) can kill them: they are in
    sessions of their own and do not get the terminal's signal."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.live: set[subprocess.Popen] = set()
        self.stopping = False

    def start(
        self, cmd: list[str], env: Mapping[str, str], *, die_with_parent: bool = False
    ) -> subprocess.Popen | None:
        """Start ``cmd`` in a new session, or return None when the batch is being stopped.

        ``die_with_parent``: on Linux the process is killed when the thread that started it dies
        (the Dask worker running the run was killed); the thread waits for it, so never before.
        """
        preexec = _die_with_parent() if die_with_parent else None
        with self.lock:
            if self.stopping:
                return None
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                errors="replace",
                start_new_session=True,
                env=dict(env),
                preexec_fn=preexec,
            )
            self.live.add(proc)
            return proc

    def wait(self, proc: subprocess.Popen, timeout: float | None) -> tuple[str, bool]:
        """Wait for ``proc`` at most ``timeout`` seconds; past it, kill its tree.

        Returns the process's stderr and whether it was killed for the timeout.
        """
        try:
            _stdout, stderr = proc.communicate(timeout=timeout)
            return stderr, False
        except subprocess.TimeoutExpired:
            kill_tree(proc)
            _stdout, stderr = proc.communicate()
            return stderr, True
        finally:
            with self.lock:
                self.live.discard(proc)

    def stop(self, out: Path) -> None:
        """Start no more runs; kill those alive with their trees and remove their half-built folders in ``out``."""
        with self.lock:
            self.stopping = True
            procs = list(self.live)
        for proc in procs:
            kill_tree(proc)
            remove_leftovers(out, proc.pid)
