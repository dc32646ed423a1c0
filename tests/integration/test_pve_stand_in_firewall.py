"""The stand-in's Proxmox VE firewall endpoints (cluster IP sets, VM rules, options) against pve-firewall's rules.

Each test pins one behaviour of ``src/PVE/API2/Firewall/{IPSet,Rules,VM}.pm`` / ``src/PVE/Firewall.pm``, including
the requests real PVE rejects, through a real HTTPS client.
"""
from __future__ import annotations

import pytest
from test_pve_stand_in import raises, raw   # tests/integration is on sys.path, like module_runner

pytestmark = pytest.mark.pve

VMID = 105


@pytest.fixture
def fw(pve_stand_in, pve_api):
    pve_stand_in.add_vm("pve1", VMID, "desk")
    return pve_api


def rules_of(api):
    return api.nodes("pve1").qemu(VMID).firewall.rules.get()


# ----------------------------------------------------------------------------- IP sets
def test_ipset_create_list_and_duplicate(pve_stand_in, fw):
    fw.cluster.firewall.ipset.post(name="sd-blk", comment="shadowdesk block list")
    listed = fw.cluster.firewall.ipset.get()
    assert [(s["name"], s["comment"]) for s in listed] == [("sd-blk", "shadowdesk block list")]
    assert len(listed[0]["digest"]) == 40
    exc = raises(fw.cluster.firewall.ipset.post, name="sd-blk")
    assert exc.status_code == 400 and "already exists" in exc.errors["name"]


@pytest.mark.parametrize("name", ["1abc", "a", "bad name", "x" * 65, "dot.ted"])
def test_ipset_names_follow_the_schema(pve_stand_in, fw, name):
    exc = raises(fw.cluster.firewall.ipset.post, name=name)
    assert exc.status_code == 400 and "name" in exc.errors
    assert pve_stand_in.snapshot_state()["firewall"]["ipsets"] == {}


def test_ipset_entries_are_normalised_prepended_and_checked(pve_stand_in, fw):
    fw.cluster.firewall.ipset.post(name="blk")
    fw.cluster.firewall.ipset("blk").post(cidr="198.51.100.7/24")        # host bits cleared
    fw.cluster.firewall.ipset("blk").post(cidr="203.0.113.5/32", comment="one host")  # /32 dropped
    fw.cluster.firewall.ipset("blk").post(cidr="2001:db8::/32", nomatch=1)
    entries = fw.cluster.firewall.ipset("blk").get()
    assert [e["cidr"] for e in entries] == ["2001:db8::/32", "203.0.113.5", "198.51.100.0/24"]
    assert entries[0]["nomatch"] == 1 and entries[1]["comment"] == "one host"
    exc = raises(fw.cluster.firewall.ipset("blk").post, cidr="198.51.100.0/24")
    assert exc.status_code == 400 and exc.errors["cidr"].startswith("address '198.51.100.0/24' already exists")
    exc = raises(fw.cluster.firewall.ipset("blk").post, cidr="0.0.0.0/0")
    assert exc.status_code == 400 and "zero prefix" in exc.errors["cidr"]
    exc = raises(fw.cluster.firewall.ipset("blk").post, cidr="300.1.2.3")
    assert exc.status_code == 400 and "cidr" in exc.errors
    assert len(fw.cluster.firewall.ipset("blk").get()) == 3


def test_ipset_entry_paths_carry_the_prefix_length(pve_stand_in, fw):
    fw.cluster.firewall.ipset.post(name="blk")
    fw.cluster.firewall.ipset("blk").post(cidr="198.51.100.0/24")
    entry = fw("cluster/firewall/ipset/blk/198.51.100.0/24").get()
    assert entry["cidr"] == "198.51.100.0/24" and len(entry["digest"]) == 40
    fw("cluster/firewall/ipset/blk/198.51.100.0/24").put(comment="why", nomatch=1)
    assert fw("cluster/firewall/ipset/blk/198.51.100.0/24").get()["comment"] == "why"
    fw("cluster/firewall/ipset/blk/198.51.100.0/24").put()      # update_ip assigns both: omitted = cleared
    assert set(fw("cluster/firewall/ipset/blk/198.51.100.0/24").get()) == {"cidr", "digest"}
    exc = raises(fw("cluster/firewall/ipset/blk/198.51.100.9/32").get)   # no normalisation on read
    assert exc.status_code == 400 and exc.errors["cidr"].startswith("no such IP/Network")
    exc = raises(fw("cluster/firewall/ipset/blk/198.51.100.0/24").delete, digest="0" * 40)
    assert exc.status_code == 500 and "detected modified configuration" in exc.content
    fw("cluster/firewall/ipset/blk/198.51.100.0/24").delete()
    fw("cluster/firewall/ipset/blk/198.51.100.0/24").delete()    # removing an absent entry succeeds, like PVE
    assert fw.cluster.firewall.ipset("blk").get() == []


