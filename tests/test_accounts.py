"""Registration and sign-in rules over HTTP, checked against what MariaDB stores.

Unique e-mail regardless of case and surrounding spaces (also under concurrency), one
message for every failed sign-in, throttling after repeated failures (the test
configuration allows 3 per account), bcrypt hashes in ``user_login.user_password``, and
the password limits: 8 characters to 72 bytes, refused with 400, never truncated.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import bcrypt
import pymysql
import pytest

from storage.urls import parse_mysql_url
from tests.support.browser import Browser, body_json

PASSWORD = "correct horse"
BAD_CREDENTIALS = "Invalid e-mail or password."
EMAIL_TAKEN = "An account with this e-mail address already exists."
TOO_LONG = (
    "Password must be at most 72 bytes "
    "(72 plain letters or digits; accented letters and symbols take more)."
)
TOO_LONG_AT_LOGIN = "Password must be at most 72 bytes."
TOO_SHORT = "Password must be at least 8 characters."


def query(mysql_url: str, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    params = parse_mysql_url(mysql_url)
    conn = pymysql.connect(**params.pymysql_kwargs())
    try:
        with conn.cursor() as cur:
            cur.execute(sql, args)
            return list(cur.fetchall())
    finally:
        conn.close()


def user_rows(mysql_url: str, email: str) -> list[tuple[Any, ...]]:
    return query(
        mysql_url,
        "SELECT user_id, user_email, user_name, user_password FROM user_login "
        "WHERE LOWER(TRIM(user_email)) = LOWER(TRIM(%s))",
        (email,),
    )


def error_message(response: Any, code: int) -> str:
    assert response.code == code, (response.code, response.body)
    data = body_json(response)
    assert data["error"] is True, data
    return str(data["message"])


def page_error(response: Any) -> str:
    """The first error shown beside a field of a re-rendered form (without "Error: ")."""
    match = re.search(
        r'<span class="field-error" id="[\w-]+">Error: (.*?)(?: <a [^>]*>.*?</a>)?</span>',
        response.body.decode(),
        re.S,
    )
    assert match is not None, response.body
    return match.group(1)


def post_json(browser: Browser, path: str, data: dict[str, str]) -> Any:
    return browser.post(
        path, body=json.dumps(data), accept_json=True, headers={"Content-Type": "application/json"}
    )


# ----- what is stored ----------------------------------------------------------------


@pytest.mark.gen_test
async def test_registration_stores_a_bcrypt_hash(browser, unique_email, mysql_url):
    email = unique_email("hash")
    response = await browser.register("  Ann Lee  ", email, PASSWORD)
    assert response.code == 201, response.body
    message = body_json(response)["message"]
    assert message["user_name"] == "Ann Lee"
    rows = user_rows(mysql_url, email)
    assert len(rows) == 1
    user_id, stored_email, name, password_hash = rows[0]
    assert user_id == message["user_id"]
    assert stored_email == email
    assert name == "Ann Lee"
    assert PASSWORD not in password_hash
    assert re.fullmatch(r"\$2b\$04\$[./A-Za-z0-9]{53}", password_hash), password_hash
    assert bcrypt.checkpw(PASSWORD.encode(), password_hash.encode())
    assert not bcrypt.checkpw(b"wrong horse", password_hash.encode())


@pytest.mark.gen_test
async def test_email_is_stored_trimmed_and_lower_cased(browser, unique_email, mysql_url):
    email = unique_email("mixed")
    response = await browser.register("Ann", "  " + email.upper() + "\t", PASSWORD)
    assert response.code == 201, response.body
    rows = user_rows(mysql_url, email)
    assert [row[1] for row in rows] == [email]


@pytest.mark.gen_test
async def test_each_registration_gets_its_own_salt(browser, new_browser, unique_email, mysql_url):
    first, second = unique_email("salt1"), unique_email("salt2")
    assert (await browser.register("A", first, PASSWORD)).code == 201
    assert (await new_browser().register("B", second, PASSWORD)).code == 201
    assert user_rows(mysql_url, first)[0][3] != user_rows(mysql_url, second)[0][3]


# ----- unique e-mail -------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [lambda e: e, lambda e: e.upper(), lambda e: f"  {e}  ", lambda e: f"\t{e.title()}\n"],
    ids=["same", "upper-case", "spaces", "tab-title-case"],
)
@pytest.mark.gen_test
async def test_duplicate_email_is_409(browser, new_browser, unique_email, mysql_url, variant):
    email = unique_email("dup")
    assert (await browser.register("First", email, PASSWORD)).code == 201
    second = new_browser()
    response = await second.register("Second", variant(email), "other password")
    assert error_message(response, 409) == EMAIL_TAKEN
    assert "sid" not in second.cookies
    rows = user_rows(mysql_url, email)
    assert [(row[1], row[2]) for row in rows] == [(email, "First")]
    # The first account is untouched: its password still works, the second one does not.
    assert (await new_browser().login(email, PASSWORD)).code == 200
    assert (await new_browser().login(email, "other password")).code == 401


@pytest.mark.gen_test
async def test_duplicate_email_page_keeps_name_and_email(browser, new_browser, unique_email):
    email = unique_email("dup-page")
    assert (await browser.register("First", email, PASSWORD)).code == 201
    second = new_browser()
    response = await second.register("Second", email.upper(), "other password", accept_json=False)
    assert response.code == 409
    assert page_error(response) == EMAIL_TAKEN
    text = response.body.decode()
    assert 'value="Second"' in text
    assert f'value="{email.upper()}"' in text
    assert "other password" not in text


@pytest.mark.parametrize(
    "variant",
    [lambda e: e, lambda e: " " + e.upper()],
    ids=["same", "upper-case"],
)
@pytest.mark.gen_test
async def test_concurrent_duplicate_registration_one_wins(
    new_browser, unique_email, mysql_url, variant
):
    email = unique_email("race")
    one, two = new_browser(), new_browser()
    await asyncio.gather(one.get("/"), two.get("/"))
    first, second = await asyncio.gather(
        one.register("One", email, "password one"),
        two.register("Two", variant(email), "password two"),
    )
    codes = sorted([first.code, second.code])
    assert codes == [201, 409], (first.body, second.body)
    winner, loser = (one, two) if first.code == 201 else (two, one)
    assert error_message(second if first.code == 201 else first, 409) == EMAIL_TAKEN
    assert "sid" in winner.cookies
    assert "sid" not in loser.cookies
    rows = user_rows(mysql_url, email)
    assert len(rows) == 1
    expected = ("One", "password one") if first.code == 201 else ("Two", "password two")
    assert rows[0][2] == expected[0]
    assert bcrypt.checkpw(expected[1].encode(), rows[0][3].encode())
    assert (await winner.get("/home", accept_json=True)).code == 200
    assert (await loser.get("/home", accept_json=True)).code == 401


# ----- sign-in ---------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_login_ignores_case_and_spaces_of_the_email(browser, new_browser, unique_email):
    email = unique_email("case")
    assert (await browser.register("Ann", email, PASSWORD)).code == 201
    other = new_browser()
    response = await other.login(f"  {email.upper()} ", PASSWORD)
    assert response.code == 200, response.body
    assert body_json(response)["message"]["user_name"] == "Ann"


@pytest.mark.gen_test
async def test_failed_login_message_is_the_same_for_unknown_email_and_wrong_password(
    browser, new_browser, unique_email
):
    email = unique_email("known")
    assert (await browser.register("Ann", email, PASSWORD)).code == 201
    unknown = await new_browser().login(unique_email("unknown"), PASSWORD)
    wrong = await new_browser().login(email, "wrong horse")
    assert unknown.code == wrong.code == 401
    assert unknown.body == wrong.body
    assert error_message(unknown, 401) == BAD_CREDENTIALS
    assert unknown.headers.get("Retry-After") is None
    assert "sid" not in unknown.headers.get("Set-Cookie", "")
    assert "sid" not in wrong.headers.get("Set-Cookie", "")


@pytest.mark.gen_test
async def test_failed_login_page_is_the_same_for_unknown_email_and_wrong_password(
    browser, new_browser, unique_email
):
    email = unique_email("known")
    assert (await browser.register("Ann", email, PASSWORD)).code == 201
    unknown_email = unique_email("unknown")
    unknown = await new_browser().login(unknown_email, PASSWORD, accept_json=False)
    wrong = await new_browser().login(email, "wrong horse", accept_json=False)
    assert unknown.code == wrong.code == 401
    assert page_error(unknown) == page_error(wrong) == BAD_CREDENTIALS
    assert f'value="{unknown_email}"' in unknown.body.decode()
    assert f'value="{email}"' in wrong.body.decode()
    assert "wrong horse" not in wrong.body.decode()


@pytest.mark.gen_test
async def test_password_is_case_sensitive(browser, new_browser, unique_email):
    email = unique_email("case-pw")
    assert (await browser.register("Ann", email, PASSWORD)).code == 201
    assert error_message(await new_browser().login(email, PASSWORD.upper()), 401) == BAD_CREDENTIALS


# ----- throttling --------------------------------------------------------------------------


async def _fail(browser: Browser, email: str, times: int) -> None:
    for _ in range(times):
        response = await browser.login(email, "wrong horse")
        assert error_message(response, 401) == BAD_CREDENTIALS


def _retry_after(response: Any) -> int:
    value = response.headers.get("Retry-After")
    assert value is not None and value.isdigit(), response.headers
    seconds = int(value)
    assert 0 < seconds <= 900
    return seconds


@pytest.mark.gen_test
async def test_three_failures_throttle_the_account(browser, new_browser, unique_email):
    email = unique_email("throttle")
    assert (await browser.register("Ann", email, PASSWORD)).code == 201
    attacker = new_browser()
    await _fail(attacker, email, 3)
    response = await attacker.login(email, "wrong horse")
    message = error_message(response, 429)
    seconds = _retry_after(response)
    assert message == f"Too many failed sign-ins. Try again in {seconds} seconds."
    # Even the right password is refused now, from any client, and no session is made.
    legit = new_browser()
    response = await legit.login(email, PASSWORD)
    assert error_message(response, 429).startswith("Too many failed sign-ins.")
    _retry_after(response)
    assert "sid" not in legit.cookies
    # The account's e-mail in another spelling is the same account.
    response = await legit.login(email.upper(), PASSWORD)
    assert response.code == 429
    # The signed-in session of the owner is not affected.
    assert (await browser.get("/home", accept_json=True)).code == 200


@pytest.mark.gen_test
async def test_throttle_is_per_account(browser, new_browser, unique_email):
    victim, other = unique_email("victim"), unique_email("other")
    assert (await browser.register("Victim", victim, PASSWORD)).code == 201
    assert (await new_browser().register("Other", other, PASSWORD)).code == 201
    attacker = new_browser()
    await _fail(attacker, victim, 3)
    assert (await attacker.login(victim, PASSWORD)).code == 429
    response = await attacker.login(other, PASSWORD)
    assert response.code == 200, response.body


@pytest.mark.gen_test
async def test_throttle_counts_unknown_emails_too(browser, unique_email):
    """An unknown address is throttled like a real one: no way to tell them apart."""
    email = unique_email("nobody")
    await _fail(browser, email, 3)
    response = await browser.login(email, PASSWORD)
    assert error_message(response, 429).startswith("Too many failed sign-ins.")
    _retry_after(response)


@pytest.mark.gen_test
async def test_throttle_page_for_html_clients(browser, new_browser, unique_email):
    email = unique_email("throttle-page")
    assert (await browser.register("Ann", email, PASSWORD)).code == 201
    attacker = new_browser()
    await _fail(attacker, email, 3)
    response = await attacker.login(email, PASSWORD, accept_json=False)
    assert response.code == 429
    seconds = _retry_after(response)
    assert page_error(response) == f"Too many failed sign-ins. Try again in {seconds} seconds."
    assert f'value="{email}"' in response.body.decode()


@pytest.mark.gen_test
async def test_successful_login_resets_the_failure_count(browser, new_browser, unique_email):
    email = unique_email("reset")
    assert (await browser.register("Ann", email, PASSWORD)).code == 201
    client = new_browser()
    await _fail(client, email, 2)
    assert (await client.login(email, PASSWORD)).code == 200
    await _fail(client, email, 2)
    response = await client.login(email, PASSWORD)
    assert response.code == 200, response.body


# ----- password limits -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "password",
    ["x" * 72, "é" * 30 + "y" * 12, "é" * 36, "\U0001f600" * 18, "é" * 8, "80613947"],
    ids=["72-ascii", "72-bytes-mixed", "36-e-acute", "18-emoji", "8-e-acute", "8-digits"],
)
@pytest.mark.gen_test
async def test_password_within_limits_registers_and_logs_in(
    browser, new_browser, unique_email, password
):
    email = unique_email("ok-pw")
    response = await browser.register("Ann", email, password)
    assert response.code == 201, response.body
    assert (await new_browser().login(email, password)).code == 200
    # Nothing is truncated: the password without its last character does not match.
    assert (await new_browser().login(email, password[:-1])).code in (400, 401)


@pytest.mark.gen_test
async def test_sixty_byte_accented_password_is_accepted(browser, new_browser, unique_email):
    email = unique_email("accent")
    password = "é" * 30
    assert len(password.encode()) == 60
    assert (await browser.register("Ann", email, password)).code == 201
    assert (await new_browser().login(email, password)).code == 200


@pytest.mark.parametrize(
    "password",
    ["x" * 73, "é" * 40, "é" * 36 + "x", "\U0001f600" * 19, "a" * 1000],
    ids=["73-ascii", "80-bytes-e-acute", "73-bytes-mixed", "76-bytes-emoji", "1000-ascii"],
)
@pytest.mark.gen_test
async def test_password_over_72_bytes_is_refused_at_registration(
    browser, unique_email, mysql_url, password
):
    email = unique_email("long-pw")
    response = await browser.register("Ann", email, password)
    assert error_message(response, 400) == TOO_LONG
    assert "sid" not in browser.cookies
    assert user_rows(mysql_url, email) == []


@pytest.mark.gen_test
async def test_password_over_72_bytes_is_refused_on_the_page(browser, unique_email):
    email = unique_email("long-pw-page")
    password = "é" * 40
    response = await browser.register("Ann", email, password, accept_json=False)
    assert response.code == 400
    assert page_error(response) == TOO_LONG
    text = response.body.decode()
    assert 'value="Ann"' in text and f'value="{email}"' in text
    assert password not in text


@pytest.mark.parametrize("password", ["x" * 73, "é" * 40, "b" * 5000])
@pytest.mark.gen_test
async def test_password_over_72_bytes_is_400_at_login(browser, new_browser, unique_email, password):
    email = unique_email("long-login")
    # An account whose password is the first 72 bytes: a truncating check would match it.
    prefix = password.encode()[:72].decode(errors="ignore")
    assert (await browser.register("Ann", email, prefix)).code == 201
    response = await new_browser().login(email, password)
    assert error_message(response, 400) == TOO_LONG_AT_LOGIN
    response = await new_browser().login(unique_email("nobody"), password)
    assert error_message(response, 400) == TOO_LONG_AT_LOGIN


@pytest.mark.parametrize("password", ["1234567", "é" * 7, "\U0001f600" * 7, "a"])
@pytest.mark.gen_test
async def test_password_under_8_characters_is_refused(browser, unique_email, mysql_url, password):
    email = unique_email("short-pw")
    response = await browser.register("Ann", email, password)
    assert error_message(response, 400) == TOO_SHORT
    assert user_rows(mysql_url, email) == []


@pytest.mark.parametrize(
    "password",
    ["  spaces around  ", "trailing space ", "bell\x07inside"],
    ids=["spaces-around", "trailing-space", "control-character"],
)
@pytest.mark.gen_test
async def test_form_password_is_hashed_exactly_as_typed(
    browser, new_browser, unique_email, mysql_url, password
):
    """A password is never altered: registered through the form, the identical
    password works through a JSON body too, and an altered one does not."""
    email = unique_email("exact")
    response = await browser.register("Ann", email, password)  # a form post
    assert response.code == 201, response.body
    stored = user_rows(mysql_url, email)[0][3]
    assert bcrypt.checkpw(password.encode(), stored.encode())
    response = await post_json(
        new_browser(), "/login", {"user_email": email, "user_password": password}
    )
    assert response.code == 200, response.body
    altered = password.replace("\x07", " ").strip()  # what Tornado's get_argument makes
    response = await post_json(
        new_browser(), "/login", {"user_email": email, "user_password": altered}
    )
    assert error_message(response, 401) == BAD_CREDENTIALS


@pytest.mark.gen_test
async def test_json_registration_and_login(browser, new_browser, unique_email, mysql_url):
    email = unique_email("json")
    response = await post_json(
        browser, "/register", {"user_name": "Jay", "user_email": email, "user_password": PASSWORD}
    )
    assert response.code == 201, response.body
    assert body_json(response)["message"]["user_name"] == "Jay"
    assert len(user_rows(mysql_url, email)) == 1
    other = new_browser()
    response = await post_json(other, "/login", {"user_email": email, "user_password": PASSWORD})
    assert response.code == 200, response.body
    assert (await other.get("/home", accept_json=True)).code == 200


@pytest.mark.gen_test
async def test_bcrypt_threads_run_only_on_idle_cpu(resources):
    import asyncio
    import os
    import threading

    def policy_of_this_thread() -> int:
        return os.sched_getscheduler(threading.get_native_id())

    assert policy_of_this_thread() != os.SCHED_IDLE  # the event loop's thread
    pool_policy = await asyncio.get_running_loop().run_in_executor(
        resources.executor, policy_of_this_thread
    )
    assert pool_policy == os.SCHED_IDLE
