"""Blocking HTTP for tests against real server processes: one new connection a request.

A new connection per request is what lets requests reach every forked worker (a
kept-alive connection stays with the worker that accepted it).
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import urlencode, urlsplit


@dataclass
class Reply:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def served_by(self) -> str:
        return self.headers["X-Served-By"]

    @property
    def pid(self) -> int:
        return int(self.served_by.rsplit(":", 1)[-1])


@dataclass
class Client:
    """Like a browser: keeps cookies, sends the XSRF token, prefers JSON by default."""

    base_url: str
    cookies: dict[str, str] = field(default_factory=dict)

    def request(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None = None,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> Reply:
        parts = urlsplit(self.base_url)
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        hdrs = {"Accept": "application/json"}
        if method == "POST":
            if "_xsrf" not in self.cookies:
                self.request("GET", "/")
            hdrs["X-XSRFToken"] = self.cookies["_xsrf"]
            hdrs["Content-Type"] = "application/x-www-form-urlencoded"
        if self.cookies:
            hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        hdrs.update(headers or {})
        body = urlencode(form) if form is not None else ("" if method == "POST" else None)
        try:
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            reply = Reply(resp.status, resp.headers, resp.read())
        finally:
            conn.close()
        for header in reply.headers.get_all("Set-Cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel.value:
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return reply

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, form: dict[str, str] | None = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, form, **kwargs)

    def register(self, name: str, email: str, password: str = "correct horse") -> Reply:
        return self.post(
            "/register", {"user_name": name, "user_email": email, "user_password": password}
        )
