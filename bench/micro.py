"""Micro-measurements of the session layer's hot path: ``python -m bench.micro``.

CPU time per operation (µs), in one process, with ``timeit``: the best of several
repeats of many calls, so a busy machine inflates the figures less than a load test.
These choose between implementations and show what one step costs; they are not the
benchmark (``python -m bench``), which measures whole requests against a hello world.

Each case runs against the real Redis (``--redis-url``, default database 11) under a
key prefix of its own, whose keys it deletes at the end; nothing else is touched.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import sys
import time
import timeit
from collections.abc import Callable, Coroutine
from typing import Any

import orjson
import redis
from tornado import httputil

import serving
from handlers.inputs import cookie_value
from sessions import RedisSessionStore, Session, SessionConfig, scripts
from sessions.session import Snapshot
from sessions.store import _pairs

#: SAVE as it was before it answered only the counters: the whole hash after the write.
SAVE_ANSWERING_THE_HASH = scripts.SAVE.replace(
    "redis.call('EXISTS', KEYS[1])  -- read after the write: tracked again\nreturn counters",
    "return redis.call('HGETALL', KEYS[1])",
)
assert SAVE_ANSWERING_THE_HASH != scripts.SAVE

Case = tuple[str, Callable[[], object]]


def run_now(make: Callable[[], Coroutine[Any, Any, Any]]) -> Callable[[], Any]:
    """A call that drives a coroutine which must finish without waiting (a cache hit)."""

    def call() -> Any:
        coro = make()
        try:
            coro.send(None)
        except StopIteration as done:
            return done.value
        coro.close()
        raise AssertionError("the coroutine waited: not the path being measured")

    return call


def per_call_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


async def session_cases(url: str, prefix: str) -> tuple[list[Case], RedisSessionStore]:
    store = RedisSessionStore.from_url(url, SessionConfig(prefix=prefix))
    session = Session()
    session["user_name"] = "Micro"
    await store.create(session, user_id=1)
    loc = session.locator
    assert loc is not None and await store.load(loc) is not None
    key = store.keys.session(loc)
    snapshot = store.cache.get(key) if store.cache is not None else None
    assert snapshot is not None
    fields = {**snapshot.meta, **{k: json.dumps(v) for k, v in snapshot.data.items()}}
    hgetall = [part.encode() for name, value in fields.items() for part in (name, value)]
    cases: list[Case] = [
        ("AutoPipeline.read_pending(), nothing waiting", store.redis.read_pending),
        ("store.load(), cache hit", run_now(lambda: store.load(loc))),
        ("Session(loc, fields): decoded on every hit (before)", lambda: Session(loc, fields)),
        (
            "Session.view(loc, snapshot): the cached snapshot (now)",
            lambda: Session.view(loc, snapshot),
        ),
        ("Snapshot(fields): decoding, once per Redis reply", lambda: Snapshot(fields)),
        (
            "SAVE's reply into the cache: the whole hash decoded (before)",
            lambda: Snapshot(_pairs(hgetall)),
        ),
        (
            "SAVE's reply into the cache: the delta on the entry held (now)",
            lambda: snapshot.with_changes({}, set(), {"views": 8, "served_by:host:1": 5}),
        ),
    ]
    return cases, store


def redis_script_us(url: str, prefix: str, calls: int) -> list[tuple[str, float]]:
    """Redis's own CPU per SAVE (``INFO commandstats``: the EVALSHA time's growth),
    answering the hash (before) and the counters (now), on a session-sized hash."""
    client = redis.Redis.from_url(url)
    key = prefix + "sess:{u:1}:script-cost"
    fields = {
        "@c": "1764770000000",
        "@s": "1764770000000",
        "@ip": "127.0.0.1",
        "@ua": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36",
        "@va": "1764770000000",
        "user_name": '"benchuser"',
        "views": "1",
        "served_by:host:1": "1",
        "served_by:host:2": "1",
    }
    results = []
    try:
        client.hset(key, mapping=fields)
        for label, source in (
            ("Redis CPU per SAVE answering the hash (before)", SAVE_ANSWERING_THE_HASH),
            ("Redis CPU per SAVE answering the counters (now)", scripts.SAVE),
        ):
            sha = client.script_load(source)
            args = [0, 0, 2, "views", 1, "served_by:host:1", 1]
            before = client.info("commandstats").get("cmdstat_evalsha", {}).get("usec", 0)
            pipe = client.pipeline(transaction=False)
            for _ in range(calls):
                pipe.evalsha(sha, 1, key, *args)
            pipe.execute()
            after = client.info("commandstats")["cmdstat_evalsha"]["usec"]
            results.append((label, (after - before) / calls))
    finally:
        client.delete(key)
        client.close()
    return results


def hot_path_cases() -> list[Case]:
    """The request-level pieces: JSON envelope, session cookie, Date header."""
    envelope = {
        "error": False,
        "message": {
            "user_id": 123,
            "user_name": "Ann Example",
            "served_by": "host:12345",
            "remote_ip": "127.0.0.1",
            "protocol": "http",
        },
    }
    encoder = json.JSONEncoder()
    header = (
        "_xsrf=2|3f1c2a9b|5d41402abc4b2a76b9719d911017c592|1733220000; "
        "sid=2|1:1|10:1733220000|3:sid|64:MTIzOm4xWXNXbVpBd1A4a2Fhd2dLRm5qZkJ1MnRqQjVRSXhYb3JXb0E"
        "|0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    )
    original = httputil.format_timestamp
    cached = serving._HttpDateOfTheSecond(original)
    return [
        ("JSON envelope, json.JSONEncoder().encode (before)", lambda: encoder.encode(envelope)),
        ("JSON envelope, orjson.dumps (now)", lambda: orjson.dumps(envelope)),
        ("sid cookie, parse_cookie(header) (before)", lambda: httputil.parse_cookie(header)["sid"]),
        ("sid cookie, cookie_value(header, 'sid') (now)", lambda: cookie_value(header, "sid")),
        ("Date header, format_timestamp(now) (Tornado)", lambda: original(time.time())),
        ("Date header, kept for the second (now)", lambda: cached(time.time())),
    ]


async def measure(url: str, number: int, repeat: int) -> list[tuple[str, float]]:
    prefix = f"bench-micro:{secrets.token_hex(4)}:"
    cases, store = await session_cases(url, prefix)
    try:
        timed = [(name, per_call_us(fn, number, repeat)) for name, fn in cases + hot_path_cases()]
        return timed + redis_script_us(url, prefix, number)
    finally:
        await store.close()
        client = redis.Redis.from_url(url)
        try:
            for key in client.scan_iter(match=prefix + "*", count=1000):
                client.delete(key)
        finally:
            client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.micro", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--number", type=int, default=20_000, help="calls per repeat")
    parser.add_argument("--repeat", type=int, default=7, help="repeats; the best counts")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    results = asyncio.run(measure(args.redis_url, args.number, args.repeat))
    width = max(len(name) for name, _ in results)
    print(f"{'operation':<{width}}  µs/call (best of {args.repeat} x {args.number})")
    for name, us in results:
        print(f"{name:<{width}}  {us:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
