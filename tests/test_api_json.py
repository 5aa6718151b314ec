"""The JSON side of every route: envelopes, status codes, sessions, paging, negotiation,
and the headers every dynamic response carries."""

from __future__ import annotations

import asyncio
import json
import os
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from typing import Any

import pymysql
import pytest
from tornado.web import decode_signed_value

from storage.urls import parse_mysql_url
from tests.support.browser import Browser, body_json

PASSWORD = "correct horse"
SIGN_IN = "Please sign in."


# ----- helpers --------------------------------------------------------------------


def ok(response: Any, code: int = 200) -> Any:
    """Assert a success envelope with status ``code``; return its message."""
    assert response.code == code, (response.code, response.body)
    data = body_json(response)
    assert set(data) == {"error", "message"}, data
    assert data["error"] is False, data
    return data["message"]


def failed(response: Any, code: int) -> str:
    assert response.code == code, (response.code, response.body)
    data = body_json(response)
    assert set(data) == {"error", "message"}, data
    assert data["error"] is True, data
    assert isinstance(data["message"], str) and data["message"]
    return str(data["message"])


def post_json(browser: Browser, path: str, data: dict[str, str]) -> Any:
    return browser.post(
        path, body=json.dumps(data), accept_json=True, headers={"Content-Type": "application/json"}
    )


async def signed_in(browser: Browser, unique_email: Any, name: str = "Ann") -> dict[str, Any]:
    email = unique_email(name.lower())
    message = ok(await browser.register(name, email, PASSWORD), 201)
    return {"email": email, **message}


async def add(browser: Browser, text: str) -> dict[str, Any]:
    return dict(ok(await browser.post("/addStatus", {"status": text}, accept_json=True), 201))


async def fetch(browser: Browser, query: str = "") -> list[dict[str, Any]]:
    return list(ok(await browser.get("/fetchStatus" + query, accept_json=True)))


def session_key(app_config: Any, prefix: str, cookie: str) -> str:
    locator = decode_signed_value(dict(app_config.cookie_secrets), "sid", cookie, min_version=2)
    assert locator is not None
    user_id, sid = locator.decode().split(":")
    return f"{prefix}sess:{{u:{user_id}}}:{sid}" if user_id else f"{prefix}sess:{{a:{sid}}}"


