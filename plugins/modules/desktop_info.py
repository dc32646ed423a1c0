#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: desktop_info
short_description: State, size and measured utilisation of shadow desktops
version_added: 0.1.0
description:
  - Returns the power state, current and maximum resources, pending changes, saved state and snapshots of one
    desktop, of one user's desktops, or of every desktop the collection manages.
  - With O(utilisation=true) also measures utilisation over O(interval) seconds, CPU % of the online vCPUs,
    balloon and memory statistics, block and interface counters. This is the input for in-session scaling
    and for the behaviour history.
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._connection
  - shadowdesk.vdi._attributes.INFO_MODULE
options:
  name:
    description: One desktop. Fails if it does not exist.
    type: str
  user:
    description: Only this user's desktops.
    type: str
  utilisation:
    description: Measure utilisation of running desktops.
    type: bool
    default: false
  interval:
    description: Seconds over which CPU utilisation is measured, from 0.1 to 300.
    type: float
    default: 1.0
seealso:
  - module: shadowdesk.vdi.desktop_resources
"""

EXAMPLES = r"""
- name: How is alice's desktop doing?
  shadowdesk.vdi.desktop_info:
    name: desk-alice
    utilisation: true
  register: info

- name: Every managed desktop on this host
  shadowdesk.vdi.desktop_info:
  register: all_desktops
"""

RETURN = r"""
desktops:
  description: Facts of each desktop (with C(utilisation) for running desktops when asked).
  returned: always
  type: list
  elements: dict
  sample:
    - name: desk-alice
      state: running
      user: alice
      max_vcpus: 8
      max_memory_mib: 16384
      live: {vcpus: 2, memory_mib: 4096, cpu_limit: 0.0, net: {net0: {rate_kib_s: 0}}, disk_io: {}, gpu: []}
      pending: {}
      has_saved_state: false
      snapshots: []
      utilisation: {cpu_percent: 12.5, memory: {actual_mib: 4096, unused_mib: 2100}, sampled_at: "2026-11-21T09:00:00Z"}
"""

import math

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import DesktopNotFound, InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import STATE_RUNNING
from ansible_collections.shadowdesk.vdi.plugins.module_utils._module_runtime import (
    build_module, run_with_backend,
)

ARGUMENT_SPEC = dict(
    name=dict(type="str"),
    user=dict(type="str"),
    utilisation=dict(type="bool", default=False),
    interval=dict(type="float", default=1.0),
)


MIN_INTERVAL_S = 0.1
MAX_INTERVAL_S = 300.0


def gather(module, backend):
    params = module.params
    interval = params["interval"]
    if not (math.isfinite(interval) and MIN_INTERVAL_S <= interval <= MAX_INTERVAL_S):
        raise InvalidInput("interval=%s must be between %s and %s seconds" % (interval, MIN_INTERVAL_S, MAX_INTERVAL_S))
    if params["name"]:
        facts = backend.get(params["name"])
        if facts is None:
            raise DesktopNotFound("Desktop %s does not exist." % params["name"])
        found = [facts]
    else:
        found = backend.list(user=params["user"])
    desktops = []
    for facts in found:
        data = facts.to_dict()
        if params["utilisation"] and facts.state == STATE_RUNNING:
            data["utilisation"] = backend.utilisation(facts.name, interval=params["interval"])
        desktops.append(data)
    return dict(changed=False, desktops=desktops)


def main():
    module = build_module(ARGUMENT_SPEC, mutually_exclusive=[("name", "user")])
    run_with_backend(module, lambda backend: gather(module, backend))


if __name__ == "__main__":
    main()
