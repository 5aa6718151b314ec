"""The ``user_login`` table: accounts, their password hashes, and their sessions' mark.

``sessions_valid_after`` (milliseconds since the epoch) is the user's "sessions valid
after" mark: a session issued under an older mark is no longer valid. A password
change (:func:`set_password_hash`) and ending all other sessions
(:func:`advance_sessions_valid_after`) advance it. It lives here, in MariaDB, so that a
Redis restored from an old snapshot cannot roll it back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pymysql

from storage.errors import EmailTaken
from storage.pool import Database, integrity_code

ER_DUP_ENTRY = 1062  # the unique index on user_email

_COLUMNS = "user_id, user_email, user_name, user_password, sessions_valid_after"


@dataclass(frozen=True)
class User:
    user_id: int
    user_email: str
    user_name: str
    password_hash: bytes
    sessions_valid_after: int = 0


def _user(row: tuple[object, ...]) -> User:
    user_id, user_email, user_name, password_hash, valid_after = row
    return User(
        int(user_id),  # type: ignore[call-overload]
        str(user_email),
        str(user_name),
        str(password_hash).encode("ascii"),
        int(valid_after),  # type: ignore[call-overload]
    )


async def create_user(db: Database, *, name: str, email: str, password_hash: bytes) -> int:
    """Insert an account and return its id; :class:`EmailTaken` if the e-mail is in use.

    The unique index decides, so two concurrent registrations cannot both succeed.
    """
    try:
        return await db.execute(
            "INSERT INTO user_login (user_email, user_password, user_name) VALUES (%s, %s, %s)",
            (email, password_hash.decode("ascii"), name),
        )
    except pymysql.err.IntegrityError as exc:
        if integrity_code(exc) == ER_DUP_ENTRY:
            raise EmailTaken() from exc
        raise


async def find_user_by_email(db: Database, email: str) -> User | None:
    rows = await db.fetch_all(
        f"SELECT {_COLUMNS} FROM user_login WHERE user_email = %s",  # noqa: S608 (constant)
        (email,),
    )
    return _user(rows[0]) if rows else None


async def find_user_by_id(db: Database, user_id: int) -> User | None:
    rows = await db.fetch_all(
        f"SELECT {_COLUMNS} FROM user_login WHERE user_id = %s",  # noqa: S608 (constant)
        (user_id,),
    )
    return _user(rows[0]) if rows else None


async def sessions_valid_after(db: Database, user_id: int) -> int | None:
    """The user's mark, or None when the account no longer exists."""
    rows = await db.fetch_all(
        "SELECT sessions_valid_after FROM user_login WHERE user_id = %s", (user_id,)
    )
    return int(rows[0][0]) if rows else None


async def set_password_hash(
    db: Database, user_id: int, password_hash: bytes, *, end_sessions: bool
) -> int | None:
    """Store a new hash; with ``end_sessions`` also advance the mark and return it.

    Without it (a rehash at a new cost), the mark is left alone and None returned.
    """
    if not end_sessions:
        await db.execute(
            "UPDATE user_login SET user_password = %s WHERE user_id = %s",
            (password_hash.decode("ascii"), user_id),
        )
        return None
    await db.execute(
        "UPDATE user_login SET user_password = %s, "
        "sessions_valid_after = GREATEST(sessions_valid_after + 1, %s) WHERE user_id = %s",
        (password_hash.decode("ascii"), _now_ms(), user_id),
    )
    return await sessions_valid_after(db, user_id)


async def advance_sessions_valid_after(db: Database, user_id: int) -> int | None:
    """End every session issued so far ("sign out everywhere"); return the new mark."""
    await db.execute(
        "UPDATE user_login SET sessions_valid_after = GREATEST(sessions_valid_after + 1, %s) "
        "WHERE user_id = %s",
        (_now_ms(), user_id),
    )
    return await sessions_valid_after(db, user_id)


async def delete_user(db: Database, user_id: int) -> None:
    """Remove an account (and, by the foreign key, its statuses)."""
    await db.execute("DELETE FROM user_login WHERE user_id = %s", (user_id,))


def _now_ms() -> int:
    return int(time.time() * 1000)
