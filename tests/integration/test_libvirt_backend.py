# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""LibvirtBackend on the real libvirtd + QEMU (TCG) test bed, with the busybox test guest.

The guest prints ``SHADOWDESK-READY`` once per boot and ``SDSTAT seq= cpus= memtotal_kb= uptime=`` lines (every
0.5 s with ``sd_hb=0``), so each test sees from inside the guest what the backend did. No timing assertions.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import time

import pytest

# libvirt_testbed comes from tests/integration/conftest.py
try:  # pytest.ini puts tests/ on sys.path
    from integration.testbed import (
        BASE_CMDLINE, READY_MARKER, SerialConsole, destroy_domain, settled_stat, unique_name,
    )
except ImportError:  # pragma: no cover - run from inside tests/integration
    from testbed import BASE_CMDLINE, READY_MARKER, SerialConsole, destroy_domain, settled_stat, unique_name

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends.libvirt import LibvirtBackend
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.resources import resource_changes
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import OperationRefused
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    DiskLimit, NetLimit, Resources, ShadowSpec,
)

pytestmark = pytest.mark.libvirt

MIB = 1024


class Desk:
    """One shadow desktop made through the backend, its overlay and serial console; removed by the fixture."""

    def __init__(self, testbed, backend, name):
        self.testbed, self.backend, self.name = testbed, backend, name
        self.storage = os.path.join(testbed.images_dir, "sdtest-desktops")
        self.overlay = os.path.join(self.storage, "%s.qcow2" % name)
        self.console_path = os.path.join(testbed.console_dir, "%s-serial.log" % name)
        self.console = SerialConsole(self.console_path)

    def spec(self, **over):
        kw = dict(name=self.name, user="sdtest-user", source=self.testbed.golden_image, max_vcpus=4,
                  max_memory_mib=512, shadow_vcpus=1, shadow_memory_mib=256, storage=self.storage,
                  network=self.testbed.network,
                  boot={"kernel": self.testbed.kernel, "initrd": self.testbed.initrd,
                        "cmdline": BASE_CMDLINE + " sd_hb=0"},
                  machine={"domain_type": self.testbed.domain_type, "serial_log_dir": self.testbed.console_dir})
        kw.update(over)
        return ShadowSpec(**kw)

    def boot(self):
        self.backend.create(self.spec())
        self.backend.start(self.name)
        self.console.wait_for(READY_MARKER, 120)
        return self.settled_shadow()

    def settled_shadow(self):
        """The guest's SDSTAT once the balloon has inflated to the 256 MiB shadow size (inflation is progressive:
        an earlier line can show a MemTotal half-way down, which a later comparison would then misread)."""
        return settled_stat(self.testbed.connect().lookupByName(self.name), self.console, 256 * MIB)

    def wait_stat(self, accept, timeout=60.0):
        """The next SDSTAT line for which ``accept(stat)`` holds, within ``timeout`` seconds in total."""
        deadline = time.monotonic() + timeout
        while True:
            stat = self.console.wait_stat(max(0.0, deadline - time.monotonic()))
            if accept(stat):
                return stat

    def resize(self, **target):
        facts = self.backend.get(self.name)
        changes = resource_changes(facts, Resources(**target))
        for change in changes:
            change.mode, change.reason = self.backend.classify(facts, change)
        return self.backend.apply(facts, changes)

    def cleanup(self):
        conn = self.testbed.connect()
        try:
            destroy_domain(conn, self.name, (self.overlay, self.console_path))
        finally:
            conn.close()


@pytest.fixture
def desk(libvirt_testbed):
    backend = LibvirtBackend({"uri": libvirt_testbed.uri, "shutdown_timeout": 5})
    made = Desk(libvirt_testbed, backend, unique_name("sdtest-be-"))
    try:
        yield made
    finally:
        made.cleanup()
        backend.close()


def fingerprint(path):
    data = pathlib.Path(path).read_bytes()
    return hashlib.sha256(data).hexdigest(), os.stat(path).st_mtime_ns


