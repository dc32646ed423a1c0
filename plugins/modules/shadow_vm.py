#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: shadow_vm
short_description: Keep a user's desktop as a small always-ready shadow VM
version_added: 0.1.0
description:
  - Manages one desktop per user in I(shadow) form. The VM is defined with its full maximum size (maximum vCPUs
    and memory) but runs, pauses or is saved at a small shadow size (by default 1 vCPU and 2 GiB), holding the
    OS state, profile and cached desktop. M(shadowdesk.vdi.desktop_resources) later hot-plugs it up to the
    planned size, so a reconnect is a restore plus a hot-plug, not a cold boot.
  - On libvirt the desktop is a per-user qcow2 overlay on a golden image; on Proxmox VE a linked clone of a
    template. The golden image or template is never modified or removed.
  - O(state=absent) removes only what the shadow owns, its definition and saved RAM image; its own disk (the
    user's data) only with O(remove_storage=true).
author:
  - ShadowDesk engineers (@shadowdesk)
extends_documentation_fragment:
  - shadowdesk.vdi._connection
  - shadowdesk.vdi._attributes.ALL
options:
  name:
    description: Name of the desktop (libvirt domain name / Proxmox VM name).
    type: str
    required: true
  user:
    description:
      - The user the desktop belongs to. Required to create it. If given for an existing desktop that belongs to
        another user, the module fails rather than touch someone else's desktop.
    type: str
  state:
    description:
      - V(present) makes sure the desktop exists (created shut off if missing) and leaves its power state alone.
      - V(running) starts it; a saved shadow is restored, not cold-booted; a paused one is resumed.
      - V(paused) keeps it in RAM with its vCPUs stopped (resume takes milliseconds).
      - V(saved) writes its RAM to disk and releases it (managed save on libvirt, hibernate on Proxmox VE).
      - V(stopped) shuts it down. A saved RAM image is only discarded with O(discard_saved_state=true).
      - V(absent) removes it (see O(remove_storage)).
    type: str
    choices: [present, running, paused, saved, stopped, absent]
    default: present
  source:
    description:
      - What the desktop is created from. libvirt, path of the golden qcow2 image; Proxmox VE, the template's VMID.
      - Required when the desktop does not exist yet.
    type: str
  max_vcpus:
    description: Full size, the most vCPUs the desktop can be hot-plugged up to.
    type: int
    default: 4
  max_memory_mib:
    description: Full size, the most memory (MiB) the desktop can be ballooned up to.
    type: int
    default: 8192
  shadow_vcpus:
    description: vCPUs of the shadow (what it boots with).
    type: int
    default: 1
  shadow_memory_mib:
    description: Memory (MiB) of the shadow (what it boots with).
    type: int
    default: 2048
  storage:
    description:
      - libvirt only, the directory for the per-user overlay (default C(/var/lib/libvirt/images/shadowdesk/desktops)).
      - Proxmox VE refuses it, because a linked clone's disk always lives on the template's storage (PVE takes a
        target storage only for full clones).
    type: str
  network:
    description: libvirt network name or Proxmox VE bridge for the desktop's NIC. Omit for no NIC.
    type: str
  boot:
    description:
      - libvirt only, direct kernel boot (used by thin-client images and the test guests), with keys
        C(kernel), C(initrd) and C(cmdline).
    type: dict
  domain_type:
    description: libvirt only, the domain type. V(kvm) on hardware with virtualisation, V(qemu) for emulation (TCG).
    type: str
    choices: [kvm, qemu]
    default: kvm
  remove_storage:
    description:
      - With O(state=absent), also delete the desktop's own disk (overlay or linked-clone disk), which holds the
        user's data. Never deletes the golden image or template.
    type: bool
    default: false
  accept_lost_session:
    description:
      - When the desktop's last session is lost (C(desktop.lost_session) says why, for example its QEMU process
        crashed or its saved image is incomplete), allow O(state=saved) and O(state=paused) to boot a fresh
        session and keep that as the shadow.
      - Without it they fail and say what was lost, so a fresh boot is never saved as if it were the user's
        session. O(state=running) boots either way, with a warning.
    type: bool
    default: false
  discard_saved_state:
    description:
      - With O(state=stopped), allow dropping a saved RAM image (the user's open session). Without it, stopping a
        saved desktop fails instead of losing that state.
    type: bool
    default: false
seealso:
  - module: shadowdesk.vdi.desktop_resources
  - module: shadowdesk.vdi.desktop_state
  - module: shadowdesk.vdi.desktop_info
"""

EXAMPLES = r"""
- name: Keep alice's shadow saved (no RAM held) between sessions
  shadowdesk.vdi.shadow_vm:
    name: desk-alice
    user: alice
    source: /var/lib/libvirt/images/golden/win11-vdi.qcow2
    max_vcpus: 8
    max_memory_mib: 16384
    state: saved

- name: Wake it before her predicted login (restore, not a cold boot)
  shadowdesk.vdi.shadow_vm:
    name: desk-alice
    state: running

- name: The same on Proxmox VE, connection set once for the play
  module_defaults:
    group/shadowdesk.vdi.vdi:
      backend: proxmox
      api_host: pve1.example.com
      api_user: shadowdesk@pve
      api_token_id: shadowdesk
      api_token_secret: "{{ vault_pve_token }}"
  block:
    - name: Create bob's shadow as a linked clone of template 9000
      shadowdesk.vdi.shadow_vm:
        name: desk-bob
        user: bob
        source: "9000"
        state: saved

- name: Remove a departed user's desktop, keeping their disk
  shadowdesk.vdi.shadow_vm:
    name: desk-carol
    state: absent
"""

RETURN = r"""
desktop:
  description: Facts of the desktop after the run (predicted in check mode); C(state=absent) when removed.
  returned: always
  type: dict
  sample:
    name: desk-alice
    state: saved
    user: alice
    max_vcpus: 8
    max_memory_mib: 16384
    live: {vcpus: 1, memory_mib: 2048, cpu_limit: 0.0, net: {}, disk_io: {}, gpu: []}
    has_saved_state: true
steps:
  description: Lifecycle steps taken (or that would be taken in check mode), in order.
  returned: always
  type: list
  elements: str
  sample: [start]
timings:
  description: Seconds each step took, measured around the hypervisor call (empty in check mode).
  returned: always
  type: dict
  sample: {start: 0.61}
outcomes:
  description:
    - What a step did when there is more to say than its name, for example a graceful stop that ended in a power
      off because the guest ignored the ACPI shutdown (also given as a warning).
  returned: always
  type: dict
  sample: {stop: "destroyed: the guest ignored the ACPI shutdown for 20 s (its disk is kept)"}
"""

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.lifecycle import (
    lifecycle_steps, state_after,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import Conflict, InvalidInput, ShadowDeskError
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import STATE_SAVED, ShadowSpec
from ansible_collections.shadowdesk.vdi.plugins.module_utils._module_runtime import (
    StepTimer, build_module, run_with_backend,
)

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    user=dict(type="str"),
    state=dict(type="str", default="present",
               choices=["present", "running", "paused", "saved", "stopped", "absent"]),
    source=dict(type="str"),
    max_vcpus=dict(type="int", default=4),
    max_memory_mib=dict(type="int", default=8192),
    shadow_vcpus=dict(type="int", default=1),
    shadow_memory_mib=dict(type="int", default=2048),
    storage=dict(type="str"),
    network=dict(type="str"),
    boot=dict(type="dict"),
    domain_type=dict(type="str", default="kvm", choices=["kvm", "qemu"]),
    remove_storage=dict(type="bool", default=False),
    discard_saved_state=dict(type="bool", default=False),
    accept_lost_session=dict(type="bool", default=False),
)


def spec_from_params(params):
    """The ShadowSpec to create, after checking sizes make sense (shadow within full size)."""
    for key in ("source", "user"):
        if not params[key]:
            raise InvalidInput("Desktop %s does not exist; '%s' is required to create it." % (params["name"], key))
    if not 1 <= params["shadow_vcpus"] <= params["max_vcpus"]:
        raise InvalidInput("shadow_vcpus=%s must be between 1 and max_vcpus=%s"
                           % (params["shadow_vcpus"], params["max_vcpus"]))
    if not 128 <= params["shadow_memory_mib"] <= params["max_memory_mib"]:
        raise InvalidInput("shadow_memory_mib=%s must be between 128 and max_memory_mib=%s"
                           % (params["shadow_memory_mib"], params["max_memory_mib"]))
    return ShadowSpec(
        name=params["name"], user=params["user"], source=params["source"],
        max_vcpus=params["max_vcpus"], max_memory_mib=params["max_memory_mib"],
        shadow_vcpus=params["shadow_vcpus"], shadow_memory_mib=params["shadow_memory_mib"],
        node=params.get("node"), storage=params["storage"], network=params["network"],
        boot=dict(params["boot"] or {}), machine={"domain_type": params["domain_type"]},
    )


def plan_steps(params, facts):
    """The steps to take, refusing the ones that would touch another user's desktop, lose a saved session or keep
    a fresh boot as if it were the user's lost session."""
    if facts is not None and params["user"] and facts.user and facts.user != params["user"]:
        raise Conflict("Desktop %s belongs to user %s, not %s; refusing to manage it."
                       % (facts.name, facts.user, params["user"]), owner=facts.user)
    steps = lifecycle_steps(facts.state if facts else None, params["state"])
    if "discard_saved_state" in steps and not params["discard_saved_state"]:
        raise Conflict("Desktop %s holds a saved session; stopping it would discard that state. "
                       "Set discard_saved_state=true to allow it." % params["name"])
    lost = facts.lost_session if facts is not None else ""
    if lost and "start" in steps and params["state"] in ("saved", "paused") and not params["accept_lost_session"]:
        raise Conflict("Desktop %s lost its session: %s. Keeping a fresh boot as its %s shadow would pass it off as "
                       "the user's session; set accept_lost_session=true to boot a fresh one."
                       % (params["name"], lost, params["state"]), lost_session=lost)
    return steps


def apply_steps(backend, params, steps, timer, done, outcomes):
    """Run the steps in order; ``done`` collects the finished ones and ``outcomes`` what a step said."""
    name = params["name"]
    for step in steps:
        if step == "create":
            said = timer.run(step, backend.create, spec_from_params(params))
        elif step == "stop":
            said = timer.run(step, backend.stop, name, force=params["state"] == "absent")
        elif step == "remove":
            said = timer.run(step, backend.remove, name, remove_storage=params["remove_storage"])
        else:
            said = timer.run(step, getattr(backend, step), name)
        done.append(step)
        if step == "stop" and isinstance(said, str) and said.startswith("destroyed:"):
            outcomes[step] = said


def summary(name, facts):
    """The facts dict shown in results and diffs; ``state: absent`` for a desktop that does not exist."""
    return facts.to_dict() if facts is not None else {"name": name, "state": "absent"}


def predicted_summary(params, before, steps, facts):
    """What ``summary`` will show after ``steps`` (check mode), as far as it can be known without the run."""
    state = state_after(steps, facts.state if facts else None)
    if state is None:
        return {"name": params["name"], "state": "absent"}
    after = dict(before, state=state, has_saved_state=state == STATE_SAVED)
    if "start" in steps:
        after["lost_session"] = ""
    if facts is None:  # created: the full size is defined, the shadow size runs
        after.update(user=params["user"], max_vcpus=params["max_vcpus"], max_memory_mib=params["max_memory_mib"])
    return after


def report_failure(backend, params, exc, done, timer):
    """A failed run still says what it changed: the steps that finished and the desktop as it is now."""
    exc.details.update(changed=bool(done), steps=done, timings=timer.timings)
    try:
        exc.details["desktop"] = summary(params["name"], backend.get(params["name"]))
    except ShadowDeskError as again:
        exc.details["desktop_unknown"] = str(again)


def ensure_shadow(module, backend):
    params = module.params
    facts = backend.get(params["name"])
    steps = plan_steps(params, facts)
    if "create" in steps:
        backend.check_create(spec_from_params(params))  # the same checks as the real create, in check mode too
    before = summary(params["name"], facts)
    timer, done, outcomes = StepTimer(), [], {}
    if module.check_mode or not steps:
        after = predicted_summary(params, before, steps, facts)
    else:
        try:
            apply_steps(backend, params, steps, timer, done, outcomes)
        except ShadowDeskError as exc:
            report_failure(backend, params, exc, done, timer)
            raise
        after = summary(params["name"], backend.get(params["name"]))
    for text in outcomes.values():
        module.warn("Desktop %s: %s" % (params["name"], text))
    if facts is not None and facts.lost_session and "start" in steps:
        module.warn("Desktop %s lost its session (%s); it was booted fresh." % (params["name"], facts.lost_session))
    result = dict(changed=bool(steps), steps=steps, timings=timer.timings, desktop=after, outcomes=outcomes)
    if module._diff:
        result["diff"] = {"before": before, "after": after}
    return result


def main():
    module = build_module(ARGUMENT_SPEC)
    run_with_backend(module, lambda backend: ensure_shadow(module, backend))


if __name__ == "__main__":
    main()
