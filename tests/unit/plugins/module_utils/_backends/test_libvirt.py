# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unit tests of the libvirt backend against libvirt's in-memory ``test:///default`` driver.

Every backend opens its own ``test:///default`` connection, which starts from the driver's fresh state (one
running domain called ``test``), so tests are independent. Overlays are real qcow2 files made by qemu-img in
tmp_path; the 'golden image' is a tiny empty qcow2.
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

libvirt = pytest.importorskip("libvirt")

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _time  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends import _libvirt_xml as lxml  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends._libvirt_domain import (  # noqa: E402
    SD_NAMESPACE, render_domain_xml,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.select import select_backend  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.libvirt import LibvirtBackend  # noqa: E402
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.resources import (  # noqa: E402
    resource_changes,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import (  # noqa: E402
    BackendUnavailable, Conflict, DesktopNotFound, InvalidInput, OperationRefused,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (  # noqa: E402
    DiskLimit, NetLimit, ResourceChange, Resources, ShadowSpec,
)

pytestmark = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) not installed")

NS = "{%s}" % SD_NAMESPACE


@pytest.fixture
def golden(tmp_path):
    path = tmp_path / "golden" / "golden.qcow2"
    path.parent.mkdir()
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(path), "64M"], check=True)
    return path


@pytest.fixture
def backend():
    # test:///default keeps its state while any connection to it lives; a virDomain object holds a reference to
    # its connection, so collect stray ones (tracebacks, cycles) to give the next test a fresh driver.
    gc.collect()
    be = LibvirtBackend({"uri": "test:///default"})
    assert [d.name() for d in be.conn.listAllDomains(0)] == ["test"], "test:///default state leaked"
    yield be
    be.close()
    gc.collect()


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_spec(golden, tmp_path, name="sd-alice", user="alice", **kw):
    kw.setdefault("machine", {"domain_type": "test", "serial_log_dir": str(tmp_path)})
    kw.setdefault("storage", str(tmp_path / "desktops"))
    kw.setdefault("network", "default")
    return ShadowSpec(name=name, user=user, source=str(golden), max_vcpus=4, max_memory_mib=2048,
                      shadow_vcpus=1, shadow_memory_mib=512, **kw)


def classified(backend, facts, target):
    changes = resource_changes(facts, target)
    for change in changes:
        change.mode, change.reason = backend.classify(facts, change)
    return changes


# -- domain XML -------------------------------------------------------------------------------------------------
def render(**over):
    ctx = dict(domain_type="qemu", arch="x86_64", machine_type="", cpu_mode="", emulator="", graphics="",
               graphics_listen="127.0.0.1", name="sd-bob", user="bob", source="/g/golden.qcow2",
               overlay="/s/sd-bob.qcow2", storage="/s", max_memory_mib=4096, shadow_memory_mib=1024,
               max_vcpus=4, shadow_vcpus=1, network="net-a", kernel="/k/vmlinuz", initrd="/k/initrd",
               cmdline="console=ttyS0", serial_log="/log/sd-bob-serial.log")
    ctx.update(over)
    return ET.fromstring(render_domain_xml(ctx))


def test_domain_xml_sizes_and_hotplug_features():
    root = render()
    assert root.get("type") == "qemu"
    vcpu = root.find("vcpu")
    assert (vcpu.get("placement"), vcpu.get("current"), vcpu.text) == ("static", "1", "4")
    assert (root.find("memory").get("unit"), root.find("memory").text) == ("MiB", "4096")
    assert root.find("currentMemory").text == "1024"
    assert root.find("maxMemory") is None
    assert root.find("features/acpi") is not None and root.find("features/apic") is not None
    balloon = root.find("devices/memballoon")
    assert balloon.get("model") == "virtio" and balloon.find("stats").get("period") == "1"


