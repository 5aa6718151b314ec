"""Sessions across Redis crashes, restores and outages (issue 8, items 5 and 6).

Each test runs the application in-process against its own ``redis-server`` started
from ``deploy/redis.conf`` in a temporary folder (never the shared one), and kills,
pauses or restores it:

* a crash (SIGKILL) one second after sign-in loses nothing: the append-only file;
* a restore from an older snapshot does not bring back the sessions that a password
  change ended, past the documented bound (one refresh interval);
* a sign-out while Redis does not answer expires the cookie at once and ends the
  session on the server as soon as Redis answers again.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.browser import Browser
from tests.support.own_redis import OwnRedis

PASSWORD = "correct horse"


@pytest.fixture
def own_redis(tmp_path) -> Iterator[OwnRedis]:
    directory = tmp_path / "redis"
    directory.mkdir()
    server = OwnRedis(directory)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def app_config(app_config, own_redis):  # the suite's configuration, on the private Redis
    return dataclasses.replace(app_config, redis_url=own_redis.url)


async def until_answered(call: Any, within: float = 10.0) -> Any:
    """Repeat a request while it answers 503 (the clients reconnect after a restart)."""
    deadline = time.monotonic() + within
    while True:
        response = await call()
        if response.code != 503 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.1)


async def whoami(browser: Browser) -> int:
    return (await until_answered(lambda: browser.get("/whoami", accept_json=True))).code


@pytest.mark.gen_test(timeout=60)
async def test_signed_in_users_stay_signed_in_after_a_crash(own_redis, new_browser, unique_email):
    browsers = [new_browser() for _ in range(3)]
    for n, browser in enumerate(browsers):
        assert (await browser.register("Ann", unique_email(f"aof{n}"))).code == 201
    await asyncio.sleep(1.5)  # appendfsync everysec
    own_redis.kill()
    own_redis.start()
    assert [await whoami(b) for b in browsers] == [200, 200, 200]
    assert (await browsers[0].get("/home", accept_json=True)).code == 200


@pytest.mark.gen_test(timeout=60)
async def test_a_restored_snapshot_does_not_revive_sessions_a_password_change_ended(
    own_redis, new_browser, unique_email, clock, tmp_path
):
    email = unique_email("restore")
    me, stolen, bystander = new_browser(), new_browser(), new_browser()
    assert (await me.register("Ann", email)).code == 201
    assert (await stolen.login(email)).code == 200
    assert (await bystander.register("Bea", unique_email("bystander"))).code == 201
    with own_redis.client() as client:
        client.save()
    shutil.copy(own_redis.directory / "dump.rdb", tmp_path / "backup.rdb")

    changed = await me.post(
        "/password",
        body=json.dumps({"current_password": PASSWORD, "new_password": "new horse staple"}),
        accept_json=True,
        headers={"Content-Type": "application/json"},
    )
    assert changed.code == 200, changed.body
    stolen_cookie = stolen.cookies["sid"]  # kept by whoever stole it
    assert await whoami(stolen) == 401

    # The operator restores last night's backup: AOF off, the snapshot in place.
    own_redis.kill()
    shutil.rmtree(own_redis.directory / "appendonlydir", ignore_errors=True)
    shutil.copy(tmp_path / "backup.rdb", own_redis.directory / "dump.rdb")
    own_redis.start("--appendonly", "no")
    with own_redis.client() as client:
        assert client.dbsize() > 0  # the snapshot's sessions are back in Redis

    # The bound: until the session's next refresh (at most a minute) it still answers.
    stolen.cookies["sid"] = stolen_cookie
    assert await whoami(stolen) == 200
    clock.advance(61)
    assert await whoami(stolen) == 401  # issued before the mark: refused, and deleted
    stolen.cookies["sid"] = stolen_cookie
    assert await whoami(stolen) == 401
    assert await whoami(bystander) == 200  # untouched users keep their sessions


@pytest.mark.gen_test(timeout=60)
async def test_sign_out_during_an_outage_ends_the_session_when_redis_is_back(
    own_redis, new_browser, unique_email, redis_prefix
):
    browser = new_browser()
    assert (await browser.register("Ann", unique_email("outage"))).code == 201
    cookie = browser.cookies["sid"]
    with own_redis.client() as client:
        keys = client.keys(f"{redis_prefix}sess:{{u:*}}:*")
        assert any(not k.endswith(":index") for k in keys)

    own_redis.signal(signal.SIGSTOP)  # Redis stops answering
    try:
        started = time.monotonic()
        response = await browser.post("/logout", accept_json=True)
        assert time.monotonic() - started < 3
        assert response.code == 202, response.body
        assert "will keep trying" in json.loads(response.body)["message"]
        assert "sid" not in browser.cookies  # this browser is signed out at once
    finally:
        own_redis.signal(signal.SIGCONT)

    deadline = time.monotonic() + 10
    while True:
        with own_redis.client() as client:
            left = [k for k in client.keys(f"{redis_prefix}sess:*") if not k.endswith(":index")]
        if not left or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.2)
    assert left == []  # the retried end reached Redis
    browser.cookies["sid"] = cookie  # whoever kept the old cookie gets nothing
    assert await whoami(browser) == 401
