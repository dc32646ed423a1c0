# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the behaviour-history store (sessions, events, utilisation, calendars, consents, ...).

Forecasts are only as good as the connect/disconnect history behind them, and that history arrives from many
places (importers, the ``session_recorder`` callback, several controllers and AWX jobs at once). The store runs
on SQLite (embedded default, ``<data_dir>/history.sqlite3``) or on a shared PostgreSQL database (``history_url``
or ``$SHADOWDESK_HISTORY_URL``), with the same tables, migrations and behaviour. Layout:

- ``migrations.py``   the tables, for both databases: THE place a new table starts;
- ``sessions.py``, ``utilisation.py``, ``calendars.py``: one mixin of reads/writes per group of tables;
- ``history.py``      ``HistoryStore`` = those mixins + ``_base.StoreBase`` (open, migrate, transactions, errors);
- ``_sqlite.py``, ``_postgres.py``: the two connections (placeholders, write locks, driver errors);
- ``times.py``, ``import_report.py``, ``errors.py``: values shared with the importers.

Stdlib only apart from psycopg, which ``_postgres`` imports through ``_deps`` when a URL is used (rules 2 and 6
of docs/architecture.md: the callback plugin imports this package).
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store._base import (
    DB_NAME, PASSWORD_ENV, URL_ENV, db_path, history_location, shown_location,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.errors import (
    ConsentRequired, StoreUnavailable,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.history import HistoryStore
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.import_report import ImportReport
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.migrations import (
    MIGRATIONS, SCHEMA_VERSION,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.sessions import EVENTS
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.times import (
    UTC, format_time, parse_time,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.utilisation import UTILISATION_FIELDS

__all__ = [
    "ConsentRequired", "DB_NAME", "EVENTS", "HistoryStore", "ImportReport", "MIGRATIONS", "PASSWORD_ENV",
    "SCHEMA_VERSION", "StoreUnavailable", "URL_ENV", "UTC", "UTILISATION_FIELDS", "db_path", "format_time",
    "history_location", "parse_time", "shown_location",
]
