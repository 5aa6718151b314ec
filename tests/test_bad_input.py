"""Every kind of bad input, over HTTP: the answer is always a clear 4xx, never a 500.

Covered: missing, empty and over-long fields, invalid e-mail addresses, empty and
over-long statuses, bad paging parameters, missing or wrong XSRF tokens, forged session
cookies, over-large bodies, bad JSON bodies, invalid UTF-8, unknown paths and methods.
Password rules (length in characters and bytes) are in ``test_accounts.py``.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
from http.cookies import SimpleCookie
from typing import Any

import pytest
from tornado.web import create_signed_value, decode_signed_value

from tests.support.browser import Browser, body_json

PASSWORD = "correct horse"
XSRF_MESSAGE = (
    "Invalid or missing XSRF token. Reload the page and try again "
    "(API clients: send the _xsrf cookie's value as X-XSRFToken)."
)
UTF8_MESSAGE = "Form fields must be valid UTF-8 text."
TOO_LARGE_MESSAGE = "Request body too large (the limit is 64 KB)."
BAD_JSON_MESSAGE = "Request body is not valid JSON."
NOT_OBJECT_MESSAGE = "Request body must be a JSON object whose values are strings."


# ----- helpers --------------------------------------------------------------------


def post_json(browser: Browser, path: str, data: Any, **kwargs: Any) -> Any:
    """POST ``data`` as a JSON body (``data`` may be raw text or bytes, sent as is)."""
    body = data if isinstance(data, str | bytes) else json.dumps(data)
    return browser.post(
        path, body=body, headers={"Content-Type": "application/json"}, accept_json=True, **kwargs
    )


def error_message(response: Any, code: int) -> str:
    """Assert a JSON error envelope with status ``code`` and return its message."""
    assert response.code == code, (response.code, response.body)
    data = body_json(response)
    assert data["error"] is True, data
    assert isinstance(data["message"], str) and data["message"], data
    return str(data["message"])


def html_error(response: Any, code: int) -> str:
    """Assert an HTML page with status ``code`` and return its decoded body."""
    assert response.code == code, (response.code, response.body)
    assert response.headers["Content-Type"].startswith("text/html"), response.headers
    text = response.body.decode()
    assert "Traceback" not in text
    return text


async def signed_in(browser: Browser, unique_email: Any, name: str = "Ann") -> str:
    email = unique_email(name.lower())
    response = await browser.register(name, email, PASSWORD)
    assert response.code == 201, response.body
    return email


async def fetch_statuses(browser: Browser) -> list[dict[str, Any]]:
    response = await browser.get("/fetchStatus", accept_json=True)
    assert response.code == 200, response.body
    return list(body_json(response)["message"])


def set_cookies(response: Any, name: str) -> list[Any]:
    """The morsels of every ``Set-Cookie`` header of ``response`` for cookie ``name``."""
    found = []
    for header in response.headers.get_list("Set-Cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if name in jar:
            found.append(jar[name])
    return found


def redis_keys_mentioning(sync_redis: Any, prefix: str, text: str) -> list[str]:
    return [key for key in sync_redis.scan_iter(match=prefix + "*", count=1000) if text in key]


def register_form(name: str, email: str, password: str = PASSWORD) -> dict[str, str]:
    return {"user_name": name, "user_email": email, "user_password": password}


# ----- registration fields ---------------------------------------------------------


@pytest.mark.parametrize(
    ("missing", "message"),
    [
        ("user_name", "Name is required."),
        ("user_email", "E-mail is required."),
        ("user_password", "Password is required."),
    ],
)
@pytest.mark.gen_test
async def test_register_missing_field_is_400(browser, unique_email, missing, message):
    form = register_form("Ann", unique_email("missing"))
    del form[missing]
    response = await browser.post("/register", form, accept_json=True)
    assert error_message(response, 400) == message
    assert "sid" not in browser.cookies


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ("user_name", "Name is required."),
        ("user_email", "E-mail is required."),
        ("user_password", "Password is required."),
    ],
)
@pytest.mark.gen_test
async def test_register_empty_field_is_400(browser, unique_email, field, message):
    form = register_form("Ann", unique_email("empty"))
    form[field] = ""
    response = await browser.post("/register", form, accept_json=True)
    assert error_message(response, 400) == message


@pytest.mark.parametrize("name", ["   ", "\t\n"])
@pytest.mark.gen_test
async def test_register_whitespace_only_name_is_400(browser, unique_email, name):
    response = await browser.post(
        "/register", register_form(name, unique_email("blank")), accept_json=True
    )
    assert error_message(response, 400) == "Name is required."


@pytest.mark.gen_test
async def test_register_name_over_100_characters_is_400(browser, unique_email):
    response = await browser.register("n" * 101, unique_email("long"))
    assert error_message(response, 400) == "Name must be at most 100 characters."
    assert "sid" not in browser.cookies


@pytest.mark.gen_test
async def test_register_name_of_100_characters_is_accepted(browser, unique_email):
    name = "é" * 100
    response = await browser.register(name, unique_email("hundred"))
    assert response.code == 201, response.body
    assert body_json(response)["message"]["user_name"] == name
    whoami = await browser.get("/whoami", accept_json=True)
    assert body_json(whoami)["message"]["user_name"] == name


@pytest.mark.gen_test
async def test_register_name_with_control_character_is_400(browser, unique_email):
    """Sent in a JSON body: Tornado itself drops control characters from form fields."""
    response = await post_json(
        browser,
        "/register",
        {"user_name": "Ann\x07", "user_email": unique_email("bell"), "user_password": PASSWORD},
    )
    assert error_message(response, 400) == "Name must not contain control characters."


@pytest.mark.parametrize(
    "email",
    [
        "plainaddress",
        "no-dot@localhost",
        "@example.com",
        "two@@example.com",
        "a@b@example.com",
        "spa ce@example.com",
        "tab\t@example.com",
        "ctrl\x01@example.com",
        "x" * 65 + "@example.com",
    ],
)
@pytest.mark.gen_test
async def test_register_invalid_email_is_400(browser, email):
    response = await browser.register("Ann", email)
    assert error_message(response, 400) == "Please enter a valid e-mail address."


@pytest.mark.gen_test
async def test_register_email_over_254_characters_is_400(browser):
    email = "a" * 64 + "@" + "b" * 186 + ".com"
    assert len(email) == 255
    response = await browser.register("Ann", email)
    assert error_message(response, 400) == "E-mail must be at most 254 characters."


@pytest.mark.gen_test
async def test_register_email_of_254_characters_is_accepted(browser):
    # A local part of 64 and DNS labels of at most 63 characters: the longest valid.
    email = secrets.token_hex(32) + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
    assert len(email) == 254
    response = await browser.register("Ann", email)
    assert response.code == 201, response.body
    again = await browser.login(email, PASSWORD)
    assert again.code == 200, again.body


@pytest.mark.gen_test
async def test_login_missing_fields_are_400(browser, unique_email):
    email = unique_email("login")
    response = await browser.post("/login", {"user_password": PASSWORD}, accept_json=True)
    assert error_message(response, 400) == "E-mail is required."
    response = await browser.post("/login", {"user_email": email}, accept_json=True)
    assert error_message(response, 400) == "Password is required."
    response = await browser.post(
        "/login", {"user_email": "", "user_password": ""}, accept_json=True
    )
    assert error_message(response, 400) == "E-mail is required."


@pytest.mark.gen_test
async def test_login_invalid_email_is_400(browser):
    response = await browser.login("not-an-address", PASSWORD)
    assert error_message(response, 400) == "Please enter a valid e-mail address."


# ----- statuses --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message"),
    [
        ("", "Status must not be empty."),
        ("    ", "Status must not be empty."),
        (" \t\r\n ", "Status must not be empty."),
        ("x" * 1001, "Status must be at most 1000 characters."),
        ("bell \x07", "Status must not contain control characters."),
        ("\x00", "Status must not contain control characters."),
    ],
)
@pytest.mark.gen_test
async def test_add_status_bad_text_is_400_and_stores_nothing(
    browser, unique_email, status, message
):
    """As a JSON body: Tornado drops control characters from form fields before we see them."""
    await signed_in(browser, unique_email)
    response = await post_json(browser, "/addStatus", {"status": status})
    assert error_message(response, 400) == message
    assert await fetch_statuses(browser) == []


@pytest.mark.gen_test
async def test_add_status_without_field_is_400(browser, unique_email):
    await signed_in(browser, unique_email)
    response = await browser.post("/addStatus", {}, accept_json=True)
    assert error_message(response, 400) == "Status must not be empty."


@pytest.mark.gen_test
async def test_add_status_of_exactly_1000_characters_is_accepted(browser, unique_email):
    await signed_in(browser, unique_email)
    text = "ü" * 999 + "!"
    response = await browser.post("/addStatus", {"status": text}, accept_json=True)
    assert response.code == 201, response.body
    assert body_json(response)["message"]["user_status"] == text
    assert [s["user_status"] for s in await fetch_statuses(browser)] == [text]


@pytest.mark.gen_test
async def test_add_status_of_1000_astral_characters_is_stored_whole(browser, unique_email):
    await signed_in(browser, unique_email)
    text = "\U0001f600" * 1000
    response = await browser.post("/addStatus", {"status": text}, accept_json=True)
    assert response.code == 201, response.body
    assert [s["user_status"] for s in await fetch_statuses(browser)] == [text]


@pytest.mark.gen_test
async def test_add_status_is_trimmed_before_the_length_check(browser, unique_email):
    await signed_in(browser, unique_email)
    text = "y" * 1000
    response = await browser.post("/addStatus", {"status": f"  {text}\n"}, accept_json=True)
    assert response.code == 201, response.body
    assert [s["user_status"] for s in await fetch_statuses(browser)] == [text]


# ----- /fetchStatus parameters -------------------------------------------------------


@pytest.mark.parametrize("name", ["limit", "before"])
@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "%2B3", "0x10", "1e3", "3%20000"])
@pytest.mark.gen_test
async def test_fetch_status_bad_number_is_400(browser, unique_email, name, value):
    await signed_in(browser, unique_email)
    response = await browser.get(f"/fetchStatus?{name}={value}", accept_json=True)
    message = error_message(response, 400)
    assert message.startswith(f"{name} must be a whole number from 1 to ")


@pytest.mark.gen_test
async def test_fetch_status_limit_over_1000_is_400(browser, unique_email):
    await signed_in(browser, unique_email)
    response = await browser.get("/fetchStatus?limit=1001", accept_json=True)
    assert error_message(response, 400) == "limit must be a whole number from 1 to 1000."
    response = await browser.get("/fetchStatus?limit=1000", accept_json=True)
    assert response.code == 200, response.body


@pytest.mark.gen_test
async def test_fetch_status_before_beyond_range_is_400(browser, unique_email):
    await signed_in(browser, unique_email)
    response = await browser.get(f"/fetchStatus?before={2**63 + 1}", accept_json=True)
    assert error_message(response, 400).startswith("before must be a whole number")
    response = await browser.get("/fetchStatus?before=" + "9" * 40, accept_json=True)
    assert error_message(response, 400).startswith("before must be a whole number")


@pytest.mark.parametrize("name", ["limit", "before"])
@pytest.mark.parametrize("value", ["%C2%B2", "%E2%91%A0", "3%C2%B2"])  # "²", "①", "3²"
@pytest.mark.gen_test
async def test_fetch_status_non_ascii_digits_are_400(browser, unique_email, name, value):
    """Characters ``str.isdigit`` accepts but ``int()`` does not: superscripts, circled."""
    await signed_in(browser, unique_email)
    response = await browser.get(f"/fetchStatus?{name}={value}", accept_json=True)
    assert error_message(response, 400).startswith(f"{name} must be a whole number")


@pytest.mark.gen_test
async def test_fetch_status_parameter_with_invalid_utf8_is_400(browser, unique_email):
    await signed_in(browser, unique_email)
    response = await browser.get("/fetchStatus?limit=%FF", accept_json=True)
    assert error_message(response, 400) == UTF8_MESSAGE


# ----- XSRF -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/register", "/login", "/addStatus", "/logout"])
@pytest.mark.gen_test
async def test_post_without_xsrf_token_is_403_json(browser, unique_email, path):
    await browser.get("/")  # has the _xsrf cookie, but sends no token
    response = await browser.post(
        path, register_form("Ann", unique_email("x")), accept_json=True, xsrf=False
    )
    assert error_message(response, 403) == XSRF_MESSAGE
    assert "sid" not in browser.cookies


@pytest.mark.gen_test
async def test_post_without_xsrf_token_is_403_page(browser, unique_email):
    await browser.get("/")
    response = await browser.post("/register", register_form("Ann", unique_email("x")), xsrf=False)
    text = html_error(response, 403)
    assert "This form has expired" in text  # a page for people; JSON names the token
    assert "reload the page, and try again" in text
    assert "sid" not in browser.cookies


@pytest.mark.gen_test
async def test_post_without_xsrf_cookie_is_403(browser, new_browser, unique_email):
    """A token in the header but no ``_xsrf`` cookie to compare it with."""
    other = new_browser()
    await other.get("/")
    response = await browser.post(
        "/register",
        register_form("Ann", unique_email("x")),
        accept_json=True,
        xsrf=False,
        headers={"X-XSRFToken": other.cookies["_xsrf"]},
    )
    assert error_message(response, 403) == XSRF_MESSAGE


@pytest.mark.parametrize(
    "token", ["wrong", "2|00000000|" + "0" * 32 + "|1", "", "2|zz|zz|zz", "\u00e9" * 8]
)
@pytest.mark.gen_test
async def test_post_with_wrong_xsrf_token_is_403(browser, unique_email, token):
    await browser.get("/")
    response = await browser.post(
        "/register",
        register_form("Ann", unique_email("x")),
        accept_json=True,
        xsrf=False,
        headers={"X-XSRFToken": token},
    )
    assert error_message(response, 403) == XSRF_MESSAGE
    assert "sid" not in browser.cookies


@pytest.mark.gen_test
async def test_xsrf_token_of_another_browser_is_403(browser, new_browser, unique_email):
    other = new_browser()
    await other.get("/")
    await browser.get("/")
    assert browser.cookies["_xsrf"] != other.cookies["_xsrf"]
    response = await browser.post(
        "/register",
        register_form("Ann", unique_email("x")),
        accept_json=True,
        xsrf=False,
        headers={"X-XSRFToken": other.cookies["_xsrf"]},
    )
    assert error_message(response, 403) == XSRF_MESSAGE


@pytest.mark.gen_test
async def test_xsrf_token_as_form_field_is_accepted(browser, unique_email):
    await browser.get("/")
    form = register_form("Ann", unique_email("field"))
    form["_xsrf"] = browser.cookies["_xsrf"]
    response = await browser.post("/register", form, accept_json=True, xsrf=False)
    assert response.code == 201, response.body
    home = await browser.get("/home", accept_json=True)
    assert home.code == 200


@pytest.mark.gen_test
async def test_xsrf_token_from_the_page_form_is_accepted(browser, unique_email):
    page = await browser.get("/")
    match = re.search(r'name="_xsrf" value="([^"]+)"', page.body.decode())
    assert match is not None
    form = register_form("Ann", unique_email("page"))
    form["_xsrf"] = match.group(1)
    response = await browser.post("/register", form, xsrf=False)
    assert response.code == 303, response.body
    assert response.headers["Location"] == "/home"


@pytest.mark.gen_test
async def test_wrong_xsrf_on_add_status_stores_nothing(browser, unique_email):
    await signed_in(browser, unique_email)
    response = await browser.post(
        "/addStatus",
        {"status": "hello"},
        accept_json=True,
        xsrf=False,
        headers={"X-XSRFToken": "nope"},
    )
    assert error_message(response, 403) == XSRF_MESSAGE
    assert await fetch_statuses(browser) == []


@pytest.mark.gen_test
async def test_wrong_xsrf_on_logout_keeps_the_session(browser, unique_email):
    await signed_in(browser, unique_email)
    response = await browser.post("/logout", accept_json=True, xsrf=False)
    assert error_message(response, 403) == XSRF_MESSAGE
    home = await browser.get("/home", accept_json=True)
    assert home.code == 200, home.body


# ----- forged session cookies ---------------------------------------------------------


def _secret(app_config: Any) -> dict[int, str]:
    return dict(app_config.cookie_secrets)


def _sign(secret: Any, value: str, **kwargs: Any) -> str:
    return create_signed_value(secret, "sid", value, **kwargs).decode()


async def _assert_refused(
    browser: Browser, sync_redis: Any, redis_prefix: str, sid: str | None
) -> None:
    """The forged ``sid`` cookie gives an anonymous visitor; no key uses the client's id."""
    response = await browser.get("/home", accept_json=True)
    assert error_message(response, 401) == "Please sign in."
    cleared = set_cookies(response, "sid")
    assert cleared, "the bad cookie should be cleared"
    assert cleared[-1].value == ""
    assert "sid" not in browser.cookies
    page = await browser.get("/home")
    assert page.code == 302
    assert page.headers["Location"] == "/?next=%2Fhome"
    if sid is not None:
        assert redis_keys_mentioning(sync_redis, redis_prefix, sid) == []


