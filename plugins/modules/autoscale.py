#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: autoscale
short_description: Scale every running desktop of a hypervisor to what its session uses, in one batch
version_added: 0.2.0
description:
  - One autoscale round over every managed desktop of a hypervisor through one connection. Run it every minute
    (cron, an AWX schedule, see C(playbooks/autoscale.yml)).
  - Per desktop and resource (CPU, memory, and disk and network limits when their bounds are set) the policy keeps
    a decaying usage histogram (optionally one per hour of the day) and allocates a high percentile of it plus
    headroom; a saturated resource grows at once; it comes down only after low readings in a row, outside a
    hysteresis band and after a per-resource cooldown, and at most one step at a time.
  - CPU grows by hot-adding vCPUs and comes down with a CPU quota, never by unplugging. Memory moves the balloon,
    never below what the guest uses plus a margin and never above the desktop's maximum memory.
  - Only running desktops are touched. A missing or stale reading means "do nothing" for that resource or
    desktop. Every decision says why.
  - The policy's memory (histograms, cooldowns) is kept in the history store between runs, per hypervisor
    (O(state_key)) and desktop, on the controller - read before the round, written back after it (table
    C(autoscale_state), docs/autoscale.md). A desktop no longer managed on the hypervisor has its state dropped.
    With O(keep_state=false) it is passed in with O(policy_state) and returned as RV(policy_state) instead.
  - The round itself runs on the task's host (the module); the store options stay on the controller.
  - Run one round of a hypervisor at a time (AWX - concurrent jobs off; cron - C(flock)). Should two overlap,
    the one that finishes later does not overwrite a desktop's state the other wrote meanwhile (it keeps the
    newer one and warns, see RV(stored_state)), but both rounds may have acted on that desktop.
  - The P(shadowdesk.vdi.autoscale#role) role and C(playbooks/autoscale.yml) run it every minute.
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._connection
  - shadowdesk.vdi._attributes.ALL
  - shadowdesk.vdi._history_store
options:
  data_dir:
    description:
      - Runtime data directory of the SQLite history store (when no O(history_url)); default env
        C(SHADOWDESK_DATA_DIR), else C(~/.local/share/shadowdesk). On the controller.
    type: path
  keep_state:
    description:
      - Read the policy state from the history store before the round and write the returned one back.
      - V(false) - the caller keeps it, passing O(policy_state) and registering RV(policy_state).
    type: bool
    default: true
  state_key:
    description:
      - The hypervisor the stored states belong to. Default from the connection - C(libvirt <uri>) for a libvirt
        URI naming a host, C(libvirt <uri> on <inventory_hostname>) for a local URI such as C(qemu:///system),
        C(proxmox <api_host>:<api_port>) for Proxmox VE.
      - Set it when one hypervisor is reached under several names (two API endpoints of one cluster).
    type: str
  desktops:
    description:
      - Only these desktops (names). Each must be a managed desktop of the hypervisor. Default is every managed
        desktop.
    type: list
    elements: str
  bounds:
    description: Where the resources may go. Ceilings never exceed the desktop's own maximum.
    type: dict
    suboptions:
      cpu:
        description: CPUs' worth of time (V(1.5) = one and a half CPUs). Above the online vCPUs means hot-add.
        type: dict
        suboptions:
          min: {description: Floor., type: float}
          max: {description: Ceiling., type: float}
      memory_mib:
        description: Balloon range in MiB.
        type: dict
        suboptions:
          min: {description: Floor., type: float}
          max: {description: Ceiling., type: float}
      disk_bytes_sec:
        description: Range of each disk's total bytes/s limit. Disk limits are left alone unless both are set.
        type: dict
        suboptions:
          min: {description: Floor., type: float}
          max: {description: Ceiling., type: float}
      net_kib_s:
        description: Range of each interface's rate in KiB/s. Rates are left alone unless both are set.
        type: dict
        suboptions:
          min: {description: Floor., type: float}
          max: {description: Ceiling., type: float}
  host:
    description: Limits of the hypervisor host, so the desktops together never overcommit it.
    type: dict
    suboptions:
      cpu_overcommit:
        description: CPUs' worth all running managed desktops may hold together, as a multiple of the host's CPUs.
        type: float
        default: 4.0
      memory_reserve_mib:
        description: Host memory (MiB) that growing balloons never take.
        type: float
        default: 1024.0
  policy:
    description: The policy's knobs; the defaults were chosen on a real trace (see C(benchmarks/README.md)).
    type: dict
    suboptions:
      quantile: {description: Percentile of the usage histograms taken as the demand (default 0.9)., type: float}
      headroom:
        description: Margin over that percentile, the risk knob (default 0.15; higher means fewer starved minutes).
        type: float
      saturation: {description: Usage share of the allocation that counts as saturated (default 0.95)., type: float}
      up_step: {description: A saturated resource grows to at least this multiple (default 1.2)., type: float}
      up_cooldown_s: {description: Seconds between two increases of the same resource (default 0)., type: float}
      down_hysteresis:
        description: Come down only when the wanted value is this share below the allocation (default 0.1).
        type: float
      down_after: {description: Low readings in a row before coming down (default 2)., type: int}
      down_cooldown_s:
        description: Seconds after a resource's last change before it may come down (default 300).
        type: float
      down_step:
        description: Largest share of the allocation given up in one step (default 1, straight to the target).
        type: float
      memory_margin_mib:
        description: Memory (MiB) kept above the guest's used memory (default 256).
        type: float
      memory_margin_share: {description: Or this share of the used memory if larger (default 0.1)., type: float}
      slot_half_life_s: {description: Half-life of the hour-of-day histograms (default 7 days)., type: float}
      overall_half_life_s: {description: Half-life of the overall histogram (default 2 h)., type: float}
      lookahead_s: {description: Also honour the demand of the hour this far ahead (default 3600)., type: float}
      time_of_day:
        description: Also keep hour-of-day histograms and plan on the current and the next hour (default false).
        type: bool
      split_weekend:
        description: With O(policy.time_of_day), keep weekday and weekend hours apart (default true).
        type: bool
  stale_after_s:
    description: Readings older than this many seconds are treated as missing.
    type: float
    default: 180
  interval:
    description: Seconds over which each desktop's CPU use is measured.
    type: float
    default: 1.0
  policy_state:
    description:
      - With O(keep_state=false), the RV(policy_state) of the previous run (histograms, cooldowns). Empty starts
        learning afresh. Not allowed with O(keep_state=true) (the store has it).
    type: dict
    default: {}
  stages:
    description:
      - Floors from the allocation plan, keyed by desktop name; each a dict with C(vcpus), C(cpu_limit) and
        C(memory_mib) of the plan's current stage. The loop never goes below them.
    type: dict
    default: {}
  metrics:
    description:
      - Readings to use instead of measuring, keyed by desktop name, in the shape of
        M(shadowdesk.vdi.desktop_info)'s C(utilisation) (for example from an event). Others are measured.
    type: dict
    default: {}
  now:
    description: The time of this round (ISO-8601 with offset). Default is the current time.
    type: str
notes:
  - Check mode returns the decisions and the changes that would be made, and changes nothing, neither the
    desktops nor the stored state.
  - A rerun on the same readings changes nothing (the reading was already decided on).
  - C(changed) is about the desktops; the stored state is updated on most runs (each reading is learnt), see
    RV(stored_state).
seealso:
  - module: shadowdesk.vdi.desktop_resources
  - module: shadowdesk.vdi.desktop_info
"""

EXAMPLES = r"""
- name: One autoscale round over every running desktop of this host (state in the history store)
  shadowdesk.vdi.autoscale:
    bounds:
      cpu: {min: 0.5}
      memory_mib: {min: 1024}
      net_kib_s: {min: 1024, max: 125000}

- name: Show what it would do, with the state in a shared PostgreSQL store
  shadowdesk.vdi.autoscale:
    history_url: postgresql://shadowdesk@db.example.com/shadowdesk?sslmode=verify-full
  check_mode: true

- name: Keep the state yourself
  shadowdesk.vdi.autoscale:
    keep_state: false
    policy_state: "{{ previous.policy_state | default({}) }}"
  register: previous
"""

RETURN = r"""
desktops:
  description: Per managed desktop, what was decided and done.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: Desktop name., type: str, returned: always}
    skipped:
      description: Why nothing was decided (not running, stale metrics); null when decided.
      type: str
      returned: always
    decisions:
      description: Per resource C(resource), C(action) (up, down, hold), C(before), C(after), C(usage) and C(reason).
      type: list
      elements: dict
      returned: always
    changes: {description: The resource changes made (or that would be made)., type: list, elements: dict,
              returned: always}
    live: {description: Fields the running guest has now., type: list, elements: str, returned: always}
    pending: {description: Fields waiting for a restart., type: list, elements: str, returned: always}
    warnings: {description: What the policy could not do., type: list, elements: str, returned: always}
    error: {description: Why this desktop failed (the others were still handled)., type: str, returned: on error}
  sample:
    - name: desk-alice
      skipped: null
      decisions:
        - {resource: cpu, action: up, before: 1.0, after: 1.5, usage: 0.98,
           reason: "saturated: using 0.98 of 1 CPUs (>= 90%)"}
      live: [vcpus]
policy_state:
  description: The policy's memory after this round, to pass as O(policy_state) next time.
  returned: with O(keep_state=false)
  type: dict
stored_state:
  description:
    - What happened to the stored policy state - C(key) (the hypervisor), C(loaded) (desktops read), C(saved)
      (desktops whose state was written), C(dropped) (desktops no longer managed), C(unchanged) (count),
      C(conflicts) (desktops whose state an overlapping round wrote meanwhile; theirs was kept), and a C(note)
      when nothing was written (check mode, or the round did not run).
  returned: with O(keep_state=true)
  type: dict
  sample: {key: "libvirt qemu:///system on hv1", loaded: 2, saved: [desk-alice, desk-bob], dropped: [], conflicts: [],
           unchanged: 0}
failed_desktops:
  description: Desktops whose round failed.
  returned: always
  type: list
  elements: str
"""

import time

from ansible_collections.shadowdesk.vdi.plugins.module_utils._autoscale_round import autoscale_round
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.autoscale_config import parse_config
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.autoscale_desktop import epoch
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput, ShadowDeskError
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import Resources
from ansible_collections.shadowdesk.vdi.plugins.module_utils._module_runtime import build_module, run_with_backend

_RANGE = dict(type="dict", options=dict(min=dict(type="float"), max=dict(type="float")))

ARGUMENT_SPEC = dict(
    desktops=dict(type="list", elements="str"),
    bounds=dict(type="dict", options=dict(cpu=_RANGE, memory_mib=_RANGE, disk_bytes_sec=_RANGE, net_kib_s=_RANGE)),
    host=dict(type="dict", options=dict(cpu_overcommit=dict(type="float", default=4.0),
                                        memory_reserve_mib=dict(type="float", default=1024.0))),
    policy=dict(type="dict", options=dict(
        quantile=dict(type="float"), headroom=dict(type="float"), saturation=dict(type="float"),
        up_step=dict(type="float"), up_cooldown_s=dict(type="float"), down_hysteresis=dict(type="float"),
        down_after=dict(type="int"), down_cooldown_s=dict(type="float"), down_step=dict(type="float"),
        memory_margin_mib=dict(type="float"), memory_margin_share=dict(type="float"),
        slot_half_life_s=dict(type="float"), overall_half_life_s=dict(type="float"),
        lookahead_s=dict(type="float"), time_of_day=dict(type="bool"), split_weekend=dict(type="bool"))),
    stale_after_s=dict(type="float", default=180.0),
    interval=dict(type="float", default=1.0),
    policy_state=dict(type="dict", default={}),
    # used by the action plugin on the controller (plugins/action/autoscale.py), which keeps them from the target
    data_dir=dict(type="path"),
    keep_state=dict(type="bool", default=True),
    state_key=dict(type="str", no_log=False),  # a hypervisor name, not a secret
    history_url=dict(type="str", no_log=True),
    history_password=dict(type="str", no_log=True),
    stages=dict(type="dict", default={}),
    metrics=dict(type="dict", default={}),
    now=dict(type="str"),
)


def _stages(spec):
    stages = {}
    for name, stage in spec.items():
        if not isinstance(stage, dict) or set(stage) - {"vcpus", "cpu_limit", "memory_mib"}:
            raise InvalidInput("stages.%s must be a dict of vcpus, cpu_limit and memory_mib, got %r" % (name, stage))
        try:
            stages[name] = Resources(
                vcpus=None if stage.get("vcpus") is None else int(stage["vcpus"]),
                cpu_limit=None if stage.get("cpu_limit") is None else float(stage["cpu_limit"]),
                memory_mib=None if stage.get("memory_mib") is None else int(stage["memory_mib"]))
        except (TypeError, ValueError):
            raise InvalidInput("stages.%s has a value that is not a number: %r" % (name, stage)) from None
    return stages


def run_round(module, backend):
    params = module.params
    config = parse_config(params["bounds"], params["host"], params["policy"], params["stale_after_s"])
    now = time.time() if params["now"] is None else epoch(params["now"])
    if now is None:
        raise InvalidInput("now=%r is not an ISO-8601 time with an offset" % params["now"])
    if not params["interval"] > 0:
        raise InvalidInput("interval must be above 0 seconds")
    result = autoscale_round(backend, config, params["policy_state"], now, module.check_mode,
                             names=params["desktops"], stages=_stages(params["stages"]),
                             metrics=params["metrics"], interval=params["interval"])
    out = dict(changed=result["changed"], desktops=result["desktops"], policy_state=result["states"],
               failed_desktops=result["failed"])
    if module._diff:
        out["diff"] = {"before": {d["name"]: d["diff"]["before"] for d in result["desktops"] if d.get("diff")},
                       "after": {d["name"]: d["diff"]["after"] for d in result["desktops"] if d.get("diff")}}
    for entry in out["desktops"]:
        entry.pop("diff", None)
    if result["failed"]:
        raise ShadowDeskError("Autoscale failed for %s (the other desktops were handled): %s" % (
            ", ".join(result["failed"]),
            "; ".join("%s: %s" % (d["name"], d["error"]) for d in result["desktops"] if d.get("error"))), **out)
    return out


def main():
    module = build_module(ARGUMENT_SPEC)
    run_with_backend(module, lambda backend: run_round(module, backend))


if __name__ == "__main__":
    main()
