"""Clients that sign in continuously, each sign-in on a new connection (asyncio).

The storm runs in a thread of its own (with its own event loop) while wrk probes the
server. Every answer is recorded with the time it arrived, its status and the worker
that served it (``X-Served-By``), so the sign-in rate can be taken over exactly the
probe's window, not diluted by the storm's start (the first hashes take a while to
finish) or its end. ``stop()`` lets the sign-ins in flight finish: afterwards the
server has no queued hashing left to disturb what is measured next.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import httpx

from bench.client import Connection, form
from bench.users import Fixture


@dataclass(frozen=True)
class Answer:
    at: float  # time.monotonic() when the answer arrived
    status: int  # 0: no answer (connection error or timeout)
    served_by: str


@dataclass
class StormStats:
    """The sign-ins answered within a window."""

    answers: list[Answer] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> int:
        return sum(1 for a in self.answers if 200 <= a.status < 300)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    @property
    def failures(self) -> Counter[int]:
        return Counter(a.status for a in self.answers if not 200 <= a.status < 300)

    @property
    def per_worker(self) -> dict[str, int]:
        return dict(Counter(a.served_by for a in self.answers if a.served_by))


class LoginStorm:
    def __init__(
        self, host: str, port: int, fixture: Fixture, clients: int, timeout: float = 120.0
    ) -> None:
        self.host, self.port, self.fx, self.clients = host, port, fixture, clients
        self.timeout = timeout
        self.answers: list[Answer] = []
        self.started_at = 0.0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> None:
        self.started_at = time.monotonic()
        self._thread.start()

    def stop(self) -> None:
        """Stop starting sign-ins and wait for those in flight."""
        self._stopping.set()
        self._thread.join(self.timeout + 10)

    def window(self, start: float, end: float) -> StormStats:
        """Answers that arrived between two ``time.monotonic()`` instants."""
        return StormStats([a for a in self.answers if start <= a.at < end], end - start)

    async def _main(self) -> None:
        await asyncio.gather(*(self._client(i) for i in range(self.clients)))

    async def _client(self, index: int) -> None:
        users = self.fx.users
        headers = {**self.fx.headers(None, post=True), "Connection": "close"}
        k = 0
        while not self._stopping.is_set():
            user = users[(index + k * self.clients) % len(users)]
            k += 1
            conn = Connection(self.host, self.port, timeout=self.timeout)
            try:
                resp = await conn.request("POST", "/login", headers, form(user.login_form()))
                answer = Answer(
                    time.monotonic(), resp.status_code, resp.headers.get("X-Served-By", "")
                )
            except httpx.TransportError:  # refused, reset, timed out
                answer = Answer(time.monotonic(), 0, "")
            finally:
                await conn.close()
            self.answers.append(answer)  # list.append is atomic: read after stop()
