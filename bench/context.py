"""What every phase of the benchmark shares: options, servers, users, stores, wrk."""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from bench import procs, wrk
from bench.options import Options
from bench.procs import Server
from bench.redis_monitor import reads_processed
from bench.users import Fixture

COOKIE_SECRET = "bench-cookie-secret-" + "0123456789abcdef" * 2


@dataclass(frozen=True)
class Measurement:
    """One wrk run and the CPU the server and Redis spent on it."""

    label: str
    result: wrk.WrkResult
    server_cpu_s: float
    redis_cpu_s: float
    worker_cpu_s: tuple[float, ...] = ()  # each worker of the Python server, same order
    other_cpu_s: float = 0.0  # busy CPU of the machine not used by the above, wrk or us
    redis_reads: int = 0  # Redis's total_reads_processed delta: round trips of all clients

    @property
    def redis_trips(self) -> float:
        """Redis round trips per request (below 1 per command when requests' commands
        are pipelined together)."""
        return self.redis_reads / self.result.requests if self.result.requests else 0.0

    @property
    def other_cpu_pct(self) -> float:
        """The rest of the machine's busy CPU during the run, in % of one core: other
        processes, and kernel work not charged to a process (softirq)."""
        seconds = self.result.duration_s
        return 100 * self.other_cpu_s / seconds if seconds else 0.0

    @property
    def split(self) -> str:
        """How the workers shared the CPU, in percent (``51/49``): an even spread of the
        connections shows as an even split."""
        total = sum(self.worker_cpu_s)
        if not total:
            return "-"
        return "/".join(f"{100 * c / total:.0f}" for c in self.worker_cpu_s)

    def per_request_us(self, seconds: float) -> float:
        return seconds / self.result.requests * 1e6 if self.result.requests else 0.0

    @property
    def server_us(self) -> float:
        return self.per_request_us(self.server_cpu_s)

    @property
    def redis_us(self) -> float:
        return self.per_request_us(self.redis_cpu_s)

    @property
    def wrk_us(self) -> float:
        return self.per_request_us(self.result.wrk_cpu_s)


@dataclass
class Summary:
    """Medians of several measurements of one system."""

    label: str
    runs: list[Measurement]
    #: A reference system's run after the last round (see :meth:`ratio_to`).
    closing: list[Measurement] = field(default_factory=list)

    def _median(self, values: Sequence[float]) -> float:
        return statistics.median(values) if values else 0.0

    @property
    def rps(self) -> float:
        return self._median([m.result.rps for m in self.runs])

    @property
    def p50_ms(self) -> float:
        return self._median([m.result.p50_ms for m in self.runs])

    @property
    def p99_ms(self) -> float:
        return self._median([m.result.p99_ms for m in self.runs])

    @property
    def server_us(self) -> float:
        return self._median([m.server_us for m in self.runs])

    @property
    def redis_us(self) -> float:
        return self._median([m.redis_us for m in self.runs])

    @property
    def wrk_us(self) -> float:
        return self._median([m.wrk_us for m in self.runs])

    def ratio_to(self, reference: Summary) -> float:
        """Median over the rounds of this system's rate over the reference's around it:
        the mean of the reference's run of the same round (before this one) and of the
        next round (after it; the reference's closing run after the last round). Slow
        drifts of the machine's speed, which on this shared machine move a rate by 10%
        within seconds, then cancel out to first order."""
        if reference is self:
            return 1.0
        after = [*reference.runs[1:], *reference.closing]
        pairs = []
        for i, m in enumerate(self.runs[: len(reference.runs)]):
            around = [reference.runs[i].result.rps]
            if i < len(after):
                around.append(after[i].result.rps)
            ref = sum(around) / len(around)
            if ref:
                pairs.append(m.result.rps / ref)
        return self._median(pairs)

    @property
    def other_cpu_pct(self) -> float:
        return self._median([m.other_cpu_pct for m in self.runs])

    @property
    def redis_trips(self) -> float:
        return self._median([m.redis_trips for m in self.runs])

    @property
    def errors(self) -> int:
        return sum(m.result.socket_errors + m.result.status_errors for m in self.runs)

    @property
    def requests(self) -> int:
        return sum(m.result.requests for m in self.runs)


