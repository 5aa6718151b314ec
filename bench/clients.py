"""Client CPU per ``EVALSHA`` of the session LOAD script, for each Redis client.

    python -m bench.clients [--redis-url URL] [--cluster] [--runs 6] [--commands 20000]

64 concurrent tasks in one process each run LOAD on a stored session until
``--commands`` are done; the figure is this process's CPU time (user + system) per
command, the median of ``--runs`` runs, so a client that spends less CPU per command
leaves more of the core to the application. Measured: the project's transport
(``sessions.transport``) and redis-py's asyncio client with retries off; valkey-glide and
coredis too when they are installed (they are not dependencies of the project). With
``--cluster`` the same is measured on a private 6-node Redis Cluster
(``scripts/redis_topology.py``), started and stopped here.

Run it on a quiet machine: on a loaded one the figures measure the other load.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis

from scripts.redis_topology import Topology
from sessions import RedisSessionStore, Session, SessionConfig
from sessions.scripts import LOAD
from sessions.store import LOAD as LOAD_SCRIPT
from sessions.transport import open_transport
from storage.redis_client import connect

TASKS = 64
PREFIX = "bench:clients:"

Call = Callable[[], Awaitable[Any]]


async def _measure(call: Call, commands: int) -> float:
    """Client CPU seconds per command with TASKS tasks calling ``call``."""
    per_task = commands // TASKS

    async def task() -> None:
        for _ in range(per_task):
            await call()

    await call()  # connect and load the script once
    await asyncio.gather(*(call() for _ in range(TASKS)))  # open the connections
    started = time.process_time()
    await asyncio.gather(*(task() for _ in range(TASKS)))
    return (time.process_time() - started) / (per_task * TASKS)


async def _clients(url: str) -> list[tuple[str, Call, Callable[[], Awaitable[None]]]]:
    """(name, one LOAD call, close) for each client, all reading the same session."""
    store = RedisSessionStore.from_url(url, SessionConfig(prefix=PREFIX), timeout=5.0, cache_size=0)
    session = Session()
    session["n"] = 1
    await store.create(session, user_id=1)
    assert session.locator is not None
    keys = [store.keys.session(session.locator), store.keys.user_index(1)]
    args = [int(time.time() * 1000), 1_800_000, 28_800_000, 60_000, session.locator.sid]
    transport = open_transport(url, timeout=5.0)
    pyclient = connect(url, timeout=5.0, max_connections=TASKS)
    pyscript = pyclient.register_script(LOAD)
    found: list[tuple[str, Call, Callable[[], Awaitable[None]]]] = [
        ("sessions.transport", lambda: transport.evalsha(LOAD_SCRIPT, keys, args), transport.close),
        (
            f"redis-py {type(pyclient).__name__} (0 retries)",
            lambda: pyscript(keys=keys, args=args),
            pyclient.aclose,
        ),
    ]
    found += await _optional_clients(url, keys, args)
    found.append(("", _nothing, store.close))  # closed with the others, not measured
    return found


async def _nothing() -> None:
    return None


async def _optional_clients(
    url: str, keys: list[str], args: list[Any]
) -> list[tuple[str, Call, Callable[[], Awaitable[None]]]]:
    found: list[tuple[str, Call, Callable[[], Awaitable[None]]]] = []
    try:
        import coredis  # type: ignore[import-not-found]
    except ImportError:
        print("coredis: not installed, not measured")
    else:
        client = (
            coredis.RedisCluster.from_url(url.replace("redis+cluster", "redis"))
            if url.startswith("redis+cluster")
            else coredis.Redis.from_url(url)
        )
        script = client.register_script(LOAD)
        found.append(("coredis", lambda: script(keys=keys, args=args), _nothing))
    try:
        import glide  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        print("valkey-glide: not installed, not measured")
    else:
        print("valkey-glide: installed; measure it with its own Script API (not wired here)")
    return found


async def _run(url: str, runs: int, commands: int) -> dict[str, float]:
    clients = await _clients(url)
    figures: dict[str, float] = {}
    try:
        for name, call, _close in clients:
            if not name:
                continue
            samples = [await _measure(call, commands) for _ in range(runs)]
            figures[name] = statistics.median(samples)
    finally:
        for _name, _call, close in clients:
            await close()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.clients", description=__doc__)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--cluster", action="store_true", help="also on a private Cluster")
    parser.add_argument("--runs", type=int, default=6)
    parser.add_argument("--commands", type=int, default=20_000)
    opts = parser.parse_args(argv)
    targets = [("one server", opts.redis_url)]
    topology = None
    try:
        if opts.cluster:
            topology = Topology.start("cluster", tempfile.mkdtemp(prefix="bench-cluster-"))
            targets.append(("Redis Cluster", topology.url))
        for label, url in targets:
            figures = asyncio.run(_run(url, opts.runs, opts.commands))
            print(f"\n{label} ({url}): client CPU per EVALSHA LOAD, {TASKS} tasks,")
            print(f"median of {opts.runs} runs of {opts.commands} commands")
            for name, seconds in figures.items():
                print(f"  {name:<40} {seconds * 1e6:7.1f} µs")
    finally:
        if topology is not None:
            topology.stop()
        client = aioredis.Redis.from_url(opts.redis_url)
        asyncio.run(_cleanup(client))
    return 0


async def _cleanup(client: aioredis.Redis) -> None:
    async for key in client.scan_iter(match=PREFIX + "*"):
        await client.delete(key)
    await client.aclose()


if __name__ == "__main__":
    raise SystemExit(main())
