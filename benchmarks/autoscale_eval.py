#!/usr/bin/env python
"""Replay a per-VM utilisation trace through autoscale policies and score them (issue 8).

    python benchmarks/autoscale_eval.py --trace FILE --json OUT [--score-weeks 5]
        [--first-weeks N] [--knobs 0,0.1,...] [--params '{"quantile": 0.9}'] [--jobs 1] [--vms N]

Input: CSV (optionally .gz) with ``vm_id,timestamp_s,cpu_cores,cpu_usage_pct`` and, when present,
``mem_capacity_kb,mem_usage_kb,disk_read_kbs,disk_write_kbs,net_rx_kbs,net_tx_kbs`` (the Bitbrains columns).
Demand = what the VM used (CPU: cpu_usage_pct x cpu_cores / 100 cores; memory: mem_usage_kb; disk: read + write;
network: the larger of rx and tx, since one rate limits both directions); ``cpu_cores`` and ``mem_capacity_kb`` are
the VM's maximum. Each row is one 5-minute step. Every policy sees only the readings up to step t and its answer is
the allocation of step t+1 (actuation delay of one step). A missing reading (empty cell) is given to the policies
as missing and that step is not scored for that resource.

Scored: only the last ``--score-weeks`` weeks (everything before is history the policies learn from); a trace
shorter than that is scored after its first week. ``--first-weeks N`` keeps only the first N weeks of the trace
(the validation period the parameters are chosen on). Per policy and resource: ``underprovisioned_share`` (share of
scored VM-steps whose demand exceeded the allocation), ``allocated_hours`` (CPU: core-hours; memory: GiB-hours;
disk and network: MiB/s-hours) and ``scaling_actions`` (allocation changes in the scored steps).

Policies: ``static_peak`` and ``static_p95`` (the maximum / 95th percentile of the VM's whole trace, which they see
in advance), ``threshold`` (proxmox-vm-autoscale defaults; CPU and memory only, the resources it scales), ``vpa``
(the VPA recommender + updater defaults), ``shadowdesk`` (the product policy, ``_decisions/autoscale.py``, with its
defaults) and ``shadowdesk_curve``: the product policy over its ``headroom`` knob.
"""

import argparse
import contextlib
import dataclasses
import json
import math
import multiprocessing
import os
import sys
import time

import numpy as np
import pandas as pd

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from autoscale_baselines import Threshold, Vpa  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import (  # noqa: E402
    autoscale as policy,
)

WEEK = 7 * 86400.0
STEP_HOURS = 5.0 / 60.0
KNOBS = (-0.1, -0.05, 0.0, 0.15, 0.3, 0.6, 1.0, 1.5, 2.0, 3.0, 4.0)
REQUIRED = ("vm_id", "timestamp_s", "cpu_cores", "cpu_usage_pct")
OPTIONAL = ("mem_capacity_kb", "mem_usage_kb", "disk_read_kbs", "disk_write_kbs", "net_rx_kbs", "net_tx_kbs")
# allocated_hours unit per resource: divide the allocation (policy units) by this.
HOUR_UNIT = {"cpu": 1.0, "memory": 1024.0, "disk": 1024.0 * 1024.0, "net": 1024.0}
# Floors (the smallest allocation a policy may give) and granularity of the product policy, per resource.
SD_FLOOR = {"cpu": 0.025, "memory": 256.0, "disk": 1024.0 * 1024.0, "net": 64.0}
SD_GRANULARITY = {"cpu": 0.005, "memory": 64.0, "disk": 0.0, "net": 0.0}
VPA_MIN = {"cpu": 0.025, "memory": 250.0, "disk": 1024.0 * 1024.0, "net": 64.0}
# Where disk/network allocations start (they have no capacity in the trace); history steps only, never scored.
START_RATE = {"disk": 64.0 * 1024 * 1024, "net": 16.0 * 1024}


def load_trace(path, first_weeks=None):
    head = pd.read_csv(path, nrows=0)
    missing = [c for c in REQUIRED if c not in head.columns]
    if missing:
        raise SystemExit("%s lacks the required column(s) %s" % (path, ", ".join(missing)))
    columns = list(REQUIRED) + [c for c in OPTIONAL if c in head.columns]
    frame = pd.read_csv(path, usecols=columns)
    frame = frame.sort_values(["vm_id", "timestamp_s"], kind="stable")
    if first_weeks:
        frame = frame[frame.timestamp_s < frame.timestamp_s.min() + first_weeks * WEEK]
    return frame


