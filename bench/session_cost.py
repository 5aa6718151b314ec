"""Phase 1: what the session layer costs, as a ratio to a bare Tornado hello-world.

The hello world, signed-in ``GET /whoami`` and signed-in ``GET /home`` (JSON) are run
in turn, round after round, with the same wrk settings and the same request headers
(each connection carries one user's cookie for the whole run, see :mod:`bench.wrk`,
and ``Accept: application/json``, so the hello world parses the same headers and only
the app's work differs). Medians over
the rounds are reported. Then ``/whoami`` and ``/home`` run once more with many more
connections, counting every non-2xx answer and socket error.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.context import Context, Measurement, Summary
from bench.procs import Server
from bench.wrk import Load

WHOAMI_TARGET = 0.9  # issue 12: within 10% of bare Tornado
HOME_TARGET = 0.8


@dataclass
class SessionCost:
    hello: Summary
    whoami: Summary
    home: Summary
    high: list[Measurement]
    connections: int
    high_connections: int

    def ratio(self, summary: Summary) -> float:
        return summary.ratio_to(self.hello)


def systems(
    ctx: Context, hello: Server, app: Server, prefix: str = ""
) -> list[tuple[str, Server, Load]]:
    headers = ctx.user_headers()
    return [
        (f"{prefix}hello world", hello, Load("/", headers)),
        (f"{prefix}GET /whoami", app, Load("/whoami", headers)),
        (f"{prefix}GET /home (JSON)", app, Load("/home", headers)),
    ]


def alternate(
    ctx: Context, plan: list[tuple[str, Server | list[Server], Load]], connections: int
) -> list[Summary]:
    """Warm each system up, then run them in turn for ``rounds`` rounds; the first, the
    reference, runs once more at the end."""
    o = ctx.opts
    for label, server, load in plan:
        print(f"  warm-up {label}", flush=True)
        ctx.measure(label, server, load, connections=connections, duration=o.warmup)
    runs: dict[str, list[Measurement]] = {label: [] for label, _, _ in plan}
    for rnd in range(1, o.rounds + 1):
        for label, server, load in plan:
            m = ctx.measure(label, server, load, connections=connections, duration=o.duration)
            runs[label].append(m)
            r = m.result
            print(
                f"  round {rnd}/{o.rounds} {label:<28} {r.rps:9.0f} req/s  p50 {r.p50_ms:6.2f}"
                f" ms  p99 {r.p99_ms:6.2f} ms  errors {r.socket_errors + r.status_errors}",
                flush=True,
            )
    # The first system is the reference: once more after the last round, so that every
    # other system's runs have a reference run on each side (``Summary.ratio_to``).
    label, server, load = plan[0]
    closing = ctx.measure(label, server, load, connections=connections, duration=o.duration)
    print(f"  closing {label:<28} {closing.result.rps:9.0f} req/s", flush=True)
    summaries = [Summary(label, runs[label]) for label, _, _ in plan]
    summaries[0].closing.append(closing)
    return summaries


def run(ctx: Context, hello: Server, app: Server) -> SessionCost:
    o = ctx.opts
    plan = systems(ctx, hello, app)
    hello_s, whoami_s, home_s = alternate(ctx, list(plan), o.connections)
    high = []
    for label, server, load in plan[1:]:
        counted = Load(load.path, load.headers, count_status=True)
        m = ctx.measure(
            label,
            server,
            counted,
            connections=o.high_connections,
            duration=o.duration,
            timeout_s=10,
        )
        r = m.result
        print(
            f"  {o.high_connections} connections {label:<20} {r.rps:9.0f} req/s  p99 "
            f"{r.p99_ms:7.2f} ms  non-2xx {r.non2xx}  socket errors {r.socket_errors}",
            flush=True,
        )
        high.append(m)
    return SessionCost(hello_s, whoami_s, home_s, high, o.connections, o.high_connections)
