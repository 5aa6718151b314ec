"""An existing database gains the "sessions valid after" column at start-up (issue 8,
item 5): ``storage.schema.ensure_database`` on a database made by the previous schema
adds it, keeps every row, and then finds nothing more to do."""

from __future__ import annotations

import os
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pymysql
import pytest

from storage.schema import ensure_database
from storage.urls import parse_mysql_url

OLD_USER_LOGIN = """
CREATE TABLE user_login (
    user_id       INT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_email    VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
    user_password VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    user_name     VARCHAR(100) NOT NULL,
    created_date  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (user_id),
    UNIQUE KEY uq_user_login_email (user_email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
"""
OLD_USER_STATUS = """
CREATE TABLE user_status (
    status_id     BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_id       INT UNSIGNED NOT NULL,
    user_status   VARCHAR(1000) NOT NULL,
    created_date  DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (status_id),
    KEY ix_user_status_user_newest (user_id, status_id),
    CONSTRAINT fk_user_status_user FOREIGN KEY (user_id)
        REFERENCES user_login (user_id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci
"""


@pytest.fixture
def old_database(mysql_url: str) -> Iterator[tuple[str, pymysql.Connection]]:
    parts = urlsplit(mysql_url)
    name = f"appdb_migrate_{os.getpid()}"
    conn = pymysql.connect(
        **parse_mysql_url(mysql_url).connect_kwargs(with_database=False), autocommit=True
    )
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
        cur.execute(f"USE `{name}`")
        cur.execute(OLD_USER_LOGIN)
        cur.execute(OLD_USER_STATUS)
        cur.execute(
            "INSERT INTO user_login (user_email, user_password, user_name) "
            "VALUES ('old@example.com', '$2b$04$x', 'Old')"
        )
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, "", "")), conn
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


def test_an_old_database_gains_the_column_and_keeps_its_rows(old_database):
    url, conn = old_database
    assert ensure_database(url) is True
    with conn.cursor() as cur:
        cur.execute("SELECT user_email, user_name, sessions_valid_after FROM user_login")
        assert cur.fetchall() == (("old@example.com", "Old", 0),)
    assert ensure_database(url) is False  # up to date: nothing more to apply
