# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: when is a user's desktop pre-warmed, and when released? Pure, stdlib only.

Two policies share the risk knob (0 = cautious, 1 = bold) and the lead time the desktop needs to be ready.

**Arrival policy** (``arrival_windows``, ``arrival_slots``; the product's default when arrival profiles are known).
Inputs per local day (04:00-04:00): Prophet's occupancy forecast ``p`` of the day's slots and the user's empirical
arrival profile of that weekday (``_engine/arrivals.py``: come probability ``q_emp``, arrival pmf ``f_emp``,
mean connected minutes ``L``).

1. **Blend.** Prophet's day gives a come probability ``q_P = min(1, sum(p) * slot / L)`` (expected connected
   minutes over minutes per present day) and an arrival pmf ``f_P`` (the rising flank: positive increments of
   ``p``, normalised). ``q = (1 - come_weight) q_emp + come_weight q_P``;
   ``f = (1 - prophet_weight) f_emp + prophet_weight f_P``.
2. **Hazard.** ``h(t) = q f(t) / (q S(t) + 1 - q)`` with ``S(t)`` the probability of not having arrived before
   slot t given the user comes: the probability that the login falls into slot t, given that it has not happened
   yet (no-shows included). Warming slot t gains ``q f(t)`` expected hits and costs one idle slot with
   probability ``q S(t) + 1 - q`` (the desktop is released at logout, so only slots before the login cost), so
   a slot is warm iff ``h(t) >= hazard_threshold(risk)``: the optimal slot-by-slot trade of hits against idle
   hours. Early slots (low pmf) and late slots (the user has most likely not come today) drop out by themselves:
   the window starts at a quantile of the arrival time and is released when the user has not come by their
   usual latest arrival.
3. **Runs.** Warm slots closer than ``merge_gap_minutes`` are joined; each run starts ``lead_minutes`` earlier.

**Occupancy policy** (``warm_slots`` / ``warm_windows`` without arrivals; the fallback when no history is
available for arrival profiles), slot by slot:

1. **Need score.** ``need = p + (1 - risk) * (p_high - p)``: a cautious setting (low risk) plans on the upper edge
   of the forecast band, so a slot whose probability is uncertain (little or noisy history) counts as needed
   earlier; a bold setting plans on the point forecast.
2. **Threshold.** A slot is *needed* when ``need >= threshold(risk)``, with the threshold growing with risk
   (``risk_threshold``): risk 0 warms on any sign of use, risk 1 only where the user is connected more often than
   not.
3. **Arrival edge.** Each needed run is extended backwards while the curve keeps falling below the threshold but
   is still above ``edge_fraction`` of it and still rising towards the run.
4. **Lead.** Each run starts ``lead_minutes`` earlier (waking a shadow and growing it takes time).
5. **Release.** A run ends after its last needed slot (the caller also releases at logout).
6. **Hygiene.** Runs separated by less than ``merge_gap_minutes`` are merged; runs shorter than
   ``min_window_minutes`` are widened to it.

