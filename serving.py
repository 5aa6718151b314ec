"""The serving core, shared by ``server.py`` and the benchmark's hello world.

Written once here: binding the listening sockets (with ``--backlog``, and with
``--reuse_port`` one ``SO_REUSEPORT`` socket per worker), forking the workers
(:mod:`supervisor`), the ``HTTPServer`` settings, and the graceful drain.

Binding happens before forking, so a taken port fails once, with a clear message. Each
worker then runs its own event loop (``asyncio.run``) and calls the caller's
``worker_main(sockets)``, which builds its application and awaits :func:`serve_http`.

The graceful stop: SIGTERM or SIGINT to the parent closes its copies of the listening
sockets and passes SIGTERM to each worker; each worker closes its own copies at once
(so, with every copy closed, new connections are refused rather than queued where no
one will accept them), lets the requests in flight finish (at most ``DRAIN_SECONDS``),
closes the remaining connections and returns. A worker notes a stop signal from the
moment it is forked (:func:`catch_stop_early`): one that comes while it is still
starting up stops it, with the same logged drain, as soon as it serves.

Every worker also keeps the formatted ``Date`` header for the current second
(:func:`cache_http_date`): Tornado formats it afresh for every response, a measurable
share of a small request's CPU, for the app and the hello world alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from tornado import httputil
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.options import OptionParser

from supervisor import STOP_SIGNALS, Supervisor

log = logging.getLogger("app")

DRAIN_SECONDS = 10.0
CLOSE_SECONDS = 2.0
#: Hard cap on one request's body, checked by the HTTP server before any handler runs.
#: The application's own limit (413 with a message) is lower: ``limits.MAX_BODY_BYTES``.
MAX_CONNECTION_BODY = 1024 * 1024
IDLE_CONNECTION_TIMEOUT = 75  # seconds; longer than nginx's upstream keep-alive
BODY_TIMEOUT = 30  # seconds to receive a request's body
YOUNG_COLLECTION_THRESHOLD = 10_000


@dataclass(frozen=True)
class ServingConfig:
    """How to listen and how many processes serve (the ``server`` option group)."""

    port: int = 8888
    address: str = "127.0.0.1"
    processes: int = 0  # 0 = one per core, 1 = no fork
    reuse_port: bool = False
    backlog: int = 1024  # Tornado's default, 128, overflowed under a burst of connections
    xheaders: bool = False

    @property
    def per_worker_sockets(self) -> bool:
        return self.reuse_port and self.processes != 1 and self.port != 0


def define_serving_options(parser: OptionParser) -> None:
    """Define the ``server`` group's listening options on ``parser``, defaults from
    :class:`ServingConfig`."""
    defaults = ServingConfig()
    group = "server"
    parser.define(
        "port", default=defaults.port, type=int, group=group, help="TCP port to listen on"
    )
    parser.define("address", default=defaults.address, group=group, help="address to bind")
    parser.define(
        "processes",
        default=defaults.processes,
        type=int,
        group=group,
        help="worker processes to fork; 0 = one per core, 1 = no fork",
    )
    parser.define(
        "reuse_port",
        default=defaults.reuse_port,
        type=bool,
        group=group,
        help="one SO_REUSEPORT socket per worker: the kernel spreads connections evenly "
        "(best behind a keep-alive proxy); a killed worker drops its queued connections",
    )
    parser.define(
        "backlog",
        default=defaults.backlog,
        type=int,
        group=group,
        help="connections the kernel queues per listening socket before refusing more "
        "(capped by net.core.somaxconn)",
    )
    parser.define(
        "xheaders",
        default=defaults.xheaders,
        type=bool,
        group=group,
        help="trust X-Real-IP/X-Forwarded-For/X-Forwarded-Proto (behind nginx only)",
    )


def serving_config_from_options(parser: OptionParser) -> ServingConfig:
    """The :class:`ServingConfig` of the parsed options (raises ``ValueError`` if bad)."""
    if parser.backlog < 1:
        raise ValueError("--backlog must be at least 1")
    return ServingConfig(
        port=parser.port,
        address=parser.address,
        processes=parser.processes,
        reuse_port=parser.reuse_port,
        backlog=parser.backlog,
        xheaders=parser.xheaders,
    )


def bind(config: ServingConfig, *, reuse_port: bool = False) -> list[socket.socket]:
    """Listening sockets for ``config`` (raises ``OSError``, e.g. when the port is taken)."""
    return bind_sockets(config.port, config.address, backlog=config.backlog, reuse_port=reuse_port)


def run(
    config: ServingConfig,
    worker_main: Callable[[list[socket.socket]], Awaitable[None]],
    *,
    on_worker_exit: Callable[[int], None] | None = None,
) -> int:
    """Bind, fork, and serve: ``worker_main(sockets)`` runs in each worker's own loop.

    Returns the process's exit status: 0 after a graceful stop, 1 when the sockets
    cannot be bound (logged) or workers keep dying. ``on_worker_exit(pid)`` is called
    in the parent for every worker that exits.
    """
    per_worker = config.per_worker_sockets
    try:
        sockets = bind(config, reuse_port=per_worker)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", config.address, config.port, exc)
        return 1
    log.info(
        "listening on http://%s:%d with %s%s",
        config.address,
        config.port,
        "one process"
        if config.processes == 1
        else f"{config.processes or 'one per core'} processes",
        ", one socket each" if per_worker else "",
    )
    if per_worker:
        close_sockets(sockets)  # each worker binds its own socket in the same port group
        sockets = []
    if config.processes != 1:
        supervisor = Supervisor(
            config.processes,
            on_stop=lambda: close_sockets(sockets),
            on_worker_exit=on_worker_exit,
            on_worker_start=catch_stop_early,
        )
        if supervisor.run() is None:
            return supervisor.exit_status  # the parent, after every worker has exited
    else:
        catch_stop_early()
    if per_worker:
        sockets = bind(config, reuse_port=True)
    asyncio.run(worker_main(sockets))
    return 0


def close_sockets(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.close()


async def serve_http(
    app: httputil.HTTPServerConnectionDelegate,
    sockets: list[socket.socket],
    config: ServingConfig,
    *,
    name: str = "",
) -> None:
    """Serve ``app`` on ``sockets`` until SIGTERM/SIGINT, then drain and return."""
    cache_http_date()
    settle_heap()
    server = CountingHTTPServer(
        app,
        xheaders=config.xheaders,
        max_body_size=MAX_CONNECTION_BODY,
        idle_connection_timeout=IDLE_CONNECTION_TIMEOUT,
        body_timeout=BODY_TIMEOUT,
    )
    server.add_sockets(sockets)
    log.info("worker %s serving", name)
    await _stop_signal()
    log.info("worker %s stopping: %d request(s) in flight", name, server.inflight)
    server.stop()  # closes this worker's listening sockets at once
    if not await server.wait_idle(DRAIN_SECONDS):
        log.warning(
            "worker %s: %d request(s) still running after %.0f s, closing",
            name,
            server.inflight,
            DRAIN_SECONDS,
        )
    try:
        await asyncio.wait_for(server.close_all_connections(), CLOSE_SECONDS)
    except TimeoutError:
        log.warning("worker %s: connections did not close in time", name)


class _HttpDateOfTheSecond:
    """``httputil.format_timestamp`` keeping the last second's string.

    Every response's ``Date`` (``RequestHandler.clear``) formats ``time.time()``: the
    same text for every request within one second. A numeric time at or after the epoch
    is answered from the string kept for its whole second; anything else (a datetime, a
    time tuple: cookie expiry dates) goes to Tornado's function as before.
    """

    def __init__(self, original: Callable[[Any], str]) -> None:
        self.original = original
        self.second = -1
        self.text = ""

    def __call__(self, ts: Any) -> str:
        if (type(ts) is float or type(ts) is int) and ts >= 0:
            second = int(ts)
            if second != self.second:
                self.text, self.second = self.original(second), second
            return self.text
        return self.original(ts)


def cache_http_date() -> None:
    """Install :class:`_HttpDateOfTheSecond` in front of Tornado's date formatting."""
    if not isinstance(httputil.format_timestamp, _HttpDateOfTheSecond):
        httputil.format_timestamp = _HttpDateOfTheSecond(httputil.format_timestamp)  # type: ignore[assignment]


