"""Pure Proxmox VE config <-> model mapping (no HTTP)."""

import pytest

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _pve_config as pc
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import Conflict, InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    APPLIED_CONFIG, APPLIED_LIVE, APPLIED_PENDING, ResourceChange, ShadowSpec,
)

SHADOW_CONF = {
    "name": "desk-alice",
    "cores": 4, "sockets": 1, "vcpus": 1,
    "memory": "8192", "balloon": 2048, "shares": 0, "numa": 1,
    "hotplug": "network,disk,usb,cpu,memory",
    "scsi0": "local-lvm:base-9000-disk-0/vm-101-disk-0,iops=200,mbps=0.5,size=32G",
    "ide2": "none,media=cdrom",
    "virtio1": "local-lvm:vm-101-disk-1,size=8G",
    "sata0": "local:iso/x.iso,media=cdrom",
    "net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0,rate=0.09765625",
    "net1": "e1000=BC:24:11:00:00:02,bridge=vmbr1",
    "cpulimit": "1.5",
    "tags": "shadowdesk;sd-user-alice",
    "description": pc.format_description({"user": "Alice"}),
}


def test_propstr_roundtrip_keeps_order_and_default_key():
    text = "virtio=BC:24:11:00:00:01,bridge=vmbr0,rate=10"
    items = pc.parse_propstr(text)
    assert items[0] == ["virtio", "BC:24:11:00:00:01"]
    assert pc.format_propstr(items) == text
    assert pc.format_propstr(pc.propstr_set(items, "rate", None)) == "virtio=BC:24:11:00:00:01,bridge=vmbr0"
    assert pc.format_propstr(pc.propstr_set(items, "rate", "2")) == "virtio=BC:24:11:00:00:01,bridge=vmbr0,rate=2"
    drive = pc.parse_propstr("local-lvm:vm-1-disk-0,size=4G")
    assert pc.propstr_get(drive, None) == "local-lvm:vm-1-disk-0"
    assert pc.format_propstr(pc.propstr_set(drive, "iops", "50")) == "local-lvm:vm-1-disk-0,size=4G,iops=50"


@pytest.mark.parametrize("value,text", [(10, "10"), (1.5, "1.5"), (100 / 1024.0, "0.09765625"),
                                        (1 / 1048576.0, "0.00000095367431640625"), (0, "0")])
def test_format_number_has_no_exponent(value, text):
    assert pc.format_number(value) == text


@pytest.mark.parametrize("kib", [1, 100, 1024, 12345, 10 ** 6])
def test_rate_units_roundtrip(kib):
    assert pc.rate_to_kib(pc.kib_to_rate(kib)) == kib


@pytest.mark.parametrize("bps", [1, 1000000, 1048576, 123456789])
def test_mbps_units_roundtrip(bps):
    assert pc.mbps_to_bytes(pc.bytes_to_mbps(bps)) == bps


def test_memory_formats():
    assert pc.memory_max_mib({"memory": "current=4096"}) == 4096
    assert pc.memory_max_mib({"memory": 4096}) == 4096
    assert pc.memory_max_mib({}) == 512
    assert pc.memory_now_mib({"memory": "4096", "balloon": 1024}) == 1024
    assert pc.memory_now_mib({"memory": "4096", "balloon": 0}) == 4096  # ballooning off
    assert pc.memory_now_mib({"memory": "4096"}) == 4096                # on, target = memory


def test_disk_and_net_keys():
    assert pc.disk_keys(SHADOW_CONF) == ["scsi0", "virtio1"]  # cdroms left out, scsi before virtio
    assert pc.disk_map(SHADOW_CONF) == {"disk0": "scsi0", "disk1": "virtio1"}
    assert pc.net_map(SHADOW_CONF) == {"net0": "net0", "net1": "net1"}
    assert pc.disk_keys({"scsi10": "a:b", "scsi2": "a:c"}) == ["scsi2", "scsi10"]


