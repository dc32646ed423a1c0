#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# Documentation only: the work is done on the controller by plugins/action/allocation_plan.py.

from __future__ import annotations

DOCUMENTATION = r"""
module: allocation_plan
short_description: Turn login forecasts into staged allocation plans for shadow desktops
version_added: 0.1.0
description:
  - Runs on the controller. For every user in O(desktops) with a forecast, plans when to wake the shadow desktop
    (V(running) from V(saved) or V(paused)), when to raise it through the stages C(shadow), C(warm) and C(full)
    (vCPUs, memory, network and disk limits, GPUs), on which compute node, and when to release it (back to the
    shadow size and V(saved), or V(paused) when the next session is near).
  - Warm windows come from the forecast and the O(risk) knob. With the arrival profiles the C(forecast) action
    attaches (the default), a window starts where the user's own arrival-time distribution makes a login likely
    enough, so it is tight for a punctual user and wide for an irregular one; the predicted login is that
    distribution's median (the next login after O(now)), and the C(full) stage is ready by its early login (1 in
    10 logins come earlier); before that the desktop is C(warm). Each user's C(arrival) entry says why the window
    is as wide as it is (spread, number of arrivals, the pool's share).
  - The lead time is not a constant. It is the measured wake time (C(restore_s) of O(measured) from V(saved),
    C(resume_s) from V(paused)) plus C(hotplug_s), times O(safety_factor), plus
    O(apply_interval_minutes) (a step may fall due just after an apply run), before the window's start. Without
    arrival profiles the window plans on the upper edge of the forecast band, starts earlier when the band is wide
    (up to O(max_prewarm_minutes)), and C(full) starts where the forecast itself is high enough.
  - Placement picks, among the nodes with capacity for the user's whole planned timeline, the one with the least
    contention, made cost-aware through O(prices) (time-of-day and spot prices, per node and time). A desktop with
    a C(node) in O(desktops) stays there. When the C(full) stage fits nowhere it is capped to the C(warm) size (with a
    warning); when even that does not fit, the user is not planned.
  - Users whose forecast used the C(fallback) method get a conservative plan (marked C(conservative)) with half the
    risk, twice the margins and the full size at wake. Users with no forecast, or with a fallback forecast and no
    history, are left alone (no steps). Users that have a forecast but no entry in O(desktops) are listed under
    C(unplanned) in the plan, with a warning.
  - The plan is validated against a JSON Schema, written atomically to C(<data_dir>/plans/plan-<generated>.json)
    (or C(.yml)) and to C(latest.json), with a human summary (C(latest.summary.md)) rendered from a Jinja2
    template. A plan equal to the latest one (apart from C(generated_at)) is not written again and reports
    C(changed=false).
  - Apply plans with the C(shadowdesk.vdi.due_actions) filter and C(playbooks/apply_plans.yml).
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._data_dir
  - shadowdesk.vdi._history_store
options:
  forecasts:
    description:
      - The forecasts, as a list of forecast dicts, a dict of them keyed by user, or the path of a JSON file
        holding either (a relative path is under C(<data_dir>/forecasts)).
      - 'A forecast dict has C(user), C(method) (V(prophet) or V(fallback)), C(start) (ISO-8601 UTC),
        C(slot_minutes), C(p) (probability the user is connected per slot), C(p_low) and C(p_high) (its band, same
        length as C(p)), and optionally C(reason) and C(history) (C(sessions), C(first), C(last)).'
    type: raw
    required: true
  desktops:
    description:
      - Per-user desktop, keyed by user. Every user with a forecast must be here.
      - 'Keys: C(desktop) (name, required), C(max_vcpus) and C(max_memory_mib) (full size, required), C(node)
        (where the desktop lives; omit to let placement choose), C(shadow_vcpus) (1), C(shadow_memory_mib)
        (2048), C(gpu) (PCI addresses or mdev UUIDs for the full stage), C(gpus) (how many GPUs it takes on a
        node, default the length of C(gpu)), C(net) (C(net0: {rate_kib_s})) and C(disk_io)
        (C(disk0: {total_iops, total_bytes_sec})) at full size; the shadow stage gets 10 % and warm 50 % of them.'
    type: dict
    required: true
  nodes:
    description:
      - 'Compute nodes and their capacity: C(name), C(vcpus) (what the node may hand out, overcommit included),
        C(memory_mib), C(gpus), and what is already in use outside the plan: C(used_vcpus), C(used_memory_mib),
        C(used_gpus). All counts are integers >= 0.'
    type: list
    elements: dict
    required: true
  profiles:
    description:
      - Resource profiles (list, or dict keyed by user) with C(user), C(vcpus), C(memory_mib), C(hourly)
        (per UTC hour V(0)..V(23), a dict with C(cpu_p95) and C(memory_p95_mib)) and C(samples). The full stage is the p95 of the
        planned hours times O(headroom), within the desktop's maximum; without a profile it is the maximum.
    type: raw
  prices:
    description:
      - 'Price of one resource unit-hour (1 vCPU or 4 GiB of memory): C(default), C(hourly) (C("0").."23", UTC hour
        of day) and C(spot) (per node, a list of C({start, end, price})). Spot beats hourly beats default.'
    type: dict
  measured:
    description:
      - Measured times in seconds of C(restore_s) (wake from saved), C(resume_s) (wake from paused) and
        C(hotplug_s) (one resize step). Defaults 0.96, 0.064 and 0.67, the medians of
        C(benchmarks/reconnect.py) on the reference test bed (see C(benchmarks/README.md)); pass your own.
      - Values given here win over O(measured_from_history).
    type: dict
  measured_from_history:
    description:
      - Take the wake and hot-plug times from the reconnects the session flows measured (C(playbooks/reconnect.yml)
        records each one) - the median of the newest 20 per kind, pool-wide and per node (a desktop on a node with
        its own measurements uses those). Kinds never measured keep O(measured) or the defaults.
      - The plan records what it used in C(policy.measured) and C(policy.measured_by_node).
    type: bool
    default: true
  risk:
    description: Risk knob, 0 (warm on any sign of use) to 1 (warm only where the user is usually connected).
    type: float
    default: 0.3
  safety_factor:
    description: Multiplier on the measured times.
    type: float
    default: 3.0
  apply_interval_minutes:
    description: How often the apply playbook runs.
    type: float
    default: 5
  merge_gap_minutes:
    description: Predicted sessions closer than this are bridged instead of released in between.
    type: float
    default: 60
  max_prewarm_minutes:
    description:
      - At most this much of a warm window before the likely login is spent in the warm stage, for forecasts
        without arrival profiles. Arrival windows are not capped (their start is already the trade of hits
        against idle time).
    type: float
    default: 90
  release_grace_minutes:
    description: Keep the desktop this long after the end of the predicted session.
    type: float
    default: 30
  pause_gap_minutes:
    description: Release to V(paused) instead of V(saved) when the next wake is at most this far away.
    type: float
    default: 180
  headroom:
    description: Full stage = profile p95 times this.
    type: float
    default: 1.25
  cost_weight:
    description: Placement score = contention + this x (cost / cheapest fitting node's cost - 1).
    type: float
    default: 1.0
  format:
    description: Plan file format (C(.json) or C(.yml)).
    type: str
    choices: [json, yaml]
    default: json
  now:
    description: The generation time (ISO-8601 UTC) recorded as C(generated_at); default the current time.
    type: str
  summary_template:
    description:
      - Jinja2 template of the human summary, rendered with C(plan) only. Default
        C(roles/forecast/templates/plan_summary.md.j2) of this collection.
    type: path
attributes:
  check_mode:
    description: Computes and returns the plan and the summary, writes nothing.
    support: full
  diff_mode:
    description: Not supported; compare RV(summary) or the plan files.
    support: none
  action:
    description: Runs on the controller as an action plugin.
    support: full
notes:
  - The apply side enforces "the last step at or before now" for each user, so it is idempotent.
  - A corrupted C(latest) plan is reported as a warning and replaced by the new plan.
seealso:
  - module: shadowdesk.vdi.shadow_vm
  - module: shadowdesk.vdi.desktop_resources
"""

