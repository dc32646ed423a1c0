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

from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._controller_action import ControllerAction
from ansible_collections.shadowdesk.vdi.plugins.plugin_utils._event_args import EVENT_ARGS, stamped_event

ARGUMENT_SPEC = EVENT_ARGS


class ActionModule(ControllerAction):
    ARGUMENT_SPEC = ARGUMENT_SPEC

    def work(self, args):
        event = stamped_event(args)[1]
        if self._task.check_mode:
            event["dry_run"] = True  # the recorder skips it: check mode writes nothing
        return {"changed": False, "shadowdesk_event": event}
