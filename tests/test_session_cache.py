"""The local session cache stays exact: two stores on their own connections stand for
two worker processes, and every change one makes is seen by the other. Every test of
two stores runs on each topology (one server, Redis Cluster, Redis Sentinel)."""

from __future__ import annotations

import asyncio
import http.client
import secrets
import sys
import threading
import time
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

import pytest

from sessions import RedisSessionStore, Session, SessionConfig
from sessions.autopipeline import AutoPipeline
from tests.support.topologies import TOPOLOGIES, sync_client, topology_url

UID = 9_100_000_000  # far above the ids of accounts other tests register
TRIES = 80  # sign-outs in the busy-worker test
LOAD_CONNECTIONS = 8  # kept-alive connections keeping the other worker busy


@pytest.fixture(params=TOPOLOGIES)
def topology(request, redis_url):
    """The URL of the topology a test of two stores runs on (each of the three)."""
    return topology_url(request, request.param, redis_url)


@pytest.fixture
def stored(topology):
    """A synchronous client on the topology's data, for changes and assertions."""
    client = sync_client(topology)
    yield client
    client.close()


@pytest.fixture
def pair(topology, redis_prefix, clock, io_loop):
    config = SessionConfig(prefix=redis_prefix)
    a = RedisSessionStore.from_url(topology, config, clock=clock)
    b = RedisSessionStore.from_url(topology, config, clock=clock)
    yield a, b
    io_loop.run_sync(a.close)
    io_loop.run_sync(b.close)


async def signed_in(store, user_id):
    session = Session()
    session["user_name"] = "Cached"
    await store.create(session, user_id=user_id)
    return session


async def until(predicate, within=1.0):
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > within:
            raise AssertionError("not within the bound")
        await asyncio.sleep(0.001)
    return time.monotonic() - started


@pytest.mark.gen_test
async def test_reads_are_served_from_cache(pair):
    a, b = pair
    session = await signed_in(a, UID + 1)
    assert (await b.load(session.locator))["user_name"] == "Cached"  # miss: from Redis
    misses = b.cache.misses
    for _ in range(5):
        assert (await b.load(session.locator))["user_name"] == "Cached"
    assert b.cache.misses == misses and b.cache.hits >= 5


@pytest.mark.gen_test
async def test_logout_in_one_process_is_seen_by_the_other(pair):
    a, b = pair
    session = await signed_in(a, UID + 2)
    assert await b.load(session.locator) is not None  # b has it cached
    key = b.keys.session(session.locator)
    await a.destroy(session.locator)
    await until(lambda: b.cache.get(key) is None)
    assert await b.load(session.locator) is None


@pytest.mark.gen_test
async def test_a_change_in_one_process_is_seen_by_the_other(pair):
    a, b = pair
    session = await signed_in(a, UID + 3)
    assert (await b.load(session.locator)).get("views") is None
    in_a = await a.load(session.locator)
    in_a.incr("views")
    assert await a.save(in_a)
    await until(lambda: b.cache.get(b.keys.session(session.locator)) is None)
    assert (await b.load(session.locator))["views"] == 1


@pytest.mark.gen_test
async def test_a_push_not_yet_read_by_the_loop_is_handled_before_a_cache_hit(pair, stored):
    """A sign-out confirmed to another client is refused at once, even before the
    event loop has come round to reading the invalidation it caused."""
    _a, b = pair
    for n in range(20):
        session = await signed_in(b, UID + 10)
        assert await b.load(session.locator) is not None  # cached (the create's reply)
        key = b.keys.session(session.locator)
        assert b.cache.get(key) is not None
        assert stored.delete(key) == 1  # blocking: the loop does not run meanwhile
        assert stored.ping()  # the fence a sign-out ends with (store.destroy)
        assert await b.load(session.locator) is None, f"stale hit in round {n}"


