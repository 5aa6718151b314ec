"""What one worker process owns: Redis client, session store, MariaDB pool, thread pool.

They are created inside the worker, after the fork, on its own event loop: none of them
survives a fork safely (a Redis connection shared across fork mixes up replies).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from accounts.passwords import PasswordHasher
from accounts.throttle import LoginThrottle
from sessions import RedisSessionStore, connect
from sessions.autopipeline import AutoPipeline
from settings import AppConfig
from storage.pool import Database

CPU_THREAD_NICENESS = 10


def yield_to_event_loop() -> None:
    """Make the calling pool thread run only on CPU the event loop does not want.

    bcrypt then uses every idle cycle, but a runnable event loop never waits behind it
    for a core. Linux's ``SCHED_IDLE`` policy does exactly that, per thread; where it is
    refused, the thread is at least niced by +10. Elsewhere this does nothing.
    """
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):
        with contextlib.suppress(OSError, AttributeError):
            nice = os.getpriority(os.PRIO_PROCESS, tid) + CPU_THREAD_NICENESS
            os.setpriority(os.PRIO_PROCESS, tid, nice)


def served_by() -> str:
    """``host:pid`` of this process, as the X-Served-By header and page footer show it."""
    return f"{socket.gethostname()}:{os.getpid()}"


#: Headers that protect pages (a browser renders them); JSON answers do without.
PAGE_HEADERS = {
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
}


def default_headers(served: str) -> dict[str, str]:
    """Headers every page and API response carries."""
    return {
        "X-Served-By": served,
        "Cache-Control": "no-store",  # responses carry a session: never cache them
        "Vary": "Accept, Cookie",
        "X-Content-Type-Options": "nosniff",
    }


@dataclass
class Resources:
    redis: aioredis.Redis  # redis-py: login throttling, health checks
    session_redis: AutoPipeline  # the session store's auto-pipelined connection
    sessions: RedisSessionStore
    db: Database
    passwords: PasswordHasher
    throttle: LoginThrottle
    executor: ThreadPoolExecutor
    served_by: str
    default_headers: dict[str, str] = field(default_factory=dict)  # on every page
    inflight: int = 0  # requests being handled, for the graceful stop
    _idle: asyncio.Event = field(default_factory=asyncio.Event)

    def request_started(self) -> None:
        self.inflight += 1
        self._idle.clear()

    def request_finished(self) -> None:
        self.inflight -= 1
        if self.inflight <= 0:
            self._idle.set()

    async def wait_idle(self, within: float) -> bool:
        """Wait until no request is in flight; False if some still run after ``within`` s."""
        if self.inflight <= 0:
            return True
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True

    async def close(self) -> None:
        await self.db.close()
        await self.sessions.close()
        await self.redis.aclose()
        await self.redis.connection_pool.disconnect()  # a pool passed in is ours to close
        self.executor.shutdown(wait=False, cancel_futures=True)


def create_resources(config: AppConfig, dummy_hash: bytes, **store_kwargs: Any) -> Resources:
    """Create this process's clients and pools (call inside the worker's event loop)."""
    client = connect(config.redis_url, timeout=config.redis_timeout)
    served = served_by()
    sessions = RedisSessionStore.from_url(
        config.redis_url,
        config.session,
        timeout=config.redis_timeout,
        cache_size=config.session_cache_size,
        **store_kwargs,
    )
    executor = ThreadPoolExecutor(
        max_workers=config.worker_threads or os.cpu_count() or 1,
        thread_name_prefix="cpu",
        initializer=yield_to_event_loop,
    )
    return Resources(
        redis=client,
        session_redis=sessions.redis,
        sessions=sessions,
        db=Database(config.mysql_url, max_connections=config.mysql_pool_size),
        passwords=PasswordHasher(
            None if config.bcrypt_on_event_loop else executor,
            rounds=config.bcrypt_rounds,
            dummy_hash=dummy_hash,
        ),
        throttle=LoginThrottle(client, config.throttle, prefix=config.redis_prefix),
        executor=executor,
        served_by=served,
        default_headers=default_headers(served),
    )
