"""One worker process: its event loop, resources and HTTP server, and a graceful stop.

On SIGTERM (or SIGINT) the worker stops accepting connections, lets the requests in
flight finish (at most ``DRAIN_SECONDS``), closes the remaining connections, its Redis
client, MariaDB pool and thread pool, and exits with status 0.

The server counts the requests in flight itself (:class:`CountingHTTPServer`): from
their headers arriving until their response is finished, whatever handler serves them.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
from typing import Any

from tornado import httputil
from tornado.httpserver import HTTPServer

from application import make_app
from resources import create_resources
from settings import AppConfig

log = logging.getLogger("app")
DRAIN_SECONDS = 10.0
MAX_CONNECTION_BODY = 1024 * 1024  # hard cap per request; the app answers 413 above 64 KB


class CountingHTTPServer(HTTPServer):
    """An ``HTTPServer`` that knows how many requests are in flight, for the drain."""

    def initialize(self, *args: Any, **kwargs: Any) -> None:
        super().initialize(*args, **kwargs)
        self.inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def start_request(
        self, server_conn: object, request_conn: httputil.HTTPConnection
    ) -> httputil.HTTPMessageDelegate:
        tracked = _TrackedConnection(request_conn, self)
        return _TrackedMessage(super().start_request(server_conn, tracked), tracked)

    def request_started(self) -> None:
        self.inflight += 1
        self._idle.clear()

    def request_finished(self) -> None:
        self.inflight -= 1
        if self.inflight <= 0:
            self._idle.set()

    async def wait_idle(self, within: float) -> bool:
        """Wait until no request is in flight; False if some still run after ``within`` s."""
        try:
            await asyncio.wait_for(self._idle.wait(), within)
        except TimeoutError:
            return False
        return True


class _TrackedConnection:
    """The request's connection as the application sees it: counts ``finish()``."""

    def __init__(self, conn: httputil.HTTPConnection, server: CountingHTTPServer) -> None:
        self._conn = conn
        self._server = server
        self.counted = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def start(self) -> None:
        self.counted = True
        self._server.request_started()

    def done(self) -> None:
        if self.counted:
            self.counted = False
            self._server.request_finished()

    def finish(self) -> None:
        try:
            self._conn.finish()
        finally:
            self.done()


class _TrackedMessage(httputil.HTTPMessageDelegate):
    """Counts a request from its headers; uncounts it if the client goes before it ran."""

    def __init__(self, inner: httputil.HTTPMessageDelegate, conn: _TrackedConnection) -> None:
        self._inner = inner
        self._conn = conn

    def headers_received(
        self,
        start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
        headers: httputil.HTTPHeaders,
    ) -> Any:
        self._conn.start()
        return self._inner.headers_received(start_line, headers)

    def data_received(self, chunk: bytes) -> Any:
        return self._inner.data_received(chunk)

    def finish(self) -> None:
        self._inner.finish()  # the handler runs now and ends with the connection's finish()

    def on_connection_close(self) -> None:
        try:
            self._inner.on_connection_close()
        finally:
            self._conn.done()  # closed before the request was complete: it never ran


async def serve(
    config: AppConfig,
    sockets: list[socket.socket],
    dummy_hash: bytes,
    *,
    xheaders: bool,
) -> None:
    """Serve on ``sockets`` until SIGTERM/SIGINT, then drain and return."""
    resources = create_resources(config, dummy_hash)
    app = make_app(config, resources)
    server = CountingHTTPServer(
        app,
        xheaders=xheaders,
        max_body_size=MAX_CONNECTION_BODY,
        idle_connection_timeout=75,  # longer than nginx's upstream keep-alive
        body_timeout=30,
    )
    server.add_sockets(sockets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker %s serving", resources.served_by)
    await stop.wait()
    for sig in (signal.SIGTERM, signal.SIGINT):
        # Already stopping: a second signal must not kill the drain. Ctrl-C reaches the
        # whole process group and the supervisor forwards SIGTERM too, so two come.
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)

    log.info("worker %s stopping: %d request(s) in flight", resources.served_by, server.inflight)
    server.stop()
    if not await server.wait_idle(DRAIN_SECONDS):
        log.warning(
            "worker %s: %d request(s) still running after %.0f s, closing",
            resources.served_by,
            server.inflight,
            DRAIN_SECONDS,
        )
    try:
        await asyncio.wait_for(server.close_all_connections(), 2)
    except TimeoutError:
        log.warning("worker %s: connections did not close in time", resources.served_by)
    await resources.close()
    log.info("worker %s stopped", resources.served_by)
