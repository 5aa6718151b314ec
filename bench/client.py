"""The benchmark's HTTP client, on httpx (the tests' client library): one connection at
a time, exact request counts.

Used to prepare the benchmark (XSRF cookie, sign-ups) and to send exactly N requests
per route when counting round trips; the load itself comes from wrk. httpx never
retries and never follows redirects here, so every request is sent exactly once. The
benchmark sends its cookies itself (the same values go into wrk's scripts): the
session cookies come from ``response.cookies``, exactly as the server set them.
"""

from __future__ import annotations

from urllib.parse import urlencode

import httpx

from tests.support.http import ssl_context


class HttpError(RuntimeError):
    """The server answered with an unexpected status."""


class Connection:
    """At most one HTTP/1.1 connection, kept alive and reopened when the server closes it."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self._client = httpx.AsyncClient(
            base_url=f"http://{host}:{port}",
            timeout=timeout,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            verify=ssl_context(),  # shared: loading the CA bundle costs 0.1 s of CPU
        )
        for name in ("Accept", "Accept-Encoding"):  # only the headers the caller gives
            del self._client.headers[name]

    async def close(self) -> None:
        await self._client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        return await self._client.request(method, path, headers=headers, content=body)


def form(fields: dict[str, str]) -> bytes:
    """An ``application/x-www-form-urlencoded`` body."""
    return urlencode(fields).encode()


def expect(resp: httpx.Response, *statuses: int) -> httpx.Response:
    """``resp`` if its status is one of ``statuses``, else :class:`HttpError`."""
    if resp.status_code not in statuses:
        raise HttpError(f"HTTP {resp.status_code} (expected {statuses}): {resp.content[:300]!r}")
    return resp
