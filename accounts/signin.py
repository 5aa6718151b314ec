"""Checking a password at sign-in: throttle first, then bcrypt, then upkeep.

The order is what makes the throttle hold under concurrency: the attempt is counted
(atomically, in Redis) before any password is checked, and a refused attempt never
reaches bcrypt. See :mod:`accounts.throttle` for the limits.
"""

from __future__ import annotations

import asyncio
import logging

from accounts.passwords import HashingBusy, PasswordHasher
from accounts.throttle import LoginThrottle
from storage.pool import Database
from storage.users import User, find_user_by_email, set_password_hash

log = logging.getLogger("app")


class Throttled(Exception):
    """Too many attempts: refused before any password check."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"retry after {retry_after} s")
        self.retry_after = retry_after


async def authenticate(
    passwords: PasswordHasher,
    throttle: LoginThrottle,
    db: Database,
    *,
    email: str,
    password: str,
    ip: str,
) -> User | None:
    """The account whose e-mail and password these are, or None.

    Raises :class:`Throttled` (429) or :class:`accounts.passwords.HashingBusy` (503)
    before counting anything when the hashing queue is already full. An unknown
    e-mail and a wrong password take the same time (see ``accounts.passwords``).
    After a success with a hash of another cost than the configured one, the
    password is hashed again at that cost and stored.
    """
    passwords.admit()
    admission = await throttle.attempt(email, ip)
    if admission.retry_after:
        raise Throttled(admission.retry_after)
    if admission.delay:
        await asyncio.sleep(admission.delay)
    user = await find_user_by_email(db, email)
    ok = await passwords.verify(password, user.password_hash if user else None)
    if not ok or user is None:
        return None
    await throttle.succeeded(email, ip)
    if passwords.needs_rehash(user.password_hash):
        try:
            new_hash = await passwords.hash(password)
        except HashingBusy:
            return user  # next time
        await set_password_hash(db, user.user_id, new_hash, end_sessions=False)
        log.info("password of user=%s rehashed at cost %d", user.user_id, passwords.rounds)
    return user
