#!/usr/bin/env python
"""Validation period of the autoscale evaluation: choose the policy's parameters without the reported weeks.

    python benchmarks/autoscale_validation.py --trace FILE [--weeks 8] [--score-weeks 4] [--vms 15]
        [--resources cpu] [--knobs 0,0.15,0.3] [--variants variants.json]

Keeps only the first ``--weeks`` weeks of the trace (autoscale_eval.py reports the weeks after them), scores the
last ``--score-weeks`` of those, and prints for VPA and for each variant of the product policy (PolicyParams
overrides, JSON ``{name: {param: value}}``; default: the variants benchmarks/README.md lists) the points
``(allocated_hours, underprovisioned_share, scaling_actions)`` over the headroom knob, summed over the first
``--vms`` VMs. The replay and the scores are autoscale_eval.py's.
"""

import argparse
import dataclasses
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import autoscale_eval as ev  # noqa: E402  pylint: disable=wrong-import-position
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import (  # noqa: E402
    autoscale as policy,
)

FAST_DOWN = {"lookahead_s": 0, "down_step": 1.0, "quantile": 0.9}
UNDAMPED = dict(FAST_DOWN, saturation=1.0, up_step=1.0, down_hysteresis=0.0, down_after=1, down_cooldown_s=0)
VARIANTS = {
    "first draft: time of day p95, x1.5 up at 90 %, 3 low readings, 900 s, half steps": {
        "time_of_day": True, "quantile": 0.95, "saturation": 0.9, "up_step": 1.5, "down_hysteresis": 0.2,
        "down_after": 3, "down_cooldown_s": 900, "down_step": 0.5},
    "time of day p90, undamped": dict(UNDAMPED, time_of_day=True),
    "overall p90, undamped": UNDAMPED,
    "overall p90, x1.2 up at 95 %, 5 % band, 2 low readings, 600 s": dict(
        FAST_DOWN, saturation=0.95, up_step=1.2, down_hysteresis=0.05, down_after=2, down_cooldown_s=600),
    "overall p90, x1.2 up at 95 %, 10 % band, 2 low readings, 300 s (product)": dict(
        FAST_DOWN, saturation=0.95, up_step=1.2, down_hysteresis=0.1, down_after=2, down_cooldown_s=300),
    "overall p90, no fast reaction, 10 % band, 2 low readings, 600 s": dict(
        FAST_DOWN, saturation=1.0, up_step=1.0, down_hysteresis=0.1, down_after=2, down_cooldown_s=600),
}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--trace", required=True)
    parser.add_argument("--weeks", type=float, default=8)
    parser.add_argument("--score-weeks", type=float, default=4)
    parser.add_argument("--vms", type=int, default=15)
    parser.add_argument("--resources", default="cpu")
    parser.add_argument("--knobs", default="0,0.15,0.3")
    parser.add_argument("--variants", help="JSON file {name: {PolicyParams overrides}}")
    args = parser.parse_args(argv)
    variants = VARIANTS
    if args.variants:
        with open(args.variants, encoding="utf-8") as handle:
            variants = json.load(handle)
    knobs = [float(k) for k in args.knobs.split(",")]
    frame = ev.load_trace(args.trace, args.weeks)
    score_from = frame.timestamp_s.max() - args.score_weeks * ev.WEEK
    data = []
    for _vm, group in list(frame.groupby("vm_id", sort=True))[:args.vms]:
        times = group.timestamp_s.to_numpy(float)
        data.append((times, times >= score_from, ev.demands(group)))

    def run(make, kind):
        agg = {"steps": 0, "under": 0, "hours": 0.0, "actions": 0}
        for times, scored, dem in data:
            demand, maximum = dem[kind]
            got = ev.score(ev.replay(lambda m=maximum: make(m), demand, times, scored), demand, scored, kind)
            for key in agg:
                agg[key] += got[key]
        return round(agg["hours"], 1), round(agg["under"] / agg["steps"], 5), agg["actions"]

    for kind in args.resources.split(","):
        def start(maximum, kind=kind):
            return maximum if maximum else ev.START_RATE[kind]
        print(kind, "vpa", run(lambda m, kind=kind: ev.Vpa(start(m), ev.VPA_MIN[kind], m or math.inf,
                                                           policy.FIRST_EDGE[kind], memory=kind == "memory"),
                               kind), flush=True)
        for name, overrides in variants.items():
            points = []
            for knob in knobs:
                params = dataclasses.replace(policy.PolicyParams(), headroom=knob, **overrides)
                points.append(run(lambda m, p=params, kind=kind: ev.Product(kind, start(m), m, p), kind))
            print(kind, name, points, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
