# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: what must change to bring a desktop to a resource target. Pure (stdlib + _model + _errors).

Rules that hold on every backend:
- vCPUs only ever grow by hot-add; a smaller target is reached with a CPU limit (cgroup quota / cpulimit), because
  vCPU unplug timed out on real guests and a managed save after it crashed QEMU (measured, see docs/decisions.md).
- Values over the desktop's maximum are rejected, not clipped: a silent clip would let a plan believe it had
  resources it has not.
- The comparison is against what the guest has now when it is active, else against its persistent definition.
"""

from __future__ import annotations

import math

from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput
from ansible_collections.shadowdesk.vdi.plugins.module_utils._model import (
    APPLIED_PENDING, RESOURCE_FIELDS, DiskLimit, NetLimit, ResourceChange, Resources,
)

MIN_MEMORY_MIB = 128
# Bounds every backend can store exactly: QEMU refuses throttle values above 1e15 (THROTTLE_VALUE_MAX) and libvirt
# overflows past 64 bits; a NIC rate is kept within a 32-bit KiB/s count (4 TiB/s, far above any real NIC).
MAX_IO_LIMIT = 10 ** 15
MAX_RATE_KIB_S = 2 ** 32 - 1
# The kernel's smallest CFS quota is 1 ms per 100 ms period: a finer cpu_limit cannot be applied (libvirt would
# keep the old quota while reporting the new value) and would never read back equal (no idempotence).
CPU_LIMIT_STEP = 0.01
_DISK_LIMIT_KEYS = ("total_iops", "total_bytes_sec")


def _whole(value, where, low, high):
    """An integer option value from YAML/Jinja (int, integral float or digit string) within low..high."""
    number = value
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            raise InvalidInput("%s=%r is not a whole number" % (where, value)) from None
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    if isinstance(number, bool) or not isinstance(number, int):
        raise InvalidInput("%s=%r is not a whole number" % (where, value))
    if not low <= number <= high:
        raise InvalidInput("%s=%s is outside %s..%s" % (where, number, low, high))
    return number


def _cpu_limit(value, where):
    """cpu_limit as a float: 0 (no limit) or a multiple of CPU_LIMIT_STEP."""
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise InvalidInput("%s=%r is not a number" % (where, value)) from None
    if isinstance(value, bool) or not math.isfinite(number) or number < 0:
        raise InvalidInput("%s=%r must be a finite number >= 0 (0 means no limit)" % (where, value))
    steps = number / CPU_LIMIT_STEP
    if abs(steps - round(steps)) > 1e-6:
        raise InvalidInput("%s=%r cannot be applied exactly: a CPU limit is 0 or a multiple of %s CPU (the "
                           "kernel's smallest quota is 1 ms per 100 ms)" % (where, value, CPU_LIMIT_STEP))
    return round(round(steps) * CPU_LIMIT_STEP, 2)


def _device_map(value, where):
    if not isinstance(value, dict):
        raise InvalidInput("%s must be a dict keyed by device (net0, disk0, ...), got %r" % (where, value))
    for key, limit in value.items():
        if not isinstance(limit, dict):
            raise InvalidInput("%s.%s must be a dict of limits, got %r (to lift the limits give them as 0)"
                               % (where, key, limit))
    return value


def _net_limits(value, where):
    limits = {}
    for key, limit in _device_map(value, where).items():
        unknown = sorted(set(limit) - {"rate_kib_s"})
        if unknown or "rate_kib_s" not in limit:
            raise InvalidInput("%s.%s takes exactly one key, rate_kib_s (got: %s)"
                               % (where, key, ", ".join(sorted(map(str, limit))) or "nothing"))
        limits[key] = NetLimit(rate_kib_s=_whole(limit["rate_kib_s"], "%s.%s.rate_kib_s" % (where, key),
                                                 0, MAX_RATE_KIB_S))
    return limits


def _disk_limits(value, where):
    limits = {}
    for key, limit in _device_map(value, where).items():
        unknown = sorted(set(map(str, limit)) - set(_DISK_LIMIT_KEYS))
        if unknown or not limit:
            raise InvalidInput("%s.%s takes total_iops and/or total_bytes_sec (got: %s)"
                               % (where, key, ", ".join(sorted(map(str, limit))) or "nothing"))
        limits[key] = DiskLimit(**{name: _whole(limit.get(name, 0), "%s.%s.%s" % (where, key, name), 0,
                                                MAX_IO_LIMIT) for name in _DISK_LIMIT_KEYS})
    return limits


def parse_target(data, where="target"):
    """A resource target dict (module options or one stage of a plan) -> ``Resources``, checking every value.

    Values inside ``stages``, ``net`` and ``disk_io`` never pass Ansible's own type checks, so this is where a
    wrong type or an unrepresentable number becomes a clear InvalidInput instead of a crash or a silent change.
    """
    if not isinstance(data, dict):
        raise InvalidInput("%s is malformed: expected a dict of resources, got %r" % (where, data))
    unknown = sorted(set(map(str, data)) - set(RESOURCE_FIELDS))
    if unknown:
        raise InvalidInput("%s is malformed: unknown keys %s (allowed: %s)"
                           % (where, ", ".join(unknown), ", ".join(RESOURCE_FIELDS)))
    prefix = "%s." % where if where else ""
    target = Resources()
    if data.get("vcpus") is not None:
        target.vcpus = _whole(data["vcpus"], prefix + "vcpus", 1, 2 ** 31 - 1)
    if data.get("memory_mib") is not None:
        target.memory_mib = _whole(data["memory_mib"], prefix + "memory_mib", 1, 2 ** 53)
    if data.get("cpu_limit") is not None:
        target.cpu_limit = _cpu_limit(data["cpu_limit"], prefix + "cpu_limit")
    if data.get("net") is not None:
        target.net = _net_limits(data["net"], prefix + "net")
    if data.get("disk_io") is not None:
        target.disk_io = _disk_limits(data["disk_io"], prefix + "disk_io")
    if data.get("gpu") is not None:
        gpus = data["gpu"]
        if not isinstance(gpus, list) or not all(isinstance(g, str) and g.strip() for g in gpus):
            raise InvalidInput("%sgpu must be a list of PCI addresses or mdev UUIDs, got %r" % (prefix, gpus))
        target.gpu = list(gpus)
    return target


def current_resources(facts):
    """What the desktop has now: live values when active, else the persistent definition."""
    return facts.live if facts.is_active else facts.config


def validate_target(facts, target):
    """Raise InvalidInput when the target is impossible for this desktop."""
    if target.vcpus is not None and not 1 <= target.vcpus <= facts.max_vcpus:
        raise InvalidInput(
            "vcpus=%s is outside 1..%s (the desktop's maximum vCPUs) for %s"
            % (target.vcpus, facts.max_vcpus, facts.name),
            desktop=facts.name, max_vcpus=facts.max_vcpus)
    if target.memory_mib is not None and not MIN_MEMORY_MIB <= target.memory_mib <= facts.max_memory_mib:
        raise InvalidInput(
            "memory_mib=%s is outside %s..%s (the desktop's maximum memory) for %s"
            % (target.memory_mib, MIN_MEMORY_MIB, facts.max_memory_mib, facts.name),
            desktop=facts.name, max_memory_mib=facts.max_memory_mib)
    if target.cpu_limit is not None and not 0 <= target.cpu_limit <= facts.max_vcpus:
        raise InvalidInput(
            "cpu_limit=%s is outside 0..%s for %s (0 means no limit)"
            % (target.cpu_limit, facts.max_vcpus, facts.name), desktop=facts.name)
    for key, limit in target.net.items():
        if key not in facts.interfaces:
            raise InvalidInput("%s has no network interface %s (it has: %s)"
                               % (facts.name, key, ", ".join(facts.interfaces) or "none"), desktop=facts.name)
        if limit.rate_kib_s < 0:
            raise InvalidInput("net.%s.rate_kib_s must be >= 0" % key, desktop=facts.name)
    disk_keys = [d.key for d in facts.disks]
    for key, limit in target.disk_io.items():
        if key not in disk_keys:
            raise InvalidInput("%s has no disk %s (it has: %s)"
                               % (facts.name, key, ", ".join(disk_keys) or "none"), desktop=facts.name)
        if limit.total_iops < 0 or limit.total_bytes_sec < 0:
            raise InvalidInput("disk_io.%s limits must be >= 0" % key, desktop=facts.name)


def _cpu_changes(facts, current, target):
    changes = []
    online = current.vcpus or 1
    wanted_limit = target.cpu_limit
    if target.vcpus is not None:
        if target.vcpus > online:
            changes.append(ResourceChange("vcpus", None, online, target.vcpus))
        if wanted_limit is None:
            # Scale down by quota, never by unplug; a target at or above the online count lifts our limit.
            wanted_limit = float(target.vcpus) if target.vcpus < online else 0.0
    if wanted_limit is not None and float(current.cpu_limit or 0.0) != float(wanted_limit):
        changes.append(ResourceChange("cpu_limit", None, float(current.cpu_limit or 0.0), float(wanted_limit)))
    return changes


def resource_changes(facts, target):
    """List the ``ResourceChange`` objects (mode not yet classified) that bring ``facts`` to ``target``."""
    validate_target(facts, target)
    current = current_resources(facts)
    changes = _cpu_changes(facts, current, target)
    if target.memory_mib is not None and current.memory_mib != target.memory_mib:
        changes.append(ResourceChange("memory_mib", None, current.memory_mib, target.memory_mib))
    for key in sorted(target.net):
        have = current.net.get(key, NetLimit())
        if have.rate_kib_s != target.net[key].rate_kib_s:
            changes.append(ResourceChange("net", key, have.to_dict(), target.net[key].to_dict()))
    for key in sorted(target.disk_io):
        have = current.disk_io.get(key, DiskLimit())
        if have.to_dict() != target.disk_io[key].to_dict():
            changes.append(ResourceChange("disk_io", key, have.to_dict(), target.disk_io[key].to_dict()))
    if target.gpu is not None:
        # Compared with what the guest has, like every field: a GPU already written to the definition but not
        # yet in the running guest is found again here and parked by split_already_pending (reported pending).
        have_gpu = sorted(current.gpu or [])
        if have_gpu != sorted(target.gpu):
            changes.append(ResourceChange("gpu", None, have_gpu, sorted(target.gpu)))
    return changes


def resolve_stage(stages, stage):
    """Pick one named stage (e.g. ``shadow``/``warm``/``full``) from a staged target dict."""
    if stage not in stages:
        raise InvalidInput("stage %r is not one of the given stages (%s)" % (stage, ", ".join(sorted(stages))))
    return parse_target(stages[stage], "stage %r" % stage)


def predicted(current, changes):
    """The resources after the changes (for check-mode diffs)."""
    after = Resources.from_dict(current.to_dict())
    for change in changes:
        if change.field == "net":
            after.net[change.key] = NetLimit(**change.after)
        elif change.field == "disk_io":
            after.disk_io[change.key] = DiskLimit(**change.after)
        else:
            setattr(after, change.field, change.after)
    return after


def _value(resources, change):
    if change.field == "net":
        limit = resources.net.get(change.key)
        return limit.to_dict() if limit else NetLimit().to_dict()
    if change.field == "disk_io":
        limit = resources.disk_io.get(change.key)
        return limit.to_dict() if limit else DiskLimit().to_dict()
    value = getattr(resources, change.field)
    return sorted(value or []) if change.field == "gpu" else value


def split_already_pending(facts, changes):
    """Separate changes that are already waiting in the definition of a running desktop.

    A change the hypervisor can only apply at the next start stays pending after the first run; asking for it
    again must not count as a change (idempotence), but it is still reported as pending.
    Returns ``(to_apply, already_pending)``.
    """
    to_apply, waiting = [], []
    for change in changes:
        if facts.is_active and change.mode == APPLIED_PENDING and _value(facts.config, change) == change.after:
            waiting.append(change)
        else:
            to_apply.append(change)
    return to_apply, waiting
