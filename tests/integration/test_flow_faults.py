"""Faults injected into the session flows (issue 7): the disconnect playbook on a real libvirtd/QEMU guest and on
the PVE stand-in, through real ansible-playbook runs.

What must hold whatever breaks: nothing is released before the user's state is saved, the error says what to do,
a rerun converges, and the user's disk and what they wrote inside the guest survive.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import time

import pytest
import yaml

from integration.desks import LibvirtDesk, ProxmoxDesk
from integration.flows import result_fact, run_playbook
from integration.module_runner import run_module
from integration.testbed import guest_exec

ROOT = pathlib.Path(__file__).resolve().parents[2]
LIBVIRTD_PID = pathlib.Path("/run/libvirtd.pid")
SAVE_DIR = pathlib.Path("/var/lib/libvirt/qemu/save")  # where libvirt's QEMU driver keeps managed-save images
FULL = {"vcpus": 2, "memory_mib": 512}
SHADOW = {"vcpus": 1, "memory_mib": 256}
MARKER = "/root/sd-fault-marker"


def flow_vars(connection, data_dir, name, **extra):
    return dict({"user": "alice", "desktop": name, "shadowdesk_data_dir": str(data_dir),
                 "shadowdesk_connection": connection, "shadowdesk_reconnect_full": FULL,
                 "shadowdesk_disconnect_shadow": SHADOW}, **extra)


def info(connection, name):
    return run_module("desktop_info", dict(connection, name=name))["desktops"][0]


def assert_clear_failure(run, *phrases):
    assert run.rc != 0, run.output[-4000:]
    assert "Traceback" not in run.output, run.output[-6000:]
    for phrase in phrases:
        assert phrase in run.output, (phrase, run.output[-4000:])


# -- libvirt ------------------------------------------------------------------------------------------------------
@pytest.fixture
def lv_desk(libvirt_testbed):
    face = LibvirtDesk(libvirt_testbed)
    yield face
    face.cleanup()


def working_session(desk, tmp_path, data_dir):
    """A user's desktop at full size after a reconnect, with a file the user wrote inside the guest."""
    name = desk.new_name()
    created = run_module("shadow_vm", dict(desk.create_args(name, "alice"), state="running"))
    assert not created.failed, created.get("msg")
    desk.wait_booted(name, timeout=300)
    run_playbook("reconnect", tmp_path, flow_vars(desk.connection, data_dir, name)).ok()
    dom = desk.conn.lookupByName(name)
    code, _out, err = guest_exec(dom, ["/bin/sh", "-c", "echo user-work > %s && sync" % MARKER])
    assert code == 0, err
    return name


def marker_survived(desk, name):
    dom = desk.testbed.connect().lookupByName(name)
    code, out, err = guest_exec(dom, ["/bin/cat", MARKER])
    return code == 0 and out.strip() == "user-work", (code, out, err)


@pytest.mark.libvirt
@pytest.mark.playbook
def test_a_failing_save_releases_nothing_and_a_rerun_converges(lv_desk, tmp_path):
    data_dir = tmp_path / "data"
    name = working_session(lv_desk, tmp_path, data_dir)
    # The managed-save image cannot be written (a directory stands where libvirt writes it: what an unwritable or
    # full save area looks like to the flow), for this desktop only.
    blocker = SAVE_DIR / ("%s.save" % name)
    blocker.mkdir()
    try:
        failed = run_playbook("disconnect", tmp_path, flow_vars(lv_desk.connection, data_dir, name))
        assert_clear_failure(failed, "Nothing was released", "rerun")
        facts = info(lv_desk.connection, name)
        assert facts["state"] == "running" and facts["live"]["vcpus"] == FULL["vcpus"], facts
        assert not facts["has_saved_state"], facts
    finally:
        shutil.rmtree(blocker, ignore_errors=True)
    assert lv_desk.disk_exists(name)

    run_playbook("disconnect", tmp_path, flow_vars(lv_desk.connection, data_dir, name)).ok()
    assert info(lv_desk.connection, name)["state"] == "saved"
    back = run_playbook("reconnect", tmp_path, flow_vars(lv_desk.connection, data_dir, name)).ok()
    assert result_fact(back, "reconnect_result")["path"] == "saved"
    ok, detail = marker_survived(lv_desk, name)
    assert ok, detail


def libvirtd_pid():
    return int(LIBVIRTD_PID.read_text().strip())


def restart_libvirtd():
    subprocess.run(["bash", str(ROOT / "scripts" / "testbed" / "start_libvirtd.sh")], check=True,
                   capture_output=True, timeout=120)