def demands(group):
    """Per resource: (demand array with NaN for missing, maximum or None)."""
    cores = float(group.cpu_cores.max())
    out = {"cpu": (group.cpu_usage_pct.to_numpy(float) / 100.0 * group.cpu_cores.to_numpy(float), cores)}
    if "mem_usage_kb" in group and "mem_capacity_kb" in group:
        out["memory"] = (group.mem_usage_kb.to_numpy(float) / 1024.0, float(group.mem_capacity_kb.max()) / 1024.0)
    if "disk_read_kbs" in group and "disk_write_kbs" in group:
        out["disk"] = ((group.disk_read_kbs.to_numpy(float) + group.disk_write_kbs.to_numpy(float)) * 1024.0, None)
    if "net_rx_kbs" in group and "net_tx_kbs" in group:
        out["net"] = (np.fmax(group.net_rx_kbs.to_numpy(float), group.net_tx_kbs.to_numpy(float)), None)
    return out


class Product:
    """The product policy (``_decisions/autoscale.decide_resource``) on one resource of one VM."""

    def __init__(self, kind, start, maximum, params):
        self.kind, self.alloc, self.params = kind, start, params
        self.state = policy.ResourceState()
        self.bounds = policy.Bounds(SD_FLOOR[kind], maximum if maximum else math.inf, SD_GRANULARITY[kind])

    def step_once(self, demand, now):
        floor = None
        if self.kind == "memory" and demand is not None:
            floor = demand + max(self.params.memory_margin_mib, demand * self.params.memory_margin_share)
        decision = policy.decide_resource(self.kind, demand, self.alloc, now, self.state, self.bounds, self.params,
                                          hard_floor=floor)
        self.alloc = decision.after
        return self.alloc


def replay(make, demand, times, scored):
    """Run one policy; returns (allocation per step, as in effect at that step)."""
    pol = make()
    alloc = np.empty(len(demand))
    current = pol.alloc
    for i, (value, now) in enumerate(zip(demand.tolist(), times.tolist())):
        alloc[i] = current
        current = pol.step_once(None if math.isnan(value) else value, now)
    del scored
    return alloc


def score(alloc, demand, scored, kind):
    valid = scored & ~np.isnan(demand)
    steps = int(valid.sum())
    under = int((demand[valid] > alloc[valid] + 1e-9).sum())
    changes = np.zeros(len(alloc), bool)
    changes[1:] = alloc[1:] != alloc[:-1]
    return {"steps": steps, "under": under,
            "hours": float(alloc[valid].sum() * STEP_HOURS / HOUR_UNIT[kind]),
            "actions": int((changes & scored).sum())}


def policies_for(kind, maximum, params, knobs, with_curve=True):
    start = maximum if maximum else START_RATE[kind]
    out = {}
    if kind == "cpu":
        out["threshold"] = lambda: Threshold(start, 1, min(8, maximum), 80, 20, 1)
    elif kind == "memory":
        out["threshold"] = lambda: Threshold(start, 512, min(16384, maximum), 85, 25, 512)
    out["vpa"] = lambda: Vpa(start, VPA_MIN[kind], maximum if maximum else math.inf, policy.FIRST_EDGE[kind],
                             memory=kind == "memory")
    out["shadowdesk"] = lambda: Product(kind, start, maximum, params)
    for knob in knobs if with_curve else ():
        if knob != params.headroom:  # the default setting is the "shadowdesk" run itself
            knob_params = dataclasses.replace(params, headroom=knob)
            out["curve:%g" % knob] = (lambda p=knob_params: Product(kind, start, maximum, p))
    return out


def evaluate_vm(job):
    vm_id, group, score_from, params, knobs, resources, curve_resources = job
    times = group.timestamp_s.to_numpy(float)
    scored = times >= score_from
    results = {}
    for kind, (demand, maximum) in demands(group).items():
        if kind not in resources:
            continue
        finite = demand[~np.isnan(demand)]
        if not len(finite):
            continue
        static = {"static_peak": float(finite.max()), "static_p95": float(np.percentile(finite, 95))}
        for name, value in static.items():
            results[(name, kind)] = score(np.full(len(demand), value), demand, scored, kind)
        for name, make in policies_for(kind, maximum, params, knobs, kind in curve_resources).items():
            results[(name, kind)] = score(replay(make, demand, times, scored), demand, scored, kind)
    return vm_id, results


