"""Create the database and apply ``schema.sql`` once, before the server forks.

This runs synchronously (PyMySQL, which aiomysql is built on) in the parent process, so
no event loop or connection exists yet when the workers are forked.
"""

from __future__ import annotations

from pathlib import Path

import pymysql

from storage.urls import parse_mysql_url

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema.sql"
TABLES = ("user_login", "user_status")


def schema_statements(text: str) -> list[str]:
    """Split ``schema.sql`` into statements (it holds no procedures or delimiters)."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def ensure_database(mysql_url: str, *, connect_timeout: float = 5.0) -> bool:
    """Create the database if missing and apply the schema when a table is missing.

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
            if present == len(TABLES):
                return False
            for statement in schema_statements(SCHEMA_PATH.read_text()):
                cur.execute(statement)
            return True
    finally:
        conn.close()