def wait_for_save_job(dom, proc, timeout=120.0):
    """Block until libvirt runs the managed-save job of ``dom`` (or the playbook ended without one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if dom.jobInfo()[0] != 0:  # VIR_DOMAIN_JOB_NONE
                return True
        except Exception:  # pylint: disable=broad-except  # the domain's job query may race the job's start
            pass
        time.sleep(0.005)
    return False


@pytest.mark.libvirt
@pytest.mark.playbook
@pytest.mark.disruptive  # kills the shared libvirtd: never in parallel with other libvirt tests
def test_libvirtd_killed_during_a_disconnect_then_a_rerun_converges(lv_desk, tmp_path):
    data_dir = tmp_path / "data"
    name = working_session(lv_desk, tmp_path, data_dir)
    dom = lv_desk.conn.lookupByName(name)
    # Dirty 180 MiB of guest RAM (its root is a RAM disk of half the 512 MiB) so the save takes seconds, long
    # enough to kill the daemon in the middle of it.
    fill = "dd if=/dev/urandom of=/root/fill bs=1M count=180 2>/dev/null"
    code, _out, err = guest_exec(dom, ["/bin/sh", "-c", fill], timeout=300)
    assert code == 0, err

    vars_file = tmp_path / "disconnect-vars.yml"
    vars_file.write_text(yaml.safe_dump(flow_vars(lv_desk.connection, data_dir, name)))
    argv = [str(pathlib.Path(os.environ.get("VIRTUAL_ENV", "")) / "bin" / "ansible-playbook")
            if os.environ.get("VIRTUAL_ENV") else "ansible-playbook",
            "shadowdesk.vdi.disconnect", "-e", "@%s" % vars_file]
    proc = subprocess.Popen(argv, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    try:
        assert wait_for_save_job(dom, proc), "the disconnect never started a save job"
        os.kill(libvirtd_pid(), signal.SIGKILL)
        output = proc.communicate(timeout=300)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
        restart_libvirtd()
    assert proc.returncode != 0, output[-4000:]
    assert "Traceback" not in output, output[-6000:]
    assert "Nothing was released" in output and "rerun" in output, output[-4000:]

    lv_desk.conn = lv_desk.testbed.connect()  # the old connection died with the daemon
    assert lv_desk.disk_exists(name)
    rerun = run_playbook("disconnect", tmp_path, flow_vars(lv_desk.connection, data_dir, name)).ok()
    assert "released (saved)" in rerun.stdout
    assert info(lv_desk.connection, name)["state"] == "saved"
    back = run_playbook("reconnect", tmp_path, flow_vars(lv_desk.connection, data_dir, name)).ok()
    assert result_fact(back, "reconnect_result")["path"] == "saved"
    ok, detail = marker_survived(lv_desk, name)
    assert ok, detail


# -- Proxmox VE stand-in ------------------------------------------------------------------------------------------
@pytest.mark.pve
@pytest.mark.playbook
def test_proxmox_500_and_a_held_lock_fail_clearly_and_a_rerun_converges(pve_stand_in, tmp_path):
    desk = ProxmoxDesk(pve_stand_in)
    connection = dict(desk.connection, lock_timeout=2)
    data_dir = tmp_path / "data"
    name = desk.new_name()
    created = run_module("shadow_vm", dict(desk.create_args(name, "alice"), state="running"))
    assert not created.failed, created.get("msg")
    run_playbook("reconnect", tmp_path, flow_vars(connection, data_dir, name)).ok()
    vmid, vm = desk.vm_by_name(name)
    assert vm["status"] == "running"
    disk_before = {k: v for k, v in vm["config"].items() if k.startswith(("scsi", "virtio", "sata", "ide"))}

    # PVE answers the hibernate request with a 500.
    pve_stand_in.fail_next_request(r"/qemu/%d/status/suspend$" % vmid, 500, "unable to open file - Input/output error")
    failed = run_playbook("disconnect", tmp_path, flow_vars(connection, data_dir, name))
    assert_clear_failure(failed, "Nothing was released", "Input/output error")
    vm = pve_stand_in.vm(vmid)
    assert vm["status"] == "running" and not vm["config"].get("vmstate"), vm
    assert int(vm["config"].get("vcpus", 0)) == FULL["vcpus"], vm["config"]

    # A backup holds the VM's lock longer than the flow waits.
    pve_stand_in.hold_lock(vmid, "backup", seconds=None)
    try:
        locked = run_playbook("disconnect", tmp_path, flow_vars(connection, data_dir, name))
        assert_clear_failure(locked, "Nothing was released", "locked (backup)")
        assert pve_stand_in.vm(vmid)["status"] == "running"
    finally:
        pve_stand_in.release_lock(vmid)

    run_playbook("disconnect", tmp_path, flow_vars(connection, data_dir, name)).ok()
    vm = pve_stand_in.vm(vmid)
    assert vm["status"] == "stopped" and vm["config"].get("vmstate"), vm
    assert {k: v for k, v in vm["config"].items() if k in disk_before} == disk_before  # the disk is untouched
    again = run_playbook("disconnect", tmp_path, flow_vars(connection, data_dir, name)).ok()
    assert pve_stand_in.vm(vmid)["config"].get("vmstate") == vm["config"]["vmstate"] and again.changed <= 1
