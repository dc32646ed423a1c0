"""network_shadow on a real libvirt guest (run as a real module process): the secondary NIC in the live domain,
the host's tc classes and nftables table read back, idempotence, rate upgrade, check mode, bad input, teardown.

The primary NIC (the test-bed network) is never touched. Traffic: from inside the guest (guest agent) over the
secondary NIC to two addresses of a namespace this test plugs into the shadow bridge (198.18.0.0/24 only): the
blocked one is dropped, the allowed one answers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
import xml.etree.ElementTree as ET

import libvirt
import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._netshadow import shaping
from integration.module_runner import COLLECTIONS, run_module
from integration.testbed import guest_agent_ping, guest_exec

pytestmark = [pytest.mark.libvirt, pytest.mark.playbook]
PLAYBOOK_BIN = shutil.which("ansible-playbook", path=os.path.dirname(sys.executable)) or shutil.which("ansible-playbook")


def sh(*argv):
    return subprocess.run(argv, capture_output=True, text=True, check=False).stdout


@pytest.fixture
def destination_namespace():
    """A namespace with 198.18.0.2 (allowed) and 198.18.0.3 (to be blocked); plugged into a bridge later."""
    tag = uuid.uuid4().hex[:6]
    ns, host_end = "sdt-dst-" + tag, "sdtd" + tag
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", ns], check=True)
    for cmd in (["addr", "add", "198.18.0.2/24", "dev", "eth0"], ["addr", "add", "198.18.0.3/24", "dev", "eth0"],
                ["link", "set", "eth0", "up"]):
        subprocess.run(["ip", "-n", ns] + cmd, check=True)
    yield host_end
    subprocess.run(["ip", "link", "del", host_end], check=False)
    subprocess.run(["ip", "netns", "del", ns], check=False)


def guest_ping(dom, address):
    code, out, err = guest_exec(dom, ["/bin/sh", "-c", "ping -c 2 -W 2 %s" % address], timeout=60)
    return code, out + err


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


@pytest.fixture
def host_state_cleanup():
    """Whatever happens in the test, the desktop's block table and the ifb of its shadow NIC do not outlive it
    (the tap and its qdiscs go with the guest; an ifb device does not)."""
    names = {"tables": [], "ifbs": []}
    yield names
    for table in names["tables"]:
        subprocess.run(["nft", "delete", "table", "bridge", table], capture_output=True, check=False)
    for ifb in names["ifbs"]:
        subprocess.run(["ip", "link", "del", ifb], capture_output=True, check=False)


def test_network_shadow_on_a_running_guest(sd_domains, shadow_network, destination_namespace, host_state_cleanup,
                                           tmp_path):
    network, bridge = shadow_network
    dom, _console = sd_domains.define_guest(vcpus=1, max_vcpus=2, memory_mib=512, current_memory_mib=256)
    dom.create()
    guest_agent_ping(dom, timeout=420)  # the guest is up once its agent answers (slow boots on a loaded host)
    name = dom.name()
    primary = macs(dom)
    netset = tmp_path / "list.netset"
    netset.write_text("# test list\n10.0.0.0/8\n203.0.113.0/24\n198.51.100.7\n")
    args = {"name": name, "network": network, "bridge": bridge, "rate_mbit": 50,
            "reservations": [{"name": "office", "destinations": ["198.19.1.0/24"], "rate_mbit": 5}],
            "block": {"netsets": [{"name": "testlist", "path": str(netset)}],
                      "destinations": [{"cidr": "198.19.3.0/24", "reason": "forecast: far off the prediction"},
                                       {"cidr": "198.18.0.3", "reason": "manual: test destination"}]}}

    predicted = run_module("network_shadow", args, check=True)
    assert not predicted.failed, predicted.get("msg")
    assert predicted["changed"] and "attach_nic" in predicted["steps"] and "block" in predicted["steps"]
    assert {b["reason"] for b in predicted["blocked"]} == {"blocklist:testlist", "forecast: far off the prediction",
                                                           "manual: test destination"}
    assert macs(dom) == primary
    table_name = "bridge sd_%s_" % re.sub(r"[^A-Za-z0-9_]", "_", name)
    assert table_name not in sh("nft", "list", "tables")

    done = run_module("network_shadow", args)
    host_state_cleanup["tables"].append(done.get("block_table"))
    if done.get("nic"):
        host_state_cleanup["ifbs"].append(shaping.ifb_name(done["nic"]["target"]))
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

    # traffic from inside the guest over the secondary NIC: the blocked address is dropped, the allowed answers
    subprocess.run(["ip", "link", "set", destination_namespace, "master", bridge, "up"], check=True)
    # the hot-plugged NIC shows up in the guest a moment later (PCI hotplug under TCG): wait for its MAC
    script = ("for i in $(seq 90); do for d in /sys/class/net/*; do if [ \"$(cat $d/address)\" = %s ]; then "
              "ip addr add 198.18.0.50/24 dev ${d##*/} && ip link set ${d##*/} up && echo ${d##*/}; exit 0; fi; "
              "done; sleep 1; done; ls /sys/class/net; cat /sys/class/net/*/address; exit 1" % nic["mac"])
    code, out, err = guest_exec(dom, ["/bin/sh", "-c", script], timeout=150)
    assert code == 0 and out.strip(), (out, err)
    allowed_code, allowed_out = guest_ping(dom, "198.18.0.2")
    assert allowed_code == 0, allowed_out
    blocked_code, blocked_out = guest_ping(dom, "198.18.0.3")
    assert blocked_code != 0 and " 0 packets received" in blocked_out, blocked_out
    counters = sh("nft", "list", "table", "bridge", done["block_table"])
    assert re.search(r"counter packets [1-9]\d* bytes \d+ drop comment \"manual: test destination\"", counters)

    again = run_module("network_shadow", args)
    assert not again.failed and again["changed"] is False, again

    # the predicted window opens: the role, through a real ansible-playbook, applies the full rate
    playbook = tmp_path / "window.yml"
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False, "roles": [{
        "role": "shadowdesk.vdi.network_shadow",
        "vars": {"network_shadow_desktop": name, "network_shadow_stage": "full", "network_shadow_rate_mbit": 50,
                 "network_shadow_network": network, "network_shadow_bridge": bridge,
                 "network_shadow_block": args["block"],
                 "network_shadow_reservations": [{"name": "office", "destinations": ["198.19.1.0/24"],
                                                  "minimal_mbit": 5, "rate_mbit": 40}]}}]}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1")
    played = subprocess.run([PLAYBOOK_BIN, "-i", "localhost,", "-c", "local", "-e",
                             "ansible_python_interpreter=%s" % sys.executable, str(playbook)],
                            capture_output=True, text=True, env=env, check=False, timeout=300)
    assert played.returncode == 0, played.stdout[-3000:] + played.stderr[-2000:]
    assert "changed=1" in played.stdout
    assert "rate 40Mbit ceil 50Mbit" in sh("tc", "class", "show", "dev", nic["target"])
    args["reservations"][0]["rate_mbit"] = 40
    assert run_module("network_shadow", args)["changed"] is False

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
    assert not os.path.exists("/sys/class/net/%s" % shaping.ifb_name(nic["target"]))
    assert run_module("network_shadow", dict(args, state="absent"))["changed"] is False