def summarise(per_vm):
    totals = {}
    for results in per_vm:
        for key, val in results.items():
            agg = totals.setdefault(key, {"steps": 0, "under": 0, "hours": 0.0, "actions": 0})
            for field in agg:
                agg[field] += val[field]
    out = {}
    for (name, kind), agg in sorted(totals.items()):
        out.setdefault(name, {})[kind] = {
            "underprovisioned_share": round(agg["under"] / agg["steps"], 6) if agg["steps"] else None,
            "allocated_hours": round(agg["hours"], 2),
            "scaling_actions": agg["actions"],
        }
    return out


def interpolate(curve, kind, hours):
    """Under-provisioned share of the curve at ``hours`` (linear between neighbouring knob settings)."""
    points = sorted((p[kind]["allocated_hours"], p[kind]["underprovisioned_share"]) for p in curve if kind in p)
    if not points or not points[0][0] <= hours <= points[-1][0]:
        return None
    for (h0, u0), (h1, u1) in zip(points, points[1:]):
        if h0 <= hours <= h1:
            return u0 if h1 == h0 else u0 + (u1 - u0) * (hours - h0) / (h1 - h0)
    return points[-1][1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--trace", required=True)
    parser.add_argument("--json", required=True)
    parser.add_argument("--score-weeks", type=float, default=5)
    parser.add_argument("--first-weeks", type=float, help="keep only the first N weeks (validation period)")
    parser.add_argument("--knobs", default=",".join("%g" % k for k in KNOBS), help="headroom settings of the curve")
    parser.add_argument("--params", default="{}", help="JSON of PolicyParams overrides (validation runs)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--vms", type=int, help="only the first N VMs (quick runs)")
    parser.add_argument("--resources", default="cpu,memory,disk,net", help="resources to replay (quick runs)")
    parser.add_argument("--curve-resources", default="cpu,memory", help="resources the knob curve is run on")
    args = parser.parse_args(argv)
    params = dataclasses.replace(policy.PolicyParams(), **json.loads(args.params)).validate()
    knobs = [float(k) for k in args.knobs.split(",") if k.strip()]
    started = time.time()
    frame = load_trace(args.trace, args.first_weeks)
    t0, t1 = float(frame.timestamp_s.min()), float(frame.timestamp_s.max())
    score_from = t1 - args.score_weeks * WEEK
    if score_from < t0 + WEEK:  # shorter than the scored weeks (plus a week to learn): score after its first week
        score_from = t0 + WEEK if t1 - t0 > WEEK else t0
    groups = list(frame.groupby("vm_id", sort=True))
    if args.vms:
        groups = groups[:args.vms]
    resources = set(args.resources.split(","))
    curve_resources = set(args.curve_resources.split(","))
    jobs = [(vm_id, group, score_from, params, knobs, resources, curve_resources) for vm_id, group in groups]
    per_vm = []
    with multiprocessing.Pool(args.jobs) if args.jobs > 1 else contextlib.nullcontext() as pool:
        for vm_id, results in (pool.imap(evaluate_vm, jobs) if pool else map(evaluate_vm, jobs)):
            per_vm.append(results)
            print("vm %s done (%d of %d, %.0f s)" % (vm_id, len(per_vm), len(jobs), time.time() - started),
                  file=sys.stderr, flush=True)
    summary = summarise(per_vm)
    curve = []
    for knob in knobs:
        point = summary.get("shadowdesk") if knob == params.headroom else summary.pop("curve:%g" % knob)
        curve.append(dict(knob=knob, **{k: v for k, v in point.items() if k in curve_resources}))
    comparison = {}
    for name in ("vpa", "threshold"):
        for kind, stats in summary.get(name, {}).items():
            at = interpolate(curve, kind, stats["allocated_hours"])
            comparison.setdefault(name, {})[kind] = {
                "allocated_hours": stats["allocated_hours"], "policy_share": stats["underprovisioned_share"],
                "curve_share_at_same_hours": None if at is None else round(at, 6)}
    result = {
        "policies": summary, "shadowdesk_curve": curve, "knob": "headroom", "comparison_at_equal_hours": comparison,
        "trace": os.path.basename(args.trace), "vms": len(jobs), "rows": int(sum(len(g) for _v, g in groups)),
        "scored_from": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(score_from)),
        "scored_to": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t1)),
        "params": dataclasses.asdict(params), "resources": sorted(resources),
        "curve_resources": sorted(curve_resources), "runtime_s": round(time.time() - started, 1),
    }
    with open(args.json, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=1, sort_keys=True)
    for name, stats in sorted(summary.items()):
        print(name, json.dumps(stats, sort_keys=True))
    for point in curve:
        print("curve", json.dumps(point, sort_keys=True))
    print("comparison", json.dumps(comparison, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