def test_lifecycle_hotplug_balloon_save_restore(desk):
    golden_before = fingerprint(desk.testbed.golden_image)
    facts = desk.backend.create(desk.spec())
    assert os.path.isfile(desk.overlay) and facts.disks[0].backing == os.path.realpath(desk.testbed.golden_image)
    assert (facts.state, facts.user, facts.max_vcpus, facts.config.vcpus) == ("shutoff", "sdtest-user", 4, 1)
    assert [f.name for f in desk.backend.list(user="sdtest-user")].count(desk.name) == 1

    desk.backend.start(desk.name)
    ready = desk.console.wait_for(READY_MARKER + r".* cpus=(\d+)", 120)
    assert ready[1] == "1"
    first = desk.settled_shadow()

    # vCPU hot-add and balloon, applied live and to the definition
    done = desk.resize(vcpus=2, memory_mib=384)
    assert [(c.field, c.mode) for c in done] == [("vcpus", "live"), ("memory_mib", "live")]
    desk.wait_stat(lambda s: s["cpus"] == 2 and s["memtotal_kb"] >= first["memtotal_kb"] + 120 * MIB)
    facts = desk.backend.get(desk.name)
    assert (facts.live.vcpus, facts.config.vcpus, facts.live.memory_mib, facts.config.memory_mib) == (2, 2, 384, 384)
    util = desk.backend.utilisation(desk.name, interval=0.5)
    assert util["memory"]["actual_mib"] == 384 and "disk0" in util["disks"] and "net0" in util["nets"]

    # pause / resume
    desk.backend.pause(desk.name)
    assert desk.backend.get(desk.name).state == "paused"
    desk.backend.resume(desk.name)
    assert desk.backend.get(desk.name).state == "running"

    # save -> saved -> start restores the same boot (no new READY line, uptime continues)
    before_save = desk.console.wait_stat(60, cpus=2)
    desk.backend.save(desk.name)
    facts = desk.backend.get(desk.name)
    assert (facts.state, facts.has_saved_state, facts.live.vcpus) == ("saved", True, 2)
    mark = desk.console.mark()
    desk.backend.start(desk.name)
    restored = desk.console.wait_stat(60)
    assert restored["cpus"] == 2 and restored["uptime"] >= before_save["uptime"]
    assert restored["seq"] > before_save["seq"]
    assert READY_MARKER not in desk.console.text_since(mark)
    assert desk.backend.get(desk.name).state == "running"

    # stop (forced) and remove without storage: overlay and golden image stay
    assert desk.backend.stop(desk.name, force=True) == "destroyed"
    assert desk.backend.remove(desk.name) == []
    assert desk.backend.get(desk.name) is None
    assert os.path.isfile(desk.overlay)
    assert fingerprint(desk.testbed.golden_image) == golden_before


def test_changes_to_a_saved_desktop_wait_for_a_cold_boot(desk):
    desk.boot()
    desk.backend.save(desk.name)
    done = desk.resize(vcpus=2)
    assert [c.mode for c in done] == ["pending"]
    facts = desk.backend.get(desk.name)
    assert facts.state == "saved" and facts.pending["vcpus"] == {"live": 1, "config": 2}
    desk.backend.start(desk.name)  # the restore brings back the saved (1 vCPU) guest
    assert desk.console.wait_stat(60)["cpus"] == 1
    facts = desk.backend.get(desk.name)
    assert (facts.live.vcpus, facts.config.vcpus) == (1, 2)


def test_limits_cpu_quota_disk_iotune_net_bandwidth(desk, record_property):
    desk.boot()
    outcome = {}
    for field, target in (("cpu_limit", {"cpu_limit": 0.5}),
                          ("disk_io", {"disk_io": {"disk0": DiskLimit(total_iops=200, total_bytes_sec=MIB * MIB)}}),
                          ("net", {"net": {"net0": NetLimit(rate_kib_s=1000)}})):
        try:
            done = desk.resize(**target)
            outcome[field] = done[0].mode
        except OperationRefused as exc:
            outcome[field] = "refused: %s" % exc
            assert desk.backend.get(desk.name).state == "running"  # a refusal never stops the guest
    record_property("limits", outcome)
    print("\n[limits]", outcome)
    facts = desk.backend.get(desk.name)
    if outcome["cpu_limit"] == "live":
        assert facts.live.cpu_limit == 0.5 and facts.config.cpu_limit == 0.5
        desk.resize(cpu_limit=0)
        assert desk.backend.get(desk.name).live.cpu_limit == 0.0
    if outcome["disk_io"] == "live":
        assert facts.live.disk_io["disk0"] == DiskLimit(200, MIB * MIB) == facts.config.disk_io["disk0"]
    if outcome["net"] == "live":
        assert facts.live.net["net0"].rate_kib_s == 1000 == facts.config.net["net0"].rate_kib_s
    # What this host supports is recorded above; cgroup CPU quota and QEMU I/O throttling must work here.
    assert outcome["cpu_limit"] == "live" and outcome["disk_io"] == "live"


def test_snapshot_with_memory_revert_delete(desk):
    desk.boot()
    snap = desk.backend.snapshot_create(desk.name, "before-update", with_memory=True, description="test")
    assert snap.with_memory and desk.backend.get(desk.name).state == "running"
    desk.console.mark()  # lines printed before the snapshot returned say nothing about the time after it
    at_snapshot = desk.console.wait_stat(60)
    later = desk.wait_stat(lambda s: s["uptime"] >= at_snapshot["uptime"] + 3)
    desk.backend.snapshot_revert(desk.name, "before-update")
    assert desk.backend.get(desk.name).state == "running"
    desk.console.mark()
    reverted = desk.console.wait_stat(60)
    assert reverted["uptime"] < later["uptime"]  # the guest went back in time, it did not reboot
    assert desk.backend.snapshot_delete(desk.name, "before-update") is True
    assert desk.backend.get(desk.name).snapshots == []
    assert os.path.isfile(desk.overlay)
    desk.backend.stop(desk.name, force=True)
    assert desk.backend.remove(desk.name, remove_storage=True) == [os.path.realpath(desk.overlay)]
    assert not os.path.exists(desk.overlay) and os.path.isfile(desk.testbed.golden_image)
