# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the operator's HTML report of a plan window: one self-contained page (inline CSS and SVG, no URL).

Inputs are plain data: the forecasts (contract of ``_engine/forecast.py``), the plan (``_engine/plans.py``) and the
actual sessions from the history store. Over the plan's window it scores:

- a *hit*: a session that started while its desktop was planned ``warm`` or ``full`` (the user found it ready);
  a *miss*: one that started while it was ``shadow`` (a wake on demand);
- *warm hours*: desktop-hours planned above the shadow stage, against keeping every desktop up (always-on) and a
  fixed schedule (weekdays FIXED_HOURS UTC), each with the hit rate it would have had on the same sessions.

The page is deterministic for the same inputs (no "now" in it), so rewriting it is idempotent.
"""

from __future__ import annotations

import datetime
import html

from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine.store.times import parse_time

FIXED_HOURS = (7, 19)  # the fixed schedule compared against: Mon-Fri 07:00-19:00 UTC
STAGE_COLOURS = {"shadow": "#d9dde3", "warm": "#f0a73a", "full": "#2e8b57"}
HIT, MISS = "#1a7f37", "#cf222e"
WIDTH, ROW = 880, 136


def _hours(delta):
    return delta.total_seconds() / 3600.0


def stage_intervals(entry, start, end):
    """[(from, to, stage)] covering [start, end): the stage of the last step at or before each moment (shadow
    before the first step)."""
    steps = sorted((parse_time(s["at"]), s.get("stage") or "shadow") for s in entry.get("steps") or [])
    out, at, stage = [], start, "shadow"
    for when, new in steps:
        if when <= start:
            stage = new
            continue
        if when >= end:
            break
        out.append((at, when, stage))
        at, stage = when, new
    out.append((at, end, stage))
    return [i for i in out if i[1] > i[0]]


def _stage_at(intervals, moment):
    for first, last, stage in intervals:
        if first <= moment < last:
            return stage
    return None


def _fixed_on(moment):
    return moment.weekday() < 5 and FIXED_HOURS[0] <= moment.hour < FIXED_HOURS[1]


def _fixed_hours(start, end):
    hours, at = 0.0, start
    while at < end:
        step = min(at.replace(minute=0, second=0, microsecond=0) + datetime.timedelta(hours=1), end)
        if _fixed_on(at):
            hours += _hours(step - at)
        at = step
    return hours


def score(plan, sessions):
    """Per user and pool-wide: hits, misses, warm hours, and the two baselines on the same sessions."""
    start, end = parse_time(plan["window"]["start"]), parse_time(plan["window"]["end"])
    users, pool = {}, {"hits": 0, "misses": 0, "warm_hours": 0.0, "fixed_hits": 0, "users": 0}
    for user, entry in sorted((plan.get("users") or {}).items()):
        intervals = stage_intervals(entry, start, end)
        logins = [s for s in sessions if s["user"] == user and start <= s["start"] < end]
        outcome = [{"login": s["start"], "end": s["end"], "hit": _stage_at(intervals, s["start"]) in ("warm", "full")}
                   for s in logins]
        warm = sum(_hours(b - a) for a, b, stage in intervals if stage != "shadow")
        users[user] = {"intervals": intervals, "sessions": outcome, "warm_hours": warm,
                       "hits": sum(o["hit"] for o in outcome), "misses": sum(not o["hit"] for o in outcome)}
        pool["hits"] += users[user]["hits"]
        pool["misses"] += users[user]["misses"]
        pool["fixed_hits"] += sum(_fixed_on(o["login"]) for o in outcome)
        pool["warm_hours"] += warm
        pool["users"] += 1
    total = pool["hits"] + pool["misses"]
    pool["sessions"] = total
    pool["hit_rate"] = pool["hits"] / total if total else None
    pool["always_on_hours"] = pool["users"] * _hours(end - start)
    pool["fixed_hours"] = pool["users"] * _fixed_hours(start, end)
    pool["fixed_hit_rate"] = pool["fixed_hits"] / total if total else None
    pool["total_cost"] = plan.get("total_cost")
    return {"start": start, "end": end, "users": users, "pool": pool}


def _x(moment, start, end, left=60, right=20):
    span = (end - start).total_seconds() or 1.0
    return left + (WIDTH - left - right) * (moment - start).total_seconds() / span


def _rate(value):
    return "n/a" if value is None else "%.0f %%" % (100 * value)


def pool_svg(pool):
    """Bars: desktop-hours kept above shadow by the plan, the fixed schedule and always-on, with hit rates."""
    bars = [("ShadowDesk plan", pool["warm_hours"], pool["hit_rate"], STAGE_COLOURS["warm"]),
            ("Fixed schedule", pool["fixed_hours"], pool["fixed_hit_rate"], "#6e7781"),
            ("Always on", pool["always_on_hours"], 1.0 if pool["sessions"] else None, "#24292f")]
    top = max(b[1] for b in bars) or 1.0
    parts = ['<svg class="plot" id="pool-plot" width="%d" height="170" '
             'role="img" aria-label="desktop-hours and hit rate">' % WIDTH]
    for i, (label, hours, rate, colour) in enumerate(bars):
        y = 20 + i * 48
        w = 560.0 * hours / top
        parts.append('<text x="0" y="%d" class="lbl">%s</text>' % (y + 22, html.escape(label)))
        parts.append('<rect x="150" y="%d" width="%.1f" height="32" fill="%s"/>' % (y, max(w, 1.0), colour))
        parts.append('<text x="%.1f" y="%d" class="val">%.1f h, hit rate %s</text>' % (160 + w, y + 22, hours,
                                                                                       _rate(rate)))
    parts.append("</svg>")
    return "".join(parts)


def user_svg(user, scored, forecast, start, end):
    """Forecast probability (line and band), planned stages (bar), actual sessions with hits/misses."""
    parts = ['<svg class="plot user-plot" width="%d" height="%d" role="img" '
             'aria-label="%s">' % (WIDTH, ROW, html.escape(user))]
    top, bottom = 8, 68
    parts.append('<line x1="60" y1="%d" x2="%d" y2="%d" stroke="#8c959f"/>' % (bottom, WIDTH - 20, bottom))
    parts.append('<text x="0" y="%d" class="axis">p=1</text><text x="0" y="%d" class="axis">p=0</text>'
                 % (top + 8, bottom))
    if forecast and forecast.get("p"):
        fstart, slot = parse_time(forecast["start"]), datetime.timedelta(minutes=forecast["slot_minutes"])
        points, band_hi, band_lo = [], [], []
        for i, p in enumerate(forecast["p"]):
            at = fstart + slot * i
            if not start <= at <= end:
                continue
            x = _x(at, start, end)
            points.append("%.1f,%.1f" % (x, bottom - (bottom - top) * p))
            band_hi.append("%.1f,%.1f" % (x, bottom - (bottom - top) * forecast["p_high"][i]))
            band_lo.append("%.1f,%.1f" % (x, bottom - (bottom - top) * forecast["p_low"][i]))
        if points:
            parts.append('<polygon class="band" points="%s" fill="#54aeff" fill-opacity="0.25"/>'
                         % " ".join(band_hi + band_lo[::-1]))
            parts.append('<polyline class="forecast" points="%s" fill="none" stroke="#0969da" stroke-width="2"/>'
                         % " ".join(points))
    tick = start.replace(minute=0, second=0, microsecond=0)
    step = datetime.timedelta(hours=max(int(_hours(end - start) // 8), 1))
    while tick <= end:
        if tick >= start:
            parts.append('<text x="%.1f" y="132" class="axis" text-anchor="middle">%s</text>'
                         % (_x(tick, start, end), tick.strftime("%a %H:%M")))
        tick += step
    for first, last, stage in scored["intervals"]:
        x0, x1 = _x(first, start, end), _x(last, start, end)
        parts.append('<rect class="stage-%s" x="%.1f" y="74" width="%.1f" height="14" fill="%s"/>'
                     % (stage, x0, max(x1 - x0, 0.5), STAGE_COLOURS.get(stage, "#d9dde3")))
    for item in scored["sessions"]:
        x0 = _x(item["login"], start, end)
        x1 = _x(min(item["end"] or end, end), start, end)
        colour = HIT if item["hit"] else MISS
        parts.append('<rect class="session" x="%.1f" y="94" width="%.1f" height="10" fill="#57606a"/>'
                     % (x0, max(x1 - x0, 1.0)))
        parts.append('<circle class="%s" cx="%.1f" cy="112" r="5" fill="%s"/>'
                     % ("hit" if item["hit"] else "miss", x0, colour))
    parts.append("</svg>")
    return "".join(parts)


CSS = """
body{font-family:sans-serif;margin:24px;color:#24292f;background:#fff}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #d0d7de;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}
.lbl,.val,.axis{font-size:13px;fill:#24292f}.axis{font-size:10px;fill:#57606a}
.legend span{display:inline-block;width:14px;height:10px;margin:0 4px 0 12px}
"""


def render(forecasts, plan, sessions):
    """The report page (str) for a plan, its forecasts and the actual sessions (store rows)."""
    scored = score(plan, sessions)
    pool, start, end = scored["pool"], scored["start"], scored["end"]
    by_user = {f["user"]: f for f in forecasts or []}
    esc = html.escape
    out = ["<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ShadowDesk report</title>",
           "<style>%s</style></head><body>" % CSS,
           "<h1>ShadowDesk report: %s to %s</h1>" % (esc(plan["window"]["start"]), esc(plan["window"]["end"])),
           "<p>Plan generated %s for %d users; %d sessions in the window.</p>"
           % (esc(plan.get("generated_at", "?")), pool["users"], pool["sessions"]),
           "<h2>Pool</h2><table><tr><th></th><th>desktop-hours above shadow</th><th>hit rate</th></tr>"]
    for label, hours, rate in (("ShadowDesk plan", pool["warm_hours"], pool["hit_rate"]),
                               ("Fixed schedule (weekdays %02d-%02d UTC)" % FIXED_HOURS, pool["fixed_hours"],
                                pool["fixed_hit_rate"]),
                               ("Always on", pool["always_on_hours"], 1.0 if pool["sessions"] else None)):
        out.append("<tr><td>%s</td><td>%.1f</td><td>%s</td></tr>" % (esc(label), hours, _rate(rate)))
    out.append("</table>")
    if pool["total_cost"] is not None:
        out.append("<p>Planned cost of the window: %.2f (plan prices).</p>" % pool["total_cost"])
    out.append(pool_svg(pool))
    out.append('<h2>Users</h2><p class="legend"><span style="background:#0969da"></span>forecast p, stages:'
               + "".join('<span style="background:%s"></span>%s' % (c, s) for s, c in STAGE_COLOURS.items())
               + '<span style="background:#57606a"></span>sessions <span style="background:%s"></span>hit'
                 ' <span style="background:%s"></span>miss (UTC hours on the axis)</p>' % (HIT, MISS))
    for user, item in sorted(scored["users"].items()):
        entry = plan["users"][user]
        out.append("<h3>%s <small>(%s, %s; %d hits, %d misses, %.1f warm h)</small></h3>"
                   % (esc(user), esc(entry.get("desktop") or "-"), esc(entry.get("method") or "-"), item["hits"],
                      item["misses"], item["warm_hours"]))
        out.append(user_svg(user, item, by_user.get(user), start, end))
    out.append("</body></html>\n")
    return "".join(out)