``warm_slots`` / ``arrival_slots`` work on slot indexes (fast path for backtests); ``warm_windows`` on a forecast
dict (with ``arrivals`` profiles: the arrival policy), returning ``[{"start", "end", "peak"}]`` with ISO-8601 UTC
strings.
"""

from __future__ import annotations

import datetime as _dt

from ansible_collections.shadowdesk.vdi.plugins.module_utils import _time

DEFAULT_RISK = 0.3
DEFAULT_LEAD_MINUTES = 15
THRESHOLD_MIN = 0.01
THRESHOLD_MAX = 0.5
# arrival policy (chosen on the validation period of benchmarks/README.md "Backtest", not on the scored weeks)
HAZARD_MIN = 0.0003
HAZARD_MAX = 0.1
DEFAULT_PROPHET_WEIGHT = 0.0   # Prophet's rising flank as arrival pmf: hurt on validation (ablation), kept as a knob
DEFAULT_COME_WEIGHT = 0.25
DEFAULT_ARRIVAL_MERGE_GAP = 30


def risk_threshold(risk):
    """Probability threshold of a risk setting in [0, 1] (monotone increasing)."""
    risk = min(max(float(risk), 0.0), 1.0)
    return THRESHOLD_MIN + (THRESHOLD_MAX - THRESHOLD_MIN) * risk ** 1.5


def need_scores(p, p_high, risk):
    risk = min(max(float(risk), 0.0), 1.0)
    return [pi + (1.0 - risk) * max(hi - pi, 0.0) for pi, hi in zip(p, p_high)]


def warm_slots(p, p_high, slot_minutes, risk=DEFAULT_RISK, lead_minutes=DEFAULT_LEAD_MINUTES,
               merge_gap_minutes=60, min_window_minutes=30, edge_fraction=0.5):
    """Warm runs as ``[(first_slot, end_slot_exclusive), ...]``; the first may start below 0 (lead before start)."""
    if len(p) != len(p_high):
        raise ValueError("p and p_high differ in length")
    if slot_minutes <= 0:
        raise ValueError("slot_minutes must be positive")
    need = need_scores(p, p_high, risk)
    thr = risk_threshold(risk)
    n = len(need)
    runs = []
    i = 0
    while i < n:
        if need[i] >= thr:
            j = i
            while j < n and need[j] >= thr:
                j += 1
            runs.append([i, j])
            i = j
        else:
            i += 1
    # arrival edge: walk back over the rising flank still above edge_fraction * threshold
    low = thr * edge_fraction
    for r in runs:
        k = r[0]
        while k - 1 >= 0 and low <= need[k - 1] < thr and need[k - 1] <= need[k]:
            k -= 1
        r[0] = k
    lead = -(-int(lead_minutes) // slot_minutes) if lead_minutes > 0 else 0
    min_len = -(-int(min_window_minutes) // slot_minutes) if min_window_minutes > 0 else 0
    gap = int(merge_gap_minutes) // slot_minutes
    out = []
    for a, b in runs:
        a -= lead
        if b - a < min_len:
            b = a + min_len
        if out and a - out[-1][1] <= gap:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [tuple(run) for run in out]


# --------------------------------------------------------------------------------------------------- arrival policy

def hazard_threshold(risk):
    """Login-hazard threshold per slot of a risk setting (geometric from HAZARD_MIN to HAZARD_MAX)."""
    risk = min(max(float(risk), 0.0), 1.0)
    return HAZARD_MIN * (HAZARD_MAX / HAZARD_MIN) ** risk


def prophet_arrival(p_day, slot_minutes, mean_minutes):
    """Prophet's view of a local day: ``(q_P, f_P)``; ``f_P`` is ``None`` when the curve never rises."""
    mass = sum(max(x, 0.0) for x in p_day) * slot_minutes
    q = min(1.0, mass / max(float(mean_minutes), 1.0))
    rises = [max(b - a, 0.0) for a, b in zip([p_day[0]] + list(p_day[:-1]), p_day)]
    rises[0] = max(p_day[0], 0.0) if p_day else 0.0
    total = sum(rises)
    return q, ([x / total for x in rises] if total > 0 else None)


def blend_arrival(profile, p_day, slot_minutes, prophet_weight=DEFAULT_PROPHET_WEIGHT,
                  come_weight=DEFAULT_COME_WEIGHT):
    """``(q, pmf)`` of a local day from the empirical ``profile`` and Prophet's ``p_day`` (``None``: not known)."""
    q, pmf = float(profile["q"]), list(profile["pmf"])
    if p_day is None or len(p_day) != len(pmf):
        return q, pmf
    q_p, f_p = prophet_arrival(p_day, slot_minutes, profile.get("mean_minutes") or 240.0)
    q = (1.0 - come_weight) * q + come_weight * q_p
    if f_p is not None:
        pmf = [(1.0 - prophet_weight) * a + prophet_weight * b for a, b in zip(pmf, f_p)]
    return min(max(q, 0.0), 1.0), pmf