def sid_morsel(response: Any) -> Any:
    found = []
    for header in response.headers.get_list("Set-Cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if "sid" in jar:
            found.append(jar["sid"])
    assert len(found) == 1, response.headers.get_list("Set-Cookie")
    return found[0]


# ----- GET / -------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_start_as_json(browser):
    response = await browser.get("/", accept_json=True)
    assert ok(response) == {"signed_in": False}
    assert "_xsrf" in browser.cookies
    assert "sid" not in browser.cookies


@pytest.mark.gen_test
async def test_start_redirects_signed_in_json_client(browser, unique_email):
    await signed_in(browser, unique_email)
    response = await browser.get("/", accept_json=True)
    assert response.code == 302
    assert response.headers["Location"] == "/home"


# ----- register / login ------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_register_signs_in(browser, unique_email):
    email = unique_email("reg")
    message = ok(await browser.register(" Ann ", email, PASSWORD), 201)
    assert set(message) == {"user_id", "user_name"}
    assert isinstance(message["user_id"], int) and message["user_id"] > 0
    assert message["user_name"] == "Ann"
    assert "sid" in browser.cookies
    who = ok(await browser.get("/whoami", accept_json=True))
    assert who["user_id"] == message["user_id"]
    assert who["user_name"] == "Ann"
    assert ok(await browser.get("/home", accept_json=True))["user_name"] == "Ann"


@pytest.mark.gen_test
async def test_register_with_json_body(browser, unique_email):
    response = await post_json(
        browser,
        "/register",
        {"user_name": "Jo", "user_email": unique_email("jo"), "user_password": PASSWORD},
    )
    assert ok(response, 201)["user_name"] == "Jo"
    assert ok(await browser.get("/whoami", accept_json=True))["user_name"] == "Jo"


@pytest.mark.gen_test
async def test_login_returns_the_user(browser, new_browser, unique_email):
    user = await signed_in(browser, unique_email, "Lu")
    other = new_browser()
    message = ok(await other.login(user["email"], PASSWORD))
    assert message == {"user_id": user["user_id"], "user_name": "Lu"}
    assert ok(await other.get("/whoami", accept_json=True))["user_id"] == user["user_id"]


@pytest.mark.gen_test
async def test_login_with_json_body(browser, new_browser, unique_email):
    user = await signed_in(browser, unique_email)
    other = new_browser()
    response = await post_json(
        other, "/login", {"user_email": user["email"], "user_password": PASSWORD}
    )
    assert ok(response)["user_id"] == user["user_id"]
    assert ok(await other.get("/home", accept_json=True))["views"] == 1


@pytest.mark.gen_test
async def test_login_issues_a_new_session_each_time(
    browser, new_browser, unique_email, app_config, redis_prefix, sync_redis
):
    user = await signed_in(browser, unique_email)
    first = browser.cookies["sid"]
    first_key = session_key(app_config, redis_prefix, first)
    ok(await browser.get("/home", accept_json=True))
    response = await browser.login(user["email"], PASSWORD)  # already signed in
    ok(response)
    second = browser.cookies["sid"]
    assert second != first
    assert sid_morsel(response).value == second
    assert sync_redis.exists(first_key) == 0
    second_key = session_key(app_config, redis_prefix, second)
    assert sync_redis.exists(second_key) == 1
    # Nothing crosses from the old session: the counter starts again.
    assert ok(await browser.get("/home", accept_json=True))["views"] == 1
    replay = new_browser()
    replay.cookies["sid"] = first
    assert failed(await replay.get("/home", accept_json=True), 401) == SIGN_IN


@pytest.mark.gen_test
async def test_login_as_another_user_replaces_the_session(
    browser, new_browser, unique_email, app_config, redis_prefix, sync_redis
):
    await signed_in(browser, unique_email, "First")
    second = await signed_in(new_browser(), unique_email, "Second")
    old_key = session_key(app_config, redis_prefix, browser.cookies["sid"])
    ok(await browser.login(second["email"], PASSWORD))
    assert sync_redis.exists(old_key) == 0
    who = ok(await browser.get("/whoami", accept_json=True))
    assert (who["user_id"], who["user_name"]) == (second["user_id"], "Second")


@pytest.mark.gen_test
async def test_failed_login_keeps_the_current_session(browser, unique_email):
    user = await signed_in(browser, unique_email)
    assert (
        failed(await browser.login(user["email"], "wrong horse"), 401)
        == "Invalid e-mail or password."
    )
    assert ok(await browser.get("/whoami", accept_json=True))["user_id"] == user["user_id"]


# ----- statuses ------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_add_status_and_fetch_it(browser, unique_email):
    await signed_in(browser, unique_email)
    assert await fetch(browser) == []
    added = await add(browser, "hello world")
    assert set(added) == {"status_id", "user_status"}
    assert isinstance(added["status_id"], int)
    assert added["user_status"] == "hello world"
    statuses = await fetch(browser)
    assert len(statuses) == 1
    assert statuses[0]["status_id"] == added["status_id"]
    assert statuses[0]["user_status"] == "hello world"
    created = datetime.fromisoformat(statuses[0]["created_date"])
    assert created.utcoffset() is not None  # ISO-8601 with the zone written
    assert abs((datetime.now(UTC) - created).total_seconds()) < 60


@pytest.mark.gen_test
async def test_add_status_with_json_body(browser, unique_email):
    await signed_in(browser, unique_email)
    response = await post_json(browser, "/addStatus", {"status": "  from json  "})
    assert ok(response, 201)["user_status"] == "from json"
    assert [s["user_status"] for s in await fetch(browser)] == ["from json"]


@pytest.mark.gen_test
async def test_statuses_are_newest_first(browser, unique_email):
    await signed_in(browser, unique_email)
    ids = [(await add(browser, f"status {i}"))["status_id"] for i in range(5)]
    statuses = await fetch(browser)
    assert [s["user_status"] for s in statuses] == [f"status {i}" for i in (4, 3, 2, 1, 0)]
    assert [s["status_id"] for s in statuses] == ids[::-1]
    dates = [datetime.fromisoformat(s["created_date"]) for s in statuses]
    assert dates == sorted(dates, reverse=True)


@pytest.mark.gen_test
async def test_fetch_status_pages_with_limit_and_before(browser, unique_email):
    await signed_in(browser, unique_email)
    for i in range(5):
        await add(browser, f"s{i}")
    page = await fetch(browser, "?limit=2")
    assert [s["user_status"] for s in page] == ["s4", "s3"]
    page = await fetch(browser, f"?limit=2&before={page[-1]['status_id']}")
    assert [s["user_status"] for s in page] == ["s2", "s1"]
    page = await fetch(browser, f"?limit=2&before={page[-1]['status_id']}")
    assert [s["user_status"] for s in page] == ["s0"]
    assert await fetch(browser, f"?limit=2&before={page[-1]['status_id']}") == []
    assert [s["user_status"] for s in await fetch(browser, "?limit=1000")] == [
        "s4",
        "s3",
        "s2",
        "s1",
        "s0",
    ]
    assert len(await fetch(browser, "?limit=")) == 5


@pytest.mark.gen_test
async def test_fetch_status_shows_only_own_statuses(browser, new_browser, unique_email):
    await signed_in(browser, unique_email)
    other = new_browser()
    await signed_in(other, unique_email, "Other")
    theirs = await add(other, "theirs")
    await add(browser, "mine")
    assert [s["user_status"] for s in await fetch(browser)] == ["mine"]
    # ``before`` another user's id still shows only one's own statuses.
    assert await fetch(browser, f"?before={theirs['status_id'] + 1000}") != []
    assert [s["user_status"] for s in await fetch(other)] == ["theirs"]


@pytest.mark.gen_test
async def test_markup_in_status_is_raw_in_json(browser, unique_email):
    await signed_in(browser, unique_email)
    text = "<script>alert(1)</script>"
    assert (await add(browser, text))["user_status"] == text
    assert [s["user_status"] for s in await fetch(browser)] == [text]
    page = (await browser.get("/home")).body.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert text not in page


@pytest.mark.gen_test
async def test_unicode_status_round_trips(browser, unique_email):
    await signed_in(browser, unique_email)
    text = "héllo wörld \U0001f600 漢字\nsecond line"
    await add(browser, text)
    assert [s["user_status"] for s in await fetch(browser)] == [text]


@pytest.mark.gen_test
async def test_add_status_of_a_deleted_account_signs_out(
    browser, unique_email, mysql_url, app_config, redis_prefix, sync_redis
):
    user = await signed_in(browser, unique_email)
    key = session_key(app_config, redis_prefix, browser.cookies["sid"])
    params = parse_mysql_url(mysql_url)
    conn = pymysql.connect(**params.pymysql_kwargs(), autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("DELETE FROM user_login WHERE user_id = %s", (user["user_id"],))
    finally:
        conn.close()
    assert (
        failed(await browser.post("/addStatus", {"status": "x"}, accept_json=True), 401) == SIGN_IN
    )
    assert sync_redis.exists(key) == 0
    assert failed(await browser.get("/home", accept_json=True), 401) == SIGN_IN


# ----- signed out ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/home"), ("GET", "/fetchStatus"), ("GET", "/whoami"), ("POST", "/addStatus")],
)
@pytest.mark.gen_test
async def test_signed_out_json_client_gets_401(browser, method, path):
    if method == "GET":
        response = await browser.get(path, accept_json=True)
    else:
        response = await browser.post(path, {"status": "hello"}, accept_json=True)
    assert failed(response, 401) == SIGN_IN


@pytest.mark.parametrize("path", ["/fetchStatus", "/whoami"])
@pytest.mark.gen_test
async def test_json_only_routes_answer_json_to_browsers(browser, path):
    response = await browser.get(path)  # Accept: text/html
    assert failed(response, 401) == SIGN_IN


# ----- home ------------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_home_counts_views(browser, unique_email):
    await signed_in(browser, unique_email, "Vi")
    for expected in range(1, 5):
        response = await browser.get("/home", accept_json=True)
        message = ok(response)
        assert message == {
            "user_name": "Vi",
            "views": expected,
            "served_by": response.headers["X-Served-By"],
        }


@pytest.mark.gen_test
async def test_views_are_per_session(browser, new_browser, unique_email):
    user = await signed_in(browser, unique_email)
    other = new_browser()
    ok(await other.login(user["email"], PASSWORD))
    for _ in range(3):
        ok(await browser.get("/home", accept_json=True))
    assert ok(await other.get("/home", accept_json=True))["views"] == 1
    assert ok(await browser.get("/home", accept_json=True))["views"] == 4


@pytest.mark.gen_test
async def test_views_are_stored_in_the_session_hash(
    browser, unique_email, app_config, redis_prefix, sync_redis
):
    await signed_in(browser, unique_email)
    for _ in range(3):
        ok(await browser.get("/home", accept_json=True))
    key = session_key(app_config, redis_prefix, browser.cookies["sid"])
    assert sync_redis.type(key) == "hash"
    assert sync_redis.hget(key, "views") == "3"


@pytest.mark.gen_test
async def test_whoami(browser, unique_email):
    user = await signed_in(browser, unique_email, "Wu")
    response = await browser.get("/whoami", accept_json=True)
    message = ok(response)
    assert message["user_id"] == user["user_id"]
    assert message["user_name"] == "Wu"
    assert message["served_by"] == response.headers["X-Served-By"]


@pytest.mark.gen_test
async def test_idle_session_ends(browser, unique_email, clock, app_config):
    await signed_in(browser, unique_email)
    clock.advance(app_config.session.idle_timeout - 5)
    ok(await browser.get("/home", accept_json=True))
    clock.advance(app_config.session.idle_timeout + 1)
    assert failed(await browser.get("/home", accept_json=True), 401) == SIGN_IN


# ----- logout ----------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_logout_ends_the_session(
    browser, new_browser, unique_email, app_config, redis_prefix, sync_redis
):
    await signed_in(browser, unique_email)
    cookie = browser.cookies["sid"]
    key = session_key(app_config, redis_prefix, cookie)
    assert sync_redis.exists(key) == 1
    response = await browser.post("/logout", accept_json=True)
    assert ok(response) == "Signed out."
    morsel = sid_morsel(response)
    assert morsel.value == ""
    assert morsel["max-age"] == "0" or (
        parsedate_to_datetime(morsel["expires"]).timestamp() < datetime.now().timestamp()
    )
    assert sync_redis.exists(key) == 0
    assert failed(await browser.get("/home", accept_json=True), 401) == SIGN_IN
    replay = new_browser()
    replay.cookies["sid"] = cookie
    assert failed(await replay.get("/home", accept_json=True), 401) == SIGN_IN
    assert (
        failed(await replay.post("/addStatus", {"status": "x"}, accept_json=True), 401) == SIGN_IN
    )
    assert sync_redis.exists(key) == 0


