#!/usr/bin/env python3
"""Run the application: ``python server.py [--name=value ...]`` (``--help`` lists all).

Before forking, the parent reads the configuration and cookie secrets, checks that the
Redis the URL names answers (one server, Cluster or Sentinel), creates the
database and schema when missing, makes the dummy bcrypt hash and binds the listening
sockets. Then it forks the workers (``--processes``, 0 = one per core) and supervises
them (:mod:`serving`, :mod:`supervisor`); each worker creates its own event loop, Redis
client, MariaDB pool and thread pool. SIGTERM to the parent stops every worker
gracefully, and the parent exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import sys

import pymysql
from redis.exceptions import RedisError
from tornado.httpserver import HTTPServer
from tornado.ioloop import PeriodicCallback
from tornado.netutil import bind_sockets
from tornado.options import Error, options

import serving
import settings
from accounts.passwords import make_dummy_hash
from application import make_app, make_metrics_app
from observability import logs, metrics
from resources import create_resources
from sessions.transport import RedisURLError, check_url
from settings import AppConfig
from storage.schema import ensure_database

log = logging.getLogger("app")


SAMPLE_MS = 5000  # how often a worker refreshes its per-process gauges
FLUSH_MS = 1000  # how often it adds its counts to the shared metric files


async def serve_app(
    config: AppConfig,
    sockets: list[socket.socket],
    dummy_hash: bytes,
    metrics_sockets: list[socket.socket],
) -> None:
    """One worker: its resources and the application, served until the drain is over."""
    resources = create_resources(config, dummy_hash)
    metrics_server = None
    try:
        app = make_app(config, resources)
        if resources.metrics is not None:
            resources.metrics.sample()
            PeriodicCallback(resources.metrics.sample, SAMPLE_MS).start()
            PeriodicCallback(resources.metrics.flush, FLUSH_MS).start()
            if metrics_sockets:
                metrics_server = HTTPServer(make_metrics_app(resources.metrics))
                metrics_server.add_sockets(metrics_sockets)
        await serving.serve_http(app, sockets, config.serving, name=resources.served_by)
    finally:
        if metrics_server is not None:
            metrics_server.stop()
        if resources.metrics is not None:
            resources.metrics.flush()  # the drained requests' counts too
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
    logs.configure(config.log_format)
    try:  # one line, not a traceback, for a URL that cannot work
        found = asyncio.run(check_url(config.redis_url, timeout=max(config.redis_timeout, 1.0)))
    except RedisURLError as exc:
        log.error("configuration error: --redis_url: %s", exc)
        return 2
    except RedisError as exc:
        log.error("cannot use Redis at %s: %s", config.redis_url, exc)
        return 1
    log.info("sessions on %s", found)
    try:
        if ensure_database(config.mysql_url):
            log.info("applied schema.sql to %s", config.mysql_url.rsplit("/", 1)[-1])
    except pymysql.MySQLError as exc:
        log.error("cannot prepare the database at %s: %s", config.mysql_url, exc)
        return 1
    dummy_hash = make_dummy_hash(config.bcrypt_rounds)
    metrics_sockets: list[socket.socket] = []
    if config.metrics and config.metrics_port:
        try:  # before forking, like the app's own port
            metrics_sockets = bind_sockets(config.metrics_port, "127.0.0.1")
        except OSError as exc:
            log.error("cannot listen on 127.0.0.1:%d: %s", config.metrics_port, exc)
            return 1
    if not config.metrics:
        return serving.run(
            config.serving, lambda sockets: serve_app(config, sockets, dummy_hash, [])
        )
    # Every worker counts into this directory; /metrics adds them all up.
    own_directory = metrics.MULTIPROC_ENV not in os.environ
    directory = metrics.prepare_directory()
    parent = os.getpid()
    try:
        return serving.run(
            config.serving,
            lambda sockets: serve_app(config, sockets, dummy_hash, metrics_sockets),
            on_worker_exit=metrics.worker_exited,
        )
    finally:
        if own_directory and os.getpid() == parent:
            metrics.remove_directory(directory)


if __name__ == "__main__":
    sys.exit(main())
