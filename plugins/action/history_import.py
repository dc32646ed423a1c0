# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of shadowdesk.vdi.history_import (documentation: plugins/modules/history_import.py).

Controller-side because the store lives in the controller's data directory and the source files (wtmp copies,
task-list dumps, calendars) are gathered there. Parsing is pure (``_engine/importers``); the store does one
transaction per import; check mode runs the same transaction and rolls it back, so its report is exact.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail, AnsibleError

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import importers
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._argspecs import HISTORY_STORE_ARGS, store_options
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._controller_action import ControllerAction

ARGUMENT_SPEC = dict(
    data_dir=dict(type="path"),
    kind=dict(type="str", required=True, choices=importers.kinds()),
    src=dict(type="path", required=True),
    user_map=dict(type="dict"),
    desktop_map=dict(type="dict"),
    domain_prefix=dict(type="str", default="desk-"),
    user=dict(type="str"),
    consent=dict(type="bool"),
    **HISTORY_STORE_ARGS
)


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC
    VALIDATION = {"required_if": [("kind", "ics", ("user",))]}

    def work(self, args):
        try:
            src = self._find_needle("files", args["src"])
        except AnsibleError:
            raise AnsibleActionFail("src %s not found on the controller" % args["src"]) from None
        return self._import(args, src, self._task.check_mode)

    def _import(self, args, src, check):
        # Check mode creates and migrates nothing (an absent SQLite file is an empty in-memory store).
        store = HistoryStore.for_data_dir(args["data_dir"], read_only=check, **store_options(args))
        path = store.location
        try:
            consent_changed = False
            if args["kind"] == "ics":
                consent_changed = self._consent(store, args, check)
            report = self._parse_and_store(store, args, src, check)
        finally:
            store.close()
        out = report.to_dict()
        return {
            "changed": bool(report.added or report.updated or consent_changed),
            "report": out,
            "added": out["added"],
            "db": path,
            "kind": args["kind"],
            "msg": "%s: read %d, added %d, duplicates %d, updated %d, rejected %d" % (
                args["kind"], out["read"], out["added"], out["duplicates"], out["updated"], out["rejected_total"]),
        }

    @staticmethod
    def _consent(store, args, check):
        """Apply the ``consent`` option first: the ICS importer refuses users without it, before reading."""
        user, wanted = args["user"], args["consent"]
        if wanted is None or wanted == store.has_consent(user):
            return False
        if not check:
            store.set_consent(user, wanted)
        return True

    @staticmethod
    def _parse_and_store(store, args, src, check):
        kind = args["kind"]
        parse = importers.get(kind)
        if importers.target(kind) == "calendar":
            consented = set(store.consented_users())
            if check and args["consent"]:
                consented.add(args["user"])
            if args["consent"] is False:
                consented.discard(args["user"])
            rows, report = parse(src, user=args["user"], consented_users=consented)
            if check and args["user"] not in store.consented_users():
                report.added = len(rows)  # consent not stored yet, so no calendar rows either: all would be new
                return report
            return report.merge(store.add_calendar_events(args["user"], rows, dry_run=check))
        rows, report = parse(src, user_map=args["user_map"], desktop_map=args["desktop_map"],
                             domain_prefix=args["domain_prefix"])
        return report.merge(store.add_sessions(rows, kind, dry_run=check))