@pytest.mark.gen_test
async def test_logout_of_one_session_keeps_the_others(browser, new_browser, unique_email):
    user = await signed_in(browser, unique_email)
    other = new_browser()
    ok(await other.login(user["email"], PASSWORD))
    ok(await browser.post("/logout", accept_json=True))
    assert ok(await other.get("/whoami", accept_json=True))["user_id"] == user["user_id"]


@pytest.mark.gen_test
async def test_logout_when_signed_out(browser):
    assert ok(await browser.post("/logout", accept_json=True)) == "Signed out."


# ----- health -------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_healthz(browser):
    response = await browser.get("/healthz")
    message = ok(response)
    assert message == {"redis": "ok", "mysql": "ok", "served_by": response.headers["X-Served-By"]}


# ----- content negotiation ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept", "wants_json"),
    [
        ("application/json", True),
        ("text/html,application/json;q=0.9", False),
        ("application/json,text/html;q=0.5", True),
        ("application/json;q=0.5,text/html;q=0.4", True),
        ("text/html", False),
        ("*/*", False),
        ("application/*", True),
        ("text/html;q=0.1, */*;q=0.8", True),
        ("application/json, */*", False),
        ("application/json;q=0", False),
        (None, False),
    ],
)
@pytest.mark.gen_test
async def test_content_negotiation(browser, unique_email, accept, wants_json):
    headers = {} if accept is None else {"Accept": accept}
    fetch_kwargs: dict[str, Any] = {"headers": headers}
    if accept is None:
        # No Accept header at all.
        response = await browser.get("/", headers={"Accept": None})
        missing = await browser.get("/nope", headers={"Accept": None})
    else:
        response = await browser.get("/", **fetch_kwargs)
        missing = await browser.get("/nope", **fetch_kwargs)
    assert response.code == 200
    assert missing.code == 404
    if wants_json:
        assert ok(response) == {"signed_in": False}
        assert failed(missing, 404) == "Not found."
    else:
        assert response.headers["Content-Type"].startswith("text/html")
        assert b'action="/register"' in response.body
        assert missing.headers["Content-Type"].startswith("text/html")
        assert b"<h1>Page not found</h1>" in missing.body


