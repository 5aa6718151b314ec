"""The HTML flows a browser goes through: forms, redirect-after-post, inline errors,
the home page, sign-out, and the cookie and headers each page carries."""

from __future__ import annotations

import html
import os
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from typing import Any

import pytest
from tornado.web import decode_signed_value

from tests.support.browser import Browser, body_json

PASSWORD = "correct horse"


# ----- helpers --------------------------------------------------------------------


def text_of(response: Any) -> str:
    assert response.headers["Content-Type"].startswith("text/html"), response.headers
    body = response.body.decode()
    assert "Traceback" not in body
    return body


def forms(page: str) -> dict[str, str]:
    """``action -> form markup`` of every form on the page."""
    return {
        m.group(1): m.group(0)
        for m in re.finditer(r'<form[^>]*action="([^"]+)"[^>]*>.*?</form>', page, re.S)
    }


def xsrf_input(form: str) -> str:
    match = re.search(r'<input type="hidden" name="_xsrf" value="([^"]+)"', form)
    assert match is not None, form
    return match.group(1)


def inline_error(page: str) -> str | None:
    """The first error shown beside a field (or in a form's error box), without "Error: "."""
    match = re.search(r'<span class="field-error" id="[\w-]+">Error: (.*?)</span>', page, re.S)
    if match is None:
        match = re.search(r'<p class="error" role="alert">(.*?)</p>', page, re.S)
    if match is None:
        return None
    return html.unescape(re.sub(r"\s*<a [^>]*>.*?</a>", "", match.group(1)))


def footer(page: str) -> str:
    match = re.search(r'<span class="served-by">([^<]*)</span>', page)
    assert match is not None, page
    return html.unescape(match.group(1))


def views_on(page: str) -> int:
    match = re.search(r'<strong class="views-count">(\d+)</strong>', page)
    assert match is not None, page
    return int(match.group(1))


def statuses_on(page: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r"<li><p>(.*?)</p><time", page, re.S)]