EXAMPLES = r"""
- name: Plan tomorrow from the forecasts of the forecast step
  shadowdesk.vdi.allocation_plan:
    forecasts: latest.json          # <data_dir>/forecasts/latest.json
    profiles: "{{ shadowdesk_profiles }}"
    desktops:
      alice: {desktop: desk-alice, max_vcpus: 4, max_memory_mib: 8192, net: {net0: {rate_kib_s: 125000}}}
      bob: {desktop: desk-bob, node: pve2, max_vcpus: 8, max_memory_mib: 16384, gpu: ["0000:65:00.0"]}
    nodes:
      - {name: pve1, vcpus: 64, memory_mib: 262144, gpus: 0}
      - {name: pve2, vcpus: 64, memory_mib: 262144, gpus: 2, used_vcpus: 12, used_memory_mib: 32768}
    prices:
      default: 0.05
      hourly: {"8": 0.08, "9": 0.08, "22": 0.02}
      spot:
        pve1: [{start: "2026-11-23T06:00:00Z", end: "2026-11-23T10:00:00Z", price: 0.02}]
    measured: {restore_s: 0.8, resume_s: 0.04, hotplug_s: 1.5}
    risk: 0.2
  register: planned

- name: Show the summary
  ansible.builtin.debug:
    msg: "{{ planned.summary }}"

- name: Dry run with an injected clock, nothing written
  shadowdesk.vdi.allocation_plan:
    forecasts: /srv/shadowdesk/forecasts/2026-11-23.json
    desktops: "{{ shadowdesk_desktops }}"
    nodes: "{{ shadowdesk_nodes }}"
    now: "2026-11-22T21:00:00Z"
  check_mode: true
"""

