"""The hypervisor modules, run as real processes, against both backends from one suite.

libvirt: the real libvirtd with real QEMU guests (TCG); assertions read the guest's own serial console.
Proxmox VE: the schema-faithful stand-in (tests/stand_ins), whose state is read back.
"""

from __future__ import annotations

import json

import pytest
import trustme

from integration.desks import ProxmoxDesk
from integration.module_runner import run_module


def ok(result):
    assert not result.failed, result.get("msg")
    return result


def test_shadow_lifecycle_is_idempotent_and_never_touches_the_source(desk):
    name, source_before = desk.new_name(), desk.source_fingerprint()
    args = desk.create_args(name, "alice")

    created = ok(run_module("shadow_vm", dict(args, state="running")))
    assert created.changed and created["steps"] == ["create", "start"]
    assert created["desktop"]["state"] == "running"
    assert created["desktop"]["max_vcpus"] == 4 and created["desktop"]["live"]["vcpus"] == 1
    if desk.observes_guest:
        desk.wait_booted(name)
    assert not ok(run_module("shadow_vm", dict(args, state="running"))).changed

    saved = ok(run_module("shadow_vm", dict(args, state="saved")))
    assert saved.changed and saved["steps"] == ["save"] and saved["desktop"]["has_saved_state"]
    assert not ok(run_module("shadow_vm", dict(args, state="saved"))).changed

    woken = ok(run_module("shadow_vm", dict(desk.connection, name=name, state="running")))
    assert woken["steps"] == ["start"] and woken["desktop"]["state"] == "running"
    if desk.observes_guest:
        # a restore, not a cold boot: the guest's uptime carries on and no new READY marker appears
        console = desk.console(name)
        console.mark()
        stat = console.wait_stat(timeout=60)
        assert stat["uptime"] > 1.0

    paused = ok(run_module("shadow_vm", dict(desk.connection, name=name, state="paused")))
    assert paused["desktop"]["state"] == "paused"
    assert ok(run_module("shadow_vm", dict(desk.connection, name=name, state="running")))["steps"] == ["resume"]

    removed = ok(run_module("shadow_vm", dict(desk.connection, name=name, state="absent",
                                              remove_storage=desk.backend == "proxmox")))
    assert removed.changed and removed["desktop"]["state"] == "absent"
    assert not ok(run_module("shadow_vm", dict(desk.connection, name=name, state="absent"))).changed
    assert desk.source_fingerprint() == source_before
    if desk.backend == "libvirt":
        assert desk.disk_exists(name), "the user's disk must survive state=absent without remove_storage"


def test_check_mode_changes_nothing(desk):
    name = desk.new_name()
    args = desk.create_args(name, "bob")
    before = desk.state_fingerprint()
    predicted = ok(run_module("shadow_vm", dict(args, state="running"), check=True))
    assert predicted.changed and predicted["steps"] == ["create", "start"]
    assert predicted["diff"]["after"]["state"] == "running"
    assert desk.state_fingerprint() == before

    ok(run_module("shadow_vm", dict(args, state="running")))
    if desk.observes_guest:
        desk.wait_booted(name)
    before = desk.state_fingerprint()
    resize = ok(run_module("desktop_resources", dict(desk.connection, name=name, vcpus=3, memory_mib=384),
                           check=True))
    assert resize.changed and resize["diff"]["after"]["vcpus"] == 3
    save = ok(run_module("shadow_vm", dict(desk.connection, name=name, state="saved"), check=True))
    assert save.changed and save["steps"] == ["save"]
    snap = ok(run_module("desktop_state", dict(desk.connection, name=name, snapshot="s1", state="present"),
                         check=True))
    assert snap.changed and [x["name"] for x in snap["diff"]["after"]["snapshots"]] == ["s1"]
    assert snap["diff"]["before"]["snapshots"] == []
    assert desk.state_fingerprint() == before


