#!/usr/bin/env python3
"""Run the application: ``python server.py [--name=value ...]`` (``--help`` lists all).

Before forking, the parent reads the configuration and cookie secrets, creates the
database and schema when missing, makes the dummy bcrypt hash and binds the listening
sockets. Then it forks the workers (``--processes``, 0 = one per core) and supervises
them (:mod:`serving`, :mod:`supervisor`); each worker creates its own event loop, Redis
client, MariaDB pool and thread pool. SIGTERM to the parent stops every worker
gracefully, and the parent exits 0.
"""

from __future__ import annotations

import logging
import socket
import sys

import pymysql
from tornado.options import Error, options

import serving
import settings
from accounts.passwords import make_dummy_hash
from application import make_app
from resources import create_resources
from settings import AppConfig
from storage.schema import ensure_database

log = logging.getLogger("app")


async def serve_app(config: AppConfig, sockets: list[socket.socket], dummy_hash: bytes) -> None:
    """One worker: its resources and the application, served until the drain is over."""
    resources = create_resources(config, dummy_hash)
    try:
        app = make_app(config, resources)
        await serving.serve_http(app, sockets, config.serving, name=resources.served_by)
    finally:
        await resources.close()
    log.info("worker %s stopped", resources.served_by)


def main(argv: list[str] | None = None) -> int:
    try:
        settings.apply_environment()
        options.parse_command_line(argv)
        config = settings.config_from_options()
    except (ValueError, Error) as exc:
        logging.basicConfig()
        log.error("configuration error: %s", exc)
        return 2
    try:
        if ensure_database(config.mysql_url):
            log.info("applied schema.sql to %s", config.mysql_url.rsplit("/", 1)[-1])
    except pymysql.MySQLError as exc:
        log.error("cannot prepare the database at %s: %s", config.mysql_url, exc)
        return 1
    dummy_hash = make_dummy_hash(config.bcrypt_rounds)
    return serving.run(config.serving, lambda sockets: serve_app(config, sockets, dummy_hash))


if __name__ == "__main__":
    sys.exit(main())
