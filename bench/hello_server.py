#!/usr/bin/env python3
"""A bare Tornado hello-world, served by the app's own serving core.

It is the benchmark's reference point: whatever the app adds on top of Tornado (the
session lookup in Redis, headers, JSON) shows up as a ratio to this server's rate.
Everything around the handler is the app's, not a copy of it: the listening options
and their defaults (:func:`serving.define_serving_options`), binding, forking and
supervising, the ``HTTPServer`` settings and the drain (:func:`serving.run` and
:func:`serving.serve_http`), the command-line parsing and logging
(``tornado.options``), and the ``--access_log`` switch: on, Tornado's access log
writes one INFO line per request (the app writes its own structured line instead);
off, the application's ``log_function`` does nothing.

Usage: ``python -m bench.hello_server --port=8000 --processes=2 --access_log=false``.
"""

from __future__ import annotations

import os
import socket
import sys

import tornado.web
from tornado.options import define, options

import serving

serving.define_serving_options(options)
define("access_log", default=True, type=bool, help="log one line per request (level INFO)")


class HelloHandler(tornado.web.RequestHandler):
    def get(self) -> None:
        self.write("Hello, world")


def _no_access_log(handler: tornado.web.RequestHandler) -> None:
    """Access logging switched off, as the app does with ``--access_log=false``."""


def make_app(access_log: bool) -> tornado.web.Application:
    settings = {} if access_log else {"log_function": _no_access_log}
    return tornado.web.Application([(r"/", HelloHandler)], **settings)


def main(argv: list[str] | None = None) -> int:
    options.parse_command_line(argv)
    config = serving.serving_config_from_options(options)

    async def worker(sockets: list[socket.socket]) -> None:
        await serving.serve_http(
            make_app(options.access_log), sockets, config, name=f"hello:{os.getpid()}"
        )

    return serving.run(config, worker)


if __name__ == "__main__":
    sys.exit(main())