def test_resources_of_shadow():
    res = pc.resources_of(SHADOW_CONF)
    assert res.vcpus == 1
    assert res.memory_mib == 2048
    assert res.cpu_limit == 1.5
    assert res.net["net0"].rate_kib_s == 100
    assert res.net["net1"].rate_kib_s == 0
    assert res.disk_io["disk0"].total_iops == 200
    assert res.disk_io["disk0"].total_bytes_sec == 524288
    assert res.disk_io["disk1"].total_iops == 0
    assert res.gpu == []


def test_facts_running_with_pending():
    pending = [{"key": "cores", "value": "4", "pending": "6"}, {"key": "vcpus", "value": "1"},
               {"key": "hostpci0", "pending": "host=0000:01:00.0"}, {"key": "cpulimit", "value": "1.5", "delete": 1}]
    facts = pc.facts_of("desk-alice", 101, "pve1", {"status": "running", "qmpstatus": "running"},
                        SHADOW_CONF, pending, [{"name": "current"},
                                               {"name": "s1", "snaptime": 0, "vmstate": 1, "description": "d"}])
    assert facts.state == "running"
    assert facts.user == "Alice"
    assert facts.backend_id == "101" and facts.node == "pve1"
    assert facts.max_vcpus == 4 and facts.max_memory_mib == 8192  # the running definition
    assert facts.live.gpu == [] and facts.config.gpu == ["0000:01:00.0"]
    assert facts.config.cpu_limit == 0.0 and facts.live.cpu_limit == 1.5
    assert facts.pending == {"cores": "6", "hostpci0": "host=0000:01:00.0", "cpulimit": None}
    assert [s.name for s in facts.snapshots] == ["s1"] and facts.snapshots[0].with_memory
    assert facts.snapshots[0].created == "1970-01-01T00:00:00Z"
    assert facts.interfaces == ["net0", "net1"]
    assert facts.disks[0].backing == "local-lvm:base-9000-disk-0"
    assert facts.disks[0].target == "scsi0"
    assert "shadowdesk" in facts.tags


@pytest.mark.parametrize("status,conf,state", [
    ({"status": "running", "qmpstatus": "running"}, {}, "running"),
    ({"status": "running", "qmpstatus": "paused"}, {}, "paused"),
    ({"status": "stopped"}, {"vmstate": "local-lvm:vm-101-state-suspend-2024", "lock": "suspended"}, "saved"),
    ({"status": "stopped"}, {}, "shutoff"),
])
def test_power_state(status, conf, state):
    assert pc.power_state(status, conf) == state


def test_saved_state_fact():
    conf = dict(SHADOW_CONF, vmstate="local-lvm:vm-101-state-suspend-2024-01-01", lock="suspended")
    facts = pc.facts_of("d", 101, "n", {"status": "stopped"}, conf, [])
    assert facts.state == "saved" and facts.has_saved_state


def test_tags():
    assert pc.sanitise_tag("Alice.Smith@Corp") == "alice.smith_corp"
    assert pc.user_tag("-bob") == "sd-user-_-bob"
    tags = pc.shadow_tags("alice", "golden;sd-user-old")
    assert tags == "golden;sd-user-alice;shadowdesk"
    for tag in pc.parse_tags(tags):
        assert pc.TAG_RE.match(tag)


def test_meta_roundtrip():
    desc = pc.format_description({"user": "a b", "template": "9000"})
    assert pc.parse_meta("hello\n" + desc) == {"user": "a b", "template": "9000"}
    assert pc.parse_meta("shadowdesk-meta: {broken") == {}
    assert pc.parse_meta(None) == {}