def test_ipset_delete_needs_force_when_not_empty_and_ignores_references(pve_stand_in, fw):
    fw.cluster.firewall.ipset.post(name="blk")
    fw.cluster.firewall.ipset("blk").post(cidr="198.51.100.0/24")
    fw.nodes("pve1").qemu(VMID).firewall.rules.post(type="out", action="DROP", dest="+dc/blk", enable=1)
    exc = raises(fw.cluster.firewall.ipset("blk").delete)
    assert exc.status_code == 500 and exc.content == "IPSet 'blk' is not empty"
    fw.cluster.firewall.ipset("blk").delete(force=1)   # PVE does not look for rules that reference it
    assert "blk" not in pve_stand_in.snapshot_state()["firewall"]["ipsets"]
    assert rules_of(fw)[0]["dest"] == "+dc/blk"
    exc = raises(fw.cluster.firewall.ipset("blk").get)
    assert exc.status_code == 500 and exc.content == "no such IPSet 'blk'"


def test_ipset_rename_keeps_entries_and_refuses_overwriting(pve_stand_in, fw):
    fw.cluster.firewall.ipset.post(name="old", comment="c")
    fw.cluster.firewall.ipset("old").post(cidr="192.0.2.1")
    fw.cluster.firewall.ipset.post(name="other")
    exc = raises(fw.cluster.firewall.ipset.post, name="other", rename="old")
    assert exc.status_code == 400 and "does already exist" in exc.errors["name"]
    fw.cluster.firewall.ipset.post(name="new", rename="old")
    state = pve_stand_in.snapshot_state()["firewall"]
    assert state["ipsets"]["new"] == [{"cidr": "192.0.2.1"}] and state["ipset_comments"] == {"new": "c"}


# ----------------------------------------------------------------------------- VM rules
def test_rules_go_to_the_top_disabled_unless_enabled(pve_stand_in, fw):
    fw.cluster.firewall.ipset.post(name="blk")
    rules = fw.nodes("pve1").qemu(VMID).firewall.rules
    rules.post(type="out", action="DROP", dest="+dc/blk", iface="net1", log="info", comment="first")
    rules.post(type="in", action="DROP", source="+blk", iface="net1", enable=1, pos=5, comment="second")
    listed = rules_of(fw)
    assert [(r["pos"], r["comment"], r["enable"]) for r in listed] == [(0, "second", 1), (1, "first", 0)]
    assert listed[1] == {"type": "out", "action": "DROP", "dest": "+dc/blk", "iface": "net1", "log": "info",
                         "comment": "first", "enable": 0, "pos": 1, "digest": listed[0]["digest"]}
    one = fw.nodes("pve1").qemu(VMID).firewall.rules(1).get()
    assert one["comment"] == "first" and one["pos"] == 1


@pytest.mark.parametrize("params, bad", [
    ({"type": "forward", "action": "DROP"}, "type"),
    ({"type": "out", "action": "DENY"}, "action"),
    ({"type": "out", "action": "DROP", "dest": "+nope"}, "dest"),
    ({"type": "out", "action": "DROP", "dest": "+dc/nope"}, "dest"),
    ({"type": "out", "action": "DROP", "iface": "eth0"}, "iface"),
    ({"type": "out", "action": "DROP", "dport": "443"}, "proto"),
    ({"type": "out", "action": "DROP", "proto": "tcp", "dport": "70000"}, "dport"),
    ({"type": "out", "action": "DROP", "proto": "nosuchproto"}, "proto"),
    ({"type": "out", "action": "DROP", "dest": "10.0.0.1,2001:db8::1"}, "dest"),
    ({"type": "out", "action": "DROP", "dest": "10.0.0.1/8"}, "dest"),
    ({"type": "out"}, "action"),
])
def test_rules_pve_rejects(pve_stand_in, fw, params, bad):
    exc = raises(fw.nodes("pve1").qemu(VMID).firewall.rules.post, **params)
    assert exc.status_code == 400 and bad in exc.errors, exc.errors
    assert rules_of(fw) == []


