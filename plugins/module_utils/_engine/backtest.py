# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: the backtest, ShadowDesk's honesty check. Replays a session history and scores warm-up policies.

Scored period: the last ``weeks`` whole UTC weeks ending at the midnight (UTC) after the last login; everything
before is training. Every ``refit_days`` (7) the forecaster is fitted on all sessions that started before that
moment and the following days are planned from that fit; nothing from the planned days is seen by it.

Policies (all in one run, same logins, same accounting):

* ``shadowdesk``: warm windows of ``_decisions.warm_windows`` from the user's forecast at risk ``risk``; a window is
  released when the session that used it ends (release at logout), so a later re-login inside the same window
  counts as a miss. ``shadowdesk_curve`` repeats it for ``risks``; ``shadowdesk_curve_hold`` keeps whole windows
  (no release at logout) to show how much the release contributes.
* ``always_on``: every desktop warm all the time (the reference: ``warm_share`` 1).
* ``on_connect``: a desktop is started at login and stopped at logout. A login is a hit only when the user is
  already in another session at that moment (a second, overlapping connection); a first login always waits.
* ``schedule``: fixed hours in the user's local time (AVD-style scaling plan): default Mon-Fri 07:00-19:00.
* ``weekday_window``: per user and local weekday, from the earliest login - 30 min to the latest logout + 30 min of
  that weekday's sessions over the previous 4 weeks; no window when there was none.

