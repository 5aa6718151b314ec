"""The transports against real topologies: URLs, the slot map, redirects, no re-sends.

The Cluster and Sentinel group are the suite's shared ones (``tests.support.topologies``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot
from redis.exceptions import RedisError

from sessions import Locator, RedisSessionStore, Session, SessionConfig, SessionUnavailable
from sessions.ids import KeySpace
from sessions.transport import (
    ClusterTransport,
    RedisURLError,
    SentinelTransport,
    check_url,
    open_transport,
)
from tests.support.server_process import REPO_ROOT, free_port
from tests.support.topologies import sync_client

UID = 9_300_000_000  # far above the ids of accounts other tests register


async def stored(store: RedisSessionStore, user_id: int, **attributes: Any) -> Session:
    """A session holding ``attributes``, stored for ``user_id``."""
    session = Session()
    for name, value in attributes.items():
        session[name] = value
    await store.create(session, user_id=user_id)
    return session


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:6379", "unsupported Redis URL scheme 'http://'"),
        ("redis+sentinel://127.0.0.1:26379", "names no service"),
        ("redis+sentinel://127.0.0.1:26379/", "names no service"),
        ("redis+cluster://127.0.0.1", "bad address '127.0.0.1'"),
        ("redis+cluster://127.0.0.1:0,127.0.0.1:7000", "bad address '127.0.0.1:0'"),
        ("redis+sentinel://127.0.0.1:26379/svc/x", "bad path"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url, message):
    with pytest.raises(RedisURLError, match=message):
        open_transport(url)


@pytest.mark.gen_test
async def test_a_url_that_names_no_reachable_node_fails_the_check():
    dead = f"127.0.0.1:{free_port()}"
    for url, message in [
        (f"redis+cluster://{dead}", "no Redis Cluster node answered"),
        (f"redis+sentinel://{dead}/sessions", "no primary for Sentinel service 'sessions'"),
        (f"redis://{dead}/0", "cannot connect"),
    ]:
        with pytest.raises(RedisError, match=message):
            await check_url(url)


@pytest.mark.gen_test
async def test_check_describes_each_topology(redis_cluster, redis_sentinel):
    cluster = await check_url(redis_cluster.url)
    assert cluster.startswith("Redis Cluster, 3 primaries")
    sentinel = await check_url(redis_sentinel.url)
    primary = redis_sentinel.primaries()[0]
    assert sentinel == f"Redis Sentinel service 'sessions', primary {primary.address}"
    with pytest.raises(RedisError, match="knows no service 'nope'"):
        await check_url(redis_sentinel.url.rsplit("/", 1)[0] + "/nope")


def test_server_refuses_a_bad_url_at_start_with_one_line(tmp_path: Path):
    dead = f"127.0.0.1:{free_port()}"
    for url, code, message in [
        ("memcache://127.0.0.1:11211", 2, "unsupported Redis URL scheme"),
        (f"redis+sentinel://{dead}", 2, "names no service"),
        (f"redis+cluster://{dead}", 1, "no Redis Cluster node answered"),
    ]:
        done = subprocess.run(
            [
                sys.executable,
                str(REPO_ROOT / "server.py"),
                f"--redis_url={url}",
                "--port=0",
                "--cookie_secret=test-secret-" + "x" * 32,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO_ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("APP_")},
            check=False,
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == code, done.stderr
        assert len(lines) == 1 and message in lines[0], done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.gen_test(timeout=30)
async def test_sessions_of_many_users_spread_over_the_three_primaries(redis_cluster, redis_prefix):
    store = RedisSessionStore.from_url(redis_cluster.url, SessionConfig(prefix=redis_prefix))
    try:
        sessions = []
        for i in range(300):
            session = Session()
            session["n"] = i
            if i % 3:
                await store.create(session, user_id=UID + i)
            else:
                await store.save(session)  # anonymous: a hash tag of its own
            sessions.append(session)
        keys = KeySpace(redis_prefix)
        wanted = {keys.session(s.locator) for s in sessions}
        spread: Counter[str] = Counter()
        for node in redis_cluster.primaries():  # count what each primary really holds
            client = sync_client(f"redis://{node.address}/0")
            try:
                held = set(client.scan_iter(match=f"{redis_prefix}sess:*", count=1000))
                spread[node.address] = len(wanted & held)
            finally:
                client.close()
        print(f"\nsessions per primary (of {len(sessions)}): {dict(spread)}")
        assert sum(spread.values()) == len(sessions)  # each on exactly one primary
        assert len(spread) == 3 and min(spread.values()) >= 60, spread
    finally:
        await store.close()


@pytest.mark.gen_test
async def test_a_stale_slot_map_is_corrected_by_moved(redis_cluster, redis_prefix):
    store = RedisSessionStore.from_url(redis_cluster.url, SessionConfig(prefix=redis_prefix))
    transport = store.redis
    assert isinstance(transport, ClusterTransport)
    try:
        session = await stored(store, UID + 1000, x=1)
        key = store.keys.session(session.locator)
        right = transport.node_for(key)
        wrong = next(a for a in set(transport.slot_owners()) if a != right)
        slot = key_slot(key.encode())
        transport._slots[slot] = wrong  # as if the slot had moved since the map was read
        store.cache.invalidate(None)
        flushes = store.cache.flushes
        loaded = await store.load(session.locator)  # MOVED, then re-sent to the owner
        assert loaded is not None and loaded["x"] == 1
        assert transport.redirects == 1
        assert transport.node_for(key) == right
        assert store.cache.flushes > flushes  # a changed owner empties the cache
    finally:
        await store.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_migrating_slot_is_followed_with_ask_tryagain_then_moved(
    redis_cluster, redis_prefix
):
    store = RedisSessionStore.from_url(redis_cluster.url, SessionConfig(prefix=redis_prefix))
    transport = store.redis
    assert isinstance(transport, ClusterTransport)
    user = UID + 2000
    session = await stored(store, user, step="before")
    key, index = store.keys.session(session.locator), store.keys.user_index(user)
    source = transport.node_for(index)
    target = next(a for a in set(transport.slot_owners()) if a != source)
    slot = key_slot(index.encode())
    src = sync_client(f"redis://{source}/0")
    dst = sync_client(f"redis://{target}/0")
    primaries = [sync_client(f"redis://{n.address}/0") for n in redis_cluster.primaries()]
    try:
        src_id = src.execute_command("CLUSTER", "MYID")
        dst_id = dst.execute_command("CLUSTER", "MYID")
        loaded = await store.load(session.locator)
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        host, port = target.rsplit(":", 1)
        src.execute_command("MIGRATE", host, port, key, 0, 5000)  # the hash moves first
        loaded["step"] = "during"
        assert await store.save(loaded)  # one key: source ASK, target ASKING + EVALSHA
        assert transport.redirects == 1
        assert dst.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 1

        store.cache.invalidate(None)
        with pytest.raises(SessionUnavailable, match="redirected"):
            await store.load(session.locator)  # hash and index apart: TRYAGAIN, bounded
        assert transport.redirects == 1 + 5

        src.execute_command("MIGRATE", host, port, index, 0, 5000)
        for client in primaries:  # the migration ends: the target owns the slot
            client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        loaded = await store.load(session.locator)  # source: MOVED; target serves it
        assert loaded is not None and loaded["step"] == "during"
        assert transport.node_for(index) == target
    finally:
        for client in [src, dst, *primaries]:
            client.close()
        await store.close()


class SlowReplies:
    """A TCP proxy to a Redis node whose replies can be held back (``stall``): the node
    runs every command at once, but its reply arrives after the client's timeout."""

    def __init__(self, upstream: str, delay: float) -> None:
        self.host, port = upstream.rsplit(":", 1)
        self.port = int(port)
        self.delay = delay
        self.stall = False
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader, writer) -> None:
        up_reader, up_writer = await asyncio.open_connection(self.host, self.port)

        async def pipe(src, dst, slow: bool) -> None:
            try:
                while data := await src.read(65536):
                    if slow and self.stall:
                        await asyncio.sleep(self.delay)
                    dst.write(data)
            except (OSError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer, False), pipe(up_reader, writer, True))

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.mark.gen_test(timeout=30)
async def test_a_timed_out_increment_fails_and_is_never_sent_twice(redis_cluster, redis_prefix):
    """Redis runs the increment, but its reply comes after the timeout: the app is told
    it failed, and the increment is applied once (a re-send would apply it twice)."""
    store = RedisSessionStore.from_url(
        redis_cluster.url, SessionConfig(prefix=redis_prefix), timeout=0.3
    )
    transport = store.redis
    assert isinstance(transport, ClusterTransport)
    session = await stored(store, UID + 3000, views=0)
    key = store.keys.session(session.locator)
    proxy = SlowReplies(transport.node_for(key), delay=1.0)
    try:
        transport._slots[key_slot(key.encode())] = await proxy.start()  # through the proxy
        store.cache.invalidate(None)
        late = await store.load(session.locator)
        late.incr("views")
        proxy.stall = True
        with pytest.raises(SessionUnavailable, match="did not answer"):
            await store.save(late)
        client = sync_client(redis_cluster.url)
        try:
            assert client.hget(key, "views") == "1"  # it ran
            await asyncio.sleep(1.5)  # anything re-sent would have run by now
            assert client.hget(key, "views") == "1"
        finally:
            client.close()
        again = await store.load(session.locator)  # served again (the map was refreshed)
        assert again is not None and again["views"] == 1
    finally:
        await proxy.close()
        await store.close()


