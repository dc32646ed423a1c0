"""The test bed itself: a real TCG guest under real libvirtd sees vCPU hot-add, balloon changes, managed save/restore.

No timing assertions (speed lives in benchmarks/reconnect.py).
"""

from __future__ import annotations

import libvirt
import pytest

from integration.testbed import (  # fixtures come from conftest.py
    READY_MARKER,
    guest_exec,
    running_accel,
    settled_stat,
)

pytestmark = pytest.mark.libvirt

MIB = 1024
LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE


def test_guest_hotplug_balloon_managed_save(sd_domains, record_property):
    # sd_hb=0: an SDSTAT line every 0.5 s tick, so "the guest is alive" is observable right after a restore
    dom, console = sd_domains.define_guest(vcpus=1, max_vcpus=4, memory_mib=512, current_memory_mib=256,
                                           cmdline_extra="sd_hb=0")
    dom.create()
    ready = console.wait_for(READY_MARKER + r" kernel=(\S+) cpus=(\d+) memtotal_kb=(\d+) modules=(\d+)/(\d+)", 120)
    accel = running_accel(dom)
    record_property("accel", accel)
    print(f"\n[testbed] accel={accel} domain_type={sd_domains.testbed.domain_type} kernel={ready[1]} "
          f"modules={ready[4]}/{ready[5]}")
    assert accel == sd_domains.testbed.accel
    assert ready[2] == "1"
    assert ready[4] == ready[5], "some virtio modules failed to load (see SDWARN lines on the console)"

    # the balloon driver inflates to currentMemory=256 MiB right after boot: MemTotal drops below 256 MiB
    booted = settled_stat(dom, console, 256 * MIB)
    assert booted["cpus"] == 1
    assert booted["memtotal_kb"] < 256 * MIB
    assert dom.vcpusFlags(LIVE) == 1

    # vCPU hot-add 1 -> 2: the guest onlines it (no udev) and reports it
    dom.setVcpusFlags(2, LIVE)
    assert dom.vcpusFlags(LIVE) == 2
    after_cpu = console.wait_stat(60, cpus=2)

    # balloon 256 -> 384 MiB: the guest's MemTotal grows by the deflated 128 MiB (virtio_balloon without
    # deflate-on-oom adjusts the managed page count), and libvirt reports the new actual size
    dom.setMemoryFlags(384 * MIB, LIVE)
    grown = settled_stat(dom, console, 384 * MIB)
    assert grown["cpus"] == 2
    assert grown["memtotal_kb"] == after_cpu["memtotal_kb"] + 128 * MIB

    # managed save (shadow) and restore: same boot (uptime and seq continue, no new READY marker)
    dom.managedSave(0)
    assert not dom.isActive()
    assert dom.hasManagedSaveImage(0)
    saved_at = console.mark()
    dom.create()  # restores from the managed save image
    assert dom.isActive()
    resumed = console.wait_stat(60)
    assert resumed["seq"] > grown["seq"]
    assert resumed["uptime"] >= grown["uptime"]
    assert resumed["cpus"] == 2
    assert resumed["memtotal_kb"] == grown["memtotal_kb"]
    later = console.wait_stat(60)
    assert later["uptime"] > resumed["uptime"]
    assert READY_MARKER not in console.text_since(saved_at), "restore cold-booted instead of resuming"
    assert not dom.hasManagedSaveImage(0)
    assert dom.vcpusFlags(LIVE) == 2
    print(f"[testbed] boot={booted} +vcpu={after_cpu} +balloon={grown} restored={resumed}")


def test_guest_agent_runs_commands_and_a_written_file_survives_managed_save(sd_domains):
    """The guest's real qemu-guest-agent: guest-exec works, and what a user wrote is there after save/restore."""
    dom, console = sd_domains.define_guest(vcpus=1, max_vcpus=2, memory_mib=384, current_memory_mib=256)
    dom.create()
    console.wait_for(READY_MARKER, 120)

    assert guest_exec(dom, ["/bin/sh", "-c", "echo hello-$((6 * 7)); echo oops >&2"]) == (0, "hello-42\n", "oops\n")
    assert guest_exec(dom, ["/bin/sh", "-c", "exit 3"])[0] == 3

    token = f"token-{dom.UUIDString()}"
    written = guest_exec(dom, ["/bin/sh", "-c", f"echo {token} > /tmp/user-file"])
    assert written[0] == 0, written
    dom.managedSave(0)
    assert dom.hasManagedSaveImage(0)
    dom.create()
    assert guest_exec(dom, ["/bin/cat", "/tmp/user-file"]) == (0, token + "\n", "")
