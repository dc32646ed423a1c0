# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of shadowdesk.vdi.session_record (documentation: plugins/modules/session_record.py).

The session flows (reconnect / disconnect roles) write their connect/disconnect straight into the history store,
source ``flows``: the release guard reads it a moment later, so it cannot wait for a callback that may not be
enabled. Check mode writes nothing.
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import HistoryStore
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._argspecs import HISTORY_STORE_ARGS, store_options
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._controller_action import ControllerAction
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._event_args import EVENT_ARGS, stamped_event

SOURCE = "flows"

ARGUMENT_SPEC = dict(
    data_dir=dict(type="path"),
    timing=dict(type="dict", options=dict(
        path=dict(type="str", required=True, choices=["hit", "paused", "saved", "cold"]),
        backend=dict(type="str", required=True),
        node=dict(type="str"),
        ready_s=dict(type="float"),
        full_s=dict(type="float"),
        wake_s=dict(type="float"),
        resize_s=dict(type="float"),
    )),
    **dict(EVENT_ARGS, **HISTORY_STORE_ARGS)
)


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def work(self, args):
        at, event = stamped_event(args)
        event["source"] = SOURCE
        timing = dict(args["timing"], user=args["user"], desktop=args["desktop"], trigger_at=at) if args["timing"] else None
        if timing is not None and args["event"] != "connect":
            raise AnsibleActionFail("timing is measured for a connect (a reconnect), not for a %s" % args["event"])
        if self._task.check_mode:
            return {"changed": False, "event": event, "recorded": "check mode: not recorded"}
        with HistoryStore.for_data_dir(args["data_dir"], **store_options(args)) as store:
            outcome = store.record_event(args["user"], args["desktop"], args["event"], at=at,
                                         resources=args["resources"], source=SOURCE)
            timed = store.add_wake_timing(timing) if timing is not None else None
        return {"changed": outcome["event"] == "recorded" or timed == "recorded", "event": event,
                "recorded": outcome["session"]}