def test_rule_with_addresses_records_the_ip_version(pve_stand_in, fw):
    fw.nodes("pve1").qemu(VMID).firewall.rules.post(type="out", action="ACCEPT", dest="198.51.100.0/24",
                                                    proto="tcp", dport="443,https", enable=1)
    assert rules_of(fw)[0]["ipversion"] == 4


def test_rule_update_delete_and_digest(pve_stand_in, fw):
    rules = fw.nodes("pve1").qemu(VMID).firewall.rules
    for name in ("c", "b", "a"):
        rules.post(type="out", action="DROP", comment=name, dest="192.0.2.1")
    digest = rules_of(fw)[0]["digest"]
    rules(0).put(moveto=2, digest=digest)
    assert [r["comment"] for r in rules_of(fw)] == ["b", "a", "c"]
    exc = raises(rules(0).delete, digest=digest)
    assert exc.status_code == 500 and "detected modified configuration" in exc.content
    rules(2).put(enable=1, delete="dest")
    assert rules_of(fw)[2]["enable"] == 1 and "dest" not in rules_of(fw)[2]
    exc = raises(rules(2).put, delete="action")
    assert exc.status_code == 400 and "required property" in exc.errors["delete"]
    exc = raises(rules(7).delete)
    assert exc.status_code == 500 and exc.content == "no rule at position 7"
    rules(0).delete(digest=rules_of(fw)[0]["digest"])
    assert [r["comment"] for r in rules_of(fw)] == ["a", "c"]


# ----------------------------------------------------------------------------- options
def test_vm_and_cluster_options(pve_stand_in, fw):
    opts = fw.nodes("pve1").qemu(VMID).firewall.options
    assert set(opts.get()) == {"digest"}          # nothing set: PVE's defaults apply (enable 0)
    opts.put(enable=1, policy_in="ACCEPT")
    got = opts.get()
    assert got["enable"] == 1 and got["policy_in"] == "ACCEPT"
    exc = raises(opts.put, enable=0, digest="0" * 40)
    assert exc.status_code == 500 and "detected modified configuration" in exc.content
    exc = raises(opts.put, delete="colour")
    assert exc.status_code == 400 and "no such option" in exc.errors["delete"]
    opts.put(delete="policy_in,enable")
    assert set(opts.get()) == {"digest"}
    exc = raises(opts.put, policy_in="MAYBE")
    assert exc.status_code == 400 and "policy_in" in exc.errors
    fw.cluster.firewall.options.put(enable=1)
    assert fw.cluster.firewall.options.get()["enable"] == 1


def test_destroying_the_vm_removes_its_firewall_config(pve_stand_in, fw):
    fw.nodes("pve1").qemu(VMID).firewall.rules.post(type="out", action="DROP", dest="192.0.2.1")
    fw.nodes("pve1").qemu(VMID).firewall.options.put(enable=1)
    assert VMID in pve_stand_in.snapshot_state()["firewall"]["vms"]
    pve_stand_in.wait_tasks()
    upid = fw.nodes("pve1").qemu(VMID).delete()
    assert upid.startswith("UPID:")
    pve_stand_in.wait_tasks()
    assert VMID not in pve_stand_in.snapshot_state()["firewall"]["vms"]


def test_raw_error_body_of_a_rejected_rule(pve_stand_in, fw):
    r = raw(pve_stand_in, "POST", "/nodes/pve1/qemu/%d/firewall/rules" % VMID,
            data={"type": "out", "action": "DROP", "dest": "+dc/missing"})
    assert r.status_code == 400 and r.reason == "Parameter verification failed."
    assert r.json()["errors"] == {"dest": "no such ipset 'missing'\n"}
