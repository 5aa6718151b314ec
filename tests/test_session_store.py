"""The session store against real Redis: layout, deltas, counters, timeouts, index.

Every test runs on each topology (one server, Redis Cluster, Redis Sentinel), and none
needs the application or MariaDB: ``pytest tests/test_session_store.py`` runs alone.
"""

from __future__ import annotations

import asyncio

import pytest

from sessions import Locator, RedisSessionStore, Session, SessionConfig
from sessions.ids import KeySpace, new_sid
from tests.support.topologies import TOPOLOGIES, topology_url

IDLE = 1800
UID = 9_000_000_000  # far above the ids of accounts other tests register
ABSOLUTE = 28800


@pytest.fixture(params=TOPOLOGIES)
def redis_url(request, redis_url):
    return topology_url(request, request.param, redis_url)


@pytest.fixture
def store(redis_url, redis_prefix, clock, io_loop):
    store = RedisSessionStore.from_url(redis_url, SessionConfig(prefix=redis_prefix), clock=clock)
    yield store
    io_loop.run_sync(store.close)


@pytest.fixture
def keys(redis_prefix):
    return KeySpace(redis_prefix)


async def stored_session(store, user_id=None, **attrs):
    session = Session()
    for name, value in attrs.items():
        session[name] = value
    await store.create(session, user_id=user_id, ip="192.0.2.7", user_agent="pytest")
    return session


def test_ids_are_256_bit_and_locators_are_validated():
    sid = new_sid()
    assert len(sid) == 43 and sid != new_sid()
    assert Locator.parse(f"42:{sid}") == Locator(sid=sid, user_id=42)
    assert Locator.parse(f":{sid}") == Locator(sid=sid)
    for bad in [
        "",
        "42",
        f"42:{sid}x",
        f"-1:{sid}",
        f"01:{sid}",
        f"a:{sid}",
        f"42:{sid[:-1]}!",
        f"42:{sid}\n",
        b"\xff" + sid.encode(),
        "1" * 19 + ":" + sid,
    ]:
        assert Locator.parse(bad) is None, bad


@pytest.mark.gen_test
async def test_layout_one_hash_per_session_with_metadata_and_json_values(
    store, keys, sync_redis, clock
):
    session = await stored_session(store, user_id=UID + 7, cart=["a", {"n": 1}], views=3)
    key = keys.session(session.locator)
    assert key == f"{keys.prefix}sess:{{u:{UID + 7}}}:{session.sid}"
    assert sync_redis.type(key) == "hash"
    fields = sync_redis.hgetall(key)
    assert fields["@c"] == fields["@s"] == str(int(clock.now * 1000))
    assert fields["@ip"] == "192.0.2.7" and fields["@ua"] == "pytest"
    assert fields["cart"] == '["a",{"n":1}]' and fields["views"] == "3"
    loaded = await store.load(session.locator)
    assert loaded["cart"] == ["a", {"n": 1}] and loaded["views"] == 3
    assert loaded.user_id == UID + 7


@pytest.mark.gen_test
async def test_only_changed_fields_are_written(store, keys, sync_redis):
    session = await stored_session(store, a="1", b="2")
    key = keys.session(session.locator)
    first = await store.load(session.locator)
    second = await store.load(session.locator)
    first["a"] = "from-first"
    second["b"] = "from-second"
    del second["missing"]
    assert await store.save(first) and await store.save(second)
    fields = sync_redis.hgetall(key)
    assert fields["a"] == '"from-first"' and fields["b"] == '"from-second"'


@pytest.mark.gen_test
async def test_fifty_concurrent_increments_are_exact(store, keys, sync_redis):
    session = await stored_session(store, user_id=UID + 8)
    copies = [await store.load(session.locator) for _ in range(50)]
    for copy in copies:
        copy.incr("views")
    results = await asyncio.gather(*(store.save(copy) for copy in copies))
    assert all(results)
    assert sync_redis.hget(keys.session(session.locator), "views") == "50"
    assert sorted(copy["views"] for copy in copies) == list(range(1, 51))


@pytest.mark.gen_test
async def test_save_after_delete_does_not_resurrect(store, keys, sync_redis):
    session = await stored_session(store, user_id=UID + 9)
    late = await store.load(session.locator)
    await store.destroy(session.locator)
    late.incr("views")
    late["x"] = 1
    assert await store.save(late) is False
    assert late.ended
    assert not sync_redis.exists(keys.session(session.locator))
    assert sync_redis.zscore(keys.user_index(UID + 9), session.sid) is None


@pytest.mark.gen_test
async def test_idle_timeout(store, keys, sync_redis, clock):
    session = await stored_session(store, user_id=UID + 10)
    clock.advance(IDLE - 1)
    assert await store.load(session.locator) is not None
    clock.advance(IDLE - 1)  # touched at the previous load: still alive
    assert await store.load(session.locator) is not None
    clock.advance(IDLE)
    assert await store.load(session.locator) is None
    assert not sync_redis.exists(keys.session(session.locator))
    assert sync_redis.zscore(keys.user_index(UID + 10), session.sid) is None