def _forged_values(app_config: Any, sid: str) -> dict[str, str]:
    real = _secret(app_config)
    other = {1: "another-secret-" + "z" * 40}
    return {
        "random text": secrets.token_urlsafe(40),
        "garbage with symbols": "%%%!!!not-a-cookie",
        "locator, unsigned": f":{sid}",
        "user locator, unsigned": f"1:{sid}",
        "other secret, same key version": _sign(other, f":{sid}", key_version=1),
        "plain other secret": _sign("another-secret-" + "y" * 40, f":{sid}"),
        "unknown key version": _sign({7: real[1]}, f":{sid}", key_version=7),
        "v1 format": _sign(real[1], f":{sid}", version=1),
        "truncated": _sign(real, f":{sid}", key_version=1)[:-10],
    }


@pytest.mark.parametrize(
    "kind",
    [
        "random text",
        "garbage with symbols",
        "locator, unsigned",
        "user locator, unsigned",
        "other secret, same key version",
        "plain other secret",
        "unknown key version",
        "v1 format",
        "truncated",
    ],
)
@pytest.mark.gen_test
async def test_forged_cookie_gives_anonymous_session(
    browser, app_config, sync_redis, redis_prefix, kind
):
    sid = secrets.token_urlsafe(32)
    browser.cookies["sid"] = _forged_values(app_config, sid)[kind]
    await _assert_refused(browser, sync_redis, redis_prefix, sid)


