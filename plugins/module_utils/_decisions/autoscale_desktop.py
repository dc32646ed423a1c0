# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: one desktop's autoscale decision: readings -> per-resource decisions -> a resource target. Pure.

- Only a running desktop is scaled; paused, saved and stopped ones are left alone (and their state kept).
- A reading that is missing or older than ``stale_after_s`` decides nothing; a counter that went backwards (the
  desktop was restored) gives no rate this time. Never is anything unreadable taken as 0.
- CPU: the allocation is the CPU quota when one is set, else the online vCPUs. Growing past the online vCPUs
  hot-adds vCPUs; coming down sets a quota, never unplugs (docs/decisions.md D3).
- Memory: the balloon, never below what the guest uses plus the margin, never above the desktop's maximum.
- Floors: the plan's current stage (vCPUs / cpu_limit, memory) and the configured minimum; ceilings: the desktop's
  maximum, the configured maximum and the host room (what the node can still give; never overcommit it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import autoscale as pol
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.plan_steps import parse_time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    STATE_RUNNING, DiskLimit, NetLimit, Resources,
)

CPU_GRANULARITY = 0.05     # CPUs: libvirt's quota and PVE's cpulimit both take fractions
MEMORY_GRANULARITY = 64.0  # MiB of balloon
MIN_CPU = 0.1              # a running desktop always keeps this much CPU time
MIN_MEMORY_MIB = 128.0     # same as _decisions/resources.MIN_MEMORY_MIB


@dataclass
class DesktopDecision:
    name: str
    skipped: Optional[str] = None                        # why nothing was decided (not running, stale, ...)
    decisions: List[pol.ResourceDecision] = field(default_factory=list)
    target: Resources = field(default_factory=Resources)  # only the fields that change
    state: Dict = field(default_factory=dict)
    warnings: List[str] = field(default_factory=list)

    @property
    def changes(self):
        return [d for d in self.decisions if d.changes]

    def to_dict(self):
        return {"name": self.name, "skipped": self.skipped, "decisions": [d.to_dict() for d in self.decisions],
                "warnings": list(self.warnings)}