def arrival_hazard(q, pmf):
    """``h(t) = q f(t) / (q S(t) + 1 - q)``: probability of the login in slot t given it has not come yet."""
    out = []
    survive = 1.0
    for f in pmf:
        den = q * survive + 1.0 - q
        out.append(q * f / den if den > 1e-12 else 0.0)
        survive = max(survive - f, 0.0)
    return out


def arrival_slots(q, pmf, slot_minutes, risk=DEFAULT_RISK, lead_minutes=DEFAULT_LEAD_MINUTES,
                  merge_gap_minutes=DEFAULT_ARRIVAL_MERGE_GAP, hazard=None):
    """Warm runs of one local day as ``[(first_slot, end_slot_exclusive)]`` relative to the day's first slot.

    ``hazard``: ``arrival_hazard(q, pmf)`` when the caller already has it (a risk curve reuses it)."""
    if slot_minutes <= 0:
        raise ValueError("slot_minutes must be positive")
    thr = hazard_threshold(risk)
    gap = int(merge_gap_minutes) // slot_minutes
    lead = _slots(lead_minutes, slot_minutes)
    runs = []
    for i, h in enumerate(arrival_hazard(q, pmf) if hazard is None else hazard):
        if h < thr:
            continue
        if runs and i - runs[-1][1] <= gap:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return [(a - lead, b) for a, b in runs]


def _day_profile(arrivals, day):
    days = arrivals.get("days") or {}
    if day.isoformat() in days:
        return days[day.isoformat()]
    return (arrivals.get("weekdays") or {}).get(str(day.weekday()))


def arrival_quantile(pmf, slot_minutes, fraction=0.5, first_slot=0, end_slot=None):
    """The ``fraction`` quantile, in minutes from the day's first slot, of the arrival pmf restricted to slots
    ``[first_slot, end_slot)`` (mass spread evenly inside a slot); ``None`` when that range holds no mass."""
    end_slot = len(pmf) if end_slot is None else min(end_slot, len(pmf))
    first_slot = max(first_slot, 0)
    total = sum(pmf[first_slot:end_slot])
    if total <= 0:
        return None
    target = total * min(max(float(fraction), 0.0), 1.0)
    acc = 0.0
    for i in range(first_slot, end_slot):
        if pmf[i] > 0 and acc + pmf[i] >= target:
            return (i + (target - acc) / pmf[i]) * slot_minutes
        acc += pmf[i]
    return end_slot * slot_minutes


EARLY_LOGIN_FRACTION = 0.1   # "early login" of a window: 1 in 10 of its logins come before it
EXPLAIN_KEYS = ("samples", "spread_minutes", "bandwidth_minutes", "pool_weight")