@pytest.mark.parametrize("locator", ["{sid}", "x:{sid}", ":{sid}:", ":short", "1:{sid}\u00e9"])
@pytest.mark.gen_test
async def test_signed_cookie_with_malformed_locator_is_refused(
    browser, app_config, sync_redis, redis_prefix, locator
):
    sid = secrets.token_urlsafe(32)
    browser.cookies["sid"] = _sign(_secret(app_config), locator.format(sid=sid), key_version=1)
    await _assert_refused(browser, sync_redis, redis_prefix, sid)


@pytest.mark.parametrize("user_id", [None, 1, 999999])
@pytest.mark.gen_test
async def test_signed_cookie_with_unknown_session_id_is_refused(
    browser, app_config, sync_redis, redis_prefix, user_id
):
    sid = secrets.token_urlsafe(32)
    locator = f"{'' if user_id is None else user_id}:{sid}"
    browser.cookies["sid"] = _sign(_secret(app_config), locator, key_version=1)
    await _assert_refused(browser, sync_redis, redis_prefix, sid)


@pytest.mark.gen_test
async def test_signed_unknown_id_is_not_adopted_at_registration(
    browser, app_config, sync_redis, redis_prefix, unique_email
):
    sid = secrets.token_urlsafe(32)
    browser.cookies["sid"] = _sign(_secret(app_config), f":{sid}", key_version=1)
    response = await browser.register("Ann", unique_email("fixation"), PASSWORD)
    assert response.code == 201, response.body
    new = decode_signed_value(_secret(app_config), "sid", browser.cookies["sid"], min_version=2)
    assert new is not None
    assert sid not in new.decode()
    assert redis_keys_mentioning(sync_redis, redis_prefix, sid) == []
    morsel = set_cookies(response, "sid")[-1]
    assert morsel["max-age"] == "" and morsel["expires"] == ""
    home = await browser.get("/home", accept_json=True)
    assert home.code == 200, home.body


