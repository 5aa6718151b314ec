"""Count the Redis commands a route sends, as Redis itself sees them (``MONITOR``).

A raw-socket MONITOR client reads every command Redis executes. Only commands on the
benchmark's database are kept, and those a Lua script runs (MONITOR tags them
``[<db> lua]``) are left out: they cost no round trip. Two ECHO markers, sent on a
separate connection before and after the traffic, delimit exactly the commands in
between (Redis feeds MONITOR in execution order).

Round trips are fewer than commands when a client pipelines: a ``MULTI … EXEC``
block, or commands from one connection executed back to back (no other client's
command between them, less than ``BURST_US`` apart), count as one round trip. The
requests are sent one at a time, so the commands of one request are never interleaved
with another's, and two real round trips from one connection are separated by at least
a reply and the client's next write.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass

import redis

BURST_US = 20.0


@dataclass(frozen=True)
class Command:
    ts: float
    client: str
    name: str


@dataclass(frozen=True)
class Counts:
    commands: int
    round_trips: int
    mix: Counter[str]


def parse_line(line: str, db: int) -> Command | None:
    """One MONITOR line (``+1700000000.123456 [11 127.0.0.1:5000] "GET" "k"``), or None
    when it is not a command of ``db`` run by a client."""
    if not line.startswith("+"):
        return None
    ts_text, _, rest = line[1:].partition(" [")
    where, _, args = rest.partition("] ")
    db_text, _, client = where.partition(" ")
    if db_text != str(db) or client == "lua":
        return None
    name = args.split('"', 2)[1].upper() if args.startswith('"') else args
    return Command(float(ts_text), client, name)


def count(commands: list[Command]) -> Counts:
    """Commands, round trips (pipelines and MULTI/EXEC merged) and the command mix."""
    trips = 0
    in_multi: set[str] = set()
    prev: Command | None = None
    for cmd in commands:
        if cmd.client in in_multi:
            if cmd.name in ("EXEC", "DISCARD"):
                in_multi.discard(cmd.client)
        elif prev is not None and prev.client == cmd.client and (cmd.ts - prev.ts) * 1e6 < BURST_US:
            pass  # pipelined with the previous command
        else:
            trips += 1
        if cmd.name == "MULTI":
            in_multi.add(cmd.client)
        prev = cmd
    return Counts(len(commands), trips, Counter(c.name for c in commands))


class RedisMonitor:
    """``with RedisMonitor(url, db) as mon: ... ; mon.window()`` per measured window."""

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

    def start(self) -> int:
        return self.mark()

    def stop(self, start: int) -> Counts:
        """Counts of the commands between the marker ``start`` and a new one."""
        end = self.mark()
        with self._lock:
            lines = self._lines[start + 1 : end]
            self._lines.clear()  # later markers are searched from here on
        parsed = [parse_line(line, self.db) for line in lines]
        return count([c for c in parsed if c is not None])
