"""MariaDB statements per request, from the server's global status counters.

``SHOW GLOBAL STATUS`` is read before and after a route's requests; the deltas of
``Questions`` (statements sent by clients) and of ``Com_select`` / ``Com_insert`` /
``Com_update`` / ``Com_delete`` give the statements per request. The counters are
server-wide: the reading itself adds one ``Questions`` (subtracted here), and the
background rate from other clients is measured before the run so that the report can
say whether the figures are exact (background 0) or corrected.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pymysql

from storage.urls import parse_mysql_url

COUNTERS = ("Questions", "Com_select", "Com_insert", "Com_update", "Com_delete")


@dataclass(frozen=True)
class Delta:
    values: dict[str, int]
    seconds: float


class MysqlStatus:
    """A root connection that reads the global status counters."""

    def __init__(self, mysql_url: str) -> None:
        params = parse_mysql_url(mysql_url)
        self.conn = pymysql.connect(**params.connect_kwargs(with_database=False), autocommit=True)
        self.database = params.database

    def close(self) -> None:
        self.conn.close()

    def read(self) -> tuple[float, dict[str, int]]:
        with self.conn.cursor() as cur:
            names = ", ".join(f"'{n}'" for n in COUNTERS)
            cur.execute(f"SHOW GLOBAL STATUS WHERE Variable_name IN ({names})")
            values = {name: int(value) for name, value in cur.fetchall()}
        return time.monotonic(), values

    @staticmethod
    def delta(before: tuple[float, dict[str, int]], after: tuple[float, dict[str, int]]) -> Delta:
        values = {k: after[1][k] - before[1][k] for k in COUNTERS}
        values["Questions"] -= 1  # the SHOW GLOBAL STATUS that took ``after``
        return Delta(values, after[0] - before[0])

    def background(self, seconds: float = 2.0) -> dict[str, float]:
        """Statements per second from other clients while nothing of ours runs."""
        before = self.read()
        time.sleep(seconds)
        d = self.delta(before, self.read())
        return {k: v / d.seconds for k, v in d.values.items()}

    def version(self) -> str:
        with self.conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            return str(cur.fetchone()[0])

    def drop_database(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{self.database}`")