@pytest.mark.gen_test
async def test_tampered_signature_is_refused_and_real_session_survives(
    browser, new_browser, app_config, sync_redis, redis_prefix, unique_email
):
    await signed_in(browser, unique_email)
    real = browser.cookies["sid"]
    last = real[-1]
    tampered = real[:-1] + ("0" if last != "0" else "1")
    attacker = new_browser()
    attacker.cookies["sid"] = tampered
    await _assert_refused(attacker, sync_redis, redis_prefix, None)
    home = await browser.get("/home", accept_json=True)
    assert home.code == 200, home.body


@pytest.mark.gen_test
async def test_tampered_value_is_refused(
    browser, new_browser, app_config, sync_redis, redis_prefix, unique_email
):
    """Changing the user id inside a real cookie breaks its signature."""
    await signed_in(browser, unique_email)
    real = browser.cookies["sid"]
    locator = decode_signed_value(_secret(app_config), "sid", real, min_version=2)
    assert locator is not None
    user_id, sid = locator.decode().split(":")
    forged = base64.b64encode(f"{int(user_id) + 1}:{sid}".encode()).decode()
    fields = real.split("|")
    assert base64.b64decode(fields[4].split(":", 1)[1]) == locator
    fields[4] = f"{len(forged)}:{forged}"
    tampered = "|".join(fields)
    assert tampered != real
    attacker = new_browser()
    attacker.cookies["sid"] = tampered
    await _assert_refused(attacker, sync_redis, redis_prefix, None)
    assert redis_keys_mentioning(sync_redis, redis_prefix, f"{{u:{int(user_id) + 1}}}:{sid}") == []


