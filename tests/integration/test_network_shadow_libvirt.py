"""network_shadow on a real libvirt guest (run as a real module process): the secondary NIC in the live domain,
the host's tc classes and nftables table read back, idempotence, rate upgrade, check mode, bad input, teardown.

The primary NIC (the test-bed network) is never touched. No traffic is sent here.
"""

from __future__ import annotations

import subprocess
import uuid
import xml.etree.ElementTree as ET

import libvirt
import pytest

from integration.module_runner import run_module
from integration.testbed import READY_MARKER

pytestmark = pytest.mark.libvirt


def sh(*argv):
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


@pytest.fixture
def shadow_network(libvirt_testbed):
    tag = uuid.uuid4().hex[:6]
    name, bridge = "sdt-shadow-" + tag, "sdtb" + tag
    yield name, bridge
    conn = libvirt.open("qemu:///system")
    try:
        net = conn.networkLookupByName(name)
        if net.isActive():
            net.destroy()
        net.undefine()
    except libvirt.libvirtError:
        pass
    finally:
        conn.close()


def macs(dom, flags=0):
    root = ET.fromstring(dom.XMLDesc(flags))
    return {i.find("mac").get("address"): (i.find("source").get("network"),
                                           (i.find("target").get("dev") if i.find("target") is not None else None))
            for i in root.findall("devices/interface")}


def test_network_shadow_on_a_running_guest(sd_domains, shadow_network, tmp_path):
    network, bridge = shadow_network
    dom, console = sd_domains.define_guest(vcpus=1, max_vcpus=2, memory_mib=512, current_memory_mib=256)
    dom.create()
    console.wait_for(READY_MARKER, 180)
    name = dom.name()
    primary = macs(dom)
    netset = tmp_path / "list.netset"
    netset.write_text("# test list\n10.0.0.0/8\n203.0.113.0/24\n198.51.100.7\n")
    args = {"name": name, "network": network, "bridge": bridge, "rate_mbit": 50,
            "reservations": [{"name": "office", "destinations": ["198.19.1.0/24"], "rate_mbit": 5}],
            "block": {"netsets": [{"name": "testlist", "path": str(netset)}],
                      "destinations": [{"cidr": "198.19.3.0/24", "reason": "forecast: far off the prediction"}]}}

    predicted = run_module("network_shadow", args, check=True)
    assert not predicted.failed, predicted.get("msg")
    assert predicted["changed"] and "attach_nic" in predicted["steps"] and "block" in predicted["steps"]
    assert {b["reason"] for b in predicted["blocked"]} == {"blocklist:testlist", "forecast: far off the prediction"}
    assert macs(dom) == primary
    assert "sd_" not in sh("nft", "list", "tables")

    done = run_module("network_shadow", args)
    assert not done.failed, done.get("msg")
    nic = done["nic"]
    live = macs(dom)
    assert live[nic["mac"]] == (network, nic["target"])  # the secondary NIC is in the live domain
    assert macs(dom, libvirt.VIR_DOMAIN_XML_INACTIVE).get(nic["mac"], (None,))[0] == network
    for mac, source in primary.items():
        assert live[mac] == source  # primary untouched
    classes = sh("tc", "class", "show", "dev", nic["target"])
    assert "rate 5Mbit ceil 50Mbit" in classes and "rate 50Mbit ceil 50Mbit" in classes
    table = sh("nft", "list", "table", "bridge", done["block_table"])
    assert '"%s"' % nic["target"] in table and "203.0.113.0/24" in table and "198.51.100.7" in table
    assert "10.0.0.0/8" not in table  # private ranges are exempt
    assert 'comment "forecast: far off the prediction"' in table

    again = run_module("network_shadow", args)
    assert not again.failed and again["changed"] is False, again

    args["reservations"][0]["rate_mbit"] = 40  # the predicted window opens
    upgraded = run_module("network_shadow", args)
    assert upgraded["steps"] == ["shape"] and upgraded["shaping"]["how"] == "rates"
    assert "rate 40Mbit ceil 50Mbit" in sh("tc", "class", "show", "dev", nic["target"])

    bad = tmp_path / "bad.netset"
    bad.write_text("203.0.113.0/24\nnot an address\n")
    before = sh("nft", "list", "table", "bridge", done["block_table"])
    failed = run_module("network_shadow", dict(args, block={"netsets": [{"name": "bad", "path": str(bad)}]}))
    assert failed.failed and "line 2" in failed["msg"]
    assert sh("nft", "list", "table", "bridge", done["block_table"]) == before

    missing = run_module("network_shadow", dict(args, name="sdtest-no-such-desktop"))
    assert missing.failed and "does not exist" in missing["msg"]

    check_absent = run_module("network_shadow", dict(args, state="absent"), check=True)
    assert check_absent["changed"] and set(check_absent["steps"]) == {"unblock", "unshape", "detach_nic"}
    assert done["block_table"] in sh("nft", "list", "tables")

    removed = run_module("network_shadow", dict(args, state="absent"))
    assert not removed.failed, removed.get("msg")
    assert done["block_table"] not in sh("nft", "list", "tables")
    assert nic["mac"] not in macs(dom) and nic["mac"] not in macs(dom, libvirt.VIR_DOMAIN_XML_INACTIVE)
    assert macs(dom) == primary
    assert run_module("network_shadow", dict(args, state="absent"))["changed"] is False
