# -*- coding: utf-8 -*-
# Copyright: ShadowDesk engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PRIVATE: when is a user's desktop pre-warmed, and when released? Pure, stdlib only.

Input: a user's forecast (``p``, ``p_low``, ``p_high`` per slot: probability of being connected), a risk knob and
the lead time the desktop needs to be ready. Output: warm intervals.

The policy, slot by slot:

1. **Need score.** ``need = p + (1 - risk) * (p_high - p)``: a cautious setting (low risk) plans on the upper edge
   of the forecast band, so a slot whose probability is uncertain (little or noisy history) counts as needed
   earlier; a bold setting plans on the point forecast.
2. **Threshold.** A slot is *needed* when ``need >= threshold(risk)``, with the threshold growing with risk
   (``risk_threshold``): risk 0 warms on any sign of use, risk 1 only where the user is connected more often than
   not.
3. **Arrival edge.** Logins come *before* the occupancy curve is high: a rising curve is the cumulative
   probability that the user has arrived. Each needed run is extended backwards while the curve keeps falling
   below the threshold but is still above ``edge_fraction`` of it and still rising towards the run, i.e. while
   arrivals are still plausible (the lower tail of the arrival time).
4. **Lead.** Each run starts ``lead_minutes`` earlier (waking a shadow and growing it takes time).
5. **Release.** A run ends after its last needed slot: when a user has not come by their usual latest time the
   probability falls and the desktop is released (the caller also releases at logout).
6. **Hygiene.** Runs separated by less than ``merge_gap_minutes`` are merged (a short release is not worth the
   churn); runs shorter than ``min_window_minutes`` are widened to it.

``warm_slots`` works on slot indexes (fast path for backtests); ``warm_windows`` on a forecast dict, returning
``[{"start", "end", "peak"}]`` with ISO-8601 UTC strings.
"""

from __future__ import annotations

import datetime as _dt

DEFAULT_RISK = 0.3
DEFAULT_LEAD_MINUTES = 15
THRESHOLD_MIN = 0.01
THRESHOLD_MAX = 0.5


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
    return [(a, b) for a, b in out]


def _parse(ts):
    if isinstance(ts, _dt.datetime):
        return ts.astimezone(_dt.timezone.utc)
    s = ts[:-1] + "+00:00" if ts.endswith("Z") else ts
    return _dt.datetime.fromisoformat(s).astimezone(_dt.timezone.utc)


def _iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def warm_windows(forecast, risk=DEFAULT_RISK, lead_minutes=DEFAULT_LEAD_MINUTES, merge_gap_minutes=60,
                 min_window_minutes=30, edge_fraction=0.5):
    """Warm intervals of one user's forecast dict (see ``_engine/forecast.py``)."""
    slot = int(forecast["slot_minutes"])
    start = _parse(forecast["start"])
    p = forecast["p"]
    hi = forecast.get("p_high") or p
    out = []
    for a, b in warm_slots(p, hi, slot, risk, lead_minutes, merge_gap_minutes, min_window_minutes, edge_fraction):
        seg = p[max(a, 0):max(b, 0)]
        out.append({
            "start": _iso(start + _dt.timedelta(minutes=a * slot)),
            "end": _iso(start + _dt.timedelta(minutes=b * slot)),
            "peak": round(max(seg), 4) if seg else 0.0,
        })
    return out


def is_warm(windows, at):
    """True when ``at`` (datetime or ISO) falls inside one of ``windows`` (start inclusive, end exclusive)."""
    t = _parse(at)
    return any(_parse(w["start"]) <= t < _parse(w["end"]) for w in windows)
