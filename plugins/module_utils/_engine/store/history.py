# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: ``HistoryStore``, the behaviour history: the plumbing of ``_base`` plus one mixin per group of tables.

A new table's mixin joins the bases here (and its migration goes into ``migrations.py``).
"""

from __future__ import annotations

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store._base import StoreBase
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.autoscale_state import AutoscaleStateTables
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.calendars import CalendarTables
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.sessions import SessionTables
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.traffic import TrafficTables
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.utilisation import UtilisationTables
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.wake_timings import WakeTimingTables


class HistoryStore(SessionTables, UtilisationTables, CalendarTables, TrafficTables, WakeTimingTables,
                   AutoscaleStateTables, StoreBase):
    """Sessions, connect/disconnect events, utilisation samples, calendar busy times and consents of users (and
    the autoscale policy's memory between rounds).

    ``HistoryStore(location)`` with a SQLite path or a ``postgresql://`` URL; ``HistoryStore.for_data_dir(data_dir,
    history_url)`` picks the shared database when a URL is set (option or ``$SHADOWDESK_HISTORY_URL``), else
    ``<data_dir>/history.sqlite3``. See ``StoreBase`` for ``timeout`` and ``read_only``.
    """
