"""Runs the virtual users: a reachability check, ramp-up, deadline, grace, progress.

Users start evenly spread over ``--ramp`` seconds. At ``--duration`` they stop starting
new work and wrap up their current session (final checks and logout); whoever is still
busy ``--grace`` seconds later is cancelled and reported. Ctrl-C brings the deadline
forward to now (users wrap up); a second Ctrl-C cancels everything at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import signal
import traceback
from datetime import UTC, datetime

import aiohttp

from loadtest.checks import ViolationLog
from loadtest.clock import RunClock
from loadtest.config import Config
from loadtest.progress import Progress, Snapshot
from loadtest.result import RunResult, UserSummary
from loadtest.sharing import SharingLog
from loadtest.stats import RunStats
from loadtest.user import VirtualUser

RECENT_WINDOW = 5.0  # seconds of history behind the progress line's rate and p99


class TargetUnreachable(Exception):
    """The target did not answer ``GET /`` before the run started."""


async def preflight(target: str, seconds: float) -> None:
    """Make sure the target answers ``GET /`` at all, so a typo fails in a second."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=seconds)) as session,
            session.get(target.rstrip("/") + "/", allow_redirects=False) as response,
        ):
            await response.read()
            if response.status >= 500:
                raise TargetUnreachable(f"GET {target}/ answered {response.status}")
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        raise TargetUnreachable(f"cannot reach {target}: {type(exc).__name__}: {exc}") from exc


class Runner:
    """One run of ``config.users`` virtual users against ``config.target``."""

    def __init__(self, config: Config, progress: Progress) -> None:
        self.config = config
        self.progress = progress
        self.run_id = secrets.token_hex(4)
        self.stats = RunStats()
        self.sharing = SharingLog(config.users)
        self.violations = ViolationLog()
        self.clock = RunClock(config.duration)
        self.interrupted = False
        self._tasks: list[asyncio.Task[None]] = []
        seeds = random.Random(config.seed)
        self.users = [
            VirtualUser(
                i,
                config,
                self.run_id,
                stats=self.stats,
                sharing=self.sharing,
                violations=self.violations,
                clock=self.clock,
                rng=random.Random(seeds.getrandbits(64)),
            )
            for i in range(config.users)
        ]
        self._active = 0
        self._last_requests = 0

    async def _start(self, user: VirtualUser, delay: float) -> None:
        await asyncio.sleep(delay)
        if self.clock.over:
            user.finished = True
            return
        self._active += 1
        try:
            await user.run()
        finally:
            self._active -= 1

    def _snapshot(self) -> Snapshot:
        now = self.clock.now()
        recent = self.stats.timeline.window(max(0.0, now - RECENT_WINDOW), now)
        span = min(RECENT_WINDOW, now) or 1.0
        return Snapshot(
            elapsed=now,
            duration=self.config.duration,
            active_users=self._active,
            users=self.config.users,
            requests=self.stats.requests,
            errors=self.stats.errors,
            violations=self.violations.total,
            recent_rps=recent.requests / span,
            recent_p99=recent.latency.percentile(99),
            processes=len(self.stats.served_by),
        )

    def _interrupt(self) -> None:
        if not self.interrupted:
            self.interrupted = True
            self.clock.stop_now()
        else:
            for task in self._tasks:
                task.cancel()

    async def run(self) -> RunResult:
        """Run every user to the end and return what was measured."""
        config = self.config
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        self.clock.start()
        step = config.ramp / config.users if config.users else 0.0
        self._tasks = [
            asyncio.create_task(self._start(user, i * step)) for i, user in enumerate(self.users)
        ]
        ticker = asyncio.create_task(self.progress.run(self._snapshot))
        loop = asyncio.get_running_loop()
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signal.SIGINT, self._interrupt)
        try:
            _, pending = await asyncio.wait(self._tasks, timeout=config.duration + config.grace)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        finally:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(signal.SIGINT)
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
            self.progress.show(self._snapshot())
            self.progress.close()
        return self._result(started_at)

    def _result(self, started_at: str) -> RunResult:
        crashes = []
        unfinished = 0
        for task in self._tasks:
            if task.cancelled():
                unfinished += 1
                continue
            exc = task.exception()
            if exc is not None:
                crashes.append("".join(traceback.format_exception_only(exc)).strip())
        users = [
            UserSummary(
                index=user.index,
                email=user.email,
                sessions=user.ledger.session,
                home_visits=user.ledger.home_visits,
                statuses_posted=user.ledger.posted_count,
                finished=user.finished,
            )
            for user in self.users
        ]
        return RunResult(
            config=self.config,
            run_id=self.run_id,
            started_at=started_at,
            elapsed=self.clock.now(),
            stats=self.stats,
            sharing=self.sharing,
            violations=self.violations,
            users=users,
            unfinished=unfinished,
            crashes=crashes,
            interrupted=self.interrupted,
        )
