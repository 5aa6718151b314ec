"""Watch the commands Redis executes, as Redis itself reports them (``MONITOR``).

:class:`CommandLog` reads redis-py's ``monitor()`` on a thread and keeps every command
in order. Redis feeds MONITOR in execution order, so a marker (an ``ECHO`` sent on
another connection) delimits exactly the commands before and after it: ``mark()``
sends one and waits until it is seen. Commands a Lua script runs are reported with the
client ``lua``; they are no round trip. The benchmark's counter
(``bench.redis_monitor``) is built on the same log.

:class:`RedisMonitor` is the tests' view: the round trips since the last ``clear()``
whose line mentions a text.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

import redis


@dataclass(frozen=True)
class Command:
    """One command as MONITOR reported it."""

    db: int
    client: str  # "address:port", "lua" for a script's commands, "unix" or ""
    args: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.args[0].upper() if self.args else ""

    @property
    def from_script(self) -> bool:
        return self.client == "lua"

    def __str__(self) -> str:
        """Like MONITOR's own line: ``[9 127.0.0.1:5000] "GET" "key"``."""
        return f"[{self.db} {self.client}] " + " ".join(f'"{arg}"' for arg in self.args)


def _command(entry: dict[str, Any]) -> Command:
    client = entry["client_type"]
    if client == "tcp":
        client = f"{entry['client_address']}:{entry['client_port']}"
    return Command(entry["db"], client, tuple(entry["command"].split(" ")))


class CommandLog:
    """``with CommandLog(client) as log: i = log.mark(); ...; log.since(i)``."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client  # also sends the markers
        self._monitor = client.monitor()
        self._commands: list[Command] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, name="redis-monitor", daemon=True)
        self._ended: Exception | None = None  # why the reading thread stopped

    def __enter__(self) -> CommandLog:
        self._monitor.__enter__()
        self._thread.start()
        self.mark()
        return self

    def __exit__(self, *exc: object) -> None:
        self._monitor.__exit__()  # closes the connection: the reading thread ends
        self._thread.join(timeout=5)

    def _read(self) -> None:
        try:
            for entry in self._monitor.listen():
                if entry is not None:
                    with self._lock:
                        self._commands.append(_command(entry))
        except (redis.RedisError, OSError, ValueError) as exc:
            self._ended = exc  # closed by __exit__ (or by Redis), or a line not understood

    def mark(self, timeout: float = 30.0) -> int:
        """Send a marker; when MONITOR has shown it, return its index in the log."""
        marker = "monitor-mark-" + secrets.token_hex(6)
        self.client.echo(marker)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for i in range(len(self._commands) - 1, -1, -1):
                    if marker in self._commands[i].args:
                        return i
            if self._ended is not None:
                raise RuntimeError(f"MONITOR stopped reading: {self._ended!r}")
            time.sleep(0.005)
        raise TimeoutError("MONITOR did not show the marker")

    def between(self, start: int, end: int) -> list[Command]:
        """The commands after index ``start`` and before index ``end``."""
        with self._lock:
            return self._commands[start + 1 : end]


class RedisMonitor:
    """Round trips since the last ``clear()``, as MONITOR lines (tests)."""

    def __init__(self, redis_url: str) -> None:
        self._client = redis.Redis.from_url(redis_url, decode_responses=True)
        self._log = CommandLog(self._client)
        self._start = 0

    def __enter__(self) -> RedisMonitor:
        self._log.__enter__()
        self.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        self._log.__exit__()
        self._client.close()

    def clear(self) -> None:
        self._start = self._log.mark()

    def commands(self, containing: str) -> list[str]:
        """Round trips since the last clear() whose arguments include ``containing``."""
        lines = self._log.between(self._start, self._log.mark())
        return [str(c) for c in lines if not c.from_script and containing in str(c)]
