"""The ``user_login`` table: create an account, find one by e-mail."""

from __future__ import annotations

from dataclasses import dataclass

from storage.pool import Database


@dataclass(frozen=True)
class User:
    user_id: int
    user_email: str
    user_name: str
    password_hash: bytes


async def create_user(db: Database, *, name: str, email: str, password_hash: bytes) -> int:
    """Insert an account and return its id; :class:`EmailTaken` if the e-mail is in use.

    The unique index decides, so two concurrent registrations cannot both succeed.
    """
    return await db.execute(
        "INSERT INTO user_login (user_email, user_password, user_name) VALUES (%s, %s, %s)",
        (email, password_hash.decode("ascii"), name),
    )


async def find_user_by_email(db: Database, email: str) -> User | None:
    rows = await db.fetch_all(
        "SELECT user_id, user_email, user_name, user_password FROM user_login "
        "WHERE user_email = %s",
        (email,),
    )
    if not rows:
        return None
    user_id, user_email, user_name, password_hash = rows[0]
    return User(int(user_id), user_email, user_name, password_hash.encode("ascii"))


async def delete_user(db: Database, user_id: int) -> None:
    """Remove an account (and, by the foreign key, its statuses)."""
    await db.execute("DELETE FROM user_login WHERE user_id = %s", (user_id,))
