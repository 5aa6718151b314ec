"""The live progress display, on stderr while the run goes on.

On a terminal one line is redrawn in place every second; otherwise (CI logs, pipes) a
plain line is printed every few seconds. Each line shows elapsed time, active users,
requests, the request rate and p99 latency of the last few seconds, errors and
violations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from loadtest.fmt import format_seconds


@dataclass(frozen=True)
class Snapshot:
    """The numbers one progress line shows."""

    elapsed: float
    duration: float
    active_users: int
    users: int
    requests: int
    errors: int
    violations: int
    recent_rps: float
    recent_p99: float | None
    processes: int


def render_line(snap: Snapshot) -> str:
    """One progress line, e.g. ``12.0s/30s users 10/10 req 1,234 (98.1/s) …``."""
    phase = "" if snap.elapsed <= snap.duration else " finishing"
    return (
        f"{snap.elapsed:6.1f}s/{snap.duration:g}s{phase}  users {snap.active_users}/{snap.users}"
        f"  req {snap.requests:,} ({snap.recent_rps:.1f}/s)"
        f"  p99 {format_seconds(snap.recent_p99)}"
        f"  errors {snap.errors:,}  violations {snap.violations:,}"
        f"  processes {snap.processes}"
    )


class Progress:
    """Prints :class:`Snapshot` lines until cancelled (``mode``: tty, lines or off)."""

    def __init__(self, stream: TextIO, mode: str, interval: float) -> None:
        self.stream = stream
        self.mode = mode
        self.interval = interval
        self._drawn = False

    async def run(self, snapshot: Callable[[], Snapshot]) -> None:
        if self.mode == "off":
            return
        while True:
            await asyncio.sleep(self.interval)
            self.show(snapshot())

    def show(self, snap: Snapshot) -> None:
        if self.mode == "off":
            return
        line = render_line(snap)
        if self.mode == "tty":
            self.stream.write("\r" + line + "\x1b[K")
            self._drawn = True
        elif self.mode == "lines":
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the redrawn line so that what follows starts on a fresh one."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False
