"""A cookie-keeping HTTP client for tests of the app served in-process, like one browser tab.

On httpx (like ``tests.support.http.Client``): its cookie jar keeps the cookies the
server sets and drops those it expires. It sends the XSRF token with every POST (from
the ``_xsrf`` cookie, fetched from ``/`` when missing) unless told not to, and never
follows redirects, so tests see every status code. Each browser has its own connection
pool and jar; the fixtures close them.
"""

from __future__ import annotations

import http.cookiejar
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.support.http import CookieTab, WithCookies, ssl_context


@dataclass
class Response:
    """A response as the tests read it: ``code``, ``headers`` (httpx's), ``body``."""

    code: int
    headers: httpx.Headers
    body: bytes


class Browser(WithCookies):
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._jar = http.cookiejar.CookieJar()  # one jar, whatever address is used
        self._cookies = CookieTab(httpx.Cookies(self._jar), self.base_url)
        self._clients: dict[str | None, httpx.AsyncClient] = {}
        #: Source address of the connections (e.g. "127.0.0.2": another client address).
        self.network_interface: str | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The httpx client (and connection pool) of the current ``network_interface``."""
        address = self.network_interface
        if address not in self._clients:
            transport = httpx.AsyncHTTPTransport(verify=ssl_context(), local_address=address)
            client = httpx.AsyncClient(transport=transport, cookies=self._jar, timeout=30)
            del client.headers["Accept"]  # every request says what it accepts, or nothing
            self._clients[address] = client
        return self._clients[address]

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()

    async def fetch(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        body: bytes | str | None = None,
        accept_json: bool = False,
        headers: Mapping[str, str | None] | None = None,
        xsrf: bool = True,
    ) -> Response:
        """``headers`` override the browser's; a header given as None is not sent."""
        hdrs: dict[str, str | None] = {"Accept": "application/json" if accept_json else "text/html"}
        if method == "POST" and xsrf:
            if "_xsrf" not in self.cookies:
                await self.fetch("GET", "/")
            hdrs["X-XSRFToken"] = self.cookies["_xsrf"]
        if method == "POST":
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        hdrs.update(self.cookies.header())
        hdrs.update(headers or {})
        if form is not None:
            body = urlencode(form)
        if method == "POST" and body is None:
            body = b""
        response = await self.client.request(
            method,
            self.base_url + path,
            # Latin-1, as HTTP/1.1 sends header bytes (httpx takes only ASCII text)
            headers={k: v.encode("latin-1") for k, v in hdrs.items() if v is not None},
            content=body,
        )
        return Response(response.status_code, response.headers, response.content)

    async def get(self, path: str, **kwargs: Any) -> Response:
        return await self.fetch("GET", path, **kwargs)

    async def post(self, path: str, form: dict[str, str] | None = None, **kwargs: Any) -> Response:
        return await self.fetch("POST", path, form=form, **kwargs)

    async def register(
        self, name: str, email: str, password: str = "correct horse", accept_json: bool = True
    ) -> Response:
        return await self.post(
            "/register",
            {"user_name": name, "user_email": email, "user_password": password},
            accept_json=accept_json,
        )

    async def login(
        self, email: str, password: str = "correct horse", accept_json: bool = True
    ) -> Response:
        return await self.post(
            "/login", {"user_email": email, "user_password": password}, accept_json=accept_json
        )


def body_json(response: Response) -> Any:
    """The decoded JSON body (fails the test if it is not JSON)."""
    assert response.headers["Content-Type"].startswith("application/json"), response.headers
    return json.loads(response.body)
