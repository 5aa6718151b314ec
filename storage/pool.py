"""The aiomysql connection pool of one worker process, and the query helpers on it.

Created in each worker after the fork (asyncio pools are not fork-safe). Connections
run in autocommit mode: a pooled connection never holds an open snapshot or an
uncommitted write. Every query is bounded by a timeout, and every driver failure
becomes :class:`StorageUnavailable`, so a request never hangs on a dead database.
Constraint violations (``pymysql.err.IntegrityError``) pass through: the table's own
module knows what they mean (:func:`integrity_code`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import aiomysql
import pymysql

from storage.errors import StorageUnavailable
from storage.urls import parse_mysql_url


class Database:
    """A lazily connected pool with bounded waits."""

    def __init__(self, mysql_url: str, *, max_connections: int = 10, timeout: float = 3.0):
        self._params = parse_mysql_url(mysql_url)
        self._max = max_connections
        self._timeout = timeout
        self._pool: aiomysql.Pool | None = None
        self._lock = asyncio.Lock()

    async def _get_pool(self) -> aiomysql.Pool:
        if self._pool is not None:
            return self._pool
        async with self._lock:
            if self._pool is None:
                self._pool = await aiomysql.create_pool(
                    minsize=1,
                    maxsize=self._max,
                    autocommit=True,
                    connect_timeout=self._timeout,
                    pool_recycle=3600,
                    # DATETIME columns then hold UTC, whatever the server's zone is.
                    init_command="SET time_zone = '+00:00'",
                    **self._params.connect_kwargs(),
                )
        return self._pool

    @property
    def connections_in_use(self) -> int:
        """Connections lent out right now (for the pool gauge)."""
        pool = self._pool
        return 0 if pool is None else pool.size - pool.freesize

    async def _run(self, sql: str, args: Sequence[Any], *, fetch: bool) -> Any:
        pool = await self._get_pool()
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(sql, args)
            return await cur.fetchall() if fetch else cur.lastrowid

    async def _bounded(self, sql: str, args: Sequence[Any], *, fetch: bool) -> Any:
        try:
            return await asyncio.wait_for(self._run(sql, args, fetch=fetch), self._timeout)
        except (
            TimeoutError,
            pymysql.err.OperationalError,
            pymysql.err.InterfaceError,
            OSError,
        ) as exc:
            raise StorageUnavailable(str(exc) or type(exc).__name__) from exc

    async def fetch_all(self, sql: str, args: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a SELECT with parameters and return every row."""
        return list(await self._bounded(sql, args, fetch=True))

    async def execute(self, sql: str, args: Sequence[Any] = ()) -> int:
        """Run a write with parameters and return the new row's auto-increment id."""
        return int(await self._bounded(sql, args, fetch=False) or 0)

    async def ping(self) -> None:
        await self.fetch_all("SELECT 1")

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            await self._pool.wait_closed()
            self._pool = None


def integrity_code(exc: pymysql.err.IntegrityError) -> int | None:
    """The server's error number of a constraint violation (e.g. 1062, duplicate key)."""
    return exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
