# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the store's plumbing shared by every table: open, migrate, one transaction per write, clean errors.

Whatever the database, a failure surfaces as :class:`StoreUnavailable` with the location (path, or URL without
its password) and the reason; a failed write is rolled back whole.
"""

from __future__ import annotations

import contextlib
import os

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.runtime_files import default_data_dir
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import _postgres, _sqlite
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.errors import StoreUnavailable
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.migrations import (
    MIGRATIONS, SCHEMA_VERSION, render,
)

DB_NAME = "history.sqlite3"
URL_ENV = "SHADOWDESK_HISTORY_URL"
PASSWORD_ENV = "SHADOWDESK_HISTORY_PASSWORD"


def db_path(data_dir=None):
    return os.path.join(os.path.expanduser(data_dir or default_data_dir()), DB_NAME)


def history_location(data_dir=None, history_url=None):
    """Where the history lives: ``history_url``, else ``$SHADOWDESK_HISTORY_URL``, else the SQLite file of
    the data directory."""
    return history_url or os.environ.get(URL_ENV) or db_path(data_dir)


def shown_location(location):
    """A location fit for messages: a PostgreSQL URL without its password."""
    return _postgres.redact(location) if _postgres.is_url(location) else location


class StoreBase:
    """Opens ``location`` (a SQLite path, ``:memory:``, or a ``postgresql://`` URL) and brings its schema up to
    date.

    ``timeout`` is how long a write waits for another writer's lock (and a server connection for its answer); the
    callback uses a short one so a busy database never slows a play. ``read_only`` (check mode) creates and
    migrates nothing on disk or server: an absent SQLite file is an empty in-memory store, an older schema is
    migrated in a transaction that is never committed, and only dry-run writes are allowed.
    """

    def __init__(self, location, timeout=5.0, read_only=False, password=None):
        location = os.fspath(location)
        self.read_only = read_only
        self._conn = None
        self._open_tx = False
        is_url = _postgres.is_url(location)
        self.location = _postgres.redact(location) if is_url else location
        if not is_url and read_only and location != ":memory:" and not os.path.exists(location):
            location = ":memory:"
        kind = _postgres.PostgresConnection if is_url else _sqlite.SqliteConnection
        self._errors = kind.driver_errors()
        try:
            if is_url:
                self._conn = kind(location, timeout, password or os.environ.get(PASSWORD_ENV))
            else:
                self._conn = kind(location, timeout, read_only)
            self._migrate()
        except (OSError,) + self._errors as exc:
            self.close()
            raise StoreUnavailable("Cannot open the history store %s: %s" % (self.location, _reason(exc)),
                                   path=self.location) from None
        except BaseException:
            self.close()
            raise

    @classmethod
    def for_data_dir(cls, data_dir=None, history_url=None, **kwargs):
        """The store of a data directory, or the shared database of ``history_url`` / ``$SHADOWDESK_HISTORY_URL``."""
        return cls(history_location(data_dir, history_url), **kwargs)

    @property
    def dialect(self):
        return self._conn.dialect

    def close(self):
        if self._conn is not None:
            if self._open_tx:
                self._conn.rollback()
                self._open_tx = False
            self._conn.close()
            self._conn = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextlib.contextmanager
    def _write(self, dry_run=False):
        """One transaction; rolled back on any error (or when ``dry_run``); driver errors become StoreUnavailable."""
        if self.read_only and not dry_run:
            raise InvalidInput("the history store was opened read-only (check mode); only dry runs can write")
        conn = self._conn
        try:
            if self._open_tx:
                conn.execute("SAVEPOINT shadowdesk_write")
            else:
                conn.begin_write()
        except self._errors as exc:
            conn.rollback()
            raise StoreUnavailable("History store %s is not writable: %s" % (self.location, _reason(exc)),
                                   path=self.location) from None
        try:
            yield conn
            if self._open_tx:
                conn.execute("ROLLBACK TO SAVEPOINT shadowdesk_write")
            elif dry_run:
                conn.rollback()
            else:
                conn.commit()
        except self._errors as exc:
            self._undo()
            raise StoreUnavailable("History store %s write failed (rolled back): %s" % (self.location, _reason(exc)),
                                   path=self.location) from None
        except BaseException:
            self._undo()
            raise

    def _undo(self):
        if self._open_tx:
            try:
                self._conn.execute("ROLLBACK TO SAVEPOINT shadowdesk_write")
            except self._errors:
                pass
        else:
            self._conn.rollback()

    def _query(self, sql, params=()):
        try:
            return self._conn.execute(sql, params).fetchall()
        except self._errors as exc:
            raise StoreUnavailable("History store %s read failed: %s" % (self.location, _reason(exc)),
                                   path=self.location) from None

    def _current_version(self, tx):
        tx.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        current = tx.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
        if current > SCHEMA_VERSION:
            raise StoreUnavailable("History store %s has schema version %d, newer than this collection knows (%d); "
                                   "upgrade shadowdesk.vdi" % (self.location, current, SCHEMA_VERSION),
                                   path=self.location)
        return current

    def _migrate(self):
        """Run the migrations this database has not seen, each in one transaction; the version is read under the
        write lock, so two runs opening a fresh database at once migrate it once."""
        current = self._read_only_version()
        if current == SCHEMA_VERSION:
            return
        if self.read_only:
            self._conn.begin_read_only_migration()
            self._open_tx = True
            self._conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            self._apply(self._conn, current)
            return
        while True:
            with self._write() as tx:
                current = self._current_version(tx)
                pending = [m for m in MIGRATIONS if m[0] > current]
                self._apply(tx, current, pending[:1])
            if len(pending) <= 1:
                return

    def _read_only_version(self):
        try:
            current = self._conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
        except self._errors:  # no schema_version table: a database nothing was ever written to
            self._conn.rollback()
            return 0
        if current > SCHEMA_VERSION:
            raise StoreUnavailable("History store %s has schema version %d, newer than this collection knows (%d); "
                                   "upgrade shadowdesk.vdi" % (self.location, current, SCHEMA_VERSION),
                                   path=self.location)
        return current

    def _apply(self, tx, current, migrations=MIGRATIONS):
        for version, statements in migrations:
            if version <= current:
                continue
            for sql in statements:
                tx.execute(render(sql, self._conn.dialect))
            tx.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))

    def schema_version(self):
        return self._query("SELECT MAX(version) FROM schema_version")[0][0]

    def columns(self, table):
        """The column names of ``table`` (tests check no calendar titles are ever kept)."""
        return self._conn.columns(table)


def _reason(exc):
    """The driver's message, first line only (psycopg adds hints on further lines)."""
    text = str(exc).strip() or exc.__class__.__name__
    return text.splitlines()[0]
