# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: per-user resource profile from utilisation samples (stdlib only).

Contract (docs/architecture.md)::

    {"user", "vcpus", "memory_mib", "hourly": {"0".."23": {"cpu_p95": vCPUs, "memory_p95_mib": MiB}}, "samples": n}

A sample is ``{"user", "at" (aware datetime or ISO), "cpu" (vCPUs busy, e.g. 1.4), "memory_mib"}``; hours are UTC
hours of day (the plan's price tables are UTC too). ``vcpus``/``memory_mib`` are the overall p95 rounded up to a
whole vCPU / 256 MiB. Hours without samples take the overall p95.
"""

from __future__ import annotations

import math

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput


def percentile(values, q):
    """Linear-interpolated percentile (``q`` in 0..100) of a non-empty list."""
    vals = sorted(values)
    if not vals:
        raise ValueError("no values")
    pos = (len(vals) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def _hour(at):
    return _time.utc_hour(at, "sample time")


def user_profile(user, samples, q=95):
    cpu, mem = [], []
    by_hour = {h: ([], []) for h in range(24)}
    for s in samples:
        c = float(s.get("cpu") or 0.0)
        m = float(s.get("memory_mib") or 0.0)
        if c < 0 or m < 0:
            raise InvalidInput("negative utilisation sample for %s" % user)
        h = _hour(s["at"])
        cpu.append(c)
        mem.append(m)
        by_hour[h][0].append(c)
        by_hour[h][1].append(m)
    if not cpu:
        return {"user": user, "vcpus": None, "memory_mib": None, "hourly": {}, "samples": 0}
    cpu_all, mem_all = percentile(cpu, q), percentile(mem, q)
    hourly = {}
    for h in range(24):
        hc, hm = by_hour[h]
        hourly[str(h)] = {
            "cpu_p95": round(percentile(hc, q) if hc else cpu_all, 3),
            "memory_p95_mib": int(math.ceil(percentile(hm, q) if hm else mem_all)),
        }
    return {
        "user": user,
        "vcpus": max(1, int(math.ceil(cpu_all - 1e-9))),
        "memory_mib": int(math.ceil(mem_all / 256.0) * 256) or 256,
        "hourly": hourly,
        "samples": len(cpu),
    }


def profiles(samples, q=95):
    """Profiles of every user in ``samples`` -> ``{user: profile}``."""
    by_user = {}
    for s in samples:
        by_user.setdefault(s["user"], []).append(s)
    return {u: user_profile(u, ss, q) for u, ss in sorted(by_user.items())}


def samples_from_utilisation(rows):
    """History-store utilisation rows -> profile samples (``cpu`` in busy vCPUs: percent of the online vCPUs)."""
    out = []
    for row in rows:
        if not row.get("user") or row.get("cpu_percent") is None:
            continue
        vcpus = float(row.get("vcpus") or 1.0)
        out.append({"user": row["user"], "at": row["sampled_at"],
                    "cpu": float(row["cpu_percent"]) / 100.0 * vcpus,
                    "memory_mib": float(row.get("memory_mib") or 0.0)})
    return out
