"""A private ``redis-server`` for one test, started from ``deploy/redis.conf``.

It runs on a free loopback port with its data in the test's own folder, so a test may
kill, pause, restart or restore it, or give it an ACL, without touching the shared
Redis. It is stopped by its PID when the test ends, failed or not.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import redis

REPO_ROOT = Path(__file__).resolve().parents[2]
REDIS_CONF = REPO_ROOT / "deploy" / "redis.conf"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class OwnRedis:
    def __init__(self, directory: Path, *extra: str) -> None:
        self.directory = directory
        self.port = free_port()
        self.extra = list(extra)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra: str, password: tuple[str, str] | None = None) -> None:
        """Start (again) on the same port and folder; wait until it answers PING."""
        argv = [
            "redis-server",
            str(REDIS_CONF),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--logfile", str(self.directory / "redis.log"),
            *self.extra,
            *extra,
        ]  # fmt: skip
        self.process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                client = redis.Redis(
                    port=self.port,
                    username=password[0] if password else None,
                    password=password[1] if password else None,
                    socket_timeout=1,
                )
                with client:
                    if client.ping():
                        return
            except redis.RedisError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start: {self.log_tail()}")
            time.sleep(0.05)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, decode_responses=True)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        os.kill(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL: a crash, with no chance to write anything more to disk."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGCONT)  # in case a test left it paused
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.kill()

    def log_tail(self) -> str:
        path = self.directory / "redis.log"
        return path.read_text()[-2000:] if path.exists() else "(no log)"
