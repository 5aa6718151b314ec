"""Start and stop private Redis topologies on free loopback ports: Cluster, Sentinel, single.

Used by the test fixtures and by ``make stack``; from the command line::

    python -m scripts.redis_topology start cluster  --dir var/cluster   # prints the URL
    python -m scripts.redis_topology start sentinel --dir var/sentinel
    python -m scripts.redis_topology start single   --dir var/single
    python -m scripts.redis_topology url    --dir var/cluster            # the URL again
    python -m scripts.redis_topology status --dir var/cluster
    python -m scripts.redis_topology stop   --dir var/cluster

The kinds:

``cluster``
    6 nodes, 3 primaries and 3 replicas (``redis-cli --cluster create ...
    --cluster-replicas 1``), ``cluster-node-timeout`` 2000 ms: a dead primary is replaced
    by its replica within about 3-5 s. URL ``redis+cluster://HOST:PORT,...`` (every node).
``sentinel``
    1 primary, 1 replica and 3 sentinels (``redis-server --sentinel``, quorum 2,
    ``down-after-milliseconds`` 1000). URL ``redis+sentinel://HOST:PORT,.../SERVICE``.
``single``
    one ``redis-server``. URL ``redis://HOST:PORT/0``.

Everything lives in the given folder: each node's configuration, log and (empty)
persistence files, and ``topology.json`` with every node's port and PID. ``stop`` ends
the processes by those PIDs (SIGTERM, then SIGKILL after 5 s), checking first that each
PID is still the ``redis-server`` listening on the recorded port, and nothing else.
Persistence is off (no RDB, no AOF): a restarted node comes back empty and resyncs from
its primary, as a replacement machine would.

``start`` on a folder whose topology is still running prints its URL and starts
nothing; remnants of a stopped or crashed one are stopped and replaced.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import redis

HOST = "127.0.0.1"
KINDS = ("cluster", "sentinel", "single")
SERVICE = "sessions"  # the Sentinel service name
NODE_TIMEOUT_MS = 2000  # cluster-node-timeout
DOWN_AFTER_MS = 1000  # sentinel down-after-milliseconds
FAILOVER_TIMEOUT_MS = 5000  # sentinel failover-timeout
STATE_FILE = "topology.json"
START_TIMEOUT = 30.0  # seconds for a topology to come up


class TopologyError(Exception):
    """A topology could not be started, found or stopped."""


def free_port(exclude: set[int] | None = None) -> int:
    """A TCP port nothing listens on at the moment (the kernel's choice)."""
    exclude = exclude or set()
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if port not in exclude:
            exclude.add(port)
            return port


@dataclass
class Node:
    """One ``redis-server`` process of a topology."""

    name: str
    role: str  # "cluster", "primary", "replica", "sentinel" or "single"
    port: int
    argv: list[str]
    pid: int = 0

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"


@dataclass
class Topology:
    """A running (or stopped) topology and the folder that holds it."""

    kind: str
    dir: Path
    nodes: list[Node] = field(default_factory=list)
    url: str = ""
    service: str = ""
    _children: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict, repr=False)

    # ----- starting ---------------------------------------------------------------------
    @classmethod
    def start(cls, kind: str, directory: str | os.PathLike[str]) -> Topology:
        """Start a topology of ``kind`` in ``directory`` (emptied first); wait until it serves."""
        if kind not in KINDS:
            raise TopologyError(f"unknown topology {kind!r} (one of: {', '.join(KINDS)})")
        for tool in ("redis-server", "redis-cli"):
            if shutil.which(tool) is None:
                raise TopologyError(f"{tool} is not installed (make services installs it)")
        folder = Path(directory).resolve()
        with contextlib.suppress(TopologyError):
            cls.load(folder).stop()
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        topology = cls(kind=kind, dir=folder)
        try:
            getattr(topology, f"_start_{kind}")()
            topology.save()
        except BaseException:
            topology.stop()
            raise
        return topology

    def _spawn(self, node: Node) -> None:
        log = open(self.dir / f"{node.name}.out", "ab")  # noqa: SIM115 - handed to the child
        try:
            child = subprocess.Popen(
                node.argv,
                cwd=self.dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives the command line that started it
            )
        finally:
            log.close()
        node.pid = child.pid
        self._children[child.pid] = child

    def _server_argv(self, name: str, port: int, *extra: str) -> list[str]:
        return [
            "redis-server",
            "--bind", HOST,
            "--port", str(port),
            "--dir", str(self.dir),
            "--logfile", f"{name}.log",
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--protected-mode", "no",
            "--dbfilename", f"{name}.rdb",
            *extra,
        ]  # fmt: skip

    def _start_single(self) -> None:
        port = free_port()
        node = Node("single", "single", port, self._server_argv("single", port))
        self.nodes.append(node)
        self._spawn(node)
        self._wait(lambda: _ping(node.port), f"redis-server on port {port}")
        self.url = f"redis://{node.address}/0"

    def _start_cluster(self) -> None:
        taken: set[int] = set()
        for i in range(6):
            port, bus = free_port(taken), free_port(taken)
            name = f"node-{i + 1}"
            argv = self._server_argv(
                name,
                port,
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"{name}.nodes.conf",
                "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
                "--cluster-port", str(bus),
                "--cluster-replica-validity-factor", "0",  # a replica may always take over
                "--cluster-allow-reads-when-down", "no",
            )  # fmt: skip
            self.nodes.append(Node(name, "cluster", port, argv))
        for node in self.nodes:
            self._spawn(node)
        for node in self.nodes:
            self._wait(lambda n=node: _ping(n.port), f"cluster node on port {node.port}")
        create = [
            "redis-cli",
            "--cluster", "create",
            *(n.address for n in self.nodes),
            "--cluster-replicas", "1",
            "--cluster-yes",
        ]  # fmt: skip
        done = subprocess.run(create, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise TopologyError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")
        self.url = "redis+cluster://" + ",".join(n.address for n in self.nodes)
        self.wait_healthy()

    def _start_sentinel(self) -> None:
        taken: set[int] = set()
        primary_port, replica_port = free_port(taken), free_port(taken)
        primary = Node(
            "primary", "primary", primary_port, self._server_argv("primary", primary_port)
        )
        replica = Node(
            "replica",
            "replica",
            replica_port,
            self._server_argv("replica", replica_port, "--replicaof", HOST, str(primary_port)),
        )
        self.nodes += [primary, replica]
        self.service = SERVICE
        for i in range(3):
            port = free_port(taken)
            name = f"sentinel-{i + 1}"
            conf = self.dir / f"{name}.conf"  # a sentinel rewrites its own configuration
            conf.write_text(
                f"bind {HOST}\n"
                f"port {port}\n"
                f"dir {self.dir}\n"
                f"logfile {name}.log\n"
                "daemonize no\n"
                "protected-mode no\n"
                f"sentinel monitor {SERVICE} {HOST} {primary_port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
                f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}\n"
                f"sentinel parallel-syncs {SERVICE} 1\n"
            )
            self.nodes.append(
                Node(name, "sentinel", port, ["redis-server", str(conf), "--sentinel"])
            )
        for node in self.nodes:
            self._spawn(node)
        self.url = (
            "redis+sentinel://"
            + ",".join(n.address for n in self.nodes if n.role == "sentinel")
            + f"/{SERVICE}"
        )
        self.wait_healthy()

    # ----- health -----------------------------------------------------------------------
    def _wait(self, ready: Any, what: str, timeout: float = START_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            for node in self.nodes:
                child = self._children.get(node.pid)
                if child is not None and child.poll() is not None:  # died (port taken?)
                    raise TopologyError(f"{node.name} exited\n{self._log_tail(node)}")
            try:
                if ready():
                    return
            except (redis.RedisError, OSError) as exc:
                last = exc
            time.sleep(0.1)
        logs = "\n".join(self._log_tail(n) for n in self.nodes)
        raise TopologyError(f"{what} not ready within {timeout:.0f} s ({last})\n{logs}")

    def _log_tail(self, node: Node, lines: int = 5) -> str:
        path = self.dir / f"{node.name}.log"
        if not path.exists():
            return f"[{node.name}: no log]"
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        return f"[{node.name}]\n" + "\n".join(tail)

    def wait_healthy(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until every node runs and the topology is whole again (after a start,
        a failover or a restarted node): Cluster - all slots served, 3 primaries each with
        a replica in sync; Sentinel - the sentinels agree on a primary whose replica is in
        sync, and they know each other."""
        if self.kind == "cluster":
            self._wait(self._cluster_healthy, "the cluster", timeout)
        elif self.kind == "sentinel":
            self._wait(self._sentinel_healthy, "the sentinel group", timeout)
        else:
            self._wait(lambda: _ping(self.nodes[0].port), "redis-server", timeout)

    def _cluster_healthy(self) -> bool:
        primaries: set[str] = set()
        for node in self.nodes:
            with _client(node.port) as client:
                info = _fields(client.execute_command("CLUSTER", "INFO"))
                if info.get("cluster_state") != "ok" or info.get("cluster_slots_ok") != "16384":
                    return False
                if info.get("cluster_known_nodes") != "6":
                    return False
                if any(",fail" in line or "fail?" in line for line in _lines(client, "NODES")):
                    return False
                replication = client.info("replication")
                if replication["role"] == "slave":
                    if replication.get("master_link_status") != "up":
                        return False
                else:
                    primaries.add(node.address)
        return len(primaries) == 3

    def _sentinel_healthy(self) -> bool:
        addresses = set()
        for node in self.sentinels():
            with _client(node.port) as client:
                addr = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
                if not addr:
                    return False
                addresses.add(f"{_text(addr[0])}:{_text(addr[1])}")
                master = _pairs(client.execute_command("SENTINEL", "MASTER", self.service))
                if "s_down" in master.get("flags", "") or int(master["num-other-sentinels"]) < 2:
                    return False
                if int(master["num-slaves"]) < 1:
                    return False
        if len(addresses) != 1:
            return False
        port = int(addresses.pop().rsplit(":", 1)[1])
        with _client(port) as client:
            if client.info("replication").get("role") != "master":
                return False
            replicas = [v for k, v in client.info("replication").items() if k.startswith("slave")]
            in_sync = [r for r in replicas if isinstance(r, dict) and r.get("state") == "online"]
            return len(in_sync) >= 1

    # ----- nodes ------------------------------------------------------------------------
    def sentinels(self) -> list[Node]:
        return [n for n in self.nodes if n.role == "sentinel"]

    def node(self, port: int) -> Node:
        for node in self.nodes:
            if node.port == port:
                return node
        raise TopologyError(f"no node on port {port}")

    def primaries(self) -> list[Node]:
        """The data nodes that are primaries right now (asked of each live node)."""
        found = []
        for node in self.nodes:
            if node.role == "sentinel" or not self.alive(node):
                continue
            with contextlib.suppress(redis.RedisError), _client(node.port) as client:
                if client.info("replication")["role"] == "master":
                    found.append(node)
        return found

    def replicas(self) -> list[Node]:
        primaries = {n.port for n in self.primaries()}
        return [
            n
            for n in self.nodes
            if n.role != "sentinel" and n.port not in primaries and self.alive(n)
        ]

    def alive(self, node: Node) -> bool:
        """Is ``node.pid`` still the redis-server of ``node``?"""
        child = self._children.get(node.pid)
        if child is not None and child.poll() is not None:
            return False
        return _is_our_server(node.pid, node.port)

    def kill(self, node: Node, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the node (by its PID) and, for a fatal signal, reap it."""
        if not self.alive(node):
            return
        os.kill(node.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            self._reap(node, timeout=5.0)

    def restart(self, node: Node) -> None:
        """Start a stopped node again with its own arguments (it rejoins as a replica)."""
        if self.alive(node):
            raise TopologyError(f"{node.name} is still running")
        self._spawn(node)
        self._wait(lambda: _ping(node.port), f"{node.name} on port {node.port}")
        self.save()

    def _reap(self, node: Node, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        child = self._children.get(node.pid)
        while time.monotonic() < deadline:
            if child is not None:
                if child.poll() is not None:
                    del self._children[node.pid]
                    return True
            elif not _is_our_server(node.pid, node.port):
                return True
            time.sleep(0.05)
        return False

    # ----- stopping ---------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every node by its PID: SIGTERM, then SIGKILL after 5 s."""
        for node in self.nodes:
            if node.pid and self.alive(node):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.pid, signal.SIGTERM)
        for node in self.nodes:
            if node.pid and not self._reap(node, timeout=5.0) and self.alive(node):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(node.pid, signal.SIGKILL)
                self._reap(node, timeout=2.0)
        state = self.dir / STATE_FILE
        if state.exists():
            state.unlink()

    # ----- the state file ---------------------------------------------------------------
    def save(self) -> None:
        data = {
            "kind": self.kind,
            "url": self.url,
            "service": self.service,
            "nodes": [asdict(n) for n in self.nodes],
        }
        (self.dir / STATE_FILE).write_text(json.dumps(data, indent=2) + "\n")

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> Topology:
        folder = Path(directory).resolve()
        try:
            data = json.loads((folder / STATE_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise TopologyError(f"no topology in {folder} ({exc})") from exc
        return cls(
            kind=data["kind"],
            dir=folder,
            nodes=[Node(**n) for n in data["nodes"]],
            url=data["url"],
            service=data.get("service", ""),
        )

    def running(self) -> bool:
        return bool(self.nodes) and all(self.alive(n) for n in self.nodes)


# ----- helpers ------------------------------------------------------------------------------
@contextlib.contextmanager
def _client(port: int) -> Iterator[redis.Redis]:
    client = redis.Redis(
        host=HOST, port=port, socket_timeout=1.0, socket_connect_timeout=1.0, decode_responses=True
    )
    try:
        yield client
    finally:
        client.close()


def _ping(port: int) -> bool:
    with _client(port) as client:
        return bool(client.ping())


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _fields(info: Any) -> dict[str, str]:
    out = {}
    for line in _text(info).splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            out[key.strip()] = value.strip()
    return out


def _pairs(flat: Any) -> dict[str, str]:
    if isinstance(flat, dict):
        return {_text(k): _text(v) for k, v in flat.items()}
    return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}


def _lines(client: redis.Redis, what: str) -> list[str]:
    return _text(client.execute_command("CLUSTER", what)).splitlines()


def _is_our_server(pid: int, port: int) -> bool:
    """True when ``pid`` runs redis-server and its process title names ``port``."""
    if pid <= 0:
        return False
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.rsplit(")", 1)[1].split()[0] == "Z":  # exited, not yet reaped
        return False
    return comm.startswith("redis-") and f":{port}" in cmdline


# ----- command line -------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.redis_topology",
        description="Start and stop a private Redis Cluster, Sentinel group or single server.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start a topology and print its URL")
    start.add_argument("kind", choices=KINDS)
    for name, text in (
        ("stop", "stop the topology's processes by PID"),
        ("url", "print the URL of the running topology"),
        ("status", "show each node's role, port, PID and state"),
    ):
        sub.add_parser(name, help=text)
    for command in sub.choices.values():
        command.add_argument(
            "--dir", required=True, help="folder of the topology, e.g. var/cluster"
        )
    args = parser.parse_args(argv)
    try:
        if args.command == "start":
            try:
                existing = Topology.load(args.dir)
            except TopologyError:
                existing = None
            if existing is not None and existing.kind == args.kind and existing.running():
                print(f"{args.kind} already running in {existing.dir}", file=sys.stderr)
                print(existing.url)
                return 0
            started = time.monotonic()
            topology = Topology.start(args.kind, args.dir)
            print(
                f"{args.kind} started in {time.monotonic() - started:.1f} s in {topology.dir}"
                f" (stop: python -m scripts.redis_topology stop --dir {args.dir})",
                file=sys.stderr,
            )
            print(topology.url)
        elif args.command == "stop":
            try:
                topology = Topology.load(args.dir)
            except TopologyError:
                print(f"nothing running in {args.dir}", file=sys.stderr)
                return 0
            topology.stop()
            print(f"{topology.kind} in {topology.dir} stopped", file=sys.stderr)
        elif args.command == "url":
            topology = Topology.load(args.dir)
            if not topology.running():
                raise TopologyError(f"the {topology.kind} in {topology.dir} is not running")
            print(topology.url)
        else:
            topology = Topology.load(args.dir)
            print(f"{topology.kind} {topology.url}")
            primaries = {n.port for n in topology.primaries()}
            for node in topology.nodes:
                state = "running" if topology.alive(node) else "stopped"
                role = node.role
                if role != "sentinel":
                    role = "primary" if node.port in primaries else "replica"
                print(f"  {node.name:<11} {role:<8} {node.address:<16} pid {node.pid:<8} {state}")
    except TopologyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