def sid_morsels(response: Any) -> list[Any]:
    found = []
    for header in response.headers.get_list("Set-Cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if "sid" in jar:
            found.append((header, jar["sid"]))
    return found


def session_key(app_config: Any, prefix: str, cookie: str) -> str:
    locator = decode_signed_value(dict(app_config.cookie_secrets), "sid", cookie, min_version=2)
    assert locator is not None
    user_id, sid = locator.decode().split(":")
    return f"{prefix}sess:{{u:{user_id}}}:{sid}" if user_id else f"{prefix}sess:{{a:{sid}}}"


async def register_page(browser: Browser, name: str, email: str, password: str = PASSWORD) -> Any:
    return await browser.post(
        "/register", {"user_name": name, "user_email": email, "user_password": password}
    )


async def signed_in(browser: Browser, unique_email: Any, name: str = "Ann") -> str:
    email = unique_email("page")
    response = await register_page(browser, name, email)
    assert response.code == 303, response.body
    return email


def assert_served_by(response: Any, page: str) -> None:
    served = response.headers["X-Served-By"]
    assert footer(page) == served
    host, _, pid = served.rpartition(":")
    assert host and pid.isdigit() and int(pid) == os.getpid()


# ----- the start page -------------------------------------------------------------------


@pytest.mark.gen_test
async def test_start_page_has_both_forms_with_xsrf_tokens(browser):
    response = await browser.get("/")
    assert response.code == 200
    page = text_of(response)
    found = forms(page)
    assert set(found) == {"/login", "/register"}
    for action, form in found.items():
        assert 'method="post"' in form, action
        assert xsrf_input(form)
    assert 'name="user_email"' in found["/login"]
    assert 'name="user_password" type="password"' in found["/login"]
    for field in ("user_name", "user_email", "user_password"):
        assert f'name="{field}"' in found["/register"]
    assert "_xsrf" in browser.cookies
    assert inline_error(page) is None
    assert_served_by(response, page)


@pytest.mark.gen_test
async def test_start_page_redirects_a_signed_in_user_home(browser, unique_email):
    await signed_in(browser, unique_email)
    response = await browser.get("/")
    assert response.code == 302
    assert response.headers["Location"] == "/home"


@pytest.mark.gen_test
async def test_start_page_sets_no_session(browser, sync_redis, redis_prefix):
    before = set(sync_redis.scan_iter(match=redis_prefix + "sess:*", count=1000))
    response = await browser.get("/")
    assert response.code == 200
    assert sid_morsels(response) == []
    assert set(sync_redis.scan_iter(match=redis_prefix + "sess:*", count=1000)) == before


# ----- registration ------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_register_redirects_home_signed_in(browser, unique_email):
    response = await register_page(browser, "Ann", unique_email("reg"))
    assert response.code == 303
    assert response.headers["Location"] == "/home"
    assert "sid" in browser.cookies
    home = await browser.get("/home")
    assert home.code == 200
    assert "Hi, Ann" in text_of(home)


@pytest.mark.parametrize(
    ("name", "email", "password", "message"),
    [
        ("", "ann@example.com", "secret-password-1", "Name is required."),
        ("N" * 101, "ann@example.com", "secret-password-1", "Name must be at most 100 characters."),
        ("Ann", "not-an-email", "secret-password-1", "Please enter a valid e-mail address."),
        (
            "Ann",
            "a" * 64 + "@" + "b" * 186 + ".com",
            "secret-password-1",
            "E-mail must be at most 254 characters.",
        ),
        ("Ann", "ann@example.com", "short-1", "Password must be at least 8 characters."),
        (
            "Ann",
            "ann@example.com",
            "é" * 40,
            "Password must be at most 72 bytes "
            "(72 plain letters or digits; accented letters and symbols take more).",
        ),
    ],
    ids=["no-name", "long-name", "bad-email", "long-email", "short-password", "long-password"],
)
@pytest.mark.gen_test
async def test_register_error_rerenders_the_form(browser, name, email, password, message):
    response = await register_page(browser, name, email, password)
    assert response.code == 400
    page = text_of(response)
    assert inline_error(page) == message
    register_form = forms(page)["/register"]
    assert f'value="{html.escape(name)}"' in register_form
    assert f'value="{html.escape(email)}"' in register_form
    assert password not in page
    assert html.escape(password) not in page
    assert xsrf_input(register_form)
    assert "sid" not in browser.cookies


@pytest.mark.gen_test
async def test_register_error_escapes_what_was_typed(browser):
    name = '"><script>alert(1)</script>'
    response = await register_page(browser, name, 'x"@<b>', PASSWORD)
    assert response.code == 400
    page = text_of(response)
    assert "<script>alert(1)</script>" not in page
    assert 'value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    assert 'value="x&quot;@&lt;b&gt;"' in page


@pytest.mark.gen_test
async def test_register_taken_email_is_409_page(browser, new_browser, unique_email):
    email = unique_email("taken")
    await signed_in(browser, unique_email)
    assert (await register_page(new_browser(), "First", email)).code == 303
    second = new_browser()
    response = await register_page(second, "Second", email.upper(), "another password")
    assert response.code == 409
    page = text_of(response)
    assert inline_error(page) == "An account with this e-mail address already exists."
    assert '<a href="#login-email">Sign in instead</a>' in page
    assert 'value="Second"' in page
    assert "another password" not in page
    assert "sid" not in second.cookies


# ----- sign-in -----------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_login_redirects_home(browser, new_browser, unique_email):
    email = await signed_in(browser, unique_email, "Bea")
    other = new_browser()
    response = await other.login(email, PASSWORD, accept_json=False)
    assert response.code == 303
    assert response.headers["Location"] == "/home"
    home = await other.get("/home")
    assert "Hi, Bea" in text_of(home)


@pytest.mark.gen_test
async def test_login_failure_rerenders_the_form(browser, new_browser, unique_email):
    email = await signed_in(browser, unique_email)
    other = new_browser()
    response = await other.login(email, "wrong password", accept_json=False)
    assert response.code == 401
    page = text_of(response)
    assert inline_error(page) == "Invalid e-mail or password."
    assert f'value="{email}"' in forms(page)["/login"]
    assert "wrong password" not in page
    assert "sid" not in other.cookies


@pytest.mark.gen_test
async def test_login_missing_password_rerenders_the_form(browser, unique_email):
    email = unique_email("missing")
    response = await browser.post("/login", {"user_email": email})
    assert response.code == 400
    page = text_of(response)
    assert inline_error(page) == "Password is required."
    assert f'value="{email}"' in page


@pytest.mark.gen_test
async def test_login_while_signed_in_replaces_the_session(
    browser, unique_email, app_config, redis_prefix, sync_redis
):
    email = await signed_in(browser, unique_email)
    old_cookie = browser.cookies["sid"]
    old_key = session_key(app_config, redis_prefix, old_cookie)
    assert sync_redis.exists(old_key) == 1
    response = await browser.login(email, PASSWORD, accept_json=False)
    assert response.code == 303
    assert browser.cookies["sid"] != old_cookie
    assert sync_redis.exists(old_key) == 0
    assert sync_redis.exists(session_key(app_config, redis_prefix, browser.cookies["sid"])) == 1
    assert (await browser.get("/home")).code == 200


# ----- home ----------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_home_greets_counts_and_offers_the_forms(browser, unique_email):
    await signed_in(browser, unique_email, "Cleo")
    for expected in (1, 2, 3):
        response = await browser.get("/home")
        assert response.code == 200
        page = text_of(response)
        assert views_on(page) == expected
    assert "<h1>Hi, Cleo</h1>" in page
    found = forms(page)
    assert set(found) == {"/addStatus", "/logout"}
    assert 'name="status"' in found["/addStatus"]
    assert xsrf_input(found["/addStatus"]) and xsrf_input(found["/logout"])
    assert "Nothing posted yet." in page
    assert statuses_on(page) == []
    assert_served_by(response, page)


@pytest.mark.gen_test
async def test_home_escapes_the_name(browser, unique_email):
    await signed_in(browser, unique_email, "<b>Bo</b> & co")
    page = text_of(await browser.get("/home"))
    assert "Hi, &lt;b&gt;Bo&lt;/b&gt; &amp; co" in page
    assert "<b>Bo</b>" not in page


@pytest.mark.gen_test
async def test_home_without_session_redirects_to_start(browser):
    response = await browser.get("/home")
    assert response.code == 302
    assert response.headers["Location"] == "/?next=%2Fhome"  # back here after signing in


@pytest.mark.gen_test
async def test_post_status_redirects_and_lists_newest_first(browser, unique_email):
    await signed_in(browser, unique_email)
    for text in ("first post", "second post", "third post"):
        response = await browser.post("/addStatus", {"status": text})
        assert response.code == 303
        assert response.headers["Location"] == "/home"
    page = text_of(await browser.get("/home"))
    assert statuses_on(page) == ["third post", "second post", "first post"]
    assert "Nothing posted yet." not in page
    times = re.findall(r'<time datetime="([^"]+)">', page)
    assert len(times) == 3
    parsed = [datetime.fromisoformat(t) for t in times]
    assert parsed == sorted(parsed, reverse=True)


@pytest.mark.gen_test
async def test_status_markup_is_shown_as_text(browser, unique_email):
    await signed_in(browser, unique_email)
    text = "<script>alert(1)</script> & <img src=x onerror=alert(2)>"
    assert (await browser.post("/addStatus", {"status": text})).code == 303
    page = text_of(await browser.get("/home"))
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;img src=x onerror=alert(2)&gt;" in page
    assert "<script>" not in page and "<img" not in page
    assert statuses_on(page) == [text]


@pytest.mark.gen_test
async def test_other_users_statuses_are_not_shown(browser, new_browser, unique_email):
    await signed_in(browser, unique_email)
    other = new_browser()
    await signed_in(other, unique_email, "Other")
    assert (await other.post("/addStatus", {"status": "not yours"})).code == 303
    assert (await browser.post("/addStatus", {"status": "mine"})).code == 303
    assert statuses_on(text_of(await browser.get("/home"))) == ["mine"]


@pytest.mark.parametrize(
    ("status", "message"),
    [("   ", "Status must not be empty."), ("z" * 1001, "Status must be at most 1000 characters.")],
    ids=["blank", "too-long"],
)
@pytest.mark.gen_test
async def test_bad_status_rerenders_home(browser, unique_email, status, message):
    await signed_in(browser, unique_email, "Dee")
    assert (await browser.post("/addStatus", {"status": "kept"})).code == 303
    await browser.get("/home")  # the redirect after the post: not counted as a visit
    await browser.get("/home")  # a visit
    response = await browser.post("/addStatus", {"status": status})
    assert response.code == 400
    page = text_of(response)
    assert inline_error(page) == message
    assert "Hi, Dee" in page
    assert statuses_on(page) == ["kept"]
    assert views_on(page) == 1
    textarea = re.search(r"<textarea[^>]*>(.*?)</textarea>", page, re.S)
    assert textarea is not None
    assert textarea.group(1).strip() == status.strip()  # what was typed is kept
    assert statuses_on(text_of(await browser.get("/home"))) == ["kept"]


@pytest.mark.gen_test
async def test_post_status_signed_out_goes_to_start(browser):
    response = await browser.post("/addStatus", {"status": "hello"})
    assert response.code == 303
    assert response.headers["Location"] == "/?next=%2Fhome"


# ----- sign-out --------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_logout_redirects_and_ends_the_session(
    browser, new_browser, unique_email, app_config, redis_prefix, sync_redis
):
    await signed_in(browser, unique_email)
    cookie = browser.cookies["sid"]
    key = session_key(app_config, redis_prefix, cookie)
    assert sync_redis.exists(key) == 1
    response = await browser.post("/logout")
    assert response.code == 303
    assert response.headers["Location"] == "/"
    assert "sid" not in browser.cookies
    assert sync_redis.exists(key) == 0
    home = await browser.get("/home")
    assert home.code == 302 and home.headers["Location"] == "/?next=%2Fhome"
    start = await browser.get("/")
    assert start.code == 200 and "/register" in forms(text_of(start))
    replay = new_browser()
    replay.cookies["sid"] = cookie
    assert (await replay.get("/home")).code == 302


