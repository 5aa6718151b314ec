"""Fixtures shared by the whole suite: the suite's own stores, and real servers.

Every run gets its own MariaDB database (``appdb_test_<pid>``) and its own Redis key
prefix in Redis database 9 (override with ``TEST_MYSQL_URL`` / ``TEST_REDIS_URL``).
Both are removed when the run ends, so runs can overlap and leave nothing behind.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pymysql
import pytest
import redis

from storage.schema import ensure_database
from tests.support.server_process import ServerProcess, start_server

MYSQL_BASE = os.environ.get("TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, "", ""))


@pytest.fixture(scope="session")
def mysql_url() -> Iterator[str]:
    """URL of a database created for this run, with ``schema.sql`` applied."""
    name = f"appdb_test_{os.getpid()}"
    url = _with_database(MYSQL_BASE, name)
    ensure_database(url)
    yield url
    parts = urlsplit(url)
    conn = pymysql.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=parts.username or "root",
        password=parts.password or "",
    )
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture(scope="session")
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix owned by this run; every key under it is deleted at the end."""
    prefix = f"test:{secrets.token_hex(4)}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    """A synchronous client on the suite's Redis database, for asserting stored state."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def spawn_server(
    mysql_url: str, redis_url: str, redis_prefix: str, tmp_path: Path
) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``server.py`` subprocesses (``spawn_server(processes=2, args=[...])``).

    Every server started here is stopped with SIGTERM when the test ends.
    """
    started: list[ServerProcess] = []

    def spawn(**kwargs: object) -> ServerProcess:
        server = start_server(
            mysql_url=mysql_url,
            redis_url=redis_url,
            redis_prefix=redis_prefix,
            log_dir=tmp_path,
            **kwargs,  # type: ignore[arg-type]
        )
        started.append(server)
        return server

    yield spawn
    for server in started:
        server.stop()
