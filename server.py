#!/usr/bin/env python3
"""Run the application: ``python server.py [--name=value ...]`` (``--help`` lists all).

Before forking, the parent reads the configuration and cookie secrets, creates the
database and schema when missing, makes the dummy bcrypt hash and binds the listening
sockets. Then it forks the workers (``--processes``, 0 = one per core) and supervises
them; each worker creates its own event loop, Redis client, MariaDB pool and thread
pool. SIGTERM to the parent stops every worker gracefully, and the parent exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import sys

import pymysql
from tornado.netutil import bind_sockets
from tornado.options import Error, options

import settings
from accounts.passwords import make_dummy_hash
from storage.schema import ensure_database
from supervisor import fork_workers
from worker import serve

log = logging.getLogger("app")


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
    processes = 1 if options.debug else options.processes
    per_worker = options.reuse_port and processes != 1 and options.port != 0
    try:  # bind before forking: a taken port fails here, once, with a clear message
        sockets = bind_sockets(options.port, options.address, reuse_port=per_worker)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", options.address, options.port, exc)
        return 1
    log.info(
        "listening on http://%s:%d with %s%s",
        options.address,
        options.port,
        "one process" if processes == 1 else f"{processes or 'one per core'} processes",
        ", one socket each" if per_worker else "",
    )
    if per_worker:
        for sock in sockets:  # each worker binds its own socket in the same port group
            sock.close()
    if processes != 1:
        fork_workers(processes)
    if per_worker:
        sockets = bind_sockets(options.port, options.address, reuse_port=True)
    asyncio.run(serve(config, sockets, dummy_hash, xheaders=options.xheaders))
    return 0


if __name__ == "__main__":
    sys.exit(main())
