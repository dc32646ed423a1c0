"""Turning hypervisor answers into the in-use signal (pure parts of the libvirt and Proxmox VE backends)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _libvirt_activity as lva
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _pve_activity as pva

LIVE_XML = """<domain><devices>
  <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0' state='connected'/></channel>
  <graphics type='vnc' port='5900'/><graphics type='spice' port='5901'/>
</devices></domain>"""


def test_graphics_and_agent_channel_from_the_live_xml():
    root = ET.fromstring(LIVE_XML)
    assert lva.graphics_kinds(root) == ["spice", "vnc"]
    assert lva.agent_connected(root) is True
    assert lva.agent_connected(ET.fromstring(LIVE_XML.replace("connected", "disconnected"))) is False
    assert lva.agent_connected(ET.fromstring("<domain><devices/></domain>")) is None


def test_qmp_clients():
    vnc = json.dumps({"return": {"enabled": True, "clients": [
        {"host": "127.0.0.1", "service": "40002", "family": "ipv4", "websocket": False}]}})
    assert lva.consoles_from_qmp("vnc", vnc) == [{"kind": "vnc", "client": "127.0.0.1:40002", "since": None}]
    channels = [{"host": "127.0.0.1", "port": "40010", "channel-type": kind} for kind in (1, 2)]
    spice = json.dumps({"return": {"enabled": True, "channels": channels}})
    assert len(lva.consoles_from_qmp("spice", spice)) == 1, "one client, several SPICE channels"
    assert lva.consoles_from_qmp("vnc", json.dumps({"return": {"enabled": True, "clients": []}})) == []


def test_guest_info_users():
    info = {"user.count": 2, "user.0.name": "alice", "user.0.login-time": 1763280000000,
            "user.1.name": "root"}
    assert lva.users_from_guest_info(info) == [{"user": "alice", "login_time": "2025-11-16T08:00:00Z"},
                                               {"user": "root", "login_time": None}]


def test_pve_console_tasks_and_agent():
    tasks = [{"type": "vncproxy", "user": "alice@pve", "starttime": 1763280000, "upid": "UPID:x"},
             {"type": "qmstart", "user": "root@pam", "starttime": 1763280000},
             {"type": "termproxy", "user": "bob@pve", "starttime": 1763280000, "endtime": 1763280100}]
    assert pva.consoles_of(tasks) == [{"kind": "vncproxy", "client": "alice@pve", "since": "2025-11-16T08:00:00Z"}]
    assert pva.agent_enabled({"agent": "1"}) and pva.agent_enabled({"agent": "enabled=1,fstrim_cloned_disks=1"})
    assert not pva.agent_enabled({"agent": "0"}) and not pva.agent_enabled({})
    assert pva.agent_users_of({"result": [{"user": "alice", "login-time": 1763280000.5}]}) == [
        {"user": "alice", "login_time": "2025-11-16T08:00:00Z"}]
