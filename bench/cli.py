"""``python -m bench``: run every phase in order, then print and write the report.

Order: hello world and app started side by side (same processes, same logging);
users signed up; 1. session-layer cost (alternated) and the high-connection run;
4. memory; 2. round trips; 6. the session store on a private Redis Cluster, side by
side with the single server; 3. login storm, then the contrast server with
``--bcrypt_on_event_loop``; 4. memory again; 5. through nginx. Whatever happens, every
server is stopped (SIGTERM to its parent), checked gone, and the Redis database and
MariaDB database of the benchmark are emptied.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from types import FrameType

import psutil
import redis

from bench import memory, on_cluster, report, roundtrips, session_cost, storm, via_nginx, wrk
from bench.context import Context
from bench.machine import describe
from bench.mysql_status import MysqlStatus
from bench.options import Options, parse
from bench.procs import REPO_ROOT, alive
from bench.users import register_users
from storage.urls import parse_mysql_url


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def other_load() -> list[str]:
    """Command lines of test or load-test runs that would disturb the figures."""
    found = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.info["pid"] == me or not proc.info["cmdline"]:
            continue
        cmd = " ".join(proc.info["cmdline"])
        if "pytest" in cmd or "-m loadtest" in cmd or "locust" in cmd:
            found.append(cmd[:120])
    return found


_disturbed: dict[str, list[str]] = {}


def _phase(title: str) -> None:
    """Announce a phase, and note any test or load-test run active as it starts."""
    print(f"\n== {title}", flush=True)
    busy = other_load()
    if busy:
        _disturbed[title] = busy
        print(
            "  warning: other test or load-test runs are active:\n    " + "\n    ".join(busy),
            flush=True,
        )


def run_phases(ctx: Context, res: report.Results) -> None:
    o = ctx.opts
    _phase("starting the hello world and the app")
    hello = ctx.start_hello()
    app = ctx.start_app()
    print(
        f"  hello world {hello.url} workers {hello.workers()}; app {app.url} workers "
        f"{app.workers()}",
        flush=True,
    )
    print(f"  signing up {o.users} users (one bcrypt hash each)", flush=True)
    ctx.fixture = asyncio.run(register_users("127.0.0.1", app.port, o.users))

    if o.runs("session"):
        _phase("1. session-layer cost")
        res.session = session_cost.run(ctx, hello, app)
        _phase("4. memory after the load")
        res.memory.append(
            memory.snapshot(
                f"app, after the {o.connections}/{o.high_connections}-connection runs", app
            )
        )
        res.memory.append(memory.snapshot("hello world, after the same runs", hello))

    if o.runs("roundtrips"):
        _phase("2. round trips per route")
        res.roundtrips = roundtrips.run(ctx, app)

    if o.runs("cluster"):
        _phase("6. the session store on a Redis Cluster")
        res.cluster = on_cluster.run(ctx, hello, app)

    if o.runs("storm"):
        _phase("3. login storm")
        res.storm = storm.run(ctx, app)
        res.memory.append(memory.snapshot("app, after the login storm", app))
    ctx.stop(app)
    if o.runs("storm"):
        storm.run_on_loop(ctx, res.storm)

    if o.runs("nginx"):
        _phase("5. through nginx")
        nginx = via_nginx.find_nginx()
        res.nginx = via_nginx.run(ctx, hello, nginx)
    ctx.stop(hello)


def clean_stores(o: Options, client: redis.Redis) -> None:
    client.flushdb()
    status = MysqlStatus(o.mysql_url)
    try:
        status.drop_database()
    finally:
        status.close()


def main(argv: list[str] | None = None) -> int:
    o = parse(sys.argv[1:] if argv is None else argv)
    signal.signal(signal.SIGTERM, _terminate)
    os.chdir(REPO_ROOT)
    started = dt.datetime.now()
    wrk_bin = wrk.ensure_wrk()
    client = redis.Redis.from_url(o.redis_url)
    redis_pid = int(client.info("server")["process_id"])
    status = MysqlStatus(o.mysql_url)
    try:
        mariadb = status.version()
    finally:
        status.close()
    clean_stores(o, client)
    log_dir = Path(tempfile.mkdtemp(prefix="bench-"))
    ctx = Context(o, wrk_bin, log_dir, client, redis_pid)
    nginx_bin = via_nginx.find_nginx() if o.runs("nginx") else None
    res = report.Results(o, describe(client, mariadb, wrk.wrk_version(wrk_bin), nginx_bin), started)
    ok = False
    try:
        run_phases(ctx, res)
        ok = True
    except KeyboardInterrupt:
        print("\ninterrupted: stopping the servers", flush=True)
    except BaseException:
        print(f"failed: stopping the servers; their logs are kept in {log_dir}", flush=True)
        raise
    finally:
        for server in list(ctx.servers):
            ctx.stop(server)
        clean_stores(o, client)
        client.close()
    leftovers = [
        pid
        for server in ctx.history
        for pid in (server.proc.pid, *server.seen_workers)
        if alive(pid)
    ]
    res.notes += ctx.notes
    for title, busy in _disturbed.items():
        res.notes.append(
            f"Other test or load-test runs were active when phase '{title}' "
            f"started, so its figures are disturbed: {'; '.join(busy)}"
        )
    if leftovers:
        print(f"error: processes left running: {leftovers}", flush=True)
        return 1
    if not ok:
        print(f"server logs kept in {log_dir}", flush=True)
        return 130
    shutil.rmtree(log_dir, ignore_errors=True)
    section = report.generated(res)
    print("\n" + section, flush=True)
    if o.out != "-":
        report.write(REPO_ROOT / o.out, section)
        print(
            f"\nwrote {o.out} (database {client.connection_pool.connection_kwargs.get('db', 0)}"
            f" of Redis flushed, {parse_mysql_url(o.mysql_url).database} dropped)",
            flush=True,
        )
    return 0
