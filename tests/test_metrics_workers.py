"""Metrics and logs of ``server.py --processes=2``: added up across workers and restarts.

Real forked workers: requests spread over both (a new connection each), ``/metrics``
must count every one whichever worker answers it; a worker killed and replaced takes
its per-process gauges with it but none of its counts; a new server starts from zero
even in a directory an earlier one left behind. The logs of the same runs are read as a
shipper would.
"""

from __future__ import annotations

import json
import os
import signal

from prometheus_client.parser import text_string_to_metric_families

from tests.support.http import Client
from tests.support.procs import wait_for as wait_until
from tests.support.procs import worker_pids
from tests.support.server_process import free_port

N = 40


def wait_for(predicate, timeout: float = 15.0, interval: float = 0.05):
    return wait_until(predicate, timeout, interval)


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    reply = Client(url).get("/metrics")
    assert reply.status == 200, reply.body
    assert reply.headers["Cache-Control"] == "no-store"
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(reply.body.decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def whoami_total(found) -> float:
    return sum(
        v
        for labels, v in found.get("app_http_requests_total", [])
        if labels["handler"] == "/whoami"
    )


def gauge_pids(found, name: str) -> set[int]:
    return {int(labels["pid"]) for labels, _ in found.get(name, [])}


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_counts_add_up_across_workers_and_survive_a_restart(spawn_server, tmp_path):
    directory = tmp_path / "metrics"
    metrics_port = free_port()
    server = spawn_server(
        processes=2,
        args=[f"--metrics_port={metrics_port}"],
        env={"PROMETHEUS_MULTIPROC_DIR": str(directory)},
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}"
    workers = wait_for(lambda: len(worker_pids(server.pid)) == 2 and worker_pids(server.pid))
    client = Client(server.url)
    served: list[int] = []  # at least N requests, and until both workers served some
    while len(served) < N or set(served) != workers:
        assert len(served) < 10 * N, f"one worker took every connection: {set(served)}"
        served.append(client.get("/whoami").pid)
    n = len(served)
    assert client.get("/metrics").status == 404  # on its own port only

    # A worker counts a request just after sending its response: wait for the last one.
    found = wait_for(lambda: (f := scrape(metrics_url)) and whoami_total(f) >= n and f)
    assert whoami_total(found) == n
    assert gauge_pids(found, "app_process_resident_memory_bytes") == workers
    assert gauge_pids(found, "app_bcrypt_queue_length") == workers

    victim = served[0]
    os.kill(victim, signal.SIGKILL)
    replaced = wait_for(
        lambda: len(worker_pids(server.pid) - {victim}) == 2 and worker_pids(server.pid)
    )
    newcomer = (replaced - workers).pop()
    wait_for(lambda: client.get("/healthz").pid == newcomer)  # the new worker serves
    after = wait_for(lambda: (f := scrape(metrics_url)) and newcomer in gauge_pids(
        f, "app_process_open_fds") and f)  # fmt: skip
    assert whoami_total(after) == n  # the dead worker's counts are kept
    for gauge in ("app_process_open_fds", "app_mysql_pool_in_use", "app_process_cpu_seconds"):
        assert victim not in gauge_pids(after, gauge), gauge
    assert gauge_pids(after, "app_process_open_fds") == replaced

    # One JSON line per request, from both workers, each with its own request id.
    assert server.stop() == 0
    requests = [r for r in json_lines(server.log()) if r["event"] == "request"]
    whoami = [r for r in requests if r["route"] == "/whoami"]
    assert len(whoami) == n and {r["pid"] for r in whoami} == workers
    assert len({r["request_id"] for r in requests}) == len(requests)
    assert all(r["status"] == 401 and r["client"] == "127.0.0.1" for r in whoami)

    # The next server in the same directory starts counting from zero, on the app's port.
    again = spawn_server(
        processes=2, args=["--log_format=logfmt"], env={"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    )
    Client(again.url).get("/whoami")
    # Each worker writes its gauges once started: wait for both, then nothing else may show.
    found = wait_for(
        lambda: (
            (f := scrape(again.url))
            and whoami_total(f) >= 1
            and len(pids := worker_pids(again.pid)) == 2
            and gauge_pids(f, "app_process_open_fds") >= pids
            and f
        )
    )
    assert whoami_total(found) == 1
    assert gauge_pids(found, "app_process_open_fds") == worker_pids(again.pid)
    lines = again.log().splitlines()
    assert any(line.startswith("time=") and " route=/whoami " in line for line in lines)
