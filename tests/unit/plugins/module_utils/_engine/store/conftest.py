"""The store's tests run on both databases: ``db`` is parametrised over SQLite and a real PostgreSQL 15 server.

The server is started once per test session (tests/postgres_server.py: initdb in a temporary directory, unix socket
only, no TCP) and every test gets its own fresh database in it.
"""

import itertools
import sqlite3

import pytest

from ansible_collections.shadowdesk.vdi.tests.postgres_server import TEST_PASSWORD as PASSWORD, PostgresServer

_names = itertools.count()


@pytest.fixture(scope="session")
def pg_server():
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


class SqliteDB:
    dialect = "sqlite"

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path

    def location(self):
        return str(self.tmp_path / ("h%d" % next(_names)) / "history.sqlite3")

    @staticmethod
    def raw(location):
        """A plain driver connection (autocommit) to poke at the database behind the store's back."""
        return sqlite3.connect(location, isolation_level=None)


class PostgresDB:
    dialect = "postgresql"

    def __init__(self, server):
        self.server = server

    def location(self):
        return self.server.create_database("sd_test_%d" % next(_names), "shadowdesk", PASSWORD)

    @staticmethod
    def raw(location):
        import psycopg
        return _PgRaw(psycopg.connect(location, autocommit=True))


class _PgRaw:
    """psycopg with the ``?`` placeholders the tests write (as the store's SQL does)."""

    def __init__(self, conn):
        self.conn = conn

    def execute(self, sql, params=()):
        return self.conn.execute(sql.replace("?", "%s"), params)

    def close(self):
        self.conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path):
    if request.param == "sqlite":
        return SqliteDB(tmp_path)
    return PostgresDB(request.getfixturevalue("pg_server"))
