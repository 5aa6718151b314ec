"""The Locust load test: a short real run against two forked processes, and its checks.

The first test runs Locust headless on ``loadtest/locustfile.py`` as a user would,
against ``server.py --processes=2``, and reads Locust's CSV statistics, its HTML report
and the sharing JSON. The second runs it against a server that lies (a ``views`` counter
that never moves, statuses that vanish, a logout that keeps the session) and checks
that each lie lands in Locust's failure table and fails the run. The checker itself is
fed fabricated histories in ``tests/unit/test_loadtest_checks.py``.
"""

from __future__ import annotations

import asyncio
import csv
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import tornado.httpserver
import tornado.web

from tests.support.server_process import REPO_ROOT, free_port

USERS = 8
ROUTES = ("/register", "/login", "/home", "/addStatus", "/fetchStatus", "/whoami", "/logout")


def run_locust(target: str, out: Path, *args: str, seconds: int = 6) -> subprocess.CompletedProcess:
    command = [
        sys.executable, "-m", "locust", "-f", "loadtest/locustfile.py", "--headless",
        f"--host={target}", f"--run-time={seconds}s", "--stop-timeout=10", "--only-summary",
        f"--html={out / 'report.html'}", f"--csv={out / 'stats'}",
        f"--sharing-json={out / 'sharing.json'}", "--progress=lines", "--think=0.05", *args,
    ]  # fmt: skip
    return subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=seconds + 60
    )


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_load_run_shares_sessions_across_processes(spawn_server, tmp_path):
    server = spawn_server(processes=2)
    proc = run_locust(
        server.url, tmp_path, f"--users={USERS}", f"--spawn-rate={USERS}", "--actions=8",
        "--new-connection-every=2", "--require-sharing",
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "users were served by 2 or more processes" in proc.stdout
    assert "violations: none" in proc.stdout
    assert "requests" in proc.stderr and "shared" in proc.stderr  # the progress line

    stats = {row["Name"]: row for row in read_csv(tmp_path / "stats_stats.csv")}
    for route in (*ROUTES, "/home (old cookie)"):
        assert int(stats[route]["Request Count"]) > 0, route
    assert int(stats["Aggregated"]["Failure Count"]) == 0, output

    report = json.loads((tmp_path / "sharing.json").read_text())
    checks = report["checks"]
    assert checks["total"] == 0, checks["examples"]
    for name in ("views", "fetches", "statuses", "logout", "identity"):
        assert checks["checks"][name] > 0, name
    assert checks["checks"]["signed-in"] > 100

    # Both worker processes (never the parent) served the signed-in users; most users,
    # and single sessions, were served by both.
    sharing = report["sharing"]
    assert len(sharing["processes"]) == 2, sharing["processes"]
    assert str(server.pid) not in {p.rpartition(":")[2] for p in sharing["processes"]}
    assert sharing["users"] == USERS and len(sharing["matrix"]) == USERS
    assert sharing["users_shared"] >= USERS // 2, sharing["users_by_process_count"]
    assert sharing["sessions_shared"] >= 1

    html = (tmp_path / "report.html").read_text()
    assert "Locust" in html and "<section id='session-sharing'" in html
    assert "<section id='correctness'" in html and "no violation" in html

    # Distributed over two Locust worker processes: the master adds up their matrices
    # and checks, and hears each worker's last report.
    distributed = tmp_path / "distributed"
    distributed.mkdir()
    proc = run_locust(
        server.url, distributed, "--processes=2", "--users=4", "--spawn-rate=4",
        "--actions=6", "--require-sharing", seconds=4,
    )  # fmt: skip
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert "sent no last report" not in proc.stdout, output
    report = json.loads((distributed / "sharing.json").read_text())
    users = {row["user"] for row in report["sharing"]["matrix"]}
    assert len(users) == 4 and max(users) >= 100_000, output  # from both workers
    assert report["checks"]["total"] == 0 and report["checks"]["checks"]["views"] > 0, output


class _LyingHome(tornado.web.RequestHandler):
    """Signs anyone in, forgets every status, never counts a visit, never logs out."""

    def get(self, path: str) -> None:
        self.set_header("X-Served-By", "liar:1")
        if path == "":
            self.set_cookie("_xsrf", "token")
            self.write("sign in")
        elif path == "home":
            self.write({"error": False, "message": {"user_name": self._name(), "views": 1}})
        elif path == "whoami":
            self.write({"error": False, "message": {"user_name": self._name(), "user_id": 1}})
        elif path == "fetchStatus":
            self.write(json.dumps({"error": False, "message": []}))
        else:
            self.send_error(404)

    def post(self, path: str) -> None:
        self.set_header("X-Served-By", "liar:1")
        if path in ("register", "login"):
            self.set_cookie("name", quote(self.get_argument("user_name", "") or self._name()))
            self.set_cookie("sid", "s" + path)
        elif path == "logout":
            self.clear_cookie("sid")
        self.set_status(201 if path in ("register", "addStatus") else 200)
        self.write({"error": False, "message": "ok"})

    def _name(self) -> str:
        return unquote(self.get_cookie("name") or "")


@pytest.fixture
def lying_server() -> Iterator[str]:
    """A server on a free loopback port, in its own thread and event loop."""
    port = free_port()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        server = tornado.httpserver.HTTPServer(tornado.web.Application([(r"/(.*)", _LyingHome)]))
        server.listen(port, "127.0.0.1")
        loop.call_soon(started.set)
        loop.run_forever()
        server.stop()
        loop.run_until_complete(server.close_all_connections())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    yield f"http://127.0.0.1:{port}"
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


def test_violations_fail_the_run_through_the_failure_table(lying_server, tmp_path):
    proc = run_locust(
        lying_server, tmp_path, "--users=2", "--spawn-rate=2", "--actions=6", seconds=3
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output
    # Locust's failure table, as it prints it at the end: one row per route and kind.
    table = output[output.index("Error report") :]
    assert "GET /home: views: the views counter differs" in table, table
    assert "GET /home (old cookie): logout: the old session cookie was accepted" in table
    assert "GET /fetchStatus: status-missing: a posted status is missing" in table

    report = json.loads((tmp_path / "sharing.json").read_text())
    kinds = report["checks"]["by_kind"]
    assert kinds["views"] > 0 and kinds["logout"] > 0 and kinds["status-missing"] > 0
    assert "views is 1, expected 2" in proc.stdout
    html = (tmp_path / "report.html").read_text()
    assert "status-missing" in html and "no violation" not in html
