"""bcrypt password hashing, always in a thread pool, never on the event loop.

bcrypt only reads 72 bytes of its input and bcrypt 5 raises ``ValueError`` beyond
that, in ``hashpw`` and ``checkpw`` alike. We refuse such passwords with a clear
message (validation checks the length before anything reaches bcrypt) rather than
pre-hashing them: the rule is simple to state, and nothing is ever truncated.

For a login whose e-mail matches no account, :meth:`PasswordHasher.verify` still runs
one check against a dummy hash of the same work factor, made once before the server
forks, so the answer takes as long as for a wrong password.

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

T = TypeVar("T")
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_BYTES = 72
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


def make_dummy_hash(rounds: int) -> bytes:
    """A hash of a random password with the configured work factor (call before fork)."""
    return bcrypt.hashpw(secrets.token_bytes(32), bcrypt.gensalt(rounds))


class PasswordHasher:
    """Hash and check passwords on ``executor`` (a thread pool: bcrypt frees the GIL).

    ``executor=None`` runs bcrypt on the event loop itself: only for the benchmark that
    shows what that costs (``--bcrypt_on_event_loop``), never in production.
    """

    def __init__(self, executor: Executor | None, *, rounds: int, dummy_hash: bytes) -> None:
        self._executor = executor
        self.rounds = rounds
        self._dummy_hash = dummy_hash

    async def hash(self, password: str) -> bytes:
        secret = _encode(password)
        return await self._run(bcrypt.hashpw, secret, bcrypt.gensalt(self.rounds))

    async def verify(self, password: str, hashed: bytes | None) -> bool:
        """True if ``password`` matches ``hashed``; with ``hashed=None`` always False,
        after the same amount of work."""
        secret = _encode(password)
        target = hashed if hashed is not None else self._dummy_hash
        try:
            ok = await self._run(bcrypt.checkpw, secret, target)
        except ValueError:  # a stored value that is not a bcrypt hash
            return False
        return bool(ok) and hashed is not None

    async def _run(self, func: Callable[[bytes, bytes], T], secret: bytes, other: bytes) -> T:
        if self._executor is None:
            return func(secret, other)
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, secret, other)


def _encode(password: str) -> bytes:
    secret = password.encode("utf-8")
    if len(secret) > MAX_PASSWORD_BYTES:
        raise ValueError("password longer than 72 bytes")  # validation refuses it first
    return secret
