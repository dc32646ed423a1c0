#!/usr/bin/env python
"""Validation period of the backtest: choose the warm-window design without looking at the scored weeks.

    python benchmarks/backtest_validation.py HISTORY [--scored-weeks 4] [--weeks 9] [--cache forecasts.pkl] [--grid]

Drops every session of the last ``--scored-weeks`` whole weeks (the period ``playbooks/backtest.yml`` scores), then
replays the ``--weeks`` before them exactly like the backtest (weekly Prophet refits, day-by-day arrival profiles)
and prints, per variant of the policy, the hit rate of its risk curve at the warm share of the strongest fair
baseline (schedule 07-19 + release at logout, of this period) and at the moonshot's 0.40. ``--grid`` adds the small
parameter grid the defaults were chosen from. Prophet forecasts are cached in ``--cache`` (pickle) when given.
"""

import argparse
import datetime as dt
import json
import os
import pickle
import sys
import time

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import backtest as bt

RISKS = [round(0.05 * i, 2) for i in range(21)]
SPREAD_GRID_RISKS = [round(0.05 * i, 2) for i in range(3, 13)]   # enough to read the curve at 0.318 and 0.40
ABLATION = [
    ("occupancy policy (Prophet occupancy only, previous design)", {"policy": "occupancy"}),
    ("arrival hazard: empirical, all days pooled, no shrinkage",
     {"arrival_options": {"other_weight": 1.0, "k_pool": 0.0, "k_q": 0.0, "per_user_spread": False},
      "prophet_weight": 0.0, "come_weight": 0.0}),
    ("+ weekday-specific (other weekdays weight 0.5)",
     {"arrival_options": {"k_pool": 0.0, "k_q": 0.0, "per_user_spread": False}, "prophet_weight": 0.0,
      "come_weight": 0.0}),
    ("+ shrinkage to the pool (k_pool 2, k_q 3)",
     {"arrival_options": {"per_user_spread": False, "k_pool": 2.0}, "prophet_weight": 0.0, "come_weight": 0.0}),
    ("+ Prophet come probability (come_weight 0.25): one 60-min kernel for all",
     {"arrival_options": {"per_user_spread": False, "k_pool": 2.0}}),
    ("+ per-user spread (plug-in bandwidth capped at the pool's, pool share by history) = product", {}),
    ("+ Prophet arrival flank (prophet_weight 0.25), rejected",
     {"prophet_weight": 0.25, "arrival_options": {"per_user_spread": False, "k_pool": 2.0}}),
    ("Prophet alone inside the hazard rule (weights 1, 1)", {"prophet_weight": 1.0, "come_weight": 1.0}),
]

BAND_SHARES = [0.30, 0.32, 0.34, 0.36, 0.38, 0.40, 0.42]   # a steadier summary than one point: 1 login = 0.0004
# Issue 13 (benchmarks/README.md "Per-user spread"): the chosen design and its neighbours. The other variants of
# that section's tables ran with options that exist at the commits named there only.
SPREAD_VARIANTS = [
    ("before issue 13: one 60-min kernel, k_pool 2", {"per_user_spread": False, "k_pool": 2.0}),
    ("chosen: bandwidth_scale 0.75, capped at 60 min, k_pool 8 x bandwidth / 60", {}),
] + [("neighbour: k_pool %g" % k, {"k_pool": k}) for k in (4.0, 6.0, 12.0)] \
  + [("neighbour: bandwidth_scale %g" % s, {"bandwidth_scale": s}) for s in (0.5, 1.0)]


def spread_grid():
    """Issue 13: the per-user spread's variants (the rest of the design as chosen before)."""
    return [(name, {"arrival_options": opts}) for name, opts in SPREAD_VARIANTS]


def band_mean(curve):
    """Mean hit rate of a risk curve over ``BAND_SHARES`` (None if the curve does not span them)."""
    hits = [bt.interpolate_hit(curve, share) for share in BAND_SHARES]
    return None if None in hits else round(sum(hits) / len(hits), 4)


def grid():
    out = []
    for cw in (0.0, 0.1, 0.25, 0.5):
        for pw in (0.0, 0.1, 0.25, 0.5):
            out.append(("come_weight %g, prophet_weight %g" % (cw, pw), {"prophet_weight": pw, "come_weight": cw}))
    for weeks in (8, 12):
        for bw in (30, 45, 60):
            for other in (0.25, 0.5):
                out.append(("weeks %d, bandwidth %d min, other_weight %g" % (weeks, bw, other),
                            {"arrival_options": {"weeks": weeks, "bandwidth_minutes": bw, "other_weight": other}}))
    for k_pool in (1.0, 4.0):
        out.append(("k_pool %g" % k_pool, {"arrival_options": {"k_pool": k_pool}}))
    for gap in (0, 60):
        out.append(("merge gap %d min" % gap, {"warm_options": {"merge_gap_minutes": gap}}))
    return out