def test_live_resize_reaches_the_guest_and_is_idempotent(desk):
    name = desk.new_name()
    ok(run_module("shadow_vm", dict(desk.create_args(name, "carol"), state="running")))
    if desk.observes_guest:
        desk.wait_booted(name)

    grown = ok(run_module("desktop_resources", dict(desk.connection, name=name, vcpus=2, memory_mib=384)))
    assert grown.changed
    assert {c["field"]: c["mode"] for c in grown["changes"]} == {"vcpus": "live", "memory_mib": "live"}
    assert grown["desktop"]["live"]["vcpus"] == 2 and grown["desktop"]["live"]["memory_mib"] == 384
    if desk.observes_guest:
        desk.guest_stat(name, cpus=2)
    again = ok(run_module("desktop_resources", dict(desk.connection, name=name, vcpus=2, memory_mib=384)))
    assert not again.changed and again["changes"] == []

    # scale down: a CPU limit, the online vCPUs stay
    down = ok(run_module("desktop_resources", dict(desk.connection, name=name, vcpus=1)))
    assert [(c["field"], c["after"]) for c in down["changes"]] == [("cpu_limit", 1.0)]
    assert down["desktop"]["live"]["vcpus"] == 2 and down["desktop"]["live"]["cpu_limit"] == 1.0
    assert not ok(run_module("desktop_resources", dict(desk.connection, name=name, vcpus=1))).changed

    # GPUs never hot-plug: pending while running, and a rerun is not a new change
    gpu = ok(run_module("desktop_resources", dict(desk.connection, name=name, gpu=["0000:65:00.0"])))
    assert gpu.changed and gpu["pending"] == ["gpu"]
    gpu_again = ok(run_module("desktop_resources", dict(desk.connection, name=name, gpu=["0000:65:00.0"])))
    assert not gpu_again.changed and gpu_again["pending"] == ["gpu"]


def test_staged_targets(desk):
    name = desk.new_name()
    ok(run_module("shadow_vm", dict(desk.create_args(name, "dave"), state="running")))
    stages = {"shadow": {"vcpus": 1, "memory_mib": 256}, "warm": {"vcpus": 2, "memory_mib": 320},
              "full": {"vcpus": 4, "memory_mib": 512}}
    for stage, vcpus in (("warm", 2), ("full", 4)):
        result = ok(run_module("desktop_resources", dict(desk.connection, name=name, stages=stages, stage=stage)))
        assert result.changed and result["desktop"]["live"]["vcpus"] == vcpus
    assert not ok(run_module("desktop_resources",
                             dict(desk.connection, name=name, stages=stages, stage="full"))).changed
    if desk.observes_guest:
        desk.guest_stat(name, cpus=4)


def test_saved_state_and_snapshots(desk):
    name = desk.new_name()
    ok(run_module("shadow_vm", dict(desk.create_args(name, "erin"), state="running")))
    if desk.observes_guest:
        desk.wait_booted(name)
    snap = ok(run_module("desktop_state", dict(desk.connection, name=name, snapshot="before", state="present")))
    assert snap.changed and [s["name"] for s in snap["snapshots"]] == ["before"]
    assert not ok(run_module("desktop_state",
                             dict(desk.connection, name=name, snapshot="before", state="present"))).changed

    saved = ok(run_module("desktop_state", dict(desk.connection, name=name, state="present")))
    assert saved["steps"] == ["save"] and saved["saved_state"]
    listed = ok(run_module("desktop_state", dict(desk.connection, name=name)))
    assert not listed.changed and listed["saved_state"]
    restored = ok(run_module("desktop_state", dict(desk.connection, name=name, state="restored")))
    assert restored["steps"] == ["start"] and restored["desktop"]["state"] == "running"

    dropped = ok(run_module("desktop_state", dict(desk.connection, name=name, snapshot="before", state="absent")))
    assert dropped.changed and dropped["snapshots"] == []


def test_stopping_a_saved_desktop_refuses_to_lose_the_session(desk):
    name = desk.new_name()
    ok(run_module("shadow_vm", dict(desk.create_args(name, "fay"), state="saved")))
    refused = run_module("shadow_vm", dict(desk.connection, name=name, state="stopped"))
    assert refused.failed and "discard_saved_state" in refused["msg"]
    info = ok(run_module("desktop_info", dict(desk.connection, name=name)))
    assert info["desktops"][0]["state"] == "saved", "the saved session must still be there"


