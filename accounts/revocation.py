"""Ending sessions so that they stay ended: the "sessions valid after" mark, and
sign-outs retried while Redis is unreachable.

**The mark.** Each user has a "sessions valid after" mark in MariaDB
(``user_login.sessions_valid_after``), advanced by a password change (whatever else
must end every session of a user, a "sign out everywhere" or an administrator's
revocation, advances it the same way). A session carries the mark it was issued under
(``@va``). Whenever Redis refreshes a signed-in session's ``last_seen`` (at most once a
minute per session, see ``sessions.store``), :class:`SessionMark` reads the user's
current mark (one indexed query) and ends the session if it was issued under an older
one. So no request pays a query for it, and a session brought back by a Redis restored
from an old snapshot, or missed by a lost invalidation, is refused at its next refresh:
at most a minute of requests after the restore. If MariaDB does not answer, the
session goes on (logged), and is checked again at its next refresh.

**Sign-out during an outage.** :class:`SignOutRetry` deletes, in the background, a
session whose sign-out could not reach Redis: the cookie is already expired, the id
is known, and it retries with backoff (1 s doubling to 30 s) until Redis answers or
the session's absolute timeout has passed. The retries live in the worker process:
a restart of that process forgets them (the session then ends at its idle timeout).
"""

from __future__ import annotations

import asyncio
import logging
import time

from sessions import Locator, RedisSessionStore, Session, SessionUnavailable
from sessions.ids import sid_digest
from storage.errors import StorageUnavailable
from storage.pool import Database
from storage.users import sessions_valid_after

log = logging.getLogger("app")
FIRST_RETRY = 1.0
LONGEST_RETRY = 30.0


class SessionMark:
    """The store's ``revalidate`` hook: the session against its user's current mark."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def __call__(self, user_id: int, session: Session) -> bool:
        try:
            mark = await sessions_valid_after(self.db, user_id)
        except StorageUnavailable as exc:
            log.warning("session mark of user=%s not checked: %s", user_id, exc)
            return True
        if mark is None:
            log.info("session of deleted user=%s ended", user_id)
            return False
        if (session.valid_after or 0) < mark:
            log.info("session of user=%s issued before its mark: ended", user_id)
            return False
        return True


class SignOutRetry:
    """Background deletion of sessions whose sign-out Redis did not hear."""

    def __init__(self, store: RedisSessionStore) -> None:
        self.store = store
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        return len(self._tasks)

    def schedule(self, loc: Locator) -> None:
        task = asyncio.get_running_loop().create_task(self._retry(loc))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _retry(self, loc: Locator) -> None:
        give_up = time.monotonic() + self.store.config.absolute_timeout
        wait = FIRST_RETRY
        while time.monotonic() < give_up:
            await asyncio.sleep(wait)
            try:
                await self.store.destroy(loc)
            except SessionUnavailable:
                wait = min(wait * 2, LONGEST_RETRY)
                continue
            log.info("session %s ended after a retried sign-out", sid_digest(loc.sid))
            return

    async def close(self) -> None:
        """Stop retrying (the process is stopping)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
