"""The ``user_status`` table: post a status, list a user's statuses newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pymysql

from storage.errors import UnknownUser
from storage.pool import Database, integrity_code

ER_NO_REFERENCED_ROW = 1452  # the foreign key to user_login


@dataclass(frozen=True)
class Status:
    status_id: int
    text: str
    created_date: datetime


async def add_status(db: Database, user_id: int, text: str) -> int:
    """Store a status; :class:`UnknownUser` if the account no longer exists."""
    try:
        return await db.execute(
            "INSERT INTO user_status (user_id, user_status) VALUES (%s, %s)", (user_id, text)
        )
    except pymysql.err.IntegrityError as exc:
        if integrity_code(exc) == ER_NO_REFERENCED_ROW:
            raise UnknownUser() from exc
        raise


async def list_statuses(
    db: Database, user_id: int, *, limit: int, before: int | None = None
) -> list[Status]:
    """The user's statuses, newest first (index ``ix_user_status_user_newest``)."""
    if before is None:
        rows = await db.fetch_all(
            "SELECT status_id, user_status, created_date FROM user_status "
            "WHERE user_id = %s ORDER BY status_id DESC LIMIT %s",
            (user_id, limit),
        )
    else:
        rows = await db.fetch_all(
            "SELECT status_id, user_status, created_date FROM user_status "
            "WHERE user_id = %s AND status_id < %s ORDER BY status_id DESC LIMIT %s",
            (user_id, before, limit),
        )
    # The connection's time zone is UTC (storage.pool), so the stored times are UTC.
    return [Status(int(sid), text, created.replace(tzinfo=UTC)) for sid, text, created in rows]
