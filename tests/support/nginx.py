"""nginx for tests and the benchmark: the binary, the project's config rendered for a
temporary prefix, starting it in a process group of its own, and stopping it.

The config always comes from ``deploy/nginx.conf`` through ``deploy/render-nginx-conf.py``,
as ``scripts/stack.sh`` renders it; nothing here uses ``/etc/nginx``.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
RENDERER = REPO_ROOT / "deploy" / "render-nginx-conf.py"
STATIC_ROOT = REPO_ROOT / "static"


def nginx_binary() -> str | None:
    """``$NGINX``, ``nginx`` on PATH, or where Debian and source builds put it."""
    for candidate in (
        os.environ.get("NGINX"),
        shutil.which("nginx"),
        "/usr/sbin/nginx",
        "/usr/local/sbin/nginx",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def render_config(
    prefix: Path,
    *,
    listen_port: int,
    upstream_ports: Sequence[int],
    worker_processes: int | None = None,
    extra: Sequence[str] = (),
) -> Path:
    """Write ``prefix/nginx.conf`` for nginx on 127.0.0.1:``listen_port`` in front of
    the app on ``upstream_ports``; ``extra``: more options of the renderer (TLS)."""
    conf = prefix / "nginx.conf"
    render = [
        sys.executable, str(RENDERER), "--prefix", str(prefix), "--output", str(conf),
        "--listen", f"127.0.0.1:{listen_port}", "--static-root", str(STATIC_ROOT), *extra,
    ]  # fmt: skip
    if worker_processes is not None:
        render += ["--worker-processes", str(worker_processes)]
    for port in upstream_ports:
        render += ["--upstream", f"127.0.0.1:{port}"]
    if os.geteuid() == 0:
        # As scripts/stack.sh does: workers as the checkout's owner, not `nobody`, so they
        # can read static/ and temporary directories wherever these are.
        owner = REPO_ROOT.stat()
        user = f"{pwd.getpwuid(owner.st_uid).pw_name} {grp.getgrgid(owner.st_gid).gr_name}"
        render += ["--user", user]
    subprocess.run(render, check=True, cwd=REPO_ROOT)
    return conf


def command(nginx: str, prefix: Path, conf: Path) -> list[str]:
    """nginx for this prefix and config, logging to stderr (add ``-t`` to check it)."""
    return [nginx, "-e", "stderr", "-p", str(prefix), "-c", str(conf)]


def start(nginx: str, prefix: Path, conf: Path, log_path: Path) -> subprocess.Popen[bytes]:
    """nginx in the foreground, in a process group of its own, its output in ``log_path``."""
    with log_path.open("wb") as out:
        return subprocess.Popen(
            [*command(nginx, prefix, conf), "-g", "daemon off;"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes], *, timeout: float = 15) -> int:
    """Graceful stop (SIGQUIT), then SIGKILL for the group if it does not end in time;
    nothing of the group is left afterwards. Returns the master's exit status."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    kill_group(proc.pid)
    return proc.returncode


def kill_group(pgid: int) -> None:
    """Kill whatever is left in process group ``pgid`` (workers of a killed master)."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
