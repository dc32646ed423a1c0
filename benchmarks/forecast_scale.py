#!/usr/bin/env python
"""Forecast scale benchmark: N synthetic users, fit + 48 h forecast, on W local worker processes.

Scenario (a nightly run): every user has --weeks of hourly-fitted history (Mon-Fri, noisy login hour, local
offsets -8..+2 h). Round 1 is a cold start (no stored models). Round 2 is the next night: --changed of the users
got one more session (refit, warm-started from their stored parameters), the rest are unchanged (model reused).

    python benchmarks/forecast_scale.py                 # 400 users
    python benchmarks/forecast_scale.py --users 10000   # the full run recorded in benchmarks/README.md
Reports users/min/core per round and the peak RSS (parent + workers).
"""

import argparse
import datetime as dt
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import forecast as fc

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 2, tzinfo=UTC)


def history(i, weeks, end):
    rnd = random.Random(i)
    off = rnd.choice([-480, -300, -240, 0, 60, 120])
    login = rnd.uniform(7, 11)
    hours = rnd.uniform(5, 9)
    presence = rnd.uniform(0.5, 0.95)
    rows = []
    first = end - dt.timedelta(days=7 * weeks)
    for d in range(7 * weeks):
        day = first + dt.timedelta(days=d)
        if day.weekday() >= 5 or rnd.random() > presence:
            continue
        s = day + dt.timedelta(hours=login + rnd.gauss(0, 1.0), minutes=-off)
        rows.append({"user": "u%05d" % i, "start": s, "end": s + dt.timedelta(hours=hours + rnd.gauss(0, 1)),
                     "tz_offset_min": off})
    return rows


def rss_mib():
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return round(me / 1024.0, 1), round(kids / 1024.0, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=400)
    ap.add_argument("--weeks", type=int, default=8)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--changed", type=float, default=0.2, help="share of users with a new session in round 2")
    ap.add_argument("--engine", default="process")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sd-forecast-bench-")
    model_dir = os.path.join(tmp, "models")
    try:
        t = time.time()
        hist = {"u%05d" % i: history(i, args.weeks, NOW) for i in range(args.users)}
        gen_s = time.time() - t
        out = {"users": args.users, "weeks": args.weeks, "workers": args.workers, "generate_s": round(gen_s, 1),
               "rounds": []}
        opts = {"horizon_hours": 48, "slot_minutes": 15}
        for rnd_no, now in ((1, NOW), (2, NOW + dt.timedelta(days=1))):
            if rnd_no == 2:
                r = random.Random(99)
                for u in hist:
                    if r.random() < args.changed:
                        s = NOW + dt.timedelta(hours=9)
                        hist[u] = hist[u] + [{"user": u, "start": s, "end": s + dt.timedelta(hours=8),
                                              "tz_offset_min": hist[u][-1]["tz_offset_min"] if hist[u] else 0}]
            t = time.time()
            res = fc.forecast_many(hist, now, options=opts, model_dir=model_dir, engine=args.engine,
                                   workers=args.workers)
            wall = time.time() - t
            reasons = {"reused": 0, "warm": 0, "cold": 0, "fallback": 0, "error": 0}
            for f in res.values():
                if "error" in f:
                    reasons["error"] += 1
                elif f["method"] == "fallback":
                    reasons["fallback"] += 1
                elif f["reason"].startswith("reused"):
                    reasons["reused"] += 1
                elif "warm start" in f["reason"]:
                    reasons["warm"] += 1
                else:
                    reasons["cold"] += 1
            row = {"round": rnd_no, "wall_s": round(wall, 1), "per_user_core_s": round(wall * args.workers /
                   args.users, 4), "users_per_min_per_core": round(args.users / wall * 60 / args.workers, 1),
                   "mix": reasons}
            out["rounds"].append(row)
            print(json.dumps(row), flush=True)
        me, kids = rss_mib()
        out["peak_rss_mib"] = {"parent": me, "largest_worker": kids}
        print(json.dumps(out["peak_rss_mib"]))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(out, f, indent=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
