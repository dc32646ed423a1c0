#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: desktop_activity
short_description: Is a shadow desktop in use, and may it be released now?
version_added: 0.2.0
description:
  - Asks the hypervisor who is on the desktop right now and decides whether it may be released (shrunk, paused,
    saved or stopped). Every ShadowDesk path that takes resources away from a desktop asks this first (the
    C(shadowdesk.vdi.apply_plan) role for planned releases and the C(shadowdesk.vdi.disconnect) role).
  - "Hypervisor signals: libvirt - the VNC / SPICE clients QEMU has connected to the live domain, and the users the
    guest agent reports (C(guest-get-users)) when an agent channel is connected; Proxmox VE - running C(vncproxy),
    C(spiceproxy) and C(termproxy) tasks of the VM, and the guest agent's C(get-users)."
  - "History signals (O(session), from the history store, e.g. the C(shadowdesk.vdi.user_sessions) lookup): an open
    session, the last connect and the last disconnect."
  - "The rule: a console client or an open session always keeps the desktop. A planned release means 'if the user
    has not come by then': once the user came after O(woken_at) (a connect, or a guest-agent login after it), the
    desktop is released by the disconnect, O(grace_minutes) after it."
  - Reads only; never changes the desktop.
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._connection
  - shadowdesk.vdi._attributes.INFO_MODULE
options:
  name:
    description: The desktop.
    type: str
    required: true
  purpose:
    description:
      - V(planned) for a release an allocation plan wants, V(disconnect) for the release after the user disconnected.
    type: str
    choices: [planned, disconnect]
    default: planned
  session:
    description: What the history store knows about the desktop's user.
    type: dict
    default: {}
    suboptions:
      connected:
        description: The user has an open session.
        type: bool
        default: false
      last_connect:
        description: The last connect, ISO-8601 UTC.
        type: str
      last_disconnect:
        description: The last disconnect, ISO-8601 UTC.
        type: str
  woken_at:
    description:
      - When the desktop was woken for the current session (the plan's wake step). Connects and guest logins
        before it do not count as the user having come. Omitted means any recorded connect counts.
    type: str
  grace_minutes:
    description: Minutes after a disconnect before the desktop may be released.
    type: float
    default: 0
  now:
    description: The moment to decide for, ISO-8601 UTC; default now.
    type: str
seealso:
  - module: shadowdesk.vdi.desktop_info
  - module: shadowdesk.vdi.shadow_vm
"""

EXAMPLES = r"""
- name: May the plan release alice's desktop now?
  shadowdesk.vdi.desktop_activity:
    name: desk-alice
    woken_at: "2026-11-16T06:24:00Z"
    session: "{{ query('shadowdesk.vdi.user_sessions', 'alice')[0] }}"
  register: guard

- name: Release it only when allowed
  shadowdesk.vdi.shadow_vm:
    name: desk-alice
    state: saved
  when: guard.release_allowed
"""

RETURN = r"""
activity:
  description: What the hypervisor reports.
  returned: always
  type: dict
  sample:
    state: running
    consoles: [{kind: vnc, client: "127.0.0.1:51234", since: null}]
    agent: answered
    agent_users: [{user: alice, login_time: "2026-11-16T08:02:11Z"}]
in_use:
  description: Someone is on the desktop right now (a console client or an open session).
  returned: always
  type: bool
release_allowed:
  description: Whether the desktop may be released now.
  returned: always
  type: bool
reasons:
  description: Why not (empty when allowed).
  returned: always
  type: list
  elements: str
release_at:
  description: The earliest disconnect-driven release (last disconnect + grace), when a disconnect is known.
  returned: always
  type: str
"""

import datetime

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.release_guard import release_verdict
from ansible_collections.shadowdesk.vdi.plugins.module_utils._module_runtime import (
    build_module, run_with_backend,
)

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    purpose=dict(type="str", default="planned", choices=["planned", "disconnect"]),
    session=dict(type="dict", default={}, options=dict(
        connected=dict(type="bool", default=False),
        last_connect=dict(type="str"),
        last_disconnect=dict(type="str"),
    )),
    woken_at=dict(type="str"),
    grace_minutes=dict(type="float", default=0),
    now=dict(type="str"),
)


def judge(module, backend):
    params = module.params
    activity = backend.activity(params["name"])
    now = params["now"] or datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    verdict = release_verdict(activity, params["session"] or {}, now, purpose=params["purpose"],
                              woken_at=params["woken_at"], grace_minutes=params["grace_minutes"])
    return dict(changed=False, activity=activity, in_use=verdict["in_use"], release_allowed=verdict["allowed"],
                reasons=verdict["reasons"], release_at=verdict["release_at"])


def main():
    module = build_module(ARGUMENT_SPEC)
    run_with_backend(module, lambda backend: judge(module, backend))


if __name__ == "__main__":
    main()
