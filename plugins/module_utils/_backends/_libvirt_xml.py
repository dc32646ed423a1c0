# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: read libvirt domain / snapshot XML into the neutral model. Stdlib only, no libvirt calls.

Kept apart from ``libvirt.py`` so the mapping is testable from plain XML strings and the adapter stays small.

Mapping choices (documented here because callers rely on them):
- ``cpu_limit`` is the domain-wide cgroup quota ``<cputune><global_quota>/<global_period>`` (1.5 = 150 ms per
  100 ms). Domain-wide rather than per-vCPU (``vcpu_quota``) because it means the same as Proxmox ``cpulimit``
  and stays right when vCPUs are hot-added. A missing or non-positive quota is 0.0 (= no limit).
- net rate: ``<bandwidth>`` ``average`` (libvirt's unit is KiB/s, ours too); one neutral rate for both
  directions, read from inbound, else outbound.
- disk limits: ``<iotune><total_iops_sec>/<total_bytes_sec>``.
- GPUs: PCI ``<hostdev>`` as ``0000:01:00.0``, mediated devices as their UUID.
- disks (``device='disk'`` only, no CD-ROMs) keyed disk0.. in target-name order (vda, vdb.. vdz, vdaa);
  interfaces keyed net0.. in XML order.
"""

from __future__ import annotations

import datetime
import re
import xml.etree.ElementTree as ET

from ansible_collections.shadowdesk.vdi.plugins.module_utils._backends._libvirt_domain import (
    BALLOON_NAMESPACE, SD_NAMESPACE,
)
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    DiskInfo, DiskLimit, NetLimit, Resources, Snapshot,
)

_UNIT_TO_KIB = {
    "b": 1.0 / 1024, "bytes": 1.0 / 1024, "k": 1, "kib": 1, "kb": 1000.0 / 1024, "m": 1024, "mib": 1024,
    "mb": 1000.0 ** 2 / 1024, "g": 1024 ** 2, "gib": 1024 ** 2, "gb": 1000.0 ** 3 / 1024, "t": 1024 ** 3,
    "tib": 1024 ** 3,
}
_PCI_RE = re.compile(r"^(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def memory_mib(elem):
    """``<memory unit='KiB'>N</memory>`` (any unit) -> MiB (int), None when absent."""
    if elem is None or not (elem.text or "").strip():
        return None
    factor = _UNIT_TO_KIB.get((elem.get("unit") or "KiB").lower(), 1)
    return int(round(int(elem.text.strip()) * factor / 1024.0))


def _int(text, default=0):
    try:
        return int((text or "").strip())
    except ValueError:
        return default


def cpu_limit(root):
    """cpu_limit from ``<cputune>`` global quota/period (see module docstring)."""
    tune = root.find("cputune")
    if tune is None:
        return 0.0
    quota = _int(tune.findtext("global_quota"), -1)
    period = _int(tune.findtext("global_period"), 100000) or 100000
    if quota <= 0:
        return 0.0
    return round(quota / float(period), 3)


def vcpus(root):
    """(online vCPUs, maximum vCPUs) from ``<vcpu current=..>max</vcpu>``."""
    elem = root.find("vcpu")
    maximum = _int(elem.text if elem is not None else "1", 1)
    current = _int(elem.get("current") if elem is not None else None, maximum)
    return current, maximum


def _target_sort_key(dev):
    # vda < vdb < .. < vdz < vdaa: shorter names first, like the kernel's naming.
    return (len(dev), dev)


def disks(root, metadata=None):
    """``[(DiskInfo, DiskLimit)]`` for the ``device='disk'`` disks, in target order."""
    metadata = metadata or {}
    found = []
    for disk in root.findall("devices/disk"):
        if disk.get("device", "disk") != "disk":
            continue
        target = disk.find("target")
        if target is None or not target.get("dev"):
            continue
        source = disk.find("source")
        path = ""
        if source is not None:
            path = source.get("file") or source.get("dev") or source.get("volume") or source.get("name") or ""
        driver = disk.find("driver")
        backing = disk.find("backingStore/source")
        backing_path = backing.get("file", "") if backing is not None else ""
        if not backing_path and path and path == metadata.get("overlay"):
            backing_path = metadata.get("source", "")
        iotune = disk.find("iotune")
        limit = DiskLimit(
            total_iops=_int(iotune.findtext("total_iops_sec")) if iotune is not None else 0,
            total_bytes_sec=_int(iotune.findtext("total_bytes_sec")) if iotune is not None else 0,
        )
        info = DiskInfo(key="", target=target.get("dev"), source=path,
                        format=driver.get("type", "") if driver is not None else "", backing=backing_path)
        found.append((info, limit))
    found.sort(key=lambda item: _target_sort_key(item[0].target))
    for index, (info, _limit) in enumerate(found):
        info.key = "disk%d" % index
    return found


def interfaces(root):
    """``[{'key', 'mac', 'target', 'rate'}]`` in XML order."""
    found = []
    for index, iface in enumerate(root.findall("devices/interface")):
        mac = iface.find("mac")
        target = iface.find("target")
        rate = 0
        for direction in ("inbound", "outbound"):
            elem = iface.find("bandwidth/%s" % direction)
            if elem is not None and _int(elem.get("average")) > 0:
                rate = _int(elem.get("average"))
                break
        found.append({
            "key": "net%d" % index,
            "mac": mac.get("address", "") if mac is not None else "",
            "target": target.get("dev", "") if target is not None else "",
            "rate": rate,
        })
    return found


def gpus(root):
    """Host devices given to the guest: PCI addresses (``0000:01:00.0``) and mdev UUIDs, sorted."""
    found = []
    for hostdev in root.findall("devices/hostdev"):
        address = hostdev.find("source/address")
        if address is None:
            continue
        if hostdev.get("type") == "mdev":
            found.append(address.get("uuid", "").lower())
        elif hostdev.get("type") == "pci":
            found.append("%04x:%02x:%02x.%x" % tuple(
                int(address.get(attr, "0"), 0) for attr in ("domain", "bus", "slot", "function")))
    return sorted(found)


def normalise_gpu(value):
    """A user's GPU string -> the canonical form ``gpus`` returns; InvalidInput if it is neither PCI nor UUID."""
    text = str(value).strip()
    match = _PCI_RE.match(text)
    if match:
        dom, bus, slot, func = match.groups()
        return "%04x:%02x:%02x.%x" % (int(dom or "0", 16), int(bus, 16), int(slot, 16), int(func, 16))
    if _UUID_RE.match(text):
        return text.lower()
    raise InvalidInput("GPU %r is neither a host PCI address (0000:01:00.0) nor a mediated device UUID" % value)


def hostdev_xml(gpu):
    """The ``<hostdev>`` element that gives ``gpu`` (canonical form) to a guest."""
    if _UUID_RE.match(gpu):
        return ("<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source><address uuid='%s'/></source>"
                "</hostdev>" % gpu)
    dom, bus, rest = gpu.split(":")
    slot, func = rest.split(".")
    return ("<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x%s' bus='0x%s' "
            "slot='0x%s' function='0x%s'/></source></hostdev>" % (dom, bus, slot, func))


def metadata(root):
    """Our ``<sd:desktop>`` metadata as a dict, or None when the domain is not a ShadowDesk desktop."""
    elem = root.find("metadata/{%s}desktop" % SD_NAMESPACE)
    if elem is None:
        return None
    return {child.tag.split("}", 1)[-1]: (child.text or "").strip() for child in elem}


def balloon_target(root):
    """The balloon target (MiB) recorded in a running domain's live metadata, or None."""
    elem = root.find("metadata/{%s}balloon" % BALLOON_NAMESPACE)
    if elem is None:
        return None
    return _int(elem.get("target_mib"), 0) or None


def resources(root):
    """The neutral ``Resources`` a domain XML describes. Memory is the balloon target when one is recorded:
    a live ``<currentMemory>`` follows the guest's progress towards the target, not the target itself."""
    online, _maximum = vcpus(root)
    return Resources(
        vcpus=online,
        memory_mib=balloon_target(root) or memory_mib(root.find("currentMemory")) or memory_mib(root.find("memory")),
        cpu_limit=cpu_limit(root),
        net={i["key"]: NetLimit(rate_kib_s=i["rate"]) for i in interfaces(root)},
        disk_io={info.key: limit for info, limit in disks(root)},
        gpu=gpus(root),
    )


def parse(xml_text):
    """Parse domain XML text (ElementTree root)."""
    return ET.fromstring(xml_text)


def pending(live, config):
    """What differs between the running (or saved) guest and its definition: ``{field[.key]: {live, config}}``."""
    diff = {}
    for field in ("vcpus", "memory_mib", "cpu_limit", "gpu"):
        have, want = getattr(live, field), getattr(config, field)
        if have != want:
            diff[field] = {"live": have, "config": want}
    for field in ("net", "disk_io"):
        have_map, want_map = getattr(live, field), getattr(config, field)
        for key in sorted(set(have_map) | set(want_map)):
            have = have_map[key].to_dict() if key in have_map else None
            want = want_map[key].to_dict() if key in want_map else None
            if have != want:
                diff["%s.%s" % (field, key)] = {"live": have, "config": want}
    return diff


def snapshot(xml_text):
    """A ``Snapshot`` from ``virDomainSnapshotGetXMLDesc`` output."""
    root = ET.fromstring(xml_text)
    created = None
    stamp = _int(root.findtext("creationTime"), 0)
    if stamp:
        created = datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    memory = root.find("memory")
    memory_kind = memory.get("snapshot", "") if memory is not None else ""
    state = (root.findtext("state") or "").strip()
    # Older XML has no <memory>: an internal snapshot of a running/paused domain always holds its RAM.
    with_memory = memory_kind in ("internal", "external") or (
        not memory_kind and state in ("running", "paused"))
    return Snapshot(name=(root.findtext("name") or "").strip(), created=created, with_memory=with_memory,
                    description=(root.findtext("description") or "").strip())
