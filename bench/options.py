"""Command-line options of ``python -m bench`` (``--help`` lists them)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass

PHASES = ("session", "roundtrips", "cluster", "storm", "nginx")


@dataclass(frozen=True)
class Options:
    duration: float
    rounds: int
    warmup: float
    connections: int
    high_connections: int
    processes: int
    users: int
    requests: int
    login_requests: int
    storm_clients: int
    probe_connections: int
    probe_delay_ms: int
    bcrypt_rounds: int
    access_log: bool
    metrics: bool
    reuse_port: bool
    app_args: tuple[str, ...]
    skip_nginx: bool
    quick: bool
    only: frozenset[str]
    out: str
    redis_url: str
    mysql_url: str
    argv: tuple[str, ...]

    def runs(self, phase: str) -> bool:
        """Whether ``phase`` (one of :data:`PHASES`) is part of this run."""
        if phase == "nginx" and self.skip_nginx:
            return False
        return not self.only or phase in self.only

    @property
    def command(self) -> str:
        return " ".join(("python -m bench", *self.argv)).strip()


def parse(argv: list[str]) -> Options:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the session layer against a bare Tornado hello-world, count "
        "round trips, run a login storm, read memory, and go through nginx; print the "
        "tables and write them to --out.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--duration", type=float, default=10, help="seconds per measured run")
    p.add_argument("--rounds", type=int, default=3, help="rounds of alternated runs (medians)")
    p.add_argument("--warmup", type=float, default=3, help="warm-up seconds per system")
    p.add_argument("--connections", type=int, default=64, help="wrk connections, main table")
    p.add_argument(
        "--high-connections", type=int, default=256, help="connections of the no-errors run"
    )
    p.add_argument("--processes", type=int, default=2, help="worker processes of every server")
    p.add_argument(
        "--users",
        type=int,
        default=0,
        help="signed-in users (one session each; 0: one per --connections, so that every "
        "connection of the main table keeps a user of its own, as a browser does)",
    )
    p.add_argument(
        "--requests", type=int, default=2000, help="requests per route when counting round trips"
    )
    p.add_argument(
        "--login-requests",
        type=int,
        default=48,
        help="sign-ins when counting their round trips (each costs a bcrypt hash)",
    )
    p.add_argument("--storm-clients", type=int, default=32, help="clients signing in at once")
    p.add_argument(
        "--probe-connections",
        type=int,
        default=4,
        help="connections of the GET /whoami probe during the storm",
    )
    p.add_argument(
        "--probe-delay-ms",
        type=int,
        default=20,
        help="pause between probe requests on each connection",
    )
    p.add_argument("--bcrypt-rounds", type=int, default=12, help="server's bcrypt work factor")
    p.add_argument(
        "--access-log",
        choices=("on", "off"),
        default="off",
        help="access log of the app and of the hello world alike",
    )
    p.add_argument(
        "--metrics",
        choices=("on", "off"),
        default="on",
        help="the app's Prometheus metrics (server.py --metrics); compare the two to state "
        "what metrics cost per request",
    )
    p.add_argument(
        "--reuse-port",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="start the app and the hello world alike with --reuse_port (one "
        "SO_REUSEPORT socket per worker, so connections spread evenly; with one shared "
        "socket a burst of connections can all land on one worker)",
    )
    p.add_argument(
        "--app-arg",
        action="append",
        default=[],
        metavar="OPTION",
        help="extra server.py option for every app server, e.g. --app-arg=--worker_threads=1 "
        "(repeat for several)",
    )
    p.add_argument("--skip-nginx", action="store_true", help="leave out the nginx runs")
    p.add_argument(
        "--only",
        default="",
        help="comma-separated phases to run, of: " + ", ".join(PHASES) + " (default: all)",
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: a few seconds per item, one round, fewer requests",
    )
    p.add_argument(
        "--out",
        default="docs/PERFORMANCE.md",
        help="Markdown file whose generated section is rewritten ('-': none)",
    )
    p.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/11",
        help="Redis database of the benchmark (flushed before and after)",
    )
    p.add_argument(
        "--mysql-url",
        default="mysql://root@127.0.0.1:3306/appdb_bench",
        help="MariaDB database of the benchmark (dropped before and after)",
    )
    a = p.parse_args(argv)
    only = frozenset(x.strip() for x in a.only.split(",") if x.strip())
    if only - set(PHASES):
        p.error(f"--only: unknown phase(s) {', '.join(sorted(only - set(PHASES)))}")
    if a.quick:
        a.duration, a.rounds, a.warmup = min(a.duration, 2), 1, min(a.warmup, 1)
        a.requests, a.login_requests = min(a.requests, 200), 4
    if a.users < 0:
        p.error("--users must be 0 (one per connection) or more")
    a.users = a.users or a.connections
    if a.rounds < 1 or a.duration < 1 or a.processes < 1:
        p.error("--rounds, --duration and --processes must be at least 1")
    return Options(
        duration=a.duration,
        rounds=a.rounds,
        warmup=a.warmup,
        connections=a.connections,
        high_connections=a.high_connections,
        processes=a.processes,
        users=a.users,
        requests=a.requests,
        login_requests=a.login_requests,
        storm_clients=a.storm_clients,
        probe_connections=a.probe_connections,
        probe_delay_ms=a.probe_delay_ms,
        bcrypt_rounds=a.bcrypt_rounds,
        access_log=a.access_log == "on",
        metrics=a.metrics == "on",
        reuse_port=a.reuse_port,
        app_args=tuple(a.app_arg),
        skip_nginx=a.skip_nginx,
        quick=a.quick,
        only=only,
        out=a.out,
        redis_url=a.redis_url,
        mysql_url=a.mysql_url,
        argv=tuple(argv),
    )
