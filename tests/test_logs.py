"""Structured logs: one line per request, session events and throttling, as JSON or logfmt.

The application runs in-process with the access log on; a handler with the app's
formatter on the root logger collects every line, which the tests parse as a log
shipper would.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import shlex
import subprocess
import sys

import pytest
from tornado.web import decode_signed_value

from observability.logs import StructuredFormatter
from sessions import Locator
from sessions.ids import sid_digest
from tests.support.server_process import REPO_ROOT

PASSWORD = "correct horse battery"


class Lines:
    """Every log line written while the test runs, in one format."""

    def __init__(self, fmt: str) -> None:
        self.fmt = fmt
        self.stream = io.StringIO()
        self.handler = logging.StreamHandler(self.stream)
        self.handler.setFormatter(StructuredFormatter(fmt))

    def raw(self) -> str:
        return self.stream.getvalue()

    def records(self) -> list[dict[str, object]]:
        lines = self.raw().splitlines()
        if self.fmt == "json":
            return [json.loads(line) for line in lines]
        return [dict(part.partition("=")[::2] for part in shlex.split(line)) for line in lines]

    def events(self, event: str) -> list[dict[str, object]]:
        return [r for r in self.records() if r["event"] == event]


@pytest.fixture(params=["json"])
def lines(request):
    collected = Lines(request.param)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(collected.handler)
    root.setLevel(logging.INFO)
    yield collected
    root.removeHandler(collected.handler)
    root.setLevel(old_level)


@pytest.fixture
def xheaders(request):
    return getattr(request, "param", False)


@pytest.fixture
def app_config(app_config, xheaders):
    serving = dataclasses.replace(app_config.serving, xheaders=xheaders)
    return dataclasses.replace(app_config, access_log=True, serving=serving)


def locator_of(browser, app_config):
    raw = decode_signed_value(
        app_config.cookie_secrets, "sid", browser.cookies["sid"], min_version=2
    )
    return Locator.parse(raw)


@pytest.mark.gen_test
async def test_one_json_line_per_request_with_its_fields(browser, lines, unique_email, app_config):
    email = unique_email()
    assert (await browser.register("Ann", email, PASSWORD)).code == 201
    loc = locator_of(browser, app_config)
    response = await browser.get("/fetchStatus?limit=5&token=hush-secret", accept_json=True)
    assert response.code == 200

    [line] = [r for r in lines.events("request") if r["route"] == "/fetchStatus"]
    assert line["logger"] == "app.access" and line["level"] == "info"
    assert line["request_id"] == response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{16}", line["request_id"])
    assert line["method"] == "GET" and line["status"] == 200 and line["path"] == "/fetchStatus"
    assert isinstance(line["duration_ms"], float) and 0 <= line["duration_ms"] < 5000
    assert line["pid"] > 0 and line["client"] == "127.0.0.1"
    assert line["sid"] == sid_digest(loc.sid) and line["user_id"] == loc.user_id
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"])

    # Never the session id, the password or the query string's secrets.
    raw = lines.raw()
    assert loc.sid not in raw and browser.cookies["sid"] not in raw
    assert PASSWORD not in raw and "hush-secret" not in raw

    # Each request its own id; unknown paths logged under one route.
    assert (await browser.get("/no/such/page")).code == 404
    routes = [(r["route"], r["status"]) for r in lines.events("request")]
    assert ("(not found)", 404) in routes and ("/register", 201) in routes
    ids = [r["request_id"] for r in lines.events("request")]
    assert len(ids) == len(set(ids))


@pytest.mark.gen_test
async def test_session_events_carry_the_request_id(browser, lines, unique_email, app_config):
    email = unique_email()
    registered = await browser.register("Bo", email, PASSWORD)
    first = locator_of(browser, app_config)
    login = await browser.login(email, PASSWORD)
    second = locator_of(browser, app_config)
    logout = await browser.post("/logout", accept_json=True)
    assert (registered.code, login.code, logout.code) == (201, 200, 200)

    created = lines.events("session_created")
    ended = lines.events("session_ended")
    assert [c["sid"] for c in created] == [sid_digest(first.sid), sid_digest(second.sid)]
    assert created[0]["request_id"] == registered.headers["X-Request-Id"]
    assert [(e["reason"], e["sid"]) for e in ended] == [
        ("rotated", sid_digest(first.sid)),
        ("logout", sid_digest(second.sid)),
    ]
    assert ended[1]["request_id"] == logout.headers["X-Request-Id"]
    assert all(e["logger"] == "app.sessions" for e in created + ended)


@pytest.mark.gen_test
async def test_throttled_sign_ins_are_logged(browser, lines, unique_email):
    email = unique_email()
    await browser.register("Cy", email, PASSWORD)
    await browser.post("/logout", accept_json=True)
    codes = [(await browser.login(email, "wrong password!")).code for _ in range(4)]
    assert codes[-1] == 429, codes
    [throttled] = lines.events("throttled")[:1]
    assert throttled["level"] == "warning" and throttled["route"] == "/login"
    assert throttled["client"] == "127.0.0.1" and int(throttled["retry_after"]) > 0
    assert "wrong password!" not in lines.raw() and email not in lines.raw()


@pytest.mark.parametrize("lines", ["logfmt"], indirect=True)
@pytest.mark.gen_test
async def test_logfmt_lines(browser, lines):
    response = await browser.get("/", headers={"X-Request-Id": "from-the-client"})
    assert response.code == 200
    [line] = lines.events("request")
    raw = lines.raw().splitlines()[-1]
    assert raw.startswith("time=") and " event=request " in raw and " route=/ " in raw
    assert line["status"] == "200" and line["method"] == "GET" and line["sid"] == ""
    # Without --xheaders the client's id is not trusted.
    assert line["request_id"] == response.headers["X-Request-Id"] != "from-the-client"


@pytest.mark.parametrize("xheaders", [True], indirect=True)
@pytest.mark.gen_test
async def test_incoming_request_id_kept_behind_a_trusted_proxy(xheaders, browser, lines):
    response = await browser.get("/", headers={"X-Request-Id": "nginx-1234abcd"})
    assert response.headers["X-Request-Id"] == "nginx-1234abcd"
    bad = await browser.get("/", headers={"X-Request-Id": "no spaces\tor tabs"})
    assert re.fullmatch(r"[0-9a-f]{16}", bad.headers["X-Request-Id"])
    assert lines.events("request")[0]["request_id"] == "nginx-1234abcd"


def test_formatter_renders_extra_fields_and_errors():
    record = logging.LogRecord("app", logging.ERROR, __file__, 1, "boom %s", ("now",), None)
    record.fields = {"note": 'with "quotes" and spaces', "n": 3, "flag": True}
    as_json = json.loads(StructuredFormatter("json").format(record))
    assert as_json["event"] == "boom now" and as_json["n"] == 3 and as_json["level"] == "error"
    as_logfmt = StructuredFormatter("logfmt").format(record)
    assert 'note="with \\"quotes\\" and spaces"' in as_logfmt and "flag=true" in as_logfmt
    with pytest.raises(ValueError, match="json, logfmt"):
        StructuredFormatter("xml")


@pytest.mark.parametrize(
    "option, message",
    [
        ("--log_format=xml", "--log_format must be json or logfmt"),
        ("--metrics_port=70000", "--metrics_port must be a port number"),
    ],
)
def test_server_refuses_bad_operations_options(tmp_path, option, message):
    out = subprocess.run(
        [sys.executable, str(REPO_ROOT / "server.py"), option,
         f"--cookie_secret_file={tmp_path / 's'}"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=30, check=False,
    )  # fmt: skip
    assert out.returncode == 2 and message in out.stderr, out.stderr
    assert "Traceback" not in out.stderr
