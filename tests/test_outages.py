"""A backing service down: clear 503 answers with ``Retry-After``, fast, never a 500.

Each class builds the application against a Redis or MariaDB that does not answer: a
closed port (connection refused), or for Redis also a socket that accepts connections
and never replies (so the client's own timeouts must bound the wait).
"""

from __future__ import annotations

import dataclasses
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tornado.web import create_signed_value

from sessions import Session
from sessions.ids import new_sid
from tests.support.browser import Browser, body_json

PASSWORD = "correct horse"
UNAVAILABLE = "The service is temporarily unavailable. Please try again shortly."
CLOSED_REDIS = "redis://127.0.0.1:1/0"
CLOSED_MYSQL = "mysql://root@127.0.0.1:1/appdb_outage"
BOUND = 2.0  # seconds: the spec's bound for answering while Redis is unreachable


# ----- helpers --------------------------------------------------------------------


def signed_cookie(app_config: Any, locator: str) -> str:
    return create_signed_value(
        dict(app_config.cookie_secrets), "sid", locator, key_version=app_config.key_version
    ).decode()


def give_session_cookie(browser: Browser, app_config: Any, user_id: int = 424242) -> None:
    """A well-signed cookie for a session, as a visitor signed in before the outage has."""
    browser.cookies["sid"] = signed_cookie(app_config, f"{user_id}:{new_sid()}")


async def timed(call: Any) -> tuple[Any, float]:
    start = time.monotonic()
    response = await call
    return response, time.monotonic() - start


def unavailable_json(response: Any) -> None:
    assert response.code == 503, (response.code, response.body)
    assert body_json(response) == {"error": True, "message": UNAVAILABLE}
    assert_retry_after(response)


def unavailable_page(response: Any) -> None:
    assert response.code == 503, (response.code, response.body)
    assert response.headers["Content-Type"].startswith("text/html")
    text = response.body.decode()
    assert UNAVAILABLE in text
    assert "Error 503" in text
    assert "Traceback" not in text
    assert_retry_after(response)


def assert_retry_after(response: Any) -> None:
    value = response.headers.get("Retry-After")
    assert value is not None and value.isdigit() and int(value) > 0, response.headers
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers.get("X-Served-By")


