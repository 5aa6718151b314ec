"""Phase 3: the event loop under a login storm.

A light probe (wrk: a few connections of signed-in ``GET /whoami``, each pausing
between requests) measures the p99 latency, first calm, then while ``--storm-clients``
asyncio clients sign in continuously with valid credentials (``POST /login``; bcrypt
at the server's work factor runs in each worker's thread pool), see
:mod:`bench.login_storm`. Each sign-in comes on a new connection, so the sign-ins
spread over the workers as many clients' would. The sign-in rate is taken over the
probe's window. Before each calm run the server is left to finish all its work.
Calm and storm alternate over the rounds. The sign-in rate is compared with what the
cores allow: ``cores / time of one hash``, the hash timed here in-process at the same
work factor. Then the same storm against a server started with
``--bcrypt_on_event_loop`` shows the contrast.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass

import bcrypt

from bench.context import Context, Measurement
from bench.login_storm import LoginStorm, StormStats
from bench.procs import Server
from bench.wrk import Load, WrkResult

P99_FACTOR_TARGET = 2.0
LOGIN_RATE_TARGET = 0.9
LEAD_S = 2.0  # the storm runs this long before and after the probe


@dataclass(frozen=True)
class StormRound:
    calm: WrkResult
    storm: WrkResult
    logins: StormStats  # sign-ins answered while the probe ran
    all_logins: StormStats  # every sign-in of the storm, drain included
    other_cpu_pct: float = 0.0  # the rest of the machine's busy CPU during the storm probe


@dataclass
class Storm:
    hash_s: float
    cores: int
    rounds: list[StormRound]
    on_loop: StormRound | None = None

    @property
    def ceiling(self) -> float:
        return self.cores / self.hash_s

    def median(self, pick: str) -> float:
        return statistics.median(getattr(r, pick).p99_ms for r in self.rounds)

    @property
    def login_rate(self) -> float:
        return statistics.median(r.logins.rate for r in self.rounds)


def time_one_hash(rounds: int, samples: int = 5) -> float:
    """Median seconds of one ``bcrypt.checkpw`` at work factor ``rounds``."""
    hashed = bcrypt.hashpw(b"benchmark-password", bcrypt.gensalt(rounds))
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        bcrypt.checkpw(b"benchmark-password", hashed)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _probe(ctx: Context) -> Load:
    return Load("/whoami", ctx.user_headers(), delay_ms=ctx.opts.probe_delay_ms, count_status=True)


def _run_probe(ctx: Context, app: Server, label: str) -> Measurement:
    o = ctx.opts
    return ctx.measure(
        label,
        app,
        _probe(ctx),
        connections=o.probe_connections,
        duration=o.duration,
        timeout_s=60,
    )


def one_round(ctx: Context, app: Server, label: str) -> StormRound:
    o, fx = ctx.opts, ctx.fixture
    assert fx is not None
    app.wait_idle()
    calm = _run_probe(ctx, app, f"{label} calm").result
    storm = LoginStorm("127.0.0.1", app.port, fx, o.storm_clients)
    storm.start()
    try:
        time.sleep(LEAD_S)
        start = time.monotonic()
        measured = _run_probe(ctx, app, f"{label} storm")
        end = time.monotonic()
        time.sleep(LEAD_S)
    finally:
        storm.stop()
    stormy = measured.result
    logins = storm.window(start, end)
    all_logins = storm.window(storm.started_at, time.monotonic())
    print(
        f"  {label:<22} calm p99 {calm.p99_ms:8.2f} ms   storm p99 {stormy.p99_ms:8.2f} ms"
        f"   {logins.rate:5.2f} sign-ins/s   failed sign-ins {sum(all_logins.failures.values())}"
        f"   probe non-2xx {stormy.non2xx}",
        flush=True,
    )
    return StormRound(calm, stormy, logins, all_logins, measured.other_cpu_pct)


def run(ctx: Context, app: Server) -> Storm:
    hash_s = time_one_hash(ctx.opts.bcrypt_rounds)
    cores = os.cpu_count() or 1
    print(
        f"  one bcrypt hash at cost {ctx.opts.bcrypt_rounds}: {hash_s * 1000:.0f} ms "
        f"-> ceiling {cores / hash_s:.2f} sign-ins/s on {cores} cores",
        flush=True,
    )
    rounds = [one_round(ctx, app, f"round {i + 1}") for i in range(ctx.opts.rounds)]
    return Storm(hash_s, cores, rounds)


def run_on_loop(ctx: Context, storm: Storm) -> None:
    """The contrast: a server with ``--bcrypt_on_event_loop`` under the same storm."""
    app = ctx.start_app("--bcrypt_on_event_loop", name="app-bcrypt-on-loop")
    try:
        storm.on_loop = one_round(ctx, app, "bcrypt on event loop")
    finally:
        ctx.stop(app)
