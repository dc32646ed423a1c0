"""Broker and hypervisor events through a real ansible-rulebook process, on real guests and the PVE stand-in.

One rulebook process per backend walks a user's day: bad broker requests change nothing; a broker ``connect``
wakes the saved shadow on the fast path (the answer says which path and how long) and the rulebook's playbook
raises it to full size; a broker ``disconnect`` saves it and releases its RAM; a console viewer leaving (libvirt
graphics event / Proxmox VE vncproxy task ending) runs the disconnect flow too.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.libvirt import LibvirtBackend
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import ShadowSpec
from integration.desks import SHADOW, LibvirtDesk, ProxmoxDesk
from integration.eda_rulebook import TOKEN, Rulebook, VncViewer, wait_until
from integration.module_runner import run_module
from integration.testbed import BASE_CMDLINE, guest_exec

# The rulebook runs the collection's own flows (playbooks/reconnect.yml, disconnect.yml). No plan exists for these
# users, so the reconnect raises the desktop to its maximum: that is its full size here.
FULL_VCPUS = SHADOW["max_vcpus"]

BAD_REQUESTS = [
    ("no token", {"user": "U", "action": "connect"}, None, "application/json", 401),
    ("wrong token", {"user": "U", "action": "connect"}, "x" * len(TOKEN), "application/json", 401),
    ("not JSON", b"{user: U", TOKEN, "application/json", 400),
    ("no user", {"action": "connect"}, TOKEN, "application/json", 400),
    ("template in user", {"user": "{{ lookup('pipe', 'id') }}", "action": "connect"}, TOKEN, "application/json",
     400),
    ("unknown action", {"user": "U", "action": "reboot"}, TOKEN, "application/json", 400),
    ("not JSON content", {"user": "U", "action": "connect"}, TOKEN, "text/plain", 415),
    ("too large", {"user": "U", "action": "connect", "pad": "x" * 9000}, TOKEN, "application/json", 413),
    ("someone else's desktop", {"user": "mallory", "action": "connect", "desktop": "D"}, TOKEN,
     "application/json", 400),
]


def send_bad_requests(rulebook, user, desktop):
    for label, payload, token, content_type, want in BAD_REQUESTS:
        if isinstance(payload, dict):
            payload = {k: (user if v == "U" else desktop if v == "D" else v) for k, v in payload.items()}
        status, answer = rulebook.post(payload, token=token, content_type=content_type)
        assert status == want, (label, status, answer)
        assert "error" in answer, (label, answer)


@pytest.mark.libvirt
@pytest.mark.playbook
def test_libvirt_broker_and_graphics_events_drive_the_flows(libvirt_testbed, tmp_path):
    tb = libvirt_testbed
    desk = LibvirtDesk(tb)
    name, user = desk.new_name(), "eda-" + tmp_path.name[-6:].replace("_", "")
    backend = LibvirtBackend({"uri": tb.uri})
    try:
        backend.create(ShadowSpec(
            name=name, user=user, source=tb.golden_image, storage=desk.storage, network=tb.network,
            boot={"kernel": tb.kernel, "initrd": tb.initrd, "cmdline": BASE_CMDLINE},
            machine={"domain_type": tb.domain_type, "graphics": "vnc"}, **SHADOW))
        backend.start(name)
        desk.wait_booted(name, timeout=300)  # TCG boot on a busy 2-core host
        backend.save(name)
        dom = desk.conn.lookupByName(name)
        assert dom.hasManagedSaveImage(0) and not dom.isActive()

        env = {"SHADOWDESK_BACKEND": "libvirt", "LIBVIRT_DEFAULT_URI": tb.uri,
               "SHADOWDESK_DATA_DIR": str(tmp_path / "data")}
        with Rulebook(tmp_path, env) as rulebook:
            send_bad_requests(rulebook, user, name)
            assert dom.hasManagedSaveImage(0) and not dom.isActive(), "a bad request changed the desktop"
            assert rulebook.events_received() == 0, rulebook.log()

            # connect: the fast path restores the saved shadow before answering
            console = desk.console(name)
            console.mark()
            status, answer = rulebook.post({"user": user, "action": "connect", "broker": "test"})
            assert status == 200, answer
            assert answer["path"] == "saved" and answer["desktop"] == name, answer
            assert dom.isActive() and not dom.hasManagedSaveImage(0)
            stat = console.wait_stat(120)
            assert stat["uptime"] > 1.0, "the restore cold-booted the guest: %s" % stat
            # ... and the rulebook's reconnect playbook raises it to full size; the guest itself sees the vCPUs
            console.wait_stat(180, cpus=FULL_VCPUS)
            wait_until(lambda: rulebook.plays_finished() >= 1, 120, "the reconnect play", rulebook.log)

            # the user's work: a file in the guest (its root is in RAM, so only the saved state can keep it)
            mark = tmp_path.name
            assert guest_exec(dom, ["/bin/sh", "-c", "echo %s > /root/work.txt && sync" % mark])[0] == 0

            # disconnect from the broker: saved, RAM released
            status, answer = rulebook.post({"user": user, "action": "disconnect", "desktop": name})
            assert status == 202, answer
            wait_until(lambda: not dom.isActive() and dom.hasManagedSaveImage(0), 180, "the managed save",
                       rulebook.log)

            # a console viewer: connect through the broker, attach a VNC client, leave -> the disconnect flow
            status, answer = rulebook.post({"user": user, "action": "connect", "desktop": name})
            assert status == 200 and answer["path"] == "saved", answer
            wait_until(lambda: rulebook.plays_finished() >= 3, 180, "the second reconnect play", rulebook.log)
            code, out, err = guest_exec(dom, ["/bin/cat", "/root/work.txt"])
            assert (code, out.strip()) == (0, mark), (code, out, err)
            port = int(ET.fromstring(dom.XMLDesc(0)).find("devices/graphics").get("port"))
            viewer = VncViewer("127.0.0.1", port)
            wait_until(lambda: rulebook.events_received() >= 4, 60, "the graphics connect event", rulebook.log)
            assert dom.isActive(), "a viewer attaching must not release the desktop"
            viewer.close()
            wait_until(lambda: not dom.isActive() and dom.hasManagedSaveImage(0), 180,
                       "the disconnect flow after the viewer left", rulebook.log)
            wait_until(lambda: rulebook.plays_running() == 0, 180, "the last play's end", rulebook.log)
            log = rulebook.full_log()
            assert rulebook.failed_plays() == [], rulebook.log()
        assert "'source': 'libvirt'" in log and "'action': 'disconnect'" in log, log[-6000:]
    finally:
        backend.close()
        desk.cleanup()


@pytest.mark.pve
@pytest.mark.playbook
def test_proxmox_broker_and_console_tasks_drive_the_flows(pve_stand_in, pve_api, tmp_path):
    desk = ProxmoxDesk(pve_stand_in)
    name, user = desk.new_name(), "eda-pve"
    created = run_module("shadow_vm", dict(desk.create_args(name, user), state="saved"))
    assert not created.failed, created.get("msg")
    vmid, vm = desk.vm_by_name(name)
    assert vm["status"] == "stopped" and vm["config"].get("vmstate"), vm

    connection = desk.connection
    env = {"SHADOWDESK_BACKEND": "proxmox", "PROXMOX_HOST": connection["api_host"],
           "PROXMOX_PORT": str(connection["api_port"]), "PROXMOX_USER": connection["api_user"],
           "PROXMOX_TOKEN_ID": connection["api_token_id"], "PROXMOX_TOKEN_SECRET": connection["api_token_secret"],
           "PROXMOX_CA_PATH": connection["ca_path"], "PROXMOX_NODE": "pve1",
           "SHADOWDESK_DATA_DIR": str(tmp_path / "data")}
    with Rulebook(tmp_path, env) as rulebook:
        send_bad_requests(rulebook, user, name)
        assert desk.vm_by_name(name)[1] == vm, "a bad request changed the VM"
        assert rulebook.events_received() == 0, rulebook.log()

        status, answer = rulebook.post({"user": user, "action": "connect"})
        assert status == 200 and answer["path"] == "saved" and answer["desktop"] == name, answer
        assert pve_stand_in.vm(vmid)["status"] == "running"
        wait_until(lambda: rulebook.plays_finished() >= 1, 120, "the reconnect play", rulebook.log)
        assert int(pve_stand_in.vm(vmid)["config"].get("vcpus", 0)) == FULL_VCPUS

        # a web-console viewer attaches (vncproxy task) and leaves -> the disconnect flow hibernates the VM
        upid = pve_api.nodes("pve1").qemu(vmid).vncproxy.post()["upid"]
        wait_until(lambda: rulebook.events_received() >= 2, 60, "the console connect event", rulebook.log)
        pve_stand_in.close_console(upid)
        wait_until(lambda: pve_stand_in.vm(vmid)["status"] == "stopped"
                   and pve_stand_in.vm(vmid)["config"].get("vmstate"), 120, "the disconnect flow", rulebook.log)
        wait_until(lambda: rulebook.plays_finished() >= 3 and rulebook.plays_running() == 0, 120,
                   "the three plays", rulebook.log)
        log = rulebook.full_log()
        assert rulebook.failed_plays() == [], rulebook.log()
    assert "'source': 'proxmox'" in log, log[-6000:]
