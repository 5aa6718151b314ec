"""The tests' HTTP client, on httpx: cookies kept by httpx's cookie jar, no hand parsing.

:class:`Client` (blocking) talks to real server processes, through nginx or directly,
over HTTP or HTTPS, and opens a new connection for every request: that is what lets
requests reach every forked worker (a kept-alive connection stays with the worker that
accepted it). ``tests.support.browser.Browser`` is its asynchronous sibling for the
app served in-process. Both keep a tab's cookies in :class:`CookieTab`, a ``name ->
value`` view of the jar that tests may read and change like a dict.
"""

from __future__ import annotations

import functools
import http.cookiejar
import json
import logging
import ssl
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
from tornado.httputil import parse_cookie

# httpx logs every request at INFO ("HTTP Request: GET ..."): the tests read the app's
# own log lines, which must not be mixed with the client's.
logging.getLogger("httpx").setLevel(logging.WARNING)


@functools.cache
def ssl_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """One verifying context per CA file, shared: httpx would otherwise load the CA
    bundle again for every client (about 0.1 s each)."""
    return ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))


class CookieTab(MutableMapping[str, str]):
    """The cookies one tab holds for one host, as ``name -> value``.

    Reading and deleting see the jar as httpx keeps it (expired and cleared cookies are
    gone); setting stores a host-only cookie for the host, as a server's would be.
    ``header()`` is the ``Cookie`` header the tab sends: every cookie it holds, ``Secure``
    ones included, because tests talk to the app directly as the proxy in front of it
    would (httpx itself would hold ``Secure`` cookies back over plain HTTP).
    """

    def __init__(self, jar: httpx.Cookies, url: str) -> None:
        self._jar = jar
        host = urlsplit(url).hostname or ""
        # http.cookiejar files a host-only cookie under the host, ".local" added when
        # the name has no dot ("localhost" -> "localhost.local").
        self._domain = host if "." in host else host + ".local"

    def _named(self, name: str) -> list[http.cookiejar.Cookie]:
        return [c for c in self._jar.jar if c.name == name]

    def __getitem__(self, name: str) -> str:
        found = self._named(name)
        if not found:
            raise KeyError(name)
        # The value as the server meant it: a quoted value ("2|1:...==|...") unquoted.
        return parse_cookie(f"{name}={found[-1].value or ''}").get(name, "")

    def __setitem__(self, name: str, value: str) -> None:
        self.pop(name, None)
        self._jar.jar.set_cookie(
            http.cookiejar.Cookie(
                version=0, name=name, value=value, port=None, port_specified=False,
                domain=self._domain, domain_specified=False, domain_initial_dot=False,
                path="/", path_specified=True, secure=False, expires=None, discard=True,
                comment=None, comment_url=None, rest={},
            )
        )  # fmt: skip

    def __delitem__(self, name: str) -> None:
        found = self._named(name)
        if not found:
            raise KeyError(name)
        for cookie in found:
            self._jar.jar.clear(cookie.domain, cookie.path, cookie.name)

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys(c.name for c in self._jar.jar))

    def __len__(self) -> int:
        return len(dict.fromkeys(c.name for c in self._jar.jar))

    def __repr__(self) -> str:
        return f"CookieTab({dict(self)!r})"

    def header(self) -> dict[str, str]:
        """``{"Cookie": ...}`` with every cookie of the tab, or ``{}`` when it has none."""
        pairs = {c.name: c.value or "" for c in self._jar.jar}  # as the server set them
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in pairs.items())} if pairs else {}


