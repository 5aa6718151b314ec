"""Prometheus metrics: every name the app exports, how they are recorded, and ``/metrics``.

Forked workers each count in their own files under ``PROMETHEUS_MULTIPROC_DIR``
(``prometheus_client``'s multiprocess mode); ``GET /metrics``, whichever worker answers
it, adds them all up. The parent calls :func:`prepare_directory` before forking (it
creates the directory, or empties the one the environment names, and exports it), and
:func:`worker_exited` whenever a worker exits, so that the per-process gauges of a dead
worker disappear while its counters keep counting in the totals. ``prometheus_client``
chooses multiprocess mode when it is first imported, so this module imports it only
inside functions, after :func:`prepare_directory` has run.

Exported names (the Grafana dashboard uses only these):

- ``app_http_requests_total{handler,method,status}`` and
  ``app_http_request_duration_seconds{handler,method}`` (histogram); ``handler`` is
  the route pattern (``/home``), never the raw path;
- ``app_sessions_created_total``, ``app_sessions_ended_total{reason}`` (see
  :mod:`sessions.events`), ``app_session_cache_lookups_total{result}`` (hit, miss);
- ``app_redis_commands_total{script}``, ``app_redis_command_duration_seconds``
  (histogram), ``app_redis_errors_total{kind}`` (timeout, connection, reply, other);
- ``app_logins_total{result}`` (success, failure, throttled),
  ``app_registrations_total{result}`` (success, invalid, email_taken, throttled,
  unavailable);
- per worker process (label ``pid``, gone when the worker exits):
  ``app_bcrypt_queue_length``, ``app_mysql_pool_in_use``, ``app_process_cpu_seconds``,
  ``app_process_resident_memory_bytes``, ``app_process_open_fds``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from bisect import bisect_left
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sessions.events import SessionEvents

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
REDIS_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0)
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))

#: Route pattern -> {status: result} for the sign-in and registration counters.
OUTCOMES: dict[str, tuple[str, dict[int, str]]] = {
    "/login": ("logins", {200: "success", 303: "success", 401: "failure", 429: "throttled"}),
    "/register": (
        "registrations",
        {
            201: "success",
            303: "success",
            400: "invalid",
            409: "email_taken",
            429: "throttled",
            503: "unavailable",
        },
    ),
}


def prepare_directory(path: str | None = None) -> Path:
    """In the parent, before forking: an empty multiprocess directory, exported.

    Uses ``path``, else ``$PROMETHEUS_MULTIPROC_DIR``, else a new temporary directory.
    Files left by an earlier run are removed: counters start from zero with the server.
    """
    directory = Path(
        path or os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="app-metrics-")
    )
    directory.mkdir(parents=True, exist_ok=True)
    for entry in directory.iterdir():
        if entry.suffix == ".db":
            entry.unlink()
    os.environ[MULTIPROC_ENV] = str(directory)
    return directory


def remove_directory(directory: Path) -> None:
    """In the parent, at exit: remove a directory :func:`prepare_directory` created."""
    shutil.rmtree(directory, ignore_errors=True)


def worker_exited(pid: int) -> None:
    """In the parent, when worker ``pid`` exited: drop its per-process gauges."""
    if MULTIPROC_ENV in os.environ:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def redis_error_kind(error: BaseException) -> str:
    from redis import exceptions

    if isinstance(error, exceptions.TimeoutError | TimeoutError):
        return "timeout"
    if isinstance(error, exceptions.ConnectionError | ConnectionError):
        return "connection"
    if isinstance(error, exceptions.ResponseError):
        return "reply"
    return "other"


class Metrics:
    """This process's metrics. Create it in the worker, after the fork."""

    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.multiprocess = MULTIPROC_ENV in os.environ
        self.registry = CollectorRegistry()
        # Multiprocess: every process writes its own files and /metrics reads them all;
        # otherwise the metrics live in this registry.
        reg = None if self.multiprocess else self.registry
        if self.multiprocess:
            from prometheus_client.multiprocess import MultiProcessCollector

            MultiProcessCollector(self.registry)

        def per_process(name: str, doc: str) -> Any:
            return Gauge(name, doc, registry=reg, multiprocess_mode="liveall")

        self.http_requests = Counter(
            "app_http_requests_total", "HTTP requests answered, by route pattern, method, status.",
            ["handler", "method", "status"], registry=reg,
        )  # fmt: skip
        self.http_duration = Histogram(
            "app_http_request_duration_seconds", "Time from request received to response finished.",
            ["handler", "method"], buckets=HTTP_BUCKETS, registry=reg,
        )  # fmt: skip
        self.sessions_created = Counter(
            "app_sessions_created_total", "Sessions stored under a new id.", registry=reg
        )
        self.sessions_ended = Counter(
            "app_sessions_ended_total", "Sessions ended, by reason.", ["reason"], registry=reg
        )
        self.cache_lookups = Counter(
            "app_session_cache_lookups_total", "Session reads by the process's cache: hit or miss.",
            ["result"], registry=reg,
        )  # fmt: skip
        self.redis_commands = Counter(
            "app_redis_commands_total", "Session scripts run (EVALSHA), by script.", ["script"],
            registry=reg,
        )  # fmt: skip
        self.redis_duration = Histogram(
            "app_redis_command_duration_seconds", "Time a request waited for a session script.",
            buckets=REDIS_BUCKETS, registry=reg,
        )  # fmt: skip
        self.redis_errors = Counter(
            "app_redis_errors_total",
            "Session scripts that failed, by kind.",
            ["kind"],
            registry=reg,
        )
        self.outcomes = {
            "logins": Counter(
                "app_logins_total",
                "Sign-ins: success, failure, throttled.",
                ["result"],
                registry=reg,
            ),
            "registrations": Counter(
                "app_registrations_total", "Registrations by result.", ["result"], registry=reg
            ),
        }
        self.bcrypt_queue = per_process(
            "app_bcrypt_queue_length", "bcrypt hashes waiting for a thread."
        )
        self.mysql_in_use = per_process("app_mysql_pool_in_use", "MariaDB connections in use.")
        self.cpu = per_process(
            "app_process_cpu_seconds", "CPU time used by the process (user + system)."
        )
        self.rss = per_process(
            "app_process_resident_memory_bytes", "Resident memory of the process."
        )
        self.fds = per_process("app_process_open_fds", "Open file descriptors of the process.")
        self._requests: dict[tuple[str, str, int], int] = {}
        self._timings: dict[tuple[str, str], _Timing] = {}
        self._cache_hits = self._cache_misses = 0
        self._scripts: dict[str, int] = {}
        self._redis_timing = _Timing(REDIS_BUCKETS)
        self._redis_errors: dict[str, int] = {}
        self._samplers: list[Callable[[], None]] = [self._sample_process]
        self._page_size = os.sysconf("SC_PAGE_SIZE")

    # -- the hot path -----------------------------------------------------------------

    # The hot path only adds to plain dicts and integers (well under a microsecond each);
    # :meth:`flush` moves the sums into the metrics, whose every update of a shared
    # multiprocess file costs a lock and a write: a worker flushes every second and
    # before it renders /metrics or stops. A worker killed outright loses at most its
    # last second of counts; what it had flushed stays in the totals.

    def request(self, handler: str, method: str, status: int, seconds: float) -> None:
        """One finished request (``handler``: the route pattern)."""
        if method not in METHODS:
            method = "other"  # a client must not mint label values
        key = (handler, method, status)
        counts = self._requests
        counts[key] = counts.get(key, 0) + 1
        timing = self._timings.get((handler, method))
        if timing is None:
            timing = self._timings[(handler, method)] = _Timing(HTTP_BUCKETS)
        timing.add(seconds)

    def cache_lookup(self, hit: bool) -> None:
        if hit:
            self._cache_hits += 1
        else:
            self._cache_misses += 1

    def redis_command(self, script: str, seconds: float, error: BaseException | None) -> None:
        self._scripts[script] = self._scripts.get(script, 0) + 1
        self._redis_timing.add(seconds)
        if error is not None:
            kind = redis_error_kind(error)
            self._redis_errors[kind] = self._redis_errors.get(kind, 0) + 1

    def flush(self) -> None:
        """Add what was counted since the last flush to the metrics."""
        requests, self._requests = self._requests, {}
        for (handler, method, status), n in requests.items():
            self.http_requests.labels(handler, method, str(status)).inc(n)
            outcome = OUTCOMES.get(handler)
            if outcome is not None and status in outcome[1]:
                self.outcomes[outcome[0]].labels(outcome[1][status]).inc(n)
        for (handler, method), timing in self._timings.items():
            timing.flush_into(self.http_duration.labels(handler, method))
        for result, n in (("hit", self._cache_hits), ("miss", self._cache_misses)):
            if n:
                self.cache_lookups.labels(result).inc(n)
        self._cache_hits = self._cache_misses = 0
        scripts, self._scripts = self._scripts, {}
        for script, n in scripts.items():
            self.redis_commands.labels(script).inc(n)
        self._redis_timing.flush_into(self.redis_duration)
        errors, self._redis_errors = self._redis_errors, {}
        for kind, n in errors.items():
            self.redis_errors.labels(kind).inc(n)

    # -- per-process gauges -----------------------------------------------------------

    def watch(self, *, executor: Any = None, database: Any = None) -> None:
        """Sample the bcrypt queue of ``executor`` and the pool of ``database`` too."""
        if executor is not None:
            queue = executor._work_queue  # ThreadPoolExecutor's queue of waiting work
            self._samplers.append(lambda: self.bcrypt_queue.set(queue.qsize()))
        if database is not None:
            self._samplers.append(lambda: self.mysql_in_use.set(database.connections_in_use))

    def sample(self) -> None:
        """Refresh this process's gauges (a worker does it every few seconds)."""
        for sampler in self._samplers:
            sampler()

    def _sample_process(self) -> None:
        times = os.times()
        self.cpu.set(times.user + times.system)
        try:
            with open("/proc/self/statm", "rb") as statm:
                self.rss.set(int(statm.read().split()[1]) * self._page_size)
            self.fds.set(len(os.listdir("/proc/self/fd")))
        except OSError:  # not Linux
            pass

    def render(self) -> bytes:
        """The text exposition of every worker's metrics, added up."""
        from prometheus_client import generate_latest

        self.flush()
        self.sample()
        return generate_latest(self.registry)

    def session_events(self) -> SessionEvents:
        """A :class:`sessions.events.SessionEvents` that counts into these metrics."""
        return MetricsSessionEvents(self)

    def names(self) -> set[str]:
        """Every sample name these metrics can export (``_total``, ``_bucket``... included)."""
        suffixes = {
            "counter": ("_total",),
            "histogram": ("_bucket", "_sum", "_count"),
            "gauge": ("",),
        }
        collectors = [v for v in vars(self).values() if hasattr(v, "describe")]
        collectors += list(self.outcomes.values())
        return {
            family.name + suffix
            for collector in collectors
            for family in collector.describe()
            for suffix in suffixes[family.type]
        }