def arrival_windows(forecast, arrivals, risk=DEFAULT_RISK, lead_minutes=DEFAULT_LEAD_MINUTES,
                    merge_gap_minutes=DEFAULT_ARRIVAL_MERGE_GAP, prophet_weight=DEFAULT_PROPHET_WEIGHT,
                    come_weight=DEFAULT_COME_WEIGHT, now=None):
    """Warm intervals of the local days a forecast covers, from the forecast and the user's arrival profiles.

    ``arrivals``: ``{"offset_min", "day_cut_minutes", "slot_minutes", "weekdays": {"0".."6": profile}}`` and/or
    ``"days": {"YYYY-MM-DD": profile}``; a profile is ``{"q", "pmf", "mean_minutes"}`` with one pmf value per slot
    of the local day (``_engine/arrivals.py``), optionally why it is as wide as it is (``EXPLAIN_KEYS``).

    Each window also carries the arrival model's own estimates: ``login`` (the median arrival inside the window),
    ``early_login`` (its ``EARLY_LOGIN_FRACTION`` quantile), ``q`` (come probability of the day) and the profile's
    ``EXPLAIN_KEYS``. With ``now`` (datetime or ISO), windows that ended by then are left out and the estimates
    of a window under way count only arrivals from ``now`` on (the next login, not today's past one)."""
    slot = int(forecast["slot_minutes"])
    if int(arrivals.get("slot_minutes", slot)) != slot:
        raise ValueError("arrival profiles and forecast use different slots")
    start = _time.to_utc(forecast["start"])
    now = _time.to_utc(now) if now is not None else None
    p = forecast["p"]
    offset = int(arrivals.get("offset_min", 0))
    cut = _dt.timedelta(minutes=int(arrivals.get("day_cut_minutes", 240)))
    end = _time.slot_start(start, len(p), slot)
    day = (_time.local_wall(start, offset) - cut).date()
    out = []
    while True:
        day_start = _time.from_local_wall(_dt.datetime(day.year, day.month, day.day) + cut, offset)
        if day_start >= end:
            break
        profile = _day_profile(arrivals, day)
        if profile:
            k0 = int(round((day_start - start).total_seconds() / 60.0 / slot))
            n = len(profile["pmf"])
            p_day = p[k0:k0 + n] if k0 >= 0 and k0 + n <= len(p) else None
            q, pmf = blend_arrival(profile, p_day, slot, prophet_weight, come_weight)
            k_now = _time.slot_index(day_start, now, slot) if now is not None else 0
            for a, b in arrival_slots(q, pmf, slot, risk, lead_minutes, merge_gap_minutes):
                if now is not None and _time.slot_start(day_start, b, slot) <= now:
                    continue
                first = max(a, k_now)
                login = arrival_quantile(pmf, slot, 0.5, first, b)
                early = arrival_quantile(pmf, slot, EARLY_LOGIN_FRACTION, first, b)
                if login is None:  # a window made only of lead: its login is where the lead ends
                    login = early = max(first, a + _slots(lead_minutes, slot)) * slot
                seg = p[max(k0 + a, 0):max(min(k0 + b, len(p)), 0)]
                window = {
                    "start": _time.iso_z(_time.slot_start(day_start, a, slot)),
                    "end": _time.iso_z(_time.slot_start(day_start, b, slot)),
                    "peak": round(max(seg), 4) if seg else 0.0,
                    "login": _time.iso_z(day_start + _dt.timedelta(minutes=login)),
                    "early_login": _time.iso_z(day_start + _dt.timedelta(minutes=early)),
                    "q": round(q, 4),
                }
                window.update({k: profile[k] for k in EXPLAIN_KEYS if k in profile})
                out.append(window)
        day += _dt.timedelta(days=1)
    return out


def _slots(minutes, slot_minutes):
    return -(-int(minutes) // slot_minutes) if minutes > 0 else 0


def warm_windows(forecast, risk=DEFAULT_RISK, lead_minutes=DEFAULT_LEAD_MINUTES, merge_gap_minutes=60,
                 min_window_minutes=30, edge_fraction=0.5, arrivals=None, now=None):
    """Warm intervals of one user's forecast dict (see ``_engine/forecast.py``).

    With ``arrivals`` (the user's arrival profiles, see ``arrival_windows``; ``now`` as there) the arrival policy
    decides, else the occupancy policy."""
    if arrivals:
        return arrival_windows(forecast, arrivals, risk, lead_minutes, merge_gap_minutes, now=now)
    slot = int(forecast["slot_minutes"])
    start = _time.to_utc(forecast["start"])
    p = forecast["p"]
    hi = forecast.get("p_high") or p
    out = []
    for a, b in warm_slots(p, hi, slot, risk, lead_minutes, merge_gap_minutes, min_window_minutes, edge_fraction):
        seg = p[max(a, 0):max(b, 0)]
        out.append({
            "start": _time.iso_z(_time.slot_start(start, a, slot)),
            "end": _time.iso_z(_time.slot_start(start, b, slot)),
            "peak": round(max(seg), 4) if seg else 0.0,
        })
    return out
