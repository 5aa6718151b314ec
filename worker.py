"""One worker process: its event loop, resources and HTTP server, and a graceful stop.

On SIGTERM (or SIGINT) the worker stops accepting connections, lets the requests in
flight finish (at most ``DRAIN_SECONDS``), closes the remaining connections, its Redis
client, MariaDB pool and thread pool, and exits with status 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket

from tornado.httpserver import HTTPServer

from application import make_app
from resources import create_resources
from settings import AppConfig

log = logging.getLogger("app")
DRAIN_SECONDS = 10.0
MAX_CONNECTION_BODY = 1024 * 1024  # hard cap per request; the app answers 413 above 64 KB


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
    server = HTTPServer(
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

    log.info("worker %s stopping: %d request(s) in flight", resources.served_by, resources.inflight)
    server.stop()
    if not await resources.wait_idle(DRAIN_SECONDS):
        log.warning(
            "worker %s: %d request(s) still running after %.0f s, closing",
            resources.served_by,
            resources.inflight,
            DRAIN_SECONDS,
        )
    try:
        await asyncio.wait_for(server.close_all_connections(), 2)
    except TimeoutError:
        log.warning("worker %s: connections did not close in time", resources.served_by)
    await resources.close()
    log.info("worker %s stopped", resources.served_by)
