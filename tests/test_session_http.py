"""Session behaviour through HTTP: creation, rotation, logout, timeouts, round trips,
on each topology (one server, Redis Cluster, Redis Sentinel)."""

from __future__ import annotations

import asyncio
import json

import pytest
from tornado.web import decode_signed_value

from sessions import Locator
from tests.support.browser import body_json
from tests.support.topologies import TOPOLOGIES, topology_url

IDLE = 1800


@pytest.fixture(params=TOPOLOGIES)
def redis_url(request, redis_url):
    return topology_url(request, request.param, redis_url)


pytestmark = pytest.mark.usefixtures("redis_url")  # the app is looked up by name


def session_keys(sync_redis, prefix):
    return set(sync_redis.scan_iter(match=prefix + "sess:*"))


def locator_of(browser, app_config):
    raw = decode_signed_value(
        app_config.cookie_secrets, "sid", browser.cookies["sid"], min_version=2
    )
    return Locator.parse(raw)


@pytest.mark.gen_test
async def test_visitors_get_no_stored_session(
    browser, new_browser, sync_redis, redis_prefix, unique_email
):
    before = session_keys(sync_redis, redis_prefix)
    await browser.get("/")
    await browser.get("/home", accept_json=True)
    await browser.get("/whoami")
    await browser.login(unique_email("nobody"), "wrong password")
    assert (await browser.post("/addStatus", {"status": "hi"}, accept_json=True)).code == 401
    assert session_keys(sync_redis, redis_prefix) == before
    assert "sid" not in browser.cookies


@pytest.mark.gen_test
async def test_login_rotates_id_and_deletes_previous_session(
    browser, new_browser, sync_redis, redis_prefix, unique_email, app_config, resources
):
    email = unique_email("rot")
    assert (await browser.register("Rot", email)).code == 201
    first = locator_of(browser, app_config)
    old_cookie = browser.cookies["sid"]
    assert (await browser.login(email)).code == 200  # already signed in: new id anyway
    second = locator_of(browser, app_config)
    assert second.sid != first.sid and second.user_id == first.user_id
    assert not sync_redis.exists(resources.sessions.keys.session(first))
    assert sync_redis.exists(resources.sessions.keys.session(second))
    assert sync_redis.zscore(resources.sessions.keys.user_index(first.user_id), first.sid) is None

    replay = new_browser()
    replay.cookies["sid"] = old_cookie
    assert (await replay.get("/home", accept_json=True)).code == 401
    assert (await browser.get("/home", accept_json=True)).code == 200


@pytest.mark.gen_test
async def test_logout_deletes_server_state_and_old_cookie_fails(
    browser, new_browser, sync_redis, unique_email, app_config, resources
):
    await browser.register("Out", unique_email("out"))
    loc = locator_of(browser, app_config)
    cookie = browser.cookies["sid"]
    resp = await browser.post("/logout", accept_json=True)
    assert resp.code == 200 and body_json(resp)["error"] is False
    assert "sid" not in browser.cookies
    assert not sync_redis.exists(resources.sessions.keys.session(loc))
    replay = new_browser()
    replay.cookies["sid"] = cookie
    assert (await replay.get("/home", accept_json=True)).code == 401


@pytest.mark.gen_test
async def test_request_running_during_logout_cannot_write_back(
    browser, unique_email, app_config, resources, sync_redis
):
    await browser.register("Late", unique_email("late"))
    loc = locator_of(browser, app_config)
    in_flight = await resources.sessions.load(loc)  # a request that loaded its session
    await browser.post("/logout", accept_json=True)
    in_flight.incr("views")
    assert await resources.sessions.save(in_flight) is False
    assert not sync_redis.exists(resources.sessions.keys.session(loc))


@pytest.mark.gen_test
async def test_idle_timeout_signs_out_and_clears_cookie(browser, unique_email, clock):
    await browser.register("Idle", unique_email("idle"))
    clock.advance(IDLE - 5)
    assert (await browser.get("/home", accept_json=True)).code == 200
    clock.advance(IDLE + 1)
    resp = await browser.get("/home", accept_json=True)
    assert resp.code == 401
    assert "sid" not in browser.cookies


@pytest.mark.gen_test
async def test_views_counter_is_exact_under_concurrency(browser, new_browser, unique_email):
    await browser.register("Count", unique_email("count"))
    tabs = []
    for _ in range(50):
        tab = new_browser()
        tab.cookies = dict(browser.cookies)
        tabs.append(tab)
    responses = await asyncio.gather(*(t.get("/home", accept_json=True) for t in tabs))
    views = sorted(body_json(r)["message"]["views"] for r in responses)
    assert views == list(range(1, 51))
    final = await browser.get("/home", accept_json=True)
    assert body_json(final)["message"]["views"] == 51


@pytest.mark.gen_test
async def test_session_cookie_attributes(browser, unique_email):
    resp = await browser.register("Cookie", unique_email("cookie"))
    header = next(h for h in resp.headers.get_list("Set-Cookie") if h.startswith("sid="))
    attrs = [a.strip().lower() for a in header.split(";")[1:]]
    assert "httponly" in attrs and "samesite=lax" in attrs and "path=/" in attrs
    assert not any(a.startswith(("expires", "max-age", "domain")) for a in attrs)
    assert "secure" not in attrs  # plain http here; https is covered with --xheaders
    assert len(header) < 4096
    value = browser.cookies["sid"]
    assert value.startswith("2|")  # Tornado's v2 signed format
    assert json.dumps(value)  # printable


@pytest.mark.gen_test
async def test_cookie_older_than_absolute_timeout_is_refused_even_when_cached(
    browser, unique_email, app_config, monkeypatch
):
    import time as real_time

    import sessions.mixin

    await browser.register("Aged", unique_email("aged"))
    assert (await browser.get("/whoami")).code == 200  # verified once: now cached
    later = real_time.time() + app_config.session.absolute_timeout + 301
    monkeypatch.setattr(sessions.mixin.time, "time", lambda: later)
    # The session in Redis is still alive (the store's clock did not move):
    # only the cookie's signed age refuses it.
    assert (await browser.get("/whoami")).code == 401


@pytest.mark.gen_test
async def test_cookie_signed_too_long_ago_is_refused(
    browser, new_browser, unique_email, app_config
):
    from tornado.web import create_signed_value

    await browser.register("Old", unique_email("old"))
    loc = locator_of(browser, app_config)
    signed_long_ago = create_signed_value(
        app_config.cookie_secrets,
        "sid",
        loc.encode(),
        version=2,
        key_version=1,
        clock=lambda: real_now() - app_config.session.absolute_timeout - 400,
    ).decode()
    stale = new_browser()
    stale.cookies["sid"] = signed_long_ago
    assert (await stale.get("/whoami")).code == 401


def real_now() -> float:
    import time

    return time.time()