@pytest.mark.gen_test
async def test_v1_cookie_of_a_live_session_is_refused(
    browser, new_browser, app_config, sync_redis, redis_prefix, unique_email
):
    await signed_in(browser, unique_email)
    secret = _secret(app_config)
    locator = decode_signed_value(secret, "sid", browser.cookies["sid"], min_version=2)
    assert locator is not None
    attacker = new_browser()
    attacker.cookies["sid"] = _sign(secret[1], locator.decode(), version=1)
    await _assert_refused(attacker, sync_redis, redis_prefix, None)
    home = await browser.get("/home", accept_json=True)
    assert home.code == 200, home.body


@pytest.mark.gen_test
async def test_cookie_signed_too_long_ago_is_refused(
    browser, new_browser, app_config, sync_redis, redis_prefix, unique_email
):
    """A live session's locator in a cookie whose signature is older than the absolute
    timeout (plus allowance) is refused."""
    await signed_in(browser, unique_email)
    secret = _secret(app_config)
    locator = decode_signed_value(secret, "sid", browser.cookies["sid"], min_version=2)
    assert locator is not None
    old = time.time() - app_config.session.absolute_timeout - 3600
    attacker = new_browser()
    attacker.cookies["sid"] = _sign(secret, locator.decode(), key_version=1, clock=lambda: old)
    await _assert_refused(attacker, sync_redis, redis_prefix, None)


