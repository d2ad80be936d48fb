"""Scratch PostgreSQL databases for the benchmarks: made fresh on the server of a URL, dropped after."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def _admin(url: str, *statements: str, name: str) -> None:
    """Run DROP/CREATE DATABASE statements (templates with {} for the name) on the server of url."""
    import psycopg2
    from psycopg2 import sql

    conn = psycopg2.connect(url)
    conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(sql.SQL(statement).format(sql.Identifier(name)))
    finally:
        conn.close()


def create_database(url: str, name: str, *, replace: bool = False) -> str:
    """A new, empty database on the server of url (dropped first when replace): its URL."""
    drop = ("DROP DATABASE IF EXISTS {} WITH (FORCE)",) if replace else ()
    _admin(url, *drop, "CREATE DATABASE {}", name=name)
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def drop_database(url: str, name: str) -> None:
    _admin(url, "DROP DATABASE IF EXISTS {} WITH (FORCE)", name=name)
