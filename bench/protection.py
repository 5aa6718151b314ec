"""Figures for docs/RELIABILITY.md: the account protections at the production bcrypt cost.

    python -m bench.protection [--rounds 12] [--mysql_url ...] [--redis_url ...]

Starts ``server.py`` (one worker, defaults otherwise) on a free loopback port, with a
fresh Redis key prefix, and measures, over plain HTTP from loopback addresses:

1. 60 simultaneous sign-ins for one account from one address, the right password
   among them: how many were checked (401/200) and refused (429);
2. after 10 failures from 127.0.0.2, the owner's sign-in from 127.0.0.3: status, time;
3. 40 simultaneous sign-ups from 40 addresses: 201 / 503, and the time of one
   sign-in made meanwhile, against the same sign-in when idle;
4. wrong-password time for an unknown e-mail and for an account whose hash is of
   cost ``rounds - 2`` (made before the cost was raised): medians of 9;
5. the first successful sign-in of that account: its stored hash's cost afterwards.

Every request loop is bounded; the server is stopped at the end. The accounts it
creates stay in the database (``bench-prot-*@example.com``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import pymysql

from storage.urls import parse_mysql_url
from tests.support.http import CookieTab, ssl_context

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery"  # noqa: S105 (the benchmark users' own)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class Visitor:
    """One client address with its own cookies (httpx's jar), a new connection a request."""

    def __init__(self, base: str, address: str = "127.0.0.1") -> None:
        self.base = base
        transport = httpx.AsyncHTTPTransport(
            verify=ssl_context(),
            local_address=address,
            limits=httpx.Limits(max_keepalive_connections=0),
        )
        self.session = httpx.AsyncClient(transport=transport, timeout=60)
        self.cookies = CookieTab(self.session.cookies, base)

    async def post(self, path: str, form: dict[str, str]) -> tuple[int, float]:
        if "_xsrf" not in self.cookies:
            await self.session.get(self.base + "/", headers={"Accept": "application/json"})
        started = time.perf_counter()
        resp = await self.session.post(
            self.base + path,
            data=form,
            headers={"Accept": "application/json", "X-XSRFToken": self.cookies["_xsrf"]},
        )
        return resp.status_code, time.perf_counter() - started

    async def close(self) -> None:
        await self.session.aclose()


def email() -> str:
    return f"bench-prot-{secrets.token_hex(6)}@example.com"


async def measure(base: str, mysql_url: str, rounds: int) -> list[str]:
    out: list[str] = []

    async def visitor(address: str = "127.0.0.1") -> Visitor:
        return Visitor(base, address)

    # 1. concurrent guesses, the right password among them
    owner_email = email()
    owner = await visitor("127.0.0.9")
    form = {"user_name": "Ann", "user_email": owner_email, "user_password": PASSWORD}
    assert (await owner.post("/register", form))[0] == 201
    guessers = [await visitor("127.0.0.4") for _ in range(60)]
    guesses = [
        {"user_email": owner_email, "user_password": PASSWORD if i == 30 else f"wrong {i:03}"}
        for i in range(60)
    ]
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(g.post("/login", f) for g, f in zip(guessers, guesses, strict=True))
    )
    took = time.perf_counter() - started
    codes = [a[0] for a in answers]
    out.append(
        f"1. 60 simultaneous sign-ins, one account, one address: {codes.count(401)} x 401, "
        f"{codes.count(200)} x 200, {codes.count(429)} x 429 in {took:.2f} s"
    )

    # 2. no lockout of the owner from elsewhere
    victim = email()
    v = await visitor("127.0.0.3")
    assert (await v.post("/register", {"user_name": "Bo", "user_email": victim,
                                       "user_password": PASSWORD}))[0] == 201  # fmt: skip
    attacker = await visitor("127.0.0.2")
    wrong = {"user_email": victim, "user_password": "nope nope"}
    fails = [(await attacker.post("/login", wrong))[0] for _ in range(11)]
    v2 = await visitor("127.0.0.3")
    status, seconds = await v2.post("/login", {"user_email": victim, "user_password": PASSWORD})
    out.append(
        f"2. after {fails.count(401)} failures (+{fails.count(429)} x 429) from 127.0.0.2: the "
        f"owner from 127.0.0.3 answers {status} in {seconds * 1000:.0f} ms"
    )

    # 3. sign-up flood and a sign-in meanwhile
    calm = await visitor("127.0.0.9")
    calm_times = [
        (await calm.post("/login", {"user_email": owner_email, "user_password": PASSWORD}))[1]
        for _ in range(3)
    ]
    flooders = [await visitor(f"127.0.1.{i + 1}") for i in range(40)]
    signups = [
        f.post("/register", {"user_name": "F", "user_email": email(), "user_password": PASSWORD})
        for f in flooders
    ]
    during = await visitor("127.0.0.9")
    flood_task = asyncio.gather(*signups)
    await asyncio.sleep(0.05)
    sign_in = await during.post("/login", {"user_email": owner_email, "user_password": PASSWORD})
    flood = await flood_task
    fcodes = [c for c, _ in flood]
    out.append(
        f"3. 40 simultaneous sign-ups from 40 addresses: {fcodes.count(201)} x 201, "
        f"{fcodes.count(503)} x 503 (max {max(t for _, t in flood):.2f} s); a sign-in meanwhile "
        f"answered {sign_in[0]} in {sign_in[1] * 1000:.0f} ms (idle: "
        f"{statistics.median(calm_times) * 1000:.0f} ms)"
    )

    # 4. equal time: unknown e-mail against an account hashed at a lower cost
    old_email = email()
    old_hash = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds - 2)).decode()
    params = parse_mysql_url(mysql_url)
    conn = pymysql.connect(**params.pymysql_kwargs(), autocommit=True)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO user_login (user_email, user_password, user_name) VALUES (%s, %s, %s)",
            (old_email, old_hash, "Old"),
        )
    unknown_t, known_t = [], []
    for i in range(9):
        a = await visitor(f"127.0.2.{i + 1}")
        unknown_t.append(
            (await a.post("/login", {"user_email": email(), "user_password": "x y z w"}))[1]
        )
        known_t.append(
            (await a.post("/login", {"user_email": old_email, "user_password": "x y z w"}))[1]
        )
        await a.close()
    out.append(
        f"4. wrong password, server at cost {rounds}: unknown e-mail "
        f"{statistics.median(unknown_t) * 1000:.0f} ms, account hashed at cost {rounds - 2} "
        f"{statistics.median(known_t) * 1000:.0f} ms (medians of 9)"
    )

    # 5. rehash at sign-in
    right = await visitor("127.0.3.1")
    status, _ = await right.post("/login", {"user_email": old_email, "user_password": PASSWORD})
    with conn.cursor() as cur:
        cur.execute("SELECT user_password FROM user_login WHERE user_email = %s", (old_email,))
        (stored,) = cur.fetchone()
    conn.close()
    out.append(f"5. first sign-in of that account: {status}; stored hash now {stored[:7]}...")

    for c in [owner, v, attacker, v2, calm, during, right, *guessers, *flooders]:
        await c.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--mysql_url", default="mysql://root@127.0.0.1:3306/appdb")
    parser.add_argument("--redis_url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args(argv)
    port = free_port()
    prefix = f"bench-prot:{secrets.token_hex(4)}:"
    cmd = [
        sys.executable, "server.py", f"--port={port}", "--processes=1",
        f"--bcrypt_rounds={args.rounds}", f"--mysql_url={args.mysql_url}",
        f"--redis_url={args.redis_url}", f"--redis_prefix={prefix}",
        "--cookie_secret=bench-protection-" + "x" * 32, "--access_log=false",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1, verify=ssl_context()).is_success:
                    break
                raise httpx.TransportError("not ready")
            except httpx.TransportError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("server.py did not start") from None
                time.sleep(0.1)
        lines: list[Any] = asyncio.run(measure(base, args.mysql_url, args.rounds))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(15)
    print(f"bcrypt cost {args.rounds}, one worker, {os.cpu_count()} cores")
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