def test_desktop_info_reports_utilisation(desk):
    name = desk.new_name()
    ok(run_module("shadow_vm", dict(desk.create_args(name, "gus"), state="running")))
    if desk.observes_guest:
        desk.wait_booted(name)
    info = ok(run_module("desktop_info", dict(desk.connection, name=name, utilisation=True, interval=0.5)))
    (facts,) = info["desktops"]
    assert facts["user"] == "gus" and facts["state"] == "running"
    assert 0.0 <= facts["utilisation"]["cpu_percent"] <= 100.0
    by_user = ok(run_module("desktop_info", dict(desk.connection, user="gus")))
    assert [d["name"] for d in by_user["desktops"]] == [name]


@pytest.mark.parametrize("args, message", [
    (dict(name="sdtest-missing", vcpus=2), "does not exist"),
    (dict(name="sdtest-missing", vcpus="many"), "vcpus"),
    (dict(name="sdtest-missing"), "Nothing to do"),
])
def test_bad_input_fails_cleanly(desk, args, message):
    result = run_module("desktop_resources", dict(desk.connection, **args))
    assert result.failed and message in result["msg"]


def test_over_maximum_fails_and_changes_nothing(desk):
    name = desk.new_name()
    ok(run_module("shadow_vm", dict(desk.create_args(name, "hal"), state="running")))
    before = desk.state_fingerprint()
    result = run_module("desktop_resources", dict(desk.connection, name=name, vcpus=16))
    assert result.failed and "maximum vCPUs" in result["msg"]
    assert desk.state_fingerprint() == before


def test_creating_needs_a_source_and_refuses_another_users_desktop(desk):
    name = desk.new_name()
    missing = run_module("shadow_vm", dict(desk.connection, name=name, user="ivy", state="running"))
    assert missing.failed and "'source' is required" in missing["msg"]
    ok(run_module("shadow_vm", dict(desk.create_args(name, "ivy"), state="present")))
    other = run_module("shadow_vm", dict(desk.connection, name=name, user="mallory", state="running"))
    assert other.failed and "belongs to user ivy" in other["msg"]


def test_hypervisor_down_is_a_clear_error(desk):
    if desk.backend == "libvirt":
        conn = dict(desk.connection, uri="qemu+unix:///system?socket=/nonexistent/libvirt-sock")
    else:
        conn = dict(desk.connection, api_port=1)  # nothing listens on port 1 of loopback
    result = run_module("desktop_info", conn)
    assert result.failed and result["error_type"] == "BackendUnavailable"


@pytest.fixture
def pve_desk(pve_stand_in):
    face = ProxmoxDesk(pve_stand_in)
    yield face
    face.cleanup()


@pytest.mark.pve
def test_proxmox_failures_reach_the_user_as_clear_messages(pve_desk, tmp_path):
    pve, name = pve_desk.pve, pve_desk.new_name()
    ok(run_module("shadow_vm", dict(pve_desk.create_args(name, "kim"), state="running")))
    vmid, _vm = pve_desk.vm_by_name(name)
    conn = pve_desk.connection

    # a lock that is not released within the retry budget
    pve.hold_lock(vmid, lock="backup", seconds=None)
    locked = run_module("desktop_resources", dict(conn, name=name, vcpus=2, api_timeout=3))
    assert locked.failed and "backup" in locked["msg"]
    pve.release_lock(vmid)
    assert ok(run_module("desktop_resources", dict(conn, name=name, vcpus=2)))["desktop"]["live"]["vcpus"] == 2

    # a task that ends with an error: nothing is lost, the desktop is still there and running
    pve.fail_next_task("qmsuspend", exitstatus="unable to save VM state - disk full")
    failed = run_module("shadow_vm", dict(conn, name=name, state="saved"))
    assert failed.failed and "disk full" in failed["msg"]
    assert ok(run_module("desktop_info", dict(conn, name=name)))["desktops"][0]["state"] == "running"

    # an HTTP 500 from the API
    pve.fail_next_request(r"/status/current$", status=500, message="got timeout")
    broken = run_module("desktop_info", dict(conn, name=name))
    assert broken.failed and ("500" in broken["msg"] or "got timeout" in broken["msg"])

    # TLS against a CA that did not sign the server's certificate
    wrong_ca = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(wrong_ca))
    tls = run_module("desktop_info", dict(conn, ca_path=str(wrong_ca)))
    assert tls.failed and tls["error_type"] == "BackendUnavailable" and "certificate" in tls["msg"].lower()

    # the secret never appears in what the module returns
    assert conn["api_token_secret"] not in json.dumps(tls)
