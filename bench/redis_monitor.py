"""Count the Redis commands and round trips a route costs, as Redis itself sees them.

Commands: redis-py's ``monitor()`` reads every command Redis executes
(``tests.support.monitor.CommandLog``). Only commands on the benchmark's database are
kept, and those a Lua script runs are left out: they cost no round trip. Two ECHO
markers, sent on a separate connection before and after the traffic, delimit exactly the
commands in between (Redis feeds MONITOR in execution order).

Round trips: Redis's ``total_reads_processed`` (``INFO stats``) counts the reads it
performs on client sockets, one per batch a client sends; a pipeline or a ``MULTI …
EXEC`` sent in one write is one read, however many commands it holds. Its delta over
the window, less our own markers and ``INFO`` and the background rate of other
clients measured beforehand, is the round trips. (Under concurrent load the same
counter shows how many requests' commands were pipelined together.)
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

import redis

from tests.support.monitor import CommandLog


@dataclass(frozen=True)
class Counts:
    commands: int
    round_trips: float
    mix: Counter[str]


def reads_processed(client: redis.Redis) -> int:
    """Redis's ``total_reads_processed`` (this call's own read included)."""
    return int(client.info("stats")["total_reads_processed"])


def background_reads(client: redis.Redis, seconds: float = 2.0) -> float:
    """Reads per second that other clients cause while nothing of ours runs."""
    before = reads_processed(client)
    time.sleep(seconds)
    return max(0, reads_processed(client) - before - 1) / seconds


class RedisMonitor:
    """``with RedisMonitor(redis_url) as mon: w = mon.start(); ...; mon.stop(w)``."""

    def __init__(self, redis_url: str) -> None:
        self.client = redis.Redis.from_url(redis_url)
        self.db = int(self.client.connection_pool.connection_kwargs.get("db", 0))
        self._log = CommandLog(self.client)

    def __enter__(self) -> RedisMonitor:
        self._log.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._log.__exit__()
        self.client.close()

    def start(self) -> tuple[int, int, float]:
        """Begin a window: read counter, time, then a marker (so that neither the
        ``INFO`` nor the markers are among the window's commands)."""
        reads, at = reads_processed(self.client), time.monotonic()
        return self._log.mark(), reads, at

    def stop(self, start: tuple[int, int, float], background: float = 0.0) -> Counts:
        """Commands and round trips since ``start`` (``background``: other clients'
        reads per second, subtracted)."""
        mark, reads0, t0 = start
        end = self._log.mark()
        # less the two markers and the INFO that reads the counter
        reads = reads_processed(self.client) - reads0 - 3
        reads -= background * (time.monotonic() - t0)
        names = [
            c.name for c in self._log.between(mark, end) if c.db == self.db and not c.from_script
        ]
        return Counts(len(names), max(0.0, reads), Counter(names))
