"""Throttle failed sign-ins per account and per client address, in Redis.

Keys (under the configured prefix): ``throttle:login:acct:<sha256(e-mail)[:32]>`` and
``throttle:login:ip:<address>``, each a counter of failures with a TTL of one window
(INCR, then PEXPIRE NX, in one pipeline). A sign-in is refused with 429 while either
counter is at its limit; ``Retry-After`` is the counter's remaining TTL. A successful
sign-in clears the account's counter. Only failures count, so many users signing in
from one address (a NAT, a load test) are not throttled while they succeed.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from sessions.store import SessionUnavailable


@dataclass(frozen=True)
class ThrottleConfig:
    window: float = 900
    per_account: int = 10
    per_ip: int = 100


class LoginThrottle:
    def __init__(self, client: aioredis.Redis, config: ThrottleConfig, prefix: str = ""):
        self.client = client
        self.config = config
        self.prefix = prefix

    def _keys(self, email: str, ip: str) -> tuple[str, str]:
        digest = hashlib.sha256(email.encode()).hexdigest()[:32]
        base = f"{self.prefix}throttle:login:"
        return f"{base}acct:{digest}", f"{base}ip:{ip}"

    async def retry_after(self, email: str, ip: str) -> int:
        """Seconds to wait before trying again, or 0 when a sign-in may be tried now."""
        acct, addr = self._keys(email, ip)
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                pipe.get(acct).pttl(acct).get(addr).pttl(addr)
                acct_n, acct_ttl, ip_n, ip_ttl = await pipe.execute()
        except RedisError as exc:
            raise SessionUnavailable(str(exc)) from exc
        waits = [
            ttl
            for count, ttl, limit in (
                (acct_n, acct_ttl, self.config.per_account),
                (ip_n, ip_ttl, self.config.per_ip),
            )
            if count is not None and int(count) >= limit
        ]
        if not waits:
            return 0
        return max(1, math.ceil(max(max(waits), 0) / 1000))

    async def record_failure(self, email: str, ip: str) -> None:
        window_ms = int(self.config.window * 1000)
        try:
            async with self.client.pipeline(transaction=False) as pipe:
                for key in self._keys(email, ip):
                    pipe.incr(key).pexpire(key, window_ms, nx=True)
                await pipe.execute()
        except RedisError as exc:
            raise SessionUnavailable(str(exc)) from exc

    async def record_success(self, email: str, ip: str) -> None:
        try:
            await self.client.delete(self._keys(email, ip)[0])
        except RedisError as exc:
            raise SessionUnavailable(str(exc)) from exc
