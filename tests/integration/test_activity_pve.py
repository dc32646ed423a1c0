"""The in-use signal on Proxmox VE (stand-in, real HTTPS and PVE's schema): running console proxy tasks and the
guest agent's get-users, through the backend and the desktop_activity module run as a real process."""

from __future__ import annotations

import time

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.proxmox import ProxmoxBackend
from integration.desks import ProxmoxDesk
from integration.module_runner import run_module

pytestmark = pytest.mark.pve


@pytest.fixture
def desk(pve_stand_in):
    return ProxmoxDesk(pve_stand_in)


def running_desktop(desk):
    name = desk.new_name()
    created = run_module("shadow_vm", dict(desk.create_args(name, "alice"), state="running"))
    assert not created.failed, created.get("msg")
    return name, desk.vm_by_name(name)[0]


def test_console_proxy_tasks_and_agent_users_are_the_in_use_signal(desk, pve_stand_in, pve_api):
    name = desk.new_name()
    created = run_module("shadow_vm", dict(desk.create_args(name, "alice"), state="present"))
    assert not created.failed, created.get("msg")
    vmid = desk.vm_by_name(name)[0]
    pve_api.nodes("pve1").qemu(vmid).config.put(agent="enabled=1")  # qemu-server reads it at start
    with ProxmoxBackend(dict(desk.connection, api_timeout=10)) as backend:
        assert backend.activity(name)["agent"] == "desktop not running"
        backend.start(name)
        idle = backend.activity(name)
        assert idle == {"state": "running", "consoles": [], "agent": "no answer", "agent_users": []}

        # a noVNC console opened through the API, as the PVE web UI does
        answer = pve_api.nodes("pve1").qemu(vmid).vncproxy.post(websocket=1)
        busy = backend.activity(name)
        assert [c["kind"] for c in busy["consoles"]] == ["vncproxy"]
        assert busy["consoles"][0]["client"] == answer["user"]
        pve_stand_in.close_console(answer["upid"])
        assert backend.activity(name)["consoles"] == []

        # the agent in the guest starts answering
        pve_stand_in.set_agent_users(vmid, [{"user": "alice", "login-time": time.time() - 60}])
        agent = backend.activity(name)
        assert agent["agent"] == "answered" and agent["agent_users"][0]["user"] == "alice"

        backend.save(name)
        assert backend.activity(name) == {"state": "saved", "consoles": [], "agent": "desktop not running",
                                          "agent_users": []}


def test_desktop_activity_module_keeps_a_desktop_with_a_console_and_frees_one_without(desk, pve_stand_in):
    name, vmid = running_desktop(desk)
    upid = pve_stand_in.open_console(vmid, "spiceproxy", user="alice@pve")
    kept = run_module("desktop_activity", dict(desk.connection, name=name, woken_at="2026-11-16T06:00:00Z"))
    assert not kept.failed and not kept.changed, kept.get("msg")
    assert kept["in_use"] and not kept["release_allowed"] and kept["activity"]["agent"] == "not configured"
    assert "spiceproxy console connected from alice@pve" in kept["reasons"][0]
    pve_stand_in.close_console(upid)
    free = run_module("desktop_activity", dict(desk.connection, name=name, woken_at="2026-11-16T06:00:00Z"))
    assert free["release_allowed"] and not free["in_use"] and free["reasons"] == []


def test_desktop_activity_clear_errors(desk, pve_stand_in):
    missing = run_module("desktop_activity", dict(desk.connection, name="sdtest-nobody"))
    assert missing.failed and "sdtest-nobody" in missing["msg"] and "Traceback" not in str(missing)
    name, _vmid = running_desktop(desk)
    pve_stand_in.fail_next_request(r"/tasks$", status=500, message="cluster not ready - no quorum?")
    down = run_module("desktop_activity", dict(desk.connection, name=name))
    assert down.failed and "no quorum" in down["msg"], down