@pytest.mark.gen_test
async def test_cookie_for_another_cookie_name_is_refused(
    browser, new_browser, app_config, sync_redis, redis_prefix, unique_email
):
    """A value signed for another cookie name (the name is part of the signature)."""
    await signed_in(browser, unique_email)
    secret = _secret(app_config)
    locator = decode_signed_value(secret, "sid", browser.cookies["sid"], min_version=2)
    assert locator is not None
    attacker = new_browser()
    attacker.cookies["sid"] = create_signed_value(
        secret, "other", locator.decode(), key_version=1
    ).decode()
    await _assert_refused(attacker, sync_redis, redis_prefix, None)


@pytest.mark.gen_test
async def test_forged_cookie_on_post_is_refused(browser, app_config, unique_email):
    sid = secrets.token_urlsafe(32)
    await browser.get("/")
    browser.cookies["sid"] = _sign(_secret(app_config), f"1:{sid}", key_version=1)
    response = await browser.post("/addStatus", {"status": "hi"}, accept_json=True)
    assert error_message(response, 401) == "Please sign in."


# ----- request size ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_body_over_64_kb_is_413_json(browser, unique_email):
    await signed_in(browser, unique_email)
    body = "status=" + "a" * (64 * 1024)
    response = await browser.post(
        "/addStatus",
        body=body,
        accept_json=True,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert error_message(response, 413) == TOO_LARGE_MESSAGE
    assert await fetch_statuses(browser) == []


@pytest.mark.gen_test
async def test_body_over_64_kb_is_413_page(browser, unique_email):
    body = "user_name=" + "a" * (64 * 1024) + f"&user_email={unique_email('big')}"
    response = await browser.post(
        "/register", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    text = html_error(response, 413)
    assert TOO_LARGE_MESSAGE in text
    assert "sid" not in browser.cookies


@pytest.mark.gen_test
async def test_body_limit_is_exactly_64_kb(browser, unique_email):
    await signed_in(browser, unique_email)
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    at_limit = "status=" + "a" * (64 * 1024 - len("status="))
    assert len(at_limit) == 64 * 1024
    response = await browser.post("/addStatus", body=at_limit, accept_json=True, headers=headers)
    assert error_message(response, 400) == "Status must be at most 1000 characters."
    response = await browser.post(
        "/addStatus", body=at_limit + "a", accept_json=True, headers=headers
    )
    assert error_message(response, 413) == TOO_LARGE_MESSAGE


@pytest.mark.gen_test
async def test_json_body_over_64_kb_is_413(browser, unique_email):
    payload = {
        "user_name": "Ann",
        "user_email": unique_email("big"),
        "user_password": PASSWORD,
        "padding": "p" * (64 * 1024),
    }
    response = await post_json(browser, "/register", payload)
    assert error_message(response, 413) == TOO_LARGE_MESSAGE
    assert "sid" not in browser.cookies


# ----- JSON bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    ['{"user_name": "Ann"', "{'user_name': 'Ann'}", "not json", "{,}", "\x00", "[1,]"],
)
@pytest.mark.gen_test
async def test_malformed_json_body_is_400(browser, body):
    response = await post_json(browser, "/register", body)
    assert error_message(response, 400) == BAD_JSON_MESSAGE


@pytest.mark.gen_test
async def test_json_body_with_invalid_utf8_is_400(browser):
    response = await post_json(browser, "/login", b'{"user_email": "\xff@example.com"}')
    assert error_message(response, 400) == BAD_JSON_MESSAGE


@pytest.mark.parametrize("path", ["/register", "/login", "/addStatus"])
@pytest.mark.gen_test
async def test_deeply_nested_json_body_is_400(browser, unique_email, path):
    """Well under the size limit, but nested deeper than the parser's recursion limit."""
    await signed_in(browser, unique_email)
    body = "[" * 30_000 + "]" * 30_000
    response = await post_json(browser, path, body)
    assert error_message(response, 400) in (BAD_JSON_MESSAGE, NOT_OBJECT_MESSAGE)


@pytest.mark.parametrize("body", ["[]", '["user_name"]', '"Ann"', "42", "null", "true"])
@pytest.mark.gen_test
async def test_json_body_that_is_not_an_object_is_400(browser, body):
    response = await post_json(browser, "/register", body)
    assert error_message(response, 400) == NOT_OBJECT_MESSAGE


@pytest.mark.parametrize("value", [42, None, True, ["Ann"], {"first": "Ann"}, 1.5])
@pytest.mark.gen_test
async def test_json_body_with_non_string_value_is_400(browser, unique_email, value):
    payload = {"user_name": value, "user_email": unique_email("typed"), "user_password": PASSWORD}
    response = await post_json(browser, "/register", payload)
    assert error_message(response, 400) == NOT_OBJECT_MESSAGE
    assert "sid" not in browser.cookies


@pytest.mark.gen_test
async def test_json_status_that_is_not_a_string_is_400(browser, unique_email):
    await signed_in(browser, unique_email)
    response = await post_json(browser, "/addStatus", {"status": 12345})
    assert error_message(response, 400) == NOT_OBJECT_MESSAGE
    assert await fetch_statuses(browser) == []


@pytest.mark.gen_test
async def test_empty_json_body_is_missing_fields(browser):
    response = await post_json(browser, "/register", "")
    assert error_message(response, 400) == "Name is required."
    response = await post_json(browser, "/login", "{}")
    assert error_message(response, 400) == "E-mail is required."


@pytest.mark.gen_test
async def test_bad_json_body_as_html_client_is_400_page(browser):
    response = await browser.post(
        "/register", body="{oops", headers={"Content-Type": "application/json"}
    )
    text = html_error(response, 400)
    assert BAD_JSON_MESSAGE in text


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/register", "user_name"),
        ("/register", "user_email"),
        ("/login", "user_email"),
        ("/addStatus", "status"),
    ],
)
@pytest.mark.gen_test
async def test_json_string_with_lone_surrogate_is_400(browser, unique_email, path, field):
    """``"\\ud800"`` is valid JSON syntax but not text that can be stored or encoded."""
    await signed_in(browser, unique_email)
    payload = {
        "user_name": "Ann",
        "user_email": unique_email("surrogate"),
        "user_password": PASSWORD,
        "status": "fine",
    }
    payload[field] = "x\ud800y" if field != "user_email" else "x\ud800y@example.com"
    response = await post_json(browser, path, json.dumps(payload))
    assert response.code == 400, (response.code, response.body)
    assert body_json(response)["error"] is True