@pytest.mark.gen_test
async def test_logout_expires_the_cookie(browser, unique_email):
    await signed_in(browser, unique_email)
    response = await browser.post("/logout")
    found = sid_morsels(response)
    assert len(found) == 1
    _header, morsel = found[0]
    assert morsel.value == ""
    assert morsel["path"] == "/"
    expired = morsel["max-age"] == "0" or (
        morsel["expires"] and parsedate_to_datetime(morsel["expires"]) < datetime.now(UTC)
    )
    assert expired, found


@pytest.mark.gen_test
async def test_logout_form_from_the_home_page_works(browser, unique_email):
    await signed_in(browser, unique_email)
    page = text_of(await browser.get("/home"))
    token = xsrf_input(forms(page)["/logout"])
    response = await browser.post("/logout", {"_xsrf": token}, xsrf=False)
    assert response.code == 303
    assert (await browser.get("/home")).code == 302


# ----- cookies and headers ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_session_cookie_attributes(browser, unique_email):
    response = await register_page(browser, "Ann", unique_email("cookie"))
    found = sid_morsels(response)
    assert len(found) == 1
    header, morsel = found[0]
    assert morsel["httponly"] is True
    assert morsel["samesite"] == "Lax"
    assert morsel["path"] == "/"
    assert morsel["domain"] == ""
    assert morsel["expires"] == "" and morsel["max-age"] == ""
    assert not morsel["secure"]
    lowered = header.lower()
    assert "expires" not in lowered and "max-age" not in lowered
    assert "secure" not in lowered.replace("samesite", "")
    assert "domain" not in lowered


