"""Parse ``mysql://user:password@host:port/database`` URLs into connection arguments."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class MySQLParams:
    host: str
    port: int
    user: str
    password: str
    database: str

    def connect_kwargs(self, *, with_database: bool = True) -> dict[str, object]:
        kwargs: dict[str, object] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "charset": "utf8mb4",
        }
        if with_database:
            kwargs["db"] = self.database  # aiomysql's name for it
        return kwargs

    def pymysql_kwargs(self) -> dict[str, object]:
        """The same for PyMySQL (tests, the benchmark), which names it ``database``."""
        return {**self.connect_kwargs(with_database=False), "database": self.database}


def parse_mysql_url(url: str) -> MySQLParams:
    """Split a ``mysql://`` (or ``mariadb://``) URL; raise ``ValueError`` when it is unusable."""
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb"):
        raise ValueError(f"mysql_url must start with mysql://, got {url!r}")
    database = unquote(parts.path.lstrip("/"))
    if not database:
        raise ValueError(f"mysql_url names no database: {url!r}")
    if not database.replace("_", "").replace("$", "").isalnum():
        raise ValueError(f"database name may hold letters, digits, _ and $ only: {database!r}")
    return MySQLParams(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 3306,
        user=unquote(parts.username or "root"),
        password=unquote(parts.password or ""),
        database=database,
    )
