"""Start ``server.py`` as a real subprocess for tests that need forked workers.

A :class:`ServerProcess` is the whole server as a supervisor would see it: the parent
PID, the URL it serves, and its log. Tests start it with the suite's own MariaDB
database, Redis database and key prefix, so nothing touches development data.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.http import ssl_context

REPO_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A running ``server.py``; ``stop()`` sends SIGTERM to the parent and waits."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    address: str = "127.0.0.1"
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}"

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if (
                    httpx.get(self.url + "/healthz", timeout=1, verify=ssl_context()).status_code
                    == 200
                ):
                    return
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.1)
        raise RuntimeError(f"server not ready after {timeout}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> int:
        """Signal the parent process and wait; kill the whole group if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        return self.proc.returncode


def start_server(
    *,
    mysql_url: str,
    redis_url: str,
    redis_prefix: str,
    log_dir: Path,
    processes: int = 2,
    args: Sequence[str] = (),
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> ServerProcess:
    """Start ``server.py`` with the test stores and wait until it answers ``/healthz``."""
    port = port or free_port()
    log_path = log_dir / f"server-{port}.log"
    cmd = [
        sys.executable,
        str(REPO_ROOT / "server.py"),
        f"--port={port}",
        "--address=127.0.0.1",
        f"--processes={processes}",
        f"--mysql_url={mysql_url}",
        f"--redis_url={redis_url}",
        f"--redis_prefix={redis_prefix}",
        "--cookie_secret=test-secret-" + "x" * 32,
        "--bcrypt_rounds=4",
        "--worker_threads=2",
        "--register_max_per_ip=0",  # the suite registers every account from 127.0.0.1
        *args,
    ]
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    child_env.update(env or {})
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=child_env,
            start_new_session=True,
        )
    server = ServerProcess(proc=proc, port=port, log_path=log_path)
    try:
        server.wait_ready()
    except Exception:
        server.stop(signal.SIGKILL, timeout=5)
        raise
    return server
