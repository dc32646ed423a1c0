#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation only: the work is done on the controller by plugins/action/session_event.py."""

from __future__ import annotations

DOCUMENTATION = r"""
module: session_event
short_description: Announce that a user connected to or disconnected from a desktop
version_added: 0.1.0
description:
  - Validates and timestamps a connect or disconnect event and returns it as RV(shadowdesk_event).
  - The P(shadowdesk.vdi.session_recorder#callback) callback records every returned event in the behaviour history
    store, which feeds login forecasts. Without that callback enabled the event is only returned.
  - Runs on the controller; nothing is sent to the managed host.
author:
  - ShadowDesk engineers (@shadowdesk)
options:
  user:
    description: The user who connected or disconnected.
    type: str
    required: true
  desktop:
    description: The desktop (VM name) the user connected to or disconnected from.
    type: str
    required: true
  event:
    description: What happened.
    type: str
    required: true
    choices: [connect, disconnect]
  at:
    description:
      - When it happened, ISO-8601 with a UTC offset (for example V(2026-11-21T08:00:00Z)).
      - Omitted means now (taken when the task runs, so a delayed write of the event keeps the right time).
    type: str
  resources:
    description:
      - Resources the desktop had at that moment (for example C(vcpus), C(memory_mib)), stored with the event.
    type: dict
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying the target.
    support: full
    details: In check mode the event carries C(dry_run=true) and the recorder does not store it.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - Enable the recorder with C(callbacks_enabled = shadowdesk.vdi.session_recorder) in C(ansible.cfg).
  - Recording the same event (same user, desktop, event and time) twice stores it once.
seealso:
  - plugin: shadowdesk.vdi.session_recorder
    plugin_type: callback
  - module: shadowdesk.vdi.history_import
"""

EXAMPLES = r"""
- name: Record that alice connected to her desktop
  shadowdesk.vdi.session_event:
    user: alice
    desktop: desk-alice
    event: connect
    resources:
      vcpus: 4
      memory_mib: 8192

- name: Record a disconnect that happened earlier
  shadowdesk.vdi.session_event:
    user: alice
    desktop: desk-alice
    event: disconnect
    at: "2026-11-21T17:42:10Z"
"""

RETURN = r"""
shadowdesk_event:
  description: The event, as the session_recorder callback stores it.
  returned: always
  type: dict
  contains:
    user:
      description: The user.
      type: str
      sample: alice
    desktop:
      description: The desktop.
      type: str
      sample: desk-alice
    event:
      description: V(connect) or V(disconnect).
      type: str
      sample: connect
    at:
      description: When, ISO-8601 UTC.
      type: str
      sample: "2026-11-21T08:00:00.000000Z"
    resources:
      description: The resources given (empty if none).
      type: dict
      sample: {"vcpus": 4, "memory_mib": 8192}
    dry_run:
      description: Present and true in check mode; such events are not recorded.
      type: bool
      returned: check mode
      sample: true
"""