@pytest.mark.gen_test
async def test_redis_orders_invalidations_as_the_cache_needs(redis_url, redis_prefix, sync_redis):
    """The ordering the cache relies on, shown on Redis itself (per-key tracking, NOLOOP):
    another connection's change executed before one of our commands is pushed before
    that command's reply; our own script writes are not pushed back; and a script that
    reads its key after writing it keeps it tracked, so the next change by anyone else
    is pushed. Without that closing read the key is no longer tracked."""
    events: list[tuple[str, object]] = []
    conn = AutoPipeline(
        redis_url,
        tracking_prefixes=[redis_prefix],
        on_invalidate=lambda keys: events.append(("push", keys)),
    )
    key = f"{redis_prefix}order:{secrets.token_hex(4)}"
    sync_redis.hset(key, mapping={"@c": "1", "n": "0"})

    async def run(name: str, *command: object) -> None:
        await conn.execute(*command, on_reply=lambda _reply: events.append(("reply", name)))

    def pushed() -> bool:
        return ("push", [key.encode()]) in events

    try:
        await run("read", "EVAL", "return redis.call('HGETALL', KEYS[1])", 1, key)
        sync_redis.hset(key, "n", "1")  # another connection, before our next command
        await run("ping", "PING")
        assert events == [("reply", "read"), ("push", [key.encode()]), ("reply", "ping")]

        events.clear()
        await run("read", "EVAL", "return redis.call('HGETALL', KEYS[1])", 1, key)
        write_then_read = (
            "redis.call('HINCRBY', KEYS[1], 'n', 1) return redis.call('HGETALL', KEYS[1])"
        )
        await run("own write", "EVAL", write_then_read, 1, key)
        await run("ping", "PING")
        assert events == [("reply", "read"), ("reply", "own write"), ("reply", "ping")]
        sync_redis.hset(key, "n", "9")
        await until(pushed)

        events.clear()
        await run("read", "EVAL", "return redis.call('HGETALL', KEYS[1])", 1, key)
        write_only = "redis.call('HINCRBY', KEYS[1], 'n', 1) return 1"
        await run("own write", "EVAL", write_only, 1, key)
        sync_redis.hset(key, "n", "10")
        await run("ping", "PING")
        assert not pushed()  # untracked: why every writing script reads its key last
    finally:
        await conn.close()
        sync_redis.delete(key)


@pytest.mark.gen_test
@pytest.mark.parametrize("moment", ["before", "queued", "sent", "after"])
async def test_a_write_by_another_process_around_ours_is_never_hidden(pair, stored, moment):
    """Our save's reply carries only the counters, and the entry held then gets the
    write's delta. A change by another connection at any moment around our save must
    show in our next read: made after our read and before our save (``before``), while
    our command waits to be written (``queued``) or is on its way (``sent``), or right
    after our reply was handled (``after``)."""
    a, _b = pair
    session = await signed_in(a, UID + 11)
    key = a.keys.session(session.locator)

    def other_write(n):
        stored.hset(key, "note", f'"w{n}"')
        stored.hdel(key, "gone")

    for n in range(1, 11):
        loaded = await a.load(session.locator)
        loaded.incr("views")
        if moment == "before":
            other_write(n)
            assert await a.save(loaded)
        elif moment == "after":
            assert await a.save(loaded)
            assert a.cache.get(key) is not None  # current after our own write
            other_write(n)  # right after: the loop does not run
        else:
            saving = asyncio.ensure_future(a.save(loaded))
            # One pass queues the save on the connection, the next writes it to Redis.
            for _ in range(1 if moment == "queued" else 2):
                await asyncio.sleep(0)
            assert not saving.done()
            other_write(n)
            assert await saving
        again = await a.load(session.locator)
        assert (again["views"], again["note"]) == (n, f"w{n}")
        assert "gone" not in again
        stored.hset(key, "gone", "1")


@pytest.mark.gen_test
async def test_a_change_then_a_read_costs_one_round_trip(pair):
    """``/home``'s pattern: read (from the cache), change, save; the next read is a hit."""
    a, _b = pair
    session = await signed_in(a, UID + 12)
    await a.load(session.locator)
    hits, misses = a.cache.hits, a.cache.misses
    for expected in range(1, 11):
        loaded = await a.load(session.locator)
        loaded.incr("views")
        assert await a.save(loaded)
        assert loaded["views"] == expected
    assert (a.cache.hits - hits, a.cache.misses - misses) == (10, 0)


