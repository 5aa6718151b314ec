"""Phase 2: Redis round trips and MariaDB statements per request, route by route.

Each route gets exactly N requests, sent one at a time on one kept-alive connection
(signed-in routes: one user per connection, as a browser; a user rotated over several
connections would have its session saved by several workers, each save evicting the
others' cached copy; sign-ins rotate over the users), after warm-up connections until
every worker has served at least two of them (each worker's pooled connections are
then open). Redis counts the commands and round trips (see
:mod:`bench.redis_monitor`), MariaDB's global status the statements
(:mod:`bench.mysql_status`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass

from bench.client import Connection, expect, form
from bench.context import Context
from bench.mysql_status import MysqlStatus
from bench.procs import Server
from bench.redis_monitor import RedisMonitor, background_reads
from bench.users import Fixture, User

HTML = "text/html"
WARMUP_REQUESTS = 10  # per warm-up connection


@dataclass(frozen=True)
class Route:
    label: str
    method: str
    path: str
    status: int
    accept: str = "application/json"
    signed_in: bool = True  # send the user's session cookie
    body: str | None = None  # "status" or "login"

    def request(self, fx: Fixture, user: User, i: int) -> tuple[dict[str, str], bytes | None]:
        post = self.method == "POST"
        headers = fx.headers(user if self.signed_in else None, accept=self.accept, post=post)
        if self.body == "status":
            return headers, form({"status": f"benchmark status {i}"})
        if self.body == "login":
            return headers, form(user.login_form())
        return headers, None


ROUTES = [
    Route("GET /whoami", "GET", "/whoami", 200),
    Route("GET /home (JSON)", "GET", "/home", 200),
    Route("GET /home (HTML)", "GET", "/home", 200, accept=HTML),
    Route("GET /fetchStatus", "GET", "/fetchStatus", 200),
    Route("POST /addStatus", "POST", "/addStatus", 201, body="status"),
    Route("POST /login", "POST", "/login", 200, signed_in=False, body="login"),
]


@dataclass(frozen=True)
class RouteCount:
    label: str
    requests: int
    redis_commands: float
    redis_round_trips: float
    redis_mix: dict[str, float]
    mysql: dict[str, float]


@dataclass(frozen=True)
class RoundTrips:
    routes: list[RouteCount]
    mysql_background: dict[str, float]  # statements/s of other clients before the run
    redis_background: float = 0.0  # reads/s of other Redis clients before the run


async def _send(server: Server, fx: Fixture, route: Route, count: int, offset: int) -> set[str]:
    """``count`` requests on one new connection; returns the workers that answered."""
    served = set()
    conn = Connection("127.0.0.1", server.port)
    try:
        for i in range(offset, offset + count):
            user = fx.users[(i if route.body == "login" else offset) % len(fx.users)]
            headers, body = route.request(fx, user, i)
            resp = expect(await conn.request(route.method, route.path, headers, body), route.status)
            served.add(resp.headers.get("X-Served-By", ""))
    finally:
        await conn.close()
    return served


async def _warm_up(server: Server, fx: Fixture, route: Route, count: int) -> None:
    """Batches of concurrent connections (``count`` requests each) until every worker has
    served at least two, so that each has opened its pooled connections and loaded its
    scripts. (Connections opened one after another tend to land on the same worker.)"""
    workers = {str(pid) for pid in server.workers()}
    seen: Counter[str] = Counter()
    parallel = 2 * len(workers)
    for attempt in range(30):
        batches = await asyncio.gather(
            *(
                _send(server, fx, route, count, (attempt * parallel + i) * count)
                for i in range(parallel)
            )
        )
        for served in batches:
            for by in served:
                seen[by.rsplit(":", 1)[-1]] += 1
        if all(seen[w] >= 2 for w in workers):
            return
    raise RuntimeError(f"warm-up of {route.label} reached only workers {dict(seen)}")


def run(ctx: Context, app: Server) -> RoundTrips:
    o, fx = ctx.opts, ctx.fixture
    assert fx is not None
    mysql = MysqlStatus(o.mysql_url)
    counts = []
    try:
        background = mysql.background()
        with RedisMonitor(o.redis_url) as mon:
            redis_background = background_reads(mon.client)
            for route in ROUTES:
                n = o.login_requests if route.body == "login" else o.requests
                warm = 2 if route.body == "login" else WARMUP_REQUESTS
                asyncio.run(_warm_up(app, fx, route, warm))
                window = mon.start()
                before = mysql.read()
                asyncio.run(_send(app, fx, route, n, warm))
                after = mysql.read()
                redis_counts = mon.stop(window, redis_background)
                delta = mysql.delta(before, after)
                mysql_per = {
                    k: max(0.0, v - background[k] * delta.seconds) / n
                    for k, v in delta.values.items()
                }
                mix = {k: v / n for k, v in sorted(redis_counts.mix.items())}
                counts.append(
                    RouteCount(
                        route.label,
                        n,
                        redis_counts.commands / n,
                        redis_counts.round_trips / n,
                        mix,
                        mysql_per,
                    )
                )
                print(
                    f"  {route.label:<18} {n:5d} requests  Redis {redis_counts.commands / n:.2f}"
                    f" commands, {redis_counts.round_trips / n:.2f} round trips  MariaDB "
                    f"{mysql_per['Questions']:.2f} statements per request",
                    flush=True,
                )
    finally:
        mysql.close()
    return RoundTrips(counts, background, redis_background)


def mix_text(mix: dict[str, float]) -> str:
    """``EVALSHAx2, GETx1`` style (per request), biggest first."""
    ordered = Counter(mix).most_common()
    return ", ".join(f"{name}x{value:.3g}" for name, value in ordered) or "none"