@pytest.mark.parametrize(
    ("accept", "code"),
    [
        ("application/json", 401),
        ("text/html,application/json;q=0.9", 302),
        ("application/json,text/html;q=0.5", 401),
    ],
)
@pytest.mark.gen_test
async def test_negotiation_of_signed_out_home(browser, accept, code):
    response = await browser.get("/home", headers={"Accept": accept})
    assert response.code == code
    if code == 401:
        assert failed(response, 401) == SIGN_IN
    else:
        assert response.headers["Location"] == "/?next=%2Fhome"


@pytest.mark.gen_test
async def test_errors_are_json_for_json_clients(browser, unique_email):
    response = await browser.register("", unique_email("e"), PASSWORD)
    assert failed(response, 400) == "Name is required."
    response = await browser.post("/addStatus", {"status": "x"}, accept_json=True, xsrf=False)
    assert failed(response, 403).startswith("Invalid or missing XSRF token.")
    assert failed(await browser.get("/nope", accept_json=True), 404) == "Not found."
    assert failed(await browser.get("/logout", accept_json=True), 405) == "Method not allowed."


# ----- headers on every dynamic response ----------------------------------------------------------


@pytest.mark.gen_test
async def test_every_dynamic_response_has_the_headers(browser, new_browser, unique_email):
    anon = new_browser()
    responses = {
        "start html": await anon.get("/"),
        "start json": await anon.get("/", accept_json=True),
        "home signed out": await anon.get("/home"),
        "home 401": await anon.get("/home", accept_json=True),
        "no xsrf": await anon.post("/addStatus", {"status": "x"}, xsrf=False),
        "not found": await anon.get("/nope", accept_json=True),
        "method": await anon.get("/logout"),
        "too large": await anon.post("/register", body="a=" + "b" * 70_000, accept_json=True),
        "bad input": await anon.register("", unique_email("h"), PASSWORD),
        "healthz": await anon.get("/healthz"),
        "register": await browser.register("Ann", unique_email("h"), PASSWORD),
    }
    responses |= {
        "home": await browser.get("/home", accept_json=True),
        "home html": await browser.get("/home"),
        "add": await browser.post("/addStatus", {"status": "x"}, accept_json=True),
        "add html": await browser.post("/addStatus", {"status": "x"}),
        "fetch": await browser.get("/fetchStatus", accept_json=True),
        "whoami": await browser.get("/whoami", accept_json=True),
        "logout": await browser.post("/logout", accept_json=True),
    }
    codes = {name: r.code for name, r in responses.items()}
    assert codes == {
        "start html": 200,
        "start json": 200,
        "home signed out": 302,
        "home 401": 401,
        "no xsrf": 403,
        "not found": 404,
        "method": 405,
        "too large": 413,
        "bad input": 400,
        "healthz": 200,
        "register": 201,
        "home": 200,
        "home html": 200,
        "add": 201,
        "add html": 303,
        "fetch": 200,
        "whoami": 200,
        "logout": 200,
    }
    for name, response in responses.items():
        served = response.headers.get("X-Served-By", "")
        match = re.fullmatch(r"(.+):(\d+)", served)
        assert match is not None, (name, served)
        assert int(match.group(2)) == os.getpid(), name
        assert response.headers.get("Cache-Control") == "no-store", name
        vary = [v.strip().lower() for v in response.headers.get("Vary", "").split(",")]
        assert "cookie" in vary, (name, response.headers.get("Vary"))


