#!/usr/bin/env python
"""Forecast scale benchmark: N synthetic users, Prophet fit + 48 h forecast, on W local worker processes.

Users: Mon-Fri, noisy login hour, local offsets -8..+2 h, --weeks of session history (default 12); each fit uses
the last --fit-weeks (default 8) of it, hourly. Three rounds on the same model directory:

1. cold      every user fitted from scratch (no stored model): the one-time cost of a new installation.
2. nightly   the next night: every user's history gained one new day (a session) -> every user is refitted,
             warm-started from the stored parameters with a small L-BFGS budget. **The target applies here**:
             10,000 users in <= 5 min on 2 cores (>= 1,000 users/min/core, <= 0.06 s per user per core).
3. intra-day later that day: ~--changed of the users logged in (history changed -> warm refit), the rest reuse
             their model (fingerprint unchanged: numpy predict from the stored parameters, no Stan).

Each round reports wall time, users/min/core, s per user per core, CPU seconds per user, the mix (cold/warm/reused/fallback/error) and
the peak RSS: the parent, the largest worker (``RUSAGE_CHILDREN``) and, with psutil, the peak of the sum over the
parent and all its descendants (workers + cmdstan processes), sampled every 0.2 s.

--accuracy N compares, for N users of round 2, the warm-started short-budget forecast with a full cold fit through
Prophet's stock cmdstanpy backend (same data): mean / max |dp| over the 48 h and the share of 15-min slots on the
other side of p = 0.3 (the default risk of the warm-window policy).

    python benchmarks/forecast_scale.py                                  # 400 users
    python benchmarks/forecast_scale.py --users 10000 --json out.json    # the full run in benchmarks/README.md
"""

import argparse
import datetime as dt
import json
import os
import platform
import random
import resource
import shutil
import sys
import tempfile
import threading
import time

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import forecast as fc

UTC = dt.timezone.utc
NOW = dt.datetime(2026, 3, 2, tzinfo=UTC)  # a Monday 00:00 UTC


def user_params(i):
    rnd = random.Random(i)
    return {"off": rnd.choice([-480, -300, -240, 0, 60, 120]), "login": rnd.uniform(7, 11),
            "hours": rnd.uniform(5, 9), "presence": rnd.uniform(0.5, 0.95), "rnd": rnd}


def session(user, day, prm, rnd):
    s = day + dt.timedelta(hours=prm["login"] + rnd.gauss(0, 1.0), minutes=-prm["off"])
    return {"user": user, "start": s, "end": s + dt.timedelta(hours=prm["hours"] + rnd.gauss(0, 1)),
            "tz_offset_min": prm["off"]}


def history(i, weeks, end):
    prm = user_params(i)
    rnd = prm["rnd"]
    rows = []
    first = end - dt.timedelta(days=7 * weeks)
    for d in range(7 * weeks):
        day = first + dt.timedelta(days=d)
        if day.weekday() >= 5 or rnd.random() > prm["presence"]:
            continue
        rows.append(session("u%05d" % i, day, prm, rnd))
    return rows


class RssSampler(threading.Thread):
    """Peak of the summed RSS of this process and all its descendants (psutil), sampled every ``period`` s."""

    def __init__(self, period=0.2):
        super().__init__(daemon=True)
        self.period, self.peak, self.stop_event = period, 0, threading.Event()
        try:
            import psutil
            self.proc = psutil.Process()
        except ImportError:
            self.proc = None

    def run(self):
        while self.proc is not None and not self.stop_event.is_set():
            total = 0
            try:
                procs = [self.proc] + self.proc.children(recursive=True)
            except Exception:  # process table races are harmless here
                procs = [self.proc]
            for p in procs:
                try:
                    total += p.memory_info().rss
                except Exception:  # a child that just exited
                    pass
            self.peak = max(self.peak, total)
            self.stop_event.wait(self.period)

    def finish(self):
        self.stop_event.set()
        self.join()
        return round(self.peak / 2.0 ** 20, 1) if self.proc is not None else None


