#!/usr/bin/env python
"""Plot a backtest report: hit rate vs warm share, ShadowDesk's risk curve and each baseline as a point.

    python benchmarks/backtest_plot.py report.json benchmarks/backtest_git_activity.png
"""

import json
import sys

from matplotlib.figure import Figure  # no pyplot: no GUI backend is chosen, Agg renders savefig


def main(report_path, out_path):
    with open(report_path, encoding="utf-8") as f:
        rep = json.load(f)
    fig = Figure(figsize=(7, 5))
    ax = fig.subplots()
    curve = rep["shadowdesk_curve"]
    ax.plot([c["warm_share"] for c in curve], [c["hit_rate"] for c in curve], "o-", color="tab:blue",
            label="shadowdesk (arrival policy, risk curve, release at logout)")
    for c in curve:
        ax.annotate("%g" % c["risk"], (c["warm_share"], c["hit_rate"]), textcoords="offset points",
                    xytext=(4, -10), fontsize=7, color="tab:blue")
    hold = rep.get("shadowdesk_curve_hold")
    if hold:
        ax.plot([c["warm_share"] for c in hold], [c["hit_rate"] for c in hold], "s--", color="tab:cyan",
                markersize=4, label="shadowdesk, whole windows (no release)")
    alt = rep.get("shadowdesk_alt_curve")
    if alt:
        ax.plot([c["warm_share"] for c in alt["curve"]], [c["hit_rate"] for c in alt["curve"]], ".:",
                color="tab:purple", label="%s policy (release at logout)" % alt["policy"])
    marks = {"always_on": "k^", "on_connect": "kv", "schedule": "rD", "weekday_window": "gP"}
    for name, style in marks.items():
        p = rep["policies"][name]
        ax.plot([p["warm_share"]], [p["hit_rate"]], style, markersize=9, label=name)
    for name, p in (rep.get("baselines_release_at_logout") or {}).items():
        ax.plot([p["warm_share"]], [p["hit_rate"]], marks[name][0] + "x", markersize=9,
                label=name + " + release at logout")
    ax.set_xlabel("warm share (warm hours / always-on warm hours)")
    ax.set_ylabel("hit rate (logins to an already warm desktop)")
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    per = rep["period"]
    title = "Backtest %s .. %s, %d users, %d logins" % (per["start"][:10], per["end"][:10], rep["users"],
                                                        rep["logins"])
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
