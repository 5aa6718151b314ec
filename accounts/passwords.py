"""bcrypt password hashing, always in a thread pool, never on the event loop.

bcrypt only reads 72 bytes of its input and bcrypt 5 raises ``ValueError`` beyond
that, in ``hashpw`` and ``checkpw`` alike. We refuse such passwords with a clear
message (validation checks the length before anything reaches bcrypt) rather than
pre-hashing them: the rule is simple to state, and nothing is ever truncated.

For a login whose e-mail matches no account, :meth:`PasswordHasher.verify` still runs
one check against a dummy hash of the same work factor, made once before the server
forks, so the answer takes as long as for a wrong password.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from concurrent.futures import Executor
from typing import TypeVar

import bcrypt

T = TypeVar("T")
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_BYTES = 72


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
