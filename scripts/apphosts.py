#!/usr/bin/env python3
"""App hosts on one machine: network namespaces joined to this one by veth pairs.

Used by ``scripts/stack.sh --hosts N`` (``make stack HOSTS=N``) and by ``tests/test_hosts.py``
to run several app hosts, each a ``server.py`` with its own network stack, behind one nginx::

    scripts/apphosts.py up --hosts 3          # prints the run as JSON (see below)
    scripts/apphosts.py exec --run ID --host 2 -- .venv/bin/python server.py --address=...
    scripts/apphosts.py relay --run ID --port 6379 --port 3306
    scripts/apphosts.py down --run ID         # or: down --stale
    scripts/apphosts.py list

A *run* is one set of hosts. Every name it creates starts with ``aph``: the namespaces are
``aph<run>-<n>`` and the host side of each veth pair is ``aph<run>h<n>`` (its other end is
``eth0`` inside the namespace). Host ``n`` of a run gets the /30 network
``10.213.<slot>.(4n-4)``: ``.(4n-3)`` on this side, ``.(4n-2)`` (the host's address)
inside. The slot is the first /24 of ``10.213.0.0/16`` with no address and no route on
this machine. Namespaces have no default route: a host reaches only its own network,
and nginx (here) reaches it. Inside, the host has its own loopback and its own hostname
(``apphost-<n>``, a UTS namespace of its own), so ``X-Served-By`` names the host.

The stores: inside a namespace, 127.0.0.1 is the host's own loopback, where nothing
listens. ``relay`` opens, inside every namespace of the run, a listening socket on
127.0.0.1:PORT for each given port (``setns`` into the namespace, ``bind``, ``setns``
back) and forwards each connection to 127.0.0.1:PORT of *this* machine. So the hosts use
the usual ``--redis_url``/``--mysql_url`` unchanged, a Cluster's or a Sentinel group's
announced addresses included (relay each node's port), and their traffic goes nowhere
but to this machine's loopback. Nothing is reconfigured on Redis or MariaDB.

The state of a run is kept in ``/run/apphosts/<run>.json`` together with the PID of the
process that owns it (``--owner``, default the caller's parent). ``up`` creates
everything or, on any failure, removes what it created; ``down`` is idempotent; ``up``
and ``down --stale`` also remove runs whose owner has died. Only this script's own
namespaces and interfaces are ever touched.

Without the privileges for namespaces (not root, no ``ip``, no netns support), ``up``
falls back to loopback addresses 127.0.0.2, 127.0.0.3, ... (the same machine, a separate
address per host), says so on stderr and in the JSON (``"mode": "loopback"``); the
hosts then reach the stores directly and need neither ``exec`` nor ``relay``.

JSON printed by ``up``: ``{"run", "mode": "netns"|"loopback", "reason", "hosts": [{"index",
"name", "address", "netns", "veth", "gateway"}]}``. Standard library only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import errno
import fcntl
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

PREFIX = "aph"
STATE_DIR = Path(os.environ.get("APPHOSTS_STATE_DIR", "/run/apphosts"))
NETWORK = ipaddress.IPv4Network("10.213.0.0/16")  # one /24 per run, one /30 per host
MAX_HOSTS = 63  # /30 networks in a /24
LOOPBACK_FIRST = 2  # loopback fallback: host n on 127.0.0.(n+1)
CLONE_NEWNET = 0x40000000
CLONE_NEWUTS = 0x04000000
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


class HostsError(Exception):
    """The hosts could not be set up, found or removed."""


def _say(message: str) -> None:
    print(f"apphosts: {message}", file=sys.stderr, flush=True)


# --- processes --------------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/PID/stat (start time in ticks): tells a PID from its reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rindex(")") + 2 :].split()[19]


def _netns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def pids_in_netns(netns: str) -> list[int]:
    """PIDs of the processes whose network namespace is ``netns`` (one of ours)."""
    inode = _netns_inode(f"/run/netns/{netns}")
    if inode is None:
        return []
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _netns_inode(f"{entry}/ns/net") == inode:
            found.append(int(entry.name))
    return sorted(found)


# --- state ------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked() -> Iterator[None]:
    STATE_DIR.mkdir(parents=True, exist_ok=True, mode=0o755)
    with open(STATE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _state_path(run: str) -> Path:
    if not run.isalnum() or len(run) > 6:
        raise HostsError(f"not a run id: {run!r}")
    return STATE_DIR / f"{run}.json"


def load(run: str) -> dict[str, Any]:
    """The state of ``run`` as ``up`` printed it (plus its owner)."""
    try:
        return json.loads(_state_path(run).read_text())
    except (OSError, ValueError) as exc:
        raise HostsError(f"no run {run!r} in {STATE_DIR} ({exc})") from exc


def _save(state: dict[str, Any]) -> None:
    path = _state_path(state["run"])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, path)


def _owner_alive(state: dict[str, Any]) -> bool:
    return _start_time(state["owner_pid"]) == state["owner_start"]


# --- ip(8) ------------------------------------------------------------------------------


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise HostsError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")
    return done


def _taken_slots() -> set[int]:
    """/24 slots of NETWORK that hold an address or meet a route on this machine."""
    taken: set[int] = set()
    nets = []
    for line in _ip("-4", "-o", "addr", "show").stdout.splitlines():
        fields = line.split()
        if "inet" in fields:
            nets.append(ipaddress.IPv4Interface(fields[fields.index("inet") + 1]).network)
    for line in _ip("-4", "route", "show", "table", "all").stdout.splitlines():
        dest = line.split()[0] if line.split() else ""
        if dest in ("default", "broadcast", "local", "unreachable", "blackhole", "prohibit"):
            dest = line.split()[1] if len(line.split()) > 1 else ""
        with contextlib.suppress(ValueError):
            net = ipaddress.IPv4Network(dest, strict=False)
            if net.prefixlen > 0:
                nets.append(net)
    for slot, sub in enumerate(NETWORK.subnets(new_prefix=24)):
        if any(sub.overlaps(net) for net in nets):
            taken.add(slot)
    return taken


# --- up / down --------------------------------------------------------------------------


def _loopback_hosts(count: int) -> list[dict[str, Any]]:
    return [
        {
            "index": n,
            "name": f"apphost-{n}",
            "address": f"127.0.0.{n + LOOPBACK_FIRST - 1}",
            "netns": None,
            "veth": None,
            "gateway": None,
        }
        for n in range(1, count + 1)
    ]


def _no_netns_reason() -> str | None:
    """Why namespaces cannot be used here, or None when they can be tried."""
    if os.geteuid() != 0:
        return "not running as root"
    if shutil.which("ip") is None:
        return "no ip(8) command (Debian package iproute2)"
    if not Path("/proc/self/ns/net").exists():
        return "the kernel has no network namespaces"
    return None


def up(count: int, owner: int, force_loopback: bool = False) -> dict[str, Any]:
    """Create ``count`` hosts (namespaces, or the loopback fallback); return the run."""
    if not 1 <= count <= MAX_HOSTS:
        raise HostsError(f"hosts must be 1 to {MAX_HOSTS}, not {count}")
    run = secrets.token_hex(3)[:5]
    reason = "--loopback was given" if force_loopback else _no_netns_reason()
    if reason is None:
        try:
            return _up_netns(run, count, owner)
        except HostsError as exc:
            if "Operation not permitted" not in str(exc):
                raise
            reason = f"network namespaces refused ({exc})"
    return {
        "run": run,
        "mode": "loopback",
        "reason": reason,
        "owner_pid": owner,
        "hosts": _loopback_hosts(count),
    }


def _up_netns(run: str, count: int, owner: int) -> dict[str, Any]:
    with _locked():
        _reap_stale()
        taken = _taken_slots()
        free = [s for s in range(256) if s not in taken]
        if not free:
            raise HostsError(f"no free /24 left in {NETWORK}")
        subnet = list(NETWORK.subnets(new_prefix=24))[free[0]]
        hosts = []
        for n in range(1, count + 1):
            net = list(subnet.subnets(new_prefix=30))[n - 1]
            gateway, address = list(net.hosts())
            hosts.append(
                {
                    "index": n,
                    "name": f"apphost-{n}",
                    "address": str(address),
                    "netns": f"{PREFIX}{run}-{n}",
                    "veth": f"{PREFIX}{run}h{n}",
                    "gateway": str(gateway),
                }
            )
        state = {
            "run": run,
            "mode": "netns",
            "reason": None,
            "owner_pid": owner,
            "owner_start": _start_time(owner),
            "network": str(subnet),
            "hosts": hosts,
        }
        _save(state)  # first, so that whatever gets created can be found and removed
        try:
            for host in hosts:
                _create_host(host)
        except BaseException:
            _remove(state)
            raise
    return state


def _create_host(host: dict[str, Any]) -> None:
    ns, veth = host["netns"], host["veth"]
    _ip("netns", "add", ns)
    _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
    _ip("addr", "add", f"{host['gateway']}/30", "dev", veth)
    _ip("link", "set", veth, "up")
    _ip("-n", ns, "addr", "add", f"{host['address']}/30", "dev", "eth0")
    _ip("-n", ns, "link", "set", "eth0", "up")
    _ip("-n", ns, "link", "set", "lo", "up")


def _remove(state: dict[str, Any]) -> None:
    """Remove a run's processes, interfaces and namespaces; whatever is already gone is fine."""
    for host in state["hosts"]:
        ns = host.get("netns")
        if not ns or not ns.startswith(PREFIX):
            continue
        # Only processes this script put into the namespace can be in it.
        for pid in pids_in_netns(ns):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _ip("link", "del", host["veth"], check=False)
        _ip("netns", "del", ns, check=False)
    with contextlib.suppress(FileNotFoundError):
        _state_path(state["run"]).unlink()


