"""``server.py --processes=2`` as a real process tree: one session, both workers.

These tests start the server exactly as a user would (forked workers, real sockets,
real Redis and MariaDB) and check what a user and a supervisor see.
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.http import Client
from tests.support.procs import wait_for, worker_pids


def email(tag: str) -> str:
    return f"{tag}-{secrets.token_hex(5)}@example.com"


def test_one_login_is_used_by_both_processes(spawn_server):
    server = spawn_server(processes=2)
    workers = set(wait_for(lambda: len(worker_pids(server.pid)) == 2 and worker_pids(server.pid)))
    client = Client(server.url)
    assert client.register("Both", email("both")).status == 201

    seen = set()
    for visit in range(1, 61):
        reply = client.get("/home")
        assert reply.status == 200, reply.body
        message = reply.json()["message"]
        assert message["views"] == visit
        assert message["served_by"] == reply.served_by
        seen.add(reply.pid)
        whoami = client.get("/whoami")
        assert whoami.status == 200 and whoami.json()["message"]["user_name"] == "Both"
        seen.add(whoami.pid)
    assert seen == workers


def test_fifty_concurrent_visits_over_two_processes_count_exactly(spawn_server):
    server = spawn_server(processes=2)
    client = Client(server.url)
    assert client.register("Many", email("many")).status == 201

    def visit(_: int):
        tab = Client(server.url, cookies=dict(client.cookies))
        return tab.get("/home")

    with ThreadPoolExecutor(max_workers=50) as pool:
        replies = list(pool.map(visit, range(50)))
    assert all(r.status == 200 for r in replies)
    assert sorted(r.json()["message"]["views"] for r in replies) == list(range(1, 51))
    assert len({r.pid for r in replies}) == 2
    assert client.get("/home").json()["message"]["views"] == 51


def test_sigterm_lets_in_flight_requests_finish_and_parent_exits_zero(spawn_server):
    # At work factor 14 one bcrypt hash takes about a second: a request in flight.
    server = spawn_server(processes=2, args=["--bcrypt_rounds=14"])
    workers = wait_for(lambda: len(worker_pids(server.pid)) == 2 and worker_pids(server.pid))
    client = Client(server.url)
    client.get("/")  # the XSRF cookie first, so the POST below is the slow request
    result: dict[str, object] = {}

    def slow_register() -> None:
        result["reply"] = client.register("Slow", email("slow"))

    thread = threading.Thread(target=slow_register)
    thread.start()
    time.sleep(0.3)
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    thread.join(timeout=15)
    assert result["reply"].status == 201
    assert server.proc.wait(timeout=15) == 0
    assert time.monotonic() - started < 12
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    assert "stopped" in server.log()


def test_a_killed_worker_is_restarted(spawn_server):
    server = spawn_server(processes=2)
    before = set(wait_for(lambda: len(worker_pids(server.pid)) == 2 and worker_pids(server.pid)))
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    after = set(
        wait_for(
            lambda: (
                (pids := set(worker_pids(server.pid)))
                and len(pids) == 2
                and victim not in pids
                and pids
            )
        )
    )
    assert len(after - before) == 1
    client = Client(server.url)
    assert client.register("Again", email("again")).status == 201
    pids = {client.get("/whoami").pid for _ in range(30)}
    assert pids <= after and len(pids) == 2


def test_cookie_is_secure_when_the_proxy_says_https(spawn_server):
    server = spawn_server(processes=1, args=["--xheaders"])
    https = Client(server.url)
    reply = https.post(
        "/register",
        {"user_name": "Tls", "user_email": email("tls"), "user_password": "correct horse"},
        headers={"X-Forwarded-Proto": "https", "X-Real-IP": "203.0.113.9"},
    )
    cookie = next(h for h in reply.headers.get_all("Set-Cookie") if h.startswith("sid="))
    assert "secure" in [a.strip().lower() for a in cookie.split(";")]
    who = https.get(
        "/whoami", headers={"X-Forwarded-Proto": "https", "X-Real-IP": "203.0.113.9"}
    ).json()["message"]
    assert who["protocol"] == "https" and who["remote_ip"] == "203.0.113.9"

    plain = Client(server.url)
    reply = plain.register("Plain", email("plain"))
    cookie = next(h for h in reply.headers.get_all("Set-Cookie") if h.startswith("sid="))
    assert "secure" not in [a.strip().lower() for a in cookie.split(";")]


def test_cookie_secret_rotation_newest_signs_all_verify(spawn_server):
    old, new = "o" * 40, "n" * 40
    server = spawn_server(processes=1, args=[f"--cookie_secret=1:{old}"])
    client = Client(server.url)
    assert client.register("Rotate", email("rotate")).status == 201
    old_cookie = client.cookies["sid"]
    assert old_cookie.startswith("2|1:1|")  # v2 format, key version 1
    server.stop()

    server = spawn_server(processes=1, args=[f"--cookie_secret=1:{old} 2:{new}"])
    client.base_url = server.url
    assert client.get("/whoami").status == 200  # the old key still verifies
    other = Client(server.url)
    assert other.register("Fresh", email("fresh")).status == 201
    assert other.cookies["sid"].startswith("2|1:2|")  # the newest key signs
    server.stop()

    server = spawn_server(processes=1, args=[f"--cookie_secret=2:{new}"])
    client.base_url = other.base_url = server.url
    assert client.get("/whoami").status == 401  # key 1 retired
    assert other.get("/whoami").status == 200


def test_reuse_port_gives_each_worker_its_own_socket_and_shares_sessions(spawn_server):
    server = spawn_server(processes=2, args=["--reuse_port"])
    workers = set(wait_for(lambda: len(worker_pids(server.pid)) == 2 and worker_pids(server.pid)))
    client = Client(server.url)
    assert client.register("Ports", email("ports")).status == 201
    pids = [client.get("/whoami").pid for _ in range(60)]
    assert set(pids) == workers
    assert min(pids.count(pid) for pid in workers) >= 10  # the kernel spreads connections
    assert "one socket each" in server.log()


def test_a_taken_port_is_a_clear_error(spawn_server, mysql_url):
    import subprocess
    import sys

    from tests.support.server_process import REPO_ROOT

    server = spawn_server(processes=1)
    out = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "server.py"),
            f"--port={server.port}",
            "--cookie_secret=" + "s" * 40,
            "--bcrypt_rounds=4",
            f"--mysql_url={mysql_url}",
        ],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=30,
        check=False,
    )
    assert out.returncode == 1
    assert "cannot listen on 127.0.0.1" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_signal_to_the_whole_group_stops_cleanly(spawn_server, sig):
    # A terminal's Ctrl-C (or `pkill`) signals the workers as well as the supervisor,
    # which forwards SIGTERM on top: each worker gets two signals and must still drain
    # and exit 0, not be killed and restarted.
    server = spawn_server(processes=2)
    workers = wait_for(lambda: len(worker_pids(server.pid)) == 2 and worker_pids(server.pid))
    os.killpg(server.pid, sig)
    assert server.proc.wait(timeout=15) == 0
    log = server.log()
    assert "restarting" not in log and "Traceback" not in log, log
    assert log.count("stopped") >= 2
    for pid in workers:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
