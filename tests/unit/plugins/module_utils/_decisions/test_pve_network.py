"""The pure decisions of the network shadow on Proxmox VE (_decisions/pve_network)."""
from __future__ import annotations

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import pve_network as pn
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput


def test_nic_value_is_ours_on_the_bridge_with_firewall_and_rate_in_megabytes():
    value = pn.nic_value("desk-a", "vmbr9", 100)
    assert value == "virtio=%s,bridge=vmbr9,firewall=1,rate=12.5" % pn.shadow_mac("desk-a")
    assert pn.nic_is_ours(value, "desk-a") and not pn.nic_is_ours(value, "desk-b")
    assert not pn.nic_is_ours("e1000=BC:24:11:00:00:01,bridge=vmbr0", "desk-a")
    assert not pn.nic_is_ours(None, "desk-a")


def test_nic_value_keeps_other_options_and_compares_by_meaning():
    current = "virtio=%s,bridge=vmbr8,firewall=1,queues=2,rate=5" % pn.shadow_mac("desk-a").lower()
    value = pn.nic_value("desk-a", "vmbr9", 80, current)
    assert "queues=2" in value and "bridge=vmbr9" in value and "rate=10" in value
    assert not pn.nic_differs(value.replace("rate=10", "rate=10.0"), value)
    assert pn.nic_differs(current, value) and pn.nic_differs(None, value)


@pytest.mark.parametrize("bridge", ["", "a" * 16, "vm br9", None])
def test_bad_bridge_names(bridge):
    with pytest.raises(InvalidInput):
        pn.nic_value("desk-a", bridge, 100)


def test_rate_too_small_for_pve():
    assert pn.rate_mb_s(0.008) == "0.001"
    with pytest.raises(InvalidInput):
        pn.rate_mb_s(0.001)


def test_sets_by_reason_named_by_content_and_stored_like_pve():
    entries = [{"cidr": "203.0.113.7/32", "reason": "blocklist:l1"}, {"cidr": "198.51.100.0/24", "reason": "blocklist:l1"},
               {"cidr": "2001:db8::1/128", "reason": "forecast:far"}]
    sets = pn.wanted_sets(entries)
    assert [(s["reason"], s["cidrs"]) for s in sets] == [("blocklist:l1", ["198.51.100.0/24", "203.0.113.7"]),
                                                         ("forecast:far", ["2001:db8::1"])]
    assert sets == pn.wanted_sets(list(reversed(entries)))           # same content, same names
    assert sets[0]["name"].startswith(pn.SET_PREFIX) and len(sets[0]["name"]) <= 64
    other = pn.wanted_sets([{"cidr": "198.51.100.0/24", "reason": "blocklist:l1"}])
    assert other[0]["name"] != sets[0]["name"]


def test_rules_plan_keeps_ours_in_order_and_replaces_otherwise():
    sets = pn.wanted_sets([{"cidr": "198.51.100.0/24", "reason": "r"}])
    wanted = pn.wanted_rules(sets, "net1", firewall_mark=True)
    assert [r["type"] for r in wanted] == ["out", "in"] and wanted[0]["dest"] == "+dc/" + sets[0]["name"]
    user = {"type": "in", "action": "ACCEPT", "comment": "ssh", "enable": 1}
    standing = [dict(r, pos=i) for i, r in enumerate(wanted)] + [dict(user, pos=2)]
    assert pn.rules_plan(standing, wanted) == {"delete": [], "create": []}
    assert pn.marks_firewall(standing)
    unmarked = pn.wanted_rules(sets, "net1", firewall_mark=False)
    plan = pn.rules_plan(standing, unmarked)
    assert plan == {"delete": [1, 0], "create": list(reversed(unmarked))}   # PVE prepends: last one first
    assert pn.rules_plan(standing, []) == {"delete": [1, 0], "create": []}
    assert pn.referenced_sets(standing) == {sets[0]["name"]}


def test_references_in_every_scope():
    rules = [{"dest": "+dc/a1"}, {"source": "+guest/b2"}, {"dest": "+c3"}, {"dest": "10.0.0.0/8"}, {"source": "+"}]
    assert pn.referenced_sets(rules) == {"a1", "b2", "c3"}


def test_entries_plan():
    current = [{"cidr": "198.51.100.0/24"}, {"cidr": "192.0.2.1"}, {"cidr": "203.0.113.0/24", "nomatch": 1}]
    assert pn.entries_plan(current, ["198.51.100.0/24", "203.0.113.7"]) == {
        "add": ["203.0.113.7"], "remove": ["192.0.2.1", "203.0.113.0/24"]}


@pytest.mark.parametrize("enabled, blocking, marked, expected", [
    (False, True, False, ("on", True)),
    (True, True, False, (None, False)),     # the user's firewall: never ours to turn off
    (True, True, True, (None, True)),
    (True, False, True, ("off", False)),
    (True, False, False, (None, False)),
    (False, False, False, (None, False)),
])
def test_firewall_plan(enabled, blocking, marked, expected):
    assert pn.firewall_plan(enabled, blocking, marked) == expected