@pytest.mark.gen_test
async def test_own_writes_update_own_cache_exactly(pair):
    a, _b = pair
    session = await signed_in(a, UID + 4)
    for expected in range(1, 6):
        loaded = await a.load(session.locator)
        loaded.incr("views")
        loaded["last"] = expected
        assert await a.save(loaded)
        again = await a.load(session.locator)
        assert again["views"] == expected and again["last"] == expected


@pytest.mark.gen_test
async def test_end_other_sessions_drops_them_from_own_cache(pair):
    a, b = pair
    keep = await signed_in(a, UID + 5)
    other = await signed_in(a, UID + 5)
    assert await a.load(other.locator) is not None
    assert await b.load(other.locator) is not None
    assert await a.end_other_user_sessions(UID + 5, keep.sid) == 1
    assert await a.load(other.locator) is None
    await until(lambda: b.cache.get(b.keys.session(other.locator)) is None)
    assert await b.load(other.locator) is None
    assert await a.load(keep.locator) is not None


@pytest.mark.gen_test
async def test_timeouts_are_checked_on_cached_entries(pair, clock):
    a, b = pair
    session = await signed_in(a, UID + 6)
    assert await b.load(session.locator) is not None
    clock.advance(b.config.touch_after_seconds + 1)
    misses = b.cache.misses
    assert await b.load(session.locator) is not None  # due a refresh: goes to Redis
    assert b.cache.misses == misses + 1
    clock.advance(b.config.absolute_timeout)
    assert await b.load(session.locator) is None


@pytest.mark.gen_test
async def test_lost_invalidation_channel_flushes_the_cache(pair):
    a, b = pair
    session = await signed_in(a, UID + 7)
    assert await b.load(session.locator) is not None
    assert len(b.cache) >= 1
    key = b.keys.session(session.locator)
    nodes = b.redis.nodes()
    holder = b.redis.node_for(key) if hasattr(b.redis, "node_for") else next(iter(nodes))
    for address, connection in nodes.items():  # the node that holds the session
        if address == holder:
            client_id = await connection.execute("CLIENT", "ID")
            admin = sync_client(f"redis://{address}/0")
            try:
                admin.client_kill_filter(_id=client_id)
            finally:
                admin.close()
    await until(lambda: len(b.cache) == 0)
    assert b.cache.flushes >= 1
    await a.destroy(session.locator)  # while b was disconnected
    assert await b.load(session.locator) is None  # b reconnects and reads Redis


@pytest.mark.gen_test
async def test_key_expiry_in_redis_invalidates(pair, stored):
    a, b = pair
    session = await signed_in(a, UID + 8)
    assert await b.load(session.locator) is not None
    key = b.keys.session(session.locator)
    stored.pexpire(key, 1)  # as if it timed out in Redis (PEXPIRE itself is a change)
    await until(lambda: b.cache.get(key) is None)
    await until(lambda: not stored.exists(key))  # expired in Redis
    assert await b.load(session.locator) is None


# ----- a busy worker and a sign-out in the other one (real processes) ----------------


class Pinned:
    """One kept-alive HTTP connection, so every request reaches the same worker."""

    def __init__(self, url: str, cookies: dict[str, str] | None = None) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        self.cookies = cookies if cookies is not None else {}
        self.pid = self.request("GET", "/healthz")[2]

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        cookies: dict[str, str] | None = None,
    ) -> tuple[int, bytes, int]:
        """(status, body, pid of the worker); ``cookies`` replaces the jar's for once."""
        headers = {"Accept": "application/json"}
        sent = self.cookies if cookies is None else cookies
        if sent:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in sent.items())
        body = None
        if method == "POST":
            headers["X-XSRFToken"] = self.cookies["_xsrf"]
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            body = urlencode(form or {})
        self.conn.request(method, path, body=body, headers=headers)
        resp = self.conn.getresponse()
        payload = resp.read()
        for header in resp.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel.value:
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return resp.status, payload, int(resp.headers["X-Served-By"].rsplit(":", 1)[1])

    def close(self) -> None:
        self.conn.close()