@pytest.mark.gen_test
async def test_absolute_timeout_despite_activity(store, clock):
    session = await stored_session(store, user_id=UID + 11)
    for _ in range(ABSOLUTE // 1000 - 1):
        clock.advance(1000)
        assert await store.load(session.locator) is not None
    clock.advance(ABSOLUTE - (ABSOLUTE // 1000 - 1) * 1000)
    assert await store.load(session.locator) is None


@pytest.mark.gen_test
async def test_recent_reads_do_not_write_and_stale_reads_refresh_expiry(
    store, keys, sync_redis, clock
):
    session = await stored_session(store, user_id=UID + 12)
    key = keys.session(session.locator)
    created = sync_redis.hget(key, "@s")
    touch = store.config.touch_after_seconds
    clock.advance(touch / 2)
    await store.load(session.locator)
    assert sync_redis.hget(key, "@s") == created  # recent: a pure read
    clock.advance(touch)
    await store.load(session.locator)
    assert sync_redis.hget(key, "@s") == str(int(clock.now * 1000))
    # The key's TTL is min(created + absolute, last_seen + idle) - now.
    assert IDLE * 1000 - 2000 < sync_redis.pttl(key) <= IDLE * 1000


@pytest.mark.gen_test
async def test_ttl_never_exceeds_absolute_deadline(redis_prefix, store, sync_redis, clock):
    store = RedisSessionStore(
        store.redis,
        SessionConfig(idle_timeout=100, absolute_timeout=150, prefix=redis_prefix),
        clock=clock,
    )
    session = await stored_session(store, user_id=UID + 13)
    key = store.keys.session(session.locator)
    clock.advance(90)
    assert await store.load(session.locator) is not None
    assert 59_000 <= sync_redis.pttl(key) <= 60_000  # 150 - 90, not 100


@pytest.mark.gen_test
async def test_user_index_lists_ends_and_never_keeps_dead_entries(store, keys, sync_redis, clock):
    user = UID + 14
    first = await stored_session(store, user_id=user)
    second = await stored_session(store, user_id=user)
    third = await stored_session(store, user_id=user)
    listed = await store.list_user_sessions(user)
    assert {info.sid for info in listed} == {first.sid, second.sid, third.sid}
    assert all(info.ip == "192.0.2.7" and info.user_agent == "pytest" for info in listed)
    assert all(abs(info.created_at - clock.now) < 1 for info in listed)

    await store.end_user_session(user, first.sid)
    assert {i.sid for i in await store.list_user_sessions(user)} == {second.sid, third.sid}
    assert await store.load(first.locator) is None

    assert await store.end_other_user_sessions(user, keep_sid=third.sid) == 1
    assert [i.sid for i in await store.list_user_sessions(user)] == [third.sid]
    assert await store.load(second.locator) is None
    assert await store.load(third.locator) is not None

    # Members that time out are pruned whenever the index is touched again.
    clock.advance(IDLE + 1)
    fresh = await stored_session(store, user_id=user)
    assert sync_redis.zrange(keys.user_index(user), 0, -1) == [fresh.sid]
    # The index lives exactly as long as its longest-lived member (both PTTLs are set
    # by one script; they are read a moment apart here).
    index_ttl = sync_redis.pttl(keys.user_index(user))
    session_ttl = sync_redis.pttl(keys.session(fresh.locator))
    assert abs(index_ttl - session_ttl) < 100


@pytest.mark.gen_test
async def test_listing_shows_each_sessions_attributes(store):
    user = UID + 90
    first = await stored_session(store, user_id=user, user_name="Ann")
    first.incr("served_by:h:1", 3)
    assert await store.save(first)
    await stored_session(store, user_id=user, user_name="Ann")
    by_sid = {info.sid: info.attributes for info in await store.list_user_sessions(user)}
    assert by_sid[first.sid] == {"user_name": "Ann", "served_by:h:1": 3}
    assert sorted(map(dict, by_sid.values()), key=len) == [
        {"user_name": "Ann"},
        {"user_name": "Ann", "served_by:h:1": 3},
    ]


@pytest.mark.gen_test
async def test_listing_drops_members_whose_hash_vanished(store, keys, sync_redis):
    session = await stored_session(store, user_id=UID + 15)
    sync_redis.delete(keys.session(session.locator))  # e.g. evicted under memory pressure
    assert await store.list_user_sessions(UID + 15) == []
    assert sync_redis.zcard(keys.user_index(UID + 15)) == 0


@pytest.mark.gen_test
async def test_anonymous_session_is_stored_only_when_it_holds_something(store, keys, sync_redis):
    session = Session()
    assert await store.save(session) is True and not session.is_stored
    session["theme"] = "dark"
    assert await store.save(session)
    assert sync_redis.hget(keys.session(session.locator), "theme") == '"dark"'
    assert session.locator.user_id is None


def test_metadata_names_are_reserved():
    session = Session()
    with pytest.raises(KeyError):
        session["@u"] = 1
    with pytest.raises(KeyError):
        session.incr("")


@pytest.mark.gen_test
async def test_corrupt_values_are_ignored_not_fatal(store, keys, sync_redis):
    session = await stored_session(store, user_id=UID + 16, ok=1)
    sync_redis.hset(keys.session(session.locator), "bad", "{not json")
    loaded = await store.load(session.locator)
    assert loaded["ok"] == 1 and "bad" not in loaded