def down(run: str) -> bool:
    """Remove ``run``; False when there was nothing to remove."""
    with _locked():
        try:
            state = load(run)
        except HostsError:
            return False
        _remove(state)
    return True


def _reap_stale() -> list[str]:
    """Remove the runs whose owner has exited (call with the lock held)."""
    reaped = []
    for path in sorted(STATE_DIR.glob("*.json")):
        with contextlib.suppress(HostsError, KeyError):
            state = load(path.stem)
            if not _owner_alive(state):
                _remove(state)
                reaped.append(state["run"])
    # Namespaces of ours that no state file names (a crash between creation and save).
    known = set()
    for path in STATE_DIR.glob("*.json"):
        with contextlib.suppress(HostsError):
            known |= {h["netns"] for h in load(path.stem)["hosts"]}
    for line in _ip("netns", "list", check=False).stdout.splitlines():
        name = line.split()[0] if line.split() else ""
        if name.startswith(PREFIX) and name not in known:
            _remove({"run": "orphan", "hosts": [{"netns": name, "veth": _veth_of(name)}]})
            reaped.append(name)
    return reaped


def _veth_of(netns: str) -> str:
    run, _, n = netns[len(PREFIX) :].partition("-")
    return f"{PREFIX}{run}h{n}"


# --- exec -------------------------------------------------------------------------------


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise HostsError(f"{what}: {os.strerror(err)}")


