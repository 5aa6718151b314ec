"""The app's general redis-py asyncio client (login throttling, health checks).

redis-py 8's defaults suit batch jobs, not a web request: 5 s socket timeouts and
ten retries with back-off mean an outage takes tens of seconds to surface, and its
default pool raises once 100 connections are in use. Here every wait is short and
bounded (an outage surfaces as an error in well under 2 s, which the app answers with
503), and the pool queues instead of raising when it is busy.

Create one client per process, inside that process's event loop: a client must never
cross ``fork()`` (parent and child would read each other's replies).
"""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff


def connect(
    url: str,
    *,
    timeout: float = 0.5,
    max_connections: int = 64,
) -> aioredis.Redis:
    """A client whose every operation fails within about ``3 * timeout`` seconds."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,  # wait at most this long for a free pooled connection
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 1),  # one immediate retry on a dropped connection
        health_check_interval=0,
    )
    return aioredis.Redis(connection_pool=pool)
