"""The app runs under the Redis ACL that docs/DEPLOYING.md documents, and needs no more.

``server.py`` (two workers) runs against a private ``redis-server`` started from
``deploy/redis.conf`` whose only enabled user is the documented one: every route
works (register, sign in, pages, statuses, change password, sign out, health check,
the sign-in throttle), and the same user is refused anything else.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.support.http import Client
from tests.support.own_redis import OwnRedis
from tests.support.server_process import start_server

DEPLOYING = Path(__file__).resolve().parents[1] / "docs" / "DEPLOYING.md"
PASSWORD = "correct horse"


def documented_acl_line() -> str:
    """The ``user app ...`` line of docs/DEPLOYING.md, exactly as an operator copies it."""
    lines = [ln.strip() for ln in DEPLOYING.read_text().splitlines()]
    found = [ln for ln in lines if ln.startswith("user app on ")]
    assert len(found) == 1, found
    return found[0]


@pytest.fixture
def acl_redis(tmp_path: Path, redis_prefix: str) -> Iterator[tuple[OwnRedis, str]]:
    secret = secrets.token_hex(16)
    line = documented_acl_line()
    line = line.replace("<PASSWORD>", secret).replace("<PREFIX>", redis_prefix)
    assert "<" not in line, line
    (tmp_path / "users.acl").write_text(f"user default off\n{line}\n")
    server = OwnRedis(tmp_path, "--aclfile", str(tmp_path / "users.acl"))
    server.start(password=("app", secret))
    yield server, secret
    server.stop()


def test_the_app_works_under_the_documented_acl(acl_redis, mysql_url, redis_prefix, tmp_path):
    server, secret = acl_redis
    url = f"redis://app:{secret}@127.0.0.1:{server.port}/0"
    app = start_server(
        mysql_url=mysql_url,
        redis_url=url,
        redis_prefix=redis_prefix,
        log_dir=tmp_path,
        processes=2,
        args=["--login_max_failures=2"],
    )
    try:
        assert Client(app.url).get("/healthz").status == 200
        email = f"acl-{secrets.token_hex(6)}@example.com"
        me = Client(app.url)
        assert me.register("Ann", email).status == 201
        assert me.get("/home").status == 200
        assert me.get("/whoami").status == 200
        assert me.post("/addStatus", {"status": "under an ACL"}).status == 201
        assert me.get("/fetchStatus").status == 200
        changed = me.post(
            "/password", {"current_password": PASSWORD, "new_password": "new horse staple"}
        )
        assert changed.status == 200, changed.body
        other = Client(app.url)
        codes = [other.post("/login", {"user_email": email, "user_password": "wrong horse x"})
                 .status for _ in range(3)]  # fmt: skip
        assert codes == [401, 401, 429]
        assert me.post("/logout").status == 200
        assert me.get("/whoami").status == 401
        log = app.log()
        assert not re.search(r"NOPERM|Traceback", log), log[-3000:]
    finally:
        app.stop()


def test_the_documented_acl_grants_nothing_else(acl_redis, redis_prefix):
    server, secret = acl_redis
    client = redis.Redis(port=server.port, username="app", password=secret)
    with client:
        for command in (
            ("FLUSHALL",),
            ("KEYS", "*"),
            ("CONFIG", "GET", "dir"),
            ("GET", "elsewhere:x"),
            ("HGETALL", "elsewhere:x"),
            ("SET", f"{redis_prefix}sess:x", "1"),
            ("EVAL", "return 1", "0"),
            ("SET", "elsewhere", "1"),
        ):
            with pytest.raises(redis.exceptions.NoPermissionError):
                client.execute_command(*command)
