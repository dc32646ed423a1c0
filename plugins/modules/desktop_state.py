#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: desktop_state
short_description: Save and restore a user's desktop state (saved RAM image or snapshots)
version_added: 0.1.0
description:
  - Without O(snapshot), works on the desktop's saved RAM image (managed save on libvirt, hibernation on
    Proxmox VE). V(present) saves the running session and releases its RAM, V(restored) brings the session back
    (a restore, not a boot), V(absent) discards the saved image (the next start is a cold boot).
  - With O(snapshot), works on a named snapshot. V(present) creates it (with RAM when O(with_memory) and the disks
    allow it), V(restored) reverts the desktop to it, V(absent) deletes the snapshot (never the disks).
  - Always returns what saved state exists, so it also lists it.
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._connection
  - shadowdesk.vdi._attributes.ALL
options:
  name:
    description: Name of the desktop.
    type: str
    required: true
  snapshot:
    description:
      - Name of a snapshot. Omit to work on the saved RAM image. An empty name is refused (it is not the same
        as omitting it).
    type: str
  state:
    description:
      - V(present) saves (creates the snapshot / the saved RAM image), V(restored) brings it back, V(absent) drops
        it. V(restored) of a snapshot is not idempotent by nature; it reports changed every time it reverts.
      - V(listed) only returns what exists.
    type: str
    choices: [present, absent, restored, listed]
    default: listed
  with_memory:
    description: Include the RAM in a new snapshot, so reverting resumes the session instead of booting.
    type: bool
    default: true
  description:
    description: Description stored with a new snapshot.
    type: str
    default: ""
seealso:
  - module: shadowdesk.vdi.shadow_vm
"""

EXAMPLES = r"""
- name: On disconnect, save alice's session and release its RAM
  shadowdesk.vdi.desktop_state:
    name: desk-alice
    state: present

- name: Before an update, snapshot her desktop with RAM
  shadowdesk.vdi.desktop_state:
    name: desk-alice
    snapshot: before-update
    state: present

- name: List what saved state exists
  shadowdesk.vdi.desktop_state:
    name: desk-alice
  register: saved
"""

RETURN = r"""
saved_state:
  description: Whether the desktop has a saved RAM image after the run (predicted in check mode).
  returned: always
  type: bool
snapshots:
  description: The desktop's snapshots after the run (predicted in check mode).
  returned: always
  type: list
  elements: dict
  sample: [{name: before-update, created: "2026-11-21T08:00:00Z", with_memory: true, description: ""}]
steps:
  description: What was done (or would be done in check mode).
  returned: always
  type: list
  elements: str
  sample: [save]
desktop:
  description: Facts of the desktop after the run.
  returned: always
  type: dict
"""

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import Conflict, DesktopNotFound, InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    STATE_PAUSED, STATE_RUNNING, STATE_SAVED,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._module_runtime import (
    build_module, run_with_backend,
)

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    snapshot=dict(type="str"),
    state=dict(type="str", default="listed", choices=["present", "absent", "restored", "listed"]),
    with_memory=dict(type="bool", default=True),
    description=dict(type="str", default=""),
)


def saved_image_steps(facts, state):
    """Steps for the saved RAM image. A shut-off desktop has no session to save: that is a conflict, not a no-op."""
    if state == "present":
        if facts.state == STATE_SAVED:
            return []
        if facts.state not in (STATE_RUNNING, STATE_PAUSED):
            raise Conflict("Desktop %s is %s: there is no running session to save." % (facts.name, facts.state))
        return ["save"]
    if state == "restored":
        return ["start"] if facts.state == STATE_SAVED else []
    if state == "absent":
        return ["discard_saved_state"] if facts.has_saved_state else []
    return []


def snapshot_steps(facts, name, state):
    exists = any(s.name == name for s in facts.snapshots)
    if state == "present":
        return [] if exists else ["snapshot_create"]
    if state == "absent":
        return ["snapshot_delete"] if exists else []
    if state == "restored":
        if not exists:
            raise Conflict("Desktop %s has no snapshot %s to restore." % (facts.name, name))
        return ["snapshot_revert"]
    return []


def apply(backend, params, steps):
    name, snap = params["name"], params["snapshot"]
    for step in steps:
        if step == "snapshot_create":
            backend.snapshot_create(name, snap, with_memory=params["with_memory"], description=params["description"])
        elif step in ("snapshot_delete", "snapshot_revert"):
            getattr(backend, step)(name, snap)
        else:
            getattr(backend, step)(name)


def view(facts):
    return {"saved_state": facts.has_saved_state, "snapshots": [s.to_dict() for s in facts.snapshots]}


def predicted_view(before, steps, params):
    """What ``view`` will show after ``steps`` (check mode's diff), without asking the hypervisor."""
    after = {"saved_state": before["saved_state"], "snapshots": list(before["snapshots"])}
    for step in steps:
        if step == "save":
            after["saved_state"] = True
        elif step in ("start", "discard_saved_state"):
            after["saved_state"] = False
        elif step == "snapshot_create":
            after["snapshots"].append({"name": params["snapshot"], "created": None,
                                       "with_memory": params["with_memory"], "description": params["description"]})
        elif step == "snapshot_delete":
            after["snapshots"] = [s for s in after["snapshots"] if s["name"] != params["snapshot"]]
    return after


def ensure_state(module, backend):
    params = module.params
    if params["snapshot"] is not None and not params["snapshot"].strip():
        # An empty template variable must not turn a snapshot request into saving (suspending) the whole desktop.
        raise InvalidInput("snapshot is empty; give a snapshot name, or omit snapshot to work on the saved RAM "
                           "image.")
    facts = backend.get(params["name"])
    if facts is None:
        raise DesktopNotFound("Desktop %s does not exist." % params["name"])
    if params["snapshot"]:
        steps = snapshot_steps(facts, params["snapshot"], params["state"])
    else:
        steps = saved_image_steps(facts, params["state"])
    before = view(facts)
    if steps and not module.check_mode:
        apply(backend, params, steps)
        facts = backend.get(params["name"])
        after = view(facts)
    else:
        after = predicted_view(before, steps, params)
    result = dict(changed=bool(steps), steps=steps, desktop=facts.to_dict(), **after)  # predicted in check mode
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    return result


def main():
    module = build_module(ARGUMENT_SPEC)
    run_with_backend(module, lambda backend: ensure_state(module, backend))


if __name__ == "__main__":
    main()
