"""Private Redis topologies for the suite: a Cluster and a Sentinel group, started once.

``redis_cluster`` and ``redis_sentinel`` are session-scoped fixtures (see
``scripts/redis_topology.py``): the first test that asks starts the topology on free
loopback ports, and it is stopped by PID when the run ends, also after failures.
``topology_url(request, name)`` gives the URL a test parametrized over
``TOPOLOGIES`` uses; ``sync_client(url)`` a synchronous redis-py client for asserting
what is stored, whatever the topology.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.sentinel import Sentinel

from scripts.redis_topology import Topology
from sessions.transport import CLUSTER_SCHEME, SENTINEL_SCHEME, parse_topology_url, scheme_of

TOPOLOGIES = ["single", "cluster", "sentinel"]


def _topology_fixture(kind: str) -> Callable[..., Iterator[Topology]]:
    """A session fixture: a private Redis topology of ``kind``, stopped at the end."""

    @pytest.fixture(scope="session")
    def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Topology]:
        topology = Topology.start(kind, tmp_path_factory.mktemp(f"redis-{kind}"))
        try:
            yield topology
        finally:
            topology.stop()

    return running


redis_cluster = _topology_fixture("cluster")
redis_sentinel = _topology_fixture("sentinel")


def topology_url(request: pytest.FixtureRequest, name: str, single_url: str) -> str:
    """The URL of topology ``name`` (the suite's shared Redis for "single")."""
    if name == "single":
        return single_url
    topology: Topology = request.getfixturevalue(f"redis_{name}")
    return topology.url


def sync_client(url: str, **kwargs: Any) -> Any:
    """A synchronous client on the data ``url`` names (a RedisCluster, the Sentinel
    primary, or one server); ``decode_responses`` is on."""
    kwargs.setdefault("decode_responses", True)
    scheme = scheme_of(url)
    if scheme == CLUSTER_SCHEME:
        where = parse_topology_url(url)
        return RedisCluster(startup_nodes=[ClusterNode(h, p) for h, p in where.hosts], **kwargs)
    if scheme == SENTINEL_SCHEME:
        where = parse_topology_url(url)
        sentinel = Sentinel(where.hosts, socket_timeout=2)
        try:  # the primary now; a test that fails over asks again
            host, port = sentinel.discover_master(where.service)
        finally:
            for client in sentinel.sentinels:
                client.close()
        return redis.Redis(host=host, port=port, db=where.db, **kwargs)
    return redis.Redis.from_url(url, **kwargs)


def primary_urls(url: str) -> list[str]:
    """``redis://`` URLs of the data nodes that are primaries now (one for a single
    server or Sentinel, each of a Cluster's), e.g. for a MONITOR on each."""
    scheme = scheme_of(url)
    if scheme == CLUSTER_SCHEME:
        client = sync_client(url)
        try:
            return [f"redis://{n.host}:{n.port}/0" for n in client.get_primaries()]
        finally:
            client.close()
    if scheme == SENTINEL_SCHEME:
        client = sync_client(url)
        try:
            kwargs = client.connection_pool.connection_kwargs
            return [f"redis://{kwargs['host']}:{kwargs['port']}/{kwargs.get('db', 0)}"]
        finally:
            client.close()
    return [url]
