# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the autoscale loop's configuration (bounds, host limits, policy knobs), checked once. Pure.

What each bound does (also in docs/autoscale.md):
- ``bounds.cpu``: CPUs' worth a desktop may be given (``min`` floor, ``max`` ceiling; the ceiling never exceeds the
  desktop's maximum vCPUs). Above the online vCPUs means hot-adding vCPUs; below means a CPU quota.
- ``bounds.memory_mib``: the balloon's range (never above the desktop's maximum memory).
- ``bounds.disk_bytes_sec`` / ``bounds.net_kib_s``: the range of each disk's total bytes/s limit / each interface's
  rate. Without both ``min`` and ``max`` the disk or network limits are left alone.
- ``host.cpu_overcommit``: the CPUs' worth all running desktops of the host may hold together, as a multiple of the
  host's CPUs; ``host.memory_reserve_mib``: host memory growth never eats into.
- ``stale_after_s``: readings older than this are treated as missing (do nothing).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Optional

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.autoscale import PolicyParams
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

BOUND_NAMES = ("cpu", "memory_mib", "disk_bytes_sec", "net_kib_s")


@dataclass(frozen=True)
class Range:
    min: Optional[float] = None
    max: Optional[float] = None


@dataclass(frozen=True)
class AutoscaleConfig:
    cpu: Range = Range()
    memory_mib: Range = Range()
    disk_bytes_sec: Range = Range()
    net_kib_s: Range = Range()
    cpu_overcommit: float = 4.0
    memory_reserve_mib: float = 1024.0
    stale_after_s: float = 180.0
    policy: PolicyParams = PolicyParams()

    def scales_disk(self):
        return self.disk_bytes_sec.min is not None and self.disk_bytes_sec.max is not None

    def scales_net(self):
        return self.net_kib_s.min is not None and self.net_kib_s.max is not None


def _range(name, spec):
    if spec is None:
        return Range()
    if not isinstance(spec, dict):
        raise InvalidInput("bounds.%s must be a dict with min and/or max, got %r" % (name, spec))
    unknown = sorted(set(spec) - {"min", "max"})
    if unknown:
        raise InvalidInput("bounds.%s has unknown keys %s (allowed: min, max)" % (name, ", ".join(unknown)))
    values = {}
    for key in ("min", "max"):
        value = spec.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput("bounds.%s.%s must be a number, got %r" % (name, key, value))
        if math.isnan(value) or value < 0:
            raise InvalidInput("bounds.%s.%s must be >= 0, got %r" % (name, key, value))
        values[key] = float(value)
    if "min" in values and "max" in values and values["min"] > values["max"]:
        raise InvalidInput("bounds.%s: min %g is above max %g" % (name, values["min"], values["max"]))
    if name == "cpu" and values.get("max") == 0:
        raise InvalidInput("bounds.cpu.max must be above 0 (a desktop with no CPU time cannot run)")
    return Range(values.get("min"), values.get("max"))


def parse_config(bounds=None, host=None, policy=None, stale_after_s=180.0):
    """Build an ``AutoscaleConfig`` from the module's dicts; raise InvalidInput naming what is wrong."""
    bounds = bounds or {}
    if not isinstance(bounds, dict):
        raise InvalidInput("bounds must be a dict, got %r" % (bounds,))
    unknown = sorted(set(bounds) - set(BOUND_NAMES))
    if unknown:
        raise InvalidInput("bounds has unknown keys %s (allowed: %s)" % (", ".join(unknown), ", ".join(BOUND_NAMES)))
    ranges = {name: _range(name, bounds.get(name)) for name in BOUND_NAMES}
    host = host or {}
    overcommit = host.get("cpu_overcommit")
    reserve = host.get("memory_reserve_mib")
    if overcommit is not None and not overcommit > 0:
        raise InvalidInput("host.cpu_overcommit must be above 0, got %r" % (overcommit,))
    if reserve is not None and reserve < 0:
        raise InvalidInput("host.memory_reserve_mib must be >= 0, got %r" % (reserve,))
    if stale_after_s is None or stale_after_s <= 0:
        raise InvalidInput("stale_after_s must be above 0, got %r" % (stale_after_s,))
    knobs = {k: v for k, v in (policy or {}).items() if v is not None}
    names = {f.name for f in dataclasses.fields(PolicyParams)}
    unknown = sorted(set(knobs) - names)
    if unknown:
        raise InvalidInput("policy has unknown keys %s (allowed: %s)" % (", ".join(unknown), ", ".join(sorted(names))))
    try:
        params = dataclasses.replace(PolicyParams(), **knobs).validate()
    except (TypeError, ValueError) as exc:
        raise InvalidInput("policy: %s" % exc) from None
    return AutoscaleConfig(
        cpu_overcommit=4.0 if overcommit is None else float(overcommit),
        memory_reserve_mib=1024.0 if reserve is None else float(reserve),
        stale_after_s=float(stale_after_s), policy=params, **ranges)
