"""bcrypt password hashing, always in a thread pool, never on the event loop.

bcrypt only reads 72 bytes of its input and bcrypt 5 raises ``ValueError`` beyond
that, in ``hashpw`` and ``checkpw`` alike. We refuse such passwords with a clear
message (validation checks the length before anything reaches bcrypt) rather than
pre-hashing them: the rule is simple to state, and nothing is ever truncated.

**Bounded queue.** Each process admits at most ``queue_size`` hashing jobs at a time
(running or waiting for a thread). One more raises :class:`HashingBusy` at once, which
the handlers answer with 503 and ``Retry-After``: a flood of sign-ups or sign-ins then
costs the flooder refusals, not everyone else an ever-growing wait. New hashes
(sign-ups, password changes) may fill only half of the queue, so that sign-ins always
find room during a flood of sign-ups.

**Equal time.** Every check does the work of exactly one bcrypt at the configured cost
``C``, whatever the account:

* an unknown e-mail is checked against a dummy hash of cost ``C``, made once before
  the server forks;
* a stored hash of a lower cost ``c`` (the cost was raised since it was made) is
  checked, then padded with checks against never-matching hashes of costs ``c``,
  ``c + 1``, ..., ``C - 1``: ``2^c + (2^c + ... + 2^(C-1)) = 2^C`` rounds in all;
* a stored hash of a higher cost (the cost was lowered) takes its own, longer, time:
  a lowered cost is the one change that can still be told apart, until the account's
  owner signs in.

After a successful check against a hash whose cost differs from ``C``,
:meth:`PasswordHasher.needs_rehash` says so, and the sign-in stores a new hash.

The hashing threads run only on CPU the event loop does not want (:func:`hashing_pool`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import threading
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TypeVar

import bcrypt

from limits import MAX_PASSWORD_BYTES

T = TypeVar("T")
MIN_ROUNDS = 4
NEW_HASH_SHARE = 0.5  # of the hashing queue; sign-ins may use all of it
CPU_THREAD_NICENESS = 10


def yield_to_event_loop() -> None:
    """Make the calling pool thread run only on CPU the event loop does not want.

    bcrypt then uses every idle cycle, but a runnable event loop never waits behind it
    for a core. Linux's ``SCHED_IDLE`` policy does exactly that, per thread; where it is
    refused, the thread is at least niced by +10. Elsewhere this does nothing.
    """
    tid = threading.get_native_id()
    try:
        os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):
        with contextlib.suppress(OSError, AttributeError):
            nice = os.getpriority(os.PRIO_PROCESS, tid) + CPU_THREAD_NICENESS
            os.setpriority(os.PRIO_PROCESS, tid, nice)


def hashing_pool(threads: int = 0) -> ThreadPoolExecutor:
    """The worker's pool for CPU work: ``threads`` (0 = one per core), each yielding."""
    return ThreadPoolExecutor(
        max_workers=threads or os.cpu_count() or 1,
        thread_name_prefix="cpu",
        initializer=yield_to_event_loop,
    )


_BCRYPT_B64 = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


class HashingBusy(Exception):
    """The process's hashing queue is full: answer 503 and ask to retry later."""

    retry_after = 2


def make_dummy_hash(rounds: int) -> bytes:
    """A hash of a random password with the configured work factor (call before fork)."""
    return bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt(rounds))


def hash_cost(hashed: bytes) -> int | None:
    """The work factor written in a bcrypt hash (``$2b$12$...`` -> 12), or None."""
    parts = hashed.split(b"$")
    if len(parts) < 4 or not parts[2].isdigit():
        return None
    return int(parts[2])


def _padding_hash(rounds: int) -> bytes:
    """A well-formed bcrypt hash of cost ``rounds`` that matches no password.

    Made without hashing anything: a real salt and 31 random characters where the
    digest goes. Checking a password against it costs exactly one bcrypt of that cost.
    """
    digest = "".join(secrets.choice(_BCRYPT_B64) for _ in range(31))
    return bcrypt.gensalt(rounds) + digest.encode()


class PasswordHasher:
    """Hash and check passwords on ``executor`` (a thread pool: bcrypt frees the GIL).

    ``executor=None`` runs bcrypt on the event loop itself: only for the benchmark that
    shows what that costs (``--bcrypt_on_event_loop``), never in production.
    """

    def __init__(
        self,
        executor: Executor | None,
        *,
        rounds: int,
        dummy_hash: bytes,
        queue_size: int = 0,
    ) -> None:
        """``queue_size``: hashing jobs admitted at once (0: no limit)."""
        self._executor = executor
        self.rounds = rounds
        self._dummy_hash = dummy_hash
        self.queue_size = queue_size
        self.pending = 0  # jobs running or waiting for a thread

    def needs_rehash(self, hashed: bytes) -> bool:
        """True when ``hashed`` was made with another cost than the configured one."""
        return hash_cost(hashed) != self.rounds

    def admit(self, share: float = 1.0) -> None:
        """Raise :class:`HashingBusy` when a job now would exceed ``share`` of the queue."""
        if self.queue_size and self.pending >= max(1, int(self.queue_size * share)):
            raise HashingBusy

    async def hash(self, password: str) -> bytes:
        """A new hash at the configured cost; new hashes fill at most half the queue."""
        secret = _encode(password)
        self.admit(NEW_HASH_SHARE)
        return await self._run(bcrypt.hashpw, secret, bcrypt.gensalt(self.rounds))

    async def verify(self, password: str, hashed: bytes | None) -> bool:
        """True if ``password`` matches ``hashed``; with ``hashed=None`` always False,
        after the same amount of work (see the module's docstring)."""
        secret = _encode(password)
        target = hashed if hashed is not None else self._dummy_hash
        cost = hash_cost(target)
        padding = []
        if cost is not None and MIN_ROUNDS <= cost < self.rounds:
            padding = [_padding_hash(rounds) for rounds in range(cost, self.rounds)]
        ok = await self._run(_check_padded, secret, target, padding)
        return ok and hashed is not None

    async def _run(self, func: Callable[..., T], *args: object) -> T:
        self.admit()
        self.pending += 1
        try:
            if self._executor is None:
                return func(*args)
            return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)
        finally:
            self.pending -= 1


def _check_padded(secret: bytes, target: bytes, padding: list[bytes]) -> bool:
    """One thread job: the real check, then the padding checks (results ignored)."""
    try:
        ok = bcrypt.checkpw(secret, target)
    except ValueError:  # a stored value that is not a bcrypt hash
        ok = False
    for extra in padding:
        bcrypt.checkpw(secret, extra)
    return bool(ok)


def _encode(password: str) -> bytes:
    secret = password.encode("utf-8")
    if len(secret) > MAX_PASSWORD_BYTES:
        raise ValueError("password longer than 72 bytes")  # validation refuses it first
    return secret