def test_shadow_config():
    spec = ShadowSpec(name="desk-alice", user="alice", source="9000", max_vcpus=4, max_memory_mib=8192,
                      shadow_vcpus=1, shadow_memory_mib=2048, network="vmbr1")
    params = pc.shadow_config(spec, {"net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0", "tags": "golden"},
                              "2024-01-01T00:00:00Z")
    assert params["cores"] * params["sockets"] == 4
    assert params["vcpus"] == 1 and params["memory"] == "8192" and params["balloon"] == 2048
    assert params["numa"] == 1 and params["shares"] == 0
    hotplug = set(params["hotplug"].split(","))
    # memory moves by balloon: qemu-server refuses memory hot-plug below 1 GiB of static memory
    assert {"cpu", "network", "disk"} <= hotplug and "memory" not in hotplug
    assert params["net0"] == "virtio=BC:24:11:00:00:01,bridge=vmbr1"
    assert params["tags"] == "golden;sd-user-alice;shadowdesk"
    assert pc.parse_meta(params["description"])["user"] == "alice"
    assert pc.shadow_config(spec, {}, "x")["net0"] == "virtio,bridge=vmbr1"
    with pytest.raises(InvalidInput):
        pc.shadow_config(ShadowSpec(name="d", user="u", source="9000", max_vcpus=2, shadow_vcpus=3), {}, "x")
    with pytest.raises(InvalidInput):
        pc.shadow_config(ShadowSpec(name="d", user="u", source="9000", max_memory_mib=1024,
                                    shadow_memory_mib=2048), {}, "x")


def test_checks():
    pc.check_name("desk-alice.lab")
    for bad in ("desk_alice", "-desk", "", "a b"):
        with pytest.raises(InvalidInput):
            pc.check_name(bad)
    pc.check_snapshot_name("before_update")
    for bad in ("1abc", "a", "current", "x" * 41, "a.b"):
        with pytest.raises(InvalidInput):
            pc.check_snapshot_name(bad)
    assert pc.template_vmid(" 9000") == 9000
    for bad in ("/var/lib/golden.qcow2", "99", None):
        with pytest.raises(InvalidInput):
            pc.template_vmid(bad)


def _facts(state="running", conf=None):
    conf = SHADOW_CONF if conf is None else conf
    status = {"status": "running", "qmpstatus": "paused" if state == "paused" else "running"}
    if state in ("shutoff", "saved"):
        status = {"status": "stopped"}
        if state == "saved":
            conf = dict(conf, vmstate="local-lvm:vm-101-state-x", lock="suspended")
    return pc.facts_of("desk-alice", 101, "pve1", status, conf, [])


@pytest.mark.parametrize("change,conf,mode", [
    (ResourceChange("vcpus", None, 1, 3), SHADOW_CONF, APPLIED_LIVE),
    (ResourceChange("vcpus", None, 1, 3), dict(SHADOW_CONF, hotplug="network,disk"), APPLIED_PENDING),
    (ResourceChange("vcpus", None, 1, 3), {k: v for k, v in SHADOW_CONF.items() if k != "hotplug"}, APPLIED_PENDING),
    (ResourceChange("vcpus", None, 1, 6), SHADOW_CONF, APPLIED_PENDING),
    (ResourceChange("memory_mib", None, 2048, 4096), SHADOW_CONF, APPLIED_LIVE),
    (ResourceChange("memory_mib", None, 8192, 4096), dict(SHADOW_CONF, balloon=0), APPLIED_LIVE),
    (ResourceChange("memory_mib", None, 8192, 4096), dict(SHADOW_CONF, balloon=0, numa=0), APPLIED_PENDING),
    (ResourceChange("memory_mib", None, 8192, 4096), dict(SHADOW_CONF, balloon=0, hotplug="cpu"), APPLIED_PENDING),
    (ResourceChange("cpu_limit", None, 0.0, 1.0), SHADOW_CONF, APPLIED_LIVE),
    (ResourceChange("net", "net0", {"rate_kib_s": 0}, {"rate_kib_s": 10}), SHADOW_CONF, APPLIED_LIVE),
    (ResourceChange("disk_io", "disk0", {}, {"total_iops": 1, "total_bytes_sec": 2}), SHADOW_CONF, APPLIED_LIVE),
    (ResourceChange("gpu", None, [], ["0000:01:00.0"]), SHADOW_CONF, APPLIED_PENDING),
])
def test_classify_running(change, conf, mode):
    assert pc.classify(_facts("running", conf), conf, change)[0] == mode
    assert pc.classify(_facts("paused", conf), conf, change)[0] == mode