def test_domain_xml_disk_boot_serial_nic_metadata():
    root = render()
    disk = root.find("devices/disk")
    assert disk.find("driver").get("type") == "qcow2"
    assert disk.find("source").get("file") == "/s/sd-bob.qcow2"
    assert (root.findtext("os/kernel"), root.findtext("os/initrd"), root.findtext("os/cmdline")) == (
        "/k/vmlinuz", "/k/initrd", "console=ttyS0")
    assert root.find("os/boot") is None
    serial = root.find("devices/serial/source")
    assert (serial.get("path"), serial.get("append")) == ("/log/sd-bob-serial.log", "on")
    iface = root.find("devices/interface")
    assert iface.find("source").get("network") == "net-a" and iface.find("model").get("type") == "virtio"
    meta = root.find("metadata/%sdesktop" % NS)
    assert meta.findtext(NS + "user") == "bob"
    assert meta.findtext(NS + "source") == "/g/golden.qcow2"
    assert meta.findtext(NS + "overlay") == "/s/sd-bob.qcow2"


def test_domain_xml_without_kernel_nic_boots_disk_and_escapes():
    root = render(kernel="", network="", user="<eve & 'mallory'>", domain_type="kvm")
    assert root.get("type") == "kvm"
    assert root.find("os/boot").get("dev") == "hd" and root.find("os/kernel") is None
    assert root.find("devices/interface") is None
    assert lxml.metadata(root)["user"] == "<eve & 'mallory'>"


# -- XML -> model ------------------------------------------------------------------------------------------------
DOMAIN_XML = """<domain type='qemu'><name>x</name>
<memory unit='GiB'>4</memory><currentMemory unit='KiB'>1048576</currentMemory>
<vcpu placement='static' current='2'>4</vcpu>
<cputune><global_period>100000</global_period><global_quota>150000</global_quota></cputune>
<devices>
 <disk type='file' device='disk'><driver type='qcow2'/><source file='/b.qcow2'/><target dev='vdb'/>
   <iotune><total_iops_sec>300</total_iops_sec></iotune></disk>
 <disk type='file' device='cdrom'><source file='/iso'/><target dev='sda'/></disk>
 <disk type='file' device='disk'><driver type='raw'/><source file='/aa.img'/><target dev='vdaa'/></disk>
 <disk type='file' device='disk'><driver type='qcow2'/><source file='/a.qcow2'/><target dev='vda'/>
   <backingStore type='file'><source file='/golden.qcow2'/></backingStore>
   <iotune><total_bytes_sec>1048576</total_bytes_sec></iotune></disk>
 <interface type='network'><mac address='52:54:00:00:00:01'/><target dev='vnet3'/>
   <bandwidth><inbound average='2000'/><outbound average='2000'/></bandwidth></interface>
 <interface type='network'><mac address='52:54:00:00:00:02'/><bandwidth><outbound average='500'/></bandwidth>
 </interface>
 <hostdev mode='subsystem' type='pci'><source><address domain='0x0000' bus='0x01' slot='0x00' function='0x1'/>
 </source></hostdev>
 <hostdev mode='subsystem' type='mdev'><source><address uuid='4B20D080-1B54-4048-85B3-A6A62D165C01'/></source>
 </hostdev>
</devices></domain>"""


def test_xml_resources_mapping():
    res = lxml.resources(lxml.parse(DOMAIN_XML))
    assert (res.vcpus, res.memory_mib, res.cpu_limit) == (2, 1024, 1.5)
    assert res.net == {"net0": NetLimit(2000), "net1": NetLimit(500)}
    assert res.disk_io == {"disk0": DiskLimit(0, 1048576), "disk1": DiskLimit(300, 0), "disk2": DiskLimit()}
    assert res.gpu == ["0000:01:00.1", "4b20d080-1b54-4048-85b3-a6a62d165c01"]