def pinned_pair(url: str, cookies: dict[str, str]) -> tuple[Pinned, Pinned]:
    """Two kept-alive connections sharing ``cookies``, accepted by different workers."""
    first = Pinned(url, cookies)
    for _ in range(200):
        other = Pinned(url, cookies)
        if other.pid != first.pid:
            return first, other
        other.close()
    raise AssertionError("every connection went to one worker")


async def _keep_busy(url: str, pid: int, cookie: str, stop: threading.Event) -> int:
    """Signed-in requests on ``LOAD_CONNECTIONS`` connections kept alive to worker
    ``pid`` until ``stop`` (at most 60 s). Returns how many that worker answered."""
    parts = urlsplit(url)
    deadline = time.monotonic() + 60
    request = "GET {} HTTP/1.1\r\nHost: t\r\nAccept: application/json\r\nCookie: {}\r\n\r\n"
    paths = [request.format(path, cookie).encode() for path in ("/whoami", "/home")]
    answered = 0

    def running() -> bool:
        return not stop.is_set() and time.monotonic() < deadline

    async def one_connection() -> None:
        nonlocal answered
        for _attempt in range(20):  # new connections until one lands on ``pid``
            reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
            try:
                turn = 0
                while running():
                    writer.write(paths[turn % 2])
                    turn += 1
                    head = await reader.readuntil(b"\r\n\r\n")
                    length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
                    await reader.readexactly(length)
                    served_by = head.split(b"X-Served-By: ")[1].split(b"\r\n")[0]
                    if int(served_by.rsplit(b":", 1)[1]) != pid:
                        break  # the other worker's: try a new connection
                    answered += 1
                else:
                    return
            finally:
                writer.close()

    await asyncio.gather(*(one_connection() for _ in range(LOAD_CONNECTIONS)))
    return answered


def test_a_busy_worker_never_serves_a_session_signed_out_elsewhere(spawn_server):
    """Sign out on worker A; the next request to busy worker B must be signed out.

    B's event loop is kept busy by ``LOAD_CONNECTIONS`` other connections. Each request to B is sent
    only once A's sign-out response has arrived, on a connection kept alive to B.
    """
    server = spawn_server(processes=2)
    cookies: dict[str, str] = {}
    a, b = pinned_pair(server.url, cookies)
    a.request("GET", "/")  # the XSRF cookie
    address = f"busy-{secrets.token_hex(5)}@example.com"
    form = {"user_name": "Busy", "user_email": address, "user_password": "correct horse"}
    assert a.request("POST", "/register", form)[0] == 201
    load_cookie = f"sid={cookies.pop('sid')}"  # the load's own session, left alone
    stop = threading.Event()
    served = []
    load = threading.Thread(
        target=lambda: served.append(asyncio.run(_keep_busy(server.url, b.pid, load_cookie, stop))),
        daemon=True,
    )
    stale = []
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.0002)  # the load thread must not hold up this one's requests
    load.start()
    try:
        time.sleep(0.3)  # the load's connections are open and busy
        for attempt in range(TRIES):
            login = {"user_email": address, "user_password": "correct horse"}
            assert a.request("POST", "/login", login)[0] == 200
            signed_in = {**cookies}
            assert b.request("GET", "/whoami")[0] == 200  # B has it cached now
            assert a.request("POST", "/logout")[0] == 200
            status, _body, pid = b.request("GET", "/whoami", cookies=signed_in)
            assert pid == b.pid
            if status != 401:
                stale.append((attempt, status))
    finally:
        stop.set()
        load.join(timeout=10)
        sys.setswitchinterval(switch)
        a.close()
        b.close()
    assert served and served[0] > TRIES * 4  # B really was busy meanwhile
    assert stale == []
