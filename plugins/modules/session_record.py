#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation only: the work is done on the controller by plugins/action/session_record.py."""

from __future__ import annotations

DOCUMENTATION = r"""
module: session_record
short_description: Record a user's connect or disconnect in the ShadowDesk history store now
version_added: 0.2.0
description:
  - Writes the event straight into the history store (C(<data_dir>/history.sqlite3)) with source C(flows), so the
    release guard (M(shadowdesk.vdi.desktop_activity)) and the next forecast see it at once, whether or not the
    C(shadowdesk.vdi.session_recorder) callback is enabled.
  - Used by the C(shadowdesk.vdi.reconnect) and C(shadowdesk.vdi.disconnect) roles. Use M(shadowdesk.vdi.session_event)
    instead when a broken history store must never fail the play.
  - Runs on the controller.
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._data_dir
  - shadowdesk.vdi._history_store
options:
  user:
    description: The user.
    type: str
    required: true
  desktop:
    description: The desktop (VM name).
    type: str
    required: true
  event:
    description: What happened.
    type: str
    required: true
    choices: [connect, disconnect]
  at:
    description: When, ISO-8601 with a UTC offset. Omitted means now.
    type: str
  resources:
    description: Resources the desktop had at that moment, stored with the event.
    type: dict
  timing:
    description:
      - For a V(connect) made by the reconnect flow - how it went, stored in the measured reconnects that plans take
        their wake and hot-plug times from (M(shadowdesk.vdi.allocation_plan) O(shadowdesk.vdi.allocation_plan#module:measured_from_history)).
        O(at) is the trigger time.
    type: dict
    suboptions:
      path:
        description: V(hit) (already warm), V(paused), V(saved) or V(cold) (booted).
        type: str
        required: true
        choices: [hit, paused, saved, cold]
      backend:
        description: The backend of the desktop (V(libvirt), V(proxmox)).
        type: str
        required: true
      node:
        description: The node it runs on.
        type: str
      ready_s:
        description: Seconds from the trigger until the desktop was running.
        type: float
      full_s:
        description: Seconds from the trigger until it had its full size.
        type: float
      wake_s:
        description: Seconds the hypervisor took to wake it (resume, restore or boot).
        type: float
      resize_s:
        description: Seconds the hot-plug to full size took.
        type: float
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the target.
    support: full
    details: Nothing is written in check mode.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - Recording the same event (same user, desktop, event and time) twice stores it once (C(changed=false)).
seealso:
  - module: shadowdesk.vdi.session_event
  - module: shadowdesk.vdi.desktop_activity
"""

EXAMPLES = r"""
- name: Alice disconnected from her desktop
  shadowdesk.vdi.session_record:
    user: alice
    desktop: desk-alice
    event: disconnect
"""

RETURN = r"""
event:
  description: The event as recorded.
  returned: always
  type: dict
  sample: {user: alice, desktop: desk-alice, event: disconnect, at: "2026-11-21T17:02:00.000000Z", source: flows}
recorded:
  description: What the event did to the user's session (C(opened), C(closed), C(unchanged), ...).
  returned: always
  type: str
"""