def enter(netns: str, hostname: str | None) -> None:
    """Move this (single-threaded) process into ``netns``, with a hostname of its own."""
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {netns}")
    finally:
        os.close(fd)
    if hostname:
        _check(_libc.unshare(CLONE_NEWUTS), "unshare(CLONE_NEWUTS)")
        name = hostname.encode()
        _check(_libc.sethostname(name, len(name)), "sethostname")


def host_of(state: dict[str, Any], index: int) -> dict[str, Any]:
    for host in state["hosts"]:
        if host["index"] == index:
            return host
    raise HostsError(f"run {state['run']} has no host {index}")


# --- relay ------------------------------------------------------------------------------


class _Pipe(asyncio.Protocol):
    """One direction of a relayed connection; ``peer`` is the other side."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.peer: _Pipe | None = None
        self.pending: list[bytes] = []
        self.eof = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def link(self, peer: _Pipe) -> None:
        """Join the two sides and pass on what either received before the other existed."""
        self.peer, peer.peer = peer, self
        if self.pending and peer.transport:
            peer.transport.write(b"".join(self.pending))
        if peer.pending and self.transport:
            self.transport.write(b"".join(peer.pending))
        self.pending, peer.pending = [], []

    def data_received(self, data: bytes) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.write(data)
        else:
            self.pending.append(data)

    def eof_received(self) -> bool:
        self.eof = True
        peer = self.peer
        if peer is None or peer.transport is None or peer.eof:
            self._close_both()
            return False
        if peer.transport.can_write_eof():
            peer.transport.write_eof()
        return True  # half-closed: the other direction may still carry data

    def connection_lost(self, exc: Exception | None) -> None:
        self._close_both()

    def _close_both(self) -> None:
        for side in (self, self.peer):
            if side is not None and side.transport is not None:
                side.transport.close()

    # Flow control: a slow reader on one side pauses reading on the other.
    def pause_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.resume_reading()


def _listen_in(netns: str, port: int) -> socket.socket:
    """A socket listening on 127.0.0.1:``port`` inside ``netns`` (this thread goes back)."""
    home = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        enter(netns, None)
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            sock.listen(512)
            sock.setblocking(False)
            return sock
        finally:
            _check(_libc.setns(home, CLONE_NEWNET), "setns back")
    finally:
        os.close(home)


async def _relay(sockets: list[tuple[socket.socket, int]], on_ready: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        loop.add_signal_handler(sig, stop.set)

    def accepted(port: int) -> _Pipe:
        client = _Pipe()

        async def connect() -> None:
            try:
                _, upstream = await loop.create_connection(_Pipe, "127.0.0.1", port)
            except OSError:
                if client.transport is not None:
                    client.transport.close()  # as if the store refused the connection
                return
            client.link(upstream)  # type: ignore[arg-type]

        tasks.add(task := loop.create_task(connect()))
        task.add_done_callback(tasks.discard)
        return client

    tasks: set[asyncio.Task[None]] = set()
    servers = [
        await loop.create_server(lambda p=port: accepted(p), sock=sock) for sock, port in sockets
    ]
    on_ready()
    await stop.wait()
    for server in servers:
        server.close()


def relay(state: dict[str, Any], ports: list[int], ready_file: str | None) -> None:
    """Serve the stores' loopback ports inside every namespace of the run until SIGTERM."""
    if state["mode"] != "netns":
        raise HostsError("the loopback fallback needs no relay: the hosts reach 127.0.0.1")
    # Stop with the process that started the relay, even if it is killed.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    sockets = []
    for host in state["hosts"]:
        for port in ports:
            sockets.append((_listen_in(host["netns"], port), port))
    _say(
        f"relaying 127.0.0.1:{{{','.join(map(str, ports))}}} inside "
        f"{len(state['hosts'])} namespace(s) to this machine's loopback"
    )

    def ready() -> None:
        if ready_file:
            Path(ready_file).write_text(f"{os.getpid()}\n")

    asyncio.run(_relay(sockets, ready))


