"""Property-based: whatever is sent to any form or JSON route, the answer is sane.

Hypothesis generates requests to every route (``POST /register``, ``/login``,
``/addStatus``, ``/password``, ``/logout``; ``GET /``, ``/home``, ``/fetchStatus``,
``/whoami``, ``/password``, ``/healthz``), signed in or not, as forms, JSON objects,
other JSON values or raw bytes, with field values drawn from all of Unicode
(controls, bidi overrides, lone surrogates, very long text). For every one:

* no 5xx;
* no traceback in the body;
* a refused request (4xx) changes nothing stored: the accounts, their password hashes
  and marks, and the statuses are exactly as before.

The number of examples is bounded (``EXAMPLES`` per test), so the run stays short and
the same on every machine (no example database is kept).
"""

from __future__ import annotations

import http.client
import json
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pymysql
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage.urls import parse_mysql_url
from tests.support.http import Client
from tests.support.server_process import ServerProcess

EXAMPLES = 80
PASSWORD = "correct horse"
POST_ROUTES = ["/register", "/login", "/addStatus", "/password", "/logout"]
GET_ROUTES = ["/", "/home", "/fetchStatus", "/whoami", "/password", "/healthz"]
FIELDS = [
    "user_name",
    "user_email",
    "user_password",
    "status",
    "current_password",
    "new_password",
    "new_password_confirm",
    "limit",
    "before",
    "_xsrf",
]
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Text as people and attackers type it: any code point, some favourites more often.
nasty = st.sampled_from(
    ["\r\n", "\t", "\x00", "\x85", "\u202e", "\u2028", "\u200b", "\ud800", "<script>", "'", "é"]
)
texts = st.one_of(
    st.text(max_size=40),
    st.lists(st.one_of(nasty, st.text(max_size=3)), max_size=8).map("".join),
    st.sampled_from(["", " ", "x" * 1001, "é" * 40, "ann@example.com", PASSWORD]),
)
field_maps = st.dictionaries(
    st.one_of(st.sampled_from(FIELDS), st.text(max_size=8)), texts, max_size=5
)
bodies = st.one_of(
    st.tuples(st.just("form"), field_maps),
    st.tuples(st.just("json"), field_maps),
    st.tuples(
        st.just("json-value"),
        st.recursive(
            st.none() | st.booleans() | st.integers() | texts,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
            max_leaves=6,
        ),
    ),
    st.tuples(st.just("raw"), st.binary(max_size=200)),
)


def encode(kind: str, data: Any) -> tuple[bytes, str]:
    if kind == "form":
        pairs = {
            k.encode("utf-8", "surrogatepass"): v.encode("utf-8", "surrogatepass")
            for k, v in data.items()
        }
        return urlencode(pairs).encode(), "application/x-www-form-urlencoded"
    if kind in ("json", "json-value"):
        return json.dumps(data).encode(), "application/json"
    return data, "application/x-www-form-urlencoded"


class Stored:
    """A fingerprint of everything stored in MariaDB."""

    def __init__(self, mysql_url: str) -> None:
        params = parse_mysql_url(mysql_url)
        self.conn = pymysql.connect(**params.pymysql_kwargs(), autocommit=True)

    def snapshot(self) -> tuple[Any, ...]:
        with self.conn.cursor() as cur:
            cur.execute(
                "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', user_id, user_email, "
                "user_password, user_name, sessions_valid_after))), 0) FROM user_login"
            )
            users = cur.fetchone()
            cur.execute(
                "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', status_id, user_id, "
                "user_status))), 0) FROM user_status"
            )
            return (users, cur.fetchone())

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def server(spawn_server) -> ServerProcess:
    return spawn_server(processes=1, args=["--login_max_failures_per_ip=0"])


@pytest.fixture
def stored(mysql_url: str) -> Iterator[Stored]:
    fingerprint = Stored(mysql_url)
    yield fingerprint
    fingerprint.close()


class Visitor:
    """One signed-in account whose session is restored before each example."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.email = f"prop-{secrets.token_hex(6)}@example.com"
        self.client = Client(base_url)
        assert self.client.register("Prop", self.email).status == 201

    def cookies(self, signed_in: bool) -> dict[str, str]:
        if not signed_in:
            fresh = Client(self.base_url)
            fresh.get("/")
            return fresh.cookies
        if self.client.get("/whoami").status != 200:
            self.client = Client(self.base_url)
            reply = self.client.post(
                "/login", {"user_email": self.email, "user_password": PASSWORD}
            )
            assert reply.status == 200, reply.body
        return self.client.cookies


def send(
    base_url: str, method: str, path: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, bytes]:
    host, port = base_url.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def _quoted(text: str) -> str:
    return quote(text.encode("utf-8", "surrogatepass"))


def check(status: int, body: bytes, before: Any, after: Any) -> None:
    assert status < 500, (status, body[:500])
    assert b"Traceback" not in body and b'File "' not in body, body[:500]
    if status >= 400:
        assert after == before, (status, body[:300])


def test_any_post_to_any_route(server, stored):
    visitor = Visitor(server.url)

    @SETTINGS
    @given(
        path=st.sampled_from(POST_ROUTES),
        body=bodies,
        signed_in=st.booleans(),
        as_json=st.booleans(),
    )
    def one(path: str, body: tuple[str, Any], signed_in: bool, as_json: bool) -> None:
        cookies = visitor.cookies(signed_in)
        data, content_type = encode(*body)
        headers = {
            "Content-Type": content_type,
            "Accept": "application/json" if as_json else "text/html",
            "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
            "X-XSRFToken": cookies.get("_xsrf", ""),
        }
        before = stored.snapshot()
        status, reply = send(server.url, "POST", path, data, headers)
        check(status, reply, before, stored.snapshot())

    one()


def test_any_query_to_any_page(server, stored):
    visitor = Visitor(server.url)

    @SETTINGS
    @given(
        path=st.sampled_from(GET_ROUTES),
        query=st.dictionaries(
            st.one_of(st.sampled_from(FIELDS), st.text(max_size=6)), texts, max_size=3
        ),
        signed_in=st.booleans(),
        as_json=st.booleans(),
    )
    def one(path: str, query: dict[str, str], signed_in: bool, as_json: bool) -> None:
        cookies = visitor.cookies(signed_in)
        encoded = "&".join(f"{_quoted(k)}={_quoted(v)}" for k, v in query.items())
        headers = {
            "Accept": "application/json" if as_json else "text/html",
            "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items()),
        }
        before = stored.snapshot()
        status, reply = send(server.url, "GET", f"{path}?{encoded}", None, headers)
        check(status, reply, before, stored.snapshot())

    one()