class MetricsSessionEvents(SessionEvents):
    """Session store events counted into :class:`Metrics`."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics
        self._ended: dict[str, Any] = {}

    def created(self, digest: str, user_id: int | None) -> None:
        self.metrics.sessions_created.inc()

    def ended(self, reason: str, digest: str, user_id: int | None) -> None:
        counter = self._ended.get(reason)
        if counter is None:
            counter = self._ended[reason] = self.metrics.sessions_ended.labels(reason)
        counter.inc()

    def cache_lookup(self, hit: bool) -> None:
        self.metrics.cache_lookup(hit)

    def command(self, script: str, seconds: float, error: Exception | None) -> None:
        self.metrics.redis_command(script, seconds, error)


class _Timing:
    """Observations of one histogram (child), summed until :meth:`flush_into`."""

    __slots__ = ("bounds", "buckets", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def add(self, seconds: float) -> None:
        self.buckets[bisect_left(self.bounds, seconds)] += 1  # the first bound >= seconds
        self.total += seconds

    def flush_into(self, histogram: Any) -> None:
        """Add the sums to a ``prometheus_client`` histogram (or one of its children).

        ``Histogram.observe`` takes one value at a time; the histogram's per-bucket
        values and sum (``_buckets``, ``_sum``: the same in single- and multiprocess
        mode) take the counts at once. tests/test_metrics.py checks buckets, count, sum.
        """
        if not any(self.buckets):
            return
        histogram._sum.inc(self.total)
        for value, n in zip(histogram._buckets, self.buckets, strict=True):
            if n:
                value.inc(n)
        self.buckets = [0] * len(self.buckets)
        self.total = 0.0