def test_xml_disks_in_target_order_without_cdrom():
    disks = [info for info, _limit in lxml.disks(lxml.parse(DOMAIN_XML))]
    assert [(d.key, d.target, d.format) for d in disks] == [
        ("disk0", "vda", "qcow2"), ("disk1", "vdb", "qcow2"), ("disk2", "vdaa", "raw")]
    assert disks[0].backing == "/golden.qcow2"
    assert lxml.vcpus(lxml.parse(DOMAIN_XML)) == (2, 4)
    assert lxml.memory_mib(lxml.parse(DOMAIN_XML).find("memory")) == 4096


def test_xml_no_quota_is_no_limit():
    root = lxml.parse("<domain><cputune><global_quota>-1</global_quota></cputune></domain>")
    assert lxml.cpu_limit(root) == 0.0
    assert lxml.cpu_limit(lxml.parse("<domain/>")) == 0.0


def test_pending_lists_what_waits_for_a_restart():
    live = Resources(vcpus=1, memory_mib=512, cpu_limit=0.0, net={"net0": NetLimit(0)}, gpu=[])
    config = Resources(vcpus=2, memory_mib=512, cpu_limit=0.0, net={"net0": NetLimit(100)}, gpu=["0000:01:00.0"])
    assert lxml.pending(live, config) == {
        "vcpus": {"live": 1, "config": 2},
        "gpu": {"live": [], "config": ["0000:01:00.0"]},
        "net.net0": {"live": {"rate_kib_s": 0}, "config": {"rate_kib_s": 100}},
    }


@pytest.mark.parametrize("given,canonical", [
    ("01:00.0", "0000:01:00.0"), ("0000:3B:00.1", "0000:3b:00.1"),
    ("4B20D080-1B54-4048-85B3-A6A62D165C01", "4b20d080-1b54-4048-85b3-a6a62d165c01")])
def test_gpu_names_are_normalised(given, canonical):
    assert lxml.normalise_gpu(given) == canonical
    assert lxml.gpus(lxml.parse("<domain><devices>%s</devices></domain>" % lxml.hostdev_xml(canonical))) == [
        canonical]


def test_gpu_name_must_be_pci_or_uuid():
    with pytest.raises(InvalidInput, match="neither"):
        lxml.normalise_gpu("nvidia0")


def test_snapshot_xml_mapping():
    snap = lxml.snapshot("<domainsnapshot><name>before-update</name><description>d</description>"
                         "<state>running</state><creationTime>1700000000</creationTime>"
                         "<memory snapshot='internal'/></domainsnapshot>")
    assert (snap.name, snap.created, snap.with_memory, snap.description) == (
        "before-update", "2023-11-14T22:13:20Z", True, "d")
    assert not lxml.snapshot("<domainsnapshot><name>s</name><state>shutoff</state>"
                             "<memory snapshot='no'/></domainsnapshot>").with_memory


# -- create / facts / list ---------------------------------------------------------------------------------------
def test_select_backend_builds_the_libvirt_backend():
    be = select_backend("libvirt", {"uri": "test:///default"})
    assert isinstance(be, LibvirtBackend) and be.uri == "test:///default"
    be.close()
    be.close()  # twice is fine


def test_create_makes_overlay_and_never_touches_golden(backend, golden, tmp_path):
    before = (sha256(golden), golden.stat().st_mtime_ns)
    facts = backend.create(make_spec(golden, tmp_path))
    overlay = tmp_path / "desktops" / "sd-alice.qcow2"
    assert overlay.is_file()
    info = subprocess.run(["qemu-img", "info", "-U", "--output=json", str(overlay)], capture_output=True,
                          text=True, check=True).stdout
    assert str(golden) in info and '"qcow2"' in info
    assert (sha256(golden), golden.stat().st_mtime_ns) == before
    assert facts.state == "shutoff" and facts.user == "alice" and facts.tags == ["shadowdesk"]
    assert (facts.max_vcpus, facts.max_memory_mib) == (4, 2048)
    assert (facts.config.vcpus, facts.config.memory_mib, facts.config.cpu_limit) == (1, 512, 0.0)
    assert facts.live == facts.config and facts.pending == {}
    assert [(d.key, d.source, d.backing) for d in facts.disks] == [("disk0", str(overlay), str(golden))]
    assert facts.interfaces == ["net0"]


