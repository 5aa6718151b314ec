"""Forked serving: the parent supervises N workers and stops them gracefully.

``tornado.process.fork_processes`` forks the workers and restarts any that dies, but
forwards no signal: a SIGTERM to the parent alone would leave the workers serving as
orphans. So the parent, on SIGTERM or SIGINT, passes SIGTERM on to each of its worker
processes and lets them finish; ``fork_processes`` then sees every worker exit with
status 0 and exits 0 itself. A worker forked while stopping exits at once, and every
worker asks the kernel for SIGTERM should the parent die without warning
(``PR_SET_PDEATHSIG``), so no worker outlives its supervisor.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from tornado.process import fork_processes

log = logging.getLogger("app")
PR_SET_PDEATHSIG = 1
MAX_RESTARTS = 10_000  # fork_processes gives up (and orphans the rest) past this

_stopping = False


def child_pids(parent: int | None = None) -> list[int]:
    """PIDs of the direct children of ``parent`` (default: this process), from /proc."""
    parent = os.getpid() if parent is None else parent
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # The command name (field 2) may hold spaces: split after its closing ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent:
            pids.append(int(entry.name))
    return pids


def _forward_stop(signum: int, _frame: FrameType | None) -> None:
    global _stopping
    if not _stopping:
        log.info("supervisor: %s received, stopping workers", signal.Signals(signum).name)
    _stopping = True
    for pid in child_pids():
        with contextlib.suppress(ProcessLookupError):  # exited meanwhile
            os.kill(pid, signal.SIGTERM)


def _die_with_parent() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: workers may outlive a killed parent
        pass


def fork_workers(count: int) -> int:
    """Fork ``count`` workers (0 = one per core) and return this worker's task id.

    Only workers return; the parent stays inside ``fork_processes`` supervising until
    all workers have exited, then exits (status 0 after a graceful stop).
    """
    signal.signal(signal.SIGTERM, _forward_stop)
    signal.signal(signal.SIGINT, _forward_stop)
    parent = os.getpid()
    task_id = fork_processes(count, max_restarts=MAX_RESTARTS)
    # From here on we are a worker.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _die_with_parent()
    if _stopping or os.getppid() != parent:
        sys.exit(0)  # forked (restarted) while stopping, or the parent is already gone
    return task_id
