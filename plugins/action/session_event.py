# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of shadowdesk.vdi.session_event (documentation: plugins/modules/session_event.py).

Roles that connect or disconnect a user call this to announce it. The plugin only validates and stamps the event
and returns it as ``shadowdesk_event``; the ``session_recorder`` callback writes it to the history store. Keeping
the write in the callback means a broken store never fails a play, and the stamp taken here (not at write time)
keeps a delayed, buffered write exact.
"""

from __future__ import annotations

import datetime

from ansible.errors import AnsibleActionFail

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import EVENTS, parse_time
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._controller_action import ControllerAction

ARGUMENT_SPEC = dict(
    user=dict(type="str", required=True),
    desktop=dict(type="str", required=True),
    event=dict(type="str", required=True, choices=list(EVENTS)),
    at=dict(type="str"),
    resources=dict(type="dict"),
)


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def work(self, args):
        for name in ("user", "desktop"):
            if not args[name].strip():
                raise AnsibleActionFail("%s must not be empty" % name)
        try:
            at = parse_time(args["at"]) if args["at"] else datetime.datetime.now(datetime.timezone.utc)
        except ValueError as exc:
            raise AnsibleActionFail("at: %s (use ISO-8601 with an offset, e.g. 2026-11-21T08:00:00Z)" % exc) from None
        event = {
            "user": args["user"],
            "desktop": args["desktop"],
            "event": args["event"],
            "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "resources": args["resources"] or {},
        }
        if self._task.check_mode:
            event["dry_run"] = True  # the recorder skips it: check mode writes nothing
        return {"changed": False, "shadowdesk_event": event}
