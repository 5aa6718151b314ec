"""Count the Redis commands and round trips a route costs, as Redis itself sees them.

Commands: a raw-socket ``MONITOR`` client reads every command Redis executes. Only
commands on the benchmark's database are kept, and those a Lua script runs (MONITOR
tags them ``[<db> lua]``) are left out: they cost no round trip. Two ECHO markers, sent
on a separate connection before and after the traffic, delimit exactly the commands in
between (Redis feeds MONITOR in execution order).

Round trips: Redis's ``total_reads_processed`` (``INFO stats``) counts the reads it
performs on client sockets, one per batch a client sends; a pipeline or a ``MULTI …
EXEC`` sent in one write is one read, however many commands it holds. Its delta over
the window, less our own markers and ``INFO`` and the background rate of other
clients measured beforehand, is the round trips. (Under concurrent load the same
counter shows how many requests' commands were pipelined together.)
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass

import redis


@dataclass(frozen=True)
class Counts:
    commands: int
    round_trips: float
    mix: Counter[str]


def parse_line(line: str, db: int) -> str | None:
    """The command name of one MONITOR line (``+1700000000.123456 [11 127.0.0.1:5000]
    "GET" "k"``), or None when it is not a command of ``db`` sent by a client."""
    if not line.startswith("+"):
        return None
    _ts, _, rest = line[1:].partition(" [")
    where, _, args = rest.partition("] ")
    db_text, _, client = where.partition(" ")
    if db_text != str(db) or client == "lua":
        return None
    return args.split('"', 2)[1].upper() if args.startswith('"') else args


def reads_processed(client: redis.Redis) -> int:
    """Redis's ``total_reads_processed`` (this call's own read included)."""
    return int(client.info("stats")["total_reads_processed"])


def background_reads(client: redis.Redis, seconds: float = 2.0) -> float:
    """Reads per second that other clients cause while nothing of ours runs."""
    before = reads_processed(client)
    time.sleep(seconds)
    return max(0, reads_processed(client) - before - 1) / seconds


class RedisMonitor:
    """``with RedisMonitor(host, port, db) as mon: w = mon.start(); ...; mon.stop(w)``."""

    def __init__(self, host: str, port: int, db: int) -> None:
        self.host, self.port, self.db = host, port, db
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._marker_client = redis.Redis(host=host, port=port, db=db)

    def __enter__(self) -> RedisMonitor:
        self._sock = socket.create_connection((self.host, self.port), timeout=10)
        self._sock.sendall(b"MONITOR\r\n")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self.mark()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sock is not None:
            self._sock.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._marker_client.close()

    def _read(self) -> None:
        assert self._sock is not None
        buffer = b""
        while True:
            try:
                chunk = self._sock.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\r\n")
            with self._lock:
                self._lines.extend(line.decode(errors="replace") for line in complete)

    def mark(self, timeout: float = 30) -> int:
        """Send a marker and wait until MONITOR shows it; return its line index."""
        marker = "bench-mark-" + secrets.token_hex(6)
        self._marker_client.echo(marker)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for i in range(len(self._lines) - 1, -1, -1):
                    if marker in self._lines[i]:
                        return i
            time.sleep(0.01)
        raise RuntimeError("MONITOR did not show the marker")

    def start(self) -> tuple[int, int, float]:
        """Begin a window: read counter, time, then a marker (so that neither the
        ``INFO`` nor the markers are among the window's commands)."""
        reads, at = reads_processed(self._marker_client), time.monotonic()
        return self.mark(), reads, at

    def stop(self, start: tuple[int, int, float], background: float = 0.0) -> Counts:
        """Commands and round trips since ``start`` (``background``: other clients'
        reads per second, subtracted)."""
        mark, reads0, t0 = start
        end = self.mark()
        # less the two markers and the INFO that reads the counter
        reads = reads_processed(self._marker_client) - reads0 - 3
        reads -= background * (time.monotonic() - t0)
        with self._lock:
            lines = self._lines[mark + 1 : end]
            self._lines.clear()  # later markers are searched from here on
        names = [n for n in (parse_line(line, self.db) for line in lines) if n is not None]
        return Counts(len(names), max(0.0, reads), Counter(names))

    @property
    def client(self) -> redis.Redis:
        return self._marker_client
