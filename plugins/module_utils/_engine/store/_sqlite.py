# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the store on SQLite (stdlib ``sqlite3``), the embedded default: one file per data directory.

WAL mode, so readers never block the callback's writes; a write transaction is ``BEGIN IMMEDIATE`` (one writer at
a time, waiting up to ``timeout`` seconds for the lock).
"""

from __future__ import annotations

import os
import sqlite3


class SqliteConnection:
    dialect = "sqlite"

    @staticmethod
    def driver_errors():
        return (sqlite3.Error,)

    def __init__(self, path, timeout, read_only=False):
        self.label = path
        self.path = path
        self._db = None
        if path != ":memory:":
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self._db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
        if not read_only:  # switching an old file to WAL rewrites its header: not in check mode
            self._db.execute("PRAGMA journal_mode=WAL").fetchall()

    def execute(self, sql, params=()):
        return self._db.execute(sql, params)

    def begin_write(self):
        self._db.execute("BEGIN IMMEDIATE")

    def begin_read_only_migration(self):
        """Check mode on an older schema: migrate an in-memory copy, so the file on disk stays as it is."""
        copy = sqlite3.connect(":memory:", isolation_level=None)
        self._db.backup(copy)
        self._db.close()
        self._db = copy
        self.begin_write()

    def commit(self):
        self._db.execute("COMMIT")

    def rollback(self):
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass

    def columns(self, table):
        return [r[1] for r in self._db.execute("PRAGMA table_info(%s)" % table)]

    def close(self):
        if self._db is not None:
            self._db.close()
            self._db = None
