# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the libvirt domain XML of a shadow desktop, built with the stdlib (xml.etree.ElementTree).

Why these elements:
- ``<vcpu current=shadow>max</vcpu>`` and ``<memory>max</memory><currentMemory>shadow</currentMemory>``: the
  desktop is *defined* at full size and *runs* at shadow size, so growing it is a vCPU hot-add plus a balloon
  deflate, never a restart. No ``<maxMemory>``/DIMM hot-plug: the balloon is enough and works on every guest.
- ``<acpi/><apic/>``: without them QEMU cannot announce a hot-added vCPU to the guest.
- ``<memballoon><stats period='1'/>``: balloon plus the guest memory statistics used by ``utilisation``.
- the serial console goes to a log file with ``append='on'`` so a restart (or a restore) does not truncate what
  the guest printed before; tests read it.
- ``<metadata><sd:desktop>``: marks the domain as ours and records the overlay it owns, so ``remove`` deletes
  exactly that file and ``list`` ignores every other domain on the host.

- ``<channel>`` ``org.qemu.guest_agent.0``: the guest agent's virtio-serial port (commands inside the guest).

Built with ElementTree, not a template engine: the module runs on the hypervisor host, where only libvirt-python
is required (jinja2 there was an undeclared requirement). ElementTree escapes every text and attribute, so a user
name or path with ``<``/``&``/quotes cannot break the XML.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

SD_NAMESPACE = "https://shadowdesk.invalid/vdi/1"
# Live-only metadata: the balloon *target* last asked for (see libvirt.py _record_balloon_target for why).
BALLOON_NAMESPACE = "https://shadowdesk.invalid/vdi/1/balloon"
GUEST_AGENT_CHANNEL = "org.qemu.guest_agent.0"

# Defaults of the ``spec.machine`` overrides. TCG ('qemu') because that is what works everywhere (KVM needs
# /dev/kvm); production hosts set domain_type: kvm.
MACHINE_DEFAULTS = {
    "domain_type": "qemu",
    "arch": "x86_64",
    "machine_type": "",      # '' = libvirt's default machine type for the arch
    "cpu_mode": "",          # '' = hypervisor default; e.g. host-passthrough on KVM hosts
    "emulator": "",          # '' = libvirt's default emulator
    "graphics": "",          # '' = headless; 'spice' or 'vnc'
    "graphics_listen": "127.0.0.1",
    "serial_log_dir": "/var/log/libvirt/qemu",
}


def _add(parent, tag, text=None, **attrs):
    """A child element; attribute values and text are escaped by ElementTree (names with <, &, quotes are safe)."""
    elem = ET.SubElement(parent, tag, {k: str(v) for k, v in attrs.items()})
    if text is not None:
        elem.text = str(text)
    return elem


def _metadata(domain, ctx):
    desktop = _add(_add(domain, "metadata"), "{%s}desktop" % SD_NAMESPACE)
    for key in ("user", "source", "overlay", "storage"):
        _add(desktop, "{%s}%s" % (SD_NAMESPACE, key), ctx[key])


def _os(domain, ctx):
    os_elem = _add(domain, "os")
    type_attrs = {"arch": ctx["arch"]}
    if ctx["machine_type"]:
        type_attrs["machine"] = ctx["machine_type"]
    _add(os_elem, "type", "hvm", **type_attrs)
    if not ctx["kernel"]:
        _add(os_elem, "boot", dev="hd")
        return
    _add(os_elem, "kernel", ctx["kernel"])
    for key in ("initrd", "cmdline"):
        if ctx[key]:
            _add(os_elem, key, ctx[key])


def _devices(domain, ctx):
    devices = _add(domain, "devices")
    if ctx["emulator"]:
        _add(devices, "emulator", ctx["emulator"])
    disk = _add(devices, "disk", type="file", device="disk")
    _add(disk, "driver", name="qemu", type="qcow2", discard="unmap")
    _add(disk, "source", file=ctx["overlay"])
    _add(disk, "target", dev="vda", bus="virtio")
    if ctx["network"]:
        iface = _add(devices, "interface", type="network")
        _add(iface, "source", network=ctx["network"])
        _add(iface, "model", type="virtio")
    for tag, target in (("serial", {"port": "0"}), ("console", {"type": "serial", "port": "0"})):
        chardev = _add(devices, tag, type="file")
        _add(chardev, "source", path=ctx["serial_log"], append="on")
        _add(chardev, "target", **target)
    if ctx["graphics"]:
        graphics = _add(devices, "graphics", type=ctx["graphics"], autoport="yes", listen=ctx["graphics_listen"])
        _add(graphics, "listen", type="address", address=ctx["graphics_listen"])
        _add(_add(devices, "video"), "model", type="qxl" if ctx["graphics"] == "spice" else "vga")
    channel = _add(devices, "channel", type="unix")
    _add(channel, "target", type="virtio", name=GUEST_AGENT_CHANNEL)
    _add(_add(devices, "memballoon", model="virtio"), "stats", period="1")


def render_domain_xml(context):
    """The domain XML for ``context`` (the names ``LibvirtBackend._template_context`` gives). Stdlib only: the
    module runs on the hypervisor host, where nothing but libvirt-python is required."""
    ctx = dict(context)
    ET.register_namespace("sd", SD_NAMESPACE)
    domain = ET.Element("domain", type=ctx["domain_type"])
    _add(domain, "name", ctx["name"])
    _metadata(domain, ctx)
    _add(domain, "memory", ctx["max_memory_mib"], unit="MiB")
    _add(domain, "currentMemory", ctx["shadow_memory_mib"], unit="MiB")
    _add(domain, "vcpu", ctx["max_vcpus"], placement="static", current=ctx["shadow_vcpus"])
    _os(domain, ctx)
    features = _add(domain, "features")
    _add(features, "acpi")
    _add(features, "apic")
    if ctx["cpu_mode"]:
        _add(domain, "cpu", mode=ctx["cpu_mode"])
    _add(domain, "clock", offset="utc")
    for event, action in (("on_poweroff", "destroy"), ("on_reboot", "restart"), ("on_crash", "destroy")):
        _add(domain, event, action)
    _devices(domain, ctx)
    return ET.tostring(domain, encoding="unicode") + "\n"