def test_create_refuses_existing_name_and_foreign_overlay(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    with pytest.raises(Conflict, match="already exists"):
        backend.create(make_spec(golden, tmp_path))
    foreign = tmp_path / "desktops" / "sd-bob.qcow2"
    foreign.write_bytes(b"someone's data")
    with pytest.raises(Conflict, match="not an overlay"):
        backend.create(make_spec(golden, tmp_path, name="sd-bob", user="bob"))
    assert foreign.read_bytes() == b"someone's data" and backend.get("sd-bob") is None


def test_create_validates_spec(backend, golden, tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        backend.create(make_spec(tmp_path / "missing.qcow2", tmp_path))
    with pytest.raises(InvalidInput, match="boot.kernel"):
        backend.create(make_spec(golden, tmp_path, boot={"kernel": str(tmp_path / "nokernel")}))
    with pytest.raises(InvalidInput, match="Unknown machine"):
        backend.create(make_spec(golden, tmp_path, machine={"domain_typo": "kvm"}))
    assert not (tmp_path / "desktops" / "sd-alice.qcow2").exists()


def test_remove_keeps_overlay_and_recreate_reuses_it(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    overlay = tmp_path / "desktops" / "sd-alice.qcow2"
    assert backend.remove("sd-alice") == []
    assert overlay.is_file() and backend.get("sd-alice") is None
    facts = backend.create(make_spec(golden, tmp_path))  # the user's disk comes back
    assert facts.disks[0].source == str(overlay)
    assert backend.remove("sd-alice", remove_storage=True) == [str(overlay)]
    assert not overlay.exists() and golden.is_file()


def test_list_returns_only_shadow_desktops(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    backend.create(make_spec(golden, tmp_path, name="sd-bob", user="bob"))
    assert backend.get("test").tags == []  # the driver's own domain: visible by name, not listed
    assert [f.name for f in backend.list()] == ["sd-alice", "sd-bob"]
    assert [f.name for f in backend.list(user="bob")] == ["sd-bob"]


def test_power_states(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    assert backend.stop("sd-alice") == "already off"
    backend.start("sd-alice")
    assert backend.get("sd-alice").state == "running"
    backend.pause("sd-alice")
    assert backend.get("sd-alice").state == "paused"
    backend.resume("sd-alice")
    backend.save("sd-alice")
    facts = backend.get("sd-alice")
    assert (facts.state, facts.has_saved_state) == ("saved", True)
    backend.start("sd-alice")  # restore
    assert backend.get("sd-alice").state == "running"
    assert backend.stop("sd-alice", force=True) == "destroyed"
    backend.start("sd-alice")
    backend.save("sd-alice")
    backend.discard_saved_state("sd-alice")
    assert backend.get("sd-alice").state == "shutoff"


def test_save_of_shutoff_desktop_is_a_conflict(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    with pytest.raises(Conflict, match="no RAM"):
        backend.save("sd-alice")


def test_remove_running_desktop_is_a_conflict(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    backend.start("sd-alice")
    with pytest.raises(Conflict, match="stop it"):
        backend.remove("sd-alice", remove_storage=True)
    assert (tmp_path / "desktops" / "sd-alice.qcow2").is_file()


def test_remove_storage_refuses_golden_recorded_as_overlay(backend, golden, tmp_path):
    # A definition whose metadata claims the golden image as its overlay (hand-edited or corrupt).
    xml = render_domain_xml(dict(
        domain_type="test", arch="x86_64", machine_type="", cpu_mode="", emulator="", graphics="",
        graphics_listen="127.0.0.1", name="sd-evil", user="eve", source=str(golden), overlay=str(golden),
        storage=str(golden.parent), max_memory_mib=1024, shadow_memory_mib=512, max_vcpus=2, shadow_vcpus=1,
        network="", kernel="", initrd="", cmdline="", serial_log=str(tmp_path / "s.log")))
    backend.conn.defineXML(xml)
    with pytest.raises(Conflict, match="golden image"):
        backend.remove("sd-evil", remove_storage=True)
    assert golden.is_file() and backend.get("sd-evil") is not None


class _FakeDom:
    def __init__(self, state, saved=False, reason=0, complete=True):
        self._state, self._saved, self._reason, self._complete = state, saved, reason, complete

    def name(self):
        return "fake"

    def state(self):
        return [self._state, self._reason]

    def hasManagedSaveImage(self, _flags):
        return self._saved

    def managedSaveGetXMLDesc(self, _flags):
        if not self._complete:  # what qemu's driver says for an image whose header is still 'LibvirtQemudPart'
            raise libvirt.libvirtError("operation failed: save image is incomplete")
        return "<domain><name>fake</name></domain>"


CRASHED = dict(reason=libvirt.VIR_DOMAIN_SHUTOFF_CRASHED)


@pytest.mark.parametrize("state,saved,kw,want,lost", [
    (libvirt.VIR_DOMAIN_RUNNING, False, {}, "running", ""), (libvirt.VIR_DOMAIN_BLOCKED, False, {}, "running", ""),
    (libvirt.VIR_DOMAIN_PAUSED, False, {}, "paused", ""), (libvirt.VIR_DOMAIN_SHUTOFF, True, {}, "saved", ""),
    (libvirt.VIR_DOMAIN_SHUTOFF, False, {}, "shutoff", ""),
    (libvirt.VIR_DOMAIN_CRASHED, False, {}, "shutoff", "crashed"),
    # libvirt reports a killed or crashed QEMU as 'shut off (crashed)': state SHUTOFF, reason CRASHED (issue 12.2)
    (libvirt.VIR_DOMAIN_SHUTOFF, False, CRASHED, "shutoff", "crashed"),
    # an interrupted save leaves an image libvirt will not restore: not saved state (issue 12.1)
    (libvirt.VIR_DOMAIN_SHUTOFF, True, dict(complete=False), "shutoff", "incomplete"),
    (libvirt.VIR_DOMAIN_RUNNING, True, dict(complete=False), "running", ""),
])
def test_state_mapping(backend, state, saved, kw, want, lost):
    got, note, lost_session = backend._power_state(_FakeDom(state, saved, **kw))
    assert got == want
    assert (lost in lost_session) if lost else lost_session == ""
    if state == libvirt.VIR_DOMAIN_RUNNING and saved:
        assert "cancelled save" in note


# -- errors ------------------------------------------------------------------------------------------------------
def test_unknown_desktop(backend):
    assert backend.get("nope") is None
    for call in (backend.start, backend.pause, backend.save, backend.remove, backend.utilisation):
        with pytest.raises(DesktopNotFound, match="nope"):
            call("nope")


def test_daemon_down_is_backend_unavailable():
    be = LibvirtBackend({"uri": "qemu+unix:///system?socket=/nonexistent/libvirt-sock"})
    with pytest.raises(BackendUnavailable, match="Cannot connect to libvirt at qemu\\+unix"):
        be.list()
    be.close()


# -- resources ---------------------------------------------------------------------------------------------------
def test_classify_running(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    backend.start("sd-alice")
    facts = backend.get("sd-alice")
    target = Resources(vcpus=2, memory_mib=1024, net={"net0": NetLimit(1000)},
                       disk_io={"disk0": DiskLimit(200, 0)}, gpu=["01:00.0"])
    modes = {(c.field, c.key): c.mode for c in classified(backend, facts, target)}
    assert modes == {("vcpus", None): "live", ("memory_mib", None): "live", ("net", "net0"): "live",
                     ("disk_io", "disk0"): "live", ("gpu", None): "pending"}
    with pytest.raises(InvalidInput, match="never unplugged"):
        backend.classify(facts, ResourceChange("vcpus", None, 1, 0))


def test_classify_shutoff_and_saved(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    facts = backend.get("sd-alice")
    assert {c.mode for c in classified(backend, facts, Resources(vcpus=3, cpu_limit=1.0))} == {"config"}
    backend.start("sd-alice")
    backend.save("sd-alice")
    facts = backend.get("sd-alice")
    changes = classified(backend, facts, Resources(vcpus=3, memory_mib=1024))
    assert {c.mode for c in changes} == {"pending"} and "saved" in changes[0].reason


def test_over_max_is_rejected_by_the_decision(backend, golden, tmp_path):
    facts = backend.create(make_spec(golden, tmp_path))
    with pytest.raises(InvalidInput, match="maximum"):
        resource_changes(facts, Resources(memory_mib=4096))
    with pytest.raises(InvalidInput, match="maximum"):
        resource_changes(facts, Resources(vcpus=5))


def test_apply_live_keeps_config_in_step(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    backend.start("sd-alice")
    facts = backend.get("sd-alice")
    done = backend.apply(facts, classified(backend, facts, Resources(vcpus=3, memory_mib=1024,
                                                                     net={"net0": NetLimit(800)})))
    assert [(c.field, c.mode) for c in done] == [("vcpus", "live"), ("memory_mib", "live"), ("net", "live")]
    after = backend.get("sd-alice")
    assert (after.live.vcpus, after.config.vcpus) == (3, 3)
    assert (after.live.memory_mib, after.config.memory_mib) == (1024, 1024)
    assert after.live.net["net0"].rate_kib_s == 800 and after.config.net["net0"].rate_kib_s == 800
    assert after.pending == {}


def test_apply_on_saved_desktop_changes_definition_only(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    backend.start("sd-alice")
    backend.save("sd-alice")
    facts = backend.get("sd-alice")
    done = backend.apply(facts, classified(backend, facts, Resources(vcpus=2)))
    assert [c.mode for c in done] == ["pending"]
    after = backend.get("sd-alice")
    assert after.state == "saved" and after.config.vcpus == 2  # saved state kept


def test_refused_change_is_operation_refused_and_desktop_keeps_running(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    backend.start("sd-alice")
    facts = backend.get("sd-alice")
    # The test driver has no cgroup quota: a real refusal from libvirt.
    changes = classified(backend, facts, Resources(vcpus=2, cpu_limit=1.5))
    with pytest.raises(OperationRefused, match="CPU limit") as err:
        backend.apply(facts, changes)
    assert [c["field"] for c in err.value.details["applied"]] == ["vcpus"]
    assert err.value.details["failed"]["field"] == "cpu_limit"
    assert backend.get("sd-alice").state == "running"


def test_shutoff_gpu_change_goes_to_config(backend, golden, tmp_path):
    facts = backend.create(make_spec(golden, tmp_path))
    change = ResourceChange("gpu", None, [], ["0000:01:00.0"])
    assert backend.classify(facts, change)[0] == "config"
    with pytest.raises(InvalidInput):
        backend.classify(facts, ResourceChange("gpu", None, [], ["nvidia0"]))


# -- utilisation and snapshots -----------------------------------------------------------------------------------
def test_utilisation_measures_the_running_guest(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    stopped = backend.utilisation("sd-alice", 0.1)
    assert (stopped["cpu_percent"], stopped["memory"], stopped["state"]) == (0.0, {}, "shutoff")
    backend.start("sd-alice")
    before = dt.datetime.now(dt.timezone.utc)
    first = backend.utilisation("sd-alice", interval=0.1)
    second = backend.utilisation("sd-alice", interval=0.1)
    after = dt.datetime.now(dt.timezone.utc)
    # the test driver's guest clock runs at wall speed on its one online vCPU: the CPU share is ~100 %
    assert first["online_vcpus"] == 1 and 90.0 <= first["cpu_percent"] <= 100.5
    assert first["memory"]["actual_mib"] == 512.0           # the shadow size of the spec
    # counters only grow, per device key
    for kind, key in (("disks", "disk0"), ("nets", "net0")):
        assert all(second[kind][key][f] >= first[kind][key][f] for f in first[kind][key]), kind
    assert before <= _time.to_utc(first["sampled_at"]) <= _time.to_utc(second["sampled_at"]) <= after


def test_snapshots(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    backend.start("sd-alice")
    with pytest.raises(InvalidInput, match="with_memory"):
        backend.snapshot_create("sd-alice", "disk-only", with_memory=False)
    snap = backend.snapshot_create("sd-alice", "s1", description="before <update>")
    assert (snap.name, snap.with_memory, snap.description) == ("s1", True, "before <update>")
    with pytest.raises(Conflict, match="already has"):
        backend.snapshot_create("sd-alice", "s1")
    backend.snapshot_revert("sd-alice", "s1")
    assert [s.name for s in backend.get("sd-alice").snapshots] == ["s1"]
    with pytest.raises(InvalidInput, match="no snapshot"):
        backend.snapshot_revert("sd-alice", "nope")
    assert backend.snapshot_delete("sd-alice", "s1") is True
    assert backend.snapshot_delete("sd-alice", "s1") is False
    assert backend.get("sd-alice").snapshots == []
    assert os.path.isfile(tmp_path / "desktops" / "sd-alice.qcow2")


def test_revert_with_saved_state_is_a_conflict(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    backend.snapshot_create("sd-alice", "cold", with_memory=False)
    backend.start("sd-alice")
    backend.save("sd-alice")
    with pytest.raises(Conflict, match="saved state"):
        backend.snapshot_revert("sd-alice", "cold")
    assert backend.get("sd-alice").state == "saved"


def test_live_memory_is_the_balloon_target_not_the_progress():
    root = lxml.parse("<domain><metadata><b:balloon xmlns:b='https://shadowdesk.invalid/vdi/1/balloon' "
                      "target_mib='384'/></metadata><memory unit='MiB'>512</memory>"
                      "<currentMemory unit='KiB'>523264</currentMemory></domain>")
    assert lxml.resources(root).memory_mib == 384


def test_start_and_balloon_record_the_target(backend, golden, tmp_path):
    backend.create(make_spec(golden, tmp_path))
    backend.start("sd-alice")
    dom = backend.conn.lookupByName("sd-alice")
    assert lxml.balloon_target(lxml.parse(dom.XMLDesc(0))) == 512
    facts = backend.get("sd-alice")
    backend.apply(facts, classified(backend, facts, Resources(memory_mib=1024)))
    assert lxml.balloon_target(lxml.parse(dom.XMLDesc(0))) == 1024
    assert lxml.balloon_target(lxml.parse(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))) is None  # live only


def test_domain_xml_needs_no_jinja2_and_has_the_guest_agent_channel(monkeypatch):
    # The module runs on the hypervisor host, where only libvirt-python is required (issue 9).
    monkeypatch.setitem(sys.modules, "jinja2", None)
    root = render(name="sd-<&'\">", cmdline="console=ttyS0 a=\"b\" <c>")
    assert root.find("name").text == "sd-<&'\">" and root.find("os/cmdline").text == "console=ttyS0 a=\"b\" <c>"
    channel = root.find("devices/channel/target")
    assert (channel.get("type"), channel.get("name")) == ("virtio", "org.qemu.guest_agent.0")
    assert [e.tag for e in root.find("devices")][-1] == "memballoon"
