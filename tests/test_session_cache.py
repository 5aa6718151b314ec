"""The local session cache stays exact: two stores on their own connections stand for
two worker processes, and every change one makes is seen by the other."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from sessions import RedisSessionStore, Session, SessionConfig

UID = 9_100_000_000  # far above the ids of accounts other tests register


@pytest.fixture
def pair(redis_url, redis_prefix, clock, io_loop):
    config = SessionConfig(prefix=redis_prefix)
    a = RedisSessionStore.from_url(redis_url, config, clock=clock)
    b = RedisSessionStore.from_url(redis_url, config, clock=clock)
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
        # Served from the cache (updated by the reply) or, where Redis also pushes a
        # connection's own script writes back to it (7.0 does, NOLOOP or not), re-read.


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
async def test_lost_invalidation_channel_flushes_the_cache(pair, redis_url):
    a, b = pair
    session = await signed_in(a, UID + 7)
    assert await b.load(session.locator) is not None
    assert len(b.cache) >= 1
    client_id = await b.redis.execute("CLIENT", "ID")
    admin = redis.Redis.from_url(redis_url)
    try:
        admin.client_kill_filter(_id=client_id)
    finally:
        admin.close()
    await until(lambda: len(b.cache) == 0)
    assert b.cache.flushes >= 1
    await a.destroy(session.locator)  # while b was disconnected
    assert await b.load(session.locator) is None  # b reconnects and reads Redis


@pytest.mark.gen_test
async def test_key_expiry_in_redis_invalidates(pair, sync_redis):
    a, b = pair
    session = await signed_in(a, UID + 8)
    assert await b.load(session.locator) is not None
    key = b.keys.session(session.locator)
    sync_redis.pexpire(key, 1)  # as if it timed out in Redis (PEXPIRE itself is a change)
    await until(lambda: b.cache.get(key) is None)
    await until(lambda: not sync_redis.exists(key))  # expired in Redis
    assert await b.load(session.locator) is None
