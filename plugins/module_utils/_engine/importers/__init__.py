# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: registry of history importers.

Every importer is a pure parser ``parse(path_or_text, **opts) -> (rows, ImportReport)``: it reads one source
format and never touches the store, so check mode, tests and Dask workers can run it anywhere. The caller then
hands the rows to ``HistoryStore.add_sessions`` (or ``add_calendar_events`` for ``target == "calendar"``) and
merges the two reports. Modules are imported lazily so a missing optional library (icalendar) only matters for
the kind that needs it.
"""

from __future__ import annotations

import importlib

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

# kind -> (module name, what the rows are for)
KINDS = {
    "csv": ("csv_sessions", "sessions"),
    "wtmp": ("wtmp", "sessions"),
    "libvirt_events": ("libvirt_events", "sessions"),
    "proxmox_tasks": ("proxmox_tasks", "sessions"),
    "ics": ("ics_calendar", "calendar"),
    "git_activity": ("git_activity", "sessions"),
}


def kinds():
    return sorted(KINDS)


def target(kind):
    """``sessions`` or ``calendar``: which store method takes this kind's rows."""
    _check(kind)
    return KINDS[kind][1]


def get(kind):
    """The ``parse`` function of an importer kind."""
    _check(kind)
    module = importlib.import_module("%s.%s" % (__name__, KINDS[kind][0]))
    return module.parse


def _check(kind):
    if kind not in KINDS:
        raise InvalidInput("Unknown history import kind %r; expected one of: %s" % (kind, ", ".join(kinds())))