A login is a hit when the desktop was warm at that instant: inside a policy window, or inside another session of
the same user. Warm hours = union of policy windows and sessions (a desktop in use is warm under every policy),
within the scored period. ``idle_warm_hours`` = warm hours without a session. ``cost`` = warm hours x price
(``price.per_hour``, optionally ``price.by_hour_utc``: 24 multipliers).
"""

from __future__ import annotations

import csv
import datetime as _dt
import gzip
import io
import os

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import warm_windows as ww
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import arrivals as ar
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import forecast as fc
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

UTC = _dt.timezone.utc
EPOCH = _dt.datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_RISKS = (0.0, 0.1, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.8)
DEFAULT_SCHEDULE = {"days": [0, 1, 2, 3, 4], "start": "07:00", "end": "19:00"}
POLICIES = ("shadowdesk", "always_on", "on_connect", "schedule", "weekday_window")


# --------------------------------------------------------------------------------------------------- input

def _open_text(path):
    with open(path, "rb") as f:
        magic = f.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def load_history(path):
    """Session rows from a CSV (optionally gzipped), read by the shared importers (``_engine/importers``).

    Understood layouts: generic ``user,start,end[,tz_offset_min][,desktop]`` and the git-activity sessions
    format (``user,day,first_ts_utc,last_ts_utc,n_commits,tz_offset_min``: first commit = login, last = logout).
    """
    from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import importers
    if not os.path.exists(path):
        raise InvalidInput("history file not found: %s" % path)
    with _open_text(path) as f:
        header = set(next(csv.reader(f), []))
    kind = "git_activity" if "first_ts_utc" in header else "csv"
    rows = importers.get(kind)(path)[0]
    if not rows:
        raise InvalidInput("%s holds no sessions" % path)
    return [{k: r.get(k) for k in ("user", "desktop", "start", "end", "source", "tz_offset_min")} for r in rows]


# --------------------------------------------------------------------------------------------------- intervals

def _m(t):
    """aware datetime -> epoch minutes (float)."""
    return (t - EPOCH).total_seconds() / 60.0


def _union(iv):
    iv = sorted((a, b) for a, b in iv if b > a)
    out = []
    for a, b in iv:
        if out and a <= out[-1][1]:
            if b > out[-1][1]:
                out[-1][1] = b
        else:
            out.append([a, b])
    return out


def _clip(iv, lo, hi):
    return [(max(a, lo), min(b, hi)) for a, b in iv if b > lo and a < hi]


def _measure(iv):
    return sum(b - a for a, b in iv)


def _inside(iv_sorted, t):
    # iv_sorted: union (disjoint, sorted); start inclusive, end exclusive
    lo, hi = 0, len(iv_sorted)
    while lo < hi:
        mid = (lo + hi) // 2
        if iv_sorted[mid][1] <= t:
            lo = mid + 1
        else:
            hi = mid
    return lo < len(iv_sorted) and iv_sorted[lo][0] <= t


def _priced(iv, price):
    per = float(price.get("per_hour", 1.0))
    by = price.get("by_hour_utc")
    if not by:
        return _measure(iv) / 60.0 * per
    total = 0.0
    for a, b in iv:
        t = a
        while t < b:
            nxt = min(b, (t // 60 + 1) * 60)
            total += (nxt - t) / 60.0 * per * float(by[int(t // 60) % 24])
            t = nxt
    return total


def _split_days(windows, off, cut_minutes):
    """Split windows at the user's local day cut (``cut_minutes`` after local midnight)."""
    out = []
    for a, b in windows:
        # next cut after a, in UTC epoch minutes: local = utc + off
        while True:
            c = ((a + off - cut_minutes) // 1440 + 1) * 1440 + cut_minutes - off
            if c >= b:
                out.append((a, b))
                break
            out.append((a, c))
            a = c
    return out


def _release_at_logout(windows, sessions):
    """Cut each window at the end of the first session overlapping it (the desktop is released at logout)."""
    out = []
    for a, b in windows:
        for s, e in sessions:
            if s < b and e > a:
                # a one-commit session has no length: keep the window through its login minute
                b = min(b, max(e, s + 1, a))
                break
        out.append((a, b))
    return out


# --------------------------------------------------------------------------------------------------- policies

def _hm(text):
    h, m = str(text).split(":")
    return int(h) * 60 + int(m)


def _local_dates(t0, t1, off):
    d = (t0 + _dt.timedelta(minutes=off)).date() - _dt.timedelta(days=1)
    last = (t1 + _dt.timedelta(minutes=off)).date() + _dt.timedelta(days=1)
    while d <= last:
        yield d
        d += _dt.timedelta(days=1)


def _offset_at(rows, when):
    before = [r for r in rows if r["start"] < when]
    return fc.current_offset(before, when) if before else (rows[0]["tz_offset_min"] if rows else 0)


def _schedule_windows(rows, t0, t1, schedule):
    days = set(int(d) for d in schedule.get("days", DEFAULT_SCHEDULE["days"]))
    a_min, b_min = _hm(schedule.get("start", "07:00")), _hm(schedule.get("end", "19:00"))
    off = _offset_at(rows, t0)
    out = []
    for d in _local_dates(t0, t1, off):
        if d.weekday() not in days:
            continue
        mid = _dt.datetime(d.year, d.month, d.day, tzinfo=UTC)
        off_d = _offset_at(rows, mid)
        base = _m(mid) - off_d
        out.append((base + a_min, base + b_min))
    return out


def _weekday_windows(rows, t0, t1, weeks=4, margin=30):
    off = _offset_at(rows, t0)
    # local date and time-of-day of each session, by its own offset
    loc = []
    for r in rows:
        ls = r["start"] + _dt.timedelta(minutes=r["tz_offset_min"])
        end = r["end"] or r["start"]
        le = end + _dt.timedelta(minutes=r["tz_offset_min"])
        s_tod = ls.hour * 60 + ls.minute
        e_tod = 24 * 60 if le.date() > ls.date() else le.hour * 60 + le.minute
        loc.append((ls.date(), s_tod, e_tod))
    out = []
    for d in _local_dates(t0, t1, off):
        lo = d - _dt.timedelta(days=7 * weeks)
        same = [(s, e) for (ld, s, e) in loc if lo <= ld < d and ld.weekday() == d.weekday()]
        if not same:
            continue
        a = min(span[0] for span in same) - margin
        b = max(span[1] for span in same) + margin
        mid = _dt.datetime(d.year, d.month, d.day, tzinfo=UTC)
        base = _m(mid) - _offset_at(rows, mid)
        out.append((base + a, base + b))
    return out


# --------------------------------------------------------------------------------------------------- run

def _score(windows_by_user, sessions_by_user, logins_by_user, t0m, t1m, price, release, offsets=None,
           day_cut_minutes=240):
    warm = idle = sess_h = cost = 0.0
    hits = logins = 0
    for user, sess in sessions_by_user.items():
        wins = windows_by_user.get(user, [])
        if release:
            wins = _release_at_logout(_split_days(wins, (offsets or {}).get(user, 0), day_cut_minutes), sess)
        wu = _union(_clip(list(wins) + list(sess), t0m, t1m))
        su = _union(_clip(sess, t0m, t1m))
        w = _measure(wu)
        s = _measure(su)
        warm += w
        sess_h += s
        idle += w - s
        cost += _priced(wu, price)
        wins_u = _union(wins)
        for (ls, le) in logins_by_user.get(user, []):
            logins += 1
            hit = _inside(wins_u, ls) or any(s0 < ls < e0 for s0, e0 in sess if (s0, e0) != (ls, le))
            hits += 1 if hit else 0
    return {
        "logins": logins, "hits": hits, "hit_rate": round(hits / logins, 4) if logins else None,
        "warm_hours": round(warm / 60.0, 2), "idle_warm_hours": round(idle / 60.0, 2),
        "session_hours": round(sess_h / 60.0, 2), "cost": round(cost, 2),
    }


def _prepare(rows, users, weeks, min_session_minutes):
    rows = fc.normalise_rows(rows)
    if users:
        wanted = set(users)
        rows = [r for r in rows if r["user"] in wanted]
    if not rows:
        raise InvalidInput("the history holds no sessions to replay")
    if weeks < 1:
        raise InvalidInput("weeks must be >= 1")
    last = max(r["start"] for r in rows)
    t1 = _dt.datetime(last.year, last.month, last.day, tzinfo=UTC) + _dt.timedelta(days=1)
    t0 = t1 - _dt.timedelta(days=7 * weeks)
    if min(r["start"] for r in rows) >= t0:
        raise InvalidInput("no training data before the scored period (%s); score fewer weeks" % fc.iso(t0))
    by_user = {}
    for r in rows:
        by_user.setdefault(r["user"], []).append(r)
    t0m, t1m = _m(t0), _m(t1)
    sessions, logins = {}, {}
    for u, rs in by_user.items():
        iv = []
        for r in rs:
            end = r["end"] or (r["start"] + _dt.timedelta(minutes=max(min_session_minutes, 1)))
            end = max(end, r["start"] + _dt.timedelta(minutes=min_session_minutes))
            iv.append((_m(r["start"]), _m(end)))
        sessions[u] = iv
        logins[u] = [(a, b) for a, b in iv if t0m <= a < t1m]
    return by_user, sessions, logins, t0, t1


def make_forecasts(by_user, t0, t1, refit_days=7, slot_minutes=15, country=None, forecast_options=None,
                   engine="process", workers=None, scheduler_address=None):
    """Fit every user at every refit point of [t0, t1): returns (points, [(user, k, forecast)], methods, errors)."""
    if refit_days < 1:
        raise InvalidInput("refit_days must be >= 1")
    opts = dict(forecast_options or {})
    opts.setdefault("slot_minutes", slot_minutes)
    opts["horizon_hours"] = refit_days * 24 + 24
    if country:
        opts["country"] = country
    points = []
    t = t0
    while t < t1:
        points.append(t)
        t += _dt.timedelta(days=refit_days)
    tasks, keys = [], []
    for k, now in enumerate(points):
        before = {u: [r for r in rs if r["start"] < now] for u, rs in by_user.items()}
        pool = fc.pool_profile({u: rs for u, rs in before.items() if rs}, now)
        for u, rs in sorted(before.items()):
            tasks.append({"user": u, "rows": rs, "now": now, "options": opts, "pool": pool})
            keys.append((u, k))
    from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import executors
    results = executors.run(fc.forecast_task, tasks, engine=engine, workers=workers,
                            scheduler_address=scheduler_address)
    methods = {"prophet": 0, "fallback": 0, "error": 0}
    errors, forecasts = [], []
    for (u, k), res in zip(keys, results):
        if "error" in res:
            methods["error"] += 1
            errors.append(res)
            continue
        methods[res["method"]] += 1
        forecasts.append((u, k, res))
    return points, forecasts, methods, errors


def shadow_windows(points, forecasts, t1, risk, lead_minutes=ww.DEFAULT_LEAD_MINUTES, **kw):
    """Occupancy-policy warm windows per user (epoch minutes), each refit's plan used until the next refit."""
    t1m = _m(t1)
    out = {}
    for u, k, f in forecasts:
        lo = _m(points[k])
        hi = _m(points[k + 1]) if k + 1 < len(points) else t1m
        f0 = _m(fc.to_utc(f["start"]))
        sm = f["slot_minutes"]
        for a, b in ww.warm_slots(f["p"], f["p_high"], sm, risk, lead_minutes, **kw):
            out.setdefault(u, []).extend(_clip([(f0 + a * sm, f0 + b * sm)], lo, hi))
    return out


def arrival_days(by_user, points, forecasts, t0, t1, arrival_options=None, prophet_weight=ww.DEFAULT_PROPHET_WEIGHT,
                 come_weight=ww.DEFAULT_COME_WEIGHT):
    """Per user the planned local days ``[(day_start_epoch_minutes, q, pmf, hazard)]`` of the arrival policy.

    Each local day (04:00 local to 04:00) is planned once, from the arrival profile of the sessions before it
    (``_engine/arrivals.py``) and the forecast of the last refit at or before its start (the first refit for days
    that start before the scored period); the forecast covers the whole day, else only the profile is used."""
    model = ar.ArrivalModel(by_user, arrival_options)
    cut, slot = int(model.opts["day_cut_minutes"]), int(model.opts["slot_minutes"])
    fmap = {(u, k): f for u, k, f in forecasts}
    pts = [_m(t) for t in points]
    t0m, t1m = _m(t0), _m(t1)
    out = {}
    for u, rows in sorted(by_user.items()):
        days = []
        for d in _local_dates(t0, t1, _offset_at(rows, t0)):
            mid = _dt.datetime(d.year, d.month, d.day, tzinfo=UTC)
            start = _m(mid) + cut - _offset_at(rows, mid + _dt.timedelta(minutes=cut))
            if start + 1440 <= t0m or start >= t1m:
                continue
            k = max([i for i, pt in enumerate(pts) if pt <= start] or [0])
            f = fmap.get((u, k))
            prof = model.profile(u, d)
            p_day = None
            if f is not None and int(f["slot_minutes"]) == slot:
                k0 = int(round((start - _m(fc.to_utc(f["start"]))) / slot))
                n = len(prof["pmf"])
                if k0 >= 0 and k0 + n <= len(f["p"]):
                    p_day = f["p"][k0:k0 + n]
            q, pmf = ww.blend_arrival(prof, p_day, slot, prophet_weight, come_weight)
            days.append((start, q, pmf, ww.arrival_hazard(q, pmf)))
        out[u] = days
    return out, slot


def arrival_shadow_windows(days_by_user, slot, risk, lead_minutes=ww.DEFAULT_LEAD_MINUTES,
                           merge_gap_minutes=ww.DEFAULT_ARRIVAL_MERGE_GAP):
    """Arrival-policy warm windows per user (epoch minutes) from ``arrival_days``."""
    out = {}
    for u, days in days_by_user.items():
        wins = out.setdefault(u, [])
        for start, q, pmf, hazard in days:
            wins.extend((start + a * slot, start + b * slot)
                        for a, b in ww.arrival_slots(q, pmf, slot, risk, lead_minutes, merge_gap_minutes, hazard))
    return out


REGULARITY_CLASSES = (("punctual", 30.0), ("regular", 120.0), ("irregular", None))


def regularity_class(rows, before, day_cut_minutes=240):
    """``(class, spread_minutes)`` of a user: the robust spread of their first arrivals on local weekdays before
    ``before`` (``None``: fewer than two such days)."""
    days = [d for d in ar.user_days([r for r in rows if r["start"] < before], day_cut_minutes) if d[0].weekday() < 5]
    if len(days) < 2:
        return "irregular", None
    spread = ar.robust_spread([(d[1], 1.0) for d in days])
    for name, limit in REGULARITY_CLASSES:
        if limit is None or spread <= limit:
            return name, spread
    return "irregular", spread


def _subset(args, group):
    sessions, logins = args[0], args[1]
    return ({u: sessions[u] for u in group}, {u: logins.get(u, []) for u in group}) + tuple(args[2:])


def by_regularity(by_user, t0, t1, day_cut_minutes, scorers):
    """Idle warm hours per user-day and hit rate per regularity class (first-arrival spread on weekdays of the
    training period: punctual <= 30 min, regular <= 120 min, irregular above or unknown), per scorer."""
    groups = {}
    for user, rows in by_user.items():
        groups.setdefault(regularity_class(rows, t0, day_cut_minutes)[0], []).append(user)
    days = (t1 - t0).total_seconds() / 86400.0
    out = {}
    for name, _limit in REGULARITY_CLASSES:
        users = sorted(groups.get(name, []))
        entry = {"users": len(users), "user_days": round(len(users) * days, 1)}
        for label, scorer in scorers.items():
            if not users:
                continue
            sc = scorer(users)
            entry[label] = {"hit_rate": sc["hit_rate"], "logins": sc["logins"],
                            "idle_warm_hours_per_user_day": round(sc["idle_warm_hours"] / (len(users) * days), 3),
                            "warm_hours_per_user_day": round(sc["warm_hours"] / (len(users) * days), 3)}
        out[name] = entry
    return out


def interpolate_hit(curve, share):
    """Hit rate of a risk curve (``[{"warm_share", "hit_rate"}]``) at ``share`` (linear between its points)."""
    pts = sorted((c["warm_share"], c["hit_rate"]) for c in curve)
    if not pts or share < pts[0][0] or share > pts[-1][0]:
        return None
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x0 <= share <= x1:
            return round(y0 + (y1 - y0) * (share - x0) / (x1 - x0), 4) if x1 > x0 else max(y0, y1)
    return pts[-1][1]


def score_all(by_user, sessions, logins, t0, t1, points, forecasts, risk=ww.DEFAULT_RISK, risks=None,
              lead_minutes=ww.DEFAULT_LEAD_MINUTES, schedule=None, window_weeks=4, window_margin_minutes=30,
              price=None, day_cut_minutes=240, warm_options=None, policy="arrival", arrival_options=None,
              prophet_weight=ww.DEFAULT_PROPHET_WEIGHT, come_weight=ww.DEFAULT_COME_WEIGHT, alt_curve=True):
    """Score every policy (and the risk curve) from prepared sessions and forecasts.

    ``policy``: the warm-window policy of ``shadowdesk``: ``arrival`` (default: arrival profiles + Prophet) or
    ``occupancy`` (Prophet's occupancy curve alone); the other one is reported as ``shadowdesk_alt_curve``."""
    if policy not in ("arrival", "occupancy"):
        raise InvalidInput("policy must be arrival or occupancy")
    t0m, t1m = _m(t0), _m(t1)
    risks = sorted(set([float(x) for x in (risks or DEFAULT_RISKS)] + [float(risk)]))
    schedule = dict(DEFAULT_SCHEDULE, **(schedule or {}))
    price = dict({"per_hour": 1.0}, **(price or {}))
    offsets = {u: _offset_at(rs, t0) for u, rs in by_user.items()}
    args = (sessions, logins, t0m, t1m, price)
    kw = {"offsets": offsets, "day_cut_minutes": day_cut_minutes}
    arrival_opts = dict(arrival_options or {}, day_cut_minutes=day_cut_minutes)
    days, slot = arrival_days(by_user, points, forecasts, t0, t1, arrival_opts, prophet_weight, come_weight)

    def windows(name, rk):
        if name == "arrival":
            return arrival_shadow_windows(days, slot, rk, lead_minutes, **(warm_options or {}))
        return shadow_windows(points, forecasts, t1, rk, lead_minutes)

    alt = "occupancy" if policy == "arrival" else "arrival"
    policies, curve, curve_hold, curve_alt = {}, [], [], []
    default_windows = None
    for rk in risks:
        w = windows(policy, rk)
        sc = _score(w, *args, release=True, **kw)
        if rk == float(risk):
            default_windows = w
        curve.append((rk, sc))
        curve_hold.append((rk, _score(w, *args, release=False)))
        if alt_curve:
            curve_alt.append((rk, _score(windows(alt, rk), *args, release=True, **kw)))
        if rk == float(risk):
            policies["shadowdesk"] = dict(sc, risk=rk, policy=policy)
    win = {
        "always_on": {u: [(t0m, t1m)] for u in by_user},
        "on_connect": {},
        "schedule": {u: _schedule_windows(rs, t0, t1, schedule) for u, rs in by_user.items()},
        "weekday_window": {u: _weekday_windows(rs, t0, t1, window_weeks, window_margin_minutes)
                           for u, rs in by_user.items()},
    }
    released = {}
    for name, w in win.items():
        policies[name] = _score(w, *args, release=False)
        if name in ("schedule", "weekday_window"):
            released[name] = _score(w, *args, release=True, **kw)
    regularity = by_regularity(by_user, t0, t1, day_cut_minutes, {
        "shadowdesk": lambda group: _score(default_windows, *_subset(args, group), release=True, **kw),
        "schedule+release": lambda group: _score(win["schedule"], *_subset(args, group), release=True, **kw)})
    base = policies["always_on"]["warm_hours"] or 1.0
    for p in list(policies.values()) + list(released.values()):
        p["warm_share"] = round(p["warm_hours"] / base, 4)

    def c(items):
        return [{"risk": rk, "hit_rate": s["hit_rate"], "warm_hours": s["warm_hours"],
                 "warm_share": round(s["warm_hours"] / base, 4), "idle_warm_hours": s["idle_warm_hours"]}
                for rk, s in items]

    curve_out = c(curve)
    return {
        "policies": {k: policies[k] for k in POLICIES},
        "shadowdesk_curve": curve_out,
        "shadowdesk_curve_hold": c(curve_hold),
        "shadowdesk_alt_curve": {"policy": alt, "curve": c(curve_alt)},
        "baselines_release_at_logout": released,
        "by_regularity": regularity,
        "curve_at_baseline_share": {
            name: {"warm_share": p["warm_share"], "hit_rate": p["hit_rate"],
                   "shadowdesk_hit_rate": interpolate_hit(curve_out, p["warm_share"])}
            for name, p in [(k, policies[k]) for k in POLICIES if k != "shadowdesk"]
            + [(k + "+release", v) for k, v in sorted(released.items())]},
        "params": {"risk": float(risk), "lead_minutes": lead_minutes, "schedule": schedule,
                   "window_weeks": window_weeks, "window_margin_minutes": window_margin_minutes, "price": price,
                   "day_cut_minutes": day_cut_minutes, "policy": policy, "arrival_options": arrival_opts,
                   "prophet_weight": prophet_weight, "come_weight": come_weight},
    }


def run_backtest(rows, weeks=4, refit_days=7, risk=ww.DEFAULT_RISK, risks=None, lead_minutes=ww.DEFAULT_LEAD_MINUTES,
                 slot_minutes=15, schedule=None, window_weeks=4, window_margin_minutes=30, price=None,
                 country=None, forecast_options=None, engine="process", workers=None, scheduler_address=None,
                 users=None, min_session_minutes=0, policy="arrival", arrival_options=None):
    """Replay ``rows`` (session rows, any users) and return the report dict (see module docstring)."""
    by_user, sessions, logins, t0, t1 = _prepare(rows, users, int(weeks), min_session_minutes)
    points, forecasts, methods, errors = make_forecasts(
        by_user, t0, t1, int(refit_days), slot_minutes, country, forecast_options, engine, workers,
        scheduler_address)
    rep = score_all(by_user, sessions, logins, t0, t1, points, forecasts, risk, risks, lead_minutes, schedule,
                    window_weeks, window_margin_minutes, price, policy=policy, arrival_options=arrival_options)
    rep["params"].update({"slot_minutes": slot_minutes, "country": country, "refit_days": int(refit_days)})
    out = {
        "period": {"start": fc.iso(t0), "end": fc.iso(t1), "weeks": int(weeks), "refit_days": int(refit_days),
                   "refits": len(points)},
        "users": len(by_user),
        "logins": rep["policies"]["always_on"]["logins"],
        "forecasts": methods,
        "forecast_errors": errors[:20],
    }
    out.update(rep)
    return out
