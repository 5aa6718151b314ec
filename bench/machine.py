"""Describe the machine and the software versions the figures were measured with."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

import redis
import tornado


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def os_release() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


def _dist(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def nginx_version(nginx: str | None) -> str:
    if not nginx:
        return "not used"
    out = subprocess.run([nginx, "-v"], capture_output=True, text=True, check=False)
    return (out.stderr or out.stdout).strip().split("/", 1)[-1] or "?"


def code_version(repo: Path) -> str:
    """The commit measured, and the top-level paths with uncommitted changes, if any.

    A tree exported with ``git archive`` (no ``.git``) names its commit in a file
    ``COMMIT`` at its root (``git get-tar-commit-id`` prints it).
    """
    exported = repo / "COMMIT"
    if not (repo / ".git").exists() and exported.exists():
        return f"{exported.read_text().strip()[:12]} (exported with git archive)"

    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], capture_output=True, text=True, check=False, cwd=repo)
        return out.stdout.rstrip()

    commit = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = sorted(
        {
            line[3:].split("/", 1)[0]
            for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
            if line
        }
    )
    return commit + (f" (uncommitted changes in {', '.join(changed)})" if changed else "")


def describe(
    redis_client: redis.Redis, mariadb_version: str, wrk: str, nginx: str | None
) -> list[tuple[str, str]]:
    """``(label, value)`` rows for the report."""
    info = redis_client.info("server")
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return [
        ("Code", code_version(Path(__file__).resolve().parent.parent)),
        (
            "CPU",
            f"{cpu_model()}, {os.cpu_count()} cores (shared by the load generator, "
            "Redis, MariaDB and the servers)",
        ),
        ("Memory", f"{mem:.1f} GiB"),
        ("OS", f"{os_release()}, Linux {platform.release()}"),
        ("Python", f"{platform.python_version()} ({platform.python_implementation()})"),
        ("Tornado", tornado.version),
        ("redis-py", f"{redis.__version__} (hiredis {_dist('hiredis')})"),
        ("aiomysql / PyMySQL", f"{_dist('aiomysql')} / {_dist('PyMySQL')}"),
        ("bcrypt", _dist("bcrypt")),
        ("Redis server", str(info.get("redis_version", "?"))),
        ("MariaDB", mariadb_version),
        ("wrk", wrk),
        ("nginx", nginx_version(nginx)),
    ]
