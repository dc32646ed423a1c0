# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: turn login forecasts into staged allocation plans (controller side, plain data).

Per user with a forecast: the sessions the forecast expects (``session_windows``), a lead time per wake from the
MEASURED wake and hot-plug times plus the forecast's uncertainty band, the stage sizes (shadow, warm, full) from
the resource profile, a node (``_decisions/placement.py``: least contention within capacity, cost-aware) and the
steps ``{"at", "state", "stage"}`` the apply playbook enforces (``_decisions/plan_steps.py``).

With arrival profiles (the product's default) a warm window is the arrival policy's (``_decisions/warm_windows``):
it starts where the user's own arrival distribution makes a login likely enough for the risk setting, so its width
follows the user's spread (tight for the punctual, wide for the irregular). The wake is the window's start minus
the MEASURED lead ((wake time + hot-plug time) x safety_factor + apply_interval, where wake time is ``restore_s``
from ``saved`` or ``resume_s`` from ``paused`` and the apply interval is how often the apply playbook runs); the
predicted login is the arrival model's median in the window (the next one after ``now``); ``full`` is ready by the
window's early login (1 in 10 logins come earlier); before that the desktop is in the cheaper ``warm`` stage.

Without arrival profiles (occupancy policy) the pre-warm is how much earlier the window (which plans on the upper
band ``p_high``) starts than the first slot where ``p`` itself reaches the threshold, capped at
``max_prewarm_minutes``; the login and ``full`` are at that first slot.
"""

from __future__ import annotations

import datetime as _dt
import math

from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import placement as _placement
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions import warm_windows as _warm_windows
from ansible_collections.shadowdesk.vdi.plugins.module_utils._decisions.plan_steps import format_time, parse_time
from ansible_collections.shadowdesk.vdi.plugins.module_utils._engine import plan_inputs as _inputs
from ansible_collections.shadowdesk.vdi.plugins.module_utils._errors import InvalidInput

PLAN_VERSION = 1
DEFAULT_POLICY = {
    "risk": _warm_windows.DEFAULT_RISK,  # 0 = warm on any sign of use .. 1 = only when connected > 50 %
    "safety_factor": 3.0,           # measured times are medians; x3 covers a slow restore under load
    "apply_interval_minutes": 5,    # how often playbooks/apply_plans.yml runs (cron / AWX schedule)
    "merge_gap_minutes": 60,        # shorter gaps between predicted sessions are bridged (stay up)
    "max_prewarm_minutes": 90,      # cap of the band-driven early wake (occupancy policy only)
    "release_grace_minutes": 30,    # keep the desktop this long after the predicted end
    "pause_gap_minutes": 180,       # release to paused (not saved) when the next wake is this close
    "headroom": 1.25,               # full = profile p95 x headroom
    "cost_weight": 1.0,             # placement: contention + cost_weight x relative extra cost
}
FALLBACK_FACTOR = 2.0               # fallback forecasts: half the threshold, double the margins
MEMORY_STEP_MIB = 256
SHADOW_FRACTION, WARM_FRACTION = 0.1, 0.5


def _minutes(value):
    return _dt.timedelta(minutes=value)


def _floor_minute(moment):
    return moment.replace(second=0, microsecond=0)


def session_windows(forecast, risk, merge_gap, now=None):
    """Expected sessions: ``[{"band": (start, end), "full": (start, end) or None, "login", "arrival"}]``.

    ``band`` is a warm window of ``_decisions/warm_windows.py`` (no lead: the lead is added here from measured
    times). With arrival profiles it is the arrival policy's window, ``login`` the arrival model's median arrival
    in it (the next one after ``now``), ``full`` starts at its early login (1 in 10 logins come earlier) and
    ``arrival`` says why the window is as wide as it is. Without them (occupancy policy) ``full`` is the part of
    the band where ``p`` itself reaches the risk threshold and the login is its start.
    """
    slot_minutes = int(forecast["slot"].total_seconds() // 60)
    contract = {"start": forecast["start"], "slot_minutes": slot_minutes, "p": forecast["p"],
                "p_high": forecast["p_high"]}
    windows = _warm_windows.warm_windows(contract, risk=risk, lead_minutes=0,
                                         merge_gap_minutes=int(merge_gap.total_seconds() // 60),
                                         arrivals=forecast.get("arrivals"), now=now)
    threshold = _warm_windows.risk_threshold(risk)
    start, slot = forecast["start"], forecast["slot"]
    sessions = []
    for window in windows:
        band = (parse_time(window["start"]), parse_time(window["end"]))
        if "login" in window:
            login = parse_time(window["login"])
            sessions.append({"band": band, "full": (min(parse_time(window["early_login"]), login), band[1]),
                             "login": login, "arrival": _arrival_why(window, band, login)})
            continue
        if now is not None and band[1] <= now:
            continue
        likely = [i for i, value in enumerate(forecast["p"])
                  if value >= threshold and band[0] <= start + i * slot < band[1]]
        full = (start + likely[0] * slot, min(band[1], start + (likely[-1] + 1) * slot)) if likely else None
        sessions.append({"band": band, "full": full, "login": full[0] if full else band[0], "arrival": None})
    return sessions


def _arrival_why(window, band, login):
    """Why an arrival window is as wide as it is, as data and as one sentence for the plan summary."""
    spread, samples = window.get("spread_minutes"), window.get("samples")
    bandwidth, share = window.get("bandwidth_minutes"), window.get("pool_weight")
    why = {"window_minutes": round((band[1] - band[0]).total_seconds() / 60.0, 1),
           "before_login_minutes": round(max((login - band[0]).total_seconds(), 0.0) / 60.0, 1),
           "come_probability": window.get("q"), "samples": samples, "spread_minutes": spread,
           "bandwidth_minutes": bandwidth, "pool_weight": share}
    if samples is None:
        text = "arrival profile without spread details"
    elif not samples:
        text = "no arrivals of this kind of day yet: the pool's arrival times"
    else:
        text = "%d arrival(s) on this kind of day, spread %s, smoothed over %.0f min; pool weight %.0f %%" % (
            samples, "%.0f min" % spread if spread is not None else "unknown",
            bandwidth or 0.0, 100.0 * (share or 0.0))
    why["explanation"] = "warm %.0f min before the median login: %s; comes with probability %.2f" % (
        why["before_login_minutes"], text, window.get("q") or 0.0)
    return why


def _round_memory(mib):
    return int(math.ceil(mib / float(MEMORY_STEP_MIB)) * MEMORY_STEP_MIB)


def _scaled_limits(limits, fraction):
    return {key: {f: (max(1, int(v * fraction)) if v else 0) for f, v in vals.items()}
            for key, vals in sorted(limits.items())}


def plan_stages(desktop, profile, hours, conservative, headroom):
    """Resources dicts of the shadow, warm and full stages."""
    max_v, max_m = desktop["max_vcpus"], desktop["max_memory_mib"]
    shadow_v, shadow_m = desktop["shadow_vcpus"], desktop["shadow_memory_mib"]
    if conservative or not profile:
        full_v, full_m = max_v, max_m
    else:
        cpu = [profile["hourly"][h]["cpu_p95"] for h in hours if h in profile["hourly"]]
        mem = [profile["hourly"][h]["memory_p95_mib"] for h in hours if h in profile["hourly"]]
        cpu_need = max(cpu) if cpu else profile["vcpus"] or max_v
        mem_need = max(mem) if mem else profile["memory_mib"] or max_m
        full_v = min(max_v, max(shadow_v, int(math.ceil(cpu_need * headroom))))
        full_m = min(max_m, max(shadow_m, _round_memory(mem_need * headroom)))
    warm_v = max(shadow_v, int(math.ceil(full_v / 2.0)))
    warm_m = min(full_m, max(shadow_m, _round_memory((shadow_m + full_m) / 2.0)))

    def stage(vcpus, memory, fraction, gpu):
        return {"vcpus": vcpus, "memory_mib": memory, "cpu_limit": None,
                "net": {k: {"rate_kib_s": v["rate_kib_s"]}
                        for k, v in _scaled_limits(desktop["net"], fraction).items()},
                "disk_io": _scaled_limits(desktop["disk_io"], fraction), "gpu": gpu}

    return {"shadow": stage(shadow_v, shadow_m, SHADOW_FRACTION, None),
            "warm": stage(warm_v, warm_m, WARM_FRACTION, None),
            "full": stage(full_v, full_m, 1.0, desktop["gpu"])}


def _timeline(sessions, measured, policy, conservative):
    """Wake/full/release times per session (sessions closer than a release + wake are merged)."""
    factor = FALLBACK_FACTOR if conservative else 1.0
    safety = policy["safety_factor"] * factor
    tick = _minutes(policy["apply_interval_minutes"])
    grace = _minutes(policy["release_grace_minutes"] * factor)
    prewarm_cap = _minutes(policy["max_prewarm_minutes"] * factor)
    hotplug = _dt.timedelta(seconds=measured["hotplug_s"] * safety)
    out = []
    for session in sessions:
        band_start, band_end = session["band"]
        login = session["login"]
        # An arrival window is already the trade of hits against idle time: its start is not capped.
        prewarm = login - band_start if session["arrival"] else min(login - band_start, prewarm_cap)
        item = {"login": login, "band_end": band_end, "prewarm": prewarm, "full": session["full"] is not None,
                "full_from": session["full"][0] if session["full"] else None, "arrival": session["arrival"]}
        item["release"] = band_end + grace
        if out and login - prewarm - tick * 2 - hotplug <= out[-1]["release"]:
            out[-1]["release"], out[-1]["band_end"] = item["release"], band_end
            out[-1]["full"] = out[-1]["full"] or item["full"]
            continue
        out.append(item)
    released_to = "saved"
    for i, item in enumerate(out):
        wake_s = measured["resume_s"] if released_to == "paused" else measured["restore_s"]
        wake = _dt.timedelta(seconds=wake_s * safety)
        item["woken_from"] = released_to
        item["full_at"] = item["full_from"] - hotplug - tick if item["full"] else None
        item["wake_at"] = item["login"] - item["prewarm"] - wake - hotplug - tick
        if item["full_at"] is not None:
            item["wake_at"] = min(item["wake_at"], item["full_at"] - tick - wake)
        item["wake_at"] = _floor_minute(item["wake_at"])
        if item["full_at"] is not None:
            item["full_at"] = _floor_minute(item["full_at"])
        item["lead"] = item["login"] - item["wake_at"]
        item["measured_lead"] = wake + hotplug + tick
        nxt = out[i + 1]["login"] - out[i + 1]["prewarm"] if i + 1 < len(out) else None
        gap = _minutes(policy["pause_gap_minutes"])
        released_to = "paused" if nxt is not None and nxt - item["release"] <= gap else "saved"
        item["release_state"] = released_to
    return out


def _steps(timeline, conservative):
    steps = []
    for item in timeline:
        login = format_time(item["login"])
        wake_stage = "full" if conservative else "warm"
        steps.append({"at": format_time(item["wake_at"]), "state": "running", "stage": wake_stage,
                      "reason": "wake from %s %.1f min before the predicted login %s (%.1f min measured wake/"
                                "resize + apply interval, %.1f min %s)"
                                % (item["woken_from"], item["lead"].total_seconds() / 60, login,
                                   item["measured_lead"].total_seconds() / 60,
                                   item["prewarm"].total_seconds() / 60,
                                   "arrival spread" if item["arrival"] else "forecast band")})
        if item["full_at"] is not None and not conservative:
            steps.append({"at": format_time(item["full_at"]), "state": "running", "stage": "full",
                          "reason": "raise to full before the predicted login %s" % login})
        steps.append({"at": format_time(item["release"]), "state": item["release_state"], "stage": "shadow",
                      "reason": "release if the user has not come by then (arrival window ended %s); a user who "
                                "came is released by the disconnect" % format_time(item["band_end"])})
    return steps


def _demands(timeline, stages, gpus, conservative):
    def size(name, with_gpu=False):
        return stages[name]["vcpus"], stages[name]["memory_mib"], gpus if with_gpu else 0

    demands = []
    for i, item in enumerate(timeline):
        raise_at = item["wake_at"] if conservative or item["full_at"] is None else item["full_at"]
        top = "full" if conservative or item["full_at"] is not None else "warm"
        if raise_at > item["wake_at"]:
            demands.append((item["wake_at"], raise_at) + size("warm"))
        demands.append((raise_at, item["release"]) + size(top, top == "full"))
        if item["release_state"] == "paused" and i + 1 < len(timeline):
            demands.append((item["release"], timeline[i + 1]["wake_at"]) + size("shadow"))
    return demands


def _hours(timeline):
    hours = set()
    for item in timeline:
        moment = item["login"].replace(minute=0, second=0, microsecond=0)
        while moment < item["band_end"]:
            hours.add(moment.hour)
            moment += _dt.timedelta(hours=1)
    return sorted(hours)


def _left_alone(desktop, method, reason):
    return {"desktop": desktop["desktop"], "node": desktop["node"], "method": method, "conservative": False,
            "reason": reason, "predicted_login": None, "lead_minutes": None, "arrival": None, "stages": {},
            "steps": [],
            "sessions": [], "cost": 0.0, "warnings": []}


def _plan_user(user, forecast, desktop, profile, measured, policy, now=None):
    """Timeline, stages and demands for one user, or (None, reason)."""
    history = forecast["history"] or {}
    conservative = forecast["method"] == "fallback"
    if conservative and not history.get("sessions") and not any(forecast["p"]):
        return None, "fallback forecast without history: left alone"
    risk = policy["risk"] / (FALLBACK_FACTOR if conservative else 1.0)
    sessions = session_windows(forecast, risk, _minutes(policy["merge_gap_minutes"]), now)
    if not sessions:
        return None, "no login predicted in the window at risk %.2f" % policy["risk"]
    timeline = _timeline(sessions, measured, policy, conservative)
    stages = plan_stages(desktop, profile, _hours(timeline), conservative, policy["headroom"])
    return {"timeline": timeline, "stages": stages, "conservative": conservative}, ""


def _place(ledger, user, desktop, drafted, prices, policy):
    """Choose the node; degrade full to warm when full fits nowhere. Returns (choice, stages, warnings)."""
    stages, conservative = drafted["stages"], drafted["conservative"]
    timeline = drafted["timeline"]
    demands = _demands(timeline, stages, desktop["gpus"], conservative)
    choice = _placement.choose_node(ledger, demands, prices, policy["cost_weight"], desktop["node"])
    if choice["node"]:
        ledger.add(choice["node"], demands)
        return choice, stages, []
    degraded = dict(stages, full=dict(stages["warm"], gpu=None))
    demands = _demands(timeline, degraded, 0, conservative)
    retry = _placement.choose_node(ledger, demands, prices, policy["cost_weight"], desktop["node"])
    if retry["node"]:
        ledger.add(retry["node"], demands)
        return retry, degraded, ["full stage capped to warm size: %s" % choice["reason"]]
    return choice, stages, [choice["reason"]]


def normalise_policy(options):
    policy = dict(DEFAULT_POLICY)
    for key, value in (options or {}).items():
        if key not in DEFAULT_POLICY:
            raise InvalidInput("unknown plan option %r (known: %s)" % (key, ", ".join(sorted(DEFAULT_POLICY))))
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise InvalidInput("%s must be a number >= 0, got %r" % (key, value))
        policy[key] = value
    if not 0 <= policy["risk"] <= 1:
        raise InvalidInput("risk must be between 0 and 1, got %r" % policy["risk"])
    return policy


def build_plan(forecasts, desktops, nodes, profiles=None, prices=None, measured=None, options=None, now=None,
               measured_by_node=None):
    """The plan dict (see docs/architecture.md, "Plan file"). Inputs are raw (as given by the user).

    ``measured_by_node`` (node -> measured times, from the reconnects measured there) overrides ``measured`` for
    desktops on that node."""
    policy = normalise_policy(options)
    generated = parse_time(now, "now") if now is not None else _dt.datetime.now(_dt.timezone.utc)
    nodes = _inputs.normalise_nodes(nodes)
    names = [n["name"] for n in nodes]
    forecasts = _inputs.normalise_forecasts(forecasts)
    desktops = _inputs.normalise_desktops(desktops, names)
    profiles = _inputs.normalise_profiles(profiles)
    prices = _inputs.normalise_prices(prices, names)
    measured = _inputs.normalise_measured(measured)
    by_node = {node: _inputs.normalise_measured(dict(measured, **times))
               for node, times in sorted((measured_by_node or {}).items())}
    # A history usually covers more people than one desktop pool: users forecast but without a desktop here are
    # not an error, they are listed (and warned about) so a missing desktop entry is still visible.
    unplanned = {user: "forecast but no desktop in desktops: not planned" for user in sorted(set(forecasts) - set(desktops))}
    users, drafts = {}, {}
    for user, desktop in desktops.items():
        if user not in forecasts:
            users[user] = _left_alone(desktop, "none", "no forecast: left alone")
            continue
        drafted, reason = _plan_user(user, forecasts[user], desktop, profiles.get(user),
                                     by_node.get(desktop["node"], measured), policy, generated)
        if drafted is None:
            users[user] = _left_alone(desktop, forecasts[user]["method"], reason)
        else:
            drafts[user] = drafted
    ledger = _placement.Ledger(nodes)
    order = sorted(drafts, key=lambda u: (desktops[u]["node"] is None, -drafts[u]["stages"]["full"]["vcpus"],
                                          -drafts[u]["stages"]["full"]["memory_mib"], u))
    for user in order:
        users[user] = _user_entry(ledger, user, desktops[user], forecasts[user], drafts[user], prices, policy)
    plan = _assemble(generated, forecasts, users, policy, measured)
    if by_node:
        plan["policy"]["measured_by_node"] = by_node
    if unplanned:
        plan["unplanned"] = unplanned
    return plan


def _user_entry(ledger, user, desktop, forecast, drafted, prices, policy):
    choice, stages, warnings = _place(ledger, user, desktop, drafted, prices, policy)
    if choice["node"] is None:
        entry = _left_alone(desktop, forecast["method"], "not planned: " + warnings[0])
        entry["warnings"] = warnings
        return entry
    timeline = drafted["timeline"]
    first = timeline[0]
    return {
        "desktop": desktop["desktop"], "node": choice["node"], "method": forecast["method"],
        "conservative": drafted["conservative"],
        "reason": forecast["reason"] or ("fallback forecast: conservative plan" if drafted["conservative"] else ""),
        "predicted_login": format_time(first["login"]),
        "lead_minutes": round(first["lead"].total_seconds() / 60.0, 2),
        "arrival": first["arrival"],
        "stages": stages, "steps": _steps(timeline, drafted["conservative"]),
        "sessions": [{"wake": format_time(t["wake_at"]), "login": format_time(t["login"]),
                      "release": format_time(t["release"])} for t in timeline],
        "cost": round(choice["cost"], 4), "warnings": warnings,
    }


def _assemble(generated, forecasts, users, policy, measured):
    if forecasts:
        start = min(f["start"] for f in forecasts.values())
        end = max(f["start"] + f["slot"] * len(f["p"]) for f in forecasts.values())
    else:
        start = end = generated
    return {
        "version": PLAN_VERSION,
        "generated_at": format_time(generated),
        "window": {"start": format_time(start), "end": format_time(end)},
        "risk": policy["risk"],
        "policy": dict(policy, measured=measured),
        "total_cost": round(sum(u["cost"] for u in users.values()), 4),
        "users": {u: users[u] for u in sorted(users)},
    }


def comparable(plan):
    """The plan without ``generated_at`` (what decides ``changed``)."""
    return {k: v for k, v in (plan or {}).items() if k != "generated_at"}
