# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the store on PostgreSQL (psycopg 3, through ``_deps``): one database shared by every controller and
every AWX job container, so history, models and plans outlive the job that wrote them.

The store's SQL is written once with ``?`` placeholders (SQLite's); they become psycopg's ``%s`` here. Reads
run in autocommit. A write transaction first takes one transaction-scoped advisory lock, so writers queue one at a
time exactly as SQLite's ``BEGIN IMMEDIATE`` makes them (the read-check-insert of an import or an event then
never races another run's), waiting at most ``timeout`` seconds (``lock_timeout``) before a clear failure.
The password never appears in a message: errors name the URL without it (``redact``).
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ansible_collections.shadowdesk.vdi.plugins.module_utils._deps import require

# One lock id for "a write to the ShadowDesk history store" (pg_advisory_xact_lock takes a bigint).
WRITE_LOCK_ID = 0x5D0DE5C


def is_url(location):
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def redact(url):
    """The URL without its password (for messages and return values)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = "%s:%s" % (host, parts.port)
    netloc = "%s@%s" % (parts.username or "", host) if parts.username else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class PostgresConnection:
    dialect = "postgresql"

    @staticmethod
    def driver_errors():
        return (require("psycopg").Error,)

    def __init__(self, url, timeout, password=None):
        self.label = redact(url)
        psycopg = require("psycopg")
        self._timeout_ms = max(int(timeout * 1000), 1)
        kwargs = {"autocommit": True, "connect_timeout": max(int(timeout + 0.999), 2)}
        if password:
            kwargs["password"] = password
        self._db = None
        self._db = psycopg.connect(url, **kwargs)

    def execute(self, sql, params=()):
        return self._db.execute(sql.replace("%", "%%").replace("?", "%s"), tuple(params))

    def begin_write(self):
        self._db.execute("BEGIN")
        self._db.execute("SET LOCAL lock_timeout = %d" % self._timeout_ms)
        self._db.execute("SELECT pg_advisory_xact_lock(%d)" % WRITE_LOCK_ID)

    def begin_read_only_migration(self):
        """Check mode on an older schema: migrate inside a transaction that is rolled back when the store closes."""
        self._db.execute("BEGIN")

    def commit(self):
        self._db.execute("COMMIT")

    def rollback(self):
        try:
            self._db.execute("ROLLBACK")
        except self.driver_errors():
            pass

    def columns(self, table):
        rows = self.execute("SELECT column_name FROM information_schema.columns WHERE table_name = ? "
                            "AND table_schema = current_schema() ORDER BY ordinal_position", (table,)).fetchall()
        return [r[0] for r in rows]

    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None
