# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the arguments of a connect/disconnect task, for the actions that announce (session_event) or record
(session_record) one: the arguments, their checks and the time stamp."""

from __future__ import annotations

import datetime

from ansible.errors import AnsibleActionFail

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store import EVENTS, parse_time

EVENT_ARGS = dict(
    user=dict(type="str", required=True),
    desktop=dict(type="str", required=True),
    event=dict(type="str", required=True, choices=list(EVENTS)),
    at=dict(type="str"),
    resources=dict(type="dict"),
)


def stamped_event(args):
    """``(at, event dict)`` from validated arguments; empty names and bad times are clear failures."""
    for name in ("user", "desktop"):
        if not args[name].strip():
            raise AnsibleActionFail("%s must not be empty" % name)
    try:
        at = parse_time(args["at"]) if args["at"] else datetime.datetime.now(datetime.timezone.utc)
    except ValueError as exc:
        raise AnsibleActionFail("at: %s (use ISO-8601 with an offset, e.g. 2026-11-21T08:00:00Z)" % exc) from None
    return at, {"user": args["user"], "desktop": args["desktop"], "event": args["event"],
                "at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "resources": args["resources"] or {}}
