"""A minimal cookie-keeping HTTP client for tests, like one browser tab.

It keeps the cookies the server sets (and drops those it expires), sends the XSRF
token with every POST (from the ``_xsrf`` cookie, fetched from ``/`` when missing)
unless told not to, and never follows redirects, so tests see every status code.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPResponse


class Browser:
    def __init__(self, client: AsyncHTTPClient, base_url: str) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.cookies: dict[str, str] = {}
        #: Source address of the connections (e.g. "127.0.0.2": another client address).
        self.network_interface: str | None = None

    def _store_cookies(self, response: HTTPResponse) -> None:
        for header in response.headers.get_list("Set-Cookie"):
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if not morsel.value or morsel["max-age"] == "0" or _in_past(morsel["expires"]):
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    async def fetch(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        body: bytes | str | None = None,
        accept_json: bool = False,
        headers: dict[str, str] | None = None,
        xsrf: bool = True,
    ) -> HTTPResponse:
        hdrs = {"Accept": "application/json" if accept_json else "text/html"}
        if method == "POST" and xsrf:
            if "_xsrf" not in self.cookies:
                await self.fetch("GET", "/")
            hdrs["X-XSRFToken"] = self.cookies["_xsrf"]
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        hdrs.update(headers or {})
        if form is not None:
            body = urlencode(form)
        if method == "POST" and body is None:
            body = b""
        response = await self.client.fetch(
            self.base_url + path,
            method=method,
            headers=hdrs,
            body=body,
            follow_redirects=False,
            raise_error=False,
            network_interface=self.network_interface,
        )
        self._store_cookies(response)
        return response

    async def get(self, path: str, **kwargs: Any) -> HTTPResponse:
        return await self.fetch("GET", path, **kwargs)

    async def post(
        self, path: str, form: dict[str, str] | None = None, **kwargs: Any
    ) -> HTTPResponse:
        return await self.fetch("POST", path, form=form, **kwargs)

    async def register(
        self, name: str, email: str, password: str = "correct horse", accept_json: bool = True
    ) -> HTTPResponse:
        return await self.post(
            "/register",
            {"user_name": name, "user_email": email, "user_password": password},
            accept_json=accept_json,
        )

    async def login(
        self, email: str, password: str = "correct horse", accept_json: bool = True
    ) -> HTTPResponse:
        return await self.post(
            "/login", {"user_email": email, "user_password": password}, accept_json=accept_json
        )


def _in_past(expires: str) -> bool:
    if not expires:
        return False
    try:
        return parsedate_to_datetime(expires) < datetime.now(UTC)
    except (TypeError, ValueError):
        return False


def body_json(response: HTTPResponse) -> Any:
    """The decoded JSON body (fails the test if it is not JSON)."""
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    return json.loads(response.body)