def test_classify_not_running():
    change = ResourceChange("gpu", None, [], ["0000:01:00.0"])
    assert pc.classify(_facts("shutoff"), SHADOW_CONF, change)[0] == APPLIED_CONFIG
    # qemu-server refuses config updates under the 'suspended' lock: classify fails like apply (issue 11)
    with pytest.raises(Conflict, match="suspended"):
        pc.classify(_facts("saved"), SHADOW_CONF, change)


def test_change_params():
    changes = [
        ResourceChange("vcpus", None, 1, 3),
        ResourceChange("memory_mib", None, 2048, 4096),
        ResourceChange("cpu_limit", None, 1.5, 0.0),
        ResourceChange("net", "net0", {"rate_kib_s": 100}, {"rate_kib_s": 0}),
        ResourceChange("net", "net1", {"rate_kib_s": 0}, {"rate_kib_s": 2048}),
        ResourceChange("disk_io", "disk0", {}, {"total_iops": 0, "total_bytes_sec": 1048576}),
        ResourceChange("gpu", None, [], ["0000:01:00.0"]),
    ]
    conf = dict(SHADOW_CONF, hostpci0="host=0000:02:00.0", hostpci1="host=0000:03:00.0")
    params, delete, touched = pc.change_params(conf, changes)
    assert params["vcpus"] == 3
    assert params["balloon"] == 4096 and "memory" not in params
    assert params["cpulimit"] == "0"
    assert params["net0"] == "virtio=BC:24:11:00:00:01,bridge=vmbr0"
    assert params["net1"] == "e1000=BC:24:11:00:00:02,bridge=vmbr1,rate=2"
    assert params["scsi0"] == "local-lvm:base-9000-disk-0/vm-101-disk-0,mbps=1,size=32G"
    assert params["hostpci0"] == "host=0000:01:00.0"
    assert delete == ["hostpci1"]
    assert touched == [["vcpus"], ["balloon"], ["cpulimit"], ["net0"], ["net1"], ["scsi0"],
                       ["hostpci0", "hostpci1"]]
    params, _delete, _touched = pc.change_params(dict(SHADOW_CONF, balloon=0), [ResourceChange("memory_mib", None, 8192, 4096)])
    assert params == {"memory": "4096"}
    with pytest.raises(InvalidInput):
        pc.change_params(SHADOW_CONF, [ResourceChange("disk_io", "disk9", {}, {"total_iops": 1})])


def test_outcome_modes_follow_pending():
    touched = [["vcpus"], ["cores"], ["hostpci0", "hostpci1"]]
    modes = pc.outcome_modes(True, touched, {"cores": "6", "hostpci1": None})
    assert [m for m, _reason in modes] == [APPLIED_LIVE, APPLIED_PENDING, APPLIED_PENDING]
    assert [m for m, _reason in pc.outcome_modes(False, touched, {})] == [APPLIED_CONFIG] * 3


def test_locked_by():
    assert pc.locked_by("VM 105 is locked (backup)") == "backup"
    assert pc.locked_by("can't lock file '/var/lock/qemu-server/lock-105.conf' - got timeout") is None
    assert pc.locked_by("VM 105 is locked (snapshot-delete)\n") == "snapshot-delete"


def test_backing_of():
    assert pc.backing_of("local:9000/base-9000-disk-0.qcow2/101/vm-101-disk-0.qcow2") == \
        "local:9000/base-9000-disk-0.qcow2"
    assert pc.backing_of("local-lvm:vm-101-disk-0") == ""
    assert pc.backing_of("/dev/sdb") == ""
