"""How stale can a cached session be? The session cache's bound, measured.

Two OS processes, each with its own session store and connection, stand for two
workers. Process B caches a session; process A ends it (sign-out). The bound is the
time from Redis confirming A's delete (A's reply arrives) to B having dropped its
cached copy (B's invalidation handler ran): after that, B refuses the session. Both
times are read from the same clock (``time.time()``, one machine). Measured calm, and
with B's event loop kept busy in 0.5 ms slices, as it is while serving requests.

    python -m bench.invalidation [--rounds 500] [--redis-url redis://127.0.0.1:6379/11]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import statistics
import time
from multiprocessing.connection import Connection

from sessions import Locator, RedisSessionStore, Session, SessionConfig

PREFIX = "bench-invalidation:"


def _b_main(url: str, conn: Connection, busy: bool) -> None:
    asyncio.run(_b(url, conn, busy))


async def _b(url: str, conn: Connection, busy: bool) -> None:
    store = RedisSessionStore.from_url(url, SessionConfig(prefix=PREFIX))
    assert store.cache is not None
    dropped: dict[str, float] = {}
    waiting: dict[str, asyncio.Event] = {}
    original = store.cache.invalidate

    def watch(keys: list[bytes] | None) -> None:
        now = time.time()
        for raw in keys or []:
            key = raw.decode()
            dropped.setdefault(key, now)
            if key in waiting:
                waiting[key].set()
        original(keys)

    store.redis._on_invalidate = watch
    stop = False

    async def spin() -> None:  # a loop that is busy serving, 0.5 ms at a time
        while not stop:
            deadline = time.perf_counter() + 0.0005
            while time.perf_counter() < deadline:
                pass
            await asyncio.sleep(0)

    spinner = asyncio.ensure_future(spin()) if busy else None
    loop = asyncio.get_running_loop()
    while True:
        message = await loop.run_in_executor(None, conn.recv)
        if message is None:
            break
        loc = Locator.parse(message)
        assert loc is not None
        assert await store.load(loc) is not None  # now cached
        dropped.pop(store.keys.session(loc), None)  # the push for its creation came earlier
        key = store.keys.session(loc)
        waiting[key] = event = asyncio.Event()
        conn.send("cached")
        await event.wait()
        del waiting[key]
        assert await store.load(loc) is None  # and refused from now on
        conn.send(dropped.pop(key))
    stop = True
    if spinner is not None:
        await spinner
    await store.close()


async def _a(url: str, conn: Connection, rounds: int) -> list[float]:
    store = RedisSessionStore.from_url(url, SessionConfig(prefix=PREFIX), cache_size=0)
    loop = asyncio.get_running_loop()
    delays = []
    for _ in range(rounds):
        session = Session()
        session["user_name"] = "bench"
        await store.create(session, user_id=1)
        assert session.locator is not None
        conn.send(session.locator.encode())
        assert await loop.run_in_executor(None, conn.recv) == "cached"
        confirmed = 0.0

        def stamp(_reply: object) -> None:
            nonlocal confirmed
            confirmed = time.time()

        from sessions.store import DESTROY

        await store.redis.evalsha(
            DESTROY, store._keys_for(session.locator), [session.locator.sid], stamp
        )
        dropped_at = await loop.run_in_executor(None, conn.recv)
        delays.append(max(0.0, dropped_at - confirmed) * 1000)
    conn.send(None)
    await store.close()
    return delays


def measure(url: str, rounds: int, busy: bool) -> list[float]:
    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_b_main, args=(url, child, busy))
    proc.start()
    try:
        return asyncio.run(_a(url, parent, rounds))
    finally:
        proc.join(timeout=10)


def summarise(delays: list[float]) -> dict[str, float]:
    ordered = sorted(delays)
    return {
        "p50": statistics.median(ordered),
        "p99": ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))],
        "max": ordered[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    args = parser.parse_args()
    print("| B's event loop | sign-outs | p50 ms | p99 ms | max ms |")
    print("|---|---:|---:|---:|---:|")
    for busy in (False, True):
        stats = summarise(measure(args.redis_url, args.rounds, busy))
        print(
            f"| {'busy (0.5 ms slices)' if busy else 'idle'} | {args.rounds} "
            f"| {stats['p50']:.3f} | {stats['p99']:.3f} | {stats['max']:.3f} |"
        )


if __name__ == "__main__":
    main()
