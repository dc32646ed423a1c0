# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE doc fragment: which history store. Must match HISTORY_STORE_ARGS in plugin_utils/_argspecs.py."""

from __future__ import annotations


class ModuleDocFragment:

    DOCUMENTATION = r"""
options:
  history_url:
    description:
      - A shared PostgreSQL history store, for example
        C(postgresql://shadowdesk@db.example.com/shadowdesk?sslmode=verify-full) (libpq URL syntax; a unix socket
        with C(?host=/run/postgresql)). Use it where every job starts in a fresh container (AWX execution
        environments), so history survives the job.
      - Default env C(SHADOWDESK_HISTORY_URL); without either, the embedded SQLite file C(<data_dir>/history.sqlite3).
      - Same tables, migrations and behaviour on both. The login needs the right to create tables on the first run
        (migrations).
    type: str
  history_password:
    description:
      - Password of the PostgreSQL login, if not in O(history_url). Default env C(SHADOWDESK_HISTORY_PASSWORD), then
        libpq's own C(PGPASSWORD) / C(~/.pgpass).
      - In AWX, a custom credential type injects it as an environment variable (see docs/awx.md).
    type: str
"""
