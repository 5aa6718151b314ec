"""Behind nginx the sign-in throttle counts the real client (issue 8, item 2).

``server.py --xheaders`` behind the suite's nginx; clients connect from 127.0.0.2 and
127.0.0.3. Failures from the first lock only the first's (account, address) pair:
the owner, from the other address, still signs in.
"""

from __future__ import annotations

import hashlib
import secrets

import pytest
import redis

from tests.test_nginx import Client, stack, start_nginx  # noqa: F401 (fixtures)

PASSWORD = "correct horse battery"


def test_the_throttle_counts_the_client_behind_nginx_not_nginx(
    request: pytest.FixtureRequest, redis_url: str, redis_prefix: str
) -> None:
    _app, nginx = request.getfixturevalue("stack")  # tests.test_nginx's app behind nginx
    email = f"behind-{secrets.token_hex(6)}@example.com"
    owner = Client(nginx.http_url, source_ip="127.0.0.3")
    assert owner.request("GET", "/").status == 200
    form = {"user_name": "Ann", "user_email": email, "user_password": PASSWORD}
    assert owner.request("POST", "/register", form=form).status == 201
    assert owner.request("POST", "/logout").status == 200

    attacker = Client(nginx.http_url, source_ip="127.0.0.2")
    assert attacker.request("GET", "/").status == 200
    wrong = {"user_email": email, "user_password": "wrong horse battery"}
    codes = [attacker.request("POST", "/login", form=wrong).status for _ in range(11)]
    assert codes == [401] * 10 + [429]

    right = {"user_email": email, "user_password": PASSWORD}
    assert owner.request("POST", "/login", form=right).status == 200
    account = hashlib.sha256(email.encode()).hexdigest()[:32]
    with redis.Redis.from_url(redis_url, decode_responses=True) as client:
        keys = client.keys(f"{redis_prefix}throttle:{{login}}:pair:{account}:*")
    assert [k.rsplit(":", 1)[1] for k in keys] == ["127.0.0.2"]  # never nginx's 127.0.0.1
