#!/usr/bin/env python3
"""A bare Tornado hello-world, served exactly the way ``server.py`` serves the app.

It is the benchmark's reference point: whatever the app adds on top of Tornado (the
session lookup in Redis, headers, JSON) shows up as a ratio to this server's rate.
Everything around the handler matches the app:

* the same command-line parsing and logging (``tornado.options.parse_command_line``,
  Tornado's log formatter at INFO), and the same ``--access_log`` switch: on, Tornado's
  access log writes one INFO line per request; off, the application's ``log_function``
  does nothing (as ``application.make_app`` does);
* the sockets bound in the parent before forking, then ``supervisor.fork_workers`` with
  the same ``--processes`` (SIGTERM to the parent stops every worker); with
  ``--reuse_port``, one ``SO_REUSEPORT`` socket per worker bound after the fork, as
  ``server.py --reuse_port`` does;
* in each worker its own asyncio loop (``asyncio.run``) and an ``HTTPServer`` with the
  settings of ``worker.serve``: body-size limit, idle-connection and body timeouts.

Usage: ``python -m bench.hello_server --port=8000 --processes=2 --access_log=false``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys

import tornado.web
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.options import define, options

from supervisor import fork_workers

log = logging.getLogger("app")

# The HTTPServer settings of worker.serve (keep them in step with it).
MAX_CONNECTION_BODY = 1024 * 1024
IDLE_CONNECTION_TIMEOUT = 75
BODY_TIMEOUT = 30

define("port", default=8000, type=int, help="TCP port to listen on")
define("address", default="127.0.0.1", help="address to bind")
define(
    "processes", default=0, type=int, help="worker processes to fork; 0 = one per core, 1 = no fork"
)
define("access_log", default=True, type=bool, help="log one line per request (level INFO)")
define("xheaders", default=False, type=bool, help="trust X-Real-IP/X-Forwarded-* headers")
define(
    "reuse_port",
    default=False,
    type=bool,
    help="one SO_REUSEPORT socket per worker, bound after the fork (as server.py does)",
)


class HelloHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


def _no_access_log(handler: tornado.web.RequestHandler) -> None:
    """Access logging switched off, as the app does with ``--access_log=false``."""


def make_app(access_log: bool) -> tornado.web.Application:
    settings = {} if access_log else {"log_function": _no_access_log}
    return tornado.web.Application([(r"/", HelloHandler)], **settings)


async def serve(sockets: list[socket.socket], access_log: bool, xheaders: bool) -> None:
    """Serve until SIGTERM/SIGINT, then close the listener and the connections."""
    server = HTTPServer(
        make_app(access_log),
        xheaders=xheaders,
        max_body_size=MAX_CONNECTION_BODY,
        idle_connection_timeout=IDLE_CONNECTION_TIMEOUT,
        body_timeout=BODY_TIMEOUT,
    )
    server.add_sockets(sockets)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.stop()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(server.close_all_connections(), 2)


def main(argv: list[str] | None = None) -> int:
    options.parse_command_line(argv)
    per_worker = options.reuse_port and options.processes != 1 and options.port != 0
    sockets = bind_sockets(options.port, options.address, reuse_port=per_worker)
    log.info(
        "hello world on http://%s:%d, %s processes%s",
        options.address,
        options.port,
        options.processes or "one per core",
        ", one socket each" if per_worker else "",
    )
    if per_worker:
        for sock in sockets:  # each worker binds its own socket in the same port group
            sock.close()
    if options.processes != 1:
        fork_workers(options.processes)
    if per_worker:
        sockets = bind_sockets(options.port, options.address, reuse_port=True)
    asyncio.run(serve(sockets, options.access_log, options.xheaders))
    return 0


if __name__ == "__main__":
    sys.exit(main())