def settle_heap() -> None:
    """Keep the objects that live as long as the worker out of the garbage collector's
    work: collect once, then freeze what is left (modules, the application, clients,
    templates). Python's full collections otherwise walk all of it again and again
    while requests in flight keep triggering young collections.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


_stop_requested = False


def _note_stop(_signum: int, _frame: object) -> None:
    global _stop_requested
    _stop_requested = True


def catch_stop_early() -> None:
    """From now on a SIGTERM or SIGINT is noted, not fatal: the worker is starting up
    (resources, application) and :func:`serve_http` stops at once if one came."""
    global _stop_requested
    _stop_requested = False
    for sig in STOP_SIGNALS:
        signal.signal(sig, _note_stop)


async def _stop_signal() -> None:
    """Wait for SIGTERM or SIGINT (or return at once if one came during start-up);
    from then on ignore both while the worker drains.

    Ctrl-C reaches the whole process group and the supervisor forwards SIGTERM too, so
    a worker gets two: the second must not kill the drain.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    if _stop_requested:
        stop.set()
    await stop.wait()
    for sig in STOP_SIGNALS:
        loop.remove_signal_handler(sig)
        signal.signal(sig, signal.SIG_IGN)


class CountingHTTPServer(HTTPServer):
    """An ``HTTPServer`` that counts the requests in flight, for the drain.

    A request counts from its headers arriving until its response is finished, or until
    the client goes away before the request was complete (it then never reaches a
    handler), whatever handler serves it.
    """

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
        self._counted = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def start(self) -> None:
        if not self._counted:
            self._counted = True
            self._server.request_started()

    def done(self) -> None:
        if self._counted:
            self._counted = False
            self._server.request_finished()

    def finish(self) -> None:
        try:
            self._conn.finish()
        finally:
            self.done()


class _TrackedMessage(httputil.HTTPMessageDelegate):
    """Starts the count at the headers; ends it if the client goes before the handler."""

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
