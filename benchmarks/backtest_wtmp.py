#!/usr/bin/env python
"""The backtest on a real wtmp (issue 13: irregular, deadline-driven users), read by the collection's wtmp importer.

    python benchmarks/backtest_wtmp.py ../shared/data/logins-ua-wtmp/wtmp [--weeks 4] [--workers 1] [--json OUT]

The scored weeks and the policies are those of ``playbooks/backtest.yml`` (which reads CSV histories only); the
arrival policy is scored twice on the same Prophet fits: with the defaults and with the design before issue 13
(one 60-min kernel, the pool at 2 pseudo-samples). Prints the risk curve and the by-regularity split of each.
"""

import argparse
import json
import sys

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import backtest as bt
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import importers

DESIGNS = [("defaults", {}), ("before issue 13", {"per_user_spread": False, "k_pool": 2.0})]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("wtmp")
    ap.add_argument("--weeks", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    rows = importers.get("wtmp")(args.wtmp)[0]
    by_user, sessions, logins, t0, t1 = bt._prepare(rows, None, args.weeks, 0)  # pylint: disable=protected-access
    points, forecasts, methods = bt.make_forecasts(by_user, t0, t1, workers=args.workers)[:3]
    print("wtmp %s .. %s, %d users, %d logins, fits %s" % (
        t0.date(), t1.date(), len(by_user), sum(len(v) for v in logins.values()), methods))
    out = {}
    for name, options in DESIGNS:
        rep = bt.score_all(by_user, sessions, logins, t0, t1, points, forecasts, arrival_options=options)
        out[name] = rep
        print("== %s" % name)
        for c in rep["shadowdesk_curve"]:
            print("  risk %.2f  hit %.3f  warm share %.3f  idle warm h %.0f" % (
                c["risk"], c["hit_rate"], c["warm_share"], c["idle_warm_hours"]))
        for base, p in sorted(list(rep["policies"].items()) + [(k + "+release", v) for k, v in
                                                               rep["baselines_release_at_logout"].items()]):
            if base != "shadowdesk":
                print("  %-24s hit %.3f  warm share %.3f  idle warm h %.0f" % (
                    base, p["hit_rate"], p["warm_share"], p["idle_warm_hours"]))
        print("  by regularity: %s" % json.dumps(rep["by_regularity"], sort_keys=True))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"period": [bt.fc.iso(t0), bt.fc.iso(t1)], "fits": methods, "designs": out}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