# ----- invalid UTF-8 in form fields --------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/register", "user_name=%FF%FE&user_email={email}&user_password=correct+horse"),
        ("/register", "user_name=Ann&user_email=%C3{email}&user_password=correct+horse"),
        ("/register", "user_name=Ann&user_email={email}&user_password=%ED%A0%80abcdefgh"),
        ("/login", "user_email={email}&user_password=%80%80%80%80%80%80%80%80"),
        ("/addStatus", "status=%C0%AF"),
    ],
)
@pytest.mark.gen_test
async def test_invalid_utf8_in_form_field_is_400(browser, unique_email, path, body):
    await signed_in(browser, unique_email)
    body = body.format(email=unique_email("utf8"))
    response = await browser.post(
        path,
        body=body,
        accept_json=True,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert error_message(response, 400) == UTF8_MESSAGE


@pytest.mark.gen_test
async def test_invalid_utf8_in_form_field_is_400_page(browser, unique_email):
    body = f"user_name=%FF&user_email={unique_email('utf8')}&user_password=correct+horse"
    response = await browser.post(
        "/register", body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    text = html_error(response, 400)
    assert UTF8_MESSAGE in text
    assert "sid" not in browser.cookies


# ----- unknown paths and methods ------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/nope", "/home/extra", "/fetchStatus/1", "/register/", "/%FF", "/home%00", "//"]
)
@pytest.mark.gen_test
async def test_unknown_path_is_404(browser, path):
    response = await browser.get(path, accept_json=True)
    assert error_message(response, 404) == "Not found."
    page = await browser.get(path)
    text = html_error(page, 404)
    assert "<h1>Page not found</h1>" in text


@pytest.mark.gen_test
async def test_post_to_unknown_path_is_404(browser):
    response = await browser.post("/nope", {"a": "b"}, accept_json=True)
    assert error_message(response, 404) == "Not found."


@pytest.mark.parametrize("path", ["/logout", "/addStatus", "/login", "/register"])
@pytest.mark.gen_test
async def test_get_on_post_only_route_is_405(browser, path):
    response = await browser.get(path, accept_json=True)
    assert error_message(response, 405) == "Method not allowed."
    if path == "/logout":  # the other addresses take a browser to the page it meant
        page = await browser.get(path)
        text = html_error(page, 405)
        assert "This address only takes form submissions." in text


@pytest.mark.parametrize("path", ["/home", "/fetchStatus", "/whoami", "/healthz"])
@pytest.mark.gen_test
async def test_post_on_get_only_route_is_405(browser, path):
    response = await browser.post(path, {}, accept_json=True)
    assert error_message(response, 405) == "Method not allowed."


@pytest.mark.gen_test
async def test_get_logout_does_not_sign_out(browser, unique_email):
    await signed_in(browser, unique_email)
    response = await browser.get("/logout")
    html_error(response, 405)
    home = await browser.get("/home", accept_json=True)
    assert home.code == 200, home.body
