"""The topology script's command line: start prints a URL that serves, stop ends it by PID."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import redis

from scripts.redis_topology import Topology


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scripts.redis_topology", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_start_prints_a_url_that_serves_and_stop_ends_the_processes(tmp_path: Path) -> None:
    folder = str(tmp_path / "single")
    started = _cli("start", "single", "--dir", folder)
    assert started.returncode == 0, started.stderr
    url = started.stdout.strip()
    assert url.startswith("redis://127.0.0.1:")
    topology = Topology.load(folder)
    try:
        client = redis.Redis.from_url(url)
        assert client.ping() is True
        client.close()
        again = _cli("start", "single", "--dir", folder)  # running: reused, not restarted
        assert again.stdout.strip() == url
        assert "already running" in again.stderr
        assert _cli("url", "--dir", folder).stdout.strip() == url
    finally:
        stopped = _cli("stop", "--dir", folder)
    assert stopped.returncode == 0, stopped.stderr
    assert not any(topology.alive(node) for node in topology.nodes)
    assert _cli("url", "--dir", folder).returncode == 1


def test_an_unknown_kind_is_refused(tmp_path: Path) -> None:
    done = _cli("start", "galaxy", "--dir", str(tmp_path))
    assert done.returncode == 2
    assert "invalid choice" in done.stderr
