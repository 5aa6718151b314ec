"""The session store's events hook (``sessions.events``), against real Redis.

A recording ``SessionEvents`` stands for an application's metrics and logs: every
lifecycle step, cache lookup and script run must reach it, with the right reason.
"""

from __future__ import annotations

import pytest

from sessions import RedisSessionStore, Session, SessionConfig, SessionEvents, SessionUnavailable
from sessions.ids import sid_digest
from tests.support.server_process import free_port

UID = 9_200_000_000  # far above the ids of accounts other tests register


class Recorder(SessionEvents):
    def __init__(self) -> None:
        self.lifecycle: list[tuple[str, str, int | None]] = []
        self.lookups: list[bool] = []
        self.commands: list[tuple[str, bool]] = []

    def created(self, digest: str, user_id: int | None) -> None:
        self.lifecycle.append(("created", digest, user_id))

    def ended(self, reason: str, digest: str, user_id: int | None) -> None:
        self.lifecycle.append((reason, digest, user_id))

    def cache_lookup(self, hit: bool) -> None:
        self.lookups.append(hit)

    def command(self, script: str, seconds: float, error: Exception | None) -> None:
        assert 0 <= seconds < 5
        self.commands.append((script, error is not None))


@pytest.fixture
def recorded(redis_url, redis_prefix, clock, io_loop):
    events = Recorder()
    config = SessionConfig(prefix=redis_prefix)
    store = RedisSessionStore.from_url(redis_url, config, clock=clock, events=events)
    yield store, events
    io_loop.run_sync(store.close)


async def signed_in(store, user_id):
    session = Session()
    session["n"] = 1
    await store.create(session, user_id=user_id)
    return session


@pytest.mark.gen_test
async def test_lifecycle_cache_and_commands_reach_the_hook(recorded, clock):
    store, events = recorded
    one = await signed_in(store, UID + 1)
    digest = sid_digest(one.locator.sid)
    assert events.lifecycle == [("created", digest, UID + 1)]
    assert events.commands == [("create", False)]

    for _ in range(3):
        assert (await store.load(one.locator))["n"] == 1  # from Redis, then cached
    clock.advance(120)  # due for a last_seen refresh: goes to Redis
    assert (await store.load(one.locator))["n"] == 1
    assert events.lookups[-2:] == [True, False] and len(events.lookups) == 4
    assert events.commands[-1] == ("load", False)

    await store.destroy(one.locator, reason="rotated")
    assert await store.load(one.locator) is None  # its cookie comes back: gone
    one.incr("n")
    assert not await store.save(one)  # a write after the end writes nothing
    reasons = [(reason, d) for reason, d, _ in events.lifecycle[1:]]
    assert reasons == [("rotated", digest), ("expired", digest), ("ended_elsewhere", digest)]

    two, three = await signed_in(store, UID + 2), await signed_in(store, UID + 2)
    assert await store.end_other_user_sessions(UID + 2, keep_sid=two.locator.sid) == 1
    await store.end_user_session(UID + 2, two.locator.sid)
    ended = [(reason, d) for reason, d, _ in events.lifecycle[-2:]]
    assert ended == [
        ("revoked", sid_digest(three.locator.sid)),
        ("revoked", sid_digest(two.locator.sid)),
    ]
    scripts = {script for script, _ in events.commands}
    assert scripts == {"create", "load", "destroy", "fence", "save", "end_others"}


@pytest.mark.gen_test
async def test_failed_commands_reach_the_hook(clock):
    events = Recorder()
    store = RedisSessionStore.from_url(
        f"redis://127.0.0.1:{free_port()}/0", SessionConfig(), clock=clock, events=events,
        timeout=0.2,
    )  # fmt: skip
    try:
        with pytest.raises(SessionUnavailable):
            await signed_in(store, UID + 3)
    finally:
        await store.close()
    assert events.commands == [("create", True)]
    assert events.lifecycle == []