def epoch(value):
    """Seconds since the epoch from a number or an ISO-8601 time with an offset; None when unreadable."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            return parse_time(value, "sampled_at").timestamp()
        except InvalidInput:
            return None
    return None


def _number(value):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def _rates(now_counters, before, dt, combine):
    """Per device rate from two cumulative counter dicts; a device whose counter went back gives no rate."""
    rates = {}
    for key, counters in (now_counters or {}).items():
        old = (before or {}).get(key)
        if not isinstance(counters, dict) or not isinstance(old, dict) or not dt > 0:
            continue
        deltas = []
        for name in combine:
            new_v, old_v = _number(counters.get(name)), _number(old.get(name))
            if new_v is None or old_v is None or new_v < old_v:
                deltas = None
                break
            deltas.append((new_v - old_v) / dt)
        if deltas:
            rates[key] = deltas
    return rates


def readings(utilisation, previous_counters):
    """Normalise a backend ``utilisation`` dict (or the same shape from an event) into per-resource usage.

    Returns ``(reading, counters)``: reading = ``{"at", "cpu", "memory", "disk": {key: bytes/s},
    "net": {key: KiB/s}}`` with None for what cannot be read; counters = what to keep for the next rates.
    """
    utilisation = utilisation if isinstance(utilisation, dict) else {}
    at = epoch(utilisation.get("sampled_at"))
    percent = _number(utilisation.get("cpu_percent"))
    online = _number(utilisation.get("online_vcpus"))
    memory = utilisation.get("memory") if isinstance(utilisation.get("memory"), dict) else {}
    total, free = _number(memory.get("available_mib")), _number(memory.get("unused_mib"))
    reading = {
        "at": at,
        "cpu": None if percent is None or online is None else percent / 100.0 * online,
        # used = what the guest sees (MemTotal, libvirt "available") minus what it leaves free ("unused")
        "memory": None if total is None or free is None or free > total else total - free,
        "disk": {}, "net": {},
    }
    counters = {"at": at, "disks": utilisation.get("disks") or {}, "nets": utilisation.get("nets") or {}}
    before = previous_counters if isinstance(previous_counters, dict) else {}
    if at is not None and epoch(before.get("at")) is not None:
        dt = at - epoch(before.get("at"))
        for key, (rd, wr) in _rates(counters["disks"], before.get("disks"), dt, ("rd_bytes", "wr_bytes")).items():
            reading["disk"][key] = rd + wr
        for key, (rx, tx) in _rates(counters["nets"], before.get("nets"), dt, ("rx_bytes", "tx_bytes")).items():
            reading["net"][key] = max(rx, tx) / 1024.0
    return reading, counters


def _resource_states(state, warnings):
    stored = (state or {}).get("resources") or {}
    out = {}
    for key, data in stored.items() if isinstance(stored, dict) else ():
        try:
            out[key] = pol.ResourceState.from_dict(data)
        except ValueError as exc:
            warnings.append("forgot the malformed stored state of %s (%s); it learns again" % (key, exc))
    return out


def _stage_cpu(stage):
    if stage is None:
        return 0.0
    if stage.cpu_limit:
        return float(stage.cpu_limit)
    return float(stage.vcpus or 0)


def decide_desktop(facts, utilisation, state, config, now, stage=None, host_room=None):
    """Decide every resource of one desktop. ``state`` is what the previous run returned (or {}); ``stage`` the
    plan's current stage (``Resources``) or None; ``host_room`` ``{"cpus", "memory_mib"}`` the node can still give
    (None: unknown, nothing grows). Returns a ``DesktopDecision`` whose ``state`` is what to store."""
    decision = DesktopDecision(facts.name, state=dict(state or {}))
    if facts.state != STATE_RUNNING:
        decision.skipped = "the desktop is %s: left alone (only running desktops are scaled)" % facts.state
        return decision
    warnings = decision.warnings
    resources = _resource_states(state, warnings)
    reading, counters = readings(utilisation, (state or {}).get("counters"))
    decision.state = {"version": pol.STATE_VERSION, "counters": counters}
    if reading["at"] is None:
        decision.skipped = "no readable sampling time in the metrics: doing nothing"
    elif reading["at"] == epoch(((state or {}).get("counters") or {}).get("at")):
        decision.skipped = "this reading was already decided on (sampled at the same time): doing nothing"
    elif now - reading["at"] > config.stale_after_s:
        decision.skipped = "metrics are %.0f s old (stale after %.0f s): doing nothing" % (
            now - reading["at"], config.stale_after_s)
    if decision.skipped:
        decision.state["resources"] = {k: v.to_dict() for k, v in resources.items()}
        decision.state["counters"] = (state or {}).get("counters")
        return decision
    room = host_room or {"cpus": 0.0, "memory_mib": 0.0}
    if host_room is None:
        warnings.append("host capacity unknown: nothing grows")
    params = config.policy
    live = facts.live

    # CPU -------------------------------------------------------------------------------------------------------
    online = float(live.vcpus or 1)
    cpu_alloc = float(live.cpu_limit) if live.cpu_limit else online
    cpu_max = min(float(facts.max_vcpus), config.cpu.max if config.cpu.max is not None else math.inf)
    cpu_bounds = pol.Bounds(
        floor=min(max(config.cpu.min or 0.0, _stage_cpu(stage), MIN_CPU), cpu_max),
        ceiling=max(min(cpu_max, cpu_alloc + max(room.get("cpus", 0.0), 0.0)), min(cpu_alloc, cpu_max)),
        granularity=CPU_GRANULARITY)
    state_cpu = resources.setdefault("cpu", pol.ResourceState())
    cpu = pol.decide_resource("cpu", reading["cpu"], cpu_alloc, now, state_cpu, cpu_bounds, params)
    decision.decisions.append(cpu)
    if cpu.changes:
        wanted = round(cpu.after, 2)
        vcpus = max(int(math.ceil(wanted - 1e-9)), int(online))
        decision.target.vcpus = vcpus
        decision.target.cpu_limit = wanted if wanted < vcpus else 0.0

    # Memory ----------------------------------------------------------------------------------------------------
    mem_alloc = float(live.memory_mib or 0)
    mem_max = min(float(facts.max_memory_mib),
                  config.memory_mib.max if config.memory_mib.max is not None else math.inf)
    mem_bounds = pol.Bounds(
        floor=min(max(config.memory_mib.min or 0.0, float((stage.memory_mib if stage else 0) or 0), MIN_MEMORY_MIB),
                  mem_max),
        ceiling=max(min(mem_max, mem_alloc + max(room.get("memory_mib", 0.0), 0.0)), min(mem_alloc, mem_max)),
        granularity=MEMORY_GRANULARITY)
    used = reading["memory"]
    hard = None if used is None else used + max(params.memory_margin_mib, used * params.memory_margin_share)
    state_mem = resources.setdefault("memory", pol.ResourceState())
    mem = pol.decide_resource("memory", used, mem_alloc, now, state_mem, mem_bounds, params, hard_floor=hard)
    decision.decisions.append(mem)
    if mem.changes:
        decision.target.memory_mib = int(mem.after)
    if hard is not None and hard > mem_bounds.ceiling:
        warnings.append("the guest uses %.0f MiB; with the margin it needs %.0f MiB but at most %.0f MiB can be "
                        "given" % (used, hard, mem_bounds.ceiling))

    # Disk and network limits, only within configured bounds -----------------------------------------------------
    if config.scales_disk():
        for disk in facts.disks:
            limit = live.disk_io.get(disk.key, DiskLimit())
            _device(decision, resources, "disk", disk.key, reading["disk"].get(disk.key), limit.total_bytes_sec,
                    config.disk_bytes_sec, now, params,
                    lambda value, limit=limit, key=disk.key: decision.target.disk_io.__setitem__(
                        key, DiskLimit(total_iops=limit.total_iops, total_bytes_sec=int(value))))
    if config.scales_net():
        for key in facts.interfaces:
            limit = live.net.get(key, NetLimit())
            _device(decision, resources, "net", key, reading["net"].get(key), limit.rate_kib_s, config.net_kib_s,
                    now, params,
                    lambda value, key=key: decision.target.net.__setitem__(key, NetLimit(rate_kib_s=int(value))))
    decision.state["resources"] = {k: v.to_dict() for k, v in sorted(resources.items())}
    return decision


def _device(decision, resources, kind, key, usage, current, bounds, now, params, set_target):
    """A disk's or interface's limit; 0 (unlimited) counts as being at the configured maximum."""
    allocation = float(current) if current else bounds.max
    state = resources.setdefault("%s.%s" % (kind, key), pol.ResourceState())
    result = pol.decide_resource(kind, usage, allocation, now, state, pol.Bounds(bounds.min, bounds.max), params,
                                 key=key)
    if not current and not result.changes:
        # Unlimited today: bring it into the configured bounds at once.
        result.action, result.after = pol.DOWN, bounds.max
        result.reason = "unlimited today; set to the configured maximum (%s)" % result.reason
    result.before = float(current or 0)
    decision.decisions.append(result)
    if result.changes:
        set_target(result.after)
