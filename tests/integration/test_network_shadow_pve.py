"""network_shadow on Proxmox VE: the module as a real process against the stand-in (every request checked against
PVE's schema, firewall semantics of pve-firewall): net1 + rate, cluster IP sets, VM rules, idempotence, check mode,
teardown that leaves nothing, shared sets, refusals before any change.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from module_runner import COLLECTIONS, run_module

pytestmark = pytest.mark.pve

BRIDGE = "vmbr9"
NETSET = """# FireHOL-style list: bogons (exempt by default) and two real ranges
10.0.0.0/8
192.168.0.0/16
198.51.100.0/24
203.0.113.7
2001:db8:dead::/48
"""


@pytest.fixture
def pve(pve_stand_in):
    pve_stand_in.firewall.cluster_options["enable"] = 1   # the datacenter firewall is on
    for vmid, name in ((120, "desk-net-a"), (121, "desk-net-b")):
        pve_stand_in.add_vm("pve1", vmid, name, status="running", net0="virtio,bridge=vmbr0",
                            hotplug="network,disk,usb", tags="shadowdesk")
    return pve_stand_in


def connection(pve):
    return {"backend": "proxmox", "api_host": pve.host, "api_port": pve.port, "api_user": pve.token_user,
            "api_token_id": pve.token_name, "api_token_secret": pve.token_value, "ca_path": pve.ca_path,
            "api_timeout": 30}


@pytest.fixture
def netset(tmp_path):
    path = tmp_path / "firehol_level1.netset"
    path.write_text(NETSET)
    return str(path)


def args(pve, name, netset=None, **extra):
    values = dict(connection(pve), name=name, bridge=BRIDGE, rate_mbit=100)
    if netset:
        values["block"] = {"netsets": [{"name": "firehol_level1", "path": netset}],
                           "destinations": [{"cidr": "192.0.2.66", "reason": "forecast:far off the prediction"}]}
    values.update(extra)
    return values


def ok(result):
    assert not result.failed, result.get("msg")
    return result


def writes(pve, since):
    return [r for r in pve.requests()[since:] if r["method"] != "GET"]


def test_setup_rerun_check_mode_and_teardown(pve, netset):
    before = pve.snapshot_state()
    planned = ok(run_module("network_shadow", args(pve, "desk-net-a", netset), check=True))
    assert planned.changed and planned["steps"] == ["attach_nic", "fill_ipsets", "block", "firewall_on"]
    assert pve.snapshot_state() == before and not writes(pve, 0)

    mark = len(pve.requests())
    done = ok(run_module("network_shadow", args(pve, "desk-net-a", netset)))
    assert done.changed and done["steps"] == planned["steps"]
    assert all(r["status"] == 200 for r in pve.requests()[mark:]), [r for r in pve.requests()[mark:]
                                                                    if r["status"] != 200]
    state = pve.snapshot_state()
    vm, fw = state["vms"][120], state["firewall"]
    assert vm["config"]["net0"] == before["vms"][120]["config"]["net0"]      # the primary NIC is never touched
    net1 = dict(part.split("=", 1) for part in vm["config"]["net1"].split(","))
    assert net1["bridge"] == BRIDGE and net1["firewall"] == "1" and net1["rate"] == "12.5"   # MB/s
    assert net1["virtio"] == done["nic"]["mac"] and not vm["pending"]
    # private ranges exempt; host entries stored without /32 as PVE does
    sets = {s["reason"]: s for s in done["blocked"]}
    listed = fw["ipsets"][sets["blocklist:firehol_level1"]["name"]]
    assert sorted(e["cidr"] for e in listed) == ["198.51.100.0/24", "2001:db8:dead::/48", "203.0.113.7"]
    assert fw["ipsets"][sets["forecast:far off the prediction"]["name"]] == [{"cidr": "192.0.2.66"}]
    rules = fw["vms"][120]["rules"]
    assert len(rules) == 4 and all(r["action"] == "DROP" and r["enable"] == 1 and r["log"] == "info"
                                   for r in rules)
    assert {r.get("dest") or r.get("source") for r in rules} == {"+dc/" + s["name"] for s in done["blocked"]}
    assert fw["vms"][120]["options"] == {"enable": 1}
    assert done["shaping"]["how"] == "interface_rate" and done["shaping"]["per_destination"] is False
    assert done["interfaces"] == ["net1"] and done["diff"]["before"]["nic"] is None

    mark = len(pve.requests())
    again = ok(run_module("network_shadow", args(pve, "desk-net-a", netset)))
    assert not again.changed and again["steps"] == [] and not writes(pve, mark)
    assert pve.snapshot_state() == state

    assert ok(run_module("network_shadow", args(pve, "desk-net-a", state="absent"), check=True)).changed
    assert pve.snapshot_state() == state
    gone = ok(run_module("network_shadow", args(pve, "desk-net-a", state="absent")))
    assert gone["steps"] == ["unblock", "firewall_off", "release_ipsets", "detach_nic"]
    assert sorted(gone["ipsets_released"]) == sorted(s["name"] for s in done["blocked"])
    assert pve.snapshot_state() == before                      # nothing left behind: net1, rules, sets, option
    assert not ok(run_module("network_shadow", args(pve, "desk-net-a", state="absent"))).changed


def test_rate_and_reservations_change_only_the_nic(pve):
    ok(run_module("network_shadow", args(pve, "desk-net-a")))
    mark = len(pve.requests())
    reserved = [{"name": "web-office", "destinations": ["52.96.0.0/14"], "rate_mbit": 40}]
    result = ok(run_module("network_shadow", args(pve, "desk-net-a", rate_mbit=80, reservations=reserved)))
    assert result["steps"] == ["update_nic"]
    assert [r["path"] for r in writes(pve, mark)] == ["/nodes/pve1/qemu/120/config"]
    assert "rate=10" in pve.vm(120)["config"]["net1"]
    assert result["shaping"]["reservations"] == [{"name": "web-office", "cidrs": ["52.96.0.0/14"], "rate_mbit": 40.0,
                                                  "shaped": False}]
    too_much = run_module("network_shadow", args(pve, "desk-net-a", rate_mbit=10, reservations=reserved))
    assert too_much.failed and "more than the interface rate" in too_much["msg"]
    assert "rate=10" in pve.vm(120)["config"]["net1"]


def test_the_role_applies_the_window_on_proxmox(pve, netset, tmp_path):
    """The role, through a real ansible-playbook, with the connection in network_shadow_connection."""
    playbook_bin = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable))
    playbook = tmp_path / "window.yml"
    role_vars = {"network_shadow_desktop": "desk-net-a", "network_shadow_stage": "full",
                 "network_shadow_rate_mbit": 40, "network_shadow_bridge": BRIDGE,
                 "network_shadow_connection": connection(pve),
                 "network_shadow_block": {"netsets": [{"name": "firehol_level1", "path": netset}]},
                 "network_shadow_reservations": [{"name": "office", "destinations": ["198.19.1.0/24"],
                                                  "minimal_mbit": 5, "rate_mbit": 30}]}
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False,
                                     "roles": [{"role": "shadowdesk.vdi.network_shadow", "vars": role_vars}]}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1")
    played = subprocess.run([playbook_bin, "-i", "localhost,", "-c", "local", "-e",
                             "ansible_python_interpreter=%s" % sys.executable, str(playbook)],
                            capture_output=True, text=True, env=env, check=False, timeout=300)
    assert played.returncode == 0, played.stdout[-3000:] + played.stderr[-2000:]
    assert "changed=1" in played.stdout
    assert "rate=5" in pve.vm(120)["config"]["net1"] and len(pve.snapshot_state()["firewall"]["vms"][120]["rules"]) == 2


def test_desktops_with_the_same_list_share_a_set_until_the_last_one_leaves(pve, netset):
    a = ok(run_module("network_shadow", args(pve, "desk-net-a", netset)))
    b = ok(run_module("network_shadow", args(pve, "desk-net-b", netset)))
    assert [s["name"] for s in a["blocked"]] == [s["name"] for s in b["blocked"]]
    assert b["steps"] == ["attach_nic", "block", "firewall_on"]          # the sets exist already
    shared = {s["name"] for s in a["blocked"]}
    left = ok(run_module("network_shadow", args(pve, "desk-net-a", state="absent")))
    assert left["ipsets_released"] == [] and shared <= set(pve.snapshot_state()["firewall"]["ipsets"])
    last = ok(run_module("network_shadow", args(pve, "desk-net-b", state="absent")))
    assert set(last["ipsets_released"]) == shared and pve.snapshot_state()["firewall"]["ipsets"] == {}


def test_a_changed_list_gets_a_new_set_and_the_old_one_is_released(pve, netset, tmp_path):
    first = ok(run_module("network_shadow", args(pve, "desk-net-a", netset)))
    other = tmp_path / "other.netset"
    other.write_text("198.51.100.0/24\n")
    changed = ok(run_module("network_shadow", args(pve, "desk-net-a", block={
        "netsets": [{"name": "firehol_level1", "path": str(other)}]})))
    assert changed["steps"] == ["fill_ipsets", "block", "release_ipsets"]
    fw = pve.snapshot_state()["firewall"]
    assert set(fw["ipsets"]) == {s["name"] for s in changed["blocked"]}
    assert set(changed["ipsets_released"]) == {s["name"] for s in first["blocked"]}
    assert len(fw["vms"][120]["rules"]) == 2 and fw["vms"][120]["options"] == {"enable": 1}
    unblocked = ok(run_module("network_shadow", args(pve, "desk-net-a")))
    assert unblocked["steps"] == ["unblock", "firewall_off", "release_ipsets"]
    fw = pve.snapshot_state()["firewall"]
    assert fw["ipsets"] == {} and 120 not in fw["vms"] and "net1" in pve.vm(120)["config"]


def test_a_user_rule_and_a_firewall_already_on_are_kept(pve, netset, pve_api):
    pve_api.nodes("pve1").qemu(120).firewall.rules.post(type="in", action="ACCEPT", proto="tcp", dport="22",
                                                        enable=1, comment="ssh from admins")
    pve_api.nodes("pve1").qemu(120).firewall.options.put(enable=1)
    ok(run_module("network_shadow", args(pve, "desk-net-a", netset, block={
        "netsets": [{"name": "l1", "path": netset}], "all_interfaces": False})))
    rules = pve.snapshot_state()["firewall"]["vms"][120]["rules"]
    assert [r.get("comment") for r in rules][-1] == "ssh from admins"
    assert all(r["iface"] == "net1" for r in rules[:-1])
    gone = ok(run_module("network_shadow", args(pve, "desk-net-a", state="absent")))
    assert "firewall_off" not in gone["steps"]
    fw = pve.snapshot_state()["firewall"]["vms"][120]
    assert fw["options"] == {"enable": 1} and [r["comment"] for r in fw["rules"]] == ["ssh from admins"]


def refused(pve, result, text):
    assert result.failed and result["error_type"] in ("Conflict", "InvalidInput"), result
    assert text in result["msg"], result["msg"]


def test_refusals_change_nothing(pve, netset, tmp_path, pve_api):
    bad = tmp_path / "bad.netset"
    bad.write_text("198.51.100.0/24\nnot-an-address\n")
    before = pve.snapshot_state()
    mark = len(pve.requests())
    result = run_module("network_shadow", args(pve, "desk-net-a", block={"netsets": [{"name": "x", "path": str(bad)}]}))
    refused(pve, result, "line 2 is not an IP address")
    result = run_module("network_shadow", args(pve, "desk-net-a", bridge="a-bridge-name-too-long"))
    refused(pve, result, "not a valid Proxmox VE bridge name")

    pve.firewall.cluster_options["enable"] = 0
    refused(pve, run_module("network_shadow", args(pve, "desk-net-a", netset)), "datacenter firewall")
    refused(pve, run_module("network_shadow", args(pve, "desk-net-a", netset), check=True), "datacenter firewall")
    pve.firewall.cluster_options["enable"] = 1

    pve_api.nodes("pve1").qemu(121).config.put(net2="virtio,bridge=vmbr0,firewall=1")
    before_b = pve.snapshot_state()
    refused(pve, run_module("network_shadow", args(pve, "desk-net-b", netset)), "net2 has firewall=1")
    assert pve.snapshot_state() == before_b
    pve_api.nodes("pve1").qemu(121).config.put(net1="e1000,bridge=vmbr0")
    before_b = pve.snapshot_state()
    refused(pve, run_module("network_shadow", args(pve, "desk-net-b")), "is not its shadow NIC")
    assert not ok(run_module("network_shadow", args(pve, "desk-net-b", state="absent"))).changed
    assert pve.snapshot_state() == before_b

    pve.add_vm("pve1", 122, "desk-net-off", net0="virtio,bridge=vmbr0")
    refused(pve, run_module("network_shadow", args(pve, "desk-net-off")), "is not running")
    assert "net1" not in pve.vm(122)["config"]
    assert pve.snapshot_state()["vms"][120] == before["vms"][120]
    assert pve.snapshot_state()["firewall"] == before["firewall"]
    assert not [w for w in writes(pve, mark) if "/qemu/120" in w["path"] or "/firewall/" in w["path"]]

    missing = run_module("network_shadow", args(pve, "no-such-desk"))
    assert missing.failed and missing["error_type"] == "DesktopNotFound"


def test_a_set_another_desktop_creates_meanwhile_is_filled_not_refused(pve):
    """Two logins with the same list at once: the second POST of the set is PVE's 'already exists'."""
    from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.proxmox import ProxmoxBackend
    from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import pve_network as pn

    entries = [{"cidr": "198.51.100.0/24", "reason": "blocklist:l1"}, {"cidr": "203.0.113.7/32", "reason": "blocklist:l1"}]
    name = pn.wanted_sets(entries)[0]["name"]
    with ProxmoxBackend(dict(connection(pve), node=None, validate_certs=True)) as backend:
        shadow = backend.network_shadow()
        real_get = shadow.get

        def get(path, what, **params):
            answer = real_get(path, what, **params)
            if path == "cluster/firewall/ipset":   # right after we looked, the other desktop creates it
                pve.firewall.ipsets[name] = [{"cidr": "198.51.100.0/24"}]
            return answer
        shadow.get = get
        result = shadow.present("desk-net-a", BRIDGE, 100, entries, True)
    assert result["steps"] == ["attach_nic", "fill_ipsets", "block", "firewall_on"]
    filled = sorted(e["cidr"] for e in pve.snapshot_state()["firewall"]["ipsets"][name])
    assert filled == ["198.51.100.0/24", "203.0.113.7"]
    assert [r["status"] for r in pve.requests("POST", r"/cluster/firewall/ipset$")] == [400]


