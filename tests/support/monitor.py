"""Count the commands Redis receives, as Redis itself reports them (``MONITOR``).

Commands a Lua script runs are reported by MONITOR with ``[<db> lua]``; they are not
round trips and are excluded. ``commands()`` waits for a marker command, sent after
the traffic under test, so every earlier command has been seen.
"""

from __future__ import annotations

import secrets
import socket
import threading
from urllib.parse import urlsplit

import redis


class RedisMonitor:
    def __init__(self, redis_url: str) -> None:
        parts = urlsplit(redis_url)
        self._addr = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._url = redis_url
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RedisMonitor:
        self._sock = socket.create_connection(self._addr, timeout=5)
        self._sock.sendall(b"MONITOR\r\n")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self._wait_for(self._mark())
        self.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._sock is not None:
            self._sock.close()

    def _read(self) -> None:
        buffer = b""
        assert self._sock is not None
        while True:
            try:
                chunk = self._sock.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            *complete, buffer = buffer.split(b"\r\n")
            with self._lock:
                self._lines.extend(line.decode(errors="replace") for line in complete)

    def _mark(self) -> str:
        marker = "monitor-mark-" + secrets.token_hex(4)
        client = redis.Redis.from_url(self._url)
        try:
            client.echo(marker)
        finally:
            client.close()
        return marker

    def _wait_for(self, marker: str, timeout: float = 5.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if any(marker in line for line in self._lines):
                    return
            time.sleep(0.01)
        raise TimeoutError("MONITOR did not report the marker")

    def clear(self) -> None:
        with self._lock:
            self._lines.clear()

    def commands(self, containing: str) -> list[str]:
        """Round trips since the last clear() whose arguments include ``containing``."""
        self._wait_for(self._mark())
        with self._lock:
            lines = list(self._lines)
        return [line for line in lines if containing in line and " lua]" not in line]