@pytest.mark.gen_test
async def test_sentinel_transport_confirms_the_primary_with_role(redis_sentinel, redis_prefix):
    store = RedisSessionStore.from_url(redis_sentinel.url, SessionConfig(prefix=redis_prefix))
    transport = store.redis
    assert isinstance(transport, SentinelTransport)
    try:
        session = await stored(store, UID + 4000, a=1)
        [primary] = redis_sentinel.primaries()
        assert list(transport.nodes()) == [primary.address]
        assert transport.discoveries == 1
        loc = Locator(sid=session.sid, user_id=UID + 4000)
        assert (await store.load(loc))["a"] == 1
    finally:
        await store.close()


@pytest.fixture
def tls_redis(tmp_path):
    """A redis-server of its own speaking TLS only, with a password; (port, CA file)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(cert), "--tls-key-file", str(key),
         "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no",
         "--requirepass", "s3cret", "--save", "", "--appendonly", "no",
         "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        yield port, cert
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.gen_test(timeout=30)
async def test_rediss_speaks_tls_with_auth(tls_redis):
    port, ca = tls_redis
    url = f"rediss://:s3cret@127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    for _ in range(50):  # the server is starting
        try:
            assert await check_url(url) == "Redis"
            break
        except RedisError:
            await asyncio.sleep(0.1)
    store = RedisSessionStore.from_url(url, SessionConfig(prefix="tls:"))
    try:
        session = await stored(store, UID + 5000, over="tls")
        store.cache.invalidate(None)
        loaded = await store.load(session.locator)
        assert loaded is not None and loaded["over"] == "tls"
    finally:
        await store.close()
    with pytest.raises(RedisError, match="refused the connection setup"):
        await check_url(f"rediss://:wrong@127.0.0.1:{port}/0?ssl_ca_certs={ca}")
    with pytest.raises(RedisError):  # plain text to a TLS port: refused
        await check_url(f"redis://:s3cret@127.0.0.1:{port}/0", timeout=1.0)
