"""The parent of forked workers: fork them, restart any that dies, stop them gracefully.

A small fork/wait loop (Tornado's ``fork_processes`` forwards no signal and gives up
after a number of restarts, orphaning the rest). The parent keeps the table of its
workers' PIDs and nothing else:

* a worker that exits while the server runs is restarted under the same task id,
  after ``on_worker_exit(pid)`` was called (the hook for whatever keeps per-process
  state, e.g. Prometheus' multiprocess mode);
* SIGTERM or SIGINT to the parent calls ``on_stop()`` (the serving core closes the
  parent's copies of the listening sockets there, so new connections are refused at
  once) and passes SIGTERM on to every worker in the table; the parent then waits for
  each to finish its drain and returns;
* the signals are blocked around each fork, so a stop signal can never miss a worker
  that was just forked; every worker asks the kernel for SIGTERM should the parent die
  without warning (``PR_SET_PDEATHSIG``), so no worker outlives its supervisor;
  ``on_worker_start()`` runs in each new worker while they are still blocked (the
  serving core installs the worker's own stop handling there).

The parent stays in the terminal's foreground process group, so Ctrl-C reaches the
workers too; each worker ignores the second stop signal while it drains.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("app")
PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
#: A worker that dies this many times within ``CRASH_WINDOW`` seconds is a crash
#: loop: the parent stops the others and exits 1 rather than fork forever.
MAX_QUICK_RESTARTS = 100
CRASH_WINDOW = 60.0


class Supervisor:
    """Fork ``count`` workers and supervise them (see the module docstring)."""

    def __init__(
        self,
        count: int,
        *,
        on_stop: Callable[[], None] | None = None,
        on_worker_exit: Callable[[int], None] | None = None,
        on_worker_start: Callable[[], None] | None = None,
    ) -> None:
        self.count = count or os.cpu_count() or 1
        self.on_stop = on_stop
        self.on_worker_exit = on_worker_exit
        self.on_worker_start = on_worker_start
        self.workers: dict[int, int] = {}  # pid -> task id
        self.stopping = False
        self._restarts: list[float] = []
        self.exit_status = 0

    def run(self) -> int | None:
        """In a worker: return its task id (0 to count-1). In the parent: supervise until
        every worker has exited after a stop, then return None (``exit_status`` says 0
        after a graceful stop, 1 after a crash loop)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._stop)
        for task_id in range(self.count):
            if self._fork(task_id):
                return task_id
        while self.workers:
            try:
                pid, status = os.wait()
            except ChildProcessError:
                break
            task_id = self.workers.pop(pid, None)
            if task_id is None:
                continue
            if self.on_worker_exit is not None:
                self.on_worker_exit(pid)
            if self.stopping:
                continue
            log.warning("supervisor: worker %d %s; restarting", pid, _describe(status))
            if self._crash_loop():
                log.error("supervisor: workers keep dying; stopping them")
                self.exit_status = 1
                self._stop(signal.SIGTERM, None)
            elif self._fork(task_id):
                return task_id
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        return None

    def _fork(self, task_id: int) -> bool:
        """Fork one worker; True in the worker, False in the parent."""
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
        try:
            parent = os.getpid()
            pid = os.fork()
            if pid == 0:
                for sig in STOP_SIGNALS:
                    signal.signal(sig, signal.SIG_DFL)
                if self.on_worker_start is not None:
                    self.on_worker_start()  # still blocked: no stop signal can come first
                _die_with_parent()
                if os.getppid() != parent:
                    os._exit(0)  # the parent is already gone
                return True
            self.workers[pid] = task_id
            return False
        finally:
            # In the parent a stop signal that came meanwhile runs now and reaches
            # the new worker too; in the worker nothing is pending (not inherited).
            signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)

    def _crash_loop(self) -> bool:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < CRASH_WINDOW] + [now]
        return len(self._restarts) > MAX_QUICK_RESTARTS

    def _stop(self, signum: int, _frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("supervisor: %s received, stopping workers", signal.Signals(signum).name)
            self.stopping = True
            if self.on_stop is not None:
                self.on_stop()
        for pid in list(self.workers):
            with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                os.kill(pid, signal.SIGTERM)


def _describe(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    return f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: workers may outlive a killed parent
        pass
