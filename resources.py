"""What one worker process owns: Redis client, session store, MariaDB pool, thread pool.

A plain container. They are created inside the worker, after the fork, on its own event
loop: none of them survives a fork safely (a Redis connection shared across fork mixes
up replies). Handlers reach them as ``self.res`` (see :mod:`handlers.services`).
"""

from __future__ import annotations

import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from accounts.passwords import PasswordHasher, hashing_pool
from accounts.revocation import SessionMark, SignOutRetry
from accounts.throttle import LoginThrottle
from observability.logs import LoggingSessionEvents
from observability.metrics import Metrics
from sessions import RedisSessionStore
from settings import AppConfig
from storage import redis_client
from storage.pool import Database


@dataclass
class Resources:
    redis: redis_client.RedisClient  # redis-py: login throttling, health checks
    sessions: RedisSessionStore  # with its own transport (sessions.transport)
    db: Database
    passwords: PasswordHasher
    throttle: LoginThrottle
    executor: ThreadPoolExecutor  # CPU work (bcrypt)
    sign_out_retry: SignOutRetry  # sign-outs Redis did not hear, retried
    served_by: str  # "host:pid" of this process, as X-Served-By and page footers show it
    metrics: Metrics | None = None  # None with --metrics=false

    async def close(self) -> None:
        await self.sign_out_retry.close()
        await self.db.close()
        await self.sessions.close()
        await redis_client.close(self.redis)
        self.executor.shutdown(wait=False, cancel_futures=True)


def create_resources(config: AppConfig, dummy_hash: bytes, **store_kwargs: Any) -> Resources:
    """Create this process's clients and pools (call inside the worker's event loop)."""
    client = redis_client.connect(config.redis_url, timeout=config.redis_timeout)
    metrics = Metrics() if config.metrics else None
    sessions = RedisSessionStore.from_url(
        config.redis_url,
        config.session,
        timeout=config.redis_timeout,
        cache_size=config.session_cache_size,
        events=LoggingSessionEvents(metrics.session_events() if metrics else None),
        **store_kwargs,
    )
    executor = hashing_pool(config.worker_threads)
    db = Database(config.mysql_url, max_connections=config.mysql_pool_size)
    sessions.revalidate = SessionMark(db)  # the user's "sessions valid after" mark
    if metrics is not None:
        metrics.watch(executor=executor, database=db)
    return Resources(
        redis=client,
        sessions=sessions,
        db=db,
        passwords=PasswordHasher(
            None if config.bcrypt_on_event_loop else executor,
            rounds=config.bcrypt_rounds,
            dummy_hash=dummy_hash,
            queue_size=config.hash_queue_size,
        ),
        throttle=LoginThrottle(client, config.throttle, prefix=config.redis_prefix),
        executor=executor,
        sign_out_retry=SignOutRetry(sessions),
        served_by=f"{socket.gethostname()}:{os.getpid()}",
        metrics=metrics,
    )
