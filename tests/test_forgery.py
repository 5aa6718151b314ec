"""Cross-site request forgery and cookie flags (issue 8, items 7 and 8).

The XSRF token is refused from the URL, a foreign ``Origin``/``Referer`` is refused,
the token is rotated at sign-in and sign-out, the ``_xsrf`` cookie is Secure over
HTTPS, and ``--secure_cookies`` makes every cookie Secure with the ``__Host-`` prefix.
The server here trusts ``X-Forwarded-Proto`` (``--xheaders``), as behind nginx.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from http.cookies import SimpleCookie
from typing import Any

import pytest
import tornado.httpserver

from tests.support.browser import Browser, body_json

PASSWORD = "correct horse"
HTTPS = {"X-Forwarded-Proto": "https"}


@pytest.fixture
def http_server(io_loop, _unused_port, app) -> Iterator[tornado.httpserver.HTTPServer]:
    """The application behind a proxy that reports the scheme (``--xheaders``)."""
    server = tornado.httpserver.HTTPServer(app, xheaders=True)
    server.add_socket(_unused_port[0])
    yield server
    server.stop()


@pytest.fixture
def secure_cookies() -> bool:
    return False


@pytest.fixture
def app_config(app_config, secure_cookies):  # the suite's, with or without the option
    return dataclasses.replace(app_config, secure_cookies=secure_cookies)


def set_cookies(response: Any) -> dict[str, Any]:
    jar: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("Set-Cookie"):
        jar.load(header)
    return dict(jar)


async def signed_in(browser: Browser, email: str) -> None:
    assert (await browser.register("Ann", email)).code == 201


# ----- 7. the token ----------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_token_in_the_url_is_refused(browser, unique_email):
    await browser.get("/")
    token = browser.cookies["_xsrf"]
    form = "user_email=a%40example.com&user_password=x"
    response = await browser.post(f"/login?_xsrf={token}", body=form, accept_json=True, xsrf=False)
    assert response.code == 403
    assert "not in the URL" in body_json(response)["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/form.html"},
        {"Origin": "https://127.0.0.1"},  # another scheme is another origin
    ],
    ids=["foreign-origin", "null-origin", "foreign-referer", "other-scheme"],
)
@pytest.mark.gen_test
async def test_a_cross_site_request_is_refused_even_with_the_token(browser, unique_email, headers):
    await signed_in(browser, unique_email("origin"))
    response = await browser.post("/addStatus", {"status": "forged"}, accept_json=True,
                                  headers=headers)  # fmt: skip
    assert response.code == 403, response.body
    assert "did not come from this site" in body_json(response)["message"]


@pytest.mark.gen_test
async def test_same_origin_and_no_origin_pass(browser, base_url, unique_email):
    await signed_in(browser, unique_email("same"))
    for headers in (
        {"Origin": base_url},
        {"Referer": base_url + "/home"},
        {},  # a script: the token alone
    ):
        response = await browser.post("/addStatus", {"status": "mine"}, accept_json=True,
                                      headers=headers)  # fmt: skip
        assert response.code == 201, (headers, response.body)


@pytest.mark.gen_test
async def test_the_token_rotates_at_sign_in_and_sign_out(browser, unique_email):
    await browser.get("/")
    planted = browser.cookies["_xsrf"]  # e.g. set by an attacker before sign-in
    await signed_in(browser, unique_email("rotate"))
    after_sign_in = browser.cookies["_xsrf"]
    assert after_sign_in != planted
    forged = await browser.post("/addStatus", {"status": "forged"}, accept_json=True,
                                headers={"X-XSRFToken": planted})  # fmt: skip
    assert forged.code == 403
    assert (await browser.post("/addStatus", {"status": "mine"}, accept_json=True)).code == 201
    assert (await browser.post("/logout", accept_json=True)).code == 200
    assert browser.cookies["_xsrf"] not in (planted, after_sign_in)


@pytest.mark.gen_test
async def test_the_xsrf_cookie_is_secure_over_https_only(new_browser):
    plain = set_cookies(await new_browser().get("/"))
    assert plain["_xsrf"]["secure"] == ""
    secure = set_cookies(await new_browser().get("/", headers=HTTPS))
    assert secure["_xsrf"]["secure"] is True
    assert secure["_xsrf"]["httponly"] is True and secure["_xsrf"]["samesite"] == "Lax"


# ----- 8. --secure_cookies ---------------------------------------------------------


@pytest.mark.parametrize("secure_cookies", [True])
@pytest.mark.gen_test
async def test_secure_cookies_are_secure_and_host_prefixed_over_plain_http(
    secure_cookies, browser, unique_email
):
    """Behind a TLS proxy the app cannot see: the request looks like plain HTTP."""
    first = set_cookies(await browser.get("/"))
    xsrf = first["__Host-_xsrf"]
    assert xsrf["secure"] is True and xsrf["path"] == "/" and not xsrf["domain"]
    assert "_xsrf" not in first
    token = browser.cookies["__Host-_xsrf"]
    response = await browser.post(
        "/register",
        {"user_name": "Ann", "user_email": unique_email("host"), "user_password": PASSWORD},
        accept_json=True,
        xsrf=False,
        headers={"X-XSRFToken": token},
    )
    assert response.code == 201, response.body
    sid = set_cookies(response)["__Host-sid"]
    assert sid["secure"] is True and sid["path"] == "/" and not sid["domain"]
    assert sid["httponly"] is True
    assert "sid" not in browser.cookies
    assert (await browser.get("/whoami", accept_json=True)).code == 200