def prepare(history, scored_weeks, weeks, cache):
    if cache and os.path.exists(cache):
        with open(cache, "rb") as f:
            return pickle.load(f)
    rows = bt.load_history(history)
    last = max(r["start"] for r in rows)
    t1_test = dt.datetime(last.year, last.month, last.day, tzinfo=dt.timezone.utc) + dt.timedelta(days=1)
    cut = t1_test - dt.timedelta(days=7 * scored_weeks)
    rows = [r for r in rows if r["start"] < cut]
    prep = bt._prepare(rows, None, weeks, 0)  # pylint: disable=protected-access
    started = time.time()
    points, forecasts, methods = bt.make_forecasts(prep[0], prep[3], prep[4], workers=2)[:3]
    data = {"prep": prep, "points": points, "forecasts": forecasts, "methods": methods,
            "fit_seconds": round(time.time() - started, 1)}
    if cache:
        with open(cache, "wb") as f:
            pickle.dump(data, f)
    return data


def evaluate(data, variant, alt_curve=True):
    by_user, sessions, logins, t0, t1 = data["prep"]
    kw = dict(variant, alt_curve=alt_curve)
    risks = RISKS if alt_curve else SPREAD_GRID_RISKS
    rep = bt.score_all(by_user, sessions, logins, t0, t1, data["points"], data["forecasts"], risks=risks, **kw)
    ref = rep["baselines_release_at_logout"]["schedule"]
    return rep, ref, bt.interpolate_hit(rep["shadowdesk_curve"], ref["warm_share"]), \
        bt.interpolate_hit(rep["shadowdesk_curve"], 0.40), bt.interpolate_hit(rep["shadowdesk_curve_hold"], ref["warm_share"])


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("history")
    ap.add_argument("--scored-weeks", type=int, default=4)
    ap.add_argument("--weeks", type=int, default=9)
    ap.add_argument("--cache")
    ap.add_argument("--grid", action="store_true")
    ap.add_argument("--spread-grid", action="store_true", help="only the per-user spread grid (issue 13)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    data = prepare(args.history, args.scored_weeks, args.weeks, args.cache)
    by_user, logins, t0, t1 = data["prep"][0], data["prep"][2], data["prep"][3], data["prep"][4]
    print("validation %s .. %s, %d users, %d logins, forecasts %s" % (
        t0.date(), t1.date(), len(by_user), sum(len(v) for v in logins.values()), data["methods"]))
    results = []
    variants = spread_grid() if args.spread_grid else ABLATION + (grid() if args.grid else [])
    for name, variant in variants:
        started = time.time()
        rep, ref, at_ref, at_40, hold_ref = evaluate(data, variant, alt_curve=not args.spread_grid)
        if not results:
            pol = rep["policies"]
            for base in ("always_on", "on_connect", "schedule", "weekday_window"):
                print("  %-22s hit %.3f share %.3f" % (base, pol[base]["hit_rate"], pol[base]["warm_share"]))
            for base, p in rep["baselines_release_at_logout"].items():
                print("  %-22s hit %.3f share %.3f" % (base + "+release", p["hit_rate"], p["warm_share"]))
        default = rep["policies"]["shadowdesk"]
        line = {"variant": name, "hit_at_schedule_release_share": at_ref, "schedule_release": ref["hit_rate"],
                "share": ref["warm_share"], "hit_at_0.40": at_40, "hit_at_schedule_release_share_no_release": hold_ref,
                "band_mean": band_mean(rep["shadowdesk_curve"]),
                "risk_0.3": [default["hit_rate"], default["warm_share"]], "by_regularity": rep["by_regularity"],
                "curve": [(c["risk"], c["hit_rate"], c["warm_share"]) for c in rep["shadowdesk_curve"]]}
        results.append(line)
        print("%-62s hit@%.3f %s (no release %s; schedule+release %.3f)  hit@0.40 %s  band %s  risk0.3 %s  %.1fs" % (
            name, ref["warm_share"], at_ref, hold_ref, ref["hit_rate"], at_40, line["band_mean"], line["risk_0.3"],
            time.time() - started))
        sys.stdout.flush()
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
