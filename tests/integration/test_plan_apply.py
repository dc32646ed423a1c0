"""plan_apply, run as a real process: many desktops in one call, each isolated, on both backends.

libvirt: the real libvirtd with real QEMU guests (the guest itself reports the hot-added vCPUs);
Proxmox VE: the schema-faithful stand-in (a held lock on one VM fails only that desktop).
"""

from __future__ import annotations

import json

import pytest

from integration.desks import ProxmoxDesk
from integration.module_runner import run_module

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _pve_config as pc
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import ShadowSpec

STAGES = {"shadow": {"vcpus": 1, "memory_mib": 256}, "full": {"vcpus": 4, "memory_mib": 512}}


def ok(result):
    assert not result.failed, result.get("msg")
    return result


def action(name, user, state, stage):
    return dict(desktop=name, user=user, state=state, stage=stage, stages=STAGES)


def test_one_call_wakes_and_releases_many_desktops_and_isolates_failures(desk):
    wake, release = desk.new_name(), desk.new_name()
    ok(run_module("shadow_vm", dict(desk.create_args(wake, "alice"), state="running")))
    ok(run_module("shadow_vm", dict(desk.create_args(release, "bob"), state="running")))
    if desk.observes_guest:  # the guest must be up before it is saved, so its restore can report the hot-plug
        desk.wait_booted(wake, timeout=300)
    ok(run_module("shadow_vm", dict(desk.connection, name=wake, state="saved")))
    actions = [action(wake, "alice", "running", "full"), action(release, "bob", "saved", "shadow"),
               action("sdtest-nobody", "zed", "running", "full"), action(release, "mallory", "running", "full")]
    args = dict(desk.connection, actions=actions)

    before = desk.state_fingerprint()
    predicted = run_module("plan_apply", args, check=True)
    assert desk.state_fingerprint() == before, "check mode changed something"
    assert predicted.failed and predicted["failed_desktops"] == ["sdtest-nobody", release]
    assert [r["steps"] for r in predicted["desktops"][:2]] == [["start"], ["save"]]
    assert predicted["diff"]["after"][wake]["state"] == "running"

    applied = run_module("plan_apply", args)
    assert applied.failed and applied.changed, "the task fails at the end, after the others were applied"
    assert "2 of 4 desktops failed" in applied["msg"]
    assert applied["summary"] == {"desktops": 4, "changed": 2, "unchanged": 0, "failed": 2}
    woken, released, missing, foreign = applied["desktops"]
    assert woken["steps"] == ["start"] and woken["after"]["resources"]["vcpus"] == 4
    assert {c["field"]: c["mode"] for c in woken["changes"]} == {"vcpus": "live", "memory_mib": "live"}
    assert released["steps"] == ["save"] and released["after"]["state"] == "saved"
    assert missing["error_type"] == "DesktopNotFound" and "does not exist" in missing["msg"]
    assert foreign["error_type"] == "Conflict" and "belongs to user bob" in foreign["msg"]
    info = ok(run_module("desktop_info", dict(desk.connection, name=wake)))["desktops"][0]
    assert info["state"] == "running" and info["live"]["vcpus"] == 4 and info["live"]["memory_mib"] == 512
    if desk.observes_guest:
        desk.guest_stat(wake, timeout=180, cpus=4)  # the guest itself sees the hot-added vCPUs

    rerun = ok(run_module("plan_apply", dict(desk.connection, actions=actions[:2])))
    assert not rerun.changed and rerun["summary"]["unchanged"] == 2


@pytest.mark.pve
def test_a_locked_vm_fails_alone_and_a_down_cluster_fails_fast(pve_stand_in):
    desk = ProxmoxDesk(pve_stand_in)
    names = [desk.new_name(), desk.new_name(), desk.new_name()]
    for index, name in enumerate(names):  # shadows as shadow_vm leaves them (its own tests cover creating them)
        spec = ShadowSpec(name=name, user="u%d" % index, source="9000", max_vcpus=4, max_memory_mib=512,
                          shadow_memory_mib=256)
        pve_stand_in.add_vm("pve%d" % (1 + index % 2), 200 + index, name,
                            **pc.shadow_config(spec, {}, "2026-11-23T07:00:00Z"))
    locked_vmid, _vm = desk.vm_by_name(names[1])
    pve_stand_in.hold_lock(locked_vmid, lock="backup", seconds=None)
    actions = [action(name, "u%d" % i, "running", "full") for i, name in enumerate(names)]
    listings = len(pve_stand_in.requests("GET", r"/cluster/resources$"))

    result = run_module("plan_apply", dict(desk.connection, actions=actions,
                                           fail_on_desktop_error=False))
    assert not result.failed and result["failed_desktops"] == [names[1]]
    assert "backup" in result["desktops"][1]["msg"]
    for name in (names[0], names[2]):
        vm = desk.vm_by_name(name)[1]
        assert vm["status"] == "running" and vm["config"]["vcpus"] == "4"
    assert desk.vm_by_name(names[1])[1]["status"] == "stopped", "the locked VM was not touched"
    # the cluster listing is read once for the batch, not once per desktop
    assert len(pve_stand_in.requests("GET", r"/cluster/resources$")) == listings + 1

    down = run_module("plan_apply", dict(desk.connection, actions=actions, api_port=1))
    assert down.failed and down["error_type"] == "BackendUnavailable"
    assert desk.connection["api_token_secret"] not in json.dumps(down)


@pytest.mark.pve
def test_a_wake_moves_the_shadow_to_the_planned_node_or_says_why_not(pve_stand_in):
    desk = ProxmoxDesk(pve_stand_in)
    moved, kept = desk.new_name(), desk.new_name()
    for index, name in enumerate((moved, kept)):
        spec = ShadowSpec(name=name, user="u%d" % index, source="9000", max_vcpus=4, max_memory_mib=512,
                          shadow_memory_mib=256)
        pve_stand_in.add_vm("pve1", 300 + index, name, **pc.shadow_config(spec, {}, "2026-11-23T07:00:00Z"))
    actions = [dict(action(name, "u%d" % i, "running", "full"), node="pve2") for i, name in enumerate((moved, kept))]
    args = dict(desk.connection, actions=actions)

    before = desk.state_fingerprint()
    predicted = ok(run_module("plan_apply", args, check=True))
    assert desk.state_fingerprint() == before, "check mode changed something"
    assert [r["steps"] for r in predicted["desktops"]] == [["migrate", "start"]] * 2

    pve_stand_in.fail_next_task("qmigrate", "migration aborted: no space on target storage", vmid=301)
    applied = ok(run_module("plan_apply", args))
    first, second = applied["desktops"]
    assert first["steps"] == ["migrate", "start"] and first["node"] == "pve2" and "node_kept" not in first
    assert second["steps"] == ["start"] and second["node"] == "pve1" and not second["failed"]
    assert "not moved to the planned pve2" in second["node_kept"] and "no space" in second["node_kept"]
    for name, node in ((moved, "pve2"), (kept, "pve1")):
        vmid, vm = desk.vm_by_name(name)
        assert pve_stand_in.vms[vmid].node == node and vm["status"] == "running" and vm["config"]["vcpus"] == "4"

    rerun = ok(run_module("plan_apply", dict(desk.connection, actions=actions[:1])))
    assert not rerun.changed