@pytest.mark.gen_test
async def test_session_cookie_is_new_on_every_login(browser, new_browser, unique_email):
    email = await signed_in(browser, unique_email)
    seen = {browser.cookies["sid"]}
    for _ in range(3):
        other = new_browser()
        assert (await other.login(email, PASSWORD, accept_json=False)).code == 303
        seen.add(other.cookies["sid"])
    assert len(seen) == 4


@pytest.mark.parametrize("path", ["/", "/home", "/nope", "/logout"])
@pytest.mark.gen_test
async def test_every_page_has_the_dynamic_headers(browser, unique_email, path):
    await signed_in(browser, unique_email)
    response = await browser.get(path)
    assert response.code == {"/": 302, "/home": 200, "/nope": 404, "/logout": 405}[path]
    assert response.headers["Cache-Control"] == "no-store"
    assert "Cookie" in [v.strip() for v in response.headers["Vary"].split(",")]
    served = response.headers["X-Served-By"]
    assert re.fullmatch(r"[^:]+:\d+", served)
    if response.code != 302:
        assert footer(text_of(response)) == served


@pytest.mark.gen_test
async def test_error_pages_are_pages(browser):
    response = await browser.get("/nope")
    page = text_of(response)
    assert response.code == 404
    assert "Error 404" in page and "<h1>Page not found</h1>" in page
    assert "There is no page at this address." in page
    assert_served_by(response, page)
    response = await browser.get("/logout")
    page = text_of(response)
    assert response.code == 405
    assert "Error 405" in page and "This address only takes form submissions." in page


@pytest.mark.parametrize(
    ("path", "target"), [("/register", "/"), ("/login", "/"), ("/addStatus", "/home")]
)
@pytest.mark.gen_test
async def test_get_of_a_form_address_goes_to_the_page_of_that_form(
    browser, unique_email, path, target
):
    # A reload after a failed post, or a bookmark: the page a person meant, not a 405.
    await signed_in(browser, unique_email)
    response = await browser.get(path)
    assert response.code == 302
    assert response.headers["Location"] == target


@pytest.mark.gen_test
async def test_get_of_logout_is_405_and_signs_nobody_out(browser, unique_email):
    await signed_in(browser, unique_email)
    response = await browser.get("/logout")
    assert response.code == 405
    assert "Error 405" in text_of(response)
    assert (await browser.get("/home")).code == 200


@pytest.mark.gen_test
async def test_pages_are_html_even_for_json_friendly_browsers(browser):
    response = await browser.get("/", headers={"Accept": "text/html,application/json;q=0.9"})
    assert response.code == 200
    assert "/register" in forms(text_of(response))
    response = await browser.get("/", headers={"Accept": "application/json"})
    assert body_json(response) == {"error": False, "message": {"signed_in": False}}
