#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: desktop_resources
short_description: Resize a desktop live, up to its full size, and say what took effect
version_added: 0.1.0
description:
  - Brings a desktop to a resource target, vCPUs, memory, CPU limit, network bandwidth per interface, disk I/O
    limits per disk and GPUs, live where the hypervisor can and in the persistent definition where it cannot,
    and reports which (C(live), C(config) for a desktop that is not running, C(pending) for what waits for a
    restart).
  - vCPUs grow by hot-add up to the desktop's maximum. A smaller vCPU target is reached with a CPU limit (cgroup
    quota on libvirt, C(cpulimit) on Proxmox VE), never by unplugging vCPUs, which hangs or crashes real guests.
  - Memory is ballooned up to the desktop's maximum memory.
  - GPUs (PCI host devices or mediated devices) are never hot-plugged; they are written to the definition and
    reported as pending until the next start.
  - A target is either given directly (O(vcpus), O(memory_mib), ...) or as named O(stages) with the O(stage) to
    apply, as allocation plans do (shadow, warm, full).
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
  vcpus:
    description: Online vCPUs wanted (1 up to the desktop's maximum).
    type: int
  memory_mib:
    description: Memory wanted in MiB (balloon target, up to the desktop's maximum memory).
    type: int
  cpu_limit:
    description:
      - CPU time cap in CPUs (V(1.5) is one and a half CPUs, V(0) removes the cap). When omitted and O(vcpus) is
        below the online vCPUs, the cap is set to O(vcpus); when O(vcpus) is at or above them, the cap is lifted.
      - A multiple of V(0.01) (the kernel's smallest quota is 1 ms per 100 ms); a finer value is refused.
    type: float
  net:
    description:
      - Bandwidth per network interface, keyed by V(net0), V(net1), ... in the desktop's interface order.
      - Each value is a dict with C(rate_kib_s), the rate in KiB/s in each direction (V(0) is unlimited), a whole
        number up to 4294967295.
    type: dict
  disk_io:
    description:
      - I/O limits per disk, keyed by V(disk0), V(disk1), ... in the desktop's disk order.
      - Each value is a dict with C(total_iops) and/or C(total_bytes_sec), whole numbers up to 10^15 (V(0) is
        unlimited; an omitted one is set to V(0)). A value that is not a dict is refused.
    type: dict
  gpu:
    description:
      - Host PCI addresses (V(0000:65:00.0)) or mediated device UUIDs the desktop should have. Applied to the
        definition for the next start and reported as pending while it runs.
    type: list
    elements: str
  stages:
    description:
      - Named targets, for example C(shadow), C(warm) and C(full), each a dict with the keys O(vcpus),
        O(memory_mib), O(cpu_limit), O(net), O(disk_io) and O(gpu). Use with O(stage).
      - The chosen stage's values are checked like the direct options (whole numbers, the same ranges).
    type: dict
  stage:
    description: Which of O(stages) to apply.
    type: str
notes:
  - Over-maximum values fail instead of being clipped, so an allocation plan never believes it has resources it
    has not.
seealso:
  - module: shadowdesk.vdi.shadow_vm
  - module: shadowdesk.vdi.desktop_info
"""

EXAMPLES = r"""
- name: Raise alice's desktop to full size after waking it
  shadowdesk.vdi.desktop_resources:
    name: desk-alice
    vcpus: 4
    memory_mib: 8192
    net:
      net0: {rate_kib_s: 125000}
    disk_io:
      disk0: {total_iops: 4000, total_bytes_sec: 200000000}

- name: Scale CPU down during a quiet hour (a CPU limit, no unplug)
  shadowdesk.vdi.desktop_resources:
    name: desk-alice
    vcpus: 1

- name: Apply the planned stage
  shadowdesk.vdi.desktop_resources:
    name: "{{ item.desktop }}"
    stages: "{{ item.stages }}"
    stage: "{{ item.stage }}"
  loop: "{{ plan | shadowdesk.vdi.due_actions(now) }}"
"""

RETURN = r"""
changes:
  description: Every change made (or that would be made), with how it took effect.
  returned: always
  type: list
  elements: dict
  sample:
    - {field: vcpus, key: null, before: 1, after: 4, mode: live, reason: vCPU hot-add}
    - {field: gpu, key: null, before: [], after: ["0000:65:00.0"], mode: pending, reason: GPUs are never hot-plugged}
live:
  description: Fields (C(field) or C(field.key)) the running guest has now.
  returned: always
  type: list
  elements: str
  sample: [vcpus, memory_mib, net.net0]
config:
  description: Fields written to the definition of a desktop that is not running (no restart needed).
  returned: always
  type: list
  elements: str
  sample: [memory_mib]
pending:
  description:
    - Fields written to the definition that wait for the next start, including ones already pending from an
      earlier run (those are not reported as changes).
  returned: always
  type: list
  elements: str
  sample: [gpu]
timings:
  description: Seconds the hypervisor took to apply the changes (empty in check mode or without changes).
  returned: always
  type: dict
  sample: {apply: 0.021}
desktop:
  description: Facts of the desktop after the run (before it, in check mode).
  returned: always
  type: dict
"""

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.resources import (
    current_resources, parse_target, predicted, resolve_stage, resource_changes, split_already_pending,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import (
    DesktopNotFound, InvalidInput, ShadowDeskError,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    APPLIED_CONFIG, APPLIED_LIVE, APPLIED_PENDING,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._module_runtime import (
    StepTimer, build_module, run_with_backend,
)

TARGET_KEYS = ("vcpus", "memory_mib", "cpu_limit", "net", "disk_io", "gpu")

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    vcpus=dict(type="int"),
    memory_mib=dict(type="int"),
    cpu_limit=dict(type="float"),
    net=dict(type="dict"),
    disk_io=dict(type="dict"),
    gpu=dict(type="list", elements="str"),
    stages=dict(type="dict"),
    stage=dict(type="str"),
)


def target_from_params(params):
    """The wanted Resources, from a stage or from the direct options (never both)."""
    direct = {k: params[k] for k in TARGET_KEYS if params[k] is not None}
    if params["stages"] is not None or params["stage"] is not None:
        if direct:
            raise InvalidInput("Give either stages+stage or direct targets (%s), not both." % ", ".join(direct))
        if not params["stages"] or not params["stage"]:
            raise InvalidInput("stages and stage must be given together.")
        return resolve_stage(params["stages"], params["stage"])
    if not direct:
        raise InvalidInput("Nothing to do: give at least one of %s, or stages+stage." % ", ".join(TARGET_KEYS))
    return parse_target(direct, "")


def _label(change):
    return change.field if change.key is None else "%s.%s" % (change.field, change.key)


def report_failure(backend, name, before, exc):
    """A failed apply still says what it changed: the desktop's resources now, compared with before. Changes the
    backend finished are listed in ``applied``; a change cut off half-way (e.g. 2 of 3 vCPUs hot-added) shows
    only in what the desktop has now."""
    try:
        now = current_resources(backend.get(name)).to_dict()
    except (ShadowDeskError, AttributeError) as again:  # AttributeError: the desktop vanished (get() is None)
        exc.details.update(changed=True, resources_unknown="cannot read the desktop back: %s" % again)
        return
    exc.details.update(changed=now != before or bool(exc.details.get("applied")), resources_now=now)


def ensure_resources(module, backend):
    params = module.params
    target = target_from_params(params)
    facts = backend.get(params["name"])
    if facts is None:
        raise DesktopNotFound("Desktop %s does not exist." % params["name"])
    changes = resource_changes(facts, target)
    for change in changes:
        change.mode, change.reason = backend.classify(facts, change)
    changes, waiting = split_already_pending(facts, changes)
    before = current_resources(facts).to_dict()
    timer = StepTimer()
    if changes and not module.check_mode:
        try:
            changes = timer.run("apply", backend.apply, facts, changes)
        except ShadowDeskError as exc:
            report_failure(backend, params["name"], before, exc)
            raise
        facts = backend.get(params["name"])
        after = current_resources(facts).to_dict()
    else:
        after = predicted(current_resources(facts), changes).to_dict()
    result = dict(
        changed=bool(changes),
        changes=[c.to_dict() for c in changes],
        live=[_label(c) for c in changes if c.mode == APPLIED_LIVE],
        config=[_label(c) for c in changes if c.mode == APPLIED_CONFIG],
        pending=[_label(c) for c in changes + waiting if c.mode == APPLIED_PENDING],
        desktop=facts.to_dict(),
        timings=timer.timings,
    )
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    return result


def main():
    module = build_module(ARGUMENT_SPEC)
    run_with_backend(module, lambda backend: ensure_resources(module, backend))


if __name__ == "__main__":
    main()
