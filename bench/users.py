"""The benchmark's users: signed up through the app, each with a signed-in session.

Every user is created with ``POST /register`` (so each costs one bcrypt hash at the
server's work factor), which also signs it in: its ``sid`` cookie is the session the
load uses. The ``_xsrf`` cookie from ``GET /`` is shared by every request that needs
one (Tornado compares the header's token with the cookie's).
"""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from bench.client import Connection, expect, form
from sessions.mixin import COOKIE_NAME

JSON = "application/json"


@dataclass(frozen=True)
class User:
    name: str
    email: str
    password: str
    sid: str  # the signed session cookie's value, as the server set it

    def login_form(self) -> dict[str, str]:
        return {"user_email": self.email, "user_password": self.password}


@dataclass(frozen=True)
class Fixture:
    """What the load needs: the XSRF token and the signed-in users."""

    xsrf: str
    users: list[User]

    def cookie(self, user: User | None) -> str:
        if user is None:
            return f"_xsrf={self.xsrf}"
        return f"_xsrf={self.xsrf}; {COOKIE_NAME}={user.sid}"

    def headers(
        self, user: User | None, *, accept: str = JSON, post: bool = False
    ) -> dict[str, str]:
        """Request headers for ``user`` (None: signed out)."""
        headers = {"Accept": accept, "Cookie": self.cookie(user)}
        if post:
            headers["X-XSRFToken"] = self.xsrf
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return headers


async def fetch_xsrf(host: str, port: int) -> str:
    conn = Connection(host, port)
    try:
        resp = expect(await conn.request("GET", "/", {"Accept": JSON}), 200)
    finally:
        await conn.close()
    token = resp.cookies.get("_xsrf")
    if not token:
        raise RuntimeError("GET / set no _xsrf cookie")
    return token


async def register_users(host: str, port: int, count: int, *, parallel: int = 8) -> Fixture:
    """Sign up ``count`` new users (``parallel`` at a time) and keep their sessions."""
    xsrf = await fetch_xsrf(host, port)
    run = secrets.token_hex(4)
    sem = asyncio.Semaphore(parallel)

    async def one(i: int) -> User:
        name, email = f"Bench {i}", f"bench-{run}-{i}@example.com"
        password = f"bench-password-{run}-{i}"
        async with sem:
            conn = Connection(host, port)
            try:
                body = form({"user_name": name, "user_email": email, "user_password": password})
                headers = {
                    "Accept": JSON,
                    "Cookie": f"_xsrf={xsrf}",
                    "X-XSRFToken": xsrf,
                    "Content-Type": "application/x-www-form-urlencoded",
                }
                resp = expect(await conn.request("POST", "/register", headers, body), 201)
            finally:
                await conn.close()
        sid = resp.cookies.get(COOKIE_NAME)
        if not sid:
            raise RuntimeError(f"POST /register set no {COOKIE_NAME} cookie")
        return User(name, email, password, sid)

    users = await asyncio.gather(*(one(i) for i in range(count)))
    return Fixture(xsrf, list(users))
