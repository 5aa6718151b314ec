"""``/sessions`` over HTTP: the JSON list, ending one session, ending all others.

Two or three cookie-keeping clients of one user stand for that user's browsers.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.support.browser import Browser, body_json

PASSWORD = "correct horse"
FIELDS = {"id", "current", "created_at", "last_seen", "ip", "user_agent", "device", "served_by"}
CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)


def ok(response: Any, code: int = 200) -> Any:
    assert response.code == code, (response.code, response.body)
    data = body_json(response)
    assert data["error"] is False, data
    return data["message"]


async def two_browsers(new_browser: Any, unique_email: Any) -> tuple[Browser, Browser]:
    email = unique_email("multi")
    first, second = new_browser(), new_browser()
    ok(await first.register("Multi", email, PASSWORD), 201)
    ok(
        await second.post(
            "/login",
            {"user_email": email, "user_password": PASSWORD},
            accept_json=True,
            headers={"User-Agent": IPHONE},
        )
    )
    return first, second


async def listed(browser: Browser) -> list[dict[str, Any]]:
    return list(ok(await browser.get("/sessions", accept_json=True)))


@pytest.mark.gen_test
async def test_list_shows_every_session_with_exact_fields(
    new_browser, unique_email, app, sync_redis
):
    first, second = await two_browsers(new_browser, unique_email)
    for _ in range(2):
        ok(await first.get("/home", accept_json=True, headers={"User-Agent": CHROME}))
    sessions = await listed(first)
    assert len(sessions) == 2
    assert all(set(s) == FIELDS for s in sessions)
    assert [s["current"] for s in sessions] == [True, False]  # this one first
    mine, other = sessions
    served = app.settings["resources"].served_by
    assert mine["served_by"] == {served: 2}  # the two /home visits, one field per process
    assert other["served_by"] == {}  # a sign-in alone writes no count
    assert other["device"] == "Mobile Safari 18 on iOS (iPhone)"
    assert other["user_agent"] == IPHONE
    assert mine["ip"] == other["ip"] == "127.0.0.1"
    for entry in sessions:
        for key in ("created_at", "last_seen"):
            moment = datetime.fromisoformat(entry[key])
            assert moment.utcoffset() is not None
            assert abs((datetime.now(UTC) - moment).total_seconds()) < 120
    # Handles are opaque: no session id (nor any part of the cookie) is ever shown.
    sid = first.cookies["sid"]
    for entry in sessions:
        assert re.fullmatch(r"[A-Za-z0-9_-]{24}", entry["id"])
        assert entry["id"] not in sid
    assert not any(entry["id"] in key for key in sync_redis.keys("*") for entry in sessions), (
        "a handle must not be a Redis key name"
    )
    # The other browser sees the same two, with "current" the other way round.
    seen_by_second = await listed(second)
    assert {s["id"]: s["current"] for s in seen_by_second} == {
        mine["id"]: False,
        other["id"]: True,
    }


@pytest.mark.gen_test
async def test_ending_another_session_signs_that_browser_out_at_once(new_browser, unique_email):
    first, second = await two_browsers(new_browser, unique_email)
    other = next(s for s in await listed(first) if not s["current"])
    ended = await first.post("/sessions/end", {"id": other["id"]}, accept_json=True)
    assert ok(ended) == {"ended": 1}
    assert (await second.get("/whoami", accept_json=True)).code == 401
    assert [s["current"] for s in await listed(first)] == [True]
    # Ending it again, or ending an id that never was, is 404.
    again = await first.post("/sessions/end", {"id": other["id"]}, accept_json=True)
    assert again.code == 404 and body_json(again)["error"] is True
    for bad in ["", "nope", "x" * 24, "\u00e9" * 24]:
        response = await first.post("/sessions/end", {"id": bad}, accept_json=True)
        assert response.code == 404, bad


@pytest.mark.gen_test
async def test_another_users_session_cannot_be_ended(new_browser, unique_email):
    first, _ = await two_browsers(new_browser, unique_email)
    stranger = new_browser()
    ok(await stranger.register("Stranger", unique_email("stranger"), PASSWORD), 201)
    theirs = (await listed(stranger))[0]["id"]
    response = await first.post("/sessions/end", {"id": theirs}, accept_json=True)
    assert response.code == 404
    assert (await stranger.get("/whoami", accept_json=True)).code == 200


@pytest.mark.gen_test
async def test_end_others_keeps_only_this_one(new_browser, unique_email):
    first, second = await two_browsers(new_browser, unique_email)
    assert len(await listed(first)) == 2
    response = await first.post("/sessions/end-others", {}, accept_json=True)
    assert ok(response) == {"ended": 1}
    assert (await second.get("/whoami", accept_json=True)).code == 401
    assert (await first.get("/whoami", accept_json=True)).code == 200
    assert ok(await first.post("/sessions/end-others", {}, accept_json=True)) == {"ended": 0}


@pytest.mark.gen_test
async def test_ending_this_session_signs_out(new_browser, unique_email):
    first, second = await two_browsers(new_browser, unique_email)
    mine = (await listed(first))[0]
    assert mine["current"] is True
    page = await first.post("/sessions/end", {"id": mine["id"]})
    assert page.code == 303 and page.headers["Location"] == "/"
    assert "sid" not in first.cookies
    assert (await first.get("/whoami", accept_json=True)).code == 401
    assert (await second.get("/whoami", accept_json=True)).code == 200


@pytest.mark.gen_test
async def test_sessions_page_needs_sign_in_and_names_no_session_id(
    new_browser, unique_email, sync_redis, redis_prefix
):
    visitor = new_browser()
    response = await visitor.get("/sessions")
    assert response.code == 302 and response.headers["Location"] == "/?next=%2Fsessions"
    assert (await visitor.get("/sessions", accept_json=True)).code == 401
    first, _ = await two_browsers(new_browser, unique_email)
    page = (await first.get("/sessions")).body.decode()
    assert "This session" in page and "End all other sessions" in page
    user_id = body_json(await first.get("/whoami", accept_json=True))["message"]["user_id"]
    keys = sync_redis.keys(f"{redis_prefix}sess:{{u:{user_id}}}:*")
    sids = [key.rsplit(":", 1)[1] for key in keys if not key.endswith(":index")]
    assert len(sids) == 2
    for sid in sids:
        assert sid not in page
    handles = re.findall(r'name="id" value="([^"]+)"', page)
    assert sorted(handles) == sorted(s["id"] for s in await listed(first))
