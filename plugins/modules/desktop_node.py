#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: desktop_node
short_description: Move a shadow desktop to the compute node its allocation plan chose
version_added: 0.2.0
description:
  - Proxmox VE - migrates the VM to O(node) (live when it runs; PVE refuses some cases, for example a hibernated
    VM or local resources, and the failure says why). Nothing happens when it is already there.
  - libvirt - desktops are not moved between hosts; the plan's node is reached through its own connection URI
    (the C(apply_plan) role's C(apply_plan_node_connections)). Asking to move one fails with that explanation.
  - O(target_node) is where the desktop goes; the connection option O(node) is unrelated (where new desktops are
    created).
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._connection
  - shadowdesk.vdi._attributes.ALL
options:
  name:
    description: The desktop.
    type: str
    required: true
  target_node:
    description: The node it must run on.
    type: str
    required: true
seealso:
  - module: shadowdesk.vdi.allocation_plan
"""

EXAMPLES = r"""
- name: Put alice's shadow where the plan wants it
  shadowdesk.vdi.desktop_node:
    name: desk-alice
    target_node: pve2
"""

RETURN = r"""
node:
  description: The node the desktop is on afterwards (predicted in check mode).
  returned: always
  type: str
previous_node:
  description: The node it was on before.
  returned: always
  type: str
"""

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import DesktopNotFound
from ansible_collections.shadowdesk.vdi.plugins.module_utils._module_runtime import (
    StepTimer, build_module, run_with_backend,
)

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    target_node=dict(type="str", required=True),
)


def place(module, backend):
    name, wanted = module.params["name"], module.params["target_node"]
    facts = backend.get(name)
    if facts is None:
        raise DesktopNotFound("Desktop %s does not exist." % name)
    changed = facts.node != wanted
    timer = StepTimer()
    if changed and not module.check_mode:
        timer.run("migrate", backend.migrate, name, wanted)
    result = dict(changed=changed, node=wanted, previous_node=facts.node, timings=timer.timings)
    if module._diff:
        result["diff"] = {"before": {"node": facts.node}, "after": {"node": wanted}}
    return result


def main():
    module = build_module(ARGUMENT_SPEC)
    run_with_backend(module, lambda backend: place(module, backend))


if __name__ == "__main__":
    main()
