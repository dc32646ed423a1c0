"""Host side of the network shadow on the real kernel, in network namespaces this test creates: feature probe,
htb/ifb shaping read back from tc, nftables blocking with real packets (blocked dropped, allowed delivered),
check mode, idempotence, removal leaving nothing behind, bad input changing nothing.

Traffic stays inside the namespaces (198.18.0.0/15). Bandwidth under contention is a benchmark
(benchmarks/network_reservation.py), not a test.
"""

from __future__ import annotations

import os

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import blocklist
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._netshadow import blocking, features, shaping
from integration.netns import ShadowNet, sh

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

NETSET = os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data", "network",
                      "firehol_level1_2021-06-28.netset")
ALLOWED, BLOCKED = "198.19.1.1", "198.19.3.1"


def test_probe_finds_what_the_shadow_needs_and_names_what_is_missing():
    found = features.probe()
    assert found["unusable"] == {}, found["unusable"]
    for kind, name in (("qdisc", "htb"), ("qdisc", "ingress"), ("classifier", "u32"), ("action", "mirred"),
                       ("link", "ifb")):
        assert found[kind][name] is True
    # whatever the probe calls missing really is refused by this kernel
    for feature in found["missing"]:
        kind, name = feature.split(":")
        if kind == "qdisc" and name in ("sfq", "fq_codel", "cake", "prio"):
            with ShadowNet(desktops=1) as net:
                rc = sh("ip", "netns", "exec", net.host, "tc", "qdisc", "add", "dev", "vd1", "root", name,
                        check=False).returncode
            assert rc != 0
            break
    with pytest.raises(Exception, match="lacks"):
        features.require({"unusable": {"blocking": ["nftables:bridge_interval_sets"]}}, ["blocking"])


def _tc(net, *args):
    return sh("ip", "netns", "exec", net.host, "tc", *args).stdout


def test_shaping_applied_read_back_upgraded_and_removed():
    reservations = [{"name": "office", "cidrs": ["198.19.1.0/24"], "rate_mbit": 2}]
    with ShadowNet(desktops=1) as net:
        check = shaping.apply(net.runner, "vd1", 20, reservations, check_mode=True)
        assert check["changed"] and "htb" not in _tc(net, "qdisc", "show", "dev", "vd1")

        first = shaping.apply(net.runner, "vd1", 20, reservations)
        assert first["changed"] and first["how"] == "rebuild"
        classes = _tc(net, "class", "show", "dev", "vd1")
        assert "class htb 1:10" in classes and "rate 2Mbit ceil 20Mbit" in classes
        ifb = shaping.ifb_name("vd1")
        assert "rate 2Mbit ceil 20Mbit" in _tc(net, "class", "show", "dev", ifb)
        assert "mirred" in _tc(net, "filter", "show", "dev", "vd1", "ingress")
        assert "c6130100/ffffff00 at 12" in _tc(net, "filter", "show", "dev", "vd1", "parent", "1:")
        assert "c6130100/ffffff00 at 16" in _tc(net, "filter", "show", "dev", ifb, "parent", "1:")
        assert shaping.apply(net.runner, "vd1", 20, reservations)["changed"] is False

        reservations[0]["rate_mbit"] = 15  # the window opens: minimal -> full rate, classes only
        upgrade = shaping.apply(net.runner, "vd1", 20, reservations)
        assert upgrade["how"] == "rates"
        assert "rate 15Mbit ceil 20Mbit" in _tc(net, "class", "show", "dev", "vd1")
        assert "rate 15Mbit ceil 20Mbit" in _tc(net, "class", "show", "dev", ifb)

        assert shaping.remove(net.runner, "vd1", check_mode=True)["changed"]
        assert "htb" in _tc(net, "qdisc", "show", "dev", "vd1")
        assert shaping.remove(net.runner, "vd1")["changed"]
        assert "htb" not in _tc(net, "qdisc", "show", "dev", "vd1")
        assert "ingress" not in _tc(net, "qdisc", "show", "dev", "vd1")
        assert not net.runner.interface_exists(ifb)
        assert shaping.remove(net.runner, "vd1")["changed"] is False


def test_shaping_bad_input_changes_nothing():
    with ShadowNet(desktops=1) as net:
        with pytest.raises(InvalidInput, match="does not exist"):
            shaping.apply(net.runner, "nosuch0", 20, [])
        with pytest.raises(InvalidInput, match="more than the interface rate"):
            shaping.apply(net.runner, "vd1", 5, [{"name": "a", "cidrs": ["198.19.1.0/24"], "rate_mbit": 6}])
        assert "htb" not in _tc(net, "qdisc", "show", "dev", "vd1")


def _entries():
    sources = [("manual: known bad in the test", [blocklist.parse_network(BLOCKED)], False)]
    if os.path.exists(NETSET):
        with open(NETSET) as fh:
            sources.insert(0, ("blocklist:firehol_level1", blocklist.parse_netset(fh.read(), "firehol_level1")))
    return blocklist.block_entries(sources)


def test_blocking_drops_blocked_destination_passes_allowed_and_removes_cleanly():
    entries = _entries()
    with ShadowNet(desktops=2) as net:
        assert net.udp_delivery(0, BLOCKED) == 20  # the path works before the block

        check = blocking.apply(net.runner, "desk-a", ["vd1"], entries, check_mode=True)
        assert check["changed"] and blocking.read(net.runner, "desk-a") is None
        assert {s["reason"] for s in check["sets"]} >= {"manual: known bad in the test"}

        assert blocking.apply(net.runner, "desk-a", ["vd1"], entries)["changed"]
        assert net.udp_delivery(0, BLOCKED) == 0
        assert net.udp_delivery(0, ALLOWED) == 20
        assert net.udp_delivery(1, BLOCKED) == 20  # bound to desk-a's interface only
        state = blocking.read(net.runner, "desk-a")
        assert state["dropped"]["packets"] == 20
        listing = sh("ip", "netns", "exec", net.host, "nft", "list", "table", "bridge", state["table"]).stdout
        assert 'comment "manual: known bad in the test"' in listing and '"vd1"' in listing

        again = blocking.apply(net.runner, "desk-a", ["vd1"], entries)
        assert again["changed"] is False

        assert blocking.remove(net.runner, "desk-a")["changed"]
        assert state["table"] not in sh("ip", "netns", "exec", net.host, "nft", "list", "tables").stdout
        assert net.udp_delivery(0, BLOCKED) == 20
        assert blocking.remove(net.runner, "desk-a")["changed"] is False


def test_allow_list_overrides_the_block():
    with ShadowNet(desktops=1) as net:
        entries = blocklist.block_entries([("manual", [blocklist.parse_network("198.19.0.0/16")], False)],
                                          allow=[ALLOWED])
        blocking.apply(net.runner, "desk-b", ["vd1"], entries)
        assert net.udp_delivery(0, ALLOWED) == 20
        assert net.udp_delivery(0, BLOCKED) == 0


def test_blocking_unknown_interface_changes_nothing():
    with ShadowNet(desktops=1) as net:
        with pytest.raises(InvalidInput, match="does not exist"):
            blocking.apply(net.runner, "desk-c", ["vd1", "nosuch0"], _entries())
        assert "sd_" not in sh("ip", "netns", "exec", net.host, "nft", "list", "tables").stdout