def store_ports(urls: list[str]) -> list[int]:
    """The ports of the loopback stores named by ``urls`` (redis[s]://, redis+cluster://,
    redis+sentinel://, mysql://); a store elsewhere than loopback is refused."""
    ports = []
    defaults = {"redis": 6379, "rediss": 6379, "mysql": 3306}
    for url in urls:
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise HostsError(f"not a URL: {url!r}")
        netloc = rest.split("/", 1)[0].rpartition("@")[2]
        base = scheme.split("+")[0]
        sentinel = scheme.endswith("+sentinel")
        for item in netloc.split(","):
            host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
            host = host.strip("[]")
            if not host:
                host = item
            try:
                is_loopback = ipaddress.ip_address(host).is_loopback
            except ValueError:
                is_loopback = host == "localhost"
            if not is_loopback:
                raise HostsError(f"{url}: the app hosts reach only stores on loopback")
            default = 26379 if sentinel else defaults.get(base, 0)
            ports.append(int(port) if port else default)
    return sorted(set(ports))


# --- command line -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/apphosts.py", description="App hosts in network namespaces."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p_up = sub.add_parser("up", help="create the hosts; print the run as JSON")
    p_up.add_argument("--hosts", type=int, required=True)
    p_up.add_argument("--owner", type=int, default=os.getppid(), help="PID owning the run")
    p_up.add_argument("--loopback", action="store_true", help="use the loopback fallback")
    p_down = sub.add_parser("down", help="remove a run (idempotent)")
    group = p_down.add_mutually_exclusive_group(required=True)
    group.add_argument("--run")
    group.add_argument("--stale", action="store_true", help="every run whose owner has exited")
    p_exec = sub.add_parser("exec", help="run a command on a host")
    p_exec.add_argument("--run", required=True)
    p_exec.add_argument("--host", type=int, required=True)
    p_exec.add_argument("cmd", nargs=argparse.REMAINDER)
    p_relay = sub.add_parser("relay", help="relay loopback ports into the namespaces")
    p_relay.add_argument("--run", required=True)
    p_relay.add_argument("--port", type=int, action="append", default=[])
    p_relay.add_argument("--url", action="append", default=[], help="a store URL to relay")
    p_relay.add_argument("--ready-file", help="written once every socket listens")
    sub.add_parser("list", help="the runs and their hosts")
    p_ports = sub.add_parser("ports", help="print the loopback ports of store URLs")
    p_ports.add_argument("urls", nargs="+")
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            state = up(args.hosts, args.owner, args.loopback)
            hosts = ", ".join(f"{h['name']} {h['address']}" for h in state["hosts"])
            if state["mode"] == "netns":
                _say(f"run {state['run']}: {args.hosts} network namespace(s): {hosts}")
            else:
                _say(
                    f"NO NETWORK NAMESPACES ({state['reason']}): the app hosts share this "
                    f"machine's network, each on a loopback address of its own: {hosts}"
                )
            print(json.dumps(state))
        elif args.command == "down":
            if args.stale:
                with _locked():
                    for name in _reap_stale():
                        _say(f"removed stale run {name}")
            elif down(args.run):
                _say(f"run {args.run} removed")
        elif args.command == "exec":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                raise HostsError("exec needs a command after --")
            state = load(args.run)
            host = host_of(state, args.host)
            if state["mode"] == "netns":
                enter(host["netns"], host["name"])
            os.execvp(cmd[0], cmd)  # noqa: S606 - the caller's command, on purpose
        elif args.command == "relay":
            ports = sorted(set(args.port) | set(store_ports(args.url)))
            if not ports:
                raise HostsError("relay needs --port or --url")
            relay(load(args.run), ports, args.ready_file)
        elif args.command == "list":
            for path in sorted(STATE_DIR.glob("*.json")) if STATE_DIR.exists() else []:
                state = load(path.stem)
                owner = "alive" if _owner_alive(state) else "gone"
                print(
                    f"run {state['run']} ({state['network']}, owner {state['owner_pid']} {owner})"
                )
                for h in state["hosts"]:
                    pids = " ".join(map(str, pids_in_netns(h["netns"]))) or "-"
                    print(f"  {h['name']} {h['address']} netns {h['netns']} pids {pids}")
        elif args.command == "ports":
            print(" ".join(map(str, store_ports(args.urls))))
    except HostsError as exc:
        print(f"apphosts: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            print(f"apphosts: error: {exc}", file=sys.stderr)
            return 1
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
