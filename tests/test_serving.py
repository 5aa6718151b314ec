"""The serving core (``serving.py``, ``supervisor.py``) as a real process tree.

What an operator and a load balancer see: a stopping server refuses new connections at
once instead of queueing them where no one will accept them, the listen backlog takes
a burst far beyond Tornado's 128, and the parent reports every worker that exits.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tests.support.procs import wait_for, worker_pids
from tests.support.server_process import REPO_ROOT


def read_until(sock: socket.socket, marker: bytes, timeout: float = 10.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_a_new_connection_during_the_drain_is_refused_at_once(spawn_server):
    server = spawn_server(processes=2)
    wait_for(lambda: len(worker_pids(server.pid)) == 2)
    # A request in flight: its headers are in (the server answered 100 Continue), its
    # body is not. It keeps its worker draining until the body is sent.
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    slow.sendall(
        b"POST /login HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 10\r\nExpect: 100-continue\r\n\r\n"
    )
    assert b"100" in read_until(slow, b"\r\n\r\n").split(b"\r\n", 1)[0]

    stopped_at = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    refused_after = None
    while time.monotonic() - stopped_at < 3:
        try:
            probe = socket.create_connection(("127.0.0.1", server.port), timeout=1)
        except ConnectionRefusedError:
            refused_after = time.monotonic() - stopped_at
            break
        except TimeoutError:
            raise AssertionError("a new connection hung during the drain") from None
        probe.close()  # accepted before the listener closed: served as usual
        time.sleep(0.02)
    assert refused_after is not None, "new connections were still accepted during the drain"
    assert server.proc.poll() is None  # still draining: the slow request is in flight

    slow.sendall(b"user_email")  # the body: the request completes (403, no XSRF token)
    reply = read_until(slow, b"\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 403"), reply
    slow.close()
    assert server.proc.wait(timeout=15) == 0


def test_the_listen_backlog_takes_a_burst_beyond_128(spawn_server):
    server = spawn_server(processes=1)  # the default --backlog
    burst = 300
    with open("/proc/sys/net/core/somaxconn") as handle:
        somaxconn = int(handle.read())
    os.kill(server.pid, signal.SIGSTOP)  # nobody accepts: connections wait in the queue
    clients = []
    try:
        for _ in range(burst):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.connect_ex(("127.0.0.1", server.port))
            clients.append(sock)
        # A SYN the full queue dropped is retried only after a second: count those
        # established well before that.
        deadline = time.monotonic() + 0.8
        pending = set(clients)
        while pending and time.monotonic() < deadline:
            _, writable, _ = select.select([], list(pending), [], 0.05)
            pending -= set(writable)
        established = sum(
            1
            for sock in clients
            if sock not in pending and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        )
    finally:
        for sock in clients:
            sock.close()
        os.kill(server.pid, signal.SIGCONT)
    # Tornado's default backlog (128) takes 129 and drops the rest.
    assert established >= min(burst, somaxconn + 1)
    usage = subprocess.run(
        [sys.executable, "server.py", "--help"],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    ).stdout
    assert "--backlog" in usage and "(default 1024)" in usage


SUPERVISED = textwrap.dedent(
    """
    import os, signal, sys, time
    sys.path.insert(0, {root!r})
    from supervisor import Supervisor

    def exited(pid):
        with open({record!r}, "a") as out:
            out.write(f"{{pid}}\\n")

    supervisor = Supervisor(2, on_worker_exit=exited)
    if supervisor.run() is None:
        sys.exit(supervisor.exit_status)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    while not stop:
        time.sleep(0.02)
    """
)


def test_the_supervisor_restarts_a_dead_worker_and_reports_every_exit(tmp_path: Path):
    record = tmp_path / "exited"
    script = tmp_path / "supervised.py"
    script.write_text(SUPERVISED.format(root=str(REPO_ROOT), record=str(record)))
    proc = subprocess.Popen([sys.executable, str(script)], start_new_session=True)
    try:
        first = wait_for(lambda: len(pids := worker_pids(proc.pid)) == 2 and pids)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        second = set(
            wait_for(
                lambda: (
                    (pids := worker_pids(proc.pid))
                    and len(pids) == 2
                    and victim not in pids
                    and pids
                )
            )
        )
        assert record.read_text().split() == [str(victim)]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert sorted(record.read_text().split()) == sorted(map(str, {victim} | second))


SLOW_START = textwrap.dedent(
    """
    import asyncio, logging, sys, time
    sys.path.insert(0, {root!r})
    import serving

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = serving.ServingConfig(port=0, processes=2)

    async def worker(sockets):
        with open({started!r}, "a") as out:
            out.write("started\\n")
        time.sleep(2)  # a slow start-up (resources, application): the signal comes now
        await serving.serve_http(object(), sockets, config, name="slow")
        logging.getLogger("app").info("worker slow stopped")

    sys.exit(serving.run(config, worker))
    """
)


def test_a_ctrl_c_while_the_workers_start_up_still_stops_each_cleanly(tmp_path: Path):
    # Ctrl-C can come at any moment, also before a worker serves: each worker must still
    # drain, log its stop and exit 0, not die silently by the signal's default action.
    started = tmp_path / "started"
    script = tmp_path / "slow_start.py"
    script.write_text(SLOW_START.format(root=str(REPO_ROOT), started=str(started)))
    log = tmp_path / "log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, str(script)], start_new_session=True, stderr=out, stdout=out
        )
    try:
        wait_for(lambda: started.exists() and len(started.read_text().split()) == 2)
        workers = worker_pids(proc.pid)
        assert len(workers) == 2
        os.killpg(proc.pid, signal.SIGINT)  # while both sleep in their start-up
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = log.read_text()
    assert "Traceback" not in text and "restarting" not in text, text
    assert text.count("worker slow stopping") == 2 and text.count("worker slow stopped") == 2, text