def register_form(email: str) -> dict[str, str]:
    return {"user_name": "Ann", "user_email": email, "user_password": PASSWORD}


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP port that accepts connections (into the backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield int(sock.getsockname()[1])


# ----- Redis refused --------------------------------------------------------------------


class TestRedisDown:
    @pytest.fixture
    def app_config(self, app_config):
        return dataclasses.replace(app_config, redis_url=CLOSED_REDIS)

    @pytest.mark.gen_test
    async def test_home_is_503_page_quickly(self, browser, app_config):
        give_session_cookie(browser, app_config)
        response, elapsed = await timed(browser.get("/home"))
        unavailable_page(response)
        assert elapsed < BOUND

    @pytest.mark.gen_test
    async def test_home_is_503_json_quickly(self, browser, app_config):
        give_session_cookie(browser, app_config)
        response, elapsed = await timed(browser.get("/home", accept_json=True))
        unavailable_json(response)
        assert elapsed < BOUND

    @pytest.mark.parametrize("path", ["/whoami", "/fetchStatus"])
    @pytest.mark.gen_test
    async def test_session_routes_are_503(self, browser, app_config, path):
        give_session_cookie(browser, app_config)
        response, elapsed = await timed(browser.get(path, accept_json=True))
        unavailable_json(response)
        assert elapsed < BOUND

    @pytest.mark.gen_test
    async def test_add_status_is_503(self, browser, app_config):
        await browser.get("/")
        give_session_cookie(browser, app_config)
        response, elapsed = await timed(
            browser.post("/addStatus", {"status": "hello"}, accept_json=True)
        )
        unavailable_json(response)
        assert elapsed < BOUND
        page = await browser.post("/addStatus", {"status": "hello"})
        unavailable_page(page)

    @pytest.mark.gen_test
    async def test_login_is_503(self, browser, unique_email):
        response, elapsed = await timed(browser.login(unique_email("down"), PASSWORD))
        unavailable_json(response)
        assert elapsed < BOUND
        assert "sid" not in browser.cookies
        page = await browser.login(unique_email("down"), PASSWORD, accept_json=False)
        unavailable_page(page)

    @pytest.mark.gen_test
    async def test_logout_expires_the_cookie_and_says_the_end_is_retried(self, browser, app_config):
        """Item 6: the user is signed out of this browser whatever Redis does (the
        retried server-side end is tested in tests/test_redis_durability.py)."""
        await browser.get("/")
        give_session_cookie(browser, app_config)
        response, elapsed = await timed(browser.post("/logout", accept_json=True))
        assert response.code == 202, response.body
        assert "will keep trying" in json.loads(response.body)["message"]
        assert "sid" not in browser.cookies
        assert elapsed < BOUND
        give_session_cookie(browser, app_config)
        page = await browser.post("/logout")
        assert page.code == 202 and b"You are signed out on this device." in page.body
        assert "sid" not in browser.cookies

    @pytest.mark.gen_test
    async def test_register_is_503_and_creates_no_account(self, browser, new_browser, unique_email):
        """A 503 says "try again shortly": trying again must not then find the e-mail
        taken by an account the failed attempt left behind."""
        email = unique_email("half")
        response = await browser.register("Ann", email, PASSWORD)
        unavailable_json(response)
        assert "sid" not in browser.cookies
        again = await new_browser().register("Ann", email, PASSWORD)
        unavailable_json(again)

    @pytest.mark.gen_test
    async def test_start_page_renders_signed_out(self, browser, app_config):
        response, elapsed = await timed(browser.get("/"))
        assert response.code == 200
        assert elapsed < BOUND
        text = response.body.decode()
        assert 'action="/login"' in text and 'action="/register"' in text
        assert "_xsrf" in browser.cookies

    @pytest.mark.gen_test
    async def test_start_page_with_a_session_cookie_renders_signed_out(self, browser, app_config):
        give_session_cookie(browser, app_config)
        response, elapsed = await timed(browser.get("/"))
        assert response.code == 200
        assert elapsed < BOUND
        assert 'action="/register"' in response.body.decode()
        response = await browser.get("/", accept_json=True)
        assert response.code == 200
        assert body_json(response) == {"error": False, "message": {"signed_in": False}}

    @pytest.mark.gen_test
    async def test_healthz_names_redis(self, browser):
        response, elapsed = await timed(browser.get("/healthz"))
        assert response.code == 503
        message = body_json(response)["message"]
        assert (message["redis"], message["mysql"]) == ("down", "ok")
        assert body_json(response)["error"] is True
        assert_retry_after(response)
        assert elapsed < BOUND


# ----- Redis silent (accepts, never answers) ---------------------------------------------------


class TestRedisSilent:
    @pytest.fixture
    def app_config(self, app_config, silent_port):
        return dataclasses.replace(app_config, redis_url=f"redis://127.0.0.1:{silent_port}/0")

    @pytest.mark.gen_test(timeout=10)
    async def test_home_is_503_within_the_bound(self, browser, app_config):
        give_session_cookie(browser, app_config)
        response, elapsed = await timed(browser.get("/home", accept_json=True))
        unavailable_json(response)
        assert elapsed < BOUND
        response, elapsed = await timed(browser.get("/home"))
        unavailable_page(response)
        assert elapsed < BOUND

    @pytest.mark.gen_test(timeout=10)
    async def test_start_page_renders_within_the_bound(self, browser, app_config):
        give_session_cookie(browser, app_config)
        response, elapsed = await timed(browser.get("/"))
        assert response.code == 200
        assert 'action="/login"' in response.body.decode()
        assert elapsed < BOUND


# ----- MariaDB refused --------------------------------------------------------------------------


class TestMariaDBDown:
    @pytest.fixture
    def app_config(self, app_config):
        return dataclasses.replace(app_config, mysql_url=CLOSED_MYSQL)

    @staticmethod
    async def sign_in(browser: Browser, resources: Any, app_config: Any) -> None:
        """A session stored in (the working) Redis, as if made before the outage."""
        session = Session()
        session.set("user_name", "Ann")
        await resources.sessions.create(session, user_id=515151)
        assert session.locator is not None
        await browser.get("/")
        browser.cookies["sid"] = signed_cookie(app_config, session.locator.encode())

    @pytest.mark.gen_test
    async def test_register_is_503(self, browser, unique_email):
        response = await browser.register("Ann", unique_email("dbdown"), PASSWORD)
        unavailable_json(response)
        assert "sid" not in browser.cookies
        page = await browser.post("/register", register_form(unique_email("dbdown")))
        unavailable_page(page)

    @pytest.mark.gen_test
    async def test_login_is_503(self, browser, unique_email):
        response = await browser.login(unique_email("dbdown"), PASSWORD)
        unavailable_json(response)
        assert "sid" not in browser.cookies

    @pytest.mark.gen_test
    async def test_fetch_status_is_503(self, browser, resources, app_config):
        await self.sign_in(browser, resources, app_config)
        assert (await browser.get("/whoami", accept_json=True)).code == 200
        response = await browser.get("/fetchStatus", accept_json=True)
        unavailable_json(response)

    @pytest.mark.gen_test
    async def test_add_status_is_503(self, browser, resources, app_config):
        await self.sign_in(browser, resources, app_config)
        response = await browser.post("/addStatus", {"status": "hello"}, accept_json=True)
        unavailable_json(response)

    @pytest.mark.gen_test
    async def test_home_page_is_503_but_session_json_works(self, browser, resources, app_config):
        await self.sign_in(browser, resources, app_config)
        unavailable_page(await browser.get("/home"))
        response = await browser.get("/home", accept_json=True)
        assert response.code == 200, response.body
        assert body_json(response)["message"]["user_name"] == "Ann"

    @pytest.mark.gen_test
    async def test_start_page_still_renders(self, browser):
        response = await browser.get("/")
        assert response.code == 200
        assert 'action="/register"' in response.body.decode()

    @pytest.mark.gen_test
    async def test_healthz_names_mysql(self, browser):
        response = await browser.get("/healthz")
        assert response.code == 503
        data = body_json(response)
        assert data["error"] is True
        assert (data["message"]["redis"], data["message"]["mysql"]) == ("ok", "down")
        assert_retry_after(response)
