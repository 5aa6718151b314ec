"""HTTP for one virtual user: its own cookie jar, new connections over time, timing.

Each :class:`UserClient` owns an ``aiohttp`` cookie jar (``unsafe=True`` so cookies work
for IP targets such as ``127.0.0.1``) and a client session whose connector holds at most
one connection. After every ``new_connection_every`` requests, and after any transport
error, the session is closed and a new one opened on the same jar, so the next request
arrives on a new TCP connection. A kept-alive connection stays on the process that
accepted it; new connections are what spread one user over the server's processes.

Requests go only to the configured base URL and redirects are never followed. Every
finished request, failed or not, is recorded in :class:`~loadtest.stats.RunStats`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from types import SimpleNamespace, TracebackType

import aiohttp

from loadtest.stats import RunStats

USER_AGENT = "loadtest/1.0 (+aiohttp)"


@dataclass(frozen=True)
class Reply:
    """The outcome of one request: a response, or the transport error that replaced it."""

    route: str
    status: int | None
    body: object
    served_by: str | None
    location: str | None
    error: str | None
    latency: float
    at: float

    @property
    def message(self) -> object:
        """``message`` of the app's JSON envelope, or None."""
        return self.body.get("message") if isinstance(self.body, dict) else None

    @property
    def outcome(self) -> str:
        return str(self.status) if self.status is not None else (self.error or "error")


class UserClient:
    """A browser-like HTTP client for one virtual user (use with ``async with``)."""

    def __init__(
        self,
        base_url: str,
        stats: RunStats,
        clock: Callable[[], float],
        *,
        new_connection_every: int,
        timeout: float,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.stats = stats
        self.clock = clock
        self.new_connection_every = new_connection_every
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.jar = aiohttp.CookieJar(unsafe=True)
        self._session: aiohttp.ClientSession | None = None
        self._used = 0
        self._trace = aiohttp.TraceConfig()
        self._trace.on_connection_create_end.append(self._connection_opened)

    async def __aenter__(self) -> UserClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _connection_opened(
        self, session: aiohttp.ClientSession, ctx: SimpleNamespace, params: object
    ) -> None:
        self.stats.connections_opened += 1

    async def _current(self) -> aiohttp.ClientSession:
        every = self.new_connection_every
        if self._session is not None and every > 0 and self._used >= every:
            await self.close()
        if self._session is None:
            self._used = 0
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1, force_close=every == 1),
                cookie_jar=self.jar,
                timeout=self.timeout,
                headers={"Accept": "application/json", "User-Agent": USER_AGENT},
                trace_configs=[self._trace],
            )
        self._used += 1
        return self._session

    def cookie(self, name: str) -> str | None:
        """The current value of cookie ``name`` for the target, if the jar holds one."""
        for morsel in self.jar:
            if morsel.key == name:
                return morsel.value
        return None

    async def request(
        self,
        method: str,
        path: str,
        route: str,
        *,
        expect: Collection[int],
        data: Mapping[str, str] | None = None,
        cookies: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send one request to ``base_url + path`` and record it under ``route``.

        A status outside ``expect`` and any transport error count as errors. POSTs carry
        the ``_xsrf`` cookie's value in ``X-XSRFToken``, as Tornado requires.
        """
        headers = {}
        if method != "GET":
            token = self.cookie("_xsrf")
            if token:
                headers["X-XSRFToken"] = token
        session = await self._current()
        started = time.perf_counter()
        status: int | None = None
        body: object = None
        served_by = location = error = None
        try:
            async with session.request(
                method,
                self.base_url + path,
                data=data,
                headers=headers,
                cookies=cookies,
                allow_redirects=False,
            ) as response:
                raw = await response.read()
                status = response.status
                served_by = response.headers.get("X-Served-By")
                location = response.headers.get("Location")
                body = _parse_json(raw)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            error = type(exc).__name__
            await self.close()  # start over on a new connection
        latency = time.perf_counter() - started
        at = self.clock()
        is_error = status is None or status not in expect
        reply = Reply(route, status, body, served_by, location, error, latency, at)
        self.stats.record(route, at, latency, reply.outcome, is_error, served_by)
        return reply


def _parse_json(raw: bytes) -> object:
    if not raw or raw[:1] not in (b"{", b"["):
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None