RETURN = r"""
plan:
  description: The plan (schema version 1, see docs/architecture.md "Plan file").
  returned: success
  type: dict
  sample:
    version: 1
    generated_at: "2026-11-22T21:00:00Z"
    window: {start: "2026-11-23T00:00:00Z", end: "2026-11-24T00:00:00Z"}
    risk: 0.3
    total_cost: 0.33
    users:
      alice:
        desktop: desk-alice
        node: pve1
        method: prophet
        conservative: false
        predicted_login: "2026-11-23T08:00:00Z"
        lead_minutes: 21.0
        arrival:
          explanation: "warm 15 min before the median login: 38 arrival(s) on this kind of day, spread 6 min,
            smoothed over 3 min; pool weight 1 %; comes with probability 0.99"
          window_minutes: 195.0
          before_login_minutes: 15.0
          come_probability: 0.99
          samples: 38
          spread_minutes: 6.1
          bandwidth_minutes: 3.2
          pool_weight: 0.013
        stages:
          shadow: {vcpus: 1, memory_mib: 2048, cpu_limit: null, net: {}, disk_io: {}, gpu: null}
          warm: {vcpus: 1, memory_mib: 3328, cpu_limit: null, net: {}, disk_io: {}, gpu: null}
          full: {vcpus: 2, memory_mib: 4608, cpu_limit: null, net: {}, disk_io: {}, gpu: null}
        steps:
          - {at: "2026-11-23T07:39:00Z", state: running, stage: warm}
          - {at: "2026-11-23T07:49:00Z", state: running, stage: full}
          - {at: "2026-11-23T18:00:00Z", state: saved, stage: shadow}
summary:
  description: The human summary rendered from the template.
  returned: success
  type: str
path:
  description: The plan file written (none when unchanged; the path it would have in check mode).
  returned: success
  type: str
  sample: /var/lib/shadowdesk/plans/plan-20261122T210000Z.json
latest:
  description: The latest plan file, the one the apply playbook reads.
  returned: success
  type: str
  sample: /var/lib/shadowdesk/plans/latest.json
summary_path:
  description: Where the summary is (or would be) written.
  returned: success
  type: str
  sample: /var/lib/shadowdesk/plans/latest.summary.md
"""