def cpu_seconds():
    """User + system CPU of this process and its reaped descendants (workers and their cmdstan processes): unlike
    wall time, not inflated by other load on a shared machine."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def mix_of(res):
    mix = {"cold": 0, "warm": 0, "reused": 0, "fallback": 0, "error": 0}
    for f in res.values():
        if "error" in f:
            mix["error"] += 1
        elif f["method"] == "fallback":
            mix["fallback"] += 1
        elif f["reason"].startswith("reused"):
            mix["reused"] += 1
        elif "warm start" in f["reason"]:
            mix["warm"] += 1
        else:
            mix["cold"] += 1
    return mix


def run_round(name, hist, now, opts, model_dir, args):
    sampler = RssSampler()
    sampler.start()
    cpu0 = cpu_seconds()
    t = time.time()
    res = fc.forecast_many(hist, now, options=opts, model_dir=model_dir, engine=args.engine, workers=args.workers)
    wall = time.time() - t
    cpu = cpu_seconds() - cpu0
    peak_total = sampler.finish()
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    row = {"round": name, "now": fc.iso(now), "wall_s": round(wall, 1),
           "per_user_core_s": round(wall * args.workers / len(hist), 4),
           "users_per_min_per_core": round(len(hist) / wall * 60 / args.workers, 1),
           "cpu_s_per_user": round(cpu / len(hist), 4), "mix": mix_of(res),
           "peak_rss_mib": {"parent": round(me, 1), "largest_worker": round(kids, 1), "total": peak_total}}
    print(json.dumps(row), flush=True)
    return row, res


def accuracy(hist, now, opts, res, users):
    """Warm short-budget forecasts (``res``) vs full cold fits with Prophet's stock backend."""
    ref_opts = dict(opts, stan_backend="cmdstanpy")
    diffs, flips, worst = [], [], 0.0
    for u in users:
        if "error" in res[u] or res[u]["method"] != "prophet":
            continue
        ref = fc.forecast_user(u, hist[u], now, ref_opts)
        a, b = res[u]["p"], ref["p"]
        d = [abs(x - y) for x, y in zip(a, b)]
        diffs.append(sum(d) / len(d))
        worst = max(worst, *d)
        flips.append(sum((x >= 0.3) != (y >= 0.3) for x, y in zip(a, b)) / len(a))
    n = len(diffs)
    return {"users": n, "mean_abs_dp": round(sum(diffs) / max(n, 1), 4), "max_abs_dp": round(worst, 4),
            "slots_flipped_at_p0.3": round(sum(flips) / max(n, 1), 4)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=400)
    ap.add_argument("--weeks", type=int, default=12, help="weeks of session history per user")
    ap.add_argument("--fit-weeks", type=int, default=8, help="weeks each fit uses (option history_weeks)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--changed", type=float, default=0.1, help="share of users with a new session in round 3")
    ap.add_argument("--accuracy", type=int, default=20, help="users compared with full cold fits (0: skip)")
    ap.add_argument("--engine", default="process")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sd-forecast-bench-")
    model_dir = os.path.join(tmp, "models")
    try:
        t = time.time()
        hist = {"u%05d" % i: history(i, args.weeks, NOW) for i in range(args.users)}
        out = {"users": args.users, "weeks": args.weeks, "fit_weeks": args.fit_weeks, "workers": args.workers,
               "cpus": os.cpu_count(), "machine": platform.node(), "started": fc.iso(dt.datetime.now(UTC)),
               "generate_s": round(time.time() - t, 1), "rounds": []}
        opts = {"horizon_hours": 48, "slot_minutes": 15, "history_weeks": args.fit_weeks}

        row, res = run_round("1 cold", hist, NOW, opts, model_dir, args)
        out["rounds"].append(row)

        # Round 2, the next night: every user worked on Monday (one more session each).
        for i, u in enumerate(sorted(hist)):
            prm = user_params(i)
            hist[u] = hist[u] + [session(u, NOW, prm, random.Random(1000 + i))]
        now2 = NOW + dt.timedelta(days=1)
        row, res = run_round("2 nightly", hist, now2, opts, model_dir, args)
        if args.accuracy:
            sample = sorted(random.Random(7).sample(sorted(hist), min(args.accuracy, len(hist))))
            t = time.time()
            row["accuracy_vs_full_fit"] = acc = accuracy(hist, now2, opts, res, sample)
            acc["seconds"] = round(time.time() - t, 1)
            print(json.dumps({"accuracy_vs_full_fit": acc}), flush=True)
        out["rounds"].append(row)

        # Round 3, Tuesday 10:00 UTC: ~changed of the users logged in since (open session), the rest unchanged.
        now3 = now2 + dt.timedelta(hours=10)
        rnd = random.Random(99)
        for u in sorted(hist):
            if rnd.random() < args.changed:
                s = now2 + dt.timedelta(hours=rnd.uniform(5, 9.5))
                hist[u] = hist[u] + [{"user": u, "start": s, "end": None,
                                      "tz_offset_min": hist[u][-1]["tz_offset_min"]}]
        row, res = run_round("3 intra-day", hist, now3, opts, model_dir, args)
        out["rounds"].append(row)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                json.dump(out, f, indent=1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
