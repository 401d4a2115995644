"""A watchdog for the test processes, loaded by ``tests/conftest.py`` (or ``-p tests.watchdog``).

It ends a test process whose test hangs (over ``EVALUATOR_TEST_TIMEOUT`` seconds, 900 by default)
or whose memory, with its children's, runs past ``EVALUATOR_TEST_MAX_GB`` (8 by default), after
writing the test's name and every thread's traceback to ``EVALUATOR_TEST_WATCHDOG_DIR``
(``.pytest_cache/watchdog/`` by default). Under pytest-xdist the run then ends (``make test`` does
not replace a crashed worker) and its summary prints what the watchdog wrote; without it a hung test
holds CI until its time limit and a runaway one is ended by the kernel's OOM killer, in both cases
with nothing said about which test it was. The summary also lists the five tests that used the most
memory, so that a near miss is seen before it becomes a crash.
"""

from __future__ import annotations

import faulthandler
import heapq
import json
import os
import threading
import time
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[1]

TEST_TIMEOUT = float(os.environ.get("EVALUATOR_TEST_TIMEOUT", "900"))
TEST_MAX_BYTES = float(os.environ.get("EVALUATOR_TEST_MAX_GB", "8")) * 2**30
WATCHDOG_DIR = Path(os.environ.get("EVALUATOR_TEST_WATCHDOG_DIR") or REPO / ".pytest_cache" / "watchdog")


class _Watchdog:
    """One per test process: a file that holds the running test's name, and a thread that samples memory."""

    def __init__(self, name: str) -> None:
        WATCHDOG_DIR.mkdir(parents=True, exist_ok=True)
        # held open for the life of the process: faulthandler writes to it when the process is past saving
        self.file = open(WATCHDOG_DIR / f"{name}-{os.getpid()}.log", "w+", buffering=1)
        self.name = name
        self.test: str | None = None
        self.peak = 0  # the running test's largest sample
        self.peaks: list[tuple[int, str]] = []  # the 5 largest tests so far
        self.lock = threading.Lock()
        threading.Thread(target=self._sample, name="test-watchdog", daemon=True).start()

    def _note(self, text: str) -> None:
        self.file.seek(0)
        self.file.truncate()
        self.file.write(text)
        self.file.flush()

    def start(self, nodeid: str) -> None:
        with self.lock:
            self.test, self.peak = nodeid, 0
            self._note(f"{nodeid} ran over {TEST_TIMEOUT:.0f} s; every thread's traceback follows\n")
        faulthandler.dump_traceback_later(TEST_TIMEOUT, exit=True, file=self.file)

    def stop(self) -> None:
        faulthandler.cancel_dump_traceback_later()
        with self.lock:
            if self.test is not None:
                heapq.heappush(self.peaks, (self.peak, self.test))
                if len(self.peaks) > 5:
                    heapq.heappop(self.peaks)
            self.test = None
            self._note("")

    def write_peaks(self) -> None:
        (WATCHDOG_DIR / f"peaks-{self.name}.json").write_text(json.dumps(self.peaks))

    def _sample(self) -> None:
        me = psutil.Process()
        while True:
            time.sleep(0.5)
            try:
                tree = [me, *me.children(recursive=True)]
                used = sum(p.memory_info().rss for p in tree if p.is_running())
            except psutil.Error:
                continue
            with self.lock:
                self.peak = max(self.peak, used)
            if used <= TEST_MAX_BYTES:
                continue
            with self.lock:
                self._note(
                    f"{self.test} used {used / 2**30:.1f} GB (limit {TEST_MAX_BYTES / 2**30:g} GB, this process and "
                    f"{len(tree) - 1} below it); every thread's traceback follows\n"
                )
                faulthandler.dump_traceback(file=self.file, all_threads=True)
                self.file.flush()
            for child in tree[1:]:
                try:
                    child.kill()
                except psutil.Error:
                    pass
            os._exit(70)


_WATCHDOG: _Watchdog | None = None


def pytest_configure(config: pytest.Config) -> None:
    global _WATCHDOG
    worker = getattr(config, "workerinput", None)
    if worker is None:  # the controller (or a run without xdist), before any worker starts: an earlier run's notes go
        for old in [*WATCHDOG_DIR.glob("*.log"), *WATCHDOG_DIR.glob("peaks-*.json")]:
            old.unlink(missing_ok=True)
        if config.getoption("numprocesses", None):
            return  # the xdist controller runs no tests; it prints what its workers' watchdogs wrote
    _WATCHDOG = _Watchdog(worker["workerid"] if worker else "main")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item):
    if _WATCHDOG is not None:
        _WATCHDOG.start(item.nodeid)
    try:
        yield
    finally:
        if _WATCHDOG is not None:
            _WATCHDOG.stop()


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _WATCHDOG is not None:
        _WATCHDOG.write_peaks()


def pytest_terminal_summary(terminalreporter) -> None:
    peaks = sorted(
        (tuple(p) for f in WATCHDOG_DIR.glob("peaks-*.json") for p in json.loads(f.read_text())), reverse=True
    )
    if peaks:
        terminalreporter.section("largest memory: each test's process and those below it (kernels, browsers)")
        for used, nodeid in peaks[:5]:
            terminalreporter.write_line(f"{used / 2**30:5.2f} GB  {nodeid}")
    for log in sorted(WATCHDOG_DIR.glob("*.log")):
        text = log.read_text(errors="replace").strip()
        if text:
            terminalreporter.section(f"watchdog: {log.stem}")
            terminalreporter.write_line(text)