def test_without_network_hotplug_the_nic_is_pending_and_said_so(pve):
    pve.add_vm("pve1", 123, "desk-net-cold", status="running", net0="virtio,bridge=vmbr0", hotplug="disk,usb")
    result = ok(run_module("network_shadow", args(pve, "desk-net-cold")))
    assert result["nic"]["pending"] is True and "pending until the next start" in str(result.get("warnings"))
    vm = pve.vm(123)
    assert "net1" not in vm["config"] and "bridge=vmbr9" in vm["pending"]["net1"]
    again = ok(run_module("network_shadow", args(pve, "desk-net-cold")))
    assert not again.changed and again["nic"]["pending"] is True          # asked for once, not again
    gone = ok(run_module("network_shadow", args(pve, "desk-net-cold", state="absent")))
    assert gone["steps"] == ["detach_nic"] and gone["nic"] is None        # the pending addition is withdrawn
    assert "net1" not in pve.vm(123)["pending"] and "net1" not in pve.vm(123)["config"]


def test_without_network_hotplug_the_removal_waits_for_the_next_start(pve, pve_api):
    pve.add_vm("pve1", 124, "desk-net-unplug", status="running", net0="virtio,bridge=vmbr0", hotplug="network")
    ok(run_module("network_shadow", args(pve, "desk-net-unplug")))
    pve_api.nodes("pve1").qemu(124).config.put(hotplug="disk")
    gone = ok(run_module("network_shadow", args(pve, "desk-net-unplug", state="absent")))
    assert gone["steps"] == ["detach_nic"] and gone["nic"]["pending_removal"] is True
    assert "next start" in str(gone.get("warnings"))
    assert "net1" in pve.vm(124)["config"] and "net1" in pve.vm(124)["pending_delete"]
    again = ok(run_module("network_shadow", args(pve, "desk-net-unplug", state="absent")))
    assert not again.changed and again["nic"]["pending_removal"] is True


def test_a_set_a_foreign_rule_references_is_never_deleted(pve, netset, pve_api):
    """PVE deletes a referenced set without a word; we look at every guest's rules first."""
    done = ok(run_module("network_shadow", args(pve, "desk-net-a", netset)))
    shared = done["blocked"][0]["name"]
    pve.add_vm("pve2", 130, "file-server", net0="virtio,bridge=vmbr0")
    pve_api.nodes("pve2").qemu(130).firewall.rules.post(type="in", action="DROP", source="+dc/" + shared, enable=1)
    gone = ok(run_module("network_shadow", args(pve, "desk-net-a", state="absent")))
    assert shared not in gone["ipsets_released"] and len(gone["ipsets_released"]) == len(done["blocked"]) - 1
    assert shared in pve.snapshot_state()["firewall"]["ipsets"]
