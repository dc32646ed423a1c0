# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the data model shared by backends, decisions, modules and the engine.

Stdlib only (rule 1 of docs/architecture.md): a Dask worker, a callback plugin and a module running on a
hypervisor host all import this file.

Units are fixed across backends so plans and history compare:
- memory in MiB;
- CPU limit (``cpu_limit``) in CPUs' worth of time (1.5 = one and a half CPUs; 0 = no limit), as Proxmox's
  ``cpulimit``; libvirt expresses it as a cgroup quota over a period;
- network rate in KiB/s per interface (one rate for both directions: Proxmox has only one);
- disk limits as total IOPS and total bytes/s per disk (0 = no limit).
Interfaces and disks are keyed by a backend-neutral index name: ``net0``, ``net1``..., ``disk0``, ``disk1``...
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

# Power states of an existing desktop, the same words on every backend.
STATE_RUNNING = "running"
STATE_PAUSED = "paused"      # vCPUs stopped, RAM kept: resume is milliseconds
STATE_SAVED = "saved"        # RAM written to disk (managed save / hibernate), no RAM held: restore is < 1 s
STATE_SHUTOFF = "shutoff"    # defined, not running, no saved state
POWER_STATES = (STATE_RUNNING, STATE_PAUSED, STATE_SAVED, STATE_SHUTOFF)

# How a resource change took (or will take) effect.
APPLIED_LIVE = "live"        # the running guest has it now
APPLIED_CONFIG = "config"    # written to the persistent definition; the guest is not running, nothing pending
APPLIED_PENDING = "pending"  # written to the definition, applies at the next start (the running guest lacks it)
APPLY_MODES = (APPLIED_LIVE, APPLIED_CONFIG, APPLIED_PENDING)

# The fields a resource target may set, in the order they are applied (grow CPU before memory, limits last).
RESOURCE_FIELDS = ("vcpus", "memory_mib", "cpu_limit", "net", "disk_io", "gpu")


@dataclass
class NetLimit:
    rate_kib_s: int = 0  # 0 = unlimited

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclass
class DiskLimit:
    total_iops: int = 0          # 0 = unlimited
    total_bytes_sec: int = 0     # 0 = unlimited

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclass
class Resources:
    """A size of a desktop. ``None`` means "not specified / leave as is" in a target."""

    vcpus: Optional[int] = None
    memory_mib: Optional[int] = None
    cpu_limit: Optional[float] = None
    net: Dict[str, NetLimit] = field(default_factory=dict)
    disk_io: Dict[str, DiskLimit] = field(default_factory=dict)
    gpu: Optional[List[str]] = None  # host PCI addresses or mdev UUIDs; None = leave as is

    def to_dict(self):
        return {
            "vcpus": self.vcpus,
            "memory_mib": self.memory_mib,
            "cpu_limit": self.cpu_limit,
            "net": {k: v.to_dict() for k, v in sorted(self.net.items())},
            "disk_io": {k: v.to_dict() for k, v in sorted(self.disk_io.items())},
            "gpu": list(self.gpu) if self.gpu is not None else None,
        }

    @classmethod
    def from_dict(cls, data):
        data = data or {}
        return cls(
            vcpus=data.get("vcpus"),
            memory_mib=data.get("memory_mib"),
            cpu_limit=data.get("cpu_limit"),
            net={k: NetLimit(**(v or {})) for k, v in (data.get("net") or {}).items()},
            disk_io={k: DiskLimit(**(v or {})) for k, v in (data.get("disk_io") or {}).items()},
            gpu=list(data["gpu"]) if data.get("gpu") is not None else None,
        )


@dataclass
class Snapshot:
    name: str
    created: Optional[str] = None  # ISO-8601 UTC
    with_memory: bool = False
    description: str = ""

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclass
class DiskInfo:
    key: str                 # disk0, disk1...
    target: str              # backend's own name: vda / scsi0
    source: str = ""         # path (libvirt) or volume id (Proxmox)
    format: str = ""
    backing: str = ""        # golden image / template volume the overlay or linked clone is based on

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclass
class DesktopFacts:
    """What a backend knows about one desktop. Everything a decision needs, nothing backend-specific."""

    name: str
    backend: str
    state: str                              # one of POWER_STATES
    user: Optional[str] = None
    backend_id: Optional[str] = None        # libvirt UUID / Proxmox vmid
    node: Optional[str] = None              # hypervisor host or PVE node
    max_vcpus: int = 1
    max_memory_mib: int = 0
    live: Resources = field(default_factory=Resources)     # what the running guest has (or would have at start)
    config: Resources = field(default_factory=Resources)   # the persistent definition (next start)
    pending: Dict[str, Any] = field(default_factory=dict)  # backend keys that wait for a restart
    has_saved_state: bool = False
    # Why the desktop's last in-memory session is gone (its QEMU crashed or was killed, its saved image is
    # incomplete); "" when nothing was lost. The next start is a cold boot, not the user's session.
    lost_session: str = ""
    snapshots: List[Snapshot] = field(default_factory=list)
    disks: List[DiskInfo] = field(default_factory=list)
    interfaces: List[str] = field(default_factory=list)    # net0, net1...
    tags: List[str] = field(default_factory=list)

    @property
    def is_active(self):
        return self.state in (STATE_RUNNING, STATE_PAUSED)

    def to_dict(self):
        return {
            "name": self.name,
            "backend": self.backend,
            "state": self.state,
            "user": self.user,
            "backend_id": self.backend_id,
            "node": self.node,
            "max_vcpus": self.max_vcpus,
            "max_memory_mib": self.max_memory_mib,
            "live": self.live.to_dict(),
            "config": self.config.to_dict(),
            "pending": dict(self.pending),
            "has_saved_state": self.has_saved_state,
            "lost_session": self.lost_session,
            "snapshots": [s.to_dict() for s in self.snapshots],
            "disks": [d.to_dict() for d in self.disks],
            "interfaces": list(self.interfaces),
            "tags": list(self.tags),
        }


@dataclass
class ShadowSpec:
    """How to create a user's shadow desktop: defined at full size, running at shadow size."""

    name: str
    user: str
    source: str                      # libvirt: golden image path; Proxmox: template vmid
    max_vcpus: int = 4
    max_memory_mib: int = 8192
    shadow_vcpus: int = 1
    shadow_memory_mib: int = 2048
    node: Optional[str] = None       # Proxmox node (None: the template's node)
    storage: Optional[str] = None    # libvirt: overlay directory; Proxmox: target storage
    network: Optional[str] = None    # libvirt network name / Proxmox bridge; None: no NIC
    boot: Dict[str, str] = field(default_factory=dict)  # libvirt direct kernel boot: kernel, initrd, cmdline
    machine: Dict[str, str] = field(default_factory=dict)  # libvirt domain type / emulator overrides

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclass
class ResourceChange:
    """One thing that must change to reach a target, and how it will take effect."""

    field: str                # one of RESOURCE_FIELDS
    key: Optional[str]        # net0 / disk0 for per-device fields, else None
    before: Any
    after: Any
    mode: str = APPLIED_LIVE  # one of APPLY_MODES, predicted by the backend before applying
    reason: str = ""          # why this mode (e.g. "cores change needs a restart")

    def to_dict(self):
        return dataclasses.asdict(self)
