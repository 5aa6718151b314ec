"""Start and stop the servers under test; read their workers' CPU time and memory.

Each server runs in its own session (process group) with its output in a log file.
``stop()`` sends SIGTERM to the parent only (the supervisor passes it on to its
workers) and then checks that the parent and every worker it had are gone; whatever
is left is killed and reported, so the benchmark never leaves a server behind.
"""

from __future__ import annotations

import contextlib
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
import psutil

from tests.support import nginx as nginx_tools

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` so far (0 when it has exited)."""
    try:
        times = psutil.Process(pid).cpu_times()
    except psutil.NoSuchProcess:
        return 0.0
    return times.user + times.system


def machine_busy_seconds() -> float:
    """CPU seconds all cores have spent busy (not idle, not waiting for I/O) since boot."""
    t = psutil.cpu_times()
    return t.user + t.nice + t.system + t.irq + t.softirq + t.steal


def rss_mb(pid: int) -> float:
    """Resident memory (VmRSS) of ``pid`` in MiB."""
    return psutil.Process(pid).memory_info().rss / (1 << 20)


def alive(pid: int) -> bool:
    return psutil.pid_exists(pid)


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    """Poll ``url`` until it answers 200; fail at once if ``proc`` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args!r} exited with {proc.returncode}:\n"
                + log.read_text(errors="replace")[-3000:]
            )
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.1)
    raise RuntimeError(
        f"{url} did not answer 200 within {timeout:.0f} s:\n"
        + log.read_text(errors="replace")[-3000:]
    )


@dataclass
class Server:
    """A started server: a forking Python server, or nginx."""

    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path
    forks: bool = True  # workers are children of proc (server.py, hello_server, nginx)
    stop_signal: int = signal.SIGTERM
    seen_workers: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        """The worker PIDs (children of the parent), or the parent when it does not fork."""
        if not self.forks:
            pids = [self.proc.pid]
        else:
            try:
                pids = sorted(c.pid for c in psutil.Process(self.proc.pid).children())
            except psutil.NoSuchProcess:
                pids = []
        self.seen_workers.update(pids)
        return pids

    def worker_cpu(self) -> dict[int, float]:
        """CPU seconds used so far by each current worker."""
        return {pid: cpu_seconds(pid) for pid in self.workers()}

    def cpu(self) -> float:
        """CPU seconds used so far by the parent and its current workers."""
        return cpu_seconds(self.proc.pid) + sum(cpu_seconds(p) for p in self.workers())

    def wait_idle(self, limit: float = 60.0, interval: float = 0.5) -> None:
        """Wait until the workers use under 5% of a core (queued work finished)."""
        deadline = time.monotonic() + limit
        before = self.cpu()
        while time.monotonic() < deadline:
            time.sleep(interval)
            now = self.cpu()
            if now - before < 0.05 * interval:
                return
            before = now

    def stop(self, timeout: float = 20) -> list[int]:
        """Stop gracefully; return the PIDs that had to be killed (should be empty)."""
        self.workers()
        if self.proc.poll() is None:
            self.proc.send_signal(self.stop_signal)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        deadline = time.monotonic() + 5
        while any(alive(p) for p in self.seen_workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        leftover = [p for p in self.seen_workers if alive(p)]
        for pid in leftover:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.killpg(self.proc.pid, 0)
        except ProcessLookupError:
            pass
        else:  # anything else still in the group
            os.killpg(self.proc.pid, signal.SIGKILL)
            leftover.append(-self.proc.pid)
        return leftover


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def _spawn(cmd: Sequence[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            list(cmd),
            cwd=REPO_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_clean_env(),
            start_new_session=True,
        )


def start_app(
    log_dir: Path,
    *,
    processes: int,
    redis_url: str,
    mysql_url: str,
    cookie_secret: str,
    bcrypt_rounds: int,
    access_log: bool,
    extra: Sequence[str] = (),
    name: str = "app",
) -> Server:
    """``server.py`` on a free port, ready when ``/healthz`` answers 200."""
    port = free_port()
    log = log_dir / f"{name}-{port}.log"
    cmd = [
        sys.executable,
        "server.py",
        f"--port={port}",
        "--address=127.0.0.1",
        f"--processes={processes}",
        f"--redis_url={redis_url}",
        f"--mysql_url={mysql_url}",
        f"--cookie_secret={cookie_secret}",
        f"--bcrypt_rounds={bcrypt_rounds}",
        f"--access_log={str(access_log).lower()}",
        # Every benchmark user registers from 127.0.0.1, and the login storm measures
        # how queued hashing behaves: neither limit may cut in.
        "--register_max_per_ip=0",
        "--hash_queue_size=0",
        *extra,
    ]
    server = Server(name, port, _spawn(cmd, log), log)
    _ready(server, "/healthz", processes)
    return server


def start_hello(
    log_dir: Path, *, processes: int, access_log: bool, extra: Sequence[str] = ()
) -> Server:
    """``bench/hello_server.py`` on a free port, ready when ``/`` answers 200."""
    port = free_port()
    log = log_dir / f"hello-{port}.log"
    cmd = [
        sys.executable,
        "-m",
        "bench.hello_server",
        f"--port={port}",
        "--address=127.0.0.1",
        f"--processes={processes}",
        f"--access_log={str(access_log).lower()}",
        *extra,
    ]
    server = Server("hello", port, _spawn(cmd, log), log)
    _ready(server, "/", processes)
    return server


def _ready(server: Server, path: str, processes: int) -> None:
    try:
        wait_http(server.url + path, server.proc, server.log)
        want = processes or os.cpu_count() or 1
        deadline = time.monotonic() + 20
        while want > 1 and len(server.workers()) < want and time.monotonic() < deadline:
            time.sleep(0.05)
    except BaseException:
        server.stop(timeout=5)
        raise


def start_nginx(
    nginx: str, conf: Path, prefix: Path, port: int, log: Path, *, ready_path: str = "/healthz"
) -> Server:
    """nginx in the foreground (``daemon off``) with a rendered config."""
    cmd = [*nginx_tools.command(nginx, prefix, conf), "-g", "daemon off;"]
    server = Server("nginx", port, _spawn(cmd, log), log, stop_signal=signal.SIGQUIT)
    try:
        wait_http(server.url + ready_path, server.proc, server.log, timeout=20)
    except BaseException:
        server.stop(timeout=5)
        raise
    return server