@dataclass
class Context:
    opts: Options
    wrk: str
    log_dir: Path
    redis: redis.Redis
    redis_pid: int
    fixture: Fixture | None = None
    servers: list[Server] = field(default_factory=list)  # running
    history: list[Server] = field(default_factory=list)  # every server started
    notes: list[str] = field(default_factory=list)

    def started(self, server: Server) -> Server:
        self.servers.append(server)
        self.history.append(server)
        return server

    def stop(self, server: Server) -> None:
        leftover = server.stop()
        if leftover:
            self.notes.append(f"{server.name}: had to kill {leftover} after SIGTERM")
        if server in self.servers:
            self.servers.remove(server)

    @property
    def common_args(self) -> tuple[str, ...]:
        """Options given to the app and the hello world alike."""
        return ("--reuse_port",) if self.opts.reuse_port else ()

    def start_app(self, *extra: str, name: str = "app", redis_url: str = "") -> Server:
        """The app, on ``redis_url`` (default: the benchmark's Redis database)."""
        o = self.opts
        return self.started(
            procs.start_app(
                self.log_dir,
                processes=o.processes,
                redis_url=redis_url or o.redis_url,
                mysql_url=o.mysql_url,
                cookie_secret=COOKIE_SECRET,
                bcrypt_rounds=o.bcrypt_rounds,
                access_log=o.access_log,
                extra=(
                    *extra,
                    *self.common_args,
                    f"--metrics={str(o.metrics).lower()}",
                    *o.app_args,
                ),
                name=name,
            )
        )

    def start_hello(self) -> Server:
        o = self.opts
        return self.started(
            procs.start_hello(
                self.log_dir,
                processes=o.processes,
                access_log=o.access_log,
                extra=self.common_args,
            )
        )

    def user_headers(self, *, accept: str = "application/json") -> list[dict[str, str]]:
        assert self.fixture is not None
        return [self.fixture.headers(u, accept=accept) for u in self.fixture.users]

    def measure(
        self,
        label: str,
        server: Server | Sequence[Server],
        load: wrk.Load,
        *,
        connections: int,
        duration: float,
        timeout_s: float = 10.0,
    ) -> Measurement:
        """Run wrk against the first of ``server`` and account the CPU of all of them
        (e.g. nginx and the app behind it) and of Redis during the run."""
        group = [server] if isinstance(server, Server) else list(server)
        python_server = group[-1]
        cpu0 = sum(s.cpu() for s in group)
        split0 = python_server.worker_cpu()
        rcpu0 = procs.cpu_seconds(self.redis_pid)
        busy0, own0 = procs.machine_busy_seconds(), _own_cpu()
        reads0 = reads_processed(self.redis)
        result = wrk.run(
            self.wrk,
            group[0].url,
            load,
            connections=connections,
            duration=duration,
            timeout_s=timeout_s,
        )
        busy = procs.machine_busy_seconds() - busy0
        reads = reads_processed(self.redis) - reads0 - 1
        own = _own_cpu() - own0
        split1 = python_server.worker_cpu()
        server_cpu = sum(s.cpu() for s in group) - cpu0
        redis_cpu = procs.cpu_seconds(self.redis_pid) - rcpu0
        return Measurement(
            label,
            result,
            server_cpu,
            redis_cpu,
            tuple(split1[p] - split0.get(p, 0.0) for p in sorted(split1)),
            max(0.0, busy - own - server_cpu - redis_cpu - result.wrk_cpu_s),
            max(0, reads),
        )


def _own_cpu() -> float:
    """CPU of this process (all its threads), not of its children."""
    times = os.times()
    return times.user + times.system
