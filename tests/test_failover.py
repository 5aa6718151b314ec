"""Failover under load: signed-in users keep being served while Redis fails over.

``server.py --processes=2`` runs on the suite's Redis Cluster or Sentinel group while
users (one thread each, a new connection per request, so both workers serve them) load
``/home``, which increments their session's ``views`` counter. Then one of:

* ``CLUSTER FAILOVER`` on a replica (a planned switch: no write is lost);
* ``SIGKILL`` of a Cluster primary (its replica is elected after the node timeout);
* ``SIGKILL`` of the Sentinel primary (the sentinels promote the replica).

Each test prints what it saw (requests, answers by status, the longest wait a user had
between two answers, increments applied vs acknowledged, sessions lost) and checks: no
500 ever; 503, always with Retry-After, only from the fault until recovery; the same
processes serve everyone again within 10 s of the fault; no increment applied twice; an
acknowledged increment lost only where Redis lost the write (a kill); no session lost.
The killed node is started again afterwards and rejoins as a replica, so the shared
topology is whole for the next test.
"""

from __future__ import annotations

import itertools
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import redis

from scripts.redis_topology import Node, Topology
from tests.support.http import Client
from tests.support.server_process import ServerProcess, start_server

USERS = 8
BEFORE = 2.0  # seconds of load before the fault
AFTER = 3.0  # seconds every user must be served, after recovery, before the load stops
RECOVERY_BOUND = 10.0  # seconds from the fault until everyone is served again
LOAD_LIMIT = 30.0  # the load stops by then, whatever happens
MAX_REQUESTS = 2000  # per user


@dataclass
class User:
    client: Client
    answers: list[tuple[float, int, bool]] = field(default_factory=list)  # time, status, RA
    views: list[int] = field(default_factory=list)  # as each 2xx answer reported them

    @property
    def acknowledged(self) -> int:
        return sum(1 for _t, status, _ra in self.answers if 200 <= status < 300)

    @property
    def unacknowledged(self) -> int:  # failed: they may or may not have been applied
        return sum(1 for _t, status, _ra in self.answers if not 200 <= status < 300)


@dataclass
class Report:
    name: str
    fault_at: float
    users: list[User]
    recovered_after: float = 0.0
    applied: int = 0
    lost_increments: int = 0
    sessions_lost: int = 0

    def statuses(self) -> Counter[int]:
        return Counter(status for u in self.users for _t, status, _ra in u.answers)

    def longest_gap(self) -> float:
        """The longest a user waited between two answered (2xx) requests."""
        longest = 0.0
        for user in self.users:
            served = [t for t, status, _ra in user.answers if 200 <= status < 300]
            longest = max([longest, *(b - a for a, b in itertools.pairwise(served))])
        return longest

    def print(self) -> None:
        acknowledged = sum(u.acknowledged for u in self.users)
        print(
            f"\n{self.name}: {sum(len(u.answers) for u in self.users)} requests by {USERS} users;"
            f" answers by status {dict(sorted(self.statuses().items()))};"
            f" longest gap {self.longest_gap():.2f} s;"
            f" served again {self.recovered_after:.2f} s after the fault;"
            f" increments applied {self.applied} vs acknowledged {acknowledged}"
            f" (lost by Redis: {self.lost_increments});"
            f" sessions lost {self.sessions_lost}"
        )


