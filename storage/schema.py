"""Create the database and bring its schema up to date, before the server forks.

``schema.sql`` is idempotent and carries its own migrations (``ADD COLUMN IF NOT
EXISTS``): it is applied whenever a table or a column it defines is missing, so a
database made by an older version gains the new columns at the next start.

This runs synchronously (PyMySQL, which aiomysql is built on) in the parent process, so
no event loop or connection exists yet when the workers are forked. The one way the
database is created: ``server.py`` calls it, and so does ``make db``
(``python -m storage.schema mysql://...``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pymysql

from storage.urls import parse_mysql_url

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema.sql"
TABLES = ("user_login", "user_status")
#: Columns added after the first release: (table, column).
ADDED_COLUMNS = (("user_login", "sessions_valid_after"),)


def schema_statements(text: str) -> list[str]:
    """Split ``schema.sql`` into statements (it holds no procedures or delimiters)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def ensure_database(mysql_url: str, *, connect_timeout: float = 5.0) -> bool:
    """Create the database if missing; apply the schema when a table or column is missing.

    Returns True when the schema was applied. Raises ``pymysql.MySQLError`` when the
    server cannot be reached, with its own message (the caller reports it).
    """
    params = parse_mysql_url(mysql_url)
    conn = pymysql.connect(
        **params.connect_kwargs(with_database=False),  # type: ignore[arg-type]
        connect_timeout=connect_timeout,
        autocommit=True,
    )
    try:
        with conn.cursor() as cur:
            cur.execute(
                f"CREATE DATABASE IF NOT EXISTS `{params.database}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
            )
            cur.execute(f"USE `{params.database}`")
            cur.execute(
                "SELECT COUNT(*) FROM information_schema.tables "
                "WHERE table_schema = %s AND table_name IN (%s, %s)",
                (params.database, *TABLES),
            )
            (present,) = cur.fetchone()
            if present == len(TABLES) and _has_columns(cur, params.database):
                return False
            for statement in schema_statements(SCHEMA_PATH.read_text()):
                cur.execute(statement)
            return True
    finally:
        conn.close()


def _has_columns(cur: pymysql.cursors.Cursor, database: str) -> bool:
    """True when every column added since the first release is there."""
    for table, column in ADDED_COLUMNS:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s AND column_name = %s",
            (database, table, column),
        )
        if cur.fetchone()[0] == 0:
            return False
    return True


def main(argv: list[str]) -> int:
    """``python -m storage.schema MYSQL_URL``: create the database and its tables."""
    if len(argv) != 1:
        print("usage: python -m storage.schema mysql://user@host:port/database", file=sys.stderr)
        return 2
    try:
        applied = ensure_database(argv[0])
    except (ValueError, pymysql.MySQLError) as exc:
        print(f"storage.schema: {exc}", file=sys.stderr)
        return 1
    database = parse_mysql_url(argv[0]).database
    print(f"database {database} ready" + (" (schema.sql applied)" if applied else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
