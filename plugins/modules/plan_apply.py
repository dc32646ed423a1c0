#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: plan_apply
short_description: Apply the due allocation-plan steps of many desktops in one call per hypervisor
version_added: 0.1.0
description:
  - Brings every desktop named in O(actions) to its planned power state and resource stage over one connection
    to the hypervisor, the batched form of M(shadowdesk.vdi.shadow_vm) plus M(shadowdesk.vdi.desktop_resources)
    per desktop. A pool of a thousand desktops is one task per run instead of three per desktop.
  - The actions are what the P(shadowdesk.vdi.due_actions#filter) filter returns for a plan and a time.
  - Per desktop, a release (V(saved), V(paused), V(stopped)) is first shrunk to its stage and then saved or paused,
    so it is never saved at full size; a wake is first restored or resumed and then raised to its stage.
  - Each desktop is isolated, one that fails (does not exist, belongs to another user, hot-plug refused, VM
    locked) is reported with the reason and the others are still applied. The task fails at the end when any
    desktop failed, unless O(fail_on_desktop_error=false). A hypervisor that cannot be reached fails the task at
    once.
  - A plan never creates or removes a desktop and never discards a saved session.
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._connection
  - shadowdesk.vdi._attributes.ALL
options:
  actions:
    description: The due actions, one per desktop.
    type: list
    elements: dict
    required: true
    suboptions:
      desktop:
        description: Name of the desktop.
        type: str
        required: true
      user:
        description: The user the desktop belongs to. A desktop of another user is refused.
        type: str
      node:
        description:
          - The node the plan placed the desktop on. On Proxmox VE a desktop that wakes elsewhere is first migrated
            there (live when it runs); on libvirt each node is its own connection, which decides where the desktop is
            looked up.
        type: str
      state:
        description: The planned power state. Omit to leave the power state alone.
        type: str
        choices: [running, paused, saved, stopped]
      stage:
        description: Which of O(actions[].stages) to bring the desktop to. Omit to leave its resources alone.
        type: str
      stages:
        description:
          - Named resource targets (C(shadow), C(warm), C(full)), each a dict as in M(shadowdesk.vdi.desktop_resources)
            O(shadowdesk.vdi.desktop_resources#module:stages).
        type: dict
        default: {}
      at:
        description: When the plan step fell due (reported only).
        type: str
      release:
        description: Whether the step is a release (reported only; the order follows from O(actions[].state)).
        type: bool
        default: false
  workers:
    description:
      - How many desktops are applied at the same time over the connection. Their hypervisor tasks (restore, save,
        hot-plug) run in parallel on the hypervisor.
      - Most of a desktop's time is spent waiting for the hypervisor's tasks, not computing, so more workers than
        cores pay off; 16 applied 334 due desktops of a 1,000-desktop Proxmox VE pool in 35 s where 8 took 60 s
        (C(benchmarks/apply_scale.py)).
    type: int
    default: 16
  fail_on_desktop_error:
    description:
      - Fail the task when any desktop failed (after all the others were applied). With V(false) the task
        succeeds and the failures are only in RV(failed_desktops) and RV(desktops).
    type: bool
    default: true
notes:
  - In check mode the resource changes of a desktop that would be woken are classified as if it were already
    running, so they show as C(live) where the hypervisor would hot-plug them.
seealso:
  - module: shadowdesk.vdi.shadow_vm
  - module: shadowdesk.vdi.desktop_resources
  - plugin: shadowdesk.vdi.due_actions
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Apply what the plan wants now, one call for the whole pool
  shadowdesk.vdi.plan_apply:
    actions: "{{ lookup('ansible.builtin.file', plan_file) | shadowdesk.vdi.due_actions(now) }}"
    workers: 16
  register: applied

- name: The same on a Proxmox VE cluster, with failures reported but not failing the play
  shadowdesk.vdi.plan_apply:
    backend: proxmox
    api_host: pve1.example.com
    api_user: shadowdesk@pve
    api_token_id: shadowdesk
    api_token_secret: "{{ vault_pve_token }}"
    actions: "{{ due }}"
    fail_on_desktop_error: false
"""

RETURN = r"""
desktops:
  description: One record per action, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    desktop:
      description: Name of the desktop.
      type: str
    user:
      description: Its user.
      type: str
    node:
      description: The node it is on, as the hypervisor reports it.
      type: str
    state:
      description: The planned power state.
      type: str
    stage:
      description: The planned stage.
      type: str
    changed:
      description: Whether anything changed (or would change, in check mode).
      type: bool
    failed:
      description: Whether this desktop failed.
      type: bool
    msg:
      description: Why it failed (only when it failed).
      type: str
    error_type:
      description: The kind of failure, for example C(DesktopNotFound) or C(OperationRefused).
      type: str
    steps:
      description:
        - Lifecycle steps taken, in order (those done before a failure). C(migrate) first when the desktop was moved
          to the node the plan chose (Proxmox VE; a wake only, never a release).
      type: list
      elements: str
    node_kept:
      description:
        - Why the desktop was not moved to the node the plan chose (the hypervisor refused the migration); it was
          woken where it is. Only present then.
      type: str
    changes:
      description: Resource changes with how they took effect, as in M(shadowdesk.vdi.desktop_resources).
      type: list
      elements: dict
    pending:
      description: Fields that wait for the next start.
      type: list
      elements: str
    timings:
      description: Seconds per step.
      type: dict
  sample:
    - desktop: desk-alice
      user: alice
      node: pve1
      state: running
      stage: full
      changed: true
      failed: false
      steps: [start]
      changes: [{field: vcpus, key: null, before: 1, after: 4, mode: live, reason: vCPU hot-add}]
      pending: []
      timings: {start: 0.41, resize: 0.05}
summary:
  description: How many desktops were given, changed, unchanged and failed.
  returned: always
  type: dict
  sample: {desktops: 334, changed: 120, unchanged: 213, failed: 1}
failed_desktops:
  description: Names of the desktops that failed.
  returned: always
  type: list
  elements: str
  sample: [desk-zoe]
"""

from ansible_collections.shadowdesk.vdi.plugins.module_utils._module_runtime import build_module, run_with_backend
from ansible_collections.shadowdesk.vdi.plugins.module_utils._plan_apply import apply_actions, summarise

ACTION_SPEC = dict(
    desktop=dict(type="str", required=True),
    user=dict(type="str"),
    node=dict(type="str"),
    state=dict(type="str", choices=["running", "paused", "saved", "stopped"]),
    stage=dict(type="str"),
    stages=dict(type="dict", default={}),
    at=dict(type="str"),
    release=dict(type="bool", default=False),
)

ARGUMENT_SPEC = dict(
    actions=dict(type="list", elements="dict", required=True, options=ACTION_SPEC),
    workers=dict(type="int", default=16),
    fail_on_desktop_error=dict(type="bool", default=True),
)


def apply_plan_actions(module, backend):
    records = apply_actions(backend, module.params["actions"], module.check_mode, module.params["workers"])
    failed = [r["desktop"] for r in records if r["failed"]]
    result = dict(changed=any(r["changed"] for r in records), desktops=records, summary=summarise(records),
                  failed_desktops=failed)
    if module._diff:
        changed = [r for r in records if r["changed"]]
        result["diff"] = {"before": {r["desktop"]: r.get("before") for r in changed},
                          "after": {r["desktop"]: r.get("after") for r in changed}}
    if failed and module.params["fail_on_desktop_error"]:
        first = next(r for r in records if r["failed"])
        result.update(failed=True, msg="%s of %s desktops failed (the others were applied); first: %s: %s"
                      % (len(failed), len(records), first["desktop"], first["msg"]))
    return result


def main():
    module = build_module(ARGUMENT_SPEC)
    if module.params["workers"] < 1:
        module.fail_json(msg="workers must be at least 1, got %s" % module.params["workers"])
    run_with_backend(module, lambda backend: apply_plan_actions(module, backend))


if __name__ == "__main__":
    main()
