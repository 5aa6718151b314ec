"""Process tables and sockets of the servers under test, read with psutil."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import psutil

T = TypeVar("T")


def worker_pids(parent: int) -> set[int]:
    """PIDs of the direct children of ``parent`` (a server's forked workers)."""
    try:
        return {child.pid for child in psutil.Process(parent).children()}
    except psutil.NoSuchProcess:
        return set()


def alive(pid: int) -> bool:
    """Running (an exited process waiting to be reaped counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def established_connections_to(port: int) -> int:
    """Open TCP connections (IPv4) of this machine whose remote end is ``port``."""
    return sum(
        1
        for conn in psutil.net_connections(kind="tcp4")
        if conn.raddr and conn.raddr.port == port and conn.status == psutil.CONN_ESTABLISHED
    )


def wait_for(predicate: Callable[[], T], timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll ``predicate`` until it returns something truthy, and return that; fail after
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
