"""A minimal asyncio HTTP/1.1 client: one kept-alive connection, exact request counts.

Used to prepare the benchmark (XSRF cookie, sign-ups) and to send exactly N requests
per route when counting round trips; the load itself comes from wrk. It speaks just
enough HTTP for this app: Content-Length or chunked bodies, no redirects followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), None)

    def set_cookies(self) -> dict[str, str]:
        """``name -> value`` of each Set-Cookie, the value exactly as sent."""
        out = {}
        for key, value in self.headers:
            if key.lower() == "set-cookie":
                pair = value.split(";", 1)[0]
                name, _, val = pair.partition("=")
                out[name.strip()] = val.strip()
        return out

    def json(self) -> Any:
        return json.loads(self.body)


class HttpError(RuntimeError):
    """The server answered with an unexpected status."""


class Connection:
    """One HTTP/1.1 connection, reopened when the server closes it."""

    def __init__(self, host: str, port: int, *, timeout: float = 30.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(OSError):
                await self._writer.wait_closed()
        self._reader = self._writer = None

    async def request(
        self,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        return await asyncio.wait_for(
            self._request(method, path, headers or {}, body), self.timeout
        )

    async def _request(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None
    ) -> Response:
        if self._writer is None:
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        assert self._reader is not None
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        if body is not None or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body or b'')}")
        self._writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        head = await self._reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")[:-2]
        resp = Response(int(status_line.split()[1]))
        for line in header_lines:
            name, _, value = line.partition(":")
            resp.headers.append((name.strip(), value.strip()))
        length = resp.header("Content-Length")
        if length is not None:
            resp.body = await self._reader.readexactly(int(length))
        elif (resp.header("Transfer-Encoding") or "").lower() == "chunked":
            resp.body = await self._read_chunked()
        if (resp.header("Connection") or "").lower() == "close":
            await self.close()
        return resp

    async def _read_chunked(self) -> bytes:
        assert self._reader is not None
        parts = []
        while True:
            size = int((await self._reader.readline()).split(b";")[0].strip(), 16)
            if size == 0:
                await self._reader.readline()
                return b"".join(parts)
            parts.append(await self._reader.readexactly(size))
            await self._reader.readline()


def form(fields: dict[str, str]) -> bytes:
    """An ``application/x-www-form-urlencoded`` body."""
    return urlencode(fields).encode()


def expect(resp: Response, *statuses: int) -> Response:
    """``resp`` if its status is one of ``statuses``, else :class:`HttpError`."""
    if resp.status not in statuses:
        raise HttpError(f"HTTP {resp.status} (expected {statuses}): {resp.body[:300]!r}")
    return resp
