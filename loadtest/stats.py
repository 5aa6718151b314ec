"""Latency histograms, per-route counters and the per-second time series of a run.

Latencies go into a log-bucketed histogram (1 % relative precision from 1 µs to hours),
so memory stays bounded however long the run and histograms merge exactly. Percentiles
use the nearest-rank rule and are clamped to the exact minimum and maximum seen.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

_BASE = 1e-6  # seconds: the lower edge of bucket 0
_GROWTH = 1.01  # each bucket is 1 % wider than the previous one
_LOG_GROWTH = math.log(_GROWTH)


class Histogram:
    """Counts of latencies (in seconds) in logarithmic buckets."""

    __slots__ = ("_buckets", "count", "max", "min", "total")

    def __init__(self) -> None:
        self._buckets: dict[int, int] = {}
        self.count = 0
        self.total = 0.0
        self.min = math.inf
        self.max = 0.0

    def record(self, seconds: float) -> None:
        """Add one latency."""
        value = max(seconds, _BASE)
        index = int(math.log(value / _BASE) / _LOG_GROWTH)
        self._buckets[index] = self._buckets.get(index, 0) + 1
        self.count += 1
        self.total += seconds
        self.min = min(self.min, seconds)
        self.max = max(self.max, seconds)

    def merge(self, other: Histogram) -> None:
        """Add every latency of ``other`` to this histogram."""
        for index, n in other._buckets.items():
            self._buckets[index] = self._buckets.get(index, 0) + n
        self.count += other.count
        self.total += other.total
        self.min = min(self.min, other.min)
        self.max = max(self.max, other.max)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def percentile(self, q: float) -> float | None:
        """The latency at or below which ``q`` percent of the recorded ones fall."""
        if not self.count:
            return None
        rank = max(1, math.ceil(q / 100.0 * self.count))
        seen = 0
        for index in sorted(self._buckets):
            seen += self._buckets[index]
            if seen >= rank:
                middle = _BASE * _GROWTH ** (index + 0.5)
                return min(max(middle, self.min), self.max)
        return self.max

    def summary(self) -> dict[str, float | None]:
        """p50/p90/p99, mean and max, in seconds (None when empty)."""
        return {
            "p50": self.percentile(50),
            "p90": self.percentile(90),
            "p99": self.percentile(99),
            "mean": self.mean,
            "max": self.max if self.count else None,
        }


@dataclass
class RouteStats:
    """What one route (e.g. ``GET /home``) did during the run."""

    latency: Histogram = field(default_factory=Histogram)
    requests: int = 0
    errors: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    def record(self, latency: float, outcome: str, is_error: bool) -> None:
        self.latency.record(latency)
        self.requests += 1
        self.errors += int(is_error)
        self.statuses[outcome] += 1


@dataclass
class Interval:
    """Requests that completed within one interval of the time series."""

    requests: int = 0
    errors: int = 0
    latency: Histogram = field(default_factory=Histogram)


class TimeSeries:
    """Per-interval request counts, errors and latencies, keyed by seconds since start."""

    def __init__(self, interval: float = 1.0) -> None:
        self.interval = interval
        self._slots: dict[int, Interval] = {}

    def record(self, at: float, latency: float, is_error: bool) -> None:
        slot = self._slots.setdefault(max(0, int(at / self.interval)), Interval())
        slot.requests += 1
        slot.errors += int(is_error)
        slot.latency.record(latency)

    def points(self, until: float | None = None) -> list[tuple[float, Interval]]:
        """Every interval from 0 to the last one (or ``until``), empty ones included."""
        last = max(self._slots, default=-1)
        if until is not None:
            last = max(last, math.ceil(until / self.interval) - 1)
        return [(i * self.interval, self._slots.get(i, Interval())) for i in range(last + 1)]

    def window(self, start: float, end: float) -> Interval:
        """All requests completed in the whole intervals between ``start`` and ``end``."""
        merged = Interval()
        for i in range(int(start / self.interval), int(end / self.interval)):
            slot = self._slots.get(i)
            if slot is not None:
                merged.requests += slot.requests
                merged.errors += slot.errors
                merged.latency.merge(slot.latency)
        return merged


class RunStats:
    """Everything measured about requests: per route, overall, over time, per process."""

    def __init__(self, interval: float = 1.0) -> None:
        self.routes: dict[str, RouteStats] = {}
        self.overall = RouteStats()
        self.timeline = TimeSeries(interval)
        self.error_kinds: Counter[str] = Counter()
        self.served_by: Counter[str] = Counter()
        self.connections_opened = 0

    def record(
        self,
        route: str,
        at: float,
        latency: float,
        outcome: str,
        is_error: bool,
        served_by: str | None = None,
    ) -> None:
        """Record one finished request.

        ``outcome`` is the status code as text, or the name of the transport error;
        ``at`` is when it finished, in seconds since the run started.
        """
        self.routes.setdefault(route, RouteStats()).record(latency, outcome, is_error)
        self.overall.record(latency, outcome, is_error)
        self.timeline.record(at, latency, is_error)
        if is_error:
            self.error_kinds[f"{route} -> {outcome}"] += 1
        if served_by is not None:
            self.served_by[served_by] += 1

    @property
    def requests(self) -> int:
        return self.overall.requests

    @property
    def errors(self) -> int:
        return self.overall.errors

    def route_names(self) -> list[str]:
        """Routes in a stable, readable order: by path, then method."""
        return sorted(self.routes, key=_route_key)


def _route_key(route: str) -> tuple[str, str]:
    method, _, rest = route.partition(" ")
    return (rest, method)