def run_load(server: ServerProcess, fault: Callable[[], None], name: str) -> Report:
    users = []
    for i in range(USERS):
        client = Client(server.url)
        reply = client.register(f"Fail{i}", f"failover-{secrets.token_hex(5)}@example.com")
        assert reply.status == 201, reply.body
        users.append(User(client))
    stop = threading.Event()
    started = time.monotonic()

    def load(user: User) -> None:
        for _ in range(MAX_REQUESTS):
            if stop.is_set() or time.monotonic() - started > LOAD_LIMIT:
                return
            try:
                reply = user.client.get("/home", timeout=RECOVERY_BOUND)
            except (OSError, httpx.HTTPError):
                user.answers.append((time.monotonic(), 0, False))  # no answer: a failure
                time.sleep(0.05)
                continue
            user.answers.append((time.monotonic(), reply.status, "Retry-After" in reply.headers))
            if reply.status == 200:
                user.views.append(reply.json()["message"]["views"])
            else:
                time.sleep(0.05)  # as a browser told to retry would, only sooner

    threads = [threading.Thread(target=load, args=(u,), daemon=True) for u in users]
    for thread in threads:
        thread.start()
    time.sleep(BEFORE)
    fault_at = time.monotonic()
    fault()
    report = Report(name, fault_at, users)
    try:
        while time.monotonic() - started < LOAD_LIMIT:
            time.sleep(0.2)
            last_failure = max(
                (t for u in users for t, status, _ra in u.answers if status != 200),
                default=fault_at,
            )
            if time.monotonic() - max(last_failure, fault_at) >= AFTER:
                break
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
    last_failure = max(
        (t for u in users for t, status, _ra in u.answers if status != 200), default=fault_at
    )
    report.recovered_after = max(0.0, last_failure - fault_at)
    for user in users:  # one more visit: the stored counter, and is the session still there?
        reply = user.client.get("/home", timeout=10)
        if reply.status == 401:
            report.sessions_lost += 1
            continue
        assert reply.status == 200, (reply.status, reply.body)
        stored = reply.json()["message"]["views"] - 1
        report.applied += stored
        report.lost_increments += max(0, user.acknowledged - stored)
        # Never applied twice: at most what was acknowledged plus what failed (a
        # failed request may have been applied before its answer was lost).
        assert stored <= user.acknowledged + user.unacknowledged, (stored, user.answers)
    report.print()
    return report


def check(report: Report, *, may_lose_writes: bool) -> None:
    statuses = report.statuses()
    assert not [s for s in statuses if s >= 500 and s != 503], statuses  # never a 500
    assert set(statuses) <= {200, 503}, statuses  # no connection failure, no 401
    for user in report.users:
        for at, status, retry_after in user.answers:
            if status == 503:
                assert retry_after, "a 503 without Retry-After"
                assert at >= report.fault_at, "a 503 before the fault"
    assert report.recovered_after <= RECOVERY_BOUND, report.recovered_after
    assert report.sessions_lost == 0
    if not may_lose_writes:
        assert report.lost_increments == 0
    assert statuses[200] > USERS * 10  # the load did run


def serve(url: str, mysql_url: str, redis_prefix: str, log_dir: Path) -> ServerProcess:
    return start_server(
        mysql_url=mysql_url,
        redis_url=url,
        redis_prefix=redis_prefix,
        log_dir=log_dir,
        processes=2,
        args=["--register_max_per_ip=0"],
    )


def replica_of(topology: Topology, primary: Node) -> Node:
    with redis.Redis(port=primary.port, decode_responses=True) as client:
        info = client.info("replication")
    return topology.node(int(info["slave0"]["port"]))


def test_cluster_failover_on_a_replica_under_load(redis_cluster, mysql_url, redis_prefix, tmp_path):
    server = serve(redis_cluster.url, mysql_url, redis_prefix, tmp_path)
    try:
        primary = redis_cluster.primaries()[0]
        replica = replica_of(redis_cluster, primary)

        def fault() -> None:
            with redis.Redis(port=replica.port) as client:
                assert client.execute_command("CLUSTER", "FAILOVER") in (b"OK", "OK", True)

        report = run_load(server, fault, "CLUSTER FAILOVER on a replica")
    finally:
        server.stop()
    check(report, may_lose_writes=False)
    redis_cluster.wait_healthy()


def test_sigkill_of_a_cluster_primary_under_load(redis_cluster, mysql_url, redis_prefix, tmp_path):
    server = serve(redis_cluster.url, mysql_url, redis_prefix, tmp_path)
    victim = redis_cluster.primaries()[0]
    try:
        report = run_load(
            server, lambda: redis_cluster.kill(victim), "SIGKILL of a Cluster primary"
        )
    finally:
        server.stop()
        if not redis_cluster.alive(victim):
            redis_cluster.restart(victim)  # it rejoins as a replica
    check(report, may_lose_writes=True)
    redis_cluster.wait_healthy()


def test_sigkill_of_the_sentinel_primary_under_load(
    redis_sentinel, mysql_url, redis_prefix, tmp_path
):
    server = serve(redis_sentinel.url, mysql_url, redis_prefix, tmp_path)
    [victim] = redis_sentinel.primaries()
    try:
        report = run_load(
            server, lambda: redis_sentinel.kill(victim), "SIGKILL of the Sentinel primary"
        )
    finally:
        server.stop()
        if not redis_sentinel.alive(victim):
            redis_sentinel.restart(victim)  # the sentinels make it a replica
    check(report, may_lose_writes=True)
    redis_sentinel.wait_healthy()