def set_cookies(response: httpx.Response) -> dict[str, dict[str, object]]:
    """The cookies ``response`` sets (not those it deletes), with their attributes:
    ``value``, ``path``, and ``secure``, ``httponly``, ``samesite`` when present."""
    jar = httpx.Cookies()
    jar.extract_cookies(response)
    found: dict[str, dict[str, object]] = {}
    for cookie in jar.jar:
        value = parse_cookie(f"{cookie.name}={cookie.value or ''}").get(cookie.name, "")
        attrs: dict[str, object] = {"value": value, "path": cookie.path}
        if cookie.secure:
            attrs["secure"] = True
        if cookie.has_nonstandard_attr("HttpOnly"):
            attrs["httponly"] = True
        if cookie.has_nonstandard_attr("SameSite"):
            attrs["samesite"] = cookie.get_nonstandard_attr("SameSite")
        found[cookie.name] = attrs
    return found


class WithCookies:
    """``cookies``: a client's cookies for its site; assigning replaces them all."""

    _cookies: CookieTab

    @property
    def cookies(self) -> CookieTab:
        return self._cookies

    @cookies.setter
    def cookies(self, values: Mapping[str, str]) -> None:
        self._cookies.clear()
        self._cookies.update(values)


class Headers(httpx.Headers):
    """httpx's headers, plus ``get_all`` (every value of a header, or None)."""

    def get_all(self, name: str) -> list[str] | None:
        return self.get_list(name) or None


@dataclass
class Reply:
    status: int
    headers: Headers
    body: bytes  # as sent: not decompressed
    cookies: dict[str, dict[str, object]]  # what this reply set (see set_cookies)

    def json(self) -> Any:
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return self.headers.get(name)

    @property
    def served_by(self) -> str:
        return self.headers["X-Served-By"]

    @property
    def pid(self) -> int:
        return int(self.served_by.rsplit(":", 1)[-1])


class Client(WithCookies):
    """Like a browser: keeps cookies, sends the XSRF token, prefers JSON by default.

    ``ca_file`` verifies HTTPS against that CA; ``source_ip`` picks the local address
    (any of 127.0.0.0/8) the connections come from.
    """

    def __init__(
        self,
        base_url: str,
        cookies: Mapping[str, str] | None = None,
        *,
        ca_file: Path | None = None,
        source_ip: str | None = None,
    ) -> None:
        self.base_url = base_url
        self.ca_file, self.source_ip = ca_file, source_ip
        transport = httpx.HTTPTransport(
            verify=ssl_context(ca_file),
            local_address=source_ip,
            limits=httpx.Limits(max_keepalive_connections=0),  # a new connection each time
        )
        self._http = httpx.Client(transport=transport, timeout=30)
        self._http.headers.update({"Accept-Encoding": "identity", "Connection": "close"})
        self._cookies = CookieTab(self._http.cookies, base_url)
        self._cookies.update(cookies or {})

    def request(
        self,
        method: str,
        path: str,
        form: Mapping[str, str] | None = None,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        json_reply: bool = True,
        timeout: float = 30,
    ) -> Reply:
        sent = {"Accept": "application/json" if json_reply else "*/*", **self.cookies.header()}
        if method == "POST":
            if "_xsrf" not in self.cookies:
                self.request("GET", "/")
            sent["X-XSRFToken"] = self.cookies["_xsrf"]
        if form is not None:
            body = urlencode(form).encode()
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is None and method == "POST":
            body = b""
        sent.update(headers or {})
        with self._http.stream(
            method,
            self.base_url + path,
            content=body,
            # Latin-1, as HTTP/1.1 sends header bytes (httpx takes only ASCII text)
            headers={k: v.encode("latin-1") for k, v in sent.items()},
            timeout=timeout,
        ) as resp:
            data = b"".join(resp.iter_raw())
        return Reply(resp.status_code, Headers(resp.headers), data, set_cookies(resp))

    def get(self, path: str, **kwargs: Any) -> Reply:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, form: Mapping[str, str] | None = None, **kwargs: Any) -> Reply:
        return self.request("POST", path, form, **kwargs)

    def register(self, name: str, email: str, password: str = "correct horse") -> Reply:
        return self.post(
            "/register", {"user_name": name, "user_email": email, "user_password": password}
        )

    def close(self) -> None:
        self._http.close()
