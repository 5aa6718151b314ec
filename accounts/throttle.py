"""Throttle sign-ins and registrations in Redis: count first, atomically, then verify.

Every sign-in attempt is counted *before* its password is checked, by one Lua script
that reads the counters, compares them with the limits and increments them, all at
once. Concurrent attempts therefore cannot all slip through before the first failure
is recorded: of 60 simultaneous guesses with a limit of 10, exactly 10 are checked.

Sign-in (OWASP's advice against lockouts keyed on the account alone):

* **the (account, address) pair** is limited hard: ``per_pair`` attempts per window,
  then 429 until the window ends;
* **the address** is limited across accounts: ``per_ip`` attempts per window, then 429;
* **the account**, across addresses, is slowed down, never locked: after
  ``slow_after`` attempts in the window, each further attempt waits
  ``delay_base * 2^(n - 1)`` seconds (``n`` = attempts past ``slow_after``), at most
  ``delay_max``, before its password is checked. Failures from one address therefore
  never stop the owner signing in from another; they only make it slower.

A successful sign-in deletes the pair's counter and takes its own attempt back from
the address's and the account's counters: only failures stay counted, so many people
signing in successfully from one address (a NAT, a load test) are never throttled.

Registration: ``register_per_ip`` attempts per address per ``register_window``
(every attempt whose input is valid counts, accepted or not), then 429. This also
bounds how fast one address can learn which e-mail addresses have accounts.

Keys, under the configured prefix (``<a>`` = the first 32 hex digits of the e-mail's
SHA-256, ``<ip>`` = the client address); each a counter that expires one window
after its first increment:

* ``throttle:{login}:pair:<a>:<ip>``, ``throttle:{login}:ip:<ip>``,
  ``throttle:{login}:acct:<a>`` (one hash tag, so that the script's three keys are in
  one Redis Cluster slot)
* ``throttle:register:ip:<ip>``

Commands: EVALSHA of the scripts below (SCRIPT LOAD once, on NOSCRIPT); their bodies
use GET, PTTL, INCR, PEXPIRE (NX), DECR and DEL.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from redis.exceptions import RedisError

from storage.redis_client import RedisClient


class ThrottleUnavailable(Exception):
    """Redis did not answer the throttle: no sign-in is checked without it (answer 503)."""


# KEYS: pair, ip, account
# ARGV: window ms, per_pair, per_ip, slow_after, delay_base ms, delay_max ms
# Returns {1, ms to wait} when refused, {0, ms to delay the check} when admitted.
ATTEMPT = """
local window = tonumber(ARGV[1])
local function over(key, limit)
  if limit > 0 and tonumber(redis.call('GET', key) or '0') >= limit then
    local ttl = redis.call('PTTL', key)
    if ttl < 0 then
      redis.call('PEXPIRE', key, window)
      ttl = window
    end
    return ttl
  end
  return false
end
local wait = over(KEYS[1], tonumber(ARGV[2])) or over(KEYS[2], tonumber(ARGV[3]))
if wait then return {1, wait} end
local n = 0
for i = 1, 3 do
  n = redis.call('INCR', KEYS[i])
  redis.call('PEXPIRE', KEYS[i], window, 'NX')
end
local past = n - tonumber(ARGV[4])
local delay = 0
if past > 0 then
  delay = math.min(tonumber(ARGV[6]), math.floor(tonumber(ARGV[5]) * 2 ^ (past - 1)))
end
return {0, delay}
"""

# KEYS: pair, ip, account
# The attempt succeeded: forget the pair's failures, take this attempt back elsewhere.
SUCCESS = """
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 1
"""

# KEYS: counter;  ARGV: window ms, limit
# Returns 0 when admitted (and counted), else the ms until the window ends.
COUNT = """
local limit = tonumber(ARGV[2])
if limit > 0 and tonumber(redis.call('GET', KEYS[1]) or '0') >= limit then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl < 0 then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
    ttl = tonumber(ARGV[1])
  end
  return ttl
end
redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1], 'NX')
return 0
"""


@dataclass(frozen=True)
class ThrottleConfig:
    """Limits; a limit of 0 means none. Times in seconds."""

    window: float = 900
    per_pair: int = 10
    per_ip: int = 100
    slow_after: int = 10
    delay_base: float = 0.5
    delay_max: float = 8.0
    register_window: float = 3600
    register_per_ip: int = 20


@dataclass(frozen=True)
class Admission:
    """The throttle's answer to one sign-in attempt."""

    retry_after: int = 0  # > 0: refused, wait this many seconds
    delay: float = 0.0  # admitted, but wait this long before checking the password


class LoginThrottle:
    def __init__(self, client: RedisClient, config: ThrottleConfig, prefix: str = ""):
        self.client = client
        self.config = config
        self.prefix = prefix
        self._attempt = client.register_script(ATTEMPT)
        self._success = client.register_script(SUCCESS)
        self._count = client.register_script(COUNT)

    def _keys(self, email: str, ip: str) -> list[str]:
        digest = hashlib.sha256(email.encode()).hexdigest()[:32]
        base = f"{self.prefix}throttle:{{login}}:"  # one hash tag: one Cluster slot per script
        return [f"{base}pair:{digest}:{ip}", f"{base}ip:{ip}", f"{base}acct:{digest}"]

    async def attempt(self, email: str, ip: str) -> Admission:
        """Count one sign-in attempt, before its password is checked."""
        cfg = self.config
        args = [
            int(cfg.window * 1000),
            cfg.per_pair,
            cfg.per_ip,
            cfg.slow_after or 2**31,
            int(cfg.delay_base * 1000),
            int(cfg.delay_max * 1000),
        ]
        try:
            refused, ms = await self._attempt(keys=self._keys(email, ip), args=args)
        except RedisError as exc:
            raise ThrottleUnavailable(str(exc) or type(exc).__name__) from exc
        if int(refused):
            return Admission(retry_after=_seconds(int(ms)))
        return Admission(delay=int(ms) / 1000)

    async def succeeded(self, email: str, ip: str) -> None:
        """The attempt's password was right: clear the pair, uncount the attempt."""
        try:
            await self._success(keys=self._keys(email, ip))
        except RedisError as exc:
            raise ThrottleUnavailable(str(exc) or type(exc).__name__) from exc

    async def register_attempt(self, ip: str) -> int:
        """Count one registration from ``ip``: 0 when allowed, else seconds to wait."""
        cfg = self.config
        if not cfg.register_per_ip:
            return 0
        key = f"{self.prefix}throttle:register:ip:{ip}"
        try:
            ms = await self._count(
                keys=[key], args=[int(cfg.register_window * 1000), cfg.register_per_ip]
            )
        except RedisError as exc:
            raise ThrottleUnavailable(str(exc) or type(exc).__name__) from exc
        return _seconds(int(ms)) if int(ms) else 0


def _seconds(ms: int) -> int:
    return max(1, math.ceil(ms / 1000))
