"""redis-py clients for the app's cold paths (login throttling, health checks), by URL.

The session store has its own transport (:mod:`sessions.transport`); everything else
that talks to Redis gets its client here, from the same ``--redis_url``:

* ``redis://``, ``rediss://``, ``unix://`` - ``redis.asyncio.Redis`` on a blocking pool;
* ``redis+cluster://HOST:PORT,...`` - ``redis.asyncio.RedisCluster`` (keys of one
  multi-key command must share a slot; pipelines without a transaction are split per
  node by redis-py);
* ``redis+sentinel://HOST:PORT,.../SERVICE[/DB]`` - the sentinels' ``master_for``.

redis-py's defaults suit batch jobs, not a web request: 5 s socket timeouts and retries
with back-off mean an outage takes tens of seconds to surface, and a retry re-sends a
command whose fate is unknown (a throttle ``INCR`` would count twice). Here every wait
is bounded by ``timeout`` and nothing is ever retried (``Retry(NoBackoff(), 0)``): an
error surfaces at once, and the app answers 503.

Create one client per process, inside that process's event loop: a client must never
cross ``fork()`` (parent and child would read each other's replies).
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff

from sessions.transport import CLUSTER_SCHEME, SENTINEL_SCHEME, parse_topology_url, scheme_of

#: A client of either kind: both have the commands the cold paths use.
RedisClient = aioredis.Redis | RedisCluster


def connect(url: str, *, timeout: float = 0.5, max_connections: int = 64) -> RedisClient:
    """A client for ``url`` whose every operation fails within about ``timeout`` seconds
    (twice that when it must connect first), never retried."""
    scheme = scheme_of(url)
    # Every client: bounded waits, no retry (a command whose fate is unknown is not
    # sent again), a bounded number of connections.
    bounded: dict[str, Any] = {
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "retry": Retry(NoBackoff(), 0),
        "max_connections": max_connections,
    }
    if scheme in (CLUSTER_SCHEME, SENTINEL_SCHEME):
        where = parse_topology_url(url)
        credentials: dict[str, Any] = {"username": where.username, "password": where.password}
    if scheme == CLUSTER_SCHEME:
        return RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in where.hosts],
            **credentials,
            **bounded,
        )
    if scheme == SENTINEL_SCHEME:
        sentinels = Sentinel(  # type: ignore[no-untyped-call]
            where.hosts,
            sentinel_kwargs={"socket_timeout": timeout, "socket_connect_timeout": timeout},
        )
        client: aioredis.Redis = sentinels.master_for(
            where.service, db=where.db, **credentials, **bounded
        )
        return client
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        timeout=timeout,  # wait at most this long for a free pooled connection
        health_check_interval=0,
        **bounded,
    )
    return aioredis.Redis(connection_pool=pool)


async def close(client: RedisClient) -> None:
    """Close the client and its connections."""
    await client.aclose()
    if isinstance(client, aioredis.Redis):
        pool = client.connection_pool
        await pool.disconnect()  # a pool passed in is ours to close
        manager = getattr(pool, "sentinel_manager", None)
        for sentinel in manager.sentinels if manager is not None else ():
            await sentinel.aclose()  # the Sentinel's own connections
