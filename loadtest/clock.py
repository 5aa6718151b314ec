"""The run's clock: seconds since the start, and a deadline that Ctrl-C can bring forward."""

from __future__ import annotations

import time


class RunClock:
    """Monotonic time relative to the start of the run."""

    def __init__(self, duration: float) -> None:
        self.started = time.monotonic()
        self.deadline = duration

    def start(self) -> None:
        """Start counting from now."""
        self.started = time.monotonic()

    def now(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.started

    @property
    def over(self) -> bool:
        """True once the deadline has passed: users stop starting new work."""
        return self.now() >= self.deadline

    def stop_now(self) -> None:
        """Bring the deadline forward to now (users wrap up their sessions and stop)."""
        self.deadline = min(self.deadline, self.now())
