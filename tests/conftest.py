"""Fixtures shared by the whole suite: the suite's own stores, and real servers.

Every run gets its own MariaDB database (``appdb_test_<pid>``) and its own Redis key
prefix in Redis database 9 (override with ``TEST_MYSQL_URL`` / ``TEST_REDIS_URL``).
Both are removed when the run ends, so runs can overlap and leave nothing behind.
A private Redis Cluster and Sentinel group start on first use (``tests.support.topologies``);
a test module parametrizes its ``redis_url`` over them to run on each topology.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pymysql
import pytest
import redis
import tornado.web

from accounts.passwords import make_dummy_hash
from accounts.throttle import ThrottleConfig
from application import make_app
from resources import Resources, create_resources
from sessions import SessionConfig
from settings import AppConfig
from storage.schema import ensure_database
from storage.urls import parse_mysql_url
from tests.support.browser import Browser
from tests.support.server_process import ServerProcess, start_server
from tests.support.topologies import redis_cluster, redis_sentinel, sync_client  # noqa: F401

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
    conn = pymysql.connect(**parse_mysql_url(url).connect_kwargs(with_database=False))
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    finally:
        conn.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture(scope="session")
def redis_prefix() -> Iterator[str]:
    """A key prefix owned by this run; every key under it is deleted at the end (the
    private topologies are simply stopped)."""
    prefix = f"test:{secrets.token_hex(4)}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    try:
        for key in client.scan_iter(match=prefix + "*", count=1000):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    """A synchronous client on the test's Redis (any topology), for asserting stored state."""
    client = sync_client(redis_url)
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


# ----- the application in-process (pytest-tornado runs it on its io_loop) ----------


class FakeClock:
    """An injectable clock for the session store: starts at real time, moves on demand."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(scope="session")
def dummy_hash() -> bytes:
    return make_dummy_hash(4)


@pytest.fixture
def app_config(mysql_url: str, redis_url: str, redis_prefix: str) -> AppConfig:
    return AppConfig(
        cookie_secrets={1: "test-cookie-secret-" + "k" * 32},
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        mysql_url=mysql_url,
        session=SessionConfig(prefix=redis_prefix),
        throttle=ThrottleConfig(per_pair=3, per_ip=1000, slow_after=0, register_per_ip=0),
        bcrypt_rounds=4,
        worker_threads=2,
        access_log=False,
    )


@pytest.fixture
def resources(
    app_config: AppConfig, dummy_hash: bytes, clock: FakeClock, io_loop: Any
) -> Iterator[Resources]:
    res = create_resources(app_config, dummy_hash, clock=clock)
    yield res
    io_loop.run_sync(res.close)


@pytest.fixture
def app(app_config: AppConfig, resources: Resources) -> tornado.web.Application:
    return make_app(app_config, resources)


@pytest.fixture
def new_browser(http_server: Any, base_url: str, io_loop: Any) -> Iterator[Callable[[], Browser]]:
    """Make independent browsers (each with its own cookies) on the in-process app."""
    made: list[Browser] = []

    def make() -> Browser:
        made.append(Browser(base_url))
        return made[-1]

    yield make
    for browser in made:
        io_loop.run_sync(browser.aclose)


@pytest.fixture
def browser(new_browser: Callable[[], Browser]) -> Browser:
    """One signed-out browser tab on the in-process application."""
    return new_browser()


@pytest.fixture
def unique_email() -> Callable[[str], str]:
    return lambda name="user": f"{name}-{secrets.token_hex(6)}@example.com"