# ----- concurrency within one session ---------------------------------------------------------


@pytest.mark.gen_test(timeout=15)
async def test_concurrent_home_visits_count_exactly(browser, unique_email):
    await signed_in(browser, unique_email)
    responses = await asyncio.gather(*(browser.get("/home", accept_json=True) for _ in range(30)))
    views = sorted(ok(r)["views"] for r in responses)
    assert views == list(range(1, 31))
    assert ok(await browser.get("/home", accept_json=True))["views"] == 31


@pytest.mark.gen_test(timeout=15)
async def test_logout_during_visits_leaves_no_session_behind(
    browser, new_browser, unique_email, app_config, redis_prefix, sync_redis
):
    await signed_in(browser, unique_email)
    cookie = browser.cookies["sid"]
    key = session_key(app_config, redis_prefix, cookie)
    visitor = new_browser()
    visitor.cookies = dict(browser.cookies)
    results = await asyncio.gather(
        *(visitor.get("/home", accept_json=True) for _ in range(10)),
        browser.post("/logout", accept_json=True),
        *(visitor.get("/home", accept_json=True) for _ in range(10)),
    )
    assert ok(results[10]) == "Signed out."
    assert all(r.code in (200, 401) for r in results[:10] + results[11:])
    assert sync_redis.exists(key) == 0
    replay = new_browser()
    replay.cookies["sid"] = cookie
    assert failed(await replay.get("/home", accept_json=True), 401) == SIGN_IN
    assert sync_redis.exists(key) == 0
