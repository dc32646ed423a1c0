# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the desktop's secondary (network shadow) NIC on libvirt.

The shadow NIC is a virtio interface on its own libvirt network (an isolated bridge, no DHCP, no forward): the
desktop's primary interface is never touched. It is recognised by its MAC, derived from the desktop name, so a
rerun finds it again and nothing else is ever detached. Attached live *and* to the definition while the desktop
runs (a later managed save/restore keeps it), to the definition only when it is shut off.
"""

from __future__ import annotations

import hashlib
import re
import time
import xml.etree.ElementTree as ET

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput, OperationRefused

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,50}$")
_BRIDGE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")


def shadow_mac(desktop):
    """A stable, locally administered MAC for the desktop's shadow NIC (KVM's 52:54:00 prefix + name digest)."""
    digest = hashlib.sha256(("shadowdesk-netshadow:" + desktop).encode()).hexdigest()
    return "52:54:00:%s:%s:%s" % (digest[0:2], digest[2:4], digest[4:6])


def network_xml(network, bridge):
    if not _NAME.match(network) or not _BRIDGE.match(bridge):
        raise InvalidInput("shadow network name %r or bridge %r is not valid (bridge: at most 15 characters)"
                           % (network, bridge))
    return ("<network><name>%s</name><bridge name='%s' stp='off' delay='0'/>"
            "<description>ShadowDesk network shadow (isolated)</description></network>" % (network, bridge))


def ensure_network(backend, network, bridge, check_mode=False):
    """Define and start the shadow network if needed; ``True`` when something changed (or would)."""
    lv = backend._lv
    try:
        net = backend.conn.networkLookupByName(network)
    except lv.libvirtError:
        net = None
    if net is not None:
        if net.isActive():
            return False
        if not check_mode:
            with backend._call("start the shadow network %s" % network):
                net.create()
        return True
    if not check_mode:
        with backend._call("define the shadow network %s" % network):
            net = backend.conn.networkDefineXML(network_xml(network, bridge))
            net.setAutostart(1)
            net.create()
    return True


def find(root, desktop):
    """``{"key", "mac", "target", "network"}`` of the shadow NIC in a domain XML root, or None."""
    mac = shadow_mac(desktop)
    for index, iface in enumerate(root.findall("devices/interface")):
        mac_elem = iface.find("mac")
        if mac_elem is not None and mac_elem.get("address", "").lower() == mac:
            target, source = iface.find("target"), iface.find("source")
            return {"key": "net%d" % index, "mac": mac,
                    "target": target.get("dev", "") if target is not None else "",
                    "network": source.get("network", "") if source is not None else ""}
    return None


def interface_xml(desktop, network):
    return ("<interface type='network'><mac address='%s'/><source network='%s'/><model type='virtio'/>"
            "</interface>" % (shadow_mac(desktop), network))


def _root(backend, dom, inactive):
    flags = backend._lv.VIR_DOMAIN_XML_INACTIVE if inactive else 0
    with backend._call("read the definition", dom.name()):
        return ET.fromstring(dom.XMLDesc(flags))


def state(backend, desktop):
    """``{"live": nic or None, "config": nic or None, "active": bool, "targets": [all live host devices]}``."""
    dom = backend._domain(desktop)
    with backend._call("read the state", desktop):
        active = bool(dom.isActive())
    live = _root(backend, dom, inactive=False) if active else None
    config = _root(backend, dom, inactive=True)
    targets = []
    if live is not None:
        for iface in live.findall("devices/interface/target"):
            if iface.get("dev"):
                targets.append(iface.get("dev"))
    return {"live": find(live, desktop) if live is not None else None, "config": find(config, desktop),
            "active": active, "targets": targets}


def attach(backend, desktop, network):
    """Attach the shadow NIC where it is missing (live while running, and the definition)."""
    lv = backend._lv
    now = state(backend, desktop)
    dom = backend._domain(desktop)
    flags = 0
    if now["active"] and now["live"] is None:
        flags |= lv.VIR_DOMAIN_AFFECT_LIVE
    if now["config"] is None:
        flags |= lv.VIR_DOMAIN_AFFECT_CONFIG
    if flags:
        with backend._call("attach the shadow NIC", desktop):
            dom.attachDeviceFlags(interface_xml(desktop, network), flags)
    after = state(backend, desktop)
    if after["active"] and (after["live"] is None or not after["live"]["target"]):
        raise OperationRefused("the shadow NIC of %s was attached but the running desktop does not show it" % desktop)
    return after


def detach(backend, desktop, network, timeout=60.0):
    """Detach the shadow NIC from the running desktop and its definition. The primary NIC is never touched.

    The live unplug completes when the guest acknowledges it (ACPI/PCI hot-unplug), after libvirt's call
    returned: wait for it up to ``timeout`` seconds (slow under TCG)."""
    lv = backend._lv
    now = state(backend, desktop)
    dom = backend._domain(desktop)
    flags = 0
    if now["live"] is not None:
        flags |= lv.VIR_DOMAIN_AFFECT_LIVE
    if now["config"] is not None:
        flags |= lv.VIR_DOMAIN_AFFECT_CONFIG
    if flags:
        with backend._call("detach the shadow NIC", desktop):
            dom.detachDeviceFlags(interface_xml(desktop, network), flags)
    deadline = time.monotonic() + timeout
    after = state(backend, desktop)
    while after["live"] is not None and time.monotonic() < deadline:
        time.sleep(0.5)
        after = state(backend, desktop)
    return after
